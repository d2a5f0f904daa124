#include "bench_common.hpp"

#include <cmath>
#include <cstdio>
#include <numbers>
#include <random>
#include <sstream>
#include <stdexcept>

namespace cuebm::bench {

std::string mlp_label(const MlpSpec& spec) {
  std::ostringstream s;
  s << spec.input_dim;
  for (int h : spec.hidden) s << '-' << h;
  s << "-1_" << activation_name(spec.activation);
  return s.str();
}

std::string device_suffix(const Device& device) {
  if (!device.is_cuda()) return "_CPU";
  return device.index == 0 ? "_CUDA" : "_CUDA" + std::to_string(device.index);
}

int64_t mlp_macs(const Mlp& mlp) {
  const std::vector<int>& w = mlp.layer_widths();
  int64_t macs = 0;
  for (std::size_t i = 0; i + 1 < w.size(); ++i) macs += int64_t{w[i]} * w[i + 1];
  return macs;
}

LangevinMlpCase parse_langevin_case(const std::string& text) {
  const auto bad = [&text](const std::string& why) {
    return std::invalid_argument("--cuebm_langevin=" + text + ": " + why +
                                 " (expected D-h1-...-hL-1:batch:k[:activation])");
  };
  std::vector<std::string> fields;
  std::stringstream in(text);
  for (std::string f; std::getline(in, f, ':');) fields.push_back(f);
  if (fields.size() < 3 || fields.size() > 4) throw bad("need 3 or 4 fields");
  std::vector<int> widths;
  std::stringstream w(fields[0]);
  for (std::string f; std::getline(w, f, '-');) {
    try {
      widths.push_back(std::stoi(f));
    } catch (const std::exception&) {
      throw bad("bad width '" + f + "'");
    }
  }
  if (widths.size() < 3 || widths.back() != 1) throw bad("widths must be D-h1-...-1");
  LangevinMlpCase c;
  c.spec.input_dim = widths.front();
  c.spec.hidden.assign(widths.begin() + 1, widths.end() - 1);
  try {
    c.batch = std::stoll(fields[1]);
    c.k = std::stoi(fields[2]);
  } catch (const std::exception&) {
    throw bad("bad batch or k");
  }
  if (c.batch < 1 || c.k < 1) throw bad("batch and k must be >= 1");
  c.spec.activation = fields.size() == 4 ? parse_activation(fields[3]) : Activation::kReLU;
  validate_mlp_spec(c.spec);
  return c;
}

ThreadPolicy parse_thread_policy(const std::string& text) {
  ThreadPolicy p;
  p.pool = detail::pool_policy();
  if (text == "openmp") {
    p.label = text;
    p.runtime = detail::CpuRuntime::kOpenMp;
    return p;
  }
  if (text != "pool") {
    // pool:IDLE_US:JOIN_US[:ADAPT]; ADAPT left out keeps the current setting.
    int idle = -1, join = -1, adapt = p.pool.adapt ? 1 : 0, used = 0;
    const int fields =
        std::sscanf(text.c_str(), "pool:%d:%d%n:%d%n", &idle, &join, &used, &adapt, &used);
    if (fields < 2 || used != static_cast<int>(text.size()) || idle < 0 || join < 0 ||
        (adapt != 0 && adapt != 1))
      throw std::invalid_argument("--cuebm_thread_policy: '" + text +
                                  "' is not openmp, pool or pool:IDLE_US:JOIN_US[:ADAPT]");
    p.pool = {idle, join, adapt == 1};
  }
  p.label = "pool:" + std::to_string(p.pool.idle_spin_us) + ":" +
            std::to_string(p.pool.join_spin_us) + ":" + (p.pool.adapt ? "1" : "0");
  return p;
}

std::vector<float> normal_rows(int64_t n, int dim, uint64_t seed, float scale) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.0f, scale);
  std::vector<float> x(static_cast<std::size_t>(n) * dim);
  for (float& v : x) v = normal(rng);
  return x;
}

std::vector<float> training_rows(int64_t n, int dim, uint64_t seed) {
  if (dim != 2) return normal_rows(n, dim, seed);
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.0f, 0.1f);
  std::uniform_int_distribution<int> component(0, 7);
  std::vector<float> x(static_cast<std::size_t>(n) * 2);
  for (int64_t i = 0; i < n; ++i) {
    const double theta = 2.0 * std::numbers::pi * component(rng) / 8.0;
    x[2 * i] = static_cast<float>(1.5 * std::cos(theta)) + normal(rng);
    x[2 * i + 1] = static_cast<float>(1.5 * std::sin(theta)) + normal(rng);
  }
  return x;
}

}  // namespace cuebm::bench
