// What the score-matching tests of the CPU backend (test_score_matching.cpp) and of the CUDA
// backend (test_score_matching_cuda.cpp) share: the activations, the inputs, and the losses and
// variants they check.
#pragma once

#include <cstddef>
#include <cstdint>
#include <random>
#include <vector>

#include "cuebm/models/activation.hpp"
#include "cuebm/training/score_matching.hpp"

namespace cuebm::testing_support {

inline constexpr Activation kActivations[] = {Activation::kReLU,      Activation::kSiLU,
                                              Activation::kTanh,      Activation::kSoftplus,
                                              Activation::kLeakyReLU, Activation::kGELU};

// n floats from N(0, scale^2), std::mt19937_64 seeded with seed.
inline std::vector<float> RandomNormal(std::size_t n, double scale, uint64_t seed) {
  std::mt19937_64 gen(seed);
  std::normal_distribution<double> dist(0.0, scale);
  std::vector<float> v(n);
  for (auto& x : v) x = static_cast<float>(dist(gen));
  return v;
}

struct ScoreLossVariant {
  const char* name;
  ScoreLossOptions options;
};

// Every loss and variant: both Hessian methods, the three projections, both denoising signs, the
// regularisation on each loss.
inline std::vector<ScoreLossVariant> ScoreLossVariants() {
  std::vector<ScoreLossVariant> v;
  ScoreLossOptions o;
  o.seed = 11;
  v.push_back({"sm exact", o});
  o.regularization_strength = 0.3f;
  v.push_back({"sm exact lambda 0.3", o});
  o.hessian_method = HessianMethod::kTorchEbmApprox;
  o.regularization_strength = 0.1f;
  v.push_back({"sm torchebm approx lambda 0.1", o});
  o = {};
  o.seed = 12;
  o.kind = ScoreLossKind::kSlicedScoreMatching;
  v.push_back({"ssm rademacher", o});
  o.projection_type = ProjectionType::kSphere;
  o.n_projections = 3;
  o.regularization_strength = 0.2f;
  v.push_back({"ssm sphere 3 lambda 0.2", o});
  o.projection_type = ProjectionType::kGaussian;
  o.n_projections = 5;
  o.regularization_strength = 0.0f;
  v.push_back({"ssm gaussian", o});
  // Fewer projections than input dimensions (the tests' 3): one channel per projection and one
  // along g, where the cases above carry the unit directions (sm_sliced_by_basis).
  o.projection_type = ProjectionType::kRademacher;
  o.n_projections = 2;
  o.regularization_strength = 0.1f;
  v.push_back({"ssm rademacher 2 lambda 0.1", o});
  o = {};
  o.seed = 13;
  o.kind = ScoreLossKind::kDenoisingScoreMatching;
  v.push_back({"dsm sigma 0.01", o});
  o.noise_scale = 0.2f;
  o.regularization_strength = 0.1f;
  v.push_back({"dsm sigma 0.2 lambda 0.1", o});
  o.denoising_sign = DenoisingSign::kTorchEbm;
  v.push_back({"dsm torchebm sign lambda 0.1", o});
  return v;
}

}  // namespace cuebm::testing_support
