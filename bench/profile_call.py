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
from rnnkern.bench.impls import make_inputs


def main(argv):
    cell, prec, mode, reps = argv[0], argv[1], argv[2], int(argv[3])
    T, N, C, H = (int(v) for v in (argv[4] if len(argv) > 4 else "100,32,64,256").split(","))
    rnnkern.set_num_threads(int(argv[5]) if len(argv) > 5 else 1)
    inp = make_inputs(cell, T, N, C, H)  # the benchmark's inputs and weights
    packed = ops.pack(cell, inp.U, kernel=inp.W)
    training = mode == "training"

    def one():
        y, h, c, cache = ops.rnn_forward(cell, inp.x, inp.W, inp.U, inp.b, inp.h0, inp.c0,
                                         packed=packed, training=training, precision=prec)
        if training:
            ops.rnn_backward(cache, inp.dy)

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
