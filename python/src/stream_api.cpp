// CUDA tensors in place: the stream-ordered API (cuebm/training/stream_api.hpp) on device
// memory given through DLPack (torch CUDA tensors), enqueued on the caller's stream (torch's
// current stream, passed as an integer handle). Rows may have a leading dimension (row stride)
// larger than the row. A build without the CUDA backend raises InvalidArgument ("built without
// CUDA") after the argument checks.
#include <nanobind/stl/optional.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include <cstdint>
#include <optional>

#include "arrays.hpp"
#include "bindings.hpp"
#include "cuebm/runtime/error.hpp"
#include "cuebm/training/stream_api.hpp"

namespace cuebm::python {
namespace {

constexpr int kDlCuda = 2;

// A float32 device matrix (rows x cols, unit column stride) and its leading dimension.
struct DeviceRows {
  float* data = nullptr;
  int64_t rows = 0, ld = 0;
};

DeviceRows device_rows(const nb::ndarray<>& a, const char* name, int64_t cols) {
  if (a.device_type() != kDlCuda)
    throw InvalidArgument(std::string(name) +
                          " must be in CUDA device memory (DLPack device "
                          "type 2), got device type " +
                          std::to_string(a.device_type()));
  if (!is_float32(a.dtype()))
    throw nb::type_error(
        (std::string(name) + " must be float32, got " + dtype_name(a.dtype())).c_str());
  DeviceRows r;
  r.data = static_cast<float*>(a.data());
  if (a.ndim() == 1) {
    if (cols != 1 && static_cast<int64_t>(a.shape(0)) != cols)
      throw InvalidArgument(std::string(name) + " has the wrong size");
    r.rows = cols == 1 ? static_cast<int64_t>(a.shape(0)) : 1;
    r.ld = cols == 1 ? a.stride(0) : cols;
    if (cols == 1 && a.stride(0) != 1)
      throw InvalidArgument(std::string(name) + " must be contiguous");
    return r;
  }
  if (a.ndim() != 2 || static_cast<int64_t>(a.shape(1)) != cols || (cols > 1 && a.stride(1) != 1))
    throw InvalidArgument(std::string(name) + " must be (n, " + std::to_string(cols) +
                          ") with contiguous rows");
  r.rows = static_cast<int64_t>(a.shape(0));
  r.ld = a.shape(0) > 1 ? a.stride(0) : cols;
  return r;
}

MlpView view_of(const std::vector<int>& widths, const std::string& activation,
                const nb::ndarray<>& params) {
  MlpView v{widths, parse_activation(activation), nullptr};
  const DeviceRows p = device_rows(params, "params", 1);
  if (static_cast<std::size_t>(p.rows) != v.num_parameters())
    throw InvalidArgument("params holds " + std::to_string(p.rows) + " floats; the widths need " +
                          std::to_string(v.num_parameters()));
  v.params = p.data;
  return v;
}

cudaStream_t stream_of(uintptr_t handle) { return reinterpret_cast<cudaStream_t>(handle); }

std::pair<void*, std::size_t> workspace_of(const nb::ndarray<>& w) {
  if (w.device_type() != kDlCuda) throw InvalidArgument("workspace must be in CUDA device memory");
  return {w.data(), w.nbytes()};
}

}  // namespace

void bind_stream_api(nb::module_& m) {
  m.def(
      "cuda_mlp_energy_workspace_size",
      [](const std::vector<int>& widths, const std::string& activation, int64_t n) {
        return mlp_energy_workspace_size({widths, parse_activation(activation), nullptr}, n);
      },
      nb::arg("widths"), nb::arg("activation"), nb::arg("n"));
  m.def(
      "cuda_mlp_energy",
      [](const std::vector<int>& widths, const std::string& activation, const nb::ndarray<>& params,
         const nb::ndarray<>& x, std::optional<nb::ndarray<>> e, std::optional<nb::ndarray<>> grad,
         const nb::ndarray<>& workspace, uintptr_t stream) {
        const MlpView v = view_of(widths, activation, params);
        const DeviceRows xr = device_rows(x, "x", widths.front());
        float* e_ptr = e ? device_rows(*e, "e", 1).data : nullptr;
        DeviceRows g;
        if (grad) g = device_rows(*grad, "grad", widths.front());
        const auto [ws, ws_bytes] = workspace_of(workspace);
        nb::gil_scoped_release unlocked;
        mlp_energy(v, xr.data, xr.ld, xr.rows, e_ptr, g.data, grad ? g.ld : widths.front(), ws,
                   ws_bytes, stream_of(stream));
      },
      nb::arg("widths"), nb::arg("activation"), nb::arg("params"), nb::arg("x"),
      nb::arg("e").none(), nb::arg("grad").none(), nb::arg("workspace"), nb::arg("stream"),
      "E(x) and/or dE/dx of CUDA rows x, enqueued on `stream` (a cudaStream_t as an int).");
  m.def(
      "cuda_langevin_chain_workspace_size",
      [](const std::vector<int>& widths, const std::string& activation, int64_t n, int n_steps,
         int64_t ldx) {
        return langevin_chain_workspace_size({widths, parse_activation(activation), nullptr}, n,
                                             n_steps, ldx);
      },
      nb::arg("widths"), nb::arg("activation"), nb::arg("n"), nb::arg("n_steps"), nb::arg("ldx"));
  m.def(
      "cuda_langevin_chain",
      [](const std::vector<int>& widths, const std::string& activation, const nb::ndarray<>& params,
         const nb::ndarray<>& x, const nb::ndarray<>& workspace, uintptr_t stream,
         const Schedule& step_size, const Schedule& noise_scale, int n_steps, uint64_t seed,
         uint64_t step_offset, uint64_t first_chain, std::optional<float> clamp_min,
         std::optional<float> clamp_max) {
        const MlpView v = view_of(widths, activation, params);
        const DeviceRows xr = device_rows(x, "x", widths.front());
        const LangevinOptions o{.step_size = step_size,
                                .noise_scale = noise_scale,
                                .n_steps = n_steps,
                                .seed = seed,
                                .step_offset = step_offset,
                                .first_chain = first_chain,
                                .clamp_min = clamp_min,
                                .clamp_max = clamp_max};
        const auto [ws, ws_bytes] = workspace_of(workspace);
        nb::gil_scoped_release unlocked;
        langevin_chain(v, xr.data, xr.ld, xr.rows, o, ws, ws_bytes, stream_of(stream));
      },
      nb::arg("widths"), nb::arg("activation"), nb::arg("params"), nb::arg("x"),
      nb::arg("workspace"), nb::arg("stream"), nb::arg("step_size"), nb::arg("noise_scale"),
      nb::arg("n_steps"), nb::arg("seed") = 0, nb::arg("step_offset") = 0,
      nb::arg("first_chain") = 0, nb::arg("clamp_min").none() = nb::none(),
      nb::arg("clamp_max").none() = nb::none(),
      "n_steps Langevin steps on CUDA rows x in place, keyed as langevin_sample, on `stream`.");
}

}  // namespace cuebm::python
