// rnnkern — the persistent time-loop family of the GPU backends (seq_forward,
// seq_backward and their shared pieces), written against compat.cuh like
// kernels.cuh, whose step math (step_point, back_point) it calls.
#pragma once

#include "kernels.cuh"

namespace rnnkern {
namespace RK_GPU_NS {

// ------------------------------------------- the persistent family: one launch a sequence
// A grid of plan.blocks blocks, all resident at once (a grid-cooperative launch,
// or one thread-block cluster of them: plan.cluster), runs every step of the
// sequence. Block b owns the hidden units [b*ut, (b+1)*ut), every gate of them, so
// the cell's pointwise step stays inside the block (step_point / back_point, the
// same as the per-step kernels), and it keeps the slice of U those units need in
// shared memory for the whole sequence: U is read from memory once, not once a
// step. A step: every block stages the exchanged rows (h_{t-1} forward, dG_t
// backward) in shared memory, a k chunk at a time where all of it does not fit (or,
// in one block or one cluster with all of them one chunk, finds them there, written
// by the blocks that computed them: plan.push); each thread sums the products of one
// (row, unit) pair over its share of k (plan.ks threads a pair); a fixed-order
// reduction over those shares and the pointwise step follow; the grid meets at one
// barrier (a block barrier when the grid is one block, the cluster's when it is one
// cluster: seq_barrier). Fixed partition and order: bitwise the same result every run.
// U slots a unit keeps in the forward's resident slice: the gates as one
// 16-byte vector (GRU: z r h and a zero), SimpleRNN one.
template <Mode M>
inline constexpr int kSeqSlots = M == Mode::Simple ? 1 : 4;

// The row stride of a staged chunk: odd, so rows of one k fall in distinct banks.
RK_HD_INLINE int64_t seq_pitch(int kc) { return kc % 2 ? kc : kc + 1; }
// The backward's row strides, 4 more than a multiple of 32 floats: 16-byte
// aligned, and the rows of 8 lanes' 16-byte loads fall in distinct banks.
RK_HD_INLINE int64_t seq_pitch4(int64_t w) { return (w + 31) / 32 * 32 + 4; }
// Whether the forward reads h four k at a time (16-byte loads): H a multiple of 4.
RK_HD_INLINE bool seq_vec(int64_t H) { return H % 4 == 0; }
// The forward's staged row stride: seq_pitch4 when it reads 16 bytes at a time.
RK_HD_INLINE int64_t seq_fwd_pitch(int kc, int64_t H) {
  return seq_vec(H) ? seq_pitch4(kc) : seq_pitch(kc);
}

// ---- the tensor-core product (plan.tc > 0). m16n8k8 tiles of 16 rows by 8
// columns; a block's product is (tiles x plan.ks k shares) items, item i taken by
// warp i % warps (fixed), each adding its share of every staged chunk into its own
// slot of the block's partial buffer [ks][rows16][cols8], so the k shares are
// summed afterwards in share order: bitwise the same every run.
RK_HD_INLINE int64_t seq_rows16(int64_t N) { return (N + 15) / 16 * 16; }
RK_HD_INLINE int64_t seq_cols8(int64_t c) { return (c + 7) / 8 * 8; }
// The forward's resident row stride (floats a k): ut * slots, or with tc the
// columns padded to 8 or 24 mod 32, so a B fragment's 32 loads (4 k x 8 columns)
// fall in distinct banks.
RK_HD_INLINE int64_t seq_ustride(const SeqPlan& p, int slots) {
  int64_t s = (int64_t)p.ut * slots;
  if (!p.tc) return s;
  s = seq_cols8(s);
  while (s % 32 != 8 && s % 32 != 24) s += 8;
  return s;
}
// The forward's resident column of the block's unit jj, gate slot g: gate-major
// with tc (g * ut + jj: a gate's columns contiguous, so a phase's mma tiles cover
// only its own gates' columns and a dropout pass a gate only the tiles holding that
// gate), unit-major for FFMA (jj * slots + g: a unit's gates one 16-byte load).
RK_HD_INLINE int64_t seq_ucol(const SeqPlan& p, int slots, int64_t jj, int g) {
  return p.tc ? (int64_t)g * p.ut + jj : jj * slots + g;
}
// The resident U's rows (forward: k; a row ustride words) and the backward's row
// stride (words a unit): halved where plan.pairs keeps bf16 pairs in one word. The
// pair strides keep a B fragment's loads in distinct banks: forward rows k/2 + tq
// at ustride = 8 or 24 mod 32, backward words unit * 4 (mod 32) + tq.
RK_HD_INLINE int64_t seq_urows(const SeqPlan& p, int64_t H) { return p.pairs ? (H + 1) / 2 : H; }
RK_HD_INLINE int64_t seq_upitch(const SeqPlan& p, int64_t GH) {
  return seq_pitch4(p.pairs ? (GH + 1) / 2 : GH);
}
// The forward's staged row stride: with tc seq_pitch4 (an A fragment's loads in
// distinct banks), else seq_fwd_pitch.
RK_HD_INLINE int64_t seq_stage_pitch(const SeqPlan& p, int64_t H) {
  return p.tc ? seq_pitch4(p.kc) : seq_fwd_pitch(p.kc, H);
}

// Shared memory of the forward: resident U [seq_urows][ustride] (a k: [ut][slots], or
// [slots][ut] with tc: seq_ucol; with plan.pairs a word holds k and k + 1), the
// staged rows [copies][N][pitch] (a copy per gate where recurrent dropout masks
// them; two of them, a step's and the next's, with plan.push), the reduction
// [ks][threads/ks][4] (FFMA) or the partial tiles [ks][rows16(N)][cols8(ut * slots)]
// (tc).
RK_HD_INLINE size_t seq_forward_smem(const SeqPlan& p, int slots, int copies, int64_t N,
                                     int64_t H) {
  const size_t red = p.tc ? (size_t)p.ks * seq_rows16(N) * seq_cols8((int64_t)p.ut * slots)
                          : (p.ks > 1 ? (size_t)p.threads * 4 : 0);
  return ((size_t)seq_urows(p, H) * seq_ustride(p, slots) +
          (size_t)(p.push ? 2 : 1) * copies * N * seq_stage_pitch(p, H) + red) *
         sizeof(float);
}
// ... of the backward: resident U rows [ut][seq_upitch(GH)], the staged dG rows
// [N][pitch4(kc)] (two with plan.push; three for GRU reset_before, rb), the
// reduction [ks][threads/ks][4] (FFMA) or the partial tiles
// [ks][gacc][rows16(N)][cols8(ut)] (tc; gacc 4 with recurrent dropout: a gate's sum
// is masked by its own mask, else 1).
RK_HD_INLINE size_t seq_backward_smem(const SeqPlan& p, int64_t N, int64_t GH, int gacc,
                                      bool rb = false) {
  const size_t red = p.tc ? (size_t)p.ks * gacc * seq_rows16(N) * seq_cols8(p.ut)
                          : (p.ks > 1 ? (size_t)p.threads * 4 : 0);
  const size_t staged = (size_t)(p.push ? (rb ? 3 : 2) : 1) * N * seq_pitch4(p.kc);
  return ((size_t)seq_upitch(p, GH) * p.ut + staged + red) * sizeof(float);
}

// Share q of a chunk of kn values split over ks threads: [kb, ke), its bounds
// multiples of 4 when vec (16-byte loads).
RK_DEV void seq_share(int kn, int ks, int q, bool vec, int& kb, int& ke) {
  int share = (kn + ks - 1) / ks;
  if (vec) share = (share + 3) / 4 * 4;
  kb = q * share < kn ? q * share : kn;
  ke = kb + share < kn ? kb + share : kn;
}

// Share q of kn values over ks: [kb, ke), its start a multiple of kw (the mma's
// k step: 8, or 16 for bf16).
RK_DEV void seq_share_k(int kn, int ks, int q, int kw, int& kb, int& ke) {
  const int share = ((kn + ks - 1) / ks + kw - 1) / kw * kw;
  kb = q * share < kn ? q * share : kn;
  ke = kb + share < kn ? kb + share : kn;
}

// d += A B for one k step of 8, a[4] and b[2] the fragments (rk_mma_tf32's lane
// layout) as fp32 values, in tc products: 3 (fp32 accuracy: hi lo, lo hi, then hi
// hi: the small terms first), 2 (B exact in TF32, as bf16 weights are: lo hi, hi
// hi; precision bf16's forward with recurrent dropout, whose masks scale the rounded
// h), 1 (TF32: hi hi; precision bf16's one product takes seq_frags_bf16 and
// rk_mma_bf16 instead). tc is the same across the warp.
RK_DEV void seq_mma(float* d, const float* a, const float* b, int tc) {
  float ah[4], al[4], bh[2], bl[2];
  RK_UNROLL
  for (int r = 0; r < 4; ++r) tf32_split(a[r], ah[r], al[r]);
  RK_UNROLL
  for (int r = 0; r < 2; ++r) tf32_split(b[r], bh[r], bl[r]);
  if (tc >= 3) rk_mma_tf32(d, ah, bl);
  if (tc >= 2) rk_mma_tf32(d, al, bh);
  rk_mma_tf32(d, ah, bh);
}

// Whether a tensor-core product runs on bf16 m16n8k16 fragments: precision bf16
// with its one product (both operands bfloat16 values: U rounded once, h, r*h and
// dG rounded as they are staged or stored), half the mma of TF32's m16n8k8 for
// the same sums; bf16 with dropout-scaled h (tc 2) stays on TF32.
RK_HD_INLINE bool seq_bf16_mma(const SeqPlan& p, bool bf16) { return bf16 && p.tc == 1; }

// The A and B fragments of one TF32 m16n8k8 step at k (rk_mma_tf32's lane layout),
// as fp32 values for seq_mma, from element reads a(row, kk) and b(kk, col) of the
// tile (rows m0 + 0..15 below rows, columns c0 + 0..7), k below ke, else zero.
template <class ReadA, class ReadB>
RK_DEV void seq_frags_tf32(float (&av)[4], float (&bv)[2], int64_t m0, int64_t rows, int c0,
                           int k, int ke, ReadA a, ReadB b) {
  const int l = rk_lane(), gq = l / 4, tq = l % 4;
  RK_UNROLL
  for (int r = 0; r < 4; ++r) {   // A(row gq + 8 (r%2), k tq + 4 (r/2))
    const int64_t row = m0 + gq + 8 * (r % 2);
    const int kk = k + tq + 4 * (r / 2);
    av[r] = row < rows && kk < ke ? a(row, kk) : 0.0f;
  }
  RK_UNROLL
  for (int r = 0; r < 2; ++r) {   // B(k tq + 4 r, column gq)
    const int kk = k + tq + 4 * r;
    bv[r] = kk < ke ? b(kk, c0 + gq) : 0.0f;
  }
}

// The A fragment of one bf16 m16n8k16 step at k (rk_mma_bf16's lane layout), from
// element reads a(row, kk) of the tile's rows m0 + 0..15 below rows, each pair's k
// below ke, else zero.
template <class ReadA>
RK_DEV void seq_frag_a_bf16(uint32_t (&av)[4], int64_t m0, int64_t rows, int k, int ke,
                            ReadA a) {
  const int l = rk_lane(), gq = l / 4, tq = l % 4;
  RK_UNROLL
  for (int r = 0; r < 4; ++r) {   // A(row gq + 8 (r%2), k 2tq + 8 (r/2) + {0, 1})
    const int64_t row = m0 + gq + 8 * (r % 2);
    const int kk = k + 2 * tq + 8 * (r / 2);
    const bool in = row < rows;
    av[r] = rk_pack_bf16(in && kk < ke ? a(row, kk) : 0.0f,
                         in && kk + 1 < ke ? a(row, kk + 1) : 0.0f);
  }
}

// The A and B fragments of one bf16 m16n8k16 step at k, from element reads a(row,
// kk) and b(kk, col) of the tile (rows m0 + 0..15 below rows, columns c0 + 0..7),
// each pair's k below ke, else zero.
template <class ReadA, class ReadB>
RK_DEV void seq_frags_bf16(uint32_t (&av)[4], uint32_t (&bv)[2], int64_t m0, int64_t rows,
                           int c0, int k, int ke, ReadA a, ReadB b) {
  seq_frag_a_bf16(av, m0, rows, k, ke, a);
  const int l = rk_lane(), gq = l / 4, tq = l % 4;
  RK_UNROLL
  for (int r = 0; r < 2; ++r) {   // B(k 2tq + 8 r + {0, 1}, column gq)
    const int kk = k + 2 * tq + 8 * r, col = c0 + gq;
    bv[r] = rk_pack_bf16(kk < ke ? b(kk, col) : 0.0f, kk + 1 < ke ? b(kk + 1, col) : 0.0f);
  }
}

// One warp's item of a tensor-core product: the k steps [lo, hi) of its tile,
// added to the tile's slot dp of the partial buffer (row stride Np; zero first
// where first) as two accumulators of even and odd k steps (two independent mma
// chains); step(acc, k) adds the fragments of k step [k, k+KW) to acc (KW 8:
// TF32 m16n8k8, 16: bf16 m16n8k16).
template <int KW, class Step>
RK_DEV void seq_mma_item(float* dp, int64_t Np, bool first, int lo, int hi, Step step) {
  const int l = rk_lane(), gq = l / 4, tq = l % 4;
  float d[4], e[4] = {0.0f, 0.0f, 0.0f, 0.0f};
  RK_UNROLL
  for (int r = 0; r < 4; ++r)   // D(row gq + 8 (r/2), column 2 tq + r%2)
    d[r] = first ? 0.0f : dp[(gq + 8 * (r / 2)) * Np + 2 * tq + r % 2];
  for (int k = lo; k < hi; k += 2 * KW) {
    step(d, k);
    if (k + KW < hi) step(e, k + KW);
  }
  RK_UNROLL
  for (int r = 0; r < 4; ++r) dp[(gq + 8 * (r / 2)) * Np + 2 * tq + r % 2] = d[r] + e[r];
}

// Item it of a block's tensor-core product over a staged chunk of kn: its tile's
// first row m0 and column c0 (tiles of 16 x 8, ctiles a row of tiles), its k share
// q and that share's bounds [kb, ke) (multiples of kw from the chunk's start).
struct SeqItem {
  int q, m0, c0, kb, ke;
};
RK_DEV SeqItem seq_item(int it, int tiles, int ctiles, int kn, int ks, int kw) {
  SeqItem i;
  const int tile = it % tiles;
  i.q = it / tiles;
  i.m0 = tile / ctiles * 16;
  i.c0 = tile % ctiles * 8;
  seq_share_k(kn, ks, i.q, kw, i.kb, i.ke);
  return i;
}

// seq_mma_item on the fragments of the product's kind: bf16 m16n8k16 (bf16), else
// TF32 m16n8k8 in tc products; each k step sums the operand pairs of copies
// [cb, ce), copy c's elements read as a(c, row, kk) and b(c, kk, col) (rows m0 +
// 0..15 below rows, columns c0 + 0..7).
template <int KW, class ReadA, class ReadB>
RK_DEV void seq_mma_tile_k(int tc, int cb, int ce, float* dp, int64_t Np, bool first, int lo,
                           int hi, int64_t m0, int64_t rows, int c0, ReadA a, ReadB b) {
  seq_mma_item<KW>(dp, Np, first, lo, hi, [&](float* acc, int k) {
    for (int c = cb; c < ce; ++c) {
      auto ra = [&](int64_t row, int kk) { return a(c, row, kk); };
      auto rb = [&](int kk, int col) { return b(c, kk, col); };
      if constexpr (KW == 16) {
        uint32_t av[4], bv[2];
        seq_frags_bf16(av, bv, m0, rows, c0, k, hi, ra, rb);
        rk_mma_bf16(acc, av, bv);
      } else {
        float av[4], bv[2];
        seq_frags_tf32(av, bv, m0, rows, c0, k, hi, ra, rb);
        seq_mma(acc, av, bv, tc);
      }
    }
  });
}
template <class ReadA, class ReadB>
RK_DEV void seq_mma_tile(bool bf16, int tc, int cb, int ce, float* dp, int64_t Np, bool first,
                         int lo, int hi, int64_t m0, int64_t rows, int c0, ReadA a, ReadB b) {
  if (bf16)
    seq_mma_tile_k<16>(tc, cb, ce, dp, Np, first, lo, hi, m0, rows, c0, a, b);
  else
    seq_mma_tile_k<8>(tc, cb, ce, dp, Np, first, lo, hi, m0, rows, c0, a, b);
}

// seq_mma_item on bf16 m16n8k16 fragments whose B is resident as bf16 pairs
// (plan.pairs): b2(kk, col) the word of B(kk, col) and B(kk + 1, col), kk even; A
// from element reads a(row, kk) as seq_frag_a_bf16. lo and hi even (so no pair
// straddles a bound).
template <class ReadA, class ReadB2>
RK_DEV void seq_mma_tile_pairs(float* dp, int64_t Np, bool first, int lo, int hi, int64_t m0,
                               int64_t rows, int c0, ReadA a, ReadB2 b2) {
  const int l = rk_lane(), gq = l / 4, tq = l % 4;
  seq_mma_item<16>(dp, Np, first, lo, hi, [&](float* acc, int k) {
    uint32_t av[4], bv[2];
    seq_frag_a_bf16(av, m0, rows, k, hi, a);
    RK_UNROLL
    for (int r = 0; r < 2; ++r) {   // B(k 2tq + 8 r + {0, 1}, column gq)
      const int kk = k + 2 * tq + 8 * r;
      bv[r] = kk < hi ? b2(kk, c0 + gq) : 0u;
    }
    rk_mma_bf16(acc, av, bv);
  });
}

RK_DEV int seq_tid() { return RK_TY * RK_BDX + RK_TX; }
RK_DEV int seq_nthr() { return RK_BDX * RK_BDY; }

// The step's barrier: the block's where the grid is one block, the cluster's where
// it is one cluster (plan.cluster), else the grid's.
RK_DEV void seq_barrier() {
  if (RK_GDX * RK_GDY == 1)
    RK_SYNC();
  else if (rk_cluster_size() > 1)
    RK_CLUSTER_SYNC();
  else
    RK_GRID_SYNC();
}

// plan.flags, R2's step-tagged hand-off instead of the grid's barrier: a block ends
// a phase by publishing `tag` (its threads' writes ordered before by the block's
// barrier and thread 0's fence, the tag stored with release semantics), and
// stages a chunk of the exchanged rows only once each block that wrote the chunk
// has published the tag the rows were written under (thread 0 polls them with
// acquire loads; the staging's block barrier then lets the others read, from L2).
// The grid is grid-cooperative, so every block it waits for is running. Without
// flags, seq_sync is the step's barrier.
RK_DEV void seq_sync(int* flags, int tag) {
  if (!flags) {
    seq_barrier();
    return;
  }
  RK_SYNC();
  if (seq_tid() == 0) {
    rk_fence();
    rk_st_release(flags + RK_BX, tag);
  }
}

// Before staging columns [c0, c0 + kn) of rows whose column c the block owning unit
// (c % H) wrote (units [b * ut, (b + 1) * ut) block b's): wait for those blocks' tags.
// A chunk across a gate boundary waits for every block. Thread 0 only; a block
// barrier must follow.
RK_DEV void seq_wait(const int* flags, int tag, int ut, int64_t c0, int64_t kn, int64_t H) {
  if (!flags || seq_tid() != 0) return;
  const int64_t first = c0 % H, last = (c0 + kn - 1) % H;
  const bool one_gate = c0 / H == (c0 + kn - 1) / H;
  const int64_t b0 = one_gate ? first / ut : 0, b1 = one_gate ? last / ut : (H - 1) / ut;
  for (int64_t blk = b0; blk <= b1; ++blk)
    while (rk_ld_acquire(flags + blk) < tag) rk_pause();
}

// plan.push: h, the value step_point stored at (n, j), into the next step's staging
// buffer `next` of every block of the grid (the block itself where it is one block,
// else each rank of its cluster through rk_dsmem) as seq_stage would stage it there:
// a copy a gate of mode M (recurrent dropout), rounded to bfloat16 first with bf16,
// copy g scaled by gate g's mask.
template <Mode M>
RK_DEV void seq_push(const StepArgs& a, const SeqPlan& p, float* next, int64_t n, int64_t j,
                     float h) {
  constexpr int NG = kStepGates<M>, G0 = kFirstGate<M>;
  const int64_t N = a.N, H = a.H, NH = N * H, pitch = seq_stage_pitch(p, H);
  const int copies = a.rmask ? NG : 1;
  const float v = a.bf16 ? rk_to_bf16(h) : h;
  const int ranks = rk_cluster_size();
  for (int r = 0; r < ranks; ++r) {
    float* dst = ranks > 1 ? rk_dsmem(next, r) : next;
    for (int g = 0; g < copies; ++g)
      dst[((int64_t)g * N + n) * pitch + j] =
          a.rmask ? v * a.rmask[(int64_t)(G0 + g) * NH + n * H + j] : v;
  }
}

// plan.push, backward: the gate gradients back_point stored at (n, j) (dgr's ng
// recurrent gates from gate g0, as stored: bfloat16 values in precision bf16) into
// the staging buffer `buf` of every block of the grid, where seq_stage would have
// put them for a product over the gate columns from g0 * H (row n, column
// (g - g0) H + j).
RK_DEV void seq_push_dg(const BackArgs& b, const SeqPlan& p, float* buf, int64_t n, int64_t j,
                        int ng, int g0 = 0) {
  const int64_t pitch = seq_pitch4(p.kc);
  float v[4];   // registers: the loops unrolled over at most 4 gates
  RK_UNROLL
  for (int g = 0; g < 4; ++g) v[g] = g < ng ? b.dgr[n * b.GH + (g0 + g) * b.H + j] : 0.0f;
  const int ranks = rk_cluster_size();
  for (int r = 0; r < ranks; ++r) {
    float* dst = ranks > 1 ? rk_dsmem(buf, r) : buf;
    RK_UNROLL
    for (int g = 0; g < 4; ++g)
      if (g < ng) dst[n * pitch + g * b.H + j] = v[g];
  }
}

// Stages rows [0, N) x columns [c0, c0 + kn) of src (row stride ld) into
// dst[r * pitch + cc], `copies` times, copy g scaled by scale[g * scale_stride +
// n * scale_ld + c0 + cc] when scale is given; with bf16 each value rounded to
// bfloat16 before the scale (precision bf16's operand). A warp takes 4 rows at a time and
// each lane keeps 4 x 8 loads in flight before it stores (no division an element).
RK_DEV void seq_stage(float* dst, int64_t pitch, const float* src, int64_t ld, int64_t N,
                      int64_t c0, int kn, int copies, const float* scale, int64_t scale_stride,
                      int64_t scale_ld, bool bf16 = false) {
  constexpr int kLanes = 32, kRows = 4, kCols = 8;
  const int tid = seq_tid(), nthr = seq_nthr();
  const int lane = tid % kLanes, warps = (nthr + kLanes - 1) / kLanes;
  const int64_t rows = (int64_t)copies * N;
  for (int64_t r0 = (int64_t)(tid / kLanes) * kRows; r0 < rows; r0 += (int64_t)warps * kRows) {
    const float* sp[kRows];
    const float* mp[kRows];
    RK_UNROLL
    for (int i = 0; i < kRows; ++i) {
      const int64_t r = r0 + i < rows ? r0 + i : r0, g = r / N, n = r - g * N;
      sp[i] = src + n * ld + c0;
      mp[i] = scale ? scale + g * scale_stride + n * scale_ld + c0 : nullptr;
    }
    for (int c = lane; c < kn; c += kCols * kLanes) {
      float v[kRows][kCols];
      RK_UNROLL
      for (int i = 0; i < kRows; ++i)
        RK_UNROLL
        for (int u = 0; u < kCols; ++u) {
          const int cc = c + u * kLanes;
          v[i][u] = (r0 + i < rows && cc < kn) ? rk_ldcg(sp[i] + cc) : 0.0f;
        }
      if (bf16) {
        RK_UNROLL
        for (int i = 0; i < kRows; ++i)
          RK_UNROLL
          for (int u = 0; u < kCols; ++u) v[i][u] = rk_to_bf16(v[i][u]);
      }
      if (scale) {
        RK_UNROLL
        for (int i = 0; i < kRows; ++i)
          RK_UNROLL
          for (int u = 0; u < kCols; ++u) {
            const int cc = c + u * kLanes;
            if (r0 + i < rows && cc < kn) v[i][u] *= mp[i][cc];
          }
      }
      RK_UNROLL
      for (int i = 0; i < kRows; ++i)
        RK_UNROLL
        for (int u = 0; u < kCols; ++u) {
          const int cc = c + u * kLanes;
          if (r0 + i < rows && cc < kn) dst[(r0 + i) * pitch + cc] = v[i][u];
        }
    }
  }
}

// Sums this thread's share over the ks threads of its pair in a fixed order
// (share 0 first); the sums land in share 0's acc. Every thread of the block calls it.
template <int NG>
RK_DEV void seq_reduce(float* red, const SeqPlan& p, int q, int pi, float* acc) {
  if (p.ks == 1) return;
  const int pr = p.threads / p.ks;
  RK_SYNC();
  if (q < p.ks) {
    RK_UNROLL
    for (int g = 0; g < NG; ++g) red[(q * pr + pi) * 4 + g] = acc[g];
  }
  RK_SYNC();
  if (q == 0) {
    RK_UNROLL
    for (int g = 0; g < NG; ++g) {
      float v = red[pi * 4 + g];
      for (int r = 1; r < p.ks; ++r) v += red[(r * pr + pi) * 4 + g];
      acc[g] = v;
    }
  }
}

// The forward product's 16-byte path over k in [kb, ke) (multiples of 4): a4[i][g]
// += h(k + i) U(k + i, gate G0 + g), h read four k at a time and U a unit's
// gates at a time (ub at k = kb, a row of ut * SLOTS floats a k). MASKED: gate g
// reads its own copy of h at hrow + g * gate_stride (recurrent dropout), else
// every gate reads hrow.
template <int NG, int G0, int SLOTS, bool MASKED>
RK_DEV void seq_quads(const float* hrow, int64_t gate_stride, const float* ub, int ut, int kb,
                      int ke, float (&a4)[4][NG]) {
  constexpr int NH = MASKED ? NG : 1;   // copies of h read
  for (int k = kb; k < ke; k += 4, ub += 4 * ut * SLOTS) {
    float hv[NH][4];
    RK_UNROLL
    for (int c = 0; c < NH; ++c) {
      const F4 h4 = rk_load4(hrow + c * gate_stride + k);
      hv[c][0] = h4.x;
      hv[c][1] = h4.y;
      hv[c][2] = h4.z;
      hv[c][3] = h4.w;
    }
    RK_UNROLL
    for (int i = 0; i < 4; ++i) {
      if constexpr (SLOTS == 4) {
        const F4 u4 = rk_load4(ub + i * ut * SLOTS);
        const float uv[4] = {u4.x, u4.y, u4.z, u4.w};
        RK_UNROLL
        for (int g = 0; g < NG; ++g) a4[i][g] += hv[MASKED ? g : 0][i] * uv[G0 + g];
      } else {
        a4[i][0] += hv[0][i] * ub[i * ut];
      }
    }
  }
}

// One phase of a forward step in the persistent family (M: Simple, Lstm, GruRA,
// GruRB1, GruRB2): the products of this mode's gates over a's rows for the
// block's units, then step_point. ures is the resident slice, SLOTS its gates
// a unit.
template <Mode M, int SLOTS, Mode PM = M>
RK_DEV void seq_forward_phase(const StepArgs& a, const SeqPlan& p, int64_t j0,
                              const float* ures, float* hs, float* red, bool stage,
                              float* next, const StepArgs* pa) {
  constexpr int NG = kStepGates<M>, G0 = kFirstGate<M>;
  const int64_t N = a.N, H = a.H, NH = N * H;
  const int copies = a.rmask ? NG : 1;
  const int ut = p.ut, pr = p.threads / p.ks, tid = seq_tid();
  const int q = tid / pr, pi = tid % pr;
  const int64_t pairs = N * ut, pitch = seq_fwd_pitch(p.kc, H);
  const bool one_chunk = p.kc >= H;
  // four k at a time: h as 16-byte loads, an accumulator a gate and k offset
  // (with recurrent dropout, one masked copy of h a gate, each read 16 bytes at a time)
  const bool vec = seq_vec(H) && p.kc % 4 == 0;
  for (int64_t p0 = 0; p0 < pairs; p0 += pr) {
    const int64_t pair = p0 + pi, n = pair / ut;
    const int jj = (int)(pair % ut);
    const bool active = q < p.ks && pair < pairs && j0 + jj < H;
    // the pointwise step's inputs, loaded now: their latency hides behind the product
    StepIn in;
    if (active && q == 0) in = step_in<M>(a, n, j0 + jj);
    float acc[NG];
    RK_UNROLL
    for (int g = 0; g < NG; ++g) acc[g] = 0.0f;
    for (int64_t k0 = 0; k0 < H; k0 += p.kc) {
      const int kn = (int)(H - k0 < p.kc ? H - k0 : p.kc);
      if (stage && (!one_chunk || p0 == 0)) {
        seq_wait(a.wait, a.wait_tag, a.wait_ut, k0, kn, H);
        RK_SYNC();
        seq_stage(hs, pitch, a.a, H, N, k0, kn, copies,
                  a.rmask ? a.rmask + G0 * NH : nullptr, NH, H, a.bf16);
        RK_SYNC();
      }
      if (active) {
        int kb, ke;
        seq_share(kn, p.ks, q, vec, kb, ke);
        const float* hrow = hs + n * pitch;
        const float* ub = ures + ((k0 + kb) * ut + jj) * SLOTS;
        if (vec) {
          float a4[4][NG];
          RK_UNROLL
          for (int i = 0; i < 4; ++i)
            RK_UNROLL
            for (int g = 0; g < NG; ++g) a4[i][g] = 0.0f;
          if (copies == 1)
            seq_quads<NG, G0, SLOTS, false>(hrow, 0, ub, ut, kb, ke, a4);
          else   // recurrent dropout: gate g's masked copy of h, N rows of pitch apart
            seq_quads<NG, G0, SLOTS, true>(hrow, N * pitch, ub, ut, kb, ke, a4);
          RK_UNROLL
          for (int g = 0; g < NG; ++g) acc[g] += (a4[0][g] + a4[1][g]) + (a4[2][g] + a4[3][g]);
        } else if (copies == 1) {
          RK_UNROLL_BY4
          for (int k = kb; k < ke; ++k, ub += ut * SLOTS) {
            const float hv = hrow[k];
            if constexpr (SLOTS == 4) {
              const F4 u4 = rk_load4(ub);
              const float uv[4] = {u4.x, u4.y, u4.z, u4.w};
              RK_UNROLL
              for (int g = 0; g < NG; ++g) acc[g] += hv * uv[G0 + g];
            } else {
              acc[0] += hv * ub[0];
            }
          }
        } else {
          for (int k = kb; k < ke; ++k, ub += ut * SLOTS) {
            RK_UNROLL
            for (int g = 0; g < NG; ++g) acc[g] += hrow[g * N * pitch + k] * ub[G0 + g];
          }
        }
      }
    }
    seq_reduce<NG>(red, p, q, pi, acc);
    if (active && q == 0) {
      const float h = step_point<M>(a, n, j0 + jj, acc, in);
      if (next) seq_push<PM>(pa ? *pa : a, p, next, n, j0 + jj, h);
    }
  }
}

// seq_forward_phase on the tensor cores (plan.tc): D = A U over the block's
// columns (unit jj's gate slot g at column jj * SLOTS + g), A the staged h (with
// recurrent dropout, gate g's masked copy, against U's columns of gate g only: a
// pass a gate); then step_point of every (row, unit) pair from the sum of D's k
// shares in order. Threads a multiple of 32 (whole warps).
template <Mode M, int SLOTS, Mode PM = M>
RK_DEV void seq_forward_phase_mma(const StepArgs& a, const SeqPlan& p, int64_t j0,
                                  const float* ures, float* hs, float* part, bool stage,
                                  float* next, const StepArgs* pa) {
  constexpr int NG = kStepGates<M>, G0 = kFirstGate<M>;
  const int64_t N = a.N, H = a.H, NH = N * H;
  const bool masked = a.rmask != nullptr;
  const int copies = masked ? NG : 1;
  const int ut = p.ut, tid = seq_tid(), nthr = seq_nthr();
  const int64_t pitch = seq_pitch4(p.kc), us = seq_ustride(p, SLOTS);
  const int Mp = (int)seq_rows16(N), Np = (int)seq_cols8((int64_t)ut * SLOTS);
  // the column tiles holding this phase's gates G0 .. G0+NG-1 (gate-major columns)
  const int tlo = G0 * ut / 8, thi = ((G0 + NG) * ut + 7) / 8;
  const int ctiles = thi - tlo, tiles = (Mp / 16) * ctiles, items = tiles * p.ks;
  const int warp = tid / 32, warps = nthr / 32;
  const bool bf16_mma = seq_bf16_mma(p, a.bf16) && !masked;
  const int64_t pairs = N * ut;
  // the pointwise step's inputs of this thread's first pair, loaded now: their
  // latency hides behind the product
  StepIn in0;
  if (tid < pairs && j0 + tid % ut < H) in0 = step_in<M>(a, tid / ut, j0 + tid % ut);
  for (int64_t k0 = 0; k0 < H; k0 += p.kc) {
    const int kn = (int)(H - k0 < p.kc ? H - k0 : p.kc);
    if (stage) {
      seq_wait(a.wait, a.wait_tag, a.wait_ut, k0, kn, H);
      RK_SYNC();
      seq_stage(hs, pitch, a.a, H, N, k0, kn, copies, masked ? a.rmask + G0 * NH : nullptr, NH,
                H, a.bf16);
      RK_SYNC();
    }
    for (int it = warp; it < items; it += warps) {
      const SeqItem w = seq_item(it, tiles, ctiles, kn, p.ks, bf16_mma ? 16 : 8);
      const int c0 = w.c0 + 8 * tlo;
      // with dropout, copy c is gate G0 + c's masked h against that gate's columns
      // only: the passes of the gates this tile holds
      int cb = 0, ce = 1;
      if (masked) {
        cb = c0 / ut - G0 > 0 ? c0 / ut - G0 : 0;
        ce = (c0 + 7) / ut - G0 + 1 < NG ? (c0 + 7) / ut - G0 + 1 : NG;
      }
      float* dp = part + ((int64_t)w.q * Mp + w.m0) * Np + c0;
      if (p.pairs) {   // bf16's one product, unmasked: U's pairs of k rows a word
        const uint32_t* u2 = reinterpret_cast<const uint32_t*>(ures) + (k0 / 2) * us;
        seq_mma_tile_pairs(
            dp, Np, k0 == 0, w.kb, w.ke, w.m0, N, c0,
            [&](int64_t row, int kk) { return hs[row * pitch + kk]; },
            [&](int kk, int col) { return u2[(kk / 2) * us + col]; });
        continue;
      }
      seq_mma_tile(
          bf16_mma, p.tc, cb, ce, dp, Np, k0 == 0, w.kb, w.ke, w.m0, N, c0,
          [&](int c, int64_t row, int kk) { return hs[((int64_t)c * N + row) * pitch + kk]; },
          [&](int c, int kk, int col) {
            return !masked || col / ut == G0 + c ? ures[(k0 + kk) * us + col] : 0.0f;
          });
    }
  }
  RK_SYNC();
  for (int64_t pair = tid; pair < pairs; pair += nthr) {
    const int64_t n = pair / ut;
    const int jj = (int)(pair % ut);
    if (j0 + jj >= H) continue;
    float acc[NG];
    RK_UNROLL
    for (int g = 0; g < NG; ++g) {
      float v = 0.0f;
      const int64_t col = seq_ucol(p, SLOTS, jj, G0 + g);
      for (int q = 0; q < p.ks; ++q) v += part[((int64_t)q * Mp + n) * Np + col];
      acc[g] = v;
    }
    const float h =
        step_point<M>(a, n, j0 + jj, acc, pair == tid ? in0 : step_in<M>(a, n, j0 + jj));
    if (next) seq_push<PM>(pa ? *pa : a, p, next, n, j0 + jj, h);
  }
}

// One phase of a forward step on the plan's product.
// stage: h staged from a.a (else pushed there by the step before: plan.push);
// next: where this step pushes what step_point returned (plan.push), or null: as a
// phase of mode PM with the arguments pa (null: a) stages it (GRU reset_before's
// first phase pushes rh for its second, the second h for the next step's first).
template <Mode M, int SLOTS, Mode PM = M>
RK_DEV void seq_forward_any(const StepArgs& a, const SeqPlan& p, int64_t j0, const float* ures,
                            float* hs, float* red, bool stage = true, float* next = nullptr,
                            const StepArgs* pa = nullptr) {
  if (p.tc)
    seq_forward_phase_mma<M, SLOTS, PM>(a, p, j0, ures, hs, red, stage, next, pa);
  else
    seq_forward_phase<M, SLOTS, PM>(a, p, j0, ures, hs, red, stage, next, pa);
}

// grid (plan.blocks), block (plan.threads), seq_forward_smem(...) bytes;
// grid-cooperative or one cluster (plan.cluster). M is Simple, Lstm, GruRA, or
// GruRB1 for both GRU reset_before phases (z and r, then U_h over r ⊙ h: a
// barrier between them).
template <Mode M>
RK_GLOBAL void seq_forward(SeqArgs q) {
  const SeqPlan& p = q.plan;
  constexpr int SLOTS = kSeqSlots<M>;
  const StepArgs& b = q.base;
  const int64_t H = b.H, N = b.N, G = b.GH / b.H;
  const int64_t j0 = (int64_t)RK_BX * p.ut;
  const int copies = b.rmask ? kStepGates<M> : 1;
  const int64_t us = seq_ustride(p, SLOTS);           // >= ut * SLOTS, the rest zero
  const int64_t rows = seq_urows(p, H);
  float* ures = RK_SMEM(float);   // [rows][us]: a k (a pair of k: plan.pairs), column seq_ucol
  float* hs = ures + rows * us;                       // [copies][N][pitch], two with push
  const int64_t staged = copies * N * seq_stage_pitch(p, H);
  float* red = hs + (p.push ? 2 : 1) * staged;        // the reduction or partial tiles
  const int tid = seq_tid(), nthr = seq_nthr();
  for (int64_t e0 = tid; e0 < rows * us; e0 += 8 * (int64_t)nthr) {
    float v[8], w[8];   // eight loads (pairs: sixteen) in flight before the stores
    RK_UNROLL
    for (int u = 0; u < 8; ++u) {
      const int64_t e = e0 + (int64_t)u * nthr, r = e / us, col = e % us;   // seq_ucol's inverse
      const int64_t j = j0 + (p.tc ? col % p.ut : col / SLOTS);
      const int g = (int)(p.tc ? col / p.ut : col % SLOTS);
      const bool in = e < rows * us && col < (int64_t)p.ut * SLOTS && j < H && g < G;
      const int64_t k = p.pairs ? 2 * r : r;
      v[u] = in ? b.u[k * b.GH + g * H + j] : 0.0f;
      w[u] = in && p.pairs && k + 1 < H ? b.u[(k + 1) * b.GH + g * H + j] : 0.0f;
    }
    RK_UNROLL
    for (int u = 0; u < 8; ++u) {
      const int64_t e = e0 + (int64_t)u * nthr;
      if (e >= rows * us) continue;
      if (p.pairs)
        reinterpret_cast<uint32_t*>(ures)[e] = rk_pack_bf16(v[u], w[u]);
      else
        ures[e] = v[u];
    }
  }
  // plan.flags: the tags this block waits for and publishes (GRU reset_before: two a
  // step, its phases' rh and h); without flags the same places are barriers
  int* flags = p.flags ? q.flags : nullptr;
  const int per_step = M == Mode::GruRB1 ? 2 : 1;
  for (int64_t s = 0; s < q.T; ++s) {
    StepArgs a = forward_step_args(q, s);
    a.wait = flags;
    a.wait_tag = (int)(per_step * s);   // h_s: published at the end of step s - 1
    a.wait_ut = p.ut;
    if constexpr (M == Mode::GruRB1) {
      if (p.push) {
        // two buffers, each read by one phase: h (staged at s = 0, then pushed by the
        // second phase) and rh (pushed by the first). The barrier between the phases
        // and the step's own keep every write away from a buffer still being read:
        // rh is written after the step before read it, h after this step's first
        // phase read it.
        float* hbuf = hs;
        float* rhbuf = hs + staged;   // one copy: rh is masked already
        const StepArgs a2 = second_phase(a);
        seq_forward_any<Mode::GruRB1, SLOTS, Mode::GruRB2>(a, p, j0, ures, hbuf, red, s == 0,
                                                           rhbuf, &a2);
        seq_barrier();
        seq_forward_any<Mode::GruRB2, SLOTS, Mode::GruRB1>(
            a2, p, j0, ures, rhbuf, red, false, s + 1 < q.T ? hbuf : nullptr, &a);
      } else {
        seq_forward_any<Mode::GruRB1, SLOTS>(a, p, j0, ures, hs, red);
        seq_sync(flags, (int)(2 * s + 1));
        StepArgs a2 = second_phase(a);
        a2.wait_tag = (int)(2 * s + 1);     // rh of this step
        seq_forward_any<Mode::GruRB2, SLOTS>(a2, p, j0, ures, hs, red);
      }
    } else if (p.push) {   // step s reads buffer s % 2 (staged at s = 0), pushes s + 1's
      float* cur = hs + (s % 2) * staged;
      float* nxt = s + 1 < q.T ? hs + ((s + 1) % 2) * staged : nullptr;
      seq_forward_any<M, SLOTS>(a, p, j0, ures, cur, red, s == 0, nxt);
    } else {
      seq_forward_any<M, SLOTS>(a, p, j0, ures, hs, red);
    }
    seq_sync(flags, (int)(per_step * (s + 1)));
  }
}

// Everything the backward's steps need; step s's BackArgs are made from it
// (backward_step_args), by the per-step loop and the persistent kernel alike.
struct SeqBackArgs {
  BackArgs base;                  // N, H, GH, act, ract, slot_stride, rmask
  int64_t T = 0;
  bool go_backwards = false, return_sequences = true, lstm = false;
  const float* dyseq = nullptr;   // [N, T, H] (return_sequences; step s at [:, s]), or
  const float* dylast = nullptr;  // [N, H]
  const uint8_t* seen = nullptr;  // [T, N] or null
  const uint8_t* mask = nullptr;  // [N, T] or null
  const float* slots = nullptr;   // slot k of step s at slots + k*slot_stride + s*N*H
  const float* states = nullptr;  // [T+1, N, H]
  const float* cstates = nullptr; // LSTM
  float* dgx = nullptr;           // [T, N, GH]
  float* dgr = nullptr;           // [T, N, GH] (GRU r.a.; the others: dgx)
  float* dh[2] = {nullptr, nullptr};  // [N, H] each: the carried d h, dh[0] = d h_T
  float* dc[2] = {nullptr, nullptr};  // LSTM, likewise
  float* drh = nullptr;           // [N, H] GRU r.b.
  int* flags = nullptr;           // plan.flags: a tag a block, zero at launch
  const float* u = nullptr;       // [H, GH]
  int products = 3;               // tensor-core products a fragment pair, for the precision
  bool step_mma = false;          // the per-step family's GEMMs on the tensor cores (R3)
  SeqPlan plan;                   // the persistent family's partition
};

// Step s's arguments; cur: which of the two carried buffers holds d h_{s+1}.
RK_HD_INLINE BackArgs backward_step_args(const SeqBackArgs& q, int64_t s, int cur) {
  const int64_t N = q.base.N, NH = N * q.base.H;
  const int64_t t = q.go_backwards ? q.T - 1 - s : s;
  BackArgs b = q.base;
  b.dh_in = q.dh[cur];
  b.dy = q.return_sequences ? q.dyseq + s * q.base.H : (s == q.T - 1 ? q.dylast : nullptr);
  b.dy_ld = q.return_sequences ? q.T * q.base.H : q.base.H;
  b.seen = q.seen ? q.seen + s * N : nullptr;
  b.mask = q.mask ? q.mask + t : nullptr;
  b.mask_stride = q.T;
  b.slots = q.slots + s * NH;
  b.hprev = q.states + s * NH;
  if (q.lstm) {
    b.cprev = q.cstates + s * NH;
    b.dc_in = q.dc[cur];
    b.dc_out = q.dc[1 - cur];
  }
  b.dgx = q.dgx + s * N * q.base.GH;
  b.dgr = q.dgr + s * N * q.base.GH;
  b.dh_out = q.dh[1 - cur];
  b.drh = q.drh;
  return b;
}

// sum over k in [lo, hi) of d[k] u[k]: four accumulators over 16-byte loads when
// vec (lo, hi, d and u multiples of 4), added in a fixed order.
RK_DEV float seq_dot(const float* d, const float* u, int lo, int hi, bool vec) {
  if (vec) {
    float a0 = 0.0f, a1 = 0.0f, a2 = 0.0f, a3 = 0.0f;
    RK_UNROLL_BY4
    for (int k = lo; k < hi; k += 4) {
      const F4 x = rk_load4(d + k), y = rk_load4(u + k);
      a0 += x.x * y.x;
      a1 += x.y * y.y;
      a2 += x.z * y.z;
      a3 += x.w * y.w;
    }
    return (a0 + a1) + (a2 + a3);
  }
  float a = 0.0f;
  RK_UNROLL_BY4
  for (int k = lo; k < hi; ++k) a += d[k] * u[k];
  return a;
}

// The products of the backward for the block's units k: out[n, k] (+)= sum over
// the gate columns c in [c_begin, c_end) of src[n, c] U[k, c], each gate's part
// scaled by rmask[g, n, k] when given; accumulate: add to out, else store. ur
// holds U's rows of the block's units ([ut][pitch4(GH)]).
RK_DEV void seq_back_product(const BackArgs& b, const SeqPlan& p, int64_t j0, const float* ur,
                             float* ds, float* red, const float* src, int64_t c_begin,
                             int64_t c_end, const float* rmask, float* out, bool accumulate,
                             bool stage) {
  const int64_t N = b.N, H = b.H, NH = N * H;
  const int ut = p.ut, pr = p.threads / p.ks, tid = seq_tid();
  const int q = tid / pr, pi = tid % pr;
  const int64_t pairs = N * ut, pitch = seq_pitch4(p.kc), upitch = seq_upitch(p, b.GH);
  const int64_t width = c_end - c_begin;
  const bool one_chunk = p.kc >= width;
  const bool vec = H % 4 == 0 && p.kc % 4 == 0;   // every bound below a multiple of 4
  for (int64_t p0 = 0; p0 < pairs; p0 += pr) {
    const int64_t pair = p0 + pi, n = pair / ut;
    const int jj = (int)(pair % ut);
    const bool active = q < p.ks && pair < pairs && j0 + jj < H;
    float acc[4] = {0.0f, 0.0f, 0.0f, 0.0f};    // per gate with rmask, else acc[0]
    for (int64_t k0 = 0; k0 < width; k0 += p.kc) {
      const int kn = (int)(width - k0 < p.kc ? width - k0 : p.kc);
      if (stage && (!one_chunk || p0 == 0)) {
        seq_wait(b.wait, b.wait_tag, b.wait_ut, c_begin + k0, kn, H);
        RK_SYNC();
        seq_stage(ds, pitch, src, b.GH, N, c_begin + k0, kn, 1, nullptr, 0, 0);
        RK_SYNC();
      }
      if (active) {
        int kb, ke;
        seq_share(kn, p.ks, q, vec, kb, ke);
        const float* drow = ds + n * pitch;
        const float* urow = ur + jj * upitch + c_begin + k0;
        if (!rmask) {
          acc[0] += seq_dot(drow, urow, kb, ke, vec);
        } else {   // per gate: its columns of this chunk are [g*H - c0, (g+1)*H - c0)
          const int64_t c0 = c_begin + k0;
          RK_UNROLL
          for (int g = 0; g < 4; ++g) {
            const int64_t lo = g * H - c0 > kb ? g * H - c0 : kb;
            const int64_t hi = (g + 1) * H - c0 < ke ? (g + 1) * H - c0 : ke;
            if (lo < hi) acc[g] += seq_dot(drow, urow, (int)lo, (int)hi, vec);
          }
        }
      }
    }
    seq_reduce<4>(red, p, q, pi, acc);
    if (active && q == 0) {
      const int64_t e = n * H + j0 + jj;
      float v = acc[0];
      if (rmask) {
        v = 0.0f;
        RK_UNROLL
        for (int g = 0; g < 4; ++g)
          if (g * H >= c_begin && g * H < c_end) v += acc[g] * rmask[g * NH + e];
      }
      out[e] = accumulate ? out[e] + v : v;
    }
  }
}

// seq_back_product on the tensor cores (plan.tc): D(n, unit) = sum over the gate
// columns of src(n, c) U(j0 + unit, c) in tiles of 16 rows by 8 units, with
// recurrent dropout a sum a gate (its own accumulators: each gate's sum is masked
// by its mask); then out from the sum of the k shares in order. Threads a
// multiple of 32.
RK_DEV void seq_back_product_mma(const BackArgs& b, const SeqPlan& p, int64_t j0,
                                 const float* ur, float* ds, float* part, const float* src,
                                 int64_t c_begin, int64_t c_end, const float* rmask, float* out,
                                 bool accumulate, bool stage) {
  const int64_t N = b.N, H = b.H, NH = N * H;
  const int ut = p.ut, tid = seq_tid(), nthr = seq_nthr();
  const int64_t pitch = seq_pitch4(p.kc), upitch = seq_upitch(p, b.GH), width = c_end - c_begin;
  const int gacc = rmask ? 4 : 1;
  const int Mp = (int)seq_rows16(N), Np = (int)seq_cols8(ut);
  const int ctiles = Np / 8, tiles = (Mp / 16) * ctiles, items = tiles * p.ks;
  const int warp = tid / 32, warps = nthr / 32;
  const bool bf16_mma = seq_bf16_mma(p, b.bf16);
  for (int64_t k0 = 0; k0 < width; k0 += p.kc) {
    const int kn = (int)(width - k0 < p.kc ? width - k0 : p.kc);
    if (stage) {
      seq_wait(b.wait, b.wait_tag, b.wait_ut, c_begin + k0, kn, H);
      RK_SYNC();
      seq_stage(ds, pitch, src, b.GH, N, c_begin + k0, kn, 1, nullptr, 0, 0);
      RK_SYNC();
    }
    for (int it = warp; it < items; it += warps) {
      const SeqItem w = seq_item(it, tiles, ctiles, kn, p.ks, bf16_mma ? 16 : 8);
      const float* uc = ur + c_begin + k0;   // this chunk's gate columns of U's rows
      for (int g = 0; g < gacc; ++g) {
        int lo = w.kb, hi = w.ke;   // this gate's columns of the share (chunk coordinates)
        if (rmask) {
          const int64_t gl = g * H - (c_begin + k0), gh = (g + 1) * H - (c_begin + k0);
          lo = gl > w.kb ? (int)(gl < w.ke ? gl : w.ke) : w.kb;
          hi = gh < w.ke ? (int)(gh > lo ? gh : lo) : w.ke;
        }
        // B(k, unit) = U(j0 + unit, c)
        float* dp = part + (((int64_t)w.q * gacc + g) * Mp + w.m0) * Np + w.c0;
        if (p.pairs) {   // bf16's one product: U's pairs of gate columns a word
          const uint32_t* u2 = reinterpret_cast<const uint32_t*>(ur) + (c_begin + k0) / 2;
          seq_mma_tile_pairs(
              dp, Np, k0 == 0, lo, hi, w.m0, N, w.c0,
              [&](int64_t row, int kk) { return ds[row * pitch + kk]; },
              [&](int kk, int unit) { return unit < ut ? u2[unit * upitch + kk / 2] : 0u; });
          continue;
        }
        seq_mma_tile(
            bf16_mma, p.tc, 0, 1, dp, Np, k0 == 0, lo, hi, w.m0, N, w.c0,
            [&](int, int64_t row, int kk) { return ds[row * pitch + kk]; },
            [&](int, int kk, int unit) { return unit < ut ? uc[unit * upitch + kk] : 0.0f; });
      }
    }
  }
  RK_SYNC();
  for (int64_t pair = tid; pair < N * ut; pair += nthr) {
    const int64_t n = pair / ut;
    const int jj = (int)(pair % ut);
    if (j0 + jj >= H) continue;
    const int64_t e = n * H + j0 + jj;
    float v = 0.0f;
    for (int g = 0; g < gacc; ++g) {
      if (rmask && !(g * H >= c_begin && g * H < c_end)) continue;
      float sum = 0.0f;
      for (int q = 0; q < p.ks; ++q) sum += part[(((int64_t)q * gacc + g) * Mp + n) * Np + jj];
      v += rmask ? sum * rmask[g * NH + e] : sum;
    }
    out[e] = accumulate ? out[e] + v : v;
  }
}

// The backward's product on the plan's product; stage: src staged into ds (else
// pushed there already: plan.push).
RK_DEV void seq_back_any(const BackArgs& b, const SeqPlan& p, int64_t j0, const float* ur,
                         float* ds, float* red, const float* src, int64_t c_begin, int64_t c_end,
                         const float* rmask, float* out, bool accumulate, bool stage = true) {
  if (p.tc)
    seq_back_product_mma(b, p, j0, ur, ds, red, src, c_begin, c_end, rmask, out, accumulate,
                         stage);
  else
    seq_back_product(b, p, j0, ur, ds, red, src, c_begin, c_end, rmask, out, accumulate, stage);
}

// grid (plan.blocks), block (plan.threads), seq_backward_smem(...) bytes;
// grid-cooperative or one cluster (plan.cluster). The reverse time loop of the
// persistent family: per step the pointwise backward of the block's units, a
// barrier, d h_prev of those units from every unit's dG (GRU reset_before: d(rh)
// first, a second barrier between).
// M is Simple, Lstm, GruRA, or GruRB1 for both GRU reset_before phases.
template <Mode M>
RK_GLOBAL void seq_backward(SeqBackArgs q) {
  const SeqPlan& p = q.plan;
  const BackArgs& b0 = q.base;
  const int64_t H = b0.H, N = b0.N, GH = b0.GH;
  const int64_t j0 = (int64_t)RK_BX * p.ut;
  const int ng_rec = M == Mode::GruRB1 ? 2 : (int)(GH / H);
  const int64_t upitch = seq_upitch(p, GH);
  // [ut][upitch]: ur[kk*upitch + c] = U[j0 + kk, c] (plan.pairs: the word c of columns
  // 2c and 2c + 1)
  float* ur = RK_SMEM(float);
  float* ds = ur + upitch * p.ut;   // [N][pitch4(kc)], two with push (GRU r.b.: three)
  const int64_t dstaged = N * seq_pitch4(p.kc);
  float* red = ds + (p.push ? (M == Mode::GruRB1 ? 3 : 2) : 1) * dstaged;   // [threads][4]
  const int tid = seq_tid(), nthr = seq_nthr();
  for (int64_t kk = 0; kk < p.ut; ++kk)
    for (int64_t c0 = tid; c0 < upitch; c0 += 8 * (int64_t)nthr) {
      float v[8], w[8];   // eight loads (pairs: sixteen) in flight before the stores
      RK_UNROLL
      for (int u = 0; u < 8; ++u) {
        const int64_t e = c0 + (int64_t)u * nthr, c = p.pairs ? 2 * e : e;
        const bool in = j0 + kk < H;
        v[u] = in && c < GH ? q.u[(j0 + kk) * GH + c] : 0.0f;
        w[u] = in && p.pairs && c + 1 < GH ? q.u[(j0 + kk) * GH + c + 1] : 0.0f;
      }
      RK_UNROLL
      for (int u = 0; u < 8; ++u) {
        const int64_t e = c0 + (int64_t)u * nthr;
        if (e >= upitch) continue;
        if (p.pairs)
          reinterpret_cast<uint32_t*>(ur)[kk * upitch + e] = rk_pack_bf16(v[u], w[u]);
        else
          ur[kk * upitch + e] = v[u];
      }
    }
  RK_SYNC();
  int cur = 0;
  // plan.flags: per step i = T - 1 - s the tag 2i + 1 once this block's dG rows are
  // written, and (GRU reset_before) 2i + 2 once its dr rows are; without flags the
  // same places are barriers
  int* flags = p.flags ? q.flags : nullptr;
  for (int64_t s = q.T - 1; s >= 0; --s) {
    const int i = (int)(q.T - 1 - s);
    BackArgs b = backward_step_args(q, s, cur);
    b.wait = flags;
    b.wait_tag = 2 * i + 1;
    b.wait_ut = p.ut;
    // plan.push: step s's dG straight into buffer s % 2 of every block (a buffer is
    // written again two barriers later, after every block's product has read it).
    // GRU reset_before: dah into buffer 0, read by the d(rh) product only (before
    // the step's second barrier, which every block passes before the next step
    // writes it again), dz and then dr into buffer 1 + s % 2, read by the d h_prev
    // product (which a faster block's next step must not overwrite)
    const bool rb = M == Mode::GruRB1;
    float* dcur = !p.push ? ds : ds + ((rb ? 1 : 0) + s % 2) * dstaged;
    for (int64_t pair = tid; pair < N * p.ut; pair += nthr) {
      const int64_t n = pair / p.ut, j = j0 + pair % p.ut;
      if (j < H) {
        back_point<M>(b, n * H + j);
        if (p.push && rb) {
          seq_push_dg(b, p, ds, n, j, 1, 2);     // dah, column j
          seq_push_dg(b, p, dcur, n, j, 1, 0);   // dz, column j
        } else if (p.push) {
          seq_push_dg(b, p, dcur, n, j, ng_rec);
        }
      }
    }
    seq_sync(flags, 2 * i + 1);
    if constexpr (M == Mode::GruRB1) {   // d(rh) = dah U_h^T, then dr
      seq_back_any(b, p, j0, ur, ds, red, b.dgx, 2 * H, 3 * H, nullptr, q.drh, false, !p.push);
      RK_SYNC();
      for (int64_t pair = tid; pair < N * p.ut; pair += nthr) {
        const int64_t n = pair / p.ut, j = j0 + pair % p.ut;
        if (j < H) {
          back_point<Mode::GruRB2>(b, n * H + j);
          if (p.push) seq_push_dg(b, p, dcur + H, n, j, 1, 1);   // dr, column H + j
        }
      }
      seq_sync(flags, 2 * i + 2);
      b.wait_tag = 2 * i + 2;   // the dr rows, below
    }
    seq_back_any(b, p, j0, ur, dcur, red, b.dgr, 0, ng_rec * H, b.rmask, b.dh_out, true,
                 !p.push);
    RK_SYNC();
    cur = 1 - cur;
  }
}

}  // namespace RK_GPU_NS
}  // namespace rnnkern
