"""BatchNormalization, LayerNormalization and the activation layers (ReLU,
LeakyReLU, ELU, Softmax) against Keras 3 (torch backend): outputs with copied
weights in training and inference mode, BatchNormalization's moving statistics
(masked too), backward against float64 central finite differences and against
torch autograd through the Keras layer; then BatchNormalization in models: fit
updates the moving statistics and trains gamma / beta only, evaluate / predict
use the moving statistics, summary counts, weights files and configs."""
import os
import types

os.environ.setdefault("KERAS_BACKEND", "torch")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

import rnnkern.layers as RL  # noqa: E402
import rnnkern.models as RM  # noqa: E402
from rnnkern import callbacks as cbm  # noqa: E402
from helpers import keras_or_skip  # noqa: E402
from rnnkern.layers.activation_layers import ELU, LeakyReLU, ReLU, Softmax  # noqa: E402
from rnnkern.layers.base import _float64_for_tests  # noqa: E402
from rnnkern.layers.normalization import BatchNormalization, LayerNormalization  # noqa: E402
from rnnkern.utils import set_random_seed  # noqa: E402
from tolerances import assert_close  # noqa: E402

# Keras' own NumPy 2 deprecation noise, not ours
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")

EPS = 1e-6


def _np(t):
    return t.detach().numpy() if hasattr(t, "detach") else np.asarray(t)


def random_bn_weights(layer_weights, rng):
    """Keras' initial weights moved off 0 / 1 (the moving variance kept > 0)."""
    out = []
    for w, name in layer_weights:
        v = w + rng.uniform(-0.4, 0.4, w.shape).astype(np.float32)
        if name == "moving_variance":
            v = np.abs(v) + 0.3
        out.append(v)
    return out


def keras_bn(keras, kw, shape, rng):
    kl = keras.layers.BatchNormalization(**kw)
    kl.build(shape)
    ws = random_bn_weights([(w, v.name) for w, v in
                            zip(kl.get_weights(), kl.weights)], rng)
    kl.set_weights(ws)
    return kl, ws


def bn_input(rng, shape):
    return (1.5 * rng.standard_normal(shape) + 0.7).astype(np.float32)


def gradcheck(layer, x, training, mask=None, rng=None, probes=None):
    """backward_from against float64 central differences of the layer's own
    forward, for the input and every weight with a gradient; a None gradient
    only for the never-trained weights (_non_trainable_names)."""
    rng = rng or np.random.default_rng(0)
    kw = {} if mask is None else {"mask": mask}
    y, ctx = layer._run(x, training, dict(kw))
    R = rng.standard_normal(y.shape)
    dx, grads = layer.backward_from(ctx, R)

    def loss(xx):
        return float(np.sum(layer._run(xx, training, dict(kw))[0] * R))

    def fd(a, j, f):
        a.flat[j] += EPS
        up = f()
        a.flat[j] -= 2 * EPS
        down = f()
        a.flat[j] += EPS
        return (up - down) / (2 * EPS)

    x = np.array(x, np.float64)
    pick = range(x.size) if probes is None else rng.choice(x.size, probes, replace=False)
    for j in pick:
        assert_close(dx.flat[j], fd(x, j, lambda: loss(x)), "gradcheck_f64", f"dx[{j}]")
    ws = layer.get_weights()
    names = layer._weight_names()
    assert len(grads) == len(ws) == len(names)
    for i, (w, g, name) in enumerate(zip(ws, grads, names)):
        if g is None:
            assert name in layer._non_trainable_names(), name
            continue
        assert g.shape == w.shape, name
        for j in range(w.size):
            def f():
                layer.set_weights(ws[:i] + [w] + ws[i + 1:])
                return loss(x)
            assert_close(g.flat[j], fd(w, j, f), "gradcheck_f64", f"d{name}[{j}]")
        layer.set_weights(ws)


# ------------------------------------------------- BatchNormalization: Keras

BN_CASES = [
    (dict(), (4, 5, 3)),
    (dict(momentum=0.9, epsilon=1e-2), (6, 4)),
    (dict(center=False), (4, 5, 3)),
    (dict(scale=False), (4, 5, 3)),
    (dict(center=False, scale=False), (3, 4)),
    (dict(axis=1), (3, 4, 5)),
    (dict(axis=-2, momentum=0.5), (2, 3, 4, 2)),
]


def bn_id(c):
    kw, shape = c
    return "-".join([f"{k}={v}" for k, v in kw.items()] + ["x".join(map(str, shape))])


@pytest.mark.parametrize("case", BN_CASES, ids=[bn_id(c) for c in BN_CASES])
def test_batch_norm_matches_keras(case, rng):
    """Outputs in both modes and the moving statistics after each of several
    training calls (inference calls leave them alone)."""
    keras = keras_or_skip()
    kw, shape = case
    kl, ws = keras_bn(keras, kw, shape, rng)
    ours = BatchNormalization(**kw)
    ours.set_weights(ws)
    assert [v.name for v in kl.weights] == ours._weight_names()
    for step, training in enumerate([True, False, True, None, True, True]):
        x = bn_input(rng, shape) * (1 + step)
        y = ours(x, training=training)
        assert_close(y, _np(kl(x, training=training)), "keras_f32", f"step {step} output")
        for a, b, v in zip(ours.get_weights(), kl.get_weights(), kl.weights):
            assert_close(a, b, "keras_f32", f"step {step} {v.name}")
    assert ours.moving_mean is not None and not np.allclose(ours.moving_mean, ws[-2])


@pytest.mark.parametrize("axis_case", [(-1, (4, 6, 3), (4, 6)), (1, (3, 4, 5), (3, 4))],
                         ids=["channels-last", "axis1"])
def test_batch_norm_masked_statistics_match_keras(axis_case, rng):
    """Keras' masked moments: only the unmasked entries count (a fully masked
    row included), sum(mask) + 1e-7 in the denominators."""
    keras = keras_or_skip()
    axis, shape, mshape = axis_case
    kl, ws = keras_bn(keras, dict(axis=axis, momentum=0.8), shape, rng)
    ours = BatchNormalization(axis=axis, momentum=0.8)
    ours.set_weights(ws)
    for _ in range(2):
        x = bn_input(rng, shape)
        mask = rng.random(mshape) > 0.4
        mask[0] = False
        y = ours(x, training=True, mask=mask)
        assert_close(y, _np(kl(x, training=True, mask=mask)), "keras_f32", "masked output")
        for a, b, v in zip(ours.get_weights(), kl.get_weights(), kl.weights):
            assert_close(a, b, "keras_f32", f"masked {v.name}")
    # the statistics of the unmasked entries, directly (channels last)
    if axis == -1:
        before = ours.moving_mean.copy()
        x = bn_input(rng, shape)
        mask = rng.random(mshape) > 0.5
        ours(x, training=True, mask=mask)
        want = before * 0.8 + x[mask].mean(axis=0) * 0.2
        assert_close(ours.moving_mean, want, "keras_f32", "moving_mean of unmasked entries")
    # the mask is passed on; inference ignores it
    assert ours.supports_masking
    assert ours.compute_mask(x, mask) is mask
    assert np.array_equal(ours(x, mask=mask), ours(x))


@pytest.mark.parametrize("training", [True, None], ids=["batch-stats", "moving-stats"])
@pytest.mark.parametrize("with_mask", [False, True], ids=["nomask", "mask"])
@pytest.mark.parametrize("kw", [dict(), dict(center=False), dict(scale=False)],
                         ids=["default", "nocenter", "noscale"])
def test_batch_norm_gradients_match_torch_autograd(kw, with_mask, training, rng):
    keras = keras_or_skip()
    import torch
    shape = (4, 5, 3)
    kl, ws = keras_bn(keras, kw, shape, rng)
    ours = BatchNormalization(**kw)
    ours.set_weights(ws)
    x = bn_input(rng, shape)
    mask = (rng.random(shape[:-1]) > 0.3) if with_mask else None
    xt = torch.tensor(x, requires_grad=True)
    for v in kl.trainable_weights:
        v.value.grad = None
    ky = kl(xt, training=training, mask=None if mask is None else torch.tensor(mask))
    R = rng.standard_normal(shape).astype(np.float32)
    (ky * torch.tensor(R)).sum().backward()
    y = ours(x, training=training, mask=mask)
    assert_close(y, _np(ky), "keras_f32", "forward")
    dx = ours.backward(R)
    assert_close(dx, xt.grad.numpy(), "torch_grad_f32", "dx")
    trained = [g for g in ours.grads if g is not None]
    assert len(trained) == len(kl.trainable_weights)
    for g, v in zip(trained, kl.trainable_weights):
        assert_close(g, v.value.grad.numpy(), "torch_grad_f32", f"d{v.name}")
    assert ours.grads[-2:] == [None, None]


# ------------------------------------------ BatchNormalization: gradients

@pytest.mark.parametrize("mode", ["batch", "batch-masked", "moving", "frozen"])
@pytest.mark.parametrize("kw", [dict(), dict(center=False, scale=False), dict(axis=1)],
                         ids=["default", "plain", "axis1"])
def test_batch_norm_gradients_finite_differences(kw, mode, rng):
    with _float64_for_tests():
        layer = BatchNormalization(momentum=0.7, **kw)
        layer.build((None, 3, 4))
        layer.set_weights(random_bn_weights(
            [(w, n) for w, n in zip(layer.get_weights(), layer._weight_names())], rng))
        if mode == "frozen":  # Keras: a frozen BatchNormalization runs in inference mode
            layer.trainable = False
        x = 1.3 * rng.standard_normal((2, 3, 4)) + 0.4
        mask = None
        if mode == "batch-masked":
            mask = np.array([[True, False, True], [True, True, False]])
        training = None if mode == "moving" else True
        gradcheck(layer, x, training, mask=mask, rng=rng)


# --------------------------------------------- BatchNormalization: modes

def test_batch_norm_training_modes(rng):
    """training=True: batch statistics, moving statistics updated; None / False:
    moving statistics, nothing updated; trainable=False: inference mode even
    with training=True (Keras' frozen BatchNormalization)."""
    x = bn_input(rng, (8, 3))
    layer = BatchNormalization(momentum=0.75, epsilon=1e-3)
    y = layer(x, training=True)
    assert_close(y, (x - x.mean(0)) / np.sqrt(x.var(0) + 1e-3), "reference_f32", "batch stats")
    mm, mv = x.mean(0) * 0.25, 0.75 + x.var(0) * 0.25
    assert_close(layer.moving_mean, mm, "reference_f32", "moving_mean")
    assert_close(layer.moving_variance, mv, "reference_f32", "moving_variance")
    mm = layer.moving_mean.copy()
    for training in (None, False):
        y = layer(x, training=training)
        assert_close(y, (x - mm) / np.sqrt(mv + 1e-3), "reference_f32", "moving stats")
        assert np.array_equal(layer.moving_mean, mm)
    layer.trainable = False
    assert np.array_equal(layer(x, training=True), layer(x, training=False))
    assert np.array_equal(layer.moving_mean, mm)
    assert layer.trainable_weights == [] and len(layer.non_trainable_weights) == 4
    # an empty batch: empty output, no statistics to move toward
    assert layer(np.zeros((0, 3), np.float32), training=True).shape == (0, 3)
    layer.trainable = True
    assert layer(np.zeros((0, 3), np.float32), training=True).shape == (0, 3)
    assert np.array_equal(layer.moving_mean, mm)
    with pytest.raises(RuntimeError, match="training=False"):
        layer(x, training=False)
        layer.backward(x)


def test_batch_norm_weights_are_keras_shaped():
    layer = BatchNormalization()
    layer.build((None, 7, 5))
    assert layer._weight_names() == ["gamma", "beta", "moving_mean", "moving_variance"]
    assert [w.shape for w in layer.weights] == [(5,)] * 4
    assert [id(w) for w in layer.trainable_weights] == [id(layer.gamma), id(layer.beta)]
    assert [id(w) for w in layer.non_trainable_weights] == \
        [id(layer.moving_mean), id(layer.moving_variance)]
    assert np.array_equal(layer.moving_variance, np.ones(5))
    assert layer.count_params() == 20
    assert layer.weight_paths()[2:] == [f"{layer.name}/moving_mean",
                                        f"{layer.name}/moving_variance"]
    only = BatchNormalization(center=False, scale=False)
    only.build((None, 2))
    assert only._weight_names() == ["moving_mean", "moving_variance"]
    assert only.trainable_weights == []


# ------------------------------------------------------ LayerNormalization

LN_CASES = [dict(), dict(axis=[-2, -1]), dict(center=False), dict(scale=False),
            dict(epsilon=1e-5, center=False, scale=False), dict(rms_scaling=True)]


def ln_id(kw):
    return "-".join(f"{k}={v}" for k, v in kw.items()) or "default"


@pytest.mark.filterwarnings("ignore:You passed `rms_scaling=True`")
@pytest.mark.parametrize("kw", LN_CASES, ids=[ln_id(k) for k in LN_CASES])
def test_layer_norm_matches_keras_and_torch_autograd(kw, rng):
    keras = keras_or_skip()
    import torch
    shape = (3, 4, 5)
    kl = keras.layers.LayerNormalization(**kw)
    kl.build(shape)
    ws = [w + rng.uniform(-0.3, 0.3, w.shape).astype(np.float32) for w in kl.get_weights()]
    kl.set_weights(ws)
    ours = LayerNormalization(**kw)
    ours.build(shape)
    ours.set_weights(ws)
    assert [v.name for v in kl.weights] == ours._weight_names()
    assert ours.get_config()["axis"] == kl.axis  # (Keras get_config imports TensorFlow)
    x = bn_input(rng, shape)
    xt = torch.tensor(x, requires_grad=True)
    ky = kl(xt)
    R = rng.standard_normal(shape).astype(np.float32)
    (ky * torch.tensor(R)).sum().backward()
    assert_close(ours(x), _np(ky), "keras_f32", "forward")
    assert_close(ours.backward(R), xt.grad.numpy(), "torch_grad_f32", "dx")
    for g, v in zip(ours.grads, kl.trainable_weights):
        assert_close(g, v.value.grad.numpy(), "torch_grad_f32", f"d{v.name}")


@pytest.mark.filterwarnings("ignore:You passed `rms_scaling=True`")
@pytest.mark.parametrize("kw", LN_CASES + [dict(axis=1), dict(axis=[0, 2])],
                         ids=[ln_id(k) for k in LN_CASES] + ["axis1", "axis0-2"])
def test_layer_norm_gradients_finite_differences(kw, rng):
    with _float64_for_tests():
        layer = LayerNormalization(**kw)
        layer.build((2, 3, 4))
        layer.set_weights([w + rng.uniform(-0.3, 0.3, w.shape) for w in layer.get_weights()])
        gradcheck(layer, 1.3 * rng.standard_normal((2, 3, 4)) + 0.4, None, rng=rng, probes=8)


def test_layer_norm_other_axes_and_masks(rng):
    """axis=1 normalises over axis 1 (Keras' TensorFlow / JAX result; its torch
    backend's fused kernel fails there); masks are passed on."""
    x = bn_input(rng, (2, 3, 4))
    layer = LayerNormalization(axis=1)
    y = layer(x)
    m, v = x.mean(1, keepdims=True), x.var(1, keepdims=True)
    assert_close(y, (x - m) / np.sqrt(v + 1e-3), "reference_f32", "axis=1")
    assert layer.gamma.shape == (3,) and layer.get_config()["axis"] == [1]
    mask = rng.random((2, 3)) > 0.5
    assert layer.supports_masking and layer.compute_mask(x, mask) is mask


# ----------------------------------------------------- activation layers

ACT_CASES = [
    ("ReLU", ReLU, dict()), ("ReLU", ReLU, dict(max_value=1.5)),
    ("ReLU", ReLU, dict(negative_slope=0.1)), ("ReLU", ReLU, dict(threshold=0.5)),
    ("ReLU", ReLU, dict(max_value=2.0, negative_slope=0.2, threshold=0.5)),
    ("ReLU", ReLU, dict(max_value=6.0)), ("ReLU", ReLU, dict(negative_slope=0.3, max_value=1.0)),
    ("LeakyReLU", LeakyReLU, dict()), ("LeakyReLU", LeakyReLU, dict(negative_slope=0.05)),
    ("ELU", ELU, dict()), ("ELU", ELU, dict(alpha=0.5)),
    ("Softmax", Softmax, dict()), ("Softmax", Softmax, dict(axis=1)),
    ("Softmax", Softmax, dict(axis=[1, 2])),
]


def act_id(c):
    return c[0] + "".join(f"-{k}={v}" for k, v in c[2].items())


def away_from_kinks(rng, shape, kw):
    """Inputs at least 0.05 away from every kink (0, threshold, max_value)."""
    x = 3 * rng.standard_normal(shape)
    for k in (0.0, kw.get("threshold", 0.0), kw.get("max_value")):
        if k is not None:
            near = np.abs(x - k) < 0.05
            x[near] = k + 0.1
    return x


@pytest.mark.parametrize("case", ACT_CASES, ids=[act_id(c) for c in ACT_CASES])
def test_activation_layers_match_keras_and_torch_autograd(case, rng):
    keras = keras_or_skip()
    import torch
    name, cls, kw = case
    kl = getattr(keras.layers, name)(**kw)
    ours = cls(**kw)
    assert ours.name.split("_")[0] == kl.name.split("_")[0]
    cfg = kl.get_config()
    assert {k: cfg[k] for k in cfg if k != "name"} == \
        {k: v for k, v in ours.get_config().items() if k != "name"}
    x = away_from_kinks(rng, (3, 4, 5), kw).astype(np.float32)
    xt = torch.tensor(x, requires_grad=True)
    ky = kl(xt)
    R = rng.standard_normal(x.shape).astype(np.float32)
    (ky * torch.tensor(R)).sum().backward()
    assert_close(ours(x), _np(ky), "keras_f32", "forward")
    assert_close(ours.backward(R), xt.grad.numpy(), "torch_grad_f32", "dx")
    assert ours.supports_masking and ours.weights == []


@pytest.mark.parametrize("case", ACT_CASES, ids=[act_id(c) for c in ACT_CASES])
def test_activation_layers_gradients_finite_differences(case, rng):
    _, cls, kw = case
    with _float64_for_tests():
        gradcheck(cls(**kw), away_from_kinks(rng, (2, 3, 4), kw), None, rng=rng, probes=10)


def test_softmax_mask_matches_keras(rng):
    keras = keras_or_skip()
    import torch
    x = rng.standard_normal((2, 3, 5)).astype(np.float32)
    mask = rng.random((2, 1, 5)) > 0.4
    mask[1] = False  # a fully masked axis: zeros
    xt = torch.tensor(x, requires_grad=True)
    ky = keras.layers.Softmax()(xt, mask=torch.tensor(mask))
    R = rng.standard_normal(x.shape).astype(np.float32)
    (ky * torch.tensor(R)).sum().backward()
    ours = Softmax()
    y = ours(x, mask=mask)
    assert_close(y, _np(ky), "keras_f32", "masked softmax")
    assert not y[1].any()
    assert_close(ours.backward(R), xt.grad.numpy(), "torch_grad_f32", "masked dx")
    with _float64_for_tests():
        gradcheck(Softmax(), x.astype(np.float64), None, mask=mask, rng=rng, probes=10)


# ------------------------------------------------------ models and fit

def bn_model(rk_or_keras):
    """Dense -> BatchNormalization -> ReLU -> Dense (names fixed: the two
    libraries' automatic names would follow their own sessions)."""
    L = rk_or_keras.layers
    return rk_or_keras.models.Sequential([
        L.Input((6,)), L.Dense(8, name="dense"), L.BatchNormalization(momentum=0.8, name="bn"),
        L.ReLU(name="relu"), L.Dense(1, name="out")], name="bn_model")


# rnnkern's layers with this file's (imported from their modules: the package
# re-exports are not this file's business)
_LAYERS = {n: getattr(RL, n) for n in RL.__all__}
_LAYERS.update(BatchNormalization=BatchNormalization, LayerNormalization=LayerNormalization,
               ReLU=ReLU, LeakyReLU=LeakyReLU, ELU=ELU, Softmax=Softmax)
_RK = types.SimpleNamespace(layers=types.SimpleNamespace(**_LAYERS), models=RM)


def bn_data(rng, n=48):
    x = rng.standard_normal((n, 6)).astype(np.float32) * 2 + 1
    y = (x[:, :1] - 0.5 * x[:, 1:2]).astype(np.float32)
    return x, y


def test_fit_trains_gamma_beta_and_moves_statistics(rng):
    """fit: the moving statistics move each batch (never through the optimizer),
    gamma / beta are trained; predict and evaluate use the moving statistics;
    the result equals Keras' fit from the same weights."""
    set_random_seed(3)
    model = bn_model(_RK)
    bn = model.get_layer("bn")
    x, y = bn_data(rng)
    model.compile(optimizer="sgd", loss="mse")
    w0 = model.get_weights()
    seen = []
    watch = cbm.LambdaCallback(
        on_train_batch_end=lambda batch, logs: seen.append(bn.moving_mean.copy()))
    model.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0, callbacks=[watch])
    assert len(seen) == 6 and all(not np.array_equal(a, b) for a, b in zip(seen, seen[1:]))
    # the optimizer was built for the 6 trainable weights only
    assert len(model.trainable_weights) == 6 and len(model.optimizer._shapes) == 6
    assert not np.allclose(bn.gamma, w0[2]) and not np.allclose(bn.beta, w0[3])
    # inference uses the moving statistics
    h = x @ model.layers[0].kernel + model.layers[0].bias
    hn = (h - bn.moving_mean) / np.sqrt(bn.moving_variance + 1e-3) * bn.gamma + bn.beta
    want = np.maximum(hn, 0) @ model.layers[3].kernel + model.layers[3].bias
    assert_close(model.predict(x, verbose=0), want, "reference_f32", "predict")
    assert_close(model(x), want, "reference_f32", "call")
    assert_close(model.evaluate(x, y, verbose=0), float(np.mean((want - y) ** 2)),
                 "loss_f32", "evaluate")
    stats = bn.moving_mean.copy()
    model.predict(x, verbose=0)
    model.evaluate(x, y, verbose=0)
    assert np.array_equal(stats, bn.moving_mean)

    keras = keras_or_skip()
    km = bn_model(keras)
    km.set_weights(w0)
    km.compile(optimizer=keras.optimizers.SGD(), loss="mse")
    km.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0)
    for a, b, p in zip(model.get_weights(), km.get_weights(), model.weight_paths()):
        assert_close(a, b, "training_f32", p)
    assert_close(model.predict(x, verbose=0), km.predict(x, verbose=0), "training_f32",
                 "predict after fit")


@pytest.mark.parametrize("first_fit", [False, True],
                         ids=["frozen-before-compile", "frozen-after-fit-recompiled"])
def test_frozen_batch_norm_in_fit(first_fit, rng):
    """trainable=False: fit runs it in inference mode and changes none of its
    four weights (Keras' frozen BatchNormalization); a change counts from the
    next compile() (fine-tuning freezes it after a first fit)."""
    set_random_seed(4)
    model = bn_model(_RK)
    bn = model.get_layer("bn")
    x, y = bn_data(rng)
    if first_fit:
        model.compile(optimizer="adam", loss="mse")
        model.fit(x, y, batch_size=16, epochs=1, verbose=0)
    bn.trainable = False
    model.compile(optimizer="adam", loss="mse")
    before = bn.get_weights()
    model.fit(x, y, batch_size=16, epochs=1, verbose=0)
    for a, b in zip(before, bn.get_weights()):
        assert np.array_equal(a, b)
    assert len(model.trainable_weights) == 4


def captured_summary(model):
    out = []
    model.summary(print_fn=lambda s, **_: out.append(s))
    return "".join(out)


def test_summary_counts_match_keras(monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    ours = bn_model(_RK)
    text = captured_summary(ours)
    assert " Total params: 97 (388.00 B)" in text
    assert " Trainable params: 81 (324.00 B)" in text
    assert " Non-trainable params: 16 (64.00 B)" in text
    keras = keras_or_skip()
    assert text == captured_summary(bn_model(keras))


def test_weights_files_round_trip_and_keras_layout(tmp_path, rng):
    h5py = pytest.importorskip("h5py")
    set_random_seed(5)
    model = bn_model(_RK)
    x, _ = bn_data(rng, 8)
    model(x, training=True)  # moving statistics away from 0 / 1
    ws = model.get_weights()
    path = tmp_path / "m.weights.h5"
    model.save_weights(path)
    with h5py.File(path, "r") as f:
        for j, w in enumerate(model.get_layer("bn").get_weights()):
            assert np.array_equal(f[f"layers/batch_normalization/vars/{j}"][()], w)
    for name in ("m.weights.h5", "m.npz"):
        p = tmp_path / name
        model.save_weights(p)
        other = bn_model(_RK)
        other.load_weights(p)
        for a, b in zip(ws, other.get_weights()):
            assert np.array_equal(a, b)
    other.set_weights(ws)
    assert all(np.array_equal(a, b) for a, b in zip(ws, other.get_weights()))

    keras = keras_or_skip()
    km = bn_model(keras)
    km.load_weights(path)  # ours read by Keras ...
    for a, b in zip(ws, km.get_weights()):
        assert np.array_equal(a, b)
    km.set_weights([w + 1 for w in ws])
    kpath = tmp_path / "keras.weights.h5"
    km.save_weights(kpath)
    model.load_weights(kpath)  # ... and Keras' read by ours
    for a, b in zip(km.get_weights(), model.get_weights()):
        assert np.array_equal(a, b)


def test_masked_model_statistics_match_keras(rng):
    """Embedding(mask_zero) -> BatchNormalization -> LSTM: the mask reaches the
    batch statistics and is passed on to the LSTM."""
    keras = keras_or_skip()

    def build(lib):
        L = lib.layers
        return lib.models.Sequential([
            L.Input((6,), dtype="int32"), L.Embedding(9, 4, mask_zero=True, name="emb"),
            L.BatchNormalization(momentum=0.5, name="bn"), L.LSTM(3, name="lstm")])
    km, ours = build(keras), build(_RK)
    ours.set_weights(km.get_weights())
    ids = rng.integers(1, 9, (5, 6))
    ids[:, 4:] = 0
    ids[0, 2:] = 0
    assert_close(ours(ids, training=True), _np(km(ids, training=True)), "keras_f32", "output")
    for a, b in zip(ours.get_layer("bn").get_weights(), km.get_layer("bn").get_weights()):
        assert_close(a, b, "keras_f32", "masked moving statistics")
    assert_close(ours(ids), _np(km(ids)), "keras_f32", "inference output")


def test_shared_batch_norm_layer_gradients(rng):
    inp = RL.Input((4,))
    bn = BatchNormalization()
    out = RL.Add()([bn(inp), bn(RL.Dense(4)(inp))])
    model = RM.Model(inp, out)
    model(rng.standard_normal((3, 4)).astype(np.float32), training=True)
    model.backward(np.ones((3, 4), np.float32))
    assert bn.grads[-2:] == [None, None] and bn.grads[0].shape == (4,)


# ------------------------------------------------------------ configs

CONFIG_LAYERS = [
    lambda: BatchNormalization(axis=1, momentum=0.9, epsilon=1e-2, center=False,
                               gamma_initializer="random_normal"),
    lambda: LayerNormalization(axis=[-2, -1], epsilon=1e-5, scale=False),
    lambda: ReLU(max_value=6.0, negative_slope=0.1, threshold=0.5),
    lambda: LeakyReLU(0.2), lambda: ELU(0.7), lambda: Softmax(axis=[1, 2]),
]


@pytest.mark.parametrize("make", CONFIG_LAYERS,
                         ids=["bn", "ln", "relu", "leaky", "elu", "softmax"])
def test_config_round_trip_and_keras_reads_it(make):
    layer = make()
    cfg = layer.get_config()
    again = type(layer).from_config(cfg)
    assert again.get_config() == cfg
    from rnnkern.utils.registry import deserialize_layer, serialize_layer
    assert type(deserialize_layer(serialize_layer(layer))) is type(layer)
    keras = keras_or_skip()
    kl = getattr(keras.layers, type(layer).__name__).from_config(cfg)
    kcfg = kl.get_config()
    assert {k: kcfg[k] for k in cfg} == cfg
    assert type(layer).from_config(kcfg).get_config() == cfg


def test_keras_config_with_unbuilt_and_built_axis():
    keras = keras_or_skip()
    kl = keras.layers.BatchNormalization()
    kl.build((None, 3, 4))
    ours = BatchNormalization.from_config(kl.get_config())
    ours.build((None, 3, 4))
    assert ours.get_config() == {k: v for k, v in kl.get_config().items()}


# ---------------------------------------------------------- bad arguments

@pytest.mark.parametrize("make,err,match", [
    (lambda: BatchNormalization(axis=[1, 2]), TypeError, "axis"),
    (lambda: BatchNormalization(momentum="high"), TypeError, "momentum"),
    (lambda: BatchNormalization(epsilon=None), TypeError, "epsilon"),
    (lambda: BatchNormalization(center=1), TypeError, "center"),
    (lambda: BatchNormalization(synchronized=True), ValueError, "synchronized"),
    (lambda: BatchNormalization(renorm=True), NotImplementedError, "renorm"),
    (lambda: BatchNormalization(gamma_regularizer="l2"), NotImplementedError, "gamma_regul"),
    (lambda: BatchNormalization(beta_initializer="nope"), ValueError, "initializer"),
    (lambda: BatchNormalization(bogus=1), ValueError, "bogus"),
    (lambda: LayerNormalization(axis="last"), TypeError, "axis"),
    (lambda: LayerNormalization(axis=[]), TypeError, "axis"),
    (lambda: LayerNormalization(epsilon="1e-3"), TypeError, "epsilon"),
    (lambda: ReLU(max_value=-1.0), ValueError, "max_value"),
    (lambda: ReLU(negative_slope=None), ValueError, "negative_slope"),
    (lambda: ReLU(threshold=-0.5), ValueError, "threshold"),
    (lambda: ReLU(threshold="0"), TypeError, "threshold"),
    (lambda: LeakyReLU(negative_slope=-0.1), ValueError, "negative_slope"),
    (lambda: LeakyReLU(negative_slope=None), ValueError, "negative_slope"),
    (lambda: ELU(alpha="1"), TypeError, "alpha"),
    (lambda: Softmax(axis=1.5), TypeError, "axis"),
])
def test_bad_arguments(make, err, match):
    with pytest.raises(err, match=match):
        make()


def test_bad_inputs(rng):
    x = bn_input(rng, (2, 3, 4))
    bn = BatchNormalization()
    bn(x)
    with pytest.raises(ValueError, match="expected axis -1 of input shape to have value 4"):
        bn(bn_input(rng, (2, 3, 5)))
    with pytest.raises(ValueError, match="expected ndim=3"):
        bn(bn_input(rng, (2, 4)))
    with pytest.raises(ValueError, match="one dimension less"):
        bn(x, training=True, mask=np.ones((2,), bool))
    with pytest.raises(ValueError, match="does not match"):
        bn(x, training=True, mask=np.ones((2, 5), bool))
    with pytest.raises(TypeError, match="floating"):
        bn(np.ones((2, 3, 4), np.int32))
    with pytest.raises(ValueError, match="out of bounds"):
        BatchNormalization(axis=3).build((None, 4))
    with pytest.raises(ValueError, match="known size"):
        BatchNormalization(axis=1).build((None, None, 4))
    with pytest.raises(ValueError, match="out of bounds"):
        LayerNormalization(axis=[1, 3])(x)
    with pytest.raises(ValueError, match="broadcastable"):
        Softmax()(x, mask=np.ones((2, 3), bool))
    with pytest.raises(ValueError, match="set_weights"):
        BatchNormalization().set_weights([np.ones(3)] * 3)
    # set_weights on an unbuilt layer builds it from the shapes
    built = BatchNormalization(center=False)
    built.set_weights([np.ones(4)] * 3)
    assert built(x).shape == x.shape and built(x[0]).shape == x[0].shape
    with pytest.warns(UserWarning, match="alpha"):
        assert LeakyReLU(alpha=0.1).negative_slope == 0.1
