"""The IMDB movie review sentiment dataset (Keras 3's keras/src/datasets/imdb.py,
``keras.datasets.imdb``): 25,000 reviews for training and 25,000 for testing,
each a list of word indices (a word's index is its frequency rank), labelled
1 (positive) or 0 (negative).

The file is Keras' own (``imdb.npz`` in Keras' cache, ``~/.keras/datasets``,
with the same origin and sha256), downloaded once and shared with Keras; its
pickled sequences are read without running code (``rnnkern.datasets._npz``).
``load_data`` returns the arrays Keras' returns for the same arguments.
"""
from __future__ import annotations

import numpy as np

from ..utils.file_utils import get_file
from ._npz import (check_sequence_args, encode, flatten_sequences, keep_shorter, limit_vocabulary,
                   load_json, load_npz, shuffle_pair, to_object_array)

__all__ = ["load_data", "get_word_index"]

_ORIGIN = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"
_DATA_HASH = "69664113be75683a8fe16e3ed0ab59fda8886cb3cd7ada244f7d9544e4676b9f"  # sha256
_INDEX_HASH = "bfafd718b763782e994055a2d397834f"  # md5


def load_data(path="imdb.npz", num_words=None, skip_top=0, maxlen=None, seed=113, start_char=1,
              oov_char=2, index_from=3, **kwargs):
    """``(x_train, y_train), (x_test, y_test)``: the reviews as object arrays of
    lists of word indices, the labels as integer arrays (Keras'
    ``keras.datasets.imdb.load_data``).

    - ``path``: the file's name in the cache (``~/.keras/datasets/imdb.npz``);
    - ``seed``: both sets are shuffled with ``np.random.RandomState(seed)``;
    - ``start_char`` (1) is put before each review and the word indices are
      shifted up by ``index_from`` (3), leaving 0 for padding and 2 for
      ``oov_char``; ``start_char=None`` puts none;
    - ``maxlen``: only reviews shorter than ``maxlen`` (start_char included)
      are kept, as Keras does (ValueError if none is);
    - ``num_words``, ``skip_top``: indices outside ``[skip_top, num_words)``
      become ``oov_char`` (dropped if it is None); without ``num_words`` the
      limit is the largest index (Keras' rule, which puts that one word out).

    >>> (x_train, y_train), (x_test, y_test) = load_data(num_words=10000)
    >>> x = rnnkern.utils.pad_sequences(x_train, maxlen=200)
    """
    if kwargs:
        raise TypeError(f"imdb.load_data got unexpected keyword arguments {sorted(kwargs)}")
    check_sequence_args(num_words, skip_top, maxlen, seed, start_char, oov_char, index_from)
    path = get_file(fname=path, origin=f"{_ORIGIN}imdb.npz", file_hash=_DATA_HASH)
    f = load_npz(path, ["x_train", "y_train", "x_test", "y_test"], allow_objects=True)
    rng = np.random.RandomState(seed)
    x_train, y_train = shuffle_pair(rng, f["x_train"], f["y_train"], path, "x_train", "y_train")
    x_test, y_test = shuffle_pair(rng, f["x_test"], f["y_test"], path, "x_test", "y_test")

    v_train, n_train = encode(*flatten_sequences(x_train, path, "x_train"), start_char,
                              index_from)
    v_test, n_test = encode(*flatten_sequences(x_test, path, "x_test"), start_char, index_from)
    if maxlen:
        v_train, n_train, keep = keep_shorter(v_train, n_train, maxlen)
        y_train = y_train[keep]
        v_test, n_test, keep = keep_shorter(v_test, n_test, maxlen)
        y_test = y_test[keep]
        if not len(n_train) or not len(n_test):
            raise ValueError(f"After filtering for sequences shorter than maxlen={maxlen}, no "
                             "sequence was kept. Increase maxlen.")
    # the vocabulary limit is taken over both sets together, as Keras does
    values, lengths = limit_vocabulary(np.concatenate([v_train, v_test]),
                                       np.concatenate([n_train, n_test]), num_words, skip_top,
                                       oov_char)
    k = len(n_train)
    split = int(lengths[:k].sum())
    labels = np.concatenate([y_train, y_test])
    return ((to_object_array(values[:split], lengths[:k]), labels[:k]),
            (to_object_array(values[split:], lengths[k:]), labels[k:]))


def get_word_index(path="imdb_word_index.json"):
    """The dict word -> index of the dataset (index 1: the most frequent word;
    in ``load_data``'s sequences a word's index is this + ``index_from``), from
    Keras' ``imdb_word_index.json`` (Keras' ``keras.datasets.imdb.get_word_index``).

    >>> index = get_word_index()
    >>> words = {i + 3: w for w, i in index.items()}  # load_data's index_from=3
    """
    path = get_file(fname=path, origin=f"{_ORIGIN}imdb_word_index.json",
                    file_hash=_INDEX_HASH)
    return load_json(path)
