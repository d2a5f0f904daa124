// Annealed importance sampling on the device (include/cuebm/sampling/ais.hpp): one thread per
// chain runs all K temperatures and their MALA transitions in one launch, accumulating its log
// weight, with the math of the CPU backend (host/sampling/ais.cpp): the tempering of
// kernels/sampling/ais.cuh, the MALA step of kernels/sampling/mcmc.cuh at temperature 1 of the
// intermediate density, Philox keyed by (seed, chain, transition). The chain's state (point,
// dE/dx there, dE/dx at the proposal) lives in global memory in column layout (value k of local
// row r at [k * ld + r]) next to the model's own per-row storage; rows are processed in launches
// of at most row_chunk rows. Nothing synchronises the host inside the run: one download at the
// end.
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "host/runtime/device_reduce.hpp"
#include "host/sampling/cuda_ais.hpp"
#include "kernels/models/device_model.cuh"
#include "kernels/sampling/ais.cuh"
#include "kernels/sampling/mcmc.cuh"
#include "kernels/sampling/mcmc_device.cuh"
#include "kernels/sampling/mcmc_launch.cuh"

namespace cuebm::detail {
namespace {

struct AisArgs {
  const float* x_init = nullptr;  // n x dim, row-major: the N(0, I) start
  int dim = 0;
  int n_temperatures = 0;
  int mcmc_steps = 0;
  float eta = 0, coef = 0;  // MALA's step and sqrt(2 eta)
  double inv_t = 1;         // 1 / T of the target
  uint64_t seed = 0;
  double* log_weight = nullptr;  // n
  int* accepted = nullptr;       // n
};

// State columns per row: x (D), g = dE/dx at x (D), g1 = dE/dx at the proposal (D).
constexpr int kStateBlocks = 3;

// One chain: row `row` of the whole run, its state at st (column layout, stride ld); the model's
// x holds the point being evaluated.
template <class Model>
__device__ void run_ais_chain(Model& m, const AisArgs& a, int64_t row, float* st, int64_t ld) {
  const int D = a.dim;
  float* x = st;
  float* g = st + D * ld;
  float* g1 = st + 2 * D * ld;
  load_row(m, a.x_init + row * D, x, ld, D);
  bool finite = true;  // the CPU runs non-finite chains too: their weights are dropped at the end
  float e = energy_gradient(m, g, ld, D, finite);
  double logw = 0;
  int accepted = 0;  // <= K * mcmc_steps, which validation keeps within int
  uint64_t transition = 0;
  const DeviceDraws draws{nullptr, 0, D, a.seed, 0, 0};  // keyed by (row, transition)
  for (int k = 1; k <= a.n_temperatures; ++k) {
    const double b0 = ais_beta(k - 1, a.n_temperatures), b1 = ais_beta(k, a.n_temperatures);
    double sq = 0;
    for (int i = 0; i < D; ++i) sq = ais_add_square(sq, x[i * ld]);
    logw = ais_add_log_weight(logw, sq, e, b0, b1, a.inv_t);
    for (int s = 0; s < a.mcmc_steps; ++s, ++transition) {
      // The state's E_b (sq is |x|^2 of the current x: recomputed after an acceptance).
      sq = 0;
      for (int i = 0; i < D; ++i) sq = ais_add_square(sq, x[i * ld]);
      const double eb0 = ais_tempered_energy(sq, e, b1, a.inv_t);
      double fwd = 0;
      for (int q = 0; 4 * q < D; ++q) {
        const Normal4 eps = draws.normal4(row, transition, q);
#pragma unroll
        for (int c = 0; c < 4; ++c) {
          if (4 * q + c >= D) break;
          const int i = 4 * q + c;
          const float gb0 = ais_tempered_gradient(x[i * ld], g[i * ld], b1, a.inv_t);
          const float x1 = mala_proposal(x[i * ld], gb0, a.eta, a.coef, eps.v[c]);
          fwd = mala_add_square(fwd, x1, x[i * ld], a.eta, gb0);
          m.x(i) = x1;
        }
      }
      const float e1 = energy_gradient(m, g1, ld, D, finite);
      double sq1 = 0, rev = 0;
      bool ok = true;  // as the CPU: E_b and dE_b/dx of the proposal finite
      for (int i = 0; i < D; ++i) {
        const float x1 = m.x(i);
        const float gb1 = ais_tempered_gradient(x1, g1[i * ld], b1, a.inv_t);
        sq1 = ais_add_square(sq1, x1);
        rev = mala_add_square(rev, x[i * ld], x1, a.eta, gb1);
        ok = ok && isfinite(gb1);
      }
      const double eb1 = ais_tempered_energy(sq1, e1, b1, a.inv_t);
      const double log_alpha = mala_log_alpha(eb0, eb1, fwd, rev, a.eta, 1.0);
      const float u = draws.uniform(row, transition);
      accepted +=
          settle(m, isfinite(eb1) && ok && mcmc_accept(u, log_alpha), x, g, g1, ld, D, e, e1);
    }
  }
  a.log_weight[row] = logw;
  a.accepted[row] = accepted;
}

// Rows [row0, row0 + rows) of this launch; model storage in scratch, chain state in state (both
// column layout, stride ld). No block synchronisation: a thread past the end returns.
template <class Rows>
__global__ void __launch_bounds__(kMaxRowBlock)
    ais_kernel(AisArgs a, int64_t row0, int64_t rows, Rows model_rows, float* scratch, float* state,
               int64_t ld) {
  const int64_t local = launch_local_row();
  if (local >= rows) return;
  auto m = model_rows.model(scratch, local, ld, a.dim);
  run_ais_chain(m, a, row0 + local, state + local, ld);
}

}  // namespace

int64_t ais_log_weights_cuda(const Energy& energy, const float* x0, const AisOptions& o, int device,
                             std::vector<double>& log_weights, LogWeightStats& stats) {
  const DeviceRun run(energy, device);
  const DeviceModel& m = run.model();
  cudaStream_t s = run.stream();
  const int D = energy.dim();
  const int64_t n = o.n_chains;
  DeviceBuffer<float> x(n * D);
  DeviceBuffer<double> logw(n);
  DeviceBuffer<int> accepted(n);
  CUEBM_CUDA_CHECK(cudaMemcpyAsync(x.data(), x0, x.bytes(), cudaMemcpyHostToDevice, s));
  AisArgs a;
  a.x_init = x.data();
  a.dim = D;
  a.n_temperatures = o.n_temperatures;
  a.mcmc_steps = o.mcmc_steps;
  a.eta = o.step_size;
  a.coef = std::sqrt(2.0f * o.step_size);  // as the CPU computes it
  a.inv_t = 1.0 / o.temperature;
  a.seed = o.seed;
  a.log_weight = logw.data();
  a.accepted = accepted.data();

  ChainStorage storage(m, n, 1, kStateBlocks);
  launch_row_chunks(
      m, storage, n, [&](auto rows_model, unsigned blocks, int threads, int64_t r0, int64_t rows) {
        ais_kernel<decltype(rows_model)><<<blocks, threads, 0, s>>>(
            a, r0, rows, rows_model, storage.scratch(), storage.state(), storage.ld());
        CUEBM_CUDA_CHECK_LAUNCH();
      });
  // The weights come back (AisResult holds them) while the device reduces them (Thrust,
  // host/runtime/device_reduce.hpp); both reductions wait for the stream, so the download, queued
  // first, is complete when they return.
  log_weights.resize(n);
  CUEBM_CUDA_CHECK(
      cudaMemcpyAsync(log_weights.data(), logw.data(), logw.bytes(), cudaMemcpyDeviceToHost, s));
  stats = device_log_weight_stats(logw.data(), n, s);
  return device_sum(accepted.data(), n, s);
}

}  // namespace cuebm::detail
