// The TorchEBM Gaussian-mixture tutorial in cuEBM: trains an MLP energy with CD-k and
// Langevin negatives (or --sampler mala, hmc, tempering), or with a score-matching loss
// (--loss sm, ssm, dsm), writes the tutorial's figures and prints the final metrics.
#include <CLI/CLI.hpp>
#include <cmath>
#include <cstdio>
#include <iostream>

#include "cuebm/cuebm.hpp"
#include "cuebm/data/datasets.hpp"
#include "cuebm/training/training.hpp"

namespace {

std::map<std::string, double> parse_params(const std::vector<std::string>& items) {
  std::map<std::string, double> params;
  for (const std::string& item : items) {
    const auto eq = item.find('=');
    if (eq == std::string::npos || eq == 0)
      throw cuebm::InvalidArgument("--data-param expects key=value, got '" + item + "'");
    char* end = nullptr;
    const double v = std::strtod(item.c_str() + eq + 1, &end);
    if (end == item.c_str() + eq + 1 || *end != '\0')
      throw cuebm::InvalidArgument("--data-param " + item.substr(0, eq) + ": '" +
                                   item.substr(eq + 1) + "' is not a number");
    params[item.substr(0, eq)] = v;
  }
  return params;
}

}  // namespace

int main(int argc, char** argv) {
  cuebm::TrainConfig c;
  CLI::App app{
      "Trains an MLP energy on a 2-D dataset with contrastive divergence and Langevin "
      "negatives (TorchEBM's Gaussian-mixture tutorial by default), writes the density "
      "figures and the final samples, and prints the metrics."};
  std::string activation = "relu", device = "auto", sampler = "langevin";
  std::string loss = "cd", hessian = "exact", projection = "rademacher", dsm_sign = "correct";
  std::vector<std::string> data_params;
  std::vector<int> hidden = c.model.hidden;
  bool no_output = false;
  app.add_option(
         "--dataset", c.dataset,
         "Dataset: " +
             [] {
               std::string s;
               for (const auto& n : cuebm::dataset_names()) s += (s.empty() ? "" : ", ") + n;
               return s;
             }())
      ->capture_default_str();
  app.add_option("--data-param", data_params,
                 "Dataset parameter key=value, repeatable (n, components, std, radius, noise, "
                 "...; default: the dataset's own defaults, for gaussian_mixture the "
                 "tutorial's n=500 components=4 std=0.1 radius=1.5); given any, they override "
                 "the dataset's own defaults");
  app.add_option("--data-seed", c.data_seed, "Seed of the dataset")->capture_default_str();
  app.add_option("--recipe", c.recipe,
                 "tutorial (the settings as given) or auto: per-dataset defaults from "
                 "docs/quality.md (--energy-reg 1; --sampler mala except gaussian_mixture; grid "
                 "--hidden 128 128); explicit flags override it")
      ->check(CLI::IsMember(cuebm::recipe_names()))
      ->capture_default_str();
  app.add_option("--range", c.plot_range,
                 "Half-width of the figures' and metrics' box (default: the dataset's extent, "
                 "rounded up to 0.5, at least 2.5)");
  app.add_option("--hidden", hidden, "Hidden widths, e.g. --hidden 64 64")->capture_default_str();
  app.add_option("--activation", activation, "relu, silu, tanh, softplus, leaky_relu, gelu")
      ->capture_default_str();
  app.add_option("--epochs", c.epochs, "Training epochs")->capture_default_str();
  app.add_option("--batch-size", c.batch_size, "Batch size (the last partial batch is dropped)")
      ->capture_default_str();
  app.add_option("--lr", c.adam.lr, "Adam learning rate")->capture_default_str();
  app.add_option("--weight-decay", c.adam.weight_decay, "Adam weight decay")->capture_default_str();
  app.add_option("--clip", c.max_grad_norm, "clip_grad_norm max norm (<= 0: off)")
      ->capture_default_str();
  app.add_option("-k,--k-steps", c.cd.k_steps, "Sampler steps per CD iteration")
      ->capture_default_str();
  app.add_flag("--persistent", c.cd.persistent, "Persistent CD with TorchEBM's replay buffer");
  app.add_flag("--per-chain", c.cd.per_chain,
               "With --persistent: one chain per batch row instead of the replay buffer");
  app.add_flag("--reinit-from-noise", c.cd.reinit_from_noise,
               "With --persistent: refreshed rows restart from N(0, I) instead of a nudge");
  app.add_option("--buffer-size", c.cd.buffer_size, "Replay buffer rows")->capture_default_str();
  app.add_option("--init-steps", c.cd.init_steps, "Langevin steps initialising the buffer")
      ->capture_default_str();
  app.add_option("--new-sample-ratio", c.cd.new_sample_ratio, "Share of refreshed start rows")
      ->capture_default_str();
  app.add_option("--energy-reg", c.cd.energy_reg_weight, "Weight of mean(E+^2) + mean(E-^2)")
      ->capture_default_str();
  app.add_option("--step-size", c.step_size, "Langevin step size eta")->capture_default_str();
  app.add_option("--noise-scale", c.noise_scale, "Langevin noise scale sigma (temperature sigma^2)")
      ->capture_default_str();
  app.add_option("--sampler", sampler,
                 "Sampler of the negatives, all at temperature sigma^2: langevin (TorchEBM's), "
                 "mala, hmc (on E / sigma^2) or tempering; CPU only except langevin")
      ->check(CLI::IsMember({"langevin", "mala", "hmc", "tempering"}))
      ->capture_default_str();
  app.add_option("--hmc-step-size", c.negatives.hmc_step_size,
                 "HMC: leapfrog step size (0: sqrt(2 step-size) noise-scale)")
      ->capture_default_str();
  app.add_option("--leapfrog", c.negatives.leapfrog, "HMC: leapfrog steps per proposal")
      ->capture_default_str();
  app.add_option("--mass", c.negatives.mass,
                 "HMC: mass matrix diagonal, one value (scalar) or D values; default identity");
  app.add_option("--replicas", c.negatives.replicas, "tempering: replicas per chain")
      ->capture_default_str();
  app.add_option("--t-max", c.negatives.t_max,
                 "tempering: the hottest temperature (default: 10 sigma^2)");
  app.add_option("--swap-every", c.negatives.swap_every, "tempering: steps between swap rounds")
      ->capture_default_str();
  app.add_option("--loss", loss,
                 "cd (contrastive divergence, T = sigma^2), or score matching at T = 1 without "
                 "negatives: sm (exact), ssm (sliced), dsm (denoising); with score matching use a "
                 "smooth activation (silu, softplus, tanh, gelu)")
      ->check(CLI::IsMember({"cd", "sm", "ssm", "dsm"}))
      ->capture_default_str();
  app.add_option("--hessian", hessian, "sm: exact or torchebm_approx (off by the factor D)")
      ->check(CLI::IsMember({"exact", "torchebm_approx"}))
      ->capture_default_str();
  app.add_option("--projections", c.score.n_projections, "ssm: projections per row")
      ->capture_default_str();
  app.add_option("--projection", projection, "ssm: rademacher, sphere or gaussian")
      ->check(CLI::IsMember({"rademacher", "sphere", "gaussian"}))
      ->capture_default_str();
  app.add_option("--dsm-noise", c.score.noise_scale, "dsm: noise scale sigma")
      ->capture_default_str();
  app.add_option("--dsm-sign", dsm_sign, "dsm: correct or torchebm (TorchEBM's inverted sign)")
      ->check(CLI::IsMember({"correct", "torchebm"}))
      ->capture_default_str();
  app.add_option("--sm-reg", c.score.regularization_strength,
                 "sm, ssm, dsm: weight of lambda mean |dE/dx|^2")
      ->capture_default_str();
  app.add_option("--seed", c.seed, "Seed of the parameters, noise and shuffling")
      ->capture_default_str();
  app.add_option("-o,--output", c.output_dir, "Folder for figures, samples.npy and report.json")
      ->capture_default_str();
  app.add_flag("--no-output", no_output, "Write no files (metrics only)");
  app.add_option("--figure-every", c.figure_every, "Epochs between figures")->capture_default_str();
  app.add_option("--figure-samples", c.figure_samples, "Model samples drawn in each figure")
      ->capture_default_str();
  app.add_option("--log-every", c.log_every, "Epochs between loss lines")->capture_default_str();
  app.add_option("--device", device, "cpu, cuda, cuda:N or auto (CUDA when present)")
      ->capture_default_str();
  app.add_option("--threads", c.threads, "CPU threads (0: all cores)")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  for (const char* flag : {"energy-reg", "sampler", "hidden"})
    if (app.get_option(std::string("--") + flag)->count() > 0) c.explicit_settings.insert(flag);

  try {
    c.model.hidden = hidden;
    c.model.activation = cuebm::parse_activation(activation);
    c.negatives.kind = cuebm::parse_negative_sampler(sampler);
    c.loss = cuebm::parse_training_loss(loss);
    c.score.hessian_method = cuebm::parse_hessian_method(hessian);
    c.score.projection_type = cuebm::parse_projection_type(projection);
    c.score.denoising_sign = cuebm::parse_denoising_sign(dsm_sign);
    if (!data_params.empty()) c.dataset_params = parse_params(data_params);
    c.device = cuebm::parse_device(device);
    if (no_output) c.output_dir.clear();
    if (!c.output_dir.empty()) c.report_path = c.output_dir + "/report.json";
    const cuebm::TrainConfig resolved = cuebm::resolve_recipe(c);
    std::printf(
        "cuEBM %s on %s, %d thread(s); dataset %s; recipe %s; model %s; loss %s; T = %g (%s)\n",
        "train_gaussian_mixture", c.device.to_string().c_str(),
        c.threads > 0 ? c.threads : cuebm::num_threads(), c.dataset.c_str(), c.recipe.c_str(),
        cuebm::Mlp(resolved.model, c.seed).name().c_str(),
        cuebm::training_loss_name(c.loss).c_str(), cuebm::training_temperature(c),
        cuebm::training_temperature_source(c).c_str());
    const cuebm::TrainReport r =
        cuebm::run_training(c, [](const std::string& line) { std::printf("%s\n", line.c_str()); });
    // A diverged run warned on stderr when it happened (or at the end, from the final metrics);
    // it finished, so it still exits 0.
    std::fputs(cuebm::training_summary(r).c_str(), stdout);
  } catch (const cuebm::Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 2;
  }
  return 0;
}
