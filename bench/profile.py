"""Run one benchmark case in a loop, for a profiler to watch.

    python bench/profile.py S2 lstm inference --seconds 5
    python bench/profile.py S3 lstm training --dropout 0.2    # Keras' per-gate masks
    perf record -o perf.data python bench/profile.py S2 lstm training --seconds 6
    RNNKERN_ISA=avx2 valgrind --tool=callgrind python bench/profile.py S2 lstm inference \
        --timesteps 10 --calls 3 --isa avx2

It calls the compiled kernels directly (no layer, no checking), so a profile
shows the kernels and little else; it prints the median time per call. The
figures in bench/PROFILE.md were taken with it.
"""
import argparse
import statistics
import sys
import time

import numpy as np

from rnnkern import _core
from rnnkern.options import RnnOptions
from rnnkern.bench.shapes import DEFAULT, GATES, case_flops


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("shape", help="S1-S4 or T,N,C,H")
    p.add_argument("cell", choices=sorted(GATES))
    p.add_argument("mode", choices=["inference", "training"])
    p.add_argument("--isa", default=None, help="default: the widest this CPU has")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seconds", type=float, default=5.0, help="run for this long")
    p.add_argument("--calls", type=int, default=None, help="run exactly this many calls")
    p.add_argument("--timesteps", type=int, default=None, help="override T")
    p.add_argument("--dropout", type=float, default=None, metavar="RATE",
                   help="per-gate input and recurrent dropout masks of this rate (Keras' "
                        "dropout = recurrent_dropout = RATE)")
    args = p.parse_args(argv)

    named = {s.name: s for s in DEFAULT}
    if args.shape in named:
        s = named[args.shape]
        T, N, C, H = s.T, s.N, s.C, s.H
    else:
        T, N, C, H = (int(v) for v in args.shape.split(","))
    if args.timesteps:
        T = args.timesteps
    isa = args.isa or _core.cpu_isas()[0]
    G = GATES[args.cell]
    rng = np.random.default_rng(0)
    x = rng.standard_normal((N, T, C), dtype=np.float32)
    W = (rng.standard_normal((C, G * H)) / np.sqrt(C)).astype(np.float32)
    U = (rng.standard_normal((H, G * H)) / np.sqrt(H)).astype(np.float32)
    b = np.zeros((2, G * H) if args.cell == "gru" else (G * H,), np.float32)
    h0 = np.zeros((N, H), np.float32)
    c0 = h0 if args.cell == "lstm" else None
    dy = np.ones((N, T, H), np.float32)
    train = args.mode == "training"
    # as the benchmark does: inference reuses packed weights, training packs per call
    packed = None if train else _core.pack(isa, args.cell, True, U, W)
    im = rm = None
    if args.dropout:
        keep = 1.0 - args.dropout
        im = ((rng.random((G, N, C)) < keep) / keep).astype(np.float32)
        rm = ((rng.random((G, N, H)) < keep) / keep).astype(np.float32)

    options = RnnOptions(args.cell, training=train).core

    def call():
        y, _, _, ws = _core.forward(isa, options, x, W, U, b, h0, c0, None, args.threads,
                                    packed, im, rm)
        if train:
            _core.backward(ws, dy, h0, h0 if args.cell == "lstm" else None, args.threads)

    times = []
    end = time.perf_counter() + args.seconds
    while (len(times) < args.calls) if args.calls else (time.perf_counter() < end):
        t0 = time.perf_counter()
        call()
        times.append(time.perf_counter() - t0)
    flop = case_flops(args.cell, args.mode, T, N, C, H)
    med = statistics.median(times)
    drop = f" dropout={args.dropout:g}" if args.dropout else ""
    print(f"{args.shape} {args.cell} {args.mode}{drop} {isa} threads={args.threads}: "
          f"{len(times)} calls, median {med * 1e3:.3f} ms, {flop / med / 1e9:.1f} GFLOP/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
