"""Keras-shaped recurrent layers on NumPy arrays: SimpleRNN, LSTM, GRU.

Shape legend (as everywhere in rnnkern):

    N  batch          T  timesteps        C  input features
    H  units          G  gates: SimpleRNN 1, LSTM 4 (i, f, c, o), GRU 3 (z, r, h)

A layer holds Keras' weights, in Keras' layout and ``get_weights()`` order:

    kernel            [C, G*H]
    recurrent_kernel  [H, G*H]
    bias              [G*H], or [2, G*H] for GRU reset_after=True (row 0 input
                      bias, row 1 recurrent bias); absent with use_bias=False

and calls one backend (``rnnkern.backends``) for the forward and the BPTT of
``rnnkern.ops``. Everything is computed in float32: inputs of any real floating
dtype are converted; the weights are stored as float32.

Calling: ``layer(x, initial_state=None, mask=None, training=None)`` with x
[N, T, C]; returns y ([N, T, H] with return_sequences, else [N, H]) or, with
return_state, the list ``[y, h]`` (``[y, h, c]`` for LSTM). Keras 3 returns a
tuple there; rnnkern returns a list, which unpacks the same way.

``training``: None (default) keeps what BPTT needs so that ``backward()`` can
follow, without dropout (Keras' default outside ``fit``); True also applies
input dropout; False is pure inference: nothing is kept and ``backward()``
raises.

``backward(d_output, d_states=None)`` differentiates the last call: it returns
dx [N, T, C] and REPLACES ``grads`` (aligned with ``get_weights()``) and
``state_grads`` (aligned with the ``initial_state`` the call was given, else
None).

Weights: ``layer.kernel``, ``layer.recurrent_kernel`` and ``layer.bias`` are
READ-ONLY float32 arrays. Change them with ``set_weights`` or by assignment
(``layer.kernel = layer.kernel - lr * layer.grads[0]``); an in-place update
(``layer.kernel -= ...``) raises. That is what lets a layer pack its kernels for
the compiled code once and reuse them for every call until a weight is
assigned (see ``rnnkern.ops.pack``).

Dropout: ``dropout`` is Keras' input dropout: with ``training=True`` one mask
[N, C] per call, shared by all timesteps and (LSTM/GRU, Keras' default
implementation) all gates, scaled by 1/(1 - rate). ``recurrent_dropout`` is not
supported yet (NotImplementedError when > 0).
"""
from __future__ import annotations

import itertools
import numbers
import os

import numpy as np

from . import initializers as _inits
from .backends import get_backend
from .ops import ACTIVATIONS, GATES

__all__ = ["SimpleRNN", "LSTM", "GRU"]

_NAME_COUNTERS = {}


def _auto_name(base):
    c = _NAME_COUNTERS.setdefault(base, itertools.count())
    i = next(c)
    return base if i == 0 else f"{base}_{i}"


def _physical_memory():
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def _check_memory(nbytes, what):
    """Refuse (MemoryError) what could not fit in RAM, before allocating it:
    with overcommit a huge allocation may succeed and the process be killed later."""
    mem = _physical_memory()
    if mem is not None and nbytes > mem:
        raise MemoryError(f"{what} needs about {nbytes / 2**30:.3g} GiB, more than this "
                          f"machine's {mem / 2**30:.3g} GiB of memory")


def _check_bool(name, v):
    if not isinstance(v, (bool, np.bool_)):
        raise TypeError(f"{name} must be a bool, got {v!r}")
    return bool(v)


def _real_weight(name, value, context):
    """``value`` as an array of real numbers; TypeError naming ``name`` otherwise."""
    a = np.asarray(value)
    if a.dtype.kind not in "fiu":
        raise TypeError(f"{context}{name} must be a real array, got dtype {a.dtype}")
    return a


def _frozen_copy(a):
    """A read-only float32 C-contiguous copy (the caller's array stays theirs)."""
    a = np.array(a, dtype=np.float32, order="C")
    a.flags.writeable = False
    return a


def _real_float_array(v, name, expected):
    """``v`` as a float32 C-contiguous array; TypeError naming ``name`` for
    integer, bool, complex or non-numeric data."""
    a = np.asarray(v)
    if a.dtype.kind != "f":
        raise TypeError(f"{name} must be a real floating-point array ({expected}; float64 "
                        f"and other real floats are converted to float32), got dtype {a.dtype}")
    return np.ascontiguousarray(a, dtype=np.float32)


# A layer keeps its packed kernels up to this size (LSTM with input_dim = units:
# up to ~2000 units), and packs them per call beyond it.
_PACK_KEEP_BYTES = 256 << 20


class _Empty:
    """Marker cache of a call with batch size 0 (nothing to run)."""


def _weight_property(name, doc):
    def get(self):
        return self._weights[name]

    def set(self, value):
        self._assign_weight(name, value)

    return property(get, set, doc=doc)


class _RNN:
    """Common machinery of the three layers (not public)."""

    kernel = _weight_property("kernel", "[C, G*H] float32, read-only (assign to change).")
    recurrent_kernel = _weight_property(
        "recurrent_kernel", "[H, G*H] float32, read-only (assign to change).")
    bias = _weight_property("bias", "The bias (None with use_bias=False), read-only.")

    _cell = None            # "simple_rnn" | "lstm" | "gru"
    _base_name = None
    _n_states = 1
    # Keras' cells apply input dropout when 0 < rate < 1 (LSTM, GRU); SimpleRNNCell
    # whenever rate > 0 (rate 1 drops every input).
    _dropout_at_one = False

    def __init__(self, units, activation="tanh", recurrent_activation="sigmoid", use_bias=True,
                 kernel_initializer="glorot_uniform", recurrent_initializer="orthogonal",
                 bias_initializer="zeros", dropout=0.0, recurrent_dropout=0.0,
                 return_sequences=False, return_state=False, go_backwards=False,
                 stateful=False, seed=None, backend="auto", unroll=False, name=None,
                 input_shape=None):
        if isinstance(units, (bool, np.bool_)) or not isinstance(units, (int, np.integer)):
            raise TypeError(f"units must be a positive int, got {units!r}")
        if units <= 0:
            raise ValueError(f"units must be a positive int, got {units!r}")
        self.units = int(units)
        self.activation = self._check_activation("activation", activation)
        self.recurrent_activation = self._check_activation("recurrent_activation",
                                                           recurrent_activation)
        self.use_bias = _check_bool("use_bias", use_bias)
        self.kernel_initializer = _inits.get(kernel_initializer)
        self.recurrent_initializer = _inits.get(recurrent_initializer)
        self.bias_initializer = _inits.get(bias_initializer)
        for arg, v in (("dropout", dropout), ("recurrent_dropout", recurrent_dropout)):
            if isinstance(v, bool) or not isinstance(v, numbers.Real):
                raise TypeError(f"{arg} must be a float in [0, 1], got {v!r}")
        # Keras clips both rates into [0, 1]
        self.dropout = min(1.0, max(0.0, float(dropout)))
        self.recurrent_dropout = min(1.0, max(0.0, float(recurrent_dropout)))
        if self.recurrent_dropout != 0.0:
            raise NotImplementedError("recurrent_dropout is not supported yet")
        self.return_sequences = _check_bool("return_sequences", return_sequences)
        self.return_state = _check_bool("return_state", return_state)
        self.go_backwards = _check_bool("go_backwards", go_backwards)
        self.stateful = _check_bool("stateful", stateful)
        self.unroll = _check_bool("unroll", unroll)  # accepted for Keras; no effect
        if seed is not None and (isinstance(seed, (bool, np.bool_))
                                 or not isinstance(seed, (int, np.integer)) or seed < 0):
            raise ValueError(f"seed must be None or a non-negative int, got {seed!r}")
        self.seed = None if seed is None else int(seed)
        # Two independent streams: weight initialisation and dropout masks.
        if self.seed is None:
            self._init_rng = np.random.default_rng()
            self._dropout_rng = np.random.default_rng()
        else:
            self._init_rng = np.random.default_rng([self.seed, 0])
            self._dropout_rng = np.random.default_rng([self.seed, 1])
        self._backend = get_backend(backend)
        if name is not None and not isinstance(name, str):
            raise TypeError(f"name must be a str, got {name!r}")
        self.name = name if name is not None else _auto_name(self._base_name)
        # Keras 2 habit: the first layer of a Sequential may carry input_shape=(T, C)
        self.batch_input_shape = None
        if input_shape is not None:
            self.batch_input_shape = (None,) + tuple(
                None if s is None else int(s) for s in input_shape)
            if len(self.batch_input_shape) != 3:
                raise ValueError(f"input_shape must be (timesteps, features), got {input_shape!r}")

        self.built = False
        self._weights = dict(kernel=None, recurrent_kernel=None, bias=None)
        self._packed = None       # kernels packed for self._backend (see _pack_worth_keeping)
        self.grads = None
        self.state_grads = None
        self._states = None       # stateful: the kept states, list of [N, H]
        self._last = None         # what backward() needs from the last call

    def __getstate__(self):
        # the packed weights and the last call's workspace are compiled objects
        # that cannot be pickled; both are rebuilt on demand
        state = dict(self.__dict__)
        state["_packed"] = None
        if isinstance(state.get("_last"), dict):
            state["_last"] = None
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        for w in self._weights.values():
            if w is not None:  # unpickled arrays come back writeable
                w.flags.writeable = False

    # ----------------------------------------------------------------- config

    @staticmethod
    def _check_activation(arg, v):
        if v is None:
            v = "linear"
        if v not in ACTIVATIONS:
            raise ValueError(f"{arg} must be one of {list(ACTIVATIONS)}, got {v!r}")
        return v

    @property
    def backend(self):
        """Name of the backend this layer runs on (settable)."""
        return self._backend.name

    @backend.setter
    def backend(self, name):
        self._backend = get_backend(name)
        self._last = None  # a cache belongs to the backend that made it
        self._packed = None

    @property
    def _gates(self):
        return GATES[self._cell]

    def _weight_names(self):
        return ["kernel", "recurrent_kernel"] + (["bias"] if self.use_bias else [])

    def _bias_shape(self):
        return (self._gates * self.units,)

    def _expected_shapes(self, input_dim):
        gh = self._gates * self.units
        shapes = [(input_dim, gh), (self.units, gh)]
        if self.use_bias:
            shapes.append(self._bias_shape())
        return shapes

    def get_config(self):
        cfg = dict(name=self.name, units=self.units, activation=self.activation,
                   use_bias=self.use_bias, dropout=self.dropout,
                   recurrent_dropout=self.recurrent_dropout,
                   return_sequences=self.return_sequences, return_state=self.return_state,
                   go_backwards=self.go_backwards, stateful=self.stateful, seed=self.seed,
                   unroll=self.unroll)
        return cfg

    def __repr__(self):
        return (f"{type(self).__name__}(units={self.units}, name={self.name!r}, "
                f"backend={self.backend!r}, built={self.built})")

    # ---------------------------------------------------------------- weights

    def build(self, input_shape):
        """Create the weights for inputs of shape (N?, T?, C)."""
        try:
            shape = tuple(input_shape)
        except TypeError:
            raise ValueError(f"input_shape must be (batch, timesteps, features), "
                             f"got {input_shape!r}") from None
        if len(shape) != 3:
            raise ValueError(f"input_shape must be (batch, timesteps, features), got {shape}")
        c = shape[-1]
        if isinstance(c, (bool, np.bool_)) or not isinstance(c, (int, np.integer)) or c <= 0:
            raise ValueError(f"input_shape must end with a positive number of features, "
                             f"got {shape}")
        c = int(c)
        if self.built:
            if c != self.kernel.shape[0]:
                raise ValueError(f"layer {self.name!r} is already built for {self.kernel.shape[0]} "
                                 f"input features, got input_shape {shape}")
            return
        shapes = self._expected_shapes(c)
        n_params = sum(int(np.prod(s, dtype=np.float64)) for s in shapes)
        # float32 weights, plus the float64 normal matrix and Q of the orthogonal init
        _check_memory(4 * n_params + 24 * int(np.prod(shapes[1], dtype=np.float64)),
                      f"building {type(self).__name__}(units={self.units}) for {c} features")
        kernel = _inits.call(self.kernel_initializer, shapes[0], self._init_rng)
        recurrent = _inits.call(self.recurrent_initializer, shapes[1], self._init_rng)
        bias = None
        if self.use_bias:
            bias = self._init_bias()
        self._store_weights([kernel, recurrent] + ([bias] if self.use_bias else []))
        self.built = True

    def _init_bias(self):
        return _inits.call(self.bias_initializer, self._bias_shape(), self._init_rng)

    @property
    def weights(self):
        """The weight arrays themselves (not copies), in get_weights() order."""
        if not self.built:
            return []
        ws = [self.kernel, self.recurrent_kernel]
        if self.use_bias:
            ws.append(self.bias)
        return ws

    def get_weights(self):
        """Copies of the weights: [kernel, recurrent_kernel(, bias)], float32."""
        return [w.copy() for w in self.weights]

    def set_weights(self, weights):
        """Set [kernel, recurrent_kernel(, bias)] (Keras layout). Builds an
        unbuilt layer from the kernel's shape; every shape is checked."""
        names = self._weight_names()
        if isinstance(weights, np.ndarray) or not isinstance(weights, (list, tuple)):
            raise TypeError(f"set_weights expects a list of {len(names)} arrays {names}, "
                            f"got {type(weights).__name__}")
        if len(weights) != len(names):
            raise ValueError(f"set_weights: layer {self.name!r} has {len(names)} weights "
                             f"{names}, got a list of {len(weights)}")
        arrays = [_real_weight(n, w, "set_weights: ") for n, w in zip(names, weights)]
        if self.built:
            input_dim = self.kernel.shape[0]
        else:
            k = arrays[0]
            gh = self._gates * self.units
            if k.ndim != 2 or k.shape[1] != gh or k.shape[0] < 1:
                raise ValueError(f"set_weights: kernel has shape {k.shape}, expected "
                                 f"(input_dim, {gh}) for units={self.units}")
            input_dim = k.shape[0]
        for n, a, s in zip(names, arrays, self._expected_shapes(input_dim)):
            if a.shape != s:
                raise ValueError(f"set_weights: {n} has shape {a.shape}, expected {s}")
        self._store_weights(arrays)
        self.built = True

    def _pack_worth_keeping(self):
        """Kept packed weights take about twice the kernels' memory (two layouts of
        each: the input kernel for the projection GEMM and for the fused step, the
        recurrent kernel for the forward and the backward); beyond _PACK_KEEP_BYTES
        the layer packs per call instead, where packing costs little next to the call."""
        return 2 * (self.kernel.nbytes + self.recurrent_kernel.nbytes) <= _PACK_KEEP_BYTES

    def _store_weights(self, arrays):
        """Fresh read-only float32 copies of [kernel, recurrent_kernel(, bias)]."""
        new = [_frozen_copy(a) for a in arrays]
        self._weights = dict(kernel=new[0], recurrent_kernel=new[1],
                             bias=new[2] if self.use_bias else None)
        self._packed = None  # packed from the old weights

    def _assign_weight(self, name, value):
        if not self.built:
            raise ValueError(f"layer {self.name!r} is not built yet: call it on an input, "
                             "build(input_shape) or set_weights() first")
        if name == "bias" and not self.use_bias:
            if value is None:
                return
            raise ValueError(f"layer {self.name!r} has use_bias=False: it has no bias")
        a = _real_weight(name, value, "")
        names = self._weight_names()
        want = self._expected_shapes(self.kernel.shape[0])[names.index(name)]
        if a.shape != want:
            raise ValueError(f"{name} must have shape {want}, got {a.shape}")
        self._weights[name] = _frozen_copy(a)
        self._packed = None  # packed from the old weights

    def count_params(self):
        if not self.built:
            raise ValueError(f"You tried to call `count_params` on layer {self.name!r}, but the "
                             "layer isn't built. You can build it manually via: "
                             "`layer.build(input_shape)`.")
        return int(sum(w.size for w in self.weights))

    def compute_output_shape(self, input_shape):
        n, t = input_shape[0], input_shape[1]
        out = (n, t, self.units) if self.return_sequences else (n, self.units)
        if self.return_state:
            return [out] + [(n, self.units)] * self._n_states
        return out

    # ------------------------------------------------------------------ state

    @property
    def states(self):
        """Stateful layers: copies of the kept states ([h] or [h, c]), else None."""
        return None if self._states is None else [s.copy() for s in self._states]

    def reset_states(self):
        """Forget the kept states (the next call starts from zeros, and may use a
        new batch size)."""
        self._states = None

    reset_state = reset_states

    # ------------------------------------------------------------------- call

    def __call__(self, x, initial_state=None, mask=None, training=None):
        if training is not None and not isinstance(training, (bool, np.bool_)):
            raise TypeError(f"training must be None, True or False, got {training!r}")
        if training is not None:
            training = bool(training)
        self._last = None
        x = self._check_x(x)
        n, t, c = x.shape
        if not self.built:
            self.build(x.shape)
        elif c != self.kernel.shape[0]:
            raise ValueError(f"x has {c} features but layer {self.name!r} was built for "
                             f"{self.kernel.shape[0]} (x: (batch, timesteps, features))")
        h_units, g = self.units, self._gates
        states0, given = self._check_initial_state(initial_state, n)
        mask = self._check_mask(mask, n, t)
        if self.stateful and self._states is not None and self._states[0].shape[0] != n:
            raise ValueError(f"stateful layer {self.name!r} keeps states for batch size "
                             f"{self._states[0].shape[0]}, got x with batch size {n}; the "
                             "batch size must stay fixed (call reset_states() to start over)")
        if states0 is None and self.stateful and self._states is not None:
            states0 = self._states
        if states0 is None:
            states0 = [np.zeros((n, h_units), np.float32) for _ in range(self._n_states)]

        keep = training is not False
        # a lower bound of what the call allocates: x, y and (training) the saved
        # gates and states of every step; refused only when it cannot fit at all
        need = 4 * n * t * (c + h_units * (1 + (g + 2 if keep else 0)))
        _check_memory(need, f"{type(self).__name__}(units={h_units}) on x {x.shape}")

        drop = None
        if training is True and self.dropout > 0 and (self.dropout < 1 or self._dropout_at_one):
            keep_prob = 1.0 - self.dropout
            kept = self._dropout_rng.random((n, c)) < keep_prob
            drop = (kept / keep_prob if keep_prob > 0 else kept * 0.0).astype(np.float32)
            x = x * drop[:, None, :]

        out_shape = (n, t, h_units) if self.return_sequences else (n, h_units)
        if n == 0:
            y = np.zeros(out_shape, np.float32)
            states = [np.zeros((0, h_units), np.float32) for _ in range(self._n_states)]
            cache = _Empty()
        else:
            h0 = states0[0]
            c0 = states0[1] if self._cell == "lstm" else None
            reset_after = getattr(self, "reset_after", True)
            if self._packed is None and self._pack_worth_keeping():
                self._packed = self._backend.pack(self._cell, self.recurrent_kernel, reset_after,
                                                  self.kernel)
            y, h, cT, cache = self._backend.forward(
                self._cell, x, self.kernel, self.recurrent_kernel, self.bias, h0, c0, mask,
                self._packed,
                activation=self.activation, recurrent_activation=self.recurrent_activation,
                reset_after=reset_after, go_backwards=self.go_backwards,
                return_sequences=self.return_sequences, training=keep)
            y = np.asarray(y, dtype=np.float32)
            h = np.asarray(h, dtype=np.float32)
            if np.shares_memory(y, h):
                h = h.copy()
            states = [h]
            if self._cell == "lstm":
                states.append(np.asarray(cT, dtype=np.float32))
        if self.stateful:
            self._states = [s.copy() for s in states]
        if keep:
            self._last = dict(cache=cache, x_shape=(n, t, c), out_shape=out_shape,
                              drop=drop, given=given, backend=self._backend)
        else:
            self._last = "inference"
        if self.return_state:
            return [y] + states
        return y

    def _check_x(self, x):
        x = _real_float_array(x, "x", "float32 of shape (batch, timesteps, features)")
        if x.ndim != 3:
            raise ValueError(f"x must be 3-D (batch, timesteps, features), got shape {x.shape}")
        if x.shape[1] == 0:
            raise ValueError(f"x has 0 timesteps (shape {x.shape}); "
                             "expected (batch, timesteps >= 1, features)")
        if x.shape[2] == 0:
            raise ValueError(f"x has 0 features (shape {x.shape}); "
                             "expected (batch, timesteps, features >= 1)")
        return x

    def _check_initial_state(self, initial_state, n):
        """Returns (list of float32 [N, H] arrays or None, number given)."""
        if initial_state is None:
            return None, 0
        k = self._n_states
        want = "[h, c]" if k == 2 else "[h]"
        if isinstance(initial_state, (list, tuple)):
            states = list(initial_state)
        elif k == 1:
            states = [initial_state]  # Keras accepts a single tensor for one state
        else:
            raise ValueError(f"initial_state must be a list of {k} arrays {want} of shape "
                             f"(N, H) = {(n, self.units)}, got {type(initial_state).__name__}")
        if len(states) != k:
            raise ValueError(f"initial_state must be a list of {k} arrays {want} of shape "
                             f"(N, H) = {(n, self.units)}, got {len(states)} arrays")
        out = []
        for i, s in enumerate(states):
            a = _real_float_array(s, f"initial_state[{i}]", f"float32 of shape (N, H) = "
                                  f"{(n, self.units)}")
            if a.shape != (n, self.units):
                raise ValueError(f"initial_state[{i}] has shape {a.shape}, expected (N, H) = "
                                 f"{(n, self.units)}")
            out.append(a)
        return out, k

    @staticmethod
    def _check_mask(mask, n, t):
        if mask is None:
            return None
        m = np.asarray(mask)
        if m.dtype.kind not in "biuf":
            raise TypeError(f"mask must be a bool (or 0/1) array of shape (N, T) = {(n, t)}, "
                            f"got dtype {m.dtype}")
        if m.shape != (n, t):
            raise ValueError(f"mask has shape {m.shape}, expected (N, T) = {(n, t)}")
        return np.ascontiguousarray(m if m.dtype == np.bool_ else m != 0)

    # --------------------------------------------------------------- backward

    def backward(self, d_output, d_states=None):
        """BPTT of the last call. ``d_output`` has the output's shape; ``d_states``
        (optional) is a list aligned with the states ([h] or [h, c]), entries may
        be None. Returns dx [N, T, C]; replaces ``grads`` and ``state_grads``."""
        last = self._last
        if last is None:
            raise RuntimeError(f"backward() of layer {self.name!r} needs a preceding call "
                               "(layer(x) with training=None or True)")
        if isinstance(last, str):
            raise RuntimeError(f"backward() of layer {self.name!r}: the last call used "
                               "training=False (pure inference), which keeps nothing for "
                               "BPTT; call the layer with training=None or True first")
        n, t, c = last["x_shape"]
        dy = _real_float_array(d_output, "d_output", f"float32 of shape {last['out_shape']}")
        if dy.shape != last["out_shape"]:
            raise ValueError(f"d_output has shape {dy.shape}, expected {last['out_shape']} "
                             "(the output's shape)")
        k = self._n_states
        ds = [None] * k
        if d_states is not None:
            if isinstance(d_states, np.ndarray) or not isinstance(d_states, (list, tuple)):
                raise TypeError(f"d_states must be a list of {k} arrays (or None entries), "
                                f"got {type(d_states).__name__}")
            if len(d_states) != k:
                raise ValueError(f"d_states must be a list of {k} entries aligned with the "
                                 f"states, got {len(d_states)}")
            for i, d in enumerate(d_states):
                if d is None:
                    continue
                a = _real_float_array(d, f"d_states[{i}]", f"float32 of shape {(n, self.units)}")
                if a.shape != (n, self.units):
                    raise ValueError(f"d_states[{i}] has shape {a.shape}, expected (N, H) = "
                                     f"{(n, self.units)}")
                ds[i] = a
        cache = last["cache"]
        if isinstance(cache, _Empty):
            dx = np.zeros((n, t, c), np.float32)
            grads = [np.zeros_like(w) for w in self.weights]
            dstates = [np.zeros((n, self.units), np.float32) for _ in range(k)]
        else:
            g = last["backend"].backward(cache, dy, ds[0], ds[1] if k == 2 else None)
            dx = np.asarray(g.dx, dtype=np.float32)
            grads = [np.asarray(g.dkernel, np.float32), np.asarray(g.drecurrent_kernel, np.float32)]
            if self.use_bias:
                grads.append(np.asarray(g.dbias, np.float32))
            dstates = [np.asarray(g.dh0, np.float32)]
            if k == 2:
                dstates.append(np.asarray(g.dc0, np.float32))
        if last["drop"] is not None:
            dx = dx * last["drop"][:, None, :]
        self.grads = grads
        self.state_grads = dstates if last["given"] else None
        return dx


class SimpleRNN(_RNN):
    """Fully-connected RNN (Keras' SimpleRNN): h_t = act(x_t W + b + h_{t-1} U).

    Arguments as Keras 3: units, activation="tanh", use_bias=True,
    kernel_initializer="glorot_uniform", recurrent_initializer="orthogonal",
    bias_initializer="zeros", dropout=0.0, recurrent_dropout=0.0 (> 0 is not
    supported yet: NotImplementedError), return_sequences=False,
    return_state=False, go_backwards=False, stateful=False, seed=None (seeds
    the weight initialisation and the dropout masks), plus backend="auto"
    (any name of ``rnnkern.backends()``). See the module docstring for calling,
    ``backward`` and the weight layout.
    """

    _cell = "simple_rnn"
    _base_name = "simple_rnn"
    _n_states = 1
    _dropout_at_one = True

    def __init__(self, units, activation="tanh", use_bias=True,
                 kernel_initializer="glorot_uniform", recurrent_initializer="orthogonal",
                 bias_initializer="zeros", dropout=0.0, recurrent_dropout=0.0,
                 return_sequences=False, return_state=False, go_backwards=False,
                 stateful=False, seed=None, backend="auto", unroll=False, name=None,
                 input_shape=None):
        super().__init__(units, activation=activation, use_bias=use_bias,
                         kernel_initializer=kernel_initializer,
                         recurrent_initializer=recurrent_initializer,
                         bias_initializer=bias_initializer, dropout=dropout,
                         recurrent_dropout=recurrent_dropout,
                         return_sequences=return_sequences, return_state=return_state,
                         go_backwards=go_backwards, stateful=stateful, seed=seed,
                         backend=backend, unroll=unroll, name=name, input_shape=input_shape)


class LSTM(_RNN):
    """Long Short-Term Memory layer (Keras' LSTM), gates i, f, c, o:

        z = x_t W + h_{t-1} U + b;  i, f, o = ract(z_i, z_f, z_o);  g = act(z_c)
        c_t = f c_{t-1} + i g;      h_t = o act(c_t)

    Arguments as Keras 3: units, activation="tanh", recurrent_activation=
    "sigmoid", use_bias=True, kernel_initializer="glorot_uniform",
    recurrent_initializer="orthogonal" (on the whole [H, 4H] matrix),
    bias_initializer="zeros", unit_forget_bias=True (the forget-gate block of
    the bias is initialised to ones), dropout=0.0, recurrent_dropout=0.0 (> 0
    is not supported yet: NotImplementedError), return_sequences=False,
    return_state=False (states [h, c]), go_backwards=False, stateful=False,
    seed=None, plus backend="auto". See the module docstring.
    """

    _cell = "lstm"
    _base_name = "lstm"
    _n_states = 2

    def __init__(self, units, activation="tanh", recurrent_activation="sigmoid",
                 use_bias=True, kernel_initializer="glorot_uniform",
                 recurrent_initializer="orthogonal", bias_initializer="zeros",
                 unit_forget_bias=True, dropout=0.0, recurrent_dropout=0.0,
                 return_sequences=False, return_state=False, go_backwards=False,
                 stateful=False, seed=None, backend="auto", unroll=False, name=None,
                 input_shape=None):
        super().__init__(units, activation=activation,
                         recurrent_activation=recurrent_activation, use_bias=use_bias,
                         kernel_initializer=kernel_initializer,
                         recurrent_initializer=recurrent_initializer,
                         bias_initializer=bias_initializer, dropout=dropout,
                         recurrent_dropout=recurrent_dropout,
                         return_sequences=return_sequences, return_state=return_state,
                         go_backwards=go_backwards, stateful=stateful, seed=seed,
                         backend=backend, unroll=unroll, name=name, input_shape=input_shape)
        self.unit_forget_bias = _check_bool("unit_forget_bias", unit_forget_bias)

    def _init_bias(self):
        h = self.units
        if not self.unit_forget_bias:
            return super()._init_bias()
        # Keras: concat(bias_init(H), ones(H), bias_init(2H))
        return np.concatenate([
            _inits.call(self.bias_initializer, (h,), self._init_rng),
            np.ones(h, np.float32),
            _inits.call(self.bias_initializer, (2 * h,), self._init_rng)])

    def get_config(self):
        cfg = super().get_config()
        cfg.update(recurrent_activation=self.recurrent_activation,
                   unit_forget_bias=self.unit_forget_bias)
        return cfg


class GRU(_RNN):
    """Gated Recurrent Unit layer (Keras' GRU), gates z, r, h:

        reset_after=True:  hh = act(x W_h + b_in_h + r * (h_{t-1} U_h + b_rec_h))
        reset_after=False: hh = act(x W_h + b_h + (r * h_{t-1}) U_h)
        h_t = z h_{t-1} + (1 - z) hh

    Arguments as Keras 3: units, activation="tanh", recurrent_activation=
    "sigmoid", use_bias=True, kernel_initializer="glorot_uniform",
    recurrent_initializer="orthogonal" (on the whole [H, 3H] matrix),
    bias_initializer="zeros", dropout=0.0, recurrent_dropout=0.0 (> 0 is not
    supported yet: NotImplementedError), reset_after=True (bias [2, 3H]: input
    and recurrent bias rows; [3H] when False), return_sequences=False,
    return_state=False (states [h]), go_backwards=False, stateful=False,
    seed=None, plus backend="auto". See the module docstring.
    """

    _cell = "gru"
    _base_name = "gru"
    _n_states = 1

    def __init__(self, units, activation="tanh", recurrent_activation="sigmoid",
                 use_bias=True, kernel_initializer="glorot_uniform",
                 recurrent_initializer="orthogonal", bias_initializer="zeros",
                 dropout=0.0, recurrent_dropout=0.0, reset_after=True,
                 return_sequences=False, return_state=False, go_backwards=False,
                 stateful=False, seed=None, backend="auto", unroll=False, name=None,
                 input_shape=None):
        super().__init__(units, activation=activation,
                         recurrent_activation=recurrent_activation, use_bias=use_bias,
                         kernel_initializer=kernel_initializer,
                         recurrent_initializer=recurrent_initializer,
                         bias_initializer=bias_initializer, dropout=dropout,
                         recurrent_dropout=recurrent_dropout,
                         return_sequences=return_sequences, return_state=return_state,
                         go_backwards=go_backwards, stateful=stateful, seed=seed,
                         backend=backend, unroll=unroll, name=name, input_shape=input_shape)
        self.reset_after = _check_bool("reset_after", reset_after)

    def _bias_shape(self):
        gh = 3 * self.units
        return (2, gh) if self.reset_after else (gh,)

    def get_config(self):
        cfg = super().get_config()
        cfg.update(recurrent_activation=self.recurrent_activation,
                   reset_after=self.reset_after)
        return cfg
