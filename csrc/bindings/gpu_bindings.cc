// rnnkern._core — bindings of the GPU backends: "cuda-emu" (the CUDA kernels
// run on the CPU) and "cuda" (a real device, where the build has CUDA and a
// driver and device exist). Same checks and contract as the CPU forward /
// backward (rnnkern/ops.py); NumPy arrays are copied to and from the device.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <memory>
#include <stdexcept>
#include <string>

#include "../../cuda/gpu_api.h"
#include "checks.h"

namespace py = pybind11;
using namespace rnnkern;
using namespace rnnkern::bindings;

namespace {

enum class Device { Emu, Cuda };

Device parse_device(const std::string& d) {
  if (d == "cuda-emu") return Device::Emu;
  if (d == "cuda") return Device::Cuda;
  throw py::value_error("device must be 'cuda-emu' or 'cuda', got '" + d + "'");
}

// A training forward's device state, for the backward.
struct GpuCache {
  Device device = Device::Emu;
  RnnConfig cfg;
  std::vector<py::ssize_t> bias_shape;
  std::unique_ptr<GpuWorkspace> ws;
  bool used = false;
};

py::tuple gpu_forward(const std::string& device, const std::string& cell, const std::string& act,
                      const std::string& ract, bool reset_after, bool go_backwards,
                      bool return_sequences, bool training, FArr x, FArr W, FArr U,
                      py::object b, FArr h0, py::object c0, py::object mask,
                      py::object input_masks, py::object recurrent_masks) {
  const Device dev = parse_device(device);
  CheckedForward in = check_forward(cell, act, ract, reset_after, go_backwards,
                                    return_sequences, training, x, W, U, b, h0, c0, mask,
                                    input_masks, recurrent_masks);
  const RnnConfig& cfg = in.cfg;
  const py::ssize_t N = cfg.N, T = cfg.T, H = cfg.H;
  const bool lstm = cfg.cell == Cell::LSTM;
  FArr y = return_sequences ? FArr({N, T, H}) : FArr({N, H});
  FArr hT({N, H});
  FArr cT = lstm ? FArr({N, H}) : FArr(std::vector<py::ssize_t>{0});
  GpuForwardIn a;
  a.x = x.data();
  a.W = W.data();
  a.U = U.data();
  a.b = in.bshape.empty() ? nullptr : in.barr.data();
  a.h0 = h0.data();
  a.c0 = lstm ? in.carr.data() : nullptr;
  a.mask = mask.is_none() ? nullptr : in.marr.data();
  a.input_masks = mask_ptr(in.im);
  a.recurrent_masks = mask_ptr(in.rm);
  GpuForwardOut o;
  o.y = y.mutable_data();
  o.hT = hT.mutable_data();
  o.cT = lstm ? cT.mutable_data() : nullptr;
  std::unique_ptr<GpuWorkspace> ws;
  {
    py::gil_scoped_release nogil;
    ws = dev == Device::Emu ? gpu_emu::gpu_forward(cfg, a, o) : gpu_cuda::gpu_forward(cfg, a, o);
  }
  py::object cache = py::none();
  if (training) {
    auto c = std::make_unique<GpuCache>();
    c->device = dev;
    c->cfg = cfg;
    c->bias_shape = in.bshape;
    c->ws = std::move(ws);
    cache = py::cast(c.release(), py::return_value_policy::take_ownership);
  }
  return py::make_tuple(y, hT, lstm ? py::object(cT) : py::object(py::none()), cache);
}

py::tuple gpu_backward(GpuCache& c, FArr dy, FArr dhT, py::object dcT) {
  const RnnConfig& cfg = c.cfg;
  const py::ssize_t N = cfg.N, T = cfg.T, C = cfg.C, H = cfg.H;
  const py::ssize_t GH = num_gates(cfg.cell) * H;
  const bool lstm = cfg.cell == Cell::LSTM;
  FArr dcarr = check_backward(cfg, dy, dhT, dcT);
  FArr dx({N, T, C}), dW({C, GH}), dU({H, GH}), dh0({N, H});
  FArr dc0 = lstm ? FArr({N, H}) : FArr(std::vector<py::ssize_t>{0});
  FArr db = c.bias_shape.empty() ? FArr(std::vector<py::ssize_t>{0}) : FArr(c.bias_shape);
  GpuBackwardIn a;
  a.dy = dy.data();
  a.dhT = dhT.data();
  a.dcT = lstm ? dcarr.data() : nullptr;
  GpuBackwardOut o;
  o.dx = dx.mutable_data();
  o.dW = dW.mutable_data();
  o.dU = dU.mutable_data();
  o.db = c.bias_shape.empty() ? nullptr : db.mutable_data();
  o.dh0 = dh0.mutable_data();
  o.dc0 = lstm ? dc0.mutable_data() : nullptr;
  {
    py::gil_scoped_release nogil;
    if (c.device == Device::Emu)
      gpu_emu::gpu_backward(*c.ws, a, o);
    else
      gpu_cuda::gpu_backward(*c.ws, a, o);
  }
  return py::make_tuple(dx, dW, dU,
                        c.bias_shape.empty() ? py::object(py::none()) : py::object(db), dh0,
                        lstm ? py::object(dc0) : py::object(py::none()));
}

}  // namespace

void register_gpu(py::module_& m) {
  py::class_<GpuCache>(m, "GpuWorkspace",
                       "What a GPU training forward keeps on the device for BPTT (opaque).")
      .def_property_readonly("device", [](const GpuCache& c) {
        return c.device == Device::Emu ? "cuda-emu" : "cuda";
      })
      .def_property_readonly("batch", [](const GpuCache& c) { return c.cfg.N; })
      .def_property_readonly("timesteps", [](const GpuCache& c) { return c.cfg.T; })
      .def_property_readonly("input_size", [](const GpuCache& c) { return c.cfg.C; })
      .def_property_readonly("units", [](const GpuCache& c) { return c.cfg.H; })
      .def_property_readonly("cell", [](const GpuCache& c) {
        return c.cfg.cell == Cell::SimpleRNN ? "simple_rnn"
               : c.cfg.cell == Cell::LSTM    ? "lstm"
                                             : "gru";
      });
  m.def("gpu_forward", &gpu_forward, py::arg("device"), py::arg("cell"), py::arg("activation"),
        py::arg("recurrent_activation"), py::arg("reset_after"), py::arg("go_backwards"),
        py::arg("return_sequences"), py::arg("training"), py::arg("x"), py::arg("kernel"),
        py::arg("recurrent_kernel"), py::arg("bias"), py::arg("h0"), py::arg("c0"),
        py::arg("mask"), py::arg("input_masks") = py::none(),
        py::arg("recurrent_masks") = py::none(),
        "Forward of one layer on a GPU backend ('cuda-emu' or 'cuda'): "
        "(y, h_T, c_T or None, workspace or None).");
  m.def("gpu_backward", &gpu_backward, py::arg("workspace"), py::arg("dy"), py::arg("dh_T"),
        py::arg("dc_T") = py::none(),
        "BPTT of a GPU training forward: (dx, dW, dU, db or None, dh0, dc0 or None).");
  m.def("gpu_persistent_launches", [](const std::string& device) {
        return parse_device(device) == Device::Emu ? gpu_emu::persistent_count()
                                                   : gpu_cuda::persistent_count();
      }, py::arg("device"),
        "Forwards the small-batch persistent kernel has run on that GPU backend.");
  m.def("cuda_pool_bytes", &gpu_cuda::pool_bytes, "Device memory the cuda backend keeps for reuse.");
  m.def("cuda_free_pool", &gpu_cuda::free_pool, "Free the device memory kept for reuse.");
}
