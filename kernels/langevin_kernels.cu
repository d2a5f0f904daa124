// Langevin chains on the device: a whole chain of n steps in one launch (fused MLP, general
// MLP, analytic energies), noise from the shared Philox keyed exactly as the CPU backend
// (seed, chain id = first_chain + row, step = step_offset + t), or from a device buffer.
// Diagnostics: each warp (a fixed group of 32 rows, as the CPU's row blocks) reduces its rows
// with a fixed butterfly and writes one partial per step; a second kernel sums the groups in
// index order. No float atomics: results do not depend on the launch configuration.
#include <curand_kernel.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "../host/cuda_backend.hpp"
#include "../host/langevin_options.hpp"
#include "cuebm/error.hpp"
#include "mlp_kernels.cuh"

namespace cuebm::detail {
namespace {

// General and analytic models keep their per-row storage in `scratch` (column layout, stride
// ld); a launch covers rows [row0, row0 + rows) with row0 a multiple of 32.
template <Activation A>
__global__ void __launch_bounds__(kMaxRowBlock)
    generic_chain_kernel(ChainArgs a, int64_t row0, int64_t rows, GenericNet net, float* scratch,
                         int64_t ld) {
  const int64_t local = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if ((local & ~int64_t{31}) >= rows) return;
  const int64_t row = row0 + local;
  const bool valid = local < rows;
  GenericModel<A> m{net, scratch + local, ld, a.dim};
  for (int i = 0; i < a.dim; ++i) m.x(i) = valid ? a.x[row * a.dim + i] : 0.0f;
  run_chain(m, a, row, valid);
}

__global__ void __launch_bounds__(kMaxRowBlock)
    analytic_chain_kernel(ChainArgs a, int64_t row0, int64_t rows, AnalyticParams p, float* scratch,
                          int ld) {
  const int64_t local = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if ((local & ~int64_t{31}) >= rows) return;
  const int64_t row = row0 + local;
  const bool valid = local < rows;
  AnalyticModel m{p, scratch + local, scratch + static_cast<int64_t>(a.dim) * ld + local, ld};
  for (int i = 0; i < a.dim; ++i) m.x(i) = valid ? a.x[row * a.dim + i] : 0.0f;
  run_chain(m, a, row, valid);
}

// totals[t * stride + k] = sum over groups g (in order) of diag[(g * n_steps + t) * stride + k].
__global__ void reduce_diag_kernel(const double* __restrict__ diag, int64_t groups, int n_steps,
                                   int stride, double* __restrict__ totals) {
  const int64_t idx = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (idx >= static_cast<int64_t>(n_steps) * stride) return;
  const int64_t t = idx / stride, k = idx % stride;
  double s = 0.0;
  for (int64_t g = 0; g < groups; ++g) s += diag[(g * n_steps + t) * stride + k];
  totals[idx] = s;
}

__global__ void philox_test_kernel(uint64_t seed, const uint64_t* sub, const uint64_t* block,
                                   int64_t n, uint32_t* bits, float* normals) {
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i >= n) return;
  const U32x4 b = philox_block(seed, sub[i], block[i]);
  bits[4 * i] = b.x;
  bits[4 * i + 1] = b.y;
  bits[4 * i + 2] = b.z;
  bits[4 * i + 3] = b.w;
  const Normal4 nr = normal4_from_block(b);
  for (int c = 0; c < 4; ++c) normals[4 * i + c] = nr.v[c];
}

__global__ void curand_test_kernel(uint64_t seed, const uint64_t* sub, const uint64_t* block,
                                   int64_t n, uint32_t* bits, float* normals) {
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i >= n) return;
  curandStatePhilox4_32_10_t st;
  curand_init(seed, sub[i], 4 * block[i], &st);
  const uint4 b = curand4(&st);
  bits[4 * i] = b.x;
  bits[4 * i + 1] = b.y;
  bits[4 * i + 2] = b.z;
  bits[4 * i + 3] = b.w;
  curand_init(seed, sub[i], 4 * block[i], &st);
  const float4 nr = curand_normal4(&st);
  normals[4 * i] = nr.x;
  normals[4 * i + 1] = nr.y;
  normals[4 * i + 2] = nr.z;
  normals[4 * i + 3] = nr.w;
}

unsigned blocks_for(int64_t rows, int threads) {
  return static_cast<unsigned>((rows + threads - 1) / threads);
}

template <class Kernel>
void run_test_kernel(Kernel kernel, uint64_t seed, const uint64_t* sub, const uint64_t* block,
                     int64_t n, uint32_t* out_bits, float* out_normals, int device) {
  if (n <= 0) return;
  DeviceGuard guard(device);
  Stream s;
  DeviceBuffer<uint64_t> dsub(n), dblock(n);
  DeviceBuffer<uint32_t> dbits(4 * n);
  DeviceBuffer<float> dnorm(4 * n);
  CUEBM_CUDA_CHECK(
      cudaMemcpyAsync(dsub.data(), sub, dsub.bytes(), cudaMemcpyHostToDevice, s.get()));
  CUEBM_CUDA_CHECK(
      cudaMemcpyAsync(dblock.data(), block, dblock.bytes(), cudaMemcpyHostToDevice, s.get()));
  kernel<<<blocks_for(n, 128), 128, 0, s.get()>>>(seed, dsub.data(), dblock.data(), n, dbits.data(),
                                                  dnorm.data());
  CUEBM_CUDA_CHECK_LAUNCH();
  CUEBM_CUDA_CHECK(
      cudaMemcpyAsync(out_bits, dbits.data(), dbits.bytes(), cudaMemcpyDeviceToHost, s.get()));
  CUEBM_CUDA_CHECK(
      cudaMemcpyAsync(out_normals, dnorm.data(), dnorm.bytes(), cudaMemcpyDeviceToHost, s.get()));
  CUEBM_CUDA_CHECK(cudaStreamSynchronize(s.get()));
}

}  // namespace

void launch_chains(const DeviceModel& m, const ChainArgs& a, float* scratch, int64_t scratch_floats,
                   cudaStream_t stream) {
  if (a.n_total <= 0) return;
  if (m.kind == DeviceModel::Kind::kFused) {
    const FusedLaunch fl = plan_fused_launch(m.lay, a.n_total);
    if (fl.threads == 0) throw CudaError("fused MLP chain kernel does not fit in shared memory");
    dispatch_width(m.lay.width, [&]<int W>() {
      launch_fused_chain<W>(m.act, fl, blocks_for(a.n_total, fl.threads), a, m.lay, m.packed.data(),
                            stream);
    });
    return;
  }
  const int threads = row_block_size();
  const int64_t per_row =
      m.kind == DeviceModel::Kind::kGeneric ? m.generic_cols : 2 * int64_t{m.dim};
  // Chunks of a multiple of 32 rows so that diagnostics groups never straddle launches.
  int64_t chunk = row_chunk(a.n_total, per_row);
  if (chunk < a.n_total) chunk = std::max<int64_t>(32, chunk / 32 * 32);
  const int64_t ld = (chunk + 31) / 32 * 32;
  if (ld * per_row > scratch_floats) throw CudaError("launch_chains: scratch too small");
  for (int64_t r0 = 0; r0 < a.n_total; r0 += chunk) {
    const int64_t rows = std::min(chunk, a.n_total - r0);
    if (m.kind == DeviceModel::Kind::kGeneric) {
      const GenericNet net{m.flat.data(), m.meta.data(), m.n_lin};
      dispatch_activation(m.act, [&]<Activation A>() {
        generic_chain_kernel<A>
            <<<blocks_for(rows, threads), threads, 0, stream>>>(a, r0, rows, net, scratch, ld);
        CUEBM_CUDA_CHECK_LAUNCH();
      });
    } else {
      analytic_chain_kernel<<<blocks_for(rows, threads), threads, 0, stream>>>(
          a, r0, rows, m.ap, scratch, static_cast<int>(ld));
      CUEBM_CUDA_CHECK_LAUNCH();
    }
  }
}

LangevinResult langevin_sample_cuda(const Energy& energy, const float* x0, int64_t n,
                                    const LangevinOptions& o, int device,
                                    const float* noise_or_null) {
  DeviceGuard guard(device);
  Stream stream;
  cudaStream_t s = stream.get();
  DeviceModel m;
  make_device_model(energy, m, s);
  const int D = m.dim;
  const int n_steps = o.n_steps;
  const StepArrays steps = make_step_arrays(o, n_steps);

  LangevinResult res;
  res.n_chains = n;
  res.dim = D;
  res.temperature = steps.last_sigma * steps.last_sigma;
  res.samples.assign(x0, x0 + n * D);

  DeviceBuffer<float> dx(n * D), deta(std::max(n_steps, 1)), dcoef(std::max(n_steps, 1));
  CUEBM_CUDA_CHECK(cudaMemcpyAsync(dx.data(), x0, dx.bytes(), cudaMemcpyHostToDevice, s));
  if (n_steps > 0) {
    CUEBM_CUDA_CHECK(cudaMemcpyAsync(deta.data(), steps.eta.data(), n_steps * sizeof(float),
                                     cudaMemcpyHostToDevice, s));
    CUEBM_CUDA_CHECK(cudaMemcpyAsync(dcoef.data(), steps.noise_coef.data(), n_steps * sizeof(float),
                                     cudaMemcpyHostToDevice, s));
  }
  ChainArgs a;
  a.x = dx.data();
  a.n_total = n;
  a.dim = D;
  a.n_steps = n_steps;
  a.eta = deta.data();
  a.noise_coef = dcoef.data();
  a.seed = o.seed;
  a.step_offset = o.step_offset;
  a.first_chain = o.first_chain;
  a.clamp = o.clamp_min || o.clamp_max;
  a.clamp_min = o.clamp_min.value_or(-INFINITY);
  a.clamp_max = o.clamp_max.value_or(INFINITY);

  DeviceBuffer<float> dtraj, dnoise;
  if (o.thin > 0) {
    res.n_kept = n_steps / o.thin;
    res.trajectory.resize(static_cast<std::size_t>(res.n_kept) * n * D);
    dtraj.resize(res.trajectory.size());
    a.thin = o.thin;
    a.trajectory = res.n_kept > 0 ? dtraj.data() : nullptr;
  }
  if (noise_or_null && n_steps > 0) {
    dnoise.resize(static_cast<std::size_t>(n_steps) * n * D);
    CUEBM_CUDA_CHECK(
        cudaMemcpyAsync(dnoise.data(), noise_or_null, dnoise.bytes(), cudaMemcpyHostToDevice, s));
    a.noise = dnoise.data();
  }
  const int stride = 2 * D + 1;
  const int64_t groups = (n + 31) / 32;
  DeviceBuffer<double> ddiag, dtot;
  if (o.diagnostics && n_steps > 0) {
    ddiag.resize(static_cast<std::size_t>(groups) * n_steps * stride);
    dtot.resize(static_cast<std::size_t>(n_steps) * stride);
    a.diag = ddiag.data();
  }
  const int64_t sf = eval_scratch_floats(m, n);
  DeviceBuffer<float> scratch(sf);
  launch_chains(m, a, scratch.data(), sf, s);

  std::vector<double> totals;
  if (a.diag) {
    const int64_t count = static_cast<int64_t>(n_steps) * stride;
    reduce_diag_kernel<<<blocks_for(count, 128), 128, 0, s>>>(ddiag.data(), groups, n_steps, stride,
                                                              dtot.data());
    CUEBM_CUDA_CHECK_LAUNCH();
    totals.resize(count);
    CUEBM_CUDA_CHECK(
        cudaMemcpyAsync(totals.data(), dtot.data(), dtot.bytes(), cudaMemcpyDeviceToHost, s));
  }
  CUEBM_CUDA_CHECK(
      cudaMemcpyAsync(res.samples.data(), dx.data(), dx.bytes(), cudaMemcpyDeviceToHost, s));
  if (a.trajectory)
    CUEBM_CUDA_CHECK(cudaMemcpyAsync(res.trajectory.data(), dtraj.data(), dtraj.bytes(),
                                     cudaMemcpyDeviceToHost, s));
  CUEBM_CUDA_CHECK(cudaStreamSynchronize(s));

  for (int64_t r = 0; r < n; ++r)
    for (int d = 0; d < D; ++d)
      if (!std::isfinite(res.samples[r * D + d]))
        throw NumericalError("langevin_sample: chain " + std::to_string(r) +
                             " diverged (not finite after " + std::to_string(n_steps) +
                             " steps of " + energy.name() + "); reduce step_size");

  if (o.diagnostics) {  // as the CPU backend finishes its per-block sums
    res.diag_mean.assign(static_cast<std::size_t>(n_steps) * D, 0.0f);
    res.diag_variance.assign(res.diag_mean.size(), 0.0f);
    res.diag_mean_energy.assign(n_steps, 0.0);
    const double nd = static_cast<double>(n);
    for (int t = 0; t < n_steps; ++t) {
      const double* tot = totals.data() + static_cast<std::size_t>(t) * stride;
      for (int d = 0; d < D; ++d) {
        const double mean = tot[d] / nd;
        res.diag_mean[t * D + d] = static_cast<float>(mean);
        res.diag_variance[t * D + d] =
            n > 1 ? static_cast<float>((tot[D + d] - nd * mean * mean) / (nd - 1)) : 0.0f;
      }
      res.diag_mean_energy[t] = tot[2 * D] / nd;
    }
  }
  return res;
}

void philox_blocks_cuda(uint64_t seed, const uint64_t* subsequence, const uint64_t* block,
                        int64_t n, uint32_t* out_bits, float* out_normals, int device) {
  run_test_kernel(philox_test_kernel, seed, subsequence, block, n, out_bits, out_normals, device);
}

void curand_blocks_cuda(uint64_t seed, const uint64_t* subsequence, const uint64_t* block,
                        int64_t n, uint32_t* out_bits, float* out_normals, int device) {
  run_test_kernel(curand_test_kernel, seed, subsequence, block, n, out_bits, out_normals, device);
}

}  // namespace cuebm::detail
