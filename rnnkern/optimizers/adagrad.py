"""Adagrad, as Keras 3's keras.optimizers.Adagrad (keras/src/optimizers/adagrad.py;
update as backend/torch/optimizers/torch_adagrad.py)."""
from __future__ import annotations

import numpy as np

from .base_optimizer import Optimizer

__all__ = ["Adagrad"]


class Adagrad(Optimizer):
    """Adagrad (Duchi et al., 2011): ``acc += g^2``,
    ``w -= lr g / sqrt(acc + epsilon)``.

    Args:
        learning_rate: float, schedule or callable. Defaults to 0.001.
        initial_accumulator_value: float >= 0, the accumulators' start. Defaults to 0.1.
        epsilon: float. Defaults to 1e-7.
        weight_decay, clipnorm, clipvalue, global_clipnorm, use_ema,
        ema_momentum, ema_overwrite_frequency, loss_scale_factor,
        gradient_accumulation_steps, name: see ``Optimizer``.

    Example: ``Adagrad(learning_rate=0.01)``
    """

    def __init__(self, learning_rate=0.001, initial_accumulator_value=0.1, epsilon=1e-7,
                 weight_decay=None, clipnorm=None, clipvalue=None, global_clipnorm=None,
                 use_ema=False, ema_momentum=0.99, ema_overwrite_frequency=None,
                 loss_scale_factor=None, gradient_accumulation_steps=None, name=None,
                 **kwargs):
        super().__init__(learning_rate=learning_rate, weight_decay=weight_decay,
                         clipnorm=clipnorm, clipvalue=clipvalue,
                         global_clipnorm=global_clipnorm, use_ema=use_ema,
                         ema_momentum=ema_momentum,
                         ema_overwrite_frequency=ema_overwrite_frequency,
                         loss_scale_factor=loss_scale_factor,
                         gradient_accumulation_steps=gradient_accumulation_steps, name=name,
                         **kwargs)
        self.initial_accumulator_value = initial_accumulator_value
        self.epsilon = epsilon

    def build(self, weights, names=None):
        if self.built:
            return
        super().build(weights, names)
        self._accumulators = self._add_slots(weights, "accumulator",
                                             initial=self.initial_accumulator_value)

    def _scalars(self, lr, t):
        return (t(lr),) + self._constants(t, self.epsilon)

    def _kernel(self, g, w, a, b, sc, slot):
        lr, eps = sc
        acc = slot(self._accumulators)
        acc += np.multiply(g, g, out=a)                 # acc += g^2
        np.add(acc, eps, out=a)
        np.sqrt(a, out=a)
        np.multiply(g, lr, out=b)
        b /= a
        w -= b                                          # w -= lr g / sqrt(acc + eps)

    def get_config(self):
        config = super().get_config()
        config.update({"initial_accumulator_value": self.initial_accumulator_value,
                       "epsilon": self.epsilon})
        return config
