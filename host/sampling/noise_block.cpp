#include "host/sampling/noise_block.hpp"

#include <cstring>

#include "cuebm/models/energy.hpp"
#include "kernels/runtime/philox.cuh"

namespace cuebm::detail {
namespace {

// GCC vector extensions: 16 lanes, one AVX-512 register (two AVX2 or four SSE registers on
// other targets). A block of kRowBlock rows is two of them.
constexpr int kLanes = 16;
#define CUEBM_NOISE_INLINE [[gnu::always_inline]] inline
typedef float f32v __attribute__((vector_size(4 * kLanes)));
typedef int32_t i32v __attribute__((vector_size(4 * kLanes)));
typedef uint32_t u32v __attribute__((vector_size(4 * kLanes)));
typedef uint64_t u64v __attribute__((vector_size(8 * kLanes)));
static_assert(kRowBlock % kLanes == 0);

CUEBM_NOISE_INLINE f32v load(const float* p) {
  f32v v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
CUEBM_NOISE_INLINE void store(float* p, f32v v) { std::memcpy(p, &v, sizeof v); }
CUEBM_NOISE_INLINE f32v as_float(i32v i) {
  f32v f;
  std::memcpy(&f, &i, sizeof f);
  return f;
}
CUEBM_NOISE_INLINE i32v as_int(f32v f) {
  i32v i;
  std::memcpy(&i, &f, sizeof i);
  return i;
}

// Cephes logf: x = 2^e m with m in [sqrt(1/2), sqrt(2)), log(x) = e log 2 + log1p(m - 1) by a
// degree-9 polynomial; log 2 split in two so e log 2 carries no rounding error. About 1 ulp.
CUEBM_NOISE_INLINE f32v vlog(f32v x) {
  const i32v bits = as_int(x);
  i32v e = (bits >> 23) - 127;
  f32v m = as_float((bits & 0x007fffff) | 0x3f800000);  // [1, 2)
  const i32v big = m > 1.41421356f;
  m = big ? m * 0.5f : m;
  e -= big;  // big is -1 where true
  const f32v fe = __builtin_convertvector(e, f32v);
  const f32v t = m - 1.0f;  // exact
  const f32v z = t * t;
  f32v p = 7.0376836292e-2f * t - 1.1514610310e-1f;
  p = p * t + 1.1676998740e-1f;
  p = p * t - 1.2420140846e-1f;
  p = p * t + 1.4249322787e-1f;
  p = p * t - 1.6668057665e-1f;
  p = p * t + 2.0000714765e-1f;
  p = p * t - 2.4999993993e-1f;
  p = p * t + 3.3333331174e-1f;
  f32v y = p * t * z;
  y += fe * -2.12194440e-4f;
  y += -0.5f * z;
  f32v r = t + y;
  r += fe * 0.693359375f;
  return r;
}

// sqrt(x), x >= 0: two Newton steps on 1/sqrt(x) from the bit-trick estimate (relative error
// below 5e-6), then one Newton step on sqrt(x) itself. About 1 ulp; sqrt(0) = 0.
CUEBM_NOISE_INLINE f32v vsqrt(f32v x) {
  // Unsigned, so a negative or NaN input (never produced here) wraps instead of overflowing.
  const u32v bits = reinterpret_cast<u32v>(as_int(x));
  f32v y = as_float(reinterpret_cast<i32v>(0x5f3759dfu - (bits >> 1)));
  const f32v half = 0.5f * x;
  y = y * (1.5f - half * y * y);
  y = y * (1.5f - half * y * y);
  const f32v s = x * y;
  return s + (x - s * s) * (0.5f * y);
}

// Cephes sinf/cosf: v = k pi/2 + r, |r| <= pi/4 (pi/2 split in three, Cody-Waite), minimax
// polynomials for sin r and cos r, then the quadrant k mod 4 picks and signs them. v >= 0.
CUEBM_NOISE_INLINE void vsincos(f32v v, f32v& s, f32v& c) {
  const i32v k = __builtin_convertvector(v * 0.636619772f + 0.5f, i32v);  // round, v >= 0
  const f32v fk = __builtin_convertvector(k, f32v);
  f32v r = v - fk * 1.5703125f;
  r = r - fk * 4.837512969970703125e-4f;
  r = r - fk * 7.54978995489188216e-8f;
  const f32v z = r * r;
  f32v ps = -1.9515295891e-4f * z + 8.3321608736e-3f;
  ps = ps * z - 1.6666654611e-1f;
  const f32v sin_r = ps * z * r + r;
  f32v pc = 2.443315711809948e-5f * z - 1.388731625493765e-3f;
  pc = pc * z + 4.166664568298827e-2f;
  f32v cos_r = pc * z * z;
  cos_r = cos_r - 0.5f * z;
  cos_r = cos_r + 1.0f;
  // sin(k pi/2 + r), cos(k pi/2 + r) for k mod 4 = 0: (s, c), 1: (c, -s), 2: (-s, -c), 3: (-c, s).
  const i32v swap = (k & 1) != 0;
  const i32v sin_sign = (k & 2) << 30;
  const i32v cos_sign = ((k + 1) & 2) << 30;
  s = as_float(as_int(swap ? cos_r : sin_r) ^ sin_sign);
  c = as_float(as_int(swap ? sin_r : cos_r) ^ cos_sign);
}

CUEBM_NOISE_INLINE u32v lo32(const u64v& x) { return __builtin_convertvector(x, u32v); }
CUEBM_NOISE_INLINE u32v hi32(const u64v& x) { return __builtin_convertvector(x >> 32, u32v); }

// cuRAND's Box-Muller (box_muller in kernels/runtime/philox.cuh) on 16 lanes; the uniforms are
// formed by the same expressions, so they match the scalar ones bit for bit.
CUEBM_NOISE_INLINE void vbox_muller(u32v a, u32v b, f32v& n0, f32v& n1) {
  const f32v u = __builtin_convertvector(a, f32v) * kTwoPow32Inv + kTwoPow32Inv / 2.0f;
  const f32v v = __builtin_convertvector(b, f32v) * kTwoPow32Inv2Pi + kTwoPow32Inv2Pi / 2.0f;
  const f32v r = vsqrt(-2.0f * vlog(u));
  f32v s, c;
  vsincos(v, s, c);
  n0 = r * s;
  n1 = r * c;
}

// 16 lanes of the block: rows lane0 .. lane0 + 15.
void noise_lanes(uint64_t seed, uint64_t first_chain, uint64_t step, int dim, int lane0,
                 float* eps_t) {
  constexpr uint32_t kM0 = 0xD2511F53u, kM1 = 0xCD9E8D57u;
  constexpr uint32_t kW0 = 0x9E3779B9u, kW1 = 0xBB67AE85u;
  u64v chain;
  for (int i = 0; i < kLanes; ++i) chain[i] = first_chain + static_cast<uint64_t>(lane0 + i);
  const u32v chain_lo = lo32(chain), chain_hi = hi32(chain);
  const uint64_t q_blocks = blocks_per_step(dim);
  for (uint64_t q = 0; q < q_blocks; ++q) {
    const uint64_t block = step * q_blocks + q;
    // Philox4x32-10 on counter (block lo, block hi, chain lo, chain hi), key (seed lo, hi).
    u32v x = u32v{} + static_cast<uint32_t>(block), y = u32v{} + static_cast<uint32_t>(block >> 32);
    u32v z = chain_lo, w = chain_hi;
    uint32_t k0 = static_cast<uint32_t>(seed), k1 = static_cast<uint32_t>(seed >> 32);
    for (int round = 0; round < 10; ++round) {
      const u64v p0 = __builtin_convertvector(x, u64v) * kM0;
      const u64v p1 = __builtin_convertvector(z, u64v) * kM1;
      const u32v nx = hi32(p1) ^ y ^ k0, nz = hi32(p0) ^ w ^ k1;
      y = lo32(p1);
      w = lo32(p0);
      x = nx;
      z = nz;
      k0 += kW0;
      k1 += kW1;
    }
    const int d0 = 4 * static_cast<int>(q);
    f32v n[4];
    vbox_muller(x, y, n[0], n[1]);
    if (d0 + 2 < dim) vbox_muller(z, w, n[2], n[3]);
    for (int k = 0; k < 4 && d0 + k < dim; ++k) store(eps_t + (d0 + k) * kRowBlock + lane0, n[k]);
  }
}

}  // namespace

void langevin_noise_block(uint64_t seed, uint64_t first_chain_of_block, uint64_t step, int dim,
                          int rows, float* eps_t) {
  for (int lane0 = 0; lane0 < rows; lane0 += kLanes)
    noise_lanes(seed, first_chain_of_block, step, dim, lane0, eps_t);
}

void noise_log_lanes(const float* x, float* out) {
  for (int i = 0; i < kRowBlock; i += kLanes) store(out + i, vlog(load(x + i)));
}

void noise_sqrt_lanes(const float* x, float* out) {
  for (int i = 0; i < kRowBlock; i += kLanes) store(out + i, vsqrt(load(x + i)));
}

void noise_sincos_lanes(const float* v, float* s, float* c) {
  for (int i = 0; i < kRowBlock; i += kLanes) {
    f32v sv, cv;
    vsincos(load(v + i), sv, cv);
    store(s + i, sv);
    store(c + i, cv);
  }
}

}  // namespace cuebm::detail
