"""The activation layers of Keras 3 (keras/src/layers/activations/): ReLU,
LeakyReLU, Softmax and ELU, in NumPy, with Keras' arguments, defaults and
argument checks. Each passes masks on (``supports_masking``); Softmax also
takes a mask in its call, as Keras' (masked entries get no probability).

Formulas (Keras 3, torch backend):

    ReLU       where(x > threshold, min(x, max_value), 0)
                 - negative_slope * max(threshold - x, 0)
    LeakyReLU  x if x > 0 else negative_slope * x
    ELU        x if x > 0 else alpha * (exp(x) - 1)
    Softmax    exp(x - logsumexp(x, axis)); with a mask, masked entries are
               -1e9 before and 0 after

Backward: the derivative of each from its input (ReLU, LeakyReLU) or output
(ELU, Softmax), checked against float64 central finite differences and torch
autograd in tests/test_normalization.py.
"""
from __future__ import annotations

import numbers
import warnings

import numpy as np

from .base import Layer, float_array, grad_or_zeros
from .core import _keep

__all__ = ["ReLU", "LeakyReLU", "Softmax", "ELU"]

# Keras' _large_negative_number for float32: masked logits before the softmax
_MASKED_LOGIT = -1e9


def _number(layer, name, v, allow_none=False):
    """A real number >= 0 (None where allowed), Keras' check and message."""
    if v is None and allow_none:
        return None
    if v is not None and (isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Real)):
        raise TypeError(f"{name} of a {layer} layer must be a real number, got {v!r}")
    if v is None or v < 0:
        raise ValueError(f"{name} of a {layer} layer cannot be "
                         f"{'a' if allow_none else 'None or a'} negative value. "
                         f"Received: {name}={v}")
    return v


class _Pointwise(Layer):
    """A layer of one elementwise function: any shape, masks passed on."""

    _supports_masking = True

    def _standardize(self, x):
        return float_array(x, "inputs", "a float32 array")


class ReLU(_Pointwise):
    """Rectified linear unit (Keras 3's ReLU layer): ``max(x, 0)`` by default;
    ``max_value`` caps it, inputs at or below ``threshold`` give
    ``negative_slope * (x - threshold)``.

    Arguments as Keras 3: max_value=None, negative_slope=0.0, threshold=0.0
    (each >= 0).
    """

    def __init__(self, max_value=None, negative_slope=0.0, threshold=0.0, **kwargs):
        super().__init__(**kwargs)
        self.max_value = _number("ReLU", "max_value", max_value, allow_none=True)
        self.negative_slope = _number("ReLU", "negative_slope", negative_slope)
        self.threshold = _number("ReLU", "threshold", threshold)

    def forward(self, x, training=None, mask=None):
        thr, slope, top = self.threshold, self.negative_slope, self.max_value
        if thr == 0:
            y = np.maximum(x, 0) if (slope == 0 or top is not None) else \
                np.where(x > 0, x, x * x.dtype.type(slope))
        else:
            y = np.where(x > thr, x, x.dtype.type(0))
        if top is not None:
            y = np.minimum(y, x.dtype.type(top))
        if slope != 0 and (thr != 0 or top is not None):
            y -= x.dtype.type(slope) * np.maximum(x.dtype.type(thr) - x, 0)
        return y, (x if _keep(training) else None)

    def backward_from(self, x, dy):
        dy = grad_or_zeros(dy, x.shape)
        thr, slope, top = self.threshold, self.negative_slope, self.max_value
        pos = (x > thr) & (x > 0)
        if top is not None:
            pos &= x < top
        d = pos.astype(x.dtype)
        if slope != 0:
            d += x.dtype.type(slope) * (x < thr if thr != 0 else x <= 0)
        return dy * d, []

    def get_config(self):
        cfg = super().get_config()
        cfg.update(max_value=self.max_value, negative_slope=self.negative_slope,
                   threshold=self.threshold)
        return cfg


class LeakyReLU(_Pointwise):
    """Leaky rectified linear unit (Keras 3's LeakyReLU):
    ``x if x > 0 else negative_slope * x``; negative_slope=0.3 (>= 0). Keras 2's
    ``alpha=`` is accepted with Keras' deprecation warning."""

    def __init__(self, negative_slope=0.3, **kwargs):
        if "alpha" in kwargs:
            negative_slope = kwargs.pop("alpha")
            warnings.warn("Argument `alpha` is deprecated. Use `negative_slope` instead.",
                          stacklevel=2)
        super().__init__(**kwargs)
        if negative_slope is not None and (isinstance(negative_slope, (bool, np.bool_)) or
                                           not isinstance(negative_slope, numbers.Real)):
            raise TypeError(f"negative_slope of a LeakyReLU layer must be a real number, got "
                            f"{negative_slope!r}")
        if negative_slope is None or negative_slope < 0:
            raise ValueError("The negative_slope value of a Leaky ReLU layer cannot be None or "
                             f"negative value. Expected a float. Received: "
                             f"negative_slope={negative_slope}")
        self.negative_slope = negative_slope

    def forward(self, x, training=None, mask=None):
        y = np.where(x > 0, x, x * x.dtype.type(self.negative_slope))
        return y, (x if _keep(training) else None)

    def backward_from(self, x, dy):
        dy = grad_or_zeros(dy, x.shape)
        return np.where(x > 0, dy, dy * x.dtype.type(self.negative_slope)), []

    def get_config(self):
        cfg = super().get_config()
        cfg["negative_slope"] = self.negative_slope
        return cfg


class ELU(_Pointwise):
    """Exponential linear unit (Keras 3's ELU): ``x if x > 0 else alpha *
    (exp(x) - 1)``; alpha=1.0."""

    def __init__(self, alpha=1.0, **kwargs):
        super().__init__(**kwargs)
        if isinstance(alpha, (bool, np.bool_)) or not isinstance(alpha, numbers.Real):
            raise TypeError(f"alpha of an ELU layer must be a real number, got {alpha!r}")
        self.alpha = alpha

    def forward(self, x, training=None, mask=None):
        a = x.dtype.type(self.alpha)
        y = np.where(x > 0, x, a * np.expm1(np.minimum(x, 0)))
        return y, ((x, y) if _keep(training) else None)

    def backward_from(self, ctx, dy):
        x, y = ctx
        dy = grad_or_zeros(dy, x.shape)
        # x <= 0: d/dx alpha (exp(x) - 1) = y + alpha
        return np.where(x > 0, dy, dy * (y + x.dtype.type(self.alpha))), []

    def get_config(self):
        cfg = super().get_config()  # Keras' has alpha (its base records the init args)
        cfg["alpha"] = self.alpha
        return cfg


class Softmax(_Pointwise):
    """Softmax over ``axis`` (an int or a list of ints; Keras 3's Softmax).

    Call: ``layer(x, mask=None)``: a mask broadcastable to ``x`` (each of its
    dimensions 1 or the input's, aligned from the last) keeps the entries where
    it is True (or > 0.5); masked entries output 0.
    """

    _call_args = ("mask",)
    _call_has_mask_arg = True

    def __init__(self, axis=-1, **kwargs):
        super().__init__(**kwargs)
        if isinstance(axis, (list, tuple)):
            ok = len(axis) > 0 and all(isinstance(a, (int, np.integer)) and
                                       not isinstance(a, (bool, np.bool_)) for a in axis)
            axis = [int(a) for a in axis] if ok else axis
        else:
            ok = isinstance(axis, (int, np.integer)) and not isinstance(axis, (bool, np.bool_))
            axis = int(axis) if ok else axis
        if not ok:
            raise TypeError(f"axis must be an int or a list of ints, got {axis!r}")
        self.axis = axis

    def _axes(self, ndim):
        axes = self.axis if isinstance(self.axis, list) else [self.axis]
        for a in axes:
            if not -ndim <= a < ndim:
                raise ValueError(f"axis {a} is out of bounds for inputs of rank {ndim}")
        return tuple(sorted({a % ndim for a in axes}))

    def _check_input_shape(self, input_shape):
        self._axes(len(tuple(input_shape)))

    def _keep_mask(self, mask, x):
        m = np.asarray(mask)
        if m.ndim > x.ndim:
            raise ValueError(f"The `mask` must be broadcastable to `inputs` and must not have "
                             f"more dimensions. Received: inputs.shape={x.shape}, "
                             f"mask.shape={m.shape}")
        for md, xd in zip(m.shape[::-1], x.shape[::-1]):
            if md != 1 and md != xd:
                raise ValueError(f"The `mask` must be broadcastable to `inputs`. Each mask "
                                 f"dimension must be 1 or match the corresponding input "
                                 f"dimension. Received: inputs.shape={x.shape}, "
                                 f"mask.shape={m.shape}")
        return m if m.dtype == bool else m > 0.5

    def forward(self, x, training=None, mask=None):
        axes = self._axes(x.ndim)
        keep = None if mask is None else self._keep_mask(mask, x)
        z = x if keep is None else np.where(keep, x, x.dtype.type(_MASKED_LOGIT))
        e = np.exp(z - np.max(z, axis=axes, keepdims=True))
        y = e / np.sum(e, axis=axes, keepdims=True)
        if keep is not None:
            y = np.where(keep, y, x.dtype.type(0))
        return y, ((y, axes) if _keep(training) else None)

    def backward_from(self, ctx, dy):
        # masked entries have y = 0, so the plain softmax derivative is also
        # the masked one (their inputs do not reach the output)
        y, axes = ctx
        dy = grad_or_zeros(dy, y.shape)
        return y * (dy - np.sum(dy * y, axis=axes, keepdims=True)), []

    def get_config(self):
        cfg = super().get_config()
        cfg["axis"] = self.axis
        return cfg
