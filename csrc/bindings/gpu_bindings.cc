// rnnkern._core — bindings of the GPU backends: "cuda-emu" (the CUDA kernels
// run on the CPU) and "cuda" (a real device, where the build has CUDA and a
// driver and device exist). Same checks and contract as the CPU forward /
// backward (rnnkern/ops.py); NumPy arrays are copied to and from the device.
// Arrays already on the device (rnnkern/_device.py reads their
// __cuda_array_interface__ or DLPack, checks them, and passes their addresses)
// are used in place; DeviceArray is device memory rnnkern allocated, exported
// through both interfaces.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

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

// ---- arrays on the device ----

// The DLPack structs (dlpack.h, ABI version 0.x: the "dltensor" capsule).
struct DLDevice {
  int32_t device_type;
  int32_t device_id;
};
struct DLDataType {
  uint8_t code;
  uint8_t bits;
  uint16_t lanes;
};
struct DLTensor {
  void* data;
  DLDevice device;
  int32_t ndim;
  DLDataType dtype;
  int64_t* shape;
  int64_t* strides;
  uint64_t byte_offset;
};
struct DLManagedTensor {
  DLTensor dl_tensor;
  void* manager_ctx;
  void (*deleter)(DLManagedTensor*);
};
constexpr int32_t kDLCPU = 1, kDLCUDA = 2;
constexpr uint8_t kDLInt = 0, kDLUInt = 1, kDLFloat = 2, kDLBool = 6;

void* gpu_alloc(Device d, size_t n) {
  return d == Device::Emu ? gpu_emu::device_alloc(n) : gpu_cuda::device_alloc(n);
}
void gpu_free(Device d, void* p) {
  if (d == Device::Emu) gpu_emu::device_free(p); else gpu_cuda::device_free(p);
}
void gpu_copy(Device d, void* dst, const void* src, size_t n, int kind) {
  if (d == Device::Emu) gpu_emu::device_copy(dst, src, n, kind);
  else gpu_cuda::device_copy(dst, src, n, kind);
}

// Device memory rnnkern allocated: float32 or uint8, C-contiguous.
struct DeviceArray {
  Device device = Device::Emu;
  void* ptr = nullptr;
  std::vector<int64_t> shape;
  std::string dtype;   // "float32" or "uint8"
  size_t nbytes = 0;
  int ordinal = 0;     // the CUDA device it lives on (cuda-emu: 0)
  DeviceArray(Device d, std::vector<int64_t> s, std::string dt)
      : device(d), shape(std::move(s)), dtype(std::move(dt)) {
    size_t n = 1;
    for (int64_t e : shape) {
      if (e < 0) throw py::value_error("shape must not be negative");
      n *= (size_t)e;
    }
    nbytes = n * (dtype == "float32" ? 4 : 1);
    ptr = gpu_alloc(device, nbytes);
    ordinal = device == Device::Emu ? 0 : gpu_cuda::device_ordinal();
  }
  DeviceArray(const DeviceArray&) = delete;
  DeviceArray& operator=(const DeviceArray&) = delete;
  ~DeviceArray() {
    if (ptr) gpu_free(device, ptr);
  }
  std::string typestr() const { return dtype == "float32" ? "<f4" : "|u1"; }
};

std::vector<int64_t> shape_of(const py::sequence& s) {
  std::vector<int64_t> r;
  for (auto e : s) r.push_back(py::cast<int64_t>(e));
  return r;
}

std::shared_ptr<DeviceArray> device_empty(const std::string& device, const py::sequence& shape,
                                          const std::string& dtype) {
  if (dtype != "float32" && dtype != "uint8")
    throw py::value_error("dtype must be 'float32' or 'uint8', got '" + dtype + "'");
  return std::make_shared<DeviceArray>(parse_device(device), shape_of(shape), dtype);
}

std::shared_ptr<DeviceArray> device_from_host(const std::string& device, const py::array& a) {
  // bool and uint8 arrays (masks) stay one byte an element; anything else is float32
  const char k = a.dtype().kind();
  const bool u8 = k == 'b' || (k == 'u' && a.itemsize() == 1);
  py::array c = u8 ? py::array(MArr::ensure(a)) : py::array(FArr::ensure(a));
  if (!c) throw py::type_error("array must be convertible to float32 or uint8");
  std::vector<int64_t> shape(c.shape(), c.shape() + c.ndim());
  auto d = std::make_shared<DeviceArray>(parse_device(device), shape, u8 ? "uint8" : "float32");
  if (d->nbytes) gpu_copy(d->device, d->ptr, c.data(), d->nbytes, kToDevice);
  return d;
}

py::array device_to_host(const DeviceArray& d) {
  std::vector<py::ssize_t> shape(d.shape.begin(), d.shape.end());
  py::array r = d.dtype == "float32" ? py::array(FArr(shape)) : py::array(MArr(shape));
  if (d.nbytes) {
    py::gil_scoped_release nogil;
    gpu_copy(d.device, r.mutable_data(), d.ptr, d.nbytes, kToHost);
  }
  return r;
}

void dlpack_capsule_destructor(PyObject* cap) {
  if (!PyCapsule_IsValid(cap, "dltensor")) return;   // consumed ("used_dltensor")
  auto* m = static_cast<DLManagedTensor*>(PyCapsule_GetPointer(cap, "dltensor"));
  if (m && m->deleter) m->deleter(m);
}

// The DLManagedTensor of a DeviceArray: keeps the array alive until its deleter.
struct DlExport {
  DLManagedTensor m{};
  std::vector<int64_t> shape;
  std::shared_ptr<DeviceArray> owner;
};

py::capsule device_dlpack(const std::shared_ptr<DeviceArray>& d) {
  auto* e = new DlExport();
  e->owner = d;
  e->shape = d->shape;
  DLTensor& t = e->m.dl_tensor;
  t.data = d->ptr;
  t.device = {d->device == Device::Emu ? kDLCPU : kDLCUDA, 0};
  if (d->device == Device::Cuda) t.device.device_id = d->ordinal;
  t.ndim = (int32_t)e->shape.size();
  t.dtype = d->dtype == "float32" ? DLDataType{kDLFloat, 32, 1} : DLDataType{kDLUInt, 8, 1};
  t.shape = e->shape.data();
  t.strides = nullptr;
  t.byte_offset = 0;
  e->m.manager_ctx = e;
  e->m.deleter = [](DLManagedTensor* m) { delete static_cast<DlExport*>(m->manager_ctx); };
  PyObject* cap = PyCapsule_New(&e->m, "dltensor", dlpack_capsule_destructor);
  if (!cap) {
    delete e;
    throw py::error_already_set();
  }
  return py::reinterpret_steal<py::capsule>(cap);
}

// What a "dltensor" capsule describes (not consumed: the capsule, kept alive by
// the caller for the call, frees it): (data address, shape, strides or None,
// (type code, bits, lanes), (device type, device id)).
py::tuple dlpack_view(const py::object& cap) {
  if (!PyCapsule_IsValid(cap.ptr(), "dltensor"))
    throw py::type_error("__dlpack__() must return a 'dltensor' capsule (DLPack 0.x)");
  auto* m = static_cast<DLManagedTensor*>(PyCapsule_GetPointer(cap.ptr(), "dltensor"));
  const DLTensor& t = m->dl_tensor;
  py::tuple shape(t.ndim);
  for (int i = 0; i < t.ndim; ++i) shape[i] = t.shape[i];
  py::object strides = py::none();
  if (t.strides) {
    py::tuple st(t.ndim);
    for (int i = 0; i < t.ndim; ++i) st[i] = t.strides[i];
    strides = st;
  }
  const uintptr_t data = reinterpret_cast<uintptr_t>(t.data) + (uintptr_t)t.byte_offset;
  return py::make_tuple(data, shape, strides,
                        py::make_tuple((int)t.dtype.code, (int)t.dtype.bits, (int)t.dtype.lanes),
                        py::make_tuple(t.device.device_type, t.device.device_id));
}

template <class T>
T* ptr_of(uintptr_t p) {
  return reinterpret_cast<T*>(p);
}

// Forward on arrays already on the device: every address is the backend's
// device memory, checked by rnnkern/_device.py (shapes, dtypes, contiguity,
// device); 0 = absent. Returns the workspace (training) or None.
py::object gpu_forward_device(const std::string& device, const std::string& cell,
                              const std::string& act, const std::string& ract, bool reset_after,
                              bool go_backwards, bool return_sequences, bool training,
                              int64_t T, int64_t N, int64_t C, int64_t H, uintptr_t x,
                              uintptr_t W, uintptr_t U, uintptr_t b, uintptr_t h0, uintptr_t c0,
                              uintptr_t mask, uintptr_t input_masks, uintptr_t recurrent_masks,
                              uintptr_t y, uintptr_t hT, uintptr_t cT) {
  const Device dev = parse_device(device);
  RnnConfig cfg;
  cfg.cell = parse_cell(cell);
  cfg.act = parse_act(act, "activation");
  cfg.ract = parse_act(ract, "recurrent_activation");
  cfg.reset_after = reset_after;
  cfg.go_backwards = go_backwards;
  cfg.return_sequences = return_sequences;
  cfg.training = training;
  cfg.T = T;
  cfg.N = N;
  cfg.C = C;
  cfg.H = H;
  if (T < 1 || N < 0 || C < 0 || H < 0) throw py::value_error("bad dimensions");
  GpuForwardIn a;
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
  GpuForwardOut o;
  o.y = ptr_of<float>(y);
  o.hT = ptr_of<float>(hT);
  o.cT = ptr_of<float>(cT);
  if (cfg.cell == Cell::LSTM && (!a.c0 || !o.cT))
    throw py::value_error("c0 is required for lstm");
  std::unique_ptr<GpuWorkspace> ws;
  {
    py::gil_scoped_release nogil;
    ws = dev == Device::Emu ? gpu_emu::gpu_forward(cfg, a, o) : gpu_cuda::gpu_forward(cfg, a, o);
  }
  if (!training) return py::none();
  auto c = std::make_unique<GpuCache>();
  c->device = dev;
  c->cfg = cfg;
  if (b) {
    const int64_t GH = num_gates(cfg.cell) * H;
    c->bias_shape = cfg.cell == Cell::GRU && reset_after ? std::vector<py::ssize_t>{2, GH}
                                                         : std::vector<py::ssize_t>{GH};
  }
  c->ws = std::move(ws);
  return py::cast(c.release(), py::return_value_policy::take_ownership);
}

// BPTT of a device forward, on device arrays (addresses as above; db 0 without bias).
void gpu_backward_device(GpuCache& c, uintptr_t dy, uintptr_t dhT, uintptr_t dcT, uintptr_t dx,
                         uintptr_t dW, uintptr_t dU, uintptr_t db, uintptr_t dh0,
                         uintptr_t dc0) {
  GpuBackwardIn a;
  a.on_device = true;
  a.dy = ptr_of<const float>(dy);
  a.dhT = ptr_of<const float>(dhT);
  a.dcT = ptr_of<const float>(dcT);
  GpuBackwardOut o;
  o.dx = ptr_of<float>(dx);
  o.dW = ptr_of<float>(dW);
  o.dU = ptr_of<float>(dU);
  o.db = ptr_of<float>(db);
  o.dh0 = ptr_of<float>(dh0);
  o.dc0 = ptr_of<float>(dc0);
  if (c.cfg.cell == Cell::LSTM && (!a.dcT || !o.dc0))
    throw py::value_error("dc_T is required for lstm");
  py::gil_scoped_release nogil;
  if (c.device == Device::Emu)
    gpu_emu::gpu_backward(*c.ws, a, o);
  else
    gpu_cuda::gpu_backward(*c.ws, a, o);
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
  m.def("gpu_set_graphs", [](bool on) {
        gpu_emu::set_graphs(on);
        gpu_cuda::set_graphs(on);
      }, py::arg("on"),
        "Capture each per-step loop of the GPU backends as a graph and replay it (or not).");
  m.def("gpu_graphs", []() { return gpu_emu::graphs(); },
        "Whether the GPU backends' per-step loops run as captured graphs.");
  m.def("gpu_graph_replays", [](const std::string& device) {
        return parse_device(device) == Device::Emu ? gpu_emu::graph_count()
                                                   : gpu_cuda::graph_count();
      }, py::arg("device"), "Per-step loops that GPU backend has run as a captured graph.");

  py::class_<DeviceArray, std::shared_ptr<DeviceArray>>(
      m, "DeviceArray",
      "Memory on a GPU backend's device (cuda-emu: its emulated device), float32 or uint8, "
      "C-contiguous; exported through __cuda_array_interface__ and DLPack.")
      .def_property_readonly("shape", [](const DeviceArray& d) {
        py::tuple t(d.shape.size());
        for (size_t i = 0; i < d.shape.size(); ++i) t[i] = d.shape[i];
        return t;
      })
      .def_property_readonly("dtype", [](const DeviceArray& d) {
        return py::module_::import("numpy").attr("dtype")(d.dtype);
      })
      .def_property_readonly("device", [](const DeviceArray& d) {
        return d.device == Device::Emu ? "cuda-emu" : "cuda";
      })
      .def_property_readonly("nbytes", [](const DeviceArray& d) { return d.nbytes; })
      .def_property_readonly("__cuda_array_interface__", [](const DeviceArray& d) {
        py::dict r;
        py::tuple shape(d.shape.size());
        for (size_t i = 0; i < d.shape.size(); ++i) shape[i] = d.shape[i];
        r["shape"] = shape;
        r["typestr"] = d.typestr();
        r["data"] = py::make_tuple(reinterpret_cast<uintptr_t>(d.ptr), false);
        r["strides"] = py::none();
        r["version"] = 3;
        return r;
      })
      .def("__dlpack__", [](const std::shared_ptr<DeviceArray>& d, py::kwargs) {
        return device_dlpack(d);
      })
      .def("__dlpack_device__", [](const DeviceArray& d) {
        return py::make_tuple(d.device == Device::Emu ? kDLCPU : kDLCUDA, d.ordinal);
      })
      .def("numpy", &device_to_host, "A host copy (a NumPy array).")
      .def("__repr__", [](const DeviceArray& d) {
        std::vector<py::ssize_t> s(d.shape.begin(), d.shape.end());
        return "DeviceArray(device='" + std::string(d.device == Device::Emu ? "cuda-emu" : "cuda") +
               "', shape=" + shape_str(s) + ", dtype=" + d.dtype + ")";
      });
  m.def("device_empty", &device_empty, py::arg("device"), py::arg("shape"),
        py::arg("dtype") = "float32", "Uninitialised device memory of that shape and dtype.");
  m.def("device_array", &device_from_host, py::arg("device"), py::arg("array"),
        "A host array copied to the device (bool and uint8 stay uint8; others float32).");
  m.def("device_accessible", [](const std::string& device, uintptr_t p, size_t n) {
        return parse_device(device) == Device::Emu
                   ? gpu_emu::device_accessible(reinterpret_cast<const void*>(p), n)
                   : gpu_cuda::device_accessible(reinterpret_cast<const void*>(p), n);
      }, py::arg("device"), py::arg("address"), py::arg("nbytes"),
        "Whether that memory is the GPU backend's to read and write.");
  m.def("dlpack_view", &dlpack_view, py::arg("capsule"),
        "(address, shape, strides, (code, bits, lanes), (device type, id)) of a dltensor "
        "capsule, which stays unconsumed.");
  m.def("gpu_forward_device", &gpu_forward_device, py::arg("device"), py::arg("cell"),
        py::arg("activation"), py::arg("recurrent_activation"), py::arg("reset_after"),
        py::arg("go_backwards"), py::arg("return_sequences"), py::arg("training"),
        py::arg("T"), py::arg("N"), py::arg("C"), py::arg("H"), py::arg("x"),
        py::arg("kernel"), py::arg("recurrent_kernel"), py::arg("bias"), py::arg("h0"),
        py::arg("c0"), py::arg("mask"), py::arg("input_masks"), py::arg("recurrent_masks"),
        py::arg("y"), py::arg("h_T"), py::arg("c_T"),
        "Forward on device arrays given by address (checked by rnnkern._device; 0: absent).");
  m.def("gpu_backward_device", &gpu_backward_device, py::arg("workspace"), py::arg("dy"),
        py::arg("dh_T"), py::arg("dc_T"), py::arg("dx"), py::arg("dW"), py::arg("dU"),
        py::arg("db"), py::arg("dh0"), py::arg("dc0"),
        "BPTT on device arrays given by address (checked by rnnkern._device; 0: absent).");
  m.def("cuda_stream_synchronize", [](uintptr_t stream) {
        py::gil_scoped_release nogil;
        gpu_cuda::stream_synchronize(stream);
      }, py::arg("stream"), "Wait for a CUDA stream's work (its handle as an int).");
  m.def("cuda_pool_bytes", &gpu_cuda::pool_bytes, "Device memory the cuda backend keeps for reuse.");
  m.def("cuda_free_pool", &gpu_cuda::free_pool, "Free the device memory kept for reuse.");
}
