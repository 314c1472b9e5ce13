// rnnkern — the GPU host side's launch layer: device buffers (Buf), the counters
// and the plan the tests and the benchmark read, the graph cache of the per-step
// loops (time_loop), GEMM arguments (gemm_args) and launches (gemm, gemm_hoisted,
// bias_grad), and the persistent family's partition (seq_plan) and launches.
// Part of driver.cuh (see its header for what the including build defines).
#pragma once

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <map>
#include <cstring>
#include <atomic>
#include <cstdlib>
#include <mutex>
#include <stdexcept>
#include <string>
#include <memory>
#include <utility>
#include <vector>

#include "gpu_api.h"
#include "kernels.cuh"
#include "persistent.cuh"
#include "plan.h"
#include "step_mma.cuh"
#include "rnnkern/bf16.h"
#include "rnnkern/dispatch.h"

namespace rnnkern {
namespace RK_GPU_NS {

template <class T>
class Buf {
 public:
  Buf() = default;
  explicit Buf(size_t n) : n_(n) {
    if (n) p_ = static_cast<T*>(Runtime::alloc(n * sizeof(T)));
  }
  Buf(const Buf&) = delete;
  Buf& operator=(const Buf&) = delete;
  Buf(Buf&& o) noexcept : p_(std::exchange(o.p_, nullptr)), n_(std::exchange(o.n_, 0)) {}
  Buf& operator=(Buf&& o) noexcept {
    std::swap(p_, o.p_);
    std::swap(n_, o.n_);
    return *this;
  }
  ~Buf() {
    if (p_) Runtime::release(p_);
  }
  T* get() const { return p_; }
  size_t size() const { return n_; }
  // from / to the caller's array: host memory, or this backend's device memory
  // where the call says on_device
  void upload(const T* src, bool on_device = false) {
    if (!n_ || !src) return;
    if (on_device)
      Runtime::copy(p_, src, n_ * sizeof(T));
    else
      Runtime::to_device(p_, src, n_ * sizeof(T));
  }
  void download(T* dst, bool on_device = false) const {
    if (!n_ || !dst) return;
    if (on_device)
      Runtime::copy(dst, p_, n_ * sizeof(T));
    else
      Runtime::to_host(dst, p_, n_ * sizeof(T));
  }
  void zero() {
    if (n_) Runtime::zero(p_, n_ * sizeof(T));
  }

 private:
  T* p_ = nullptr;
  size_t n_ = 0;
};

// Time loops (forward or backward) the persistent family ran, time loops run as a
// captured graph, of those the ones that updated a cached graph instead of
// instantiating one, and the ones whose update the runtime refused, so that the
// cached graph was instantiated anew (for the tests and the benchmark).
inline std::atomic<long> persistent_launches{0}, graph_replays{0}, graph_updates{0},
    graph_reinstantiations{0};
// of the persistent loops, those launched as one thread-block cluster, and those
// whose exchange (h forward, dG backward) stayed on chip (plan.push)
inline std::atomic<long> cluster_launches{0}, push_launches{0}, flag_launches{0};
long persistent_count() { return persistent_launches.load(); }
long cluster_count() { return cluster_launches.load(); }
long push_count() { return push_launches.load(); }
long flag_count() { return flag_launches.load(); }
long graph_count() { return graph_replays.load(); }
long graph_update_count() { return graph_updates.load(); }
long graph_reinstantiation_count() { return graph_reinstantiations.load(); }

// The time-loop family: "auto" (the persistent family where its plan fits the
// device, else one launch a step), "steps", "persistent", or a forced persistent
// partition "persistent:BLOCKS,THREADS[,KC]" (set_plan; RNNKERN_FORCE_PLAN at
// first use). Graphs on: the per-step family, captured.
inline std::mutex plan_m;
inline bool plan_set = false;
inline PlanChoice plan_choice;
inline std::string plan_text = "auto";
void set_plan(const std::string& text) {
  PlanChoice c = parse_plan(text);
  std::lock_guard<std::mutex> g(plan_m);
  plan_choice = c;
  plan_text = text.empty() ? "auto" : text;
  plan_set = true;
}
inline PlanChoice current_plan() {
  std::lock_guard<std::mutex> g(plan_m);
  if (!plan_set) {
    plan_set = true;
    const char* env = std::getenv("RNNKERN_FORCE_PLAN");
    if (env && *env) {
      plan_choice = parse_plan(env);
      plan_text = env;
    }
  }
  return plan_choice;
}
std::string plan() {
  current_plan();
  std::lock_guard<std::mutex> g(plan_m);
  return plan_text;
}

// Dropping the graphs every thread has cached (each thread drops its own at its
// next loop): clear_graphs bumps the epoch.
inline std::atomic<long> graph_epoch{0};
void clear_graphs() { graph_epoch.fetch_add(1); }

// Whether the per-step loops are captured as a graph and replayed (set_graphs).
inline std::atomic<bool> graphs_on{false};
void set_graphs(bool on) { graphs_on.store(on); }
bool graphs() { return graphs_on.load(); }

// Copies a state between the caller's array and the device (see Buf::upload).
inline void state_in(float* d, const float* src, size_t n, bool on_device) {
  if (on_device)
    Runtime::copy(d, src, n * sizeof(float));
  else
    Runtime::to_device(d, src, n * sizeof(float));
}
inline void state_out(float* dst, const float* d, size_t n, bool on_device) {
  if (on_device)
    Runtime::copy(dst, d, n * sizeof(float));
  else
    Runtime::to_host(dst, d, n * sizeof(float));
}

inline int gpu_slots(Cell c) { return c == Cell::SimpleRNN ? 1 : c == Cell::LSTM ? 5 : 4; }

// What a training forward keeps on the device for its backward.
struct GpuWorkspaceImpl final : Workspace {
  bool has_bias = false;
  Buf<float> x, W, U, imask, rmask, states, cstates, slots;   // x: [N, T, C]
  Buf<uint8_t> mask, seen;
  int64_t slot_stride = 0;
  // the weights the backward reads: the copies W and U, or the caller's arrays
  // (LayerArgs::weights_in_place)
  const float* Wd = nullptr;
  const float* Ud = nullptr;
  bool torch_layout = false;   // the gradients go out in PyTorch's layout (GradArgs)
  // the stream of the last call that used it: its buffers go back to the pool as
  // of that stream (the pool hands a block to another stream only after a
  // synchronize), and a backward on another stream waits for it first
  mutable uintptr_t stream = 0;
  GpuWorkspaceImpl() = default;
  GpuWorkspaceImpl(const GpuWorkspaceImpl&) = delete;
  GpuWorkspaceImpl& operator=(const GpuWorkspaceImpl&) = delete;
  ~GpuWorkspaceImpl() override {
    [[maybe_unused]] StreamScope scope(stream);
    for (Buf<float>* b : {&x, &W, &U, &imask, &rmask, &states, &cstates, &slots})
      *b = Buf<float>();   // the swapped-out buffer is released here, in the scope
    mask = Buf<uint8_t>();
    seen = Buf<uint8_t>();
  }
  size_t nbytes() const override {
    size_t n = 0;
    for (const Buf<float>* b : {&x, &W, &U, &imask, &rmask, &states, &cstates, &slots})
      n += b->size() * sizeof(float);
    return n + mask.size() + seen.size();
  }
};

namespace {

constexpr int kLinear = 128;  // threads a block for the independent kernels

inline int linear_blocks(int64_t n) {
  return (int)std::max<int64_t>(1, std::min<int64_t>((n + kLinear - 1) / kLinear, 4096));
}

inline int cdiv(int64_t a, int64_t b) { return (int)((a + b - 1) / b); }

// Which time loop a graph is of (with the device and T, the key of this
// thread's graph cache).
enum class LoopSite { Forward, Backward };

// The graphs this thread has instantiated, most recently used last: one per loop
// site and T on a device, so a loop is instantiated once and later calls of the same shape
// only update its kernels' arguments.
struct CachedGraph {
  int device;
  LoopSite site;
  int64_t T;
  std::unique_ptr<Graph> graph;
};
constexpr size_t kGraphCache = 8;

// Runs a time loop's launches (`loop`): as they are, or, with graphs on and more
// than one step, captured into a graph and the graph replayed (one launch of the
// whole loop instead of T host round trips for its kernels). The capture updates
// the cached graph of that site and T in place when it can (same launches, other
// arguments) and is instantiated otherwise.
template <class F>
void time_loop(LoopSite site, int64_t T, F&& loop) {
  if (!graphs_on.load() || T < 2) {
    loop();
    return;
  }
  auto fresh = std::make_unique<Graph>();
  fresh->begin_capture();
  try {
    loop();
  } catch (...) {
    fresh->end_capture();
    throw;
  }
  fresh->end_capture();
  thread_local std::vector<CachedGraph> cache;
  thread_local long epoch = 0;
  if (epoch != graph_epoch.load()) {
    cache.clear();
    epoch = graph_epoch.load();
  }
  const int dev = device_ordinal();
  auto it = std::find_if(cache.begin(), cache.end(), [&](const CachedGraph& c) {
    return c.device == dev && c.site == site && c.T == T;
  });
  CachedGraph entry{dev, site, T, nullptr};
  if (it != cache.end()) {
    entry.graph = std::move(it->graph);
    cache.erase(it);
  }
  if (entry.graph && entry.graph->update(*fresh)) {
    graph_updates.fetch_add(1, std::memory_order_relaxed);
  } else {
    // no cached graph, or the runtime refused the update (cudaGraphExecUpdate may
    // refuse a same-shaped capture): the fresh capture is instantiated and
    // replaces it, and a refusal is counted as such
    if (entry.graph) graph_reinstantiations.fetch_add(1, std::memory_order_relaxed);
    fresh->instantiate();
    entry.graph = std::move(fresh);
  }
  if (cache.size() == kGraphCache) cache.erase(cache.begin());
  cache.push_back(std::move(entry));
  cache.back().graph->replay();
  graph_replays.fetch_add(1, std::memory_order_relaxed);
}

void gemm(const GemmArgs& g) {
  if (g.M == 0 || g.N == 0) return;
  RK_LAUNCH(Block, cdiv(g.N, kTile), cdiv(g.M, kTile), kTB, kTB, kGemmSmem, gemm_kernel, g);
}

}  // namespace

// The hoisted GEMMs' kernel (set_gemm; RNNKERN_GEMM at first use): plan.h's
// GemmChoice, kept as kind + 8 (tile + 1).
static_assert(kGemmTileCount == (int)GemmTile::Count, "plan.h names kernels.cuh's tiles");
inline std::atomic<int> gemm_choice{-1};   // -1: not read from the environment yet
inline std::atomic<long> mma_gemms[kGemmTileCount] = {};   // by tile
inline int gemm_code(const GemmChoice& c) { return (int)c.kind + 8 * (c.tile + 1); }
void set_gemm(const std::string& kind) { gemm_choice.store(gemm_code(parse_gemm(kind))); }
inline GemmChoice current_gemm_choice() {
  int c = gemm_choice.load();
  if (c < 0) {
    const char* env = std::getenv("RNNKERN_GEMM");
    c = gemm_code(env && *env ? parse_gemm(env) : GemmChoice{});
    int expected = -1;
    gemm_choice.compare_exchange_strong(expected, c);
    c = gemm_choice.load();
  }
  GemmChoice g;
  g.kind = (GemmChoice::Kind)(c % 8);
  g.tile = c / 8 - 1;
  return g;
}
std::string gemm_kind() { return gemm_text(current_gemm_choice()); }
long mma_gemm_count(int tile) {
  long n = 0;
  for (int t = 0; t < kGemmTileCount; ++t)
    if (tile < 0 || tile == t) n += mma_gemms[t].load();
  return n;
}
void mma_probe_run(const float* A, const float* B, const float* C, float* D, float* shfl,
                   const float* A16, const float* B16, float* D16);

namespace {

// ---- plan tuning (set_tune, RNNKERN_TUNE): the automatic partition of a time
// loop timed against its neighbours on first use, per layer shape, the fastest
// kept for the process. Each candidate runs the loop's first few steps on scratch
// copies of what the loop writes (the call's own buffers are untouched), so the
// call's results are those of the chosen plan forced (tuned_plans names it).
inline std::mutex tune_m;
inline bool tune_set = false;
inline TuneMode tune_mode = TuneMode::Off;
inline std::map<std::string, SeqPlan> tuned;
inline std::map<std::string, PlanChoice> loaded;   // load_tuned's, checked at use
// the hoisted GEMMs' tuned C tiles (gemm_hoisted_tile), by GEMM: kGemmTiles indices
inline std::map<std::string, int> tuned_tiles;
inline std::atomic<long> tunings{0};

inline TuneMode current_tune() {
  std::lock_guard<std::mutex> g(tune_m);
  if (!tune_set) {
    tune_set = true;
    const char* env = std::getenv("RNNKERN_TUNE");
    if (env && *env) tune_mode = parse_tune(env);
  }
  return tune_mode;
}

// A tuning candidate's time: run() once to warm (a configuration's first launch
// pays for its setup), then the best of reps timed runs, in seconds.
template <class Run>
double tune_time(Run run, int reps) {
  using clock = std::chrono::steady_clock;
  run();
  Runtime::synchronize();
  double t = 1e300;
  for (int r = 0; r < reps; ++r) {
    const auto t0 = clock::now();
    run();
    Runtime::synchronize();
    t = std::min(t, std::chrono::duration<double>(clock::now() - t0).count());
  }
  return t;
}

// x rounded to TF32 on the host (cvt.rna.tf32.f32's rule: see compat.cuh).
inline float tf32_host(float x) {
  uint32_t u;
  std::memcpy(&u, &x, sizeof u);
  if ((u & 0x7f800000u) == 0x7f800000u) return x;
  u = (u + 0x1000u) & 0xffffe000u;
  float r;
  std::memcpy(&r, &u, sizeof r);
  return r;
}

// Whether this device's tensor cores give what the fragment API promises: the
// probe's two mma (TF32 m16n8k8, BF16 m16n8k16) against double products of their
// rounded operands and its shuffles, once per device. A device (or a toolchain)
// that disagrees keeps the SIMT GEMM and the FFMA recurrence instead of giving
// wrong gradients.
inline bool tensor_cores_verified() {
  if (!Runtime::limits().tensor_cores) return false;
  static std::mutex m;
  static std::vector<std::pair<int, bool>> seen;
  const int dev = device_ordinal();
  {
    std::lock_guard<std::mutex> g(m);
    for (auto& kv : seen)
      if (kv.first == dev) return kv.second;
  }
  float A[128], B[64], C[128], D[128], S[32], A16[256], B16[128], D16[128];
  for (int i = 0; i < 128; ++i) {
    A[i] = (float)((i * 37) % 19 - 9) / 8.0f + 1.0f / 3.0f;   // not TF32: rounding matters
    C[i] = (float)((i * 11) % 7 - 3) / 4.0f;
    B16[i] = (float)((i * 29) % 17 - 8) / 7.0f;                // not bfloat16 either
  }
  for (int i = 0; i < 64; ++i) B[i] = (float)((i * 23) % 13 - 6) / 5.0f;
  for (int i = 0; i < 256; ++i) A16[i] = (float)((i * 31) % 23 - 11) / 9.0f;
  mma_probe_run(A, B, C, D, S, A16, B16, D16);
  bool ok = true;
  for (int i = 0; i < 16; ++i)
    for (int j = 0; j < 8; ++j) {
      double ref = C[i * 8 + j], ref16 = C[i * 8 + j];
      for (int k = 0; k < 8; ++k) ref += (double)tf32_host(A[i * 8 + k]) * tf32_host(B[k * 8 + j]);
      for (int k = 0; k < 16; ++k)
        ref16 += (double)::rnnkern::round_bf16(A16[i * 16 + k]) *
                 ::rnnkern::round_bf16(B16[k * 8 + j]);
      ok = ok && std::fabs(ref - D[i * 8 + j]) <= 1e-5 * (1.0 + std::fabs(ref));
      ok = ok && std::fabs(ref16 - D16[i * 8 + j]) <= 1e-5 * (1.0 + std::fabs(ref16));
    }
  for (int l = 0; l < 32; ++l) ok = ok && S[l] == (float)(l ^ 1) + 100.0f * (float)(l ^ 16);
  std::lock_guard<std::mutex> g(m);
  seen.emplace_back(dev, ok);
  return ok;
}

inline bool use_mma() {
  const GemmChoice::Kind k = current_gemm_choice().kind;
  if (k == GemmChoice::Simt) return false;
  if (k == GemmChoice::Mma) return true;
  return tensor_cores_verified();
}

// The tensor-core products a fragment pair of the recurrent product for a
// precision: fp32 as 3xTF32; tf32 one; bf16 one, both operands being bfloat16
// values (the rounded U, and the rounded h or dG), as bf16 m16n8k16 fragments
// (persistent.cuh seq_bf16_mma) -- except where dropout masks scale the forward's
// rounded h (scaled: two TF32 m16n8k8 products, that operand's TF32 halves with U).
inline int recurrent_products(Precision p, bool scaled) {
  return p == Precision::TF32 ? 1 : p == Precision::BF16 ? (scaled ? 2 : 1) : 3;
}

// The per-step family's recurrent products (R3): on the tensor cores where forced
// ('steps:mma'), or chosen as the persistent family chooses them (the batch fills at
// least half an mma tile's rows and this device's fragments passed the probe), in
// the precision's products a fragment pair (recurrent_products); 0: FFMA ('steps:simt').
// The forward's step kernel (StepArgs::tc) and the backward's per-step GEMMs take it.
// R3's step takes kR3Smem of shared memory a block (81.4 KiB for LSTM: every device
// from sm_80 has it); a device with less keeps the FFMA step, and forcing R3 there is
// an error.
inline int steps_products(int64_t N, Precision p, bool scaled) {
  const PlanChoice c = current_plan();
  const bool mma = c.product == PlanChoice::Mma ||
                   (c.product == PlanChoice::AnyProduct && N >= 8 && use_mma());
  if (!mma) return 0;
  if (kR3Smem<Mode::Lstm> > Runtime::limits().smem) {
    if (c.product == PlanChoice::Mma && c.kind == PlanChoice::Steps)
      throw std::runtime_error("rnnkern: the forced plan " + plan() + " needs " +
                               std::to_string(kR3Smem<Mode::Lstm> / 1024) +
                               " KiB of shared memory a block, more than this device has");
    return 0;
  }
  return recurrent_products(p, scaled);
}

// ---- the tensor-core GEMM's C tile (GemmTile). The blocks of C's grid: with tile t
// on the tensor cores (mma), else the SIMT kernel's kTile squares.
inline int64_t gemm_tiles(bool mma, GemmTile t, int64_t M, int64_t N) {
  int tm = kTile, tn = kTile;
  if (mma) gemm_tile_shape(t, tm, tn);
  return (int64_t)cdiv(M, tm) * cdiv(N, tn);
}
// The tile where none is forced or tuned: 32x64 for at most 32 rows (a 64-row tile
// would be over half padding: the per-step d h_prev GEMM of a small batch), else
// the largest whose grid fills the device twice over (fewer operand loads a
// product: bench/GPU.md's GEMM tile model), else 64x64.
inline GemmTile gemm_auto_tile(int64_t M, int64_t N) {
  if (M <= 32) return GemmTile::T32x64;
  const int64_t want = 2 * (int64_t)Runtime::limits().sms;
  for (GemmTile t : {GemmTile::T128x128, GemmTile::T128x64})
    if (gemm_tiles(true, t, M, N) >= want) return t;
  return GemmTile::T64x64;
}
// The tile of a GEMM inside a time loop (no tuning there: it would time and
// allocate between steps): the forced one, else gemm_auto_tile.
inline GemmTile gemm_step_tile(int64_t M, int64_t N) {
  const GemmChoice c = current_gemm_choice();
  return c.tile >= 0 ? (GemmTile)c.tile : gemm_auto_tile(M, N);
}

// g on the tensor-core kernel with C tile T (counted).
template <GemmTile T>
void gemm_mma_as(const GemmArgs& g) {
  int tm, tn;
  gemm_tile_shape(T, tm, tn);
  RK_LAUNCH(Block, cdiv(g.N, tn), cdiv(g.M, tm), kMmaThreads, 1, gemm_mma_smem(T),
            gemm_mma_kernel<T>, g);
  mma_gemms[(int)T].fetch_add(1, std::memory_order_relaxed);
}
// g on the tensor-core kernel with C tile t.
void gemm_mma(const GemmArgs& g, GemmTile t) {
  if (g.M == 0 || g.N == 0) return;
  switch (t) {
    case GemmTile::T32x64: return gemm_mma_as<GemmTile::T32x64>(g);
    case GemmTile::T64x64: return gemm_mma_as<GemmTile::T64x64>(g);
    case GemmTile::T128x64: return gemm_mma_as<GemmTile::T128x64>(g);
    default: return gemm_mma_as<GemmTile::T128x128>(g);
  }
}

// A GEMM on the chosen kernel: SIMT, or the tensor cores (mma) with tile t
// (Count: gemm_step_tile's).
void gemm_any(const GemmArgs& g, bool mma, GemmTile t = GemmTile::Count) {
  if (g.M == 0 || g.N == 0) return;
  if (!mma) {
    gemm(g);
    return;
  }
  gemm_mma(g, t == GemmTile::Count ? gemm_step_tile(g.M, g.N) : t);
}

// K of g (from 0) in S slabs of ceil(span / S), each computed into its own [M, N]
// slab of the workspace, parts + (first + s) M N (beta 0), for split_sum to add in
// slab order: gemm_hoisted's and gemm_dh_split's split K (tile t: gemm_any's).
void gemm_slabs(const GemmArgs& g, int64_t span, int S, float* parts, int first, bool mma,
                GemmTile t) {
  const int64_t per = (span + S - 1) / S;
  for (int s = 0; s < S; ++s) {
    GemmArgs p = g;
    p.k_begin = s * per;
    p.K = std::min<int64_t>(span, (s + 1) * per);
    p.beta = 0.0f;
    p.c = parts + (int64_t)(first + s) * g.M * g.N;
    p.ldc = g.N;
    gemm_any(p, mma, t);
  }
}

// gemm_hoisted with the tensor cores' tile t (mma), or SIMT's: where C has too few
// tiles to fill the device and K is long, K is split into slabs computed at once
// into a workspace and added in slab order by split_sum: bitwise the same every
// run, no atomics.
void gemm_hoisted_with(const GemmArgs& g, bool mma, GemmTile t) {
  const int64_t tiles = gemm_tiles(mma, t, g.M, g.N);
  const int64_t want = std::max<int64_t>(1, 8 * (int64_t)Runtime::limits().sms / tiles);
  const int S = (int)std::min<int64_t>({g.K / 256, want, 64});
  if (S <= 1 || g.beta != 0.0f || g.cmask || g.bias || g.c_bt) {
    gemm_any(g, mma, t);
    return;
  }
  Buf<float> parts((size_t)S * g.M * g.N);
  gemm_slabs(g, g.K, S, parts.get(), 0, mma, t);
  RK_LAUNCH(Independent, linear_blocks(g.M * g.N), 1, kLinear, 1, 0, split_sum, parts.get(), S,
            g.M, g.N, g.c, g.ldc, false);
}

// A hoisted GEMM's tuning key: its shape and what changes its kernel's work.
inline std::string gemm_key(const GemmArgs& g) {
  char buf[160];
  std::snprintf(buf, sizeof buf, "dev%d gemm M%lld N%lld K%lld ta%d tb%d%s%s%s%s%s",
                device_ordinal(), (long long)g.M, (long long)g.N, (long long)(g.K - g.k_begin),
                (int)g.ta, (int)g.tb, g.tf32 ? " tf32" : "", g.bf16 ? " bf16" : "",
                g.amask ? " amask" : "", g.cmask ? " cmask" : "",
                g.beta != 0.0f || g.bias || g.c_bt ? " whole" : "");
  return buf;
}

// A hoisted GEMM's tile: the forced one; else, with tuning on (set_tune, and not
// while graphs are captured), the tile kept for this GEMM or the fastest of every
// tile timed now, each running the whole of gemm_hoisted_with (its split K
// included) into scratch (the call's C untouched: its result is that tile's
// forced); else gemm_auto_tile.
GemmTile gemm_hoisted_tile(const GemmArgs& g) {
  const GemmChoice c = current_gemm_choice();
  if (c.tile >= 0) return (GemmTile)c.tile;
  const TuneMode mode = graphs_on.load() ? TuneMode::Off : current_tune();
  if (mode == TuneMode::Off) return gemm_auto_tile(g.M, g.N);
  const std::string key = gemm_key(g);
  {
    std::lock_guard<std::mutex> lk(tune_m);
    auto it = tuned_tiles.find(key);
    if (it != tuned_tiles.end()) return (GemmTile)it->second;
  }
  Buf<float> scratch((size_t)(g.M * g.N));
  GemmArgs s = g;
  s.c = scratch.get();
  s.ldc = g.N;
  s.c_bt = false;
  s.beta = 0.0f;   // (scratch is not read: C's old values do not change the work)
  const int reps = mode == TuneMode::Full ? 3 : 1;
  int best = (int)gemm_auto_tile(g.M, g.N);
  double best_t = 1e300;
  for (int t = 0; t < kGemmTileCount; ++t) {
    int tm, tn;
    gemm_tile_shape((GemmTile)t, tm, tn);
    if (cdiv(g.M, tm) > 65535) continue;   // more row tiles than a grid's y
    const double took = tune_time([&] { gemm_hoisted_with(s, true, (GemmTile)t); }, reps);
    if (took < best_t) {
      best_t = took;
      best = t;
    }
  }
  std::lock_guard<std::mutex> lk(tune_m);
  return (GemmTile)tuned_tiles.emplace(key, best).first->second;   // another thread's, if first
}

// A hoisted GEMM (the weight gradients, K = T*N; dX; the input projection): SIMT,
// or the tensor cores with gemm_hoisted_tile's tile. Not for the time loops (it
// allocates, and may tune).
void gemm_hoisted(const GemmArgs& g) {
  if (g.M == 0 || g.N == 0) return;
  const bool mma = use_mma();
  gemm_hoisted_with(g, mma, mma ? gemm_hoisted_tile(g) : GemmTile::Count);
}

// db[j] = the sum of column j of a [rows, cols] matrix: partial sums over chunks
// of 64 rows, then their sum, both in order.
void bias_grad(const float* src, int64_t rows, int64_t cols, float* db) {
  constexpr int64_t chunk = 64;
  const int64_t R = (rows + chunk - 1) / chunk;
  Buf<float> parts(R * cols);
  RK_LAUNCH(Independent, linear_blocks(R * cols), 1, kLinear, 1, 0, column_partial_sums, src, rows,
            cols, cols, chunk, parts.get());
  RK_LAUNCH(Independent, linear_blocks(cols), 1, kLinear, 1, 0, column_sums, parts.get(), R, cols,
            cols, db);
}

// The optimizers' elementwise steps and a gradient's sum of squares on device arrays
// (gpu_api.h's elementwise / sum_squares, on the launch stream).
void elementwise_run(int op, int64_t n, float* out, const float* a, const float* b, float s0,
                     float s1) {
  if (op < 0 || op >= kEwCount) throw std::invalid_argument("elementwise: unknown operation");
  if (n <= 0) return;
  RK_LAUNCH(Independent, linear_blocks(n), 1, kLinear, 1, 0, elementwise, op, n, out, a, b, s0,
            s1);
}

void elementwise_program_run(int64_t n, const EwSteps& st) {
  const size_t k = st.op.size();
  if (k > (size_t)kEwProgSteps || st.arrays.size() > (size_t)kEwProgArrays)
    throw std::invalid_argument("elementwise_program: at most " +
                                std::to_string(kEwProgSteps) + " steps and " +
                                std::to_string(kEwProgArrays) + " arrays");
  if (st.out.size() != k || st.a.size() != k || st.b.size() != k || st.s0.size() != k ||
      st.s1.size() != k)
    throw std::invalid_argument("elementwise_program: the steps' fields differ in length");
  EwProgram p{};
  const int na = (int)st.arrays.size();
  for (int i = 0; i < na; ++i) {
    if (!st.arrays[i]) throw std::invalid_argument("elementwise_program: a null array");
    p.arrays[i] = st.arrays[i];
  }
  for (size_t s = 0; s < k; ++s) {
    const int op = st.op[s];
    if (op < 0 || op >= kEwCount) throw std::invalid_argument("elementwise: unknown operation");
    if (st.out[s] < 0 || st.out[s] >= na || st.b[s] >= na ||
        ((op != kEwFill) && (st.a[s] < 0 || st.a[s] >= na)))
      throw std::invalid_argument("elementwise_program: an array index out of range");
    p.op[s] = (int8_t)op;
    p.out[s] = (int8_t)st.out[s];
    p.a[s] = (int8_t)(op == kEwFill ? 0 : st.a[s]);
    p.b[s] = (int8_t)(st.b[s] < 0 ? -1 : st.b[s]);
    p.s0[s] = st.s0[s];
    p.s1[s] = st.s1[s];
  }
  p.steps = (int)k;
  if (n <= 0 || k == 0) return;
  RK_LAUNCH(Independent, linear_blocks(n), 1, kLinear, 1, 0, elementwise_program, p, n);
}

double sum_squares_run(int64_t n, const float* a) {
  if (n <= 0) return 0.0;
  constexpr int64_t chunk = 4096;
  const int64_t P = (n + chunk - 1) / chunk;
  Buf<double> parts((size_t)P);
  RK_LAUNCH(Independent, linear_blocks(P), 1, kLinear, 1, 0, square_partial_sums, a, n, chunk,
            parts.get());
  std::vector<double> host((size_t)P);
  parts.download(host.data());
  double sum = 0.0;
  for (double v : host) sum += v;
  return sum;
}

// C[M, N] (+)= A B with A(i, k) = ta ? a[k*lda + i] : a[i*lda + k] and B likewise
// (GemmArgs' convention); the masks, bias, beta and row maps are set on the result.
inline GemmArgs gemm_args(int64_t M, int64_t N, int64_t K, const float* a, int64_t lda, bool ta,
                          const float* b, int64_t ldb, bool tb, float* c, int64_t ldc) {
  GemmArgs g;
  g.M = M;
  g.N = N;
  g.K = K;
  g.a = a;
  g.lda = lda;
  g.ta = ta;
  g.b = b;
  g.ldb = ldb;
  g.tb = tb;
  g.c = c;
  g.ldc = ldc;
  return g;
}

// A GEMM's A (a_bt) or C (c_bt) rows read from / written to the caller's [N, T, W]
// layout while the GEMM's rows run time-major (GemmArgs::a_bt).
inline GemmArgs batch_major(GemmArgs g, bool a_side, int64_t N, int64_t T, bool go_backwards) {
  (a_side ? g.a_bt : g.c_bt) = true;
  g.bt_N = N;
  g.bt_T = T;
  g.bt_rev = go_backwards;
  return g;
}

// A GEMM in a call's precision: tf32's one TF32 product on the tensor cores (the
// SIMT kernel ignores it), bf16's rounded operands (GemmArgs::tf32, ::bf16).
inline GemmArgs in_precision(GemmArgs g, Precision p) {
  g.tf32 = p == Precision::TF32;
  g.bf16 = p == Precision::BF16;
  return g;
}

// Gate g's block of columns [g*H, (g+1)*H) of a row-major [rows, GH] matrix.
inline GemmArgs gate_cols(GemmArgs g, int gate, int64_t H, bool b_side, bool c_side) {
  if (b_side) g.b += g.tb ? gate * H * g.ldb : gate * H;
  if (c_side) g.c += gate * H;
  return g;
}

// The per-gate forms of two GEMMs whose dropout masks differ by gate (Keras'
// per-gate masks; no masks: the single GEMM g as given).
// gemm_gates_amask: C's gate blocks of H columns, block j from A scaled by gate
//   j's mask (A's logical element (r, c) by masks[j*stride + (r % rows)*ld + c]),
//   the bias (if any) offset with it; the hoisted GEMMs (projection, dW, dU).
void gemm_gates_amask(GemmArgs g, int gates, int64_t H, const float* masks, int64_t stride,
                      int64_t rows, int64_t ld) {
  if (!masks) {
    gemm_hoisted(g);
    return;
  }
  g.N = H;
  g.amask_rows = rows;
  g.amask_ld = ld;
  for (int j = 0; j < gates; ++j) {
    GemmArgs q = gate_cols(g, j, H, true, true);
    q.amask = masks + j * stride;
    if (g.bias) q.bias = g.bias + j * H;
    gemm_hoisted(q);
  }
}
// Gate j's term of gemm_gates_cmask: A_j and B_j, the gate-j blocks of H along K,
// the mask masks[j*stride + (i % rows)*ld + col] on C.
GemmArgs gate_cmask(GemmArgs g, int j, int64_t H, const float* masks, int64_t stride,
                    int64_t rows, int64_t ld) {
  g.K = H;
  g.a += j * H;
  g.b += j * H;
  g.cmask = masks + j * stride;
  g.cmask_rows = rows;
  g.cmask_ld = ld;
  return g;
}
// gemm_gates_cmask: C (+)= sum over gates j of (A_j B_j) ⊙ mask_j (gate_cmask); the
//   first gate with g's beta, the others added; hoisted or (inside a time loop: no
//   allocation) one launch each, on the tensor cores where mma.
void gemm_gates_cmask(GemmArgs g, int gates, int64_t H, const float* masks, int64_t stride,
                      int64_t rows, int64_t ld, bool hoisted, bool mma = false) {
  auto run = [&](const GemmArgs& q) { hoisted ? gemm_hoisted(q) : gemm_any(q, mma); };
  if (!masks) {
    run(g);
    return;
  }
  for (int j = 0; j < gates; ++j) {
    GemmArgs q = gate_cmask(g, j, H, masks, stride, rows, ld);
    if (j) q.beta = 1.0f;
    run(q);
  }
}

// The per-step backward's d h_prev GEMM, C += sum over gates j of (A_j B_j) ⊙ mask_j
// (gemm_gates_cmask's, every gate added), split where its C tiles leave most of the
// device idle (R3's batch of <= 64 rows over a large H: a tile row): K -- each gate's,
// where dropout masks differ by gate -- in slabs of >= 256 computed at once into
// `parts` (dh_split_pieces slabs of [M, N], allocated outside the loop), then added
// to C in slab order by split_sum: deterministic, no atomics. One slab: the
// unsplit GEMMs.
inline int dh_split_pieces(int64_t M, int64_t N, int gates, int64_t H, bool masked, bool mma) {
  const int64_t tiles = gemm_tiles(mma, gemm_step_tile(M, N), M, N);
  const int64_t want = (int64_t)Runtime::limits().sms / std::max<int64_t>(tiles, 1);
  if (M == 0 || N == 0 || want < 2) return 1;
  if (masked) {   // every gate a slab at least, each split further where it fills more
    const int64_t per = std::min<int64_t>({want / gates, H / 256, 16});
    return gates * (int)std::max<int64_t>(per, 1);
  }
  return (int)std::max<int64_t>(std::min<int64_t>({want, gates * H / 256, 16}), 1);
}
void gemm_dh_split(GemmArgs g, int gates, int64_t H, const float* masks, int64_t stride,
                   int64_t rows, int64_t ld, bool mma, float* parts, int pieces) {
  if (pieces <= 1 || !parts) {
    gemm_gates_cmask(g, gates, H, masks, stride, rows, ld, false, mma);
    return;
  }
  const GemmTile t = gemm_step_tile(g.M, g.N);   // dh_split_pieces' tile
  if (masks) {   // each gate's K range in pieces / gates slabs
    const int per_gate = pieces / gates;
    for (int j = 0; j < gates; ++j)
      gemm_slabs(gate_cmask(g, j, H, masks, stride, rows, ld), H, per_gate, parts, j * per_gate,
                 mma, t);
  } else {
    gemm_slabs(g, g.K, pieces, parts, 0, mma, t);
  }
  RK_LAUNCH(Independent, linear_blocks(g.M * g.N), 1, kLinear, 1, 0, split_sum, parts, pieces,
            g.M, g.N, g.c, g.ldc, true);
}

// A forward step of the per-step family: its product on the tensor cores (R3) where
// s.tc, else on FFMA.
template <Mode M>
void launch_step(const StepArgs& s) {
  if (s.tc) {
    RK_ALLOW_SMEM(kR3Smem<M>, step_forward_mma<M>);
    RK_LAUNCH(Block, cdiv(s.H, kR3Units), cdiv(s.N, kR3Rows), kR3Threads, 1, kR3Smem<M>,
              step_forward_mma<M>, s);
    return;
  }
  RK_LAUNCH(Block, cdiv(s.H, kStepU), cdiv(s.N, kStepR), kStepU, kStepTY, step_smem<M>(),
            step_forward<M>, s);
}

template <Mode M>
void launch_back(const BackArgs& b) {
  RK_LAUNCH(Independent, linear_blocks(b.N * b.H), 1, kLinear, 1, 0, step_backward<M>, b);
}

// R3 with precision bf16's one product reads U as bf16 pairs (StepArgs::u2): packed
// into buf now where base's step takes that product (once a call: a buf that
// already holds them, packed by the tuning's per-step candidate, is kept), else
// nothing.
inline void pack_u_pairs(StepArgs& base, Buf<uint32_t>& buf) {
  if (!(base.tc == 1 && base.bf16 && !base.rmask)) return;
  const size_t words = (size_t)((base.H + 1) / 2 * base.GH);
  if (buf.size() != words) {
    buf = Buf<uint32_t>(words);
    RK_LAUNCH(Independent, linear_blocks((int64_t)buf.size()), 1, kLinear, 1, 0,
              pack_bf16_pairs, base.u, buf.get(), base.H, base.GH);
  }
  base.u2 = buf.get();
}

// The per-step family's forward over q's T steps: a launch a step (two for GRU
// reset_before), its product R3's or FFMA's (q.base.tc).
template <Mode M>
void steps_forward(const SeqArgs& q) {
  for (int64_t s = 0; s < q.T; ++s) {
    const StepArgs a = forward_step_args(q, s);
    launch_step<M>(a);
    if constexpr (M == Mode::GruRB1) launch_step<Mode::GruRB2>(second_phase(a));
  }
}

// The slabs of the per-step backward's split d h_prev GEMM for loop q (1: unsplit)
// and the gates whose U^T product reaches h_prev (GRU reset_before: z and r).
template <Mode M>
int steps_backward_gates(const SeqBackArgs& q) {
  return M == Mode::GruRB1 ? 2 : (int)(q.base.GH / std::max<int64_t>(q.base.H, 1));
}
template <Mode M>
int steps_backward_pieces(const SeqBackArgs& q) {
  return dh_split_pieces(q.base.N, q.base.H, steps_backward_gates<M>(q), q.base.H,
                         q.base.rmask != nullptr, q.step_mma);
}

// The per-step family's backward over q's T steps, last first: the pointwise
// kernel, then d h_prev += sum over gates of (dG_g U_g^T) ⊙ m_g (GRU reset_before:
// d(rh) = dah U_h^T and its second pointwise phase first), the GEMMs in precision p
// on the tensor cores where q.step_mma (R3), else SIMT.
// parts: steps_backward_parts' slabs for the split d h_prev GEMM (gemm_dh_split), or
// null (unsplit).
template <Mode M>
void steps_backward(const SeqBackArgs& q, Precision p, float* parts) {
  const int64_t N = q.base.N, H = q.base.H, GH = q.base.GH;
  const bool mma = q.step_mma;
  const int ng_rec = steps_backward_gates<M>(q);
  const int pieces = steps_backward_pieces<M>(q);
  int c = 0;
  for (int64_t s = q.T - 1; s >= 0; --s, c = 1 - c) {
    const BackArgs b = backward_step_args(q, s, c);
    launch_back<M>(b);
    if constexpr (M == Mode::GruRB1) {
      gemm_any(in_precision(gemm_args(N, H, H, b.dgx + 2 * H, GH, false, q.u + 2 * H, GH, true,
                                      q.drh, H), p),
               mma);
      launch_back<Mode::GruRB2>(b);
    }
    GemmArgs r = in_precision(gemm_args(N, H, ng_rec * H, b.dgr, GH, false, q.u, GH, true,
                                        b.dh_out, H), p);
    r.beta = 1.0f;
    gemm_dh_split(r, ng_rec, H, q.base.rmask, N * H, N, H, mma, parts, pieces);
  }
}

// The slabs steps_backward<M> wants for its split d h_prev GEMM (none: empty).
template <Mode M>
Buf<float> steps_backward_parts(const SeqBackArgs& q) {
  const int pieces = steps_backward_pieces<M>(q);
  return Buf<float>(pieces > 1 ? (size_t)(pieces * q.base.N * q.base.H) : 0);
}

// The persistent family's partition for a loop (forward: resident U [H][ut][slots]
// and `copies` staged copies of h; backward: U rows [GH][ut] and dG staged), or
// blocks == 0 where it does not fit the device (or graphs are on). Auto: one
// block while a step is at most 128k multiply-adds, else about 32k a block, at
// most a block per SM; more blocks (fewer units each) until the resident slice, a
// staged chunk of >= 32 k (or all of them) and the reduction fit one block's
// shared memory and the grid is co-resident: as one thread-block cluster where
// the device launches a cluster of that many blocks (its barrier, ~0.3 us on an
// H200, against ~0.74-0.98 for the grid's: GPU-DESIGN.md section 5), else
// grid-cooperative. A forced partition that does not fit is an error, not a
// silent fallback.
// seq_plan for a given choice; strict: a forced choice that does not fit is an
// error (else: blocks == 0, as the tuner's candidates want).
inline SeqPlan seq_plan_with(const PlanChoice& choice, bool strict, bool forward,
                             const void* kernel, int64_t N, int64_t H, int64_t GH, int slots,
                             int copies, int64_t width, int products, bool bf16) {
  SeqPlan none;
  if (choice.kind == PlanChoice::Steps || graphs_on.load()) return none;
  if (N == 0 || H == 0) return none;   // nothing to partition (a batch of 0: no steps run)
  const DeviceLimits lim = Runtime::limits();
  if (!lim.cooperative) return none;
  const bool forced = choice.blocks > 0;
  const bool cluster_only = choice.barrier == PlanChoice::ClusterBarrier;
  if (cluster_only && lim.max_cluster < 2) {
    if (strict)
      throw std::runtime_error("rnnkern: the forced plan " + plan() +
                               " needs thread-block clusters, which this device does not launch");
    return none;
  }
  // the most blocks a plan may take: an SM each, or one cluster's where forced
  const int64_t most = cluster_only ? std::min(lim.sms, lim.max_cluster) : lim.sms;
  const int threads = forced ? choice.threads : lim.threads;
  const int64_t G = GH / H;
  const int64_t fma = N * G * H * H;
  // the recurrent product: the tensor cores where forced, or (chosen) where the
  // batch fills at least half an mma tile's 16 rows and the GEMMs are on the
  // tensor cores (use_mma: forced, or this device's fragments passed the probe)
  const bool want_mma =
      choice.product == PlanChoice::Mma ||
      (choice.product == PlanChoice::AnyProduct && N >= 8 && use_mma());
  // one block (a block barrier a step, no grid one) while its work is small;
  // else about 32k multiply-adds a block a step, at most a block per SM
  const int64_t target = forced ? choice.blocks
                       : fma <= 131072 ? 1
                       : std::max<int64_t>(cluster_only ? 2 : 1,
                                           std::min<int64_t>((fma + 32767) / 32768, most));
  auto attempt = [&](bool mma) {
    int last_ut = 0;
    for (int64_t blocks = target;
         blocks <= (forced ? target : std::max<int64_t>(target, most)); ++blocks) {
      SeqPlan p;
      p.ut = cdiv(H, blocks);
      p.blocks = cdiv(H, p.ut);                       // <= blocks: the units spread evenly
      if (p.ut == last_ut) continue;                  // the partition already tried
      last_ut = p.ut;
      p.threads = threads;
      const int64_t pairs = N * p.ut;
      if (mma) {   // whole warps; the k shares of each tile, a warp an item
        if (threads % 32) return none;
        p.tc = products;
        // precision bf16's one product: U resident as bf16 pairs (even H: every
        // chunk, share and gate bound falls between pairs)
        p.pairs = bf16 && products == 1 && H % 2 == 0;
        const int64_t tiles = seq_rows16(N) / 16 * (seq_cols8((int64_t)p.ut * (forward ? slots : 1)) / 8);
        p.ks = (int)std::max<int64_t>(1, std::min<int64_t>(threads / 32 / tiles, width / 32));
      } else {
        p.ks = (int)std::max<int64_t>(1, std::min<int64_t>(threads / pairs, width / 8));
      }
      const size_t fixed = forward ? seq_forward_smem(p, slots, 0, N, H)
                                   : seq_backward_smem(p, 0, GH, copies);
      const int64_t rows = forward ? copies * N : N;
      // the widest chunk whose rows fit: forward pitch kc (+1), backward (and
      // the tensor-core forward) pitch a multiple of 32 plus 4 (seq_pitch4),
      // chunks multiples of 4 (8 for the tensor cores)
      const int64_t per_row =
          fixed < lim.smem ? (int64_t)((lim.smem - fixed) / sizeof(float)) / rows : 0;
      const bool by4 = !forward || mma || seq_vec(H);
      int64_t kc = by4 ? (per_row - 4) / 32 * 32 : per_row - 1;
      if (choice.kc > 0) kc = std::min<int64_t>(kc, choice.kc);
      kc = std::min<int64_t>(kc, width);
      if (mma && kc < width && kc > 8) kc = kc / 8 * 8;
      if (by4 && kc < width && kc > 4) kc = kc / 4 * 4;
      if (kc >= std::min<int64_t>(width, forced ? 1 : 32)) {
        p.kc = (int)kc;
        const size_t smem = forward ? seq_forward_smem(p, slots, copies, N, H)
                                    : seq_backward_smem(p, N, GH, copies);
        if (smem > lim.smem) continue;
        // one cluster where the device launches clusters of that many blocks (not
        // forced to the grid's barrier), else a grid-cooperative launch
        if (p.blocks > 1 && choice.barrier != PlanChoice::GridBarrier &&
            choice.barrier != PlanChoice::FlagHandoff && p.blocks <= lim.max_cluster &&
            Runtime::cluster_fits(kernel, p.blocks, threads, smem)) {
          p.cluster = p.blocks;
          return p;
        }
        if (!cluster_only && p.blocks <= Runtime::coresident_blocks(kernel, threads, smem)) {
          p.flags = choice.barrier == PlanChoice::FlagHandoff && p.blocks > 1;
          return p;
        }
      }
    }
    return none;
  };
  if (want_mma) {
    const SeqPlan p = attempt(true);
    if (p.blocks > 0 || choice.product == PlanChoice::Mma) {
      if (p.blocks == 0 && strict)
        throw std::runtime_error("rnnkern: the forced plan " + plan() +
                                 " (the tensor-core product) does not fit this device for "
                                 "this layer");
      return p;
    }
  }
  const SeqPlan p = attempt(false);
  if (p.blocks > 0) return p;
  if (strict && (forced || cluster_only))
    throw std::runtime_error("rnnkern: the forced plan " + plan() +
                             " does not fit this device for this layer" +
                             (cluster_only ? " as one thread-block cluster" : ""));
  if (strict && choice.kind == PlanChoice::Persistent)
    throw std::runtime_error("rnnkern: plan 'persistent' does not fit this device for this layer");
  return none;
}

// forward: slots, copies as above; backward: slots 1, copies the gate accumulators
// of the tensor-core product (4 with recurrent dropout, else 1)
inline SeqPlan seq_plan(bool forward, const void* kernel, int64_t N, int64_t H, int64_t GH,
                        int slots, int copies, int64_t width, int products, bool bf16) {
  return seq_plan_with(current_plan(), true, forward, kernel, N, H, GH, slots, copies, width,
                       products, bf16);
}

}  // namespace

// the tuning API (gpu_api.h)
void set_tune(const std::string& mode) {
  const TuneMode m = parse_tune(mode);
  std::lock_guard<std::mutex> g(tune_m);
  tune_mode = m;
  tune_set = true;
}
std::string tune() { return tune_name(current_tune()); }
long tuning_count() { return tunings.load(); }
inline std::string plan_text_of(const SeqPlan& p) {
  if (p.steps) return "steps";
  return "persistent:" + std::to_string(p.blocks) + "," + std::to_string(p.threads) + "," +
         std::to_string(p.kc) + (p.tc ? ",mma" : ",simt") +
         (p.blocks > 1 ? (p.cluster ? ",cluster" : p.flags ? ",flags" : ",grid") : "");
}
std::vector<std::string> tuned_plans() {
  std::lock_guard<std::mutex> g(tune_m);
  std::vector<std::string> r;
  for (const auto& kv : tuned) r.push_back(kv.first + " -> " + plan_text_of(kv.second));
  for (const auto& kv : tuned_tiles)
    r.push_back(kv.first + " -> mma:" + kGemmTiles[kv.second]);
  return r;
}
void clear_tuned() {
  std::lock_guard<std::mutex> g(tune_m);
  tuned.clear();
  loaded.clear();
  tuned_tiles.clear();
}
void load_tuned(const std::vector<std::string>& lines, const std::string& source) {
  std::map<std::string, PlanChoice> got;
  std::map<std::string, int> tiles;
  for (size_t i = 0; i < lines.size(); ++i) {
    std::string line = lines[i];
    while (!line.empty() && (line.back() == '\n' || line.back() == '\r' || line.back() == ' '))
      line.pop_back();
    if (line.empty() || line[0] == '#') continue;
    const size_t arrow = line.find(" -> ");
    const std::string where = "rnnkern: plan cache " + source + ", line " + std::to_string(i + 1);
    if (arrow == std::string::npos || arrow == 0 || line.size() > 512)
      throw std::invalid_argument(where + ": expected 'KEY -> persistent:BLOCKS,THREADS,KC', "
                                          "'KEY -> steps' or 'KEY -> mma:TILE'");
    const std::string value = line.substr(arrow + 4);
    if (value.compare(0, 4, "mma:") == 0) {   // a hoisted GEMM's tuned tile
      const int t = gemm_tile_index(value.substr(4));
      if (t < 0 || line.find(" gemm ") > arrow)
        throw std::invalid_argument(where + ": expected a GEMM's key and one of its tiles, got '" +
                                    line + "'");
      tiles[line.substr(0, arrow)] = t;
      continue;
    }
    PlanChoice c;
    try {
      c = parse_plan(value);
    } catch (const std::invalid_argument& e) {
      throw std::invalid_argument(where + ": " + e.what());
    }
    const bool steps = c.kind == PlanChoice::Steps && c.product == PlanChoice::AnyProduct;
    if (!steps && (c.kind != PlanChoice::Persistent || c.blocks == 0))
      throw std::invalid_argument(where + ": expected a persistent partition or 'steps', got '" +
                                  value + "'");
    got[line.substr(0, arrow)] = c;
  }
  std::lock_guard<std::mutex> g(tune_m);
  for (auto& kv : got) loaded[kv.first] = kv.second;
  for (auto& kv : tiles) tuned_tiles[kv.first] = kv.second;
}

namespace {

// Tuning applies to the automatic plan only (a forced one is the caller's).
inline TuneMode tuning_for_this_loop() {
  if (current_plan().kind != PlanChoice::Auto || graphs_on.load()) return TuneMode::Off;
  return current_tune();
}

// The steps a candidate runs: a few, the same for every candidate.
inline int64_t tune_steps(TuneMode mode, int64_t T) {
  return std::min<int64_t>(T, mode == TuneMode::Full ? 16 : 4);
}

// The loop's tuned partition for key: the kept one, or the fastest of the
// candidates timed now with run(plan): base (the automatic partition) and the
// per-step family (SeqPlan::steps) always, then the neighbours while the budget
// lasts. plan_for(choice) is the partition of a choice, or blocks == 0 where it does
// not fit.
template <class PlanFor, class Run>
SeqPlan tuned_plan(const std::string& key, TuneMode mode, const SeqPlan& base,
                   PlanFor plan_for, Run run) {
  PlanChoice earlier;
  {
    std::lock_guard<std::mutex> g(tune_m);
    auto it = tuned.find(key);
    if (it != tuned.end()) return it->second;
    auto l = loaded.find(key);
    if (l != loaded.end()) earlier = l->second;
  }
  if (earlier.kind == PlanChoice::Steps) {   // a cache file's 'steps': fits every loop
    SeqPlan p;
    p.steps = 1;
    std::lock_guard<std::mutex> g(tune_m);
    return tuned.emplace(key, p).first->second;
  }
  if (earlier.blocks > 0) {   // a cache file's plan: kept where it still fits this loop
    const SeqPlan p = plan_for(earlier);
    if (p.blocks > 0) {
      std::lock_guard<std::mutex> g(tune_m);
      return tuned.emplace(key, p).first->second;
    }
  }
  const DeviceLimits lim = Runtime::limits();
  std::vector<int64_t> blocks{base.blocks, base.blocks * 2, base.blocks / 2};
  // one cluster of the most blocks (U spread over that many SMs, the cluster's
  // barrier) beside a wider grid: bench/tc_model.py's cluster table
  if (lim.max_cluster >= 2 && base.blocks > lim.max_cluster) blocks.push_back(lim.max_cluster);
  std::vector<int> threads{base.threads, base.threads * 2};
  if (mode == TuneMode::Full) {
    for (int64_t b = 1; b <= 2 * (int64_t)lim.sms; b *= 2) blocks.push_back(b);
    threads.push_back(base.threads / 2);
    threads.push_back(base.threads * 4);
  }
  // the products: the chosen one, and FFMA beside the tensor cores where they were
  // chosen; the barriers: the chosen one, and the grid's beside a cluster's
  std::vector<PlanChoice::Product> products{PlanChoice::AnyProduct};
  if (base.tc) products.push_back(PlanChoice::Simt);
  std::vector<PlanChoice::Barrier> barriers{PlanChoice::AnyBarrier};
  if (lim.max_cluster >= 2) barriers.push_back(PlanChoice::GridBarrier);
  SeqPlan per_step;
  per_step.steps = 1;
  std::vector<SeqPlan> cands{base, per_step};
  for (PlanChoice::Product product : products)
    for (PlanChoice::Barrier barrier : barriers)
      for (int64_t b : blocks)
        for (int t : threads) {
          if (b < 1 || t < 32 || t > 1024 || t % 32) continue;
          PlanChoice c;
          c.kind = PlanChoice::Persistent;
          c.blocks = (int)b;
          c.threads = t;
          c.product = product;
          c.barrier = barrier;
          const SeqPlan p = plan_for(c);
          if (p.blocks == 0) continue;
          bool seen = false;
          for (const SeqPlan& q : cands)
            seen = seen || (q.blocks == p.blocks && q.threads == p.threads && q.kc == p.kc &&
                            q.tc == p.tc && q.cluster == p.cluster);
          if (!seen) cands.push_back(p);
        }
  using clock = std::chrono::steady_clock;
  const auto start = clock::now();
  const double budget = mode == TuneMode::Full ? 1.0 : 0.05;   // seconds
  const int reps = mode == TuneMode::Full ? 3 : 1;
  SeqPlan best = base;
  double best_t = 1e300;
  for (size_t i = 0; i < cands.size(); ++i) {
    const SeqPlan& p = cands[i];
    const double t = tune_time([&] { run(p); }, reps);
    if (t < best_t) {
      best_t = t;
      best = p;
    }
    if (i >= 1 && std::chrono::duration<double>(clock::now() - start).count() > budget) break;
  }
  tunings.fetch_add(1, std::memory_order_relaxed);
  std::lock_guard<std::mutex> g(tune_m);
  return tuned.emplace(key, best).first->second;   // another thread's, if it was first
}

// (products and bf16: a plan keeps its tensor-core product count and fragment
// kind, so a precision's plans are its own: an fp32 call never runs a plan tuned
// for tf32's one product, nor tf32 one tuned on bf16's m16n8k16 fragments)
inline std::string loop_key(const char* dir, int mode, int64_t N, int64_t H, int64_t GH,
                            int copies, bool training, bool sequences, int products, bool bf16) {
  char buf[184];
  std::snprintf(buf, sizeof buf,
                "dev%d %s mode%d N%lld H%lld GH%lld copies%d train%d seq%d products%d%s",
                device_ordinal(), dir, mode, (long long)N, (long long)H, (long long)GH, copies,
                (int)training, (int)sequences, products, bf16 ? " bf16" : "");
  return buf;
}

// A persistent loop's launch (kernel(arg), smem bytes a block): one thread-block
// cluster where plan.cluster, else grid-cooperative.
#define RK_LAUNCH_SEQ(plan, smem, kernel, arg)                                              \
  do {                                                                                    \
    if ((plan).cluster)                                                                   \
      RK_LAUNCH_CLUSTER((plan).cluster, (plan).blocks, 1, (plan).threads, 1, (smem), kernel, \
                        arg);                                                             \
    else                                                                                  \
      RK_LAUNCH_GRID((plan).blocks, 1, (plan).threads, 1, (smem), kernel, arg);           \
  } while (0)

// plan.flags: the blocks' tags, zeroed on the launch stream before each launch of
// the loop (a launch's tags count its phases from zero).
struct SeqFlags {
  Buf<int> buf;
  explicit SeqFlags(const SeqPlan& p) : buf(p.flags ? (size_t)p.blocks : 0) {}
  int* fresh() {
    buf.zero();
    return buf.size() ? buf.get() : nullptr;
  }
};

// A persistent loop launched with plan, in the counters.
inline void count_persistent(const SeqPlan& plan) {
  persistent_launches.fetch_add(1, std::memory_order_relaxed);
  if (plan.flags) flag_launches.fetch_add(1, std::memory_order_relaxed);
  if (plan.cluster) cluster_launches.fetch_add(1, std::memory_order_relaxed);
  if (plan.push) push_launches.fetch_add(1, std::memory_order_relaxed);
}

// plan.push for a loop where it applies: one block (a block barrier a
// step) or one cluster, the exchanged rows one staged chunk (width: H forward, the
// gate columns backward; GRU reset_before pushes rh and h into a buffer each
// forward, dah and then dz and dr backward), not forced ",staged", and the
// further staging buffers still fit (smem_of(plan): the block's shared memory; the
// cluster, or co-residency).
template <class SmemOf>
SeqPlan seq_push_plan(SeqPlan p, const void* kernel, int64_t width, const PlanChoice& choice,
                      SmemOf smem_of) {
  if (choice.staged || p.blocks == 0 || p.kc < width || !(p.blocks == 1 || p.cluster))
    return p;
  SeqPlan q = p;
  q.push = 1;
  const size_t smem = smem_of(q);
  if (smem > Runtime::limits().smem) return p;
  const bool fits = q.cluster ? Runtime::cluster_fits(kernel, q.cluster, q.threads, smem)
                              : Runtime::coresident_blocks(kernel, q.threads, smem) >= 1;
  return fits ? q : p;
}

// (u2: where tuning's per-step candidate packs U's bf16 pairs, for the per-step
// family to keep where it wins: pack_u_pairs)
template <Mode M>
bool seq_forward_as(SeqArgs q, Buf<uint32_t>& u2) {
  if (q.T == 0) return false;
  const StepArgs& b = q.base;
  const int copies = b.rmask ? kStepGates<M> : 1;
  const void* kernel = (const void*)&seq_forward<M>;
  auto smem_of = [&](const SeqPlan& r) {
    return seq_forward_smem(r, kSeqSlots<M>, copies, b.N, b.H);
  };
  q.plan = seq_push_plan(
      seq_plan(true, kernel, b.N, b.H, b.GH, kSeqSlots<M>, copies, b.H, q.products, b.bf16),
      kernel, b.H, current_plan(), smem_of);
  if (q.plan.blocks == 0) return false;
  auto launch = [&](const SeqArgs& r) {
    SeqFlags tags(r.plan);   // (the pool reuses it on this stream only after the loop)
    SeqArgs l = r;
    l.flags = tags.fresh();
    RK_LAUNCH_SEQ(l.plan, smem_of(l.plan), seq_forward<M>, l);
  };
  if (const TuneMode mode = tuning_for_this_loop(); mode != TuneMode::Off) {
    // scratch for what the loop writes over its first `steps` steps
    const int64_t steps = tune_steps(mode, q.T), NH = b.N * b.H;
    const int64_t nstates = q.training ? steps + 1 : 2;
    const int64_t stride = q.training ? steps * NH : b.slot_stride;
    Buf<float> st(nstates * NH), cst(q.cstates ? nstates * NH : 0), sl(q.slots ? 5 * stride : 0),
        yt(q.yseq ? steps * NH : 0), yl(q.ylast ? NH : 0);
    Runtime::copy(st.get(), q.states, NH * sizeof(float));          // h0
    if (q.cstates) Runtime::copy(cst.get(), q.cstates, NH * sizeof(float));
    SeqArgs r = q;
    r.T = steps;
    r.states = st.get();
    r.cstates = q.cstates ? cst.get() : nullptr;
    r.slots = q.slots ? sl.get() : nullptr;
    r.base.slot_stride = stride;
    r.yseq = q.yseq ? yt.get() : nullptr;
    r.ylast = q.ylast ? yl.get() : nullptr;
    SeqArgs rs = r;   // the per-step candidate, with its bf16 pairs where R3 reads them
    pack_u_pairs(rs.base, u2);
    const std::string key =
        loop_key("forward", (int)M, b.N, b.H, b.GH, copies, q.training, q.return_sequences,
                 q.products, b.bf16);
    q.plan = tuned_plan(key, mode, q.plan,
                        [&](const PlanChoice& c) {
                          return seq_push_plan(
                              seq_plan_with(c, false, true, kernel, b.N, b.H, b.GH,
                                            kSeqSlots<M>, copies, b.H, q.products, b.bf16),
                              kernel, b.H, c, smem_of);
                        },
                        [&](const SeqPlan& p) {
                          if (p.steps) return steps_forward<M>(rs);
                          r.plan = p;
                          launch(r);
                        });
    if (q.plan.steps) return false;   // the per-step family was the faster
  }
  launch(q);
  count_persistent(q.plan);
  return true;
}

// (p: the call's precision, for the per-step candidate's GEMMs)
template <Mode M>
bool seq_backward_as(SeqBackArgs q, Precision p) {
  if (q.T == 0) return false;
  const BackArgs& b = q.base;
  const int64_t width = M == Mode::GruRB1 ? 2 * b.H : b.GH;
  const void* kernel = (const void*)&seq_backward<M>;
  const int gacc = b.rmask ? 4 : 1;   // the tensor-core product's sums a gate
  auto smem_of = [&](const SeqPlan& r) {
    return seq_backward_smem(r, b.N, b.GH, gacc, M == Mode::GruRB1);
  };
  q.plan = seq_push_plan(
      seq_plan(false, kernel, b.N, b.H, b.GH, 1, gacc, width, q.products, b.bf16), kernel, width,
      current_plan(), smem_of);
  if (q.plan.blocks == 0) return false;
  auto launch = [&](const SeqBackArgs& r) {
    SeqFlags tags(r.plan);
    SeqBackArgs l = r;
    l.flags = tags.fresh();
    RK_LAUNCH_SEQ(l.plan, smem_of(l.plan), seq_backward<M>, l);
  };
  if (const TuneMode mode = tuning_for_this_loop(); mode != TuneMode::Off) {
    // scratch for what the loop writes: the gate gradients of its first steps,
    // the carried gradients (starting from the call's d h_T, d c_T), d(rh)
    const int64_t steps = tune_steps(mode, q.T), NH = b.N * b.H;
    const bool own_dgr = q.dgr != q.dgx;
    Buf<float> gx(steps * b.N * b.GH), gr(own_dgr ? steps * b.N * b.GH : 0), dh(2 * NH),
        dc(q.lstm ? 2 * NH : 0), rh(q.drh ? NH : 0);
    Runtime::copy(dh.get(), q.dh[0], NH * sizeof(float));
    if (q.lstm) Runtime::copy(dc.get(), q.dc[0], NH * sizeof(float));
    SeqBackArgs r = q;
    r.T = steps;
    r.dgx = gx.get();
    r.dgr = own_dgr ? gr.get() : gx.get();
    r.dh[0] = dh.get();
    r.dh[1] = dh.get() + NH;
    if (q.lstm) {
      r.dc[0] = dc.get();
      r.dc[1] = dc.get() + NH;
    }
    r.drh = q.drh ? rh.get() : nullptr;
    Buf<float> parts = steps_backward_parts<M>(r);
    const std::string key =
        loop_key("backward", (int)M, b.N, b.H, b.GH, 1, true, q.return_sequences, q.products,
                 b.bf16);
    q.plan = tuned_plan(key, mode, q.plan,
                        [&](const PlanChoice& c) {
                          return seq_push_plan(
                              seq_plan_with(c, false, false, kernel, b.N, b.H, b.GH, 1, gacc,
                                            width, q.products, b.bf16),
                              kernel, width, c, smem_of);
                        },
                        [&](const SeqPlan& c) {
                          if (c.steps) return steps_backward<M>(r, p, parts.get());
                          r.plan = c;
                          launch(r);
                        });
    if (q.plan.steps) return false;   // the per-step family was the faster
  }
  launch(q);
  count_persistent(q.plan);
  return true;
}

}  // namespace

// The fragment API's probe (kernels.cuh mma_probe) on host arrays: A [16, 8],
// B [8, 8], C and D [16, 8], shfl [32], A16 [16, 16], B16 [16, 8], D16 [16, 8].
void mma_probe_run(const float* A, const float* B, const float* C, float* D, float* shfl,
                   const float* A16, const float* B16, float* D16) {
  Buf<float> a(16 * 8), b(8 * 8), c(16 * 8), d(16 * 8), s(32), a16(16 * 16), b16(16 * 8),
      d16(16 * 8);
  a.upload(A);
  b.upload(B);
  c.upload(C);
  a16.upload(A16);
  b16.upload(B16);
  RK_LAUNCH(Block, 1, 1, 32, 1, 0, mma_probe, (const float*)a.get(), (const float*)b.get(),
            (const float*)c.get(), d.get(), s.get(), (const float*)a16.get(),
            (const float*)b16.get(), d16.get());
  d.download(D);
  s.download(shfl);
  d16.download(D16);
}

// The cost model's micro-benchmarks (kernels.cuh micro_*), what by name:
//   mma_tf32_latency, mma_bf16_latency  cycles from one dependent mma to the next
//                                       (one warp, one chain of iters)
//   mma_tf32_rate, mma_bf16_rate        mma a cycle on one SM (arg warps, 8 chains each)
//   grid_sync                           microseconds a grid barrier (arg blocks of 128
//                                       threads, at most one an SM; iters barriers
//                                       against one, host clock)
//   flag_handoff                        cycles one block's release store takes to reach
//                                       another block's acquire load (two blocks
//                                       ping-ponging a flag iters times)
//   l2_chase                            cycles a dependent load through L2 over a
//                                       buffer of arg KiB (a random cycle of 128-byte
//                                       lines)
//   cluster_sync                        microseconds a cluster barrier after one
//                                       distributed-shared-memory store a thread (a
//                                       cluster of arg blocks of 128 threads; iters
//                                       barriers against one, host clock); an error
//                                       where a store was not seen after the barrier
//   dsmem_chase                         cycles a dependent load from another block's
//                                       shared memory in a cluster of two (a random
//                                       cycle over arg KiB); an error where the chase
//                                       does not end where the cycle does
//
// A random cycle over `count` slots `stride` ints apart, as next-indices: next[s *
// stride] is the slot after slot s (a fixed xorshift: the same cycle every run).
inline std::vector<int> chase_cycle(int64_t count, int64_t stride) {
  std::vector<int> next((size_t)(count * stride), 0), order((size_t)count);
  for (int64_t i = 0; i < count; ++i) order[(size_t)i] = (int)i;
  uint64_t x = 88172645463325252ull;
  for (int64_t i = count - 1; i > 0; --i) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    std::swap(order[(size_t)i], order[(size_t)(x % (uint64_t)(i + 1))]);
  }
  for (int64_t i = 0; i < count; ++i)
    next[(size_t)(order[(size_t)i] * stride)] = (int)(order[(size_t)((i + 1) % count)] * stride);
  return next;
}

double micro_bench(const std::string& what, int arg, int iters) {
  if (iters < 1) throw std::invalid_argument("micro_bench: iters must be >= 1");
  if (arg < 1) throw std::invalid_argument("micro_bench: arg must be >= 1");
  const bool bf16 = what == "mma_bf16_latency" || what == "mma_bf16_rate";
  if (what == "mma_tf32_latency" || what == "mma_bf16_latency" || what == "mma_tf32_rate" ||
      what == "mma_bf16_rate") {
    const bool rate = what == "mma_tf32_rate" || what == "mma_bf16_rate";
    const int warps = rate ? arg : 1;
    if (warps > 32) throw std::invalid_argument("micro_bench: at most 32 warps");
    Buf<float> out(32 * warps);
    Buf<long long> cyc(warps);
    if (rate)
      RK_LAUNCH(Block, 1, 1, 32 * warps, 1, 0, micro_mma<8>, iters, (int)bf16, out.get(),
                cyc.get());
    else
      RK_LAUNCH(Block, 1, 1, 32, 1, 0, micro_mma<1>, iters, (int)bf16, out.get(), cyc.get());
    std::vector<long long> c(warps);
    cyc.download(c.data());
    const long long span = *std::max_element(c.begin(), c.end());
    return rate ? (double)warps * 8.0 * iters / (double)std::max(1LL, span)
                : (double)span / iters;
  }
  if (what == "grid_sync") {
    const DeviceLimits lim = Runtime::limits();
    if (!lim.cooperative) throw std::runtime_error("micro_bench: no cooperative launches here");
    if (arg > lim.sms)
      throw std::invalid_argument("micro_bench: grid_sync takes at most one block an SM (" +
                                  std::to_string(lim.sms) + ")");
    Buf<float> sink(1);
    auto run = [&](int n) {
      MicroSyncArgs q;
      q.n = n;
      q.sink = sink.get();
      const auto t0 = std::chrono::steady_clock::now();
      RK_LAUNCH_GRID(arg, 1, 128, 1, 0, micro_grid_sync, q);
      Runtime::synchronize();
      return std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0)
          .count();
    };
    run(1);   // warm: the first cooperative launch loads the module
    double one = run(1), many = run(iters + 1);
    one = std::min(one, run(1));
    many = std::min(many, run(iters + 1));
    return std::max(0.0, many - one) / iters;
  }
  if (what == "flag_handoff") {
    if (!Runtime::limits().cooperative)
      throw std::runtime_error("micro_bench: no cooperative launches here");
    Buf<int> flag(1);
    Buf<long long> cyc(2);
    const int zero = 0;
    const long long none[2] = {0, 0};
    auto run = [&]() {
      flag.upload(&zero);
      cyc.upload(none);
      MicroFlagArgs q;
      q.n = iters;
      q.flag = flag.get();
      q.cycles = cyc.get();
      RK_LAUNCH_GRID(2, 1, 32, 1, 0, micro_flag_pingpong, q);
      long long c[2] = {0, 0};
      cyc.download(c);
      if (c[0] < 0 || c[1] < 0)
        throw std::runtime_error("micro_bench: the flag hand-off did not complete");
      return c[0];
    };
    run();   // warm
    return (double)run() / (2.0 * iters);
  }
  if (what == "l2_chase") {
    const int64_t stride = 32;   // ints: 128-byte lines
    const int64_t lines = std::max<int64_t>(2, (int64_t)arg * 1024 / (stride * 4));
    const std::vector<int> next = chase_cycle(lines, stride);
    Buf<int> nx(lines * stride), sink(1);
    Buf<long long> cyc(1);
    nx.upload(next.data());
    RK_LAUNCH(Independent, 1, 1, 1, 1, 0, micro_chase, (const int*)nx.get(), iters, sink.get(),
              cyc.get());   // warm: the lines into L2
    RK_LAUNCH(Independent, 1, 1, 1, 1, 0, micro_chase, (const int*)nx.get(), iters, sink.get(),
              cyc.get());
    long long c = 0;
    cyc.download(&c);
    return (double)c / iters;
  }
  if (what == "cluster_sync" || what == "dsmem_chase") {
    const DeviceLimits lim = Runtime::limits();
    if (lim.max_cluster < 2)
      throw std::runtime_error("micro_bench: no thread-block cluster launches here");
    if (what == "cluster_sync") {
      if (arg < 2 || arg > lim.max_cluster)
        throw std::invalid_argument("micro_bench: cluster_sync takes a cluster of 2 to " +
                                    std::to_string(lim.max_cluster) + " blocks, got " +
                                    std::to_string(arg));
      const int threads = 128;
      const size_t smem = 2 * threads * sizeof(int);
      if (!Runtime::cluster_fits((const void*)&micro_cluster_sync, arg, threads, smem))
        throw std::runtime_error("micro_bench: a cluster of " + std::to_string(arg) +
                                 " blocks does not fit this device");
      Buf<int> bad((int64_t)arg * threads);
      auto run = [&](int n) {
        MicroClusterArgs q;
        q.n = n;
        q.bad = bad.get();
        const auto t0 = std::chrono::steady_clock::now();
        RK_LAUNCH_CLUSTER(arg, arg, 1, threads, 1, smem, micro_cluster_sync, q);
        Runtime::synchronize();
        const double us =
            std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0)
                .count();
        std::vector<int> b((size_t)arg * threads);
        bad.download(b.data());
        for (int v : b)
          if (v)
            throw std::runtime_error("micro_bench: a distributed-shared-memory store was not "
                                     "seen after the cluster barrier");
        return us;
      };
      run(1);   // warm
      double one = run(1), many = run(iters + 1);
      one = std::min(one, run(1));
      many = std::min(many, run(iters + 1));
      return std::max(0.0, many - one) / iters;
    }
    const int64_t len = std::max<int64_t>(2, (int64_t)arg * 1024 / 4);
    if ((size_t)len * sizeof(int) > lim.smem)
      throw std::invalid_argument("micro_bench: dsmem_chase's cycle must fit one block's "
                                  "shared memory (" + std::to_string(lim.smem / 1024) +
                                  " KiB)");
    const std::vector<int> next = chase_cycle(len, 1);
    int want = 0;
    for (int i = 0; i < iters; ++i) want = next[(size_t)want];
    const size_t smem = (size_t)len * sizeof(int);
    if (!Runtime::cluster_fits((const void*)&micro_dsmem_chase, 2, 128, smem))
      throw std::runtime_error("micro_bench: a cluster of 2 blocks does not fit this device");
    Buf<int> nx(len), sink(1);
    Buf<long long> cyc(1);
    nx.upload(next.data());
    long long c = 0;
    for (int rep = 0; rep < 2; ++rep) {   // the first warms
      MicroDsmemArgs q;
      q.next = nx.get();
      q.len = (int)len;
      q.n = iters;
      q.sink = sink.get();
      q.cycles = cyc.get();
      RK_LAUNCH_CLUSTER(2, 2, 1, 128, 1, smem, micro_dsmem_chase, q);
      int got = -1;
      sink.download(&got);
      if (got != want)
        throw std::runtime_error("micro_bench: the distributed-shared-memory chase ended at " +
                                 std::to_string(got) + ", not " + std::to_string(want));
      cyc.download(&c);
    }
    return (double)c / iters;
  }
  throw std::invalid_argument("micro_bench: unknown benchmark '" + what +
                              "' (mma_tf32_latency, mma_bf16_latency, mma_tf32_rate, "
                              "mma_bf16_rate, grid_sync, flag_handoff, l2_chase, "
                              "cluster_sync, dsmem_chase)");
}

}  // namespace RK_GPU_NS
}  // namespace rnnkern
