#include "cuebm/models/energy.hpp"

#include <algorithm>

#include "cuebm/runtime/error.hpp"
#include "host/models/parallel.hpp"

namespace cuebm {
namespace {

void check_batch(const Energy& energy, const float* x, int64_t n, const void* out,
                 const char* what) {
  if (n < 0)
    throw InvalidArgument(std::string(what) + ": negative batch size " + std::to_string(n));
  if (n > 0 && (x == nullptr || out == nullptr))
    throw InvalidArgument(std::string(what) + ": null pointer for a batch of " + std::to_string(n) +
                          " rows of " + energy.name());
}

}  // namespace

void Energy::energy(const float* x, int64_t n, float* e) const {
  check_batch(*this, x, n, e, "Energy::energy");
  const int d = dim();
  const std::size_t ws = block_workspace_floats();
  const int64_t blocks = detail::num_blocks(n);
  detail::parallel_for(blocks, [&](int64_t b) {
    float* scratch = detail::thread_workspace(ws + (d + 1) * kRowBlock);
    float* x_t = scratch + ws;
    float* e_t = x_t + d * kRowBlock;
    const int64_t row0 = b * kRowBlock, rows = std::min<int64_t>(kRowBlock, n - row0);
    detail::load_block(x, row0, rows, d, x_t);
    block_energy(x_t, e_t, scratch);
    std::copy(e_t, e_t + rows, e + row0);
  });
}

void Energy::gradient(const float* x, int64_t n, float* grad, float* e) const {
  check_batch(*this, x, n, grad, "Energy::gradient");
  const int d = dim();
  const std::size_t ws = block_workspace_floats();
  const int64_t blocks = detail::num_blocks(n);
  detail::parallel_for(blocks, [&](int64_t b) {
    float* scratch = detail::thread_workspace(ws + (2 * d + 1) * kRowBlock);
    float* x_t = scratch + ws;
    float* g_t = x_t + d * kRowBlock;
    float* e_t = g_t + d * kRowBlock;
    const int64_t row0 = b * kRowBlock, rows = std::min<int64_t>(kRowBlock, n - row0);
    detail::load_block(x, row0, rows, d, x_t);
    block_gradient(x_t, g_t, e_t, scratch);
    detail::store_block(g_t, row0, rows, d, grad);
    if (e) std::copy(e_t, e_t + rows, e + row0);
  });
}

}  // namespace cuebm
