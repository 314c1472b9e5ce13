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

Weights on a GPU backend's device (``rnnkern._device_math.DeviceVec``: the
models' ``fit`` passes those of recurrent layers on ``cuda``) are updated there,
by the same kernel code on device arrays (bitwise the host's results, but for
the norm clippings' sums of squares, which the device adds in double): their
slots get device copies, the host slots catch up whenever they are read
(``variables``, ``get_state``, saving), and ``set_state`` replaces both.

Order of one ``apply`` (Keras'): drop None gradients (warning), unscale by
``loss_scale_factor``, accumulate (``gradient_accumulation_steps``), clip
(``clipnorm`` per weight, ``global_clipnorm`` over all, or ``clipvalue``),
weight decay ``w *= 1 - weight_decay * lr``, the optimizer's step, the EMA of
the weights (``use_ema``), then ``iterations += 1``.
"""
from __future__ import annotations

import contextlib
import re
import warnings

import numpy as np

from .._device_math import DeviceVec, fused, is_device_vec
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
        # the weights on a device of the last apply (a _DeviceGroup: their slots'
        # device copies), and whether the host slots lag behind those
        self._dgroup = None
        self._host_stale = False

    def __getstate__(self):
        # device copies stay behind (the host slots, brought up to date, travel)
        self._sync_host()
        state = dict(self.__dict__)
        state.update(_dgroup=None, _host_stale=False)
        return state

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
            if is_device_vec(w):
                continue
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
        on_device = any([type(w) is DeviceVec for w in weights])
        if not on_device and self._dgroup is not None:   # all back on the host: the slots too
            self._sync_host()
            self._dgroup = None
        if self._flat and not any(g is None for g in grads) and not on_device:
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
        """Weight by weight (some gradients None, or weights of several dtypes);
        the weights on a device all at once, as one flat array there (_DeviceGroup)."""
        sel = [i for i, g in enumerate(grads) if g is not None]
        if not sel:
            raise ValueError("No gradients provided for any variable.")
        if len(sel) < self._n:
            warnings.warn(f"Gradients do not exist for weights "
                          f"{[i for i, g in enumerate(grads) if g is None]} when minimizing "
                          "the loss.", stacklevel=3)
        host = [i for i in sel if not is_device_vec(weights[i])]
        D = self._group([i for i in sel if is_device_vec(weights[i])], weights)
        # the device group's operations (all of its size) as one kernel a run
        with fused(D.size) if D is not None else contextlib.nullcontext():
            return self._apply_each_in(grads, weights, sel, host, D)

    def _apply_each_in(self, grads, weights, sel, host, D):
        gs = {i: np.asarray(grads[i]) for i in host}
        gd = None
        if D is not None:   # a working copy: the gradients themselves stay as they are
            gd = D.work
            gd.assign(D.gather(grads))
        if self.loss_scale_factor is not None:
            gs = {i: x / self.loss_scale_factor for i, x in gs.items()}
            if D is not None:
                gd /= self.loss_scale_factor
        news = list(weights)
        if self.gradient_accumulation_steps:
            steps = self.gradient_accumulation_steps
            accs = {i: self._grad_accumulators[i] for i in host}
            accd = D.slot(self._grad_accumulators) if D is not None else None
            if (self._iterations + 1) % steps:
                for i, x in gs.items():
                    accs[i] += x
                if D is not None:
                    accd += gd
                return self._update_ema(news, D) if self.use_ema else news
            gs = {i: (x + accs[i]) / steps for i, x in gs.items()}
            for a in accs.values():
                a.fill(0)
            if D is not None:
                gd += accd
                gd /= steps
                accd.fill(0)
        self._clip_gradients(sel, gs, D, gd)
        lr = self._current_lr()
        for i in host:
            w, x = weights[i], gs[i]
            t = w.dtype.type
            if self.weight_decay is not None and self._decay_mask[i]:
                n = np.multiply(w, t(1) - t(self.weight_decay) * t(lr))
            else:
                n = np.array(w, order="C")
            news[i] = n
            self._kernel(x, n, self._tmp[i], self._tmp2[i], self._scalars(lr, t),
                         lambda slot, i=i: slot[i])
        if D is not None:
            t = np.float32
            factor = None
            if self.weight_decay is not None:
                factor = t(1) - t(self.weight_decay) * t(lr)
            new = D.new_weights(weights, factor, self._decay_mask)
            self._kernel(gd, new, D.tmp[0], D.tmp[1], self._scalars(lr, t), D.slot)
            for i, v in zip(D.idx, D.views(new)):
                news[i] = v
        if self.use_ema:
            news = self._update_ema(news, D)
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
        l2sum = _sum_squares(g, dt)
        l2norm = np.sqrt(l2sum) if l2sum > 0 else l2sum
        c = dt(self.clipnorm)
        return np.multiply(g, c, dtype=dt) / np.maximum(l2norm, c)

    def _clip_gradients(self, sel, gs, D, gd):
        """Keras' clipping of _apply_each's gradients, in place: ``gs`` (index ->
        host gradient) replaced, the device group's flat ``gd`` scaled."""
        views = dict(zip(D.idx, D.views(gd))) if D is not None else {}
        if self.clipnorm and self.clipnorm > 0:
            for i in gs:
                gs[i] = self._clip_by_norm(gs[i])
            for v in views.values():
                dt = np.float32
                l2sum = _sum_squares(v, dt)
                l2norm = np.sqrt(l2sum) if l2sum > 0 else l2sum
                c = dt(self.clipnorm)
                v *= c                              # (g c) / max(|g|, c), as the host
                v /= np.maximum(l2norm, c)
        elif self.global_clipnorm and self.global_clipnorm > 0:
            dt = np.result_type(*[g.dtype for g in gs.values()], np.float32).type
            sums = [_sum_squares(gs[i] if i in gs else views[i], dt) for i in sel]
            norm = np.sqrt(dt(np.sum(np.array(sums, dtype=dt))))
            c = dt(self.global_clipnorm)
            with np.errstate(divide="ignore", invalid="ignore"):
                scale = c * np.minimum(dt(1) / norm, dt(1) / c)
                scale = scale + (norm - norm)   # NaN for an infinite / NaN norm, as Keras
            for i in gs:
                gs[i] = gs[i] * scale
            if D is not None:
                gd *= scale
        elif self.clipvalue and self.clipvalue > 0:
            v = self.clipvalue
            for i in gs:
                gs[i] = np.clip(gs[i], -v, v)
            if D is not None:
                gd.clip(-v, v, out=gd)

    # -------------------------------------------------------------- EMA
    def _update_ema(self, news, D=None):
        """Keras' moving average of the weights after the update; returns the
        weights (the averages' copies on an overwrite step). The device group's
        averages are one flat array there."""
        t = self._averages[0].dtype.type if self._n else np.float32
        m = t(self.ema_momentum) if self.iterations != 0 else t(0)
        on_device = set(D.idx) if D is not None else ()
        for i, (w, avg) in enumerate(zip(news, self._averages)):
            if i in on_device:
                continue
            avg *= m
            avg += (t(1) - m) * w
        if D is not None:
            avg = D.slot(self._averages)
            avg *= m
            avg += (t(1) - m) * D.flat_of([news[i] for i in D.idx])
        f = self.ema_overwrite_frequency
        if f and (self.iterations + 1) % f == 0:
            out = [a.copy() for a in self._averages]
            if D is not None:
                for i, v in zip(D.idx, D.views(D.slot(self._averages).copy())):
                    out[i] = v
            return out
        return news

    # ------------------------------------------------- weights on a device
    def _group(self, idx, weights):
        """The _DeviceGroup of the weights ``idx`` (on one device), made anew
        (the host slots first brought up to date) when they are others than the
        last apply's; None without any."""
        if not idx:
            return None
        device = weights[idx[0]].device
        if any(weights[i].device != device for i in idx):
            raise ValueError("the weights on a device must all be on the same one")
        g = self._dgroup
        if g is None or g.idx != tuple(idx) or g.device != device:
            self._sync_host()
            g = self._dgroup = _DeviceGroup(idx, self._shapes, device)
        self._host_stale = True
        return g

    def _sync_host(self):
        """The host slots brought up to the device copies (kept: both agree)."""
        if self._host_stale and self._dgroup is not None:
            self._dgroup.sync_host()
        self._host_stale = False

    def finalize_variable_values(self, weights):
        """Keras calls this at the end of fit: with ``use_ema``, the weights'
        moving averages as new arrays (to assign to the layers); otherwise
        None (nothing to change)."""
        if not self.use_ema:
            return None
        self._sync_host()
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
        slots in Keras' order (read-only views of the live arrays; those of
        weights on a device brought up to date first)."""
        self._sync_host()
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
        self._dgroup = None          # device copies of the slots re-made from these
        self._host_stale = False
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


def _sum_squares(g, dt):
    """sum(g^2) as a ``dt`` scalar: NumPy's sum on the host, the device's (in
    double, fixed order, then rounded) for a DeviceVec."""
    if is_device_vec(g):
        return dt(g.sum_squares())
    return dt(np.sum(np.square(g, dtype=dt)))


class _DeviceGroup:
    """The weights on a device of an apply (``idx``, their indices, in order) as
    one flat array there: their gradient, their new values and each slot's part
    for them one flat DeviceVec, every weight a view of it (``views``), so that
    each operation of the update is one kernel over all of them."""

    def __init__(self, idx, shapes, device):
        self.idx, self.device = tuple(idx), device
        self.shapes = [shapes[i] for i in idx]
        sizes = [int(np.prod(s, dtype=np.int64)) for s in self.shapes]
        self.offsets = np.cumsum([0] + sizes).tolist()
        self.size = self.offsets[-1]
        self.slots = {}               # id(slot) -> (slot, flat device copy)
        # the gradients (the backward writes them here: the trainer hands out the
        # views), and the update's working copy of them
        self.grad = DeviceVec.empty(device, (self.size,))
        self.work = DeviceVec.empty(device, (self.size,))
        self.tmp = (DeviceVec.empty(device, (self.size,)),
                    DeviceVec.empty(device, (self.size,)))

    def views(self, flat):
        return [flat.view(o, s) for o, s in zip(self.offsets, self.shapes)]

    def slot(self, slot):
        """The flat device copy of ``slot``'s arrays of these weights (uploaded
        from the host ones at first use)."""
        e = self.slots.get(id(slot))
        if e is None:
            host = np.concatenate([np.ravel(slot[i]) for i in self.idx]).astype(np.float32)
            e = self.slots[id(slot)] = (slot, DeviceVec.upload(host, self.device))
        return e[1]

    def sync_host(self):
        for slot, flat in self.slots.values():
            h = flat.numpy()
            for i, o, o2, s in zip(self.idx, self.offsets, self.offsets[1:], self.shapes):
                slot[i][...] = h[o:o2].reshape(s)

    def gather(self, grads):
        """The gradients of these weights in the flat gradient buffer (copied on
        the device; a host gradient uploaded)."""
        for i, v in zip(self.idx, self.views(self.grad)):
            g = grads[i]
            if not (is_device_vec(g) and g.base is v.base and g.offset == v.offset):
                v.assign(g)     # (the backward wrote it there itself, where it could)
        return self.grad

    def flat_of(self, ws):
        """These weights' arrays ``ws`` as one flat DeviceVec: themselves where they
        are consecutive views of one array (the last update's), else a copy."""
        w0 = ws[0]
        if all(w.base is w0.base and w.offset == w0.offset + o
               for w, o in zip(ws, self.offsets)):
            return DeviceVec(w0.base, w0.offset, (self.size,))
        out = DeviceVec.empty(self.device, (self.size,))
        for w, v in zip(ws, self.views(out)):
            v.assign(w)
        return out

    def new_weights(self, weights, factor, mask):
        """A new flat array of these weights' values, each decayed (times
        ``factor``) where ``mask`` says and a factor is given."""
        ws = [weights[i] for i in self.idx]
        if factor is None or not any(mask[i] for i in self.idx):
            return self.flat_of(ws).copy()
        new = DeviceVec.empty(self.device, (self.size,))
        for i, w, v in zip(self.idx, ws, self.views(new)):
            if mask[i]:
                np.multiply(w, factor, out=v)
            else:
                v.assign(w)
        return new


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
