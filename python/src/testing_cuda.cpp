// cuebm._cuebm.testing's CUDA helpers: device memory, streams and copies through the CUDA
// runtime, so the tests can hand the stream-ordered bindings (stream_api.cpp) "CUDA tensors"
// without PyTorch's CUDA build. Arrays come back as nanobind ndarrays of DLPack device type
// kDLCUDA that own their cudaMalloc memory (freed when the last reference goes). Only in a build
// with the CUDA backend (real, or emulated: tests/cuda_emulation/); otherwise nothing is bound.
#include "bindings.hpp"

#if CUEBM_HAVE_CUDA

#include <cuda_runtime.h>
#include <nanobind/ndarray.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "arrays.hpp"
#include "cuebm/runtime/error.hpp"

namespace cuebm::python {
namespace {

constexpr int kDlCuda = 2;

void check(cudaError_t status, const char* call) {
  if (status != cudaSuccess)
    throw CudaError(std::string("testing: ") + call + " failed: " + cudaGetErrorString(status));
}

// Returned as an object with __dlpack__ and __dlpack_device__ (the array API's protocol): a
// bare ndarray would come back as a DLPack capsule, which can be consumed only once.
using CudaArray = nb::ndarray<nb::array_api, nb::device::cuda>;

cudaStream_t stream_of(uintptr_t handle) { return reinterpret_cast<cudaStream_t>(handle); }

// A device array owning `bytes` of fresh cudaMalloc memory (the emulator fills it with 0xff).
CudaArray device_array(const std::vector<std::size_t>& shape, const std::vector<int64_t>& strides,
                       nb::dlpack::dtype dtype, std::size_t bytes) {
  void* p = nullptr;
  check(cudaMalloc(&p, bytes), "cudaMalloc");
  int device = 0;
  if (const cudaError_t e = cudaGetDevice(&device); e != cudaSuccess) {
    cudaFree(p);  // the error being reported is cudaGetDevice's
    check(e, "cudaGetDevice");
  }
  // A deleter cannot throw; cudaFree's error (a sticky one) shows at the next checked call.
  nb::capsule owner(p, [](void* q) noexcept { cudaFree(q); });
  return CudaArray(p, shape.size(), shape.data(), owner, strides.empty() ? nullptr : strides.data(),
                   dtype, kDlCuda, device);
}

// Elements from the array's first to one past its last (strides in elements).
std::size_t span_elements(const nb::ndarray<>& a) {
  std::size_t last = 0;
  for (std::size_t i = 0; i < a.ndim(); ++i) {
    if (a.shape(i) == 0) return 0;
    last += (a.shape(i) - 1) * static_cast<std::size_t>(a.stride(i));
  }
  return last + 1;
}

void require_cuda(const nb::ndarray<>& a, const char* what) {
  if (a.device_type() != kDlCuda)
    throw InvalidArgument(std::string(what) + " needs a CUDA array, got DLPack device type " +
                          std::to_string(a.device_type()));
}

}  // namespace

void bind_testing_cuda(nb::module_& m) {
  m.attr("cuda_emulated") =
#if defined(CUEBM_CUDA_EMULATION)
      true;
#else
      false;
#endif
  m.def(
      "cuda_upload",
      [](const nb::ndarray<const float, nb::c_contig, nb::device::cpu>& x, int64_t ld) {
        if (x.ndim() != 1 && x.ndim() != 2)
          throw InvalidArgument("cuda_upload takes a 1-D or 2-D array");
        const std::size_t rows = x.ndim() == 2 ? x.shape(0) : 1, cols = x.shape(x.ndim() - 1);
        const std::size_t pitch = ld > 0 ? static_cast<std::size_t>(ld) : cols;
        if (pitch < cols || (ld > 0 && x.ndim() != 2))
          throw InvalidArgument("cuda_upload: ld must be >= the row length of a 2-D array");
        // Padding between rows is NaN: a kernel that reads it produces NaN, one that writes it
        // changes it.
        std::vector<float> host(std::max<std::size_t>(rows * pitch, 1),
                                std::numeric_limits<float>::quiet_NaN());
        for (std::size_t r = 0; r < rows; ++r)
          std::memcpy(host.data() + r * pitch, x.data() + r * cols, cols * sizeof(float));
        std::vector<std::size_t> shape(x.shape_ptr(), x.shape_ptr() + x.ndim());
        std::vector<int64_t> strides{static_cast<int64_t>(pitch), 1};
        if (x.ndim() == 1) strides = {1};
        auto out = device_array(shape, strides, nb::dtype<float>(), host.size() * sizeof(float));
        check(cudaMemcpy(out.data(), host.data(), host.size() * sizeof(float),
                         cudaMemcpyHostToDevice),
              "cudaMemcpy");
        // A pageable upload may land later on the legacy stream (CUDA's rule, which the
        // emulator enforces): wait for it, so work on any stream sees the data.
        check(cudaDeviceSynchronize(), "cudaDeviceSynchronize");
        return out;
      },
      nb::arg("x"), nb::arg("ld") = 0,
      "A float32 CUDA copy of a C-contiguous 1-D or 2-D float32 CPU array; for a 2-D array, "
      "ld > 0 sets the row stride (NaN padding), the copy then having strides (ld, 1).");
  m.def(
      "cuda_empty",
      [](const std::vector<std::size_t>& shape, const std::string& dtype) {
        nb::dlpack::dtype type;
        std::size_t item = 0;
        if (dtype == "float32") {
          type = nb::dtype<float>();
          item = sizeof(float);
        } else if (dtype == "uint8") {
          type = nb::dtype<uint8_t>();
          item = 1;
        } else {
          throw InvalidArgument("cuda_empty: dtype must be float32 or uint8, got " + dtype);
        }
        std::size_t n = 1;
        for (std::size_t s : shape) n *= s;
        return device_array(shape, {}, type, std::max<std::size_t>(n, 1) * item);
      },
      nb::arg("shape"), nb::arg("dtype") = "float32",
      "Uninitialised C-contiguous CUDA memory (the emulated GPU fills it with 0xff bytes: NaN).");
  m.def(
      "cuda_download",
      [](const nb::ndarray<>& a, uintptr_t stream) {
        require_cuda(a, "cuda_download");
        if (!is_float32(a.dtype()))
          throw nb::type_error(
              ("cuda_download: float32 only, got " + dtype_name(a.dtype())).c_str());
        std::vector<float> raw(span_elements(a));
        check(cudaMemcpyAsync(raw.data(), a.data(), raw.size() * sizeof(float),
                              cudaMemcpyDeviceToHost, stream_of(stream)),
              "cudaMemcpyAsync");
        check(cudaStreamSynchronize(stream_of(stream)), "cudaStreamSynchronize");
        std::vector<std::size_t> shape(a.shape_ptr(), a.shape_ptr() + a.ndim());
        std::size_t n = 1;
        for (std::size_t s : shape) n *= s;
        std::vector<float> out(n);
        const std::size_t cols = a.ndim() == 2 ? shape[1] : n;
        for (std::size_t i = 0; i < n; ++i) {
          const std::size_t r = a.ndim() == 2 ? i / cols : 0, c = a.ndim() == 2 ? i % cols : i;
          out[i] = raw[a.ndim() == 2 ? r * a.stride(0) + c * a.stride(1) : c * a.stride(0)];
        }
        return to_numpy(std::move(out), shape);
      },
      nb::arg("a"), nb::arg("stream") = 0,
      "A float32 1-D or 2-D CUDA array copied to a NumPy array by a copy enqueued on `stream` "
      "(a cudaStream_t as an int; 0 the legacy default stream), then that stream synchronised.");
  m.def(
      "cuda_raw",
      [](const nb::ndarray<>& a, uintptr_t stream) {
        require_cuda(a, "cuda_raw");
        if (!is_float32(a.dtype()))
          throw nb::type_error(("cuda_raw: float32 only, got " + dtype_name(a.dtype())).c_str());
        std::vector<float> raw(span_elements(a));
        check(cudaMemcpyAsync(raw.data(), a.data(), raw.size() * sizeof(float),
                              cudaMemcpyDeviceToHost, stream_of(stream)),
              "cudaMemcpyAsync");
        check(cudaStreamSynchronize(stream_of(stream)), "cudaStreamSynchronize");
        return to_numpy(std::move(raw), {raw.size()});
      },
      nb::arg("a"), nb::arg("stream") = 0,
      "Every float from a CUDA array's first to its last element (padding between rows "
      "included), copied on `stream` as cuda_download.");
  m.def(
      "cuda_is_device_memory",
      [](const nb::ndarray<>& a) {
        cudaPointerAttributes attributes{};
        check(cudaPointerGetAttributes(&attributes, a.data()), "cudaPointerGetAttributes");
        return attributes.type == cudaMemoryTypeDevice;
      },
      nb::arg("a"), "True when the array's data is CUDA device memory (cudaPointerGetAttributes).");
  m.def(
      "cuda_stream_create",
      [](bool non_blocking) {
        cudaStream_t s = nullptr;
        check(
            cudaStreamCreateWithFlags(&s, non_blocking ? cudaStreamNonBlocking : cudaStreamDefault),
            "cudaStreamCreateWithFlags");
        return reinterpret_cast<uintptr_t>(s);
      },
      nb::arg("non_blocking") = true,
      "A new CUDA stream as an int handle (non-blocking: it does not wait for the legacy "
      "default stream, nor the legacy stream for it). Destroy it with cuda_stream_destroy.");
  m.def(
      "cuda_stream_synchronize",
      [](uintptr_t stream) {
        check(cudaStreamSynchronize(stream_of(stream)), "cudaStreamSynchronize");
      },
      nb::arg("stream"), "Waits for the work enqueued on `stream`.");
  m.def(
      "cuda_stream_destroy",
      [](uintptr_t stream) { check(cudaStreamDestroy(stream_of(stream)), "cudaStreamDestroy"); },
      nb::arg("stream"), "Destroys a stream of cuda_stream_create (its pending work completes).");
}

}  // namespace cuebm::python

#else

namespace cuebm::python {
void bind_testing_cuda(nb::module_&) {}
}  // namespace cuebm::python

#endif
