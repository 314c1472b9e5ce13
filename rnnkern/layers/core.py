"""The non-recurrent layers of the Keras notebooks, in NumPy: Input /
InputLayer, Dense, Activation, Dropout, Embedding, Reshape, Flatten,
RepeatVector, Rescaling, Lambda, and the merging layers Concatenate, Add,
Subtract, Multiply, Average, Maximum, Minimum and Dot.

Each has Keras 3's constructor arguments, defaults and initializers (keras/src/
layers/{core,reshaping,regularization,preprocessing,merging}/), computes in
float32, and implements the Layer contract of ``rnnkern.layers.base``: a pure
``forward`` / ``backward_from`` pair (checked against float64 central finite
differences in tests/test_model_layers.py) behind the Keras-shaped shell.
"""
from __future__ import annotations

import numbers

import numpy as np

from .. import activations as _activations
from .. import initializers as _inits
from ..backends import core_available as _core_available
from ..config import floatx, make_rng
from ..utils.tree import flatten
from .base import (KerasTensor, Layer, Node, _shape_tuple, check_bool, check_positive_int,
                   float_array, format_shape, grad_or_zeros, weight_property)

__all__ = ["InputLayer", "Input", "Dense", "Activation", "Dropout", "Embedding", "Reshape",
           "Flatten", "RepeatVector", "Rescaling", "Lambda", "Concatenate", "Add", "Subtract",
           "Multiply", "Average", "Maximum", "Minimum", "Dot"]


def _no_regularizers(**kw):
    for arg, v in kw.items():
        if v is not None:
            raise NotImplementedError(f"{arg} is not supported by rnnkern yet")


def _keep(training):
    return training is not False


# ------------------------------------------------------------------- Input

class InputLayer(Layer):
    """The layer behind ``Input``: it holds the batch shape and dtype of a
    model input and produces its symbolic tensor (``output``)."""

    _is_input_layer = True

    def __init__(self, shape=None, batch_size=None, dtype=None, sparse=None, ragged=None,
                 batch_shape=None, input_tensor=None, optional=False, name=None, **kwargs):
        if "input_shape" in kwargs:
            shape = kwargs.pop("input_shape")
        if "batch_input_shape" in kwargs:
            batch_shape = kwargs.pop("batch_input_shape")
        super().__init__(name=name, **kwargs)
        if sparse or ragged:
            raise ValueError("rnnkern has no sparse or ragged inputs")
        if input_tensor is not None:
            raise ValueError("rnnkern's Input takes no input_tensor")
        if shape is not None and batch_shape is not None:
            raise ValueError("You cannot pass both `shape` and `batch_shape` at the same time.")
        if batch_size is not None and batch_shape is not None:
            raise ValueError("You cannot pass both `batch_size` and `batch_shape` at the "
                             "same time.")
        if shape is None and batch_shape is None:
            raise ValueError("You must pass a `shape` argument.")
        if shape is not None:
            if isinstance(shape, (int, np.integer)):
                shape = (shape,)
            batch_shape = (batch_size,) + _shape_tuple(shape, "shape")
        self._batch_shape = _shape_tuple(batch_shape, "batch_shape")
        for d in self._batch_shape:
            if d is not None and d < 0:
                raise ValueError(f"shape must have non-negative entries, got {self._batch_shape}")
        self._dtype = str(np.dtype("float32" if dtype is None else dtype))
        if np.dtype(self._dtype).kind not in "fiub":
            raise TypeError(f"Input dtype must be a real numeric dtype, got {dtype!r}")
        self.optional = bool(optional)
        self._input_tensor = KerasTensor(self._batch_shape, self._dtype,
                                         name=name if name is not None else self.name)
        node = Node(self, (), {}, self._input_tensor)
        node.is_input = True
        self.built = True

    @property
    def batch_shape(self):
        return self._batch_shape

    @property
    def dtype(self):
        return self._dtype

    @property
    def output(self):
        return self._input_tensor

    def _standardize(self, x):
        """A model input as this Input's dtype (Keras converts there)."""
        a = np.asarray(x)
        if a.dtype.kind not in "fiub":
            raise TypeError(f"input {self.name!r} must be a real numeric array of shape "
                            f"{format_shape(self._batch_shape)}, got dtype {a.dtype}")
        want = floatx() if np.dtype(self._dtype).kind == "f" else np.dtype(self._dtype)
        a = np.ascontiguousarray(a, dtype=want)
        shape = self._batch_shape
        ok = a.ndim == len(shape) and all(
            d is None or d == s for i, (d, s) in enumerate(zip(shape, a.shape)) if i > 0)
        if not ok:
            raise ValueError(f"input {self.name!r} expects arrays of shape "
                             f"{format_shape(shape)}, got shape {a.shape}")
        return a

    def get_config(self):
        return {"batch_shape": self._batch_shape, "dtype": self._dtype, "sparse": False,
                "ragged": False, "name": self.name, "optional": self.optional}


def Input(shape=None, batch_size=None, dtype=None, sparse=None, ragged=None, batch_shape=None,
          name=None, tensor=None, optional=False):
    """A symbolic model input (Keras' ``keras.Input``): ``shape`` excludes the
    batch (None where it varies, e.g. the timesteps); or ``batch_shape``
    includes it (stateful models fix it)."""
    layer = InputLayer(shape=shape, batch_size=batch_size, dtype=dtype, sparse=sparse,
                       ragged=ragged, batch_shape=batch_shape, name=name, input_tensor=tensor,
                       optional=optional)
    return layer.output


# ------------------------------------------------------------------- Dense

class Dense(Layer):
    """Densely-connected layer: ``activation(inputs @ kernel + bias)`` on the
    last axis of an input of any rank >= 2 (Keras' Dense).

    Arguments as Keras 3: units, activation=None, use_bias=True,
    kernel_initializer="glorot_uniform", bias_initializer="zeros". Weights:
    kernel [input_dim, units], bias [units].
    """

    kernel = weight_property("kernel", "[input_dim, units], read-only (assign to change).")
    bias = weight_property("bias", "[units] (None with use_bias=False), read-only.")
    _supports_masking = True

    def __init__(self, units, activation=None, use_bias=True,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros",
                 kernel_regularizer=None, bias_regularizer=None, activity_regularizer=None,
                 kernel_constraint=None, bias_constraint=None, lora_rank=None,
                 lora_alpha=None, quantization_config=None, **kwargs):
        _no_regularizers(kernel_regularizer=kernel_regularizer,
                         bias_regularizer=bias_regularizer, kernel_constraint=kernel_constraint,
                         bias_constraint=bias_constraint, lora_rank=lora_rank,
                         quantization_config=quantization_config)
        super().__init__(activity_regularizer=activity_regularizer, **kwargs)
        self.units = check_positive_int("units", units)
        self.activation = _activations.get(activation)
        self.use_bias = check_bool("use_bias", use_bias)
        self.kernel_initializer = _inits.get(kernel_initializer)
        self.bias_initializer = _inits.get(bias_initializer)
        self._rng = make_rng()

    def _weight_names(self):
        return ["kernel", "bias"] if self.use_bias else ["kernel"]

    def _check_input_shape(self, input_shape):
        shape = tuple(input_shape)
        if len(shape) < 2 or shape[-1] is None or shape[-1] <= 0:
            raise ValueError(f"Dense expects inputs of shape (batch, ..., features) with a "
                             f"known number of features, got {format_shape(shape)}")
        if self.built and shape[-1] != self.kernel.shape[0]:
            raise ValueError(f"layer {self.name!r} is built for {self.kernel.shape[0]} input "
                             f"features, got inputs of shape {format_shape(shape)}")

    def build(self, input_shape):
        self._check_input_shape(input_shape)
        if self.built:
            return
        c = int(input_shape[-1])
        self.add_weight("kernel", (c, self.units), self.kernel_initializer, self._rng)
        if self.use_bias:
            self.add_weight("bias", (self.units,), self.bias_initializer, self._rng)
        self._build_shapes = tuple(input_shape)
        self.built = True

    def _build_from_weights(self, weights):
        k = np.shape(weights[0]) if weights else ()
        if len(k) != 2 or k[1] != self.units:
            raise ValueError(f"set_weights: kernel of layer {self.name!r} has shape {tuple(k)}, "
                             f"expected (input_dim, {self.units})")
        self.build((None, k[0]))

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.units,)

    def _standardize(self, x):
        x = float_array(x, "inputs", "float32 of shape (batch, ..., features)")
        self._check_input_shape(x.shape)
        return x

    def forward(self, x, training=None, mask=None):
        z = x @ self.kernel
        if self.use_bias:
            z += self.bias
        y = self.activation(z)
        return y, ((x, z, y) if _keep(training) else None)

    def backward_from(self, ctx, dy):
        x, z, y = ctx
        dy = grad_or_zeros(dy, y.shape)
        dz = _act_backward(self, z, y, dy)
        c = x.shape[-1]
        x2, dz2 = x.reshape(-1, c), dz.reshape(-1, self.units)
        grads = [x2.T @ dz2]
        if self.use_bias:
            grads.append(dz2.sum(axis=0))
        return dz @ self.kernel.T, grads

    def get_config(self):
        cfg = super().get_config()
        cfg.update(units=self.units, activation=_activations.serialize(self.activation),
                   use_bias=self.use_bias,
                   kernel_initializer=_inits.serialize(self.kernel_initializer),
                   bias_initializer=_inits.serialize(self.bias_initializer),
                   kernel_regularizer=None, bias_regularizer=None, kernel_constraint=None,
                   bias_constraint=None)
        return cfg


def _act_backward(layer, z, y, dy):
    grad = _activations.gradient(layer.activation)
    if grad is None:
        raise NotImplementedError(
            f"layer {layer.name!r} ({type(layer).__name__}): its activation "
            f"{layer.activation!r} is a user function with no known derivative, so the "
            f"layer has no backward; use one of the named activations "
            f"({', '.join(sorted(_activations._BY_NAME))})")
    return grad(z, y, dy).astype(y.dtype, copy=False)


class Activation(Layer):
    """Applies an activation function (by name, as Keras: ``Activation("relu")``)."""

    _supports_masking = True

    def __init__(self, activation, **kwargs):
        super().__init__(**kwargs)
        self.activation = _activations.get(activation)

    def forward(self, x, training=None, mask=None):
        y = self.activation(x)
        return y, ((x, y) if _keep(training) else None)

    def backward_from(self, ctx, dy):
        x, y = ctx
        return _act_backward(self, x, y, grad_or_zeros(dy, y.shape)), []

    def get_config(self):
        cfg = super().get_config()
        cfg["activation"] = _activations.serialize(self.activation)
        return cfg


# ------------------------------------------------------------- Dropout

class Dropout(Layer):
    """Keras' Dropout: with ``training=True``, each input unit is zeroed with
    probability ``rate`` and the kept ones are scaled by 1/(1 - rate);
    ``noise_shape`` (None entries: the input's) shares one draw along the axes
    where it is 1. Identity otherwise."""

    _supports_masking = True

    def __init__(self, rate, noise_shape=None, seed=None, **kwargs):
        super().__init__(**kwargs)
        if isinstance(rate, bool) or not isinstance(rate, numbers.Real) or not 0 <= rate <= 1:
            raise ValueError(f"Invalid value received for argument `rate`. Expected a float "
                             f"value between 0 and 1. Received: rate={rate!r}")
        self.rate = float(rate)
        self.noise_shape = None if noise_shape is None else _shape_tuple(noise_shape,
                                                                          "noise_shape")
        self.seed = seed
        self._rng = make_rng(seed)

    def forward(self, x, training=None, mask=None):
        if training is not True or self.rate == 0:
            return x, (None if _keep(training) else None)
        shape = x.shape
        if self.noise_shape is not None:
            if len(self.noise_shape) != x.ndim:
                raise ValueError(f"noise_shape {self.noise_shape} of layer {self.name!r} does "
                                 f"not match inputs of rank {x.ndim}")
            shape = tuple(s if d is None else d for d, s in zip(self.noise_shape, x.shape))
        keep_prob = 1.0 - self.rate
        if keep_prob == 0:
            scale = np.zeros(shape, x.dtype)
        else:
            scale = ((self._rng.random(shape) < keep_prob) / keep_prob).astype(x.dtype)
        return x * scale, scale

    def backward_from(self, ctx, dy):
        if dy is None:
            return None, []
        dy = np.asarray(dy, floatx())
        return (dy if ctx is None else dy * ctx), []

    def get_config(self):
        cfg = super().get_config()
        cfg.update(rate=self.rate, seed=self.seed, noise_shape=self.noise_shape)
        return cfg


# ----------------------------------------------------------- Embedding

class Embedding(Layer):
    """Turns token ids into dense vectors of ``output_dim`` (Keras' Embedding):
    ``embeddings[ids]``, embeddings [input_dim, output_dim] initialised
    U(-0.05, 0.05) ("uniform"). ``mask_zero=True``: id 0 is padding, and the
    layer produces the mask ``ids != 0`` for the next layers (the recurrent
    layers then skip those steps). Ids must lie in [0, input_dim)."""

    embeddings = weight_property("embeddings", "[input_dim, output_dim], read-only.")

    def __init__(self, input_dim, output_dim, embeddings_initializer="uniform",
                 embeddings_regularizer=None, embeddings_constraint=None, mask_zero=False,
                 weights=None, lora_rank=None, lora_alpha=None, quantization_config=None,
                 input_length=None, **kwargs):
        for arg, v in (("input_dim", input_dim), ("output_dim", output_dim)):
            if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v <= 0:
                raise ValueError(f"`{arg}` must be a positive integer. Received: {arg}={v!r} "
                                 f"(of type {type(v).__name__}).")
        _no_regularizers(embeddings_regularizer=embeddings_regularizer,
                         embeddings_constraint=embeddings_constraint, lora_rank=lora_rank,
                         quantization_config=quantization_config)
        super().__init__(**kwargs)
        self.input_dim, self.output_dim = int(input_dim), int(output_dim)
        self.embeddings_initializer = _inits.get(embeddings_initializer)
        self.mask_zero = check_bool("mask_zero", mask_zero)
        self._supports_masking = self.mask_zero
        self._rng = make_rng()
        if weights is not None:
            self.build()
            if not (isinstance(weights, list) and len(weights) == 1):
                weights = [weights]
            self.set_weights(weights)

    def build(self, input_shape=None):
        if self.built:
            return
        self.add_weight("embeddings", (self.input_dim, self.output_dim),
                        self.embeddings_initializer, self._rng)
        self._build_shapes = None if input_shape is None else tuple(input_shape)
        self.built = True

    def _build_from_weights(self, weights):
        self.build()

    def compute_output_shape(self, input_shape):
        return tuple(input_shape) + (self.output_dim,)

    def _standardize(self, ids):
        a = np.asarray(ids)
        if a.dtype.kind not in "fiub":
            raise TypeError(f"Embedding {self.name!r}: token ids must be an integer array, "
                            f"got dtype {a.dtype}")
        if a.dtype.kind != "i":
            a = a.astype(np.int64)  # Keras casts to int32 (floats truncate)
        if a.size and (a.min() < 0 or a.max() >= self.input_dim):
            raise ValueError(f"Embedding {self.name!r}: token ids must lie in [0, "
                             f"{self.input_dim}) (input_dim), got ids from {a.min()} to "
                             f"{a.max()}")
        return a

    def forward(self, ids, training=None, mask=None):
        y = self.embeddings[ids]
        return y, (ids if _keep(training) else None)

    def backward_from(self, ids, dy):
        dy = grad_or_zeros(dy, ids.shape + (self.output_dim,))
        flat, rows = ids.ravel(), dy.reshape(-1, self.output_dim)
        if rows.dtype == np.float32 and _core_available():
            from .. import _core
            return None, [_core.embedding_grad(flat, rows, self.input_dim)]
        g = np.zeros((self.input_dim, self.output_dim), dy.dtype)
        np.add.at(g, flat, rows)
        return None, [g]

    def compute_mask(self, inputs, mask=None):
        if not self.mask_zero:
            return None
        return np.asarray(inputs) != 0

    def get_config(self):
        cfg = super().get_config()
        cfg.update(input_dim=self.input_dim, output_dim=self.output_dim,
                   embeddings_initializer=_inits.serialize(self.embeddings_initializer),
                   embeddings_regularizer=None, embeddings_constraint=None,
                   mask_zero=self.mask_zero)
        return cfg


# ------------------------------------------------------------ reshaping

def _prod_or_none(dims):
    return None if any(d is None for d in dims) else int(np.prod(dims, dtype=np.int64))


class Reshape(Layer):
    """Reshapes the non-batch dimensions to ``target_shape`` (one entry may be
    -1: inferred)."""

    def __init__(self, target_shape, **kwargs):
        super().__init__(**kwargs)
        target = _shape_tuple(target_shape, "target_shape")
        if any(d is None or (d < 1 and d != -1) for d in target) or target.count(-1) > 1:
            raise ValueError(f"target_shape must be positive ints with at most one -1, got "
                             f"{target_shape!r}")
        self.target_shape = target

    def _resolve(self, in_dims, strict):
        target = list(self.target_shape)
        size = _prod_or_none(in_dims)
        known = int(np.prod([d for d in target if d != -1], dtype=np.int64))
        if -1 in target:
            if size is not None:
                if known == 0 or size % known:
                    raise ValueError(f"cannot reshape inputs of {size} values per sample "
                                     f"into {self.target_shape}")
                target[target.index(-1)] = size // known
            else:
                target[target.index(-1)] = None
        elif size is not None and size != known:
            raise ValueError(f"total size of new array must be unchanged: inputs have {size} "
                             f"values per sample, target_shape {self.target_shape} has {known}")
        return tuple(target)

    def _check_input_shape(self, input_shape):
        self._resolve(tuple(input_shape)[1:], True)

    def compute_output_shape(self, input_shape):
        return (input_shape[0],) + self._resolve(tuple(input_shape)[1:], True)

    def forward(self, x, training=None, mask=None):
        target = self._resolve(x.shape[1:], True)
        return x.reshape((x.shape[0],) + target), x.shape

    def backward_from(self, shape, dy):
        return grad_or_zeros(dy, (shape[0],) + self._resolve(shape[1:], True)).reshape(shape), []

    def get_config(self):
        cfg = super().get_config()
        cfg["target_shape"] = self.target_shape
        return cfg


class Flatten(Layer):
    """Flattens every non-batch dimension: (N, ...) -> (N, prod(...))."""

    def __init__(self, data_format=None, **kwargs):
        super().__init__(**kwargs)
        if data_format not in (None, "channels_last", "channels_first"):
            raise ValueError(f"data_format must be channels_last or channels_first, got "
                             f"{data_format!r}")
        self.data_format = data_format or "channels_last"

    def _check_input_shape(self, input_shape):
        if len(tuple(input_shape)) < 1:
            raise ValueError("Flatten needs inputs with a batch dimension")

    def compute_output_shape(self, input_shape):
        return (input_shape[0], _prod_or_none(tuple(input_shape)[1:]))

    def _order(self, x):
        if self.data_format == "channels_first" and x.ndim > 2:
            return np.moveaxis(x, 1, -1)  # Keras flattens channels-last order
        return x

    def forward(self, x, training=None, mask=None):
        return self._order(x).reshape(x.shape[0], -1), x.shape

    def backward_from(self, shape, dy):
        n = shape[0]
        dy = grad_or_zeros(dy, (n, _prod_or_none(shape[1:])))
        if self.data_format == "channels_first" and len(shape) > 2:
            return np.moveaxis(dy.reshape((n,) + shape[2:] + shape[1:2]), -1, 1), []
        return dy.reshape(shape), []

    def get_config(self):
        cfg = super().get_config()
        cfg["data_format"] = self.data_format
        return cfg


class RepeatVector(Layer):
    """Repeats a (N, F) input ``n`` times: (N, n, F)."""

    def __init__(self, n, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(n, (int, np.integer)) or isinstance(n, bool):
            raise TypeError(f"Expected an integer value for `n`, got {type(n).__name__}.")
        self.n = int(n)

    def _check_input_shape(self, input_shape):
        if len(tuple(input_shape)) != 2:
            raise ValueError(f"RepeatVector expects inputs of shape (batch, features), got "
                             f"{format_shape(input_shape)}")

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.n, input_shape[1])

    def _standardize(self, x):
        x = float_array(x, "inputs", "float32 of shape (batch, features)")
        self._check_input_shape(x.shape)
        return x

    def forward(self, x, training=None, mask=None):
        return np.repeat(x[:, None, :], self.n, axis=1), x.shape

    def backward_from(self, shape, dy):
        return grad_or_zeros(dy, (shape[0], self.n, shape[1])).sum(axis=1), []

    def get_config(self):
        cfg = super().get_config()
        cfg["n"] = self.n
        return cfg


class Rescaling(Layer):
    """``inputs * scale + offset`` (scale and offset scalars, or arrays that
    broadcast against the input)."""

    _supports_masking = True

    def __init__(self, scale, offset=0.0, **kwargs):
        super().__init__(**kwargs)
        self.scale, self.offset = scale, offset
        for arg, v in (("scale", scale), ("offset", offset)):
            if np.asarray(v).dtype.kind not in "fiu":
                raise TypeError(f"{arg} must be a real number or array, got {v!r}")

    def forward(self, x, training=None, mask=None):
        s = np.asarray(self.scale, x.dtype)
        return x * s + np.asarray(self.offset, x.dtype), x.shape

    def backward_from(self, shape, dy):
        dy = grad_or_zeros(dy, shape)
        return dy * np.asarray(self.scale, dy.dtype), []

    def get_config(self):
        cfg = super().get_config()
        cfg.update(scale=self.scale, offset=self.offset)
        return cfg


# --------------------------------------------------------------- Lambda

class Lambda(Layer):
    """Wraps a function of the inputs as a layer (Keras' Lambda): forward only.

    ``backward`` through it raises a clear error unless the layer is given
    ``gradient=`` (an rnnkern extension): ``gradient(inputs, outputs,
    d_outputs) -> d_inputs``. The notebooks' uses have layers with a backward:
    ``Reshape`` for ``K.reshape`` / ``tf.expand_dims`` and ``Rescaling`` for
    ``x * 100``. ``output_shape`` (without the batch, or a function of the input
    shape) is inferred by running the function on zeros when not given.
    """

    _call_args = ("mask", "training")

    def __init__(self, function, output_shape=None, mask=None, arguments=None,
                 gradient=None, **kwargs):
        super().__init__(**kwargs)
        if not callable(function):
            raise TypeError(f"Lambda needs a callable, got {function!r}")
        if gradient is not None and not callable(gradient):
            raise TypeError(f"gradient must be a callable(inputs, outputs, d_outputs), got "
                            f"{gradient!r}")
        self.function = function
        self.arguments = dict(arguments or {})
        self.gradient = gradient
        self._output_shape = output_shape
        self.mask = mask
        self._supports_masking = mask is not None
        self._call_has_mask_arg = True

    def compute_output_shape(self, input_shape):
        if self._output_shape is not None:
            if callable(self._output_shape):
                return tuple(self._output_shape(input_shape))
            return (flatten(input_shape)[0][0],) + _shape_tuple(self._output_shape,
                                                                 "output_shape")
        # run the function on zeros with the unknown sizes as 2 and then as 3:
        # the output sizes that change with them are unknown too
        def run(fill):
            z = [np.zeros(tuple(fill if d is None else d for d in s), floatx())
                 for s in _shape_list(input_shape)]
            return np.shape(self.function(z if len(z) > 1 else z[0], **self.arguments))
        a, b = run(2), run(3)
        if len(a) != len(b) or not a:
            raise ValueError(f"cannot infer the output shape of Lambda layer {self.name!r}; "
                             "pass output_shape=")
        batch = _shape_list(input_shape)[0][0]
        return (batch,) + tuple(x if x == y else None for x, y in zip(a[1:], b[1:]))

    def _standardize(self, inputs):
        return inputs if isinstance(inputs, (list, tuple)) else float_array(
            inputs, "inputs", "a float32 array")

    def forward(self, x, training=None, mask=None):
        kw = dict(self.arguments)
        y = np.asarray(self.function(x, **kw), dtype=floatx())
        return y, ((x, y) if _keep(training) else None)

    def backward_from(self, ctx, dy):
        x, y = ctx
        if self.gradient is None:
            raise NotImplementedError(
                f"Lambda layer {self.name!r} has no backward: its function is opaque to "
                "rnnkern. Use Reshape (for reshape / expand_dims) or Rescaling (for x * "
                "scale + offset), which have one, or give the layer gradient=fn(inputs, "
                "outputs, d_outputs) -> d_inputs")
        return self.gradient(x, y, grad_or_zeros(dy, y.shape)), []

    def compute_mask(self, inputs, mask=None):
        if callable(self.mask):
            return self.mask(inputs, mask)
        return self.mask

    def get_config(self):
        raise NotImplementedError(f"Lambda layer {self.name!r} holds a Python function, "
                                  "which has no config")


def _shape_list(s):
    """A shape or a list of shapes, as a list of shapes."""
    if isinstance(s, tuple) and all(d is None or isinstance(d, (int, np.integer)) for d in s):
        return [s]
    return list(s)


# -------------------------------------------------------------- merging
#
# Keras 3's merging layers (keras/src/layers/merging/). Inputs: a list of
# arrays of one batch size whose other axes broadcast (NumPy's rule, aligned on
# the right; an input of a lower rank gets axes of size 1 inserted after its
# batch axis first, as Keras' Merge.call does). Masks as Keras': the output mask
# is the OR of the inputs' masks when every input has one, else None. Multiply,
# Maximum and Minimum also use the masks of their inputs in the computation
# (Keras reads them off the input tensors; here a model hands them to forward,
# and a direct call takes mask=[...], one entry per input, None for none).

def _tuple_shape(s):
    """A shape as Keras prints it (a Python tuple)."""
    return tuple(None if d is None else int(d) for d in s)


def _elementwise_shape(shape1, shape2):
    """Keras' Merge._compute_elemwise_op_output_shape (shapes without the batch)."""
    if len(shape1) < len(shape2):
        return _elementwise_shape(shape2, shape1)
    if not shape2:
        return tuple(shape1)
    out = list(shape1[:len(shape1) - len(shape2)])
    for i, j in zip(shape1[len(shape1) - len(shape2):], shape2):
        if i is None or j is None:
            out.append(None)
        elif i == 1:
            out.append(j)
        elif j == 1 or i == j:
            out.append(i)
        else:
            raise ValueError(f"Inputs have incompatible shapes. Received shapes "
                             f"{_tuple_shape(shape1)} and {_tuple_shape(shape2)}")
    return tuple(out)


def _unbroadcast(g, shape):
    """The gradient ``g`` of a broadcast result, summed back to ``shape``."""
    if g.shape == tuple(shape):
        return g
    lead = g.ndim - len(shape)
    if lead:
        g = g.sum(axis=tuple(range(lead)))
    axes = tuple(i for i, d in enumerate(shape) if d == 1 and g.shape[i] != 1)
    if axes:
        g = g.sum(axis=axes, keepdims=True)
    return g.reshape(shape)


def bool_mask(name, m):
    """A mask as a boolean array (numbers: nonzero is True); TypeError naming
    ``name`` for other data."""
    m = np.asarray(m)
    if m.dtype.kind not in "biuf":
        raise TypeError(f"{name} must be a boolean array, got dtype {m.dtype}")
    return m.astype(bool, copy=False)


def _same_rank(xs):
    """Keras' Merge.call: inputs of different ranks get size-1 axes after the
    batch axis up to the highest rank."""
    top = max(x.ndim for x in xs)
    return [x if x.ndim == top else x.reshape(x.shape[:1] + (1,) * (top - x.ndim) + x.shape[1:])
            for x in xs]


class _Merge(Layer):
    """Layers of a list of inputs (Keras' merging layers, ``Merge``)."""

    _supports_masking = True
    _call_args = ("mask", "training")
    # forward receives the inputs' masks (Multiply, Maximum and Minimum use them)
    _call_has_mask_arg = True

    def _shapes(self, input_shape):
        if (not isinstance(input_shape, (list, tuple)) or not input_shape
                or not isinstance(input_shape[0], (list, tuple))):
            raise ValueError(f"A merge layer should be called on a list of inputs. Received: "
                             f"input_shape={input_shape} (not a list of shapes)")
        return [_tuple_shape(s) for s in input_shape]

    def _check_input_shape(self, input_shape):
        self.compute_output_shape(input_shape)

    def compute_output_shape(self, input_shape):
        shapes = self._shapes(input_shape)
        batch = {s[0] for s in shapes if s} - {None}
        if len(batch) > 1:
            raise ValueError(f"Cannot merge tensors with different batch sizes. Received "
                             f"tensors with shapes {shapes}")
        out = shapes[0][1:]
        for s in shapes[1:]:
            out = _elementwise_shape(out, s[1:])
        return (batch.pop() if batch else None,) + out

    def _standardize(self, inputs):
        if not isinstance(inputs, (list, tuple)) or len(inputs) < 1:
            raise ValueError(f"A {type(self).__name__} layer should be called on a list of "
                             f"inputs. Received: inputs={type(inputs).__name__} (not a list "
                             "of tensors)")
        xs = [float_array(x, f"inputs[{i}]", "a float32 array") for i, x in enumerate(inputs)]
        self._check_input_shape([x.shape for x in xs])
        return xs

    def compute_mask(self, inputs, mask=None):
        """Keras' Merge.compute_mask: the OR of the masks when every input has
        one, else None."""
        if mask is None:
            return None
        if not isinstance(mask, (list, tuple)):
            raise ValueError(f"`mask` should be a list. Received: mask={mask}")
        if not isinstance(inputs, (list, tuple)):
            raise ValueError(f"`inputs` should be a list. Received: inputs={inputs}")
        if len(mask) != len(inputs):
            raise ValueError(f"The lists `inputs` and `mask` should have the same length. "
                             f"Received: inputs of length {len(inputs)}, and mask of length "
                             f"{len(mask)}")
        if any(m is None for m in mask):
            return None
        out = np.asarray(mask[0], bool)
        for m in mask[1:]:
            out = out | np.asarray(m, bool)
        return out

    def _input_masks(self, xs, mask):
        """The masks of the inputs broadcast to their shapes (a list with None
        for an unmasked input), or None: no masks, or inputs of different ranks
        (Keras' reshaping drops the masks then)."""
        if mask is None:
            return None
        if not isinstance(mask, (list, tuple)) or len(mask) != len(xs):
            raise ValueError(f"mask of layer {self.name!r} must be a list with one entry (an "
                             f"array or None) per input ({len(xs)}), got {mask!r}")
        if all(m is None for m in mask) or len({x.ndim for x in xs}) > 1:
            return None
        out = []
        for i, (x, m) in enumerate(zip(xs, mask)):
            if m is None:
                out.append(None)
                continue
            m = bool_mask(f"mask[{i}]", m)
            try:
                out.append(np.broadcast_to(m[..., None], x.shape))
            except ValueError:
                raise ValueError(f"mask[{i}] of shape {m.shape} does not fit input {i} of "
                                 f"shape {x.shape} (a mask has the input's shape without its "
                                 "last axis)") from None
        return out

    @staticmethod
    def _ctx_shapes(xs, es):
        return [x.shape for x in xs], [e.shape for e in es]

    @staticmethod
    def _to_inputs(ds, shapes):
        """Gradients of the rank-matched inputs back to the inputs' shapes."""
        in_shapes, e_shapes = shapes
        return [_unbroadcast(d, e).reshape(s) for d, e, s in zip(ds, e_shapes, in_shapes)]


class Concatenate(_Merge):
    """Concatenates a list of inputs along ``axis`` (default: the last)."""

    def __init__(self, axis=-1, **kwargs):
        super().__init__(**kwargs)
        self.axis = int(axis)

    def _check_input_shape(self, input_shape):
        shapes = _shape_list(input_shape)
        if len(shapes) < 1 or any(len(s) != len(shapes[0]) for s in shapes):
            raise ValueError(f"Concatenate needs inputs of one rank, got "
                             f"{[format_shape(s) for s in shapes]}")
        ax = self.axis % len(shapes[0])
        for i in range(len(shapes[0])):
            if i == ax:
                continue
            known = {s[i] for s in shapes if s[i] is not None}
            if len(known) > 1:
                raise ValueError(f"A Concatenate layer requires inputs with matching shapes "
                                 f"except for the concatenation axis. Received: input_shape="
                                 f"{[format_shape(s) for s in shapes]}")

    def compute_output_shape(self, input_shape):
        shapes = _shape_list(input_shape)
        ax = self.axis % len(shapes[0])
        out = list(shapes[0])
        dims = [s[ax] for s in shapes]
        out[ax] = None if any(d is None for d in dims) else sum(dims)
        return tuple(out)

    def forward(self, xs, training=None, mask=None):
        return np.concatenate(xs, axis=self.axis), [x.shape for x in xs]

    def backward_from(self, shapes, dy):
        ax = self.axis % len(shapes[0])
        out_shape = list(shapes[0])
        out_shape[ax] = sum(s[ax] for s in shapes)
        dy = grad_or_zeros(dy, tuple(out_shape))
        cuts = np.cumsum([s[ax] for s in shapes])[:-1]
        return list(np.split(dy, cuts, axis=ax)), []

    def compute_mask(self, inputs, mask=None):
        if mask is None or all(m is None for m in mask):
            return None
        # Keras: missing masks are all ones; a step is kept if any input keeps it
        ms = [np.ones(np.shape(x)[:np.ndim(m0)], bool) if m is None else np.asarray(m, bool)
              for x, m, m0 in zip(inputs, mask, [next(m for m in mask if m is not None)] *
                                  len(mask))]
        out = ms[0]
        for m in ms[1:]:
            out = out | m
        return out

    def get_config(self):
        cfg = super().get_config()
        cfg["axis"] = self.axis
        return cfg


class Add(_Merge):
    """Sums a list of inputs (shapes that broadcast, Keras' Merge rule)."""

    def forward(self, xs, training=None, mask=None):
        es = _same_rank(xs)
        out = es[0].copy()
        for x in es[1:]:
            if out.shape == np.broadcast_shapes(out.shape, x.shape):
                out += x
            else:
                out = out + x
        return out, self._ctx_shapes(xs, es)

    def backward_from(self, shapes, dy):
        if dy is None:
            return [None] * len(shapes[0]), []
        dy = np.asarray(dy, floatx())
        return self._to_inputs([dy] * len(shapes[0]), shapes), []


class Subtract(_Merge):
    """``inputs[0] - inputs[1]`` (exactly two inputs whose shapes broadcast)."""

    def _check_input_shape(self, input_shape):
        super()._check_input_shape(input_shape)
        if len(input_shape) != 2:
            raise ValueError(f"A `Subtract` layer should be called on exactly 2 inputs. "
                             f"Received: input_shape={self._shapes(input_shape)}")

    def forward(self, xs, training=None, mask=None):
        es = _same_rank(xs)
        return es[0] - es[1], self._ctx_shapes(xs, es)

    def backward_from(self, shapes, dy):
        if dy is None:
            return [None, None], []
        dy = np.asarray(dy, floatx())
        return self._to_inputs([dy, -dy], shapes), []


class Average(_Merge):
    """The mean of a list of inputs (shapes that broadcast)."""

    def forward(self, xs, training=None, mask=None):
        es = _same_rank(xs)
        out = es[0]
        for x in es[1:]:
            out = out + x
        return out / out.dtype.type(len(es)), self._ctx_shapes(xs, es)

    def backward_from(self, shapes, dy):
        k = len(shapes[0])
        if dy is None:
            return [None] * k, []
        dy = np.asarray(dy, floatx())
        return self._to_inputs([dy / dy.dtype.type(k)] * k, shapes), []


class Multiply(_Merge):
    """The elementwise product of a list of inputs (shapes that broadcast).

    With masks (Keras' Multiply): a masked-out step of an input counts as 1;
    when every input has a mask, the output is 0 where no input keeps the step."""

    def forward(self, xs, training=None, mask=None):
        es = _same_rank(xs)
        ms = self._input_masks(es, mask) or [None] * len(es)
        terms = [x if m is None else np.where(m, x, x.dtype.type(1)) for x, m in zip(es, ms)]
        keep = None
        if all(m is not None for m in ms):
            keep = ms[0]
            for m in ms[1:]:
                keep = keep | m
        partial = [terms[0]]
        for t in terms[1:]:
            partial.append(partial[-1] * t)
        out = partial[-1]
        if keep is not None:
            out = np.where(keep, out, out.dtype.type(0))
        if not _keep(training):
            return out, None
        return out, (self._ctx_shapes(xs, es), terms, partial, ms, keep)

    def backward_from(self, ctx, dy):
        shapes, terms, partial, ms, keep = ctx
        g = grad_or_zeros(dy, partial[-1].shape if keep is None else
                          np.broadcast_shapes(partial[-1].shape, keep.shape))
        if keep is not None:
            g = np.where(keep, g, g.dtype.type(0))
        ds = [None] * len(terms)
        for k in range(len(terms) - 1, 0, -1):  # as autograd through the fold
            ds[k] = _unbroadcast(g * partial[k - 1], terms[k].shape)
            g = _unbroadcast(g * terms[k], partial[k - 1].shape)
        ds[0] = g
        ds = [d if m is None else np.where(m, d, d.dtype.type(0)) for d, m in zip(ds, ms)]
        return self._to_inputs(ds, shapes), []


class _MinMax(_Merge):
    """Maximum / Minimum: Keras' fold ``out = op(out, x)`` over the inputs, with
    Keras' masking (a masked-out step of an input takes the running result; the
    output mask is the OR of the masks when every input has one). Backward
    routes the gradient as torch's autograd does through that fold: at a tie
    each side gets half."""

    _op = staticmethod(np.maximum)

    def _first_wins(self, b, a):
        return b > a

    def forward(self, xs, training=None, mask=None):
        es = _same_rank(xs)
        ms = self._input_masks(es, mask) or [None] * len(es)
        out, keep = es[0], ms[0]
        steps = []
        for x, m in zip(es[1:], ms[1:]):
            a = x if m is None else np.where(m, x, out)
            b = out if keep is None else np.where(keep, out, a)
            steps.append((out.shape, x.shape, m, keep, b, a))
            keep = keep | m if keep is not None and m is not None else None
            out = self._op(b, a)
        if not _keep(training):
            return out, None
        return out, (self._ctx_shapes(xs, es), out.shape, steps)

    def backward_from(self, ctx, dy):
        shapes, out_shape, steps = ctx
        g = grad_or_zeros(dy, out_shape)
        ds = [None] * (len(steps) + 1)
        zero = g.dtype.type(0)
        for k in range(len(steps), 0, -1):
            prev_shape, x_shape, m, keep, b, a = steps[k - 1]
            tie = b == a
            half = np.where(tie, g * g.dtype.type(0.5), g)
            gb = np.where(self._first_wins(a, b), zero, half)   # b loses: nothing
            ga = np.where(self._first_wins(b, a), zero, half)
            if keep is not None:  # b = where(keep, out, a)
                g_prev, ga = np.where(keep, gb, zero), ga + np.where(keep, zero, gb)
            else:
                g_prev = gb
            if m is not None:     # a = where(m, x, out)
                gx, g_prev = np.where(m, ga, zero), g_prev + np.where(m, zero, ga)
            else:
                gx = ga
            ds[k] = _unbroadcast(gx, x_shape)
            g = _unbroadcast(g_prev, prev_shape)
        ds[0] = g
        return self._to_inputs(ds, shapes), []


class Maximum(_MinMax):
    """The elementwise maximum of a list of inputs (shapes that broadcast)."""


class Minimum(_MinMax):
    """The elementwise minimum of a list of inputs (shapes that broadcast)."""

    _op = staticmethod(np.minimum)

    def _first_wins(self, b, a):
        return b < a


class Dot(_Merge):
    """Batchwise dot product of two inputs along ``axes`` (Keras' Dot).

    ``axes``: an int (the same axis of both inputs; negative counts from the
    end of each) or a pair (one axis per input); never the batch axis 0. The
    output is ``(batch, *rest_of_x1, *rest_of_x2)``, ``(batch, 1)`` when both
    rests are empty. ``normalize=True`` l2-normalises both inputs along their
    axes first (Keras' ``x * min(rsqrt(sum x^2), 1/epsilon)``, epsilon 1e-7):
    the output is then the cosine similarity. Output mask: None.
    """

    _EPSILON = 1e-7  # keras.config.epsilon()

    def __init__(self, axes, normalize=False, **kwargs):
        super().__init__(**kwargs)
        if isinstance(axes, (int, np.integer)) and not isinstance(axes, bool):
            axes = int(axes)
        else:
            if not isinstance(axes, (list, tuple)):
                raise TypeError(f"Invalid type for argument `axes`: it should be a list or an "
                                f"int. Received: axes={axes}")
            if len(axes) != 2:
                raise ValueError(f"Invalid format for argument `axes`: it should contain two "
                                 f"elements. Received: axes={axes}")
            if not all(isinstance(a, (int, np.integer)) and not isinstance(a, bool)
                       for a in axes):
                raise ValueError(f"Invalid format for argument `axes`: list elements should "
                                 f"be integers. Received: axes={axes}")
            axes = type(axes)(int(a) for a in axes)
        self.axes = axes
        self.normalize = check_bool("normalize", normalize)

    def _axes(self, nd1, nd2):
        pair = (self.axes, self.axes) if isinstance(self.axes, int) else self.axes
        return [a % nd if a < 0 else a for a, nd in zip(pair, (nd1, nd2))]

    def _check_input_shape(self, input_shape):
        if (not isinstance(input_shape, (list, tuple)) or len(input_shape) != 2
                or not isinstance(input_shape[0], (list, tuple))):
            raise ValueError(f"A `Dot` layer should be called on a list of 2 inputs. "
                             f"Received: input_shape={input_shape}")
        s1, s2 = (_tuple_shape(s) for s in input_shape)
        if len(s1) < 2 or len(s2) < 2:
            raise ValueError(f"Cannot do batch_dot on inputs with rank < 2. Received inputs "
                             f"with shapes {s1} and {s2}.")
        if s1[0] is not None and s2[0] is not None and s1[0] != s2[0]:
            raise ValueError(f"Cannot do batch_dot on inputs with different batch sizes. "
                             f"Received inputs with shapes {s1} and {s2}.")
        a1, a2 = self._axes(len(s1), len(s2))
        if not (0 <= a1 < len(s1) and 0 <= a2 < len(s2)):
            raise ValueError(f"axes={self.axes} are out of range for inputs of shapes {s1} "
                             f"and {s2}")
        if a1 == 0 or a2 == 0:
            raise ValueError("Cannot perform batch_dot over axis 0. If your inputs are not "
                             "batched, add a dummy batch dimension to your inputs using "
                             "keras.ops.expand_dims(x, 0)")
        if s1[a1] != s2[a2]:
            raise ValueError(f"Incompatible input shapes: axis values {s1[a1]} (at axis {a1}) "
                             f"!= {s2[a2]} (at axis {a2}). Full input shapes: {s1}, {s2}")

    def compute_output_shape(self, input_shape):
        self._check_input_shape(input_shape)
        s1, s2 = (list(_tuple_shape(s)) for s in input_shape)
        a1, a2 = self._axes(len(s1), len(s2))
        s1.pop(a1)
        s2.pop(a2)
        s2.pop(0)
        out = s1 + s2
        return tuple(out + [1] if len(out) == 1 else out)

    def compute_mask(self, inputs, mask=None):
        return None

    def _l2_normalize(self, x, axis):
        with np.errstate(divide="ignore"):
            inv = 1.0 / np.sqrt(np.sum(x * x, axis=axis, keepdims=True))
        cap = x.dtype.type(1.0 / self._EPSILON)
        clamped = ~(inv < cap)  # inf (a zero vector) and NaN included
        inv = np.where(clamped, cap, inv).astype(x.dtype, copy=False)
        return x * inv, (inv, clamped)

    def forward(self, xs, training=None, mask=None):
        x1, x2 = xs
        a1, a2 = self._axes(x1.ndim, x2.ndim)
        norms = None
        if self.normalize:
            (x1, n1), (x2, n2) = self._l2_normalize(x1, a1), self._l2_normalize(x2, a2)
            norms = (n1, n2)
        m1 = np.moveaxis(x1, a1, -1)    # (N, *rest1, d)
        m2 = np.moveaxis(x2, a2, 1)     # (N, d, *rest2)
        n, d = x1.shape[0], x1.shape[a1]
        rest1, rest2 = m1.shape[1:-1], m2.shape[2:]
        y = np.matmul(m1.reshape(n, -1, d), m2.reshape(n, d, -1))
        out_shape = (n,) + rest1 + rest2
        y = y.reshape(out_shape if len(out_shape) > 1 else (n, 1))
        if not _keep(training):
            return y, None
        return y, (x1, x2, a1, a2, norms, y.shape)

    def backward_from(self, ctx, dy):
        x1, x2, a1, a2, norms, out_shape = ctx
        dy = grad_or_zeros(dy, out_shape)
        m1, m2 = np.moveaxis(x1, a1, -1), np.moveaxis(x2, a2, 1)
        n, d = x1.shape[0], x1.shape[a1]
        g = dy.reshape(n, int(np.prod(m1.shape[1:-1], dtype=np.int64)), -1)
        f1 = m1.reshape(n, -1, d)
        f2 = m2.reshape(n, d, -1)
        d1 = np.moveaxis((g @ np.swapaxes(f2, 1, 2)).reshape(m1.shape), -1, a1)
        d2 = np.moveaxis((np.swapaxes(f1, 1, 2) @ g).reshape(m2.shape), 1, a2)
        if norms is not None:
            d1 = self._l2_normalize_backward(x1, norms[0], d1, a1)
            d2 = self._l2_normalize_backward(x2, norms[1], d2, a2)
        return [d1, d2], []

    @staticmethod
    def _l2_normalize_backward(y, norm, dy, axis):
        """y = x * inv, inv = min(rsqrt(sum x^2), 1/eps): dx = inv (dy - y sum(dy y))
        where inv is not capped, inv dy where it is (the cap is a constant). At a
        zero vector that is 1e7 dy, the derivative of Keras' forward there, where
        torch's autograd through Keras gives NaN (0 * the infinite rsqrt')."""
        inv, clamped = norm
        proj = np.sum(dy * y, axis=axis, keepdims=True)
        return inv * (dy - np.where(clamped, y.dtype.type(0), y * proj))

    def get_config(self):
        cfg = super().get_config()
        cfg.update(axes=self.axes, normalize=self.normalize)
        return cfg
