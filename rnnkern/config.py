"""Global settings, as Keras 3's ``keras.config`` (keras/src/backend/config.py):
the dtype layers compute in, and the global seed every unseeded generator is
drawn from. A leaf module: it imports nothing of rnnkern's, so layers, losses,
metrics, optimizers and the trainer all read it from below.
"""
from __future__ import annotations

import contextlib
import threading

import numpy as np

__all__ = ["floatx", "set_global_seed", "make_rng", "set_device_updates", "device_updates"]


# ----------------------------------------------------- the computed dtype
# float32 everywhere. The tests switch it to float64 to check every layer's
# backward against central finite differences of its own forward.

_FLOATX = [np.float32]


def floatx():
    """The dtype layers compute and store weights in (float32)."""
    return _FLOATX[0]


@contextlib.contextmanager
def _float64_for_tests():
    """Layers built, assigned and called inside compute in float64 (tests only;
    recurrent layers need ``backend="reference"`` there)."""
    _FLOATX[0] = np.float64
    try:
        yield
    finally:
        _FLOATX[0] = np.float32


# -------------------------------------------------------------- seeding
# rnnkern.utils.set_random_seed(seed) makes every generator drawn afterwards by
# a layer without a seed of its own (weight initialisation, dropout) a
# deterministic child of that seed, as Keras' set_random_seed does.

_GLOBAL_SEED = [None]
_SEED_LOCK = threading.Lock()


def set_global_seed(seed):
    _GLOBAL_SEED[0] = None if seed is None else np.random.SeedSequence(int(seed))


def make_rng(seed=None, stream=0):
    """A generator: from the layer's ``seed`` (and a stream number) when given,
    else a child of the global seed when one is set, else fresh entropy."""
    if seed is not None:
        return np.random.default_rng([int(seed), stream])
    with _SEED_LOCK:
        ss = _GLOBAL_SEED[0]
        child = ss.spawn(1)[0] if ss is not None else None
    return np.random.default_rng(child)


# ------------------------------------------------- updates on the device
# The models' fit keeps the weights of recurrent layers on a GPU backend (cuda,
# cuda-emu) on the device: their gradients stay there and the optimizer updates
# them there (rnnkern/models/training.py). Off: every step downloads the
# gradients, updates on the host and uploads the weights (the earlier path; the
# tests compare the two).

_DEVICE_UPDATES = [True]


def set_device_updates(on):
    """Whether ``fit`` updates the weights of recurrent layers on a GPU backend
    on the device (default True) or on the host (a weight upload a step)."""
    _DEVICE_UPDATES[0] = bool(on)


def device_updates():
    return _DEVICE_UPDATES[0]
