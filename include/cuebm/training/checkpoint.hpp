// Training checkpoints: everything run_training needs to continue a run bit for bit.
//
// A checkpoint is a safetensors file (safetensors.hpp), so that it also loads as a model file
// (load_mlp) and in Python (safetensors.torch.load_file). Tensors:
//   network.<i>.weight / network.<i>.bias  F32  the model, as save_mlp writes it
//   adam.m, adam.v                          F32  [P]  Adam's first and second moments
//   buffer                                  F32  [rows, D]  the replay buffer (when used)
//   epoch_loss                              F64  [epoch]  mean loss of each finished epoch
//   epoch_acceptance                        F64  [epoch]  the negatives' mean acceptance rate of
//                                                each finished epoch (MALA, HMC, tempering only)
// Metadata: the model file's keys, "cuebm.checkpoint" = "1", the counters "cuebm.epoch",
// "cuebm.iteration", "cuebm.adam_steps", "cuebm.consecutive_nonfinite", "cuebm.buffer_ptr",
// "cuebm.buffer_ready", "cuebm.iterations", "cuebm.skipped", "cuebm.train_seconds", and the
// training settings as "cuebm.config.<key>" (training_fingerprint). The random streams (noise,
// shuffles, replay-buffer draws) are keyed by (seed, iteration / epoch), so these counters are
// the RNG state. The negatives' sampler ("cuebm.config.sampler" and its settings) needs no state
// of its own (TrainerState); nor does a score-matching loss ("cuebm.config.loss" and its
// settings: its draws are keyed by the seed and the iteration, and it has no buffer). Written
// atomically (temporary file and rename).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "cuebm/models/mlp.hpp"
#include "cuebm/training/cd.hpp"

namespace cuebm {

struct Checkpoint {
  MlpSpec model;
  std::vector<float> parameters;  // Mlp::parameters() order
  int64_t adam_steps = 0;
  std::vector<float> adam_m, adam_v;
  TrainerState trainer;
  int epoch = 0;                         // epochs finished
  std::vector<double> epoch_loss;        // one per finished epoch
  std::vector<double> epoch_acceptance;  // empty (Langevin) or one per finished epoch
  int64_t iterations = 0, skipped = 0;
  double train_seconds = 0;
  std::map<std::string, std::string> config;  // training_fingerprint of the run
};

// Throws InvalidArgument when the sizes disagree (parameters vs model, moments, buffer);
// IoError when writing fails. Nothing is left at `path` on failure.
void write_checkpoint(const std::string& path, const Checkpoint& checkpoint);
// Throws IoError naming the file and the problem for anything missing, malformed or
// inconsistent.
Checkpoint read_checkpoint(const std::string& path);

}  // namespace cuebm
