"""rnnkern.torch under torch.distributed: DistributedDataParallel on 2 gloo
processes on localhost gives the gradients of one process on the same global
batch (examples/ddp_lstm.py --check), started by torch.multiprocessing and by
torchrun."""
import os
import socket
import subprocess
import sys

import pytest

from helpers import child_env

torch = pytest.importorskip("torch")
if not torch.distributed.is_available():   # pragma: no cover
    pytest.skip("torch.distributed is not available", allow_module_level=True)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "examples", "ddp_lstm.py")


def env():
    e = child_env()
    for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        e.pop(k, None)
    return e


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def check_output(cmd):
    out = subprocess.run(cmd, capture_output=True, text=True, env=env(), timeout=300)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-4000:]
    return out.stdout


def test_ddp_gradients_equal_single_process_spawn():
    out = check_output([sys.executable, SCRIPT, "--check", "--nproc", "2"])
    assert "gradients match single-process run on 2 processes" in out, out


def test_ddp_gradients_equal_single_process_torchrun():
    out = check_output([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
                        "--master_addr=127.0.0.1", f"--master_port={free_port()}",
                        SCRIPT, "--check"])
    assert "gradients match single-process run on 2 processes" in out, out


def test_ddp_training_keeps_ranks_in_sync():
    out = check_output([sys.executable, SCRIPT, "--quick", "--nproc", "2"])
    assert "weights identical on every rank: True" in out, out
    assert "test MSE" in out, out


def _gpus_for_nccl():
    from rnnkern import backends as bk
    if not (torch.cuda.is_available() and torch.distributed.is_nccl_available()
            and bk.cuda_status()[0]):
        return 0
    return torch.cuda.device_count()


def test_nccl_without_gpus_is_a_clear_error():
    if _gpus_for_nccl():   # pragma: no cover - a GPU machine runs the next test instead
        pytest.skip("GPUs present")
    out = subprocess.run([sys.executable, SCRIPT, "--check", "--backend", "nccl"],
                         capture_output=True, text=True, env=env(), timeout=300)
    assert out.returncode != 0
    assert "--backend nccl needs" in out.stderr, out.stderr[-2000:]


@pytest.mark.skipif(_gpus_for_nccl() == 0, reason="needs a CUDA GPU, NCCL and the cuda backend")
def test_ddp_nccl_one_process_per_gpu():  # pragma: no cover - needs a GPU
    """With --backend nccl each process takes its local rank's GPU (rnnkern's cuda
    backend) and DDP's gradients over NCCL equal one process's on the same batch."""
    n = _gpus_for_nccl()
    nproc = 2 if n >= 2 else 1
    out = check_output([sys.executable, SCRIPT, "--check", "--backend", "nccl",
                        "--nproc", str(nproc)])
    assert f"gradients match single-process run on {nproc} processes" in out, out
