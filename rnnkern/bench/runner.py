"""One benchmark run: for every (shape, cell, mode) — check every implementation
against the float64 reference at the benchmark shape, then time those that
passed, interleaved. An implementation that fails the check is reported WRONG
(or ERROR when it raised) and is never timed."""
from __future__ import annotations

import os
import sys
import traceback
from dataclasses import dataclass, field
from typing import Optional, Sequence

from . import impls as I
from . import report
from .shapes import case_flops
from .timing import SETTLE_S, ThreadControl, measure_peak, time_interleaved

CELLS = ("simple_rnn", "lstm", "gru")
MODES = ("inference", "training")


@dataclass
class Config:
    shapes: Sequence                    # Shape objects
    cells: Sequence[str] = CELLS
    modes: Sequence[str] = MODES
    impls: Optional[Sequence[str]] = None   # None: impls.default_impl_names()
    threads: int = 1
    reps: Optional[int] = None          # exact repetitions; None: adaptive
    budget_s: float = 0.5               # timed seconds per implementation per case
    min_reps: int = 3
    max_reps: int = 50
    warmup: int = 1
    peak: bool = True                   # measure the FMA peak at start (~0.3 s per ISA)
    peak_seconds: float = 0.3
    seed: int = 0
    progress: Optional[bool] = None     # None: when stderr is a terminal
    command: str = ""
    notes: list = field(default_factory=list)
    dropout: Optional[float] = None     # rate of the "+drop" rows (already in impls)


def _cases(cfg):
    for sh in cfg.shapes:
        cells = [c for c in cfg.cells if sh.cells is None or c in sh.cells]
        for cell in cells:
            modes = [m for m in cfg.modes if sh.modes is None or m in sh.modes]
            if modes:
                yield sh, cell, modes


def _reference(inp, training, dropout=None):
    """Float64 reference with every core (it is not timed; it only checks)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return I.reference_results(inp, training, dropout)
    with threadpool_limits(limits=os.cpu_count() or 1):
        return I.reference_results(inp, training, dropout)


def run(cfg: Config):
    """-> result dict (see report.SCHEMA); prints nothing but the progress bar."""
    names = list(cfg.impls) if cfg.impls is not None else I.default_impl_names()
    notes = list(cfg.notes)
    todo = list(_cases(cfg))
    n_cases = sum(len(m) for _, _, m in todo)
    progress = report.Progress(n_cases, enabled=cfg.progress)
    results = []
    with ThreadControl(cfg.threads) as tc:
        peak, peak_note = ({}, "not measured (--no-peak)")
        if cfg.peak:
            progress.update("measuring FMA peak")
            peak, peak_note = measure_peak(cfg.peak_seconds)
        impls = []
        for name in names:
            im, why = I.make_impl(name)
            if im is None:
                notes.append(f"{name} skipped: {why}")
            else:
                impls.append(im)
        if any(im.kind in ("torch", "keras") for im in impls):
            import torch  # noqa: F401  (so its thread count is set before any timing)
            tc.apply_torch()
        if any(im.kind == "keras" for im in impls):
            I.import_keras()
        widest = next((i for i in ("avx512", "avx2") if i in peak), None)
        done = 0
        for sh, cell, modes in todo:
            label = f"{sh.name} {cell}"
            progress.update(f"{label}: inputs and float64 reference", done)
            inp = I.make_inputs(cell, sh.T, sh.N, sh.C, sh.H, seed=cfg.seed)
            ref = {None: _reference(inp, training="training" in modes)}
            for rate in sorted({im.dropout for im in impls if im.dropout}):
                if "training" in modes:  # dropout rows run in training only
                    ref[rate] = _reference(inp, True, rate)
            for mode in modes:
                progress.update(f"{label} {mode}: checking", done)
                rows = _run_case(cfg, sh, cell, mode, inp, ref, impls, peak, widest,
                                 lambda r, n, lbl=f"{label} {mode}": progress.update(
                                     f"{lbl}: timing round {r}/{n}"))
                results += rows
                done += 1
                progress.update(f"{label} {mode}: done", done)
            del inp, ref
        progress.close()
        machine = report.machine_info(cfg.threads)
        machine["threads_applied"] = dict(tc.applied)
    return {
        "schema": report.SCHEMA,
        "command": cfg.command,
        "machine": machine,
        "config": {"threads": cfg.threads, "reps": cfg.reps, "budget_s": cfg.budget_s,
                   "min_reps": cfg.min_reps, "max_reps": cfg.max_reps,
                   "warmup": cfg.warmup, "cells": list(cfg.cells), "modes": list(cfg.modes),
                   "implementations": names, "seed": cfg.seed, "dropout": cfg.dropout,
                   "settle_s": settle_for(cfg.threads),
                   "check_tolerance": dict(I.CHECK_TOL),
                   "shapes": [{"name": s.name, "T": s.T, "N": s.N, "C": s.C, "H": s.H,
                               "cells": s.cells, "modes": s.modes, "note": s.note}
                              for s in cfg.shapes]},
        "peak_gflops_per_core": peak,
        "peak_note": peak_note,
        "notes": notes,
        "results": results,
    }


def settle_for(threads):
    """The untimed settling before each timed call (timing.SETTLE_S): with more than
    one thread, where another library's pool could still be spinning; none at one."""
    return SETTLE_S if threads > 1 else 0.0


def _run_case(cfg, sh, cell, mode, inp, refs, impls, peak, widest, on_round):
    """refs: the reference results by dropout rate (None: no dropout)."""
    flops = case_flops(cell, mode, sh.T, sh.N, sh.C, sh.H)
    rows, fns, ws = {}, {}, {}
    for im in impls:
        if im.modes is not None and mode not in im.modes:
            continue
        ref = refs[im.dropout]
        row = {"shape": sh.name, "T": sh.T, "N": sh.N, "C": sh.C, "H": sh.H, "cell": cell,
               "mode": mode, "impl": im.name, "kind": im.kind, "flops": flops,
               "status": None, "errors": None, "max_err": None, "failed": None,
               "median_ms": None, "min_ms": None, "max_ms": None, "reps": 0,
               "gflops": None, "pct_peak": None, "speedup_vs_torch": None,
               "workspace_mb": None, "temp_mb": None, "note": ""}
        rows[im.name] = row
        # --- check: one call at the benchmark shape, compared with the reference
        try:
            prep = im.prepare(cell, mode, inp)
            ret = prep.fn()
            got = prep.collect(ret)
            wsb = prep.workspace_bytes(ret)
            tmpb = prep.temp_bytes(ret)
        except Exception as e:
            row["status"] = "ERROR"
            row["note"] = f"{type(e).__name__}: {e}".splitlines()[0]
            if os.environ.get("RNNKERN_BENCH_DEBUG"):
                traceback.print_exc(file=sys.stderr)
            continue
        tol = I.CHECK_TOL_BF16 if im.precision == "bf16" else I.CHECK_TOL
        ok, errs, bad = I.check(got, ref, mode, tol)
        row["errors"] = errs
        row["max_err"] = max(errs.values()) if errs else None
        if not ok:
            row["status"] = "WRONG"
            row["failed"] = bad
            row["note"] = (f"{bad}: ||a-r||/||r|| = {errs[bad]:.3g} > "
                           f"{tol[bad]:g}; not timed")
            continue
        row["status"] = "ok"
        if wsb:
            ws[im.name] = wsb
            row["workspace_mb"] = wsb / 2**20
        if tmpb is not None:
            row["temp_mb"] = tmpb / 2**20
        del ret, got
        fns[im.name] = prep.fn
    if fns:
        timed = time_interleaved(fns, budget_s=cfg.budget_s, min_reps=cfg.min_reps,
                                 settle_s=settle_for(cfg.threads),
                                 max_reps=cfg.max_reps, reps=cfg.reps,
                                 warmup=cfg.warmup, on_round=on_round)
        for name, t in timed.items():
            row = rows[name]
            row.update(median_ms=t["median_ms"], min_ms=t["min_ms"], max_ms=t["max_ms"],
                       reps=t["reps"], times_ms=[round(v, 6) for v in t["times_ms"]])
            row["gflops"] = flops / (t["median_ms"] * 1e-3) / 1e9
    fns.clear()
    for name, row in rows.items():  # the dropout rows' cost, measured interleaved
        im = next(i for i in impls if i.name == name)
        base = rows.get(name.split(I.DROPOUT_SUFFIX)[0]) if im.dropout else None
        if base and base.get("median_ms") and row.get("median_ms"):
            row["vs_no_dropout"] = row["median_ms"] / base["median_ms"]
        f32 = rows.get(name[:-len(I.BF16_SUFFIX)]) if im.precision == "bf16" else None
        if f32 and f32.get("median_ms") and row.get("median_ms"):   # bf16's speed-up
            row["bf16_speedup"] = f32["median_ms"] / row["median_ms"]
    torch_ms = rows.get("torch", {}).get("median_ms")
    by_name = {im.name: im for im in impls}
    for name, row in rows.items():
        if row["median_ms"] is None:
            continue
        if torch_ms:
            row["speedup_vs_torch"] = torch_ms / row["median_ms"]
        isa = by_name[name].isa or widest
        if isa in peak and peak[isa] > 0:
            row["pct_peak"] = 100.0 * row["gflops"] / (peak[isa] * cfg.threads)
            row["peak_isa"] = isa
    return list(rows.values())
