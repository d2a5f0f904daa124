// cuebm train: the example trainer's run from flags and/or a JSON config file, with a progress
// bar and periodic checkpoints.
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <initializer_list>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>

#include "common.hpp"
#include "cuebm/data/datasets.hpp"
#include "cuebm/runtime/error.hpp"
#include "cuebm/training/checkpoint.hpp"
#include "cuebm/training/training.hpp"

namespace cuebm::cli {
namespace {

// JSON config files: a top-level object whose keys are the long flag names ("batch-size" or
// "batch_size"); values are strings, numbers, booleans (flags), arrays (repeatable options) or,
// for data-param, an object {"n": 500, ...}. Unknown keys are an error naming the file and the
// key. Flags given on the command line override the file: only options that were not given
// take the file's values (through CLI11, so that the same conversions and checks apply).
void apply_json_config(CLI::App* cmd, const std::string& path) {
  std::ifstream in(path);
  if (!in) throw IoError("config file '" + path + "' cannot be opened");
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    throw InvalidArgument("config file '" + path + "' is not valid JSON: " + e.what());
  }
  if (!j.is_object()) throw InvalidArgument("config file '" + path + "' must hold a JSON object");
  const auto valid_keys = [&] {
    std::string keys;
    for (const CLI::Option* o : cmd->get_options()) {
      const auto& names = o->get_lnames();
      if (names.empty() || names[0] == "help" || names[0] == "config") continue;
      keys += (keys.empty() ? "" : ", ") + names[0];
    }
    return keys;
  };
  // Check every key and value before applying any.
  std::vector<std::pair<CLI::Option*, std::vector<std::string>>> items;
  for (const auto& [key, value] : j.items()) {
    std::string name = key;
    for (char& ch : name)
      if (ch == '_') ch = '-';
    CLI::Option* opt = cmd->get_option_no_throw("--" + name);
    if (opt == nullptr || name == "config" || name == "help")
      throw InvalidArgument("config file '" + path + "': unknown key '" + key +
                            "' (valid: " + valid_keys() + ")");
    const auto scalar = [&](const nlohmann::json& v) -> std::string {
      if (v.is_string()) return v.get<std::string>();
      if (v.is_boolean()) return v.get<bool>() ? "true" : "false";
      if (v.is_number()) return v.dump();
      throw InvalidArgument("config file '" + path + "': key '" + key + "' holds " + v.dump() +
                            ", not a string, number or boolean");
    };
    std::vector<std::string> inputs;
    if (value.is_object()) {
      if (name != "data-param")
        throw InvalidArgument("config file '" + path + "': key '" + key +
                              "' cannot hold an object");
      for (const auto& [k, v] : value.items()) inputs.push_back(k + "=" + scalar(v));
    } else if (value.is_array()) {
      for (const auto& v : value) inputs.push_back(scalar(v));
    } else {
      inputs.push_back(scalar(value));
    }
    if (opt->get_type_size_max() <= 0 &&
        (inputs.size() != 1 || (inputs[0] != "true" && inputs[0] != "false")))
      throw InvalidArgument("config file '" + path + "': key '" + key +
                            "' is a flag and takes true or false");
    if (inputs.size() > 1 && opt->get_items_expected_max() <= 1)
      throw InvalidArgument("config file '" + path + "': key '" + key +
                            "' takes one value, not a list");
    items.emplace_back(opt, std::move(inputs));
  }
  for (auto& [opt, inputs] : items) {
    if (opt->count() > 0) continue;  // given on the command line
    if (opt->get_type_size_max() <= 0 && inputs[0] == "false") continue;
    try {
      opt->add_result(inputs);
      opt->run_callback();
    } catch (const CLI::Error& e) {
      throw InvalidArgument("config file '" + path + "': key '" + opt->get_lnames()[0] +
                            "': " + e.what());
    } catch (const InvalidArgument& e) {  // at_least's checks
      throw InvalidArgument("config file '" + path + "': " + e.what());
    }
  }
}

// The settings --recipe sets (recipe_settings), by flag name.
constexpr const char* kRecipeFlags[] = {"energy-reg", "sampler", "hidden"};

std::string clock_text(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "--:--";
  const auto s = static_cast<long long>(seconds + 0.5);
  char buf[32];
  if (s >= 3600)
    std::snprintf(buf, sizeof buf, "%lld:%02lld:%02lld", s / 3600, s / 60 % 60, s % 60);
  else
    std::snprintf(buf, sizeof buf, "%02lld:%02lld", s / 60, s % 60);
  return buf;
}

// Progress on a terminal: one line on stderr redrawn in place at most 10 times a second;
// log lines are printed above it. Otherwise: a plain line per logged epoch.
class Progress {
 public:
  Progress(bool bar, int log_every)
      : bar_(bar), log_every_(log_every), start_(std::chrono::steady_clock::now()) {}

  void log(const std::string& line) {
    if (bar_ && drawn_) std::fprintf(stderr, "\r\033[K");
    std::printf("%s\n", line.c_str());
    std::fflush(stdout);
    if (bar_ && drawn_) draw(last_);
  }

  // A line on stderr, above the bar.
  void warn(const std::string& line) {
    std::fflush(stdout);
    std::fprintf(stderr, "%s%s\n", bar_ && drawn_ ? "\r\033[K" : "", line.c_str());
    std::fflush(stderr);
    if (bar_ && drawn_) draw(last_);
  }

  void update(const TrainProgress& p) {
    const auto now = std::chrono::steady_clock::now();
    last_ = p;
    const bool epoch_end = p.batch == p.batches;
    if (bar_) {
      if (epoch_end && p.iteration == p.total_iterations) {
        draw(p);
        std::fprintf(stderr, "\n");
        drawn_ = false;
        return;
      }
      if (drawn_ && now - last_draw_ < std::chrono::milliseconds(100)) return;
      last_draw_ = now;
      draw(p);
      drawn_ = true;
    } else if (epoch_end && (p.epoch == 1 || p.epoch % log_every_ == 0 || p.epoch == p.epochs)) {
      std::printf("progress: epoch %d/%d, iteration %lld/%lld, %.1f it/s, ETA %s\n", p.epoch,
                  p.epochs, static_cast<long long>(p.iteration),
                  static_cast<long long>(p.total_iterations), rate(p), clock_text(eta(p)).c_str());
      std::fflush(stdout);
    }
  }

 private:
  double elapsed() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  }
  double rate(const TrainProgress& p) const {
    const double t = elapsed();
    return t > 0 ? static_cast<double>(p.iteration - p.first_iteration) / t : 0.0;
  }
  double eta(const TrainProgress& p) const {
    const double r = rate(p);
    return r > 0 ? static_cast<double>(p.total_iterations - p.iteration) / r : NAN;
  }
  void draw(const TrainProgress& p) const {
    constexpr int kWidth = 30;
    const double frac = p.total_iterations > 0 ? static_cast<double>(p.iteration) /
                                                     static_cast<double>(p.total_iterations)
                                               : 1.0;
    const int filled = static_cast<int>(frac * kWidth);
    std::string bar(static_cast<std::size_t>(filled), '#');
    bar.append(static_cast<std::size_t>(kWidth - filled), '-');
    std::fprintf(stderr, "\r\033[K[%s] %3.0f%% epoch %d/%d %.1f it/s ETA %s loss %.4f", bar.c_str(),
                 100 * frac, p.epoch, p.epochs, rate(p), clock_text(eta(p)).c_str(), p.loss);
    std::fflush(stderr);
  }

  bool bar_;
  int log_every_;
  bool drawn_ = false;
  std::chrono::steady_clock::time_point start_, last_draw_;
  TrainProgress last_;
};

}  // namespace

Command add_train_command(CLI::App& app) {
  struct State {
    TrainConfig c;
    CommonOptions common;
    std::string activation = "relu", progress = "auto", checkpoint, model_path, report, config;
    std::string sampler = "langevin";
    std::string loss = "cd", hessian = "exact", projection = "rademacher", dsm_sign = "correct";
    std::vector<std::string> data_params;
    std::vector<int> hidden;
    bool no_output = false, no_checkpoint = false;
  };
  auto s = std::make_shared<State>();
  TrainConfig& c = s->c;
  s->hidden = c.model.hidden;
  c.checkpoint_every = 10;
  CLI::App* cmd = app.add_subcommand(
      "train",
      "Trains an MLP energy on a 2-D dataset with contrastive divergence and Langevin, MALA, "
      "HMC or tempering negatives (TorchEBM's Gaussian-mixture tutorial by default) or with a "
      "score-matching loss (--loss sm, ssm or dsm); writes the density "
      "figures, the final samples, the model (safetensors) and checkpoints, and prints the "
      "metrics. Settings come from flags and/or a JSON config file (--config); flags override "
      "the file. --recipe auto gives per-dataset defaults that learn every dataset "
      "(docs/quality.md). A run whose negatives leave the data's range by orders of magnitude, "
      "whose loss explodes or whose final test NLL lies more than 10 nats above the flat "
      "density's on the metric box prints 'WARNING: training diverged ...' on stderr and in the "
      "summary, and its report.json says \"diverged\": true; it still runs to the end and exits "
      "0.");
  cmd->add_option("--config", s->config,
                  "JSON config file: an object of flag names without dashes and their values, "
                  "e.g. {\"epochs\": 50, \"hidden\": [32, 32], \"data_param\": {\"n\": 1000}}; "
                  "flags given on the command line override it");
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
                  "Dataset parameter key=value, repeatable (n, components, std, radius, noise, "
                  "...; default: the dataset's own defaults, for gaussian_mixture the "
                  "tutorial's n=500 components=4 std=0.1 radius=1.5); given any, they override "
                  "the dataset's own defaults");
  cmd->add_option("--data-seed", c.data_seed, "Seed of the dataset")->capture_default_str();
  cmd->add_option("--recipe", c.recipe,
                  "tutorial (TorchEBM's settings as given) or auto: per-dataset defaults from "
                  "docs/quality.md, --energy-reg 1 (gaussian_mixture), --energy-reg 1 --sampler "
                  "mala (grid also --hidden 128 128; every other dataset as is); flags and config "
                  "keys given explicitly override the recipe")
      ->check(CLI::IsMember(recipe_names()))
      ->capture_default_str();
  cmd->add_option("--range", c.plot_range,
                  "Half-width of the figures' and metrics' box [-range, range]^2 (default: the "
                  "smallest multiple of 0.5 holding the dataset, at least 2.5; checkerboard 4.5)");
  at_least(cmd->add_option("--hidden", s->hidden, "Hidden widths, e.g. --hidden 64 64")
               ->capture_default_str(),
           1);
  cmd->add_option("--activation", s->activation, "relu, silu, tanh, softplus, leaky_relu, gelu")
      ->capture_default_str();
  at_least(cmd->add_option("--epochs", c.epochs, "Training epochs")->capture_default_str(), 1);
  at_least(cmd->add_option("--batch-size", c.batch_size,
                           "Batch size (the last partial batch is dropped; cut to the dataset's "
                           "size when larger)")
               ->capture_default_str(),
           1);
  cmd->add_option("--lr", c.adam.lr, "Adam learning rate")->capture_default_str();
  cmd->add_option("--weight-decay", c.adam.weight_decay, "Adam weight decay")
      ->capture_default_str();
  cmd->add_option("--clip", c.max_grad_norm, "clip_grad_norm max norm (<= 0: off)")
      ->capture_default_str();
  at_least(cmd->add_option("-k,--k-steps", c.cd.k_steps, "Sampler steps per CD iteration")
               ->capture_default_str(),
           1);
  cmd->add_flag("--persistent", c.cd.persistent, "Persistent CD with TorchEBM's replay buffer");
  cmd->add_flag("--per-chain", c.cd.per_chain,
                "With --persistent: one chain per batch row instead of the replay buffer");
  cmd->add_flag("--reinit-from-noise", c.cd.reinit_from_noise,
                "With --persistent: refreshed rows restart from N(0, I) instead of a nudge");
  at_least(cmd->add_option("--buffer-size", c.cd.buffer_size, "Replay buffer rows")
               ->capture_default_str(),
           1);
  at_least(cmd->add_option("--init-steps", c.cd.init_steps, "Sampler steps initialising the buffer")
               ->capture_default_str(),
           0);
  cmd->add_option("--new-sample-ratio", c.cd.new_sample_ratio, "Share of refreshed start rows")
      ->capture_default_str();
  cmd->add_option("--energy-reg", c.cd.energy_reg_weight, "Weight of mean(E+^2) + mean(E-^2)")
      ->capture_default_str();
  cmd->add_option("--step-size", c.step_size, "Langevin (and MALA, tempering) step size eta")
      ->capture_default_str();
  cmd->add_option("--noise-scale", c.noise_scale,
                  "Langevin noise scale sigma (temperature sigma^2)")
      ->capture_default_str();
  cmd->add_option("--sampler", s->sampler,
                  "Sampler of the negatives, all at temperature sigma^2: langevin (TorchEBM's), "
                  "mala (Langevin's proposal, accepted or rejected), hmc (on E / sigma^2) or "
                  "tempering (MALA replicas from sigma^2 to --t-max); CPU only except langevin")
      ->check(CLI::IsMember({"langevin", "mala", "hmc", "tempering"}))
      ->capture_default_str();
  cmd->add_option("--hmc-step-size", c.negatives.hmc_step_size,
                  "HMC: leapfrog step size (0: sqrt(2 step-size) noise-scale)")
      ->capture_default_str();
  at_least(cmd->add_option("--leapfrog", c.negatives.leapfrog, "HMC: leapfrog steps per proposal")
               ->capture_default_str(),
           1);
  cmd->add_option("--mass", c.negatives.mass,
                  "HMC: mass matrix diagonal, one value (scalar) or D values; default identity");
  at_least(cmd->add_option("--replicas", c.negatives.replicas, "tempering: replicas per chain")
               ->capture_default_str(),
           2);
  cmd->add_option("--t-max", c.negatives.t_max,
                  "tempering: the hottest temperature (default: 10 sigma^2)");
  at_least(cmd->add_option("--swap-every", c.negatives.swap_every,
                           "tempering: steps between swap rounds")
               ->capture_default_str(),
           1);
  cmd->add_option("--loss", s->loss,
                  "Loss: cd (contrastive divergence with the sampler's negatives; the model "
                  "means exp(-E / sigma^2)), sm (exact score matching), ssm (sliced score "
                  "matching) or dsm (denoising score matching); the score-matching losses use "
                  "no negatives and train exp(-E) (T = 1; use a smooth activation: ReLU's "
                  "zero second derivative leaves sm only |dE/dx|^2 to push down)")
      ->check(CLI::IsMember({"cd", "sm", "ssm", "dsm"}))
      ->capture_default_str();
  cmd->add_option("--hessian", s->hessian,
                  "sm: exact (the Hessian's trace, default) or torchebm_approx (TorchEBM's "
                  "finite-difference estimate, which is tr H / D: off by the factor D)")
      ->check(CLI::IsMember({"exact", "torchebm_approx"}))
      ->capture_default_str();
  at_least(
      cmd->add_option("--projections", c.score.n_projections, "ssm: random projections per row")
          ->capture_default_str(),
      1);
  cmd->add_option("--projection", s->projection, "ssm: rademacher, sphere or gaussian")
      ->check(CLI::IsMember({"rademacher", "sphere", "gaussian"}))
      ->capture_default_str();
  cmd->add_option("--dsm-noise", c.score.noise_scale, "dsm: the noise scale sigma (> 0)")
      ->capture_default_str();
  cmd->add_option("--dsm-sign", s->dsm_sign,
                  "dsm: correct (the model's score is -dE/dx, default) or torchebm (TorchEBM "
                  "0.3.17's sign, which trains the inverted density; for reproduction only)")
      ->check(CLI::IsMember({"correct", "torchebm"}))
      ->capture_default_str();
  cmd->add_option("--sm-reg", c.score.regularization_strength,
                  "sm, ssm, dsm: weight lambda of lambda mean |dE/dx|^2 (>= 0)")
      ->capture_default_str();
  cmd->add_option("-o,--output", c.output_dir,
                  "Folder for figures, samples.npy, model.safetensors and checkpoint.safetensors")
      ->capture_default_str();
  cmd->add_flag("--no-output", s->no_output,
                "Write no figures, samples or report (metrics only; --model, --checkpoint and "
                "--report still write when given)");
  at_least(cmd->add_option("--figure-every", c.figure_every, "Epochs between figures")
               ->capture_default_str(),
           1);
  at_least(
      cmd->add_option("--figure-samples", c.figure_samples, "Model samples drawn in each figure")
          ->capture_default_str(),
      1);
  at_least(
      cmd->add_option("--figure-steps", c.figure_steps, "Langevin steps of the figures' samples")
          ->capture_default_str(),
      0);
  at_least(cmd->add_option("--final-steps", c.final_steps, "Langevin steps of the final samples")
               ->capture_default_str(),
           0);
  at_least(cmd->add_option("--log-every", c.log_every, "Epochs between loss lines")
               ->capture_default_str(),
           1);
  cmd->add_option("--model", s->model_path,
                  "Write the final model here (default: <output>/model.safetensors)");
  cmd->add_option("--report", s->report,
                  "Write the JSON report of the run here (default: <output>/report.json): "
                  "losses, metrics, files and \"diverged\" with its reason");
  cmd->add_option("--checkpoint", s->checkpoint,
                  "Checkpoint file (default: <output>/checkpoint.safetensors)");
  at_least(cmd->add_option("--checkpoint-every", c.checkpoint_every,
                           "Epochs between checkpoints (0: only at the end)")
               ->capture_default_str(),
           0);
  cmd->add_flag("--no-checkpoint", s->no_checkpoint, "Write no checkpoints");
  cmd->add_option("--resume", c.resume_from,
                  "Continue the run of this checkpoint (same settings; --epochs may be larger); "
                  "the result is bit-identical to the uninterrupted run");
  cmd->add_option("--progress", s->progress,
                  "auto (a bar on a terminal, plain lines otherwise), bar, plain or none")
      ->capture_default_str()
      ->check(CLI::IsMember({"auto", "bar", "plain", "none"}));
  add_common_options(cmd, &s->common, "Seed of the parameters, noise and shuffling");
  return {
      cmd, [s, cmd]() {
        if (!s->config.empty()) apply_json_config(cmd, s->config);
        TrainConfig& c = s->c;
        c.model.hidden = s->hidden;
        c.model.activation = parse_activation(s->activation);
        c.negatives.kind = parse_negative_sampler(s->sampler);
        c.loss = parse_training_loss(s->loss);
        // A score-matching setting given for a loss it does not belong to is a mistake.
        const auto only_for = [&](const char* flag, std::initializer_list<TrainingLoss> ok) {
          if (cmd->get_option(flag)->count() == 0) return;
          for (TrainingLoss l : ok)
            if (l == c.loss) return;
          std::string names;
          for (TrainingLoss l : ok) names += (names.empty() ? "" : " or ") + training_loss_name(l);
          throw InvalidArgument(std::string(flag) + " applies to --loss " + names +
                                ", not --loss " + training_loss_name(c.loss));
        };
        only_for("--hessian", {TrainingLoss::sm});
        only_for("--projections", {TrainingLoss::ssm});
        only_for("--projection", {TrainingLoss::ssm});
        only_for("--dsm-noise", {TrainingLoss::dsm});
        only_for("--dsm-sign", {TrainingLoss::dsm});
        only_for("--sm-reg", {TrainingLoss::sm, TrainingLoss::ssm, TrainingLoss::dsm});
        c.score.hessian_method = parse_hessian_method(s->hessian);
        c.score.projection_type = parse_projection_type(s->projection);
        c.score.denoising_sign = parse_denoising_sign(s->dsm_sign);
        if (!s->data_params.empty())
          c.dataset_params = parse_key_values(s->data_params, "--data-param");
        c.device = parse_device(s->common.device);
        c.threads = s->common.threads;
        c.seed = s->common.seed;
        // What the recipe must not touch: the settings given as flags or config keys.
        for (const char* flag : {"energy-reg", "sampler", "hidden"})
          if (cmd->get_option(std::string("--") + flag)->count() > 0)
            c.explicit_settings.insert(flag);
        const std::string out = c.output_dir;
        if (s->no_output) c.output_dir.clear();
        c.model_path = s->model_path;
        if (c.model_path.empty() && !s->no_output) c.model_path = out + "/model.safetensors";
        c.checkpoint_path = s->checkpoint;
        if (c.checkpoint_path.empty() && !s->no_output)
          c.checkpoint_path = out + "/checkpoint.safetensors";
        if (s->no_checkpoint) c.checkpoint_path.clear();
        c.report_path = s->report;
        if (c.report_path.empty() && !s->no_output) c.report_path = out + "/report.json";
        // Names and parameters first, so that a bad one leaves no output folder behind.
        make_dataset(c.dataset, resolved_dataset_params(c), c.data_seed);
        if (!c.resume_from.empty()) read_resume_checkpoint(c);
        validate_train_config(c);
        const bool bar = s->progress == "bar" || (s->progress == "auto" && ::isatty(STDERR_FILENO));
        Progress progress(bar, c.log_every);
        std::map<std::string, std::string> applied;
        const TrainConfig resolved = resolve_recipe(c, &applied);
        if (!applied.empty()) {
          std::string flags;
          for (const auto& [flag, value] : applied) flags += " --" + flag + " " + value;
          std::printf("Recipe %s for %s:%s\n", c.recipe.c_str(), c.dataset.c_str(), flags.c_str());
        }
        if (is_score_matching(c.loss))
          std::printf(
              "cuEBM train on %s, %d thread(s); dataset %s; model %s; loss %s, no "
              "negatives; T = 1\n",
              c.device.to_string().c_str(), c.threads > 0 ? c.threads : num_threads(),
              c.dataset.c_str(), Mlp(c.model, c.seed).name().c_str(),
              training_loss_name(c.loss).c_str());
        else
          std::printf(
              "cuEBM train on %s, %d thread(s); dataset %s; model %s; loss cd, %s negatives; "
              "T = sigma^2 = %g\n",
              c.device.to_string().c_str(), c.threads > 0 ? c.threads : num_threads(),
              c.dataset.c_str(), Mlp(resolved.model, c.seed).name().c_str(),
              negative_sampler_name(resolved.negatives.kind).c_str(),
              static_cast<double>(c.noise_scale) * c.noise_scale);
        const auto log = [&](const std::string& line) { progress.log(line); };
        std::function<void(const TrainProgress&)> on_step;
        if (s->progress != "none") on_step = [&](const TrainProgress& p) { progress.update(p); };
        const auto warn = [&](const std::string& line) { progress.warn(line); };
        // A diverged run still exits 0 (it finished); the warning and the report say so.
        const TrainReport r = run_training(c, log, on_step, warn);
        std::fputs(training_summary(r).c_str(), stdout);
        // A diverged run exits 0 too: it ran to the end (the report says "diverged").
        return kExitOk;
      }};
}

}  // namespace cuebm::cli
