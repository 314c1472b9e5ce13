"""One layer's call, repeated, for a profiler (perf) to sample; prints its median.

    PYTHONPATH=. python bench/profile_call.py CELL PRECISION MODE REPS [T,N,C,H] [THREADS]

CELL simple_rnn | lstm | gru; PRECISION fp32 | bf16; MODE inference | training
(forward + BPTT). Weights packed once, as the layers do. bench/profile_shares.sh
runs it under `perf record` and sums the samples per kernel family.
"""
import sys
import time

import numpy as np

import rnnkern
from rnnkern import ops


def main(argv):
    cell, prec, mode, reps = argv[0], argv[1], argv[2], int(argv[3])
    T, N, C, H = (int(v) for v in (argv[4] if len(argv) > 4 else "100,32,64,256").split(","))
    rnnkern.set_num_threads(int(argv[5]) if len(argv) > 5 else 1)
    rng = np.random.default_rng(0)
    G = {"lstm": 4, "gru": 3, "simple_rnn": 1}[cell]
    x = rng.standard_normal((N, T, C)).astype(np.float32)
    W = (rng.standard_normal((C, G * H)) * 0.1).astype(np.float32)
    U = (rng.standard_normal((H, G * H)) * 0.05).astype(np.float32)
    b = np.zeros((2, G * H) if cell == "gru" else G * H, np.float32)
    h0 = np.zeros((N, H), np.float32)
    c0 = h0.copy() if cell == "lstm" else None
    packed = ops.pack(cell, U, kernel=W)
    dy = rng.standard_normal((N, T, H)).astype(np.float32)
    training = mode == "training"

    def one():
        y, h, c, cache = ops.rnn_forward(cell, x, W, U, b, h0, c0, packed=packed,
                                         training=training, precision=prec)
        if training:
            ops.rnn_backward(cache, dy)

    one()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        one()
        times.append(time.perf_counter() - t0)
    print(f"{cell} {prec} {mode} T,N,C,H={T},{N},{C},{H} threads={rnnkern.get_num_threads()}: "
          f"median {1e3 * np.median(times):.2f} ms over {reps}")


if __name__ == "__main__":
    main(sys.argv[1:])
