// Langevin chains on the device: a whole chain of n steps in one launch (fused MLP, general
// MLP, analytic energies), noise from the shared Philox keyed exactly as the CPU backend
// (seed, chain id = first_chain + row, step = step_offset + t), or from a device buffer.
// Diagnostics: each warp (a fixed group of 32 rows, as the CPU's row blocks) reduces its rows
// with a fixed butterfly and writes one partial per step; a second kernel sums the groups in
// index order. No float atomics: results do not depend on the launch configuration.
#include <curand_kernel.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <memory>
#include <mutex>
#include <vector>

#include "cuebm/models/analytic.hpp"
#include "cuebm/models/mlp.hpp"
#include "cuebm/runtime/error.hpp"
#include "host/models/cuda_models.hpp"
#include "host/runtime/cuda_device.hpp"
#include "host/sampling/cuda_langevin.hpp"
#include "host/sampling/langevin_options.hpp"
#include "kernels/models/device_model.cuh"
#include "kernels/sampling/chains.cuh"
#include "kernels/sampling/fused_chain.cuh"

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

namespace {
std::atomic<int> g_team_knob{0};
}  // namespace

void set_cuda_chain_team_for_testing(int lanes) { g_team_knob.store(lanes); }

TeamLaunch plan_team_launch(const FusedLayout& lay, int64_t n) {
  return plan_team_launch(lay, n, device_launch_limits(current_device()), g_team_knob.load());
}

int cuda_chain_lanes(const Mlp& mlp, int64_t n, int device) {
  if (cuda_mlp_path(mlp, device) == "general") return 1;
  DeviceGuard guard(device);
  const FusedLayout lay =
      fused_layout_for(mlp.layer_widths()[1], mlp.dim(), mlp.num_linear_layers() - 1);
  return std::max(plan_team_launch(lay, n).lanes, 1);
}

void launch_chains(const DeviceModel& m, const ChainArgs& a, float* scratch, int64_t scratch_floats,
                   cudaStream_t stream) {
  if (a.n_total <= 0) return;
  if (m.kind == DeviceModel::Kind::kFused) {
    if (!a.diag && !a.trajectory) {
      const TeamLaunch tl = plan_team_launch(m.lay, a.n_total);
      if (tl.lanes > 0) {
        dispatch_width(m.lay.width, [&]<int W>() {
          launch_fused_team_chain<W>(m.act, tl, a, m.lay, m.packed.data(), stream);
        });
        return;
      }
    }
    const FusedLaunch fl = plan_fused_launch(m.lay, a.n_total, FusedKernel::kChain);
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

namespace {

// ---- langevin_sample_cuda's device state, kept across calls ----
// Device models: one per (energy object, device), reused while the energy is unchanged. The
// key is the energy's address and the device; the entry is valid while the energy's content
// (type, widths, activation and every parameter of an Mlp; kind, scalars, mean and precision of
// an AnalyticEnergy) and the knobs make_device_model reads are byte for byte those of the
// upload. The content is compared in full (a memcmp of P floats, as cheap as hashing them and
// without collisions), so an energy changed in place, or a new one at a freed one's address,
// is uploaded again. Workspaces: a stream and grow-only device buffers, one per call in flight,
// returned to a small pool afterwards; buffers over kRetainBytes are freed after the call.
constexpr std::size_t kCachedModels = 8;
constexpr std::size_t kIdleWorkspaces = 4;
constexpr std::size_t kRetainBytes = std::size_t{64} << 20;

std::atomic<int64_t> g_model_uploads{0};

template <class T>
void append_bytes(std::vector<unsigned char>& out, const T* p, std::size_t count) {
  const auto* b = reinterpret_cast<const unsigned char*>(p);
  out.insert(out.end(), b, b + count * sizeof(T));
}

// The bytes the device model is built from; false for energies the device does not support
// (make_device_model throws for them).
bool energy_content(const Energy& energy, std::vector<unsigned char>& out) {
  const int knobs[2] = {general_path_forced() ? 1 : 0, block_size_knob()};
  if (const auto* mlp = dynamic_cast<const Mlp*>(&energy)) {
    const int head[3] = {1, static_cast<int>(mlp->spec().activation),
                         static_cast<int>(mlp->layer_widths().size())};
    append_bytes(out, head, 3);
    append_bytes(out, knobs, 2);
    append_bytes(out, mlp->layer_widths().data(), mlp->layer_widths().size());
    append_bytes(out, mlp->parameters().data(), mlp->parameters().size());
    return true;
  }
  if (const auto* an = dynamic_cast<const AnalyticEnergy*>(&energy)) {
    const int head[5] = {2, static_cast<int>(an->kind()), an->dim(),
                         static_cast<int>(an->mean().size()),
                         static_cast<int>(an->precision().size())};
    append_bytes(out, head, 5);
    append_bytes(out, knobs, 2);
    append_bytes(out, an->scalars(), 3);
    append_bytes(out, an->mean().data(), an->mean().size());
    append_bytes(out, an->precision().data(), an->precision().size());
    return true;
  }
  return false;
}

struct SamplerWorkspace {
  int device = 0;
  Stream stream;  // created on `device`
  DeviceBuffer<float> x, eta, coef, scratch, trajectory, noise;
  DeviceBuffer<double> diag, totals;
};

struct CachedModel {
  const Energy* identity = nullptr;
  int device = 0;
  std::vector<unsigned char> content;
  std::shared_ptr<const DeviceModel> model;
};

struct SamplerCache {
  std::mutex mu;
  std::vector<CachedModel> models;                      // most recently used first
  std::vector<std::unique_ptr<SamplerWorkspace>> idle;  // streams synchronised
};

SamplerCache& sampler_cache() {
  // Never destroyed: static destructors run in no fixed order, and freeing device memory after
  // the CUDA runtime has shut down is an error; the driver releases it at exit.
  static SamplerCache* cache = new SamplerCache;
  return *cache;
}

// The device model of `energy` on the current device (`device`), uploaded on `s` when the cache
// has no current one.
std::shared_ptr<const DeviceModel> cached_device_model(const Energy& energy, int device,
                                                       cudaStream_t s) {
  std::vector<unsigned char> content;
  if (!energy_content(energy, content)) {
    auto m = std::make_shared<DeviceModel>();
    make_device_model(energy, *m, s);  // throws InvalidArgument naming the energy
    return m;
  }
  SamplerCache& c = sampler_cache();
  const std::lock_guard<std::mutex> lock(c.mu);
  for (auto it = c.models.begin(); it != c.models.end(); ++it) {
    if (it->identity != &energy || it->device != device) continue;
    if (it->content == content) {
      std::rotate(c.models.begin(), it, it + 1);
      return c.models.front().model;
    }
    c.models.erase(it);  // changed since its upload
    break;
  }
  auto m = std::make_shared<DeviceModel>();
  make_device_model(energy, *m, s);  // synchronous: ready for any stream
  ++g_model_uploads;
  c.models.insert(c.models.begin(), CachedModel{&energy, device, std::move(content), m});
  if (c.models.size() > kCachedModels) c.models.pop_back();
  return m;
}

// A workspace for one call on `device`, given back to the pool by the destructor.
class WorkspaceLease {
 public:
  explicit WorkspaceLease(int device) {
    SamplerCache& c = sampler_cache();
    {
      const std::lock_guard<std::mutex> lock(c.mu);
      for (auto it = c.idle.begin(); it != c.idle.end(); ++it)
        if ((*it)->device == device) {
          ws_ = std::move(*it);
          c.idle.erase(it);
          break;
        }
    }
    if (!ws_) {
      ws_ = std::make_unique<SamplerWorkspace>();
      ws_->device = device;
    }
  }
  WorkspaceLease(const WorkspaceLease&) = delete;
  WorkspaceLease& operator=(const WorkspaceLease&) = delete;
  ~WorkspaceLease() {
    // Only a synchronised workspace goes back (an exception may have left work in flight).
    if (cudaStreamQuery(ws_->stream.get()) != cudaSuccess) {
      (void)cudaGetLastError();  // nothing to report from a destructor
      return;
    }
    for (DeviceBuffer<float>* b :
         {&ws_->x, &ws_->eta, &ws_->coef, &ws_->scratch, &ws_->trajectory, &ws_->noise})
      if (b->bytes() > kRetainBytes) b->resize(0);
    for (DeviceBuffer<double>* b : {&ws_->diag, &ws_->totals})
      if (b->bytes() > kRetainBytes) b->resize(0);
    SamplerCache& c = sampler_cache();
    const std::lock_guard<std::mutex> lock(c.mu);
    if (c.idle.size() < kIdleWorkspaces) c.idle.push_back(std::move(ws_));
  }
  SamplerWorkspace& operator*() const { return *ws_; }

 private:
  std::unique_ptr<SamplerWorkspace> ws_;
};

// At least n elements (contents undefined); grows, never shrinks.
template <class T>
T* at_least(DeviceBuffer<T>& b, std::size_t n) {
  if (b.size() < n) b.resize(n);
  return b.data();
}

}  // namespace

LangevinResult langevin_sample_cuda(const Energy& energy, const float* x0, int64_t n,
                                    const LangevinOptions& o, int device,
                                    const float* noise_or_null) {
  DeviceGuard guard(device);
  const WorkspaceLease lease(device);
  SamplerWorkspace& ws = *lease;
  cudaStream_t s = ws.stream.get();
  const std::shared_ptr<const DeviceModel> model = cached_device_model(energy, device, s);
  const DeviceModel& m = *model;
  const int D = m.dim;
  const int n_steps = o.n_steps;
  const StepArrays steps = make_step_arrays(o, n_steps);

  LangevinResult res;
  res.n_chains = n;
  res.dim = D;
  res.temperature = steps.last_sigma * steps.last_sigma;
  res.samples.assign(x0, x0 + n * D);

  const std::size_t x_bytes = static_cast<std::size_t>(n) * D * sizeof(float);
  float* dx = at_least(ws.x, static_cast<std::size_t>(n) * D);
  float* deta = at_least(ws.eta, std::max(n_steps, 1));
  float* dcoef = at_least(ws.coef, std::max(n_steps, 1));
  CUEBM_CUDA_CHECK(cudaMemcpyAsync(dx, x0, x_bytes, cudaMemcpyHostToDevice, s));
  if (n_steps > 0) {
    CUEBM_CUDA_CHECK(cudaMemcpyAsync(deta, steps.eta.data(), n_steps * sizeof(float),
                                     cudaMemcpyHostToDevice, s));
    CUEBM_CUDA_CHECK(cudaMemcpyAsync(dcoef, steps.noise_coef.data(), n_steps * sizeof(float),
                                     cudaMemcpyHostToDevice, s));
  }
  ChainArgs a = make_chain_args(o, dx, n, D, n_steps, deta, dcoef);

  if (o.thin > 0) {
    res.n_kept = n_steps / o.thin;
    res.trajectory.resize(static_cast<std::size_t>(res.n_kept) * n * D);
    a.thin = o.thin;
    a.trajectory = res.n_kept > 0 ? at_least(ws.trajectory, res.trajectory.size()) : nullptr;
  }
  if (noise_or_null && n_steps > 0) {
    const std::size_t count = static_cast<std::size_t>(n_steps) * n * D;
    a.noise = at_least(ws.noise, count);
    CUEBM_CUDA_CHECK(cudaMemcpyAsync(ws.noise.data(), noise_or_null, count * sizeof(float),
                                     cudaMemcpyHostToDevice, s));
  }
  const int stride = 2 * D + 1;
  const int64_t groups = (n + 31) / 32;
  const int64_t count = static_cast<int64_t>(n_steps) * stride;
  double* dtot = nullptr;
  if (o.diagnostics && n_steps > 0) {
    a.diag = at_least(ws.diag, static_cast<std::size_t>(groups) * count);
    dtot = at_least(ws.totals, static_cast<std::size_t>(count));
  }
  const int64_t sf = eval_scratch_floats(m, n);
  launch_chains(m, a, at_least(ws.scratch, std::max<int64_t>(sf, 1)), sf, s);

  std::vector<double> totals;
  if (a.diag) {
    reduce_diag_kernel<<<blocks_for(count, 128), 128, 0, s>>>(a.diag, groups, n_steps, stride,
                                                              dtot);
    CUEBM_CUDA_CHECK_LAUNCH();
    totals.resize(count);
    CUEBM_CUDA_CHECK(
        cudaMemcpyAsync(totals.data(), dtot, count * sizeof(double), cudaMemcpyDeviceToHost, s));
  }
  CUEBM_CUDA_CHECK(cudaMemcpyAsync(res.samples.data(), dx, x_bytes, cudaMemcpyDeviceToHost, s));
  if (a.trajectory)
    CUEBM_CUDA_CHECK(cudaMemcpyAsync(res.trajectory.data(), a.trajectory,
                                     res.trajectory.size() * sizeof(float), cudaMemcpyDeviceToHost,
                                     s));
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

int64_t langevin_model_uploads_for_testing() { return g_model_uploads.load(); }

void philox_blocks_cuda(uint64_t seed, const uint64_t* subsequence, const uint64_t* block,
                        int64_t n, uint32_t* out_bits, float* out_normals, int device) {
  run_test_kernel(philox_test_kernel, seed, subsequence, block, n, out_bits, out_normals, device);
}

void curand_blocks_cuda(uint64_t seed, const uint64_t* subsequence, const uint64_t* block,
                        int64_t n, uint32_t* out_bits, float* out_normals, int device) {
  run_test_kernel(curand_test_kernel, seed, subsequence, block, n, out_bits, out_normals, device);
}

}  // namespace cuebm::detail
