// Step-size and noise schedules (behaviour.md). value(t) is the value after t steps; Langevin
// step t uses value(t) (the newest TorchEBM convention), and schedules restart at every call.
#pragma once

#include <memory>
#include <vector>

namespace cuebm {

class Schedule {
 public:
  enum class Kind { kConstant, kExponential, kLinear, kCosine, kMultiStep };

  // A plain float is a constant schedule.
  Schedule(float value = 1.0f);  // NOLINT(google-explicit-constructor): floats convert.

  static Schedule constant(float value);
  // max(min_value, start * rate^t)
  static Schedule exponential(float start, float rate, float min_value = 0.0f);
  // start + (end - start) t / n_steps, then end
  static Schedule linear(float start, float end, int n_steps);
  // end + (start - end)(1 + cos(pi t / n_steps)) / 2, then end
  static Schedule cosine(float start, float end, int n_steps);
  // start * gamma^(number of milestones <= t)
  static Schedule multistep(float start, std::vector<int> milestones, float gamma);
  // From start * factor linearly up to start over warmup_steps, then this schedule at t - W.
  Schedule with_warmup(int warmup_steps, float factor) const;

  Kind kind() const { return kind_; }
  float start() const { return start_; }
  double value(int64_t t) const;
  // value(0) .. value(n - 1) as float; throws InvalidArgument if any is not finite and > 0.
  std::vector<float> values(int n, const char* what) const;

 private:
  Kind kind_ = Kind::kConstant;
  float start_ = 1.0f, end_ = 1.0f, rate_ = 1.0f, min_ = 0.0f;
  int n_steps_ = 1;
  std::vector<int> milestones_;
  int warmup_steps_ = 0;
  float warmup_factor_ = 1.0f;
};

}  // namespace cuebm
