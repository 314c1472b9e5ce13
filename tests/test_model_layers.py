"""Every layer's and every model's backward against float64 central finite
differences of its own forward.

Inside ``rnnkern.layers.base._float64_for_tests()`` the layers store their
weights and compute in float64 (the recurrent layers on the NumPy reference),
so a central difference is accurate to ~1e-10 and the float64 tolerance of
tests/tolerances.py applies. The check goes through the Layer contract itself:
``_run`` (standardize + forward) and ``backward_from`` on its ctx, for the
gradients of the inputs (the tensor keyword arguments, such as an initial
state, included) and of every weight."""
import numpy as np
import pytest

import rnnkern as rk
import rnnkern.layers as RL
import rnnkern.models as RM
from notebook_models import MODELS, as_input, inputs
from rnnkern import activations
from rnnkern.layers.base import _float64_for_tests, flatten, pack_as
from tolerances import assert_close

EPS = 1e-6
PROBES = 5  # entries probed per array


def set_reference(obj):
    if hasattr(obj, "backend"):
        obj.backend = "reference"
    for sub in obj._sublayers():
        set_reference(sub)


def loss_of(outputs, R):
    return sum(float(np.sum(np.asarray(o, np.float64) * r))
               for o, r in zip(flatten(outputs), R) if r is not None)


def probe_indices(a, rng):
    n = a.size
    return rng.choice(n, size=min(PROBES, n), replace=False) if n else []


def check_gradients(obj, args, kw=None, rng=None, training=None):
    """Compare backward_from with central differences, for float inputs (args
    and the tensor kwargs) and for every weight."""
    rng = rng or np.random.default_rng(0)
    kw = dict(kw or {})
    outputs, ctx = obj._run(args, training, dict(kw))
    R = [rng.standard_normal(np.shape(o)) for o in flatten(outputs)]
    d_inputs, grads = obj.backward_from(ctx, pack_as(outputs, R))
    tensor_kw = [k for k in obj._tensor_kwargs if kw.get(k) is not None]
    flat_in = flatten(args) + [x for k in tensor_kw for x in flatten(kw[k])]
    flat_d = flatten(d_inputs)
    assert len(flat_d) == len(flat_in)

    def loss(a, k):
        return loss_of(obj._run(a, training, dict(k))[0], R)

    # inputs: perturb a copy of each float input in place
    for i, (x, d) in enumerate(zip(flat_in, flat_d)):
        x = np.asarray(x)
        if x.dtype.kind != "f":
            assert d is None or not np.any(d)
            continue
        assert d is not None and np.shape(d) == x.shape, f"input {i}"
        for j in probe_indices(x, rng):
            vals = []
            for s in (1, -1):
                xp = [np.array(v, np.float64) if np.asarray(v).dtype.kind == "f" else v
                      for v in flat_in]
                xp[i].flat[j] += s * EPS
                a, k = _unflatten(args, kw, tensor_kw, xp)
                vals.append(loss(a, k))
            assert_close(np.ravel(d)[j], (vals[0] - vals[1]) / (2 * EPS), "gradcheck_f64",
                         f"{obj.name} d_input[{i}][{j}]")
    # weights
    ws = obj.get_weights()
    assert len(grads) == len(ws)
    for i, (w, g) in enumerate(zip(ws, grads)):
        assert np.shape(g) == w.shape, obj.weight_paths()[i]
        for j in probe_indices(w, rng):
            vals = []
            for s in (1, -1):
                wp = [v.copy() for v in ws]
                wp[i].flat[j] += s * EPS
                obj.set_weights(wp)
                vals.append(loss(args, kw))
            obj.set_weights(ws)
            assert_close(np.ravel(g)[j], (vals[0] - vals[1]) / (2 * EPS), "gradcheck_f64",
                         f"{obj.weight_paths()[i]}[{j}]")


def _unflatten(args, kw, tensor_kw, flat):
    n = len(flatten(args))
    a = pack_as(args, flat[:n])
    k = dict(kw)
    i = n
    for name in tensor_kw:
        m = len(flatten(kw[name]))
        k[name] = pack_as(kw[name], flat[i:i + m])
        i += m
    return a, k


def f64(rng, *shape):
    return rng.standard_normal(shape)


def randomize(obj, rng, scale=0.5):
    obj.set_weights([rng.uniform(-scale, scale, w.shape) for w in obj.get_weights()])


# ------------------------------------------------------------------ layers

DENSE_ACTIVATIONS = sorted(activations._BY_NAME)


@pytest.mark.parametrize("activation", DENSE_ACTIVATIONS)
@pytest.mark.parametrize("shape", [(3, 4), (2, 3, 4)], ids=["rank2", "rank3"])
def test_dense(activation, shape, rng):
    with _float64_for_tests():
        layer = RL.Dense(3, activation=activation)
        layer.build((None,) + shape[1:])
        randomize(layer, rng)
        check_gradients(layer, f64(rng, *shape), rng=rng)


def test_dense_without_bias(rng):
    with _float64_for_tests():
        layer = RL.Dense(2, use_bias=False)
        layer.build((None, 3))
        randomize(layer, rng)
        check_gradients(layer, f64(rng, 4, 3), rng=rng)


@pytest.mark.parametrize("activation", DENSE_ACTIVATIONS)
def test_activation(activation, rng):
    with _float64_for_tests():
        check_gradients(RL.Activation(activation), 2 * f64(rng, 3, 5), rng=rng)


@pytest.mark.parametrize("layer,shape", [
    (lambda: RL.Reshape((-1, 2)), (2, 3, 4)),
    (lambda: RL.Reshape((12,)), (2, 3, 4)),
    (lambda: RL.Flatten(), (2, 3, 4, 2)),
    (lambda: RL.RepeatVector(3), (2, 4)),
    (lambda: RL.Rescaling(0.5, offset=0.1), (2, 3)),
    (lambda: RL.Rescaling(np.array([1.0, -2.0, 3.0])), (2, 3)),
    (lambda: RL.Dropout(0.5), (2, 3)),
], ids=["reshape-1", "reshape", "flatten", "repeat", "rescale", "rescale-vector", "dropout"])
def test_shape_layers(layer, shape, rng):
    with _float64_for_tests():
        check_gradients(layer(), f64(rng, *shape), rng=rng)


def test_dropout_training_backward(rng):
    layer = RL.Dropout(0.4, seed=3)
    x = rng.standard_normal((50, 40)).astype(np.float32)
    y = layer(x, training=True)
    kept = y != 0
    assert 0.5 < kept.mean() < 0.7
    np.testing.assert_allclose(y[kept], x[kept] / 0.6, rtol=1e-6)
    dy = rng.standard_normal(y.shape).astype(np.float32)
    np.testing.assert_allclose(layer.backward(dy), np.where(kept, dy / 0.6, 0), rtol=1e-6)
    np.testing.assert_array_equal(layer(x), x)  # identity outside training
    shared = RL.Dropout(0.5, noise_shape=(None, 1, 4), seed=0)(
        np.ones((3, 5, 4), np.float32), training=True)
    assert all(np.all(shared[:, t] == shared[:, 0]) for t in range(5))


def test_embedding(rng):
    with _float64_for_tests():
        layer = RL.Embedding(7, 3)
        ids = np.array([[1, 2, 2, 6], [0, 0, 5, 1]])
        check_gradients(layer, ids, rng=rng)
        # repeated ids sum their gradients
        _, ctx = layer._run(ids, None, {})
        dy = np.ones((2, 4, 3))
        _, (g,) = layer.backward_from(ctx, dy)
        np.testing.assert_array_equal(g[:, 0], [2, 2, 2, 0, 0, 1, 1])


@pytest.mark.parametrize("kw", [
    dict(),
    dict(padding="same"),
    dict(strides=2),
    dict(strides=(2, 1), padding="same"),
    dict(dilation_rate=2),
    dict(activation="relu", use_bias=False),
    dict(kernel_size=(1, 2), padding="same", activation="tanh"),
], ids=str)
def test_conv2d(kw, rng):
    kw = dict(kw)
    ks = kw.pop("kernel_size", 3)
    with _float64_for_tests():
        layer = RL.Conv2D(2, ks, **kw)
        layer.build((None, 7, 6, 3))
        randomize(layer, rng)
        check_gradients(layer, f64(rng, 2, 7, 6, 3), rng=rng)


@pytest.mark.parametrize("kw", [dict(), dict(pool_size=3, strides=2), dict(padding="same"),
                                dict(pool_size=(2, 3), strides=1, padding="same")], ids=str)
def test_max_pooling2d(kw, rng):
    with _float64_for_tests():
        check_gradients(RL.MaxPooling2D(**kw), f64(rng, 2, 7, 5, 2), rng=rng)


@pytest.mark.parametrize("inner", [
    lambda: RL.Dense(3, activation="tanh"),
    lambda: RL.Conv2D(2, 2),
    lambda: RL.Flatten(),
], ids=["dense", "conv", "flatten"])
def test_time_distributed(inner, rng):
    with _float64_for_tests():
        layer = RL.TimeDistributed(inner())
        shape = (2, 3, 4) if isinstance(layer.layer, RL.Dense) else (2, 3, 4, 3, 2)
        layer.build((None,) + shape[1:])
        if layer.weights:
            randomize(layer, rng)
        check_gradients(layer, f64(rng, *shape), rng=rng)


CELLS = {"lstm": RL.LSTM, "gru": RL.GRU, "simple_rnn": RL.SimpleRNN}


@pytest.mark.parametrize("cell", list(CELLS))
@pytest.mark.parametrize("merge_mode", ["concat", "sum", "ave", "mul", None])
@pytest.mark.parametrize("return_sequences", [False, True])
@pytest.mark.parametrize("with_mask", [False, True], ids=["nomask", "mask"])
def test_bidirectional(cell, merge_mode, return_sequences, with_mask, rng):
    with _float64_for_tests():
        layer = RL.Bidirectional(CELLS[cell](3, return_sequences=return_sequences,
                                             backend="reference"), merge_mode=merge_mode)
        layer.build((None, 4, 2))
        randomize(layer, rng)
        mask = None
        if with_mask:
            mask = np.array([[1, 0, 1, 1], [0, 1, 1, 0], [1, 1, 1, 1]], bool)
        check_gradients(layer, f64(rng, 3, 4, 2), dict(mask=mask), rng=rng)


@pytest.mark.parametrize("cell", list(CELLS))
def test_bidirectional_states(cell, rng):
    """return_state and an initial state: gradients of the states too."""
    k = 2 if cell == "lstm" else 1
    with _float64_for_tests():
        layer = RL.Bidirectional(CELLS[cell](3, return_state=True, backend="reference"))
        layer.build((None, 4, 2))
        randomize(layer, rng)
        states = [f64(rng, 2, 3) for _ in range(2 * k)]
        check_gradients(layer, f64(rng, 2, 4, 2), dict(initial_state=states), rng=rng)


@pytest.mark.parametrize("cell", list(CELLS))
def test_recurrent_layer_with_state_and_zero_masked_outputs(cell, rng):
    k = 2 if cell == "lstm" else 1
    with _float64_for_tests():
        layer = CELLS[cell](3, return_sequences=True, return_state=True, backend="reference",
                            zero_output_for_mask=True)
        layer.build((None, 5, 2))
        randomize(layer, rng)
        mask = np.array([[1, 0, 1, 1, 0], [0, 0, 1, 1, 1]], bool)
        check_gradients(layer, f64(rng, 2, 5, 2),
                        dict(mask=mask, initial_state=[f64(rng, 2, 3) for _ in range(k)]),
                        rng=rng)


def test_merge_layers(rng):
    with _float64_for_tests():
        check_gradients(RL.Concatenate(), [f64(rng, 2, 3), f64(rng, 2, 2)], rng=rng)
        check_gradients(RL.Concatenate(axis=1), [f64(rng, 2, 3, 2), f64(rng, 2, 1, 2)], rng=rng)
        check_gradients(RL.Add(), [f64(rng, 2, 3), f64(rng, 2, 3), f64(rng, 2, 3)], rng=rng)


# ------------------------------------------------------------------ models

@pytest.mark.parametrize("name", [n for n in MODELS if n != "lstm_1000"])
def test_notebook_model(name, rng):
    with _float64_for_tests():
        rk.utils.clear_session()
        model = MODELS[name][0](RL, RM)
        set_reference(model)
        randomize(model, rng, 0.3)
        xs = [x.astype(np.float64) if x.dtype.kind == "f" else x for x in inputs(name, rng)]
        check_gradients(model, as_input(xs), rng=rng)


def test_lstm_1000_model(rng):
    """The big notebook LSTM: a few entries of each array."""
    with _float64_for_tests():
        model = MODELS["lstm_1000"][0](RL, RM)
        set_reference(model)
        randomize(model, rng, 0.05)
        check_gradients(model, f64(rng, 2, 5, 10), rng=rng)


def test_shared_layer_gradients_sum_over_uses(rng):
    """A layer used twice: the model's gradient of its weights is the sum of
    both uses' (checked against the finite differences above, and here against
    the two uses run separately)."""
    rk.utils.clear_session()
    model = MODELS["shared_layer"][0](RL, RM)
    dense = model.layers[2]
    a, b = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    y = model([a, b])
    dy = rng.standard_normal(y.shape)
    model.backward(dy)
    total = [g.copy() for g in dense.grads]
    parts = []
    for x in (a, b):
        dense(x)
        dense.backward(dy)
        parts.append(dense.grads)
    for t, p, q in zip(total, *parts):
        np.testing.assert_allclose(t, p + q, rtol=1e-5, atol=1e-6)


def test_embedding_gradient_compiled_path():
    """Embedding's float32 gradient (the compiled scatter-add) equals np.add.at's,
    repeated ids included; an id outside the vocabulary is a clear error."""
    from rnnkern import _core
    from rnnkern.layers import Embedding
    rng = np.random.default_rng(3)
    ids = rng.integers(0, 7, size=(5, 11))
    dy = rng.standard_normal((5, 11, 4)).astype(np.float32)
    layer = Embedding(7, 4)
    layer(ids)
    _, (g,) = layer.backward_from(ids, dy)
    want = np.zeros((7, 4), np.float32)
    np.add.at(want, ids.ravel(), dy.reshape(-1, 4))
    assert g.dtype == np.float32
    np.testing.assert_allclose(g, want, rtol=1e-6, atol=1e-6)
    with pytest.raises(ValueError, match=r"id 9 outside \[0, 7\)"):
        _core.embedding_grad(np.array([1, 9]), np.ones((2, 4), np.float32), 7)
