"""Each precision mode's error against the float64 reference, per cell, forward and
gradients: the normwise relative error ||v - r|| / ||r|| of every output and
gradient of one forward + BPTT on a GPU backend.

    python3 bench/precision_error.py [--backend cuda-emu|cuda] [--dims N,T,C,H]

On cuda-emu the hoisted GEMMs are forced onto the tensor-core kernel (which the
emulation runs with TF32 rounding bit-exact), so 'tf32' takes its one-product
path there as on a device (and the automatic plan puts the recurrence on the
tensor cores where N >= 8, in the same precision); 'fp32' is then the 3xTF32
split. 'bf16' is rnnkern.reference's bf16: the weights and every product's other
operand rounded to bfloat16, sums and states fp32. A backend that refuses a mode
prints its refusal."""
import argparse
import sys

import numpy as np

from rnnkern import _core, ops, reference
from rnnkern.options import PRECISIONS

CONFIGS = [("simple_rnn", True), ("lstm", True), ("gru", True), ("gru", False)]
G = {"simple_rnn": 1, "lstm": 4, "gru": 3}
NAMES = ("y", "h_T", "c_T", "dx", "dkernel", "drecurrent_kernel", "dbias", "dh0", "dc0")


def case(cell, reset_after, n, t, c, h, rng):
    g = G[cell]
    x = rng.standard_normal((n, t, c)).astype(np.float32)
    W = (rng.standard_normal((c, g * h)) / np.sqrt(c)).astype(np.float32)
    U = (rng.standard_normal((h, g * h)) / np.sqrt(h)).astype(np.float32)
    b = (0.1 * rng.standard_normal((2, g * h) if cell == "gru" and reset_after else (g * h,))
         ).astype(np.float32)
    h0 = (0.5 * rng.standard_normal((n, h))).astype(np.float32)
    c0 = (0.5 * rng.standard_normal((n, h))).astype(np.float32) if cell == "lstm" else None
    return x, W, U, b, h0, c0


def normwise(v, r):
    if r is None:
        return None
    r = np.asarray(r, np.float64)
    return float(np.linalg.norm(np.asarray(v, np.float64) - r) / max(np.linalg.norm(r), 1e-300))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--backend", default="cuda-emu")
    ap.add_argument("--dims", default="8,6,64,32", help="N,T,C,H (default 8,6,64,32)")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    n, t, c, h = (int(v) for v in a.dims.split(","))
    if a.backend == "cuda-emu":
        _core.gpu_set_gemm("cuda-emu", "mma")
    print(f"backend {a.backend}, gemm {_core.gpu_gemm(a.backend)}, N,T,C,H = {n},{t},{c},{h}, "
          f"seed {a.seed}; normwise relative error against float64")
    print(f"{'cell':16s} {'precision':9s} " + " ".join(f"{k:>17s}" for k in NAMES))
    for cell, ra in CONFIGS:
        rng = np.random.default_rng(a.seed)
        x, W, U, b, h0, c0 = case(cell, ra, n, t, c, h, rng)
        f64 = (lambda v: None if v is None else v.astype(np.float64))
        yr, hr, cr, kr = reference.rnn_forward(cell, f64(x), f64(W), f64(U), f64(b), f64(h0),
                                               f64(c0), reset_after=ra)
        dy = rng.standard_normal(yr.shape).astype(np.float32)
        gr = reference.rnn_backward(kr, f64(dy))
        label = cell + ("" if cell != "gru" else (" r.a." if ra else " r.b."))
        for p in PRECISIONS:
            try:
                y, hT, cT, k = ops.rnn_forward(cell, x, W, U, b, h0, c0, reset_after=ra,
                                               precision=p, backend=a.backend)
            except ValueError as e:
                print(f"{label:16s} {p:9s} refused: {e}")
                continue
            g = ops.rnn_backward(k, dy)
            errs = [normwise(v, r) for v, r in zip((y, hT, cT, *g), (yr, hr, cr, *gr))]
            print(f"{label:16s} {p:9s} " + " ".join(
                f"{'-':>17s}" if e is None else f"{e:17.2e}" for e in errs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
