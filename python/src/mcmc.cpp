// The exact samplers (MALA, HMC), parallel tempering and AIS, with the GIL released. A long MALA
// or HMC run is split into chunks of steps continued exactly (the state carries over and the
// noise is keyed by (seed, chain, step_offset + t), mcmc.hpp), with Ctrl-C checked between
// them; the counts of accepted proposals and the energy trace are gathered over the chunks, so
// the result equals one uninterrupted call bit for bit. Parallel tempering and AIS run in one
// call (a Ctrl-C pressed meanwhile is raised when it returns): TemperingOptions has no step
// offset and its result keeps only the T_0 replicas (the hot replicas' states and the swap
// stream's position are lost, so a second call cannot continue the first), and AIS returns
// only the final log weights, not the chains' states part-way along the temperature path.
#include <nanobind/stl/optional.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include <cmath>
#include <optional>

#include "arrays.hpp"
#include "bindings.hpp"
#include "chunking.hpp"
#include "cuebm/sampling/ais.hpp"
#include "cuebm/sampling/diagnostics.hpp"
#include "cuebm/sampling/mcmc.hpp"
#include "cuebm/sampling/tempering.hpp"
#include "interrupt.hpp"

namespace cuebm::python {
namespace {

std::size_t to_size(int64_t n) { return static_cast<std::size_t>(n); }

}  // namespace

nb::dict mcmc_result(McmcResult&& r, int n_steps, bool diagnostics) {
  const std::size_t n = to_size(r.n_chains), d = to_size(r.dim);
  nb::dict out;
  out["samples"] = to_numpy(std::move(r.samples), {n, d});
  out["energy"] = to_numpy(std::move(r.energy), {n});
  out["acceptance"] = to_numpy(std::move(r.acceptance), {n});
  out["mean_acceptance"] = r.mean_acceptance;
  out["temperature"] = r.temperature;
  if (diagnostics) {
    out["energy_trace"] = to_numpy(std::move(r.energy_trace), {to_size(n_steps), n});
    out["energy_rhat"] = r.energy_rhat;
    out["energy_ess"] = r.energy_ess;
  }
  return out;
}

namespace {

// The accepted proposals of each chain in a result of n_steps steps: acceptance is
// float(accepted) / n_steps, correctly rounded, so the nearest integer recovers the count.
void add_accepted(std::vector<int64_t>& accepted, const McmcResult& r, int n_steps) {
  for (std::size_t c = 0; c < accepted.size(); ++c)
    accepted[c] += std::llround(static_cast<double>(r.acceptance[c]) * n_steps);
}

// acceptance, mean_acceptance and the diagnostics of n_steps steps as the C++ sampler computes
// them (host/sampling/mcmc.cpp: finish_acceptance, finish_diagnostics), from the gathered
// counts and energy trace.
void finish_gathered(McmcResult& r, const std::vector<int64_t>& accepted, int n_steps) {
  int64_t total = 0;
  for (std::size_t c = 0; c < accepted.size(); ++c) {
    r.acceptance[c] = static_cast<float>(accepted[c]) / n_steps;
    total += accepted[c];
  }
  r.mean_acceptance =
      static_cast<double>(total) / (static_cast<double>(n_steps) * static_cast<double>(r.n_chains));
  r.energy_rhat = r.energy_ess = NAN;
  if (r.energy_trace.empty() || n_steps < 4) return;
  std::vector<double> draws(r.energy_trace.size());
  for (int t = 0; t < n_steps; ++t)
    for (int64_t c = 0; c < r.n_chains; ++c)
      draws[c * n_steps + t] = r.energy_trace[static_cast<int64_t>(t) * r.n_chains + c];
  r.energy_rhat = split_rhat(draws, r.n_chains, n_steps);
  r.energy_ess = ess_bulk(draws, r.n_chains, n_steps);
}

// A MALA or HMC run from x0 (None: n_chains chains from N(0, I)) in chunks of chunk_steps steps
// (0: automatic, for `gradients_per_step` gradients a step; `splittable` false: one chunk),
// each with the GIL released.
template <class Options>
nb::dict run_mcmc(McmcResult (*sample)(const Energy&, const float*, int64_t, const Options&,
                                       Device),
                  const Energy& energy, const std::optional<AnyArray>& x0, int64_t n_chains,
                  Options options, const std::string& device, int chunk_steps,
                  int gradients_per_step, bool splittable) {
  const StartRows start(x0, energy.dim(), n_chains);
  n_chains = start.n_chains();
  const Device where = parse_device(device);
  const int n_steps = options.n_steps;
  const uint64_t step_offset = options.step_offset;
  const int chunk = chunk_length(
      chunk_steps, auto_chunk_steps(energy, n_chains, gradients_per_step), splittable, n_steps);
  if (n_steps <= chunk) {  // one call (also where the C++ sampler rejects n_steps)
    McmcResult r =
        interruptible([&] { return sample(energy, start.data(), n_chains, options, where); });
    return mcmc_result(std::move(r), n_steps, options.diagnostics);
  }
  McmcResult last;
  std::vector<int64_t> accepted(static_cast<std::size_t>(n_chains), 0);
  std::vector<float> trace;
  const float* from = start.data();
  for (int done = 0; done < n_steps; done += options.n_steps) {
    if (done > 0) raise_pending_signals();
    options.n_steps = std::min(chunk, n_steps - done);
    options.step_offset = step_offset + static_cast<uint64_t>(done);
    McmcResult part = without_gil([&] { return sample(energy, from, n_chains, options, where); });
    add_accepted(accepted, part, options.n_steps);
    trace.insert(trace.end(), part.energy_trace.begin(), part.energy_trace.end());
    last = std::move(part);
    from = last.samples.data();
  }
  last.energy_trace = std::move(trace);
  finish_gathered(last, accepted, n_steps);
  raise_pending_signals();
  return mcmc_result(std::move(last), n_steps, options.diagnostics);
}

}  // namespace

void bind_mcmc(nb::module_& m) {
  m.def(
      "mala_sample",
      [](const Energy& energy, std::optional<AnyArray> x0, int64_t n_chains,
         const Schedule& step_size, const Schedule& noise_scale, int n_steps, uint64_t seed,
         uint64_t step_offset, uint64_t first_chain, bool diagnostics, const std::string& device,
         int chunk_steps) {
        const MalaOptions o{.step_size = step_size,
                            .noise_scale = noise_scale,
                            .n_steps = n_steps,
                            .seed = seed,
                            .step_offset = step_offset,
                            .first_chain = first_chain,
                            .diagnostics = diagnostics};
        return run_mcmc(&mala_sample, energy, x0, n_chains, o, device, chunk_steps, 1,
                        is_constant(step_size) && is_constant(noise_scale));
      },
      nb::arg("energy"), nb::arg("x0").none(), nb::arg("n_chains"),
      nb::arg("step_size") = Schedule(1e-2f), nb::arg("noise_scale") = Schedule(1.0f),
      nb::arg("n_steps") = 100, nb::arg("seed") = 0, nb::arg("step_offset") = 0,
      nb::arg("first_chain") = 0, nb::arg("diagnostics") = false, nb::arg("device") = "cpu",
      nb::arg("chunk_steps") = 0,
      "Metropolis-adjusted Langevin for exp(-E / sigma^2). Returns a dict: samples, energy, "
      "acceptance (per chain), mean_acceptance, temperature (+ energy_trace (n_steps, n), "
      "energy_rhat, energy_ess with diagnostics). Ctrl-C is checked every chunk_steps steps "
      "(0: about every 50 ms; schedules that change run in one piece).");

  m.def(
      "hmc_sample",
      [](const Energy& energy, std::optional<AnyArray> x0, int64_t n_chains,
         const Schedule& step_size, int n_leapfrog, std::vector<float> mass, int n_steps,
         uint64_t seed, uint64_t step_offset, uint64_t first_chain, bool diagnostics,
         const std::string& device, int chunk_steps) {
        const HmcOptions o{.step_size = step_size,
                           .n_leapfrog = n_leapfrog,
                           .mass = std::move(mass),
                           .n_steps = n_steps,
                           .seed = seed,
                           .step_offset = step_offset,
                           .first_chain = first_chain,
                           .diagnostics = diagnostics};
        return run_mcmc(&hmc_sample, energy, x0, n_chains, o, device, chunk_steps, n_leapfrog,
                        is_constant(step_size));
      },
      nb::arg("energy"), nb::arg("x0").none(), nb::arg("n_chains"),
      nb::arg("step_size") = Schedule(1e-3f), nb::arg("n_leapfrog") = 10,
      nb::arg("mass") = std::vector<float>{}, nb::arg("n_steps") = 100, nb::arg("seed") = 0,
      nb::arg("step_offset") = 0, nb::arg("first_chain") = 0, nb::arg("diagnostics") = false,
      nb::arg("device") = "cpu", nb::arg("chunk_steps") = 0,
      "Hamiltonian Monte Carlo for exp(-E); mass: [] identity, [m] scalar or D values. Returns "
      "the dict of mala_sample; Ctrl-C is checked as there.");

  m.def(
      "parallel_tempering",
      [](const Energy& energy, std::optional<AnyArray> x0, int64_t n_chains,
         std::vector<double> temperatures, int n_replicas, double t_min, double t_max,
         float step_size, int n_steps, int swap_every, uint64_t seed, uint64_t first_chain,
         const std::string& device) {
        const StartRows start(x0, energy.dim(), n_chains);
        const TemperingOptions o{.temperatures = std::move(temperatures),
                                 .n_replicas = n_replicas,
                                 .t_min = t_min,
                                 .t_max = t_max,
                                 .step_size = step_size,
                                 .n_steps = n_steps,
                                 .swap_every = swap_every,
                                 .seed = seed,
                                 .first_chain = first_chain};
        const Device where = parse_device(device);
        TemperingResult r = interruptible(
            [&] { return parallel_tempering(energy, start.data(), start.n_chains(), o, where); });
        const std::size_t n = to_size(r.n_chains), d = to_size(r.dim);
        nb::dict out;
        out["samples"] = to_numpy(std::move(r.samples), {n, d});
        out["energy"] = to_numpy(std::move(r.energy), {n});
        const std::size_t t = r.temperatures.size(), s = r.swap_acceptance.size(),
                          mv = r.move_acceptance.size();
        out["temperatures"] = to_numpy(std::move(r.temperatures), {t});
        out["swap_acceptance"] = to_numpy(std::move(r.swap_acceptance), {s});
        out["move_acceptance"] = to_numpy(std::move(r.move_acceptance), {mv});
        return out;
      },
      nb::arg("energy"), nb::arg("x0").none(), nb::arg("n_chains"),
      nb::arg("temperatures") = std::vector<double>{}, nb::arg("n_replicas") = 8,
      nb::arg("t_min") = 1.0, nb::arg("t_max") = 10.0, nb::arg("step_size") = 0.01f,
      nb::arg("n_steps") = 1000, nb::arg("swap_every") = 1, nb::arg("seed") = 0,
      nb::arg("first_chain") = 0, nb::arg("device") = "cpu",
      "Replica-exchange MALA on a temperature ladder; returns the T_0 replicas (samples, "
      "energy), the ladder and the swap and move acceptance rates.");

  m.def(
      "ais_log_partition",
      [](const Energy& energy, int64_t n_chains, int n_temperatures, int mcmc_steps,
         float step_size, double temperature, uint64_t seed, const std::string& device) {
        const AisOptions o{.n_chains = n_chains,
                           .n_temperatures = n_temperatures,
                           .mcmc_steps = mcmc_steps,
                           .step_size = step_size,
                           .temperature = temperature,
                           .seed = seed};
        const Device where = parse_device(device);
        AisResult r = interruptible([&] { return ais_log_partition(energy, o, where); });
        nb::dict out;
        out["log_z"] = r.log_z;
        out["std_error"] = r.std_error;
        out["ess"] = r.ess;
        out["acceptance"] = r.acceptance;
        const std::size_t n = r.log_weights.size();
        out["log_weights"] = to_numpy(std::move(r.log_weights), {n});
        return out;
      },
      nb::arg("energy"), nb::arg("n_chains") = 1000, nb::arg("n_temperatures") = 1000,
      nb::arg("mcmc_steps") = 1, nb::arg("step_size") = 0.05f, nb::arg("temperature") = 1.0,
      nb::arg("seed") = 0, nb::arg("device") = "cpu",
      "log Z of exp(-E / T) by annealed importance sampling: log_z, std_error, ess, acceptance, "
      "log_weights.");
}

}  // namespace cuebm::python
