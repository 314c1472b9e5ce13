// rnnkern._core — thin bindings. Python (rnnkern.layers) validates user input
// and allocates nothing here but outputs; this file checks cheap invariants
// (shapes, dtypes), fills the kernel table's argument structs, releases the GIL
// and runs the named backend's entry (rnnkern/backend.h), for every backend.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <utility>
#include <string>
#include <vector>

#include "rnnkern/backend.h"
#include "rnnkern/cells.h"
#include "../cpu/kernels.h"
#include "checks.h"
#include "../../cuda/cuda_info.h"

namespace py = pybind11;
using namespace rnnkern;
using namespace rnnkern::bindings;

namespace {

const char* cell_name(Cell c) {
  return c == Cell::SimpleRNN ? "simple_rnn" : (c == Cell::LSTM ? "lstm" : "gru");
}

// A backend looked up by name (a ValueError naming the usable ones otherwise).
const Backend& backend_named(const std::string& name) {
  try {
    return find_backend(name);
  } catch (const std::invalid_argument&) {
    std::string names;
    for (const std::string& isa : cpu_isas()) names += isa + ", ";
    throw py::value_error("backend '" + name + "' is not available here (compiled: " + names +
                          "cuda-emu, cuda)");
  }
}

// A CPU ISA's raw kernels (the test and benchmark entries gemm, activate, peak_gflops).
const CpuKernels& raw_kernels(const std::string& isa) {
  const Backend& b = backend_named(isa);
  if (!b.cpu) throw py::value_error("'" + isa + "' is not a CPU ISA");
  return *b.cpu;
}

// Weights packed by a backend (rnnkern._core.pack), with the arrays packed: kept
// alive, so that their buffers are not reused, and checked against each call's.
struct PyPacked {
  std::unique_ptr<Packed> packed;
  FArr U;
  py::object W;  // FArr, or None when only U is packed
};

py::object make_packed(const std::string& name, const std::string& cell, bool reset_after,
                       FArr U, py::object W) {
  const Backend& be = backend_named(name);
  RnnConfig cfg;
  cfg.cell = parse_cell(cell);
  cfg.reset_after = reset_after;
  if (U.ndim() != 2 || U.shape(1) != num_gates(cfg.cell) * U.shape(0))
    throw py::value_error("recurrent_kernel must have shape (units, " +
                          std::to_string(num_gates(cfg.cell)) + " * units), got " +
                          shape_str(std::vector<py::ssize_t>(U.shape(), U.shape() + U.ndim())));
  cfg.H = U.shape(0);
  FArr warr;
  if (!W.is_none()) {
    warr = FArr::ensure(W);
    if (!warr) throw py::type_error("kernel must be a float array");
    const int64_t GH = num_gates(cfg.cell) * cfg.H;
    if (warr.ndim() != 2 || warr.shape(1) != GH)
      throw py::value_error("kernel must have shape (input_dim, " + std::to_string(GH) +
                            "), got " + shape_str(std::vector<py::ssize_t>(
                                            warr.shape(), warr.shape() + warr.ndim())));
    cfg.C = warr.shape(0);
  }
  if (!be.pack) return py::none();  // this backend reads the weights as they are
  auto pp = std::make_unique<PyPacked>();
  pp->U = U;
  pp->W = W.is_none() ? py::object(py::none()) : py::object(warr);
  {
    py::gil_scoped_release nogil;
    pp->packed = be.pack(be, cfg, U.data(), W.is_none() ? nullptr : warr.data());
  }
  return py::cast(pp.release(), py::return_value_policy::take_ownership);
}

// The packed weights given to a call, checked against that call.
const Packed* check_packed(const py::object& packed, const Backend& be, const RnnConfig& cfg,
                           const FArr& U, const FArr& W) {
  if (packed.is_none()) return nullptr;
  PyPacked* pp;
  try {
    pp = packed.cast<PyPacked*>();
  } catch (const py::cast_error&) {
    throw py::type_error("packed must be a PackedWeights from rnnkern._core.pack, or None");
  }
  const Packed& p = *pp->packed;
  if (p.backend != be.name || p.cfg.cell != cfg.cell || p.cfg.H != cfg.H ||
      (cfg.cell == Cell::GRU && p.cfg.reset_after != cfg.reset_after))
    throw py::value_error("packed was made for another isa, cell, reset_after or units");
  if (pp->U.data() != U.data())
    throw py::value_error("packed was made from another recurrent_kernel array");
  if (p.has_kernel && py::reinterpret_borrow<FArr>(pp->W).data() != W.data())
    throw py::value_error("packed was made from another kernel array");
  return &p;
}

// A training forward's workspace as Python holds it: the backend's, the arrays
// it reads again (kept alive and unchanged while it exists), the packed weights.
struct PyWorkspace {
  const Backend* backend = nullptr;
  std::unique_ptr<Workspace> ws;
  std::vector<py::ssize_t> bias_shape;  // empty: no bias
  py::object keep;    // the forward's arrays
  py::object packed;  // PyPacked or None
  const Packed* packed_ptr() const {
    return packed.is_none() ? nullptr : packed.cast<PyPacked*>()->packed.get();
  }
};

py::object wrap_workspace(const Backend& be, std::unique_ptr<Workspace> ws,
                          std::vector<py::ssize_t> bias_shape, py::object keep,
                          py::object packed) {
  auto w = std::make_unique<PyWorkspace>();
  w->backend = &be;
  w->ws = std::move(ws);
  w->bias_shape = std::move(bias_shape);
  w->keep = std::move(keep);
  w->packed = std::move(packed);
  return py::cast(w.release(), py::return_value_policy::take_ownership);
}

// One layer's forward on any backend, host arrays (NumPy) in and out.
py::tuple forward(const std::string& name, const std::string& cell, const std::string& act,
                  const std::string& ract, bool reset_after, bool go_backwards,
                  bool return_sequences, bool training, FArr x, FArr W, FArr U,
                  py::object b, FArr h0, py::object c0, py::object mask, int threads,
                  py::object packed, py::object input_masks, py::object recurrent_masks) {
  const Backend& be = backend_named(name);
  CheckedForward in = check_forward(cell, act, ract, reset_after, go_backwards, return_sequences,
                                    training, x, W, U, b, h0, c0, mask, input_masks,
                                    recurrent_masks);
  RnnConfig& cfg = in.cfg;
  cfg.threads = threads;
  const Packed* pw = check_packed(packed, be, cfg, U, W);
  const bool lstm = cfg.cell == Cell::LSTM;
  const py::ssize_t N = cfg.N, T = cfg.T, H = cfg.H;
  FArr y = return_sequences ? FArr({N, T, H}) : FArr({N, H});
  FArr hT({N, H});
  FArr cT = lstm ? FArr({N, H}) : FArr(std::vector<py::ssize_t>{0});
  LayerArgs a;
  a.x = x.data();
  a.W = W.data();
  a.U = U.data();
  a.b = in.bshape.empty() ? nullptr : in.barr.data();
  a.h0 = h0.data();
  a.c0 = lstm ? in.carr.data() : nullptr;
  a.mask = mask.is_none() ? nullptr : in.marr.data();
  a.input_masks = mask_ptr(in.im);
  a.recurrent_masks = mask_ptr(in.rm);
  a.y = y.mutable_data();
  a.hT = hT.mutable_data();
  a.cT = lstm ? cT.mutable_data() : nullptr;
  std::unique_ptr<Workspace> ws;
  {
    py::gil_scoped_release nogil;
    ws = be.forward(be, cfg, a, pw);
  }
  py::object wso = py::none();
  if (training) {
    py::object m = mask.is_none() ? py::object(py::none()) : py::object(in.marr);
    wso = wrap_workspace(be, std::move(ws), in.bshape, py::make_tuple(x, W, U, m, in.im, in.rm),
                         packed);
  }
  return py::make_tuple(y, hT, lstm ? py::object(cT) : py::object(py::none()), wso);
}

// The BPTT of a host forward: host arrays in and out.
py::tuple backward(PyWorkspace& w, FArr dy, FArr dhT, py::object dcT, int threads) {
  const RnnConfig& cfg = w.ws->cfg;
  const py::ssize_t N = cfg.N, T = cfg.T, C = cfg.C, H = cfg.H;
  const py::ssize_t GH = num_gates(cfg.cell) * H;
  const bool lstm = cfg.cell == Cell::LSTM;
  FArr dcarr = check_backward(cfg, dy, dhT, dcT);
  FArr dx({N, T, C}), dW({C, GH}), dU({H, GH}), dh0({N, H});
  FArr dc0 = lstm ? FArr({N, H}) : FArr(std::vector<py::ssize_t>{0});
  FArr db = w.bias_shape.empty() ? FArr(std::vector<py::ssize_t>{0}) : FArr(w.bias_shape);
  GradArgs g;
  g.dy = dy.data();
  g.dhT = dhT.data();
  g.dcT = lstm ? dcarr.data() : nullptr;
  g.dx = dx.mutable_data();
  g.dW = dW.mutable_data();
  g.dU = dU.mutable_data();
  g.db = w.bias_shape.empty() ? nullptr : db.mutable_data();
  g.dh0 = dh0.mutable_data();
  g.dc0 = lstm ? dc0.mutable_data() : nullptr;
  const Packed* pw = w.packed_ptr();
  {
    py::gil_scoped_release nogil;
    w.backend->backward(*w.backend, *w.ws, threads, g, pw);
  }
  py::object dbo = w.bias_shape.empty() ? py::object(py::none()) : py::object(db);
  py::object dco = lstm ? py::object(dc0) : py::object(py::none());
  return py::make_tuple(dx, dW, dU, dbo, dh0, dco);
}

template <class T>
T* ptr_of(uintptr_t p) {
  return reinterpret_cast<T*>(p);
}

// Forward on arrays already on a GPU backend's device, by address (0: absent),
// checked by rnnkern/_device.py (shapes, dtypes, contiguity, whose memory).
// Returns the workspace (training) or None.
py::object forward_device(const std::string& name, const std::string& cell,
                          const std::string& act, const std::string& ract, bool reset_after,
                          bool go_backwards, bool return_sequences, bool training, int64_t T,
                          int64_t N, int64_t C, int64_t H, uintptr_t x, uintptr_t W,
                          uintptr_t U, uintptr_t b, uintptr_t h0, uintptr_t c0, uintptr_t mask,
                          uintptr_t input_masks, uintptr_t recurrent_masks, uintptr_t y,
                          uintptr_t hT, uintptr_t cT) {
  const Backend& be = backend_named(name);
  if (!be.device) throw py::value_error("backend '" + name + "' takes host arrays only");
  RnnConfig cfg =
      parse_config(cell, act, ract, reset_after, go_backwards, return_sequences, training);
  if (T < 1 || N < 0 || C < 0 || H < 0) throw py::value_error("bad dimensions");
  cfg.T = T;
  cfg.N = N;
  cfg.C = C;
  cfg.H = H;
  LayerArgs a;
  a.on_device = true;
  a.x = ptr_of<const float>(x);
  a.W = ptr_of<const float>(W);
  a.U = ptr_of<const float>(U);
  a.b = ptr_of<const float>(b);
  a.h0 = ptr_of<const float>(h0);
  a.c0 = ptr_of<const float>(c0);
  a.mask = ptr_of<const uint8_t>(mask);
  a.input_masks = ptr_of<const float>(input_masks);
  a.recurrent_masks = ptr_of<const float>(recurrent_masks);
  a.y = ptr_of<float>(y);
  a.hT = ptr_of<float>(hT);
  a.cT = ptr_of<float>(cT);
  if (cfg.cell == Cell::LSTM && (!a.c0 || !a.cT)) throw py::value_error("c0 is required for lstm");
  std::unique_ptr<Workspace> ws;
  {
    py::gil_scoped_release nogil;
    ws = be.forward(be, cfg, a, nullptr);
  }
  if (!training) return py::none();
  std::vector<py::ssize_t> bshape;
  if (b) {
    const int64_t GH = num_gates(cfg.cell) * H;
    bshape = cfg.cell == Cell::GRU && reset_after ? std::vector<py::ssize_t>{2, GH}
                                                  : std::vector<py::ssize_t>{GH};
  }
  // the GPU workspace holds device copies of what its backward reads
  return wrap_workspace(be, std::move(ws), bshape, py::none(), py::none());
}

// BPTT on device arrays, by address (db 0 without bias).
void backward_device(PyWorkspace& w, uintptr_t dy, uintptr_t dhT, uintptr_t dcT, uintptr_t dx,
                     uintptr_t dW, uintptr_t dU, uintptr_t db, uintptr_t dh0, uintptr_t dc0) {
  if (!w.backend->device) throw py::value_error("a host backend's workspace takes host arrays");
  GradArgs g;
  g.on_device = true;
  g.dy = ptr_of<const float>(dy);
  g.dhT = ptr_of<const float>(dhT);
  g.dcT = ptr_of<const float>(dcT);
  g.dx = ptr_of<float>(dx);
  g.dW = ptr_of<float>(dW);
  g.dU = ptr_of<float>(dU);
  g.db = ptr_of<float>(db);
  g.dh0 = ptr_of<float>(dh0);
  g.dc0 = ptr_of<float>(dc0);
  if (w.ws->cfg.cell == Cell::LSTM && (!g.dcT || !g.dc0))
    throw py::value_error("dc_T is required for lstm");
  py::gil_scoped_release nogil;
  w.backend->backward(*w.backend, *w.ws, 1, g, nullptr);
}

FArr gemm(const std::string& isa, FArr a, FArr b, bool trans_a, bool trans_b, int threads) {
  if (a.ndim() != 2 || b.ndim() != 2) throw py::value_error("gemm: a and b must be 2-D");
  const int64_t M = trans_a ? a.shape(1) : a.shape(0), K = trans_a ? a.shape(0) : a.shape(1);
  const int64_t Kb = trans_b ? b.shape(1) : b.shape(0), N = trans_b ? b.shape(0) : b.shape(1);
  if (K != Kb) throw py::value_error("gemm: inner dimensions of a and b differ");
  const CpuKernels& k = raw_kernels(isa);
  FArr c({(py::ssize_t)M, (py::ssize_t)N});
  const int64_t lda = a.shape(1), ldb = b.shape(1);
  const float* pa = a.data();
  const float* pb = b.data();
  float* pc = c.mutable_data();
  {
    py::gil_scoped_release nogil;
    k.gemm(M, N, K, pa, trans_a ? 1 : lda, trans_a ? lda : 1, pb, trans_b ? 1 : ldb,
           trans_b ? ldb : 1, pc, N, false, cpu_threads(threads));
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
  py::class_<PyWorkspace>(m, "Workspace",
                          "What a training forward keeps for BPTT (opaque).")
      .def_property_readonly("batch", [](const PyWorkspace& w) { return w.ws->cfg.N; })
      .def_property_readonly("timesteps", [](const PyWorkspace& w) { return w.ws->cfg.T; })
      .def_property_readonly("input_size", [](const PyWorkspace& w) { return w.ws->cfg.C; })
      .def_property_readonly("units", [](const PyWorkspace& w) { return w.ws->cfg.H; })
      .def_property_readonly("cell",
                             [](const PyWorkspace& w) { return cell_name(w.ws->cfg.cell); })
      .def_property_readonly("backend", [](const PyWorkspace& w) { return w.backend->name; })
      .def_property_readonly("isa", [](const PyWorkspace& w) { return w.backend->name; })
      .def_property_readonly("nbytes", [](const PyWorkspace& w) { return w.ws->nbytes(); });
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
  m.def("forward", &forward, py::arg("backend"), py::arg("cell"), py::arg("activation"),
        py::arg("recurrent_activation"), py::arg("reset_after"), py::arg("go_backwards"),
        py::arg("return_sequences"), py::arg("training"), py::arg("x"), py::arg("kernel"),
        py::arg("recurrent_kernel"), py::arg("bias"), py::arg("h0"), py::arg("c0"),
        py::arg("mask"), py::arg("threads"), py::arg("packed") = py::none(),
        py::arg("input_masks") = py::none(), py::arg("recurrent_masks") = py::none(),
        "One layer's forward on a backend of the kernel table (a CPU ISA, cuda-emu, cuda;\n"
        "see rnnkern.ops.rnn_forward): (y, h_T, c_T or None, workspace or None).\n"
        "input_masks (G, N, C) and recurrent_masks (G, N, H): optional per-gate dropout\n"
        "masks, float arrays. threads: the CPU ISAs'.");
  m.def("forward_device", &forward_device, py::arg("backend"), py::arg("cell"),
        py::arg("activation"), py::arg("recurrent_activation"), py::arg("reset_after"),
        py::arg("go_backwards"), py::arg("return_sequences"), py::arg("training"),
        py::arg("T"), py::arg("N"), py::arg("C"), py::arg("H"), py::arg("x"),
        py::arg("kernel"), py::arg("recurrent_kernel"), py::arg("bias"), py::arg("h0"),
        py::arg("c0"), py::arg("mask"), py::arg("input_masks"), py::arg("recurrent_masks"),
        py::arg("y"), py::arg("h_T"), py::arg("c_T"),
        "Forward on a GPU backend's device arrays given by address (checked by\n"
        "rnnkern._device; 0: absent): the workspace (training) or None.");
  m.def("backward_device", &backward_device, py::arg("workspace"), py::arg("dy"),
        py::arg("dh_T"), py::arg("dc_T"), py::arg("dx"), py::arg("dW"), py::arg("dU"),
        py::arg("db"), py::arg("dh0"), py::arg("dc0"),
        "BPTT on a GPU backend's device arrays given by address (0: absent).");
  py::class_<PyPacked>(m, "PackedWeights",
                       "A layer's kernels packed for one backend (see rnnkern._core.pack).")
      .def_property_readonly("isa", [](const PyPacked& p) { return p.packed->backend; })
      .def_property_readonly("cell",
                             [](const PyPacked& p) { return cell_name(p.packed->cfg.cell); })
      .def_property_readonly("units", [](const PyPacked& p) { return p.packed->cfg.H; })
      .def_property_readonly("nbytes", [](const PyPacked& p) { return p.packed->nbytes(); });
  m.def("pack", &make_packed, py::arg("backend"), py::arg("cell"), py::arg("reset_after"),
        py::arg("recurrent_kernel"), py::arg("kernel") = py::none(),
        "Pack recurrent_kernel (and kernel, when given) once for the backend's kernels\n"
        "(None where it packs nothing); pass the result as `packed` to forward() while\n"
        "the arrays are unchanged (they are kept alive).");
  m.def("backward", &backward, py::arg("workspace"), py::arg("dy"), py::arg("dh_T"),
        py::arg("dc_T"), py::arg("threads") = 1,
        "BPTT of a forward's workspace: (dx, dW, dU, db or None, dh0, dc0 or None).");
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
        const CpuKernels& k = raw_kernels(isa);
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
        const CpuKernels& k = raw_kernels(isa);
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
