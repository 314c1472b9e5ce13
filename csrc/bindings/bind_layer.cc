// rnnkern._core — the kernel table's bindings, thin: Python (rnnkern.layers)
// validates user input and allocates nothing here but outputs; this file checks
// cheap invariants (shapes, dtypes), fills the kernel table's argument structs,
// releases the GIL and runs the backend's entry (rnnkern/backend.h), for every
// backend: forward, backward, pack, the workspace, and the backends themselves
// (by name or resolved once as a _core.Backend).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "rnnkern/backend.h"
#include "../cpu/kernels.h"
#include "bindings.h"
#include "checks.h"
#include "../../cuda/cuda_info.h"
#include "../../cuda/gpu_api.h"

namespace py = pybind11;

namespace rnnkern {
namespace bindings {

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

const CpuKernels& raw_kernels(const std::string& isa) {
  const Backend& b = backend_named(isa);
  if (!b.cpu) throw py::value_error("'" + isa + "' is not a CPU ISA");
  return *b.cpu;
}

namespace {

const char* cell_name(Cell c) {
  return c == Cell::SimpleRNN ? "simple_rnn" : (c == Cell::LSTM ? "lstm" : "gru");
}

// The backend argument of forward and pack: a _core.Backend (resolved once by
// _core.backend) or a backend's name, looked up here.
const Backend& backend_arg(const py::handle& h) {
  if (py::isinstance<Backend>(h)) return *h.cast<const Backend*>();
  if (!py::isinstance<py::str>(h))
    throw py::type_error("backend must be a name or a _core.Backend, got " +
                         std::string(Py_TYPE(h.ptr())->tp_name));
  return backend_named(h.cast<std::string>());
}

// Weights packed by a backend (rnnkern._core.pack), with the arrays packed: kept
// alive, so that their buffers are not reused, and checked against each call's.
struct PyPacked {
  std::unique_ptr<Packed> packed;
  FArr U;
  py::object W;  // FArr, or None when only U is packed
};

py::object make_packed(const py::object& backend, const std::string& cell, bool reset_after,
                       FArr U, py::object W) {
  const Backend& be = backend_arg(backend);
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
py::tuple forward(const py::object& backend, const RnnConfig& options, FArr x, FArr W, FArr U,
                  py::object b, FArr h0, py::object c0, py::object mask, int threads,
                  py::object packed, py::object input_masks, py::object recurrent_masks) {
  const Backend& be = backend_arg(backend);
  CheckedForward in =
      check_forward(options, x, W, U, b, h0, c0, mask, input_masks, recurrent_masks);
  RnnConfig& cfg = in.cfg;
  check_host_memory(cfg);
  cfg.threads = threads;
  const Packed* pw = check_packed(packed, be, cfg, U, W);
  const bool lstm = cfg.cell == Cell::LSTM;
  const py::ssize_t N = cfg.N, T = cfg.T, H = cfg.H;
  FArr y = cfg.return_sequences ? FArr({N, T, H}) : FArr({N, H});
  FArr hT({N, H});
  FArr cT = lstm ? FArr({N, H}) : FArr(std::vector<py::ssize_t>{0});
  LayerArgs a = layer_inputs(in.args, false);
  a.y = y.mutable_data();
  a.hT = hT.mutable_data();
  a.cT = lstm ? cT.mutable_data() : nullptr;
  std::unique_ptr<Workspace> ws;
  {
    py::gil_scoped_release nogil;
    ws = be.forward(be, cfg, a, pw);
  }
  py::object wso = py::none();
  if (cfg.training) {
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

// A device argument as rnnkern/_device.py describes it: None, or (address, shape,
// typestr) of C-contiguous memory the backend may use (checked there).
struct DeviceArg {
  Dims dims;
  std::string typestr;
};

DeviceArg device_arg(const py::handle& h) {
  DeviceArg r;
  if (h.is_none()) return r;
  py::tuple t = py::reinterpret_borrow<py::tuple>(h);
  r.dims.data = reinterpret_cast<const void*>(t[0].cast<uintptr_t>());
  r.dims.present = true;
  for (auto e : t[1]) r.dims.shape.push_back(e.cast<py::ssize_t>());
  r.typestr = t[2].cast<std::string>();
  return r;
}

void expect_float32(const DeviceArg& a, const char* name) {
  if (a.dims.present && a.typestr != "<f4")
    throw py::type_error(std::string(name) + " must be float32 on the device, got typestr '" +
                         a.typestr + "'");
}

template <class T>
T* ptr_of(const DeviceArg& a) {
  return static_cast<T*>(const_cast<void*>(a.dims.data));
}

// The device forward's arguments, checked by the same rules as the host's (dtypes
// first: the device holds no converted copies); cfg gets the dimensions.
struct DeviceForward {
  RnnConfig cfg;
  DeviceArg x, W, U, b, h0, c0, mask, im, rm, bhh;
  ForwardDims args;
  std::vector<py::ssize_t> bshape;
};

// args: the 9 of rnnkern.ops.rnn_forward, and with torch_layout a 10th, bias_hh
// (the weights then weight_ih, weight_hh, bias_ih: LayerArgs::torch_layout)
DeviceForward check_device_forward(const RnnConfig& options, const py::sequence& args,
                                   bool torch_layout) {
  const size_t n = torch_layout ? 10 : 9;
  if (py::len(args) != n)
    throw py::value_error(torch_layout
        ? "the device forward in PyTorch's layout takes 10 arguments (x, weight_ih, "
          "weight_hh, bias_ih, h0, c0, mask, input_masks, recurrent_masks, bias_hh)"
        : "the device forward takes 9 arguments (x, kernel, recurrent_kernel, bias, h0, c0, "
          "mask, input_masks, recurrent_masks)");
  DeviceForward f;
  f.cfg = options;
  DeviceArg* all[] = {&f.x, &f.W, &f.U, &f.b, &f.h0, &f.c0, &f.mask, &f.im, &f.rm, &f.bhh};
  const char* keras[] = {"x",  "kernel", "recurrent_kernel", "bias",            "h0",
                         "c0", "mask",   "input_masks",      "recurrent_masks", "bias_hh"};
  const char* torch[] = {"x",  "weight_ih", "weight_hh",   "bias_ih",         "h0",
                         "c0", "mask",      "input_masks", "recurrent_masks", "bias_hh"};
  const char* const* names = torch_layout ? torch : keras;
  for (size_t i = 0; i < n; ++i) {
    *all[i] = device_arg(args[i]);
    if (i == 6) {
      if (f.mask.dims.present && f.mask.typestr != "|u1" && f.mask.typestr != "|b1")
        throw py::type_error("mask must be a boolean (or uint8) array on the device, got "
                             "typestr '" + f.mask.typestr + "'");
    } else {
      expect_float32(*all[i], names[i]);
    }
  }
  if (!f.x.dims.present || !f.W.dims.present || !f.U.dims.present || !f.h0.dims.present)
    throw py::value_error("x, kernel, recurrent_kernel and h0 are required");
  f.args = ForwardDims{f.x.dims,  f.W.dims,    f.U.dims,  f.b.dims,  f.h0.dims,   f.c0.dims,
                       f.mask.dims, f.im.dims, f.rm.dims, f.bhh.dims, torch_layout};
  f.bshape = check_dims(f.cfg, f.args);
  return f;
}

// The dimensions (N, T, C, H) of a device forward's arguments, or the error the
// forward would raise: what rnnkern/_device.py asks before allocating the outputs.
py::tuple device_forward_dims(const RnnConfig& options, const py::sequence& args,
                              bool torch_layout) {
  DeviceForward f = check_device_forward(options, args, torch_layout);
  return py::make_tuple(f.cfg.N, f.cfg.T, f.cfg.C, f.cfg.H);
}

// Forward on arrays already on a GPU backend's device: args as for
// device_forward_dims (checked again here), y, h_T, c_T by address (0: absent).
// Returns the workspace (training) or None.
py::object forward_device(const std::string& name, const RnnConfig& options,
                          const py::sequence& args, uintptr_t y, uintptr_t hT, uintptr_t cT,
                          uintptr_t stream, bool weights_in_place, bool torch_layout) {
  const Backend& be = backend_named(name);
  if (!be.device) throw py::value_error("backend '" + name + "' takes host arrays only");
  DeviceForward f = check_device_forward(options, args, torch_layout);
  const RnnConfig& cfg = f.cfg;
  LayerArgs a = layer_inputs(f.args, true);
  a.y = reinterpret_cast<float*>(y);
  a.hT = reinterpret_cast<float*>(hT);
  a.cT = reinterpret_cast<float*>(cT);
  a.stream = stream;
  a.weights_in_place = weights_in_place;
  if (!a.y || !a.hT || (cfg.cell == Cell::LSTM && !a.cT))
    throw py::value_error("the device forward's outputs are required");
  std::unique_ptr<Workspace> ws;
  {
    py::gil_scoped_release nogil;
    ws = be.forward(be, cfg, a, nullptr);
  }
  if (!cfg.training) return py::none();
  // the GPU workspace holds device copies of what its backward reads
  return wrap_workspace(be, std::move(ws), f.bshape, py::none(), py::none());
}

// BPTT on device arrays: dy, dh_T, dc_T as the forward's arguments (checked by
// the host backward's rules), the results by address (db 0 without bias).
void backward_device(PyWorkspace& w, const py::handle& dy, const py::handle& dhT,
                     const py::handle& dcT, uintptr_t dx, uintptr_t dW, uintptr_t dU,
                     uintptr_t db, uintptr_t dh0, uintptr_t dc0, uintptr_t stream,
                     uintptr_t db_hh) {
  if (!w.backend->device) throw py::value_error("a host backend's workspace takes host arrays");
  const RnnConfig& cfg = w.ws->cfg;
  const DeviceArg gy = device_arg(dy), gh = device_arg(dhT), gc = device_arg(dcT);
  expect_float32(gy, "dy");
  expect_float32(gh, "dh_T");
  expect_float32(gc, "dc_T");
  check_grad_dims(cfg, gy.dims, gh.dims, gc.dims);
  GradArgs g;
  g.on_device = true;
  g.stream = stream;
  g.dy = ptr_of<const float>(gy);
  g.dhT = ptr_of<const float>(gh);
  g.dcT = ptr_of<const float>(gc);
  g.dx = reinterpret_cast<float*>(dx);
  g.dW = reinterpret_cast<float*>(dW);
  g.dU = reinterpret_cast<float*>(dU);
  g.db = reinterpret_cast<float*>(db);
  g.dh0 = reinterpret_cast<float*>(dh0);
  g.dc0 = reinterpret_cast<float*>(dc0);
  g.db_hh = reinterpret_cast<float*>(db_hh);
  if (cfg.cell == Cell::LSTM && !g.dc0) throw py::value_error("dc0 is required for lstm");
  py::gil_scoped_release nogil;
  w.backend->backward(*w.backend, *w.ws, 1, g, nullptr);
}

const char* act_name(Act a) {
  switch (a) {
    case Act::Tanh: return "tanh";
    case Act::Relu: return "relu";
    case Act::Sigmoid: return "sigmoid";
    case Act::HardSigmoid: return "hard_sigmoid";
    default: return "linear";
  }
}

const char* precision_name(Precision p) {
  return p == Precision::FP32 ? "fp32" : (p == Precision::TF32 ? "tf32" : "bf16");
}

}  // namespace

void init_layer(py::module_& m) {
  py::class_<Backend>(m, "Backend",
                      "One backend of the kernel table (a CPU ISA, cuda-emu, cuda), resolved\n"
                      "once by _core.backend(name); forward and pack take it in place of the name.")
      .def_property_readonly("name", [](const Backend& b) { return b.name; })
      .def_property_readonly("device", [](const Backend& b) { return b.device; })
      .def("__repr__",
           [](const Backend& b) { return "<rnnkern._core.Backend '" + std::string(b.name) + "'>"; });
  m.def("backend", &backend_named, py::arg("name"), py::return_value_policy::reference,
        "The kernel table's backend of that name (ValueError if it is not available here).");
  m.def("cpu_isas", &cpu_isas, "CPU ISAs compiled in and supported here, widest first.");
  m.def("cpu_isa_order", &compiled_cpu_isas,
        "CPU ISAs compiled into this build, widest first: the order of the kernel table's\n"
        "CPU rows (csrc/cpu/dispatch.cc), which rnnkern.backends and RNNKERN_ISA follow.");
  m.def("cuda_status", []() {
        CudaStatus s = cuda_query();
        return py::make_tuple(s.built, s.available, s.reason);
      },
        "(built, available, reason): whether the CUDA backend was compiled and a device is usable.");
  py::class_<PyWorkspace>(m, "Workspace",
                          "What a training forward keeps for BPTT (opaque).")
      .def_property_readonly("batch", [](const PyWorkspace& w) { return w.ws->cfg.N; })
      .def_property_readonly("timesteps", [](const PyWorkspace& w) { return w.ws->cfg.T; })
      .def_property_readonly("input_size", [](const PyWorkspace& w) { return w.ws->cfg.C; })
      .def_property_readonly("units", [](const PyWorkspace& w) { return w.ws->cfg.H; })
      .def_property_readonly("cell",
                             [](const PyWorkspace& w) { return cell_name(w.ws->cfg.cell); })
      .def_property_readonly("backend", [](const PyWorkspace& w) { return w.backend->name; })
      .def_property_readonly("nbytes", [](const PyWorkspace& w) { return w.ws->nbytes(); });
  py::class_<RnnConfig>(m, "Options",
                        "A layer call's options parsed once for the kernels (what\n"
                        "rnnkern.options.RnnOptions holds; the forward bindings take it).")
      .def(py::init(&parse_config), py::arg("cell"), py::arg("activation"),
           py::arg("recurrent_activation"), py::arg("reset_after"), py::arg("go_backwards"),
           py::arg("return_sequences"), py::arg("training"), py::arg("precision"))
      .def_property_readonly("cell", [](const RnnConfig& c) { return cell_name(c.cell); })
      .def_property_readonly("activation", [](const RnnConfig& c) { return act_name(c.act); })
      .def_property_readonly("recurrent_activation",
                             [](const RnnConfig& c) { return act_name(c.ract); })
      .def_readonly("reset_after", &RnnConfig::reset_after)
      .def_readonly("go_backwards", &RnnConfig::go_backwards)
      .def_readonly("return_sequences", &RnnConfig::return_sequences)
      .def_readonly("training", &RnnConfig::training)
      .def_property_readonly("precision",
                             [](const RnnConfig& c) { return precision_name(c.precision); })
      .def("__repr__", [](const RnnConfig& c) {
        return std::string("<rnnkern._core.Options ") + cell_name(c.cell) + ">";
      });
  m.def("forward", &forward, py::arg("backend"), py::arg("options"), py::arg("x"), py::arg("kernel"),
        py::arg("recurrent_kernel"), py::arg("bias"), py::arg("h0"), py::arg("c0"),
        py::arg("mask"), py::arg("threads"), py::arg("packed") = py::none(),
        py::arg("input_masks") = py::none(), py::arg("recurrent_masks") = py::none(),
        "One layer's forward on a backend of the kernel table (a CPU ISA, cuda-emu, cuda;\n"
        "see rnnkern.ops.rnn_forward): (y, h_T, c_T or None, workspace or None).\n"
        "input_masks (G, N, C) and recurrent_masks (G, N, H): optional per-gate dropout\n"
        "masks, float arrays. threads: the CPU ISAs'.");
  m.def("device_forward_dims", &device_forward_dims, py::arg("options"), py::arg("args"),
        py::arg("torch_layout") = false,
        "(N, T, C, H) of a device forward's arguments (x, kernel, recurrent_kernel, bias,\n"
        "h0, c0, mask, input_masks, recurrent_masks: each None or (address, shape,\n"
        "typestr); torch_layout: forward_device's), checked by the host forward's rules;\n"
        "the error the forward would raise.");
  m.def("forward_device", &forward_device, py::arg("backend"), py::arg("options"),
        py::arg("args"), py::arg("y"), py::arg("h_T"), py::arg("c_T"), py::arg("stream") = 0,
        py::arg("weights_in_place") = false, py::arg("torch_layout") = false,
        "Forward on a GPU backend's device arrays (args as for device_forward_dims; the\n"
        "outputs by address, c_T 0 but for lstm): the workspace (training) or None. The\n"
        "work is queued on `stream` (a cudaStream_t as an integer, 0 the legacy default)\n"
        "and the call returns without waiting for it. weights_in_place: a training\n"
        "forward's backward reads kernel and recurrent_kernel from the caller's arrays\n"
        "(kept alive and unchanged until then) instead of copies. torch_layout: args\n"
        "are (x, weight_ih, weight_hh, bias_ih, h0, c0, mask, input_masks,\n"
        "recurrent_masks, bias_hh) in PyTorch's layout, converted on the device.");
  m.def("backward_device", &backward_device, py::arg("workspace"), py::arg("dy"),
        py::arg("dh_T"), py::arg("dc_T"), py::arg("dx"), py::arg("dW"), py::arg("dU"),
        py::arg("db"), py::arg("dh0"), py::arg("dc0"), py::arg("stream") = 0,
        py::arg("db_hh") = 0,
        "BPTT on a GPU backend's device arrays: dy, dh_T, dc_T as (address, shape,\n"
        "typestr) or None, the results by address (0: absent), queued on `stream` (after\n"
        "the forward's work where that ran on another stream). After a torch_layout\n"
        "forward dW, dU and db are in PyTorch's layout and db_hh gets d bias_hh.");
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
  m.def("release_memory", [] {
        py::dict d;
        d["cpu_scratch"] = scratch_release();
        d["cpu_pool"] = cpu_pool_release();
        size_t cuda = 0;
        if (cuda_query().available) {
          cuda = gpu_cuda::pool_bytes();
          gpu_cuda::free_pool();
        }
        d["cuda_pool"] = cuda;
        return d;
      },
        "Free the memory the kernels keep between calls -- the calling thread's scratch,\n"
        "the CPU workspaces' recycled blocks, the cuda backend's device pool -- and say how\n"
        "many bytes each held: {'cpu_scratch', 'cpu_pool', 'cuda_pool'}.");
  m.def("last_call_scratch_bytes", &scratch_last_call_bytes,
        "Temporary memory (bytes) the calling thread's last forward or backward used\n"
        "beyond its inputs, outputs and workspace.");
}

}  // namespace bindings
}  // namespace rnnkern
