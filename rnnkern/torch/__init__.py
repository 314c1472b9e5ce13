"""rnnkern as PyTorch's recurrent layers: ``rnnkern.torch.RNN``, ``LSTM``, ``GRU``
are torch.nn's drop-ins (same constructor, parameters, state_dict, inputs and
outputs) running forward and BPTT on rnnkern's kernels, through the custom
operators ``torch.ops.rnnkern.rnn_forward`` / ``rnn_backward`` (so
``torch.compile(fullgraph=True)`` traces them without a graph break).

Needs PyTorch (``pip install rnnkern[torch]``); nothing else of rnnkern imports it.
"""
try:
    import torch  # noqa: F401
except ImportError as e:   # pragma: no cover - depends on the environment
    raise ImportError("rnnkern.torch needs PyTorch: pip install torch") from e

from . import _weights  # noqa: E402
from ._ops import live_workspaces, rnn_backward, rnn_forward  # noqa: E402
from ._weights import grads_to_torch, to_keras, to_torch  # noqa: E402
from .modules import GRU, LSTM, RNN, RNNBase  # noqa: E402

__all__ = ["RNN", "LSTM", "GRU", "RNNBase", "rnn_forward", "rnn_backward", "to_keras",
           "to_torch", "grads_to_torch", "live_workspaces", "_weights"]
