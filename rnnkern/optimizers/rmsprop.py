"""RMSprop, as Keras 3's keras.optimizers.RMSprop (keras/src/optimizers/rmsprop.py;
update as backend/torch/optimizers/torch_rmsprop.py)."""
from __future__ import annotations

import numpy as np

from .base_optimizer import Optimizer

__all__ = ["RMSprop"]


class RMSprop(Optimizer):
    """RMSprop (Hinton, 2012), plain momentum:

    ``v = rho v + (1 - rho) g^2``; ``d = v + epsilon`` (``centered``: also
    ``a = rho a + (1 - rho) g`` and ``d -= a^2``); ``inc = lr g / sqrt(d)``;
    ``w -= inc``, or with momentum ``m = momentum m + inc`` and ``w -= m``.

    Args:
        learning_rate: float, schedule or callable. Defaults to 0.001.
        rho: float. Defaults to 0.9.
        momentum: float. Defaults to 0.0.
        epsilon: float. Defaults to 1e-7.
        centered: bool. Defaults to False.
        weight_decay, clipnorm, clipvalue, global_clipnorm, use_ema,
        ema_momentum, ema_overwrite_frequency, loss_scale_factor,
        gradient_accumulation_steps, name: see ``Optimizer``.

    Example: ``model.compile(optimizer=RMSprop(learning_rate=1e-3), loss="mse")``
    """

    def __init__(self, learning_rate=0.001, rho=0.9, momentum=0.0, epsilon=1e-7,
                 centered=False, weight_decay=None, clipnorm=None, clipvalue=None,
                 global_clipnorm=None, use_ema=False, ema_momentum=0.99,
                 ema_overwrite_frequency=None, loss_scale_factor=None,
                 gradient_accumulation_steps=None, name=None, **kwargs):
        super().__init__(learning_rate=learning_rate, weight_decay=weight_decay,
                         clipnorm=clipnorm, clipvalue=clipvalue,
                         global_clipnorm=global_clipnorm, use_ema=use_ema,
                         ema_momentum=ema_momentum,
                         ema_overwrite_frequency=ema_overwrite_frequency,
                         loss_scale_factor=loss_scale_factor,
                         gradient_accumulation_steps=gradient_accumulation_steps, name=name,
                         **kwargs)
        self.rho = rho
        self.momentum = momentum
        self.epsilon = epsilon
        self.centered = centered

    def build(self, weights, names=None):
        if self.built:
            return
        super().build(weights, names)
        self._velocities = self._add_slots(weights, "velocity")
        self._momentums = self._add_slots(weights, "momentum") if self.momentum > 0 else []
        self._average_gradients = self._add_slots(weights, "average_gradient") \
            if self.centered else []

    def _scalars(self, lr, t):
        return (t(lr),) + self._constants(t, self.rho, 1 - self.rho, self.epsilon,
                                          self.momentum)

    def _kernel(self, g, w, a, b, sc, slot):
        lr, rho, c, eps, mom = sc
        v = slot(self._velocities)
        np.multiply(g, g, out=a)
        a *= c
        v *= rho
        v += a                                          # v = rho v + (1 - rho) g^2
        np.add(v, eps, out=a)                           # d = v + eps
        if self.centered:
            avg = slot(self._average_gradients)
            avg *= rho
            avg += np.multiply(g, c, out=b)             # a = rho a + (1 - rho) g
            a -= np.multiply(avg, avg, out=b)           # d -= a^2
        np.sqrt(a, out=a)
        np.multiply(g, lr, out=b)
        b /= a                                          # inc = lr g / sqrt(d)
        if self.momentum > 0:
            m = slot(self._momentums)
            m *= mom
            m += b
            w -= m
        else:
            w -= b

    def get_config(self):
        config = super().get_config()
        config.update({"rho": self.rho, "momentum": self.momentum, "epsilon": self.epsilon,
                       "centered": self.centered})
        return config
