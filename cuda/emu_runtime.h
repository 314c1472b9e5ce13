// rnnkern — the host emulation of a CUDA grid ("cuda-emu"): the kernels of
// cuda/*.cuh compiled by the host compiler and run on the CPU.
//
// Three launch kinds, as each kernel needs:
//   Independent  no thread talks to another: every (block, thread) runs in turn
//                on the calling thread;
//   Block        threads of a block meet at RK_SYNC and share RK_SMEM: one
//                std::thread per CUDA thread of a block, each playing its thread
//                in every block in turn, with a barrier for RK_SYNC and one at
//                the end of each block (so the next block may reuse the memory);
//   Grid         the whole grid is alive at once (a persistent kernel with
//                RK_GRID_SYNC): one std::thread per CUDA thread of the grid, a
//                barrier and shared memory per block, one barrier for the grid.
//   Cluster      thread-block clusters of `cluster` consecutive blocks along x
//                (gridDim.x a multiple of it), run one cluster after another: each
//                alive at once as a Grid launch's blocks are, with a barrier for
//                RK_CLUSTER_SYNC and its blocks' shared memory addressable by rank
//                (rk_dsmem); no grid barrier.
// The std::threads are kept in a pool across launches; one launch runs at a time.
// The barriers are atomics (acquire / release, so ThreadSanitizer sees every
// happens-before edge the kernels rely on) with a futex to sleep on.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <thread>
#include <vector>

namespace rnnkern {
namespace emu {

struct Dim {
  int x = 1, y = 1;
};

enum class Launch { Independent, Block, Grid, Cluster };

void futex_wait(std::atomic<uint32_t>* word, uint32_t expected);
void futex_wake_all(std::atomic<uint32_t>* word);

class Barrier {
 public:
  explicit Barrier(int n) : n_(n) {}
  // A central barrier on two atomics: every arrival's fetch_add (acq_rel, one
  // release sequence) is acquired by the last one, whose release store of the next
  // generation the waiters acquire, so each thread's writes before the barrier
  // happen before every thread's reads after it (the edges ThreadSanitizer follows).
  // A waiter polls a few times, yielding (the last arrival is often one yield
  // away), then sleeps on a futex; a release wakes every sleeper at once, with no
  // mutex to re-acquire one by one (the condition variable this replaced made a
  // 32-thread warp's barrier, twice an mma, the emulation's largest cost: the
  // tensor-core tests ran 5x slower). Under ThreadSanitizer no polling: its
  // instrumented loads cost more than the sleep.
  void arrive_and_wait() {
    const uint32_t gen = gen_.load(std::memory_order_acquire);
    if (count_.fetch_add(1, std::memory_order_acq_rel) + 1 == n_) {
      count_.store(0, std::memory_order_relaxed);
      gen_.store(gen + 1, std::memory_order_release);
      futex_wake_all(&gen_);
      return;
    }
#ifndef __SANITIZE_THREAD__
    for (int spin = 0; spin < kSpins; ++spin) {
      if (gen_.load(std::memory_order_acquire) != gen) return;
      std::this_thread::yield();
    }
#endif
    while (gen_.load(std::memory_order_acquire) == gen) futex_wait(&gen_, gen);
  }

 private:
  std::atomic<int> count_{0};
  std::atomic<uint32_t> gen_{0};
  const int n_;
  static constexpr int kSpins = 16;
};

// A warp of a cooperative launch: its barrier (rk_warp_sync, and the two meetings
// of every exchange) and the buffer its lanes exchange values through.
struct Warp {
  explicit Warp(int n) : bar(n), size(n) {}
  Barrier bar;
  int size;
  float buf[32 * 8] = {};
};

// What a kernel body reads through RK_TX and friends: this OS thread's CUDA thread.
struct ThreadState {
  int tx = 0, ty = 0, bx = 0, by = 0, bdx = 1, bdy = 1, gdx = 1, gdy = 1;
  void* smem = nullptr;
  Barrier* block = nullptr;
  Barrier* grid = nullptr;
  Warp* warp = nullptr;   // cooperative launches: this thread's warp
  // cluster launches: the cluster's barrier, this block's rank in it, its blocks
  // and their shared memory (smem_bytes each); else null, 0, 1
  Barrier* cluster = nullptr;
  int crank = 0, csize = 1;
  float* const* cluster_smem = nullptr;
  size_t smem_bytes = 0;
};
extern thread_local ThreadState tls;

void sync_block();
void sync_grid();
// RK_CLUSTER_SYNC, rk_cluster_rank, rk_cluster_size, rk_dsmem (compat.cuh)
void sync_cluster();
int cluster_rank();
int cluster_size();
void* dsmem(const void* p, int rank);

// The warp-level operations of compat.cuh (see there for their contracts).
int lane();
void warp_sync();
float shfl_xor(float v, int mask);
float to_tf32(float x);
// x rounded to bfloat16 (to nearest, ties to even; Inf and NaN as they are)
float to_bf16(float x);
void mma_tf32(float* d, const float* a, const float* b);
uint32_t pack_bf16(float lo, float hi);
void mma_bf16(float* d, const uint32_t* a, const uint32_t* b);
// rk_cp_async4 / 16, rk_cp_async_commit, rk_cp_async_wait<n>: this thread's copies
// queued with their group, performed when a wait covers the group, dropped at the
// thread's next kernel body (compat.cuh)
void cp_async(void* dst, const void* src, int bytes);
void cp_async_commit();
void cp_async_wait(int n);
// The other end of what a device may do (the emulator self-test runs both): every
// copy done as it is issued, so a stage overwritten while other warps still read it
// is a data race ThreadSanitizer reports (the default, done at the wait, makes a read
// before the wait see stale values instead). Process-wide.
void set_cp_async_at_issue(bool on);
// rk_clock's stand-in: nanoseconds of a steady clock
long long clock_ns();
// rk_st_release / rk_ld_acquire / rk_pause
void store_release(int* p, int v);
int load_acquire(const int* p);
void pause();

// Runs body once per CUDA thread of the grid (body reads its ids from tls), or,
// while this thread captures a Graph, records the launch for the graph's replay;
// cluster: the blocks a cluster (Launch::Cluster only).
void launch(Launch kind, Dim grid, Dim block, size_t smem_bytes, std::function<void()> body,
            int cluster = 1);

// Fault injection for the tests (_core.testing.emu_fail_launch_after): the n-th
// launch run from now (n >= 1; 0 turns it off) throws std::runtime_error instead
// of running, as a failed kernel launch makes the CUDA backend throw. Recorded
// launches count when a graph replays them.
void fail_launch_after(long n);

// A kernel and its arguments, copied now, for launch(): what a launch records
// must outlive the arguments of the call that made it.
template <class F, class... A>
std::function<void()> bind_kernel(F f, A... args) {
  return [f, args...] { f(args...); };
}

// The emulation of a CUDA graph: the launches this thread makes between
// begin_capture and end_capture are recorded, not run; replay runs them in order.
// update() takes a later capture's launches in place of these when it has the
// same shape (as many launches, of the same kinds), as cudaGraphExecUpdate
// would; instantiate() has nothing to do here.
class Graph {
 public:
  void begin_capture();
  void end_capture();
  void instantiate() {}
  bool update(Graph& fresh);
  void replay() const;
  size_t size() const { return launches_.size(); }

 private:
  friend void launch(Launch, Dim, Dim, size_t, std::function<void()>, int);
  struct Recorded {
    Launch kind;
    Dim grid, block;
    size_t smem;
    std::function<void()> body;
    int cluster;
  };
  std::vector<Recorded> launches_;
};

}  // namespace emu
}  // namespace rnnkern
