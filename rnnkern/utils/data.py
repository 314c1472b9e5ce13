"""The notebooks' data helpers, by Keras 3's names and arguments:
``timeseries_dataset_from_array`` (sliding windows of a series, batched),
``pad_sequences`` and ``to_categorical``."""
from __future__ import annotations

import math

import numpy as np

__all__ = ["timeseries_dataset_from_array", "pad_sequences", "to_categorical",
           "TimeseriesDataset", "Dataset", "DatasetArray"]


class DatasetArray(np.ndarray):
    """A NumPy array as the datasets here yield it, that also answers
    ``.numpy()`` (a plain ndarray of the same data) as the tf.Tensor of a
    tf.data batch does: keras-io examples write ``inputs.numpy().shape`` and
    ``x[0][:, 1].numpy()`` (slices stay DatasetArrays). Everything else is the
    ndarray's; models take it as any array."""

    def numpy(self):
        return self.view(np.ndarray)


def _as_dataset_arrays(element):
    if isinstance(element, tuple):
        return tuple(_as_dataset_arrays(e) for e in element)
    if isinstance(element, list):
        return [_as_dataset_arrays(e) for e in element]
    if isinstance(element, dict):
        return {k: _as_dataset_arrays(v) for k, v in element.items()}
    if isinstance(element, np.ndarray):
        return element.view(DatasetArray)
    return element


def _plain(element):
    if isinstance(element, (tuple, list)):
        return type(element)(_plain(e) for e in element)
    if isinstance(element, dict):
        return {k: _plain(v) for k, v in element.items()}
    return element.view(np.ndarray) if isinstance(element, np.ndarray) else element


def _split(element, i):
    """Sample ``i`` of a batch (an array, or a tuple / list / dict of them)."""
    if isinstance(element, (tuple, list)):
        return type(element)(_split(e, i) for e in element)
    if isinstance(element, dict):
        return {k: _split(v, i) for k, v in element.items()}
    return element[i]


def _batch_size_of(element):
    while isinstance(element, (tuple, list, dict)):
        element = next(iter(element.values())) if isinstance(element, dict) else element[0]
    return len(element)


def _stack(elements):
    first = elements[0]
    if isinstance(first, (tuple, list)):
        return type(first)(_stack([e[j] for e in elements]) for j in range(len(first)))
    if isinstance(first, dict):
        return {k: _stack([e[k] for e in elements]) for k in first}
    return np.stack([np.asarray(e) for e in elements])


def _count_arg(name, v):
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
        raise TypeError(f"`{name}` must be an int, got {v!r}")
    return int(v)


class Dataset:
    """An iterable of batches with the tf.data habits keras-io examples use on
    the dataset of ``timeseries_dataset_from_array``: ``for x, y in ds``,
    ``len(ds)``, ``ds.take(n)``, ``ds.skip(n)``, ``ds.unbatch()``,
    ``ds.batch(k, drop_remainder=False)``, ``ds.as_numpy_iterator()`` and
    ``ds.cardinality()``. Its elements are :class:`DatasetArray` (or tuples of
    them), which answer ``.numpy()``; ``as_numpy_iterator()`` yields plain
    ndarrays. Every pass re-runs the source (a shuffled source draws a new
    order). ``len()`` raises TypeError where the length is unknown, as tf.data's.
    ``fit``, ``evaluate`` and ``predict`` take any of them."""

    def __init__(self, make_iter, length=None):
        self._make_iter = make_iter
        self._length = length

    def __iter__(self):
        for element in self._make_iter():
            yield _as_dataset_arrays(element)

    def __len__(self):
        if self._length is None:
            raise TypeError("The dataset length is unknown.")
        return self._length

    def cardinality(self):
        """The number of elements, or -2 when unknown (tf.data's UNKNOWN)."""
        return -2 if self._length is None else self._length

    def as_numpy_iterator(self):
        """The elements as plain NumPy arrays (tf.data's ``as_numpy_iterator``)."""
        for element in self._make_iter():
            yield _plain(element)

    def take(self, count):
        """The first ``count`` elements (all of them for ``count=-1``)."""
        count = _count_arg("count", count)
        if count < -1:
            raise ValueError(f"`count` must be -1 (all) or >= 0, got {count}")
        if count == -1:
            return Dataset(self._make_iter, self._length)

        def make():
            if count == 0:
                return
            for i, element in enumerate(self._make_iter()):
                yield element
                if i + 1 >= count:
                    return
        return Dataset(make, None if self._length is None else min(count, self._length))

    def skip(self, count):
        """Every element after the first ``count`` (none for ``count=-1``)."""
        count = _count_arg("count", count)
        if count < -1:
            raise ValueError(f"`count` must be -1 (all) or >= 0, got {count}")
        if count == -1:
            return Dataset(lambda: iter(()), 0)

        def make():
            for i, element in enumerate(self._make_iter()):
                if i >= count:
                    yield element
        return Dataset(make, None if self._length is None else max(self._length - count, 0))

    def unbatch(self):
        """One element per sample of every batch."""
        def make():
            for element in self._make_iter():
                for i in range(_batch_size_of(element)):
                    yield _split(element, i)
        return Dataset(make, self._num_samples())

    def _num_samples(self):
        return None

    def batch(self, batch_size, drop_remainder=False):
        """Consecutive elements stacked ``batch_size`` at a time (the last,
        smaller batch dropped with ``drop_remainder=True``)."""
        batch_size = _count_arg("batch_size", batch_size)
        if batch_size < 1:
            raise ValueError(f"`batch_size` must be a positive int, got {batch_size}")

        def make():
            buf = []
            for element in self._make_iter():
                buf.append(element)
                if len(buf) == batch_size:
                    yield _stack(buf)
                    buf = []
            if buf and not drop_remainder:
                yield _stack(buf)
        n = self._length
        if n is not None:
            n = n // batch_size if drop_remainder else -(-n // batch_size)
        return Dataset(make, n)


class TimeseriesDataset(Dataset):
    """The batches of ``timeseries_dataset_from_array``: iterate it for
    ``(x_batch, y_batch)`` (or ``x_batch`` without targets), as ``fit``,
    ``evaluate`` and ``predict`` do; ``len()`` is the number of batches, and
    the tf.data habits of :class:`Dataset` apply.

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
        n = math.ceil(len(positions) / self._batch) if len(positions) else 0
        super().__init__(self._batches, n)

    def _num_samples(self):
        return len(self._positions)

    def _batches(self):
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
    the same way and has the habits examples use: ``take``, ``skip``,
    ``unbatch``, ``batch``, ``as_numpy_iterator``, batches answering
    ``.numpy()``)."""
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
