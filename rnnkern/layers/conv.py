"""Convolution and pooling layers, in NumPy: Conv1D and Conv2D, MaxPooling1D /
AveragePooling1D / MaxPooling2D, GlobalAveragePooling1D / GlobalMaxPooling1D
-- the notebooks' CNN-LSTM (``TimeDistributed(Conv2D)``, then a recurrent
layer) and keras-io's sequence models (Conv1D + pooling around or instead of
an RNN, e.g. timeseries_classification_from_scratch.py).

Convolution is im2col: a strided view of the input windows [N, *O, *K, C] is
copied into one matrix per group (one row per output position, one column per
kernel tap and input channel of the group) and multiplied by the kernel of the
group, reshaped to [K*C/G, F/G] -- one 2-D GEMM per group. The backward is the
two GEMMs of a matmul (kernel gradient, window gradient) and a col2im scatter
that adds each kernel tap's slice of the window gradients back into the padded
input (a loop over the kernel taps only, never over samples or steps).

Shapes (channels_last; channels_first is moved there and back): inputs
[N, *S, C] (S: steps, or rows and cols); kernel [*K, C/groups, filters] and bias
[filters] (Keras' layout, so Keras weight files load); outputs [N, *O, filters].
Groups split the input channels and the filters into ``groups`` consecutive
blocks, block g of the filters seeing block g of the channels (Keras / torch).

Padding follows Keras (and TensorFlow): ``"same"`` pads
``max((ceil(n / s) - 1) s + (k - 1) d + 1 - n, 0)`` in all, the smaller half
before; Conv1D's ``"causal"`` pads ``(k - 1) d`` before and nothing after, so
output step t sees input steps <= t. Average pooling over ``"same"`` padding
averages the real elements of each window only (TensorFlow's and JAX's rule;
Keras' torch backend agrees wherever the padding is symmetric, and averages
replicated edge values where it is not).

Masks: as Keras 3, the convolutions and the windowed poolings do not support
masking (an incoming mask is dropped with Keras' warning), nor does
GlobalMaxPooling1D; GlobalAveragePooling1D averages the unmasked steps only
and consumes the mask (its output has none).

Tested (outputs against Keras with copied weights, gradients against float64
finite differences and torch autograd) in tests/test_conv1d_pooling.py and
tests/test_model_layers.py.
"""
from __future__ import annotations

import math

import numpy as np

from .. import activations as _activations
from .. import initializers as _inits
from ..config import make_rng
from ..utils.registry import register_class
from .base import (Layer, check_bool, check_positive_int, float_array, format_shape,
                   grad_or_zeros, weight_property)
from .core import _act_backward, _keep, _no_regularizers

__all__ = ["Conv1D", "Conv2D", "MaxPooling1D", "AveragePooling1D", "MaxPooling2D",
           "GlobalAveragePooling1D", "GlobalMaxPooling1D", "Convolution1D", "Convolution2D",
           "MaxPool1D", "AvgPool1D", "MaxPool2D", "GlobalAvgPool1D", "GlobalMaxPool1D"]


# ----------------------------------------------------------------- arguments

def _ntuple(v, n, name, allow_zero=False):
    """Keras' standardize_tuple: an int or ``n`` ints, each > 0 (>= 0 with
    ``allow_zero``), as a tuple of ``n`` Python ints."""
    if isinstance(v, (int, np.integer)) and not isinstance(v, bool):
        v = (v,) * n
    try:
        t = tuple(v)
    except TypeError:
        t = None
    if t is None or len(t) != n or any(
            isinstance(x, bool) or not isinstance(x, (int, np.integer)) for x in t):
        raise ValueError(f"The `{name}` argument must be a tuple of {n} integers. "
                         f"Received {name}={v!r}")
    low = 0 if allow_zero else 1
    if any(x < low for x in t):
        raise ValueError(f"The `{name}` argument must be a tuple of {n} integers, each "
                         f"{'>= 0' if allow_zero else '> 0'}. Received {name}={v!r}")
    return tuple(int(x) for x in t)


def _pair(v, name):
    return _ntuple(v, 2, name)


def _padding(v, allow_causal=False):
    allowed = ("valid", "same", "causal") if allow_causal else ("valid", "same")
    p = v.lower() if isinstance(v, str) else v
    if p not in allowed:
        raise ValueError(f"The `padding` argument must be one of {set(allowed)}. "
                         f"Received: padding={v!r}")
    return p


def _data_format(v):
    """Keras' standardize_data_format (None: channels_last, Keras' default
    image_data_format)."""
    if v is None:
        return "channels_last"
    f = str(v).lower()
    if f not in ("channels_first", "channels_last"):
        raise ValueError("The `data_format` argument must be one of {'channels_first', "
                         f"'channels_last'}}. Received: data_format={v!r}")
    return f


# --------------------------------------------------------------- im2col math

def _out_size(n, k, s, d, padding):
    """Output size and the padding before / after for one spatial axis."""
    if n is None:
        return None, 0, 0
    dk = (k - 1) * d + 1
    if padding == "valid":
        return ((n - dk) // s + 1 if n >= dk else 0), 0, 0
    out = -(-n // s)
    if padding == "causal":
        return out, dk - 1, 0
    total = max((out - 1) * s + dk - n, 0)
    return out, total // 2, total - total // 2


def _windows(xp, out, k, s, d):
    """Read-only view [N, *out, *k, C] of the windows of a padded channels-last
    input [N, *S, C] (window starts ``s`` apart, taps ``d`` apart)."""
    st = xp.strides
    sp = st[1:-1]
    shape = (xp.shape[0],) + tuple(out) + tuple(k) + (xp.shape[-1],)
    strides = ((st[0],) + tuple(a * b for a, b in zip(sp, s))
               + tuple(a * b for a, b in zip(sp, d)) + (st[-1],))
    return np.lib.stride_tricks.as_strided(xp, shape, strides, writeable=False)


def _scatter_windows(dwin, in_spatial, pads, s, d):
    """col2im: sum the window gradients [N, *O, *K, C] back into the padded
    input (one strided slice-add per kernel tap), then crop the padding."""
    r = len(in_spatial)
    n, c = dwin.shape[0], dwin.shape[-1]
    out, k = dwin.shape[1:1 + r], dwin.shape[1 + r:1 + 2 * r]
    padded = tuple(m + b + a for m, (b, a) in zip(in_spatial, pads))
    dxp = np.zeros((n,) + padded + (c,), dwin.dtype)
    every = (slice(None),)
    for tap in np.ndindex(*k):
        dst = tuple(slice(t * di, t * di + si * (o - 1) + 1, si)
                    for t, di, si, o in zip(tap, d, s, out))
        dxp[every + dst] += dwin[every * (1 + r) + tap]
    return dxp[every + tuple(slice(b, b + m) for m, (b, _) in zip(in_spatial, pads))]


def _per_group(a, b):
    """[G, M, K] @ [G, K, F] -> [G, M, F] as one 2-D GEMM per group: NumPy's
    batched matmul leaves BLAS for small inner sizes (100x slower at K=3)."""
    if len(a) == 1:
        return (a[0] @ b[0])[None]
    return np.stack([x @ y for x, y in zip(a, b)])


class _Spatial(Layer):
    """What the convolution and pooling layers share: inputs of rank
    ``rank + 2`` in ``data_format``, computed channels-last."""

    rank = None
    data_format = "channels_last"

    def _layout(self):
        if self.rank == 1:
            return ("(batch, steps, channels)" if self.data_format == "channels_last"
                    else "(batch, channels, steps)")
        return ("(batch, rows, cols, channels)" if self.data_format == "channels_last"
                else "(batch, channels, rows, cols)")

    def _check_rank(self, input_shape):
        shape = tuple(input_shape)
        if len(shape) != self.rank + 2:
            raise ValueError(f"{type(self).__name__} expects inputs of rank {self.rank + 2}, "
                             f"shape {self._layout()}, got {format_shape(shape)}")
        return shape

    def _spatial(self, shape):
        return tuple(shape[1:-1] if self.data_format == "channels_last" else shape[2:])

    def _channels(self, shape):
        return shape[-1] if self.data_format == "channels_last" else shape[1]

    def _shape_out(self, shape, spatial, channels):
        if self.data_format == "channels_last":
            return (shape[0],) + tuple(spatial) + (channels,)
        return (shape[0], channels) + tuple(spatial)

    def _to_last(self, x):
        return x if self.data_format == "channels_last" else np.moveaxis(x, 1, -1)

    def _from_last(self, y):
        if self.data_format == "channels_last":
            return y
        return np.ascontiguousarray(np.moveaxis(y, -1, 1))

    def _standardize(self, x):
        x = float_array(x, "inputs", f"float32 of shape {self._layout()}")
        self._check_input_shape(x.shape)
        return x


# ---------------------------------------------------------------- convolution

class _Conv(_Spatial):
    """N-D convolution (Keras' BaseConv): ``activation(conv(x, kernel) + bias)``."""

    kernel = weight_property("kernel", "[*kernel_size, C/groups, filters], read-only.")
    bias = weight_property("bias", "[filters] (None with use_bias=False), read-only.")

    def __init__(self, rank, filters, kernel_size, strides, padding, data_format,
                 dilation_rate, groups, activation, use_bias, kernel_initializer,
                 bias_initializer, kernel_regularizer=None, bias_regularizer=None,
                 activity_regularizer=None, kernel_constraint=None, bias_constraint=None,
                 lora_rank=None, lora_alpha=None, **kwargs):
        _no_regularizers(kernel_regularizer=kernel_regularizer,
                         bias_regularizer=bias_regularizer, kernel_constraint=kernel_constraint,
                         bias_constraint=bias_constraint, lora_rank=lora_rank)
        super().__init__(activity_regularizer=activity_regularizer, **kwargs)
        self.rank = rank
        if isinstance(filters, (int, np.integer)) and not isinstance(filters, bool) \
                and filters <= 0:
            raise ValueError("Invalid value for argument `filters`. Expected a strictly "
                             f"positive value. Received filters={filters}.")
        self.filters = check_positive_int("filters", filters)
        if isinstance(groups, bool) or not isinstance(groups, (int, np.integer)):
            raise TypeError(f"groups must be a positive int, got {groups!r}")
        if groups <= 0:
            raise ValueError("The number of groups must be a positive integer. "
                             f"Received: groups={groups}.")
        self.groups = int(groups)
        if self.filters % self.groups:
            raise ValueError("The number of filters must be evenly divisible by the number "
                             f"of groups. Received: groups={self.groups}, "
                             f"filters={self.filters}.")
        self.kernel_size = _ntuple(kernel_size, rank, "kernel_size")
        self.strides = _ntuple(strides, rank, "strides")
        self.dilation_rate = _ntuple(dilation_rate, rank, "dilation_rate")
        self.padding = _padding(padding, allow_causal=rank == 1)
        self.data_format = _data_format(data_format)
        if max(self.strides) > 1 and max(self.dilation_rate) > 1:
            raise ValueError("`strides > 1` not supported in conjunction with "
                             f"`dilation_rate > 1`. Received: strides={self.strides} and "
                             f"dilation_rate={self.dilation_rate}")
        self.activation = _activations.get(activation)
        self.use_bias = check_bool("use_bias", use_bias)
        self.kernel_initializer = _inits.get(kernel_initializer)
        self.bias_initializer = _inits.get(bias_initializer)
        self._rng = make_rng()

    def _weight_names(self):
        return ["kernel", "bias"] if self.use_bias else ["kernel"]

    def _geometry(self, spatial):
        """[(out, pad before, pad after)] of each spatial axis."""
        return [_out_size(n, k, s, d, self.padding) for n, k, s, d in
                zip(spatial, self.kernel_size, self.strides, self.dilation_rate)]

    def _check_input_shape(self, input_shape):
        shape = self._check_rank(input_shape)
        c = self._channels(shape)
        if c is None:
            raise ValueError(f"{type(self).__name__} needs a known number of input channels, "
                             f"got {format_shape(shape)}")
        if c % self.groups:
            raise ValueError("The number of input channels must be evenly divisible by the "
                             f"number of groups. Received groups={self.groups}, but the input "
                             f"has {c} channels (full input shape is {format_shape(shape)}).")
        if self.built and c != self.kernel.shape[-2] * self.groups:
            raise ValueError(f"layer {self.name!r} is built for "
                             f"{self.kernel.shape[-2] * self.groups} input channels, got inputs "
                             f"of shape {format_shape(shape)}")
        if any(o == 0 for o, _, _ in self._geometry(self._spatial(shape))):
            raise ValueError(f"Computed output size would be zero or negative: inputs of shape "
                             f"{format_shape(shape)} are smaller than the kernel "
                             f"{self.kernel_size} with dilation_rate={self.dilation_rate} "
                             f"(padding={self.padding!r})")

    def build(self, input_shape):
        self._check_input_shape(input_shape)
        if self.built:
            return
        cg = int(self._channels(tuple(input_shape))) // self.groups
        self.add_weight("kernel", self.kernel_size + (cg, self.filters), self.kernel_initializer,
                        self._rng)
        if self.use_bias:
            self.add_weight("bias", (self.filters,), self.bias_initializer, self._rng)
        self._build_shapes = tuple(input_shape)
        self.built = True

    def _build_from_weights(self, weights):
        k = tuple(np.shape(weights[0])) if weights else ()
        if len(k) != self.rank + 2 or k[:self.rank] != self.kernel_size \
                or k[-1] != self.filters:
            raise ValueError(f"set_weights: kernel of layer {self.name!r} has shape {k}, "
                             f"expected {self.kernel_size + ('channels/groups', self.filters)}")
        c = k[-2] * self.groups
        self.build(self._shape_out((None,), (None,) * self.rank, c))

    def compute_output_shape(self, input_shape):
        shape = tuple(input_shape)
        out = [o for o, _, _ in self._geometry(self._spatial(shape))]
        return self._shape_out(shape, out, self.filters)

    def forward(self, x, training=None, mask=None):
        xl = self._to_last(x)
        n, spatial, c = xl.shape[0], xl.shape[1:-1], xl.shape[-1]
        geo = self._geometry(spatial)
        out, pads = [g[0] for g in geo], [g[1:] for g in geo]
        xp = np.pad(xl, ((0, 0),) + tuple(pads) + ((0, 0),)) if any(map(any, pads)) else xl
        g, f = self.groups, self.filters
        m, taps = n * math.prod(out), math.prod(self.kernel_size)
        win = _windows(xp, out, self.kernel_size, self.strides, self.dilation_rate)
        # [G, M, K*C/G]: the one copy of the input windows (im2col)
        cols = np.moveaxis(win.reshape(win.shape[:-1] + (g, c // g)), -2, 0).reshape(
            g, m, taps * (c // g))
        z = _per_group(cols, self._group_kernel())                 # [G, M, F/G]
        z = np.moveaxis(z, 0, 1).reshape(m, f)
        if self.use_bias:
            z += self.bias
        z = z.reshape((n,) + tuple(out) + (f,))
        y = self.activation(z)
        y_out = self._from_last(y)
        keep = (y_out.shape, spatial, pads, cols, z, y) if _keep(training) else None
        return y_out, keep

    def _group_kernel(self):
        """The kernel as [G, K*C/G, F/G] (a view when groups=1)."""
        g, f = self.groups, self.filters
        w = self.kernel.reshape(-1, self.kernel.shape[-2], g, f // g)
        return np.moveaxis(w, 2, 0).reshape(g, -1, f // g)

    def backward_from(self, ctx, dy):
        y_shape, spatial, pads, cols, z, y = ctx
        dy = self._to_last(grad_or_zeros(dy, y_shape))
        g, f = self.groups, self.filters
        m, cg = cols.shape[1], self.kernel.shape[-2]
        dz = _act_backward(self, z, y, dy).reshape(m, f)
        dzg = np.moveaxis(dz.reshape(m, g, f // g), 1, 0)           # [G, M, F/G] view
        dw = _per_group(cols.transpose(0, 2, 1), dzg)               # [G, K*C/G, F/G]
        dw = np.moveaxis(dw.reshape((g, -1, cg, f // g)), 0, 2).reshape(self.kernel.shape)
        grads = [dw]
        if self.use_bias:
            grads.append(dz.sum(axis=0))
        dcols = _per_group(dzg, self._group_kernel().transpose(0, 2, 1))  # [G, M, K*C/G]
        out = y.shape[1:-1]
        dwin = np.moveaxis(dcols.reshape((g, y.shape[0]) + out + self.kernel_size + (cg,)),
                           0, -2).reshape(y.shape[:1] + out + self.kernel_size + (g * cg,))
        dx = _scatter_windows(dwin, spatial, pads, self.strides, self.dilation_rate)
        return self._from_last(dx), grads

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


class Conv1D(_Conv):
    """1-D convolution over steps (Keras' Conv1D): ``activation(conv(x, kernel)
    + bias)``, inputs [N, T, C] (channels_last) or [N, C, T].

    Arguments as Keras 3: filters, kernel_size, strides=1,
    padding="valid" | "same" | "causal", data_format=None (channels_last),
    dilation_rate=1, groups=1, activation=None, use_bias=True,
    kernel_initializer="glorot_uniform", bias_initializer="zeros". Weights:
    kernel [kernel_size, C/groups, filters], bias [filters].

    >>> conv = Conv1D(64, 3, padding="same", activation="relu")
    >>> conv(np.zeros((8, 500, 1), np.float32)).shape
    (8, 500, 64)
    """

    def __init__(self, filters, kernel_size, strides=1, padding="valid", data_format=None,
                 dilation_rate=1, groups=1, activation=None, use_bias=True,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros", **kwargs):
        super().__init__(1, filters, kernel_size, strides, padding, data_format, dilation_rate,
                         groups, activation, use_bias, kernel_initializer, bias_initializer,
                         **kwargs)


class Conv2D(_Conv):
    """2-D convolution (Keras' Conv2D): ``activation(conv(x, kernel) + bias)``,
    inputs [N, H, W, C] (channels_last) or [N, C, H, W].

    Arguments as Keras 3: filters, kernel_size, strides=(1, 1),
    padding="valid" | "same", data_format=None (channels_last),
    dilation_rate=(1, 1), groups=1, activation=None, use_bias=True,
    kernel_initializer="glorot_uniform", bias_initializer="zeros". Weights:
    kernel [KH, KW, C/groups, filters], bias [filters].
    """

    def __init__(self, filters, kernel_size, strides=(1, 1), padding="valid", data_format=None,
                 dilation_rate=(1, 1), groups=1, activation=None, use_bias=True,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros", **kwargs):
        super().__init__(2, filters, kernel_size, strides, padding, data_format, dilation_rate,
                         groups, activation, use_bias, kernel_initializer, bias_initializer,
                         **kwargs)


# -------------------------------------------------------------------- pooling

class _Pooling(_Spatial):
    """Windowed max / average pooling (Keras' BasePooling): windows of
    ``pool_size``, ``strides`` apart (default: the pool size)."""

    _mode = "max"

    def __init__(self, rank, pool_size, strides, padding, data_format, name=None, **kwargs):
        super().__init__(name=name, **kwargs)
        self.rank = rank
        self.pool_size = _ntuple(pool_size, rank, "pool_size")
        self.strides = self.pool_size if strides is None else _ntuple(strides, rank, "strides")
        self.padding = _padding(padding)
        self.data_format = _data_format(data_format)

    def _geometry(self, spatial):
        return [_out_size(n, p, s, 1, self.padding)
                for n, p, s in zip(spatial, self.pool_size, self.strides)]

    def _check_input_shape(self, input_shape):
        shape = self._check_rank(input_shape)
        if any(o == 0 for o, _, _ in self._geometry(self._spatial(shape))):
            raise ValueError(f"Computed output size would be zero or negative: inputs of shape "
                             f"{format_shape(shape)} are smaller than the pool "
                             f"{self.pool_size} (padding={self.padding!r})")

    def compute_output_shape(self, input_shape):
        shape = tuple(input_shape)
        out = [o for o, _, _ in self._geometry(self._spatial(shape))]
        return self._shape_out(shape, out, self._channels(shape))

    def forward(self, x, training=None, mask=None):
        xl = self._to_last(x)
        n, spatial, c = xl.shape[0], xl.shape[1:-1], xl.shape[-1]
        geo = self._geometry(spatial)
        out, pads = tuple(g[0] for g in geo), [g[1:] for g in geo]
        fill = -np.inf if self._mode == "max" else 0.0
        xp = xl
        if any(map(any, pads)):
            xp = np.pad(xl, ((0, 0),) + tuple(pads) + ((0, 0),), constant_values=fill)
        win = _windows(xp, out, self.pool_size, self.strides, (1,) * self.rank)
        win = win.reshape((n,) + out + (-1, c))                    # [N, *O, P, C]
        if self._mode == "max":
            stat = np.argmax(win, axis=-2)                         # [N, *O, C]
            y = np.take_along_axis(win, stat[..., None, :], axis=-2)[..., 0, :]
        else:
            stat = self._counts(spatial, out, pads)                # [*O, 1]
            y = (win.sum(axis=-2) / stat).astype(xl.dtype, copy=False)
        keep = (xl.shape, out, pads, stat) if _keep(training) else None
        return self._from_last(y), keep

    def _counts(self, spatial, out, pads):
        """How many real (unpadded) elements each window holds, [*O, 1]."""
        counts = np.ones(out + (1,))
        for a, (n, o, (before, _), p, s) in enumerate(
                zip(spatial, out, pads, self.pool_size, self.strides)):
            start = np.arange(o) * s - before
            cnt = np.minimum(start + p, n) - np.maximum(start, 0)
            counts = counts * cnt.reshape((o,) + (1,) * (self.rank - a))
        return counts

    def backward_from(self, ctx, dy):
        in_shape, out, pads, stat = ctx
        n, spatial, c = in_shape[0], in_shape[1:-1], in_shape[-1]
        dy = self._to_last(grad_or_zeros(dy, self._shape_out((n,), out, c)))
        taps = math.prod(self.pool_size)
        if self._mode == "max":  # each window's gradient to its (first) maximum
            dwin = np.where(stat[..., None, :] == np.arange(taps).reshape(-1, 1),
                            dy[..., None, :], 0).astype(dy.dtype)
        else:                    # spread evenly over the window's real elements
            d = (dy / stat).astype(dy.dtype, copy=False)
            dwin = np.broadcast_to(d[..., None, :], (n,) + out + (taps, c))
        dwin = dwin.reshape((n,) + out + self.pool_size + (c,))
        dx = _scatter_windows(dwin, spatial, pads, self.strides, (1,) * self.rank)
        return self._from_last(dx), []

    def get_config(self):
        cfg = super().get_config()
        cfg.update(pool_size=self.pool_size, padding=self.padding, strides=self.strides,
                   data_format=self.data_format)
        return cfg


class MaxPooling1D(_Pooling):
    """Max pooling over steps (Keras' MaxPooling1D): the maximum of each
    ``pool_size`` window, windows ``strides`` apart (default: the pool size);
    ``"same"`` pads with -inf. The backward routes each window's gradient to its
    (first) maximum. Arguments as Keras 3: pool_size=2, strides=None,
    padding="valid" | "same", data_format=None (channels_last)."""

    def __init__(self, pool_size=2, strides=None, padding="valid", data_format=None, name=None,
                 **kwargs):
        super().__init__(1, pool_size, strides, padding, data_format, name=name, **kwargs)


class AveragePooling1D(_Pooling):
    """Average pooling over steps (Keras' AveragePooling1D): the mean of each
    ``pool_size`` window, windows ``strides`` apart (default: the pool size);
    with ``"same"`` padding a window averages its real elements only.
    Arguments as Keras 3: pool_size (required), strides=None, padding="valid" |
    "same", data_format=None (channels_last)."""

    _mode = "average"

    def __init__(self, pool_size, strides=None, padding="valid", data_format=None, name=None,
                 **kwargs):
        super().__init__(1, pool_size, strides, padding, data_format, name=name, **kwargs)


class MaxPooling2D(_Pooling):
    """2-D max pooling (Keras' MaxPooling2D): the maximum of each ``pool_size``
    window, windows ``strides`` apart (default: the pool size); ``"same"``
    padding pads with -inf. The backward routes each window's gradient to its
    (first) maximum. Arguments as Keras 3: pool_size=(2, 2), strides=None,
    padding="valid" | "same", data_format=None (channels_last)."""

    def __init__(self, pool_size=(2, 2), strides=None, padding="valid", data_format=None,
                 name=None, **kwargs):
        super().__init__(2, pool_size, strides, padding, data_format, name=name, **kwargs)


# ------------------------------------------------------------- global pooling

class _GlobalPooling1D(_Spatial):
    """Pooling over every step (Keras' BaseGlobalPooling, 1-D): inputs
    [N, T, C] (channels_last) or [N, C, T]; outputs [N, C], or with
    keepdims=True [N, 1, C] / [N, C, 1]."""

    rank = 1

    def __init__(self, data_format=None, keepdims=False, **kwargs):
        super().__init__(**kwargs)
        self.data_format = _data_format(data_format)
        self.keepdims = check_bool("keepdims", keepdims)

    @property
    def _axis(self):
        return 1 if self.data_format == "channels_last" else 2

    def _check_input_shape(self, input_shape):
        self._check_rank(input_shape)

    def compute_output_shape(self, input_shape):
        shape = tuple(input_shape)
        c = self._channels(shape)
        if not self.keepdims:
            return (shape[0], c)
        return self._shape_out(shape, (1,), c)

    def _finish(self, y):
        return np.expand_dims(y, self._axis) if self.keepdims else y

    def _d_pooled(self, dy, in_shape):
        """The output gradient, checked, as [N, C] with the steps axis kept (size
        1) where the input has it; None stays None."""
        if dy is None:
            return None
        n, c = in_shape[0], self._channels(in_shape)
        want = self._shape_out((n,), (1,), c) if self.keepdims else (n, c)
        return np.expand_dims(grad_or_zeros(dy, want).reshape(n, c), self._axis)

    def get_config(self):
        cfg = super().get_config()
        cfg.update(data_format=self.data_format, keepdims=self.keepdims)
        return cfg


class GlobalAveragePooling1D(_GlobalPooling1D):
    """The mean over the steps (Keras' GlobalAveragePooling1D). With a mask
    [N, T] (from an ``Embedding(mask_zero=True)``, say) only the unmasked steps
    are averaged (a sample with none gives NaN, as in Keras); the mask stops
    here. Arguments as Keras 3: data_format=None (channels_last),
    keepdims=False."""

    _call_args = ("mask", "training")
    _call_has_mask_arg = True
    _supports_masking = True

    def _check_mask(self, mask, x):
        if mask is None:
            return None
        m = np.asarray(mask)
        n, t = x.shape[0], x.shape[self._axis]
        if m.dtype.kind not in "biuf":
            raise TypeError(f"mask must be a bool (or 0/1) array of shape (N, T) = {(n, t)}, "
                            f"got dtype {m.dtype}")
        if m.shape != (n, t):
            raise ValueError(f"mask has shape {m.shape}, expected (N, T) = {(n, t)}")
        return m if m.dtype == np.bool_ else m != 0

    def forward(self, x, training=None, mask=None):
        m = self._check_mask(mask, x)
        if m is None:
            y = x.mean(axis=self._axis)
            w = np.full(x.shape[self._axis], 1.0 / x.shape[self._axis], x.dtype)
            w = w.reshape((1, -1, 1) if self._axis == 1 else (1, 1, -1))
        else:
            mf = m.astype(x.dtype)[:, :, None] if self._axis == 1 else m.astype(x.dtype)[:, None]
            count = mf.sum(axis=self._axis, keepdims=True)
            with np.errstate(invalid="ignore", divide="ignore"):  # NaN where all are masked
                w = mf / count
                y = (np.where(mf > 0, x, 0).sum(axis=self._axis, keepdims=True)
                     / count).squeeze(self._axis)
        y = self._finish(y.astype(x.dtype, copy=False))
        return y, ((x.shape, w) if _keep(training) else None)

    def backward_from(self, ctx, dy):
        shape, w = ctx
        d = self._d_pooled(dy, shape)
        if d is None:
            return None, []
        return (d * w).astype(d.dtype, copy=False), []

    def compute_mask(self, inputs, mask=None):
        return None


class GlobalMaxPooling1D(_GlobalPooling1D):
    """The maximum over the steps (Keras' GlobalMaxPooling1D); the backward
    routes the gradient to the (first) maximum. Keras' layer takes no mask: an
    incoming one is dropped with Keras' warning and masked steps count.
    Arguments as Keras 3: data_format=None (channels_last), keepdims=False."""

    def forward(self, x, training=None, mask=None):
        arg = np.argmax(x, axis=self._axis)
        y = np.take_along_axis(x, np.expand_dims(arg, self._axis), axis=self._axis)
        y = y.squeeze(self._axis)
        return self._finish(y), ((x.shape, arg) if _keep(training) else None)

    def backward_from(self, ctx, dy):
        shape, arg = ctx
        d = self._d_pooled(dy, shape)
        if d is None:
            return None, []
        dx = np.zeros(shape, d.dtype)
        np.put_along_axis(dx, np.expand_dims(arg, self._axis), d, axis=self._axis)
        return dx, []


# Keras' other names for the same classes
Convolution1D, Convolution2D = Conv1D, Conv2D
MaxPool1D, AvgPool1D, MaxPool2D = MaxPooling1D, AveragePooling1D, MaxPooling2D
GlobalAvgPool1D, GlobalMaxPool1D = GlobalAveragePooling1D, GlobalMaxPooling1D
# configs may name the aliases too (Keras registers them)
for _alias, _cls in (("Convolution1D", Conv1D), ("Convolution2D", Conv2D),
                     ("MaxPool1D", MaxPooling1D), ("AvgPool1D", AveragePooling1D),
                     ("MaxPool2D", MaxPooling2D), ("GlobalAvgPool1D", GlobalAveragePooling1D),
                     ("GlobalMaxPool1D", GlobalMaxPooling1D)):
    register_class(_cls, _alias)
