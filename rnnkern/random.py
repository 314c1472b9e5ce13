"""Keras 3's ``keras.random`` on NumPy: ``normal``, ``uniform``,
``truncated_normal``, ``randint``, ``categorical``, ``dropout``, ``shuffle``,
``beta``, ``gamma``, ``binomial`` and ``SeedGenerator``, with Keras' arguments
and seeding rules:

- ``seed=None``: drawn from one module-wide generator (a child of
  ``rnnkern.utils.set_random_seed``'s seed when one is set), so repeated calls
  differ;
- ``seed=<int>``: the same values at every call with that seed;
- ``seed=SeedGenerator(...)``: the generator's next draw (a SeedGenerator made
  with an int seed replays the same sequence).

Results are NumPy arrays (``dtype`` defaults to float32, ``"int32"`` for the
integer draws). The values are NumPy's, not TensorFlow's or torch's: a seed
reproduces rnnkern's draws, not another backend's."""
from __future__ import annotations

import threading

import numpy as np

from .config import floatx, make_rng

__all__ = ["SeedGenerator", "normal", "uniform", "truncated_normal", "randint", "categorical",
           "dropout", "shuffle", "beta", "gamma", "binomial"]


class SeedGenerator:
    """A stateful source of seeds (Keras' ``keras.random.SeedGenerator``): each
    random call given it draws from it and advances it. ``seed`` (an int)
    makes the sequence repeatable; None draws from the global seed or fresh
    entropy."""

    def __init__(self, seed=None, name=None, **kwargs):
        if seed is not None and (isinstance(seed, bool) or
                                 not isinstance(seed, (int, np.integer))):
            raise ValueError(f"SeedGenerator: seed must be an int or None, got {seed!r}")
        self.name = name
        self._seed = None if seed is None else int(seed)
        self._rng = make_rng(self._seed)
        self._lock = threading.Lock()

    def next(self, ordered=True):
        """A fresh NumPy generator for one draw."""
        with self._lock:
            return np.random.default_rng(self._rng.integers(0, 2**63 - 1))

    def get_config(self):
        return {"seed": self._seed}


_global = []


def _generator(seed):
    if seed is None:
        if not _global:
            _global.append(SeedGenerator())
        return _global[0].next()
    if isinstance(seed, SeedGenerator):
        return seed.next()
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ValueError(f"seed must be None, an int or a keras.random.SeedGenerator, got "
                         f"{seed!r} (of type {type(seed).__name__})")
    return np.random.default_rng(int(seed))


def _shape(shape):
    if isinstance(shape, (int, np.integer)) and not isinstance(shape, bool):
        shape = (shape,)
    try:
        out = tuple(int(d) for d in shape)
    except (TypeError, ValueError):
        raise ValueError(f"shape must be a tuple of ints, got {shape!r}") from None
    if any(d < 0 for d in out):
        raise ValueError(f"shape must not have negative sizes, got {shape!r}")
    return out


def _float_dtype(dtype):
    return np.dtype(floatx() if dtype is None else dtype)


def normal(shape, mean=0.0, stddev=1.0, dtype=None, seed=None):
    """Samples of N(mean, stddev**2)."""
    g = _generator(seed)
    return g.normal(mean, stddev, _shape(shape)).astype(_float_dtype(dtype))


def uniform(shape, minval=0.0, maxval=1.0, dtype=None, seed=None):
    """Samples of U[minval, maxval)."""
    g = _generator(seed)
    return g.uniform(minval, maxval, _shape(shape)).astype(_float_dtype(dtype))


def truncated_normal(shape, mean=0.0, stddev=1.0, dtype=None, seed=None):
    """Samples of N(mean, stddev**2) kept within two standard deviations of the
    mean (values further out are drawn again)."""
    g = _generator(seed)
    shape = _shape(shape)
    z = g.standard_normal(shape)
    bad = np.abs(z) > 2.0
    while bad.any():
        z[bad] = g.standard_normal(int(bad.sum()))
        bad = np.abs(z) > 2.0
    return (mean + stddev * z).astype(_float_dtype(dtype))


def randint(shape, minval, maxval, dtype="int32", seed=None):
    """Integers drawn uniformly from [minval, maxval)."""
    g = _generator(seed)
    return g.integers(minval, maxval, _shape(shape)).astype(np.dtype(dtype))


def categorical(logits, num_samples, dtype="int32", seed=None):
    """For each row of ``logits`` [batch, classes], ``num_samples`` class indices
    drawn from softmax(row): [batch, num_samples]."""
    logits = np.asarray(logits, np.float64)
    if logits.ndim != 2:
        raise ValueError(f"logits must be 2-D [batch, num_classes], got shape {logits.shape}")
    g = _generator(seed)
    gumbel = -np.log(-np.log(g.uniform(np.finfo(np.float64).tiny, 1.0,
                                       (logits.shape[0], int(num_samples), logits.shape[1]))))
    return np.argmax(logits[:, None, :] + gumbel, axis=-1).astype(np.dtype(dtype))


def dropout(inputs, rate, noise_shape=None, seed=None):
    """``inputs`` with each entry zeroed with probability ``rate`` and the rest
    scaled by 1 / (1 - rate); ``noise_shape`` (broadcast to the inputs) shares
    one draw along its axes of size 1."""
    x = np.asarray(inputs)
    if not 0.0 <= float(rate) < 1.0:
        raise ValueError(f"rate must be in [0, 1), got {rate!r}")
    if rate == 0:
        return x
    g = _generator(seed)
    shape = x.shape if noise_shape is None else tuple(
        x.shape[i] if d is None else int(d) for i, d in enumerate(noise_shape))
    keep = g.uniform(size=shape) >= rate
    return np.where(keep, x / (1.0 - rate), 0).astype(x.dtype)


def shuffle(x, axis=0, seed=None):
    """``x`` with its entries along ``axis`` in a random order."""
    x = np.asarray(x)
    g = _generator(seed)
    return np.take(x, g.permutation(x.shape[axis]), axis=axis)


def beta(shape, alpha, beta, dtype=None, seed=None):
    """Samples of Beta(alpha, beta)."""
    return _generator(seed).beta(alpha, beta, _shape(shape)).astype(_float_dtype(dtype))


def gamma(shape, alpha, dtype=None, seed=None):
    """Samples of Gamma(alpha, 1)."""
    return _generator(seed).gamma(alpha, 1.0, _shape(shape)).astype(_float_dtype(dtype))


def binomial(shape, counts, probabilities, dtype=None, seed=None):
    """Samples of Binomial(counts, probabilities)."""
    return _generator(seed).binomial(counts, probabilities,
                                     _shape(shape)).astype(_float_dtype(dtype))


def __getattr__(name):
    if name.startswith("__"):
        raise AttributeError(name)
    raise AttributeError(f"rnnkern.random has no {name!r}: Keras' keras.random.{name} is not "
                         f"part of rnnkern (it has {', '.join(__all__)}; to seed everything, "
                         "rnnkern.utils.set_random_seed)")
