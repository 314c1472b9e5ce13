"""rnnkern: SimpleRNN, LSTM and GRU layers (forward and BPTT) on NumPy arrays,
with Keras' semantics and weight layout, running on C++/CUDA kernels or the
NumPy reference, and the Keras models around them. Re-exports only; see
rnnkern.layers, rnnkern.models, rnnkern.ops and rnnkern.backends.

``import rnnkern as keras`` reaches every submodule as an attribute, as Keras'
top level does (``keras.optimizers.Adam``, ``keras.datasets.imdb``,
``keras.preprocessing.sequence.pad_sequences``...); the ones a plain ``import
rnnkern`` does not need are imported on first use. A Keras name rnnkern does
not have is an AttributeError that says so."""
import importlib as _importlib
import types as _types

from . import activations, initializers, layers, models, utils  # noqa: F401
from . import backends as _backends_module
from ._device import device_array, is_device_array
from ._version import __version__
from .backends import (get_layer_concurrency, get_num_threads, release_memory,
                       set_layer_concurrency, set_num_threads)
from .layers import GRU, LSTM, Input, SimpleRNN
from .models import Model, Sequential


class _CallableModule(_types.ModuleType):
    """``rnnkern.backends`` is both the module (``rnnkern.backends.get_backend``)
    and the function listing the usable backends (``rnnkern.backends()``)."""

    def __call__(self):
        return self.backends()


_backends_module.__class__ = _CallableModule
backends = _backends_module

# submodules reached as attributes (imported on first use where not imported above)
_SUBMODULES = ("activations", "backend", "callbacks", "config", "datasets", "initializers",
               "layers", "losses", "metrics", "models", "ops", "optimizers", "preprocessing",
               "random", "saving", "utils")


def __getattr__(name):
    if name in _SUBMODULES:
        module = _importlib.import_module(f".{name}", __name__)
        globals()[name] = module
        return module
    if name.startswith("__"):
        raise AttributeError(name)
    raise AttributeError(f"module 'rnnkern' has no attribute {name!r}: Keras' keras.{name} is "
                         f"not part of rnnkern (its modules: {', '.join(_SUBMODULES)}; "
                         "Sequential, Model, Input and the recurrent layers at the top level)")


def __dir__():
    return sorted(set(globals()) | set(_SUBMODULES))


__all__ = ["SimpleRNN", "LSTM", "GRU", "Sequential", "Model", "Input", "backends",
           "set_num_threads", "get_num_threads", "set_layer_concurrency",
           "get_layer_concurrency", "release_memory", "device_array",
           "is_device_array", "__version__"]
