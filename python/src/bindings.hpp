// The pieces of the _cuebm module, one file each (module.cpp calls them in layer order).
#pragma once

#include <nanobind/nanobind.h>

namespace nb = nanobind;

namespace cuebm {
struct McmcResult;
}

namespace cuebm::python {

void bind_errors(nb::module_& m);
void bind_models(nb::module_& m);
void bind_schedule(nb::module_& m);
void bind_langevin(nb::module_& m);
void bind_mcmc(nb::module_& m);
void bind_score_matching(nb::module_& m);
void bind_training(nb::module_& m);
void bind_run_training(nb::module_& m);
void bind_data(nb::module_& m);
void bind_metrics(nb::module_& m);
void bind_io(nb::module_& m);
void bind_stream_api(nb::module_& m);
void bind_testing(nb::module_& m);
// testing's CUDA memory and stream helpers (testing_cuda.cpp; nothing without CUDA).
void bind_testing_cuda(nb::module_& testing);

// The dict a MALA or HMC binding returns for a result of n_steps steps (mcmc.cpp).
nb::dict mcmc_result(cuebm::McmcResult&& r, int n_steps, bool diagnostics);

}  // namespace cuebm::python
