"""Every layer, by Keras 3's names (``keras.layers`` -> ``rnnkern.layers``).

The Layer contract all of them implement is in ``rnnkern.layers.base``; the
recurrent layers (the compiled kernels' front door) in ``recurrent``, ``RNN``
and the cells in ``rnn``; the others in ``core`` (Dense, Embedding, merging...),
``conv`` (convolution and pooling), ``normalization``, ``activation_layers``,
``reshaping``, ``attention`` and ``wrappers``. A Keras layer rnnkern does not
have is an AttributeError that says so.
"""
from .activation_layers import ELU, LeakyReLU, ReLU, Softmax
from .attention import AdditiveAttention, Attention
from .base import KerasTensor, Layer
from .conv import (AveragePooling1D, AvgPool1D, Conv1D, Conv2D, Convolution1D, Convolution2D,
                   GlobalAveragePooling1D, GlobalAvgPool1D, GlobalMaxPool1D,
                   GlobalMaxPooling1D, MaxPool1D, MaxPool2D, MaxPooling1D, MaxPooling2D)
from .core import (Activation, Add, Average, Concatenate, Dense, Dot, Dropout, Embedding,
                   Flatten, Input, InputLayer, Lambda, Maximum, Minimum, Multiply, RepeatVector,
                   Rescaling, Reshape, Subtract)
from .normalization import BatchNormalization, LayerNormalization
from .recurrent import GRU, LSTM, SimpleRNN
from .rnn import RNN, GRUCell, LSTMCell, SimpleRNNCell, StackedRNNCells
from .reshaping import Cropping1D, Permute, SpatialDropout1D, ZeroPadding1D
from .wrappers import Bidirectional, TimeDistributed

__all__ = ["Layer", "KerasTensor", "Input", "InputLayer", "SimpleRNN", "LSTM", "GRU", "Dense",
           "Activation", "Dropout", "Embedding", "Reshape", "Flatten", "RepeatVector",
           "Rescaling", "Lambda", "Concatenate", "Add", "Subtract", "Multiply", "Average",
           "Maximum", "Minimum", "Dot", "TimeDistributed", "Bidirectional", "Conv1D", "Conv2D",
           "MaxPooling1D", "AveragePooling1D", "MaxPooling2D", "GlobalAveragePooling1D",
           "GlobalMaxPooling1D", "Convolution1D", "Convolution2D", "MaxPool1D", "AvgPool1D",
           "MaxPool2D", "GlobalAvgPool1D", "GlobalMaxPool1D", "BatchNormalization",
           "LayerNormalization", "ReLU", "LeakyReLU", "ELU", "Softmax", "ZeroPadding1D",
           "Cropping1D", "Permute", "SpatialDropout1D", "Attention", "AdditiveAttention", "RNN", "SimpleRNNCell", "LSTMCell", "GRUCell",
           "StackedRNNCells"]


def __getattr__(name):
    if name.startswith("__"):
        raise AttributeError(name)
    raise AttributeError(f"rnnkern.layers has no {name!r}: Keras' keras.layers.{name} is not "
                         "part of rnnkern (rnnkern.layers.__all__ lists the layers it has)")
