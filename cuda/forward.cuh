// rnnkern — the GPU forward of one layer, in order: inputs to time-major, the
// input projection (one GEMM, per gate with input dropout), the time loop (the
// persistent family where its plan fits, else a launch a step), outputs back.
// Part of driver.cuh.
#pragma once

#include "launch.cuh"

namespace rnnkern {
namespace RK_GPU_NS {

std::unique_ptr<Workspace> run_forward(const RnnConfig& cfg, const LayerArgs& in) {
  const LayerArgs& out = in;
  const int64_t T = cfg.T, N = cfg.N, C = cfg.C, H = cfg.H, G = num_gates(cfg.cell);
  const int64_t GH = G * H, NH = N * H, TN = T * N;
  const bool rb = cfg.cell == Cell::GRU && !cfg.reset_after;
  const bool ra = cfg.cell == Cell::GRU && cfg.reset_after;
  const int S = gpu_slots(cfg.cell);
  auto ws = std::make_unique<GpuWorkspaceImpl>();
  ws->cfg = cfg;
  ws->has_bias = in.b != nullptr;

  const bool dev = in.on_device;  // the caller's arrays are device memory: no host copies
  ws->stream = in.stream;
  // weights already on the device are read in place by an inference, and by a
  // training forward and its backward where the caller keeps them unchanged
  // until then (weights_in_place); otherwise a training forward keeps its own
  // copy for the backward (the caller may assign new weights in between), and so
  // does precision bf16, which rounds its copy
  // (weights in PyTorch's layout are converted into copies: never in place)
  const bool bf16 = cfg.precision == Precision::BF16;
  const bool torch = dev && in.torch_layout;
  const bool in_place = dev && !bf16 && !torch && (!cfg.training || in.weights_in_place);
  ws->torch_layout = torch;
  // x in the caller's layout, read time-major by the GEMMs (no transposed copy):
  // a host x uploaded; a device x read in place by an inference, copied for a
  // training call's backward (the caller may change it in between)
  Buf<float> b(in.b && !in_place ? (ra ? 2 * GH : GH) : 0), P(TN * GH);
  ws->x = Buf<float>(dev && !cfg.training ? 0 : N * T * C);
  ws->x.upload(in.x, dev);
  const float* xd = dev && !cfg.training ? in.x : ws->x.get();
  ws->W = Buf<float>(in_place ? 0 : C * GH);
  ws->U = Buf<float>(in_place ? 0 : H * GH);
  if (torch) {
    RK_LAUNCH(Independent, linear_blocks(C * GH), 1, kLinear, 1, 0, keras_from_torch, in.W,
              ws->W.get(), C, G, H, ra);
    RK_LAUNCH(Independent, linear_blocks(H * GH), 1, kLinear, 1, 0, keras_from_torch, in.U,
              ws->U.get(), H, G, H, ra);
    if (in.b)
      RK_LAUNCH(Independent, linear_blocks(b.size()), 1, kLinear, 1, 0, bias_from_torch, in.b,
                in.b_hh, b.get(), G, H, ra);
  } else {
    b.upload(in.b, dev);
    ws->W.upload(in.W, dev);
    ws->U.upload(in.U, dev);
  }
  const float* bias = in_place ? in.b : b.get();
  // bf16: the weights rounded once (the backward reads the same); the products'
  // other operands are rounded as they are read (GemmArgs, StepArgs .bf16)
  if (bf16) {
    RK_LAUNCH(Independent, linear_blocks(C * GH), 1, kLinear, 1, 0, round_bf16, ws->W.get(),
              C * GH);
    RK_LAUNCH(Independent, linear_blocks(H * GH), 1, kLinear, 1, 0, round_bf16, ws->U.get(),
              H * GH);
  }
  const float* Wd = in_place ? in.W : ws->W.get();
  const float* Ud = in_place ? in.U : ws->U.get();
  ws->Wd = Wd;
  ws->Ud = Ud;
  if (in.input_masks) {
    ws->imask = Buf<float>(G * N * C);
    ws->imask.upload(in.input_masks, dev);
  }
  if (in.recurrent_masks) {
    ws->rmask = Buf<float>(G * NH);
    ws->rmask.upload(in.recurrent_masks, dev);
  }
  if (in.mask) {
    ws->mask = Buf<uint8_t>(N * T);
    ws->mask.upload(in.mask, dev);
    ws->seen = Buf<uint8_t>(TN);
    RK_LAUNCH(Independent, linear_blocks(N), 1, kLinear, 1, 0, seen_flags, ws->mask.get(),
              ws->seen.get(), N, T, cfg.go_backwards);
  }

  // the input projection for every step at once
  GemmArgs pg = in_precision(batch_major(gemm_args(TN, GH, C, xd, C, false, Wd, GH, false,
                                                  P.get(), GH), true, N, T, cfg.go_backwards),
                             cfg.precision);
  pg.bias = bias;
  gemm_gates_amask(pg, (int)G, H, ws->imask.get(), N * C, N, C);

  // states: every step's kept in training, a ring of two otherwise
  const int64_t nstates = cfg.training ? T + 1 : 2;
  ws->states = Buf<float>(nstates * NH);
  state_in(ws->states.get(), in.h0, NH, dev);
  if (cfg.cell == Cell::LSTM) {
    ws->cstates = Buf<float>(nstates * NH);
    state_in(ws->cstates.get(), in.c0, NH, dev);
  }
  const bool need_slots = cfg.training || rb;
  ws->slot_stride = cfg.training ? TN * H : NH;
  if (need_slots) ws->slots = Buf<float>(S * ws->slot_stride);
  // the outputs written by the steps in the caller's layout ([N, T, H] or [N, H]),
  // in place where the caller's arrays are on the device
  Buf<float> yseq(cfg.return_sequences && !dev ? TN * H : 0),
      ylast(cfg.return_sequences || dev ? 0 : NH);
  float* yout = cfg.return_sequences ? (dev ? out.y : yseq.get()) : (dev ? out.y : ylast.get());

  SeqArgs q;
  q.base.N = N;
  q.base.H = H;
  q.base.GH = GH;
  q.base.act = cfg.act;
  q.base.ract = cfg.ract;
  q.base.rmask = ws->rmask.get();
  q.base.bf16 = bf16;
  q.base.u = Ud;
  q.base.brec = ra && bias ? bias + GH : nullptr;
  q.base.slot_stride = ws->slot_stride;
  q.T = T;
  q.go_backwards = cfg.go_backwards;
  q.training = cfg.training;
  q.return_sequences = cfg.return_sequences;
  q.p = P.get();
  q.states = ws->states.get();
  q.cstates = ws->cstates.get();
  q.mask = ws->mask.get();
  q.seen = ws->seen.get();
  q.yseq = cfg.return_sequences ? yout : nullptr;
  q.ylast = cfg.return_sequences ? nullptr : yout;
  q.slots = need_slots ? ws->slots.get() : nullptr;
  q.lstm = cfg.cell == Cell::LSTM;
  q.products = recurrent_products(cfg.precision, in.recurrent_masks != nullptr);
  // the per-step family's product, where it runs: FFMA or the tensor cores (R3)
  q.base.tc = steps_products(N, cfg.precision, in.recurrent_masks != nullptr);
  with_cell(cfg.cell, cfg.reset_after, [&](auto k) {
    constexpr Mode M = kMode<decltype(k)>;
    Buf<uint32_t> u2;   // R3 with precision bf16's one product: U as bf16 pairs
    if (seq_forward_as<M>(q, u2)) return;
    pack_u_pairs(q.base, u2);   // (kept where the tuning packed them)
    time_loop(LoopSite::Forward, T, [&] { steps_forward<M>(q); });
  });
  if (!dev) (cfg.return_sequences ? yseq : ylast).download(out.y);
  const int64_t last = (cfg.training ? T : T % 2) * NH;
  state_out(out.hT, ws->states.get() + last, NH, dev);
  if (cfg.cell == Cell::LSTM) state_out(out.cT, ws->cstates.get() + last, NH, dev);
  if (!cfg.training) return nullptr;
  return ws;
}

}  // namespace RK_GPU_NS
}  // namespace rnnkern
