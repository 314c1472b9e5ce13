"""Training, as Keras 3's Trainer (keras/src/trainers/trainer.py and
backend/torch/trainer.py): ``compile``, ``fit``, ``evaluate``, ``predict``,
``train_on_batch``, ``test_on_batch``, ``predict_on_batch``, mixed into
Sequential and Model.

One training step: the model's forward with ``training=True`` (keeping what
the backward needs), the compiled loss and its gradient with respect to the
outputs, ``model.backward``, then the optimizer's update, which returns new
arrays that are handed to the layers without a copy (the layers' weights are
read-only arrays, so the recurrent layers re-pack their kernels once per step,
not per call). Recurrent layers on a GPU backend (``cuda``, ``cuda-emu``) keep
their weights on the device instead: their backward writes the weight gradients
into the optimizer's flat buffer there, the optimizer updates the weights and
its slots there in one launch (``rnnkern._device_math``), and the layers' host
arrays download only when read (``rnnkern.config.set_device_updates(False)``:
the host update, a weight upload a step). The loss and the metrics shown are
running means over the epoch's samples, as Keras'.

Data: NumPy arrays (a list for several inputs / outputs, or a dict by input /
output name), batched here and shuffled each epoch from a generator seeded by
``rnnkern.utils.set_random_seed``; or any Python iterable / generator of
``(x, y)`` or ``(x, y, sample_weight)`` batches.
"""
from __future__ import annotations

import math
import threading
import warnings

import numpy as np

from .. import callbacks as callbacks_module
from .. import config as _config
from .. import losses as losses_module
from .. import metrics as metrics_module
from .. import optimizers as optimizers_module
from .. import saving
from .._device_math import is_device_vec
from ..config import make_rng
from ..layers.base import WeightDict
from ..utils.progbar import resolve_verbose
from ..utils.tree import flatten, pack_as

# guards each model's `_fitting` flag (Model.fit: one fit at a time per model)
_FIT_LOCK = threading.Lock()

__all__ = ["Trainer"]


# ----------------------------------------------------------------- data

def _is_array_like(v):
    return isinstance(v, np.ndarray) or (hasattr(v, "__array__") and not isinstance(v, dict))


def _as_arrays(v, names, what):
    """A model-side structure (array, list, dict by name) as a list aligned
    with ``names`` (None stays None)."""
    if v is None:
        return None
    if isinstance(v, dict):
        missing = [n for n in names if n not in v]
        if missing:
            raise ValueError(f"{what} given as a dict needs the keys {names}; missing {missing}")
        return [np.asarray(v[n]) for n in names]
    if isinstance(v, (list, tuple)):
        if len(names) == 1 and not all(_is_array_like(a) or isinstance(a, (list, tuple))
                                       for a in v):
            return [np.asarray(v)]
        if len(names) == 1 and len(v) != 1:
            return [np.asarray(v)]
        if len(v) != len(names):
            raise ValueError(f"{what}: the model has {len(names)} "
                             f"{'inputs' if what == 'x' else 'outputs'} {names}, got a list "
                             f"of {len(v)} arrays")
        return [np.asarray(a) for a in v]
    return [np.asarray(v)]


def _n_samples(arrays, what):
    ns = {a.shape[0] if a.ndim else None for a in arrays}
    if None in ns or len(ns) != 1:
        raise ValueError(f"{what}: every array needs the same number of samples along its first "
                         f"axis, got shapes {[a.shape for a in arrays]}")
    return ns.pop()


def _unpack_batch(batch):
    """(x, y, sample_weight) of one element of an iterable of batches."""
    if isinstance(batch, tuple) and 1 <= len(batch) <= 3:
        x = batch[0]
        y = batch[1] if len(batch) > 1 else None
        sw = batch[2] if len(batch) > 2 else None
        return x, y, sw
    if isinstance(batch, list) and len(batch) in (2, 3):
        return tuple(batch) + (None,) * (3 - len(batch))
    return batch, None, None


def _to_numpy(v):
    """Arrays (and lists / dicts of them, torch tensors) as NumPy arrays; an
    iterable of batches is left as it is."""
    if v is None:
        return None
    if isinstance(v, dict):
        return {k: _to_numpy(a) for k, a in v.items()}
    if isinstance(v, (list, tuple)):
        return [_to_numpy(a) for a in v]
    if hasattr(v, "detach") and hasattr(v, "cpu"):  # a torch tensor
        v = v.detach().cpu()
    if isinstance(v, np.ndarray) or hasattr(v, "__array__") or np.isscalar(v):
        return np.asarray(v)
    return v


class _Data:
    """The batches of one fit / evaluate / predict: arrays sliced here, or an
    iterable of batches passed through."""

    def __init__(self, x, y=None, sample_weight=None, batch_size=None, steps=None,
                 shuffle=False, model=None, class_weight=None):
        self.steps = steps
        self.shuffle = shuffle
        self.iterable = not (_is_array_like(x) or isinstance(x, (list, tuple, dict)))
        if self.iterable:
            if y is not None or sample_weight is not None:
                raise ValueError("when x is an iterable or generator of batches, y and "
                                 "sample_weight must come in its batches, not as arguments")
            if batch_size is not None:
                raise ValueError("batch_size cannot be given with an iterable or generator "
                                 "of batches (it yields batches already)")
            if not hasattr(x, "__iter__"):
                raise TypeError(f"x must be arrays (a list / dict of them) or an iterable of "
                                f"batches, got {type(x).__name__}")
            self.source = x
            self._iter = None
            self.num_batches = steps
            return
        if batch_size is None:
            batch_size = 32
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) \
                or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        self.batch_size = int(batch_size)
        self.x = model._inputs_as_list(x)
        self.y = None if y is None else model._targets_as_list(y)
        self.n = _n_samples(self.x + (self.y or []), "x and y")
        self.sw = None if sample_weight is None else np.asarray(sample_weight, np.float32)
        if self.sw is not None and self.sw.shape[:1] != (self.n,):
            raise ValueError(f"sample_weight must have one entry per sample ({self.n}), got shape "
                             f"{self.sw.shape}")
        if class_weight is not None:
            if self.y is None or len(self.y) != 1:
                raise ValueError("class_weight needs a model with one output and y")
            self.sw = _class_weights(self.y[0], class_weight, self.sw)
        full = math.ceil(self.n / self.batch_size)
        self.num_batches = full if steps is None else int(steps)
        self._rng = make_rng() if shuffle else None

    def epoch(self):
        """The batches of one epoch: (x, y, sample_weight) lists / arrays."""
        if self.iterable:
            yield from self._iterable_epoch()
            return
        order = None
        if self.shuffle == "batch":
            starts = self._rng.permutation(math.ceil(self.n / self.batch_size))
            order = np.concatenate([np.arange(s * self.batch_size,
                                              min((s + 1) * self.batch_size, self.n))
                                    for s in starts]) if self.n else np.arange(0)
        elif self.shuffle:
            order = self._rng.permutation(self.n)
        nb = self.num_batches
        full = math.ceil(self.n / self.batch_size)
        for b in range(min(nb, full) if self.steps is None else nb):
            i = (b % max(full, 1)) * self.batch_size
            sl = slice(i, min(i + self.batch_size, self.n))
            if order is None:
                xs = [a[sl] for a in self.x]
                ys = None if self.y is None else [a[sl] for a in self.y]
                sw = None if self.sw is None else self.sw[sl]
            else:
                idx = order[sl]
                xs = [a[idx] for a in self.x]
                ys = None if self.y is None else [a[idx] for a in self.y]
                sw = None if self.sw is None else self.sw[idx]
            yield xs, ys, sw

    def _iterable_epoch(self):
        if self.steps is None:
            it = iter(self.source)
            count = 0
            for batch in it:
                count += 1
                yield batch
            self.num_batches = count
            self.exhausted = count == 0
            return
        if self._iter is None:
            self._iter = iter(self.source)
        for _ in range(self.steps):
            try:
                batch = next(self._iter)
            except StopIteration:
                self.exhausted = True
                return
            yield batch

    exhausted = False


def _class_weights(y, class_weight, sw):
    y = np.asarray(y)
    labels = np.argmax(y, axis=-1) if y.ndim > 1 and y.shape[-1] > 1 else y.reshape(len(y), -1)[:, 0]
    w = np.array([class_weight.get(int(v), 1.0) for v in labels], np.float32)
    return w if sw is None else sw * w


# ----------------------------------------------------- compiled loss and metrics

class _RunningMean:
    """Keras' Mean metric over batch values, weighted by batch size."""

    def __init__(self, name):
        self.name = name
        self.total = 0.0
        self.count = 0.0

    def update_state(self, value, weight):
        self.total += float(value) * weight
        self.count += weight

    def result(self):
        return self.total / self.count if self.count else 0.0

    def reset_state(self):
        self.total = self.count = 0.0


def _per_output(spec, names, what):
    """``spec`` (one entry for all outputs, a list per output, or a dict by
    output name) as a list aligned with ``names``."""
    if isinstance(spec, dict):
        unknown = [k for k in spec if k not in names]
        if unknown:
            raise ValueError(f"{what} names unknown outputs {unknown}; the model's outputs are "
                             f"{names}")
        return [spec.get(n) for n in names]
    if isinstance(spec, (list, tuple)) and len(names) > 1:
        if len(spec) != len(names):
            raise ValueError(f"{what} given as a list must have one entry per output "
                             f"({len(names)}: {names}), got {len(spec)}")
        return list(spec)
    return [spec] * len(names)


class _Compiled:
    """The compiled losses and metrics, built on the first batch (the
    "accuracy" and "crossentropy" shortcuts depend on the shapes)."""

    def __init__(self, loss, loss_weights, metrics, weighted_metrics):
        self.loss_spec, self.loss_weights_spec = loss, loss_weights
        self.metrics_spec, self.weighted_spec = metrics, weighted_metrics
        self.built = False
        self.loss_tracker = _RunningMean("loss")

    def build(self, names, y_true, y_pred):
        self.names = names
        specs = _per_output(self.loss_spec, names, "loss")
        self.losses = []
        for s, yt, yp in zip(specs, y_true, y_pred):
            if s is None:
                self.losses.append(None)
            elif isinstance(s, str) and s.lower() in ("crossentropy", "ce"):
                binary = yp.shape[-1] == 1
                sparse = yt.ndim < yp.ndim or (yt.shape[-1] == 1 and yp.shape[-1] > 1)
                self.losses.append(losses_module.get(
                    "binary_crossentropy" if binary else
                    "sparse_categorical_crossentropy" if sparse else "categorical_crossentropy"))
            else:
                self.losses.append(losses_module.get(s))
        w = self.loss_weights_spec
        self.weights = [1.0] * len(names) if w is None else \
            [1.0 if v is None else float(v) for v in _per_output(w, names, "loss_weights")]
        self.output_losses = [_RunningMean(f"{n}_loss") for n in names] if len(names) > 1 else []
        self.metrics, self.weighted = [], []
        for spec, into in ((self.metrics_spec, self.metrics),
                           (self.weighted_spec, self.weighted)):
            if spec is None:
                continue
            if len(names) > 1 and isinstance(spec, (list, tuple)) and not all(
                    isinstance(s, (list, tuple)) or s is None for s in spec):
                raise ValueError("with several outputs, metrics must be a dict by output name "
                                 "or a list with one list of metrics per output "
                                 f"(outputs: {names}); got {spec!r}")
            per = _per_output(spec, names, "metrics") if len(names) > 1 else [spec]
            for i, (s, yt, yp) in enumerate(zip(per, y_true, y_pred)):
                for m in ([] if s is None else s if isinstance(s, (list, tuple)) else [s]):
                    obj = metrics_module.get(m, y_true=yt, y_pred=yp, loss=self.losses[i])
                    label = f"{names[i]}_{obj.name}" if len(names) > 1 else obj.name
                    into.append((i, obj, label))
        self.built = True

    def loss(self, y_true, y_pred, sw, masks, with_gradient):
        """(total loss, d_outputs list or None); masked output steps excluded."""
        total, grads = 0.0, []
        n = y_pred[0].shape[0] if y_pred[0].ndim else 1
        for i, (fn, w, yt, yp, m) in enumerate(zip(self.losses, self.weights, y_true, y_pred,
                                                  masks)):
            if fn is None:
                grads.append(None)
                continue
            if yt is None:
                raise ValueError(f"output {self.names[i]!r} has a loss but no target was given")
            if with_gradient:
                v, g = fn.value_and_gradient(yt, yp, sample_weight=sw, mask=m)
                grads.append(g * w if w != 1.0 else g)
            else:
                v = fn(yt, yp, sample_weight=sw, mask=m)
            if self.output_losses:
                self.output_losses[i].update_state(v, n)
            total += w * float(v)
        self.loss_tracker.update_state(total, n)
        return total, grads

    def update_metrics(self, y_true, y_pred, sw, masks):
        for group, weighted in ((self.metrics, False), (self.weighted, True)):
            for i, m, _ in group:
                w = sw if weighted else None
                if masks[i] is not None:  # Keras: the output's mask weights the metric
                    mk = masks[i].astype(np.float32)
                    w = mk if w is None else np.reshape(w, w.shape + (1,) * (mk.ndim - w.ndim)) * mk
                m.update_state(y_true[i], y_pred[i], sample_weight=w)

    def all_metrics(self):
        """(name, object) of every value logged, in Keras' order: the loss, the
        compiled metrics, the per-output losses."""
        out = [("loss", self.loss_tracker)]
        if self.built:
            out += [(label, m) for _, m, label in self.metrics + self.weighted]
            out += [(m.name, m) for m in self.output_losses]
        return out

    def metric_objects(self):
        """Keras' ``model.metrics``: the loss tracker, one "compile_metrics"
        container when metrics were compiled, the per-output loss trackers."""
        out = [self.loss_tracker]
        if self.metrics_spec is not None or self.weighted_spec is not None:
            out.append(_CompileMetrics(self))
        if self.built:
            out += self.output_losses
        return out

    def results(self):
        return {name: float(m.result()) for name, m in self.all_metrics()}

    def reset(self):
        for _, m in self.all_metrics():
            m.reset_state()


class _CompileMetrics:
    """The "compile_metrics" entry of ``model.metrics`` (Keras' container)."""

    name = "compile_metrics"

    def __init__(self, compiled):
        self._c = compiled

    @property
    def metrics(self):
        c = self._c
        return [m for _, m, _ in c.metrics + c.weighted] if c.built else []

    def result(self):
        c = self._c
        return {label: float(m.result()) for _, m, label in c.metrics + c.weighted}

    def reset_state(self):
        for m in self.metrics:
            m.reset_state()


# --------------------------------------------------------------- trainer

class Trainer:
    """compile / fit / evaluate / predict for Sequential and Model."""

    compiled = False
    optimizer = None
    loss = None
    stop_training = False
    history = None
    _compiled = None
    _compile_config = None

    # ---------------------------------------------------------- compile
    def compile(self, optimizer="rmsprop", loss=None, loss_weights=None, metrics=None,
                weighted_metrics=None, run_eagerly=False, steps_per_execution=1,
                jit_compile="auto", auto_scale_loss=True):
        """Configure training, as Keras: ``optimizer`` (a name or an
        rnnkern.optimizers object), ``loss`` (a name, function or object; per
        output as a list or dict), ``metrics`` (names or objects)."""
        self.optimizer = optimizers_module.get(optimizer)
        self.loss = loss
        self._compiled = _Compiled(loss, loss_weights, metrics, weighted_metrics)
        self._compile_config = dict(optimizer=optimizer, loss=loss, loss_weights=loss_weights,
                                    metrics=metrics, weighted_metrics=weighted_metrics,
                                    run_eagerly=run_eagerly,
                                    steps_per_execution=steps_per_execution,
                                    jit_compile=jit_compile)
        self.compiled = True
        # Keras: a change of `trainable` takes effect at the next compile()
        self._slot_cache = None
        self.stop_training = False

    def _assert_compiled(self, what):
        if not self.compiled:
            raise ValueError(f"You must call `compile()` before using the model in {what}.")

    @property
    def metrics(self):
        return [] if self._compiled is None else self._compiled.metric_objects()

    @property
    def metrics_names(self):
        return [m.name for m in self.metrics]

    def _compiled_metric_objects(self):
        if self._compiled is None or not self._compiled.built:
            return []
        return [m for _, m, _ in self._compiled.metrics + self._compiled.weighted]

    def reset_metrics(self):
        if self._compiled is not None:
            self._compiled.reset()

    def get_metrics_result(self):
        return {} if self._compiled is None else self._compiled.results()

    def reset_states(self):
        """Forget the states of every stateful layer (Keras 2's model.reset_states)."""
        def visit(layer):
            if getattr(layer, "stateful", False) and hasattr(layer, "reset_states"):
                layer.reset_states()
            for sub in layer._sublayers():
                visit(sub)
        for layer in self._sublayers():
            visit(layer)

    reset_state = reset_states

    # ----------------------------------------------------- data plumbing
    def _input_names(self):
        return [t._keras_history.operation.name for t in self._graph()._inputs]

    def _output_names(self):
        return [t._keras_history.operation.name for t in self._graph()._outputs]

    def _inputs_as_list(self, x):
        if self._graph_or_none() is None:  # an unbuilt Sequential: one input
            return _as_arrays(x, ["input"], "x")
        return _as_arrays(x, self._input_names(), "x")

    def _targets_as_list(self, y):
        if self._graph_or_none() is None:
            return _as_arrays(y, ["output"], "y")
        return _as_arrays(y, self._output_names(), "y")

    def _model_input(self, xs):
        return xs if len(xs) > 1 else xs[0]

    # ------------------------------------------------------------ steps
    def _forward(self, xs, training):
        """The model's forward as its shell runs it (this thread keeps the
        ctx for backward), and the outputs' masks: (out, outputs list, masks)."""
        graph = self._graph()
        self._tls.last = None
        inputs = graph._standardize(self._model_input(xs))
        out, ctx, masks = graph._forward_with_masks(inputs, training)
        self._tls.last = ctx if training is not False else None
        return out, (out if isinstance(out, list) else [out]), masks

    def _ensure_built_loss(self, ys, preds):
        c = self._compiled
        if not c.built:
            c.build(self._output_names(), ys, preds)

    def _check_stateful_batch(self, xs):
        """A stateful model keeps states for the batch size its Input fixes:
        every batch must have it (Keras: the state variables' size)."""
        graph = self._graph()
        cached = getattr(graph, "_stateful_batch", None)
        if cached is None:
            def stateful(layer):
                return getattr(layer, "stateful", False) or any(
                    stateful(sub) for sub in layer._sublayers())
            sizes = [t.shape[0] for t in graph._inputs]
            has = any(stateful(l) for l in graph.layers)
            cached = (sizes[0] if has and sizes and sizes[0] is not None else 0)
            graph._stateful_batch = cached
        if cached and xs and xs[0].shape[0] != cached:
            raise ValueError(
                f"model {self.name!r} has stateful layers and its Input fixes the batch size "
                f"to {cached} (batch_shape), so every batch must hold {cached} samples; got "
                f"a batch of {xs[0].shape[0]}. Give fit / evaluate / predict batch_size="
                f"{cached} and a number of samples divisible by it.")

    def _train_step(self, xs, ys, sw):
        self._check_stateful_batch(xs)
        on_device = self._device_layers()
        targets = self._grad_targets() if on_device else {}
        for layer in on_device:
            layer._device_training = True
            layer._grad_out = targets.get(id(layer))
        try:
            out, preds, masks = self._forward(xs, True)
            ys = self._check_targets(ys, preds)
            self._ensure_built_loss(ys, preds)
            _, d = self._compiled.loss(ys, preds, sw, masks, True)
            scale = getattr(self.optimizer, "loss_scale_factor", None)
            if scale:  # the optimizer divides the gradients by it (Keras' loss scaling)
                d = [None if g is None else g * scale for g in d]
            self.backward(pack_as(out, d) if isinstance(out, list) else d[0])
            self._apply_gradients()
        finally:
            for layer in on_device:
                layer._device_training = False
                layer._grad_out = None
        self._compiled.update_metrics(ys, preds, sw, masks)
        return self._compiled.results()

    def _test_step(self, xs, ys, sw):
        self._check_stateful_batch(xs)
        out, preds, masks = self._forward(xs, False)
        ys = self._check_targets(ys, preds)
        self._ensure_built_loss(ys, preds)
        self._compiled.loss(ys, preds, sw, masks, False)
        self._compiled.update_metrics(ys, preds, sw, masks)
        return self._compiled.results()

    def _check_targets(self, ys, preds):
        if ys is None:
            raise ValueError("the model is compiled with a loss, so fit / evaluate need targets "
                             "y (or batches of (x, y))")
        ys = [None if y is None else np.asarray(y) for y in ys]
        if len(ys) != len(preds):
            raise ValueError(f"y has {len(ys)} arrays, the model has {len(preds)} outputs")
        for i, (y, p) in enumerate(zip(ys, preds)):
            if y is not None and y.shape[:1] != p.shape[:1]:
                raise ValueError(f"y{'' if len(ys) == 1 else f'[{i}]'} has {y.shape[0]} samples, "
                                 f"the output {p.shape[0]} (y shape {y.shape}, output shape "
                                 f"{p.shape})")
        return ys

    def _trainable_slots(self):
        """(layer, weight name) of every trainable weight, aligned with
        ``trainable_weights``; cached while the structure is unchanged."""
        key = tuple(id(l) for l in self._sublayers())
        cached = getattr(self, "_slot_cache", None)
        if cached is None or cached[0] != key:
            slots = self._slots(trainable_only=True)
            all_slots = self._slots(trainable_only=False)
            index = {(id(l), n): i for i, (l, n) in enumerate(all_slots)}
            # the recurrent layers whose weights a GPU backend could keep (_device_layers)
            rnns = []
            for layer, _n in slots:
                if hasattr(layer, "_device_weights") and isinstance(layer._params, WeightDict) \
                        and all(layer is not r for r in rnns):
                    rnns.append(layer)
            cached = (key, slots, [index[(id(l), n)] for l, n in slots], rnns)
            self._slot_cache = cached
        return cached[1], cached[2]

    def _device_layers(self):
        """The recurrent layers on a GPU backend whose weights this model trains
        (each once): fit keeps their weights, gradients and optimizer slots on the
        device (rnnkern.config.set_device_updates), the layers' own calls and
        backward steps being the ones that compute them."""
        if not _config.device_updates():
            return []
        self._trainable_slots()          # (re)makes the cache below with the structure
        cands = self._slot_cache[3]
        return [l for l in cands if l._backend.name in ("cuda", "cuda-emu")] if cands else []

    def _grad_targets(self):
        """id(layer) -> {"dW", "dU", "db"} -> its views of the optimizer's flat
        gradient buffer of the weights on the device (the last step's group), for
        the backward to write into: the update then copies no gradient."""
        D = getattr(self.optimizer, "_dgroup", None)
        if D is None:
            return {}
        slots, _ = self._trainable_slots()
        if max(D.idx) >= len(slots):
            return {}
        names = {"kernel": "dW", "recurrent_kernel": "dU", "bias": "db"}
        out = {}
        for j, v in zip(D.idx, D.views(D.grad)):
            layer, n = slots[j]
            if n in names and v.shape == layer._params.raw(n).shape:
                out.setdefault(id(layer), {})[names[n]] = v
        return out

    def _apply_gradients(self):
        slots, idx = self._trainable_slots()
        if not slots:
            return
        grads = getattr(self._tls, "grads", None)   # device gradients stay there
        if not self.optimizer.built:
            self.optimizer.build([l._params[n] for l, n in slots])
        if not any(r._device_training for r in self._slot_cache[3]):
            self._assign(slots, self.optimizer.apply([grads[i] for i in idx],
                                                     [l._params[n] for l, n in slots]))
            return
        device = {}
        weights = []
        for layer, n in slots:
            if id(layer) not in device:
                dw = layer._device_weights() \
                    if getattr(layer, "_device_training", False) else None
                device[id(layer)] = dw
            dw = device[id(layer)]
            weights.append(dw[n] if dw is not None and n in dw else layer._params[n])
        self._assign(slots, self.optimizer.apply([grads[i] for i in idx], weights))

    @staticmethod
    def _assign(slots, arrays):
        """Hand new weight arrays to their layers, without a copy (device arrays
        to the layers that keep their weights on the device)."""
        per_layer = {}
        for (layer, name), w in zip(slots, arrays):
            per_layer.setdefault(id(layer), (layer, {}, {}))[2 if is_device_vec(w) else 1][
                name] = w
        for layer, named, on_device in per_layer.values():
            if named:
                layer._adopt_weights(named)
            if on_device:
                layer._adopt_device_weights(on_device)

    # ------------------------------------------------------------- fit
    def fit(self, x=None, y=None, batch_size=None, epochs=1, verbose="auto", callbacks=None,
            validation_split=0.0, validation_data=None, shuffle=True, class_weight=None,
            sample_weight=None, initial_epoch=0, steps_per_epoch=None, validation_steps=None,
            validation_batch_size=None, validation_freq=1):
        """Train for ``epochs`` epochs (Keras' fit); returns the History. One fit at a
        time per model: a second, from another thread while one runs, is a
        RuntimeError rather than two trainings interleaving their updates silently."""
        kwargs = dict(locals())
        del kwargs["self"]
        with _FIT_LOCK:
            if getattr(self, "_fitting", False):
                raise RuntimeError(f"fit: model {self.name!r} is already being fitted (in "
                                   "another thread): one fit at a time per model; train a "
                                   "copy (e.g. a model built from get_config with "
                                   "set_weights) to train two at once")
            self._fitting = True
        try:
            return self._fit(**kwargs)
        finally:
            self._fitting = False

    def _fit(self, x=None, y=None, batch_size=None, epochs=1, verbose="auto", callbacks=None,
             validation_split=0.0, validation_data=None, shuffle=True, class_weight=None,
             sample_weight=None, initial_epoch=0, steps_per_epoch=None, validation_steps=None,
             validation_batch_size=None, validation_freq=1):
        self._assert_compiled("fit")
        verbose = resolve_verbose(verbose)
        x, y, sample_weight = _to_numpy(x), _to_numpy(y), _to_numpy(sample_weight)
        if validation_split and validation_data is None:
            x, y, sample_weight, validation_data = self._split(x, y, sample_weight,
                                                               validation_split)
        self._build_from_data(x)
        data = _Data(x, y, sample_weight, batch_size, steps_per_epoch, shuffle, self,
                     class_weight)
        val = None
        if validation_data is not None:
            if isinstance(validation_data, tuple) and len(validation_data) in (2, 3):
                vx, vy, vsw = (tuple(validation_data) + (None,))[:3]
                val = (_to_numpy(vx), _to_numpy(vy), _to_numpy(vsw))
            else:
                val = (validation_data, None, None)
        cbs = callbacks if isinstance(callbacks, callbacks_module.CallbackList) else \
            callbacks_module.CallbackList(callbacks, add_history=True, add_progbar=verbose != 0,
                                          model=self, verbose=verbose, epochs=epochs,
                                          steps=data.num_batches)
        self.stop_training = False
        cbs.on_train_begin()
        training_logs = {}
        logs = {}
        for epoch in range(initial_epoch, epochs):
            self.reset_metrics()
            cbs.on_epoch_begin(epoch)
            step = -1
            for step, batch in enumerate(data.epoch()):
                cbs.on_train_batch_begin(step)
                xs, ys, sw = self._split_batch(batch, data.iterable)
                logs = self._train_step(xs, ys, sw)
                cbs.on_train_batch_end(step, logs)
                if self.stop_training:
                    break
            if data.iterable and data.exhausted and step < 0:
                warnings.warn("Your input ran out of data; interrupting training. Make sure "
                              "that your dataset or generator can generate at least "
                              "`steps_per_epoch * epochs` batches.", stacklevel=2)
                break
            epoch_logs = dict(self.get_metrics_result())
            if val is not None and self._should_eval(epoch, validation_freq):
                val_logs = self.evaluate(val[0], val[1], sample_weight=val[2],
                                         batch_size=validation_batch_size or batch_size,
                                         steps=validation_steps, callbacks=cbs,
                                         return_dict=True, verbose=0)
                epoch_logs.update({f"val_{k}": v for k, v in val_logs.items()})
            cbs.on_epoch_end(epoch, epoch_logs)
            training_logs = epoch_logs
            if self.stop_training:
                break
            if data.iterable and data.exhausted:
                warnings.warn("Your input ran out of data; interrupting training. Make sure "
                              "that your dataset or generator can generate at least "
                              "`steps_per_epoch * epochs` batches.", stacklevel=2)
                break
        final = getattr(self.optimizer, "finalize_variable_values", None)
        # (only with an average to assign: reading the weights would download
        # those kept on a device)
        if final is not None and epochs > 0 and getattr(self.optimizer, "use_ema", True):
            slots, _ = self._trainable_slots()
            new = final([l._params[n] for l, n in slots])
            if new is not None:  # use_ema: the moving averages become the weights
                self._assign(slots, new)
        cbs.on_train_end(logs=training_logs)
        return self.history

    @staticmethod
    def _should_eval(epoch, freq):
        if isinstance(freq, int):
            return (epoch + 1) % freq == 0
        if isinstance(freq, (list, tuple)):
            return (epoch + 1) in freq
        raise ValueError(f"Expected `validation_freq` to be a list or int. Received: "
                         f"validation_freq={freq} of the type {type(freq)}.")

    def _split(self, x, y, sw, split):
        if not 0 < split < 1:
            raise ValueError(f"validation_split must be in (0, 1), got {split}")
        if not (_is_array_like(x) or isinstance(x, (list, tuple, dict))):
            raise ValueError("Argument `validation_split` is only supported for tensors or "
                             f"NumPy arrays. Found incompatible type in the input: {type(x)}")

        def cut(v, a, b):
            if v is None:
                return None
            if isinstance(v, dict):
                return {k: np.asarray(a_)[a:b] for k, a_ in v.items()}
            if isinstance(v, (list, tuple)) and not _is_array_like(v):
                return [np.asarray(a_)[a:b] for a_ in v]
            return np.asarray(v)[a:b]
        n = _n_samples([np.asarray(a) for a in flatten(x if not isinstance(x, dict)
                                                         else list(x.values()))], "x")
        at = int(math.floor(n * (1.0 - split)))
        return (cut(x, 0, at), cut(y, 0, at), cut(sw, 0, at),
                (cut(x, at, n), cut(y, at, n), cut(sw, at, n)))

    def _split_batch(self, batch, iterable):
        if not iterable:
            return batch
        x, y, sw = _unpack_batch(batch)
        x, y, sw = _to_numpy(x), _to_numpy(y), _to_numpy(sw)
        self._build_from_data(x)
        return (self._inputs_as_list(x), None if y is None else self._targets_as_list(y),
                None if sw is None else np.asarray(sw, np.float32))

    def _build_from_data(self, x):
        """An unbuilt Sequential builds from the first inputs (as Keras)."""
        if self._graph_or_none() is not None or x is None:
            return
        if _is_array_like(x) or isinstance(x, (list, tuple)):
            first = np.asarray(x[0] if isinstance(x, (list, tuple)) and len(x) == 1 else x)
            self.build(first.shape)

    # --------------------------------------------------------- evaluate
    def evaluate(self, x=None, y=None, batch_size=None, verbose="auto", sample_weight=None,
                 steps=None, callbacks=None, return_dict=False, **kwargs):
        """The loss (and metrics) over ``x``: a float, ``[loss, *metrics]``, or
        a dict with ``return_dict``."""
        self._assert_compiled("evaluate")
        if kwargs:
            raise ValueError(f"Arguments not recognized: {kwargs}")
        verbose = resolve_verbose(verbose)
        x, y, sample_weight = _to_numpy(x), _to_numpy(y), _to_numpy(sample_weight)
        self._build_from_data(x)
        data = _Data(x, y, sample_weight, batch_size, steps, False, self)
        cbs = callbacks if isinstance(callbacks, callbacks_module.CallbackList) else \
            callbacks_module.CallbackList(callbacks, add_progbar=verbose != 0, model=self,
                                          verbose=verbose, epochs=1, steps=data.num_batches)
        cbs.on_test_begin()
        self.reset_metrics()
        logs = {}
        for step, batch in enumerate(data.epoch()):
            cbs.on_test_batch_begin(step)
            xs, ys, sw = self._split_batch(batch, data.iterable)
            logs = self._test_step(xs, ys, sw)
            cbs.on_test_batch_end(step, logs)
        logs = self.get_metrics_result()
        cbs.on_test_end(logs)
        if return_dict:
            return logs
        return self._flatten_logs(logs)

    def _flatten_logs(self, logs):
        """``[loss, *metrics]`` in Keras' order (a float when that is one value)."""
        names = [n for n, _ in self._compiled.all_metrics()]
        out = [logs[n] for n in names if n in logs]
        out += [logs[k] for k in sorted(logs) if k not in names]
        return out[0] if len(out) == 1 else out

    # ---------------------------------------------------------- predict
    def predict(self, x, batch_size=None, verbose="auto", steps=None, callbacks=None):
        """Outputs for ``x`` computed in batches (inference, Keras' predict)."""
        verbose = resolve_verbose(verbose)
        x = _to_numpy(x)
        self._build_from_data(x)
        data = _Data(x, None, None, batch_size, steps, False, self)
        cbs = callbacks if isinstance(callbacks, callbacks_module.CallbackList) else \
            callbacks_module.CallbackList(callbacks, add_progbar=verbose != 0, model=self,
                                          verbose=verbose, epochs=1, steps=data.num_batches)
        cbs.on_predict_begin()
        chunks, struct = [], None
        for step, batch in enumerate(data.epoch()):
            cbs.on_predict_batch_begin(step)
            if data.iterable:
                bx, _, _ = _unpack_batch(batch)
                bx = _to_numpy(bx)
                self._build_from_data(bx)
                xs = self._inputs_as_list(bx)
            else:
                xs = batch[0]
            self._check_stateful_batch(xs)
            out, preds, _ = self._forward(xs, False)
            struct = out
            chunks.append(preds)
            cbs.on_predict_batch_end(step, {"outputs": out})
        cbs.on_predict_end()
        if not chunks:
            raise ValueError("predict got no data (an empty input or iterable)")
        outs = [np.concatenate([c[j] for c in chunks], axis=0) for j in range(len(chunks[0]))]
        return pack_as(struct, outs) if isinstance(struct, list) else outs[0]

    # ---------------------------------------------------- one batch each
    def _one_batch(self, what, x, y, sample_weight):
        self._assert_compiled(what)
        x, y = _to_numpy(x), _to_numpy(y)
        self._build_from_data(x)
        xs, ys = self._inputs_as_list(x), None if y is None else self._targets_as_list(y)
        sw = None if sample_weight is None else np.asarray(sample_weight, np.float32)
        self.reset_metrics()  # as Keras: the logs of this batch alone
        return xs, ys, sw

    def train_on_batch(self, x, y=None, sample_weight=None, class_weight=None,
                       return_dict=False):
        """One gradient update on one batch; its loss (and metrics)."""
        xs, ys, sw = self._one_batch("train_on_batch", x, y, sample_weight)
        if class_weight is not None:
            if sample_weight is not None:
                raise ValueError("Arguments `sample_weight` and `class_weight` cannot be "
                                 "specified at the same time.")
            sw = _class_weights(ys[0], class_weight, sw)
        logs = self._train_step(xs, ys, sw)
        return logs if return_dict else self._flatten_logs(logs)

    def test_on_batch(self, x, y=None, sample_weight=None, return_dict=False):
        """The loss (and metrics) of one batch, without an update."""
        logs = self._test_step(*self._one_batch("test_on_batch", x, y, sample_weight))
        return logs if return_dict else self._flatten_logs(logs)

    def predict_on_batch(self, x):
        x = _to_numpy(x)
        self._build_from_data(x)
        return self._forward(self._inputs_as_list(x), False)[0]

    # ------------------------------------------------------------ files
    def save(self, filepath, overwrite=True, zipped=None, **kwargs):
        """Save the whole model: ``.keras`` (Keras 3's file, readable by Keras),
        ``.h5`` / ``.hdf5`` (Keras' legacy HDF5 file), ``.rnnkern`` (NumPy only) —
        architecture, weights, compile configuration and optimizer state (see
        rnnkern.saving); ``include_optimizer=False``: without the last two."""
        include_optimizer = kwargs.pop("include_optimizer", True)
        if kwargs:
            raise ValueError(f"The following argument(s) are not supported: {list(kwargs)}")
        saving.save_model(self, filepath, overwrite=overwrite,
                          include_optimizer=include_optimizer)

    def get_compile_config(self):
        return saving.compile_config(self) if self.compiled else {}

    def compile_from_config(self, config):
        saving.compile_from_config(self, config)
