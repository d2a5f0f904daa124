// Convergence diagnostics of a scalar traced over several chains (Vehtari, Gelman, Simpson,
// Carpenter and Buerkner, "Rank-normalization, folding, and localization: an improved R-hat",
// Bayesian Analysis 2021): the split, rank-normalised R-hat (the larger of the bulk and the
// folded "tail" values) and the bulk effective sample size (Geyer's initial monotone sequence on
// the rank-normalised split chains). Draws are chain-major: draws[c * n + i] is draw i of
// chain c. Deterministic: the same draws give the same numbers.
#pragma once

#include <cstdint>
#include <vector>

namespace cuebm {

// R-hat near 1 (below 1.01) says the chains agree; larger values that they have not mixed.
// Throws InvalidArgument for fewer than 1 chain, fewer than 4 draws per chain, a draws array of
// another size, or a non-finite draw.
double split_rhat(const std::vector<double>& draws, int64_t chains, int64_t n);
// Effective number of independent draws of the bulk of the distribution (same argument rules).
double ess_bulk(const std::vector<double>& draws, int64_t chains, int64_t n);

namespace detail {

// split_rhat and ess_bulk of the same draws, bit for bit, from the average ranks (1-based, ties
// averaged) of the split chains' draws computed elsewhere (the CUDA backend ranks them on the
// device: host/runtime/device_reduce.hpp). split_ranks is in the split chains' layout: for chain
// c and h = floor(n / 2), split_ranks[2c * h + i] is the rank of draw i and
// split_ranks[(2c + 1) * h + i] that of draw n - h + i, among all 2 x chains x h split draws
// (for odd n the middle draws are left out). Throws as split_rhat does, and for a split_ranks of
// another size.
struct RhatEss {
  double rhat, ess;
};
RhatEss rhat_ess_from_split_ranks(const std::vector<double>& draws, int64_t chains, int64_t n,
                                  const std::vector<double>& split_ranks);

}  // namespace detail

}  // namespace cuebm
