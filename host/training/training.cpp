#include "cuebm/training/training.hpp"

#include <unistd.h>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>

#include "cuebm/data/datasets.hpp"
#include "cuebm/data/metrics.hpp"
#include "cuebm/io/figure.hpp"
#include "cuebm/io/npy.hpp"
#include "cuebm/io/safetensors.hpp"
#include "cuebm/runtime/error.hpp"
#include "cuebm/sampling/langevin.hpp"
#include "cuebm/training/checkpoint.hpp"
#include "host/sampling/cuda_tempering.hpp"  // kMaxCudaReplicas: plain C++
#include "host/training/mcmc_negatives.hpp"

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

// The Langevin chains of the figures and the final samples, at training_temperature: CD's own
// settings, or for score matching (T = 1) noise scale 1 and step size step_size *
// noise_scale^2 (the same step on the log-density scale as CD's sampler).
LangevinOptions figure_sampler_options(const TrainConfig& c) {
  LangevinOptions o = sampler_options(c);
  if (is_score_matching(c.loss)) {
    o.step_size = c.step_size * c.noise_scale * c.noise_scale;
    o.noise_scale = 1.0f;
  }
  return o;
}

TrainerOptions trainer_options(const TrainConfig& c) {
  TrainerOptions options;
  options.loss = c.loss;
  options.score = c.score;
  if (is_score_matching(c.loss)) options.score.kind = score_loss_kind(c.loss);
  options.score.seed = c.seed;
  options.cd = c.cd;
  options.sampler = sampler_options(c);
  options.negatives = c.negatives;
  options.adam = c.adam;
  options.max_grad_norm = c.max_grad_norm;
  options.seed = c.seed;
  return options;
}

std::vector<float> model_samples(const Energy& model, const TrainConfig& c, int steps,
                                 uint64_t salt) {
  LangevinOptions o = figure_sampler_options(c);
  o.n_steps = steps;
  o.seed = c.seed ^ (kFigureSeedSalt + salt);
  return langevin_sample(model, nullptr, c.figure_samples, o, c.device).samples;
}

Grid2D plot_grid(const TrainConfig& c) {
  const double r = resolved_plot_range(c);
  return {-r, r, -r, r, c.grid_points, c.grid_points};
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
  const std::map<std::string, double> params = resolved_dataset_params(c);
  const auto get = [&](const char* key, double fallback) {
    const auto it = params.find(key);
    return it == params.end() ? fallback : it->second;
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

std::string sci(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3g", v);
  return buf;
}

// Largest |coordinate| of n x d values; infinity when one is not finite.
double max_abs(const float* x, int64_t count) {
  double m = 0;
  for (int64_t i = 0; i < count; ++i) {
    const double v = std::fabs(static_cast<double>(x[i]));
    if (!std::isfinite(v)) return std::numeric_limits<double>::infinity();
    m = std::max(m, v);
  }
  return m;
}

// The divergence verdict of one epoch (TrainReport::diverged); "" when none. The negatives are
// compared with the data's range, floored at 1 (the scale of the N(0, I) chain starts).
// neg_range: null for score matching, which has no negatives (the loss alone is checked).
std::string divergence_reason(int epoch, const double* neg_range_or_null, double data_range,
                              double loss, double loss_limit, float step_size, float lr) {
  const double scale = std::max(data_range, 1.0);
  const std::string at = "at epoch " + std::to_string(epoch) + ": ";
  if (!neg_range_or_null) {
    if (std::isfinite(loss) && std::fabs(loss) > loss_limit)
      return at + "the mean loss is " + sci(loss) + ", beyond +-" + sci(loss_limit) + " (lr " +
             sci(lr) + "; a smaller lr may help)";
    return "";
  }
  const double neg_range = *neg_range_or_null;
  const std::string hint =
      " (Langevin step size " + sci(step_size) + "; a smaller step size or lr may help)";
  if (!std::isfinite(neg_range)) return at + "the negatives are not finite" + hint;
  if (neg_range > kDivergedRangeFactor * scale)
    return at + "the negatives reach |x| = " + sci(neg_range) +
           " while the data lie within |x| <= " + sci(data_range) + hint;
  if (std::isfinite(loss) && std::fabs(loss) > loss_limit)
    return at + "the mean loss is " + sci(loss) + ", beyond +-" + sci(loss_limit) + " (lr " +
           sci(lr) + "; a smaller lr or step size may help)";
  return "";
}

// The divergence verdict of the final metrics (TrainReport::diverged); "" when none.
std::string metrics_divergence_reason(const TrainReport& r, double box_half_width) {
  const std::string at = "at the end: ";
  const std::string hint =
      "; --recipe auto (--energy-reg 1 --sampler mala), a smaller step size or lr may help";
  if (!std::isfinite(r.log_z) || !std::isfinite(r.test_nll))
    return at + "the final model's log Z (" + sci(r.log_z) + ") or test NLL (" + sci(r.test_nll) +
           ") is not finite" + hint;
  const double flat_nll = std::log(4 * box_half_width * box_half_width);
  if (r.test_nll - flat_nll > kDivergedNllExcess)
    return at + "the final model's test NLL is " + sci(r.test_nll) + " nats, " +
           sci(r.test_nll - flat_nll) + " above the flat density's on the metric box [-" +
           sci(box_half_width) + ", " + sci(box_half_width) + "]^2 (" + sci(flat_nll) +
           "; the limit is " + sci(kDivergedNllExcess) +
           " above): the energy's scale ran away (log Z " + sci(r.log_z) +
           " at T = " + sci(r.temperature) + ")" + hint;
  return "";
}

void write_report_json(const std::string& path, const TrainConfig& c, const TrainReport& r) {
  // NaN and Inf become null (nlohmann's dump).
  nlohmann::ordered_json j;
  j["dataset"] = c.dataset;
  j["dataset_params"] = resolved_dataset_params(c);
  j["recipe"] = r.recipe;
  j["recipe_applied"] = r.recipe_applied;
  j["epochs"] = c.epochs;
  j["first_epoch"] = r.first_epoch;
  j["iterations"] = r.iterations;
  j["skipped"] = r.skipped;
  j["train_seconds"] = r.train_seconds;
  j["epoch_loss"] = r.epoch_loss;
  j["loss"] = training_loss_name(c.loss);
  // The sampler of CD's negatives; score matching has none.
  j["sampler"] = is_score_matching(c.loss)
                     ? nlohmann::ordered_json()
                     : nlohmann::ordered_json(negative_sampler_name(c.negatives.kind));
  j["epoch_acceptance"] = r.epoch_acceptance;
  j["diverged"] = r.diverged;
  j["divergence"] = r.diverged ? nlohmann::ordered_json(r.divergence) : nlohmann::ordered_json();
  j["plot_range"] = r.plot_range;
  j["temperature"] = r.temperature;
  j["temperature_source"] = r.temperature_source;
  j["log_z"] = r.log_z;
  j["test_nll"] = r.test_nll;
  j["data_entropy"] = r.data_entropy;
  j["kl"] = r.kl;
  j["mmd2"] = r.mmd2;
  if (r.modes_covered >= 0) {
    j["modes_covered"] = r.modes_covered;
    j["modes_total"] = r.modes_total;
    j["share_near_mode"] = r.share_near_mode;
    j["mode_weights"] = r.mode_weights;
  }
  j["files"] = r.files;
  j["settings"] = training_fingerprint(c);
  const std::string text = j.dump(2) + "\n";
  const std::string tmp = path + ".tmp-" + std::to_string(static_cast<long long>(::getpid()));
  {
    std::ofstream f(tmp, std::ios::binary);
    if (!f) throw IoError("report '" + path + "': cannot create temporary file '" + tmp + "'");
    f << text;
    f.close();
    if (!f) {
      std::remove(tmp.c_str());
      throw IoError("report '" + path + "': writing temporary file '" + tmp + "' failed");
    }
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    throw IoError("report '" + path + "': cannot rename temporary file '" + tmp + "' to it");
  }
}

}  // namespace

std::vector<std::string> recipe_names() { return {"tutorial", "auto"}; }

std::map<std::string, std::string> recipe_settings(const std::string& recipe,
                                                   const std::string& dataset) {
  if (recipe == "tutorial") return {};
  if (recipe != "auto")
    throw InvalidArgument("training: unknown recipe '" + recipe + "'; valid: tutorial, auto");
  // docs/quality.md: the regulariser levels the modes' energies; MALA's accept/reject keeps
  // the negatives exact where Langevin's step overshoots wells as narrow as the data's; grid's
  // 100 modes need the wider MLP.
  if (dataset == "gaussian_mixture") return {{"energy-reg", "1"}};
  if (dataset == "grid") return {{"energy-reg", "1"}, {"sampler", "mala"}, {"hidden", "128 128"}};
  return {{"energy-reg", "1"}, {"sampler", "mala"}};
}

TrainConfig resolve_recipe(const TrainConfig& config, std::map<std::string, std::string>* applied) {
  TrainConfig c = config;
  const std::map<std::string, std::string> settings = recipe_settings(c.recipe, c.dataset);
  if (applied) applied->clear();
  if (settings.empty()) return c;
  if (is_score_matching(c.loss))
    throw InvalidArgument("training: recipe '" + c.recipe +
                          "' sets CD's settings (energy reg, sampler); the score-matching loss " +
                          training_loss_name(c.loss) + " has none: use recipe tutorial");
  const TrainConfig tutorial;
  const auto open = [&](const std::string& flag, bool at_tutorial_value) {
    const bool ok = settings.count(flag) && at_tutorial_value && !c.explicit_settings.count(flag);
    if (ok && applied) (*applied)[flag] = settings.at(flag);
    return ok;
  };
  if (open("energy-reg", c.cd.energy_reg_weight == tutorial.cd.energy_reg_weight))
    c.cd.energy_reg_weight = std::stof(settings.at("energy-reg"));
  if (open("sampler", c.negatives.kind == tutorial.negatives.kind))
    c.negatives.kind = parse_negative_sampler(settings.at("sampler"));
  if (open("hidden", c.model.hidden == tutorial.model.hidden)) {
    c.model.hidden.clear();
    std::istringstream widths(settings.at("hidden"));
    for (int w; widths >> w;) c.model.hidden.push_back(w);
  }
  return c;
}

double default_plot_range(const std::string& dataset, const std::map<std::string, double>& params) {
  constexpr double kTutorialRange = 2.5, kStep = 0.5;
  const double extent = dataset_extent(dataset, params);
  return std::max(kTutorialRange, kStep * std::ceil(extent / kStep));
}

double resolved_plot_range(const TrainConfig& c) {
  return c.plot_range != 0 ? c.plot_range
                           : default_plot_range(c.dataset, resolved_dataset_params(c));
}

std::map<std::string, double> resolved_dataset_params(const TrainConfig& c) {
  if (!c.dataset_params.empty()) return c.dataset_params;
  if (c.dataset == "gaussian_mixture")
    return {{"n", 500}, {"components", 4}, {"std", 0.1}, {"radius", 1.5}};
  return {};
}

void validate_train_config(const TrainConfig& config) {
  const TrainConfig c = resolve_recipe(config);
  validate_mlp_spec(c.model);
  if (c.model.input_dim != 2)
    throw InvalidArgument("training: the datasets are 2-D, so the model input must be 2, got " +
                          std::to_string(c.model.input_dim));
  if (c.epochs < 1)
    throw InvalidArgument("training: epochs must be >= 1, got " + std::to_string(c.epochs));
  if (c.batch_size < 1)
    throw InvalidArgument("training: batch size must be >= 1, got " + std::to_string(c.batch_size));
  if (!(c.step_size > 0) || !std::isfinite(c.step_size))
    throw InvalidArgument("training: step size must be finite and > 0, got " +
                          std::to_string(c.step_size));
  if (!(c.noise_scale > 0) || !std::isfinite(c.noise_scale))
    throw InvalidArgument("training: noise scale must be finite and > 0, got " +
                          std::to_string(c.noise_scale));
  if (c.figure_every < 1 || c.figure_samples < 1 || c.figure_steps < 0 || c.final_steps < 0 ||
      c.grid_points < 2 || !(c.plot_range >= 0) || !std::isfinite(c.plot_range) || c.log_every < 1)
    throw InvalidArgument("training: figure settings must be positive");
  if (c.threads < 0)
    throw InvalidArgument("training: threads must be >= 0, got " + std::to_string(c.threads));
  if (c.checkpoint_every < 0)
    throw InvalidArgument("training: checkpoint_every must be >= 0, got " +
                          std::to_string(c.checkpoint_every));
  check_device(c.device);
  if (is_score_matching(c.loss)) {
    const std::string loss = training_loss_name(c.loss);
    if (c.negatives.kind != NegativeSampler::langevin)
      throw InvalidArgument("training: the sampler (" + negative_sampler_name(c.negatives.kind) +
                            ") draws CD's negatives; the score-matching loss " + loss +
                            " has none: use --loss cd or drop the sampler");
    if (c.cd.persistent)
      throw InvalidArgument(
          "training: persistent CD's replay buffer holds CD's negatives; the "
          "score-matching loss " +
          loss + " has none: use --loss cd or drop persistent");
    validate_score_loss_options(trainer_options(c).score);
  } else {
    detail::validate_negative_sampler(trainer_options(c), c.model.input_dim, "training");
  }
  if (c.device.is_cuda() && c.loss == TrainingLoss::cd &&
      c.negatives.kind == NegativeSampler::tempering &&
      c.negatives.replicas > detail::kMaxCudaReplicas)
    throw InvalidArgument("training: the CUDA trainer's tempering negatives run at most " +
                          std::to_string(detail::kMaxCudaReplicas) + " replicas per chain, got " +
                          std::to_string(c.negatives.replicas) + ": use fewer or train on the CPU");
  if (!c.output_dir.empty()) require_writable_dir(c.output_dir);
}

std::map<std::string, std::string> training_fingerprint(const TrainConfig& config) {
  const TrainConfig c = resolve_recipe(config);
  const auto f = [](double v) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.17g", v);
    return std::string(buf);
  };
  std::map<std::string, std::string> m;
  m["dataset"] = c.dataset;
  std::string params;
  for (const auto& [k, v] : resolved_dataset_params(c))
    params += (params.empty() ? "" : ",") + k + "=" + f(v);
  m["dataset_params"] = params;
  m["data_seed"] = std::to_string(c.data_seed);
  std::string widths = std::to_string(c.model.input_dim);
  for (int h : c.model.hidden) {
    widths += ',';
    widths += std::to_string(h);
  }
  m["widths"] = widths + ",1";
  m["activation"] = activation_name(c.model.activation);
  m["batch_size"] = std::to_string(c.batch_size);
  m["drop_last"] = c.drop_last ? "true" : "false";
  m["step_size"] = f(c.step_size);
  m["noise_scale"] = f(c.noise_scale);
  m["loss"] = training_loss_name(c.loss);
  m["lr"] = f(c.adam.lr);
  m["beta1"] = f(c.adam.beta1);
  m["beta2"] = f(c.adam.beta2);
  m["eps"] = f(c.adam.eps);
  m["weight_decay"] = f(c.adam.weight_decay);
  m["clip"] = f(c.max_grad_norm);
  m["seed"] = std::to_string(c.seed);
  if (is_score_matching(c.loss)) {  // no negatives: the score-matching settings instead of CD's
    const ScoreLossOptions& s = c.score;
    if (c.loss == TrainingLoss::sm) m["hessian"] = hessian_method_name(s.hessian_method);
    if (c.loss == TrainingLoss::ssm) {
      m["projections"] = std::to_string(s.n_projections);
      m["projection"] = projection_type_name(s.projection_type);
    }
    if (c.loss == TrainingLoss::dsm) {
      m["dsm_noise"] = f(s.noise_scale);
      m["dsm_sign"] = denoising_sign_name(s.denoising_sign);
    }
    m["sm_reg"] = f(s.regularization_strength);
    return m;
  }
  m["sampler"] = negative_sampler_name(c.negatives.kind);
  const NegativeSamplerOptions& n = c.negatives;
  if (n.kind == NegativeSampler::hmc) {
    m["hmc_step_size"] = f(n.hmc_step_size);
    m["leapfrog"] = std::to_string(n.leapfrog);
    std::string mass;
    for (float v : n.mass) mass += (mass.empty() ? "" : ",") + f(v);
    m["mass"] = mass.empty() ? "identity" : mass;
  } else if (n.kind == NegativeSampler::tempering) {
    m["replicas"] = std::to_string(n.replicas);
    m["t_max"] = f(n.t_max);
    m["swap_every"] = std::to_string(n.swap_every);
  }
  m["k_steps"] = std::to_string(c.cd.k_steps);
  m["persistent"] = c.cd.persistent ? "true" : "false";
  m["buffer_size"] = std::to_string(c.cd.buffer_size);
  m["init_steps"] = std::to_string(c.cd.init_steps);
  m["new_sample_ratio"] = f(c.cd.new_sample_ratio);
  m["energy_reg"] = f(c.cd.energy_reg_weight);
  m["per_chain"] = c.cd.per_chain ? "true" : "false";
  m["reinit_from_noise"] = c.cd.reinit_from_noise ? "true" : "false";
  return m;
}

double training_temperature(const TrainConfig& c) {
  return loss_temperature(c.loss, c.noise_scale);
}

std::string training_temperature_source(const TrainConfig& c) {
  return is_score_matching(c.loss)
             ? "score matching (" + training_loss_name(c.loss) + ") trains exp(-E)"
             : std::string("sigma^2: CD's sampler targets exp(-E / sigma^2)");
}

void compute_training_metrics(const Energy* model, const std::vector<float>& samples,
                              const TrainConfig& c, TrainReport& r) {
  r.temperature = training_temperature(c);
  r.temperature_source = training_temperature_source(c);
  const Dataset test =
      make_dataset(c.dataset, resolved_dataset_params(c), c.data_seed ^ kTestDataSeedSalt);
  int k = 0;
  double std = 0;
  const std::vector<float> centres = mode_centres(c, &k, &std);
  r.data_entropy = k > 0 ? mixture_entropy_2d(k, std) : NAN;
  r.log_z = r.test_nll = r.kl = NAN;
  if (model != nullptr) {
    if (model->dim() != 2)
      throw InvalidArgument("metrics: the model must be 2-D, got dimension " +
                            std::to_string(model->dim()));
    const BatchEnergyFn energy = [&](const float* xy, int64_t n, float* e) {
      model->energy(xy, n, e);
    };
    // A box holding the data with margin, fine enough for the tutorial's std 0.1 modes.
    Grid2D grid = plot_grid(c);
    grid.nx = grid.ny = 400;
    r.log_z = grid_log_partition(energy, grid, r.temperature);
    r.test_nll = test_nll(energy, test.points.data(), test.n, grid, r.temperature);
    r.kl = r.test_nll - r.data_entropy;
  }
  r.mmd2 = NAN;
  r.modes_covered = -1;
  r.modes_total = 0;
  r.share_near_mode = 0;
  r.mode_weights.clear();
  if (samples.empty()) return;
  if (samples.size() % 2 != 0)
    throw InvalidArgument("metrics: the samples must be n x 2, got " +
                          std::to_string(samples.size()) + " values");
  const int64_t m = static_cast<int64_t>(samples.size() / 2);
  r.mmd2 = mmd2_rbf(samples.data(), m, test.points.data(), std::min<int64_t>(test.n, 2000), 2);
  if (k > 0) {
    const ModeReport modes = mode_report(samples.data(), m, centres.data(), k, std);
    r.modes_covered = modes.covered;
    r.modes_total = modes.total;
    r.share_near_mode = modes.share_near_mode;
    r.mode_weights = modes.weights;
  }
}

Checkpoint read_resume_checkpoint(const TrainConfig& config) {
  const TrainConfig c = resolve_recipe(config);
  const std::map<std::string, std::string> fingerprint = training_fingerprint(c);
  Checkpoint ck = read_checkpoint(c.resume_from);
  // Written before the loss was an option: CD; before the sampler was: Langevin negatives.
  if (!ck.config.count("loss")) ck.config["loss"] = "cd";
  if (ck.config["loss"] == "cd" && !ck.config.count("sampler")) ck.config["sampler"] = "langevin";
  std::string diff;
  for (const auto& [k, v] : fingerprint) {
    const auto it = ck.config.find(k);
    const std::string was = it == ck.config.end() ? "(absent)" : it->second;
    if (was != v) diff += (diff.empty() ? "" : ", ") + k + " " + was + " -> " + v;
  }
  for (const auto& [k, v] : ck.config)
    if (!fingerprint.count(k)) diff += (diff.empty() ? "" : ", ") + k + " " + v + " -> (absent)";
  if (!diff.empty())
    throw InvalidArgument("resume: checkpoint '" + c.resume_from +
                          "' was written with other training settings: " + diff);
  if (ck.epoch > c.epochs)
    throw InvalidArgument("resume: checkpoint '" + c.resume_from + "' is at epoch " +
                          std::to_string(ck.epoch) + ", past epochs = " + std::to_string(c.epochs));
  if (ck.parameters.size() != Mlp(c.model, 0).num_parameters())
    throw IoError("resume: checkpoint '" + c.resume_from + "' holds " +
                  std::to_string(ck.parameters.size()) + " parameters, the model needs " +
                  std::to_string(Mlp(c.model, 0).num_parameters()));
  return ck;
}

std::vector<float> final_model_samples(const Energy& model, const TrainConfig& c) {
  return model_samples(model, c, c.final_steps, 0);
}

TrainReport run_training(const TrainConfig& c, const std::function<void(const std::string&)>& log) {
  return run_training(c, log, {}, {});
}

TrainReport run_training(const TrainConfig& config,
                         const std::function<void(const std::string&)>& log,
                         const std::function<void(const TrainProgress&)>& progress,
                         const std::function<void(const std::string&)>& warn) {
  std::map<std::string, std::string> recipe_applied;
  const TrainConfig c = resolve_recipe(config, &recipe_applied);
  // A checkpoint that does not fit is reported before anything is created.
  std::optional<Checkpoint> resume;
  if (!c.resume_from.empty()) resume = read_resume_checkpoint(c);
  validate_train_config(c);
  if (c.threads > 0) set_num_threads(c.threads);
  const Dataset data = make_dataset(c.dataset, resolved_dataset_params(c), c.data_seed);
  // A batch larger than the dataset (e.g. grid's 100 points) is the whole dataset.
  const int64_t batch_size = std::min<int64_t>(c.batch_size, data.n);
  if (batch_size < c.batch_size)
    log("Batch size " + std::to_string(c.batch_size) + " is larger than the dataset (" +
        std::to_string(data.n) + " points): batches of " + std::to_string(batch_size));
  DataLoader loader(data.points.data(), data.n, data.dim, batch_size, true, c.drop_last, c.seed);
  // The data's range, for the divergence check (once; the negatives are compared per epoch).
  const double data_range = max_abs(data.points.data(), data.n * data.dim);
  Mlp model(c.model, c.seed);
  CDTrainer trainer(model, trainer_options(c), batch_size, c.device);
  trainer.on_warning = log;

  TrainReport report;
  report.recipe = c.recipe;
  report.recipe_applied = recipe_applied;
  report.plot_range = resolved_plot_range(c);
  const std::map<std::string, std::string> fingerprint = training_fingerprint(c);
  if (resume) {
    const Checkpoint& ck = *resume;
    std::copy(ck.parameters.begin(), ck.parameters.end(), model.parameters().begin());
    trainer.optimizer().load_state(ck.adam_steps, ck.adam_m, ck.adam_v);
    trainer.load_state(ck.trainer);
    report.epoch_loss = ck.epoch_loss;
    report.epoch_acceptance = ck.epoch_acceptance;
    if (report.epoch_acceptance.empty()) report.epoch_acceptance.assign(ck.epoch, NAN);
    report.iterations = ck.iterations;
    report.skipped = ck.skipped;
    report.train_seconds = ck.train_seconds;
    report.first_epoch = ck.epoch + 1;
    log("Resuming from '" + c.resume_from + "' after epoch " + std::to_string(ck.epoch));
  }
  const auto save_checkpoint = [&](int epoch) {
    trainer.sync_to_host();  // a CUDA trainer's model, Adam and buffer, current on the host
    Checkpoint ck;
    ck.model = c.model;
    ck.parameters.assign(model.parameters().begin(), model.parameters().end());
    ck.adam_steps = trainer.optimizer().steps();
    const auto m = trainer.optimizer().first_moment();
    const auto v = trainer.optimizer().second_moment();
    ck.adam_m.assign(m.begin(), m.end());
    ck.adam_v.assign(v.begin(), v.end());
    ck.trainer = trainer.state();
    ck.epoch = epoch;
    ck.epoch_loss = report.epoch_loss;
    if (c.negatives.kind != NegativeSampler::langevin)
      ck.epoch_acceptance = report.epoch_acceptance;
    ck.iterations = report.iterations;
    ck.skipped = report.skipped;
    ck.train_seconds = report.train_seconds;
    ck.config = fingerprint;
    write_checkpoint(c.checkpoint_path, ck);
  };

  const bool files = !c.output_dir.empty();
  const auto path = [&](const std::string& name) { return c.output_dir + "/" + name; };
  const auto declare_diverged = [&](const std::string& reason) {
    report.diverged = true;
    report.divergence = reason;
    const std::string line = "WARNING: training diverged " + reason;
    if (warn)
      warn(line);
    else
      std::fprintf(stderr, "%s\n", line.c_str());
  };
  TrainProgress where;
  where.epochs = c.epochs;
  where.batches = loader.num_batches();
  where.first_iteration = report.iterations;
  where.total_iterations =
      report.iterations + (c.epochs - report.first_epoch + 1) * loader.num_batches();
  for (int epoch = report.first_epoch; epoch <= c.epochs; ++epoch) {
    loader.start_epoch(epoch - 1);
    double loss = 0, acceptance = 0;
    int64_t used = 0;
    const auto t0 = std::chrono::steady_clock::now();
    for (int64_t b = 0; b < loader.num_batches(); ++b) {
      const StepStats s = trainer.step(loader.batch(b), loader.batch_rows(b));
      ++report.iterations;
      if (progress) {
        where.epoch = epoch;
        where.batch = b + 1;
        where.iteration = report.iterations;
        where.loss = s.skipped ? NAN : s.loss;
        progress(where);
      }
      if (s.skipped) {
        ++report.skipped;
        continue;
      }
      loss += s.loss;
      acceptance += s.acceptance;
      ++used;
    }
    report.train_seconds +=
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    report.epoch_loss.push_back(used ? loss / used : NAN);
    report.epoch_acceptance.push_back(used ? acceptance / used : NAN);
    if (epoch == 1 || epoch % c.log_every == 0 || epoch == c.epochs) {
      std::string line = format("Epoch [%.0f/%.0f], Average Loss: %.4f", epoch, c.epochs,
                                report.epoch_loss.back());
      // CD with Langevin keeps the tutorial's line; the other samplers add their acceptance
      // rate, score matching names its loss.
      if (is_score_matching(c.loss))
        line += " (" + training_loss_name(c.loss) + ")";
      else if (c.negatives.kind != NegativeSampler::langevin)
        line += ", " + negative_sampler_name(c.negatives.kind) +
                format(" acceptance: %.3f", report.epoch_acceptance.back());
      log(line);
    }
    if (!report.diverged && loader.num_batches() > 0) {
      // The last batch's negatives, already on the host: no extra pass over the data.
      const int64_t rows = loader.batch_rows(loader.num_batches() - 1);
      const float* negatives = trainer.last_negatives();  // null for score matching
      const double neg_range = negatives ? max_abs(negatives, rows * data.dim) : 0.0;
      // DSM's loss holds the noise term's mean d / (2 sigma^2) (1e4 at sigma = 0.01): its
      // limit is scaled by that.
      const double loss_limit =
          kDivergedLoss *
          (c.loss == TrainingLoss::dsm
               ? std::max(1.0, data.dim / (2.0 * c.score.noise_scale * c.score.noise_scale))
               : 1.0);
      const std::string reason =
          divergence_reason(epoch, negatives ? &neg_range : nullptr, data_range,
                            report.epoch_loss.back(), loss_limit, c.step_size, c.adam.lr);
      if (!reason.empty()) declare_diverged(reason);
    }
    const bool last = epoch == c.epochs;
    if (!c.checkpoint_path.empty() &&
        (last || (c.checkpoint_every > 0 && epoch % c.checkpoint_every == 0)))
      save_checkpoint(epoch);
    if (files && (epoch == 1 || epoch % c.figure_every == 0) && !last) {
      char name[64];
      std::snprintf(name, sizeof name, "epoch_%03d.png", epoch);
      trainer.sync_to_host();  // the model's parameters, current on the host
      write_figure(model, c, data, model_samples(model, c, c.figure_steps, epoch),
                   "Epoch " + std::to_string(epoch), path(name));
      report.files.push_back(path(name));
    }
  }
  trainer.sync_to_host();  // a CUDA trainer's parameters, current in `model` from here on
  report.final_samples = model_samples(model, c, c.final_steps, 0);
  if (files) {
    write_figure(model, c, data, report.final_samples,
                 "Epoch " + std::to_string(c.epochs) + " (final)", path("final.png"));
    report.files.push_back(path("final.png"));
    write_npy(path("samples.npy"), report.final_samples.data(),
              {static_cast<int64_t>(report.final_samples.size() / 2), 2});
    report.files.push_back(path("samples.npy"));
  }
  if (!c.model_path.empty()) {
    save_mlp(c.model_path, model);
    report.files.push_back(c.model_path);
  }
  if (!c.checkpoint_path.empty()) report.files.push_back(c.checkpoint_path);
  report.final_parameters.assign(model.parameters().begin(), model.parameters().end());
  compute_training_metrics(&model, report.final_samples, c, report);
  if (!report.diverged) {
    const std::string reason = metrics_divergence_reason(report, report.plot_range);
    if (!reason.empty()) declare_diverged(reason);
  }
  if (!c.report_path.empty()) {
    report.files.push_back(c.report_path);
    write_report_json(c.report_path, c, report);
  }
  return report;
}

}  // namespace cuebm
