"""A recurrent layer call's options as one frozen value, checked once.

``RnnOptions`` holds what a layer's call asks of the kernels, beside its arrays:

    cell                  "simple_rnn" | "lstm" | "gru"
    activation            one of ``ACTIVATIONS`` (default "tanh")
    recurrent_activation  one of ``ACTIVATIONS`` (default "sigmoid"; LSTM and GRU)
    reset_after           GRU's form (default True)
    go_backwards          process t = T-1 ... 0 (default False)
    return_sequences      y [N, T, H] rather than the last output [N, H] (default True)
    training              keep what BPTT needs (default True)
    precision             "fp32" (default), "tf32" or "bf16" (``PRECISIONS``)

It is made once per distinct value (``RnnOptions(...)`` returns the same object
for the same options: equal options are identical), checked when made, and
immutable. The compiled backends read it as one ``_core.Options``, parsed once
when it is made (``.core``; None where the extension is not built). It travels
as one argument from the layers and adapters through ``rnnkern.ops.rnn_forward``
and the backends to the kernels' ``RnnConfig`` (csrc/include/rnnkern/shapes.h).
"""
from __future__ import annotations

import threading

from ._common import ACTIVATIONS, CELLS

#: The arithmetic a call may ask for: "fp32" (the default; exact float32
#: products), "tf32" (opt-in: one TF32 product where a backend has one; the
#: backends without one run fp32), "bf16" (the kernel and recurrent kernel
#: rounded to bfloat16 once a call and every product's other operand as the
#: product reads it, sums, states and gradients fp32: rnnkern.reference's rule;
#: every backend runs it).
PRECISIONS = ("fp32", "tf32", "bf16")

FIELDS = ("cell", "activation", "recurrent_activation", "reset_after", "go_backwards",
          "return_sequences", "training", "precision")

_memo = {}            # the options' key -> the one RnnOptions of that value
_memo_lock = threading.Lock()


def _check(cell, activation, recurrent_activation, precision):
    for name, v, allowed in (("cell", cell, CELLS), ("activation", activation, ACTIVATIONS),
                             ("recurrent_activation", recurrent_activation, ACTIVATIONS),
                             ("precision", precision, PRECISIONS)):
        if not isinstance(v, str) or v not in allowed:
            raise ValueError(f"{name} must be one of {list(allowed)}, got {v!r}")


def _known(changes):
    unknown = sorted(set(changes) - set(FIELDS))
    if unknown:
        raise TypeError(f"unknown option {unknown[0]!r}; the options are {list(FIELDS)}")


class RnnOptions:
    """One recurrent layer call's options (see the module docstring), frozen."""
    __slots__ = FIELDS + ("core",)

    def __new__(cls, cell, activation="tanh", recurrent_activation="sigmoid", reset_after=True,
                go_backwards=False, return_sequences=True, training=True, precision="fp32"):
        key = (cell, activation, recurrent_activation, reset_after, go_backwards,
               return_sequences, training, precision)
        try:   # equal keys find the one object (True == 1 == np.True_, as dict keys too)
            return _memo[key]
        except (KeyError, TypeError):   # new, or not hashable (then _check says why)
            pass
        key = (cell, activation, recurrent_activation, bool(reset_after), bool(go_backwards),
               bool(return_sequences), bool(training), precision)
        hit = _memo.get(key) if isinstance(cell, str) else None
        if hit is not None:
            return hit
        _check(cell, activation, recurrent_activation, precision)
        self = object.__new__(cls)
        for name, v in zip(FIELDS, key):
            object.__setattr__(self, name, v)
        try:   # the compiled kernels' form, parsed once (None without the extension)
            from . import _core
            core = _core.Options(*key)
        except ImportError:
            core = None
        object.__setattr__(self, "core", core)
        with _memo_lock:
            return _memo.setdefault(key, self)

    @classmethod
    def of(cls, options, **changes):
        """``options`` itself (an RnnOptions), with ``changes`` applied when given;
        or, for a cell name, ``RnnOptions(cell, **changes)``: what the backends'
        ``forward`` takes as its first argument."""
        if type(options) is cls:
            return options.replace(**changes) if changes else options
        try:
            return cls(options, **changes)
        except TypeError:
            _known(changes)   # an unknown option: say which
            raise

    def replace(self, **changes):
        """These options with some fields changed (a ValueError names a bad value)."""
        _known(changes)
        return RnnOptions(**{**self.as_dict(), **changes})

    def as_dict(self):
        return {name: getattr(self, name) for name in FIELDS}

    def __setattr__(self, name, value):
        raise AttributeError("RnnOptions is frozen: use .replace(...) for other options")

    def __delattr__(self, name):
        raise AttributeError("RnnOptions is frozen")

    def __reduce__(self):
        return (RnnOptions, tuple(getattr(self, name) for name in FIELDS))

    def __repr__(self):
        return "RnnOptions(" + ", ".join(f"{n}={getattr(self, n)!r}" for n in FIELDS) + ")"
