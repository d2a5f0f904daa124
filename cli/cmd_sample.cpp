// cuebm sample: Langevin, MALA or HMC chains on a model file or an analytic energy.
#include <cstdio>
#include <memory>

#include "common.hpp"
#include "cuebm/io/npy.hpp"
#include "cuebm/runtime/error.hpp"
#include "cuebm/sampling/langevin.hpp"
#include "cuebm/sampling/mcmc.hpp"
#include "cuebm/sampling/tempering.hpp"

namespace cuebm::cli {

Command add_sample_command(CLI::App& app) {
  struct State {
    CommonOptions common;
    EnergySource source;
    int64_t chains = 1000;
    int steps = 100;
    float step_size = 1e-3f, noise_scale = 1.0f;
    std::string init, output;
    std::string sampler = "langevin";
    int leapfrog = 10;
    std::vector<float> mass;
    int replicas = 8;
    double t_max = 0;
  };
  auto s = std::make_shared<State>();
  CLI::App* cmd = app.add_subcommand(
      "sample",
      "Runs chains on a model file or an analytic energy and writes the final states as a float32 "
      ".npy file (chains, D). --sampler langevin (default): unadjusted Langevin x <- x - eta "
      "grad E(x) + sqrt(2 eta) sigma eps, target exp(-E / sigma^2); mala: the same proposal with "
      "a Metropolis-Hastings accept/reject (exact for any step size); hmc: Hamiltonian Monte "
      "Carlo with --leapfrog steps of size --step-size and mass --mass, target exp(-E); tempering: "
      "replica-exchange parallel tempering, --replicas MALA replicas on a geometric ladder from "
      "sigma^2 to --t-max, the sigma^2 replicas written.");
  add_energy_options(cmd, &s->source, true);
  auto* chains =
      at_least(cmd->add_option("-n,--chains", s->chains,
                               "Number of chains (default: 1000, or the rows of --init)"),
               1);
  at_least(cmd->add_option("--steps", s->steps, "Langevin steps")->capture_default_str(), 0);
  cmd->add_option("--step-size", s->step_size, "Step size eta")->capture_default_str();
  cmd->add_option("--noise-scale", s->noise_scale, "Noise scale sigma (temperature sigma^2)")
      ->capture_default_str();
  cmd->add_option("--sampler", s->sampler, "langevin, mala, hmc or tempering")
      ->check(CLI::IsMember({"langevin", "mala", "hmc", "tempering"}))
      ->capture_default_str();
  at_least(cmd->add_option("--leapfrog", s->leapfrog, "HMC: leapfrog steps per proposal")
               ->capture_default_str(),
           1);
  cmd->add_option("--mass", s->mass,
                  "HMC: mass matrix diagonal, one value (scalar) or D values; default identity");
  at_least(cmd->add_option("--replicas", s->replicas, "tempering: replicas per chain")
               ->capture_default_str(),
           2);
  cmd->add_option("--t-max", s->t_max, "tempering: the hottest temperature (default: 10 sigma^2)");
  cmd->add_option("--init", s->init, "Initial state, an .npy file (chains, D); default N(0, I)");
  cmd->add_option("-o,--output", s->output, "Output .npy file of the samples")->required();
  add_common_options(cmd, &s->common, "Seed of the initial state and the noise");
  return {cmd, [s, chains]() {
            const Device device = apply_common_options(s->common);
            const std::unique_ptr<Energy> energy = load_energy(s->source);
            std::vector<float> x0;
            int64_t n = s->chains;
            if (!s->init.empty()) {
              int64_t rows = 0;
              x0 = read_points(s->init, energy->dim(), &rows);
              if (chains->count() > 0 && rows != n)
                throw InvalidArgument("sample: --init '" + s->init + "' holds " +
                                      std::to_string(rows) + " chains but --chains is " +
                                      std::to_string(n));
              n = rows;
            }
            const float* start = x0.empty() ? nullptr : x0.data();
            if (s->sampler == "tempering") {
              TemperingOptions o;
              o.n_replicas = s->replicas;
              o.t_min = static_cast<double>(s->noise_scale) * s->noise_scale;
              o.t_max = s->t_max > 0 ? s->t_max : 10 * o.t_min;
              o.step_size = s->step_size;
              o.n_steps = s->steps;
              o.seed = s->common.seed;
              const TemperingResult r = parallel_tempering(*energy, start, n, o, device);
              write_npy(s->output, r.samples.data(), {r.n_chains, r.dim});
              std::printf("tempering: %d replicas from T = %g to %g; swap acceptance", o.n_replicas,
                          o.t_min, o.t_max);
              for (double a : r.swap_acceptance) std::printf(" %.3f", a);
              std::printf("\n");
              return kExitOk;
            }
            if (s->sampler != "langevin") {
              McmcResult r;
              if (s->sampler == "mala") {
                MalaOptions o;
                o.n_steps = s->steps;
                o.step_size = s->step_size;
                o.noise_scale = s->noise_scale;
                o.seed = s->common.seed;
                r = mala_sample(*energy, start, n, o, device);
              } else {
                HmcOptions o;
                o.n_steps = s->steps;
                o.step_size = s->step_size;
                o.n_leapfrog = s->leapfrog;
                o.mass = s->mass;
                o.seed = s->common.seed;
                r = hmc_sample(*energy, start, n, o, device);
              }
              write_npy(s->output, r.samples.data(), {r.n_chains, r.dim});
              std::printf("%s: mean acceptance %.4f over %lld chains, temperature %g\n",
                          s->sampler.c_str(), r.mean_acceptance, static_cast<long long>(r.n_chains),
                          r.temperature);
              return kExitOk;
            }
            LangevinOptions o;
            o.n_steps = s->steps;
            o.step_size = s->step_size;
            o.noise_scale = s->noise_scale;
            o.seed = s->common.seed;
            const LangevinResult r = langevin_sample(*energy, start, n, o, device);
            write_npy(s->output, r.samples.data(), {r.n_chains, r.dim});
            return kExitOk;
          }};
}

}  // namespace cuebm::cli
