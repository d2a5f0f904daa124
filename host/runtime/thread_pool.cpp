#include "host/runtime/thread_pool.hpp"

#include <fcntl.h>
#include <omp.h>
#include <pthread.h>
#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <exception>
#include <mutex>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <vector>

namespace cuebm::detail {
namespace {

// Measured on the 2-core development machine (bench/busy_machine.sh): see bench/RESULTS.md.
constexpr int kDefaultIdleSpinUs = 100;
constexpr int kDefaultJoinSpinUs = 100;
constexpr int kDefaultAdapt = 1;

// Contention control (Pool::threads_for_job): every kWindow the caller adds up how long the
// threads in use waited for a CPU while runnable (run_delay in /proc/<tid>/schedstat); that sum
// over the window's length is the number of threads that, on average, had no core ("lost").
// When the lost threads of the last kHistory windows add up to kLostThreshold * kHistory or
// more, the loops use that many fewer threads (the average, rounded, at least one) for a
// while, then try all of them again for kProbeWindows windows; each failed try doubles the
// wait (kMinBackoff to kMaxBackoff). A 2-thread run that shares its 2 cores with another busy
// program loses more to waiting than the second thread gives: one descheduled thread holding a
// block stalls the loop for a time slice of the other program. Another program's single time
// slice (a few ms) now and then, as from a low-priority job, averages out below the threshold,
// and windows in which two of our threads shared a CPU count as 0: that waiting is ours, and
// the kernel's balancer moves one of them (unless it sleeps).
using Clock = std::chrono::steady_clock;
constexpr Clock::duration kWindow = std::chrono::milliseconds(10);
constexpr Clock::duration kMinBackoff = std::chrono::milliseconds(50);
constexpr Clock::duration kMaxBackoff = std::chrono::seconds(2);
constexpr double kLostThreshold = 0.3;
constexpr std::size_t kHistory = 8;
constexpr std::size_t kProbeWindows = 2;

// run_delay (nanoseconds spent runnable but not running) from a schedstat file, or -1.
int64_t read_run_delay(int fd) {
  if (fd < 0) return -1;
  char buf[128];
  const ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
  if (n <= 0) return -1;
  buf[n] = '\0';
  unsigned long long on_cpu = 0, delay = 0;
  if (std::sscanf(buf, "%llu %llu", &on_cpu, &delay) != 2) return -1;
  return static_cast<int64_t>(delay);
}

// This thread's run_delay (its own schedstat file, opened once per thread).
int64_t own_run_delay() {
  struct File {
    int fd = open("/proc/thread-self/schedstat", O_RDONLY | O_CLOEXEC);
    ~File() {
      if (fd >= 0) close(fd);
    }
  };
  thread_local File file;
  return read_run_delay(file.fd);
}

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield" ::: "memory");
#endif
}

// Spins until ready() or `us` microseconds have passed; returns ready().
template <class Ready>
bool spin_until(Ready ready, int us) {
  if (ready()) return true;
  if (us <= 0) return false;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::microseconds(us);
  for (;;) {
    for (int i = 0; i < 32; ++i) {
      cpu_relax();
      if (ready()) return true;
    }
    if (std::chrono::steady_clock::now() >= deadline) return ready();
  }
}

int env_int(const char* name, int fallback, int lo, int hi) {
  const char* text = std::getenv(name);
  if (text == nullptr || *text == '\0') return fallback;
  char* end = nullptr;
  const long v = std::strtol(text, &end, 10);
  return (*end == '\0' && v >= lo && v <= hi) ? static_cast<int>(v) : fallback;
}

// Index part of the claim word while a job is being set up: no index can be claimed.
constexpr uint64_t kClosed = 0xffffffffu;
// Largest job: indices must stay below kClosed (run_parallel splits larger loops).
constexpr int64_t kMaxJob = int64_t{1} << 31;

class Pool {
 public:
  Pool() {
    policy_idle_.store(env_int("CUEBM_POOL_IDLE_SPIN_US", kDefaultIdleSpinUs, 0, 1000000));
    policy_join_.store(env_int("CUEBM_POOL_JOIN_SPIN_US", kDefaultJoinSpinUs, 0, 1000000));
    policy_adapt_.store(env_int("CUEBM_POOL_ADAPT", kDefaultAdapt, 0, 1) != 0);
  }

  // False when another call holds the pool (nested or concurrent): run on the caller then.
  bool try_acquire() { return !in_use_.exchange(true, std::memory_order_acquire); }
  void release() { in_use_.store(false, std::memory_order_release); }

  // Runs the job [0, n) on up to `threads` threads, the caller included (pool acquired).
  void run(int64_t n, IndexFunction fn, void* context, int threads) {
    const int helpers = start_workers(threads_for_job(threads) - 1);
    if (helpers == 0) {  // the workers sleep on: nothing is posted, nobody is woken
      for (int64_t i = 0; i < n; ++i) fn(context, i);
      return;
    }
    if (helpers != helpers_.load(std::memory_order_relaxed)) {
      helpers_.store(helpers);
      roster_.fetch_add(1);
      roster_.notify_all();  // workers left out of the last jobs wait on roster_
    }
    const uint32_t g = ++generation_count_;
    const uint64_t open = uint64_t{g} << 32;
    // Close the claim word before touching the job's fields: a worker still looking at the
    // previous job then fails its claim (sequentially consistent order: see claim()).
    word_.store(open | kClosed);
    fn_.store(fn);
    context_.store(context);
    n_.store(static_cast<uint32_t>(n));
    done_.store(0);
    error_ = nullptr;
    word_.store(open);
    generation_.store(g);
    generation_.notify_all();  // a system call only when some worker sleeps

    work(g);
    const uint32_t total = static_cast<uint32_t>(n);
    const auto finished = [&] { return done_.load(std::memory_order_acquire) == total; };
    if (!spin_until(finished, policy_join_.load(std::memory_order_relaxed)))
      for (uint32_t d; (d = done_.load(std::memory_order_acquire)) != total;)
        done_.wait(d, std::memory_order_acquire);
    if (error_) std::rethrow_exception(error_);
  }

  void set_policy(const PoolPolicy& p) {
    policy_idle_.store(p.idle_spin_us);
    policy_join_.store(p.join_spin_us);
    policy_adapt_.store(p.adapt);
  }
  PoolPolicy policy() const {
    return {policy_idle_.load(), policy_join_.load(), policy_adapt_.load()};
  }

  // In a child process after fork(): the workers did not come along.
  void forget_workers() {
    workers_ = 0;
    for (int fd : delay_fds_)
      if (fd >= 0) close(fd);
    delay_fds_.clear();
    tids_.clear();
    cpus_.clear();
    wanted_ = 0;
    in_use_.store(false);
  }

 private:
  // Starts workers up to `wanted` (fewer if the system refuses threads); returns how many run.
  int start_workers(int wanted) {
    while (workers_ < wanted) {
      tids_.emplace_back(0);
      cpus_.emplace_back(-1);
      delay_fds_.push_back(-1);
      try {
        std::thread(&Pool::worker, this, workers_, generation_count_).detach();
      } catch (const std::system_error&) {
        tids_.pop_back();
        cpus_.pop_back();
        delay_fds_.pop_back();
        break;
      }
      ++workers_;
    }
    return std::min(wanted, workers_);
  }

  // Summed run_delay of the caller and workers 0 .. threads - 2, or -1 when unknown.
  int64_t delay_of(int threads) {
    int64_t total = own_run_delay();
    for (int w = 0; w + 1 < threads && total >= 0; ++w) {
      if (w >= workers_) return -1;
      if (delay_fds_[w] < 0) {
        const int tid = tids_[w].load(std::memory_order_acquire);
        if (tid == 0) return -1;  // not started yet
        const std::string path = "/proc/self/task/" + std::to_string(tid) + "/schedstat";
        delay_fds_[w] = open(path.c_str(), O_RDONLY | O_CLOEXEC);
      }
      const int64_t d = read_run_delay(delay_fds_[w]);
      total = d < 0 ? -1 : total + d;
    }
    return total;
  }

  // How many threads the next job uses: `wanted`, unless the threads have been waiting for
  // CPUs (see kWindow above).
  int threads_for_job(int wanted) {
    if (!policy_adapt_.load(std::memory_order_relaxed)) {
      wanted_ = 0;
      return wanted;
    }
    const Clock::time_point now = Clock::now();
    const std::thread::id caller = std::this_thread::get_id();
    if (wanted != wanted_) {  // first job, or a new thread count: start afresh
      wanted_ = active_ = wanted;
      backoff_ = kMinBackoff;
      probing_ = warming_up_ = false;
      history_.clear();
      return start_window(now, caller);
    }
    if (warming_up_) {  // a try of all threads: measure from its second job, once all run
      warming_up_ = false;
      return start_window(now, caller);
    }
    if (now - window_start_ < kWindow) return active_;
    const int64_t delay = delay_of(active_);
    if (caller != window_caller_ || delay < 0 || window_delay_ < 0)
      return start_window(now, caller);  // nothing comparable measured
    double lost = static_cast<double>(delay - window_delay_) /
                  std::chrono::duration<double, std::nano>(now - window_start_).count();
    if (active_ > 1 && !on_distinct_cpus(active_)) lost = 0;
    if (probing_) {  // kProbeWindows decide a try
      history_.push_back(lost);
      if (history_.size() >= kProbeWindows) {
        const double mean = average(history_);
        if (mean >= kLostThreshold) {
          reduce(mean, now, std::min(backoff_ * 2, kMaxBackoff));
        } else {
          probing_ = false;
          backoff_ = kMinBackoff;
        }
      }
    } else if (active_ < wanted_ && now >= reduced_until_) {
      active_ = wanted_;  // try all threads again
      probing_ = warming_up_ = true;
      history_.clear();
    } else if (active_ > 1) {
      history_.push_back(lost);
      if (history_.size() > kHistory) history_.erase(history_.begin());
      // Over the last kHistory windows (fewer at first: a heavy start decides sooner).
      const double sum = average(history_) * static_cast<double>(history_.size());
      if (sum >= kLostThreshold * kHistory)
        reduce(sum / static_cast<double>(history_.size()), now,
               active_ < wanted_ ? backoff_ : kMinBackoff);
    }
    return start_window(now, caller);
  }

  static double average(const std::vector<double>& v) {
    double sum = 0;
    for (double x : v) sum += x;
    return v.empty() ? 0 : sum / static_cast<double>(v.size());
  }

  // `lost` threads' worth of waiting: that many fewer (at least one) until now + backoff.
  void reduce(double lost, Clock::time_point now, Clock::duration backoff) {
    active_ = std::max(1, active_ - std::max(1, static_cast<int>(std::lround(lost))));
    backoff_ = backoff;
    reduced_until_ = now + backoff;
    probing_ = warming_up_ = false;
    history_.clear();
  }

  // True when the caller and workers 0 .. threads - 2 last ran on different CPUs (see kWindow).
  bool on_distinct_cpus(int threads) {
    std::vector<int>& seen = cpu_scratch_;
    seen.assign(1, sched_getcpu());
    for (int w = 0; w + 1 < threads && w < workers_; ++w)
      seen.push_back(cpus_[w].load(std::memory_order_relaxed));
    std::sort(seen.begin(), seen.end());
    return std::adjacent_find(seen.begin(), seen.end()) == seen.end();
  }

  int start_window(Clock::time_point now, std::thread::id caller) {
    window_start_ = now;
    window_caller_ = caller;
    window_delay_ = delay_of(active_);
    return active_;
  }

  // The next unclaimed index of job g, or -1 when none is left or g is no longer the job.
  // All operations are sequentially consistent: if the n read here belongs to a later job,
  // that job's store of kClosed precedes it, so the compare-exchange below fails.
  int64_t claim(uint32_t g) {
    uint64_t w = word_.load();
    for (;;) {
      if ((w >> 32) != g) return -1;
      const uint64_t i = w & kClosed;
      if (i >= n_.load()) return -1;  // all claimed, or kClosed
      if (word_.compare_exchange_weak(w, w + 1)) return static_cast<int64_t>(i);
    }
  }

  // Claims and runs indices of job g until none is left, then counts them done at once (the
  // job's fields cannot change before: the caller waits for that count).
  void work(uint32_t g) {
    uint32_t ran = 0;
    for (int64_t i; (i = claim(g)) >= 0; ++ran) {
      try {
        fn_.load(std::memory_order_relaxed)(context_.load(std::memory_order_relaxed), i);
      } catch (...) {
        std::lock_guard<std::mutex> lock(error_mutex_);
        if (!error_) error_ = std::current_exception();
      }
    }
    if (ran == 0) return;
    const uint32_t total = n_.load(std::memory_order_relaxed);
    if (done_.fetch_add(ran, std::memory_order_acq_rel) + ran == total) done_.notify_one();
  }

  void worker(int id, uint32_t seen) {
    tids_[id].store(static_cast<int>(syscall(SYS_gettid)), std::memory_order_release);
    for (;;) {
      // A worker left out of the jobs (fewer threads wanted) sleeps until that changes.
      const uint32_t roster = roster_.load(std::memory_order_acquire);
      if (id >= helpers_.load(std::memory_order_acquire)) {
        roster_.wait(roster, std::memory_order_acquire);
        continue;
      }
      // Spin for the next job for a while, then sleep.
      const auto posted = [&] { return generation_.load(std::memory_order_acquire) != seen; };
      if (!spin_until(posted, policy_idle_.load(std::memory_order_relaxed)))
        while (!posted()) generation_.wait(seen, std::memory_order_acquire);
      seen = generation_.load(std::memory_order_acquire);
      if (id >= helpers_.load()) continue;
      cpus_[id].store(sched_getcpu(), std::memory_order_relaxed);
      work(seen);
    }
  }

  alignas(64) std::atomic<uint64_t> word_{0};        // generation << 32 | next unclaimed index
  alignas(64) std::atomic<uint32_t> done_{0};        // indices of the current job finished
  alignas(64) std::atomic<uint32_t> generation_{0};  // the workers sleep on it
  std::atomic<uint32_t> roster_{0};  // bumped when helpers_ changes; left-out workers sleep on it
  std::atomic<IndexFunction> fn_{nullptr};
  std::atomic<void*> context_{nullptr};
  std::atomic<uint32_t> n_{0};
  std::atomic<int> helpers_{0};  // workers 0 .. helpers_ - 1 take part in the jobs
  std::atomic<int> policy_idle_{0}, policy_join_{0};
  std::atomic<bool> policy_adapt_{false};
  alignas(64) std::atomic<bool> in_use_{false};
  uint32_t generation_count_ = 0;      // owned by the caller holding in_use_
  int workers_ = 0;                    // likewise
  std::deque<std::atomic<int>> tids_;  // each worker's thread id, once it runs (0 before)
  std::deque<std::atomic<int>> cpus_;  // the CPU each worker last started a job on
  std::vector<int> delay_fds_;         // each worker's schedstat file, opened when first read
  std::vector<int> cpu_scratch_;
  // Contention control, owned by the caller holding in_use_ (threads_for_job).
  int wanted_ = 0, active_ = 0;
  bool probing_ = false, warming_up_ = false;
  std::vector<double> history_;  // the last windows' lost threads (0 where two shared a CPU)
  Clock::time_point window_start_, reduced_until_;
  Clock::duration backoff_ = kMinBackoff;
  std::thread::id window_caller_;
  int64_t window_delay_ = -1;
  std::mutex error_mutex_;
  std::exception_ptr error_;
};

std::atomic<Pool*> g_pool{nullptr};

// Never destroyed: the detached workers use it until the process ends.
Pool& pool() {
  static Pool* p = [] {
    auto* created = new Pool();
    g_pool.store(created);
    pthread_atfork(nullptr, nullptr, [] {
      if (Pool* q = g_pool.load()) q->forget_workers();
    });
    return created;
  }();
  return *p;
}

std::atomic<int> g_threads{0};  // 0: not set yet

void run_openmp(int64_t n, IndexFunction fn, void* context, int threads) {
  std::mutex error_mutex;
  std::exception_ptr error;
#pragma omp parallel for schedule(static) num_threads(threads)
  for (int64_t i = 0; i < n; ++i) {
    try {
      fn(context, i);
    } catch (...) {
      std::lock_guard<std::mutex> lock(error_mutex);
      if (!error) error = std::current_exception();
    }
  }
  if (error) std::rethrow_exception(error);
}

std::atomic<CpuRuntime>& runtime_setting() {
  static std::atomic<CpuRuntime> runtime = [] {
    const char* text = std::getenv("CUEBM_CPU_RUNTIME");
    return text && std::string_view(text) == "openmp" ? CpuRuntime::kOpenMp : CpuRuntime::kPool;
  }();
  return runtime;
}

}  // namespace

CpuRuntime cpu_runtime() { return runtime_setting().load(std::memory_order_relaxed); }
void set_cpu_runtime(CpuRuntime runtime) { runtime_setting().store(runtime); }

PoolPolicy pool_policy() { return pool().policy(); }
void set_pool_policy(const PoolPolicy& policy) { pool().set_policy(policy); }

std::string cpu_runtime_description() {
  if (cpu_runtime() == CpuRuntime::kOpenMp) return "openmp";
  const PoolPolicy p = pool_policy();
  return "pool (spin " + std::to_string(p.idle_spin_us) + " us idle, " +
         std::to_string(p.join_spin_us) + " us join, then sleep" +
         (p.adapt ? "; fewer threads while they wait for CPUs" : "") + ")";
}

void set_cpu_threads(int threads) {
  g_threads.store(threads);
  omp_set_num_threads(threads);  // for OpenMP loops outside the pool (custom energies)
}

int cpu_threads() {
  int t = g_threads.load(std::memory_order_relaxed);
  if (t == 0) {  // OMP_NUM_THREADS when set, else the processors this process may use
    t = std::max(1, omp_get_max_threads());
    int expected = 0;
    if (!g_threads.compare_exchange_strong(expected, t)) t = expected;
  }
  return t;
}

void run_parallel(int64_t n, IndexFunction fn, void* context) {
  if (n <= 0) return;
  const int threads = cpu_threads();
  if (threads == 1 || n == 1) {
    for (int64_t i = 0; i < n; ++i) fn(context, i);
    return;
  }
  if (cpu_runtime() == CpuRuntime::kOpenMp) return run_openmp(n, fn, context, threads);
  Pool& p = pool();
  if (!p.try_acquire()) {
    for (int64_t i = 0; i < n; ++i) fn(context, i);
    return;
  }
  struct Release {
    Pool& pool;
    ~Release() { pool.release(); }
  } release{p};
  if (n <= kMaxJob) return p.run(n, fn, context, threads);
  // Very long loops: jobs of kMaxJob indices, each shifted by its start.
  struct Shifted {
    IndexFunction fn;
    void* context;
    int64_t start;
  };
  for (int64_t start = 0; start < n; start += kMaxJob) {
    Shifted s{fn, context, start};
    p.run(
        std::min(kMaxJob, n - start),
        [](void* c, int64_t i) {
          auto* sh = static_cast<Shifted*>(c);
          sh->fn(sh->context, sh->start + i);
        },
        &s, threads);
  }
}

}  // namespace cuebm::detail
