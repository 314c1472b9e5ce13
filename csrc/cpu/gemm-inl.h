// rnnkern — packed, cache-blocked SGEMM and the register micro-kernel that the
// fused recurrent steps share. Written once against `Vec` (W floats) and
// `kRowBlock`; included inside each ISA's namespace (one ISA per translation
// unit), so no wider-ISA copy can leak into a baseline caller.
//
// Panels. A panel holds K rows of NV*W floats: column i of the panel is column
// col[i] of some matrix B(k, j) = b[k*sbk + j*sbn], or zero where col[i] < 0.
// The micro-kernel computes, for nb <= kRowBlock rows of A (contiguous in k),
//   acc[n][v] = sum_k A[n][k] * panel[k][v*W .. v*W+W)
// with NV*nb independent accumulators, so the pre-activations of a tile of
// units stay in registers until the cell's nonlinearity is applied.
//
// Tested by tests/test_kernels.py (gemm against NumPy, every ISA) and timed by
// rnnkern-bench through the layers.
#pragma once

#include <algorithm>
#include <cstring>
#include <vector>

// ---------------------------------------------------------------- packing

// col: NV*W column indices (or -1) for one panel.
inline void pack_panel(const float* b, int64_t sbk, int64_t sbn, int64_t k0, int64_t K,
                       const int64_t* col, int width, float* out) {
  for (int64_t k = 0; k < K; ++k) {
    const float* row = b + (k0 + k) * sbk;
    float* o = out + k * width;
    if (sbn == 1) {
      for (int i = 0; i < width; ++i) o[i] = col[i] >= 0 ? row[col[i]] : 0.0f;
    } else {
      for (int i = 0; i < width; ++i) o[i] = col[i] >= 0 ? row[col[i] * sbn] : 0.0f;
    }
  }
}

// ---------------------------------------------------------------- micro-kernel

// Software prefetch for the recurrent steps: PFL cache lines per k, from pf
// on (PFL = 0: none). The step kernels prefetch the NEXT panel chunk while
// they compute on this one, so a recurrent kernel too big for L2 streams from
// L3/DRAM under the FMAs instead of stalling every chunk's first pass.
template <int PFL>
RNNKERN_INLINE void prefetch_k(const char* pf, int64_t k) {
  for (int j = 0; j < PFL; ++j) __builtin_prefetch(pf + (k * PFL + j) * 64, 0, 2);
}

// The layout of a micro-kernel's A operand (template parameter Op):
//  - Plain (GA = 1, BS = 0): row n is a[n*lda + k], one broadcast per (row, k)
//    serves every vector of the panel;
//  - gate-blocked (BS > 0): with per-gate dropout masks each gate multiplies
//    its own operand (h ⊙ m_g), kept as row n = blocks of W units, each block
//    the GL gates' W values (BS = GL*W floats): A_g(n, k) = a[n*lda + (k/W)*BS
//    + g*W + k%W]. Vector v of the panel (G gates x S sub-tiles, gate
//    innermost) reads gate v % GA, so every FMA takes its own broadcast
//    (AVX-512 folds it into the FMA) and the FMA count is unchanged; the gate
//    offsets are compile-time displacements from one pointer per row (a
//    pointer per (row, gate) ran out of registers and cost 1.7x). GA = 1 with
//    BS > 0 reads one gate of such a layout (a points at its block offset).
//    a must point at a block start: k chunks are multiples of W.
template <int GA_, int BS_>
struct Operand {
  static constexpr int GA = GA_, BS = BS_;
};
using Plain = Operand<1, 0>;

// out[n][v*W ..] (+)= sum_k A(n, k) * panel[k][v*W ..] for NB rows; out rows
// are NV*W floats apart. accumulate: start from out instead of zero.
template <int NV, int NB, int PFL = 0, class Op = Plain>
inline void mac_block(const float* a, int64_t lda, int64_t K, const float* panel, float* out,
                      bool accumulate, const char* pf = nullptr) {
  Vec c[NB][NV];
  for (int n = 0; n < NB; ++n)
    for (int v = 0; v < NV; ++v)
      c[n][v] = accumulate ? Vec::load(out + (n * NV + v) * Vec::W) : Vec::zero();
  if (Op::BS == 0) {
    for (int64_t k = 0; k < K; ++k) {
      prefetch_k<PFL>(pf, k);
      Vec bv[NV];
      for (int v = 0; v < NV; ++v) bv[v] = Vec::load(panel + (k * NV + v) * Vec::W);
      for (int n = 0; n < NB; ++n) {
        Vec an(a[n * lda + k]);
        for (int v = 0; v < NV; ++v) c[n][v] = fmadd(an, bv[v], c[n][v]);
      }
    }
  } else {
    for (int64_t kb = 0; kb < K; kb += Vec::W) {
      const float* ab = a + (kb / Vec::W) * Op::BS;
      const int kn = (int)std::min<int64_t>(Vec::W, K - kb);
      for (int kk = 0; kk < kn; ++kk) {
        const int64_t k = kb + kk;
        prefetch_k<PFL>(pf, k);
        Vec bv[NV];
        for (int v = 0; v < NV; ++v) bv[v] = Vec::load(panel + (k * NV + v) * Vec::W);
        for (int n = 0; n < NB; ++n)
          for (int v = 0; v < NV; ++v)
            c[n][v] = fmadd(Vec(ab[n * lda + (v % Op::GA) * Vec::W + kk]), bv[v], c[n][v]);
      }
    }
  }
  for (int n = 0; n < NB; ++n)
    for (int v = 0; v < NV; ++v) c[n][v].store(out + (n * NV + v) * Vec::W);
}

// One row (batch 1, the latency case): too few accumulators to hide the FMA
// latency, so even and odd k go to separate chains, added at the end.
template <int NV, int PFL = 0, class Op = Plain>
inline void mac_row(const float* a, int64_t K, const float* panel, float* out, bool accumulate,
                    const char* pf = nullptr) {
  Vec c0[NV], c1[NV];
  for (int v = 0; v < NV; ++v) {
    c0[v] = accumulate ? Vec::load(out + v * Vec::W) : Vec::zero();
    c1[v] = Vec::zero();
  }
  if (Op::BS == 0) {
    int64_t k = 0;
    for (; k + 1 < K; k += 2) {
      prefetch_k<PFL>(pf, k);
      prefetch_k<PFL>(pf, k + 1);
      const Vec a0(a[k]), a1(a[k + 1]);
      for (int v = 0; v < NV; ++v) {
        c0[v] = fmadd(a0, Vec::load(panel + (k * NV + v) * Vec::W), c0[v]);
        c1[v] = fmadd(a1, Vec::load(panel + ((k + 1) * NV + v) * Vec::W), c1[v]);
      }
    }
    if (k < K) {
      const Vec a0(a[k]);
      for (int v = 0; v < NV; ++v)
        c0[v] = fmadd(a0, Vec::load(panel + (k * NV + v) * Vec::W), c0[v]);
    }
  } else {
    // A(k) of gate g at ab[g*W + kk]; W is even, so k pairs never straddle blocks
    for (int64_t kb = 0; kb < K; kb += Vec::W) {
      const float* ab = a + (kb / Vec::W) * Op::BS;
      const int kn = (int)std::min<int64_t>(Vec::W, K - kb);
      int kk = 0;
      for (; kk + 1 < kn; kk += 2) {
        const int64_t k = kb + kk;
        prefetch_k<PFL>(pf, k);
        prefetch_k<PFL>(pf, k + 1);
        for (int v = 0; v < NV; ++v) {
          const float* ag = ab + (v % Op::GA) * Vec::W;
          c0[v] = fmadd(Vec(ag[kk]), Vec::load(panel + (k * NV + v) * Vec::W), c0[v]);
          c1[v] = fmadd(Vec(ag[kk + 1]), Vec::load(panel + ((k + 1) * NV + v) * Vec::W), c1[v]);
        }
      }
      if (kk < kn) {
        const int64_t k = kb + kk;
        for (int v = 0; v < NV; ++v)
          c0[v] = fmadd(Vec(ab[(v % Op::GA) * Vec::W + kk]),
                        Vec::load(panel + (k * NV + v) * Vec::W), c0[v]);
      }
    }
  }
  for (int v = 0; v < NV; ++v) (c0[v] + c1[v]).store(out + v * Vec::W);
}

#if defined(RNNKERN_BF16_NATIVE)
// ---------------------------------------------------------------- bf16 (AVX512_BF16)
// precision bf16's products on CPUs with AVX512_BF16 (rnn_cpu_avx512.cc): a
// bf16 panel of K pair rows holds in word k*NV*W + i (32 bits) the bf16 of
// B(2k, col i) in its low half and of B(2k+1, col i) in its high half; A is
// bf16, its rows of even length (zero-padded). One vdpbf16ps adds A(n, 2k)
// B(2k, i) + A(n, 2k+1) B(2k+1, i) to lane i, the pair of A broadcast as one
// word: twice the products of an fp32 FMA, from half the bytes. Plain
// operands only (recurrent dropout's gate-blocked ones run the rounded fp32
// products). The same shapes as mac_block and mac_row, overloaded on the
// pointer types, so mac_rows and the step's products are written once.
RNNKERN_INLINE __m512i bf16_pair(const uint16_t* a) {
  uint32_t w;
  std::memcpy(&w, a, 4);
  return _mm512_set1_epi32((int)w);
}
RNNKERN_INLINE Vec dot_bf16(Vec acc, __m512i a, __m512i b) {
  return _mm512_dpbf16_ps(acc.v, (__m512bh)a, (__m512bh)b);
}

template <int NV, int NB, int PFL = 0, class Op = Plain>
inline void mac_block(const uint16_t* a, int64_t lda, int64_t K, const uint32_t* panel,
                      float* out, bool accumulate, const char* pf = nullptr) {
  static_assert(Op::BS == 0, "bf16 products take plain operands");
  Vec c[NB][NV];
  for (int n = 0; n < NB; ++n)
    for (int v = 0; v < NV; ++v)
      c[n][v] = accumulate ? Vec::load(out + (n * NV + v) * Vec::W) : Vec::zero();
  for (int64_t k = 0; k < K; ++k) {
    prefetch_k<PFL>(pf, k);
    __m512i bv[NV];
    for (int v = 0; v < NV; ++v) bv[v] = _mm512_loadu_si512(panel + (k * NV + v) * Vec::W);
    for (int n = 0; n < NB; ++n) {
      const __m512i an = bf16_pair(a + n * lda + 2 * k);
      for (int v = 0; v < NV; ++v) c[n][v] = dot_bf16(c[n][v], an, bv[v]);
    }
  }
  for (int n = 0; n < NB; ++n)
    for (int v = 0; v < NV; ++v) c[n][v].store(out + (n * NV + v) * Vec::W);
}

template <int NV, int PFL = 0, class Op = Plain>
inline void mac_row(const uint16_t* a, int64_t K, const uint32_t* panel, float* out,
                    bool accumulate, const char* pf = nullptr) {
  static_assert(Op::BS == 0, "bf16 products take plain operands");
  Vec c0[NV], c1[NV];  // even and odd pairs: two chains hide the latency
  for (int v = 0; v < NV; ++v) {
    c0[v] = accumulate ? Vec::load(out + v * Vec::W) : Vec::zero();
    c1[v] = Vec::zero();
  }
  int64_t k = 0;
  for (; k + 1 < K; k += 2) {
    prefetch_k<PFL>(pf, k);
    prefetch_k<PFL>(pf, k + 1);
    const __m512i a0 = bf16_pair(a + 2 * k), a1 = bf16_pair(a + 2 * k + 2);
    for (int v = 0; v < NV; ++v) {
      c0[v] = dot_bf16(c0[v], a0, _mm512_loadu_si512(panel + (k * NV + v) * Vec::W));
      c1[v] = dot_bf16(c1[v], a1, _mm512_loadu_si512(panel + ((k + 1) * NV + v) * Vec::W));
    }
  }
  if (k < K) {
    const __m512i a0 = bf16_pair(a + 2 * k);
    for (int v = 0; v < NV; ++v)
      c0[v] = dot_bf16(c0[v], a0, _mm512_loadu_si512(panel + (k * NV + v) * Vec::W));
  }
  for (int v = 0; v < NV; ++v) (c0[v] + c1[v]).store(out + v * Vec::W);
}

// out[0..n) = in[0..n) rounded to bf16 values (as round_bf16; out may be in).
inline void round_bf16_vec(const float* in, float* out, int64_t n) {
  for (int64_t i = 0; i < n; i += Vec::W) {
    const int nl = (int)std::min<int64_t>(Vec::W, n - i);
    const __m512 v = Vec::load_partial(in + i, nl).v;
    const __m512i w = _mm512_cvtepu16_epi32((__m256i)_mm512_cvtneps_pbh(v));
    Vec(_mm512_castsi512_ps(_mm512_slli_epi32(w, 16))).store_n(out + i, nl);
  }
}

// 16 words bf16(lo[i]) | bf16(hi[i]) << 16: pairs of k for vdpbf16ps.
RNNKERN_INLINE __m512i pair_words(__m512 lo, __m512 hi) {
  const __m512i lw = _mm512_cvtepu16_epi32((__m256i)_mm512_cvtneps_pbh(lo));
  const __m512i hw = _mm512_cvtepu16_epi32((__m256i)_mm512_cvtneps_pbh(hi));
  return _mm512_or_si512(lw, _mm512_slli_epi32(hw, 16));
}

// npanels fp32 panels of K rows x width (a multiple of W) -> bf16 pair panels,
// in place: panel p becomes ceil(K/2) pair rows x width words from word
// p*ceil(K/2)*width (see mac_block's bf16 form; an odd K's last pair has a
// zero high half). Each chunk of words is written at or before the floats it
// is made of, after reading them.
inline void to_pair_panels(float* panels, int64_t npanels, int64_t K, int width) {
  const int64_t Kp = (K + 1) / 2;
  for (int64_t p = 0; p < npanels; ++p)
    for (int64_t kp = 0; kp < Kp; ++kp) {
      const float* lo = panels + (p * K + 2 * kp) * width;
      const bool hi = 2 * kp + 1 < K;
      float* o = panels + (p * Kp + kp) * width;
      for (int i = 0; i < width; i += Vec::W) {
        const __m512i w = pair_words(Vec::load(lo + i).v,
                                     hi ? Vec::load(lo + width + i).v : _mm512_setzero_ps());
        _mm512_storeu_si512(o + i, w);
      }
    }
}

// dst[n*ldd + i] = bf16(src[n*lds + i]) for i < D, zero for D <= i < ldd (even).
inline void to_bf16_rows(const float* src, int64_t rows, int64_t D, int64_t lds, uint16_t* dst,
                         int64_t ldd) {
  for (int64_t n = 0; n < rows; ++n)
    for (int64_t u = 0; u < ldd; u += Vec::W) {
      const int nl = (int)std::max<int64_t>(0, std::min<int64_t>(Vec::W, D - u));
      const __m256i b = (__m256i)_mm512_cvtneps_pbh(Vec::load_partial(src + n * lds + u, nl).v);
      _mm256_mask_storeu_epi16(dst + n * ldd + u,
                               (__mmask16)((1u << std::min<int64_t>(Vec::W, ldd - u)) - 1u), b);
    }
}
// An A block packed by pack_a_block (mc rows, kc k), as bf16 pairs in place:
// row-major, row i's pair kp at word i*ceil(kc/2) + kp; k-major, row block
// ib's pair kp of row n at word (ib*ceil(kc/2) + kp)*kRowBlock + n (both what
// mac_panel_c reads with T = uint32_t). Reads before it writes, as above.
inline void a_block_to_pairs(float* ap, int64_t mc, int64_t kc, bool kmajor) {
  const int64_t kcp = (kc + 1) / 2;
  if (!kmajor) {  // a row's bf16 in order are its pairs (row i written at or before it)
    to_bf16_rows(ap, mc, kc, kc, reinterpret_cast<uint16_t*>(ap), 2 * kcp);
    return;
  }
  static_assert(kRowBlock <= Vec::W, "a k-major pair of rows is one vector");
  const __mmask16 rows = (__mmask16)((1u << kRowBlock) - 1u);
  for (int64_t ib = 0; ib * kRowBlock < mc; ++ib)
    for (int64_t kp = 0; kp < kcp; ++kp) {
      const float* f = ap + (ib * kc + 2 * kp) * kRowBlock;
      const __m512 lo = _mm512_maskz_loadu_ps(rows, f);
      const __m512 hi = 2 * kp + 1 < kc ? _mm512_maskz_loadu_ps(rows, f + kRowBlock)
                                        : _mm512_setzero_ps();
      _mm512_mask_storeu_epi32(ap + (ib * kcp + kp) * kRowBlock, rows, pair_words(lo, hi));
    }
}

// B rows [k0, k0+kc), columns [j0, j0+nvalid) of a row-major B (sbn == 1)
// straight into one pair panel (as pack_b_block, then to_pair_panels).
inline void pack_b_pairs(const float* b, int64_t sbk, int64_t k0, int64_t kc, int64_t j0,
                         int nvalid, float* out) {
  constexpr int NR = kGemmVecs * Vec::W;  // kGemmNV's
  for (int64_t kp = 0; kp < (kc + 1) / 2; ++kp) {
    const float* lo = b + (k0 + 2 * kp) * sbk + j0;
    const bool hi = 2 * kp + 1 < kc;
    for (int q = 0; q < NR; q += Vec::W) {
      const int nl = std::max(0, std::min(Vec::W, nvalid - q));
      const __m512i w = pair_words(Vec::load_partial(lo + q, nl).v,
                                   hi ? Vec::load_partial(lo + sbk + q, nl).v
                                      : _mm512_setzero_ps());
      _mm512_storeu_si512(out + kp * NR + q, w);
    }
  }
}

// As pack_b_pairs from a row-major B held as bf16 already (b16, row stride sbk
// elements): rows 2k and 2k+1 interleaved into words, no rounding.
inline void pack_b_pairs16(const uint16_t* b16, int64_t sbk, int64_t k0, int64_t kc, int64_t j0,
                           int nvalid, float* out) {
  constexpr int NR = kGemmVecs * Vec::W;
  for (int64_t kp = 0; kp < (kc + 1) / 2; ++kp) {
    const uint16_t* lo = b16 + (k0 + 2 * kp) * sbk + j0;
    const bool hi = 2 * kp + 1 < kc;
    for (int q = 0; q < NR; q += Vec::W) {
      const int nl = std::max(0, std::min(Vec::W, nvalid - q));
      const __mmask16 m = (__mmask16)((1u << nl) - 1u);
      const __m512i l = _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, lo + q));
      const __m512i h = hi ? _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, lo + sbk + q))
                           : _mm512_setzero_si512();
      _mm512_storeu_si512(out + kp * NR + q, _mm512_or_si512(l, _mm512_slli_epi32(h, 16)));
    }
  }
}

// rows x kc bf16 elements (row stride lds) copied to rows ldd apart (ldd even >= kc),
// zero past kc: a row-major A block in bf16 already, as pairs.
inline void copy_bf16_rows(const uint16_t* src, int64_t rows, int64_t kc, int64_t lds,
                           uint16_t* dst, int64_t ldd) {
  for (int64_t n = 0; n < rows; ++n) {
    std::memcpy(dst + n * ldd, src + n * lds, kc * sizeof(uint16_t));
    for (int64_t u = kc; u < ldd; ++u) dst[n * ldd + u] = 0;
  }
}

// A rows [i0, i0+mc), k in [k0, k0+kc) of a transposed A (A(i, k) = a[k*sak + i])
// straight into k-major pairs (as pack_a_block's k-major layout, then
// a_block_to_pairs); ones_row: see pack_a_block.
inline void pack_a_pairs_kmajor(const float* a, int64_t sak, int64_t i0, int64_t mc, int64_t k0,
                                int64_t kc, float* out, int64_t ones_row) {
  static_assert(kRowBlock <= Vec::W, "a k-major pair of rows is one vector");
  const int64_t kcp = (kc + 1) / 2;
  const __mmask16 rows = (__mmask16)((1u << kRowBlock) - 1u);
  for (int64_t ib = 0; ib * kRowBlock < mc; ++ib) {
    const int64_t r0 = i0 + ib * kRowBlock;
    const int nb = (int)std::min<int64_t>(kRowBlock, mc - ib * kRowBlock);
    const int ones = ones_row >= 0 ? (int)(ones_row - r0) : -1;
    const __mmask16 live = (__mmask16)((1u << nb) - 1u) &
                           (ones >= 0 && ones < nb ? (__mmask16) ~(1u << ones) : (__mmask16)0xffff);
    const __mmask16 one = ones >= 0 && ones < nb ? (__mmask16)(1u << ones) : (__mmask16)0;
    const __m512 ones_v = _mm512_maskz_mov_ps(one, _mm512_set1_ps(1.0f));
    for (int64_t kp = 0; kp < kcp; ++kp) {
      const float* src = a + (k0 + 2 * kp) * sak + r0;
      const __m512 lo = _mm512_or_ps(_mm512_maskz_loadu_ps(live, src), ones_v);
      const __m512 hi = 2 * kp + 1 < kc
                            ? _mm512_or_ps(_mm512_maskz_loadu_ps(live, src + sak), ones_v)
                            : _mm512_setzero_ps();
      _mm512_mask_storeu_epi32(out + (ib * kcp + kp) * kRowBlock, rows, pair_words(lo, hi));
    }
  }
}

#endif

// The A element type of a product whose panels hold TP: k rows of A per panel
// row (1: fp32 panels; 2: bf16 pair panels).
template <class TA, class TP>
constexpr int64_t k_per_row() { return (int64_t)(sizeof(TP) / sizeof(TA)); }

// nb (<= kRowBlock) rows a, a+lda, ...; K may be 0 (out = 0, or unchanged).
// TA, TP: float, float (fp32) or uint16_t, uint32_t (bf16 pair panels, K pairs).
template <int NV, int PFL, class Op, class TA, class TP>
inline void mac_rows_pf(int nb, const TA* a, int64_t lda, int64_t K, const TP* panel,
                        float* out, bool accumulate, const char* pf) {
  static_assert(kRowBlock >= 1 && kRowBlock <= 8, "mac_rows dispatches up to 8 rows");
#define RNNKERN_MAC_CASE(r)                                                                   \
  case r:                                                                                     \
    mac_block<NV, (r <= kRowBlock ? r : kRowBlock), PFL, Op>(a, lda, K, panel, out,           \
                                                             accumulate, pf);                 \
    break;
  switch (nb) {
    case 1: mac_row<NV, PFL, Op>(a, K, panel, out, accumulate, pf); break;
    RNNKERN_MAC_CASE(2)
    RNNKERN_MAC_CASE(3)
    RNNKERN_MAC_CASE(4)
    RNNKERN_MAC_CASE(5)
    RNNKERN_MAC_CASE(6)
    RNNKERN_MAC_CASE(7)
    default: mac_block<NV, kRowBlock, PFL, Op>(a, lda, K, panel, out, accumulate, pf); break;
  }
#undef RNNKERN_MAC_CASE
}

// The same, prefetching pf_lines (0..4) cache lines per k from pf.
template <int NV, class Op = Plain, class TA, class TP>
inline void mac_rows(int nb, const TA* a, int64_t lda, int64_t K, const TP* panel,
                     float* out, bool accumulate, const char* pf = nullptr, int pf_lines = 0) {
  switch (pf ? pf_lines : 0) {
    case 0: mac_rows_pf<NV, 0, Op>(nb, a, lda, K, panel, out, accumulate, pf); break;
    case 1: mac_rows_pf<NV, 1, Op>(nb, a, lda, K, panel, out, accumulate, pf); break;
    case 2: mac_rows_pf<NV, 2, Op>(nb, a, lda, K, panel, out, accumulate, pf); break;
    case 3: mac_rows_pf<NV, 3, Op>(nb, a, lda, K, panel, out, accumulate, pf); break;
    default: mac_rows_pf<NV, 4, Op>(nb, a, lda, K, panel, out, accumulate, pf); break;
  }
}

// ---------------------------------------------------------------- threads

inline void split_range(int64_t n, int parts, int part, int64_t& lo, int64_t& hi) {
  int64_t q = n / parts, r = n % parts;
  lo = part * q + std::min<int64_t>(part, r);
  hi = lo + q + (part < r ? 1 : 0);
}

// ---------------------------------------------------------------- GEMM

// C[M,N] = A[M,K] B[K,N] (+ C if accumulate). Element strides:
// A(i,k) = a[i*sam + k*sak], B(k,j) = b[k*sbk + j*sbn], C(i,j) = c[i*ldc + j].
// Each C element is summed in the same k order whatever the thread count, so
// results are bitwise reproducible across thread counts.
constexpr int kGemmNV = kGemmVecs;  // vectors per panel: NR = kGemmNV * W columns
// k block: one B micro-panel (KC x NR floats, ~32 KiB) stays in L1 while the
// row blocks of the packed A block (MC x KC, in L2) stream past it.
constexpr int64_t kGemmKC = std::max<int64_t>(64, 32768 / (kGemmNV * Vec::W * 4));
constexpr int64_t kGemmMC = 192; // rows of A packed at once

// An elementwise scale of one GEMM operand, periodic down the rows of the
// matrix as it lies in memory: S(row, col) = p[(row % period) * ld + col]. A
// [N, D] dropout mask over the [T*N, D] time-major rows (row = t*N + n) of x,
// h_prev or dX is one: the masks are per batch row, the same at every step.
// For A (see pack_a_block) `k_rows` says which index of A(i, k) is the row:
// k for a transposed A (A(i, k) = x[k, i], as in dW = X^T dG), else i. p ==
// null: no scale.
struct RowScale {
  const float* p = nullptr;
  int64_t period = 1, ld = 0;
  bool k_rows = false;
  const float* row(int64_t r) const { return p + (r % period) * ld; }
};

// B rows [k0, k0+kc), columns [j0, j0+nvalid) -> out[kc][NR], zero-padded.
inline void pack_b_block(const float* b, int64_t sbk, int64_t sbn, int64_t k0, int64_t kc,
                         int64_t j0, int nvalid, float* out) {
  constexpr int NR = kGemmNV * Vec::W;
  if (sbn == 1) {  // NR floats a row: vector copies (a memcpy call per row cost 4%)
    for (int64_t k = 0; k < kc; ++k) {
      const float* src = b + (k0 + k) * sbk + j0;
      for (int q = 0; q < NR; q += Vec::W)
        Vec::load_partial(src + q, std::max(0, std::min(Vec::W, nvalid - q))).store(out + k * NR + q);
    }
  } else {  // B transposed: walk its contiguous direction (k) innermost
    if (nvalid < NR)
      for (int64_t k = 0; k < kc; ++k) std::fill(out + k * NR + nvalid, out + (k + 1) * NR, 0.0f);
    for (int i = 0; i < nvalid; ++i) {
      const float* src = b + k0 * sbk + (j0 + i) * sbn;
      for (int64_t k = 0; k < kc; ++k) out[k * NR + i] = src[k * sbk];
    }
  }
}

// A rows [i0, i0+mc), k in [k0, k0+kc) -> out, in one of two layouts:
//  - A row-major (sak == 1): rows copied as they are, out[i*kc + k];
//  - A transposed (sam == 1): k-major micro-panels of kRowBlock rows,
//    out[(ib*kc + k)*kRowBlock + n], zero past mc: each k is a contiguous copy.
// Returns true for the k-major layout.
// ones_row: a row index of A (k-major layout only) that reads as all ones and
// is not loaded, so C's row ones_row gets the column sums of B (a bias gradient).
// as: A(i, k) scaled elementwise while it is packed, by S(i, k), or S(k, i)
// with as.k_rows (see RowScale); the ones row is not scaled.
inline bool pack_a_block(const float* a, int64_t sam, int64_t sak, int64_t i0, int64_t mc,
                         int64_t k0, int64_t kc, float* out, int64_t ones_row = -1,
                         const RowScale& as = RowScale()) {
  if (sak == 1 && ones_row < 0 && !(as.p && as.k_rows)) {
    for (int64_t i = 0; i < mc; ++i) {
      const float* src = a + (i0 + i) * sam + k0;
      if (!as.p) {
        std::memcpy(out + i * kc, src, kc * sizeof(float));
        continue;
      }
      const float* sc = as.row(i0 + i) + k0;
      for (int64_t k = 0; k < kc; k += Vec::W) {
        const int nl = (int)std::min<int64_t>(Vec::W, kc - k);
        (Vec::load_n(src + k, nl) * Vec::load_n(sc + k, nl)).store_n(out + i * kc + k, nl);
      }
    }
    return false;
  }
  for (int64_t ib = 0; ib * kRowBlock < mc; ++ib) {
    float* o = out + ib * kc * kRowBlock;
    const int nb = (int)std::min<int64_t>(kRowBlock, mc - ib * kRowBlock);
    const float* src = a + (i0 + ib * kRowBlock) * sam + k0 * sak;
    const int ones = ones_row >= 0 ? (int)(ones_row - (i0 + ib * kRowBlock)) : -1;
    const int64_t ib0 = i0 + ib * kRowBlock;
    if (sam == 1 && kRowBlock <= Vec::W && (ones < 0 || ones >= nb) &&
        (!as.p || as.k_rows)) {
      // A transposed (the weight gradients' X^T, Hprev^T): each k is nb
      // contiguous floats, scaled by the contiguous S(k, i0..), one masked
      // vector copy per k. (The element loop below, with a division per k for
      // S's row, cost LSTM S3 7% of its backward with dropout's per-gate
      // GEMMs; without dropout this copy made that backward ~12% faster.)
      int64_t r = as.p ? (k0 % as.period) : 0;  // the row of S, without a division per k
      for (int64_t k = 0; k < kc; ++k) {
        Vec v = Vec::load_n(src + k * sak, nb);
        if (as.p) {
          v = v * Vec::load_n(as.p + r * as.ld + ib0, nb);
          if (++r == as.period) r = 0;
        }
        v.store_n(o + k * kRowBlock, kRowBlock);
      }
      continue;
    }
    for (int64_t k = 0; k < kc; ++k) {
      // the scale of A(ib0 + n, k0 + k): S(k, i) contiguous in n, or S(i, k)
      const float* sc = as.p && as.k_rows ? as.row(k0 + k) + ib0 : nullptr;
      for (int n = 0; n < kRowBlock; ++n) {
        float v = n == ones ? 1.0f : n < nb ? src[k * sak + n * sam] : 0.0f;
        if (as.p && n < nb && n != ones) v *= sc ? sc[n] : as.row(ib0 + n)[k0 + k];
        o[k * kRowBlock + n] = v;
      }
    }
  }
  return true;
}

// C[0:nb, 0:nvalid] (+)= Apanel . Bpanel over K, accumulators in registers for
// the whole k block; C is read (add) or seeded with the bias row only once.
// A(n, k) = ap[n*lda + k] (row-major packing) or ap[k*kRowBlock + n] (k-major).
// cs (may be null): the scale rows of the tile's nb rows (from column j0 on):
// C gets S ⊙ (A B) (S is periodic in the rows, so one pointer per row).
// T = float: fp32 panels; T = uint32_t (bf16, gemm_tile's bf16 mode): A's
// words are pairs of bf16 (k = 2i, 2i+1), B's pair panels, K counts pairs.
RNNKERN_INLINE Vec panel_bcast(float a) { return Vec(a); }
RNNKERN_INLINE Vec panel_load(const float* p) { return Vec::load(p); }
RNNKERN_INLINE Vec panel_madd(Vec a, Vec b, Vec c) { return fmadd(a, b, c); }
#if defined(RNNKERN_BF16_NATIVE)
RNNKERN_INLINE __m512i panel_bcast(uint32_t a) { return _mm512_set1_epi32((int)a); }
RNNKERN_INLINE __m512i panel_load(const uint32_t* p) { return _mm512_loadu_si512(p); }
RNNKERN_INLINE Vec panel_madd(__m512i a, __m512i b, Vec c) { return dot_bf16(c, a, b); }
#endif

template <bool KMAJOR, class T>
inline void mac_panel_c(const T* ap, int64_t lda, int64_t K, const T* bp, float* c,
                        int64_t ldc, int nb, int nvalid, bool add, const float* bias,
                        const float* const* cs = nullptr) {
  constexpr int NV = kGemmNV, W = Vec::W;
  Vec acc[kRowBlock][NV];
  for (int n = 0; n < kRowBlock; ++n)
    for (int v = 0; v < NV; ++v) acc[n][v] = Vec::zero();
  for (int64_t k = 0; k < K; ++k) {
    decltype(panel_load(bp)) bv[NV];
    for (int v = 0; v < NV; ++v) bv[v] = panel_load(bp + (k * NV + v) * W);
    for (int n = 0; n < kRowBlock; ++n) {
      // rows past nb (row-major packing) hold no data: their sums are discarded
      const auto an = panel_bcast(KMAJOR ? ap[k * kRowBlock + n] : ap[(n < nb ? n : 0) * lda + k]);
      for (int v = 0; v < NV; ++v) acc[n][v] = panel_madd(an, bv[v], acc[n][v]);
    }
  }
  for (int n = 0; n < nb; ++n) {
    float* crow = c + n * ldc;
    for (int v = 0; v < NV; ++v) {
      const int q = v * W;
      if (q >= nvalid) break;
      const int nl = std::min(W, nvalid - q);
      Vec r = acc[n][v];
      if (cs) r = r * Vec::load_n(cs[n] + q, nl);
      if (add)
        r = r + Vec::load_n(crow + q, nl);
      else if (bias)
        r = r + Vec::load_n(bias + q, nl);
      r.store_n(crow + q, nl);
    }
  }
}

// All of B [K, N] packed as gemm_tile reads it, for a B used by many GEMMs
// (the input kernel W, read once per chunk of steps): k block k0 (kc rows)
// holds panel p at out + k0 * Npad + p * kc * NR, Npad = N rounded up to NR.
inline int64_t packed_b_floats(int64_t K, int64_t N) {
  constexpr int NR = kGemmNV * Vec::W;
  return std::max<int64_t>(K, 1) * ((N + NR - 1) / NR) * NR;
}
inline void pack_b_full(const float* b, int64_t sbk, int64_t sbn, int64_t K, int64_t N,
                        float* out) {
  constexpr int NR = kGemmNV * Vec::W;
  const int64_t npad = ((N + NR - 1) / NR) * NR;
  for (int64_t k0 = 0; k0 < K; k0 += kGemmKC) {
    const int64_t kc = std::min(kGemmKC, K - k0);
    for (int64_t j0 = 0; j0 < N; j0 += NR)
      pack_b_block(b, sbk, sbn, k0, kc, j0, (int)std::min<int64_t>(NR, N - j0),
                   out + k0 * npad + (j0 / NR) * kc * NR);
  }
}

// bfull: null, or all of B packed by pack_b_full (N padded to bfull_ld
// columns); then b is not read and n0 must be a multiple of NR.
// bf16 (AVX512_BF16 builds only; not with bfull): A and B rounded to bf16 as
// they are packed, k blocks of 2*kGemmKC (pairs: the same bytes a B panel), the
// products vdpbf16ps, sums fp32 (precision bf16's weight gradients).
inline void gemm_tile(int64_t m0, int64_t m1, int64_t n0, int64_t n1, int64_t K,
                      const float* a, int64_t sam, int64_t sak, const float* b, int64_t sbk,
                      int64_t sbn, float* c, int64_t ldc, bool accumulate, const float* bias,
                      float* apack, float* bpack, const float* bfull = nullptr,
                      int64_t bfull_ld = 0, int64_t ones_row = -1,
                      const RowScale& as = RowScale(), const RowScale& cs = RowScale(),
                      bool bf16 = false, const uint16_t* a16 = nullptr,
                      const uint16_t* b16 = nullptr) {
  constexpr int NR = kGemmNV * Vec::W;
#if !defined(RNNKERN_BF16_NATIVE)
  (void)a16;
  (void)b16;
#endif
  const int64_t npanels = (n1 - n0 + NR - 1) / NR;
  const int64_t KC = bf16 ? 2 * kGemmKC : kGemmKC;
  if (K == 0) {
    if (!accumulate)
      for (int64_t i = m0; i < m1; ++i)
        for (int64_t j = n0; j < n1; ++j) c[i * ldc + j] = bias ? bias[j] : 0.0f;
    return;
  }
  for (int64_t k0 = 0; k0 < K; k0 += KC) {
    const int64_t kc = std::min(KC, K - k0);
    const int64_t kr = bf16 ? (kc + 1) / 2 : kc;  // panel rows of this k block
    const bool add = accumulate || k0 > 0;
    const float* bk = bpack;  // this k block's B panels
    if (bfull) {
      bk = bfull + k0 * bfull_ld + (n0 / NR) * kc * NR;
    } else {
      for (int64_t p = 0; p < npanels; ++p) {
        const int64_t j0 = n0 + p * NR;
#if defined(RNNKERN_BF16_NATIVE)
        if (bf16) {  // panel p at p*kc*NR, as pairs
          if (b16) {
            pack_b_pairs16(b16, sbk, k0, kc, j0, (int)std::min<int64_t>(NR, n1 - j0),
                           bpack + p * kc * NR);
            continue;
          }
          if (sbn == 1) {
            pack_b_pairs(b, sbk, k0, kc, j0, (int)std::min<int64_t>(NR, n1 - j0),
                         bpack + p * kc * NR);
            continue;
          }
          pack_b_block(b, sbk, sbn, k0, kc, j0, (int)std::min<int64_t>(NR, n1 - j0),
                       bpack + p * kc * NR);
          to_pair_panels(bpack + p * kc * NR, 1, kc, NR);
          continue;
        }
#endif
        pack_b_block(b, sbk, sbn, k0, kc, j0, (int)std::min<int64_t>(NR, n1 - j0),
                     bpack + p * kc * NR);
      }
    }
    for (int64_t i0 = m0; i0 < m1; i0 += kGemmMC) {
      const int64_t mc = std::min(kGemmMC, m1 - i0);
      // Row-major A used by one panel only is read where it is: copying it
      // would cost as much as the reads it serves (dX = dG W^T, C <= NR).
      const bool direct = !bf16 && sak == 1 && npanels == 1 && ones_row < 0 && !as.p;
      bool kmajor;
#if defined(RNNKERN_BF16_NATIVE)
      const uint32_t* a_words = nullptr;  // bf16 A read where it is (a16, one panel)
      int64_t a_ldw = kr;
      if (a16) {  // row-major, bf16 already (gemm's contract for a16)
        kmajor = false;
        if (npanels == 1) {
          a_words = reinterpret_cast<const uint32_t*>(a16 + i0 * sam + k0);
          a_ldw = sam / 2;
        } else {
          copy_bf16_rows(a16 + i0 * sam + k0, mc, kc, sam, reinterpret_cast<uint16_t*>(apack),
                         2 * kr);
        }
      } else if (bf16 && sam == 1 && !as.p) {  // A transposed: straight into k-major pairs
        pack_a_pairs_kmajor(a, sak, i0, mc, k0, kc, apack, ones_row);
        kmajor = true;
      } else if (bf16 && sak == 1 && ones_row < 0 && !as.p) {  // row-major: rows in bf16
        to_bf16_rows(a + i0 * sam + k0, mc, kc, sam, reinterpret_cast<uint16_t*>(apack),
                     2 * kr);
        kmajor = false;
      } else {
        kmajor = !direct && pack_a_block(a, sam, sak, i0, mc, k0, kc, apack, ones_row, as);
        if (bf16) a_block_to_pairs(apack, mc, kc, kmajor);
      }
#else
      kmajor = !direct && pack_a_block(a, sam, sak, i0, mc, k0, kc, apack, ones_row, as);
#endif
      const float* ablk = direct ? a + i0 * sam + k0 : apack;
      const int64_t lda = direct ? sam : kr;
      for (int64_t p = 0; p < npanels; ++p) {
        const int64_t j0 = n0 + p * NR;
        const int nvalid = (int)std::min<int64_t>(NR, n1 - j0);
        for (int64_t i = 0; i < mc; i += kRowBlock) {
          const int nb = (int)std::min<int64_t>(kRowBlock, mc - i);
          if (add)  // the C tile comes from L2/L3: start fetching it before the k loop
            for (int n = 0; n < nb; ++n)
              for (int q = 0; q < nvalid; q += 16)
                __builtin_prefetch(c + (i0 + i + n) * ldc + j0 + q, 1);
          float* ct = c + (i0 + i) * ldc + j0;
          const float* bias_j = bias ? bias + j0 : nullptr;
          const float* csr[kRowBlock];
          if (cs.p)
            for (int n = 0; n < nb; ++n) csr[n] = cs.row(i0 + i + n) + j0;
          const float* const* csp = cs.p ? csr : nullptr;
          if (bf16) {
#if defined(RNNKERN_BF16_NATIVE)
            const auto* aw = a_words ? a_words : reinterpret_cast<const uint32_t*>(apack);
            const auto* bw = reinterpret_cast<const uint32_t*>(bk + p * kc * NR);
            if (kmajor)
              mac_panel_c<true>(aw + i * kr, 0, kr, bw, ct, ldc, nb, nvalid, add, bias_j, csp);
            else
              mac_panel_c<false>(aw + i * a_ldw, a_ldw, kr, bw, ct, ldc, nb, nvalid, add,
                                 bias_j, csp);
#endif
          } else if (kmajor) {
            mac_panel_c<true>(apack + i * kc, 0, kc, bk + p * kc * NR, ct, ldc, nb, nvalid,
                              add, bias_j, csp);
          } else {
            mac_panel_c<false>(ablk + i * lda, lda, kc, bk + p * kc * NR, ct, ldc, nb,
                               nvalid, add, bias_j, csp);
          }
        }
      }
    }
  }
}

// C[M,N] = A B (+ C) (+ bias), split over threads: the larger of M and N is
// cut into row blocks or column panels, at most one share per thread, and one
// thread only under 0.2 MFLOP. Callable from inside a parallel region (every
// thread calls run() with its own tid), so a timestep loop's region can
// compute its input projection without forking again.
struct Gemm {
  int64_t M, N, K;
  const float* a;
  int64_t sam, sak;
  const float* b;
  int64_t sbk, sbn;
  float* c;
  int64_t ldc;
  bool accumulate;
  const float* bias;  // null, or N floats added to every row (when not accumulating)
  const float* bfull = nullptr;  // null, or B packed by pack_b_full
  int64_t ones_row = -1;         // a row of A read as all ones (see pack_a_block)
  RowScale as = RowScale();      // A scaled while packed (see pack_a_block)
  RowScale cs = RowScale();      // C (+)= S ⊙ (A B) (see mac_panel_c)
  bool bf16 = false;             // bf16 products (gemm_tile; AVX512_BF16 builds only)
  // bf16 only: A (row-major, no ones_row/as) or B (sbn == 1) given as bf16
  // values with the same strides in elements (a, b are then not read)
  const uint16_t* a16 = nullptr;
  const uint16_t* b16 = nullptr;

  static constexpr int NR = kGemmNV * Vec::W;
  bool split_m() const { return M >= N; }
  int64_t units() const { return split_m() ? (M + kRowBlock - 1) / kRowBlock : (N + NR - 1) / NR; }
  // threads worth using (<= threads)
  int threads_for(int threads) const {
    if (M <= 0 || N <= 0) return 1;
    const int nt = 2.0 * M * N * K < 2e5 ? 1 : std::max(1, threads);
    return (int)std::max<int64_t>(1, std::min<int64_t>(nt, units()));
  }
  // Packing floats per thread for any M with this N and K (A block, B panels).
  // (bf16: k blocks twice as deep, packed as fp32 first)
  static int64_t apack_floats(int64_t K, bool bf16 = false) {
    return kGemmMC * std::max<int64_t>(1, std::min<int64_t>(K, (bf16 ? 2 : 1) * kGemmKC));
  }
  static int64_t bpack_floats(int64_t N, int64_t K, bool bf16 = false) {
    return ((N + NR - 1) / NR) *
           std::max<int64_t>(1, std::min<int64_t>(K, (bf16 ? 2 : 1) * kGemmKC)) * NR;
  }
  // Thread tid's share when nth threads run; apack/bpack: every thread's
  // buffers, apack_floats(K) and bpack_floats(N, K) apart.
  void run(int tid, int nth, float* apack, float* bpack) const {
    if (M <= 0 || N <= 0) return;
    const int nt = threads_for(nth);
    if (tid >= nt) return;
    int64_t lo, hi;
    split_range(units(), nt, tid, lo, hi);
    if (lo >= hi) return;
    float* ap = apack + tid * apack_floats(K, bf16);
    // no B packing with bfull
    float* bp = bfull ? nullptr : bpack + tid * bpack_floats(N, K, bf16);
    const int64_t bld = ((N + NR - 1) / NR) * NR;
    if (split_m())
      gemm_tile(lo * kRowBlock, std::min(M, hi * kRowBlock), 0, N, K, a, sam, sak, b, sbk, sbn,
                c, ldc, accumulate, bias, ap, bp, bfull, bld, ones_row, as, cs, bf16, a16, b16);
    else
      gemm_tile(0, M, lo * NR, std::min(N, hi * NR), K, a, sam, sak, b, sbk, sbn, c, ldc,
                accumulate, bias, ap, bp, bfull, bld, ones_row, as, cs, bf16, a16, b16);
  }
};

// Packing buffers for `threads` threads of GEMMs with N columns and depth K,
// taken before a parallel region (where an allocation failure could not be
// reported). B needs none when it comes packed already (Gemm::bfull).
inline void gemm_buffers(int64_t N, int64_t K, int threads, bool b_packed, float** apack,
                         float** bpack, bool bf16 = false) {
  *apack = scratch(kScratchGemmA, threads * Gemm::apack_floats(K, bf16));
  *bpack =
      b_packed ? nullptr : scratch(kScratchGemmB, threads * Gemm::bpack_floats(N, K, bf16));
}

// bias: null, or N floats added to every row of C (when not accumulating).
inline void gemm(int64_t M, int64_t N, int64_t K, const float* a, int64_t sam, int64_t sak,
                 const float* b, int64_t sbk, int64_t sbn, float* c, int64_t ldc,
                 bool accumulate, int threads, const float* bias = nullptr,
                 const float* bfull = nullptr, int64_t ones_row = -1,
                 const RowScale& as = RowScale(), const RowScale& cs = RowScale(),
                 bool bf16 = false, const uint16_t* a16 = nullptr,
                 const uint16_t* b16 = nullptr) {
  if (M <= 0 || N <= 0) return;
  const Gemm g{M, N, K, a, sam, sak, b, sbk, sbn, c, ldc, accumulate, bias, bfull, ones_row,
               as, cs, bf16, a16, b16};
  const int nt = g.threads_for(threads);
  float *apack, *bpack;
  gemm_buffers(N, K, nt, bfull != nullptr, &apack, &bpack, bf16);
  par::parallel(nt, [&](int tid, int nth) { g.run(tid, nth, apack, bpack); });
}

// The kernel-table entry (tests and benchmarks call the GEMM without a bias).
inline void gemm_entry(int64_t M, int64_t N, int64_t K, const float* a, int64_t sam, int64_t sak,
                       const float* b, int64_t sbk, int64_t sbn, float* c, int64_t ldc,
                       bool accumulate, int threads) {
  gemm(M, N, K, a, sam, sak, b, sbk, sbn, c, ldc, accumulate, threads);
  scratch_trim();
}
