// Analytic energies and gradients for one row, shared by both backends. Coordinates are read
// with a stride so the same code serves row-major and feature-major layouts.
#pragma once

#include <cmath>

#include "cuebm/models/analytic.hpp"
#include "kernels/runtime/hd.cuh"

namespace cuebm::detail {

struct AnalyticParams {
  AnalyticKind kind;
  int dim;
  float p0, p1, p2;        // h,b | k | a,b | a,b,c | a
  const float* mean;       // Gaussian: D
  const float* precision;  // Gaussian: D x D row-major
};

// The parameters of a host AnalyticEnergy; mean and precision point into its own storage.
inline AnalyticParams analytic_params(const AnalyticEnergy& e) {
  return {e.kind(),
          e.dim(),
          e.scalars()[0],
          e.scalars()[1],
          e.scalars()[2],
          e.mean().empty() ? nullptr : e.mean().data(),
          e.precision().empty() ? nullptr : e.precision().data()};
}

// Returns E(x); writes dE/dx to g (stride gs) when g is not null. Every multiply-add is an
// explicit fmaf, so that no compiler contracts differently in different inlining contexts (a
// vectorised row block, one chain at a time, nvcc) and the arithmetic rounds the same way on
// every path. cosf, sinf, expf and sqrtf (Ackley, Rastrigin) are the platform's: the device's
// may differ from glibc's in the last bit.
CUEBM_HD float analytic_energy_grad(const AnalyticParams& p, const float* x, int xs, float* g,
                                    int gs) {
  const int d = p.dim;
  float e = 0.0f;
  switch (p.kind) {
    case AnalyticKind::kGaussian: {
      for (int i = 0; i < d; ++i) {
        float pi = 0.0f;  // (P (x - mu))_i
        for (int j = 0; j < d; ++j) pi = fmaf(p.precision[i * d + j], x[j * xs] - p.mean[j], pi);
        e = fmaf(0.5f * (x[i * xs] - p.mean[i]), pi, e);
        if (g) g[i * gs] = pi;
      }
      return e;
    }
    case AnalyticKind::kDoubleWell: {
      const float h = p.p0, b2 = p.p1 * p.p1;
      for (int i = 0; i < d; ++i) {
        const float xi = x[i * xs], u = fmaf(xi, xi, -b2);
        e = fmaf(u, u, e);
        if (g) g[i * gs] = 4.0f * h * xi * u;
      }
      return h * e;
    }
    case AnalyticKind::kHarmonic: {
      const float k = p.p0;
      for (int i = 0; i < d; ++i) {
        const float xi = x[i * xs];
        e = fmaf(xi, xi, e);
        if (g) g[i * gs] = k * xi;
      }
      return 0.5f * k * e;
    }
    case AnalyticKind::kRosenbrock: {
      const float a = p.p0, b = p.p1;
      if (g)
        for (int i = 0; i < d; ++i) g[i * gs] = 0.0f;
      for (int i = 0; i + 1 < d; ++i) {
        const float xi = x[i * xs], xn = x[(i + 1) * xs];
        const float u = a - xi, w = fmaf(-xi, xi, xn);
        e += fmaf(u, u, b * w * w);
        if (g) {
          g[i * gs] += fmaf(-4.0f * b * xi, w, -2.0f * u);
          g[(i + 1) * gs] = fmaf(2.0f * b, w, g[(i + 1) * gs]);
        }
      }
      return e;
    }
    case AnalyticKind::kAckley: {
      const float a = p.p0, b = p.p1, c = p.p2;
      float sq = 0.0f, cs = 0.0f;
      for (int i = 0; i < d; ++i) {
        const float xi = x[i * xs];
        sq = fmaf(xi, xi, sq);
        cs += cosf(c * xi);
      }
      const float r = sqrtf(sq / static_cast<float>(d));
      const float t1 = expf(-b * r), t2 = expf(cs / static_cast<float>(d));
      if (g) {
        // The first term's gradient is singular at x = 0: return 0 there (sin 0 zeroes the second).
        const float k1 = r > 0.0f ? a * b * t1 / (static_cast<float>(d) * r) : 0.0f;
        const float k2 = t2 * c / static_cast<float>(d);
        for (int i = 0; i < d; ++i) {
          const float xi = x[i * xs];
          g[i * gs] = fmaf(k1, xi, k2 * sinf(c * xi));
        }
      }
      return fmaf(-a, t1, -t2) + a + 2.71828182845904524f;
    }
    case AnalyticKind::kRastrigin:
    default: {
      const float a = p.p0, two_pi = 6.28318530717958648f;
      for (int i = 0; i < d; ++i) {
        const float xi = x[i * xs];
        e += fmaf(xi, xi, -a * cosf(two_pi * xi));
        if (g) g[i * gs] = fmaf(two_pi * a, sinf(two_pi * xi), 2.0f * xi);
      }
      return fmaf(a, static_cast<float>(d), e);
    }
  }
}

}  // namespace cuebm::detail
