// rnnkern._core — what the bindings' files share: each file's registration
// function, called by module.cc, and the backend lookups that raise Python's
// exceptions.
//   bind_layer.cc    the kernel table: backends, forward, backward, pack, workspace
//   bind_ops.cc      the layers' and adapters' helpers (embedding_grad, same_bytes)
//   bind_testing.cc  _core.testing: the raw kernels and the float cell step, for
//                    the tests and the benchmark
//   gpu_bindings.cc  the GPU backends' device arrays, plans, graphs and counters
#pragma once

#include <pybind11/pybind11.h>

#include <string>

#include "rnnkern/backend.h"

namespace rnnkern {
struct CpuKernels;

namespace bindings {

void init_layer(pybind11::module_& m);
void init_ops(pybind11::module_& m);
void init_testing(pybind11::module_& m);

// A backend looked up by name (a ValueError naming the usable ones otherwise).
const Backend& backend_named(const std::string& name);
// A CPU ISA's raw kernels (gemm, activate, peak_gflops); a ValueError otherwise.
const CpuKernels& raw_kernels(const std::string& isa);

}  // namespace bindings
}  // namespace rnnkern

void register_gpu(pybind11::module_& m);  // gpu_bindings.cc
