"""Metrics, as Keras 3's ``keras.metrics`` (keras/src/metrics/: metric.py,
reduction_metrics.py, regression_metrics.py, accuracy_metrics.py,
probabilistic_metrics.py), on NumPy arrays, with Keras' float32 running state.

A metric accumulates over batches::

    m = MeanAbsoluteError()
    m.update_state(y_true, y_pred, sample_weight=None)   # once per batch
    m.result()                                            # a float
    m.reset_state()

``Mean``-based metrics keep a running ``total`` and ``count``: each batch adds
the sum of its per-sample values (a sequence's steps averaged per sample) and
its number of samples (or the sum of its sample weights), so batches of
different sizes weigh by their size, as in Keras.

Classes: ``Mean``, ``Sum``, ``MeanMetricWrapper``, ``MeanSquaredError``,
``MeanAbsoluteError``, ``MeanAbsolutePercentageError``,
``MeanSquaredLogarithmicError``, ``RootMeanSquaredError``, ``LogCoshError``,
``Accuracy``, ``BinaryAccuracy(threshold=0.5)``, ``CategoricalAccuracy``,
``SparseCategoricalAccuracy``, ``BinaryCrossentropy``,
``CategoricalCrossentropy``, ``SparseCategoricalCrossentropy``; any loss
function or ``rnnkern.losses`` object is usable as a metric (wrapped in
``MeanMetricWrapper``, as Keras does).

``get(identifier, y_true=None, y_pred=None, loss=None)`` is the resolution
Keras' ``compile`` applies to a metric identifier
(keras/src/trainers/compile_utils.py ``get_metric``): "accuracy" / "acc" (any
case) become BinaryAccuracy when y_pred's last dimension is 1,
SparseCategoricalAccuracy when y_true has a lower rank than y_pred (or a last
dimension of 1 against several classes), CategoricalAccuracy otherwise; a
string metric is named (and logged in History) under the string itself
("mae" stays "mae", "mean_absolute_error" stays "mean_absolute_error").
Keras 3 does not look at the loss (Keras 2 did); ``loss`` is accepted and
ignored.
"""
from __future__ import annotations

import inspect

import numpy as np

from . import losses as _losses
from .losses import (binary_crossentropy, categorical_crossentropy, huber, log_cosh,  # noqa: F401
                     mean_absolute_error, mean_absolute_percentage_error, mean_squared_error,
                     mean_squared_logarithmic_error, sparse_categorical_crossentropy,
                     squeeze_or_expand_to_same_rank)
from .utils.naming import auto_name, to_snake_case

__all__ = ["Metric", "Mean", "Sum", "MeanMetricWrapper", "MeanSquaredError",
           "MeanAbsoluteError", "MeanAbsolutePercentageError", "MeanSquaredLogarithmicError",
           "RootMeanSquaredError", "LogCoshError", "Accuracy", "BinaryAccuracy",
           "CategoricalAccuracy", "SparseCategoricalAccuracy", "BinaryCrossentropy",
           "CategoricalCrossentropy", "SparseCategoricalCrossentropy", "accuracy",
           "binary_accuracy", "categorical_accuracy", "sparse_categorical_accuracy",
           "mean_squared_error", "mean_absolute_error", "mean_absolute_percentage_error",
           "mean_squared_logarithmic_error", "log_cosh", "huber", "binary_crossentropy",
           "categorical_crossentropy", "sparse_categorical_crossentropy", "get", "serialize",
           "deserialize"]

_F32 = np.dtype(np.float32)


def _array(x, what, dtype=None):
    a = x if isinstance(x, np.ndarray) else np.asarray(x)
    if a.dtype.kind not in "fiub":
        raise TypeError(f"{what} must hold real numbers (int, float or bool), got an array of "
                        f"dtype {a.dtype} (shape {a.shape})")
    if dtype is not None and a.dtype != dtype:
        a = a.astype(dtype)
    return a


def _float_like(y_pred):
    """Keras' convert_to_tensor(y_pred): floats keep their dtype, the rest float32."""
    a = _array(y_pred, "y_pred")
    return a if a.dtype.kind == "f" else a.astype(np.float32)


# ---------------------------------------------------------------- base

class Metric:
    """Base class of the metrics (Keras' ``keras.metrics.Metric``): subclasses
    implement ``update_state``, ``result`` and ``reset_state`` (or keep their
    state in ``_state``, a dict of float32 scalars that ``reset_state`` zeroes).

    Args:
        dtype: the state's dtype (float32).
        name: str; defaults to the snake-case class name, made unique.

    Example: ``m = Mean(); m.update_state([1, 3]); m.result() == 2.0``
    """

    def __init__(self, dtype=None, name=None):
        self.name = name or auto_name(type(self).__name__)
        self._dtype = np.dtype(getattr(dtype, "name", dtype) or "float32")
        self._state = {}

    @property
    def dtype(self):
        return self._dtype.name

    @property
    def variables(self):
        """The state as 0-d arrays (Keras' metric variables, in order)."""
        return [np.array(v, dtype=self._dtype) for v in self._state.values()]

    def reset_state(self):
        for k in self._state:
            self._state[k] = self._dtype.type(0)

    def update_state(self, *args, **kwargs):
        raise NotImplementedError

    def result(self):
        raise NotImplementedError

    def __call__(self, *args, **kwargs):
        """``update_state`` then ``result``."""
        self.update_state(*args, **kwargs)
        return self.result()

    def get_config(self):
        return {"name": self.name, "dtype": self.dtype}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        return f"<{type(self).__name__} name={self.name}>"

    __str__ = __repr__


def _reduce_to_samplewise_values(values, sample_weight, reduce_fn, dtype, mask=None):
    """Keras' reduce_to_samplewise_values: (per-sample values, their weights)."""
    values = _array(values, "values", dtype)
    if sample_weight is not None:
        sample_weight = _array(sample_weight, "sample_weight", dtype)
        if mask is not None:
            sample_weight = _losses._apply_mask(sample_weight, mask, dtype, "sum")
        values, sample_weight = squeeze_or_expand_to_same_rank(values, sample_weight)
        wnd, vnd = sample_weight.ndim, values.ndim
        if vnd > wnd:
            values = reduce_fn(values, axis=tuple(range(wnd, vnd)), dtype=dtype)
        try:
            sample_weight = np.broadcast_to(sample_weight, values.shape)
        except ValueError:
            raise ValueError(f"sample_weight of shape {sample_weight.shape} does not match the "
                             f"metric's per-sample values of shape {values.shape} (give one "
                             "weight per sample, shape (batch,))") from None
        values = values * sample_weight
        if wnd > 1:
            sample_weight = reduce_fn(sample_weight, axis=tuple(range(1, wnd)), dtype=dtype)
    if values.ndim > 1:
        values = reduce_fn(values, axis=tuple(range(1, values.ndim)), dtype=dtype)
    return values, sample_weight


class Sum(Metric):
    """The running sum of the values (weighted by ``sample_weight``).

    Args:
        name: defaults to "sum".
        dtype: the state's dtype (float32).

    Example: ``m = Sum(); m.update_state([1, 3, 5, 7]); m.result() == 16.0``
    """

    def __init__(self, name="sum", dtype=None):
        super().__init__(name=name, dtype=dtype)
        self._state = {"total": self._dtype.type(0)}

    def update_state(self, values, sample_weight=None):
        values, _ = _reduce_to_samplewise_values(values, sample_weight, np.sum, self._dtype)
        t = self._dtype.type
        self._state["total"] = t(self._state["total"] + np.sum(values, dtype=self._dtype))

    def result(self):
        return float(self._state["total"])


class Mean(Metric):
    """The running (weighted) mean of the values: ``total / count``, each
    update adding the sum of its per-sample values and their number (or the
    sum of their weights).

    Args:
        name: defaults to "mean".
        dtype: the state's dtype (float32).

    Example: ``m = Mean(); m.update_state([1, 3, 5, 7]); m.result() == 4.0``
    """

    def __init__(self, name="mean", dtype=None):
        super().__init__(name=name, dtype=dtype)
        self._state = {"total": self._dtype.type(0), "count": self._dtype.type(0)}

    def update_state(self, values, sample_weight=None):
        self._update(values, sample_weight, None)

    def _update(self, values, sample_weight, mask):
        values, sample_weight = _reduce_to_samplewise_values(values, sample_weight, np.mean,
                                                             self._dtype, mask)
        t = self._dtype.type
        self._state["total"] = t(self._state["total"] + np.sum(values, dtype=self._dtype))
        if sample_weight is not None:
            n = np.sum(sample_weight, dtype=self._dtype)
        elif values.ndim >= 1:
            n = values.shape[0]
        else:
            n = 1
        self._state["count"] = t(self._state["count"] + t(n))

    def result(self):
        c = self._state["count"]
        return float(self._state["total"] / c) if c != 0 else 0.0


class MeanMetricWrapper(Mean):
    """The running mean of ``fn(y_true, y_pred, **kwargs)``'s per-sample values.

    Args:
        fn: a function of (y_true, y_pred) (e.g. a loss function), or a loss
            object (its reduced value then counts once per batch, as in Keras).
        name: the metric's name.
        dtype: the state's dtype (float32).
        **kwargs: passed to ``fn``.

    Example: ``MeanMetricWrapper(rnnkern.losses.huber, name="huber", delta=2.0)``
    """

    def __init__(self, fn, name=None, dtype=None, **kwargs):
        super().__init__(name=name, dtype=dtype)
        if not callable(fn):
            raise TypeError(f"fn must be a function, got {type(fn).__name__}")
        self._fn = fn
        self._fn_kwargs = kwargs

    def update_state(self, y_true, y_pred, sample_weight=None):
        values, mask = _losses._values_and_mask(self._fn, y_true, y_pred, **self._fn_kwargs)
        self._update(values, sample_weight, mask)

    def get_config(self):
        base = super().get_config()
        config = {"fn": _losses.serialize(self._fn) if not isinstance(self._fn, Metric)
                  else serialize(self._fn)}
        config.update(self._fn_kwargs)
        return {**base, **config}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if isinstance(config.get("fn"), dict):
            config["fn"] = _losses.deserialize(config["fn"])
        return cls(**config)


# ----------------------------------------------------------- regression

class MeanSquaredError(MeanMetricWrapper):
    """The running mean of ``mean(square(y_true - y_pred), axis=-1)``.

    Args: name (defaults to "mean_squared_error"), dtype.

    Example: ``m = MeanSquaredError(); m.update_state([[0, 1]], [[1, 1]]); m.result() == 0.5``
    """

    def __init__(self, name="mean_squared_error", dtype=None):
        super().__init__(fn=mean_squared_error, name=name, dtype=dtype)

    def get_config(self):
        return {"name": self.name, "dtype": self.dtype}


class MeanAbsoluteError(MeanMetricWrapper):
    """The running mean of ``mean(abs(y_true - y_pred), axis=-1)``.

    Args: name (defaults to "mean_absolute_error"), dtype.

    Example: ``m = MeanAbsoluteError(); m.update_state([[0, 1]], [[1, 1]]); m.result() == 0.5``
    """

    def __init__(self, name="mean_absolute_error", dtype=None):
        super().__init__(mean_absolute_error, name, dtype=dtype)

    def get_config(self):
        return {"name": self.name, "dtype": self.dtype}


class MeanAbsolutePercentageError(MeanMetricWrapper):
    """The running mean of ``100 * mean(abs((y_true - y_pred) / y_true), axis=-1)``.

    Args: name (defaults to "mean_absolute_percentage_error"), dtype.

    Example: ``MeanAbsolutePercentageError()([[100.]], [[90.]]) == 10.0``
    """

    def __init__(self, name="mean_absolute_percentage_error", dtype=None):
        super().__init__(mean_absolute_percentage_error, name, dtype=dtype)

    def get_config(self):
        return {"name": self.name, "dtype": self.dtype}


class MeanSquaredLogarithmicError(MeanMetricWrapper):
    """The running mean of ``mean(square(log(y_true + 1) - log(y_pred + 1)), axis=-1)``.

    Args: name (defaults to "mean_squared_logarithmic_error"), dtype.

    Example: ``MeanSquaredLogarithmicError()([[0.]], [[np.e - 1]]) == 1.0``
    """

    def __init__(self, name="mean_squared_logarithmic_error", dtype=None):
        super().__init__(mean_squared_logarithmic_error, name, dtype=dtype)

    def get_config(self):
        return {"name": self.name, "dtype": self.dtype}


class LogCoshError(MeanMetricWrapper):
    """The running mean of ``mean(log(cosh(y_pred - y_true)), axis=-1)``.

    Args: name (defaults to "logcosh"), dtype.

    Example: ``LogCoshError()([[0.]], [[1.]])`` is 0.4338
    """

    def __init__(self, name="logcosh", dtype=None):
        super().__init__(log_cosh, name, dtype=dtype)

    def get_config(self):
        return {"name": self.name, "dtype": self.dtype}


class RootMeanSquaredError(Mean):
    """``sqrt`` of the running mean of ``square(y_pred - y_true)`` (over every
    element, weighted per sample).

    Args: name (defaults to "root_mean_squared_error"), dtype.

    Example: ``RootMeanSquaredError()([[0., 2.]], [[0., 0.]])`` is sqrt(2)
    """

    def __init__(self, name="root_mean_squared_error", dtype=None):
        super().__init__(name, dtype=dtype)

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_true = _array(y_true, "y_true", self._dtype)
        y_pred = _array(y_pred, "y_pred", self._dtype)
        y_true, y_pred = squeeze_or_expand_to_same_rank(y_true, y_pred)
        _losses._pair(y_true, y_pred)
        return super().update_state(np.square(y_pred - y_true), sample_weight=sample_weight)

    def result(self):
        return float(np.sqrt(self._dtype.type(super().result())))


# ------------------------------------------------------------- accuracy

def accuracy(y_true, y_pred):
    """1.0 where ``y_true == y_pred`` (after Keras' squeeze / expand), else 0.0.

    Example: ``accuracy([1, 2], [1, 3])`` is ``[1., 0.]``
    """
    y_pred = _float_like(y_pred)
    y_true = _array(y_true, "y_true", y_pred.dtype)
    y_true, y_pred = squeeze_or_expand_to_same_rank(y_true, y_pred)
    _losses._pair(y_true, y_pred)
    return np.equal(y_true, y_pred).astype(np.float32)


def binary_accuracy(y_true, y_pred, threshold=0.5):
    """1.0 where ``(y_pred > threshold) == y_true``, else 0.0.

    Example: ``binary_accuracy([[1], [0]], [[0.7], [0.6]])`` is ``[[1.], [0.]]``
    """
    y_pred = _float_like(y_pred)
    y_true = _array(y_true, "y_true")
    y_true, y_pred = squeeze_or_expand_to_same_rank(y_true, y_pred)
    _losses._pair(y_true, y_pred)
    thr = np.asarray(threshold, dtype=np.float32)
    y_pred = np.greater(y_pred, thr).astype(y_true.dtype)
    return np.equal(y_true, y_pred).astype(np.float32)


def categorical_accuracy(y_true, y_pred):
    """1.0 where ``argmax(y_true, -1) == argmax(y_pred, -1)`` (one-hot labels).

    Example: ``categorical_accuracy([[0, 1]], [[0.2, 0.8]])`` is ``[1.]``
    """
    y_true = np.argmax(_array(y_true, "y_true"), axis=-1)
    y_pred = _float_like(y_pred)
    y_true = y_true.astype(y_pred.dtype)
    org_shape = y_true.shape
    reshape = False
    if y_true.ndim == y_pred.ndim:
        y_true = np.squeeze(y_true, -1)
        reshape = True
    y_pred = np.argmax(y_pred, axis=-1).astype(y_true.dtype)
    _losses._pair(y_true, y_pred, "categorical_accuracy")
    matches = np.equal(y_true, y_pred).astype(np.float32)
    return matches.reshape(org_shape) if reshape else matches


def sparse_categorical_accuracy(y_true, y_pred):
    """1.0 where the integer label ``y_true`` is ``argmax(y_pred, -1)``.

    Example: ``sparse_categorical_accuracy([1, 0], [[0.2, 0.8], [0.3, 0.7]])`` is ``[1., 0.]``
    """
    y_pred = _float_like(y_pred)
    y_true = _array(y_true, "y_true", y_pred.dtype)
    org_shape = y_true.shape
    reshape = False
    if y_true.ndim == y_pred.ndim and y_true.shape[-1] == 1:
        y_true = np.squeeze(y_true, -1)
        reshape = True
    y_pred = np.argmax(y_pred, axis=-1).astype(y_true.dtype)
    try:
        matches = np.equal(y_true, y_pred).astype(np.float32)
    except ValueError:
        raise ValueError("sparse_categorical_accuracy: y_true must have y_pred's shape without "
                         f"the class axis; got y_true {org_shape}, y_pred "
                         f"{y_pred.shape + (None,)}") from None
    if reshape:
        matches = matches.reshape(org_shape)
    if matches.ndim > 1 and matches.shape[-1] == 1:
        matches = np.squeeze(matches, -1)
    return matches


class Accuracy(MeanMetricWrapper):
    """How often predictions equal labels exactly.

    Args: name (defaults to "accuracy"), dtype.

    Example: ``Accuracy()([[1], [2]], [[1], [3]]) == 0.5``
    """

    def __init__(self, name="accuracy", dtype=None):
        super().__init__(fn=accuracy, name=name, dtype=dtype)

    def get_config(self):
        return {"name": self.name, "dtype": self.dtype}


class BinaryAccuracy(MeanMetricWrapper):
    """How often ``y_pred > threshold`` matches the binary labels.

    Args: name (defaults to "binary_accuracy"), dtype, threshold (0.5).

    Example: ``BinaryAccuracy()([[1], [0]], [[0.7], [0.6]]) == 0.5``
    """

    def __init__(self, name="binary_accuracy", dtype=None, threshold=0.5):
        super().__init__(fn=binary_accuracy, name=name, dtype=dtype, threshold=threshold)
        self.threshold = threshold

    def get_config(self):
        return {"name": self.name, "dtype": self.dtype, "threshold": self.threshold}


class CategoricalAccuracy(MeanMetricWrapper):
    """How often the argmax of y_pred is the argmax of the one-hot labels.

    Args: name (defaults to "categorical_accuracy"), dtype.

    Example: ``CategoricalAccuracy()([[0, 1]], [[0.2, 0.8]]) == 1.0``
    """

    def __init__(self, name="categorical_accuracy", dtype=None):
        super().__init__(fn=categorical_accuracy, name=name, dtype=dtype)

    def get_config(self):
        return {"name": self.name, "dtype": self.dtype}


class SparseCategoricalAccuracy(MeanMetricWrapper):
    """How often the argmax of y_pred is the integer label.

    Args: name (defaults to "sparse_categorical_accuracy"), dtype.

    Example: ``SparseCategoricalAccuracy()([1, 0], [[0.2, 0.8], [0.3, 0.7]]) == 0.5``
    """

    def __init__(self, name="sparse_categorical_accuracy", dtype=None):
        super().__init__(fn=sparse_categorical_accuracy, name=name, dtype=dtype)

    def get_config(self):
        return {"name": self.name, "dtype": self.dtype}


# -------------------------------------------------------- probabilistic

class BinaryCrossentropy(MeanMetricWrapper):
    """The running mean of the binary crossentropy.

    Args: name (defaults to "binary_crossentropy"), dtype, from_logits (False),
    label_smoothing (0).

    Example: ``BinaryCrossentropy()([[1.]], [[0.5]])`` is 0.6931
    """

    def __init__(self, name="binary_crossentropy", dtype=None, from_logits=False,
                 label_smoothing=0):
        super().__init__(binary_crossentropy, name, dtype=dtype, from_logits=from_logits,
                         label_smoothing=label_smoothing)
        self.from_logits = from_logits
        self.label_smoothing = label_smoothing

    def get_config(self):
        return {"name": self.name, "dtype": self.dtype, "from_logits": self.from_logits,
                "label_smoothing": self.label_smoothing}


class CategoricalCrossentropy(MeanMetricWrapper):
    """The running mean of the categorical crossentropy.

    Args: name (defaults to "categorical_crossentropy"), dtype, from_logits
    (False), label_smoothing (0), axis (-1).

    Example: ``CategoricalCrossentropy()([[0., 1.]], [[0.5, 0.5]])`` is 0.6931
    """

    def __init__(self, name="categorical_crossentropy", dtype=None, from_logits=False,
                 label_smoothing=0, axis=-1):
        super().__init__(categorical_crossentropy, name, dtype=dtype, from_logits=from_logits,
                         label_smoothing=label_smoothing, axis=axis)
        self.from_logits = from_logits
        self.label_smoothing = label_smoothing
        self.axis = axis

    def get_config(self):
        return {"name": self.name, "dtype": self.dtype, "from_logits": self.from_logits,
                "label_smoothing": self.label_smoothing, "axis": self.axis}


class SparseCategoricalCrossentropy(MeanMetricWrapper):
    """The running mean of the sparse categorical crossentropy.

    Args: name (defaults to "sparse_categorical_crossentropy"), dtype,
    from_logits (False), ignore_class (None), axis (-1).

    Example: ``SparseCategoricalCrossentropy()([1], [[0.5, 0.5]])`` is 0.6931
    """

    def __init__(self, name="sparse_categorical_crossentropy", dtype=None, from_logits=False,
                 ignore_class=None, axis=-1):
        super().__init__(sparse_categorical_crossentropy, name=name, dtype=dtype,
                         from_logits=from_logits, ignore_class=ignore_class, axis=axis)
        self.from_logits = from_logits
        self.ignore_class = ignore_class
        self.axis = axis

    def get_config(self):
        return {"name": self.name, "dtype": self.dtype, "from_logits": self.from_logits,
                "ignore_class": self.ignore_class, "axis": self.axis}


# ------------------------------------------------------------ resolution

_CLASSES = (Metric, Mean, Sum, MeanMetricWrapper, MeanSquaredError, RootMeanSquaredError,
            MeanAbsoluteError, MeanAbsolutePercentageError, MeanSquaredLogarithmicError,
            LogCoshError, BinaryCrossentropy, CategoricalCrossentropy,
            SparseCategoricalCrossentropy, Accuracy, BinaryAccuracy, CategoricalAccuracy,
            SparseCategoricalAccuracy)
ALL_OBJECTS_DICT = {c.__name__: c for c in _CLASSES}
ALL_OBJECTS_DICT.update({to_snake_case(c.__name__): c for c in _CLASSES})
ALL_OBJECTS_DICT.update({"bce": BinaryCrossentropy, "BCE": BinaryCrossentropy,
                         "mse": MeanSquaredError, "MSE": MeanSquaredError,
                         "mae": MeanAbsoluteError, "MAE": MeanAbsoluteError,
                         "mape": MeanAbsolutePercentageError,
                         "MAPE": MeanAbsolutePercentageError,
                         "msle": MeanSquaredLogarithmicError,
                         "MSLE": MeanSquaredLogarithmicError})

# Keras 3 metrics rnnkern does not implement (named in the error)
_KERAS_ONLY = ("AUC", "FalseNegatives", "FalsePositives", "Precision", "PrecisionAtRecall",
               "Recall", "RecallAtPrecision", "SensitivityAtSpecificity",
               "SpecificityAtSensitivity", "TrueNegatives", "TruePositives",
               "ConcordanceCorrelation", "PearsonCorrelation", "Hinge", "SquaredHinge",
               "CategoricalHinge", "KLDivergence", "Poisson", "TopKCategoricalAccuracy",
               "SparseTopKCategoricalAccuracy", "F1Score", "FBetaScore", "IoU", "BinaryIoU",
               "MeanIoU", "OneHotIoU", "OneHotMeanIoU", "CosineSimilarity", "R2Score")
_KERAS_ONLY = _KERAS_ONLY + tuple(to_snake_case(n) for n in _KERAS_ONLY)


def _valid_names():
    return sorted({k for k in ALL_OBJECTS_DICT if k not in ("Metric", "metric")}
                  | {"accuracy", "acc"})


def _unknown(identifier):
    if identifier in _KERAS_ONLY:
        return ValueError(f"Keras' metric {identifier!r} is not implemented in rnnkern; the "
                          f"valid names are {_valid_names()}")
    return ValueError(f"Could not interpret metric identifier: {identifier!r}; the valid "
                      f"names are {_valid_names()}")


def serialize(metric):
    """Keras' serialized form: ``{"module": "keras.metrics", "class_name",
    "config", "registered_name"}`` (a function: Keras' function entry).

    Example: ``serialize(MeanAbsoluteError())["class_name"] == "MeanAbsoluteError"``
    """
    if isinstance(metric, Metric):
        builtin = ALL_OBJECTS_DICT.get(type(metric).__name__) is type(metric)
        return {"module": "keras.metrics" if builtin else type(metric).__module__,
                "class_name": type(metric).__name__, "config": metric.get_config(),
                "registered_name": None if builtin else type(metric).__name__}
    return _losses.serialize(metric)


def deserialize(config, custom_objects=None):
    """The metric a serialized dict (Keras' own included) describes.

    Example: ``deserialize({"class_name": "BinaryAccuracy", "config": {"threshold": 0.7}})``
    """
    table = dict(ALL_OBJECTS_DICT)
    table.update(custom_objects or {})
    if isinstance(config, str):
        if config not in table:
            raise _unknown(config)
        return table[config]()
    if not isinstance(config, dict) or "class_name" not in config:
        raise ValueError(f"a metric config must be a dict with 'class_name' and 'config'; got "
                         f"{config!r}")
    name = config["class_name"]
    if name == "function":
        return _losses.deserialize(config)
    if name not in table:
        raise _unknown(name)
    return table[name].from_config(dict(config.get("config") or {}))


def _resolve(identifier):
    """keras.metrics.get: a Metric instance, or a function / loss object."""
    if isinstance(identifier, Metric):
        return identifier
    if isinstance(identifier, dict):
        return deserialize(identifier)
    if isinstance(identifier, str):
        obj = ALL_OBJECTS_DICT.get(identifier)
        if obj is None or obj is Metric:
            raise _unknown(identifier)
        return obj()
    if inspect.isclass(identifier):
        if issubclass(identifier, (Metric, _losses.Loss)):
            return identifier()
        raise ValueError(f"Could not interpret metric identifier: {identifier!r}")
    # a Keras metric instance: rebuilt from its config
    cls = ALL_OBJECTS_DICT.get(type(identifier).__name__)
    if cls is not None and type(identifier).__module__.startswith("keras") and \
            hasattr(identifier, "get_config") and cls is not MeanMetricWrapper:
        return cls.from_config(dict(identifier.get_config()))
    if getattr(identifier, "__module__", "").startswith("keras") and \
            callable(identifier) and not isinstance(identifier, _losses.Loss):
        # a Keras loss / metric function: ours of the same name
        ours = getattr(_losses, getattr(identifier, "__name__", ""), None) or \
            globals().get(getattr(identifier, "__name__", ""))
        if callable(ours):
            return ours
    if isinstance(identifier, _losses.Loss) or callable(identifier):
        return identifier
    raise ValueError(f"Could not interpret metric identifier: {identifier!r}")


def _shape(x, what):
    if x is None:
        raise ValueError(f"resolving 'accuracy' needs {what} (an array or its shape): Keras "
                         "picks binary, sparse categorical or categorical accuracy from the "
                         "shapes of y_true and y_pred")
    return tuple(x.shape) if hasattr(x, "shape") else tuple(x)


def _object_name(obj):
    if hasattr(obj, "name"):
        return obj.name
    if hasattr(obj, "__name__"):
        return to_snake_case(obj.__name__)
    return to_snake_case(type(obj).__name__)


def get(identifier, y_true=None, y_pred=None, loss=None):
    """The ``Metric`` Keras' compile makes of a metric identifier: a name
    (Keras' spellings, plus "accuracy" / "acc" resolved from the shapes of
    ``y_true`` and ``y_pred``: arrays or shapes), a config dict, a Metric
    instance or class, a loss function or loss object (wrapped in a
    MeanMetricWrapper). A string metric is named after the string.
    ``loss`` is accepted for the caller's convenience; Keras 3 ignores it.

    Example: ``get("acc", y_true=np.zeros((8, 1)), y_pred=np.zeros((8, 1)))`` is a
    BinaryAccuracy named "acc"; ``get("mae").name == "mae"``
    """
    if identifier is None:
        raise ValueError("Expected metric, received `None`")
    if str(identifier).lower() in ("accuracy", "acc"):
        yt, yp = _shape(y_true, "y_true"), _shape(y_pred, "y_pred")
        is_binary = yp[-1] == 1 if yp else False
        is_sparse = len(yt) < len(yp) or (bool(yt) and yt[-1] == 1 and yp[-1] > 1)
        if is_binary:
            obj = BinaryAccuracy(name=str(identifier))
        elif is_sparse:
            obj = SparseCategoricalAccuracy(name=str(identifier))
        else:
            obj = CategoricalAccuracy(name=str(identifier))
    else:
        obj = _resolve(identifier)
    name = identifier if isinstance(identifier, str) else _object_name(obj)
    if not isinstance(obj, Metric):
        obj = MeanMetricWrapper(obj)
    obj.name = name
    return obj
