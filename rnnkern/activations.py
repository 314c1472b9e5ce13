"""Activation functions by Keras 3's names, with their derivatives.

``get(identifier)`` resolves what a layer's ``activation=`` argument may be, as
``keras.activations.get`` does: None (linear), a name (``"relu"``, ``"swish"``
...), or a callable. Each activation here is a plain function ``f(x)`` on NumPy
arrays, computed in the dtype of ``x``; its derivative is ``gradient(f)``, a
function ``df(x, y, dy) -> dx`` of the input, the output and the output's
gradient (each derivative uses whichever of x and y is cheaper and exact).

The formulas are Keras 3's (keras/src/activations/activations.py, torch backend):

    relu       max(x, 0)                 relu6        min(max(x, 0), 6)
    leaky_relu x if x > 0 else 0.2 x     elu          x if x > 0 else exp(x) - 1
    selu       1.05070098 * elu(x, 1.67326324)
    sigmoid    1 / (1 + exp(-x))         hard_sigmoid clip(x / 6 + 1/2, 0, 1)
    tanh                                 softsign     x / (1 + |x|)
    softplus   log(1 + exp(x)) (x for x > 20, as torch)
    silu/swish x * sigmoid(x)            hard_silu/hard_swish x * hard_sigmoid(x)
    gelu       x/2 (1 + erf(x / sqrt 2)) (Keras' default approximate=False)
    mish       x * tanh(softplus(x))     exponential  exp(x)
    softmax    over the last axis        log_softmax  over the last axis
    linear     x

The recurrent layers' ``activation`` / ``recurrent_activation`` run inside the
compiled kernels and accept only the names of ``rnnkern._common.ACTIVATIONS``.
"""
from __future__ import annotations

import math

import numpy as np

__all__ = ["get", "gradient", "serialize", "relu", "relu6", "leaky_relu", "elu", "selu",
           "sigmoid", "hard_sigmoid", "tanh", "softsign", "softplus", "silu", "swish",
           "hard_silu", "hard_swish", "gelu", "mish", "exponential", "softmax",
           "log_softmax", "linear"]

_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


def _sigmoid(x):
    # 0.5 (1 + tanh(x/2)) == 1 / (1 + exp(-x)), without overflow for large |x|
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def linear(x):
    return x


def relu(x, negative_slope=0.0, max_value=None, threshold=0.0):
    """Keras' relu; the derivative is known for the default arguments."""
    if negative_slope == 0.0 and max_value is None and threshold == 0.0:
        return np.maximum(x, 0)
    y = np.where(x > threshold, x, negative_slope * (x - threshold))
    if max_value is not None:
        y = np.minimum(y, max_value)
    return y.astype(np.result_type(x), copy=False)


def relu6(x):
    return np.clip(x, 0, 6)


def leaky_relu(x, negative_slope=0.2):
    return np.where(x > 0, x, x * np.asarray(negative_slope, x.dtype))


def elu(x, alpha=1.0):
    return np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0))).astype(x.dtype, copy=False)


def selu(x):
    return (_SELU_SCALE * np.where(x > 0, x, _SELU_ALPHA * np.expm1(np.minimum(x, 0)))
            ).astype(x.dtype, copy=False)


def sigmoid(x):
    return _sigmoid(x)


def hard_sigmoid(x):
    return np.clip(x / 6 + 0.5, 0, 1).astype(x.dtype, copy=False)


def tanh(x):
    return np.tanh(x)


def softsign(x):
    return x / (1 + np.abs(x))


def softplus(x):
    # torch's softplus (beta 1, threshold 20), which Keras' torch backend calls
    return np.where(x > 20, x, np.log1p(np.exp(np.minimum(x, 20)))).astype(x.dtype, copy=False)


def silu(x):
    return x * _sigmoid(x)


swish = silu


def hard_silu(x):
    return x * hard_sigmoid(x)


hard_swish = hard_silu

_erf = np.vectorize(math.erf, otypes=[np.float64])


def gelu(x, approximate=False):
    if approximate:
        c = math.sqrt(2 / math.pi)
        return 0.5 * x * (1 + np.tanh(c * (x + 0.044715 * x ** 3)))
    return (0.5 * x * (1 + _erf(x / math.sqrt(2)))).astype(x.dtype, copy=False)


def mish(x):
    return x * np.tanh(softplus(x))


def exponential(x):
    return np.exp(x)


def softmax(x, axis=-1):
    e = np.exp(x - np.max(x, axis=axis, keepdims=True))
    return e / np.sum(e, axis=axis, keepdims=True)


def log_softmax(x, axis=-1):
    s = x - np.max(x, axis=axis, keepdims=True)
    return s - np.log(np.sum(np.exp(s), axis=axis, keepdims=True))


# ------------------------------------------------------------ derivatives
# df(x, y, dy) -> dx, for the default arguments of each function

def _d_hard_sigmoid_slope(x):
    return ((x > -3) & (x < 3)) / np.asarray(6, x.dtype)


def _d_gelu(x, y, dy):
    cdf = 0.5 * (1 + _erf(x / math.sqrt(2)))
    pdf = np.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)
    return (dy * (cdf + x * pdf)).astype(x.dtype, copy=False)


def _d_mish(x, y, dy):
    t = np.tanh(softplus(x))
    return dy * (t + x * (1 - t * t) * _sigmoid(x))


def _d_silu(x, y, dy):
    s = _sigmoid(x)
    return dy * (s + x * s * (1 - s))


_GRADIENTS = {
    linear: lambda x, y, dy: dy,
    relu: lambda x, y, dy: dy * (x > 0),
    relu6: lambda x, y, dy: dy * ((x > 0) & (x < 6)),
    leaky_relu: lambda x, y, dy: dy * np.where(x > 0, 1, 0.2).astype(x.dtype),
    elu: lambda x, y, dy: np.where(x > 0, dy, dy * (y + 1)),
    selu: lambda x, y, dy: np.where(x > 0, _SELU_SCALE * dy,
                                    dy * (y + _SELU_SCALE * _SELU_ALPHA)).astype(x.dtype),
    sigmoid: lambda x, y, dy: dy * y * (1 - y),
    hard_sigmoid: lambda x, y, dy: dy * _d_hard_sigmoid_slope(x),
    tanh: lambda x, y, dy: dy * (1 - y * y),
    softsign: lambda x, y, dy: dy / np.square(1 + np.abs(x)),
    softplus: lambda x, y, dy: dy * np.where(x > 20, 1, _sigmoid(x)).astype(x.dtype),
    silu: _d_silu,
    hard_silu: lambda x, y, dy: dy * (hard_sigmoid(x) + x * _d_hard_sigmoid_slope(x)),
    gelu: _d_gelu,
    mish: _d_mish,
    exponential: lambda x, y, dy: dy * y,
    softmax: lambda x, y, dy: y * (dy - np.sum(dy * y, axis=-1, keepdims=True)),
    log_softmax: lambda x, y, dy: dy - np.exp(y) * np.sum(dy, axis=-1, keepdims=True),
}

_BY_NAME = {f.__name__: f for f in _GRADIENTS}
_BY_NAME["swish"] = silu
_BY_NAME["hard_swish"] = hard_silu


def get(identifier):
    """The activation function for ``identifier`` (None, a name, or a callable),
    as ``keras.activations.get``."""
    if identifier is None:
        return linear
    if isinstance(identifier, str):
        fn = _BY_NAME.get(identifier)
        if fn is None:
            raise ValueError(f"Could not interpret activation function identifier: "
                             f"{identifier!r}; expected one of {sorted(_BY_NAME)} or a callable")
        return fn
    if callable(identifier):
        return identifier
    raise ValueError(f"Could not interpret activation function identifier: {identifier!r}")


def gradient(fn):
    """``df(x, y, dy) -> dx`` of an activation of this module, or None for a
    callable of the user's (which then has no backward)."""
    return _GRADIENTS.get(fn)


def serialize(fn):
    """The name Keras' configs use for ``fn`` (its ``__name__``)."""
    return getattr(fn, "__name__", repr(fn))
