"""Keras' legacy HDF5 whole-model file (issue 24): ``model.save("m.h5")`` and
``load_model("m.h5")`` as Keras 3 writes and reads them (rnnkern/legacy_h5.py):
Keras' files load here with the same weights, predictions, compile configuration
and optimizer state; rnnkern's load into Keras and predict the same; a round trip
resumes training; ModelCheckpoint("best_model.h5", save_best_only=True) works in
``fit``; hostile files are refused unread with a SavedFileError naming the file."""
import json
import os
import warnings

os.environ.setdefault("KERAS_BACKEND", "torch")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

import rnnkern as rk  # noqa: E402
from rnnkern import callbacks as C  # noqa: E402
from rnnkern import layers as L  # noqa: E402
from rnnkern import legacy_h5  # noqa: E402
from rnnkern import models as M  # noqa: E402
from rnnkern import optimizers as O  # noqa: E402
from rnnkern.saving import SavedFileError  # noqa: E402
from helpers import keras_or_skip  # noqa: E402
from tolerances import assert_close  # noqa: E402

h5py = pytest.importorskip("h5py")

LEGACY = "considered legacy"


def sequential(Lm, Mm):
    return Mm.Sequential([Lm.Input((6, 3)), Lm.LSTM(5), Lm.Dense(2)])


def functional(Lm, Mm):
    """Wrappers, a nested model, and a frozen forward LSTM: Keras' legacy order
    puts a layer's trainable weights first, so the Bidirectional's backward
    weights come before its forward ones in the file."""
    i = Lm.Input((6, 3), name="inp")
    bidi = Lm.Bidirectional(Lm.LSTM(4, return_sequences=True))
    h = bidi(i)
    bidi.forward_layer.trainable = False
    inner = Mm.Sequential([Lm.Input((6, 8)), Lm.TimeDistributed(Lm.Dense(3))], name="inner")
    h = Lm.GRU(3)(inner(h))
    return Mm.Model(i, Lm.Dense(2, activation="tanh")(h))


def data(seed=0, n=16):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 6, 3)).astype("float32")
    y = np.stack([x[:, -1, 0], x[:, :, 1].mean(axis=1)], axis=1).astype("float32")
    return x, y


def save_quietly(model, path, **kw):
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*" + LEGACY)
        model.save(path, **kw)


def same_weights(a, b):
    assert len(a) == len(b)
    for u, v in zip(a, b):
        np.testing.assert_array_equal(u, v)


# ------------------------------------------------------------- Keras' files

@pytest.mark.parametrize("build", [sequential, functional])
def test_keras_file_loads_with_its_weights_compile_config_and_optimizer(build, tmp_path):
    keras = keras_or_skip()
    keras.utils.clear_session()
    theirs = build(keras.layers, keras.models)
    loss = "mse" if build is sequential else keras.losses.MeanSquaredError()
    theirs.compile(optimizer=keras.optimizers.Adam(0.01), loss=loss, metrics=["mae"])
    x, y = data()
    theirs.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)
    path = str(tmp_path / "keras.h5")
    save_quietly(theirs, path)

    rk.utils.clear_session()
    mine = M.load_model(path)
    assert type(mine) is (M.Sequential if build is sequential else M.Model)
    assert [l.name for l in mine.layers] == [l.name for l in theirs.layers]
    same_weights(mine.get_weights(), theirs.get_weights())
    assert_close(mine.predict(x, verbose=0), theirs.predict(x, verbose=0), "keras_f32",
                 "Keras' .h5 file")
    # compile configuration and the whole optimizer state
    assert mine.compiled and isinstance(mine.optimizer, O.Adam)
    assert mine.optimizer.learning_rate == pytest.approx(0.01)
    assert mine.optimizer.iterations == int(theirs.optimizer.iterations) == 2
    assert mine._compile_config["metrics"] == ["mae"]
    if build is sequential:
        assert mine.loss == "mse"
    else:
        assert type(rk.losses.get(mine.loss)).__name__ == "MeanSquaredError"
    ours_vars = mine.optimizer.variables
    assert len(ours_vars) == len(theirs.optimizer.variables)
    for a, b in zip(ours_vars, theirs.optimizer.variables):
        np.testing.assert_array_equal(a, keras.ops.convert_to_numpy(b))
    # it evaluates as Keras does
    assert_close(mine.evaluate(x, y, verbose=0), theirs.evaluate(x, y, verbose=0),
                 "training_f32", "evaluate")
    # compile=False: the same model, not compiled
    bare = M.load_model(path, compile=False)
    assert not bare.compiled
    same_weights(bare.get_weights(), theirs.get_weights())


# ------------------------------------------------------------- rnnkern's files

@pytest.mark.parametrize("build", [sequential, functional])
def test_rnnkern_file_loads_into_keras(build, tmp_path):
    keras = keras_or_skip()
    rk.utils.clear_session()
    ours = build(L, M)
    # Keras' own h5 loader cannot rebuild the abbreviated loss names ("mse") from a
    # training_config (keras-team/keras#19330); the full name round-trips in both
    ours.compile(optimizer=O.Adam(0.01), loss="mean_squared_error", metrics=["mae"])
    x, y = data(1)
    ours.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)
    path = str(tmp_path / "ours.h5")
    with pytest.warns(UserWarning, match=LEGACY):
        ours.save(path)
    with h5py.File(path, "r") as f:   # Keras' names and order, as Keras writes them
        assert json.loads(f.attrs["model_config"])["class_name"] == \
            ("Sequential" if build is sequential else "Functional")
        names = list(f["model_weights"].attrs["layer_names"])
        assert names == [l.name for l in ours.layers]
        opt_names = list(f["optimizer_weights"].attrs["weight_names"])
        if build is sequential:
            assert list(f["model_weights/lstm"].attrs["weight_names"]) == [
                "sequential/lstm/lstm_cell/kernel", "sequential/lstm/lstm_cell/recurrent_kernel",
                "sequential/lstm/lstm_cell/bias"]
            assert opt_names[:4] == ["adam/iteration", "adam/learning_rate",
                                     "adam/sequential_lstm_lstm_cell_kernel_momentum",
                                     "adam/sequential_lstm_lstm_cell_kernel_velocity"]
        else:
            assert list(f["model_weights/bidirectional"].attrs["weight_names"])[::3] == [
                "bidirectional/backward_lstm/lstm_cell/kernel",
                "bidirectional/forward_lstm/lstm_cell/kernel"]
            assert list(f["model_weights/inner"].attrs["weight_names"]) == [
                "inner/time_distributed/dense/kernel", "inner/time_distributed/dense/bias"]
            assert opt_names[2] == "adam/bidirectional_backward_lstm_lstm_cell_kernel_momentum"
    keras.utils.clear_session()
    theirs = keras.models.load_model(path)
    same_weights(theirs.get_weights(), ours.get_weights())
    assert_close(theirs.predict(x, verbose=0), ours.predict(x, verbose=0), "keras_f32",
                 "rnnkern's .h5 file in Keras")
    assert type(theirs.optimizer).__name__ == "Adam"
    assert float(theirs.optimizer.learning_rate) == pytest.approx(0.01)
    assert int(theirs.optimizer.iterations) == 2
    assert_close(theirs.evaluate(x, y, verbose=0), ours.evaluate(x, y, verbose=0),
                 "training_f32", "evaluate")


def test_round_trip_resumes_training_and_names_both_suffixes(tmp_path):
    rk.utils.clear_session()
    m = functional(L, M)
    m.compile(optimizer=O.Adam(0.01), loss="mse", metrics=["mae"])
    x, y = data(2)
    m.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)
    for name in ("m.h5", "m.hdf5"):
        save_quietly(m, tmp_path / name)
        back = M.load_model(tmp_path / name)
        assert back.get_config() == m.get_config()
        same_weights(back.get_weights(), m.get_weights())
        same_weights(back.optimizer.variables, m.optimizer.variables)
        assert back.loss == "mse" and back._compile_config["metrics"] == ["mae"]
    np.testing.assert_array_equal(back.predict(x, verbose=0), m.predict(x, verbose=0))
    # an HDF5 file by another name is found by its signature
    os.replace(tmp_path / "m.hdf5", tmp_path / "model_file")
    same_weights(M.load_model(tmp_path / "model_file").get_weights(), m.get_weights())
    # the optimizer state came along: one more epoch gives the same weights
    m.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)
    back.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)
    for a, b in zip(m.get_weights(), back.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)


def test_uncompiled_models_overwrite_and_unbuilt_optimizers(tmp_path):
    rk.utils.clear_session()
    m = sequential(L, M)
    p = str(tmp_path / "plain.h5")
    save_quietly(m, p)
    with h5py.File(p, "r") as f:
        assert "training_config" not in f.attrs and "optimizer_weights" not in f
    with pytest.warns(UserWarning, match="not\\* compiled"):
        back = M.load_model(p)
    assert not back.compiled
    same_weights(back.get_weights(), m.get_weights())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        M.load_model(p, compile=False)
    with pytest.raises(FileExistsError, match="overwrite=False"):
        save_quietly(m, p, overwrite=False)
    # compiled, never trained: Keras writes the iteration and learning rate only
    m.compile(optimizer=O.RMSprop(0.003), loss="mae")
    save_quietly(m, p)
    with h5py.File(p, "r") as f:
        assert list(f["optimizer_weights"].attrs["weight_names"]) == [
            "rm_sprop/iteration", "rm_sprop/learning_rate"]   # Keras' name too
    back = M.load_model(p)
    assert isinstance(back.optimizer, O.RMSprop) and back.optimizer.iterations == 0
    assert back.optimizer.learning_rate == pytest.approx(0.003)


def test_long_name_lists_are_split_as_keras_splits_them(tmp_path):
    names = [f"layer_{i:04d}_" .encode() + b"x" * 900 for i in range(150)]
    with h5py.File(tmp_path / "n.h5", "w") as f:
        legacy_h5._write_names(f, "layer_names", names)
        assert "layer_names" not in f.attrs and "layer_names2" in f.attrs
        r = legacy_h5._Reader(h5py, "n.h5")
        assert r.names(f, "layer_names", "layer_names") == [n.decode() for n in names]


# ------------------------------------------------------------ ModelCheckpoint

def test_model_checkpoint_best_model_h5_in_fit(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rk.utils.clear_session()
    m = M.Sequential([L.Input((6, 3)), L.LSTM(4), L.Dense(1)])
    m.compile(optimizer=O.Adam(0.05), loss="mse")
    x, y = data(3, n=40)
    y = y[:, :1]
    snapshots = []

    class Snapshot(C.Callback):
        def on_epoch_end(self, epoch, logs=None):
            snapshots.append(self.model.get_weights())

    ckpt = C.ModelCheckpoint("best_model.h5", save_best_only=True, monitor="val_loss")
    with pytest.warns(UserWarning, match=LEGACY):
        hist = m.fit(x, y, batch_size=8, epochs=2, validation_split=0.25, verbose=0,
                     callbacks=[ckpt, Snapshot()])
    best = int(np.argmin(hist.history["val_loss"]))
    loaded = M.load_model("best_model.h5")
    same_weights(loaded.get_weights(), snapshots[best])
    m.set_weights(snapshots[best])
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), m.predict(x, verbose=0))
    assert loaded.evaluate(x[30:], y[30:], verbose=0) == pytest.approx(
        hist.history["val_loss"][best], rel=1e-5)
    # Keras' load_weights("best_model.h5") reads a whole-model file's weights too
    fresh = M.Sequential([L.Input((6, 3)), L.LSTM(4), L.Dense(1)])
    legacy_h5.load_weights_from_hdf5(fresh, "best_model.h5")
    same_weights(fresh.get_weights(), snapshots[best])
    with pytest.raises(TypeError, match="into a model"):
        legacy_h5.load_weights_from_hdf5(fresh.layers[0], "best_model.h5")


# ------------------------------------------------------------- hostile files

@pytest.fixture
def good(tmp_path):
    rk.utils.clear_session()
    m = sequential(L, M)
    m.compile(optimizer="adam", loss="mse")
    m.fit(*data(), epochs=1, verbose=0)
    p = str(tmp_path / "good.h5")
    save_quietly(m, p)
    return m, p


def copy_with(src, dst, edit):
    """A copy of HDF5 file src, changed by edit(f)."""
    with open(src, "rb") as a, open(dst, "wb") as b:
        b.write(a.read())
    with h5py.File(dst, "a") as f:
        edit(f)
    return dst


def refused(path, match, **kw):
    with pytest.raises(SavedFileError, match=match) as e:
        M.load_model(path, **kw)
    assert os.path.basename(path) in str(e.value)


def test_not_hdf5_and_missing_config(good, tmp_path):
    m, p = good
    text = tmp_path / "text.h5"
    text.write_text("not a model")
    refused(str(text), "not a readable HDF5 model file")
    w = str(tmp_path / "w.weights.h5")
    m.save_weights(w)
    refused(w, "no model config found.*load_weights")
    refused(copy_with(p, str(tmp_path / "nocfg.h5"),
                      lambda f: f.attrs.__delitem__("model_config")), "no model config found")
    for bad, match in ((b'{"class_name": "Seq', "not JSON"), (b"[1, 2]", "JSON object"),
                       (b"[" * 100000, "not JSON"),
                       (b"\xff\xfe", "not (UTF-8|JSON)"), (np.arange(3), "not text"),
                       ({"class_name": "Sequential", "config": 3}, "no 'config' object"),
                       ({"class_name": "Subclassed", "config": {}}, "'Subclassed' model"),
                       ({"class_name": "Sequential", "config": {"layers": [
                           {"class_name": "Nope", "config": {}}]}}, "unknown layer class")):
        bad = json.dumps(bad).encode() if isinstance(bad, dict) else bad
        refused(copy_with(p, str(tmp_path / "badcfg.h5"),
                          lambda f, bad=bad: f.attrs.__setitem__("model_config", bad)), match)


@pytest.mark.parametrize("safe_mode", [True, False])
def test_lambda_in_the_config_is_refused(good, tmp_path, safe_mode):
    _, p = good

    def plant(f):
        cfg = json.loads(f.attrs["model_config"])
        cfg["config"]["layers"].insert(2, {"class_name": "Lambda", "config": {
            "name": "planted", "function": ["4wEAAAAAAAAA", None, None]}})
        f.attrs["model_config"] = json.dumps(cfg).encode()
    refused(copy_with(p, str(tmp_path / "lambda.h5"), plant),
            r"Lambda layer \('planted'\).*never runs code", safe_mode=safe_mode)


def test_wrong_and_huge_shapes_are_refused_unread(good, tmp_path):
    _, p = good
    kernel = "model_weights/dense/sequential/dense/kernel"

    def wrong(f):
        del f[kernel]
        f.create_dataset(kernel, data=np.zeros((3, 2), np.float32))
    wrong_file = copy_with(p, str(tmp_path / "wrong.h5"), wrong)
    refused(wrong_file, r"'sequential/dense/kernel'.*has shape \(3, 2\) in the file.*\(5, 2\)")
    # load_weights(skip_mismatch=True), as Keras: that weight is kept, with a warning
    m, _ = good
    before = m.get_weights()
    m.set_weights([w + 1 for w in before])
    with pytest.warns(UserWarning, match="skipping weight 'sequential/dense/kernel'"):
        legacy_h5.load_weights_from_hdf5(m, wrong_file, skip_mismatch=True)
    after = m.get_weights()
    np.testing.assert_array_equal(after[3], before[3] + 1)
    same_weights(after[:3] + after[4:], before[:3] + before[4:])

    def huge(f):   # declares 2**40 floats, stores a few bytes
        del f[kernel]
        f.create_dataset(kernel, shape=(2 ** 20, 2 ** 20), dtype="f4", chunks=(1, 64),
                         compression="gzip")
    big = copy_with(p, str(tmp_path / "huge.h5"), huge)
    assert os.path.getsize(big) < 1 << 20
    refused(big, r"has shape \(1048576, 1048576\) in the file")

    def text_dtype(f):
        del f[kernel]
        f.create_dataset(kernel, data=np.full((5, 2), b"x", dtype="S1"))
    refused(copy_with(p, str(tmp_path / "dtype.h5"), text_dtype), "not a real number array")


def test_links_missing_datasets_and_other_architectures(good, tmp_path):
    _, p = good
    kernel = "model_weights/dense/sequential/dense/kernel"

    def soft(f):
        del f[kernel]
        f[kernel] = h5py.SoftLink("/model_weights/lstm/sequential/lstm/lstm_cell/kernel")
    refused(copy_with(p, str(tmp_path / "soft.h5"), soft), "SoftLink.*does not follow")

    def external(f):
        del f[kernel]
        f[kernel] = h5py.ExternalLink("/etc/passwd", "/x")
    refused(copy_with(p, str(tmp_path / "ext.h5"), external), "ExternalLink")

    refused(copy_with(p, str(tmp_path / "gone.h5"), lambda f: f.__delitem__(kernel)),
            "'sequential/dense/kernel'.*is missing")

    def fewer_layers(f):
        f["model_weights/dense"].attrs["weight_names"] = []
    refused(copy_with(p, str(tmp_path / "fewer.h5"), fewer_layers),
            "weights of 1 layers, the model has 2")

    def fewer_weights(f):
        names = list(f["model_weights/dense"].attrs["weight_names"])
        f["model_weights/dense"].attrs["weight_names"] = names[:1]
        f.attrs["training_config"] = b"{}"
    refused(copy_with(p, str(tmp_path / "fewerw.h5"), fewer_weights),
            "has 1 weights in the file, the model's has 2")

    def bad_names(f):
        f["model_weights"].attrs["layer_names"] = np.zeros((2, 2))
    refused(copy_with(p, str(tmp_path / "names.h5"), bad_names), "must be a list of names")

    def no_optimizer_config(f):
        f.attrs["training_config"] = b'{"loss": "mse"}'
    refused(copy_with(p, str(tmp_path / "tc.h5"), no_optimizer_config),
            "no optimizer_config")


def test_optimizer_state_that_does_not_fit_is_skipped_with_a_warning(good, tmp_path):
    m, p = good

    def shrink(f):
        name = "optimizer_weights/adam/sequential_dense_bias_momentum"
        del f[name]
        f.create_dataset(name, shape=(2 ** 30,), dtype="f4", chunks=(64,), compression="gzip")
    q = copy_with(p, str(tmp_path / "opt.h5"), shrink)
    with pytest.warns(UserWarning, match="freshly initialized optimizer"):
        back = M.load_model(q)
    same_weights(back.get_weights(), m.get_weights())
    assert back.optimizer.iterations == 0
