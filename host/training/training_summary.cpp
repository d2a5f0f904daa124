#include <cmath>
#include <cstdarg>
#include <cstdio>
#include <string>

#include "cuebm/training/training.hpp"

namespace cuebm {
namespace {

__attribute__((format(printf, 2, 3))) void append(std::string& out, const char* format, ...) {
  char line[512];
  va_list args;
  va_start(args, format);
  std::vsnprintf(line, sizeof line, format, args);
  va_end(args);
  out += line;
}

}  // namespace

std::string training_summary(const TrainReport& r) {
  std::string s;
  // A resumed run that had no epochs left ran no iterations: no time per iteration.
  const double ms_per_iteration =
      r.iterations > 0 ? 1e3 * r.train_seconds / static_cast<double>(r.iterations) : 0.0;
  append(s, "Training: %lld iterations in %.3f s (%.3f ms per iteration), %lld skipped\n",
         static_cast<long long>(r.iterations), r.train_seconds, ms_per_iteration,
         static_cast<long long>(r.skipped));
  append(s, "Metrics at T = %g (%s): log Z = %.4f, test NLL = %.4f nats", r.temperature,
         r.temperature_source.c_str(), r.log_z, r.test_nll);
  if (std::isfinite(r.data_entropy))
    append(s, ", H(data) = %.4f, KL(data||model) = %.4f", r.data_entropy, r.kl);
  append(s, ", MMD^2 = %.5f\n", r.mmd2);
  if (r.modes_covered >= 0) {
    append(s, "Modes covered: %d/%d, samples near a mode: %.1f%%, weights:", r.modes_covered,
           r.modes_total, 100.0 * r.share_near_mode);
    for (double w : r.mode_weights) append(s, " %.3f", w);
    s += "\n";
  }
  if (r.diverged)
    s += "WARNING: training diverged " + r.divergence + "; the metrics above are not meaningful\n";
  for (const auto& f : r.files) s += "wrote " + f + "\n";
  return s;
}

}  // namespace cuebm
