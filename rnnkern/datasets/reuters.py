"""The Reuters newswire topic dataset (Keras 3's keras/src/datasets/reuters.py,
``keras.datasets.reuters``): 11,228 newswires, each a list of word indices,
labelled with one of 46 topics (``get_label_names``).

The file is Keras' own (``reuters.npz`` in Keras' cache, with the same origin
and sha256), shared with Keras; its pickled sequences are read without running
code. ``load_data`` returns the arrays Keras' returns for the same arguments.
"""
from __future__ import annotations

import numbers

import numpy as np

from ..utils.file_utils import get_file
from ._npz import (check_sequence_args, encode, flatten_sequences, keep_shorter, limit_vocabulary,
                   load_json, load_npz, shuffle_pair, to_object_array)

__all__ = ["load_data", "get_word_index", "get_label_names"]

_ORIGIN = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"
_DATA_HASH = "d6586e694ee56d7a4e65172e12b3e987c03096cb01eab99753921ef915959916"  # sha256
_INDEX_HASH = "4d44cc38712099c9e383dc6e5f11a921"  # md5

_LABELS = (
    "cocoa", "grain", "veg-oil", "earn", "acq", "wheat", "copper", "housing", "money-supply",
    "coffee", "sugar", "trade", "reserves", "ship", "cotton", "carcass", "crude", "nat-gas",
    "cpi", "money-fx", "interest", "gnp", "meal-feed", "alum", "oilseed", "gold", "tin",
    "strategic-metal", "livestock", "retail", "ipi", "iron-steel", "rubber", "heat", "jobs",
    "lei", "bop", "zinc", "orange", "pet-chem", "dlr", "gas", "silver", "wpi", "hog", "lead",
)


def load_data(path="reuters.npz", num_words=None, skip_top=0, maxlen=None, test_split=0.2,
              seed=113, start_char=1, oov_char=2, index_from=3):
    """``(x_train, y_train), (x_test, y_test)``: the newswires as object arrays of
    lists of word indices, the topics as integer arrays (Keras'
    ``keras.datasets.reuters.load_data``).

    The newswires are shuffled with ``np.random.RandomState(seed)``, encoded
    (``start_char``, ``index_from``, ``maxlen``, ``num_words``, ``skip_top``,
    ``oov_char``: as ``rnnkern.datasets.imdb.load_data``), then the last
    ``test_split`` of them (a fraction in [0, 1]) is the test set.

    >>> (x_train, y_train), (x_test, y_test) = load_data(num_words=10000)
    >>> get_label_names()[y_train[0]]
    """
    check_sequence_args(num_words, skip_top, maxlen, seed, start_char, oov_char, index_from)
    if isinstance(test_split, bool) or not isinstance(test_split, numbers.Real) \
            or not 0 <= test_split <= 1:
        raise ValueError(f"test_split must be a fraction in [0, 1], got {test_split!r}")
    path = get_file(fname=path, origin=f"{_ORIGIN}reuters.npz", file_hash=_DATA_HASH)
    f = load_npz(path, ["x", "y"], allow_objects=True)
    xs, labels = shuffle_pair(np.random.RandomState(seed), f["x"], f["y"], path, "x", "y")
    values, lengths = encode(*flatten_sequences(xs, path, "x"), start_char, index_from)
    if maxlen:
        values, lengths, keep = keep_shorter(values, lengths, maxlen)
        labels = labels[keep]
        if not len(lengths):
            raise ValueError(f"After filtering for sequences shorter than maxlen={maxlen}, no "
                             "sequence was kept. Increase maxlen.")
    values, lengths = limit_vocabulary(values, lengths, num_words, skip_top, oov_char)
    k = int(len(lengths) * (1 - test_split))
    split = int(lengths[:k].sum())
    return ((to_object_array(values[:split], lengths[:k]), np.array(labels[:k])),
            (to_object_array(values[split:], lengths[k:]), np.array(labels[k:])))


def get_word_index(path="reuters_word_index.json"):
    """The dict word -> index of the dataset (in ``load_data``'s sequences a
    word's index is this + ``index_from``), from Keras'
    ``reuters_word_index.json`` (Keras' ``keras.datasets.reuters.get_word_index``)."""
    path = get_file(path, origin=f"{_ORIGIN}reuters_word_index.json", file_hash=_INDEX_HASH)
    return load_json(path)


def get_label_names():
    """The 46 topics' names, indexed by label (Keras' ``get_label_names``)."""
    return _LABELS
