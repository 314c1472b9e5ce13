"""Where a second thread starts to pay: one training step (forward + BPTT, packed
weights) of each cell at one and at two threads, over growing per-step work
N * G * H * (C + H), T=50, C=H. Sets rnnkern.backends.SMALL_STEP_WORK.

    PYTHONPATH=. python bench/threads_crossover.py > bench/results/threads_crossover.txt
"""
import platform
import time

import numpy as np

import rnnkern.backends as B
from rnnkern._common import GATES

SIZES = [(1, 32), (8, 32), (32, 32), (32, 64), (64, 64), (32, 128), (64, 128),
         (128, 128), (32, 256), (64, 256), (16, 512)]


def step_time(be, cell, n, t, c, h, threads, reps=9):
    rng = np.random.default_rng(0)
    g = GATES[cell]
    x = rng.standard_normal((n, t, c), dtype=np.float32)
    w = rng.standard_normal((c, g * h), dtype=np.float32) * 0.1
    u = rng.standard_normal((h, g * h), dtype=np.float32) * 0.1
    b = np.zeros((2, g * h) if cell == "gru" else g * h, np.float32)
    h0 = np.zeros((n, h), np.float32)
    c0 = h0.copy() if cell == "lstm" else None
    dy = np.ones((n, t, h), np.float32)
    packed = be.pack(cell, u, True, w)
    times = {1: [], 2: []}
    for _ in range(reps):          # interleaved, so load drifts hit both alike
        for nt in threads:
            B.set_num_threads(nt)
            t0 = time.perf_counter()
            _, _, _, cache = be.forward(cell, x, w, u, b, h0, c0, None, packed)
            be.backward(cache, dy)
            times[nt].append(time.perf_counter() - t0)
    B.set_num_threads(None)
    return {nt: float(np.median(v)) for nt, v in times.items()}


def main():
    be = B.get_backend("auto")
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo")
                if l.startswith("model name")), platform.processor())
    print(f"# backend {be.name}, {cpu}, {B.get_num_threads()} CPUs; medians of 9, interleaved")
    print(f"# SMALL_STEP_WORK = {B.SMALL_STEP_WORK}")
    print(f"{'cell':10s} {'N':>4s} {'H':>4s} {'work/step':>10s} {'1 thread':>10s} "
          f"{'2 threads':>10s} {'2t/1t':>6s}")
    for cell in ("simple_rnn", "gru", "lstm"):
        for n, h in SIZES:
            work = n * GATES[cell] * h * 2 * h
            t = step_time(be, cell, n, 50, h, h, (1, 2))
            print(f"{cell:10s} {n:4d} {h:4d} {work:10d} {t[1]*1e3:8.3f}ms "
                  f"{t[2]*1e3:8.3f}ms {t[2]/t[1]:6.2f}", flush=True)


if __name__ == "__main__":
    main()
