// The CPU backend's threads: a pool that keeps working on a machine shared with other programs.
//
// OpenMP's parallel loops end in a barrier at which every thread waits for the slowest, and
// libgomp's waiting threads spin (300,000 iterations by default, fixed when libgomp loads, so a
// library cannot change it at run time). When another program takes one of 2 cores, the thread
// that shares that core is descheduled for whole time slices while its team spins: a 2-thread
// CD-10 iteration went from 0.5 ms to 24 ms. This pool differs in four ways:
//  - indices are claimed one at a time from a shared counter (the caller claims too), so a
//    descheduled thread holds back at most the one index it is running, and one that has not
//    woken yet holds back nothing: the others run what it would have run;
//  - nothing waits for a thread that has not claimed anything (no barrier at the end);
//  - waiting threads spin only briefly (bounded in time), then sleep in the kernel (futex),
//    which frees their core;
//  - while the threads keep waiting for CPUs (their run_delay in /proc/<tid>/schedstat), the
//    loops use fewer of them, and try all of them again later (thread_pool.cpp, kWindow).
// Every index runs exactly once and writes its own outputs, so results do not depend on the
// thread count or on which thread ran what (the tests check bit-identical results).
// bench/busy_machine.sh measures it; bench/RESULTS.md has the numbers.
#pragma once

#include <cstdint>
#include <string>

namespace cuebm::detail {

// Which implementation runs the CPU backend's parallel loops.
enum class CpuRuntime {
  kPool,    // the pool above (default)
  kOpenMp,  // `#pragma omp parallel for schedule(static)` (for comparisons; CUEBM_CPU_RUNTIME)
};

// Policy of the pool: how long (microseconds) an idle worker spins for the next loop before it
// sleeps, how long the calling thread spins for the indices still running on other threads
// before it sleeps, and whether fewer threads run while they wait for CPUs. Defaults from the
// environment (CUEBM_POOL_IDLE_SPIN_US, CUEBM_POOL_JOIN_SPIN_US, CUEBM_POOL_ADAPT=0/1), else
// the measured defaults in thread_pool.cpp. For experiments; results never depend on it.
struct PoolPolicy {
  int idle_spin_us = 0;
  int join_spin_us = 0;
  bool adapt = false;
};

// The runtime: CUEBM_CPU_RUNTIME ("pool", the default, or "openmp") until set_cpu_runtime.
CpuRuntime cpu_runtime();
void set_cpu_runtime(CpuRuntime runtime);  // for benchmarks
PoolPolicy pool_policy();
void set_pool_policy(const PoolPolicy& policy);  // for benchmarks
std::string cpu_runtime_description();           // e.g. "pool (spin 50 us idle, 20 us join)"

// Threads of the CPU backend (the caller counts as one); set_num_threads stores it here.
void set_cpu_threads(int threads);
int cpu_threads();

using IndexFunction = void (*)(void* context, int64_t index);
// Runs fn(context, i) once for every i in [0, n) on up to cpu_threads() threads, the calling
// thread included; returns when all have finished. The first exception thrown by fn is
// rethrown here, after the indices already started have finished (the others may or may not
// run). A call made while the pool is busy (from inside fn, or from another thread) runs its
// indices on the calling thread.
void run_parallel(int64_t n, IndexFunction fn, void* context);

}  // namespace cuebm::detail
