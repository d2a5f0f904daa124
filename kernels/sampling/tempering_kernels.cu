// Replica-exchange parallel tempering on the device: the whole run (every MALA step and every
// swap round) in one launch per chunk of chains. A chain's R replicas are R consecutive threads
// of one block (a block holds blockDim.x / R chains); each thread moves its replica with MALA
// at the temperature of the slot it holds, and at a swap round the replicas exchange slots
// (temperature labels) through shared memory instead of states: equivalent to the CPU's
// exchange of states between rows, since the noise, the temperature and the counters follow the
// slot. The state (current point and gradient, the proposal's gradient) lives in global memory
// in column layout next to the model's per-row storage, as in mcmc_kernels.cu. Nothing
// synchronises the host inside the run: one download at the end.
#include <cuda_runtime.h>

#include <algorithm>
#include <string>
#include <vector>

#include "cuebm/runtime/error.hpp"
#include "host/sampling/cuda_tempering.hpp"
#include "host/sampling/mcmc_support.hpp"
#include "kernels/models/device_model.cuh"
#include "kernels/sampling/mcmc.cuh"
#include "kernels/sampling/mcmc_device.cuh"
#include "kernels/sampling/tempering_swap.cuh"

namespace cuebm::detail {
namespace {

struct TemperingArgs {
  const float* x_init = nullptr;  // (n_chains * R) x dim, row-major: replica r of chain c in c*R+r
  int n_replicas = 0;
  int dim = 0;
  int n_steps = 0;
  int swap_every = 1;
  float eta = 0;
  const double* temperature = nullptr;  // R
  const float* coef = nullptr;          // R: sqrt(2 eta T_r)
  uint64_t seed = 0, first_chain = 0;
  float* samples = nullptr;         // n_chains x dim: the slot-0 replicas at the end
  float* energy = nullptr;          // n_chains
  float* initial_energy = nullptr;  // n_chains * R
  int* moves = nullptr;             // n_chains x R: accepted moves at temperature r
  int* swaps = nullptr;             // n_chains x (R - 1): accepted swaps of pair (r, r + 1)
};

// Per block, entry c * R + s for local chain c and slot s.
struct ReplicaShared {
  float energy[kMaxRowBlock];  // E of the replica holding slot s, written at a swap round
  int swapped[kMaxRowBlock];   // whether pair (s, s + 1) swapped in this round
  int moves[kMaxRowBlock];     // accepted MALA moves at slot s
  int swaps[kMaxRowBlock];     // accepted swaps of pair (s, s + 1)
};

// Where a thread's replica sits: its chain (in the run and in the chunk), its initial slot, and
// whether the chain exists (threads past the last chain of the chunk only reach the barriers).
struct Replica {
  int64_t chain = 0;  // in the run
  int64_t local = 0;  // row in the chunk's column storage (0 for an inactive thread)
  int base = 0;       // first shared entry of the chain
  int lane = 0;       // initial slot
  bool active = false;
};

__device__ Replica locate(const TemperingArgs& a, int64_t chain0, int64_t chains) {
  const int R = a.n_replicas;
  const int per_block = static_cast<int>(blockDim.x) / R;
  const int c = static_cast<int>(threadIdx.x) / R;
  Replica rep;
  rep.lane = static_cast<int>(threadIdx.x) % R;
  rep.base = c * R;
  const int64_t in_chunk = static_cast<int64_t>(blockIdx.x) * per_block + c;
  rep.active = c < per_block && in_chunk < chains;
  rep.chain = chain0 + in_chunk;
  rep.local = rep.active ? in_chunk * R + rep.lane : 0;
  return rep;
}

// One MALA step of the replica at slot s, step t: the arithmetic of host/sampling/mala_step.hpp
// in the same order. Keeps the proposal (x0, g0, e0 updated) or puts x0 back into the model.
template <class Model>
__device__ bool mala_move(Model& m, const TemperingArgs& a, uint64_t chain_id, int t, int s,
                          float* x0, float* g0, float* g1, int64_t ld, float& e0) {
  const int D = a.dim;
  const float eta = a.eta, coef = a.coef[s];
  const uint64_t step = static_cast<uint64_t>(t);
  double fwd = 0;
  for (int q = 0; 4 * q < D; ++q) {
    const Normal4 eps = mcmc_normal4(a.seed, chain_id, step, D, q);
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
  const double log_alpha = mala_log_alpha(e0, e1, fwd, rev, eta, a.temperature[s]);
  const bool accept = ok && mcmc_accept(mcmc_uniform(a.seed, chain_id, step, D), log_alpha);
  if (accept) {
    for (int i = 0; i < D; ++i) {
      x0[i * ld] = m.x(i);
      g0[i * ld] = g1[i * ld];
    }
    e0 = e1;
  } else {
    for (int i = 0; i < D; ++i) m.x(i) = x0[i * ld];
  }
  return accept;
}

// Swap round `round`: pairs (s, s + 1) with s of the round's parity. The lower replica of each
// pair decides; then both replicas of an accepted pair exchange slots. Every thread of the
// block calls this (two barriers).
__device__ void swap_round(ReplicaShared& sh, const TemperingArgs& a, const Replica& rep,
                           int64_t round, float e0, int& slot) {
  const int R = a.n_replicas;
  if (rep.active) sh.energy[rep.base + slot] = e0;
  __syncthreads();
  const int parity = static_cast<int>(round % 2);
  const bool lower = rep.active && slot % 2 == parity && slot + 1 < R;
  if (lower) {
    const double log_alpha =
        swap_log_alpha(a.temperature[slot], a.temperature[slot + 1], sh.energy[rep.base + slot],
                       sh.energy[rep.base + slot + 1]);
    const float u = swap_uniform(a.seed, a.first_chain, static_cast<uint64_t>(rep.chain),
                                 static_cast<uint64_t>(round), R, slot);
    const bool accept = mcmc_accept(u, log_alpha);
    sh.swapped[rep.base + slot] = accept;
    sh.swaps[rep.base + slot] += accept;
  }
  __syncthreads();
  if (lower) {
    if (sh.swapped[rep.base + slot]) ++slot;
  } else if (rep.active && slot >= 1 && (slot - 1) % 2 == parity) {
    if (sh.swapped[rep.base + slot - 1]) --slot;
  }
}

// The whole run of one replica. st: its state columns (x0, g0, g1; stride ld).
template <class Model>
__device__ void run_replica(Model& m, const TemperingArgs& a, const Replica& rep, float* st,
                            int64_t ld) {
  __shared__ ReplicaShared sh;
  const int D = a.dim, R = a.n_replicas;
  float* x0 = st;
  float* g0 = st + D * ld;
  float* g1 = st + 2 * D * ld;
  sh.moves[threadIdx.x] = 0;
  sh.swaps[threadIdx.x] = 0;
  int slot = rep.lane;
  const int64_t row = rep.chain * R + rep.lane;  // in the run
  float e0 = 0;
  if (rep.active) {
    for (int i = 0; i < D; ++i) x0[i * ld] = m.x(i) = a.x_init[row * D + i];
    bool finite = true;
    e0 = energy_gradient(m, g0, ld, D, finite);
    a.initial_energy[row] = e0;
  }
  __syncthreads();
  int64_t round = 0;
  for (int t = 0; t < a.n_steps; ++t) {
    if (rep.active) {
      const uint64_t chain_id = a.first_chain + static_cast<uint64_t>(rep.chain * R + slot);
      if (mala_move(m, a, chain_id, t, slot, x0, g0, g1, ld, e0)) ++sh.moves[rep.base + slot];
    }
    if ((t + 1) % a.swap_every == 0) swap_round(sh, a, rep, round++, e0, slot);
  }
  __syncthreads();
  if (!rep.active) return;
  if (slot == 0) {
    for (int i = 0; i < D; ++i) a.samples[rep.chain * D + i] = x0[i * ld];
    a.energy[rep.chain] = e0;
  }
  a.moves[rep.chain * R + rep.lane] = sh.moves[rep.base + rep.lane];
  if (rep.lane + 1 < R) a.swaps[rep.chain * (R - 1) + rep.lane] = sh.swaps[rep.base + rep.lane];
}

// Chains [chain0, chain0 + chains) of this launch; model storage in scratch, chain state in
// state (both column layout, stride ld, row (chain - chain0) * R + r).
template <Activation A>
__global__ void __launch_bounds__(kMaxRowBlock)
    generic_tempering_kernel(TemperingArgs a, int64_t chain0, int64_t chains, GenericNet net,
                             float* scratch, float* state, int64_t ld) {
  const Replica rep = locate(a, chain0, chains);
  GenericModel<A> m{net, scratch + rep.local, ld, a.dim};
  run_replica(m, a, rep, state + rep.local, ld);
}

__global__ void __launch_bounds__(kMaxRowBlock)
    analytic_tempering_kernel(TemperingArgs a, int64_t chain0, int64_t chains, AnalyticParams p,
                              float* scratch, float* state, int64_t ld) {
  const Replica rep = locate(a, chain0, chains);
  AnalyticModel m{p, scratch + rep.local, scratch + static_cast<int64_t>(a.dim) * ld + rep.local,
                  static_cast<int>(ld)};
  run_replica(m, a, rep, state + rep.local, ld);
}

template <class T>
T* upload(DeviceBuffer<T>& d, const std::vector<T>& h, cudaStream_t s) {
  d.resize(h.size());
  CUEBM_CUDA_CHECK(
      cudaMemcpyAsync(d.data(), h.data(), h.size() * sizeof(T), cudaMemcpyHostToDevice, s));
  return d.data();
}

template <class T>
void download(std::vector<T>& h, const DeviceBuffer<T>& d, cudaStream_t s) {
  h.resize(d.size());
  CUEBM_CUDA_CHECK(cudaMemcpyAsync(h.data(), d.data(), d.bytes(), cudaMemcpyDeviceToHost, s));
}

// State columns per row: x0, g0, g1.
constexpr int kStateBlocks = 3;

}  // namespace

TemperingCounts parallel_tempering_cuda(const Energy& energy, const std::vector<float>& x_init,
                                        int64_t n, const TemperingOptions& o,
                                        const std::vector<double>& temperatures,
                                        const std::vector<float>& coef, int device,
                                        TemperingResult& res) {
  const int R = static_cast<int>(temperatures.size());
  if (R > kMaxCudaReplicas)
    throw InvalidArgument(
        "parallel_tempering: the CUDA backend runs at most " + std::to_string(kMaxCudaReplicas) +
        " replicas per chain (a chain's replicas are threads of one block), got " +
        std::to_string(R));
  DeviceGuard guard(device);
  Stream stream;
  cudaStream_t s = stream.get();
  DeviceModel m;
  make_device_model(energy, m, s);  // throws InvalidArgument for an unsupported energy
  const int D = energy.dim();
  const int64_t rows = n * R;
  DeviceBuffer<float> x, samples(n * D), e(n), e_init(rows), d_coef;
  DeviceBuffer<double> d_temp;
  DeviceBuffer<int> moves(rows), swaps(n * (R - 1));
  TemperingArgs a;
  a.x_init = upload(x, x_init, s);
  a.n_replicas = R;
  a.dim = D;
  a.n_steps = o.n_steps;
  a.swap_every = o.swap_every;
  a.eta = o.step_size;
  a.temperature = upload(d_temp, temperatures, s);
  a.coef = upload(d_coef, coef, s);
  a.seed = o.seed;
  a.first_chain = o.first_chain;
  a.samples = samples.data();
  a.energy = e.data();
  a.initial_energy = e_init.data();
  a.moves = moves.data();
  a.swaps = swaps.data();

  const bool generic = m.kind != DeviceModel::Kind::kAnalytic;  // every MLP: the general path
  const int64_t model_cols = generic ? m.generic_cols : 2 * int64_t{D};
  const int64_t per_row = model_cols + kStateBlocks * int64_t{D};
  const int64_t chunk = std::max<int64_t>(1, row_chunk(rows, per_row) / R);  // chains per launch
  const int64_t ld = (chunk * R + 31) / 32 * 32;
  DeviceBuffer<float> scratch(ld * model_cols), state(ld * kStateBlocks * D);
  const int per_block = std::max(1, row_block_size() / R);  // whole chains only
  const int threads = per_block * R;
  for (int64_t c0 = 0; c0 < n; c0 += chunk) {
    const int64_t chains = std::min(chunk, n - c0);
    const unsigned blocks = static_cast<unsigned>((chains + per_block - 1) / per_block);
    if (generic) {
      const GenericNet net{m.flat.data(), m.meta.data(), m.n_lin};
      dispatch_activation(m.act, [&]<Activation A>() {
        generic_tempering_kernel<A>
            <<<blocks, threads, 0, s>>>(a, c0, chains, net, scratch.data(), state.data(), ld);
        CUEBM_CUDA_CHECK_LAUNCH();
      });
    } else {
      analytic_tempering_kernel<<<blocks, threads, 0, s>>>(a, c0, chains, m.ap, scratch.data(),
                                                           state.data(), ld);
      CUEBM_CUDA_CHECK_LAUNCH();
    }
  }
  std::vector<float> initial;
  std::vector<int> mv, sw;
  download(res.samples, samples, s);
  download(res.energy, e, s);
  download(initial, e_init, s);
  download(mv, moves, s);
  download(sw, swaps, s);
  CUEBM_CUDA_CHECK(cudaStreamSynchronize(s));
  require_finite_start(initial, "parallel_tempering");
  TemperingCounts counts{std::vector<int64_t>(R, 0), std::vector<int64_t>(R - 1, 0)};
  for (int64_t c = 0; c < n; ++c) {
    for (int r = 0; r < R; ++r) counts.moves[r] += mv[c * R + r];
    for (int r = 0; r + 1 < R; ++r) counts.swaps[r] += sw[c * (R - 1) + r];
  }
  return counts;
}

}  // namespace cuebm::detail
