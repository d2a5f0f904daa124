#include "cuebm/training.hpp"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "cuebm/datasets.hpp"
#include "cuebm/error.hpp"
#include "cuebm/figure.hpp"
#include "cuebm/langevin.hpp"
#include "cuebm/metrics.hpp"
#include "cuebm/npy.hpp"

namespace cuebm {
namespace {

// Seeds of the figure and metric chains, apart from the training noise (seed itself).
constexpr uint64_t kFigureSeedSalt = 0x5EED0F16ull;
constexpr uint64_t kTestDataSeedSalt = 0x7E57DA7Aull;

std::string format(const char* fmt, double a, double b = 0, double c = 0) {
  char buf[256];
  std::snprintf(buf, sizeof buf, fmt, a, b, c);
  return buf;
}

void require_writable_dir(const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec || !fs::is_directory(dir))
    throw InvalidArgument("output folder '" + dir + "' cannot be created: " +
                          (ec ? ec.message() : std::string("not a directory")));
  const fs::path probe = fs::path(dir) / ".cuebm-write-test";
  {
    std::ofstream f(probe);
    if (!f) throw InvalidArgument("output folder '" + dir + "' cannot be written");
  }
  fs::remove(probe, ec);
}

LangevinOptions sampler_options(const TrainConfig& c) {
  LangevinOptions o;
  o.step_size = c.step_size;
  o.noise_scale = c.noise_scale;
  o.seed = c.seed;
  return o;
}

std::vector<float> model_samples(const Mlp& model, const TrainConfig& c, int steps,
                                 uint64_t salt) {
  LangevinOptions o = sampler_options(c);
  o.n_steps = steps;
  o.seed = c.seed ^ (kFigureSeedSalt + salt);
  return langevin_sample(model, nullptr, c.figure_samples, o, c.device).samples;
}

Grid2D plot_grid(const TrainConfig& c) {
  return {-c.plot_range, c.plot_range, -c.plot_range, c.plot_range, c.grid_points,
          c.grid_points};
}

void write_figure(const Mlp& model, const TrainConfig& c, const Dataset& data,
                  const std::vector<float>& samples, const std::string& title,
                  const std::string& path) {
  const Grid2D grid = plot_grid(c);
  const std::vector<float> pts = grid_points(grid);
  std::vector<float> e(pts.size() / 2);
  model.energy(pts.data(), static_cast<int64_t>(e.size()), e.data());
  // exp(-E) normalised to max 1, as the tutorial draws it.
  float e_min = INFINITY;
  for (float v : e) e_min = std::min(e_min, v);
  DensityFigure fig;
  fig.title = title;
  fig.xmin = grid.xmin, fig.xmax = grid.xmax, fig.ymin = grid.ymin, fig.ymax = grid.ymax;
  fig.nx = grid.nx, fig.ny = grid.ny;
  fig.density.resize(e.size());
  for (std::size_t i = 0; i < e.size(); ++i) fig.density[i] = std::exp(-(e[i] - e_min));
  fig.data = data.points;
  fig.samples = samples;
  write_density_png(fig, path);
}

std::vector<float> mode_centres(const TrainConfig& c, int* k, double* std) {
  const auto get = [&](const char* key, double fallback) {
    const auto it = c.dataset_params.find(key);
    return it == c.dataset_params.end() ? fallback : it->second;
  };
  if (c.dataset == "gaussian_mixture") {
    *k = static_cast<int>(get("components", 8));
    *std = get("std", 0.05);
    return gaussian_mixture_centres(*k, static_cast<float>(get("radius", 1.0)));
  }
  if (c.dataset == "eight_gaussians") {
    *k = 8;
    *std = get("std", 0.02);
    return eight_gaussians_centres(static_cast<float>(get("scale", 2.0)));
  }
  *k = 0;
  return {};
}

void compute_metrics(const Mlp& model, const TrainConfig& c, TrainReport& r) {
  r.temperature = static_cast<double>(c.noise_scale) * c.noise_scale;
  const BatchEnergyFn energy = [&](const float* xy, int64_t n, float* e) {
    model.energy(xy, n, e);
  };
  // A box holding the data with margin, fine enough for the tutorial's std 0.1 modes.
  Grid2D grid = plot_grid(c);
  grid.nx = grid.ny = 400;
  r.log_z = grid_log_partition(energy, grid, r.temperature);
  const Dataset test = make_dataset(c.dataset, c.dataset_params, c.data_seed ^ kTestDataSeedSalt);
  r.test_nll = test_nll(energy, test.points.data(), test.n, grid, r.temperature);
  int k = 0;
  double std = 0;
  const std::vector<float> centres = mode_centres(c, &k, &std);
  r.data_entropy = k > 0 ? mixture_entropy_2d(k, std) : NAN;
  r.kl = r.test_nll - r.data_entropy;
  const int64_t m = static_cast<int64_t>(r.final_samples.size() / 2);
  r.mmd2 = mmd2_rbf(r.final_samples.data(), m, test.points.data(), std::min<int64_t>(test.n, 2000),
                    2);
  if (k > 0) {
    const ModeReport modes = mode_report(r.final_samples.data(), m, centres.data(), k, std);
    r.modes_covered = modes.covered;
    r.modes_total = modes.total;
    r.share_near_mode = modes.share_near_mode;
    r.mode_weights = modes.weights;
  }
}

}  // namespace

void validate_train_config(const TrainConfig& c) {
  validate_mlp_spec(c.model);
  if (c.model.input_dim != 2)
    throw InvalidArgument("training: the datasets are 2-D, so the model input must be 2, got " +
                          std::to_string(c.model.input_dim));
  if (c.epochs < 1) throw InvalidArgument("training: epochs must be >= 1, got " +
                                          std::to_string(c.epochs));
  if (c.batch_size < 1)
    throw InvalidArgument("training: batch size must be >= 1, got " +
                          std::to_string(c.batch_size));
  if (!(c.step_size > 0) || !std::isfinite(c.step_size))
    throw InvalidArgument("training: step size must be finite and > 0, got " +
                          std::to_string(c.step_size));
  if (!(c.noise_scale > 0) || !std::isfinite(c.noise_scale))
    throw InvalidArgument("training: noise scale must be finite and > 0, got " +
                          std::to_string(c.noise_scale));
  if (c.figure_every < 1 || c.figure_samples < 1 || c.figure_steps < 0 || c.final_steps < 0 ||
      c.grid_points < 2 || !(c.plot_range > 0) || c.log_every < 1)
    throw InvalidArgument("training: figure settings must be positive");
  if (c.threads < 0)
    throw InvalidArgument("training: threads must be >= 0, got " + std::to_string(c.threads));
  check_device(c.device);
  if (!c.output_dir.empty()) require_writable_dir(c.output_dir);
}

TrainReport run_training(const TrainConfig& c,
                         const std::function<void(const std::string&)>& log) {
  validate_train_config(c);
  if (c.threads > 0) set_num_threads(c.threads);
  const Dataset data = make_dataset(c.dataset, c.dataset_params, c.data_seed);
  DataLoader loader(data.points.data(), data.n, data.dim, c.batch_size, true, c.drop_last, c.seed);
  Mlp model(c.model, c.seed);
  TrainerOptions options;
  options.cd = c.cd;
  options.sampler = sampler_options(c);
  options.adam = c.adam;
  options.max_grad_norm = c.max_grad_norm;
  options.seed = c.seed;
  CDTrainer trainer(model, options, std::min<int64_t>(c.batch_size, data.n), c.device);
  trainer.on_warning = log;

  TrainReport report;
  const bool files = !c.output_dir.empty();
  const auto path = [&](const std::string& name) { return c.output_dir + "/" + name; };
  for (int epoch = 1; epoch <= c.epochs; ++epoch) {
    loader.start_epoch(epoch - 1);
    double loss = 0;
    int64_t used = 0;
    const auto t0 = std::chrono::steady_clock::now();
    for (int64_t b = 0; b < loader.num_batches(); ++b) {
      const StepStats s = trainer.step(loader.batch(b), loader.batch_rows(b));
      ++report.iterations;
      if (s.skipped) {
        ++report.skipped;
        continue;
      }
      loss += s.loss;
      ++used;
    }
    report.train_seconds +=
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    report.epoch_loss.push_back(used ? loss / used : NAN);
    if (epoch == 1 || epoch % c.log_every == 0 || epoch == c.epochs)
      log(format("Epoch [%.0f/%.0f], Average Loss: %.4f", epoch, c.epochs,
                 report.epoch_loss.back()));
    const bool last = epoch == c.epochs;
    if (files && (epoch == 1 || epoch % c.figure_every == 0) && !last) {
      char name[64];
      std::snprintf(name, sizeof name, "epoch_%03d.png", epoch);
      write_figure(model, c, data, model_samples(model, c, c.figure_steps, epoch),
                   "Epoch " + std::to_string(epoch), path(name));
      report.files.push_back(path(name));
    }
  }
  report.final_samples = model_samples(model, c, c.final_steps, 0);
  if (files) {
    write_figure(model, c, data, report.final_samples,
                 "Epoch " + std::to_string(c.epochs) + " (final)", path("final.png"));
    report.files.push_back(path("final.png"));
    write_npy(path("samples.npy"), report.final_samples.data(),
              {static_cast<int64_t>(report.final_samples.size() / 2), 2});
    report.files.push_back(path("samples.npy"));
  }
  compute_metrics(model, c, report);
  return report;
}

}  // namespace cuebm
