"""rnnkern.keras against keras.layers: the same weights inside the same compiled
Keras model, trained a few steps (fit on the torch backend), give the same
predictions, losses and weights, for every cell and option the kernels serve;
what they do not serve falls back to Keras' loop with a warning; the layers
serialize as Keras layers."""
import os

os.environ.setdefault("KERAS_BACKEND", "torch")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

keras = pytest.importorskip("keras")
pytest.importorskip("torch")
if keras.backend.backend() != "torch":   # pragma: no cover
    pytest.skip("rnnkern.keras serves the torch backend", allow_module_level=True)
rkk = pytest.importorskip("rnnkern.keras")

from tolerances import assert_close  # noqa: E402

pytestmark = pytest.mark.filterwarnings(
    "ignore::DeprecationWarning", "ignore:.*does not support masking:UserWarning",
    "ignore:Skipping variable loading:UserWarning")

CELLS = ["SimpleRNN", "LSTM", "GRU"]
OPTIONS = {
    "plain": {},
    "sequences": {"return_sequences": True},
    "backwards_state": {"go_backwards": True, "return_state": True},
    "no_bias_relu": {"use_bias": False, "activation": "relu"},
    "hard_sigmoid": {"recurrent_activation": "hard_sigmoid"},
    "reset_before": {"reset_after": False},
}


def cell_options(cell, name):
    kw = dict(OPTIONS[name])
    if cell == "SimpleRNN":
        kw.pop("recurrent_activation", None)
    if cell != "GRU":
        kw.pop("reset_after", None)
    return kw


def build_model(lib, cell, kw, masked, bidirectional):
    keras.utils.set_random_seed(0)
    inp = keras.Input((9, 4))
    x = keras.layers.Masking(0.0)(inp) if masked else inp
    layer = getattr(lib, cell)(6, **kw)
    if bidirectional:
        layer = keras.layers.Bidirectional(layer)
    out = layer(x)
    if isinstance(out, (list, tuple)):
        out = keras.layers.Concatenate()([keras.layers.Flatten()(o) for o in out])
    elif len(out.shape) == 3:
        out = keras.layers.Flatten()(out)
    model = keras.Model(inp, keras.layers.Dense(2)(out))
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="mse")
    return model


def data(masked):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((16, 9, 4)).astype("float32")
    if masked:
        for i in range(16):
            x[i, 9 - (i % 5):] = 0.0   # right padding of 0..4 steps
        x[3, :4] = 0.0                 # and a leading run
    y = rng.standard_normal((16, 2)).astype("float32")
    return x, y


def rnnkern_layers(model):
    """The rnnkern.keras layers of a model (inside Bidirectional too)."""
    found = []
    for layer in model.layers:
        for sub in (layer, getattr(layer, "forward_layer", None),
                    getattr(layer, "backward_layer", None)):
            if isinstance(sub, (rkk.SimpleRNN, rkk.LSTM, rkk.GRU)):
                found.append(sub)
    return found


def train_both(cell, kw, masked=False, bidirectional=False, epochs=3, backend=None):
    x, y = data(masked)
    ref = build_model(keras.layers, cell, kw, masked, bidirectional)
    mine = build_model(rkk, cell, kw, masked, bidirectional)
    mine.set_weights(ref.get_weights())
    if backend is not None:
        for layer in rnnkern_layers(mine):
            layer.rnnkern_backend = backend
    out = []
    for m in (ref, mine):
        keras.utils.set_random_seed(1)   # dropout draws from the backend's global RNG
        p0 = m.predict(x, verbose=0)
        hist = m.fit(x, y, batch_size=8, epochs=epochs, shuffle=False, verbose=0)
        out.append((p0, hist.history["loss"], m.get_weights(), m.predict(x, verbose=0)))
    return out


@pytest.mark.parametrize("option", list(OPTIONS))
@pytest.mark.parametrize("cell", CELLS)
def test_fit_parity(cell, option):
    kw = cell_options(cell, option)
    if option == "reset_before" and cell != "GRU":
        pytest.skip("reset_after is GRU's")
    (p0r, lr, wr, pr), (p0m, lm, wm, pm) = train_both(cell, kw)
    assert_close(p0m, p0r, "keras_f32", "predict before training")
    assert_close(lm, lr, "training_f32", "losses")
    for a, b in zip(wm, wr):
        assert_close(a, b, "training_f32", "trained weights")
    assert_close(pm, pr, "training_f32", "predict after training")


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("bidirectional", [False, True])
def test_fit_parity_masked(cell, bidirectional):
    (p0r, lr, wr, pr), (p0m, lm, wm, pm) = train_both(
        cell, {"return_sequences": True}, masked=True, bidirectional=bidirectional)
    assert_close(p0m, p0r, "keras_f32", "masked predict")
    assert_close(lm, lr, "training_f32", "masked losses")
    for a, b in zip(wm, wr):
        assert_close(a, b, "training_f32", "masked trained weights")


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("rates", [(0.3, 0.0), (0.0, 0.3), (0.25, 0.2)],
                         ids=["dropout", "recurrent", "both"])
def test_fit_parity_dropout(cell, rates):
    """Keras' own dropout masks (one per gate where Keras draws one per gate), read
    from its cell and applied inside rnnkern's kernels: training matches Keras'."""
    kw = {"dropout": rates[0], "recurrent_dropout": rates[1], "return_sequences": True}
    (p0r, lr, wr, pr), (p0m, lm, wm, pm) = train_both(cell, kw, masked=True)
    assert_close(p0m, p0r, "keras_f32", "dropout predict")
    assert_close(lm, lr, "training_f32", "dropout losses")
    for a, b in zip(wm, wr):
        assert_close(a, b, "training_f32", "dropout trained weights")


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("case", ["plain", "masked_bidirectional", "dropout_reset_before"])
def test_fit_parity_on_the_device_path(cell, case):
    """The device path CUDA tensors take (rnnkern's GPU kernels on the tensors in
    place, Keras' weight layout read where it is), run in CI by CPU tensors on
    cuda-emu: fit matches Keras and nothing is copied to or from the host."""
    from rnnkern import _core, backends as bk
    if "cuda-emu" not in bk.backends():   # pragma: no cover
        pytest.skip("cuda-emu is not built")
    kw = {"return_sequences": True}
    if case == "dropout_reset_before":
        kw.update(dropout=0.25, recurrent_dropout=0.2)
        if cell == "GRU":
            kw["reset_after"] = False
    masked = bidirectional = case == "masked_bidirectional"
    before = _core.gpu_host_transfers("cuda-emu")
    (p0r, lr, wr, pr), (p0m, lm, wm, pm) = train_both(cell, kw, masked, bidirectional,
                                                      epochs=2, backend="cuda-emu")
    assert _core.gpu_host_transfers("cuda-emu") == before
    assert_close(p0m, p0r, "keras_f32", "device path predict")
    assert_close(lm, lr, "training_f32", "device path losses")
    for a, b in zip(wm, wr):
        assert_close(a, b, "training_f32", "device path trained weights")


def test_cuda_tensors_are_served_not_refused():
    """A CUDA tensor is no longer a reason to fall back: where the cuda backend is
    usable the kernels serve it, else the reason names what is missing."""
    import torch
    from rnnkern import backends as bk
    layer = rkk.LSTM(5)

    class OnCuda:   # what unsupported_reason reads of a tensor
        dtype = torch.float32
        device = torch.device("cuda", 0)
    reason = rkk.unsupported_reason(layer, OnCuda(), False)
    if bk.cuda_status()[0]:   # pragma: no cover - needs a GPU
        assert reason is None
    else:
        assert "cuda backend is not usable here" in reason
    OnCuda.dtype = torch.float64
    assert "runs float32" in rkk.unsupported_reason(layer, OnCuda(), False)

    class OnMeta:
        dtype = torch.float32
        device = torch.device("meta")
    assert "CPU and on CUDA devices" in rkk.unsupported_reason(layer, OnMeta(), False)


def test_runs_on_rnnkern_kernels(monkeypatch):
    """The loop really is rnnkern's: Keras' own inner loop is never called."""
    calls = []
    monkeypatch.setattr(keras.layers.LSTM, "inner_loop",
                        lambda *a, **k: calls.append(1) or (_ for _ in ()).throw(AssertionError))
    layer = rkk.LSTM(5)
    layer(np.ones((2, 3, 4), "float32"))
    assert calls == []


def test_fallback_warns_once_and_matches():
    x, _ = data(False)
    keras.utils.set_random_seed(0)
    ref = keras.layers.GRU(5, activation="softsign")
    mine = rkk.GRU(5, activation="softsign")
    ref.build(x.shape)
    mine.build(x.shape)
    mine.set_weights(ref.get_weights())
    rkk.layers._warned.clear()
    with pytest.warns(UserWarning, match="running Keras' own loop: activation"):
        got = mine(x)
    assert_close(keras.ops.convert_to_numpy(got), keras.ops.convert_to_numpy(ref(x)),
                 "keras_f32", "fallback")
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        mine(x)                                   # once per class and reason
    layer = rkk.LSTM(5, dropout=0.3)
    assert rkk.unsupported_reason(layer, keras.ops.convert_to_tensor(x), True) is None
    assert "activation" in rkk.unsupported_reason(mine, keras.ops.convert_to_tensor(x), True)


def test_save_and_load(tmp_path):
    x, _ = data(False)
    model = build_model(rkk, "LSTM", {"return_sequences": True}, False, True)
    path = str(tmp_path / "m.keras")
    model.save(path)
    back = keras.models.load_model(path)
    kinds = {type(layer.forward_layer).__module__ for layer in back.layers
             if isinstance(layer, keras.layers.Bidirectional)}
    assert kinds == {"rnnkern.keras.layers"}
    assert_close(back.predict(x, verbose=0), model.predict(x, verbose=0), "keras_f32",
                 "reloaded")
