// cuebm eval: energies and dE/dx of a model (or an analytic energy) at the points of an .npy
// file.
#include <memory>

#include "common.hpp"
#include "cuebm/io/npy.hpp"
#include "cuebm/runtime/error.hpp"

namespace cuebm::cli {

Command add_eval_command(CLI::App& app) {
  struct State {
    CommonOptions common;
    EnergySource source;
    std::string input, energies, gradients;
  };
  auto s = std::make_shared<State>();
  CLI::App* cmd = app.add_subcommand(
      "eval",
      "Energies E(x) and gradients dE/dx at the points of an .npy file (n x D, float32 or "
      "float64), written as float32 .npy files: energies (n,), gradients (n, D).");
  add_energy_options(cmd, &s->source, true);
  cmd->add_option("-i,--input", s->input, "Points, an .npy file (n, D)")->required();
  cmd->add_option("-e,--energies", s->energies, "Output .npy of the energies (n,)");
  cmd->add_option("-g,--gradients", s->gradients, "Output .npy of the gradients (n, D)");
  add_common_options(cmd, &s->common, "Unused (accepted for uniformity)");
  return {cmd, [s]() {
            if (s->energies.empty() && s->gradients.empty())
              throw InvalidArgument("eval: give --energies and/or --gradients");
            apply_common_options(s->common);  // energies are evaluated on the CPU backend
            const std::unique_ptr<Energy> energy = load_energy(s->source);
            int64_t n = 0;
            const std::vector<float> x = read_points(s->input, energy->dim(), &n);
            std::vector<float> e(static_cast<std::size_t>(n));
            std::vector<float> g;
            if (s->gradients.empty()) {
              energy->energy(x.data(), n, e.data());
            } else {
              g.resize(x.size());
              energy->gradient(x.data(), n, g.data(), e.data());
            }
            OutputGuard guard;
            if (!s->energies.empty()) {
              write_npy(s->energies, e.data(), {n});
              guard.add(s->energies);
            }
            if (!s->gradients.empty()) {
              const int64_t d = energy->dim();
              write_npy(s->gradients, g.data(), {n, d});
              guard.add(s->gradients);
            }
            guard.release();
            return kExitOk;
          }};
}

}  // namespace cuebm::cli
