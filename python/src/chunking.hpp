// How the bindings split a long sampler run into chunks of steps, each continued exactly from
// the last (the noise is keyed by (seed, chain, step_offset + t), rng.md), so that Ctrl-C can be
// checked between chunks while the result equals one uninterrupted call bit for bit.
#pragma once

#include <algorithm>
#include <cstdint>

#include "cuebm/models/energy.hpp"
#include "cuebm/models/mlp.hpp"
#include "cuebm/sampling/schedule.hpp"

namespace cuebm::python {

// A schedule whose value never changes can be split between calls (schedules restart at
// every call, so a changing one cannot).
inline bool is_constant(const Schedule& s) {
  return s.kind() == Schedule::Kind::kConstant && s.value(0) == s.start();
}

// Steps per chunk for about kChunkWork multiply-adds (about 20-50 ms on one CPU core), with
// `gradients_per_step` energy gradients per chain and step (a gradient costs about three
// forward passes).
inline int auto_chunk_steps(const Energy& energy, int64_t n_chains, int gradients_per_step = 1) {
  constexpr double kChunkWork = 2e9;
  const auto* mlp = dynamic_cast<const Mlp*>(&energy);
  const double per_row = mlp ? 3.0 * static_cast<double>(mlp->forward_macs()) : 20.0 * energy.dim();
  const double steps = kChunkWork / (per_row * std::max(gradients_per_step, 1) *
                                     static_cast<double>(std::max<int64_t>(n_chains, 1)));
  return static_cast<int>(std::clamp(steps, 1.0, 1e9));
}

// The chunk length for n_steps steps: `requested` (> 0) or the automatic one, the whole run
// when a schedule changes (`splittable` false), and at least 1.
inline int chunk_length(int requested, int automatic, bool splittable, int n_steps) {
  int chunk = requested > 0 ? requested : automatic;
  if (!splittable) chunk = n_steps;
  return std::max(1, std::min(chunk, std::max(n_steps, 1)));
}

}  // namespace cuebm::python
