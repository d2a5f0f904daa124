#include "cuebm/sampling/langevin.hpp"

#include <cmath>

#include "cuebm/runtime/error.hpp"
#include "host/runtime/random.hpp"
#include "host/sampling/chain_runner.hpp"
#include "host/sampling/langevin_options.hpp"
#include "host/sampling/noise_block.hpp"
#include "kernels/sampling/langevin.cuh"
#if CUEBM_HAVE_CUDA
#include "host/models/cuda_models.hpp"
#include "host/runtime/cuda_device.hpp"
#include "host/sampling/cuda_langevin.hpp"
#endif

namespace cuebm {
namespace detail {

void validate_langevin_options(const LangevinOptions& o, const char* who) {
  const std::string w(who);
  if (o.n_steps < 0)
    throw InvalidArgument(w + ": n_steps must be >= 0, got " + std::to_string(o.n_steps));
  if (o.thin < 0) throw InvalidArgument(w + ": thin must be >= 0, got " + std::to_string(o.thin));
  if (o.clamp_min && o.clamp_max && !(*o.clamp_min <= *o.clamp_max))
    throw InvalidArgument(w + ": clamp_min " + std::to_string(*o.clamp_min) +
                          " is greater than clamp_max " + std::to_string(*o.clamp_max));
  if ((o.clamp_min && std::isnan(*o.clamp_min)) || (o.clamp_max && std::isnan(*o.clamp_max)))
    throw InvalidArgument(w + ": clamp bounds must not be NaN");
  // Evaluates both schedules at step 0 so a bad constant is caught even for n_steps == 0.
  o.step_size.values(std::max(o.n_steps, 1), (w + ": step_size").c_str());
  o.noise_scale.values(std::max(o.n_steps, 1), (w + ": noise_scale").c_str());
}

StepArrays make_step_arrays(const LangevinOptions& o, int n_steps) {
  StepArrays a;
  a.eta = o.step_size.values(n_steps, "step_size");
  const std::vector<float> sigma = o.noise_scale.values(n_steps, "noise_scale");
  a.noise_coef.resize(n_steps);
  for (int t = 0; t < n_steps; ++t) a.noise_coef[t] = std::sqrt(2.0f * a.eta[t]) * sigma[t];
  a.last_sigma = n_steps > 0 ? sigma.back() : o.noise_scale.value(0);
  return a;
}

void require_finite_rows(const float* x, int64_t n, int dim, const char* what) {
  for (int64_t i = 0; i < n * dim; ++i)
    if (!std::isfinite(x[i]))
      throw InvalidArgument(std::string(what) + ": row " + std::to_string(i / dim) +
                            " is not finite (value " + std::to_string(x[i]) + " in column " +
                            std::to_string(i % dim) + ")");
}

}  // namespace detail

float langevin_noise(uint64_t seed, uint64_t chain, uint64_t step, int dim, int coordinate) {
  if (dim < 1 || coordinate < 0 || coordinate >= dim)
    throw InvalidArgument("langevin_noise: coordinate " + std::to_string(coordinate) +
                          " is outside dimension " + std::to_string(dim));
  // The sampler's own (vectorised) generator, one lane: the same bits, not just the same law.
  std::vector<float> eps(static_cast<std::size_t>(dim) * kRowBlock);
  detail::langevin_noise_block(seed, chain, step, dim, 1, eps.data());
  return eps[static_cast<std::size_t>(coordinate) * kRowBlock];
}

void gaussian_initial_state(float* x, int64_t n, int dim, uint64_t seed, uint64_t first_chain) {
  for (int64_t i = 0; i < n; ++i) {
    RandomStream rng(seed, StreamTag::kInitNoise, first_chain + i);
    for (int d = 0; d < dim; ++d) x[i * dim + d] = rng.normal();
  }
}

LangevinResult langevin_sample(const Energy& energy, const float* x0, int64_t n_chains,
                               const LangevinOptions& options, Device device) {
  check_device(device);
#if !CUEBM_HAVE_CUDA
  if (device.is_cuda())
    throw InvalidArgument("langevin_sample: the CUDA backend is not available in this build");
#endif
  detail::validate_langevin_options(options, "langevin_sample");
  if (n_chains < 1)
    throw InvalidArgument("langevin_sample: n_chains must be >= 1, got " +
                          std::to_string(n_chains));
  const int dim = energy.dim();
  LangevinResult res;
  res.n_chains = n_chains;
  res.dim = dim;
  res.samples.resize(n_chains * dim);
  if (x0) {
    detail::require_finite_rows(x0, n_chains, dim, "langevin_sample: initial state");
    std::copy(x0, x0 + n_chains * dim, res.samples.begin());
  } else {
    gaussian_initial_state(res.samples.data(), n_chains, dim, options.seed, options.first_chain);
  }
  const detail::StepArrays steps = detail::make_step_arrays(options, options.n_steps);
  res.temperature = steps.last_sigma * steps.last_sigma;
#if CUEBM_HAVE_CUDA
  // res.samples holds the initial state. The device keeps the energy's upload and its buffers
  // between calls (re-uploaded when the energy's parameters change):
  // kernels/sampling/langevin_kernels.cu.
  if (device.is_cuda())
    return detail::langevin_sample_cuda(energy, res.samples.data(), n_chains, options, device.index,
                                        options.noise);
#endif

  detail::ChainPlan plan;
  plan.n_steps = options.n_steps;
  plan.eta = steps.eta.data();
  plan.noise_coef = steps.noise_coef.data();
  plan.seed = options.seed;
  plan.step_offset = options.step_offset;
  plan.first_chain = options.first_chain;
  plan.noise = options.noise;
  plan.clamp = options.clamp_min || options.clamp_max;
  plan.clamp_min = options.clamp_min.value_or(-INFINITY);
  plan.clamp_max = options.clamp_max.value_or(INFINITY);
  if (options.thin > 0) {
    plan.thin = options.thin;
    res.n_kept = options.n_steps / options.thin;
    res.trajectory.resize(static_cast<std::size_t>(res.n_kept) * n_chains * dim);
    plan.trajectory = res.trajectory.data();
  }
  const int stride = detail::diagnostics_stride(dim);
  std::vector<double> block_diag;
  if (options.diagnostics) {
    block_diag.assign(
        static_cast<std::size_t>((n_chains + kRowBlock - 1) / kRowBlock) * options.n_steps * stride,
        0.0);
    plan.diagnostics = block_diag.data();
  }

  const int64_t bad = detail::run_chains_cpu(energy, res.samples.data(), n_chains, plan);
  if (bad >= 0)
    throw NumericalError("langevin_sample: chain " + std::to_string(bad) +
                         " diverged (not finite after " + std::to_string(options.n_steps) +
                         " steps of " + energy.name() + "); reduce step_size");

  if (options.diagnostics) {
    const int64_t blocks = (n_chains + kRowBlock - 1) / kRowBlock;
    res.diag_mean.assign(static_cast<std::size_t>(options.n_steps) * dim, 0.0f);
    res.diag_variance.assign(res.diag_mean.size(), 0.0f);
    res.diag_mean_energy.assign(options.n_steps, 0.0);
    std::vector<double> total(stride);
    const double nd = static_cast<double>(n_chains);
    for (int t = 0; t < options.n_steps; ++t) {
      std::fill(total.begin(), total.end(), 0.0);
      for (int64_t b = 0; b < blocks; ++b)
        for (int k = 0; k < stride; ++k)
          total[k] += block_diag[(b * options.n_steps + t) * stride + k];
      for (int d = 0; d < dim; ++d) {
        const double mean = total[d] / nd;
        res.diag_mean[t * dim + d] = static_cast<float>(mean);
        res.diag_variance[t * dim + d] =
            n_chains > 1 ? static_cast<float>((total[dim + d] - nd * mean * mean) / (nd - 1))
                         : 0.0f;
      }
      res.diag_mean_energy[t] = total[2 * dim] / nd;
    }
  }
  return res;
}

}  // namespace cuebm
