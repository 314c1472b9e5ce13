// rnnkern._core — what the GPU backends ("cuda-emu": the CUDA kernels run on the
// CPU; "cuda": a real device, where the build has CUDA and a driver and device
// exist) offer beyond the kernel table, whose forward / backward module.cc binds
// for every backend: DeviceArray (device memory rnnkern allocated, exported
// through __cuda_array_interface__ and DLPack), reading DLPack capsules (for
// rnnkern/_device.py, which passes device arrays' addresses to
// forward_device / backward_device), the graph switch, the pool, counters.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "../../cuda/gpu_api.h"
#include "../../cuda/plan.h"
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

const GpuRuntime& rt(Device d) { return gpu_runtime(d == Device::Emu); }
const GpuRuntime& rt(const std::string& device) { return rt(parse_device(device)); }

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
    ptr = rt(device).device_alloc(nbytes);
    ordinal = rt(device).device_ordinal();
  }
  DeviceArray(const DeviceArray&) = delete;
  DeviceArray& operator=(const DeviceArray&) = delete;
  ~DeviceArray() {
    if (ptr) rt(device).device_free(ptr);
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
  if (d->nbytes) rt(d->device).device_copy(d->ptr, c.data(), d->nbytes, kToDevice);
  return d;
}

py::array device_to_host(const DeviceArray& d) {
  std::vector<py::ssize_t> shape(d.shape.begin(), d.shape.end());
  py::array r = d.dtype == "float32" ? py::array(FArr(shape)) : py::array(MArr(shape));
  if (d.nbytes) {
    py::gil_scoped_release nogil;
    rt(d.device).device_copy(r.mutable_data(), d.ptr, d.nbytes, kToHost);
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

}  // namespace

namespace rnnkern {

#define RNNKERN_GPU_RUNTIME(ns, label)                                                     \
  GpuRuntime {                                                                             \
    label, &ns::persistent_count, &ns::cluster_count, &ns::push_count, &ns::flag_count,  \
        &ns::set_plan,                                                                     \
        &ns::plan, &ns::set_graphs, &ns::graphs,                                           \
        &ns::graph_count, &ns::graph_update_count, &ns::clear_graphs, &ns::set_gemm,       \
        &ns::gemm_kind, &ns::mma_gemm_count, &ns::graph_reinstantiation_count,             \
        &ns::set_tune, &ns::tune, &ns::tuning_count, &ns::tuned_plans, &ns::clear_tuned,   \
        &ns::load_tuned, &ns::device_key,                                                  \
        &ns::device_alloc, &ns::device_free, &ns::device_copy, &ns::device_accessible,     \
        &ns::micro_bench, &ns::mma_probe_run, &ns::device_ordinal,                         \
        &ns::host_transfer_count, &ns::elementwise, &ns::sum_squares,                      \
        &ns::elementwise_program, &ns::max_program_steps, &ns::max_program_arrays          \
  }

const GpuRuntime& gpu_runtime(bool emu) {
  static const GpuRuntime kEmu = RNNKERN_GPU_RUNTIME(gpu_emu, "cuda-emu");
  static const GpuRuntime kCuda = RNNKERN_GPU_RUNTIME(gpu_cuda, "cuda");
  return emu ? kEmu : kCuda;
}

}  // namespace rnnkern

// (std::invalid_argument, which the setters throw for a bad name, reaches Python
// as ValueError: pybind11's own translation.)
void register_gpu(py::module_& m) {
  m.def("gpu_persistent_launches", [](const std::string& device) {
        return rt(device).persistent_count();
      }, py::arg("device"),
        "Time loops (forward or backward) the persistent family has run on that GPU backend.");
  m.def("gpu_cluster_launches", [](const std::string& device) {
        return rt(device).cluster_count();
      }, py::arg("device"),
        "Of those, the time loops launched as one thread-block cluster (the cluster's "
        "barrier a step instead of the grid's).");
  m.def("gpu_onchip_exchanges", [](const std::string& device) {
        return rt(device).push_count();
      }, py::arg("device"),
        "Of those, the time loops whose exchange (h forward, dG backward) stayed in shared "
        "memory (one block, or one cluster: each block writes its units' values into every "
        "block's staging buffer instead of every block staging them from memory).");
  m.def("gpu_flag_handoffs", [](const std::string& device) {
        return rt(device).flag_count();
      }, py::arg("device"),
        "Of those, the time loops run with the step-tagged hand-off (plan ',flags': each "
        "block publishes a tag a phase and waits, before staging a chunk, only for the "
        "blocks that wrote it; no grid barrier).");
  m.def("gpu_set_plan", [](const std::string& device, const std::string& plan) {
        rt(device).set_plan(plan);
      }, py::arg("device"), py::arg("plan"),
        "The time-loop family of that GPU backend: 'auto' (the persistent family where it "
        "fits, else a launch a step), 'steps' ('steps:mma' / 'steps:simt': its product on "
        "the tensor cores or FFMA), 'persistent', or a forced partition "
        "'persistent:BLOCKS,THREADS[,KC]', each persistent form optionally followed by "
        "',mma' or ',simt' (the recurrent product), ',cluster', ',grid' or ',flags' (the "
        "step's barrier, or none but a step-tagged hand-off between the blocks) and "
        "',staged' (h and dG staged from memory every step even where one block "
        "or one cluster could keep them on chip). RNNKERN_FORCE_PLAN sets it at first use.");
  m.def("gpu_set_tune", [](const std::string& device, const std::string& mode) {
        rt(device).set_tune(mode);
      }, py::arg("device"), py::arg("mode"),
        "Whether that GPU backend times its automatic plan on first use: 'off' (the default: "
        "the analytic partition), 'quick' (it and its neighbours, a few steps each, ~50 ms) "
        "or 'full' (a wider sweep). RNNKERN_TUNE sets it at first use. A tuned plan is kept "
        "per layer shape for the process.");
  m.def("gpu_tune", [](const std::string& device) { return rt(device).tune(); },
        py::arg("device"), "That GPU backend's tuning mode (see gpu_set_tune).");
  m.def("gpu_tunings", [](const std::string& device) { return rt(device).tuning_count(); },
        py::arg("device"), "Time loops that GPU backend has tuned so far.");
  m.def("gpu_tuned_plans", [](const std::string& device) { return rt(device).tuned_plans(); },
        py::arg("device"),
        "The plans that GPU backend has tuned: 'KEY -> persistent:BLOCKS,THREADS,KC' each "
        "(the forced plan that reproduces it).");
  m.def("gpu_clear_tuned", [](const std::string& device) { rt(device).clear_tuned(); },
        py::arg("device"),
        "Forget that GPU backend's tuned and loaded plans (the next loops tune again).");
  m.def("gpu_load_tuned", [](const std::string& device, const std::vector<std::string>& lines,
                             const std::string& source) {
        rt(device).load_tuned(lines, source);
      }, py::arg("device"), py::arg("lines"), py::arg("source"),
        "Plans tuned earlier ('KEY -> persistent:B,T,KC' lines of a cache file named by "
        "source): used for their keys instead of tuning, where they still fit.");
  m.def("gpu_device_key", [](const std::string& device) { return rt(device).device_key(); },
        py::arg("device"),
        "What that GPU backend's tuned plans are valid for: device name, compute capability "
        "and driver ('cuda-emu' on the emulation).");
  m.def("gpu_host_transfers", [](const std::string& device) {
        return rt(device).host_transfer_count();
      }, py::arg("device"),
        "Copies between the host and that GPU backend's device so far (uploads and downloads "
        "of host arrays by the layer calls, and device-array copies to or from the host).");
  m.def("gpu_plan", [](const std::string& device) {
        return rt(device).plan();
      }, py::arg("device"), "That GPU backend's time-loop plan (see gpu_set_plan).");
  m.def("gpu_set_gemm", [](const std::string& device, const std::string& kind) {
        rt(device).set_gemm(kind);
      }, py::arg("device"), py::arg("kind"),
        "The hoisted GEMMs' kernel of that GPU backend: 'auto' (tensor cores in fp32 accuracy "
        "where the device's fragment API passes its probe), 'simt', 'mma' (the tensor cores, "
        "the C tile chosen: by size, or timed with tuning on) or 'mma:TILE' (that C tile: "
        "32x64, 64x64, 128x64 or 128x128, rows x columns). RNNKERN_GEMM sets it at first use.");
  m.def("gpu_gemm", [](const std::string& device) {
        return rt(device).gemm_kind();
      }, py::arg("device"), "That GPU backend's GEMM kernel choice (see gpu_set_gemm).");
  m.def("gpu_mma_gemms", [](const std::string& device, const std::string& tile) {
        const int t = tile.empty() ? -1 : gemm_tile_index(tile);
        if (!tile.empty() && t < 0)
          throw py::value_error("tile must be one of " + gemm_tile_names() + ", got '" + tile +
                                "'");
        return rt(device).mma_gemm_count(t);
      }, py::arg("device"), py::arg("tile") = "",
        "GEMMs that GPU backend has run on the tensor-core kernel (with that C tile, "
        "e.g. '128x64', where given).");
  using F32 = py::array_t<float, py::array::c_style | py::array::forcecast>;
  m.def("gpu_mma_probe", [](const std::string& device, F32 A, F32 B, F32 C, F32 A16, F32 B16) {
        if (A.size() != 128 || B.size() != 64 || C.size() != 128 || A16.size() != 256 ||
            B16.size() != 128)
          throw py::value_error("gpu_mma_probe: A must have 16x8, B 8x8, C 16x8, A16 16x16 "
                                "and B16 16x8 elements");
        py::array_t<float> D({16, 8}), S(32), D16({16, 8});
        const GpuRuntime& r = rt(device);
        {
          py::gil_scoped_release nogil;
          r.mma_probe_run(A.data(), B.data(), C.data(), D.mutable_data(), S.mutable_data(),
                          A16.data(), B16.data(), D16.mutable_data());
        }
        return py::make_tuple(D, S, D16);
      }, py::arg("device"), py::arg("A"), py::arg("B"), py::arg("C"), py::arg("A16"),
        py::arg("B16"),
        "The tensor-core fragment API's probe: one TF32 m16n8k8 mma D = C + A B (A 16x8, "
        "B 8x8, C 16x8), one BF16 m16n8k16 mma D16 = C + A16 B16 (A16 16x16, B16 16x8; "
        "operands rounded to bfloat16) and two warp shuffles (shfl[l] = (l ^ 1) + 100 (l ^ 16)).");
  m.def("gpu_micro", [](const std::string& device, const std::string& what, int arg, int iters) {
        const GpuRuntime& r = rt(device);
        py::gil_scoped_release nogil;
        return r.micro_bench(what, arg, iters);
      }, py::arg("device"), py::arg("what"), py::arg("arg") = 1, py::arg("iters") = 1000,
        "The cost model's micro-benchmarks: 'mma_tf32_latency' / 'mma_bf16_latency' (cycles "
        "a dependent mma), 'mma_tf32_rate' / 'mma_bf16_rate' (mma a cycle on one SM, arg "
        "warps), 'grid_sync' (us a grid barrier, arg blocks), 'flag_handoff' (cycles a "
        "release/acquire flag takes between two blocks), 'l2_chase' (cycles a dependent "
        "load over arg KiB), 'cluster_sync' (us a cluster barrier after a distributed-"
        "shared-memory store a thread, a cluster of arg blocks), 'dsmem_chase' (cycles a "
        "dependent load from another block's shared memory over arg KiB). On cuda-emu they "
        "run, but its clock counts nanoseconds.");
  m.def("gpu_clear_graphs", []() {
        for (bool emu : {true, false}) gpu_runtime(emu).clear_graphs();
      }, "Drop the GPU backends' cached time-loop graphs (each thread's, at its next loop).");
  m.def("gpu_graph_reinstantiations", [](const std::string& device) {
        return rt(device).graph_reinstantiation_count();
      }, py::arg("device"),
      "Loops whose cached graph the runtime refused to update, instantiated anew instead.");
  m.def("gpu_set_graphs", [](bool on) {
        for (bool emu : {true, false}) gpu_runtime(emu).set_graphs(on);
      }, py::arg("on"),
        "Capture each per-step loop of the GPU backends as a graph and replay it (or not).");
  m.def("gpu_graphs", []() { return gpu_runtime(true).graphs(); },
        "Whether the GPU backends' per-step loops run as captured graphs.");
  m.def("gpu_graph_replays", [](const std::string& device) {
        return rt(device).graph_count();
      }, py::arg("device"), "Per-step loops that GPU backend has run as a captured graph.");
  m.def("gpu_graph_updates", [](const std::string& device) {
        return rt(device).graph_update_count();
      }, py::arg("device"),
      "Of those, the loops that updated a cached graph of theirs instead of instantiating one.");

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
        return rt(d.device).name;
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
        return "DeviceArray(device='" + std::string(rt(d.device).name) +
               "', shape=" + shape_str(s) + ", dtype=" + d.dtype + ")";
      });
  m.def("device_empty", &device_empty, py::arg("device"), py::arg("shape"),
        py::arg("dtype") = "float32", "Uninitialised device memory of that shape and dtype.");
  m.def("device_array", &device_from_host, py::arg("device"), py::arg("array"),
        "A host array copied to the device (bool and uint8 stay uint8; others float32).");
  m.def("device_accessible", [](const std::string& device, uintptr_t p, size_t n) {
        return rt(device).device_accessible(reinterpret_cast<const void*>(p), n);
      }, py::arg("device"), py::arg("address"), py::arg("nbytes"),
        "Whether that memory is the GPU backend's to read and write.");
  m.def("dlpack_view", &dlpack_view, py::arg("capsule"),
        "(address, shape, strides, (code, bits, lanes), (device type, id)) of a dltensor "
        "capsule, which stays unconsumed.");
  // A float32 range [off, off + n) of a DeviceArray of `device`, checked.
  auto span = [](const std::shared_ptr<DeviceArray>& d, int64_t off, int64_t n, Device dev,
                 const char* name) -> float* {
    if (!d) return nullptr;
    if (d->device != dev)
      throw py::value_error(std::string(name) + " is on another device than out");
    if (d->dtype != "float32") throw py::type_error(std::string(name) + " must be float32");
    if (off < 0 || n < 0 || (size_t)(off + n) > d->nbytes / 4)
      throw py::value_error(std::string(name) + ": elements [" + std::to_string(off) + ", " +
                            std::to_string(off + n) + ") are outside its " +
                            std::to_string(d->nbytes / 4));
    return static_cast<float*>(d->ptr) + off;
  };
  m.def("gpu_elementwise", [span](int op, int64_t n, const std::shared_ptr<DeviceArray>& out,
                                  int64_t out_off, const std::shared_ptr<DeviceArray>& a,
                                  int64_t a_off, const std::shared_ptr<DeviceArray>& b,
                                  int64_t b_off, float s0, float s1) {
        if (!out) throw py::value_error("out is required");
        const Device dev = out->device;
        float* o = span(out, out_off, n, dev, "out");
        const float* pa = span(a, a_off, n, dev, "a");
        const float* pb = span(b, b_off, n, dev, "b");
        if (!pa && op != 11) throw py::value_error("a is required but for fill");
        const GpuRuntime& r = rt(dev);
        py::gil_scoped_release nogil;
        r.elementwise(op, n, o, pa, pb, s0, s1, 0);
      }, py::arg("op"), py::arg("n"), py::arg("out"), py::arg("out_offset"), py::arg("a"),
        py::arg("a_offset"), py::arg("b"), py::arg("b_offset"), py::arg("s0") = 0.0f,
        py::arg("s1") = 0.0f,
        "out[o + e] = op(a[ao + e], b[bo + e] if b else s0) for e < n on DeviceArrays of one "
        "device, op a cuda/kernels.cuh EwiseOp: one correctly rounded float32 operation an "
        "element (NumPy's results bitwise), queued on the legacy default stream.");
  m.def("gpu_sum_squares", [span](int64_t n, const std::shared_ptr<DeviceArray>& a,
                                  int64_t a_off) {
        if (!a) throw py::value_error("a is required");
        const float* p = span(a, a_off, n, a->device, "a");
        const GpuRuntime& r = rt(a->device);
        py::gil_scoped_release nogil;
        return r.sum_squares(n, p, 0);
      }, py::arg("n"), py::arg("a"), py::arg("a_offset"),
        "The sum of a[o + e]^2 for e < n, in double and in a fixed order (bitwise the same "
        "every run); waits for the legacy default stream.");
  m.def("gpu_elementwise_program", [span](int64_t n, const py::list& arrays,
                                          const py::list& steps) {
        // arrays: (DeviceArray, offset) pairs of n elements each, one device;
        // steps: (op, out, a, b, s0, s1) tuples, b -1 for the scalar s0
        EwSteps st;
        Device dev = Device::Emu;
        bool first = true;
        std::vector<std::shared_ptr<DeviceArray>> keep;
        for (auto item : arrays) {
          auto pr = py::cast<py::tuple>(item);
          if (pr.size() != 2) throw py::value_error("arrays: (DeviceArray, offset) pairs");
          auto d = py::cast<std::shared_ptr<DeviceArray>>(pr[0]);
          if (!d) throw py::value_error("arrays: a DeviceArray is required");
          if (first) dev = d->device;
          first = false;
          st.arrays.push_back(span(d, py::cast<int64_t>(pr[1]), n, dev, "arrays[]"));
          keep.push_back(d);
        }
        for (auto item : steps) {
          auto t = py::cast<py::tuple>(item);
          if (t.size() != 6) throw py::value_error("steps: (op, out, a, b, s0, s1) tuples");
          st.op.push_back(py::cast<int>(t[0]));
          st.out.push_back(py::cast<int>(t[1]));
          st.a.push_back(py::cast<int>(t[2]));
          st.b.push_back(py::cast<int>(t[3]));
          st.s0.push_back(py::cast<float>(t[4]));
          st.s1.push_back(py::cast<float>(t[5]));
        }
        if (keep.empty()) throw py::value_error("arrays: at least one");
        const GpuRuntime& r = rt(dev);
        py::gil_scoped_release nogil;
        r.elementwise_program(n, st, 0);
      }, py::arg("n"), py::arg("arrays"), py::arg("steps"),
        "Elementwise steps over (DeviceArray, offset) arrays of n elements, one device, "
        "in one launch on the legacy default stream: step (op, out, a, b, s0, s1) is "
        "arrays[out][e] = op(arrays[a][e], arrays[b][e] if b >= 0 else s0), in order for "
        "each element (bitwise gpu_elementwise's one step at a time).");
  m.def("gpu_program_limits", [](const std::string& device) {
        return py::make_tuple(rt(device).max_program_steps(), rt(device).max_program_arrays());
      }, py::arg("device"), "(steps, arrays) a gpu_elementwise_program may have.");
  m.def("gpu_download", [span](const std::shared_ptr<DeviceArray>& a, int64_t a_off,
                               int64_t n) {
        if (!a) throw py::value_error("a is required");
        const float* p = span(a, a_off, n, a->device, "a");
        py::array_t<float> out(n);
        if (n) {
          const GpuRuntime& r = rt(a->device);
          float* dst = out.mutable_data();
          py::gil_scoped_release nogil;
          r.device_copy(dst, p, (size_t)n * 4, kToHost);
        }
        return out;
      }, py::arg("a"), py::arg("a_offset"), py::arg("n"),
        "A host copy of the float32 elements [o, o + n) of a DeviceArray (1-D).");
  m.def("cuda_stream_synchronize", [](uintptr_t stream) {
        py::gil_scoped_release nogil;
        gpu_cuda::stream_synchronize(stream);
      }, py::arg("stream"), "Wait for a CUDA stream's work (its handle as an int).");
  m.def("cuda_pool_bytes", &gpu_cuda::pool_bytes, "Device memory the cuda backend keeps for reuse.");
  m.def("cuda_free_pool", &gpu_cuda::free_pool, "Free the device memory kept for reuse.");
}
