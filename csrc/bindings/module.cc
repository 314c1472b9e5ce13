// rnnkern._core — thin bindings. Python (rnnkern.layers) validates user input
// and allocates nothing here but outputs; this file checks cheap invariants
// (shapes, dtypes), fills the parameter structs, releases the GIL and runs.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <utility>
#include <string>
#include <vector>

#include "rnnkern/cells.h"
#include "../cpu/kernels.h"
#include "checks.h"
#include "../../cuda/cuda_info.h"

namespace py = pybind11;
using namespace rnnkern;
using namespace rnnkern::bindings;

namespace {

int effective_threads(int threads) { return in_forked_child() ? 1 : std::max(1, threads); }

const char* cell_name(Cell c) {
  return c == Cell::SimpleRNN ? "simple_rnn" : (c == Cell::LSTM ? "lstm" : "gru");
}

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
struct PooledBuffer {
  float* ptr = nullptr;
  size_t cap = 0;
  PooledBuffer() = default;
  explicit PooledBuffer(size_t n) { ptr = BlockPool::get().take(n, &cap); }
  PooledBuffer(const PooledBuffer&) = delete;
  PooledBuffer& operator=(const PooledBuffer&) = delete;
  ~PooledBuffer() { BlockPool::get().give(ptr, cap); }
  float* get() const { return ptr; }
};

// A layer's kernels packed once for one ISA (recurrent_kernel, and kernel when
// given), reused by every call while the weights are unchanged (the layers
// drop it when a weight is assigned; their weight arrays are read-only). The
// forward parts are packed when it is made, the backward parts on the first
// backward that needs them (under `m`, which also guards `floats`).
struct PackedWeights {
  struct Free {
    void operator()(float* p) const { std::free(p); }
  };
  std::string isa;
  RnnConfig cfg;  // cell, reset_after, H (and C when W is packed)
  FArr U;         // the arrays packed: kept alive, so their buffers are not reused
  py::object W;   // FArr, or None when only U is packed
  std::unique_ptr<float, Free> part[kNumPackParts];
  int64_t floats[kNumPackParts] = {};
  mutable std::mutex m;
  bool backward_packed = false;

  const float* get(int p) const { return floats[p] ? part[p].get() : nullptr; }
  // Packs parts [p0, p1) of `weights` (GIL released by the caller).
  void pack(const CpuKernels& k, const float* weights, int p0, int p1) {
    for (int p = p0; p < p1; ++p) {
      floats[p] = k.packed_floats(cfg, p);
      if (!floats[p]) continue;
      const size_t bytes = ((size_t)floats[p] * sizeof(float) + 63) / 64 * 64;
      part[p].reset(static_cast<float*>(std::aligned_alloc(64, bytes)));
      if (!part[p]) throw std::bad_alloc();
      k.pack(cfg, weights, p, part[p].get());
    }
  }
  void ensure_backward(const CpuKernels& k) {
    std::lock_guard<std::mutex> g(m);
    if (backward_packed) return;
    pack(k, U.data(), kPackBackward, kPackBackward2 + 1);
    backward_packed = true;
  }
  size_t nbytes() const {
    std::lock_guard<std::mutex> g(m);
    size_t n = 0;
    for (int64_t f : floats) n += (size_t)f * sizeof(float);
    return n;
  }
};

py::object make_packed(const std::string& isa, const std::string& cell, bool reset_after,
                       FArr U, py::object W) {
  const CpuKernels& k = cpu_kernels(isa);
  std::unique_ptr<PackedWeights> pw(new PackedWeights());
  pw->isa = isa;
  pw->cfg.cell = parse_cell(cell);
  pw->cfg.reset_after = reset_after;
  if (U.ndim() != 2 || U.shape(1) != num_gates(pw->cfg.cell) * U.shape(0))
    throw py::value_error("recurrent_kernel must have shape (units, " +
                          std::to_string(num_gates(pw->cfg.cell)) + " * units), got " +
                          shape_str(std::vector<py::ssize_t>(U.shape(), U.shape() + U.ndim())));
  pw->cfg.H = U.shape(0);
  pw->U = U;
  pw->W = py::none();
  FArr warr;
  const bool with_w = !W.is_none();
  if (with_w) {
    warr = FArr::ensure(W);
    if (!warr) throw py::type_error("kernel must be a float array");
    const int64_t GH = num_gates(pw->cfg.cell) * pw->cfg.H;
    if (warr.ndim() != 2 || warr.shape(1) != GH)
      throw py::value_error("kernel must have shape (input_dim, " + std::to_string(GH) +
                            "), got " + shape_str(std::vector<py::ssize_t>(
                                            warr.shape(), warr.shape() + warr.ndim())));
    pw->cfg.C = warr.shape(0);
    pw->W = warr;
  }
  {
    py::gil_scoped_release nogil;
    pw->pack(k, U.data(), kPackForward, kPackBackward);
    if (with_w) pw->pack(k, warr.data(), kPackInput, kPackInputFused + 1);
  }
  return py::cast(pw.release(), py::return_value_policy::take_ownership);
}

// The packed weights given to a call, checked against that call.
PackedWeights* check_packed(const py::object& packed, const std::string& isa,
                            const RnnConfig& cfg, const FArr& U) {
  if (packed.is_none()) return nullptr;
  PackedWeights* pw;
  try {
    pw = packed.cast<PackedWeights*>();
  } catch (const py::cast_error&) {
    throw py::type_error("packed must be a PackedWeights from rnnkern._core.pack, or None");
  }
  if (pw->isa != isa || pw->cfg.cell != cfg.cell || pw->cfg.H != cfg.H ||
      (cfg.cell == Cell::GRU && pw->cfg.reset_after != cfg.reset_after))
    throw py::value_error("packed was made for another isa, cell, reset_after or units");
  if (pw->U.data() != U.data())
    throw py::value_error("packed was made from another recurrent_kernel array");
  return pw;
}

// Whether `packed` holds W (checked to be this W's buffer).
bool has_kernel(const PackedWeights* pw, const FArr& W) {
  if (!pw || pw->W.is_none()) return false;
  const FArr pwW = py::reinterpret_borrow<FArr>(pw->W);
  if (pwW.data() != W.data())
    throw py::value_error("packed was made from another kernel array");
  return true;
}

// What a training forward keeps for its backward.
struct Workspace {
  RnnConfig cfg;
  std::string isa;
  FArr x, W, U;
  py::object mask;  // MArr or None
  py::object input_masks, recurrent_masks;  // FArr [G,N,C] / [G,N,H] or None
  py::object packed;  // PackedWeights or None
  std::vector<py::ssize_t> bias_shape;  // empty: no bias
  // Written completely by the forward (masked steps included), so not
  // zero-filled here: that memset cost ~10% of a training step at S2.
  std::unique_ptr<PooledBuffer> hprev, slots;
  size_t hprev_n = 0, slots_n = 0;
  bool used = false;
};

py::tuple forward(const std::string& isa, const std::string& cell, const std::string& act,
                  const std::string& ract, bool reset_after, bool go_backwards,
                  bool return_sequences, bool training, FArr x, FArr W, FArr U,
                  py::object b, FArr h0, py::object c0, py::object mask, int threads,
                  py::object packed, py::object input_masks, py::object recurrent_masks) {
  const CpuKernels& k = cpu_kernels(isa);
  CheckedForward in = check_forward(cell, act, ract, reset_after, go_backwards, return_sequences,
                                    training, x, W, U, b, h0, c0, mask, input_masks,
                                    recurrent_masks);
  RnnConfig& cfg = in.cfg;
  cfg.threads = effective_threads(threads);
  const std::vector<py::ssize_t>& bshape = in.bshape;
  FArr &barr = in.barr, &carr = in.carr;
  MArr& marr = in.marr;
  const py::object &im = in.im, &rm = in.rm;

  PackedWeights* pw = check_packed(packed, isa, cfg, U);

  const py::ssize_t N = cfg.N, T = cfg.T, H = cfg.H;
  FArr y = return_sequences ? FArr({N, T, H}) : FArr({N, H});
  FArr hT({N, H});
  FArr cT = cfg.cell == Cell::LSTM ? FArr({N, H}) : FArr(std::vector<py::ssize_t>{0});
  std::unique_ptr<Workspace> ws;
  if (training) {
    ws.reset(new Workspace());
    ws->hprev_n = (size_t)N * T * H;
    ws->slots_n = ws->hprev_n * num_slots(cfg.cell, reset_after);
    ws->hprev.reset(new PooledBuffer(ws->hprev_n));
    ws->slots.reset(new PooledBuffer(ws->slots_n));
  }
  ForwardArgs a;
  a.x = x.data();
  a.W = W.data();
  a.U = U.data();
  a.b = bshape.empty() ? nullptr : barr.data();
  a.h0 = h0.data();
  a.c0 = cfg.cell == Cell::LSTM ? carr.data() : nullptr;
  a.mask = mask.is_none() ? nullptr : marr.data();
  a.y = y.mutable_data();
  a.hT = hT.mutable_data();
  a.cT = cfg.cell == Cell::LSTM ? cT.mutable_data() : nullptr;
  a.input_masks = mask_ptr(im);
  a.recurrent_masks = mask_ptr(rm);
  if (ws) {
    a.hprev = ws->hprev->get();
    a.slots = ws->slots->get();
  }
  if (pw) {
    a.packed = pw->get(kPackForward);
    a.packed2 = pw->get(kPackForward2);
    if (has_kernel(pw, W)) {
      a.packed_w = pw->get(kPackInput);
      a.packed_wf = pw->get(kPackInputFused);
    }
  }
  {
    py::gil_scoped_release nogil;
    k.forward(cfg, a);
  }
  py::object wso = py::none();
  if (ws) {
    ws->cfg = cfg;
    ws->isa = isa;
    ws->x = x;
    ws->W = W;
    ws->U = U;
    ws->mask = mask.is_none() ? py::object(py::none()) : py::object(marr);
    ws->input_masks = im;
    ws->recurrent_masks = rm;
    ws->packed = packed;
    ws->bias_shape = bshape;
    wso = py::cast(ws.release(), py::return_value_policy::take_ownership);
  }
  py::object co = cfg.cell == Cell::LSTM ? py::object(cT) : py::object(py::none());
  return py::make_tuple(y, hT, co, wso);
}

py::tuple backward(Workspace& ws, FArr dy, FArr dhT, py::object dcT, int threads) {
  const RnnConfig& c0 = ws.cfg;
  RnnConfig cfg = c0;
  cfg.threads = effective_threads(threads);
  const py::ssize_t N = cfg.N, T = cfg.T, C = cfg.C, H = cfg.H;
  const py::ssize_t GH = num_gates(cfg.cell) * H;
  FArr dcarr = check_backward(cfg, dy, dhT, dcT);
  const CpuKernels& k = cpu_kernels(ws.isa);
  FArr dx({N, T, C}), dW({C, GH}), dU({H, GH}), dh0({N, H});
  FArr dc0 = cfg.cell == Cell::LSTM ? FArr({N, H}) : FArr(std::vector<py::ssize_t>{0});
  FArr db = ws.bias_shape.empty() ? FArr(std::vector<py::ssize_t>{0}) : FArr(ws.bias_shape);
  BackwardArgs a;
  a.x = ws.x.data();
  a.W = ws.W.data();
  a.U = ws.U.data();
  a.mask = ws.mask.is_none() ? nullptr : ws.mask.cast<MArr>().data();
  a.input_masks = mask_ptr(ws.input_masks);
  a.recurrent_masks = mask_ptr(ws.recurrent_masks);
  a.hprev = ws.hprev->get();
  a.slots = ws.slots->get();
  a.dy = dy.data();
  a.dhT = dhT.data();
  a.dcT = cfg.cell == Cell::LSTM ? dcarr.data() : nullptr;
  a.dx = dx.mutable_data();
  a.dW = dW.mutable_data();
  a.dU = dU.mutable_data();
  a.db = ws.bias_shape.empty() ? nullptr : db.mutable_data();
  a.dh0 = dh0.mutable_data();
  a.dc0 = cfg.cell == Cell::LSTM ? dc0.mutable_data() : nullptr;
  PackedWeights* pw = ws.packed.is_none() ? nullptr : ws.packed.cast<PackedWeights*>();
  {
    py::gil_scoped_release nogil;
    if (pw) {
      pw->ensure_backward(k);
      a.packed = pw->get(kPackBackward);
      a.packed2 = pw->get(kPackBackward2);
    }
    k.backward(cfg, a);
  }
  py::object dbo = ws.bias_shape.empty() ? py::object(py::none()) : py::object(db);
  py::object dco = cfg.cell == Cell::LSTM ? py::object(dc0) : py::object(py::none());
  return py::make_tuple(dx, dW, dU, dbo, dh0, dco);
}

FArr gemm(const std::string& isa, FArr a, FArr b, bool trans_a, bool trans_b, int threads) {
  if (a.ndim() != 2 || b.ndim() != 2) throw py::value_error("gemm: a and b must be 2-D");
  const int64_t M = trans_a ? a.shape(1) : a.shape(0), K = trans_a ? a.shape(0) : a.shape(1);
  const int64_t Kb = trans_b ? b.shape(1) : b.shape(0), N = trans_b ? b.shape(0) : b.shape(1);
  if (K != Kb) throw py::value_error("gemm: inner dimensions of a and b differ");
  const CpuKernels& k = cpu_kernels(isa);
  FArr c({(py::ssize_t)M, (py::ssize_t)N});
  const int64_t lda = a.shape(1), ldb = b.shape(1);
  const float* pa = a.data();
  const float* pb = b.data();
  float* pc = c.mutable_data();
  {
    py::gil_scoped_release nogil;
    k.gemm(M, N, K, pa, trans_a ? 1 : lda, trans_a ? lda : 1, pb, trans_b ? 1 : ldb,
           trans_b ? ldb : 1, pc, N, false, effective_threads(threads));
  }
  return c;
}

// One forward step and one backward step of a cell, elementwise over n units,
// with the cell math of cells.h instantiated for plain float (the value type of
// the CUDA thread bodies): tests/test_cells_float.py checks it against the
// NumPy reference. pre (G, n): the pre-activations as the kernels split them
// (simple_rnn, lstm: the whole pre-activation of each gate; gru reset_after:
// x W + b_in, with rec (3, n) = h_prev U + b_rec; gru reset_before: z and r
// whole, h as x W_h + b_h, with rhu (n,) = (r h_prev) U_h). mask / seen (n,):
// the masked-step carry (default all true). Backward when dh is given (dc:
// lstm; drh = d(r h_prev) = dhh U_h^T: gru reset_before).
py::dict cell_step_float(const std::string& cell_s, const std::string& act_s,
                         const std::string& ract_s, bool reset_after, FArr pre, FArr h_prev,
                         py::object c_prev, py::object rec, py::object rhu, py::object dh_o,
                         py::object dc_o, py::object drh_o, py::object mask_o,
                         py::object seen_o) {
  const Cell cell = parse_cell(cell_s);
  const Act a = parse_act(act_s, "activation"), ra = parse_act(ract_s, "recurrent_activation");
  const bool gru_ra = cell == Cell::GRU && reset_after, gru_rb = cell == Cell::GRU && !reset_after;
  if (h_prev.ndim() != 1) throw py::value_error("h_prev must be 1-D (n,)");
  const py::ssize_t n = h_prev.shape(0), G = num_gates(cell);
  expect_shape(pre, {G, n}, "pre");
  auto arg = [&](const py::object& o, const char* name, bool needed, py::ssize_t rows) {
    if (o.is_none()) {
      if (needed) throw py::value_error(std::string(name) + " is required here");
      return FArr();
    }
    FArr v = FArr::ensure(o);
    if (!v) throw py::type_error(std::string(name) + " must be a float array");
    expect_shape(v, rows ? std::vector<py::ssize_t>{rows, n} : std::vector<py::ssize_t>{n}, name);
    return v;
  };
  auto flags = [&](const py::object& o, const char* name) {
    if (o.is_none()) return py::object(py::none());
    MArr v = MArr::ensure(o);
    if (!v) throw py::type_error(std::string(name) + " must be a boolean array");
    expect_shape(v, {n}, name);
    return py::object(v);
  };
  const bool bwd = !dh_o.is_none();
  const FArr cp = arg(c_prev, "c_prev", cell == Cell::LSTM, 0);
  const FArr rc = arg(rec, "rec", gru_ra, 3);
  const FArr rh = arg(rhu, "rhu", gru_rb, 0);
  const FArr dh = arg(dh_o, "dh", false, 0);
  const FArr dc = arg(dc_o, "dc", bwd && cell == Cell::LSTM, 0);
  const FArr drh = arg(drh_o, "drh", bwd && gru_rb, 0);
  const py::object mko = flags(mask_o, "mask"), sno = flags(seen_o, "seen");
  const uint8_t* mk = mko.is_none() ? nullptr : py::reinterpret_borrow<MArr>(mko).data();
  const uint8_t* sn = sno.is_none() ? nullptr : py::reinterpret_borrow<MArr>(sno).data();

  std::vector<const char*> names;
  switch (cell) {
    case Cell::SimpleRNN: names = {"h_new"}; break;
    case Cell::LSTM: names = {"i", "f", "g", "o", "c_new", "ac", "h_new", "c"}; break;
    default: names = {"z", "r", "hh", "h_new"}; if (gru_rb) names.push_back("rh");
  }
  names.push_back("h");
  names.push_back("y");
  if (bwd) {
    names.push_back("dh_direct");
    if (cell == Cell::LSTM) names.push_back("dc_prev");
  }
  std::vector<FArr> outs;
  py::dict res;
  for (const char* nm : names) {
    outs.emplace_back(std::vector<py::ssize_t>{n});
    res[nm] = outs.back();
  }
  FArr dpre({G, n}), dpre_rec({G, n});
  auto out = [&](const char* nm) {
    for (size_t q = 0; q < names.size(); ++q)
      if (std::string(names[q]) == nm) return outs[q].mutable_data();
    return static_cast<float*>(nullptr);
  };
  const float* p = pre.data();
  const float* hp = h_prev.data();
  float* o_h = out("h");
  float* o_y = out("y");
  float* o_hn = out("h_new");
  float* o_dd = out("dh_direct");
  float* dp = dpre.mutable_data();
  float* dr = dpre_rec.mutable_data();
  for (py::ssize_t k = 0; k < n; ++k) {
    const bool m = !mk || mk[k], seen = !sn || sn[k];
    const float h0 = hp[k], g = bwd ? dh.data()[k] : 0.0f;
    auto P = [&](int q) { return p[q * n + k]; };
    float hn;
    if (cell == Cell::SimpleRNN) {
      hn = simple_forward(a, P(0));
      if (bwd) {
        dp[k] = dr[k] = simple_backward(a, g, hn);
        o_dd[k] = 0.0f;
      }
    } else if (cell == Cell::LSTM) {
      const float c0 = cp.data()[k];
      const LstmAct<float> s = lstm_forward(a, ra, P(0), P(1), P(2), P(3), c0);
      hn = s.h;
      const float vals[] = {s.i, s.f, s.g, s.o, s.c, s.ac};
      const char* nm[] = {"i", "f", "g", "o", "c_new", "ac"};
      for (int q = 0; q < 6; ++q) out(nm[q])[k] = vals[q];
      out("c")[k] = mask_carry(m, s.c, c0);
      if (bwd) {
        const LstmGrad<float> d =
            lstm_backward(a, ra, g, dc.data()[k], s.i, s.f, s.g, s.o, c0, s.ac);
        const float ds[] = {d.di, d.df, d.dg, d.do_};
        for (int q = 0; q < 4; ++q) dp[q * n + k] = dr[q * n + k] = ds[q];
        out("dc_prev")[k] = d.dc_prev;
        o_dd[k] = 0.0f;
      }
    } else {
      float z, r, hh;
      if (gru_ra) {
        const float* i3 = rc.data();
        const GruAct<float> s =
            gru_forward_reset_after(a, ra, P(0), P(1), P(2), i3[k], i3[n + k], i3[2 * n + k]);
        z = s.z, r = s.r, hh = s.hh;
      } else {
        const GruGates<float> s = gru_gates_reset_before(ra, P(0), P(1));
        z = s.z, r = s.r;
        out("rh")[k] = gru_reset_state(r, h0);
        hh = gru_candidate_reset_before(a, P(2), rh.data()[k]);
      }
      hn = gru_blend(z, h0, hh);
      out("z")[k] = z;
      out("r")[k] = r;
      out("hh")[k] = hh;
      if (bwd && gru_ra) {
        const GruGrad<float> d =
            gru_backward_reset_after(a, ra, g, z, r, hh, rc.data()[2 * n + k], h0);
        dp[k] = dr[k] = d.dz;
        dp[n + k] = dr[n + k] = d.dr;
        dp[2 * n + k] = d.dhh;
        dr[2 * n + k] = gru_inner_grad(d.dhh, r);
        o_dd[k] = d.dh_direct;
      } else if (bwd) {
        const GruGrad<float> d = gru_backward_reset_before(a, ra, g, z, hh, h0);
        const GruResetGrad<float> e = gru_backward_reset_gate(ra, drh.data()[k], r, h0);
        dp[k] = dr[k] = d.dz;
        dp[n + k] = dr[n + k] = e.dr;
        dp[2 * n + k] = dr[2 * n + k] = d.dhh;
        o_dd[k] = d.dh_direct + e.dh_rh;
      }
    }
    o_hn[k] = hn;
    o_h[k] = mask_carry(m, hn, h0);
    o_y[k] = mask_output(seen, o_h[k]);
  }
  if (bwd) {
    res["dpre"] = dpre;
    res["dpre_rec"] = dpre_rec;
  }
  return res;
}

// The gradient of an embedding lookup: g[ids[i], :] += dy[i, :] over i in order
// (the sum of each row in a fixed order: deterministic), ids checked against vocab.
py::array_t<float> embedding_grad(py::array_t<int64_t, py::array::c_style | py::array::forcecast> ids,
                                  FArr dy, int64_t vocab) {
  if (dy.ndim() != 2 || dy.shape(0) != ids.size())
    throw py::value_error("embedding_grad: dy must be [ids.size, dim], got " +
                          std::to_string(dy.ndim()) + "-d");
  const int64_t m = ids.size(), d = dy.shape(1);
  py::array_t<float> g({vocab, d});
  float* out = g.mutable_data();
  const int64_t* id = ids.data();
  const float* src = dy.data();
  int64_t bad = -1;
  {
    py::gil_scoped_release nogil;
    std::fill(out, out + vocab * d, 0.0f);
    for (int64_t i = 0; i < m; ++i) {
      const int64_t v = id[i];
      if (v < 0 || v >= vocab) {
        bad = i;
        break;
      }
      float* row = out + v * d;
      const float* s = src + i * d;
      for (int64_t j = 0; j < d; ++j) row[j] += s[j];
    }
  }
  if (bad >= 0)
    throw py::value_error("embedding_grad: id " + std::to_string(id[bad]) +
                          " outside [0, " + std::to_string(vocab) + ")");
  return g;
}

}  // namespace

void register_gpu(py::module_& m);  // gpu_bindings.cc

PYBIND11_MODULE(_core, m) {
  m.doc() = "rnnkern compiled kernels (see rnnkern.ops for the contract)";
  py::class_<Workspace>(m, "Workspace", "What a training forward keeps for BPTT (opaque).")
      .def_property_readonly("batch", [](const Workspace& w) { return w.cfg.N; })
      .def_property_readonly("timesteps", [](const Workspace& w) { return w.cfg.T; })
      .def_property_readonly("input_size", [](const Workspace& w) { return w.cfg.C; })
      .def_property_readonly("units", [](const Workspace& w) { return w.cfg.H; })
      .def_property_readonly("cell", [](const Workspace& w) { return cell_name(w.cfg.cell); })
      .def_property_readonly("isa", [](const Workspace& w) { return w.isa; })
      .def_property_readonly("nbytes", [](const Workspace& w) {
        return (w.hprev_n + w.slots_n) * sizeof(float);
      });
  m.def("embedding_grad", &embedding_grad, py::arg("ids"), py::arg("dy"), py::arg("vocab"),
        "dE[vocab, dim]: the rows of dy summed by id (float32, ids in range).");
  m.def("same_bytes", [](py::buffer a, py::buffer b) {
    // Whether two C-contiguous buffers hold the same bytes: a memcmp, without the
    // GIL (rnnkern.torch's check that cached weights are still current).
    py::buffer_info x = a.request(), y = b.request();
    const auto contiguous = [](const py::buffer_info& i) {
      py::ssize_t step = i.itemsize;
      for (py::ssize_t d = i.ndim - 1; d >= 0; --d) {
        if (i.shape[d] != 1 && i.strides[d] != step) return false;
        step *= i.shape[d];
      }
      return true;
    };
    if (!contiguous(x) || !contiguous(y))
      throw py::value_error("same_bytes: a and b must be C-contiguous buffers");
    const size_t n = (size_t)(x.size * x.itemsize);
    if (n != (size_t)(y.size * y.itemsize)) return false;
    py::gil_scoped_release nogil;
    return n == 0 || std::memcmp(x.ptr, y.ptr, n) == 0;
  }, py::arg("a"), py::arg("b"), "Whether two C-contiguous buffers hold the same bytes.");
  m.def("cpu_isas", &cpu_isas, "CPU ISAs compiled in and supported here, widest first.");
  m.def("forward", &forward, py::arg("isa"), py::arg("cell"), py::arg("activation"),
        py::arg("recurrent_activation"), py::arg("reset_after"), py::arg("go_backwards"),
        py::arg("return_sequences"), py::arg("training"), py::arg("x"), py::arg("kernel"),
        py::arg("recurrent_kernel"), py::arg("bias"), py::arg("h0"), py::arg("c0"),
        py::arg("mask"), py::arg("threads"), py::arg("packed") = py::none(),
        py::arg("input_masks") = py::none(), py::arg("recurrent_masks") = py::none(),
        "One layer's forward (see rnnkern.ops.rnn_forward). input_masks (G, N, C) and\n"
        "recurrent_masks (G, N, H): optional per-gate dropout masks, float arrays.");
  py::class_<PackedWeights>(m, "PackedWeights",
                            "A layer's kernels packed for one ISA (see rnnkern._core.pack).")
      .def_property_readonly("isa", [](const PackedWeights& p) { return p.isa; })
      .def_property_readonly("cell", [](const PackedWeights& p) { return cell_name(p.cfg.cell); })
      .def_property_readonly("units", [](const PackedWeights& p) { return p.cfg.H; })
      .def_property_readonly("nbytes", &PackedWeights::nbytes);
  m.def("pack", &make_packed, py::arg("isa"), py::arg("cell"), py::arg("reset_after"),
        py::arg("recurrent_kernel"), py::arg("kernel") = py::none(),
        "Pack recurrent_kernel (and kernel, when given) once for the ISA's kernels;\n"
        "pass the result as `packed` to forward() while the arrays are unchanged\n"
        "(they are kept alive).");
  m.def("backward", &backward, py::arg("workspace"), py::arg("dy"), py::arg("dh_T"),
        py::arg("dc_T"), py::arg("threads"));
  m.def("gemm", &gemm, py::arg("isa"), py::arg("a"), py::arg("b"), py::arg("trans_a") = false,
        py::arg("trans_b") = false, py::arg("threads") = 1,
        "C = op(a) op(b) with the ISA's packed SGEMM (for tests and benchmarks).");
  m.def("_cell_step_float", &cell_step_float, py::arg("cell"), py::arg("activation"),
        py::arg("recurrent_activation"), py::arg("reset_after"), py::arg("pre"),
        py::arg("h_prev"), py::arg("c_prev") = py::none(), py::arg("rec") = py::none(),
        py::arg("rhu") = py::none(), py::arg("dh") = py::none(), py::arg("dc") = py::none(),
        py::arg("drh") = py::none(), py::arg("mask") = py::none(),
        py::arg("seen") = py::none(),
        "Tests only: one step of cells.h's float instantiation, elementwise (see\n"
        "tests/test_cells_float.py): a dict of the step's activations, h, y and,\n"
        "with dh, dpre / dpre_rec (G, n) and dh_direct.");
  m.def("activate", [](const std::string& isa, const std::string& name, FArr x) {
        const CpuKernels& k = cpu_kernels(isa);
        const Act act = parse_act(name, "activation");
        FArr y(std::vector<py::ssize_t>(x.shape(), x.shape() + x.ndim()));
        const float* px = x.data();
        float* py_ = y.mutable_data();
        const int64_t n = x.size();
        {
          py::gil_scoped_release nogil;
          k.activate(act, px, py_, n);
        }
        return y;
      }, py::arg("isa"), py::arg("activation"), py::arg("x"),
      "y = activation(x) with the ISA's vectorised nonlinearity (for accuracy tests).");
  m.def("peak_gflops", [](const std::string& isa, double seconds) {
        const CpuKernels& k = cpu_kernels(isa);
        py::gil_scoped_release nogil;
        return k.peak_gflops(seconds);
      }, py::arg("isa"), py::arg("seconds") = 0.3,
      "fp32 FMA throughput of one ISA on one thread (GFLOP/s), measured for ~seconds.");
  m.def("last_call_scratch_bytes", &scratch_last_call_bytes,
        "Temporary memory (bytes) the calling thread's last forward or backward used\n"
        "beyond its inputs, outputs and workspace.");
  register_gpu(m);
  m.def("cuda_status", []() {
        CudaStatus s = cuda_query();
        return py::make_tuple(s.built, s.available, s.reason);
      },
        "(built, available, reason): whether the CUDA backend was compiled and a device is usable.");
}
