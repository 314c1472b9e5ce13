"""Stacked recurrent layers as a wavefront (inference).

In a model, a chain of recurrent layers -- each one's whole output sequence the
next one's only input, as in ``LSTM(return_sequences=True)`` then ``LSTM`` -- runs
in inference (``predict``, ``evaluate``, ``training=False`` calls) as a pipeline
over blocks of steps: layer l works on block b while layer l+1 works on block
b - 1, each on its own thread with its share of the threads
(``rnnkern.backends.run_together``), instead of one layer after the other on all
of them. Each layer then meets its per-step barrier among fewer threads (none on
one), and the layers overlap except for the first and last block.

The results are bitwise those of the layers one after the other: a layer's
kernel call over a block, started from the states the previous block ended
with, computes every step exactly as one call over the whole sequence (the
kernels' results do not depend on the thread count or on where a call starts),
except for masked steps before the block's first unmasked step, which a call
outputs as zeros (Keras: a masked step repeats the previous output of the call,
zeros before any) and which here repeat the previous block's last output, as in
the call over the whole sequence.

Opt-in (``rnnkern.set_layer_concurrency(True, wavefront=True)``): measured on a
quiet 2-core machine it was slower than the layers one after the other on both
threads (0.75-1.0x at S1, S2 and notebook sizes: a layer on two threads already
runs 1.75x one thread, and the blocks' hand-offs cost), and faster only on a
loaded one (1.9-3.2x at S2, where a layer's per-step barrier waits for a
descheduled thread): bench/results/beside.txt. Where on: compiled CPU kernels,
at least one thread a layer, enough work (``rnnkern.backends.beside_shares``).
Training calls run the layers one after the other (their backward needs each
layer's whole workspace).
"""
from __future__ import annotations

import queue

import numpy as np

from .. import backends as _backends
from .._common import GATES
from ..layers.base import KerasTensor

# A pipeline of L layers over B blocks is busy (B / (B + L - 1)) of the time;
# more blocks overlap more but make more, shorter kernel calls.
BLOCKS = 8
MIN_BLOCK_STEPS = 4

_STOP = object()     # an upstream stage failed: the downstream ones stop


def _is_rnn(layer):
    return type(getattr(layer, "_cell", None)) is str


def _plain_call(node):
    """A recurrent layer called on one tensor, its mask the tensor's own, no
    initial state, training left to the model (or False), one output."""
    if not _is_rnn(node.operation):
        return False
    layer = node.operation
    if layer.stateful or layer.return_state or len(node.output_tensors) != 1:
        return False
    if len(node.call_args) != 1 or not isinstance(node.call_args[0], KerasTensor):
        return False
    if node.mask_tensors:
        return False
    for k, v in node.call_kwargs.items():
        if k in ("mask", "initial_state") and v is None:
            continue
        if k == "training" and v in (None, False):
            continue
        return False
    return True


def _find_chains(graph):
    """{head node: [nodes of the chain]} of the graph's chains of two or more."""
    uses = {}
    for node in graph._exec_nodes:
        for t in node.input_tensors + node.mask_tensors:
            uses.setdefault(id(t), []).append(node)
    outputs = {id(t) for t in graph._outputs}
    succ, has_pred = {}, set()
    for node in graph._exec_nodes:
        if not _plain_call(node) or not node.operation.return_sequences:
            continue
        out = node.output_tensors[0]
        consumers = uses.get(id(out), [])
        if id(out) in outputs or len(consumers) != 1:
            continue
        nxt = consumers[0]
        if _plain_call(nxt) and not nxt.operation.go_backwards \
                and nxt.call_args[0] is out:
            succ[id(node)] = nxt
            has_pred.add(id(nxt))
    chains = {}
    for node in graph._exec_nodes:
        if id(node) in succ and id(node) not in has_pred:
            chain, seen = [node], {id(node.operation)}
            while id(chain[-1]) in succ:
                nxt = succ[id(chain[-1])]
                if id(nxt.operation) in seen:    # a layer twice: never two calls at once
                    break
                seen.add(id(nxt.operation))
                chain.append(nxt)
            if len(chain) >= 2:
                chains[id(node)] = chain
    return chains


def chains_of(graph):
    """The graph's chains, found once per graph (its nodes never change)."""
    cached = graph.__dict__.get("_wavefront_chains")
    nodes = graph._exec_nodes
    if cached is None or len(cached[0]) != len(nodes) or \
            any(a is not b for a, b in zip(cached[0], nodes)):
        cached = (list(nodes), _find_chains(graph))
        graph.__dict__["_wavefront_chains"] = cached
    return cached[1]


def _blocks(t, parties):
    size = max(MIN_BLOCK_STEPS, -(-t // BLOCKS))
    bounds = [(a, min(a + size, t)) for a in range(0, t, size)]
    return bounds if len(bounds) >= parties else None


def run(chain, values, masks):
    """Runs the chain's first layers as a wavefront where that can gain: sets the
    value (and mask) of the last one's output as the model's node-by-node run
    would, and returns how many nodes it ran (0: none, run them one by one)."""
    layers = [node.operation for node in chain]
    if not _backends._wavefront or not all(layer.built for layer in layers):
        return 0
    src = chain[0].call_args[0]
    x = values.get(id(src))
    in_mask = masks.get(id(src))
    head = layers[0]
    try:
        x = head._standardize(x)
        if not isinstance(x, np.ndarray) or x.ndim != 3 or x.dtype != np.float32:
            return 0
        n, t, c = x.shape
        head._check_input_shape(x.shape)
        mask = head._check_mask(in_mask, n, t)
    except (ValueError, TypeError):
        return 0          # the node-by-node run raises its own, clear error
    if n == 0:
        return 0
    work = t * sum(n * GATES[l._cell] * l.units * (l.kernel.shape[0] + l.units)
                   for l in layers)
    nt = _backends.get_num_threads() if _backends._num_threads is None \
        else _backends._num_threads
    layers = layers[:max(2, min(len(layers), nt))]
    shares = _backends.beside_shares([l._backend for l in layers], work, len(layers))
    bounds = None if shares is None else _blocks(t, len(layers))
    if bounds is None:
        return 0
    k = len(layers)
    pipes = [queue.SimpleQueue() for _ in range(k - 1)]
    tail = layers[-1]

    def stage(i):
        layer = layers[i]
        backwards = i == 0 and layer.go_backwards
        states = prev = None
        outs = []
        try:
            for a, b in bounds:
                lo, hi = (t - b, t - a) if backwards else (a, b)
                if i == 0:
                    xs = np.ascontiguousarray(x[:, lo:hi])
                else:
                    xs = pipes[i - 1].get()
                    if xs is _STOP:
                        return _STOP
                ms = None if mask is None else np.ascontiguousarray(mask[:, lo:hi])
                y, states = layer._infer_steps(xs, ms, states)
                if ms is not None:
                    mp = ms[:, ::-1] if backwards else ms      # in processing order
                    if prev is not None:
                        # masked steps before this block's first unmasked one repeat
                        # the previous block's last output
                        lead = ~np.logical_or.accumulate(mp, axis=1)
                        if lead.any():
                            y = np.where(lead[:, :, None], prev[:, None, :], y)
                    prev = y[:, -1]
                    if layer.zero_output_for_mask:
                        y = y * mp[:, :, None]
                if i < k - 1:
                    pipes[i].put(y)
                else:
                    outs.append(y)
        except BaseException:
            if i < k - 1:
                pipes[i].put(_STOP)
            raise
        if i < k - 1:
            return None
        if tail.return_sequences:
            return np.concatenate(outs, axis=1)
        return np.ascontiguousarray(outs[-1][:, -1])

    results = _backends.run_together(shares, [lambda i=i: stage(i) for i in range(k)])
    y = results[-1]
    if y is _STOP:      # cannot be: an upstream exception was raised above
        raise RuntimeError("rnnkern wavefront: a stage stopped without an error")
    out = chain[k - 1].output_tensors[0]
    values[id(out)] = y
    m = tail.compute_mask(x, in_mask)
    if m is not None:
        masks[id(out)] = m
    return k
