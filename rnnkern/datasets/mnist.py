"""The MNIST handwritten digits (Keras 3's keras/src/datasets/mnist.py,
``keras.datasets.mnist``): 60,000 training and 10,000 test images of 28x28
uint8 pixels, labelled 0-9.

The file is Keras' own (``mnist.npz`` in Keras' cache, with the same origin
and sha256), shared with Keras; its arrays are read with pickling off and
their declared sizes checked first.
"""
from __future__ import annotations

from ..utils.file_utils import get_file
from ._npz import load_npz

__all__ = ["load_data"]

_ORIGIN = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"
_DATA_HASH = "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1"  # sha256


def load_data(path="mnist.npz"):
    """``(x_train, y_train), (x_test, y_test)``: uint8 images (60000, 28, 28) and
    (10000, 28, 28), uint8 labels (Keras' ``keras.datasets.mnist.load_data``).

    >>> (x_train, y_train), (x_test, y_test) = load_data()
    >>> x_train = x_train.astype("float32") / 255
    """
    path = get_file(fname=path, origin=f"{_ORIGIN}mnist.npz", file_hash=_DATA_HASH)
    f = load_npz(path, ["x_train", "y_train", "x_test", "y_test"])
    return (f["x_train"], f["y_train"]), (f["x_test"], f["y_test"])
