#include "cuebm/models/analytic.hpp"

#include <cmath>
#include <set>

#include "cuebm/runtime/error.hpp"
#include "host/runtime/names.hpp"
#include "kernels/models/analytic.cuh"

namespace cuebm {
namespace {

void require_dim(int dim, int min_dim, const char* what) {
  if (dim < min_dim)
    throw InvalidArgument(std::string(what) + ": dimension must be >= " + std::to_string(min_dim) +
                          ", got " + std::to_string(dim));
}

void require_finite(float v, const char* what, const char* param) {
  if (!std::isfinite(v))
    throw InvalidArgument(std::string(what) + ": parameter " + param + " must be finite");
}

// Inverse of an SPD matrix through its Cholesky factor, in double; throws if not SPD.
std::vector<double> spd_inverse(const std::vector<double>& a, int n) {
  std::vector<double> l(n * n, 0.0);
  for (int j = 0; j < n; ++j) {
    double s = a[j * n + j];
    for (int k = 0; k < j; ++k) s -= l[j * n + k] * l[j * n + k];
    if (!(s > 0.0))
      throw InvalidArgument("gaussian: covariance is not symmetric positive definite (pivot " +
                            std::to_string(j) + ")");
    l[j * n + j] = std::sqrt(s);
    for (int i = j + 1; i < n; ++i) {
      double t = a[i * n + j];
      for (int k = 0; k < j; ++k) t -= l[i * n + k] * l[j * n + k];
      l[i * n + j] = t / l[j * n + j];
    }
  }
  std::vector<double> inv(n * n);
  for (int c = 0; c < n; ++c) {  // solve L L^T x = e_c
    std::vector<double> y(n);
    for (int i = 0; i < n; ++i) {
      double t = i == c ? 1.0 : 0.0;
      for (int k = 0; k < i; ++k) t -= l[i * n + k] * y[k];
      y[i] = t / l[i * n + i];
    }
    for (int i = n - 1; i >= 0; --i) {
      double t = y[i];
      for (int k = i + 1; k < n; ++k) t -= l[k * n + i] * inv[k * n + c];
      inv[i * n + c] = t / l[i * n + i];
    }
  }
  return inv;
}

}  // namespace

AnalyticEnergy::AnalyticEnergy(AnalyticKind kind, int dim) : kind_(kind), dim_(dim) {}

AnalyticEnergy AnalyticEnergy::gaussian(std::vector<float> mean, std::vector<double> covariance) {
  const int d = static_cast<int>(mean.size());
  require_dim(d, 1, "gaussian");
  if (covariance.size() != static_cast<std::size_t>(d) * d)
    throw InvalidArgument("gaussian: covariance must have " + std::to_string(d * d) +
                          " entries (D x D), got " + std::to_string(covariance.size()));
  for (int i = 0; i < d; ++i) {
    require_finite(mean[i], "gaussian", "mean");
    for (int j = 0; j < d; ++j) {
      if (!std::isfinite(covariance[i * d + j]))
        throw InvalidArgument("gaussian: covariance must be finite");
      if (std::abs(covariance[i * d + j] - covariance[j * d + i]) >
          1e-9 * (std::abs(covariance[i * d + j]) + 1.0))
        throw InvalidArgument("gaussian: covariance is not symmetric");
    }
  }
  const std::vector<double> inv = spd_inverse(covariance, d);
  AnalyticEnergy e(AnalyticKind::kGaussian, d);
  e.mean_ = std::move(mean);
  e.precision_.assign(inv.begin(), inv.end());
  return e;
}

AnalyticEnergy AnalyticEnergy::double_well(int dim, float barrier_height, float b) {
  require_dim(dim, 1, "double_well");
  require_finite(barrier_height, "double_well", "h");
  require_finite(b, "double_well", "b");
  AnalyticEnergy e(AnalyticKind::kDoubleWell, dim);
  e.scalars_[0] = barrier_height;
  e.scalars_[1] = b;
  return e;
}

AnalyticEnergy AnalyticEnergy::harmonic(int dim, float k) {
  require_dim(dim, 1, "harmonic");
  require_finite(k, "harmonic", "k");
  AnalyticEnergy e(AnalyticKind::kHarmonic, dim);
  e.scalars_[0] = k;
  return e;
}

AnalyticEnergy AnalyticEnergy::rosenbrock(int dim, float a, float b) {
  require_dim(dim, 2, "rosenbrock");
  require_finite(a, "rosenbrock", "a");
  require_finite(b, "rosenbrock", "b");
  AnalyticEnergy e(AnalyticKind::kRosenbrock, dim);
  e.scalars_[0] = a;
  e.scalars_[1] = b;
  return e;
}

AnalyticEnergy AnalyticEnergy::ackley(int dim, float a, float b, float c) {
  require_dim(dim, 1, "ackley");
  require_finite(a, "ackley", "a");
  require_finite(b, "ackley", "b");
  require_finite(c, "ackley", "c");
  AnalyticEnergy e(AnalyticKind::kAckley, dim);
  e.scalars_[0] = a;
  e.scalars_[1] = b;
  e.scalars_[2] = c;
  return e;
}

AnalyticEnergy AnalyticEnergy::rastrigin(int dim, float a) {
  require_dim(dim, 1, "rastrigin");
  require_finite(a, "rastrigin", "a");
  AnalyticEnergy e(AnalyticKind::kRastrigin, dim);
  e.scalars_[0] = a;
  return e;
}

std::vector<std::string> AnalyticEnergy::names() {
  return {"gaussian", "double_well", "harmonic", "rosenbrock", "ackley", "rastrigin"};
}

AnalyticEnergy AnalyticEnergy::by_name(const std::string& name, int dim,
                                       const std::map<std::string, double>& params) {
  struct Known {
    const char* name;
    std::set<std::string> keys;
  };
  static const Known kKnown[] = {{"gaussian", {"mean", "std"}}, {"double_well", {"h", "b"}},
                                 {"harmonic", {"k"}},           {"rosenbrock", {"a", "b"}},
                                 {"ackley", {"a", "b", "c"}},   {"rastrigin", {"a"}}};
  const Known* known = nullptr;
  for (const auto& k : kKnown)
    if (name == k.name) known = &k;
  if (!known)
    throw InvalidArgument("unknown energy '" + name + "' (valid: " + join_names(names()) + ")");
  for (const auto& [key, value] : params)
    if (!known->keys.count(key))
      throw InvalidArgument("energy '" + name + "' has no parameter '" + key + "' (valid: " +
                            join_names({known->keys.begin(), known->keys.end()}) + ")");
  auto get = [&](const char* key, double fallback) {
    const auto it = params.find(key);
    return static_cast<float>(it == params.end() ? fallback : it->second);
  };
  if (name == "gaussian") {
    require_dim(dim, 1, "gaussian");
    const double s = get("std", 1.0);
    if (!(s > 0)) throw InvalidArgument("gaussian: std must be > 0, got " + std::to_string(s));
    std::vector<double> cov(static_cast<std::size_t>(dim) * dim, 0.0);
    for (int i = 0; i < dim; ++i) cov[i * dim + i] = s * s;
    return gaussian(std::vector<float>(dim, get("mean", 0.0)), cov);
  }
  if (name == "double_well") return double_well(dim, get("h", 2.0), get("b", 1.0));
  if (name == "harmonic") return harmonic(dim, get("k", 1.0));
  if (name == "rosenbrock") return rosenbrock(dim, get("a", 1.0), get("b", 100.0));
  if (name == "ackley") return ackley(dim, get("a", 20.0), get("b", 0.2), get("c", 2 * M_PI));
  return rastrigin(dim, get("a", 10.0));
}

std::string AnalyticEnergy::name() const {
  static const char* kNames[] = {"gaussian",   "double_well", "harmonic",
                                 "rosenbrock", "ackley",      "rastrigin"};
  return std::string(kNames[static_cast<int>(kind_)]) + "(dim " + std::to_string(dim_) + ")";
}

void AnalyticEnergy::block_energy(const float* x_t, float* e, float* /*work*/) const {
  const detail::AnalyticParams p = detail::analytic_params(*this);
  for (int r = 0; r < kRowBlock; ++r)
    e[r] = detail::analytic_energy_grad(p, x_t + r, kRowBlock, nullptr, 0);
}

void AnalyticEnergy::block_gradient(const float* x_t, float* grad_t, float* e,
                                    float* /*work*/) const {
  const detail::AnalyticParams p = detail::analytic_params(*this);
  for (int r = 0; r < kRowBlock; ++r)
    e[r] = detail::analytic_energy_grad(p, x_t + r, kRowBlock, grad_t + r, kRowBlock);
}

}  // namespace cuebm
