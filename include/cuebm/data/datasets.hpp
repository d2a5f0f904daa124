// Toy 2-D datasets (behaviour.md, "Datasets") and a shuffling mini-batch loader. Every
// generator is a pure function of its parameters and seed: no global random state.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace cuebm {

// n x dim float32 points, row-major.
struct Dataset {
  std::vector<float> points;
  int64_t n = 0;
  int dim = 2;
};

struct GaussianMixtureParams {
  int64_t n = 2000;
  int components = 8;
  float std = 0.05f;
  float radius = 1.0f;
};

struct EightGaussiansParams {
  int64_t n = 2000;
  float std = 0.02f;
  float scale = 2.0f;
};

struct TwoMoonsParams {
  int64_t n = 2000;
  float noise = 0.05f;
};

struct SwissRollParams {
  int64_t n = 2000;  // >= 2: the normalisation uses unbiased standard deviations
  float noise = 0.05f;
  float arclength = 3.0f;
};

struct CircleParams {
  int64_t n = 2000;
  float noise = 0.05f;
  float radius = 1.0f;
};

struct CheckerboardParams {
  int64_t n = 2000;
  float range = 4.0f;
  float noise = 0.01f;
};

struct PinwheelParams {
  int64_t n = 2000;
  int classes = 5;
  float noise = 0.05f;
  float radial = 2.0f;
  float angular = 0.1f;
  float spiral = 5.0f;
};

struct GridParams {
  int n_per_side = 10;  // the dataset has n_per_side^2 points
  float range = 1.0f;
  float noise = 0.01f;
};

// Each throws InvalidArgument naming the bad parameter and its value.
Dataset make_gaussian_mixture(const GaussianMixtureParams& params, uint64_t seed);
Dataset make_eight_gaussians(const EightGaussiansParams& params, uint64_t seed);
Dataset make_two_moons(const TwoMoonsParams& params, uint64_t seed);
Dataset make_swiss_roll(const SwissRollParams& params, uint64_t seed);
Dataset make_circle(const CircleParams& params, uint64_t seed);
Dataset make_checkerboard(const CheckerboardParams& params, uint64_t seed);
Dataset make_pinwheel(const PinwheelParams& params, uint64_t seed);
Dataset make_grid(const GridParams& params, uint64_t seed);

// The mode centres (K x 2, row-major) of a GaussianMixture and of EightGaussians, in the
// order the generators use, for mode metrics.
std::vector<float> gaussian_mixture_centres(int components, float radius);
std::vector<float> eight_gaussians_centres(float scale);

// A dataset by name (one of dataset_names()) with the defaults above, overridden by `params`,
// keyed by the field names of the parameter struct ("n", "std", "n_per_side", ...). Integer
// fields need integral values. Unknown names and keys throw InvalidArgument listing the valid
// ones.
Dataset make_dataset(const std::string& name, const std::map<std::string, double>& params,
                     uint64_t seed);
std::vector<std::string> dataset_names();

// A bound on the |coordinates| of dataset `name` with `params` (as make_dataset takes them),
// from the parameters alone: the noise-free shape's reach plus 5 standard deviations of its
// noise (gaussian_mixture: radius + 5 std; eight_gaussians: scale + 5 std; two_moons: 2 + 5
// noise; circle: radius + 5 noise; checkerboard and grid: range + 5 noise; pinwheel: radial +
// 5 noise; swiss_roll, normalised by its draw: the expected reach of the normalised roll plus 5
// noise, by quadrature, with 5% slack for the draw's own normalisation, n in the hundreds or
// more). Throws as make_dataset does for unknown names and parameters.
double dataset_extent(const std::string& name, const std::map<std::string, double>& params);

// Mini-batches of rows of an n x dim array. With shuffle, epoch e visits the rows in a
// permutation keyed by (seed, e) alone; otherwise in order. The data is not copied and must
// outlive the loader; batches are copied into one buffer allocated at construction.
class DataLoader {
 public:
  // Throws InvalidArgument for a null pointer, n < 1, dim < 1, batch_size < 1, drop_last
  // with batch_size > n (no batches at all), or a NaN/Inf in the data (naming the row).
  DataLoader(const float* data, int64_t n, int dim, int64_t batch_size, bool shuffle,
             bool drop_last, uint64_t seed);

  // Computes the row order of `epoch` (>= 0). The constructor starts epoch 0.
  void start_epoch(int64_t epoch);
  int64_t num_batches() const;
  // Rows in batch b: batch_size, except a short last batch when !drop_last.
  int64_t batch_rows(int64_t b) const;
  // Batch b of the current epoch (batch_rows(b) x dim); valid until the next call.
  const float* batch(int64_t b);
  int64_t batch_size() const { return batch_size_; }
  int dim() const { return dim_; }

 private:
  void check_batch_index(int64_t b, const char* caller) const;

  const float* data_;
  int64_t n_;
  int dim_;
  int64_t batch_size_;
  bool shuffle_;
  bool drop_last_;
  uint64_t seed_;
  std::vector<int64_t> order_;  // n rows in the current epoch's order
  std::vector<float> buffer_;   // batch_size x dim
};

}  // namespace cuebm
