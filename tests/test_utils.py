"""rnnkern.utils: the data helpers (against Keras' NumPy implementations where
Keras is installed), seeding, and the progress bar's text."""
import os

os.environ.setdefault("KERAS_BACKEND", "torch")

import io  # noqa: E402
import re  # noqa: E402
import sys  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402

import rnnkern as rk  # noqa: E402
from rnnkern.utils import (Progbar, pad_sequences, timeseries_dataset_from_array,  # noqa: E402
                           to_categorical)
from rnnkern.utils.progbar import resolve_verbose  # noqa: E402
from helpers import capture_stdout  # noqa: E402


def keras_utils():
    keras = pytest.importorskip("keras")
    return keras.utils


SEQS = [[1, 2, 3], [4, 5], [], [6, 7, 8, 9, 10]]


@pytest.mark.parametrize("kw", [dict(), dict(maxlen=3), dict(padding="post"),
                                dict(truncating="post", maxlen=2), dict(value=-1, maxlen=6),
                                dict(dtype="float32", padding="post", truncating="post",
                                     maxlen=4)], ids=str)
def test_pad_sequences_matches_keras(kw):
    ours = pad_sequences(SEQS, **kw)
    assert ours.dtype == np.dtype(kw.get("dtype", "int32"))
    ku = keras_utils()
    np.testing.assert_array_equal(ours, ku.pad_sequences(SEQS, **kw))


def test_pad_sequences_known_values_and_errors():
    np.testing.assert_array_equal(pad_sequences([[1, 2], [3]]), [[1, 2], [0, 3]])
    np.testing.assert_array_equal(pad_sequences([[1, 2, 3]], maxlen=2), [[2, 3]])
    with pytest.raises(ValueError, match="Padding type"):
        pad_sequences(SEQS, padding="middle")
    with pytest.raises(ValueError, match="non-iterable"):
        pad_sequences([1, 2])


@pytest.mark.parametrize("x,n", [([0, 2, 1], None), ([[1], [3]], 5), (np.arange(6).reshape(2, 3), 6)])
def test_to_categorical_matches_keras(x, n):
    ours = to_categorical(x, n)
    np.testing.assert_array_equal(ours, keras_utils().to_categorical(x, n))


def test_to_categorical_errors():
    with pytest.raises(ValueError, match=r"class ids must lie in \[0, 2\)"):
        to_categorical([0, 2], 2)


def test_timeseries_windows_and_targets():
    data = np.arange(100, dtype="float32")
    ds = timeseries_dataset_from_array(data[:-10], data[10:], sequence_length=10,
                                       batch_size=16)
    batches = list(ds)
    assert len(ds) == len(batches) == 6  # 81 windows
    x = np.concatenate([b[0] for b in batches])
    y = np.concatenate([b[1] for b in batches])
    assert x.shape == (81, 10) and y.shape == (81,)
    np.testing.assert_array_equal(x[5], np.arange(5, 15))
    np.testing.assert_array_equal(y, np.arange(10, 91))   # the value after each window
    # stride, sampling rate, start / end
    ds = timeseries_dataset_from_array(data, None, sequence_length=3, sequence_stride=4,
                                       sampling_rate=2, start_index=10, end_index=30,
                                       batch_size=None)
    (x,) = list(ds)
    np.testing.assert_array_equal(x[0], [10, 12, 14])
    np.testing.assert_array_equal(x[1], [14, 16, 18])
    assert x[-1][-1] < 30
    # shuffle: the same windows, another order, reproducible from the seed
    a = np.concatenate([b[0] for b in timeseries_dataset_from_array(
        data, data, 5, batch_size=8, shuffle=True, seed=3)])
    b = np.concatenate([b[0] for b in timeseries_dataset_from_array(
        data, data, 5, batch_size=8, shuffle=True, seed=3)])
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a[:, 0], np.sort(a[:, 0]))
    np.testing.assert_array_equal(np.sort(a[:, 0]), np.arange(96))


def test_timeseries_errors():
    data = np.arange(10)
    with pytest.raises(ValueError, match="start_index"):
        timeseries_dataset_from_array(data, None, 3, start_index=10)
    with pytest.raises(ValueError, match="sequence_stride"):
        timeseries_dataset_from_array(data, None, 3, sequence_stride=0)
    with pytest.raises(ValueError, match="sampling_rate"):
        timeseries_dataset_from_array(data, None, 3, sampling_rate=10)


def test_set_random_seed_makes_layers_reproducible():
    rk.utils.set_random_seed(11)
    a = rk.layers.Dense(4)
    a.build((None, 3))
    rk.utils.set_random_seed(11)
    b = rk.layers.Dense(4)
    b.build((None, 3))
    np.testing.assert_array_equal(a.kernel, b.kernel)
    with pytest.raises(ValueError, match="integer"):
        rk.utils.set_random_seed(1.5)


def test_progbar_matches_keras_text():
    """The same updates give Keras' characters (timings normalized)."""
    keras = pytest.importorskip("keras")

    def drive(cls, verbose):
        bar = cls(target=12, verbose=verbose, interval=0.0)
        for i in range(1, 13):
            bar.update(i, [("loss", 1.0 / i), ("mae", 1e-5 * i)])

    def norm(s):  # timings vary, and with them the padding and the backspaces
        s = re.sub(r"\d+(ms|us|s)", "T", s)
        s = re.sub(r" +(?=[\x08\r\n])", "", s)
        return re.sub(r"\x08+", "<bs>", s)
    for verbose in (1, 2):
        ours = capture_stdout(lambda: drive(Progbar, verbose))
        theirs = capture_stdout(lambda: drive(keras.utils.Progbar, verbose))
        assert norm(ours) == norm(theirs)
    assert "12/12 - T - T/step - loss: 0.0833 - mae: 1.2000e-04\n" == norm(
        capture_stdout(lambda: drive(Progbar, 2)))


def test_resolve_verbose(monkeypatch):
    assert resolve_verbose(0) == 0 and resolve_verbose(2) == 2
    monkeypatch.setattr(sys, "stdout", io.StringIO())  # not a terminal
    assert resolve_verbose("auto") == 2
    with pytest.raises(ValueError, match="verbose"):
        resolve_verbose(3)
