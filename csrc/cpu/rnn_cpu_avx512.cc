// rnnkern — the `avx512` CPU backend: the fused kernels of rnn_cpu-inl.h over
// vec_avx512.h, in namespace rnnkern::avx512, compiled with -mavx512f -mavx512dq -mavx512bw -mavx512vl -mavx2 -mfma
// and -mavx512bf16 for precision bf16's products (RNNKERN_BF16_NATIVE), which
// run only where cpu_has_avx512_bf16() (no other code uses those instructions).
// Selected at run time only where the CPU has the ISA (dispatch.cc).
#include <algorithm>
#include <chrono>
#include <cstring>
#include <vector>

#include "kernels.h"
#include "parallel.h"
#include "rnnkern/cells.h"
#include "rnnkern/dispatch.h"

#define RNNKERN_BF16_NATIVE 1

namespace rnnkern {
namespace avx512 {
#include "vec_avx512.h"
#include "gemm-inl.h"
#include "rnn_cpu-inl.h"
#include "peak-inl.h"

const CpuKernels kKernels = {"avx512", rnn_forward, rnn_backward, gemm_entry, activate_array,
                               detail::packed_floats, detail::pack_weights,
                               peak_gflops};
}  // namespace avx512
}  // namespace rnnkern
