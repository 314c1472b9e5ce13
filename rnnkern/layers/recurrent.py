"""Keras-shaped recurrent layers on NumPy arrays: SimpleRNN, LSTM, GRU — the
front door of the compiled kernels.

Shape legend (as everywhere in rnnkern):

    N  batch          T  timesteps        C  input features
    H  units          G  gates: SimpleRNN 1, LSTM 4 (i, f, c, o), GRU 3 (z, r, h)

A layer holds Keras' weights, in Keras' layout and ``get_weights()`` order:

    kernel            [C, G*H]
    recurrent_kernel  [H, G*H]
    bias              [G*H], or [2, G*H] for GRU reset_after=True (row 0 input
                      bias, row 1 recurrent bias); absent with use_bias=False

and calls ``rnnkern.ops`` (forward and BPTT) on one backend
(``rnnkern.backends``). Everything is computed in float32: inputs of any real
floating dtype are converted; the weights are stored as float32. ``precision``
(rnnkern's own argument, in ``get_config`` only when not the default) picks the
arithmetic: "fp32" (default); "tf32" (opt-in: the GPU backends' tensor-core
GEMMs take one TF32 product, about 5e-4 normwise; the CPU runs fp32); "bf16"
(the kernel and recurrent kernel rounded to bfloat16, sums, states and
gradients fp32; the CPU backends round the products' other operands too and
use vdpbf16ps where the CPU has AVX512_BF16; about 1e-3..8e-3 normwise; the
layer keeps float32 weights, so training is mixed precision).

Calling: ``layer(x, initial_state=None, mask=None, training=None)`` with x
[N, T, C]; returns y ([N, T, H] with return_sequences, else [N, H]) or, with
return_state, the list ``[y, h]`` (``[y, h, c]`` for LSTM). Keras 3 returns a
tuple there; rnnkern returns a list, which unpacks the same way.

``training``: None (default) keeps what BPTT needs so that ``backward()`` can
follow, without dropout (Keras' default outside ``fit``); True also applies
dropout (below); False is pure inference: nothing is kept and ``backward()``
raises.

``backward(d_output, d_states=None)`` differentiates this thread's last call: it
returns dx [N, T, C] and REPLACES ``grads`` (aligned with ``get_weights()``) and
``state_grads`` (aligned with the ``initial_state`` the call was given, else
None). Under the Layer contract (``rnnkern.layers.base``), ``forward`` /
``backward_from`` take and return the states as inputs and outputs: d_inputs is
dx, or ``[dx, dh0(, dc0)]`` when the call was given an initial state.

Weights: ``layer.kernel``, ``layer.recurrent_kernel`` and ``layer.bias`` are
READ-ONLY float32 arrays. Change them with ``set_weights`` or by assignment
(``layer.kernel = layer.kernel - lr * layer.grads[0]``); an in-place update
(``layer.kernel -= ...``) raises. That is what lets a layer pack its kernels for
the compiled code once and reuse them for every call until a weight is
assigned (see ``rnnkern.ops.pack``). On a GPU backend the packed weights are
on the device; under a model's ``fit`` they stay there and the optimizer
updates them there (``rnnkern.models``), the host arrays downloading when read.

Dropout, with ``training=True`` only, exactly as Keras 3: every mask is drawn
once per call (from the layer's ``seed``), is the same at every timestep, and
keeps an entry with probability 1 - rate, scaled by 1/(1 - rate).

- ``recurrent_dropout == 0``: ``dropout`` is one input mask [N, C] shared by
  all gates (Keras' default implementation), applied to x.
- ``recurrent_dropout > 0`` (Keras then runs its cells' implementation=1):
  LSTM and GRU draw one INDEPENDENT mask per gate, recurrent [G, N, H] (gates
  i, f, c, o / z, r, h) when 0 < recurrent_dropout < 1 and input [G, N, C]
  when 0 < dropout < 1; gate g reads (x ⊙ d_g) W_g and (h_prev ⊙ m_g) U_g
  (GRU reset_after: r * ((h_prev ⊙ m_h) U_h + b_rec_h); GRU's update
  z * h_prev + (1 - z) * hh and LSTM's c_prev are never dropped). A rate of 1
  drops nothing there, as in Keras. SimpleRNN has one recurrent mask [N, H]
  and one input mask [N, C], applied whenever the rate is > 0 (rate 1 drops
  every entry). The masks go to the fused kernels (``rnnkern.ops.rnn_forward``'s
  ``input_masks`` / ``recurrent_masks``), forward and BPTT alike.
"""
from __future__ import annotations

import numbers

import numpy as np

from .. import initializers as _inits
from .. import ops
from .._common import ACTIVATIONS, GATES, N_STATES
from .._device_math import DeviceVec
from ..backends import GpuWeights, get_backend
from ..options import RnnOptions
from ..config import floatx, make_rng
from ..utils.memory import check_memory as _check_memory
from .base import (Layer, WeightDict, check_bool, check_positive_int, check_training, float_array,
                   weight_property)

__all__ = ["SimpleRNN", "LSTM", "GRU"]


# A layer keeps its packed kernels up to this size (LSTM with input_dim = units:
# up to ~2000 units), and packs them per call beyond it.
_PACK_KEEP_BYTES = 256 << 20


def checked_input_shape(input_shape, features, name, legend="(batch, timesteps, features)"):
    """``input_shape`` as a tuple of the legend's rank, ending in a positive number
    of features (``features`` when the layer ``name`` is built for it, else None);
    ValueError otherwise. Shared with rnnkern.layers.rnn."""
    rank = legend.count(",") + 1
    try:
        shape = tuple(input_shape)
    except TypeError:
        raise ValueError(f"input_shape must be {legend}, got {input_shape!r}") from None
    if len(shape) != rank:
        raise ValueError(f"input_shape must be {legend}, got {shape}")
    c = shape[-1]
    if isinstance(c, (bool, np.bool_)) or not isinstance(c, (int, np.integer)) or c <= 0:
        raise ValueError(f"input_shape must end with a positive number of features, "
                         f"got {shape}")
    if features is not None and c != features:
        raise ValueError(f"layer {name!r} is already built for {features} input features, "
                         f"got input_shape {shape}")
    return shape


def standardized_sequence(x, features, name):
    """x as float32 [N, T >= 1, C >= 1], checked (``features``: the C layer ``name``
    is built for, else None). Shared with rnnkern.layers.rnn."""
    x = float_array(x, "x", "float32 of shape (batch, timesteps, features)")
    if x.ndim != 3:
        raise ValueError(f"x must be 3-D (batch, timesteps, features), got shape {x.shape}")
    if x.shape[1] == 0:
        raise ValueError(f"x has 0 timesteps (shape {x.shape}); "
                         "expected (batch, timesteps >= 1, features)")
    if x.shape[2] == 0:
        raise ValueError(f"x has 0 features (shape {x.shape}); "
                         "expected (batch, timesteps, features >= 1)")
    if features is not None and x.shape[2] != features:
        raise ValueError(f"x has {x.shape[2]} features but layer {name!r} was built "
                         f"for {features} (x: (batch, timesteps, features))")
    return x


def output_mask(mask, return_sequences, return_state, n_states):
    """Keras' mask of a recurrent layer's outputs: the input mask with
    return_sequences, else None (and None for each of the ``n_states`` returned
    states)."""
    if isinstance(mask, (list, tuple)):
        mask = mask[0]
    out = mask if return_sequences else None
    return [out] + [None] * n_states if return_state else out


class _Empty:
    """Marker cache of a call with batch size 0 (nothing to run)."""


class _Ctx:
    """What the backward of one call needs."""
    __slots__ = ("cache", "x_shape", "out_shape", "drop", "given", "backend")

    def __init__(self, cache, x_shape, out_shape, drop, given, backend):
        self.cache, self.x_shape, self.out_shape = cache, x_shape, out_shape
        self.drop, self.given, self.backend = drop, given, backend


def _vec(a):
    """A GpuWeights array (a DeviceArray, or a DeviceVec the optimizer made) as a DeviceVec."""
    return a if isinstance(a, DeviceVec) else DeviceVec(a)


def _weight_grad(g, dtype):
    """A weight gradient as the backend gave it: a host array, or (a fit step's
    backward on a GPU backend, _device_training) a DeviceVec left on the device."""
    if isinstance(g, np.ndarray):
        return g if g.dtype == dtype else g.astype(dtype)
    if isinstance(g, DeviceVec):
        return g
    # The extension is imported where a device value can exist, never at import time
    # (rnnkern imports without it: tests/test_imports.py).
    from .. import _core
    if isinstance(g, _core.DeviceArray):
        return DeviceVec(g)
    return np.asarray(g, dtype)


class _RNN(Layer):
    """Common machinery of the three layers (not public)."""

    kernel = weight_property("kernel", "[C, G*H] float32, read-only (assign to change).")
    recurrent_kernel = weight_property(
        "recurrent_kernel", "[H, G*H] float32, read-only (assign to change).")
    bias = weight_property("bias", "The bias (None with use_bias=False), read-only.")

    _call_args = ("initial_state", "mask", "training")
    _tensor_kwargs = ("initial_state",)
    _call_has_mask_arg = True
    _supports_masking = True

    _cell = None            # "simple_rnn" | "lstm" | "gru"
    # Keras' cells apply a dropout when 0 < rate < 1 (LSTM, GRU); SimpleRNNCell
    # whenever rate > 0 (rate 1 drops every entry).
    _dropout_at_one = False

    def __init__(self, units, activation="tanh", recurrent_activation="sigmoid", use_bias=True,
                 kernel_initializer="glorot_uniform", recurrent_initializer="orthogonal",
                 bias_initializer="zeros", dropout=0.0, recurrent_dropout=0.0,
                 return_sequences=False, return_state=False, go_backwards=False,
                 stateful=False, seed=None, backend="auto", unroll=False,
                 kernel_regularizer=None, recurrent_regularizer=None, bias_regularizer=None,
                 kernel_constraint=None, recurrent_constraint=None, bias_constraint=None,
                 zero_output_for_mask=False, use_cudnn="auto", precision="fp32", **kwargs):
        self.units = check_positive_int("units", units)
        self.activation = self._check_activation("activation", activation)
        self.recurrent_activation = self._check_activation("recurrent_activation",
                                                           recurrent_activation)
        self.use_bias = check_bool("use_bias", use_bias)
        self.kernel_initializer = _inits.get(kernel_initializer)
        self.recurrent_initializer = _inits.get(recurrent_initializer)
        self.bias_initializer = _inits.get(bias_initializer)
        for arg, v in (("kernel_regularizer", kernel_regularizer),
                       ("recurrent_regularizer", recurrent_regularizer),
                       ("bias_regularizer", bias_regularizer),
                       ("kernel_constraint", kernel_constraint),
                       ("recurrent_constraint", recurrent_constraint),
                       ("bias_constraint", bias_constraint)):
            if v is not None:
                raise NotImplementedError(f"{arg} is not supported by rnnkern yet")
        for arg, v in (("dropout", dropout), ("recurrent_dropout", recurrent_dropout)):
            if isinstance(v, bool) or not isinstance(v, numbers.Real):
                raise TypeError(f"{arg} must be a float in [0, 1], got {v!r}")
        # Keras clips both rates into [0, 1]
        self.dropout = min(1.0, max(0.0, float(dropout)))
        self.recurrent_dropout = min(1.0, max(0.0, float(recurrent_dropout)))
        self.return_sequences = check_bool("return_sequences", return_sequences)
        self.return_state = check_bool("return_state", return_state)
        self.go_backwards = check_bool("go_backwards", go_backwards)
        self.stateful = check_bool("stateful", stateful)
        self.unroll = check_bool("unroll", unroll)  # accepted for Keras; no effect
        # Keras' zero_output_for_mask (Bidirectional sets it): masked steps output
        # zeros instead of repeating the previous output
        self.zero_output_for_mask = check_bool("zero_output_for_mask", zero_output_for_mask)
        self.use_cudnn = use_cudnn  # accepted for Keras; the backend decides
        if seed is not None and (isinstance(seed, (bool, np.bool_))
                                 or not isinstance(seed, (int, np.integer)) or seed < 0):
            raise ValueError(f"seed must be None or a non-negative int, got {seed!r}")
        self.seed = None if seed is None else int(seed)
        # Two independent streams: weight initialisation and dropout masks.
        self._init_rng = make_rng(self.seed, 0)
        self._dropout_rng = make_rng(self.seed, 1)
        self._backend = get_backend(backend)
        # rnnkern's own: the arithmetic (rnnkern.options.PRECISIONS), checked here
        self.precision = RnnOptions(self._cell, precision=precision).precision
        super().__init__(**kwargs)
        if self._batch_input_shape is not None and len(self._batch_input_shape) != 3:
            raise ValueError(f"input_shape must be (timesteps, features), got "
                             f"{self._batch_input_shape[1:]!r}")
        self._packed = None       # kernels packed for self._backend (see _pack_worth_keeping)
        self._states = None       # stateful: the kept states, list of [N, H]
        # the weights; on a GPU backend under fit, pending on the device (WeightDict)
        self._params = WeightDict()

    def __getstate__(self):
        # the packed weights are a compiled object that cannot be pickled; it is
        # rebuilt on demand
        self._params.fetch_all()   # weights pending on the device come home first
        state = super().__getstate__()
        state["_packed"] = None
        return state

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
        backend = get_backend(name)
        self._params.fetch_all()   # the device copies go with the old backend
        self._backend = backend
        self._tls.last = None  # a cache belongs to the backend that made it
        self._packed = None

    @property
    def _gates(self):
        return GATES[self._cell]

    @property
    def _n_states(self):
        return N_STATES[self._cell]

    @property
    def state_size(self):
        return [self.units] * self._n_states

    @property
    def state_grads(self):
        """Gradients of the initial state of this thread's last backward
        (aligned with the ``initial_state`` the call was given, else None)."""
        return getattr(self._tls, "state_grads", None)

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
        cfg = super().get_config()
        cfg.update(units=self.units, activation=self.activation, use_bias=self.use_bias,
                   kernel_initializer=_inits.serialize(self.kernel_initializer),
                   recurrent_initializer=_inits.serialize(self.recurrent_initializer),
                   bias_initializer=_inits.serialize(self.bias_initializer),
                   dropout=self.dropout, recurrent_dropout=self.recurrent_dropout,
                   return_sequences=self.return_sequences, return_state=self.return_state,
                   go_backwards=self.go_backwards, stateful=self.stateful, seed=self.seed,
                   unroll=self.unroll, zero_output_for_mask=self.zero_output_for_mask)
        if self.precision != "fp32":   # rnnkern's own argument: only where it was given
            cfg["precision"] = self.precision
        return cfg

    def __repr__(self):
        return (f"{type(self).__name__}(units={self.units}, name={self.name!r}, "
                f"backend={self.backend!r}, built={self.built})")

    # ---------------------------------------------------------------- weights

    def _check_input_shape(self, input_shape):
        return checked_input_shape(input_shape, self._input_dim(), self.name)

    def _input_dim(self):
        """C, from the kernel's shape (without downloading a weight pending on the device)."""
        return self._params.raw("kernel").shape[0] if self.built else None

    def build(self, input_shape):
        """Create the weights for inputs of shape (N?, T?, C)."""
        shape = self._check_input_shape(input_shape)
        if self.built:
            return
        c = int(shape[-1])
        shapes = self._expected_shapes(c)
        n_params = sum(int(np.prod(s, dtype=np.float64)) for s in shapes)
        # float32 weights, plus the float64 normal matrix and Q of the orthogonal init
        _check_memory(4 * n_params + 24 * int(np.prod(shapes[1], dtype=np.float64)),
                      f"building {type(self).__name__}(units={self.units}) for {c} features")
        kernel = _inits.call(self.kernel_initializer, shapes[0], self._init_rng)
        recurrent = _inits.call(self.recurrent_initializer, shapes[1], self._init_rng)
        named = dict(kernel=kernel, recurrent_kernel=recurrent)
        if self.use_bias:
            named["bias"] = self._init_bias()
        self._store_weights(named)
        self._build_shapes = shape
        self.built = True

    def _init_bias(self):
        return _inits.call(self.bias_initializer, self._bias_shape(), self._init_rng)

    def _build_from_weights(self, weights):
        """set_weights on an unbuilt layer: the input dim from the kernel's shape,
        every shape checked, then stored."""
        names = self._weight_names()
        if len(weights) != len(names):
            raise ValueError(f"set_weights: layer {self.name!r} has {len(names)} weights "
                             f"{names}, got a list of {len(weights)}")
        k = np.shape(weights[0])
        gh = self._gates * self.units
        if len(k) != 2 or k[1] != gh or k[0] < 1:
            raise ValueError(f"set_weights: kernel has shape {tuple(k)}, expected "
                             f"(input_dim, {gh}) for units={self.units}")
        self._params = WeightDict({n: np.zeros(s, floatx())
                                   for n, s in zip(names, self._expected_shapes(k[0]))})
        try:
            self.built = True
            Layer.set_weights(self, weights)
        except Exception:
            self._params, self.built = {}, False
            raise

    def set_weights(self, weights):
        """Set [kernel, recurrent_kernel(, bias)] (Keras layout). Builds an
        unbuilt layer from the kernel's shape; every shape is checked."""
        names = self._weight_names()
        if isinstance(weights, np.ndarray) or not isinstance(weights, (list, tuple)):
            raise TypeError(f"set_weights expects a list of {len(names)} arrays {names}, "
                            f"got {type(weights).__name__}")
        if not self.built:
            return self._build_from_weights(list(weights))
        return super().set_weights(weights)

    def _pack_worth_keeping(self):
        """Kept packed weights take about twice the kernels' memory (two layouts of
        each: the input kernel for the projection GEMM and for the fused step, the
        recurrent kernel for the forward and the backward); beyond _PACK_KEEP_BYTES
        the layer packs per call instead, where packing costs little next to the call."""
        if getattr(self._backend, "name", self._backend) in ("cuda", "cuda-emu"):
            return True   # the weights on the device: one upload per assignment, not per call
        return 2 * (self.kernel.nbytes + self.recurrent_kernel.nbytes) <= _PACK_KEEP_BYTES

    def _weights_changed(self):
        self._params.fetch_all()   # a weight pending on the device, before its copy goes
        self._packed = None  # packed from the old weights

    # ------------------------------------------- weights kept on the device by fit
    # rnnkern.models' trainer (models/training.py) sets _device_training around a
    # train step: the forward then asks the backward to leave the weight gradients
    # on the device, the optimizer updates the GpuWeights' arrays there
    # (_device_weights in, _adopt_device_weights out) and the host copies wait,
    # pending, until somebody reads them.
    _device_training = False
    _grad_out = None    # {"dW", "dU", "db"} -> where the step's backward writes them

    def _device_weights(self):
        """name -> DeviceVec of the weights as the device holds them (the
        GpuWeights the calls use), or None where they are not on a device."""
        p = self._packed
        if not isinstance(p, GpuWeights):
            return None
        out = {"kernel": _vec(p.W), "recurrent_kernel": _vec(p.U)}
        if self.use_bias:
            if p.b is None:
                return None
            out["bias"] = _vec(p.b)
        return out

    def _adopt_device_weights(self, named):
        """The optimizer's new device arrays (name -> DeviceVec of the weight's
        shape) become the weights: the calls use them from now on, the host
        copies download on first read."""
        p = self._packed
        if not isinstance(p, GpuWeights):
            raise RuntimeError(f"layer {self.name!r} keeps no weights on a device")
        q = GpuWeights()
        q.backend, q.cell, q.reset_after = p.backend, p.cell, p.reset_after
        q.W, q.U, q.b = p.W, p.U, p.b
        attr = {"kernel": "W", "recurrent_kernel": "U", "bias": "b"}
        for n, v in named.items():
            if v.shape != self._params.raw(n).shape:
                raise ValueError(f"{n} must have shape {self._params.raw(n).shape}, got "
                                 f"{v.shape}")
            setattr(q, attr[n], v)
        self._packed = q
        for n, v in named.items():
            self._params.set_pending(n, v)

    def _call_weights(self):
        """(kernel, recurrent_kernel, bias) for a call: the stored arrays without a
        download where the device copies are pending (the call reads those, packed)."""
        if self._params.pending and isinstance(self._packed, GpuWeights):
            raw = self._params.raw
            return raw("kernel"), raw("recurrent_kernel"), \
                (raw("bias") if self.use_bias else None)
        return self.kernel, self.recurrent_kernel, self.bias

    def _assign_weight(self, name, value):
        if name == "bias" and self.built and not self.use_bias:
            if value is None:
                return
            raise ValueError(f"layer {self.name!r} has use_bias=False: it has no bias")
        super()._assign_weight(name, value)

    def compute_output_shape(self, input_shape, initial_state_shape=None):
        n, t = input_shape[0], input_shape[1]
        out = (n, t, self.units) if self.return_sequences else (n, self.units)
        if self.return_state:
            return [out] + [(n, self.units)] * self._n_states
        return out

    def compute_mask(self, inputs, mask=None):
        return output_mask(mask, self.return_sequences, self.return_state, self._n_states)

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

    def _standardize(self, x):
        return standardized_sequence(x, self._input_dim(), self.name)

    def forward(self, x, training=None, mask=None, initial_state=None, dropout_masks=None):
        """One call on standardized x [N, T, C]: returns (outputs, ctx).
        ``dropout_masks`` (internal: the cells of rnnkern.layers.rnn, which keep
        their masks across single-step calls as Keras' cells do): the triple of
        ``_draw_dropout`` to use instead of drawing one."""
        training = check_training(training)
        n, t, c = x.shape
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
            states0 = [np.zeros((n, h_units), x.dtype) for _ in range(self._n_states)]

        keep = training is not False
        # a lower bound of what the call allocates: x, y and (training) the saved
        # gates and states of every step; refused only when it cannot fit at all
        need = 4 * n * t * (c + h_units * (1 + (g + 2 if keep else 0)))
        _check_memory(need, f"{type(self).__name__}(units={h_units}) on x {x.shape}")

        if dropout_masks is None:
            dropout_masks = self._draw_dropout(training, n, c, x.dtype)
        drop, input_masks, recurrent_masks = dropout_masks
        if drop is not None:
            x = x * drop[:, None, :]

        out_shape = (n, t, h_units) if self.return_sequences else (n, h_units)
        if n == 0:
            y = np.zeros(out_shape, x.dtype)
            states = [np.zeros((0, h_units), x.dtype) for _ in range(self._n_states)]
            cache = _Empty()
        else:
            h0 = states0[0]
            c0 = states0[1] if self._cell == "lstm" else None
            reset_after = getattr(self, "reset_after", True)
            if self._packed is None and self._pack_worth_keeping():
                self._packed = ops.pack(self._cell, self.recurrent_kernel, reset_after,
                                        self._backend, self.kernel, self.bias)
            W, U, b = self._call_weights()
            # one checked options value (RnnOptions interns: made once per process)
            options = RnnOptions(self._cell, self.activation, self.recurrent_activation,
                                 reset_after, self.go_backwards, self.return_sequences, keep,
                                 self.precision)
            y, h, cT, cache = ops.rnn_forward(
                options, x, W, U, b, h0, c0, mask,
                backend=self._backend, packed=self._packed, input_masks=input_masks,
                recurrent_masks=recurrent_masks)
            if keep and self._device_training and isinstance(self._packed, GpuWeights):
                # the gradients into the optimizer's flat buffer where it gave one;
                # taken by this call only (a second call of the layer in the step
                # gets arrays of its own: the two are summed)
                out, self._grad_out = self._grad_out, None
                self._backend.keep_weight_grads(cache, out)
            y = np.asarray(y, dtype=x.dtype)
            h = np.asarray(h, dtype=x.dtype)
            if np.shares_memory(y, h):
                h = h.copy()
            states = [h]
            if self._cell == "lstm":
                states.append(np.asarray(cT, dtype=x.dtype))
        zero_mask = None
        if self.zero_output_for_mask and mask is not None:
            # Keras: masked steps output zeros (in processing order); the last
            # output is zeros when the last processed step is masked
            m = mask[:, ::-1] if self.go_backwards else mask
            zero_mask = m[:, :, None] if self.return_sequences else m[:, -1:]
            y = y * zero_mask
        if self.stateful:
            self._states = [s.copy() for s in states]
        ctx = None
        if keep:
            ctx = _Ctx(cache, (n, t, c), out_shape, (drop, zero_mask), given, self._backend)
        outputs = [y] + states if self.return_state else y
        return outputs, ctx

    def _infer_steps(self, x, mask, states):
        """Inference over some steps, for the wavefront (rnnkern/models/wavefront.py):
        x [N, t, C] float32 C-contiguous, N > 0, taken in this layer's processing
        order (reversed with go_backwards, as forward does), from ``states`` (None:
        zeros). Returns (y [N, t, H] in processing order, as the kernels give it:
        before zero_output_for_mask, a masked step repeating the previous output of
        this call, zeros before the call's first unmasked step; the states after)."""
        n = x.shape[0]
        if states is None:
            states = [np.zeros((n, self.units), x.dtype) for _ in range(self._n_states)]
        reset_after = getattr(self, "reset_after", True)
        if self._packed is None and self._pack_worth_keeping():
            self._packed = ops.pack(self._cell, self.recurrent_kernel, reset_after,
                                    self._backend, self.kernel, self.bias)
        W, U, b = self._call_weights()
        options = RnnOptions(self._cell, self.activation, self.recurrent_activation,
                             reset_after, self.go_backwards, True, False, self.precision)
        y, h, cT, _ = ops.rnn_forward(
            options, x, W, U, b, states[0],
            states[1] if self._cell == "lstm" else None, mask, backend=self._backend,
            packed=self._packed)
        y = np.asarray(y, dtype=x.dtype)
        h = np.asarray(h, dtype=x.dtype)
        states = [h.copy() if np.shares_memory(y, h) else h]
        if self._cell == "lstm":
            states.append(np.asarray(cT, dtype=x.dtype))
        return y, states

    def _draw_dropout(self, training, n, c, dtype):
        """The dropout masks of one call (see the module docstring, "Dropout"):
        (drop [N, C] applied to x, input_masks [G, N, C], recurrent_masks
        [G, N, H]), each None where not applied (all None unless training is True)."""
        g, h_units = self._gates, self.units
        drop = input_masks = recurrent_masks = None
        if training is True and self.recurrent_dropout > 0:
            # Keras' implementation=1 cells: one mask per gate (SimpleRNN: G = 1)
            if self._applies(self.dropout):
                input_masks = self._dropout_masks(self.dropout, (g, n, c), dtype)
            if self._applies(self.recurrent_dropout):
                recurrent_masks = self._dropout_masks(self.recurrent_dropout, (g, n, h_units),
                                                      dtype)
        elif training is True and self._applies(self.dropout):
            drop = self._dropout_masks(self.dropout, (n, c), dtype)
        return drop, input_masks, recurrent_masks

    def _applies(self, rate):
        """Whether Keras' cell applies a dropout of this rate: 0 < rate < 1 (LSTM,
        GRU), rate > 0 (SimpleRNN)."""
        return rate > 0 and (rate < 1 or self._dropout_at_one)

    def _dropout_masks(self, rate, shape, dtype):
        """Keras' dropout of ones: each entry kept with probability 1 - rate and
        then 1/(1 - rate), else 0; independent entries (one mask per gate when
        the shape starts with G)."""
        keep_prob = 1.0 - rate
        kept = self._dropout_rng.random(shape) < keep_prob
        return (kept / keep_prob if keep_prob > 0 else kept * 0.0).astype(dtype)

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
            a = float_array(s, f"initial_state[{i}]", f"float32 of shape (N, H) = "
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

    def _backward(self, ctx, d_output, d_states):
        """(dx, grads, dstates) of one call; d_output / d_states entries may be None."""
        n, t, c = ctx.x_shape
        h = self.units
        if d_output is None:
            dy = np.zeros(ctx.out_shape, floatx())
        else:
            dy = float_array(d_output, "d_output", f"float32 of shape {ctx.out_shape}")
            if dy.shape != ctx.out_shape:
                raise ValueError(f"d_output has shape {dy.shape}, expected {ctx.out_shape} "
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
                a = float_array(d, f"d_states[{i}]", f"float32 of shape {(n, h)}")
                if a.shape != (n, h):
                    raise ValueError(f"d_states[{i}] has shape {a.shape}, expected (N, H) = "
                                     f"{(n, h)}")
                ds[i] = a
        drop, zero_mask = ctx.drop
        if zero_mask is not None:
            dy = dy * zero_mask
        cache = ctx.cache
        if isinstance(cache, _Empty):
            dx = np.zeros((n, t, c), dy.dtype)
            grads = [np.zeros_like(w) for w in self.weights]
            dstates = [np.zeros((n, h), dy.dtype) for _ in range(k)]
        else:
            g = ops.rnn_backward(cache, dy, ds[0], ds[1] if k == 2 else None)
            dx = np.asarray(g.dx, dtype=dy.dtype)
            grads = [_weight_grad(g.dkernel, dy.dtype), _weight_grad(g.drecurrent_kernel, dy.dtype)]
            if self.use_bias:
                grads.append(_weight_grad(g.dbias, dy.dtype))
            dstates = [np.asarray(g.dh0, dy.dtype)]
            if k == 2:
                dstates.append(np.asarray(g.dc0, dy.dtype))
        if drop is not None:
            dx = dx * drop[:, None, :]
        return dx, grads, dstates

    def backward_from(self, ctx, d_outputs):
        if self.return_state:
            d_outputs = list(d_outputs)
            dx, grads, dstates = self._backward(ctx, d_outputs[0], d_outputs[1:])
        else:
            dx, grads, dstates = self._backward(ctx, d_outputs, None)
        return ([dx] + dstates if ctx.given else dx), grads

    def backward(self, d_output, d_states=None):
        """BPTT of this thread's last call. ``d_output`` has the output's shape;
        ``d_states`` (optional) is a list aligned with the states ([h] or [h, c]),
        entries may be None. Returns dx [N, T, C]; replaces ``grads`` and
        ``state_grads``."""
        ctx = self._last_ctx()
        dx, grads, dstates = self._backward(ctx, d_output, d_states)
        self._tls.grads = grads
        self._tls.state_grads = dstates if ctx.given else None
        return dx


class SimpleRNN(_RNN):
    """Fully-connected RNN (Keras' SimpleRNN): h_t = act(x_t W + b + h_{t-1} U).

    Arguments as Keras 3: units, activation="tanh", use_bias=True,
    kernel_initializer="glorot_uniform", recurrent_initializer="orthogonal",
    bias_initializer="zeros", dropout=0.0 (input mask [N, C]),
    recurrent_dropout=0.0 (recurrent mask [N, H]; both applied with
    training=True whenever the rate is > 0, Keras' SimpleRNNCell),
    return_sequences=False, return_state=False, go_backwards=False,
    stateful=False, seed=None (seeds the weight initialisation and the
    dropout masks), plus backend="auto" (any name of ``rnnkern.backends()``) and
    precision="fp32" (see the module docstring). See the module docstring for calling,
    ``backward`` and the weight layout.

    >>> model = rnnkern.models.Sequential([rnnkern.layers.Input((5, 3)),
    ...                                    rnnkern.layers.SimpleRNN(128)])
    """

    _cell = "simple_rnn"
    _dropout_at_one = True

    def __init__(self, units, activation="tanh", use_bias=True,
                 kernel_initializer="glorot_uniform", recurrent_initializer="orthogonal",
                 bias_initializer="zeros", dropout=0.0, recurrent_dropout=0.0,
                 return_sequences=False, return_state=False, go_backwards=False,
                 stateful=False, seed=None, backend="auto", unroll=False, **kwargs):
        super().__init__(units, activation=activation, use_bias=use_bias,
                         kernel_initializer=kernel_initializer,
                         recurrent_initializer=recurrent_initializer,
                         bias_initializer=bias_initializer, dropout=dropout,
                         recurrent_dropout=recurrent_dropout,
                         return_sequences=return_sequences, return_state=return_state,
                         go_backwards=go_backwards, stateful=stateful, seed=seed,
                         backend=backend, unroll=unroll, **kwargs)


class LSTM(_RNN):
    """Long Short-Term Memory layer (Keras' LSTM), gates i, f, c, o:

        z = x_t W + h_{t-1} U + b;  i, f, o = ract(z_i, z_f, z_o);  g = act(z_c)
        c_t = f c_{t-1} + i g;      h_t = o act(c_t)

    Arguments as Keras 3: units, activation="tanh", recurrent_activation=
    "sigmoid", use_bias=True, kernel_initializer="glorot_uniform",
    recurrent_initializer="orthogonal" (on the whole [H, 4H] matrix),
    bias_initializer="zeros", unit_forget_bias=True (the forget-gate block of
    the bias is initialised to ones), dropout=0.0, recurrent_dropout=0.0
    (with recurrent_dropout > 0, one independent mask per gate i, f, c, o for
    each, as Keras' implementation=1; c_prev is never dropped),
    return_sequences=False, return_state=False (states [h, c]),
    go_backwards=False, stateful=False, seed=None, plus backend="auto" and
    precision="fp32". See the module docstring ("Dropout").
    """

    _cell = "lstm"

    def __init__(self, units, activation="tanh", recurrent_activation="sigmoid",
                 use_bias=True, kernel_initializer="glorot_uniform",
                 recurrent_initializer="orthogonal", bias_initializer="zeros",
                 unit_forget_bias=True, dropout=0.0, recurrent_dropout=0.0,
                 return_sequences=False, return_state=False, go_backwards=False,
                 stateful=False, seed=None, backend="auto", unroll=False, **kwargs):
        self.unit_forget_bias = check_bool("unit_forget_bias", unit_forget_bias)
        super().__init__(units, activation=activation,
                         recurrent_activation=recurrent_activation, use_bias=use_bias,
                         kernel_initializer=kernel_initializer,
                         recurrent_initializer=recurrent_initializer,
                         bias_initializer=bias_initializer, dropout=dropout,
                         recurrent_dropout=recurrent_dropout,
                         return_sequences=return_sequences, return_state=return_state,
                         go_backwards=go_backwards, stateful=stateful, seed=seed,
                         backend=backend, unroll=unroll, **kwargs)

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
    bias_initializer="zeros", dropout=0.0, recurrent_dropout=0.0 (with
    recurrent_dropout > 0, one independent mask per gate z, r, h for each, as
    Keras' implementation=1; the h_prev of the update z h_{t-1} + (1 - z) hh
    is never dropped), reset_after=True (bias [2, 3H]: input and recurrent
    bias rows; [3H] when False), return_sequences=False, return_state=False
    (states [h]), go_backwards=False, stateful=False, seed=None, plus
    backend="auto" and precision="fp32". See the module docstring ("Dropout").
    """

    _cell = "gru"

    def __init__(self, units, activation="tanh", recurrent_activation="sigmoid",
                 use_bias=True, kernel_initializer="glorot_uniform",
                 recurrent_initializer="orthogonal", bias_initializer="zeros",
                 dropout=0.0, recurrent_dropout=0.0, reset_after=True,
                 return_sequences=False, return_state=False, go_backwards=False,
                 stateful=False, seed=None, backend="auto", unroll=False, **kwargs):
        self.reset_after = check_bool("reset_after", reset_after)
        super().__init__(units, activation=activation,
                         recurrent_activation=recurrent_activation, use_bias=use_bias,
                         kernel_initializer=kernel_initializer,
                         recurrent_initializer=recurrent_initializer,
                         bias_initializer=bias_initializer, dropout=dropout,
                         recurrent_dropout=recurrent_dropout,
                         return_sequences=return_sequences, return_state=return_state,
                         go_backwards=go_backwards, stateful=stateful, seed=seed,
                         backend=backend, unroll=unroll, **kwargs)

    def _bias_shape(self):
        gh = 3 * self.units
        return (2, gh) if self.reset_after else (gh,)

    def get_config(self):
        cfg = super().get_config()
        cfg.update(recurrent_activation=self.recurrent_activation,
                   reset_after=self.reset_after)
        return cfg
