// rnnkern — the pointwise part of each cell, forward and backward, written once
// as templates over the value type V (float: scalar CPU path and CUDA thread
// body; SIMD vector types: the AVX paths). Keras 3's equations:
//
//   SimpleRNN  h = act(x W + b + h_prev U)
//   LSTM       [i f g o] = x W + b + h_prev U;  i,f,o = ract(.), g = act(.)
//              c = f c_prev + i g;  h = o act(c)
//   GRU        z = ract(x W_z + b_z + h_prev U_z),  r likewise
//              reset_after:  hh = act(x W_h + b_in_h + r (h_prev U_h + b_rec_h))
//              reset_before: hh = act(x W_h + b_h + (r h_prev) U_h)
//              h = z h_prev + (1 - z) hh
//
// What a kernel does around these functions: the products (x W, h_prev U) and
// their sums, the loads and stores. What it takes from here: every
// nonlinearity and state update, the layout of the activations it saves for
// BPTT (Slots), the bias folding, and the masked-step carry.
// Backward functions take the saved activations (derivatives are taken from
// activation OUTPUTS, activations.h) and return d(pre-activation).
//
// A V provides + - * and V(float), and the v_* functions of activations.h
// (found by overload: float here, Vec in csrc/cpu/vec_*.h).
// Tested with V = float by tests/test_cells_float.py (through
// _core._cell_step_float), with the SIMD types by tests/test_kernels.py.
#pragma once

#include "rnnkern/activations.h"

namespace rnnkern {

// ---------------------------------------------------------------- slots
// The activations kept for BPTT ("slots", [T,N,S*H]: slot q of unit u of row
// (t, n) at q*H + u); h_prev is kept apart ([T,N,H]). The slot of gate g's
// activation is slot g: the CPU forward writes the pre-activations of gate g
// there first and overwrites them in place (see rnn_cpu-inl.h).
// reset_after only matters for GRU.
template <Cell C, bool RESET_AFTER = false>
struct Slots;
template <>
struct Slots<Cell::SimpleRNN, false> {
  static constexpr int h = 0;  // h = act(pre)
  static constexpr int count = 1;
};
template <>
struct Slots<Cell::LSTM, false> {
  static constexpr int i = 0, f = 1, g = 2, o = 3;
  static constexpr int c_prev = 4;  // the cell state the step read
  static constexpr int ac = 5;      // act(c) of the new c
  static constexpr int count = 6;
};
template <>
struct Slots<Cell::GRU, true> {
  static constexpr int z = 0, r = 1, hh = 2;
  static constexpr int inner_h = 3;  // h_prev U_h + b_rec_h, which r multiplied
  static constexpr int count = 4;
};
template <>
struct Slots<Cell::GRU, false> {
  static constexpr int z = 0, r = 1, hh = 2;
  static constexpr int count = 3;
};
static_assert(Slots<Cell::SimpleRNN>::count == num_slots(Cell::SimpleRNN, false) &&
                  Slots<Cell::LSTM>::count == num_slots(Cell::LSTM, false) &&
                  Slots<Cell::GRU, true>::count == num_slots(Cell::GRU, true) &&
                  Slots<Cell::GRU, false>::count == num_slots(Cell::GRU, false),
              "shapes.h's num_slots must count the slots described here");

// ---------------------------------------------------------------- step results

template <class V>
struct LstmAct { V i, f, g, o, c, ac, h; };

template <class V>
struct LstmGrad { V di, df, dg, do_, dc_prev; };

template <class V>
struct GruAct { V z, r, hh; };

template <class V>
struct GruGates { V z, r; };

// d(pre-activation) of z, r and hh, and dh_direct: the part of dh_prev that
// does not go through U (the z h_prev term of the blend).
template <class V>
struct GruGrad { V dz, dr, dhh, dh_direct; };

// GRU reset_before, second phase: dr (d pre-activation of r) and the part of
// dh_prev that goes through r * h_prev.
template <class V>
struct GruResetGrad { V dr, dh_rh; };

namespace {

// ---------------------------------------------------------------- bias folding
// The input projection P = x W + b_P carries every bias that is simply added to
// a gate's pre-activation: b itself and, for GRU reset_after, the recurrent
// bias of z and r too (b: [2,G*H], row 1 recurrent). The recurrent bias of h
// stays with h_prev U_h, since r multiplies their sum (inner_h).
// j in [0, G*H); b: [G*H] or [2,G*H] (GRU reset_after).
RNNKERN_HD float projection_bias(Cell c, bool reset_after, int64_t H, const float* b,
                                 int64_t j) {
  if (c == Cell::GRU && reset_after && j < 2 * H) return b[j] + b[3 * H + j];
  return b[j];
}

// GRU reset_after: b_rec_h [H], added to h_prev U_h (inner_h); null otherwise.
RNNKERN_HD const float* inner_bias(Cell c, bool reset_after, int64_t H, const float* b) {
  return c == Cell::GRU && reset_after && b ? b + 3 * H + 2 * H : nullptr;
}

// ---------------------------------------------------------------- masks
// Keras 3's masked step (rnnkern/reference.py): where the step's mask m is
// false the states are carried (h, and c for LSTM); the output is the state
// once any step so far was unmasked (`seen`), zeros before. (The CPU kernel
// branches per row, the mask being uniform over a vector's lanes: a masked
// row skips the cell and carries h_prev.)
template <class V>
RNNKERN_HD V mask_carry(bool m, V v_new, V v_prev) { return m ? v_new : v_prev; }

template <class V>
RNNKERN_HD V mask_output(bool seen, V h) { return seen ? h : V(0.0f); }

// ---------------------------------------------------------------- SimpleRNN

// pre = x W + b + h_prev U.
template <class V>
RNNKERN_HD V simple_forward(Act a, V pre) { return activate(a, pre); }

// dh: total gradient reaching h; y: the saved h. Returns d(pre).
template <class V>
RNNKERN_HD V simple_backward(Act a, V dh, V y) { return dh * activate_grad(a, y); }

// ---------------------------------------------------------------- LSTM

// p*: pre-activations of the gates (x W + b + h_prev U).
template <class V>
RNNKERN_HD LstmAct<V> lstm_forward(Act a, Act ra, V pi, V pf, V pg, V po, V c_prev) {
  LstmAct<V> s;
  s.i = activate(ra, pi);
  s.f = activate(ra, pf);
  s.g = activate(a, pg);
  s.o = activate(ra, po);
  s.c = s.f * c_prev + s.i * s.g;
  s.ac = activate(a, s.c);
  s.h = s.o * s.ac;
  return s;
}

// dh: total gradient reaching h; dc: gradient reaching c from the next step.
template <class V>
RNNKERN_HD LstmGrad<V> lstm_backward(Act a, Act ra, V dh, V dc, V i, V f, V g, V o,
                                     V c_prev, V ac) {
  LstmGrad<V> d;
  V dct = dc + dh * o * activate_grad(a, ac);
  d.do_ = dh * ac * activate_grad(ra, o);
  d.di = dct * g * activate_grad(ra, i);
  d.df = dct * c_prev * activate_grad(ra, f);
  d.dg = dct * i * activate_grad(a, g);
  d.dc_prev = dct * f;
  return d;
}

// ---------------------------------------------------------------- GRU

// h = z h_prev + (1 - z) hh.
template <class V>
RNNKERN_HD V gru_blend(V z, V h_prev, V hh) { return z * h_prev + (V(1.0f) - z) * hh; }

// reset_after. x*: the input projection including the input bias; i*: the
// recurrent product including the recurrent bias (how the bias is split
// between the two does not matter for z and r, see projection_bias; ih is
// inner_h, which r multiplies).
template <class V>
RNNKERN_HD GruAct<V> gru_forward_reset_after(Act a, Act ra, V xz, V xr, V xh, V iz, V ir,
                                             V ih) {
  GruAct<V> s;
  s.z = activate(ra, xz + iz);
  s.r = activate(ra, xr + ir);
  s.hh = activate(a, xh + s.r * ih);
  return s;
}

// reset_before, first phase: z and r from their pre-activations; the kernel
// then forms rh = gru_reset_state(r, h_prev) and its product with U_h.
template <class V>
RNNKERN_HD GruGates<V> gru_gates_reset_before(Act ra, V pz, V pr) {
  return GruGates<V>{activate(ra, pz), activate(ra, pr)};
}

// reset_before: what U_h multiplies (h_prev as the h block reads it: times
// its dropout mask, when there is one).
template <class V>
RNNKERN_HD V gru_reset_state(V r, V h_prev) { return r * h_prev; }

// reset_before, second phase: xh = x W_h + b_h, rhU = (r h_prev) U_h.
template <class V>
RNNKERN_HD V gru_candidate_reset_before(Act a, V xh, V rhU) { return activate(a, xh + rhU); }

// reset_after: inner_h = h_prev U_h + b_rec_h was saved; dr uses it. The
// recurrent gradient of the h block is gru_inner_grad(dhh, r).
template <class V>
RNNKERN_HD GruGrad<V> gru_backward_reset_after(Act a, Act ra, V dh, V z, V r, V hh,
                                               V inner_h, V h_prev) {
  GruGrad<V> d;
  d.dz = dh * (h_prev - hh) * activate_grad(ra, z);
  d.dhh = dh * (V(1.0f) - z) * activate_grad(a, hh);
  d.dr = d.dhh * inner_h * activate_grad(ra, r);
  d.dh_direct = dh * z;
  return d;
}

// reset_after: d(inner_h), the gradient of the h block as h_prev U_h + b_rec_h
// sees it (x W_h + b_in_h sees dhh itself).
template <class V>
RNNKERN_HD V gru_inner_grad(V dhh, V r) { return dhh * r; }

// reset_before, first half: dz and d(hh pre-activation); dr needs d(r h_prev)
// = dhh U_h^T, a product over all units, so it comes in a second phase
// (gru_backward_reset_gate).
template <class V>
RNNKERN_HD GruGrad<V> gru_backward_reset_before(Act a, Act ra, V dh, V z, V hh, V h_prev) {
  GruGrad<V> d;
  d.dz = dh * (h_prev - hh) * activate_grad(ra, z);
  d.dhh = dh * (V(1.0f) - z) * activate_grad(a, hh);
  d.dr = V(0.0f);
  d.dh_direct = dh * z;
  return d;
}

// reset_before, second half: drh = d(r h_prev) = dhh U_h^T; h_prev as the h
// block read it (with its dropout mask, if any). dh_rh is d(h_prev) through
// r h_prev, before that mask (the caller multiplies it in).
template <class V>
RNNKERN_HD GruResetGrad<V> gru_backward_reset_gate(Act ra, V drh, V r, V h_prev) {
  return GruResetGrad<V>{drh * h_prev * activate_grad(ra, r), drh * r};
}

}  // namespace
}  // namespace rnnkern
