"""The cost model of the persistent family's recurrent product, FFMA against the
tensor cores (bench/GPU.md, "The tensor-core recurrence"): predicted microseconds a
step for each benchmark shape, from the automatic plan's partition (cuda/launch.cuh
seq_plan_with: about 32k multiply-adds a block, at most a block per SM, 256 threads)
and these parameters, the first three fitted to the 2026-12-04 probe on an H200, the
last two assumptions that bench/gpu_probe.py's ",simt" / ",mma" rows will check:

  t0   fixed time a step: 3.5 us in one block, 5 us over a grid (barrier, staging,
       the pointwise step)
  r    FFMA product rate: 44k multiply-adds a microsecond a block
  f    1.98 GHz, 132 SMs
  L    32 cycles from one m16n8k8 TF32 mma.sync to the next on its accumulator,
       and as many for one m16n8k16 BF16 mma (twice the k: the dense BF16 peak
       is twice TF32's, at the same instruction rate)
  rate 0.46 mma a cycle an SM (half of the dense TF32 peak, 989/2 TFLOPS)

The forward's tensor-core columns are gate-major (cuda/persistent.cuh seq_ucol): a
phase multiplies only its gates' column tiles (GRU: 3 of 4 slots; reset_before's
phases 2 and 1), and with recurrent dropout each tile takes a pass for each gate it
holds, not one for every gate.

The step's barrier where the grid is one thread-block cluster of 2 to 16 blocks
(cuda/launch.cuh: chosen wherever the device launches it): the cluster's 0.30 us in
t0 in place of the grid's 0.74 (<= 8 blocks) or 0.98 (more), the H200 sync-bench
figures of GPU-DESIGN.md section 5; gpu_micro.py's cluster_sync and grid_sync rows
will check them.

A precision is (products a k step, k a step): fp32 3 x m16n8k8 (3xTF32), tf32 1,
bf16 1 x m16n8k16 (both operands bfloat16 values), bf16 with recurrent dropout
2 x m16n8k8 in the forward (the masks scale the rounded h).

    python3 bench/tc_model.py
"""
import math

SHAPES = {"S1": (1, 32, 128), "S2": (32, 64, 256), "S3": (64, 256, 512),
          "B8": (8, 256, 512), "DB1024": (32, 1024, 1024)}
GATES = {"simple_rnn": 1, "lstm": 4, "gru": 3}
SLOTS = {"simple_rnn": 1, "lstm": 4, "gru": 4}
SMS, F_GHZ, R_FFMA, L_MMA, RATE, WARPS = 132, 1.98, 44e3, 32, 0.46, 8
PRODUCTS = {"fp32": (3, 8), "tf32": (1, 8), "bf16": (1, 16)}


def plan(N, H, G):
    fma = N * G * H * H
    blocks = 1 if fma <= 131072 else max(1, min(math.ceil(fma / 32768), SMS))
    ut = math.ceil(H / blocks)
    return math.ceil(H / ut), ut


def t0(blocks):
    return 3.5 if blocks == 1 else 5.0


CLUSTER_SYNC_US = 0.30
NOTEBOOK = {"NB1": (32, 64), "NB2": (8, 128), "NB3": (16, 96)}   # (N, H) of small layers


def grid_sync_us(blocks):
    return 0.74 if blocks <= 8 else 0.98


def t0_cluster(blocks):
    """t0 with the cluster's barrier in place of the grid's."""
    return t0(blocks) - grid_sync_us(blocks) + CLUSTER_SYNC_US


def fwd_mma_us(N, H, G, ut, precision):
    """The forward's recurrent product a step on the tensor cores (gate-major columns)."""
    tc, kw = PRODUCTS[precision]
    return mma_us(math.ceil(N / 16) * math.ceil(ut * G / 8), H, tc, kw)


def product_us(N, H, G, ut, precision):
    """The forward's recurrent product a step: the tensor cores (N >= 8) or FFMA."""
    return N * ut * G * H / R_FFMA if N < 8 else fwd_mma_us(N, H, G, ut, precision)


def mma_us(tiles, K, tc, kw=8):
    ks = max(1, min(WARPS // tiles, K // 32))
    items_per_warp = math.ceil(tiles * ks / WARPS)
    ksteps = math.ceil(math.ceil(K / kw) / ks)
    chain = items_per_warp * math.ceil(ksteps / 2) * tc * L_MMA      # two accumulators
    issue = tiles * math.ceil(K / kw) * tc / RATE
    return max(chain, issue) / (F_GHZ * 1e3)


def rows(precision="fp32"):
    tc, kw = PRODUCTS[precision]
    out = []
    for sname, (N, _C, H) in SHAPES.items():
        for cell, G in GATES.items():
            blocks, ut = plan(N, H, G)
            F = N * ut * G * H
            ffma = F / R_FFMA
            mma_ok = N >= 8
            fwd_tc = fwd_mma_us(N, H, G, ut, precision)
            bwd_tc = mma_us(math.ceil(N / 16) * math.ceil(ut / 8), G * H, tc, kw)
            out.append((sname, cell, blocks, ut, t0(blocks), ffma,
                        fwd_tc if mma_ok else None, bwd_tc if mma_ok else None))
    return out


def dropout_passes(G, ut, gate_major):
    """Tile passes of the forward product with recurrent dropout (a pass a gate's
    masked h): every gate over every tile of the unit-major columns (before
    2026-12-06), or over the gate-major tiles each gate's columns touch."""
    if not gate_major:
        return G * math.ceil(ut * SLOTS_OF_G[G] / 8)
    return sum(len({c // ut for c in range(t * 8, min(t * 8 + 8, G * ut))})
               for t in range(math.ceil(G * ut / 8)))


SLOTS_OF_G = {1: 1, 3: 4, 4: 4}


def main():
    print("| shape | cell | blocks x units | t0 us | FFMA product us (fwd, bwd) | "
          "tensor-core product us, fp32: fwd / bwd | predicted step us, fwd: FFMA -> tc |")
    print("|---|---|---|---|---|---|---|")
    for sname, cell, blocks, ut, z, ffma, f, b in rows():
        tc = "- (N < 8: FFMA)" if f is None else f"{f:.2f} / {b:.2f}"
        step = f"{z + ffma:.1f} -> {z + (ffma if f is None else f):.1f}"
        print(f"| {sname} | {cell} | {blocks} x {ut} | {z} | {ffma:.2f} | {tc} | {step} |")
    print()
    print("| shape | cell | tensor-core product us fwd / bwd: fp32 | tf32 | bf16 | "
          "predicted step us fwd: fp32 / tf32 / bf16 |")
    print("|---|---|---|---|---|---|")
    per = {p: rows(p) for p in PRODUCTS}
    for i, (sname, cell, _b, _u, z, _f, f, _bw) in enumerate(per["fp32"]):
        if f is None:
            continue
        prods = [per[p][i][6:8] for p in PRODUCTS]
        cols = " | ".join(f"{pf:.2f} / {pb:.2f}" for pf, pb in prods)
        steps = " / ".join(f"{z + pf:.1f}" for pf, _ in prods)
        print(f"| {sname} | {cell} | {cols} | {steps} |")
    print()
    print("| shape | cell | recurrent dropout, fp32 forward product us: a pass a gate over "
          "every tile -> the tile's gates (gate-major) | plain |")
    print("|---|---|---|---|")
    tc, kw = PRODUCTS["fp32"]
    for sname, cell, _b, ut, _z, _f, f, _bw in per["fp32"]:
        if f is None or cell == "simple_rnn":
            continue
        N, _C, H = SHAPES[sname]
        G, rt = GATES[cell], math.ceil(N / 16)
        before = mma_us(rt * dropout_passes(G, ut, False), H, tc, kw)
        after = mma_us(rt * dropout_passes(G, ut, True), H, tc, kw)
        print(f"| {sname} | {cell} | {before:.2f} -> {after:.2f} | {f:.2f} |")
    print()
    cluster_tables()


def cluster_tables():
    """The cluster's barrier: (1) small layers whose automatic partition is 2 to 16
    blocks (one cluster now), grid barrier -> cluster barrier; (2) the benchmark
    shapes forced into one cluster of 16 (U over 16 SMs) against their automatic
    grid, forward step us in fp32 / tf32."""
    print("| layer (N, H) | cell | blocks x units | forward step us, fp32: grid -> cluster "
          "barrier | tf32 |")
    print("|---|---|---|---|---|")
    for name, (N, H) in NOTEBOOK.items():
        for cell, G in GATES.items():
            blocks, ut = plan(N, H, G)
            if not 2 <= blocks <= 16:
                continue
            cols = []
            for prec in ("fp32", "tf32"):
                pr = product_us(N, H, G, ut, prec)
                cols.append(f"{t0(blocks) + pr:.2f} -> {t0_cluster(blocks) + pr:.2f}")
            print(f"| {name} ({N}, {H}) | {cell} | {blocks} x {ut} | {cols[0]} | {cols[1]} |")
    print()
    print("| shape | cell | forward step us, fp32: automatic grid (blocks) vs one cluster of 16 "
          "| tf32 | bf16 (U as bf16 pairs: 2 bytes a value) |")
    print("|---|---|---|---|---|")
    for sname, (N, _C, H) in SHAPES.items():
        for cell, G in GATES.items():
            blocks, ut = plan(N, H, G)
            if blocks <= 16:
                continue
            ut16 = math.ceil(H / 16)
            cols = []
            for prec in ("fp32", "tf32", "bf16"):
                # the resident slice of U a block: 4 bytes a value, 2 as bf16 pairs
                if H * ut16 * SLOTS[cell] * (2 if prec == "bf16" else 4) > 200 * 1024:
                    cols.append("U does not fit 16 SMs' shared memory")
                    continue
                grid = t0(blocks) + product_us(N, H, G, ut, prec)
                one = t0_cluster(16) + product_us(N, H, G, ut16, prec)
                cols.append(f"{grid:.2f} ({blocks}) vs {one:.2f}")
            print(f"| {sname} | {cell} | " + " | ".join(cols) + " |")


if __name__ == "__main__":
    main()
