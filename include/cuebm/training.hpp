// A whole training run as TorchEBM's Gaussian-mixture tutorial does it: a dataset, epochs of
// CD updates, figures of the learned density and the final metrics. The example trainer and
// the cuebm command both drive it.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "cuebm/cd.hpp"
#include "cuebm/device.hpp"
#include "cuebm/mlp.hpp"

namespace cuebm {

struct TrainConfig {
  // Data: the tutorial's GaussianMixture(n = 500, K = 4, std = 0.1, radius = 1.5, seed = 42).
  std::string dataset = "gaussian_mixture";
  std::map<std::string, double> dataset_params = {
      {"n", 500}, {"components", 4}, {"std", 0.1}, {"radius", 1.5}};
  uint64_t data_seed = 42;
  // Model, sampler and optimiser: the tutorial's defaults.
  MlpSpec model;  // 2-64-64-1 ReLU
  int epochs = 200;
  int64_t batch_size = 256;
  bool drop_last = true;
  float step_size = 0.1f, noise_scale = 0.1f;
  CDOptions cd;  // k = 10, non-persistent
  AdamOptions adam;
  float max_grad_norm = 1.0f;
  uint64_t seed = 0;  // parameters, noise, shuffling
  // Figures: epoch 1, every figure_every epochs and the end; "" disables all output files.
  std::string output_dir = "out";
  int figure_every = 20;
  int figure_samples = 500;
  int figure_steps = 200, final_steps = 500;
  double plot_range = 2.5;
  int grid_points = 100;
  Device device = Device::cpu();
  int threads = 0;  // 0: leave OpenMP's default
  int log_every = 1;
};

struct TrainReport {
  std::vector<double> epoch_loss;
  int64_t iterations = 0, skipped = 0;
  double train_seconds = 0;  // CD iterations only (no figures, no metrics)
  std::vector<float> final_samples;
  std::vector<std::string> files;  // written, in order
  // Metrics of the final model (metrics.hpp); NaN where not applicable.
  double temperature = 0, log_z = 0, test_nll = 0, data_entropy = 0, kl = 0, mmd2 = 0;
  int modes_covered = -1, modes_total = 0;
  double share_near_mode = 0;
  std::vector<double> mode_weights;
};

// Throws InvalidArgument (naming the value) before any work when the config is invalid or the
// output folder cannot be written.
void validate_train_config(const TrainConfig& config);
// Runs the whole thing; log receives the lines the tutorial prints.
TrainReport run_training(const TrainConfig& config,
                         const std::function<void(const std::string&)>& log);

}  // namespace cuebm
