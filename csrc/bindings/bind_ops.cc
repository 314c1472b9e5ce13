// rnnkern._core — the layers' and adapters' small helpers beside the kernel
// table: embedding_grad (rnnkern.layers.Embedding's backward) and same_bytes
// (rnnkern.torch's check that cached weights are still current).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>

#include "bindings.h"
#include "checks.h"

namespace py = pybind11;

namespace rnnkern {
namespace bindings {
namespace {

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

// Whether two C-contiguous buffers hold the same bytes: a memcmp, without the GIL.
bool same_bytes(py::buffer a, py::buffer b) {
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
}

}  // namespace

void init_ops(py::module_& m) {
  m.def("embedding_grad", &embedding_grad, py::arg("ids"), py::arg("dy"), py::arg("vocab"),
        "dE[vocab, dim]: the rows of dy summed by id (float32, ids in range).");
  m.def("same_bytes", &same_bytes, py::arg("a"), py::arg("b"),
        "Whether two C-contiguous buffers hold the same bytes.");
}

}  // namespace bindings
}  // namespace rnnkern
