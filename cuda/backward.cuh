// rnnkern — the GPU BPTT of one layer, in order: the reverse time loop, dy read in
// the caller's layout (persistent where its plan fits, else a pointwise kernel and
// the dh_prev GEMM a step, that GEMM on the tensor cores where the per-step family's
// product is: R3), then the weight gradients (dW, dU: split-K GEMMs), dX and the
// bias gradients, each deterministic. Part of driver.cuh.
#pragma once

#include "launch.cuh"

namespace rnnkern {
namespace RK_GPU_NS {

void run_backward(const Workspace& base, const GradArgs& in) {
  const GradArgs& out = in;
  const auto& ws = static_cast<const GpuWorkspaceImpl&>(base);
  const RnnConfig& cfg = ws.cfg;
  const int64_t T = cfg.T, N = cfg.N, C = cfg.C, H = cfg.H, G = num_gates(cfg.cell);
  const int64_t GH = G * H, NH = N * H, TN = T * N;
  const bool rb = cfg.cell == Cell::GRU && !cfg.reset_after;
  const bool ra = cfg.cell == Cell::GRU && cfg.reset_after;
  const int64_t ss = ws.slot_stride;

  const bool dev = in.on_device;  // the caller's arrays are device memory: no host copies
  if (ws.torch_layout && ws.has_bias && out.db && !out.db_hh)
    throw std::invalid_argument("the forward took PyTorch's layout: db_hh (d bias_hh) is "
                                "required with db");
  Buf<float> dy(dev ? 0 : (cfg.return_sequences ? TN * H : NH));
  dy.upload(in.dy);
  // read where it is, in the caller's [N, T, H] layout (no time-major copy)
  const float* dy_dev = dev ? in.dy : dy.get();
  Buf<float> dgx(TN * GH), dgr(ra ? TN * GH : 0), dh[2] = {Buf<float>(NH), Buf<float>(NH)};
  Buf<float> dc[2], drh(rb ? NH : 0);
  dh[0].upload(in.dhT, dev);
  if (cfg.cell == Cell::LSTM) {
    dc[0] = Buf<float>(NH);
    dc[1] = Buf<float>(NH);
    dc[0].upload(in.dcT, dev);
  }
  float* dgr_base = ra ? dgr.get() : dgx.get();
  const int ng_rec = rb ? 2 : (int)G;   // gates whose U^T product reaches h_prev directly

  SeqBackArgs q;
  q.base.N = N;
  q.base.H = H;
  q.base.GH = GH;
  q.base.act = cfg.act;
  q.base.ract = cfg.ract;
  q.base.slot_stride = ss;
  q.base.rmask = ws.rmask.get();
  q.base.bf16 = cfg.precision == Precision::BF16;   // rnnkern.reference's bf16 products
  q.T = T;
  q.go_backwards = cfg.go_backwards;
  q.return_sequences = cfg.return_sequences;
  q.lstm = cfg.cell == Cell::LSTM;
  q.products = recurrent_products(cfg.precision, false);   // the masks scale the sums
  q.dyseq = cfg.return_sequences ? dy_dev : nullptr;
  q.dylast = dy_dev;
  q.seen = ws.seen.get();
  q.mask = ws.mask.get();
  q.slots = ws.slots.get();
  q.states = ws.states.get();
  q.cstates = ws.cstates.get();
  q.dgx = dgx.get();
  q.dgr = dgr_base;
  q.dh[0] = dh[0].get();
  q.dh[1] = dh[1].get();
  q.dc[0] = dc[0].get();
  q.dc[1] = dc[1].get();
  q.drh = drh.get();
  q.u = ws.Ud;

  // the carried gradient ends in dh[T % 2] (the loop flips once a step)
  const int cur = (int)(T % 2);
  // the per-step family's products on the tensor cores (R3) or the SIMT GEMM
  q.step_mma = steps_products(N, cfg.precision, false) > 0;
  with_cell(cfg.cell, cfg.reset_after, [&](auto k) {
    constexpr Mode M = kMode<decltype(k)>;
    if (seq_backward_as<M>(q, cfg.precision)) return;
    Buf<float> parts = steps_backward_parts<M>(q);   // (outside a captured loop)
    time_loop(LoopSite::Backward, T, [&] { steps_backward<M>(q, cfg.precision, parts.get()); });
  });
  dh[cur].download(out.dh0, dev);
  if (cfg.cell == Cell::LSTM) dc[cur].download(out.dc0, dev);

  // weight gradients over all steps at once
  Buf<float> dW(C * GH), dU(H * GH);
  // dW = x^T dGx (x read time-major from its [N, T, C] layout; per gate with input masks)
  GemmArgs w = in_precision(batch_major(gemm_args(C, GH, TN, ws.x.get(), C, true, dgx.get(), GH,
                                                  false, dW.get(), GH), true, N, T,
                                        cfg.go_backwards),
                            cfg.precision);
  gemm_gates_amask(w, (int)G, H, ws.imask.get(), N * C, N, C);
  // dU = h_prev^T dGr (states 0..T-1 are [T*N, H]), per gate with recurrent masks
  GemmArgs u = in_precision(gemm_args(H, ng_rec * H, TN, ws.states.get(), H, true, dgr_base,
                                      GH, false, dU.get(), GH),
                            cfg.precision);
  gemm_gates_amask(u, ng_rec, H, ws.rmask.get(), NH, N, H);
  if (rb) {                             // dU_h = rh^T dah
    GemmArgs q = gate_cols(u, 2, H, true, true);
    q.N = H;
    q.a = ws.slots.get() + 3 * ss;
    q.amask = nullptr;
    gemm_hoisted(q);
  }
  if (ws.torch_layout) {   // the forward took PyTorch's layout: its gradients are in it
    RK_LAUNCH(Independent, linear_blocks(C * GH), 1, kLinear, 1, 0, torch_from_keras, dW.get(),
              out.dW, C, G, H, ra);
    RK_LAUNCH(Independent, linear_blocks(H * GH), 1, kLinear, 1, 0, torch_from_keras, dU.get(),
              out.dU, H, G, H, ra);
  } else {
    dW.download(out.dW, dev);
    dU.download(out.dU, dev);
  }

  // dX = dGx W^T (⊙ input masks per gate), written in the caller's [N, T, C] layout
  Buf<float> dx(dev ? 0 : N * T * C);
  GemmArgs xg = in_precision(batch_major(gemm_args(TN, C, GH, dgx.get(), GH, false, ws.Wd, GH,
                                                   true, dev ? out.dx : dx.get(), C),
                                         false, N, T, cfg.go_backwards),
                             cfg.precision);
  gemm_gates_cmask(xg, (int)G, H, ws.imask.get(), N * C, N, C, true);
  dx.download(out.dx);

  if (ws.has_bias && out.db) {
    Buf<float> db(ra ? 2 * GH : GH);
    bias_grad(dgx.get(), TN, GH, db.get());
    if (ra) bias_grad(dgr.get(), TN, GH, db.get() + GH);
    if (ws.torch_layout)
      RK_LAUNCH(Independent, linear_blocks(GH), 1, kLinear, 1, 0, bias_grad_to_torch, db.get(),
                out.db, out.db_hh, G, H, ra);
    else
      db.download(out.db, dev);
  }
}

}  // namespace RK_GPU_NS
}  // namespace rnnkern
