// What the CD-with-MCMC-negatives tests of the CPU trainer (test_cd_samplers.cpp) and of the CUDA
// trainer (test_cuda_cd_samplers.cpp) share: the model shape, the batches, bitwise comparison and
// the trainer options.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "cuebm/models/mlp.hpp"
#include "cuebm/training/cd.hpp"

namespace cuebm::testing_support {

inline constexpr int kDim = 3;  // not a multiple of 4: the Philox blocks' tail is used
inline const MlpSpec kSpec{kDim, {16, 16}, Activation::kSoftplus};

// rows x dim floats from N(0, 1), std::mt19937 seeded with seed.
inline std::vector<float> random_rows(int64_t rows, int dim, uint32_t seed) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> n(0.0f, 1.0f);
  std::vector<float> v(static_cast<std::size_t>(rows) * dim);
  for (float& x : v) x = n(gen);
  return v;
}

inline bool bitwise_equal(const float* a, const float* b, std::size_t n) {
  return std::memcmp(a, b, n * sizeof(float)) == 0;
}

// CD-k with the given negative sampler; the sampler's own settings stay at their defaults.
inline TrainerOptions cd_options(NegativeSampler kind, int k, float eta, float sigma,
                                 uint64_t seed) {
  TrainerOptions o;
  o.cd.k_steps = k;
  o.sampler.step_size = eta;
  o.sampler.noise_scale = sigma;
  o.negatives.kind = kind;
  o.seed = seed;
  o.adam.lr = 1e-2f;  // the parameters move visibly between steps
  return o;
}

}  // namespace cuebm::testing_support
