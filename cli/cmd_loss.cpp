// cuebm loss: a score-matching loss of a model file on a batch of points, and its parameter
// gradient with PyTorch's names, so both can be compared with PyTorch's from outside.
#include <cinttypes>
#include <cstdio>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common.hpp"
#include "cuebm/io/safetensors.hpp"
#include "cuebm/runtime/error.hpp"
#include "cuebm/training/score_matching.hpp"

namespace cuebm::cli {

Command add_loss_command(CLI::App& app) {
  struct State {
    CommonOptions common;
    std::string model, activation, data, grad_out;
    std::string loss = "sm", hessian = "exact", projection = "rademacher", dsm_sign = "correct";
    ScoreLossOptions options;
    uint64_t iteration = 0;
  };
  auto s = std::make_shared<State>();
  CLI::App* cmd = app.add_subcommand(
      "loss",
      "A score-matching loss (TorchEBM 0.3.17's ScoreMatching, SlicedScoreMatching, "
      "DenosingScoreMatching) of a model file on the points of an .npy file, and its gradient in "
      "the model's parameters: prints the loss (the batch mean, %.17g) and writes the gradient as "
      "a safetensors file with the model's PyTorch names (network.0.weight, ...). Random draws "
      "(projections, noise) are keyed by --seed, --iteration and the row, as in cuebm train.");
  cmd->add_option("--model", s->model, "Model file (safetensors, PyTorch state_dict names)")
      ->required();
  cmd->add_option("--activation", s->activation,
                  "The activation when the model file records none (relu, silu, tanh, softplus, "
                  "leaky_relu, gelu)");
  cmd->add_option("-i,--data", s->data, "The batch: an .npy file of points (n, D)")->required();
  cmd->add_option("--loss", s->loss,
                  "sm (exact score matching), ssm (sliced score matching) or dsm (denoising "
                  "score matching)")
      ->check(CLI::IsMember({"sm", "ssm", "dsm"}))
      ->capture_default_str();
  cmd->add_option("--hessian", s->hessian,
                  "sm: exact or torchebm_approx (TorchEBM's estimate, off by the factor D)")
      ->check(CLI::IsMember({"exact", "torchebm_approx"}))
      ->capture_default_str();
  at_least(
      cmd->add_option("--projections", s->options.n_projections, "ssm: random projections per row")
          ->capture_default_str(),
      1);
  cmd->add_option("--projection", s->projection, "ssm: rademacher, sphere or gaussian")
      ->check(CLI::IsMember({"rademacher", "sphere", "gaussian"}))
      ->capture_default_str();
  cmd->add_option("--dsm-noise", s->options.noise_scale, "dsm: the noise scale sigma (> 0)")
      ->capture_default_str();
  cmd->add_option("--dsm-sign", s->dsm_sign, "dsm: correct (default) or torchebm (TorchEBM's)")
      ->check(CLI::IsMember({"correct", "torchebm"}))
      ->capture_default_str();
  cmd->add_option("--sm-reg", s->options.regularization_strength,
                  "Weight lambda of lambda mean |dE/dx|^2 (>= 0)")
      ->capture_default_str();
  cmd->add_option("--iteration", s->iteration,
                  "The training iteration whose draws to use (cuebm train's iteration count)")
      ->capture_default_str();
  cmd->add_option("-g,--grad-out", s->grad_out,
                  "Write the parameter gradient here (safetensors, the model's PyTorch names and "
                  "shapes, float32), atomically");
  add_common_options(cmd, &s->common, "Seed of the random draws (cuebm train's --seed)");
  return {cmd, [s]() {
            const Device device = apply_common_options(s->common);
            ScoreLossOptions o = s->options;
            o.kind = parse_score_loss_kind(s->loss);
            o.hessian_method = parse_hessian_method(s->hessian);
            o.projection_type = parse_projection_type(s->projection);
            o.denoising_sign = parse_denoising_sign(s->dsm_sign);
            o.seed = s->common.seed;
            validate_score_loss_options(o);
            std::optional<Activation> act;
            if (!s->activation.empty()) act = parse_activation(s->activation);
            const Mlp model = load_mlp(s->model, act);
            int64_t n = 0;
            const std::vector<float> x = read_points(s->data, model.dim(), &n);
            ScoreLoss loss(model.spec(), o, n, device);
            std::vector<float> grad(model.num_parameters());
            const double value = loss.evaluate(model, x.data(), n, s->iteration, grad.data());
            if (!s->grad_out.empty()) {
              // The gradient in the model's layout: its state_dict's names and shapes.
              Mlp as_grad = model;
              std::copy(grad.begin(), grad.end(), as_grad.parameters().begin());
              char loss_text[64];
              std::snprintf(loss_text, sizeof loss_text, "%.17g", value);
              std::map<std::string, std::string> meta = mlp_metadata(model);
              meta["cuebm.gradient_of"] = score_loss_kind_name(o.kind);
              meta["cuebm.loss"] = loss_text;
              meta["cuebm.iteration"] = std::to_string(s->iteration);
              meta["cuebm.seed"] = std::to_string(o.seed);
              meta["cuebm.rows"] = std::to_string(n);
              write_safetensors(s->grad_out, mlp_state_dict(as_grad), meta);  // atomic
            }
            std::printf("loss %s\nvalue %.17g\nrows %" PRId64 "\niteration %" PRIu64
                        "\nseed %" PRIu64 "\ndevice %s\n",
                        score_loss_kind_name(o.kind).c_str(), value, n, s->iteration, o.seed,
                        device.to_string().c_str());
            if (!s->grad_out.empty()) std::printf("wrote %s\n", s->grad_out.c_str());
            return kExitOk;
          }};
}

}  // namespace cuebm::cli
