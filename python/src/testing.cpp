// cuebm._cuebm.testing: hooks for the tests and the overhead benchmark. They call the C++ API
// directly, without the binding layer's conversions and chunking, so the tests can compare the
// bindings' results with the C++ results bit for bit, and time a call inside C++.
#include <nanobind/stl/string.h>

#include <chrono>

#include "arrays.hpp"
#include "bindings.hpp"
#include "cuebm/models/mlp.hpp"
#include "cuebm/runtime/error.hpp"
#include "cuebm/sampling/langevin.hpp"
#include "cuebm/sampling/mcmc.hpp"
#include "cuebm/training/score_matching.hpp"
#include "options.hpp"

namespace cuebm::python {
namespace {

using Clock = std::chrono::steady_clock;

std::vector<float> random_rows(int64_t n, int dim, uint64_t seed) {
  std::vector<float> x(static_cast<std::size_t>(n) * dim);
  gaussian_initial_state(x.data(), n, dim, seed);
  return x;
}

}  // namespace

void bind_testing(nb::module_& root) {
  nb::module_ m = root.def_submodule("testing", "Hooks for tests and benchmarks.");
  m.def(
      "input_address",
      [](const AnyArray& x) {
        const FloatArray a(x, "x");
        return nb::make_tuple(reinterpret_cast<uintptr_t>(a.data()), a.borrowed());
      },
      nb::arg("x"), "(address read, borrowed) for an input array: borrowed means no copy.");
  m.def(
      "energy_reference",
      [](const Energy& energy, int64_t n, uint64_t seed) {
        const int d = energy.dim();
        std::vector<float> x = random_rows(n, d, seed), e(n), grad(n * d), e2(n);
        energy.energy(x.data(), n, e.data());
        energy.gradient(x.data(), n, grad.data(), e2.data());
        const auto rows = static_cast<std::size_t>(n), dim = static_cast<std::size_t>(d);
        return nb::make_tuple(to_numpy(std::move(x), {rows, dim}), to_numpy(std::move(e), {rows}),
                              to_numpy(std::move(grad), {rows, dim}));
      },
      nb::arg("energy"), nb::arg("n"), nb::arg("seed"),
      "(x, E(x), dE/dx) computed in C++ on N(0, I) rows keyed by seed.");
  m.def(
      "parameter_gradient_reference",
      [](const Mlp& model, int64_t n, uint64_t seed) {
        std::vector<float> x = random_rows(n, model.dim(), seed);
        std::vector<float> coeff = random_rows(n, 1, seed + 1);
        std::vector<float> grad(model.num_parameters());
        model.parameter_gradient(x.data(), n, coeff.data(), grad.data());
        const auto rows = static_cast<std::size_t>(n);
        return nb::make_tuple(to_numpy(std::move(x), {rows, static_cast<std::size_t>(model.dim())}),
                              to_numpy(std::move(coeff), {rows}),
                              to_numpy(std::move(grad), {model.num_parameters()}));
      },
      nb::arg("model"), nb::arg("n"), nb::arg("seed"), "(x, coeff, gradient) computed in C++.");
  m.def(
      "score_loss_reference",
      [](const Mlp& model, int64_t n, uint64_t seed, const std::string& kind,
         const std::string& hessian_method, int n_projections, const std::string& projection_type,
         float noise_scale, const std::string& denoising_sign, float regularization_strength,
         uint64_t loss_seed, uint64_t iteration) {
        const ScoreLossOptions o = score_loss_options(
            hessian_method, n_projections, projection_type, noise_scale, denoising_sign,
            regularization_strength, parse_score_loss_kind(kind), loss_seed);
        std::vector<float> x = random_rows(n, model.dim(), seed), grad(model.num_parameters());
        ScoreLoss loss(model.spec(), o, n);
        const double value = loss.evaluate(model, x.data(), n, iteration, grad.data());
        const auto rows = static_cast<std::size_t>(n);
        return nb::make_tuple(to_numpy(std::move(x), {rows, static_cast<std::size_t>(model.dim())}),
                              value, to_numpy(std::move(grad), {model.num_parameters()}));
      },
      nb::arg("model"), nb::arg("n"), nb::arg("seed"), nb::arg("kind"),
      nb::arg("hessian_method") = "exact", nb::arg("n_projections") = 5,
      nb::arg("projection_type") = "rademacher", nb::arg("noise_scale") = 0.01f,
      nb::arg("denoising_sign") = "correct", nb::arg("regularization_strength") = 0.0f,
      nb::arg("loss_seed") = 0, nb::arg("iteration") = 0,
      "(x, loss, gradient) of one cuebm::ScoreLoss on N(0, I) rows keyed by seed, in C++.");
  m.def(
      "langevin_reference",
      [](const Energy& energy, int64_t n_chains, int n_steps, float step_size, float noise_scale,
         uint64_t seed, int thin, bool diagnostics) {
        LangevinOptions o;
        o.step_size = step_size;
        o.noise_scale = noise_scale;
        o.n_steps = n_steps;
        o.seed = seed;
        o.thin = thin;
        o.diagnostics = diagnostics;
        LangevinResult r = langevin_sample(energy, nullptr, n_chains, o);
        const auto n = static_cast<std::size_t>(n_chains), d = static_cast<std::size_t>(r.dim);
        nb::dict out;
        out["samples"] = to_numpy(std::move(r.samples), {n, d});
        out["trajectory"] =
            to_numpy(std::move(r.trajectory), {static_cast<std::size_t>(r.n_kept), n, d});
        const auto steps = static_cast<std::size_t>(diagnostics ? n_steps : 0);
        out["mean"] = to_numpy(std::move(r.diag_mean), {steps, d});
        out["variance"] = to_numpy(std::move(r.diag_variance), {steps, d});
        out["mean_energy"] = to_numpy(std::move(r.diag_mean_energy), {steps});
        out["temperature"] = r.temperature;
        return out;
      },
      nb::arg("energy"), nb::arg("n_chains"), nb::arg("n_steps"), nb::arg("step_size"),
      nb::arg("noise_scale"), nb::arg("seed"), nb::arg("thin") = 0, nb::arg("diagnostics") = false,
      "One langevin_sample call from N(0, I), in C++ (no chunks).");
  m.def(
      "mcmc_reference",
      [](const Energy& energy, const std::string& sampler, int64_t n_chains, int n_steps,
         float step_size, float noise_scale, int n_leapfrog, uint64_t seed, uint64_t step_offset,
         bool diagnostics) {
        McmcResult r;
        if (sampler == "mala") {
          MalaOptions o;
          o.step_size = step_size;
          o.noise_scale = noise_scale;
          o.n_steps = n_steps;
          o.seed = seed;
          o.step_offset = step_offset;
          o.diagnostics = diagnostics;
          r = mala_sample(energy, nullptr, n_chains, o);
        } else if (sampler == "hmc") {
          HmcOptions o;
          o.step_size = step_size;
          o.n_leapfrog = n_leapfrog;
          o.n_steps = n_steps;
          o.seed = seed;
          o.step_offset = step_offset;
          o.diagnostics = diagnostics;
          r = hmc_sample(energy, nullptr, n_chains, o);
        } else {
          throw InvalidArgument("mcmc_reference: sampler must be mala or hmc, got " + sampler);
        }
        return mcmc_result(std::move(r), n_steps, diagnostics);
      },
      nb::arg("energy"), nb::arg("sampler"), nb::arg("n_chains"), nb::arg("n_steps"),
      nb::arg("step_size"), nb::arg("noise_scale") = 1.0f, nb::arg("n_leapfrog") = 10,
      nb::arg("seed") = 0, nb::arg("step_offset") = 0, nb::arg("diagnostics") = false,
      "One mala_sample or hmc_sample call (sampler 'mala' or 'hmc') from N(0, I), in C++ (no "
      "chunks); returns mala_sample's dict.");
  m.def(
      "time_energy",
      [](const Energy& energy, const AnyArray& x, int reps) {
        const FloatArray rows = as_rows(x, "x", energy.dim());
        std::vector<float> e(static_cast<std::size_t>(rows.shape(0)));
        nb::gil_scoped_release unlocked;
        energy.energy(rows.data(), rows.shape(0), e.data());  // warm-up
        const auto t0 = Clock::now();
        for (int i = 0; i < reps; ++i) energy.energy(rows.data(), rows.shape(0), e.data());
        return std::chrono::duration<double>(Clock::now() - t0).count() / reps;
      },
      nb::arg("energy"), nb::arg("x"), nb::arg("reps"),
      "Seconds per Energy::energy call on x, timed in C++.");
  m.def(
      "time_langevin",
      [](const Energy& energy, const AnyArray& x, int n_steps, int reps) {
        const FloatArray rows = as_rows(x, "x", energy.dim());
        LangevinOptions o;
        o.step_size = 0.1f;
        o.noise_scale = 0.1f;
        o.n_steps = n_steps;
        nb::gil_scoped_release unlocked;
        langevin_sample(energy, rows.data(), rows.shape(0), o);  // warm-up
        const auto t0 = Clock::now();
        for (int i = 0; i < reps; ++i) langevin_sample(energy, rows.data(), rows.shape(0), o);
        return std::chrono::duration<double>(Clock::now() - t0).count() / reps;
      },
      nb::arg("energy"), nb::arg("x"), nb::arg("n_steps"), nb::arg("reps"),
      "Seconds per langevin_sample call (step 0.1, noise 0.1) from x, timed in C++.");
  m.def(
      "throw_error",
      [](const std::string& kind, const std::string& message) {
        if (kind == "invalid_argument") throw InvalidArgument(message);
        if (kind == "numerical") throw NumericalError(message);
        if (kind == "cuda") throw CudaError(message);
        if (kind == "io") throw IoError(message);
        throw Error(message);
      },
      nb::arg("kind"), nb::arg("message"), "Throws the named cuEBM C++ exception.");
  bind_testing_cuda(m);
}

}  // namespace cuebm::python
