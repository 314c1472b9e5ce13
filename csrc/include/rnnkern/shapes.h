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
// The arithmetic a call asks for (a layer's `precision`): FP32 the default (FFMA,
// or an exact 3xTF32 split on tensor cores); TF32 opt-in (one TF32 product, as
// PyTorch's cuDNN default; the CPU ISAs, which have no TF32, run it as FP32);
// BF16 the kernel and recurrent kernel rounded to bfloat16 once a call (to
// nearest even), sums, states and gradients fp32; the CPU backends round every
// product's other operand (x_t, h_prev) too, as their bf16 dot products need
// (csrc/include/rnnkern/bf16.h). Every backend runs every precision.
enum class Precision : int { FP32 = 0, TF32 = 1, BF16 = 2 };

RNNKERN_HD constexpr int num_gates(Cell c) {
  return c == Cell::SimpleRNN ? 1 : (c == Cell::LSTM ? 4 : 3);
}

// Floats of saved activations per (n, t, unit) in training mode ("slots") on the
// CPU backends:
//   SimpleRNN  h                          1
//   LSTM       i f g o c_prev act(c)      6
//   GRU r.a.   z r hh (h_prev U_h + b_rh)  4
//   GRU r.b.   z r hh                     3
// (which slot holds which: rnnkern::Slots in cells.h). The GPU backends keep
// their own layout, slot-major [S, T, N, H] (cuda/kernels.cuh's header): SimpleRNN
// a | LSTM i f g o act(c) (c_prev is the kept state) | GRU r.a. z r hh inner_h |
// GRU r.b. z r hh rh (rh = r ⊙ h_prev ⊙ m_h, what multiplies U_h).
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
  Precision precision = Precision::FP32;
  int64_t T = 0, N = 0, C = 0, H = 0;
  int threads = 1;
};

}  // namespace rnnkern
