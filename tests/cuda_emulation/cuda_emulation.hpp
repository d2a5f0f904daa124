// The emulated CUDA backend's device side, force-included (-include) into every CUDA source
// that the emulated build compiles as host C++ (after tests/cuda_emulation/rewrite.py turned
// its launches, __shared__ variables and kernel entries into the calls below).
//
// NVIDIA's own headers are included first, in host mode, so float4 (16-byte aligned), dim3,
// cudaDeviceProp, curand_kernel.h and the runtime API's declarations are the real ones; then
// __CUDACC__ and __CUDA_ARCH__ (900) are defined so the device branches of our code compile.
// Every CUDA thread runs as a fiber (tests/cuda_emulation/README.md).
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <curand.h>
#include <curand_kernel.h>

#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>

#define CUEBM_CUDA_EMULATION 1

namespace cuemu {

// The CUDA thread the calling fiber runs.
struct ThreadView {
  uint3 thread_idx;
  uint3 block_idx;
  dim3 block_dim;
  dim3 grid_dim;
};
extern thread_local ThreadView* tl_view;
// The calling fiber's view, through a call: kernel code must not keep a thread-local address or
// value across a switch (sanitizer builds did).
ThreadView& current_view();

// ---- Device-side calls (tests/cuda_emulation/scheduler.cpp) ----
void syncthreads(const char* file, int line);
int syncthreads_count(int pred, const char* file, int line);
void syncwarp(unsigned mask, const char* file, int line);
unsigned ballot_sync(unsigned mask, int pred, const char* file, int line);
unsigned activemask();
enum class ShuffleKind { kIndex, kUp, kDown, kXor };
uint64_t shuffle_bits(unsigned mask, uint64_t bits, ShuffleKind kind, int arg, int width,
                      const char* file, int line);
void* dynamic_shared_memory();
void* static_shared_memory(const void* key, std::size_t bytes, std::size_t align);
[[noreturn]] void device_trap(const char* what, const char* file, int line);
// Kernel entry: true when the launch is probing the kernel's attributes (return at once).
bool kernel_prologue(int max_threads, int min_blocks, const char* name, const char* file, int line);

template <class T>
T shuffle(unsigned mask, T v, ShuffleKind kind, int arg, int width, const char* file, int line) {
  static_assert(std::is_trivially_copyable_v<T> && sizeof(T) <= 8, "shuffles move 4 or 8 bytes");
  uint64_t bits = 0;
  std::memcpy(&bits, &v, sizeof(T));
  bits = shuffle_bits(mask, bits, kind, arg, width, file, line);
  T out;
  std::memcpy(&out, &bits, sizeof(T));
  return out;
}

template <class T>
T& block_shared(const void* key) {
  return *static_cast<T*>(static_shared_memory(key, sizeof(T), alignof(T)));
}

// ---- Launches ----
struct LaunchConfig {
  dim3 grid, block;
  std::size_t shared_bytes;
  cudaStream_t stream;
  LaunchConfig(dim3 g, dim3 b, std::size_t s = 0, cudaStream_t st = nullptr)
      : grid(g), block(b), shared_bytes(s), stream(st) {}
};

struct KernelAttributes {
  int max_threads = 0;  // __launch_bounds__, 0 when none
  int min_blocks = 0;
  const char* name = "";
};

// Runs kernel(args...) with the launch semantics of kernels/*.cu: argument conversion as at a
// call, a private copy of the parameters per CUDA thread. Returns the launch's status (also
// kept for cudaGetLastError).
cudaError_t submit_launch(const LaunchConfig& cfg, const void* kernel,
                          const KernelAttributes& attributes, const char* file, int line,
                          std::function<void()> body);
KernelAttributes probe_kernel(const std::function<void()>& call);
// The message of the device fault that made the context fail (empty when none); cleared, with
// the fault, by cudaDeviceReset. For the emulator's own tests.
std::string last_fault();
// The shared-memory race check (instrumented builds): off unless CUEMU_RACECHECK=1, as
// compute-sanitizer's racecheck is a separate, slower run; set_racecheck turns it on or off.
bool racecheck_enabled_at_run_time();
void set_racecheck(bool on);

template <class... P, class... A>
cudaError_t launch(const char* file, int line, const LaunchConfig& cfg, void (*kernel)(P...),
                   A&&... args) {
  static_assert(sizeof...(P) == sizeof...(A), "kernel launched with the wrong argument count");
  using Params = std::tuple<std::decay_t<P>...>;
  auto params = std::make_shared<const Params>(std::forward<A>(args)...);
  auto call = [kernel, params] { std::apply(kernel, *params); };
  const KernelAttributes attributes = probe_kernel(call);
  return submit_launch(cfg, reinterpret_cast<const void*>(kernel), attributes, file, line,
                       std::move(call));
}

}  // namespace cuemu

// Everything below is for the emulated sources only (the runtime's own files define
// CUEMU_INTERNAL and see just the declarations above).
#if !defined(CUEMU_INTERNAL)

// Device code is compiled from here on: __CUDACC__ selects the CUDA spellings of our headers,
// __CUDA_ARCH__ their device branches. Functions whose bodies depend on __CUDA_ARCH__ are either
// __forceinline__ (kernels/runtime/hd.cuh: always inlined, so the emulated sources never call the
// host translation units' copy of the same inline function) or compute the same values in both
// branches here (include/cuebm/runtime/device_random.hpp: __sincosf below is sinf and cosf).
#define __CUDACC__ 1
#define __CUDA_ARCH__ 900
#undef __host__
#undef __device__
#undef __global__
#undef __shared__
#undef __constant__
#undef __forceinline__
#undef __noinline__
#define __host__
#define __device__
#define __global__
#define __constant__
#define __forceinline__ inline __attribute__((always_inline))
#define __noinline__ __attribute__((noinline))
#define __launch_bounds__(...)
#define warpSize 32

#define threadIdx (::cuemu::current_view().thread_idx)
#define blockIdx (::cuemu::current_view().block_idx)
#define blockDim (::cuemu::current_view().block_dim)
#define gridDim (::cuemu::current_view().grid_dim)

#define CUEMU_KERNEL_PROLOGUE(max_threads, min_blocks) \
  if (::cuemu::kernel_prologue((max_threads), (min_blocks), __func__, __FILE__, __LINE__)) return;

#define __syncthreads() ::cuemu::syncthreads(__FILE__, __LINE__)
#define __syncthreads_count(pred) ::cuemu::syncthreads_count((pred), __FILE__, __LINE__)
#define __syncthreads_and(pred)                                      \
  (::cuemu::syncthreads_count((pred) ? 1 : 0, __FILE__, __LINE__) == \
   static_cast<int>(blockDim.x * blockDim.y * blockDim.z))
#define __syncthreads_or(pred) (::cuemu::syncthreads_count((pred) ? 1 : 0, __FILE__, __LINE__) > 0)
#define __syncwarp(...) ::cuemu::syncwarp(::cuemu::default_mask(__VA_ARGS__), __FILE__, __LINE__)
#define __ballot_sync(mask, pred) ::cuemu::ballot_sync((mask), (pred) ? 1 : 0, __FILE__, __LINE__)
#define __any_sync(mask, pred) \
  (::cuemu::ballot_sync((mask), (pred) ? 1 : 0, __FILE__, __LINE__) != 0u)
#define __all_sync(mask, pred) \
  (::cuemu::ballot_sync((mask), (pred) ? 1 : 0, __FILE__, __LINE__) == (mask))
#define __activemask() ::cuemu::activemask()
#define __shfl_sync(mask, v, src, ...)                               \
  ::cuemu::shuffle((mask), (v), ::cuemu::ShuffleKind::kIndex, (src), \
                   ::cuemu::default_width(__VA_ARGS__), __FILE__, __LINE__)
#define __shfl_up_sync(mask, v, d, ...)                         \
  ::cuemu::shuffle((mask), (v), ::cuemu::ShuffleKind::kUp, (d), \
                   ::cuemu::default_width(__VA_ARGS__), __FILE__, __LINE__)
#define __shfl_down_sync(mask, v, d, ...)                         \
  ::cuemu::shuffle((mask), (v), ::cuemu::ShuffleKind::kDown, (d), \
                   ::cuemu::default_width(__VA_ARGS__), __FILE__, __LINE__)
#define __shfl_xor_sync(mask, v, m, ...)                         \
  ::cuemu::shuffle((mask), (v), ::cuemu::ShuffleKind::kXor, (m), \
                   ::cuemu::default_width(__VA_ARGS__), __FILE__, __LINE__)
#define __trap() ::cuemu::device_trap("__trap()", __FILE__, __LINE__)

// nvcc's typed overloads of the function-attribute calls (cuda_runtime.h declares them only
// under nvcc).
template <class T>
inline cudaError_t cudaFuncSetAttribute(T* entry, cudaFuncAttribute attr, int value) {
  return ::cudaFuncSetAttribute(reinterpret_cast<const void*>(entry), attr, value);
}
template <class T>
inline cudaError_t cudaFuncGetAttributes(cudaFuncAttributes* attr, T* entry) {
  return ::cudaFuncGetAttributes(attr, reinterpret_cast<const void*>(entry));
}

namespace cuemu {
constexpr unsigned default_mask() { return 0xffffffffu; }
constexpr unsigned default_mask(unsigned m) { return m; }
constexpr int default_width() { return 32; }
constexpr int default_width(int w) { return w; }
}  // namespace cuemu

// ---- Device math: the host's libm, as the CPU backend and curand_kernel.h's host branch ----
// The real intrinsics differ in the last bits (tests compare to a tolerance, not bits); the
// round-to-nearest arithmetic intrinsics are exact.
inline void __sincosf(float x, float* s, float* c) {
  *s = sinf(x);
  *c = cosf(x);
}
inline float __sinf(float x) { return sinf(x); }
inline float __cosf(float x) { return cosf(x); }
inline float __expf(float x) { return expf(x); }
inline float __logf(float x) { return logf(x); }
inline float __powf(float x, float y) { return powf(x, y); }
inline float __fdividef(float x, float y) { return x / y; }
inline float __frcp_rn(float x) { return 1.0f / x; }
inline float __fsqrt_rn(float x) { return sqrtf(x); }
inline float __fadd_rn(float a, float b) {
  volatile float r = a + b;  // no contraction into an FMA
  return r;
}
inline float __fmul_rn(float a, float b) {
  volatile float r = a * b;
  return r;
}
inline float __fmaf_rn(float a, float b, float c) { return fmaf(a, b, c); }
inline double __dadd_rn(double a, double b) {
  volatile double r = a + b;
  return r;
}
inline double __dmul_rn(double a, double b) {
  volatile double r = a * b;
  return r;
}
inline double __fma_rn(double a, double b, double c) { return fma(a, b, c); }
inline float __saturatef(float x) { return x < 0.0f ? 0.0f : (x > 1.0f ? 1.0f : x); }
inline unsigned __float_as_uint(float x) { return std::bit_cast<unsigned>(x); }
inline float __uint_as_float(unsigned u) { return std::bit_cast<float>(u); }
inline int __float_as_int(float x) { return std::bit_cast<int>(x); }
inline float __int_as_float(int i) { return std::bit_cast<float>(i); }
inline int __popc(unsigned x) { return __builtin_popcount(x); }
inline int __popcll(unsigned long long x) { return __builtin_popcountll(x); }
inline int __clz(int x) { return x == 0 ? 32 : __builtin_clz(static_cast<unsigned>(x)); }
inline int __ffs(int x) { return __builtin_ffs(x); }
inline unsigned __umulhi(unsigned a, unsigned b) {
  return static_cast<unsigned>((static_cast<uint64_t>(a) * b) >> 32);
}
inline unsigned long long __umul64hi(unsigned long long a, unsigned long long b) {
  __extension__ using u128 = unsigned __int128;
  return static_cast<unsigned long long>((static_cast<u128>(a) * b) >> 64);
}
template <class T>
inline T __ldg(const T* p) {
  return *p;
}
using std::isfinite;
using std::isinf;
using std::isnan;

// ---- Atomics (blocks run concurrently on several OS threads) ----
template <class T>
inline T atomicAdd(T* p, T v) {
  if constexpr (std::is_integral_v<T>) {
    return __atomic_fetch_add(p, v, __ATOMIC_RELAXED);
  } else {
    T old = __atomic_load_n(p, __ATOMIC_RELAXED);
    T desired = old + v;
    while (!__atomic_compare_exchange(p, &old, &desired, true, __ATOMIC_RELAXED, __ATOMIC_RELAXED))
      desired = old + v;
    return old;
  }
}
template <class T>
inline T atomicExch(T* p, T v) {
  T old;
  __atomic_exchange(p, &v, &old, __ATOMIC_RELAXED);
  return old;
}
template <class T>
inline T atomicCAS(T* p, T compare, T v) {
  __atomic_compare_exchange(p, &compare, &v, false, __ATOMIC_RELAXED, __ATOMIC_RELAXED);
  return compare;
}
template <class T>
inline T atomicMax(T* p, T v) {
  T old = __atomic_load_n(p, __ATOMIC_RELAXED);
  while (old < v &&
         !__atomic_compare_exchange_n(p, &old, v, true, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
  }
  return old;
}
template <class T>
inline T atomicMin(T* p, T v) {
  T old = __atomic_load_n(p, __ATOMIC_RELAXED);
  while (old > v &&
         !__atomic_compare_exchange_n(p, &old, v, true, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
  }
  return old;
}
inline void __threadfence() { __atomic_thread_fence(__ATOMIC_SEQ_CST); }
inline void __threadfence_block() { __atomic_thread_fence(__ATOMIC_SEQ_CST); }

#endif  // !CUEMU_INTERNAL
