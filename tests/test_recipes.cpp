// Tests of the training recipes and the defaults around them (issue 13, "Defaults that work"):
// resolve_recipe's precedence, the per-dataset plot/metric box, the divergence verdict of the
// final metrics, and that --recipe auto learns every dataset at a small budget, judged by
// oracles computed here from the model's energy (mass near the mixtures' modes, mass on the
// checkerboard's squares) or by test NLL bounds taken from docs/quality.md.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "cuebm/data/datasets.hpp"
#include "cuebm/models/mlp.hpp"
#include "cuebm/runtime/error.hpp"
#include "cuebm/training/training.hpp"

namespace cuebm {
namespace {

const auto quiet = [](const std::string&) {};

// A run without files and with few final samples (the metrics' model part is what counts).
TrainConfig run_config(const std::string& dataset, const std::string& recipe, int epochs) {
  TrainConfig c;
  c.dataset = dataset;
  c.recipe = recipe;
  c.epochs = epochs;
  c.output_dir.clear();
  c.figure_samples = 16;
  c.final_steps = 10;
  c.threads = 1;
  return c;
}

TEST(Recipes, SettingsPerDataset) {
  EXPECT_EQ(recipe_names(), (std::vector<std::string>{"tutorial", "auto"}));
  for (const std::string& name : dataset_names()) {
    EXPECT_TRUE(recipe_settings("tutorial", name).empty()) << name;
    const auto s = recipe_settings("auto", name);
    EXPECT_EQ(s.at("energy-reg"), "1") << name;
    if (name == "gaussian_mixture") {
      EXPECT_EQ(s.size(), 1u);
    } else {
      EXPECT_EQ(s.at("sampler"), "mala") << name;
      EXPECT_EQ(s.size(), name == "grid" ? 3u : 2u) << name;
    }
  }
  EXPECT_EQ(recipe_settings("auto", "grid").at("hidden"), "128 128");
  EXPECT_THROW(recipe_settings("best", "grid"), InvalidArgument);
}

TEST(Recipes, ExplicitSettingsOverrideTheRecipe) {
  TrainConfig c;
  c.dataset = "grid";
  c.output_dir.clear();
  // The tutorial recipe changes nothing.
  std::map<std::string, std::string> applied;
  TrainConfig r = resolve_recipe(c, &applied);
  EXPECT_TRUE(applied.empty());
  EXPECT_EQ(training_fingerprint(r), training_fingerprint(c));
  // auto fills the settings still at the tutorial's values.
  c.recipe = "auto";
  r = resolve_recipe(c, &applied);
  EXPECT_EQ(r.cd.energy_reg_weight, 1.0f);
  EXPECT_EQ(r.negatives.kind, NegativeSampler::mala);
  EXPECT_EQ(r.model.hidden, (std::vector<int>{128, 128}));
  EXPECT_EQ(applied.size(), 3u);
  // Idempotent: resolving again changes and reports nothing.
  EXPECT_EQ(training_fingerprint(resolve_recipe(r, &applied)), training_fingerprint(r));
  EXPECT_TRUE(applied.empty());
  // The fingerprint (checkpoints) and validation see the resolved settings.
  EXPECT_EQ(training_fingerprint(c).at("sampler"), "mala");
  EXPECT_EQ(training_fingerprint(c).at("widths"), "2,128,128,1");
  // A value other than the tutorial's wins; so does one named in explicit_settings.
  c.cd.energy_reg_weight = 0.5f;
  c.explicit_settings = {"sampler"};
  r = resolve_recipe(c, &applied);
  EXPECT_EQ(r.cd.energy_reg_weight, 0.5f);
  EXPECT_EQ(r.negatives.kind, NegativeSampler::langevin);
  EXPECT_EQ(r.model.hidden, (std::vector<int>{128, 128}));
  EXPECT_EQ(applied, (std::map<std::string, std::string>{{"hidden", "128 128"}}));
  // Unknown recipes and auto with score matching are refused.
  c.recipe = "fast";
  EXPECT_THROW(validate_train_config(c), InvalidArgument);
  c.recipe = "auto";
  c.loss = TrainingLoss::dsm;
  c.explicit_settings.clear();
  c.cd.energy_reg_weight = 0;
  EXPECT_THROW(resolve_recipe(c), InvalidArgument);
}

TEST(Recipes, PlotRangeFollowsTheDatasetsExtent) {
  for (const std::string& name : dataset_names()) {
    TrainConfig c;
    c.dataset = name;
    const auto params = resolved_dataset_params(c);
    // Oracle: the generated data (two seeds) lie within the extent, which the box holds.
    const double extent = dataset_extent(name, params);
    for (uint64_t seed : {42u, 7u}) {
      const Dataset d = make_dataset(name, params, seed);
      double reach = 0;
      for (float v : d.points) reach = std::max(reach, static_cast<double>(std::fabs(v)));
      EXPECT_LE(reach, extent) << name << " seed " << seed;
      // Not a loose bound: within 0.4 of the data's reach (5 noise std of margin, at most 0.25
      // here, and the tails).
      EXPECT_GT(reach, extent - 0.4) << name << " seed " << seed;
    }
    EXPECT_EQ(resolved_plot_range(c), name == "checkerboard" ? 4.5 : 2.5) << name;
    EXPECT_GE(resolved_plot_range(c), extent) << name;
  }
  TrainConfig c;
  c.dataset = "circle";
  c.dataset_params = {{"radius", 3}};
  EXPECT_EQ(resolved_plot_range(c), 3.5);  // 3 + 5 x 0.05 rounded up to 0.5
  c.plot_range = 2;                        // given: used as it is
  EXPECT_EQ(resolved_plot_range(c), 2.0);
}

// The divergence verdict of the final metrics: the tutorial recipe on eight_gaussians runs away
// in energy scale (docs/quality.md: NLL in the thousands at 2000 iterations) while its
// negatives stay in the data's box, so the per-epoch check is silent and the end check fires.
TEST(Recipes, FinalMetricsCatchAnEnergyRunaway) {
  std::vector<std::string> warnings;
  const auto warn = [&](const std::string& w) { warnings.push_back(w); };
  const TrainReport bad =
      run_training(run_config("eight_gaussians", "tutorial", 40), quiet, {}, warn);
  ASSERT_TRUE(bad.diverged);
  EXPECT_EQ(bad.divergence.rfind("at the end: the final model's test NLL is ", 0), 0u)
      << bad.divergence;
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_EQ(warnings[0], "WARNING: training diverged " + bad.divergence);
  // The verdict's own terms: the NLL more than 10 nats above log(area of [-2.5, 2.5]^2).
  EXPECT_GT(bad.test_nll - std::log(25.0), kDivergedNllExcess);
  // The same budget with --recipe auto, and the tutorial's own run: silent.
  warnings.clear();
  const TrainReport good = run_training(run_config("eight_gaussians", "auto", 40), quiet, {}, warn);
  EXPECT_FALSE(good.diverged) << good.divergence;
  TrainConfig tutorial;
  tutorial.output_dir.clear();
  const TrainReport t = run_training(tutorial, quiet, {}, warn);
  EXPECT_FALSE(t.diverged) << t.divergence;
  EXPECT_TRUE(warnings.empty());
  EXPECT_EQ(t.recipe, "tutorial");
  EXPECT_TRUE(t.recipe_applied.empty());
  EXPECT_EQ(t.plot_range, 2.5);
}

// Unnormalised density exp(-E / T) of `model` at the points (n x 2).
std::vector<double> density(const Mlp& model, const std::vector<float>& xy, double t,
                            double e_ref) {
  std::vector<float> e(xy.size() / 2);
  model.energy(xy.data(), static_cast<int64_t>(e.size()), e.data());
  std::vector<double> p(e.size());
  for (std::size_t i = 0; i < e.size(); ++i) p[i] = std::exp(-(e[i] - e_ref) / t);
  return p;
}

// The share of the model's mass exp(-E / T) over [-range, range]^2 within the square of
// half-width r around each centre: a 33 x 33 midpoint grid in each square, a 400 x 400
// midpoint grid for the rest of the box (its points inside a square left out). The squares
// must not overlap.
std::vector<double> mass_near(const Mlp& model, const std::vector<float>& centres, double r,
                              double range, double t) {
  const auto k = centres.size() / 2;
  constexpr int kFine = 33, kCoarse = 400;
  // The energy's minimum over the points, so that exp does not overflow.
  std::vector<float> fine, coarse;
  for (std::size_t m = 0; m < k; ++m)
    for (int i = 0; i < kFine; ++i)
      for (int j = 0; j < kFine; ++j) {
        fine.push_back(static_cast<float>(centres[2 * m] - r + (i + 0.5) * 2 * r / kFine));
        fine.push_back(static_cast<float>(centres[2 * m + 1] - r + (j + 0.5) * 2 * r / kFine));
      }
  for (int i = 0; i < kCoarse; ++i)
    for (int j = 0; j < kCoarse; ++j) {
      const double x = -range + (i + 0.5) * 2 * range / kCoarse;
      const double y = -range + (j + 0.5) * 2 * range / kCoarse;
      bool inside = false;
      for (std::size_t m = 0; m < k && !inside; ++m)
        inside = std::fabs(x - centres[2 * m]) < r && std::fabs(y - centres[2 * m + 1]) < r;
      if (inside) continue;
      coarse.push_back(static_cast<float>(x));
      coarse.push_back(static_cast<float>(y));
    }
  std::vector<float> all = fine;
  all.insert(all.end(), coarse.begin(), coarse.end());
  std::vector<float> e(all.size() / 2);
  model.energy(all.data(), static_cast<int64_t>(e.size()), e.data());
  const double e_min = *std::min_element(e.begin(), e.end());
  const std::vector<double> p_fine = density(model, fine, t, e_min);
  const std::vector<double> p_coarse = density(model, coarse, t, e_min);
  const double fine_cell = (2 * r / kFine) * (2 * r / kFine);
  const double coarse_cell = (2 * range / kCoarse) * (2 * range / kCoarse);
  std::vector<double> near(k, 0.0);
  double total = 0;
  for (std::size_t m = 0; m < k; ++m)
    for (int i = 0; i < kFine * kFine; ++i) near[m] += p_fine[m * kFine * kFine + i] * fine_cell;
  for (double v : near) total += v;
  for (double v : p_coarse) total += v * coarse_cell;
  for (double& v : near) v /= total;
  return near;
}

Mlp trained_model(const TrainConfig& c, const TrainReport& r) {
  Mlp model(resolve_recipe(c).model, 0);
  std::copy(r.final_parameters.begin(), r.final_parameters.end(), model.parameters().begin());
  return model;
}

Mlp untrained_model(const TrainConfig& c) { return Mlp(resolve_recipe(c).model, c.seed); }

// Mode coverage from the exact mass: every mode holds at least a tenth of its fair share 1/K
// within 4 data std of its centre (as docs/quality.md's "covered"), and together the modes hold
// at least half the mass. docs/quality.md's auto runs (2000 iterations) hold 0.91-0.98 near the
// modes with the smallest mode at 0.02 of 8 (eight_gaussians); an untrained model spreads its
// mass over the box, so the squares (a few % of its area) hold little of it.
struct Coverage {
  double smallest = 0, total = 0;
};
Coverage coverage(const Mlp& model, const TrainConfig& c, const std::vector<float>& centres,
                  double data_std) {
  const std::vector<double> near =
      mass_near(model, centres, 4 * data_std, resolved_plot_range(c), training_temperature(c));
  Coverage cov;
  cov.smallest = *std::min_element(near.begin(), near.end());
  for (double v : near) cov.total += v;
  return cov;
}

void expect_covers_modes(const std::string& dataset, int epochs, const std::vector<float>& centres,
                         double data_std) {
  const TrainConfig c = run_config(dataset, "auto", epochs);
  const TrainReport r = run_training(c, quiet);
  EXPECT_FALSE(r.diverged) << dataset << ": " << r.divergence;
  const double k = static_cast<double>(centres.size() / 2);
  const Coverage cov = coverage(trained_model(c, r), c, centres, data_std);
  EXPECT_GE(cov.smallest, 0.1 / k) << dataset;
  EXPECT_GE(cov.total, 0.5) << dataset;
  const Coverage untrained = coverage(untrained_model(c), c, centres, data_std);
  EXPECT_FALSE(untrained.smallest >= 0.1 / k && untrained.total >= 0.5) << dataset;
  std::printf(
      "%s, auto, %d epochs: smallest mode %.3f, near the modes %.3f (untrained %.3f, "
      "%.3f), test NLL %.3f, %.2f s\n",
      dataset.c_str(), epochs, cov.smallest, cov.total, untrained.smallest, untrained.total,
      r.test_nll, r.train_seconds);
}

TEST(Recipes, AutoCoversTheMixturesModes) {
  // The tutorial's mixture (4 modes, std 0.1, radius 1.5) at its own 200 epochs (200
  // iterations), eight_gaussians at 60 (420 iterations).
  expect_covers_modes("gaussian_mixture", 200, gaussian_mixture_centres(4, 1.5f), 0.1);
  expect_covers_modes("eight_gaussians", 60, eight_gaussians_centres(2.0f), 0.02);
}

TEST(Recipes, AutoLearnsTheGrid) {
  // Per-mode coverage is not feasible for grid's 100 modes of std 0.01 at a test's budget: at
  // docs/quality.md's 2000 iterations the smallest mode holds 1e-4 of the mass (KL 1.8). The
  // bound instead: KL <= 3.5 nats with H(data) = -1.769 +- 0.007 (docs/quality.md, Monte Carlo)
  // at 1000 epochs. Measured: test NLL 0.66 in the -march=native build, 1.42 in the sanitizer
  // build (no -march=native: other float rounding, and training amplifies it); a flat density
  // on the box scores 3.22 and the untrained model 15.3, so the bound (1.73) still separates
  // learning from not learning.
  const TrainConfig c = run_config("grid", "auto", 1000);
  const TrainReport r = run_training(c, quiet);
  EXPECT_FALSE(r.diverged) << r.divergence;
  const double bound = -1.769 + 3.5;
  EXPECT_LE(r.test_nll, bound);
  const Mlp untrained = untrained_model(c);
  TrainReport u;
  compute_training_metrics(&untrained, {}, c, u);
  EXPECT_GT(u.test_nll, bound);
  std::printf("grid, auto, 1000 epochs: test NLL %.3f (bound %.3f, untrained %.3f)\n", r.test_nll,
              bound, u.test_nll);
}

// The share of the model's mass on the checkerboard's data squares (floor(x) + floor(y) odd
// within [-4, 4]^2), by a 400 x 400 midpoint grid over the box [-4.5, 4.5]^2. A flat density
// puts 32 / 81 = 0.40 there.
double checkerboard_share(const Mlp& model, double t) {
  constexpr int kN = 400;
  constexpr double kRange = 4.5;
  std::vector<float> xy;
  for (int i = 0; i < kN; ++i)
    for (int j = 0; j < kN; ++j) {
      xy.push_back(static_cast<float>(-kRange + (i + 0.5) * 2 * kRange / kN));
      xy.push_back(static_cast<float>(-kRange + (j + 0.5) * 2 * kRange / kN));
    }
  std::vector<float> e(xy.size() / 2);
  model.energy(xy.data(), static_cast<int64_t>(e.size()), e.data());
  const double e_min = *std::min_element(e.begin(), e.end());
  double on = 0, total = 0;
  for (std::size_t i = 0; i < e.size(); ++i) {
    const double p = std::exp(-(e[i] - e_min) / t);
    const double x = xy[2 * i], y = xy[2 * i + 1];
    total += p;
    const bool square = std::fabs(x) < 4 && std::fabs(y) < 4 &&
                        static_cast<long>(std::floor(x) + std::floor(y)) % 2 != 0;
    if (square) on += p;
  }
  return on / total;
}

TEST(Recipes, AutoPutsTheCheckerboardsMassOnItsSquares) {
  // The checkerboard's test NLL barely beats a flat density's (docs/quality.md: 4.22 against
  // log 81 = 4.39 at 2000 iterations), so the oracle is the mass on the data's squares (the
  // data's own density puts all of it there, up to the noise std 0.01 at the edges; a flat
  // density 0.40): at least 0.5 at 200 epochs (1400 iterations; measured 0.54, 0.61 at 2800,
  // 0.50 at 420).
  const TrainConfig c = run_config("checkerboard", "auto", 200);
  const TrainReport r = run_training(c, quiet);
  EXPECT_FALSE(r.diverged) << r.divergence;
  EXPECT_EQ(r.plot_range, 4.5);
  const double t = training_temperature(c);
  const double share = checkerboard_share(trained_model(c, r), t);
  const double untrained = checkerboard_share(untrained_model(c), t);
  EXPECT_GE(share, 0.5);
  EXPECT_LT(untrained, 0.5);
  std::printf("checkerboard, auto, 200 epochs: mass on the squares %.3f (untrained %.3f)\n", share,
              untrained);
}

TEST(Recipes, AutoReachesAnNllBound) {
  // Bounds at 60 epochs (420 iterations), seed 0. two_moons and circle: KL <= 1 nat with
  // docs/quality.md's Monte Carlo H(data) (0.293, 0.260 +- 0.005); swiss_roll and pinwheel,
  // whose H is not known: the test NLL at most 1.6 and 3.0 nats (docs/quality.md's auto:
  // 0.35-0.64 and 2.48-2.80 over seeds 0-4 at 2000 iterations; 1.0-1.2 and 2.6-2.9 over
  // seeds 0-2 at this budget; a flat density on the box: log 25 = 3.22).
  struct Case {
    const char* dataset;
    double bound;
  };
  for (const Case& k : {Case{"two_moons", 0.293 + 1.0}, Case{"circle", 0.260 + 1.0},
                        Case{"swiss_roll", 1.6}, Case{"pinwheel", 3.0}}) {
    const TrainConfig c = run_config(k.dataset, "auto", 60);
    const TrainReport r = run_training(c, quiet);
    EXPECT_FALSE(r.diverged) << k.dataset << ": " << r.divergence;
    EXPECT_LE(r.test_nll, k.bound) << k.dataset;
    const Mlp untrained = untrained_model(c);
    TrainReport u;
    compute_training_metrics(&untrained, {}, c, u);
    EXPECT_GT(u.test_nll, k.bound) << k.dataset;
    std::printf("%s, auto, 60 epochs: test NLL %.3f (bound %.3f, untrained %.3f)\n", k.dataset,
                r.test_nll, k.bound, u.test_nll);
  }
}

}  // namespace
}  // namespace cuebm
