// Judging a trained 2-D model (spec/testing.md, "Judging a trained 2-D model"): exact
// normalisation on a grid, test NLL, mixture entropies, MMD^2 and mode coverage. Plain C++,
// everything accumulated in double. Bad input throws cuebm::InvalidArgument naming the value.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

namespace cuebm {

// Energies of n points (n x 2 row-major) written to e[n]. The metrics call it in chunks of at
// most kMetricsChunk points.
using BatchEnergyFn = std::function<void(const float* xy, int64_t n, float* e)>;
inline constexpr int64_t kMetricsChunk = 4096;

// A regular grid of points on linspace(xmin, xmax, nx) x linspace(ymin, ymax, ny) (end points
// included, as the density figure uses). Needs nx, ny >= 2, finite bounds, xmax > xmin and
// ymax > ymin. The box must hold the data with margin for log Z to be meaningful.
struct Grid2D {
  double xmin = -2.5, xmax = 2.5, ymin = -2.5, ymax = 2.5;
  int nx = 100, ny = 100;
};

// The nx * ny grid points as (nx * ny) x 2 row-major floats, x fastest: point (i, j) at index
// j * nx + i is (x_i, y_j), x_i = xmin + i * (xmax - xmin) / (nx - 1) (x_{nx-1} == xmax).
std::vector<float> grid_points(const Grid2D& grid);

// log Z = logsumexp_ij(-E(x_ij) / T) + log(dx dy), dx = (xmax - xmin) / (nx - 1),
// dy = (ymax - ymin) / (ny - 1): a plain Riemann sum over all grid points, in double.
// E is evaluated on grid_points(grid) in chunks of at most kMetricsChunk points.
// Energies: NaN and -Inf throw; +Inf is allowed (density 0) but not at every grid point.
// temperature must be finite and > 0.
double grid_log_partition(const BatchEnergyFn& energy, const Grid2D& grid, double temperature);
// The same from energies already evaluated on grid_points(grid) (nx * ny values).
double grid_log_partition(const float* grid_energies, const Grid2D& grid, double temperature);

// Test negative log-likelihood in nats per point: mean_i E(x_i) / T + log Z, log Z as
// grid_log_partition. KL(data || model) = test_nll - H(data). x_test is n x 2 row-major, n >= 1,
// finite; the energies of the test points must be finite (+Inf there throws too).
double test_nll(const BatchEnergyFn& energy, const float* x_test, int64_t n, const Grid2D& grid,
                double temperature);

// Entropy in nats of a well-separated isotropic 2-D mixture of `components` equal-weight
// Gaussians with standard deviation `std`: H = log K + log(2 pi e std^2). components >= 1,
// std finite and > 0.
double mixture_entropy_2d(int components, double std);

// Unbiased MMD^2 between samples a (na x dim) and b (nb x dim), row-major, with the RBF kernel
// k(u, v) = exp(-|u - v|^2 / (2 h^2)):
//   MMD^2 = sum_{i != j} k(a_i, a_j) / (na (na - 1)) + sum_{i != j} k(b_i, b_j) / (nb (nb - 1))
//           - 2 sum_{i, j} k(a_i, b_j) / (na nb).
// Bandwidth (median heuristic): with m the median of the squared distances |z_p - z_q|^2 over
// all N (N - 1) / 2 unordered pairs p < q of the pooled sample z = a U b (N = na + nb; the
// mean of the two middle values when that count is even), 2 h^2 = m, i.e. h^2 = m / 2 and
// k(u, v) = exp(-|u - v|^2 / m). Throws when m == 0 (mostly repeated points).
// na, nb >= 2, dim >= 1, finite values. O(N^2) time and O(N^2) memory for the median: fine up
// to a few thousand points. Everything in double.
double mmd2_rbf(const float* a, int64_t na, const float* b, int64_t nb, int dim);

// Mode coverage of 2-D samples against k known mixture centres of equal std.
struct ModeReport {
  int covered = 0;              // modes with counts[m] >= the min_count in use
  int total = 0;                // k
  double share_near_mode = 0;   // fraction of the n samples within radius of some centre
  std::vector<double> weights;  // counts[m] / (samples near any mode); all 0 when none is
  std::vector<int64_t> counts;  // per mode: samples whose nearest centre is m, within radius
  int64_t min_count = 0;        // the threshold that was used for `covered`
};

// samples: n x 2, centres: k x 2, row-major. A sample is near mode m when m is its nearest
// centre (Euclidean; ties go to the lower index) and its distance is <= radius_stds * std.
// In 2-D, 1 - exp(-radius_stds^2 / 2) of a mode's own samples lie within the radius (98.89%
// for the default 3). min_count == 0 selects the default: max(1, ceil(n / (10 k))), i.e. a mode
// is covered when it holds at least a tenth of its share under equal weights.
// n >= 1, k >= 1, std and radius_stds finite and > 0, min_count >= 0, finite values.
ModeReport mode_report(const float* samples, int64_t n, const float* centres, int k, double std,
                       double radius_stds = 3.0, int64_t min_count = 0);

}  // namespace cuebm
