// MALA and HMC on the device: a whole chain of n steps per thread in one launch (general MLP
// path for every MLP, and the analytic energies), the accept/reject decisions made in the kernel
// with the shared math of kernels/sampling/mcmc.cuh. The chain's state (current point and
// gradient, the proposal's gradient, HMC's momentum) lives in global memory in column layout
// (value k of local row r at [k * ld + r]), next to the model's own per-row storage; rows are
// processed in launches of at most row_chunk rows, as launch_chains does. Nothing synchronises
// the host inside the run: one download at the end. The statistics after the run go through
// Thrust on the run's stream (host/runtime/device_reduce.hpp): the accepted-proposal total and,
// with diagnostics, the ranks of the split chains' energies for R-hat and ESS.
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "cuebm/runtime/error.hpp"
#include "cuebm/sampling/diagnostics.hpp"
#include "host/runtime/device_reduce.hpp"
#include "host/sampling/cuda_mcmc.hpp"
#include "host/sampling/mcmc_support.hpp"
#include "kernels/models/device_model.cuh"
#include "kernels/sampling/device_chains.cuh"
#include "kernels/sampling/mcmc.cuh"
#include "kernels/sampling/mcmc_device.cuh"
#include "kernels/sampling/mcmc_launch.cuh"

namespace cuebm::detail {
namespace {

// State columns per row: x0 (D), g0 (D), g1 (D), p (D).
constexpr int kStateBlocks = 4;

__device__ DeviceDraws draws_of(const McmcArgs& a) {
  return {a.noise, a.n_total, a.dim, a.seed, a.first_chain, a.step_offset};
}

// Loads the row's state into x0 and the model, and returns E (times inv_temperature) with
// dE/dx (likewise) in g0.
template <class Model>
__device__ float start_row(Model& m, const McmcArgs& a, int64_t row, float* x0, float* g0,
                           int64_t ld) {
  load_row(m, a.x + row * a.dim, x0, ld, a.dim);
  bool finite = true;
  const float e0 = energy_gradient(m, g0, ld, a.dim, finite, a.inv_temperature);
  a.initial_energy[row] = e0;
  return e0;
}

__device__ void finish_row(const McmcArgs& a, int64_t row, const float* x0, int64_t ld, float e0,
                           int accepted) {
  store_row(a.x + row * a.dim, x0, ld, a.dim);
  a.energy[row] = e0;
  a.accepted[row] = accepted;
}

template <class Model>
__device__ void run_mala(Model& m, const McmcArgs& a, const DeviceDraws& draws, int64_t row,
                         float* st, int64_t ld) {
  const int D = a.dim;
  float* x0 = st;
  float* g0 = st + D * ld;
  float* g1 = st + 2 * D * ld;
  float e0 = start_row(m, a, row, x0, g0, ld);
  int accepted = 0;
  for (int t = 0; t < a.n_steps; ++t) {
    accepted += mala_move(m, draws, row, static_cast<uint64_t>(t), a.step[t], a.noise_coef[t],
                          a.temperature[t], x0, g0, g1, ld, e0);
    if (a.trace) a.trace[static_cast<int64_t>(t) * a.n_total + row] = e0;
  }
  finish_row(a, row, x0, ld, e0, accepted);
}

template <class Model>
__device__ void run_hmc(Model& m, const McmcArgs& a, const DeviceDraws& draws, int64_t row,
                        float* st, int64_t ld) {
  const int D = a.dim;
  float* x0 = st;
  float* g0 = st + D * ld;
  float* g1 = st + 2 * D * ld;
  float* p = st + 3 * D * ld;
  float e0 = start_row(m, a, row, x0, g0, ld);
  int accepted = 0;
  for (int t = 0; t < a.n_steps; ++t) {
    const float h = a.step[t];
    double kinetic = 0;
    for (int q = 0; 4 * q < D; ++q) {
      const Normal4 z = draws.normal4(row, static_cast<uint64_t>(t), q);
#pragma unroll
      for (int c = 0; c < 4; ++c) {
        if (4 * q + c >= D) break;
        const int i = 4 * q + c;
        const float pi = sqrtf(a.mass[i]) * z.v[c];
        p[i * ld] = pi;
        kinetic += hmc_kinetic(pi, a.mass[i]);
        g1[i * ld] = g0[i * ld];
      }
    }
    const double h0 = static_cast<double>(e0) + kinetic;
    float e1 = e0;
    bool ok = true;
    for (int l = 0; l < a.n_leapfrog; ++l) {
      for (int i = 0; i < D; ++i) {
        const float pi = hmc_half_kick(p[i * ld], h, g1[i * ld]);
        p[i * ld] = pi;
        m.x(i) = hmc_drift(m.x(i), pi, h, a.mass[i]);
      }
      e1 = energy_gradient(m, g1, ld, D, ok, a.inv_temperature);
      for (int i = 0; i < D; ++i) p[i * ld] = hmc_half_kick(p[i * ld], h, g1[i * ld]);
    }
    kinetic = 0;
    for (int i = 0; i < D; ++i) {
      kinetic += hmc_kinetic(p[i * ld], a.mass[i]);
      ok = ok && isfinite(m.x(i));
    }
    const double log_alpha = hmc_log_alpha(h0, static_cast<double>(e1) + kinetic);
    const bool accept = ok && mcmc_accept(draws.uniform(row, static_cast<uint64_t>(t)), log_alpha);
    accepted += settle(m, accept, x0, g0, g1, ld, D, e0, e1);
    if (a.trace) a.trace[static_cast<int64_t>(t) * a.n_total + row] = e0;
  }
  finish_row(a, row, x0, ld, e0, accepted);
}

// Rows [row0, row0 + rows) of this launch; model storage in scratch, chain state in state (both
// column layout, stride ld). No block synchronisation: a thread past the end returns.
template <McmcSampler S, class Rows>
__global__ void __launch_bounds__(kMaxRowBlock)
    mcmc_kernel(McmcArgs a, int64_t row0, int64_t rows, Rows model_rows, float* scratch,
                float* state, int64_t ld) {
  const int64_t local = launch_local_row();
  if (local >= rows) return;
  auto m = model_rows.model(scratch, local, ld, a.dim);
  const DeviceDraws draws = draws_of(a);
  if constexpr (S == McmcSampler::kMala) {
    run_mala(m, a, draws, row0 + local, state + local, ld);
  } else {
    run_hmc(m, a, draws, row0 + local, state + local, ld);
  }
}

// With diagnostics (n_steps >= 4): the split chains' energies (the trace without the middle step
// of an odd n_steps), ranked on the device. The trace is step-major, so they are the first and
// the last floor(n_steps / 2) blocks of n rows.
class SplitRanks {
 public:
  SplitRanks(const float* trace, int n_steps, int64_t n)
      : trace_(trace), half_(trace && n_steps >= 4 ? n_steps / 2 : 0), odd_(n_steps % 2), n_(n) {
    if (half_ == 0) return;
    if (odd_) values_.resize(size());
    ranks_.resize(size());
  }
  // Queues the ranking on s (asynchronous on a GPU).
  void rank(cudaStream_t s) {
    if (half_ == 0) return;
    const float* split = trace_;
    if (odd_) {
      const std::size_t block = static_cast<std::size_t>(half_ * n_) * sizeof(float);
      CUEBM_CUDA_CHECK(cudaMemcpyAsync(values_.data(), trace_, block, cudaMemcpyDeviceToDevice, s));
      CUEBM_CUDA_CHECK(cudaMemcpyAsync(values_.data() + half_ * n_, trace_ + (half_ + 1) * n_,
                                       block, cudaMemcpyDeviceToDevice, s));
      split = values_.data();
    }
    device_average_ranks(split, size(), ranks_.data(), s);
  }
  // Queues the ranks' download into `step_major` (sized here).
  void download(std::vector<double>& step_major, cudaStream_t s) const {
    if (half_ == 0) return;
    step_major.resize(size());
    CUEBM_CUDA_CHECK(cudaMemcpyAsync(step_major.data(), ranks_.data(), ranks_.bytes(),
                                     cudaMemcpyDeviceToHost, s));
  }
  // After the download: R-hat and ESS of the trace (res.energy_trace) into res.
  void finish(const std::vector<double>& step_major, int n_steps, McmcResult& res) const {
    if (half_ == 0) return;
    std::vector<double> draws(res.energy_trace.size()), split_ranks(size());
    for (int t = 0; t < n_steps; ++t)
      for (int64_t c = 0; c < n_; ++c)
        draws[c * n_steps + t] = res.energy_trace[static_cast<int64_t>(t) * n_ + c];
    // Block b < half is draw b of every chain (split chain 2c), block half + b draw
    // n_steps - half + b (split chain 2c + 1).
    for (int64_t p = 0; p < size(); ++p) {
      const int64_t b = p / n_, c = p % n_;
      split_ranks[b < half_ ? 2 * c * half_ + b : (2 * c + 1) * half_ + b - half_] = step_major[p];
    }
    const RhatEss r = rhat_ess_from_split_ranks(draws, n_, n_steps, split_ranks);
    res.energy_rhat = r.rhat;
    res.energy_ess = r.ess;
  }

 private:
  int64_t size() const { return 2 * half_ * n_; }
  const float* trace_;
  int64_t half_;
  bool odd_;
  int64_t n_;
  DeviceBuffer<float> values_;
  DeviceBuffer<double> ranks_;
};

}  // namespace

ChainStorage mcmc_storage(const DeviceModel& m, int64_t max_rows) {
  return ChainStorage(m, max_rows, 1, kStateBlocks);
}

void launch_mcmc_chains(McmcSampler sampler, const DeviceModel& m, const McmcArgs& a,
                        ChainStorage& storage, cudaStream_t s) {
  storage.require_fits(m, 1, kStateBlocks, "launch_mcmc_chains");
  if (sampler == McmcSampler::kMala && a.inv_temperature != 1.0f)
    throw InvalidArgument(
        "launch_mcmc_chains: MALA tempers through its per-step temperature; inv_temperature "
        "must be 1");
  const auto launch = [&]<McmcSampler S>() {
    launch_row_chunks(m, storage, a.n_total,
                      [&](auto rows_model, unsigned blocks, int threads, int64_t r0, int64_t rows) {
                        mcmc_kernel<S, decltype(rows_model)>
                            <<<blocks, threads, 0, s>>>(a, r0, rows, rows_model, storage.scratch(),
                                                        storage.state(), storage.ld());
                        CUEBM_CUDA_CHECK_LAUNCH();
                      });
  };
  if (sampler == McmcSampler::kMala) {
    launch.template operator()<McmcSampler::kMala>();
  } else {
    launch.template operator()<McmcSampler::kHmc>();
  }
}

namespace {

// Uploads the model, the state and the per-step arrays, runs the sampler over row chunks, and
// downloads the result into res.
void run_on_device(McmcSampler sampler, const Energy& energy, const float* x0, int64_t n,
                   McmcArgs a, const std::vector<float>& step, const std::vector<float>& coef,
                   const std::vector<float>& temperature, const std::vector<float>& mass,
                   int device, McmcResult& res, const char* who) {
  const DeviceRun run(energy, device);
  const DeviceModel& m = run.model();
  cudaStream_t s = run.stream();
  const int D = energy.dim();
  DeviceBuffer<float> x(n * D), e(n), e_init(n), d_step, d_coef, d_temp, d_mass, noise;
  DeviceBuffer<int> accepted(n);
  CUEBM_CUDA_CHECK(cudaMemcpyAsync(x.data(), x0, x.bytes(), cudaMemcpyHostToDevice, s));
  a.x = x.data();
  a.n_total = n;
  a.dim = D;
  a.step = upload(d_step, step, s);
  a.noise_coef = upload(d_coef, coef, s);
  a.temperature = upload(d_temp, temperature, s);
  a.mass = upload(d_mass, mass, s);
  if (a.noise && a.n_steps > 0) {
    noise.resize(static_cast<std::size_t>(a.n_steps) * n * (D + 1));
    CUEBM_CUDA_CHECK(
        cudaMemcpyAsync(noise.data(), a.noise, noise.bytes(), cudaMemcpyHostToDevice, s));
    a.noise = noise.data();
  }
  a.energy = e.data();
  DeviceBuffer<float> trace;
  if (!res.energy_trace.empty()) {
    trace.resize(res.energy_trace.size());
    a.trace = trace.data();
  }
  a.initial_energy = e_init.data();
  a.accepted = accepted.data();

  ChainStorage storage = mcmc_storage(m, n);
  SplitRanks ranks(a.trace, a.n_steps, n);
  launch_mcmc_chains(sampler, m, a, storage, s);
  ranks.rank(s);
  res.samples.resize(n * D);
  res.energy.resize(n);
  std::vector<float> initial(n);
  std::vector<int> acc(n);
  std::vector<double> step_ranks;
  ranks.download(step_ranks, s);
  CUEBM_CUDA_CHECK(
      cudaMemcpyAsync(res.samples.data(), x.data(), x.bytes(), cudaMemcpyDeviceToHost, s));
  CUEBM_CUDA_CHECK(
      cudaMemcpyAsync(res.energy.data(), e.data(), e.bytes(), cudaMemcpyDeviceToHost, s));
  CUEBM_CUDA_CHECK(
      cudaMemcpyAsync(initial.data(), e_init.data(), e_init.bytes(), cudaMemcpyDeviceToHost, s));
  CUEBM_CUDA_CHECK(
      cudaMemcpyAsync(acc.data(), accepted.data(), accepted.bytes(), cudaMemcpyDeviceToHost, s));
  if (a.trace)
    CUEBM_CUDA_CHECK(cudaMemcpyAsync(res.energy_trace.data(), a.trace, trace.bytes(),
                                     cudaMemcpyDeviceToHost, s));
  const int64_t total_accepted = device_sum(accepted.data(), n, s);  // waits for the stream
  CUEBM_CUDA_CHECK(cudaStreamSynchronize(s));
  require_finite_start(initial, who);
  finish_acceptance(res, acc, a.n_steps);
  // The mean from the exact total: may differ from the CPU's mean of the per-chain float rates
  // in the last bits.
  if (a.n_steps > 0)
    res.mean_acceptance = static_cast<double>(total_accepted) /
                          (static_cast<double>(a.n_steps) * static_cast<double>(n));
  ranks.finish(step_ranks, a.n_steps, res);
}

}  // namespace

void mala_sample_cuda(const Energy& energy, const float* x0, int64_t n, const MalaOptions& o,
                      const std::vector<float>& eta, const std::vector<float>& noise_coef,
                      const std::vector<float>& temperature, int device, McmcResult& res) {
  McmcArgs a;
  a.n_steps = o.n_steps;
  a.seed = o.seed;
  a.step_offset = o.step_offset;
  a.first_chain = o.first_chain;
  a.noise = o.noise;
  run_on_device(McmcSampler::kMala, energy, x0, n, a, eta, noise_coef, temperature, {}, device, res,
                "mala_sample");
}

void hmc_sample_cuda(const Energy& energy, const float* x0, int64_t n, const HmcOptions& o,
                     const std::vector<float>& step_size, const std::vector<float>& mass,
                     int device, McmcResult& res) {
  McmcArgs a;
  a.n_steps = o.n_steps;
  a.n_leapfrog = o.n_leapfrog;
  a.seed = o.seed;
  a.step_offset = o.step_offset;
  a.first_chain = o.first_chain;
  a.noise = o.noise;
  run_on_device(McmcSampler::kHmc, energy, x0, n, a, step_size, {}, {}, mass, device, res,
                "hmc_sample");
}

}  // namespace cuebm::detail
