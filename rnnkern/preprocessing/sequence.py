"""``keras.preprocessing.sequence``: ``pad_sequences`` (``rnnkern.utils``'s)."""
from ..utils.data import pad_sequences

__all__ = ["pad_sequences"]
