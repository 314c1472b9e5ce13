"""Data-parallel training of an rnnkern.torch LSTM with PyTorch's
DistributedDataParallel: each process runs rnnkern's kernels on its shard of
every global batch, and DDP averages the gradients -- rnnkern adds nothing to the
engine; its modules are plain torch.nn modules. On the CPU the processes talk gloo
(over TCP); with ``--backend nccl`` each process takes the GPU of its local rank
(rnnkern's cuda backend, the tensors in place) and the gradients go over NCCL.

The task is the adding problem (Hochreiter & Schmidhuber): a sequence of random
values and a marker channel with two ones; the target is the sum of the two
marked values. Predicting the mean scores MSE ~0.167; an LSTM learns far lower.

    python examples/ddp_lstm.py                    # 2 processes on this machine
    python examples/ddp_lstm.py --nproc 4
    torchrun --nproc_per_node=2 examples/ddp_lstm.py
    python examples/ddp_lstm.py --check            # gradients vs one process, then exit
    python examples/ddp_lstm.py --backend nccl     # one process per GPU (default: all)
    torchrun --nproc_per_node=8 examples/ddp_lstm.py --backend nccl

On many machines, run the same script on each with torchrun's rendezvous:
    torchrun --nnodes=4 --nproc_per_node=8 --rdzv_backend=c10d \\
             --rdzv_endpoint=HOST:29500 examples/ddp_lstm.py
"""
import argparse
import os
import socket
import sys
import time

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch.nn.parallel import DistributedDataParallel as DDP

import rnnkern
import rnnkern.torch as rt

T, HIDDEN, GLOBAL_BATCH = 20, 32, 64


def adding_batch(n, gen):
    """x [n, T, 2] (values, markers), y [n, 1]: the sum of the two marked values."""
    values = torch.rand(n, T, generator=gen)
    markers = torch.zeros(n, T)
    first = torch.randint(0, T // 2, (n,), generator=gen)
    second = torch.randint(T // 2, T, (n,), generator=gen)
    rows = torch.arange(n)
    markers[rows, first] = 1.0
    markers[rows, second] = 1.0
    x = torch.stack([values, markers], dim=-1)
    return x, (values * markers).sum(1, keepdim=True)


class Adder(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.rnn = rt.LSTM(2, HIDDEN, batch_first=True)
        self.head = torch.nn.Linear(HIDDEN, 1)

    def forward(self, x):
        _, (h, _) = self.rnn(x)
        return self.head(h[-1])


def shard(t, rank, world):
    per = t.shape[0] // world
    return t[rank * per:(rank + 1) * per]


def wrap(model, device):
    """DDP over this process's device (its GPU with nccl; the CPU with gloo)."""
    if device.type == "cuda":
        return DDP(model, device_ids=[device.index], output_device=device.index)
    return DDP(model)


def check(rank, world, model, device):
    """One step's gradients under DDP against one process on the same global batch."""
    x, y = adding_batch(GLOBAL_BATCH, torch.Generator().manual_seed(1))
    ddp = wrap(model, device)
    loss = torch.nn.functional.mse_loss(ddp(shard(x, rank, world).to(device)),
                                        shard(y, rank, world).to(device))
    loss.backward()      # DDP all-reduces: every rank now holds the global-batch mean
    if rank == 0:
        torch.manual_seed(0)
        single = Adder().to(device)  # the same initial weights (same seed)
        torch.nn.functional.mse_loss(single(x.to(device)), y.to(device)).backward()
        worst = 0.0
        for (name, p), q in zip(single.named_parameters(), model.parameters()):
            diff = (p.grad - q.grad).abs().max().item()
            worst = max(worst, diff / max(p.grad.abs().max().item(), 1e-12))
            if not torch.allclose(q.grad, p.grad, atol=1e-6, rtol=1e-4):
                raise SystemExit(f"gradient of {name} differs from one process: {diff:.3g}")
        print(f"gradients match single-process run on {world} processes "
              f"(largest relative difference {worst:.2e})")


def train(rank, world, args, device):
    torch.set_num_threads(1)          # one core per process
    rnnkern.set_num_threads(1)
    if device.type == "cuda" and (args.tf32 is False or args.check):
        torch.backends.cudnn.allow_tf32 = False   # rnnkern.torch follows torch.nn's rule
    torch.manual_seed(0)              # the same initial weights on every rank
    model = Adder().to(device)
    if args.check:
        return check(rank, world, model, device)
    ddp = wrap(model, device)
    opt = torch.optim.Adam(ddp.parameters(), lr=1e-2)
    gen = torch.Generator().manual_seed(100)       # the same global batches everywhere
    steps = 60 if args.quick else args.steps
    t0 = time.perf_counter()
    for step in range(1, steps + 1):
        x, y = adding_batch(GLOBAL_BATCH, gen)
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(ddp(shard(x, rank, world)), shard(y, rank, world))
        loss.backward()
        opt.step()
        if rank == 0 and (step % max(1, steps // 5) == 0 or step == steps):
            print(f"step {step:4d}  loss {loss.item():.4f}", flush=True)
    if rank == 0:
        xt, yt = adding_batch(512, torch.Generator().manual_seed(7))
        with torch.no_grad():
            mse = torch.nn.functional.mse_loss(model(xt.to(device)), yt.to(device)).item()
        print(f"test MSE {mse:.4f} (predicting the mean: 0.167); "
              f"{world} processes, {time.perf_counter() - t0:.1f} s")
    # every rank holds the same weights: DDP kept them in sync
    flat = torch.cat([p.detach().reshape(-1) for p in model.parameters()])
    gathered = [torch.empty_like(flat) for _ in range(world)]
    dist.all_gather(gathered, flat)
    if rank == 0:
        same = all(torch.equal(gathered[0], g) for g in gathered[1:])
        print(f"weights identical on every rank: {same}")


def worker(rank, world, args):
    device = torch.device("cpu")
    if args.backend == "nccl":
        # one GPU a process: the local rank's (torchrun sets LOCAL_RANK; spawned
        # processes on one machine use their rank)
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", rank)))
        torch.cuda.set_device(device)
    dist.init_process_group(args.backend, rank=rank, world_size=world)
    try:
        train(rank, world, args, device)
    finally:
        dist.destroy_process_group()
    # Leave without the interpreter's teardown. After a DDP step the gloo process group
    # -- and its worker threads -- outlive destroy_process_group (torch 2.13), and a gloo
    # worker may still be releasing its last finished collective, whose saved thread
    # state holds a Python object. Should that release wait for the GIL while the
    # interpreter finalises, Python ends the thread from under a C++ destructor and
    # the process aborts ("terminate called without an active exception", SIGABRT;
    # torch's thread, not rnnkern's, seen on a loaded machine). Nothing is left to
    # clean up here, so flush and exit at once.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--nproc", type=int, default=2, help="processes (without torchrun)")
    p.add_argument("--steps", type=int, default=1500)
    p.add_argument("--check", action="store_true",
                   help="compare one step's DDP gradients with a single process, then exit")
    p.add_argument("--quick", action="store_true", help="a short run (the tests')")
    p.add_argument("--backend", choices=("gloo", "nccl"), default="gloo",
                   help="gloo: processes on the CPU (default); nccl: one process per GPU, "
                        "rnnkern's cuda backend")
    p.add_argument("--no-tf32", dest="tf32", action="store_false", default=None,
                   help="with nccl: strict fp32 (torch.backends.cudnn.allow_tf32 = False)")
    args = p.parse_args()
    if args.backend == "nccl":
        if not torch.cuda.is_available() or not dist.is_nccl_available():
            raise SystemExit("--backend nccl needs CUDA GPUs and a PyTorch built with NCCL; "
                             "on the CPU use the default gloo")
        ok, why = rnnkern.backends.cuda_status()
        if not ok:
            raise SystemExit(f"--backend nccl needs rnnkern's cuda backend: {why}")
        if "--nproc" not in sys.argv:
            args.nproc = torch.cuda.device_count()
    if "RANK" in os.environ and "WORLD_SIZE" in os.environ:    # started by torchrun
        rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
        worker(rank, world, args)
        return
    if GLOBAL_BATCH % args.nproc:
        raise SystemExit(f"--nproc must divide the global batch {GLOBAL_BATCH}")
    os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
    os.environ.setdefault("MASTER_PORT", str(free_port()))
    mp.spawn(worker, args=(args.nproc, args), nprocs=args.nproc, join=True)


if __name__ == "__main__":
    main()
