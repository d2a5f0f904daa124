// cuebm metrics: the 2-D metrics of a model and/or a samples file against a named dataset, and
// log Z and the NLL of test points by annealed importance sampling for a model of any dimension.
#include <cmath>
#include <cstdio>
#include <memory>

#include "common.hpp"
#include "cuebm/data/datasets.hpp"
#include "cuebm/data/metrics.hpp"
#include "cuebm/runtime/error.hpp"
#include "cuebm/sampling/ais.hpp"
#include "cuebm/training/training.hpp"

namespace cuebm::cli {
namespace {

// The mean of E(x) / T over the points and its standard error.
struct MeanEnergy {
  double mean = 0, std_error = 0;
};
MeanEnergy mean_scaled_energy(const Energy& model, const std::vector<float>& x, int64_t n,
                              double temperature) {
  std::vector<float> e(n);
  model.energy(x.data(), n, e.data());
  double sum = 0, sum2 = 0;
  for (float v : e) {
    const double u = v / temperature;
    sum += u;
    sum2 += u * u;
  }
  MeanEnergy m;
  m.mean = sum / static_cast<double>(n);
  if (n > 1)
    m.std_error =
        std::sqrt(std::max(0.0, (sum2 - n * m.mean * m.mean) / (n - 1)) / static_cast<double>(n));
  if (!std::isfinite(m.mean))
    throw NumericalError("metrics: the model's energy of the test points is not finite");
  return m;
}

}  // namespace

Command add_metrics_command(CLI::App& app) {
  struct State {
    TrainConfig c;
    CommonOptions common;
    EnergySource source;
    std::string samples;
    std::vector<std::string> data_params;
    bool no_draw = false;
    std::string test_data;
    std::string logz = "auto";
    AisOptions ais;
  };
  auto s = std::make_shared<State>();
  TrainConfig& c = s->c;
  c.figure_samples = 500;
  CLI::App* cmd = app.add_subcommand(
      "metrics",
      "The 2-D metrics of a model and/or a samples file against a dataset, as train reports "
      "them: log Z on a 400 x 400 grid over [-range, range]^2, test NLL, H(data) and KL at "
      "T = sigma^2 (model), MMD^2 and mode coverage (samples; with a model and no samples file, "
      "drawn from the model as train does). For a model of another dimension, or with --logz "
      "ais: log Z at T = sigma^2 by annealed importance sampling (as cuebm logz) with its "
      "standard error, and with --test-data the NLL of those points. One 'name value' line "
      "each.");
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
  cmd->add_option("--range", c.plot_range,
                  "Half-width of the grid box (default: the dataset's, as train: 2.5, checkerboard "
                  "4.5)");
  cmd->add_option("--test-data", s->test_data,
                  "Test points, an .npy file (n, D) of the model's dimension: their NLL "
                  "(test_data_nll) under the model at T = sigma^2");
  cmd->add_option("--logz", s->logz,
                  "How log Z is computed: grid (2-D models only), ais, or auto (grid in 2-D, "
                  "ais otherwise)")
      ->check(CLI::IsMember({"auto", "grid", "ais"}))
      ->capture_default_str();
  at_least(cmd->add_option("--ais-steps", s->ais.n_temperatures, "AIS intermediate temperatures")
               ->capture_default_str(),
           1);
  at_least(cmd->add_option("--ais-chains", s->ais.n_chains, "AIS chains")->capture_default_str(),
           2);
  cmd->add_option("--ais-step-size", s->ais.step_size, "AIS MALA step size")->capture_default_str();
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
            const int dim = model ? model->dim() : 2;
            std::vector<float> test;
            int64_t n_test = 0;
            if (!s->test_data.empty()) {
              if (!model) throw InvalidArgument("metrics: --test-data needs --model");
              test = read_points(s->test_data, dim, &n_test);
            }
            if (s->logz == "grid" && dim != 2)
              throw InvalidArgument("metrics: --logz grid needs a 2-D model, got dimension " +
                                    std::to_string(dim) + ": use --logz ais");
            if (model && (s->logz == "ais" || dim != 2)) {
              if (!s->samples.empty())
                throw InvalidArgument(
                    "metrics: --samples are compared with a 2-D dataset; with --logz ais or a "
                    "model of dimension " +
                    std::to_string(dim) + " give --test-data instead");
              AisOptions o = s->ais;
              o.temperature = static_cast<double>(c.noise_scale) * c.noise_scale;
              o.seed = c.seed;
              const AisResult a = ais_log_partition(*model, o, c.device);
              std::printf(
                  "temperature %.9g\nlogz_method ais\nlog_z %.9g\nlog_z_se %.9g\n"
                  "ais_ess %.9g\nais_acceptance %.9g\n",
                  o.temperature, a.log_z, a.std_error, a.ess, a.acceptance);
              if (!test.empty()) {
                const MeanEnergy m = mean_scaled_energy(*model, test, n_test, o.temperature);
                std::printf("test_data_nll %.9g\ntest_data_nll_se %.9g\n", m.mean + a.log_z,
                            std::hypot(m.std_error, a.std_error));
              }
              return kExitOk;
            }
            std::vector<float> samples;
            if (!s->samples.empty()) {
              int64_t n = 0;
              samples = read_points(s->samples, 2, &n);
            } else if (model && !s->no_draw) {
              samples = final_model_samples(*model, c);
            }
            TrainReport r;
            compute_training_metrics(model.get(), samples, c, r);
            std::printf("temperature %.9g\n", r.temperature);
            if (model) {
              std::printf("logz_method grid\nlog_z %.9g\ntest_nll %.9g\n", r.log_z, r.test_nll);
              if (!test.empty())
                std::printf("test_data_nll %.9g\n",
                            mean_scaled_energy(*model, test, n_test, r.temperature).mean + r.log_z);
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
