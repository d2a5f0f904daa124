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
#include "host/runtime/device_reduce.hpp"
#include "host/sampling/cuda_tempering.hpp"
#include "host/sampling/mcmc_support.hpp"
#include "kernels/models/device_model.cuh"
#include "kernels/sampling/device_chains.cuh"
#include "kernels/sampling/mcmc.cuh"
#include "kernels/sampling/mcmc_device.cuh"
#include "kernels/sampling/mcmc_launch.cuh"
#include "kernels/sampling/tempering_swap.cuh"

namespace cuebm::detail {
namespace {

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

// Swap round `round`: pairs (s, s + 1) with s of the round's parity. The lower replica of each
// pair decides; then both replicas of an accepted pair exchange slots. Every thread of the
// block calls this (two barriers).
__device__ void swap_round(ReplicaShared& sh, const TemperingArgs& a, const Replica& rep,
                           uint64_t round, float e0, int& slot) {
  const int R = a.n_replicas;
  if (rep.active) sh.energy[rep.base + slot] = e0;
  __syncthreads();
  const int parity = static_cast<int>(round % 2);
  const bool lower = rep.active && slot % 2 == parity && slot + 1 < R;
  if (lower) {
    const double log_alpha =
        swap_log_alpha(a.temperature[slot], a.temperature[slot + 1], sh.energy[rep.base + slot],
                       sh.energy[rep.base + slot + 1]);
    const float u =
        swap_uniform(a.seed, a.first_chain, static_cast<uint64_t>(rep.chain), round, R, slot);
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
  // MALA keys of the replica holding slot s: chain first_chain + chain * R + s.
  const DeviceDraws draws{nullptr, 0, D, a.seed, a.first_chain, a.step_offset};
  float e0 = 0;
  if (rep.active) {
    load_row(m, a.x_init + (a.shared_start ? rep.chain : row) * D, x0, ld, D);
    bool finite = true;
    e0 = energy_gradient(m, g0, ld, D, finite);
    a.initial_energy[row] = e0;
  }
  __syncthreads();
  for (int t = 0; t < a.n_steps; ++t) {
    if (rep.active)
      sh.moves[rep.base + slot] +=
          mala_move(m, draws, rep.chain * R + slot, static_cast<uint64_t>(t), a.eta, a.coef[slot],
                    a.temperature[slot], x0, g0, g1, ld, e0);
    const uint64_t step = a.step_offset + static_cast<uint64_t>(t);
    const uint64_t every = static_cast<uint64_t>(a.swap_every);
    if ((step + 1) % every == 0) swap_round(sh, a, rep, (step + 1) / every - 1, e0, slot);
  }
  __syncthreads();
  if (!rep.active) return;
  if (slot == 0) {
    store_row(a.samples + rep.chain * D, x0, ld, D);
    a.energy[rep.chain] = e0;
  }
  a.moves[rep.chain * R + rep.lane] = sh.moves[rep.base + rep.lane];
  if (rep.lane + 1 < R) a.swaps[rep.chain * (R - 1) + rep.lane] = sh.swaps[rep.base + rep.lane];
}

// Chains [chain0, chain0 + chains) of this launch; model storage in scratch, chain state in
// state (both column layout, stride ld, row (chain - chain0) * R + r).
template <class Rows>
__global__ void __launch_bounds__(kMaxRowBlock)
    tempering_kernel(TemperingArgs a, int64_t chain0, int64_t chains, Rows model_rows,
                     float* scratch, float* state, int64_t ld) {
  const Replica rep = locate(a, chain0, chains);
  auto m = model_rows.model(scratch, rep.local, ld, a.dim);
  run_replica(m, a, rep, state + rep.local, ld);
}

// State columns per row: x0, g0, g1.
constexpr int kStateBlocks = 3;

}  // namespace

ChainStorage tempering_storage(const DeviceModel& m, int64_t max_chains, int n_replicas) {
  return ChainStorage(m, max_chains, n_replicas, kStateBlocks);
}

void launch_tempering_chains(const DeviceModel& m, const TemperingArgs& a, int64_t n_chains,
                             ChainStorage& storage, cudaStream_t s) {
  const int R = a.n_replicas;
  storage.require_fits(m, R, kStateBlocks, "launch_tempering_chains");
  if (R < 2 || R > kMaxCudaReplicas)
    throw InvalidArgument("launch_tempering_chains: " + std::to_string(R) +
                          " replicas per chain; the CUDA backend runs 2 to " +
                          std::to_string(kMaxCudaReplicas));
  const int per_block = std::max(1, row_block_size() / R);  // whole chains only
  const int threads = per_block * R;
  with_row_models(m, [&](auto model_rows) {
    using Rows = decltype(model_rows);
    for_each_chunk(n_chains, storage.chunk(), [&](int64_t c0, int64_t chains) {
      const unsigned blocks = static_cast<unsigned>((chains + per_block - 1) / per_block);
      tempering_kernel<Rows><<<blocks, threads, 0, s>>>(
          a, c0, chains, model_rows, storage.scratch(), storage.state(), storage.ld());
      CUEBM_CUDA_CHECK_LAUNCH();
    });
  });
}

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
  const DeviceRun run(energy, device);
  const DeviceModel& m = run.model();
  cudaStream_t s = run.stream();
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

  ChainStorage storage = tempering_storage(m, n, R);
  launch_tempering_chains(m, a, n, storage, s);
  std::vector<float> initial;
  download(res.samples, samples, s);
  download(res.energy, e, s);
  download(initial, e_init, s);
  // The per-chain counts summed per temperature and per pair on the device (waits for s).
  TemperingCounts counts{device_column_sums(moves.data(), n, R, s),
                         device_column_sums(swaps.data(), n, R - 1, s)};
  CUEBM_CUDA_CHECK(cudaStreamSynchronize(s));
  require_finite_start(initial, "parallel_tempering");
  return counts;
}

}  // namespace cuebm::detail
