"""The notebooks' data helpers, by Keras 3's names and arguments:
``timeseries_dataset_from_array`` (sliding windows of a series, batched),
``pad_sequences`` and ``to_categorical``."""
from __future__ import annotations

import math

import numpy as np

__all__ = ["timeseries_dataset_from_array", "pad_sequences", "to_categorical",
           "TimeseriesDataset"]


class TimeseriesDataset:
    """The batches of ``timeseries_dataset_from_array``: iterate it for
    ``(x_batch, y_batch)`` (or ``x_batch`` without targets), as ``fit``,
    ``evaluate`` and ``predict`` do; ``len()`` is the number of batches.

    x_batch [batch, sequence_length, ...data's feature dims]. With
    ``shuffle=True`` every pass draws a new order of the windows (from
    ``seed``, then one more draw per pass)."""

    def __init__(self, data, targets, positions, sequence_length, sampling_rate, batch_size,
                 shuffle, seed):
        self._data, self._targets = data, targets
        self._positions = positions
        self._offsets = np.arange(sequence_length) * sampling_rate
        self._batch = len(positions) if batch_size is None else batch_size
        self._shuffle = shuffle
        self._rng = np.random.RandomState(seed) if shuffle else None

    def __len__(self):
        return math.ceil(len(self._positions) / self._batch) if len(self._positions) else 0

    def __iter__(self):
        pos = self._positions
        if self._shuffle:
            pos = pos[self._rng.permutation(len(pos))]
        for i in range(0, len(pos), self._batch):
            p = pos[i:i + self._batch]
            x = self._data[p[:, None] + self._offsets]
            if self._targets is None:
                yield x
            else:
                yield x, self._targets[p]


def timeseries_dataset_from_array(data, targets, sequence_length, sequence_stride=1,
                                  sampling_rate=1, batch_size=128, shuffle=False, seed=None,
                                  start_index=None, end_index=None):
    """Windows of ``sequence_length`` steps of ``data`` (every ``sampling_rate``
    -th step), one starting every ``sequence_stride`` steps, batched; window
    ``i`` (starting at ``start_index + s``) is paired with ``targets[start_index
    + s]``, as Keras' ``timeseries_dataset_from_array``. Returns a
    :class:`TimeseriesDataset` (Keras returns a tf.data.Dataset; this iterates
    the same way)."""
    data = np.asarray(data)
    n = len(data)
    for arg, v in (("sequence_length", sequence_length), ("sequence_stride", sequence_stride),
                   ("sampling_rate", sampling_rate)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
            raise TypeError(f"`{arg}` must be an int, got {v!r}")
    if batch_size is not None and (isinstance(batch_size, bool) or
                                   not isinstance(batch_size, (int, np.integer)) or
                                   batch_size < 1):
        raise ValueError(f"`batch_size` must be a positive int or None, got {batch_size!r}")
    if start_index:
        if start_index < 0:
            raise ValueError(f"`start_index` must be 0 or greater. Received: "
                             f"start_index={start_index}")
        if start_index >= n:
            raise ValueError(f"`start_index` must be lower than the length of the data. "
                             f"Received: start_index={start_index}, for data of length {n}")
    if end_index:
        if start_index and end_index <= start_index:
            raise ValueError(f"`end_index` must be higher than `start_index`. Received: "
                             f"start_index={start_index}, and end_index={end_index} ")
        if end_index >= n:
            raise ValueError(f"`end_index` must be lower than the length of the data. "
                             f"Received: end_index={end_index}, for data of length {n}")
        if end_index <= 0:
            raise ValueError(f"`end_index` must be higher than 0. Received: "
                             f"end_index={end_index}")
    if sampling_rate <= 0:
        raise ValueError(f"`sampling_rate` must be higher than 0. Received: "
                         f"sampling_rate={sampling_rate}")
    if sampling_rate >= n:
        raise ValueError(f"`sampling_rate` must be lower than the length of the data. "
                         f"Received: sampling_rate={sampling_rate}, for data of length {n}")
    if sequence_stride <= 0:
        raise ValueError(f"`sequence_stride` must be higher than 0. Received: "
                         f"sequence_stride={sequence_stride}")
    if sequence_stride >= n:
        raise ValueError(f"`sequence_stride` must be lower than the length of the data. "
                         f"Received: sequence_stride={sequence_stride}, for data of length {n}")
    start = start_index or 0
    end = end_index if end_index is not None else n
    num_seqs = end - start - (sequence_length - 1) * sampling_rate
    tgt = None
    if targets is not None:
        tgt = np.asarray(targets)[start:end]
        num_seqs = min(num_seqs, len(tgt))
    positions = np.arange(0, max(num_seqs, 0), sequence_stride)
    if shuffle and seed is None:
        seed = np.random.randint(1e6)
    return TimeseriesDataset(data[start:end], tgt, positions, sequence_length, sampling_rate,
                             batch_size, shuffle, seed)


def pad_sequences(sequences, maxlen=None, dtype="int32", padding="pre", truncating="pre",
                  value=0.0):
    """Pad (or truncate) a list of sequences to one length ``maxlen`` (default:
    the longest), with ``value`` before ("pre") or after ("post"), as Keras'."""
    if not hasattr(sequences, "__len__"):
        raise ValueError("`sequences` must be iterable.")
    lengths, sample_shape, found = [], (), False
    for x in sequences:
        try:
            lengths.append(len(x))
        except TypeError as e:
            raise ValueError(f"`sequences` must be a list of iterables. Found non-iterable: "
                             f"{x}") from e
        if not found and len(x):
            sample_shape = np.asarray(x).shape[1:]
            found = True
    if maxlen is None:
        maxlen = int(np.max(lengths)) if lengths else 0
    is_str = np.issubdtype(dtype, np.str_) or np.issubdtype(dtype, np.bytes_)
    if isinstance(value, str) and dtype is not object and not is_str:
        raise ValueError(f"`dtype` {dtype} is not compatible with `value`'s type: {type(value)}"
                         "\nYou should set `dtype=object` for variable length strings.")
    out = np.full((len(sequences), maxlen) + sample_shape, value, dtype=dtype)
    for i, s in enumerate(sequences):
        if not len(s):
            continue
        if truncating == "pre":
            trunc = s[-maxlen:]
        elif truncating == "post":
            trunc = s[:maxlen]
        else:
            raise ValueError(f'Truncating type "{truncating}" not understood')
        trunc = np.asarray(trunc, dtype=dtype)
        if trunc.shape[1:] != sample_shape:
            raise ValueError(f"Shape of sample {trunc.shape[1:]} of sequence at position {i} "
                             f"is different from expected shape {sample_shape}")
        if padding == "post":
            out[i, :len(trunc)] = trunc
        elif padding == "pre":
            out[i, -len(trunc):] = trunc
        else:
            raise ValueError(f'Padding type "{padding}" not understood')
    return out


def to_categorical(x, num_classes=None):
    """One-hot encoding of class ids: shape ``x.shape + (num_classes,)`` (a
    trailing axis of 1 is dropped first), float, as Keras'."""
    x = np.array(x, dtype="int64")
    shape = x.shape
    if shape and shape[-1] == 1 and len(shape) > 1:
        shape = tuple(shape[:-1])
    x = x.reshape(-1)
    if not num_classes:
        num_classes = int(np.max(x)) + 1 if x.size else 0
    if x.size and (x.min() < 0 or x.max() >= num_classes):
        raise ValueError(f"to_categorical: class ids must lie in [0, {num_classes}), got "
                         f"{x.min()} to {x.max()}")
    out = np.zeros((x.shape[0], num_classes))
    out[np.arange(x.shape[0]), x] = 1
    return out.reshape(shape + (num_classes,))
