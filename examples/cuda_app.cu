// Using cuEBM inside a CUDA application: the model's parameters, the data, the chains and the
// workspace live in memory the application owns; every call is enqueued on its stream.
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdio>
#include <vector>

#include "cuebm/models/mlp.hpp"
#include "cuebm/training/stream_api.hpp"

#define CHECK(call)                                                     \
  do {                                                                  \
    const cudaError_t st_ = (call);                                     \
    if (st_ != cudaSuccess) {                                           \
      std::fprintf(stderr, "%s: %s\n", #call, cudaGetErrorString(st_)); \
      return 1;                                                         \
    }                                                                   \
  } while (0)

int main() {
  int devices = 0;
  if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0) {
    std::printf("no CUDA device\n");
    return 0;
  }
  // A 2-64-64-1 SiLU MLP. Its parameters could equally be a PyTorch tensor's data_ptr():
  // the flat layout is nn.Sequential's (weight [out, in], then bias, layer by layer).
  const cuebm::Mlp host_model({2, {64, 64}, cuebm::Activation::kSiLU}, /*seed=*/1);
  const int64_t n = 1024, dim = 2, batch = 256;
  cuebm::MlpView model{{2, 64, 64, 1}, cuebm::Activation::kSiLU, nullptr};
  const std::size_t n_params = model.num_parameters();

  cudaStream_t stream;
  CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  float *params, *adam_m, *adam_v, *x, *e, *data, *loss;
  int64_t* adam_step;
  CHECK(cudaMalloc(&params, n_params * sizeof(float)));
  CHECK(cudaMalloc(&adam_m, n_params * sizeof(float)));
  CHECK(cudaMalloc(&adam_v, n_params * sizeof(float)));
  CHECK(cudaMalloc(&adam_step, sizeof(int64_t)));
  CHECK(cudaMalloc(&x, n * dim * sizeof(float)));
  CHECK(cudaMalloc(&e, n * sizeof(float)));
  CHECK(cudaMalloc(&data, batch * dim * sizeof(float)));
  CHECK(cudaMalloc(&loss, sizeof(float)));
  // Uploads on the stream the work runs on: a plain cudaMemcpy/cudaMemset goes through the
  // legacy default stream, which a non-blocking stream does not wait for.
  CHECK(cudaMemcpyAsync(params, host_model.parameters().data(), n_params * sizeof(float),
                        cudaMemcpyHostToDevice, stream));
  CHECK(cudaMemsetAsync(adam_m, 0, n_params * sizeof(float), stream));
  CHECK(cudaMemsetAsync(adam_v, 0, n_params * sizeof(float), stream));
  CHECK(cudaMemsetAsync(adam_step, 0, sizeof(int64_t), stream));
  std::vector<float> start(n * dim);
  cuebm::gaussian_initial_state(start.data(), n, dim, /*seed=*/0);
  CHECK(cudaMemcpyAsync(x, start.data(), start.size() * sizeof(float), cudaMemcpyHostToDevice,
                        stream));
  CHECK(cudaMemcpyAsync(data, start.data(), batch * dim * sizeof(float), cudaMemcpyHostToDevice,
                        stream));
  model.params = params;

  // Sampling: 200 Langevin steps in place on x, then the energies.
  cuebm::LangevinOptions sampler;
  sampler.step_size = 0.1f;
  sampler.noise_scale = 0.1f;
  sampler.n_steps = 200;
  std::size_t ws_bytes = std::max(cuebm::langevin_chain_workspace_size(model, n, 200, dim),
                                  cuebm::mlp_energy_workspace_size(model, n));
  cuebm::CdIterationOptions cd;
  cd.sampler = sampler;
  cd.sampler.n_steps = 10;
  ws_bytes = std::max(ws_bytes, cuebm::cd_iteration_workspace_size(model, batch, 10));
  void* workspace;
  CHECK(cudaMalloc(&workspace, ws_bytes));  // cudaMalloc memory is 256-byte aligned

  cuebm::langevin_chain(model, x, dim, n, sampler, workspace, ws_bytes, stream);
  cuebm::mlp_energy(model, x, dim, n, e, /*grad=*/nullptr, 0, workspace, ws_bytes, stream);

  // Training: one CD-10 iteration captured into a CUDA graph, replayed 100 times. The graph
  // replays the same launches: the same noise keys each time (change sampler.seed and
  // re-capture, or use cudaGraphExecKernelNodeSetParams, for fresh noise).
  const cuebm::CdDeviceState state{params, adam_m, adam_v, adam_step};
  cudaGraph_t graph;
  cudaGraphExec_t exec;
  CHECK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal));
  cuebm::cd_iteration(model, data, dim, batch, cd, state, loss, nullptr, nullptr, workspace,
                      ws_bytes, stream);
  CHECK(cudaStreamEndCapture(stream, &graph));
  CHECK(cudaGraphInstantiate(&exec, graph, 0));
  for (int i = 0; i < 100; ++i) CHECK(cudaGraphLaunch(exec, stream));

  float host_loss = 0;
  std::vector<float> energies(n);
  CHECK(cudaMemcpyAsync(&host_loss, loss, sizeof(float), cudaMemcpyDeviceToHost, stream));
  CHECK(cudaMemcpyAsync(energies.data(), e, n * sizeof(float), cudaMemcpyDeviceToHost, stream));
  CHECK(cudaStreamSynchronize(stream));
  std::printf("E(x_0) after sampling = %.4f, CD loss after 100 iterations = %.4f\n", energies[0],
              host_loss);

  CHECK(cudaGraphExecDestroy(exec));
  CHECK(cudaGraphDestroy(graph));
  for (void* p :
       {static_cast<void*>(params), static_cast<void*>(adam_m), static_cast<void*>(adam_v),
        static_cast<void*>(adam_step), static_cast<void*>(x), static_cast<void*>(e),
        static_cast<void*>(data), static_cast<void*>(loss), workspace})
    CHECK(cudaFree(p));
  CHECK(cudaStreamDestroy(stream));
  return 0;
}
