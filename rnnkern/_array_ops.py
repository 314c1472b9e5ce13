"""The handful of ``keras.ops`` array functions scripts call on concrete
values (``keras.ops.expand_dims(sample, 0)``, ``keras.ops.argmax(pred,
axis=1)``...), eager on NumPy arrays with Keras' names and arguments; they are
re-exported by ``rnnkern.ops``. On a symbolic tensor (inside a functional
model being built) they raise a TypeError pointing at ``layers.Lambda``:
rnnkern's graphs are made of layers, each with its own backward."""
from __future__ import annotations

import functools

import numpy as np

from .config import floatx

__all__ = ["convert_to_numpy", "convert_to_tensor", "cast", "shape", "expand_dims", "squeeze",
           "reshape", "transpose", "concatenate", "stack", "argmax", "argmin", "sum", "mean",
           "max", "min", "abs", "sqrt", "square", "exp", "log", "tanh", "sigmoid", "relu",
           "softmax", "matmul", "where", "zeros", "ones", "clip", "maximum", "minimum",
           "arange", "one_hot"]


def _eager(fn):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        for a in list(args) + list(kwargs.values()):
            items = a if isinstance(a, (list, tuple)) else (a,)
            # a symbolic tensor, known by its history (rnnkern.layers imports rnnkern.ops)
            if any(hasattr(t, "_keras_history") for t in items):
                raise TypeError(f"rnnkern.ops.{fn.__name__} works on arrays, not on symbolic "
                                "tensors: inside a functional model, wrap the computation "
                                "in a layer (rnnkern.layers.Lambda, or a Layer subclass with "
                                "its backward)")
        return fn(*args, **kwargs)
    return wrapper


def _np(x):
    if hasattr(x, "detach") and hasattr(x, "cpu"):   # a torch tensor
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def _float(x):
    x = _np(x)
    return x if np.issubdtype(x.dtype, np.floating) else x.astype(floatx())


@_eager
def convert_to_numpy(x):
    return _np(x)


@_eager
def convert_to_tensor(x, dtype=None, sparse=None, ragged=None):
    x = _np(x)
    return x if dtype is None else x.astype(np.dtype(dtype))


@_eager
def cast(x, dtype):
    return _np(x).astype(np.dtype(dtype))


@_eager
def shape(x):
    return tuple(_np(x).shape)


@_eager
def expand_dims(x, axis):
    return np.expand_dims(_np(x), axis)


@_eager
def squeeze(x, axis=None):
    return np.squeeze(_np(x), axis=axis)


@_eager
def reshape(x, newshape):
    return np.reshape(_np(x), newshape)


@_eager
def transpose(x, axes=None):
    return np.transpose(_np(x), axes)


@_eager
def concatenate(xs, axis=0):
    return np.concatenate([_np(x) for x in xs], axis=axis)


@_eager
def stack(x, axis=0):
    return np.stack([_np(a) for a in x], axis=axis)


@_eager
def argmax(x, axis=None, keepdims=False):
    return np.argmax(_np(x), axis=axis, keepdims=keepdims).astype("int32")


@_eager
def argmin(x, axis=None, keepdims=False):
    return np.argmin(_np(x), axis=axis, keepdims=keepdims).astype("int32")


@_eager
def sum(x, axis=None, keepdims=False):
    return np.sum(_np(x), axis=axis, keepdims=keepdims)


@_eager
def mean(x, axis=None, keepdims=False):
    return np.mean(_float(x), axis=axis, keepdims=keepdims)


@_eager
def max(x, axis=None, keepdims=False, initial=None):
    kw = {} if initial is None else {"initial": initial}
    return np.max(_np(x), axis=axis, keepdims=keepdims, **kw)


@_eager
def min(x, axis=None, keepdims=False, initial=None):
    kw = {} if initial is None else {"initial": initial}
    return np.min(_np(x), axis=axis, keepdims=keepdims, **kw)


@_eager
def abs(x):
    return np.abs(_np(x))


@_eager
def sqrt(x):
    return np.sqrt(_float(x))


@_eager
def square(x):
    return np.square(_np(x))


@_eager
def exp(x):
    return np.exp(_float(x))


@_eager
def log(x):
    return np.log(_float(x))


@_eager
def tanh(x):
    return np.tanh(_float(x))


@_eager
def sigmoid(x):
    x = _float(x)
    return (0.5 * (np.tanh(0.5 * x) + 1)).astype(x.dtype)


@_eager
def relu(x):
    return np.maximum(_np(x), 0)


@_eager
def softmax(x, axis=-1):
    x = _float(x)
    e = np.exp(x - np.max(x, axis=axis, keepdims=True))
    return e / np.sum(e, axis=axis, keepdims=True)


@_eager
def matmul(x1, x2):
    return np.matmul(_np(x1), _np(x2))


@_eager
def where(condition, x1=None, x2=None):
    if x1 is None and x2 is None:
        return np.nonzero(_np(condition))
    if x1 is None or x2 is None:
        raise ValueError("where: give both x1 and x2, or neither")
    return np.where(_np(condition), _np(x1), _np(x2))


@_eager
def zeros(shape, dtype=None):
    return np.zeros(shape, np.dtype(floatx() if dtype is None else dtype))


@_eager
def ones(shape, dtype=None):
    return np.ones(shape, np.dtype(floatx() if dtype is None else dtype))


@_eager
def clip(x, x_min, x_max):
    return np.clip(_np(x), x_min, x_max)


@_eager
def maximum(x1, x2):
    return np.maximum(_np(x1), _np(x2))


@_eager
def minimum(x1, x2):
    return np.minimum(_np(x1), _np(x2))


@_eager
def arange(start, stop=None, step=1, dtype=None):
    return np.arange(start, stop, step, dtype=None if dtype is None else np.dtype(dtype))


@_eager
def one_hot(x, num_classes, axis=-1, dtype=None, sparse=False):
    x = _np(x).astype(np.int64)
    out = (x[..., None] == np.arange(num_classes)).astype(
        np.dtype(floatx() if dtype is None else dtype))
    return np.moveaxis(out, -1, axis) if axis != -1 else out
