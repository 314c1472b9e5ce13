// rnnkern — the `scalar` CPU backend: the fused kernels of rnn_cpu-inl.h over
// vec_scalar.h, in namespace rnnkern::scalar, compiled with no ISA flags (runs on any x86-64, and builds on any other architecture).
// Selected at run time only where the CPU has the ISA (dispatch.cc).
#include <algorithm>
#include <chrono>
#include <cstring>
#include <vector>

#include "kernels.h"
#include "parallel.h"
#include "rnnkern/cells.h"
#include "rnnkern/dispatch.h"

namespace rnnkern {
namespace scalar {
#include "vec_scalar.h"
#include "gemm-inl.h"
#include "rnn_cpu-inl.h"
#include "peak-inl.h"

const CpuKernels kKernels = {"scalar", rnn_forward, rnn_backward, gemm_entry, activate_array,
                               detail::packed_floats, detail::pack_weights,
                               peak_gflops};
}  // namespace scalar
}  // namespace rnnkern
