// rnnkern._core — the argument checks every backend's bindings share: names,
// shapes and dtypes, each failure a Python exception naming the argument.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <sys/resource.h>
#include <unistd.h>

#include <cstdio>

#include <cstdint>
#include <string>
#include <vector>

#include "rnnkern/backend.h"
#include "rnnkern/shapes.h"

namespace rnnkern {
namespace bindings {

namespace py = pybind11;

// Internal linkage: pybind11's types are hidden, so the structs holding them are too.
namespace {

using FArr = py::array_t<float, py::array::c_style | py::array::forcecast>;
using MArr = py::array_t<uint8_t, py::array::c_style | py::array::forcecast>;

inline Cell parse_cell(const std::string& s) {
  if (s == "simple_rnn") return Cell::SimpleRNN;
  if (s == "lstm") return Cell::LSTM;
  if (s == "gru") return Cell::GRU;
  throw py::value_error("cell must be 'simple_rnn', 'lstm' or 'gru', got '" + s + "'");
}

inline Act parse_act(const std::string& s, const char* what) {
  if (s == "tanh") return Act::Tanh;
  if (s == "relu") return Act::Relu;
  if (s == "sigmoid") return Act::Sigmoid;
  if (s == "hard_sigmoid") return Act::HardSigmoid;
  if (s == "linear") return Act::Linear;
  throw py::value_error(std::string(what) +
                        " must be one of tanh, relu, sigmoid, hard_sigmoid, linear; got '" + s +
                        "'");
}

inline std::string shape_str(const std::vector<py::ssize_t>& s) {
  std::string r = "(";
  for (size_t i = 0; i < s.size(); ++i) r += (i ? ", " : "") + std::to_string(s[i]);
  return r + (s.size() == 1 ? ",)" : ")");
}

inline void expect_shape(const py::array& a, std::vector<py::ssize_t> want, const char* name) {
  std::vector<py::ssize_t> got(a.shape(), a.shape() + a.ndim());
  if (got != want)
    throw py::value_error(std::string(name) + " must have shape " + shape_str(want) + ", got " +
                          shape_str(got));
}

inline Precision parse_precision(const std::string& s) {
  if (s == "fp32") return Precision::FP32;
  if (s == "tf32") return Precision::TF32;
  if (s == "bf16") return Precision::BF16;
  throw py::value_error("precision must be 'fp32', 'tf32' or 'bf16', got '" + s + "'");
}

// A layer's options as the kernels take them, parsed once (rnnkern.options.RnnOptions
// builds one _core.Options per distinct value); the dimensions are filled per call.
inline RnnConfig parse_config(const std::string& cell, const std::string& act,
                              const std::string& ract, bool reset_after, bool go_backwards,
                              bool return_sequences, bool training,
                              const std::string& precision) {
  RnnConfig cfg;
  cfg.cell = parse_cell(cell);
  cfg.act = parse_act(act, "activation");
  cfg.ract = parse_act(ract, "recurrent_activation");
  cfg.reset_after = reset_after;
  cfg.go_backwards = go_backwards;
  cfg.return_sequences = return_sequences;
  cfg.training = training;
  cfg.precision = parse_precision(precision);
  return cfg;
}

// One array argument as the checker and the kernel's arguments see it, host or
// device alike: absent, or its shape and its memory (C-contiguous, in the
// dtype the kernels read: float32, the mask uint8).
struct Dims {
  bool present = false;
  std::vector<py::ssize_t> shape;
  const void* data = nullptr;
};

inline Dims dims_of(const py::array& a) {
  return Dims{true, std::vector<py::ssize_t>(a.shape(), a.shape() + a.ndim()), a.data()};
}

// A forward's array arguments (rnnkern.ops.rnn_forward's order).
struct ForwardDims {
  Dims x, W, U, b, h0, c0, mask, im, rm;
  // PyTorch's layout (LayerArgs::torch_layout): W weight_ih, U weight_hh, b bias_ih
  // and bhh bias_hh
  Dims bhh;
  bool torch_layout = false;
};

// The kernels' input arguments of checked ForwardDims (outputs not set).
inline LayerArgs layer_inputs(const ForwardDims& d, bool on_device) {
  LayerArgs a;
  a.on_device = on_device;
  a.x = static_cast<const float*>(d.x.data);
  a.W = static_cast<const float*>(d.W.data);
  a.U = static_cast<const float*>(d.U.data);
  a.b = static_cast<const float*>(d.b.data);
  a.h0 = static_cast<const float*>(d.h0.data);
  a.c0 = static_cast<const float*>(d.c0.data);
  a.mask = static_cast<const uint8_t*>(d.mask.data);
  a.input_masks = static_cast<const float*>(d.im.data);
  a.recurrent_masks = static_cast<const float*>(d.rm.data);
  a.torch_layout = d.torch_layout;
  a.b_hh = static_cast<const float*>(d.bhh.data);
  return a;
}

inline void expect_dims(const Dims& d, std::vector<py::ssize_t> want, const char* name,
                        const char* legend) {
  if (d.shape != want)
    throw py::value_error(std::string(name) + " must have shape " + legend + shape_str(want) +
                          ", got " + shape_str(d.shape));
}

// THE forward check, for host and device arrays alike: cfg's dimensions from x and
// the recurrent kernel, every other argument's shape against them. Returns the
// bias' shape (empty: no bias). Each failure a ValueError naming the argument and
// the shape it must have (shapes.h's legend).
inline std::vector<py::ssize_t> check_dims(RnnConfig& cfg, const ForwardDims& d) {
  if (d.x.shape.size() != 3)
    throw py::value_error("x must be 3-D (batch, timesteps, features), got ndim " +
                          std::to_string(d.x.shape.size()));
  const py::ssize_t N = d.x.shape[0], T = d.x.shape[1], C = d.x.shape[2];
  if (T < 1) throw py::value_error("x must have at least one timestep");
  const bool tl = d.torch_layout;
  if (d.U.shape.size() != 2)
    throw py::value_error(std::string(tl ? "weight_hh must be 2-D (gates*units, units)"
                                         : "recurrent_kernel must be 2-D (units, gates*units)") +
                          ", got ndim " + std::to_string(d.U.shape.size()));
  const py::ssize_t H = d.U.shape[tl ? 1 : 0], G = num_gates(cfg.cell), GH = G * H;
  cfg.N = N;
  cfg.T = T;
  cfg.C = C;
  cfg.H = H;
  std::vector<py::ssize_t> bshape;
  if (tl) {
    if (cfg.cell == Cell::GRU && !cfg.reset_after)
      throw py::value_error("PyTorch's GRU weights are the reset_after=True form");
    expect_dims(d.W, {GH, C}, "weight_ih", "(G*H, C) = ");
    expect_dims(d.U, {GH, H}, "weight_hh", "(G*H, H) = ");
    if (d.b.present != d.bhh.present)
      throw py::value_error("bias_ih and bias_hh: pass both or neither");
    if (d.b.present) {
      expect_dims(d.b, {GH}, "bias_ih", "(G*H,) = ");
      expect_dims(d.bhh, {GH}, "bias_hh", "(G*H,) = ");
      bshape = {GH};
    }
  } else {
    expect_dims(d.W, {C, GH}, "kernel", "(C, G*H) = ");
    expect_dims(d.U, {H, GH}, "recurrent_kernel", "(H, G*H) = ");
  }
  expect_dims(d.h0, {N, H}, "h0", "(N, H) = ");
  if (d.b.present && !tl) {
    const bool two = cfg.cell == Cell::GRU && cfg.reset_after;
    bshape = two ? std::vector<py::ssize_t>{2, GH} : std::vector<py::ssize_t>{GH};
    expect_dims(d.b, bshape, "bias", two ? "(2, G*H) = " : "(G*H,) = ");
  }
  if (cfg.cell == Cell::LSTM) {
    if (!d.c0.present) throw py::value_error("c0 is required for lstm");
    expect_dims(d.c0, {N, H}, "c0", "(N, H) = ");
  }
  if (d.mask.present) expect_dims(d.mask, {N, T}, "mask", "(N, T) = ");
  if (d.im.present) expect_dims(d.im, {G, N, C}, "input_masks", "(G, N, C) = ");
  if (d.rm.present) expect_dims(d.rm, {G, N, H}, "recurrent_masks", "(G, N, H) = ");
  return bshape;
}

// A backward's output gradients by shape against the forward's config (host and
// device alike); dc_T is required for LSTM.
inline void check_grad_dims(const RnnConfig& cfg, const Dims& dy, const Dims& dhT,
                            const Dims& dcT) {
  const py::ssize_t N = cfg.N, T = cfg.T, H = cfg.H;
  if (cfg.return_sequences)
    expect_dims(dy, {N, T, H}, "dy", "");
  else
    expect_dims(dy, {N, H}, "dy", "");
  expect_dims(dhT, {N, H}, "dh_T", "");
  if (cfg.cell == Cell::LSTM) {
    if (!dcT.present) throw py::value_error("dc_T is required for lstm");
    expect_dims(dcT, {N, H}, "dc_T", "");
  }
}

// A host forward's arguments, checked: the config with its dimensions (threads
// not set) and the arrays converted to C-contiguous float32 / uint8 (empty where
// absent).
struct CheckedForward {
  RnnConfig cfg;
  ForwardDims args;                 // every input, converted
  std::vector<py::ssize_t> bshape;  // empty: no bias
  FArr barr, carr;
  MArr marr;
  py::object im, rm;                // FArr or None
};

// An optional per-gate dropout mask: None, or a real floating array (converted
// to C-contiguous float32). Anything else is a TypeError naming the shape it
// must have (shape: its dimensions, checked already).
inline py::object gate_masks(const py::object& m, const std::vector<py::ssize_t>& shape,
                             const char* name, const char* dname) {
  if (m.is_none()) return py::none();
  const std::string want = std::string(" of shape (G, N, ") + dname + ") = " + shape_str(shape);
  const bool arr = py::isinstance<py::array>(m);
  if (!arr || py::cast<py::array>(m).dtype().kind() != 'f')
    throw py::type_error(std::string(name) + " must be a float array" + want + ", got " +
                         std::string(py::str(py::type::of(m).attr("__name__"))) +
                         (arr ? std::string(" of dtype ") +
                                    std::string(py::str(py::cast<py::array>(m).dtype()))
                              : std::string()));
  FArr a = FArr::ensure(m);
  if (!a) throw py::type_error(std::string(name) + " must be a float array" + want);
  return a;
}

inline CheckedForward check_forward(const RnnConfig& options, const FArr& x, const FArr& W,
                                    const FArr& U, const py::object& b, const FArr& h0,
                                    const py::object& c0, const py::object& mask,
                                    const py::object& input_masks,
                                    const py::object& recurrent_masks) {
  CheckedForward r;
  r.cfg = options;
  ForwardDims& d = r.args;
  d.x = dims_of(x);
  d.W = dims_of(W);
  d.U = dims_of(U);
  d.h0 = dims_of(h0);
  if (!b.is_none()) {
    r.barr = FArr::ensure(b);
    if (!r.barr) throw py::type_error("bias must be a float array");
    d.b = dims_of(r.barr);
  }
  if (options.cell == Cell::LSTM && !c0.is_none()) {
    r.carr = FArr::ensure(c0);
    if (!r.carr) throw py::type_error("c0 must be a float array");
    d.c0 = dims_of(r.carr);
  }
  if (!mask.is_none()) {
    r.marr = MArr::ensure(mask);
    if (!r.marr) throw py::type_error("mask must be a boolean array");
    d.mask = dims_of(r.marr);
  }
  // the dropout masks' dtypes are checked after their shapes (the message names it)
  if (py::isinstance<py::array>(input_masks)) d.im = dims_of(py::cast<py::array>(input_masks));
  if (py::isinstance<py::array>(recurrent_masks))
    d.rm = dims_of(py::cast<py::array>(recurrent_masks));
  r.bshape = check_dims(r.cfg, d);
  const py::ssize_t G = num_gates(r.cfg.cell), N = r.cfg.N;
  r.im = gate_masks(input_masks, {G, N, (py::ssize_t)r.cfg.C}, "input_masks", "C");
  r.rm = gate_masks(recurrent_masks, {G, N, (py::ssize_t)r.cfg.H}, "recurrent_masks", "H");
  if (d.im.present) d.im = dims_of(py::reinterpret_borrow<py::array>(r.im));  // converted
  if (d.rm.present) d.rm = dims_of(py::reinterpret_borrow<py::array>(r.rm));
  return r;
}

// What this process may allocate at most, read once: the machine's memory, the
// address-space limit (ulimit -v) and a cgroup v2 memory.max (containers),
// whichever is least.
inline int64_t host_memory_limit() {
  static const int64_t limit = [] {
    const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGE_SIZE);
    int64_t v = pages > 0 && page > 0 ? int64_t(pages) * int64_t(page) : INT64_MAX;
    struct rlimit rl;
    if (getrlimit(RLIMIT_AS, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
        rl.rlim_cur < uint64_t(INT64_MAX) && int64_t(rl.rlim_cur) < v)
      v = int64_t(rl.rlim_cur);
    if (FILE* f = std::fopen("/sys/fs/cgroup/memory.max", "r")) {
      long long m = 0;
      if (std::fscanf(f, "%lld", &m) == 1 && m > 0 && m < v) v = m;  // "max": no number
      std::fclose(f);
    }
    return v;
  }();
  return limit;
}

// The host memory a call's outputs and (training) workspace take, from its
// dimensions, every product overflow-checked: more than this machine has (or a
// size that does not fit in 64 bits) is a MemoryError naming the sizes, raised
// before anything is allocated. The workspace estimate: the saved activations
// (num_slots per step), the states before each step and the gradients' scratch
// of the same order, (slots + 2) [T, N, H] floats.
inline void check_host_memory(const RnnConfig& cfg) {
  auto mul = [&](int64_t a, int64_t b, bool& bad) {
    int64_t r;
    if (__builtin_mul_overflow(a, b, &r)) bad = true;
    return r;
  };
  bool bad = false;
  const int64_t tnh = mul(mul(cfg.T, cfg.N, bad), cfg.H, bad);
  const int64_t y = cfg.return_sequences ? tnh : mul(cfg.N, cfg.H, bad);
  int64_t floats = y;
  if (cfg.training) {
    const int64_t ws = mul(num_slots(cfg.cell, cfg.reset_after) + 2, tnh, bad);
    if (__builtin_add_overflow(floats, ws, &floats)) bad = true;
  }
  const int64_t bytes = mul(floats, 4, bad);
  const int64_t have = host_memory_limit();
  if (bad || bytes > have) {
    const std::string dims = "(T, N, H) = (" + std::to_string(cfg.T) + ", " +
                             std::to_string(cfg.N) + ", " + std::to_string(cfg.H) + ")";
    const std::string need =
        bad ? "more than 2^63 bytes" : std::to_string(bytes >> 20) + " MiB";
    PyErr_SetString(PyExc_MemoryError,
                    ("rnnkern: a " + std::string(cfg.training ? "training " : "") +
                     "forward at " + dims + " needs " + need + " for its outputs" +
                     (cfg.training ? " and workspace" : "") + "; this machine has " +
                     std::to_string(have >> 20) + " MiB to give (memory, ulimit -v, cgroup)")
                        .c_str());
    throw py::error_already_set();
  }
}

// A host backward's output gradients checked against the forward's config;
// returns dc_T as float32 (empty unless LSTM).
inline FArr check_backward(const RnnConfig& cfg, const FArr& dy, const FArr& dhT,
                           const py::object& dcT) {
  FArr dcarr;
  Dims dc;
  if (cfg.cell == Cell::LSTM && !dcT.is_none()) {
    dcarr = FArr::ensure(dcT);
    if (!dcarr) throw py::type_error("dc_T must be a float array");
    dc = dims_of(dcarr);
  }
  check_grad_dims(cfg, dims_of(dy), dims_of(dhT), dc);
  return dcarr;
}

}  // namespace
}  // namespace bindings
}  // namespace rnnkern
