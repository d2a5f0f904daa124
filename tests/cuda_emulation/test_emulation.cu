// Tests of the emulated CUDA backend itself (built only with CUEBM_CUDA_EMULATION): planted
// bugs must be caught, and the semantics the kernels rely on (barriers, warp collectives,
// shared memory, stream ordering, graph capture, launch limits) must hold.
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

namespace {

#define CK(call) ASSERT_EQ((call), cudaSuccess) << #call

struct DeviceFloats {
  float* p = nullptr;
  explicit DeviceFloats(std::size_t n) {
    EXPECT_EQ(cudaMalloc(&p, n * sizeof(float)), cudaSuccess);
  }
  ~DeviceFloats() { cudaFree(p); }
  std::vector<float> get(std::size_t n) const {
    std::vector<float> h(n);
    EXPECT_EQ(cudaMemcpy(h.data(), p, n * sizeof(float), cudaMemcpyDeviceToHost), cudaSuccess);
    return h;
  }
};

// Each thread writes its slot, then reads its neighbour's: right only with the barrier.
template <bool kBarrier>
__global__ void neighbour_kernel(float* out) {
  __shared__ float slots[128];
  const int t = threadIdx.x;
  slots[t] = static_cast<float>(t);
  if (kBarrier) __syncthreads();
  out[t] = slots[(t + 1) % blockDim.x];
}

// Turns the race check on for one test (instrumented builds; not the sanitizer build).
struct RaceCheckOn {
  bool was = cuemu::racecheck_enabled_at_run_time();
  RaceCheckOn() { cuemu::set_racecheck(true); }
  ~RaceCheckOn() { cuemu::set_racecheck(was); }
};

bool racecheck_on() {
#if defined(__SANITIZE_THREAD__)
  return cuemu::racecheck_enabled_at_run_time();
#else
  return false;
#endif
}

// Launches `launch`, synchronises, and expects the context to fail with a message containing
// `needle`; then resets the context for the next test.
template <class F>
void expect_fault(F launch, const std::string& needle, const char* source = "test_emulation.cu") {
  launch();
  EXPECT_EQ(cudaGetLastError(), cudaSuccess);  // the launch itself is valid
  EXPECT_EQ(cudaDeviceSynchronize(), cudaErrorLaunchFailure);
  const std::string fault = cuemu::last_fault();
  EXPECT_NE(fault.find(needle), std::string::npos) << fault;
  if (source) {
    EXPECT_NE(fault.find(source), std::string::npos) << "names the source: " << fault;
  }
  EXPECT_EQ(cudaDeviceReset(), cudaSuccess);
  EXPECT_EQ(cudaGetLastError(), cudaSuccess);
}

// Without the barrier the race check reports the race (instrumented builds); without the race
// check the result is wrong (the neighbour's slot still holds the NaN fill).
TEST(CudaEmulation, MissingSyncthreadsIsCaught) {
  RaceCheckOn race_check;
  DeviceFloats out(128);
  neighbour_kernel<true><<<1, 128>>>(out.p);
  CK(cudaGetLastError());
  std::vector<float> h = out.get(128);
  for (int t = 0; t < 128; ++t) ASSERT_EQ(h[t], static_cast<float>((t + 1) % 128)) << t;
  if (racecheck_on()) {
    expect_fault([&] { neighbour_kernel<false><<<1, 128>>>(out.p); }, "shared-memory race",
                 nullptr);
    return;
  }
  neighbour_kernel<false><<<1, 128>>>(out.p);
  CK(cudaGetLastError());
  h = out.get(128);
  int wrong = 0;
  for (int t = 0; t < 128; ++t) wrong += !(h[t] == static_cast<float>((t + 1) % 128));
  EXPECT_GT(wrong, 0) << "a missing __syncthreads went unnoticed";
}

// A tree reduction that forgets the barrier inside its loop: the classic race, also when the
// schedule happens to give the right sum.
__global__ void racy_reduce_kernel(float* out) {
  __shared__ float part[64];
  const int t = threadIdx.x;
  part[t] = 1.0f;
  __syncthreads();
  for (int w = 32; w > 0; w /= 2)
    if (t < w) part[t] += part[t + w];  // missing __syncthreads() after each level
  if (t == 0) *out = part[0];
}

TEST(CudaEmulation, RaceCheckReportsAReductionWithoutBarriers) {
  RaceCheckOn race_check;
  if (!racecheck_on()) GTEST_SKIP() << "built without the race check (the ASan build)";
  DeviceFloats out(1);
  expect_fault([&] { racy_reduce_kernel<<<1, 64>>>(out.p); }, "shared-memory race", nullptr);
}

__global__ void shuffle_kernel(int* out) {
  const int lane = threadIdx.x & 31;
  const int v = 100 * (threadIdx.x >> 5) + lane;
  out[6 * threadIdx.x + 0] = __shfl_xor_sync(0xffffffffu, v, 5);
  out[6 * threadIdx.x + 1] = __shfl_up_sync(0xffffffffu, v, 3, 16);
  out[6 * threadIdx.x + 2] = __shfl_down_sync(0xffffffffu, v, 2);
  out[6 * threadIdx.x + 3] = __shfl_sync(0xffffffffu, v, 7, 8);
  out[6 * threadIdx.x + 4] = static_cast<int>(__ballot_sync(0xffffffffu, lane % 3 == 0));
  out[6 * threadIdx.x + 5] =
      __all_sync(0xffffffffu, lane < 40) + 2 * __any_sync(0xffffffffu, lane == 31);
}

TEST(CudaEmulation, WarpShufflesAndVotesFollowCudaSemantics) {
  int* d = nullptr;
  CK(cudaMalloc(&d, 64 * 6 * sizeof(int)));
  shuffle_kernel<<<1, 64>>>(d);
  std::vector<int> h(64 * 6);
  CK(cudaMemcpy(h.data(), d, h.size() * sizeof(int), cudaMemcpyDeviceToHost));
  CK(cudaFree(d));
  unsigned ballot = 0;
  for (int l = 0; l < 32; l += 3) ballot |= 1u << l;
  for (int t = 0; t < 64; ++t) {
    const int w = 100 * (t >> 5), lane = t & 31;
    EXPECT_EQ(h[6 * t + 0], w + (lane ^ 5)) << t;
    EXPECT_EQ(h[6 * t + 1], w + ((lane % 16) >= 3 ? lane - 3 : lane)) << t;
    EXPECT_EQ(h[6 * t + 2], w + (lane + 2 < 32 ? lane + 2 : lane)) << t;
    EXPECT_EQ(h[6 * t + 3], w + (lane & ~7) + 7) << t;
    EXPECT_EQ(static_cast<unsigned>(h[6 * t + 4]), ballot) << t;
    EXPECT_EQ(h[6 * t + 5], 3) << t;
  }
}

// Lane 5 leaves before a full-mask shuffle: undefined on a GPU, an error here.
__global__ void early_return_kernel(float* out) {
  if ((threadIdx.x & 31) == 5) return;
  out[threadIdx.x] = __shfl_xor_sync(0xffffffffu, 1.0f, 1);
}

__global__ void divergent_barrier_kernel(float* out) {
  if (threadIdx.x < 16) {
    __syncthreads();
  } else {
    out[threadIdx.x] = __shfl_xor_sync(0xffffffffu, 1.0f, 1);
  }
}

// Half the block returns, the other half meets at a barrier: undefined on a GPU.
__global__ void barrier_after_return_kernel(float* out) {
  if (threadIdx.x >= 16) return;
  __syncthreads();
  out[threadIdx.x] = 1.0f;
}

__global__ void outside_mask_kernel(float* out) {
  if (threadIdx.x < 16) out[threadIdx.x] = __shfl_xor_sync(0x0000ffffu, 1.0f, 16);
}

TEST(CudaEmulation, MisusedCollectivesFailNamingThreadAndLine) {
  DeviceFloats out(64);
  expect_fault([&] { early_return_kernel<<<1, 64>>>(out.p); }, "exited");
  expect_fault([&] { divergent_barrier_kernel<<<1, 32>>>(out.p); }, "deadlock");
  expect_fault([&] { outside_mask_kernel<<<1, 32>>>(out.p); }, "not in the mask");
  expect_fault([&] { barrier_after_return_kernel<<<1, 32>>>(out.p); }, "__syncthreads", nullptr);
}

__global__ void __launch_bounds__(64) bounded_kernel(float* out) { out[threadIdx.x] = 1.0f; }

__global__ void big_shared_kernel(float* out) {
  extern __shared__ float4 dyn[];
  dyn[threadIdx.x] = make_float4(1, 2, 3, 4);
  __syncthreads();
  out[threadIdx.x] = dyn[(threadIdx.x + 1) % blockDim.x].w;
}

TEST(CudaEmulation, LaunchesADeviceWouldRefuseFail) {
  DeviceFloats out(1024);
  bounded_kernel<<<1, 64>>>(out.p);
  EXPECT_EQ(cudaGetLastError(), cudaSuccess);
  bounded_kernel<<<1, 128>>>(out.p);  // more threads than __launch_bounds__
  EXPECT_EQ(cudaGetLastError(), cudaErrorLaunchOutOfResources);
  bounded_kernel<<<1, 2048>>>(out.p);
  EXPECT_EQ(cudaGetLastError(), cudaErrorInvalidConfiguration);
  // Over 48 KB of dynamic shared memory needs cudaFuncSetAttribute first.
  const int bytes = 64 * 1024;
  big_shared_kernel<<<1, 32, bytes>>>(out.p);
  EXPECT_EQ(cudaGetLastError(), cudaErrorInvalidValue);
  CK(cudaFuncSetAttribute(big_shared_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes));
  big_shared_kernel<<<1, 32, bytes>>>(out.p);
  CK(cudaGetLastError());
  EXPECT_EQ(out.get(32)[0], 4.0f);
  // More than the device allows per block (227 KB on an H200) is refused outright.
  EXPECT_EQ(cudaFuncSetAttribute(big_shared_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                 300 * 1024),
            cudaErrorInvalidValue);
}

__global__ void fill_kernel(float* out, float v) { out[threadIdx.x] = v; }

TEST(CudaEmulation, StreamWorkWaitsForSynchronisation) {
  DeviceFloats d(32);
  float* pinned = nullptr;
  CK(cudaMallocHost(&pinned, 32 * sizeof(float)));
  for (int i = 0; i < 32; ++i) pinned[i] = -1.0f;
  cudaStream_t s;
  CK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  fill_kernel<<<1, 32, 0, s>>>(d.p, 3.0f);
  CK(cudaMemcpyAsync(pinned, d.p, 32 * sizeof(float), cudaMemcpyDeviceToHost, s));
  EXPECT_EQ(pinned[0], -1.0f) << "read before cudaStreamSynchronize: not yet there, as on a GPU";
  CK(cudaStreamSynchronize(s));
  EXPECT_EQ(pinned[0], 3.0f);
  // A pageable cudaMemcpy goes through the legacy stream, which a non-blocking stream does not
  // wait for: work on `s` may read the old contents.
  std::vector<float> host(32, 7.0f);
  CK(cudaMemcpy(d.p, host.data(), 32 * sizeof(float), cudaMemcpyHostToDevice));
  CK(cudaMemcpyAsync(pinned, d.p, 32 * sizeof(float), cudaMemcpyDeviceToHost, s));
  CK(cudaStreamSynchronize(s));
  EXPECT_EQ(pinned[0], 3.0f);
  CK(cudaDeviceSynchronize());
  EXPECT_EQ(d.get(32)[0], 7.0f);
  CK(cudaStreamDestroy(s));
  CK(cudaFreeHost(pinned));
}

TEST(CudaEmulation, CaptureRecordsReplaysAndRejectsForbiddenCalls) {
  DeviceFloats d(32);
  cudaStream_t s;
  CK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  cudaGraph_t graph = nullptr;
  CK(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal));
  fill_kernel<<<1, 32, 0, s>>>(d.p, 5.0f);
  cudaStreamCaptureStatus status;
  CK(cudaStreamIsCapturing(s, &status));
  EXPECT_EQ(status, cudaStreamCaptureStatusActive);
  CK(cudaStreamEndCapture(s, &graph));
  cudaGraphExec_t exec;
  CK(cudaGraphInstantiate(&exec, graph, 0));
  EXPECT_NE(d.get(32)[0], 5.0f) << "captured work does not run at capture";
  CK(cudaGraphLaunch(exec, s));
  CK(cudaStreamSynchronize(s));
  EXPECT_EQ(d.get(32)[0], 5.0f);
  CK(cudaGraphExecDestroy(exec));
  CK(cudaGraphDestroy(graph));
  // Calls CUDA forbids during capture fail and invalidate it.
  int device = -1;
  CK(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal));
  EXPECT_EQ(cudaStreamGetDevice(s, &device), cudaErrorStreamCaptureUnsupported);
  EXPECT_EQ(cudaGetLastError(), cudaErrorStreamCaptureUnsupported);
  CK(cudaStreamIsCapturing(s, &status));
  EXPECT_EQ(status, cudaStreamCaptureStatusInvalidated);
  EXPECT_EQ(cudaStreamEndCapture(s, &graph), cudaErrorStreamCaptureInvalidated);
  EXPECT_EQ(graph, nullptr);
  CK(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal));
  std::vector<float> host(32, 1.0f);
  EXPECT_EQ(cudaMemcpy(d.p, host.data(), 32 * sizeof(float), cudaMemcpyHostToDevice),
            cudaErrorStreamCaptureUnsupported);
  EXPECT_EQ(cudaStreamEndCapture(s, &graph), cudaErrorStreamCaptureInvalidated);
  (void)cudaGetLastError();
  CK(cudaStreamDestroy(s));
}

TEST(CudaEmulation, MemoryIsPoisonedAndCopiesAreBoundsChecked) {
  DeviceFloats d(8);
  const std::vector<float> h = d.get(8);
  for (float v : h) EXPECT_TRUE(std::isnan(v)) << "fresh device memory reads as NaN";
  std::vector<float> big(9);
  EXPECT_EQ(cudaMemcpy(d.p, big.data(), 9 * sizeof(float), cudaMemcpyHostToDevice),
            cudaErrorInvalidValue);
  EXPECT_EQ(cudaGetLastError(), cudaErrorInvalidValue);
}

}  // namespace
