// Fiber stacks and context switches for the emulated CUDA threads (fiber.hpp).
#include "fiber.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#define CUEMU_ASAN 1
#else
#define CUEMU_ASAN 0
#endif

#if !defined(__x86_64__)
#error "the CUDA emulation's fibers are written for x86-64 (add a context switch for this CPU)"
#endif

// cuemu_swap_context(void** save_sp, void* new_sp): pushes the callee-saved registers, MXCSR
// and the x87 control word, stores the stack pointer, loads the other one and pops its state.
// A new fiber's stack is laid out so that the final `ret` enters cuemu_fiber_trampoline,
// which calls r12(r13).
asm(R"(
  .pushsection .text
  .globl cuemu_swap_context
  .type cuemu_swap_context, @function
cuemu_swap_context:
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  subq $8, %rsp
  stmxcsr (%rsp)
  fnstcw 4(%rsp)
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  ldmxcsr (%rsp)
  fldcw 4(%rsp)
  addq $8, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
  .size cuemu_swap_context, .-cuemu_swap_context

  .globl cuemu_fiber_trampoline
  .type cuemu_fiber_trampoline, @function
cuemu_fiber_trampoline:
  movq %r13, %rdi
  callq *%r12
  ud2
  .size cuemu_fiber_trampoline, .-cuemu_fiber_trampoline
  .popsection
)");

extern "C" void cuemu_swap_context(void** save_sp, void* new_sp);
extern "C" void cuemu_fiber_trampoline();

namespace cuemu::detail {
namespace {
std::size_t page_bytes() {
  static const std::size_t p = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
  return p;
}
}  // namespace

void prepare_fiber(Fiber& f, std::size_t stack_bytes, void (*fn)(void*), void* arg) {
  const std::size_t page = page_bytes();
  if (!f.stack || f.stack_bytes != stack_bytes) {
    if (f.stack) munmap(f.stack, f.stack_bytes + page);
    void* m = mmap(nullptr, stack_bytes + page, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
    if (m == MAP_FAILED) {
      std::perror("CUDA emulation: cannot map a fiber stack");
      std::abort();
    }
    mprotect(m, page, PROT_NONE);  // overflow faults instead of corrupting a neighbour
    f.stack = static_cast<char*>(m);
    f.stack_bytes = stack_bytes;
  }
#if CUEMU_ASAN
  // A reused stack may hold the redzones of frames that never returned (a fiber abandoned
  // after a device fault): clear them, or the next fiber's frames trip over them.
  __asan_unpoison_memory_region(f.stack + page, stack_bytes);
#endif
  const uintptr_t top = reinterpret_cast<uintptr_t>(f.stack + page + stack_bytes) & ~uintptr_t{15};
  uint64_t* sp = reinterpret_cast<uint64_t*>(top);
  *--sp = reinterpret_cast<uint64_t>(&cuemu_fiber_trampoline);  // return address
  *--sp = 0;                                                    // rbp
  *--sp = 0;                                                    // rbx
  *--sp = reinterpret_cast<uint64_t>(fn);                       // r12
  *--sp = reinterpret_cast<uint64_t>(arg);                      // r13
  *--sp = 0;                                                    // r14
  *--sp = 0;                                                    // r15
  *--sp = 0x1F80u | (uint64_t{0x037F} << 32);                   // MXCSR, x87 control word
  f.sp = sp;
  f.asan_fake_stack = nullptr;
  f.asan_bottom = f.stack + page;
  f.asan_size = stack_bytes;
}

void switch_fiber(Fiber& from, Fiber& to, bool exiting) {
#if CUEMU_ASAN
  __sanitizer_start_switch_fiber(exiting ? nullptr : &from.asan_fake_stack, to.asan_bottom,
                                 to.asan_size);
#else
  (void)exiting;
#endif
  cuemu_swap_context(&from.sp, to.sp);
#if CUEMU_ASAN
  // Resumed (as `from`): `to` is whatever switched back, its bounds are not needed.
  __sanitizer_finish_switch_fiber(from.asan_fake_stack, nullptr, nullptr);
#endif
}

void fiber_started(Fiber& from) {
#if CUEMU_ASAN
  __sanitizer_finish_switch_fiber(nullptr, &from.asan_bottom, &from.asan_size);
#else
  (void)from;
#endif
}

}  // namespace cuemu::detail
