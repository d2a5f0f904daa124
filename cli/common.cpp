#include "common.hpp"

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "cuebm/io/npy.hpp"
#include "cuebm/io/safetensors.hpp"
#include "cuebm/models/analytic.hpp"
#include "cuebm/runtime/error.hpp"

namespace cuebm::cli {

void add_common_options(CLI::App* cmd, CommonOptions* common, const std::string& seed_help) {
  cmd->add_option("--device", common->device, "cpu, cuda, cuda:N or auto (CUDA when present)")
      ->capture_default_str();
  at_least(cmd->add_option("--threads", common->threads, "CPU threads (0: all cores)")
               ->capture_default_str(),
           0);
  cmd->add_option("--seed", common->seed, seed_help)->capture_default_str();
  cmd->footer(kExitCodesFooter);
}

CLI::Option* at_least(CLI::Option* option, long long min) {
  const std::string name = "--" + option->get_lnames().front();
  const std::string desc = min == 0   ? "NONNEGATIVE"
                           : min == 1 ? "POSITIVE"
                                      : ">= " + std::to_string(min);
  return option->check(CLI::Validator(
      [name, min](std::string& input) -> std::string {
        char* end = nullptr;
        errno = 0;
        const long long v = std::strtoll(input.c_str(), &end, 10);
        if (end == input.c_str() || *end != '\0') return {};  // CLI11's conversion reports it
        if (v < min || (errno == ERANGE && input[0] == '-'))
          throw InvalidArgument(name + " must be >= " + std::to_string(min) + ", got " + input);
        return {};
      },
      desc));
}

Device apply_common_options(const CommonOptions& common) {
  const Device device = parse_device(common.device);
  check_device(device);
  if (common.threads > 0) set_num_threads(common.threads);
  return device;
}

std::map<std::string, double> parse_key_values(const std::vector<std::string>& items,
                                               const std::string& what) {
  std::map<std::string, double> params;
  for (const std::string& item : items) {
    const auto eq = item.find('=');
    if (eq == std::string::npos || eq == 0)
      throw InvalidArgument(what + " expects key=value, got '" + item + "'");
    char* end = nullptr;
    const double v = std::strtod(item.c_str() + eq + 1, &end);
    if (end == item.c_str() + eq + 1 || *end != '\0')
      throw InvalidArgument(what + " " + item.substr(0, eq) + ": '" + item.substr(eq + 1) +
                            "' is not a number");
    params[item.substr(0, eq)] = v;
  }
  return params;
}

void add_energy_options(CLI::App* cmd, EnergySource* s, bool required) {
  auto* model = cmd->add_option("--model", s->model_path,
                                "Model file (safetensors, PyTorch state_dict names)");
  auto* energy = cmd->add_option(
      "--energy", s->energy, "Analytic energy: " + [] {
        std::string names;
        for (const auto& n : AnalyticEnergy::names()) names += (names.empty() ? "" : ", ") + n;
        return names;
      }());
  model->excludes(energy);
  if (required) {
    auto* group = cmd->add_option_group("energy", "Exactly one of --model and --energy");
    group->add_option(model);
    group->add_option(energy);
    group->require_option(1);
  }
  cmd->add_option("--activation", s->activation,
                  "With --model: the activation when the file records none (relu, silu, tanh, "
                  "softplus, leaky_relu, gelu)");
  at_least(cmd->add_option("--dim", s->dim, "With --energy: the dimension")->capture_default_str(),
           1);
  cmd->add_option("--param", s->params,
                  "With --energy: a parameter key=value, repeatable (k, h, b, a, c, mean, std)");
}

std::unique_ptr<Energy> load_energy(const EnergySource& s) {
  if (!s.model_path.empty()) {
    if (!s.params.empty()) throw InvalidArgument("--param applies to --energy, not --model");
    std::optional<Activation> act;
    if (!s.activation.empty()) act = parse_activation(s.activation);
    return std::make_unique<Mlp>(load_mlp(s.model_path, act));
  }
  if (!s.energy.empty()) {
    if (!s.activation.empty()) throw InvalidArgument("--activation applies to --model");
    return std::make_unique<AnalyticEnergy>(
        AnalyticEnergy::by_name(s.energy, s.dim, parse_key_values(s.params, "--param")));
  }
  return nullptr;
}

std::vector<float> read_points(const std::string& path, int dim, int64_t* n) {
  NpyArray a = read_npy(path);
  const bool ok = (a.shape.size() == 2 && a.shape[1] == dim) || (a.shape.size() == 1 && dim == 1);
  if (!ok) {
    std::string shape;
    for (int64_t d : a.shape) shape += (shape.empty() ? "" : ", ") + std::to_string(d);
    throw InvalidArgument("'" + path + "' has shape (" + shape + "); expected (n, " +
                          std::to_string(dim) + ") points of dimension " + std::to_string(dim));
  }
  *n = a.shape[0];
  if (*n < 1) throw InvalidArgument("'" + path + "' holds no points");
  for (std::size_t i = 0; i < a.data.size(); ++i)
    if (!std::isfinite(a.data[i])) {
      const auto d = static_cast<std::size_t>(dim);
      throw InvalidArgument("'" + path + "': row " + std::to_string(i / d) + ", column " +
                            std::to_string(i % d) + " is not finite (" +
                            (std::isnan(a.data[i]) ? "nan"
                             : a.data[i] > 0       ? "inf"
                                                   : "-inf") +
                            "); points must be finite numbers");
    }
  return std::move(a.data);
}

OutputGuard::~OutputGuard() {
  for (const std::string& p : paths_) std::remove(p.c_str());
}

}  // namespace cuebm::cli
