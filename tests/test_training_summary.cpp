// training_summary: the end-of-run lines both trainers print.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>

#include "cuebm/training/training.hpp"

namespace cuebm {
namespace {

TrainReport FinishedRun() {
  TrainReport r;
  r.iterations = 400;
  r.train_seconds = 0.2;
  r.temperature = 0.01;
  r.temperature_source = "sigma^2";
  r.log_z = -1.5;
  r.test_nll = 0.75;
  r.data_entropy = 0.5;
  r.kl = 0.25;
  r.mmd2 = 0.001;
  r.modes_covered = 4;
  r.modes_total = 4;
  r.share_near_mode = 0.9;
  r.mode_weights = {0.25, 0.25, 0.3, 0.2};
  r.files = {"out/model.safetensors"};
  return r;
}

bool Contains(const std::string& s, const std::string& needle) {
  return s.find(needle) != std::string::npos;
}

TEST(TrainingSummary, NamesTimeMetricsModesAndFiles) {
  const std::string s = training_summary(FinishedRun());
  EXPECT_TRUE(
      Contains(s, "Training: 400 iterations in 0.200 s (0.500 ms per iteration), 0 skipped\n"))
      << s;
  EXPECT_TRUE(Contains(s, "Metrics at T = 0.01 (sigma^2): log Z = -1.5000, test NLL = 0.7500"))
      << s;
  EXPECT_TRUE(Contains(s, "KL(data||model) = 0.2500")) << s;
  EXPECT_TRUE(Contains(s,
                       "Modes covered: 4/4, samples near a mode: 90.0%, weights: 0.250 0.250 "
                       "0.300 0.200\n"))
      << s;
  EXPECT_TRUE(Contains(s, "wrote out/model.safetensors\n")) << s;
  EXPECT_FALSE(Contains(s, "WARNING")) << s;
  EXPECT_EQ(s.back(), '\n');
}

// A resumed run with no epochs left ran no iterations: 0 ms per iteration, not NaN.
TEST(TrainingSummary, ZeroIterationsGiveNoNan) {
  TrainReport r = FinishedRun();
  r.iterations = 0;
  r.train_seconds = 0;
  const std::string s = training_summary(r);
  EXPECT_TRUE(Contains(s, "0 iterations in 0.000 s (0.000 ms per iteration)")) << s;
  EXPECT_FALSE(Contains(s, "nan")) << s;
}

TEST(TrainingSummary, DivergedRunWarnsAndDatasetsWithoutModesOrEntropyOmitThem) {
  TrainReport r = FinishedRun();
  r.diverged = true;
  r.divergence = "at epoch 3: the loss reaches 1e+07";
  r.modes_covered = -1;
  r.data_entropy = std::numeric_limits<double>::quiet_NaN();
  const std::string s = training_summary(r);
  EXPECT_TRUE(Contains(s,
                       "WARNING: training diverged at epoch 3: the loss reaches 1e+07; the "
                       "metrics above are not meaningful\n"))
      << s;
  EXPECT_FALSE(Contains(s, "Modes covered")) << s;
  EXPECT_FALSE(Contains(s, "KL(data||model)")) << s;
}

}  // namespace
}  // namespace cuebm
