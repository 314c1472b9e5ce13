"""Keras 3's SimpleRNN, LSTM and GRU with their sequence loop on rnnkern's kernels.

Each class subclasses Keras' own and overrides only ``inner_loop`` (what Keras'
``RNN.call`` runs between setting up the initial states and returning outputs
and states), calling the custom operator ``torch.ops.rnnkern.rnn_forward`` with
Keras' weight layout, so Keras' autograd (torch) sees one operator whose
backward is rnnkern's BPTT. Everything else -- arguments, weights, build,
get_config, masks, states, Bidirectional, serialization -- is Keras'.
"""
from __future__ import annotations

import warnings

import keras

from .._common import ACTIVATIONS
from ..options import RnnOptions

_warned = set()


def _activation_name(fn):
    """The rnnkern kernel name of a Keras activation, or None if it is not one."""
    for name in ACTIVATIONS:
        if fn is getattr(keras.activations, name, None):
            return name
    return None


def unsupported_reason(layer, sequences, training):
    """Why rnnkern's kernels cannot run this call of ``layer`` (None: they can)."""
    backend = keras.backend.backend()
    if backend != "torch":
        return (f"rnnkern.keras serves the torch backend only (this is {backend!r}); "
                "set KERAS_BACKEND=torch")
    cell = layer.cell
    if _activation_name(cell.activation) is None:
        return f"activation {cell.activation!r} is not one of rnnkern's {list(ACTIVATIONS)}"
    ract = getattr(cell, "recurrent_activation", None)
    if ract is not None and _activation_name(ract) is None:
        return (f"recurrent_activation {ract!r} is not one of rnnkern's "
                f"{list(ACTIVATIONS)}")
    dtype = str(getattr(sequences, "dtype", ""))
    if dtype not in ("torch.float32", "torch.float64"):
        return f"dtype {dtype}: rnnkern's kernels run float32 (and float64 on the reference)"
    device = getattr(sequences, "device", None)
    if device is not None and device.type == "cuda":
        if getattr(layer, "rnnkern_backend", "auto") not in ("auto", "cuda"):
            return (f"tensors on {device} run on rnnkern's 'cuda' backend, not "
                    f"{layer.rnnkern_backend!r}")
        if dtype != "torch.float32":
            return f"dtype {dtype} on {device}: rnnkern's cuda backend runs float32"
        from .. import backends as _bk
        ok, why = _bk.cuda_status()
        if not ok:
            return f"tensors on {device}: rnnkern's cuda backend is not usable here ({why})"
    elif device is not None and device.type != "cpu":
        return (f"tensors on {device}: rnnkern.keras runs on the CPU and on CUDA devices "
                "(rnnkern's cuda backend)")
    return None


class _RnnkernLoop:
    """The ``inner_loop`` shared by the three layers (a mixin before Keras' class)."""

    _rnnkern_cell = None    # "simple_rnn" | "lstm" | "gru"
    rnnkern_backend = "auto"
    rnnkern_precision = "fp32"   # rnnkern.options.PRECISIONS

    def inner_loop(self, sequences, initial_state, mask, training=False):
        import torch
        from keras import tree
        if tree.is_nested(mask):
            mask = mask[0]
        device = getattr(sequences, "device", None)
        if device is not None and device.type == "meta":
            # Keras infers output shapes on meta tensors (no data, nothing runs):
            # its own loop, without a warning that no real call deserves
            return super().inner_loop(sequences, initial_state, mask, training)
        reason = unsupported_reason(self, sequences, training)
        if reason is not None:
            key = (type(self).__name__, reason)
            if key not in _warned:
                _warned.add(key)
                warnings.warn(f"{type(self).__name__}: running Keras' own loop: {reason}",
                              stacklevel=3)
            return super().inner_loop(sequences, initial_state, mask, training)
        from ..torch import _ops   # registers the operators
        cell = self.cell
        cell_name = self._rnnkern_cell
        lstm = cell_name == "lstm"
        reset_after = bool(getattr(cell, "reset_after", True))
        states = list(initial_state)
        conv = keras.ops.convert_to_tensor
        kernel, recurrent = conv(cell.kernel), conv(cell.recurrent_kernel)
        bias = conv(cell.bias) if cell.use_bias else None
        x = sequences.contiguous()
        h0 = states[0].to(x.dtype)
        c0 = states[1].to(x.dtype) if lstm else None
        m = None if mask is None else mask.to(torch.bool)
        need_grad = torch.is_grad_enabled() and any(
            t is not None and t.requires_grad for t in (x, kernel, recurrent, bias, h0, c0))
        ract = _activation_name(getattr(cell, "recurrent_activation", keras.activations.sigmoid))
        im, rm = self._rnnkern_dropout_masks(x, h0, training)
        options = RnnOptions(cell_name, _activation_name(cell.activation), ract, reset_after,
                             bool(self.go_backwards), True, need_grad, self.rnnkern_precision)
        y, h, c = _ops.run(x, kernel, recurrent, bias, None, h0, c0, m, options,
                           self.rnnkern_backend, True, im, rm)
        if self.zero_output_for_mask and m is not None:
            # Keras: masked steps output zeros (in processing order)
            mp = m.flip(1) if self.go_backwards else m
            y = y * mp.unsqueeze(-1).to(y.dtype)
        last = y[:, -1]
        return last, y, ([h, c] if lstm else [h])

    def _rnnkern_dropout_masks(self, x, h0, training):
        """Keras' own dropout masks of this call, as the kernels take them: [G, N, C]
        and [G, N, H] (None: no dropout). Keras' RNN.call drew them before the loop
        (the cell caches them for every step); they are read back here, exactly
        where Keras' cell would apply them."""
        import torch
        if not training:
            return None, None
        cell = self.cell
        G = {"simple_rnn": 1, "lstm": 4, "gru": 3}[self._rnnkern_cell]

        def per_gate(m):
            if m is None:
                return None
            if isinstance(m, (list, tuple)):   # implementation 1: a mask per gate
                return torch.stack([t.to(x.dtype) for t in m]).contiguous()
            return m.to(x.dtype).unsqueeze(0).expand(G, *m.shape).contiguous()

        def applies(rate):   # Keras' cells: SimpleRNN whenever a mask exists
            return self._rnnkern_cell == "simple_rnn" or 0.0 < rate < 1.0
        im = per_gate(cell.get_dropout_mask(x[:, 0, :])) if applies(cell.dropout) else None
        rm = (per_gate(cell.get_recurrent_dropout_mask(h0))
              if applies(cell.recurrent_dropout) else None)
        return im, rm


def _register(cls):
    return keras.saving.register_keras_serializable(package="rnnkern")(cls)


@_register
class SimpleRNN(_RnnkernLoop, keras.layers.SimpleRNN):
    """keras.layers.SimpleRNN with its loop on rnnkern's kernels."""
    _rnnkern_cell = "simple_rnn"


@_register
class LSTM(_RnnkernLoop, keras.layers.LSTM):
    """keras.layers.LSTM with its loop on rnnkern's kernels."""
    _rnnkern_cell = "lstm"


@_register
class GRU(_RnnkernLoop, keras.layers.GRU):
    """keras.layers.GRU with its loop on rnnkern's kernels."""
    _rnnkern_cell = "gru"
