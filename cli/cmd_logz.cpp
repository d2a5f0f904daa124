// cuebm logz: log Z of a model file or an analytic energy by annealed importance sampling.
#include <cstdio>
#include <memory>

#include "common.hpp"
#include "cuebm/runtime/error.hpp"
#include "cuebm/sampling/ais.hpp"

namespace cuebm::cli {

Command add_logz_command(CLI::App& app) {
  struct State {
    CommonOptions common;
    EnergySource source;
    AisOptions ais;
  };
  auto s = std::make_shared<State>();
  CLI::App* cmd = app.add_subcommand(
      "logz",
      "Estimates log Z = log integral of exp(-E(x) / T) for a model file or an analytic energy of "
      "any dimension by annealed importance sampling (Neal 2001: from N(0, I) through "
      "--ais-steps intermediate densities, MALA transitions) and prints log Z, its standard "
      "error, the effective sample size of the weights and the MALA acceptance. On the GPU "
      "(--device), every chain runs its whole annealing path in one kernel.");
  add_energy_options(cmd, &s->source, true);
  at_least(cmd->add_option("--ais-steps", s->ais.n_temperatures, "Intermediate temperatures K")
               ->capture_default_str(),
           1);
  at_least(cmd->add_option("-n,--chains", s->ais.n_chains, "Number of AIS chains")
               ->capture_default_str(),
           2);
  at_least(cmd->add_option("--mcmc-steps", s->ais.mcmc_steps, "MALA transitions per temperature")
               ->capture_default_str(),
           1);
  cmd->add_option("--step-size", s->ais.step_size, "MALA step size")->capture_default_str();
  cmd->add_option("--temperature", s->ais.temperature, "T of the target exp(-E / T)")
      ->capture_default_str();
  add_common_options(cmd, &s->common, "Seed of the chains");
  return {cmd, [s]() {
            const Device device = apply_common_options(s->common);
            const std::unique_ptr<Energy> energy = load_energy(s->source);
            AisOptions o = s->ais;
            o.seed = s->common.seed;
            const AisResult r = ais_log_partition(*energy, o, device);
            std::printf(
                "log Z = %.6f +- %.6f (T = %g, %lld chains, %d temperatures, ESS %.1f, "
                "MALA acceptance %.3f)\n",
                r.log_z, r.std_error, o.temperature, static_cast<long long>(o.n_chains),
                o.n_temperatures, r.ess, r.acceptance);
            return kExitOk;
          }};
}

}  // namespace cuebm::cli
