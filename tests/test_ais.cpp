// Annealed importance sampling (include/cuebm/sampling/ais.hpp): log Z of Gaussians against the
// closed form, of the trained tutorial model against the 2-D grid integral, the 1/sqrt(chains)
// shrinking of its standard error, reproducibility and input errors.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "ais_support.hpp"
#include "cuebm/data/datasets.hpp"
#include "cuebm/data/metrics.hpp"
#include "cuebm/models/analytic.hpp"
#include "cuebm/models/mlp.hpp"
#include "cuebm/runtime/error.hpp"
#include "cuebm/sampling/ais.hpp"
#include "cuebm/training/cd.hpp"

namespace cuebm {
namespace {

// 5-D Gaussian, mean away from the N(0, I) start, covariance diag(s2):
// log Z at T = (D / 2) log(2 pi) + (1 / 2) sum log(T s2_i).
const std::vector<double> kS2 = {0.5, 1.0, 2.0, 1.5, 0.8};
AnalyticEnergy gaussian5() {
  std::vector<double> cov(25, 0.0);
  for (int i = 0; i < 5; ++i) cov[i * 6] = kS2[i];
  return AnalyticEnergy::gaussian({0.5f, -1.0f, 0.0f, 1.0f, 2.0f}, cov);
}
double exact_log_z(double t) {
  double s = 2.5 * std::log(2 * M_PI);
  for (double v : kS2) s += 0.5 * std::log(t * v);
  return s;
}

TEST(Ais, GaussianLogZWithinThreeStandardErrors) {
  const AnalyticEnergy e = gaussian5();
  for (double t : {1.0, 0.3}) {
    const AisOptions o = testing_support::gaussian_log_z_options(t, 1);
    testing_support::ExpectLogZWithinThreeStandardErrors(ais_log_partition(e, o), exact_log_z(t),
                                                         o);
  }
}

TEST(Ais, StandardErrorShrinksAsOneOverRootChains) {
  // Four times the chains: half the standard error (each estimate's own sd is about 3% at
  // these sizes; the ratio's band [1.6, 2.5] is several of them wide).
  const AnalyticEnergy e = gaussian5();
  AisOptions o;
  o.n_temperatures = 200;
  o.step_size = 0.2f;
  o.seed = 5;
  o.n_chains = 500;
  const double se_small = ais_log_partition(e, o).std_error;
  o.n_chains = 2000;
  const double se_large = ais_log_partition(e, o).std_error;
  EXPECT_GT(se_small / se_large, 1.6);
  EXPECT_LT(se_small / se_large, 2.5);
}

TEST(Ais, TrainedTutorialModelMatchesTheGridIntegral) {
  // The tutorial (2-64-64-1 ReLU, 200 epochs of CD-10) at its sampling temperature 0.01: four
  // sharp modes. The grid [-8, 8]^2 at 801 x 801 points holds all the mass (the same value to
  // 1e-3 on [-4, 4]^2 and [-16, 16]^2 at 1601 points).
  const Dataset data =
      make_gaussian_mixture({.n = 500, .components = 4, .std = 0.1f, .radius = 1.5f}, 42);
  Mlp model({.input_dim = 2, .hidden = {64, 64}, .activation = Activation::kReLU}, 0);
  TrainerOptions opt;
  opt.sampler.step_size = 0.1f;
  opt.sampler.noise_scale = 0.1f;
  CDTrainer trainer(model, opt, 256);
  DataLoader loader(data.points.data(), data.n, 2, 256, true, true, 0);
  for (int epoch = 0; epoch < 200; ++epoch) {
    loader.start_epoch(epoch);
    for (int64_t b = 0; b < loader.num_batches(); ++b) trainer.step(loader.batch(b), 256);
  }
  const double t = 0.01;
  const BatchEnergyFn fn = [&](const float* x, int64_t n, float* e) { model.energy(x, n, e); };
  const double grid = grid_log_partition(fn, Grid2D{-8, 8, -8, 8, 801, 801}, t);
  AisOptions o;
  o.n_chains = 1000;
  o.n_temperatures = 1000;
  o.step_size = 0.05f;
  o.temperature = t;
  o.seed = 3;
  const AisResult r = ais_log_partition(model, o);
  EXPECT_NEAR(r.log_z, grid, 3 * r.std_error) << "grid " << grid;
  EXPECT_LT(r.std_error, 0.1);
}

TEST(Ais, ReproducibleAndInputChecked) {
  const AnalyticEnergy e = AnalyticEnergy::harmonic(3);
  AisOptions o;
  o.n_chains = 64;
  o.n_temperatures = 20;
  EXPECT_EQ(ais_log_partition(e, o).log_weights, ais_log_partition(e, o).log_weights);
  auto message = [&](AisOptions bad, Device d = Device::cpu()) {
    try {
      ais_log_partition(e, bad, d);
    } catch (const InvalidArgument& err) {
      return std::string(err.what());
    }
    return std::string("no exception");
  };
  AisOptions bad = o;
  bad.n_chains = 1;
  EXPECT_NE(message(bad).find("n_chains must be >= 2"), std::string::npos);
  bad = o;
  bad.n_temperatures = 0;
  EXPECT_NE(message(bad).find("n_temperatures must be >= 1"), std::string::npos);
  bad = o;
  bad.step_size = 0;
  EXPECT_NE(message(bad).find("step_size must be finite and > 0"), std::string::npos);
  bad = o;
  bad.temperature = -1;
  EXPECT_NE(message(bad).find("temperature must be finite and > 0"), std::string::npos);
}

}  // namespace
}  // namespace cuebm
