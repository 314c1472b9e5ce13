"""rnnkern's cuda backend against cuDNN (PyTorch's torch.nn RNNs), both with
device-resident float32 tensors, a synchronize after every call, medians.

    python3 bench/gpu_bench.py --out DIR          # on a GPU machine (bench/gpu.sh runs it)
    python3 bench/gpu_bench.py --dry-run          # cuda-emu and torch on the CPU, tiny shapes:
                                                  # checks this script's code paths anywhere

Rows: the issue's shapes S1, S2, S3, B8, DB1024 x SimpleRNN, LSTM, GRU (reset_after,
cuDNN's form) x inference and training (forward + BPTT with dx and every weight
gradient on both sides), and at S2 and S3 the rows cuDNN cannot run fused: LSTM with
a mask of arbitrary holes, LSTM with recurrent dropout, GRU reset_before (timed against
the plain cuDNN row of that shape). Same precision on both sides: rnnkern fp32 against
cuDNN with TF32 off; cuDNN's TF32 default in a column of its own for reference.
rnnkern is timed in its automatic plan and forced onto the per-step family
("steps": a launch a step, its product chosen as the automatic plan chooses it, on
the tensor cores where N >= 8: R3), and the two are checked to agree. Shape U2048
(U beyond on-chip memory for LSTM and GRU) is where the automatic plan is R3 itself.
Each row's ratio cuDNN / rnnkern is set against the target of issue #19 (PASS/FAIL).
The plain rows also time rnnkern.torch's modules on the same CUDA tensors (issue #20:
the adapter's cost over the raw kernels), under torch.backends.cudnn.allow_tf32 False
and True, the flag both torch.nn and rnnkern.torch follow; and rnnkern's bf16 beside
its tf32 (the issue's bf16 target: >= 1.3x at S3 and DB1024).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time

import numpy as np

SHAPES = {  # T, N, C, H
    "S1": (100, 1, 32, 128),
    "S2": (100, 32, 64, 256),
    "S3": (50, 64, 256, 512),
    "B8": (100, 8, 256, 512),
    "DB1024": (25, 32, 1024, 1024),
    # U beyond on-chip memory (LSTM 64 MiB, GRU 48 MiB against 132 x 227 KiB): the
    # automatic plan is the per-step family with its product on the tensor cores (R3)
    "U2048": (25, 64, 512, 2048),
}
DRY_SHAPES = {"S1": (6, 1, 4, 8), "S2": (5, 3, 4, 9)}
GATES = {"simple_rnn": 1, "lstm": 4, "gru": 3}
BF16_TARGET = {"S3": 1.3, "DB1024": 1.3}   # issue #19: bf16 / rnnkern's tf32, these shapes


def target(shape, cell, training, variant):
    """Issue #19's target ratio (cuDNN / rnnkern) for a row."""
    if variant != "plain":
        return None  # judged against the plain row (within 1.2x of it), not cuDNN
    if shape == "U2048":
        return 1.0   # no target of its own: the floor, never below cuDNN
    if training:
        return {"S1": 3.0, "S2": 4.0, "B8": 4.0}.get(shape, 2.5)
    if shape == "S1":
        return 1.3 if cell == "simple_rnn" else 2.0
    if shape in ("S2", "B8"):
        return 1.5 if cell == "simple_rnn" else 3.0
    return 2.0


def median_ms(fn, sync, budget_s, min_reps=5, max_reps=50):
    fn()
    sync()
    fn()
    sync()
    times = []
    start = time.perf_counter()
    while len(times) < max_reps and (len(times) < min_reps or time.perf_counter() - start < budget_s):
        t0 = time.perf_counter()
        fn()
        sync()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def make_weights(cell, C, H, reset_after, rng):
    G = GATES[cell]
    W = (rng.standard_normal((C, G * H)) / np.sqrt(C)).astype(np.float32)
    U = (rng.standard_normal((H, G * H)) / np.sqrt(H)).astype(np.float32)
    bshape = (2, G * H) if cell == "gru" and reset_after else (G * H,)
    b = (rng.standard_normal(bshape) * 0.1).astype(np.float32)
    return W, U, b


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=None, help="folder for gpu_bench.json and gpu_bench.txt")
    ap.add_argument("--dry-run", action="store_true")
    ap.add_argument("--budget", type=float, default=0.25, help="seconds of timed calls a cell")
    ap.add_argument("--shapes", default=None, help="comma-separated subset of the shapes")
    ap.add_argument("--no-profile", dest="profile", action="store_false",
                    help="skip the torch.profiler kernel breakdown")
    args = ap.parse_args()

    import torch
    import rnnkern as rk
    import rnnkern.torch as rt
    from rnnkern import _core, ops

    dry = args.dry_run
    backend = "cuda-emu" if dry else "cuda"
    dev = torch.device("cpu" if dry else "cuda")
    shapes = DRY_SHAPES if dry else SHAPES
    if args.shapes:
        shapes = {k: v for k, v in shapes.items() if k in args.shapes.split(",")}
    sync = (lambda: None) if dry else torch.cuda.synchronize
    if not dry:
        assert "cuda" in rk.backends(), f"the cuda backend is not available: {rk.backends()}"

    def to_dev(a):
        if a is None:
            return None
        if dry:
            return rk.device_array(a, "cuda-emu")
        return torch.from_numpy(np.ascontiguousarray(a)).to(dev)

    def host(a):
        if a is None:
            return None
        if hasattr(a, "numpy") and not isinstance(a, np.ndarray):
            return a.detach().cpu().numpy() if hasattr(a, "detach") else a.numpy()
        return np.asarray(a)

    rows = []
    info = {"date": time.strftime("%Y-%m-%d"), "python": platform.python_version(),
            "torch": torch.__version__, "backend": backend}
    if not dry:
        info["gpu"] = torch.cuda.get_device_name()
        info["cuda"] = torch.version.cuda
        info["cudnn"] = torch.backends.cudnn.version()
    print(json.dumps(info))

    variants = [("simple_rnn", "plain"), ("lstm", "plain"), ("gru", "plain"),
                ("lstm", "masked"), ("lstm", "dropout"), ("gru", "reset_before")]
    for sname, (T, N, C, H) in shapes.items():
        for cell, variant in variants:
            if variant != "plain" and sname not in ("S2", "S3"):
                continue
            rng = np.random.default_rng(0)
            reset_after = variant != "reset_before"
            W, U, b = make_weights(cell, C, H, reset_after, rng)
            x = rng.standard_normal((N, T, C)).astype(np.float32)
            h0 = np.zeros((N, H), np.float32)
            c0 = h0.copy() if cell == "lstm" else None
            mask = None
            rmask = None
            if variant == "masked":
                mask = rng.random((N, T)) > 0.2
            if variant == "dropout":
                rmask = ((rng.random((4, N, H)) > 0.25) / 0.75).astype(np.float32)
            d = {k: to_dev(v) for k, v in dict(x=x, W=W, U=U, b=b, h0=h0, c0=c0, mask=mask,
                                                rm=rmask).items()}
            dy = to_dev(rng.standard_normal((N, T, H)).astype(np.float32))

            def rk_call(training, d=d, dy=dy, cell=cell, reset_after=reset_after,
                        precision="fp32"):
                y, hT, cT, cache = ops.rnn_forward(
                    cell, d["x"], d["W"], d["U"], d["b"], d["h0"], d["c0"], d["mask"],
                    reset_after=reset_after, training=training, backend=backend,
                    recurrent_masks=d["rm"], precision=precision)
                if training:
                    return y, ops.rnn_backward(cache, dy)
                return y, None

            # cuDNN: torch.nn with the same sizes (its own random weights: speed only)
            tmod = {"simple_rnn": torch.nn.RNN, "lstm": torch.nn.LSTM,
                    "gru": torch.nn.GRU}[cell](C, H, batch_first=True).to(dev)
            tx = torch.from_numpy(x).to(dev)
            tdy = torch.from_numpy(host(dy) if dry else dy.cpu().numpy()).to(dev)

            def cudnn_call(training, tmod=tmod, tx=tx, tdy=tdy):
                if not training:
                    with torch.no_grad():
                        return tmod(tx)
                xg = tx.detach().requires_grad_(True)
                out, _ = tmod(xg)
                out.backward(tdy)
                return out

            # rnnkern.torch on the same tensors (its modules, torch autograd): the
            # adapter's cost over the raw kernels (cuda-emu on CPU tensors in a dry run)
            rt_mod = None
            if variant == "plain":
                rt_mod = {"simple_rnn": rt.RNN, "lstm": rt.LSTM, "gru": rt.GRU}[cell](
                    C, H, batch_first=True, backend=backend).to(dev)

            for training in (False, True):
                row = dict(shape=sname, T=T, N=N, C=C, H=H, cell=cell, variant=variant,
                           mode="training" if training else "inference")
                _core.gpu_set_plan(backend, "auto")
                p0 = _core.gpu_persistent_launches(backend)
                y_auto, g_auto = rk_call(training)
                sync()
                row["persistent_loops"] = _core.gpu_persistent_launches(backend) - p0
                row["rnnkern_ms"] = median_ms(lambda: rk_call(training), sync, args.budget)
                _core.gpu_set_plan(backend, "steps")
                y_steps, g_steps = rk_call(training)
                sync()
                scale = float(np.max(np.abs(host(y_steps)))) + 1e-30
                diff = float(np.max(np.abs(host(y_auto) - host(y_steps)))) / scale
                if training:
                    for a, s in zip(g_auto, g_steps):
                        if a is not None:
                            sa, ss = host(a), host(s)
                            diff = max(diff, float(np.max(np.abs(sa - ss)))
                                       / (float(np.max(np.abs(ss))) + 1e-30))
                row["auto_vs_steps"] = diff
                row["steps_ms"] = median_ms(lambda: rk_call(training), sync,
                                            min(args.budget, 0.15), min_reps=3)
                # the persistent family with each recurrent product forced: FFMA
                # ("simt") and the tensor cores ("mma"; the automatic plan's choice
                # where the device's fragments pass the probe and N >= 8)
                for product in ("simt", "mma"):
                    try:
                        _core.gpu_set_plan(backend, "persistent:" + product)
                        rk_call(training)
                        sync()
                        row[product + "_ms"] = median_ms(lambda: rk_call(training), sync,
                                                         min(args.budget, 0.15), min_reps=3)
                    except RuntimeError:   # no persistent partition fits this layer
                        row[product + "_ms"] = None
                _core.gpu_set_plan(backend, "auto")
                # the automatic plan tuned on first use (RNNKERN_TUNE=quick): the first
                # call's wall time includes the tuning; then the tuned plan's median
                _core.gpu_set_tune(backend, "quick")
                t0 = time.perf_counter()
                rk_call(training)
                sync()
                row["tune_first_ms"] = (time.perf_counter() - t0) * 1e3
                row["tuned_ms"] = median_ms(lambda: rk_call(training), sync,
                                            min(args.budget, 0.15), min_reps=3)
                _core.gpu_set_tune(backend, "off")
                # rnnkern's tf32 (one TF32 product in the hoisted GEMMs) for cuDNN's tf32
                row["rnnkern_tf32_ms"] = median_ms(lambda: rk_call(training, precision="tf32"),
                                                   sync, min(args.budget, 0.15), min_reps=3)
                # rnnkern's bf16 beside its tf32 (plain rows; issue #19's target: >= 1.3x
                # rnnkern's tf32 at S3 and DB1024)
                if variant == "plain":
                    row["rnnkern_bf16_ms"] = median_ms(
                        lambda: rk_call(training, precision="bf16"), sync,
                        min(args.budget, 0.15), min_reps=3)
                    row["bf16_speedup"] = row["rnnkern_tf32_ms"] / row["rnnkern_bf16_ms"]
                    row["bf16_target"] = BF16_TARGET.get(sname)
                    row["bf16_pass"] = (None if row["bf16_target"] is None
                                        else row["bf16_speedup"] >= row["bf16_target"])
                if not dry:
                    torch.backends.cudnn.allow_tf32 = False
                    torch.backends.cuda.matmul.allow_tf32 = False
                row["cudnn_fp32_ms"] = median_ms(lambda: cudnn_call(training), sync, args.budget)
                if not dry:
                    torch.backends.cudnn.allow_tf32 = True
                row["cudnn_tf32_ms"] = median_ms(lambda: cudnn_call(training), sync, args.budget)
                if rt_mod is not None:
                    for flag, key in ((False, "rnnkern_torch_ms"), (True, "rnnkern_torch_tf32_ms")):
                        torch.backends.cudnn.allow_tf32 = flag
                        row[key] = median_ms(lambda: cudnn_call(training, tmod=rt_mod), sync,
                                             min(args.budget, 0.15), min_reps=3)
                    torch.backends.cudnn.allow_tf32 = True
                    row["torch_overhead_ms"] = row["rnnkern_torch_ms"] - row["rnnkern_ms"]
                row["ratio_fp32"] = row["cudnn_fp32_ms"] / row["rnnkern_ms"]
                row["ratio_tf32"] = row["cudnn_tf32_ms"] / row["rnnkern_tf32_ms"]
                row["ratio_vs_steps"] = row["steps_ms"] / row["rnnkern_ms"]
                tgt = target(sname, cell, training, variant)
                row["target"] = tgt
                row["pass"] = None if tgt is None else row["ratio_fp32"] >= tgt
                rows.append(row)
                print(fmt(row), flush=True)

    if not dry and args.profile:
        try:
            profile_text = profile(shapes, backend, ops, torch)
        except Exception as e:  # the table above stands without it
            profile_text = f"profile failed: {type(e).__name__}: {e}"
        print(profile_text)
        if args.out:
            os.makedirs(args.out, exist_ok=True)
            with open(os.path.join(args.out, "gpu_profile.txt"), "w") as f:
                f.write(profile_text + "\n")

    # the fused-only rows against their shape's plain row (target: within 1.2x)
    plain = {(r["shape"], r["cell"], r["mode"]): r["rnnkern_ms"] for r in rows
             if r["variant"] == "plain"}
    for r in rows:
        if r["variant"] != "plain":
            base = plain.get((r["shape"], "gru" if r["cell"] == "gru" else "lstm", r["mode"]))
            if base:
                r["vs_plain"] = r["rnnkern_ms"] / base
                r["pass"] = r["vs_plain"] <= 1.2
    text = table(rows)
    print(text)
    if args.out:
        os.makedirs(args.out, exist_ok=True)
        with open(os.path.join(args.out, "gpu_bench.json"), "w") as f:
            json.dump({"info": info, "rows": rows}, f, indent=1)
        with open(os.path.join(args.out, "gpu_bench.txt"), "w") as f:
            f.write(json.dumps(info) + "\n" + text + "\n")
        # the plans quick tuning chose for every benchmark shape (a plan cache's lines)
        with open(os.path.join(args.out, "tuned_plans.txt"), "w") as f:
            f.write("\n".join(_core.gpu_tuned_plans(backend)) + "\n")
    bad = [r for r in rows if r["auto_vs_steps"] > 1e-3]
    if bad:
        print(f"{len(bad)} rows where the automatic plan and the per-step family disagree")
        return 1
    return 0


PROFILED = [("S1", "lstm", False), ("S2", "lstm", False), ("S2", "lstm", True),
            ("DB1024", "lstm", True)]


def profile(shapes, backend, ops, torch):
    """GPU-busy time per call and per kernel (torch.profiler, CUDA activity) for
    a few rows: where a call's device time goes."""
    from torch.profiler import ProfilerActivity, profile as tprofile
    lines = ["# GPU time per call by kernel (torch.profiler, 5 calls each, automatic plan)"]
    for sname, cell, training in PROFILED:
        if sname not in shapes:
            continue
        T, N, C, H = shapes[sname]
        rng = np.random.default_rng(0)
        W, U, b = make_weights(cell, C, H, True, rng)
        dev = torch.device("cuda")
        t = lambda a: torch.from_numpy(a).to(dev)
        x, W, U, b = t(rng.standard_normal((N, T, C)).astype(np.float32)), t(W), t(U), t(b)
        h0 = torch.zeros((N, H), device=dev)
        c0 = torch.zeros((N, H), device=dev)
        dy = torch.ones((N, T, H), device=dev)

        def call():
            y, hT, cT, cache = ops.rnn_forward(cell, x, W, U, b, h0, c0, training=training,
                                               backend=backend)
            if training:
                ops.rnn_backward(cache, dy)

        call()
        torch.cuda.synchronize()
        calls = 5
        with tprofile(activities=[ProfilerActivity.CUDA]) as prof:
            for _ in range(calls):
                call()
            torch.cuda.synchronize()
        per = {}
        for e in prof.events():
            if e.device_type.name == "CUDA":
                key = e.name.split("(")[0][:70]
                n, us = per.get(key, (0, 0.0))
                per[key] = (n + 1, us + e.time_range.elapsed_us())
        total = sum(us for _, us in per.values()) / calls
        lines.append(f"\n{sname} {cell} {'training' if training else 'inference'} (T={T}): "
                     f"GPU-busy {total / 1e3:.3f} ms a call, {total / T:.2f} us a step")
        for key, (n, us) in sorted(per.items(), key=lambda kv: -kv[1][1])[:10]:
            lines.append(f"  {us / calls / 1e3:8.3f} ms  {n // calls:5d} launches  {key}")
    return "\n".join(lines)


def _ms(v):
    return "   -    " if v is None else f"{v:8.3f}"


def fmt(r):
    return (f"{r['shape']:7s} {r['cell']:10s} {r['variant']:12s} {r['mode']:9s} "
            f"rnnkern {r['rnnkern_ms']:8.3f} ms (steps {r['steps_ms']:8.3f}, "
            f"simt {_ms(r.get('simt_ms'))}, mma {_ms(r.get('mma_ms'))}) "
            f"cuDNN fp32 {r['cudnn_fp32_ms']:7.3f} tf32 {r['cudnn_tf32_ms']:7.3f} "
            f"ratio {r['ratio_fp32']:5.2f} (tf32 {r['ratio_tf32']:5.2f}) tuned "
            f"{r['tuned_ms']:8.3f} (first {r['tune_first_ms']:.1f}) "
            f"persistent loops {r['persistent_loops']} "
            f"agree {r['auto_vs_steps']:.1e}"
            + (f" bf16 {r['rnnkern_bf16_ms']:8.3f} ({r['bf16_speedup']:.2f}x tf32)"
               if "rnnkern_bf16_ms" in r else "")
            + (f" rnnkern.torch {r['rnnkern_torch_ms']:8.3f} (tf32 "
               f"{r['rnnkern_torch_tf32_ms']:8.3f})" if "rnnkern_torch_ms" in r else ""))


def bf16_cell(r):
    """The bf16 column: rnnkern's tf32 / bf16 ms, the speed-up and its verdict."""
    if "rnnkern_bf16_ms" not in r:
        return ""
    text = f"{r['rnnkern_tf32_ms']:.3f} / {r['rnnkern_bf16_ms']:.3f} ({r['bf16_speedup']:.2f}x)"
    if r["bf16_target"] is not None:
        text += (" PASS" if r["bf16_pass"] else " FAIL") + f" (>= {r['bf16_target']:g}x)"
    return text


def table(rows):
    head = ("| shape | cell | variant | mode | rnnkern ms | steps ms | FFMA / tensor-core "
            "product ms | tuned ms (first call) "
            "| cuDNN fp32 ms | cuDNN tf32 ms | cuDNN fp32 / rnnkern | cuDNN tf32 / rnnkern tf32 "
            "| target | | rnnkern.torch fp32 / tf32 ms | torch.nn / rnnkern.torch fp32 "
            "| rnnkern tf32 / bf16 ms |")
    lines = [head, "|" + "---|" * 17]
    for r in rows:
        tgt = r["target"]
        if tgt is not None:
            verdict = ("PASS" if r["pass"] else "FAIL") + f" (>= {tgt:g}x)"
        elif "vs_plain" in r:
            verdict = ("PASS" if r["pass"] else "FAIL") + f" ({r['vs_plain']:.2f}x plain, <= 1.2x)"
        else:
            verdict = ""
        lines.append(f"| {r['shape']} | {r['cell']} | {r['variant']} | {r['mode']} | "
                     f"{r['rnnkern_ms']:.3f} | {r['steps_ms']:.3f} | "
                     f"{_ms(r.get('simt_ms')).strip()} / {_ms(r.get('mma_ms')).strip()} | "
                     f"{r['tuned_ms']:.3f} ({r['tune_first_ms']:.1f}) | {r['cudnn_fp32_ms']:.3f} | "
                     f"{r['cudnn_tf32_ms']:.3f} | {r['ratio_fp32']:.2f} | {r['ratio_tf32']:.2f} | "
                     f"{'' if tgt is None else f'{tgt:g}x'} | {verdict} | "
                     + (f"{r['rnnkern_torch_ms']:.3f} / {r['rnnkern_torch_tf32_ms']:.3f} | "
                        f"{r['cudnn_fp32_ms'] / r['rnnkern_torch_ms']:.2f} |"
                        if "rnnkern_torch_ms" in r else " | |")
                     + f" {bf16_cell(r)} |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
