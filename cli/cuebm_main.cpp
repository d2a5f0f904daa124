// The cuebm command: train, sample, eval, metrics, logz and loss without writing C++.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <exception>
#include <new>

#include "common.hpp"
#include "cuebm/runtime/error.hpp"

namespace cuebm::cli {
Command add_loss_command(CLI::App& app);  // cmd_loss.cpp
}  // namespace cuebm::cli

namespace {

using namespace cuebm::cli;

int report(const char* kind, const std::exception& e, int code) {
  std::fprintf(stderr, "cuebm: %s%s\n", kind, e.what());
  return code;
}

// Runs fn, mapping cuEBM's exceptions to the documented exit codes.
template <typename Fn>
int guarded(Fn&& fn) {
  try {
    return fn();
  } catch (const cuebm::NumericalError& e) {
    return report("numerical failure: ", e, kExitNumerical);
  } catch (const cuebm::CudaError& e) {
    return report("CUDA error: ", e, kExitCuda);
  } catch (const cuebm::Error& e) {
    return report("error: ", e, kExitInvalid);
  } catch (const CLI::Error& e) {
    return report("error: ", e, kExitInvalid);
  } catch (const std::bad_alloc& e) {
    return report("out of memory: ", e, kExitInvalid);
  }
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "cuEBM: energy-based models with Langevin sampling and contrastive divergence.\n"
      "Model files are safetensors files with PyTorch's state_dict names, so they move between "
      "PyTorch and cuEBM in both directions."};
  app.footer(kExitCodesFooter);
  app.require_subcommand(1);
  const Command commands[] = {add_train_command(app), add_sample_command(app),
                              add_eval_command(app),  add_metrics_command(app),
                              add_logz_command(app),  add_loss_command(app)};
  const int parsed = guarded([&] {
    try {
      app.parse(argc, argv);
    } catch (const CLI::CallForHelp& e) {
      return -1 - app.exit(e);
    } catch (const CLI::CallForAllHelp& e) {
      return -1 - app.exit(e);
    } catch (const CLI::CallForVersion& e) {
      return -1 - app.exit(e);
    } catch (const CLI::FileError& e) {
      // A --config file that does not exist: invalid input, not a usage error.
      std::fprintf(stderr, "cuebm: error: %s\n", e.what());
      return -1 - kExitInvalid;
    } catch (const CLI::ParseError& e) {
      app.exit(e);
      return -1 - kExitUsage;
    }
    return 0;
  });
  if (parsed != 0) return parsed < 0 ? -1 - parsed : parsed;
  for (const Command& c : commands)
    if (c.app->parsed()) return guarded(c.run);
  return kExitUsage;
}
