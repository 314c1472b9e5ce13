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

template <int NV, int NB>
inline void mac_block(const float* a, int64_t lda, int64_t K, const float* panel,
                      Vec (&acc)[kRowBlock][NV]) {
  Vec c[NB][NV];
  for (int n = 0; n < NB; ++n)
    for (int v = 0; v < NV; ++v) c[n][v] = Vec::zero();
  for (int64_t k = 0; k < K; ++k) {
    Vec bv[NV];
    for (int v = 0; v < NV; ++v) bv[v] = Vec::load(panel + (k * NV + v) * Vec::W);
    for (int n = 0; n < NB; ++n) {
      Vec an(a[n * lda + k]);
      for (int v = 0; v < NV; ++v) c[n][v] = fmadd(an, bv[v], c[n][v]);
    }
  }
  for (int n = 0; n < NB; ++n)
    for (int v = 0; v < NV; ++v) acc[n][v] = c[n][v];
}

// acc[n][v] for the nb (<= kRowBlock) rows a, a+lda, ...; K may be 0.
template <int NV>
inline void mac_rows(int nb, const float* a, int64_t lda, int64_t K, const float* panel,
                     Vec (&acc)[kRowBlock][NV]) {
  static_assert(kRowBlock <= 4, "mac_rows dispatches up to 4 rows");
  switch (nb) {
    case 1: mac_block<NV, 1>(a, lda, K, panel, acc); break;
    case 2: mac_block<NV, (kRowBlock >= 2 ? 2 : 1)>(a, lda, K, panel, acc); break;
    case 3: mac_block<NV, (kRowBlock >= 3 ? 3 : 1)>(a, lda, K, panel, acc); break;
    default: mac_block<NV, kRowBlock>(a, lda, K, panel, acc); break;
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
constexpr int64_t kGemmKC = 256; // k block (panel rows kept in L1/L2)
constexpr int64_t kGemmMC = 96;  // rows of A packed at once

inline void gemm_tile(int64_t m0, int64_t m1, int64_t n0, int64_t n1, int64_t K,
                      const float* a, int64_t sam, int64_t sak, const float* b, int64_t sbk,
                      int64_t sbn, float* c, int64_t ldc, bool accumulate,
                      std::vector<float>& apack, std::vector<float>& bpack) {
  constexpr int NR = kGemmNV * Vec::W;
  const int64_t npanels = (n1 - n0 + NR - 1) / NR;
  const int64_t kc_max = std::min<int64_t>(K, kGemmKC);
  bpack.resize(std::max<int64_t>(1, npanels * kc_max * NR));
  apack.resize(std::max<int64_t>(1, kGemmMC * kc_max));
  if (K == 0) {
    if (!accumulate)
      for (int64_t i = m0; i < m1; ++i) std::fill(c + i * ldc + n0, c + i * ldc + n1, 0.0f);
    return;
  }
  int64_t col[NR];
  for (int64_t k0 = 0; k0 < K; k0 += kGemmKC) {
    const int64_t kc = std::min(kGemmKC, K - k0);
    const bool add = accumulate || k0 > 0;
    for (int64_t p = 0; p < npanels; ++p) {
      for (int i = 0; i < NR; ++i) {
        int64_t j = n0 + p * NR + i;
        col[i] = j < n1 ? j : -1;
      }
      pack_panel(b, sbk, sbn, k0, kc, col, NR, bpack.data() + p * kc * NR);
    }
    for (int64_t i0 = m0; i0 < m1; i0 += kGemmMC) {
      const int64_t mc = std::min(kGemmMC, m1 - i0);
      for (int64_t i = 0; i < mc; ++i)
        for (int64_t k = 0; k < kc; ++k)
          apack[i * kc + k] = a[(i0 + i) * sam + (k0 + k) * sak];
      for (int64_t p = 0; p < npanels; ++p) {
        const int64_t j0 = n0 + p * NR;
        const int nvalid = (int)std::min<int64_t>(NR, n1 - j0);
        for (int64_t i = 0; i < mc; i += kRowBlock) {
          const int nb = (int)std::min<int64_t>(kRowBlock, mc - i);
          Vec acc[kRowBlock][kGemmNV];
          mac_rows<kGemmNV>(nb, apack.data() + i * kc, kc, kc, bpack.data() + p * kc * NR, acc);
          for (int n = 0; n < nb; ++n) {
            float* crow = c + (i0 + i + n) * ldc + j0;
            alignas(64) float tmp[NR];
            for (int v = 0; v < kGemmNV; ++v) acc[n][v].store(tmp + v * Vec::W);
            if (add)
              for (int q = 0; q < nvalid; ++q) crow[q] += tmp[q];
            else
              for (int q = 0; q < nvalid; ++q) crow[q] = tmp[q];
          }
        }
      }
    }
  }
}

inline void gemm(int64_t M, int64_t N, int64_t K, const float* a, int64_t sam, int64_t sak,
                 const float* b, int64_t sbk, int64_t sbn, float* c, int64_t ldc,
                 bool accumulate, int threads) {
  if (M <= 0 || N <= 0) return;
  // Split the larger of M and N over threads; never more threads than work.
  constexpr int NR = kGemmNV * Vec::W;
  const double flops = 2.0 * M * N * K;
  int nt = std::max(1, threads);
  if (flops < 2e5) nt = 1;
  const bool split_m = M >= N;
  const int64_t units = split_m ? (M + kRowBlock - 1) / kRowBlock : (N + NR - 1) / NR;
  nt = (int)std::min<int64_t>(nt, units);
#if defined(_OPENMP)
#pragma omp parallel num_threads(nt) if (nt > 1)
#endif
  {
    int tid = 0, nth = 1;
#if defined(_OPENMP)
    tid = omp_get_thread_num();
    nth = omp_get_num_threads();
#endif
    int64_t lo, hi;
    split_range(units, nth, tid, lo, hi);
    std::vector<float> apack, bpack;
    if (lo < hi) {
      if (split_m)
        gemm_tile(lo * kRowBlock, std::min(M, hi * kRowBlock), 0, N, K, a, sam, sak, b, sbk,
                  sbn, c, ldc, accumulate, apack, bpack);
      else
        gemm_tile(0, M, lo * NR, std::min(N, hi * NR), K, a, sam, sak, b, sbk, sbn, c, ldc,
                  accumulate, apack, bpack);
    }
  }
}
