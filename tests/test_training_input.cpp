// Tests of run_training's input handling (issue 9, section 5): a named dataset trains with its
// own default parameters (gaussian_mixture with the tutorial's), a batch larger than the dataset
// is the whole dataset, and a diverging run is reported (TrainReport::diverged, one warning
// line) without being stopped, while the tutorial settings report nothing.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "cuebm/data/datasets.hpp"
#include "cuebm/training/training.hpp"

namespace cuebm {
namespace {

// Small, fast settings (the tutorial's otherwise), no files.
TrainConfig small(const std::string& dataset) {
  TrainConfig c;
  c.dataset = dataset;
  c.model.hidden = {16, 16};
  c.epochs = 1;
  c.output_dir.clear();
  c.figure_samples = 64;
  c.final_steps = 20;
  return c;
}

const auto quiet = [](const std::string&) {};

TEST(TrainingInput, ResolvedDatasetParams) {
  TrainConfig c;
  EXPECT_TRUE(c.dataset_params.empty());
  const std::map<std::string, double> tutorial = {
      {"n", 500}, {"components", 4}, {"std", 0.1}, {"radius", 1.5}};
  EXPECT_EQ(resolved_dataset_params(c), tutorial);
  for (const std::string& name : dataset_names()) {
    c.dataset = name;
    if (name != "gaussian_mixture") {
      EXPECT_TRUE(resolved_dataset_params(c).empty()) << name;
    }
  }
  // Given parameters are used as they are, for any dataset.
  c.dataset = "gaussian_mixture";
  c.dataset_params = {{"n", 100}};
  EXPECT_EQ(resolved_dataset_params(c), c.dataset_params);
  // The checkpoint fingerprint of the tutorial is the one it always was.
  EXPECT_EQ(training_fingerprint(TrainConfig{}).at("dataset_params"),
            "components=4,n=500,radius=1.5,std=0.10000000000000001");
}

TEST(TrainingInput, EveryDatasetTrainsWithItsOwnDefaults) {
  for (const std::string& name : dataset_names()) {
    TrainReport r;
    std::vector<std::string> lines;
    ASSERT_NO_THROW(
        r = run_training(small(name), [&](const std::string& l) { lines.push_back(l); }))
        << name;
    // One epoch: the full batches of the dataset at its default size (the last partial one
    // dropped).
    const Dataset data = make_dataset(name, resolved_dataset_params(small(name)), 42);
    const int64_t batch = std::min<int64_t>(256, data.n);
    EXPECT_EQ(r.iterations, data.n / batch) << name;
    EXPECT_EQ(r.epoch_loss.size(), 1u) << name;
    EXPECT_TRUE(std::isfinite(r.epoch_loss[0])) << name;
    EXPECT_FALSE(r.diverged) << name << ": " << r.divergence;
    // grid has 100 points by default: one batch of all of them, said in the log.
    if (data.n < 256) {
      bool said = false;
      for (const auto& l : lines) said = said || l.find("larger than the dataset") != l.npos;
      EXPECT_TRUE(said) << name;
    }
  }
}

TEST(TrainingInput, DivergenceIsReportedOnceAndTheRunFinishes) {
  TrainConfig c = small("gaussian_mixture");
  c.epochs = 3;
  c.step_size = 1e9f;
  std::vector<std::string> warnings;
  const TrainReport r =
      run_training(c, quiet, {}, [&](const std::string& w) { warnings.push_back(w); });
  EXPECT_EQ(r.epoch_loss.size(), 3u);  // ran to the end
  EXPECT_TRUE(r.diverged);
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_EQ(warnings[0], "WARNING: training diverged " + r.divergence);
  EXPECT_EQ(r.divergence.rfind("at epoch 1: the negatives reach |x| = ", 0), 0u) << r.divergence;
  EXPECT_NE(r.divergence.find("Langevin step size 1e+09"), std::string::npos) << r.divergence;
  // The tutorial's step size on the same small run: nothing.
  c.step_size = 0.1f;
  warnings.clear();
  const TrainReport ok =
      run_training(c, quiet, {}, [&](const std::string& w) { warnings.push_back(w); });
  EXPECT_FALSE(ok.diverged) << ok.divergence;
  EXPECT_TRUE(ok.divergence.empty());
  EXPECT_TRUE(warnings.empty());
}

TEST(TrainingInput, AnExplodingLossIsDivergenceToo) {
  // Negatives that cannot move (step size 1e-12, sigma 1e-6) stay on the data, while lr 100
  // without clipping blows the energies up: the loss criterion, not the range one.
  TrainConfig c = small("gaussian_mixture");
  c.epochs = 3;
  c.adam.lr = 100;
  c.max_grad_norm = 0;
  c.step_size = 1e-12f;
  c.noise_scale = 1e-6f;
  std::vector<std::string> warnings;
  const TrainReport r =
      run_training(c, quiet, {}, [&](const std::string& w) { warnings.push_back(w); });
  EXPECT_EQ(r.epoch_loss.size(), 3u);
  ASSERT_TRUE(r.diverged);
  EXPECT_NE(r.divergence.find("the mean loss is "), std::string::npos) << r.divergence;
  EXPECT_NE(r.divergence.find("beyond +-1e+06 (lr 100;"), std::string::npos) << r.divergence;
  EXPECT_EQ(warnings.size(), 1u);
}

}  // namespace
}  // namespace cuebm
