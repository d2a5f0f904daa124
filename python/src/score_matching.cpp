// Score-matching losses (cuebm::ScoreLoss: exact/approx, sliced and denoising score matching)
// of an MLP energy: the loss on a batch and, on request, its gradient in the parameters.
#include <nanobind/stl/string.h>

#include <span>
#include <string>
#include <vector>

#include "arrays.hpp"
#include "bindings.hpp"
#include "cuebm/models/mlp.hpp"
#include "cuebm/training/score_matching.hpp"
#include "interrupt.hpp"
#include "options.hpp"

namespace cuebm::python {
namespace {

ScoreLossOptions score_options(const std::string& kind, const std::string& hessian_method,
                               int n_projections, const std::string& projection_type,
                               float noise_scale, const std::string& denoising_sign,
                               float regularization_strength, uint64_t seed) {
  const ScoreLossOptions o = score_loss_options(
      hessian_method, n_projections, projection_type, noise_scale, denoising_sign,
      regularization_strength, parse_score_loss_kind(kind), seed);
  validate_score_loss_options(o);
  return o;
}

// The loss (a float) or (loss, gradient) of the parameters `Params` (an Mlp or the flat
// parameters) at the rows of x.
template <class Params>
nb::object evaluate(ScoreLoss& loss, const Params& params, const AnyArray& x, uint64_t iteration,
                    bool gradient) {
  const FloatArray rows = as_rows(x, "x", loss.spec().input_dim);
  std::vector<float> grad(gradient ? loss.num_parameters() : 0);
  const double value = without_gil([&] {
    return loss.evaluate(params, rows.data(), rows.shape(0), iteration,
                         gradient ? grad.data() : nullptr);
  });
  if (!gradient) return nb::float_(value);
  const std::size_t p = grad.size();
  return nb::make_tuple(value, to_numpy(std::move(grad), {p}));
}

}  // namespace

void bind_score_matching(nb::module_& m) {
  nb::class_<ScoreLoss>(m, "ScoreLoss",
                        "A score-matching loss of one MLP shape (cuebm::ScoreLoss): sm (exact "
                        "or TorchEBM-approx Hessian trace), ssm (sliced) or dsm (denoising); the "
                        "batch mean and its parameter gradient in PyTorch's order.")
      .def(
          "__init__",
          [](ScoreLoss* self, const Mlp& model, const std::string& kind,
             const std::string& hessian_method, int n_projections,
             const std::string& projection_type, float noise_scale,
             const std::string& denoising_sign, float regularization_strength, uint64_t seed,
             int64_t max_rows, const std::string& device) {
            new (self)
                ScoreLoss(model.spec(),
                          score_options(kind, hessian_method, n_projections, projection_type,
                                        noise_scale, denoising_sign, regularization_strength, seed),
                          max_rows, parse_device(device));
          },
          nb::arg("model"), nb::arg("kind") = "sm", nb::arg("hessian_method") = "exact",
          nb::arg("n_projections") = 5, nb::arg("projection_type") = "rademacher",
          nb::arg("noise_scale") = 0.01f, nb::arg("denoising_sign") = "correct",
          nb::arg("regularization_strength") = 0.0f, nb::arg("seed") = 0, nb::arg("max_rows") = 0,
          nb::arg("device") = "cpu",
          "The loss for models of `model`'s shape (its parameters are read at each call).")
      .def_prop_ro("kind",
                   [](const ScoreLoss& l) { return score_loss_kind_name(l.options().kind); })
      .def_prop_ro(
          "hessian_method",
          [](const ScoreLoss& l) { return hessian_method_name(l.options().hessian_method); })
      .def_prop_ro("n_projections", [](const ScoreLoss& l) { return l.options().n_projections; })
      .def_prop_ro(
          "projection_type",
          [](const ScoreLoss& l) { return projection_type_name(l.options().projection_type); })
      .def_prop_ro("noise_scale", [](const ScoreLoss& l) { return l.options().noise_scale; })
      .def_prop_ro(
          "denoising_sign",
          [](const ScoreLoss& l) { return denoising_sign_name(l.options().denoising_sign); })
      .def_prop_ro("regularization_strength",
                   [](const ScoreLoss& l) { return l.options().regularization_strength; })
      .def_prop_ro("seed", [](const ScoreLoss& l) { return l.options().seed; })
      .def_prop_ro("num_parameters", &ScoreLoss::num_parameters)
      .def(
          "evaluate",
          [](ScoreLoss& loss, const Mlp& model, const AnyArray& x, uint64_t iteration,
             bool gradient) { return evaluate(loss, model, x, iteration, gradient); },
          nb::arg("model"), nb::arg("x"), nb::arg("iteration") = 0, nb::arg("gradient") = false,
          "The loss of model at the (n, dim) rows x with the draws of `iteration`; with "
          "gradient=True, (loss, dloss/dparameters) with the parameters in state_dict order.")
      .def(
          "evaluate_parameters",
          [](ScoreLoss& loss, const AnyArray& params, const AnyArray& x, uint64_t iteration,
             bool gradient) {
            const FloatArray p =
                as_vector(params, "params", static_cast<int64_t>(loss.num_parameters()));
            const std::span<const float> values(p.data(), static_cast<std::size_t>(p.size()));
            return evaluate(loss, values, x, iteration, gradient);
          },
          nb::arg("params"), nb::arg("x"), nb::arg("iteration") = 0, nb::arg("gradient") = false,
          "As evaluate, for the flat parameter vector params (state_dict order).");
}

}  // namespace cuebm::python
