"""Learning rate schedules, as Keras 3's ``keras.optimizers.schedules``
(keras/src/optimizers/schedules/learning_rate_schedule.py).

A schedule is a callable ``schedule(step) -> float32 learning rate``; an
optimizer given one as its ``learning_rate`` evaluates it at its iteration
count before every update. Values are computed in float32, as Keras computes
them from a float ``initial_learning_rate``::

    lr = ExponentialDecay(0.1, decay_steps=1000, decay_rate=0.96)
    opt = rnnkern.optimizers.SGD(learning_rate=lr)

``LearningRateSchedule`` is the base class (``__call__``, ``get_config``,
``from_config``); ``serialize`` / ``deserialize`` write and read Keras'
``{"module", "class_name", "config", "registered_name"}`` dicts.
"""
from __future__ import annotations

import math

import numpy as np

__all__ = ["LearningRateSchedule", "ExponentialDecay", "PiecewiseConstantDecay",
           "PolynomialDecay", "InverseTimeDecay", "CosineDecay", "CosineDecayRestarts",
           "serialize", "deserialize"]

_F = np.float32


def _step(step):
    """The step as float32 (an int, a NumPy scalar or a 0-d array)."""
    return _F(np.asarray(step).item() if np.ndim(step) == 0 else step)


class LearningRateSchedule:
    """Base class of the learning rate schedules.

    Subclasses implement ``__call__(step)`` (the learning rate at optimizer
    step ``step``) and ``get_config()``; ``from_config(config)`` is
    ``cls(**config)``.

    Example::

        class Halving(LearningRateSchedule):
            def __init__(self, lr): self.lr = lr
            def __call__(self, step): return self.lr / (step + 1)
    """

    def __call__(self, step):
        raise NotImplementedError(
            f"Learning rate schedule '{self.__class__.__name__}' must override "
            "`__call__(self, step)`.")

    def get_config(self):
        raise NotImplementedError(
            f"Learning rate schedule '{self.__class__.__name__}' must override "
            "`get_config()` in order to be serializable.")

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        try:
            args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        except NotImplementedError:
            args = ""
        return f"{type(self).__name__}({args})"


def _check_positive(name, value):
    if value <= 0:
        raise ValueError(f"Argument `{name}` must be > 0. Received: {name}={value}")


class ExponentialDecay(LearningRateSchedule):
    """``initial_learning_rate * decay_rate ** (step / decay_steps)``; with
    ``staircase=True`` the exponent is floored.

    Args:
        initial_learning_rate: float, the initial learning rate.
        decay_steps: int > 0.
        decay_rate: float.
        staircase: bool, decay at discrete intervals.
        name: str, defaults to ``"ExponentialDecay"``.

    Example: ``ExponentialDecay(0.1, decay_steps=100, decay_rate=0.5)(100) == 0.05``
    """

    def __init__(self, initial_learning_rate, decay_steps, decay_rate, staircase=False,
                 name="ExponentialDecay"):
        self.initial_learning_rate = initial_learning_rate
        self.decay_steps = decay_steps
        self.decay_rate = decay_rate
        self.staircase = staircase
        self.name = name
        _check_positive("decay_steps", decay_steps)

    def __call__(self, step):
        p = _step(step) / _F(self.decay_steps)
        if self.staircase:
            p = np.floor(p)
        return _F(self.initial_learning_rate) * np.power(_F(self.decay_rate), p)

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate,
                "decay_steps": self.decay_steps, "decay_rate": self.decay_rate,
                "staircase": self.staircase, "name": self.name}


class PiecewiseConstantDecay(LearningRateSchedule):
    """``values[0]`` while ``step <= boundaries[0]``, ``values[1]`` while
    ``step <= boundaries[1]``, ..., ``values[-1]`` after ``boundaries[-1]``.

    Args:
        boundaries: list of increasing step numbers.
        values: list of learning rates, one more than ``boundaries``.
        name: str, defaults to ``"PiecewiseConstant"``.

    Example: ``PiecewiseConstantDecay([10], [1.0, 0.5])(11) == 0.5``
    """

    def __init__(self, boundaries, values, name="PiecewiseConstant"):
        if len(boundaries) != len(values) - 1:
            raise ValueError(
                "The length of boundaries should be 1 less than the length of values. "
                f"Received: boundaries={boundaries} of length {len(boundaries)}, and "
                f"values={values} of length {len(values)}.")
        self.boundaries = boundaries
        self.values = values
        self.name = name

    def __call__(self, step):
        step = np.asarray(step)
        # Keras casts the boundaries to the step's (integer) dtype
        b = [int(x) if np.issubdtype(step.dtype, np.integer) else float(x)
             for x in self.boundaries]
        s = step.item()
        if s <= b[0]:
            return _F(self.values[0])
        for low, high, v in zip(b[:-1], b[1:], self.values[1:-1]):
            if low < s <= high:
                return _F(v)
        return _F(self.values[-1])

    def get_config(self):
        return {"boundaries": self.boundaries, "values": self.values, "name": self.name}


class PolynomialDecay(LearningRateSchedule):
    """``(initial - end) * (1 - min(step, decay_steps) / decay_steps) ** power
    + end``; with ``cycle=True`` decay_steps grows to the first multiple above
    ``step``.

    Args:
        initial_learning_rate: float.
        decay_steps: int > 0.
        end_learning_rate: float, defaults to 0.0001.
        power: float, defaults to 1.0.
        cycle: bool, defaults to False.
        name: str, defaults to ``"PolynomialDecay"``.

    Example: ``PolynomialDecay(0.1, 100, 0.0)(50) == 0.05``
    """

    def __init__(self, initial_learning_rate, decay_steps, end_learning_rate=0.0001,
                 power=1.0, cycle=False, name="PolynomialDecay"):
        self.initial_learning_rate = initial_learning_rate
        self.decay_steps = decay_steps
        self.end_learning_rate = end_learning_rate
        self.power = power
        self.cycle = cycle
        self.name = name
        _check_positive("decay_steps", decay_steps)

    def __call__(self, step):
        init, end = _F(self.initial_learning_rate), _F(self.end_learning_rate)
        s, ds = _step(step), _F(self.decay_steps)
        if self.cycle:
            mult = _F(1.0) if s == 0 else np.ceil(s / ds)
            ds = ds * mult
        else:
            s = min(s, ds)
        p = s / ds
        return (init - end) * np.power(_F(1) - p, _F(self.power)) + end

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate,
                "decay_steps": self.decay_steps, "end_learning_rate": self.end_learning_rate,
                "power": self.power, "cycle": self.cycle, "name": self.name}


class InverseTimeDecay(LearningRateSchedule):
    """``initial_learning_rate / (1 + decay_rate * step / decay_steps)``
    (the quotient floored with ``staircase=True``).

    Args:
        initial_learning_rate: float.
        decay_steps: how often to apply decay (> 0).
        decay_rate: float.
        staircase: bool, defaults to False.
        name: str, defaults to ``"InverseTimeDecay"``.

    Example: ``InverseTimeDecay(0.1, 1.0, 0.5)(2) == 0.05``
    """

    def __init__(self, initial_learning_rate, decay_steps, decay_rate, staircase=False,
                 name="InverseTimeDecay"):
        self.initial_learning_rate = initial_learning_rate
        self.decay_steps = decay_steps
        self.decay_rate = decay_rate
        self.staircase = staircase
        self.name = name
        _check_positive("decay_steps", decay_steps)

    def __call__(self, step):
        p = _step(step) / _F(self.decay_steps)
        if self.staircase:
            p = np.floor(p)
        return _F(self.initial_learning_rate) / (_F(1) + _F(self.decay_rate) * p)

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate,
                "decay_steps": self.decay_steps, "decay_rate": self.decay_rate,
                "staircase": self.staircase, "name": self.name}


class CosineDecay(LearningRateSchedule):
    """Cosine decay with an optional linear warmup (Loshchilov & Hutter's SGDR
    without restarts).

    Without ``warmup_target``: ``lr * ((1 - alpha) * 0.5 * (1 + cos(pi * s /
    decay_steps)) + alpha)`` with ``s = min(step, decay_steps)``. With it: a
    linear ramp from ``initial_learning_rate`` to ``warmup_target`` over
    ``warmup_steps``, then the decay from ``warmup_target``.

    Args:
        initial_learning_rate: float.
        decay_steps: int > 0, the number of steps to decay over.
        alpha: float, the minimum as a fraction of the decay's start.
        name: str, defaults to ``"CosineDecay"``.
        warmup_target: float or None (no warmup).
        warmup_steps: int, the number of warmup steps.

    Example: ``CosineDecay(0.1, 100)(50) == 0.05``
    """

    def __init__(self, initial_learning_rate, decay_steps, alpha=0.0, name="CosineDecay",
                 warmup_target=None, warmup_steps=0):
        self.initial_learning_rate = initial_learning_rate
        self.decay_steps = decay_steps
        self.alpha = alpha
        self.name = name
        self.warmup_steps = warmup_steps
        self.warmup_target = warmup_target
        _check_positive("decay_steps", decay_steps)

    def _decay(self, s, ds, start):
        frac = s / ds
        cosine = _F(0.5) * (_F(1.0) + np.cos(_F(math.pi) * frac))
        decayed = _F(1 - self.alpha) * cosine + _F(self.alpha)
        return start * decayed

    def __call__(self, step):
        init, ds, s = _F(self.initial_learning_rate), _F(self.decay_steps), _step(step)
        if self.warmup_target is None:
            return self._decay(min(s, ds), ds, init)
        target, ws = _F(self.warmup_target), _F(self.warmup_steps)
        s = min(s, ds + ws)
        if s < ws:
            return (target - init) * (s / ws) + init
        return self._decay(s - ws, ds, target)

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate,
                "decay_steps": self.decay_steps, "alpha": self.alpha, "name": self.name,
                "warmup_target": self.warmup_target, "warmup_steps": self.warmup_steps}


class CosineDecayRestarts(LearningRateSchedule):
    """Cosine decay with warm restarts (SGDR): periods of ``first_decay_steps *
    t_mul ** i`` steps, the i-th starting at ``m_mul ** i`` times the initial
    learning rate.

    Args:
        initial_learning_rate: float.
        first_decay_steps: int > 0.
        t_mul: float, defaults to 2.0.
        m_mul: float, defaults to 1.0.
        alpha: float, the minimum as a fraction of the initial learning rate.
        name: str, defaults to ``"SGDRDecay"``.

    Example: ``CosineDecayRestarts(0.1, 10)(10) == 0.1`` (the first restart)
    """

    def __init__(self, initial_learning_rate, first_decay_steps, t_mul=2.0, m_mul=1.0,
                 alpha=0.0, name="SGDRDecay"):
        self.initial_learning_rate = initial_learning_rate
        self.first_decay_steps = first_decay_steps
        self._t_mul = t_mul
        self._m_mul = m_mul
        self.alpha = alpha
        self.name = name
        _check_positive("first_decay_steps", first_decay_steps)

    def __call__(self, step):
        init, alpha = _F(self.initial_learning_rate), _F(self.alpha)
        t_mul, m_mul = _F(self._t_mul), _F(self._m_mul)
        frac = _step(step) / _F(self.first_decay_steps)
        if t_mul == 1.0:
            i_restart = np.floor(frac)
            frac = frac - i_restart
        else:
            i_restart = np.floor(np.log(_F(1.0) - frac * (_F(1.0) - t_mul)) / np.log(t_mul))
            sum_r = (_F(1.0) - np.power(t_mul, i_restart)) / (_F(1.0) - t_mul)
            frac = (frac - sum_r) / np.power(t_mul, i_restart)
        m_fac = np.power(m_mul, i_restart)
        cosine = _F(0.5) * m_fac * (_F(1.0) + np.cos(_F(math.pi) * frac))
        return init * ((_F(1) - alpha) * cosine + alpha)

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate,
                "first_decay_steps": self.first_decay_steps, "t_mul": self._t_mul,
                "m_mul": self._m_mul, "alpha": self.alpha, "name": self.name}


_ALL = {c.__name__: c for c in (ExponentialDecay, PiecewiseConstantDecay, PolynomialDecay,
                                InverseTimeDecay, CosineDecay, CosineDecayRestarts)}


def serialize(learning_rate_schedule):
    """Keras' serialized form of a schedule: ``{"module":
    "keras.optimizers.schedules", "class_name", "config", "registered_name"}``.

    Example: ``serialize(ExponentialDecay(0.1, 10, 0.9))["class_name"] == "ExponentialDecay"``
    """
    if not isinstance(learning_rate_schedule, LearningRateSchedule):
        raise TypeError("serialize expects a LearningRateSchedule, got "
                        f"{type(learning_rate_schedule).__name__}")
    builtin = type(learning_rate_schedule).__name__ in _ALL and \
        _ALL[type(learning_rate_schedule).__name__] is type(learning_rate_schedule)
    return {"module": "keras.optimizers.schedules" if builtin
            else type(learning_rate_schedule).__module__,
            "class_name": type(learning_rate_schedule).__name__,
            "config": learning_rate_schedule.get_config(),
            "registered_name": None if builtin else type(learning_rate_schedule).__name__}


def deserialize(config, custom_objects=None):
    """The schedule a ``serialize`` dict (Keras' own included) describes.

    Example: ``deserialize({"class_name": "CosineDecay", "config": {...}})``
    """
    if isinstance(config, LearningRateSchedule):
        return config
    if not isinstance(config, dict) or "class_name" not in config:
        raise ValueError("a learning rate schedule config must be a dict with 'class_name' "
                         f"and 'config'; got {config!r}")
    name = config["class_name"]
    table = dict(_ALL)
    table.update(custom_objects or {})
    if name not in table:
        raise ValueError(f"Unknown learning rate schedule: {name!r}. Valid ones: "
                         f"{sorted(_ALL)}")
    return table[name].from_config(dict(config.get("config", {})))
