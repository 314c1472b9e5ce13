"""Small cases of every GPU kernel family for compute-sanitizer (bench/gpu.sh):
each cell and GRU form, with a mask, per-gate dropout masks and go_backwards,
forward (training) and BPTT, on the per-step family (its FFMA step and R3's
tensor-core step and per-step GEMMs) and on the persistent family
in its automatic partition (one block: h and dG kept in its shared memory) and
forced ones: three blocks with k chunks (the staging loop, the grid's barrier), and
three blocks as one thread-block cluster with h and dG one chunk (written into each
other's shared memory through distributed shared memory), FFMA and tensor cores, and
one block in bf16 (U kept as bf16 pairs); the tensor-core GEMM with each C tile
forced, fp32 and bf16; and the optimizers' elementwise update on the device
(rnnkern._device_math).
NumPy arrays only (no PyTorch), T = 4.

    compute-sanitizer --tool racecheck python3 bench/gpu_sanitize.py [--backend cuda]
"""
import argparse
import sys

import numpy as np


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--backend", default="cuda")
    args = ap.parse_args()
    from rnnkern import _core, ops

    be = args.backend
    n, t, c, h = 3, 4, 5, 40
    failures = 0
    rng = np.random.default_rng(3)   # an LSTM's weights, for the GEMM tiles below
    W4 = (rng.standard_normal((c, 4 * h)) * 0.3).astype(np.float32)
    U4 = (rng.standard_normal((h, 4 * h)) * 0.1).astype(np.float32)
    b4 = (rng.standard_normal(4 * h) * 0.1).astype(np.float32)
    for cell, ra in [("simple_rnn", True), ("lstm", True), ("gru", True), ("gru", False)]:
        g = {"simple_rnn": 1, "lstm": 4, "gru": 3}[cell]
        rng = np.random.default_rng(1)
        x = rng.standard_normal((n, t, c)).astype(np.float32)
        W = (rng.standard_normal((c, g * h)) * 0.3).astype(np.float32)
        U = (rng.standard_normal((h, g * h)) * 0.1).astype(np.float32)
        b = (rng.standard_normal((2, g * h) if cell == "gru" and ra else (g * h,)) * 0.1
             ).astype(np.float32)
        h0 = rng.standard_normal((n, h)).astype(np.float32)
        c0 = h0.copy() if cell == "lstm" else None
        mask = rng.random((n, t)) > 0.3
        rm = ((rng.random((g, n, h)) > 0.2) / 0.8).astype(np.float32)
        # (the last two: precision bf16's one product, R3 reading U as bf16 pairs and
        # the persistent family keeping them resident)
        for plan, precision, masks in [
                ("steps:simt", "fp32", rm), ("steps:mma", "fp32", rm), ("persistent", "fp32", rm),
                ("persistent:3,64,16,grid", "fp32", rm), ("persistent:3,64", "fp32", rm),
                ("persistent:3,64,mma", "fp32", rm), ("steps:mma", "bf16", None),
                ("persistent:1,64,mma", "bf16", None)]:
            _core.gpu_set_plan(be, plan)
            y, hT, cT, cache = ops.rnn_forward(cell, x, W, U, b, h0, c0, mask, reset_after=ra,
                                               go_backwards=True, training=True, backend=be,
                                               recurrent_masks=masks, precision=precision)
            grads = ops.rnn_backward(cache, np.ones_like(y))
            ok = all(np.all(np.isfinite(a)) for a in (y, hT) + tuple(grads) if a is not None)
            print(f"{cell} reset_after={ra} plan={plan} {precision}: "
                  f"{'ok' if ok else 'NON-FINITE'}")
            failures += not ok
    # the tensor-core GEMM's C tiles, forced (hoisted and per-step GEMMs, 3xTF32 and bf16)
    _core.gpu_set_plan(be, "steps:mma")
    for tile in ["32x64", "64x64", "128x64", "128x128"]:
        _core.gpu_set_gemm(be, "mma:" + tile)
        for precision in ["fp32", "bf16"]:
            y, hT, cT, cache = ops.rnn_forward("lstm", x, W4, U4, b4, h0, h0, mask,
                                               training=True, backend=be, precision=precision)
            grads = ops.rnn_backward(cache, np.ones_like(y))
            ok = all(np.all(np.isfinite(a)) for a in (y, hT) + tuple(grads) if a is not None)
            print(f"gemm mma:{tile} {precision}: {'ok' if ok else 'NON-FINITE'}")
            failures += not ok
    _core.gpu_set_gemm(be, "auto")
    _core.gpu_set_plan(be, "auto")
    # the optimizers' device update (fit with the weights on the device): every
    # elementwise operation on views of one buffer, and a sum of squares
    from rnnkern._device_math import DeviceVec
    rng = np.random.default_rng(2)
    a = rng.standard_normal(10_000).astype(np.float32)
    flat = DeviceVec.upload(np.concatenate([a, a]), be)
    u, v = flat.view(0, (10_000,)), flat.view(10_000, (100, 100))
    w = v.copy()
    w *= np.float32(0.5)
    w += u.view(0, (100, 100))
    w -= v
    w /= np.float32(3.0)
    s = np.sqrt(np.maximum(np.square(w), np.minimum(v, np.float32(0.1))))
    s = (2.0 - s.clip(-1.0, 1.0)) / 1.5
    s.fill(0.25)
    ok = np.isfinite(u.sum_squares()) and np.all(np.isfinite(w.numpy()))
    print(f"device update ops: {'ok' if ok else 'NON-FINITE'}")
    failures += not ok
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
