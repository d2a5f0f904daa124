// Adam and gradient-norm clipping against torch.optim.Adam / torch.nn.utils.clip_grad_norm_'s
// formulas, written out here in double precision.
//
// Tolerance: 1e-6 relative. The library keeps parameters and moments in float32 (unit
// roundoff 6e-8); three Adam steps add a few roundings each to m, v and the parameter, so the
// accumulated error is below ~10 ulp = 6e-7 relative. The reference uses the float32 values of
// the hyper-parameters, so only arithmetic differs.

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "cuebm/runtime/error.hpp"
#include "cuebm/training/optim.hpp"

namespace {

using cuebm::Adam;
using cuebm::AdamOptions;

// torch.optim.Adam (amsgrad = False, maximize = False), one parameter vector, in double:
//   g = grad + weight_decay * p
//   m = beta1 m + (1 - beta1) g;  v = beta2 v + (1 - beta2) g^2
//   p -= lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
struct TorchAdam {
  double lr, beta1, beta2, eps, weight_decay;
  std::vector<double> p, m, v;
  int t = 0;
  // decoupled = true: AdamW's weight decay instead (a wrong variant, to show it is rejected).
  void Step(const std::vector<float>& grad, bool decoupled = false) {
    ++t;
    const double bc1 = 1.0 - std::pow(beta1, t), bc2 = 1.0 - std::pow(beta2, t);
    for (std::size_t i = 0; i < p.size(); ++i) {
      double g = grad[i];
      if (decoupled) {
        p[i] *= 1.0 - lr * weight_decay;
      } else {
        g += weight_decay * p[i];
      }
      m[i] = beta1 * m[i] + (1.0 - beta1) * g;
      v[i] = beta2 * v[i] + (1.0 - beta2) * g * g;
      p[i] -= lr / bc1 * m[i] / (std::sqrt(v[i]) / std::sqrt(bc2) + eps);
    }
  }
};

TorchAdam MakeReference(const AdamOptions& o, const std::vector<float>& p0) {
  TorchAdam r{o.lr, o.beta1, o.beta2, o.eps, o.weight_decay, {p0.begin(), p0.end()}, {}, {}};
  r.m.assign(p0.size(), 0.0);
  r.v.assign(p0.size(), 0.0);
  return r;
}

void ExpectClose(std::span<const float> got, const std::vector<double>& ref, double rtol,
                 double atol, const std::string& what) {
  ASSERT_EQ(got.size(), ref.size());
  for (std::size_t i = 0; i < ref.size(); ++i)
    EXPECT_NEAR(got[i], ref[i], atol + rtol * std::abs(ref[i])) << what << " element " << i;
}

template <typename E, typename F>
void ExpectThrowWith(F&& f, const std::vector<std::string>& parts) {
  try {
    f();
    ADD_FAILURE() << "expected an exception";
  } catch (const E& e) {
    const std::string what = e.what();
    for (const std::string& p : parts)
      EXPECT_NE(what.find(p), std::string::npos) << "message '" << what << "' lacks '" << p << "'";
  }
}

// Parameters (kept away from 0 so a relative tolerance is meaningful) and three gradients per
// element: ordinary values of both signs, a zero gradient (the parameter must not move without
// weight decay), and a gradient of 1e-8 (sqrt(v_hat) ~ eps: checks where eps is added).
const std::vector<float> kParams = {0.5f, -1.25f, 2.0f, 0.75f, -0.3f, 1.1f};
const std::vector<std::vector<float>> kGrads = {
    {0.1f, -2.0f, 0.0f, 1e-8f, 0.7f, -0.05f},
    {-0.3f, -1.5f, 0.0f, 1e-8f, 0.2f, 0.4f},
    {0.25f, 0.5f, 0.0f, 1e-8f, -0.9f, 0.01f},
};

TEST(Adam, ThreeStepsMatchTorchFormulas) {
  for (const AdamOptions& o : {AdamOptions{0.01f, 0.9f, 0.999f, 1e-8f, 0.0f},
                               AdamOptions{0.05f, 0.8f, 0.99f, 1e-6f, 0.0f}}) {
    SCOPED_TRACE("lr " + std::to_string(o.lr) + " beta1 " + std::to_string(o.beta1));
    std::vector<float> p = kParams;
    Adam adam(p.size(), o);
    TorchAdam ref = MakeReference(o, kParams);
    for (int step = 0; step < 3; ++step) {
      adam.step(p, kGrads[step]);
      ref.Step(kGrads[step]);
      EXPECT_EQ(adam.steps(), step + 1);
      ExpectClose(p, ref.p, 1e-6, 0.0, "parameter after step " + std::to_string(step + 1));
      ExpectClose(adam.first_moment(), ref.m, 1e-6, 0.0, "m");
      ExpectClose(adam.second_moment(), ref.v, 1e-6, 0.0, "v");
    }
    // Zero gradient: the parameter did not move at all.
    EXPECT_EQ(p[2], kParams[2]);
    // The tiny gradient moved its parameter by about lr/2 per step at beta defaults (the eps
    // term is half the denominator), not by lr (eps ignored) nor ~0 (eps inside the sqrt).
    if (o.eps == 1e-8f) {
      EXPECT_NEAR(kParams[3] - p[3], 3 * o.lr / 2, 0.1 * o.lr);
    }
  }
}

TEST(Adam, WeightDecayIsAddedToTheGradient) {
  const AdamOptions o{0.01f, 0.9f, 0.999f, 1e-8f, 0.1f};
  std::vector<float> p = kParams;
  Adam adam(p.size(), o);
  TorchAdam ref = MakeReference(o, kParams), adamw = MakeReference(o, kParams);
  for (int step = 0; step < 3; ++step) {
    adam.step(p, kGrads[step]);
    ref.Step(kGrads[step]);
    adamw.Step(kGrads[step], /*decoupled=*/true);
  }
  ExpectClose(p, ref.p, 1e-6, 0.0, "parameter");
  ExpectClose(adam.first_moment(), ref.m, 1e-6, 0.0, "m");
  ExpectClose(adam.second_moment(), ref.v, 1e-6, 0.0, "v");
  // With decay the zero-gradient parameter moves (towards 0).
  EXPECT_LT(p[2], kParams[2]);
  // Decoupled (AdamW) decay gives different numbers: the check above can tell them apart.
  double worst = 0;
  for (std::size_t i = 0; i < p.size(); ++i)
    worst = std::max(worst, std::abs(adamw.p[i] - ref.p[i]));
  EXPECT_GT(worst, 1e-4);
  // The gradient passed in was not modified (weight decay is applied on the fly).
  EXPECT_EQ(kGrads[0][1], -2.0f);
}

TEST(Adam, LoadStateResumesExactly) {
  const AdamOptions o{0.02f, 0.9f, 0.999f, 1e-8f, 0.01f};
  std::vector<float> full = kParams;
  Adam a(full.size(), o);
  for (const auto& g : kGrads) a.step(full, g);

  std::vector<float> resumed = kParams;
  Adam first(resumed.size(), o);
  first.step(resumed, kGrads[0]);
  const std::vector<float> m(first.first_moment().begin(), first.first_moment().end());
  const std::vector<float> v(first.second_moment().begin(), first.second_moment().end());
  Adam second(resumed.size(), o);
  second.load_state(first.steps(), m, v);
  second.step(resumed, kGrads[1]);
  second.step(resumed, kGrads[2]);
  EXPECT_EQ(second.steps(), 3);
  EXPECT_EQ(std::memcmp(full.data(), resumed.data(), full.size() * sizeof(float)), 0);
  // Without the step count the bias correction would be that of step 1 and 2: different.
  std::vector<float> wrong = kParams;
  Adam w(wrong.size(), o);
  w.step(wrong, kGrads[0]);
  Adam w2(wrong.size(), o);
  w2.load_state(0, m, v);
  w2.step(wrong, kGrads[1]);
  w2.step(wrong, kGrads[2]);
  EXPECT_NE(std::memcmp(full.data(), wrong.data(), full.size() * sizeof(float)), 0);
}

TEST(Adam, BadOptionsAndShapesAreRejected) {
  auto make = [](AdamOptions o) { return [o] { Adam a(4, o); }; };
  AdamOptions o;
  o.lr = 0.0f;
  ExpectThrowWith<cuebm::InvalidArgument>(make(o), {"lr", "> 0", "0.000000"});
  o.lr = -1e-3f;
  ExpectThrowWith<cuebm::InvalidArgument>(make(o), {"lr", "-0.001"});
  o.lr = std::numeric_limits<float>::quiet_NaN();
  ExpectThrowWith<cuebm::InvalidArgument>(make(o), {"lr"});
  o = AdamOptions{};
  o.beta1 = 1.0f;
  ExpectThrowWith<cuebm::InvalidArgument>(make(o), {"betas", "[0, 1)", "1.000000"});
  o = AdamOptions{};
  o.beta2 = 1.0f;
  ExpectThrowWith<cuebm::InvalidArgument>(make(o), {"betas", "[0, 1)"});
  o = AdamOptions{};
  o.beta1 = -0.1f;
  ExpectThrowWith<cuebm::InvalidArgument>(make(o), {"betas"});
  o = AdamOptions{};
  o.eps = -1e-8f;
  ExpectThrowWith<cuebm::InvalidArgument>(make(o), {"eps"});
  o = AdamOptions{};
  o.weight_decay = -0.1f;
  ExpectThrowWith<cuebm::InvalidArgument>(make(o), {"weight_decay"});

  // Mismatched sizes: an error naming the sizes, and nothing changes.
  Adam a(4, AdamOptions{});
  std::vector<float> p = {1, 2, 3, 4}, g3 = {1, 1, 1};
  ExpectThrowWith<cuebm::InvalidArgument>([&] { a.step(p, g3); }, {"4", "3"});
  EXPECT_EQ(a.steps(), 0);
  EXPECT_EQ(p, (std::vector<float>{1, 2, 3, 4}));
  const std::vector<float> m3(3, 0.0f), v4(4, 0.0f);
  ExpectThrowWith<cuebm::InvalidArgument>([&] { a.load_state(1, m3, v4); }, {"4"});
}

// ---------------------------------------------------------------------------------------------
// Clipping.

std::vector<float> RandomGrad(std::size_t n, uint32_t seed, double scale) {
  std::mt19937 gen(seed);
  std::normal_distribution<double> normal(0.0, scale);
  std::vector<float> g(n);
  for (float& x : g) x = static_cast<float>(normal(gen));
  return g;
}

double NormDouble(const std::vector<float>& g) {
  double s = 0;
  for (float x : g) s += static_cast<double>(x) * x;
  return std::sqrt(s);
}

TEST(ClipGradNorm, BelowThresholdIsUnchanged) {
  std::vector<float> g = RandomGrad(1000, 1, 0.01);  // norm ~0.32
  const std::vector<float> before = g;
  const double norm = NormDouble(g);
  ASSERT_LT(norm, 1.0);
  EXPECT_NEAR(cuebm::clip_grad_norm(g, 1.0), norm, 1e-12 * norm);
  EXPECT_EQ(std::memcmp(g.data(), before.data(), g.size() * sizeof(float)), 0);
  EXPECT_NEAR(cuebm::grad_norm(g), norm, 1e-12 * norm);
}

TEST(ClipGradNorm, AboveThresholdScalesByMaxNormOverNormPlusEps) {
  for (double max_norm : {1.0, 0.05}) {
    std::vector<float> g = RandomGrad(1000, 2, 0.5);  // norm ~16
    const std::vector<float> before = g;
    const double norm = NormDouble(g);
    const double returned = cuebm::clip_grad_norm(g, max_norm);
    EXPECT_NEAR(returned, norm, 1e-12 * norm) << "the norm before clipping is returned";
    const double scale = max_norm / (norm + 1e-6);
    for (std::size_t i = 0; i < g.size(); ++i)
      EXPECT_NEAR(g[i], before[i] * scale, 1e-6 * std::abs(before[i] * scale)) << "element " << i;
    EXPECT_NEAR(NormDouble(g), max_norm * norm / (norm + 1e-6), 1e-6 * max_norm);
  }
  // The 1e-6 is visible on a small norm: norm 2e-5 clipped to 1e-5 scales by 1e-5 / 2.1e-5.
  std::vector<float> small = {1.2e-5f, 1.6e-5f};
  const double norm = NormDouble(small);
  cuebm::clip_grad_norm(small, 1e-5);
  EXPECT_NEAR(small[0], 1.2e-5 * 1e-5 / (norm + 1e-6), 1e-6 * small[0]);
  EXPECT_GT(std::abs(small[0] - 1.2e-5 * 1e-5 / norm), 1e-5 * small[0]);
}

TEST(ClipGradNorm, EveryLengthCountsEveryElement) {
  // The norm is summed in eight running sums plus a tail: lengths 1 to 17 cover every tail and
  // whole groups; the tutorial's 4353 parameters are 544 groups and one tail element.
  for (std::size_t n : {1, 2, 3, 5, 7, 8, 9, 15, 16, 17, 4353}) {
    const std::vector<float> g = RandomGrad(n, static_cast<uint32_t>(n), 1.0);
    EXPECT_NEAR(cuebm::grad_norm(g), NormDouble(g), 1e-14 * NormDouble(g)) << "length " << n;
  }
  for (std::size_t n = 1; n <= 17; ++n) {
    std::vector<float> one_hot(n, 0.0f);
    one_hot.back() = 3.0f;  // the last element alone: a dropped tail gives 0
    EXPECT_EQ(cuebm::grad_norm(one_hot), 3.0) << "length " << n;
  }
}

TEST(ClipGradNorm, NormIsAccumulatedInDouble) {
  // Squares of 1e20 overflow float32; the norm sqrt(n) 1e20 must not.
  std::vector<float> g(100, 1e20f);
  const double ref = NormDouble(g);
  EXPECT_TRUE(std::isfinite(cuebm::grad_norm(g)));
  EXPECT_NEAR(cuebm::grad_norm(g), ref, 1e-12 * ref);
  // A million small terms: float accumulation would lose ~1e-5 relative or more; double does not.
  std::vector<float> many = RandomGrad(1000000, 3, 1e-3);
  const double ref2 = NormDouble(many);
  EXPECT_NEAR(cuebm::grad_norm(many), ref2, 1e-10 * ref2);
  EXPECT_NEAR(cuebm::clip_grad_norm(many, 0.5 * ref2), ref2, 1e-10 * ref2);
}

}  // namespace
