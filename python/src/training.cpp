// The trainer: CDTrainer (one iteration of CD or of a score-matching loss with Adam and
// clipping per step) and a
// fit loop over a DataLoader with Ctrl-C checked between steps. The trainer is created at the
// first step when max_batch is not given (then batches may not grow).
#include <nanobind/stl/optional.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include <cmath>
#include <memory>
#include <optional>

#include "arrays.hpp"
#include "bindings.hpp"
#include "cuebm/data/datasets.hpp"
#include "cuebm/runtime/error.hpp"
#include "cuebm/training/cd.hpp"
#include "interrupt.hpp"
#include "options.hpp"

namespace cuebm::python {
namespace {

class Trainer {
 public:
  Trainer(Mlp& model, const TrainerOptions& options, std::optional<int64_t> max_batch,
          Device device)
      : model_(model), options_(options), device_(device) {
    if (max_batch) create(*max_batch);
  }

  StepStats step(const float* batch, int64_t rows) {
    if (!trainer_) create(rows);
    if (rows > max_batch_)
      throw InvalidArgument("batch of " + std::to_string(rows) +
                            " rows is larger than max_batch (" + std::to_string(max_batch_) +
                            "); pass max_batch= when creating the trainer");
    last_ = trainer_->step(batch, rows);
    last_rows_ = rows;
    return last_;
  }

  CDTrainer& trainer() {
    if (!trainer_) throw InvalidArgument("the trainer has not run a step yet");
    return *trainer_;
  }
  bool started() const { return trainer_ != nullptr; }
  const StepStats& last() const { return last_; }
  int64_t last_rows() const { return last_rows_; }
  Mlp& model() { return model_; }

 private:
  void create(int64_t max_batch) {
    trainer_ = std::make_unique<CDTrainer>(model_, options_, max_batch, device_);
    max_batch_ = max_batch;
  }

  Mlp& model_;
  TrainerOptions options_;
  Device device_;
  std::unique_ptr<CDTrainer> trainer_;
  int64_t max_batch_ = 0;
  StepStats last_;
  int64_t last_rows_ = 0;
};

nb::dict stats_dict(const StepStats& s) {
  nb::dict d;
  d["loss"] = s.loss;
  d["pos_energy"] = s.pos_energy;
  d["neg_energy"] = s.neg_energy;
  d["grad_norm"] = s.grad_norm;
  d["skipped"] = s.skipped;
  d["acceptance"] = s.acceptance;
  return d;
}

}  // namespace

void bind_training(nb::module_& m) {
  nb::class_<Trainer>(m, "CDTrainer",
                      "Contrastive divergence (CD-k, persistent CD; loss='cd') or a "
                      "score-matching loss (loss='sm', 'ssm', 'dsm') with Adam and gradient "
                      "clipping on an Mlp, as cuebm::CDTrainer; step() updates the model.")
      .def(
          "__init__",
          [](Trainer* self, Mlp& model, int k_steps, bool persistent, int64_t buffer_size,
             int init_steps, float new_sample_ratio, float energy_reg_weight, bool per_chain,
             bool reinit_from_noise, const Schedule& step_size, const Schedule& noise_scale,
             std::optional<float> clamp_min, std::optional<float> clamp_max,
             const std::string& sampler, float hmc_step_size, int leapfrog, std::vector<float> mass,
             int replicas, double t_max, int swap_every, float lr, float beta1, float beta2,
             float eps, float weight_decay, float max_grad_norm, uint64_t seed,
             int max_nonfinite_steps, std::optional<int64_t> max_batch, const std::string& device,
             const std::string& loss, const std::string& hessian_method, int n_projections,
             const std::string& projection_type, float dsm_noise_scale,
             const std::string& denoising_sign, float regularization_strength) {
            TrainerOptions o;
            o.loss = parse_training_loss(loss);
            o.score = score_loss_options(hessian_method, n_projections, projection_type,
                                         dsm_noise_scale, denoising_sign, regularization_strength);
            o.score.seed = seed;  // as run_training: the run's seed keys the draws
            o.cd = {.k_steps = k_steps,
                    .persistent = persistent,
                    .buffer_size = buffer_size,
                    .init_steps = init_steps,
                    .new_sample_ratio = new_sample_ratio,
                    .energy_reg_weight = energy_reg_weight,
                    .per_chain = per_chain,
                    .reinit_from_noise = reinit_from_noise};
            o.sampler = {.step_size = step_size,
                         .noise_scale = noise_scale,
                         .seed = seed,
                         .clamp_min = clamp_min,
                         .clamp_max = clamp_max};
            o.negatives = negative_sampler_options(sampler, hmc_step_size, leapfrog,
                                                   std::move(mass), replicas, t_max, swap_every);
            o.adam = {lr, beta1, beta2, eps, weight_decay};
            o.max_grad_norm = max_grad_norm;
            o.seed = seed;
            o.max_nonfinite_steps = max_nonfinite_steps;
            new (self) Trainer(model, o, max_batch, parse_device(device));
          },
          nb::keep_alive<1, 2>(), nb::arg("model"), nb::arg("k_steps") = 10,
          nb::arg("persistent") = false, nb::arg("buffer_size") = 10000,
          nb::arg("init_steps") = 100, nb::arg("new_sample_ratio") = 0.05f,
          nb::arg("energy_reg_weight") = 0.001f, nb::arg("per_chain") = false,
          nb::arg("reinit_from_noise") = false, nb::arg("step_size") = Schedule(1e-3f),
          nb::arg("noise_scale") = Schedule(1.0f), nb::arg("clamp_min").none() = nb::none(),
          nb::arg("clamp_max").none() = nb::none(), nb::arg("sampler") = "langevin",
          nb::arg("hmc_step_size") = 0.0f, nb::arg("leapfrog") = 10,
          nb::arg("mass") = std::vector<float>{}, nb::arg("replicas") = 8, nb::arg("t_max") = 0.0,
          nb::arg("swap_every") = 1, nb::arg("lr") = 1e-3f, nb::arg("beta1") = 0.9f,
          nb::arg("beta2") = 0.999f, nb::arg("eps") = 1e-8f, nb::arg("weight_decay") = 0.0f,
          nb::arg("max_grad_norm") = 1.0f, nb::arg("seed") = 0, nb::arg("max_nonfinite_steps") = 3,
          nb::arg("max_batch").none() = nb::none(), nb::arg("device") = "cpu",
          nb::arg("loss") = "cd", nb::arg("hessian_method") = "exact", nb::arg("n_projections") = 5,
          nb::arg("projection_type") = "rademacher", nb::arg("dsm_noise_scale") = 0.01f,
          nb::arg("denoising_sign") = "correct", nb::arg("regularization_strength") = 0.0f)
      .def(
          "step",
          [](Trainer& t, const AnyArray& batch) {
            const FloatArray rows = as_rows(batch, "batch", t.model().dim());
            const StepStats s = without_gil([&] { return t.step(rows.data(), rows.shape(0)); });
            return s.loss;
          },
          nb::arg("batch"),
          "One iteration on an (n, dim) batch: the loss (CD: with its negatives) and its "
          "gradient, clipping, Adam. "
          "Returns the loss at the parameters before the update (NaN: the step was skipped).")
      .def(
          "fit",
          [](Trainer& t, const AnyArray& data, int epochs, int64_t batch_size, bool shuffle,
             bool drop_last, uint64_t seed, int first_epoch) {
            const FloatArray rows = as_rows(data, "data", t.model().dim());
            DataLoader loader(rows.data(), rows.shape(0), t.model().dim(), batch_size, shuffle,
                              drop_last, seed);
            std::vector<double> epoch_loss;
            for (int epoch = first_epoch; epoch < first_epoch + epochs; ++epoch) {
              loader.start_epoch(epoch);
              double sum = 0;
              int64_t used = 0;
              for (int64_t b = 0; b < loader.num_batches(); ++b) {
                const StepStats s =
                    without_gil([&] { return t.step(loader.batch(b), loader.batch_rows(b)); });
                if (!s.skipped) {
                  sum += s.loss;
                  ++used;
                }
                raise_pending_signals();  // the steps done so far are kept
              }
              epoch_loss.push_back(used ? sum / static_cast<double>(used) : NAN);
            }
            return epoch_loss;
          },
          nb::arg("data"), nb::arg("epochs"), nb::arg("batch_size"), nb::arg("shuffle") = true,
          nb::arg("drop_last") = true, nb::arg("seed") = 0, nb::arg("first_epoch") = 0,
          "Epochs of steps over data with cuEBM's DataLoader (epoch e shuffled by (seed, e)); "
          "returns each epoch's mean loss. Ctrl-C stops after the current step.")
      .def_prop_ro(
          "last_stats", [](const Trainer& t) { return stats_dict(t.last()); },
          "loss, pos_energy, neg_energy, grad_norm, skipped, acceptance of the last step.")
      .def_prop_ro("iteration",
                   [](Trainer& t) { return t.started() ? t.trainer().iteration() : int64_t{0}; })
      .def(
          "last_negatives",
          [](Trainer& t) {
            const float* neg = t.trainer().last_negatives();
            if (!neg) return nb::object(nb::none());  // score matching has no negatives
            const auto n = static_cast<std::size_t>(t.last_rows());
            const auto d = static_cast<std::size_t>(t.model().dim());
            return nb::cast(to_numpy(std::vector<float>(neg, neg + n * d), {n, d}));
          },
          "The negatives of the last step (copy); None for score-matching losses.")
      .def(
          "replay_buffer",
          [](Trainer& t) {
            std::vector<float> b = t.trainer().replay_buffer();
            const auto d = static_cast<std::size_t>(t.model().dim());
            const std::size_t rows = b.size() / d;
            return to_numpy(std::move(b), {rows, d});
          },
          "The replay buffer (copy).")
      .def(
          "optimizer_state",
          [](Trainer& t) {
            const Adam& adam = t.trainer().optimizer();
            const auto m1 = adam.first_moment(), v = adam.second_moment();
            nb::dict d;
            d["steps"] = adam.steps();
            d["m"] = to_numpy(std::vector<float>(m1.begin(), m1.end()), {m1.size()});
            d["v"] = to_numpy(std::vector<float>(v.begin(), v.end()), {v.size()});
            return d;
          },
          "Adam's step count and moments (copies).")
      .def(
          "sync_to_host",
          [](Trainer& t) {
            if (t.started()) t.trainer().sync_to_host();
          },
          "Brings the model's parameters up to date on the host (CUDA trainer).");
}

}  // namespace cuebm::python
