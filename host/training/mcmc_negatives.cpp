// The CD trainer's MALA, HMC and tempering negatives (host/training/mcmc_negatives.hpp).
#include "host/training/mcmc_negatives.hpp"

#include <cmath>
#include <string>

#include "cuebm/runtime/error.hpp"
#include "host/sampling/mcmc_support.hpp"

namespace cuebm::detail {
namespace {

float constant_value(const Schedule& s, const std::string& who, const char* what) {
  if (s.kind() != Schedule::Kind::kConstant)
    throw InvalidArgument(who + ": the " + what +
                          " must be constant for HMC and tempering negatives");
  return s.start();
}

}  // namespace

double negatives_temperature(const TrainerOptions& o) {
  const double sigma = o.sampler.noise_scale.start();
  return sigma * sigma;
}

float negatives_hmc_step(const TrainerOptions& o) {
  const NegativeSamplerOptions& n = o.negatives;
  return n.hmc_step_size > 0
             ? n.hmc_step_size
             : std::sqrt(2.0f * o.sampler.step_size.start()) * o.sampler.noise_scale.start();
}

void validate_negative_sampler(const TrainerOptions& o, int dim, const char* who_c) {
  const std::string who = who_c;
  const NegativeSamplerOptions& n = o.negatives;
  switch (n.kind) {
    case NegativeSampler::langevin:
      return;
    case NegativeSampler::mala:
      return;  // Langevin's schedules, validated with them
    case NegativeSampler::hmc: {
      constant_value(o.sampler.step_size, who, "step size");
      constant_value(o.sampler.noise_scale, who, "noise scale");
      if (n.leapfrog < 1)
        throw InvalidArgument(who + ": HMC needs leapfrog >= 1, got " + std::to_string(n.leapfrog));
      if (!(std::isfinite(n.hmc_step_size) && n.hmc_step_size >= 0))
        throw InvalidArgument(who + ": HMC step size must be finite and >= 0 (0: derived), got " +
                              std::to_string(n.hmc_step_size));
      full_mass(n.mass, dim, (who + ": HMC").c_str());
      if (!(std::isfinite(negatives_hmc_step(o)) && negatives_hmc_step(o) > 0))
        throw InvalidArgument(who + ": HMC step size " + std::to_string(negatives_hmc_step(o)) +
                              " is not finite and > 0");
      return;
    }
    case NegativeSampler::tempering: {
      constant_value(o.sampler.step_size, who, "step size");
      constant_value(o.sampler.noise_scale, who, "noise scale");
      if (n.replicas < 2)
        throw InvalidArgument(who + ": tempering needs replicas >= 2, got " +
                              std::to_string(n.replicas));
      if (n.swap_every < 1)
        throw InvalidArgument(who + ": tempering needs swap_every >= 1, got " +
                              std::to_string(n.swap_every));
      if (!(std::isfinite(n.t_max) && (n.t_max == 0 || n.t_max > negatives_temperature(o))))
        throw InvalidArgument(
            who + ": tempering's t_max must be 0 (10 sigma^2) or above sigma^2 = " +
            std::to_string(negatives_temperature(o)) + ", got " + std::to_string(n.t_max));
      return;
    }
  }
  throw InvalidArgument(who + ": unknown negative sampler " +
                        std::to_string(static_cast<int>(n.kind)));
}

std::vector<double> tempering_ladder(const TrainerOptions& o) {
  const double t_min = negatives_temperature(o);
  const double t_max = o.negatives.t_max > 0 ? o.negatives.t_max : 10 * t_min;
  return geometric_ladder(t_min, t_max, o.negatives.replicas);
}

McmcNegatives::McmcNegatives(const TrainerOptions& o, int dim, int n_steps, int64_t max_rows)
    : kind_(o.negatives.kind), dim_(dim), n_steps_(n_steps), seed_(o.seed) {
  validate_negative_sampler(o, dim, "CDTrainer");
  switch (kind_) {
    case NegativeSampler::mala:
      mala_ = mala_schedule(o.sampler.step_size, o.sampler.noise_scale, n_steps, "CDTrainer MALA");
      mala_chains_ = std::make_unique<MalaChains>(max_rows, dim);
      break;
    case NegativeSampler::hmc:
      hmc_eps_.assign(std::max(n_steps, 1), negatives_hmc_step(o));
      mass_ = full_mass(o.negatives.mass, dim, "CDTrainer HMC");
      leapfrog_ = o.negatives.leapfrog;
      inv_temperature_ = static_cast<float>(1.0 / negatives_temperature(o));
      hmc_chains_ = std::make_unique<HmcChains>(max_rows, dim);
      break;
    case NegativeSampler::tempering:
      ladder_ = tempering_ladder(o);
      tempering_eta_ = o.sampler.step_size.start();
      swap_every_ = o.negatives.swap_every;
      tempering_chains_ = std::make_unique<TemperingChains>(max_rows, o.negatives.replicas, dim);
      break;
    case NegativeSampler::langevin:
      throw InvalidArgument("McmcNegatives: Langevin negatives run on the chain runner");
  }
}

double McmcNegatives::run(const Energy& energy, float* x, int64_t rows, uint64_t first_chain,
                          uint64_t step_offset) {
  const McmcDraws draws(nullptr, seed_, first_chain, step_offset, rows, dim_);
  int64_t accepted = 0;
  int64_t tried = rows * n_steps_;
  if (mala_chains_) {
    mala_chains_->start(energy, x, rows);
    mala_chains_->run(energy, n_steps_, mala_, draws);
    std::copy(mala_chains_->states(), mala_chains_->states() + rows * dim_, x);
    for (int64_t r = 0; r < rows; ++r) accepted += mala_chains_->accepted()[r];
  } else if (hmc_chains_) {
    hmc_chains_->start(energy, x, rows, inv_temperature_);
    hmc_chains_->run(energy, n_steps_, {hmc_eps_.data(), mass_.data(), leapfrog_}, draws);
    std::copy(hmc_chains_->states(), hmc_chains_->states() + rows * dim_, x);
    for (int64_t r = 0; r < rows; ++r) accepted += hmc_chains_->accepted()[r];
  } else {
    TemperingChains& t = *tempering_chains_;
    t.start(energy, x, rows);
    t.run(energy, ladder_, tempering_eta_, n_steps_, swap_every_, seed_, first_chain, step_offset);
    t.coldest(x);
    for (int64_t m : t.moves()) accepted += m;
    tried *= t.replicas();
  }
  return tried > 0 ? static_cast<double>(accepted) / static_cast<double>(tried) : NAN;
}

}  // namespace cuebm::detail
