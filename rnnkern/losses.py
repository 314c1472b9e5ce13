"""Losses, as Keras 3's ``keras.losses`` (keras/src/losses/loss.py, losses.py;
torch-backend numerics from keras/src/backend/torch/nn.py), on NumPy arrays,
each with the exact gradient of what it computes.

Classes (Keras' names, arguments and defaults)::

    MeanSquaredError            mean_squared_error, mse, MSE
    MeanAbsoluteError           mean_absolute_error, mae, MAE
    MeanAbsolutePercentageError mean_absolute_percentage_error, mape, MAPE
    MeanSquaredLogarithmicError mean_squared_logarithmic_error, msle, MSLE
    Huber(delta=1.0)            huber
    LogCosh                     log_cosh, logcosh
    BinaryCrossentropy(from_logits=False, label_smoothing=0.0, axis=-1)
                                binary_crossentropy, bce, BCE
    CategoricalCrossentropy(from_logits=False, label_smoothing=0.0, axis=-1)
                                categorical_crossentropy
    SparseCategoricalCrossentropy(from_logits=False, ignore_class=None)
                                sparse_categorical_crossentropy

The functions (``mean_squared_error(y_true, y_pred)``, ...) return the
per-sample losses, as Keras' (the mean over the last axis: shape
``y_pred.shape[:-1]``). A ``Loss`` object reduces them:

    loss(y_true, y_pred, sample_weight=None) -> float
    loss.value_and_gradient(y_true, y_pred, sample_weight=None) -> (float, dL/dy_pred)

``value_and_gradient`` returns the gradient of the reduced loss with respect
to ``y_pred`` (y_pred's shape, the loss's dtype): the exact derivative of
what ``__call__`` computes, Keras' probability clipping to
``[1e-7, 1 - 1e-7]`` included (zero gradient where clipped, as torch's clamp).
Both take an optional ``mask`` (rnnkern: the mask of y_pred, which Keras
carries on the tensor; masked steps are dropped as Keras drops them).

Reduction (Keras' ``reduce_weighted_values``): the per-sample losses are
multiplied by ``sample_weight`` (squeezed / expanded to their rank, then
broadcast), then ``"sum_over_batch_size"`` (default) / ``"mean"`` sum and
divide by their number, ``"mean_with_sample_weight"`` divides by the sum of
the weights, ``"sum"`` sums, ``"none"`` / None return them.

Computation is in the loss's ``dtype`` (default: rnnkern's floatx, float32;
Keras converts both arguments to it too). ``get(identifier)`` resolves a name,
a Keras config dict, a function or an instance to a ``Loss`` object (a
function name is wrapped in ``LossFunctionWrapper`` named after the
identifier, as Keras' compile does); ``serialize`` / ``deserialize`` write and
read Keras' dicts.
"""
from __future__ import annotations

import inspect
import math
import warnings

import numpy as np

from .config import floatx
from .utils.naming import auto_name, to_snake_case

__all__ = ["Loss", "LossFunctionWrapper", "MeanSquaredError", "MeanAbsoluteError",
           "MeanAbsolutePercentageError", "MeanSquaredLogarithmicError", "Huber", "LogCosh",
           "BinaryCrossentropy", "CategoricalCrossentropy", "SparseCategoricalCrossentropy",
           "mean_squared_error", "mean_absolute_error", "mean_absolute_percentage_error",
           "mean_squared_logarithmic_error", "huber", "log_cosh", "binary_crossentropy",
           "categorical_crossentropy", "sparse_categorical_crossentropy", "mse", "MSE", "mae",
           "MAE", "mape", "MAPE", "msle", "MSLE", "logcosh", "bce", "BCE", "get", "serialize",
           "deserialize", "squeeze_or_expand_to_same_rank"]

EPSILON = 1e-7          # keras.backend.epsilon()
_REDUCTIONS = ("sum_over_batch_size", "sum", None, "none", "mean", "mean_with_sample_weight")


# ------------------------------------------------------------------ helpers

def _floatx():
    return np.dtype(floatx())


def _as_float(x, dtype, what):
    """``x`` as an array of ``dtype``; a TypeError naming ``what`` for data
    that is not real numbers."""
    a = x if isinstance(x, np.ndarray) else np.asarray(x)
    if a.dtype.kind not in "fiub":
        raise TypeError(f"{what} must hold real numbers (int, float or bool), got an array of "
                        f"dtype {a.dtype} (shape {a.shape})")
    return a if a.dtype == dtype else a.astype(dtype)


def _compute_dtype(y_pred, dtype=None):
    if dtype is not None:
        return np.dtype(dtype)
    d = getattr(y_pred, "dtype", None)
    if d is not None and np.dtype(d).kind == "f":
        return np.dtype(d)
    return _floatx()


def squeeze_or_expand_to_same_rank(x1, x2, expand_rank_1=True):
    """Keras' rule: when the ranks differ by exactly one and the longer one
    ends in 1, squeeze that 1 (or expand a rank-1 partner instead)."""
    r1, r2 = x1.ndim, x2.ndim
    if r1 == r2:
        return x1, x2
    if r1 == r2 + 1 and x1.shape[-1] == 1:
        if r2 == 1 and expand_rank_1:
            x2 = x2[..., None]
        else:
            x1 = x1[..., 0]
    if r2 == r1 + 1 and x2.shape[-1] == 1:
        if r1 == 1 and expand_rank_1:
            x1 = x1[..., None]
        else:
            x2 = x2[..., 0]
    return x1, x2


def _unbroadcast(g, shape):
    """Sum ``g`` over the axes broadcasting added to reach ``shape``."""
    if g.shape == tuple(shape):
        return g
    extra = g.ndim - len(shape)
    if extra > 0:
        g = g.sum(axis=tuple(range(extra)))
    axes = tuple(i for i, (a, b) in enumerate(zip(g.shape, shape)) if b == 1 and a != 1)
    if axes:
        g = g.sum(axis=axes, keepdims=True)
    return g.reshape(shape)


def _pair(y_true, y_pred, what="y_true and y_pred"):
    """Broadcast check with a clear error (Keras broadcasts y_true - y_pred)."""
    try:
        return np.broadcast_shapes(y_true.shape, y_pred.shape)
    except ValueError:
        raise ValueError(f"{what}: y_true of shape {y_true.shape} and y_pred of shape "
                         f"{y_pred.shape} do not match (y_true must have y_pred's shape, up to "
                         "a trailing dimension of 1)") from None


def _mean_last(x):
    """Keras' ops.mean(x, axis=-1) (a 0-d array for a 1-D x)."""
    return np.mean(x, axis=-1, dtype=x.dtype)


def _spread_last(dv, like):
    """The gradient of mean over the last axis: dv / F, broadcast back."""
    return (dv / like.dtype.type(like.shape[-1]))[..., None]


def _sigmoid(x):
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype, copy=False)


def _softplus_torch(z):
    """torch.nn.functional.softplus (beta 1, threshold 20) and its derivative."""
    with np.errstate(over="ignore"):
        ez = np.exp(np.minimum(z, 20))
    big = z > 20
    val = np.where(big, z, np.log1p(ez))
    der = np.where(big, 1, ez / (ez + 1))
    return val.astype(z.dtype, copy=False), der.astype(z.dtype, copy=False)


def _log_softmax(x, axis):
    m = np.max(x, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0)
    s = x - m
    with np.errstate(divide="ignore"):
        return s - np.log(np.sum(np.exp(s), axis=axis, keepdims=True))


def _clip_probs(p):
    """Keras' clip to [eps, 1 - eps] (bounds in p's dtype) and the mask where
    torch's clamp passes the gradient (bounds included)."""
    t = p.dtype.type
    lo, hi = t(EPSILON), t(1.0 - EPSILON)
    return np.clip(p, lo, hi), (p >= lo) & (p <= hi)


# ------------------------------------------------- per-sample loss functions
# Each loss is a forward / backward pair (Keras' formula; its derivative):
#   fwd(y_true, y_pred, **kw) -> (values, mask or None, ctx)
#   bwd(ctx, d_values)        -> d_y_pred, y_pred's shape as given to fwd
# and a public function returning the values, as Keras' function does.

def _mse_fwd(y_true, y_pred):
    shape = y_pred.shape
    y_true, y_pred = squeeze_or_expand_to_same_rank(y_true, y_pred)
    _pair(y_true, y_pred)
    d = y_true - y_pred
    return _mean_last(np.square(d)), None, (d, y_pred.shape, shape)


def _mse_bwd(ctx, dv):
    d, sq_shape, shape = ctx
    g = _spread_last(dv, d) * (d.dtype.type(-2) * d)
    return _unbroadcast(g, sq_shape).reshape(shape)


def _mae_fwd(y_true, y_pred):
    shape = y_pred.shape
    y_true, y_pred = squeeze_or_expand_to_same_rank(y_true, y_pred)
    _pair(y_true, y_pred)
    d = y_true - y_pred
    return _mean_last(np.abs(d)), None, (d, y_pred.shape, shape)


def _mae_bwd(ctx, dv):
    d, sq_shape, shape = ctx
    g = _spread_last(dv, d) * -np.sign(d)
    return _unbroadcast(g, sq_shape).reshape(shape)


def _mape_fwd(y_true, y_pred):
    shape = y_pred.shape
    t = y_pred.dtype.type
    y_true, y_pred = squeeze_or_expand_to_same_rank(y_true, y_pred)
    _pair(y_true, y_pred)
    den = np.maximum(np.abs(y_true), t(EPSILON))
    q = (y_true - y_pred) / den
    return t(100.0) * _mean_last(np.abs(q)), None, (q, den, y_pred.shape, shape)


def _mape_bwd(ctx, dv):
    q, den, sq_shape, shape = ctx
    t = q.dtype.type
    g = _spread_last(t(100.0) * dv, q) * np.sign(q) / -den
    return _unbroadcast(g, sq_shape).reshape(shape)


def _msle_fwd(y_true, y_pred):
    shape = y_pred.shape
    t = y_pred.dtype.type
    y_true, y_pred = squeeze_or_expand_to_same_rank(y_true, y_pred)
    _pair(y_true, y_pred)
    eps = t(EPSILON)
    a = np.maximum(y_pred, eps) + t(1.0)
    d = np.log(a) - np.log(np.maximum(y_true, eps) + t(1.0))
    # torch.maximum splits the gradient of a tie in halves
    pass_ = np.where(y_pred > eps, t(1), np.where(y_pred == eps, t(0.5), t(0)))
    return _mean_last(np.square(d)), None, (d, a, pass_, y_pred.shape, shape)


def _msle_bwd(ctx, dv):
    d, a, pass_, sq_shape, shape = ctx
    g = _spread_last(dv, d) * (d.dtype.type(2) * d) / a * pass_
    return _unbroadcast(g, sq_shape).reshape(shape)


def _huber_fwd(y_true, y_pred, delta=1.0):
    shape = y_pred.shape
    t = y_pred.dtype.type
    y_true, y_pred = squeeze_or_expand_to_same_rank(y_true, y_pred)
    _pair(y_true, y_pred)
    delta = t(delta)
    err = y_pred - y_true
    ae = np.abs(err)
    small = ae <= delta
    half = t(0.5)
    v = np.where(small, half * np.square(err), delta * ae - half * np.square(delta))
    return _mean_last(v), None, (err, small, delta, y_pred.shape, shape)


def _huber_bwd(ctx, dv):
    err, small, delta, sq_shape, shape = ctx
    g = _spread_last(dv, err) * np.where(small, err, delta * np.sign(err))
    return _unbroadcast(g, sq_shape).reshape(shape)


def _log_cosh_fwd(y_true, y_pred):
    shape = y_pred.shape
    t = y_pred.dtype.type
    y_true, y_pred = squeeze_or_expand_to_same_rank(y_true, y_pred)
    _pair(y_true, y_pred)
    x = y_pred - y_true
    sp, dsp = _softplus_torch(x * t(-2.0))
    v = x + sp - t(math.log(2.0))
    return _mean_last(v), None, (x, dsp, y_pred.shape, shape)


def _log_cosh_bwd(ctx, dv):
    x, dsp, sq_shape, shape = ctx
    t = x.dtype.type
    g = _spread_last(dv, x) * (t(1) - t(2) * dsp)
    return _unbroadcast(g, sq_shape).reshape(shape)


def _same_shape(target, output, fn):
    if target.shape != output.shape:
        raise ValueError(f"{fn}: y_true and y_pred must have the same shape. Received: "
                         f"y_true.shape={target.shape}, y_pred.shape={output.shape}")


def _bce_fwd(y_true, y_pred, from_logits=False, label_smoothing=0.0, axis=-1):
    t = y_pred.dtype.type
    y_true = y_true.astype(y_pred.dtype, copy=False)
    if label_smoothing:
        y_true = y_true * t(1.0 - label_smoothing) + t(0.5 * label_smoothing)
    _same_shape(y_true, y_pred, "binary_crossentropy")
    if from_logits:
        x = y_pred
        # torch: (1 - t) x - log_sigmoid(x)
        el = (t(1) - y_true) * x - np.minimum(x, t(0)) + np.log1p(np.exp(-np.abs(x)))
        ctx = (True, x, y_true, None, None)
    else:
        p, keep = _clip_probs(y_pred)
        with np.errstate(divide="ignore"):
            el = -(y_true * np.maximum(np.log(p), t(-100))
                   + (t(1) - y_true) * np.maximum(np.log1p(-p), t(-100)))
        ctx = (False, p, y_true, keep, None)
    n = el.shape[axis] if el.ndim else 1
    return np.mean(el, axis=axis, dtype=el.dtype), None, ctx + (axis, n)


def _bce_bwd(ctx, dv):
    logits, x, y, keep, _, axis, n = ctx
    t = x.dtype.type
    dv = np.expand_dims(dv / t(n), axis)
    if logits:
        return dv * (_sigmoid(x) - y)
    # torch's BCE backward: (p - y) / max(p (1 - p), 1e-12), then the clamp's mask
    g = (x - y) / np.maximum((t(1) - x) * x, t(1e-12))
    return np.where(keep, dv * g, t(0))


def _check_axis(axis):
    if isinstance(axis, bool):
        raise ValueError(f"`axis` must be of type `int`. Received: axis={axis} of type "
                         f"{type(axis)}")


def _cce_fwd(y_true, y_pred, from_logits=False, label_smoothing=0.0, axis=-1):
    _check_axis(axis)
    t = y_pred.dtype.type
    y_true = y_true.astype(y_pred.dtype, copy=False)
    if y_pred.ndim and y_pred.shape[-1] == 1:
        warnings.warn("In loss categorical_crossentropy, expected y_pred.shape to be "
                      "(batch_size, num_classes) with num_classes > 1. Received: "
                      f"y_pred.shape={y_pred.shape}. Consider using 'binary_crossentropy' if "
                      "you only have 2 classes.", SyntaxWarning, stacklevel=4)
    if label_smoothing:
        y_true = y_true * t(1.0 - label_smoothing) + t(label_smoothing) / t(y_true.shape[-1])
    _same_shape(y_true, y_pred, "categorical_crossentropy")
    if y_pred.ndim < 1:
        raise ValueError("categorical_crossentropy: y_true and y_pred must be at least rank 1; "
                         f"got shape {y_pred.shape}")
    if from_logits:
        logp = _log_softmax(y_pred, axis)
        v = -np.sum(y_true * logp, axis=axis)
        return v, None, (True, logp, y_true, None, None, axis)
    s = np.sum(y_pred, axis=axis, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        o = y_pred / s
    oc, keep = _clip_probs(o)
    v = -np.sum(y_true * np.log(oc), axis=axis)
    return v, None, (False, (o, oc, s), y_true, keep, None, axis)


def _normalized_bwd(go, o, s, axis):
    """Backward of o = p / sum(p): dp = (go - sum(go o)) / s."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return (go - np.sum(go * o, axis=axis, keepdims=True)) / s


def _cce_bwd(ctx, dv):
    logits, a, y, keep, _, axis = ctx
    dv = np.expand_dims(dv, axis)
    if logits:
        logp = a
        return dv * (np.exp(logp) * np.sum(y, axis=axis, keepdims=True) - y)
    o, oc, s = a
    t = o.dtype.type
    go = np.where(keep, -y / oc, t(0)) * dv
    return _normalized_bwd(go, o, s, axis)


def _sparse_labels(y_true, y_pred, axis, ignore_class):
    """Keras' sparse label handling: squeeze a trailing 1, the ignore_class
    mask, the integer class ids (checked against the number of classes)."""
    if y_pred.ndim < 1:
        raise ValueError("sparse_categorical_crossentropy: y_pred must be at least rank 1; "
                         f"got shape {y_pred.shape}")
    if y_true.ndim == y_pred.ndim and y_true.shape[axis] == 1:
        y_true = np.squeeze(y_true, axis=axis)
    valid = None
    if ignore_class is not None:
        valid = y_true != np.asarray(ignore_class).astype(y_pred.dtype)
        y_true = np.where(valid, y_true, 0)
    expected = tuple(d for i, d in enumerate(y_pred.shape)
                     if i != axis % y_pred.ndim)
    if y_true.shape != expected:
        raise ValueError("sparse_categorical_crossentropy: y_true must have y_pred's shape "
                         "without the class axis (an integer class id per sample, optionally "
                         f"with a trailing 1): y_true.shape={y_true.shape}, "
                         f"y_pred.shape={y_pred.shape}")
    if y_true.dtype.kind == "f" and not np.all(np.isfinite(y_true)):
        raise ValueError("sparse_categorical_crossentropy: y_true holds NaN or Inf; it must "
                         "hold integer class ids")
    labels = y_true.astype(np.int64)
    n_classes = y_pred.shape[axis]
    if labels.size and (labels.min() < 0 or labels.max() >= n_classes):
        bad = labels[(labels < 0) | (labels >= n_classes)].ravel()[0]
        raise ValueError(f"sparse_categorical_crossentropy: y_true holds the class id {bad}, "
                         f"outside [0, {n_classes}) (y_pred has {n_classes} classes along "
                         f"axis {axis}" + (f"; ignore_class={ignore_class}" if ignore_class
                                           is not None else "") + ")")
    return labels, valid


def _scce_fwd(y_true, y_pred, from_logits=False, ignore_class=None, axis=-1):
    labels, valid = _sparse_labels(y_true, y_pred, axis, ignore_class)
    t = y_pred.dtype.type
    last = axis % y_pred.ndim == y_pred.ndim - 1
    if not last:              # classes last (a view), moved back in the backward
        y_pred = np.ascontiguousarray(np.moveaxis(y_pred, axis, -1))
    if valid is not None:
        y_pred = np.where(valid[..., None], y_pred, t(0))
    n_classes = y_pred.shape[-1]
    # flat index of each sample's label: cheaper than take/put_along_axis
    flat = np.arange(labels.size) * n_classes + labels.reshape(-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        if from_logits:
            logp = _log_softmax(y_pred, -1)
            res = -logp.reshape(-1)[flat].reshape(labels.shape)
            ctx = (True, logp, None, flat, valid, axis, last)
        else:
            s = np.sum(y_pred, axis=-1, keepdims=True)
            o = y_pred / s
            oc, keep = _clip_probs(o)
            res = -np.log(oc.reshape(-1)[flat]).reshape(labels.shape)
            ctx = (False, (o, oc, s), keep, flat, valid, axis, last)
    if valid is not None:
        res = np.where(valid, res, t(0))
    return res.astype(y_pred.dtype, copy=False), valid, ctx


def _scce_bwd(ctx, dv):
    logits, a, keep, flat, valid, axis, last = ctx
    if valid is not None:
        dv = np.where(valid, dv, 0)
    dv = dv[..., None]
    if logits:
        g = np.ascontiguousarray(np.exp(a))
        g.reshape(-1)[flat] -= 1                        # softmax - one_hot (in place: a view)
        g *= dv
    else:
        o, oc, s = a
        t = o.dtype.type
        go = np.zeros(o.shape, o.dtype)
        with np.errstate(divide="ignore", invalid="ignore"):
            go.reshape(-1)[flat] = np.where(keep.reshape(-1)[flat],
                                            t(-1) / oc.reshape(-1)[flat], t(0))
            g = _normalized_bwd(go * dv, o, s, -1)
    if valid is not None:
        g = np.where(valid[..., None], g, 0)
    if not last:
        g = np.moveaxis(g, -1, axis)
    return g


def _regression_args(y_true, y_pred):
    dt = _compute_dtype(y_pred)
    return _as_float(y_true, dt, "y_true"), _as_float(y_pred, dt, "y_pred")


def mean_squared_error(y_true, y_pred):
    """Per-sample ``mean(square(y_true - y_pred), axis=-1)``.

    Example: ``mean_squared_error([[0., 1.]], [[1., 1.]])`` is ``[0.5]``
    """
    return _mse_fwd(*_regression_args(y_true, y_pred))[0]


def mean_absolute_error(y_true, y_pred):
    """Per-sample ``mean(abs(y_true - y_pred), axis=-1)``.

    Example: ``mean_absolute_error([[0., 1.]], [[1., 1.]])`` is ``[0.5]``
    """
    return _mae_fwd(*_regression_args(y_true, y_pred))[0]


def mean_absolute_percentage_error(y_true, y_pred):
    """Per-sample ``100 * mean(abs((y_true - y_pred) / max(abs(y_true), 1e-7)), axis=-1)``.

    Example: ``mean_absolute_percentage_error([[100.]], [[90.]])`` is ``[10.]``
    """
    return _mape_fwd(*_regression_args(y_true, y_pred))[0]


def mean_squared_logarithmic_error(y_true, y_pred):
    """Per-sample ``mean(square(log(max(y_pred, eps) + 1) - log(max(y_true, eps) + 1)), -1)``.

    Example: ``mean_squared_logarithmic_error([[0.]], [[np.e - 1]])`` is ``[1.]``
    """
    return _msle_fwd(*_regression_args(y_true, y_pred))[0]


def huber(y_true, y_pred, delta=1.0):
    """Per-sample Huber loss: ``0.5 x^2`` for ``|x| <= delta``, else
    ``delta |x| - 0.5 delta^2`` (x = y_pred - y_true), mean over the last axis.

    Example: ``huber([[0.]], [[3.]])`` is ``[2.5]``
    """
    return _huber_fwd(*_regression_args(y_true, y_pred), delta=delta)[0]


def log_cosh(y_true, y_pred):
    """Per-sample ``mean(log(cosh(y_pred - y_true)), axis=-1)`` (computed as
    ``x + softplus(-2x) - log 2``).

    Example: ``log_cosh([[0.]], [[1.]])`` is ``[0.4338]``
    """
    return _log_cosh_fwd(*_regression_args(y_true, y_pred))[0]


def _ce_args(y_true, y_pred):
    dt = _compute_dtype(y_pred)
    return _as_float(y_true, dt, "y_true"), _as_float(y_pred, dt, "y_pred")


def binary_crossentropy(y_true, y_pred, from_logits=False, label_smoothing=0.0, axis=-1):
    """Per-sample binary crossentropy, the mean over ``axis``; probabilities
    clipped to [1e-7, 1 - 1e-7] unless ``from_logits``.

    Example: ``binary_crossentropy([[1.]], [[0.5]])`` is ``[0.6931]``
    """
    return _bce_fwd(*_ce_args(y_true, y_pred), from_logits=from_logits,
                    label_smoothing=label_smoothing, axis=axis)[0]


def categorical_crossentropy(y_true, y_pred, from_logits=False, label_smoothing=0.0,
                             axis=-1):
    """Per-sample categorical crossentropy of one-hot (or soft) ``y_true``;
    ``y_pred`` normalised to sum 1 and clipped unless ``from_logits``.

    Example: ``categorical_crossentropy([[0., 1.]], [[0.5, 0.5]])`` is ``[0.6931]``
    """
    return _cce_fwd(*_ce_args(y_true, y_pred), from_logits=from_logits,
                    label_smoothing=label_smoothing, axis=axis)[0]


def sparse_categorical_crossentropy(y_true, y_pred, from_logits=False, ignore_class=None,
                                    axis=-1):
    """Per-sample crossentropy of integer class ids ``y_true``; entries equal
    to ``ignore_class`` give 0 (and are masked out of the reduction).

    Example: ``sparse_categorical_crossentropy([1], [[0.5, 0.5]])`` is ``[0.6931]``
    """
    dt = _compute_dtype(y_pred)
    y_pred = _as_float(y_pred, dt, "y_pred")
    y_true = np.asarray(y_true)
    if y_true.dtype.kind not in "fiub":
        raise TypeError(f"y_true must hold integer class ids, got dtype {y_true.dtype}")
    return _scce_fwd(y_true, y_pred, from_logits=from_logits, ignore_class=ignore_class,
                     axis=axis)[0]


_IMPLS = {
    mean_squared_error: (_mse_fwd, _mse_bwd),
    mean_absolute_error: (_mae_fwd, _mae_bwd),
    mean_absolute_percentage_error: (_mape_fwd, _mape_bwd),
    mean_squared_logarithmic_error: (_msle_fwd, _msle_bwd),
    huber: (_huber_fwd, _huber_bwd),
    log_cosh: (_log_cosh_fwd, _log_cosh_bwd),
    binary_crossentropy: (_bce_fwd, _bce_bwd),
    categorical_crossentropy: (_cce_fwd, _cce_bwd),
    sparse_categorical_crossentropy: (_scce_fwd, _scce_bwd),
}


def _values_and_mask(fn, y_true, y_pred, **kwargs):
    """A loss function's per-sample values and the mask Keras attaches to
    them (sparse crossentropy's ignore_class), for metrics."""
    if fn in _IMPLS:
        if fn is sparse_categorical_crossentropy:
            dt = _compute_dtype(y_pred)
            return _scce_fwd(np.asarray(y_true), _as_float(y_pred, dt, "y_pred"),
                             **kwargs)[:2]
        dt = _compute_dtype(y_pred)
        return _IMPLS[fn][0](_as_float(y_true, dt, "y_true"), _as_float(y_pred, dt, "y_pred"),
                             **kwargs)[:2]
    return np.asarray(fn(y_true, y_pred, **kwargs)), None


# ---------------------------------------------------------------- reduction

def _standardize_reduction(reduction):
    if reduction not in _REDUCTIONS:
        raise ValueError("Invalid value for argument `reduction`. Expected one of "
                         f"{set(_REDUCTIONS)}. Received: reduction={reduction}")
    return reduction


def _per_sample(sample_weight, other, what):
    """Refuse one weight per sample ([N], N > 1) against per-step values or a mask
    ([N, T, ...], T != 1) after Keras' rank rule. Keras broadcasts such a weight
    against the LAST axis: an error when N != T, and when N == T a silent
    weighting of the time steps instead of the samples. rnnkern raises in both
    cases (give the weights the values' shape, or [N, 1])."""
    if sample_weight.ndim == 1 and other.ndim > 1 and sample_weight.shape[0] > 1 \
            and other.shape[-1] != 1:
        raise ValueError(
            f"sample_weight of shape {sample_weight.shape} does not broadcast with {what} of "
            f"shape {other.shape}: one weight per sample of a sequence needs shape "
            f"({sample_weight.shape[0]}, 1), or give the full shape {other.shape}")
    return sample_weight


def _apply_mask(sample_weight, mask, dtype, reduction):
    """Keras' apply_mask: the mask merged into the sample weights (valid
    entries weighted total / valid for the mean reductions)."""
    if mask is None:
        return sample_weight
    mask = np.asarray(mask).astype(bool)
    t = dtype.type
    if reduction in ("mean", "sum_over_batch_size"):
        total, valid = t(mask.size), t(np.count_nonzero(mask))
        mw = total / valid if valid != 0 else t(0)
        fm = np.where(mask, mw, t(0)).astype(dtype)
    else:
        fm = mask.astype(dtype)
    if sample_weight is None:
        return fm
    fm, sample_weight = squeeze_or_expand_to_same_rank(fm, sample_weight)
    _per_sample(sample_weight, fm, "the mask")
    try:
        return sample_weight * fm
    except ValueError:
        raise ValueError(f"sample_weight of shape {sample_weight.shape} does not broadcast with "
                         f"the mask of shape {fm.shape}") from None


def _reduce(values, sample_weight, mask, reduction, dtype, want_grad):
    """Keras' reduce_weighted_values; with ``want_grad`` also d(loss)/d(values)."""
    values = values.astype(dtype, copy=False)
    if sample_weight is not None:
        sample_weight = _as_float(sample_weight, dtype, "sample_weight")
    sw = _apply_mask(sample_weight, mask, dtype, reduction)
    vshape = values.shape
    if sw is not None:
        v2, sw2 = squeeze_or_expand_to_same_rank(values, sw)
        if sample_weight is not None:
            _per_sample(sw2, v2, "the per-sample losses")
        try:
            shape = np.broadcast_shapes(v2.shape, sw2.shape)
        except ValueError:
            given = np.shape(sample_weight) if sample_weight is not None else sw.shape
            raise ValueError(
                f"sample_weight of shape {given} "
                f"does not broadcast with the per-sample losses of shape {vshape} (give one "
                "weight per sample, shape (batch,), or the losses' shape)") from None
        weighted = v2 * sw2
    else:
        v2, sw2, weighted = values, None, values
        shape = values.shape
    t = dtype.type
    if reduction is None or reduction == "none" or shape == () or shape == (0,):
        if not want_grad:
            if shape == (0,) and reduction not in (None, "none"):
                return t(0), None     # Keras returns the empty array; the mean of none is 0
            return weighted, None
        if reduction is None or reduction == "none":
            raise ValueError("value_and_gradient needs a reduced (scalar) loss; this loss has "
                             f"reduction={reduction!r}")
        if shape == (0,):
            return t(0), np.zeros(vshape, dtype)
        dw = np.ones(shape, dtype)
    else:
        loss = np.sum(weighted, dtype=dtype)
        scale = t(1)
        if reduction in ("sum_over_batch_size", "mean", "mean_with_sample_weight"):
            if reduction == "mean_with_sample_weight" and sw2 is not None:
                divisor = np.sum(sw2, dtype=dtype)
            else:
                divisor = t(math.prod(shape))
            loss = loss / divisor if divisor != 0 else t(0)
            scale = t(1) / divisor if divisor != 0 else t(0)
        if not want_grad:
            return loss, None
        weighted = loss
        dw = np.full(shape, scale, dtype)
    if sw2 is not None:
        dw = dw * sw2
    return weighted, _unbroadcast(dw, v2.shape).reshape(vshape)


# ----------------------------------------------------------------- classes

class Loss:
    """Base class of the losses (Keras' ``keras.losses.Loss``).

    Args:
        name: str; defaults to the snake-case class name, made unique.
        reduction: "sum_over_batch_size" (default), "sum", "mean",
            "mean_with_sample_weight", "none" or None.
        dtype: the computation dtype; defaults to rnnkern's floatx (float32).

    Subclasses implement ``call(y_true, y_pred)`` (per-sample losses) and,
    for ``value_and_gradient``, ``gradient(y_true, y_pred, d_values) ->
    d_y_pred`` (an rnnkern addition: the per-sample losses' backward).

    Example::

        class MyMSE(Loss):
            def call(self, y_true, y_pred): return np.mean((y_pred - y_true) ** 2, axis=-1)
            def gradient(self, y_true, y_pred, dv):
                return dv[..., None] * 2 * (y_pred - y_true) / y_pred.shape[-1]
    """

    def __init__(self, name=None, reduction="sum_over_batch_size", dtype=None):
        self.name = name or auto_name(type(self).__name__)
        self.reduction = _standardize_reduction(reduction)
        self._dtype = None if dtype is None else np.dtype(getattr(dtype, "name", dtype))

    @property
    def dtype(self):
        """The computation dtype's name ("float32" unless set)."""
        return (self._dtype or _floatx()).name

    def _convert(self, y_true, y_pred):
        dt = self._dtype or _floatx()
        return _as_float(y_true, dt, "y_true"), _as_float(y_pred, dt, "y_pred"), dt

    def call(self, y_true, y_pred):
        raise NotImplementedError

    def gradient(self, y_true, y_pred, d_values):
        raise NotImplementedError(
            f"{type(self).__name__} has no gradient: implement gradient(y_true, y_pred, "
            "d_values) -> d_y_pred (the backward of call), or use one of rnnkern.losses' "
            "losses")

    def _forward(self, y_true, y_pred):
        """(values, mask, ctx); ctx for ``_backward``."""
        return np.asarray(self.call(y_true, y_pred)), None, (y_true, y_pred)

    def _backward(self, ctx, d_values):
        y_true, y_pred = ctx
        return self.gradient(y_true, y_pred, d_values)

    def _run(self, y_true, y_pred, sample_weight, mask, want_grad):
        yt, yp, dt = self._convert(y_true, y_pred)
        values, out_mask, ctx = self._forward(yt, yp)
        if mask is not None:
            mask = np.asarray(mask).astype(bool)
            if out_mask is not None:
                mask = mask & out_mask
        else:
            mask = out_mask
        values = np.asarray(values)
        loss, dvalues = _reduce(values, sample_weight, mask, self.reduction, dt, want_grad)
        if not want_grad:
            return loss, None
        g = self._backward(ctx, dvalues.astype(dt, copy=False))
        g = np.ascontiguousarray(np.asarray(g, dtype=dt).reshape(yp.shape))
        return float(loss), g

    def __call__(self, y_true, y_pred, sample_weight=None, mask=None):
        """The reduced loss (a float; the per-sample array with reduction "none").
        ``mask`` (rnnkern): y_pred's mask, as Keras' mask on the y_pred tensor."""
        loss, _ = self._run(y_true, y_pred, sample_weight, mask, False)
        if self.reduction is None or self.reduction == "none" or np.ndim(loss) > 0:
            return loss
        return float(loss)

    def value_and_gradient(self, y_true, y_pred, sample_weight=None, mask=None):
        """(the reduced loss as a float, its gradient with respect to y_pred:
        y_pred's shape, the loss's dtype, C-contiguous)."""
        return self._run(y_true, y_pred, sample_weight, mask, True)

    def get_config(self):
        return {"name": self.name, "reduction": self.reduction}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        return f"<{type(self).__name__} name={self.name}>"


class LossFunctionWrapper(Loss):
    """A loss function as a ``Loss`` (Keras' LossFunctionWrapper): ``fn(y_true,
    y_pred, **kwargs)`` gives the per-sample losses, after Keras' squeeze /
    expand of a trailing 1.

    Args:
        fn: one of this module's loss functions, or any function of NumPy
            arrays (then ``value_and_gradient`` needs ``gradient``).
        reduction, name, dtype: as ``Loss``.
        gradient: (rnnkern) for a custom ``fn``, ``gradient(y_true, y_pred,
            d_values, **kwargs) -> d_y_pred``.
        **kwargs: passed to ``fn`` (e.g. ``delta`` of ``huber``).

    Example: ``LossFunctionWrapper(mean_squared_error, name="mse")(y, p)``
    """

    def __init__(self, fn, reduction="sum_over_batch_size", name=None, dtype=None,
                 gradient=None, **kwargs):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        if not callable(fn):
            raise TypeError(f"fn must be a function, got {type(fn).__name__}")
        self.fn = fn
        self._fn_kwargs = kwargs
        self._gradient = gradient if gradient is not None else getattr(fn, "gradient", None)

    def call(self, y_true, y_pred):
        y_true, y_pred = squeeze_or_expand_to_same_rank(y_true, y_pred)
        return self.fn(y_true, y_pred, **self._fn_kwargs)

    def _forward(self, y_true, y_pred):
        impl = _IMPLS.get(self.fn)
        if impl is None:
            return np.asarray(self.call(y_true, y_pred)), None, (y_true, y_pred)
        shape = y_pred.shape
        yt, yp = squeeze_or_expand_to_same_rank(y_true, y_pred)
        values, mask, ctx = impl[0](yt, yp, **self._fn_kwargs)
        return values, mask, (impl[1], ctx, shape)

    def _backward(self, ctx, d_values):
        if len(ctx) == 3 and callable(ctx[0]):
            bwd, inner, shape = ctx
            return bwd(inner, d_values).reshape(shape)
        y_true, y_pred = ctx
        if self._gradient is None:
            raise NotImplementedError(
                f"the loss function {getattr(self.fn, '__name__', self.fn)!r} has no known "
                "gradient: give LossFunctionWrapper(fn, gradient=g) with g(y_true, y_pred, "
                "d_values) -> d_y_pred, or subclass rnnkern.losses.Loss")
        yt, yp = squeeze_or_expand_to_same_rank(y_true, y_pred)
        return np.asarray(self._gradient(yt, yp, d_values, **self._fn_kwargs)).reshape(
            y_pred.shape)

    def get_config(self):
        config = super().get_config()
        config.update({"fn": serialize(self.fn)})
        config.update(self._fn_kwargs)
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if "fn" in config:
            config["fn"] = deserialize(config["fn"])
        return cls(**config)

    def __repr__(self):
        return f"<LossFunctionWrapper({self.fn}, kwargs={self._fn_kwargs})>"


class MeanSquaredError(LossFunctionWrapper):
    """``mean(square(y_true - y_pred))``.

    Args:
        reduction: see ``Loss``. Defaults to "sum_over_batch_size".
        name: defaults to "mean_squared_error".
        dtype: the computation dtype (default float32).

    Example: ``MeanSquaredError()([[0., 1.]], [[1., 1.]]) == 0.5``
    """

    def __init__(self, reduction="sum_over_batch_size", name="mean_squared_error",
                 dtype=None):
        super().__init__(mean_squared_error, name=name, reduction=reduction, dtype=dtype)

    def get_config(self):
        return Loss.get_config(self)


class MeanAbsoluteError(LossFunctionWrapper):
    """``mean(abs(y_true - y_pred))``.

    Args:
        reduction: see ``Loss``. Defaults to "sum_over_batch_size".
        name: defaults to "mean_absolute_error".
        dtype: the computation dtype (default float32).

    Example: ``MeanAbsoluteError()([[0., 1.]], [[1., 1.]]) == 0.5``
    """

    def __init__(self, reduction="sum_over_batch_size", name="mean_absolute_error",
                 dtype=None):
        super().__init__(mean_absolute_error, name=name, reduction=reduction, dtype=dtype)

    def get_config(self):
        return Loss.get_config(self)


class MeanAbsolutePercentageError(LossFunctionWrapper):
    """``100 * mean(abs((y_true - y_pred) / max(abs(y_true), 1e-7)))``.

    Args:
        reduction: see ``Loss``. Defaults to "sum_over_batch_size".
        name: defaults to "mean_absolute_percentage_error".
        dtype: the computation dtype (default float32).

    Example: ``MeanAbsolutePercentageError()([100., 200.], [90., 210.]) == 7.5``
    """

    def __init__(self, reduction="sum_over_batch_size",
                 name="mean_absolute_percentage_error", dtype=None):
        super().__init__(mean_absolute_percentage_error, name=name, reduction=reduction,
                         dtype=dtype)

    def get_config(self):
        return Loss.get_config(self)


class MeanSquaredLogarithmicError(LossFunctionWrapper):
    """``mean(square(log(y_true + 1) - log(y_pred + 1)))`` (both floored at 1e-7).

    Args:
        reduction: see ``Loss``. Defaults to "sum_over_batch_size".
        name: defaults to "mean_squared_logarithmic_error".
        dtype: the computation dtype (default float32).

    Example: ``MeanSquaredLogarithmicError()([[0.]], [[np.e - 1]]) == 1.0``
    """

    def __init__(self, reduction="sum_over_batch_size",
                 name="mean_squared_logarithmic_error", dtype=None):
        super().__init__(mean_squared_logarithmic_error, name=name, reduction=reduction,
                         dtype=dtype)

    def get_config(self):
        return Loss.get_config(self)


class Huber(LossFunctionWrapper):
    """Huber loss: ``0.5 x^2`` for ``|x| <= delta``, ``delta |x| - 0.5 delta^2``
    beyond (x = y_pred - y_true).

    Args:
        delta: float, where the loss turns from quadratic to linear. Defaults to 1.0.
        reduction: see ``Loss``. Defaults to "sum_over_batch_size".
        name: defaults to "huber_loss".
        dtype: the computation dtype (default float32).

    Example: ``Huber(delta=1.0)([[0.]], [[3.]]) == 2.5``
    """

    def __init__(self, delta=1.0, reduction="sum_over_batch_size", name="huber_loss",
                 dtype=None):
        super().__init__(huber, name=name, reduction=reduction, dtype=dtype, delta=delta)
        self.delta = delta

    def get_config(self):
        # Keras 3 leaves delta out of its config (so a round trip loses it); kept here
        return {**Loss.get_config(self), "delta": self.delta}


class LogCosh(LossFunctionWrapper):
    """``mean(log(cosh(y_pred - y_true)))``.

    Args:
        reduction: see ``Loss``. Defaults to "sum_over_batch_size".
        name: defaults to "log_cosh".
        dtype: the computation dtype (default float32).

    Example: ``LogCosh()([[0.]], [[1.]])`` is 0.4338
    """

    def __init__(self, reduction="sum_over_batch_size", name="log_cosh", dtype=None):
        super().__init__(log_cosh, name=name, reduction=reduction, dtype=dtype)

    def get_config(self):
        return Loss.get_config(self)


class BinaryCrossentropy(LossFunctionWrapper):
    """Binary crossentropy of labels in {0, 1} (or soft labels).

    Args:
        from_logits: whether y_pred are logits (else probabilities, clipped to
            [1e-7, 1 - 1e-7]). Defaults to False.
        label_smoothing: float in [0, 1]; labels move to ``y (1 - ls) + ls / 2``.
        axis: the axis the mean runs over. Defaults to -1.
        reduction: see ``Loss``. Defaults to "sum_over_batch_size".
        name: defaults to "binary_crossentropy".
        dtype: the computation dtype (default float32).

    Example: ``BinaryCrossentropy()([[1.]], [[0.5]])`` is 0.6931
    """

    def __init__(self, from_logits=False, label_smoothing=0.0, axis=-1,
                 reduction="sum_over_batch_size", name="binary_crossentropy", dtype=None):
        super().__init__(binary_crossentropy, name=name, reduction=reduction, dtype=dtype,
                         from_logits=from_logits, label_smoothing=label_smoothing, axis=axis)
        self.from_logits = from_logits
        self.label_smoothing = label_smoothing
        self.axis = axis

    def get_config(self):
        return {**Loss.get_config(self), "from_logits": self.from_logits,
                "label_smoothing": self.label_smoothing, "axis": self.axis}


class CategoricalCrossentropy(LossFunctionWrapper):
    """Categorical crossentropy of one-hot (or soft) labels.

    Args:
        from_logits: whether y_pred are logits (else probabilities, normalised
            to sum 1 and clipped). Defaults to False.
        label_smoothing: float in [0, 1]; labels move to ``y (1 - ls) + ls / C``.
        axis: the class axis. Defaults to -1.
        reduction: see ``Loss``. Defaults to "sum_over_batch_size".
        name: defaults to "categorical_crossentropy".
        dtype: the computation dtype (default float32).

    Example: ``CategoricalCrossentropy()([[0., 1.]], [[0.5, 0.5]])`` is 0.6931
    """

    def __init__(self, from_logits=False, label_smoothing=0.0, axis=-1,
                 reduction="sum_over_batch_size", name="categorical_crossentropy",
                 dtype=None):
        super().__init__(categorical_crossentropy, name=name, reduction=reduction, dtype=dtype,
                         from_logits=from_logits, label_smoothing=label_smoothing, axis=axis)
        self.from_logits = from_logits
        self.label_smoothing = label_smoothing
        self.axis = axis

    def get_config(self):
        return {**Loss.get_config(self), "from_logits": self.from_logits,
                "label_smoothing": self.label_smoothing, "axis": self.axis}


class SparseCategoricalCrossentropy(LossFunctionWrapper):
    """Crossentropy of integer class ids (shape: y_pred's without the class
    axis, or with a trailing 1).

    Args:
        from_logits: whether y_pred are logits. Defaults to False.
        ignore_class: a class id whose entries are left out of the loss
            (e.g. padding); None for none.
        reduction: see ``Loss``. Defaults to "sum_over_batch_size".
        axis: the class axis. Defaults to -1.
        name: defaults to "sparse_categorical_crossentropy".
        dtype: the computation dtype (default float32).

    Example: ``SparseCategoricalCrossentropy()([1], [[0.5, 0.5]])`` is 0.6931
    """

    def __init__(self, from_logits=False, ignore_class=None, reduction="sum_over_batch_size",
                 axis=-1, name="sparse_categorical_crossentropy", dtype=None):
        super().__init__(sparse_categorical_crossentropy, name=name, reduction=reduction,
                         dtype=dtype, from_logits=from_logits, ignore_class=ignore_class,
                         axis=axis)
        self.from_logits = from_logits
        self.ignore_class = ignore_class
        self.axis = axis

    def _convert(self, y_true, y_pred):
        dt = self._dtype or _floatx()
        yt = np.asarray(y_true)
        if yt.dtype.kind not in "fiub":
            raise TypeError(f"y_true must hold integer class ids, got dtype {yt.dtype} "
                            f"(shape {yt.shape})")
        return yt.astype(dt), _as_float(y_pred, dt, "y_pred"), dt

    def get_config(self):
        config = {**Loss.get_config(self), "from_logits": self.from_logits,
                  "ignore_class": self.ignore_class}
        if self.axis != -1:   # Keras leaves axis out; kept when it matters
            config["axis"] = self.axis
        return config


# ------------------------------------------------------------ resolution

# Keras' legacy aliases (keras._legacy.losses.*) as module attributes
mse = MSE = mean_squared_error
mae = MAE = mean_absolute_error
mape = MAPE = mean_absolute_percentage_error
msle = MSLE = mean_squared_logarithmic_error
logcosh = log_cosh
bce = BCE = binary_crossentropy

_CLASSES = (Loss, LossFunctionWrapper, MeanSquaredError, MeanAbsoluteError,
            MeanAbsolutePercentageError, MeanSquaredLogarithmicError, Huber, LogCosh,
            BinaryCrossentropy, CategoricalCrossentropy, SparseCategoricalCrossentropy)
_FUNCTIONS = tuple(_IMPLS)
ALL_OBJECTS_DICT = {o.__name__: o for o in _CLASSES + _FUNCTIONS}
ALL_OBJECTS_DICT.update({"bce": binary_crossentropy, "BCE": binary_crossentropy,
                         "mae": mean_absolute_error, "MAE": mean_absolute_error,
                         "mse": mean_squared_error, "MSE": mean_squared_error,
                         "mape": mean_absolute_percentage_error,
                         "MAPE": mean_absolute_percentage_error,
                         "msle": mean_squared_logarithmic_error,
                         "MSLE": mean_squared_logarithmic_error,
                         # Keras 2's name (keras._legacy.losses.logcosh)
                         "logcosh": log_cosh})

# Keras 3 losses rnnkern does not implement (named in the error)
_KERAS_ONLY = ("BinaryFocalCrossentropy", "CategoricalFocalCrossentropy", "CategoricalHinge",
               "Circle", "CosineSimilarity", "CTC", "Dice", "Hinge", "KLDivergence", "Poisson",
               "SquaredHinge", "Tversky", "binary_focal_crossentropy",
               "categorical_focal_crossentropy", "categorical_hinge", "circle",
               "cosine_similarity", "ctc", "dice", "hinge", "kl_divergence", "kld", "KLD",
               "poisson", "squared_hinge", "tversky")


def _valid_names():
    return sorted(k for k in ALL_OBJECTS_DICT if k not in ("Loss", "LossFunctionWrapper"))


def _unknown(identifier):
    if identifier in _KERAS_ONLY:
        return ValueError(f"Keras' loss {identifier!r} is not implemented in rnnkern; the "
                          f"valid names are {_valid_names()}")
    return ValueError(f"Could not interpret loss identifier: {identifier!r}; the valid names "
                      f"are {_valid_names()}")


def serialize(loss):
    """Keras' serialized form of a loss: ``{"module": "keras.losses",
    "class_name", "config", "registered_name"}``, or for a function Keras'
    ``{"module": "builtins", "class_name": "function", "config": name, ...}``.

    Example: ``serialize(MeanSquaredError())["class_name"] == "MeanSquaredError"``
    """
    if isinstance(loss, Loss):
        builtin = ALL_OBJECTS_DICT.get(type(loss).__name__) is type(loss)
        return {"module": "keras.losses" if builtin else type(loss).__module__,
                "class_name": type(loss).__name__, "config": loss.get_config(),
                "registered_name": None if builtin else type(loss).__name__}
    if callable(loss):
        return {"module": "builtins", "class_name": "function",
                "config": getattr(loss, "__name__", repr(loss)), "registered_name": "function"}
    raise TypeError(f"serialize expects a loss object or function, got {type(loss).__name__}")


def deserialize(name, custom_objects=None):
    """The loss a serialized form describes: a class config gives an
    instance, a function entry (or name) the function.

    Example: ``deserialize({"class_name": "Huber", "config": {"delta": 2.0}})``
    """
    table = dict(ALL_OBJECTS_DICT)
    table.update(custom_objects or {})
    if isinstance(name, str):
        if name not in table:
            raise _unknown(name)
        obj = table[name]
        return obj() if inspect.isclass(obj) else obj
    if not isinstance(name, dict) or "class_name" not in name:
        raise ValueError(f"a loss config must be a name or a dict with 'class_name' and "
                         f"'config'; got {name!r}")
    cls_name, config = name["class_name"], name.get("config")
    if cls_name == "function":
        if config not in table or inspect.isclass(table[config]):
            raise _unknown(config)
        return table[config]
    if cls_name not in table or not inspect.isclass(table[cls_name]):
        raise _unknown(cls_name)
    return table[cls_name].from_config(dict(config or {}))


def get(identifier):
    """A ``Loss`` object for a name (any of Keras' spellings), a Keras config
    dict, a function or an instance (None -> None). Function names and
    functions come wrapped in ``LossFunctionWrapper`` named after the
    identifier, as Keras' compile wraps them (``keras.losses.get`` itself
    returns the bare function).

    Example: ``get("mse")(y_true, y_pred)``; ``get("Huber").delta == 1.0``
    """
    if identifier is None:
        return None
    if isinstance(identifier, Loss):
        return identifier
    if isinstance(identifier, dict):
        obj = deserialize(identifier)
    elif isinstance(identifier, str):
        obj = ALL_OBJECTS_DICT.get(identifier)
        if obj is None:
            raise _unknown(identifier)
        if obj in (Loss, LossFunctionWrapper):
            raise _unknown(identifier)
    else:
        obj = identifier
    if inspect.isclass(obj):
        if not issubclass(obj, Loss):
            raise ValueError(f"Could not interpret loss identifier: {identifier!r}")
        return obj()
    if isinstance(obj, Loss):
        return obj
    # a Keras loss instance: rebuilt from its config
    cls = ALL_OBJECTS_DICT.get(type(obj).__name__)
    if cls is not None and inspect.isclass(cls) and hasattr(obj, "get_config") and \
            type(obj).__module__.startswith("keras"):
        cfg = dict(obj.get_config())
        if cls is LossFunctionWrapper:
            raise ValueError(f"Could not interpret loss identifier: {identifier!r} (a Keras "
                             "LossFunctionWrapper; pass its function's name instead)")
        return cls.from_config(cfg)
    if callable(obj):
        if isinstance(identifier, str):
            name = identifier
        else:
            name = to_snake_case(getattr(obj, "__name__", type(obj).__name__))
        if obj not in _IMPLS and getattr(obj, "__module__", "").startswith("keras"):
            # a Keras loss function: ours of the same name
            ours = ALL_OBJECTS_DICT.get(getattr(obj, "__name__", ""))
            if ours in _IMPLS:
                obj = ours
        return LossFunctionWrapper(obj, name=name)
    raise ValueError(f"Could not interpret loss identifier: {identifier!r}")
