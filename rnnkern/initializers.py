"""Weight initializers with Keras 3's names, distributions and scales.

Values are drawn from a ``numpy.random.Generator``, so they are not bitwise
equal to Keras' random streams, but every distribution matches Keras 3
(keras/src/initializers/{random,constant}_initializers.py):

    glorot_uniform   U(-l, l),  l = sqrt(6 / (fan_in + fan_out))
    glorot_normal    truncated N(0, s) at 2 s, s = sqrt(2 / (fan_in + fan_out)) / .8796...
    he_uniform / he_normal, lecun_uniform / lecun_normal   (VarianceScaling, as Keras)
    random_uniform   U(-0.05, 0.05)      random_normal  N(0, 0.05)
    orthogonal       QR of a normal (max(r, c), min(r, c)) matrix, Q's columns
                     sign-corrected by sign(diag(R)), transposed when rows < cols,
                     times ``gain`` (1): for the (H, G*H) recurrent kernel U U^T = I
    zeros, ones

``get(identifier)`` accepts a name (``"glorot_uniform"`` or Keras' class name
``"GlorotUniform"``), an :class:`Initializer` instance, a Keras config dict
(``{"class_name": "GlorotUniform", "config": {"seed": None}}``, as in a Keras
``get_config()`` or ``.keras`` file), or any callable ``f(shape, dtype)``
returning an array of that shape. ``serialize(init)`` gives that dict back.

Seeding: an initializer built with ``seed=`` draws from ``default_rng(seed)`` on
every call (deterministic, like a seeded Keras initializer); otherwise it draws
from the ``rng`` its caller passes (layers pass a generator derived from their
``seed``), else from a fresh unseeded generator.
"""
from __future__ import annotations

import math

import numpy as np

__all__ = ["Initializer", "Zeros", "Ones", "Constant", "RandomUniform", "RandomNormal",
           "VarianceScaling", "GlorotUniform", "GlorotNormal", "HeUniform", "HeNormal",
           "LecunUniform", "LecunNormal", "Orthogonal", "get", "serialize", "compute_fans"]


def compute_fans(shape):
    """Keras 3's ``compute_fans`` for a weight shape: ``(fan_in, fan_out)``."""
    shape = tuple(int(s) for s in shape)
    if len(shape) < 1:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    if len(shape) == 2:
        return shape[0], shape[1]
    receptive = math.prod(shape[:-2])
    return shape[-2] * receptive, shape[-1] * receptive


def _check_shape(shape):
    try:
        shape = tuple(int(s) for s in shape)
    except TypeError:
        raise TypeError(f"shape must be a sequence of ints, got {shape!r}") from None
    if any(s < 0 for s in shape):
        raise ValueError(f"shape must have non-negative entries, got {shape}")
    return shape


class Initializer:
    """Base class: ``init(shape, dtype="float32", rng=None)`` returns an ndarray."""

    def __init__(self, seed=None):
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))
                                 or seed < 0):
            raise ValueError(f"seed must be None or a non-negative int, got {seed!r}")
        self.seed = None if seed is None else int(seed)

    def _rng(self, rng):
        if self.seed is not None:
            return np.random.default_rng(self.seed)
        return rng if rng is not None else np.random.default_rng()

    def __call__(self, shape, dtype="float32", rng=None):
        shape = _check_shape(shape)
        dtype = np.dtype("float32" if dtype is None else dtype)
        return np.asarray(self._draw(shape, self._rng(rng)), dtype=dtype)

    def _draw(self, shape, rng):  # float64 values of the given shape
        raise NotImplementedError

    def get_config(self):
        """The constructor's arguments (Keras' config of this initializer)."""
        return {"seed": self.seed}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        return f"{type(self).__name__}(seed={self.seed})"


class Zeros(Initializer):
    def __init__(self):
        super().__init__(None)

    def _draw(self, shape, rng):
        return np.zeros(shape)

    def get_config(self):
        return {}

    def __repr__(self):
        return "Zeros()"


class Ones(Initializer):
    def __init__(self):
        super().__init__(None)

    def _draw(self, shape, rng):
        return np.ones(shape)

    def get_config(self):
        return {}

    def __repr__(self):
        return "Ones()"


class Constant(Initializer):
    def __init__(self, value=0.0):
        super().__init__(None)
        self.value = float(value)

    def _draw(self, shape, rng):
        return np.full(shape, self.value)

    def get_config(self):
        return {"value": self.value}

    def __repr__(self):
        return f"Constant(value={self.value})"


class RandomUniform(Initializer):
    def __init__(self, minval=-0.05, maxval=0.05, seed=None):
        super().__init__(seed)
        self.minval, self.maxval = float(minval), float(maxval)

    def _draw(self, shape, rng):
        return rng.uniform(self.minval, self.maxval, size=shape)

    def get_config(self):
        return {"minval": self.minval, "maxval": self.maxval, "seed": self.seed}


class RandomNormal(Initializer):
    def __init__(self, mean=0.0, stddev=0.05, seed=None):
        super().__init__(seed)
        self.mean, self.stddev = float(mean), float(stddev)

    def _draw(self, shape, rng):
        return rng.normal(self.mean, self.stddev, size=shape)

    def get_config(self):
        return {"mean": self.mean, "stddev": self.stddev, "seed": self.seed}


def _truncated_normal(rng, stddev, shape):
    """N(0, stddev) truncated to [-2 stddev, 2 stddev] (resampling), as Keras."""
    out = rng.standard_normal(size=shape)
    bad = np.abs(out) > 2
    while bad.any():
        out[bad] = rng.standard_normal(size=int(bad.sum()))
        bad = np.abs(out) > 2
    return out * stddev


class VarianceScaling(Initializer):
    """Keras 3's VarianceScaling (scale, mode fan_in|fan_out|fan_avg,
    distribution uniform|truncated_normal|untruncated_normal)."""

    def __init__(self, scale=1.0, mode="fan_in", distribution="truncated_normal", seed=None):
        super().__init__(seed)
        if scale <= 0:
            raise ValueError(f"scale must be positive, got {scale!r}")
        if mode not in ("fan_in", "fan_out", "fan_avg"):
            raise ValueError(f"mode must be fan_in, fan_out or fan_avg, got {mode!r}")
        distribution = distribution.lower()
        if distribution == "normal":
            distribution = "truncated_normal"
        if distribution not in ("uniform", "truncated_normal", "untruncated_normal"):
            raise ValueError("distribution must be uniform, truncated_normal or "
                             f"untruncated_normal, got {distribution!r}")
        self.scale, self.mode, self.distribution = float(scale), mode, distribution

    def _draw(self, shape, rng):
        fan_in, fan_out = compute_fans(shape)
        fan = {"fan_in": fan_in, "fan_out": fan_out,
               "fan_avg": (fan_in + fan_out) / 2.0}[self.mode]
        scale = self.scale / max(1.0, fan)
        if self.distribution == "truncated_normal":
            # 0.879... = std of a unit normal truncated to [-2, 2]
            return _truncated_normal(rng, math.sqrt(scale) / 0.87962566103423978, shape)
        if self.distribution == "untruncated_normal":
            return rng.normal(0.0, math.sqrt(scale), size=shape)
        limit = math.sqrt(3.0 * scale)
        return rng.uniform(-limit, limit, size=shape)

    def get_config(self):
        if type(self) is not VarianceScaling:  # the named presets take only a seed
            return {"seed": self.seed}
        return {"scale": self.scale, "mode": self.mode, "distribution": self.distribution,
                "seed": self.seed}

    def __repr__(self):
        return (f"{type(self).__name__}(scale={self.scale}, mode={self.mode!r}, "
                f"distribution={self.distribution!r}, seed={self.seed})")


class GlorotUniform(VarianceScaling):
    def __init__(self, seed=None):
        super().__init__(1.0, "fan_avg", "uniform", seed)


class GlorotNormal(VarianceScaling):
    def __init__(self, seed=None):
        super().__init__(1.0, "fan_avg", "truncated_normal", seed)


class HeUniform(VarianceScaling):
    def __init__(self, seed=None):
        super().__init__(2.0, "fan_in", "uniform", seed)


class HeNormal(VarianceScaling):
    def __init__(self, seed=None):
        super().__init__(2.0, "fan_in", "truncated_normal", seed)


class LecunUniform(VarianceScaling):
    def __init__(self, seed=None):
        super().__init__(1.0, "fan_in", "uniform", seed)


class LecunNormal(VarianceScaling):
    def __init__(self, seed=None):
        super().__init__(1.0, "fan_in", "truncated_normal", seed)


class Orthogonal(Initializer):
    """Keras 3's Orthogonal on the WHOLE matrix (for a recurrent kernel
    (H, G*H): the rows are orthonormal, U U^T = gain^2 I)."""

    def __init__(self, gain=1.0, seed=None):
        super().__init__(seed)
        self.gain = float(gain)

    def _draw(self, shape, rng):
        if len(shape) < 2:
            raise ValueError("The tensor to initialize must be at least two-dimensional, "
                             f"got shape={shape}")
        rows = math.prod(shape[:-1])
        cols = shape[-1]
        if rows == 0 or cols == 0:
            return np.zeros(shape)
        a = rng.standard_normal(size=(max(rows, cols), min(rows, cols)))
        q, r = np.linalg.qr(a)
        q *= np.sign(np.diag(r))  # make Q uniform (Haar)
        if rows < cols:
            q = q.T
        return self.gain * q.reshape(shape)

    def get_config(self):
        return {"gain": self.gain, "seed": self.seed}

    def __repr__(self):
        return f"Orthogonal(gain={self.gain}, seed={self.seed})"


_BY_NAME = {
    "zeros": Zeros, "ones": Ones, "constant": Constant,
    "randomuniform": RandomUniform, "uniform": RandomUniform,
    "randomnormal": RandomNormal, "normal": RandomNormal,
    "variancescaling": VarianceScaling,
    "glorotuniform": GlorotUniform, "glorotnormal": GlorotNormal,
    "heuniform": HeUniform, "henormal": HeNormal,
    "lecununiform": LecunUniform, "lecunnormal": LecunNormal,
    "orthogonal": Orthogonal,
}
NAMES = ("zeros", "ones", "constant", "random_uniform", "random_normal", "variance_scaling",
         "glorot_uniform", "glorot_normal", "he_uniform", "he_normal", "lecun_uniform",
         "lecun_normal", "orthogonal")


def get(identifier):
    """An initializer from a name, an Initializer, a Keras config dict, or a
    callable ``f(shape, dtype)``."""
    if isinstance(identifier, Initializer):
        return identifier
    if isinstance(identifier, dict):
        name = identifier.get("class_name")
        cls = _BY_NAME.get(str(name).replace("_", "").lower())
        if cls is None:
            raise ValueError(f"unknown initializer class_name {name!r} in {identifier!r}; "
                             f"expected one of {list(NAMES)}")
        import inspect
        config = dict(identifier.get("config") or {})
        params = inspect.signature(cls.__init__).parameters
        for k in list(config):
            if k not in params and config[k] is None:
                del config[k]  # newer Keras' optional keys (input_axes, ...) left at None
        return cls(**config)
    if isinstance(identifier, str):
        cls = _BY_NAME.get(identifier.replace("_", "").lower())
        if cls is None:
            raise ValueError(f"unknown initializer {identifier!r}; expected one of "
                             f"{list(NAMES)} or a callable(shape, dtype)")
        return cls()
    if callable(identifier):
        return identifier
    raise ValueError(f"initializer must be a name, an Initializer or a callable(shape, dtype), "
                     f"got {identifier!r}")


def serialize(init):
    """Keras' config dict of an initializer of this module (``get`` reads it
    back); a user's callable is returned as it is."""
    if not isinstance(init, Initializer):
        return init
    return {"module": "keras.initializers", "class_name": type(init).__name__,
            "config": init.get_config(), "registered_name": None}


def call(init, shape, rng=None):
    """Run ``init`` for ``shape`` as float32; ours get ``rng``, user callables
    get ``(shape, dtype)``. The result's shape is checked."""
    shape = tuple(int(s) for s in shape)
    if isinstance(init, Initializer):
        out = init(shape, "float32", rng=rng)
    else:
        out = init(shape, "float32")
    out = np.asarray(out)
    if out.shape != shape:
        raise ValueError(f"initializer {init!r} returned shape {out.shape}, expected {shape}")
    if out.dtype.kind not in "fiu":
        raise TypeError(f"initializer {init!r} returned dtype {out.dtype}, expected a real dtype")
    return np.array(out, dtype=np.float32, order="C")
