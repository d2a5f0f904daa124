// The ring of examples/ring_energy.hpp sampled on a GPU with cuebm::langevin_chain_cuda<Energy>
// (stream-ordered, on caller-owned device memory) and on the CPU with the same seed; prints both
// mean radii, the closed form and the largest CPU/GPU difference of the final states.
#include <cuda_runtime.h>

#include <cmath>
#include <cstdio>
#include <vector>

#include "cuebm/sampling/custom_energy.hpp"
#include "cuebm/sampling/custom_energy_cuda.hpp"
#include "ring_energy.hpp"

#define CHECK(call)                                                            \
  do {                                                                         \
    const cudaError_t st_ = (call);                                            \
    if (st_ != cudaSuccess) {                                                  \
      std::fprintf(stderr, "%s failed: %s\n", #call, cudaGetErrorString(st_)); \
      return 1;                                                                \
    }                                                                          \
  } while (0)

int main() {
  int devices = 0;
  if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0) {
    std::printf("no CUDA device: skipping the GPU run\n");
    return 0;
  }
  const RingEnergy ring{1.0f, 0.2f};
  cuebm::LangevinOptions options;
  options.step_size = 1e-3f;
  options.noise_scale = 1.0f;
  options.n_steps = 1500;
  options.seed = 7;
  const long n = 4096;

  // The CPU backend's N(0, I) start, uploaded: both backends start from the same state.
  std::vector<float> x(2 * n);
  cuebm::gaussian_initial_state(x.data(), n, 2, options.seed);
  float* dx = nullptr;
  cudaStream_t stream;
  CHECK(cudaStreamCreate(&stream));
  CHECK(cudaMalloc(&dx, x.size() * sizeof(float)));
  CHECK(cudaMemcpyAsync(dx, x.data(), x.size() * sizeof(float), cudaMemcpyHostToDevice, stream));
  cuebm::langevin_chain_cuda(ring, 2, dx, /*ldx=*/2, n, options, stream);
  CHECK(cudaMemcpyAsync(x.data(), dx, x.size() * sizeof(float), cudaMemcpyDeviceToHost, stream));
  CHECK(cudaStreamSynchronize(stream));
  CHECK(cudaFree(dx));
  CHECK(cudaStreamDestroy(stream));

  const cuebm::LangevinResult cpu = cuebm::langevin_chain(ring, 2, nullptr, n, options);
  double gpu_mean, gpu_se, cpu_mean, cpu_se, max_diff = 0;
  radius_mean_se(x.data(), n, &gpu_mean, &gpu_se);
  radius_mean_se(cpu.samples.data(), n, &cpu_mean, &cpu_se);
  for (std::size_t i = 0; i < x.size(); ++i)
    max_diff = std::fmax(max_diff, std::fabs(x[i] - cpu.samples[i]));
  const double exact = ring_mean_radius(ring.r, ring.s, cpu.temperature);
  std::printf("closed form E[rho] = %.4f at T = %.3f\n", exact, cpu.temperature);
  std::printf("GPU: mean radius %.4f +- %.4f\n", gpu_mean, gpu_se);
  std::printf("CPU: mean radius %.4f +- %.4f\n", cpu_mean, cpu_se);
  std::printf("largest |GPU - CPU| over the final states: %.3g\n", max_diff);
  return std::fabs(gpu_mean - exact) < 4 * gpu_se ? 0 : 1;
}
