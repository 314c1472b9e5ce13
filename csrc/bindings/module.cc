// rnnkern._core — the module: registration only, one call per file by purpose
// (bindings.h lists them), as haste's frameworks/pytorch/support.cc does.
#include <pybind11/pybind11.h>

#include "bindings.h"

PYBIND11_MODULE(_core, m) {
  m.doc() = "rnnkern compiled kernels (see rnnkern.ops for the contract)";
  rnnkern::bindings::init_layer(m);
  rnnkern::bindings::init_ops(m);
  register_gpu(m);
  pybind11::module_ testing =
      m.def_submodule("testing", "Entries for the tests and the benchmark (not the layers' API).");
  rnnkern::bindings::init_testing(testing);
}
