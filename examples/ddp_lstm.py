"""Data-parallel training of an rnnkern.torch LSTM with PyTorch's
DistributedDataParallel: each process runs rnnkern's kernels on its shard of
every global batch, and DDP averages the gradients (gloo, over TCP) -- rnnkern
adds nothing to the engine; its modules are plain torch.nn modules.

The task is the adding problem (Hochreiter & Schmidhuber): a sequence of random
values and a marker channel with two ones; the target is the sum of the two
marked values. Predicting the mean scores MSE ~0.167; an LSTM learns far lower.

    python examples/ddp_lstm.py                    # 2 processes on this machine
    python examples/ddp_lstm.py --nproc 4
    torchrun --nproc_per_node=2 examples/ddp_lstm.py
    python examples/ddp_lstm.py --check            # gradients vs one process, then exit

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


def check(rank, world, model):
    """One step's gradients under DDP against one process on the same global batch."""
    x, y = adding_batch(GLOBAL_BATCH, torch.Generator().manual_seed(1))
    ddp = DDP(model)
    loss = torch.nn.functional.mse_loss(ddp(shard(x, rank, world)), shard(y, rank, world))
    loss.backward()      # DDP all-reduces: every rank now holds the global-batch mean
    if rank == 0:
        torch.manual_seed(0)
        single = Adder()             # the same initial weights (same seed)
        torch.nn.functional.mse_loss(single(x), y).backward()
        worst = 0.0
        for (name, p), q in zip(single.named_parameters(), model.parameters()):
            diff = (p.grad - q.grad).abs().max().item()
            worst = max(worst, diff / max(p.grad.abs().max().item(), 1e-12))
            if not torch.allclose(q.grad, p.grad, atol=1e-6, rtol=1e-4):
                raise SystemExit(f"gradient of {name} differs from one process: {diff:.3g}")
        print(f"gradients match single-process run on {world} processes "
              f"(largest relative difference {worst:.2e})")


def train(rank, world, args):
    torch.set_num_threads(1)          # one core per process
    rnnkern.set_num_threads(1)
    torch.manual_seed(0)              # the same initial weights on every rank
    model = Adder()
    if args.check:
        return check(rank, world, model)
    ddp = DDP(model)
    opt = torch.optim.Adam(ddp.parameters(), lr=1e-2)
    gen = torch.Generator().manual_seed(100)       # the same global batches everywhere
    steps = 60 if args.quick else args.steps
    t0 = time.perf_counter()
    for step in range(1, steps + 1):
        x, y = adding_batch(GLOBAL_BATCH, gen)
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(ddp(shard(x, rank, world)), shard(y, rank, world))
        loss.backward()
        opt.step()
        if rank == 0 and (step % max(1, steps // 5) == 0 or step == steps):
            print(f"step {step:4d}  loss {loss.item():.4f}", flush=True)
    if rank == 0:
        xt, yt = adding_batch(512, torch.Generator().manual_seed(7))
        with torch.no_grad():
            mse = torch.nn.functional.mse_loss(model(xt), yt).item()
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
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        train(rank, world, args)
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
    args = p.parse_args()
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
