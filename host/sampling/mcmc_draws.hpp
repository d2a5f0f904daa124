// The random numbers of one MALA or HMC step (include/cuebm/sampling/mcmc.hpp): D Gaussians and
// one uniform per (row, step) from Philox keyed by (seed, first_chain + row, step_offset + t), or
// from a caller's buffer. Shared by mala_sample, hmc_sample, parallel_tempering and the CD
// trainer's negatives, so that all of them draw the same numbers for the same keys.
#pragma once

#include <algorithm>
#include <cstdint>

#include "kernels/sampling/mcmc.cuh"

namespace cuebm::detail {

class McmcDraws {
 public:
  // noise: null for Philox, else n rows' dim + 1 floats per step (MalaOptions::noise).
  McmcDraws(const float* noise, uint64_t seed, uint64_t first_chain, uint64_t step_offset,
            int64_t n, int dim)
      : noise_(noise), seed_(seed), first_(first_chain), offset_(step_offset), n_(n), dim_(dim) {}

  // Fills eps[0 .. dim) for (row, t).
  void normals(int64_t row, int t, float* eps) const {
    if (noise_) {
      const float* src = at(row, t);
      std::copy(src, src + dim_, eps);
      return;
    }
    for (int q = 0; 4 * q < dim_; ++q) {
      const Normal4 n4 = mcmc_normal4(seed_, first_ + static_cast<uint64_t>(row), step(t), dim_, q);
      for (int c = 0; c < 4 && 4 * q + c < dim_; ++c) eps[4 * q + c] = n4.v[c];
    }
  }
  float uniform(int64_t row, int t) const {
    if (noise_) return at(row, t)[dim_];
    return mcmc_uniform(seed_, first_ + static_cast<uint64_t>(row), step(t), dim_);
  }

 private:
  const float* at(int64_t row, int t) const {
    return noise_ + (static_cast<int64_t>(t) * n_ + row) * (dim_ + 1);
  }
  uint64_t step(int t) const { return offset_ + static_cast<uint64_t>(t); }

  const float* noise_;
  uint64_t seed_, first_, offset_;
  int64_t n_;
  int dim_;
};

}  // namespace cuebm::detail
