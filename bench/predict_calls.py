"""What the cost model predicts for each benchmark row of the last device run, per
precision, against cuDNN (bench/GPU.md, "Predicted against cuDNN"): the 2026-12-04
H200 run's measured call (run5/gpu_bench.json: FFMA recurrence, SIMT GEMMs, fp32)
less what the changes since are modelled to save:

  loops   T steps of the forward (and in training the backward) a step faster by
          bench/tc_model.py's product: FFMA -> the tensor cores in the precision's
          products (a batch of 8 or more; N = 1 keeps FFMA); t0 unchanged
  GEMMs   the hoisted GEMMs (projection; in training dX, dW, dU too) at the SIMT
          kernel's best rate in the run's profile (14 TFLOP/s, DB1024 LSTM training;
          S2's GEMMs ran at 4.4 to 11, so the saving is a lower bound there) -> the
          design's assumed tensor-core rates (GPU-DESIGN.md 3.9: 40 / 150 / 300
          TFLOP/s for fp32 as 3xTF32 / tf32 / bf16)

Not modelled (so the predictions lean slow): the on-chip exchange of one block or
cluster, the GEMM tiles, bf16's resident pairs, R2's hand-off (forced only). fp32 is
compared with cuDNN with TF32 off, tf32 and bf16 with cuDNN's TF32 default, as
bench/gpu_bench.py compares them.

    python3 bench/predict_calls.py [--run bench/results/gpu-h200-2026-12-04/run5]
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tc_model  # noqa: E402

SIMT_TFLOPS = 14.0                 # the run's profile: DB1024 LSTM training's GEMMs
MMA_TFLOPS = {"fp32": 40.0, "tf32": 150.0, "bf16": 300.0}


def gemm_gflop(T, N, C, H, G, training):
    proj = 2.0 * T * N * C * G * H
    if not training:
        return proj / 1e9
    return (3 * proj + 2.0 * T * N * H * G * H) / 1e9   # + dX, dW; dU


def step_saving_us(N, H, G, precision):
    """(forward, backward) microseconds a step saved against the run's FFMA loops."""
    blocks, ut = tc_model.plan(N, H, G)
    ffma = N * ut * G * H / tc_model.R_FFMA
    if N < 8:
        return 0.0, 0.0
    tc, kw = tc_model.PRODUCTS[precision]
    fwd = tc_model.fwd_mma_us(N, H, G, ut, precision)
    bwd = tc_model.mma_us(-(-N // 16) * -(-ut // 8), G * H, tc, kw)
    return max(0.0, ffma - fwd), max(0.0, ffma - bwd)


def predict(row, precision):
    T, N, C, H = row["T"], row["N"], row["C"], row["H"]
    G = tc_model.GATES[row["cell"]]
    training = row["mode"] == "training"
    fwd, bwd = step_saving_us(N, H, G, precision)
    loops_ms = T * (fwd + (bwd if training else 0.0)) / 1e3
    gf = gemm_gflop(T, N, C, H, G, training)
    gemm_ms = gf / SIMT_TFLOPS - gf / MMA_TFLOPS[precision]   # GFLOP / (TFLOP/s) = ms
    return max(row["rnnkern_ms"] - loops_ms - gemm_ms, 1e-3)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--run", default=os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                  "results", "gpu-h200-2026-12-04", "run5"))
    args = ap.parse_args()
    with open(os.path.join(args.run, "gpu_bench.json")) as f:
        rows = [r for r in json.load(f)["rows"] if r["variant"] == "plain"]
    print("| shape | cell | mode | measured fp32: rnnkern ms, x cuDNN fp32 | predicted fp32 "
          "| predicted tf32 (x cuDNN tf32) | predicted bf16 (x cuDNN tf32) |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        cells = []
        for p, ref in (("fp32", r["cudnn_fp32_ms"]), ("tf32", r["cudnn_tf32_ms"]),
                       ("bf16", r["cudnn_tf32_ms"])):
            ms = predict(r, p)
            cells.append(f"{ms:.2f} ms, {ref / ms:.2f}x")
        print(f"| {r['shape']} | {r['cell']} | {r['mode']} | {r['rnnkern_ms']:.2f} ms, "
              f"{r['cudnn_fp32_ms'] / r['rnnkern_ms']:.2f}x | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
