// The emulated CUDA runtime API: devices with real GPUs' properties, memory, streams whose work
// waits for a synchronisation point (as on a GPU, a missing synchronisation reads stale data),
// events, graph capture and replay, function attributes, launches and CUDA's error codes.
// One process-wide lock orders everything; kernels run when their stream is flushed.
#include <cuda_runtime.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#define CUEMU_INTERNAL 1
#include "cuda_emulation.hpp"
#include "emulator.hpp"

// Opaque handle types of the runtime API.
struct CUstream_st;
struct CUevent_st;
struct CUgraph_st;
struct CUgraphExec_st;

namespace cuemu::detail {
namespace {

using Clock = std::chrono::steady_clock;

struct Op {
  uint64_t seq = 0;
  std::function<void()> run;
  const char* what = "";
};

}  // namespace
}  // namespace cuemu::detail

struct CUgraph_st {
  std::vector<cuemu::detail::Op> ops;
};
struct CUgraphExec_st {
  std::vector<cuemu::detail::Op> ops;
};
struct CUstream_st {
  int device = 0;
  unsigned flags = 0;
  bool legacy = false;
  std::deque<cuemu::detail::Op> queue;
  // Capture.
  bool capturing = false;
  bool invalidated = false;
  cudaStreamCaptureMode mode = cudaStreamCaptureModeGlobal;
  std::thread::id capture_thread;
  std::unique_ptr<CUgraph_st> graph;
};
struct CUevent_st {
  int device = 0;
  CUstream_st* stream = nullptr;  // last record
  uint64_t record_seq = 0;
  bool recorded = false, complete = false;
  std::chrono::steady_clock::time_point time{};
};

namespace cuemu::detail {
namespace {

// ---- Devices ----
struct DeviceModelInfo {
  const char* key;
  const char* name;
  int major, minor, sms;
  int smem_per_block_optin, smem_per_sm, threads_per_sm, blocks_per_sm;
  std::size_t memory;
  int l2;
};
// Data sheet values (CUDA programming guide, compute capability tables).
const DeviceModelInfo kModels[] = {
    {"h200", "NVIDIA H200 (emulated)", 9, 0, 132, 232448, 233472, 2048, 32, 150011101184ull,
     52428800},
    {"h100", "NVIDIA H100 80GB HBM3 (emulated)", 9, 0, 132, 232448, 233472, 2048, 32,
     85520809984ull, 52428800},
    {"a100", "NVIDIA A100-SXM4-80GB (emulated)", 8, 0, 108, 166912, 167936, 2048, 32,
     85198045184ull, 41943040},
    {"sm89", "NVIDIA L40S (emulated)", 8, 9, 142, 101376, 102400, 1536, 24, 48305799168ull,
     100663296},
    // A card this project's binaries carry no image for (built for sm_80 and up).
    {"t4", "Tesla T4 (emulated)", 7, 5, 40, 65536, 65536, 1024, 16, 15642329088ull, 4194304},
};

std::vector<const DeviceModelInfo*> load_devices() {
  const char* env = std::getenv("CUEMU_DEVICES");
  std::string list = env ? env : "h200,h200";
  std::vector<const DeviceModelInfo*> out;
  if (list == "none") return out;
  std::size_t pos = 0;
  while (pos <= list.size()) {
    const std::size_t comma = std::min(list.find(',', pos), list.size());
    const std::string key = list.substr(pos, comma - pos);
    const DeviceModelInfo* found = nullptr;
    for (const DeviceModelInfo& m : kModels)
      if (key == m.key) found = &m;
    if (!found) {
      std::fprintf(
          stderr,
          "CUEMU_DEVICES: unknown device '%s' (known: h200, h100, a100, sm89, t4, or none)\n",
          key.c_str());
      std::abort();
    }
    out.push_back(found);
    pos = comma + 1;
  }
  return out;
}

const std::vector<const DeviceModelInfo*>& devices() {
  static const std::vector<const DeviceModelInfo*> d = load_devices();
  return d;
}

cudaDeviceProp make_properties(const DeviceModelInfo& m) {
  cudaDeviceProp p;
  std::memset(&p, 0, sizeof p);
  std::snprintf(p.name, sizeof p.name, "%s", m.name);
  p.totalGlobalMem = m.memory;
  p.sharedMemPerBlock = 49152;
  p.regsPerBlock = 65536;
  p.warpSize = 32;
  p.memPitch = 2147483647;
  p.maxThreadsPerBlock = 1024;
  p.maxThreadsDim[0] = 1024;
  p.maxThreadsDim[1] = 1024;
  p.maxThreadsDim[2] = 64;
  p.maxGridSize[0] = 2147483647;
  p.maxGridSize[1] = 65535;
  p.maxGridSize[2] = 65535;
  p.totalConstMem = 65536;
  p.major = m.major;
  p.minor = m.minor;
  p.textureAlignment = 512;
  p.multiProcessorCount = m.sms;
  p.integrated = 0;
  p.canMapHostMemory = 1;
  p.concurrentKernels = 1;
  p.l2CacheSize = m.l2;
  p.maxThreadsPerMultiProcessor = m.threads_per_sm;
  p.unifiedAddressing = 1;
  p.sharedMemPerMultiprocessor = static_cast<std::size_t>(m.smem_per_sm);
  p.regsPerMultiprocessor = 65536;
  p.managedMemory = 1;
  p.sharedMemPerBlockOptin = static_cast<std::size_t>(m.smem_per_block_optin);
  p.maxBlocksPerMultiProcessor = m.blocks_per_sm;
  p.reservedSharedMemPerBlock = 1024;
  return p;
}

// ---- State ----
std::recursive_mutex g_mu;
uint64_t g_seq = 1;
cudaError_t g_sticky = cudaSuccess;
thread_local cudaError_t tl_last = cudaSuccess;
thread_local int tl_device = 0;

struct Allocation {
  std::size_t bytes;
  int device;
  bool pinned_host;
};
std::map<uintptr_t, Allocation> g_allocs;
std::set<CUstream_st*> g_streams;
std::vector<std::unique_ptr<CUstream_st>>& legacy_streams() {
  static std::vector<std::unique_ptr<CUstream_st>> v;
  return v;
}
// Kernel attributes set with cudaFuncSetAttribute, per (device, function).
std::map<std::pair<int, const void*>, int> g_max_dynamic_shared;

using Lock = std::lock_guard<std::recursive_mutex>;

cudaError_t fail(cudaError_t e) {
  tl_last = e;
  return e;
}

CUstream_st* legacy(int device) {
  auto& v = legacy_streams();
  if (v.empty())
    for (int d = 0; d < static_cast<int>(devices().size()); ++d) {
      v.push_back(std::make_unique<CUstream_st>());
      v.back()->device = d;
      v.back()->legacy = true;
    }
  return v[device].get();
}

// A stream handle (null, cudaStreamLegacy, cudaStreamPerThread or a created stream), or null
// when the handle is unknown.
CUstream_st* resolve(cudaStream_t s) {
  if (s == nullptr || s == cudaStreamLegacy || s == cudaStreamPerThread) return legacy(tl_device);
  return g_streams.count(s) ? s : nullptr;
}

// True for a created stream that still exists or a legacy default stream.
bool alive(const CUstream_st* s) {
  if (g_streams.count(const_cast<CUstream_st*>(s))) return true;
  for (const auto& l : legacy_streams())
    if (l.get() == s) return true;
  return false;
}

const Allocation* find_allocation(const void* p, uintptr_t* base = nullptr) {
  const uintptr_t a = reinterpret_cast<uintptr_t>(p);
  auto it = g_allocs.upper_bound(a);
  if (it == g_allocs.begin()) return nullptr;
  --it;
  if (a >= it->first + std::max<std::size_t>(it->second.bytes, 1)) return nullptr;
  if (base) *base = it->first;
  return &it->second;
}

bool in_allocation(const void* p, std::size_t bytes, bool pinned) {
  uintptr_t base = 0;
  const Allocation* a = find_allocation(p, &base);
  return a && a->pinned_host == pinned && reinterpret_cast<uintptr_t>(p) + bytes <= base + a->bytes;
}

// ---- Execution ----
void flush(CUstream_st* s, uint64_t before);

void run_op(CUstream_st* s, Op& op) {
  // The legacy default stream and blocking streams wait for each other's earlier work.
  if (s->legacy) {
    for (CUstream_st* b : g_streams)
      if (b->device == s->device && !(b->flags & cudaStreamNonBlocking)) flush(b, op.seq);
  } else if (!(s->flags & cudaStreamNonBlocking)) {
    flush(legacy(s->device), op.seq);
  }
  op.run();
}

// Runs the stream's work enqueued before sequence number `before`.
void flush(CUstream_st* s, uint64_t before) {
  while (!s->queue.empty() && s->queue.front().seq < before) {
    Op op = std::move(s->queue.front());
    s->queue.pop_front();
    run_op(s, op);
  }
}

void flush_device(int device) {
  for (;;) {  // oldest work first, across every stream of the device
    CUstream_st* next = nullptr;
    auto consider = [&](CUstream_st* s) {
      if (s->device == device && !s->queue.empty() &&
          (!next || s->queue.front().seq < next->queue.front().seq))
        next = s;
    };
    consider(legacy(device));
    for (CUstream_st* s : g_streams) consider(s);
    if (!next) return;
    flush(next, next->queue.front().seq + 1);
  }
}

// A call CUDA forbids while a stream of this thread (or any, in global mode) is capturing:
// invalidates those captures and returns true.
bool capture_forbids_call() {
  bool hit = false;
  for (CUstream_st* s : g_streams)
    if (s->capturing && s->mode != cudaStreamCaptureModeRelaxed &&
        (s->mode == cudaStreamCaptureModeGlobal ||
         s->capture_thread == std::this_thread::get_id())) {
      s->invalidated = true;
      hit = true;
    }
  return hit;
}

cudaError_t enqueue_locked(CUstream_st* s, std::function<void()> fn, const char* what) {
  Op op{g_seq++, std::move(fn), what};
  if (s->capturing) {
    if (!s->invalidated) s->graph->ops.push_back(std::move(op));
    return cudaSuccess;
  }
  s->queue.push_back(std::move(op));
  return cudaSuccess;
}

}  // namespace

cudaError_t enqueue(cudaStream_t stream, std::function<void()> op, const char* what) {
  Lock lock(g_mu);
  if (g_sticky != cudaSuccess) return g_sticky;
  CUstream_st* s = resolve(stream);
  if (!s) return fail(cudaErrorInvalidResourceHandle);
  return enqueue_locked(s, std::move(op), what);
}

std::string g_fault;

void set_sticky_error(cudaError_t code, const std::string& message) {
  std::fprintf(stderr, "CUDA emulation: %s\n", message.c_str());
  if (g_sticky == cudaSuccess) {
    g_sticky = code;
    g_fault = message;
  }
}

cudaError_t record_error(cudaError_t code) { return fail(code); }
int current_device() { return tl_device; }

bool is_device_range(const void* p, std::size_t bytes) {
  Lock lock(g_mu);
  return in_allocation(p, bytes, false);
}

}  // namespace cuemu::detail

using namespace cuemu::detail;  // NOLINT: the C API below is the implementation

namespace {

#define CUEMU_ENTER() \
  Lock lock(g_mu);    \
  if (g_sticky != cudaSuccess) return fail(g_sticky)

cudaError_t check_device(int device) {
  if (devices().empty()) return fail(cudaErrorNoDevice);
  if (device < 0 || device >= static_cast<int>(devices().size()))
    return fail(cudaErrorInvalidDevice);
  return cudaSuccess;
}

enum class Where { kDevice, kPinned, kPageable };
Where where(const void* p) {
  const Allocation* a = find_allocation(p);
  if (!a) return Where::kPageable;
  return a->pinned_host ? Where::kPinned : Where::kDevice;
}

// Validates a copy's pointers against its kind; returns the resolved kind (Default resolved).
cudaError_t check_copy(void* dst, const void* src, std::size_t bytes, cudaMemcpyKind& kind) {
  const Where wd = where(dst), ws = where(src);
  if (kind == cudaMemcpyDefault)
    kind = ws == Where::kDevice
               ? (wd == Where::kDevice ? cudaMemcpyDeviceToDevice : cudaMemcpyDeviceToHost)
               : (wd == Where::kDevice ? cudaMemcpyHostToDevice : cudaMemcpyHostToHost);
  const bool dst_dev = kind == cudaMemcpyHostToDevice || kind == cudaMemcpyDeviceToDevice;
  const bool src_dev = kind == cudaMemcpyDeviceToHost || kind == cudaMemcpyDeviceToDevice;
  if (bytes == 0) return cudaSuccess;
  if (!dst || !src) return cudaErrorInvalidValue;
  if (dst_dev && !in_allocation(dst, bytes, false)) return cudaErrorInvalidValue;
  if (src_dev && !in_allocation(src, bytes, false)) return cudaErrorInvalidValue;
  if (!dst_dev && wd == Where::kDevice) return cudaErrorInvalidValue;
  if (!src_dev && ws == Where::kDevice) return cudaErrorInvalidValue;
  return cudaSuccess;
}

}  // namespace

extern "C" {

// ---- Errors ----
cudaError_t cudaGetLastError() {
  Lock lock(g_mu);
  if (g_sticky != cudaSuccess) return g_sticky;
  const cudaError_t e = tl_last;
  tl_last = cudaSuccess;
  return e;
}

cudaError_t cudaPeekAtLastError() {
  Lock lock(g_mu);
  return g_sticky != cudaSuccess ? g_sticky : tl_last;
}

const char* cudaGetErrorName(cudaError_t e) {
  switch (e) {
#define CUEMU_NAME(x) \
  case x:             \
    return #x;
    CUEMU_NAME(cudaSuccess)
    CUEMU_NAME(cudaErrorInvalidValue)
    CUEMU_NAME(cudaErrorMemoryAllocation)
    CUEMU_NAME(cudaErrorInvalidConfiguration)
    CUEMU_NAME(cudaErrorLaunchFailure)
    CUEMU_NAME(cudaErrorLaunchOutOfResources)
    CUEMU_NAME(cudaErrorInvalidDevice)
    CUEMU_NAME(cudaErrorInvalidResourceHandle)
    CUEMU_NAME(cudaErrorNoDevice)
    CUEMU_NAME(cudaErrorNotReady)
    CUEMU_NAME(cudaErrorNotSupported)
    CUEMU_NAME(cudaErrorIllegalState)
    CUEMU_NAME(cudaErrorStreamCaptureUnsupported)
    CUEMU_NAME(cudaErrorStreamCaptureInvalidated)
    CUEMU_NAME(cudaErrorStreamCaptureImplicit)
    CUEMU_NAME(cudaErrorInvalidDeviceFunction)
    CUEMU_NAME(cudaErrorNoKernelImageForDevice)
    CUEMU_NAME(cudaErrorInsufficientDriver)
#undef CUEMU_NAME
    default:
      return "cudaErrorUnknown";
  }
}

const char* cudaGetErrorString(cudaError_t e) {
  switch (e) {
    case cudaSuccess:
      return "no error";
    case cudaErrorInvalidValue:
      return "invalid argument";
    case cudaErrorMemoryAllocation:
      return "out of memory";
    case cudaErrorInvalidConfiguration:
      return "invalid configuration argument";
    case cudaErrorLaunchFailure:
      return "unspecified launch failure";
    case cudaErrorLaunchOutOfResources:
      return "too many resources requested for launch";
    case cudaErrorInvalidDevice:
      return "invalid device ordinal";
    case cudaErrorInvalidResourceHandle:
      return "invalid resource handle";
    case cudaErrorNoDevice:
      return "no CUDA-capable device is detected";
    case cudaErrorNotReady:
      return "device not ready";
    case cudaErrorNotSupported:
      return "operation not supported";
    case cudaErrorIllegalState:
      return "the operation cannot be performed in the present state";
    case cudaErrorStreamCaptureUnsupported:
      return "operation not permitted when stream is capturing";
    case cudaErrorStreamCaptureInvalidated:
      return "operation failed due to a previous error during capture";
    default:
      return cudaGetErrorName(e);
  }
}

// ---- Devices ----
cudaError_t cudaGetDeviceCount(int* count) {
  Lock lock(g_mu);
  if (!count) return fail(cudaErrorInvalidValue);
  *count = static_cast<int>(devices().size());
  return *count == 0 ? fail(cudaErrorNoDevice) : cudaSuccess;
}

cudaError_t cudaGetDevice(int* device) {
  Lock lock(g_mu);
  if (!device) return fail(cudaErrorInvalidValue);
  if (devices().empty()) return fail(cudaErrorNoDevice);
  *device = tl_device;
  return cudaSuccess;
}

cudaError_t cudaSetDevice(int device) {
  CUEMU_ENTER();
  if (const cudaError_t e = check_device(device)) return e;
  tl_device = device;
  return cudaSuccess;
}

cudaError_t cudaGetDeviceProperties(cudaDeviceProp* prop, int device) {
  CUEMU_ENTER();
  if (!prop) return fail(cudaErrorInvalidValue);
  if (const cudaError_t e = check_device(device)) return e;
  *prop = make_properties(*devices()[device]);
  return cudaSuccess;
}

cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr attr, int device) {
  CUEMU_ENTER();
  if (!value) return fail(cudaErrorInvalidValue);
  if (const cudaError_t e = check_device(device)) return e;
  const cudaDeviceProp p = make_properties(*devices()[device]);
  switch (attr) {
    case cudaDevAttrMaxThreadsPerBlock:
      *value = p.maxThreadsPerBlock;
      break;
    case cudaDevAttrMaxSharedMemoryPerBlock:
      *value = static_cast<int>(p.sharedMemPerBlock);
      break;
    case cudaDevAttrMaxSharedMemoryPerBlockOptin:
      *value = static_cast<int>(p.sharedMemPerBlockOptin);
      break;
    case cudaDevAttrMaxSharedMemoryPerMultiprocessor:
      *value = static_cast<int>(p.sharedMemPerMultiprocessor);
      break;
    case cudaDevAttrMultiProcessorCount:
      *value = p.multiProcessorCount;
      break;
    case cudaDevAttrMaxThreadsPerMultiProcessor:
      *value = p.maxThreadsPerMultiProcessor;
      break;
    case cudaDevAttrMaxBlocksPerMultiprocessor:
      *value = p.maxBlocksPerMultiProcessor;
      break;
    case cudaDevAttrMaxRegistersPerBlock:
      *value = p.regsPerBlock;
      break;
    case cudaDevAttrMaxRegistersPerMultiprocessor:
      *value = p.regsPerMultiprocessor;
      break;
    case cudaDevAttrComputeCapabilityMajor:
      *value = p.major;
      break;
    case cudaDevAttrComputeCapabilityMinor:
      *value = p.minor;
      break;
    case cudaDevAttrWarpSize:
      *value = p.warpSize;
      break;
    case cudaDevAttrL2CacheSize:
      *value = p.l2CacheSize;
      break;
    default:
      std::fprintf(stderr, "CUDA emulation: cudaDeviceGetAttribute(%d) is not modelled\n",
                   static_cast<int>(attr));
      return fail(cudaErrorNotSupported);
  }
  return cudaSuccess;
}

cudaError_t cudaDriverGetVersion(int* v) {
  if (!v) return fail(cudaErrorInvalidValue);
  *v = CUDART_VERSION;
  return cudaSuccess;
}

cudaError_t cudaRuntimeGetVersion(int* v) {
  if (!v) return fail(cudaErrorInvalidValue);
  *v = CUDART_VERSION;
  return cudaSuccess;
}

cudaError_t cudaDeviceSynchronize() {
  CUEMU_ENTER();
  if (capture_forbids_call()) return fail(cudaErrorStreamCaptureUnsupported);
  flush_device(tl_device);
  return g_sticky;
}

// Clears a failed context (the emulator's tests provoke faults on purpose): the fault is
// forgotten and the current device's pending work dropped. Allocations stay valid.
cudaError_t cudaDeviceReset() {
  Lock lock(g_mu);
  g_sticky = cudaSuccess;
  g_fault.clear();
  tl_last = cudaSuccess;
  legacy(tl_device)->queue.clear();
  for (CUstream_st* s : g_streams)
    if (s->device == tl_device) s->queue.clear();
  return cudaSuccess;
}

cudaError_t cudaMemGetInfo(size_t* free_bytes, size_t* total) {
  CUEMU_ENTER();
  const cudaDeviceProp p = make_properties(*devices()[tl_device]);
  std::size_t used = 0;
  for (const auto& [base, a] : g_allocs)
    if (!a.pinned_host && a.device == tl_device) used += a.bytes;
  if (total) *total = p.totalGlobalMem;
  if (free_bytes) *free_bytes = p.totalGlobalMem - std::min(used, p.totalGlobalMem);
  return cudaSuccess;
}

// ---- Memory ----
cudaError_t cudaMalloc(void** ptr, size_t bytes) {
  CUEMU_ENTER();
  if (!ptr) return fail(cudaErrorInvalidValue);
  if (capture_forbids_call()) return fail(cudaErrorStreamCaptureUnsupported);
  *ptr = nullptr;
  if (bytes == 0) return cudaSuccess;
  if (bytes > make_properties(*devices()[tl_device]).totalGlobalMem)
    return fail(cudaErrorMemoryAllocation);
  void* p = nullptr;
  // Its own heap block of the exact size (AddressSanitizer sees overruns), 256-byte aligned as
  // cudaMalloc's, filled with 0xff bytes (NaN) so that uninitialised reads show.
  if (posix_memalign(&p, 256, bytes) != 0) return fail(cudaErrorMemoryAllocation);
  std::memset(p, 0xff, bytes);
  g_allocs[reinterpret_cast<uintptr_t>(p)] = {bytes, tl_device, false};
  *ptr = p;
  return cudaSuccess;
}

cudaError_t cudaFree(void* p) {
  CUEMU_ENTER();
  if (!p) return cudaSuccess;
  if (capture_forbids_call()) return fail(cudaErrorStreamCaptureUnsupported);
  auto it = g_allocs.find(reinterpret_cast<uintptr_t>(p));
  if (it == g_allocs.end() || it->second.pinned_host) return fail(cudaErrorInvalidValue);
  flush_device(it->second.device);  // cudaFree synchronises the device
  g_allocs.erase(it);
  std::free(p);
  return g_sticky;
}

cudaError_t cudaMallocHost(void** ptr, size_t bytes) {
  CUEMU_ENTER();
  if (!ptr) return fail(cudaErrorInvalidValue);
  if (capture_forbids_call()) return fail(cudaErrorStreamCaptureUnsupported);
  void* p = nullptr;
  if (posix_memalign(&p, 256, std::max<size_t>(bytes, 1)) != 0)
    return fail(cudaErrorMemoryAllocation);
  g_allocs[reinterpret_cast<uintptr_t>(p)] = {bytes, tl_device, true};
  *ptr = p;
  return cudaSuccess;
}

cudaError_t cudaHostAlloc(void** ptr, size_t bytes, unsigned int) {
  return cudaMallocHost(ptr, bytes);
}

cudaError_t cudaFreeHost(void* p) {
  CUEMU_ENTER();
  if (!p) return cudaSuccess;
  auto it = g_allocs.find(reinterpret_cast<uintptr_t>(p));
  if (it == g_allocs.end() || !it->second.pinned_host) return fail(cudaErrorInvalidValue);
  flush_device(it->second.device);
  g_allocs.erase(it);
  std::free(p);
  return g_sticky;
}

// Copies a pageable source now (the caller may reuse it at once) and enqueues its landing.
static cudaError_t enqueue_staged_copy(CUstream_st* s, void* dst, const void* src, size_t bytes) {
  auto staged = std::make_shared<std::vector<unsigned char>>(
      static_cast<const unsigned char*>(src), static_cast<const unsigned char*>(src) + bytes);
  return enqueue_locked(
      s, [dst, staged] { std::memcpy(dst, staged->data(), staged->size()); }, "memcpy");
}

cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind,
                            cudaStream_t stream) {
  CUEMU_ENTER();
  CUstream_st* s = resolve(stream);
  if (!s) return fail(cudaErrorInvalidResourceHandle);
  if (const cudaError_t e = check_copy(dst, src, bytes, kind)) return fail(e);
  if (bytes == 0) return cudaSuccess;
  const bool pageable_src = kind == cudaMemcpyHostToDevice && where(src) == Where::kPageable;
  const bool pageable_dst = kind == cudaMemcpyDeviceToHost && where(dst) == Where::kPageable;
  if (pageable_src && !s->capturing) {
    // Pageable sources are staged at the call: the caller may reuse them at once.
    return enqueue_staged_copy(s, dst, src, bytes);
  }
  enqueue_locked(
      s, [dst, src, bytes] { std::memcpy(dst, src, bytes); }, "memcpy");
  // Into pageable memory the call returns once the copy is done.
  if (pageable_dst && !s->capturing) flush(s, g_seq);
  return g_sticky;
}

cudaError_t cudaMemcpy(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind) {
  CUEMU_ENTER();
  if (capture_forbids_call()) return fail(cudaErrorStreamCaptureUnsupported);
  if (const cudaError_t e = check_copy(dst, src, bytes, kind)) return fail(e);
  if (bytes == 0) return cudaSuccess;
  CUstream_st* s = legacy(tl_device);
  if (kind == cudaMemcpyHostToDevice && where(src) == Where::kPageable) {
    // CUDA synchronises the stream, stages the source and returns; the DMA to the device may
    // complete later, so work on a non-blocking stream must not assume it has landed.
    flush(s, g_seq);
    enqueue_staged_copy(s, dst, src, bytes);
    return cudaSuccess;
  }
  enqueue_locked(
      s, [dst, src, bytes] { std::memcpy(dst, src, bytes); }, "memcpy");
  if (kind != cudaMemcpyDeviceToDevice) flush(s, g_seq);  // D2D is asynchronous
  return g_sticky;
}

cudaError_t cudaMemsetAsync(void* dst, int value, size_t bytes, cudaStream_t stream) {
  CUEMU_ENTER();
  CUstream_st* s = resolve(stream);
  if (!s) return fail(cudaErrorInvalidResourceHandle);
  if (bytes == 0) return cudaSuccess;
  if (!in_allocation(dst, bytes, false)) return fail(cudaErrorInvalidValue);
  return enqueue_locked(
      s, [dst, value, bytes] { std::memset(dst, value, bytes); }, "memset");
}

cudaError_t cudaMemset(void* dst, int value, size_t bytes) {
  CUEMU_ENTER();
  if (capture_forbids_call()) return fail(cudaErrorStreamCaptureUnsupported);
  // Asynchronous with respect to the host for device memory, on the legacy stream.
  return cudaMemsetAsync(dst, value, bytes, nullptr);
}

cudaError_t cudaPointerGetAttributes(cudaPointerAttributes* attr, const void* p) {
  CUEMU_ENTER();
  if (!attr) return fail(cudaErrorInvalidValue);
  std::memset(attr, 0, sizeof *attr);
  const Allocation* a = find_allocation(p);
  attr->type = !a ? cudaMemoryTypeUnregistered
                  : (a->pinned_host ? cudaMemoryTypeHost : cudaMemoryTypeDevice);
  attr->device = a ? a->device : -1;
  attr->devicePointer = a && !a->pinned_host ? const_cast<void*>(p) : nullptr;
  attr->hostPointer = !a || a->pinned_host ? const_cast<void*>(p) : nullptr;
  return cudaSuccess;
}

// ---- Streams ----
cudaError_t cudaStreamCreateWithFlags(cudaStream_t* stream, unsigned int flags) {
  CUEMU_ENTER();
  if (!stream) return fail(cudaErrorInvalidValue);
  if (const cudaError_t e = check_device(tl_device)) return e;
  auto* s = new CUstream_st();
  s->device = tl_device;
  s->flags = flags;
  g_streams.insert(s);
  *stream = s;
  return cudaSuccess;
}

cudaError_t cudaStreamCreate(cudaStream_t* stream) {
  return cudaStreamCreateWithFlags(stream, cudaStreamDefault);
}

cudaError_t cudaStreamDestroy(cudaStream_t stream) {
  CUEMU_ENTER();
  if (!stream || !g_streams.count(stream)) return fail(cudaErrorInvalidResourceHandle);
  flush(stream, g_seq);  // pending work completes, as on a GPU
  g_streams.erase(stream);
  delete stream;
  return g_sticky;
}

cudaError_t cudaStreamSynchronize(cudaStream_t stream) {
  CUEMU_ENTER();
  CUstream_st* s = resolve(stream);
  if (!s) return fail(cudaErrorInvalidResourceHandle);
  if (s->capturing) {
    s->invalidated = true;
    return fail(cudaErrorStreamCaptureUnsupported);
  }
  if (capture_forbids_call()) return fail(cudaErrorStreamCaptureUnsupported);
  flush(s, g_seq);
  return g_sticky;
}

// The stream's work runs now (the emulator has no background progress), so it is complete.
cudaError_t cudaStreamQuery(cudaStream_t stream) { return cudaStreamSynchronize(stream); }

// The host function runs in the stream's order, when the emulator runs the stream's queue (as
// on a GPU it runs once the work before it is done); it is captured into graphs like a kernel.
cudaError_t cudaLaunchHostFunc(cudaStream_t stream, cudaHostFn_t fn, void* user_data) {
  CUEMU_ENTER();
  if (!fn) return fail(cudaErrorInvalidValue);
  CUstream_st* s = resolve(stream);
  if (!s) return fail(cudaErrorInvalidResourceHandle);
  return enqueue_locked(
      s, [fn, user_data] { fn(user_data); }, "cudaLaunchHostFunc");
}

cudaError_t cudaStreamGetDevice(cudaStream_t stream, int* device) {
  CUEMU_ENTER();
  CUstream_st* s = resolve(stream);
  if (!s || !device) return fail(!s ? cudaErrorInvalidResourceHandle : cudaErrorInvalidValue);
  if (s->capturing) {  // not permitted while the stream captures; the capture is invalidated
    s->invalidated = true;
    return fail(cudaErrorStreamCaptureUnsupported);
  }
  *device = s->device;
  return cudaSuccess;
}

cudaError_t cudaStreamGetFlags(cudaStream_t stream, unsigned int* flags) {
  CUEMU_ENTER();
  CUstream_st* s = resolve(stream);
  if (!s || !flags) return fail(!s ? cudaErrorInvalidResourceHandle : cudaErrorInvalidValue);
  *flags = s->flags;
  return cudaSuccess;
}

cudaError_t cudaStreamIsCapturing(cudaStream_t stream, cudaStreamCaptureStatus* status) {
  CUEMU_ENTER();
  CUstream_st* s = resolve(stream);
  if (!s || !status) return fail(!s ? cudaErrorInvalidResourceHandle : cudaErrorInvalidValue);
  *status = !s->capturing ? cudaStreamCaptureStatusNone
                          : (s->invalidated ? cudaStreamCaptureStatusInvalidated
                                            : cudaStreamCaptureStatusActive);
  return cudaSuccess;
}

cudaError_t cudaStreamBeginCapture(cudaStream_t stream, cudaStreamCaptureMode mode) {
  CUEMU_ENTER();
  CUstream_st* s = resolve(stream);
  if (!s) return fail(cudaErrorInvalidResourceHandle);
  if (s->legacy) return fail(cudaErrorStreamCaptureImplicit);  // the legacy stream cannot capture
  if (s->capturing) return fail(cudaErrorIllegalState);
  s->capturing = true;
  s->invalidated = false;
  s->mode = mode;
  s->capture_thread = std::this_thread::get_id();
  s->graph = std::make_unique<CUgraph_st>();
  return cudaSuccess;
}

cudaError_t cudaStreamEndCapture(cudaStream_t stream, cudaGraph_t* graph) {
  CUEMU_ENTER();
  CUstream_st* s = resolve(stream);
  if (!s || !graph) return fail(!s ? cudaErrorInvalidResourceHandle : cudaErrorInvalidValue);
  if (!s->capturing) return fail(cudaErrorIllegalState);
  s->capturing = false;
  if (s->invalidated) {
    *graph = nullptr;
    s->graph.reset();
    return fail(cudaErrorStreamCaptureInvalidated);
  }
  *graph = s->graph.release();
  return cudaSuccess;
}

// ---- Events ----
cudaError_t cudaEventCreateWithFlags(cudaEvent_t* event, unsigned int) {
  CUEMU_ENTER();
  if (!event) return fail(cudaErrorInvalidValue);
  auto* e = new CUevent_st();
  e->device = tl_device;
  *event = e;
  return cudaSuccess;
}

cudaError_t cudaEventCreate(cudaEvent_t* event) { return cudaEventCreateWithFlags(event, 0); }

cudaError_t cudaEventDestroy(cudaEvent_t event) {
  CUEMU_ENTER();
  if (!event) return fail(cudaErrorInvalidResourceHandle);
  delete event;
  return cudaSuccess;
}

cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t stream) {
  CUEMU_ENTER();
  CUstream_st* s = resolve(stream);
  if (!s || !event) return fail(cudaErrorInvalidResourceHandle);
  event->stream = s;
  event->recorded = true;
  event->complete = false;
  event->record_seq = g_seq;
  return enqueue_locked(
      s,
      [event] {
        event->complete = true;
        event->time = Clock::now();
      },
      "event record");
}

cudaError_t cudaEventSynchronize(cudaEvent_t event) {
  CUEMU_ENTER();
  if (!event) return fail(cudaErrorInvalidResourceHandle);
  if (capture_forbids_call()) return fail(cudaErrorStreamCaptureUnsupported);
  if (event->recorded && alive(event->stream)) flush(event->stream, event->record_seq + 1);
  return g_sticky;
}

cudaError_t cudaEventQuery(cudaEvent_t event) { return cudaEventSynchronize(event); }

cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t start, cudaEvent_t end) {
  CUEMU_ENTER();
  if (!ms || !start || !end) return fail(cudaErrorInvalidValue);
  if (!start->complete || !end->complete) return fail(cudaErrorNotReady);
  *ms = std::chrono::duration<float, std::milli>(end->time - start->time).count();
  return cudaSuccess;
}

cudaError_t cudaStreamWaitEvent(cudaStream_t stream, cudaEvent_t event, unsigned int) {
  CUEMU_ENTER();
  CUstream_st* s = resolve(stream);
  if (!s || !event) return fail(cudaErrorInvalidResourceHandle);
  if (!event->recorded) return cudaSuccess;
  CUstream_st* src = event->stream;
  const uint64_t seq = event->record_seq;
  return enqueue_locked(
      s,
      [src, seq] {
        if (alive(src)) flush(src, seq + 1);
      },
      "event wait");
}

// ---- Graphs ----
cudaError_t cudaGraphInstantiate(cudaGraphExec_t* exec, cudaGraph_t graph, unsigned long long) {
  CUEMU_ENTER();
  if (!exec || !graph) return fail(cudaErrorInvalidValue);
  auto* x = new CUgraphExec_st();
  x->ops = graph->ops;
  *exec = x;
  return cudaSuccess;
}

cudaError_t cudaGraphLaunch(cudaGraphExec_t exec, cudaStream_t stream) {
  CUEMU_ENTER();
  CUstream_st* s = resolve(stream);
  if (!s || !exec) return fail(cudaErrorInvalidResourceHandle);
  for (const Op& op : exec->ops) enqueue_locked(s, op.run, op.what);
  return cudaSuccess;
}

cudaError_t cudaGraphDestroy(cudaGraph_t graph) {
  CUEMU_ENTER();
  delete graph;
  return cudaSuccess;
}

cudaError_t cudaGraphExecDestroy(cudaGraphExec_t exec) {
  CUEMU_ENTER();
  delete exec;
  return cudaSuccess;
}

// ---- Functions ----
cudaError_t cudaFuncSetAttribute(const void* func, cudaFuncAttribute attr, int value) {
  CUEMU_ENTER();
  if (!func) return fail(cudaErrorInvalidDeviceFunction);
  if (attr == cudaFuncAttributeMaxDynamicSharedMemorySize) {
    const int optin =
        static_cast<int>(make_properties(*devices()[tl_device]).sharedMemPerBlockOptin);
    if (value < 0 || value > optin) return fail(cudaErrorInvalidValue);
    g_max_dynamic_shared[{tl_device, func}] = value;
    return cudaSuccess;
  }
  if (attr == cudaFuncAttributePreferredSharedMemoryCarveout) return cudaSuccess;
  return fail(cudaErrorInvalidValue);
}

cudaError_t cudaFuncGetAttributes(cudaFuncAttributes* attr, const void* func) {
  CUEMU_ENTER();
  if (!attr || !func) return fail(cudaErrorInvalidDeviceFunction);
  if (devices()[tl_device]->major < 8) return fail(cudaErrorNoKernelImageForDevice);
  std::memset(attr, 0, sizeof *attr);
  attr->maxThreadsPerBlock = 1024;
  attr->numRegs = 32;
  attr->binaryVersion = 90;
  attr->ptxVersion = 90;
  auto it = g_max_dynamic_shared.find({tl_device, func});
  attr->maxDynamicSharedSizeBytes = it == g_max_dynamic_shared.end() ? 49152 : it->second;
  return cudaSuccess;
}

}  // extern "C"

// ---- Launches ----
namespace cuemu {

std::string last_fault() {
  Lock lock(g_mu);
  return g_fault;
}

cudaError_t submit_launch(const LaunchConfig& cfg, const void* kernel,
                          const KernelAttributes& attributes, const char* file, int line,
                          std::function<void()> body) {
  Lock lock(g_mu);
  if (g_sticky != cudaSuccess) return fail(g_sticky);
  CUstream_st* s = resolve(cfg.stream);
  if (!s) return fail(cudaErrorInvalidResourceHandle);
  if (s->device != tl_device) return fail(cudaErrorInvalidResourceHandle);
  if (devices()[tl_device]->major < 8) return fail(cudaErrorNoKernelImageForDevice);
  const cudaDeviceProp p = make_properties(*devices()[tl_device]);
  const dim3 b = cfg.block, g = cfg.grid;
  const uint64_t threads = uint64_t{b.x} * b.y * b.z;
  if (threads == 0 || threads > static_cast<uint64_t>(p.maxThreadsPerBlock) ||
      b.x > static_cast<unsigned>(p.maxThreadsDim[0]) ||
      b.y > static_cast<unsigned>(p.maxThreadsDim[1]) ||
      b.z > static_cast<unsigned>(p.maxThreadsDim[2]) || g.x == 0 || g.y == 0 || g.z == 0 ||
      g.x > static_cast<unsigned>(p.maxGridSize[0]) ||
      g.y > static_cast<unsigned>(p.maxGridSize[1]) ||
      g.z > static_cast<unsigned>(p.maxGridSize[2]))
    return fail(cudaErrorInvalidConfiguration);
  if (attributes.max_threads > 0 && threads > static_cast<uint64_t>(attributes.max_threads))
    return fail(cudaErrorLaunchOutOfResources);  // more threads than __launch_bounds__
  auto it = g_max_dynamic_shared.find({tl_device, kernel});
  const std::size_t dyn_limit =
      it == g_max_dynamic_shared.end() ? p.sharedMemPerBlock : static_cast<std::size_t>(it->second);
  if (cfg.shared_bytes > dyn_limit) return fail(cudaErrorInvalidValue);
  auto job = std::make_shared<detail::GridJob>();
  job->grid = g;
  job->block = b;
  job->dynamic_shared = cfg.shared_bytes;
  job->shared_limit = p.sharedMemPerBlockOptin;
  job->static_shared_limit = p.sharedMemPerBlock;
  job->kernel = attributes.name;
  job->launched_at = std::string(file) + ":" + std::to_string(line);
  job->body = std::move(body);
  return enqueue_locked(
      s,
      [job] {
        if (g_sticky != cudaSuccess) return;
        const std::string error = detail::execute_grid(*job);
        if (!error.empty())
          detail::set_sticky_error(
              cudaErrorLaunchFailure,
              "kernel " + job->kernel + " launched at " + job->launched_at + ": " + error);
      },
      "kernel");
}

}  // namespace cuemu
