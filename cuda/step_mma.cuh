// rnnkern — R3 of the GPU design: the per-step family's forward step with its
// recurrent product on the tensor cores, for layers whose U does not fit on chip
// (no persistent plan), written against compat.cuh like kernels.cuh. The
// persistent family's fragment helpers (seq_mma_tile) make its tiles; step_point
// (kernels.cuh) its pointwise step, as in every family.
#pragma once

#include "persistent.cuh"

namespace rnnkern {
namespace RK_GPU_NS {

// ------------------------------------------ R3: a launch a step, the product on mma
// Block (bx, by) computes units [16 bx, 16 bx + 16) of rows [64 by, 64 by + 64),
// every gate of those units, so the cell's pointwise step stays in the block. Its
// product D = A U[:, the block's columns] (A: h_prev, or GRU reset_before's rh)
// runs on the tensor cores in StepArgs::tc products a fragment pair (3xTF32 for
// fp32, one TF32 for tf32, one bf16 m16n8k16 for bf16's exact operands) over k
// chunks of kR3K staged in shared memory by asynchronous copies (rk_cp_async*), a
// ring of kR3Stages chunks: while one is multiplied the next kR3Stages - 1 are in
// flight (their global round trips overlap each other and the product). Tiles of
// 16 rows x 8 columns, each a warp's (fixed), their sums kept in registers over every
// chunk as two chains of alternate k steps, added once after the last: bitwise the
// same every run. U is read once a step where the batch is at most 64 rows (one row
// of blocks). Staged as they are in memory: precision bf16's rounding of A, and
// recurrent dropout's masks (each tile's gate's: 16 units, so a tile is one gate's),
// are applied as the A fragments are read. Every StepArgs option the FFMA step takes
// works here. Precision bf16's one product reads U as bf16 pairs (StepArgs::u2,
// pack_bf16_pairs once a call): half the bytes a step, the words its B registers.
#if defined(RNNKERN_GPU_EMU)
constexpr int kR3Threads = 128;   // the emulation runs an OS thread a CUDA thread
#else
constexpr int kR3Threads = 256;
#endif
constexpr int kR3Units = 16, kR3Rows = 64, kR3K = 48, kR3Stages = 3;
// A's staged row stride: 16-byte aligned rows whose 8 x 4 fragment loads fall in
// distinct banks (52 = 20 mod 32: rows 0..7 start in banks 0, 20, 8, 28, 16, 4, 24, 12)
constexpr int kR3Pitch = kR3K + 4;
static_assert(kR3Units % 8 == 0, "a column tile must hold one gate's units");
static_assert(kR3K % 16 == 0 && kR3Pitch % 4 == 0, "k steps of 16; 16-byte aligned rows");

// The block's columns (gate-major: gate slot g's unit jj at g * kR3Units + jj) and
// the staged U chunk's row stride: padded to 8 or 24 mod 32 floats, so a B
// fragment's 32 loads (4 k x 8 columns) fall in distinct banks.
constexpr int r3_ustride(int cols) {
  return cols % 32 == 8 || cols % 32 == 24 ? cols : r3_ustride(cols + 8);
}
template <Mode M>
inline constexpr int kR3Cols = kStepGates<M> * kR3Units;
template <Mode M>
inline constexpr int kR3UStride = r3_ustride(kR3Cols<M>);
// A stage: A [kR3Rows][kR3Pitch], then the U chunk [kR3K][ustride].
template <Mode M>
inline constexpr int kR3Stage = kR3Rows * kR3Pitch + kR3K * kR3UStride<M>;
// Shared memory: kR3Stages stages; after the product, the sums [kR3Rows][cols] where
// the first stage was. (LSTM: 81.4 KiB; every device from sm_80 opts in to 99 KiB.)
template <Mode M>
inline constexpr size_t kR3Smem = (size_t)kR3Stages * kR3Stage<M> * sizeof(float);

// Issues the asynchronous copies of chunk [k0, k0 + kR3K) of A's rows [n0, n0 + rows)
// and of U's columns of gates G0.. (units [u0, u0 + 16)) into a stage; 16 bytes at a
// time where vec (A's and U's rows 16-byte aligned: H a multiple of 4, aligned
// bases), else 4; values past H, the rows or the units stored as zeros now. Where
// packed (s.u2: bf16 pairs of U's rows), the chunk's kR3K / 2 pair rows of words
// instead, in the same places (half the bytes; their bits read back by rk_bits).
template <Mode M>
RK_DEV void r3_stage(const StepArgs& s, float* stage, int64_t n0, int rows, int64_t u0,
                     int64_t k0, bool vec, bool packed, int tid) {
  constexpr int G0 = kFirstGate<M>, COLS = kR3Cols<M>, US = kR3UStride<M>;
  const int64_t H = s.H;
  float* as = stage;
  float* us = stage + kR3Rows * kR3Pitch;
  // four consecutive floats of a row: one 16-byte copy, or those in range one by one
  auto quad = [&](float* dst, const float* src, int valid) {
    if (vec && valid == 4) {
      rk_cp_async16(dst, src);
      return;
    }
    for (int i = 0; i < 4; ++i) {
      if (i < valid)
        rk_cp_async4(dst + i, src + i);
      else
        dst[i] = 0.0f;
    }
  };
  constexpr int AQ = kR3K / 4;   // quads a row of A's chunk
  for (int e = tid; e < kR3Rows * AQ; e += kR3Threads) {
    const int r = e / AQ, q = e % AQ;
    const int64_t k = k0 + 4 * q;
    const int valid = r < rows ? (int)(H - k < 4 ? (H - k > 0 ? H - k : 0) : 4) : 0;
    quad(as + r * kR3Pitch + 4 * q, s.a + (n0 + r) * H + k, valid);
  }
  constexpr int UQ = COLS / 4;   // quads a row of U's chunk (a gate's 16 units: 4)
  auto unit_quad = [&](int64_t j) { return (int)(H - j < 4 ? (H - j > 0 ? H - j : 0) : 4); };
  if (packed) {   // (the words copied as bytes: never read as floats here)
    const float* u2 = reinterpret_cast<const float*>(s.u2);
    const int64_t pairs = (H + 1) / 2, p0 = k0 / 2;
    for (int e = tid; e < kR3K / 2 * UQ; e += kR3Threads) {
      const int kp = e / UQ, c = 4 * (e % UQ);
      const int64_t p = p0 + kp, j = u0 + c % kR3Units;
      quad(us + kp * US + c, u2 + p * s.GH + (G0 + c / kR3Units) * H + j,
           p < pairs ? unit_quad(j) : 0);
    }
    return;
  }
  for (int e = tid; e < kR3K * UQ; e += kR3Threads) {
    const int kk = e / UQ, c = 4 * (e % UQ);
    const int64_t k = k0 + kk, j = u0 + c % kR3Units;
    const int valid = k < H ? (int)(H - j < 4 ? (H - j > 0 ? H - j : 0) : 4) : 0;
    quad(us + kk * US + c, s.u + k * s.GH + (G0 + c / kR3Units) * H + j, valid);
  }
}

// grid (ceil(H/16), ceil(N/64)), block (kR3Threads), kR3Smem<M> bytes;
// block-cooperative.
template <Mode M>
RK_GLOBAL void step_forward_mma(StepArgs s) {
  constexpr int NG = kStepGates<M>, G0 = kFirstGate<M>, COLS = kR3Cols<M>;
  constexpr int US = kR3UStride<M>, CT = COLS / 8;
  constexpr int warps = kR3Threads / 32, IPW = (kR3Rows / 16 * CT + warps - 1) / warps;
  static_assert(kR3Stage<M> >= kR3Rows * COLS, "the sums fit where the first stage was");
  float* smem = RK_SMEM(float);
  const int tid = RK_TY * RK_BDX + RK_TX, warp = tid / 32;
  const int64_t H = s.H, NH = s.N * s.H;
  const int64_t u0 = (int64_t)RK_BX * kR3Units, n0 = (int64_t)RK_BY * kR3Rows;
  const int rows = (int)(s.N - n0 < kR3Rows ? s.N - n0 : kR3Rows);
  const bool masked = s.rmask != nullptr;
  const bool bf16_mma = s.bf16 && s.tc == 1 && !masked;
  const bool packed = bf16_mma && s.u2 != nullptr;
  const void* ub = packed ? (const void*)s.u2 : (const void*)s.u;
  const bool vec = H % 4 == 0 && reinterpret_cast<uintptr_t>(s.a) % 16 == 0 &&
                   reinterpret_cast<uintptr_t>(ub) % 16 == 0;
  const int items = (rows + 15) / 16 * CT;
  const int pairs = rows * kR3Units;
  const int chunks = (int)((H + kR3K - 1) / kR3K);
  // the first kR3Stages - 1 chunks in flight; then, each chunk, the one kR3Stages - 1
  // ahead (a group a chunk, empty past the last: the waits count groups)
  for (int c = 0; c < kR3Stages - 1; ++c) {
    if (c < chunks)
      r3_stage<M>(s, smem + c * kR3Stage<M>, n0, rows, u0, (int64_t)c * kR3K, vec, packed, tid);
    rk_cp_async_commit();
  }
  // the pointwise inputs of this thread's first pair, loaded now: their latency
  // hides behind the product
  StepIn in0;
  if (tid < pairs && u0 + tid % kR3Units < H)
    in0 = step_in<M>(s, n0 + tid / kR3Units, u0 + tid % kR3Units);
  // this warp's items (tiles it, it + warps, ...), each accumulated in registers over
  // every chunk as two chains of alternate k steps, summed once after the last
  float d[IPW][4], e[IPW][4];
  RK_UNROLL
  for (int i = 0; i < IPW; ++i)
    RK_UNROLL
    for (int r = 0; r < 4; ++r) d[i][r] = e[i][r] = 0.0f;
  for (int c = 0; c < chunks; ++c) {
    rk_cp_async_wait<kR3Stages - 2>();   // this thread's copies of chunk c are done
    RK_SYNC();   // ... every thread's; and chunk c - 1's stage is read by every warp
    const int next = c + kR3Stages - 1;
    if (next < chunks)
      r3_stage<M>(s, smem + (next % kR3Stages) * kR3Stage<M>, n0, rows, u0, (int64_t)next * kR3K,
                  vec, packed, tid);
    rk_cp_async_commit();
    const float* as = smem + (c % kR3Stages) * kR3Stage<M>;
    const float* us = as + kR3Rows * kR3Pitch;
    const int64_t k0 = (int64_t)c * kR3K;
    const int kn = (int)(H - k0 < kR3K ? H - k0 : kR3K);
    RK_UNROLL
    for (int i = 0; i < IPW; ++i) {
      const int it = warp + i * warps;
      if (it >= items) continue;   // the same for the whole warp
      const int m0 = it / CT * 16, c0 = it % CT * 8;
      const float* mrow = masked ? s.rmask + (G0 + c0 / kR3Units) * NH + n0 * H + k0 : nullptr;
      auto ra = [&](int64_t row, int kk) {
        float v = as[row * kR3Pitch + kk];
        if (s.bf16) v = rk_to_bf16(v);   // precision bf16: rounded before a mask scales it
        return masked ? v * mrow[row * H + kk] : v;
      };
      auto rb = [&](int kk, int col) { return us[kk * US + col]; };
      if (bf16_mma) {   // m16n8k16 on bfloat16 values
        auto step = [&](float* acc, int k) {
          uint32_t av[4], bv[2];
          if (packed) {   // B(k 2tq + 8 r + {0, 1}, column gq): pair row k/2 + tq + 4 r
            seq_frag_a_bf16(av, m0, rows, k, kn, ra);
            const int l = rk_lane(), gq = l / 4, tq = l % 4;
            RK_UNROLL
            for (int r = 0; r < 2; ++r) bv[r] = rk_bits(us[(k / 2 + tq + 4 * r) * US + c0 + gq]);
          } else {
            seq_frags_bf16(av, bv, m0, rows, c0, k, kn, ra, rb);
          }
          rk_mma_bf16(acc, av, bv);
        };
        for (int k = 0; k < kn; k += 32) {
          step(d[i], k);
          if (k + 16 < kn) step(e[i], k + 16);
        }
      } else {          // m16n8k8 TF32, s.tc products a fragment pair
        auto step = [&](float* acc, int k) {
          float av[4], bv[2];
          seq_frags_tf32(av, bv, m0, rows, c0, k, kn, ra, rb);
          seq_mma(acc, av, bv, s.tc);
        };
        for (int k = 0; k < kn; k += 16) {
          step(d[i], k);
          if (k + 8 < kn) step(e[i], k + 8);
        }
      }
    }
  }
  rk_cp_async_wait<0>();   // (the groups past the last chunk are empty)
  RK_SYNC();               // every warp is done with every stage
  float* part = smem;      // [kR3Rows][COLS], where the first stage was
  {
    const int l = rk_lane(), gq = l / 4, tq = l % 4;
    RK_UNROLL
    for (int i = 0; i < IPW; ++i) {
      const int it = warp + i * warps;
      if (it >= items) continue;
      const int m0 = it / CT * 16, c0 = it % CT * 8;
      RK_UNROLL
      for (int r = 0; r < 4; ++r)   // D(row gq + 8 (r/2), column 2 tq + r%2)
        part[(m0 + gq + 8 * (r / 2)) * COLS + c0 + 2 * tq + r % 2] = d[i][r] + e[i][r];
    }
  }
  RK_SYNC();
  for (int pr = tid; pr < pairs; pr += kR3Threads) {
    const int r = pr / kR3Units, jj = pr % kR3Units;
    const int64_t n = n0 + r, j = u0 + jj;
    if (j >= H) continue;
    float acc[NG];
    RK_UNROLL
    for (int g = 0; g < NG; ++g) acc[g] = part[r * COLS + g * kR3Units + jj];
    step_point<M>(s, n, j, acc, pr == tid ? in0 : step_in<M>(s, n, j));
  }
}

}  // namespace RK_GPU_NS
}  // namespace rnnkern
