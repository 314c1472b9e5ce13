// rnnkern — bfloat16 rounding for precision="bf16" on the CPU (the mode, which
// rnnkern/reference.py's docstring states exactly: the weights and every
// product's other operand -- x_t, h_prev, GRU reset_before's r ⊙ h_prev, the
// pre-activation gradients -- rounded to bfloat16, dropout masks scaling the
// rounded operand, products summed, states and gradients kept in float32).
// Plain header: no intrinsics. The same rounding as cuda-emu's to_bf16.
#pragma once

#include <cstdint>
#include <cstring>

namespace rnnkern {

// x's bfloat16 bits: to nearest, ties to even; Inf stays Inf, a NaN stays a
// (quiet) NaN, never truncated to Inf.
inline uint16_t bf16_bits(float x) {
  uint32_t u;
  std::memcpy(&u, &x, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u | 0x00400000u) >> 16);
  return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

inline float bf16_value(uint16_t b) {
  const uint32_t u = (uint32_t)b << 16;
  float x;
  std::memcpy(&x, &u, 4);
  return x;
}

// x rounded to bfloat16, as a float.
inline float round_bf16(float x) { return bf16_value(bf16_bits(x)); }

// out[i] = round_bf16(in[i]) for i < n (out may be in).
inline void round_bf16(const float* in, float* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = round_bf16(in[i]);
}

}  // namespace rnnkern
