// A user-defined energy for the custom_energy examples: a ring of radius r and width s in 2-D,
// E(x) = (|x| - r)^2 / (2 s^2), written once for both backends (cuebm/custom_energy.hpp).
#pragma once

#include <cmath>

#include "cuebm/runtime/host_device.hpp"

struct RingEnergy {
  float r = 1.0f;  // radius
  float s = 0.2f;  // width

  CUEBM_HOST_DEVICE float energy(const float* x) const {
    const float d = sqrtf(x[0] * x[0] + x[1] * x[1]) - r;
    return d * d / (2.0f * s * s);
  }
  // dE/dx = (|x| - r) / s^2 * x / |x|, taken as 0 at the origin.
  CUEBM_HOST_DEVICE void grad(const float* x, float* g) const {
    const float rho = sqrtf(x[0] * x[0] + x[1] * x[1]);
    const float f = rho > 0.0f ? (rho - r) / (s * s * rho) : 0.0f;
    g[0] = f * x[0];
    g[1] = f * x[1];
  }
};

// The exact moments of the radius at temperature T (the chain targets exp(-E / T)): the radius
// has density ∝ rho exp(-(rho - r)^2 / (2 tau^2)) on rho > 0, tau^2 = s^2 T, so with a = r / tau,
// Phi and phi the standard normal cdf and pdf at a:
//   E[rho]   = ((r^2 + tau^2) Phi + r tau phi) / (r Phi + tau phi)          (~ r + tau^2 / r)
//   E[rho^2] = ((r^3 + 3 r tau^2) Phi + tau (r^2 + 2 tau^2) phi) / (r Phi + tau phi)
inline double ring_mean_radius(double r, double s, double temperature) {
  const double tau = s * std::sqrt(temperature), a = r / tau;
  const double Phi = 0.5 * std::erfc(-a / std::sqrt(2.0));
  const double phi = std::exp(-0.5 * a * a) / std::sqrt(2.0 * M_PI);
  return ((r * r + tau * tau) * Phi + r * tau * phi) / (r * Phi + tau * phi);
}

// Mean radius and its standard error over n chains (n x 2, row-major).
inline void radius_mean_se(const float* x, long n, double* mean, double* se) {
  double s = 0, s2 = 0;
  for (long i = 0; i < n; ++i) {
    const double rho = std::hypot(x[2 * i], x[2 * i + 1]);
    s += rho;
    s2 += rho * rho;
  }
  *mean = s / n;
  *se = std::sqrt((s2 / n - *mean * *mean) / (n - 1));
}
