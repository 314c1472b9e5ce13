"""Conv1D, the 1-D poolings and the sequence reshaping layers (keras-io's
sequence examples, e.g. timeseries_classification_from_scratch.py) against
Keras 3 on the torch backend: outputs with copied weights over a grid of
arguments, Conv1D's gradients against torch autograd through the Keras layer,
every backward against float64 finite differences, masks, configs, symbolic
shapes and summaries, Keras weight files, a small fit, and the argument
errors."""
import os

os.environ.setdefault("KERAS_BACKEND", "torch")

import itertools  # noqa: E402
import types  # noqa: E402
import warnings  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402

import rnnkern as rk  # noqa: E402
import rnnkern.layers as RL  # noqa: E402
import rnnkern.models as RM  # noqa: E402
from helpers import keras_or_skip  # noqa: E402
from rnnkern.layers.base import _float64_for_tests  # noqa: E402
from rnnkern.layers.conv import (AveragePooling1D, Conv1D, Conv2D,  # noqa: E402
                                 GlobalAveragePooling1D, GlobalMaxPooling1D, MaxPooling1D,
                                 MaxPooling2D)
from rnnkern.layers.reshaping import (Cropping1D, Permute, SpatialDropout1D,  # noqa: E402
                                      ZeroPadding1D)
from test_model_layers import check_gradients  # noqa: E402
from tolerances import assert_close  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")

# the classes under test by name (as keras.layers names them), and a namespace of
# them with the other layers the models here use: ``make(OURS)`` / ``make(keras.layers)``
L = {c.__name__: c for c in (Conv1D, MaxPooling1D, AveragePooling1D, GlobalAveragePooling1D,
                             GlobalMaxPooling1D, ZeroPadding1D, Cropping1D, Permute,
                             SpatialDropout1D)}
OURS = types.SimpleNamespace(**L, Input=RL.Input, Dense=RL.Dense, Embedding=RL.Embedding)


def f32(rng, *shape):
    return rng.standard_normal(shape).astype(np.float32)


def copy_weights(keras_layer, ours, rng):
    """Random weights (biases too) into the Keras layer, then the same into ours."""
    ws = [rng.uniform(-0.5, 0.5, w.shape).astype(np.float32) for w in keras_layer.get_weights()]
    keras_layer.set_weights(ws)
    ours.set_weights(ws)


def channels_first(x):
    return np.ascontiguousarray(np.moveaxis(x, -1, 1))


# ------------------------------------------------------- Conv1D against Keras

CONV_GRID = [dict(padding=p, strides=s, dilation_rate=d, groups=g)
             for p, (s, d), g in itertools.product(
                 ["valid", "same", "causal"], [(1, 1), (2, 1), (3, 1), (1, 2), (1, 3)], [1, 2])]
CONV_EXTRA = [
    dict(kernel_size=4, padding="same"),           # even kernel: asymmetric "same"
    dict(kernel_size=4, padding="same", strides=2),
    dict(kernel_size=1, strides=2),
    dict(kernel_size=2, padding="causal", dilation_rate=2, activation="tanh"),
    dict(activation="relu", use_bias=False, groups=4),
    dict(data_format="channels_first", padding="same"),
    dict(data_format="channels_first", padding="causal", groups=2, strides=2),
]


def conv_id(kw):
    return "-".join(f"{k}={v}" for k, v in kw.items())


@pytest.mark.parametrize("steps", [7, 8])
@pytest.mark.parametrize("kw", CONV_GRID + CONV_EXTRA, ids=conv_id)
def test_conv1d_matches_keras_and_torch_autograd(kw, steps, rng):
    keras = keras_or_skip()
    import torch
    kw = dict(kw)
    k = kw.pop("kernel_size", 3)
    x = f32(rng, 3, steps, 4)
    if kw.get("data_format") == "channels_first":
        x = channels_first(x)
    kl = keras.layers.Conv1D(8, k, **kw)
    kl.build(x.shape)
    ours = Conv1D(8, k, **kw)
    copy_weights(kl, ours, rng)
    assert [w.shape for w in ours.weights] == [tuple(w.shape) for w in kl.weights]

    xt = torch.tensor(x, requires_grad=True)
    yt = kl(xt)
    y = ours(x)
    assert y.shape == tuple(yt.shape) == ours.compute_output_shape(x.shape)
    assert_close(y, yt.detach().numpy(), "keras_f32", f"conv1d {kw} forward")
    dy = f32(rng, *y.shape)
    (yt * torch.tensor(dy)).sum().backward()
    dx = ours.backward(dy)
    assert_close(dx, xt.grad.numpy(), "torch_grad_f32", f"conv1d {kw} dx")
    assert len(ours.grads) == len(kl.trainable_weights)
    for g, v in zip(ours.grads, kl.trainable_weights):
        assert_close(g, v.value.grad.numpy(), "torch_grad_f32", f"conv1d {kw} d{v.name}")


@pytest.mark.parametrize("kw", [
    dict(padding="same", groups=2),
    dict(kernel_size=(2, 3), strides=(2, 1), groups=4),
    dict(kernel_size=(3, 2), padding="same", data_format="channels_first"),
], ids=conv_id)
def test_conv2d_groups_and_channels_first_match_keras(kw, rng):
    """Conv2D shares Conv1D's im2col code: its new groups and channels_first too."""
    keras = keras_or_skip()
    kw = dict(kw)
    k = kw.pop("kernel_size", 3)
    x = f32(rng, 2, 7, 6, 4)
    kl = keras.layers.Conv2D(4, k, **kw)
    kl.build(x.shape)
    ours = Conv2D(4, k, **kw)
    copy_weights(kl, ours, rng)
    assert_close(ours(x), keras.ops.convert_to_numpy(kl(x)), "keras_f32", str(kw))


# ------------------------------------------------------ poolings against Keras

def pool_reference(x, pool, stride, padding, mode):
    """Loops over the windows, channels-last (TensorFlow's rule: a "same"
    window averages its real elements only)."""
    n, t, c = x.shape
    if padding == "valid":
        out, before = (t - pool) // stride + 1, 0
    else:
        out = -(-t // stride)
        before = max((out - 1) * stride + pool - t, 0) // 2
    y = np.zeros((n, out, c), np.float64)
    for i in range(out):
        lo = max(i * stride - before, 0)
        hi = min(i * stride - before + pool, t)
        win = x[:, lo:hi].astype(np.float64)
        y[:, i] = win.max(axis=1) if mode == "max" else win.mean(axis=1)
    return y, before, max((out - 1) * stride + pool - t, 0) - before


POOL_GRID = list(itertools.product([2, 3, 4], [None, 1, 2], ["valid", "same"]))


@pytest.mark.parametrize("cls", [MaxPooling1D, AveragePooling1D], ids=lambda c: c.__name__)
@pytest.mark.parametrize("pool,stride,padding", POOL_GRID, ids=str)
@pytest.mark.parametrize("steps", [7, 8])
def test_pooling1d_matches_keras(cls, pool, stride, padding, steps, rng):
    keras = keras_or_skip()
    x = f32(rng, 2, steps, 3)
    mode = "max" if cls is MaxPooling1D else "average"
    ref, before, after = pool_reference(x, pool, stride or pool, padding, mode)
    ours = cls(pool, strides=stride, padding=padding)
    y = ours(x)
    assert y.shape == ours.compute_output_shape(x.shape) == ref.shape
    assert_close(y, ref, "forward_f32", "reference")
    kl = getattr(keras.layers, cls.__name__)(pool, strides=stride, padding=padding)
    if mode == "max" or padding == "valid" or before == after:
        # Keras' torch backend pads an asymmetric "same" window with replicated edge
        # values, which shifts averages (TensorFlow and JAX average real elements,
        # as we do); max pooling and symmetric padding agree everywhere
        assert_close(y, keras.ops.convert_to_numpy(kl(x)), "keras_f32", "keras")
    # channels_first gives the same numbers, transposed
    cf = cls(pool, strides=stride, padding=padding, data_format="channels_first")
    assert_close(cf(channels_first(x)), channels_first(y), "exact_f64", "channels_first")


@pytest.mark.parametrize("cls", [GlobalAveragePooling1D, GlobalMaxPooling1D],
                         ids=lambda c: c.__name__)
@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
@pytest.mark.parametrize("keepdims", [False, True])
def test_global_pooling1d_matches_keras(cls, data_format, keepdims, rng):
    keras = keras_or_skip()
    x = f32(rng, 3, 5, 4)
    kl = getattr(keras.layers, cls.__name__)(data_format=data_format, keepdims=keepdims)
    ours = cls(data_format=data_format, keepdims=keepdims)
    y = ours(x)
    assert y.shape == ours.compute_output_shape(x.shape) == kl.compute_output_shape(x.shape)
    assert_close(y, keras.ops.convert_to_numpy(kl(x)), "keras_f32", cls.__name__)


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
def test_global_average_pooling_mask_matches_keras(data_format, rng):
    keras = keras_or_skip()
    x = f32(rng, 3, 6, 4)
    steps = 6 if data_format == "channels_last" else 4
    mask = rng.random((3, steps)) < 0.6
    mask[:, 0] = True
    axis = 2 if data_format == "channels_last" else 1
    x = np.where(np.expand_dims(mask, axis), x, np.float32(1e3))  # masked: ignored
    kl = keras.layers.GlobalAveragePooling1D(data_format=data_format)
    ours = GlobalAveragePooling1D(data_format=data_format)
    y = ours(x, mask=mask)
    assert_close(y, keras.ops.convert_to_numpy(kl(x, mask=mask)), "keras_f32", "masked mean")
    assert ours.compute_mask(x, mask) is None  # the mask stops here, as Keras
    with _float64_for_tests():
        check_gradients(GlobalAveragePooling1D(data_format=data_format),
                        x.astype(np.float64), kw={"mask": mask}, rng=rng)
    # masked steps get no gradient
    _, ctx = ours._run(x, None, {"mask": mask})
    dx, _ = ours.backward_from(ctx, np.ones(y.shape, np.float32))
    if data_format == "channels_last":
        assert not np.any(dx[~mask])


def test_masks_through_models_as_keras(rng):
    """A masked Embedding feeding each layer: GlobalAveragePooling1D consumes the
    mask, SpatialDropout1D passes it on; Conv1D, the windowed poolings,
    GlobalMaxPooling1D, ZeroPadding1D, Cropping1D and Permute drop it with
    Keras' warning -- the same layers Keras warns about."""
    keras = keras_or_skip()
    ids = rng.integers(1, 9, size=(4, 7))
    ids[:2, 4:] = 0

    def build(layers, models, make):
        inp = layers.Input((7,), dtype="int32")
        h = layers.Embedding(9, 4, mask_zero=True)(inp)
        return models.Model(inp, make(layers)(h))

    cases = {
        "GlobalAveragePooling1D": (lambda m: m.GlobalAveragePooling1D(), False),
        "SpatialDropout1D": (lambda m: m.SpatialDropout1D(0.5, seed=1), False),
        "Conv1D": (lambda m: m.Conv1D(3, 2), True),
        "MaxPooling1D": (lambda m: m.MaxPooling1D(), True),
        "AveragePooling1D": (lambda m: m.AveragePooling1D(2), True),
        "GlobalMaxPooling1D": (lambda m: m.GlobalMaxPooling1D(), True),
        "ZeroPadding1D": (lambda m: m.ZeroPadding1D(), True),
        "Cropping1D": (lambda m: m.Cropping1D(), True),
        "Permute": (lambda m: m.Permute((2, 1)), True),
    }
    for name, (make, drops) in cases.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Keras warns when it builds the model too
            km = build(keras.layers, keras.models, make)
        om = build(OURS, RM, make)
        om.set_weights(km.get_weights())
        with warnings.catch_warnings(record=True) as w_ours:
            warnings.simplefilter("always")
            y = om(ids)
        with warnings.catch_warnings(record=True) as w_keras:
            warnings.simplefilter("always")
            yk = keras.ops.convert_to_numpy(km(ids))
        said = [any("does not support masking" in str(w.message) for w in ws)
                for ws in (w_ours, w_keras)]
        assert said == [drops, drops], name
        assert_close(y, yk, "keras_f32", name)


# --------------------------------------------------- reshaping against Keras

@pytest.mark.parametrize("make,shape", [
    (lambda m: m.ZeroPadding1D(), (2, 5, 3)),
    (lambda m: m.ZeroPadding1D((2, 0)), (2, 5, 3)),
    (lambda m: m.ZeroPadding1D((0, 3), data_format="channels_first"), (2, 5, 3)),
    (lambda m: m.Cropping1D(), (2, 5, 3)),
    (lambda m: m.Cropping1D((0, 2)), (2, 5, 3)),
    (lambda m: m.Cropping1D(2), (2, 5, 3)),
    (lambda m: m.Permute((2, 1)), (2, 5, 3)),
    (lambda m: m.Permute((3, 1, 2)), (2, 5, 3, 4)),
    (lambda m: m.SpatialDropout1D(0.3), (2, 5, 3)),
], ids=["zp", "zp-2-0", "zp-cf", "crop", "crop-0-2", "crop-2", "permute", "permute4d",
        "spatial-dropout"])
def test_reshaping_matches_keras_and_finite_differences(make, shape, rng):
    keras = keras_or_skip()
    x = f32(rng, *shape)
    ours, kl = make(OURS), make(keras.layers)
    y = ours(x)
    assert y.shape == ours.compute_output_shape(x.shape) == tuple(kl.compute_output_shape(
        x.shape))
    assert_close(y, keras.ops.convert_to_numpy(kl(x)), "exact_f64", type(ours).__name__)
    with _float64_for_tests():
        check_gradients(make(OURS), x.astype(np.float64), rng=rng)


def test_spatial_dropout_drops_whole_channels(rng):
    x = f32(rng, 40, 6, 30)
    layer = SpatialDropout1D(0.4, seed=3)
    y = layer(x, training=True)
    kept = y != 0
    assert np.all(kept == kept[:, :1]), "one draw per (sample, channel), shared over steps"
    assert 0.5 < kept[:, 0].mean() < 0.7
    np.testing.assert_allclose(y[kept], x[kept] / 0.6, rtol=1e-6)
    dy = f32(rng, *y.shape)
    np.testing.assert_allclose(layer.backward(dy), np.where(kept, dy / 0.6, 0), rtol=1e-6)
    # seeded: a second layer with the seed draws the same channels
    np.testing.assert_array_equal(SpatialDropout1D(0.4, seed=3)(x, training=True), y)
    np.testing.assert_array_equal(layer(x), x)                  # inference: identity
    np.testing.assert_array_equal(layer(x, training=False), x)
    assert layer.supports_masking and layer.compute_mask(x, kept[:, :, 0]) is not None
    np.testing.assert_array_equal(SpatialDropout1D(1.0)(x, training=True), 0 * x)


# --------------------------------------------- backward: finite differences

@pytest.mark.parametrize("kw", [
    dict(), dict(padding="same", kernel_size=4), dict(padding="causal", dilation_rate=2),
    dict(strides=2, padding="same"), dict(strides=3), dict(groups=2, activation="tanh"),
    dict(groups=4, use_bias=False, padding="causal"),
    dict(data_format="channels_first", padding="same", activation="relu"),
], ids=conv_id)
def test_conv1d_gradients_finite_differences(kw, rng):
    kw = dict(kw)
    k = kw.pop("kernel_size", 3)
    with _float64_for_tests():
        layer = Conv1D(4, k, **kw)
        shape = (2, 4, 7) if kw.get("data_format") == "channels_first" else (2, 7, 4)
        layer.build(shape)
        layer.set_weights([rng.uniform(-0.5, 0.5, w.shape) for w in layer.get_weights()])
        check_gradients(layer, rng.standard_normal(shape), rng=rng)


@pytest.mark.parametrize("make", [
    lambda: MaxPooling1D(), lambda: MaxPooling1D(3, strides=2, padding="same"),
    lambda: AveragePooling1D(2), lambda: AveragePooling1D(3, strides=1, padding="same"),
    lambda: AveragePooling1D(4, strides=2, padding="same", data_format="channels_first"),
    lambda: MaxPooling2D((2, 3), strides=1, padding="same"),
    lambda: GlobalAveragePooling1D(), lambda: GlobalMaxPooling1D(keepdims=True),
    lambda: GlobalMaxPooling1D(data_format="channels_first"),
], ids=["max", "max-3-2-same", "avg", "avg-3-1-same", "avg-4-2-same-cf", "max2d",
        "gap", "gmp-keepdims", "gmp-cf"])
def test_pooling_gradients_finite_differences(make, rng):
    with _float64_for_tests():
        layer = make()
        x = rng.standard_normal((2, 7, 5, 3) if isinstance(layer, MaxPooling2D) else (2, 7, 3))
        check_gradients(layer, x, rng=rng)


# ----------------------------------------------------------- configs, shapes

CONFIG_CASES = [
    lambda m: m.Conv1D(8, 3, strides=2, padding="causal", groups=2, activation="relu"),
    lambda m: m.Conv1D(4, 5, dilation_rate=2, use_bias=False, kernel_initializer="he_normal",
                       data_format="channels_first"),
    lambda m: m.MaxPooling1D(3, strides=1, padding="same"),
    lambda m: m.AveragePooling1D(2, data_format="channels_first"),
    lambda m: m.GlobalAveragePooling1D(keepdims=True),
    lambda m: m.GlobalMaxPooling1D(data_format="channels_first"),
    lambda m: m.ZeroPadding1D((1, 2)),
    lambda m: m.Cropping1D(3),
    lambda m: m.Permute((2, 1)),
    lambda m: m.SpatialDropout1D(0.25, seed=7),
]


def without_none_initializer_keys(cfg):
    """A config with the None entries of its initializers' configs left out (Keras
    3.15 writes VarianceScaling's new input_axes / output_axes even when None)."""
    out = dict(cfg)
    for k, v in cfg.items():
        if k.endswith("_initializer") and isinstance(v, dict):
            out[k] = {**v, "config": {a: b for a, b in v["config"].items() if b is not None}}
    return out


@pytest.mark.parametrize("make", CONFIG_CASES, ids=lambda m: str(CONFIG_CASES.index(m)))
def test_config_matches_keras_and_round_trips(make):
    keras = keras_or_skip()
    ours, theirs = make(OURS), make(keras.layers)
    cfg, kcfg = ours.get_config(), theirs.get_config()
    kcfg["name"] = cfg["name"]
    assert without_none_initializer_keys(cfg) == without_none_initializer_keys(kcfg)
    again = type(ours).from_config(cfg)
    assert again.get_config() == cfg
    # a Keras config builds our layer, and ours builds Keras'
    assert type(ours).from_config(kcfg).get_config() == cfg
    assert type(theirs).from_config(cfg).get_config() == kcfg


def test_symbolic_shapes_and_summary_match_keras(monkeypatch):
    """Unknown steps stay None through every layer; the summary (names, shapes,
    parameter counts) is Keras' character for character."""
    keras = keras_or_skip()
    monkeypatch.setenv("COLUMNS", "100")

    def build(layers, models, steps):
        return models.Sequential([
            layers.Input((steps, 3)),
            layers.Conv1D(16, 3, padding="same", activation="relu"),
            layers.ZeroPadding1D(2),
            layers.Conv1D(8, 5, strides=2, padding="causal", groups=4),
            layers.MaxPooling1D(),
            layers.SpatialDropout1D(0.2),
            layers.Cropping1D((1, 0)),
            layers.AveragePooling1D(2, padding="same"),
            layers.Permute((2, 1)),
            layers.Permute((2, 1)),
            layers.GlobalAveragePooling1D(),
            layers.Dense(2, activation="softmax"),
        ])

    from test_models import captured_summary
    for steps in (None, 41):
        rk.utils.clear_session()
        keras.utils.clear_session()
        ours = build(OURS, RM, steps)
        theirs = build(keras.layers, keras.models, steps)
        assert [layer.output.shape for layer in ours.layers] == \
            [tuple(layer.output.shape) for layer in theirs.layers]
        assert captured_summary(ours) == captured_summary(theirs)
    x = np.ones((2, 41, 3), np.float32)
    ours.set_weights(theirs.get_weights())
    assert_close(ours.predict(x, verbose=0), theirs.predict(x, verbose=0), "keras_f32",
                 "predict")


def test_keras_weight_file_loads(tmp_path, rng):
    keras = keras_or_skip()
    pytest.importorskip("h5py")

    def build(layers, models):
        return models.Sequential([layers.Input((20, 2)),
                                  layers.Conv1D(6, 3, padding="same", activation="relu"),
                                  layers.Conv1D(4, 3, groups=2, use_bias=False),
                                  layers.GlobalMaxPooling1D(), layers.Dense(1)])

    theirs = build(keras.layers, keras.models)
    theirs.set_weights([rng.uniform(-0.5, 0.5, w.shape).astype(np.float32)
                        for w in theirs.get_weights()])
    path = str(tmp_path / "conv.weights.h5")
    theirs.save_weights(path)
    ours = build(OURS, RM)
    ours.load_weights(path)
    x = f32(rng, 5, 20, 2)
    assert_close(ours.predict(x, verbose=0), theirs.predict(x, verbose=0), "keras_f32",
                 "predict")


# --------------------------------------------------------------------- fit

def timeseries_problem(rng, n=96, t=40):
    """Two classes of noisy univariate series: a slow or a fast oscillation
    (something a convolution and a global average can tell apart)."""
    y = rng.integers(0, 2, n)
    period = np.where(y == 0, 20.0, 4.0)[:, None]
    phase = rng.uniform(0, 2 * np.pi, (n, 1))
    x = np.sin(2 * np.pi * np.arange(t) / period + phase) + 0.3 * rng.standard_normal((n, t))
    return x[:, :, None].astype(np.float32), y


def classifier(layers, models):
    return models.Sequential([
        layers.Input((40, 1)),
        layers.Conv1D(8, 3, padding="same", activation="relu"),
        layers.Conv1D(8, 3, padding="same", activation="relu", strides=2),
        layers.GlobalAveragePooling1D(),
        layers.Dense(2, activation="softmax"),
    ])


def test_fit_timeseries_classifier_learns(rng):
    rk.utils.clear_session()
    rk.utils.set_random_seed(1)
    x, y = timeseries_problem(rng)
    model = classifier(OURS, RM)
    model.compile(optimizer=rk.optimizers.Adam(0.02), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    hist = model.fit(x, y, epochs=8, batch_size=16, verbose=0).history
    assert hist["loss"][-1] < 0.5 * hist["loss"][0]
    assert hist["accuracy"][-1] > 0.9


def test_fit_matches_keras(rng):
    keras = keras_or_skip()
    rk.utils.clear_session()
    keras.utils.clear_session()
    x, y = timeseries_problem(rng, n=64)
    ours = classifier(OURS, RM)
    theirs = classifier(keras.layers, keras.models)
    ours.set_weights(theirs.get_weights())
    kw = dict(loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    ours.compile(optimizer=rk.optimizers.Adam(0.01), **kw)
    theirs.compile(optimizer=keras.optimizers.Adam(0.01), **kw)
    fit = dict(epochs=2, batch_size=16, shuffle=False, verbose=0)
    h_ours, h_theirs = ours.fit(x, y, **fit).history, theirs.fit(x, y, **fit).history
    assert list(h_ours) == list(h_theirs)
    for k in h_theirs:
        assert_close(h_ours[k], h_theirs[k], "training_f32", k)
    for a, b in zip(ours.get_weights(), theirs.get_weights()):
        assert_close(a, b, "training_f32", "weights after fit")


# ------------------------------------------------------------------ errors

@pytest.mark.parametrize("make,err,match", [
    (lambda: Conv1D(0, 3), ValueError, "filters"),
    (lambda: Conv1D(4.0, 3), TypeError, "filters"),
    (lambda: Conv1D(4, 0), ValueError, "kernel_size"),
    (lambda: Conv1D(4, (3, 3)), ValueError, "kernel_size"),
    (lambda: Conv1D(4, 3, strides=0), ValueError, "strides"),
    (lambda: Conv1D(4, 3, strides=2, dilation_rate=2), ValueError, "dilation_rate"),
    (lambda: Conv1D(4, 3, padding="full"), ValueError, "padding"),
    (lambda: Conv2D(4, 3, padding="causal"), ValueError, "padding"),
    (lambda: Conv1D(4, 3, groups=0), ValueError, "groups"),
    (lambda: Conv1D(4, 3, groups=3), ValueError, "groups"),
    (lambda: Conv1D(4, 3, data_format="nwc"), ValueError, "data_format"),
    (lambda: Conv1D(4, 3, use_bias="yes"), TypeError, "use_bias"),
    (lambda: Conv1D(4, 3, kernel_regularizer="l2"), NotImplementedError, "kernel_regularizer"),
    (lambda: Conv1D(4, 3, units=3), ValueError, "Unrecognized"),
    (lambda: MaxPooling1D(0), ValueError, "pool_size"),
    (lambda: AveragePooling1D(2, padding="causal"), ValueError, "padding"),
    (lambda: GlobalAveragePooling1D(keepdims=1), TypeError, "keepdims"),
    (lambda: ZeroPadding1D(-1), ValueError, "padding"),
    (lambda: ZeroPadding1D((1, 2, 3)), ValueError, "padding"),
    (lambda: Cropping1D((1, -1)), ValueError, "cropping"),
    (lambda: Permute((1, 1)), ValueError, "dims"),
    (lambda: Permute((0, 1)), ValueError, "dims"),
    (lambda: SpatialDropout1D(1.5), ValueError, "rate"),
], ids=str)
def test_bad_arguments(make, err, match):
    with pytest.raises(err, match=match):
        make()


@pytest.mark.parametrize("layer,x,match", [
    (lambda: Conv1D(4, 3, groups=2), np.zeros((2, 5, 3)), "divisible by the number of groups"),
    (lambda: Conv1D(4, 6), np.zeros((2, 5, 3)), "zero or negative"),
    (lambda: Conv1D(4, 3, dilation_rate=3), np.zeros((2, 6, 3)), "zero or negative"),
    (lambda: Conv1D(4, 3), np.zeros((2, 5)), "rank 3"),
    (lambda: Conv1D(4, 3), np.zeros((2, 5, 3, 1)), "rank 3"),
    (lambda: MaxPooling1D(4), np.zeros((2, 3, 1)), "zero or negative"),
    (lambda: GlobalMaxPooling1D(), np.zeros((2, 3)), "rank 3"),
    (lambda: Cropping1D(3), np.zeros((2, 6, 1)), "smaller than the input length"),
    (lambda: Permute((2, 1)), np.zeros((2, 3, 4, 5)), "rank 3"),
    (lambda: SpatialDropout1D(0.5), np.zeros((2, 3)), "rank 3"),
    (lambda: ZeroPadding1D(), np.zeros((2, 3, 4, 5)), "rank 3"),
], ids=str)
def test_bad_inputs(layer, x, match):
    with pytest.raises(ValueError, match=match):
        layer()(x)
    sym = RL.Input(x.shape[1:])
    with pytest.raises(ValueError, match=match):
        layer()(sym)


def test_bad_calls(rng):
    conv = Conv1D(4, 3)
    conv(f32(rng, 2, 6, 3))
    with pytest.raises(ValueError, match="built for 3 input channels"):
        conv(f32(rng, 2, 6, 2))
    with pytest.raises(TypeError, match="floating-point"):
        conv(np.zeros((2, 6, 3), np.int32))
    conv(f32(rng, 2, 6, 3))
    with pytest.raises(ValueError, match="d_output has shape"):
        conv.backward(np.zeros((2, 5, 4), np.float32))
    gap = GlobalAveragePooling1D()
    with pytest.raises(ValueError, match="mask has shape"):
        gap(f32(rng, 2, 6, 3), mask=np.ones((2, 5), bool))
    with pytest.raises(TypeError, match="mask must be"):
        gap(f32(rng, 2, 6, 3), mask=np.full((2, 6), "a"))
    with pytest.raises(ValueError, match="kernel of layer"):
        Conv1D(4, 3).set_weights([np.zeros((2, 3, 4))])
    c = Conv1D(4, 3, groups=2)
    c.set_weights([np.zeros((3, 3, 4)), np.zeros(4)])  # built from the kernel: 6 channels
    assert c(f32(rng, 1, 5, 6)).shape == (1, 3, 4)
