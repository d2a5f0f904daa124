// cuebm metrics: the 2-D metrics of a model and/or a samples file against a named dataset.
#include <cmath>
#include <cstdio>
#include <memory>

#include "common.hpp"
#include "cuebm/data/datasets.hpp"
#include "cuebm/runtime/error.hpp"
#include "cuebm/training/training.hpp"

namespace cuebm::cli {

Command add_metrics_command(CLI::App& app) {
  struct State {
    TrainConfig c;
    CommonOptions common;
    EnergySource source;
    std::string samples;
    std::vector<std::string> data_params;
    bool no_draw = false;
  };
  auto s = std::make_shared<State>();
  TrainConfig& c = s->c;
  c.figure_samples = 500;
  CLI::App* cmd = app.add_subcommand(
      "metrics",
      "The 2-D metrics of a model and/or a samples file against a dataset, as train reports "
      "them: log Z on a 400 x 400 grid over [-range, range]^2, test NLL, H(data) and KL at "
      "T = sigma^2 (model), MMD^2 and mode coverage (samples; with a model and no samples file, "
      "drawn from the model as train does). One 'name value' line each.");
  cmd->add_option("--model", s->source.model_path, "Model file (safetensors)");
  cmd->add_option("--activation", s->source.activation,
                  "The activation when the model file records none");
  cmd->add_option("--samples", s->samples, "Samples, an .npy file (n, 2)");
  cmd->add_flag("--no-draw", s->no_draw, "With --model and no --samples: draw no samples");
  cmd->add_option(
         "--dataset", c.dataset,
         "Dataset: " +
             [] {
               std::string names;
               for (const auto& n : dataset_names()) names += (names.empty() ? "" : ", ") + n;
               return names;
             }())
      ->capture_default_str();
  cmd->add_option("--data-param", s->data_params,
                  "Dataset parameter key=value, repeatable (default: the dataset's own "
                  "defaults; for gaussian_mixture the tutorial's n=500 components=4 std=0.1 "
                  "radius=1.5); given any, they override the dataset's own defaults");
  cmd->add_option("--data-seed", c.data_seed,
                  "Seed of the dataset (the test set uses a seed derived from it, as train)")
      ->capture_default_str();
  cmd->add_option("--noise-scale", c.noise_scale, "sigma: metrics at temperature sigma^2")
      ->capture_default_str();
  cmd->add_option("--step-size", c.step_size, "Step size of the drawn samples' chains")
      ->capture_default_str();
  at_least(cmd->add_option("--draw", c.figure_samples, "Samples drawn from the model")
               ->capture_default_str(),
           1);
  at_least(cmd->add_option("--steps", c.final_steps, "Langevin steps of the drawn samples")
               ->capture_default_str(),
           0);
  cmd->add_option("--range", c.plot_range, "Half-width of the grid box")->capture_default_str();
  add_common_options(cmd, &s->common, "Seed of the drawn samples' chains (as train's --seed)");
  return {cmd, [s]() {
            TrainConfig& c = s->c;
            if (s->source.model_path.empty() && s->samples.empty())
              throw InvalidArgument("metrics: give --model and/or --samples");
            if (!s->data_params.empty())
              c.dataset_params = parse_key_values(s->data_params, "--data-param");
            c.device = apply_common_options(s->common);
            c.seed = s->common.seed;
            if (!(c.noise_scale > 0) || !std::isfinite(c.noise_scale))
              throw InvalidArgument("metrics: --noise-scale must be finite and > 0");
            const std::unique_ptr<Energy> model = load_energy(s->source);
            std::vector<float> samples;
            if (!s->samples.empty()) {
              int64_t n = 0;
              samples = read_points(s->samples, 2, &n);
            } else if (model && !s->no_draw) {
              if (model->dim() != 2)
                throw InvalidArgument("metrics: the model must be 2-D, got dimension " +
                                      std::to_string(model->dim()));
              samples = final_model_samples(*model, c);
            }
            TrainReport r;
            compute_training_metrics(model.get(), samples, c, r);
            std::printf("temperature %.9g\n", r.temperature);
            if (model) {
              std::printf("log_z %.9g\ntest_nll %.9g\n", r.log_z, r.test_nll);
              if (std::isfinite(r.data_entropy))
                std::printf("data_entropy %.9g\nkl %.9g\n", r.data_entropy, r.kl);
            }
            if (!samples.empty()) {
              std::printf("samples %zu\nmmd2 %.9g\n", samples.size() / 2, r.mmd2);
              if (r.modes_covered >= 0) {
                std::printf("modes_covered %d\nmodes_total %d\nshare_near_mode %.9g\nmode_weights",
                            r.modes_covered, r.modes_total, r.share_near_mode);
                for (double w : r.mode_weights) std::printf(" %.6f", w);
                std::printf("\n");
              }
            }
            return kExitOk;
          }};
}

}  // namespace cuebm::cli
