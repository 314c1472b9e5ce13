// rnnkern — the GPU kernels of the three cells, written once against
// compat.cuh: compiled by nvcc for the `cuda` backend and by the host compiler
// for `cuda-emu`. The pointwise math is the shared cell math of
// csrc/include/rnnkern/cells.h (RNNKERN_HD templates instantiated with float).
//
// Layout on the device (all float32, time-major, steps in PROCESSING order s):
//   x      [N, T, C]     the input in the caller's layout (the GEMMs read it
//                        time-major through GemmArgs' a_bt; go_backwards reverses)
//   P      [T, N, G*H]   the hoisted input projection x W (+ input bias)
//   states [T+1, N, H]   states[0] = h0, states[s+1] = the state after step s
//                        (c likewise for LSTM); in inference a ring of two
//   slots  [S, T, N, H]  saved activations, slot-major so each is a [T*N, H]
//                        matrix the GEMMs read directly:
//                          SimpleRNN a | LSTM i f g o act(c) |
//                          GRU r.a. z r hh (h_prev U_h + b_rh) | GRU r.b. z r hh rh
//                        (rh = r ⊙ h_prev ⊙ m_h, what multiplies U_h)
//   dGx, dGr [T, N, G*H] d(pre-activation) on the input side and on the
//                        recurrent side (they differ only for GRU r.a.'s h block)
// Kernels, and the launch kind each needs (see emu_runtime.h):
//   gemm_kernel          block-cooperative  tiled GEMM, 64x64 C tiles (32x32 on
//                                           cuda-emu), 4x4 register blocks a thread,
//                                           the next k chunk loaded during this one
//   gemm_mma_kernel<T>   block-cooperative  the same on the tensor cores, C tile T
//   step_forward<M>      block-cooperative  recurrent product of one step fused
//                                           with the cell's pointwise forward
//   step_backward<M>     independent        the cell's pointwise backward
//   gru_rb_dr            independent        GRU reset_before: dr from d(r h) U_h^T
//   column_sums          independent        bias gradients, a fixed order: the
//                                           same inputs give bitwise the same sums
//                                           (after column_partial_sums over row chunks)
//   split_sum            independent        a split-K GEMM's slabs added in order
//   elementwise, elementwise_program, square_partial_sums: independent  the
//                                           optimizers' updates on the device (one
//                                           float op an element, or a sequence of
//                                           them in one pass; a sum of squares in a
//                                           fixed order)
//   seq_forward<M>, seq_backward<M>  grid-cooperative, or one cluster  the persistent family
//                                           (persistent.cuh): a launch a time loop
//   seen_flags: independent
//   keras_from_torch, torch_from_keras, bias_from_torch, bias_grad_to_torch:
//                        independent: PyTorch's weight layout in and out
#pragma once

#include "compat.cuh"
#include "rnnkern/cells.h"

namespace rnnkern {
namespace RK_GPU_NS {

// ------------------------------------------------------------------ GEMM
#if defined(RNNKERN_GPU_EMU)
constexpr int kTB = 8;      // the emulation runs one OS thread a CUDA thread: 8x8 threads
#else
constexpr int kTB = 16;     // threads per tile edge: 16x16 threads, 4x4 C entries each
#endif
constexpr int kTile = 4 * kTB;   // C tile edge
constexpr int kKT = 16;          // k chunk held in shared memory
constexpr int kStage = kKT * kTile / (kTB * kTB);   // elements of each operand a thread stages
constexpr size_t kGemmSmem = 2 * kKT * kTile * sizeof(float);

// C[M,N] = beta * C + cmask ⊙ (A B) + bias, A(i,k) = ta ? a[k*lda + i] : a[i*lda + k],
// B(k,j) = tb ? b[j*ldb + k] : b[k*ldb + j]. Optional masks (dropout):
//   amask  scales each STORED element of a, (r, c) -> amask[(r % amask_rows) * amask_ld + c]
//   cmask  scales the product's (i, j) by cmask[(i % cmask_rows) * cmask_ld + j]
// beta is 0 (C is not read) or 1. k runs over [k_begin, K): a slab of a split K.
struct GemmArgs {
  int64_t M = 0, N = 0, K = 0, k_begin = 0;
  const float* a = nullptr;
  int64_t lda = 0;
  bool ta = false;
  const float* b = nullptr;
  int64_t ldb = 0;
  bool tb = false;
  float* c = nullptr;
  int64_t ldc = 0;
  float beta = 0.0f;
  const float* bias = nullptr;
  const float* amask = nullptr;
  int64_t amask_rows = 1, amask_ld = 0;
  const float* cmask = nullptr;
  int64_t cmask_rows = 1, cmask_ld = 0;
  // precision tf32: where the tensor-core GEMM runs, one TF32 product (hi hi)
  // instead of the fp32-accurate three; the SIMT GEMM ignores it (fp32 is at least
  // the precision asked for)
  bool tf32 = false;
  // precision bf16: A and B rounded to bfloat16 as they are loaded (A before its
  // mask scales it), rnnkern.reference's bf16 products; where no mask scales A,
  // one bf16 m16n8k16 mma a 16 k on the tensor cores (exact operands), else 3xTF32
  bool bf16 = false;
  // the caller's batch-major rows ([N, T, lda] x, [N, T, ldc] dx) where the GEMM's
  // rows are time-major: logical row s * bt_N + n is stored row n * bt_T + t, t =
  // bt_rev ? bt_T - 1 - s : s (go_backwards); for A's stored rows (a_bt) or C's
  // rows (c_bt). The masks index logical rows.
  bool a_bt = false, c_bt = false, bt_rev = false;
  int64_t bt_N = 1, bt_T = 1;
};

// Where logical row r lies in storage (GemmArgs' a_bt / c_bt).
RK_HD_INLINE int64_t gemm_row(const GemmArgs& g, bool bt, int64_t r) {
  if (!bt) return r;
  const int64_t s = r / g.bt_N, n = r - s * g.bt_N;
  return n * g.bt_T + (g.bt_rev ? g.bt_T - 1 - s : s);
}

RK_DEV float gemm_load_a(const GemmArgs& g, int64_t i, int64_t k) {
  if (i >= g.M || k >= g.K) return 0.0f;
  const int64_t r = g.ta ? k : i, c = g.ta ? i : k;
  float v = g.a[gemm_row(g, g.a_bt, r) * g.lda + c];
  if (g.bf16) v = rk_to_bf16(v);
  if (g.amask) v *= g.amask[(r % g.amask_rows) * g.amask_ld + c];
  return v;
}

RK_DEV float gemm_load_b(const GemmArgs& g, int64_t k, int64_t j) {
  if (k >= g.K || j >= g.N) return 0.0f;
  const float v = g.tb ? g.b[j * g.ldb + k] : g.b[k * g.ldb + j];
  return g.bf16 ? rk_to_bf16(v) : v;
}

// C(i, j) = beta C + cmask ⊙ v + bias: a GEMM's epilogue for one entry.
RK_DEV void gemm_store(const GemmArgs& g, int64_t i, int64_t j, float v) {
  if (g.cmask) v *= g.cmask[(i % g.cmask_rows) * g.cmask_ld + j];
  if (g.bias) v += g.bias[j];
  float* cp = g.c + gemm_row(g, g.c_bt, i) * g.ldc + j;
  *cp = g.beta != 0.0f ? *cp + v : v;
}

// Where thread tid's u-th staged element of a chunk lies in the A and B tiles.
// TM, TN: the C tile's rows (A's tile width) and columns (B's) of the kernel staging it.
template <int TM>
RK_DEV void gemm_a_pos(const GemmArgs& g, int e, int& kk, int& ii) {
  kk = g.ta ? e / TM : e % kKT;   // consecutive threads read consecutive addresses
  ii = g.ta ? e % TM : e / kKT;
}
template <int TN>
RK_DEV void gemm_b_pos(const GemmArgs& g, int e, int& kk, int& jj) {
  kk = g.tb ? e % kKT : e / TN;
  jj = g.tb ? e / kKT : e % TN;
}

// A block's share of one k chunk of a GEMM's operands, staged through registers:
// gemm_fetch loads the SA elements of A and SB of B that thread tid stages (the
// next chunk's, while the block multiplies this one), gemm_stash stores them to
// the A and B tiles (row strides pa, pb). TM x TN: the C tile; THREADS: the block's.
template <int TM, int TN, int THREADS, int SA, int SB>
RK_DEV void gemm_fetch(const GemmArgs& g, int tid, int64_t i0, int64_t j0, int64_t k0,
                       float (&ra)[SA], float (&rb)[SB]) {
  RK_UNROLL
  for (int u = 0; u < SA; ++u) {
    int kk, ii;
    gemm_a_pos<TM>(g, tid + u * THREADS, kk, ii);
    ra[u] = gemm_load_a(g, i0 + ii, k0 + kk);
  }
  RK_UNROLL
  for (int u = 0; u < SB; ++u) {
    int kk, jj;
    gemm_b_pos<TN>(g, tid + u * THREADS, kk, jj);
    rb[u] = gemm_load_b(g, k0 + kk, j0 + jj);
  }
}
template <int TM, int TN, int THREADS, int SA, int SB>
RK_DEV void gemm_stash(const GemmArgs& g, int tid, const float (&ra)[SA], const float (&rb)[SB],
                       float* as, int pa, float* bs, int pb) {
  RK_UNROLL
  for (int u = 0; u < SA; ++u) {
    int kk, ii;
    gemm_a_pos<TM>(g, tid + u * THREADS, kk, ii);
    as[kk * pa + ii] = ra[u];
  }
  RK_UNROLL
  for (int u = 0; u < SB; ++u) {
    int kk, jj;
    gemm_b_pos<TN>(g, tid + u * THREADS, kk, jj);
    bs[kk * pb + jj] = rb[u];
  }
}

// grid (ceil(N/kTile), ceil(M/kTile)), block (kTB, kTB), kGemmSmem bytes; block-cooperative.
// A thread loads its share of the next k chunk into registers while the block
// multiplies the current one from shared memory, so the loads' latency hides
// behind the arithmetic. Each C entry sums k in order: bitwise reproducible.
RK_GLOBAL void gemm_kernel(GemmArgs g) {
  float* as = RK_SMEM(float);    // [kKT][kTile]: as[kk*kTile + ii] = A(i0+ii, k0+kk)
  float* bs = as + kKT * kTile;  // [kKT][kTile]: bs[kk*kTile + jj] = B(k0+kk, j0+jj)
  const int tx = RK_TX, ty = RK_TY, tid = ty * kTB + tx;
  const int64_t i0 = (int64_t)RK_BY * kTile, j0 = (int64_t)RK_BX * kTile;
  float acc[4][4];
  RK_UNROLL
  for (int r = 0; r < 4; ++r)
    RK_UNROLL
    for (int q = 0; q < 4; ++q) acc[r][q] = 0.0f;
  float ra[kStage], rb[kStage];
  constexpr int kThreads = kTB * kTB;
  if (g.k_begin < g.K) gemm_fetch<kTile, kTile, kThreads>(g, tid, i0, j0, g.k_begin, ra, rb);
  for (int64_t k0 = g.k_begin; k0 < g.K; k0 += kKT) {
    gemm_stash<kTile, kTile, kThreads>(g, tid, ra, rb, as, kTile, bs, kTile);
    RK_SYNC();
    if (k0 + kKT < g.K) gemm_fetch<kTile, kTile, kThreads>(g, tid, i0, j0, k0 + kKT, ra, rb);
    RK_UNROLL
    for (int kk = 0; kk < kKT; ++kk) {
      float av[4], bv[4];
      RK_UNROLL
      for (int r = 0; r < 4; ++r) av[r] = as[kk * kTile + ty + kTB * r];
      RK_UNROLL
      for (int q = 0; q < 4; ++q) bv[q] = bs[kk * kTile + tx + kTB * q];
      RK_UNROLL
      for (int r = 0; r < 4; ++r)
        RK_UNROLL
        for (int q = 0; q < 4; ++q) acc[r][q] += av[r] * bv[q];
    }
    RK_SYNC();
  }
  RK_UNROLL
  for (int r = 0; r < 4; ++r) {
    const int64_t i = i0 + ty + kTB * r;
    if (i >= g.M) continue;
    RK_UNROLL
    for (int q = 0; q < 4; ++q) {
      const int64_t j = j0 + tx + kTB * q;
      if (j >= g.N) continue;
      gemm_store(g, i, j, acc[r][q]);
    }
  }
}

// The same GEMM on the tensor cores in fp32 accuracy: each operand split into
// TF32 hi + lo parts and A B = hi hi + hi lo + lo hi (the lo lo term, ~2^-22 of
// the product, dropped), three m16n8k8 mma a pair of fragments; the hi hi product
// alone for precision tf32; bf16 operands (exact, A unscaled by a mask) as one bf16
// m16n8k16 mma a chunk of 16 k instead. 8 warps (256 threads) as 2 x 4, each warp
// MT x NT mma tiles (16 x 8 each): a C tile of 32 MT rows by 32 NT columns
// (GemmTile), the next k chunk loaded to registers during this one. A and B staged
// at a row stride of 8 floats over the tile (TF32: the fragment loads of a warp,
// 4 k rows by 8, fall in distinct banks) or 4 (bf16: its k pairs 2 rows apart do).
// Each C entry sums its k in the same order whatever the tile: the tiles give
// bitwise the same C, and each is bitwise reproducible run to run on one device.
// grid (ceil(N/TN), ceil(M/TM)), block (256), gemm_mma_smem(tile) bytes; block-cooperative.
constexpr int kMmaThreads = 256;
// The tensor-core GEMM's C tiles (gemm_tile_shape: rows x columns), smallest first.
enum class GemmTile : int { T32x64, T64x64, T128x64, T128x128, Count };
// (gemm_mma_kernel<T>'s MT and NT, times 32)
RK_HD_INLINE void gemm_tile_shape(GemmTile t, int& tm, int& tn) {
  tm = t == GemmTile::T32x64 ? 32 : t == GemmTile::T64x64 ? 64 : 128;
  tn = t == GemmTile::T128x128 ? 128 : 64;
}
inline size_t gemm_mma_smem(GemmTile t) {
  int tm, tn;
  gemm_tile_shape(t, tm, tn);
  return (size_t)kKT * (tm + 8 + tn + 8) * sizeof(float);
}

RK_DEV void tf32_split(float v, float& hi, float& lo) {
  hi = rk_to_tf32(v);
  lo = rk_to_tf32(v - hi);
}

template <GemmTile T>
RK_GLOBAL void gemm_mma_kernel(GemmArgs g) {
  constexpr int MT = T == GemmTile::T32x64 ? 1 : T == GemmTile::T64x64 ? 2 : 4;
  constexpr int NT = T == GemmTile::T128x128 ? 4 : 2;
  constexpr int TM = 32 * MT, TN = 32 * NT;
  constexpr int SA = kKT * TM / kMmaThreads, SB = kKT * TN / kMmaThreads;
  static_assert(SA >= 1 && SB >= 1, "a thread stages at least one element of each operand");
  const bool bf16 = g.bf16 && !g.amask;   // bfloat16 operands, A unscaled: m16n8k16 fragments
  const int pa = TM + (bf16 ? 4 : 8), pb = TN + (bf16 ? 4 : 8);
  float* as = RK_SMEM(float);   // [kKT][pa]: A(i0+ii, k0+kk) at kk*pa + ii
  float* bs = as + kKT * pa;    // [kKT][pb]: B(k0+kk, j0+jj) at kk*pb + jj
  const int tid = RK_TY * RK_BDX + RK_TX, warp = tid / 32, l = rk_lane();
  const int gq = l / 4, tq = l % 4;
  const int wm = (warp / 4) * 16 * MT, wn = (warp % 4) * 8 * NT;   // the warp's sub-tile
  const int64_t i0 = (int64_t)RK_BY * TM, j0 = (int64_t)RK_BX * TN;
  float d[MT][NT][4];
  RK_UNROLL
  for (int mt = 0; mt < MT; ++mt)
    RK_UNROLL
    for (int nt = 0; nt < NT; ++nt)
      RK_UNROLL
      for (int r = 0; r < 4; ++r) d[mt][nt][r] = 0.0f;
  float ra[SA], rb[SB];
  if (g.k_begin < g.K) gemm_fetch<TM, TN, kMmaThreads>(g, tid, i0, j0, g.k_begin, ra, rb);
  for (int64_t k0 = g.k_begin; k0 < g.K; k0 += kKT) {
    gemm_stash<TM, TN, kMmaThreads>(g, tid, ra, rb, as, pa, bs, pb);
    RK_SYNC();
    if (k0 + kKT < g.K) gemm_fetch<TM, TN, kMmaThreads>(g, tid, i0, j0, k0 + kKT, ra, rb);
    if (bf16) {   // one m16n8k16 a tile pair (kKT == 16): the staged values are bf16
      static_assert(kKT == 16, "the bf16 path takes the chunk as one k16 step");
      uint32_t a16[MT][4], b16[NT][2];
      RK_UNROLL
      for (int mt = 0; mt < MT; ++mt)
        RK_UNROLL
        for (int r = 0; r < 4; ++r) {   // A(row g + 8 (r%2), k 2t + 8 (r/2) + {0, 1})
          const float* ap = as + (2 * tq + 8 * (r / 2)) * pa + wm + mt * 16 + gq + 8 * (r % 2);
          a16[mt][r] = rk_pack_bf16(ap[0], ap[pa]);
        }
      RK_UNROLL
      for (int nt = 0; nt < NT; ++nt)
        RK_UNROLL
        for (int r = 0; r < 2; ++r) {   // B(k 2t + 8 r + {0, 1}, col g)
          const float* bp = bs + (2 * tq + 8 * r) * pb + wn + nt * 8 + gq;
          b16[nt][r] = rk_pack_bf16(bp[0], bp[pb]);
        }
      RK_UNROLL
      for (int mt = 0; mt < MT; ++mt)
        RK_UNROLL
        for (int nt = 0; nt < NT; ++nt) rk_mma_bf16(d[mt][nt], a16[mt], b16[nt]);
      RK_SYNC();
      continue;
    }
    RK_UNROLL
    for (int k8 = 0; k8 < kKT; k8 += 8) {
      float ah[MT][4], al[MT][4], bh[NT][2], bl[NT][2];
      RK_UNROLL
      for (int mt = 0; mt < MT; ++mt)
        RK_UNROLL
        for (int r = 0; r < 4; ++r)   // A(row g + 8 (r%2), k t + 4 (r/2))
          tf32_split(as[(k8 + tq + 4 * (r / 2)) * pa + wm + mt * 16 + gq + 8 * (r % 2)],
                     ah[mt][r], al[mt][r]);
      RK_UNROLL
      for (int nt = 0; nt < NT; ++nt)
        RK_UNROLL
        for (int r = 0; r < 2; ++r)   // B(k t + 4 r, col g)
          tf32_split(bs[(k8 + tq + 4 * r) * pb + wn + nt * 8 + gq], bh[nt][r], bl[nt][r]);
      RK_UNROLL
      for (int mt = 0; mt < MT; ++mt)
        RK_UNROLL
        for (int nt = 0; nt < NT; ++nt) {
          if (!g.tf32) {
            rk_mma_tf32(d[mt][nt], ah[mt], bl[nt]);
            rk_mma_tf32(d[mt][nt], al[mt], bh[nt]);
          }
          rk_mma_tf32(d[mt][nt], ah[mt], bh[nt]);
        }
    }
    RK_SYNC();
  }
  RK_UNROLL
  for (int mt = 0; mt < MT; ++mt)
    RK_UNROLL
    for (int nt = 0; nt < NT; ++nt)
      RK_UNROLL
      for (int r = 0; r < 4; ++r) {   // D(row g + 8 (r/2), col 2t + r%2)
        const int64_t i = i0 + wm + mt * 16 + gq + 8 * (r / 2);
        const int64_t j = j0 + wn + nt * 8 + 2 * tq + r % 2;
        if (i < g.M && j < g.N) gemm_store(g, i, j, d[mt][nt][r]);
      }
}

// ------------------------------------------------------------ the step kernels
enum class Mode : int { Simple, Lstm, GruRA, GruRB1, GruRB2 };

// The mode of a cell kind's (dispatch.h's CellKind) time loop: its first phase for
// GRU reset_before, whose loops run GruRB1 then GruRB2 each step.
template <class K>
inline constexpr Mode kMode = K::cell == Cell::SimpleRNN ? Mode::Simple
                            : K::cell == Cell::LSTM      ? Mode::Lstm
                            : K::reset_after             ? Mode::GruRA
                                                         : Mode::GruRB1;

// Gates a step kernel computes, and the first one.
template <Mode M>
inline constexpr int kStepGates = M == Mode::Simple ? 1 : M == Mode::Lstm ? 4
                                : M == Mode::GruRA ? 3 : M == Mode::GruRB1 ? 2 : 1;
template <Mode M>
inline constexpr int kFirstGate = M == Mode::GruRB2 ? 2 : 0;

constexpr int kStepU = 16;   // units a block computes (threads along x)
constexpr int kStepR = 16;   // batch rows a block computes (4 threads along y, 4 rows each)
constexpr int kStepTY = 4;   // threads along y
constexpr int kStepK = 16;   // k chunk in shared memory

template <Mode M>
constexpr size_t step_smem() {
  return (size_t)kStepGates<M> * (kStepR * kStepK + kStepK * kStepU) * sizeof(float);
}

struct StepArgs {
  int64_t N = 0, H = 0, GH = 0;
  Act act = Act::Tanh, ract = Act::Sigmoid;
  const float* p = nullptr;       // [N, GH] this step's input projection (input bias in)
  const float* a = nullptr;       // [N, H] what multiplies U: h_prev, or rh (GRU r.b. 2nd phase)
  const int* wait = nullptr;      // plan.flags: the blocks' tags, a's chunk staged only once
  int wait_tag = 0;               //   the blocks that wrote it have published wait_tag
  int wait_ut = 0;                //   (units a block owns)
  bool bf16 = false;              // precision bf16: a rounded to bfloat16 before rmask scales it
  int tc = 0;                     // the per-step family's product on the tensor cores
                                  // (R3, step_mma.cuh) in this many products a fragment
                                  // pair (as SeqPlan::tc); 0: FFMA (step_forward)
  const float* rmask = nullptr;   // [G, N, H] recurrent dropout masks, or null
  const float* u = nullptr;       // [H, GH]
  const uint32_t* u2 = nullptr;   // R3 with precision bf16's one product (tc 1, no rmask):
                                  // u as pack_bf16_pairs' words [ceil(H/2), GH], read
                                  // instead of u; else null
  const float* brec = nullptr;    // GRU r.a.: the recurrent bias [GH], or null
  const float* hprev = nullptr;   // [N, H]
  const float* cprev = nullptr;   // [N, H] LSTM
  float* hnext = nullptr;         // [N, H]
  float* cnext = nullptr;         // [N, H] LSTM
  const uint8_t* mask = nullptr;  // this step's mask of row n at mask[n * mask_stride], or null
  int64_t mask_stride = 0;
  const uint8_t* seen = nullptr;  // [N] any unmasked step so far, or null (all seen)
  float* y = nullptr;             // this step's output, row n at y + n * y_ld, or null
  int64_t y_ld = 0;               // (the caller's [N, T, H] sequence: T*H; a last output: H)
  float* slots = nullptr;         // this step's saved activations: slot k at slots[k * slot_stride]
  int64_t slot_stride = 0;
};

// What the pointwise forward of (n, j) reads besides the recurrent products: the
// projections, h_prev, c_prev, GRU reset_before's m_h and z, the mask and seen
// flags. step_in loads them; a family that calls it before its product hides
// their latency behind the product instead of adding it to the step.
struct StepIn {
  float p[4] = {0.0f, 0.0f, 0.0f, 0.0f};
  float hp = 0.0f, cp = 0.0f, mh = 1.0f, z = 0.0f, brec[3] = {0.0f, 0.0f, 0.0f};
  bool m = true, seen = true;
};

template <Mode M>
RK_DEV StepIn step_in(const StepArgs& s, int64_t n, int64_t j) {
  constexpr int NP = M == Mode::Simple ? 1 : M == Mode::Lstm ? 4 : M == Mode::GruRA ? 3
                   : M == Mode::GruRB1 ? 2 : 1;    // the projections the mode adds
  const int64_t e = n * s.H + j;
  const float* p = s.p + n * s.GH + j;             // gate g's projection at p[g * H]
  StepIn in;
  RK_UNROLL
  for (int g = 0; g < NP; ++g) in.p[g] = p[g * s.H];
  in.hp = s.hprev[e];
  if constexpr (M == Mode::Lstm) in.cp = s.cprev[e];
  if constexpr (M == Mode::GruRA) {
    if (s.brec) {
      RK_UNROLL
      for (int g = 0; g < 3; ++g) in.brec[g] = s.brec[g * s.H + j];
    }
  }
  if constexpr (M == Mode::GruRB1) {
    if (s.rmask) in.mh = s.rmask[2 * s.N * s.H + e];
  }
  if constexpr (M == Mode::GruRB2) in.z = s.slots[e];
  in.m = !s.mask || s.mask[n * s.mask_stride];
  in.seen = !s.seen || s.seen[n];
  return in;
}

// The pointwise forward of one step at row n, unit j, given the recurrent products
// acc[g] of this mode's gates (kStepGates<M> of them, from kFirstGate<M>) and what
// step_in loaded: the cell math of cells.h, the mask, the saved activations, the
// state and the output. Every time-loop family calls it, so they agree on
// everything but the sum order. Returns the h it stored (GruRB1, which stores no
// state: the rh it stored for the second phase).
template <Mode M>
RK_DEV float step_point(const StepArgs& s, int64_t n, int64_t j, const float* acc,
                        const StepIn& in) {
  const int64_t e = n * s.H + j;
  const float* p = in.p;
  const float hp = in.hp;
  float h = hp, c = 0.0f;
  if constexpr (M == Mode::Simple) {
    h = simple_forward(s.act, p[0] + acc[0]);
    if (s.slots) s.slots[e] = h;
  } else if constexpr (M == Mode::Lstm) {
    const LstmAct<float> v = lstm_forward(s.act, s.ract, p[0] + acc[0], p[1] + acc[1],
                                          p[2] + acc[2], p[3] + acc[3], in.cp);
    h = v.h;
    c = v.c;
    if (s.slots) {
      s.slots[e] = v.i;
      s.slots[s.slot_stride + e] = v.f;
      s.slots[2 * s.slot_stride + e] = v.g;
      s.slots[3 * s.slot_stride + e] = v.o;
      s.slots[4 * s.slot_stride + e] = v.ac;
    }
  } else if constexpr (M == Mode::GruRA) {
    float inner[3];
    RK_UNROLL
    for (int g = 0; g < 3; ++g) inner[g] = acc[g] + in.brec[g];
    const GruAct<float> v = gru_forward_reset_after(s.act, s.ract, p[0], p[1], p[2],
                                                    inner[0], inner[1], inner[2]);
    h = gru_blend(v.z, hp, v.hh);
    if (s.slots) {
      s.slots[e] = v.z;
      s.slots[s.slot_stride + e] = v.r;
      s.slots[2 * s.slot_stride + e] = v.hh;
      s.slots[3 * s.slot_stride + e] = inner[2];
    }
  } else if constexpr (M == Mode::GruRB1) {
    // z and r, and rh = r ⊙ (h_prev ⊙ m_h) for the second phase; no state yet
    const auto zr = gru_gates_reset_before(s.ract, p[0] + acc[0], p[1] + acc[1]);
    s.slots[e] = zr.z;
    s.slots[s.slot_stride + e] = zr.r;
    const float rh = zr.r * hp * in.mh;
    s.slots[3 * s.slot_stride + e] = rh;
    return rh;
  } else {  // GruRB2: a = rh, this kernel's gate is U_h
    const float hh = gru_candidate_reset_before(s.act, p[0], acc[0]);
    s.slots[2 * s.slot_stride + e] = hh;
    h = gru_blend(in.z, hp, hh);
  }
  if (!in.m) h = hp;
  s.hnext[e] = h;
  if constexpr (M == Mode::Lstm) s.cnext[e] = in.m ? c : in.cp;
  if (s.y) s.y[n * s.y_ld + j] = in.seen ? h : 0.0f;
  return h;
}

// One block's tile of one step: units [u0, u0+16) of rows [n0, n0+16), every gate
// of M: the recurrent product and the cell's pointwise forward. A thread computes
// one unit of 4 rows: 4 x NG accumulators. `as` holds the A chunk
// ([NG][16][kStepK]), `us` the U chunk ([kStepK][NG][16]). Block-cooperative.
template <Mode M>
RK_DEV void step_tile(const StepArgs& s, int64_t u0, int64_t n0, float* as, float* us) {
  constexpr int NG = kStepGates<M>, G0 = kFirstGate<M>;
  const int tx = RK_TX, ty = RK_TY, tid = ty * kStepU + tx, nthr = kStepU * kStepTY;
  const int64_t NH = s.N * s.H;
  constexpr int RPT = kStepR / kStepTY;           // rows a thread
  float acc[RPT][NG];
  RK_UNROLL
  for (int r = 0; r < RPT; ++r)
    RK_UNROLL
    for (int g = 0; g < NG; ++g) acc[r][g] = 0.0f;
  for (int64_t k0 = 0; k0 < s.H; k0 += kStepK) {
    for (int e = tid; e < NG * kStepR * kStepK; e += nthr) {
      const int g = e / (kStepR * kStepK), rr = (e / kStepK) % kStepR, kk = e % kStepK;
      const int64_t n = n0 + rr, k = k0 + kk;
      float v = 0.0f;
      if (n < s.N && k < s.H) {
        v = s.a[n * s.H + k];
        if (s.bf16) v = rk_to_bf16(v);
        if (s.rmask) v *= s.rmask[(G0 + g) * NH + n * s.H + k];
      }
      as[e] = v;
    }
    for (int e = tid; e < kStepK * NG * kStepU; e += nthr) {
      const int kk = e / (NG * kStepU), g = (e / kStepU) % NG, uu = e % kStepU;
      const int64_t k = k0 + kk, j = u0 + uu;
      us[e] = (k < s.H && j < s.H) ? s.u[k * s.GH + (G0 + g) * s.H + j] : 0.0f;
    }
    RK_SYNC();
    RK_UNROLL
    for (int kk = 0; kk < kStepK; ++kk) {
      float uv[NG];
      RK_UNROLL
      for (int g = 0; g < NG; ++g) uv[g] = us[(kk * NG + g) * kStepU + tx];
      RK_UNROLL
      for (int r = 0; r < RPT; ++r)
        RK_UNROLL
        for (int g = 0; g < NG; ++g)
          acc[r][g] += as[(g * kStepR + ty + kStepTY * r) * kStepK + kk] * uv[g];
    }
    RK_SYNC();
  }
  const int64_t j = u0 + tx;
  if (j >= s.H) return;
  RK_UNROLL
  for (int r = 0; r < RPT; ++r) {
    const int64_t n = n0 + ty + kStepTY * r;
    if (n < s.N) step_point<M>(s, n, j, acc[r], step_in<M>(s, n, j));
  }
}

// grid (ceil(H/16), ceil(N/16)), block (16, 4), step_smem<M>() bytes; block-cooperative.
template <Mode M>
RK_GLOBAL void step_forward(StepArgs s) {
  float* as = RK_SMEM(float);                            // [NG][kStepR][kStepK]
  float* us = as + kStepGates<M> * kStepR * kStepK;      // [kStepK][NG * kStepU]
  step_tile<M>(s, (int64_t)RK_BX * kStepU, (int64_t)RK_BY * kStepR, as, us);
}

struct SeqPlan {
  int blocks = 0, threads = 0;
  int ut = 0;   // units a block owns
  int kc = 0;   // k values (forward) or gate columns (backward) staged at once
  int ks = 1;   // threads summing one (row, unit) pair, each over its share of k;
                // with tc, the k shares of each mma tile (a warp an item)
  int tc = 0;   // the recurrent product on the tensor cores, in this many m16n8k8
                // products a fragment pair (3: fp32 as 3xTF32, 2: bf16 with
                // dropout-scaled h against the exact U, 1: tf32, or bf16's exact
                // operands, which take one m16n8k16 bf16 mma a 16 k instead;
                // launch.cuh recurrent_products); 0: FFMA
  int cluster = 0;   // blocks: the grid is one thread-block cluster (RK_LAUNCH_CLUSTER,
                     // the cluster's barrier a step); 0: a grid-cooperative launch
  int flags = 0;     // a grid of blocks > 1 (grid-cooperative, so all resident) without
                     // a step barrier: each block publishes a step tag once its
                     // exchanged rows are written (SeqArgs::flags[block]), and waits,
                     // before staging a chunk, only for the tags of the blocks that
                     // wrote it (persistent.cuh seq_publish / seq_wait): R2's
                     // step-tagged hand-off. Only where forced (",flags")
  int push = 0;      // one block, or one cluster; the exchanged rows one staged
                     // chunk; not GRU reset_before: a block writes its units' h_t
                     // (forward) or dG_t (backward) into every block's staging
                     // buffer (two, alternating; rk_dsmem in a cluster), so no step
                     // stages them from L2 (the forward's first stages h0;
                     // launch.cuh seq_push_plan)
  int steps = 0;     // no partition: the per-step family runs the loop instead (a tuned
                     // choice, launch.cuh tuned_plan: it was the faster on first use)
  int pairs = 0;     // with tc 1 in precision bf16 (its one m16n8k16 product) and H even:
                     // the resident U as bf16 pairs of k (forward: rows k, k+1; backward:
                     // gate columns c, c+1) in one word, half the shared memory of fp32,
                     // each B fragment register one load (persistent.cuh seq_urows)
};

// Everything the steps need; step s's StepArgs are made from it (forward_step_args).
struct SeqArgs {
  StepArgs base;                 // N, H, GH, act, ract, rmask, u, brec, slot_stride
  int64_t T = 0;
  bool go_backwards = false, training = false, return_sequences = true;
  const float* p = nullptr;      // [T, N, GH]
  float* states = nullptr;       // [T+1, N, H], or a ring of two without training
  float* cstates = nullptr;      // LSTM, likewise
  const uint8_t* mask = nullptr; // [N, T] or null
  const uint8_t* seen = nullptr; // [T, N] or null
  int* flags = nullptr;          // plan.flags: a tag a block, zero at launch
  float* yseq = nullptr;         // [N, T, H] (return_sequences; step s at [:, s]) or null
  float* ylast = nullptr;        // [N, H] (otherwise)
  float* slots = nullptr;        // slot k of step s at slots + k*slot_stride + (training ? s*N*H : 0)
  bool lstm = false;
  int products = 3;              // tensor-core products a fragment pair, for the precision
  SeqPlan plan;                  // the persistent family's partition
};

RK_HD_INLINE StepArgs forward_step_args(const SeqArgs& q, int64_t s) {
  const int64_t NH = q.base.N * q.base.H;
  const int64_t t = q.go_backwards ? q.T - 1 - s : s;
  auto st = [&](float* buf, int64_t i) { return buf + (q.training ? i : i % 2) * NH; };
  StepArgs a = q.base;
  a.p = q.p + s * q.base.N * q.base.GH;
  a.a = st(q.states, s);
  a.hprev = st(q.states, s);
  a.hnext = st(q.states, s + 1);
  if (q.lstm) {
    a.cprev = st(q.cstates, s);
    a.cnext = st(q.cstates, s + 1);
  }
  a.mask = q.mask ? q.mask + t : nullptr;
  a.mask_stride = q.T;
  a.seen = q.seen ? q.seen + s * q.base.N : nullptr;
  a.y = q.return_sequences ? q.yseq + s * q.base.H : (s == q.T - 1 ? q.ylast : nullptr);
  a.y_ld = q.return_sequences ? q.T * q.base.H : q.base.H;
  a.slots = q.slots ? q.slots + (q.training ? s * NH : 0) : nullptr;
  return a;
}

// GRU reset_before's second phase: a reads rh (slot 3, masked already), gate U_h.
RK_HD_INLINE StepArgs second_phase(const StepArgs& a) {
  StepArgs a2 = a;
  a2.p = a.p + 2 * a.H;
  a2.a = a.slots + 3 * a.slot_stride;
  a2.rmask = nullptr;
  return a2;
}

struct BackArgs {
  int64_t N = 0, H = 0, GH = 0;
  Act act = Act::Tanh, ract = Act::Sigmoid;
  const float* dh_in = nullptr;   // [N, H] gradient reaching the state after this step
  const int* wait = nullptr;      // plan.flags: as StepArgs' (the dG columns' writers)
  int wait_tag = 0;
  int wait_ut = 0;
  const float* dy = nullptr;      // this step's output gradient, row n at dy + n * dy_ld, or null
  int64_t dy_ld = 0;
  const uint8_t* seen = nullptr;  // [N] or null
  const uint8_t* mask = nullptr;  // this step's mask at mask[n * mask_stride], or null
  int64_t mask_stride = 0;
  const float* slots = nullptr;   // this step's saved activations: slot k at slots[k * slot_stride]
  int64_t slot_stride = 0;
  const float* hprev = nullptr;   // [N, H]
  const float* cprev = nullptr;   // [N, H] LSTM
  const float* dc_in = nullptr;   // [N, H] LSTM
  float* dc_out = nullptr;        // [N, H] LSTM
  float* dgx = nullptr;           // [N, GH]
  float* dgr = nullptr;           // [N, GH] (GRU r.a.; the others alias dgx)
  float* dh_out = nullptr;        // [N, H] the direct and pass-through terms of d h_prev
  const float* drh = nullptr;     // GRU r.b. second phase: d(rh) = dah U_h^T [N, H]
  const float* rmask = nullptr;   // [G, N, H] or null
  // precision bf16: the pre-activation gradients stored into dgx / dgr rounded to
  // bfloat16, as every product (dh_prev, dW, dU, dX) and db read them
  // (rnnkern.reference); the cell's own terms (dh_out, dc_out) unrounded
  bool bf16 = false;
};

// The pointwise backward of one step at element e = n*H + j: d(pre-activations)
// into dgx (and dgr), the direct and pass-through terms of d h_prev into dh_out,
// d c_prev (LSTM). Every time-loop family calls it.
template <Mode M>
RK_DEV void back_point(const BackArgs& b, int64_t e) {
  const int64_t NH = b.N * b.H;
  const int64_t n = e / b.H, j = e % b.H;
  const bool m = !b.mask || b.mask[n * b.mask_stride];
  float* gx = b.dgx + n * b.GH + j;
  auto rd = [&](float v) { return b.bf16 ? rk_to_bf16(v) : v; };   // a stored dG value
  if constexpr (M == Mode::GruRB2) {
    const float mh = b.rmask ? b.rmask[2 * NH + e] : 1.0f;
    const float r = b.slots[b.slot_stride + e];
    const float dr = b.drh[e] * b.hprev[e] * mh;
    gx[b.H] = rd(dr * activate_grad(b.ract, r));
    b.dh_out[e] += b.drh[e] * r * mh;
    return;
  }
  float dh = b.dh_in[e];
  if (b.dy && (!b.seen || b.seen[n])) dh += b.dy[n * b.dy_ld + j];
  const float dh_cell = m ? dh : 0.0f, dh_pass = m ? 0.0f : dh;
  if constexpr (M == Mode::Simple) {
    gx[0] = rd(simple_backward(b.act, dh_cell, b.slots[e]));
    b.dh_out[e] = dh_pass;
  } else if constexpr (M == Mode::Lstm) {
    const float dc = b.dc_in[e];
    const LstmGrad<float> d = lstm_backward(b.act, b.ract, dh_cell, m ? dc : 0.0f, b.slots[e],
                                            b.slots[b.slot_stride + e], b.slots[2 * b.slot_stride + e],
                                            b.slots[3 * b.slot_stride + e], b.cprev[e], b.slots[4 * b.slot_stride + e]);
    gx[0] = rd(d.di);
    gx[b.H] = rd(d.df);
    gx[2 * b.H] = rd(d.dg);
    gx[3 * b.H] = rd(d.do_);
    b.dc_out[e] = m ? d.dc_prev : dc;
    b.dh_out[e] = dh_pass;
  } else if constexpr (M == Mode::GruRA) {
    const float r = b.slots[b.slot_stride + e];
    const GruGrad<float> d = gru_backward_reset_after(b.act, b.ract, dh_cell, b.slots[e], r,
                                                      b.slots[2 * b.slot_stride + e], b.slots[3 * b.slot_stride + e],
                                                      b.hprev[e]);
    float* gr = b.dgr + n * b.GH + j;
    gx[0] = gr[0] = rd(d.dz);
    gx[b.H] = gr[b.H] = rd(d.dr);
    gx[2 * b.H] = rd(d.dhh);
    gr[2 * b.H] = rd(d.dhh * r);
    b.dh_out[e] = d.dh_direct + dh_pass;
  } else {  // GruRB1: dz and d(hh pre-activation); dr after the U_h^T product
    const GruGrad<float> d = gru_backward_reset_before(b.act, b.ract, dh_cell, b.slots[e],
                                                       b.slots[2 * b.slot_stride + e], b.hprev[e]);
    gx[0] = rd(d.dz);
    gx[2 * b.H] = rd(d.dhh);
    b.dh_out[e] = d.dh_direct + dh_pass;
  }
}

// One thread per (n, j); grid-stride; independent threads.
template <Mode M>
RK_GLOBAL void step_backward(BackArgs b) {
  const int64_t NH = b.N * b.H;
  const int64_t stride = (int64_t)RK_GDX * RK_GDY * RK_BDX * RK_BDY;
  int64_t e = ((int64_t)RK_BY * RK_GDX + RK_BX) * RK_BDX * RK_BDY + RK_TY * RK_BDX + RK_TX;
  for (; e < NH; e += stride) back_point<M>(b, e);
}

// ------------------------------------------------------- the fragment API's probe
// One warp: D = C + A B as one m16n8k8 TF32 mma (A 16x8, B 8x8, C and D 16x8, all
// row-major), operands rounded to TF32 first and placed by compat.cuh's lane
// ownership; D16 = C + A16 B16 as one m16n8k16 BF16 mma (A16 16x16, B16 16x8),
// operands rounded to bfloat16 and packed in pairs; and shfl[l] = (l ^ 1) + 100
// (l ^ 16) through two rk_shfl_xor. What the tests check the fragment API with, on
// cuda-emu and on a device. grid (1), block (32), block-cooperative.
RK_GLOBAL void mma_probe(const float* A, const float* B, const float* C, float* D, float* shfl,
                         const float* A16, const float* B16, float* D16) {
  const int l = rk_lane(), g = l / 4, t = l % 4;
  float a[4], b[2], d[4], e[4];
  uint32_t a16[4], b16[2];
  RK_UNROLL
  for (int r = 0; r < 4; ++r) {
    a[r] = rk_to_tf32(A[(g + 8 * (r % 2)) * 8 + t + 4 * (r / 2)]);
    d[r] = e[r] = C[(g + 8 * (r / 2)) * 8 + 2 * t + r % 2];
    const float* ap = A16 + (g + 8 * (r % 2)) * 16 + 2 * t + 8 * (r / 2);
    a16[r] = rk_pack_bf16(rk_to_bf16(ap[0]), rk_to_bf16(ap[1]));
  }
  RK_UNROLL
  for (int r = 0; r < 2; ++r) {
    b[r] = rk_to_tf32(B[(t + 4 * r) * 8 + g]);
    const float* bp = B16 + (2 * t + 8 * r) * 8 + g;
    b16[r] = rk_pack_bf16(rk_to_bf16(bp[0]), rk_to_bf16(bp[8]));
  }
  rk_mma_tf32(d, a, b);
  rk_mma_bf16(e, a16, b16);
  RK_UNROLL
  for (int r = 0; r < 4; ++r) {
    D[(g + 8 * (r / 2)) * 8 + 2 * t + r % 2] = d[r];
    D16[(g + 8 * (r / 2)) * 8 + 2 * t + r % 2] = e[r];
  }
  shfl[l] = rk_shfl_xor((float)l, 1) + 100.0f * rk_shfl_xor((float)l, 16);
  rk_warp_sync();
}

// ------------------------------------------------ the cost model's micro-benchmarks
// What bench/gpu_micro.py measures on a device: bench/tc_model.py's mma latency L and
// issue rate, the grid barrier inside t0, the flag hand-off, the L2 round trip, the
// cluster barrier and distributed shared memory's load latency. On cuda-emu they run
// (tests/test_cuda.py) but rk_clock is a wall clock there, not cycles.

// mma.sync: every warp runs CHAINS independent accumulators through n dependent mma
// each (bf16: m16n8k16, else TF32 m16n8k8); cycles[w] is warp w's rk_clock span and
// out[w * 32 + lane] a sum of its results (the work is used). CHAINS 1 on one warp:
// an mma's latency; 8 on every warp of a block: an SM's issue rate.
// grid (1), block (32 * warps), block-cooperative.
template <int CHAINS>
RK_GLOBAL void micro_mma(int n, int bf16, float* out, long long* cycles) {
  const int l = rk_lane(), warp = (RK_TY * RK_BDX + RK_TX) / 32;
  float a[4], b[2], d[CHAINS][4];
  uint32_t a16[4], b16[2];
  RK_UNROLL
  for (int r = 0; r < 4; ++r) {
    a[r] = rk_to_tf32(0.001f * (float)(l + r));
    a16[r] = rk_pack_bf16(rk_to_bf16(0.001f * (float)l), rk_to_bf16(0.002f * (float)r));
  }
  RK_UNROLL
  for (int r = 0; r < 2; ++r) {
    b[r] = rk_to_tf32(0.5f - 0.01f * (float)r);
    b16[r] = rk_pack_bf16(rk_to_bf16(0.5f), rk_to_bf16(-0.25f * (float)r));
  }
  RK_UNROLL
  for (int c = 0; c < CHAINS; ++c)
    RK_UNROLL
    for (int r = 0; r < 4; ++r) d[c][r] = 0.0f;
  rk_warp_sync();
  const long long t0 = rk_clock();
  if (bf16) {
    for (int i = 0; i < n; ++i)
      RK_UNROLL
      for (int c = 0; c < CHAINS; ++c) rk_mma_bf16(d[c], a16, b16);
  } else {
    for (int i = 0; i < n; ++i)
      RK_UNROLL
      for (int c = 0; c < CHAINS; ++c) rk_mma_tf32(d[c], a, b);
  }
  float sum = 0.0f;
  RK_UNROLL
  for (int c = 0; c < CHAINS; ++c)
    RK_UNROLL
    for (int r = 0; r < 4; ++r) sum += d[c][r];
  const long long t1 = rk_clock();
  out[warp * 32 + l] = sum;
  if (l == 0) cycles[warp] = t1 - t0;
}

// n grid barriers (the persistent family's RK_GRID_SYNC a step), then sink[0] = n.
struct MicroSyncArgs {
  int n = 0;
  float* sink = nullptr;
};
// grid (blocks), block (threads), grid-cooperative.
RK_GLOBAL void micro_grid_sync(MicroSyncArgs q) {
  for (int i = 0; i < q.n; ++i) RK_GRID_SYNC();
  if (RK_BX == 0 && RK_TX == 0 && RK_TY == 0) q.sink[0] = (float)q.n;
}

// Two blocks hand a flag back and forth n times through release/acquire (the
// step-tagged hand-off a grid barrier could give way to): block b waits until the
// flag is 2i + b, then stores 2i + b + 1; cycles[0] is block 0's span, and
// cycles[b] = -1 where block b's wait gave up after 2^24 polls (a broken flag, not a
// hang).
struct MicroFlagArgs {
  int n = 0;
  int* flag = nullptr;
  long long* cycles = nullptr;
};
// grid (2), block (32), grid-cooperative (both blocks resident).
RK_GLOBAL void micro_flag_pingpong(MicroFlagArgs q) {
  if (RK_TX != 0 || RK_TY != 0) return;
  const int b = RK_BX;
  const long long t0 = rk_clock();
  for (int i = 0; i < q.n; ++i) {
    const int want = 2 * i + b;
    for (int polls = 0; rk_ld_acquire(q.flag) != want; ++polls) {
      if (polls >= (1 << 24)) {
        q.cycles[b] = -1;
        return;
      }
      rk_pause();
    }
    rk_st_release(q.flag, want + 1);
  }
  if (b == 0) q.cycles[0] = rk_clock() - t0;
}

// n cluster barriers, each after one distributed-shared-memory store a thread (R1's
// hand-off: GPU-DESIGN.md section 5 measured 0.27-0.33 us on an H200): thread t of
// rank r stores a tag of the iteration and r in slot t of half i % 2 of rank
// (r + 1)'s shared memory, meets the cluster, then checks the tag its own slot got
// from rank r - 1; bad[r * threads + t] counts the tags it did not see (0 where the
// barrier orders the stores and rk_dsmem maps the ranks). Half i % 2: a slot is written again two barriers later, after its reader
// has read it.
struct MicroClusterArgs {
  int n = 0;
  int* bad = nullptr;
};
// grid (cluster), block (threads), 2 * threads ints of shared memory; one cluster.
RK_GLOBAL void micro_cluster_sync(MicroClusterArgs q) {
  int* buf = RK_SMEM(int);
  const int t = RK_TY * RK_BDX + RK_TX, nt = RK_BDX * RK_BDY;
  const int rank = rk_cluster_rank(), cs = rk_cluster_size();
  int* next = rk_dsmem(buf, (rank + 1) % cs);
  const int from = (rank + cs - 1) % cs;
  int bad = 0;
  for (int i = 0; i < q.n; ++i) {
    next[(i % 2) * nt + t] = (i + 1) * 32 + rank;   // the tag: iteration and writer
    RK_CLUSTER_SYNC();
    bad += buf[(i % 2) * nt + t] != (i + 1) * 32 + from;
  }
  q.bad[rank * nt + t] = bad;
}

// A cluster of two: rank 1 copies next[0, len) into its shared memory, then rank 0's
// first thread makes n dependent loads p = next[p] from rank 1's shared memory
// (distributed shared memory's load latency); cycles[0] is its span, sink[0] the
// last index; rank 1 stays until the chase is done (a second cluster barrier).
struct MicroDsmemArgs {
  const int* next = nullptr;
  int len = 0, n = 0;
  int* sink = nullptr;
  long long* cycles = nullptr;
};
// grid (2), block (threads), len ints of shared memory; one cluster.
RK_GLOBAL void micro_dsmem_chase(MicroDsmemArgs q) {
  int* buf = RK_SMEM(int);
  const int t = RK_TY * RK_BDX + RK_TX, nt = RK_BDX * RK_BDY;
  if (rk_cluster_rank() == 1)
    for (int i = t; i < q.len; i += nt) buf[i] = q.next[i];
  RK_CLUSTER_SYNC();
  if (rk_cluster_rank() == 0 && t == 0) {
    const int* remote = rk_dsmem(buf, 1);
    int p = 0;
    const long long t0 = rk_clock();
    for (int i = 0; i < q.n; ++i) p = remote[p];
    const long long t1 = rk_clock();
    q.sink[0] = p;
    q.cycles[0] = t1 - t0;
  }
  RK_CLUSTER_SYNC();
}

// One thread: n dependent loads p = next[p] through L2 (rk_ldcg_i: L1 bypassed), the
// span in cycles[0], the last index in sink[0]. grid (1), block (1), independent threads.
RK_GLOBAL void micro_chase(const int* next, int n, int* sink, long long* cycles) {
  int p = 0;
  const long long t0 = rk_clock();
  for (int i = 0; i < n; ++i) p = rk_ldcg_i(next + p);
  const long long t1 = rk_clock();
  sink[0] = p;
  cycles[0] = t1 - t0;
}

// ---------------------------------------------------------------- small kernels
RK_DEV int64_t global_id() {
  return ((int64_t)RK_BY * RK_GDX + RK_BX) * RK_BDX * RK_BDY + RK_TY * RK_BDX + RK_TX;
}
RK_DEV int64_t grid_threads() { return (int64_t)RK_GDX * RK_GDY * RK_BDX * RK_BDY; }

// dst[j] = (accumulate ? dst[j] : 0) + sum over rows r of src[r * ld + j], rows in
// order: deterministic. One thread a column; independent threads.
RK_GLOBAL void column_sums(const float* src, int64_t rows, int64_t cols, int64_t ld, float* dst) {
  for (int64_t j = global_id(); j < cols; j += grid_threads()) {
    float acc = 0.0f;
    for (int64_t r = 0; r < rows; ++r) acc += src[r * ld + j];
    dst[j] = acc;
  }
}

// parts[r * cols + j] = the sum of rows [r*chunk, (r+1)*chunk) of column j of src,
// in row order (the first stage of a bias gradient: column_sums then adds the
// parts, in order). Independent threads.
RK_GLOBAL void column_partial_sums(const float* src, int64_t rows, int64_t cols, int64_t ld,
                                   int64_t chunk, float* parts) {
  const int64_t R = (rows + chunk - 1) / chunk;
  for (int64_t e = global_id(); e < R * cols; e += grid_threads()) {
    const int64_t r = e / cols, j = e % cols, end = (r + 1) * chunk < rows ? (r + 1) * chunk : rows;
    float acc = 0.0f;
    for (int64_t i = r * chunk; i < end; ++i) acc += src[i * ld + j];
    parts[e] = acc;
  }
}

// c[i * ldc + j] = sum over s of parts[s][i][j] (S slabs of [M, N]), in slab order.
// Independent threads.
RK_GLOBAL void split_sum(const float* parts, int S, int64_t M, int64_t N, float* c, int64_t ldc,
                         bool add) {
  for (int64_t e = global_id(); e < M * N; e += grid_threads()) {
    float acc = parts[e];
    for (int s = 1; s < S; ++s) acc += parts[(int64_t)s * M * N + e];
    float* out = c + (e / N) * ldc + e % N;
    *out = add ? *out + acc : acc;   // add: C += the slabs' sum (a beta-1 GEMM's)
  }
}

// The optimizers' updates on the device (rnnkern/_device_math.py): out[e] = op(a[e],
// b[e]) (b given) or op(a[e], s0), one correctly rounded float32 operation an
// element, so the results are bitwise NumPy's (no contraction: one operation a
// kernel). out may be a or b. max, min and clip propagate NaN as NumPy's maximum,
// minimum and clip do. Independent threads.
enum EwiseOp : int {
  kEwAdd = 0, kEwSub, kEwMul, kEwDiv, kEwMax, kEwMin,   // a op b (or a op s0)
  kEwRSub, kEwRDiv,                                     // s0 - a, s0 / a
  kEwSqrt, kEwSquare, kEwCopy, kEwFill, kEwClip,        // unary; fill: s0; clip: [s0, s1]
  kEwCount
};

RK_DEV float ew_max(float x, float y) { return (x != x || x > y) ? x : y; }
RK_DEV float ew_min(float x, float y) { return (x != x || x < y) ? x : y; }

// One operation on one element (x = a[e], y = b[e] or s0). The program kernel runs
// several on an element in a row: each result goes to memory before the next one
// reads it, and the arithmetic is the _rn intrinsics on the device (never fused into
// a multiply-add), so every step rounds as a kernel of its own would.
RK_DEV float ew_apply(int op, float x, float y, float s0, float s1) {
  switch (op) {
    case kEwAdd: return rk_add_rn(x, y);
    case kEwSub: return rk_sub_rn(x, y);
    case kEwMul: return rk_mul_rn(x, y);
    case kEwDiv: return rk_div_rn(x, y);
    case kEwMax: return ew_max(x, y);
    case kEwMin: return ew_min(x, y);
    case kEwRSub: return rk_sub_rn(s0, x);
    case kEwRDiv: return rk_div_rn(s0, x);
    case kEwSqrt: return rk_sqrt_rn(x);
    case kEwSquare: return rk_mul_rn(x, x);
    case kEwCopy: return x;
    case kEwFill: return s0;
    default: return ew_min(ew_max(x, s0), s1);   // kEwClip
  }
}

RK_GLOBAL void elementwise(int op, int64_t n, float* out, const float* a, const float* b,
                           float s0, float s1) {
  for (int64_t e = global_id(); e < n; e += grid_threads())
    out[e] = ew_apply(op, op == kEwFill ? 0.0f : a[e], b ? b[e] : s0, s0, s1);
}

// A sequence of elementwise steps over arrays of n elements as one launch (an
// optimizer's update: rnnkern/_device_math.py's fused): step k is out[k][e] =
// op[k](arrays[a[k]][e], b[k] < 0 ? s0[k] : arrays[b[k]][e]), run in order for each
// element by one thread, so each step reads what the earlier ones wrote there (the
// arrays may alias: no restrict) and the results are those of the steps run one
// kernel at a time, bitwise. Passed by value (a kernel parameter: no upload).
constexpr int kEwProgSteps = 40, kEwProgArrays = 16;
struct EwProgram {
  float* arrays[kEwProgArrays];
  float s0[kEwProgSteps], s1[kEwProgSteps];
  int8_t op[kEwProgSteps], out[kEwProgSteps], a[kEwProgSteps], b[kEwProgSteps];
  int steps;
};

RK_GLOBAL void elementwise_program(EwProgram p, int64_t n) {
  for (int64_t e = global_id(); e < n; e += grid_threads())
    for (int k = 0; k < p.steps; ++k) {
      const int op = p.op[k];
      const float x = op == kEwFill ? 0.0f : p.arrays[p.a[k]][e];
      const float y = p.b[k] < 0 ? p.s0[k] : p.arrays[p.b[k]][e];
      p.arrays[p.out[k]][e] = ew_apply(op, x, y, p.s0[k], p.s1[k]);
    }
}

// parts[p] = the sum of a[e]^2 over e in [p*chunk, (p+1)*chunk), in double and in
// order (the first stage of sum_squares; the host adds the parts in order): the
// same array gives bitwise the same sum every run. Independent threads.
RK_GLOBAL void square_partial_sums(const float* a, int64_t n, int64_t chunk, double* parts) {
  const int64_t P = (n + chunk - 1) / chunk;
  for (int64_t p = global_id(); p < P; p += grid_threads()) {
    const int64_t end = (p + 1) * chunk < n ? (p + 1) * chunk : n;
    double acc = 0.0;
    for (int64_t e = p * chunk; e < end; ++e) acc += (double)a[e] * (double)a[e];
    parts[p] = acc;
  }
}

// p[0..n) rounded to bfloat16 in place (precision bf16's weights). Independent threads.
RK_GLOBAL void round_bf16(float* p, int64_t n) {
  for (int64_t e = global_id(); e < n; e += grid_threads()) p[e] = rk_to_bf16(p[e]);
}

// u [H, GH] (bfloat16 values: round_bf16's) as pairs of rows, one word a pair and
// column: out[p * GH + c] = rk_pack_bf16(u[2p][c], u[2p + 1][c]) (the odd row zero
// past H), p < ceil(H / 2): R3's packed U for precision bf16's one product (half the
// bytes a step reads; the words are the m16n8k16 B fragment's registers as they
// are). Independent threads.
RK_GLOBAL void pack_bf16_pairs(const float* u, uint32_t* out, int64_t H, int64_t GH) {
  const int64_t n = (H + 1) / 2 * GH;
  for (int64_t e = global_id(); e < n; e += grid_threads()) {
    const int64_t p = e / GH, c = e % GH;
    out[e] = rk_pack_bf16(u[2 * p * GH + c], 2 * p + 1 < H ? u[(2 * p + 1) * GH + c] : 0.0f);
  }
}

// PyTorch's recurrent weight layout <-> the kernels' (Keras'), as
// rnnkern/_torch_layout.py defines them: torch keeps [G*H, K] with its gate
// blocks (GRU r, z, n where Keras has z, r, h: the first two swapped), Keras
// [K, G*H]. torch_block(g) is the torch block of Keras gate g and, the swap
// being its own inverse, the Keras gate of torch block g. Independent threads.
RK_DEV int64_t torch_block(int64_t g, bool gru) { return gru && g < 2 ? 1 - g : g; }

RK_GLOBAL void keras_from_torch(const float* src, float* dst, int64_t K, int64_t G, int64_t H,
                                bool gru) {
  const int64_t GH = G * H, total = K * GH;
  for (int64_t e = global_id(); e < total; e += grid_threads()) {
    const int64_t k = e / GH, col = e % GH, g = col / H, u = col % H;
    dst[e] = src[(torch_block(g, gru) * H + u) * K + k];
  }
}

RK_GLOBAL void torch_from_keras(const float* src, float* dst, int64_t K, int64_t G, int64_t H,
                                bool gru) {
  const int64_t GH = G * H, total = GH * K;
  for (int64_t e = global_id(); e < total; e += grid_threads()) {
    const int64_t r = e / K, k = e % K, g = torch_block(r / H, gru), u = r % H;
    dst[e] = src[k * GH + g * H + u];
  }
}

// torch's two biases -> the kernels' bias: GRU (reset_after) [2, G*H] (row 0
// input, row 1 recurrent), else their sum [G*H]
RK_GLOBAL void bias_from_torch(const float* bih, const float* bhh, float* dst, int64_t G,
                               int64_t H, bool gru) {
  const int64_t GH = G * H, total = gru ? 2 * GH : GH;
  for (int64_t e = global_id(); e < total; e += grid_threads()) {
    const int64_t row = e / GH, col = e % GH;
    const int64_t s = torch_block(col / H, gru) * H + col % H;
    dst[e] = gru ? (row ? bhh[s] : bih[s]) : bih[s] + bhh[s];
  }
}

// the kernels' bias gradient -> torch's two (SimpleRNN, LSTM: both the one's)
RK_GLOBAL void bias_grad_to_torch(const float* db, float* dbih, float* dbhh, int64_t G,
                                  int64_t H, bool gru) {
  const int64_t GH = G * H;
  for (int64_t e = global_id(); e < GH; e += grid_threads()) {
    const int64_t s = torch_block(e / H, gru) * H + e % H;
    dbih[e] = db[s];
    dbhh[e] = gru ? db[GH + s] : db[s];
  }
}

// seen[s * N + n] = any mask[n, t(s')] for s' <= s. One thread a row; independent.
RK_GLOBAL void seen_flags(const uint8_t* mask, uint8_t* seen, int64_t N, int64_t T,
                          bool reverse) {
  for (int64_t n = global_id(); n < N; n += grid_threads()) {
    uint8_t any = 0;
    for (int64_t s = 0; s < T; ++s) {
      const int64_t t = reverse ? T - 1 - s : s;
      any = (uint8_t)(any | (mask[n * T + t] ? 1 : 0));
      seen[s * N + n] = any;
    }
  }
}

}  // namespace RK_GPU_NS
}  // namespace rnnkern
