"""Machine description, the result table, JSON files, comparison, plot, progress bar."""
from __future__ import annotations

import datetime
import json
import math
import os
import platform
import sys

SCHEMA = "rnnkern-bench/1"


# --------------------------------------------------------------------------
# Machine
# --------------------------------------------------------------------------

def _cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _cpu_flags():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    fl = set(line.split(":", 1)[1].split())
                    return [x for x in ("avx2", "fma", "avx512f", "avx512bw", "avx512vl")
                            if x in fl]
    except OSError:
        pass
    return []


def _version(mod):
    m = sys.modules.get(mod)
    if m is None:
        try:
            from importlib.metadata import version
            return version(mod) + " (not loaded)"
        except Exception:
            return None
    return getattr(m, "__version__", "?")


def machine_info(threads):
    import numpy as np
    from .. import __version__ as rk_version
    from .. import backends as bk
    try:
        from .. import _core
        core_isas = list(_core.cpu_isas())
    except ImportError:
        core_isas = []
    try:
        auto = bk.get_backend("auto").name
    except Exception:  # pragma: no cover
        auto = "?"
    try:
        affinity = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover
        affinity = os.cpu_count()
    blas = []
    try:
        from threadpoolctl import threadpool_info
        for p in threadpool_info():
            blas.append({k: p.get(k) for k in ("user_api", "internal_api", "version",
                                               "num_threads", "prefix")})
    except ImportError:
        pass
    return {
        "cpu": _cpu_model(),
        "cpu_flags": _cpu_flags(),
        "logical_cpus": os.cpu_count(),
        "usable_cpus": affinity,
        "rnnkern_isas": core_isas,
        "rnnkern_backends": bk.backends(),
        "isa_auto": auto,
        "threads": threads,
        "versions": {"python": platform.python_version(), "numpy": np.__version__,
                     "rnnkern": rk_version, "torch": _version("torch"),
                     "keras": _version("keras"), "threadpoolctl": _version("threadpoolctl")},
        "threadpools": blas,
        "platform": platform.platform(),
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
    }


def machine_line(m):
    v = m.get("versions", {})
    vs = " ".join(f"{k} {v[k]}" for k in ("rnnkern", "numpy", "torch", "keras")
                  if v.get(k))
    return (f"{m.get('cpu')} · {m.get('usable_cpus')} usable CPUs · "
            f"rnnkern ISAs {','.join(m.get('rnnkern_isas', [])) or 'none'} "
            f"(auto: {m.get('isa_auto')}) · threads {m.get('threads')} · {vs} · "
            f"{m.get('date')}")


# --------------------------------------------------------------------------
# Formatting helpers
# --------------------------------------------------------------------------

def _fmt_ms(v):
    if v is None:
        return "-"
    if v >= 100:
        return f"{v:.0f}"
    if v >= 10:
        return f"{v:.1f}"
    if v >= 1:
        return f"{v:.2f}"
    return f"{v:.3f}"


def _fmt(v, spec, none="-"):
    return none if v is None else format(v, spec)


def _table(headers, rows, align=None):
    """Plain-text table; align: string of 'l'/'r' per column."""
    w = [len(h) for h in headers]
    for r in rows:
        for i, c in enumerate(r):
            w[i] = max(w[i], len(str(c)))
    align = align or "l" * len(headers)

    def line(cells):
        return "  ".join(str(c).ljust(w[i]) if align[i] == "l" else str(c).rjust(w[i])
                         for i, c in enumerate(cells)).rstrip()

    out = [line(headers), line(["-" * x for x in w])]
    out += [line(r) for r in rows]
    return "\n".join(out)


def _check_cell(r):
    st = r.get("status")
    if st == "ok":
        return f"ok {r['max_err']:.0e}" if r.get("max_err") is not None else "ok"
    if st == "WRONG":
        return f"WRONG {r.get('failed')} err {r.get('max_err'):.1e}"
    if st == "ERROR":
        return "ERROR " + (r.get("note") or "")[:60]
    return st or "?"


def case_label(r):
    return f"{r['shape']} {r['cell']} {r['mode']}"


def _is_peer(r):
    """A peer's row: another library's layers (not rnnkern's kernels or adapters)."""
    return not r["impl"].startswith("rnnkern") and r.get("kind") in ("torch", "keras")


def best_peer_rows(res):
    """Per case with a timed peer and a timed rnnkern kernel row (no dropout or
    bf16 rows): the fastest peer, the fastest rnnkern row, and peer ms / rnnkern ms."""
    cases = {}
    for r in res.get("results", []):
        if r.get("status") == "ok" and r.get("median_ms") and "+drop" not in r["impl"] \
                and "+bf16" not in r["impl"]:   # fp32 against fp32
            cases.setdefault(case_label(r), []).append(r)
    out = []
    for label, rows in cases.items():
        peers = [r for r in rows if _is_peer(r)]
        ours = [r for r in rows if r["impl"].startswith("rnnkern-")]
        if not peers or not ours:
            continue
        p = min(peers, key=lambda r: r["median_ms"])
        o = min(ours, key=lambda r: r["median_ms"])
        out.append({"case": label, "peer": p["impl"], "peer_ms": p["median_ms"],
                    "rnnkern": o["impl"], "rnnkern_ms": o["median_ms"],
                    "speedup": p["median_ms"] / o["median_ms"]})
    return out


def format_results(res):
    """The full text report of one run (what the CLI prints)."""
    lines = []
    m = res.get("machine", {})
    lines.append("rnnkern-bench: " + machine_line(m))
    peak = res.get("peak_gflops_per_core") or {}
    if peak:
        lines.append("fp32 FMA peak per core: " + ", ".join(
            f"{k} {v:.1f} GFLOP/s" for k, v in peak.items())
            + f"  (x {m.get('threads')} threads for % of peak)")
    else:
        lines.append("fp32 FMA peak: " + (res.get("peak_note") or "not measured")
                     + "  (% of peak left blank)")
    for n in res.get("notes", []):
        lines.append("note: " + n)
    lines.append("")
    headers = ["shape", "dims", "cell", "mode", "implementation", "median ms", "min-max ms",
               "GFLOP/s", "% peak", "vs torch", "reps", "ws MB", "tmp MB", "check (rel err)"]
    rows = []
    prev = None
    for r in res.get("results", []):
        case = (r["shape"], r["cell"], r["mode"])
        first = case != prev
        prev = case
        dims = f"{r['T']},{r['N']},{r['C']},{r['H']}"
        rows.append([
            r["shape"] if first else "", dims if first else "",
            r["cell"] if first else "", r["mode"] if first else "",
            r["impl"], _fmt_ms(r.get("median_ms")),
            (f"{_fmt_ms(r['min_ms'])}-{_fmt_ms(r['max_ms'])}"
             if r.get("min_ms") is not None else "-"),
            _fmt(r.get("gflops"), ".1f"), _fmt(r.get("pct_peak"), ".1f", ""),
            (f"{r['speedup_vs_torch']:.2f}x" if r.get("speedup_vs_torch") is not None else ""),
            str(r.get("reps") or "-"), _fmt(r.get("workspace_mb"), ".1f", ""),
            _fmt(r.get("temp_mb"), ".1f", ""), _check_cell(r)])
    lines.append(_table(headers, rows, "llllllrrrrrrrl"))
    # the pivot: one row per case, one column per implementation
    impls = []
    for r in res.get("results", []):
        if r["impl"] not in impls:
            impls.append(r["impl"])
    cases = {}
    for r in res.get("results", []):
        cases.setdefault(case_label(r), {})[r["impl"]] = r
    if cases and impls:
        lines.append("")
        lines.append("median ms per implementation (speed-up against torch in brackets; "
                     "WRONG = failed the check, not timed)")
        prow = []
        for label, d in cases.items():
            row = [label]
            for i in impls:
                r = d.get(i)
                if r is None:
                    row.append("")
                elif r.get("status") != "ok":
                    row.append(r.get("status"))
                else:
                    s = _fmt_ms(r.get("median_ms"))
                    if r.get("speedup_vs_torch") is not None and i != "torch":
                        s += f" ({r['speedup_vs_torch']:.2f}x)"
                    row.append(s)
            prow.append(row)
        lines.append(_table(["case"] + impls, prow, "l" + "r" * len(impls)))
    best = best_peer_rows(res)
    if best:
        lines.append("")
        lines.append("against the best peer of each case (the fastest of torch, keras, keras-tf "
                     "and the other peers timed; rnnkern: its fastest kernel row)")
        lines.append(_table(["case", "best peer", "peer ms", "rnnkern", "rnnkern ms", "speed-up"],
                            [[b["case"], b["peer"], _fmt_ms(b["peer_ms"]), b["rnnkern"],
                              _fmt_ms(b["rnnkern_ms"]), f"{b['speedup']:.2f}x"]
                             for b in best], "llrlrr"))
        ahead = sum(b["speedup"] >= 1.0 for b in best)
        geo = math.exp(sum(math.log(b["speedup"]) for b in best) / len(best))
        lines.append(f"rnnkern ahead of the best peer in {ahead} of {len(best)} cases; "
                     f"geometric mean {geo:.2f}x")
    drop = [r for r in res.get("results", []) if r.get("vs_no_dropout") is not None]
    if drop:
        lines.append("")
        lines.append("dropout cost: median of the '+drop' row / median of the same "
                     "implementation without dropout (timed interleaved, same process)")
        lines.append(_table(["case", "implementation", "no dropout ms", "dropout ms", "ratio"],
                            [[case_label(r), r["impl"],
                              _fmt_ms(r["median_ms"] / r["vs_no_dropout"]),
                              _fmt_ms(r["median_ms"]), f"{r['vs_no_dropout']:.3f}x"]
                             for r in drop], "llrrr"))
    bf = [r for r in res.get("results", []) if r.get("bf16_speedup") is not None]
    if bf:
        lines.append("")
        lines.append("precision bf16: median of the '+bf16' row against the same kernels in "
                     "fp32 (timed interleaved, same process); error: max over the checked "
                     "arrays of ||a - r|| / ||r|| against the float64 reference")
        lines.append(_table(["case", "implementation", "fp32 ms", "bf16 ms", "speed-up",
                             "bf16 error"],
                            [[case_label(r), r["impl"],
                              _fmt_ms(r["median_ms"] * r["bf16_speedup"]),
                              _fmt_ms(r["median_ms"]), f"{r['bf16_speedup']:.2f}x",
                              f"{r['max_err']:.2g}"]
                             for r in bf], "llrrrr"))
    if res.get("command"):
        lines.append("")
        lines.append("command: " + res["command"])
    return "\n".join(lines)


# --------------------------------------------------------------------------
# JSON
# --------------------------------------------------------------------------

def _json_safe(o):
    if isinstance(o, float) and not math.isfinite(o):
        return None if math.isnan(o) else ("inf" if o > 0 else "-inf")
    if isinstance(o, dict):
        return {k: _json_safe(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_json_safe(v) for v in o]
    return o


def save_json(res, path):
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w") as f:
        json.dump(_json_safe(res), f, indent=1)
        f.write("\n")
    os.replace(tmp, path)


def load_json(path):
    with open(path) as f:
        res = json.load(f)
    if not isinstance(res, dict) or res.get("schema") != SCHEMA:
        raise ValueError(f"{path}: not an rnnkern-bench result file (schema {SCHEMA})")
    return res


# --------------------------------------------------------------------------
# Compare two runs
# --------------------------------------------------------------------------

def _key(r):
    return (r["T"], r["N"], r["C"], r["H"], r["cell"], r["mode"], r["impl"])


def compare(a, b, name_a="A", name_b="B"):
    """Text: per matching (shape, cell, mode, implementation), B/A median time."""
    ia = {_key(r): r for r in a.get("results", []) if r.get("median_ms")}
    ib = {_key(r): r for r in b.get("results", []) if r.get("median_ms")}
    common = [k for k in ia if k in ib]
    lines = [f"A: {name_a}: {machine_line(a.get('machine', {}))}",
             f"B: {name_b}: {machine_line(b.get('machine', {}))}", ""]
    if not common:
        lines.append("no matching timed cases (same T,N,C,H, cell, mode and implementation)")
        return "\n".join(lines), {}
    rows, per_impl = [], {}
    for k in common:
        ra, rb = ia[k], ib[k]
        ratio = rb["median_ms"] / ra["median_ms"]
        per_impl.setdefault(k[-1], []).append(ratio)
        rows.append([ra["shape"], f"{k[0]},{k[1]},{k[2]},{k[3]}", k[4], k[5], k[6],
                     _fmt_ms(ra["median_ms"]), _fmt_ms(rb["median_ms"]), f"{ratio:.3f}",
                     "B faster" if ratio < 0.97 else ("A faster" if ratio > 1.03 else "same")])
    lines.append(_table(["shape", "dims", "cell", "mode", "implementation", "A ms", "B ms",
                         "B/A", ""], rows, "lllllrrrl"))
    lines.append("")
    geo = {i: math.exp(sum(math.log(x) for x in v) / len(v)) for i, v in per_impl.items()}
    lines.append("geometric mean B/A per implementation: " + ", ".join(
        f"{i} {g:.3f} ({len(per_impl[i])} cases)" for i, g in geo.items()))
    lines.append("(B/A < 1: B is faster)")
    return "\n".join(lines), geo


# --------------------------------------------------------------------------
# Plot (matplotlib is an optional extra)
# --------------------------------------------------------------------------

def plot(res, path):
    """Grouped bars: speed-up against torch per shape x cell, one panel per mode; the
    best peer of each case marked by a black bar."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as e:
        raise RuntimeError("--plot needs matplotlib: pip install 'rnnkern[plot]'") from e
    results = [r for r in res.get("results", []) if r.get("speedup_vs_torch")]
    modes = [m for m in ("inference", "training") if any(r["mode"] == m for r in results)]
    if not modes:
        raise RuntimeError("--plot: no speed-up against torch to draw (was torch timed?)")
    impls = []
    for r in results:
        if r["impl"] != "torch" and r["impl"] not in impls:
            impls.append(r["impl"])
    n_groups = max(sum(1 for r in results if r["mode"] == m and r["impl"] == results[0]["impl"])
                   for m in modes)
    fig, axes = plt.subplots(len(modes), 1, squeeze=False,
                             figsize=(max(8.0, 1.0 * n_groups + 2.5), 3.4 * len(modes) + 0.6))
    colors = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b"]
    for ax, mode in zip(axes[:, 0], modes):
        groups = []
        for r in results:
            if r["mode"] == mode:
                g = (r["shape"], r["cell"])
                if g not in groups:
                    groups.append(g)
        width = 0.8 / max(1, len(impls))
        for j, impl in enumerate(impls):
            xs, ys = [], []
            for i, g in enumerate(groups):
                for r in results:
                    if (r["mode"], r["shape"], r["cell"], r["impl"]) == (mode, *g, impl):
                        xs.append(i - 0.4 + width * (j + 0.5))
                        ys.append(r["speedup_vs_torch"])
            bars = ax.bar(xs, ys, width, label=impl, color=colors[j % len(colors)])
            for bx, by in zip(bars, ys):
                ax.annotate(f"{by:.2g}", (bx.get_x() + bx.get_width() / 2, by),
                            ha="center", va="bottom", fontsize=7)
        # the best peer of each group (best_peer_rows): a black bar across it, named
        best = {b["case"]: b["peer"] for b in best_peer_rows(res)}
        marked = False
        for i, g in enumerate(groups):
            for r in results:
                if (r["mode"], r["shape"], r["cell"]) == (mode, *g) and \
                        best.get(case_label(r)) == r["impl"]:
                    ax.hlines(r["speedup_vs_torch"], i - 0.45, i + 0.45, colors="black", lw=2.5,
                              label=None if marked else "best peer")
                    ax.annotate(r["impl"], (i + 0.45, r["speedup_vs_torch"]), fontsize=6,
                                ha="right", va="bottom")
                    marked = True
        ax.axhline(1.0, color="black", lw=1, ls="--", label="torch (= 1)")
        ax.set_xticks(range(len(groups)))
        ax.set_xticklabels([f"{s}\n{c}" for s, c in groups], fontsize=8)
        ax.set_ylabel("speed-up vs PyTorch (x)")
        ys_all = [r["speedup_vs_torch"] for r in results if r["mode"] == mode]
        if ys_all and max(ys_all) / max(min(ys_all), 1e-9) > 20:
            ax.set_yscale("log")
        title = "forward (inference)" if mode == "inference" else "forward + backward (training)"
        ax.set_title(title, fontsize=10)
        ax.grid(axis="y", alpha=0.3)
    m = res.get("machine", {})
    fig.suptitle(f"rnnkern-bench: {m.get('cpu')}, {m.get('threads')} thread(s), "
                 f"{(m.get('date') or '')[:10]}", fontsize=10)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 0.955),
               ncol=len(labels), fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0, 1, 0.93))
    fig.savefig(path, dpi=110)
    plt.close(fig)


# --------------------------------------------------------------------------
# Progress bar (stderr, one line)
# --------------------------------------------------------------------------

class Progress:
    def __init__(self, total, enabled=None, stream=None, width=24):
        self.stream = stream or sys.stderr
        if enabled is None:
            enabled = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.enabled = enabled
        self.total = max(1, total)
        self.width = width
        self.done = 0
        self._last = 0

    def update(self, label, done=None):
        if done is not None:
            self.done = done
        if not self.enabled:
            return
        frac = min(1.0, self.done / self.total)
        n = int(round(frac * self.width))
        text = (f"\r[{'#' * n}{'.' * (self.width - n)}] {self.done}/{self.total} "
                f"{label}")[:120]
        pad = max(0, self._last - len(text))
        self.stream.write(text + " " * pad)
        self.stream.flush()
        self._last = len(text)

    def close(self):
        if self.enabled and self._last:
            self.stream.write("\r" + " " * self._last + "\r")
            self.stream.flush()
