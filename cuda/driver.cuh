// rnnkern — the host side of the GPU backends: one layer's forward and BPTT as a
// sequence of the kernels of kernels.cuh. Included once per build, after the
// build has defined (in namespace rnnkern::RK_GPU_NS):
//   struct Runtime { static void* alloc(size_t); static void release(void*);
//                    static void to_device(void*, const void*, size_t);
//                    static void to_host(void*, const void*, size_t);
//                    static void copy(void*, const void*, size_t);   // device to device
//                    static void zero(void*, size_t); };
//   class Graph { void begin_capture(); void end_capture(); void instantiate();
//                 bool update(Graph& fresh); void replay(); }
//                  (the launches this thread makes between the first two are
//                  recorded, not run; replay runs them: a CUDA graph, or its
//                  emulation; update takes a same-shaped capture's arguments)
//   RK_LAUNCH(kind, grid_x, grid_y, block_x, block_y, smem_bytes, kernel, args...)
//   RK_LAUNCH_GRID(grid_x, grid_y, block_x, block_y, smem_bytes, kernel, arg)
//                  (a grid-cooperative launch: the whole grid resident at once)
//   Runtime::coresident_blocks(kernel, threads, smem): how many blocks of that
//                  kernel the device runs at once
// and it defines run_forward / run_backward and the backend's kernel-table entry
// (backend(), rnnkern/backend.h) calling them.
// No allocation inside the time loops: every buffer is made before them.
#pragma once

#include <algorithm>
#include <atomic>
#include <memory>
#include <utility>
#include <vector>

#include "gpu_api.h"
#include "kernels.cuh"

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

// Forwards that took the small-batch persistent path, and time loops run as a
// captured graph, and of those the ones that updated a cached graph instead of
// instantiating one (for the tests).
inline std::atomic<long> persistent_launches{0}, graph_replays{0}, graph_updates{0};
long persistent_count() { return persistent_launches.load(); }
long graph_count() { return graph_replays.load(); }
long graph_update_count() { return graph_updates.load(); }

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

inline Mode forward_mode(const RnnConfig& c) {
  return c.cell == Cell::SimpleRNN ? Mode::Simple : c.cell == Cell::LSTM ? Mode::Lstm
       : c.reset_after ? Mode::GruRA : Mode::GruRB1;
}
inline int gpu_slots(Cell c) { return c == Cell::SimpleRNN ? 1 : c == Cell::LSTM ? 5 : 4; }

// What a training forward keeps on the device for its backward.
struct GpuWorkspaceImpl final : Workspace {
  bool has_bias = false;
  Buf<float> xs, W, U, imask, rmask, states, cstates, slots;
  Buf<uint8_t> mask, seen;
  int64_t slot_stride = 0;
  size_t nbytes() const override {
    size_t n = 0;
    for (const Buf<float>* b : {&xs, &W, &U, &imask, &rmask, &states, &cstates, &slots})
      n += b->size() * sizeof(float);
    return n + mask.size() + seen.size();
  }
};

namespace {

constexpr int kLinear = 128;  // threads a block for the independent kernels
// Shared memory the persistent path may take a block (the H200 allows 227 KiB).
constexpr size_t kPersistentSmemMax = 96 * 1024;

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

// Gate g's block of columns [g*H, (g+1)*H) of a row-major [rows, GH] matrix.
inline GemmArgs gate_cols(GemmArgs g, int gate, int64_t H, bool b_side, bool c_side) {
  if (b_side) g.b += g.tb ? gate * H * g.ldb : gate * H;
  if (c_side) g.c += gate * H;
  return g;
}

template <Mode M>
void launch_step(const StepArgs& s) {
  RK_LAUNCH(Block, cdiv(s.H, kStepU), cdiv(s.N, kStepR), kStepU, kStepTY, step_smem<M>(),
            step_forward<M>, s);
}

template <Mode M>
void launch_back(const BackArgs& b) {
  RK_LAUNCH(Independent, linear_blocks(b.N * b.H), 1, kLinear, 1, 0, step_backward<M>, b);
}

// The small-batch path: one grid-cooperative launch for the whole sequence, when
// the batch fits one row tile, U's columns fit a block's shared memory and the
// grid fits the device at once (Runtime::coresident_blocks). false: not taken.
template <Mode M>
bool persistent_as(const SeqArgs& q) {
  const int blocks = cdiv(q.base.H, kStepU);
  const size_t smem = persistent_smem<M>(q.base.H);
  if (smem > kPersistentSmemMax) return false;
  if (blocks > Runtime::coresident_blocks((const void*)&persistent_forward<M>,
                                          kStepU * kStepTY, smem))
    return false;
  RK_LAUNCH_GRID(blocks, 1, kStepU, kStepTY, smem, persistent_forward<M>, q);
  persistent_launches.fetch_add(1, std::memory_order_relaxed);
  return true;
}

bool persistent_forward_if_fits(const SeqArgs& q, Mode mode) {
  if (q.base.N > kPersistRows || q.T == 0) return false;
  switch (mode) {
    case Mode::Simple: return persistent_as<Mode::Simple>(q);
    case Mode::Lstm: return persistent_as<Mode::Lstm>(q);
    case Mode::GruRA: return persistent_as<Mode::GruRA>(q);
    default: return persistent_as<Mode::GruRB1>(q);
  }
}

}  // namespace

std::unique_ptr<Workspace> run_forward(const RnnConfig& cfg, const LayerArgs& in) {
  const LayerArgs& out = in;
  const int64_t T = cfg.T, N = cfg.N, C = cfg.C, H = cfg.H, G = num_gates(cfg.cell);
  const int64_t GH = G * H, NH = N * H, TN = T * N;
  const Mode mode = forward_mode(cfg);
  const bool rb = mode == Mode::GruRB1, ra = mode == Mode::GruRA;
  const int S = gpu_slots(cfg.cell);
  auto ws = std::make_unique<GpuWorkspaceImpl>();
  ws->cfg = cfg;
  ws->has_bias = in.b != nullptr;

  const bool dev = in.on_device;  // the caller's arrays are device memory: no host copies
  Buf<float> x(dev ? 0 : N * T * C), b(in.b ? (ra ? 2 * GH : GH) : 0), P(TN * GH);
  x.upload(in.x);
  b.upload(in.b, dev);
  ws->xs = Buf<float>(TN * C);
  ws->W = Buf<float>(C * GH);
  ws->U = Buf<float>(H * GH);
  ws->W.upload(in.W, dev);
  ws->U.upload(in.U, dev);
  if (in.input_masks) {
    ws->imask = Buf<float>(G * N * C);
    ws->imask.upload(in.input_masks, dev);
  }
  if (in.recurrent_masks) {
    ws->rmask = Buf<float>(G * NH);
    ws->rmask.upload(in.recurrent_masks, dev);
  }
  RK_LAUNCH(Independent, linear_blocks(TN * C), 1, kLinear, 1, 0, to_time_major,
            dev ? in.x : x.get(), ws->xs.get(), N, T, C, cfg.go_backwards);
  if (in.mask) {
    ws->mask = Buf<uint8_t>(N * T);
    ws->mask.upload(in.mask, dev);
    ws->seen = Buf<uint8_t>(TN);
    RK_LAUNCH(Independent, linear_blocks(N), 1, kLinear, 1, 0, seen_flags, ws->mask.get(),
              ws->seen.get(), N, T, cfg.go_backwards);
  }

  // the input projection for every step at once
  GemmArgs pg;
  pg.M = TN;
  pg.K = C;
  pg.a = ws->xs.get();
  pg.lda = C;
  pg.b = ws->W.get();
  pg.ldb = GH;
  pg.c = P.get();
  pg.ldc = GH;
  if (!in.input_masks) {
    pg.N = GH;
    pg.bias = b.get();
    gemm(pg);
  } else {
    pg.N = H;
    pg.amask_rows = N;
    pg.amask_ld = C;
    for (int g = 0; g < G; ++g) {
      GemmArgs q = gate_cols(pg, g, H, true, true);
      q.bias = b.get() ? b.get() + g * H : nullptr;
      q.amask = ws->imask.get() + g * N * C;
      gemm(q);
    }
  }

  // states: every step's kept in training, a ring of two otherwise
  const int64_t nstates = cfg.training ? T + 1 : 2;
  ws->states = Buf<float>(nstates * NH);
  state_in(ws->states.get(), in.h0, NH, dev);
  if (cfg.cell == Cell::LSTM) {
    ws->cstates = Buf<float>(nstates * NH);
    state_in(ws->cstates.get(), in.c0, NH, dev);
  }
  const bool need_slots = cfg.training || rb;
  ws->slot_stride = cfg.training ? TN * H : NH;
  if (need_slots) ws->slots = Buf<float>(S * ws->slot_stride);
  Buf<float> ytm(cfg.return_sequences ? TN * H : 0), ylast(cfg.return_sequences ? 0 : NH);

  SeqArgs q;
  q.base.N = N;
  q.base.H = H;
  q.base.GH = GH;
  q.base.act = cfg.act;
  q.base.ract = cfg.ract;
  q.base.rmask = ws->rmask.get();
  q.base.u = ws->U.get();
  q.base.brec = ra && b.get() ? b.get() + GH : nullptr;
  q.base.slot_stride = ws->slot_stride;
  q.T = T;
  q.go_backwards = cfg.go_backwards;
  q.training = cfg.training;
  q.return_sequences = cfg.return_sequences;
  q.p = P.get();
  q.states = ws->states.get();
  q.cstates = ws->cstates.get();
  q.mask = ws->mask.get();
  q.seen = ws->seen.get();
  q.ytm = ytm.get();
  q.ylast = ylast.get();
  q.slots = need_slots ? ws->slots.get() : nullptr;
  q.lstm = cfg.cell == Cell::LSTM;
  if (!persistent_forward_if_fits(q, mode)) {
    time_loop(LoopSite::Forward, T, [&] {
      for (int64_t s = 0; s < T; ++s) {
        const StepArgs a = forward_step_args(q, s);
        switch (mode) {
          case Mode::Simple: launch_step<Mode::Simple>(a); break;
          case Mode::Lstm: launch_step<Mode::Lstm>(a); break;
          case Mode::GruRA: launch_step<Mode::GruRA>(a); break;
          default:
            launch_step<Mode::GruRB1>(a);
            launch_step<Mode::GruRB2>(second_phase(a));
        }
      }
    });
  }
  if (cfg.return_sequences) {
    Buf<float> y(dev ? 0 : N * T * H);
    RK_LAUNCH(Independent, linear_blocks(TN * H), 1, kLinear, 1, 0, from_time_major, ytm.get(),
              dev ? out.y : y.get(), N, T, H, false);
    y.download(out.y);
  } else {
    ylast.download(out.y, dev);
  }
  const int64_t last = (cfg.training ? T : T % 2) * NH;
  state_out(out.hT, ws->states.get() + last, NH, dev);
  if (cfg.cell == Cell::LSTM) state_out(out.cT, ws->cstates.get() + last, NH, dev);
  if (!cfg.training) return nullptr;
  return ws;
}

void run_backward(const Workspace& base, const GradArgs& in) {
  const GradArgs& out = in;
  const auto& ws = static_cast<const GpuWorkspaceImpl&>(base);
  const RnnConfig& cfg = ws.cfg;
  const int64_t T = cfg.T, N = cfg.N, C = cfg.C, H = cfg.H, G = num_gates(cfg.cell);
  const int64_t GH = G * H, NH = N * H, TN = T * N;
  const Mode mode = forward_mode(cfg);
  const bool rb = mode == Mode::GruRB1, ra = mode == Mode::GruRA;
  const int64_t ss = ws.slot_stride;

  const bool dev = in.on_device;  // the caller's arrays are device memory: no host copies
  Buf<float> dy(dev ? 0 : (cfg.return_sequences ? TN * H : NH));
  Buf<float> dytm(cfg.return_sequences ? TN * H : 0);
  dy.upload(in.dy);
  const float* dy_dev = dev ? in.dy : dy.get();
  if (cfg.return_sequences)
    RK_LAUNCH(Independent, linear_blocks(TN * H), 1, kLinear, 1, 0, to_time_major, dy_dev,
              dytm.get(), N, T, H, false);
  Buf<float> dgx(TN * GH), dgr(ra ? TN * GH : 0), dh[2] = {Buf<float>(NH), Buf<float>(NH)};
  Buf<float> dc[2], drh(rb ? NH : 0);
  dh[0].upload(in.dhT, dev);
  if (cfg.cell == Cell::LSTM) {
    dc[0] = Buf<float>(NH);
    dc[1] = Buf<float>(NH);
    dc[0].upload(in.dcT, dev);
  }
  float* dgr_base = ra ? dgr.get() : dgx.get();
  const int ng_rec = rb ? 2 : (int)G;   // gates whose U^T product reaches h_prev directly

  int cur = 0;
  time_loop(LoopSite::Backward, T, [&] {
    for (int64_t s = T - 1; s >= 0; --s) {
      const int64_t t = cfg.go_backwards ? T - 1 - s : s;
      BackArgs b;
      b.N = N;
      b.H = H;
      b.GH = GH;
      b.act = cfg.act;
      b.ract = cfg.ract;
      b.dh_in = dh[cur].get();
      b.dy = cfg.return_sequences ? dytm.get() + s * NH : (s == T - 1 ? dy_dev : nullptr);
      b.seen = ws.seen.get() ? ws.seen.get() + s * N : nullptr;
      b.mask = ws.mask.get() ? ws.mask.get() + t : nullptr;
      b.mask_stride = T;
      b.slots = ws.slots.get() + s * NH;
      b.slot_stride = ss;
      b.hprev = ws.states.get() + s * NH;
      if (cfg.cell == Cell::LSTM) {
        b.cprev = ws.cstates.get() + s * NH;
        b.dc_in = dc[cur].get();
        b.dc_out = dc[1 - cur].get();
      }
      b.dgx = dgx.get() + s * N * GH;
      b.dgr = dgr_base + s * N * GH;
      b.dh_out = dh[1 - cur].get();
      b.rmask = ws.rmask.get();
      switch (mode) {
        case Mode::Simple: launch_back<Mode::Simple>(b); break;
        case Mode::Lstm: launch_back<Mode::Lstm>(b); break;
        case Mode::GruRA: launch_back<Mode::GruRA>(b); break;
        default: {
          launch_back<Mode::GruRB1>(b);
          GemmArgs q;                      // d(rh) = dah U_h^T
          q.M = N;
          q.N = H;
          q.K = H;
          q.a = b.dgx + 2 * H;
          q.lda = GH;
          q.b = ws.U.get() + 2 * H;
          q.ldb = GH;
          q.tb = true;
          q.c = drh.get();
          q.ldc = H;
          gemm(q);
          BackArgs b2 = b;
          b2.drh = drh.get();
          launch_back<Mode::GruRB2>(b2);
        }
      }
      // d h_prev += sum over gates of (dG_g U_g^T) ⊙ m_g
      GemmArgs q;
      q.M = N;
      q.N = H;
      q.a = b.dgr;
      q.lda = GH;
      q.b = ws.U.get();
      q.ldb = GH;
      q.tb = true;
      q.c = b.dh_out;
      q.ldc = H;
      q.beta = 1.0f;
      if (!ws.rmask.get()) {
        q.K = ng_rec * H;
        gemm(q);
      } else {
        q.K = H;
        q.cmask_rows = N;
        q.cmask_ld = H;
        for (int g = 0; g < ng_rec; ++g) {
          GemmArgs qg = q;
          qg.a = q.a + g * H;
          qg.b = q.b + g * H;
          qg.cmask = ws.rmask.get() + g * NH;
          gemm(qg);
        }
      }
      cur = 1 - cur;
    }
  });
  dh[cur].download(out.dh0, dev);
  if (cfg.cell == Cell::LSTM) dc[cur].download(out.dc0, dev);

  // weight gradients over all steps at once
  Buf<float> dW(C * GH), dU(H * GH);
  GemmArgs w;                           // dW = xs^T dGx (per gate with input masks)
  w.M = C;
  w.K = TN;
  w.a = ws.xs.get();
  w.lda = C;
  w.ta = true;
  w.b = dgx.get();
  w.ldb = GH;
  w.c = dW.get();
  w.ldc = GH;
  if (!ws.imask.get()) {
    w.N = GH;
    gemm(w);
  } else {
    w.N = H;
    w.amask_rows = N;
    w.amask_ld = C;
    for (int g = 0; g < G; ++g) {
      GemmArgs q = gate_cols(w, g, H, true, true);
      q.amask = ws.imask.get() + g * N * C;
      gemm(q);
    }
  }
  GemmArgs u;                           // dU = h_prev^T dGr (states 0..T-1 are [T*N, H])
  u.M = H;
  u.K = TN;
  u.a = ws.states.get();
  u.lda = H;
  u.ta = true;
  u.b = dgr_base;
  u.ldb = GH;
  u.c = dU.get();
  u.ldc = GH;
  if (!ws.rmask.get()) {
    u.N = ng_rec * H;
    gemm(u);
  } else {
    u.N = H;
    u.amask_rows = N;
    u.amask_ld = H;
    for (int g = 0; g < ng_rec; ++g) {
      GemmArgs q = gate_cols(u, g, H, true, true);
      q.amask = ws.rmask.get() + g * NH;
      gemm(q);
    }
  }
  if (rb) {                             // dU_h = rh^T dah
    GemmArgs q = gate_cols(u, 2, H, true, true);
    q.N = H;
    q.a = ws.slots.get() + 3 * ss;
    q.amask = nullptr;
    gemm(q);
  }
  dW.download(out.dW, dev);
  dU.download(out.dU, dev);

  Buf<float> dxtm(TN * C), dx(dev ? 0 : N * T * C);  // dX = dGx W^T (⊙ input masks per gate)
  GemmArgs xg;
  xg.M = TN;
  xg.N = C;
  xg.a = dgx.get();
  xg.lda = GH;
  xg.b = ws.W.get();
  xg.ldb = GH;
  xg.tb = true;
  xg.c = dxtm.get();
  xg.ldc = C;
  if (!ws.imask.get()) {
    xg.K = GH;
    gemm(xg);
  } else {
    xg.K = H;
    xg.cmask_rows = N;
    xg.cmask_ld = C;
    for (int g = 0; g < G; ++g) {
      GemmArgs q = xg;
      q.a += g * H;
      q.b += g * H;
      q.cmask = ws.imask.get() + g * N * C;
      q.beta = g ? 1.0f : 0.0f;
      gemm(q);
    }
  }
  RK_LAUNCH(Independent, linear_blocks(TN * C), 1, kLinear, 1, 0, from_time_major, dxtm.get(),
            dev ? out.dx : dx.get(), N, T, C, cfg.go_backwards);
  dx.download(out.dx);

  if (ws.has_bias && out.db) {
    Buf<float> db(ra ? 2 * GH : GH);
    RK_LAUNCH(Independent, linear_blocks(GH), 1, kLinear, 1, 0, column_sums, dgx.get(), TN, GH,
              GH, db.get());
    if (ra)
      RK_LAUNCH(Independent, linear_blocks(GH), 1, kLinear, 1, 0, column_sums, dgr.get(), TN, GH,
                GH, db.get() + GH);
    db.download(out.db, dev);
  }
}

}  // namespace RK_GPU_NS
}  // namespace rnnkern
