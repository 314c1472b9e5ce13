// rnnkern._core.testing — entries for the tests and the benchmark, not for the
// layers: one CPU ISA's raw kernels (gemm, activate, peak_gflops) and one step of
// cells.h's float instantiation (cell_step_float, tests/test_cells_float.py).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <string>
#include <vector>

#include "rnnkern/cells.h"
#include "rnnkern/dispatch.h"
#include "../cpu/kernels.h"
#include "bindings.h"
#include "checks.h"
#include "../../cuda/emu_runtime.h"

namespace rnnkern {
namespace gpu_emu {
size_t live_allocations();  // cuda/backend_emu.cc
}  // namespace gpu_emu
}  // namespace rnnkern

namespace py = pybind11;

namespace rnnkern {
namespace bindings {
namespace {

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

// One step's inputs, elementwise over n units (null where the cell or the
// direction does not read them).
struct StepIn {
  py::ssize_t n = 0;
  Act a = Act::Tanh, ra = Act::Sigmoid;
  const float* pre = nullptr;     // [G,n]
  const float* h_prev = nullptr;  // [n]
  const float* c_prev = nullptr;  // [n] lstm
  const float* rec = nullptr;     // [3,n] gru reset_after
  const float* rhu = nullptr;     // [n] gru reset_before
  const float* dh = nullptr;      // [n] backward
  const float* dc = nullptr;      // [n] lstm backward
  const float* drh = nullptr;     // [n] gru reset_before backward
  const uint8_t* mask = nullptr;  // [n] or null: all true
  const uint8_t* seen = nullptr;  // [n] or null: all true
};

// The step's outputs of kind K, by name, in the order of the returned dict.
template <class K>
std::vector<const char*> step_names(bool bwd) {
  std::vector<const char*> names;
  if constexpr (K::cell == Cell::SimpleRNN) {
    names = {"h_new"};
  } else if constexpr (K::cell == Cell::LSTM) {
    names = {"i", "f", "g", "o", "c_new", "ac", "h_new", "c"};
  } else {
    names = {"z", "r", "hh", "h_new"};
    if constexpr (K::gru_reset_before) names.push_back("rh");
  }
  names.push_back("h");
  names.push_back("y");
  if (bwd) {
    names.push_back("dh_direct");
    if constexpr (K::cell == Cell::LSTM) names.push_back("dc_prev");
  }
  return names;
}

// The step of kind K over every unit; out(name): that output's [n] buffer (null
// when the dict has none), dp / dr: dpre / dpre_rec [G,n] (backward).
template <class K, class Out>
void step_elementwise(const StepIn& in, const Out& out, float* dp, float* dr) {
  const py::ssize_t n = in.n;
  const bool bwd = in.dh != nullptr;
  const Act a = in.a, ra = in.ra;
  float* o_h = out("h");
  float* o_y = out("y");
  float* o_hn = out("h_new");
  float* o_dd = out("dh_direct");
  float *o_i = out("i"), *o_f = out("f"), *o_g = out("g"), *o_o = out("o");
  float *o_cn = out("c_new"), *o_ac = out("ac"), *o_c = out("c"), *o_dcp = out("dc_prev");
  float *o_z = out("z"), *o_r = out("r"), *o_hh = out("hh"), *o_rh = out("rh");
  for (py::ssize_t k = 0; k < n; ++k) {
    const bool m = !in.mask || in.mask[k], seen = !in.seen || in.seen[k];
    const float h0 = in.h_prev[k], g = bwd ? in.dh[k] : 0.0f;
    auto P = [&](int q) { return in.pre[q * n + k]; };
    float hn;
    if constexpr (K::cell == Cell::SimpleRNN) {
      hn = simple_forward(a, P(0));
      if (bwd) {
        dp[k] = dr[k] = simple_backward(a, g, hn);
        o_dd[k] = 0.0f;
      }
    } else if constexpr (K::cell == Cell::LSTM) {
      const float c0 = in.c_prev[k];
      const LstmAct<float> s = lstm_forward(a, ra, P(0), P(1), P(2), P(3), c0);
      hn = s.h;
      o_i[k] = s.i;
      o_f[k] = s.f;
      o_g[k] = s.g;
      o_o[k] = s.o;
      o_cn[k] = s.c;
      o_ac[k] = s.ac;
      o_c[k] = mask_carry(m, s.c, c0);
      if (bwd) {
        const LstmGrad<float> d = lstm_backward(a, ra, g, in.dc[k], s.i, s.f, s.g, s.o, c0, s.ac);
        const float ds[] = {d.di, d.df, d.dg, d.do_};
        for (int q = 0; q < 4; ++q) dp[q * n + k] = dr[q * n + k] = ds[q];
        o_dcp[k] = d.dc_prev;
        o_dd[k] = 0.0f;
      }
    } else {
      float z, r, hh;
      if constexpr (K::gru_reset_after) {
        const float* i3 = in.rec;
        const GruAct<float> s =
            gru_forward_reset_after(a, ra, P(0), P(1), P(2), i3[k], i3[n + k], i3[2 * n + k]);
        z = s.z, r = s.r, hh = s.hh;
      } else {
        const GruGates<float> s = gru_gates_reset_before(ra, P(0), P(1));
        z = s.z, r = s.r;
        o_rh[k] = gru_reset_state(r, h0);
        hh = gru_candidate_reset_before(a, P(2), in.rhu[k]);
      }
      hn = gru_blend(z, h0, hh);
      o_z[k] = z;
      o_r[k] = r;
      o_hh[k] = hh;
      if (bwd) {
        if constexpr (K::gru_reset_after) {
          const GruGrad<float> d =
              gru_backward_reset_after(a, ra, g, z, r, hh, in.rec[2 * n + k], h0);
          dp[k] = dr[k] = d.dz;
          dp[n + k] = dr[n + k] = d.dr;
          dp[2 * n + k] = d.dhh;
          dr[2 * n + k] = gru_inner_grad(d.dhh, r);
          o_dd[k] = d.dh_direct;
        } else {
          const GruGrad<float> d = gru_backward_reset_before(a, ra, g, z, hh, h0);
          const GruResetGrad<float> e = gru_backward_reset_gate(ra, in.drh[k], r, h0);
          dp[k] = dr[k] = d.dz;
          dp[n + k] = dr[n + k] = e.dr;
          dp[2 * n + k] = dr[2 * n + k] = d.dhh;
          o_dd[k] = d.dh_direct + e.dh_rh;
        }
      }
    }
    o_hn[k] = hn;
    o_h[k] = mask_carry(m, hn, h0);
    o_y[k] = mask_output(seen, o_h[k]);
  }
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
// The cell switch is dispatch.h's with_cell, as in the kernels.
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
  auto data = [](const FArr& v) { return v ? v.data() : nullptr; };
  StepIn in;
  in.n = n;
  in.a = a;
  in.ra = ra;
  in.pre = pre.data();
  in.h_prev = h_prev.data();
  in.c_prev = data(cp);
  in.rec = data(rc);
  in.rhu = data(rh);
  in.dh = bwd ? dh.data() : nullptr;
  in.dc = data(dc);
  in.drh = data(drh);
  in.mask = mko.is_none() ? nullptr : py::reinterpret_borrow<MArr>(mko).data();
  in.seen = sno.is_none() ? nullptr : py::reinterpret_borrow<MArr>(sno).data();

  py::dict res;
  FArr dpre({G, n}), dpre_rec({G, n});
  with_cell(cell, reset_after, [&](auto kind) {
    using K = decltype(kind);
    const std::vector<const char*> names = step_names<K>(bwd);
    std::vector<FArr> outs;
    for (const char* nm : names) {
      outs.emplace_back(std::vector<py::ssize_t>{n});
      res[nm] = outs.back();
    }
    auto out = [&](const char* nm) {
      for (size_t q = 0; q < names.size(); ++q)
        if (std::string(names[q]) == nm) return outs[q].mutable_data();
      return static_cast<float*>(nullptr);
    };
    step_elementwise<K>(in, out, dpre.mutable_data(), dpre_rec.mutable_data());
  });
  if (bwd) {
    res["dpre"] = dpre;
    res["dpre_rec"] = dpre_rec;
  }
  return res;
}

}  // namespace

void init_testing(py::module_& m) {
  m.doc() = "Entries for the tests and the benchmark: one CPU ISA's raw kernels and the\n"
            "float cell step (not part of the layers' API).";
  m.def("emu_fail_launch_after", &emu::fail_launch_after, py::arg("n"),
        "cuda-emu: the n-th kernel launch from now throws (n >= 1), as a failed CUDA launch "
        "does; 0 turns it off.");
  m.def("emu_live_allocations", &gpu_emu::live_allocations,
        "cuda-emu: how many device allocations are live (cached pool blocks included).");
  m.def("gemm", &gemm, py::arg("isa"), py::arg("a"), py::arg("b"), py::arg("trans_a") = false,
        py::arg("trans_b") = false, py::arg("threads") = 1,
        "C = op(a) op(b) with the ISA's packed SGEMM (for tests and benchmarks).");
  m.def("cell_step_float", &cell_step_float, py::arg("cell"), py::arg("activation"),
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
}

}  // namespace bindings
}  // namespace rnnkern
