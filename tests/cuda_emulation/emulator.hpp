// Internals shared by the emulated runtime's files (not included by emulated sources).
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>

namespace cuemu::detail {

// One kernel launch, ready to execute.
struct GridJob {
  dim3 grid, block;
  std::size_t dynamic_shared = 0;
  std::size_t shared_limit = 0;         // static + dynamic shared memory the device allows
  std::size_t static_shared_limit = 0;  // static shared memory the device allows (48 KB)
  std::string kernel;                   // name, for messages
  std::string launched_at;              // file:line of the launch
  std::function<void()> body;           // one CUDA thread: kernel(params...)
};

// Executes every block of the grid now (on the calling thread and the worker pool); returns
// the empty string, or the first device-side error (deadlock, misuse of a collective, ...).
std::string execute_grid(const GridJob& job);

// Work on a stream, executed in order when the stream is synchronised (or recorded into the
// graph of a capturing stream). Returns the stream's error (invalid handle, capture misuse).
cudaError_t enqueue(cudaStream_t stream, std::function<void()> op, const char* what);
// Marks the process's CUDA context as failed (a kernel fault): every later call returns it.
void set_sticky_error(cudaError_t code, const std::string& message);
cudaError_t record_error(cudaError_t code);  // the thread's last error; returns code
int current_device();
// True when [p, p + bytes) lies inside one device allocation.
bool is_device_range(const void* p, std::size_t bytes);

// The shared-memory race check (racecheck.cpp's instrumentation hooks call it for every load
// and store of the emulated kernels' translation units; CUEMU_RACECHECK=0 turns it off).
bool racecheck_enabled();
void shared_access(const void* p, std::size_t bytes, bool write, const void* pc);

}  // namespace cuemu::detail
