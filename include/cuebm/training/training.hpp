// A whole training run as TorchEBM's Gaussian-mixture tutorial does it: a dataset, epochs of
// CD (or score-matching) updates, figures of the learned density and the final metrics. The
// example trainer and the cuebm command both drive it.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "cuebm/models/mlp.hpp"
#include "cuebm/runtime/device.hpp"
#include "cuebm/training/cd.hpp"
#include "cuebm/training/checkpoint.hpp"

namespace cuebm {

struct TrainConfig {
  // The recipe (recipe_settings): "tutorial" (the default: the settings below as they are) or
  // "auto", per-dataset defaults from docs/quality.md that learn every dataset at the
  // tutorial's cost. A recipe's setting applies only where the config still holds the
  // tutorial's value and the setting is not in explicit_settings, so the precedence is: a
  // value set on purpose (a flag, a config-file key, a non-tutorial value in code) > the
  // recipe > the tutorial's default. run_training and the functions below resolve it
  // (resolve_recipe).
  std::string recipe = "tutorial";
  // Recipe settings the caller chose on purpose by their flag names ("energy-reg", "sampler",
  // "hidden"), kept even where they equal the tutorial's value (cuebm train fills it with the
  // flags and config keys given).
  std::set<std::string> explicit_settings;
  // Data: a dataset of datasets.hpp by name. Empty dataset_params give that dataset's own
  // defaults (datasets.hpp), except gaussian_mixture, whose default is the tutorial's
  // GaussianMixture(n = 500, K = 4, std = 0.1, radius = 1.5) (resolved_dataset_params).
  // Params, when given, override the dataset's own defaults (make_dataset), not the tutorial's.
  std::string dataset = "gaussian_mixture";
  std::map<std::string, double> dataset_params;
  uint64_t data_seed = 42;
  // Model, sampler and optimiser: the tutorial's defaults.
  MlpSpec model;  // 2-64-64-1 ReLU
  int epochs = 200;
  int64_t batch_size = 256;  // cut to the dataset's size when larger (with a log line)
  bool drop_last = true;
  float step_size = 0.1f, noise_scale = 0.1f;
  // The negatives' sampler (cd.hpp's NegativeSampler: langevin, the default, mala, hmc or
  // tempering) and its settings. Every one targets exp(-E / noise_scale^2), so the metrics and
  // figures (Langevin chains at step_size, noise_scale) mean the same whichever one trained.
  NegativeSamplerOptions negatives;
  CDOptions cd;  // k = 10, non-persistent
  // The loss (cd.hpp's TrainingLoss): cd (the default) or the score-matching losses sm, ssm and
  // dsm with their settings (score.kind follows loss; score.seed is set to seed). A
  // score-matching run has no negatives: negatives and cd do not apply (a sampler other than
  // Langevin or persistent CD with one is refused). Its model means exp(-E) (T = 1), so the
  // metrics and the figures' samples are taken at T = 1: Langevin chains with noise scale 1
  // and step size step_size * noise_scale^2, which is CD's Langevin step on the log-density
  // scale (a CD model E at T = sigma^2 is the density exp(-E / sigma^2)).
  TrainingLoss loss = TrainingLoss::cd;
  ScoreLossOptions score;
  AdamOptions adam;
  float max_grad_norm = 1.0f;
  uint64_t seed = 0;  // parameters, noise, shuffling
  // Figures: epoch 1, every figure_every epochs and the end; "" disables all output files.
  std::string output_dir = "out";
  int figure_every = 20;
  int figure_samples = 500;
  int figure_steps = 200, final_steps = 500;
  // Half-width of the figures' and the metrics' box [-r, r]^2; 0 (the default):
  // default_plot_range, which follows the dataset's extent.
  double plot_range = 0;
  int grid_points = 100;
  Device device = Device::cpu();
  int threads = 0;  // 0: leave OpenMP's default
  int log_every = 1;
  // Checkpoints (checkpoint.hpp): with a path, written after every checkpoint_every epochs
  // (0: only after the last epoch) and after the last epoch, atomically.
  std::string checkpoint_path;
  int checkpoint_every = 0;
  // A checkpoint to continue from: the run picks up after its epoch and ends with the same
  // parameters, losses and samples as the uninterrupted run, bit for bit. Its training
  // settings (training_fingerprint) must equal this config's; epochs may be larger.
  std::string resume_from;
  // When not empty, the final model is written there (safetensors.hpp, save_mlp).
  std::string model_path;
  // When not empty, a JSON report of the run is written there atomically: settings, epoch
  // losses, iterations, metrics, files and the divergence verdict ("diverged", "divergence").
  std::string report_path;
};

// The dataset parameters a run uses: config.dataset_params, or when empty the tutorial's
// {n: 500, components: 4, std: 0.1, radius: 1.5} for gaussian_mixture and {} (the dataset's
// own defaults) for every other dataset.
std::map<std::string, double> resolved_dataset_params(const TrainConfig& config);

// Where a run is, reported after every CD iteration.
struct TrainProgress {
  int epoch = 0, epochs = 0;       // epoch in 1..epochs
  int64_t batch = 0, batches = 0;  // batches done in this epoch, of batches
  int64_t iteration = 0;           // iterations done in this run (resumed ones included)
  int64_t total_iterations = 0;    // at the end of the run
  int64_t first_iteration = 0;     // iteration when this process started (resume)
  double loss = 0;                 // of the last step (NaN when skipped)
};

struct TrainReport {
  std::vector<double> epoch_loss;
  // The mean acceptance rate of each epoch's negatives (StepStats::acceptance over the epoch's
  // updates); NaN for Langevin.
  std::vector<double> epoch_acceptance;
  int64_t iterations = 0, skipped = 0;
  double train_seconds = 0;  // CD iterations only (no figures, no metrics)
  std::vector<float> final_samples;
  std::vector<std::string> files;  // written, in order
  // Metrics of the final model (metrics.hpp); NaN where not applicable. temperature: the one
  // the loss implies (training_temperature), which temperature_source names.
  double temperature = 0, log_z = 0, test_nll = 0, data_entropy = 0, kl = 0, mmd2 = 0;
  std::string temperature_source;
  int modes_covered = -1, modes_total = 0;
  double share_near_mode = 0;
  std::vector<double> mode_weights;
  std::vector<float> final_parameters;  // the trained model's, flat (Mlp::parameters())
  int first_epoch = 1;                  // > 1 when resumed from a checkpoint
  // Divergence, checked once per epoch at no extra pass over the data: the last batch's
  // negatives are not finite or leave the data's range (max |coordinate|, floored at 1) by a
  // factor of more than kDivergedRangeFactor, or the epoch's mean loss exceeds kDivergedLoss
  // in magnitude (score matching, which has no negatives: the loss alone; for dsm the limit is
  // kDivergedLoss times max(1, d / (2 sigma^2)), the mean of its noise term). The run still
  // finishes (it is not an error). divergence names the first such epoch and the reason, e.g. "at
  // epoch 1: the negatives reach |x| = 1.83e+08 while the data lie within |x| <= 1.81 (Langevin
  // step size 1e+09; a smaller step size or lr may help)". Checked from the first epoch this
  // process runs (a resumed run starts afresh).
  //
  // After the run the final metrics are checked too (when no epoch diverged): a run whose
  // energy scale ran away while its negatives stayed in the data's box (docs/quality.md: CD
  // with Langevin steps too large for the data's modes) has a test NLL far above that of the
  // flat density on the metric box, log(box area) (>= H(data) for data inside the box). The
  // verdict: log Z or the test NLL not finite, or the test NLL more than kDivergedNllExcess
  // nats above log(box area); divergence then starts "at the end: ". The warning line goes out
  // at the end of the run.
  bool diverged = false;
  std::string divergence;
  // The recipe and what it set (resolve_recipe), flag name -> value ("sampler" -> "mala").
  std::string recipe;
  std::map<std::string, std::string> recipe_applied;
  double plot_range = 0;  // the box's half-width used (resolved_plot_range)
};

// Divergence thresholds (TrainReport::diverged).
inline constexpr double kDivergedRangeFactor = 100.0;
inline constexpr double kDivergedLoss = 1e6;
// From docs/quality.md's table (2000 iterations, every dataset and recipe): every run it marks
// diverged has a test NLL at least 14.5 nats above log(box area) (checkerboard's pcd: 18.93
// against log 81 = 4.39; swiss_roll's ssm: 21.64 against log 25 = 3.22), every other run at most
// 5.2 (checkerboard's mala: 9.54). 10 lies in between, with about 5 nats either side. log Z
// itself is no test: CD's loss does not fix the energy's offset, which moves log Z by offset / T.
inline constexpr double kDivergedNllExcess = 10.0;

// The settings a recipe gives for a dataset (flag name -> value): "tutorial" none; "auto"
// {"energy-reg": "1"} for gaussian_mixture, {"energy-reg": "1", "sampler": "mala", "hidden":
// "128 128"} for grid and {"energy-reg": "1", "sampler": "mala"} for every other dataset.
// Throws InvalidArgument for an unknown recipe.
std::map<std::string, std::string> recipe_settings(const std::string& recipe,
                                                   const std::string& dataset);
std::vector<std::string> recipe_names();  // tutorial, auto
// config with its recipe's settings applied (see TrainConfig::recipe); `applied` (may be null)
// receives the ones applied. Idempotent. The "auto" recipe sets CD's settings: with a
// score-matching loss it throws InvalidArgument.
TrainConfig resolve_recipe(const TrainConfig& config,
                           std::map<std::string, std::string>* applied = nullptr);

// The box half-width of the figures and metrics when plot_range is 0: the smallest multiple of
// 0.5 that holds dataset_extent (datasets.hpp), and at least the tutorial's 2.5. The defaults
// give 2.5 for every dataset but checkerboard (4.5: its data span [-4, 4]^2).
double default_plot_range(const std::string& dataset, const std::map<std::string, double>& params);
// config.plot_range, or default_plot_range of its dataset when 0.
double resolved_plot_range(const TrainConfig& config);

// The settings a checkpoint must agree on to be resumed (dataset, model, batches, loss,
// sampler, CD, optimiser, seeds), as key -> text. "loss" names the loss: for cd it is followed
// by "sampler", the negatives' sampler, with its own settings (hmc_step_size, leapfrog, mass;
// replicas, t_max, swap_every) and the CD settings; for sm, ssm and dsm by theirs instead
// ("hessian"; "projections", "projection"; "dsm_noise", "dsm_sign"; and "sm_reg"). A
// checkpoint written before losses were an option has no "loss" and counts as "cd"; one
// written before samplers were an option has no "sampler" and counts as "langevin".
std::map<std::string, std::string> training_fingerprint(const TrainConfig& config);

// Throws InvalidArgument (naming the value) before any work when the config is invalid or the
// output folder cannot be written.
void validate_train_config(const TrainConfig& config);
// Runs the whole thing (config's recipe resolved first: resolve_recipe); log receives the lines
// the tutorial prints. When the run diverges (TrainReport::diverged), one line "WARNING:
// training diverged <reason>" goes to stderr, when it is found (an epoch, or the final metrics
// at the end), and the run goes on to the end.
TrainReport run_training(const TrainConfig& config,
                         const std::function<void(const std::string&)>& log);
// The same, with `progress` called after every CD iteration (may be empty) and the divergence
// warning line given to `warn` instead of stderr (when not empty).
TrainReport run_training(const TrainConfig& config,
                         const std::function<void(const std::string&)>& log,
                         const std::function<void(const TrainProgress&)>& progress,
                         const std::function<void(const std::string&)>& warn = {});

// The lines a trainer prints at the end of a run: iterations and time, the metrics, the modes,
// the divergence warning when the run diverged, and the files written; each ends in '\n'.
std::string training_summary(const TrainReport& report);

// Reads config.resume_from and checks that it fits config (training_fingerprint, epoch <=
// epochs); throws IoError / InvalidArgument naming the file and the differences.
Checkpoint read_resume_checkpoint(const TrainConfig& config);

// The temperature T of the trained model's density exp(-E / T): noise_scale^2 for cd, 1 for
// the score-matching losses; and words naming where it comes from ("sigma^2: CD's sampler
// targets exp(-E / sigma^2)", "score matching (ssm) trains exp(-E)").
double training_temperature(const TrainConfig& config);
std::string training_temperature_source(const TrainConfig& config);

// The final samples run_training draws from the trained model: figure_samples chains of
// final_steps Langevin steps from N(0, I) at training_temperature, keyed by the seed: CD's
// (step_size, noise_scale), score matching's (step_size * noise_scale^2, 1).
std::vector<float> final_model_samples(const Energy& model, const TrainConfig& config);

// The final metrics run_training reports, for `model` against config's dataset (a test set
// drawn with data_seed ^ a fixed salt) at T = training_temperature(config), and for `samples`
// (n x 2; may be empty: no MMD or mode metrics). Writes temperature, temperature_source, log_z,
// test_nll, data_entropy, kl, mmd2 and the mode fields of `report`; model may be null (model
// metrics then NaN).
void compute_training_metrics(const Energy* model, const std::vector<float>& samples,
                              const TrainConfig& config, TrainReport& report);

}  // namespace cuebm
