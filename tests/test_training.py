"""Training as Keras 3 does it: compile / fit / evaluate / predict and the
per-batch methods against Keras' own numbers (same weights, same data,
shuffle off), the data forms fit takes, the progress output, the callbacks,
stateful training and whole-model files (rnnkern's and Keras' .keras, both
ways)."""
import os

os.environ.setdefault("KERAS_BACKEND", "torch")

import re  # noqa: E402
import zipfile  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402

import rnnkern as rk  # noqa: E402
from rnnkern import callbacks as C  # noqa: E402
from rnnkern import layers as L  # noqa: E402
from rnnkern import models as M  # noqa: E402
from rnnkern import optimizers as O  # noqa: E402
from helpers import capture_stdout, keras_or_skip  # noqa: E402
from tolerances import assert_close  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning",
                                        "ignore:Do not pass an `input_shape`:UserWarning")


def forecaster(Lm, Mm):
    return Mm.Sequential([Lm.Input((12, 2)), Lm.SimpleRNN(8, return_sequences=True),
                          Lm.LSTM(6), Lm.Dense(1)])


def classifier(Lm, Mm):
    return Mm.Sequential([Lm.Input((10,)), Lm.Embedding(30, 4, mask_zero=True),
                          Lm.Bidirectional(Lm.GRU(5)), Lm.Dense(3, activation="softmax")])


def regression_data(rng, n=96):
    x = rng.standard_normal((n, 12, 2)).astype("float32")
    y = (x[:, -3:, 0].sum(axis=1, keepdims=True) * 0.3).astype("float32")
    return x, y


def token_data(rng, n=96):
    x = rng.integers(1, 30, size=(n, 10))
    x[::3, :4] = 0
    y = (x[:, -1] % 3).astype("int64")
    return x, y


def pair(build, keras, seed=0):
    rk.utils.clear_session()
    keras.utils.clear_session()
    ours = build(L, M)
    theirs = build(keras.layers, keras.models)
    rng = np.random.default_rng(seed)
    ws = [w + rng.uniform(-0.1, 0.1, w.shape).astype("float32") for w in theirs.get_weights()]
    theirs.set_weights(ws)
    ours.set_weights(ws)
    return ours, theirs


OPTIMIZERS = [
    ("adam", lambda o: o.Adam(learning_rate=0.01)),
    ("sgd-momentum", lambda o: o.SGD(learning_rate=0.05, momentum=0.9, nesterov=True)),
    ("rmsprop", lambda o: o.RMSprop(learning_rate=0.005)),
    ("adamw-clip", lambda o: o.AdamW(learning_rate=0.01, clipnorm=0.5)),
    ("adagrad", lambda o: o.Adagrad(learning_rate=0.05)),
]


@pytest.mark.parametrize("opt", OPTIMIZERS, ids=[o[0] for o in OPTIMIZERS])
def test_fit_matches_keras_regression(opt, rng):
    keras = keras_or_skip()
    ours, theirs = pair(forecaster, keras)
    x, y = regression_data(rng)
    kw = dict(loss="mse", metrics=["mae"])
    ours.compile(optimizer=opt[1](O), **kw)
    theirs.compile(optimizer=opt[1](keras.optimizers), **kw)
    fit = dict(epochs=3, batch_size=16, shuffle=False, verbose=0, validation_split=0.25)
    h_ours = ours.fit(x, y, **fit).history
    h_theirs = theirs.fit(x, y, **fit).history
    assert list(h_ours) == list(h_theirs) == ["loss", "mae", "val_loss", "val_mae"]
    for k in h_theirs:
        assert_close(h_ours[k], h_theirs[k], "training_f32", k)
    for a, b in zip(ours.get_weights(), theirs.get_weights()):
        assert_close(a, b, "training_f32", "weights after fit")
    assert_close(ours.evaluate(x, y, verbose=0), theirs.evaluate(x, y, verbose=0),
                 "training_f32", "evaluate")
    assert_close(ours.predict(x, verbose=0), theirs.predict(x, verbose=0), "training_f32",
                 "predict")


def test_fit_matches_keras_classification_with_mask(rng):
    keras = keras_or_skip()
    ours, theirs = pair(classifier, keras)
    x, y = token_data(rng)
    kw = dict(loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    ours.compile(optimizer="adam", **kw)
    theirs.compile(optimizer="adam", **kw)
    fit = dict(epochs=2, batch_size=32, shuffle=False, verbose=0)
    h_ours, h_theirs = ours.fit(x, y, **fit).history, theirs.fit(x, y, **fit).history
    assert list(h_ours) == list(h_theirs)
    for k in h_theirs:
        assert_close(h_ours[k], h_theirs[k], "training_f32", k)
    assert ours.metrics_names == theirs.metrics_names


def test_batch_methods_match_keras(rng):
    keras = keras_or_skip()
    ours, theirs = pair(forecaster, keras)
    x, y = regression_data(rng, 32)
    for m, o in ((ours, O), (theirs, keras.optimizers)):
        m.compile(optimizer=o.Adam(0.01), loss="mse", metrics=["mae"])
    for _ in range(3):
        assert_close(ours.train_on_batch(x, y), theirs.train_on_batch(x, y), "training_f32",
                     "train_on_batch")
    assert_close(ours.test_on_batch(x, y), theirs.test_on_batch(x, y), "training_f32",
                 "test_on_batch")
    assert_close(ours.predict_on_batch(x), keras.ops.convert_to_numpy(
        theirs.predict_on_batch(x)), "training_f32", "predict_on_batch")
    d = ours.train_on_batch(x, y, return_dict=True)
    assert list(d) == ["loss", "mae"]


def test_multi_output_model_matches_keras(rng):
    keras = keras_or_skip()

    def build(Lm, Mm):
        x = Lm.Input((6, 3))
        seq, h = Lm.GRU(5, return_sequences=True, return_state=True)(x)
        a = Lm.Dense(2, name="a")(h)
        b = Lm.Dense(1, activation="sigmoid", name="b")(Lm.SimpleRNN(3)(seq))
        return Mm.Model(x, [a, b])
    ours, theirs = pair(build, keras)
    x = rng.standard_normal((40, 6, 3)).astype("float32")
    ya = rng.standard_normal((40, 2)).astype("float32")
    yb = (rng.random((40, 1)) > 0.5).astype("float32")
    kw = dict(optimizer="rmsprop", loss={"a": "mse", "b": "binary_crossentropy"},
              loss_weights={"a": 1.0, "b": 0.5}, metrics={"a": ["mae"], "b": ["accuracy"]})
    ours.compile(**kw)
    theirs.compile(**kw)
    fit = dict(epochs=2, batch_size=8, shuffle=False, verbose=0)
    h_ours = ours.fit(x, {"a": ya, "b": yb}, **fit).history
    h_theirs = theirs.fit(x, {"a": ya, "b": yb}, **fit).history
    assert sorted(h_ours) == sorted(h_theirs)
    for k in h_theirs:
        assert_close(h_ours[k], h_theirs[k], "training_f32", k)


# ------------------------------------------------------------- data forms

def small_model():
    rk.utils.clear_session()
    m = M.Sequential([L.Input((5, 2)), L.SimpleRNN(4), L.Dense(1)])
    m.compile(optimizer=O.SGD(0.01), loss="mse")
    return m


def test_generators_iterables_dicts_and_steps(rng):
    x, y = rng.standard_normal((64, 5, 2)).astype("float32"), rng.standard_normal((64, 1))
    a = small_model()
    b = small_model()
    b.set_weights(a.get_weights())
    a.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0)
    batches = [(x[i:i + 16], y[i:i + 16]) for i in range(0, 64, 16)]

    class Batches:  # a re-iterable source of batches (as a DataLoader or PyDataset)
        def __iter__(self):
            return iter(batches)
    b.fit(Batches(), epochs=2, verbose=0)
    for u, v in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_allclose(u, v, rtol=1e-6)

    def gen():
        while True:
            yield from batches
    c = small_model()
    c.set_weights(b.get_weights())
    c.fit(gen(), steps_per_epoch=4, epochs=1, verbose=0)        # an endless generator
    rk.utils.clear_session()
    d = M.Sequential([L.Input((5, 2), name="series"), L.SimpleRNN(4), L.Dense(1)])
    d.compile(optimizer=O.SGD(0.01), loss="mse")
    d.set_weights(b.get_weights())
    d.fit({"series": x}, y, batch_size=16, epochs=1, shuffle=False, verbose=0)  # by name
    for u, v in zip(c.get_weights(), d.get_weights()):
        np.testing.assert_allclose(u, v, rtol=1e-6)
    with pytest.warns(UserWarning, match="ran out of data"):
        small_model().fit(iter(batches), epochs=3, verbose=0)   # a one-shot iterator
    assert small_model().evaluate(Batches(), verbose=0) > 0


def test_shuffle_is_seeded(rng):
    x, y = rng.standard_normal((64, 5, 2)).astype("float32"), rng.standard_normal((64, 1))
    runs = []
    for _ in range(2):
        rk.utils.set_random_seed(4)
        m = small_model()
        m.fit(x, y, batch_size=8, epochs=2, verbose=0)
        runs.append(m.get_weights())
    for u, v in zip(*runs):
        np.testing.assert_array_equal(u, v)


def test_fit_errors():
    m = M.Sequential([L.Input((5, 2)), L.SimpleRNN(4), L.Dense(1)])
    with pytest.raises(ValueError, match="compile"):
        m.fit(np.zeros((4, 5, 2)), np.zeros((4, 1)))
    m.compile(optimizer="adam", loss="mse")
    with pytest.raises(ValueError, match="same number of samples"):
        m.fit(np.zeros((4, 5, 2)), np.zeros((3, 1)), verbose=0)
    with pytest.raises(ValueError, match="batch_size"):
        m.fit(np.zeros((4, 5, 2)), np.zeros((4, 1)), batch_size=0, verbose=0)
    with pytest.raises(ValueError, match="validation_split"):
        m.fit(iter([]), validation_split=0.5, verbose=0)


# ------------------------------------------------------------ progress text

def normalize(text):
    text = re.sub(r"\d+(ms|us|s)\b", "T", text)
    text = re.sub(r" +(?=[\x08\r\n])", "", text)
    return re.sub(r"\x08+", "<bs>", text)


def final_lines(text):
    """Each epoch's last redraw (what stays on the screen)."""
    return [line.split("\r")[-1] for line in text.split("\n")]


@pytest.mark.parametrize("verbose", [1, 2])
def test_progress_output_matches_keras(verbose, rng):
    keras = keras_or_skip()
    ours, theirs = pair(forecaster, keras)
    x, y = regression_data(rng)
    for m, o in ((ours, O), (theirs, keras.optimizers)):
        m.compile(optimizer=o.Adam(0.01), loss="mse", metrics=["mae"])
    fit = dict(epochs=2, batch_size=16, shuffle=False, verbose=verbose, validation_split=0.25)
    got = capture_stdout(lambda: ours.fit(x, y, **fit))
    want = capture_stdout(lambda: theirs.fit(x, y, **fit))
    strip_numbers = lambda s: re.sub(r"\d\.\d{4}(e[-+]\d+)?", "F", s)  # noqa: E731
    assert final_lines(strip_numbers(normalize(got))) == \
        final_lines(strip_numbers(normalize(want)))
    got_e = capture_stdout(lambda: ours.evaluate(x, y, verbose=verbose))
    want_e = capture_stdout(lambda: theirs.evaluate(x, y, verbose=verbose))
    assert final_lines(strip_numbers(normalize(got_e))) == \
        final_lines(strip_numbers(normalize(want_e)))


def test_silent_and_auto_verbose(rng, capsys):
    m = small_model()
    x, y = rng.standard_normal((8, 5, 2)), rng.standard_normal((8, 1))
    m.fit(x, y, verbose=0)
    assert capsys.readouterr().out == ""
    m.fit(x, y, epochs=2)          # "auto" in a pipe: one line per epoch
    out = capsys.readouterr().out
    assert out.count("\n") == 4 and "Epoch 2/2" in out and "\r" not in out


# ---------------------------------------------------------------- callbacks

class Script(C.Callback):
    """Overwrites logs["val_loss"] with scripted values (runs before the others)."""

    def __init__(self, values):
        super().__init__()
        self.values = values

    def on_epoch_end(self, epoch, logs=None):
        logs["val_loss"] = self.values[epoch]


def test_model_checkpoint_best_only_and_formatting(rng, tmp_path, capsys):
    pytest.importorskip("h5py")   # .keras files hold a .weights.h5
    m = small_model()
    x, y = rng.standard_normal((16, 5, 2)), rng.standard_normal((16, 1))
    pattern = str(tmp_path / "ckpt-{epoch:02d}-{val_loss:.4f}.keras")
    cb = C.ModelCheckpoint(pattern, save_best_only=True, verbose=1)
    m.fit(x, y, epochs=4, validation_split=0.25, verbose=0,
          callbacks=[Script([0.5, 0.6, 0.4, 0.45]), cb])
    assert sorted(os.listdir(tmp_path)) == ["ckpt-01-0.5000.keras", "ckpt-03-0.4000.keras"]
    out = capsys.readouterr().out
    assert ("\nEpoch 1: val_loss improved from None to 0.50000, saving model to "
            f"{tmp_path}/ckpt-01-0.5000.keras\n") in out
    assert "\nEpoch 2: val_loss did not improve from 0.50000\n" in out
    best = M.load_model(tmp_path / "ckpt-03-0.4000.keras")
    assert best.count_params() == m.count_params()
    w = C.ModelCheckpoint(str(tmp_path / "w.weights.h5"), save_weights_only=True)
    m.fit(x, y, epochs=1, verbose=0, callbacks=[w])
    m2 = small_model()
    m2.load_weights(tmp_path / "w.weights.h5")
    for a, b in zip(m.get_weights(), m2.get_weights()):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match=r"must end in `\.keras`"):
        C.ModelCheckpoint("m.txt")


def test_early_stopping_restores_best_weights(rng, capsys):
    m = small_model()
    x, y = rng.standard_normal((16, 5, 2)), rng.standard_normal((16, 1))
    seen = []
    keep = C.LambdaCallback(on_epoch_end=lambda e, logs: seen.append(m.get_weights()))
    stop = C.EarlyStopping(patience=2, restore_best_weights=True, verbose=1)
    h = m.fit(x, y, epochs=10, validation_split=0.25, verbose=0,
              callbacks=[Script([0.9, 0.5, 0.7, 0.8, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1]), keep,
                         stop])
    assert len(h.history["loss"]) == 4 and stop.stopped_epoch == 3
    out = capsys.readouterr().out
    assert "Epoch 4: early stopping" in out
    assert "Restoring model weights from the end of the best epoch: 2." in out
    for a, b in zip(m.get_weights(), seen[1]):
        np.testing.assert_array_equal(a, b)


def test_reduce_lr_and_scheduler_match_keras(rng):
    keras = keras_or_skip()

    class KScript(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            logs["val_loss"] = [1.0, 1.0, 0.5, 1.0, 1.0, 1.0][epoch]
    x, y = regression_data(rng, 32)
    histories = []
    for lib, cbs, script in ((None, C, Script), (keras, keras.callbacks, KScript)):
        ours, theirs = pair(forecaster, keras)
        m, opt = (ours, O) if lib is None else (theirs, keras.optimizers)
        m.compile(optimizer=opt.Adam(learning_rate=0.01), loss="mse")
        cb = cbs.ReduceLROnPlateau(factor=0.5, patience=1, min_lr=0.002, cooldown=1)
        s = script([1.0, 1.0, 0.5, 1.0, 1.0, 1.0]) if lib is None else script()
        h = m.fit(x, y, epochs=6, validation_split=0.25, verbose=0, callbacks=[s, cb])
        sched = cbs.LearningRateScheduler(lambda epoch, lr: lr * 0.1 if epoch else 0.1)
        h2 = m.fit(x, y, epochs=3, verbose=0, callbacks=[sched])
        histories.append((h.history, h2.history))
    (a1, a2), (b1, b2) = histories
    assert list(a1) == list(b1) and list(a2) == list(b2)
    np.testing.assert_allclose(a1["learning_rate"], b1["learning_rate"], rtol=1e-6)
    np.testing.assert_allclose(a2["learning_rate"], b2["learning_rate"], rtol=1e-6)
    np.testing.assert_allclose(a2["learning_rate"], [0.1, 0.01, 0.001], rtol=1e-6)


def test_csv_logger_terminate_on_nan_and_lambda(rng, tmp_path):
    m = small_model()
    x, y = rng.standard_normal((16, 5, 2)), rng.standard_normal((16, 1))
    path = tmp_path / "log.csv"
    m.compile(optimizer="adam", loss="mse", metrics=["mae"])
    m.fit(x, y, epochs=2, validation_split=0.25, verbose=0, callbacks=[C.CSVLogger(path)])
    lines = path.read_text().splitlines()
    assert lines[0] == "epoch,loss,mae,val_loss,val_mae" and len(lines) == 3
    assert lines[1].startswith("0,")
    bad = y.copy()
    bad[3] = np.nan
    events = []
    lam = C.LambdaCallback(on_train_begin=lambda logs: events.append("begin"),
                           on_train_batch_end=lambda b, logs: events.append(b),
                           on_train_end=lambda logs: events.append("end"))
    h = m.fit(x, bad, batch_size=4, epochs=3, shuffle=False, verbose=0,
              callbacks=[C.TerminateOnNaN(), lam])
    assert events == ["begin", 0, "end"] and len(h.history["loss"]) == 1


def test_stop_training_from_a_callback(rng):
    m = small_model()
    x, y = rng.standard_normal((32, 5, 2)), rng.standard_normal((32, 1))

    class Stop(C.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if batch == 1:
                self.model.stop_training = True
    h = m.fit(x, y, batch_size=8, epochs=5, verbose=0, callbacks=[Stop()])
    assert len(h.history["loss"]) == 1


# ------------------------------------------------------------------ stateful

def stateful_model():
    rk.utils.clear_session()
    m = M.Sequential([L.Input(batch_shape=(4, None, 1)),
                      L.LSTM(6, stateful=True, return_sequences=True, seed=1), L.Dense(1)])
    m.compile(optimizer=O.SGD(0.05), loss="mse")
    return m


def test_stateful_training_carries_states(rng):
    x = rng.standard_normal((12, 5, 1)).astype("float32")   # 3 batches of 4 rows
    y = np.roll(x, -1, axis=1)
    a = stateful_model()
    b = stateful_model()
    b.set_weights(a.get_weights())
    a.fit(x, y, batch_size=4, epochs=1, shuffle=False, verbose=0)
    for i in range(0, 12, 4):                                 # the same by hand
        b.train_on_batch(x[i:i + 4], y[i:i + 4])
    for u, v in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_allclose(u, v, rtol=1e-6)
    kept = a.layers[0].states
    assert kept is not None and kept[0].shape == (4, 6)
    a.reset_states()
    assert a.layers[0].states is None
    with pytest.raises(ValueError, match="batch size"):
        a.fit(x[:6], y[:6], batch_size=6, epochs=1, verbose=0)


def test_stateful_needs_a_fixed_batch_size():
    with pytest.raises(ValueError, match="batch size must be static"):
        M.Sequential([L.Input((None, 1)), L.LSTM(3, stateful=True)])


# ------------------------------------------------------------- model files

@pytest.mark.parametrize("ext", [".rnnkern", ".keras"])
def test_save_and_load_model_resumes_training(ext, rng, tmp_path):
    if ext == ".keras":
        pytest.importorskip("h5py")
    rk.utils.clear_session()
    m = classifier(L, M)
    m.compile(optimizer=O.Adam(0.01), loss="sparse_categorical_crossentropy",
              metrics=["accuracy"])
    x, y = token_data(rng)
    m.fit(x, y, epochs=1, shuffle=False, verbose=0)
    path = tmp_path / f"model{ext}"
    m.save(path)
    assert zipfile.is_zipfile(path)
    loaded = M.load_model(path)
    assert type(loaded) is M.Sequential and loaded.compiled
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), m.predict(x, verbose=0))
    # the optimizer state came along: one more epoch gives the same weights
    m.fit(x, y, epochs=1, shuffle=False, verbose=0)
    loaded.fit(x, y, epochs=1, shuffle=False, verbose=0)
    for a, b in zip(m.get_weights(), loaded.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)


def test_keras_files_both_ways(rng, tmp_path):
    keras = keras_or_skip()
    pytest.importorskip("h5py")
    ours, theirs = pair(forecaster, keras)
    x, y = regression_data(rng)
    for m, o in ((ours, O), (theirs, keras.optimizers)):
        m.compile(optimizer=o.Adam(0.01), loss="mse", metrics=["mae"])
        m.fit(x, y, epochs=1, shuffle=False, verbose=0)
    theirs.save(tmp_path / "keras.keras")
    mine = M.load_model(tmp_path / "keras.keras")            # Keras' file, read by rnnkern
    assert_close(mine.predict(x, verbose=0), theirs.predict(x, verbose=0), "training_f32",
                 "Keras file")
    assert mine.optimizer.iterations == theirs.optimizer.iterations
    ours.save(tmp_path / "ours.keras")
    back = keras.models.load_model(tmp_path / "ours.keras")  # ours, read by Keras
    assert_close(back.predict(x, verbose=0), ours.predict(x, verbose=0), "training_f32",
                 "rnnkern file")
    # both continue training alike from the files
    mine.fit(x, y, epochs=1, shuffle=False, verbose=0)
    theirs.fit(x, y, epochs=1, shuffle=False, verbose=0)
    for a, b in zip(mine.get_weights(), theirs.get_weights()):
        assert_close(a, b, "training_f32", "resumed")


def test_load_model_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        M.load_model(tmp_path / "none.keras")
    (tmp_path / "bad.keras").write_text("not a zip")
    with pytest.raises(ValueError, match="zip"):
        M.load_model(tmp_path / "bad.keras")
    import json
    cfg = {"module": "keras", "class_name": "Sequential", "config": {"name": "s", "layers": [
        {"module": "keras.layers", "class_name": "InputLayer",
         "config": {"batch_shape": [None, 3], "dtype": "float32", "name": "in"}},
        {"module": "keras.layers", "class_name": "MultiHeadAttention", "config": {}}]}}
    with zipfile.ZipFile(tmp_path / "unsupported.keras", "w") as z:
        z.writestr("config.json", json.dumps(cfg))
    with pytest.raises(ValueError, match="unknown layer class 'MultiHeadAttention'"):
        M.load_model(tmp_path / "unsupported.keras")
    m = small_model()
    with pytest.raises(ValueError, match=r"\.keras .* or \.rnnkern"):
        m.save(tmp_path / "m.txt")


def test_one_fit_at_a_time_per_model_and_concurrent_predict(rng):
    """fit from a second thread while one runs is refused with a clear error (never two
    trainings interleaving their updates); predict from several threads at once gives
    each the sequential result bitwise."""
    import threading
    import rnnkern.layers as L
    from rnnkern.models import Sequential
    from helpers import run_in_threads
    model = Sequential([L.Input((6, 3)), L.LSTM(8), L.Dense(1)])
    model.compile(optimizer="adam", loss="mse")
    x = rng.standard_normal((64, 6, 3)).astype(np.float32)
    y = rng.standard_normal((64, 1)).astype(np.float32)
    want = model.predict(x, verbose=0)
    got = run_in_threads(lambda k: model.predict(x, verbose=0), 4)
    for g in got:
        np.testing.assert_array_equal(g, want)
    started, release = threading.Event(), threading.Event()

    class Hold(rk.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            started.set()
            release.wait(30)

    t = threading.Thread(target=lambda: model.fit(x, y, epochs=1, batch_size=64, verbose=0,
                                                  callbacks=[Hold()]))
    t.start()
    assert started.wait(30)
    try:
        with pytest.raises(RuntimeError, match="already being fitted"):
            model.fit(x, y, epochs=1, verbose=0)
    finally:
        release.set()
        t.join(60)
    assert not t.is_alive()
    model.fit(x, y, epochs=1, batch_size=32, verbose=0)   # free again afterwards
