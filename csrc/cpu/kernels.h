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
// Scratch memory reused across kernel calls on the same thread, so a call does
// not page-fault and zero fresh memory for its temporaries (that cost 5-10% of
// a call here). Uninitialised, 64-byte aligned; one buffer per slot. Buffers
// over kScratchKeepBytes are freed by scratch_trim() at the end of each call.
enum ScratchSlot {
  kScratchXt, kScratchP, kScratchDG, kScratchDGr, kScratchDxt, kScratchRH, kScratchPanels,
  kScratchPanels2, kScratchGemmA, kScratchGemmB, kScratchYt, kScratchDW, kScratchWp, kScratchDU,
  kScratchMask,
  kScratchSlots  // the number of slots
};
constexpr size_t kScratchKeepBytes = size_t(64) << 20;
float* scratch(int slot, size_t floats);
void scratch_trim();  // also ends the call's accounting (scratch_last_call_bytes)
// Temporary memory the calling thread's last kernel call asked for (every slot
// at its largest request), bytes: what a call needs beyond its inputs, outputs
// and workspace.
size_t scratch_last_call_bytes();
void scratch_release();  // frees every buffer of the calling thread

// Set in a child process forked after OpenMP use: kernels then run on one
// thread (libgomp's pool does not survive fork()).
bool in_forked_child();
}  // namespace rnnkern
