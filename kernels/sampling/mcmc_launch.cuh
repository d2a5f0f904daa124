// Host-side launch helpers shared by the MCMC kernels (mcmc_kernels.cu, tempering_kernels.cu,
// ais_kernels.cu): the chains' device storage (the model's per-row columns and the chain state,
// sized once), the launch over row chunks and the dispatch over the model's kind and activation,
// and the uploads and downloads of the host-array entry points.
#pragma once

#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "cuebm/runtime/error.hpp"
#include "kernels/models/device_model.cuh"
#include "kernels/sampling/mcmc_device.cuh"

namespace cuebm::detail {

// Where the chains of one run live on the device: the model's per-row storage (scratch) and the
// chain state (state_blocks blocks of D columns per row), both in column layout with stride ld,
// for launches of at most `chunk` units of unit_rows rows (a unit: a chain, or a tempering
// chain's replicas). Sized at construction for runs of up to max_units units; a run of fewer
// units reuses it (the results do not depend on the chunking: the draws are keyed by the rows).
class ChainStorage {
 public:
  ChainStorage(const DeviceModel& m, int64_t max_units, int unit_rows, int state_blocks)
      : unit_rows_(unit_rows),
        state_blocks_(state_blocks),
        dim_(m.dim),
        model_cols_(m.kind != DeviceModel::Kind::kAnalytic ? m.generic_cols : 2 * int64_t{m.dim}),
        chunk_(std::max<int64_t>(
            1, row_chunk(max_units * unit_rows, model_cols_ + state_blocks * int64_t{m.dim}) /
                   unit_rows)),
        ld_((chunk_ * unit_rows + 31) / 32 * 32),
        scratch_(ld_ * model_cols_),
        state_(ld_ * state_blocks * m.dim) {}

  // Throws InvalidArgument unless this storage was sized for m and this layout: a launch with
  // more rows per unit, another dimension or a larger model would write past it.
  void require_fits(const DeviceModel& m, int unit_rows, int state_blocks, const char* who) const {
    const int64_t cols =
        m.kind != DeviceModel::Kind::kAnalytic ? m.generic_cols : 2 * int64_t{m.dim};
    if (unit_rows != unit_rows_ || state_blocks != state_blocks_ || m.dim != dim_ ||
        cols != model_cols_)
      throw InvalidArgument(std::string(who) +
                            ": the chain storage was sized for another model or layout");
  }
  int64_t chunk() const { return chunk_; }  // units per launch
  int64_t ld() const { return ld_; }
  float* scratch() { return scratch_.data(); }
  float* state() { return state_.data(); }

 private:
  int unit_rows_, state_blocks_, dim_;
  int64_t model_cols_, chunk_, ld_;
  DeviceBuffer<float> scratch_, state_;
};

// Calls f(first, count) for the chunks [first, first + count) of n units, in order.
template <class F>
void for_each_chunk(int64_t n, int64_t chunk, F&& f) {
  for (int64_t first = 0; first < n; first += chunk) f(first, std::min(chunk, n - first));
}

// Calls f(rows) with the per-row model of m's launches: GenericRows<A> for every MLP (the general
// path), AnalyticRows for an analytic energy.
template <class F>
void with_row_models(const DeviceModel& m, F&& f) {
  if (m.kind != DeviceModel::Kind::kAnalytic) {
    const GenericNet net{m.flat.data(), m.meta.data(), m.n_lin};
    dispatch_activation(m.act, [&]<Activation A>() { f(GenericRows<A>{net}); });
  } else {
    f(AnalyticRows{m.ap});
  }
}

// What a host-array run holds for its lifetime, in this order: the device made current (the
// previous one restored at the end), a stream of its own and the energy uploaded to it (throws
// InvalidArgument for an energy the device has no model of).
class DeviceRun {
 public:
  DeviceRun(const Energy& energy, int device) : guard_(device) {
    make_device_model(energy, model_, stream_.get());
  }
  cudaStream_t stream() const { return stream_.get(); }
  const DeviceModel& model() const { return model_; }

 private:
  DeviceGuard guard_;
  Stream stream_;
  DeviceModel model_;
};

inline unsigned blocks_for(int64_t rows, int threads) {
  return static_cast<unsigned>((rows + threads - 1) / threads);
}

// A one-thread-per-row run of n rows on m over the storage's chunks: calls
// launch(model_rows, blocks, threads, row0, rows) for each chunk, which launches its kernel.
template <class Launch>
void launch_row_chunks(const DeviceModel& m, const ChainStorage& storage, int64_t n,
                       Launch&& launch) {
  const int threads = row_block_size();
  with_row_models(m, [&](auto model_rows) {
    for_each_chunk(n, storage.chunk(), [&](int64_t r0, int64_t rows) {
      launch(model_rows, blocks_for(rows, threads), threads, r0, rows);
    });
  });
}

// h onto the device (sized here, at least one element) on s.
template <class T>
T* upload(DeviceBuffer<T>& d, const std::vector<T>& h, cudaStream_t s) {
  d.resize(std::max<std::size_t>(h.size(), 1));
  if (!h.empty())
    CUEBM_CUDA_CHECK(
        cudaMemcpyAsync(d.data(), h.data(), h.size() * sizeof(T), cudaMemcpyHostToDevice, s));
  return d.data();
}

// Queues d's download into h (sized here) on s.
template <class T>
void download(std::vector<T>& h, const DeviceBuffer<T>& d, cudaStream_t s) {
  h.resize(d.size());
  CUEBM_CUDA_CHECK(cudaMemcpyAsync(h.data(), d.data(), d.bytes(), cudaMemcpyDeviceToHost, s));
}

}  // namespace cuebm::detail
