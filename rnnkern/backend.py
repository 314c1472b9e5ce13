"""Keras 3's ``keras.backend`` names that scripts reach for, answered for
rnnkern (whose arrays are NumPy arrays): ``backend()`` is ``"numpy"``,
``floatx()`` ``"float32"``, ``epsilon()`` Keras' fuzz factor ``1e-7``,
``image_data_format()`` ``"channels_last"`` (the only one rnnkern's
convolutions take), ``clear_session()`` resets the automatic layer names, and
``is_keras_tensor(x)`` tells symbolic tensors apart. Other ``keras.backend``
names are an AttributeError that says they are not part of rnnkern."""
import numpy as np

from .config import floatx as _floatx
from .layers.base import KerasTensor
from .losses import EPSILON
from .utils.naming import clear_session as _clear_names

__all__ = ["backend", "floatx", "epsilon", "image_data_format", "clear_session",
           "is_keras_tensor"]


def backend():
    """The array library under rnnkern's layers: ``"numpy"``."""
    return "numpy"


def floatx():
    """The dtype layers compute in, by name: ``"float32"``."""
    return np.dtype(_floatx()).name


def epsilon():
    """Keras' default fuzz factor, 1e-7 (rnnkern's losses use it)."""
    return EPSILON


def image_data_format():
    """``"channels_last"``: the data format of rnnkern's convolution layers."""
    return "channels_last"


def clear_session(free_memory=True):
    """Reset the automatic layer names (the next Dense is ``dense`` again)."""
    _clear_names()


def is_keras_tensor(x):
    """Whether ``x`` is a symbolic tensor (``rnnkern.Input``'s, a layer's output on one)."""
    return isinstance(x, KerasTensor)


def __getattr__(name):
    if name.startswith("__"):
        raise AttributeError(name)
    raise AttributeError(f"rnnkern.backend has no {name!r}: Keras' keras.backend.{name} is "
                         f"not part of rnnkern (it has {', '.join(__all__)})")
