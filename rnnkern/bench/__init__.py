"""rnnkern's benchmark: ``rnnkern-bench`` (= ``python -m rnnkern.bench``).

Check, then time: for every shape x cell x mode, each implementation (every
rnnkern backend, PyTorch's torch.nn.RNN/LSTM/GRU, Keras 3 layers on torch) is
first compared with the float64 reference at the benchmark shape; one that
fails is reported WRONG and not timed. Those that pass are timed interleaved.
See bench/README.md for what every column means.

Modules: shapes (shape sets, FLOP counts), impls (the implementation registry,
weight conversion, the check), timing (threads, interleaved timing, FMA peak),
runner (one run), report (table, JSON, compare, plot), cli (arguments).
"""
from .cli import main

__all__ = ["main"]
