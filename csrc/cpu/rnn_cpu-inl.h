// rnnkern — the CPU forward and BPTT of SimpleRNN, LSTM and GRU, written once
// against `Vec` (see vec_*.h) and included inside each ISA's namespace.
//
// Everything inside is time-major: x is copied to [T,N,C] once, and P, the
// saved activations and dG are [T,N,.], so a step's rows are one block.
// Forward (the design card's "The kernel algorithm", shared/DESIGN.md):
//   1. P = X W + b: one GEMM over the [T*N, C] rows of x per chunk of steps
//      (<= 1 MiB of P, so P is still in L2 when the steps read it). In
//      training P is written straight into the saved-activation rows
//      ("slots"), which the step then overwrites in place column by column.
//      For a batch of several row blocks (and an input at most 4x wider than
//      the units, the widest measured) the
//      projection is instead fused into the step: x_t W is summed into the
//      same registers as h_prev U, from W packed like U (fuse_input; GRU
//      reset_after keeps it in registers of its own, as r multiplies only
//      h_prev U).
//   2. The timestep loop, inside ONE parallel region for the whole sequence
//      (the projection of each chunk is split over the same threads): per step,
//      work items (block of <= kRowBlock batch rows) x (panel of units)
//      compute the recurrent product h_prev U for the panel (mac_rows, the
//      panel K-chunked so it stays in L1 across the row blocks), add P, apply
//      the cell and write h, c, y and the slots; a barrier ends the step.
//      GRU reset_before needs (r h_prev) U_h, so its step has two phases.
//      No allocation inside the loop (scratch comes from a per-thread arena).
// Backward (reverse loop, same region structure):
//   A. pointwise: dgates of every (row, unit) from dh, dc and the slots;
//   B. product:   dh_prev = direct + dgates U^T (U^T packed into panels).
//   After the loop: dX = dG W^T, dW = X^T dG, dU = Hprev^T dG, db = colsum(dG).
// Dropout (Keras' per-gate masks, fixed over all steps; ForwardArgs): with
// recurrent masks gate g reads h_prev ⊙ m_g, formed at each step's start in
// a gate-blocked layout that the step's micro-kernel reads with one broadcast
// per FMA (mac_block: the FMA count is unchanged); B sums m_g ⊙ (dGr_g U_g^T)
// gate by gate. Input masks keep the projection a GEMM per gate. After the
// loop the gates' blocks of dX, dW, dU are GEMMs of their own, the masks
// applied where the GEMM packs its operands or to its product (RowScale).
// Work items are assigned to threads statically and every sum has a fixed
// order, so results are bitwise identical for a given thread count.
#pragma once

#include <algorithm>
#include <cstring>
#include <type_traits>
#include <vector>

namespace detail {

constexpr int W = Vec::W;

// Vectors per panel for a cell with g gates: enough for kRowBlock*NV
// accumulators to hide FMA latency. A panel covers S = NV/g sub-tiles of W units.
template <int G> struct PanelShape;
template <> struct PanelShape<1> { static constexpr int NV = 4, S = 4; };
template <> struct PanelShape<2> { static constexpr int NV = 4, S = 2; };
template <> struct PanelShape<3> { static constexpr int NV = 3, S = 1; };
template <> struct PanelShape<4> { static constexpr int NV = 4, S = 1; };

// Packs the columns {g*H + unit : g in [g0, g0+G)} of B(k, col) = b[k*sbk + col*sbn]
// (k in [0, K)) into panels of S sub-tiles x G gates x W units, zero-padded
// past H. Forward: B = U (sbk = G_all*H, sbn = 1). Backward: B = U^T restricted
// to some gate rows, with G = 1 "gate" = output units.
//
// Vectorised: the forward (sbn == 1) copies W-unit runs; the backward (U^T,
// sbk == 1) gathers them (the scalar element loop cost S1 LSTM training 12%).
template <int G>
void pack_gate_panels(const float* b, int64_t sbk, int64_t sbn, int64_t K, int64_t H,
                      int64_t col_base, float* out) {
  using PS = PanelShape<G>;
  constexpr int width = PS::NV * W;
  const int64_t units_per_panel = PS::S * W;
  const int64_t npanels = (H + units_per_panel - 1) / units_per_panel;
  const bool gather = sbk == 1 && (col_base + G * H) * sbn < (int64_t(1) << 31);
  for (int64_t p = 0; p < npanels; ++p) {
    float* po = out + p * K * width;
    if (sbn != 1 && !gather) {  // generic element copy
      int64_t col[width];
      for (int s = 0; s < PS::S; ++s)
        for (int g = 0; g < G; ++g)
          for (int l = 0; l < W; ++l) {
            int64_t unit = p * units_per_panel + s * W + l;
            col[(s * G + g) * W + l] = unit < H ? col_base + g * H + unit : -1;
          }
      pack_panel(b, sbk, sbn, 0, K, col, width, po);
      continue;
    }
    for (int s = 0; s < PS::S; ++s) {
      const int64_t unit0 = p * units_per_panel + s * W;
      const int nl = (int)std::max<int64_t>(0, std::min<int64_t>(W, H - unit0));
      for (int g = 0; g < G; ++g) {
        const int64_t col0 = col_base + g * H + unit0;
        float* o = po + (s * G + g) * W;
        if (sbn == 1) {
          for (int64_t k = 0; k < K; ++k)
            (nl ? Vec::load_n(b + k * sbk + col0, nl) : Vec::zero()).store(o + k * width);
        } else {
          int32_t idx[W];
          for (int l = 0; l < W; ++l) idx[l] = (int32_t)(l < nl ? (col0 + l) * sbn : 0);
          for (int64_t k = 0; k < K; ++k) Vec::gather_n(b + k, idx, nl).store(o + k * width);
        }
      }
    }
  }
}

template <int G>
int64_t panel_floats(int64_t K, int64_t H) {
  using PS = PanelShape<G>;
  const int64_t upp = PS::S * W;
  return ((H + upp - 1) / upp) * K * PS::NV * W;
}

// Steps per chunk of the input projection: the chunk's pre-activations take
// <= 1 MiB, so they are still in L2 when the steps read them (perf, LSTM S2:
// the pointwise share of the forward fell from 21% with 8 MiB chunks to 19%),
// and inference keeps O(chunk) memory however long the sequence.
inline int64_t steps_per_chunk(int64_t T, int64_t N, int64_t GH) {
  const int64_t per_step = std::max<int64_t>(1, N * GH * (int64_t)sizeof(float));
  return std::max<int64_t>(1, std::min<int64_t>(T, (int64_t(1) << 20) / per_step));
}

// Threads for a timestep loop: one where a step's work is too small to share.
// A forward step has one barrier, a backward step two, so the backward needs
// more work per step to gain (measured at T=100, N=1, H=128, 2 threads: the
// forward gains 10-15% for LSTM and GRU and loses 10% for SimpleRNN at 33 kFLOP
// a step; the LSTM backward loses 8%).
constexpr double kMinStepFlopsForward = 6e4;
constexpr double kMinStepFlopsBackward = 5e5;
inline int pick_threads(int threads, int64_t items, double flops_per_step, double min_flops) {
  int nt = std::max(1, threads);
  if (flops_per_step < min_flops) nt = 1;
  return (int)std::max<int64_t>(1, std::min<int64_t>(nt, items));
}

// This thread's place in the current parallel region (parallel.h).
struct Region {
  int tid = par::thread_num(), nth = par::num_threads();
  void barrier() const { par::barrier(); }
};

// Recurrent product of one step for a group of row blocks [rb0, rb1) sharing
// panel `panel` (K rows): part[(rb-rb0)*kRowBlock + r][NV*W] = A[n] . panel.
// When several row blocks share the panel, K is walked in chunks small enough
// for the panel chunk (32 KiB: measured 2-4% faster than 16, 24 or 48 KiB at
// S2/S3 with 6-row blocks) to stay in L1 while every row block uses it.
template <int NV>
constexpr int64_t step_kc() {
  return std::max<int64_t>(16, (32 * 1024) / (NV * W * (int64_t)sizeof(float)));
}

// Op: A's layout (Plain, or gate-blocked for dropout masks; see mac_block).
// TA, TP: fp32 (float, float), or bf16 pair panels (uint16_t, uint32_t; K in
// pairs, see mac_block's bf16 form).
template <int NV, class Op = Plain, class TA, class TP>
inline void product_group(const TA* A, int64_t lda, int64_t N, int64_t K, const TP* panel,
                          int64_t rb0, int64_t rb1, float* part, bool accumulate = false) {
  const int64_t nrb = (N + kRowBlock - 1) / kRowBlock;
  // a gate-blocked A is walked in whole blocks of W units
  constexpr int64_t kc_step = Op::BS ? std::max<int64_t>(W, step_kc<NV>() / W * W) : step_kc<NV>();
  const int64_t kstep = rb1 - rb0 > 1 ? kc_step : std::max<int64_t>(K, 1);
  // Prefetch (into L2): while the R = rb1 - rb0 passes run over one chunk,
  // they fetch the chunk two ahead (panels are contiguous, so past a panel's
  // end that is the next panel's), its lines shared out over the passes.
  // Past the last panel it points beyond the buffer: prefetches never fault.
  // Measured at 1 thread: S4 (U 12-16 MB, beyond L2) 1.17-1.44x, S3 1.05-1.07x,
  // S2 neutral. With one pass (batch <= kRowBlock) the whole panel is one
  // chunk and prefetching it cost S1 30%, so one pass prefetches nothing.
  static_assert(sizeof(TP) == sizeof(float), "a panel row is NV*W words");
  constexpr int64_t kRowLines = std::max<int64_t>(1, NV * W * (int64_t)sizeof(float) / 64);
  constexpr int64_t kPfAhead = 1;  // chunks skipped: 0, 1 and 3 measured, 1 best by a few %
  const int64_t R = rb1 - rb0;
  const int pf_lines = R > 1 ? (int)std::min<int64_t>(4, (kRowLines + R - 1) / R) : 0;
  int64_t k0 = 0;
  do {
    const int64_t kc = std::min(kstep, K - k0);
    const char* next =
        reinterpret_cast<const char*>(panel + (k0 + kc + kPfAhead * std::min(kstep, K)) * NV * W);
    const int64_t next_bytes = std::min(kstep, K) * NV * W * (int64_t)sizeof(float);
    for (int64_t rb = rb0; rb < rb1; ++rb) {
      int64_t n0, n1;
      split_range(N, (int)nrb, (int)rb, n0, n1);  // balanced: 32 rows -> 6,6,5,5,5,5
      const int nb = (int)(n1 - n0);
      const int64_t pf_off = (rb - rb0) * kc * pf_lines * 64;
      // k0's offset in a row of A
      const int64_t ak0 = Op::BS ? k0 / W * Op::BS : k0 * k_per_row<TA, TP>();
      mac_rows<NV, Op>(nb, A + n0 * lda + ak0, lda, kc, panel + k0 * NV * W,
                       part + (rb - rb0) * kRowBlock * NV * W, accumulate || k0 > 0,
                       pf_off < next_bytes ? next + pf_off : nullptr, pf_lines);
    }
    k0 += kstep;
  } while (k0 < K);
}

// Work items [i0, i1) of one step, panel-major (item = p * nrb + rb), so a
// thread's items share few panels; epi(n, p, acc) then finishes row n's units
// of panel p from its NV*W pre-activation sums. A0 (K0 columns, row stride
// lda0; panels0 laid out like `panels`) is an optional first product added
// in: the step's input x_t W when the projection is fused into the step.
// OpA: the layout of A (Plain, or gate-blocked with recurrent dropout masks,
// see mac_block).
// TA, TP: see product_group (A0 and panels0 of the same types).
template <int NV, class OpA = Plain, class TA, class TP, class Epi>
inline void step_items(int64_t i0, int64_t i1, int64_t N, const TA* A, int64_t lda, int64_t K,
                       const TP* panels, float* part, Epi&& epi,
                       const TA* A0 = nullptr, int64_t lda0 = 0, int64_t K0 = 0,
                       const TP* panels0 = nullptr, float* part0 = nullptr) {
  // part0: keep the first product apart, in part0 at the same offsets as part
  const int64_t nrb = (N + kRowBlock - 1) / kRowBlock;
  int64_t it = i0;
  while (it < i1) {
    const int64_t p = it / nrb, rb0 = it % nrb;
    const int64_t rb1 = std::min(nrb, rb0 + (i1 - it));
    if (A0)
      product_group<NV>(A0, lda0, N, K0, panels0 + p * K0 * NV * W, rb0, rb1,
                        part0 ? part0 : part);
    product_group<NV, OpA>(A, lda, N, K, panels + p * K * NV * W, rb0, rb1, part,
                           A0 != nullptr && part0 == nullptr);
    for (int64_t rb = rb0; rb < rb1; ++rb) {
      int64_t n0, n1;
      split_range(N, (int)nrb, (int)rb, n0, n1);  // balanced: 32 rows -> 6,6,5,5,5,5
      const int nb = (int)(n1 - n0);
      for (int r = 0; r < nb; ++r)
        epi(n0 + r, p, part + ((rb - rb0) * kRowBlock + r) * NV * W);
    }
    it += rb1 - rb0;
  }
}

// Floats of `part` scratch one thread needs.
inline int64_t part_floats(int64_t N) {
  return ((N + kRowBlock - 1) / kRowBlock) * kRowBlock * 4 * W;
}

// ================================================================ forward

struct FwdCtx {
  const RnnConfig* cfg;
  const ForwardArgs* a;
  int64_t T, N, C, H, G, GH, S;    // S: slots per unit
  const float* P;                   // [T,N,ldp] pre-activations (x W + b), from time p_t0
  int64_t ldp;                      // row stride of P: G*H, or S*H when in the slots
  int64_t p_t0;                     // first time index held in P (inference: a chunk)
  float* h_cur;                     // [N,H]
  float* h_nxt;                     // [N,H]
  float* c;                         // [N,H] LSTM
  float* ylast;                     // [N,H] when !return_sequences
  float* yt;                        // [T,N,H] outputs by step s when return_sequences;
                                    // copied to y [N,T,H] at the end (rows of y for one
                                    // step are T*H apart and alias in the caches)
  float* zbuf;                      // [N,H] GRU reset_before: z of this step
  float* rh;                        // [N,H] GRU reset_before: r * h_prev
  const float* brh;                 // [H] GRU reset_after recurrent bias of h, or null
  // Input projection fused into the step (fuse_input): x time-major and W in
  // the layout of the step's panels (GRU r.b.: z, r panels, then h panels).
  // P is then the bias row (ldp = 0).
  const float* xin = nullptr;       // [T,N,C] or null (not fused)
  const float* wpan = nullptr;
  const float* wpan2 = nullptr;
  // Recurrent dropout (per-gate masks, fixed over time): gate g reads
  // h_prev ⊙ m_g, formed at the start of each step by every thread for
  // itself (masked_h) as hm [N, ldhm] in the gate-blocked layout of mac_block
  // (row = blocks of W units x G gates). (Input masks keep the projection a
  // GEMM, see rnn_forward.)
  const float* rmask = nullptr;     // [G,N,H] or null
  float* hm = nullptr;              // [N,ldhm] this thread's h_cur ⊙ m_g, gate-blocked
  int64_t ldhm = 0;                 // ceil(H/W) * G * W
  // With a mask: the first step s of row n that is unmasked (T if none), so
  // step s has seen an unmasked step when s >= first_live[n].
  const int64_t* first_live = nullptr;  // [N] or null
  // precision bf16 without native products (fp32 products of bf16-valued
  // floats): every product's operand rounded to bf16, h_cur into this thread's
  // hb at each step's start (as masked_h; the cell reads the unrounded h_cur).
  // Null otherwise: hb set is what says this mode.
  float* hb = nullptr;              // [N,H] this thread's round_bf16(h_cur)
  // precision bf16 on AVX512_BF16 (Bf16Operands): the step's products read
  // bf16 operands, rows padded to even lengths Hp, Cp (a zero past H), from
  // bf16 pair panels. Whatever writes h_nxt (rh) writes its bf16 too, so the
  // next step (phase 2) reads it after the barrier that is there anyway.
  const uint16_t* hbb = nullptr;    // [N,Hp] h_cur as bf16
  uint16_t* hbn = nullptr;          // [N,Hp] h_nxt as bf16 (null: not native)
  uint16_t* rhb = nullptr;          // [N,Hp] rh as bf16 (GRU r.b. phase 2)
  const uint16_t* xbb = nullptr;    // [T,N,Cp] x as bf16 (fused projection) or null
  int64_t Hp = 0, Cp = 0;
};

// Row stride of a gate-blocked copy of D features for G gates.
inline int64_t blocked_ld(int64_t D, int64_t G) { return (D + W - 1) / W * G * W; }

// The step's input rows x_t (time-major), when the projection is fused.
inline const float* x_rows(const FwdCtx& f, int64_t t) {
  return f.xin ? f.xin + t * f.N * f.C : nullptr;
}

// The recurrent operand of the step's products and its row stride.
inline const float* h_operand(const FwdCtx& f) {
  return f.rmask ? f.hm : f.hb ? f.hb : f.h_cur;
}
inline int64_t h_ld(const FwdCtx& f) { return f.rmask ? f.ldhm : f.H; }

// hm = h_cur ⊙ m_g for every gate, gate-blocked: one pass at the start of a
// step. (Written by the previous step's epilogue instead, beside h, the four
// extra stores per unit tile cost LSTM S3 ~12% of its forward; this pass ~1%.)
inline void masked_h(const FwdCtx& f) {
  const int64_t N = f.N, H = f.H, G = f.G;
  const float* h = f.hb ? f.hb : f.h_cur;  // bf16: the rounded h, then masked
  for (int64_t n = 0; n < N; ++n) {
    const float* hr = h + n * H;
    float* o = f.hm + n * f.ldhm;
    for (int64_t u0 = 0; u0 < H; u0 += W) {
      const int nl = (int)std::min<int64_t>(W, H - u0);
      const Vec h = Vec::load_n(hr + u0, nl);
      for (int64_t g = 0; g < G; ++g)
        (h * Vec::load_n(f.rmask + (g * N + n) * H + u0, nl)).store_n(o + u0 * G + g * W, nl);
    }
  }
}

// x [N,T,C] -> [T,N,C] and back: the kernels work time-major, so each step's
// rows (P, saved activations, dG) are one contiguous block. Copies over 1 MiB
// are shared out over the threads (serial, they cost S3 ~7% of its 2-thread
// time); every element is copied once, so the result does not depend on them.
inline void transpose_nt(const float* in, int64_t A, int64_t B, int64_t C, float* out,
                         int threads, int64_t ldo = -1, float fill_last = 0.0f) {
  // out[(b * A + a) * ldo + c] = in[a, b, c]; with ldo = C + 1 the extra
  // column is set to fill_last
  if (ldo < 0) ldo = C;
  const int nt = (double)A * B * C * sizeof(float) > (1 << 20) ? std::max(1, threads) : 1;
  par::parallel_for(nt, A, [&](int64_t a) {
    for (int64_t b = 0; b < B; ++b) {
      float* o = out + (b * A + a) * ldo;
      std::memcpy(o, in + (a * B + b) * C, C * sizeof(float));
      if (ldo > C) o[C] = fill_last;
    }
  });
}
inline void to_time_major(const float* x, int64_t N, int64_t T, int64_t C, float* out,
                          int threads) {
  transpose_nt(x, N, T, C, out, threads);
}
inline void from_time_major(const float* xt, int64_t N, int64_t T, int64_t C, float* out,
                            int threads) {
  transpose_nt(xt, T, N, C, out, threads);
}

// Row (n, t) of the pre-activations P and of the saved activations (training
// only: null in inference).
inline const float* p_row(const FwdCtx& f, int64_t n, int64_t t) {
  return f.P + ((t - f.p_t0) * f.N + n) * f.ldp;
}
inline float* slot_row(const FwdCtx& f, int64_t n, int64_t t) {
  return f.a->slots ? f.a->slots + (t * f.N + n) * f.S * f.H : nullptr;
}

inline bool unmasked(const uint8_t* mask, int64_t T, int64_t n, int64_t t) {
  return mask == nullptr || mask[n * T + t] != 0;
}

// The output row that step s writes.
inline float* y_row(const FwdCtx& f, int64_t n, int64_t s) {
  return f.cfg->return_sequences ? f.yt + (s * f.N + n) * f.H : f.ylast + n * f.H;
}

// Gates per panel of a cell's forward step: all of them, except GRU
// reset_before, whose first phase packs z and r (its h gate is a second phase
// of one gate, over r h_prev).
template <class K>
constexpr int kStepGates = K::gru_reset_before ? 2 : K::gates;

// The step writes gate g's activation over its pre-activation in the slots
// (P is written there in training), so gate g's slot must be slot g.
template <class K>
constexpr bool slots_in_gate_order() {
  using SL = typename K::slots;
  if constexpr (K::cell == Cell::SimpleRNN)
    return SL::h == 0;
  else if constexpr (K::cell == Cell::LSTM)
    return SL::i == 0 && SL::f == 1 && SL::g == 2 && SL::o == 3;
  else
    return SL::z == 0 && SL::r == 1 && SL::hh == 2;
}

// dst[0, nl) = v's first nl lanes as bf16 (RNE), where native bf16 runs.
RNNKERN_INLINE void store_bf16(const Vec& v, uint16_t* dst, int nl) {
#if defined(RNNKERN_BF16_NATIVE)
  _mm256_mask_storeu_epi16(dst, (__mmask16)((1u << nl) - 1u), (__m256i)_mm512_cvtneps_pbh(v.v));
#else
  (void)v, (void)dst, (void)nl;
#endif
}

// A masked (n, s): the state carried (c too: left as it is), the output
// mask_output(seen, h_prev), seen: an earlier step of the row was unmasked.
// The slots are zeroed (the dU GEMM of GRU reset_before reads slot r of
// every row).
template <class K>
inline void forward_masked_units(const FwdCtx& f, int64_t n, int64_t s, int64_t t, int64_t u0,
                                 int64_t u1) {
  const int64_t H = f.H;
  const bool seen = s > f.first_live[n];
  float* y = y_row(f, n, s);
  for (int64_t u = u0; u < u1; u += W) {
    const int nl = (int)std::min<int64_t>(W, u1 - u);
    const Vec hp = Vec::load_n(f.h_cur + n * H + u, nl);
    hp.store_n(f.h_nxt + n * H + u, nl);  // mask_carry(false, ., hp)
    if (f.hbn) store_bf16(hp, f.hbn + n * f.Hp + u, nl);
    mask_output(seen, hp).store_n(y + u, nl);
    if constexpr (K::training) hp.store_n(f.a->hprev + (t * f.N + n) * H + u, nl);
  }
  if constexpr (K::training) {
    float* sl = slot_row(f, n, t);
    for (int q = 0; q < K::slots::count; ++q) std::fill(sl + q * H + u0, sl + q * H + u1, 0.0f);
  }
}

// Pointwise step of W units [u0, u0+nl) of row n; rec: the recurrent sums of
// gate g at rec + g*W. xrec: GRU reset_after with the projection fused, the
// x_t W sums of the unit tile (kept apart from rec: r multiplies only the
// recurrent part).
template <class K>
RNNKERN_INLINE void forward_point(const FwdCtx& f, int64_t n, int64_t s, int64_t t, int64_t u0,
                                  int nl, const float* rec, const float* xrec = nullptr) {
  using SL = typename K::slots;
  static_assert(slots_in_gate_order<K>());
  const RnnConfig& cfg = *f.cfg;
  const int64_t H = f.H;
  const float* p = p_row(f, n, t);
  const Vec hp = Vec::load_n(f.h_cur + n * H + u0, nl);
  float* sl = K::training ? slot_row(f, n, t) : nullptr;
  auto save = [&](int q, Vec v) RNNKERN_LAMBDA_INLINE {
    if constexpr (K::training) v.store_n(sl + q * H + u0, nl);
  };
  auto px = [&](int g) RNNKERN_LAMBDA_INLINE { return Vec::load_n(p + g * H + u0, nl); };
  auto pre = [&](int g) RNNKERN_LAMBDA_INLINE { return px(g) + Vec::load(rec + g * W); };
  Vec h;
  if constexpr (K::cell == Cell::SimpleRNN) {
    h = simple_forward(cfg.act, pre(0));
    save(SL::h, h);
  } else if constexpr (K::cell == Cell::LSTM) {
    const Vec cp = Vec::load_n(f.c + n * H + u0, nl);
    const auto st = lstm_forward(cfg.act, cfg.ract, pre(0), pre(1), pre(2), pre(3), cp);
    st.c.store_n(f.c + n * H + u0, nl);
    h = st.h;
    save(SL::i, st.i);
    save(SL::f, st.f);
    save(SL::g, st.g);
    save(SL::o, st.o);
    save(SL::c_prev, cp);
    save(SL::ac, st.ac);
  } else {
    static_assert(K::gru_reset_after, "GRU reset_before runs gru_rb_phase1/2");
    // P holds b_z + b_rec_z and b_r + b_rec_r (projection_bias); inner_h
    // gets b_rec_h (inner_bias)
    Vec inner_h = Vec::load(rec + 2 * W);
    if (f.brh) inner_h = inner_h + Vec::load_n(f.brh + u0, nl);
    Vec xz = px(0), xr = px(1), xh = px(2);
    if (xrec) {
      xz = xz + Vec::load(xrec);
      xr = xr + Vec::load(xrec + W);
      xh = xh + Vec::load(xrec + 2 * W);
    }
    const auto st = gru_forward_reset_after(cfg.act, cfg.ract, xz, xr, xh, Vec::load(rec),
                                            Vec::load(rec + W), inner_h);
    h = gru_blend(st.z, hp, st.hh);
    save(SL::z, st.z);
    save(SL::r, st.r);
    save(SL::hh, st.hh);
    save(SL::inner_h, inner_h);
  }
  h.store_n(f.h_nxt + n * H + u0, nl);
  if (f.hbn) store_bf16(h, f.hbn + n * f.Hp + u0, nl);
  h.store_n(y_row(f, n, s) + u0, nl);
  if constexpr (K::training) hp.store_n(f.a->hprev + (t * f.N + n) * H + u0, nl);
}

// Calls fn(u0, nl) for the W-unit sub-tiles of panel p (S sub-tiles of W units).
// out[0..n) = in[0..n) rounded to bf16 values (precision bf16's operands;
// out may be in): vectorised where this ISA has AVX512_BF16.
inline void round_bf16_n(const float* in, float* out, int64_t n) {
#if defined(RNNKERN_BF16_NATIVE)
  static const bool vec = cpu_has_avx512_bf16();  // the cpuid answer, read once here
  if (vec) {
    round_bf16_vec(in, out, n);
    return;
  }
#endif
  round_bf16(in, out, n);
}
inline void round_bf16_n(float* p, int64_t n) { round_bf16_n(p, p, n); }

// What a forward step's products read (forward_loop's E): fp32 operands and
// panels (precision fp32, and bf16 by rounded fp32 values), or bf16 ones.
struct F32Operands {
  using TA = float;
  using TP = float;
  static const float* h(const FwdCtx& f) { return h_operand(f); }
  static int64_t h_lda(const FwdCtx& f) { return h_ld(f); }
  static int64_t h_k(const FwdCtx& f) { return f.H; }
  static const float* rh(const FwdCtx& f) { return f.rh; }
  static int64_t rh_lda(const FwdCtx& f) { return f.H; }
  static const float* x(const FwdCtx& f, int64_t t) { return x_rows(f, t); }
  static int64_t x_lda(const FwdCtx& f) { return f.C; }
  static int64_t x_k(const FwdCtx& f) { return f.C; }
  static const float* panels(const float* p) { return p; }
};
#if defined(RNNKERN_BF16_NATIVE)
struct Bf16Operands {
  using TA = uint16_t;
  using TP = uint32_t;
  static const uint16_t* h(const FwdCtx& f) { return f.hbb; }
  static int64_t h_lda(const FwdCtx& f) { return f.Hp; }
  static int64_t h_k(const FwdCtx& f) { return f.Hp / 2; }
  static const uint16_t* rh(const FwdCtx& f) { return f.rhb; }
  static int64_t rh_lda(const FwdCtx& f) { return f.Hp; }
  static const uint16_t* x(const FwdCtx& f, int64_t t) {
    return f.xbb ? f.xbb + t * f.N * f.Cp : nullptr;
  }
  static int64_t x_lda(const FwdCtx& f) { return f.Cp; }
  static int64_t x_k(const FwdCtx& f) { return f.Cp / 2; }
  static const uint32_t* panels(const float* p) { return reinterpret_cast<const uint32_t*>(p); }
};
#endif

template <int S, class Fn>
RNNKERN_INLINE void for_subtiles(int64_t p, int64_t H, Fn&& fn) {
  for (int sb = 0; sb < S; ++sb) {
    const int64_t u0 = (p * S + sb) * W;
    if (u0 >= H) break;
    fn(sb, u0, (int)std::min<int64_t>(W, H - u0));
  }
}

// One fused step for items [i0, i1); kStepGates<K> gates per panel; OpH: the
// layout of the recurrent operand (gate-blocked with recurrent dropout masks).
template <class K, class OpH, class E>
void forward_items(const FwdCtx& f, const float* panels, float* part, int64_t s, int64_t t,
                   int64_t i0, int64_t i1) {
  constexpr int G = kStepGates<K>;
  using PS = PanelShape<G>;
  // GRU reset_after keeps x_t W apart (in part0, the second half of part)
  float* part0 = K::gru_reset_after && f.xin ? part + part_floats(f.N) : nullptr;
  step_items<PS::NV, OpH>(i0, i1, f.N, E::h(f), E::h_lda(f), E::h_k(f), E::panels(panels), part,
                     [&](int64_t n, int64_t p, const float* acc) RNNKERN_LAMBDA_INLINE {
    const bool live = unmasked(f.a->mask, f.T, n, t);
    const float* acc0 = part0 ? part0 + (acc - part) : nullptr;
    for_subtiles<PS::S>(p, f.H, [&](int sb, int64_t u0, int nl) RNNKERN_LAMBDA_INLINE {
      if (live)
        forward_point<K>(f, n, s, t, u0, nl, acc + sb * G * W,
                         acc0 ? acc0 + sb * G * W : nullptr);
      else
        forward_masked_units<K>(f, n, s, t, u0, u0 + nl);
    });
  }, E::x(f, t), E::x_lda(f), E::x_k(f), E::panels(f.wpan), part0);
}

// GRU reset_before, phase 1: z, r from [P_z P_r] + h_prev [U_z U_r]; rh = r h_prev
// (with recurrent dropout: z, r read h_prev ⊙ m_z, h_prev ⊙ m_r; rh = r h_prev ⊙ m_h).
template <class K, class OpH, class E>
void gru_rb_phase1(const FwdCtx& f, const float* panels, float* part, int64_t t,
                   int64_t i0, int64_t i1) {
  using PS = PanelShape<2>;
  using SL = typename K::slots;
  const int64_t H = f.H;
  const RnnConfig& cfg = *f.cfg;
  step_items<PS::NV, OpH>(i0, i1, f.N, E::h(f), E::h_lda(f), E::h_k(f), E::panels(panels), part,
                     [&](int64_t n, int64_t p, const float* acc) RNNKERN_LAMBDA_INLINE {
    const bool live = unmasked(f.a->mask, f.T, n, t);
    const float* prow = p_row(f, n, t);
    float* sl = K::training ? slot_row(f, n, t) : nullptr;
    for_subtiles<PS::S>(p, H, [&](int sb, int64_t u0, int nl) RNNKERN_LAMBDA_INLINE {
      if (!live) {  // the row's phase-2 product then multiplies zeros
        std::fill(f.rh + n * H + u0, f.rh + n * H + u0 + nl, 0.0f);
        if (f.hbn) store_bf16(Vec::zero(), f.rhb + n * f.Hp + u0, nl);
        return;
      }
      const Vec hp = Vec::load_n(f.h_cur + n * H + u0, nl);
      const auto zr = gru_gates_reset_before(
          cfg.ract, Vec::load_n(prow + u0, nl) + Vec::load(acc + sb * 2 * W),
          Vec::load_n(prow + H + u0, nl) + Vec::load(acc + (sb * 2 + 1) * W));
      zr.z.store_n(f.zbuf + n * H + u0, nl);
      const Vec hph = f.rmask ? hp * Vec::load_n(f.rmask + (2 * f.N + n) * H + u0, nl) : hp;
      const Vec rh = gru_reset_state(zr.r, hph);
      rh.store_n(f.rh + n * H + u0, nl);
      if (f.hb) round_bf16_n(f.rh + n * H + u0, nl);  // phase 2's operand
      if (f.hbn) store_bf16(rh, f.rhb + n * f.Hp + u0, nl);  // native: its bf16
      if constexpr (K::training) {
        zr.z.store_n(sl + SL::z * H + u0, nl);
        zr.r.store_n(sl + SL::r * H + u0, nl);
      }
    });
  }, E::x(f, t), E::x_lda(f), E::x_k(f), E::panels(f.wpan));
}

// GRU reset_before, phase 2: hh = act(P_h + rh U_h); h = z h_prev + (1-z) hh.
template <class K, class E>
void gru_rb_phase2(const FwdCtx& f, const float* panels, float* part, int64_t s, int64_t t,
                   int64_t i0, int64_t i1) {
  using PS = PanelShape<1>;
  using SL = typename K::slots;
  const int64_t H = f.H;
  const RnnConfig& cfg = *f.cfg;
  step_items<PS::NV>(i0, i1, f.N, E::rh(f), E::rh_lda(f), E::h_k(f), E::panels(panels), part,
                     [&](int64_t n, int64_t p, const float* acc) RNNKERN_LAMBDA_INLINE {
    const bool live = unmasked(f.a->mask, f.T, n, t);
    const float* prow = p_row(f, n, t);
    float* sl = K::training ? slot_row(f, n, t) : nullptr;
    for_subtiles<PS::S>(p, H, [&](int sb, int64_t u0, int nl) RNNKERN_LAMBDA_INLINE {
      if (!live) {
        forward_masked_units<K>(f, n, s, t, u0, u0 + nl);
        return;
      }
      const Vec hp = Vec::load_n(f.h_cur + n * H + u0, nl);
      const Vec z = Vec::load_n(f.zbuf + n * H + u0, nl);
      const Vec hh = gru_candidate_reset_before(cfg.act, Vec::load_n(prow + 2 * H + u0, nl),
                                                Vec::load(acc + sb * W));
      const Vec h = gru_blend(z, hp, hh);
      h.store_n(f.h_nxt + n * H + u0, nl);
      if (f.hbn) store_bf16(h, f.hbn + n * f.Hp + u0, nl);
      h.store_n(y_row(f, n, s) + u0, nl);
      if constexpr (K::training) {
        hh.store_n(sl + SL::hh * H + u0, nl);
        hp.store_n(f.a->hprev + (t * f.N + n) * H + u0, nl);
      }
    });
  }, E::x(f, t), E::x_lda(f), E::x_k(f), E::panels(f.wpan2));
}

// The input projection of one chunk of steps: P rows = x_t W + bias for the
// times the chunk's steps read (training: straight into the slots).
// With input dropout masks gate g's columns are a GEMM of their own, (x ⊙ d_g)
// W_g: the masks are applied while the GEMM packs x (RowScale: x's time-major
// rows t*N + n repeat the [N, C] masks), W's block g read plain (its packed
// panels span every gate).
struct Projection {
  const float* xt;     // [T,N,C]
  const float* bias;   // [GH] or null
  float* P;            // the slots (training) or one chunk's buffer
  bool in_slots;
  const float* Wp;     // W packed by pack_b_full (null with input masks)
  float* apack;        // GEMM packing buffers for the region's threads
  float* bpack;
  int threads;         // threads of a GEMM run outside a parallel region
  const float* imask = nullptr;  // [G,N,C] input masks, or null
  const float* W = nullptr;      // [C,G*H], with input masks

  // Steps [s0, s1): compute their P rows (thread reg.tid's share; the caller
  // puts a barrier after it) and return the first time index held in P.
  int64_t run(const FwdCtx& f, int64_t s0, int64_t s1, const Region& reg) const {
    const int64_t t_lo = f.cfg->go_backwards ? f.T - s1 : s0;  // times read by the steps
    float* Pc = in_slots ? P + t_lo * f.N * f.ldp : P;
    auto run1 = [&](const Gemm& g) {
      if (reg.nth > 1)
        g.run(reg.tid, reg.nth, apack, bpack);
      else  // the steps run on one thread; the projection may still use several
        gemm(g.M, g.N, g.K, g.a, g.sam, g.sak, g.b, g.sbk, g.sbn, g.c, g.ldc, false, threads,
             g.bias, g.bfull, g.ones_row, g.as);
    };
    if (imask) {  // one GEMM per gate (disjoint columns, no barrier between)
      for (int64_t gi = 0; gi < f.G; ++gi)
        run1(Gemm{(s1 - s0) * f.N, f.H, f.C, xt + t_lo * f.N * f.C, f.C, 1, W + gi * f.H, f.GH,
                  1, Pc + gi * f.H, f.ldp, false, bias ? bias + gi * f.H : nullptr, nullptr,
                  -1, RowScale{imask + gi * f.N * f.C, f.N, f.C}});
    } else {
      // B = W comes packed (Wp), so its plain layout (b, sbk, sbn) is not read
      run1(Gemm{(s1 - s0) * f.N, f.GH, f.C, xt + t_lo * f.N * f.C, f.C, 1, nullptr, f.GH, 1,
                Pc, f.ldp, false, bias, Wp});
    }
    return in_slots ? 0 : t_lo;
  }
};

// The whole sequence inside ONE parallel region of nt threads: per chunk of
// steps, the input projection (split over the threads) and a barrier, then the
// steps with a barrier after each. nt == 1 runs it on the calling thread.
template <class K, class OpH, class E>
void forward_loop(FwdCtx& f, int64_t chunk, const Projection& proj, const float* panels,
                  const float* panels2, float* parts, int nt) {
  constexpr bool native = !std::is_same_v<E, F32Operands>;  // bf16 operands
  using PS = PanelShape<kStepGates<K>>;
  const int64_t nrb = (f.N + kRowBlock - 1) / kRowBlock;
  const int64_t items = nrb * ((f.H + PS::S * W - 1) / (PS::S * W));
  const int64_t items2 = nrb * ((f.H + 4 * W - 1) / (4 * W));  // GRU r.b. phase 2
  auto body = [&]() {
    Region reg;
    float* part = parts + reg.tid * 2 * part_floats(f.N);  // 2: see forward_items
    float* hc = f.h_cur;
    float* hn = f.h_nxt;
    uint16_t* hbc = f.hbn;  // native: h_cur's bf16 (h0's at first), else null
    uint16_t* hbx = f.hbn ? f.hbn + f.N * f.Hp : nullptr;
    FwdCtx fl = f;  // per-thread copy: h buffers swap every step
    for (int64_t s0 = 0; s0 < f.T; s0 += chunk) {
      const int64_t s1 = std::min(f.T, s0 + chunk);
      if (!f.xin) {  // fused: no projection, P is the bias row
        fl.p_t0 = proj.run(f, s0, s1, reg);
        reg.barrier();
      }
      for (int64_t s = s0; s < s1; ++s) {
        const int64_t t = f.cfg->go_backwards ? f.T - 1 - s : s;
        fl.h_cur = hc;
        fl.h_nxt = hn;
        if constexpr (native) {  // written by the previous step (or before the loop)
          fl.hbb = hbc;
          fl.hbn = hbx;
        } else if (f.hb) {  // every thread its own copy: no barrier for it
          fl.hb = f.hb + reg.tid * f.N * f.H;
          round_bf16_n(hc, fl.hb, f.N * f.H);
        }
        if (f.rmask) {  // every thread its own copy: no barrier for it
          fl.hm = f.hm + reg.tid * f.N * f.ldhm;
          masked_h(fl);
        }
        int64_t lo, hi;
        if constexpr (K::gru_reset_before) {
          split_range(items, reg.nth, reg.tid, lo, hi);
          gru_rb_phase1<K, OpH, E>(fl, panels, part, t, lo, hi);
          reg.barrier();
          split_range(items2, reg.nth, reg.tid, lo, hi);
          gru_rb_phase2<K, E>(fl, panels2, part, s, t, lo, hi);
        } else {
          split_range(items, reg.nth, reg.tid, lo, hi);
          forward_items<K, OpH, E>(fl, panels, part, s, t, lo, hi);
        }
        reg.barrier();
        std::swap(hc, hn);
        std::swap(hbc, hbx);
      }
    }
    if (reg.tid == 0) {
      f.h_cur = hc;
      f.h_nxt = hn;
    }
  };
  if (nt > 1) {
    par::parallel(nt, [&](int, int) { body(); });
  } else {
    body();  // not inside a region, so the projection GEMM may still fork
  }
}

// ---------------------------------------------------------------- packing

// The input projection is fused into the step (x_t W summed into the same
// registers as h_prev U, from W packed like U) when the batch has several row
// blocks: it saves the projection GEMM, whose short k loop runs slower than
// the step, and P's round trip through L2. Measured at 1 thread against the
// GEMM, C from H/100 to 4H: forward 1.00-1.09x (S2, S3, S4, C = H, C = 2H,
// C = 4H), training 0.98-1.05x; wider inputs than 4H were not measured and
// keep the GEMM. With one row block (batch <= kRowBlock) the W panels are read
// for too few rows: batch 1-2 lost 8-12%. GRU reset_after keeps x_t W in
// registers of its own: r multiplies only h_prev U.
inline bool fusable_input(const RnnConfig& cfg) { return cfg.C <= 4 * cfg.H; }
inline bool fuse_input(const RnnConfig& cfg) { return fusable_input(cfg) && cfg.N > kRowBlock; }

// precision bf16 with AVX512_BF16 (this ISA built with it, and the CPU has it):
// the forward step's products take bf16 operands from bf16 pair panels.
inline bool native_bf16(const RnnConfig& cfg) {
#if defined(RNNKERN_BF16_NATIVE)
  return cfg.precision == Precision::BF16 && cpu_has_avx512_bf16();
#else
  (void)cfg;
  return false;
#endif
}

// pack_gate_panels, then (bf16) to_pair_panels.
template <int G>
void pack_step_panels(const float* b, int64_t sbk, int64_t sbn, int64_t K, int64_t H,
                      int64_t col_base, float* out, bool pairs) {
  pack_gate_panels<G>(b, sbk, sbn, K, H, col_base, out);
#if defined(RNNKERN_BF16_NATIVE)
  if (pairs) {
    using PS = PanelShape<G>;
    to_pair_panels(out, (H + PS::S * W - 1) / (PS::S * W), K, PS::NV * W);
  }
#else
  (void)pairs;  // native_bf16 is false without AVX512_BF16
#endif
}

inline int64_t packed_floats(const RnnConfig& cfg, int part) {
  return with_cell(cfg.cell, cfg.reset_after, [&](auto k) -> int64_t {
    using K = decltype(k);
    constexpr int G = kStepGates<K>;
    constexpr bool rb = K::gru_reset_before;
    const int64_t H = cfg.H, C = cfg.C, GH = K::gates * H;
    switch (part) {
      case kPackForward: return panel_floats<G>(H, H);
      case kPackForward2: return rb ? panel_floats<1>(H, H) : 0;
      case kPackBackward: return panel_floats<1>(rb ? 2 * H : GH, H);
      case kPackBackward2: return rb ? panel_floats<1>(H, H) : 0;
      case kPackInput: return packed_b_floats(C, GH);
      case kPackInputFused:  // GRU r.b.: two layouts, one per phase
        if (!fusable_input(cfg)) return 0;
        return panel_floats<G>(C, H) + (rb ? panel_floats<1>(C, H) : 0);
      default: return 0;
    }
  });
}

// pairs: the steps' parts as bf16 pair panels (native_bf16); the projection
// GEMM's stays fp32 (of rounded weights, in bf16).
inline void pack_weights_as(const RnnConfig& cfg, const float* U, int part, float* out,
                            bool pairs) {
  with_cell(cfg.cell, cfg.reset_after, [&](auto k) {
    using K = decltype(k);
    constexpr int G = kStepGates<K>;
    constexpr bool rb = K::gru_reset_before;
    const int64_t H = cfg.H, C = cfg.C, GH = K::gates * H;
    switch (part) {
      case kPackForward: pack_step_panels<G>(U, GH, 1, H, H, 0, out, pairs); break;
      case kPackForward2:
        if constexpr (rb) pack_step_panels<1>(U, GH, 1, H, H, 2 * H, out, pairs);
        break;
      case kPackBackward: pack_step_panels<1>(U, 1, GH, rb ? 2 * H : GH, H, 0, out, pairs); break;
      case kPackBackward2:
        // B(k, unit) = U_h[unit, k] = U[unit, 2H + k]
        if constexpr (rb) pack_step_panels<1>(U + 2 * H, 1, GH, H, H, 0, out, pairs);
        break;
      case kPackInput: pack_b_full(U, GH, 1, C, GH, out); break;  // U is W [C,G*H] here
      case kPackInputFused:
        if (!fusable_input(cfg)) break;
        pack_step_panels<G>(U, GH, 1, C, H, 0, out, pairs);
        // GRU r.b.: the z, r panels of phase 1, then the h panels of phase 2
        if constexpr (rb)
          pack_step_panels<1>(U, GH, 1, C, H, 2 * H, out + panel_floats<2>(C, H), pairs);
        break;
      default: break;
    }
  });
}

// The kernel table's pack (CpuKernels::pack): bf16 pair panels where native_bf16.
inline void pack_weights(const RnnConfig& cfg, const float* U, int part, float* out) {
  pack_weights_as(cfg, U, part, out, native_bf16(cfg));
}

// A part packed into this thread's scratch (the caller had none cached).
inline const float* packed_scratch(const RnnConfig& cfg, const float* U, int part, bool pairs) {
  const int slot = part == kPackInput || part == kPackInputFused ? kScratchWp
                   : part == kPackForward || part == kPackBackward ? kScratchPanels
                                                                   : kScratchPanels2;
  float* out = scratch(slot, packed_floats(cfg, part));
  pack_weights_as(cfg, U, part, out, pairs);
  return out;
}

}  // namespace detail

inline void rnn_forward(const RnnConfig& cfg, const ForwardArgs& a) {
  using namespace detail;
  const int64_t T = cfg.T, N = cfg.N, C = cfg.C, H = cfg.H;
  const int G = num_gates(cfg.cell);
  const int64_t GH = G * H;
  const int S = num_slots(cfg.cell, cfg.reset_after);
  if (N == 0 || T == 0) return;

  // 1. P = X W + b_in (+ b_rec of z, r for GRU reset_after), one GEMM per
  // chunk of steps, just before the chunk's steps read it. Training writes P
  // straight into the slots (the step overwrites it in place); inference into
  // one chunk-sized buffer, so it keeps O(chunk * N * G * H) memory. Fused
  // (fuse_input), the steps sum x_t W themselves and P is the bias row.
  // Input dropout masks keep the projection a GEMM, one per gate with x ⊙ d_g
  // formed as the GEMM packs x (measured at S2/S3, LSTM: the fused step with
  // masked copies of x cost 1.07-1.10x the unmasked forward, the GEMMs
  // 1.04-1.06x; they also need no copies of x).
  const bool fused = fuse_input(cfg) && !a.input_masks;
  float* xt = scratch(kScratchXt, N * T * C);
  to_time_major(a.x, N, T, C, xt, cfg.threads);
  // precision bf16: W, U come rounded (backend_cpu.cc); x is rounded here, h
  // at every step. native: bf16 operands and pair panels in the step (packed
  // parts given in a.packed* are then pair panels: backend_cpu.cc drops them
  // with recurrent masks, whose gate-blocked operands take the fp32 products).
  const bool bf16 = cfg.precision == Precision::BF16;
  const bool native = native_bf16(cfg) && !a.recurrent_masks;
  if (bf16 && !(native && fused)) round_bf16_n(xt, N * T * C);  // native fused: to_bf16_rows
  std::vector<float> bias_in(GH, 0.0f);
  if (a.b)
    for (int64_t j = 0; j < GH; ++j)
      bias_in[j] = projection_bias(cfg.cell, cfg.reset_after, H, a.b, j);
  const float* brh = inner_bias(cfg.cell, cfg.reset_after, H, a.b);
  const int64_t chunk = fused ? T : steps_per_chunk(T, N, GH);
  float* P = fused ? bias_in.data() : a.slots ? a.slots : scratch(kScratchP, chunk * N * GH);
  const int64_t ldp = fused ? 0 : a.slots ? S * H : GH;

  // 2. State buffers and packed recurrent panels, allocated before the loop.
  std::vector<float> hbuf(2 * N * H), cbuf, ylast, zbuf, rh, hmbuf, hbbuf;
  std::memcpy(hbuf.data(), a.h0, N * H * sizeof(float));
  if (cfg.cell == Cell::LSTM) cbuf.assign(a.c0, a.c0 + N * H);
  if (!cfg.return_sequences) ylast.assign(N * H, 0.0f);
  FwdCtx f{&cfg, &a, T, N, C, H, G, GH, S, P, ldp, 0, hbuf.data(), hbuf.data() + N * H,
           cbuf.data(), ylast.data(),
           cfg.return_sequences ? scratch(kScratchYt, T * N * H) : nullptr, nullptr, nullptr,
           brh};
  if (a.recurrent_masks) {
    f.rmask = a.recurrent_masks;
    f.ldhm = blocked_ld(H, G);
  }
  std::vector<int64_t> first_live;
  if (a.mask) {
    first_live.assign(N, T);
    for (int64_t n = 0; n < N; ++n)
      for (int64_t s = 0; s < T; ++s)
        if (unmasked(a.mask, T, n, cfg.go_backwards ? T - 1 - s : s)) {
          first_live[n] = s;
          break;
        }
    f.first_live = first_live.data();
  }
  const float* panels = a.packed ? a.packed : packed_scratch(cfg, a.U, kPackForward, native);
  const float* panels2 = nullptr;
  const int64_t nrb = (N + kRowBlock - 1) / kRowBlock;
  const double step_flops = 2.0 * N * H * GH;
  const int64_t units_per_item = with_cell(cfg.cell, cfg.reset_after, [](auto k) -> int64_t {
    return PanelShape<kStepGates<decltype(k)>>::S * W;
  });
  const int64_t items = nrb * ((H + units_per_item - 1) / units_per_item);
  if (cfg.cell == Cell::GRU && !cfg.reset_after) {
    panels2 = a.packed2 ? a.packed2 : packed_scratch(cfg, a.U, kPackForward2, native);
    zbuf.assign(N * H, 0.0f);
    rh.assign(N * H, 0.0f);
    f.zbuf = zbuf.data();
    f.rh = rh.data();
  }
  const int nt = pick_threads(cfg.threads, items, step_flops, kMinStepFlopsForward);
  std::vector<float> parts(nt * 2 * part_floats(N));
  if (f.rmask) {
    hmbuf.resize(nt * N * f.ldhm);
    f.hm = hmbuf.data();
  }
  std::vector<uint16_t> hbbuf16, rhbuf16, xbuf16;  // native bf16 operands
  if (native) {  // shared by the threads; zeros past H stay
    f.Hp = (H + 1) / 2 * 2;
    hbbuf16.assign(2 * N * f.Hp, 0);  // h_cur's and h_nxt's, swapped every step
    f.hbn = hbbuf16.data();
#if defined(RNNKERN_BF16_NATIVE)
    to_bf16_rows(f.h_cur, N, H, H, f.hbn, f.Hp);  // h0
#endif
    if (cfg.cell == Cell::GRU && !cfg.reset_after) {
      rhbuf16.assign(N * f.Hp, 0);
      f.rhb = rhbuf16.data();
    }
  } else if (bf16) {
    hbbuf.resize(nt * N * H);
    f.hb = hbbuf.data();
  }

  // 3. The timestep loop, chunk by chunk, in one parallel region.
  // W is packed once for all chunks (packing it per chunk cost S3 ~6%); the
  // per-gate GEMMs of input dropout read it plain
  const bool gemm_masked = a.input_masks != nullptr;
  const float* Wp = fused ? (a.packed_wf ? a.packed_wf : packed_scratch(cfg, a.W, kPackInputFused, native))
                    : gemm_masked ? nullptr
                                  : (a.packed_w ? a.packed_w : packed_scratch(cfg, a.W, kPackInput, false));
  Projection proj{xt, a.b ? bias_in.data() : nullptr, P, a.slots != nullptr, Wp, nullptr,
                  nullptr, cfg.threads, a.input_masks, a.W};
  if (fused) {
    f.xin = xt;
    f.wpan = Wp;
    if (cfg.cell == Cell::GRU && !cfg.reset_after) f.wpan2 = Wp + panel_floats<2>(C, H);
#if defined(RNNKERN_BF16_NATIVE)
    if (native) {  // x as the step's bf16 operand, rows padded to even length
      f.Cp = (C + 1) / 2 * 2;
      xbuf16.resize(T * N * f.Cp);
      to_bf16_rows(xt, T * N, C, C, xbuf16.data(), f.Cp);
      f.xbb = xbuf16.data();
    }
#endif
  } else if (nt > 1) {
    if (gemm_masked)
      gemm_buffers(H, C, nt, false, &proj.apack, &proj.bpack);
    else
      gemm_buffers(GH, C, nt, true, &proj.apack, &proj.bpack);  // W comes packed (Wp)
  }
  // Dropout masks: the products read gate-blocked operands (see mac_block):
  // the step's gates of blocks of all the cell's gates (GRU r.b.: z, r of z, r, h).
  const bool hb = a.recurrent_masks != nullptr;
  float* pp = parts.data();
  with_cell(cfg.cell, cfg.reset_after, a.slots != nullptr, [&](auto k) {
    using K = decltype(k);
    constexpr int GS = kStepGates<K>;
    if constexpr (GS > 1) {  // one gate: gate-blocked is plain (rows ldhm apart)
      if (hb) {
        forward_loop<K, Operand<GS, K::gates * W>, F32Operands>(f, chunk, proj, panels, panels2,
                                                                pp, nt);
        return;
      }
    }
#if defined(RNNKERN_BF16_NATIVE)
    if (native) {
      forward_loop<K, Plain, Bf16Operands>(f, chunk, proj, panels, panels2, pp, nt);
      return;
    }
#endif
    forward_loop<K, Plain, F32Operands>(f, chunk, proj, panels, panels2, pp, nt);
  });
  std::memcpy(a.hT, f.h_cur, N * H * sizeof(float));
  if (cfg.cell == Cell::LSTM) std::memcpy(a.cT, cbuf.data(), N * H * sizeof(float));
  if (cfg.return_sequences)
    from_time_major(f.yt, N, T, H, a.y, cfg.threads);
  else
    std::memcpy(a.y, ylast.data(), N * H * sizeof(float));
  scratch_trim();
}

// ================================================================ backward

namespace detail {

struct BwdCtx {
  const RnnConfig* cfg;
  const BackwardArgs* a;
  int64_t T, N, H, G, GH, S;
  float* dG;      // [T,N,GH] d(pre-activation) as seen by x W + b
  float* dGr;     // [T,N,GH] as seen by h_prev U (differs for GRU reset_after)
  float* dh;      // [N,H] gradient reaching the state h after the current step
  float* dc;      // [N,H] LSTM
  float* ycarry;  // [N,H] output gradient carried back over masked steps
  float* ddir;    // [N,H] direct (non-U) part of dh_prev
  const float* dyt;  // [T,N,H] dy by step s (return_sequences), time-major copy
  const float* rmask = nullptr;  // [G,N,H] recurrent dropout masks, or null
  // precision bf16: dG, dGr are stored rounded to bf16 (every product reads
  // them so: the step's, and the GEMMs' after the loop)
  bool bf16 = false;
  // native (bf16 on AVX512_BF16, no recurrent masks): phase A (and A2) also
  // store dG, dGr as bf16 (dGb, dGrb: [T,N,ldg], ldg = GH rounded up to even,
  // a zero past GH), which phases A2 and B multiply with bf16 pair panels of
  // U^T and the GEMMs after the loop read in place of the float copies.
  bool native = false;
  // native without input masks: nothing reads the float dG, dGr, so phase A
  // writes only their bf16 (what RNE rounding of the float value gives)
  bool b16_only = false;
  uint16_t* dGb = nullptr;
  uint16_t* dGrb = nullptr;
  int64_t ldg = 0;
};

// Phase A for units [u0, u0+nl) of row n at step s (time t).
template <class K>
RNNKERN_INLINE void backward_point(const BwdCtx& b, int64_t n, int64_t s, int64_t t, int64_t u0,
                                   int nl) {
  using SL = typename K::slots;
  const RnnConfig& cfg = *b.cfg;
  const int64_t H = b.H, GH = b.GH;
  float* dg = b.dG + (t * b.N + n) * GH;
  float* dgr = b.dGr + (t * b.N + n) * GH;
  const int64_t rb = (t * b.N + n) * b.ldg + u0;  // unit u0 of the row in dGb, dGrb
  const int64_t o = n * H + u0;
  // output gradient of this step plus what masked later steps carried back
  Vec gy = Vec::load_n(b.ycarry + o, nl);
  if (cfg.return_sequences)
    gy = gy + Vec::load_n(b.dyt + (s * b.N + n) * H + u0, nl);
  else if (s == b.T - 1)
    gy = gy + Vec::load_n(b.a->dy + o, nl);
  if (!unmasked(b.a->mask, b.T, n, t)) {
    // y_s repeated y_{s-1} (or was zeros): its gradient goes to the earlier
    // output; h was carried: dh passes straight through to h_prev
    gy.store_n(b.ycarry + o, nl);
    std::memcpy(b.ddir + o, b.dh + o, nl * sizeof(float));
    for (int64_t g = 0; g < b.G && !b.b16_only; ++g) {
      std::fill(dg + g * H + u0, dg + g * H + u0 + nl, 0.0f);
      if (dgr != dg) std::fill(dgr + g * H + u0, dgr + g * H + u0 + nl, 0.0f);
    }
    for (int64_t g = 0; g < b.G && b.native; ++g) {
      std::fill(b.dGb + rb + g * H, b.dGb + rb + g * H + nl, uint16_t(0));
      if (b.dGrb != b.dGb) std::fill(b.dGrb + rb + g * H, b.dGrb + rb + g * H + nl, uint16_t(0));
    }
    return;
  }
  Vec::zero().store_n(b.ycarry + o, nl);
  const Vec dh = Vec::load_n(b.dh + o, nl) + gy;
  const float* sl = b.a->slots + (t * b.N + n) * b.S * H;
  auto ld = [&](int q) RNNKERN_LAMBDA_INLINE { return Vec::load_n(sl + q * H + u0, nl); };
  // gate g's block of dG (put) and dGr (put_r): float, or only bf16 (b16_only)
  auto put = [&](int g, const Vec& v) RNNKERN_LAMBDA_INLINE {
    if (b.b16_only)
      store_bf16(v, b.dGb + rb + g * H, nl);
    else
      v.store_n(dg + g * H + u0, nl);
  };
  auto put_r = [&](int g, const Vec& v) RNNKERN_LAMBDA_INLINE {
    if (b.b16_only)
      store_bf16(v, b.dGrb + rb + g * H, nl);
    else
      v.store_n(dgr + g * H + u0, nl);
  };
  if constexpr (K::cell == Cell::SimpleRNN) {
    put(0, simple_backward(cfg.act, dh, ld(SL::h)));
    Vec::zero().store_n(b.ddir + o, nl);
  } else if constexpr (K::cell == Cell::LSTM) {
    const auto d = lstm_backward(cfg.act, cfg.ract, dh, Vec::load_n(b.dc + o, nl), ld(SL::i),
                                 ld(SL::f), ld(SL::g), ld(SL::o), ld(SL::c_prev), ld(SL::ac));
    put(0, d.di);
    put(1, d.df);
    put(2, d.dg);
    put(3, d.do_);
    d.dc_prev.store_n(b.dc + o, nl);
    Vec::zero().store_n(b.ddir + o, nl);
  } else if constexpr (K::gru_reset_after) {
    const Vec hp = Vec::load_n(b.a->hprev + (t * b.N + n) * H + u0, nl);
    const Vec r = ld(SL::r);
    const auto d = gru_backward_reset_after(cfg.act, cfg.ract, dh, ld(SL::z), r, ld(SL::hh),
                                            ld(SL::inner_h), hp);
    put(0, d.dz);
    put(1, d.dr);
    put(2, d.dhh);
    put_r(0, d.dz);
    put_r(1, d.dr);
    put_r(2, gru_inner_grad(d.dhh, r));
    d.dh_direct.store_n(b.ddir + o, nl);
  } else {  // GRU reset_before: dr in phase A2
    const Vec hp = Vec::load_n(b.a->hprev + (t * b.N + n) * H + u0, nl);
    const auto d = gru_backward_reset_before(cfg.act, cfg.ract, dh, ld(SL::z), ld(SL::hh), hp);
    put(0, d.dz);
    put(2, d.dhh);
    d.dh_direct.store_n(b.ddir + o, nl);
  }
  if (b.bf16 && !b.b16_only)
    for (int64_t g = 0; g < b.G; ++g) {
      if (K::gru_reset_before && g == 1) continue;  // dr: phase A2 writes it
      round_bf16_n(dg + g * H + u0, nl);
      if (dgr != dg) round_bf16_n(dgr + g * H + u0, nl);
      if (b.native) {  // with input masks: the float copies and their bf16
        store_bf16(Vec::load_n(dg + g * H + u0, nl), b.dGb + rb + g * H, nl);
        if (dgr != dg) store_bf16(Vec::load_n(dgr + g * H + u0, nl), b.dGrb + rb + g * H, nl);
      }
    }
}

// GRU reset_before, phase A2: d(r h_prev) = dhh U_h^T for a panel of units,
// then dr and the direct term r * d(r h_prev).
// A: dG's h block of step t (lda GH, K = H), or its bf16 copy (K pairs).
template <class K, class TA, class TP>
void gru_rb_backward_a2(const BwdCtx& b, const TA* A, int64_t lda, int64_t KA,
                        const TP* panels_h, float* part, int64_t t, int64_t i0, int64_t i1) {
  using PS = PanelShape<1>;
  using SL = typename K::slots;
  const RnnConfig& cfg = *b.cfg;
  const int64_t H = b.H, GH = b.GH;
  step_items<PS::NV>(i0, i1, b.N, A, lda, KA, panels_h, part,
                     [&](int64_t n, int64_t p, const float* acc) RNNKERN_LAMBDA_INLINE {
    if (!unmasked(b.a->mask, b.T, n, t)) return;
    const float* sl = b.a->slots + (t * b.N + n) * b.S * H;
    const float* hpr = b.a->hprev + (t * b.N + n) * H;
    float* dg = b.dG + (t * b.N + n) * GH;
    const float* mh = b.rmask ? b.rmask + (2 * b.N + n) * H : nullptr;  // m_h of row n
    for_subtiles<PS::S>(p, H, [&](int sb, int64_t u0, int nl) RNNKERN_LAMBDA_INLINE {
      const Vec drh = Vec::load(acc + sb * W);  // d(r * h_prev [⊙ m_h])
      Vec hp = Vec::load_n(hpr + u0, nl);
      Vec m = Vec::zero();
      if (mh) {
        m = Vec::load_n(mh + u0, nl);
        hp = hp * m;
      }
      const Vec r = Vec::load_n(sl + SL::r * H + u0, nl);
      const auto d = gru_backward_reset_gate(cfg.ract, drh, r, hp);
      uint16_t* drb = b.dGb + (t * b.N + n) * b.ldg + H + u0;  // native: dr's bf16
      if (b.b16_only) {
        store_bf16(d.dr, drb, nl);
      } else {
        d.dr.store_n(dg + H + u0, nl);
        if (b.bf16) round_bf16_n(dg + H + u0, nl);
        if (b.native) store_bf16(Vec::load_n(dg + H + u0, nl), drb, nl);
      }
      (Vec::load_n(b.ddir + n * H + u0, nl) + (mh ? d.dh_rh * m : d.dh_rh))
          .store_n(b.ddir + n * H + u0, nl);
    });
  });
}

// Phase B: dh[n, panel units] = ddir + dGr[n, t, 0:K] U^T (K = GH, or 2H for GRU r.b.).
// A: dGr's rows of step t (lda GH), or their bf16 copy (K pairs).
template <class TA, class TP>
inline void backward_product(const BwdCtx& b, const TA* A, int64_t lda, const TP* panelsT,
                             float* part, int64_t K, int64_t i0, int64_t i1) {
  using PS = PanelShape<1>;
  const int64_t H = b.H;
  step_items<PS::NV>(i0, i1, b.N, A, lda, K, panelsT, part,
                     [&](int64_t n, int64_t p, const float* acc) RNNKERN_LAMBDA_INLINE {
    for_subtiles<PS::S>(p, H, [&](int sb, int64_t u0, int nl) RNNKERN_LAMBDA_INLINE {
      (Vec::load_n(b.ddir + n * H + u0, nl) + Vec::load(acc + sb * W))
          .store_n(b.dh + n * H + u0, nl);
    });
  });
}

// Phase B with recurrent dropout masks: dh[n, units] = ddir + sum over the
// gates g of m_g ⊙ (dGr_g U_g^T), so each gate's H rows of the U^T panels are
// a product of their own (part + g * part_floats(N)), combined in a fixed order.
inline void backward_product_masked(const BwdCtx& b, const float* panelsT, float* part,
                                    int64_t K, int64_t t, int64_t i0, int64_t i1) {
  using PS = PanelShape<1>;
  constexpr int NV = PS::NV;
  const int64_t H = b.H, N = b.N;
  const int64_t nseg = K / H, pfl = part_floats(N);
  const int64_t nrb = (N + kRowBlock - 1) / kRowBlock;
  const float* A = b.dGr + t * N * b.GH;
  int64_t it = i0;
  while (it < i1) {
    const int64_t p = it / nrb, rb0 = it % nrb;
    const int64_t rb1 = std::min(nrb, rb0 + (i1 - it));
    for (int64_t g = 0; g < nseg; ++g)
      product_group<NV>(A + g * H, b.GH, N, H, panelsT + (p * K + g * H) * NV * W, rb0, rb1,
                        part + g * pfl);
    for (int64_t rb = rb0; rb < rb1; ++rb) {
      int64_t n0, n1;
      split_range(N, (int)nrb, (int)rb, n0, n1);
      for (int64_t n = n0; n < n1; ++n) {
        const int64_t off = ((rb - rb0) * kRowBlock + (n - n0)) * NV * W;
        for_subtiles<PS::S>(p, H, [&](int sb, int64_t u0, int nl) RNNKERN_LAMBDA_INLINE {
          Vec d = Vec::load_n(b.ddir + n * H + u0, nl);
          for (int64_t g = 0; g < nseg; ++g)
            d = d + Vec::load_n(b.rmask + (g * N + n) * H + u0, nl) *
                        Vec::load(part + g * pfl + off + sb * W);
          d.store_n(b.dh + n * H + u0, nl);
        });
      }
    }
    it += rb1 - rb0;
  }
}

// KU: rows of the U^T panels (G*H, or 2H for GRU r.b.).
template <class K>
void backward_loop(BwdCtx& b, const float* panelsT, int64_t KU, const float* panels_h,
                   float* parts, int nt) {
  const int64_t nrb = (b.N + kRowBlock - 1) / kRowBlock;
  const int64_t ntile = (b.H + W - 1) / W;
  const int64_t itemsA = b.N * ntile;
  const int64_t itemsB = nrb * ((b.H + 4 * W - 1) / (4 * W));
  par::parallel(nt, [&](int, int) {
    Region reg;
    float* part = parts + reg.tid * part_floats(b.N) * (b.rmask ? b.G : 1);
    for (int64_t s = b.T - 1; s >= 0; --s) {
      const int64_t t = b.cfg->go_backwards ? b.T - 1 - s : s;
      int64_t lo, hi;
      split_range(itemsA, reg.nth, reg.tid, lo, hi);
      for (int64_t it = lo; it < hi; ++it) {
        const int64_t n = it / ntile, u0 = (it % ntile) * W;
        backward_point<K>(b, n, s, t, u0, (int)std::min<int64_t>(W, b.H - u0));
      }
      reg.barrier();
      const float* dgt = b.dG + t * b.N * b.GH;  // step t's rows (dGr's: dgrt)
      const float* dgrt = b.dGr + t * b.N * b.GH;
      if constexpr (K::gru_reset_before) {
        split_range(itemsB, reg.nth, reg.tid, lo, hi);
#if defined(RNNKERN_BF16_NATIVE)
        if (b.native) {  // the h block's pairs: an odd H's last reads the zero past GH
          gru_rb_backward_a2<K>(b, b.dGb + t * b.N * b.ldg + 2 * b.H, b.ldg, (b.H + 1) / 2,
                                reinterpret_cast<const uint32_t*>(panels_h), part, t, lo, hi);
        } else
#endif
          gru_rb_backward_a2<K>(b, dgt + 2 * b.H, b.GH, b.H, panels_h, part, t, lo, hi);
        reg.barrier();
      }
      split_range(itemsB, reg.nth, reg.tid, lo, hi);
      if (b.rmask) {
        backward_product_masked(b, panelsT, part, KU, t, lo, hi);
      } else {
#if defined(RNNKERN_BF16_NATIVE)
        if (b.native) {
          backward_product(b, b.dGrb + t * b.N * b.ldg, b.ldg,
                           reinterpret_cast<const uint32_t*>(panelsT), part, (KU + 1) / 2, lo,
                           hi);
        } else
#endif
          backward_product(b, dgrt, b.GH, panelsT, part, KU, lo, hi);
      }
      reg.barrier();
    }
  });
}

}  // namespace detail

inline void rnn_backward(const RnnConfig& cfg, const BackwardArgs& a) {
  using namespace detail;
  const int64_t T = cfg.T, N = cfg.N, C = cfg.C, H = cfg.H;
  const int G = num_gates(cfg.cell);
  const int64_t GH = G * H, NT = N * T;
  const int S = num_slots(cfg.cell, cfg.reset_after);
  const bool gru_ra = cfg.cell == Cell::GRU && cfg.reset_after;
  const bool gru_rb = cfg.cell == Cell::GRU && !cfg.reset_after;

  // dG / dGr: every row is written by the reverse loop (zeros where masked).
  float* dG = scratch(kScratchDG, NT * GH);
  float* dGr = gru_ra ? scratch(kScratchDGr, NT * GH) : dG;
  std::vector<float> dc, ycarry(N * H, 0.0f), ddir(N * H, 0.0f);
  std::vector<float> dh(a.dhT, a.dhT + N * H);
  if (cfg.cell == Cell::LSTM) dc.assign(a.dcT, a.dcT + N * H);
  float* dyt = nullptr;
  if (cfg.return_sequences) {
    dyt = scratch(kScratchYt, NT * H);
    to_time_major(a.dy, N, T, H, dyt, cfg.threads);
  }
  BwdCtx b{&cfg, &a, T, N, H, G, GH, S, dG, dGr, dh.data(), dc.data(), ycarry.data(),
           ddir.data(), dyt, a.recurrent_masks};
  const bool bf16 = cfg.precision == Precision::BF16;  // W, U come rounded (backend_cpu.cc)
  b.bf16 = bf16;

  // U^T panels: output units of dh_prev x gate columns. GRU r.b. multiplies
  // only the z, r columns in phase B; its h columns go through phase A2.
  // native bf16: pair panels (given packed ones are then pairs too: backend_cpu.cc
  // drops them with recurrent masks, whose per-gate products read fp32 panels)
  const bool native = native_bf16(cfg) && !a.recurrent_masks;
  const int64_t K = gru_rb ? 2 * H : GH;
  const float* panelsT =
      a.packed ? a.packed : packed_scratch(cfg, a.U, kPackBackward, native);
  const float* panels_h = nullptr;
  if (gru_rb)
    panels_h = a.packed2 ? a.packed2 : packed_scratch(cfg, a.U, kPackBackward2, native);
  const int64_t nrb = (N + kRowBlock - 1) / kRowBlock;
  int nt = pick_threads(cfg.threads, nrb * ((H + 4 * W - 1) / (4 * W)), 2.0 * N * H * GH,
                        kMinStepFlopsBackward);
  std::vector<float> parts(nt * part_floats(N) * (a.recurrent_masks ? G : 1));
  if (native) {
    b.native = true;
    b.b16_only = !a.input_masks;
    b.ldg = (GH + 1) / 2 * 2;
    const int64_t words = NT * b.ldg / 2;  // floats of scratch per copy
    b.dGb = reinterpret_cast<uint16_t*>(scratch(kScratchDGb, words));
    b.dGrb = gru_ra ? reinterpret_cast<uint16_t*>(scratch(kScratchDGrb, words)) : b.dGb;
    if (b.ldg != GH)  // the zero past GH that an odd K's last pair reads
      for (int64_t r = 0; r < NT; ++r) b.dGb[r * b.ldg + GH] = b.dGrb[r * b.ldg + GH] = 0;
  }
  // the GEMMs' bf16 operands (native, no input masks): dG, dGr as phase A stored them
  const uint16_t* dG16 = native ? b.dGb : nullptr;
  const uint16_t* dGr16 = native ? b.dGrb : nullptr;
  if (N > 0) {
    with_cell(cfg.cell, cfg.reset_after, [&](auto k) {
      backward_loop<decltype(k)>(b, panelsT, K, panels_h, parts.data(), nt);
    });
  }
  std::memcpy(a.dh0, dh.data(), N * H * sizeof(float));
  if (cfg.cell == Cell::LSTM) std::memcpy(a.dc0, dc.data(), N * H * sizeof(float));

  // The big GEMMs over all timesteps. db comes out of the dW GEMM: x gets a
  // column of ones (so one pass over dG serves both, in a fixed k order).
  // Dropout masks make each gate's block a GEMM of its own, the masks applied
  // where the operands are packed (dW_g = (X ⊙ d_g)^T dG_g, dU_g = (Hprev ⊙
  // m_g)^T dGr_g) or to the product (dX = sum_g d_g ⊙ (dG_g W_g^T)): the
  // [N, .] masks repeat down the time-major [T*N, .] rows (RowScale).
  const int th = cfg.threads;
  const int64_t C1 = a.db ? C + 1 : C;
  const float* im = a.input_masks;
  const float* rm = a.recurrent_masks;
  float* xt = scratch(kScratchXt, NT * C1);
  float* dxt = scratch(kScratchDxt, NT * C);
  float* dW1 = a.db ? scratch(kScratchDW, C1 * GH) : a.dW;
  transpose_nt(a.x, N, T, C, xt, th, C1, 1.0f);
  // bf16: the GEMMs' other operands rounded as well (x here, h_prev and r h_prev
  // below; the ones column stays 1)
  if (bf16 && !(native && !im)) round_bf16_n(xt, NT * C1);  // native: as the GEMM packs it
  const float* hprev = a.hprev;
  if (bf16 && !native) {  // native: rounded as the bf16 GEMM packs it
    float* hb = scratch(kScratchHb, NT * H);
    round_bf16_n(a.hprev, hb, NT * H);
    hprev = hb;
  }
  if (!im) {
    // dX = dG W^T; [dW; db] = [X 1]^T dG (native bf16: vdpbf16ps products)
    const int64_t ldd = dG16 ? b.ldg : GH;
    gemm(NT, C, GH, dG, ldd, 1, a.W, 1, GH, dxt, C, false, th, nullptr, nullptr, -1, RowScale(),
         RowScale(), native, dG16);
    gemm(C1, GH, NT, xt, 1, C1, dG, ldd, 1, dW1, GH, false, th, nullptr, nullptr, -1,
         RowScale(), RowScale(), native, nullptr, dG16);
  } else {
    // the input masks with a column of ones for the bias row: [G, N, C1]
    const float* im1 = im;
    if (C1 != C) {
      float* ext = scratch(kScratchMask, G * N * C1);
      for (int64_t r = 0; r < G * N; ++r) {
        std::memcpy(ext + r * C1, im + r * C, C * sizeof(float));
        ext[r * C1 + C] = 1.0f;
      }
      im1 = ext;
    }
    for (int64_t g = 0; g < G; ++g) {
      gemm(NT, C, H, dG + g * H, GH, 1, a.W + g * H, 1, GH, dxt, C, g > 0, th, nullptr,
           nullptr, -1, RowScale(), RowScale{im + g * N * C, N, C});
      gemm(C1, H, NT, xt, 1, C1, dG + g * H, GH, 1, dW1 + g * H, GH, false, th, nullptr,
           nullptr, -1, RowScale{im1 + g * N * C1, N, C1, true});
    }
  }
  from_time_major(dxt, N, T, C, a.dx, th);
  if (a.db) {
    std::memcpy(a.dW, dW1, C * GH * sizeof(float));
    std::memcpy(a.db, dW1 + C * GH, GH * sizeof(float));
  }
  // dU's gate blocks [g0, g1), from dGr (A = Hprev [⊙ m_g]); ones_row: see below
  auto dU_blocks = [&](int64_t g0, int64_t g1, float* out, int64_t ones_row) {
    const int64_t M = ones_row >= 0 ? H + 1 : H;
    if (!rm) {
      gemm(M, (g1 - g0) * H, NT, hprev, 1, H, dGr + g0 * H, dGr16 ? b.ldg : GH, 1,
           out + g0 * H, GH, false, th, nullptr, nullptr, ones_row, RowScale(), RowScale(),
           native, nullptr, dGr16 ? dGr16 + g0 * H : nullptr);
      return;
    }
    for (int64_t g = g0; g < g1; ++g)
      gemm(M, H, NT, hprev, 1, H, dGr + g * H, GH, 1, out + g * H, GH, false, th, nullptr,
           nullptr, ones_row, RowScale{rm + g * N * H, N, H, true});
  };
  if (gru_rb) {
    float* RH = scratch(kScratchRH, NT * H);
    constexpr int kR = Slots<Cell::GRU, false>::r;
    const int nt = NT * H * sizeof(float) > (1 << 20) ? std::max(1, th) : 1;
    par::parallel_for(nt, NT, [&](int64_t r) {
      // what U_h multiplied: r * h_prev (⊙ m_h with recurrent dropout)
      const float* mh = rm ? rm + (2 * N + r % N) * H : nullptr;
      for (int64_t u = 0; u < H; ++u)
        RH[r * H + u] = gru_reset_state(a.slots[r * S * H + kR * H + u],
                                        mh ? a.hprev[r * H + u] * mh[u] : a.hprev[r * H + u]);
      if (bf16) round_bf16_n(RH + r * H, H);
    });
    dU_blocks(0, 2, a.dU, -1);
    gemm(H, H, NT, RH, 1, H, dG + 2 * H, dG16 ? b.ldg : GH, 1, a.dU + 2 * H, GH, false, th,
         nullptr, nullptr, -1, RowScale(), RowScale(), native, nullptr,
         dG16 ? dG16 + 2 * H : nullptr);
  } else if (a.db && gru_ra) {
    // [dU; db_rec] = [Hprev 1]^T dGr: the recurrent bias of GRU reset_after
    // from the same pass over dGr (row H of A reads as ones, see pack_a_block)
    float* dU1 = scratch(kScratchDU, (H + 1) * GH);
    dU_blocks(0, G, dU1, H);
    std::memcpy(a.dU, dU1, H * GH * sizeof(float));
    std::memcpy(a.db + GH, dU1 + H * GH, GH * sizeof(float));
  } else {
    dU_blocks(0, G, a.dU, -1);  // dU = Hprev^T dGr
  }
  scratch_trim();
}

// y = act(x) elementwise with this ISA's vector math (for the accuracy tests).
inline void activate_array(Act act, const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; i += Vec::W) {
    const int nl = (int)std::min<int64_t>(Vec::W, n - i);
    activate(act, Vec::load_n(x + i, nl)).store_n(y + i, nl);
  }
}
