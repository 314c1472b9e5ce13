// rnnkern — cuda-emu: running a grid on the CPU (see emu_runtime.h).
#include "emu_runtime.h"

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace rnnkern {
namespace emu {

thread_local ThreadState tls;

void futex_wait(std::atomic<uint32_t>* word, uint32_t expected) {
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(word), FUTEX_WAIT_PRIVATE, expected, nullptr,
          nullptr, 0);
}
void futex_wake_all(std::atomic<uint32_t>* word) {
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(word), FUTEX_WAKE_PRIVATE, INT32_MAX, nullptr,
          nullptr, 0);
}

void sync_block() {
  if (!tls.block) throw std::logic_error("rnnkern cuda-emu: RK_SYNC in a launch without blocks");
  tls.block->arrive_and_wait();
}

void sync_grid() {
  if (!tls.grid) throw std::logic_error("rnnkern cuda-emu: RK_GRID_SYNC outside a grid launch");
  tls.grid->arrive_and_wait();
}

void sync_cluster() {
  if (!tls.cluster)
    throw std::logic_error("rnnkern cuda-emu: RK_CLUSTER_SYNC outside a cluster launch");
  tls.cluster->arrive_and_wait();
}

int cluster_rank() { return tls.crank; }
int cluster_size() { return tls.csize; }

// The address p (in this block's shared memory) has in the shared memory of the
// cluster's block `rank`: a wrong address or rank is the kernel's bug, not a read of
// someone else's memory.
void* dsmem(const void* p, int rank) {
  if (!tls.cluster_smem)
    throw std::logic_error("rnnkern cuda-emu: rk_dsmem outside a cluster launch");
  if (rank < 0 || rank >= tls.csize)
    throw std::logic_error("rnnkern cuda-emu: rk_dsmem of rank " + std::to_string(rank) +
                           " in a cluster of " + std::to_string(tls.csize));
  const char* c = static_cast<const char*>(p);
  const char* base = reinterpret_cast<const char*>(tls.smem);
  if (c < base || c >= base + tls.smem_bytes)
    throw std::logic_error("rnnkern cuda-emu: rk_dsmem of an address outside the block's "
                           "shared memory");
  return reinterpret_cast<char*>(tls.cluster_smem[rank]) + (c - base);
}

int lane() { return (tls.ty * tls.bdx + tls.tx) % 32; }

namespace {
Warp& my_warp(bool full) {
  if (!tls.warp) throw std::logic_error("rnnkern cuda-emu: a warp operation outside a cooperative launch");
  if (full && tls.warp->size != 32)
    throw std::logic_error("rnnkern cuda-emu: mma.sync needs a whole warp of 32 threads");
  return *tls.warp;
}

uint32_t bits(float x) {
  uint32_t u;
  std::memcpy(&u, &x, sizeof u);
  return u;
}
float from_bits(uint32_t u) {
  float x;
  std::memcpy(&x, &u, sizeof x);
  return x;
}
// what the tensor core reads of a TF32 operand: the top 19 bits
float tf32_operand(float x) { return from_bits(bits(x) & 0xffffe000u); }
}  // namespace

void warp_sync() { my_warp(false).bar.arrive_and_wait(); }

float shfl_xor(float v, int mask) {
  Warp& w = my_warp(false);
  const int l = lane();
  w.buf[l] = v;
  w.bar.arrive_and_wait();
  const int src = l ^ mask;
  const float r = src < w.size ? w.buf[src] : v;
  w.bar.arrive_and_wait();   // every lane has read before the buffer is reused
  return r;
}

// cvt.rna.tf32.f32: keep 10 mantissa bits, rounding to nearest with ties away from
// zero (adding half the dropped range to the magnitude bits does exactly that);
// Inf and NaN unchanged.
float to_tf32(float x) {
  const uint32_t u = bits(x);
  if ((u & 0x7f800000u) == 0x7f800000u) return x;
  return from_bits((u + 0x1000u) & 0xffffe000u);
}

float to_bf16(float x) {
  const uint32_t u = bits(x);
  if ((u & 0x7f800000u) == 0x7f800000u) return x;
  return from_bits((u + 0x7fffu + ((u >> 16) & 1u)) & 0xffff0000u);
}

namespace {
// One mma of the warp: every lane posts its fragment registers (a[4] of A, b[2] of
// B, as bit patterns: buf holds 8 a lane, A's in 0..3, B's in 4..5), then computes
// its four outputs D(g + 8 (r/2), 2t + r%2) from the whole tile, k in order, in
// float32 (products of TF32 or bfloat16 operands are exact in float32; the device's
// order of the additions is its own, so device and emulation agree to rounding,
// not bitwise). A(buf, row, k) and B(buf, k, col) read one operand element.
template <int K, class ReadA, class ReadB>
void warp_mma(float* d, const uint32_t* a, const uint32_t* b, ReadA A, ReadB B) {
  Warp& w = my_warp(true);
  const int l = lane();
  float* mine = w.buf + l * 8;
  for (int r = 0; r < 4; ++r) mine[r] = from_bits(a[r]);
  mine[4] = from_bits(b[0]);
  mine[5] = from_bits(b[1]);
  w.bar.arrive_and_wait();
  const int g = l / 4, t = l % 4;
  float out[4];
  for (int r = 0; r < 4; ++r) {
    const int row = g + 8 * (r / 2), col = 2 * t + r % 2;
    float acc = d[r];
    for (int k = 0; k < K; ++k) acc += A(w.buf, row, k) * B(w.buf, k, col);
    out[r] = acc;
  }
  w.bar.arrive_and_wait();   // every lane has read before the buffer is reused
  for (int r = 0; r < 4; ++r) d[r] = out[r];
}

// element k % 2 of a register of two bfloat16 values (k even: the low half)
float bf16_half(float reg, int k) {
  return from_bits(k % 2 ? bits(reg) & 0xffff0000u : bits(reg) << 16);
}
}  // namespace

// One m16n8k8 TF32 mma of the warp (warp_mma; the operands' low 13 bits ignored).
void mma_tf32(float* d, const float* a, const float* b) {
  const uint32_t ra[4] = {bits(a[0]), bits(a[1]), bits(a[2]), bits(a[3])};
  const uint32_t rb[2] = {bits(b[0]), bits(b[1])};
  warp_mma<8>(
      d, ra, rb,
      [](const float* buf, int row, int k) {   // a[r] of lane (row%8)*4 + k%4, r = row/8 + 2*(k/4)
        return tf32_operand(buf[((row % 8) * 4 + k % 4) * 8 + row / 8 + 2 * (k / 4)]);
      },
      [](const float* buf, int k, int col) {   // b[r] of lane col*4 + k%4, r = k/4
        return tf32_operand(buf[(col * 4 + k % 4) * 8 + 4 + k / 4]);
      });
}

long long clock_ns() {
  return (long long)std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

void store_release(int* p, int v) { std::atomic_ref<int>(*p).store(v, std::memory_order_release); }
int load_acquire(const int* p) {
  return std::atomic_ref<int>(*const_cast<int*>(p)).load(std::memory_order_acquire);
}
void pause() { std::this_thread::yield(); }

// cp.async: the copies this OS thread's CUDA thread issued and has not waited for,
// each with the group it belongs to (async_groups: the groups committed so far;
// a copy issued after the last commit belongs to the open group, async_groups).
namespace {
struct AsyncCopy {
  void* dst;
  const void* src;
  int bytes;
  long group;
};
thread_local std::vector<AsyncCopy> async_copies;
thread_local long async_groups = 0;
}  // namespace

std::atomic<bool> cp_async_at_issue{false};
void set_cp_async_at_issue(bool on) { cp_async_at_issue.store(on); }
void cp_async(void* dst, const void* src, int bytes) {
  if (cp_async_at_issue.load(std::memory_order_relaxed))
    std::memcpy(dst, src, (size_t)bytes);
  else
    async_copies.push_back({dst, src, bytes, async_groups});
}
void cp_async_commit() { ++async_groups; }
void cp_async_wait(int n) {
  // every committed group but the newest n is complete: its copies done now, in order
  const long done = async_groups - n;
  size_t keep = 0;
  for (const AsyncCopy& c : async_copies) {
    if (c.group < done)
      std::memcpy(c.dst, c.src, (size_t)c.bytes);
    else
      async_copies[keep++] = c;
  }
  async_copies.resize(keep);
}

// Two bfloat16 values in one 32-bit register, lo in the low half: the top 16 bits
// of each float (exact for values that are bfloat16 already).
uint32_t pack_bf16(float lo, float hi) { return (bits(hi) & 0xffff0000u) | (bits(lo) >> 16); }

// One m16n8k16 BF16 mma of the warp (warp_mma).
void mma_bf16(float* d, const uint32_t* a, const uint32_t* b) {
  warp_mma<16>(
      d, a, b,
      [](const float* buf, int row, int k) {   // register row/8 + 2 (k/8) of lane (row%8)*4 + (k%8)/2
        return bf16_half(buf[((row % 8) * 4 + (k % 8) / 2) * 8 + row / 8 + 2 * (k / 8)], k);
      },
      [](const float* buf, int k, int col) {   // register k/8 of lane col*4 + (k%8)/2
        return bf16_half(buf[(col * 4 + (k % 8) / 2) * 8 + 4 + k / 8], k);
      });
}

namespace {

// Worker threads kept across launches (creating a block's threads per launch
// cost ~5 ms, more than most of the kernels they run). run(n, work) runs
// work(0..n-1) on n threads at once and returns when all are done; one launch
// at a time. A forked child starts a pool of its own (the parent's threads do
// not exist there; their objects are left alone).
class Pool {
 public:
  void run(int n, const std::function<void(int)>& work) {
    std::lock_guard<std::mutex> one_launch(launch_m_);
    std::unique_lock<std::mutex> lock(m_);
    if (pid_ != getpid()) {          // first use, or a forked child
      workers_ = new std::vector<std::thread*>();
      pid_ = getpid();
      stop_ = false;
    }
    while ((int)workers_->size() < n) {
      const int id = (int)workers_->size();
      workers_->push_back(new std::thread([this, id] { loop(id); }));
    }
    job_ = &work;
    active_ = n;
    remaining_ = n;
    ++gen_;
    start_.notify_all();
    done_.wait(lock, [&] { return remaining_ == 0; });
    job_ = nullptr;
  }
  ~Pool() {
    {
      std::lock_guard<std::mutex> lock(m_);
      if (pid_ != getpid() || !workers_) return;
      stop_ = true;
      ++gen_;
    }
    start_.notify_all();
    for (std::thread* t : *workers_) {
      t->join();
      delete t;
    }
    delete workers_;
  }

 private:
  void loop(int id) {
    uint64_t seen = 0;
    for (;;) {
      const std::function<void(int)>* job;
      {
        std::unique_lock<std::mutex> lock(m_);
        start_.wait(lock, [&] { return gen_ != seen; });
        seen = gen_;
        if (stop_) return;
        if (id >= active_) continue;
        job = job_;
      }
      (*job)(id);
      std::lock_guard<std::mutex> lock(m_);
      if (--remaining_ == 0) done_.notify_all();
    }
  }

  std::mutex launch_m_, m_;
  std::condition_variable start_, done_;
  std::vector<std::thread*>* workers_ = nullptr;
  pid_t pid_ = 0;
  uint64_t gen_ = 0;
  int active_ = 0, remaining_ = 0;
  bool stop_ = false;
  const std::function<void(int)>* job_ = nullptr;
};

Pool& pool() {
  static Pool p;
  return p;
}

// The smem buffer: float4-aligned like CUDA's dynamic shared memory.
std::unique_ptr<float[]> smem_buffer(size_t bytes) {
  return std::unique_ptr<float[]>(new float[(bytes + 15) / 16 * 4 + 4]());
}

void set_ids(ThreadState& s, Dim grid, Dim block, int b, int t) {
  async_copies.clear();   // a kernel body starts: an earlier one's unwaited copies dropped
  async_groups = 0;
  s.cluster = nullptr;   // a cluster launch sets these after
  s.crank = 0;
  s.csize = 1;
  s.cluster_smem = nullptr;
  s.smem_bytes = 0;
  s.bdx = block.x;
  s.bdy = block.y;
  s.gdx = grid.x;
  s.gdy = grid.y;
  s.bx = b % grid.x;
  s.by = b / grid.x;
  s.tx = t % block.x;
  s.ty = t / block.x;
}

}  // namespace

namespace {
thread_local Graph* capturing = nullptr;
}

void Graph::begin_capture() {
  if (capturing) throw std::logic_error("rnnkern cuda-emu: a graph capture is already under way");
  launches_.clear();
  capturing = this;
}

void Graph::end_capture() {
  if (capturing != this) throw std::logic_error("rnnkern cuda-emu: end_capture without begin");
  capturing = nullptr;
}

bool Graph::update(Graph& fresh) {
  if (fresh.launches_.size() != launches_.size()) return false;
  for (size_t i = 0; i < launches_.size(); ++i)
    if (fresh.launches_[i].kind != launches_[i].kind) return false;
  launches_.swap(fresh.launches_);
  return true;
}

void Graph::replay() const {
  for (const Recorded& r : launches_) launch(r.kind, r.grid, r.block, r.smem, r.body, r.cluster);
}

namespace {
std::atomic<long> fail_countdown{0};
}  // namespace

void fail_launch_after(long n) { fail_countdown.store(n > 0 ? n : 0); }

void launch(Launch kind, Dim grid, Dim block, size_t smem_bytes, std::function<void()> body,
            int cluster) {
  if (kind == Launch::Cluster ? cluster < 1 || grid.x % cluster != 0 : cluster != 1)
    throw std::logic_error("rnnkern cuda-emu: a cluster of " + std::to_string(cluster) +
                           " blocks for a grid of " + std::to_string(grid.x) + " along x");
  if (capturing) {
    capturing->launches_.push_back({kind, grid, block, smem_bytes, std::move(body), cluster});
    return;
  }
  for (long c = fail_countdown.load(); c > 0;) {
    if (fail_countdown.compare_exchange_weak(c, c - 1)) {
      if (c == 1)
        throw std::runtime_error("rnnkern cuda-emu: kernel launch failed (injected by "
                                 "_core.testing.emu_fail_launch_after)");
      break;
    }
  }
  const int nb = grid.x * grid.y, nt = block.x * block.y;
  if (nb <= 0 || nt <= 0) return;
  const ThreadState saved = tls;
  if (kind == Launch::Independent) {
    auto smem = smem_buffer(smem_bytes);
    for (int b = 0; b < nb; ++b) {
      for (int t = 0; t < nt; ++t) {
        set_ids(tls, grid, block, b, t);
        tls.smem = smem.get();
        tls.block = nullptr;
        tls.grid = nullptr;
        tls.warp = nullptr;
        body();
      }
    }
    tls = saved;
    return;
  }
  if (kind == Launch::Block) {
    auto smem = smem_buffer(smem_bytes);
    Barrier bar(nt);
    std::vector<std::unique_ptr<Warp>> warps;
    for (int w = 0; w * 32 < nt; ++w) warps.emplace_back(new Warp(std::min(32, nt - w * 32)));
    pool().run(nt, [&](int t) {
      for (int b = 0; b < nb; ++b) {
        set_ids(tls, grid, block, b, t);
        tls.smem = smem.get();
        tls.block = &bar;
        tls.grid = nullptr;
        tls.warp = warps[t / 32].get();
        body();
        bar.arrive_and_wait();  // the block is done before the next reuses smem
      }
    });
    return;
  }
  // Grid: the whole grid alive at once, one barrier for it (RK_GRID_SYNC). Cluster:
  // a cluster at a time, its blocks alive at once, one barrier for the cluster
  // (RK_CLUSTER_SYNC) and its blocks' shared memory addressable by rank (rk_dsmem).
  const bool clusters = kind == Launch::Cluster;
  const int group = clusters ? cluster : nb, wpb = (nt + 31) / 32;
  for (int first = 0; first < nb; first += group) {
    std::vector<std::unique_ptr<float[]>> smem;
    std::vector<float*> bases;
    std::vector<std::unique_ptr<Barrier>> bars;
    std::vector<std::unique_ptr<Warp>> warps;   // the group's block r's warp w at r * wpb + w
    for (int r = 0; r < group; ++r) {
      smem.push_back(smem_buffer(smem_bytes));
      bases.push_back(smem.back().get());
      bars.emplace_back(new Barrier(nt));
      for (int w = 0; w < wpb; ++w) warps.emplace_back(new Warp(std::min(32, nt - w * 32)));
    }
    Barrier group_bar(group * nt);
    pool().run(group * nt, [&](int i) {
      const int r = i / nt, t = i % nt;
      set_ids(tls, grid, block, first + r, t);
      tls.smem = bases[(size_t)r];
      tls.block = bars[(size_t)r].get();
      tls.grid = clusters ? nullptr : &group_bar;
      tls.warp = warps[(size_t)(r * wpb + t / 32)].get();
      if (clusters) {
        tls.cluster = &group_bar;
        tls.crank = r;
        tls.csize = group;
        tls.cluster_smem = bases.data();
        tls.smem_bytes = smem_bytes;
      }
      body();
    });
  }
}

}  // namespace emu
}  // namespace rnnkern
