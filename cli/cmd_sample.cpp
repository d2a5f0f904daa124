// cuebm sample: Langevin chains on a model file or an analytic energy.
#include <memory>

#include "common.hpp"
#include "cuebm/io/npy.hpp"
#include "cuebm/runtime/error.hpp"
#include "cuebm/sampling/langevin.hpp"

namespace cuebm::cli {

Command add_sample_command(CLI::App& app) {
  struct State {
    CommonOptions common;
    EnergySource source;
    int64_t chains = 1000;
    int steps = 100;
    float step_size = 1e-3f, noise_scale = 1.0f;
    std::string init, output;
  };
  auto s = std::make_shared<State>();
  CLI::App* cmd = app.add_subcommand(
      "sample",
      "Runs unadjusted Langevin chains x <- x - eta grad E(x) + sqrt(2 eta) sigma eps on a model "
      "file or an analytic energy (target exp(-E / sigma^2)) and writes the final states as a "
      "float32 .npy file (chains, D).");
  add_energy_options(cmd, &s->source, true);
  auto* chains =
      at_least(cmd->add_option("-n,--chains", s->chains,
                               "Number of chains (default: 1000, or the rows of --init)"),
               1);
  at_least(cmd->add_option("--steps", s->steps, "Langevin steps")->capture_default_str(), 0);
  cmd->add_option("--step-size", s->step_size, "Step size eta")->capture_default_str();
  cmd->add_option("--noise-scale", s->noise_scale, "Noise scale sigma (temperature sigma^2)")
      ->capture_default_str();
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
            LangevinOptions o;
            o.n_steps = s->steps;
            o.step_size = s->step_size;
            o.noise_scale = s->noise_scale;
            o.seed = s->common.seed;
            const LangevinResult r =
                langevin_sample(*energy, x0.empty() ? nullptr : x0.data(), n, o, device);
            write_npy(s->output, r.samples.data(), {r.n_chains, r.dim});
            return kExitOk;
          }};
}

}  // namespace cuebm::cli
