"""Adam, as Keras 3's keras.optimizers.Adam (keras/src/optimizers/adam.py;
update as backend/torch/optimizers/torch_adam.py)."""
from __future__ import annotations

import math

import numpy as np

from .base_optimizer import Optimizer

__all__ = ["Adam"]


class Adam(Optimizer):
    """Adam (Kingma & Ba, 2014), with Keras' bias-corrected step size:

    ``m = b1 m + (1 - b1) g``, ``v = b2 v + (1 - b2) g^2``,
    ``alpha = lr sqrt(1 - b2^t) / (1 - b1^t)`` (t = iterations + 1),
    ``w -= alpha m / (sqrt(v) + epsilon)``; with ``amsgrad`` ``v`` is replaced
    by its running maximum.

    Args:
        learning_rate: float, schedule or callable. Defaults to 0.001.
        beta_1: float. Defaults to 0.9.
        beta_2: float. Defaults to 0.999.
        epsilon: float ("epsilon hat"). Defaults to 1e-7.
        amsgrad: bool. Defaults to False.
        weight_decay, clipnorm, clipvalue, global_clipnorm, use_ema,
        ema_momentum, ema_overwrite_frequency, loss_scale_factor,
        gradient_accumulation_steps, name: see ``Optimizer``.

    Example: ``model.compile(optimizer=Adam(learning_rate=1e-3), loss="mse")``
    """

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7,
                 amsgrad=False, weight_decay=None, clipnorm=None, clipvalue=None,
                 global_clipnorm=None, use_ema=False, ema_momentum=0.99,
                 ema_overwrite_frequency=None, loss_scale_factor=None,
                 gradient_accumulation_steps=None, name=None, **kwargs):
        super().__init__(learning_rate=learning_rate, name=name, weight_decay=weight_decay,
                         clipnorm=clipnorm, clipvalue=clipvalue,
                         global_clipnorm=global_clipnorm, use_ema=use_ema,
                         ema_momentum=ema_momentum,
                         ema_overwrite_frequency=ema_overwrite_frequency,
                         loss_scale_factor=loss_scale_factor,
                         gradient_accumulation_steps=gradient_accumulation_steps, **kwargs)
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.amsgrad = amsgrad

    def build(self, weights, names=None):
        if self.built:
            return
        super().build(weights, names)
        self._momentums, self._velocities = self._add_slots(weights, ["momentum", "velocity"])
        if self.amsgrad:
            self._velocity_hats = self._add_slots(weights, "velocity_hat")

    def _scalars(self, lr, t):
        b1, b2, c1, c2, eps, one = self._constants(t, self.beta_1, self.beta_2,
                                                   1 - self.beta_1, 1 - self.beta_2,
                                                   self.epsilon, 1)
        step = t(self.iterations + 1)
        # float32 scalar math as Keras' tensors (math.sqrt of a float32 value,
        # rounded back, is the correctly rounded float32 sqrt)
        alpha = t(lr) * t(math.sqrt(one - b2 ** step)) / (one - b1 ** step)
        return b1, b2, c1, c2, eps, alpha

    def _kernel(self, g, w, a, b, sc, slot):
        b1, b2, c1, c2, eps, alpha = sc
        m, v = slot(self._momentums), slot(self._velocities)
        m *= b1
        m += np.multiply(g, c1, out=a)                  # m = b1 m + (1 - b1) g
        np.multiply(g, g, out=a)
        a *= c2
        v *= b2
        v += a                                          # v = b2 v + (1 - b2) g^2
        if self.amsgrad:
            vh = slot(self._velocity_hats)
            v = np.maximum(vh, v, out=vh)
        np.sqrt(v, out=a)
        a += eps
        np.multiply(m, alpha, out=b)
        b /= a
        w -= b                                          # w -= alpha m / (sqrt v + eps)

    def get_config(self):
        config = super().get_config()
        config.update({"beta_1": self.beta_1, "beta_2": self.beta_2, "epsilon": self.epsilon,
                       "amsgrad": self.amsgrad})
        return config
