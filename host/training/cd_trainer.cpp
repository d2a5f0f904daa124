#include <cmath>
#include <cstddef>
#include <iostream>

#include "cuebm/runtime/error.hpp"
#include "cuebm/training/cd.hpp"
#include "host/models/cuda_models.hpp"   // plain C++; its functions exist only when CUEBM_HAVE_CUDA
#include "host/runtime/cuda_device.hpp"  // plain C++; its functions exist only when CUEBM_HAVE_CUDA
#include "host/runtime/random.hpp"
#include "host/sampling/chain_runner.hpp"
#include "host/sampling/cuda_langevin.hpp"  // plain C++; its functions exist only when CUEBM_HAVE_CUDA
#include "host/sampling/langevin_options.hpp"
#include "host/training/cuda_trainer.hpp"  // plain C++; its functions exist only when CUEBM_HAVE_CUDA
#include "host/training/fused_cd.hpp"
#include "host/training/mcmc_negatives.hpp"
#include "kernels/training/optim.cuh"

namespace cuebm {
namespace {

// Chain ids of the replay buffer's initial chains, far from the batch rows' ids so their
// noise never coincides with a CD iteration's.
constexpr uint64_t kBufferChainBase = uint64_t{1} << 40;
// Subsequence of the buffer-initialisation stream (iterations use their own index).
constexpr uint64_t kBufferInitSubsequence = uint64_t{1} << 62;

detail::ChainPlan make_plan(const detail::StepArrays& steps, const LangevinOptions& sampler,
                            uint64_t seed) {
  detail::ChainPlan plan;
  plan.n_steps = static_cast<int>(steps.eta.size());
  plan.eta = steps.eta.data();
  plan.noise_coef = steps.noise_coef.data();
  plan.seed = seed;
  plan.clamp = sampler.clamp_min || sampler.clamp_max;
  plan.clamp_min = sampler.clamp_min.value_or(-INFINITY);
  plan.clamp_max = sampler.clamp_max.value_or(INFINITY);
  return plan;
}

void validate(const Mlp& model, const TrainerOptions& o, int64_t max_batch) {
  const CDOptions& cd = o.cd;
  if (max_batch < 1)
    throw InvalidArgument("CDTrainer: batch size must be >= 1, got " + std::to_string(max_batch));
  if (is_score_matching(o.loss)) {  // no negatives: the CD and sampler settings do not apply
    if (!std::isfinite(o.max_grad_norm))
      throw InvalidArgument("CDTrainer: max_grad_norm must be finite");
    if (o.max_nonfinite_steps < 0)
      throw InvalidArgument("CDTrainer: max_nonfinite_steps must be >= 0");
    ScoreLossOptions score = o.score;
    score.kind = score_loss_kind(o.loss);
    validate_score_loss_options(score);
    return;
  }
  if (cd.k_steps < 1)
    throw InvalidArgument("CDTrainer: k_steps must be >= 1, got " + std::to_string(cd.k_steps));
  if (cd.persistent && !cd.per_chain && cd.buffer_size < 1)
    throw InvalidArgument("CDTrainer: buffer_size must be >= 1, got " +
                          std::to_string(cd.buffer_size));
  if (cd.init_steps < 0)
    throw InvalidArgument("CDTrainer: init_steps must be >= 0, got " +
                          std::to_string(cd.init_steps));
  if (!(cd.new_sample_ratio >= 0 && cd.new_sample_ratio <= 1))
    throw InvalidArgument("CDTrainer: new_sample_ratio must be in [0, 1], got " +
                          std::to_string(cd.new_sample_ratio));
  if (!std::isfinite(cd.energy_reg_weight) || cd.energy_reg_weight < 0)
    throw InvalidArgument("CDTrainer: energy_reg_weight must be finite and >= 0, got " +
                          std::to_string(cd.energy_reg_weight));
  if (!std::isfinite(o.max_grad_norm))
    throw InvalidArgument("CDTrainer: max_grad_norm must be finite");
  if (o.max_nonfinite_steps < 0)
    throw InvalidArgument("CDTrainer: max_nonfinite_steps must be >= 0");
  LangevinOptions sampler = o.sampler;
  sampler.n_steps = cd.k_steps;
  detail::validate_langevin_options(sampler, "CDTrainer sampler");
  detail::validate_negative_sampler(o, model.dim(), "CDTrainer");
}

// The names of an enum's values, in the order the error message lists them.
template <typename Enum>
struct NamedValue {
  Enum value;
  const char* name;
};

constexpr NamedValue<NegativeSampler> kNegativeSamplerNames[] = {
    {NegativeSampler::langevin, "langevin"},
    {NegativeSampler::mala, "mala"},
    {NegativeSampler::hmc, "hmc"},
    {NegativeSampler::tempering, "tempering"}};

constexpr NamedValue<TrainingLoss> kTrainingLossNames[] = {{TrainingLoss::cd, "cd"},
                                                           {TrainingLoss::sm, "sm"},
                                                           {TrainingLoss::ssm, "ssm"},
                                                           {TrainingLoss::dsm, "dsm"}};

template <typename Enum, std::size_t N>
std::string name_of(Enum value, const NamedValue<Enum> (&names)[N]) {
  for (const NamedValue<Enum>& n : names)
    if (n.value == value) return n.name;
  return "unknown (" + std::to_string(static_cast<int>(value)) + ")";
}

// Throws "unknown <what> '<name>' (a, b, c or d)" for a name not in the table.
template <typename Enum, std::size_t N>
Enum parse_name(const std::string& name, const NamedValue<Enum> (&names)[N], const char* what) {
  for (const NamedValue<Enum>& n : names)
    if (name == n.name) return n.value;
  std::string choices;
  for (std::size_t i = 0; i < N; ++i)
    choices += std::string(i == 0 ? "" : i + 1 == N ? " or " : ", ") + names[i].name;
  throw InvalidArgument("unknown " + std::string(what) + " '" + name + "' (" + choices + ")");
}

}  // namespace

std::string negative_sampler_name(NegativeSampler sampler) {
  return name_of(sampler, kNegativeSamplerNames);
}

NegativeSampler parse_negative_sampler(const std::string& name) {
  return parse_name(name, kNegativeSamplerNames, "sampler");
}

std::string training_loss_name(TrainingLoss loss) { return name_of(loss, kTrainingLossNames); }

TrainingLoss parse_training_loss(const std::string& name) {
  return parse_name(name, kTrainingLossNames, "loss");
}

ScoreLossKind score_loss_kind(TrainingLoss loss) {
  switch (loss) {
    case TrainingLoss::sm:
      return ScoreLossKind::kScoreMatching;
    case TrainingLoss::ssm:
      return ScoreLossKind::kSlicedScoreMatching;
    case TrainingLoss::dsm:
      return ScoreLossKind::kDenoisingScoreMatching;
    case TrainingLoss::cd:
      break;
  }
  throw InvalidArgument("score_loss_kind: '" + training_loss_name(loss) +
                        "' is not a score-matching loss (sm, ssm or dsm)");
}

double loss_temperature(TrainingLoss loss, float noise_scale) {
  return is_score_matching(loss) ? 1.0 : static_cast<double>(noise_scale) * noise_scale;
}

double cd_loss(const float* pos, const float* neg, int64_t n, double w) {
  double sp = 0, sn = 0, sp2 = 0, sn2 = 0;
  for (int64_t i = 0; i < n; ++i) {
    sp += pos[i];
    sn += neg[i];
    sp2 += static_cast<double>(pos[i]) * pos[i];
    sn2 += static_cast<double>(neg[i]) * neg[i];
  }
  const double inv = 1.0 / static_cast<double>(n);
  return sp * inv - sn * inv + w * (sp2 * inv + sn2 * inv);
}

CDTrainer::CDTrainer(Mlp& model, const TrainerOptions& options, int64_t max_batch, Device device)
    : model_(model),
      options_(options),
      max_batch_(max_batch),
      adam_(model.num_parameters(), options.adam) {
  check_device(device);
#if !CUEBM_HAVE_CUDA
  if (device.is_cuda())
    throw InvalidArgument("CDTrainer: the CUDA backend is not available in this build");
#endif
  validate(model, options, max_batch);
  const int d = model.dim();
  on_warning = [](const std::string& line) { std::cerr << "cuebm: " << line << "\n"; };
  if (is_score_matching(options.loss)) {
    options_.score.kind = score_loss_kind(options.loss);
    energies_.resize(max_batch);
    grad_.resize(model.num_parameters());
#if CUEBM_HAVE_CUDA
    if (device.is_cuda()) {
      cuda_ = detail::make_cuda_trainer(model_, adam_, options_, max_batch_, device.index);
      return;
    }
#endif
    score_ = std::make_unique<ScoreLoss>(model.spec(), options_.score, max_batch);
    return;
  }
  neg_.resize(max_batch * d);
  both_.resize(2 * max_batch * d);
  if (!options.cd.persistent && options.negatives.kind == NegativeSampler::langevin &&
      !device.is_cuda())
    partials_.resize(detail::fused_cd_partial_floats(model, max_batch));
  energies_.resize(2 * max_batch);
  grad_.resize(model.num_parameters());
  start_rows_.resize(max_batch);
  refresh_rows_.resize(max_batch);
  options_.sampler.n_steps = options.cd.k_steps;
  steps_ = std::make_shared<const detail::StepArrays>(
      detail::make_step_arrays(options_.sampler, options.cd.k_steps));
  if (options.cd.persistent && options.cd.per_chain) options_.cd.buffer_size = max_batch;
  if (options.negatives.kind != NegativeSampler::langevin && !device.is_cuda())
    mcmc_ = std::make_unique<detail::McmcNegatives>(options_, d, options.cd.k_steps, max_batch);
#if CUEBM_HAVE_CUDA
  if (device.is_cuda())
    cuda_ = detail::make_cuda_trainer(model_, adam_, options_, max_batch_, device.index);
#endif
}

CDTrainer::~CDTrainer() = default;

void CDTrainer::init_buffer() {
  const int d = model_.dim();
  const int64_t size = options_.cd.buffer_size;
  buffer_.resize(size * d);
  RandomStream rng(options_.seed, StreamTag::kBuffer, kBufferInitSubsequence);
  for (float& v : buffer_) v = 0.01f * rng.normal();
  if (mcmc_ && options_.cd.init_steps > 0) {
    // In chunks of at most max_batch chains, keyed by the chains' rows as one run would be.
    const int64_t chunk = std::min(max_batch_, size);
    detail::McmcNegatives init(options_, d, options_.cd.init_steps, chunk);
    const uint64_t ids_per_row =
        options_.negatives.kind == NegativeSampler::tempering ? options_.negatives.replicas : 1;
    for (int64_t first = 0; first < size; first += chunk)
      init.run(model_, buffer_.data() + first * d, std::min(chunk, size - first),
               kBufferChainBase + static_cast<uint64_t>(first) * ids_per_row, 0);
  } else if (options_.cd.init_steps > 0) {
    const detail::StepArrays steps =
        detail::make_step_arrays(options_.sampler, options_.cd.init_steps);
    detail::ChainPlan plan = make_plan(steps, options_.sampler, options_.seed);
    plan.first_chain = kBufferChainBase;
    const int64_t bad = detail::run_chains_cpu(model_, buffer_.data(), size, plan);
    if (bad >= 0)
      throw NumericalError("CDTrainer: replay-buffer initialisation diverged (row " +
                           std::to_string(bad) + " not finite after " +
                           std::to_string(options_.cd.init_steps) + " steps); reduce step_size");
  }
  buffer_ptr_ = 0;
  buffer_ready_ = true;
}

void CDTrainer::start_negatives(int64_t rows) {
  const int d = model_.dim();
  const int64_t size = options_.cd.buffer_size;
  RandomStream rng(options_.seed, StreamTag::kBuffer, static_cast<uint64_t>(iteration_));
  if (options_.cd.per_chain) {
    for (int64_t i = 0; i < rows; ++i) start_rows_[i] = i;
  } else if (size < rows) {
    if (!warned_small_buffer_) {
      on_warning("replay buffer (" + std::to_string(size) + " rows) is smaller than the batch (" +
                 std::to_string(rows) + "): drawing start rows uniformly at random");
      warned_small_buffer_ = true;
    }
    for (int64_t i = 0; i < rows; ++i) start_rows_[i] = static_cast<int64_t>(rng.uniform_int(size));
  } else {
    const int64_t stride = size / rows;
    for (int64_t i = 0; i < rows; ++i)
      start_rows_[i] = (i * stride + static_cast<int64_t>(rng.uniform_int(stride))) % size;
  }
  for (int64_t i = 0; i < rows; ++i)
    std::copy_n(buffer_.data() + start_rows_[i] * d, d, neg_.data() + i * d);
  if (options_.cd.per_chain) return;
  const int64_t n_new = std::max<int64_t>(
      1,
      static_cast<int64_t>(std::floor(static_cast<double>(rows) * options_.cd.new_sample_ratio)));
  for (int64_t i = 0; i < rows; ++i) refresh_rows_[i] = i;
  for (int64_t j = 0; j < n_new; ++j)  // the first n_new entries of a random permutation
    std::swap(refresh_rows_[j], refresh_rows_[j + rng.uniform_int(rows - j)]);
  for (int64_t j = 0; j < n_new; ++j) {
    float* row = neg_.data() + refresh_rows_[j] * d;
    for (int k = 0; k < d; ++k)
      row[k] = options_.cd.reinit_from_noise ? rng.normal() : row[k] + 0.01f * rng.normal();
  }
}

void CDTrainer::write_buffer(int64_t rows) {
  const int d = model_.dim();
  const int64_t size = options_.cd.buffer_size;
  if (options_.cd.per_chain) {
    std::copy_n(neg_.data(), rows * d, buffer_.data());
  } else if (rows >= size) {
    std::copy_n(neg_.data() + (rows - size) * d, size * d, buffer_.data());
  } else {
    for (int64_t i = 0; i < rows; ++i)
      std::copy_n(neg_.data() + i * d, d, buffer_.data() + ((buffer_ptr_ + i) % size) * d);
    buffer_ptr_ = (buffer_ptr_ + rows) % size;
  }
}

void CDTrainer::sync_mirrors(unsigned mirrors) const {
#if CUEBM_HAVE_CUDA
  if (cuda_) cuda_->sync_to_host(mirrors, neg_, buffer_);
#else
  (void)mirrors;
#endif
}

void CDTrainer::sync_to_host() const { sync_mirrors(detail::kMirrorAll); }

const Adam& CDTrainer::optimizer() const {
  sync_mirrors(detail::kMirrorOptimizer);
  return adam_;
}

Adam& CDTrainer::optimizer() {
  sync_mirrors(detail::kMirrorOptimizer);
#if CUEBM_HAVE_CUDA
  if (cuda_) cuda_->optimizer_handed_out();
#endif
  return adam_;
}

const std::vector<float>& CDTrainer::replay_buffer() const {
  sync_mirrors(detail::kMirrorBuffer);
  return buffer_;
}

const float* CDTrainer::last_negatives() const {
  if (is_score_matching(options_.loss)) return nullptr;
  sync_mirrors(detail::kMirrorNegatives);
  return neg_.data();
}

TrainerState CDTrainer::state() const {
  sync_mirrors(detail::kMirrorBuffer);
  return {iteration_, consecutive_nonfinite_, buffer_, buffer_ptr_, buffer_ready_};
}

void CDTrainer::load_state(const TrainerState& s) {
  const int64_t rows = options_.cd.buffer_size * model_.dim();
  if (s.iteration < 0 || s.consecutive_nonfinite < 0)
    throw InvalidArgument("CDTrainer::load_state: negative iteration or failure count");
  if (is_score_matching(options_.loss) && (s.buffer_ready || !s.buffer.empty()))
    throw InvalidArgument("CDTrainer::load_state: the state holds a replay buffer, but the loss " +
                          training_loss_name(options_.loss) + " has none (a CD run's state?)");
  if (s.buffer_ready && (static_cast<int64_t>(s.buffer.size()) != rows || s.buffer_ptr < 0 ||
                         s.buffer_ptr >= options_.cd.buffer_size))
    throw InvalidArgument("CDTrainer::load_state: replay buffer of " +
                          std::to_string(s.buffer.size()) + " floats does not match " +
                          std::to_string(options_.cd.buffer_size) + " rows of dimension " +
                          std::to_string(model_.dim()));
  iteration_ = s.iteration;
  consecutive_nonfinite_ = s.consecutive_nonfinite;
  buffer_ = s.buffer;
  buffer_ptr_ = s.buffer_ptr;
  buffer_ready_ = s.buffer_ready;
#if CUEBM_HAVE_CUDA
  if (cuda_) cuda_->load_buffer(buffer_, buffer_ready_);
#endif
}

StepStats CDTrainer::step(const float* batch, int64_t rows) {
  if (rows < 1 || rows > max_batch_)
    throw InvalidArgument("CDTrainer::step: batch must have 1.." + std::to_string(max_batch_) +
                          " rows, got " + std::to_string(rows));
  if (!batch) throw InvalidArgument("CDTrainer::step: null batch");
  const int d = model_.dim();
  detail::require_finite_rows(batch, rows, d, "CDTrainer::step: data batch");
#if CUEBM_HAVE_CUDA
  if (cuda_) {
    detail::CudaTrainerState st{iteration_,    consecutive_nonfinite_, buffer_ptr_,
                                buffer_ready_, warned_small_buffer_,   buffer_,
                                start_rows_,   refresh_rows_,          on_warning};
    return cuda_->step(batch, rows, st);
  }
#endif
  if (score_) return score_matching_step(batch, rows);

  StepStats stats;
  const uint64_t step_offset = static_cast<uint64_t>(iteration_) * options_.cd.k_steps;
  const float wf = options_.cd.energy_reg_weight;
  detail::ChainPlan plan = make_plan(*steps_, options_.sampler, options_.seed);
  plan.step_offset = step_offset;
  // The loss gradient sum_i c_i dE(x_i)/dtheta with c_i from E(x_i), in the energies' pass;
  // it is discarded below when the loss is not finite.
  if (!partials_.empty() && detail::fused_cd_applies(rows, plan.n_steps)) {
    detail::fused_cd_iteration(model_, batch, rows, plan, wf, neg_.data(), energies_.data(),
                               grad_.data(), partials_.data());
  } else {
    if (options_.cd.persistent) {
      if (!buffer_ready_) init_buffer();
      start_negatives(rows);
    } else {
      std::copy_n(batch, rows * d, neg_.data());
    }
    if (mcmc_)
      stats.acceptance = mcmc_->run(model_, neg_.data(), rows, 0, step_offset);
    else
      detail::run_chains_cpu(model_, neg_.data(), rows, plan);
    std::copy_n(batch, rows * d, both_.data());
    std::copy_n(neg_.data(), rows * d, both_.data() + rows * d);
    const float inv_n = 1.0f / static_cast<float>(rows);
    model_.energy_and_parameter_gradient(
        both_.data(), 2 * rows,
        [&](int64_t row0, int n, const float* e, float* c) {
          for (int r = 0; r < n; ++r)
            c[r] = detail::cd_coefficient(e[r], row0 + r < rows, wf, inv_n);
        },
        energies_.data(), grad_.data());
  }
  const float* pos_e = energies_.data();
  const float* neg_e = energies_.data() + rows;
  stats.loss = cd_loss(pos_e, neg_e, rows, options_.cd.energy_reg_weight);
  double sp = 0, sn = 0;
  for (int64_t i = 0; i < rows; ++i) {
    sp += pos_e[i];
    sn += neg_e[i];
  }
  stats.pos_energy = sp / rows;
  stats.neg_energy = sn / rows;
  ++iteration_;
  if (!std::isfinite(stats.loss)) {
    stats.skipped = true;
    skip_nonfinite(stats);
    return stats;
  }
  consecutive_nonfinite_ = 0;

  stats.grad_norm =
      options_.max_grad_norm > 0 ? clip_grad_norm(grad_, options_.max_grad_norm) : grad_norm(grad_);
  adam_.step(model_.parameters(), grad_);
  if (options_.cd.persistent) write_buffer(rows);
  return stats;
}

void CDTrainer::skip_nonfinite(const StepStats& stats) {
  ++consecutive_nonfinite_;
  const bool sm = is_score_matching(options_.loss);
  on_warning("iteration " + std::to_string(iteration_ - 1) + ": loss is not finite (" +
             (sm ? "E mean " + std::to_string(stats.pos_energy)
                 : "E+ mean " + std::to_string(stats.pos_energy) + ", E- mean " +
                       std::to_string(stats.neg_energy)) +
             "); update skipped");
  if (consecutive_nonfinite_ > options_.max_nonfinite_steps)
    throw NumericalError("CDTrainer: " + std::to_string(consecutive_nonfinite_) +
                         " consecutive iterations with a non-finite loss (last at iteration " +
                         std::to_string(iteration_ - 1) +
                         (sm ? "); the model diverged: reduce lr"
                             : "); the model or the chains diverged: reduce lr or step_size"));
}

// The score-matching iteration: the loss and its parameter gradient on the batch with the draws
// of this iteration, then the same clipping and Adam step as CD.
StepStats CDTrainer::score_matching_step(const float* batch, int64_t rows) {
  StepStats stats;
  stats.neg_energy = NAN;
  stats.loss = score_->evaluate(model_.parameters(), batch, rows, static_cast<uint64_t>(iteration_),
                                grad_.data());
  model_.energy(batch, rows, energies_.data());
  double sp = 0;
  for (int64_t i = 0; i < rows; ++i) sp += energies_[i];
  stats.pos_energy = sp / rows;
  ++iteration_;
  if (!std::isfinite(stats.loss)) {
    stats.skipped = true;
    skip_nonfinite(stats);
    return stats;
  }
  consecutive_nonfinite_ = 0;
  stats.grad_norm =
      options_.max_grad_norm > 0 ? clip_grad_norm(grad_, options_.max_grad_norm) : grad_norm(grad_);
  adam_.step(model_.parameters(), grad_);
  return stats;
}

}  // namespace cuebm
