"""Layers side by side (issue 23 part 4), at S2 (T=100, N=32, C=64, H=256), S1
(T=100, N=1, C=32, H=128) and a notebook-sized layer (T=100, N=32, C=32, H=32) on 2
threads: a Bidirectional layer with its two directions at once against one after
the other (inference and a training step: forward + backward), and a stack of two
recurrent layers in inference as a wavefront against one after the other
(Sequential.predict), for each cell; rnnkern.set_layer_concurrency switches
between the two, interleaved repeat by repeat so load drifts hit both alike;
medians. Also the wavefront's block count at the small 2-layer LSTM stack. Checks that
the results are bitwise the same before timing.

    PYTHONPATH=. python bench/beside.py > bench/results/beside.txt
"""
import argparse
import time

import numpy as np

import rnnkern as rk
from rnnkern.bench.report import _cpu_model as cpu_name
from rnnkern.models import wavefront

SHAPES = {"S2": (100, 32, 64, 256), "S1": (100, 1, 32, 128), "small": (100, 32, 32, 32)}
CELLS = {"SimpleRNN": rk.layers.SimpleRNN, "LSTM": rk.layers.LSTM, "GRU": rk.layers.GRU}


def timed(fn, reps):
    """{False: [s...], True: [s...]}: fn() with concurrency off and on, interleaved."""
    out = {False: [], True: []}
    for on in (False, True):          # warm both
        rk.set_layer_concurrency(on, wavefront=on)
        fn()
    for _ in range(reps):
        for on in (False, True):
            rk.set_layer_concurrency(on, wavefront=on)
            t0 = time.perf_counter()
            fn()
            out[on].append(time.perf_counter() - t0)
    return {k: float(np.median(v)) * 1e3 for k, v in out.items()}


def same(fn):
    got = []
    for on in (False, True):
        rk.set_layer_concurrency(on, wavefront=on)
        got.append(fn())
    return all(np.array_equal(a, b) for a, b in zip(*got))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reps", type=int, default=15)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    rk.set_num_threads(args.threads)
    print(f"# bench/beside.py --reps {args.reps} --threads {args.threads}; "
          f"{time.strftime('%Y-%m-%d')}; {cpu_name()}; rnnkern {rk.__version__}; "
          f"backend {rk.backends.get_backend('auto').name}")
    print(f"# (T, N, C, H): {SHAPES}; median ms of {args.reps}; 'one after the other' = "
          "rk.set_layer_concurrency(False)")
    print()
    print("| shape | layers | mode | one after the other | side by side | speed-up | bitwise |")
    print("|---|---|---|---|---|---|---|")
    for shape, (T, N, C, H) in SHAPES.items():
        x = np.random.default_rng(0).standard_normal((N, T, C)).astype(np.float32)
        for name, cls in CELLS.items():
            bi = rk.layers.Bidirectional(cls(H, return_sequences=True, seed=0))
            bi(x)
            dy = np.ones((N, T, 2 * H), np.float32)

            def infer():
                return [bi(x, training=False)]

            def train():
                y = bi(x, training=True)
                return [y, bi.backward(dy)] + list(bi.grads)
            for mode, fn in (("inference", infer), ("training step", train)):
                ok = same(fn)
                ms = timed(fn, args.reps)
                print(f"| {shape} | Bidirectional({name}) | {mode} | {ms[False]:.2f} | "
                      f"{ms[True]:.2f} | {ms[False] / ms[True]:.2f}x | {'yes' if ok else 'NO'} |")
        for name, cls in CELLS.items():
            model = rk.Sequential([rk.layers.Input((T, C)),
                                   cls(H, return_sequences=True, seed=0), cls(H, seed=1)])

            def predict():
                return [model.predict(x, batch_size=N, verbose=0)]
            ok = same(predict)
            ms = timed(predict, args.reps)
            print(f"| {shape} | {name} x 2 stacked | inference (predict) | {ms[False]:.2f} | "
                  f"{ms[True]:.2f} | {ms[False] / ms[True]:.2f}x | {'yes' if ok else 'NO'} |")
    print()
    T, N, C, H = SHAPES["small"]
    x = np.random.default_rng(0).standard_normal((N, T, C)).astype(np.float32)
    print("Wavefront blocks (wavefront.BLOCKS), small LSTM x 2 stacked, predict, side by side ms:")
    model = rk.Sequential([rk.layers.Input((T, C)), rk.layers.LSTM(H, return_sequences=True,
                                                                   seed=0),
                           rk.layers.LSTM(H, seed=1)])
    default = wavefront.BLOCKS
    line = []
    for blocks in (2, 4, 8, 16, 25):
        wavefront.BLOCKS = blocks
        ms = timed(lambda: model.predict(x, batch_size=N, verbose=0), max(5, args.reps // 2))
        line.append(f"{blocks}: {ms[True]:.2f}")
    wavefront.BLOCKS = default
    print("  " + ", ".join(line) + f"  (one after the other: {ms[False]:.2f}; "
          f"default {default})")


if __name__ == "__main__":
    main()
