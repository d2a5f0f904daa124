// Tests of the step-size and noise schedules (include/cuebm/sampling/schedule.hpp) against the
// closed forms of shared/spec/behaviour.md ("value after t steps"), evaluated here in double from
// the same float parameters: |got - ref| <= 1e-12 |ref| (both sides are a few double operations).
#include "cuebm/sampling/schedule.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <numbers>
#include <string>
#include <vector>

#include "cuebm/runtime/error.hpp"
#include "cuebm/sampling/langevin.hpp"

namespace cuebm {
namespace {

constexpr double kPi = std::numbers::pi;

template <typename F>
void ExpectInvalid(F&& f, const std::vector<std::string>& needles) {
  try {
    f();
    ADD_FAILURE() << "no exception; expected InvalidArgument";
  } catch (const InvalidArgument& e) {
    const std::string msg = e.what();
    for (const auto& n : needles)
      EXPECT_NE(msg.find(n), std::string::npos) << "message '" << msg << "' lacks '" << n << "'";
  }
}

// value(t) against closed(t) for every t in ts.
void ExpectSchedule(const Schedule& s, const std::function<double(int64_t)>& closed,
                    const std::vector<int64_t>& ts) {
  for (int64_t t : ts) {
    const double want = closed(t);
    EXPECT_NEAR(s.value(t), want, 1e-12 * std::abs(want)) << "t = " << t;
  }
}

std::vector<int64_t> Range(int64_t from, int64_t to) {
  std::vector<int64_t> v;
  for (int64_t t = from; t < to; ++t) v.push_back(t);
  return v;
}

TEST(ScheduleTest, ConstantAndPlainFloat) {
  const float v = 0.037f;
  const Schedule c = Schedule::constant(v);
  EXPECT_EQ(c.kind(), Schedule::Kind::kConstant);
  ExpectSchedule(c, [&](int64_t) { return double{v}; }, {0, 1, 7, 100, 100000});
  // A plain float converts to a constant schedule, also where an option expects a Schedule.
  const Schedule f = 0.25f;
  EXPECT_EQ(f.kind(), Schedule::Kind::kConstant);
  EXPECT_EQ(f.start(), 0.25f);
  ExpectSchedule(f, [](int64_t) { return 0.25; }, {0, 1, 50, 1000000});
  LangevinOptions options;
  options.step_size = 0.01f;
  options.noise_scale = 0.3f;
  EXPECT_EQ(options.step_size.kind(), Schedule::Kind::kConstant);
  EXPECT_EQ(options.step_size.value(123), double{0.01f});
  EXPECT_EQ(options.noise_scale.value(0), double{0.3f});
  const std::vector<float> vals = Schedule(0.5f).values(4, "noise scale");
  EXPECT_EQ(vals, std::vector<float>(4, 0.5f));
}

TEST(ScheduleTest, ExponentialWithFloor) {
  const float s0 = 0.1f, r = 0.9f, lo = 0.03f;
  const Schedule s = Schedule::exponential(s0, r, lo);
  EXPECT_EQ(s.kind(), Schedule::Kind::kExponential);
  const auto closed = [&](int64_t t) {
    return std::max(double{lo}, double{s0} * std::pow(double{r}, static_cast<double>(t)));
  };
  ExpectSchedule(s, closed, Range(0, 40));
  ExpectSchedule(s, closed, {100, 1000});
  // The floor is reached (0.1 0.9^t < 0.03 from t = 12) and held.
  EXPECT_EQ(s.value(1000), double{lo});
  EXPECT_GT(s.value(5), double{lo});
  // Default floor 0: pure decay.
  const Schedule d = Schedule::exponential(2.0f, 0.5f);
  ExpectSchedule(d, [](int64_t t) { return 2.0 * std::pow(0.5, static_cast<double>(t)); },
                 {0, 1, 2, 10, 30});
}

TEST(ScheduleTest, LinearThenEnd) {
  const float s0 = 0.2f, s1 = 0.05f;
  const int n = 30;
  const Schedule s = Schedule::linear(s0, s1, n);
  EXPECT_EQ(s.kind(), Schedule::Kind::kLinear);
  const auto closed = [&](int64_t t) {
    return t >= n ? double{s1} : double{s0} + (double{s1} - double{s0}) * t / n;
  };
  ExpectSchedule(s, closed, Range(0, n + 5));
  ExpectSchedule(s, closed, {100, 100000});
  EXPECT_EQ(s.value(0), double{s0});
  EXPECT_EQ(s.value(n), double{s1});
  EXPECT_EQ(s.value(n + 1000), double{s1});
  // Increasing schedules work the same way.
  const Schedule up = Schedule::linear(0.01f, 0.1f, 9);
  ExpectSchedule(
      up,
      [](int64_t t) {
        return t >= 9 ? double{0.1f} : double{0.01f} + (double{0.1f} - double{0.01f}) * t / 9;
      },
      Range(0, 12));
}

TEST(ScheduleTest, CosineThenEnd) {
  const float s0 = 0.5f, s1 = 0.02f;
  const int n = 40;
  const Schedule s = Schedule::cosine(s0, s1, n);
  EXPECT_EQ(s.kind(), Schedule::Kind::kCosine);
  const auto closed = [&](int64_t t) {
    if (t >= n) return double{s1};
    return double{s1} + (double{s0} - double{s1}) * (1.0 + std::cos(kPi * t / n)) / 2.0;
  };
  ExpectSchedule(s, closed, Range(0, n + 5));
  ExpectSchedule(s, closed, {500});
  EXPECT_NEAR(s.value(0), s0, 1e-12);
  EXPECT_NEAR(s.value(n / 2), (double{s0} + s1) / 2.0, 1e-12);  // halfway: the mean
  EXPECT_EQ(s.value(n), double{s1});
}

TEST(ScheduleTest, MultistepCountsMilestonesUpToT) {
  const float s0 = 0.3f, gamma = 0.5f;
  const std::vector<int> milestones = {30, 10, 20};  // unsorted on purpose
  const Schedule s = Schedule::multistep(s0, milestones, gamma);
  EXPECT_EQ(s.kind(), Schedule::Kind::kMultiStep);
  const auto closed = [&](int64_t t) {
    int passed = 0;
    for (int m : milestones) passed += m <= t;
    return double{s0} * std::pow(double{gamma}, passed);
  };
  ExpectSchedule(s, closed, Range(0, 45));
  ExpectSchedule(s, closed, {1000});
  EXPECT_EQ(s.value(9), double{s0});
  EXPECT_EQ(s.value(10), double{s0} * gamma);  // a milestone counts at its own step
  EXPECT_EQ(s.value(30), double{s0} * gamma * gamma * gamma);
}

TEST(ScheduleTest, WarmupThenTheMainScheduleShifted) {
  const int w = 8;
  const float f = 0.1f;
  // Warmup from s0 f linearly to s0 over W steps, then the main schedule at t - W.
  const auto warm = [&](double s0, int64_t t, const std::function<double(int64_t)>& main) {
    if (t < w) return s0 * f + (s0 - s0 * f) * static_cast<double>(t) / w;
    return main(t - w);
  };
  {
    const float s0 = 0.2f, s1 = 0.05f;
    const int n = 20;
    const Schedule s = Schedule::linear(s0, s1, n).with_warmup(w, f);
    EXPECT_EQ(s.kind(), Schedule::Kind::kLinear);
    const auto main = [&](int64_t t) {
      return t >= n ? double{s1} : double{s0} + (double{s1} - double{s0}) * t / n;
    };
    ExpectSchedule(
        s, [&](int64_t t) { return warm(s0, t, main); }, Range(0, w + n + 5));
    EXPECT_NEAR(s.value(0), double{s0} * f, 1e-12);
    EXPECT_EQ(s.value(w), double{s0});
    EXPECT_EQ(s.value(w + n), double{s1});
  }
  {
    const float s0 = 1.0f, r = 0.8f;
    const Schedule s = Schedule::exponential(s0, r).with_warmup(w, f);
    const auto main = [&](int64_t t) { return double{s0} * std::pow(double{r}, double(t)); };
    ExpectSchedule(
        s, [&](int64_t t) { return warm(s0, t, main); }, Range(0, 30));
  }
  {
    const float s0 = 0.4f;
    const Schedule s = Schedule(s0).with_warmup(w, f);
    ExpectSchedule(
        s, [&](int64_t t) { return warm(s0, t, [&](int64_t) { return double{s0}; }); },
        Range(0, 20));
  }
  // Zero warmup steps: the main schedule unchanged.
  const Schedule plain = Schedule::cosine(0.5f, 0.1f, 10);
  const Schedule zero = plain.with_warmup(0, 0.01f);
  for (int64_t t = 0; t < 15; ++t) EXPECT_EQ(zero.value(t), plain.value(t)) << "t = " << t;
}

TEST(ScheduleTest, ValuesAreTheFloatValuesOfEachStep) {
  const Schedule s = Schedule::cosine(0.5f, 0.02f, 25).with_warmup(5, 0.2f);
  const std::vector<float> v = s.values(40, "step size");
  ASSERT_EQ(v.size(), 40u);
  for (int t = 0; t < 40; ++t) EXPECT_EQ(v[t], static_cast<float>(s.value(t))) << "t = " << t;
  EXPECT_TRUE(s.values(0, "step size").empty());
}

TEST(ScheduleTest, ValuesRejectNonPositiveStepsNamingTheStep) {
  // Linear from 1 to -1 over 10 steps: value(t) = 1 - t/5, not > 0 from t = 5.
  const Schedule falling = Schedule::linear(1.0f, -1.0f, 10);
  EXPECT_NO_THROW(falling.values(5, "step size"));
  int first_bad = 0;
  while (falling.value(first_bad) > 0.0) ++first_bad;
  ExpectInvalid([&] { falling.values(20, "step size"); },
                {"step size", "at step " + std::to_string(first_bad)});
  // Exponential decay underflows float: the first step whose float value is 0.
  const Schedule decay = Schedule::exponential(1.0f, 0.5f);
  int underflow = 0;
  while (static_cast<float>(std::pow(0.5, underflow)) > 0.0f) ++underflow;
  ExpectInvalid([&] { decay.values(underflow + 10, "noise scale"); },
                {"noise scale", "at step " + std::to_string(underflow)});
  EXPECT_NO_THROW(decay.values(underflow, "noise scale"));
  // Non-finite and non-positive constants fail at step 0.
  ExpectInvalid([] { Schedule(std::numeric_limits<float>::quiet_NaN()).values(3, "eta"); },
                {"eta", "at step 0"});
  ExpectInvalid([] { Schedule(std::numeric_limits<float>::infinity()).values(3, "eta"); },
                {"eta", "at step 0"});
  ExpectInvalid([] { Schedule(0.0f).values(3, "eta"); }, {"eta", "at step 0"});
  ExpectInvalid([] { Schedule(-0.1f).values(1, "eta"); }, {"eta", "at step 0"});
  // A warmup from factor 0 starts at 0.
  ExpectInvalid([] { Schedule(0.1f).with_warmup(4, 0.0f).values(4, "eta"); }, {"eta", "at step 0"});
}

TEST(ScheduleTest, BadFactoryArgumentsAreRejected) {
  ExpectInvalid([] { Schedule::exponential(1.0f, 0.0f); }, {"rate"});
  ExpectInvalid([] { Schedule::exponential(1.0f, -0.5f); }, {"rate"});
  ExpectInvalid([] { Schedule::linear(1.0f, 0.5f, 0); }, {"n_steps"});
  ExpectInvalid([] { Schedule::cosine(1.0f, 0.5f, -3); }, {"n_steps"});
  ExpectInvalid([] { Schedule::multistep(1.0f, {5}, 0.0f); }, {"gamma"});
  ExpectInvalid([] { Schedule(1.0f).with_warmup(-1, 0.5f); }, {"warmup", "-1"});
}

}  // namespace
}  // namespace cuebm
