"""The Keras notebooks' models on rnnkern (tests/notebook_models.py builds each
with Keras and with rnnkern from the same code): parameter counts, Keras 3's
summaries character for character, Keras' outputs with Keras' weights on every
backend, gradients against torch autograd through the Keras model, weight
files both ways, Sequential / functional construction, configs, threads and
bad input."""
import os

os.environ.setdefault("KERAS_BACKEND", "torch")

import threading  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402

import rnnkern as rk  # noqa: E402
import rnnkern.layers as RL  # noqa: E402
import rnnkern.models as RM  # noqa: E402
from conftest import BACKENDS  # noqa: E402
from helpers import keras_or_skip, run_in_threads  # noqa: E402
from notebook_models import MODELS, as_input, inputs  # noqa: E402
from tolerances import assert_close  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning",
                                        "ignore:Do not pass an `input_shape`:UserWarning")


def build_ours(name, backend=None):
    rk.utils.clear_session()
    model = MODELS[name][0](RL, RM)
    if backend is not None:
        set_backend(model, backend)
    return model


def build_keras(name):
    keras = keras_or_skip()
    keras.utils.clear_session()
    return MODELS[name][0](keras.layers, keras.models)


def set_backend(model, backend):
    def visit(layer):
        if hasattr(layer, "backend"):
            layer.backend = backend
        for sub in layer._sublayers():
            visit(sub)
    visit(model)


def randomize_keras(km, rng):
    km.set_weights([w + rng.uniform(-0.2, 0.2, w.shape).astype(np.float32)
                    for w in km.get_weights()])


def captured_summary(model, **kw):
    out = []
    model.summary(print_fn=lambda s, **_: out.append(s), **kw)
    return "".join(out)


# --------------------------------------------------------- counts, summary

COUNTED = [n for n, (_, _, counts) in MODELS.items() if counts is not None]


@pytest.mark.parametrize("name", COUNTED)
def test_notebook_parameter_counts(name):
    """The counts the notebooks print (no Keras needed)."""
    model = build_ours(name)
    counts = [layer.count_params() for layer in model.layers]
    assert counts == MODELS[name][2]
    assert model.count_params() == sum(counts)


def test_summary_text_without_keras(monkeypatch):
    """Keras 3's table for the SimpleRNN notebook, at an 80-column terminal."""
    monkeypatch.setenv("COLUMNS", "80")
    text = captured_summary(build_ours("simple_rnn"))
    assert text == """\
Model: "sequential"
┏━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━┓
┃ Layer (type)                    ┃ Output Shape           ┃       Param # ┃
┡━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━┩
│ simple_rnn (SimpleRNN)          │ (None, 128)            │        16,896 │
├─────────────────────────────────┼────────────────────────┼───────────────┤
│ dense (Dense)                   │ (None, 2)              │           258 │
└─────────────────────────────────┴────────────────────────┴───────────────┘
 Total params: 17,154 (67.01 KB)
 Trainable params: 17,154 (67.01 KB)
 Non-trainable params: 0 (0.00 B)
"""


def test_summary_prints_to_stdout(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    model = build_ours("simple_rnn")
    model.summary()
    assert capsys.readouterr().out == captured_summary(model)


@pytest.mark.parametrize("columns", ["80", "200", "60"])
@pytest.mark.parametrize("name", list(MODELS))
def test_summary_matches_keras(name, columns, monkeypatch):
    monkeypatch.setenv("COLUMNS", columns)
    km = build_keras(name)
    ours = build_ours(name)
    assert captured_summary(ours) == captured_summary(km)


@pytest.mark.parametrize("kw", [dict(line_length=100), dict(show_trainable=True),
                                dict(positions=[0.5, 0.7, 1.0]), dict(expand_nested=True),
                                dict(layer_range=["lstm", "dense"])])
def test_summary_options_match_keras(kw, monkeypatch):
    monkeypatch.setenv("COLUMNS", "120")
    km, ours = build_keras("cnn_lstm"), build_ours("cnn_lstm")
    km.layers[-1].trainable = False
    ours.layers[-1].trainable = False
    assert captured_summary(ours, **kw) == captured_summary(km, **kw)


# --------------------------------------------------------- Keras' numbers

@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", list(MODELS))
def test_outputs_match_keras(name, backend, rng):
    if backend == "cuda-emu" and name == "lstm_1000":
        pytest.skip("cuda-emu: the 1000-unit model takes a minute emulated (the others run)")
    km = build_keras(name)
    randomize_keras(km, rng)
    ours = build_ours(name, backend)
    ours.set_weights(km.get_weights())
    xs = inputs(name, rng)
    want = km.predict(as_input(xs), verbose=0)
    got = ours.predict(as_input(xs))
    want, got = (want, got) if isinstance(got, list) else ([want], [got])
    assert len(got) == len(want)
    for a, b in zip(got, want):
        assert_close(a, b, "keras_f32", f"{name} on {backend}")
    # calling the model is predict on one batch
    again = ours(as_input(xs), training=False)
    for a, b in zip(again if isinstance(again, list) else [again], got):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("name", list(MODELS))
def test_gradients_match_torch_autograd_through_keras(name, rng):
    keras_or_skip()
    import torch
    km = build_keras(name)
    randomize_keras(km, rng)
    ours = build_ours(name)
    ours.set_weights(km.get_weights())
    xs = inputs(name, rng)
    xt = [torch.tensor(x, requires_grad=x.dtype.kind == "f") for x in xs]
    for v in km.trainable_weights:
        v.value.grad = None
    kout = km(as_input(xt))
    kouts = kout if isinstance(kout, (list, tuple)) else [kout]
    R = [rng.standard_normal(tuple(o.shape)).astype(np.float32) for o in kouts]
    sum((o * torch.tensor(r)).sum() for o, r in zip(kouts, R)).backward()

    out = ours(as_input(xs))
    for a, b in zip(out if isinstance(out, list) else [out], kouts):
        assert_close(a, b.detach().numpy(), "keras_f32", f"{name} forward")
    dx = ours.backward(as_input(R))
    dxs = dx if isinstance(dx, list) else [dx]
    for d, t in zip(dxs, xt):
        if t.requires_grad:
            assert_close(d, t.grad.numpy(), "backward_f32", f"{name} d_input")
        else:
            assert d is None or not d.any()  # token ids have no gradient
    assert len(ours.grads) == len(km.trainable_weights)
    for g, v, p in zip(ours.grads, km.trainable_weights, ours.weight_paths()):
        assert_close(g, v.value.grad.numpy(), "backward_f32", f"{name} d {p}")
    # each layer's grads are its part of the model's
    flat = [g for layer in ours.layers for g in layer.grads]
    for a, b in zip(flat, ours.grads):
        assert a is b


def test_masked_bidirectional_outputs_zeros_at_masked_steps(rng):
    x = rng.standard_normal((2, 5, 3)).astype(np.float32)
    mask = np.array([[1, 1, 0, 1, 0], [0, 1, 1, 1, 1]], bool)
    layer = RL.Bidirectional(RL.GRU(4, return_sequences=True))
    y = layer(x, mask=mask)
    assert np.all(y[~mask] == 0) and np.all(y[mask] != 0)
    keras = keras_or_skip()
    kl = keras.layers.Bidirectional(keras.layers.GRU(4, return_sequences=True))
    kl.build((None, 5, 3))
    kl.set_weights(layer.get_weights())
    assert_close(y, keras.ops.convert_to_numpy(kl(x, mask=mask)), "keras_f32", "masked")


# ------------------------------------------------------------ weight files

@pytest.mark.parametrize("name", list(MODELS))
def test_keras_weights_h5_both_ways(name, rng, tmp_path):
    pytest.importorskip("h5py")
    km = build_keras(name)
    randomize_keras(km, rng)
    km.save_weights(tmp_path / "keras.weights.h5")
    ours = build_ours(name)
    ours.load_weights(tmp_path / "keras.weights.h5")
    for a, b in zip(ours.get_weights(), km.get_weights()):
        np.testing.assert_array_equal(a, b)
    # and back: a file rnnkern writes loads into Keras
    ours.set_weights([w * 0.5 for w in ours.get_weights()])
    ours.save_weights(tmp_path / "ours.weights.h5")
    km.load_weights(tmp_path / "ours.weights.h5")
    for a, b in zip(ours.get_weights(), km.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_npz_round_trip_and_mismatch(rng, tmp_path):
    model = build_ours("encoder_decoder")
    model.set_weights([rng.standard_normal(w.shape) for w in model.get_weights()])
    model.save_weights(tmp_path / "w.npz")
    other = build_ours("encoder_decoder")
    other.load_weights(tmp_path / "w.npz")
    for a, b in zip(other.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(a, b)
    wrong = RM.Sequential([RL.Input((None, 5)), RL.LSTM(6)])
    with pytest.raises(ValueError, match=r"holds 8 weights.*has 3"):
        wrong.load_weights(tmp_path / "w.npz")
    wrong2 = RM.Sequential([RL.Input((None, 4)), RL.LSTM(5), RL.Dense(5)])
    model2 = RM.Sequential([RL.Input((None, 5)), RL.LSTM(5), RL.Dense(5)])
    model2.save_weights(tmp_path / "w2.npz")
    with pytest.raises(ValueError, match=r"lstm_\d+/kernel .*shape \(5, 20\).*\(4, 20\)"):
        wrong2.load_weights(tmp_path / "w2.npz")
    # a single layer saves and loads too
    layer = RL.Dense(3)
    layer.build((None, 2))
    layer.save_weights(tmp_path / "d.npz")
    layer2 = RL.Dense(3)
    layer2.build((None, 2))
    layer2.load_weights(tmp_path / "d.npz")
    np.testing.assert_array_equal(layer2.kernel, layer.kernel)


def test_h5_mismatch_names_layer_and_weight(tmp_path):
    pytest.importorskip("h5py")
    a = RM.Sequential([RL.Input((None, 5)), RL.GRU(4), RL.Dense(2)])
    a.save_weights(tmp_path / "a.weights.h5")
    b = RM.Sequential([RL.Input((None, 3)), RL.GRU(4), RL.Dense(2)])
    with pytest.raises(ValueError, match=r"gru_\d+/kernel \(in the file: layers/gru/cell/vars/0\)"
                                         r" has shape \(5, 12\).*\(3, 12\)"):
        b.load_weights(tmp_path / "a.weights.h5")
    c = RM.Sequential([RL.Input((None, 5)), RL.LSTM(4), RL.Dense(2)])
    with pytest.raises(ValueError, match="layers/lstm/cell/vars/0"):
        c.load_weights(tmp_path / "a.weights.h5")


def test_failed_save_leaves_old_file(tmp_path, monkeypatch):
    model = build_ours("simple_rnn")
    path = tmp_path / "w.npz"
    model.save_weights(path)
    before = path.read_bytes()

    def boom(*a, **k):
        raise OSError("disk full")
    monkeypatch.setattr(np, "savez", boom)
    with pytest.raises(OSError, match="disk full"):
        model.save_weights(path)
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["w.npz"]  # no temporary file left


def test_h5_without_h5py_is_a_clear_import_error(tmp_path, monkeypatch):
    import sys
    monkeypatch.setitem(sys.modules, "h5py", None)
    model = build_ours("simple_rnn")
    with pytest.raises(ImportError, match=r"rnnkern\[h5\]"):
        model.save_weights(tmp_path / "m.weights.h5")
    assert not os.listdir(tmp_path)


# ------------------------------------------------ Sequential construction

def test_sequential_input_ways_agree(rng):
    ways = [
        lambda: RM.Sequential([RL.Input((5, 3)), RL.LSTM(4), RL.Dense(2)]),
        lambda: RM.Sequential([RL.LSTM(4, input_shape=(5, 3)), RL.Dense(2)]),
        lambda: RM.Sequential([RL.LSTM(4), RL.Dense(2)]),
    ]
    x = rng.standard_normal((3, 5, 3)).astype(np.float32)
    models = [w() for w in ways]
    models[2].build((None, 5, 3))
    ws = models[0].get_weights()
    for m in models:
        assert [l.name.split("_")[0] for l in m.layers] == ["lstm", "dense"]  # no InputLayer
        m.set_weights(ws)
        np.testing.assert_array_equal(m(x), models[0](x))
    late = RM.Sequential()
    late.add(RL.LSTM(4))
    late.add(RL.Dense(2))
    assert not late.built
    y = late(x)  # built by its first call
    assert late.built and y.shape == (3, 2)
    late.set_weights(ws)
    np.testing.assert_array_equal(late(x), models[0](x))


def test_sequential_add_pop_and_mask_flow(rng):
    m = RM.Sequential()
    m.add(RL.Input((6,)))
    m.add(RL.Embedding(20, 4, mask_zero=True))
    m.add(RL.SimpleRNN(3, return_sequences=True))
    assert m.output_shape == (None, 6, 3)
    m.add(RL.Dense(2))
    popped = m.pop()
    assert isinstance(popped, RL.Dense) and m.output_shape == (None, 6, 3)
    ids = np.array([[0, 0, 3, 4, 0, 5]])
    y = m(ids)
    # the Embedding's mask reaches the SimpleRNN: masked leading steps are zeros,
    # a masked step repeats the previous output
    assert np.all(y[0, :2] == 0)
    np.testing.assert_array_equal(y[0, 4], y[0, 3])


def test_functional_multi_output_and_fan_out(rng):
    x = RL.Input((5, 3))
    seq, h, c = RL.LSTM(4, return_sequences=True, return_state=True)(x)
    a = RL.Dense(2)(seq)
    b = RL.Dense(2)(h)
    model = RM.Model(x, [a, b, c])
    xv = rng.standard_normal((2, 5, 3)).astype(np.float32)
    ya, yb, yc = model(xv)
    assert ya.shape == (2, 5, 2) and yb.shape == (2, 2) and yc.shape == (2, 4)
    # only some outputs get a gradient: the others count as zero
    dx = model.backward([np.ones_like(ya), None, None])
    model(xv)
    dx2 = model.backward([np.ones_like(ya), np.zeros_like(yb), np.zeros_like(yc)])
    np.testing.assert_array_equal(dx, dx2)
    assert model.get_layer(index=1) is model.layers[1]
    assert [l.name for l in model.layers][0].startswith("input_layer")


# ---------------------------------------------------------------- configs

@pytest.mark.parametrize("name", [n for n in MODELS])
def test_config_round_trip(name, rng):
    model = build_ours(name)
    clone = type(model).from_config(model.get_config())
    clone.set_weights(model.get_weights())
    xs = inputs(name, rng)
    got, want = clone.predict(as_input(xs)), model.predict(as_input(xs))
    for a, b in zip(got if isinstance(got, list) else [got],
                    want if isinstance(want, list) else [want]):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("name", [n for n in MODELS])
def test_keras_config_builds_the_same_model(name, rng):
    """A Keras model's get_config() (what a .keras file holds) builds the
    same architecture in rnnkern."""
    km = build_keras(name)
    randomize_keras(km, rng)
    cls = RM.Sequential if type(km).__name__ == "Sequential" else RM.Model
    ours = cls.from_config(km.get_config())
    ours.set_weights(km.get_weights())
    xs = inputs(name, rng)
    want = km.predict(as_input(xs), verbose=0)
    got = ours.predict(as_input(xs))
    for a, b in zip(got if isinstance(got, list) else [got],
                    want if isinstance(want, list) else [want]):
        assert_close(a, b, "keras_f32", name)


# ---------------------------------------------------------------- threads

def test_one_layer_from_two_threads(rng):
    """Each thread's backward() follows its own call (the shell keeps the last
    call per thread): never another thread's gradients."""
    layer = RL.GRU(8, return_sequences=True, seed=1)
    xs = [rng.standard_normal((3, 6, 5)).astype(np.float32) for _ in range(2)]
    dys = [rng.standard_normal((3, 6, 8)).astype(np.float32) for _ in range(2)]
    layer.build((None, None, 5))
    alone = []
    for x, dy in zip(xs, dys):
        layer(x)
        alone.append((layer.backward(dy), [g.copy() for g in layer.grads]))
    barrier = threading.Barrier(2)

    def work(k):
        barrier.wait()
        for _ in range(200):
            layer(xs[k])
            dx = layer.backward(dys[k])
            np.testing.assert_array_equal(dx, alone[k][0])
            for g, w in zip(layer.grads, alone[k][1]):
                np.testing.assert_array_equal(g, w)
        return True

    assert run_in_threads(work, 2) == [True, True]


def test_one_model_from_two_threads(rng):
    model = build_ours("encoder_decoder")
    xs = [inputs("encoder_decoder", rng) for _ in range(2)]
    alone = []
    for x in xs:
        y = model(x)
        alone.append(model.backward(np.ones_like(y)))

    def work(k):
        for _ in range(50):
            y = model(xs[k])
            d = model.backward(np.ones_like(y))
            for a, b in zip(d, alone[k]):
                np.testing.assert_array_equal(a, b)
        return True

    assert run_in_threads(work, 2) == [True, True]


# -------------------------------------------------------------- bad input

def test_wrong_number_of_inputs():
    model = build_ours("encoder_decoder")
    with pytest.raises(ValueError, match=r"expects 2 inputs \[input_layer \(None, None, 5\), "
                                         r"input_layer_1 \(None, None, 5\)\], got 1"):
        model(np.zeros((2, 3, 5), np.float32))
    with pytest.raises(ValueError, match="lacks"):
        model({"input_layer": np.zeros((2, 3, 5), np.float32)})


def test_wrong_input_shape_and_dtype():
    model = build_ours("simple_rnn")
    with pytest.raises(ValueError, match=r"expects arrays of shape \(None, 5, 3\), got shape "
                                         r"\(2, 5, 4\)"):
        model(np.zeros((2, 5, 4), np.float32))
    with pytest.raises(TypeError, match="real numeric"):
        model(np.zeros((2, 5, 3), complex))
    emb = build_ours("embedding_rnn")
    with pytest.raises(ValueError, match=r"token ids must lie in \[0, 10000\)"):
        emb(np.full((1, 7), 10000))


def test_layers_that_cannot_connect_name_both():
    with pytest.raises(ValueError, match=r"the output of layer 'dense_1' \(Dense\) of shape "
                                         r"\(None, 2\) cannot be fed to layer 'lstm' \(LSTM\)"):
        rk.utils.clear_session()
        RM.Sequential([RL.Input((5, 3)), RL.Dense(2), RL.Flatten(), RL.Dense(2), RL.LSTM(3)])
    rk.utils.clear_session()
    x = RL.Input((4,))
    with pytest.raises(ValueError, match=r"input 'input_layer' of shape \(None, 4\) cannot be "
                                         r"fed to layer 'conv2d'"):
        RL.Conv2D(2, 3)(x)


def test_set_weights_errors():
    model = build_ours("simple_rnn")
    ws = model.get_weights()
    with pytest.raises(ValueError, match=r"has 5 weights.*got a list of 4"):
        model.set_weights(ws[:4])
    with pytest.raises(ValueError, match=r"dense/kernel has shape \(128, 3\), expected "
                                         r"\(128, 2\)"):
        model.set_weights(ws[:3] + [np.zeros((128, 3)), ws[4]])
    with pytest.raises(TypeError, match="list of arrays"):
        model.set_weights(ws[0])


def test_unbuilt_model_errors():
    m = RM.Sequential([RL.LSTM(3), RL.Dense(1)])
    assert "0 (unbuilt)" in captured_summary(m)    # Keras prints it (test_keras_names.py)
    with pytest.raises(ValueError, match="not yet been built"):
        m.count_params()
    with pytest.raises(ValueError, match="not yet been built"):
        m.set_weights([])
    with pytest.raises(ValueError, match="cannot be built because it has no layers"):
        RM.Sequential().build((None, 3))


def test_backward_before_call_and_after_inference():
    model = build_ours("simple_rnn")
    with pytest.raises(RuntimeError, match="preceding call"):
        model.backward(np.zeros((1, 2), np.float32))
    model(np.zeros((1, 5, 3), np.float32), training=False)
    with pytest.raises(RuntimeError, match="training=False"):
        model.backward(np.zeros((1, 2), np.float32))


def test_lambda_backward_names_the_layer_and_the_alternatives(rng):
    rk.utils.clear_session()
    model = RM.Sequential([RL.Input((4, 2)), RL.Lambda(lambda x: x * 2.0), RL.LSTM(3)])
    assert model.layers[0].output.shape == (None, 4, 2)
    y = model(rng.standard_normal((2, 4, 2)).astype(np.float32))
    with pytest.raises(NotImplementedError, match=r"Lambda layer 'lambda'.*Reshape.*Rescaling"):
        model.backward(np.ones_like(y))
    # with a gradient function it differentiates
    rk.utils.clear_session()
    model = RM.Sequential([RL.Input((4, 2)),
                           RL.Lambda(lambda x: x * 2.0, gradient=lambda x, y, dy: dy * 2.0),
                           RL.LSTM(3)])
    ref = RM.Sequential([RL.Input((4, 2)), RL.Rescaling(2.0), RL.LSTM(3)])
    ref.set_weights(model.get_weights())
    x = rng.standard_normal((2, 4, 2)).astype(np.float32)
    model(x)
    ref(x)
    np.testing.assert_allclose(model.backward(np.ones((2, 3), np.float32)),
                               ref.backward(np.ones((2, 3), np.float32)), rtol=1e-6)


def test_unknown_layer_arguments_and_names():
    with pytest.raises(ValueError, match=r"Unrecognized keyword arguments passed to Dense: "
                                         r"\{'foo': 1\}"):
        RL.Dense(3, foo=1)
    with pytest.raises(ValueError, match="unique names"):
        RM.Sequential([RL.Dense(2, name="a"), RL.Dense(2, name="a")])
    with pytest.raises(TypeError, match="unexpected keyword argument 'mask'"):
        RL.Dense(2)(np.zeros((1, 3), np.float32), mask=np.ones(1, bool))
    with pytest.raises(TypeError, match="no operations"):
        RL.Input((3,)) + 1


NOTEBOOK_CELL = '''
import numpy as np
from keras.models import Sequential, Model
from keras.layers import Input, SimpleRNN, LSTM, Dense, Embedding, Bidirectional

model = Sequential()
model.add(SimpleRNN(128, input_shape=(5, 3)))
model.add(Dense(2))
lines = []
model.summary(print_fn=lambda s, **kw: lines.append(s))
model.set_weights(weights)
forecast = model.predict(x, batch_size=2)

enc_in = Input(shape=(None, 3))
_, h, c = LSTM(4, return_state=True)(enc_in)
dec_in = Input(shape=(None, 3))
dec = LSTM(4, return_sequences=True)(dec_in, initial_state=[h, c])
seq2seq = Model([enc_in, dec_in], Dense(3, activation="softmax")(dec))
seq2seq.summary(print_fn=lambda s, **kw: lines.append(s))
'''


def test_a_notebook_cell_runs_with_the_import_swap_alone(rng, monkeypatch):
    """The same source text, once as written for Keras and once with
    ``keras.`` replaced by ``rnnkern.``: same summaries, same forecast."""
    monkeypatch.setenv("COLUMNS", "100")
    keras = keras_or_skip()
    x = rng.standard_normal((5, 5, 3)).astype(np.float32)
    keras.utils.clear_session()
    ns_k = {"x": x, "weights": None}
    src = NOTEBOOK_CELL.replace("model.set_weights(weights)\n", "")
    exec(src, ns_k)
    weights = ns_k["model"].get_weights()
    ns_k = {"x": x, "weights": weights}
    keras.utils.clear_session()
    exec(NOTEBOOK_CELL, ns_k)
    rk.utils.clear_session()
    ns_r = {"x": x, "weights": weights}
    exec(NOTEBOOK_CELL.replace("keras.", "rnnkern."), ns_r)
    assert ns_r["lines"] == ns_k["lines"]
    assert_close(ns_r["forecast"], ns_k["forecast"], "keras_f32", "forecast")
    assert type(ns_r["model"]).__module__.startswith("rnnkern.")
