// Fibers for the emulated CUDA threads: a stack of their own and a context switch that saves
// only what the System V ABI requires (no signal-mask system call, unlike swapcontext), with
// AddressSanitizer told about every switch.
#pragma once

#include <cstddef>

namespace cuemu::detail {

struct Fiber {
  void* sp = nullptr;     // saved stack pointer while switched out
  char* stack = nullptr;  // mapping (guard page first), null for an OS thread's own stack
  std::size_t stack_bytes = 0;
  void* asan_fake_stack = nullptr;
  const void* asan_bottom = nullptr;  // for an OS thread: its stack, learnt at the first switch
  std::size_t asan_size = 0;
};

// Sets `f` up to run fn(arg) on its own stack at the next switch into it.
void prepare_fiber(Fiber& f, std::size_t stack_bytes, void (*fn)(void*), void* arg);
// Saves the running context into `from` and resumes `to`. `exiting`: `from` will never run
// again (its sanitizer state is released).
void switch_fiber(Fiber& from, Fiber& to, bool exiting);
// First call on a new fiber's stack; `from` is the context that switched into it.
void fiber_started(Fiber& from);

}  // namespace cuemu::detail
