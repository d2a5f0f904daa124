// Executes kernels: every CUDA thread of a block is a fiber on one OS thread; blocks are spread
// over a few OS threads. __syncthreads is a rendezvous of the block's live threads, a warp
// collective a rendezvous of the lanes in its mask; a thread that waits gives way to the next
// ready one, in the order CUEMU_SCHEDULE selects (forward, reverse or random:SEED). Misuse
// (deadlock, a lane that exited or lies outside the mask, mismatched collectives) fails the
// block with a message naming the thread, the block and the source line.
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#define CUEMU_INTERNAL 1
#include "cuda_emulation.hpp"
#include "emulator.hpp"
#include "fiber.hpp"

namespace cuemu {

thread_local ThreadView* tl_view = nullptr;

ThreadView& current_view() {
  if (!tl_view) {
    std::fprintf(stderr,
                 "CUDA emulation: threadIdx/blockIdx/blockDim/gridDim read outside a "
                 "kernel\n");
    std::abort();
  }
  return *tl_view;
}

namespace {

using detail::GridJob;

enum class State { kReady, kBarrier, kWarp, kDone };
enum class CollectiveKind { kShuffle, kBallot, kSyncWarp };

const char* collective_name(CollectiveKind k) {
  switch (k) {
    case CollectiveKind::kShuffle:
      return "a warp shuffle";
    case CollectiveKind::kBallot:
      return "a warp vote";
    default:
      return "__syncwarp";
  }
}

struct Thread {
  detail::Fiber fiber;
  ThreadView view{};
  int linear = 0, warp = 0, lane = 0;
  State state = State::kReady;
  bool started = false;
  const char* wait_file = "";
  int wait_line = 0;
  // The collective this lane takes part in.
  uint64_t value = 0;
  ShuffleKind shuffle_kind = ShuffleKind::kIndex;
  int arg = 0, width = 32, pred = 0;
  uint64_t result = 0;
};

struct WarpGroup {
  unsigned mask = 0, arrived = 0;
  CollectiveKind kind = CollectiveKind::kShuffle;
  const char* file = "";
  int line = 0;
};

// Shared-memory race check: per 4-byte word, the threads that wrote or read it since the
// last __syncthreads (the barrier generation).
struct WordAccess {
  uint64_t generation = ~uint64_t{0};
  int writer = -1;  // thread, -1 none
  int reader = -1;  // thread, -1 none, -2 several
};

struct SharedVar {
  const void* key;
  void* ptr;
  std::size_t bytes;
  std::vector<WordAccess> words;
};

struct Block {
  const GridJob* job = nullptr;
  uint3 index{};
  int n_threads = 0, live = 0;
  Thread* threads = nullptr;
  int barrier_arrived = 0, barrier_pred = 0;
  std::vector<std::vector<WarpGroup>> groups;  // per warp
  void* dynamic_shared = nullptr;
  std::vector<WordAccess> dynamic_words;
  uint64_t barrier_generation = 0;
  std::vector<SharedVar> static_shared;
  std::size_t static_bytes = 0;
  std::string error;
  bool aborting = false;  // after an error: waiting fibers are resumed to unwind
};

// Per OS thread: the scheduler's context, the fibers' stacks, the block being run.
struct Worker {
  detail::Fiber main;
  std::vector<Thread> threads;
  Block* block = nullptr;
  Thread* current = nullptr;
};

thread_local Worker* tl_worker = nullptr;
thread_local KernelAttributes* tl_probe = nullptr;

Worker& worker() {
  thread_local Worker w;
  tl_worker = &w;
  return w;
}

std::size_t fiber_stack_bytes() {
  static const std::size_t bytes = [] {
    const char* env = std::getenv("CUEMU_STACK_KB");
    const long kb = env ? std::atol(env) : 0;
#if defined(__SANITIZE_ADDRESS__)
    const long fallback = 512;  // redzones around every local
#else
    const long fallback = 128;
#endif
    return static_cast<std::size_t>(kb > 0 ? kb : fallback) * 1024;
  }();
  return bytes;
}

// ---- Schedule order ----
struct Schedule {
  enum Kind { kForward, kReverse, kRandom } kind = kForward;
  uint64_t seed = 0;
};

Schedule schedule() {
  static const Schedule s = [] {
    Schedule r;
    const char* env = std::getenv("CUEMU_SCHEDULE");
    const std::string v = env ? env : "forward";
    if (v == "reverse") {
      r.kind = Schedule::kReverse;
    } else if (v.rfind("random", 0) == 0) {
      r.kind = Schedule::kRandom;
      r.seed = v.size() > 7 ? std::strtoull(v.c_str() + 7, nullptr, 10) : 1;
    } else if (v != "forward") {
      std::fprintf(stderr, "CUEMU_SCHEDULE must be forward, reverse or random:SEED, got '%s'\n",
                   v.c_str());
      std::abort();
    }
    return r;
  }();
  return s;
}

std::string thread_name(const Block& b, const Thread& t) {
  std::ostringstream s;
  s << "block (" << b.index.x << "," << b.index.y << "," << b.index.z << ") thread ("
    << t.view.thread_idx.x << "," << t.view.thread_idx.y << "," << t.view.thread_idx.z << ")";
  return s.str();
}

// ---- Switching ----
[[noreturn]] void fail_current(const std::string& what);

// Thrown inside a fiber when its block has failed: unwinds the kernel's frames (their
// destructors run, nothing leaks) back to fiber_main.
struct BlockAborted {};

void yield_to_scheduler() {
  Worker& w = *tl_worker;
  detail::switch_fiber(w.current->fiber, w.main, /*exiting=*/false);
  if (w.block->aborting) throw BlockAborted{};
}

void release_barrier(Block& b) {
  for (int i = 0; i < b.n_threads; ++i) {
    Thread& t = b.threads[i];
    if (t.state == State::kBarrier) {
      t.state = State::kReady;
      t.result = static_cast<uint64_t>(b.barrier_pred);
    }
  }
  b.barrier_arrived = 0;
  b.barrier_pred = 0;
  ++b.barrier_generation;
}

unsigned warp_lanes(const Block& b, int warp) {
  const int n = std::min(32, b.n_threads - 32 * warp);
  return n >= 32 ? 0xffffffffu : ((1u << n) - 1u);
}

void thread_exited(Block& b, Thread& t) {
  t.state = State::kDone;
  --b.live;
  for (const WarpGroup& g : b.groups[t.warp])
    if (g.mask >> t.lane & 1u) {
      std::ostringstream s;
      s << thread_name(b, t) << " exited while lanes of its warp wait for it in "
        << collective_name(g.kind) << " (mask 0x" << std::hex << g.mask << std::dec << ") at "
        << g.file << ":" << g.line;
      b.error = s.str();
      return;
    }
  if (b.barrier_arrived > 0 && b.error.empty()) {
    // A thread left while others wait at __syncthreads: a barrier in divergent code, undefined
    // on a GPU (where it may hang or pass). Strict here, whatever the schedule.
    b.error = thread_name(b, t) + " exited while " + std::to_string(b.barrier_arrived) +
              " threads of its block wait at __syncthreads (a barrier after an early return?)";
  }
}

void fiber_main(void* arg) {
  Thread* t = static_cast<Thread*>(arg);
  detail::fiber_started(tl_worker->main);
  try {
    tl_worker->block->job->body();
    thread_exited(*tl_worker->block, *t);
  } catch (const BlockAborted&) {
    t->state = State::kDone;
  }
  detail::switch_fiber(t->fiber, tl_worker->main, /*exiting=*/true);
  std::abort();  // never resumed
}

[[noreturn]] void fail_current(const std::string& what) {
  Worker& w = *tl_worker;
  if (w.block->error.empty()) w.block->error = thread_name(*w.block, *w.current) + ": " + what;
  w.block->aborting = true;
  throw BlockAborted{};
}

std::string where(const char* file, int line) {
  return std::string(file) + ":" + std::to_string(line);
}

// ---- Collectives ----
uint64_t collective(CollectiveKind kind, unsigned mask, Thread& t, const char* file, int line) {
  Block& b = *tl_worker->block;
  const std::string at = where(file, line);
  if (!(mask >> t.lane & 1u)) {
    std::ostringstream s;
    s << collective_name(kind) << " at " << at << " with mask 0x" << std::hex << mask
      << " that does not include the calling lane " << std::dec << t.lane;
    fail_current(s.str());
  }
  const unsigned exists = warp_lanes(b, t.warp);
  if (mask & ~exists) {
    std::ostringstream s;
    s << collective_name(kind) << " at " << at << " names lanes that do not exist (mask 0x"
      << std::hex << mask << ", the block has " << std::dec << b.n_threads << " threads)";
    fail_current(s.str());
  }
  for (int l = 0; l < 32; ++l)
    if ((mask >> l & 1u) && b.threads[32 * t.warp + l].state == State::kDone) {
      fail_current(collective_name(kind) + std::string(" at ") + at + " waits for lane " +
                   std::to_string(l) + ", which has exited (an early return before a full-mask " +
                   "collective?)");
    }
  std::vector<WarpGroup>& groups = b.groups[t.warp];
  auto it = std::find_if(groups.begin(), groups.end(),
                         [&](const WarpGroup& g) { return g.mask == mask; });
  if (it == groups.end()) {
    groups.push_back({mask, 0, kind, file, line});
    it = groups.end() - 1;
  } else if (it->kind != kind) {
    fail_current("mismatched warp collectives: " + std::string(collective_name(kind)) + " at " +
                 at + " while other lanes wait in " + collective_name(it->kind) + " at " +
                 where(it->file, it->line));
  }
  it->arrived |= 1u << t.lane;
  t.wait_file = file;
  t.wait_line = line;
  if (it->arrived != mask) {
    t.state = State::kWarp;
    yield_to_scheduler();
    return t.result;
  }
  // The last lane computes every lane's result, then releases the group.
  Thread* lanes = b.threads + 32 * t.warp;
  unsigned ballot = 0;
  for (int l = 0; l < 32; ++l)
    if ((mask >> l & 1u) && lanes[l].pred) ballot |= 1u << l;
  for (int l = 0; l < 32; ++l) {
    if (!(mask >> l & 1u)) continue;
    Thread& u = lanes[l];
    if (kind == CollectiveKind::kShuffle) {
      const int w = u.width;
      if (w < 1 || w > 32 || (w & (w - 1)) != 0)
        fail_current("warp shuffle at " + at + " with width " + std::to_string(w) +
                     " (must be a power of 2 in [1, 32])");
      const int base = l & ~(w - 1), pos = l - base;
      int src = l;
      switch (u.shuffle_kind) {
        case ShuffleKind::kIndex:
          src = base + (u.arg % w + w) % w;
          break;
        case ShuffleKind::kUp:
          src = pos >= u.arg ? l - u.arg : l;
          break;
        case ShuffleKind::kDown:
          src = pos + u.arg < w ? l + u.arg : l;
          break;
        case ShuffleKind::kXor:
          src = l ^ u.arg;
          if (src >= base + w || src < 0 || src > 31) src = l;
          break;
      }
      if (!(mask >> src & 1u))
        fail_current("warp shuffle at " + at + ": lane " + std::to_string(l) + " reads lane " +
                     std::to_string(src) + ", which is not in the mask (undefined on a GPU)");
      u.result = lanes[src].value;
    } else {
      u.result = ballot;
    }
    if (&u != &t) u.state = State::kReady;
  }
  groups.erase(it);
  return t.result;
}

Thread& current_thread(const char* call, const char* file, int line) {
  if (!tl_worker || !tl_worker->current) {
    std::fprintf(stderr, "CUDA emulation: %s called outside a kernel at %s:%d\n", call, file, line);
    std::abort();
  }
  return *tl_worker->current;
}

// ---- Blocks ----
std::vector<int> order(int n, uint64_t round, const Block& b) {
  std::vector<int> o(n);
  for (int i = 0; i < n; ++i) o[i] = i;
  const Schedule s = schedule();
  if (s.kind == Schedule::kReverse) {
    std::reverse(o.begin(), o.end());
  } else if (s.kind == Schedule::kRandom) {
    std::mt19937_64 gen(s.seed * 0x9E3779B97F4A7C15ull + round * 1000003u + b.index.x +
                        (uint64_t{b.index.y} << 20) + (uint64_t{b.index.z} << 40));
    std::shuffle(o.begin(), o.end(), gen);
  }
  return o;
}

std::string deadlock_report(const Block& b) {
  std::ostringstream s;
  s << "deadlock: " << b.live << " live threads all wait";
  int shown = 0;
  for (int i = 0; i < b.n_threads && shown < 4; ++i) {
    const Thread& t = b.threads[i];
    if (t.state == State::kDone) continue;
    s << (shown ? "; " : ": ") << thread_name(b, t) << " in "
      << (t.state == State::kBarrier ? "__syncthreads" : "a warp collective") << " at "
      << t.wait_file << ":" << t.wait_line;
    ++shown;
  }
  return s.str();
}

std::string run_block(const GridJob& job, uint3 index) {
  Worker& w = worker();
  const int n = static_cast<int>(job.block.x * job.block.y * job.block.z);
  if (static_cast<int>(w.threads.size()) < n) w.threads.resize(n);
  Block b;
  b.job = &job;
  b.index = index;
  b.n_threads = n;
  b.live = n;
  b.threads = w.threads.data();
  b.groups.assign((n + 31) / 32, {});
  // Exactly the launch's size (AddressSanitizer sees overruns), uninitialised bytes read as NaN.
  std::unique_ptr<void, decltype(&std::free)> dynamic(
      job.dynamic_shared ? std::malloc(job.dynamic_shared) : nullptr, &std::free);
  if (dynamic) std::memset(dynamic.get(), 0xff, job.dynamic_shared);
  b.dynamic_shared = dynamic.get();
  if (detail::racecheck_enabled()) b.dynamic_words.assign((job.dynamic_shared + 3) / 4, {});
  w.block = &b;
  for (int i = 0; i < n; ++i) {
    Thread& t = w.threads[i];
    t.linear = i;
    t.warp = i / 32;
    t.lane = i % 32;
    t.state = State::kReady;
    t.started = false;
    t.view.thread_idx = uint3{static_cast<unsigned>(i) % job.block.x,
                              static_cast<unsigned>(i) / job.block.x % job.block.y,
                              static_cast<unsigned>(i) / (job.block.x * job.block.y)};
    t.view.block_idx = index;
    t.view.block_dim = job.block;
    t.view.grid_dim = job.grid;
    detail::prepare_fiber(t.fiber, fiber_stack_bytes(), fiber_main, &t);
  }
  uint64_t round = 0;
  while (b.live > 0 && b.error.empty()) {
    bool progress = false;
    for (int i : order(n, round++, b)) {
      Thread& t = w.threads[i];
      if (t.state != State::kReady) continue;
      progress = true;
      w.current = &t;
      tl_view = &t.view;
      t.started = true;
      detail::switch_fiber(w.main, t.fiber, /*exiting=*/false);
      if (!b.error.empty()) break;
    }
    if (!progress && b.error.empty()) b.error = deadlock_report(b);
  }
  if (!b.error.empty()) {  // unwind the fibers still inside the kernel
    b.aborting = true;
    for (int i = 0; i < n; ++i) {
      Thread& t = w.threads[i];
      if (t.state == State::kDone || !t.started) continue;
      w.current = &t;
      tl_view = &t.view;
      detail::switch_fiber(w.main, t.fiber, /*exiting=*/false);
    }
  }
  w.current = nullptr;
  tl_view = nullptr;
  w.block = nullptr;
  for (SharedVar& v : b.static_shared) std::free(v.ptr);
  return b.error;
}

// ---- The pool of OS threads that run blocks ----
class Pool {
 public:
  static Pool& get() {
    static Pool* p = new Pool();  // never destroyed: workers may outlive static destructors
    return *p;
  }

  std::string run(const GridJob& job) {
    const uint64_t blocks = uint64_t{job.grid.x} * job.grid.y * job.grid.z;
    std::unique_lock lock(mu_);
    job_ = &job;
    total_ = blocks;
    next_.store(0);
    error_.clear();
    busy_ = 0;
    ++generation_;
    const int helpers = static_cast<int>(std::min<uint64_t>(workers_.size(), blocks - 1));
    wanted_ = helpers;
    lock.unlock();
    cv_.notify_all();
    work();
    lock.lock();
    done_cv_.wait(lock, [&] { return wanted_ == 0 && busy_ == 0; });
    job_ = nullptr;
    return error_;
  }

 private:
  Pool() {
    const char* env = std::getenv("CUEMU_THREADS");
    int n = env ? std::atoi(env) : static_cast<int>(std::thread::hardware_concurrency());
    n = std::max(1, std::min(n, 64));
    for (int i = 0; i + 1 < n; ++i) workers_.emplace_back([this] { loop(); });
    for (std::thread& t : workers_) t.detach();
  }

  void loop() {
    uint64_t seen = 0;
    std::unique_lock lock(mu_);
    for (;;) {
      cv_.wait(lock, [&] { return generation_ != seen && wanted_ > 0; });
      seen = generation_;
      --wanted_;
      ++busy_;
      lock.unlock();
      work();
      lock.lock();
      --busy_;
      done_cv_.notify_all();
    }
  }

  void work() {
    const GridJob& job = *job_;
    for (;;) {
      const uint64_t i = next_.fetch_add(1);
      if (i >= total_) return;
      {
        std::lock_guard lock(error_mu_);
        if (!error_.empty()) return;
      }
      const uint3 index{static_cast<unsigned>(i % job.grid.x),
                        static_cast<unsigned>(i / job.grid.x % job.grid.y),
                        static_cast<unsigned>(i / (uint64_t{job.grid.x} * job.grid.y))};
      std::string e = run_block(job, index);
      if (!e.empty()) {
        std::lock_guard lock(error_mu_);
        if (error_.empty()) error_ = std::move(e);
      }
    }
  }

  std::mutex mu_, error_mu_;
  std::condition_variable cv_, done_cv_;
  std::vector<std::thread> workers_;
  const GridJob* job_ = nullptr;
  uint64_t total_ = 0, generation_ = 0;
  int wanted_ = 0, busy_ = 0;
  std::atomic<uint64_t> next_{0};
  std::string error_;
};

}  // namespace

// ---- Device-side calls ----
void syncthreads(const char* file, int line) { (void)syncthreads_count(0, file, line); }

int syncthreads_count(int pred, const char* file, int line) {
  Thread& t = current_thread("__syncthreads", file, line);
  Block& b = *tl_worker->block;
  if (b.live < b.n_threads)
    fail_current("__syncthreads at " + where(file, line) + " after " +
                 std::to_string(b.n_threads - b.live) +
                 " threads of the block exited (a barrier after an early return is undefined on "
                 "a GPU)");
  t.wait_file = file;
  t.wait_line = line;
  t.state = State::kBarrier;
  ++b.barrier_arrived;
  b.barrier_pred += pred ? 1 : 0;
  if (b.barrier_arrived == b.live) release_barrier(b);
  yield_to_scheduler();
  return static_cast<int>(t.result);
}

void syncwarp(unsigned mask, const char* file, int line) {
  Thread& t = current_thread("__syncwarp", file, line);
  collective(CollectiveKind::kSyncWarp, mask, t, file, line);
}

unsigned ballot_sync(unsigned mask, int pred, const char* file, int line) {
  Thread& t = current_thread("a warp vote", file, line);
  t.pred = pred;
  return static_cast<unsigned>(collective(CollectiveKind::kBallot, mask, t, file, line));
}

unsigned activemask() {
  Thread& t = current_thread("__activemask", "?", 0);
  const Block& b = *tl_worker->block;
  unsigned m = 0;
  for (int l = 0; l < 32 && 32 * t.warp + l < b.n_threads; ++l)
    if (b.threads[32 * t.warp + l].state != State::kDone) m |= 1u << l;
  return m;
}

uint64_t shuffle_bits(unsigned mask, uint64_t bits, ShuffleKind kind, int arg, int width,
                      const char* file, int line) {
  Thread& t = current_thread("a warp shuffle", file, line);
  t.value = bits;
  t.shuffle_kind = kind;
  t.arg = arg;
  t.width = width;
  return collective(CollectiveKind::kShuffle, mask, t, file, line);
}

void* dynamic_shared_memory() {
  if (!tl_worker || !tl_worker->block) {
    std::fprintf(stderr, "CUDA emulation: extern __shared__ used outside a kernel\n");
    std::abort();
  }
  return tl_worker->block->dynamic_shared;
}

void* static_shared_memory(const void* key, std::size_t bytes, std::size_t align) {
  Thread& t = current_thread("__shared__", "?", 0);
  Block& b = *tl_worker->block;
  for (const SharedVar& v : b.static_shared)
    if (v.key == key) return v.ptr;
  b.static_bytes += (bytes + 15) / 16 * 16;
  const GridJob& job = *b.job;
  if (b.static_bytes > job.static_shared_limit)
    fail_current("static __shared__ memory of " + std::to_string(b.static_bytes) +
                 " bytes exceeds the device's " + std::to_string(job.static_shared_limit));
  if (b.static_bytes + job.dynamic_shared > job.shared_limit)
    fail_current("static (" + std::to_string(b.static_bytes) + ") plus dynamic (" +
                 std::to_string(job.dynamic_shared) +
                 ") shared memory exceeds the device's per-block limit of " +
                 std::to_string(job.shared_limit) + " bytes");
  (void)t;
  void* p = std::aligned_alloc(std::max<std::size_t>(align, 16), (bytes + 15) / 16 * 16);
  std::memset(p, 0xff, (bytes + 15) / 16 * 16);  // uninitialised shared memory reads as NaN
  b.static_shared.push_back({key, p, bytes, {}});
  if (detail::racecheck_enabled()) b.static_shared.back().words.resize((bytes + 3) / 4);
  return p;
}

void device_trap(const char* what, const char* file, int line) {
  current_thread(what, file, line);
  fail_current(std::string(what) + " at " + where(file, line));
}

bool racecheck_enabled_at_run_time() { return detail::racecheck_enabled(); }

bool kernel_prologue(int max_threads, int min_blocks, const char* name, const char*, int) {
  if (!tl_probe) return false;
  tl_probe->max_threads = max_threads;
  tl_probe->min_blocks = min_blocks;
  tl_probe->name = name;
  return true;
}

KernelAttributes probe_kernel(const std::function<void()>& call) {
  KernelAttributes a;
  a.max_threads = -1;
  tl_probe = &a;
  call();
  tl_probe = nullptr;
  if (a.max_threads < 0) {
    std::fprintf(stderr,
                 "CUDA emulation: a launched function did not enter through "
                 "CUEMU_KERNEL_PROLOGUE (was its source rewritten?)\n");
    std::abort();
  }
  return a;
}

namespace detail {
std::string execute_grid(const GridJob& job) { return Pool::get().run(job); }

namespace {
std::atomic<bool>& racecheck_flag() {
  static std::atomic<bool> on = [] {
    const char* env = std::getenv("CUEMU_RACECHECK");
    return env && std::string(env) == "1";
  }();
  return on;
}
}  // namespace

bool racecheck_enabled() { return racecheck_flag().load(std::memory_order_relaxed); }
}  // namespace detail

void set_racecheck(bool on) { detail::racecheck_flag().store(on); }

namespace detail {

void shared_access(const void* p, std::size_t bytes, bool write, const void* pc) {
  Worker* w = tl_worker;
  if (!w || !w->current || !w->block) return;
  Block& b = *w->block;
  const auto* a = static_cast<const unsigned char*>(p);
  std::vector<WordAccess>* words = nullptr;
  std::size_t offset = 0;
  std::string region;
  const auto* dyn = static_cast<const unsigned char*>(b.dynamic_shared);
  if (dyn && a >= dyn && a < dyn + b.job->dynamic_shared) {
    words = &b.dynamic_words;
    offset = static_cast<std::size_t>(a - dyn);
    region = "extern __shared__ memory";
  } else {
    for (SharedVar& v : b.static_shared) {
      const auto* base = static_cast<const unsigned char*>(v.ptr);
      if (a >= base && a < base + v.bytes) {
        words = &v.words;
        offset = static_cast<std::size_t>(a - base);
        region = "a __shared__ variable";
        break;
      }
    }
  }
  if (!words || words->empty()) return;
  const int t = w->current->linear;
  const uint64_t g = b.barrier_generation;
  for (std::size_t i = offset / 4; i <= (offset + bytes - 1) / 4 && i < words->size(); ++i) {
    WordAccess& s = (*words)[i];
    if (s.generation != g) {
      s = WordAccess{g, write ? t : -1, write ? -1 : t};
      continue;
    }
    int other = -1;
    const char* kind = "";
    if (s.writer >= 0 && s.writer != t) {
      other = s.writer;
      kind = write ? "write after write" : "read after write";
    } else if (write && (s.reader == -2 || (s.reader >= 0 && s.reader != t))) {
      other = s.reader;
      kind = "write after read";
    }
    if (kind[0]) {
      std::ostringstream m;
      m << "shared-memory race (" << kind << ") on byte " << 4 * i << " of " << region
        << ": thread " << t << " and "
        << (other >= 0 ? "thread " + std::to_string(other) : std::string("other threads"))
        << " touch it with no __syncthreads between (access at pc " << pc
        << "; addr2line -f -C -e <binary> <pc> names the line)";
      fail_current(m.str());
    }
    if (write) {
      s.writer = t;
    } else if (s.reader == -1) {
      s.reader = t;
    } else if (s.reader != t) {
      s.reader = -2;
    }
  }
}
}  // namespace detail

}  // namespace cuemu
