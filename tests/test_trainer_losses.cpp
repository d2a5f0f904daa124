// The trainer with each loss (cd.hpp's TrainingLoss): a score-matching step is
// ScoreLoss::evaluate's gradient at the trainer's iteration, then clip_grad_norm and Adam, bit
// for bit; resumed SM / SSM / DSM runs equal the uninterrupted ones bit for bit; CD stays the
// default and unchanged; bad options are refused with the reason; a short SM training on the
// tutorial mixture lowers the loss; and on the (emulated) CUDA backend the device trainer equals
// the device ScoreLoss followed by the host's clip and Adam, synchronises once per step and
// resumes bit for bit.
//
// The oracle of a step is independent of the trainer's code: a separate ScoreLoss (whose values
// and gradients tests/test_score_matching.cpp checks against a double oracle and finite
// differences), optim.hpp's clip_grad_norm and a separate Adam.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "cuda_skip.hpp"
#include "cuebm/io/safetensors.hpp"
#include "cuebm/models/mlp.hpp"
#include "cuebm/runtime/device.hpp"
#include "cuebm/runtime/error.hpp"
#include "cuebm/training/cd.hpp"
#include "cuebm/training/checkpoint.hpp"
#include "cuebm/training/optim.hpp"
#include "cuebm/training/score_matching.hpp"
#include "cuebm/training/training.hpp"
#if CUEBM_HAVE_CUDA
#include "host/training/cuda_trainer.hpp"
#endif

namespace cuebm {
namespace {

namespace fs = std::filesystem;

std::vector<float> RandomNormal(std::size_t n, uint32_t seed, float scale) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> d(0.0f, scale);
  std::vector<float> v(n);
  for (float& x : v) x = d(gen);
  return v;
}

bool BitwiseEqual(std::span<const float> a, std::span<const float> b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

template <typename E, typename F>
void ExpectThrowWith(F&& f, const std::vector<std::string>& parts) {
  try {
    f();
    ADD_FAILURE() << "expected an exception naming '" << parts.front() << "'";
  } catch (const E& e) {
    const std::string what = e.what();
    for (const std::string& p : parts)
      EXPECT_NE(what.find(p), std::string::npos) << "message '" << what << "' lacks '" << p << "'";
  }
}

struct LossCase {
  std::string name;
  TrainingLoss loss;
  ScoreLossOptions score;
};

// Every score-matching loss and option the trainer passes on (the draws of ssm and dsm depend on
// the iteration, so a trainer keying them by anything else fails these).
std::vector<LossCase> ScoreCases() {
  std::vector<LossCase> cases;
  cases.push_back({"sm exact", TrainingLoss::sm, {}});
  ScoreLossOptions approx;
  approx.hessian_method = HessianMethod::kTorchEbmApprox;
  cases.push_back({"sm torchebm_approx", TrainingLoss::sm, approx});
  for (ProjectionType p :
       {ProjectionType::kRademacher, ProjectionType::kSphere, ProjectionType::kGaussian}) {
    ScoreLossOptions o;
    o.n_projections = 3;
    o.projection_type = p;
    cases.push_back({"ssm " + projection_type_name(p), TrainingLoss::ssm, o});
  }
  for (DenoisingSign s : {DenoisingSign::kCorrect, DenoisingSign::kTorchEbm}) {
    ScoreLossOptions o;
    o.noise_scale = 0.3f;
    o.denoising_sign = s;
    o.regularization_strength = 0.05f;
    cases.push_back({"dsm " + denoising_sign_name(s), TrainingLoss::dsm, o});
  }
  ScoreLossOptions reg;
  reg.regularization_strength = 0.2f;
  cases.push_back({"sm reg", TrainingLoss::sm, reg});
  return cases;
}

MlpSpec SmoothSpec(Activation act = Activation::kSoftplus) {
  MlpSpec spec;
  spec.input_dim = 2;
  spec.hidden = {16, 12};
  spec.activation = act;
  return spec;
}

TrainerOptions ScoreOptions(const LossCase& c, float clip, uint64_t seed) {
  TrainerOptions o;
  o.loss = c.loss;
  o.score = c.score;
  o.score.seed = seed;
  o.max_grad_norm = clip;
  o.adam.lr = 0.01f;
  o.seed = seed;
  return o;
}

TEST(TrainerLosses, NamesRoundTripAndTemperatures) {
  for (TrainingLoss l : {TrainingLoss::cd, TrainingLoss::sm, TrainingLoss::ssm, TrainingLoss::dsm})
    EXPECT_EQ(parse_training_loss(training_loss_name(l)), l);
  EXPECT_EQ(score_loss_kind(TrainingLoss::ssm), ScoreLossKind::kSlicedScoreMatching);
  EXPECT_EQ(loss_temperature(TrainingLoss::cd, 0.5f), 0.25);
  EXPECT_EQ(loss_temperature(TrainingLoss::dsm, 0.5f), 1.0);
}

// Three steps of every score-matching loss, with clipping active (0.05 is below these
// gradients' norms) and off: the parameters, Adam's state and the statistics equal the oracle's
// bit for bit.
TEST(TrainerLosses, EachScoreLossStepIsEvaluateThenClipThenAdam) {
  const int64_t max_batch = 37;
  for (const LossCase& c : ScoreCases()) {
    for (float clip : {0.05f, 0.0f}) {
      SCOPED_TRACE(c.name + ", clip " + std::to_string(clip));
      const TrainerOptions o = ScoreOptions(c, clip, 11);
      Mlp model(SmoothSpec(), 7);
      Mlp oracle_model = model;
      CDTrainer trainer(model, o, max_batch);
      ScoreLossOptions so = c.score;
      so.kind = score_loss_kind(c.loss);
      so.seed = 11;
      ScoreLoss oracle_loss(model.spec(), so);
      Adam oracle_adam(model.num_parameters(), o.adam);
      std::vector<float> grad(model.num_parameters());
      bool clipped = false;
      for (int it = 0; it < 3; ++it) {
        const int64_t rows = it == 1 ? 20 : max_batch;  // a partial batch too
        const std::vector<float> x = RandomNormal(rows * 2, 100 + it, 1.2f);
        const StepStats s = trainer.step(x.data(), rows);
        const double loss = oracle_loss.evaluate(oracle_model, x.data(), rows,
                                                 static_cast<uint64_t>(it), grad.data());
        const double norm = clip > 0 ? clip_grad_norm(grad, clip) : grad_norm(grad);
        clipped = clipped || norm > clip;
        oracle_adam.step(oracle_model.parameters(), grad);
        EXPECT_EQ(s.loss, loss) << "iteration " << it;
        EXPECT_EQ(s.grad_norm, norm) << "iteration " << it;
        EXPECT_FALSE(s.skipped);
        EXPECT_TRUE(std::isnan(s.neg_energy));
        EXPECT_TRUE(std::isnan(s.acceptance));
        EXPECT_TRUE(BitwiseEqual(model.parameters(), oracle_model.parameters()))
            << "iteration " << it;
      }
      if (clip > 0) {
        EXPECT_TRUE(clipped) << "clipping never acted: the case proves nothing";
      }
      EXPECT_EQ(trainer.iteration(), 3);
      EXPECT_EQ(trainer.optimizer().steps(), 3);
      EXPECT_TRUE(BitwiseEqual(trainer.optimizer().first_moment(), oracle_adam.first_moment()));
      EXPECT_TRUE(BitwiseEqual(trainer.optimizer().second_moment(), oracle_adam.second_moment()));
      EXPECT_EQ(trainer.last_negatives(), nullptr);
      EXPECT_TRUE(trainer.replay_buffer().empty());
    }
  }
}

// StepStats::pos_energy is mean E(x_data) at the parameters the step started from.
TEST(TrainerLosses, PositiveEnergyIsTheBatchMeanBeforeTheUpdate) {
  LossCase c{"ssm", TrainingLoss::ssm, {}};
  Mlp model(SmoothSpec(Activation::kSiLU), 3);
  CDTrainer trainer(model, ScoreOptions(c, 1.0f, 5), 29);
  for (int it = 0; it < 2; ++it) {
    const std::vector<float> x = RandomNormal(29 * 2, 200 + it, 1.0f);
    std::vector<float> e(29);
    model.energy(x.data(), 29, e.data());
    double sum = 0;
    for (float v : e) sum += v;
    const StepStats s = trainer.step(x.data(), 29);
    // The same floats summed in the same order in double: equal up to the division's rounding.
    EXPECT_NEAR(s.pos_energy, sum / 29, 1e-15 * std::fabs(sum / 29) + 1e-300);
  }
}

// The default loss is CD, and CD ignores the score-matching settings: a trainer given any of
// them runs bit for bit as one given none.
TEST(TrainerLosses, CdIsTheDefaultAndIgnoresScoreSettings) {
  const TrainerOptions default_options;
  const TrainConfig default_config;
  EXPECT_EQ(default_options.loss, TrainingLoss::cd);
  EXPECT_EQ(default_config.loss, TrainingLoss::cd);
  EXPECT_EQ(training_fingerprint(default_config).at("loss"), "cd");
  TrainerOptions plain;
  plain.cd.k_steps = 3;
  plain.sampler.step_size = 0.05f;
  plain.sampler.noise_scale = 0.3f;
  plain.seed = 9;
  TrainerOptions with_score = plain;
  with_score.score.n_projections = 7;
  with_score.score.noise_scale = 2.0f;
  with_score.score.regularization_strength = 1.0f;
  MlpSpec spec = SmoothSpec();
  Mlp a(spec, 4), b(spec, 4);
  CDTrainer ta(a, plain, 16), tb(b, with_score, 16);
  for (int it = 0; it < 3; ++it) {
    const std::vector<float> x = RandomNormal(32, 300 + it, 1.0f);
    const StepStats sa = ta.step(x.data(), 16), sb = tb.step(x.data(), 16);
    EXPECT_EQ(sa.loss, sb.loss);
    EXPECT_FALSE(std::isnan(sa.neg_energy));
  }
  EXPECT_TRUE(BitwiseEqual(a.parameters(), b.parameters()));
  EXPECT_NE(ta.last_negatives(), nullptr);
}

TEST(TrainerLosses, BadOptionsAreRejectedWithTheReason) {
  Mlp model(SmoothSpec(), 1);
  const auto make = [&](TrainingLoss loss, auto&& edit) {
    TrainerOptions o;
    o.loss = loss;
    edit(o);
    CDTrainer t(model, o, 8);
  };
  ExpectThrowWith<InvalidArgument>(
      [&] { make(TrainingLoss::ssm, [](TrainerOptions& o) { o.score.n_projections = 0; }); },
      {"n_projections"});
  ExpectThrowWith<InvalidArgument>(
      [&] { make(TrainingLoss::dsm, [](TrainerOptions& o) { o.score.noise_scale = 0; }); },
      {"noise_scale"});
  ExpectThrowWith<InvalidArgument>(
      [&] {
        make(TrainingLoss::sm, [](TrainerOptions& o) { o.score.regularization_strength = -1; });
      },
      {"regularization"});
  ExpectThrowWith<InvalidArgument>(
      [&] { make(TrainingLoss::sm, [](TrainerOptions& o) { o.max_grad_norm = NAN; }); },
      {"max_grad_norm"});
  ExpectThrowWith<InvalidArgument>([] { parse_training_loss("nce"); },
                                   {"'nce'", "cd, sm, ssm or dsm"});
  ExpectThrowWith<InvalidArgument>([] { score_loss_kind(TrainingLoss::cd); }, {"cd"});
  // A CD state (with a replay buffer) does not fit a score-matching trainer.
  TrainerOptions o;
  o.loss = TrainingLoss::sm;
  CDTrainer t(model, o, 8);
  TrainerState st;
  st.buffer.assign(10000 * 2, 0.0f);
  st.buffer_ready = true;
  ExpectThrowWith<InvalidArgument>([&] { t.load_state(st); }, {"replay buffer", "sm"});
  // run_training's config: a sampler or persistent CD with a score-matching loss is a mistake.
  TrainConfig c;
  c.output_dir = "";
  c.loss = TrainingLoss::ssm;
  c.negatives.kind = NegativeSampler::mala;
  ExpectThrowWith<InvalidArgument>([&] { validate_train_config(c); }, {"mala", "ssm"});
  c.negatives.kind = NegativeSampler::langevin;
  c.cd.persistent = true;
  ExpectThrowWith<InvalidArgument>([&] { validate_train_config(c); }, {"persistent", "ssm"});
  c.cd.persistent = false;
  c.loss = TrainingLoss::dsm;
  c.score.noise_scale = -1;
  ExpectThrowWith<InvalidArgument>([&] { validate_train_config(c); }, {"noise_scale"});
}

// A non-finite loss is skipped (no update) and reported; past max_nonfinite_steps, NumericalError.
TEST(TrainerLosses, NonFiniteLossesAreSkippedThenFatal) {
  Mlp model(SmoothSpec(), 2);
  for (float& p : model.parameters()) p = 1e30f;  // energies overflow: the loss is not finite
  TrainerOptions o;
  o.loss = TrainingLoss::sm;
  o.max_nonfinite_steps = 1;
  CDTrainer trainer(model, o, 8);
  std::vector<std::string> warnings;
  trainer.on_warning = [&](const std::string& line) { warnings.push_back(line); };
  const std::vector<float> before(model.parameters().begin(), model.parameters().end());
  const std::vector<float> x = RandomNormal(16, 400, 1.0f);
  const StepStats s = trainer.step(x.data(), 8);
  EXPECT_TRUE(s.skipped);
  EXPECT_FALSE(std::isfinite(s.loss));
  EXPECT_TRUE(BitwiseEqual(model.parameters(), before));
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_NE(warnings[0].find("iteration 0: loss is not finite"), std::string::npos) << warnings[0];
  ExpectThrowWith<NumericalError>([&] { trainer.step(x.data(), 8); }, {"2 consecutive iterations"});
}

class TrainerLossRun : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::temp_directory_path() /
           ("cuebm_losses_" + std::to_string(::getpid()) + "_" + info->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }

  // A small run of the tutorial's mixture (128 points, batches of 32: 4 iterations an epoch).
  static TrainConfig Small(TrainingLoss loss) {
    TrainConfig c;
    c.loss = loss;
    c.dataset_params = {{"n", 128}, {"components", 4}, {"std", 0.1}, {"radius", 1.5}};
    c.model.hidden = {8, 8};
    c.model.activation = Activation::kSiLU;
    c.batch_size = 32;
    c.epochs = 4;
    c.output_dir = "";
    c.figure_samples = 32;
    c.final_steps = 10;
    c.seed = 21;
    c.score.noise_scale = 0.2f;
    c.score.n_projections = 2;
    c.adam.lr = 0.01f;
    return c;
  }
  fs::path dir_;
};

// Resume after epoch 2 of 4 equals the uninterrupted run bit for bit: parameters, losses and the
// final samples (for sm, ssm and dsm: the draws of ssm and dsm are keyed by the iteration).
TEST_F(TrainerLossRun, ResumeEqualsTheUninterruptedRun) {
  const auto quiet = [](const std::string&) {};
  for (TrainingLoss loss : {TrainingLoss::sm, TrainingLoss::ssm, TrainingLoss::dsm}) {
    SCOPED_TRACE(training_loss_name(loss));
    const TrainConfig full = Small(loss);
    const TrainReport a = run_training(full, quiet);
    TrainConfig first = full;
    first.epochs = 2;
    first.checkpoint_path = path("ck.safetensors");
    run_training(first, quiet);
    TrainConfig rest = full;
    rest.resume_from = first.checkpoint_path;
    const TrainReport b = run_training(rest, quiet);
    EXPECT_EQ(b.first_epoch, 3);
    EXPECT_TRUE(BitwiseEqual(a.final_parameters, b.final_parameters));
    EXPECT_EQ(a.epoch_loss, b.epoch_loss);
    EXPECT_TRUE(BitwiseEqual(a.final_samples, b.final_samples));
    EXPECT_EQ(a.iterations, b.iterations);
    // The run moved: a resume that did nothing would not match a trained model.
    EXPECT_FALSE(BitwiseEqual(a.final_parameters, Mlp(full.model, full.seed).parameters()));
    EXPECT_EQ(a.temperature, 1.0);
    EXPECT_NE(a.temperature_source.find("score matching"), std::string::npos);
    // Its checkpoint names the loss and its settings; another loss or setting is refused.
    const Checkpoint ck = read_checkpoint(first.checkpoint_path);
    EXPECT_EQ(ck.config.at("loss"), training_loss_name(loss));
    EXPECT_EQ(ck.config.count("sampler"), 0u);
    TrainConfig other = rest;
    other.loss = loss == TrainingLoss::sm ? TrainingLoss::dsm : TrainingLoss::sm;
    ExpectThrowWith<InvalidArgument>([&] { read_resume_checkpoint(other); },
                                     {"loss " + training_loss_name(loss) + " -> "});
    other = rest;
    other.score.regularization_strength = 0.5f;
    ExpectThrowWith<InvalidArgument>([&] { read_resume_checkpoint(other); }, {"sm_reg"});
  }
}

// A checkpoint written before the loss was an option (no "loss" key) resumes as CD.
TEST_F(TrainerLossRun, CheckpointsWithoutALossResumeAsCd) {
  const auto quiet = [](const std::string&) {};
  TrainConfig c = Small(TrainingLoss::cd);
  c.cd.k_steps = 3;
  c.epochs = 1;
  c.checkpoint_path = path("ck.safetensors");
  run_training(c, quiet);
  Checkpoint ck = read_checkpoint(c.checkpoint_path);
  ck.config.erase("loss");
  write_checkpoint(c.checkpoint_path, ck);
  TrainConfig rest = c;
  rest.epochs = 2;
  rest.checkpoint_path.clear();
  rest.resume_from = c.checkpoint_path;
  EXPECT_EQ(run_training(rest, quiet).first_epoch, 2);
  rest.loss = TrainingLoss::sm;
  ExpectThrowWith<InvalidArgument>([&] { read_resume_checkpoint(rest); }, {"loss cd -> sm"});
}

// Exact score matching with SiLU on the tutorial's mixture (500 points, one batch of 256 an
// epoch), 200 epochs at lr 1e-3. The loss starts near 0 (an untrained MLP is nearly flat: its
// |dE/dx|^2 and tr H are small) and can only fall below 0 by fitting the data's scores: for the
// data density itself it is -0.5 E|grad log q|^2 ~ -d / (2 std^2) = -100. Measured (seed 0):
// epoch 1 -0.009, epoch 200 -27.5; the bounds below (first > -0.1, last < -10 and below the
// first) leave a wide margin. Mode coverage is printed, not asserted: this run reaches 4/4
// modes with about 22% of the samples within 3 std of a mode, but that depends on how far it
// got in 200 iterations.
TEST_F(TrainerLossRun, ShortScoreMatchingTrainingOnTheTutorialLowersTheLoss) {
  TrainConfig c;
  c.loss = TrainingLoss::sm;
  c.model.activation = Activation::kSiLU;
  c.output_dir = "";
  c.final_steps = 200;
  std::vector<std::string> lines;
  const TrainReport r = run_training(c, [&](const std::string& l) { lines.push_back(l); });
  ASSERT_EQ(r.epoch_loss.size(), 200u);
  EXPECT_GT(r.epoch_loss.front(), -0.1);
  EXPECT_LT(r.epoch_loss.back(), -10.0);
  EXPECT_LT(r.epoch_loss.back(), r.epoch_loss.front());
  EXPECT_EQ(r.skipped, 0);
  EXPECT_FALSE(r.diverged);
  EXPECT_EQ(r.temperature, 1.0);
  ASSERT_FALSE(lines.empty());
  EXPECT_NE(lines.back().find("(sm)"), std::string::npos) << lines.back();
  std::printf(
      "[ measured ] sm, SiLU, 200 epochs: loss %.4f -> %.4f, modes covered %d/%d, "
      "%.1f%% of the samples near a mode, test NLL %.3f (H(data) %.3f)\n",
      r.epoch_loss.front(), r.epoch_loss.back(), r.modes_covered, r.modes_total,
      100 * r.share_near_mode, r.test_nll, r.data_entropy);
}

// ---------------------------------------------------------------------------------------------
// The CUDA backend (emulated in CI).

#if CUEBM_HAVE_CUDA
// One step of the device trainer from the parameters and Adam state it holds equals the device
// ScoreLoss's gradient at those parameters (the same kernels through the host entry, which part
// B's tests show equal to the device-pointer entry bit for bit) followed by the host's
// clip_grad_norm and Adam. The loss is bitwise; the parameters may differ by the clip scale's
// rounding only (the device adds the squared norm as a tree, the host in eight running sums:
// the double sums differ in their last bits, which can move the float scale by one ulp): bound
// 2 ulp of the parameter plus 1e-9.
TEST(TrainerLossesCuda, StepIsDeviceEvaluateThenClipThenAdam) {
  CUEBM_REQUIRE_CUDA();
  for (const LossCase& c : ScoreCases()) {
    SCOPED_TRACE(c.name);
    const TrainerOptions o = ScoreOptions(c, 0.05f, 13);
    Mlp model(SmoothSpec(), 8);
    CDTrainer trainer(model, o, 33, Device::cuda());
    ScoreLossOptions so = c.score;
    so.kind = score_loss_kind(c.loss);
    so.seed = 13;
    ScoreLoss device_loss(model.spec(), so, 33, Device::cuda());
    for (int it = 0; it < 3; ++it) {
      const int64_t rows = it == 1 ? 17 : 33;
      const std::vector<float> x = RandomNormal(rows * 2, 500 + it, 1.1f);
      trainer.sync_to_host();
      Mlp oracle = model;
      Adam adam = std::as_const(trainer).optimizer();
      std::vector<float> grad(model.num_parameters());
      const double loss = device_loss.evaluate(oracle, x.data(), rows, it, grad.data());
      clip_grad_norm(grad, 0.05);
      adam.step(oracle.parameters(), grad);
      const detail::CudaTrainerTraffic t0 = detail::cuda_trainer_traffic_for_testing();
      const StepStats s = trainer.step(x.data(), rows);
      const detail::CudaTrainerTraffic t1 = detail::cuda_trainer_traffic_for_testing();
      EXPECT_EQ(t1.syncs - t0.syncs, 1) << "one synchronisation per step";
      EXPECT_EQ(t1.d2h_bytes - t0.d2h_bytes, 48) << "only the statistics come back";
      EXPECT_EQ(s.loss, loss) << "iteration " << it;
      EXPECT_TRUE(std::isnan(s.neg_energy));
      EXPECT_TRUE(std::isnan(s.acceptance));
      trainer.sync_to_host();
      for (std::size_t i = 0; i < model.num_parameters(); ++i) {
        const float got = model.parameters()[i], want = oracle.parameters()[i];
        ASSERT_LE(std::fabs(got - want), 2 * std::fabs(want) * 1.2e-7f + 1e-9f)
            << "parameter " << i << ", iteration " << it;
      }
    }
    EXPECT_EQ(trainer.last_negatives(), nullptr);
  }
}

// The device trainer agrees with the CPU trainer's first step (same parameters: the losses
// within the device-vs-CPU bound of tests/test_score_matching_cuda.cpp, 1e-5 of the loss's
// scale), and a resumed device run equals the uninterrupted one bit for bit.
TEST(TrainerLossesCuda, AgreesWithTheCpuAndResumesBitForBit) {
  CUEBM_REQUIRE_CUDA();
  for (const LossCase& c : ScoreCases()) {
    if (c.score.hessian_method == HessianMethod::kTorchEbmApprox) continue;  // amplifies ulps
    SCOPED_TRACE(c.name);
    const TrainerOptions o = ScoreOptions(c, 1.0f, 17);
    const std::vector<float> x = RandomNormal(24 * 2, 600, 1.0f);
    Mlp cpu_model(SmoothSpec(Activation::kTanh), 9), gpu_model = cpu_model;
    CDTrainer cpu(cpu_model, o, 24), gpu(gpu_model, o, 24, Device::cuda());
    const StepStats sc = cpu.step(x.data(), 24), sg = gpu.step(x.data(), 24);
    EXPECT_NEAR(sg.loss, sc.loss, 1e-5 * std::max(1.0, std::fabs(sc.loss)));
    EXPECT_NEAR(sg.pos_energy, sc.pos_energy, 1e-5 * std::max(1.0, std::fabs(sc.pos_energy)));

    Mlp full_model(SmoothSpec(Activation::kTanh), 9), part_model = full_model;
    CDTrainer full(full_model, o, 24, Device::cuda());
    std::vector<std::vector<float>> batches;
    for (int it = 0; it < 4; ++it) batches.push_back(RandomNormal(24 * 2, 700 + it, 1.0f));
    for (const auto& b : batches) full.step(b.data(), 24);
    full.sync_to_host();
    TrainerState state;
    int64_t steps = 0;
    std::vector<float> m, v;
    {
      CDTrainer part(part_model, o, 24, Device::cuda());
      for (int it = 0; it < 2; ++it) part.step(batches[it].data(), 24);
      part.sync_to_host();
      state = part.state();
      steps = part.optimizer().steps();
      m.assign(part.optimizer().first_moment().begin(), part.optimizer().first_moment().end());
      v.assign(part.optimizer().second_moment().begin(), part.optimizer().second_moment().end());
    }
    Mlp resumed_model = part_model;
    CDTrainer resumed(resumed_model, o, 24, Device::cuda());
    resumed.optimizer().load_state(steps, m, v);
    resumed.load_state(state);
    for (int it = 2; it < 4; ++it) resumed.step(batches[it].data(), 24);
    resumed.sync_to_host();
    EXPECT_TRUE(BitwiseEqual(resumed_model.parameters(), full_model.parameters()));
    EXPECT_FALSE(BitwiseEqual(resumed_model.parameters(), part_model.parameters()));
  }
}
#endif

}  // namespace
}  // namespace cuebm
