"""What keeping packed weights saves: one forward call with the kernels packed
once (as a layer keeps them) against packing them inside every call, for
step-by-step inference (T = 1 per call, a stateful forecaster's loop) and for
a whole sequence. One thread, medians of interleaved calls.

    python bench/packed_weights.py
"""
import numpy as np

from rnnkern import backends as bk
from rnnkern.bench.timing import time_interleaved

CASES = [  # T, N, C, H
    (1, 1, 32, 128), (1, 8, 32, 512), (100, 1, 32, 128), (100, 32, 64, 256),
]


def main(reps=7):
    bk.set_num_threads(1)
    be = bk.get_backend("auto")
    rng = np.random.default_rng(0)
    print(f"backend {be.name}, one thread; median us per forward call (inference)")
    print(f"{'cell':10s} {'T':>4s} {'N':>3s} {'C':>3s} {'H':>4s}  {'pack per call':>13s}  "
          f"{'packed once':>11s}  speed-up")
    for cell, G in [("simple_rnn", 1), ("lstm", 4), ("gru", 3)]:
        for T, N, C, H in CASES:
            x = rng.standard_normal((N, T, C), dtype=np.float32)
            W = (rng.standard_normal((C, G * H)) * 0.1).astype(np.float32)
            U = (rng.standard_normal((H, G * H)) * 0.1).astype(np.float32)
            b = np.zeros((2, G * H) if cell == "gru" else (G * H,), np.float32)
            h0 = np.zeros((N, H), np.float32)
            c0 = h0 if cell == "lstm" else None
            packed = be.pack(cell, U, True, W)
            n_calls = max(5, min(2000, int(2e5 / (T * N * G * H * (C + H) / 1e3 + 10))))

            def calls(p):
                def fn():
                    for _ in range(n_calls):
                        be.forward(cell, x, W, U, b, h0, c0, None, p, training=False)
                return fn

            res = time_interleaved({"per call": calls(None), "once": calls(packed)},
                                   reps=reps, warmup=1)
            a, c = (res[k]["median_ms"] * 1e3 / n_calls for k in ("per call", "once"))
            print(f"{cell:10s} {T:4d} {N:3d} {C:3d} {H:4d}  {a:13.1f}  {c:11.1f}  {a / c:7.2f}x")


if __name__ == "__main__":
    main()
