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
// Backward functions take the saved activations and return d(pre-activation).
#pragma once

#include "rnnkern/activations.h"

namespace rnnkern {
namespace {

template <class V>
struct LstmAct { V i, f, g, o, c, ac, h; };

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

template <class V>
struct LstmGrad { V di, df, dg, do_, dc_prev; };

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

template <class V>
RNNKERN_HD V gru_blend(V z, V h_prev, V hh) { return z * h_prev + (V(1.0f) - z) * hh; }

template <class V>
struct GruGrad { V dz, dr, dhh, dh_direct; };

// reset_after: inner_h = h_prev U_h + b_rec_h was saved; dr uses it. The
// recurrent gradient of the h block is dhh * r (the caller forms it).
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

// reset_before, first half: dz and d(hh pre-activation); dr needs d(r h_prev)
// = dhh U_h^T, a product over all units, so it comes in a second phase.
template <class V>
RNNKERN_HD GruGrad<V> gru_backward_reset_before(Act a, Act ra, V dh, V z, V hh, V h_prev) {
  GruGrad<V> d;
  d.dz = dh * (h_prev - hh) * activate_grad(ra, z);
  d.dhh = dh * (V(1.0f) - z) * activate_grad(a, hh);
  d.dr = V(0.0f);
  d.dh_direct = dh * z;
  return d;
}

}  // namespace
}  // namespace rnnkern
