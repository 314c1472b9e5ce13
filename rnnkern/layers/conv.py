"""Conv2D and MaxPooling2D (channels-last), in NumPy, for the notebooks'
CNN-LSTM: ``TimeDistributed(Conv2D)``, ``TimeDistributed(MaxPooling2D)``,
``TimeDistributed(Flatten)``, then a recurrent layer.

Convolution is im2col: the input windows are gathered into a matrix (one row
per output pixel, one column per kernel tap and input channel) and multiplied
by the kernel reshaped to [KH*KW*C, F]; the backward scatters the window
gradients back (col2im). Padding follows Keras (and TensorFlow): ``"same"``
pads ``max((ceil(in / s) - 1) s + (k - 1) d + 1 - in, 0)`` in all, the smaller
half before.

Shapes: inputs [N, H, W, C]; Conv2D kernel [KH, KW, C, F], bias [F] (Keras'
layout); outputs [N, OH, OW, F].
"""
from __future__ import annotations

import numpy as np

from .. import activations as _activations
from .. import initializers as _inits
from ..config import make_rng
from .base import (Layer, check_bool, check_positive_int, float_array, format_shape,
                   grad_or_zeros, weight_property)
from .core import _act_backward, _keep, _no_regularizers

__all__ = ["Conv2D", "MaxPooling2D"]


def _pair(v, name):
    if isinstance(v, (int, np.integer)) and not isinstance(v, bool):
        v = (v, v)
    try:
        a, b = v
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be an int or a pair of ints, got {v!r}") from None
    for x in (a, b):
        if isinstance(x, bool) or not isinstance(x, (int, np.integer)) or x < 1:
            raise ValueError(f"{name} must be positive ints, got {v!r}")
    return int(a), int(b)


def _padding(v):
    p = str(v).lower()
    if p not in ("valid", "same"):
        raise ValueError(f"padding must be 'valid' or 'same', got {v!r}")
    return p


def _channels_last(data_format):
    if data_format not in (None, "channels_last"):
        raise NotImplementedError("rnnkern's convolution layers are channels-last only "
                                  f"(data_format={data_format!r})")
    return "channels_last"


def _out_size(n, k, s, d, padding):
    """Output size and the padding before / after for one spatial axis."""
    if n is None:
        return None, 0, 0
    dk = (k - 1) * d + 1
    if padding == "valid":
        return ((n - dk) // s + 1 if n >= dk else 0), 0, 0
    out = -(-n // s)
    total = max((out - 1) * s + dk - n, 0)
    return out, total // 2, total - total // 2


def _windows(xp, oh, ow, kh, kw, s, d):
    """View [N, OH, OW, KH, KW, C] of the windows of a padded input."""
    n, _, _, c = xp.shape
    sn, sh, sw, sc = xp.strides
    return np.lib.stride_tricks.as_strided(
        xp, (n, oh, ow, kh, kw, c), (sn, sh * s[0], sw * s[1], sh * d[0], sw * d[1], sc),
        writeable=False)


def _scatter_windows(dwin, in_shape, pads, s, d):
    """col2im: sum the window gradients [N, OH, OW, KH, KW, C] back into the
    padded input, then crop the padding."""
    n, oh, ow, kh, kw, c = dwin.shape
    (pt, pb), (pl, pr) = pads
    dxp = np.zeros((n, in_shape[1] + pt + pb, in_shape[2] + pl + pr, c), dwin.dtype)
    for i in range(kh):
        for j in range(kw):
            r0, c0 = i * d[0], j * d[1]
            dxp[:, r0:r0 + s[0] * (oh - 1) + 1:s[0], c0:c0 + s[1] * (ow - 1) + 1:s[1], :] += \
                dwin[:, :, :, i, j, :]
    return dxp[:, pt:pt + in_shape[1], pl:pl + in_shape[2], :]


def _check_4d(layer, shape):
    shape = tuple(shape)
    if len(shape) != 4:
        raise ValueError(f"{type(layer).__name__} expects inputs of shape (batch, rows, cols, "
                         f"channels), got {format_shape(shape)}")
    return shape


class Conv2D(Layer):
    """2-D convolution (Keras' Conv2D, channels-last): ``activation(conv(x,
    kernel) + bias)``.

    Arguments as Keras 3: filters, kernel_size, strides=(1, 1),
    padding="valid" | "same", data_format=None (channels_last),
    dilation_rate=(1, 1), groups=1, activation=None, use_bias=True,
    kernel_initializer="glorot_uniform", bias_initializer="zeros".
    """

    kernel = weight_property("kernel", "[KH, KW, C, filters], read-only.")
    bias = weight_property("bias", "[filters] (None with use_bias=False), read-only.")

    def __init__(self, filters, kernel_size, strides=(1, 1), padding="valid", data_format=None,
                 dilation_rate=(1, 1), groups=1, activation=None, use_bias=True,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros",
                 kernel_regularizer=None, bias_regularizer=None, activity_regularizer=None,
                 kernel_constraint=None, bias_constraint=None, **kwargs):
        _no_regularizers(kernel_regularizer=kernel_regularizer,
                         bias_regularizer=bias_regularizer, kernel_constraint=kernel_constraint,
                         bias_constraint=bias_constraint)
        super().__init__(activity_regularizer=activity_regularizer, **kwargs)
        self.filters = check_positive_int("filters", filters)
        self.kernel_size = _pair(kernel_size, "kernel_size")
        self.strides = _pair(strides, "strides")
        self.padding = _padding(padding)
        self.data_format = _channels_last(data_format)
        self.dilation_rate = _pair(dilation_rate, "dilation_rate")
        if groups != 1:
            raise NotImplementedError("rnnkern's Conv2D supports groups=1 only")
        self.groups = 1
        if self.strides != (1, 1) and self.dilation_rate != (1, 1):
            raise ValueError("`strides > 1` not supported in conjunction with "
                             "`dilation_rate > 1`.")
        self.activation = _activations.get(activation)
        self.use_bias = check_bool("use_bias", use_bias)
        self.kernel_initializer = _inits.get(kernel_initializer)
        self.bias_initializer = _inits.get(bias_initializer)
        self._rng = make_rng()

    def _weight_names(self):
        return ["kernel", "bias"] if self.use_bias else ["kernel"]

    def _check_input_shape(self, input_shape):
        shape = _check_4d(self, input_shape)
        if shape[-1] is None:
            raise ValueError("Conv2D needs a known number of input channels, got "
                             f"{format_shape(shape)}")
        if self.built and shape[-1] != self.kernel.shape[2]:
            raise ValueError(f"layer {self.name!r} is built for {self.kernel.shape[2]} input "
                             f"channels, got inputs of shape {format_shape(shape)}")
        oh, ow = self._out_hw(shape)
        if oh == 0 or ow == 0:
            raise ValueError(f"inputs of shape {format_shape(shape)} are smaller than the "
                             f"kernel {self.kernel_size} (padding={self.padding!r})")

    def _out_hw(self, shape):
        k, s, d = self.kernel_size, self.strides, self.dilation_rate
        return (_out_size(shape[1], k[0], s[0], d[0], self.padding)[0],
                _out_size(shape[2], k[1], s[1], d[1], self.padding)[0])

    def build(self, input_shape):
        self._check_input_shape(input_shape)
        if self.built:
            return
        c = int(input_shape[-1])
        self.add_weight("kernel", self.kernel_size + (c, self.filters), self.kernel_initializer,
                        self._rng)
        if self.use_bias:
            self.add_weight("bias", (self.filters,), self.bias_initializer, self._rng)
        self._build_shapes = tuple(input_shape)
        self.built = True

    def _build_from_weights(self, weights):
        k = np.shape(weights[0]) if weights else ()
        if len(k) != 4 or tuple(k[:2]) != self.kernel_size or k[3] != self.filters:
            raise ValueError(f"set_weights: kernel of layer {self.name!r} has shape {tuple(k)}, "
                             f"expected {self.kernel_size + ('channels', self.filters)}")
        self.build((None, None, None, k[2]))

    def compute_output_shape(self, input_shape):
        oh, ow = self._out_hw(input_shape)
        return (input_shape[0], oh, ow, self.filters)

    def _standardize(self, x):
        x = float_array(x, "inputs", "float32 of shape (batch, rows, cols, channels)")
        self._check_input_shape(x.shape)
        return x

    def _pads(self, shape):
        k, s, d = self.kernel_size, self.strides, self.dilation_rate
        return [_out_size(shape[1 + a], k[a], s[a], d[a], self.padding)[1:] for a in (0, 1)]

    def forward(self, x, training=None, mask=None):
        n, h, w, c = x.shape
        (pt, pb), (pl, pr) = pads = self._pads(x.shape)
        xp = np.pad(x, ((0, 0), (pt, pb), (pl, pr), (0, 0))) if pt + pb + pl + pr else x
        oh, ow = self._out_hw(x.shape)
        kh, kw = self.kernel_size
        cols = _windows(xp, oh, ow, kh, kw, self.strides, self.dilation_rate).reshape(
            n * oh * ow, kh * kw * c)
        z = cols @ self.kernel.reshape(kh * kw * c, self.filters)
        if self.use_bias:
            z += self.bias
        z = z.reshape(n, oh, ow, self.filters)
        y = self.activation(z)
        return y, ((x.shape, pads, cols, z, y) if _keep(training) else None)

    def backward_from(self, ctx, dy):
        in_shape, pads, cols, z, y = ctx
        n, oh, ow, f = y.shape
        kh, kw = self.kernel_size
        c = in_shape[3]
        dz = _act_backward(self, z, y, grad_or_zeros(dy, y.shape)).reshape(-1, f)
        grads = [(cols.T @ dz).reshape(kh, kw, c, f)]
        if self.use_bias:
            grads.append(dz.sum(axis=0))
        dcols = (dz @ self.kernel.reshape(kh * kw * c, f).T).reshape(n, oh, ow, kh, kw, c)
        return _scatter_windows(dcols, in_shape, pads, self.strides, self.dilation_rate), grads

    def get_config(self):
        cfg = super().get_config()
        cfg.update(filters=self.filters, kernel_size=self.kernel_size, strides=self.strides,
                   padding=self.padding, data_format=self.data_format,
                   dilation_rate=self.dilation_rate, groups=self.groups,
                   activation=_activations.serialize(self.activation), use_bias=self.use_bias,
                   kernel_initializer=_inits.serialize(self.kernel_initializer),
                   bias_initializer=_inits.serialize(self.bias_initializer),
                   kernel_regularizer=None, bias_regularizer=None, activity_regularizer=None,
                   kernel_constraint=None, bias_constraint=None)
        return cfg


class MaxPooling2D(Layer):
    """2-D max pooling (Keras' MaxPooling2D, channels-last): the maximum of
    each ``pool_size`` window, windows ``strides`` apart (default: the pool
    size); ``"same"`` padding pads with -inf. The backward routes each window's
    gradient to its (first) maximum."""

    def __init__(self, pool_size=(2, 2), strides=None, padding="valid", data_format=None,
                 name=None, **kwargs):
        super().__init__(name=name, **kwargs)
        self.pool_size = _pair(pool_size, "pool_size")
        self.strides = self.pool_size if strides is None else _pair(strides, "strides")
        self.padding = _padding(padding)
        self.data_format = _channels_last(data_format)

    def _out_hw(self, shape):
        p, s = self.pool_size, self.strides
        return (_out_size(shape[1], p[0], s[0], 1, self.padding)[0],
                _out_size(shape[2], p[1], s[1], 1, self.padding)[0])

    def _check_input_shape(self, input_shape):
        shape = _check_4d(self, input_shape)
        oh, ow = self._out_hw(shape)
        if oh == 0 or ow == 0:
            raise ValueError(f"inputs of shape {format_shape(shape)} are smaller than the "
                             f"pool {self.pool_size} (padding={self.padding!r})")

    def compute_output_shape(self, input_shape):
        oh, ow = self._out_hw(input_shape)
        return (input_shape[0], oh, ow, input_shape[3])

    def _standardize(self, x):
        x = float_array(x, "inputs", "float32 of shape (batch, rows, cols, channels)")
        self._check_input_shape(x.shape)
        return x

    def forward(self, x, training=None, mask=None):
        n, h, w, c = x.shape
        p, s = self.pool_size, self.strides
        pads = [_out_size(x.shape[1 + a], p[a], s[a], 1, self.padding)[1:] for a in (0, 1)]
        (pt, pb), (pl, pr) = pads
        xp = x
        if pt + pb + pl + pr:
            xp = np.pad(x, ((0, 0), (pt, pb), (pl, pr), (0, 0)), constant_values=-np.inf)
        oh, ow = self._out_hw(x.shape)
        win = _windows(xp, oh, ow, p[0], p[1], s, (1, 1)).reshape(n, oh, ow, p[0] * p[1], c)
        arg = np.argmax(win, axis=3)
        y = np.take_along_axis(win, arg[:, :, :, None, :], axis=3)[:, :, :, 0, :]
        return y, ((x.shape, pads, arg) if _keep(training) else None)

    def backward_from(self, ctx, dy):
        in_shape, pads, arg = ctx
        n, oh, ow, c = arg.shape
        p = self.pool_size
        dy = grad_or_zeros(dy, (n, oh, ow, c))
        taps = np.arange(p[0] * p[1]).reshape(1, 1, 1, -1, 1)
        dwin = np.where(arg[:, :, :, None, :] == taps, dy[:, :, :, None, :], 0).astype(dy.dtype)
        dwin = dwin.reshape(n, oh, ow, p[0], p[1], c)
        return _scatter_windows(dwin, in_shape, pads, self.strides, (1, 1)), []

    def get_config(self):
        cfg = super().get_config()
        cfg.update(pool_size=self.pool_size, strides=self.strides, padding=self.padding,
                   data_format=self.data_format)
        return cfg
