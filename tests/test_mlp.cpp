// Tests of the MLP energy (include/cuebm/models/mlp.hpp): PyTorch parameter names, shapes and
// offsets; nn.Linear initialisation; E, dE/dx and the parameter gradient against the
// double-precision oracle of tests/reference (itself checked against central finite
// differences); ReLU's derivative at 0; thread-count independence; bad input.
//
// Tolerances. float32 vs the double oracle: |got - ref| <= 1e-5 S + 1e-4 m, where m = |ref|
// (E, dE/dx) or m = sum_i |c_i dE_i/dtheta| (parameter gradient: the size of the terms the
// batch sum adds up), and S = max(1, largest m of the batch). A float32 dot product of n <= 64
// terms errs by about sqrt(n) ulp of the term sizes, ~5e-7 relative; through <= 4 layers and a
// sum over <= 100 rows that stays below ~1e-5 of the batch scale, so the bounds hold with a
// margin of 10 or more while any wrong weight, layout or derivative breaks them by orders of
// magnitude. The oracle against finite differences (double, h = 1e-6): truncation h^2 f''' and
// rounding 1e-16 / h are both ~1e-10, so |fd - exact| <= 1e-7 + 1e-6 |exact|.
#include "cuebm/models/mlp.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "cuebm/models/activation.hpp"
#include "cuebm/models/energy.hpp"
#include "cuebm/runtime/device.hpp"
#include "cuebm/runtime/error.hpp"
#include "invalid_argument_support.hpp"
#include "reference/reference.hpp"

namespace cuebm {
namespace {

constexpr Activation kActivations[] = {Activation::kReLU,      Activation::kSiLU,
                                       Activation::kTanh,      Activation::kSoftplus,
                                       Activation::kLeakyReLU, Activation::kGELU};
// Around 16 and around the CPU backend's row block (partial, full and one-over blocks).
std::vector<int64_t> BatchSizes() {
  std::vector<int64_t> v = {1, 15, 16, 17, kRowBlock - 1, kRowBlock, kRowBlock + 1, 100};
  std::sort(v.begin(), v.end());
  v.erase(std::unique(v.begin(), v.end()), v.end());
  return v;
}
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

struct Arch {
  int input_dim;
  std::vector<int> hidden;
};
// The tutorial net, widths that are not multiples of 4 or 16, one hidden layer, three layers.
const std::vector<Arch>& Architectures() {
  static const std::vector<Arch> kArchs = {
      {2, {64, 64}}, {3, {17, 5}}, {5, {32}}, {2, {8, 8, 8}}, {6, {20, 37}}};
  return kArchs;
}

std::string ArchName(const Arch& a, Activation act) {
  std::ostringstream s;
  s << a.input_dim;
  for (int h : a.hidden) s << "-" << h;
  s << "-1 " << activation_name(act);
  return s.str();
}

std::vector<float> RandomNormal(std::size_t n, double scale, uint64_t seed) {
  std::mt19937_64 gen(seed);
  std::normal_distribution<double> dist(0.0, scale);
  std::vector<float> v(n);
  for (auto& x : v) x = static_cast<float>(dist(gen));
  return v;
}

std::vector<float> RandomUniform(std::size_t n, double lo, double hi, uint64_t seed) {
  std::mt19937_64 gen(seed);
  std::uniform_real_distribution<double> dist(lo, hi);
  std::vector<float> v(n);
  for (auto& x : v) x = static_cast<float>(dist(gen));
  return v;
}

// |got[i] - ref[i]| <= atol + rtol * mag[i] for every i (mag null: |ref[i]|); NaN fails.
::testing::AssertionResult AllClose(const float* got, const double* ref, const double* mag,
                                    std::size_t n, double atol, double rtol) {
  std::size_t bad = 0, first = 0;
  double worst = 0.0;
  for (std::size_t i = 0; i < n; ++i) {
    const double m = mag ? mag[i] : std::abs(ref[i]);
    const double err = std::abs(static_cast<double>(got[i]) - ref[i]);
    const double tol = atol + rtol * m;
    if (!(err <= tol)) {
      if (bad++ == 0) first = i;
    }
    if (std::isfinite(err)) worst = std::max(worst, err / tol);
  }
  if (bad == 0) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << bad << " of " << n << " entries out of tolerance; first at " << first << ": got "
         << got[first] << ", ref " << ref[first] << " (atol " << atol << ", rtol " << rtol
         << "); worst err/tol " << worst;
}

double MaxAbsOrOne(const std::vector<double>& v) {
  double m = 1.0;
  for (double x : v) m = std::max(m, std::abs(x));
  return m;
}

using testing_support::ExpectInvalid;

MlpSpec Spec(const Arch& a, Activation act) { return MlpSpec{a.input_dim, a.hidden, act}; }

ref::MlpModel Oracle(const Mlp& mlp) {
  return ref::MlpModel(ref::mlp_widths(mlp.spec().input_dim, mlp.spec().hidden),
                       mlp.spec().activation, mlp.parameters());
}

// Checks energy, gradient (with and without e) and parameter_gradient of `mlp` on n fresh
// random rows against the oracle.
void CheckAgainstOracle(const Mlp& mlp, int64_t n, double x_scale, uint64_t seed) {
  const int d = mlp.dim();
  const ref::MlpModel model = Oracle(mlp);
  const std::vector<float> x = RandomNormal(static_cast<std::size_t>(n) * d, x_scale, seed);
  const std::vector<double> xd = ref::to_double(x);

  std::vector<double> ref_e(n), ref_g(static_cast<std::size_t>(n) * d);
  for (int64_t i = 0; i < n; ++i)
    ref_e[i] = ref::mlp_input_gradient(model, xd.data() + i * d, ref_g.data() + i * d);
  const double se = MaxAbsOrOne(ref_e), sg = MaxAbsOrOne(ref_g);

  std::vector<float> e(n, kNaN);
  mlp.energy(x.data(), n, e.data());
  EXPECT_TRUE(AllClose(e.data(), ref_e.data(), nullptr, n, 1e-5 * se, 1e-4)) << "energy";

  std::vector<float> g(n * d, kNaN), e2(n, kNaN), g2(n * d, kNaN);
  mlp.gradient(x.data(), n, g.data(), e2.data());
  EXPECT_TRUE(AllClose(g.data(), ref_g.data(), nullptr, n * d, 1e-5 * sg, 1e-4)) << "dE/dx";
  EXPECT_TRUE(AllClose(e2.data(), ref_e.data(), nullptr, n, 1e-5 * se, 1e-4))
      << "e output of gradient";
  mlp.gradient(x.data(), n, g2.data());  // e omitted: same gradient
  EXPECT_EQ(std::memcmp(g.data(), g2.data(), g.size() * sizeof(float)), 0)
      << "gradient differs when e is not requested";

  const std::vector<float> c = RandomUniform(n, -1.0, 1.0, seed + 1);
  const std::vector<double> cd = ref::to_double(c);
  const std::vector<double> ref_p = ref::mlp_parameter_gradient(model, xd.data(), n, cd.data());
  const std::vector<double> mag_p =
      ref::mlp_parameter_gradient_magnitude(model, xd.data(), n, cd.data());
  std::vector<float> p(mlp.num_parameters(), kNaN);
  mlp.parameter_gradient(x.data(), n, c.data(), p.data());
  EXPECT_TRUE(
      AllClose(p.data(), ref_p.data(), mag_p.data(), p.size(), 1e-5 * MaxAbsOrOne(mag_p), 1e-4))
      << "parameter gradient";
}

// ---------------------------------------------------------------------------------------------
// Layout and initialisation

TEST(MlpLayout, TutorialNetHasPyTorchNamesShapesAndOffsets) {
  const Mlp mlp(MlpSpec{2, {64, 64}, Activation::kReLU}, 1);
  struct Expected {
    const char* name;
    std::vector<int64_t> shape;
  };
  // nn.Sequential(Linear(2, 64), ReLU, Linear(64, 64), ReLU, Linear(64, 1)) as a state_dict.
  const Expected expected[] = {{"network.0.weight", {64, 2}},  {"network.0.bias", {64}},
                               {"network.2.weight", {64, 64}}, {"network.2.bias", {64}},
                               {"network.4.weight", {1, 64}},  {"network.4.bias", {1}}};
  const auto& info = mlp.parameter_info();
  ASSERT_EQ(info.size(), 6u);
  std::size_t offset = 0;
  for (std::size_t i = 0; i < info.size(); ++i) {
    EXPECT_EQ(info[i].name, expected[i].name);
    EXPECT_EQ(info[i].shape, expected[i].shape) << info[i].name;
    EXPECT_EQ(info[i].offset, offset) << info[i].name;
    std::size_t size = 1;
    for (int64_t s : expected[i].shape) size *= static_cast<std::size_t>(s);
    EXPECT_EQ(info[i].size, size) << info[i].name;
    offset += size;
  }
  EXPECT_EQ(mlp.num_parameters(), offset);
  EXPECT_EQ(mlp.num_parameters(), 2u * 64 + 64 + 64 * 64 + 64 + 64 + 1);
  EXPECT_EQ(mlp.parameters().size(), offset);
}

TEST(MlpLayout, EveryArchitectureHasConsistentShapesAndOffsets) {
  for (const Arch& a : Architectures()) {
    const Mlp mlp(Spec(a, Activation::kTanh), 3);
    const std::vector<int> widths = ref::mlp_widths(a.input_dim, a.hidden);
    SCOPED_TRACE(ArchName(a, Activation::kTanh));
    EXPECT_EQ(mlp.layer_widths(), widths);
    EXPECT_EQ(mlp.num_linear_layers(), static_cast<int>(a.hidden.size()) + 1);
    EXPECT_EQ(mlp.dim(), a.input_dim);
    const auto& info = mlp.parameter_info();
    ASSERT_EQ(info.size(), 2 * (a.hidden.size() + 1));
    std::size_t offset = 0;
    int64_t macs = 0;
    for (int l = 0; l + 1 < static_cast<int>(widths.size()); ++l) {
      const int in = widths[l], out = widths[l + 1];
      const std::string prefix = "network." + std::to_string(2 * l);
      const ParameterInfo& w = info[2 * l];
      const ParameterInfo& b = info[2 * l + 1];
      EXPECT_EQ(w.name, prefix + ".weight");
      EXPECT_EQ(w.shape, (std::vector<int64_t>{out, in}));
      EXPECT_EQ(w.offset, offset);
      EXPECT_EQ(w.size, static_cast<std::size_t>(out) * in);
      EXPECT_EQ(mlp.weight_offset(l), offset);
      offset += static_cast<std::size_t>(out) * in;
      EXPECT_EQ(b.name, prefix + ".bias");
      EXPECT_EQ(b.shape, (std::vector<int64_t>{out}));
      EXPECT_EQ(b.offset, offset);
      EXPECT_EQ(b.size, static_cast<std::size_t>(out));
      EXPECT_EQ(mlp.bias_offset(l), offset);
      offset += out;
      macs += static_cast<int64_t>(in) * out;
    }
    EXPECT_EQ(mlp.num_parameters(), offset);
    EXPECT_EQ(mlp.forward_macs(), macs);
  }
}

TEST(MlpInit, EveryValueWithinTheFanInBound) {
  for (const Arch& a : Architectures()) {
    const Mlp mlp(Spec(a, Activation::kReLU), 11);
    const auto p = mlp.parameters();
    for (const ParameterInfo& info : mlp.parameter_info()) {
      // Both weight and bias of a layer use 1/sqrt(fan_in), fan_in = the layer's input width.
      const int64_t fan_in = info.shape.size() == 2
                                 ? info.shape[1]
                                 : mlp.layer_widths()[std::stoi(info.name.substr(8)) / 2];
      const float bound = static_cast<float>(1.0 / std::sqrt(static_cast<double>(fan_in)));
      float largest = 0.0f;
      for (std::size_t i = 0; i < info.size; ++i) {
        const float v = p[info.offset + i];
        ASSERT_TRUE(std::abs(v) <= bound) << info.name << "[" << i << "] = " << v << " > " << bound;
        largest = std::max(largest, std::abs(v));
      }
      // A U(-b, b) sample of n values has max |v| below b (1 - q) with probability (1 - q)^n:
      // with q = 0.5 that is < 2^-n, so any tensor of 20+ values reaches half the bound.
      if (info.size >= 20) {
        EXPECT_GT(largest, 0.5f * bound) << info.name;
      }
    }
  }
}

TEST(MlpInit, MomentsMatchUniformOnA256WideLayer) {
  const Mlp mlp(MlpSpec{4, {256, 256}, Activation::kReLU}, 2024);
  const auto p = mlp.parameters();
  for (const ParameterInfo& info : mlp.parameter_info()) {
    if (info.size < 256) continue;  // network.4.* are tiny
    const int fan_in = mlp.layer_widths()[std::stoi(info.name.substr(8)) / 2];
    const double b = 1.0 / std::sqrt(static_cast<double>(fan_in));
    const double n = static_cast<double>(info.size);
    double s1 = 0.0, s2 = 0.0;
    for (std::size_t i = 0; i < info.size; ++i) {
      s1 += p[info.offset + i];
      s2 += static_cast<double>(p[info.offset + i]) * p[info.offset + i];
    }
    // U(-b, b): mean 0 (SE b / sqrt(3n)); E[v^2] = b^2/3 with Var(v^2) = b^4/5 - b^4/9 = 4b^4/45.
    const double mean = s1 / n, mean_sq = s2 / n;
    const double se_mean = b / std::sqrt(3.0 * n);
    const double se_sq = b * b * std::sqrt(4.0 / 45.0 / n);
    EXPECT_NEAR(mean, 0.0, 4.0 * se_mean) << info.name << " (" << info.size << " values)";
    EXPECT_NEAR(mean_sq, b * b / 3.0, 4.0 * se_sq) << info.name << " (" << info.size << " values)";
  }
}

TEST(MlpInit, DeterministicBySeed) {
  const MlpSpec spec{3, {17, 5}, Activation::kGELU};
  const Mlp a(spec, 42), b(spec, 42), c(spec, 43);
  ASSERT_EQ(a.num_parameters(), b.num_parameters());
  EXPECT_EQ(
      std::memcmp(a.parameters().data(), b.parameters().data(), a.num_parameters() * sizeof(float)),
      0);
  std::size_t same = 0;
  for (std::size_t i = 0; i < a.num_parameters(); ++i)
    same += a.parameters()[i] == c.parameters()[i];
  EXPECT_LT(same, a.num_parameters() / 100) << "seeds 42 and 43 give nearly equal parameters";
  // The activation does not take part in the draw: same seed, same widths, same values.
  const Mlp d(MlpSpec{3, {17, 5}, Activation::kReLU}, 42);
  EXPECT_EQ(
      std::memcmp(a.parameters().data(), d.parameters().data(), a.num_parameters() * sizeof(float)),
      0);
}

// ---------------------------------------------------------------------------------------------
// The oracle against finite differences

TEST(MlpOracle, InputGradientMatchesFiniteDifferences) {
  const std::vector<Arch> archs = {{3, {17, 5}}, {2, {8, 8, 8}}};
  uint64_t seed = 100;
  for (const Arch& a : archs) {
    for (Activation act : kActivations) {
      SCOPED_TRACE(ArchName(a, act));
      const Mlp mlp(Spec(a, act), seed++);
      const ref::MlpModel model = Oracle(mlp);
      for (int row = 0; row < 4; ++row) {
        const std::vector<double> x = ref::to_double(RandomNormal(a.input_dim, 1.5, seed++));
        std::vector<double> g(a.input_dim);
        const double e = ref::mlp_input_gradient(model, x.data(), g.data());
        EXPECT_DOUBLE_EQ(e, ref::mlp_energy(model, x.data()));
        const auto fd = ref::central_gradient(
            [&](const std::vector<double>& v) { return ref::mlp_energy(model, v.data()); }, x,
            1e-6);
        for (int i = 0; i < a.input_dim; ++i)
          EXPECT_NEAR(g[i], fd[i], 1e-7 + 1e-6 * std::abs(fd[i])) << "coordinate " << i;
      }
    }
  }
}

TEST(MlpOracle, ParameterGradientMatchesFiniteDifferences) {
  const std::vector<Arch> archs = {{3, {17, 5}}, {2, {8, 8, 8}}};
  uint64_t seed = 200;
  for (const Arch& a : archs) {
    for (Activation act : kActivations) {
      SCOPED_TRACE(ArchName(a, act));
      const Mlp mlp(Spec(a, act), seed++);
      const ref::MlpModel model = Oracle(mlp);
      const int n = 5;
      const std::vector<double> x = ref::to_double(RandomNormal(n * a.input_dim, 1.5, seed++));
      const std::vector<double> c = ref::to_double(RandomUniform(n, -1.0, 1.0, seed++));
      const std::vector<double> g = ref::mlp_parameter_gradient(model, x.data(), n, c.data());
      const auto loss = [&](const std::vector<double>& theta) {
        ref::MlpModel m = model;
        m.params = theta;
        double s = 0.0;
        for (int i = 0; i < n; ++i) s += c[i] * ref::mlp_energy(m, x.data() + i * a.input_dim);
        return s;
      };
      const auto fd = ref::central_gradient(loss, model.params, 1e-6);
      for (std::size_t j = 0; j < g.size(); ++j)
        ASSERT_NEAR(g[j], fd[j], 1e-7 + 1e-6 * std::abs(fd[j])) << "parameter " << j;
    }
  }
}

TEST(MlpOracle, ActivationsFollowPyTorchConventions) {
  // Derivatives at the kinks as PyTorch's backward: ReLU 0, LeakyReLU the negative slope.
  EXPECT_EQ(ref::activate_derivative(Activation::kReLU, 0.0), 0.0);
  EXPECT_EQ(ref::activate_derivative(Activation::kLeakyReLU, 0.0), 0.01);
  // Softplus switches to the identity above 20; GELU(1) = Phi(1) = 0.841344746...
  EXPECT_EQ(ref::activate(Activation::kSoftplus, 25.0), 25.0);
  EXPECT_NEAR(ref::activate(Activation::kGELU, 1.0), 0.8413447460685429, 1e-15);
  EXPECT_NEAR(ref::activate(Activation::kSiLU, 1.0), 1.0 / (1.0 + std::exp(-1.0)), 1e-15);
  for (Activation act : kActivations) {
    for (double z : {-3.7, -0.4, 0.3, 2.9, 19.0}) {
      const double fd = ref::central_difference(
          [&](const std::vector<double>& v) { return ref::activate(act, v[0]); }, {z}, 0, 1e-6);
      EXPECT_NEAR(ref::activate_derivative(act, z), fd, 1e-8) << activation_name(act) << " " << z;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// The library against the oracle

// More than 64 blocks: each gradient chunk sums several blocks, so the weight-gradient kernels
// also run their "add to the partial" branches (first = false).
TEST(MlpForwardBackward, BatchesOfMultiBlockChunksMatchTheOracle) {
  uint64_t seed = 3000;
  for (const Arch& a : Architectures())
    for (Activation act : {Activation::kReLU, Activation::kSiLU}) {
      const Mlp mlp(Spec(a, act), seed++);
      SCOPED_TRACE(ArchName(a, act) + ", batch 2500");
      CheckAgainstOracle(mlp, 2500, 1.5, seed++);
    }
}

TEST(MlpForwardBackward, AllActivationsArchitecturesAndBatchSizesMatchTheOracle) {
  uint64_t seed = 1000;
  for (const Arch& a : Architectures()) {
    for (Activation act : kActivations) {
      const Mlp mlp(Spec(a, act), seed++);
      for (int64_t n : BatchSizes()) {
        SCOPED_TRACE(ArchName(a, act) + ", batch " + std::to_string(n));
        CheckAgainstOracle(mlp, n, 1.5, seed++);
      }
    }
  }
}

TEST(MlpForwardBackward, LargePreActivationsMatchTheOracle) {
  // First-layer weights and biases scaled by 30: pre-activations reach |z| ~ 60, past
  // Softplus's threshold of 20 and into the saturated tails of Tanh, SiLU and GELU.
  uint64_t seed = 5000;
  for (Activation act : kActivations) {
    Mlp mlp(MlpSpec{3, {16, 16}, act}, seed++);
    auto p = mlp.parameters();
    for (std::size_t i = 0; i < mlp.bias_offset(0) + 16; ++i) p[i] *= 30.0f;
    SCOPED_TRACE(activation_name(act));
    CheckAgainstOracle(mlp, 33, 1.0, seed++);
  }
}

TEST(MlpForwardBackward, ActivationCurvesMatchTheOracle) {
  // A 1-1-1 net with weights 1 and biases 0: E(x) = act(x) and dE/dx = act'(x) exactly up to
  // the activation's own rounding, so each curve is checked point by point over [-30, 30]
  // (past Softplus's threshold of 20, where float can still tell z from softplus(z) for
  // z < ~16). Tolerance 1e-7 (1 + |z|) + 2e-6 |ref|: a few ulp of the result, plus the
  // cancellation in 1 + erf(z / sqrt 2) (GELU) and z sigmoid(z) (SiLU) for negative z.
  std::vector<float> z;
  for (int i = 0; i <= 240; ++i) z.push_back(-30.0f + 0.25f * static_cast<float>(i) + 0.013f);
  for (float v : {1e-3f, -1e-3f, 10.5f, 14.0f, 19.9f, 20.1f, -19.9f}) z.push_back(v);
  const int64_t n = static_cast<int64_t>(z.size());
  for (Activation act : kActivations) {
    SCOPED_TRACE(activation_name(act));
    Mlp mlp(MlpSpec{1, {1}, act}, 1);
    auto p = mlp.parameters();
    p[mlp.weight_offset(0)] = 1.0f;
    p[mlp.bias_offset(0)] = 0.0f;
    p[mlp.weight_offset(1)] = 1.0f;
    p[mlp.bias_offset(1)] = 0.0f;
    std::vector<float> e(n, kNaN), g(n, kNaN);
    mlp.gradient(z.data(), n, g.data(), e.data());
    for (int64_t i = 0; i < n; ++i) {
      const double f = ref::activate(act, z[i]), df = ref::activate_derivative(act, z[i]);
      const double atol = 1e-7 * (1.0 + std::abs(z[i]));
      EXPECT_NEAR(e[i], f, atol + 2e-6 * std::abs(f)) << "z = " << z[i];
      EXPECT_NEAR(g[i], df, atol + 2e-6 * std::abs(df)) << "z = " << z[i];
    }
  }
}

// A 2-4-1 ReLU (or LeakyReLU) net whose hidden unit 0 has weights (1, -1) and bias 0: rows
// x = (t, t) give that unit z = t - t = 0 exactly in float.
Mlp KinkNet(Activation act, bool only_unit_zero, uint64_t seed) {
  Mlp mlp(MlpSpec{2, {4}, act}, seed);
  auto p = mlp.parameters();
  p[mlp.weight_offset(0) + 0] = 1.0f;   // W0[0][0]
  p[mlp.weight_offset(0) + 1] = -1.0f;  // W0[0][1]
  p[mlp.bias_offset(0) + 0] = 0.0f;
  p[mlp.weight_offset(1) + 0] = 1.0f;  // W1[0][0]
  if (only_unit_zero)
    for (int j = 1; j < 4; ++j) p[mlp.weight_offset(1) + j] = 0.0f;
  return mlp;
}

std::vector<float> DiagonalRows(int64_t n, uint64_t seed) {
  std::vector<float> t = RandomNormal(n, 1.0, seed), x(2 * n);
  for (int64_t i = 0; i < n; ++i) x[2 * i] = x[2 * i + 1] = t[i];
  return x;
}

TEST(MlpKink, ReluDerivativeAtExactlyZeroIsZero) {
  const int64_t n = 17;
  const std::vector<float> x = DiagonalRows(n, 7);
  {
    // Only unit 0 reaches the output: E = b1 and dE/dx = relu'(0) (1, -1) = 0 exactly.
    const Mlp mlp = KinkNet(Activation::kReLU, true, 5);
    std::vector<float> g(2 * n, kNaN), e(n, kNaN);
    mlp.gradient(x.data(), n, g.data(), e.data());
    const float b1 = mlp.parameters()[mlp.bias_offset(1)];
    for (int64_t i = 0; i < n; ++i) {
      EXPECT_EQ(e[i], b1) << "row " << i;
      EXPECT_EQ(g[2 * i], 0.0f) << "row " << i;
      EXPECT_EQ(g[2 * i + 1], 0.0f) << "row " << i;
    }
    // dE/dW0[0][:], dE/db0[0] and dE/dW1[0][0] = relu(0) all vanish; dE/db1 = sum c.
    const std::vector<float> c = RandomUniform(n, 0.5, 1.5, 8);
    std::vector<float> pg(mlp.num_parameters(), kNaN);
    mlp.parameter_gradient(x.data(), n, c.data(), pg.data());
    EXPECT_EQ(pg[mlp.weight_offset(0) + 0], 0.0f);
    EXPECT_EQ(pg[mlp.weight_offset(0) + 1], 0.0f);
    EXPECT_EQ(pg[mlp.bias_offset(0)], 0.0f);
    EXPECT_EQ(pg[mlp.weight_offset(1)], 0.0f);
    double sum_c = 0.0;
    for (float v : c) sum_c += v;
    EXPECT_NEAR(pg[mlp.bias_offset(1)], sum_c, 1e-5 * sum_c);
  }
  {
    // All units active: the other units' contributions against the oracle (whose
    // relu'(0) = 0); relu'(0) = 1 would add (1, -1) to every row.
    const Mlp mlp = KinkNet(Activation::kReLU, false, 6);
    const ref::MlpModel model = Oracle(mlp);
    std::vector<float> g(2 * n, kNaN);
    mlp.gradient(x.data(), n, g.data());
    std::vector<double> ref_g(2 * n);
    const std::vector<double> xd = ref::to_double(x);
    for (int64_t i = 0; i < n; ++i)
      ref::mlp_input_gradient(model, xd.data() + 2 * i, &ref_g[2 * i]);
    EXPECT_TRUE(AllClose(g.data(), ref_g.data(), nullptr, g.size(), 1e-6, 1e-5));
  }
}

TEST(MlpKink, LeakyReluDerivativeAtExactlyZeroIsTheSlope) {
  const int64_t n = 17;
  const std::vector<float> x = DiagonalRows(n, 9);
  const Mlp mlp = KinkNet(Activation::kLeakyReLU, true, 10);
  std::vector<float> g(2 * n, kNaN);
  mlp.gradient(x.data(), n, g.data());
  for (int64_t i = 0; i < n; ++i) {
    EXPECT_FLOAT_EQ(g[2 * i], 0.01f) << "row " << i;
    EXPECT_FLOAT_EQ(g[2 * i + 1], -0.01f) << "row " << i;
  }
}

TEST(MlpParameterGradient, ZeroCoefficientsEqualTheSubset) {
  const Mlp mlp(MlpSpec{3, {17, 5}, Activation::kSiLU}, 77);
  const ref::MlpModel model = Oracle(mlp);
  const int64_t n = 40;
  const int d = 3;
  std::vector<float> x = RandomNormal(n * d, 1.0, 78);
  std::vector<float> c = RandomUniform(n, -1.0, 1.0, 79);
  const std::vector<int64_t> zero_rows = {0, 3, 16, 17, 31, 39};
  for (int64_t r : zero_rows) {
    c[r] = 0.0f;
    for (int k = 0; k < d; ++k) x[r * d + k] *= 50.0f;  // far-out rows that must not count
  }
  std::vector<float> xs, cs;
  for (int64_t i = 0; i < n; ++i) {
    if (c[i] == 0.0f) continue;
    xs.insert(xs.end(), x.begin() + i * d, x.begin() + (i + 1) * d);
    cs.push_back(c[i]);
  }
  const int64_t m = static_cast<int64_t>(cs.size());
  std::vector<float> full(mlp.num_parameters(), kNaN), subset(mlp.num_parameters(), kNaN);
  mlp.parameter_gradient(x.data(), n, c.data(), full.data());
  mlp.parameter_gradient(xs.data(), m, cs.data(), subset.data());
  const std::vector<double> xsd = ref::to_double(xs), csd = ref::to_double(cs);
  const std::vector<double> ref_p = ref::mlp_parameter_gradient(model, xsd.data(), m, csd.data());
  const std::vector<double> mag =
      ref::mlp_parameter_gradient_magnitude(model, xsd.data(), m, csd.data());
  const double atol = 1e-5 * MaxAbsOrOne(mag);
  EXPECT_TRUE(AllClose(full.data(), ref_p.data(), mag.data(), full.size(), atol, 1e-4));
  EXPECT_TRUE(AllClose(subset.data(), ref_p.data(), mag.data(), subset.size(), atol, 1e-4));
  // full vs subset directly: only the summation order differs.
  const std::vector<double> subset_d = ref::to_double(subset);
  EXPECT_TRUE(AllClose(full.data(), subset_d.data(), mag.data(), full.size(), atol, 1e-4));
}

// The fused pass must equal its two-call definition exactly: same blocks, same chunks, same
// order of every sum. Coefficients depend on the energy and on the row, as CD's do.
TEST(MlpParameterGradient, FusedEnergyPassEqualsEnergyThenParameterGradientBitForBit) {
  uint64_t seed = 900;
  for (const MlpSpec& spec :
       {MlpSpec{2, {64, 64}, Activation::kReLU}, MlpSpec{6, {20, 37}, Activation::kSiLU},
        MlpSpec{3, {17, 5}, Activation::kGELU}}) {
    for (Activation act : kActivations) {
      MlpSpec s = spec;
      s.activation = act;
      const Mlp mlp(s, seed++);
      // 3000 rows: 94 blocks, so chunks hold two blocks each and the tail block is partial.
      for (int64_t n : {int64_t{1}, int64_t{31}, int64_t{257}, int64_t{3000}}) {
        SCOPED_TRACE(mlp.name() + ", batch " + std::to_string(n));
        const std::vector<float> x = RandomNormal(n * s.input_dim, 1.5, seed++);
        const int64_t half = n / 2;
        const auto coefficient = [&](int64_t row, float e) {
          return (row < half ? 1.0f : -1.0f) / static_cast<float>(n) + 0.25f * e;
        };
        std::vector<float> e_ref(n), c(n), g_ref(mlp.num_parameters());
        mlp.energy(x.data(), n, e_ref.data());
        for (int64_t i = 0; i < n; ++i) c[i] = coefficient(i, e_ref[i]);
        mlp.parameter_gradient(x.data(), n, c.data(), g_ref.data());

        std::vector<float> e(n, kNaN), g(mlp.num_parameters(), kNaN);
        mlp.energy_and_parameter_gradient(
            x.data(), n,
            [&](int64_t row0, int rows, const float* eb, float* cb) {
              for (int r = 0; r < rows; ++r) cb[r] = coefficient(row0 + r, eb[r]);
            },
            e.data(), g.data());
        EXPECT_EQ(std::memcmp(e.data(), e_ref.data(), n * sizeof(float)), 0) << "energies";
        EXPECT_EQ(std::memcmp(g.data(), g_ref.data(), g.size() * sizeof(float)), 0) << "gradient";
      }
    }
  }
}

TEST(MlpParameterGradient, FusedEnergyPassRejectsBadInput) {
  const Mlp mlp(MlpSpec{2, {8}, Activation::kTanh}, 3);
  std::vector<float> x(8, 0.5f), e(4), g(mlp.num_parameters());
  const auto unit = [](int64_t, int rows, const float*, float* c) { std::fill_n(c, rows, 1.0f); };
  ExpectInvalid([&] { mlp.energy_and_parameter_gradient(nullptr, 4, unit, e.data(), g.data()); },
                {"null pointer"});
  ExpectInvalid([&] { mlp.energy_and_parameter_gradient(x.data(), 4, unit, nullptr, g.data()); },
                {"null pointer"});
  ExpectInvalid([&] { mlp.energy_and_parameter_gradient(x.data(), 4, unit, e.data(), nullptr); },
                {"null pointer"});
  ExpectInvalid([&] { mlp.energy_and_parameter_gradient(x.data(), 0, unit, e.data(), g.data()); },
                {"got 0"});
}

TEST(MlpThreads, ResultsAreBitwiseIdenticalForOneAndTwoThreads) {
  const int saved = num_threads();
  const Mlp mlp(MlpSpec{2, {64, 64}, Activation::kSiLU}, 31);
  for (int64_t n : {int64_t{100}, int64_t{1000}}) {
    const std::vector<float> x = RandomNormal(n * 2, 1.0, 32 + n);
    const std::vector<float> c = RandomUniform(n, -1.0, 1.0, 33 + n);
    std::vector<float> e[2], g[2], ge[2], p[2];
    for (int t = 0; t < 2; ++t) {
      set_num_threads(t + 1);
      e[t].assign(n, kNaN);
      g[t].assign(n * 2, kNaN);
      ge[t].assign(n, kNaN);
      p[t].assign(mlp.num_parameters(), kNaN);
      mlp.energy(x.data(), n, e[t].data());
      mlp.gradient(x.data(), n, g[t].data(), ge[t].data());
      mlp.parameter_gradient(x.data(), n, c.data(), p[t].data());
    }
    SCOPED_TRACE("batch " + std::to_string(n));
    EXPECT_EQ(std::memcmp(e[0].data(), e[1].data(), n * sizeof(float)), 0);
    EXPECT_EQ(std::memcmp(g[0].data(), g[1].data(), 2 * n * sizeof(float)), 0);
    EXPECT_EQ(std::memcmp(ge[0].data(), ge[1].data(), n * sizeof(float)), 0);
    EXPECT_EQ(std::memcmp(p[0].data(), p[1].data(), p[0].size() * sizeof(float)), 0);
    EXPECT_TRUE(std::all_of(p[0].begin(), p[0].end(), [](float v) { return std::isfinite(v); }));
  }
  set_num_threads(saved);
}

// ---------------------------------------------------------------------------------------------
// Bad input

TEST(MlpBadInput, UnknownActivationNameListsTheValidNames) {
  const std::vector<std::string> valid = {"relu", "silu", "tanh", "softplus", "leaky_relu", "gelu"};
  EXPECT_EQ(activation_names(), valid);
  std::vector<std::string> needles = {"swish"};
  needles.insert(needles.end(), valid.begin(), valid.end());
  ExpectInvalid([] { parse_activation("swish"); }, needles);
  // Case-insensitive, and every name round-trips.
  EXPECT_EQ(parse_activation("ReLU"), Activation::kReLU);
  EXPECT_EQ(parse_activation("GELU"), Activation::kGELU);
  for (Activation act : kActivations) EXPECT_EQ(parse_activation(activation_name(act)), act);
}

TEST(MlpBadInput, BadSpecsAreRejected) {
  ExpectInvalid(
      [] {
        Mlp(MlpSpec{2, {64, 0}, Activation::kReLU}, 1);
      },
      {"hidden width 1", "got 0"});
  ExpectInvalid([] { Mlp(MlpSpec{2, {-3}, Activation::kReLU}, 1); }, {"hidden width 0", "got -3"});
  ExpectInvalid([] { Mlp(MlpSpec{0, {8}, Activation::kReLU}, 1); }, {"input dimension", "got 0"});
  ExpectInvalid([] { Mlp(MlpSpec{-2, {8}, Activation::kReLU}, 1); }, {"input dimension", "got -2"});
  ExpectInvalid([] { Mlp(MlpSpec{2, {}, Activation::kReLU}, 1); }, {"hidden layer"});
  ExpectInvalid([] { validate_mlp_spec(MlpSpec{2, {}, Activation::kReLU}); }, {"hidden layer"});
  EXPECT_NO_THROW(validate_mlp_spec(MlpSpec{1, {1}, Activation::kReLU}));
}

TEST(MlpBadInput, NullPointersAndNegativeBatchesLeaveOutputsUntouched) {
  const Mlp mlp(MlpSpec{2, {8}, Activation::kTanh}, 3);
  const int64_t n = 4;
  const std::vector<float> x = RandomNormal(n * 2, 1.0, 4), c = RandomUniform(n, -1, 1, 5);
  const float sentinel = 12345.0f;
  std::vector<float> e(n, sentinel), g(2 * n, sentinel), p(mlp.num_parameters(), sentinel);
  const auto untouched = [&] {
    for (float v : e) EXPECT_EQ(v, sentinel);
    for (float v : g) EXPECT_EQ(v, sentinel);
    for (float v : p) EXPECT_EQ(v, sentinel);
  };
  ExpectInvalid([&] { mlp.energy(nullptr, n, e.data()); }, {"null pointer"});
  ExpectInvalid([&] { mlp.energy(x.data(), n, nullptr); }, {"null pointer"});
  ExpectInvalid([&] { mlp.gradient(nullptr, n, g.data(), e.data()); }, {"null pointer"});
  ExpectInvalid([&] { mlp.gradient(x.data(), n, nullptr, e.data()); }, {"null pointer"});
  ExpectInvalid([&] { mlp.parameter_gradient(nullptr, n, c.data(), p.data()); }, {"null pointer"});
  ExpectInvalid([&] { mlp.parameter_gradient(x.data(), n, nullptr, p.data()); }, {"null pointer"});
  ExpectInvalid([&] { mlp.parameter_gradient(x.data(), n, c.data(), nullptr); }, {"null pointer"});
  untouched();
  ExpectInvalid([&] { mlp.energy(x.data(), -1, e.data()); }, {"-1"});
  ExpectInvalid([&] { mlp.gradient(x.data(), -3, g.data(), e.data()); }, {"-3"});
  ExpectInvalid([&] { mlp.parameter_gradient(x.data(), -2, c.data(), p.data()); }, {"-2"});
  untouched();
  // An empty batch is no work and writes nothing.
  EXPECT_NO_THROW(mlp.energy(x.data(), 0, e.data()));
  EXPECT_NO_THROW(mlp.gradient(x.data(), 0, g.data(), e.data()));
  untouched();
}

}  // namespace
}  // namespace cuebm
