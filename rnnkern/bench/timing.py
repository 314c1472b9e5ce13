"""Timing on a noisy shared machine, and the machine's FMA ceiling.

* one thread count for every library (rnnkern, PyTorch, BLAS/OpenMP through
  threadpoolctl), applied before anything is timed;
* warm-up, then implementations interleaved round by round in a rotating order
  (A B C, B C A, C A B, ...) so that drift from other processes hits all alike;
* each implementation gets as many repetitions as fit its share of the time
  budget (clamped to [min_reps, max_reps]), or exactly ``--reps``;
* median, min and max per implementation; the garbage collector is off while
  timing.
"""
from __future__ import annotations

import gc
import os
import statistics
import time
from contextlib import ExitStack


class ThreadControl:
    """Set the same thread count in every library; restore what can be restored on close()."""

    def __init__(self, n):
        self.n = int(n)
        self.applied = {}
        self._stack = ExitStack()
        self._torch_prev = None

    def __enter__(self):
        # rnnkern gets n threads as PyTorch does with torch.set_num_threads(n): as
        # the most it may use, with its own policy below that (the default's: a
        # problem too small to gain from a second thread runs on one,
        # backends.SMALL_STEP_WORK), through OMP_NUM_THREADS, which that default
        # reads at each call -- not set_num_threads(n), which forces n threads on
        # every problem, however small
        from .. import backends as bk
        self._rk_prev = bk._num_threads
        self._omp_prev = os.environ.get("OMP_NUM_THREADS")
        os.environ["OMP_NUM_THREADS"] = str(self.n)
        bk.set_num_threads(None)
        self.applied["rnnkern"] = self.n
        try:
            from threadpoolctl import threadpool_limits
            self._stack.enter_context(threadpool_limits(limits=self.n))
            self.applied["threadpoolctl"] = self.n
        except ImportError:
            self.applied["threadpoolctl"] = "not installed (BLAS/OpenMP threads not limited)"
        self.apply_torch()
        return self

    def apply_torch(self):
        """Called again once torch is imported (it may be imported lazily)."""
        import sys
        if "torch" in sys.modules and "torch" not in self.applied:
            torch = sys.modules["torch"]
            self._torch_prev = torch.get_num_threads()
            torch.set_num_threads(self.n)
            self.applied["torch"] = self.n

    def __exit__(self, *exc):
        from .. import backends as bk
        bk.set_num_threads(self._rk_prev)
        if self._omp_prev is None:
            os.environ.pop("OMP_NUM_THREADS", None)
        else:
            os.environ["OMP_NUM_THREADS"] = self._omp_prev
        if self._torch_prev is not None:
            import sys
            sys.modules["torch"].set_num_threads(self._torch_prev)
        self._stack.close()
        return False


def parse_threads(text):
    if text is None:
        return 1
    t = str(text).strip().lower()
    if t in ("all", "max", "0"):
        return os.cpu_count() or 1
    try:
        n = int(t)
    except ValueError:
        raise ValueError(f"--threads: expected a positive integer or 'all', got {text!r}") from None
    if n < 1:
        raise ValueError(f"--threads: expected a positive integer or 'all', got {text!r}")
    return n


def _clock():
    return time.perf_counter()


class SelfTimed:
    """What a timed callable returns when it measured its own call (a worker in
    another process: impls.TfWorker), so that the round trip to it is not
    counted: ``seconds`` replaces the wall time around the callable."""
    __slots__ = ("seconds",)

    def __init__(self, seconds):
        self.seconds = float(seconds)


def _call_timed(fn):
    t0 = _clock()
    r = fn()
    dt = _clock() - t0
    return r.seconds if isinstance(r, SelfTimed) else dt


# Multi-threaded runs (runner.py) settle before every timed call: a library's
# thread pool may keep spinning on every core after its call returns (PyTorch's
# OpenMP workers: at 2 threads, rnnkern's S2 LSTM forward took 18.8-21.9 ms right
# after a torch call, 16.9-17.1 after a 2 ms pause, 13.6-14.2 after 5 ms and
# 11.6-11.7 after 10 ms -- its time alone, 11.6-12.1 ms), which would bill the
# next implementation for it; OMP_WAIT_POLICY=PASSIVE removes the spin but
# doubles torch's own time (11.2 -> 20.9 ms). So: a SETTLE_S pause, then one
# untimed call of the implementation about to be timed (a pause alone leaves its
# own threads asleep: S1's 0.1 ms calls then took 0.3 ms), then the timed call --
# each implementation measured as its second call in a row, others quiet.
SETTLE_S = 0.02


def time_interleaved(fns, *, budget_s=0.5, min_reps=3, max_reps=50, reps=None,
                     warmup=1, on_round=None, settle_s=0.0):
    """Time every callable of ``fns`` (name -> fn), interleaved.

    Returns name -> {"median_ms", "min_ms", "max_ms", "reps", "times_ms"}.
    The first warm-up call of each implementation also sets its repetition
    count: reps_i = clamp(budget_s / t_warm, min_reps, max_reps) unless
    ``reps`` is given. ``settle_s`` > 0: before every timed call an untimed pause
    of that long and an untimed call of the same implementation (see SETTLE_S).
    """
    names = list(fns)
    want = {}
    gc_was = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        for name in names:
            t_first = None
            # adaptive reps need one untimed call's duration even with warmup=0
            n_warm = warmup if reps is not None else max(1, warmup)
            for _ in range(n_warm):
                dt = _call_timed(fns[name])
                t_first = dt if t_first is None else min(t_first, dt)
            if reps is not None:
                want[name] = int(reps)
            else:
                want[name] = int(min(max_reps, max(min_reps, budget_s / max(t_first, 1e-9))))
        times = {n: [] for n in names}
        rounds = max(want.values()) if want else 0
        for r in range(rounds):
            k = r % len(names)
            for name in names[k:] + names[:k]:
                if len(times[name]) < want[name]:
                    if settle_s > 0:
                        time.sleep(settle_s)
                        fns[name]()
                    times[name].append(_call_timed(fns[name]) * 1e3)
            if on_round is not None:
                on_round(r + 1, rounds)
    finally:
        if gc_was:
            gc.enable()
    out = {}
    for name in names:
        ts = times[name]
        out[name] = {"median_ms": statistics.median(ts), "min_ms": min(ts),
                     "max_ms": max(ts), "reps": len(ts), "times_ms": ts}
    return out


# --------------------------------------------------------------------------
# The ceiling: fp32 FMA peak per core, measured by a kernel of our own
# --------------------------------------------------------------------------

PEAK_ISAS = ("avx512", "avx2")


def measure_peak(seconds=0.3, samples=3):
    """-> ({isa: GFLOP/s per core}, note). Uses ``rnnkern._core.testing.peak_gflops(isa,
    seconds / samples)`` (one thread, many independent FMA chains) for each ISA
    this CPU and build have, keeping the best of ``samples`` (on a shared machine
    interference only ever lowers a peak measurement); an empty dict and a note
    when that kernel is not built."""
    try:
        from .. import _core
    except ImportError as e:
        return {}, f"n/a (compiled extension not importable: {e})"
    fn = getattr(getattr(_core, "testing", None), "peak_gflops", None)
    if fn is None:
        return {}, "n/a (this build of rnnkern._core has no peak_gflops kernel)"
    have = set(_core.cpu_isas())
    out = {}
    for isa in PEAK_ISAS:
        if isa in have:
            out[isa] = max(float(fn(isa, float(seconds) / samples)) for _ in range(samples))
    if not out:
        return {}, "n/a (no AVX2 or AVX-512 kernel on this CPU/build)"
    return out, ""


def measure_gemm_ceiling(n=1024, threads=1, budget_s=1.0):
    """-> [(name, GFLOP/s)]: one [n,n] x [n,n] float32 SGEMM, median of interleaved
    repetitions on ``threads`` threads, by rnnkern's own GEMM (every vector ISA),
    NumPy's BLAS and torch.mm (MKL) when installed. This is what the best
    dense kernels reach on the machine, a more practical ceiling for the RNN
    kernels than the register-only FMA peak (their loads and stores cost)."""
    import numpy as np
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    fns = {}
    try:
        from .. import _core
        for isa in PEAK_ISAS:
            if isa in _core.cpu_isas():
                fns[f"rnnkern-{isa}"] = (lambda i=isa: _core.testing.gemm(i, a, b, False, False, threads))
    except ImportError:
        pass
    fns["numpy (BLAS)"] = lambda: a @ b
    try:
        import torch
        ta, tb = torch.from_numpy(a), torch.from_numpy(b)
        fns["torch.mm"] = lambda: torch.mm(ta, tb)
    except ImportError:
        pass
    with ThreadControl(threads):
        res = time_interleaved(fns, budget_s=budget_s / max(1, len(fns)), min_reps=5,
                               max_reps=30, warmup=2)
    flop = 2.0 * n ** 3
    return [(name, flop / (r["median_ms"] * 1e6)) for name, r in res.items()]
