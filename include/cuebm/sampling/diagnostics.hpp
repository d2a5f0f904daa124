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

}  // namespace cuebm
