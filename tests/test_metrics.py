"""rnnkern.metrics against Keras 3's metrics (torch backend) over several
batches of different sizes (the batch-size weighting of the running mean),
with and without sample weights, on [N, F] and sequence [N, T, F] outputs;
get()'s resolution against Keras' compile_utils.get_metric on the same
shapes (which accuracy "accuracy" means, the names metrics are logged under);
configs, serialization and bad input."""
import os
import zlib

os.environ.setdefault("KERAS_BACKEND", "torch")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from rnnkern import losses as L  # noqa: E402
from rnnkern import metrics as M  # noqa: E402
from helpers import keras_or_skip  # noqa: E402
from tolerances import assert_close  # noqa: E402

keras = keras_or_skip(module_level=True)

from keras.src.metrics.reduction_metrics import MeanMetricWrapper as KerasMMW  # noqa: E402
from keras.src.trainers import compile_utils  # noqa: E402

pytestmark = [pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning"),
              pytest.mark.filterwarnings("ignore::SyntaxWarning")]

MAX_ERR = {}
BATCHES = (5, 2, 7, 1)       # batch sizes of successive updates


def _seed(*key):
    return zlib.crc32(repr(key).encode()) % 10000


def batch(kind, n, tail, r):
    """(y_true, y_pred) of ``n`` samples; ``tail`` the per-sample shape of y_pred."""
    shape = (n,) + tail
    if kind == "reg":
        return r.normal(size=shape).astype(np.float32), r.normal(size=shape).astype(np.float32)
    if kind == "pos":
        return np.abs(r.normal(size=shape)).astype(np.float32), \
            r.normal(0.8, 1, shape).astype(np.float32)
    if kind == "binary":       # a few predictions exactly at the threshold
        p = r.random(shape).astype(np.float32)
        p.flat[0] = 0.5
        return (r.random(shape) > 0.5).astype(np.float32), p
    if kind == "binary_int":
        return (r.random(shape) > 0.5).astype(np.int64), r.random(shape).astype(np.float32)
    if kind == "categorical":
        p = r.random(shape).astype(np.float32)
        return np.eye(shape[-1], dtype=np.float32)[r.integers(0, shape[-1], shape[:-1])], p
    if kind == "sparse":
        return r.integers(0, shape[-1], shape[:-1]), r.random(shape).astype(np.float32)
    if kind == "sparse_col":
        return r.integers(0, shape[-1], shape[:-1] + (1,)), r.random(shape).astype(np.float32)
    if kind == "exact":        # Accuracy: equality of values
        return r.integers(0, 3, shape).astype(np.float32), \
            r.integers(0, 3, shape).astype(np.float32)
    raise ValueError(kind)


def weights(n, tail, which, r):
    if which is None:
        return None
    if which == "per_sample":
        return r.uniform(0, 2, size=n).astype(np.float32)
    if which == "per_step":       # [N, T] for sequences
        return r.uniform(0, 2, size=(n, tail[0])).astype(np.float32)
    raise ValueError(which)


def run_both(make, kind, tail, which, seed, batches=BATCHES):
    ours, theirs = make(M), make(keras.metrics)
    r = np.random.default_rng(seed)
    err = 0.0
    for step, n in enumerate(batches):
        yt, yp = batch(kind, n, tail, r)
        w = weights(n, tail, which, r)
        try:
            theirs.update_state(yt, yp, sample_weight=w)
        except RuntimeError:
            # Keras cannot apply [N] weights to a masked [N, T] loss (ignore_class);
            # ours says so -- except for N = 1, where one weight is unambiguous
            if n > 1:
                with pytest.raises(ValueError, match="does not broadcast"):
                    ours.update_state(yt, yp, sample_weight=w)
                return 0.0
            w = np.broadcast_to(w[:, None], yp.shape[:2]).copy()
            theirs.update_state(yt, yp, sample_weight=w)
        ours.update_state(yt, yp, sample_weight=w)
        a, b = ours.result(), float(theirs.result())
        assert isinstance(a, float)
        err = max(err, assert_close(a, b, "metric_f32", f"step {step} (batch {n})")
                  / max(abs(b), 1e-30))
    for x, y in zip(ours.variables, theirs.variables):
        assert_close(x, np.asarray(y.numpy()), "metric_f32", "state")
    ours.reset_state()
    theirs.reset_state()
    assert ours.result() == float(theirs.result()) == 0.0
    yt, yp = batch(kind, 3, tail, r)
    ours.update_state(yt, yp)
    theirs.update_state(yt, yp)
    b = float(theirs.result())
    err = max(err, assert_close(ours.result(), b, "metric_f32", "after reset_state")
              / max(abs(b), 1e-30))
    assert ours.name == theirs.name
    assert ours.get_config() == theirs.get_config()
    return err


CASES = [
    ("mse", lambda m: m.MeanSquaredError(), "reg"),
    ("mae", lambda m: m.MeanAbsoluteError(), "reg"),
    ("mape", lambda m: m.MeanAbsolutePercentageError(), "reg"),
    ("msle", lambda m: m.MeanSquaredLogarithmicError(), "pos"),
    ("rmse", lambda m: m.RootMeanSquaredError(), "reg"),
    ("logcosh", lambda m: m.LogCoshError(), "reg"),
    ("accuracy", lambda m: m.Accuracy(), "exact"),
    ("binary_accuracy", lambda m: m.BinaryAccuracy(), "binary"),
    ("binary_accuracy_int", lambda m: m.BinaryAccuracy(threshold=0.3), "binary_int"),
    ("categorical_accuracy", lambda m: m.CategoricalAccuracy(), "categorical"),
    ("sparse_categorical_accuracy", lambda m: m.SparseCategoricalAccuracy(), "sparse"),
    ("sparse_categorical_accuracy_col", lambda m: m.SparseCategoricalAccuracy(),
     "sparse_col"),
    ("bce", lambda m: m.BinaryCrossentropy(), "binary"),
    ("bce_logits", lambda m: m.BinaryCrossentropy(from_logits=True, label_smoothing=0.1),
     "reg_binary"),
    ("cce", lambda m: m.CategoricalCrossentropy(), "categorical"),
    ("cce_smooth", lambda m: m.CategoricalCrossentropy(label_smoothing=0.2), "categorical"),
    ("scce", lambda m: m.SparseCategoricalCrossentropy(), "sparse"),
    ("scce_logits_ignore", lambda m: m.SparseCategoricalCrossentropy(from_logits=True,
                                                                     ignore_class=1),
     "sparse"),
]
TAILS = {"2d": (4,), "seq": (3, 4)}


WEIGHTINGS = [("2d", None), ("2d", "per_sample"), ("seq", None), ("seq", "per_sample"),
              ("seq", "per_step")]


@pytest.mark.parametrize("tail,which", WEIGHTINGS, ids=[f"{t}-{w}" for t, w in WEIGHTINGS])
@pytest.mark.parametrize("name,make,kind", CASES, ids=[c[0] for c in CASES])
def test_against_keras(name, make, kind, tail, which):
    if kind == "reg_binary":
        kind = "binary"
    MAX_ERR[(name, tail, which)] = run_both(make, kind, TAILS[tail], which,
                                            _seed(name, tail, which))


@pytest.mark.parametrize("which", [None, "per_sample"])
def test_mean_and_sum(which):
    r = np.random.default_rng(1)
    for cls in ("Mean", "Sum"):
        ours, theirs = getattr(M, cls)(), getattr(keras.metrics, cls)()
        for n in BATCHES:
            v = r.normal(size=(n, 3)).astype(np.float32)
            w = None if which is None else r.uniform(0, 2, n).astype(np.float32)
            ours.update_state(v, sample_weight=w)
            theirs.update_state(v, sample_weight=w)
            assert_close(ours.result(), float(theirs.result()), "metric_f32", cls)
        ours.update_state(3.0)          # a scalar counts as one sample
        theirs.update_state(3.0)
        assert_close(ours.result(), float(theirs.result()), "metric_f32", cls)
    m = M.Mean()
    assert m([1, 3, 5, 7]) == 4.0           # __call__: update then result


def test_functions_and_loss_objects_as_metrics():
    """A loss function is wrapped per sample; a loss object counts once per
    batch (its reduced value), as Keras' MeanMetricWrapper does."""
    r = np.random.default_rng(2)
    pairs = [(M.MeanMetricWrapper(L.huber, name="h", delta=0.5),
              KerasMMW(keras.losses.huber, name="h", delta=0.5)),
             (M.MeanMetricWrapper(L.Huber()), KerasMMW(keras.losses.Huber())),
             (M.MeanMetricWrapper(L.mean_squared_error),
              KerasMMW(keras.losses.mean_squared_error))]
    for ours, theirs in pairs:
        for n in BATCHES:
            yt, yp = batch("reg", n, (3, 2), r)
            ours.update_state(yt, yp)
            theirs.update_state(yt, yp)
            assert_close(ours.result(), float(theirs.result()), "metric_f32", ours.name)


def test_functions_against_keras():
    r = np.random.default_rng(3)
    for fn, kind in (("accuracy", "exact"), ("binary_accuracy", "binary"),
                     ("categorical_accuracy", "categorical"),
                     ("sparse_categorical_accuracy", "sparse"),
                     ("sparse_categorical_accuracy", "sparse_col")):
        for tail in TAILS.values():
            yt, yp = batch(kind, 6, tail, r)
            ours = getattr(M, fn)(yt, yp)
            if fn == "accuracy":
                from keras.src.metrics.accuracy_metrics import accuracy as kfn
            else:
                kfn = getattr(keras.metrics, fn)
            theirs = np.asarray(kfn(yt, yp))
            assert ours.shape == theirs.shape, (fn, kind, tail)
            np.testing.assert_array_equal(ours, theirs)


# ----------------------------------------------------------- resolution

SHAPE_PAIRS = [((8, 1), (8, 1)), ((8,), (8, 1)), ((8,), (8, 5)), ((8, 1), (8, 5)),
               ((8, 5), (8, 5)), ((8, 6), (8, 6, 5)), ((8, 6, 5), (8, 6, 5)),
               ((8, 6, 1), (8, 6, 1)), ((8, 6), (8, 6, 1)), ((8, 6, 1), (8, 6, 5))]
IDENTIFIERS = ["accuracy", "acc", "Accuracy", "ACC", "mae", "MAE", "mse", "MSE", "mape",
               "msle", "mean_absolute_error", "MeanAbsoluteError", "mean_squared_error",
               "root_mean_squared_error", "RootMeanSquaredError", "binary_accuracy",
               "BinaryAccuracy", "categorical_accuracy", "sparse_categorical_accuracy",
               "binary_crossentropy", "bce", "categorical_crossentropy",
               "sparse_categorical_crossentropy", "log_cosh_error", "mean", "sum",
               "mean_squared_logarithmic_error", "MeanAbsolutePercentageError"]


@pytest.mark.parametrize("yt_shape,yp_shape", SHAPE_PAIRS)
def test_get_as_compile(yt_shape, yp_shape):
    yt, yp = np.zeros(yt_shape, np.float32), np.zeros(yp_shape, np.float32)
    for ident in IDENTIFIERS:
        ours = M.get(ident, y_true=yt, y_pred=yp, loss=L.get("mse"))
        theirs = compile_utils.get_metric(ident, yt, yp)
        assert type(ours).__name__ == type(theirs).__name__, (ident, yt_shape, yp_shape)
        assert ours.name == theirs.name == ident
    # shapes work as well as arrays
    assert type(M.get("accuracy", y_true=yt_shape, y_pred=yp_shape)) is \
        type(M.get("accuracy", y_true=yt, y_pred=yp))


def test_get_objects_as_compile():
    yt, yp = np.zeros((4, 3)), np.zeros((4, 3))
    for ours_id, keras_id in [
            (L.mean_squared_error, keras.losses.mean_squared_error),
            (L.huber, keras.losses.huber),
            (M.binary_accuracy, keras.metrics.binary_accuracy),
            (L.Huber(), keras.losses.Huber()),
            (L.MeanSquaredError(name="my_mse"), keras.losses.MeanSquaredError(name="my_mse")),
            (M.MeanAbsoluteError(name="m1"), keras.metrics.MeanAbsoluteError(name="m1")),
            (M.MeanAbsoluteError, keras.metrics.MeanAbsoluteError),
            ({"class_name": "BinaryAccuracy", "config": {"threshold": 0.7}},
             {"class_name": "BinaryAccuracy", "config": {"threshold": 0.7}})]:
        ours = M.get(ours_id, y_true=yt, y_pred=yp)
        theirs = compile_utils.get_metric(keras_id, yt, yp)
        assert type(ours).__name__ == type(theirs).__name__
        assert ours.name == theirs.name
        assert isinstance(ours, M.Metric)
    inst = M.MeanAbsoluteError()
    assert M.get(inst) is inst
    k = M.get(keras.metrics.BinaryAccuracy(threshold=0.3))
    assert isinstance(k, M.BinaryAccuracy) and k.threshold == 0.3


def test_get_errors():
    with pytest.raises(ValueError, match="valid names are .*'mae'"):
        M.get("maee")
    with pytest.raises(ValueError, match="not implemented in rnnkern"):
        M.get("AUC")
    with pytest.raises(ValueError, match="not implemented in rnnkern"):
        M.get("precision")
    with pytest.raises(ValueError, match="needs y_true"):
        M.get("accuracy")
    with pytest.raises(ValueError, match="Expected metric"):
        M.get(None)
    # Keras' metric registry has no "huber" / "logcosh" names either
    for name in ("huber", "logcosh"):
        with pytest.raises(ValueError):
            keras.metrics.get(name) or (_ for _ in ()).throw(ValueError())
        with pytest.raises(ValueError):
            M.get(name)


def test_serialize_round_trips():
    for make in (lambda m: m.MeanAbsoluteError(), lambda m: m.BinaryAccuracy(threshold=0.7),
                 lambda m: m.SparseCategoricalCrossentropy(from_logits=True, ignore_class=0),
                 lambda m: m.RootMeanSquaredError(name="rmse")):
        ours, theirs = make(M), make(keras.metrics)
        s = M.serialize(ours)
        assert s["class_name"] == keras.metrics.serialize(theirs)["class_name"]
        assert s["config"] == theirs.get_config()
        again = M.deserialize(s)
        assert type(again) is type(ours) and again.get_config() == ours.get_config()
        k_again = keras.metrics.deserialize(s)
        assert k_again.get_config() == theirs.get_config()
        assert type(M.deserialize(keras.metrics.serialize(theirs))) is type(ours)


def test_bad_input():
    m = M.MeanSquaredError()
    with pytest.raises(ValueError, match=r"y_true of shape \(3, 2\) and y_pred of shape"):
        m.update_state(np.zeros((3, 2)), np.zeros((3, 4)))
    with pytest.raises(TypeError, match="real numbers"):
        m.update_state(np.array([["a"]]), np.zeros((1, 1)))
    with pytest.raises(ValueError, match="sample_weight of shape"):
        m.update_state(np.zeros((3, 2)), np.zeros((3, 2)), sample_weight=np.ones((4, 5)))
    with pytest.raises(ValueError, match="class id"):
        M.SparseCategoricalCrossentropy().update_state(np.array([5]), np.ones((1, 3)) / 3)


def test_report_max_errors():
    """Not a check: prints the largest error against Keras seen above (-s to see)."""
    if MAX_ERR:
        worst = max(MAX_ERR, key=MAX_ERR.get)
        print(f"\nmax |rnnkern - keras| / |keras| over {len(MAX_ERR)} metric cases: "
              f"{MAX_ERR[worst]:.3g} {worst}")
