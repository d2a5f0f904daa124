// The stream-ordered API (cuebm/stream_api.hpp): argument validation (before any CUDA call, so
// it runs in every build), the CPU-only build's error, and on a GPU: the raw calls against the
// high-level API bit for bit, two streams against the serial run, CUDA graph capture and replay.
#include <gtest/gtest.h>
#include "cuda_skip.hpp"

#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "cuebm/models/mlp.hpp"
#include "cuebm/runtime/device.hpp"
#include "cuebm/runtime/error.hpp"
#include "cuebm/sampling/langevin.hpp"
#include "cuebm/training/stream_api.hpp"
#if CUEBM_HAVE_CUDA
#include <cuda_runtime.h>

#include "host/models/cuda_models.hpp"
#include "host/runtime/cuda_device.hpp"
#include "host/sampling/cuda_langevin.hpp"
#include "host/training/cuda_trainer.hpp"
#endif

namespace cuebm {
namespace {

// Expects `call` to throw InvalidArgument whose message contains `needle`.
template <class F>
void expect_invalid(F&& call, const std::string& needle) {
  try {
    call();
    ADD_FAILURE() << "expected InvalidArgument mentioning \"" << needle << "\"";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

struct AlignedFree {
  void operator()(void* p) const { std::free(p); }
};

// Host stand-ins for device buffers: validation never dereferences them.
struct FakeBuffers {
  std::vector<float> x = std::vector<float>(4096), e = std::vector<float>(4096);
  std::unique_ptr<char, AlignedFree> ws{static_cast<char*>(std::aligned_alloc(256, 1 << 20))};
  std::size_t ws_bytes = 1 << 20;
};

MlpView small_view(const float* params) { return {{2, 16, 16, 1}, Activation::kSiLU, params}; }

TEST(StreamApi, WorkspaceSizesAreAlignedAndGrowWithRows) {
  const MlpView m = small_view(nullptr);
  EXPECT_EQ(m.num_parameters(), 2u * 16 + 16 + 16 * 16 + 16 + 16 + 1);
  const std::size_t a = mlp_energy_workspace_size(m, 10), b = mlp_energy_workspace_size(m, 1000);
  EXPECT_GT(b, a);
  EXPECT_EQ(a % kWorkspaceAlignment, 0u);
  EXPECT_GT(langevin_chain_workspace_size(m, 100, 50, 4),
            langevin_chain_workspace_size(m, 100, 50, 2));
  EXPECT_GT(cd_iteration_workspace_size(m, 64, 10), 0u);
  EXPECT_THROW(mlp_energy_workspace_size(m, 0), InvalidArgument);
  EXPECT_THROW(mlp_energy_workspace_size({{2, 1}, Activation::kReLU, nullptr}, 4), InvalidArgument);
  EXPECT_THROW(mlp_energy_workspace_size({{2, 8, 2}, Activation::kReLU, nullptr}, 4),
               InvalidArgument);
}

TEST(StreamApi, ValidationNamesTheArgument) {
  FakeBuffers f;
  const MlpView m = small_view(f.x.data());
  void* ws = f.ws.get();
  const std::size_t need = mlp_energy_workspace_size(m, 8);
  ASSERT_LE(need, f.ws_bytes);
  cudaStream_t s = nullptr;
  expect_invalid([&] { mlp_energy(m, nullptr, 2, 8, f.e.data(), nullptr, 0, ws, need, s); },
                 "x is null");
  expect_invalid(
      [&] {
        mlp_energy(small_view(nullptr), f.x.data(), 2, 8, f.e.data(), nullptr, 0, ws, need, s);
      },
      "model.params is null");
  expect_invalid([&] { mlp_energy(m, f.x.data(), 2, 8, nullptr, nullptr, 0, ws, need, s); },
                 "both null");
  expect_invalid([&] { mlp_energy(m, f.x.data(), 1, 8, f.e.data(), nullptr, 0, ws, need, s); },
                 "ldx");
  expect_invalid([&] { mlp_energy(m, f.x.data(), 2, 8, f.e.data(), f.e.data(), 1, ws, need, s); },
                 "ldg");
  expect_invalid([&] { mlp_energy(m, f.x.data(), 2, 8, f.e.data(), nullptr, 0, nullptr, need, s); },
                 "workspace is null");
  expect_invalid(
      [&] { mlp_energy(m, f.x.data(), 2, 8, f.e.data(), nullptr, 0, f.ws.get() + 4, need, s); },
      "aligned");
  expect_invalid([&] { mlp_energy(m, f.x.data(), 2, 8, f.e.data(), nullptr, 0, ws, need - 1, s); },
                 "too small");
  expect_invalid([&] { mlp_energy(m, f.x.data(), 2, 0, f.e.data(), nullptr, 0, ws, need, s); },
                 "n must be >= 1");

  LangevinOptions o;
  o.n_steps = 5;
  const std::size_t lneed = langevin_chain_workspace_size(m, 8, 5, 2);
  expect_invalid([&] { langevin_chain(m, nullptr, 2, 8, o, ws, lneed, s); }, "x is null");
  expect_invalid([&] { langevin_chain(m, f.x.data(), 1, 8, o, ws, lneed, s); }, "ldx");
  expect_invalid([&] { langevin_chain(m, f.x.data(), 2, 8, o, ws, 16, s); }, "too small");
  LangevinOptions thin = o;
  thin.thin = 1;
  expect_invalid([&] { langevin_chain(m, f.x.data(), 2, 8, thin, ws, lneed, s); }, "thin");
  LangevinOptions bad = o;
  bad.step_size = -1.0f;
  expect_invalid([&] { langevin_chain(m, f.x.data(), 2, 8, bad, ws, lneed, s); }, "step_size");

  CdIterationOptions cd;
  cd.sampler.n_steps = 3;
  std::vector<int64_t> step(1);
  const CdDeviceState st{f.x.data(), f.x.data(), f.x.data(), step.data()};
  const std::size_t cneed = cd_iteration_workspace_size(m, 8, 3);
  ASSERT_LE(cneed, f.ws_bytes);
  expect_invalid(
      [&] { cd_iteration(m, nullptr, 2, 8, cd, st, nullptr, nullptr, nullptr, ws, cneed, s); },
      "data is null");
  CdDeviceState no_m = st;
  no_m.adam_m = nullptr;
  expect_invalid(
      [&] { cd_iteration(m, f.x.data(), 2, 8, cd, no_m, nullptr, nullptr, nullptr, ws, cneed, s); },
      "state.adam_m is null");
  expect_invalid(
      [&] { cd_iteration(m, f.x.data(), 1, 8, cd, st, nullptr, nullptr, nullptr, ws, cneed, s); },
      "ldd");
  expect_invalid(
      [&] {
        cd_iteration(m, f.x.data(), 2, 8, cd, st, nullptr, nullptr, nullptr, ws, cneed - 256, s);
      },
      "too small");
}

TEST(StreamApi, CpuOnlyBuildReportsMissingCuda) {
  if (built_with_cuda()) GTEST_SKIP() << "this build has the CUDA backend";
  FakeBuffers f;
  const MlpView m = small_view(f.x.data());
  const std::size_t need = mlp_energy_workspace_size(m, 8);
  expect_invalid(
      [&] { mlp_energy(m, f.x.data(), 2, 8, f.e.data(), nullptr, 0, f.ws.get(), need, nullptr); },
      "built without CUDA");
  LangevinOptions o;
  o.n_steps = 2;
  expect_invalid(
      [&] {
        langevin_chain(m, f.x.data(), 2, 8, o, f.ws.get(),
                       langevin_chain_workspace_size(m, 8, 2, 2), nullptr);
      },
      "built without CUDA");
}

// ---- GPU (skipped without a device) ----

#if CUEBM_HAVE_CUDA
#define CK(call) ASSERT_EQ((call), cudaSuccess) << #call

template <class T>
struct Dev {
  T* p = nullptr;
  std::size_t n = 0;
  explicit Dev(std::size_t count) : n(count) {
    if (cudaMalloc(&p, std::max<std::size_t>(count, 1) * sizeof(T)) != cudaSuccess) p = nullptr;
  }
  ~Dev() { cudaFree(p); }
  // Copies on the stream the work runs on: a pageable cudaMemcpy would go through the legacy
  // default stream, which non-blocking streams do not wait for.
  void put(const std::vector<T>& h, cudaStream_t s) {
    EXPECT_EQ(cudaMemcpyAsync(p, h.data(), h.size() * sizeof(T), cudaMemcpyHostToDevice, s),
              cudaSuccess);
  }
  std::vector<T> get(cudaStream_t s) const {
    std::vector<T> h(n);
    EXPECT_EQ(cudaMemcpyAsync(h.data(), p, n * sizeof(T), cudaMemcpyDeviceToHost, s), cudaSuccess);
    EXPECT_EQ(cudaStreamSynchronize(s), cudaSuccess);
    return h;
  }
};

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

struct GeneralPath {  // the stream API runs the general MLP path: compare against the same
  GeneralPath() { detail::force_cuda_general_path_for_testing(true); }
  ~GeneralPath() { detail::force_cuda_general_path_for_testing(false); }
};
#endif

TEST(StreamApiCuda, EnergyAndGradientEqualHighLevelBitForBit) {
  CUEBM_REQUIRE_CUDA();
#if CUEBM_HAVE_CUDA
  GeneralPath general;
  const Mlp mlp({3, {32, 16}, Activation::kSiLU}, 5);
  const int64_t n = 300, ld = 5;
  std::vector<float> x(n * 3), xpad(n * ld, 7.0f);
  gaussian_initial_state(x.data(), n, 3, 1);
  for (int64_t r = 0; r < n; ++r)
    for (int d = 0; d < 3; ++d) xpad[r * ld + d] = x[r * 3 + d];
  std::vector<float> e_ref(n), g_ref(n * 3);
  detail::gradient_cuda(mlp, x.data(), n, g_ref.data(), e_ref.data(), 0);

  Dev<float> params(mlp.num_parameters()), dx(n * ld), de(n), dg(n * ld);
  cudaStream_t s;
  CK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  params.put(std::vector<float>(mlp.parameters().begin(), mlp.parameters().end()), s);
  dx.put(xpad, s);
  const MlpView view{mlp.layer_widths(), Activation::kSiLU, params.p};
  const std::size_t need = mlp_energy_workspace_size(view, n);
  Dev<char> ws(need);
  mlp_energy(view, dx.p, ld, n, de.p, dg.p, ld, ws.p, need, s);
  EXPECT_TRUE(same_bits(de.get(s), e_ref));
  const std::vector<float> g = dg.get(s);
  CK(cudaStreamDestroy(s));
  std::vector<float> g_packed(n * 3);
  for (int64_t r = 0; r < n; ++r)
    for (int d = 0; d < 3; ++d) g_packed[r * 3 + d] = g[r * ld + d];
  EXPECT_TRUE(same_bits(g_packed, g_ref));
#endif
}

#if CUEBM_HAVE_CUDA
LangevinOptions chain_options() {
  LangevinOptions o;
  o.step_size = Schedule::exponential(0.05f, 0.99f, 0.001f);
  o.noise_scale = 0.3f;
  o.n_steps = 30;
  o.seed = 42;
  o.step_offset = 5;
  o.first_chain = 3;
  return o;
}
#endif

TEST(StreamApiCuda, LangevinEqualsLangevinSampleBitForBit) {
  CUEBM_REQUIRE_CUDA();
#if CUEBM_HAVE_CUDA
  GeneralPath general;
  const Mlp mlp({2, {64, 64}, Activation::kTanh}, 9);
  const int64_t n = 500;
  const LangevinOptions o = chain_options();
  std::vector<float> x0(n * 2);
  gaussian_initial_state(x0.data(), n, 2, 2);
  const LangevinResult ref = langevin_sample(mlp, x0.data(), n, o, Device::cuda(0));
  Dev<float> params(mlp.num_parameters()), dx(n * 2);
  cudaStream_t s;
  CK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  params.put(std::vector<float>(mlp.parameters().begin(), mlp.parameters().end()), s);
  dx.put(x0, s);
  const MlpView view{mlp.layer_widths(), Activation::kTanh, params.p};
  const std::size_t need = langevin_chain_workspace_size(view, n, o.n_steps, 2);
  Dev<char> ws(need);
  langevin_chain(view, dx.p, 2, n, o, ws.p, need, s);
  EXPECT_TRUE(same_bits(dx.get(s), ref.samples));
  CK(cudaStreamDestroy(s));
#endif
}

TEST(StreamApiCuda, TwoStreamsEqualTheSerialRun) {
  CUEBM_REQUIRE_CUDA();
#if CUEBM_HAVE_CUDA
  GeneralPath general;  // the reference below is langevin_sample on the same (general) path
  const Mlp mlp({2, {64, 64}, Activation::kReLU}, 3);
  const int64_t n = 1024;
  const LangevinOptions o = chain_options();
  LangevinOptions o2 = o;
  o2.seed = 43;
  std::vector<float> x0(n * 2);
  gaussian_initial_state(x0.data(), n, 2, 4);
  Dev<float> params(mlp.num_parameters()), a(n * 2), b(n * 2);
  cudaStream_t s1, s2;
  CK(cudaStreamCreateWithFlags(&s1, cudaStreamNonBlocking));
  CK(cudaStreamCreateWithFlags(&s2, cudaStreamNonBlocking));
  params.put(std::vector<float>(mlp.parameters().begin(), mlp.parameters().end()), s1);
  CK(cudaStreamSynchronize(s1));
  const MlpView view{mlp.layer_widths(), Activation::kReLU, params.p};
  const std::size_t need = langevin_chain_workspace_size(view, n, o.n_steps, 2);
  Dev<char> wa(need), wb(need);
  // Serial, one stream.
  a.put(x0, s1);
  b.put(x0, s1);
  langevin_chain(view, a.p, 2, n, o, wa.p, need, s1);
  langevin_chain(view, b.p, 2, n, o2, wa.p, need, s1);
  const std::vector<float> ra = a.get(s1), rb = b.get(s1);
  // Both equal the high-level sampler's chains (so neither ran on stale inputs).
  EXPECT_TRUE(same_bits(ra, langevin_sample(mlp, x0.data(), n, o, Device::cuda(0)).samples));
  EXPECT_TRUE(same_bits(rb, langevin_sample(mlp, x0.data(), n, o2, Device::cuda(0)).samples));
  // Concurrent, two streams with their own workspaces.
  a.put(x0, s1);
  b.put(x0, s2);
  langevin_chain(view, a.p, 2, n, o, wa.p, need, s1);
  langevin_chain(view, b.p, 2, n, o2, wb.p, need, s2);
  EXPECT_TRUE(same_bits(a.get(s1), ra));
  EXPECT_TRUE(same_bits(b.get(s2), rb));
  EXPECT_FALSE(same_bits(ra, rb));
  CK(cudaStreamDestroy(s1));
  CK(cudaStreamDestroy(s2));
#endif
}

TEST(StreamApiCuda, CdIterationGraphReplayEqualsDirectCalls) {
  CUEBM_REQUIRE_CUDA();
#if CUEBM_HAVE_CUDA
  const Mlp mlp({2, {32, 32}, Activation::kSiLU}, 11);
  const int64_t batch = 256;
  const std::size_t np = mlp.num_parameters();
  std::vector<float> data(batch * 2);
  gaussian_initial_state(data.data(), batch, 2, 8);
  const std::vector<float> p0(mlp.parameters().begin(), mlp.parameters().end());
  const MlpView view{mlp.layer_widths(), Activation::kSiLU, nullptr};
  CdIterationOptions cd;
  cd.sampler.step_size = 0.1f;
  cd.sampler.noise_scale = 0.1f;
  cd.sampler.n_steps = 10;
  const std::size_t need = cd_iteration_workspace_size(view, batch, 10);
  Dev<char> ws(need);
  Dev<float> dd(batch * 2), params(np), m(np), v(np), loss(1), neg(batch * 2), gnorm(1);
  Dev<int64_t> step(1);
  cudaStream_t s;
  CK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  dd.put(data, s);
  const CdDeviceState st{params.p, m.p, v.p, step.p};
  auto reset = [&] {
    params.put(p0, s);
    m.put(std::vector<float>(np, 0.0f), s);
    v.put(std::vector<float>(np, 0.0f), s);
    step.put({0}, s);
  };
  const int iters = 3;
  reset();
  for (int i = 0; i < iters; ++i)
    cd_iteration(view, dd.p, 2, batch, cd, st, loss.p, neg.p, gnorm.p, ws.p, need, s);
  const std::vector<float> p_direct = params.get(s), l_direct = loss.get(s), n_direct = neg.get(s);
  EXPECT_EQ(step.get(s)[0], iters);
  EXPECT_FALSE(same_bits(p_direct, p0));

  reset();
  cudaGraph_t graph;
  cudaGraphExec_t exec;
  CK(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal));
  cd_iteration(view, dd.p, 2, batch, cd, st, loss.p, neg.p, gnorm.p, ws.p, need, s);
  CK(cudaStreamEndCapture(s, &graph));
  CK(cudaGraphInstantiate(&exec, graph, 0));
  for (int i = 0; i < iters; ++i) CK(cudaGraphLaunch(exec, s));
  EXPECT_TRUE(same_bits(params.get(s), p_direct));
  EXPECT_TRUE(same_bits(loss.get(s), l_direct));
  EXPECT_TRUE(same_bits(neg.get(s), n_direct));
  EXPECT_EQ(step.get(s)[0], iters);
  CK(cudaGraphExecDestroy(exec));
  CK(cudaGraphDestroy(graph));

  // The loss is the CD loss of the energies at the parameters the last call started from
  // (checked on the first iteration, against the CPU backend's energies of data and negatives).
  reset();
  cd_iteration(view, dd.p, 2, batch, cd, st, loss.p, neg.p, gnorm.p, ws.p, need, s);
  const std::vector<float> negs = neg.get(s);
  std::vector<float> ep(batch), en(batch);
  mlp.energy(data.data(), batch, ep.data());
  mlp.energy(negs.data(), batch, en.data());
  const double ref = cd_loss(ep.data(), en.data(), batch, cd.energy_reg_weight);
  EXPECT_NEAR(loss.get(s)[0], ref, 1e-4 + 1e-4 * std::abs(ref));
  CK(cudaStreamDestroy(s));
#endif
}

TEST(StreamApiCuda, StreamOfAnotherDeviceIsRejected) {
  CUEBM_REQUIRE_CUDA();
  if (cuda_device_count() < 2)
    GTEST_SKIP() << "needs two CUDA devices, found " << cuda_device_count();
#if CUEBM_HAVE_CUDA
  cudaStream_t other;
  CK(cudaSetDevice(1));
  CK(cudaStreamCreate(&other));
  CK(cudaSetDevice(0));
  const Mlp mlp({2, {16}, Activation::kReLU}, 1);
  Dev<float> params(mlp.num_parameters()), x(16), e(8);
  const MlpView view{mlp.layer_widths(), Activation::kReLU, params.p};
  const std::size_t need = mlp_energy_workspace_size(view, 8);
  Dev<char> ws(need);
  expect_invalid([&] { mlp_energy(view, x.p, 2, 8, e.p, nullptr, 0, ws.p, need, other); },
                 "stream belongs to device 1");
  CK(cudaStreamDestroy(other));
#endif
}

}  // namespace
}  // namespace cuebm
