// rnnkern — nonlinearities and their derivatives, written once for any value type.
//
// A value type V (float here; one SIMD vector type per ISA in csrc/cpu/vec_*.h)
// provides, found by overload/ADL:  v_tanh v_sigmoid v_relu v_hard_sigmoid
// v_pos (1 where y > 0 else 0) and v_open01 (1 where 0 < y < 1 else 0).
// Derivatives are taken from the activation OUTPUT y, so BPTT never recomputes
// a nonlinearity. NaN propagates: relu and hard_sigmoid never clamp a NaN.
// Keras 3: hard_sigmoid(x) = clip(x/6 + 1/2, 0, 1).
#pragma once

#include <cmath>

#include "rnnkern/shapes.h"

namespace rnnkern {

static RNNKERN_HD float v_tanh(float x) { return std::tanh(x); }
static RNNKERN_HD float v_sigmoid(float x) { return 1.0f / (1.0f + std::exp(-x)); }
static RNNKERN_HD float v_relu(float x) { return x < 0.0f ? 0.0f : x; }
static RNNKERN_HD float v_hard_sigmoid(float x) {
  float y = x * (1.0f / 6.0f) + 0.5f;
  return y < 0.0f ? 0.0f : (y > 1.0f ? 1.0f : y);
}
static RNNKERN_HD float v_pos(float y) { return y > 0.0f ? 1.0f : 0.0f; }
static RNNKERN_HD float v_open01(float y) { return (y > 0.0f && y < 1.0f) ? 1.0f : 0.0f; }

namespace {

template <class V>
RNNKERN_HD V activate(Act a, V x) {
  switch (a) {
    case Act::Tanh: return v_tanh(x);
    case Act::Relu: return v_relu(x);
    case Act::Sigmoid: return v_sigmoid(x);
    case Act::HardSigmoid: return v_hard_sigmoid(x);
    default: return x;
  }
}

// d act(x) / dx, expressed through y = act(x).
template <class V>
RNNKERN_HD V activate_grad(Act a, V y) {
  switch (a) {
    case Act::Tanh: return V(1.0f) - y * y;
    case Act::Relu: return v_pos(y);
    case Act::Sigmoid: return y * (V(1.0f) - y);
    case Act::HardSigmoid: return v_open01(y) * V(1.0f / 6.0f);
    default: return V(1.0f);
  }
}

}  // namespace
}  // namespace rnnkern
