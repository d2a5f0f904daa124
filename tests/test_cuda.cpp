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
#include <filesystem>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "cuebm/io/safetensors.hpp"
#include "cuebm/models/analytic.hpp"
#include "cuebm/models/energy.hpp"
#include "cuebm/models/mlp.hpp"
#include "cuebm/runtime/device.hpp"
#include "cuebm/runtime/error.hpp"
#include "cuebm/sampling/langevin.hpp"
#include "cuebm/training/cd.hpp"
#include "cuebm/training/checkpoint.hpp"
#include "cuebm/training/training.hpp"
#include "host/runtime/random.hpp"
#include "quartic_energy_support.hpp"
#if CUEBM_HAVE_CUDA
#include "host/models/cuda_models.hpp"
#include "host/runtime/cuda_device.hpp"
#include "host/sampling/cuda_langevin.hpp"
#include "host/training/cuda_trainer.hpp"
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
// The largest batch spans hundreds of blocks on a GPU; the emulated GPU (about 1e4 times
// slower) runs a batch that still spans many blocks and a partial last one.
#if defined(CUEBM_CUDA_EMULATION)
constexpr int64_t kLargeBatch = 8193;
#else
constexpr int64_t kLargeBatch = 65537;
#endif
const int64_t kBatches[] = {1, 31, 257, kLargeBatch};

using testing_support::QuarticEnergy;

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
  // The fused kernels keep 32 rows or more of per-row storage (x, every hidden layer's
  // derivatives, 0-2 activation buffers: host/models/launch_plan.hpp, FusedLayout::per_row) in one
  // block's shared memory; where 32 rows exceed the device's opt-in limit (A100: 163 KB;
  // sm_86/89/120: 99 KB) the planner falls back to the general path.
  const std::size_t optin = detail::cuda_device_info(0).shared_per_block_optin;
  auto expected_path = [&](int d, int w, int layers) {
    const int act_buffers = layers == 1 ? 0 : (layers == 2 ? 1 : 2);
    const std::size_t row_bytes = sizeof(float) * (d + layers * w + act_buffers * w);
    return 32 * row_bytes <= optin ? "fused<" + std::to_string(w) + ">" : std::string("general");
  };
  int combo = 0;
  for (int wi = 0; wi < 5; ++wi) {
    const int w = kWidths[wi];
    int fused_cases = 0;
    for (Activation act : kActs) {
      for (int64_t n : kBatches) {
        // The large batch for two activations per width (every activation over the widths)
        // to bound the CPU reference's time.
        if (n == kLargeBatch && (static_cast<int>(act) + wi) % 3 != 0) continue;
        ++combo;
        const int dims[] = {2, 3, 17, 128};
        const int d = dims[combo % 4];
        const int layers = n == kLargeBatch && w == 256 ? 1 : 1 + combo % 3;
        Mlp mlp({d, std::vector<int>(layers, w), act}, 100 + combo);
        const std::string path = detail::cuda_mlp_path(mlp, 0);
        ASSERT_EQ(path, expected_path(d, w, layers)) << mlp.name() << ", opt-in " << optin;
        fused_cases += path != "general";
        const std::vector<float> x = random_normal(n * d, combo);
        std::vector<float> e_ref(n), g_ref(n * d), e(n), g(n * d), e2(n);
        mlp.gradient(x.data(), n, g_ref.data(), e_ref.data());
        detail::gradient_cuda(mlp, x.data(), n, g.data(), e.data(), 0);
        detail::energy_cuda(mlp, x.data(), n, e2.data(), 0);
        const std::string what = mlp.name() + " batch " + std::to_string(n);
        expect_close_rows(e, e_ref, n, 1, 1e-4, 1e-4, false, what + " energy");
        expect_close_rows(e2, e, n, 1, 0, 0, false, what + " energy-only kernel");
        expect_close_rows(g, g_ref, n, d, 1e-4, 1e-4, kinked(act), what + " gradient");
        if (n == 257) {
          // Every launch plan gives the same bits (32-thread blocks keep the weights in shared
          // memory where they fit; 256 threads read them from global memory, or fall back to
          // the automatic plan when 256 rows do not fit).
          for (int threads : {32, 256}) {
            detail::set_cuda_block_size_for_testing(threads);
            std::vector<float> e3(n), g3(n * d);
            detail::gradient_cuda(mlp, x.data(), n, g3.data(), e3.data(), 0);
            EXPECT_EQ(e3, e) << what << ", " << threads << " threads";
            EXPECT_EQ(g3, g) << what << ", " << threads << " threads";
          }
          detail::set_cuda_block_size_for_testing(0);
        }
      }
    }
    // Every width has cases whose 32 rows fit any supported device (all those with L = 1).
    EXPECT_GT(fused_cases, 0) << "width " << w;
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
    for (int64_t n : kBatches) {
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
        if (n == kLargeBatch && (static_cast<int>(act) + wi) % 3 != 0) continue;
        if (n == kLargeBatch && w == 256) continue;  // CPU reference time
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

TEST(CudaLangevin, TeamChainsEqualOneThreadChainsBitForBit) {
  // kernels/sampling/fused_team.cuh promises the one-thread kernel's bits at every lane count: same
  // accumulation order per unit. Every fused width, 1-3 hidden layers (4 for W <= 64), D = 2, 5
  // and 17 (one, two and five blocks of four coordinates), with and without clamping, noise
  // from Philox or a buffer; 37 chains leave a partial last block at every lane count.
  CUEBM_REQUIRE_CUDA();
#if CUEBM_HAVE_CUDA
  int combo = 0;
  for (int w : {16, 32, 64, 128, 256})
    for (int layers : {1, 2, 3, 4}) {
      if (layers == 4 && w > 64) continue;  // four layers wrap the activation buffers once
      ++combo;
      const int dims[] = {2, 5, 17};
      const int d = dims[combo % 3];
      Mlp mlp({d, std::vector<int>(layers, w), kActs[combo % 6]}, 300 + combo);
      const std::string what = mlp.name();
      LangevinOptions o;
      o.step_size = 0.01f;
      o.noise_scale = 0.3f;
      o.n_steps = 3;
      o.seed = 5 + combo;
      if (combo % 2) {
        o.clamp_min = -0.5f;
        o.clamp_max = 0.5f;
      }
      const int64_t n = 37;
      // Every third case draws its noise from a buffer instead of Philox.
      const std::vector<float> noise = random_normal(o.n_steps * n * d, combo);
      if (combo % 3 == 0) o.noise = noise.data();
      detail::set_cuda_chain_team_for_testing(-1);
      ASSERT_EQ(detail::cuda_chain_lanes(mlp, n, 0), 1) << what;
      const LangevinResult ref = langevin_sample(mlp, nullptr, n, o, Device::cuda(0));
      for (int lanes = 2; lanes <= std::min(32, w / 4); lanes *= 2) {
        detail::set_cuda_chain_team_for_testing(lanes);
        ASSERT_EQ(detail::cuda_chain_lanes(mlp, n, 0), lanes) << what;
        const LangevinResult team = langevin_sample(mlp, nullptr, n, o, Device::cuda(0));
        EXPECT_EQ(team.samples, ref.samples) << what << ", " << lanes << " lanes";
      }
      detail::set_cuda_chain_team_for_testing(0);
      // The automatic plan takes teams for a CD iteration's 256 chains on any device with more
      // than 8 SMs (the emulated H200 has 132).
      EXPECT_GT(detail::cuda_chain_lanes(mlp, 256, 0), 1) << what;
    }
#endif
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

// How far the parameters of the two backends may drift apart through CD steps and Adam from
// float rounding alone, per parameter (u = 2^-24, B rows per phase, T steps):
//  - Gradient. Entry j of a step's gradient is a sum over the 2B rows (B positives, B negatives)
//    of the terms c_r dE_r/dtheta_j: cuBLAS GEMMs / GEMVs on the device (their own order, float
//    accumulation), row blocks then chunk partials on the CPU. A float sum of n terms errs by
//    up to n u (worst case), typically sqrt(n) u, *relative to the sum of absolute values*
//    S_j = sum_r |c_r dE_r/dtheta_j| (every partial sum is at most S_j), not to |g_j|: CD's
//    positive and negative phases cancel, and g_j can be orders of magnitude smaller than S_j.
//    Each rounding is at most u/2 of a partial sum, independent between additions (standard
//    deviation of their sum <= sqrt(n / 12) u S_j), so the error is within 4 sqrt(n) u S_j
//    (14 standard deviations; the products' own roundings add as much again at most). The
//    terms themselves differ by a
//    few u between the backends (FMA contraction, the device's expf / tanhf at <= 2 ulp, the
//    chains' ~1e-6 differences in the negatives): kTermUlps u |term| each, summed as if aligned.
//    Both backends err: |dg_j| <= K u S_j, K = 2 (4 sqrt(2B) + kTermUlps) ~ 120 for 2B = 128
//    (the worst case 2 (2B + kTermUlps) = 288 would be 2.4x looser). Clipping scales the
//    gradient by s = max_norm / (norm + 1e-6), the same on both up to the relative error of
//    the norms, rho = K u ||S|| / ||g||: D_j = s (K u S_j + rho |g_j|).
//  - Adam. theta -= lr r, r = m^ / (sqrt(v^) + eps), m^ and v^ the bias-corrected averages of
//    s g and (s g)^2 over the steps so far. Gradient errors |dg| <= D in every step so far move
//    m^ by <= D and v^ by <= 2 D sqrt(v^) (Cauchy-Schwarz), so r moves by <= (1 + |r|) D /
//    sqrt(v^) ~ 2 D / |g|: a relative gradient error becomes lr times it in the parameter, per
//    step. Step 1 is exact up to eps (r = s g / (|s g| + eps)) unless D >= |s g| (the sign may
//    differ: 2 lr), and |dr| <= 2.1 in any step (|r| <= ~1 in the first steps):
//      |dtheta_j| <= sum_t lr min(2.1, dr_jt) + 2 T u |theta_j|
//    (the last term: each backend rounds theta once per step).
// S, g, s, m^ and v^ come from the CPU run. Left out: a step's parameter difference changing
// the next steps' gradients and chains, second order at these sizes. A bug the size of an Adam
// step (a wrong sign in a gradient entry, a missing or doubled update: lr per step) exceeds
// the bound wherever rounding cannot flip the first step's sign; the test checks that the
// bound is under lr / 10 for 99% of the parameters. Planted in kernels/training/cd_kernels.cu, a
// wrong sign in gradient entry 500 fails by 390x (|d| 5e-3, bound 1.3e-5), a skipped second Adam
// update by 60x (parameter 0: |d| 6e-4, bound 1e-5); the largest |d| / bound of a correct run
// is 0.025 (printed as "drift").
class CdDriftBound {
 public:
  static constexpr double kU = 0x1p-24;
  static constexpr double kTermUlps = 16;

  CdDriftBound(const MlpSpec& spec, const TrainerOptions& o)
      : ref_(spec, 0), o_(o), dmax_(ref_.num_parameters(), 0.0), acc_(dmax_.size(), 0.0) {}

  // Before the CPU step: the parameters it starts from.
  void before_step(const Mlp& cpu_model) {
    std::copy(cpu_model.parameters().begin(), cpu_model.parameters().end(),
              ref_.parameters().begin());
  }

  // After the CPU step: its batch, negatives, statistics and Adam state.
  void after_step(const float* batch, int64_t rows, const CDTrainer& cpu, const StepStats& st) {
    if (st.skipped) return;
    ++steps_;
    const int d = ref_.dim();
    const std::size_t p = dmax_.size();
    std::vector<float> both(batch, batch + rows * d);
    both.insert(both.end(), cpu.last_negatives(), cpu.last_negatives() + rows * d);
    std::vector<float> e(2 * rows), term(p);
    ref_.energy(both.data(), 2 * rows, e.data());
    std::vector<double> s_abs(p, 0.0), g(p, 0.0);
    for (int64_t r = 0; r < 2 * rows; ++r) {
      // cd_coefficient: d loss / d E_r.
      const float c = ((r < rows ? 1.0f : -1.0f) + 2.0f * o_.cd.energy_reg_weight * e[r]) /
                      static_cast<float>(rows);
      ref_.parameter_gradient(both.data() + r * d, 1, &c, term.data());
      for (std::size_t j = 0; j < p; ++j) {
        s_abs[j] += std::abs(static_cast<double>(term[j]));
        g[j] += term[j];
      }
    }
    const double k = 2.0 * (4.0 * std::sqrt(2.0 * static_cast<double>(rows)) + kTermUlps);
    double s2 = 0, g2 = 0;
    for (std::size_t j = 0; j < p; ++j) {
      s2 += s_abs[j] * s_abs[j];
      g2 += g[j] * g[j];
    }
    const double rho = k * kU * std::sqrt(s2 / g2);
    const double max_norm = o_.max_grad_norm;
    const double scale =
        max_norm > 0 && st.grad_norm > max_norm ? max_norm / (st.grad_norm + 1e-6) : 1.0;
    const Adam& adam = cpu.optimizer();
    const AdamOptions& ao = adam.options();
    const double t = static_cast<double>(adam.steps());
    const double bc1 = 1.0 - std::pow(static_cast<double>(ao.beta1), t);
    const double bc2 = 1.0 - std::pow(static_cast<double>(ao.beta2), t);
    for (std::size_t j = 0; j < p; ++j) {
      dmax_[j] = std::max(dmax_[j], scale * (k * kU * s_abs[j] + rho * std::abs(g[j])));
      const double m_hat = adam.first_moment()[j] / bc1;
      const double root_v = std::sqrt(adam.second_moment()[j] / bc2) + ao.eps;
      double change = (1.0 + std::abs(m_hat) / root_v) * dmax_[j] / root_v;
      if (steps_ == 1) {  // r = s g / (|s g| + eps): only eps makes it depend on |g|
        const double sg = scale * std::abs(g[j]);
        change = dmax_[j] < sg ? ao.eps * dmax_[j] / (sg * (sg - dmax_[j])) : 2.0;
      }
      acc_[j] += ao.lr * std::min(2.1, change);
    }
  }

  // The bound for each parameter, theta the final parameters.
  std::vector<double> bound(std::span<const float> theta) const {
    std::vector<double> b(acc_.size());
    for (std::size_t j = 0; j < b.size(); ++j)
      b[j] = acc_[j] + 2.0 * steps_ * kU * std::abs(static_cast<double>(theta[j]));
    return b;
  }

 private:
  Mlp ref_;  // the CPU model before the step being recorded
  TrainerOptions o_;
  std::vector<double> dmax_, acc_;
  int steps_ = 0;
};

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
      CdDriftBound drift(spec, opt);
      const std::string run = std::string(persistent ? "PCD " : "CD ") + activation_name(act);
      for (int it = 0; it < 3; ++it) {
        const std::vector<float> data = random_normal(batch * 2, 900 + it, 0.5f);
        drift.before_step(cpu_model);
        const StepStats sc = cpu.step(data.data(), batch);
        drift.after_step(data.data(), batch, cpu, sc);
        const StepStats sg = gpu.step(data.data(), batch);
        const std::string what = run + " iteration " + std::to_string(it);
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
      gpu.sync_to_host();  // the device's parameters into gpu_model
      const std::span<const float> pg = gpu_model.parameters(), pc = cpu_model.parameters();
      const std::vector<double> bound = drift.bound(pc);
      double worst = 0;
      std::size_t worst_j = 0;
      for (std::size_t j = 0; j < pc.size(); ++j) {
        const double d = std::abs(static_cast<double>(pg[j]) - pc[j]);
        ASSERT_LE(d, bound[j]) << run << ": parameter " << j << " got " << pg[j] << " ref " << pc[j]
                               << " (bound " << bound[j] << ")";
        if (d / bound[j] > worst) {
          worst = d / bound[j];
          worst_j = j;
        }
      }
      std::vector<double> sorted = bound;
      std::sort(sorted.begin(), sorted.end());
      const double lr = opt.adam.lr;
      EXPECT_LT(sorted[sorted.size() * 99 / 100], 0.1 * lr) << run << ": bound too loose";
      std::cout << "[ drift   ] " << run << ": largest |d| / bound " << worst << " (parameter "
                << worst_j << ", |d| " << std::abs(static_cast<double>(pg[worst_j]) - pc[worst_j])
                << "), median bound " << sorted[sorted.size() / 2] << ", max " << sorted.back()
                << "\n";
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
    ta.sync_to_host();
    tb.sync_to_host();
    EXPECT_TRUE(std::equal(a.parameters().begin(), a.parameters().end(), b.parameters().begin()));
    // b moves on alone; then the host resets it to a's state (trainer state, parameters, Adam)
    // and both step once more: the host's changes must reach b's device copies.
    const std::vector<float> other = random_normal(128 * 2, 55, 0.5f);
    tb.step(other.data(), 128);
    tb.sync_to_host();
    EXPECT_FALSE(std::equal(a.parameters().begin(), a.parameters().end(), b.parameters().begin()));
    tb.load_state(ta.state());
    std::copy(a.parameters().begin(), a.parameters().end(), b.parameters().begin());
    tb.optimizer().load_state(ta.optimizer().steps(), ta.optimizer().first_moment(),
                              ta.optimizer().second_moment());
    const std::vector<float> data = random_normal(128 * 2, 77, 0.5f);
    EXPECT_EQ(ta.step(data.data(), 128).loss, tb.step(data.data(), 128).loss);
    ta.sync_to_host();
    tb.sync_to_host();
    EXPECT_TRUE(std::equal(a.parameters().begin(), a.parameters().end(), b.parameters().begin()));
    EXPECT_EQ(ta.replay_buffer(), tb.replay_buffer());
    EXPECT_EQ(ta.optimizer().steps(), tb.optimizer().steps());
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

// The device trainer keeps the parameters, Adam's moments, the negatives and the replay buffer
// on the device: a warm step copies back only its statistics (40 bytes) and synchronises once
// (before: 3 P floats + the negatives + the whole buffer, 55 KB per step here without a
// buffer, 135 KB with one). The host copies come back lazily, through the accessors and
// sync_to_host(), and are bit for bit those of a trainer that refreshes them after every step.
TEST(CudaCD, StepCopiesOnlyStatisticsAndSyncsLazily) {
  CUEBM_REQUIRE_CUDA();
#if CUEBM_HAVE_CUDA
  for (bool persistent : {false, true}) {
    const MlpSpec spec{2, {64, 64}, Activation::kReLU};  // the tutorial's model and batch
    const int64_t batch = 256;
    TrainerOptions opt = cd_options(persistent);
    opt.cd.buffer_size = 10000;  // TorchEBM's default
    opt.cd.init_steps = 2;
    Mlp lazy_model(spec, 3), eager_model(spec, 3);
    CDTrainer lazy(lazy_model, opt, batch, Device::cuda(0));
    CDTrainer eager(eager_model, opt, batch, Device::cuda(0));
    const std::string run = persistent ? "PCD" : "CD";
    const int steps = 4;
    for (int it = 0; it < steps; ++it) {
      const std::vector<float> data = random_normal(batch * 2, 60 + it, 0.5f);
      const detail::CudaTrainerTraffic before = detail::cuda_trainer_traffic_for_testing();
      const StepStats sl = lazy.step(data.data(), batch);
      const detail::CudaTrainerTraffic after = detail::cuda_trainer_traffic_for_testing();
      const StepStats se = eager.step(data.data(), batch);
      eager.sync_to_host();  // the previous behaviour: every host copy refreshed every step
      const std::string what = run + " step " + std::to_string(it);
      if (it > 0) {  // warm (the first step of PCD initialises the buffer, once)
        EXPECT_LE(after.d2h_bytes - before.d2h_bytes, 256) << what;
        EXPECT_EQ(after.syncs - before.syncs, 1) << what;
      }
      EXPECT_EQ(sl.loss, se.loss) << what;
      EXPECT_EQ(sl.pos_energy, se.pos_energy) << what;
      EXPECT_EQ(sl.neg_energy, se.neg_energy) << what;
      EXPECT_EQ(sl.grad_norm, se.grad_norm) << what;
      EXPECT_EQ(lazy.buffer_pointer(), eager.buffer_pointer()) << what;
    }
    // Read through the trainer after N steps: the same bits as the run that synced every step.
    const int64_t p = static_cast<int64_t>(lazy_model.num_parameters());
    const detail::CudaTrainerTraffic t0 = detail::cuda_trainer_traffic_for_testing();
    EXPECT_EQ(lazy.optimizer().steps(), steps);
    EXPECT_TRUE(
        std::ranges::equal(lazy.optimizer().first_moment(), eager.optimizer().first_moment()));
    EXPECT_TRUE(
        std::ranges::equal(lazy.optimizer().second_moment(), eager.optimizer().second_moment()));
    const detail::CudaTrainerTraffic t1 = detail::cuda_trainer_traffic_for_testing();
    EXPECT_EQ(t1.d2h_bytes - t0.d2h_bytes, 2 * p * 4) << "the moments, once";
    EXPECT_TRUE(std::equal(lazy.last_negatives(), lazy.last_negatives() + batch * 2,
                           eager.last_negatives()));
    EXPECT_EQ(lazy.replay_buffer(), eager.replay_buffer());
    lazy.sync_to_host();
    EXPECT_TRUE(std::ranges::equal(lazy_model.parameters(), eager_model.parameters()));
    const detail::CudaTrainerTraffic t2 = detail::cuda_trainer_traffic_for_testing();
    lazy.sync_to_host();  // all current: nothing to copy, no synchronisation
    lazy.state();
    const detail::CudaTrainerTraffic t3 = detail::cuda_trainer_traffic_for_testing();
    EXPECT_EQ(t3.d2h_bytes, t2.d2h_bytes);
    EXPECT_EQ(t3.syncs, t2.syncs);
    // A host write (after a sync) is uploaded by the next step, and the next sync keeps it.
    lazy_model.parameters()[5] += 0.25f;
    eager_model.parameters()[5] += 0.25f;
    lazy.sync_to_host();  // must not overwrite the write with the device's copy
    EXPECT_TRUE(std::ranges::equal(lazy_model.parameters(), eager_model.parameters()));
    const std::vector<float> data = random_normal(batch * 2, 99, 0.5f);
    EXPECT_EQ(lazy.step(data.data(), batch).loss, eager.step(data.data(), batch).loss);
    lazy.sync_to_host();
    eager.sync_to_host();
    EXPECT_TRUE(std::ranges::equal(lazy_model.parameters(), eager_model.parameters()));
  }
#endif
}

// langevin_sample on the device uploads an energy once and reuses it while it is unchanged;
// a change to its parameters (or another path) uploads it again.
TEST(CudaLangevin, DeviceModelCachedWhileEnergyUnchanged) {
  CUEBM_REQUIRE_CUDA();
#if CUEBM_HAVE_CUDA
  Mlp mlp({2, {32, 32}, Activation::kSiLU}, 21);
  const AnalyticEnergy dw = AnalyticEnergy::double_well(2);
  LangevinOptions o;
  o.step_size = 0.01f;
  o.noise_scale = 0.3f;
  o.n_steps = 5;
  o.seed = 8;
  const auto uploads = [] { return detail::langevin_model_uploads_for_testing(); };
  const int64_t u0 = uploads();
  const LangevinResult a = langevin_sample(mlp, nullptr, 100, o, Device::cuda(0));
  EXPECT_EQ(uploads(), u0 + 1);
  const LangevinResult b = langevin_sample(mlp, nullptr, 300, o, Device::cuda(0));
  o.diagnostics = true;
  o.thin = 2;
  const LangevinResult c = langevin_sample(mlp, nullptr, 100, o, Device::cuda(0));
  EXPECT_EQ(uploads(), u0 + 1) << "an unchanged energy is not uploaded again";
  EXPECT_EQ(a.samples, c.samples);  // reused buffers change nothing
  EXPECT_TRUE(std::equal(a.samples.begin(), a.samples.end(), b.samples.begin()));
  // Changed in place: uploaded again, and the chains follow the new parameters, as a fresh
  // copy of the changed model does on the CPU.
  mlp.parameters()[0] += 0.5f;
  const LangevinResult d = langevin_sample(mlp, nullptr, 100, o, Device::cuda(0));
  EXPECT_EQ(uploads(), u0 + 2);
  EXPECT_NE(d.samples, c.samples);
  const LangevinResult d_cpu = langevin_sample(mlp, nullptr, 100, o, Device::cpu());
  expect_close_rows(d.samples, d_cpu.samples, 100, 2, 1e-4, 1e-4, false, "changed model");
  detail::force_cuda_general_path_for_testing(true);  // another device model for the same bits
  const LangevinResult e = langevin_sample(mlp, nullptr, 100, o, Device::cuda(0));
  detail::force_cuda_general_path_for_testing(false);
  EXPECT_EQ(uploads(), u0 + 3);
  expect_close_rows(e.samples, d.samples, 100, 2, 1e-4, 1e-4, false, "general path");
  langevin_sample(dw, nullptr, 64, o, Device::cuda(0));
  langevin_sample(dw, nullptr, 64, o, Device::cuda(0));
  EXPECT_EQ(uploads(), u0 + 4);
#endif
}

// run_training on the device reads the trained model wherever the host uses it (checkpoints,
// the model file, the final parameters and metrics): they agree with each other and with the
// CPU run of the same settings, not with the initial model a stale host copy would still hold.
TEST(CudaCD, RunTrainingSavesTheDeviceParameters) {
  CUEBM_REQUIRE_CUDA();
  namespace fs = std::filesystem;
  const fs::path dir =
      fs::temp_directory_path() / ("cuebm_cuda_run_" + std::to_string(std::random_device{}()));
  fs::create_directories(dir);
  TrainConfig c;
  c.model = {2, {16, 16}, Activation::kSiLU};
  c.dataset_params = {{"n", 128}, {"components", 4}, {"std", 0.1}, {"radius", 1.5}};
  c.epochs = 3;
  c.batch_size = 64;
  c.cd.k_steps = 5;
  c.output_dir = "";
  c.final_steps = 10;
  c.figure_samples = 64;
  c.seed = 3;
  c.model_path = (dir / "m.safetensors").string();
  c.checkpoint_path = (dir / "ck.safetensors").string();
  c.device = Device::cuda(0);
  const auto quiet = [](const std::string&) {};
  const TrainReport gpu = run_training(c, quiet);
  const Mlp saved = load_mlp(c.model_path);
  const Checkpoint ck = read_checkpoint(c.checkpoint_path);
  fs::remove_all(dir);
  c.device = Device::cpu();
  c.model_path.clear();
  c.checkpoint_path.clear();
  const TrainReport cpu = run_training(c, quiet);
  const Mlp initial(c.model, c.seed);
  ASSERT_EQ(gpu.iterations, 6);
  EXPECT_TRUE(std::ranges::equal(saved.parameters(), gpu.final_parameters));
  EXPECT_EQ(ck.parameters, gpu.final_parameters);
  EXPECT_EQ(ck.adam_steps, gpu.iterations - gpu.skipped);
  EXPECT_EQ(ck.trainer.iteration, gpu.iterations);
  // Six Adam steps of lr = 1e-3 move most parameters by ~1e-3 or more; the backends drift
  // apart by far less (CudaCD.ThreeStepsMatchCpu).
  std::vector<double> to_cpu, to_initial;
  for (std::size_t j = 0; j < cpu.final_parameters.size(); ++j) {
    to_cpu.push_back(std::abs(gpu.final_parameters[j] - cpu.final_parameters[j]));
    to_initial.push_back(std::abs(gpu.final_parameters[j] - initial.parameters()[j]));
  }
  std::ranges::sort(to_cpu);
  std::ranges::sort(to_initial);
  const double lr = c.adam.lr;
  EXPECT_LT(to_cpu[to_cpu.size() / 2], 0.05 * lr);
  EXPECT_GT(to_initial[to_initial.size() / 2], lr);
  EXPECT_NEAR(gpu.mmd2, cpu.mmd2, 1e-3 + 0.05 * std::abs(cpu.mmd2));
}

}  // namespace
}  // namespace cuebm
