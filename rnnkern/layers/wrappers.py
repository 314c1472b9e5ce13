"""Wrappers: TimeDistributed and Bidirectional (Keras 3's
keras/src/layers/rnn/{time_distributed,bidirectional}.py).

TimeDistributed applies one layer, with one set of weights, to every step of
a [N, T, ...] input: the steps are folded into the batch ([N*T, ...]), so the
wrapped layer runs once and its weight gradients come out summed over the
steps.

Bidirectional runs a copy of a recurrent layer forward and another with
``go_backwards`` (or the given ``backward_layer``) and merges their outputs:
``concat`` (default), ``sum``, ``ave``, ``mul`` or None (both returned).
The two directions run at once on CPU threads where that gains
(``rnnkern.backends.run_beside``: each on half the threads, bitwise the results of
one after the other; ``rnnkern.set_layer_concurrency(False)`` turns it off).
Weights: the forward layer's, then the backward layer's (Keras' order);
returned states: the forward layer's, then the backward layer's. With
return_sequences, masked steps output zeros (Keras forces
``zero_output_for_mask`` there).
"""
from __future__ import annotations

import numpy as np

from .. import backends as _backends
from .._common import GATES
from ..utils.registry import deserialize_layer, serialize_layer
from ..utils.tree import flatten
from .base import Layer, check_training, format_shape, grad_or_zeros

__all__ = ["TimeDistributed", "Bidirectional"]


class _Wrapper(Layer):
    def __init__(self, layer, **kwargs):
        if not isinstance(layer, Layer):
            raise ValueError(f"Please initialize `{type(self).__name__}` layer with a "
                             f"`rnnkern.layers.Layer` instance. Received: {layer!r}")
        super().__init__(**kwargs)


class TimeDistributed(_Wrapper):
    """Applies ``layer`` to every temporal slice of an input [N, T, ...]:
    outputs [N, T, ...layer's output]. One set of weights for all steps;
    gradients summed over the steps."""

    _call_args = ("training", "mask")
    _call_has_mask_arg = True
    _supports_masking = True

    def __init__(self, layer, **kwargs):
        super().__init__(layer, **kwargs)
        self.layer = layer

    def _sublayers(self):
        return [self.layer]

    def _child_shape(self, input_shape):
        shape = tuple(input_shape)
        if len(shape) < 3:
            raise ValueError("`TimeDistributed` Layer should be passed an `input_shape` with "
                             f"at least 3 dimensions, received: {format_shape(shape)}")
        n, t = shape[0], shape[1]
        return ((None if n is None or t is None else n * t),) + shape[2:]

    def _check_input_shape(self, input_shape):
        child = self._child_shape(input_shape)
        if self.layer.built:
            self.layer._check_input_shape(child)

    def build(self, input_shape):
        child = self._child_shape(input_shape)
        if not self.layer.built:
            self.layer.build(child)
            self.layer.built = True
        else:
            self.layer._check_input_shape(child)
        self._build_shapes = tuple(input_shape)
        self.built = True

    def _build_from_weights(self, weights):
        self.layer._build_from_weights(weights)
        self.built = self.layer.built

    def compute_output_shape(self, input_shape):
        child_out = self.layer.compute_output_shape(self._child_shape(input_shape))
        return (input_shape[0], input_shape[1]) + tuple(child_out[1:])

    def _standardize(self, x):
        a = np.asarray(x)
        if a.ndim < 3:
            raise ValueError("TimeDistributed expects inputs of shape (batch, timesteps, ...), "
                             f"got shape {a.shape}")
        return a

    def forward(self, x, training=None, mask=None):
        n, t = x.shape[:2]
        xi = self.layer._standardize(x.reshape((n * t,) + x.shape[2:]))
        kw = {}
        if self.layer._call_has_mask_arg and mask is not None and np.ndim(mask) > 2:
            kw["mask"] = np.reshape(mask, (n * t,) + np.shape(mask)[2:])
        y, ctx = self.layer.forward(xi, training=training, **kw)
        return y.reshape((n, t) + y.shape[1:]), ((ctx, n, t, x.shape)
                                                  if training is not False else None)

    def backward_from(self, ctx, dy):
        cctx, n, t, x_shape = ctx
        if dy is not None:
            dy = np.asarray(dy)
            dy = dy.reshape((n * t,) + dy.shape[2:])
        dx, grads = self.layer.backward_from(cctx, dy)
        if dx is not None:
            dx = dx.reshape(x_shape)
        return dx, grads

    def get_config(self):
        cfg = super().get_config()
        cfg["layer"] = serialize_layer(self.layer)
        return cfg

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["layer"] = deserialize_layer(config["layer"])
        return cls(**config)


_MERGE_MODES = ("sum", "mul", "ave", "concat", None)


class Bidirectional(_Wrapper):
    """Bidirectional wrapper of a recurrent layer (Keras' Bidirectional).

    ``Bidirectional(layer, merge_mode="concat", weights=None,
    backward_layer=None)``: the forward layer is a copy of ``layer`` named
    ``forward_<name>``; the backward layer, unless given, a copy with
    ``go_backwards=True`` named ``backward_<name>`` (fresh weights, as Keras).
    Call it as the recurrent layer (``initial_state``: the forward layer's
    states, then the backward layer's).
    """

    _call_args = ("initial_state", "mask", "training")
    _tensor_kwargs = ("initial_state",)
    _call_has_mask_arg = True
    _supports_masking = True

    def __init__(self, layer, merge_mode="concat", weights=None, backward_layer=None,
                 **kwargs):
        if backward_layer is not None and not isinstance(backward_layer, Layer):
            raise ValueError("`backward_layer` need to be a `rnnkern.layers.Layer` instance. "
                             f"Received: {backward_layer!r}")
        if merge_mode not in _MERGE_MODES:
            raise ValueError(f"Invalid merge mode. Received: {merge_mode!r}. Merge mode should "
                             'be one of {"sum", "mul", "ave", "concat", None}')
        super().__init__(layer, **kwargs)
        self.forward_layer = self._copy(layer, "forward_", {})
        if backward_layer is None:
            overrides = {"go_backwards": not layer.go_backwards}
            if "seed" in layer.get_config():     # RNN(cell): the seed is the cell's
                seed = getattr(layer, "seed", None)
                overrides["seed"] = None if seed is None else seed + 1
            self.backward_layer = self._copy(layer, "backward_", overrides)
        else:
            self.backward_layer = backward_layer
        self._verify_layer_config()
        for sub in (self.forward_layer, self.backward_layer):
            if hasattr(sub, "zero_output_for_mask"):
                sub.zero_output_for_mask = sub.return_sequences
        self.merge_mode = merge_mode
        self.stateful = layer.stateful
        self.return_sequences = layer.return_sequences
        self.return_state = layer.return_state
        if weights:
            self.set_weights(weights)

    @staticmethod
    def _copy(layer, prefix, overrides):
        cfg = layer.get_config()
        name = layer.name
        cfg["name"] = prefix + (name[len(prefix):] if name.startswith(prefix) else name)
        cfg.update(overrides)
        copy = type(layer).from_config(cfg)
        if hasattr(layer, "backend"):
            copy.backend = layer.backend
        return copy

    def _verify_layer_config(self):
        f, b = self.forward_layer, self.backward_layer
        if f.go_backwards == b.go_backwards:
            raise ValueError("Forward layer and backward layer should have different "
                             "`go_backwards` value. Received: forward_layer.go_backwards "
                             f"{f.go_backwards}, backward_layer.go_backwards={b.go_backwards}")
        for a in ("stateful", "return_sequences", "return_state"):
            if getattr(f, a) != getattr(b, a):
                raise ValueError(f"Forward layer and backward layer are expected to have the "
                                 f'same value for attribute "{a}", got "{getattr(f, a)}" for '
                                 f'forward layer and "{getattr(b, a)}" for backward layer')

    def _sublayers(self):
        return [self.forward_layer, self.backward_layer]

    @property
    def _n_states(self):
        size = self.forward_layer.state_size      # a stack of cells: nested sizes
        return len(flatten(size)) if isinstance(size, (list, tuple)) else 1

    def _check_input_shape(self, input_shape):
        for sub in self._sublayers():
            sub._check_input_shape(input_shape)

    def build(self, input_shape, initial_state_shape=None):
        for sub in self._sublayers():
            if not sub.built:
                sub.build(input_shape)
        self._build_shapes = tuple(input_shape)
        self.built = True

    def _build_from_weights(self, weights):
        k = len(weights) // 2
        self.forward_layer.set_weights(weights[:k])
        self.backward_layer.set_weights(weights[k:])
        self.built = True

    def compute_output_shape(self, input_shape, initial_state_shape=None):
        out = self.forward_layer.compute_output_shape(input_shape)
        states = []
        if self.return_state:
            out, states = out[0], list(out[1:])
        if self.merge_mode == "concat":
            out = tuple(out[:-1]) + (None if out[-1] is None else 2 * out[-1],)
            outs = [out]
        elif self.merge_mode is None:
            outs = [out, out]
        else:
            outs = [out]
        if self.return_state:
            return outs + states + states
        return outs[0] if len(outs) == 1 else outs

    def compute_mask(self, inputs, mask=None):
        if isinstance(mask, (list, tuple)):
            mask = mask[0]
        out = [mask if self.return_sequences else None] * (1 if self.merge_mode else 2)
        if self.return_state:
            return out + [None] * (2 * self._n_states)
        return out[0] if len(out) == 1 else out

    @property
    def states(self):
        f, b = self.forward_layer.states, self.backward_layer.states
        return None if f is None or b is None else f + b

    def reset_states(self):
        if not self.stateful:
            raise AttributeError("Layer must be stateful.")
        self.forward_layer.reset_states()
        self.backward_layer.reset_states()

    reset_state = reset_states

    @property
    def state_grads(self):
        return getattr(self._tls, "state_grads", None)

    def _standardize(self, x):
        return self.forward_layer._standardize(x)

    def forward(self, x, training=None, mask=None, initial_state=None):
        training = check_training(training)
        fs = bs = None
        if initial_state is not None:
            if not isinstance(initial_state, (list, tuple)):
                raise ValueError(f"initial_state of Bidirectional layer {self.name!r} must be a "
                                 f"list of {2 * self._n_states} arrays (the forward layer's "
                                 "states, then the backward layer's)")
            half = len(initial_state) // 2
            fs, bs = list(initial_state[:half]), list(initial_state[half:])
        shares = self._beside(x.shape)
        (fo, fctx), (bo, bctx) = _backends.run_beside(
            shares,
            lambda: self.forward_layer.forward(x, training=training, mask=mask,
                                               initial_state=fs),
            lambda: self.backward_layer.forward(x, training=training, mask=mask,
                                                initial_state=bs))
        f_states = b_states = []
        if self.return_state:
            fo, f_states = fo[0], fo[1:]
            bo, b_states = bo[0], bo[1:]
        if self.return_sequences:
            bo = bo[:, ::-1]
        if self.merge_mode == "concat":
            out = [np.concatenate([fo, bo], axis=-1)]
        elif self.merge_mode == "sum":
            out = [fo + bo]
        elif self.merge_mode == "ave":
            out = [(fo + bo) / 2]
        elif self.merge_mode == "mul":
            out = [fo * bo]
        else:
            out = [fo, np.ascontiguousarray(bo)]
        if self.return_state:
            outputs = out + list(f_states) + list(b_states)
        else:
            outputs = out[0] if len(out) == 1 else out
        ctx = None
        if training is not False:
            ctx = (fctx, bctx, fo, bo, initial_state is not None, x.shape)
        return outputs, ctx

    def _beside(self, x_shape, backward=False):
        """The thread shares of the two directions run side by side
        (backends.beside_shares), or None: one after the other."""
        subs = self._sublayers()
        if not all(type(getattr(s, "_cell", None)) is str for s in subs):
            return None     # a recurrent layer of the user's: its own affairs
        n, t, c = x_shape
        work = sum(t * n * GATES[s._cell] * s.units * (c + s.units) for s in subs)
        work *= 2 if backward else 1
        return _backends.beside_shares([s._backend for s in subs], work)

    def _split(self, d_outputs):
        """(d of the merged output(s), d of the forward states, d of the backward
        states) from the structure of the outputs."""
        k = self._n_states
        n_out = 1 if self.merge_mode else 2
        if self.return_state:
            d = list(d_outputs)
            return d[:n_out], d[n_out:n_out + k], d[n_out + k:]
        if n_out == 2:
            return list(d_outputs), [None] * k, [None] * k
        return [d_outputs], [None] * k, [None] * k

    def backward_from(self, ctx, d_outputs):
        fctx, bctx, fo, bo, given, _ = ctx
        d_out, dfs, dbs = self._split(d_outputs)
        h = fo.shape[-1]
        if self.merge_mode is None:
            dfo = grad_or_zeros(d_out[0], fo.shape)
            dbo = grad_or_zeros(d_out[1], bo.shape)
        elif self.merge_mode == "concat":
            dy = grad_or_zeros(d_out[0], fo.shape[:-1] + (2 * h,))
            dfo, dbo = dy[..., :h], dy[..., h:]
        else:
            dy = grad_or_zeros(d_out[0], fo.shape)
            if self.merge_mode == "sum":
                dfo, dbo = dy, dy
            elif self.merge_mode == "ave":
                dfo = dbo = dy / 2
            else:  # mul
                dfo, dbo = dy * bo, dy * fo
        if self.return_sequences:
            dbo = dbo[:, ::-1]
        dfo, dbo = np.ascontiguousarray(dfo), np.ascontiguousarray(dbo)
        f_d = [dfo] + list(dfs) if self.return_state else dfo
        b_d = [dbo] + list(dbs) if self.return_state else dbo
        (df, gf), (db, gb) = _backends.run_beside(
            self._beside(ctx[5], backward=True),
            lambda: self.forward_layer.backward_from(fctx, f_d),
            lambda: self.backward_layer.backward_from(bctx, b_d))
        if given:
            dx = df[0] + db[0]
            return [dx] + list(df[1:]) + list(db[1:]), gf + gb
        return df + db, gf + gb

    def backward(self, d_output, d_states=None):
        """Backpropagate this thread's last call, as the recurrent layers:
        ``d_output`` has the (merged) output's structure; ``d_states`` (optional)
        aligns with the returned states (forward's, then backward's). Returns dx;
        replaces ``grads`` and ``state_grads``."""
        ctx = self._last_ctx()
        k = self._n_states
        if self.return_state:
            outs = list(d_output) if self.merge_mode is None else [d_output]
            ds = list(d_states) if d_states is not None else [None] * (2 * k)
            if len(ds) != 2 * k:
                raise ValueError(f"d_states must be a list of {2 * k} entries aligned with the "
                                 f"states, got {len(ds)}")
            d_outputs = outs + ds
        else:
            if d_states is not None:
                raise ValueError("d_states needs return_state=True on a Bidirectional layer")
            d_outputs = d_output
        d_inputs, grads = self.backward_from(ctx, d_outputs)
        self._tls.grads = grads
        if ctx[4]:
            self._tls.state_grads = d_inputs[1:]
            return d_inputs[0]
        self._tls.state_grads = None
        return d_inputs

    def get_config(self):
        cfg = super().get_config()
        cfg.update(merge_mode=self.merge_mode, layer=serialize_layer(self.forward_layer),
                   backward_layer=serialize_layer(self.backward_layer))
        return cfg

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["layer"] = deserialize_layer(config["layer"])
        if config.get("backward_layer") is not None:
            config["backward_layer"] = deserialize_layer(config["backward_layer"])
        return cls(**config)
