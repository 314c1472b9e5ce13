"""Models, by Keras 3's names (``keras.models`` -> ``rnnkern.models``):
``Sequential`` (a stack of layers) and ``Model`` (a functional graph)."""
from .functional import Functional, Model
from .sequential import Sequential

__all__ = ["Sequential", "Model", "Functional"]
