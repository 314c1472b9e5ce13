"""The non-recurrent layers of the Keras notebooks, in NumPy: Input /
InputLayer, Dense, Activation, Dropout, Embedding, Reshape, Flatten,
RepeatVector, Rescaling, Lambda, and the merging layers Concatenate and Add.

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
           "Flatten", "RepeatVector", "Rescaling", "Lambda", "Concatenate", "Add"]


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

class _Merge(Layer):
    """Layers of a list of inputs (Keras' merging layers)."""

    _supports_masking = True
    _call_args = ("mask", "training")

    def _standardize(self, inputs):
        if not isinstance(inputs, (list, tuple)) or len(inputs) < 1:
            raise ValueError(f"A {type(self).__name__} layer should be called on a list of "
                             f"inputs. Received: {type(inputs).__name__}")
        return [float_array(x, f"inputs[{i}]", "a float32 array") for i, x in enumerate(inputs)]

    def compute_mask(self, inputs, mask=None):
        if mask is None or all(m is None for m in mask):
            return None
        masks = [np.asarray(m, bool) for m in mask if m is not None]
        out = masks[0]
        for m in masks[1:]:
            out = out & m
        return out


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
    """Sums a list of inputs of one shape."""

    def _check_input_shape(self, input_shape):
        shapes = _shape_list(input_shape)
        for s in shapes[1:]:
            if len(s) != len(shapes[0]) or any(
                    a is not None and b is not None and a != b for a, b in zip(s, shapes[0])):
                raise ValueError(f"Inputs of an Add layer must have the same shape, got "
                                 f"{[format_shape(s) for s in shapes]}")

    def compute_output_shape(self, input_shape):
        shapes = _shape_list(input_shape)
        return tuple(next((s[i] for s in shapes if s[i] is not None), None)
                     for i in range(len(shapes[0])))

    def forward(self, xs, training=None, mask=None):
        out = xs[0].copy()
        for x in xs[1:]:
            out += x
        return out, len(xs)

    def backward_from(self, k, dy):
        if dy is None:
            return [None] * k, []
        dy = np.asarray(dy, floatx())
        return [dy] * k, []
