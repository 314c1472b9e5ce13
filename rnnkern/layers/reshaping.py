"""Sequence reshaping layers, in NumPy: ZeroPadding1D, Cropping1D, Permute and
SpatialDropout1D -- the layers keras-io's sequence examples put around Conv1D
and the recurrent layers.

Each has Keras 3's constructor arguments, checks, config keys and mask rule
(keras/src/layers/reshaping/, keras/src/layers/regularization/
spatial_dropout.py): ZeroPadding1D, Cropping1D and Permute do not support
masking (an incoming mask is dropped with Keras' warning); SpatialDropout1D,
a Dropout, passes it on. Shapes: inputs [N, T, C] (ZeroPadding1D also
[N, C, T] with data_format="channels_first"; Permute any rank). Backwards are
checked against float64 finite differences in tests/test_conv1d_pooling.py.
"""
from __future__ import annotations

import numpy as np

from .base import Layer, float_array, format_shape, grad_or_zeros
from .conv import _data_format, _ntuple
from .core import Dropout

__all__ = ["ZeroPadding1D", "Cropping1D", "Permute", "SpatialDropout1D"]


def _check_3d(layer, shape, layout="(batch, steps, channels)"):
    shape = tuple(shape)
    if len(shape) != 3:
        raise ValueError(f"{type(layer).__name__} expects inputs of rank 3, shape {layout}, "
                         f"got {format_shape(shape)}")
    return shape


class ZeroPadding1D(Layer):
    """Pads the steps axis with zeros (Keras' ZeroPadding1D): ``padding`` an
    int (both sides) or a pair (before, after), each >= 0; data_format=None
    (channels_last: [N, T, C]) or "channels_first" ([N, C, T])."""

    def __init__(self, padding=1, data_format=None, **kwargs):
        super().__init__(**kwargs)
        self.data_format = _data_format(data_format)
        self.padding = _ntuple(padding, 2, "padding", allow_zero=True)

    @property
    def _axis(self):
        return 1 if self.data_format == "channels_last" else 2

    def _check_input_shape(self, input_shape):
        _check_3d(self, input_shape, "(batch, steps, channels)"
                  if self._axis == 1 else "(batch, channels, steps)")

    def compute_output_shape(self, input_shape):
        out = list(input_shape)
        if out[self._axis] is not None:
            out[self._axis] += sum(self.padding)
        return tuple(out)

    def _standardize(self, x):
        x = float_array(x, "inputs", "float32 of rank 3")
        self._check_input_shape(x.shape)
        return x

    def forward(self, x, training=None, mask=None):
        pads = [(0, 0)] * 3
        pads[self._axis] = self.padding
        return np.pad(x, pads), x.shape

    def backward_from(self, shape, dy):
        dy = grad_or_zeros(dy, self.compute_output_shape(shape))
        index = [slice(None)] * 3
        index[self._axis] = slice(self.padding[0], self.padding[0] + shape[self._axis])
        return dy[tuple(index)], []

    def get_config(self):
        cfg = super().get_config()
        cfg.update(padding=self.padding, data_format=self.data_format)
        return cfg


class Cropping1D(Layer):
    """Crops the steps axis of [N, T, C] inputs (Keras' Cropping1D):
    ``cropping`` an int (both ends) or a pair (start, end), each >= 0, leaving
    at least one step."""

    def __init__(self, cropping=(1, 1), **kwargs):
        super().__init__(**kwargs)
        self.cropping = _ntuple(cropping, 2, "cropping", allow_zero=True)

    def _check_input_shape(self, input_shape):
        shape = _check_3d(self, input_shape)
        if shape[1] is not None and sum(self.cropping) >= shape[1]:
            raise ValueError("`cropping` parameter of `Cropping1D` layer must be smaller than "
                             f"the input length. Received: input_shape={format_shape(shape)}, "
                             f"cropping={self.cropping}")

    def compute_output_shape(self, input_shape):
        self._check_input_shape(input_shape)
        t = input_shape[1]
        return (input_shape[0], None if t is None else t - sum(self.cropping), input_shape[2])

    def _standardize(self, x):
        x = float_array(x, "inputs", "float32 of shape (batch, steps, channels)")
        self._check_input_shape(x.shape)
        return x

    def forward(self, x, training=None, mask=None):
        a, b = self.cropping
        return x[:, a:x.shape[1] - b, :], x.shape

    def backward_from(self, shape, dy):
        dy = grad_or_zeros(dy, self.compute_output_shape(shape))
        return np.pad(dy, ((0, 0), self.cropping, (0, 0))), []

    def get_config(self):
        cfg = super().get_config()
        cfg["cropping"] = self.cropping
        return cfg


class Permute(Layer):
    """Permutes the non-batch axes (Keras' Permute): ``dims`` a permutation of
    1..rank-1, e.g. ``Permute((2, 1))`` turns [N, T, C] into [N, C, T]."""

    def __init__(self, dims, **kwargs):
        super().__init__(**kwargs)
        try:
            dims = tuple(dims)
        except TypeError:
            raise TypeError(f"dims must be a tuple of ints, got {dims!r}") from None
        if any(isinstance(d, bool) or not isinstance(d, (int, np.integer)) for d in dims) \
                or sorted(dims) != list(range(1, len(dims) + 1)):
            raise ValueError("Invalid permutation argument `dims` for Permute Layer. The set "
                             "of indices in `dims` must be consecutive and start from 1. "
                             f"Received dims={dims}")
        self.dims = tuple(int(d) for d in dims)

    def _check_input_shape(self, input_shape):
        shape = tuple(input_shape)
        if len(shape) != len(self.dims) + 1:
            raise ValueError(f"Permute(dims={self.dims}) expects inputs of rank "
                             f"{len(self.dims) + 1}, got {format_shape(shape)}")

    def compute_output_shape(self, input_shape):
        return (input_shape[0],) + tuple(input_shape[d] for d in self.dims)

    def _standardize(self, x):
        x = float_array(x, "inputs", f"float32 of rank {len(self.dims) + 1}")
        self._check_input_shape(x.shape)
        return x

    def forward(self, x, training=None, mask=None):
        return np.ascontiguousarray(x.transpose((0,) + self.dims)), x.shape

    def backward_from(self, shape, dy):
        dy = grad_or_zeros(dy, self.compute_output_shape(shape))
        inverse = np.argsort((0,) + self.dims)
        return np.ascontiguousarray(dy.transpose(inverse)), []

    def get_config(self):
        cfg = super().get_config()
        cfg["dims"] = self.dims
        return cfg


class SpatialDropout1D(Dropout):
    """Dropout of whole channels (Keras' SpatialDropout1D): with
    ``training=True`` each (sample, channel) of [N, T, C] inputs is zeroed with
    probability ``rate`` at every step at once, the kept ones scaled by
    1/(1 - rate); identity otherwise. ``seed`` seeds the layer's own generator
    (as Dropout's). Masks pass through."""

    def __init__(self, rate, seed=None, name=None, dtype=None, **kwargs):
        super().__init__(rate, noise_shape=None, seed=seed, name=name, dtype=dtype, **kwargs)
        self.noise_shape = (None, 1, None)  # one draw per (sample, channel)

    def _check_input_shape(self, input_shape):
        _check_3d(self, input_shape)

    def _standardize(self, x):
        x = float_array(x, "inputs", "float32 of shape (batch, steps, channels)")
        self._check_input_shape(x.shape)
        return x

    def get_config(self):
        # Keras' keys exactly (its dtype here is the plain name, not a policy)
        return {"rate": self.rate, "seed": self.seed, "name": self.name, "dtype": self.dtype}
