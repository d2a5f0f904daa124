// Tests of training checkpoints: a run interrupted and resumed equals the uninterrupted run bit
// for bit (CD-k and persistent CD with the replay buffer), checkpoints round-trip, and broken
// or mismatched checkpoints are clear errors.
#include "cuebm/training/checkpoint.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "cuebm/io/safetensors.hpp"
#include "cuebm/runtime/error.hpp"
#include "cuebm/training/training.hpp"

namespace cuebm {
namespace {

namespace fs = std::filesystem;

class CheckpointTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::temp_directory_path() /
           ("cuebm_ckpt_" + std::to_string(::getpid()) + "_" + info->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }

  fs::path dir_;
};

// The tutorial's settings at a small size, no files.
TrainConfig small_config(bool persistent) {
  TrainConfig c;
  c.dataset_params = {{"n", 256}, {"components", 4}, {"std", 0.1}, {"radius", 1.5}};
  c.model.hidden = {16, 16};
  c.batch_size = 64;
  c.epochs = 6;
  c.cd.persistent = persistent;
  c.cd.buffer_size = 300;
  c.cd.init_steps = 10;
  c.output_dir.clear();
  c.figure_samples = 100;
  c.final_steps = 30;
  c.seed = 11;
  return c;
}

void expect_same_run(const TrainReport& a, const TrainReport& b) {
  ASSERT_EQ(a.final_parameters.size(), b.final_parameters.size());
  EXPECT_EQ(std::memcmp(a.final_parameters.data(), b.final_parameters.data(),
                        a.final_parameters.size() * sizeof(float)),
            0)
      << "final parameters differ";
  ASSERT_EQ(a.epoch_loss.size(), b.epoch_loss.size());
  for (std::size_t i = 0; i < a.epoch_loss.size(); ++i)
    EXPECT_EQ(std::memcmp(&a.epoch_loss[i], &b.epoch_loss[i], sizeof(double)), 0)
        << "epoch " << i + 1 << ": " << a.epoch_loss[i] << " vs " << b.epoch_loss[i];
  EXPECT_EQ(a.iterations, b.iterations);
  EXPECT_EQ(a.skipped, b.skipped);
  EXPECT_EQ(a.final_samples, b.final_samples);
  EXPECT_EQ(a.log_z, b.log_z);
  EXPECT_EQ(a.mmd2, b.mmd2);
}

void resume_equals_uninterrupted(const std::string& ckpt, bool persistent) {
  const auto quiet = [](const std::string&) {};
  const TrainConfig full = small_config(persistent);
  const TrainReport whole = run_training(full, quiet);
  ASSERT_EQ(whole.epoch_loss.size(), 6u);

  TrainConfig first = full;
  first.epochs = 3;
  first.checkpoint_path = ckpt;
  const TrainReport part = run_training(first, quiet);
  ASSERT_TRUE(fs::exists(ckpt));
  const Checkpoint ck = read_checkpoint(ckpt);
  EXPECT_EQ(ck.epoch, 3);
  EXPECT_EQ(ck.epoch_loss, part.epoch_loss);
  EXPECT_EQ(ck.trainer.buffer_ready, persistent);
  EXPECT_EQ(ck.trainer.buffer.empty(), !persistent);

  TrainConfig second = full;
  second.resume_from = ckpt;
  std::vector<std::string> lines;
  int64_t first_iteration = -1;
  const TrainReport resumed = run_training(
      second, [&](const std::string& l) { lines.push_back(l); },
      [&](const TrainProgress& p) {
        if (first_iteration < 0) first_iteration = p.iteration;
        EXPECT_GE(p.epoch, 4);
        EXPECT_EQ(p.total_iterations, whole.iterations);
      });
  EXPECT_EQ(resumed.first_epoch, 4);
  EXPECT_EQ(first_iteration, part.iterations + 1);
  ASSERT_FALSE(lines.empty());
  EXPECT_NE(lines.front().find("Resuming"), std::string::npos);
  expect_same_run(whole, resumed);
}

TEST_F(CheckpointTest, ResumeIsBitIdenticalCD) {
  resume_equals_uninterrupted(path("cd.safetensors"), false);
}

TEST_F(CheckpointTest, ResumeIsBitIdenticalPersistentReplayBuffer) {
  resume_equals_uninterrupted(path("pcd.safetensors"), true);
}

TEST_F(CheckpointTest, PeriodicCheckpointsAndModelFile) {
  TrainConfig c = small_config(false);
  c.epochs = 5;
  c.checkpoint_every = 2;
  c.checkpoint_path = path("ck.safetensors");
  c.model_path = path("model.safetensors");
  std::vector<int> epochs_seen;
  const TrainReport r = run_training(c, [](const std::string&) {});
  const Checkpoint ck = read_checkpoint(c.checkpoint_path);
  EXPECT_EQ(ck.epoch, 5);
  EXPECT_EQ(ck.parameters, r.final_parameters);
  EXPECT_EQ(ck.config, training_fingerprint(c));
  // A checkpoint is also a model file, and the model file holds the final parameters.
  const Mlp from_ck = load_mlp(c.checkpoint_path);
  const Mlp model = load_mlp(c.model_path);
  EXPECT_EQ(std::vector<float>(model.parameters().begin(), model.parameters().end()),
            r.final_parameters);
  EXPECT_EQ(std::vector<float>(from_ck.parameters().begin(), from_ck.parameters().end()),
            r.final_parameters);
}

TEST_F(CheckpointTest, RoundTrip) {
  Checkpoint c;
  c.model.hidden = {4};
  c.model.activation = Activation::kTanh;
  const Mlp m(c.model, 3);
  c.parameters.assign(m.parameters().begin(), m.parameters().end());
  c.adam_steps = 17;
  c.adam_m.assign(c.parameters.size(), 0.25f);
  c.adam_v.assign(c.parameters.size(), 1e-7f);
  c.trainer.iteration = 17;
  c.trainer.consecutive_nonfinite = 1;
  c.trainer.buffer = {1, 2, 3, 4, 5, 6};
  c.trainer.buffer_ptr = 2;
  c.trainer.buffer_ready = true;
  c.epoch = 2;
  c.epoch_loss = {0.125, -1e-9};
  c.iterations = 17;
  c.skipped = 1;
  c.train_seconds = 0.1;
  c.config = {{"seed", "3"}};
  write_checkpoint(path("c.safetensors"), c);
  const Checkpoint b = read_checkpoint(path("c.safetensors"));
  EXPECT_EQ(b.model.hidden, c.model.hidden);
  EXPECT_EQ(b.model.activation, c.model.activation);
  EXPECT_EQ(b.parameters, c.parameters);
  EXPECT_EQ(b.adam_steps, 17);
  EXPECT_EQ(b.adam_m, c.adam_m);
  EXPECT_EQ(b.adam_v, c.adam_v);
  EXPECT_EQ(b.trainer.iteration, 17);
  EXPECT_EQ(b.trainer.consecutive_nonfinite, 1);
  EXPECT_EQ(b.trainer.buffer, c.trainer.buffer);
  EXPECT_EQ(b.trainer.buffer_ptr, 2);
  EXPECT_TRUE(b.trainer.buffer_ready);
  EXPECT_EQ(b.epoch, 2);
  EXPECT_EQ(b.epoch_loss, c.epoch_loss);
  EXPECT_EQ(b.train_seconds, 0.1);
  EXPECT_EQ(b.config, c.config);
  // Sizes that do not fit are refused and nothing is written.
  c.adam_m.pop_back();
  EXPECT_THROW(write_checkpoint(path("bad.safetensors"), c), InvalidArgument);
  EXPECT_FALSE(fs::exists(path("bad.safetensors")));
}

TEST_F(CheckpointTest, TruncatedOrForeignCheckpointErrors) {
  TrainConfig c = small_config(false);
  c.epochs = 2;
  c.checkpoint_path = path("ck.safetensors");
  run_training(c, [](const std::string&) {});
  std::string bytes;
  {
    std::ifstream in(c.checkpoint_path, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  std::ofstream(path("cut.safetensors"), std::ios::binary) << bytes.substr(0, bytes.size() - 100);
  try {
    read_checkpoint(path("cut.safetensors"));
    ADD_FAILURE() << "no error";
  } catch (const IoError& e) {
    EXPECT_NE(std::string(e.what()).find("cut.safetensors"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("out of range"), std::string::npos) << e.what();
  }
  TrainConfig resume = c;
  resume.epochs = 4;
  resume.checkpoint_path.clear();
  resume.resume_from = path("cut.safetensors");
  resume.output_dir = path("out");
  EXPECT_THROW(run_training(resume, [](const std::string&) {}), IoError);
  EXPECT_FALSE(fs::exists(resume.output_dir)) << "nothing is created before the error";
  // A plain model file is not a checkpoint.
  save_mlp(path("model.safetensors"), Mlp(c.model, 0));
  try {
    read_checkpoint(path("model.safetensors"));
    ADD_FAILURE() << "no error";
  } catch (const IoError& e) {
    EXPECT_NE(std::string(e.what()).find("cuebm.checkpoint"), std::string::npos) << e.what();
  }
}

TEST_F(CheckpointTest, ResumeWithOtherSettingsIsRefused) {
  TrainConfig c = small_config(false);
  c.epochs = 2;
  c.checkpoint_path = path("ck.safetensors");
  run_training(c, [](const std::string&) {});
  TrainConfig other = c;
  other.checkpoint_path.clear();
  other.resume_from = c.checkpoint_path;
  other.epochs = 4;
  other.adam.lr = 0.01f;
  other.batch_size = 32;
  try {
    run_training(other, [](const std::string&) {});
    ADD_FAILURE() << "no error";
  } catch (const InvalidArgument& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("ck.safetensors"), std::string::npos) << msg;
    EXPECT_NE(msg.find("lr"), std::string::npos) << msg;
    EXPECT_NE(msg.find("batch_size 64 -> 32"), std::string::npos) << msg;
  }
  other = c;
  other.resume_from = c.checkpoint_path;
  other.epochs = 1;
  EXPECT_THROW(run_training(other, [](const std::string&) {}), InvalidArgument);
}

}  // namespace
}  // namespace cuebm
