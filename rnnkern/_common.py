"""Shared types and constants of the recurrent kernels (a leaf module: it
imports nothing of rnnkern's, so every other module may import it).

Shape legend, used everywhere in rnnkern:

    N  batch          T  timesteps        C  input features
    H  units          G  gates: SimpleRNN 1, LSTM 4 (i, f, c, o), GRU 3 (z, r, h)

The NumPy reference (``rnnkern.reference``) keeps its own copy of these on
purpose: the oracle shares no code with what it checks.
"""
from __future__ import annotations

from collections import namedtuple

#: The three cells, by the names the kernels and ``rnnkern.ops`` use.
CELLS = ("simple_rnn", "lstm", "gru")
#: Gates per cell (G).
GATES = {"simple_rnn": 1, "lstm": 4, "gru": 3}
#: States per cell: [h] or [h, c].
N_STATES = {"simple_rnn": 1, "lstm": 2, "gru": 1}
#: The activations the recurrent kernels implement (``activation`` and
#: ``recurrent_activation`` of the recurrent layers).
ACTIVATIONS = ("tanh", "relu", "sigmoid", "hard_sigmoid", "linear")

#: What ``rnn_backward`` returns: dx [N,T,C], dkernel, drecurrent_kernel,
#: dbias (the bias' shape, or None), dh0 [N,H], dc0 [N,H] or None.
Grads = namedtuple("Grads", ["dx", "dkernel", "drecurrent_kernel", "dbias", "dh0", "dc0"])
