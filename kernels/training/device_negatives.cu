// The CUDA CD trainer's MALA, HMC and tempering negatives (kernels/training/device_negatives.cuh).
// The settings are derived exactly as host/training/mcmc_negatives.cpp derives them (the same
// float and double operations), so that the device takes the CPU trainer's decisions.
#include "kernels/training/device_negatives.cuh"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "cuebm/runtime/error.hpp"
#include "host/sampling/mcmc_chains.hpp"
#include "host/sampling/mcmc_support.hpp"
#include "host/training/mcmc_negatives.hpp"

namespace cuebm::detail {
namespace {

constexpr int kSumThreads = 256;

// out = (sum of counts[0 .. n)) / tried. One block, a fixed tree: the sum is exact (integers
// far below 2^53 in double), so the ratio has the CPU's bits for the same counts.
__global__ void __launch_bounds__(kSumThreads)
    acceptance_kernel(const int* __restrict__ counts, int64_t n, double tried, double* out) {
  __shared__ double sh[kSumThreads];
  double v = 0;
  for (int64_t i = threadIdx.x; i < n; i += kSumThreads) v += counts[i];
  sh[threadIdx.x] = v;
  __syncthreads();
  for (int s = kSumThreads / 2; s > 0; s >>= 1) {
    if (static_cast<int>(threadIdx.x) < s) sh[threadIdx.x] += sh[threadIdx.x + s];
    __syncthreads();
  }
  if (threadIdx.x == 0) *out = tried > 0 ? sh[0] / tried : NAN;
}

}  // namespace

DeviceNegatives::DeviceNegatives(const DeviceModel& m, const TrainerOptions& o, int64_t max_rows,
                                 cudaStream_t s)
    : m_(m),
      kind_(o.negatives.kind),
      dim_(m.dim),
      k_steps_(o.cd.k_steps),
      init_steps_(o.cd.init_steps),
      seed_(o.seed) {
  switch (kind_) {
    case NegativeSampler::mala: {
      const MalaSchedule k =
          mala_schedule(o.sampler.step_size, o.sampler.noise_scale, k_steps_, "CDTrainer MALA");
      upload(eta_, k.eta, s);
      upload(coef_, k.coef, s);
      upload(temperature_, k.temperature, s);
      if (o.cd.persistent && init_steps_ > 0) {
        const MalaSchedule i = mala_schedule(o.sampler.step_size, o.sampler.noise_scale,
                                             init_steps_, "CDTrainer MALA");
        upload(init_eta_, i.eta, s);
        upload(init_coef_, i.coef, s);
        upload(init_temperature_, i.temperature, s);
      }
      break;
    }
    case NegativeSampler::hmc:
      upload(hmc_eps_,
             std::vector<float>(std::max({k_steps_, init_steps_, 1}), negatives_hmc_step(o)), s);
      upload(mass_, full_mass(o.negatives.mass, dim_, "CDTrainer HMC"), s);
      leapfrog_ = o.negatives.leapfrog;
      inv_temperature_ = static_cast<float>(1.0 / negatives_temperature(o));
      break;
    case NegativeSampler::tempering: {
      replicas_ = o.negatives.replicas;
      const std::vector<double> ladder = tempering_ladder(o);
      tempering_eta_ = o.sampler.step_size.start();
      std::vector<float> coef(replicas_);
      for (int r = 0; r < replicas_; ++r)  // as TemperingChains::run
        coef[r] = static_cast<float>(std::sqrt(2.0 * tempering_eta_ * ladder[r]));
      upload(ladder_, ladder, s);
      upload(ladder_coef_, coef, s);
      swap_every_ = o.negatives.swap_every;
      break;
    }
    case NegativeSampler::langevin:
      throw InvalidArgument("DeviceNegatives: Langevin negatives run on the chain kernels");
  }
  const int64_t rows = max_rows * replicas_;
  energy_.resize(max_rows);
  initial_energy_.resize(rows);
  accepted_.resize(rows);
  swaps_.resize(std::max<int64_t>(1, max_rows * (replicas_ - 1)));
  storage_.emplace(kind_ == NegativeSampler::tempering ? tempering_storage(m, max_rows, replicas_)
                                                       : mcmc_storage(m, max_rows));
}

uint64_t DeviceNegatives::ids_per_row() const { return static_cast<uint64_t>(replicas_); }

void DeviceNegatives::run(float* x, int64_t rows, uint64_t first_chain, uint64_t step_offset,
                          bool init, cudaStream_t s) {
  last_steps_ = init ? init_steps_ : k_steps_;
  // What McmcArgs and TemperingArgs share: the chain keys and this sampler's energy arrays.
  const auto set_chains = [&](auto& a) {
    a.dim = dim_;
    a.n_steps = init ? init_steps_ : k_steps_;
    a.seed = seed_;
    a.first_chain = first_chain;
    a.step_offset = step_offset;
    a.energy = energy_.data();
    a.initial_energy = initial_energy_.data();
  };
  if (kind_ == NegativeSampler::tempering) {
    TemperingArgs a;
    set_chains(a);
    a.x_init = x;
    a.shared_start = true;
    a.n_replicas = replicas_;
    a.swap_every = swap_every_;
    a.eta = tempering_eta_;
    a.temperature = ladder_.data();
    a.coef = ladder_coef_.data();
    a.samples = x;  // the coldest replicas replace the start rows
    a.moves = accepted_.data();
    a.swaps = swaps_.data();
    launch_tempering_chains(m_, a, rows, *storage_, s);
    return;
  }
  McmcArgs a;
  set_chains(a);
  a.x = x;
  a.n_total = rows;
  if (kind_ == NegativeSampler::mala) {
    a.step = init ? init_eta_.data() : eta_.data();
    a.noise_coef = init ? init_coef_.data() : coef_.data();
    a.temperature = init ? init_temperature_.data() : temperature_.data();
  } else {
    a.step = hmc_eps_.data();
    a.mass = mass_.data();
    a.n_leapfrog = leapfrog_;
    a.inv_temperature = inv_temperature_;
  }
  a.accepted = accepted_.data();
  launch_mcmc_chains(kind_ == NegativeSampler::mala ? McmcSampler::kMala : McmcSampler::kHmc, m_, a,
                     *storage_, s);
}

void DeviceNegatives::acceptance(int64_t rows, double* out, cudaStream_t s) const {
  const int64_t tried = rows * last_steps_ * replicas_;
  acceptance_kernel<<<1, kSumThreads, 0, s>>>(accepted_.data(), rows * replicas_,
                                              static_cast<double>(tried), out);
  CUEBM_CUDA_CHECK_LAUNCH();
}

}  // namespace cuebm::detail
