"""fit on a GPU backend: one epoch of rnnkern-bench --fit's notebook models with
their recurrent layers on ``cuda``, the weights kept on the device (the default:
gradients, weights and the optimizer's slots stay there), the same with the
update on the host (``rnnkern.config.set_device_updates(False)``: the gradients
come down and the weights go up every step), and the same model on the CPU.

Each variant first trains one epoch from the same initial weights; its loss
after it must match the CPU's within rnnkern.bench.fit.LOSS_RTOL (else WRONG, not
timed). Then the epochs are timed, the variants interleaved round by round,
medians reported with the host transfers a step (the GPU backend's counter).

    python3 bench/gpu_fit.py [--backend cuda] [--reps 5] [--samples N] [--out DIR]

``--backend cuda-emu`` runs the same on the emulation (a smoke test: its times
mean nothing).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

import numpy as np


def _variants(backend):
    return {"cpu": ("auto", True), f"{backend} (device update)": (backend, True),
            f"{backend} (host update)": (backend, False)}


class _Variant:
    def __init__(self, name, backend, on_device, weights, data):
        from rnnkern import config, layers, models, optimizers
        from rnnkern.bench import fit as F
        self.config, self.on_device, self.data = config, on_device, data
        self.backend = backend
        self.model = F.WORKLOADS[name]["build"](layers, models)
        for layer in self.model.layers:
            if hasattr(layer, "_device_weights"):       # the recurrent layers
                layer.backend = backend
        self.weights = weights
        self.model.compile(optimizer=optimizers.Adam(learning_rate=F.LR),
                           loss=F.WORKLOADS[name]["loss"])
        self.batches = -(-len(data[0]) // F.BATCH)

    def epoch(self):
        from rnnkern import _core
        from rnnkern.bench import fit as F
        self.model.set_weights(self.weights)
        opt = self.model.optimizer
        if opt.built:
            opt.set_state([np.array(F.LR, np.float32) if n == "learning_rate" else
                           np.zeros_like(v) for n, v in zip(opt.variable_names, opt.variables)])
        self.config.set_device_updates(self.on_device)
        gpu = self.backend in ("cuda", "cuda-emu")
        t0 = _core.gpu_host_transfers(self.backend) if gpu else 0
        x, y = self.data
        try:
            t = time.perf_counter()
            self.model.fit(x, y, batch_size=F.BATCH, epochs=1, shuffle=False, verbose=0)
            dt = time.perf_counter() - t
        finally:
            self.config.set_device_updates(True)
        self.transfers = ((_core.gpu_host_transfers(self.backend) - t0) / self.batches
                          if gpu else 0.0)
        return dt

    def loss(self):
        x, y = self.data
        return float(self.model.evaluate(x, y, batch_size=256, verbose=0))


def run(backend="cuda", reps=5, samples=None, out=sys.stdout, workloads=None):
    from rnnkern.bench import fit as F
    res = {"schema": "rnnkern-gpu-fit/1", "backend": backend, "reps": reps,
           "samples": samples, "workloads": {}}
    for name in workloads or F.WORKLOADS:
        weights = F.initial_weights(name)
        data = tuple(a[:samples] for a in F.WORKLOADS[name]["data"]())
        vs = {label: _Variant(name, be, dev, weights, data)
              for label, (be, dev) in _variants(backend).items()}
        losses, status = {}, {}
        for label, v in vs.items():
            v.epoch()
            losses[label] = v.loss()
        ref = losses["cpu"]
        for label in list(vs):
            if abs(losses[label] - ref) > F.LOSS_RTOL * abs(ref):
                status[label] = f"WRONG (loss {losses[label]:.6g} vs cpu {ref:.6g})"
                del vs[label]
        times = {label: [] for label in vs}
        transfers = {}
        for r in range(reps):
            order = list(vs)[r % len(vs):] + list(vs)[:r % len(vs)]
            for label in order:
                times[label].append(vs[label].epoch())
                transfers[label] = vs[label].transfers
        med = {k: statistics.median(v) for k, v in times.items()}
        res["workloads"][name] = {"desc": F.WORKLOADS[name]["desc"], "loss": losses,
                                  "median_s": med, "transfers_per_step": transfers,
                                  "status": status}
    lines = [f"gpu_fit: one epoch (batch {F.BATCH}, Adam), recurrent layers on {backend}; "
             f"medians of {reps}", "",
             "| workload | variant | epoch ms | vs cpu | host transfers a step | status |",
             "|---|---|---|---|---|---|"]
    for name, w in res["workloads"].items():
        cpu = w["median_s"].get("cpu")
        for label in _variants(backend):
            if label in w["median_s"]:
                s = w["median_s"][label]
                lines.append(f"| {name} | {label} | {1e3 * s:.1f} | "
                             f"{cpu / s:.2f}x | {w['transfers_per_step'][label]:.1f} | ok |")
            else:
                lines.append(f"| {name} | {label} | | | | {w['status'].get(label, '')} |")
    print("\n".join(lines), file=out)
    return res


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--backend", default="cuda", choices=["cuda", "cuda-emu"])
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--samples", type=int, default=None)
    p.add_argument("--workloads", default=None, help="comma-separated (default: all)")
    p.add_argument("--out", default=None, help="folder for fit.json")
    a = p.parse_args(argv)
    res = run(a.backend, a.reps, a.samples,
              workloads=a.workloads.split(",") if a.workloads else None)
    if a.out:
        with open(os.path.join(a.out, "fit.json"), "w") as f:
            json.dump(res, f, indent=1)
    bad = [f"{n}: {l}" for n, w in res["workloads"].items() for l in w["status"]]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
