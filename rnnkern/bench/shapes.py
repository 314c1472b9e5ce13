"""Benchmark shape sets.

Shape legend (as everywhere in rnnkern): T timesteps, N batch, C input features,
H units, G gates (SimpleRNN 1, LSTM 4, GRU 3).

A ``Shape`` may pin the cells and modes it is meant for (DeepBench's problems
are each defined for one cell type and for training or inference); ``None``
means "every requested cell / mode".
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Optional, Tuple

from .._common import GATES  # noqa: F401  (re-exported for the bench modules)
MODES = ("inference", "training")


@dataclass(frozen=True)
class Shape:
    name: str
    T: int
    N: int
    C: int
    H: int
    cells: Optional[Tuple[str, ...]] = None   # None: every requested cell
    modes: Optional[Tuple[str, ...]] = None   # None: every requested mode
    note: str = ""

    @property
    def dims(self):
        return f"T={self.T} N={self.N} C={self.C} H={self.H}"

    def key(self):
        return (self.T, self.N, self.C, self.H)


def forward_flops(cell, T, N, C, H):
    """Matmul FLOPs of one forward: 2*T*N*G*H*(C+H)."""
    return 2 * T * N * GATES[cell] * H * (C + H)


def case_flops(cell, mode, T, N, C, H):
    """Forward (inference) or forward+backward (training = 3x forward)."""
    f = forward_flops(cell, T, N, C, H)
    return 3 * f if mode == "training" else f


DEFAULT = (
    Shape("S1", 100, 1, 32, 128, note="latency: one sequence"),
    Shape("S2", 100, 32, 64, 256),
    Shape("S3", 50, 64, 256, 512),
    Shape("S4", 30, 16, 10, 1000),
)

QUICK = (
    Shape("Q1", 20, 1, 16, 64),
    Shape("Q2", 20, 16, 32, 128),
)

# --------------------------------------------------------------------------
# DeepBench (baidu-research/DeepBench, code/kernels/rnn_problems.h):
# (hidden units, batch size, timesteps, cell) for the training set and the
# server / device inference sets. DeepBench's RNN benchmark feeds an input of
# the hidden size (x is hidden_size x batch*timesteps), so C = H here.
# --------------------------------------------------------------------------
_DB_TRAINING = [
    (1760, 16, 50, "vanilla"), (1760, 32, 50, "vanilla"), (1760, 64, 50, "vanilla"),
    (1760, 128, 50, "vanilla"), (2048, 16, 50, "vanilla"), (2048, 32, 50, "vanilla"),
    (2048, 64, 50, "vanilla"), (2048, 128, 50, "vanilla"), (2560, 16, 50, "vanilla"),
    (2560, 32, 50, "vanilla"), (2560, 64, 50, "vanilla"), (2560, 128, 50, "vanilla"),
    (512, 16, 25, "lstm"), (512, 32, 25, "lstm"), (512, 64, 25, "lstm"),
    (512, 128, 25, "lstm"), (1024, 16, 25, "lstm"), (1024, 32, 25, "lstm"),
    (1024, 64, 25, "lstm"), (1024, 128, 25, "lstm"), (2048, 16, 25, "lstm"),
    (2048, 32, 25, "lstm"), (2048, 64, 25, "lstm"), (2048, 128, 25, "lstm"),
    (4096, 16, 25, "lstm"), (4096, 32, 25, "lstm"), (4096, 64, 25, "lstm"),
    (4096, 128, 25, "lstm"), (1536, 8, 50, "lstm"), (1536, 16, 50, "lstm"),
    (1536, 32, 50, "lstm"), (256, 16, 150, "lstm"), (256, 32, 150, "lstm"),
    (256, 64, 150, "lstm"),
    (2816, 32, 750, "gru"), (2816, 32, 375, "gru"), (2816, 32, 187, "gru"),
    (2048, 32, 1500, "gru"), (2048, 32, 750, "gru"), (2048, 32, 375, "gru"),
    (2048, 32, 187, "gru"), (1536, 32, 1500, "gru"), (1536, 32, 750, "gru"),
    (1536, 32, 375, "gru"), (1536, 32, 187, "gru"), (2560, 32, 1500, "gru"),
    (2560, 32, 750, "gru"), (2560, 32, 375, "gru"), (2560, 32, 187, "gru"),
    (512, 32, 1, "gru"), (1024, 32, 1500, "gru"), (1024, 64, 1500, "gru"),
]


def _db_server_inference():
    out = []
    for h, t in ((512, 25), (1024, 25), (2048, 25), (1536, 50), (256, 150)):
        out += [(h, n, t, "lstm") for n in (1, 2, 4)]
    for h in (2816, 2048, 1536, 2560):
        out += [(h, n, t, "gru") for n in (1, 2, 4) for t in (1500, 750, 375, 187)]
    out += [(512, n, 1, "gru") for n in (1, 2, 4)]
    out += [(1024, n, 1500, "gru") for n in (1, 2, 4)]
    return out


_DB_INFERENCE_SERVER = _db_server_inference()
_DB_INFERENCE_DEVICE = [(32, 1, 672, "vanilla"), (64, 1, 96, "vanilla"), (256, 1, 150, "lstm")]
_DB_CELL = {"vanilla": "simple_rnn", "lstm": "lstm", "gru": "gru"}

# What "fits a few minutes" on a small CPU machine: the float64 reference that
# checks every implementation costs ~1 s per 2-5 GFLOP, so the DeepBench set
# keeps the problems under these matmul-FLOP budgets (``--max-gflop`` raises them).
DEEPBENCH_MAX_GFLOP = {"training": 16.0, "inference": 2.0}


def _estimate_bytes(cell, T, N, C, H):
    """Rough peak memory of one case: the float64 reference's saved per-step
    tensors (the biggest consumer), plus float32 inputs, outputs and caches."""
    g = GATES[cell]
    ref = 8 * T * N * H * (g + 6) + 8 * T * N * C * 2 + 8 * (C + H) * g * H * 3
    f32 = 4 * T * N * (C * 2 + H * (g + 4)) + 4 * (C + H) * g * H * 3
    return ref + 3 * f32


def deepbench(max_gflop=None, max_bytes=None):
    """The DeepBench RNN problems whose FLOPs and memory fit the budgets."""
    budget = dict(DEEPBENCH_MAX_GFLOP)
    if max_gflop is not None:
        budget = {"training": float(max_gflop), "inference": float(max_gflop)}
    shapes, seen = [], set()
    sets = [("training", "train", _DB_TRAINING),
            ("inference", "server", _DB_INFERENCE_SERVER),
            ("inference", "device", _DB_INFERENCE_DEVICE)]
    for mode, tag, problems in sets:
        for h, n, t, kind in problems:
            cell = _DB_CELL[kind]
            if case_flops(cell, mode, t, n, h, h) / 1e9 > budget[mode]:
                continue
            if max_bytes is not None and _estimate_bytes(cell, t, n, h, h) > max_bytes:
                continue
            key = (mode, cell, t, n, h)
            if key in seen:        # the device set repeats one server problem
                continue
            seen.add(key)
            name = f"DB-{tag}-{kind}-H{h}-N{n}-T{t}"
            shapes.append(Shape(name, t, n, h, h, cells=(cell,), modes=(mode,),
                                note=f"DeepBench {tag}"))
    return tuple(shapes)


def all_deepbench_count():
    return len(_DB_TRAINING) + len(_DB_INFERENCE_SERVER) + len(_DB_INFERENCE_DEVICE)


_CUSTOM = re.compile(r"^\s*(\d+)\s*,\s*(\d+)\s*,\s*(\d+)\s*,\s*(\d+)\s*$")


def parse_shape(text, index=0):
    """``T,N,C,H`` -> Shape; raises ValueError with the expected form."""
    m = _CUSTOM.match(text)
    if not m:
        raise ValueError(f"shape {text!r}: expected T,N,C,H (four positive integers), "
                         f"or one of the sets default, quick, deepbench")
    T, N, C, H = (int(v) for v in m.groups())
    if min(T, N, C, H) < 1:
        raise ValueError(f"shape {text!r}: T, N, C, H must all be >= 1")
    return Shape(f"T{T}N{N}C{C}H{H}", T, N, C, H, note="custom")


def resolve(specs, *, max_gflop=None, max_bytes=None):
    """A list of set names / custom T,N,C,H strings -> tuple of Shapes (in order, no repeats)."""
    out, seen = [], set()
    for i, spec in enumerate(specs):
        s = spec.strip().lower()
        if s == "default":
            group = DEFAULT
        elif s == "quick":
            group = QUICK
        elif s == "deepbench":
            group = deepbench(max_gflop=max_gflop, max_bytes=max_bytes)
        else:
            group = (parse_shape(spec, i),)
        for sh in group:
            k = (sh.name, sh.key(), sh.cells, sh.modes)
            if k not in seen:
                seen.add(k)
                out.append(sh)
    return tuple(out)
