"""Our SGEMM against NumPy's BLAS (OpenBLAS) and torch.mm (MKL) on the GEMM shapes
of an LSTM training step at S2 and S3, one thread, median GFLOP/s of interleaved
repetitions. Needs the bench extras (torch, threadpoolctl).

    python bench/gemm_shapes.py
"""
import numpy as np
import torch

from rnnkern import _core
from rnnkern.bench.timing import ThreadControl, time_interleaved

# name, M, N, K, A transposed, B transposed (LSTM, T*N = 3200 rows)
SHAPES = [
    ("S2 projection chunk", 256, 1024, 64, 0, 0),
    ("S2 dX = dG W^T", 3200, 64, 1024, 0, 1),
    ("S2 dW = X^T dG", 64, 1024, 3200, 1, 0),
    ("S2 dU = Hprev^T dG", 256, 1024, 3200, 1, 0),
    ("S3 dX", 3200, 256, 2048, 0, 1),
    ("S3 dW", 256, 2048, 3200, 1, 0),
    ("S3 dU", 512, 2048, 3200, 1, 0),
    ("square 1024", 1024, 1024, 1024, 0, 0),
]


def main(reps=15):
    isa = _core.cpu_isas()[0]
    rng = np.random.default_rng(0)
    print(f"{'shape':22s} {'M':>5s} {'N':>5s} {'K':>5s}  rnnkern-{isa}  numpy  torch.mm  (GFLOP/s)")
    for name, M, N, K, ta, tb in SHAPES:
        a = rng.standard_normal((K, M) if ta else (M, K), dtype=np.float32)
        b = rng.standard_normal((N, K) if tb else (K, N), dtype=np.float32)
        A, B = (a.T if ta else a), (b.T if tb else b)
        tA, tB = torch.from_numpy(a), torch.from_numpy(b)
        tA, tB = (tA.t() if ta else tA), (tB.t() if tb else tB)
        fns = {"ours": lambda: _core.testing.gemm(isa, a, b, bool(ta), bool(tb), 1),
               "numpy": lambda: A @ B, "torch": lambda: torch.mm(tA, tB)}
        with ThreadControl(1):
            res = time_interleaved(fns, reps=reps, warmup=2)
        gf = [2.0 * M * N * K / (res[k]["median_ms"] * 1e6) for k in fns]
        print(f"{name:22s} {M:5d} {N:5d} {K:5d}  {gf[0]:14.1f}  {gf[1]:5.1f}  {gf[2]:8.1f}")


if __name__ == "__main__":
    main()
