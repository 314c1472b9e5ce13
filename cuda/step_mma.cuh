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
// chunks of kR3K staged in shared memory; the next chunk's loads are in flight in
// registers while the current one is multiplied (a global round trip a chunk is
// hidden, not added). Tiles of 16 rows x 8 columns, each a warp's (fixed), summed
// over k in order: bitwise the same every run. U is read once a step where the batch
// is at most 64 rows (one row of blocks). Recurrent dropout: h staged once, each
// tile's gate mask (UT a multiple of 8: a tile is one gate's) applied as its A
// fragments are read. Every StepArgs option the FFMA step takes works here.
#if defined(RNNKERN_GPU_EMU)
constexpr int kR3Threads = 128;   // the emulation runs an OS thread a CUDA thread
#else
constexpr int kR3Threads = 256;
#endif
constexpr int kR3Units = 16, kR3Rows = 64, kR3K = 32;
// A's staged row stride: 4 more than a multiple of 32 floats, so the 32 loads of an
// A fragment (8 rows x 4 k) fall in distinct banks
constexpr int kR3Pitch = (kR3K + 31) / 32 * 32 + 4;
static_assert(kR3Units % 8 == 0, "a column tile must hold one gate's units");

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
// Shared memory: A [kR3Rows][kR3Pitch], the U chunk [kR3K][ustride], the product
// [kR3Rows][cols].
template <Mode M>
inline constexpr size_t kR3Smem =
    ((size_t)kR3Rows * kR3Pitch + (size_t)kR3K * kR3UStride<M> + (size_t)kR3Rows * kR3Cols<M>) *
    sizeof(float);

// grid (ceil(H/16), ceil(N/64)), block (kR3Threads), kR3Smem<M> bytes (under the
// 48 KiB every launch may take); block-cooperative.
template <Mode M>
RK_GLOBAL void step_forward_mma(StepArgs s) {
  constexpr int NG = kStepGates<M>, G0 = kFirstGate<M>, COLS = kR3Cols<M>;
  constexpr int US = kR3UStride<M>, CT = COLS / 8;
  constexpr int PA = (kR3Rows * kR3K + kR3Threads - 1) / kR3Threads;   // A values a thread stages
  constexpr int PU = (kR3K * COLS + kR3Threads - 1) / kR3Threads;      // U values a thread stages
  float* as = RK_SMEM(float);            // [kR3Rows][kR3Pitch]
  float* us = as + kR3Rows * kR3Pitch;   // [kR3K][US]
  float* part = us + kR3K * US;          // [kR3Rows][COLS]
  const int tid = RK_TY * RK_BDX + RK_TX, warp = tid / 32, warps = kR3Threads / 32;
  const int64_t H = s.H, NH = s.N * s.H;
  const int64_t u0 = (int64_t)RK_BX * kR3Units, n0 = (int64_t)RK_BY * kR3Rows;
  const int rows = (int)(s.N - n0 < kR3Rows ? s.N - n0 : kR3Rows);
  const bool masked = s.rmask != nullptr;
  const bool bf16_mma = s.bf16 && s.tc == 1 && !masked;
  const int items = (rows + 15) / 16 * CT;
  const int pairs = rows * kR3Units;
  // the pointwise inputs of this thread's first pair, loaded now: their latency
  // hides behind the product
  StepIn in0;
  if (tid < pairs && u0 + tid % kR3Units < H)
    in0 = step_in<M>(s, n0 + tid / kR3Units, u0 + tid % kR3Units);
  float ra[PA], rb[PU];
  auto fetch = [&](int64_t k0) {
    RK_UNROLL
    for (int i = 0; i < PA; ++i) {   // A(r, kk): consecutive threads along k
      const int e = tid + i * kR3Threads, r = e / kR3K;
      const int64_t k = k0 + e % kR3K;
      float v = 0.0f;
      if (e < kR3Rows * kR3K && r < rows && k < H) {
        v = s.a[(n0 + r) * H + k];
        if (s.bf16) v = rk_to_bf16(v);   // precision bf16: rounded before a mask scales it
      }
      ra[i] = v;
    }
    RK_UNROLL
    for (int i = 0; i < PU; ++i) {   // U(k, column c): a gate's 16 units contiguous
      const int e = tid + i * kR3Threads, c = e % COLS;
      const int64_t k = k0 + e / COLS, j = u0 + c % kR3Units;
      rb[i] = e < kR3K * COLS && k < H && j < H ? s.u[k * s.GH + (G0 + c / kR3Units) * H + j]
                                                : 0.0f;
    }
  };
  auto stash = [&] {
    RK_UNROLL
    for (int i = 0; i < PA; ++i) {
      const int e = tid + i * kR3Threads;
      if (e < kR3Rows * kR3K) as[(e / kR3K) * kR3Pitch + e % kR3K] = ra[i];
    }
    RK_UNROLL
    for (int i = 0; i < PU; ++i) {
      const int e = tid + i * kR3Threads;
      if (e < kR3K * COLS) us[(e / COLS) * US + e % COLS] = rb[i];
    }
  };
  fetch(0);
  for (int64_t k0 = 0; k0 < H; k0 += kR3K) {
    stash();
    RK_SYNC();
    if (k0 + kR3K < H) fetch(k0 + kR3K);
    const int kn = (int)(H - k0 < kR3K ? H - k0 : kR3K);
    for (int it = warp; it < items; it += warps) {
      const int m0 = it / CT * 16, c0 = it % CT * 8;
      const float* mrow = masked ? s.rmask + (G0 + c0 / kR3Units) * NH + n0 * H + k0 : nullptr;
      seq_mma_tile(
          bf16_mma, s.tc, 0, 1, part + (int64_t)m0 * COLS + c0, COLS, k0 == 0, 0, kn, m0, rows,
          c0,
          [&](int, int64_t row, int kk) {
            const float v = as[row * kR3Pitch + kk];
            return masked ? v * mrow[row * H + kk] : v;
          },
          [&](int, int kk, int col) { return us[kk * US + col]; });
    }
    RK_SYNC();
  }
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
