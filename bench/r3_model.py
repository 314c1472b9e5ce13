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


if __name__ == "__main__":
    main()
