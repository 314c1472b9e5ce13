// rnnkern — the CPU kernels' own interface: their parameter structs, one
// CpuKernels entry per compiled ISA, the thread-local scratch. A new ISA is one
// translation unit rnn_cpu_<isa>.cc defining <isa>::kKernels (built with its own
// flags: one line in CMakeLists.txt), its declaration below, and one row of
// kCpuIsas in dispatch.cc with its cpuid check. That table is the only list of
// the ISAs: the backend table's CPU rows (backend_cpu.cc), _core.cpu_isa_order()
// and through it rnnkern.backends, the tests and the benchmark follow from it.
#pragma once

#include <string>
#include <vector>

#include "rnnkern/backend.h"
#include "rnnkern/bf16.h"
#include "rnnkern/shapes.h"

namespace rnnkern {

// The recurrent weights packed the way one ISA's step kernels read them.
// Packing is done per call unless the caller passes parts packed earlier
// (CpuKernels::pack) for weights that have not changed since. Parts a cell
// does not use have 0 floats.
enum PackPart : int {
  kPackForward = 0,   // U panels of the forward step (GRU r.b.: its z, r gates)
  kPackForward2 = 1,  // GRU reset_before: the U_h panels of the second phase
  kPackBackward = 2,  // U^T panels of the backward product (GRU r.b.: z, r rows)
  kPackBackward2 = 3, // GRU reset_before: the U_h^T panels of phase A2
  kPackInput = 4,     // W [C,G*H] as the input projection's GEMM reads it
  kPackInputFused = 5,  // W as the step reads it when the projection is fused
  kNumPackParts = 6
};

// A forward's arguments: the layer's arrays as every backend takes them
// (LayerArgs, rnnkern/backend.h: x, W, U, b, h0, c0, mask, the dropout masks, y,
// hT, cT) and what the CPU kernels add.
struct ForwardArgs : LayerArgs {
  // training only (null otherwise):
  float* hprev = nullptr;        // [T,N,H]   state before the step that read x[:,t]
  float* slots = nullptr;        // [T,N,S*H] saved activations, S = num_slots()
  // optional: U packed earlier (kPackForward, kPackForward2), W (kPackInput,
  // kPackInputFused); null = pack now
  const float* packed = nullptr;
  const float* packed2 = nullptr;
  const float* packed_w = nullptr;
  const float* packed_wf = nullptr;
  // the dropout masks (LayerArgs' input_masks, recurrent_masks) are one per gate,
  // fixed over all timesteps (Keras' implementation=1 cells): gate g reads
  // x ⊙ input_masks[g] and h_prev ⊙ recurrent_masks[g]; null = none
};

// A backward's arguments: the gradients as every backend takes them (GradArgs:
// dy, dhT, dcT in; dx, dW, dU, db, dh0, dc0 out) and what the CPU kernels read
// again of the forward.
struct BackwardArgs : GradArgs {
  const float* x = nullptr;      // [N,T,C]
  const float* W = nullptr;      // [C,G*H]
  const float* U = nullptr;      // [H,G*H]
  const uint8_t* mask = nullptr; // [N,T] or null
  const float* hprev = nullptr;  // [T,N,H]
  const float* slots = nullptr;  // [T,N,S*H]
  // optional: U packed earlier (kPackBackward, kPackBackward2); null = pack now
  const float* packed = nullptr;
  const float* packed2 = nullptr;
  // the forward's dropout masks (see ForwardArgs), or null
  const float* input_masks = nullptr;      // [G,N,C]
  const float* recurrent_masks = nullptr;  // [G,N,H]
};

// One entry of the kernel table: the forward and backward of one ISA.
struct CpuKernels {
  const char* isa;
  void (*forward)(const RnnConfig&, const ForwardArgs&);
  void (*backward)(const RnnConfig&, const BackwardArgs&);
  // C[M,N] = A[M,K] B[K,N] (+ C when accumulate), with element strides
  // A(i,k) = a[i*sam + k*sak], B(k,j) = b[k*sbk + j*sbn]; used by tests and bench.
  void (*gemm)(int64_t M, int64_t N, int64_t K, const float* a, int64_t sam, int64_t sak,
               const float* b, int64_t sbk, int64_t sbn, float* c, int64_t ldc,
               bool accumulate, int threads);
  // y[i] = act(x[i]) with this ISA's vectorised nonlinearity (accuracy tests).
  void (*activate)(Act act, const float* x, float* y, int64_t n);
  // Floats of one PackPart for this config (only cell, reset_after, H and,
  // for the kPackInput parts, C matter), and the packing into it (64-byte
  // aligned `out`) of U [H,G*H], or of W [C,G*H] for the kPackInput parts.
  int64_t (*packed_floats)(const RnnConfig&, int part);
  void (*pack)(const RnnConfig&, const float* weights, int part, float* out);
  // fp32 FMA throughput of this ISA on one thread, GFLOP/s, measured for ~seconds.
  double (*peak_gflops)(double seconds);
};

// Each ISA's entry, defined in its translation unit (declared here so that the
// definitions have external linkage), listed in dispatch.cc's kCpuIsas.
namespace scalar { extern const CpuKernels kKernels; }
#if defined(RNNKERN_HAVE_X86)
namespace avx2 { extern const CpuKernels kKernels; }
namespace avx512 { extern const CpuKernels kKernels; }
#endif

// ISAs compiled into this build, widest first (kCpuIsas' order).
const std::vector<std::string>& compiled_cpu_isas();
// Of those, the ones this CPU supports (cpuid, checked once), widest first, and
// their kernels in the same order.
const std::vector<std::string>& cpu_isas();
const std::vector<const CpuKernels*>& cpu_isa_kernels();
// Scratch memory reused across kernel calls on the same thread, so a call does
// not page-fault and zero fresh memory for its temporaries (that cost 5-10% of
// a call here). Uninitialised, 64-byte aligned; one buffer per slot. Buffers
// over kScratchKeepBytes are freed by scratch_trim() at the end of each call.
enum ScratchSlot {
  kScratchXt, kScratchP, kScratchDG, kScratchDGr, kScratchDxt, kScratchRH, kScratchPanels,
  kScratchPanels2, kScratchGemmA, kScratchGemmB, kScratchYt, kScratchDW, kScratchWp, kScratchDU,
  kScratchMask, kScratchHb, kScratchDGb, kScratchDGrb,
  kScratchSlots  // the number of slots
};
constexpr size_t kScratchKeepBytes = size_t(64) << 20;
float* scratch(int slot, size_t floats);
void scratch_trim();  // also ends the call's accounting (scratch_last_call_bytes)
// Temporary memory the calling thread's last kernel call asked for (every slot
// at its largest request), bytes: what a call needs beyond its inputs, outputs
// and workspace.
size_t scratch_last_call_bytes();
// Frees the calling thread's scratch (what scratch_trim keeps between calls, up to
// kScratchKeepBytes a slot); returns the bytes freed (rnnkern.release_memory).
size_t scratch_release();
// Frees the CPU workspaces' recycled blocks (backend_cpu.cc); returns the bytes.
size_t cpu_pool_release();

// Whether this CPU has AVX512_BF16 (cpuid, checked once): precision bf16's
// native products in the avx512 kernels (rnn_cpu_avx512.cc).
bool cpu_has_avx512_bf16();

// Set in a child process forked after the kernels' threads ran: kernels there run
// on one thread (parallel.cc would make new workers at the child's first region;
// one thread keeps a forked child, often one of many, from oversubscribing).
bool in_forked_child();
// The threads a CPU kernel call runs on when `requested` are asked for: at least
// one, and one in a forked child.
int cpu_threads(int requested);
}  // namespace rnnkern
