// Energies: the Energy interface, the MLP (parameters in PyTorch's layout and names) and the
// analytic energies. Every evaluation releases the GIL.
#include <nanobind/stl/map.h>
#include <nanobind/stl/optional.h>
#include <nanobind/stl/pair.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/tuple.h>
#include <nanobind/stl/vector.h>

#include "arrays.hpp"
#include "bindings.hpp"
#include "cuebm/models/analytic.hpp"
#include "cuebm/models/mlp.hpp"
#include "cuebm/runtime/error.hpp"

#include <optional>

namespace cuebm::python {
namespace {

NumpyArray<float> energy_of(const Energy& energy, const AnyArray& x) {
  const FloatArray rows = as_rows(x, "x", energy.dim());
  std::vector<float> e(static_cast<std::size_t>(rows.shape(0)));
  {
    nb::gil_scoped_release unlocked;
    energy.energy(rows.data(), rows.shape(0), e.data());
  }
  return to_numpy(std::move(e), {e.size()});
}

// dE/dx (n x dim) and, when e is not null, E(x) into *e.
NumpyArray<float> gradient_of(const Energy& energy, const AnyArray& x,
                              std::optional<NumpyArray<float>>* e) {
  const FloatArray rows = as_rows(x, "x", energy.dim());
  const auto n = static_cast<std::size_t>(rows.shape(0));
  std::vector<float> grad(n * energy.dim()), values(e ? n : 0);
  {
    nb::gil_scoped_release unlocked;
    energy.gradient(rows.data(), rows.shape(0), grad.data(), e ? values.data() : nullptr);
  }
  if (e) *e = to_numpy(std::move(values), {n});
  return to_numpy(std::move(grad), {n, static_cast<std::size_t>(energy.dim())});
}

std::vector<std::size_t> shape_of(const ParameterInfo& info) {
  return {info.shape.begin(), info.shape.end()};
}

// "network.0.weight" or a bare nn.Sequential's "0.weight".
const ParameterInfo* find_parameter(const Mlp& model, const std::string& name) {
  for (const ParameterInfo& info : model.parameter_info())
    if (info.name == name || info.name == "network." + name) return &info;
  return nullptr;
}

void load_state_dict(Mlp& model, const std::map<std::string, AnyArray>& state, bool strict) {
  std::vector<bool> seen(model.parameter_info().size(), false);
  std::vector<std::pair<const ParameterInfo*, FloatArray>> values;
  for (const auto& [name, array] : state) {
    const ParameterInfo* info = find_parameter(model, name);
    if (!info) {
      if (strict)
        throw InvalidArgument("state_dict: unexpected key '" + name + "' for an MLP " +
                              model.name());
      continue;
    }
    FloatArray value(array, name.c_str());
    bool same = value.ndim() == info->shape.size();
    for (std::size_t i = 0; same && i < info->shape.size(); ++i)
      same = value.shape(i) == info->shape[i];
    if (!same) {
      std::string expected = "(";
      for (std::size_t i = 0; i < info->shape.size(); ++i)
        expected += (i ? ", " : "") + std::to_string(info->shape[i]);
      throw InvalidArgument("state_dict: '" + name + "' has shape " + value.shape_text() +
                            ", the model expects " + expected +
                            (info->shape.size() == 1 ? ",)" : ")"));
    }
    seen[static_cast<std::size_t>(info - model.parameter_info().data())] = true;
    values.emplace_back(info, std::move(value));
  }
  if (strict)
    for (std::size_t i = 0; i < seen.size(); ++i)
      if (!seen[i])
        throw InvalidArgument("state_dict: missing key '" + model.parameter_info()[i].name + "'");
  // Nothing is written before every entry was checked.
  for (const auto& [info, value] : values)
    std::copy(value.data(), value.data() + info->size, model.parameters().begin() + info->offset);
}

}  // namespace

void bind_models(nb::module_& m) {
  nb::class_<Energy>(m, "Energy", "An energy E(x) over rows of dimension dim (abstract).")
      .def_prop_ro("dim", &Energy::dim, "The dimension D of a row.")
      .def_prop_ro("name", &Energy::name, "A short description, e.g. 'mlp:2-64-64-1_relu'.")
      .def("energy", &energy_of, nb::arg("x"), "E(x) of an (n, dim) array: (n,) float32.")
      .def(
          "gradient", [](const Energy& e, const AnyArray& x) { return gradient_of(e, x, nullptr); },
          nb::arg("x"), "dE/dx per row of an (n, dim) array: (n, dim) float32.")
      .def(
          "energy_and_gradient",
          [](const Energy& e, const AnyArray& x) {
            std::optional<NumpyArray<float>> values;
            NumpyArray<float> grad = gradient_of(e, x, &values);
            return nb::make_tuple(*values, grad);
          },
          nb::arg("x"), "(E(x), dE/dx) from one pass.");

  nb::class_<Mlp, Energy>(m, "Mlp",
                          "MLP energy Linear(D, h1), act, ..., Linear(hL, 1) with PyTorch's "
                          "parameter layout (network.0.weight [h1, D], network.0.bias, ...).")
      .def(
          "__init__",
          [](Mlp* self, int input_dim, std::vector<int> hidden, const std::string& activation,
             uint64_t seed) {
            new (self) Mlp({input_dim, std::move(hidden), parse_activation(activation)}, seed);
          },
          nb::arg("input_dim"), nb::arg("hidden"), nb::arg("activation") = "relu",
          nb::arg("seed") = 0,
          "PyTorch's nn.Linear initialisation drawn from a Philox stream keyed by seed.")
      .def("__copy__", [](const Mlp& model) { return Mlp(model); })
      .def(
          "__deepcopy__", [](const Mlp& model, nb::handle) { return Mlp(model); }, nb::arg("memo"))
      .def_prop_ro("widths", &Mlp::layer_widths, "[D, h1, ..., hL, 1]")
      .def_prop_ro("hidden", [](const Mlp& model) { return model.spec().hidden; })
      .def_prop_ro("activation",
                   [](const Mlp& model) { return activation_name(model.spec().activation); })
      .def_prop_ro("num_parameters", &Mlp::num_parameters)
      .def_prop_ro("forward_macs", &Mlp::forward_macs, "Multiply-adds of one row's forward pass.")
      .def(
          "parameter_info",
          [](const Mlp& model) {
            std::vector<std::tuple<std::string, std::vector<int64_t>, std::size_t, std::size_t>>
                out;
            for (const ParameterInfo& i : model.parameter_info())
              out.emplace_back(i.name, i.shape, i.offset, i.size);
            return out;
          },
          "[(name, shape, offset, size)] in state_dict order.")
      .def(
          "parameters",
          [](Mlp& model) {
            return NumpyArray<float>(model.parameters().data(), {model.num_parameters()},
                                     nb::handle());
          },
          nb::rv_policy::reference_internal,
          "The flat parameter vector as a writable NumPy view of the model's memory (it keeps "
          "the model alive); writes change the model.")
      .def(
          "set_parameters",
          [](Mlp& model, const AnyArray& values) {
            const FloatArray v =
                as_vector(values, "parameters", static_cast<int64_t>(model.num_parameters()));
            std::copy(v.data(), v.data() + v.size(), model.parameters().begin());
          },
          nb::arg("values"), "Copies a flat vector (num_parameters values) into the model.")
      .def(
          "state_dict",
          [](const Mlp& model) {
            std::vector<std::pair<std::string, NumpyArray<float>>> out;
            for (const ParameterInfo& i : model.parameter_info()) {
              std::vector<float> v(model.parameters().begin() + i.offset,
                                   model.parameters().begin() + i.offset + i.size);
              out.emplace_back(i.name, to_numpy(std::move(v), shape_of(i)));
            }
            return out;
          },
          "[(name, array)] with PyTorch's names and shapes (copies).")
      .def("load_state_dict", &load_state_dict, nb::arg("state"), nb::arg("strict") = true,
           "Copies named arrays (PyTorch's names, or a bare Sequential's '0.weight', ...) into "
           "the model after checking every name and shape.")
      .def(
          "parameter_gradient",
          [](const Mlp& model, const AnyArray& x, const AnyArray& coeff) {
            const FloatArray rows = as_rows(x, "x", model.dim());
            const FloatArray c = as_vector(coeff, "coeff", rows.shape(0));
            std::vector<float> grad(model.num_parameters());
            {
              nb::gil_scoped_release unlocked;
              model.parameter_gradient(rows.data(), rows.shape(0), c.data(), grad.data());
            }
            return to_numpy(std::move(grad), {model.num_parameters()});
          },
          nb::arg("x"), nb::arg("coeff"),
          "Gradient of sum_i coeff[i] E(x_i) with respect to the flat parameters.");

  nb::class_<AnalyticEnergy, Energy>(m, "AnalyticEnergy",
                                     "Gaussian, DoubleWell, Harmonic, Rosenbrock, Ackley, "
                                     "Rastrigin with closed-form gradients.")
      .def_static(
          "gaussian",
          [](const AnyArray& mean, const AnyArray& covariance) {
            const FloatArray mu = as_vector(mean, "mean", -1);
            nb::ndarray<nb::ro> cov = covariance;
            // The covariance is inverted in double: keep float64 input exact.
            const int64_t d = mu.size();
            if (cov.ndim() != 2 || static_cast<int64_t>(cov.shape(0)) != d ||
                static_cast<int64_t>(cov.shape(1)) != d)
              throw InvalidArgument("cov must be (" + std::to_string(d) + ", " + std::to_string(d) +
                                    ") for a mean of " + std::to_string(d) + " values");
            std::vector<double> c(static_cast<std::size_t>(d * d));
            if (is_float64(cov.dtype()) && cov.device_type() == 1) {
              for (int64_t i = 0; i < d; ++i)
                for (int64_t j = 0; j < d; ++j)
                  c[i * d + j] =
                      static_cast<const double*>(cov.data())[i * cov.stride(0) + j * cov.stride(1)];
            } else {
              const FloatArray f(cov, "cov");
              for (int64_t i = 0; i < d * d; ++i) c[i] = f.data()[i];
            }
            return AnalyticEnergy::gaussian({mu.data(), mu.data() + d}, std::move(c));
          },
          nb::arg("mean"), nb::arg("cov"), "1/2 (x - mu)^T cov^-1 (x - mu)")
      .def_static("double_well", &AnalyticEnergy::double_well, nb::arg("dim"),
                  nb::arg("barrier_height") = 2.0f, nb::arg("b") = 1.0f)
      .def_static("harmonic", &AnalyticEnergy::harmonic, nb::arg("dim"), nb::arg("k") = 1.0f)
      .def_static("rosenbrock", &AnalyticEnergy::rosenbrock, nb::arg("dim"), nb::arg("a") = 1.0f,
                  nb::arg("b") = 100.0f)
      .def_static("ackley", &AnalyticEnergy::ackley, nb::arg("dim"), nb::arg("a") = 20.0f,
                  nb::arg("b") = 0.2f, nb::arg("c") = 6.28318530718f)
      .def_static("rastrigin", &AnalyticEnergy::rastrigin, nb::arg("dim"), nb::arg("a") = 10.0f)
      .def_static("by_name", &AnalyticEnergy::by_name, nb::arg("name"), nb::arg("dim"),
                  nb::arg("params") = std::map<std::string, double>{})
      .def_static("names", &AnalyticEnergy::names)
      .def_prop_ro("scalars", [](const AnalyticEnergy& e) {
        return std::vector<float>(e.scalars(), e.scalars() + 3);
      });

  m.def("activation_names", &activation_names, "The six activations' names.");
}

}  // namespace cuebm::python
