// Judging a trained 2-D model: grid log Z, test NLL, mixture entropy, MMD^2, mode coverage.
#include <nanobind/stl/tuple.h>
#include <nanobind/stl/vector.h>

#include <tuple>

#include "arrays.hpp"
#include "bindings.hpp"
#include "cuebm/data/metrics.hpp"
#include "cuebm/models/energy.hpp"

namespace cuebm::python {
namespace {

using GridTuple = std::tuple<double, double, double, double, int, int>;

Grid2D grid_of(const GridTuple& g) {
  return {std::get<0>(g), std::get<1>(g), std::get<2>(g),
          std::get<3>(g), std::get<4>(g), std::get<5>(g)};
}

BatchEnergyFn energy_fn(const Energy& energy) {
  return [&energy](const float* xy, int64_t n, float* e) { energy.energy(xy, n, e); };
}

const GridTuple kDefaultGrid{-2.5, 2.5, -2.5, 2.5, 100, 100};

}  // namespace

void bind_metrics(nb::module_& m) {
  m.def(
      "grid_points",
      [](const GridTuple& grid) {
        std::vector<float> p = grid_points(grid_of(grid));
        const std::size_t n = p.size() / 2;
        return to_numpy(std::move(p), {n, std::size_t{2}});
      },
      nb::arg("grid") = kDefaultGrid,
      "The grid (xmin, xmax, ymin, ymax, nx, ny) as (nx * ny, 2) points, x fastest.");
  m.def(
      "grid_log_partition",
      [](const Energy& energy, double temperature, const GridTuple& grid) {
        nb::gil_scoped_release unlocked;
        return grid_log_partition(energy_fn(energy), grid_of(grid), temperature);
      },
      nb::arg("energy"), nb::arg("temperature"), nb::arg("grid") = kDefaultGrid,
      "log Z of exp(-E / T) by a Riemann sum on the grid (2-D energies).");
  m.def(
      "test_nll",
      [](const Energy& energy, const AnyArray& x_test, double temperature, const GridTuple& grid) {
        const FloatArray x = as_rows(x_test, "x_test", 2);
        nb::gil_scoped_release unlocked;
        return test_nll(energy_fn(energy), x.data(), x.shape(0), grid_of(grid), temperature);
      },
      nb::arg("energy"), nb::arg("x_test"), nb::arg("temperature"), nb::arg("grid") = kDefaultGrid,
      "Test negative log-likelihood in nats per point: mean E(x) / T + log Z (grid).");
  m.def("mixture_entropy_2d", &mixture_entropy_2d, nb::arg("components"), nb::arg("std"),
        "log K + log(2 pi e std^2) for a well-separated isotropic 2-D mixture.");
  m.def(
      "mmd2_rbf",
      [](const AnyArray& a, const AnyArray& b) {
        const FloatArray x = as_rows(a, "a", 0);
        const FloatArray y = as_rows(b, "b", static_cast<int>(x.shape(1)));
        nb::gil_scoped_release unlocked;
        return mmd2_rbf(x.data(), x.shape(0), y.data(), y.shape(0), static_cast<int>(x.shape(1)));
      },
      nb::arg("a"), nb::arg("b"), "Unbiased MMD^2 with an RBF kernel, median-heuristic bandwidth.");
  m.def(
      "mode_report",
      [](const AnyArray& samples, const AnyArray& centres, double std, double radius_stds,
         int64_t min_count) {
        const FloatArray s = as_rows(samples, "samples", 2);
        const FloatArray c = as_rows(centres, "centres", 2);
        const ModeReport r = mode_report(s.data(), s.shape(0), c.data(),
                                         static_cast<int>(c.shape(0)), std, radius_stds, min_count);
        nb::dict out;
        out["covered"] = r.covered;
        out["total"] = r.total;
        out["share_near_mode"] = r.share_near_mode;
        out["weights"] = r.weights;
        out["counts"] = r.counts;
        out["min_count"] = r.min_count;
        return out;
      },
      nb::arg("samples"), nb::arg("centres"), nb::arg("std"), nb::arg("radius_stds") = 3.0,
      nb::arg("min_count") = 0,
      "Mode coverage of 2-D samples against mixture centres (covered, total, share_near_mode, "
      "weights, counts, min_count).");
}

}  // namespace cuebm::python
