// Device-wide statistics through Thrust (host/runtime/device_reduce.hpp) against plain host
// computations, on inputs with NaN and +-inf entries, ties, n = 0 and 1, sizes that are not
// powers of two and 1e6 entries; the inputs reach the device on the caller's stream right
// before each call, so a call that did not wait for the stream's queued work reads the
// allocation's fill instead. Then the MCMC device path's use of them: R-hat and ESS from the
// device ranks equal split_rhat and ess_bulk of the trace bit for bit.
#include <gtest/gtest.h>
#include "cuda_skip.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "cuebm/models/analytic.hpp"
#include "cuebm/runtime/error.hpp"
#include "cuebm/sampling/diagnostics.hpp"
#include "cuebm/sampling/mcmc.hpp"
#if CUEBM_HAVE_CUDA
#include <cuda_runtime.h>

#include "host/runtime/device_reduce.hpp"
#include "host/sampling/cuda_mcmc.hpp"
#include "host/sampling/mcmc_support.hpp"
#endif

namespace cuebm {
namespace {

#if CUEBM_HAVE_CUDA
constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

void check(cudaError_t e, const char* what) {
  ASSERT_EQ(e, cudaSuccess) << what << ": " << cudaGetErrorString(e);
}

// A non-blocking stream and device copies of host arrays, uploaded on that stream (queued, not
// yet run, in the emulated backend).
class OnDevice {
 public:
  OnDevice() { check(cudaStreamCreateWithFlags(&s_, cudaStreamNonBlocking), "stream"); }
  ~OnDevice() {
    for (void* p : allocations_) cudaFree(p);
    cudaStreamDestroy(s_);
  }
  cudaStream_t stream() const { return s_; }
  template <class T>
  T* upload(const std::vector<T>& h) {
    T* d = alloc<T>(h.size());
    if (!h.empty())
      check(cudaMemcpyAsync(d, h.data(), h.size() * sizeof(T), cudaMemcpyHostToDevice, s_),
            "upload");
    return d;
  }
  template <class T>
  T* alloc(std::size_t n) {
    void* p = nullptr;
    check(cudaMalloc(&p, std::max<std::size_t>(n, 1) * sizeof(T)), "cudaMalloc");
    allocations_.push_back(p);
    return static_cast<T*>(p);
  }
  template <class T>
  std::vector<T> download(const T* d, std::size_t n) {
    std::vector<T> h(n);
    if (n > 0) check(cudaMemcpyAsync(h.data(), d, n * sizeof(T), cudaMemcpyDeviceToHost, s_), "dl");
    check(cudaStreamSynchronize(s_), "sync");
    return h;
  }

 private:
  cudaStream_t s_ = nullptr;
  std::vector<void*> allocations_;
};

// n doubles from N(0, 3), every `special`-th one (when > 0) NaN, +inf or -inf in turn; with
// `levels` > 0 they are rounded to multiples of 1 / levels, so that many tie.
std::vector<double> random_values(int64_t n, uint64_t seed, int special, int levels) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal(0.0, 3.0);
  std::vector<double> v(n);
  const double specials[] = {kNaN, kInf, -kInf};
  for (int64_t i = 0; i < n; ++i) {
    v[i] = normal(rng);
    if (levels > 0) v[i] = std::round(v[i] * levels) / levels;
    if (special > 0 && i % special == special - 1) v[i] = specials[(i / special) % 3];
  }
  return v;
}

// --- sum ---

TEST(DeviceReduce, SumOfIntsIsExactIn64Bits) {
  CUEBM_REQUIRE_CUDA();
  std::mt19937_64 rng(11);
  for (int64_t n : {int64_t{0}, int64_t{1}, int64_t{777}, int64_t{1000000}}) {
    // Values near INT_MAX: the sum overflows 32 bits from the second entry on.
    std::uniform_int_distribution<int> draw(std::numeric_limits<int>::max() - 1000,
                                            std::numeric_limits<int>::max());
    std::vector<int> v(n);
    for (int& x : v) x = (rng() & 1) ? draw(rng) : -draw(rng) / 3;
    int64_t expected = 0;
    for (int x : v) expected += x;
    OnDevice d;
    const int* dv = d.upload(v);
    EXPECT_EQ(detail::device_sum(dv, n, d.stream()), expected) << "n = " << n;
  }
}

// --- log-weight statistics ---

// ais.cpp's end, sequentially in double.
detail::LogWeightStats host_log_weight_stats(const std::vector<double>& w) {
  detail::LogWeightStats s;
  for (double x : w)
    if (std::isfinite(x)) {
      s.max = std::max(s.max, x);
      ++s.finite;
    }
  if (s.finite == 0) return s;
  for (double x : w) {
    const double u = std::isfinite(x) ? std::exp(x - s.max) : 0.0;
    s.sum += u;
    s.sum_sq += u * u;
  }
  return s;
}

TEST(DeviceReduce, ColumnSumsAreExactPerColumn) {
  CUEBM_REQUIRE_CUDA();
  std::mt19937_64 rng(5);
  for (auto [rows, cols] : {std::pair<int64_t, int>{1, 1}, {37, 3}, {1000, 8}, {250001, 7}}) {
    std::uniform_int_distribution<int> draw(0, std::numeric_limits<int>::max());
    std::vector<int> v(rows * cols);
    for (int& x : v) x = draw(rng);
    std::vector<int64_t> expected(cols, 0);
    for (int64_t r = 0; r < rows; ++r)
      for (int c = 0; c < cols; ++c) expected[c] += v[r * cols + c];
    OnDevice d;
    const int* dv = d.upload(v);
    EXPECT_EQ(detail::device_column_sums(dv, rows, cols, d.stream()), expected)
        << rows << " x " << cols;
  }
  OnDevice d;
  EXPECT_TRUE(detail::device_column_sums(nullptr, 0, 4, d.stream()) == std::vector<int64_t>(4));
  EXPECT_THROW(detail::device_column_sums(nullptr, 3, -1, d.stream()), InvalidArgument);
}

// The gather is queued behind the uploads on a non-blocking stream and must neither run early
// (it would read the allocations' NaN fill) nor need a synchronisation of its own.
TEST(DeviceReduce, GatherRowsInStreamOrder) {
  CUEBM_REQUIRE_CUDA();
  std::mt19937_64 rng(9);
  for (auto [n_src, rows, dim] :
       {std::tuple<int64_t, int64_t, int>{1, 1, 1}, {50, 17, 3}, {10000, 4096, 2}}) {
    std::vector<float> src(n_src * dim);
    for (std::size_t i = 0; i < src.size(); ++i) src[i] = static_cast<float>(i) * 0.5f - 7.0f;
    std::vector<int64_t> idx(rows);
    for (int64_t& r : idx) r = static_cast<int64_t>(rng() % n_src);
    OnDevice d;
    const float* ds = d.upload(src);
    const int64_t* di = d.upload(idx);
    float* out = d.alloc<float>(rows * dim);
    detail::device_gather_rows(ds, di, rows, dim, out, d.stream());
    const std::vector<float> got = d.download(out, rows * dim);
    for (int64_t r = 0; r < rows; ++r)
      for (int k = 0; k < dim; ++k)
        ASSERT_EQ(got[r * dim + k], src[idx[r] * dim + k]) << "row " << r << ", column " << k;
  }
  OnDevice d;
  EXPECT_THROW(detail::device_gather_rows(nullptr, nullptr, 2, 0, nullptr, d.stream()),
               InvalidArgument);
}

TEST(DeviceReduce, LogWeightStatsMatchTheSequentialHostSums) {
  CUEBM_REQUIRE_CUDA();
  struct Case {
    int64_t n;
    int special;
  };
  for (const Case c : {Case{1, 0}, Case{1, 1}, Case{5, 2}, Case{777, 7}, Case{1000000, 101}}) {
    std::vector<double> w = random_values(c.n, 5 + c.n, c.special, 0);
    for (double& x : w) x *= 10;  // log weights spread over tens of units, as AIS's are
    const detail::LogWeightStats want = host_log_weight_stats(w);
    OnDevice d;
    const double* dw = d.upload(w);
    const detail::LogWeightStats got = detail::device_log_weight_stats(dw, c.n, d.stream());
    const std::string what = "n = " + std::to_string(c.n);
    EXPECT_EQ(got.finite, want.finite) << what;
    EXPECT_EQ(got.max, want.max) << what;  // a maximum is exact whatever the order
    // The sums are of positive terms added in another order: each differs from the exact sum
    // by at most n * 2^-53 relative (1.1e-10 at n = 1e6); exp's own error (1 ulp on a GPU)
    // adds 2^-52 per term. 1e-9 relative covers both.
    EXPECT_NEAR(got.sum, want.sum, 1e-9 * want.sum) << what;
    EXPECT_NEAR(got.sum_sq, want.sum_sq, 1e-9 * want.sum_sq) << what;
    if (c.n == 1 && c.special == 1) {  // a single NaN: nothing finite
      EXPECT_EQ(got.finite, 0);
      EXPECT_EQ(got.max, -kInf);
      EXPECT_EQ(got.sum, 0.0);
    }
  }
}

TEST(DeviceReduce, EmptyInputsAndNegativeSizes) {
  CUEBM_REQUIRE_CUDA();
  OnDevice d;
  const detail::LogWeightStats s = detail::device_log_weight_stats(nullptr, 0, d.stream());
  EXPECT_EQ(s.finite, 0);
  EXPECT_EQ(s.max, -kInf);
  detail::device_average_ranks(static_cast<const double*>(nullptr), 0, nullptr, d.stream());
  EXPECT_THROW(detail::device_sum(nullptr, -1, d.stream()), InvalidArgument);
  EXPECT_THROW(detail::device_log_weight_stats(nullptr, -2, d.stream()), InvalidArgument);
  EXPECT_THROW(
      detail::device_average_ranks(static_cast<const float*>(nullptr), -1, nullptr, d.stream()),
      InvalidArgument);
}

// --- ranks ---

// The documented order: == ties (so -0 ties +0), NaN after +inf, all NaNs tied.
bool rank_less(double a, double b) { return std::isnan(b) ? !std::isnan(a) : a < b; }
bool rank_equal(double a, double b) { return std::isnan(a) ? std::isnan(b) : a == b; }

// Small n: the definition itself, rank = #smaller + (#equal + 1) / 2 (the mean of the positions
// #smaller + 1 .. #smaller + #equal).
std::vector<double> ranks_by_counting(const std::vector<double>& v) {
  std::vector<double> r(v.size());
  for (std::size_t i = 0; i < v.size(); ++i) {
    int64_t smaller = 0, equal = 0;
    for (double x : v) {
      smaller += rank_less(x, v[i]);
      equal += rank_equal(x, v[i]);
    }
    r[i] = static_cast<double>(smaller) + (static_cast<double>(equal) + 1) / 2;
  }
  return r;
}

// Large n: sort (value, index) pairs and average each run of equal values.
std::vector<double> ranks_by_sorting(const std::vector<double>& v) {
  std::vector<std::pair<double, std::size_t>> p(v.size());
  for (std::size_t i = 0; i < v.size(); ++i) p[i] = {v[i], i};
  std::sort(p.begin(), p.end(),
            [](const auto& a, const auto& b) { return rank_less(a.first, b.first); });
  std::vector<double> r(v.size());
  for (std::size_t k = 0; k < p.size();) {
    std::size_t e = k + 1;
    while (e < p.size() && rank_equal(p[e].first, p[k].first)) ++e;
    for (std::size_t t = k; t < e; ++t) r[p[t].second] = (static_cast<double>(k + 1 + e)) / 2;
    k = e;
  }
  return r;
}

TEST(DeviceReduce, AverageRanksWithTiesNaNAndInfinities) {
  CUEBM_REQUIRE_CUDA();
  struct Case {
    int64_t n;
    int special, levels;
  };
  const Case cases[] = {{1, 0, 0},   {1, 1, 0},    {2, 0, 1},    {3, 2, 0},       {777, 0, 0},
                        {777, 5, 2}, {1000, 0, 1}, {1023, 9, 4}, {1000000, 97, 8}};
  for (const Case& c : cases) {
    std::vector<double> v = random_values(c.n, 3 + c.n, c.special, c.levels);
    if (c.n >= 4) v[1] = -0.0, v[2] = 0.0;  // -0 == +0: one tie
    const std::vector<double> want = c.n <= 2000 ? ranks_by_counting(v) : ranks_by_sorting(v);
    const std::string what = "n = " + std::to_string(c.n);
    OnDevice d;
    double* ranks = d.alloc<double>(c.n);
    detail::device_average_ranks(d.upload(v), c.n, ranks, d.stream());
    // Ranks are integers or halves: exact.
    EXPECT_EQ(d.download(ranks, c.n), want) << what << " (double values)";
    std::vector<float> f(v.begin(), v.end());  // float values: the same order and ties
    detail::device_average_ranks(d.upload(f), c.n, ranks, d.stream());
    std::vector<double> fd(f.begin(), f.end());
    EXPECT_EQ(d.download(ranks, c.n), c.n <= 2000 ? ranks_by_counting(fd) : ranks_by_sorting(fd))
        << what << " (float values)";
  }
}

// The ranks of the split draws, as rhat_ess_from_split_ranks takes them, give split_rhat and
// ess_bulk bit for bit.
TEST(DeviceReduce, SplitRanksGiveSplitRhatAndEssBulkExactly) {
  CUEBM_REQUIRE_CUDA();
  for (int64_t n : {int64_t{9}, int64_t{40}}) {
    const int64_t chains = 5, h = n / 2;
    std::vector<double> draws = random_values(chains * n, 17 + n, 0, 2);  // ties
    std::vector<double> split(2 * chains * h);
    for (int64_t c = 0; c < chains; ++c)
      for (int64_t i = 0; i < h; ++i) {
        split[2 * c * h + i] = draws[c * n + i];
        split[(2 * c + 1) * h + i] = draws[c * n + n - h + i];
      }
    OnDevice d;
    double* ranks = d.alloc<double>(split.size());
    detail::device_average_ranks(d.upload(split), static_cast<int64_t>(split.size()), ranks,
                                 d.stream());
    const detail::RhatEss r =
        detail::rhat_ess_from_split_ranks(draws, chains, n, d.download(ranks, split.size()));
    EXPECT_EQ(r.rhat, split_rhat(draws, chains, n)) << "n = " << n;
    EXPECT_EQ(r.ess, ess_bulk(draws, chains, n)) << "n = " << n;
    split.pop_back();
    EXPECT_THROW(detail::rhat_ess_from_split_ranks(draws, chains, n, split), InvalidArgument);
  }
}

// --- the MCMC device path ---

// mala_sample_cuda and hmc_sample_cuda fill R-hat and ESS from the device ranks (for odd and
// even n_steps; rejected proposals repeat an energy, so the trace has ties) and the mean
// acceptance from the device total.
TEST(DeviceReduce, McmcDeviceDiagnosticsEqualTheHostOnes) {
  CUEBM_REQUIRE_CUDA();
  const AnalyticEnergy dw = AnalyticEnergy::double_well(2);
  const int64_t n = 64;
  for (int steps : {9, 12}) {
    for (int hmc = 0; hmc < 2; ++hmc) {
      McmcResult res;
      res.n_chains = n;
      res.dim = 2;
      detail::start_trace(res, true, steps);
      const std::vector<float> step(steps, hmc ? 0.4f : 0.3f), x0(n * 2, 0.5f);
      if (hmc) {
        HmcOptions o;
        o.n_steps = steps;
        o.n_leapfrog = 3;
        o.seed = 5;
        detail::hmc_sample_cuda(dw, x0.data(), n, o, step, {1.0f, 1.0f}, 0, res);
      } else {
        MalaOptions o;
        o.n_steps = steps;
        o.seed = 5;
        const std::vector<float> coef(steps, std::sqrt(2.0f * 0.3f)), temp(steps, 1.0f);
        detail::mala_sample_cuda(dw, x0.data(), n, o, step, coef, temp, 0, res);
      }
      const std::string what =
          (hmc ? "HMC" : "MALA") + std::string(", steps ") + std::to_string(steps);
      std::vector<double> draws(res.energy_trace.size());
      for (int t = 0; t < steps; ++t)
        for (int64_t c = 0; c < n; ++c) draws[c * steps + t] = res.energy_trace[t * n + c];
      EXPECT_EQ(res.energy_rhat, split_rhat(draws, n, steps)) << what;
      EXPECT_EQ(res.energy_ess, ess_bulk(draws, n, steps)) << what;
      double mean = 0;
      for (float a : res.acceptance) mean += a;
      mean /= n;
      // The exact total over n * steps, against the mean of the float per-chain rates: 1e-6
      // covers the rates' float rounding (2^-24 relative each).
      EXPECT_NEAR(res.mean_acceptance, mean, 1e-6) << what;
      EXPECT_GT(res.mean_acceptance, 0.05) << what;
      EXPECT_LT(res.mean_acceptance, 1.0) << what;  // some proposals rejected: the trace ties
    }
  }
}
#else
TEST(DeviceReduce, NeedsTheCudaBackend) { GTEST_SKIP() << "this build has no CUDA backend"; }
#endif

}  // namespace
}  // namespace cuebm
