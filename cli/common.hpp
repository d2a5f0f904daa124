// Shared pieces of the cuebm command: options every subcommand takes, energies from model files
// or by name, key=value parameters, and the exit codes.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cuebm/models/energy.hpp"
#include "cuebm/runtime/device.hpp"

namespace cuebm::cli {

// Exit codes scripts can rely on.
inline constexpr int kExitOk = 0;
inline constexpr int kExitUsage = 1;      // bad flags or arguments (CLI11)
inline constexpr int kExitInvalid = 2;    // invalid input: values, files (InvalidArgument, IoError)
inline constexpr int kExitNumerical = 3;  // NaN/Inf in a chain or a training run
inline constexpr int kExitCuda = 4;       // a CUDA call failed
inline constexpr const char* kExitCodesFooter =
    "Exit codes: 0 success, 1 usage error (unknown or malformed flags), 2 invalid input (bad "
    "values, unreadable or malformed files, unknown names or config keys), 3 numerical failure "
    "(NaN or Inf), 4 CUDA error.";

// --device, --threads, --seed.
struct CommonOptions {
  std::string device = "auto";
  int threads = 0;
  uint64_t seed = 0;
};
void add_common_options(CLI::App* cmd, CommonOptions* common, const std::string& seed_help);

// Checks an integer option (each value of a list option): a value below `min` is invalid
// input, "--name must be >= min, got v" (InvalidArgument, exit code 2), instead of CLI11's
// range message. A value that is not an integer is left to CLI11's conversion (usage error).
CLI::Option* at_least(CLI::Option* option, long long min);
// Parses and checks the device and sets the thread count; returns the device.
Device apply_common_options(const CommonOptions& common);

// A subcommand: registers its options on `app` and returns the function that runs it.
using Runner = std::function<int()>;
struct Command {
  CLI::App* app;
  Runner run;
};
Command add_train_command(CLI::App& app);
Command add_sample_command(CLI::App& app);
Command add_eval_command(CLI::App& app);
Command add_metrics_command(CLI::App& app);
Command add_logz_command(CLI::App& app);

// "key=value" items as numbers; `what` names the flag in errors (InvalidArgument).
std::map<std::string, double> parse_key_values(const std::vector<std::string>& items,
                                               const std::string& what);

// Where an energy comes from: a model file or an analytic energy by name.
struct EnergySource {
  std::string model_path;
  std::string activation;  // for model files that record none
  std::string energy;      // analytic name
  int dim = 2;
  std::vector<std::string> params;
};
void add_energy_options(CLI::App* cmd, EnergySource* source, bool required);
// nullptr when neither --model nor --energy was given and !required.
std::unique_ptr<Energy> load_energy(const EnergySource& source);

// Reads an .npy file of points, n x dim (a 1-D file of n values when dim == 1). A NaN or Inf
// is invalid input naming the file, the row and the column.
std::vector<float> read_points(const std::string& path, int dim, int64_t* n);

// Removes the files it holds unless release() is called: no partial output on failure.
class OutputGuard {
 public:
  void add(const std::string& path) { paths_.push_back(path); }
  void release() { paths_.clear(); }
  ~OutputGuard();

 private:
  std::vector<std::string> paths_;
};

}  // namespace cuebm::cli
