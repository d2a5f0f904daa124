// Helpers of the CPU backend: the parallel loop, per-thread scratch and feature-major block
// transposes.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <type_traits>
#include <vector>

#include "cuebm/models/energy.hpp"
#include "host/runtime/thread_pool.hpp"

namespace cuebm::detail {

// body(i) for every i in [0, n) on the CPU backend's threads (thread_pool.hpp): each index
// runs exactly once, on any thread, in any order, so a body that writes only its own outputs
// gives the same result for every thread count.
template <class Body>
void parallel_for(int64_t n, Body&& body) {
  using B = std::remove_reference_t<Body>;
  run_parallel(
      n, [](void* context, int64_t i) { (*static_cast<B*>(context))(i); },
      const_cast<void*>(static_cast<const void*>(std::addressof(body))));
}

// Scratch owned by the calling thread, grown on first use and then reused: loops that call
// it allocate only the first time a thread needs that much.
inline float* thread_workspace(std::size_t floats) {
  thread_local std::vector<float> buffer;
  if (buffer.size() < floats) buffer.resize(floats);
  return buffer.data();
}

inline int64_t num_blocks(int64_t n) { return (n + kRowBlock - 1) / kRowBlock; }

// Rows [row0, row0 + rows) of a row-major n x dim array into feature-major x_t; missing lanes
// repeat the last valid row so every lane holds finite, realistic values.
inline void load_block(const float* x, int64_t row0, int64_t rows, int dim, float* x_t) {
  for (int r = 0; r < kRowBlock; ++r) {
    const float* src = x + (row0 + (r < rows ? r : rows - 1)) * dim;
    for (int d = 0; d < dim; ++d) x_t[d * kRowBlock + r] = src[d];
  }
}

// The partial sums of a batch's parameter gradient: chunks of whole blocks fixed by the number
// of blocks alone (so the result does not depend on the thread count), at most 64 of them.
inline constexpr int64_t kMaxGradientChunks = 64;
inline int64_t gradient_chunks(int64_t blocks) { return std::min(blocks, kMaxGradientChunks); }

// out = partials[0] + partials[1] + ... + partials[chunks - 1] (each p floats), in that order.
inline void sum_partials(const float* partials, int64_t chunks, std::size_t p, float* out) {
  std::copy(partials, partials + p, out);
  for (int64_t c = 1; c < chunks; ++c)
    for (std::size_t i = 0; i < p; ++i) out[i] += partials[c * p + i];
}

inline void store_block(const float* x_t, int64_t row0, int64_t rows, int dim, float* x) {
  for (int64_t r = 0; r < rows; ++r)
    for (int d = 0; d < dim; ++d) x[(row0 + r) * dim + d] = x_t[d * kRowBlock + r];
}

}  // namespace cuebm::detail
