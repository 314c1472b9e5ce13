"""``rnnkern-bench`` / ``python -m rnnkern.bench``: the command line."""
from __future__ import annotations

import argparse
import shlex
import sys

from . import impls as I
from . import report
from .shapes import resolve
from .timing import measure_gemm_ceiling, measure_peak, parse_threads

CELL_ALIASES = {"simple_rnn": "simple_rnn", "simplernn": "simple_rnn", "rnn": "simple_rnn",
                "vanilla": "simple_rnn", "lstm": "lstm", "gru": "gru"}
MODE_ALIASES = {"inference": "inference", "infer": "inference", "forward": "inference",
                "fwd": "inference", "training": "training", "train": "training",
                "fwd+bwd": "training", "fwdbwd": "training", "backward": "training"}

EPILOG = """\
columns: median ms of the timed call; min-max ms over the repetitions;
GFLOP/s = matmul FLOPs / median (forward 2*T*N*G*H*(C+H), G = 1, 4, 3 for
SimpleRNN, LSTM, GRU; training = forward + backward = 3x that); % peak = GFLOP/s /
(measured fp32 FMA peak per core x threads); vs torch = torch median / this median;
check = norm-wise relative error against the float64 reference (WRONG: failed,
not timed). Exit status 1 when any implementation is WRONG or ERROR.

examples:
  rnnkern-bench --quick
  rnnkern-bench --threads all --json run.json --plot run.png
  rnnkern-bench --shapes deepbench --cells lstm
  rnnkern-bench --shapes 100,32,64,256 50,64,256,512 --modes training --backends avx512,torch
  rnnkern-bench --shapes 100,32,64,256 50,64,256,512 --modes training --backends avx512 --dropout 0.2
  rnnkern-bench --backends avx512 --bf16      # precision="bf16" beside fp32
  rnnkern-bench --compare before.json after.json
  rnnkern-bench --peak
"""


def _list_arg(text, aliases, what):
    out = []
    for tok in [t.strip().lower() for t in text.split(",") if t.strip()]:
        if tok == "all":
            vals = list(dict.fromkeys(aliases.values()))
        elif tok in aliases:
            vals = [aliases[tok]]
        else:
            raise argparse.ArgumentTypeError(
                f"unknown {what} {tok!r}; choose from {sorted(set(aliases))} or 'all'")
        out += [v for v in vals if v not in out]
    if not out:
        raise argparse.ArgumentTypeError(f"empty {what} list")
    return out


def build_parser():
    p = argparse.ArgumentParser(
        prog="rnnkern-bench", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Check, then time rnnkern's SimpleRNN/LSTM/GRU kernels (forward "
                    "inference and forward+backward training) against PyTorch and Keras 3 "
                    "on the CPU.", epilog=EPILOG)
    p.add_argument("--shapes", nargs="+", metavar="SPEC",
                   help="shape sets and/or custom shapes: default, quick, deepbench, or "
                        "T,N,C,H (several allowed; default: default)")
    p.add_argument("--quick", action="store_true",
                   help="small shapes and a short time budget (a smoke run, seconds)")
    p.add_argument("--threads", default="1",
                   help="threads for every library (rnnkern, torch, BLAS/OpenMP): N or 'all' "
                        "(default 1); each uses at most N, with its own policy below that "
                        "(rnnkern: a problem too small to gain from a second thread runs on "
                        "one)")
    p.add_argument("--cells", type=lambda s: _list_arg(s, CELL_ALIASES, "cell"),
                   default=["simple_rnn", "lstm", "gru"],
                   help="comma list of simple_rnn, lstm, gru (default all)")
    p.add_argument("--modes", type=lambda s: _list_arg(s, MODE_ALIASES, "mode"),
                   default=["inference", "training"],
                   help="comma list of inference (forward), training (forward+backward) "
                        "(default both)")
    p.add_argument("--backends", metavar="LIST",
                   help="comma list of implementations: rnnkern backends (" +
                        "scalar, avx2, avx512, reference), torch, keras, 'default', 'all' "
                        "(default: rnnkern's vector ISAs [scalar if none], rnnkern.torch, torch, rnnkern.keras, keras)")
    p.add_argument("--reps", type=int, metavar="N",
                   help="exactly N timed repetitions per implementation (default: adaptive, "
                        "budget / first-call time clamped to [3, 50])")
    p.add_argument("--budget", type=float, metavar="SECONDS",
                   help="timed seconds per implementation per case for adaptive reps "
                        "(default 0.5, --quick 0.1)")
    p.add_argument("--warmup", type=int, default=1, metavar="N",
                   help="untimed warm-up calls per implementation after the check (default 1)")
    p.add_argument("--max-gflop", type=float, metavar="G",
                   help="--shapes deepbench: keep problems up to G GFLOP per call "
                        "(default 16 training, 2 inference)")
    p.add_argument("--seed", type=int, default=0, help="seed of inputs and weights")
    p.add_argument("--dropout", type=float, metavar="RATE",
                   help="training only: add, next to every rnnkern row, a '+dropRATE' row "
                        "with Keras' dropout masks, dropout = recurrent_dropout = RATE (one "
                        "mask per gate), checked against the reference with the same masks; "
                        "the report lists its cost against the row without dropout")
    p.add_argument("--bf16", action="store_true",
                   help="add after each rnnkern CPU row its precision='bf16' sibling "
                        "('+bf16'), checked against the float64 reference within 5e-2 "
                        "normwise; the report lists bf16's speed-up over fp32 and its error")
    p.add_argument("--json", metavar="FILE", help="save the results (and machine) as JSON")
    p.add_argument("--plot", metavar="FILE.png",
                   help="draw speed-up against PyTorch per shape and cell (needs matplotlib)")
    p.add_argument("--from-json", metavar="FILE",
                   help="do not run: print (and --plot) a saved result file")
    p.add_argument("--compare", nargs=2, metavar=("A.json", "B.json"),
                   help="do not run: per-case ratio B/A of median times of two saved runs")
    p.add_argument("--fit", action="store_true",
                   help="do not run the kernels: time one training epoch of the notebooks' "
                        "forecaster and classifier (model.fit) against Keras 3 (torch "
                        "backend, and TensorFlow when installed) and a PyTorch loop, after "
                        "checking they reach the same loss (--reps, --threads, --json, "
                        "--quick apply)")
    p.add_argument("--peak", action="store_true",
                   help="do not run: measure this machine's fp32 FMA peak per core "
                        "(AVX-512 and AVX2)")
    p.add_argument("--peak-seconds", type=float, default=None, metavar="S",
                   help="seconds per ISA for the peak measurement (default 1 with --peak, "
                        "0.3 at the start of a run)")
    p.add_argument("--peak-gemm", type=int, default=1024, metavar="N",
                   help="with --peak: the size of the SGEMM ceiling measurement "
                        "(default 1024; 0 skips it)")
    p.add_argument("--no-peak", action="store_true",
                   help="skip the peak measurement at the start of a run")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--progress", action="store_true",
                   help="progress bar even when stderr is not a terminal")
    p.add_argument("--list", action="store_true",
                   help="do not run: list the cases and implementations that would run")
    return p


def config_from_args(args, argv=None):
    """Parsed arguments -> runner.Config (raises ValueError on bad values)."""
    from .runner import Config
    specs = args.shapes or (["quick"] if args.quick else ["default"])
    shapes = resolve(specs, max_gflop=args.max_gflop, max_bytes=_mem_budget())
    if not shapes:
        raise ValueError("no shapes to run (the deepbench filter left none: raise --max-gflop)")
    threads = parse_threads(args.threads)
    if args.reps is not None and args.reps < 1:
        raise ValueError("--reps must be >= 1")
    if args.warmup < 0:
        raise ValueError("--warmup must be >= 0")
    impls = I.resolve_impl_names(args.backends)
    if args.dropout is not None:
        if not 0 < args.dropout < 1:
            raise ValueError("--dropout must be in (0, 1)")
        impls = I.with_dropout_rows(impls, args.dropout)
    if args.bf16:
        impls = I.with_bf16_rows(impls)
    budget = args.budget if args.budget is not None else (0.1 if args.quick else 0.5)
    max_reps = 10 if args.quick else 50
    progress = False if args.no_progress else (True if args.progress else None)
    cmd = "rnnkern-bench" + ("" if argv is None else
                             " " + " ".join(shlex.quote(a) for a in argv)).rstrip()
    return Config(shapes=shapes, cells=tuple(args.cells), modes=tuple(args.modes),
                  impls=impls, threads=threads, reps=args.reps, budget_s=budget,
                  max_reps=max_reps, warmup=args.warmup, peak=not args.no_peak,
                  peak_seconds=args.peak_seconds or 0.3, seed=args.seed,
                  progress=progress, command=cmd, dropout=args.dropout)


def _mem_budget():
    """Half the available memory: DeepBench problems must fit in it."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024 // 2
    except OSError:
        pass
    return None


def _peak_main(args, out):
    secs = args.peak_seconds or 1.0
    peak, note = measure_peak(secs)
    m = report.machine_info(parse_threads(args.threads))
    print(f"fp32 FMA peak on {m['cpu']} (one thread, independent FMA chains, "
          f"{secs:g} s per ISA):", file=out)
    if not peak:
        for isa in ("avx512", "avx2"):
            print(f"  {isa:7s} n/a", file=out)
        print(f"  {note}", file=out)
        return 0
    for isa in ("avx512", "avx2"):
        if isa in peak:
            print(f"  {isa:7s} {peak[isa]:8.1f} GFLOP/s per core   "
                  f"x {m['usable_cpus']} usable CPUs = {peak[isa] * m['usable_cpus']:.1f}",
                  file=out)
        else:
            print(f"  {isa:7s}      n/a (not on this CPU/build)", file=out)
    if args.peak_gemm <= 0:
        return 0
    best = max(peak.values())
    n = args.peak_gemm
    print(f"SGEMM {n}^3 on one thread, median GFLOP/s and % of the FMA peak above "
          "(what the best dense kernels reach here):", file=out)
    for name, gf in measure_gemm_ceiling(n, threads=1):
        print(f"  {name:16s} {gf:8.1f} GFLOP/s   {100 * gf / best:5.1f}%", file=out)
    return 0


def _fit_main(args, out):
    from . import fit
    threads = parse_threads(args.threads)
    impls = ("rnnkern", "keras-torch", "keras-tensorflow", "torch-loop")
    if args.backends:
        impls = tuple(b.strip() for b in args.backends.split(",") if b.strip())
        bad = [b for b in impls if b not in ("rnnkern", "keras-torch", "keras-tensorflow",
                                             "torch-loop")]
        if bad:
            raise SystemExit(f"rnnkern-bench --fit: --backends takes rnnkern, keras-torch, "
                             f"keras-tensorflow, torch-loop; got {bad}")
    res = fit.run(reps=args.reps or (2 if args.quick else 5), threads=threads, out=out,
                  samples=128 if args.quick else None, impls=impls)
    res["command"] = "rnnkern-bench " + " ".join(sys.argv[1:])
    if args.json:
        report.save_json(res, args.json)
        print(f"saved {args.json}", file=out)
    bad = [k for w in res["workloads"].values() for k, v in w["status"].items()
           if v.startswith(("WRONG", "ERROR"))]
    return 1 if bad else 0


def main(argv=None):
    """Entry point of ``rnnkern-bench``; returns the exit status."""
    raw = list(sys.argv[1:] if argv is None else argv)
    p = build_parser()
    args = p.parse_args(raw)
    out = sys.stdout
    if args.peak:
        return _peak_main(args, out)
    if args.fit:
        return _fit_main(args, out)
    if args.compare:
        a, b = (report.load_json(f) for f in args.compare)
        text, _ = report.compare(a, b, *args.compare)
        print(text, file=out)
        return 0
    if args.from_json:
        res = report.load_json(args.from_json)
    else:
        try:
            cfg = config_from_args(args, raw)
        except ValueError as e:
            p.error(str(e))
        if args.list:
            from .runner import _cases
            print("implementations: " + ", ".join(cfg.impls), file=out)
            for sh, cell, modes in _cases(cfg):
                print(f"  {sh.name:34s} {sh.dims:28s} {cell:10s} {','.join(modes)}",
                      file=out)
            return 0
        from .runner import run
        res = run(cfg)
    print(report.format_results(res), file=out)
    if args.json and not args.from_json:
        report.save_json(res, args.json)
        print(f"saved {args.json}", file=out)
    if args.plot:
        try:
            report.plot(res, args.plot)
            print(f"saved {args.plot}", file=out)
        except RuntimeError as e:
            print(f"rnnkern-bench: {e}", file=sys.stderr)
            return 1
    bad = [r for r in res.get("results", []) if r.get("status") in ("WRONG", "ERROR")]
    return 1 if bad and not args.from_json else 0

