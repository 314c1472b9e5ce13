"""``import rnnkern as keras`` as a whole: the keras.* names real Keras
sequence-model examples use resolve (tests/data/keras_example_names.txt, read
from the examples named there), the submodules rnnkern does not need at import
are imported on first use, a Keras name rnnkern lacks is an error that says so,
and the module-level helpers Keras scripts reach for (keras.backend,
keras.random, keras.ops' array functions, the tf.data habits on datasets, the
summary of a model not built yet) behave as Keras'."""
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

import rnnkern
from rnnkern.utils.data import Dataset, DatasetArray, timeseries_dataset_from_array

from helpers import child_env, keras_or_skip

os.environ.setdefault("KERAS_BACKEND", "torch")

NAMES = pathlib.Path(__file__).parent / "data" / "keras_example_names.txt"


def _example_names():
    out = []
    for line in NAMES.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and line not in out:
            out.append(line)
    return out


def _resolve(dotted):
    parts = dotted.split(".")
    assert parts[0] == "keras", dotted
    obj = rnnkern
    for p in parts[1:]:
        obj = getattr(obj, p)
    return obj


@pytest.mark.parametrize("name", _example_names())
def test_example_name_resolves(name):
    assert _resolve(name) is not None


def test_names_file_is_not_empty():
    assert len(_example_names()) >= 30


def test_lazy_submodules_in_a_fresh_interpreter():
    code = ("import sys, rnnkern as keras\n"
            "assert 'rnnkern.preprocessing' not in sys.modules\n"
            "assert 'rnnkern.random' not in sys.modules\n"
            "assert keras.optimizers.Adam and keras.callbacks.EarlyStopping\n"
            "assert keras.preprocessing.sequence.pad_sequences\n"
            "assert 'rnnkern.preprocessing' in sys.modules\n"
            "assert keras.random.normal and keras.backend.backend() == 'numpy'\n"
            "assert 'preprocessing' in dir(keras)\n"
            "print('ok')\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=child_env(), timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr


@pytest.mark.parametrize("module, name, words", [
    (rnnkern, "applications", "keras.applications is not part of rnnkern"),
    (rnnkern.ops, "fft", "keras.ops.fft is not part of rnnkern"),
])
def test_missing_names_say_so(module, name, words):
    with pytest.raises(AttributeError, match=words):
        getattr(module, name)


def test_missing_submodule_names_say_so():
    import rnnkern.backend
    import rnnkern.preprocessing
    import rnnkern.random
    for mod, name in ((rnnkern.preprocessing, "image_dataset_from_directory"),
                      (rnnkern.backend, "set_floatx"), (rnnkern.random, "set_seed")):
        with pytest.raises(AttributeError, match=f"keras.{mod.__name__.split('.')[1]}.{name} "
                                                 "is not part of rnnkern"):
            getattr(mod, name)


# ------------------------------------------------------- keras.backend, random, ops

def test_backend():
    import rnnkern.backend as B
    assert B.backend() == "numpy" and B.floatx() == "float32" and B.epsilon() == 1e-7
    assert B.image_data_format() == "channels_last"
    assert B.is_keras_tensor(rnnkern.Input((3,))) and not B.is_keras_tensor(np.zeros(3))
    rnnkern.layers.Dense(2)
    B.clear_session()
    assert rnnkern.layers.Dense(2).name == "dense"


def test_random_seeding_rules():
    import rnnkern.random as R
    a, b = R.normal((3, 4), seed=7), R.normal((3, 4), seed=7)
    np.testing.assert_array_equal(a, b)                        # an int seed repeats
    assert a.dtype == np.float32 and a.shape == (3, 4)
    assert not np.array_equal(R.uniform((5,)), R.uniform((5,)))   # None draws anew
    g1, g2 = R.SeedGenerator(3), R.SeedGenerator(3)
    s1 = [R.uniform((4,), seed=g1) for _ in range(2)]
    s2 = [R.uniform((4,), seed=g2) for _ in range(2)]
    np.testing.assert_array_equal(s1[0], s2[0])                # a seeded generator replays
    np.testing.assert_array_equal(s1[1], s2[1])
    assert not np.array_equal(s1[0], s1[1])                    # and advances
    r = R.randint((1000,), 2, 5, seed=1)
    assert r.dtype == np.int32 and r.min() == 2 and r.max() == 4
    t = R.truncated_normal((2000,), mean=1.0, stddev=0.5, seed=2)
    assert np.abs(t - 1.0).max() <= 1.0
    u = R.uniform((2000,), minval=-1, maxval=3, seed=4)
    assert u.min() >= -1 and u.max() < 3
    x = np.ones((200, 50), np.float32)
    d = R.dropout(x, 0.25, seed=5)
    assert set(np.unique(d)) <= {0.0, np.float32(1 / 0.75)} and 0.15 < (d == 0).mean() < 0.35
    d2 = R.dropout(x, 0.5, noise_shape=(200, 1), seed=5)
    assert all(len(np.unique(row)) == 1 for row in d2)         # one draw per row
    s = R.shuffle(np.arange(10), seed=0)
    assert sorted(s) == list(range(10)) and not np.array_equal(s, np.arange(10))
    c = R.categorical(np.log([[0.0001, 0.9999], [0.9999, 0.0001]]), 50, seed=1)
    assert c.shape == (2, 50) and c[0].mean() > 0.9 and c[1].mean() < 0.1
    with pytest.raises(ValueError, match="seed must be"):
        R.normal((2,), seed="x")


def test_ops_array_functions():
    import rnnkern.ops as ops
    x = np.array([[1.0, -2.0, 3.0], [0.5, 4.0, -1.0]], np.float32)
    assert ops.expand_dims(x, 0).shape == (1, 2, 3)
    np.testing.assert_array_equal(ops.argmax(x, axis=1), [2, 1])
    np.testing.assert_allclose(ops.softmax(x).sum(-1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(ops.sigmoid(x), 1 / (1 + np.exp(-x)), rtol=1e-6)
    np.testing.assert_array_equal(ops.relu(x), np.maximum(x, 0))
    np.testing.assert_array_equal(ops.one_hot(np.array([0, 2]), 3),
                                  [[1, 0, 0], [0, 0, 1]])
    assert ops.mean(np.array([1, 2])).dtype.kind == "f"
    assert ops.shape(x) == (2, 3) and ops.convert_to_numpy([1, 2]).tolist() == [1, 2]
    with pytest.raises(TypeError, match="symbolic tensors.*Lambda"):
        ops.expand_dims(rnnkern.Input((3,)), 0)
    # the kernel-level API is still there beside them
    assert callable(ops.rnn_forward) and callable(ops.rnn_backward)


# ------------------------------------------------------------- tf.data habits

def _dataset(batch_size=8):
    data = np.arange(100, dtype=np.float32).reshape(50, 2)
    targets = np.arange(50, dtype=np.float32)
    return timeseries_dataset_from_array(data, targets, sequence_length=5,
                                         batch_size=batch_size)


def test_dataset_batches_answer_numpy():
    ds = _dataset()
    assert isinstance(ds, Dataset) and len(ds) == 6 and ds.cardinality() == 6
    for batch in ds.take(1):
        inputs, targets = batch
    assert isinstance(inputs, DatasetArray)
    assert type(inputs.numpy()) is np.ndarray and inputs.numpy().shape == (8, 5, 2)
    assert targets.numpy().shape == (8,)
    np.testing.assert_array_equal(inputs[0][:, 1].numpy(), [1, 3, 5, 7, 9])
    for x in ds.as_numpy_iterator():
        assert type(x[0]) is np.ndarray and type(x[1]) is np.ndarray


def test_dataset_take_skip_unbatch_batch():
    ds = _dataset()
    whole = [b[0].numpy() for b in ds]
    assert [b[0].shape[0] for b in ds] == [8, 8, 8, 8, 8, 6]
    assert len(ds.take(2)) == 2 and len(ds.take(100)) == 6 and len(ds.take(-1)) == 6
    assert len(list(ds.take(0))) == 0
    np.testing.assert_array_equal(next(iter(ds.skip(5)))[0], whole[5])
    assert len(ds.skip(4)) == 2 and len(ds.skip(-1)) == 0
    samples = list(ds.unbatch())
    assert len(ds.unbatch()) == 46 == len(samples)
    np.testing.assert_array_equal(samples[9][0], whole[1][1])
    assert samples[9][1] == 9.0
    rebatched = list(ds.unbatch().batch(20))
    assert [b[0].shape for b in rebatched] == [(20, 5, 2), (20, 5, 2), (6, 5, 2)]
    assert len(ds.unbatch().batch(20, drop_remainder=True)) == 2
    np.testing.assert_array_equal(rebatched[0][0], np.concatenate(whole)[:20])
    with pytest.raises(TypeError, match="length is unknown"):
        len(ds.unbatch().take(3).unbatch())
    with pytest.raises(ValueError, match="count"):
        ds.take(-2)
    with pytest.raises(TypeError, match="count"):
        ds.take(1.5)


def test_fit_and_predict_take_dataset_views():
    rnnkern.utils.set_random_seed(0)
    ds = _dataset()
    model = rnnkern.Sequential([rnnkern.Input((5, 2)), rnnkern.layers.LSTM(4),
                                rnnkern.layers.Dense(1)])
    model.compile("adam", "mse")
    hist = model.fit(ds.take(3), validation_data=ds.skip(4), epochs=2, verbose=0)
    assert len(hist.history["loss"]) == 2 and "val_loss" in hist.history
    for x, _ in ds.take(1):
        pred = model.predict(x, verbose=0)
    assert type(pred) is np.ndarray and pred.shape == (8, 1)


# -------------------------------------------------------- unbuilt models' summary

def _summary(model):
    out = []
    model.summary(print_fn=lambda s, **_: out.append(s))
    return "".join(out)


def test_unbuilt_sequential_summary(monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    L = rnnkern.layers
    model = rnnkern.Sequential([L.Embedding(1000, 64, name="embedding"),
                                L.LSTM(128, name="lstm"), L.Dense(10, name="dense")],
                               name="sequential")
    assert _summary(model) == """\
Model: "sequential"
┏━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━┓
┃ Layer (type)                    ┃ Output Shape           ┃       Param # ┃
┡━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━┩
│ embedding (Embedding)           │ ?                      │   0 (unbuilt) │
├─────────────────────────────────┼────────────────────────┼───────────────┤
│ lstm (LSTM)                     │ ?                      │   0 (unbuilt) │
├─────────────────────────────────┼────────────────────────┼───────────────┤
│ dense (Dense)                   │ ?                      │   0 (unbuilt) │
└─────────────────────────────────┴────────────────────────┴───────────────┘
 Total params: 0 (0.00 B)
 Trainable params: 0 (0.00 B)
 Non-trainable params: 0 (0.00 B)
"""
    # built by a call, the same model prints its shapes (batch included, as
    # Keras) and counts
    model(np.zeros((2, 7), np.int32))
    text = _summary(model)
    assert "unbuilt" not in text and "(2, 10)" in text and "164,106" in text


@pytest.mark.parametrize("columns", ["80", "120"])
def test_unbuilt_summary_matches_keras(columns, monkeypatch):
    keras = keras_or_skip()
    monkeypatch.setenv("COLUMNS", columns)

    def build(mod):
        L = mod.layers
        return mod.Sequential([L.Embedding(1000, 64, name="emb"), L.GRU(32, name="gru"),
                               L.Dense(1, name="out")], name="unbuilt")
    assert _summary(build(rnnkern)) == _summary(build(keras))
