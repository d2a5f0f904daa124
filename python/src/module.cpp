// The extension module cuebm._cuebm. The Python package (python/cuebm) wraps it with TorchEBM's
// names and the NumPy / torch conversions of results.
#include <nanobind/stl/string.h>

#include "bindings.hpp"
#include "cuebm/runtime/device.hpp"

NB_MODULE(_cuebm, m) {
  m.doc() = "cuEBM's C++ API (the cuebm package wraps it; see help(cuebm))";
  m.attr("__version__") = CUEBM_VERSION;
  m.def("built_with_cuda", &cuebm::built_with_cuda,
        "True when this module was built with cuEBM's CUDA backend.");
  m.def("cuda_device_count", &cuebm::cuda_device_count,
        "Usable CUDA devices (0 in a CPU-only build or without a GPU).");
  m.def("cuda_unavailable_reason", &cuebm::cuda_unavailable_reason,
        "Why no CUDA device is usable; empty when one is.");
  m.def("set_num_threads", &cuebm::set_num_threads, nb::arg("threads"),
        "Threads of the CPU backend (results never depend on it).");
  m.def("num_threads", &cuebm::num_threads, "Threads of the CPU backend.");

  using namespace cuebm::python;
  bind_errors(m);
  bind_models(m);
  bind_schedule(m);
  bind_langevin(m);
  bind_mcmc(m);
  bind_score_matching(m);
  bind_training(m);
  bind_run_training(m);
  bind_data(m);
  bind_metrics(m);
  bind_io(m);
  bind_stream_api(m);
  bind_testing(m);
}
