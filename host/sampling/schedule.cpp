#include "cuebm/sampling/schedule.hpp"

#include <algorithm>
#include <cmath>

#include "cuebm/runtime/error.hpp"

namespace cuebm {
namespace {
void require_positive(double v, const char* what) {
  if (!(v > 0.0) || !std::isfinite(v))
    throw InvalidArgument(std::string("schedule: ") + what + " must be finite and > 0, got " +
                          std::to_string(v));
}
}  // namespace

Schedule::Schedule(float value) : start_(value), end_(value) {}

Schedule Schedule::constant(float value) { return Schedule(value); }

Schedule Schedule::exponential(float start, float rate, float min_value) {
  require_positive(rate, "exponential rate");
  Schedule s(start);
  s.kind_ = Kind::kExponential;
  s.rate_ = rate;
  s.min_ = min_value;
  return s;
}

Schedule Schedule::linear(float start, float end, int n_steps) {
  require_positive(n_steps, "linear n_steps");
  Schedule s(start);
  s.kind_ = Kind::kLinear;
  s.end_ = end;
  s.n_steps_ = n_steps;
  return s;
}

Schedule Schedule::cosine(float start, float end, int n_steps) {
  require_positive(n_steps, "cosine n_steps");
  Schedule s = linear(start, end, n_steps);
  s.kind_ = Kind::kCosine;
  return s;
}

Schedule Schedule::multistep(float start, std::vector<int> milestones, float gamma) {
  require_positive(gamma, "multistep gamma");
  std::sort(milestones.begin(), milestones.end());
  Schedule s(start);
  s.kind_ = Kind::kMultiStep;
  s.milestones_ = std::move(milestones);
  s.rate_ = gamma;
  return s;
}

Schedule Schedule::with_warmup(int warmup_steps, float factor) const {
  if (warmup_steps < 0)
    throw InvalidArgument("schedule: warmup steps must be >= 0, got " +
                          std::to_string(warmup_steps));
  Schedule s = *this;
  s.warmup_steps_ = warmup_steps;
  s.warmup_factor_ = factor;
  return s;
}

double Schedule::value(int64_t t) const {
  const double s0 = start_;
  if (t < warmup_steps_) {
    const double from = s0 * warmup_factor_;
    return from + (s0 - from) * static_cast<double>(t) / warmup_steps_;
  }
  t -= warmup_steps_;
  switch (kind_) {
    case Kind::kExponential:
      return std::max<double>(min_, s0 * std::pow(static_cast<double>(rate_), t));
    case Kind::kLinear:
      return t >= n_steps_ ? end_ : s0 + (end_ - s0) * static_cast<double>(t) / n_steps_;
    case Kind::kCosine:
      return t >= n_steps_ ? end_
                           : end_ + (s0 - end_) * (1.0 + std::cos(M_PI * t / n_steps_)) / 2.0;
    case Kind::kMultiStep: {
      const auto passed =
          std::upper_bound(milestones_.begin(), milestones_.end(), t) - milestones_.begin();
      return s0 * std::pow(static_cast<double>(rate_), static_cast<double>(passed));
    }
    case Kind::kConstant:
    default:
      return s0;
  }
}

std::vector<float> Schedule::values(int n, const char* what) const {
  std::vector<float> v(std::max(n, 0));
  for (int t = 0; t < n; ++t) {
    v[t] = static_cast<float>(value(t));
    if (!(v[t] > 0.0f) || !std::isfinite(v[t]))
      throw InvalidArgument(std::string(what) + " must be finite and > 0 at every step, got " +
                            std::to_string(v[t]) + " at step " + std::to_string(t));
  }
  return v;
}

}  // namespace cuebm
