"""Write bench/RESULTS.md, and the performance table of README.md (between its
perf-table markers), from the saved runs in bench/results/, so every figure in them
comes from a JSON file that rnnkern-bench wrote. Run from the repository root:

    python bench/make_results.py

It reads results/default-1thread.json and results/default-2threads.json; the prose
around the tables (machine, what the gaps are and why) lives here too.
"""
import json
import os

HERE = os.path.dirname(os.path.abspath(__file__))
A = "rnnkern-avx512"
SH = ["S1", "S2", "S3", "S4"]
CE = ["simple_rnn", "lstm", "gru"]
MO = ["inference", "training"]


def load(name):
    with open(os.path.join(HERE, "results", name)) as f:
        d = json.load(f)
    return d, {(r["shape"], r["cell"], r["mode"], r["impl"]): r for r in d["results"]}


def fmt(v):
    return f"{v:#.3g}" if v < 10 else f"{v:.1f}" if v < 100 else f"{v:.0f}"


def peak_file():
    """{isa: GFLOP/s per core} from results/peak.txt (rnnkern-bench --peak)."""
    out = {}
    with open(os.path.join(HERE, "results", "peak.txt")) as f:
        for line in f:
            parts = line.split()
            if len(parts) > 2 and parts[0] in ("avx512", "avx2") and parts[2] == "GFLOP/s":
                out[parts[0]] = float(parts[1])
    return out


def table(r, title):
    out = [f"\n#### {title}: median ms (speed-up against PyTorch), % of the FMA peak for "
           "rnnkern-avx512\n",
           "| shape | cell | mode | rnnkern-avx512 | % peak | rnnkern-avx2 | torch | keras |",
           "|---|---|---|---|---|---|---|---|"]
    for s in SH:
        for c in CE:
            for m in MO:
                a, b = r[(s, c, m, A)], r[(s, c, m, "rnnkern-avx2")]
                t, k = r[(s, c, m, "torch")], r[(s, c, m, "keras")]
                out.append(f"| {s} | {c} | {m} | **{fmt(a['median_ms'])}** "
                           f"({a['speedup_vs_torch']:.2f}x) | {a['pct_peak']:.0f}% | "
                           f"{fmt(b['median_ms'])} ({b['speedup_vs_torch']:.2f}x) | "
                           f"{fmt(t['median_ms'])} | {fmt(k['median_ms'])} "
                           f"({k['speedup_vs_torch']:.2f}x) |")
    return "\n".join(out)


def main():
    d1, r1 = load("default-1thread.json")
    d2, r2 = load("default-2threads.json")

    def pk(s, m):
        v = [r1[(s, c, m, A)]["pct_peak"] for c in CE]
        return f"{min(v):.0f}%" if round(min(v)) == round(max(v)) else f"{min(v):.0f}-{max(v):.0f}%"

    def sp(cells, shapes, modes, r):
        v = [r[(s, c, m, A)]["speedup_vs_torch"] for s in shapes for c in cells for m in modes]
        return f"{min(v):.2f}-{max(v):.2f}x"

    def s1(c, m):
        return f"{r1[('S1', c, m, A)]['speedup_vs_torch']:.1f}x"

    train_pct = {(s, c): r1[(s, c, "training", A)]["pct_peak"] for s in SH[1:] for c in CE}
    met = [f"{s} {c} {v:.1f}%" for (s, c), v in train_pct.items() if v >= 60]
    scal = [r1[("S3", c, m, A)]["median_ms"] / r2[("S3", c, m, A)]["median_ms"]
            for c in CE for m in MO]
    lstm_fwd = [r1[(s, "lstm", "inference", A)]["speedup_vs_torch"] for s in SH[1:]]
    scal_t = ["\n#### 2 threads against 1 thread (rnnkern-avx512, ratio of medians)\n",
              "| shape | cell | inference | training |", "|---|---|---|---|"]
    for s in SH:
        for c in CE:
            x = [r1[(s, c, m, A)]["median_ms"] / r2[(s, c, m, A)]["median_ms"] for m in MO]
            scal_t.append(f"| {s} | {c} | {x[0]:.2f}x | {x[1]:.2f}x |")
    ws = ["\n#### Training workspace (what the forward keeps for BPTT), MiB\n",
          "| shape | simple_rnn | lstm | gru |", "|---|---|---|---|"]
    for s in SH:
        ws.append(f"| {s} | " + " | ".join(
            f"{r1[(s, c, 'training', A)]['workspace_mb']:.2f}" for c in CE) + " |")
    p1, p2 = d1["peak_gflops_per_core"], d2["peak_gflops_per_core"]
    pf = peak_file()
    t1, t2 = d1["machine"]["date"][11:16], d2["machine"]["date"][11:16]
    lstm1 = r1[("S1", "lstm", "inference", A)]["median_ms"]
    torch1 = r1[("S1", "lstm", "inference", "torch")]["median_ms"]
    doc = f"""# Benchmark results

The latest `rnnkern-bench` runs on this project's development machine. Every figure in
README.md comes from here; this file is written by `python bench/make_results.py` from the
JSON of those runs. Medians of interleaved repetitions; every implementation was checked
against the float64 reference at the benchmark shape before it was timed (all passed:
`check` column of the raw outputs).

- **Machine**: Intel(R) Xeon(R) Processor (KVM guest; AVX-512 with BW/DQ/VL, AMX present
  but unused), 2 cores, L1d 48 KiB and L2 2 MiB per core; measured from one core: L2
  ~93 GB/s, L3 and DRAM ~28 GB/s. Linux 6.18, Python 3.11.7, NumPy 2.4.6, torch 2.13.0+cpu
  (its LSTM runs on oneDNN), Keras 3.15.1 on torch, rnnkern 0.1.0 (auto ISA: avx512).
- **fp32 FMA peak** (`rnnkern-bench --peak`, one thread, [results/peak.txt](results/peak.txt)):
  AVX-512 {pf['avx512']:.0f} GFLOP/s, AVX2 {pf['avx2']:.0f} GFLOP/s. Each run re-measures it at its start for its
  `% peak` column: {p1['avx512']:.0f} / {p1['avx2']:.0f} (1-thread run), {p2['avx512']:.0f} / {p2['avx2']:.0f} (2-thread run).
- **Date**: 2026-11-22, {t1} UTC (1 thread) and {t2} UTC (2 threads).
- **Commands** (after `pip install ".[bench]"`, run from /tmp):

  ```bash
  rnnkern-bench --json /work/main/bench/results/default-1thread.json --plot /work/main/bench/results/default-1thread.png --no-progress
  rnnkern-bench --threads 2 --json /work/main/bench/results/default-2threads.json --plot /work/main/bench/results/default-2threads.png --no-progress
  rnnkern-bench --peak
  ```

  Raw outputs: [results/default-1thread.txt](results/default-1thread.txt),
  [results/default-2threads.txt](results/default-2threads.txt) (full tables with min-max,
  GFLOP/s, repetitions and check errors); the JSON beside them keeps every repetition
  (`rnnkern-bench --compare A.json B.json` compares two runs).

The machine is shared and noisy: the same case varies by about +-10% between runs, which
is why implementations are interleaved within one run and only ratios inside a run are
compared.

![speed-up against PyTorch, 1 thread](results/default-1thread.png)

## Default shapes
{table(r1, "1 thread")}
{table(r2, "2 threads")}
{chr(10).join(scal_t)}
{chr(10).join(ws)}

## Against the targets of issue #4 (1 thread unless said)

| target | measured | status |
|---|---|---|
| forward >= 75% of peak at S2-S4 | {pk("S2", "inference")} at S2, {pk("S3", "inference")} at S3, {pk("S4", "inference")} at S4 | missed |
| forward+backward >= 60% of peak | {pk("S2", "training")} at S2, {pk("S3", "training")} at S3, {pk("S4", "training")} at S4 | {"missed (met only by " + ", ".join(met) + ")" if met else "missed"} |
| GRU and SimpleRNN >= 2x PyTorch at S2-S4 | {sp(["simple_rnn", "gru"], SH[1:], MO, r1)} (2 threads: {sp(["simple_rnn", "gru"], SH[1:], MO, r2)}) | missed |
| LSTM level with oneDNN, forward | {sp(["lstm"], SH[1:], ["inference"], r1)} | missed by {100 * (1 - max(lstm_fwd)):.0f}-{100 * (1 - min(lstm_fwd)):.0f}% |
| LSTM >= 1.3x oneDNN, forward+backward | {sp(["lstm"], SH[1:], ["training"], r1)} | missed |
| S1 >= 3x PyTorch, every cell (fwd / fwd+bwd) | SimpleRNN {s1("simple_rnn", "inference")} / {s1("simple_rnn", "training")}, GRU {s1("gru", "inference")} / {s1("gru", "training")}, LSTM {s1("lstm", "inference")} / {s1("lstm", "training")} | met except LSTM |
| 2 threads >= 1.7x 1 thread at S3 | {min(scal):.2f}-{max(scal):.2f}x | {"met" if min(scal) >= 1.7 else "missed"} |
| training keeps ~G*T*N*H floats plus states; inference O(N*H) | workspace table above; inference keeps a 1 MiB projection chunk plus O(N*H) | met (LSTM keeps 7 T*N*H floats: 6 slots + h_prev) |

PyTorch here is faster than the reference figures in the issue (GRU S2 forward
{r1[("S2", "gru", "inference", "torch")]["median_ms"]:.1f} ms here against 23.3 ms there), so the ratios are harder to reach than the
issue's numbers suggest; the %-of-peak targets are the machine-independent ones.

### Why the gaps (perf record on a C++ driver of the kernel table, LSTM S2)

- **The recurrent product runs at ~70-75% of peak in place, not ~95%.** The 6x4-vector
  AVX-512 micro-tile reaches 224 GFLOP/s (95%) in isolation with its panel in L1 or L2; in
  the step (K-chunked panels, partial sums kept in a per-thread buffer, 5-row blocks at
  N = 32) it measures 160-180 GFLOP/s.
- **The pointwise step is ~19% of the forward** (LSTM: 3 sigmoids + 2 tanh per 16 units):
  latency-bound chains (exp polynomial, reciprocal) that the out-of-order window only
  partly overlaps with the next tile's FMAs.
- **The hoisted GEMMs run at 140-190 GFLOP/s** (60-80%) on their own and slower inside a
  training step, where their operands come cold from memory: C tiles re-read per 128-deep
  k block, A/B packing, and for the input projection at small C (S2: K = 64) a short k
  loop; in training they are ~45% of the FLOPs and ~40% of the time.
- **S4 (H = 1000, N = 16) is memory-bound**: U is 16 MB for LSTM, streamed from L3 every
  step at ~28 GB/s, which is 8 FLOP per byte at N = 16: ~230 GFLOP/s only if every byte
  overlaps perfectly.
- **S1 LSTM (batch 1) is L2-bound**: U (256 KiB) is streamed from L2 every step at
  ~93 GB/s = 2.75 us/step, i.e. 0.275 ms for T = 100 against PyTorch's {torch1:.2f} ms: the
  measured {lstm1:.3f} ms is close to what fp32 weights allow on one core here; 3x would need
  U in L1 (48 KiB).

What would close them: a fused epilogue that interleaves the nonlinearity of one tile with
the FMAs of the next (software pipelining), GEMM tiles that keep C in registers across the
whole K for the large-K weight gradients, fusing the input projection into the step at
small C, and for S4/S1 a weight format with fewer bytes (bf16 panels, which changes the
numerics, so an option rather than the default).
"""
    with open(os.path.join(HERE, "RESULTS.md"), "w") as f:
        f.write(doc)
    update_readme(r1, r2)


def update_readme(r1, r2):
    names = {"simple_rnn": "SimpleRNN", "lstm": "LSTM", "gru": "GRU"}
    dims = {"S1": "S1 100, 1, 32, 128", "S2": "S2 100, 32, 64, 256",
            "S3": "S3 50, 64, 256, 512", "S4": "S4 30, 16, 10, 1000"}

    def cell(x):
        v, s = x["median_ms"], x["speedup_vs_torch"]
        ms = f"{v:#.2g}" if v < 1 else f"{v:#.3g}" if v < 100 else f"{v:.0f}"
        return f"{ms} ({s:.2f}x)" if s < 2 else f"{ms} ({s:.1f}x)"

    rows = ["| shape (T, N, C, H) | cell | forward | forward + backward |", "|---|---|---|---|"]
    for s in SH:
        for i, c in enumerate(CE):
            rows.append(f"| {dims[s] if i == 0 else ''} | {names[c]} | "
                        f"{cell(r1[(s, c, 'inference', A)])} | {cell(r1[(s, c, 'training', A)])} |")

    def rng(vals, suffix):
        return f"{min(vals):.0f}-{max(vals):.0f}{suffix}"

    fwd = [r1[(s, c, "inference", A)]["pct_peak"] for s in ("S2", "S3") for c in CE]
    trn = [r1[(s, c, "training", A)]["pct_peak"] for s in ("S2", "S3") for c in CE]
    scal = [r1[("S3", c, m, A)]["median_ms"] / r2[("S3", c, m, A)]["median_ms"]
            for c in CE for m in MO]
    lstm = [100 * (1 - r1[(s, "lstm", "inference", A)]["speedup_vs_torch"]) for s in SH[1:]]
    text = "\n".join(rows) + f"""

At S2-S3 the kernels run at {rng(fwd, "%")} of the FMA peak forward and {rng(trn, "%")}
forward+backward; two threads are {min(scal):.2f}-{max(scal):.2f}x one thread at S3. Batch-1 latency
and GRU / SimpleRNN training, where PyTorch has no fused kernel, are where rnnkern leads
most; oneDNN's LSTM forward is still {min(lstm):.0f}-{max(lstm):.0f}% faster. RESULTS.md says where the
remaining time goes."""
    path = os.path.join(HERE, "..", "README.md")
    with open(path) as f:
        readme = f.read()
    a, b = "<!-- perf-table:start -->", "<!-- perf-table:end -->"
    i, j = readme.index(a) + len(a), readme.index(b)
    with open(path, "w") as f:
        f.write(readme[:i] + "\n" + text + "\n" + readme[j:])


if __name__ == "__main__":
    main()
