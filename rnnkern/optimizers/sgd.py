"""SGD with optional (Nesterov) momentum, as Keras 3's keras.optimizers.SGD
(keras/src/optimizers/sgd.py; update as backend/torch/optimizers/torch_sgd.py)."""
from __future__ import annotations

import numpy as np

from .base_optimizer import Optimizer

__all__ = ["SGD"]


class SGD(Optimizer):
    """Gradient descent (with momentum).

    ``w -= learning_rate * g`` when ``momentum`` is 0; otherwise
    ``velocity = momentum * velocity - learning_rate * g`` and ``w += velocity``,
    or with ``nesterov=True`` ``w += momentum * velocity - learning_rate * g``.

    Args:
        learning_rate: float, schedule or callable. Defaults to 0.01.
        momentum: float in [0, 1]. Defaults to 0.0.
        nesterov: bool. Defaults to False.
        weight_decay, clipnorm, clipvalue, global_clipnorm, use_ema,
        ema_momentum, ema_overwrite_frequency, loss_scale_factor,
        gradient_accumulation_steps, name: see ``Optimizer``.

    Example: ``opt = SGD(learning_rate=0.1, momentum=0.9); new = opt.apply(grads, weights)``
    """

    def __init__(self, learning_rate=0.01, momentum=0.0, nesterov=False, weight_decay=None,
                 clipnorm=None, clipvalue=None, global_clipnorm=None, use_ema=False,
                 ema_momentum=0.99, ema_overwrite_frequency=None, loss_scale_factor=None,
                 gradient_accumulation_steps=None, name=None, **kwargs):
        super().__init__(learning_rate=learning_rate, name=name, weight_decay=weight_decay,
                         clipnorm=clipnorm, clipvalue=clipvalue,
                         global_clipnorm=global_clipnorm, use_ema=use_ema,
                         ema_momentum=ema_momentum,
                         ema_overwrite_frequency=ema_overwrite_frequency,
                         loss_scale_factor=loss_scale_factor,
                         gradient_accumulation_steps=gradient_accumulation_steps, **kwargs)
        if not isinstance(momentum, (float, np.floating)) or momentum < 0 or momentum > 1:
            raise ValueError("`momentum` must be a float between [0, 1].")
        self.momentum = momentum
        self.nesterov = nesterov

    def build(self, weights, names=None):
        if self.built:
            return
        super().build(weights, names)
        self.momentums = []
        if self.momentum != 0:
            self.momentums = self._add_slots(weights, "momentum")

    def _scalars(self, lr, t):
        return (t(lr),) + self._constants(t, self.momentum)

    def _kernel(self, g, w, a, b, sc, slot):
        lr, mom = sc
        d = np.multiply(g, lr, out=a)                   # lr * g
        if self.momentum != 0:
            m = slot(self.momentums)
            m *= mom
            m -= d                                      # m = mom m - lr g
            if self.nesterov:
                w -= d
                w += np.multiply(m, mom, out=b)         # w += mom m - lr g
            else:
                w += m
        else:
            w -= d

    def get_config(self):
        config = super().get_config()
        config.update({"momentum": self.momentum, "nesterov": self.nesterov})
        return config
