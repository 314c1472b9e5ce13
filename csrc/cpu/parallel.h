// rnnkern — the CPU kernels' threads: a team per calling thread, a barrier, and
// a static-schedule loop. What OpenMP's `parallel`, `barrier` and `parallel for
// schedule(static)` did for the kernels, without an OpenMP runtime, so that
//  - the extension needs no libgomp (one self-contained wheel for any glibc the
//    manylinux tag allows; ThreadSanitizer sees every synchronisation);
//  - each calling thread has its own team (concurrent Python threads' calls never
//    share workers), kept between calls, spinning briefly before sleeping;
//  - a region inside a region runs on its caller alone (OpenMP's nesting off);
//  - a forked child starts without workers (they do not exist there) and makes
//    new ones at its first region.
#pragma once

#include <cstdint>
#include <type_traits>
#include <utility>

namespace rnnkern {
namespace par {

// A call of fn(tid, nth) without owning fn (no allocation: regions start inside
// the layer calls).
class TeamFn {
 public:
  template <class F>
  TeamFn(F& f)  // NOLINT: implicit from any callable lvalue, as std::function_ref
      : obj_(static_cast<void*>(&f)), call_([](void* o, int tid, int nth) {
          (*static_cast<F*>(o))(tid, nth);
        }) {}
  void operator()(int tid, int nth) const { call_(obj_, tid, nth); }

 private:
  void* obj_;
  void (*call_)(void*, int, int);
};

// Runs fn(tid, nth) for tid = 0 .. nth-1 at once, tid 0 on the caller, and returns
// when every one has returned. nth <= 1, or a call inside a region: fn(0, 1) on
// the caller. Exceptions must not leave fn.
void run(int nth, TeamFn fn);

template <class F>
void parallel(int nth, F&& fn) {
  auto& f = fn;
  run(nth, TeamFn(f));
}

// The calling thread's place in its region (0 of 1 outside one).
int thread_num();
int num_threads();
// Every thread of the current region waits here for the others (nothing outside
// a region or in a region of one).
void barrier();

// fn(i) for i in [0, n) split into nth contiguous ranges, one a thread (OpenMP's
// schedule(static)).
template <class F>
void parallel_for(int nth, int64_t n, F&& fn) {
  if (n <= 0) return;
  if (nth > n) nth = (int)n;
  auto body = [&](int tid, int team) {
    const int64_t per = n / team, extra = n % team;
    const int64_t lo = tid * per + (tid < extra ? tid : extra);
    const int64_t hi = lo + per + (tid < extra ? 1 : 0);
    for (int64_t i = lo; i < hi; ++i) fn(i);
  };
  parallel(nth, body);
}

}  // namespace par
}  // namespace rnnkern
