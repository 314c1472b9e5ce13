// rnnkern — a self-test of the CPU kernels' threads (csrc/cpu/parallel.h), built
// and run under ThreadSanitizer by CI (.ci/run): regions of every size with
// barriers between phases that read what other threads wrote, static-schedule
// loops, nested regions (run alone), several calling threads with their own
// teams at once, and a fork after the workers exist (the child makes new ones).
//   g++ -std=c++20 -O1 -g -fsanitize=thread -Icsrc/cpu tests/cpp/parallel_selftest.cc
//       csrc/cpu/parallel.cc -o parallel_selftest -lpthread   (one line)
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <thread>
#include <vector>

#include "parallel.h"

namespace par = rnnkern::par;

static int failures = 0;
#define CHECK(cond, ...)                 \
  do {                                   \
    if (!(cond)) {                       \
      std::printf("FAIL: " __VA_ARGS__); \
      std::printf("\n");                 \
      ++failures;                        \
    }                                    \
  } while (0)

// Phases separated by barriers: each thread writes its slot, then reads its
// neighbour's (a race without the barrier), many times over.
static bool phases(int nth, int rounds) {
  std::vector<long> slot(nth, 0), seen(nth, 0);
  std::atomic<int> wrong{0};
  par::parallel(nth, [&](int tid, int team) {
    if (team != nth || par::num_threads() != nth || par::thread_num() != tid) ++wrong;
    for (int r = 1; r <= rounds; ++r) {
      slot[tid] = (long)r * 1000 + tid;
      par::barrier();
      const int other = (tid + 1) % team;
      if (slot[other] != (long)r * 1000 + other) ++wrong;
      seen[tid] += slot[other];
      par::barrier();
    }
  });
  return wrong.load() == 0;
}

static bool loop_covers(int nth, int64_t n) {
  std::vector<int> hits(n, 0);
  par::parallel_for(nth, n, [&](int64_t i) { hits[i] += 1; });
  for (int64_t i = 0; i < n; ++i)
    if (hits[i] != 1) return false;
  return true;
}

static bool nested_runs_alone() {
  std::atomic<int> wrong{0};
  par::parallel(3, [&](int, int) {
    par::parallel(4, [&](int tid, int team) {
      if (tid != 0 || team != 1 || par::num_threads() != 1) ++wrong;
      par::barrier();   // a region of one: no wait
    });
    par::barrier();     // the outer team's barrier still works afterwards
  });
  return wrong.load() == 0;
}

int main() {
  for (int nth : {1, 2, 3, 4, 7}) CHECK(phases(nth, 200), "phases with %d threads", nth);
  for (int nth : {1, 2, 5})
    for (int64_t n : {0, 1, 4, 5, 1000}) CHECK(loop_covers(nth, n), "loop %d x %ld", nth, (long)n);
  CHECK(nested_runs_alone(), "nested regions");
  CHECK(par::num_threads() == 1 && par::thread_num() == 0, "outside a region");

  // several callers at once, each with its own team
  std::atomic<int> ok{0};
  std::vector<std::thread> callers;
  for (int c = 0; c < 3; ++c)
    callers.emplace_back([&ok, c] {
      bool good = true;
      for (int i = 0; i < 50; ++i) good = good && phases(2 + c % 2, 20) && loop_covers(3, 97);
      if (good) ++ok;
    });
  for (auto& t : callers) t.join();
  CHECK(ok.load() == 3, "concurrent callers: %d of 3", ok.load());

  // fork after the workers exist: the child's regions make new workers
  // (ThreadSanitizer cannot follow threads started after a multi-threaded fork:
  // CI runs this part in the build without it)
#if defined(__SANITIZE_THREAD__)
  std::printf("fork: checked in the build without ThreadSanitizer\n");
#else
  CHECK(phases(3, 10), "before fork");
  std::fflush(stdout);
  const pid_t pid = fork();
  if (pid == 0) _exit(phases(3, 50) && loop_covers(2, 31) ? 0 : 1);
  int status = 0;
  waitpid(pid, &status, 0);
  CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "forked child");
  CHECK(phases(2, 10), "parent after fork");
#endif

  std::printf("parallel selftest: %s\n", failures ? "FAILED" : "ok");
  return failures ? 1 : 0;
}
