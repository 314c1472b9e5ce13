"""The one Layer contract every rnnkern layer (and model) implements.

Each layer keeps its math in two PURE methods:

    forward(inputs, training=None, mask=None, **tensor_kwargs) -> (outputs, ctx)
    backward_from(ctx, d_outputs) -> (d_inputs, grads)

``forward`` takes its inputs as ``_standardize`` returns them (float32 arrays,
or the structure the layer takes) and keeps no state: ``ctx`` holds what the
backward of THAT call needs (None when ``training is False``, which keeps
nothing). ``backward_from`` takes ``d_outputs`` with the structure of
``outputs`` (any entry may be None: no gradient reaches it) and returns

- ``d_inputs``: whose flattened leaves align with the flattened ``inputs``
  followed by the flattened tensor keyword arguments (``_tensor_kwargs``, e.g. a
  recurrent layer's ``initial_state``); a leaf is None where the input is not
  differentiable (integer token ids);
- ``grads``: a list aligned with ``layer.weights`` (own weights first, then the
  sublayers', Keras' order).

Around them sits a thin stateful shell, the API users and Keras code call:
``__call__`` (NumPy in: standardize, build on the first call, run ``forward``,
keep the ctx of the LAST call of the calling thread; symbolic in: record a
graph node, see below), ``backward(d_output)`` (``backward_from`` on that ctx;
REPLACES ``grads``), ``build``, ``compute_output_shape``, ``compute_mask``,
``weights`` / ``get_weights`` / ``set_weights``, ``trainable_weights``,
``count_params``, ``get_config`` / ``from_config`` and Keras' automatic names
(``dense``, ``dense_1``, ...; ``rnnkern.utils.clear_session()`` restarts them).

The last call's ctx, ``grads`` and ``state_grads`` are kept per thread: two
threads calling one layer each differentiate their own call. Models keep one ctx
per graph node instead, so a layer used several times in a model (a shared
layer) differentiates every use, and its gradients are summed over the uses.

Symbolic tensors: ``Input(shape)`` returns a :class:`KerasTensor` (a shape and a
dtype, no value). Calling a layer on KerasTensors builds the layer from their
shapes, checks that the shapes connect, and records a :class:`Node` (the layer,
its call arguments, its output tensors); ``rnnkern.models.Model(inputs,
outputs)`` runs the recorded graph on arrays.

Masks flow as Keras 3's do: a layer whose call takes a ``mask`` receives the
mask of its input when it has a single tensor argument; a layer that
``supports_masking`` passes ``compute_mask(inputs, mask)`` on to the next
layers; any other layer drops it (with Keras' warning).

This file is the Layer contract only. The helpers layers share live where
Keras keeps them, below the layers, so that losses, metrics, optimizers and
the trainer import them without importing the layers: ``rnnkern.config``
(``floatx``, the global seed, ``make_rng``), ``rnnkern.utils.naming``
(automatic names), ``rnnkern.utils.tree`` (nested structures) and
``rnnkern.utils.registry`` (the classes a config may name, which register
themselves here in ``Layer.__init_subclass__``). They are re-exported here
for code that imports them from this module.
"""
from __future__ import annotations

import collections
import threading
import warnings

import numpy as np

from .. import initializers
from .._device_math import is_device_vec
# The helpers below live where a Keras user looks for them; they stay importable
# from here (``from rnnkern.layers.base import floatx`` keeps working).
from ..config import _float64_for_tests, floatx, make_rng, set_global_seed  # noqa: F401
from ..utils.naming import auto_name, clear_session, to_snake_case, uniquify  # noqa: F401
from ..utils.registry import (deserialize_layer, register_builtin, register_class,  # noqa: F401
                              serialize_layer)
from ..utils.memory import check_memory
from ..utils.tree import flatten, map_structure, pack_as  # noqa: F401

__all__ = ["Layer", "KerasTensor", "Node", "KerasHistory", "clear_session", "auto_name",
           "to_snake_case", "flatten", "map_structure", "pack_as", "floatx", "make_rng"]


# --------------------------------------------------------- symbolic tensors

KerasHistory = collections.namedtuple("KerasHistory",
                                      ["operation", "node_index", "tensor_index"])


def _no_ops(op):
    def fail(self, *args, **kwargs):
        raise TypeError(
            f"rnnkern's symbolic tensors support no operations ({op} on {self!r}); "
            "build functional models from layers only (Reshape, Rescaling, Concatenate, "
            "Add, Lambda, ...), then call the model on NumPy arrays")
    return fail


class KerasTensor:
    """A symbolic tensor of a functional model: a shape (None where unknown),
    a dtype, and the node that produces it (``_keras_history``)."""

    def __init__(self, shape, dtype="float32", name=None):
        self.shape = tuple(None if d is None else int(d) for d in shape)
        self.dtype = str(np.dtype(dtype))
        self.name = name if name is not None else uniquify("keras_tensor")
        self._keras_history = None

    @property
    def ndim(self):
        return len(self.shape)

    def __repr__(self):
        return (f"<KerasTensor shape={self.shape}, dtype={self.dtype}, sparse=False, "
                f"ragged=False, name={self.name}>")

    def __array__(self, *args, **kwargs):
        raise TypeError(f"{self!r} is symbolic and has no value: build a "
                        "rnnkern.models.Model(inputs, outputs) and call it on arrays")

    __add__ = __radd__ = _no_ops("+")
    __sub__ = __rsub__ = _no_ops("-")
    __mul__ = __rmul__ = _no_ops("*")
    __truediv__ = __rtruediv__ = _no_ops("/")
    __matmul__ = __rmatmul__ = _no_ops("@")
    __neg__ = _no_ops("unary -")
    __getitem__ = _no_ops("indexing")


def _is_symbolic(s):
    return any(isinstance(x, KerasTensor) for x in flatten(s))


class Node:
    """One call of a layer on symbolic tensors."""

    def __init__(self, operation, call_args, call_kwargs, outputs):
        self.operation = operation
        self.call_args = tuple(call_args)
        self.call_kwargs = dict(call_kwargs)
        self.outputs = outputs
        # differentiable inputs: the positional inputs, then the tensor kwargs
        self.input_tensors = [t for t in flatten(list(self.call_args))
                              if isinstance(t, KerasTensor)]
        for k in operation._tensor_kwargs:
            if k in self.call_kwargs:
                self.input_tensors += [t for t in flatten(self.call_kwargs[k])
                                       if isinstance(t, KerasTensor)]
        # an explicit symbolic mask: an input too, but not a differentiable one
        self.mask_tensors = [t for t in flatten(self.call_kwargs.get("mask"))
                             if isinstance(t, KerasTensor)]
        self.output_tensors = flatten(outputs)
        self.is_input = False
        index = len(operation._inbound_nodes)
        operation._inbound_nodes.append(self)
        for i, t in enumerate(self.output_tensors):
            t._keras_history = KerasHistory(operation, index, i)

    @property
    def parent_nodes(self):
        # explicit mask tensors too: an Input used only as a mask comes before its user
        return [t._keras_history.operation._inbound_nodes[t._keras_history.node_index]
                for t in self.input_tensors + self.mask_tensors
                if t._keras_history is not None]

    def __repr__(self):
        return f"<Node of {self.operation.name!r}>"


def format_shape(shape):
    return "(" + ", ".join("None" if d is None else str(d) for d in shape) + ")"


# ---------------------------------------------------------------- helpers

def float_array(v, name, expected):
    """``v`` as a C-contiguous array of the computed dtype; TypeError naming
    ``name`` for integer, bool, complex or non-numeric data."""
    a = np.asarray(v)
    if a.dtype.kind != "f":
        raise TypeError(f"{name} must be a real floating-point array ({expected}; float64 "
                        f"and other real floats are converted to float32), got dtype {a.dtype}")
    return np.ascontiguousarray(a, dtype=floatx())


def real_array(name, value, context=""):
    """``value`` as an array of real numbers; TypeError naming ``name`` otherwise."""
    a = np.asarray(value)
    if a.dtype.kind not in "fiu":
        raise TypeError(f"{context}{name} must be a real array, got dtype {a.dtype}")
    return a


def frozen_copy(a):
    """A read-only C-contiguous copy in the computed dtype (the caller's array
    stays theirs)."""
    a = np.array(a, dtype=floatx(), order="C")
    a.flags.writeable = False
    return a


def check_bool(name, v):
    if not isinstance(v, (bool, np.bool_)):
        raise TypeError(f"{name} must be a bool, got {v!r}")
    return bool(v)


def check_positive_int(name, v):
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)):
        raise TypeError(f"{name} must be a positive int, got {v!r}")
    if v <= 0:
        raise ValueError(f"{name} must be a positive int, got {v!r}")
    return int(v)


def grad_or_zeros(d, shape, name="d_output"):
    """A gradient of ``shape`` (zeros for None), checked and converted."""
    if d is None:
        return np.zeros(shape, floatx())
    a = float_array(d, name, f"float32 of shape {tuple(shape)}")
    if a.shape != tuple(shape):
        raise ValueError(f"{name} has shape {a.shape}, expected {tuple(shape)} "
                         "(the output's shape)")
    return a


def check_training(training):
    if training is not None and not isinstance(training, (bool, np.bool_)):
        raise TypeError(f"training must be None, True or False, got {training!r}")
    return None if training is None else bool(training)


def _dtype_config():
    return {"module": "keras", "class_name": "DTypePolicy", "config": {"name": "float32"},
            "registered_name": None}


def _check_dtype(dtype):
    """Layers compute in float32: accept None, "float32" or Keras' policy dict."""
    name = dtype
    if isinstance(dtype, dict):
        name = (dtype.get("config") or {}).get("name")
    if name is None or str(name) == "float32":
        return
    raise ValueError(f"rnnkern layers compute in float32; dtype={dtype!r} is not supported")


class _Inference:
    """Marker of a last call made with training=False (nothing kept)."""


_INFERENCE = _Inference()


def weight_property(name, doc=None):
    """``layer.<name>``: the read-only weight array; assigning stores a copy."""
    def get(self):
        return self._params.get(name)

    def set(self, value):
        self._assign_weight(name, value)

    return property(get, set, doc=doc or f"The {name} weight (read-only; assign to change).")


class WeightDict(dict):
    """A layer's weights, name -> read-only array, where a value may be pending on
    a GPU backend's device: ``fit`` updated it there (a recurrent layer on
    ``cuda``: its weights, gradients and the optimizer's slots stay on the
    device between steps). Reading a pending weight downloads it once and keeps
    the host copy; assigning one drops what was pending. While something is
    pending the dict is a ``_PendingWeights``, whose every read path (``[]``,
    ``get``, ``values``, ``items``, iteration, copies and pickling) downloads, so
    nobody sees a stale host array; otherwise a plain dict's methods, at a plain
    dict's speed. ``raw`` is the stored array without a download, for its shape,
    or for a call that takes the device copy."""

    __slots__ = ("_pending",)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._pending = {}

    def __reduce__(self):
        return (WeightDict, (dict(self.items()),))

    def raw(self, name):
        """The stored array without a download (stale while pending: right shape)."""
        return dict.__getitem__(self, name)

    def set_pending(self, name, value):
        """``value`` (a device array of the stored one's shape) is the weight now."""
        if not dict.__contains__(self, name):
            raise KeyError(name)
        self._pending[name] = value
        self.__class__ = _PendingWeights

    @property
    def pending(self):
        return bool(self._pending)

    def fetch_all(self):
        """Download every pending weight (before the device copies are dropped)."""
        for n in list(self._pending):
            self._fetch(n)

    def _fetch(self, name):
        a = np.asarray(self._pending.pop(name))
        a = np.ascontiguousarray(a, dtype=dict.__getitem__(self, name).dtype)
        a.flags.writeable = False
        dict.__setitem__(self, name, a)
        if not self._pending:
            self.__class__ = WeightDict
        return a


class _PendingWeights(WeightDict):
    """A WeightDict with weights pending on a device: every read downloads them."""

    __slots__ = ()

    def __getitem__(self, name):
        if name in self._pending:
            return self._fetch(name)
        return dict.__getitem__(self, name)

    def get(self, name, default=None):
        return self[name] if dict.__contains__(self, name) else default

    def __iter__(self):
        # not dict's iterator: dict(d), {**d} and update(d) then go through
        # keys() and [] (CPython's fast copy reads the storage directly)
        return iter(list(dict.keys(self)))

    def values(self):
        return [self[n] for n in dict.keys(self)]

    def items(self):
        return [(n, self[n]) for n in dict.keys(self)]

    def copy(self):
        return dict(self.items())

    def __setitem__(self, name, value):
        self._pending.pop(name, None)
        dict.__setitem__(self, name, value)
        if not self._pending:
            self.__class__ = WeightDict

    def __delitem__(self, name):
        self._pending.pop(name, None)
        dict.__delitem__(self, name)
        if not self._pending:
            self.__class__ = WeightDict

    def pop(self, name, *default):
        if name in self._pending:
            self._fetch(name)
        return dict.pop(self, name, *default)

    def clear(self):
        self._pending.clear()
        dict.clear(self)
        self.__class__ = WeightDict

    def update(self, *args, **kwargs):
        for n, v in dict(*args, **kwargs).items():
            self[n] = v

    def setdefault(self, name, default=None):
        if not dict.__contains__(self, name):
            self[name] = default
        return self[name]

    def popitem(self):
        raise TypeError("WeightDict.popitem: pop a weight by name")


# ---------------------------------------------------------------- the Layer

class Layer:
    """Base class of every rnnkern layer and model (see the module docstring).

    Keyword arguments of every layer, as Keras 3: ``name``, ``trainable``,
    ``dtype`` (float32 only), and the Keras 2 habit ``input_shape=`` /
    ``input_dim=`` (``batch_input_shape=`` too) on the first layer of a
    Sequential model.
    """

    #: names bound to positional call arguments after the inputs (Keras' order)
    _call_args = ("training",)
    #: call keyword arguments that carry differentiable input tensors
    _tensor_kwargs = ()
    #: whether forward takes the mask of its input (Keras: "mask" in call())
    _call_has_mask_arg = False
    _supports_masking = False

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        register_builtin(cls)  # configs name the public classes (utils/registry.py)

    def __init__(self, *, name=None, trainable=True, dtype=None, input_shape=None,
                 input_dim=None, batch_input_shape=None, batch_size=None, autocast=True,
                 activity_regularizer=None, **kwargs):
        if kwargs:
            raise ValueError(f"Unrecognized keyword arguments passed to "
                             f"{type(self).__name__}: {kwargs}")
        if name is not None and not isinstance(name, str):
            raise TypeError(f"name must be a str, got {name!r}")
        if not isinstance(trainable, (bool, np.bool_)):
            raise ValueError(f"Expected `trainable` to be a boolean. Received: "
                             f"trainable={trainable!r} (of type {type(trainable)})")
        if activity_regularizer is not None:
            raise NotImplementedError("activity_regularizer is not supported by rnnkern")
        _check_dtype(dtype)
        self.name = name if name is not None else auto_name(type(self).__name__)
        self._trainable = bool(trainable)
        self.built = False
        self._params = {}                  # own weights, name -> read-only array
        self._inbound_nodes = []
        self._build_shapes = None
        self._tls = threading.local()
        # Keras 2 habit: the input shape on the first layer of a Sequential
        self._batch_input_shape = None
        if input_dim is not None:
            input_shape = (input_dim,)
        if input_shape is not None:
            self._batch_input_shape = (batch_size,) + _shape_tuple(input_shape, "input_shape")
        elif batch_input_shape is not None:
            self._batch_input_shape = _shape_tuple(batch_input_shape, "batch_input_shape")

    # --------------------------------------------------------- pickling
    def __getstate__(self):
        state = dict(self.__dict__)
        state.pop("_tls", None)  # per-thread call state is not pickled
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._tls = threading.local()
        for w in self._params.values():
            if w is not None:  # unpickled arrays come back writeable
                w.flags.writeable = False

    def __repr__(self):
        return f"<{type(self).__name__} name={self.name}, built={self.built}>"

    # ------------------------------------------------------- properties
    @property
    def trainable(self):
        return self._trainable

    @trainable.setter
    def trainable(self, value):
        self._trainable = check_bool("trainable", value)
        for sub in self._sublayers():
            sub.trainable = value

    @property
    def supports_masking(self):
        """Whether ``compute_mask`` passes a mask on (Keras' attribute)."""
        return self._supports_masking

    @supports_masking.setter
    def supports_masking(self, value):
        self._supports_masking = bool(value)

    @property
    def dtype(self):
        return "float32"

    @property
    def grads(self):
        """Gradients of the last ``backward()`` of this thread, aligned with
        ``weights`` (None before any). Host arrays: a fit step's gradients that
        stayed on a GPU backend's device download here, once."""
        g = getattr(self._tls, "grads", None)
        if g is not None and any(is_device_vec(a) for a in g):
            g = [a.numpy() if is_device_vec(a) else a for a in g]
            self._tls.grads = g
        return g

    @property
    def input(self):
        """The symbolic input of this layer's only graph node."""
        node = self._single_node("input")
        ins = node.call_args[0]
        return ins

    @property
    def output(self):
        """The symbolic output of this layer's only graph node."""
        return self._single_node("output").outputs

    def _single_node(self, what):
        if not self._inbound_nodes:
            raise AttributeError(f"Layer {self.name!r} has never been called on symbolic "
                                 f"tensors and thus has no defined {what}.")
        if len(self._inbound_nodes) > 1:
            raise AttributeError(f"Layer {self.name!r} has multiple inbound nodes; its "
                                 f"{what} is ambiguous.")
        return self._inbound_nodes[0]

    # ---------------------------------------------------------- weights
    def _sublayers(self):
        """Layers whose weights are part of this one's (wrappers, models)."""
        return []

    def _weight_names(self):
        """Names of the own weights, in Keras' order."""
        return list(self._params)

    def _own(self):
        """The own weights that exist (none before build), in Keras' order."""
        return [(n, self._params[n]) for n in self._weight_names() if n in self._params]

    def _non_trainable_names(self):
        """Own weights that are never trained, whatever ``trainable`` says
        (BatchNormalization's moving statistics): they are in ``weights`` and
        ``non_trainable_weights``, never in ``trainable_weights``, and the
        layer's backward gives them no gradient (None)."""
        return ()

    def _own_trainable(self):
        fixed = self._non_trainable_names()
        return [(n, w) for n, w in self._own() if n not in fixed]

    @property
    def weights(self):
        """The weight arrays themselves (read-only), own first, then the
        sublayers' (Keras' order)."""
        ws = [w for _, w in self._own()]
        for sub in self._sublayers():
            ws += sub.weights
        return ws

    def _slots(self, trainable_only=False):
        """(layer, weight name) of every weight (or every trainable one), in
        ``weights`` (``trainable_weights``) order."""
        if trainable_only and not self.trainable:
            return []
        out = [(self, n) for n, _ in (self._own_trainable() if trainable_only else self._own())]
        for sub in self._sublayers():
            out += sub._slots(trainable_only)
        return out

    def weight_paths(self):
        """``layer_name/weight_name`` of every weight, aligned with ``weights``."""
        paths = [f"{self.name}/{n}" for n, _ in self._own()]
        for sub in self._sublayers():
            paths += sub.weight_paths()
        return paths

    @property
    def trainable_weights(self):
        if not self.trainable:
            return []
        ws = [w for _, w in self._own_trainable()]
        for sub in self._sublayers():
            ws += sub.trainable_weights
        return ws

    @property
    def non_trainable_weights(self):
        if not self.trainable:
            return self.weights
        fixed = self._non_trainable_names()
        ws = [w for n, w in self._own() if n in fixed]
        for sub in self._sublayers():
            ws += sub.non_trainable_weights
        return ws

    trainable_variables = trainable_weights
    non_trainable_variables = non_trainable_weights

    @property
    def variables(self):
        return self.weights

    def get_weights(self):
        """Copies of ``weights``."""
        return [w.copy() for w in self.weights]

    def set_weights(self, weights):
        """Set every weight (Keras' order and shapes; copies are stored). An
        unbuilt layer is built from the given shapes where it can be."""
        if isinstance(weights, np.ndarray) or not isinstance(weights, (list, tuple)):
            raise TypeError(f"set_weights expects a list of arrays (layer {self.name!r}), "
                            f"got {type(weights).__name__}")
        weights = list(weights)
        if not self.built:
            self._build_from_weights(weights)
        paths = self.weight_paths()
        if len(weights) != len(paths):
            raise ValueError(f"set_weights: layer {self.name!r} has {len(paths)} weights "
                             f"{paths}, got a list of {len(weights)}")
        arrays = [real_array(p, w, "set_weights: ") for p, w in zip(paths, weights)]
        for p, a, w in zip(paths, arrays, self.weights):
            if a.shape != w.shape:
                raise ValueError(f"set_weights: {p} has shape {a.shape}, expected {w.shape}")
        self._set_weights_checked(arrays)

    def _set_weights_checked(self, arrays):
        names = [n for n, _ in self._own()]
        k = len(names)
        self._store_weights(dict(zip(names, arrays[:k])))
        i = k
        for sub in self._sublayers():
            n = len(sub.weights)
            sub._set_weights_checked(arrays[i:i + n])
            i += n

    def _build_from_weights(self, weights):
        """Build an unbuilt layer from the shapes of ``set_weights``' arrays."""
        raise ValueError(f"layer {self.name!r} is not built yet: call it on an input or "
                         "build(input_shape) before set_weights()")

    def add_weight(self, name, shape, initializer, rng=None):
        """Create (or replace) an own weight from an initializer; a weight larger than
        this machine's memory (a config asking for units=10**12, say) is a
        MemoryError naming the layer and the weight, before anything is allocated."""
        n = 1.0
        for d in shape:
            n *= float(d)
        check_memory(n * np.dtype(floatx()).itemsize,
                     f"weight {name!r} of shape {tuple(shape)} of {type(self).__name__} "
                     f"{self.name!r}")
        value = initializers.call(initializers.get(initializer), shape, rng)
        self._store_weights({name: value})
        return self._params[name]

    def _store_weights(self, named):
        """Fresh read-only copies of the given weights (name -> array)."""
        for n, a in named.items():
            self._params[n] = frozen_copy(a)
        self._weights_changed()

    def _adopt_weights(self, named):
        """Take the given arrays (name -> array of an existing weight) as the
        weights themselves, without a copy: the trainer hands over the
        optimizer's fresh results, which nobody else holds. They are made
        read-only; arrays that already are the weight are skipped."""
        changed = False
        for n, a in named.items():
            if a is self._params[n]:
                continue
            a.flags.writeable = False
            self._params[n] = a
            changed = True
        if changed:
            self._weights_changed()

    def _weights_changed(self):
        """Hook: a weight was replaced (layers that cache derived data drop it)."""

    def _assign_weight(self, name, value):
        if not self.built:
            raise ValueError(f"layer {self.name!r} is not built yet: call it on an input, "
                             "build(input_shape) or set_weights() first")
        a = real_array(name, value)
        want = self._params[name].shape
        if a.shape != want:
            raise ValueError(f"{name} must have shape {want}, got {a.shape}")
        self._store_weights({name: a})

    def count_params(self):
        if not self.built:
            raise ValueError(f"You tried to call `count_params` on layer {self.name!r}, but "
                             "the layer isn't built. You can build it manually via: "
                             "`layer.build(input_shape)`.")
        return int(sum(w.size for w in self.weights))

    # ------------------------------------------------------------ build
    def build(self, input_shape):
        """Create the weights for inputs of ``input_shape`` (batch included,
        None where unknown). Layers without weights only check the shape."""
        self._check_input_shape(input_shape)
        self._build_shapes = input_shape
        self.built = True

    def _check_input_shape(self, input_shape):
        """Raise ValueError when inputs of this shape cannot be taken."""

    def compute_output_shape(self, input_shape):
        return input_shape

    def compute_mask(self, inputs, mask=None):
        """The mask of the outputs (Keras': the input mask, for layers that
        support masking; None otherwise)."""
        return mask if self.supports_masking else None

    def _output_dtype(self, input_dtypes):
        return "float32"

    # ------------------------------------------------------------- call
    def _standardize(self, inputs):
        """Inputs of a call as ``forward`` takes them (checked and converted):
        by default, real floating arrays converted to float32."""
        return map_structure(
            lambda x: float_array(x, "inputs", "a float32 array"), inputs)

    def _bind(self, args, kwargs):
        names = self._call_args
        if len(args) > len(names):
            raise TypeError(f"{type(self).__name__} is called with the inputs and at most "
                            f"{len(names)} more positional arguments {list(names)}, got "
                            f"{len(args)}")
        bound = dict(zip(names, args))
        for k, v in kwargs.items():
            if k not in names and k != "training":
                raise TypeError(f"{type(self).__name__}() call got an unexpected keyword "
                                f"argument {k!r}; it takes {list(names)}")
            if k in bound:
                raise TypeError(f"{type(self).__name__}() call got multiple values for "
                                f"argument {k!r}")
            bound[k] = v
        return bound

    def __call__(self, inputs, *args, **kwargs):
        kw = self._bind(args, kwargs)
        if _is_symbolic(inputs) or _is_symbolic(list(kw.values())):
            return self._symbolic_call(inputs, kw)
        self._tls.last = None  # a failed call leaves nothing to differentiate
        training = check_training(kw.pop("training", None))
        outputs, ctx = self._run(inputs, training, kw)
        self._tls.last = _INFERENCE if training is False else ctx
        return outputs

    def _run(self, inputs, training, kw):
        """Standardize, build if needed and run ``forward`` (the shell and the
        models call this)."""
        inputs = self._standardize(inputs)
        if not self.built:
            self.build(map_structure(np.shape, inputs))
            self.built = True
        return self.forward(inputs, training=training, **kw)

    def forward(self, inputs, training=None, mask=None):
        raise NotImplementedError(f"{type(self).__name__} implements no forward")

    def backward_from(self, ctx, d_outputs):
        raise NotImplementedError(f"{type(self).__name__} implements no backward")

    def _last_ctx(self):
        last = getattr(self._tls, "last", None)
        if last is None:
            raise RuntimeError(f"backward() of layer {self.name!r} needs a preceding call "
                               "(layer(x) with training=None or True)")
        if last is _INFERENCE:
            raise RuntimeError(f"backward() of layer {self.name!r}: the last call used "
                               "training=False (pure inference), which keeps nothing for "
                               "backpropagation; call the layer with training=None or True "
                               "first")
        return last

    def backward(self, d_output):
        """Backpropagate ``d_output`` (the gradient of the output of this
        thread's last call). Returns the gradient of the inputs and REPLACES
        ``grads`` (aligned with ``weights``)."""
        d_inputs, grads = self.backward_from(self._last_ctx(), d_output)
        self._tls.grads = grads
        return d_inputs

    # ---------------------------------------------------------- symbolic
    def _symbolic_call(self, inputs, kw):
        shapes = map_structure(_symbolic_shape, inputs)
        dtypes = map_structure(lambda t: getattr(t, "dtype", "float32"), inputs)
        try:
            first = shapes if _is_shape(shapes) else None
            if getattr(self, "stateful", False) and first and first[0] is None:
                # Keras: a stateful layer keeps its states for a fixed batch size
                raise ValueError(
                    "When using `stateful=True` in a RNN, the batch size must be static. "
                    f"Found dynamic batch size: sequence.shape={format_shape(first)}; give "
                    "the model's Input a batch_shape, e.g. Input(batch_shape=(32, None, "
                    "features))")
            if not self.built:
                self.build(shapes)
                self.built = True
            else:
                self._check_input_shape(shapes)
            out_shapes = self.compute_output_shape(shapes)
        except ValueError as e:
            raise ValueError(f"{_describe_producers(inputs)} cannot be fed to layer "
                             f"{self.name!r} ({type(self).__name__}): {e}") from None
        dtype = self._output_dtype(dtypes)
        outputs = _make_symbolic(out_shapes, dtype)
        Node(self, (inputs,), kw, outputs)
        return outputs

    # ------------------------------------------------------------- files
    # The one deliberate upward tie of the Layer contract: rnnkern.saving knows
    # the layer classes (Keras' .weights.h5 layout follows the wrappers and the
    # recurrent cells), so it imports this module and is imported here only
    # when a file is written or read. tests/test_imports.py allows exactly this.
    def save_weights(self, filepath, overwrite=True):
        """Write the weights to ``filepath``: rnnkern's .npz, or Keras'
        .weights.h5 for a name ending in .h5 (atomically; see rnnkern.saving)."""
        from .. import saving
        saving.save_weights(self, filepath, overwrite=overwrite)

    def load_weights(self, filepath, skip_mismatch=False):
        """Load weights saved by ``save_weights`` or by Keras (.weights.h5)."""
        from .. import saving
        saving.load_weights(self, filepath, skip_mismatch=skip_mismatch)

    # ------------------------------------------------------------ config
    def get_config(self):
        return {"name": self.name, "trainable": self.trainable, "dtype": _dtype_config()}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


register_class(Layer)  # a config may name the base class itself, as before


def _shape_tuple(shape, what):
    try:
        return tuple(None if d is None else int(d) for d in shape)
    except TypeError:
        raise TypeError(f"{what} must be a tuple of ints (None where unknown), "
                        f"got {shape!r}") from None


def _symbolic_shape(t):
    if isinstance(t, KerasTensor):
        return t.shape
    return np.shape(t)


def _is_shape(s):
    return isinstance(s, tuple) and all(d is None or isinstance(d, (int, np.integer)) for d in s)


def _make_symbolic(shapes, dtype):
    """KerasTensors for a shape, or a list/tuple of shapes."""
    if _is_shape(shapes):
        return KerasTensor(shapes, dtype)
    return [_make_symbolic(s, dtype) for s in shapes]


def _describe_producers(inputs):
    """'the output of layer 'dense' (Dense) of shape (None, 2)', for errors."""
    parts = []
    for t in flatten(inputs):
        if not isinstance(t, KerasTensor):
            continue
        h = t._keras_history
        what = "a symbolic tensor"
        if h is not None:
            op = h.operation
            if getattr(op, "_is_input_layer", False):
                what = f"input {op.name!r}"
            else:
                what = f"the output of layer {op.name!r} ({type(op).__name__})"
        parts.append(f"{what} of shape {format_shape(t.shape)}")
    return "; ".join(parts) or "the inputs"


def warn_mask_dropped(layer):
    warnings.warn(
        f"Layer '{layer.name}' (of type {type(layer).__name__}) was passed an input with a "
        "mask attached to it. However, this layer does not support masking and will "
        "therefore destroy the mask information. Downstream layers will not see the mask.",
        stacklevel=3)
