// Option structs built from the keyword arguments that several bindings share (ScoreLoss,
// CDTrainer, run_training, the testing hooks), so every binding parses them the same way.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "cuebm/training/cd.hpp"
#include "cuebm/training/score_matching.hpp"

namespace cuebm::python {

// The score-matching settings by name. Throws InvalidArgument for an unknown name. A trainer's
// kind follows its loss, so trainers leave kind at its default.
ScoreLossOptions score_loss_options(const std::string& hessian_method, int n_projections,
                                    const std::string& projection_type, float noise_scale,
                                    const std::string& denoising_sign,
                                    float regularization_strength,
                                    ScoreLossKind kind = ScoreLossKind::kScoreMatching,
                                    uint64_t seed = 0);

// CD's negative sampler by name and its HMC and tempering settings.
NegativeSamplerOptions negative_sampler_options(const std::string& sampler, float hmc_step_size,
                                                int leapfrog, std::vector<float> mass, int replicas,
                                                double t_max, int swap_every);

}  // namespace cuebm::python
