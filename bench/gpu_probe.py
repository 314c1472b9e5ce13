"""Where a persistent-family step's time goes, on a GPU: the device time of the
forward and backward time-loop kernels (torch.profiler) at T = 1 and T = 100
(their difference / 99 = the time a step, T = 1 ~ the launch and loading U),
across forced partitions (blocks x threads) at S1 and S2, for SimpleRNN and LSTM;
partitions of 8 and 16 blocks as one thread-block cluster (the cluster's barrier a
step) and with the grid's (",grid"); one block and one cluster with h kept on chip
and staged from memory (",staged"); the grid's barrier against R2's step-tagged
hand-off (",flags") at 16 and 32 blocks and in S3's and DB1024's automatic partition.
Then the GEMM tiles: the device time of a training call's GEMM kernels (the
projection, dW, dU, dX and the per-step family's, split-K sums included) at S2,
S3 and DB1024 for LSTM with each tensor-core C tile forced, the chosen one
('mma') and SIMT, for the tile rule's prediction (bench/GPU.md).

    python3 bench/gpu_probe.py [--out DIR]       (bench/gpu.sh runs it)
"""
import argparse
import os
import sys

import numpy as np


def kernel_us(torch, fn, names):
    from torch.profiler import ProfilerActivity, profile
    fn()
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        fn()
        torch.cuda.synchronize()
    out = {n: 0.0 for n in names}
    for e in prof.events():
        if e.device_type.name == "CUDA":
            for n in names:
                if n in e.name:
                    out[n] += e.time_range.elapsed_us()
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    import torch
    from rnnkern import _core, ops

    dev = torch.device("cuda")
    lines = ["| shape | cell | plan | fwd T=1 us | fwd T=100 us | fwd us/step | "
             "bwd T=1 us | bwd T=100 us | bwd us/step |", "|" + "---|" * 9]
    shapes = {"S1": (1, 32, 128), "S2": (32, 64, 256), "S3": (64, 256, 512),
              "DB1024": (32, 1024, 1024)}
    for sname, (N, C, H) in shapes.items():
        for cell in ["simple_rnn", "lstm"] if sname in ("S1", "S2") else ["lstm"]:
            g = 4 if cell == "lstm" else 1
            # the automatic partition with each recurrent product (FFMA, tensor cores),
            # then forced partitions (S1, S2)
            plans = ["persistent", "persistent:simt", "persistent:mma", "persistent:flags"]
            if sname in ("S1", "S2"):
                # 2..16 blocks: one thread-block cluster (its barrier) unless ",grid";
                # one block or one cluster: h kept on chip unless ",staged"
                plans += ["persistent:1,256", "persistent:1,256,staged", "persistent:1,64",
                          "persistent:2,256", "persistent:8,256", "persistent:8,256,staged",
                          "persistent:8,256,grid", "persistent:8,64", "persistent:16,256",
                          "persistent:16,256,grid", "persistent:16,256,flags", "persistent:32,256",
                          "persistent:32,256,flags"]
            for plan in plans:
                rng = np.random.default_rng(0)
                t = lambda a: torch.from_numpy(np.ascontiguousarray(a, np.float32)).to(dev)
                W = t(rng.standard_normal((C, g * H)) * 0.1)
                U = t(rng.standard_normal((H, g * H)) * 0.05)
                b = t(np.zeros(g * H))
                res = {}
                try:
                    _core.gpu_set_plan("cuda", plan)
                    for T in (1, 100):
                        x = t(rng.standard_normal((N, T, C)))
                        h0 = torch.zeros((N, H), device=dev)
                        c0 = torch.zeros((N, H), device=dev) if cell == "lstm" else None
                        dy = torch.ones((N, T, H), device=dev)

                        def call():
                            y, hT, cT, cache = ops.rnn_forward(cell, x, W, U, b, h0, c0,
                                                               training=True, backend="cuda")
                            ops.rnn_backward(cache, dy)

                        res[T] = kernel_us(torch, call, ["seq_forward", "seq_backward"])
                except RuntimeError as e:
                    lines.append(f"| {sname} | {cell} | {plan} | {str(e)[:60]} |")
                    continue
                f1, f100 = res[1]["seq_forward"], res[100]["seq_forward"]
                b1, b100 = res[1]["seq_backward"], res[100]["seq_backward"]
                lines.append(f"| {sname} | {cell} | {plan} | {f1:.1f} | {f100:.1f} | "
                             f"{(f100 - f1) / 99:.2f} | {b1:.1f} | {b100:.1f} | "
                             f"{(b100 - b1) / 99:.2f} |")
                print(lines[-1], flush=True)
    _core.gpu_set_plan("cuda", "auto")
    lines += ["", "| shape | gemm | GEMM kernels us (training call) |", "|---|---|---|"]
    gemm_shapes = {"S2": (100, 32, 64, 256), "S3": (50, 64, 256, 512),
                   "DB1024": (25, 32, 1024, 1024)}
    for sname, (T, N, C, H) in gemm_shapes.items():
        rng = np.random.default_rng(0)
        t = lambda a: torch.from_numpy(np.ascontiguousarray(a, np.float32)).to(dev)
        W, U = t(rng.standard_normal((C, 4 * H)) * 0.1), t(rng.standard_normal((H, 4 * H)) * 0.05)
        b, x = t(np.zeros(4 * H)), t(rng.standard_normal((N, T, C)))
        h0 = c0 = torch.zeros((N, H), device=dev)
        dy = torch.ones((N, T, H), device=dev)

        def call():
            y, hT, cT, cache = ops.rnn_forward("lstm", x, W, U, b, h0, c0, training=True,
                                               backend="cuda")
            ops.rnn_backward(cache, dy)
        for gemm in ["mma", "mma:32x64", "mma:64x64", "mma:128x64", "mma:128x128", "simt"]:
            _core.gpu_set_gemm("cuda", gemm)
            us = kernel_us(torch, call, ["gemm_mma_kernel", "gemm_kernel", "split_sum"])
            lines.append(f"| {sname} | {gemm} | {sum(us.values()):.1f} |")
            print(lines[-1], flush=True)
    _core.gpu_set_gemm("cuda", "auto")
    text = "\n".join(lines)
    print(text)
    if args.out:
        with open(os.path.join(args.out, "gpu_probe.txt"), "w") as f:
            f.write(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
