// GPU tests: every CUDA kernel against the CPU backend on the same inputs and the same noise.
// Each test skips, printing the reason, when no CUDA device is present; the file compiles in the
// CPU-only build too (bodies that need the backend's test entry points sit behind
// CUEBM_HAVE_CUDA).
//
// Tolerances. float32 sums of up to a few hundred products, accumulated in the same order on
// both backends, differ only through FMA contraction and the device's erff/expf/tanhf (<= 2 ulp):
// |d| <= 1e-4 + 1e-4 |ref| is more than 10x the expected error for outputs of O(1) (PyTorch's
// initialisation keeps them there). A Langevin step maps x -> x - eta grad E(x) + c eps, whose
// Lipschitz constant is 1 + eta ||Hess E|| ~ 1.01 for eta = 0.01, so 10 steps amplify a
// per-step rounding difference (~1e-7) by at most ~1.1: 1e-4 + 1e-4 |ref| still holds.
// Kinked activations (ReLU, LeakyReLU) are the exception: when a pre-activation lies within
// rounding (~1e-7) of 0 the two backends may take different branches and dE/dx jumps by
// O(|w|^2) ~ 0.1. That happens with probability ~2e-7 per unit evaluation, so for them a
// fraction of rows (at most 1e-3, at least 1 row allowed) may exceed the tight bound, and must
// still be within a loose bound (0.05); smooth activations get no exceptions.
#include <gtest/gtest.h>
#include "cuda_skip.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "cuebm/analytic.hpp"
#include "cuebm/cd.hpp"
#include "cuebm/device.hpp"
#include "cuebm/energy.hpp"
#include "cuebm/error.hpp"
#include "cuebm/langevin.hpp"
#include "cuebm/mlp.hpp"
#include "host/random.hpp"
#if CUEBM_HAVE_CUDA
#include "host/cuda_backend.hpp"
#endif

namespace cuebm {
namespace {

[[maybe_unused]] std::vector<float> random_normal(std::size_t n, uint32_t seed, float scale = 1) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> dist(0.0f, scale);
  std::vector<float> v(n);
  for (float& x : v) x = dist(gen);
  return v;
}

[[maybe_unused]] bool kinked(Activation a) {
  return a == Activation::kReLU || a == Activation::kLeakyReLU;
}

// Compares row-major arrays (rows x cols) as the header describes; reports the worst entry.
[[maybe_unused]] void expect_close_rows(const std::vector<float>& got,
                                        const std::vector<float>& ref, int64_t rows, int cols,
                                        double atol, double rtol, bool allow_kinks,
                                        const std::string& what) {
  ASSERT_EQ(got.size(), ref.size()) << what;
  int64_t bad_rows = 0;
  double worst = 0;
  int64_t worst_i = 0;
  for (int64_t r = 0; r < rows; ++r) {
    bool bad = false;
    for (int c = 0; c < cols; ++c) {
      const int64_t i = r * cols + c;
      const double d = std::abs(static_cast<double>(got[i]) - ref[i]);
      ASSERT_FALSE(std::isnan(got[i])) << what << ": NaN at " << i;
      if (!(d <= atol + rtol * std::abs(ref[i]))) {
        bad = true;
        ASSERT_TRUE(allow_kinks && d <= 0.05 + 0.05 * std::abs(ref[i]))
            << what << ": row " << r << " col " << c << " got " << got[i] << " ref " << ref[i];
      }
      if (d > worst) {
        worst = d;
        worst_i = i;
      }
    }
    bad_rows += bad;
  }
  const int64_t allowed = allow_kinks ? std::max<int64_t>(1, rows / 1000) : 0;
  EXPECT_LE(bad_rows, allowed) << what << ": worst |d| = " << worst << " at " << worst_i << " (got "
                               << got[worst_i] << ", ref " << ref[worst_i] << ")";
}

const int kWidths[] = {16, 32, 64, 128, 256};
const Activation kActs[] = {Activation::kReLU,     Activation::kSiLU,      Activation::kTanh,
                            Activation::kSoftplus, Activation::kLeakyReLU, Activation::kGELU};
const int64_t kBatches[] = {1, 31, 257, 65537};

// A custom energy the CUDA backend does not know.
class QuarticEnergy : public Energy {
 public:
  int dim() const override { return 2; }
  std::string name() const override { return "quartic"; }
  std::size_t block_workspace_floats() const override { return 0; }
  void block_energy(const float* x, float* e, float*) const override {
    for (int r = 0; r < kRowBlock; ++r)
      e[r] = std::pow(x[r], 4.0f) + std::pow(x[kRowBlock + r], 4.0f);
  }
  void block_gradient(const float* x, float* g, float* e, float* w) const override {
    block_energy(x, e, w);
    for (int r = 0; r < 2 * kRowBlock; ++r) g[r] = 4 * x[r] * x[r] * x[r];
  }
};

TEST(CudaDevice, ReportsDevice) {
  CUEBM_REQUIRE_CUDA();
#if CUEBM_HAVE_CUDA
  const detail::CudaDeviceInfo info = detail::cuda_device_info(0);
  EXPECT_GT(info.sm_count, 0);
  EXPECT_GE(info.shared_per_block_optin, std::size_t{48} * 1024);
  std::cout << "[ device  ] " << info.name << ", " << info.sm_count << " SMs, sm_"
            << info.compute_major << info.compute_minor << "\n";
#endif
}

TEST(CudaDevice, UnsupportedEnergyThrows) {
  CUEBM_REQUIRE_CUDA();
  QuarticEnergy q;
  LangevinOptions o;
  o.n_steps = 2;
  try {
    langevin_sample(q, nullptr, 4, o, Device::cuda(0));
    FAIL() << "expected InvalidArgument";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("Mlp and AnalyticEnergy"), std::string::npos) << e.what();
  }
}

TEST(CudaPhilox, DeviceBitsEqualHostAndCurand) {
  CUEBM_REQUIRE_CUDA();
#if CUEBM_HAVE_CUDA
  const int64_t n = 1000;
  std::vector<uint64_t> sub(n), block(n);
  std::mt19937_64 gen(7);
  for (int64_t i = 0; i < n; ++i) {
    sub[i] = i < 4 ? static_cast<uint64_t>(i) : gen();
    // Random 64-bit block indices below 2^62: curand_init's offset argument is 4 * block (four
    // outputs per block), which wraps for block >= 2^62; the library's own mapping
    // (philox_block) takes the full 64-bit range.
    block[i] = i < 4 ? 0 : (i % 3 == 0 ? gen() >> 2 : gen() % 1000);
  }
  const uint64_t seed = 1234;
  std::vector<uint32_t> bits(4 * n), cbits(4 * n);
  std::vector<float> normals(4 * n), cnormals(4 * n);
  detail::philox_blocks_cuda(seed, sub.data(), block.data(), n, bits.data(), normals.data(), 0);
  detail::curand_blocks_cuda(seed, sub.data(), block.data(), n, cbits.data(), cnormals.data(), 0);
  EXPECT_EQ(bits[0], 0x2090b348u);  // rng.md anchors
  EXPECT_EQ(bits[4], 0xd115a128u);
  EXPECT_EQ(bits[8], 0x8b438957u);
  EXPECT_EQ(bits[12], 0xa8faf0a4u);
  for (int64_t i = 0; i < n; ++i) {
    const detail::U32x4 h = detail::philox_block(seed, sub[i], block[i]);
    const uint32_t hw[4] = {h.x, h.y, h.z, h.w};
    const detail::Normal4 hn = detail::normal4_from_block(h);
    for (int c = 0; c < 4; ++c) {
      ASSERT_EQ(bits[4 * i + c], hw[c]) << "block " << i;
      ASSERT_EQ(cbits[4 * i + c], hw[c]) << "curand block " << i;
      // Same formula and __sincosf on the device: bit-identical to curand_normal4.
      ASSERT_EQ(normals[4 * i + c], cnormals[4 * i + c]) << "block " << i;
      // Host sinf/cosf vs __sincosf: ~1e-6 (rng.md).
      ASSERT_NEAR(normals[4 * i + c], hn.v[c], 1e-5 + 1e-5 * std::abs(hn.v[c])) << "block " << i;
    }
  }
#endif
}

TEST(CudaEnergy, FusedMatchesCpuForEveryWidthActivationAndBatch) {
  CUEBM_REQUIRE_CUDA();
#if CUEBM_HAVE_CUDA
  int combo = 0;
  for (int wi = 0; wi < 5; ++wi) {
    const int w = kWidths[wi];
    for (Activation act : kActs) {
      for (int64_t n : kBatches) {
        // The 65537-row batch for two activations per width (every activation over the widths)
        // to bound the CPU reference's time.
        if (n == 65537 && (static_cast<int>(act) + wi) % 3 != 0) continue;
        ++combo;
        const int dims[] = {2, 3, 17, 128};
        const int d = dims[combo % 4];
        const int layers = n == 65537 && w == 256 ? 1 : 1 + combo % 3;
        Mlp mlp({d, std::vector<int>(layers, w), act}, 100 + combo);
        ASSERT_EQ(detail::cuda_mlp_path(mlp, 0), "fused<" + std::to_string(w) + ">");
        const std::vector<float> x = random_normal(n * d, combo);
        std::vector<float> e_ref(n), g_ref(n * d), e(n), g(n * d), e2(n);
        mlp.gradient(x.data(), n, g_ref.data(), e_ref.data());
        detail::gradient_cuda(mlp, x.data(), n, g.data(), e.data(), 0);
        detail::energy_cuda(mlp, x.data(), n, e2.data(), 0);
        const std::string what = mlp.name() + " batch " + std::to_string(n);
        expect_close_rows(e, e_ref, n, 1, 1e-4, 1e-4, false, what + " energy");
        expect_close_rows(e2, e, n, 1, 0, 0, false, what + " energy-only kernel");
        expect_close_rows(g, g_ref, n, d, 1e-4, 1e-4, kinked(act), what + " gradient");
      }
    }
  }
#endif
}

TEST(CudaEnergy, GeneralPathMatchesCpu) {
  CUEBM_REQUIRE_CUDA();
#if CUEBM_HAVE_CUDA
  struct Case {
    MlpSpec spec;
    bool force;
  };
  const Case cases[] = {{{3, {20, 7}, Activation::kTanh}, false},
                        {{2, {48}, Activation::kSiLU}, false},
                        {{200, {16}, Activation::kGELU}, false},  // D > 128
                        {{5, {64, 64}, Activation::kSoftplus}, true},
                        {{4, {33, 1, 9}, Activation::kLeakyReLU}, false}};
  int k = 0;
  for (const Case& c : cases) {
    detail::force_cuda_general_path_for_testing(c.force);
    Mlp mlp(c.spec, 7 + k);
    EXPECT_EQ(detail::cuda_mlp_path(mlp, 0), "general") << mlp.name();
    for (int64_t n : {int64_t{1}, int64_t{31}, int64_t{257}, int64_t{65537}}) {
      const int d = mlp.dim();
      const std::vector<float> x = random_normal(n * d, 50 + k);
      std::vector<float> e_ref(n), g_ref(n * d), e(n), g(n * d);
      mlp.gradient(x.data(), n, g_ref.data(), e_ref.data());
      detail::gradient_cuda(mlp, x.data(), n, g.data(), e.data(), 0);
      const std::string what = mlp.name() + " batch " + std::to_string(n);
      expect_close_rows(e, e_ref, n, 1, 1e-4, 1e-4, false, what + " energy");
      expect_close_rows(g, g_ref, n, d, 1e-4, 1e-4, kinked(c.spec.activation), what + " grad");
    }
    ++k;
  }
  detail::force_cuda_general_path_for_testing(false);
#endif
}

TEST(CudaEnergy, AnalyticMatchesCpu) {
  CUEBM_REQUIRE_CUDA();
#if CUEBM_HAVE_CUDA
  std::vector<AnalyticEnergy> energies;
  energies.push_back(AnalyticEnergy::gaussian({0.5f, -1.0f, 0.25f},
                                              {2.0, 0.3, 0.1, 0.3, 1.0, -0.2, 0.1, -0.2, 0.5}));
  energies.push_back(AnalyticEnergy::double_well(3));
  energies.push_back(AnalyticEnergy::harmonic(5, 2.0f));
  energies.push_back(AnalyticEnergy::rosenbrock(4));
  energies.push_back(AnalyticEnergy::ackley(2));
  energies.push_back(AnalyticEnergy::rastrigin(6));
  for (const AnalyticEnergy& en : energies) {
    for (int64_t n : kBatches) {
      const int d = en.dim();
      const std::vector<float> x = random_normal(n * d, 3);
      std::vector<float> e_ref(n), g_ref(n * d), e(n), g(n * d);
      en.gradient(x.data(), n, g_ref.data(), e_ref.data());
      detail::gradient_cuda(en, x.data(), n, g.data(), e.data(), 0);
      // Rosenbrock's b = 100 and Rastrigin's 2 pi a sin terms make O(100) values: relative.
      expect_close_rows(e, e_ref, n, 1, 1e-4, 1e-5, false, en.name() + " energy");
      expect_close_rows(g, g_ref, n, d, 1e-4, 1e-5, false, en.name() + " gradient");
    }
  }
#endif
}

// Chains with the noise from a buffer: both backends see the same eps.
LangevinResult run_both_with_noise(const Energy& en, int64_t n, int steps, LangevinOptions o,
                                   LangevinResult* cpu, uint32_t seed) {
  const int d = en.dim();
  const std::vector<float> x0 = random_normal(n * d, seed);
  const std::vector<float> noise = random_normal(static_cast<std::size_t>(steps) * n * d, seed + 1);
  o.n_steps = steps;
  o.noise = noise.data();
  *cpu = langevin_sample(en, x0.data(), n, o, Device::cpu());
  return langevin_sample(en, x0.data(), n, o, Device::cuda(0));
}

TEST(CudaLangevin, NoiseFromBufferMatchesCpuEveryWidth) {
  CUEBM_REQUIRE_CUDA();
  int combo = 0;
  for (int wi = 0; wi < 5; ++wi) {
    const int w = kWidths[wi];
    for (Activation act : kActs) {
      for (int64_t n : kBatches) {
        if (n == 65537 && (static_cast<int>(act) + wi) % 3 != 0) continue;
        if (n == 65537 && w == 256) continue;  // CPU reference time
        ++combo;
        const int dims[] = {2, 5, 33, 128};
        const int d = dims[combo % 4];
        Mlp mlp({d, std::vector<int>(1 + combo % 2, w), act}, 300 + combo);
        LangevinOptions o;
        o.step_size = 0.01f;
        o.noise_scale = 0.1f;
        LangevinResult cpu;
        const LangevinResult gpu = run_both_with_noise(mlp, n, 10, o, &cpu, combo);
        expect_close_rows(gpu.samples, cpu.samples, n, d, 1e-4, 1e-4, kinked(act),
                          mlp.name() + " chains, batch " + std::to_string(n));
      }
    }
  }
}

TEST(CudaLangevin, GeneralAndAnalyticChainsMatchCpu) {
  CUEBM_REQUIRE_CUDA();
  Mlp irregular({3, {20, 7}, Activation::kSiLU}, 11);
  const AnalyticEnergy dw = AnalyticEnergy::double_well(3);
  const AnalyticEnergy gauss = AnalyticEnergy::gaussian({0.f, 1.f}, {1.0, 0.5, 0.5, 2.0});
  const AnalyticEnergy rast = AnalyticEnergy::rastrigin(2, 1.0f);
  const Energy* energies[] = {&irregular, &dw, &gauss, &rast};
  for (const Energy* en : energies) {
    for (int64_t n : kBatches) {
      LangevinOptions o;
      o.step_size = 0.005f;
      o.noise_scale = 0.5f;
      LangevinResult cpu;
      const LangevinResult gpu = run_both_with_noise(*en, n, 10, o, &cpu, 77);
      expect_close_rows(gpu.samples, cpu.samples, n, en->dim(), 1e-4, 1e-4, false,
                        en->name() + " chains, batch " + std::to_string(n));
    }
  }
}

TEST(CudaLangevin, PhiloxChainsMatchCpu) {
  CUEBM_REQUIRE_CUDA();
  // Philox noise on both: normals differ by ~1e-6 (sinf/cosf vs __sincosf), so chains agree to
  // ~1e-6 * sqrt(2 eta) sigma * steps.
  Mlp mlp({2, {64, 64}, Activation::kSiLU}, 5);
  LangevinOptions o;
  o.step_size = 0.01f;
  o.noise_scale = 0.5f;
  o.n_steps = 20;
  o.seed = 99;
  o.step_offset = 40;
  o.first_chain = 1000;
  for (const Energy* en : {static_cast<const Energy*>(&mlp)}) {
    const LangevinResult cpu = langevin_sample(*en, nullptr, 257, o, Device::cpu());
    const LangevinResult gpu = langevin_sample(*en, nullptr, 257, o, Device::cuda(0));
    expect_close_rows(gpu.samples, cpu.samples, 257, 2, 1e-4, 1e-4, false, "philox chains");
  }
}

TEST(CudaLangevin, TrajectoryClampAndDiagnosticsMatchCpu) {
  CUEBM_REQUIRE_CUDA();
  Mlp mlp({3, {32, 32}, Activation::kTanh}, 8);
  LangevinOptions o;
  o.step_size = 0.02f;
  o.noise_scale = 0.3f;
  o.clamp_min = -0.5f;
  o.clamp_max = 0.6f;
  o.thin = 3;
  o.diagnostics = true;
  for (int64_t n : {int64_t{31}, int64_t{257}, int64_t{4099}}) {
    LangevinResult cpu;
    const LangevinResult gpu = run_both_with_noise(mlp, n, 10, o, &cpu, 21);
    ASSERT_EQ(gpu.n_kept, 3);
    expect_close_rows(gpu.samples, cpu.samples, n, 3, 1e-4, 1e-4, false, "samples");
    expect_close_rows(gpu.trajectory, cpu.trajectory, 3 * n, 3, 1e-4, 1e-4, false, "trajectory");
    for (float v : gpu.samples) ASSERT_TRUE(v >= -0.5f && v <= 0.6f);
    expect_close_rows(gpu.diag_mean, cpu.diag_mean, 10, 3, 1e-5, 1e-4, false, "diag mean");
    expect_close_rows(gpu.diag_variance, cpu.diag_variance, 10, 3, 1e-5, 1e-4, false, "diag var");
    for (int t = 0; t < 10; ++t)
      EXPECT_NEAR(gpu.diag_mean_energy[t], cpu.diag_mean_energy[t],
                  1e-5 + 1e-4 * std::abs(cpu.diag_mean_energy[t]));
    EXPECT_DOUBLE_EQ(gpu.temperature, cpu.temperature);
  }
}

TEST(CudaLangevin, HarmonicVarianceClosedForm) {
  CUEBM_REQUIRE_CUDA();
  // var = sigma^2 / (k (1 - eta k / 2)); burn-in contraction (1 - eta k)^t = 0.8^150 ~ 3e-15.
  const float k = 2.0f, eta = 0.1f, sigma = 0.7f;
  const AnalyticEnergy h = AnalyticEnergy::harmonic(2, k);
  LangevinOptions o;
  o.step_size = eta;
  o.noise_scale = sigma;
  o.n_steps = 150;
  o.seed = 3;
  const int64_t n = 65536;
  const LangevinResult r = langevin_sample(h, nullptr, n, o, Device::cuda(0));
  const double expected = sigma * sigma / (k * (1 - eta * k / 2));
  const double se = expected * std::sqrt(2.0 / (n - 1));  // SE of a sample variance
  for (int d = 0; d < 2; ++d) {
    double s = 0, s2 = 0;
    for (int64_t i = 0; i < n; ++i) {
      s += r.samples[i * 2 + d];
      s2 += static_cast<double>(r.samples[i * 2 + d]) * r.samples[i * 2 + d];
    }
    const double mean = s / n, var = (s2 - n * mean * mean) / (n - 1);
    EXPECT_NEAR(var, expected, 4 * se) << "coordinate " << d;
    EXPECT_NEAR(mean, 0.0, 4 * std::sqrt(expected / n)) << "coordinate " << d;
  }
}

TEST(CudaLangevin, BitwiseDeterministicAndIndependentOfBlockSize) {
  CUEBM_REQUIRE_CUDA();
  Mlp fused({2, {64, 64}, Activation::kReLU}, 1);
  Mlp general({3, {20, 7}, Activation::kGELU}, 2);
  const AnalyticEnergy dw = AnalyticEnergy::double_well(2);
  const Energy* energies[] = {&fused, &general, &dw};
  LangevinOptions o;
  o.step_size = 0.01f;
  o.noise_scale = 0.2f;
  o.n_steps = 25;
  o.seed = 12;
  o.diagnostics = true;
  o.thin = 5;
  for (const Energy* en : energies) {
    const LangevinResult a = langevin_sample(*en, nullptr, 1000, o, Device::cuda(0));
    const LangevinResult b = langevin_sample(*en, nullptr, 1000, o, Device::cuda(0));
    EXPECT_EQ(a.samples, b.samples) << en->name();
    EXPECT_EQ(a.diag_mean_energy, b.diag_mean_energy) << en->name();
#if CUEBM_HAVE_CUDA
    for (int threads : {32, 64, 96, 256}) {
      detail::set_cuda_block_size_for_testing(threads);
      const LangevinResult c = langevin_sample(*en, nullptr, 1000, o, Device::cuda(0));
      EXPECT_EQ(a.samples, c.samples) << en->name() << " threads " << threads;
      EXPECT_EQ(a.trajectory, c.trajectory) << en->name() << " threads " << threads;
      EXPECT_EQ(a.diag_mean, c.diag_mean) << en->name() << " threads " << threads;
      EXPECT_EQ(a.diag_variance, c.diag_variance) << en->name() << " threads " << threads;
      EXPECT_EQ(a.diag_mean_energy, c.diag_mean_energy) << en->name() << " threads " << threads;
    }
    detail::set_cuda_block_size_for_testing(0);
#endif
  }
}

[[maybe_unused]] TrainerOptions cd_options(bool persistent) {
  TrainerOptions t;
  t.cd.k_steps = 5;
  t.cd.persistent = persistent;
  t.cd.buffer_size = 500;
  t.cd.init_steps = 4;
  t.cd.new_sample_ratio = 0.1f;
  t.sampler.step_size = 0.05f;
  t.sampler.noise_scale = 0.1f;
  t.seed = 17;
  t.max_grad_norm = 0.5f;
  return t;
}

TEST(CudaCD, ThreeStepsMatchCpu) {
  CUEBM_REQUIRE_CUDA();
  // Smooth activations only: the comparison follows chains and Adam through 3 iterations.
  for (bool persistent : {false, true}) {
    for (Activation act : {Activation::kSiLU, Activation::kTanh}) {
      const MlpSpec spec{2, {32, 32}, act};
      Mlp cpu_model(spec, 4), gpu_model(spec, 4);
      const TrainerOptions opt = cd_options(persistent);
      const int64_t batch = 64;
      CDTrainer cpu(cpu_model, opt, batch, Device::cpu());
      CDTrainer gpu(gpu_model, opt, batch, Device::cuda(0));
      for (int it = 0; it < 3; ++it) {
        const std::vector<float> data = random_normal(batch * 2, 900 + it, 0.5f);
        const StepStats sc = cpu.step(data.data(), batch);
        const StepStats sg = gpu.step(data.data(), batch);
        const std::string what = std::string(persistent ? "PCD " : "CD ") + activation_name(act) +
                                 " iteration " + std::to_string(it);
        EXPECT_NEAR(sg.loss, sc.loss, 1e-5 + 1e-4 * std::abs(sc.loss)) << what;
        EXPECT_NEAR(sg.pos_energy, sc.pos_energy, 1e-5 + 1e-4 * std::abs(sc.pos_energy)) << what;
        EXPECT_NEAR(sg.neg_energy, sc.neg_energy, 1e-5 + 1e-4 * std::abs(sc.neg_energy)) << what;
        EXPECT_NEAR(sg.grad_norm, sc.grad_norm, 1e-6 + 1e-3 * sc.grad_norm) << what;
        EXPECT_EQ(sg.skipped, sc.skipped);
        EXPECT_EQ(gpu.last_buffer_rows(), cpu.last_buffer_rows()) << what;  // bitwise row choice
        EXPECT_EQ(gpu.buffer_pointer(), cpu.buffer_pointer()) << what;
        const std::vector<float> ng(gpu.last_negatives(), gpu.last_negatives() + batch * 2);
        const std::vector<float> nc(cpu.last_negatives(), cpu.last_negatives() + batch * 2);
        expect_close_rows(ng, nc, batch, 2, 1e-4, 1e-4, false, what + " negatives");
      }
      const std::vector<float> pg(gpu_model.parameters().begin(), gpu_model.parameters().end());
      const std::vector<float> pc(cpu_model.parameters().begin(), cpu_model.parameters().end());
      // Adam moves each parameter by ~lr per step; gradients agree to ~1e-5 relative, so the
      // parameters agree to ~lr * 1e-4.
      expect_close_rows(pg, pc, static_cast<int64_t>(pc.size()), 1, 2e-6, 1e-5, false,
                        "parameters after 3 steps");
      EXPECT_EQ(gpu.optimizer().steps(), cpu.optimizer().steps());
      if (persistent) {
        ASSERT_EQ(gpu.replay_buffer().size(), cpu.replay_buffer().size());
        expect_close_rows(gpu.replay_buffer(), cpu.replay_buffer(), 500, 2, 1e-4, 1e-4, false,
                          "replay buffer");
      }
    }
  }
}

TEST(CudaCD, BitwiseDeterministicAndResumable) {
  CUEBM_REQUIRE_CUDA();
  for (bool persistent : {false, true}) {
    const MlpSpec spec{2, {64, 64}, Activation::kReLU};
    Mlp a(spec, 9), b(spec, 9);
    const TrainerOptions opt = cd_options(persistent);
    CDTrainer ta(a, opt, 128, Device::cuda(0)), tb(b, opt, 128, Device::cuda(0));
    for (int it = 0; it < 3; ++it) {
      const std::vector<float> data = random_normal(128 * 2, 40 + it, 0.5f);
      const StepStats sa = ta.step(data.data(), 100 + it);  // partial batches too
      const StepStats sb = tb.step(data.data(), 100 + it);
      EXPECT_EQ(sa.loss, sb.loss);
      EXPECT_EQ(sa.grad_norm, sb.grad_norm);
    }
    EXPECT_TRUE(std::equal(a.parameters().begin(), a.parameters().end(), b.parameters().begin()));
    // Host-side changes are picked up: reset b to a's state and step both once more.
    tb.load_state(ta.state());
    std::copy(a.parameters().begin(), a.parameters().end(), b.parameters().begin());
    tb.optimizer().load_state(ta.optimizer().steps(), ta.optimizer().first_moment(),
                              ta.optimizer().second_moment());
    const std::vector<float> data = random_normal(128 * 2, 77, 0.5f);
    EXPECT_EQ(ta.step(data.data(), 128).loss, tb.step(data.data(), 128).loss);
    EXPECT_TRUE(std::equal(a.parameters().begin(), a.parameters().end(), b.parameters().begin()));
  }
}

// The small case compute-sanitizer runs (tools/gpu-check.sh): every kernel once on small batches.
TEST(CudaSmall, EveryKernelOnce) {
  CUEBM_REQUIRE_CUDA();
  Mlp fused64({3, {64, 64}, Activation::kSiLU}, 1);
  Mlp fused256({2, {256, 256}, Activation::kReLU}, 2);
  Mlp fused16({5, {16}, Activation::kGELU}, 3);
  Mlp general({3, {20, 7}, Activation::kTanh}, 4);
  const AnalyticEnergy gauss = AnalyticEnergy::gaussian({0.f, 1.f}, {1.0, 0.5, 0.5, 2.0});
  const Energy* energies[] = {&fused64, &fused256, &fused16, &general, &gauss};
  LangevinOptions o;
  o.step_size = 0.01f;
  o.n_steps = 3;
  o.thin = 2;
  o.diagnostics = true;
  o.clamp_min = -3.0f;
  for (const Energy* en : energies) {
    const int d = en->dim();
    for (int64_t n : {int64_t{1}, int64_t{33}}) {
      const std::vector<float> x = random_normal(n * d, 5);
      const LangevinResult r = langevin_sample(*en, x.data(), n, o, Device::cuda(0));
      EXPECT_EQ(r.samples.size(), static_cast<std::size_t>(n * d));
      const std::vector<float> noise = random_normal(3 * n * d, 6);
      LangevinOptions on = o;
      on.noise = noise.data();
      const LangevinResult cpu = langevin_sample(*en, x.data(), n, on, Device::cpu());
      const LangevinResult gpu = langevin_sample(*en, x.data(), n, on, Device::cuda(0));
      expect_close_rows(gpu.samples, cpu.samples, n, d, 1e-4, 1e-4, true, en->name());
#if CUEBM_HAVE_CUDA
      std::vector<float> e(n), g(n * d), e_ref(n), g_ref(n * d);
      detail::gradient_cuda(*en, x.data(), n, g.data(), e.data(), 0);
      en->gradient(x.data(), n, g_ref.data(), e_ref.data());
      expect_close_rows(e, e_ref, n, 1, 1e-4, 1e-4, false, en->name() + " energy");
#endif
    }
  }
  for (bool persistent : {false, true}) {
    Mlp model({2, {32, 32}, Activation::kSiLU}, 5);
    TrainerOptions t;
    t.cd.k_steps = 2;
    t.cd.persistent = persistent;
    t.cd.buffer_size = 40;
    t.cd.init_steps = 2;
    CDTrainer trainer(model, t, 16, Device::cuda(0));
    for (int it = 0; it < 2; ++it) {
      const std::vector<float> data = random_normal(16 * 2, 7 + it);
      const StepStats s = trainer.step(data.data(), 16 - it);
      EXPECT_TRUE(std::isfinite(s.loss));
    }
  }
}

// LangevinOptions::noise on the CPU backend (runs everywhere): one step is the formula with the
// given eps, and chain row r reads noise[(t * n + r) * dim + d].
TEST(LangevinNoiseBuffer, StepsEqualFormulaOnCpu) {
  const AnalyticEnergy h = AnalyticEnergy::harmonic(3, 2.0f);
  const int64_t n = 37;
  const std::vector<float> x0 = random_normal(n * 3, 1);
  const std::vector<float> noise = random_normal(2 * n * 3, 2);
  LangevinOptions o;
  o.step_size = 0.05f;
  o.noise_scale = 0.3f;
  o.n_steps = 2;
  o.noise = noise.data();
  const LangevinResult r = langevin_sample(h, x0.data(), n, o, Device::cpu());
  const float coef = std::sqrt(2.0f * 0.05f) * 0.3f;
  for (int64_t i = 0; i < n * 3; ++i) {
    double x = x0[i];
    for (int t = 0; t < 2; ++t) x = x - 0.05 * 2.0 * x + coef * noise[t * n * 3 + i];
    EXPECT_NEAR(r.samples[i], x, 1e-6 + 1e-6 * std::abs(x)) << i;
  }
}

}  // namespace
}  // namespace cuebm
