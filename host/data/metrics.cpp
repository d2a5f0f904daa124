// Metrics for judging a trained 2-D model; see include/cuebm/data/metrics.hpp.
#include "cuebm/data/metrics.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numbers>
#include <sstream>
#include <string>

#include "cuebm/runtime/error.hpp"

namespace cuebm {
namespace {

template <typename... Parts>
[[noreturn]] void fail(const Parts&... parts) {
  std::ostringstream os;
  os.precision(10);
  (os << ... << parts);
  throw InvalidArgument(os.str());
}

void check_positive(const char* fn, const char* name, double v) {
  if (!std::isfinite(v) || v <= 0) fail(fn, ": ", name, " must be finite and > 0, got ", v);
}

void check_pointer(const char* fn, const char* name, const void* p) {
  if (p == nullptr) fail(fn, ": ", name, " is null");
}

void check_count(const char* fn, const char* name, int64_t n, int64_t min) {
  if (n < min) fail(fn, ": ", name, " must be >= ", min, ", got ", n);
}

void check_finite(const char* fn, const char* name, const float* v, int64_t rows, int dim) {
  for (int64_t i = 0; i < rows * dim; ++i) {
    if (!std::isfinite(v[i])) {
      fail(fn, ": ", name, " row ", i / dim, " column ", i % dim, " is not finite (", v[i], ")");
    }
  }
}

void check_grid(const char* fn, const Grid2D& g) {
  if (g.nx < 2) fail(fn, ": grid nx must be >= 2, got ", g.nx);
  if (g.ny < 2) fail(fn, ": grid ny must be >= 2, got ", g.ny);
  if (!std::isfinite(g.xmin) || !std::isfinite(g.xmax) || !(g.xmax > g.xmin)) {
    fail(fn, ": grid needs finite xmin < xmax, got xmin = ", g.xmin, ", xmax = ", g.xmax);
  }
  if (!std::isfinite(g.ymin) || !std::isfinite(g.ymax) || !(g.ymax > g.ymin)) {
    fail(fn, ": grid needs finite ymin < ymax, got ymin = ", g.ymin, ", ymax = ", g.ymax);
  }
}

void check_energy_fn(const char* fn, const BatchEnergyFn& energy) {
  if (!energy) fail(fn, ": energy function is empty");
}

// Energies of n points (n x 2), evaluated in chunks of at most kMetricsChunk points.
std::vector<float> evaluate(const BatchEnergyFn& energy, const float* xy, int64_t n) {
  std::vector<float> e(static_cast<size_t>(n));
  for (int64_t start = 0; start < n; start += kMetricsChunk) {
    energy(xy + 2 * start, std::min(kMetricsChunk, n - start), e.data() + start);
  }
  return e;
}

double squared_distance(const float* u, const float* v, int dim) {
  double s = 0;
  for (int d = 0; d < dim; ++d) {
    const double diff = static_cast<double>(u[d]) - static_cast<double>(v[d]);
    s += diff * diff;
  }
  return s;
}

}  // namespace

std::vector<float> grid_points(const Grid2D& grid) {
  check_grid("grid_points", grid);
  const double dx = (grid.xmax - grid.xmin) / (grid.nx - 1);
  const double dy = (grid.ymax - grid.ymin) / (grid.ny - 1);
  std::vector<float> xy(2 * static_cast<size_t>(grid.nx) * static_cast<size_t>(grid.ny));
  for (int j = 0; j < grid.ny; ++j) {
    const double y = j == grid.ny - 1 ? grid.ymax : grid.ymin + j * dy;
    for (int i = 0; i < grid.nx; ++i) {
      const double x = i == grid.nx - 1 ? grid.xmax : grid.xmin + i * dx;
      const size_t p = static_cast<size_t>(j) * grid.nx + i;
      xy[2 * p] = static_cast<float>(x);
      xy[2 * p + 1] = static_cast<float>(y);
    }
  }
  return xy;
}

double grid_log_partition(const float* grid_energies, const Grid2D& grid, double temperature) {
  const char* fn = "grid_log_partition";
  check_pointer(fn, "grid_energies", grid_energies);
  check_grid(fn, grid);
  check_positive(fn, "temperature", temperature);
  const int64_t count = static_cast<int64_t>(grid.nx) * grid.ny;
  // logsumexp of -E / T, shifted by its maximum; +Inf energies contribute 0.
  double max_logit = -std::numeric_limits<double>::infinity();
  for (int64_t p = 0; p < count; ++p) {
    const float e = grid_energies[p];
    if (std::isnan(e) || e == -std::numeric_limits<float>::infinity()) {
      fail(fn, ": energy at grid point ", p, " (i = ", p % grid.nx, ", j = ", p / grid.nx, ") is ",
           e);
    }
    max_logit = std::max(max_logit, -static_cast<double>(e) / temperature);
  }
  if (std::isinf(max_logit)) fail(fn, ": every grid energy is +inf (zero density on the grid)");
  double sum = 0;
  for (int64_t p = 0; p < count; ++p) {
    sum += std::exp(-static_cast<double>(grid_energies[p]) / temperature - max_logit);
  }
  const double dx = (grid.xmax - grid.xmin) / (grid.nx - 1);
  const double dy = (grid.ymax - grid.ymin) / (grid.ny - 1);
  return max_logit + std::log(sum) + std::log(dx * dy);
}

double grid_log_partition(const BatchEnergyFn& energy, const Grid2D& grid, double temperature) {
  const char* fn = "grid_log_partition";
  check_energy_fn(fn, energy);
  check_grid(fn, grid);
  check_positive(fn, "temperature", temperature);
  const std::vector<float> xy = grid_points(grid);
  const std::vector<float> e = evaluate(energy, xy.data(), static_cast<int64_t>(xy.size() / 2));
  return grid_log_partition(e.data(), grid, temperature);
}

double test_nll(const BatchEnergyFn& energy, const float* x_test, int64_t n, const Grid2D& grid,
                double temperature) {
  const char* fn = "test_nll";
  check_energy_fn(fn, energy);
  check_pointer(fn, "x_test", x_test);
  check_count(fn, "n", n, 1);
  check_grid(fn, grid);
  check_positive(fn, "temperature", temperature);
  check_finite(fn, "x_test", x_test, n, 2);
  const std::vector<float> e = evaluate(energy, x_test, n);
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) {
    if (!std::isfinite(e[i])) fail(fn, ": energy of test point ", i, " is ", e[i]);
    sum += e[i];
  }
  return sum / static_cast<double>(n) / temperature + grid_log_partition(energy, grid, temperature);
}

double mixture_entropy_2d(int components, double std) {
  check_count("mixture_entropy_2d", "components", components, 1);
  check_positive("mixture_entropy_2d", "std", std);
  return std::log(static_cast<double>(components)) +
         std::log(2 * std::numbers::pi * std::numbers::e * std * std);
}

double mmd2_rbf(const float* a, int64_t na, const float* b, int64_t nb, int dim) {
  const char* fn = "mmd2_rbf";
  check_pointer(fn, "a", a);
  check_pointer(fn, "b", b);
  check_count(fn, "na", na, 2);
  check_count(fn, "nb", nb, 2);
  check_count(fn, "dim", dim, 1);
  check_finite(fn, "a", a, na, dim);
  check_finite(fn, "b", b, nb, dim);
  const int64_t n = na + nb;
  auto row = [&](int64_t p) { return p < na ? a + p * dim : b + (p - na) * dim; };
  // Median of the pairwise squared distances of the pooled sample.
  std::vector<double> d2;
  d2.reserve(static_cast<size_t>(n * (n - 1) / 2));
  for (int64_t p = 0; p < n; ++p) {
    for (int64_t q = p + 1; q < n; ++q) d2.push_back(squared_distance(row(p), row(q), dim));
  }
  const size_t mid = d2.size() / 2;
  std::nth_element(d2.begin(), d2.begin() + mid, d2.end());
  double median = d2[mid];
  if (d2.size() % 2 == 0) median = 0.5 * (median + *std::max_element(d2.begin(), d2.begin() + mid));
  if (!(median > 0)) fail(fn, ": median pairwise squared distance is ", median, " (no bandwidth)");
  // Kernel sums: within a and within b over unordered pairs (each counted twice), across all.
  auto kernel_sum = [&](const float* u, int64_t nu, const float* v, int64_t nv, bool same) {
    double s = 0;
    for (int64_t i = 0; i < nu; ++i) {
      for (int64_t j = same ? i + 1 : 0; j < nv; ++j) {
        s += std::exp(-squared_distance(u + i * dim, v + j * dim, dim) / median);
      }
    }
    return same ? 2 * s : s;
  };
  const double kaa = kernel_sum(a, na, a, na, true) / (static_cast<double>(na) * (na - 1));
  const double kbb = kernel_sum(b, nb, b, nb, true) / (static_cast<double>(nb) * (nb - 1));
  const double kab = kernel_sum(a, na, b, nb, false) / (static_cast<double>(na) * nb);
  return kaa + kbb - 2 * kab;
}

ModeReport mode_report(const float* samples, int64_t n, const float* centres, int k, double std,
                       double radius_stds, int64_t min_count) {
  const char* fn = "mode_report";
  check_pointer(fn, "samples", samples);
  check_pointer(fn, "centres", centres);
  check_count(fn, "n", n, 1);
  check_count(fn, "k", k, 1);
  check_positive(fn, "std", std);
  check_positive(fn, "radius_stds", radius_stds);
  check_count(fn, "min_count", min_count, 0);
  check_finite(fn, "samples", samples, n, 2);
  check_finite(fn, "centres", centres, k, 2);
  ModeReport r;
  r.total = k;
  r.counts.assign(static_cast<size_t>(k), 0);
  r.weights.assign(static_cast<size_t>(k), 0.0);
  const int64_t tenth_k = 10 * static_cast<int64_t>(k);
  r.min_count = min_count > 0 ? min_count : std::max<int64_t>(1, (n + tenth_k - 1) / tenth_k);
  const double radius2 = (radius_stds * std) * (radius_stds * std);
  int64_t near = 0;
  for (int64_t i = 0; i < n; ++i) {
    int best = 0;
    double best_d2 = squared_distance(samples + 2 * i, centres, 2);
    for (int m = 1; m < k; ++m) {
      const double d2 = squared_distance(samples + 2 * i, centres + 2 * m, 2);
      if (d2 < best_d2) {
        best = m;
        best_d2 = d2;
      }
    }
    if (best_d2 <= radius2) {
      ++r.counts[best];
      ++near;
    }
  }
  r.share_near_mode = static_cast<double>(near) / static_cast<double>(n);
  for (int m = 0; m < k; ++m) {
    if (near > 0) r.weights[m] = static_cast<double>(r.counts[m]) / static_cast<double>(near);
    if (r.counts[m] >= r.min_count) ++r.covered;
  }
  return r;
}

}  // namespace cuebm
