// rnnkern._core — the argument checks every backend's bindings share: names,
// shapes and dtypes, each failure a Python exception naming the argument.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <string>
#include <vector>

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

// An optional per-gate dropout mask argument: None, or a real floating array
// of shape (G, N, D) (converted to C-contiguous float32).
inline py::object gate_masks(const py::object& m, int64_t G, int64_t N, int64_t D, const char* name,
                      const char* dname) {
  if (m.is_none()) return py::none();
  const std::string want = std::string(" of shape (G, N, ") + dname + ") = (" +
                           std::to_string(G) + ", " + std::to_string(N) + ", " +
                           std::to_string(D) + ")";
  if (!py::isinstance<py::array>(m) || py::cast<py::array>(m).dtype().kind() != 'f')
    throw py::type_error(std::string(name) + " must be a float array" + want + ", got " +
                         std::string(py::str(py::type::of(m).attr("__name__"))) +
                         (py::isinstance<py::array>(m)
                              ? std::string(" of dtype ") +
                                    std::string(py::str(py::cast<py::array>(m).dtype()))
                              : std::string()));
  FArr a = FArr::ensure(m);
  if (!a) throw py::type_error(std::string(name) + " must be a float array" + want);
  std::vector<py::ssize_t> got(a.shape(), a.shape() + a.ndim());
  if (got != std::vector<py::ssize_t>{(py::ssize_t)G, (py::ssize_t)N, (py::ssize_t)D})
    throw py::value_error(std::string(name) + " must have shape (G, N, " + dname + ") = (" +
                          std::to_string(G) + ", " + std::to_string(N) + ", " +
                          std::to_string(D) + "), got " + shape_str(got));
  return a;
}

inline const float* mask_ptr(const py::object& m) {
  return m.is_none() ? nullptr : py::reinterpret_borrow<FArr>(m).data();
}

// A forward's arguments, checked: the config (threads not set) and the arrays
// converted to C-contiguous float32 / uint8 (empty where absent).
// A layer's options as the kernels take them (the dimensions are filled later).
inline RnnConfig parse_config(const std::string& cell, const std::string& act,
                              const std::string& ract, bool reset_after, bool go_backwards,
                              bool return_sequences, bool training) {
  RnnConfig cfg;
  cfg.cell = parse_cell(cell);
  cfg.act = parse_act(act, "activation");
  cfg.ract = parse_act(ract, "recurrent_activation");
  cfg.reset_after = reset_after;
  cfg.go_backwards = go_backwards;
  cfg.return_sequences = return_sequences;
  cfg.training = training;
  return cfg;
}

struct CheckedForward {
  RnnConfig cfg;
  std::vector<py::ssize_t> bshape;  // empty: no bias
  FArr barr, carr;
  MArr marr;
  py::object im, rm;                // FArr or None
};

inline CheckedForward check_forward(const std::string& cell, const std::string& act,
                                    const std::string& ract, bool reset_after,
                                    bool go_backwards, bool return_sequences, bool training,
                                    const FArr& x, const FArr& W, const FArr& U,
                                    const py::object& b, const FArr& h0, const py::object& c0,
                                    const py::object& mask, const py::object& input_masks,
                                    const py::object& recurrent_masks) {
  CheckedForward r;
  r.cfg = parse_config(cell, act, ract, reset_after, go_backwards, return_sequences, training);
  RnnConfig& cfg = r.cfg;
  if (x.ndim() != 3)
    throw py::value_error("x must be 3-D (batch, timesteps, features), got ndim " +
                          std::to_string(x.ndim()));
  cfg.N = x.shape(0);
  cfg.T = x.shape(1);
  cfg.C = x.shape(2);
  if (cfg.T < 1) throw py::value_error("x must have at least one timestep");
  if (U.ndim() != 2) throw py::value_error("recurrent_kernel must be 2-D (units, gates*units)");
  cfg.H = U.shape(0);
  const int64_t G = num_gates(cfg.cell), GH = G * cfg.H;
  expect_shape(W, {(py::ssize_t)cfg.C, (py::ssize_t)GH}, "kernel");
  expect_shape(U, {(py::ssize_t)cfg.H, (py::ssize_t)GH}, "recurrent_kernel");
  expect_shape(h0, {(py::ssize_t)cfg.N, (py::ssize_t)cfg.H}, "h0");
  std::vector<py::ssize_t>& bshape = r.bshape;
  FArr& barr = r.barr;
  if (!b.is_none()) {
    barr = FArr::ensure(b);
    if (!barr) throw py::type_error("bias must be a float array");
    const bool two = cfg.cell == Cell::GRU && reset_after;
    bshape = two ? std::vector<py::ssize_t>{2, (py::ssize_t)GH}
                 : std::vector<py::ssize_t>{(py::ssize_t)GH};
    expect_shape(barr, bshape, "bias");
  }
  FArr& carr = r.carr;
  if (cfg.cell == Cell::LSTM) {
    if (c0.is_none()) throw py::value_error("c0 is required for lstm");
    carr = FArr::ensure(c0);
    if (!carr) throw py::type_error("c0 must be a float array");
    expect_shape(carr, {(py::ssize_t)cfg.N, (py::ssize_t)cfg.H}, "c0");
  }
  MArr& marr = r.marr;
  if (!mask.is_none()) {
    marr = MArr::ensure(mask);
    if (!marr) throw py::type_error("mask must be a boolean array");
    expect_shape(marr, {(py::ssize_t)cfg.N, (py::ssize_t)cfg.T}, "mask");
  }

  r.im = gate_masks(input_masks, G, cfg.N, cfg.C, "input_masks", "C");
  r.rm = gate_masks(recurrent_masks, G, cfg.N, cfg.H, "recurrent_masks", "H");
  return r;

}

// A backward's output gradients checked against the forward's config; returns
// dc_T as float32 (empty unless LSTM).
inline FArr check_backward(const RnnConfig& cfg, const FArr& dy, const FArr& dhT,
                           const py::object& dcT) {
  const py::ssize_t N = cfg.N, T = cfg.T, H = cfg.H;
  if (cfg.return_sequences)
    expect_shape(dy, {N, T, H}, "dy");
  else
    expect_shape(dy, {N, H}, "dy");
  expect_shape(dhT, {N, H}, "dh_T");
  FArr dcarr;
  if (cfg.cell == Cell::LSTM) {
    if (dcT.is_none()) throw py::value_error("dc_T is required for lstm");
    dcarr = FArr::ensure(dcT);
    if (!dcarr) throw py::type_error("dc_T must be a float array");
    expect_shape(dcarr, {N, H}, "dc_T");
  }
  return dcarr;
}

}  // namespace
}  // namespace bindings
}  // namespace rnnkern
