"""The cost model of R3, the per-step family with its product on the tensor cores
(cuda/step_mma.cuh), where U does not fit on chip: predicted microseconds a forward
step on an H200, beside the floors (bench/GPU.md, "R3"). Parameters (GPU-DESIGN.md
section 1 and bench/tc_model.py; gpu.sh's micro step measures the first three):

  lat_hbm  0.6 us   a dependent load's round trip to HBM under load (U beyond L2)
  lat_l2   0.15 us  ... to L2 (U within the 60 MB L2, and the staged rows of h)
  L        32 cycles from one m16n8k8 mma.sync to the next on its accumulator
  f        1.98 GHz, 132 SMs, 8 warps a block (256 threads)
  t_fix    3 us     a launch's fixed part: launch gap, the pointwise step, its
                    loads (step_in, prefetched before the product)
  bw       4.3 TB/s the measured copy bandwidth (the floor where U streams from HBM)

A block owns 16 units (every gate) of 64 rows and walks k in chunks of 48, staged by
asynchronous copies into a ring of 3 stages: while one chunk is multiplied the next two
are in flight, so a chunk costs max(a load's round trip / 2, the warp's mma chain) and
the block's step chunks x that, and never less than U's bytes at the HBM bandwidth
where U streams from there. Items (16 x 8 tiles) are spread over the 8 warps, their
sums in registers; an item's 6 k steps of a chunk run as two accumulator chains of
`products` dependent mma each (3 for fp32 as 3xTF32, 1 for tf32; bf16: 3 k steps of
m16n8k16, two chains of 2 and 1). Precision bf16's one product reads U as bf16 pairs
of rows (pack_bf16_pairs, once a call): half the bytes, so U2048 LSTM's 32 MiB stays
within L2; the "bf16, fp32 U" column is the same kernel reading the rounded fp32 U, as
it did before the pairs.

The backward's d h_prev GEMM a step ([N, H] += dG [N, G*H] U^T) on the tensor-core
GEMM (64 x 64 tiles, one a block): a block's tile costs its k steps at the SM's mma
throughput (~0.92 m16n8k8 a cycle: 494 dense TF32 TFLOP/s over 132 SMs at 1.98 GHz;
products as above, bf16 m16n8k16 at the same rate), and U's bytes stream at the
bandwidth's share of the SMs that run (an assumption: an SM's fair share). Unsplit, an
[64, 2048] C is 32 tiles, 32 SMs; split into K slabs (launch.cuh gemm_dh_split, up to
a wave of the device) every SM runs.

    python3 bench/r3_model.py
"""
import math

F_GHZ, SMS, WARPS, L_MMA = 1.98, 132, 8, 32
LAT_HBM, LAT_L2, T_FIX, BW_B_US, L2_MB = 0.6, 0.15, 3.0, 4.3e6, 60   # BW: bytes a us
GATES = {"simple_rnn": 1, "lstm": 4, "gru": 3}
SHAPES = {"U2048": (64, 2048), "U2048-N32": (32, 2048), "U1536": (64, 1536),
          "U4096-N16": (16, 4096)}
KC, ROWS, UNITS, STAGES = 48, 64, 16, 3


def step_us(N, H, cell, precision, u_bytes=4):
    G = GATES[cell]
    u_mb = u_bytes * G * H * H / 2 ** 20   # fp32 U, or bf16 pairs (u_bytes 2)
    lat = LAT_HBM if u_mb > 0.8 * L2_MB else LAT_L2
    chunks = math.ceil(H / KC)
    row_tiles = math.ceil(min(N, ROWS) / 16)
    items = row_tiles * G * UNITS // 8
    per_warp = math.ceil(items / WARPS)
    # dependent mma an item a chunk: KC/8 k steps (bf16 KC/16) in two chains
    chain = {"fp32": math.ceil(KC / 16) * 3, "tf32": math.ceil(KC / 16),
             "bf16": math.ceil(KC / 32)}[precision]
    mma_us = per_warp * chain * L_MMA / (F_GHZ * 1e3)
    blocks = math.ceil(H / UNITS) * math.ceil(N / ROWS)
    waves = math.ceil(blocks / SMS)
    floor = u_mb * 2 ** 20 / BW_B_US if u_mb > 0.8 * L2_MB else 0.0
    t = max(waves * chunks * max(lat / (STAGES - 1), mma_us), floor) + T_FIX
    return t, floor, u_mb


MMA_PER_CLK = 0.92   # m16n8k8 TF32 (or m16n8k16 bf16) an SM a cycle, dense


def dh_gemm_us(N, H, cell, precision, split):
    G = GATES[cell]
    K = G * H
    tiles = math.ceil(N / 64) * math.ceil(H / 64)
    slabs = min(max(SMS // tiles, 1), max(K // 256, 1), 16) if split else 1
    kw = 16 if precision == "bf16" else 8
    products = {"fp32": 3, "tf32": 1, "bf16": 1}[precision]
    mma = 64 * 64 * math.ceil(K / slabs) / (16 * 8 * kw) * products   # a block's mma
    blocks = tiles * slabs
    compute = math.ceil(blocks / SMS) * mma / MMA_PER_CLK / (F_GHZ * 1e3)
    u_bytes = 4 * K * H   # the GEMM reads the fp32 U (bf16: its rounded values)
    memory = u_bytes / (BW_B_US * min(blocks, SMS) / SMS)
    return max(compute, memory) + (1.0 if split else 0.0), slabs   # + the slab sum


def main():
    print("| shape (N, H) | cell | U MiB (fp32) | fp32 us | tf32 us | bf16, fp32 U us | "
          "bf16 pairs us | fp32 U from HBM, floor us |")
    print("|---|---|---|---|---|---|---|---|")
    for name, (N, H) in SHAPES.items():
        for cell in ("lstm", "gru"):
            t32, floor, u = step_us(N, H, cell, "fp32")
            tt, _, _ = step_us(N, H, cell, "tf32")
            tb, _, _ = step_us(N, H, cell, "bf16")
            tp, _, _ = step_us(N, H, cell, "bf16", u_bytes=2)
            tail = f"{floor:.1f} |" if floor else "- (U within L2) |"
            print(f"| {name} ({N}, {H}) | {cell} | {u:.0f} | {t32:.1f} | {tt:.1f} | {tb:.1f} | "
                  f"{tp:.1f} | " + tail)


    print()
    print("| shape (N, H) | cell | d h_prev GEMM unsplit us | split us (slabs) |")
    print("|---|---|---|---|")
    for name, (N, H) in SHAPES.items():
        for cell in ("lstm", "gru"):
            t1, _ = dh_gemm_us(N, H, cell, "fp32", False)
            t2, slabs = dh_gemm_us(N, H, cell, "fp32", True)
            assert all(dh_gemm_us(N, H, cell, p, s) == dh_gemm_us(N, H, cell, "fp32", s)
                       for p in ("tf32", "bf16") for s in (False, True)), "U's bytes bound"
            print(f"| {name} ({N}, {H}) | {cell} | {t1:.1f} | {t2:.1f} ({slabs}) |")


if __name__ == "__main__":
    main()
