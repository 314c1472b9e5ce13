// rnnkern — the AVX2 + FMA vector type (8 floats) and its vectorised
// nonlinearities. Include inside the avx2 namespace of a translation unit
// compiled with -mavx2 -mfma only. Same algorithms as vec_avx512.h; 2^n is
// built in the exponent bits, so exp's input is clamped to [-87, 88].
#pragma once

#include <immintrin.h>

struct Vec {
  static constexpr int W = 8;
  __m256 v;
  Vec() = default;
  Vec(__m256 a) : v(a) {}
  explicit Vec(float s) : v(_mm256_set1_ps(s)) {}
  static Vec zero() { return _mm256_setzero_ps(); }
  static __m256i lanes(int n) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  }
  static Vec load(const float* p) { return _mm256_loadu_ps(p); }
  static Vec load_partial(const float* p, int n) { return _mm256_maskload_ps(p, lanes(n)); }
  void store(float* p) const { _mm256_storeu_ps(p, v); }
  void store_partial(float* p, int n) const { _mm256_maskstore_ps(p, lanes(n), v); }
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
    const __m256i vi = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(idx));
    return _mm256_mask_i32gather_ps(_mm256_setzero_ps(), base, vi,
                                    _mm256_castsi256_ps(lanes(n)), 4);
  }
};

RNNKERN_INLINE Vec operator+(Vec a, Vec b) { return _mm256_add_ps(a.v, b.v); }
RNNKERN_INLINE Vec operator-(Vec a, Vec b) { return _mm256_sub_ps(a.v, b.v); }
RNNKERN_INLINE Vec operator*(Vec a, Vec b) { return _mm256_mul_ps(a.v, b.v); }
RNNKERN_INLINE Vec fmadd(Vec a, Vec b, Vec c) { return _mm256_fmadd_ps(a.v, b.v, c.v); }

RNNKERN_INLINE __m256 exp_ps(__m256 x) {
  x = _mm256_min_ps(_mm256_set1_ps(88.0f), x);
  x = _mm256_max_ps(_mm256_set1_ps(-87.0f), x);
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
  // degree-7 Taylor polynomial of e^r, evaluated by Estrin's scheme (depth 4
  // instead of Horner's 7: the pointwise step is latency-bound)
  const __m256 r2 = _mm256_mul_ps(r, r);
  const __m256 r4 = _mm256_mul_ps(r2, r2);
  const __m256 p01 = _mm256_add_ps(r, _mm256_set1_ps(1.0f));
  const __m256 p23 = _mm256_fmadd_ps(r, _mm256_set1_ps(1.0f / 6.0f), _mm256_set1_ps(0.5f));
  const __m256 p45 = _mm256_fmadd_ps(r, _mm256_set1_ps(1.0f / 120.0f), _mm256_set1_ps(1.0f / 24.0f));
  const __m256 p67 = _mm256_fmadd_ps(r, _mm256_set1_ps(1.0f / 5040.0f), _mm256_set1_ps(1.0f / 720.0f));
  const __m256 p03 = _mm256_fmadd_ps(r2, p23, p01);
  const __m256 p47 = _mm256_fmadd_ps(r2, p67, p45);
  const __m256 p = _mm256_fmadd_ps(r4, p47, p03);
  const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
}

RNNKERN_INLINE Vec v_sigmoid(Vec x) {
  const __m256 one = _mm256_set1_ps(1.0f);
  return _mm256_div_ps(one, _mm256_add_ps(one, exp_ps(_mm256_sub_ps(_mm256_setzero_ps(), x.v))));
}

RNNKERN_INLINE Vec v_tanh(Vec x) {
  const __m256 sign = _mm256_set1_ps(-0.0f);
  const __m256 ax = _mm256_andnot_ps(sign, x.v);
  const __m256 u = _mm256_mul_ps(x.v, x.v);
  __m256 p = _mm256_set1_ps(-0.006721117068082094f);
  p = _mm256_fmadd_ps(p, u, _mm256_set1_ps(0.02133909985423088f));
  p = _mm256_fmadd_ps(p, u, _mm256_set1_ps(-0.05390699952840805f));
  p = _mm256_fmadd_ps(p, u, _mm256_set1_ps(0.13333021104335785f));
  p = _mm256_fmadd_ps(p, u, _mm256_set1_ps(-0.333333283662796f));
  const __m256 small = _mm256_fmadd_ps(_mm256_mul_ps(x.v, u), p, x.v);
  const __m256 e = exp_ps(_mm256_add_ps(ax, ax));
  const __m256 big = _mm256_sub_ps(_mm256_set1_ps(1.0f),
                                   _mm256_div_ps(_mm256_set1_ps(2.0f),
                                                 _mm256_add_ps(e, _mm256_set1_ps(1.0f))));
  const __m256 bigs = _mm256_or_ps(big, _mm256_and_ps(sign, x.v));
  const __m256 is_small = _mm256_cmp_ps(ax, _mm256_set1_ps(0.5f), _CMP_LT_OQ);
  return _mm256_blendv_ps(bigs, small, is_small);
}

RNNKERN_INLINE Vec v_relu(Vec x) { return _mm256_max_ps(_mm256_setzero_ps(), x.v); }

RNNKERN_INLINE Vec v_hard_sigmoid(Vec x) {
  const __m256 y = _mm256_fmadd_ps(x.v, _mm256_set1_ps(1.0f / 6.0f), _mm256_set1_ps(0.5f));
  return _mm256_min_ps(_mm256_set1_ps(1.0f), _mm256_max_ps(_mm256_setzero_ps(), y));
}

RNNKERN_INLINE Vec v_pos(Vec y) {
  return _mm256_and_ps(_mm256_cmp_ps(y.v, _mm256_setzero_ps(), _CMP_GT_OQ), _mm256_set1_ps(1.0f));
}

RNNKERN_INLINE Vec v_open01(Vec y) {
  const __m256 m = _mm256_and_ps(_mm256_cmp_ps(y.v, _mm256_setzero_ps(), _CMP_GT_OQ),
                                 _mm256_cmp_ps(y.v, _mm256_set1_ps(1.0f), _CMP_LT_OQ));
  return _mm256_and_ps(m, _mm256_set1_ps(1.0f));
}

// Micro-tile rows: 3 rows x 4 vectors of accumulators measured fastest here
// (fewer panel loads per FMA than 4 rows; 12 of 16 registers).
constexpr int kRowBlock = 3;
constexpr int kGemmVecs = 4;  // GEMM micro-tile: kRowBlock x (kGemmVecs * 8)
