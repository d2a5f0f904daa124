// The shared-memory race check's hooks. The emulated kernels' translation units are compiled
// with -fsanitize=thread (cmake/CudaEmulation.cmake) only for its instrumentation: GCC then
// calls __tsan_readN/__tsan_writeN before every memory access. ThreadSanitizer's runtime is
// not linked; these definitions replace it: accesses to a block's shared memory go to
// detail::shared_access, atomics are performed, everything else is ignored.
#include <cstddef>
#include <cstdint>

#include "emulator.hpp"

namespace {
inline void on_access(const void* p, std::size_t n, bool write, const void* pc) {
  if (cuemu::detail::racecheck_enabled()) cuemu::detail::shared_access(p, n, write, pc);
}
#define CUEMU_PC __builtin_return_address(0)
}  // namespace

extern "C" {

void __tsan_init() {}
void __tsan_func_entry(void*) {}
void __tsan_func_exit() {}
void __tsan_vptr_update(void**, void*) {}
void __tsan_vptr_read(void**) {}
void __tsan_read_range(void* p, std::size_t n) { on_access(p, n, false, CUEMU_PC); }
void __tsan_write_range(void* p, std::size_t n) { on_access(p, n, true, CUEMU_PC); }

#define CUEMU_TSAN_ACCESS(N)                                                            \
  void __tsan_read##N(void* p) { on_access(p, N, false, CUEMU_PC); }                    \
  void __tsan_write##N(void* p) { on_access(p, N, true, CUEMU_PC); }                    \
  void __tsan_unaligned_read##N(void* p) { on_access(p, N, false, CUEMU_PC); }          \
  void __tsan_unaligned_write##N(void* p) { on_access(p, N, true, CUEMU_PC); }          \
  void __tsan_volatile_read##N(void* p) { on_access(p, N, false, CUEMU_PC); }           \
  void __tsan_volatile_write##N(void* p) { on_access(p, N, true, CUEMU_PC); }           \
  void __tsan_unaligned_volatile_read##N(void* p) { on_access(p, N, false, CUEMU_PC); } \
  void __tsan_unaligned_volatile_write##N(void* p) { on_access(p, N, true, CUEMU_PC); }
CUEMU_TSAN_ACCESS(1)
CUEMU_TSAN_ACCESS(2)
CUEMU_TSAN_ACCESS(4)
CUEMU_TSAN_ACCESS(8)
CUEMU_TSAN_ACCESS(16)
#undef CUEMU_TSAN_ACCESS

// Atomics (memory orders are ignored: sequentially consistent is always correct). GCC passes
// the order as an int.
#define CUEMU_TSAN_ATOMIC(BITS, T)                                                          \
  T __tsan_atomic##BITS##_load(const volatile T* a, int) {                                  \
    return __atomic_load_n(a, __ATOMIC_SEQ_CST);                                            \
  }                                                                                         \
  void __tsan_atomic##BITS##_store(volatile T* a, T v, int) {                               \
    __atomic_store_n(a, v, __ATOMIC_SEQ_CST);                                               \
  }                                                                                         \
  T __tsan_atomic##BITS##_exchange(volatile T* a, T v, int) {                               \
    return __atomic_exchange_n(a, v, __ATOMIC_SEQ_CST);                                     \
  }                                                                                         \
  T __tsan_atomic##BITS##_fetch_add(volatile T* a, T v, int) {                              \
    return __atomic_fetch_add(a, v, __ATOMIC_SEQ_CST);                                      \
  }                                                                                         \
  T __tsan_atomic##BITS##_fetch_sub(volatile T* a, T v, int) {                              \
    return __atomic_fetch_sub(a, v, __ATOMIC_SEQ_CST);                                      \
  }                                                                                         \
  T __tsan_atomic##BITS##_fetch_and(volatile T* a, T v, int) {                              \
    return __atomic_fetch_and(a, v, __ATOMIC_SEQ_CST);                                      \
  }                                                                                         \
  T __tsan_atomic##BITS##_fetch_or(volatile T* a, T v, int) {                               \
    return __atomic_fetch_or(a, v, __ATOMIC_SEQ_CST);                                       \
  }                                                                                         \
  T __tsan_atomic##BITS##_fetch_xor(volatile T* a, T v, int) {                              \
    return __atomic_fetch_xor(a, v, __ATOMIC_SEQ_CST);                                      \
  }                                                                                         \
  T __tsan_atomic##BITS##_fetch_nand(volatile T* a, T v, int) {                             \
    return __atomic_fetch_nand(a, v, __ATOMIC_SEQ_CST);                                     \
  }                                                                                         \
  int __tsan_atomic##BITS##_compare_exchange_strong(volatile T* a, T* c, T v, int, int) {   \
    return __atomic_compare_exchange_n(a, c, v, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST); \
  }                                                                                         \
  int __tsan_atomic##BITS##_compare_exchange_weak(volatile T* a, T* c, T v, int, int) {     \
    return __atomic_compare_exchange_n(a, c, v, true, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);  \
  }                                                                                         \
  T __tsan_atomic##BITS##_compare_exchange_val(volatile T* a, T c, T v, int, int) {         \
    __atomic_compare_exchange_n(a, &c, v, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);       \
    return c;                                                                               \
  }
CUEMU_TSAN_ATOMIC(8, uint8_t)
CUEMU_TSAN_ATOMIC(16, uint16_t)
CUEMU_TSAN_ATOMIC(32, uint32_t)
CUEMU_TSAN_ATOMIC(64, uint64_t)
#undef CUEMU_TSAN_ATOMIC

void __tsan_atomic_thread_fence(int) { __atomic_thread_fence(__ATOMIC_SEQ_CST); }
void __tsan_atomic_signal_fence(int) { __atomic_signal_fence(__ATOMIC_SEQ_CST); }

}  // extern "C"
