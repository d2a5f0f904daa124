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
#include "kernels/sampling/mcmc.cuh"
#include "kernels/sampling/mcmc_device.cuh"

namespace cuebm::detail {
namespace {

struct McmcArgs {
  float* x = nullptr;  // n_total x dim, row-major, updated in place
  int64_t n_total = 0;
  int dim = 0;
  int n_steps = 0;
  const float* step = nullptr;         // per step: MALA's eta, HMC's eps
  const float* noise_coef = nullptr;   // MALA, per step
  const float* temperature = nullptr;  // MALA, per step
  const float* mass = nullptr;         // HMC, dim
  int n_leapfrog = 0;
  uint64_t seed = 0, step_offset = 0, first_chain = 0;
  const float* noise = nullptr;  // n_steps x n_total x (dim + 1), or null (Philox)
  float* energy = nullptr;       // n_total: E of the final state
  float* initial_energy = nullptr;
  int* accepted = nullptr;  // n_total
  float* trace = nullptr;   // n_steps x n_total: E after each step, or null
};

// Gaussians 4q .. 4q + 3 of (row, step t) (entries past dim are 0), from the buffer or Philox.
__device__ Normal4 draw_normal4(const McmcArgs& a, int64_t row, int t, int q) {
  if (a.noise) {
    const float* src = a.noise + (static_cast<int64_t>(t) * a.n_total + row) * (a.dim + 1);
    Normal4 n;
    for (int c = 0; c < 4; ++c) n.v[c] = 4 * q + c < a.dim ? src[4 * q + c] : 0.0f;
    return n;
  }
  return mcmc_normal4(a.seed, a.first_chain + static_cast<uint64_t>(row),
                      a.step_offset + static_cast<uint64_t>(t), a.dim, q);
}
__device__ float draw_uniform(const McmcArgs& a, int64_t row, int t) {
  if (a.noise) return a.noise[(static_cast<int64_t>(t) * a.n_total + row) * (a.dim + 1) + a.dim];
  return mcmc_uniform(a.seed, a.first_chain + static_cast<uint64_t>(row),
                      a.step_offset + static_cast<uint64_t>(t), a.dim);
}

// Loads the row's state into x0 and the model, and returns E with dE/dx in g0.
template <class Model>
__device__ float start_row(Model& m, const McmcArgs& a, int64_t row, float* x0, float* g0,
                           int64_t ld) {
  for (int i = 0; i < a.dim; ++i) x0[i * ld] = m.x(i) = a.x[row * a.dim + i];
  bool finite = true;
  const float e0 = energy_gradient(m, g0, ld, a.dim, finite);
  a.initial_energy[row] = e0;
  return e0;
}

// A chain whose initial energy is not finite is not run (the host reports it).
__device__ bool skip_row(const McmcArgs& a, int64_t row, float e0) {
  if (isfinite(e0)) return false;
  a.energy[row] = e0;
  a.accepted[row] = 0;
  return true;
}

// Keeps the proposal at the model's x (energy e1, gradient g1) when accepted, else puts x0
// back into the model.
template <class Model>
__device__ void settle(Model& m, bool accept, float* x0, float* g0, const float* g1, int64_t ld,
                       int dim, float& e0, float e1, int& accepted) {
  if (accept) {
    for (int i = 0; i < dim; ++i) {
      x0[i * ld] = m.x(i);
      g0[i * ld] = g1[i * ld];
    }
    e0 = e1;
    ++accepted;
  } else {
    for (int i = 0; i < dim; ++i) m.x(i) = x0[i * ld];
  }
}

__device__ void finish_row(const McmcArgs& a, int64_t row, const float* x0, int64_t ld, float e0,
                           int accepted) {
  for (int i = 0; i < a.dim; ++i) a.x[row * a.dim + i] = x0[i * ld];
  a.energy[row] = e0;
  a.accepted[row] = accepted;
}

// State columns per row: x0 (D), g0 (D), g1 (D), p (D).
constexpr int kStateBlocks = 4;

template <class Model>
__device__ void run_mala(Model& m, const McmcArgs& a, int64_t row, float* st, int64_t ld) {
  const int D = a.dim;
  float* x0 = st;
  float* g0 = st + D * ld;
  float* g1 = st + 2 * D * ld;
  float e0 = start_row(m, a, row, x0, g0, ld);
  if (skip_row(a, row, e0)) return;
  int accepted = 0;
  for (int t = 0; t < a.n_steps; ++t) {
    const float eta = a.step[t], coef = a.noise_coef[t];
    double fwd = 0;
    for (int q = 0; 4 * q < D; ++q) {
      const Normal4 eps = draw_normal4(a, row, t, q);
      for (int c = 0; c < 4 && 4 * q + c < D; ++c) {
        const int i = 4 * q + c;
        const float x1 = mala_proposal(x0[i * ld], g0[i * ld], eta, coef, eps.v[c]);
        fwd += mala_square(x1, x0[i * ld], eta, g0[i * ld]);
        m.x(i) = x1;
      }
    }
    bool ok = true;
    const float e1 = energy_gradient(m, g1, ld, D, ok);
    double rev = 0;
    for (int i = 0; i < D; ++i) rev += mala_square(x0[i * ld], m.x(i), eta, g1[i * ld]);
    const double log_alpha = mala_log_alpha(e0, e1, fwd, rev, eta, a.temperature[t]);
    const bool accept = ok && mcmc_accept(draw_uniform(a, row, t), log_alpha);
    settle(m, accept, x0, g0, g1, ld, D, e0, e1, accepted);
    if (a.trace) a.trace[static_cast<int64_t>(t) * a.n_total + row] = e0;
  }
  finish_row(a, row, x0, ld, e0, accepted);
}

template <class Model>
__device__ void run_hmc(Model& m, const McmcArgs& a, int64_t row, float* st, int64_t ld) {
  const int D = a.dim;
  float* x0 = st;
  float* g0 = st + D * ld;
  float* g1 = st + 2 * D * ld;
  float* p = st + 3 * D * ld;
  float e0 = start_row(m, a, row, x0, g0, ld);
  if (skip_row(a, row, e0)) return;
  int accepted = 0;
  for (int t = 0; t < a.n_steps; ++t) {
    const float h = a.step[t];
    double kinetic = 0;
    for (int q = 0; 4 * q < D; ++q) {
      const Normal4 z = draw_normal4(a, row, t, q);
      for (int c = 0; c < 4 && 4 * q + c < D; ++c) {
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
      e1 = energy_gradient(m, g1, ld, D, ok);
      for (int i = 0; i < D; ++i) p[i * ld] = hmc_half_kick(p[i * ld], h, g1[i * ld]);
    }
    kinetic = 0;
    for (int i = 0; i < D; ++i) {
      kinetic += hmc_kinetic(p[i * ld], a.mass[i]);
      ok = ok && isfinite(m.x(i));
    }
    const double log_alpha = hmc_log_alpha(h0, static_cast<double>(e1) + kinetic);
    const bool accept = ok && mcmc_accept(draw_uniform(a, row, t), log_alpha);
    settle(m, accept, x0, g0, g1, ld, D, e0, e1, accepted);
    if (a.trace) a.trace[static_cast<int64_t>(t) * a.n_total + row] = e0;
  }
  finish_row(a, row, x0, ld, e0, accepted);
}

enum class Sampler { kMala, kHmc };

template <Sampler S, class Model>
__device__ void run_sampler(Model& m, const McmcArgs& a, int64_t row, float* st, int64_t ld) {
  if constexpr (S == Sampler::kMala) {
    run_mala(m, a, row, st, ld);
  } else {
    run_hmc(m, a, row, st, ld);
  }
}

// Rows [row0, row0 + rows) of this launch; model storage in scratch, chain state in state (both
// column layout, stride ld). No block synchronisation: a thread past the end returns.
template <Sampler S, Activation A>
__global__ void __launch_bounds__(kMaxRowBlock)
    generic_mcmc_kernel(McmcArgs a, int64_t row0, int64_t rows, GenericNet net, float* scratch,
                        float* state, int64_t ld) {
  const int64_t local = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (local >= rows) return;
  GenericModel<A> m{net, scratch + local, ld, a.dim};
  run_sampler<S>(m, a, row0 + local, state + local, ld);
}

template <Sampler S>
__global__ void __launch_bounds__(kMaxRowBlock)
    analytic_mcmc_kernel(McmcArgs a, int64_t row0, int64_t rows, AnalyticParams p, float* scratch,
                         float* state, int64_t ld) {
  const int64_t local = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (local >= rows) return;
  AnalyticModel m{p, scratch + local, scratch + static_cast<int64_t>(a.dim) * ld + local,
                  static_cast<int>(ld)};
  run_sampler<S>(m, a, row0 + local, state + local, ld);
}

unsigned blocks_for(int64_t rows, int threads) {
  return static_cast<unsigned>((rows + threads - 1) / threads);
}

template <class T>
const T* upload(DeviceBuffer<T>& d, const std::vector<T>& h, cudaStream_t s) {
  d.resize(std::max<std::size_t>(h.size(), 1));
  if (!h.empty())
    CUEBM_CUDA_CHECK(
        cudaMemcpyAsync(d.data(), h.data(), h.size() * sizeof(T), cudaMemcpyHostToDevice, s));
  return d.data();
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

// Uploads the model, the state and the per-step arrays, runs the sampler over row chunks, and
// downloads the result into res.
template <Sampler S>
void run_on_device(const Energy& energy, const float* x0, int64_t n, McmcArgs a,
                   const std::vector<float>& step, const std::vector<float>& coef,
                   const std::vector<float>& temperature, const std::vector<float>& mass,
                   int device, McmcResult& res, const char* who) {
  DeviceGuard guard(device);
  Stream stream;
  cudaStream_t s = stream.get();
  DeviceModel m;
  make_device_model(energy, m, s);  // throws InvalidArgument for an unsupported energy
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

  const bool generic = m.kind != DeviceModel::Kind::kAnalytic;  // every MLP: the general path
  const int64_t model_cols = generic ? m.generic_cols : 2 * int64_t{D};
  const int64_t per_row = model_cols + kStateBlocks * int64_t{D};
  const int64_t chunk = row_chunk(n, per_row);
  const int64_t ld = (chunk + 31) / 32 * 32;
  DeviceBuffer<float> scratch(ld * model_cols), state(ld * kStateBlocks * D);
  SplitRanks ranks(a.trace, a.n_steps, n);
  const int threads = row_block_size();
  for (int64_t r0 = 0; r0 < n; r0 += chunk) {
    const int64_t rows = std::min(chunk, n - r0);
    if (generic) {
      const GenericNet net{m.flat.data(), m.meta.data(), m.n_lin};
      dispatch_activation(m.act, [&]<Activation A>() {
        generic_mcmc_kernel<S, A><<<blocks_for(rows, threads), threads, 0, s>>>(
            a, r0, rows, net, scratch.data(), state.data(), ld);
        CUEBM_CUDA_CHECK_LAUNCH();
      });
    } else {
      analytic_mcmc_kernel<S><<<blocks_for(rows, threads), threads, 0, s>>>(
          a, r0, rows, m.ap, scratch.data(), state.data(), ld);
      CUEBM_CUDA_CHECK_LAUNCH();
    }
  }
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
  run_on_device<Sampler::kMala>(energy, x0, n, a, eta, noise_coef, temperature, {}, device, res,
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
  run_on_device<Sampler::kHmc>(energy, x0, n, a, step_size, {}, {}, mass, device, res,
                               "hmc_sample");
}

}  // namespace cuebm::detail
