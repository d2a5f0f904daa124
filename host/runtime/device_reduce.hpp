// Device-wide statistics through Thrust (kernels/runtime/device_reduce.cu), for the work that is
// not inside a fused chain kernel: acceptance and swap counts, the log-mean-exp of AIS weights,
// the ranks that rank-normalised R-hat needs, and the replay buffer's gather of start rows. Every
// pointer is device memory; the work runs on the caller's stream, after what is already queued
// there. Only defined when the library is built with CUEBM_HAVE_CUDA (kernels/); plain C++
// declarations, no CUDA header needed; callers use them behind `#if CUEBM_HAVE_CUDA`.
//
// On a GPU, device_average_ranks and device_gather_rows return with the work queued on the
// stream (no wait); device_sum, device_log_weight_stats and device_column_sums return a value and
// wait for it, so they must not be called while the stream is being captured into a CUDA graph.
// In the emulated build (tests/cuda_emulation/) the functions that wait, and the ranks, first
// synchronise the stream, then run on the host through Thrust's CPP system; the gather runs as a
// host function in the stream's order (not capturable there). Errors inside Thrust arrive as
// CudaError naming the function.
#pragma once

#include <cmath>
#include <cstdint>
#include <vector>

#include "cuebm/runtime/cuda_stream.hpp"

namespace cuebm::detail {

// values[0 .. n) summed in 64 bits (exact). Waits for the stream.
int64_t device_sum(const int* values, int64_t n, cudaStream_t stream);

// What a log-mean-exp of log weights w needs, over the finite w only (NaN and +-inf are left
// out): log mean exp(w) over all n = max + log(sum / n).
struct LogWeightStats {
  double max = -INFINITY;  // the largest finite w; -inf when none is finite
  double sum = 0;          // sum of exp(w - max)
  double sum_sq = 0;       // sum of exp(w - max)^2
  int64_t finite = 0;      // how many w are finite
};
// Waits for the stream. The sums are added in Thrust's order, not left to right: they agree with
// a sequential double sum to rounding (about n * 1e-16 relative), not bit for bit.
LogWeightStats device_log_weight_stats(const double* log_weights, int64_t n, cudaStream_t stream);

// ranks[i] = the average rank (1-based) of values[i] among values[0 .. n): ties (==, so -0 and
// +0 tie) share the mean of the positions they occupy, as diagnostics.cpp's ranks. NaN ranks
// after +inf, all NaNs tied. Exact: ranks are sums of integers halved.
void device_average_ranks(const float* values, int64_t n, double* ranks, cudaStream_t stream);
void device_average_ranks(const double* values, int64_t n, double* ranks, cudaStream_t stream);

// The sums of the columns of a rows x cols row-major int matrix (per-chain acceptance and swap
// counts: one column per temperature or pair), each exact in 64 bits. Waits for the stream.
std::vector<int64_t> device_column_sums(const int* values, int64_t rows, int cols,
                                        cudaStream_t stream);

// out[r * dim + k] = src[row_index[r] * dim + k] for r < rows (the replay buffer's gather of
// start rows). Queued on the stream without waiting and without allocating, so it may run
// inside a training step (the emulated build queues it as a host function in stream order).
void device_gather_rows(const float* src, const int64_t* row_index, int64_t rows, int dim,
                        float* out, cudaStream_t stream);

}  // namespace cuebm::detail
