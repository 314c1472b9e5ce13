// rnnkern — the shape legend and the plain parameter structs, stated once.
//
//   T  timesteps     N  batch     C  input features     H  units
//   G  gates: SimpleRNN 1; LSTM 4, order i, f, c, o; GRU 3, order z, r, h
//
// Layouts (row-major, Keras' weight layout):
//   x     [N,T,C]    batch-major input, as the user gives it
//   W     [C,G*H]    kernel
//   U     [H,G*H]    recurrent_kernel
//   b     [G*H]      bias; GRU reset_after: [2,G*H], row 0 input, row 1 recurrent
//   y     [N,T,H]    outputs in processing order (go_backwards: step s reads x[:,T-1-s])
//   mask  [N,T]      uint8, by the original time index of x
// Inside, the kernels work TIME-MAJOR: x is copied to [T,N,C] once, and
// everything kept for BPTT (hprev [T,N,H], slots [T,N,S*H]) is indexed by the
// ORIGINAL time index t, so each step's rows are one contiguous block and the
// hoisted GEMMs over all timesteps see plain [T*N, .] matrices.
#pragma once

#include "rnnkern/common.h"

namespace rnnkern {

enum class Cell : int { SimpleRNN = 0, LSTM = 1, GRU = 2 };
enum class Act : int { Tanh = 0, Relu = 1, Sigmoid = 2, HardSigmoid = 3, Linear = 4 };

RNNKERN_HD constexpr int num_gates(Cell c) {
  return c == Cell::SimpleRNN ? 1 : (c == Cell::LSTM ? 4 : 3);
}

// Floats of saved activations per (n, t, unit) in training mode ("slots"):
//   SimpleRNN  h                          1
//   LSTM       i f g o c_prev act(c)      6
//   GRU r.a.   z r hh (h_prev U_h + b_rh)  4
//   GRU r.b.   z r hh                     3
// (which slot holds which: rnnkern::Slots in cells.h)
RNNKERN_HD constexpr int num_slots(Cell c, bool reset_after) {
  switch (c) {
    case Cell::SimpleRNN: return 1;
    case Cell::LSTM: return 6;
    default: return reset_after ? 4 : 3;
  }
}

struct RnnConfig {
  Cell cell = Cell::LSTM;
  Act act = Act::Tanh;         // activation
  Act ract = Act::Sigmoid;     // recurrent_activation (LSTM, GRU)
  bool reset_after = true;     // GRU only
  bool go_backwards = false;
  bool return_sequences = true;
  bool training = true;
  int64_t T = 0, N = 0, C = 0, H = 0;
  int threads = 1;
};

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

struct ForwardArgs {
  const float* x = nullptr;      // [N,T,C]
  const float* W = nullptr;      // [C,G*H]
  const float* U = nullptr;      // [H,G*H]
  const float* b = nullptr;      // [G*H] or [2,G*H] (GRU reset_after); may be null
  const float* h0 = nullptr;     // [N,H]
  const float* c0 = nullptr;     // [N,H] LSTM
  const uint8_t* mask = nullptr; // [N,T] or null
  float* y = nullptr;            // [N,T,H] (return_sequences) or [N,H]
  float* hT = nullptr;           // [N,H]
  float* cT = nullptr;           // [N,H] LSTM
  // training only (null otherwise):
  float* hprev = nullptr;        // [T,N,H]   state before the step that read x[:,t]
  float* slots = nullptr;        // [T,N,S*H] saved activations, S = num_slots()
  // optional: U packed earlier (kPackForward, kPackForward2), W (kPackInput,
  // kPackInputFused); null = pack now
  const float* packed = nullptr;
  const float* packed2 = nullptr;
  const float* packed_w = nullptr;
  const float* packed_wf = nullptr;
  // optional dropout masks, one per gate, fixed over all timesteps (Keras'
  // implementation=1 cells): gate g reads x ⊙ input_masks[g] and
  // h_prev ⊙ recurrent_masks[g]; null = none
  const float* input_masks = nullptr;      // [G,N,C]
  const float* recurrent_masks = nullptr;  // [G,N,H]
};

struct BackwardArgs {
  const float* x = nullptr;      // [N,T,C]
  const float* W = nullptr;      // [C,G*H]
  const float* U = nullptr;      // [H,G*H]
  const uint8_t* mask = nullptr; // [N,T] or null
  const float* hprev = nullptr;  // [T,N,H]
  const float* slots = nullptr;  // [T,N,S*H]
  const float* dy = nullptr;     // like y
  const float* dhT = nullptr;    // [N,H]
  const float* dcT = nullptr;    // [N,H] LSTM
  float* dx = nullptr;           // [N,T,C]
  float* dW = nullptr;           // [C,G*H]
  float* dU = nullptr;           // [H,G*H]
  float* db = nullptr;           // like b (null without bias)
  float* dh0 = nullptr;          // [N,H]
  float* dc0 = nullptr;          // [N,H] LSTM
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

}  // namespace rnnkern
