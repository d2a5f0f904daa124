// langevin_chain_cuda instantiated for the test energies of
// host/sampling/custom_energy_testing.hpp.
#include <cuda_runtime.h>

#include "cuebm/sampling/custom_energy_cuda.hpp"
#include "host/sampling/custom_energy_testing.hpp"
#include "kernels/runtime/cuda_check.cuh"

namespace cuebm::detail {
namespace {

template <class E>
void run_on_device(const E& e, int dim, float* x, int64_t n, const LangevinOptions& options) {
  DeviceBuffer<float> dx(static_cast<std::size_t>(n) * dim);
  Stream stream;
  CUEBM_CUDA_CHECK(cudaMemcpyAsync(dx.data(), x, dx.bytes(), cudaMemcpyHostToDevice, stream.get()));
  langevin_chain_cuda<16>(e, dim, dx.data(), dim, n, options, stream.get());
  CUEBM_CUDA_CHECK(cudaMemcpyAsync(x, dx.data(), dx.bytes(), cudaMemcpyDeviceToHost, stream.get()));
  CUEBM_CUDA_CHECK(cudaStreamSynchronize(stream.get()));
}

}  // namespace

void harmonic_chain_cuda_graph_for_testing(const HarmonicTestEnergy& e, float* x, int64_t n,
                                           const LangevinOptions& options, int replays) {
  DeviceBuffer<float> dx(static_cast<std::size_t>(n) * e.dim);
  Stream stream;
  cudaStream_t s = stream.get();
  CUEBM_CUDA_CHECK(cudaMemcpyAsync(dx.data(), x, dx.bytes(), cudaMemcpyHostToDevice, s));
  cudaGraph_t graph = nullptr;
  CUEBM_CUDA_CHECK(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal));
  try {
    langevin_chain_cuda<16>(e, e.dim, dx.data(), e.dim, n, options, s);
  } catch (...) {
    cudaStreamEndCapture(s, &graph);
    if (graph) cudaGraphDestroy(graph);
    throw;
  }
  CUEBM_CUDA_CHECK(cudaStreamEndCapture(s, &graph));
  cudaGraphExec_t exec = nullptr;
  const cudaError_t st = cudaGraphInstantiate(&exec, graph, 0);
  cudaGraphDestroy(graph);
  CUEBM_CUDA_CHECK(st);
  for (int i = 0; i < replays; ++i) CUEBM_CUDA_CHECK(cudaGraphLaunch(exec, s));
  CUEBM_CUDA_CHECK(cudaMemcpyAsync(x, dx.data(), dx.bytes(), cudaMemcpyDeviceToHost, s));
  CUEBM_CUDA_CHECK(cudaStreamSynchronize(s));
  CUEBM_CUDA_CHECK(cudaGraphExecDestroy(exec));
}

void harmonic_chain_cuda_for_testing(const HarmonicTestEnergy& e, float* x, int64_t n,
                                     const LangevinOptions& options) {
  run_on_device(e, e.dim, x, n, options);
}

void ring_chain_cuda_for_testing(const RingTestEnergy& e, float* x, int64_t n,
                                 const LangevinOptions& options) {
  run_on_device(e, 2, x, n, options);
}

}  // namespace cuebm::detail
