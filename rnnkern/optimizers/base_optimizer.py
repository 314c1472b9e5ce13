"""The optimizer base class, as Keras 3's BaseOptimizer
(keras/src/optimizers/base_optimizer.py) with the torch backend's update
formulas (keras/src/backend/torch/optimizers/), on NumPy arrays.

Weights are NOT variables here: ``apply`` reads the current weights and
returns new arrays (the caller assigns them to the layers, whose weights are
read-only). The optimizer owns its slots (momenta, velocities, ...) and
updates those in place.

Interface (what rnnkern's training loop calls):

    opt.build(weights)            # weights: list of float arrays; creates the slots
    new = opt.apply(grads, weights)   # list of new C-contiguous arrays; iterations += 1
    opt.learning_rate             # float (a schedule evaluated at the iteration count);
    opt.learning_rate = 0.01      #   settable, TypeError when built with a schedule
    opt.iterations                # int
    opt.variables                 # Keras' optimizer.variables: iteration, learning_rate
                                  #   (when a float), then the slots, in Keras' order
    opt.get_state() / opt.set_state(arrays)   # the same list, copied / restored
    opt.get_config() / Optimizer.from_config(config)
    opt.scale_loss(loss)          # loss * loss_scale_factor (the training loop scales
                                  #   the loss gradient by it; apply unscales)
    opt.finalize_variable_values(weights)  # with use_ema: the averages (new arrays), else None

Order of one ``apply`` (Keras'): drop None gradients (warning), unscale by
``loss_scale_factor``, accumulate (``gradient_accumulation_steps``), clip
(``clipnorm`` per weight, ``global_clipnorm`` over all, or ``clipvalue``),
weight decay ``w *= 1 - weight_decay * lr``, the optimizer's step, the EMA of
the weights (``use_ema``), then ``iterations += 1``.
"""
from __future__ import annotations

import re
import warnings

import numpy as np

from ..utils.naming import auto_name
from . import schedules as _schedules

__all__ = ["Optimizer"]


class Optimizer:
    """Base class of the optimizers (Keras' ``keras.optimizers.Optimizer``).

    Args (every optimizer takes them, after its own):
        learning_rate: float, a ``schedules.LearningRateSchedule``, or a
            callable with no arguments returning the learning rate.
        weight_decay: float or None; decoupled decay ``w -= w * weight_decay * lr``
            before each update.
        clipnorm: float; clip each gradient to this L2 norm.
        clipvalue: float; clip each gradient element to [-clipvalue, clipvalue].
        global_clipnorm: float; clip all gradients together to this global norm.
            At most one of the three clippings.
        use_ema: bool; keep an exponential moving average of the weights.
        ema_momentum: float in [0, 1], the average's momentum.
        ema_overwrite_frequency: int or None; every that many iterations the
            weights are replaced by their average.
        loss_scale_factor: float or None; gradients are divided by it (the
            loss was multiplied by it, see ``scale_loss``).
        gradient_accumulation_steps: int >= 2 or None; update every that many
            calls with the mean of the accumulated gradients.
        name: str; defaults to the snake-case class name, made unique.

    Subclasses create their slots in ``build`` (with ``_add_slots``) and
    implement ``_scalars(lr, t)`` (the update's constants) and ``_kernel``,
    which updates the new weights (already decayed) in place; it runs once
    over all weights at once (flat slots) or once per weight.
    """

    def __init__(self, learning_rate, weight_decay=None, clipnorm=None, clipvalue=None,
                 global_clipnorm=None, use_ema=False, ema_momentum=0.99,
                 ema_overwrite_frequency=None, loss_scale_factor=None,
                 gradient_accumulation_steps=None, name=None, **kwargs):
        if kwargs.pop("decay", None) is not None:
            warnings.warn("Argument `decay` is no longer supported and will be ignored.",
                          stacklevel=3)
        if kwargs:
            raise ValueError(f"Argument(s) not recognized: {kwargs}")
        self.name = name if name is not None else auto_name(type(self).__name__)
        self.weight_decay = weight_decay
        self.clipnorm = clipnorm
        self.global_clipnorm = global_clipnorm
        self.clipvalue = clipvalue
        self.use_ema = use_ema
        self.loss_scale_factor = loss_scale_factor
        self.gradient_accumulation_steps = gradient_accumulation_steps
        if gradient_accumulation_steps:
            if not gradient_accumulation_steps >= 2:
                raise ValueError("`gradient_accumulation_steps` must be an integer >= 2. "
                                 "Received: gradient_accumulation_steps="
                                 f"{gradient_accumulation_steps}")
        if use_ema:
            if ema_momentum > 1 or ema_momentum < 0:
                raise ValueError("`ema_momentum` must be in the range [0, 1]. "
                                 f"Received: ema_momentum={ema_momentum}")
            if ema_overwrite_frequency and (not isinstance(ema_overwrite_frequency, int)
                                            or ema_overwrite_frequency < 1):
                raise ValueError("`ema_overwrite_frequency` must be an integer >= 1 or None. "
                                 f"Received: ema_overwrite_frequency={ema_overwrite_frequency}")
        self.ema_momentum = ema_momentum
        self.ema_overwrite_frequency = ema_overwrite_frequency
        if sum(a is not None for a in (clipnorm, clipvalue, global_clipnorm)) > 1:
            raise ValueError(
                "Only one of `clipnorm`, `clipvalue` and `global_clipnorm` can be set. "
                f"Received: clipnorm={clipnorm}, clipvalue={clipvalue}, "
                f"global_clipnorm={global_clipnorm}")
        self.built = False
        self._iterations = 0          # Keras' raw counter (counts every apply)
        self._set_lr(learning_rate, initial=True)
        self._exclude_ids = set()
        self._exclude_pattern = None
        self._slots = []              # (name, array) in Keras' variable order
        self._const_cache = {}
        self._shapes = ()

    # ------------------------------------------------------- learning rate
    def _set_lr(self, learning_rate, initial=False):
        if isinstance(learning_rate, _schedules.LearningRateSchedule) or (
                callable(learning_rate) and not isinstance(learning_rate, (int, float))):
            self._learning_rate = learning_rate
            self._lr_value = None
            return
        if initial and not isinstance(learning_rate, (float, np.floating)):
            raise ValueError(
                "Argument `learning_rate` should be float, or an instance of "
                "LearningRateSchedule, or a callable (that takes in the current iteration "
                "value and returns the corresponding learning rate value). "
                f"Received instead: learning_rate={learning_rate}")
        if isinstance(getattr(self, "_learning_rate", None), _schedules.LearningRateSchedule):
            raise TypeError(
                "This optimizer was created with a `LearningRateSchedule` object as its "
                "`learning_rate` constructor argument, hence its learning rate is not "
                "settable. If you need the learning rate to be settable, you should "
                "instantiate the optimizer with a float `learning_rate` argument.")
        try:
            value = np.float32(learning_rate)   # Keras keeps it in a float32 variable
        except (TypeError, ValueError):
            raise TypeError("learning_rate must be a float, a LearningRateSchedule or a "
                            f"callable; got {type(learning_rate).__name__}") from None
        self._learning_rate = None
        self._lr_value = value

    def _current_lr(self):
        """The learning rate of the next update, float32 (Keras evaluates a
        schedule at the raw iteration count)."""
        if self._lr_value is not None:
            return self._lr_value
        if isinstance(self._learning_rate, _schedules.LearningRateSchedule):
            return np.float32(self._learning_rate(self._iterations))
        return np.float32(self._learning_rate())

    @property
    def learning_rate(self):
        """The current learning rate as a float; assign a float (or a new
        schedule) to change it."""
        return float(self._current_lr())

    @learning_rate.setter
    def learning_rate(self, value):
        self._set_lr(value)

    @property
    def iterations(self):
        """The number of updates (with gradient accumulation: applies //
        gradient_accumulation_steps, as Keras)."""
        if self.gradient_accumulation_steps:
            return self._iterations // self.gradient_accumulation_steps
        return self._iterations

    @iterations.setter
    def iterations(self, value):
        self._iterations = int(value)

    # ---------------------------------------------------------------- build
    def exclude_from_weight_decay(self, var_list=None, var_names=None):
        """Exclude weights from weight decay (before ``build``): ``var_list``
        the arrays themselves (as passed to ``build``), ``var_names`` strings
        searched in the names given to ``build(weights, names=...)``."""
        if self.built:
            raise ValueError("`exclude_from_weight_decay()` can only be configured before "
                             "the optimizer is built.")
        self._exclude_ids = {id(v) for v in var_list} if var_list else set()
        self._exclude_pattern = re.compile("|".join(set(var_names))) if var_names else None

    def build(self, weights, names=None):
        """Create the slots for ``weights`` (a list of float arrays; read
        only). ``names`` (optional, rnnkern) are the weights' names, for
        ``exclude_from_weight_decay(var_names=...)``. Subclasses call this
        first, then add their slots with ``_add_slots``."""
        weights = list(weights)
        for i, w in enumerate(weights):
            if not isinstance(w, np.ndarray) or not np.issubdtype(w.dtype, np.floating):
                raise TypeError(f"weights[{i}] must be a float NumPy array, got "
                                f"{type(w).__name__}"
                                f"{'' if not isinstance(w, np.ndarray) else ' of ' + str(w.dtype)}")
        if names is not None and len(names) != len(weights):
            raise ValueError(f"build: {len(names)} names for {len(weights)} weights")
        self._n = len(weights)
        self._shapes = tuple(w.shape for w in weights)
        self._decay_mask = [
            id(w) not in self._exclude_ids and not (
                self._exclude_pattern is not None and names is not None
                and self._exclude_pattern.search(names[i]) is not None)
            for i, w in enumerate(weights)]
        # All weights of one dtype (the usual case): every slot is ONE flat
        # array and each weight's slot a view into it, so an update is one
        # sequence of ufunc calls over all weights, whatever their number.
        dtypes = {w.dtype for w in weights}
        self._flat = len(dtypes) == 1
        self._dtype = dtypes.pop() if self._flat else None
        self._offsets = np.cumsum([0] + [w.size for w in weights]).tolist()
        self._size = self._offsets[-1]
        self._slots = []
        if self._flat:
            self._tmp_flat = np.empty(self._size, self._dtype)
            self._tmp2_flat = np.empty(self._size, self._dtype)
            self._grad_flat = np.empty(self._size, self._dtype)
            self._tmp = self._views(self._tmp_flat)
            self._tmp2 = self._views(self._tmp2_flat)
            self._grad_views = self._views(self._grad_flat)
        else:
            self._tmp = [np.empty(w.shape, w.dtype) for w in weights]
            self._tmp2 = [np.empty(w.shape, w.dtype) for w in weights]
        self._averages = self._add_slots(weights, "average") if self.use_ema else None
        self._grad_accumulators = self._add_slots(weights, "gradient_accumulator") \
            if self.gradient_accumulation_steps else None
        self.built = True

    def _views(self, flat):
        """Per-weight views (C-contiguous, the weights' shapes) of a flat array."""
        o = self._offsets
        return [flat[o[i]:o[i + 1]].reshape(s) for i, s in enumerate(self._shapes)]

    def _add_slots(self, weights, names, initial=0.0):
        """Zero (or ``initial``) slots, one per weight and name, registered in
        Keras' variable order (interleaved per weight when several names, as
        Keras' add_optimizer_variables). Returns a _Slot, or a tuple of them:
        ``slot[i]`` the i-th weight's array, ``slot.flat`` all of them."""
        single = isinstance(names, str)
        names = [names] if single else list(names)
        out = []
        for _nm in names:
            if self._flat:
                flat = np.full(self._size, initial, dtype=self._dtype)
                out.append(_Slot(self._views(flat), flat))
            else:
                out.append(_Slot([np.full(w.shape, initial, dtype=w.dtype) for w in weights]))
        for i in range(len(weights)):
            for nm, slot in zip(names, out):
                self._slots.append((nm, slot[i]))
        return out[0] if single else tuple(out)

    # --------------------------------------------------------------- apply
    def _check(self, grads, weights):
        shapes = self._shapes
        if len(grads) == self._n and len(weights) == self._n and \
                tuple([w.shape for w in weights]) == shapes and \
                tuple([None if g is None else g.shape for g in grads]) == tuple(
                    [None if g is None else s for g, s in zip(grads, shapes)]) and \
                all([g is None or g.dtype.kind in "fiu" for g in grads]):
            return
        if len(grads) != self._n or len(weights) != self._n:
            raise ValueError(
                f"{type(self).__name__} was built for {self._n} weights; got "
                f"{len(grads)} gradients and {len(weights)} weights. When working with a "
                "new set of weights, create a new optimizer.")
        for i in range(self._n):
            w, g = weights[i], grads[i]
            if getattr(w, "shape", None) != shapes[i]:
                raise ValueError(f"weights[{i}] has shape {getattr(w, 'shape', None)}; the "
                                 f"optimizer was built with {shapes[i]}")
            if g is not None:
                gs = getattr(g, "shape", None)
                if gs != shapes[i]:
                    raise ValueError(f"grads[{i}] has shape {gs}, its weight {shapes[i]}")
                if getattr(g, "dtype", np.dtype("O")).kind not in "fiu":
                    raise TypeError(f"grads[{i}] must be a real array, got "
                                    f"{getattr(g, 'dtype', type(g).__name__)}")

    def apply(self, grads, weights):
        """One update. ``grads`` and ``weights``: lists aligned with ``build``'s
        weights (a None gradient leaves its weight as it is). Returns the new
        weights as new C-contiguous arrays (on a gradient-accumulation step that
        only accumulates, and for None gradients, the given arrays themselves);
        neither argument is modified."""
        if not len(grads):
            return list(weights)
        if not self.built:
            self.build(weights)
        self._check(grads, weights)
        if self._flat and not any(g is None for g in grads):
            news = self._apply_flat(grads, weights)
        else:
            news = self._apply_each(grads, weights)
        self._iterations += 1
        return news

    def _apply_flat(self, grads, weights):
        """All weights at once, on the flat slots (no None gradient, one dtype)."""
        g = self._grad_flat
        for v, x in zip(self._grad_views, grads):
            np.copyto(v, x)
        t = self._dtype.type
        if self.loss_scale_factor is not None:
            g /= t(self.loss_scale_factor)
        if self.gradient_accumulation_steps:
            acc = self._grad_accumulators.flat
            if (self._iterations + 1) % self.gradient_accumulation_steps:
                acc += g
                return self._update_ema(list(weights)) if self.use_ema else list(weights)
            g += acc
            g /= t(self.gradient_accumulation_steps)
            acc.fill(0)
        self._clip_flat(g, t)
        lr = self._current_lr()
        new = np.empty(self._size, self._dtype)
        news = self._views(new)
        if self.weight_decay is not None:
            one, wd = self._constants(t, 1, self.weight_decay)
            f = one - wd * t(lr)
            for n, w, m in zip(news, weights, self._decay_mask):
                np.multiply(w, f, out=n) if m else np.copyto(n, w)
        else:
            for n, w in zip(news, weights):
                np.copyto(n, w)
        self._kernel(g, new, self._tmp_flat, self._tmp2_flat, self._scalars(lr, t),
                     lambda slot: slot.flat)
        if self.use_ema:
            news = self._update_ema(news)
        return news

    def _apply_each(self, grads, weights):
        """Weight by weight (some gradients None, or weights of several dtypes)."""
        sel = [i for i, g in enumerate(grads) if g is not None]
        if not sel:
            raise ValueError("No gradients provided for any variable.")
        if len(sel) < self._n:
            warnings.warn(f"Gradients do not exist for weights "
                          f"{[i for i, g in enumerate(grads) if g is None]} when minimizing "
                          "the loss.", stacklevel=3)
        gs = [np.asarray(grads[i]) for i in sel]
        if self.loss_scale_factor is not None:
            gs = [x / self.loss_scale_factor for x in gs]
        news = list(weights)
        if self.gradient_accumulation_steps:
            steps = self.gradient_accumulation_steps
            accs = [self._grad_accumulators[i] for i in sel]
            if (self._iterations + 1) % steps:
                for x, a in zip(gs, accs):
                    a += x
                return self._update_ema(news) if self.use_ema else news
            gs = [(x + a) / steps for x, a in zip(gs, accs)]
            for a in accs:
                a.fill(0)
        gs = self._clip_gradients(gs)
        lr = self._current_lr()
        for i, x in zip(sel, gs):
            w = weights[i]
            t = w.dtype.type
            if self.weight_decay is not None and self._decay_mask[i]:
                n = np.multiply(w, t(1) - t(self.weight_decay) * t(lr))
            else:
                n = np.array(w, order="C")
            news[i] = n
            self._kernel(x, n, self._tmp[i], self._tmp2[i], self._scalars(lr, t),
                         lambda slot, i=i: slot[i])
        if self.use_ema:
            news = self._update_ema(news)
        return news

    def _constants(self, t, *values):
        """``values`` as scalars of type ``t``, memoised (NumPy scalar
        construction costs ~0.5 us each; the hyperparameters rarely change)."""
        key = (t,) + values
        c = self._const_cache.get(key)
        if c is None:
            if len(self._const_cache) > 64:
                self._const_cache.clear()
            c = self._const_cache[key] = tuple(t(v) for v in values)
        return c

    def _scalars(self, lr, t):
        """Per-update constants of the kernel, in the weights' scalar type."""
        return (t(lr),)

    def _kernel(self, g, w, a, b, sc, slot):
        """Subclasses: update ``w`` (the new weights, already decayed) in place
        from the gradient ``g``; ``a``, ``b`` scratch of ``w``'s shape; ``sc``
        what ``_scalars`` returned; ``slot(s)`` the part of slot ``s`` aligned
        with ``w`` (all of it, or one weight's)."""
        raise NotImplementedError

    # -------------------------------------------------------- clipping
    def _clip_flat(self, g, t):
        """Keras' clipping on the flat gradient, in place."""
        if self.clipnorm and self.clipnorm > 0:
            c = t(self.clipnorm)
            for v, a in zip(self._grad_views, self._tmp):
                l2sum = np.sum(np.square(v, out=a))
                l2norm = np.sqrt(l2sum) if l2sum > 0 else l2sum
                v *= c
                v /= np.maximum(l2norm, c)
        elif self.global_clipnorm and self.global_clipnorm > 0:
            norm = np.sqrt(t(np.sum([np.sum(np.square(v)) for v in self._grad_views],
                                    dtype=t)))
            c = t(self.global_clipnorm)
            with np.errstate(divide="ignore", invalid="ignore"):
                scale = c * np.minimum(t(1) / norm, t(1) / c)
                scale = scale + (norm - norm)   # NaN for an infinite / NaN norm, as Keras
            g *= scale
        elif self.clipvalue and self.clipvalue > 0:
            np.clip(g, -self.clipvalue, self.clipvalue, out=g)

    def _clip_by_norm(self, g):
        dt = g.dtype.type if g.dtype.kind == "f" else np.float32
        l2sum = dt(np.sum(np.square(g, dtype=dt)))
        l2norm = np.sqrt(l2sum) if l2sum > 0 else l2sum
        c = dt(self.clipnorm)
        return np.multiply(g, c, dtype=dt) / np.maximum(l2norm, c)

    def _clip_gradients(self, gs):
        if self.clipnorm and self.clipnorm > 0:
            return [self._clip_by_norm(g) for g in gs]
        if self.global_clipnorm and self.global_clipnorm > 0:
            dt = np.result_type(*[g.dtype for g in gs], np.float32).type
            norm = np.sqrt(dt(np.sum(np.array([np.sum(np.square(g, dtype=dt))
                                               for g in gs], dtype=dt))))
            c = dt(self.global_clipnorm)
            with np.errstate(divide="ignore", invalid="ignore"):
                scale = c * np.minimum(dt(1) / norm, dt(1) / c)
                scale = scale + (norm - norm)   # NaN for an infinite / NaN norm, as Keras
            return [g * scale for g in gs]
        if self.clipvalue and self.clipvalue > 0:
            v = self.clipvalue
            return [np.clip(g, -v, v) for g in gs]
        return gs

    # -------------------------------------------------------------- EMA
    def _update_ema(self, news):
        """Keras' moving average of the weights after the update; returns the
        weights (the averages' copies on an overwrite step)."""
        t = self._averages[0].dtype.type if self._n else np.float32
        m = t(self.ema_momentum) if self.iterations != 0 else t(0)
        for w, avg in zip(news, self._averages):
            avg *= m
            avg += (t(1) - m) * w
        f = self.ema_overwrite_frequency
        if f and (self.iterations + 1) % f == 0:
            return [a.copy() for a in self._averages]
        return news

    def finalize_variable_values(self, weights):
        """Keras calls this at the end of fit: with ``use_ema``, the weights'
        moving averages as new arrays (to assign to the layers); otherwise
        None (nothing to change)."""
        if not self.use_ema:
            return None
        if not self.built or len(weights) != len(self._averages):
            raise ValueError(
                f"The length of model variables ({len(weights)}) to override does not match "
                "the length of model variables stored in the optimizer "
                f"({len(self._averages) if self.built else 0}). Please check if the "
                "optimizer was called on your model.")
        return [a.copy() for a in self._averages]

    def scale_loss(self, loss):
        """``loss * loss_scale_factor`` (or ``loss``): Keras scales the loss
        before the backward pass and ``apply`` divides the gradients back."""
        if self.loss_scale_factor is not None:
            return loss * self.loss_scale_factor
        return loss

    # ------------------------------------------------------- variables
    @property
    def variables(self):
        """Keras' ``optimizer.variables``: the iteration count (int32, 0-d),
        the learning rate (float32, 0-d; absent with a schedule), then the
        slots in Keras' order (read-only views of the live arrays)."""
        out = [np.array(self._iterations, dtype=np.int32)]
        if self._lr_value is not None:
            out.append(np.array(self._lr_value, dtype=np.float32))
        for _, a in self._slots:
            v = a.view()
            v.flags.writeable = False
            out.append(v)
        return out

    @property
    def variable_names(self):
        """The names Keras gives ``variables`` (without the optimizer's path):
        "iteration", "learning_rate", then "<weight index>_<slot name>"."""
        out = ["iteration"] + (["learning_rate"] if self._lr_value is not None else [])
        counts = {}
        for nm, _ in self._slots:
            k = counts.get(nm, 0)
            counts[nm] = k + 1
            out.append(f"{k}_{nm}")
        return out

    def get_state(self):
        """Copies of ``variables`` (iteration, learning rate, slots), to save
        and later ``set_state`` a training run."""
        return [np.array(v) for v in self.variables]

    def set_state(self, arrays):
        """Restore what ``get_state`` (or Keras' optimizer ``variables``)
        returned; the optimizer must be built."""
        if not self.built:
            raise ValueError(
                "You are calling `set_state()` on an optimizer that has not yet been built. "
                "Please call `optimizer.build(weights)` to create the optimizer weights "
                "before calling `set_state()`.")
        arrays = list(arrays)
        expected = 1 + (self._lr_value is not None) + len(self._slots)
        if len(arrays) != expected:
            raise ValueError(f"{type(self).__name__} has {expected} variables "
                             f"({self.variable_names}); got {len(arrays)} arrays")
        it = np.asarray(arrays[0])
        if it.size != 1 or not np.issubdtype(it.dtype, np.number):
            raise ValueError(f"variables[0] (the iteration count) must be a number, got "
                             f"shape {it.shape} {it.dtype}")
        k = 1
        lr = None
        if self._lr_value is not None:
            lr = np.asarray(arrays[1])
            if lr.size != 1:
                raise ValueError(f"variables[1] (the learning rate) must be a scalar, got "
                                 f"shape {lr.shape}")
            k = 2
        for j, (_nm, a) in enumerate(self._slots):
            src = np.asarray(arrays[k + j])
            if src.shape != a.shape:
                raise ValueError(f"Optimizer variable {self.variable_names[k + j]} has shape "
                                 f"{a.shape} not compatible with provided weight shape "
                                 f"{src.shape}.")
        for j, (_nm, a) in enumerate(self._slots):
            a[...] = arrays[k + j]
        self._iterations = int(it.reshape(()))
        if lr is not None:
            self._lr_value = np.float32(lr.reshape(()))

    set_weights = set_state        # Keras' name
    set_variables = set_state

    def save_own_variables(self, store):
        """Keras' saving hook: ``store[str(i)] = variables[i]``."""
        for i, v in enumerate(self.get_state()):
            store[str(i)] = v

    def load_own_variables(self, store):
        """Keras' loading hook (warns and skips on a count mismatch, as Keras)."""
        n = len(self.variables) if self.built else 0
        if len(store.keys()) != n or not self.built:
            msg = (f"Skipping variable loading for optimizer '{self.name}', because it has "
                   f"{n} variables whereas the saved optimizer has {len(store.keys())} "
                   "variables. ")
            if n == 0:
                msg += "This is likely because the optimizer has not been called/built yet."
            warnings.warn(msg, stacklevel=2)
            return
        self.set_state([store[str(i)] for i in range(n)])

    # ---------------------------------------------------------- config
    def get_config(self):
        """Keras' config keys (the learning rate as Keras writes it: a float32
        value as a Python float, or the serialized schedule)."""
        lr = self._learning_rate
        if self._lr_value is not None:
            lr = float(self._lr_value)
        elif isinstance(lr, _schedules.LearningRateSchedule):
            lr = _schedules.serialize(lr)
        else:
            lr = {"module": "builtins", "class_name": "function",
                  "config": getattr(lr, "__name__", repr(lr)), "registered_name": "function"}
        return {"name": self.name, "learning_rate": lr, "weight_decay": self.weight_decay,
                "clipnorm": self.clipnorm, "global_clipnorm": self.global_clipnorm,
                "clipvalue": self.clipvalue, "use_ema": self.use_ema,
                "ema_momentum": self.ema_momentum,
                "ema_overwrite_frequency": self.ema_overwrite_frequency,
                "loss_scale_factor": self.loss_scale_factor,
                "gradient_accumulation_steps": self.gradient_accumulation_steps}

    @classmethod
    def from_config(cls, config, custom_objects=None):
        """``cls(**config)``, the learning rate deserialized when a schedule."""
        config = dict(config)
        if isinstance(config.get("learning_rate"), dict):
            config["learning_rate"] = _schedules.deserialize(config["learning_rate"],
                                                             custom_objects=custom_objects)
        return cls(**config)

    def __repr__(self):
        return f"<{type(self).__name__} name={self.name}, learning_rate={self.learning_rate:g}>"


class _Slot:
    """One slot of every weight: ``slot[i]`` the i-th weight's array (a view
    into ``slot.flat`` when the weights share a dtype)."""

    __slots__ = ("views", "flat")

    def __init__(self, views, flat=None):
        self.views, self.flat = views, flat

    def __getitem__(self, i):
        return self.views[i]

    def __len__(self):
        return len(self.views)

    def __iter__(self):
        return iter(self.views)
