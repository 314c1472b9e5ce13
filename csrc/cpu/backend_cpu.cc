// rnnkern — the CPU ISAs' entries of the kernel table (rnnkern/backend.h): a
// layer's forward and BPTT over one ISA's CpuKernels, the workspace memory they
// recycle, and the weights packed for them; one row per ISA of dispatch.cc's
// kCpuIsas that this CPU runs (find_backend, csrc/backend.cc, looks them up).
#include <algorithm>
#include <cstdlib>
#include <mutex>
#include <new>
#include <stdexcept>
#include <utility>
#include <vector>

#include "kernels.h"
#include "rnnkern/backend.h"

namespace rnnkern {
namespace {

// Workspace memory is recycled: a training loop allocates a workspace of the
// same size every step, and fresh pages cost a page fault each (~4 ms of a
// 50 ms LSTM S2 training step here). Up to 4 freed blocks (1 GiB in all) are
// kept and handed out again for requests of at least half their size.
class BlockPool {
 public:
  static BlockPool& get() {
    static BlockPool* pool = new BlockPool();  // never destroyed: used at exit
    return *pool;
  }
  float* take(size_t n, size_t* cap) {
    {
      std::lock_guard<std::mutex> g(m_);
      size_t best = free_.size();
      for (size_t i = 0; i < free_.size(); ++i)
        if (free_[i].second >= n && free_[i].second / 2 <= n &&
            (best == free_.size() || free_[i].second < free_[best].second))
          best = i;
      if (best != free_.size()) {
        float* p = free_[best].first;
        *cap = free_[best].second;
        bytes_ -= *cap * sizeof(float);
        free_.erase(free_.begin() + best);
        return p;
      }
    }
    *cap = n;
    return new float[std::max<size_t>(n, 1)];
  }
  size_t release() {
    std::lock_guard<std::mutex> g(m_);
    const size_t freed = bytes_;
    for (auto& blk : free_) delete[] blk.first;
    free_.clear();
    bytes_ = 0;
    return freed;
  }
  void give(float* p, size_t cap) {
    if (!p) return;
    std::lock_guard<std::mutex> g(m_);
    if (free_.size() < 4 && bytes_ + cap * sizeof(float) <= (size_t(1) << 30)) {
      free_.emplace_back(p, cap);
      bytes_ += cap * sizeof(float);
    } else {
      delete[] p;
    }
  }

 private:
  std::mutex m_;
  std::vector<std::pair<float*, size_t>> free_;
  size_t bytes_ = 0;
};

// A recycled float buffer (not initialised).
class PooledBuffer {
 public:
  PooledBuffer() = default;
  explicit PooledBuffer(size_t n) : n_(n) { p_ = BlockPool::get().take(n, &cap_); }
  PooledBuffer(const PooledBuffer&) = delete;
  PooledBuffer& operator=(const PooledBuffer&) = delete;
  PooledBuffer& operator=(PooledBuffer&& o) noexcept {
    std::swap(p_, o.p_);
    std::swap(n_, o.n_);
    std::swap(cap_, o.cap_);
    return *this;
  }
  ~PooledBuffer() { BlockPool::get().give(p_, cap_); }
  float* get() const { return p_; }
  size_t size() const { return n_; }

 private:
  float* p_ = nullptr;
  size_t n_ = 0, cap_ = 0;
};

// A layer's kernels packed once for one ISA (U, and W when given). The forward
// parts are packed when it is made, the backward parts on the first backward
// that needs them (under `m_`, which also guards `floats_`).
class CpuPacked final : public Packed {
 public:
  const float* get(int p) const { return floats_[p] ? part_[p].get() : nullptr; }
  // Packs parts [p0, p1) of `weights`.
  void pack(const CpuKernels& k, const float* weights, int p0, int p1) {
    for (int p = p0; p < p1; ++p) {
      floats_[p] = k.packed_floats(cfg, p);
      if (!floats_[p]) continue;
      const size_t bytes = ((size_t)floats_[p] * sizeof(float) + 63) / 64 * 64;
      part_[p].reset(static_cast<float*>(std::aligned_alloc(64, bytes)));
      if (!part_[p]) throw std::bad_alloc();
      k.pack(cfg, weights, p, part_[p].get());
    }
  }
  void ensure_backward(const CpuKernels& k, const float* U) const {
    std::lock_guard<std::mutex> g(m_);
    if (backward_packed_) return;
    const_cast<CpuPacked*>(this)->pack(k, U, kPackBackward, kPackBackward2 + 1);
    backward_packed_ = true;
  }
  // precision bf16: the same parts packed from the weights rounded to bf16 (Ub,
  // Wb: the caller's rounded copies of the arrays packed here), made on the
  // first bf16 call; the backward parts as the fp32 ones, on the first backward.
  const CpuPacked& bf16(const CpuKernels& k, const float* Ub, const float* Wb) const {
    std::lock_guard<std::mutex> g(m_);
    if (!bf16_) {
      auto p = std::make_unique<CpuPacked>();
      p->backend = backend;
      p->cfg = cfg;
      p->cfg.precision = Precision::BF16;
      p->has_kernel = has_kernel && Wb;
      p->pack(k, Ub, kPackForward, kPackBackward);
      if (p->has_kernel) p->pack(k, Wb, kPackInput, kPackInputFused + 1);
      bf16_ = std::move(p);
    }
    return *bf16_;
  }
  size_t nbytes() const override {
    size_t n = 0;
    const CpuPacked* b;
    {
      std::lock_guard<std::mutex> g(m_);
      for (int64_t f : floats_) n += (size_t)f * sizeof(float);
      b = bf16_.get();
    }
    return b ? n + b->nbytes() : n;  // (its own lock)
  }

 private:
  struct Free {
    void operator()(float* p) const { std::free(p); }
  };
  std::unique_ptr<float, Free> part_[kNumPackParts];
  int64_t floats_[kNumPackParts] = {};
  mutable std::mutex m_;
  mutable bool backward_packed_ = false;
  mutable std::unique_ptr<CpuPacked> bf16_;
};

// precision bf16: W and U rounded to bfloat16 (once a call, into recycled
// buffers), which the kernels then read as the weights (rnnkern/reference.py's
// docstring states the mode).
struct RoundedWeights {
  PooledBuffer W, U;
  void make(const RnnConfig& cfg, const float* w, const float* u) {
    const int64_t GH = (int64_t)num_gates(cfg.cell) * cfg.H;
    W = PooledBuffer((size_t)(cfg.C * GH));
    U = PooledBuffer((size_t)(cfg.H * GH));
    round_bf16(w, W.get(), cfg.C * GH);
    round_bf16(u, U.get(), cfg.H * GH);
  }
};

// What a CPU training forward keeps: the activations its BPTT reads (written
// completely by the forward, masked steps included, so not zero-filled: that
// memset cost ~10% of a training step at S2) and the caller's arrays it reads again.
struct CpuWorkspace final : Workspace {
  LayerArgs in;  // x, W, U, mask, dropout masks: the caller's (kept alive by it)
  PooledBuffer hprev, slots;
  RoundedWeights rounded;  // precision bf16: W, U as the forward and backward read them
  CpuWorkspace(size_t nh, size_t ns) : hprev(nh), slots(ns) {}
  size_t nbytes() const override { return (hprev.size() + slots.size()) * sizeof(float); }
};

std::unique_ptr<Workspace> cpu_forward(const Backend& self, const RnnConfig& cfg,
                                       const LayerArgs& in, const Packed* packed) {
  if (in.on_device) throw std::invalid_argument("rnnkern: the CPU backends take host arrays");
  const auto* pw = static_cast<const CpuPacked*>(packed);
  RnnConfig c = cfg;
  c.threads = cpu_threads(cfg.threads);
  std::unique_ptr<CpuWorkspace> ws;
  if (cfg.training) {
    const size_t nh = (size_t)cfg.N * cfg.T * cfg.H;
    ws = std::make_unique<CpuWorkspace>(nh, nh * num_slots(cfg.cell, cfg.reset_after));
    ws->cfg = cfg;
    ws->in = in;
    ws->in.y = ws->in.hT = ws->in.cT = nullptr;
  }
  ForwardArgs a;
  static_cast<LayerArgs&>(a) = in;   // the layer's arrays, as the caller gave them
  if (ws) {
    a.hprev = ws->hprev.get();
    a.slots = ws->slots.get();
  }
  RoundedWeights local;  // bf16 inference: the rounded weights of this call
  if (cfg.precision == Precision::BF16) {
    RoundedWeights& r = ws ? ws->rounded : local;
    r.make(cfg, in.W, in.U);
    a.W = r.W.get();
    a.U = r.U.get();
    if (pw) pw = &pw->bf16(*self.cpu, a.U, pw->has_kernel ? a.W : nullptr);
  }
  if (pw) {
    a.packed = pw->get(kPackForward);
    a.packed2 = pw->get(kPackForward2);
    if (pw->has_kernel) {
      a.packed_w = pw->get(kPackInput);
      a.packed_wf = pw->get(kPackInputFused);
    }
    // bf16 with recurrent dropout: its gate-blocked operands take fp32 products
    // of the rounded values, so the step packs its panels per call, not as pairs
    if (cfg.precision == Precision::BF16 && in.recurrent_masks)
      a.packed = a.packed2 = a.packed_wf = nullptr;
  }
  self.cpu->forward(c, a);
  return ws;
}

void cpu_backward(const Backend& self, const Workspace& base, int threads, const GradArgs& g,
                  const Packed* packed) {
  if (g.on_device) throw std::invalid_argument("rnnkern: the CPU backends take host arrays");
  const auto& ws = static_cast<const CpuWorkspace&>(base);
  RnnConfig cfg = ws.cfg;
  cfg.threads = cpu_threads(threads);
  BackwardArgs a;
  static_cast<GradArgs&>(a) = g;     // the gradients, as the caller gave them
  a.x = ws.in.x;
  const bool bf16 = cfg.precision == Precision::BF16;
  a.W = bf16 ? ws.rounded.W.get() : ws.in.W;
  a.U = bf16 ? ws.rounded.U.get() : ws.in.U;
  a.mask = ws.in.mask;
  a.input_masks = ws.in.input_masks;
  a.recurrent_masks = ws.in.recurrent_masks;
  a.hprev = ws.hprev.get();
  a.slots = ws.slots.get();
  if (const auto* pw = static_cast<const CpuPacked*>(packed)) {
    if (bf16) pw = &pw->bf16(*self.cpu, a.U, nullptr);  // made by the forward
    pw->ensure_backward(*self.cpu, a.U);
    // bf16 with recurrent dropout: fp32 panels of the rounded U, packed per call
    if (!(bf16 && ws.in.recurrent_masks)) {
      a.packed = pw->get(kPackBackward);
      a.packed2 = pw->get(kPackBackward2);
    }
  }
  self.cpu->backward(cfg, a);
}

std::unique_ptr<Packed> cpu_pack(const Backend& self, const RnnConfig& cfg, const float* U,
                                 const float* W) {
  auto pw = std::make_unique<CpuPacked>();
  pw->backend = self.name;
  pw->cfg = cfg;
  pw->has_kernel = W != nullptr;
  pw->pack(*self.cpu, U, kPackForward, kPackBackward);
  if (W) pw->pack(*self.cpu, W, kPackInput, kPackInputFused + 1);
  return pw;
}

}  // namespace

size_t cpu_pool_release() { return BlockPool::get().release(); }

const Backend* find_cpu_backend(const std::string& isa) {
  // Built once from the ISA table, never resized: the rows' addresses stay valid.
  static const std::vector<Backend> rows = [] {
    std::vector<Backend> r;
    for (const CpuKernels* k : cpu_isa_kernels())
      r.push_back({k->isa, false, cpu_forward, cpu_backward, cpu_pack, k});
    return r;
  }();
  for (const Backend& b : rows)
    if (isa == b.name) return &b;
  return nullptr;
}

}  // namespace rnnkern
