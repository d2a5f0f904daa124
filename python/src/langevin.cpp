// Unadjusted Langevin sampling. A long run is split into chunks of steps continued exactly
// (noise keyed by (seed, chain, step_offset + t), rng.md), with the GIL released during each
// chunk and Ctrl-C checked between them; the result equals one uninterrupted call bit for bit.
#include <nanobind/stl/optional.h>
#include <nanobind/stl/string.h>

#include <algorithm>
#include <optional>

#include "arrays.hpp"
#include "bindings.hpp"
#include "chunking.hpp"
#include "cuebm/runtime/error.hpp"
#include "cuebm/sampling/langevin.hpp"
#include "interrupt.hpp"

namespace cuebm::python {
namespace {

template <class T>
void append(std::vector<T>& to, const std::vector<T>& from) {
  to.insert(to.end(), from.begin(), from.end());
}

}  // namespace

nb::dict langevin_sample_py(const Energy& energy, std::optional<AnyArray> x0, int64_t n_chains,
                            const Schedule& step_size, const Schedule& noise_scale, int n_steps,
                            uint64_t seed, uint64_t step_offset, uint64_t first_chain,
                            std::optional<float> clamp_min, std::optional<float> clamp_max,
                            int thin, bool diagnostics, const std::string& device,
                            int chunk_steps) {
  const StartRows start(x0, energy.dim(), n_chains);
  n_chains = start.n_chains();
  LangevinOptions options{.step_size = step_size,
                          .noise_scale = noise_scale,
                          .n_steps = n_steps,
                          .seed = seed,
                          .first_chain = first_chain,
                          .clamp_min = clamp_min,
                          .clamp_max = clamp_max,
                          .thin = thin,
                          .diagnostics = diagnostics};
  const Device where = parse_device(device);
  if (n_steps < 0) throw InvalidArgument("n_steps must be >= 0, got " + std::to_string(n_steps));

  int chunk = chunk_length(chunk_steps, auto_chunk_steps(energy, n_chains),
                           is_constant(step_size) && is_constant(noise_scale), n_steps);
  if (thin > 0) chunk = std::max(thin, chunk / thin * thin);  // keep thinning aligned
  chunk = std::max(1, std::min(chunk, std::max(n_steps, 1)));

  LangevinResult total;
  std::vector<float> current;
  const float* from = start.data();
  int done = 0;
  do {
    options.n_steps = std::min(chunk, n_steps - done);
    options.step_offset = step_offset + static_cast<uint64_t>(done);
    LangevinResult part =
        without_gil([&] { return langevin_sample(energy, from, n_chains, options, where); });
    done += options.n_steps;
    append(total.trajectory, part.trajectory);
    total.n_kept += part.n_kept;
    append(total.diag_mean, part.diag_mean);
    append(total.diag_variance, part.diag_variance);
    append(total.diag_mean_energy, part.diag_mean_energy);
    total.temperature = part.temperature;
    current = std::move(part.samples);
    from = current.data();
    if (done < n_steps) raise_pending_signals();
  } while (done < n_steps);

  const auto n = static_cast<std::size_t>(n_chains), d = static_cast<std::size_t>(energy.dim());
  nb::dict out;
  out["samples"] = to_numpy(std::move(current), {n, d});
  out["temperature"] = total.temperature;
  if (thin > 0)
    out["trajectory"] =
        to_numpy(std::move(total.trajectory), {static_cast<std::size_t>(total.n_kept), n, d});
  if (diagnostics) {
    const auto steps = static_cast<std::size_t>(n_steps);
    out["mean"] = to_numpy(std::move(total.diag_mean), {steps, d});
    out["variance"] = to_numpy(std::move(total.diag_variance), {steps, d});
    out["mean_energy"] = to_numpy(std::move(total.diag_mean_energy), {steps});
  }
  raise_pending_signals();
  return out;
}

void bind_langevin(nb::module_& m) {
  m.def("langevin_sample", &langevin_sample_py, nb::arg("energy"), nb::arg("x0").none(),
        nb::arg("n_chains"), nb::arg("step_size") = Schedule(1e-3f),
        nb::arg("noise_scale") = Schedule(1.0f), nb::arg("n_steps") = 100, nb::arg("seed") = 0,
        nb::arg("step_offset") = 0, nb::arg("first_chain") = 0,
        nb::arg("clamp_min").none() = nb::none(), nb::arg("clamp_max").none() = nb::none(),
        nb::arg("thin") = 0, nb::arg("diagnostics") = false, nb::arg("device") = "cpu",
        nb::arg("chunk_steps") = 0,
        "Runs Langevin chains x <- x - eta dE/dx + sqrt(2 eta) sigma eps from x0 (n, dim) or "
        "N(0, I) (x0 None: n_chains chains). Returns a dict: samples (n, dim), temperature, "
        "trajectory (n_kept, n, dim) when thin > 0, and mean/variance (n_steps, dim) and "
        "mean_energy (n_steps,) with diagnostics. Ctrl-C is checked every chunk_steps steps "
        "(0: about every 50 ms; schedules that change run in one piece).");
  m.def(
      "gaussian_initial_state",
      [](int64_t n, int dim, uint64_t seed, uint64_t first_chain) {
        if (n < 0 || dim < 1)
          throw InvalidArgument("gaussian_initial_state needs n >= 0 and dim >= 1, got n = " +
                                std::to_string(n) + ", dim = " + std::to_string(dim));
        std::vector<float> x(static_cast<std::size_t>(n) * dim);
        gaussian_initial_state(x.data(), n, dim, seed, first_chain);
        return to_numpy(std::move(x), {static_cast<std::size_t>(n), static_cast<std::size_t>(dim)});
      },
      nb::arg("n"), nb::arg("dim"), nb::arg("seed") = 0, nb::arg("first_chain") = 0,
      "N(0, I) rows keyed by (seed, chain): Langevin's default start.");
}

}  // namespace cuebm::python
