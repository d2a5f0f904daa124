// Device-wide statistics (host/runtime/device_reduce.hpp) through Thrust, on the caller's stream.
//
// Two builds of this one file:
// - nvcc: Thrust's CUDA system, thrust::cuda::par_nosync on the stream, temporary storage from
//   the stream's memory pool (cudaMallocAsync), so nothing waits for the device unless a value
//   comes back to the host.
// - the emulated backend (CUEBM_CUDA_EMULATION): cmake/CudaEmulation.cmake compiles this file
//   as plain C++ (not rewritten, no emulation header), with Thrust's CPP device system. Emulated
//   device memory is host memory, but the emulator runs a stream's queued kernels only at a
//   synchronisation point, so every call first synchronises the stream, then runs on the host:
//   the same Thrust calls, returning with the work done instead of queued.
#if CUEBM_CUDA_EMULATION
#if defined(__CUDACC__)
#error "device_reduce.cu must be compiled as plain C++ in the emulated build (CudaEmulation.cmake)"
#endif
#define THRUST_DEVICE_SYSTEM THRUST_DEVICE_SYSTEM_CPP
#endif

#include "host/runtime/device_reduce.hpp"

#include <cuda_runtime.h>
#include <thrust/binary_search.h>
#include <thrust/execution_policy.h>
#include <thrust/for_each.h>
#include <thrust/gather.h>
#include <thrust/iterator/counting_iterator.h>
#include <thrust/iterator/transform_iterator.h>
#include <thrust/reduce.h>
#include <thrust/sequence.h>
#include <thrust/sort.h>
#include <thrust/system_error.h>
#include <thrust/transform.h>
#include <thrust/transform_reduce.h>

#include <cmath>
#include <cstddef>
#include <cstring>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include "cuebm/runtime/error.hpp"
#include "kernels/runtime/cuda_check.cuh"
#include "kernels/runtime/hd.cuh"

namespace cuebm::detail {
namespace {

#if CUEBM_CUDA_EMULATION
// Scratch arrays are host memory, and the policy runs on the host once the stream's queued
// work is done.
template <class T>
class Scratch {
 public:
  Scratch(std::size_t n, cudaStream_t) : v_(n) {}
  T* data() { return v_.data(); }

 private:
  std::vector<T> v_;
};

class OnStream {
 public:
  explicit OnStream(cudaStream_t s) { CUEBM_CUDA_CHECK(cudaStreamSynchronize(s)); }
  auto policy() { return thrust::cpp::par; }
};
#else
// Scratch arrays and Thrust's temporary storage are ordered on the stream: allocated and freed
// in its order, without waiting for the device.
template <class T>
class Scratch {
 public:
  Scratch(std::size_t n, cudaStream_t s) : s_(s) {
    if (n > 0) CUEBM_CUDA_CHECK(cudaMallocAsync(reinterpret_cast<void**>(&p_), n * sizeof(T), s));
  }
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
  ~Scratch() {
    if (p_) cudaFreeAsync(p_, s_);  // errors at teardown cannot be reported from a destructor
  }
  T* data() { return p_; }

 private:
  T* p_ = nullptr;
  cudaStream_t s_;
};

class StreamAllocator {
 public:
  using value_type = char;
  explicit StreamAllocator(cudaStream_t s) : s_(s) {}
  char* allocate(std::ptrdiff_t bytes) {
    void* p = nullptr;
    CUEBM_CUDA_CHECK(cudaMallocAsync(&p, static_cast<std::size_t>(bytes), s_));
    return static_cast<char*>(p);
  }
  void deallocate(char* p, std::size_t) {
    cudaFreeAsync(p, s_);  // called from Thrust's destructors: nothing to throw to
  }

 private:
  cudaStream_t s_;
};

class OnStream {
 public:
  explicit OnStream(cudaStream_t s) : s_(s), alloc_(s) {}
  auto policy() { return thrust::cuda::par_nosync(alloc_).on(s_); }

 private:
  cudaStream_t s_;
  StreamAllocator alloc_;
};
#endif

void check_count(int64_t n, const char* who) {
  if (n < 0) throw InvalidArgument(std::string(who) + ": n must be >= 0, got " + std::to_string(n));
}

struct MaxCount {
  double max;
  int64_t count;
};
struct FiniteMaxCount {
  CUEBM_HD MaxCount operator()(double w) const {
    return std::isfinite(w) ? MaxCount{w, 1} : MaxCount{-INFINITY, 0};
  }
};
struct CombineMaxCount {
  CUEBM_HD MaxCount operator()(const MaxCount& a, const MaxCount& b) const {
    return {a.max > b.max ? a.max : b.max, a.count + b.count};
  }
};

struct SumPair {
  double sum, sum_sq;
};
struct ScaledWeight {
  double max;
  CUEBM_HD SumPair operator()(double w) const {
    const double u = std::isfinite(w) ? std::exp(w - max) : 0.0;
    return {u, u * u};
  }
};
struct AddPair {
  CUEBM_HD SumPair operator()(const SumPair& a, const SumPair& b) const {
    return {a.sum + b.sum, a.sum_sq + b.sum_sq};
  }
};

// An unsigned key in the values' order: radix-sortable, equal exactly when the values are ==
// (-0 is folded into +0), every NaN the largest key.
struct RankKey {
  template <class T>
  CUEBM_HD uint64_t operator()(T v) const {
    double d = static_cast<double>(v);
    if (d != d) return ~uint64_t{0};
    if (d == 0) d = 0.0;
    uint64_t bits;
    std::memcpy(&bits, &d, sizeof bits);
    return bits >> 63 ? ~bits : bits | (uint64_t{1} << 63);
  }
};

// Sorted position k's tie group is [lo, hi): its members' average rank is (lo + 1 + hi) / 2,
// written as diagnostics.cpp writes it.
struct AssignRank {
  const uint64_t* keys;
  const int64_t* order;
  int64_t n;
  double* ranks;
  CUEBM_HD void operator()(int64_t k) const {
    const uint64_t key = keys[k];
    const int64_t lo = thrust::lower_bound(thrust::seq, keys, keys + k, key) - keys;
    const int64_t hi = thrust::upper_bound(thrust::seq, keys + k, keys + n, key) - keys;
    ranks[order[k]] = 0.5 * static_cast<double>(lo + hi - 1) + 1.0;
  }
};

// Runs f, turning Thrust's errors (a failed launch or allocation inside a Thrust call) into
// cuEBM's CudaError naming the function.
template <class F>
auto thrust_call(const char* who, F&& f) {
  try {
    return f();
  } catch (const thrust::system_error& e) {
    throw CudaError(std::string(who) + ": " + e.what());
  } catch (const std::bad_alloc&) {
    throw CudaError(std::string(who) + ": out of memory");
  }
}

template <class T>
void average_ranks(const T* values, int64_t n, double* ranks, cudaStream_t stream) {
  check_count(n, "device_average_ranks");
  if (n == 0) return;
  const std::size_t size = static_cast<std::size_t>(n);
  Scratch<uint64_t> keys(size, stream);
  Scratch<int64_t> order(size, stream);
  OnStream on(stream);
  thrust_call("device_average_ranks", [&] {
    thrust::transform(on.policy(), values, values + n, keys.data(), RankKey{});
    thrust::sequence(on.policy(), order.data(), order.data() + n);
    thrust::sort_by_key(on.policy(), keys.data(), keys.data() + n, order.data());
    thrust::for_each_n(on.policy(), thrust::counting_iterator<int64_t>(0), n,
                       AssignRank{keys.data(), order.data(), n, ranks});
  });
}

// Element i of column `col` of a row-major matrix with `cols` columns, as int64.
struct ColumnEntry {
  const int* values;
  int cols, col;
  CUEBM_HD int64_t operator()(int64_t r) const { return values[r * cols + col]; }
};

// The source index of element i of the gathered rows.
struct GatherIndex {
  const int64_t* row_index;
  int dim;
  CUEBM_HD int64_t operator()(int64_t i) const { return row_index[i / dim] * dim + i % dim; }
};

}  // namespace

int64_t device_sum(const int* values, int64_t n, cudaStream_t stream) {
  check_count(n, "device_sum");
  if (n == 0) return 0;
  OnStream on(stream);
  return thrust_call("device_sum", [&] {
    return thrust::reduce(on.policy(), values, values + n, int64_t{0}, thrust::plus<int64_t>());
  });
}

LogWeightStats device_log_weight_stats(const double* w, int64_t n, cudaStream_t stream) {
  check_count(n, "device_log_weight_stats");
  LogWeightStats s;
  if (n == 0) return s;
  OnStream on(stream);
  return thrust_call("device_log_weight_stats", [&] {
    const MaxCount mc = thrust::transform_reduce(on.policy(), w, w + n, FiniteMaxCount{},
                                                 MaxCount{-INFINITY, 0}, CombineMaxCount{});
    s.max = mc.max;
    s.finite = mc.count;
    if (mc.count == 0) return s;
    const SumPair p = thrust::transform_reduce(on.policy(), w, w + n, ScaledWeight{mc.max},
                                               SumPair{0, 0}, AddPair{});
    s.sum = p.sum;
    s.sum_sq = p.sum_sq;
    return s;
  });
}

void device_average_ranks(const float* values, int64_t n, double* ranks, cudaStream_t stream) {
  average_ranks(values, n, ranks, stream);
}
void device_average_ranks(const double* values, int64_t n, double* ranks, cudaStream_t stream) {
  average_ranks(values, n, ranks, stream);
}

std::vector<int64_t> device_column_sums(const int* values, int64_t rows, int cols,
                                        cudaStream_t stream) {
  check_count(rows, "device_column_sums");
  if (cols < 0)
    throw InvalidArgument("device_column_sums: cols must be >= 0, got " + std::to_string(cols));
  std::vector<int64_t> sums(static_cast<std::size_t>(cols), 0);
  if (rows == 0 || cols == 0) return sums;
  OnStream on(stream);
  for (int c = 0; c < cols; ++c)
    sums[c] = thrust_call("device_column_sums", [&] {
      return thrust::transform_reduce(on.policy(), thrust::counting_iterator<int64_t>(0),
                                      thrust::counting_iterator<int64_t>(rows),
                                      ColumnEntry{values, cols, c}, int64_t{0},
                                      thrust::plus<int64_t>());
    });
  return sums;
}

#if CUEBM_CUDA_EMULATION
namespace {
// The emulated gather runs as a host function in the stream's order (cudaLaunchHostFunc), so
// that, as on a GPU, it neither waits for the stream nor adds a synchronisation to the step.
struct GatherJob {
  const float* src;
  const int64_t* row_index;
  int64_t rows;
  int dim;
  float* out;
};
void run_gather(void* p) {
  const std::unique_ptr<GatherJob> j(static_cast<GatherJob*>(p));
  const auto map = thrust::make_transform_iterator(thrust::counting_iterator<int64_t>(0),
                                                   GatherIndex{j->row_index, j->dim});
  thrust::gather(thrust::cpp::par, map, map + j->rows * j->dim, j->src, j->out);
}
}  // namespace
#endif

void device_gather_rows(const float* src, const int64_t* row_index, int64_t rows, int dim,
                        float* out, cudaStream_t stream) {
  check_count(rows, "device_gather_rows");
  if (dim < 1)
    throw InvalidArgument("device_gather_rows: dim must be >= 1, got " + std::to_string(dim));
  if (rows == 0) return;
#if CUEBM_CUDA_EMULATION
  // The job is freed when it runs: a captured graph could replay it. (On a GPU, Thrust's gather
  // is a plain kernel launch and may be captured.)
  cudaStreamCaptureStatus capture = cudaStreamCaptureStatusNone;
  CUEBM_CUDA_CHECK(cudaStreamIsCapturing(stream, &capture));
  if (capture != cudaStreamCaptureStatusNone)
    throw InvalidArgument(
        "device_gather_rows: the emulated backend cannot capture it into a graph");
  auto job = std::make_unique<GatherJob>(GatherJob{src, row_index, rows, dim, out});
  CUEBM_CUDA_CHECK(cudaLaunchHostFunc(stream, run_gather, job.get()));
  job.release();  // run_gather owns it now
#else
  OnStream on(stream);
  const auto map = thrust::make_transform_iterator(thrust::counting_iterator<int64_t>(0),
                                                   GatherIndex{row_index, dim});
  thrust_call("device_gather_rows",
              [&] { thrust::gather(on.policy(), map, map + rows * dim, src, out); });
#endif
}

}  // namespace cuebm::detail
