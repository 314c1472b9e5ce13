// rnnkern — the AVX-512 vector type (16 floats) and its vectorised
// nonlinearities. Include inside the avx512 namespace of a translation unit
// compiled with -mavx512f -mavx512dq -mavx512bw -mavx512vl -mfma only.
//
// exp: Cody-Waite range reduction to |r| <= ln2/2, degree-7 Taylor polynomial,
// 2^n by vscalefps. tanh: an odd polynomial fitted for |x| < 0.5 (relative
// error 6e-8 in float32), 1 - 2/(exp(2|x|)+1) above. sigmoid: 1/(1+exp(-x)).
// Max errors against float64 are measured by tests/test_activations.py and
// listed in README. Clamps put x SECOND in min/max so a NaN passes through.
#pragma once

#include <immintrin.h>

struct Vec {
  static constexpr int W = 16;
  __m512 v;
  Vec() = default;
  Vec(__m512 a) : v(a) {}
  explicit Vec(float s) : v(_mm512_set1_ps(s)) {}
  static Vec zero() { return _mm512_setzero_ps(); }
  static __mmask16 lanes(int n) { return (__mmask16)((1u << n) - 1u); }
  static Vec load(const float* p) { return _mm512_loadu_ps(p); }
  static Vec load_partial(const float* p, int n) { return _mm512_maskz_loadu_ps(lanes(n), p); }
  void store(float* p) const { _mm512_storeu_ps(p, v); }
  void store_partial(float* p, int n) const { _mm512_mask_storeu_ps(p, lanes(n), v); }
  // n lanes: a plain access when n == W (the common case), masked otherwise.
  static Vec load_n(const float* p, int n) { return n == W ? load(p) : load_partial(p, n); }
  void store_n(float* p, int n) const {
    if (n == W)
      store(p);
    else
      store_partial(p, n);
  }
  // lanes [0, n) = base[idx[l]], zero beyond (idx read for every lane)
  static Vec gather_n(const float* base, const int32_t* idx, int n) {
    const __m512i vi = _mm512_loadu_si512(idx);
    return _mm512_mask_i32gather_ps(_mm512_setzero_ps(), lanes(n), vi, base, 4);
  }
};

RNNKERN_INLINE Vec operator+(Vec a, Vec b) { return _mm512_add_ps(a.v, b.v); }
RNNKERN_INLINE Vec operator-(Vec a, Vec b) { return _mm512_sub_ps(a.v, b.v); }
RNNKERN_INLINE Vec operator*(Vec a, Vec b) { return _mm512_mul_ps(a.v, b.v); }
RNNKERN_INLINE Vec fmadd(Vec a, Vec b, Vec c) { return _mm512_fmadd_ps(a.v, b.v, c.v); }

RNNKERN_INLINE __m512 exp_ps(__m512 x) {
  x = _mm512_min_ps(_mm512_set1_ps(88.3762626647949f), x);
  x = _mm512_max_ps(_mm512_set1_ps(-103.0f), x);
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
  // degree-7 Taylor polynomial of e^r, evaluated by Estrin's scheme (depth 4
  // instead of Horner's 7: the pointwise step is latency-bound)
  const __m512 r2 = _mm512_mul_ps(r, r);
  const __m512 r4 = _mm512_mul_ps(r2, r2);
  const __m512 p01 = _mm512_add_ps(r, _mm512_set1_ps(1.0f));
  const __m512 p23 = _mm512_fmadd_ps(r, _mm512_set1_ps(1.0f / 6.0f), _mm512_set1_ps(0.5f));
  const __m512 p45 = _mm512_fmadd_ps(r, _mm512_set1_ps(1.0f / 120.0f), _mm512_set1_ps(1.0f / 24.0f));
  const __m512 p67 = _mm512_fmadd_ps(r, _mm512_set1_ps(1.0f / 5040.0f), _mm512_set1_ps(1.0f / 720.0f));
  const __m512 p03 = _mm512_fmadd_ps(r2, p23, p01);
  const __m512 p47 = _mm512_fmadd_ps(r2, p67, p45);
  const __m512 p = _mm512_fmadd_ps(r4, p47, p03);
  return _mm512_scalef_ps(p, n);
}

// 1/d: 14-bit estimate plus one Newton step (about 2x the throughput of
// vdivps, ~1 ulp; d >= 1 or d = inf here, where the estimate is exact).
RNNKERN_INLINE __m512 recip_ps(__m512 d) {
  const __m512 r = _mm512_rcp14_ps(d);
  return _mm512_fmadd_ps(r, _mm512_fnmadd_ps(d, r, _mm512_set1_ps(1.0f)), r);
}

RNNKERN_INLINE Vec v_sigmoid(Vec x) {
  const __m512 one = _mm512_set1_ps(1.0f);
  return recip_ps(_mm512_add_ps(one, exp_ps(_mm512_sub_ps(_mm512_setzero_ps(), x.v))));
}

RNNKERN_INLINE Vec v_tanh(Vec x) {
  const __m512 sign = _mm512_set1_ps(-0.0f);
  const __m512 ax = _mm512_andnot_ps(sign, x.v);
  // small |x|: x + x^3 P(x^2)
  const __m512 u = _mm512_mul_ps(x.v, x.v);
  __m512 p = _mm512_set1_ps(-0.006721117068082094f);
  p = _mm512_fmadd_ps(p, u, _mm512_set1_ps(0.02133909985423088f));
  p = _mm512_fmadd_ps(p, u, _mm512_set1_ps(-0.05390699952840805f));
  p = _mm512_fmadd_ps(p, u, _mm512_set1_ps(0.13333021104335785f));
  p = _mm512_fmadd_ps(p, u, _mm512_set1_ps(-0.333333283662796f));
  const __m512 small = _mm512_fmadd_ps(_mm512_mul_ps(x.v, u), p, x.v);
  // large |x|: 1 - 2 / (exp(2|x|) + 1), sign restored
  const __m512 e = exp_ps(_mm512_add_ps(ax, ax));
  const __m512 big = _mm512_fnmadd_ps(_mm512_set1_ps(2.0f),
                                      recip_ps(_mm512_add_ps(e, _mm512_set1_ps(1.0f))),
                                      _mm512_set1_ps(1.0f));
  const __m512 bigs = _mm512_or_ps(big, _mm512_and_ps(sign, x.v));
  const __mmask16 is_small = _mm512_cmp_ps_mask(ax, _mm512_set1_ps(0.5f), _CMP_LT_OQ);
  return _mm512_mask_blend_ps(is_small, bigs, small);
}

RNNKERN_INLINE Vec v_relu(Vec x) { return _mm512_max_ps(_mm512_setzero_ps(), x.v); }

RNNKERN_INLINE Vec v_hard_sigmoid(Vec x) {
  const __m512 y = _mm512_fmadd_ps(x.v, _mm512_set1_ps(1.0f / 6.0f), _mm512_set1_ps(0.5f));
  return _mm512_min_ps(_mm512_set1_ps(1.0f), _mm512_max_ps(_mm512_setzero_ps(), y));
}

RNNKERN_INLINE Vec v_pos(Vec y) {
  const __mmask16 m = _mm512_cmp_ps_mask(y.v, _mm512_setzero_ps(), _CMP_GT_OQ);
  return _mm512_maskz_mov_ps(m, _mm512_set1_ps(1.0f));
}

RNNKERN_INLINE Vec v_open01(Vec y) {
  const __mmask16 m = _mm512_cmp_ps_mask(y.v, _mm512_setzero_ps(), _CMP_GT_OQ) &
                      _mm512_cmp_ps_mask(y.v, _mm512_set1_ps(1.0f), _CMP_LT_OQ);
  return _mm512_maskz_mov_ps(m, _mm512_set1_ps(1.0f));
}

// Micro-tile rows: 6 rows x 4 vectors of accumulators measured fastest here
// (fewer panel loads per FMA than 4 rows; 24 of 32 registers).
constexpr int kRowBlock = 6;
constexpr int kGemmVecs = 4;  // GEMM micro-tile: kRowBlock x (kGemmVecs * 16)
