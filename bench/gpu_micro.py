"""The cost model's parameters measured directly on a GPU (issue #19 part 1):
mma.sync latency and issue rate (TF32 m16n8k8, bf16 m16n8k16), the grid barrier
inside a persistent step's t0 at several block counts, the release/acquire flag
hand-off between two blocks (what R2 would put in the barrier's place), the L2
round trip of a dependent load, the thread-block cluster's barrier after a
distributed-shared-memory store a thread at clusters of 2 to 16 (the persistent
family's barrier where its grid is one cluster; R1's hand-off), and a dependent
load from another block's shared memory; each beside the value bench/tc_model.py
assumes.

    python3 bench/gpu_micro.py [--out DIR]                (bench/gpu.sh runs it)
    python3 bench/gpu_micro.py --dry-run                  (cuda-emu, tiny counts: the
                                                           code paths, not the numbers)
"""
import argparse
import os
import sys

MODEL = {"mma_tf32_latency": "32 cycles (L)", "mma_bf16_latency": "32 cycles (L)",
         "mma_tf32_rate": "0.46 a cycle (rate)", "mma_bf16_rate": "0.46 a cycle (rate)",
         "grid_sync": "part of t0: 5 us over a grid against 3.5 in one block",
         "flag_handoff": "R2's step-tagged hand-off in place of grid_sync", "l2_chase": "-",
         "cluster_sync": "0.3 us (H200 sync-bench: 0.27-0.33 at 2-16 blocks) in place of "
                         "grid_sync's ~0.74 at <= 8 blocks",
         "dsmem_chase": "-"}
UNITS = {"mma_tf32_latency": "cycles", "mma_bf16_latency": "cycles",
         "mma_tf32_rate": "mma/cycle/SM", "mma_bf16_rate": "mma/cycle/SM",
         "grid_sync": "us", "flag_handoff": "cycles", "l2_chase": "cycles",
         "cluster_sync": "us", "dsmem_chase": "cycles"}


def rows(dry, sms):
    """(benchmark, arg, iters) to run: the iteration counts of a device, or a dry run's."""
    it = (lambda n: 2) if dry else (lambda n: n)
    out = [("mma_tf32_latency", 1, it(4096)), ("mma_bf16_latency", 1, it(4096)),
           ("mma_tf32_rate", 4 if dry else 8, it(2048)), ("mma_bf16_rate", 4 if dry else 8, it(2048)),
           ("mma_tf32_rate", 2 if dry else 16, it(2048))]
    for blocks in sorted({1, 2, 8, 32, 64, sms} if not dry else {1, 2}):
        if blocks <= sms:
            out.append(("grid_sync", blocks, it(2000)))
    out.append(("flag_handoff", 1, it(2000)))
    for kib in ([64] if dry else [256, 4096, 32768, 262144]):
        out.append(("l2_chase", kib, 50 if dry else 20000))
    for cluster in ([2, 4] if dry else [2, 4, 8, 16]):
        out.append(("cluster_sync", cluster, it(2000)))
    out.append(("dsmem_chase", 16, 50 if dry else 20000))
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=None)
    ap.add_argument("--dry-run", action="store_true")
    args = ap.parse_args(argv)
    from rnnkern import _core
    device = "cuda-emu" if args.dry_run else "cuda"
    sms = 4 if args.dry_run else _device_sms()
    lines = ["| benchmark | arg | iterations | measured | unit | the model assumes |",
             "|---|---|---|---|---|---|"]
    for what, arg, iters in rows(args.dry_run, sms):
        try:
            v = f"{_core.gpu_micro(device, what, arg, iters):.3g}"
        except RuntimeError as e:   # e.g. no clusters of that size here: said in the row
            v = f"not run: {e}"
        label = {"grid_sync": f"{arg} blocks", "l2_chase": f"{arg} KiB",
                 "flag_handoff": "2 blocks", "cluster_sync": f"cluster of {arg}",
                 "dsmem_chase": f"{arg} KiB, cluster of 2"}.get(
            what, f"{arg} warp{'s' if arg > 1 else ''}")
        lines.append(f"| {what} | {label} | {iters} | {v} | {UNITS[what]} | {MODEL[what]} |")
        print(lines[-1], flush=True)
    text = "\n".join(lines)
    if args.out:
        os.makedirs(args.out, exist_ok=True)
        with open(os.path.join(args.out, "gpu_micro.txt"), "w") as f:
            f.write(f"# python3 bench/gpu_micro.py ({device})\n" + text + "\n")
    return 0


def _device_sms():
    import torch
    return torch.cuda.get_device_properties(0).multi_processor_count


if __name__ == "__main__":
    sys.exit(main())
