// MLP and analytic energy kernels: weight packing, device model construction, launch planning,
// and E(x) / dE/dx for batches (energy_cuda, gradient_cuda).
#include <algorithm>
#include <atomic>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "cuebm/models/analytic.hpp"
#include "cuebm/models/mlp.hpp"
#include "cuebm/runtime/error.hpp"
#include "host/models/cuda_models.hpp"
#include "host/runtime/cuda_device.hpp"
#include "kernels/models/device_model.cuh"

namespace cuebm::detail {
namespace {

std::atomic<int> g_block_knob{0};
std::atomic<bool> g_force_general{false};

__global__ void pack_fused_kernel(FusedLayout lay, const float* __restrict__ flat,
                                  float* __restrict__ packed) {
  const int W = lay.width, D = lay.dim, L = lay.hidden_layers;
  const int64_t out_off =
      static_cast<int64_t>(W) * D + W + static_cast<int64_t>(L - 1) * (W * W + W);
  for (int p = blockIdx.x * blockDim.x + threadIdx.x; p < lay.total; p += gridDim.x * blockDim.x) {
    float v = 0.0f;
    if (p < lay.w0t + D * W && p >= lay.w0t) {
      const int q = p - lay.w0t, k = q / W, j = q % W;
      v = flat[j * D + k];
    } else if (p >= lay.w0 && p < lay.w0 + W * lay.dim_pad) {
      const int q = p - lay.w0, j = q / lay.dim_pad, i = q % lay.dim_pad;
      v = i < D ? flat[j * D + i] : 0.0f;
    } else if (p >= lay.b0 && p < lay.b0 + W) {
      v = flat[W * D + (p - lay.b0)];
    } else if (p >= lay.hid && p < lay.hid + (L - 1) * lay.hid_stride) {
      const int l = 1 + (p - lay.hid) / lay.hid_stride;
      const int q = (p - lay.hid) % lay.hid_stride;
      const int64_t off =
          static_cast<int64_t>(W) * D + W + static_cast<int64_t>(l - 1) * (W * W + W);
      if (q < W * W) {
        const int k = q / W, j = q % W;
        v = flat[off + j * W + k];
      } else {
        v = flat[off + (q - W * W)];  // as stored, then the bias right after it
      }
    } else if (p >= lay.wout && p < lay.wout + W) {
      v = flat[out_off + (p - lay.wout)];
    } else if (p == lay.bout) {
      v = flat[out_off + W];
    }
    packed[p] = v;
  }
}

template <Activation A>
__global__ void __launch_bounds__(kMaxRowBlock)
    generic_eval_kernel(const float* __restrict__ x, int64_t rows, float* __restrict__ e,
                        float* __restrict__ grad, GenericNet net, int dim, float* scratch,
                        int64_t ld) {
  const int64_t r = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (r >= rows) return;
  GenericModel<A> m{net, scratch + r, ld, dim};
  for (int i = 0; i < dim; ++i) m.x(i) = x[r * dim + i];
  const float ev = m.forward();
  if (e) e[r] = ev;
  if (grad)
    m.backward([&](int q, float4 g) {
      const float gv[4] = {g.x, g.y, g.z, g.w};
#pragma unroll
      for (int c = 0; c < 4; ++c)
        if (4 * q + c < dim) grad[r * dim + 4 * q + c] = gv[c];
    });
}

__global__ void __launch_bounds__(kMaxRowBlock)
    analytic_eval_kernel(const float* __restrict__ x, int64_t rows, float* __restrict__ e,
                         float* __restrict__ grad, AnalyticParams p, float* scratch, int ld) {
  const int64_t r = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (r >= rows) return;
  const int dim = p.dim;
  AnalyticModel m{p, scratch + r, scratch + static_cast<int64_t>(dim) * ld + r, ld};
  for (int i = 0; i < dim; ++i) m.x(i) = x[r * dim + i];
  if (!grad) {
    e[r] = m.energy_only();
    return;
  }
  const float ev = m.forward();
  if (e) e[r] = ev;
  m.backward([&](int q, float4 g) {
    const float gv[4] = {g.x, g.y, g.z, g.w};
#pragma unroll
    for (int c = 0; c < 4; ++c)
      if (4 * q + c < dim) grad[r * dim + 4 * q + c] = gv[c];
  });
}

// Whether both fused kernels have a launch plan on the current device (a plan exists for every
// n when it exists for one: the candidates do not depend on n).
bool fused_plan_exists(const FusedLayout& lay) {
  return plan_fused_launch(lay, 1, FusedKernel::kEval).threads > 0 &&
         plan_fused_launch(lay, 1, FusedKernel::kChain).threads > 0;
}

unsigned grid_for(int64_t rows, int threads) {
  return static_cast<unsigned>((rows + threads - 1) / threads);
}

}  // namespace

int current_device() {
  int dev = 0;
  CUEBM_CUDA_CHECK(cudaGetDevice(&dev));
  return dev;
}

void launch_pack_fused(const FusedLayout& lay, const float* flat, float* packed,
                       cudaStream_t stream) {
  const int threads = 256;
  const int blocks = std::max(1, std::min((lay.total + threads - 1) / threads, 1024));
  pack_fused_kernel<<<blocks, threads, 0, stream>>>(lay, flat, packed);
  CUEBM_CUDA_CHECK_LAUNCH();
}

bool fused_eligible(const std::vector<int>& widths, int& width) {
  if (widths.size() < 3 || widths.front() > kMaxFusedDim || widths.back() != 1) return false;
  width = widths[1];
  for (std::size_t l = 1; l + 1 < widths.size(); ++l)
    if (widths[l] != width) return false;
  return width == 16 || width == 32 || width == 64 || width == 128 || width == 256;
}

int block_size_knob() { return g_block_knob.load(); }
bool general_path_forced() { return g_force_general.load(); }
int row_block_size() {
  const int k = block_size_knob();
  return k > 0 ? k : 128;
}

void set_cuda_block_size_for_testing(int threads) {
  if (threads != 0 && (threads < 32 || threads > kMaxRowBlock || threads % 32 != 0))
    throw InvalidArgument(
        "set_cuda_block_size_for_testing: threads must be 0 or a multiple of 32 "
        "in [32, " +
        std::to_string(kMaxRowBlock) + "], got " + std::to_string(threads));
  g_block_knob.store(threads);
}

void force_cuda_general_path_for_testing(bool force) { g_force_general.store(force); }

const LaunchLimits& device_launch_limits(int device) {
  static std::mutex mu;
  static std::map<int, LaunchLimits> cache;  // nodes are stable: references stay valid
  const std::lock_guard<std::mutex> lock(mu);
  const auto it = cache.find(device);
  if (it != cache.end()) return it->second;
  cudaDeviceProp p{};
  CUEBM_CUDA_CHECK(cudaGetDeviceProperties(&p, device));
  LaunchLimits l;
  l.sm_count = p.multiProcessorCount;
  l.max_threads_per_sm = p.maxThreadsPerMultiProcessor;
  l.max_blocks_per_sm = p.maxBlocksPerMultiProcessor;
  l.regs_per_sm = p.regsPerMultiprocessor;
  l.smem_per_sm = p.sharedMemPerMultiprocessor;
  l.smem_optin_per_block = p.sharedMemPerBlockOptin;
  l.smem_reserved_per_block = p.reservedSharedMemPerBlock;
  l.arch = 10 * p.major + p.minor;
  return cache.emplace(device, l).first->second;
}

FusedLaunch plan_fused_launch(const FusedLayout& lay, int64_t n, FusedKernel kernel) {
  return plan_fused_launch(lay, n, kernel, device_launch_limits(current_device()),
                           block_size_knob());
}

int64_t row_chunk(int64_t n, int64_t per_row_floats) {
  const int64_t cap =
      std::max<int64_t>(32, (int64_t{1} << 28) / std::max<int64_t>(per_row_floats, 1) / 32 * 32);
  return std::min(n, cap);
}

void make_device_model(const Energy& energy, DeviceModel& m, cudaStream_t stream) {
  m.dim = energy.dim();
  if (const auto* mlp = dynamic_cast<const Mlp*>(&energy)) {
    m.act = mlp->spec().activation;
    const std::vector<int>& w = mlp->layer_widths();
    m.n_lin = mlp->num_linear_layers();
    m.n_params = mlp->num_parameters();
    m.flat.resize(m.n_params);
    CUEBM_CUDA_CHECK(cudaMemcpyAsync(m.flat.data(), mlp->parameters().data(),
                                     m.n_params * sizeof(float), cudaMemcpyHostToDevice, stream));
    // General-path metadata (always built: the CD trainer's weight gradients read its layout).
    std::vector<int64_t> meta;
    for (int v : w) meta.push_back(v);
    for (int l = 0; l < m.n_lin; ++l) meta.push_back(static_cast<int64_t>(mlp->weight_offset(l)));
    for (int l = 0; l < m.n_lin; ++l) meta.push_back(static_cast<int64_t>(mlp->bias_offset(l)));
    int64_t c = m.dim;
    std::vector<int64_t> dcol, hcol;
    for (int h = 0; h + 1 < m.n_lin; ++h) {
      dcol.push_back(c);
      c += w[h + 1];
      hcol.push_back(c);
      c += w[h + 1];
    }
    meta.insert(meta.end(), dcol.begin(), dcol.end());
    meta.insert(meta.end(), hcol.begin(), hcol.end());
    m.generic_cols = c;
    m.host_meta = meta;
    m.meta.resize(meta.size());
    CUEBM_CUDA_CHECK(cudaMemcpyAsync(m.meta.data(), meta.data(), meta.size() * sizeof(int64_t),
                                     cudaMemcpyHostToDevice, stream));
    m.kind = DeviceModel::Kind::kGeneric;  // m.host_meta stays alive for the async copy
    int width = 0;
    if (!general_path_forced() && fused_eligible(w, width)) {
      m.lay = fused_layout_for(width, m.dim, m.n_lin - 1);
      if (fused_plan_exists(m.lay)) {
        m.kind = DeviceModel::Kind::kFused;
        m.packed.resize(m.lay.total);
        launch_pack_fused(m.lay, m.flat.data(), m.packed.data(), stream);
      }
    }
    CUEBM_CUDA_CHECK(cudaStreamSynchronize(stream));  // host vectors above go out of scope
    return;
  }
  if (const auto* an = dynamic_cast<const AnalyticEnergy*>(&energy)) {
    m.kind = DeviceModel::Kind::kAnalytic;
    m.ap = AnalyticParams{an->kind(),       an->dim(), an->scalars()[0], an->scalars()[1],
                          an->scalars()[2], nullptr,   nullptr};
    if (!an->mean().empty()) {
      m.mean.resize(an->mean().size());
      CUEBM_CUDA_CHECK(cudaMemcpyAsync(m.mean.data(), an->mean().data(), m.mean.bytes(),
                                       cudaMemcpyHostToDevice, stream));
      m.ap.mean = m.mean.data();
    }
    if (!an->precision().empty()) {
      m.precision.resize(an->precision().size());
      CUEBM_CUDA_CHECK(cudaMemcpyAsync(m.precision.data(), an->precision().data(),
                                       m.precision.bytes(), cudaMemcpyHostToDevice, stream));
      m.ap.precision = m.precision.data();
    }
    CUEBM_CUDA_CHECK(cudaStreamSynchronize(stream));
    return;
  }
  throw InvalidArgument("the CUDA backend supports Mlp and AnalyticEnergy energies; " +
                        energy.name() + " is neither (run it on Device::cpu())");
}

int64_t eval_scratch_floats(const DeviceModel& m, int64_t n) {
  switch (m.kind) {
    case DeviceModel::Kind::kFused:
      return 0;
    case DeviceModel::Kind::kGeneric: {
      const int64_t chunk = row_chunk(n, m.generic_cols);
      return (chunk + 31) / 32 * 32 * m.generic_cols;
    }
    case DeviceModel::Kind::kAnalytic:
    default: {
      const int64_t chunk = row_chunk(n, 2 * int64_t{m.dim});
      return (chunk + 31) / 32 * 32 * 2 * m.dim;
    }
  }
}

void launch_eval(const DeviceModel& m, const float* x, int64_t n, float* e, float* grad,
                 float* scratch, int64_t scratch_floats, cudaStream_t stream) {
  if (n <= 0) return;
  const int D = m.dim;
  if (m.kind == DeviceModel::Kind::kFused) {
    const FusedLaunch fl = plan_fused_launch(m.lay, n, FusedKernel::kEval);
    if (fl.threads == 0) throw CudaError("fused MLP kernel does not fit in shared memory");
    dispatch_width(m.lay.width, [&]<int W>() {
      launch_fused_eval<W>(m.act, fl, grid_for(n, fl.threads), x, n, e, grad, m.lay,
                           m.packed.data(), stream);
    });
    return;
  }
  const int threads = row_block_size();
  const int64_t per_row = m.kind == DeviceModel::Kind::kGeneric ? m.generic_cols : 2 * int64_t{D};
  const int64_t chunk = row_chunk(n, per_row);
  const int64_t ld = (chunk + 31) / 32 * 32;
  if (ld * per_row > scratch_floats) throw CudaError("launch_eval: scratch too small");
  for (int64_t r0 = 0; r0 < n; r0 += chunk) {
    const int64_t rows = std::min(chunk, n - r0);
    const float* xc = x + r0 * D;
    float* ec = e ? e + r0 : nullptr;
    float* gc = grad ? grad + r0 * D : nullptr;
    if (m.kind == DeviceModel::Kind::kGeneric) {
      const GenericNet net{m.flat.data(), m.meta.data(), m.n_lin};
      dispatch_activation(m.act, [&]<Activation A>() {
        generic_eval_kernel<A><<<grid_for(rows, threads), threads, 0, stream>>>(
            xc, rows, ec, gc, net, D, scratch, ld);
        CUEBM_CUDA_CHECK_LAUNCH();
      });
    } else {
      analytic_eval_kernel<<<grid_for(rows, threads), threads, 0, stream>>>(
          xc, rows, ec, gc, m.ap, scratch, static_cast<int>(ld));
      CUEBM_CUDA_CHECK_LAUNCH();
    }
  }
}

std::string cuda_mlp_path(const Mlp& mlp, int device) {
  DeviceGuard guard(device);
  int width = 0;
  if (general_path_forced() || !fused_eligible(mlp.layer_widths(), width)) return "general";
  const FusedLayout lay = fused_layout_for(width, mlp.dim(), mlp.num_linear_layers() - 1);
  return fused_plan_exists(lay) ? "fused<" + std::to_string(width) + ">" : "general";
}

FusedLayout fused_layout_for(int width, int dim, int hidden_layers) {
  FusedLayout lay;
  dispatch_width(width,
                 [&]<int W>() { lay = make_fused_layout(W, dim, hidden_layers, kFusedChunk<W>); });
  return lay;
}

namespace {
void eval_entry(const Energy& energy, const float* x, int64_t n, float* e, float* grad,
                int device) {
  if (n < 0) throw InvalidArgument("energy_cuda: negative batch size");
  if (n == 0) return;
  DeviceGuard guard(device);
  Stream stream;
  DeviceModel m;
  make_device_model(energy, m, stream.get());
  const int D = m.dim;
  DeviceBuffer<float> dx(n * D), de(n), dg(grad ? n * D : 0);
  const int64_t sf = eval_scratch_floats(m, n);
  DeviceBuffer<float> scratch(sf);
  CUEBM_CUDA_CHECK(cudaMemcpyAsync(dx.data(), x, dx.bytes(), cudaMemcpyHostToDevice, stream.get()));
  launch_eval(m, dx.data(), n, de.data(), grad ? dg.data() : nullptr, scratch.data(), sf,
              stream.get());
  if (e)
    CUEBM_CUDA_CHECK(
        cudaMemcpyAsync(e, de.data(), de.bytes(), cudaMemcpyDeviceToHost, stream.get()));
  if (grad)
    CUEBM_CUDA_CHECK(
        cudaMemcpyAsync(grad, dg.data(), dg.bytes(), cudaMemcpyDeviceToHost, stream.get()));
  CUEBM_CUDA_CHECK(cudaStreamSynchronize(stream.get()));
}
}  // namespace

void energy_cuda(const Energy& energy, const float* x, int64_t n, float* e, int device) {
  eval_entry(energy, x, n, e, nullptr, device);
}

void gradient_cuda(const Energy& energy, const float* x, int64_t n, float* grad, float* e,
                   int device) {
  eval_entry(energy, x, n, e, grad, device);
}

}  // namespace cuebm::detail
