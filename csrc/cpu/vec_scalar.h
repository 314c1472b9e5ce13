// rnnkern — the portable vector type of the `scalar` backend: W plain floats,
// compiled with no ISA flags (the compiler may use the x86-64 baseline, SSE2).
// It has the same interface as the AVX vector types, so the fused kernels are
// written once and the tail handling (H not a multiple of W) is exercised on
// every machine. Include inside the ISA namespace only.
#pragma once

struct Vec {
  static constexpr int W = 4;
  float v[W];
  Vec() = default;
  explicit Vec(float s) { for (int l = 0; l < W; ++l) v[l] = s; }
  static Vec zero() { return Vec(0.0f); }
  static Vec load(const float* p) { Vec r; for (int l = 0; l < W; ++l) r.v[l] = p[l]; return r; }
  // Loads lanes [0, n), zero beyond.
  static Vec load_partial(const float* p, int n) {
    Vec r(0.0f);
    for (int l = 0; l < n; ++l) r.v[l] = p[l];
    return r;
  }
  void store(float* p) const { for (int l = 0; l < W; ++l) p[l] = v[l]; }
  void store_partial(float* p, int n) const { for (int l = 0; l < n; ++l) p[l] = v[l]; }
  // n lanes: a plain access when n == W (the common case), masked otherwise.
  static Vec load_n(const float* p, int n) { return n == W ? load(p) : load_partial(p, n); }
  void store_n(float* p, int n) const {
    if (n == W)
      store(p);
    else
      store_partial(p, n);
  }
  // lanes [0, n) = base[idx[l]], zero beyond
  static Vec gather_n(const float* base, const int32_t* idx, int n) {
    Vec r(0.0f);
    for (int l = 0; l < n; ++l) r.v[l] = base[idx[l]];
    return r;
  }
};

#define RNNKERN_VEC_BINOP(op)                                                  \
  RNNKERN_INLINE Vec operator op(Vec a, Vec b) {                                       \
    Vec r;                                                                     \
    for (int l = 0; l < Vec::W; ++l) r.v[l] = a.v[l] op b.v[l];                \
    return r;                                                                  \
  }
RNNKERN_VEC_BINOP(+)
RNNKERN_VEC_BINOP(-)
RNNKERN_VEC_BINOP(*)
#undef RNNKERN_VEC_BINOP

// a*b + c (not fused: the scalar path is the plain-arithmetic baseline).
RNNKERN_INLINE Vec fmadd(Vec a, Vec b, Vec c) {
  Vec r;
  for (int l = 0; l < Vec::W; ++l) r.v[l] = a.v[l] * b.v[l] + c.v[l];
  return r;
}

#define RNNKERN_VEC_UNARY(name)                                                \
  RNNKERN_INLINE Vec name(Vec a) {                                                     \
    Vec r;                                                                     \
    for (int l = 0; l < Vec::W; ++l) r.v[l] = ::rnnkern::name(a.v[l]);         \
    return r;                                                                  \
  }
RNNKERN_VEC_UNARY(v_tanh)
RNNKERN_VEC_UNARY(v_sigmoid)
RNNKERN_VEC_UNARY(v_relu)
RNNKERN_VEC_UNARY(v_hard_sigmoid)
RNNKERN_VEC_UNARY(v_pos)
RNNKERN_VEC_UNARY(v_open01)
#undef RNNKERN_VEC_UNARY

// Rows per register block of the micro-kernel (NB rows x NV vectors).
constexpr int kRowBlock = 4;
constexpr int kGemmVecs = 2;  // GEMM micro-tile: kRowBlock x (kGemmVecs * 4)
