// Replica-exchange chains on the CPU with every buffer sized once: parallel_tempering's CPU run
// (include/cuebm/sampling/tempering.hpp, host/sampling/tempering.cpp), with a step_offset so that
// a run continued with step_offset = s equals one longer run. The CD trainer's tempering
// negatives run on it step after step without allocating.
//
// Rows c * R + r hold replica r of chain c. Step t (global step s = step_offset + t) moves every
// replica with MALA at its temperature, keyed by (seed, first_chain + c * R + r, s) as
// mala_sample's chains are (McmcDraws); after every global step s with (s + 1) % swap_every == 0,
// swap round (s + 1) / swap_every - 1 tries the pairs (r, r + 1) of its parity, decided as on the
// GPU (kernels/sampling/tempering_swap.cuh).
#pragma once

#include <cstdint>
#include <vector>

#include "cuebm/models/energy.hpp"
#include "host/sampling/mala_step.hpp"

namespace cuebm::detail {

// R temperatures geometric from t_min to t_max (R >= 2).
std::vector<double> geometric_ladder(double t_min, double t_max, int R);

// Row c of x (n_chains x dim) into rows c * R + r of replicas, for every r.
void replicate_chains(const float* x, int64_t n_chains, int R, int dim, float* replicas);

class TemperingChains {
 public:
  TemperingChains(int64_t max_chains, int n_replicas, int dim);

  // Every replica of chain c starts at row c of x (n_chains x dim); evaluates them and clears the
  // counts. Check energies() for non-finite starts.
  void start(const Energy& energy, const float* x, int64_t n_chains);
  // As start, from one state per replica: rows c * R + r of replicas (n_chains * R x dim).
  void start_replicas(const Energy& energy, const float* replicas, int64_t n_chains);
  // n_steps steps on the ladder temps (R values) with MALA step size eta.
  void run(const Energy& energy, const std::vector<double>& temps, float eta, int n_steps,
           int swap_every, uint64_t seed, uint64_t first_chain, uint64_t step_offset);
  // The T_0 replica of every chain (n_chains x dim) into out.
  void coldest(float* out) const;

  int64_t chains() const { return n_chains_; }
  int replicas() const { return R_; }
  const std::vector<double>& energies() const { return b_.e; }  // rows c * R + r
  // Since start(): accepted MALA moves per temperature (R), accepted and tried swaps per pair.
  const std::vector<int64_t>& moves() const { return moves_; }
  const std::vector<int64_t>& swaps() const { return swaps_; }
  const std::vector<int64_t>& tried() const { return tried_; }

 private:
  void evaluate_start(const Energy& energy, int64_t n_chains);

  int R_;
  int64_t n_chains_ = 0;
  MalaBatch b_;
  std::vector<float> e_, coef_;
  std::vector<int64_t> moves_, swaps_, tried_;
};

}  // namespace cuebm::detail
