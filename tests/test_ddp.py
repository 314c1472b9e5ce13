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
