// rnnkern — the `scalar` CPU backend: the fused kernels of rnn_cpu-inl.h over
// the portable vector type, compiled with no ISA flags (runs on any x86-64,
// and builds on any other architecture).
#include <algorithm>
#include <cstring>
#include <vector>
#if defined(_OPENMP)
#include <omp.h>
#endif

#include "kernels.h"
#include "rnnkern/cells.h"

namespace rnnkern {
namespace scalar {
#include "vec_scalar.h"
#include "gemm-inl.h"
#include "rnn_cpu-inl.h"

const CpuKernels kKernels = {"scalar", rnn_forward, rnn_backward, gemm};
}  // namespace scalar
}  // namespace rnnkern
