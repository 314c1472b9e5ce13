// rnnkern — the CPU kernels' threads (parallel.h).
//
// A Team belongs to one calling thread and holds its workers (std::threads made on
// first need, kept for the thread's life). A region publishes (fn, nth) and bumps
// the job generation; workers 1 .. nth-1 run fn and count down `pending`; the
// caller runs tid 0 and waits for the count. Waiting everywhere (a worker for a
// job, the caller for the workers, a thread at a barrier) spins a while with the
// CPU's pause hint, then sleeps on the atomic (a futex), as OpenMP's default wait
// policy spins then sleeps.
#include "parallel.h"

#include <pthread.h>
#include <sched.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

namespace rnnkern {
namespace par {
namespace {

// Spins before sleeping: ~0.1-0.5 ms of pause instructions, the order of
// OpenMP's default spin count, so back-to-back regions and the barriers of one
// time loop never reach the kernel; and, as libgomp throttles its spinning when
// a team has more threads than the process has CPUs, a short spin then (a
// partner that is not running cannot arrive while one spins on its CPU).
constexpr int kSpins = 1 << 14;
constexpr int kSpinsOversubscribed = 64;

int process_cpus() {
  static const int n = [] {
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof(set), &set) == 0) return std::max(1, CPU_COUNT(&set));
    return std::max(1, (int)std::thread::hardware_concurrency());
  }();
  return n;
}

// The spins of this thread's waits (set per region: its size against the CPUs).
thread_local int tl_spins = kSpins;
inline int spins_for(int nth) { return nth > process_cpus() ? kSpinsOversubscribed : kSpins; }

inline void relax() {
#if defined(__x86_64__) || defined(__i386__)
  _mm_pause();
#endif
}

// Waits until a.load() != old: spin, then sleep on the atomic.
template <class T>
inline T await_change(const std::atomic<T>& a, T old) {
  for (int i = 0; i < tl_spins; ++i) {
    const T v = a.load(std::memory_order_acquire);
    if (v != old) return v;
    relax();
  }
  for (;;) {
    a.wait(old, std::memory_order_acquire);
    const T v = a.load(std::memory_order_acquire);
    if (v != old) return v;
  }
}

class Team;

// Where the calling thread is: whether in a region, the team whose barrier it
// waits at (null in a region of one), its place, the region's size.
thread_local bool tl_in_region = false;
thread_local Team* tl_team = nullptr;
thread_local int tl_tid = 0;
thread_local int tl_nth = 1;

struct Place {
  bool in;
  Team* team;
  int tid, nth;
  Place(Team* t, int i, int n) : in(tl_in_region), team(tl_team), tid(tl_tid), nth(tl_nth) {
    tl_spins = spins_for(n);
    tl_in_region = true;
    tl_team = t;
    tl_tid = i;
    tl_nth = n;
  }
  ~Place() {
    tl_in_region = in;
    tl_team = team;
    tl_tid = tid;
    tl_nth = nth;
  }
  Place(const Place&) = delete;
  Place& operator=(const Place&) = delete;
};

class Team {
 public:
  Team() = default;
  Team(const Team&) = delete;
  Team& operator=(const Team&) = delete;
  ~Team() {
    stop_.store(true, std::memory_order_release);
    job_.fetch_add(kGen, std::memory_order_release);
    job_.notify_all();
    for (auto& t : threads_) t.join();
  }

  // job_ holds the region's generation (high 32 bits) and its size (low 32), so a
  // worker reads both at once: a worker outside the region never runs it, and one
  // inside reads fn_, which cannot change before it has finished.
  static constexpr uint64_t kGen = uint64_t(1) << 32;

  void run(int nth, TeamFn fn) {
    grow(nth - 1);
    fn_ = &fn;
    pending_.store(nth - 1, std::memory_order_relaxed);
    const uint64_t next = ((job_.load(std::memory_order_relaxed) >> 32) + 1) << 32;
    job_.store(next | (uint32_t)nth, std::memory_order_release);   // publishes fn_, pending_
    job_.notify_all();
    {
      Place here(this, 0, nth);
      fn(0, nth);
    }
    tl_spins = spins_for(nth);
    for (int left = pending_.load(std::memory_order_acquire); left != 0;)
      left = await_change(pending_, left);
  }

  void barrier(int nth) {
    const uint32_t gen = bar_gen_.load(std::memory_order_acquire);
    if (bar_count_.fetch_add(1, std::memory_order_acq_rel) == nth - 1) {
      bar_count_.store(0, std::memory_order_relaxed);
      bar_gen_.fetch_add(1, std::memory_order_release);
      bar_gen_.notify_all();
      return;
    }
    await_change(bar_gen_, gen);
  }

  // In a forked child: the workers do not exist there. Their std::thread objects
  // are left unjoined on purpose (never destroyed: joining a thread the child
  // does not have is undefined), and the team starts afresh.
  void forget_workers_after_fork() {
    new std::vector<std::thread>(std::move(threads_));   // leaked by design
    threads_.clear();
    job_.store(0, std::memory_order_relaxed);
    pending_.store(0, std::memory_order_relaxed);
    bar_count_.store(0, std::memory_order_relaxed);
    bar_gen_.store(0, std::memory_order_relaxed);
    stop_.store(false, std::memory_order_relaxed);
  }

 private:
  void grow(int workers) {
    while ((int)threads_.size() < workers) {
      const int idx = (int)threads_.size() + 1;
      const uint64_t now = job_.load(std::memory_order_relaxed);
      threads_.emplace_back([this, idx, now] { work(idx, now); });
    }
  }

  void work(int idx, uint64_t seen) {
    for (;;) {
      seen = await_change(job_, seen);
      if (stop_.load(std::memory_order_acquire)) return;
      const int nth = (int)(uint32_t)seen;
      if (idx >= nth) continue;
      {
        Place here(this, idx, nth);
        (*fn_)(idx, nth);
      }
      tl_spins = spins_for(nth);
      if (pending_.fetch_sub(1, std::memory_order_acq_rel) == 1) pending_.notify_one();
    }
  }

  std::vector<std::thread> threads_;
  std::atomic<uint64_t> job_{0};
  std::atomic<int> pending_{0};
  std::atomic<uint32_t> bar_gen_{0};
  std::atomic<int> bar_count_{0};
  std::atomic<bool> stop_{false};
  TeamFn* fn_ = nullptr;
};

// The calling thread's own team, made at its first region, joined at its exit.
thread_local std::unique_ptr<Team> tl_own;

void after_fork_in_child() {
  if (tl_own) tl_own->forget_workers_after_fork();
  tl_in_region = false;
  tl_team = nullptr;
  tl_tid = 0;
  tl_nth = 1;
}

Team& own_team() {
  if (!tl_own) {
    static std::once_flag once;
    std::call_once(once, [] { pthread_atfork(nullptr, nullptr, after_fork_in_child); });
    tl_own = std::make_unique<Team>();
  }
  return *tl_own;
}

}  // namespace

void run(int nth, TeamFn fn) {
  if (nth <= 1 || tl_in_region) {   // one thread, or nested: the caller alone
    Place alone(nullptr, 0, 1);
    fn(0, 1);
    return;
  }
  own_team().run(nth, fn);
}

int thread_num() { return tl_tid; }
int num_threads() { return tl_nth; }

void barrier() {
  if (tl_team != nullptr && tl_nth > 1) tl_team->barrier(tl_nth);
}

}  // namespace par
}  // namespace rnnkern
