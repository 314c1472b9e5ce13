// rnnkern — the `avx2` CPU backend: the fused kernels of rnn_cpu-inl.h over
// vec_avx2.h, in namespace rnnkern::avx2, compiled with -mavx2 -mfma.
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
namespace avx2 {
#include "vec_avx2.h"
#include "gemm-inl.h"
#include "rnn_cpu-inl.h"
#include "peak-inl.h"

const CpuKernels kKernels = {"avx2", rnn_forward, rnn_backward, gemm_entry, activate_array,
                               detail::packed_floats, detail::pack_weights,
                               peak_gflops};
}  // namespace avx2
}  // namespace rnnkern
