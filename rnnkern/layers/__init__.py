"""Every layer, by Keras 3's names (``keras.layers`` -> ``rnnkern.layers``).

The Layer contract all of them implement is in ``rnnkern.layers.base``; the
recurrent layers (the compiled kernels' front door) in ``recurrent``; the
others in ``core``, ``conv`` and ``wrappers``.
"""
from .base import KerasTensor, Layer
from .conv import Conv2D, MaxPooling2D
from .core import (Activation, Add, Concatenate, Dense, Dropout, Embedding, Flatten, Input,
                   InputLayer, Lambda, Reshape, RepeatVector, Rescaling)
from .recurrent import GRU, LSTM, SimpleRNN
from .wrappers import Bidirectional, TimeDistributed

__all__ = ["Layer", "KerasTensor", "Input", "InputLayer", "SimpleRNN", "LSTM", "GRU", "Dense",
           "Activation", "Dropout", "Embedding", "Reshape", "Flatten", "RepeatVector",
           "Rescaling", "Lambda", "Concatenate", "Add", "TimeDistributed", "Bidirectional",
           "Conv2D", "MaxPooling2D"]
