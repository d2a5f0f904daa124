// A whole training run (cuebm::run_training, the `cuebm train` command) from Python: log lines
// go to a Python callable, and Ctrl-C stops the run after the current CD iteration (the
// checkpoints already written are complete: they are written atomically). Every loss and
// negative sampler of the C++ TrainConfig is reachable.
#include <nanobind/stl/function.h>
#include <nanobind/stl/map.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include <exception>

#include "arrays.hpp"
#include "bindings.hpp"
#include "cuebm/training/training.hpp"
#include "options.hpp"

namespace cuebm::python {
namespace {

// Thrown from the progress callback to unwind run_training when a signal is pending.
struct Interrupted : std::exception {};

}  // namespace

void bind_run_training(nb::module_& m) {
  m.def(
      "run_training",
      [](const std::string& dataset, std::map<std::string, double> dataset_params,
         uint64_t data_seed, int input_dim, std::vector<int> hidden, const std::string& activation,
         int epochs, int64_t batch_size, float step_size, float noise_scale, int k_steps,
         bool persistent, int64_t buffer_size, float lr, float max_grad_norm, uint64_t seed,
         const std::string& output_dir, const std::string& checkpoint_path, int checkpoint_every,
         const std::string& resume_from, const std::string& model_path,
         const std::string& report_path, const std::string& device, nb::object log,
         const std::string& sampler, float hmc_step_size, int leapfrog, std::vector<float> mass,
         int replicas, double t_max, int swap_every, const std::string& loss,
         const std::string& hessian_method, int n_projections, const std::string& projection_type,
         float dsm_noise_scale, const std::string& denoising_sign, float regularization_strength) {
        TrainConfig c;
        c.dataset = dataset;
        c.dataset_params = std::move(dataset_params);
        c.data_seed = data_seed;
        c.model = {input_dim, std::move(hidden), parse_activation(activation)};
        c.epochs = epochs;
        c.batch_size = batch_size;
        c.step_size = step_size;
        c.noise_scale = noise_scale;
        c.cd.k_steps = k_steps;
        c.cd.persistent = persistent;
        c.cd.buffer_size = buffer_size;
        c.adam.lr = lr;
        c.max_grad_norm = max_grad_norm;
        c.seed = seed;
        c.output_dir = output_dir;
        c.checkpoint_path = checkpoint_path;
        c.checkpoint_every = checkpoint_every;
        c.resume_from = resume_from;
        c.model_path = model_path;
        c.report_path = report_path;
        c.device = parse_device(device);
        c.negatives = negative_sampler_options(sampler, hmc_step_size, leapfrog, std::move(mass),
                                               replicas, t_max, swap_every);
        c.loss = parse_training_loss(loss);
        c.score = score_loss_options(hessian_method, n_projections, projection_type,
                                     dsm_noise_scale, denoising_sign, regularization_strength);
        const auto on_log = [&log](const std::string& line) {
          nb::gil_scoped_acquire locked;
          if (!log.is_none()) log(line);
        };
        const auto on_progress = [](const TrainProgress&) {
          nb::gil_scoped_acquire locked;
          if (PyErr_CheckSignals() != 0) throw Interrupted();
        };
        TrainReport r;
        try {
          nb::gil_scoped_release unlocked;
          r = run_training(c, on_log, on_progress);
        } catch (const Interrupted&) {
          throw nb::python_error();  // the KeyboardInterrupt set by the signal handler
        }
        nb::dict out;
        const std::size_t epochs_done = r.epoch_loss.size(), p = r.final_parameters.size();
        out["epoch_loss"] = to_numpy(std::move(r.epoch_loss), {epochs_done});
        const std::size_t acc = r.epoch_acceptance.size();
        out["epoch_acceptance"] = to_numpy(std::move(r.epoch_acceptance), {acc});
        out["iterations"] = r.iterations;
        out["skipped"] = r.skipped;
        out["train_seconds"] = r.train_seconds;
        const std::size_t n = r.final_samples.size() / 2;
        out["final_samples"] = to_numpy(std::move(r.final_samples), {n, std::size_t{2}});
        out["final_parameters"] = to_numpy(std::move(r.final_parameters), {p});
        out["files"] = r.files;
        out["temperature"] = r.temperature;
        out["temperature_source"] = r.temperature_source;
        out["log_z"] = r.log_z;
        out["test_nll"] = r.test_nll;
        out["data_entropy"] = r.data_entropy;
        out["kl"] = r.kl;
        out["mmd2"] = r.mmd2;
        out["modes_covered"] = r.modes_covered;
        out["modes_total"] = r.modes_total;
        out["share_near_mode"] = r.share_near_mode;
        out["mode_weights"] = r.mode_weights;
        out["diverged"] = r.diverged;
        out["divergence"] = r.divergence;
        return out;
      },
      nb::arg("dataset") = "gaussian_mixture",
      nb::arg("dataset_params") = std::map<std::string, double>{}, nb::arg("data_seed") = 42,
      nb::arg("input_dim") = 2, nb::arg("hidden") = std::vector<int>{64, 64},
      nb::arg("activation") = "relu", nb::arg("epochs") = 200, nb::arg("batch_size") = 256,
      nb::arg("step_size") = 0.1f, nb::arg("noise_scale") = 0.1f, nb::arg("k_steps") = 10,
      nb::arg("persistent") = false, nb::arg("buffer_size") = 10000, nb::arg("lr") = 1e-3f,
      nb::arg("max_grad_norm") = 1.0f, nb::arg("seed") = 0, nb::arg("output_dir") = "",
      nb::arg("checkpoint_path") = "", nb::arg("checkpoint_every") = 0, nb::arg("resume_from") = "",
      nb::arg("model_path") = "", nb::arg("report_path") = "", nb::arg("device") = "cpu",
      nb::arg("log").none() = nb::none(), nb::arg("sampler") = "langevin",
      nb::arg("hmc_step_size") = 0.0f, nb::arg("leapfrog") = 10,
      nb::arg("mass") = std::vector<float>{}, nb::arg("replicas") = 8, nb::arg("t_max") = 0.0,
      nb::arg("swap_every") = 1, nb::arg("loss") = "cd", nb::arg("hessian_method") = "exact",
      nb::arg("n_projections") = 5, nb::arg("projection_type") = "rademacher",
      nb::arg("dsm_noise_scale") = 0.01f, nb::arg("denoising_sign") = "correct",
      nb::arg("regularization_strength") = 0.0f,
      "The C++ trainer's whole run (TorchEBM's Gaussian-mixture tutorial by default): returns "
      "the report as a dict (epoch_loss, final_parameters, final_samples, metrics, modes). "
      "sampler and its settings choose CD's negatives; loss (cd, sm, ssm, dsm) and its settings "
      "the loss.");
}

}  // namespace cuebm::python
