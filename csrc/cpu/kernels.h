// rnnkern — the CPU kernel registry: one CpuKernels entry per compiled ISA.
// A new ISA is one translation unit defining <isa>::kKernels plus one line in
// dispatch.cc; tests and the benchmark then pick it up through cpu_isas().
#pragma once

#include <string>
#include <vector>

#include "rnnkern/shapes.h"

namespace rnnkern {
namespace scalar { extern const CpuKernels kKernels; }
#if defined(RNNKERN_HAVE_X86)
namespace avx2 { extern const CpuKernels kKernels; }
namespace avx512 { extern const CpuKernels kKernels; }
#endif

// ISAs compiled into this build AND supported by this CPU, widest first.
const std::vector<std::string>& cpu_isas();
// The kernels of a listed ISA; throws std::invalid_argument otherwise.
const CpuKernels& cpu_kernels(const std::string& isa);
// Set in a child process forked after OpenMP use: kernels then run on one
// thread (libgomp's pool does not survive fork()).
bool in_forked_child();
}  // namespace rnnkern
