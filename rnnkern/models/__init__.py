"""Models, by Keras 3's names (``keras.models`` -> ``rnnkern.models``):
``Sequential`` (a stack of layers), ``Model`` (a functional graph), and
``load_model`` (``.keras`` files, Keras' or ours, and ``.rnnkern`` files)."""
from ..saving import load_model
from .functional import Functional, Model
from .sequential import Sequential

__all__ = ["Sequential", "Model", "Functional", "load_model"]
