// Toy 2-D datasets as behaviour.md defines them.
#include "cuebm/data/datasets.hpp"

#include <algorithm>
#include <cmath>
#include <numbers>
#include <sstream>
#include <utility>
#include <variant>

#include "cuebm/runtime/error.hpp"
#include "host/runtime/random.hpp"

namespace cuebm {
namespace {

// Subsequences of the (seed, kDataset) stream, one per kind of draw, so that changing one
// parameter (say the noise) does not move the draws of another.
constexpr uint64_t kNormalSubsequence = 0;
constexpr uint64_t kUniformSubsequence = 1;
constexpr uint64_t kShuffleSubsequence = 2;

constexpr double kPi = std::numbers::pi;

std::string str(double v) {
  std::ostringstream s;
  s << v;
  return s.str();
}

void check_n(const char* fn, const char* name, int64_t n, int64_t min = 1) {
  if (n < min) {
    throw InvalidArgument(std::string(fn) + ": " + name + " must be >= " + std::to_string(min) +
                          ", got " + std::to_string(n));
  }
}

void check_finite(const char* fn, const char* name, float v) {
  if (!std::isfinite(v)) {
    throw InvalidArgument(std::string(fn) + ": " + name + " must be finite, got " + str(v));
  }
}

void check_non_negative(const char* fn, const char* name, float v) {
  if (!(std::isfinite(v) && v >= 0)) {
    throw InvalidArgument(std::string(fn) + ": " + name + " must be finite and >= 0, got " +
                          str(v));
  }
}

void check_positive(const char* fn, const char* name, float v) {
  if (!(std::isfinite(v) && v > 0)) {
    throw InvalidArgument(std::string(fn) + ": " + name + " must be finite and > 0, got " + str(v));
  }
}

// Rows of component i when n rows are split over k components.
int64_t component_count(int64_t n, int64_t k, int64_t i) { return n / k + (i < n % k ? 1 : 0); }

// Element i of numpy.linspace(start, stop, num).
double linspace(double start, double stop, int64_t num, int64_t i) {
  if (num == 1) return start;
  if (i == num - 1) return stop;
  return start + static_cast<double>(i) * ((stop - start) / static_cast<double>(num - 1));
}

Dataset empty_dataset(int64_t n) { return Dataset{std::vector<float>(2 * n), n, 2}; }

// Fisher-Yates over rows.
void shuffle_rows(Dataset& d, uint64_t seed) {
  RandomStream stream(seed, StreamTag::kDataset, kShuffleSubsequence);
  for (int64_t i = d.n - 1; i > 0; --i) {
    const auto j = static_cast<int64_t>(stream.uniform_int(static_cast<uint64_t>(i) + 1));
    std::swap(d.points[2 * i], d.points[2 * j]);
    std::swap(d.points[2 * i + 1], d.points[2 * j + 1]);
  }
}

void add_noise(Dataset& d, float noise, RandomStream& normals) {
  for (float& v : d.points) v += noise * normals.normal();
}

// Per-component counts around the given centres, centre + std N(0, I), shuffled.
Dataset sample_around_centres(const std::vector<float>& centres, int64_t n, float std,
                              uint64_t seed) {
  const auto k = static_cast<int64_t>(centres.size() / 2);
  RandomStream normals(seed, StreamTag::kDataset, kNormalSubsequence);
  Dataset d = empty_dataset(n);
  int64_t row = 0;
  for (int64_t c = 0; c < k; ++c) {
    for (int64_t i = 0; i < component_count(n, k, c); ++i, ++row) {
      d.points[2 * row] = centres[2 * c] + std * normals.normal();
      d.points[2 * row + 1] = centres[2 * c + 1] + std * normals.normal();
    }
  }
  shuffle_rows(d, seed);
  return d;
}

}  // namespace

std::vector<float> gaussian_mixture_centres(int components, float radius) {
  check_n("gaussian_mixture_centres", "components", components);
  check_positive("gaussian_mixture_centres", "radius", radius);
  std::vector<float> centres(2 * static_cast<size_t>(components));
  for (int i = 0; i < components; ++i) {
    const double angle = 2 * kPi * i / components;
    centres[2 * i] = static_cast<float>(radius * std::cos(angle));
    centres[2 * i + 1] = static_cast<float>(radius * std::sin(angle));
  }
  return centres;
}

std::vector<float> eight_gaussians_centres(float scale) {
  check_positive("eight_gaussians_centres", "scale", scale);
  const float d = static_cast<float>(1 / std::numbers::sqrt2);
  const float unit[16] = {1, 0, -1, 0, 0, 1, 0, -1, d, d, d, -d, -d, d, -d, -d};
  std::vector<float> centres(16);
  for (int i = 0; i < 16; ++i) centres[i] = scale * unit[i];
  return centres;
}

Dataset make_gaussian_mixture(const GaussianMixtureParams& p, uint64_t seed) {
  const char* fn = "make_gaussian_mixture";
  check_n(fn, "n", p.n);
  check_n(fn, "components", p.components);
  check_non_negative(fn, "std", p.std);
  check_positive(fn, "radius", p.radius);
  return sample_around_centres(gaussian_mixture_centres(p.components, p.radius), p.n, p.std, seed);
}

Dataset make_eight_gaussians(const EightGaussiansParams& p, uint64_t seed) {
  const char* fn = "make_eight_gaussians";
  check_n(fn, "n", p.n);
  check_non_negative(fn, "std", p.std);
  check_positive(fn, "scale", p.scale);
  return sample_around_centres(eight_gaussians_centres(p.scale), p.n, p.std, seed);
}

Dataset make_two_moons(const TwoMoonsParams& p, uint64_t seed) {
  const char* fn = "make_two_moons";
  check_n(fn, "n", p.n);
  check_non_negative(fn, "noise", p.noise);
  const int64_t n_out = p.n / 2, n_in = p.n - n_out;
  Dataset d = empty_dataset(p.n);
  for (int64_t i = 0; i < n_out; ++i) {
    const double t = linspace(0, kPi, n_out, i);
    d.points[2 * i] = static_cast<float>(std::cos(t));
    d.points[2 * i + 1] = static_cast<float>(std::sin(t));
  }
  for (int64_t i = 0; i < n_in; ++i) {
    const double t = linspace(0, kPi, n_in, i);
    d.points[2 * (n_out + i)] = static_cast<float>(1 - std::cos(t));
    d.points[2 * (n_out + i) + 1] = static_cast<float>(1 - std::sin(t) - 0.5);
  }
  RandomStream normals(seed, StreamTag::kDataset, kNormalSubsequence);
  add_noise(d, p.noise, normals);
  return d;
}

Dataset make_swiss_roll(const SwissRollParams& p, uint64_t seed) {
  const char* fn = "make_swiss_roll";
  check_n(fn, "n", p.n, 2);
  check_non_negative(fn, "noise", p.noise);
  check_positive(fn, "arclength", p.arclength);
  RandomStream uniforms(seed, StreamTag::kDataset, kUniformSubsequence);
  RandomStream normals(seed, StreamTag::kDataset, kNormalSubsequence);
  // Normalised in double so that the result's moments are exact to float rounding.
  std::vector<double> xy(2 * p.n);
  double mean[2] = {0, 0};
  for (int64_t i = 0; i < p.n; ++i) {
    const double t = p.arclength * kPi * (1 + 2 * uniforms.uniform_double());
    xy[2 * i] = t * std::cos(t) + p.noise * normals.normal();
    xy[2 * i + 1] = t * std::sin(t) + p.noise * normals.normal();
    mean[0] += xy[2 * i];
    mean[1] += xy[2 * i + 1];
  }
  mean[0] /= static_cast<double>(p.n);
  mean[1] /= static_cast<double>(p.n);
  double sum_sq[2] = {0, 0};
  for (int64_t i = 0; i < p.n; ++i) {
    for (int c = 0; c < 2; ++c) sum_sq[c] += (xy[2 * i + c] - mean[c]) * (xy[2 * i + c] - mean[c]);
  }
  const double mean_std = (std::sqrt(sum_sq[0] / static_cast<double>(p.n - 1)) +
                           std::sqrt(sum_sq[1] / static_cast<double>(p.n - 1))) /
                          2;
  Dataset d = empty_dataset(p.n);
  for (int64_t i = 0; i < 2 * p.n; ++i) {
    d.points[i] = static_cast<float>((xy[i] - mean[i % 2]) / (2 * mean_std));
  }
  return d;
}

Dataset make_circle(const CircleParams& p, uint64_t seed) {
  const char* fn = "make_circle";
  check_n(fn, "n", p.n);
  check_non_negative(fn, "noise", p.noise);
  check_positive(fn, "radius", p.radius);
  RandomStream uniforms(seed, StreamTag::kDataset, kUniformSubsequence);
  Dataset d = empty_dataset(p.n);
  for (int64_t i = 0; i < p.n; ++i) {
    const double theta = 2 * kPi * uniforms.uniform_double();
    d.points[2 * i] = static_cast<float>(p.radius * std::cos(theta));
    d.points[2 * i + 1] = static_cast<float>(p.radius * std::sin(theta));
  }
  RandomStream normals(seed, StreamTag::kDataset, kNormalSubsequence);
  add_noise(d, p.noise, normals);
  return d;
}

Dataset make_checkerboard(const CheckerboardParams& p, uint64_t seed) {
  const char* fn = "make_checkerboard";
  check_n(fn, "n", p.n);
  check_non_negative(fn, "noise", p.noise);
  check_positive(fn, "range", p.range);
  // Beyond this, doubles in [-range, range) are nearly all even integers and the rejection
  // loop would starve.
  if (p.range > 1e6f) {
    throw InvalidArgument(std::string(fn) + ": range must be <= 1e6, got " + str(p.range));
  }
  RandomStream uniforms(seed, StreamTag::kDataset, kUniformSubsequence);
  Dataset d = empty_dataset(p.n);
  for (int64_t row = 0; row < p.n;) {
    // The test runs on the stored floats, so a noise-free point is never on the wrong side.
    const auto x = static_cast<float>(-p.range + 2.0 * p.range * uniforms.uniform_double());
    const auto y = static_cast<float>(-p.range + 2.0 * p.range * uniforms.uniform_double());
    if (std::fmod(std::floor(x) + std::floor(y), 2.0f) == 0) continue;
    d.points[2 * row] = x;
    d.points[2 * row + 1] = y;
    ++row;
  }
  RandomStream normals(seed, StreamTag::kDataset, kNormalSubsequence);
  add_noise(d, p.noise, normals);
  return d;
}

Dataset make_pinwheel(const PinwheelParams& p, uint64_t seed) {
  const char* fn = "make_pinwheel";
  check_n(fn, "n", p.n);
  check_n(fn, "classes", p.classes);
  check_non_negative(fn, "noise", p.noise);
  check_positive(fn, "radial", p.radial);
  check_non_negative(fn, "angular", p.angular);
  check_finite(fn, "spiral", p.spiral);
  RandomStream uniforms(seed, StreamTag::kDataset, kUniformSubsequence);
  RandomStream normals(seed, StreamTag::kDataset, kNormalSubsequence);
  Dataset d = empty_dataset(p.n);
  int64_t row = 0;
  for (int c = 0; c < p.classes; ++c) {
    for (int64_t i = 0; i < component_count(p.n, p.classes, c); ++i, ++row) {
      const double t = std::sqrt(uniforms.uniform_double());
      const double r = p.radial * t;
      const double theta = 2 * kPi * c / p.classes + p.spiral * t + p.angular * normals.normal();
      d.points[2 * row] = static_cast<float>(r * std::cos(theta));
      d.points[2 * row + 1] = static_cast<float>(r * std::sin(theta));
    }
  }
  shuffle_rows(d, seed);
  add_noise(d, p.noise, normals);
  return d;
}

Dataset make_grid(const GridParams& p, uint64_t seed) {
  const char* fn = "make_grid";
  check_n(fn, "n_per_side", p.n_per_side);
  check_non_negative(fn, "noise", p.noise);
  check_positive(fn, "range", p.range);
  const int64_t m = p.n_per_side;
  Dataset d = empty_dataset(m * m);
  for (int64_t k = 0; k < m * m; ++k) {
    d.points[2 * k] = static_cast<float>(linspace(-p.range, p.range, m, k % m));
    d.points[2 * k + 1] = static_cast<float>(linspace(-p.range, p.range, m, k / m));
  }
  RandomStream normals(seed, StreamTag::kDataset, kNormalSubsequence);
  add_noise(d, p.noise, normals);
  return d;
}

namespace {

using Overrides = std::map<std::string, double>;

struct Field {
  const char* key;
  std::variant<int64_t*, int*, float*> target;
};

// Values of integer fields: integral and within what the field (or a double) holds exactly.
int64_t to_integer(const char* dataset, const std::string& key, double value, double max_abs) {
  if (!(std::isfinite(value) && value == std::floor(value) && std::abs(value) <= max_abs)) {
    throw InvalidArgument("make_dataset: parameter '" + key + "' of '" + dataset +
                          "' must be an integer of magnitude <= " + str(max_abs) + ", got " +
                          str(value));
  }
  return static_cast<int64_t>(value);
}

void apply_overrides(const char* dataset, const Overrides& params,
                     const std::vector<Field>& fields) {
  for (const auto& entry : params) {
    const std::string& key = entry.first;
    const double value = entry.second;
    const auto field =
        std::find_if(fields.begin(), fields.end(), [&key](const Field& f) { return key == f.key; });
    if (field == fields.end()) {
      std::string valid;
      for (const Field& f : fields) valid += (valid.empty() ? "" : ", ") + std::string(f.key);
      throw InvalidArgument("make_dataset: unknown parameter '" + key + "' for dataset '" +
                            dataset + "'; valid parameters: " + valid);
    }
    if (auto* p = std::get_if<int64_t*>(&field->target)) {
      **p = to_integer(dataset, key, value, 9007199254740992.0);  // 2^53
    } else if (auto* q = std::get_if<int*>(&field->target)) {
      **q = static_cast<int>(to_integer(dataset, key, value, 2147483647.0));
    } else {
      *std::get<float*>(field->target) = static_cast<float>(value);
    }
  }
}

// Each dataset's parameters from overrides of its defaults, by field name.
GaussianMixtureParams gaussian_mixture_params(const char* name, const Overrides& params) {
  GaussianMixtureParams p;
  apply_overrides(
      name, params,
      {{"n", &p.n}, {"components", &p.components}, {"std", &p.std}, {"radius", &p.radius}});
  return p;
}
EightGaussiansParams eight_gaussians_params(const char* name, const Overrides& params) {
  EightGaussiansParams p;
  apply_overrides(name, params, {{"n", &p.n}, {"std", &p.std}, {"scale", &p.scale}});
  return p;
}
TwoMoonsParams two_moons_params(const char* name, const Overrides& params) {
  TwoMoonsParams p;
  apply_overrides(name, params, {{"n", &p.n}, {"noise", &p.noise}});
  return p;
}
SwissRollParams swiss_roll_params(const char* name, const Overrides& params) {
  SwissRollParams p;
  apply_overrides(name, params, {{"n", &p.n}, {"noise", &p.noise}, {"arclength", &p.arclength}});
  return p;
}
CircleParams circle_params(const char* name, const Overrides& params) {
  CircleParams p;
  apply_overrides(name, params, {{"n", &p.n}, {"noise", &p.noise}, {"radius", &p.radius}});
  return p;
}
CheckerboardParams checkerboard_params(const char* name, const Overrides& params) {
  CheckerboardParams p;
  apply_overrides(name, params, {{"n", &p.n}, {"range", &p.range}, {"noise", &p.noise}});
  return p;
}
PinwheelParams pinwheel_params(const char* name, const Overrides& params) {
  PinwheelParams p;
  apply_overrides(name, params,
                  {{"n", &p.n},
                   {"classes", &p.classes},
                   {"noise", &p.noise},
                   {"radial", &p.radial},
                   {"angular", &p.angular},
                   {"spiral", &p.spiral}});
  return p;
}
GridParams grid_params(const char* name, const Overrides& params) {
  GridParams p;
  apply_overrides(name, params,
                  {{"n_per_side", &p.n_per_side}, {"range", &p.range}, {"noise", &p.noise}});
  return p;
}

// Five standard deviations of a coordinate's noise, the extent's margin: a draw beyond it has
// probability 6e-7 (3 std would be passed by a few of 4000 coordinates).
double noise_margin(float noise) { return 5.0 * static_cast<double>(noise); }

// The normalised swiss roll (make_swiss_roll) in expectation: the noise-free roll's largest
// |coordinate - mean| over its expected 2 x mean standard deviation, by the midpoint rule
// over the roll's parameter.
double swiss_roll_extent(const SwissRollParams& p) {
  constexpr int kPoints = 4096;
  const double noise2 = static_cast<double>(p.noise) * p.noise;
  double sum[2] = {0, 0}, sum_sq[2] = {0, 0};
  std::vector<double> xy(2 * kPoints);
  for (int i = 0; i < kPoints; ++i) {
    const double t = p.arclength * kPi * (1 + 2 * (i + 0.5) / kPoints);
    xy[2 * i] = t * std::cos(t);
    xy[2 * i + 1] = t * std::sin(t);
    for (int c = 0; c < 2; ++c) {
      sum[c] += xy[2 * i + c];
      sum_sq[c] += xy[2 * i + c] * xy[2 * i + c];
    }
  }
  double mean[2], std_sum = 0;
  for (int c = 0; c < 2; ++c) {
    mean[c] = sum[c] / kPoints;
    std_sum += std::sqrt(std::max(0.0, sum_sq[c] / kPoints - mean[c] * mean[c]) + noise2);
  }
  double reach = 0;
  for (int i = 0; i < 2 * kPoints; ++i) reach = std::max(reach, std::fabs(xy[i] - mean[i % 2]));
  // std_sum / 2 is the mean std. The data's own standard deviations differ from these by
  // O(1/sqrt(n)) (1.6% at n = 2000) and the draws' reach from the roll's: 5% slack.
  constexpr double kSampleSlack = 1.05;
  return kSampleSlack * (reach + noise_margin(p.noise)) / std_sum;
}

struct Generator {
  const char* name;
  Dataset (*make)(const char* name, const Overrides& params, uint64_t seed);
  double (*extent)(const char* name, const Overrides& params);
};

const Generator kGenerators[] = {
    {"gaussian_mixture",
     [](const char* name, const Overrides& params, uint64_t seed) {
       return make_gaussian_mixture(gaussian_mixture_params(name, params), seed);
     },
     [](const char* name, const Overrides& params) {
       const GaussianMixtureParams p = gaussian_mixture_params(name, params);
       return static_cast<double>(p.radius) + noise_margin(p.std);
     }},
    {"eight_gaussians",
     [](const char* name, const Overrides& params, uint64_t seed) {
       return make_eight_gaussians(eight_gaussians_params(name, params), seed);
     },
     [](const char* name, const Overrides& params) {
       const EightGaussiansParams p = eight_gaussians_params(name, params);
       return static_cast<double>(p.scale) + noise_margin(p.std);
     }},
    {"two_moons",
     [](const char* name, const Overrides& params, uint64_t seed) {
       return make_two_moons(two_moons_params(name, params), seed);
     },
     [](const char* name, const Overrides& params) {
       // The moons span x in [-1, 2], y in [-0.5, 1].
       return 2.0 + noise_margin(two_moons_params(name, params).noise);
     }},
    {"swiss_roll",
     [](const char* name, const Overrides& params, uint64_t seed) {
       return make_swiss_roll(swiss_roll_params(name, params), seed);
     },
     [](const char* name, const Overrides& params) {
       return swiss_roll_extent(swiss_roll_params(name, params));
     }},
    {"circle",
     [](const char* name, const Overrides& params, uint64_t seed) {
       return make_circle(circle_params(name, params), seed);
     },
     [](const char* name, const Overrides& params) {
       const CircleParams p = circle_params(name, params);
       return static_cast<double>(p.radius) + noise_margin(p.noise);
     }},
    {"checkerboard",
     [](const char* name, const Overrides& params, uint64_t seed) {
       return make_checkerboard(checkerboard_params(name, params), seed);
     },
     [](const char* name, const Overrides& params) {
       const CheckerboardParams p = checkerboard_params(name, params);
       return static_cast<double>(p.range) + noise_margin(p.noise);
     }},
    {"pinwheel",
     [](const char* name, const Overrides& params, uint64_t seed) {
       return make_pinwheel(pinwheel_params(name, params), seed);
     },
     [](const char* name, const Overrides& params) {
       const PinwheelParams p = pinwheel_params(name, params);
       return static_cast<double>(p.radial) + noise_margin(p.noise);
     }},
    {"grid",
     [](const char* name, const Overrides& params, uint64_t seed) {
       return make_grid(grid_params(name, params), seed);
     },
     [](const char* name, const Overrides& params) {
       const GridParams p = grid_params(name, params);
       return static_cast<double>(p.range) + noise_margin(p.noise);
     }},
};

const Generator& find_generator(const std::string& name) {
  for (const Generator& g : kGenerators) {
    if (name == g.name) return g;
  }
  std::string valid;
  for (const Generator& g : kGenerators) valid += (valid.empty() ? "" : ", ") + std::string(g.name);
  throw InvalidArgument("make_dataset: unknown dataset '" + name + "'; valid names: " + valid);
}

}  // namespace

std::vector<std::string> dataset_names() {
  std::vector<std::string> names;
  for (const Generator& g : kGenerators) names.emplace_back(g.name);
  return names;
}

Dataset make_dataset(const std::string& name, const std::map<std::string, double>& params,
                     uint64_t seed) {
  const Generator& g = find_generator(name);
  return g.make(g.name, params, seed);
}

double dataset_extent(const std::string& name, const std::map<std::string, double>& params) {
  const Generator& g = find_generator(name);
  return g.extent(g.name, params);
}

}  // namespace cuebm
