// safetensors files, MLP model files and training checkpoints.
#include <nanobind/stl/map.h>
#include <nanobind/stl/optional.h>
#include <nanobind/stl/pair.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include <optional>

#include "arrays.hpp"
#include "bindings.hpp"
#include "cuebm/io/safetensors.hpp"
#include "cuebm/runtime/error.hpp"
#include "cuebm/training/checkpoint.hpp"
#include "interrupt.hpp"

namespace cuebm::python {
namespace {

std::vector<std::size_t> sizes(const std::vector<int64_t>& shape) {
  return {shape.begin(), shape.end()};
}

nb::object tensor_to_numpy(NamedTensor&& t) {
  if (t.dtype == TensorDtype::kF64) return nb::cast(to_numpy(std::move(t.f64), sizes(t.shape)));
  return nb::cast(to_numpy(std::move(t.f32), sizes(t.shape)));
}

// float32 and float64 arrays keep their dtype in the file; any layout is accepted (copied).
NamedTensor tensor_from_array(const std::string& name, const AnyArray& a) {
  if (a.device_type() != 1) throw InvalidArgument("tensor '" + name + "' is not in CPU memory");
  std::vector<int64_t> shape(a.shape_ptr(), a.shape_ptr() + a.ndim());
  std::size_t n = 1;
  for (int64_t s : shape) n *= static_cast<std::size_t>(s);
  // Element i of the C-order walk over any strides.
  const auto offset = [&](std::size_t i) {
    int64_t off = 0;
    for (std::size_t k = shape.size(); k-- > 0;) {
      off += static_cast<int64_t>(i % static_cast<std::size_t>(shape[k])) * a.stride(k);
      i /= static_cast<std::size_t>(shape[k]);
    }
    return off;
  };
  if (is_float64(a.dtype())) {
    std::vector<double> v(n);
    for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<const double*>(a.data())[offset(i)];
    return NamedTensor::from_f64(name, std::move(shape), std::move(v));
  }
  if (!is_float32(a.dtype()))
    throw nb::type_error(
        ("tensor '" + name + "' must be float32 or float64, got " + dtype_name(a.dtype())).c_str());
  std::vector<float> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<const float*>(a.data())[offset(i)];
  return NamedTensor::from_f32(name, std::move(shape), std::move(v));
}

std::optional<Activation> activation_of(const std::optional<std::string>& name) {
  if (!name) return std::nullopt;
  return parse_activation(*name);
}

nb::dict checkpoint_to_dict(Checkpoint&& c) {
  nb::dict d;
  d["input_dim"] = c.model.input_dim;
  d["hidden"] = c.model.hidden;
  d["activation"] = activation_name(c.model.activation);
  const std::size_t p = c.parameters.size(), pm = c.adam_m.size(), pv = c.adam_v.size();
  d["parameters"] = to_numpy(std::move(c.parameters), {p});
  d["adam_steps"] = c.adam_steps;
  d["adam_m"] = to_numpy(std::move(c.adam_m), {pm});
  d["adam_v"] = to_numpy(std::move(c.adam_v), {pv});
  d["iteration"] = c.trainer.iteration;
  d["consecutive_nonfinite"] = c.trainer.consecutive_nonfinite;
  const std::size_t dim = static_cast<std::size_t>(c.model.input_dim);
  const std::size_t rows = c.trainer.buffer.size() / dim;
  d["buffer"] = to_numpy(std::move(c.trainer.buffer), {rows, dim});
  d["buffer_ptr"] = c.trainer.buffer_ptr;
  d["buffer_ready"] = c.trainer.buffer_ready;
  d["epoch"] = c.epoch;
  d["epoch_loss"] = c.epoch_loss;
  d["epoch_acceptance"] = c.epoch_acceptance;
  d["iterations"] = c.iterations;
  d["skipped"] = c.skipped;
  d["train_seconds"] = c.train_seconds;
  d["config"] = c.config;
  return d;
}

}  // namespace

void bind_io(nb::module_& m) {
  m.def(
      "read_safetensors",
      [](const std::string& path) {
        SafetensorsFile f = without_gil([&] { return read_safetensors(path); });
        nb::dict tensors;
        for (NamedTensor& t : f.tensors) {
          const std::string name = t.name;
          tensors[name.c_str()] = tensor_to_numpy(std::move(t));
        }
        return nb::make_tuple(tensors, f.metadata);
      },
      nb::arg("path"),
      "(tensors, metadata): name -> float32/float64 array in file order, and the metadata.");
  m.def(
      "write_safetensors",
      [](const std::string& path, const std::vector<std::pair<std::string, AnyArray>>& tensors,
         const std::map<std::string, std::string>& metadata) {
        std::vector<NamedTensor> named;
        for (const auto& [name, array] : tensors) named.push_back(tensor_from_array(name, array));
        nb::gil_scoped_release unlocked;
        write_safetensors(path, named, metadata);
      },
      nb::arg("path"), nb::arg("tensors"),
      nb::arg("metadata") = std::map<std::string, std::string>{},
      "Writes [(name, array)] atomically as safetensors.torch.save_file would.");
  m.def(
      "save_mlp",
      [](const std::string& path, const Mlp& model) {
        nb::gil_scoped_release unlocked;
        save_mlp(path, model);
      },
      nb::arg("path"), nb::arg("model"), "Writes a model file (PyTorch's names, widths metadata).");
  m.def(
      "load_mlp",
      [](const std::string& path, const std::optional<std::string>& activation) {
        return load_mlp(path, activation_of(activation));
      },
      nb::arg("path"), nb::arg("activation").none() = nb::none(),
      "Reads a model file (or a checkpoint) as an Mlp.");
  m.def(
      "read_checkpoint",
      [](const std::string& path) {
        return checkpoint_to_dict(without_gil([&] { return read_checkpoint(path); }));
      },
      nb::arg("path"), "A training checkpoint as a dict.");
  m.def(
      "write_checkpoint",
      [](const std::string& path, const Mlp& model, int64_t adam_steps, const AnyArray& adam_m,
         const AnyArray& adam_v, int64_t iteration, int epoch, std::vector<double> epoch_loss,
         const std::map<std::string, std::string>& config) {
        Checkpoint c;
        c.model = model.spec();
        c.parameters.assign(model.parameters().begin(), model.parameters().end());
        c.adam_steps = adam_steps;
        const auto p = static_cast<int64_t>(model.num_parameters());
        const FloatArray m1 = as_vector(adam_m, "adam_m", p), v = as_vector(adam_v, "adam_v", p);
        c.adam_m.assign(m1.data(), m1.data() + p);
        c.adam_v.assign(v.data(), v.data() + p);
        c.trainer.iteration = iteration;
        c.epoch = epoch;
        c.epoch_loss = std::move(epoch_loss);
        c.iterations = iteration;
        c.config = config;
        nb::gil_scoped_release unlocked;
        write_checkpoint(path, c);
      },
      nb::arg("path"), nb::arg("model"), nb::arg("adam_steps"), nb::arg("adam_m"),
      nb::arg("adam_v"), nb::arg("iteration"), nb::arg("epoch"),
      nb::arg("epoch_loss") = std::vector<double>{},
      nb::arg("config") = std::map<std::string, std::string>{},
      "Writes a checkpoint of a non-persistent run (model, Adam, counters) atomically.");
}

}  // namespace cuebm::python
