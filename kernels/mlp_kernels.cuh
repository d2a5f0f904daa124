// Device-side models for the CUDA backend: the fused MLP (hidden layers of one width W, known
// at compile time), the general MLP (any widths, runtime loops) and the analytic energies,
// behind one per-row interface the Langevin, energy and CD kernels share:
//   float& x(i)        coordinate i of this row's state
//   float forward()    E(x), keeping what backward needs
//   backward(f)        after forward: calls f(q, g) for q = 0 .. ceil(D/4) - 1 in order, g the
//                      float4 of dE/dx for coordinates 4q .. 4q + 3 (entries >= D are 0)
//
// Fused MLP design (one chain = one row = one thread):
//  - weights in shared memory, copied once per block (one __syncthreads), each layer stored in
//    both orientations so that the 16 or 32 outputs a thread accumulates at once are
//    contiguous: one broadcast float4 load feeds 4 FMAs, and one load of the input activation
//    feeds C FMAs. Or the weights are read from global memory (uniform addresses, through L1)
//    through the same generic pointer: the launch planner (host/launch_plan.hpp) picks the
//    placement and the block size (32..256 threads) that keep the most warps resident; the
//    results do not depend on either.
//  - per-row storage (input x, the activation derivatives of every hidden layer, one or two
//    activation buffers) lives in shared memory in column layout: value k of thread t at
//    [k * T + t], so a warp's accesses hit 32 distinct banks. Threads never read each other's
//    columns: after the weight load there is no further block synchronisation.
//  - the math is activate<A> / activate_derivative<A> from activation.cuh, accumulated in the
//    CPU backend's order (bias first, then inputs in increasing index).
#pragma once

#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>
#include <vector>

#include "../host/launch_plan.hpp"
#include "activation.cuh"
#include "analytic.cuh"
#include "cuda_check.cuh"
#include "cuebm/activation.hpp"
#include "cuebm/energy.hpp"
#include "cuebm/langevin.hpp"
#include "langevin.cuh"

namespace cuebm::detail {

// ---------------------------------------------------------------------------------------------
// The one runtime-to-template switch over hidden widths (flash-attention's static switch).
// Returns false when `width` has no fused kernel.
template <class F>
bool dispatch_width(int width, F&& f) {
  switch (width) {
    case 16:
      f.template operator()<16>();
      return true;
    case 32:
      f.template operator()<32>();
      return true;
    case 64:
      f.template operator()<64>();
      return true;
    case 128:
      f.template operator()<128>();
      return true;
    case 256:
      f.template operator()<256>();
      return true;
    default:
      return false;
  }
}

// (width, activation) -> f.template operator()<W, A>(); false when the width is not fused.
template <class F>
bool dispatch_fused(int width, Activation act, F&& f) {
  return dispatch_width(width, [&]<int W>() {
    dispatch_activation(act, [&]<Activation A>() { f.template operator()<W, A>(); });
  });
}

// Outputs a thread accumulates at once in the fused kernels.
template <int W>
inline constexpr int kFusedChunk = fused_chunk(W);
inline constexpr int kMaxFusedDim = 128;
// kMaxRowBlock, FusedLayout and make_fused_layout: host/launch_plan.hpp.

// Builds the packed layout from the flat PyTorch-ordered parameters (both on the device).
void launch_pack_fused(const FusedLayout& lay, const float* flat, float* packed,
                       cudaStream_t stream);

// Copies the packed weights into shared memory when they fit there, then synchronises the
// block once; returns where the kernel reads the weights from.
__device__ inline const float* load_weights(const float* packed, int total, bool in_smem,
                                            float* smem) {
  if (in_smem) {
    // Eight loads in flight per thread before their stores: a one-warp block copies tens of KB,
    // and one load-store round trip to L2 at a time would cost more than its chains' arithmetic.
    constexpr int kInFlight = 8;
    const float4* src = reinterpret_cast<const float4*>(packed);
    float4* dst = reinterpret_cast<float4*>(smem);
    const int n4 = total / 4, T = static_cast<int>(blockDim.x);
    int i = threadIdx.x;
    for (; i + (kInFlight - 1) * T < n4; i += kInFlight * T) {
      float4 v[kInFlight];
#pragma unroll
      for (int b = 0; b < kInFlight; ++b) v[b] = src[i + b * T];
#pragma unroll
      for (int b = 0; b < kInFlight; ++b) dst[i + b * T] = v[b];
    }
    for (; i < n4; i += T) dst[i] = src[i];
  }
  __syncthreads();
  return in_smem ? smem : packed;
}

// ---------------------------------------------------------------------------------------------
// acc[0..C) += s * row[0..C), the row read as float4 (16-byte aligned): the inner step of every
// fused layer, forward and backward.
template <int C>
__device__ __forceinline__ void accumulate_row(float (&acc)[C], const float* row, float s) {
  const float4* r4 = reinterpret_cast<const float4*>(row);
#pragma unroll
  for (int c = 0; c < C / 4; ++c) {
    const float4 v = r4[c];
    acc[4 * c] = fmaf(v.x, s, acc[4 * c]);
    acc[4 * c + 1] = fmaf(v.y, s, acc[4 * c + 1]);
    acc[4 * c + 2] = fmaf(v.z, s, acc[4 * c + 2]);
    acc[4 * c + 3] = fmaf(v.w, s, acc[4 * c + 3]);
  }
}

template <int W, Activation A>
struct FusedModel {
  static constexpr int C = kFusedChunk<W>;
  static_assert(W % C == 0 && C % 4 == 0, "chunk must divide the width");
  const float* wts;  // packed weights (shared or global memory)
  FusedLayout lay;
  float* xs;  // column bases of this thread: element k at [k * T]
  float* ds;
  float* hs;
  int T;

  __device__ float& x(int i) { return xs[i * T]; }

  __device__ float forward() {
    const int L = lay.hidden_layers;
    float e = wts[lay.bout];
#pragma unroll 1
    for (int l = 0; l < L; ++l) {
      const bool first = l == 0, last = l == L - 1;
      const float* in = first ? xs : hs + ((l - 1) & 1) * W * T;
      const int n_in = first ? lay.dim : W;
      const float* wt = first ? wts + lay.w0t : wts + lay.hid + (l - 1) * lay.hid_stride;
      const float* b = first ? wts + lay.b0 : wt + 2 * W * W;
      float* dcol = ds + l * W * T;
      float* out = hs + (l & 1) * W * T;
#pragma unroll 1
      for (int j0 = 0; j0 < W; j0 += C) {
        float acc[C];
#pragma unroll
        for (int c = 0; c < C; c += 4) {
          const float4 v = *reinterpret_cast<const float4*>(b + j0 + c);
          acc[c] = v.x;
          acc[c + 1] = v.y;
          acc[c + 2] = v.z;
          acc[c + 3] = v.w;
        }
#pragma unroll 2
        for (int k = 0; k < n_in; ++k) {
          const float a = in[k * T];
          accumulate_row(acc, wt + k * W + j0, a);
        }
#pragma unroll
        for (int c = 0; c < C; ++c) {
          const float z = acc[c];
          const float dz = activate_derivative<A>(z);
          if (last) {
            // The output layer folds in: E = bout + sum_j wout_j act(z_j) (j increasing), and
            // the last hidden layer's delta dE/dz_j = wout_j act'(z_j).
            const float wo = wts[lay.wout + j0 + c];
            e = fmaf(wo, activate<A>(z), e);
            dcol[(j0 + c) * T] = wo * dz;
          } else {
            out[(j0 + c) * T] = activate<A>(z);
            dcol[(j0 + c) * T] = dz;
          }
        }
      }
    }
    return e;
  }

  // Back-propagates through the hidden layers: afterwards slot 0 of ds holds dE/dz_1.
  __device__ void backward_hidden() {
#pragma unroll 1
    for (int l = lay.hidden_layers - 1; l >= 1; --l) {
      const float* w = wts + lay.hid + (l - 1) * lay.hid_stride + W * W;  // [j][k]
      const float* din = ds + l * W * T;
      float* dout = ds + (l - 1) * W * T;
#pragma unroll 1
      for (int k0 = 0; k0 < W; k0 += C) {
        float acc[C];
#pragma unroll
        for (int c = 0; c < C; ++c) acc[c] = 0.0f;
#pragma unroll 2
        for (int j = 0; j < W; ++j) {
          const float dj = din[j * T];
          accumulate_row(acc, w + j * W + k0, dj);
        }
#pragma unroll
        for (int c = 0; c < C; ++c) dout[(k0 + c) * T] = acc[c] * dout[(k0 + c) * T];
      }
    }
  }

  template <class F>
  __device__ void backward(F&& f) {
    backward_hidden();
    const float* w0 = wts + lay.w0;
#pragma unroll 1
    for (int i0 = 0; i0 < lay.dim_pad; i0 += C) {
      float acc[C];
#pragma unroll
      for (int c = 0; c < C; ++c) acc[c] = 0.0f;
#pragma unroll 2
      for (int j = 0; j < W; ++j) {
        const float dj = ds[j * T];
        accumulate_row(acc, w0 + j * lay.dim_pad + i0, dj);
      }
#pragma unroll
      for (int q = 0; q < C / 4; ++q)
        if (i0 + 4 * q < lay.dim)
          f((i0 >> 2) + q, make_float4(acc[4 * q], acc[4 * q + 1], acc[4 * q + 2], acc[4 * q + 3]));
    }
  }
};

// ---------------------------------------------------------------------------------------------
// General MLP: any widths; per-row storage in global memory in column layout (unit k of row r
// at col[k * ld + r]), which is also the column-major matrix layout the CD trainer's cuBLAS
// weight-gradient GEMMs read.
struct GenericNet {
  const float* params;  // flat, PyTorch order
  const int64_t* meta;  // see GenericMeta
  int n_lin;            // linear layers (hidden layers + 1)
};

// meta = [widths (n_lin + 1)] [w_off (n_lin)] [b_off (n_lin)] [d_col (n_lin - 1)]
//        [h_col (n_lin - 1)]; d_col/h_col: first column of hidden layer h's derivative/delta and
// activation blocks; columns [0, D) hold x.
struct GenericMetaView {
  const int64_t* m;
  int n_lin;
  __device__ __host__ int width(int l) const { return static_cast<int>(m[l]); }
  __device__ __host__ int64_t w_off(int l) const { return m[n_lin + 1 + l]; }
  __device__ __host__ int64_t b_off(int l) const { return m[2 * n_lin + 1 + l]; }
  __device__ __host__ int64_t d_col(int h) const { return m[3 * n_lin + 1 + h]; }
  __device__ __host__ int64_t h_col(int h) const { return m[3 * n_lin + 1 + (n_lin - 1) + h]; }
};

template <Activation A>
struct GenericModel {
  GenericNet net;
  float* col;  // this row's column base (scratch + local row)
  int64_t ld;
  int dim;

  __device__ float& x(int i) { return col[i * ld]; }

  __device__ float forward() {
    const GenericMetaView mv{net.meta, net.n_lin};
    const int n_lin = net.n_lin;
    const float* wout = net.params + mv.w_off(n_lin - 1);
    float e = net.params[mv.b_off(n_lin - 1)];
    for (int l = 0; l + 1 < n_lin; ++l) {
      const int n_in = mv.width(l), n_out = mv.width(l + 1);
      const float* in = l == 0 ? col : col + mv.h_col(l - 1) * ld;
      const float* w = net.params + mv.w_off(l);
      const float* b = net.params + mv.b_off(l);
      float* d = col + mv.d_col(l) * ld;
      float* h = col + mv.h_col(l) * ld;
      const bool last = l + 2 == n_lin;
      for (int j = 0; j < n_out; ++j) {
        float z = b[j];
        const float* wr = w + static_cast<int64_t>(j) * n_in;
        for (int k = 0; k < n_in; ++k) z = fmaf(wr[k], in[k * ld], z);
        const float a = activate<A>(z), dz = activate_derivative<A>(z);
        h[j * ld] = a;  // kept for every hidden layer: the CD weight gradients read it
        if (last) {
          e = fmaf(wout[j], a, e);
          d[j * ld] = wout[j] * dz;
        } else {
          d[j * ld] = dz;
        }
      }
    }
    return e;
  }

  // Multiplies the last hidden layer's delta by s (the CD coefficient).
  __device__ void scale_output_delta(float s) {
    const GenericMetaView mv{net.meta, net.n_lin};
    const int h = net.n_lin - 2;
    float* d = col + mv.d_col(h) * ld;
    for (int j = 0; j < mv.width(h + 1); ++j) d[j * ld] *= s;
  }

  __device__ void backward_hidden() {
    const GenericMetaView mv{net.meta, net.n_lin};
    for (int l = net.n_lin - 2; l >= 1; --l) {  // linear layer l: hidden l-1 -> hidden l
      const int n_in = mv.width(l), n_out = mv.width(l + 1);
      const float* w = net.params + mv.w_off(l);
      const float* din = col + mv.d_col(l) * ld;
      float* dout = col + mv.d_col(l - 1) * ld;
      for (int k = 0; k < n_in; ++k) {
        float s = 0.0f;
        for (int j = 0; j < n_out; ++j)
          s = fmaf(w[static_cast<int64_t>(j) * n_in + k], din[j * ld], s);
        dout[k * ld] = s * dout[k * ld];
      }
    }
  }

  template <class F>
  __device__ void backward(F&& f) {
    backward_hidden();
    const GenericMetaView mv{net.meta, net.n_lin};
    const int n_out = mv.width(1);
    const float* w0 = net.params + mv.w_off(0);
    const float* d0 = col + mv.d_col(0) * ld;
    const int q_blocks = (dim + 3) / 4;
    for (int q = 0; q < q_blocks; ++q) {
      float g[4];
#pragma unroll
      for (int c = 0; c < 4; ++c) {
        const int i = 4 * q + c;
        float s = 0.0f;
        if (i < dim)
          for (int j = 0; j < n_out; ++j)
            s = fmaf(w0[static_cast<int64_t>(j) * dim + i], d0[j * ld], s);
        g[c] = s;
      }
      f(q, make_float4(g[0], g[1], g[2], g[3]));
    }
  }
};

// ---------------------------------------------------------------------------------------------
// Analytic energies: x and dE/dx in global memory in column layout (stride ld).
struct AnalyticModel {
  AnalyticParams p;  // mean/precision are device pointers
  float* xcol;
  float* gcol;
  int ld;

  __device__ float& x(int i) { return xcol[i * ld]; }
  __device__ float forward() { return analytic_energy_grad(p, xcol, ld, gcol, ld); }
  __device__ float energy_only() { return analytic_energy_grad(p, xcol, ld, nullptr, 0); }
  template <class F>
  __device__ void backward(F&& f) {
    const int q_blocks = (p.dim + 3) / 4;
    for (int q = 0; q < q_blocks; ++q) {
      float g[4];
#pragma unroll
      for (int c = 0; c < 4; ++c) g[c] = 4 * q + c < p.dim ? gcol[(4 * q + c) * ld] : 0.0f;
      f(q, make_float4(g[0], g[1], g[2], g[3]));
    }
  }
};

// ---------------------------------------------------------------------------------------------
// Host-side description of an energy on the device (weights uploaded once).
struct DeviceModel {
  enum class Kind { kFused, kGeneric, kAnalytic };
  Kind kind = Kind::kGeneric;
  int dim = 0;
  Activation act = Activation::kReLU;
  // MLPs: flat parameters (PyTorch order) on the device.
  DeviceBuffer<float> flat;
  std::size_t n_params = 0;
  // Fused.
  FusedLayout lay;
  DeviceBuffer<float> packed;
  // Generic.
  DeviceBuffer<int64_t> meta;
  std::vector<int64_t> host_meta;  // the same on the host (GenericMetaView over it)
  int n_lin = 0;
  int64_t generic_cols = 0;  // columns of per-row storage
  // Analytic.
  AnalyticParams ap{};
  DeviceBuffer<float> mean, precision;
};

// Builds the device description of `energy` (Mlp or AnalyticEnergy; anything else throws
// InvalidArgument). Uploads synchronously on `stream`.
void make_device_model(const Energy& energy, DeviceModel& out, cudaStream_t stream);
// Which MLP path a model of these widths takes ("fused<W>" or "general").
bool fused_eligible(const std::vector<int>& widths, int& width);

// Threads per block and shared memory for fused kernel `kernel` on n rows on the current device
// (host/launch_plan.hpp: the rule, and FusedLaunch); threads == 0 when the per-row storage does
// not fit (use the general path). Honours set_cuda_block_size_for_testing.
FusedLaunch plan_fused_launch(const FusedLayout& lay, int64_t n, FusedKernel kernel);
// The team plan for n chains on the current device (lanes == 0: none). Honours
// set_cuda_chain_team_for_testing.
TeamLaunch plan_team_launch(const FusedLayout& lay, int64_t n);
// cudaGetDevice, checked.
int current_device();
// The limits of `device` (cached per device: the attributes do not change).
const LaunchLimits& device_launch_limits(int device);
// Threads per block of the general and analytic row kernels.
int row_block_size();
// Current test knob (0 = automatic).
int block_size_knob();
bool general_path_forced();
// Rows processed per launch of the general/analytic kernels (their storage is per launch).
int64_t row_chunk(int64_t n, int64_t per_row_floats);

// Raises `kernel`'s dynamic shared-memory limit to the current device's opt-in maximum before
// a launch. Every caller sets the same value: setting each launch's own size instead would let
// another host thread lower the limit between this thread's set and its launch. Set per launch
// (not cached) because cudaDeviceReset restores the default.
template <class Kernel>
void allow_opt_in_shared_memory(Kernel* kernel) {
  const int limit = static_cast<int>(device_launch_limits(current_device()).smem_optin_per_block);
  CUEBM_CUDA_CHECK(
      cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, limit));
}

// Energies (and gradients when grad != null) of n rows, row-major x on the device.
void launch_eval(const DeviceModel& m, const float* x, int64_t n, float* e, float* grad,
                 float* scratch, int64_t scratch_floats, cudaStream_t stream);
// Scratch floats launch_eval needs for n rows.
int64_t eval_scratch_floats(const DeviceModel& m, int64_t n);

// ---------------------------------------------------------------------------------------------
// Langevin chains (kernels/langevin_kernels.cu). Rows are addressed by their index in the
// whole call so that chain ids, the noise buffer, the trajectory and the diagnostics groups do
// not depend on how the rows are split into launches.
struct ChainArgs {
  float* x = nullptr;  // n_total x dim, row-major, updated in place
  int64_t n_total = 0;
  int dim = 0;
  int n_steps = 0;
  const float* eta = nullptr;         // device, per step
  const float* noise_coef = nullptr;  // device, per step
  uint64_t seed = 0, step_offset = 0, first_chain = 0;
  bool clamp = false;
  float clamp_min = 0, clamp_max = 0;
  int thin = 0;
  float* trajectory = nullptr;  // (n_steps / thin) x n_total x dim, or null
  // Per group of 32 rows g: n_steps x (2 dim + 1) doubles {sum x, sum x^2, sum E(x_{t+1})}.
  double* diag = nullptr;
  const float* noise = nullptr;  // n_steps x n_total x dim, or null (Philox)
};

// ChainArgs for the n rows of x (row-major, dim columns) over n_steps steps of per-step eta and
// noise coefficients on the device, with o's seed, step and chain offsets and clamping.
inline ChainArgs make_chain_args(const LangevinOptions& o, float* x, int64_t n, int dim,
                                 int n_steps, const float* eta, const float* coef) {
  ChainArgs a;
  a.x = x;
  a.n_total = n;
  a.dim = dim;
  a.n_steps = n_steps;
  a.eta = eta;
  a.noise_coef = coef;
  a.seed = o.seed;
  a.step_offset = o.step_offset;
  a.first_chain = o.first_chain;
  a.clamp = o.clamp_min || o.clamp_max;
  a.clamp_min = o.clamp_min.value_or(-INFINITY);
  a.clamp_max = o.clamp_max.value_or(INFINITY);
  return a;
}

// Runs the chains of all n_total rows; scratch as eval_scratch_floats(m, n_total).
void launch_chains(const DeviceModel& m, const ChainArgs& a, float* scratch, int64_t scratch_floats,
                   cudaStream_t stream);

// ---------------------------------------------------------------------------------------------
// The chain loop and the fused kernels. The fused kernels are instantiated per width in
// kernels/mlp_fused_w*.cu (compiled in parallel); everything else reaches them through
// launch_fused_eval<W> / launch_fused_chain<W>, selected by dispatch_width.
__device__ inline double warp_sum_lanes(double v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;  // every lane holds the same sum (IEEE addition commutes)
}

// One Langevin update of coordinates 4q .. 4q + 3 of `row` at step t, g their dE/dx: noise from
// the buffer when given, else Philox keyed by (chain, step, q); clamped when asked.
template <class Model>
__device__ void langevin_update_quad(Model& m, const ChainArgs& a, int64_t row, bool valid, int t,
                                     float eta, float coef, int q, float4 g) {
  const int D = a.dim;
  float4 eps;
  if (a.noise) {
    const float* nrow = a.noise + (static_cast<int64_t>(t) * a.n_total + row) * D;
    eps.x = valid && 4 * q < D ? nrow[4 * q] : 0.0f;
    eps.y = valid && 4 * q + 1 < D ? nrow[4 * q + 1] : 0.0f;
    eps.z = valid && 4 * q + 2 < D ? nrow[4 * q + 2] : 0.0f;
    eps.w = valid && 4 * q + 3 < D ? nrow[4 * q + 3] : 0.0f;
  } else {
    const uint64_t step = a.step_offset + static_cast<uint64_t>(t);
    const Normal4 n4 =
        langevin_noise4(a.seed, a.first_chain + static_cast<uint64_t>(row), step, D, q);
    eps = make_float4(n4.v[0], n4.v[1], n4.v[2], n4.v[3]);
  }
  auto update = [&](int i, float gi, float ei) {
    if (i < D) {
      float v = langevin_update(m.x(i), gi, eta, coef, ei);
      if (a.clamp) v = clampf(v, a.clamp_min, a.clamp_max);
      m.x(i) = v;
    }
  };
  update(4 * q, g.x, eps.x);
  update(4 * q + 1, g.y, eps.y);
  update(4 * q + 2, g.z, eps.z);
  update(4 * q + 3, g.w, eps.w);
}

// The chain loop of one row, shared by every model. All 32 lanes of a warp call it (rows past
// the end run on zeros and write nothing) so the diagnostics' shuffles see full warps.
template <class Model>
__device__ void run_chain(Model& m, const ChainArgs& a, int64_t row, bool valid) {
  const int D = a.dim;
  const int stride = 2 * D + 1;
  const int64_t group = row >> 5;
  const bool lane0 = (threadIdx.x & 31) == 0;
  for (int t = 0; t < a.n_steps; ++t) {
    const float e = m.forward();
    if (a.diag && t > 0) {
      const double s = warp_sum_lanes(valid ? static_cast<double>(e) : 0.0);
      if (lane0) a.diag[(group * a.n_steps + (t - 1)) * stride + 2 * D] = s;
    }
    const float eta = a.eta[t], coef = a.noise_coef[t];
    m.backward(
        [&](int q, float4 g) { langevin_update_quad(m, a, row, valid, t, eta, coef, q, g); });
    if (a.diag) {
      double* out = a.diag + (group * a.n_steps + t) * stride;
      for (int d = 0; d < D; ++d) {
        const double v = valid ? static_cast<double>(m.x(d)) : 0.0;
        const double s = warp_sum_lanes(v), s2 = warp_sum_lanes(v * v);
        if (lane0) {
          out[d] = s;
          out[D + d] = s2;
        }
      }
    }
    if (a.trajectory && (t + 1) % a.thin == 0 && valid) {
      float* tr = a.trajectory + (static_cast<int64_t>((t + 1) / a.thin - 1) * a.n_total + row) * D;
      for (int d = 0; d < D; ++d) tr[d] = m.x(d);
    }
  }
  if (a.diag && a.n_steps > 0) {
    const float e = m.forward();
    const double s = warp_sum_lanes(valid ? static_cast<double>(e) : 0.0);
    if (lane0) a.diag[(group * a.n_steps + (a.n_steps - 1)) * stride + 2 * D] = s;
  }
  if (valid)
    for (int d = 0; d < D; ++d) a.x[row * D + d] = m.x(d);
}

template <int W, Activation A>
__global__ void __launch_bounds__(kMaxRowBlock, 1)
    fused_eval_kernel(const float* __restrict__ x, int64_t n, float* __restrict__ e,
                      float* __restrict__ grad, FusedLayout lay, const float* __restrict__ packed,
                      bool in_smem) {
  extern __shared__ float4 smem4[];
  float* smem = reinterpret_cast<float*>(smem4);
  const float* wts = load_weights(packed, lay.total, in_smem, smem);
  const int T = blockDim.x, D = lay.dim;
  const int64_t row = blockIdx.x * static_cast<int64_t>(T) + threadIdx.x;
  if (row >= n) return;  // no block synchronisation after this point
  float* col = smem + (in_smem ? lay.total : 0) + threadIdx.x;
  FusedModel<W, A> m{wts, lay, col, col + D * T, col + (D + lay.hidden_layers * W) * T, T};
  for (int i = 0; i < D; ++i) m.x(i) = x[row * D + i];
  const float ev = m.forward();
  if (e) e[row] = ev;
  if (grad)
    m.backward([&](int q, float4 g) {
      const float gv[4] = {g.x, g.y, g.z, g.w};
#pragma unroll
      for (int c = 0; c < 4; ++c)
        if (4 * q + c < D) grad[row * D + 4 * q + c] = gv[c];
    });
}

template <int W, Activation A>
__global__ void __launch_bounds__(kMaxRowBlock, 1)
    fused_chain_kernel(ChainArgs a, FusedLayout lay, const float* __restrict__ packed,
                       bool in_smem) {
  extern __shared__ float4 smem4[];
  float* smem = reinterpret_cast<float*>(smem4);
  const float* wts = load_weights(packed, lay.total, in_smem, smem);
  const int T = blockDim.x, D = lay.dim;
  const int64_t row = blockIdx.x * static_cast<int64_t>(T) + threadIdx.x;
  if ((row & ~int64_t{31}) >= a.n_total) return;  // whole warps only: no sync follows
  const bool valid = row < a.n_total;
  float* col = smem + (in_smem ? lay.total : 0) + threadIdx.x;
  FusedModel<W, A> m{wts, lay, col, col + D * T, col + (D + lay.hidden_layers * W) * T, T};
  for (int i = 0; i < D; ++i) m.x(i) = valid ? a.x[row * D + i] : 0.0f;
  run_chain(m, a, row, valid);
}

template <int W>
void launch_fused_eval(Activation act, const FusedLaunch& fl, unsigned blocks, const float* x,
                       int64_t n, float* e, float* grad, const FusedLayout& lay,
                       const float* packed, cudaStream_t stream) {
  dispatch_activation(act, [&]<Activation A>() {
    allow_opt_in_shared_memory(fused_eval_kernel<W, A>);
    fused_eval_kernel<W, A><<<blocks, fl.threads, fl.smem_bytes, stream>>>(
        x, n, e, grad, lay, packed, fl.weights_in_smem);
    CUEBM_CUDA_CHECK_LAUNCH();
  });
}

template <int W>
void launch_fused_chain(Activation act, const FusedLaunch& fl, unsigned blocks, const ChainArgs& a,
                        const FusedLayout& lay, const float* packed, cudaStream_t stream) {
  dispatch_activation(act, [&]<Activation A>() {
    allow_opt_in_shared_memory(fused_chain_kernel<W, A>);
    fused_chain_kernel<W, A>
        <<<blocks, fl.threads, fl.smem_bytes, stream>>>(a, lay, packed, fl.weights_in_smem);
    CUEBM_CUDA_CHECK_LAUNCH();
  });
}

// Team chains (kernels/fused_team.cuh, plan_team_launch): defined there, instantiated with the
// others per width.
template <int W>
void launch_fused_team_chain(Activation act, const TeamLaunch& tl, const ChainArgs& a,
                             const FusedLayout& lay, const float* packed, cudaStream_t stream);

#define CUEBM_FUSED_WIDTH_INSTANCES(EXTERN, W)                                                     \
  EXTERN template void launch_fused_eval<W>(Activation, const FusedLaunch&, unsigned,              \
                                            const float*, int64_t, float*, float*,                 \
                                            const FusedLayout&, const float*, cudaStream_t);       \
  EXTERN template void launch_fused_chain<W>(Activation, const FusedLaunch&, unsigned,             \
                                             const ChainArgs&, const FusedLayout&, const float*,   \
                                             cudaStream_t);                                        \
  EXTERN template void launch_fused_team_chain<W>(Activation, const TeamLaunch&, const ChainArgs&, \
                                                  const FusedLayout&, const float*, cudaStream_t);
#define CUEBM_EXTERN extern
CUEBM_FUSED_WIDTH_INSTANCES(CUEBM_EXTERN, 16)
CUEBM_FUSED_WIDTH_INSTANCES(CUEBM_EXTERN, 32)
CUEBM_FUSED_WIDTH_INSTANCES(CUEBM_EXTERN, 64)
CUEBM_FUSED_WIDTH_INSTANCES(CUEBM_EXTERN, 128)
CUEBM_FUSED_WIDTH_INSTANCES(CUEBM_EXTERN, 256)
#undef CUEBM_EXTERN

}  // namespace cuebm::detail
