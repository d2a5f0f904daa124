#include "host/sampling/chain_runner.hpp"

#include <algorithm>
#include <atomic>
#include <cmath>

#include "host/models/parallel.hpp"
#include "host/sampling/noise_block.hpp"
#include "kernels/sampling/langevin.cuh"

namespace cuebm::detail {
namespace {

void accumulate_moments(const float* x_t, int64_t rows, int dim, double* out) {
  for (int d = 0; d < dim; ++d) {
    double s = 0, s2 = 0;
    for (int64_t r = 0; r < rows; ++r) {
      const double v = x_t[d * kRowBlock + r];
      s += v;
      s2 += v * v;
    }
    out[d] = s;
    out[dim + d] = s2;
  }
}

double sum_rows(const float* e, int64_t rows) {
  double s = 0;
  for (int64_t r = 0; r < rows; ++r) s += e[r];
  return s;
}

}  // namespace

int64_t run_chains_cpu(const Energy& energy, float* x, int64_t n, const ChainPlan& plan) {
  const int dim = energy.dim();
  const int q_blocks = static_cast<int>(blocks_per_step(dim));
  const std::size_t ws = energy.block_workspace_floats();
  const int64_t blocks = num_blocks(n);
  const int stride = diagnostics_stride(dim);
  std::atomic<int64_t> first_bad{n};

  parallel_for(blocks, [&](int64_t b) {
    float* scratch = thread_workspace(ws + (3 * dim + 1) * kRowBlock);
    float* x_t = scratch + ws;
    float* g_t = x_t + dim * kRowBlock;
    float* e_t = g_t + dim * kRowBlock;
    float* eps_t = e_t + kRowBlock;  // this step's Philox noise, feature-major
    const int64_t row0 = b * kRowBlock, rows = std::min<int64_t>(kRowBlock, n - row0);
    double* diag = plan.diagnostics ? plan.diagnostics + b * plan.n_steps * stride : nullptr;
    load_block(x, row0, rows, dim, x_t);

    for (int t = 0; t < plan.n_steps; ++t) {
      energy.block_gradient(x_t, g_t, e_t, scratch);
      if (t == 0 && plan.after_first_gradient)
        (*plan.after_first_gradient)(row0, static_cast<int>(rows), x_t, e_t, scratch);
      if (diag && t > 0) diag[(t - 1) * stride + 2 * dim] = sum_rows(e_t, rows);
      const float eta = plan.eta[t], coef = plan.noise_coef[t];
      const uint64_t step = plan.step_offset + t;
      if (plan.noise) {  // noise from the caller's buffer (LangevinOptions::noise)
        for (int64_t r = 0; r < rows; ++r) {
          for (int q = 0; q < q_blocks; ++q) {
            float eps[4] = {0, 0, 0, 0};
            const float* nrow = plan.noise + (static_cast<int64_t>(t) * n + row0 + r) * dim;
            for (int k = 0; k < 4 && 4 * q + k < dim; ++k) eps[k] = nrow[4 * q + k];
            for (int k = 0; k < 4 && 4 * q + k < dim; ++k) {
              float& xi = x_t[(4 * q + k) * kRowBlock + r];
              xi = langevin_update(xi, g_t[(4 * q + k) * kRowBlock + r], eta, coef, eps[k]);
              if (plan.clamp) xi = clampf(xi, plan.clamp_min, plan.clamp_max);
            }
          }
        }
      } else {  // Philox noise of (seed, chain, step), all rows of the block at once
        langevin_noise_block(plan.seed, plan.first_chain + row0, step, dim, static_cast<int>(rows),
                             eps_t);
        for (int d = 0; d < dim; ++d) {
          float* xd = x_t + d * kRowBlock;
          const float* gd = g_t + d * kRowBlock;
          const float* ed = eps_t + d * kRowBlock;
          for (int64_t r = 0; r < rows; ++r) {
            float xi = langevin_update(xd[r], gd[r], eta, coef, ed[r]);
            if (plan.clamp) xi = clampf(xi, plan.clamp_min, plan.clamp_max);
            xd[r] = xi;
          }
        }
      }
      if (diag) accumulate_moments(x_t, rows, dim, diag + t * stride);
      if (plan.trajectory && (t + 1) % plan.thin == 0)
        store_block(x_t, row0, rows, dim, plan.trajectory + ((t + 1) / plan.thin - 1) * n * dim);
    }
    if (diag && plan.n_steps > 0) {
      energy.block_energy(x_t, e_t, scratch);
      diag[(plan.n_steps - 1) * stride + 2 * dim] = sum_rows(e_t, rows);
    }
    if (plan.after_last_step)
      (*plan.after_last_step)(row0, static_cast<int>(rows), x_t, nullptr, scratch);
    store_block(x_t, row0, rows, dim, x);
    for (int64_t r = 0; r < rows; ++r) {
      bool finite = true;
      for (int d = 0; d < dim; ++d) finite = finite && std::isfinite(x_t[d * kRowBlock + r]);
      if (!finite) {
        int64_t expected = first_bad.load();
        while (row0 + r < expected && !first_bad.compare_exchange_weak(expected, row0 + r)) {
        }
        break;
      }
    }
  });
  return first_bad.load() < n ? first_bad.load() : -1;
}

}  // namespace cuebm::detail
