// CD with MALA, HMC and tempering negatives (TrainerOptions::negatives): the trainer's negatives
// equal what mala_sample, hmc_sample and parallel_tempering give from the same start rows and
// keys (chain ids of the rows, step offset iteration * k); persistent CD continues the chains;
// a resumed run equals the uninterrupted one bit for bit for every sampler; MALA negatives train
// the tutorial mixture; bad settings are refused with the reason.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "cd_samplers_support.hpp"
#include "cuda_skip.hpp"
#include "cuebm/models/mlp.hpp"
#include "cuebm/runtime/error.hpp"
#include "cuebm/sampling/mcmc.hpp"
#include "cuebm/sampling/tempering.hpp"
#include "cuebm/training/cd.hpp"
#include "cuebm/training/checkpoint.hpp"
#include "cuebm/training/training.hpp"
#include "host/sampling/tempering_chains.hpp"
#include "invalid_argument_support.hpp"

namespace cuebm {
namespace {

namespace fs = std::filesystem;

using testing_support::bitwise_equal;
using testing_support::cd_options;
using testing_support::ExpectInvalid;
using testing_support::kDim;
using testing_support::kSpec;
using testing_support::random_rows;

// A copy of the model as it is now (the parameters the next step's negatives see).
Mlp snapshot(const Mlp& m) {
  Mlp copy(m.spec(), 0);
  std::copy(m.parameters().begin(), m.parameters().end(), copy.parameters().begin());
  return copy;
}

// ---------------------------------------------------------------------------------------------
// The negatives equal the public samplers' results from the same rows and keys.

TEST(CdSamplers, MalaNegativesEqualMalaSampleFromTheBatchAtEveryIteration) {
  Mlp model(kSpec, 21);
  // Weights 4 times PyTorch's initial scale make the energy curved enough, and eta = 0.5 large
  // enough, that some proposals are rejected.
  for (float& w : model.parameters()) w *= 4.0f;
  const TrainerOptions o = cd_options(NegativeSampler::mala, 6, 0.5f, 0.3f, 77);
  const int64_t rows = 37;
  CDTrainer trainer(model, o, rows);
  for (int it = 0; it < 3; ++it) {
    const std::vector<float> batch = random_rows(rows, kDim, 100 + it);
    const Mlp before = snapshot(model);
    const StepStats s = trainer.step(batch.data(), rows);
    MalaOptions m;
    m.step_size = 0.5f;
    m.noise_scale = 0.3f;
    m.n_steps = 6;
    m.seed = 77;
    m.step_offset = static_cast<uint64_t>(it) * 6;
    const McmcResult ref = mala_sample(before, batch.data(), rows, m);
    EXPECT_TRUE(bitwise_equal(trainer.last_negatives(), ref.samples.data(), rows * kDim))
        << "iteration " << it;
    // Two averages of the same counts (per chain first, or all at once): rounding only.
    EXPECT_NEAR(s.acceptance, ref.mean_acceptance, 1e-6) << "iteration " << it;
    EXPECT_GT(s.acceptance, 0.0);
    EXPECT_LT(s.acceptance, 1.0);  // some rejections: the accept/reject step is live
  }
}

TEST(CdSamplers, PerChainPersistentMalaContinuesEachChainExactly) {
  Mlp model(kSpec, 22);
  TrainerOptions o = cd_options(NegativeSampler::mala, 4, 0.05f, 0.3f, 78);
  o.cd.persistent = true;
  o.cd.per_chain = true;
  o.cd.init_steps = 5;
  const int64_t rows = 20;
  CDTrainer trainer(model, o, rows);
  const std::vector<float> batch = random_rows(rows, kDim, 200);
  // Iteration 0 initialises the buffer (0.01 N(0, I), then init_steps MALA steps); iteration 1
  // must start from iteration 0's negatives and continue their keys at step offset 4.
  trainer.step(batch.data(), rows);
  const std::vector<float> previous(trainer.last_negatives(),
                                    trainer.last_negatives() + rows * kDim);
  const Mlp before = snapshot(model);
  trainer.step(batch.data(), rows);
  MalaOptions m;
  m.step_size = 0.05f;
  m.noise_scale = 0.3f;
  m.n_steps = 4;
  m.seed = 78;
  m.step_offset = 4;
  const McmcResult ref = mala_sample(before, previous.data(), rows, m);
  EXPECT_TRUE(bitwise_equal(trainer.last_negatives(), ref.samples.data(), rows * kDim));
  EXPECT_TRUE(bitwise_equal(trainer.replay_buffer().data(), ref.samples.data(), rows * kDim));
}

HmcOptions hmc_reference(int k, float eps, int leapfrog, std::vector<float> mass, uint64_t seed,
                         uint64_t offset) {
  HmcOptions h;
  h.n_steps = k;
  h.step_size = eps;
  h.n_leapfrog = leapfrog;
  h.mass = std::move(mass);
  h.seed = seed;
  h.step_offset = offset;
  return h;
}

TEST(CdSamplers, HmcNegativesEqualHmcSampleAtTemperatureOne) {
  Mlp model(kSpec, 23);
  TrainerOptions o = cd_options(NegativeSampler::hmc, 3, 0.05f, 1.0f, 79);
  o.negatives.hmc_step_size = 0.2f;
  o.negatives.leapfrog = 4;
  o.negatives.mass = {0.5f, 1.0f, 2.0f};
  const int64_t rows = 29;
  CDTrainer trainer(model, o, rows);
  for (int it = 0; it < 2; ++it) {
    const std::vector<float> batch = random_rows(rows, kDim, 300 + it);
    const Mlp before = snapshot(model);
    const StepStats s = trainer.step(batch.data(), rows);
    const McmcResult ref = hmc_sample(before, batch.data(), rows,
                                      hmc_reference(3, 0.2f, 4, o.negatives.mass, 79, it * 3));
    EXPECT_TRUE(bitwise_equal(trainer.last_negatives(), ref.samples.data(), rows * kDim))
        << "iteration " << it;
    EXPECT_NEAR(s.acceptance, ref.mean_acceptance, 1e-6);
  }
}

// At noise_scale 0.5 the trainer's HMC targets exp(-E / 0.25) = exp(-4 E). Scaling the last
// layer's weights and bias by 4 (a power of two: exact in float) gives a model whose energy and
// gradient are exactly 4 E and 4 dE/dx, so hmc_sample on it is the oracle, bit for bit. The
// default step size is sqrt(2 eta) sigma.
TEST(CdSamplers, HmcNegativesTargetTheLangevinTemperature) {
  Mlp model(kSpec, 24);
  const TrainerOptions o = cd_options(NegativeSampler::hmc, 3, 0.02f, 0.5f, 80);
  const int64_t rows = 25;
  CDTrainer trainer(model, o, rows);
  const std::vector<float> batch = random_rows(rows, kDim, 400);
  const Mlp before = snapshot(model);
  Mlp scaled = snapshot(model);
  const std::size_t last = static_cast<std::size_t>(kSpec.hidden.back()) + 1;  // weight + bias
  for (std::size_t i = scaled.parameters().size() - last; i < scaled.parameters().size(); ++i)
    scaled.parameters()[i] *= 4.0f;
  trainer.step(batch.data(), rows);
  const float eps = std::sqrt(2.0f * 0.02f) * 0.5f;
  const McmcResult ref =
      hmc_sample(scaled, batch.data(), rows, hmc_reference(3, eps, 10, {}, 80, 0));
  EXPECT_TRUE(bitwise_equal(trainer.last_negatives(), ref.samples.data(), rows * kDim));
  // The unscaled model (temperature 1) moves differently: the check can fail.
  const McmcResult at_one =
      hmc_sample(before, batch.data(), rows, hmc_reference(3, eps, 10, {}, 80, 0));
  EXPECT_FALSE(bitwise_equal(trainer.last_negatives(), at_one.samples.data(), rows * kDim));
}

TemperingOptions tempering_reference(int k, float eta, double sigma, double t_max, int R,
                                     int swap_every, uint64_t seed) {
  TemperingOptions t;
  t.n_replicas = R;
  t.t_min = sigma * sigma;
  t.t_max = t_max;
  t.step_size = eta;
  t.n_steps = k;
  t.swap_every = swap_every;
  t.seed = seed;
  return t;
}

TEST(CdSamplers, TemperingNegativesEqualParallelTemperingFromTheBatch) {
  Mlp model(kSpec, 25);
  TrainerOptions o = cd_options(NegativeSampler::tempering, 7, 0.05f, 0.4f, 81);
  o.negatives.replicas = 4;
  o.negatives.t_max = 3.0;
  o.negatives.swap_every = 2;
  const int64_t rows = 23;
  CDTrainer trainer(model, o, rows);
  const std::vector<float> batch = random_rows(rows, kDim, 500);
  const Mlp before = snapshot(model);
  const StepStats s = trainer.step(batch.data(), rows);
  const TemperingResult ref =
      parallel_tempering(before, batch.data(), rows,
                         tempering_reference(7, 0.05f, static_cast<double>(0.4f), 3.0, 4, 2, 81));
  EXPECT_TRUE(bitwise_equal(trainer.last_negatives(), ref.samples.data(), rows * kDim));
  double moves = 0;
  for (double a : ref.move_acceptance) moves += a / 4;
  EXPECT_NEAR(s.acceptance, moves, 1e-9);
  // Iteration 1 restarts the ladder from its batch at step offset k = 7 (the core's offset
  // keying is checked against parallel_tempering below).
  const std::vector<float> batch1 = random_rows(rows, kDim, 501);
  const Mlp before1 = snapshot(model);
  trainer.step(batch1.data(), rows);
  detail::TemperingChains core(rows, 4, kDim);
  core.start(before1, batch1.data(), rows);
  core.run(before1, ref.temperatures, 0.05f, 7, 2, 81, 0, 7);
  std::vector<float> expect1(rows * kDim);
  core.coldest(expect1.data());
  EXPECT_TRUE(bitwise_equal(trainer.last_negatives(), expect1.data(), expect1.size()));
}

// Later iterations restart the ladder from the rows at step offset iteration * k: the core
// keyed by a step offset continues a run exactly as parallel_tempering's longer run does.
TEST(CdSamplers, TemperingCoreContinuedAtAnOffsetEqualsOneLongerRun) {
  const Mlp model(kSpec, 26);
  const int64_t chains = 11;
  const std::vector<float> x0 = random_rows(chains, kDim, 600);
  const std::vector<double> ladder = {0.2, 0.5, 1.3};
  for (int swap_every : {1, 3}) {
    TemperingOptions t = tempering_reference(10, 0.05f, 0, 0, 3, swap_every, 82);
    t.temperatures = ladder;
    const TemperingResult ref = parallel_tempering(model, x0.data(), chains, t);
    detail::TemperingChains core(chains, 3, kDim);
    core.start(model, x0.data(), chains);
    core.run(model, ladder, 0.05f, 4, swap_every, 82, 0, 0);
    core.run(model, ladder, 0.05f, 6, swap_every, 82, 0, 4);
    std::vector<float> got(chains * kDim);
    core.coldest(got.data());
    EXPECT_TRUE(bitwise_equal(got.data(), ref.samples.data(), got.size()))
        << "swap_every " << swap_every;
    int64_t swaps = 0;
    for (int64_t v : core.swaps()) swaps += v;
    EXPECT_GT(swaps, 0) << "no swap happened: the swap keys went untested";
  }
}

TEST(CdSamplers, LangevinStaysTheDefaultWithNoAcceptanceRate) {
  EXPECT_EQ(TrainerOptions().negatives.kind, NegativeSampler::langevin);
  EXPECT_EQ(TrainConfig().negatives.kind, NegativeSampler::langevin);
  Mlp model(kSpec, 27);
  TrainerOptions o = cd_options(NegativeSampler::langevin, 2, 0.05f, 0.3f, 83);
  CDTrainer trainer(model, o, 8);
  const std::vector<float> batch = random_rows(8, kDim, 700);
  EXPECT_TRUE(std::isnan(trainer.step(batch.data(), 8).acceptance));
}

// ---------------------------------------------------------------------------------------------
// Resume through checkpoints, bit for bit.

class CdSamplersResume : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::temp_directory_path() /
           ("cuebm_cdsamplers_" + std::to_string(::getpid()) + "_" + info->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }

  fs::path dir_;
};

TrainConfig small_config(NegativeSampler kind, bool persistent) {
  TrainConfig c;
  c.dataset_params = {{"n", 256}, {"components", 4}, {"std", 0.1}, {"radius", 1.5}};
  c.model.hidden = {12, 12};
  c.batch_size = 64;
  c.epochs = 4;
  c.cd.k_steps = 4;
  c.cd.persistent = persistent;
  c.cd.buffer_size = 200;
  c.cd.init_steps = 6;
  c.negatives.kind = kind;
  c.negatives.leapfrog = 3;
  c.negatives.replicas = 3;
  c.negatives.swap_every = 2;
  c.output_dir.clear();
  c.figure_samples = 50;
  c.final_steps = 20;
  c.seed = 12;
  return c;
}

void expect_same_run(const TrainReport& a, const TrainReport& b, const std::string& what) {
  ASSERT_EQ(a.final_parameters.size(), b.final_parameters.size());
  EXPECT_TRUE(bitwise_equal(a.final_parameters.data(), b.final_parameters.data(),
                            a.final_parameters.size()))
      << what << ": final parameters differ";
  ASSERT_EQ(a.epoch_loss.size(), b.epoch_loss.size()) << what;
  EXPECT_EQ(std::memcmp(a.epoch_loss.data(), b.epoch_loss.data(), a.epoch_loss.size() * 8), 0)
      << what << ": epoch losses differ";
  ASSERT_EQ(a.epoch_acceptance.size(), b.epoch_acceptance.size()) << what;
  EXPECT_EQ(std::memcmp(a.epoch_acceptance.data(), b.epoch_acceptance.data(),
                        a.epoch_acceptance.size() * 8),
            0)
      << what << ": acceptance rates differ";
  EXPECT_EQ(a.final_samples, b.final_samples) << what;
}

TEST_F(CdSamplersResume, ResumeEqualsTheUninterruptedRunForEverySampler) {
  const auto quiet = [](const std::string&) {};
  for (NegativeSampler kind :
       {NegativeSampler::mala, NegativeSampler::hmc, NegativeSampler::tempering})
    for (bool persistent : {false, true}) {
      const std::string what = negative_sampler_name(kind) + (persistent ? " persistent" : " CD-k");
      const TrainConfig full = small_config(kind, persistent);
      const TrainReport whole = run_training(full, quiet);
      for (double a : whole.epoch_acceptance) {
        EXPECT_GT(a, 0.0) << what;
        EXPECT_LE(a, 1.0) << what;
      }
      TrainConfig first = full;
      first.epochs = 2;
      first.checkpoint_path = path("ck.safetensors");
      run_training(first, quiet);
      const Checkpoint ck = read_checkpoint(first.checkpoint_path);
      EXPECT_EQ(ck.config.at("sampler"), negative_sampler_name(kind)) << what;
      EXPECT_EQ(ck.epoch_acceptance.size(), 2u) << what;
      TrainConfig second = full;
      second.resume_from = first.checkpoint_path;
      const TrainReport resumed = run_training(second, quiet);
      expect_same_run(whole, resumed, what);
    }
}

TEST_F(CdSamplersResume, ResumeWithAnotherSamplerIsRefused) {
  TrainConfig c = small_config(NegativeSampler::mala, false);
  c.epochs = 1;
  c.checkpoint_path = path("ck.safetensors");
  run_training(c, [](const std::string&) {});
  TrainConfig other = small_config(NegativeSampler::hmc, false);
  other.resume_from = c.checkpoint_path;
  ExpectInvalid([&] { read_resume_checkpoint(other); }, {"sampler mala -> hmc"});
  TrainConfig langevin = small_config(NegativeSampler::langevin, false);
  langevin.resume_from = c.checkpoint_path;
  ExpectInvalid([&] { read_resume_checkpoint(langevin); }, {"sampler mala -> langevin"});
  // A tempering setting is part of the fingerprint too.
  TrainConfig t = small_config(NegativeSampler::tempering, false);
  t.epochs = 1;
  t.checkpoint_path = path("t.safetensors");
  run_training(t, [](const std::string&) {});
  t.resume_from = t.checkpoint_path;
  t.negatives.replicas = 5;
  t.epochs = 2;
  ExpectInvalid([&] { read_resume_checkpoint(t); }, {"replicas 3 -> 5"});
}

// ---------------------------------------------------------------------------------------------
// Training with MALA negatives.

// The tutorial (MLP 2-64-64-1, mixture of 4 modes of std 0.1, CD-10 at eta = sigma = 0.1) with
// MALA negatives. Judged by run_training's own metrics of the final Langevin samples: all four
// modes covered (mode_report: >= 5% of the 500 samples within 3 std of a centre, binomial SE of a
// 25% share 0.019) and most samples near a mode. The untrained model fails the same check.
TEST(CdSamplersTraining, MalaNegativesLearnTheTutorialMixture) {
  TrainConfig c;
  c.output_dir.clear();
  c.epochs = 120;
  c.negatives.kind = NegativeSampler::mala;
  c.seed = 7;
  std::vector<std::string> lines;
  const TrainReport r = run_training(c, [&](const std::string& l) { lines.push_back(l); });
  ASSERT_EQ(r.skipped, 0);
  for (double loss : r.epoch_loss) ASSERT_TRUE(std::isfinite(loss));
  // The loss settles: the last 10 epochs are nearer 0 (balanced phases) than the first one.
  double late = 0;
  for (int i = 110; i < 120; ++i) late += std::fabs(r.epoch_loss[i]) / 10;
  EXPECT_LT(late, std::fabs(r.epoch_loss[0]));
  EXPECT_EQ(r.modes_covered, 4) << "share near a mode " << r.share_near_mode;
  EXPECT_GT(r.share_near_mode, 0.8);
  // MALA at eta = 0.1 rejects some of Langevin's proposals on the learned modes.
  EXPECT_GT(r.epoch_acceptance.back(), 0.05);
  EXPECT_LT(r.epoch_acceptance.back(), 1.0);
  EXPECT_NE(lines.front().find("mala acceptance: "), std::string::npos) << lines.front();

  const Mlp untrained(c.model, c.seed);
  TrainReport u;
  compute_training_metrics(&untrained, final_model_samples(untrained, c), c, u);
  EXPECT_FALSE(u.modes_covered == 4 && u.share_near_mode > 0.8)
      << "the untrained model passes the check: modes " << u.modes_covered << ", share "
      << u.share_near_mode;
}

// ---------------------------------------------------------------------------------------------
// Bad settings.

TEST(CdSamplersErrors, BadSamplerSettingsAreRejectedWithTheReason) {
  Mlp model(kSpec, 28);
  const auto make = [&](const TrainerOptions& o) {
    return [&model, o] { CDTrainer t(model, o, 8); };
  };
  TrainerOptions o = cd_options(NegativeSampler::hmc, 2, 0.05f, 0.3f, 1);
  o.negatives.leapfrog = 0;
  ExpectInvalid(make(o), {"leapfrog >= 1", "got 0"});
  o = cd_options(NegativeSampler::hmc, 2, 0.05f, 0.3f, 1);
  o.negatives.mass = {1.0f, 0.0f, 1.0f};
  ExpectInvalid(make(o), {"mass", "> 0"});
  o.negatives.mass = {1.0f, 1.0f};
  ExpectInvalid(make(o), {"mass", "0, 1 or dim = 3", "got 2"});
  o = cd_options(NegativeSampler::hmc, 2, 0.05f, 0.3f, 1);
  o.negatives.hmc_step_size = -0.1f;
  ExpectInvalid(make(o), {"HMC step size", ">= 0"});
  o = cd_options(NegativeSampler::hmc, 2, 0.05f, 0.3f, 1);
  o.sampler.step_size = Schedule::linear(0.1f, 0.01f, 10);
  ExpectInvalid(make(o), {"step size must be constant"});
  o = cd_options(NegativeSampler::tempering, 2, 0.05f, 0.3f, 1);
  o.negatives.replicas = 1;
  ExpectInvalid(make(o), {"replicas >= 2", "got 1"});
  o = cd_options(NegativeSampler::tempering, 2, 0.05f, 0.3f, 1);
  o.negatives.t_max = 0.05;  // below sigma^2 = 0.09
  ExpectInvalid(make(o), {"t_max", "above sigma^2"});
  o = cd_options(NegativeSampler::tempering, 2, 0.05f, 0.3f, 1);
  o.negatives.swap_every = 0;
  ExpectInvalid(make(o), {"swap_every >= 1", "got 0"});
  o = cd_options(NegativeSampler::mala, 2, 0.05f, 0.0f, 1);
  ExpectInvalid(make(o), {"noise_scale"});
  ExpectInvalid([] { parse_negative_sampler("gibbs"); },
                {"unknown sampler 'gibbs'", "langevin, mala, hmc or tempering"});
  EXPECT_EQ(parse_negative_sampler("tempering"), NegativeSampler::tempering);

  // Through the training config too, before anything is written.
  TrainConfig c;
  c.output_dir.clear();
  c.negatives.kind = NegativeSampler::tempering;
  c.negatives.replicas = 1;
  ExpectInvalid([&] { validate_train_config(c); }, {"training", "replicas >= 2"});
}

}  // namespace
}  // namespace cuebm
