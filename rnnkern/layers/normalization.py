"""BatchNormalization and LayerNormalization, in NumPy (Keras 3's
keras/src/layers/normalization/{batch,layer}_normalization.py).

BatchNormalization normalises each channel (the ``axis`` entry) over every
other axis. ``training=True`` (``fit``, or a call with ``training=True``) uses
the batch's mean and biased variance and, as a side effect of that call, moves
the moving statistics toward them (``moving = moving * momentum + batch * (1 -
momentum)``), the way a stateful recurrent layer keeps its states; any other
call (``training=None`` or False, ``evaluate``, ``predict``) and any call of a
layer with ``trainable=False`` uses the moving statistics (Keras' "frozen
BatchNormalization runs in inference mode"). With a ``mask`` (of the input's
shape without its last axis), the batch statistics are over the unmasked
entries only, as Keras':

    mean = sum(w x) / (sum(w) + 1e-7),  var = sum(w (x - mean)^2) / (sum(w) + 1e-7)

and the mask is passed on. Weights (Keras' order; gamma only with scale=True,
beta only with center=True): gamma [C], beta [C], moving_mean [C],
moving_variance [C]. The moving statistics are never trained: they are in
``weights`` and ``non_trainable_weights`` only, and their gradient entry is None.

LayerNormalization normalises each sample over ``axis`` (an int or a list) and
passes masks on. Weights: gamma, beta (the normalised axes' shape).

Backward, both layers: the exact gradient of what the forward computed (the
batch statistics' dependence on the inputs included), checked against float64
central finite differences and torch autograd through Keras' layers in
tests/test_normalization.py.
"""
from __future__ import annotations

import numbers
import warnings

import numpy as np

from .. import initializers as _inits
from ..config import make_rng
from .base import (Layer, check_bool, float_array, format_shape, grad_or_zeros,
                   weight_property)
from .core import _keep, _no_regularizers

__all__ = ["BatchNormalization", "LayerNormalization"]

# Keras' backend.epsilon(): the masked moments divide by sum(mask) + this
_MASK_EPSILON = 1e-7


def _real(name, v):
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {v!r}")
    return float(v)


def _axis_index(axis, ndim, what):
    if not -ndim <= axis < ndim:
        raise ValueError(f"Axis {axis} is out of bounds for inputs of rank {ndim} "
                         f"({what}). Received: axis={axis}")
    return axis % ndim


def _acc_sum(a, axes):
    """Sums over ``axes`` (kept) accumulated in float64 for float32 data: the
    statistics of a large batch stay exact to float32 rounding."""
    acc = np.float64 if a.dtype == np.float32 else None
    return np.sum(a, axis=axes, keepdims=True, dtype=acc).astype(a.dtype, copy=False)


# ------------------------------------------------------- BatchNormalization

class BatchNormalization(Layer):
    """Normalises each channel with the batch's statistics in training and the
    moving statistics otherwise (Keras 3's BatchNormalization).

    Arguments as Keras 3: axis=-1 (the channel axis, an int), momentum=0.99,
    epsilon=1e-3, center=True (beta), scale=True (gamma),
    beta_initializer="zeros", gamma_initializer="ones",
    moving_mean_initializer="zeros", moving_variance_initializer="ones",
    synchronized=False (True is a ValueError, as on Keras' torch backend);
    regularizers / constraints must be None and renorm False.

    Call: ``layer(x, training=None, mask=None)``; see the module docstring.

    >>> model = Sequential([Input((128, 1)), Conv1D(64, 3, padding="same"),
    ...                     BatchNormalization(), ReLU(), ...])
    """

    gamma = weight_property("gamma", "[C] (None with scale=False), read-only.")
    beta = weight_property("beta", "[C] (None with center=False), read-only.")
    moving_mean = weight_property("moving_mean", "[C], non-trainable, read-only.")
    moving_variance = weight_property("moving_variance", "[C], non-trainable, read-only.")

    _call_args = ("training", "mask")
    _call_has_mask_arg = True
    _supports_masking = True

    def __init__(self, axis=-1, momentum=0.99, epsilon=1e-3, center=True, scale=True,
                 beta_initializer="zeros", gamma_initializer="ones",
                 moving_mean_initializer="zeros", moving_variance_initializer="ones",
                 beta_regularizer=None, gamma_regularizer=None, beta_constraint=None,
                 gamma_constraint=None, renorm=False, renorm_clipping=None,
                 renorm_momentum=0.99, synchronized=False, **kwargs):
        _no_regularizers(beta_regularizer=beta_regularizer,
                         gamma_regularizer=gamma_regularizer, beta_constraint=beta_constraint,
                         gamma_constraint=gamma_constraint)
        if renorm:
            raise NotImplementedError("BatchNormalization(renorm=True) is not supported by "
                                      "rnnkern")
        if synchronized:
            raise ValueError("Argument synchronized=True is only supported with the "
                             "TensorFlow backend (rnnkern has one process, one device).")
        super().__init__(**kwargs)
        if isinstance(axis, (bool, np.bool_)) or not isinstance(axis, (int, np.integer)):
            raise TypeError(f"axis must be an int (the channel axis), got {axis!r}")
        self.axis = int(axis)
        self.momentum = _real("momentum", momentum)
        self.epsilon = _real("epsilon", epsilon)
        self.center = check_bool("center", center)
        self.scale = check_bool("scale", scale)
        self.beta_initializer = _inits.get(beta_initializer)
        self.gamma_initializer = _inits.get(gamma_initializer)
        self.moving_mean_initializer = _inits.get(moving_mean_initializer)
        self.moving_variance_initializer = _inits.get(moving_variance_initializer)
        self.synchronized = False
        self.renorm = False
        self.renorm_clipping = renorm_clipping
        self.renorm_momentum = renorm_momentum
        self._ndim = None  # rank of the inputs (None when built from set_weights)
        self._rng = make_rng()

    # ------------------------------------------------------------ weights
    def _weight_names(self):
        return (["gamma"] if self.scale else []) + (["beta"] if self.center else []) + \
            ["moving_mean", "moving_variance"]

    def _non_trainable_names(self):
        return ("moving_mean", "moving_variance")

    def _channels(self):
        return self._params["moving_mean"].shape[0]

    def _check_input_shape(self, input_shape):
        shape = tuple(input_shape)
        ax = _axis_index(self.axis, len(shape), f"input shape {format_shape(shape)}")
        if shape[ax] is None:
            raise ValueError(f"BatchNormalization needs a known size on axis {self.axis}, "
                             f"got inputs of shape {format_shape(shape)}")
        if not self.built:
            return
        if self._ndim is not None and len(shape) != self._ndim:
            raise ValueError(f'Input 0 of layer "{self.name}" is incompatible with the layer: '
                             f"expected ndim={self._ndim}, found ndim={len(shape)}. Full "
                             f"shape received: {format_shape(shape)}")
        if shape[ax] != self._channels():
            raise ValueError(f'Input 0 of layer "{self.name}" is incompatible with the layer: '
                             f"expected axis {self.axis} of input shape to have value "
                             f"{self._channels()}, but received input with shape "
                             f"{format_shape(shape)}")

    def build(self, input_shape):
        self._check_input_shape(input_shape)
        if self.built:
            return
        shape = tuple(input_shape)
        self._create(shape[self.axis % len(shape)])
        self._ndim = len(shape)
        self._build_shapes = shape
        self.built = True

    def _create(self, c):
        if self.scale:
            self.add_weight("gamma", (c,), self.gamma_initializer, self._rng)
        if self.center:
            self.add_weight("beta", (c,), self.beta_initializer, self._rng)
        self.add_weight("moving_mean", (c,), self.moving_mean_initializer, self._rng)
        self.add_weight("moving_variance", (c,), self.moving_variance_initializer, self._rng)

    def _build_from_weights(self, weights):
        names = self._weight_names()
        shapes = [np.shape(w) for w in weights]
        if len(weights) != len(names) or len(shapes[0]) != 1 or \
                any(s != shapes[0] for s in shapes):
            raise ValueError(f"set_weights: layer {self.name!r} takes {len(names)} weights "
                             f"{names} of one shape (channels,), got shapes {shapes}")
        self._create(shapes[0][0])  # the input's rank is taken from the first call
        self.built = True

    def compute_output_shape(self, input_shape):
        _axis_index(self.axis, len(tuple(input_shape)), "compute_output_shape")
        return input_shape

    # ------------------------------------------------------------ forward
    def _standardize(self, x):
        x = float_array(x, "inputs", "float32 of shape (batch, ..., channels)")
        if x.ndim < 1:
            raise ValueError("BatchNormalization needs inputs with at least one axis")
        self._check_input_shape(x.shape)
        return x

    def _mask_weights(self, mask, x):
        """The mask as 0/1 of ``x``'s dtype, shape ``mask.shape + (1,)``."""
        m = np.asarray(mask)
        if m.ndim != x.ndim - 1:
            raise ValueError(f"The mask provided should be one dimension less than the "
                             f"inputs. Received: mask.shape={m.shape}, inputs.shape={x.shape}")
        w = (m != 0).astype(x.dtype)[..., None]
        try:
            ok = np.broadcast_shapes(w.shape, x.shape) == x.shape
        except ValueError:
            ok = False
        if not ok:
            raise ValueError(f"mask of shape {m.shape} does not match inputs of shape "
                             f"{x.shape} (it covers every axis but the last)")
        return w

    def forward(self, x, training=None, mask=None):
        ax = self.axis % x.ndim
        red = tuple(i for i in range(x.ndim) if i != ax)
        bshape = [1] * x.ndim
        bshape[ax] = x.shape[ax]
        w = None if mask is None else self._mask_weights(mask, x)
        g = 1.0 if not self.scale else self.gamma.reshape(bshape)
        beta = 0.0 if not self.center else self.beta.reshape(bshape)
        if not (training is True and self.trainable):
            s = 1.0 / np.sqrt(self.moving_variance.reshape(bshape) + self.epsilon)
            mm = self.moving_mean.reshape(bshape)
            a = g * s
            y = x * a
            y += beta - mm * a
            return y, ((False, x, mm, s, g, red) if _keep(training) else None)
        if w is None:
            n = x.size // x.shape[ax] if x.shape[ax] else 0
            cnt = float(n)
            mean = _acc_sum(x, red) / cnt if n else np.zeros(bshape, x.dtype)
            xc = x - mean
            var = _acc_sum(np.square(xc), red) / cnt if n else np.zeros(bshape, x.dtype)
            wn = 1.0 / cnt if n else 0.0  # d mean / d x
        else:
            cnt = _acc_sum(np.broadcast_to(w, x.shape[:-1] + (1,)), red)
            if ax != x.ndim - 1:  # the mask's last (size-1) axis stands for x's last
                cnt = cnt * x.shape[-1]
            cnt = cnt + _MASK_EPSILON
            mean = _acc_sum(x * w, red) / cnt
            xc = x - mean
            var = _acc_sum(np.square(xc * w), red) / cnt
            wn = w / cnt
        if x.size:  # an empty batch has no statistics: the moving ones stay
            m = self.momentum
            self._store_weights({
                "moving_mean": self.moving_mean * m + mean.reshape(-1) * (1.0 - m),
                "moving_variance": self.moving_variance * m + var.reshape(-1) * (1.0 - m)})
        s = 1.0 / np.sqrt(var + self.epsilon)
        y = xc * (g * s)
        if self.center:
            y += beta
        if not _keep(training):
            return y, None
        excess = 0.0 if w is None else _MASK_EPSILON  # cnt - sum(w)
        return y, (True, xc, mean, s, g, red, wn, cnt, excess)

    # ----------------------------------------------------------- backward
    def backward_from(self, ctx, dy):
        batch = ctx[0]
        if batch:
            _, xc, mean, s, g, red, wn, cnt, excess = ctx
            shape = xc.shape
        else:
            _, x, mm, s, g, red = ctx
            shape = x.shape
        dy = grad_or_zeros(dy, shape)
        db = _acc_sum(dy, red)
        if batch:
            sdx = _acc_sum(dy * xc, red)          # sum dy (x - mean)
            dg = sdx * s
            a_var = -0.5 * g * s ** 3 * sdx        # dL/dvar
            # dL/dmean: directly, and through var (sum w (x - mean) = mean * 1e-7 masked)
            d_mean = -g * s * db - a_var * 2.0 * mean * excess / cnt
            dx = dy * (g * s) + wn * d_mean + (2.0 * a_var) * (wn * xc)
        else:
            dg = _acc_sum(dy * (x - mm), red) * s
            dx = dy * (g * s)
        grads = ([dg.reshape(-1)] if self.scale else []) + \
            ([db.reshape(-1)] if self.center else []) + [None, None]
        return dx, grads

    # ------------------------------------------------------------- config
    def get_config(self):
        cfg = super().get_config()
        cfg.update(axis=self.axis, momentum=self.momentum, epsilon=self.epsilon,
                   center=self.center, scale=self.scale,
                   beta_initializer=_inits.serialize(self.beta_initializer),
                   gamma_initializer=_inits.serialize(self.gamma_initializer),
                   moving_mean_initializer=_inits.serialize(self.moving_mean_initializer),
                   moving_variance_initializer=_inits.serialize(
                       self.moving_variance_initializer),
                   beta_regularizer=None, gamma_regularizer=None, beta_constraint=None,
                   gamma_constraint=None, synchronized=False, renorm=False,
                   renorm_clipping=self.renorm_clipping, renorm_momentum=self.renorm_momentum)
        return cfg


# ------------------------------------------------------- LayerNormalization

class LayerNormalization(Layer):
    """Normalises each sample over ``axis`` (Keras 3's LayerNormalization):
    ``gamma * (x - mean) / sqrt(var + epsilon) + beta``, the biased variance
    over the normalised axes; masks are passed on.

    Arguments as Keras 3: axis=-1 (an int or a list of ints), epsilon=1e-3,
    center=True, scale=True, beta_initializer="zeros", gamma_initializer="ones";
    rms_scaling=False (deprecated in Keras: True gives ``gamma * x / sqrt(var +
    epsilon)``, no centring and no beta). Regularizers / constraints must be None.
    Weights: gamma, beta of the normalised axes' sizes (in increasing axis order).
    """

    gamma = weight_property("gamma", "the normalised axes' shape, read-only.")
    beta = weight_property("beta", "the normalised axes' shape, read-only.")
    _supports_masking = True

    def __init__(self, axis=-1, epsilon=1e-3, center=True, scale=True,
                 beta_initializer="zeros", gamma_initializer="ones", beta_regularizer=None,
                 gamma_regularizer=None, beta_constraint=None, gamma_constraint=None,
                 rms_scaling=False, **kwargs):
        _no_regularizers(beta_regularizer=beta_regularizer,
                         gamma_regularizer=gamma_regularizer, beta_constraint=beta_constraint,
                         gamma_constraint=gamma_constraint)
        rms_scaling = check_bool("rms_scaling", rms_scaling)
        if rms_scaling:
            warnings.warn("You passed `rms_scaling=True`, which is deprecated. This argument "
                          "incorrectly scales the input by the variance, not the root mean "
                          "square. To correctly use RMS Normalization, please use "
                          "`keras.layers.RMSNormalization` instead.", stacklevel=2)
        super().__init__(**kwargs)
        if isinstance(axis, (list, tuple)):
            if not axis or any(isinstance(a, (bool, np.bool_)) or
                               not isinstance(a, (int, np.integer)) for a in axis):
                raise TypeError(f"Expected an int or a list/tuple of ints for the argument "
                                f"'axis', but received: {axis!r}")
            self.axis = sorted(int(a) for a in axis)
        elif isinstance(axis, (int, np.integer)) and not isinstance(axis, (bool, np.bool_)):
            self.axis = int(axis)
        else:
            raise TypeError(f"Expected an int or a list/tuple of ints for the argument "
                            f"'axis', but received: {axis!r}")
        self.epsilon = _real("epsilon", epsilon)
        self.center = check_bool("center", center)
        self.scale = check_bool("scale", scale)
        self.rms_scaling = rms_scaling
        self.beta_initializer = _inits.get(beta_initializer)
        self.gamma_initializer = _inits.get(gamma_initializer)
        self._rng = make_rng()

    def _weight_names(self):
        names = []
        if self.scale or self.rms_scaling:
            names.append("gamma")
        if self.center and not self.rms_scaling:
            names.append("beta")
        return names

    def _axes(self, ndim, what="the inputs"):
        axes = self.axis if isinstance(self.axis, list) else [self.axis]
        pos = sorted({_axis_index(a, ndim, what) for a in axes})
        if len(pos) != len(axes):
            raise ValueError(f"axis {self.axis} names an axis twice for inputs of rank {ndim}")
        return tuple(pos)

    def _check_input_shape(self, input_shape):
        shape = tuple(input_shape)
        axes = self._axes(len(shape), f"input shape {format_shape(shape)}")
        dims = tuple(shape[a] for a in axes)
        if any(d is None for d in dims):
            raise ValueError(f"LayerNormalization needs known sizes on axis {self.axis}, got "
                             f"inputs of shape {format_shape(shape)}")
        if self.built and self._build_shapes is not None and \
                dims != self._weight_shape():
            raise ValueError(f"layer {self.name!r} is built for the sizes {self._weight_shape()}"
                             f" on axis {self.axis}, got inputs of shape {format_shape(shape)}")

    def _weight_shape(self):
        ws = [w for _, w in self._own()]
        return ws[0].shape if ws else tuple(self._build_shapes[a] for a in self._built_axes)

    def build(self, input_shape):
        self._check_input_shape(input_shape)
        if self.built:
            return
        shape = tuple(input_shape)
        axes = self._axes(len(shape))
        wshape = tuple(shape[a] for a in axes)
        for name in self._weight_names():
            init = self.gamma_initializer if name == "gamma" else self.beta_initializer
            self.add_weight(name, wshape, init, self._rng)
        if not isinstance(self.axis, list):
            self.axis = [self.axis]  # as Keras: a list once built
        self._built_axes = axes
        self._build_shapes = shape
        self.built = True

    def _build_from_weights(self, weights):
        names = self._weight_names()
        shapes = [np.shape(w) for w in weights]
        if len(weights) != len(names) or any(s != shapes[0] for s in shapes):
            raise ValueError(f"set_weights: layer {self.name!r} takes {len(names)} weights "
                             f"{names} of one shape, got shapes {shapes}")
        axes = self.axis if isinstance(self.axis, list) else [self.axis]
        k = len(axes)
        if not names or axes != list(range(-k, 0)) or len(shapes[0]) != k:
            # only trailing axes say where the weights' shape sits in the input's
            raise ValueError(f"layer {self.name!r} (axis={self.axis}) is not built yet: call it "
                             "on an input or build(input_shape) before set_weights()")
        self.build((None,) + shapes[0])

    def compute_output_shape(self, input_shape):
        self._axes(len(tuple(input_shape)), "compute_output_shape")
        return input_shape

    def _standardize(self, x):
        x = float_array(x, "inputs", "float32 of shape (batch, ..., features)")
        if self.built:
            self._check_input_shape(x.shape)
        return x

    def forward(self, x, training=None, mask=None):
        axes = self._axes(x.ndim)
        bshape = [1] * x.ndim
        for a in axes:
            bshape[a] = x.shape[a]
        g = self.gamma.reshape(bshape) if "gamma" in self._params else 1.0
        n = 1
        for a in axes:
            n *= x.shape[a]
        mean = np.mean(x, axis=axes, keepdims=True)
        xc = x - mean
        var = np.mean(np.square(xc), axis=axes, keepdims=True)
        s = 1.0 / np.sqrt(var + self.epsilon)
        if self.rms_scaling:
            y = x * s * g
            return y, ((x, xc, s, g, axes, n) if _keep(training) else None)
        xhat = xc * s
        y = xhat * g
        if "beta" in self._params:
            y += self.beta.reshape(bshape)
        return y, ((xhat, s, g, axes, n) if _keep(training) else None)

    def backward_from(self, ctx, dy):
        if self.rms_scaling:
            x, xc, s, g, axes, n = ctx
            dy = grad_or_zeros(dy, x.shape)
            dyg = dy * g
            # y = g x s(var): dx = g s dy - s^3 / n * sum(dy g x) * (x - mean)
            dx = dyg * s - (s ** 3 / n) * np.sum(dyg * x, axis=axes, keepdims=True) * xc
            other = tuple(i for i in range(x.ndim) if i not in axes)
            grads = [np.sum(dy * x * s, axis=other).reshape(self.gamma.shape)]
            return dx, grads
        xhat, s, g, axes, n = ctx
        dy = grad_or_zeros(dy, xhat.shape)
        dxh = dy * g
        dx = s * (dxh - np.mean(dxh, axis=axes, keepdims=True)
                  - xhat * np.mean(dxh * xhat, axis=axes, keepdims=True))
        other = tuple(i for i in range(xhat.ndim) if i not in axes)
        grads = []
        if "gamma" in self._params:
            grads.append(np.sum(dy * xhat, axis=other).reshape(self.gamma.shape))
        if "beta" in self._params:
            grads.append(np.sum(dy, axis=other).reshape(self.beta.shape))
        return dx, grads

    def get_config(self):
        cfg = super().get_config()
        cfg.update(axis=self.axis, epsilon=self.epsilon, center=self.center, scale=self.scale,
                   rms_scaling=self.rms_scaling,
                   beta_initializer=_inits.serialize(self.beta_initializer),
                   gamma_initializer=_inits.serialize(self.gamma_initializer),
                   beta_regularizer=None, gamma_regularizer=None, beta_constraint=None,
                   gamma_constraint=None)
        return cfg
