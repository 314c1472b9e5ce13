"""Keras 3's attention layers over sequences, in NumPy: ``Attention`` (Luong-
style: dot-product or "concat" scores) and ``AdditiveAttention`` (Bahdanau-
style), as keras/src/layers/attention/{attention,additive_attention}.py.

Shapes: ``query`` [N, Tq, dim], ``value`` [N, Tv, dim_v], ``key`` [N, Tv, dim]
(``value`` when not given); any leading axes before the last two act as batch
axes. Per call::

    scores  [N, Tq, Tv]  dot:      q @ k^T                 (* scale)
                         concat:   c * sum_d tanh(q_i + k_j)   (scale inside the tanh)
                         additive: sum_d scale_d tanh(q_i + k_j)
    masked: scores - 1e9 where the value mask (and/or the causal mask) is False
    weights = softmax(scores, axis=-1), dropped out with training=True
    output  = weights @ value  [N, Tq, dim_v], zero where the query mask is False

Call: ``layer([query, value])`` or ``layer([query, value, key])`` with
``mask=[query_mask, value_mask]`` (booleans [N, Tq] and [N, Tv]; a third entry,
Keras' key mask, is ignored as Keras ignores it), ``training``,
``return_attention_scores`` (also return the weights, after dropout, as Keras
does) and ``use_causal_mask`` (query step i attends to key steps j <= i). In a
functional model the masks of the inputs reach the layer on their own (an
Embedding with ``mask_zero=True``, a recurrent layer with
``return_sequences=True`` passing its mask on), and the output keeps the query
mask. Both layers implement the Layer contract of ``rnnkern.layers.base``:
batched matmuls forward, the exact backward (softmax's included), checked
against float64 finite differences and against torch's autograd through
Keras' own layer (tests/test_merge_attention.py).

>>> enc = LSTM(16, return_sequences=True)(Input((None, 8)))   # [N, Tv, 16]
>>> dec = LSTM(16, return_sequences=True)(Input((None, 8)))   # [N, Tq, 16]
>>> context = Attention()([dec, enc])                           # [N, Tq, 16]
"""
from __future__ import annotations

import numbers

import numpy as np

from ..config import make_rng
from .base import Layer, check_bool, float_array, grad_or_zeros, weight_property
from .core import bool_mask

__all__ = ["Attention", "AdditiveAttention"]

# Keras subtracts this from the scores of masked steps (65504, float16's
# largest value, for float16 scores; rnnkern computes in float32)
MASK_BIAS = 1.0e9

_NAMES = ("query", "value", "key")


def _keep(training):
    return training is not False


def _check_rate(dropout):
    if (isinstance(dropout, bool) or not isinstance(dropout, numbers.Real)
            or not 0 <= dropout <= 1):
        raise ValueError(f"Invalid value received for argument `dropout`. Expected a float "
                         f"value between 0 and 1. Received: dropout={dropout!r}")
    return float(dropout)


def _swap(a):
    return np.swapaxes(a, -1, -2)


class Attention(Layer):
    """Dot-product attention, a.k.a. Luong-style attention (Keras' Attention).

    Arguments as Keras 3: ``use_scale=False`` (a trainable scalar ``scale``,
    initialized to 1, multiplies the scores; with ``score_mode="concat"`` it
    scales ``q + k`` inside the tanh), ``score_mode="dot"`` ("dot" or
    "concat"; "concat" adds the trainable scalar ``concat_score_weight``, also
    initialized to 1), ``dropout=0.0`` (fraction of the attention weights
    dropped with ``training=True``), ``seed=None`` (of the dropout draws).
    Weights, in Keras' order: ``scale`` [] (use_scale), ``concat_score_weight``
    [] (score_mode="concat"). See the module docstring for the call.
    """

    scale = weight_property("scale", "The score scale (None without use_scale), read-only.")
    concat_score_weight = weight_property(
        "concat_score_weight", "The concat score weight [] (score_mode='concat'), read-only.")

    _call_args = ("mask", "training", "return_attention_scores", "use_causal_mask")
    _call_has_mask_arg = True
    _supports_masking = True

    def __init__(self, use_scale=False, score_mode="dot", dropout=0.0, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.use_scale = check_bool("use_scale", use_scale)
        if not isinstance(score_mode, str) or score_mode not in ("dot", "concat"):
            raise ValueError(f"Invalid value for argument score_mode. Expected one of "
                             f"{{'dot', 'concat'}}. Received: score_mode={score_mode}")
        self.score_mode = score_mode
        self.dropout = _check_rate(dropout)
        if seed is not None and (isinstance(seed, bool) or
                                 not isinstance(seed, (int, np.integer))):
            raise TypeError(f"seed must be None or an int, got {seed!r}")
        self.seed = None if seed is None else int(seed)
        self._rng = make_rng(self.seed)      # the dropout draws
        self._init_rng = make_rng()          # the initializers (AdditiveAttention's scale)

    # ------------------------------------------------------------ weights
    def _weight_names(self):
        names = ["scale"] if self.use_scale else []
        if self.score_mode == "concat":
            names.append("concat_score_weight")
        return names

    def _make_weights(self, dim):
        if self.use_scale:
            self.add_weight("scale", (), "ones")
        if self.score_mode == "concat":
            self.add_weight("concat_score_weight", (), "ones")

    def build(self, input_shape):
        self._check_input_shape(input_shape)
        if self.built:
            return
        self._make_weights(input_shape[0][-1])
        self._build_shapes = [tuple(s) for s in input_shape]
        self.built = True

    def _build_from_weights(self, weights):
        self._make_weights(None)
        self.built = True

    # ------------------------------------------------------------- checks
    def _validate_inputs(self, inputs, mask=None):
        """Keras' Attention._validate_inputs: a list of 2 or 3 inputs (or of
        their shapes), a mask list of 2 or 3 entries."""
        cls = type(self).__name__
        if not isinstance(inputs, list):
            raise ValueError(f"{cls} layer must be called on a list of inputs, namely "
                             f"[query, value] or [query, value, key]. Received: "
                             f"inputs={type(inputs).__name__}.")
        if len(inputs) < 2 or len(inputs) > 3:
            raise ValueError(f"{cls} layer accepts inputs list of length 2 or 3, namely "
                             f"[query, value] or [query, value, key]. Received length: "
                             f"{len(inputs)}.")
        if mask is not None:
            if not isinstance(mask, list):
                raise ValueError(f"{cls} layer mask must be a list, namely [query_mask, "
                                 f"value_mask]. Received: mask={type(mask).__name__}.")
            if len(mask) < 2 or len(mask) > 3:
                raise ValueError(f"{cls} layer accepts mask list of length 2 or 3. "
                                 f"Received: mask of length {len(mask)}.")

    def _check_input_shape(self, input_shape):
        self._validate_inputs(input_shape)
        shapes = [tuple(s) for s in input_shape]
        q, v = shapes[0], shapes[1]
        k = shapes[2] if len(shapes) > 2 else v
        named = list(zip(_NAMES, (q, v, k)))
        for name, s in named:
            if len(s) < 3:
                raise ValueError(f"{type(self).__name__} expects {name} of shape (batch_size, "
                                 f"T, dim), got {name} of shape {s}")
        if len({len(s) for _, s in named}) > 1:
            raise ValueError(f"query, value and key must have the same rank, got shapes "
                             f"{[s for _, s in named]}")
        for i in range(len(q) - 2):  # the batch axes
            if len({s[i] for _, s in named} - {None}) > 1:
                raise ValueError(f"query, value and key must have the same batch size, got "
                                 f"shapes {[s for _, s in named]}")
        if None not in (q[-1], k[-1]) and q[-1] != k[-1]:
            raise ValueError(f"query and key must have the same last dimension (dim), got "
                             f"query of shape {q} and key of shape {k}")
        if None not in (v[-2], k[-2]) and v[-2] != k[-2]:
            raise ValueError(f"value and key must have the same number of steps (Tv), got "
                             f"value of shape {v} and key of shape {k}")
        self._check_built_dim(q)

    def _check_built_dim(self, query_shape):
        """AdditiveAttention: the query's dim matches the built scale."""

    def compute_output_shape(self, input_shape):
        q, v = tuple(input_shape[0]), tuple(input_shape[1])
        k = tuple(input_shape[2]) if len(input_shape) > 2 else v
        out = q[:-1] + (v[-1],)
        if getattr(self._tls, "with_scores", False):
            return [out, q[:-1] + (k[-2],)]
        return out

    def _symbolic_call(self, inputs, kw):
        self._validate_inputs(inputs, kw.get("mask"))
        ret = check_bool("return_attention_scores", kw.get("return_attention_scores", False))
        check_bool("use_causal_mask", kw.get("use_causal_mask", False))
        self._tls.with_scores = ret   # compute_output_shape: one output or two
        try:
            return super()._symbolic_call(inputs, kw)
        finally:
            self._tls.with_scores = False

    def _standardize(self, inputs):
        self._validate_inputs(inputs)
        xs = [float_array(x, n, "float32 of shape (batch_size, T, dim)")
              for x, n in zip(inputs, _NAMES)]
        self._check_input_shape([x.shape for x in xs])
        return xs

    def _masks(self, mask, q, v):
        """(query_mask, value_mask) as boolean arrays (None where not given)."""
        if mask is None:
            return None, None
        self._validate_inputs([q, v], mask)
        out = []
        for name, m, x in (("query_mask", mask[0], q), ("value_mask", mask[1], v)):
            if m is None:
                out.append(None)
                continue
            m = bool_mask(name, m)
            if m.shape != x.shape[:-1]:
                raise ValueError(f"{name} must have shape {x.shape[:-1]} (the "
                                 f"{name.split('_')[0]}'s shape without its last axis), got "
                                 f"{m.shape}")
            out.append(m)
        return out[0], out[1]

    # ------------------------------------------------------------ forward
    def _scores(self, q, k):
        """(scores [..., Tq, Tv], what _scores_backward needs)."""
        if self.score_mode == "dot":
            raw = q @ _swap(k)
            return (raw * self.scale if self.use_scale else raw), raw
        z = q[..., :, None, :] + k[..., None, :, :]             # [..., Tq, Tv, dim]
        zs = z * self.scale if self.use_scale else z
        t = np.tanh(zs)
        tsum = t.sum(axis=-1)
        return self.concat_score_weight * tsum, (z, t, tsum)

    def forward(self, xs, training=None, mask=None, return_attention_scores=False,
                use_causal_mask=False):
        ret = check_bool("return_attention_scores", return_attention_scores)
        causal = check_bool("use_causal_mask", use_causal_mask)
        q, v = xs[0], xs[1]
        k = xs[2] if len(xs) > 2 else v
        q_mask, v_mask = self._masks(mask, q, v)
        scores, sctx = self._scores(q, k)
        keep = None
        if v_mask is not None:
            keep = v_mask[..., None, :]                          # [..., 1, Tv]
        if causal:
            tri = np.tri(scores.shape[-2], scores.shape[-1], dtype=bool)   # j <= i
            keep = tri if keep is None else keep & tri
        if keep is not None:
            scores = np.where(keep, scores, scores - scores.dtype.type(MASK_BIAS))
        e = np.exp(scores - scores.max(axis=-1, keepdims=True))
        weights = e / e.sum(axis=-1, keepdims=True)
        dropped, kept = weights, None
        if training is True and self.dropout > 0:
            keep_prob = 1.0 - self.dropout
            kept = self._rng.random(weights.shape) < keep_prob
            dropped = (np.where(kept, weights / weights.dtype.type(keep_prob), 0)
                       if keep_prob > 0 else np.zeros_like(weights)).astype(weights.dtype)
        out = dropped @ v
        if q_mask is not None:
            out = np.where(q_mask[..., None], out, out.dtype.type(0))
        outputs = (out, dropped) if ret else out
        if not _keep(training):
            return outputs, None
        return outputs, (len(xs), q, k, v, sctx, weights, kept, dropped, q_mask, ret,
                         out.shape)

    # ----------------------------------------------------------- backward
    def backward_from(self, ctx, d_outputs):
        n_in, q, k, v, sctx, weights, kept, dropped, q_mask, ret, out_shape = ctx
        d_scores_out = None
        if ret:
            if not isinstance(d_outputs, (list, tuple)) or len(d_outputs) != 2:
                raise TypeError(f"layer {self.name!r} returned (output, attention_scores): "
                                "its d_output must be a pair [d_output, d_scores] (None for "
                                "no gradient)")
            d_out, d_scores_out = d_outputs
        else:
            d_out = d_outputs
        d_out = grad_or_zeros(d_out, out_shape)
        if q_mask is not None:
            d_out = np.where(q_mask[..., None], d_out, d_out.dtype.type(0))
        d_dropped = d_out @ _swap(v)
        if d_scores_out is not None:
            d_dropped = d_dropped + grad_or_zeros(d_scores_out, dropped.shape, "d_scores")
        dv = _swap(dropped) @ d_out
        dw = d_dropped
        if kept is not None:
            keep_prob = 1.0 - self.dropout
            dw = (np.where(kept, d_dropped / dw.dtype.type(keep_prob), 0) if keep_prob > 0
                  else np.zeros_like(d_dropped)).astype(d_dropped.dtype)
        # softmax backward, then through the masking (scores - bias: identity)
        ds = weights * (dw - np.sum(dw * weights, axis=-1, keepdims=True))
        dq, dk, grads = self._score_grads(q, k, sctx, ds)
        if n_in == 2:
            return [dq, dv + dk], grads
        return [dq, dv, dk], grads

    def _score_grads(self, q, k, sctx, ds):
        """(d_query, d_key, weight grads in ``weights`` order) from d_scores."""
        grads = []
        if self.score_mode == "dot":
            if self.use_scale:
                grads.append(np.sum(ds * sctx).astype(ds.dtype).reshape(()))
                ds = ds * self.scale
            return ds @ k, _swap(ds) @ q, grads
        z, t, tsum = sctx
        c = self.concat_score_weight
        dzs = (ds * c)[..., None] * (1 - t * t)
        if self.use_scale:
            grads.append(np.sum(dzs * z).astype(ds.dtype).reshape(()))
            dz = dzs * self.scale
        else:
            dz = dzs
        grads.append(np.sum(ds * tsum).astype(ds.dtype).reshape(()))
        return dz.sum(axis=-2), dz.sum(axis=-3), grads

    # -------------------------------------------------------------- masks
    def compute_mask(self, inputs, mask=None):
        """Keras: the output keeps the query mask."""
        self._validate_inputs(list(inputs) if isinstance(inputs, tuple) else inputs, mask)
        if mask is None or mask[0] is None:
            return None
        return bool_mask("query_mask", mask[0])

    def get_config(self):
        cfg = super().get_config()
        cfg.update(use_scale=self.use_scale, score_mode=self.score_mode, dropout=self.dropout,
                   seed=self.seed)
        return cfg


class AdditiveAttention(Attention):
    """Additive attention, a.k.a. Bahdanau-style attention (Keras'
    AdditiveAttention): ``scores = sum_d scale_d * tanh(q_i + k_j)``.

    Arguments as Keras 3: ``use_scale=True`` (a trainable ``scale`` of shape
    [dim], Keras' glorot_uniform initializer; without it the sum is unscaled),
    ``dropout=0.0``; ``seed`` (of the dropout draws) as a keyword. Weights:
    ``scale`` [dim] (use_scale). The call is Attention's.
    """

    scale = weight_property("scale", "The score scale [dim] (None without use_scale), "
                                     "read-only.")

    def __init__(self, use_scale=True, dropout=0.0, **kwargs):
        super().__init__(use_scale=use_scale, dropout=dropout, **kwargs)

    def _weight_names(self):
        return ["scale"] if self.use_scale else []

    def _make_weights(self, dim):
        if self.use_scale:
            if dim is None:
                raise ValueError(f"AdditiveAttention layer {self.name!r} needs a query with a "
                                 "known last dimension (dim) to build its scale")
            self.add_weight("scale", (int(dim),), "glorot_uniform", self._init_rng)

    def _build_from_weights(self, weights):
        if self.use_scale:
            s = np.shape(weights[0]) if weights else ()
            if len(s) != 1:
                raise ValueError(f"set_weights: scale of layer {self.name!r} has shape "
                                 f"{tuple(s)}, expected (dim,)")
            self._make_weights(s[0])
        self.built = True

    def _check_built_dim(self, query_shape):
        if self.built and self.use_scale and query_shape[-1] is not None \
                and query_shape[-1] != self.scale.shape[0]:
            raise ValueError(f"layer {self.name!r} is built for a query dim of "
                             f"{self.scale.shape[0]}, got a query of shape {query_shape}")

    def _scores(self, q, k):
        t = np.tanh(q[..., :, None, :] + k[..., None, :, :])    # [..., Tq, Tv, dim]
        return (t * self.scale if self.use_scale else t).sum(axis=-1), t

    def _score_grads(self, q, k, t, ds):
        dt = ds[..., None] * (1 - t * t)                         # d(q_i + k_j), unscaled
        grads = []
        if self.use_scale:
            grads.append(ds.reshape(-1) @ t.reshape(-1, t.shape[-1]))
            dt = dt * self.scale
        return dt.sum(axis=-2), dt.sum(axis=-3), grads

    def get_config(self):
        cfg = super().get_config()
        del cfg["score_mode"]
        return cfg
