"""Keras' ``RNN`` layer with cell classes (keras/src/layers/rnn/{rnn,
stacked_rnn_cells,simple_rnn,lstm,gru}.py): the "ease of customization" half of
Keras' recurrent API, on NumPy arrays.

Shape legend (as everywhere in rnnkern):

    N  batch          T  timesteps        C  input features
    H  units          G  gates: SimpleRNN 1, LSTM 4 (i, f, c, o), GRU 3 (z, r, h)

Cells
-----
``SimpleRNNCell``, ``LSTMCell`` and ``GRUCell`` take Keras 3's arguments and hold
Keras' weights (``kernel`` [C, G*H], ``recurrent_kernel`` [H, G*H], ``bias``: the
layout, shapes and order of the SimpleRNN / LSTM / GRU layers). Each has
``state_size`` (LSTM ``[H, H]``, the others ``H``), ``output_size`` (H),
``get_initial_state(batch_size)`` (a list of zeros) and is called on one step:
``cell(x [N, C], states) -> (output [N, H], new_states)`` (``new_states`` a list,
or one array where ``states`` was one array, as Keras). A single step runs the
compiled kernels on a sequence of one step. Dropout (``training=True``) follows
Keras' cells: the masks are drawn once and reused by every later call until
``reset_dropout_mask()`` / ``reset_recurrent_dropout_mask()`` (``RNN`` resets them
after each call).

``StackedRNNCells(cells)`` makes a stack behave as one cell: ``state_size`` is the
list of the cells' ``state_size``; its states are a list with one entry per cell
(that cell's list of states, or one array), in the cells' order.

RNN
---
``RNN(cell, return_sequences=False, return_state=False, go_backwards=False,
stateful=False, unroll=False, zero_output_for_mask=False)``: ``cell`` is a cell, a
list of cells (made a ``StackedRNNCells``, as Keras), or a cell of your own.
Called as the recurrent layers: ``layer(x, initial_state=None, mask=None,
training=None)``; with ``return_state`` it returns ``[y, *states]`` where
``states`` has the structure of ``get_initial_state`` (Keras: ``[y, h, c]`` for
an LSTMCell; ``[y, [h0, c0], [h1]]`` for a stack of an LSTMCell and a GRUCell).
``initial_state`` may be given in that structure or flattened. The weights are
the cell's (``layer.weights`` are ``layer.cell.weights``; Keras' .weights.h5 path
``layers/rnn/cell/vars/i``, ``layers/rnn/cell/cells/<cell>/vars/i`` for a stack).

How it runs:

- built-in cells (one, or a ``StackedRNNCells`` of them): on the fused kernels.
  The layer holds, per cell, the matching SimpleRNN / LSTM / GRU layer configured
  from the cell's arguments and sharing the cell's weight arrays, so
  ``RNN(LSTMCell(u, ...))`` computes exactly what ``LSTM(u, ...)`` computes (the
  same code: bitwise the same outputs, states and gradients, masks, initial
  states, go_backwards, stateful and seeded dropout included). A stack runs as
  those layers one after the other, each returning its sequence to the next.
- any other cell: a loop over the steps calling the cell, with Keras'
  semantics for masks (a masked step keeps the previous states and outputs the
  previous output, zeros before the first step or with ``zero_output_for_mask``)
  and ``go_backwards`` (outputs in processing order).

Writing a cell of your own
--------------------------
As Keras documents it: an ``rnnkern.layers.Layer`` subclass with ``state_size``
(an int or a list of ints), optionally ``output_size`` and
``get_initial_state(batch_size)``, a ``build(input_shape)`` that creates its
weights with ``self.kernel = self.add_weight(shape=..., initializer=...,
name="kernel")`` (``input_shape`` is (N, C)), and a step on NumPy arrays. rnnkern
has no autodiff, so the step comes in one of two forms:

1. inference only: ``call(inputs, states[, training])`` returning ``(output,
   new_states)``, Keras' form. The RNN runs it forward; training it (``backward``,
   ``fit``) raises an error saying what to add.
2. differentiable: the Layer contract (``rnnkern.layers.base``) on one step,

   ``forward(inputs, training=None, states=None) -> ((output, new_states), ctx)``
   ``backward_from(ctx, (d_output, d_new_states)) -> ((d_inputs, d_states), grads)``

   ``states`` / ``new_states`` are lists of [N, S] arrays; ``ctx`` is whatever the
   backward of that step needs; ``d_new_states`` is aligned with ``new_states``
   and ``d_states`` with ``states``; ``grads`` is aligned with ``cell.weights``
   (None for a weight without gradient). The RNN runs backpropagation through
   time: it calls ``backward_from`` once per step, last step first, and sums the
   weight gradients. Set ``_call_args = ("states", "training")`` and
   ``_tensor_kwargs = ("states",)`` on the class to call the cell directly
   (``cell(x, states)``), as the built-in cells are.

A cell reads its weights through the attributes ``build`` bound (``self.kernel``):
the RNN rebinds them to the current arrays before every call, so they follow
``fit``, ``set_weights`` and ``load_weights``. To save and load a model holding
your cell, give it a ``get_config`` and register it:
``@rnnkern.utils.registry.register_keras_serializable(package="Custom")`` (or pass
``custom_objects``).
"""
from __future__ import annotations

import collections
import inspect

import numpy as np

from .. import initializers as _inits
from ..config import floatx
from ..utils.registry import deserialize_layer, serialize_layer
from ..utils.tree import flatten, map_structure, pack_as
from .base import (Layer, check_bool, check_training, float_array, grad_or_zeros,
                   weight_property)
from .recurrent import (GRU, LSTM, SimpleRNN, _RNN, checked_input_shape, output_mask,
                        standardized_sequence)

__all__ = ["RNN", "StackedRNNCells", "SimpleRNNCell", "LSTMCell", "GRUCell"]

# the flags of a recurrent layer that belong to the RNN, not to its cell
_LAYER_FLAGS = ("return_sequences", "return_state", "go_backwards", "stateful", "unroll",
                "zero_output_for_mask")
_NOT_SUPPORTED = ("kernel_regularizer", "recurrent_regularizer", "bias_regularizer",
                  "kernel_constraint", "recurrent_constraint", "bias_constraint")


# ------------------------------------------------------------- built-in cells

class _FusedCell(Layer):
    """Common machinery of the built-in cells (not public): the cell keeps a
    recurrent layer of its kind (``_layer``, configured from the cell's
    arguments) whose weight dict IS the cell's, builds its weights through it
    (the same initialisation as the layer with the same seed) and runs a single
    step on it; ``_make_engine`` gives the RNN more such layers sharing the
    weights."""

    _layer_class = None
    _call_args = ("states", "training")
    _tensor_kwargs = ("states",)
    # the cell's own arguments, beyond units (Keras' config order)
    _keys = ()

    kernel = weight_property("kernel", "[C, G*H], read-only (assign to change).")
    recurrent_kernel = weight_property("recurrent_kernel",
                                       "[H, G*H], read-only (assign to change).")
    bias = weight_property("bias", "The bias (None with use_bias=False), read-only.")

    def __init__(self, layer_args, backend="auto", precision="fp32", implementation=2,
                 **kwargs):
        super().__init__(**kwargs)
        if implementation not in (1, 2):   # Keras' argument; the kernels decide here
            raise ValueError(f"implementation must be 1 or 2, got {implementation!r}")
        # every argument is checked by the layer, with the layer's messages
        self._layer = self._layer_class(**layer_args, return_state=True, backend=backend,
                                        precision=precision, name=self.name)
        self._params = self._layer._params            # one dict: the same arrays
        self._engines = [self._layer]                 # layers sharing the weights
        self._cached_masks = None                     # Keras' cached dropout masks
        for k in ("units", "use_bias", "kernel_initializer", "recurrent_initializer",
                  "bias_initializer", "dropout", "recurrent_dropout", "seed",
                  "precision") + self._keys:
            setattr(self, k, getattr(self._layer, k))

    # ------------------------------------------------------------ structure
    @property
    def state_size(self):
        return self.units

    @property
    def output_size(self):
        return self.units

    @property
    def _n_states(self):
        return self._layer._n_states

    @property
    def backend(self):
        """The backend the cell's steps (and its RNN) run on (settable)."""
        return self._layer.backend

    @backend.setter
    def backend(self, name):
        for e in self._engines:
            e.backend = name

    def get_initial_state(self, batch_size=None):
        """Zeros for every state (a list, as Keras' cells return)."""
        if isinstance(batch_size, (bool, np.bool_)) or not isinstance(
                batch_size, (int, np.integer)) or batch_size < 0:
            raise ValueError(f"get_initial_state needs batch_size, a non-negative int, "
                             f"got {batch_size!r}")
        return [np.zeros((int(batch_size), self.units), floatx())
                for _ in range(self._n_states)]

    def _make_engine(self):
        """A recurrent layer of this cell's kind and arguments that shares its
        weights (the RNN sets its flags before each call)."""
        cls = self._layer_class
        args = {k: getattr(self, k) for k in ("units", "use_bias", "dropout",
                                              "recurrent_dropout", "seed") + self._keys}
        engine = cls(**args, backend=self.backend, precision=self.precision, name=self.name)
        engine._params = self._params
        engine._build_shapes = self._layer._build_shapes
        engine.built = True
        self._engines.append(engine)
        return engine

    def _weights_changed(self):
        for e in self._engines:     # their packed kernels came from the old weights
            e._weights_changed()

    def _weight_names(self):
        return self._layer._weight_names()

    # ---------------------------------------------------------------- build
    def _check_input_shape(self, input_shape):
        return checked_input_shape(input_shape, self.kernel.shape[0] if self.built else None,
                                   self.name, "(batch, features)")

    def build(self, input_shape):
        """Create the weights for step inputs of shape (N?, C)."""
        shape = self._check_input_shape(input_shape)
        if self.built:
            return
        self._layer.build((None, None, int(shape[-1])))
        self._build_shapes = shape
        self.built = True

    def _build_from_weights(self, weights):
        self._layer._build_from_weights(weights)   # checks; a fresh dict
        self._params = self._layer._params
        for e in self._engines:
            e._params = self._params
        self._build_shapes = (None, self.kernel.shape[0])
        self.built = True

    def compute_output_shape(self, input_shape, states_shape=None):
        n = tuple(input_shape)[0]
        return (n, self.units), [(n, self.units)] * self._n_states

    # ----------------------------------------------------------------- call
    def _standardize(self, x):
        x = float_array(x, "inputs", "float32 of shape (batch, features)")
        if x.ndim != 2:
            raise ValueError(f"the inputs of cell {self.name!r} must be 2-D (batch, "
                             f"features), got shape {x.shape}")
        if self.built and x.shape[1] != self.kernel.shape[0]:
            raise ValueError(f"inputs have {x.shape[1]} features but cell {self.name!r} was "
                             f"built for {self.kernel.shape[0]}")
        return x

    def _check_states(self, states, n):
        """(list of [N, H] arrays, whether one array was given)."""
        k = self._n_states
        if states is None:
            raise TypeError(f"cell {self.name!r} needs the states of the previous step: "
                            f"cell(inputs, states), states a list of {k} arrays of shape "
                            f"(N, units) = {(n, self.units)} (cell.get_initial_state(N))")
        bare = not isinstance(states, (list, tuple))
        flat = [states] if bare else list(states)
        if len(flat) != k:
            raise ValueError(f"states of cell {self.name!r} must be a list of {k} arrays of "
                             f"shape (N, units) = {(n, self.units)}, got {len(flat)}")
        out = []
        for i, s in enumerate(flat):
            a = float_array(s, f"states[{i}]", f"float32 of shape {(n, self.units)}")
            if a.shape != (n, self.units):
                raise ValueError(f"states[{i}] has shape {a.shape}, expected (N, units) = "
                                 f"{(n, self.units)}")
            out.append(a)
        return out, bare

    def _step_masks(self, training, n, c, dtype):
        """Keras' DropoutRNNCell: the masks are drawn on the first training call
        and reused until reset (None outside training)."""
        if training is not True:
            return None
        key = (n, c, np.dtype(dtype).str)
        if self._cached_masks is None or self._cached_masks[0] != key:
            self._cached_masks = (key, self._layer._draw_dropout(True, n, c, dtype))
        return self._cached_masks[1]

    def reset_dropout_mask(self):
        """Forget the cached dropout masks (Keras' DropoutRNNCell)."""
        self._cached_masks = None

    reset_recurrent_dropout_mask = reset_dropout_mask

    def forward(self, x, training=None, states=None):
        """One step: ((output [N, H], new_states), ctx)."""
        training = check_training(training)
        n, c = x.shape
        flat, bare = self._check_states(states, n)
        out, ctx = self._layer.forward(x[:, None, :], training=training, initial_state=flat,
                                       dropout_masks=self._step_masks(training, n, c, x.dtype))
        new = list(out[1:])
        return (out[0], new[0] if bare else new), (None if ctx is None else (ctx, bare))

    def backward_from(self, ctx, d_outputs):
        """((d_inputs [N, C], d_states), grads) of one step."""
        ectx, bare = ctx
        dy, ds = d_outputs
        k = self._n_states
        if ds is None:
            ds = [None] * k
        elif bare or not isinstance(ds, (list, tuple)):
            ds = [ds]
        d_in, grads = self._layer.backward_from(ectx, [dy] + list(ds))
        dx = d_in[0].reshape(d_in[0].shape[0], d_in[0].shape[2])
        d_states = list(d_in[1:])
        return (dx, d_states[0] if bare else d_states), grads

    def call(self, inputs, states, training=False):
        """Keras' ``cell.call``: one step, nothing kept for backpropagation
        (call the cell itself to keep it)."""
        return self._run(inputs, check_training(training), {"states": states})[0]

    # --------------------------------------------------------------- config
    def get_config(self):
        cfg = super().get_config()
        lc = self._layer.get_config()
        cfg["units"] = self.units
        for k in ("activation", "recurrent_activation", "use_bias", "unit_forget_bias"):
            if k in lc:
                cfg[k] = lc[k]
        for k in ("kernel_initializer", "recurrent_initializer", "bias_initializer"):
            cfg[k] = _inits.serialize(getattr(self, k))
        cfg.update({k: None for k in _NOT_SUPPORTED})
        cfg.update(dropout=self.dropout, recurrent_dropout=self.recurrent_dropout)
        if "reset_after" in lc:
            cfg["reset_after"] = lc["reset_after"]
        cfg["seed"] = self.seed
        if self.precision != "fp32":     # rnnkern's own argument: only where given
            cfg["precision"] = self.precision
        return cfg

    def __repr__(self):
        return (f"{type(self).__name__}(units={self.units}, name={self.name!r}, "
                f"built={self.built})")


def _arguments(names):
    """A cell constructor's own arguments (its ``locals()``), for its layer."""
    return {k: v for k, v in names.items() if k not in ("self", "kwargs", "__class__")}


class SimpleRNNCell(_FusedCell):
    """Cell class for SimpleRNN (Keras' SimpleRNNCell): one step of
    h_t = act(x_t W + b + h_{t-1} U).

    Arguments as Keras 3: units, activation="tanh", use_bias=True,
    kernel_initializer="glorot_uniform", recurrent_initializer="orthogonal",
    bias_initializer="zeros", dropout=0.0, recurrent_dropout=0.0, seed=None (the
    weight initialisation and the dropout masks), plus rnnkern's backend="auto"
    and precision="fp32". ``state_size`` = ``output_size`` = units.

    >>> cell = SimpleRNNCell(4)
    >>> y, [h] = cell(np.ones((2, 3), np.float32), cell.get_initial_state(2))
    """

    _layer_class = SimpleRNN
    _keys = ("activation",)

    def __init__(self, units, activation="tanh", use_bias=True,
                 kernel_initializer="glorot_uniform", recurrent_initializer="orthogonal",
                 bias_initializer="zeros", kernel_regularizer=None, recurrent_regularizer=None,
                 bias_regularizer=None, kernel_constraint=None, recurrent_constraint=None,
                 bias_constraint=None, dropout=0.0, recurrent_dropout=0.0, seed=None,
                 **kwargs):
        super().__init__(_arguments(locals()), **kwargs)


class LSTMCell(_FusedCell):
    """Cell class for the LSTM layer (Keras' LSTMCell), gates i, f, c, o.

    Arguments as Keras 3: units, activation="tanh", recurrent_activation=
    "sigmoid", use_bias=True, kernel_initializer="glorot_uniform",
    recurrent_initializer="orthogonal", bias_initializer="zeros",
    unit_forget_bias=True, dropout=0.0, recurrent_dropout=0.0 (with
    recurrent_dropout > 0 one mask per gate, Keras' implementation=1),
    seed=None, plus rnnkern's backend="auto" and precision="fp32".
    ``state_size`` = [units, units] (h, c); ``output_size`` = units.

    >>> layer = RNN(LSTMCell(64))        # computes what LSTM(64) computes
    """

    _layer_class = LSTM
    _keys = ("activation", "recurrent_activation", "unit_forget_bias")

    def __init__(self, units, activation="tanh", recurrent_activation="sigmoid",
                 use_bias=True, kernel_initializer="glorot_uniform",
                 recurrent_initializer="orthogonal", bias_initializer="zeros",
                 unit_forget_bias=True, kernel_regularizer=None, recurrent_regularizer=None,
                 bias_regularizer=None, kernel_constraint=None, recurrent_constraint=None,
                 bias_constraint=None, dropout=0.0, recurrent_dropout=0.0, seed=None,
                 **kwargs):
        super().__init__(_arguments(locals()), **kwargs)

    @property
    def state_size(self):
        return [self.units, self.units]


class GRUCell(_FusedCell):
    """Cell class for the GRU layer (Keras' GRUCell), gates z, r, h.

    Arguments as Keras 3: units, activation="tanh", recurrent_activation=
    "sigmoid", use_bias=True, kernel_initializer="glorot_uniform",
    recurrent_initializer="orthogonal", bias_initializer="zeros", dropout=0.0,
    recurrent_dropout=0.0, reset_after=True (bias [2, 3H]; [3H] when False),
    seed=None, plus rnnkern's backend="auto" and precision="fp32".
    ``state_size`` = ``output_size`` = units.
    """

    _layer_class = GRU
    _keys = ("activation", "recurrent_activation", "reset_after")

    def __init__(self, units, activation="tanh", recurrent_activation="sigmoid",
                 use_bias=True, kernel_initializer="glorot_uniform",
                 recurrent_initializer="orthogonal", bias_initializer="zeros",
                 kernel_regularizer=None, recurrent_regularizer=None, bias_regularizer=None,
                 kernel_constraint=None, recurrent_constraint=None, bias_constraint=None,
                 dropout=0.0, recurrent_dropout=0.0, reset_after=True, seed=None, **kwargs):
        super().__init__(_arguments(locals()), **kwargs)


_FUSED_CELLS = (SimpleRNNCell, LSTMCell, GRUCell)


# ------------------------------------------------------- any cell, one step

def _has_forward(cell):
    return type(cell).forward is not Layer.forward


def _has_backward(cell):
    if isinstance(cell, StackedRNNCells):
        return all(_has_backward(c) for c in cell.cells)
    return _has_forward(cell) and type(cell).backward_from is not Layer.backward_from


def _takes_training(cell):
    """Whether the cell's call takes ``training`` (Keras' _call_has_training_arg)."""
    cls = type(cell)
    if cls not in _TAKES_TRAINING:
        try:
            params = inspect.signature(cell.call).parameters
        except (TypeError, ValueError):
            params = {}
        _TAKES_TRAINING[cls] = "training" in params or any(
            p.kind is p.VAR_KEYWORD for p in params.values())
    return _TAKES_TRAINING[cls]


_TAKES_TRAINING = {}   # cell class -> whether its call takes training


def _check_cell(cell, what):
    if not isinstance(cell, Layer):
        raise ValueError(f"{what} must be an rnnkern cell (an rnnkern.layers.Layer with "
                         f"`state_size` and `call` or `forward`), got {cell!r}")
    if not (_has_forward(cell) or callable(getattr(cell, "call", None))):
        raise ValueError(f"{what} should have a `call` method (or rnnkern's `forward`, see "
                         f"rnnkern.layers.rnn). Received: cell={cell!r}")
    if "state_size" not in dir(cell):
        raise ValueError("The RNN cell should have a `state_size` attribute (single integer or "
                         "list of integers, one integer per RNN state). "
                         f"Received: cell={cell!r}")


def _cell_step(cell, x, states, training):
    """((output, new_states), ctx) of one step of any cell (ctx None for a
    call-only cell)."""
    if isinstance(cell, _FusedCell):
        x = cell._standardize(x)     # e.g. a float64 output of a cell of the user's
    if _has_forward(cell):
        out, ctx = cell.forward(x, training=training, states=states)
    else:
        out = (cell.call(x, states, training=training) if _takes_training(cell)
               else cell.call(x, states))
        ctx = None
    if not isinstance(out, (list, tuple)) or len(out) != 2:
        raise TypeError(f"cell {cell.name!r} ({type(cell).__name__}) must return (output, "
                        f"new_states) from one step, got {type(out).__name__}")
    return out, ctx


def _no_backward(cell, where):
    return NotImplementedError(
        f"{where}: cell {cell.name!r} ({type(cell).__name__}) has no backward, so it runs "
        "inference but cannot be trained (backward, fit). rnnkern computes on NumPy arrays "
        "without automatic differentiation: give the cell a differentiable step, the Layer "
        "contract on one step -- forward(inputs, training=None, states=None) -> ((output, "
        "new_states), ctx) and backward_from(ctx, (d_output, d_new_states)) -> ((d_inputs, "
        "d_states), grads), grads aligned with cell.weights -- and the RNN runs "
        "backpropagation through time over it (see rnnkern.layers.rnn's docstring)")


def _cell_backward(cell, ctx, d_outputs, where):
    """((d_inputs, d_states), grads) of one step; grads None entries as zeros."""
    if ctx is None or not _has_backward(cell):
        raise _no_backward(cell, where)
    d_in, grads = cell.backward_from(ctx, d_outputs)
    grads = [np.zeros_like(w) if g is None else np.asarray(g)
             for g, w in zip(grads, cell.weights)]
    return d_in, grads


def _add_grads(acc, g):
    return g if acc is None else [a + b for a, b in zip(acc, g)]


# Keras' idiom self.kernel = self.add_weight(...) binds an array that fit, set_weights
# and load_weights then replace: the RNN remembers which attributes of a user cell
# hold which weight and rebinds them to the current arrays before every call.

def _user_cells(cell):
    if isinstance(cell, StackedRNNCells):
        return [u for c in cell.cells for u in _user_cells(c)]
    return [] if isinstance(cell, _FusedCell) else [cell]


def _track_weight_attrs(cell):
    for c in _user_cells(cell):
        if not c.built:
            continue
        attrs = dict(c.__dict__.get("_rnnkern_weight_attrs", {}))
        by_id = {id(w): n for n, w in c._params.items()}
        for k, v in vars(c).items():
            if isinstance(v, np.ndarray) and id(v) in by_id and c._params[by_id[id(v)]] is v:
                attrs[k] = by_id[id(v)]
        c.__dict__["_rnnkern_weight_attrs"] = attrs


def _sync_weight_attrs(cell):
    for c in _user_cells(cell):
        if "_rnnkern_weight_attrs" not in c.__dict__:
            _track_weight_attrs(c)
        for k, n in c.__dict__.get("_rnnkern_weight_attrs", {}).items():
            c.__dict__[k] = c._params[n]


def _reset_dropout_masks(cell):
    if isinstance(cell, StackedRNNCells):
        for c in cell.cells:
            _reset_dropout_masks(c)
        return
    for name in ("reset_dropout_mask", "reset_recurrent_dropout_mask"):
        fn = getattr(cell, name, None)
        if callable(fn):
            fn()


def _zeros_state(batch_size, size):
    return np.zeros((batch_size,) + (tuple(size) if isinstance(size, (list, tuple))
                                     else (size,)), floatx())


def _where(m, a, b):
    """a where the step mask m [N] is set, else b (broadcast over a's other axes)."""
    return np.where(m.reshape((-1,) + (1,) * (max(np.ndim(a), np.ndim(b)) - 1)), a, b)


# --------------------------------------------------------------- the stack

class StackedRNNCells(Layer):
    """A stack of cells behaving as one cell (Keras' StackedRNNCells): each
    step runs the cells in order, each one's output the next one's input.

    ``StackedRNNCells(cells)``; ``state_size`` is ``[cell.state_size for cell in
    cells]``, ``output_size`` the last cell's; the states are a list with one
    entry per cell (Keras' order). ``RNN(cells)`` builds one for a list.
    """

    _call_args = ("states", "training")
    _tensor_kwargs = ("states",)

    def __init__(self, cells, **kwargs):
        if isinstance(cells, Layer) or not isinstance(cells, (list, tuple)):
            raise TypeError(f"StackedRNNCells takes a list of cells, got {cells!r}")
        for cell in cells:
            if not isinstance(cell, Layer) or not (
                    _has_forward(cell) or callable(getattr(cell, "call", None))):
                raise ValueError("All cells must have a `call` method (or rnnkern's "
                                 f"`forward`). Received cell without a `call` method: {cell}")
            if "state_size" not in dir(cell):
                raise ValueError("All cells must have a `state_size` attribute. Received cell "
                                 f"without a `state_size`: {cell}")
        super().__init__(**kwargs)
        self.cells = list(cells)

    def _sublayers(self):
        return list(self.cells)

    @property
    def state_size(self):
        return [c.state_size for c in self.cells]

    @property
    def output_size(self):
        last = self.cells[-1]
        if getattr(last, "output_size", None) is not None:
            return last.output_size
        s = last.state_size
        return s[0] if isinstance(s, (list, tuple)) else s

    def get_initial_state(self, batch_size=None):
        out = []
        for c in self.cells:
            fn = getattr(c, "get_initial_state", None)
            if fn is not None:
                out.append(fn(batch_size=batch_size))
            elif isinstance(c.state_size, (list, tuple)):
                out.append([_zeros_state(batch_size, d) for d in c.state_size])
            else:
                out.append(_zeros_state(batch_size, c.state_size))
        return out

    def build(self, input_shape):
        shape = tuple(input_shape)
        for cell in self.cells:
            if not cell.built:
                cell.build(shape)
                cell.built = True
            out = getattr(cell, "output_size", None)
            if out is None:
                s = cell.state_size
                out = s[0] if isinstance(s, (list, tuple)) else s
            shape = (shape[0], out)
        _track_weight_attrs(self)
        self._build_shapes = tuple(input_shape)
        self.built = True

    def _build_from_weights(self, weights):
        i = 0
        for cell in self.cells:
            if not isinstance(cell, _FusedCell):
                raise ValueError(f"StackedRNNCells {self.name!r} is not built yet: call it (or "
                                 "its RNN) on an input, or build it, before set_weights()")
            k = len(cell._weight_names())
            cell.set_weights(list(weights[i:i + k]))
            i += k
        self.built = True

    def forward(self, inputs, training=None, states=None):
        """One step of every cell: ((output, new_states), ctx)."""
        if not isinstance(states, (list, tuple)) or len(states) != len(self.cells):
            raise ValueError(f"states of StackedRNNCells {self.name!r} must be a list with one "
                             f"entry per cell ({len(self.cells)})")
        x, new_states, ctxs, structs = inputs, [], [], []
        for cell, st in zip(self.cells, states):
            nested = isinstance(st, (list, tuple))
            (x, ns), ctx = _cell_step(cell, x, list(st) if nested else [st], training)
            # the backward gives each cell gradients in the structure it returned
            structs.append((map_structure(lambda _: None, ns), nested))
            ns = list(ns) if isinstance(ns, (list, tuple)) else [ns]
            new_states.append(ns[0] if len(ns) == 1 and not nested else ns)
            ctxs.append(ctx)
        if len(new_states) == 1:
            new_states = new_states[0]
        return (x, new_states), ctxs + [structs]

    def backward_from(self, ctx, d_outputs):
        ctxs, structs = ctx[:-1], ctx[-1]
        d, d_states = d_outputs
        if len(self.cells) == 1:
            d_states = [d_states]
        grads, d_prev = [None] * len(self.cells), [None] * len(self.cells)
        for k in reversed(range(len(self.cells))):
            (s, nested), cell = structs[k], self.cells[k]
            ds = flatten(d_states[k]) if d_states is not None else [None] * len(flatten(s))
            d_in, grads[k] = _cell_backward(cell, ctxs[k], (d, pack_as(s, ds)),
                                            f"StackedRNNCells {self.name!r}")
            flat = flatten(d_in)
            d = flat[0]
            d_prev[k] = flat[1:] if nested else flat[1]
        return (d, d_prev), [g for gs in grads for g in gs]

    def call(self, inputs, states, training=False):
        """Keras' ``call``: one step of the stack, nothing kept."""
        return self._run(inputs, check_training(training), {"states": states})[0]

    def get_config(self):
        cfg = super().get_config()
        cfg["cells"] = [serialize_layer(c) for c in self.cells]
        return cfg

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        cells = [deserialize_layer(c, custom_objects) for c in config.pop("cells")]
        return cls(cells, **config)


# ---------------------------------------------------------------------- RNN

# what the backward of one stepped call needs: the steps' contexts, the mask in
# processing order, whether an initial state was given, the shapes, and the
# structure of the cell's new states
_LoopCtx = collections.namedtuple("_LoopCtx", ["steps", "mask", "given", "x_shape",
                                               "out_shape", "struct"])


class RNN(Layer):
    """Base class for recurrent layers (Keras' ``keras.layers.RNN``): runs a
    cell over the steps of x [N, T, C].

    ``RNN(cell, return_sequences=False, return_state=False, go_backwards=False,
    stateful=False, unroll=False, zero_output_for_mask=False)``. ``cell``: a
    cell, a list of cells (a ``StackedRNNCells``) or a cell of your own (see the
    module docstring). ``unroll`` is accepted for Keras and has no effect.
    Calling, ``backward(d_output, d_states=None)``, ``states`` and
    ``reset_states()`` as the recurrent layers (``rnnkern.layers.recurrent``).

    >>> model = Sequential([Input((28, 28)), RNN(LSTMCell(64)), Dense(10)])
    """

    _call_args = ("initial_state", "mask", "training")
    _tensor_kwargs = ("initial_state",)
    _call_has_mask_arg = True
    _supports_masking = True

    def __init__(self, cell, return_sequences=False, return_state=False, go_backwards=False,
                 stateful=False, unroll=False, zero_output_for_mask=False, **kwargs):
        if isinstance(cell, (list, tuple)):
            cell = StackedRNNCells(cell)
        _check_cell(cell, "Argument `cell`")
        state_size = getattr(cell, "state_size", None)
        if state_size is None:
            raise ValueError("state_size must be specified as property on the RNN cell.")
        if isinstance(state_size, bool) or not isinstance(state_size, (list, tuple, int)):
            raise ValueError("state_size must be an integer, or a list/tuple of integers (one "
                             "for each state tensor).")
        self.return_sequences = check_bool("return_sequences", return_sequences)
        self.return_state = check_bool("return_state", return_state)
        self.go_backwards = check_bool("go_backwards", go_backwards)
        self.stateful = check_bool("stateful", stateful)
        self.unroll = check_bool("unroll", unroll)     # accepted for Keras; no effect
        self.zero_output_for_mask = check_bool("zero_output_for_mask", zero_output_for_mask)
        super().__init__(**kwargs)
        if self._batch_input_shape is not None and len(self._batch_input_shape) != 3:
            raise ValueError(f"input_shape must be (timesteps, features), got "
                             f"{self._batch_input_shape[1:]!r}")
        self.cell = cell
        self._engines = None     # (cells, fused layers): built-in cells only
        self._states = None      # stateful, stepped cells: the kept states (flat)
        _track_weight_attrs(cell)

    def _sublayers(self):
        return [self.cell]

    # ------------------------------------------------------------ structure
    @property
    def state_size(self):
        s = self.cell.state_size
        return [s] if isinstance(s, int) else list(s)

    def _n_flat_states(self):
        return len(flatten(self.state_size))

    def _fused_cells(self):
        """The cells when every one is a built-in cell (run on the fused
        kernels), else None (the step loop)."""
        cell = self.cell
        if type(cell) in _FUSED_CELLS:
            return [cell]
        if type(cell) is StackedRNNCells and cell.cells and \
                all(type(c) in _FUSED_CELLS for c in cell.cells):
            return list(cell.cells)
        return None

    @property
    def backend(self):
        """The backend of the built-in cells (None for other cells); settable."""
        cells = self._fused_cells() or []
        return cells[0].backend if cells else None

    @backend.setter
    def backend(self, name):
        for c in [self.cell] + (list(self.cell.cells) if isinstance(self.cell, StackedRNNCells)
                                else []):
            if isinstance(c, _FusedCell):
                c.backend = name
        self._tls.last = None

    @property
    def state_grads(self):
        """Gradients of the initial state of this thread's last backward (flat,
        aligned with the flattened ``initial_state`` the call was given, else None)."""
        return getattr(self._tls, "state_grads", None)

    def get_initial_state(self, batch_size):
        """Keras' initial states: the cell's ``get_initial_state``, else zeros."""
        fn = getattr(self.cell, "get_initial_state", None)
        if fn is not None:
            init = fn(batch_size=batch_size)
            return list(init) if isinstance(init, (list, tuple)) else [init]
        return [_zeros_state(batch_size, d) for d in self.state_size]

    # ---------------------------------------------------------------- build
    def _features(self):
        """The input features the built-in cells are built for, else None."""
        cells = self._fused_cells()
        return cells[0].kernel.shape[0] if cells and cells[0].built else None

    def _check_input_shape(self, input_shape):
        return checked_input_shape(input_shape, self._features(), self.name)

    def build(self, sequences_shape, initial_state_shape=None):
        shape = self._check_input_shape(sequences_shape)
        if not self.cell.built:
            self.cell.build((shape[0], shape[2]))
            self.cell.built = True
        _track_weight_attrs(self.cell)
        self._build_shapes = shape
        self.built = True

    def _build_from_weights(self, weights):
        self.cell._build_from_weights(weights)
        self.built = self.cell.built

    def compute_output_shape(self, sequences_shape, initial_state_shape=None):
        n, t = sequences_shape[0], sequences_shape[1]
        states = [(n, s) if isinstance(s, int) else [(n, d) for d in s]
                  for s in self.state_size]
        out = getattr(self.cell, "output_size", None)
        if out is None:
            out = self.state_size[0]
        if not isinstance(out, int):
            raise ValueError("output_size must be an integer.")
        y = (n, t, out) if self.return_sequences else (n, out)
        return [y] + states if self.return_state else y

    def compute_mask(self, inputs, mask=None):
        return output_mask(mask, self.return_sequences, self.return_state,
                           self._n_flat_states())

    # ---------------------------------------------------------------- state
    @property
    def states(self):
        """Stateful layers: copies of the kept states, else None."""
        if self._engines is not None and self._fused_cells() is not None:
            parts = [e.states for e in self._engines[1]]
            if any(p is None for p in parts):
                return None
            return parts[0] if len(parts) == 1 and type(self.cell) is not StackedRNNCells \
                else parts
        return None if self._states is None else [s.copy() for s in self._states]

    def reset_states(self):
        """Forget the kept states (the next call starts from the initial states)."""
        self._states = None
        for e in (self._engines[1] if self._engines is not None else []):
            e.reset_states()

    reset_state = reset_states

    # ----------------------------------------------------------------- call
    def _standardize(self, x):
        return standardized_sequence(x, self._features(), self.name)

    def forward(self, x, training=None, mask=None, initial_state=None):
        """One call on standardized x [N, T, C]: returns (outputs, ctx)."""
        training = check_training(training)
        n, t, _ = x.shape
        mask = _RNN._check_mask(mask, n, t)
        given = None
        if initial_state is not None:
            given = [float_array(s, f"initial_state[{i}]", "float32 of shape (N, state size)")
                     for i, s in enumerate(flatten(initial_state))]
        cells = self._fused_cells()
        if cells is not None:
            return self._forward_fused(cells, x, training, mask, given)
        return self._forward_loop(x, training, mask, given)

    def _fused_engines(self, cells):
        """One recurrent layer per cell, sharing its weights, flagged for this
        layer: the first takes go_backwards, the last the output flags."""
        if self._engines is None or [id(c) for c in self._engines[0]] != [id(c) for c in cells]:
            self._engines = (cells, [c._make_engine() for c in cells])
        engines = self._engines[1]
        for k, e in enumerate(engines):
            last = k == len(engines) - 1
            e.return_sequences = self.return_sequences if last else True
            e.return_state = True
            e.go_backwards = self.go_backwards if k == 0 else False
            e.stateful = self.stateful
            e.zero_output_for_mask = self.zero_output_for_mask if last else False
        return engines

    def _split_states(self, flat, counts):
        if flat is None:
            return [None] * len(counts)
        if len(flat) != sum(counts):
            raise ValueError(f"initial_state of layer {self.name!r} must hold {sum(counts)} "
                             f"arrays (state_size {self.state_size}, in that structure or "
                             f"flattened), got {len(flat)}")
        out, i = [], 0
        for k in counts:
            out.append(flat[i:i + k])
            i += k
        return out

    def _pack_states(self, flat):
        """The states as Keras returns them: [h, c] for one cell, one entry per
        cell (a list of its states) for a stack."""
        if type(self.cell) is StackedRNNCells:
            out, i = [], 0
            for c in self.cell.cells:
                k = c._n_states
                out.append(flat[i:i + k])
                i += k
            return out
        return list(flat)

    def _forward_fused(self, cells, x, training, mask, given):
        engines = self._fused_engines(cells)
        counts = [e._n_states for e in engines]
        per_cell = self._split_states(given, counts)
        h, ctxs, states = x, [], []
        for k, e in enumerate(engines):
            mk = mask if k == 0 or mask is None or not self.go_backwards else mask[:, ::-1]
            out, ctx = e.forward(h, training=training, mask=mk, initial_state=per_cell[k])
            h = np.ascontiguousarray(out[0])
            states += list(out[1:])
            ctxs.append(ctx)
        outputs = [h] + self._pack_states(states) if self.return_state else h
        ctx = None if training is False else ("fused", ctxs, given is not None, counts)
        return outputs, ctx

    def _forward_loop(self, x, training, mask, given):
        cell = self.cell
        n, t, c = x.shape
        _sync_weight_attrs(cell)
        struct = self.get_initial_state(n)
        states = [np.asarray(s, x.dtype) for s in flatten(struct)]
        if given is not None:
            if len(given) != len(states):
                raise ValueError(f"initial_state of layer {self.name!r} must hold "
                                 f"{len(states)} arrays (state_size {self.state_size}, in that "
                                 f"structure or flattened), got {len(given)}")
            for i, (g, s) in enumerate(zip(given, states)):
                if g.shape != s.shape:
                    raise ValueError(f"initial_state[{i}] has shape {g.shape}, expected "
                                     f"{s.shape}")
            states = given
        elif self.stateful and self._states is not None:
            if self._states[0].shape[0] != n:
                raise ValueError(f"stateful layer {self.name!r} keeps states for batch size "
                                 f"{self._states[0].shape[0]}, got x with batch size {n}; the "
                                 "batch size must stay fixed (call reset_states() to start "
                                 "over)")
            states = self._states
        xs = x[:, ::-1] if self.go_backwards else x
        mp = None if mask is None else (mask[:, ::-1] if self.go_backwards else mask)
        keep = training is not False
        prev, outs, steps, new_struct = None, [], [], None
        try:
            for s in range(t):
                (o, ns), ctx = _cell_step(cell, np.ascontiguousarray(xs[:, s]),
                                          pack_as(struct, states), training)
                o = np.asarray(o)
                new = [np.asarray(a) for a in flatten(ns)]
                if len(new) != len(states):
                    raise ValueError(f"cell {cell.name!r} returned {len(new)} states, its "
                                     f"state_size {self.state_size} has {len(states)}")
                if new_struct is None:
                    new_struct = map_structure(lambda _: None, ns)
                if mp is not None:
                    m = mp[:, s]
                    if prev is None:
                        prev = np.zeros_like(o)
                    o = _where(m, o, np.zeros_like(o) if self.zero_output_for_mask else prev)
                    new = [_where(m, a, b) for a, b in zip(new, states)]
                prev, states = o, new
                if self.return_sequences:
                    outs.append(o)
                if keep:
                    steps.append(ctx)
        finally:
            _reset_dropout_masks(cell)     # Keras: the masks live for one call
        y = np.stack(outs, axis=1) if self.return_sequences else prev
        y = np.asarray(y, floatx())
        states = [np.asarray(a, floatx()) for a in states]
        if self.stateful:
            self._states = [a.copy() for a in states]
        outputs = [y] + list(pack_as(struct, states)) if self.return_state else y
        ctx = None
        if keep:
            ctx = _LoopCtx(steps, mp, given is not None, x.shape, y.shape, new_struct)
        return outputs, ctx

    # ------------------------------------------------------------- backward
    def _backward(self, ctx, d_output, d_states):
        """(dx, grads, flat d initial states) of one call; d_states: flat, entries
        may be None."""
        if isinstance(ctx, tuple) and ctx[0] == "fused":
            return self._backward_fused(ctx, d_output, d_states)
        return self._backward_loop(ctx, d_output, d_states)

    def _backward_fused(self, ctx, d_output, d_states):
        _, ctxs, given, counts = ctx
        engines = self._engines[1]
        ds = self._split_states(d_states, counts)
        d, grads, dstates = d_output, [None] * len(engines), [None] * len(engines)
        for k in reversed(range(len(engines))):
            d_in, grads[k] = engines[k].backward_from(ctxs[k], [d] + list(ds[k]))
            if given:
                d, dstates[k] = d_in[0], list(d_in[1:])
            else:
                d = d_in
        return d, [g for gs in grads for g in gs], (
            [s for part in dstates for s in part] if given else None)

    def _backward_loop(self, ctx, d_output, d_states):
        cell = self.cell
        where = f"RNN layer {self.name!r}"
        if not _has_backward(cell):
            raise _no_backward(cell, where)
        n, t, c = ctx.x_shape
        dy = grad_or_zeros(d_output, ctx.out_shape)
        ds = [np.zeros((n,) + (tuple(s) if isinstance(s, (list, tuple)) else (s,)), dy.dtype)
              if d is None else float_array(d, f"d_states[{i}]", "float32")
              for i, (d, s) in enumerate(zip(d_states, flatten(self.state_size)))]
        dx = np.empty((n, t, c), dy.dtype)
        carry, grads, mp = None, None, ctx.mask
        for s in reversed(range(t)):
            if self.return_sequences:
                do = dy[:, s]
            else:
                do = dy if s == t - 1 else np.zeros_like(dy)
            if carry is not None:
                do = do + carry
            keep = None
            if mp is not None:
                m = mp[:, s]
                carry = None if self.zero_output_for_mask else _where(m, 0.0, do)
                do = _where(m, do, 0.0)
                keep = [_where(m, 0.0, d) for d in ds]
                ds = [_where(m, d, 0.0) for d in ds]
            d_in, g = _cell_backward(cell, ctx.steps[s], (do, pack_as(ctx.struct, ds)), where)
            flat = flatten(d_in)
            dx[:, s] = flat[0]
            ds = [np.asarray(d, dy.dtype) for d in flat[1:]]
            if keep is not None:
                ds = [a + b for a, b in zip(ds, keep)]
            grads = _add_grads(grads, g)
        if self.go_backwards:
            dx = dx[:, ::-1]
        return np.ascontiguousarray(dx), grads, (ds if ctx.given else None)

    def _split_d_outputs(self, d_outputs):
        k = self._n_flat_states()
        if self.return_state:
            flat = flatten(list(d_outputs))
            return flat[0], flat[1:]
        return d_outputs, [None] * k

    def backward_from(self, ctx, d_outputs):
        dy, ds = self._split_d_outputs(d_outputs)
        dx, grads, dstates = self._backward(ctx, dy, ds)
        return ([dx] + dstates if dstates is not None else dx), grads

    def backward(self, d_output, d_states=None):
        """BPTT of this thread's last call: ``d_output`` has the output's shape;
        ``d_states`` (optional) is aligned with the (flattened) returned states,
        entries may be None. Returns dx [N, T, C]; replaces ``grads`` and
        ``state_grads``."""
        ctx = self._last_ctx()
        k = self._n_flat_states()
        ds = [None] * k if d_states is None else flatten(list(d_states))
        if len(ds) != k:
            raise ValueError(f"d_states must hold {k} entries aligned with the states, "
                             f"got {len(ds)}")
        dx, grads, dstates = self._backward(ctx, d_output, ds)
        self._tls.grads = grads
        self._tls.state_grads = dstates
        return dx

    # --------------------------------------------------------------- config
    def get_config(self):
        cfg = super().get_config()
        cfg.update({k: getattr(self, k) for k in _LAYER_FLAGS})
        cfg["cell"] = serialize_layer(self.cell)
        return cfg

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        cell = deserialize_layer(config.pop("cell"), custom_objects)
        return cls(cell, **config)

    def __repr__(self):
        return f"<RNN name={self.name}, cell={type(self.cell).__name__}, built={self.built}>"
