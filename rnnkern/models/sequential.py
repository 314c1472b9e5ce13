"""Sequential: a linear stack of layers (Keras 3's keras/src/models/
sequential.py).

The input shape comes from an ``Input(...)`` first, from ``input_shape=`` on
the first layer (the Keras 2 habit), from ``build((None, T, F))``, or from the
first call on data. Once it is known the model builds, as Keras does, a
functional graph of its layers (an InputLayer, then each layer called on the
previous one's output), so masks, gradients and summaries are the functional
model's. ``layers`` does not list the InputLayer.
"""
from __future__ import annotations

import numpy as np

from ..layers.base import KerasTensor, Layer, _shape_tuple
from ..layers.core import InputLayer
from ..utils.naming import auto_name
from ..utils.registry import deserialize_layer, serialize_layer
from .functional import Model, find_layer
from .summary import print_summary
from .training import Trainer

__all__ = ["Sequential"]


class Sequential(Trainer, Layer):
    """``Sequential(layers=None, trainable=True, name=None)``; ``add(layer)``,
    ``pop()``, ``build(input_shape)``, then call it, ``predict``, ``backward``,
    ``summary()``, ``get_weights`` / ``set_weights``, ``count_params()``.

    >>> model = Sequential([Input((5, 3)), SimpleRNN(128), Dense(2)])
    >>> model.count_params()
    17154
    """

    _call_args = ("training", "mask")

    def __init__(self, layers=None, trainable=True, name=None):
        super().__init__(name=name if name is not None else auto_name("Sequential"),
                         trainable=trainable)
        self._functional = None
        self._layers = []
        if layers is not None:
            if isinstance(layers, (Layer, KerasTensor)) or not hasattr(layers, "__iter__"):
                raise TypeError(f"Sequential takes a list of layers, got {type(layers).__name__}")
            for layer in layers:
                self.add(layer, rebuild=False)
            self._maybe_rebuild()

    # ------------------------------------------------------------ the stack
    def add(self, layer, rebuild=True):
        """Add a layer on top of the stack (an ``Input(...)`` tensor is taken as
        its InputLayer)."""
        if not self._layers and getattr(layer, "_batch_input_shape", None) is not None:
            self.add(InputLayer(batch_shape=layer._batch_input_shape), rebuild=False)
        if isinstance(layer, KerasTensor) and layer._keras_history is not None:
            origin = layer._keras_history.operation
            if isinstance(origin, InputLayer):
                layer = origin
        if not isinstance(layer, Layer):
            raise ValueError("Only instances of `rnnkern.layers.Layer` can be added to a "
                             f"Sequential model. Received: {layer!r} (of type {type(layer)})")
        if any(l.name == layer.name for l in self._layers):
            raise ValueError("All layers added to a Sequential model should have unique "
                             f"names. Name '{layer.name}' is already the name of a layer in "
                             "this model. Update the `name` argument to pass a unique name.")
        if isinstance(layer, InputLayer) and self._layers and \
                isinstance(self._layers[0], InputLayer):
            raise ValueError(f"Sequential model '{self.name}' has already been configured to "
                             f"use input shape {self._layers[0].batch_shape}. You cannot add "
                             "a different Input layer to it.")
        if isinstance(layer, InputLayer) and self._layers:
            raise ValueError(f"an Input can only be the first layer of Sequential model "
                             f"{self.name!r}")
        self._layers.append(layer)
        if rebuild:
            self._maybe_rebuild()
        else:
            self.built = False
            self._functional = None

    def pop(self, rebuild=True):
        """Remove and return the top layer."""
        if not self.layers:
            raise TypeError("There are no layers in the model.")
        layer = self._layers.pop()
        self.built = False
        self._functional = None
        if rebuild:
            self._maybe_rebuild()
        return layer

    def _maybe_rebuild(self):
        self.built = False
        self._functional = None
        if self._layers and isinstance(self._layers[0], InputLayer) and len(self._layers) > 1:
            self.build(self._layers[0].batch_shape)

    @property
    def layers(self):
        """The layers, without the InputLayer (as Keras)."""
        return [l for l in self._layers if not isinstance(l, InputLayer)]

    def _sublayers(self):
        return self.layers

    def get_layer(self, name=None, index=None):
        return find_layer(self.layers, name, index)

    # ---------------------------------------------------------------- build
    def build(self, input_shape=None):
        """Build the stack for inputs of ``input_shape`` (batch included, None
        where unknown)."""
        if input_shape is None:
            raise ValueError(f"Sequential model {self.name!r} needs an input_shape to build, "
                             "e.g. build((None, timesteps, features))")
        shape = _shape_tuple(input_shape, "input_shape")
        if not self.layers:
            raise ValueError(f"Sequential model {self.name} cannot be built because it has no "
                             "layers. Call `model.add(layer)`.")
        if isinstance(self._layers[0], InputLayer):
            if self._layers[0].batch_shape != shape:
                raise ValueError(f"Sequential model '{self.name}' has already been configured "
                                 f"to use input shape {self._layers[0].batch_shape}. You "
                                 f"cannot build it with input_shape {shape}")
        else:
            self._layers.insert(0, InputLayer(batch_shape=shape))
        inputs = self._layers[0].output
        x = inputs
        for layer in self._layers[1:]:
            x = layer(x)
        self._functional = Model(inputs, x)
        self.built = True

    @property
    def inputs(self):
        return self._require_built("inputs").inputs

    @property
    def outputs(self):
        return self._require_built("outputs").outputs

    @property
    def input(self):
        return self._require_built("input").input

    @property
    def output(self):
        return self._require_built("output").output

    @property
    def input_shape(self):
        return self._require_built("input_shape").input_shape

    @property
    def output_shape(self):
        return self._require_built("output_shape").output_shape

    def _graph(self):
        return self._require_built("a graph")

    def _graph_or_none(self):
        return self._functional

    def _require_built(self, what):
        if self._functional is None:
            raise ValueError(
                f"Sequential model {self.name!r} has not yet been built, so it has no "
                f"{what}. Build it first: start it with rnnkern.layers.Input(shape), give "
                "its first layer input_shape=, call model.build((None, ...)), or call it on "
                "a batch of data.")
        return self._functional

    def compute_output_shape(self, input_shape):
        if self._functional is None:
            self.build(input_shape)
        return self._functional.compute_output_shape(input_shape)

    def _check_input_shape(self, input_shape):
        pass

    def _build_from_weights(self, weights):
        self._require_built("weights to set")

    @property
    def weights(self):
        ws = []
        for layer in self.layers:
            ws += layer.weights if layer.built else []
        return ws

    def weight_paths(self):
        paths = []
        for layer in self.layers:
            paths += layer.weight_paths() if layer.built else []
        return paths

    def set_weights(self, weights):
        self._require_built("weights to set")
        super().set_weights(weights)

    def _set_weights_checked(self, arrays):
        i = 0
        for layer in self.layers:
            n = len(layer.weights)
            layer._set_weights_checked(arrays[i:i + n])
            i += n

    def count_params(self):
        self._require_built("parameters to count")
        return int(sum(w.size for w in self.weights))

    # ----------------------------------------------------------------- call
    def _run(self, inputs, training, kw):
        if self._functional is None:
            shape = np.shape(inputs[0] if isinstance(inputs, (list, tuple)) else inputs)
            self.build(shape)
        return self._functional._run(inputs, training, kw)

    def _symbolic_call(self, inputs, kw):
        if self._functional is None:
            self.build(inputs.shape)
        return super()._symbolic_call(inputs, kw)

    def forward(self, inputs, training=None, mask=None):
        return self._require_built("forward").forward(inputs, training=training, mask=mask)

    def _standardize(self, inputs):
        return self._require_built("inputs")._standardize(inputs)

    def backward_from(self, ctx, d_outputs):
        return self._functional.backward_from(ctx, d_outputs)

    def backward(self, d_output):
        """Backpropagate ``d_output`` through this thread's last call: returns the
        input's gradient, replaces ``grads`` (aligned with ``weights``) and every
        layer's ``grads``."""
        d_inputs, layer_grads = self._functional._backward(self._last_ctx(), d_output)
        self._tls.grads = self._functional._collect_grads(layer_grads, self.layers, True)
        return d_inputs[0]

    def summary(self, line_length=None, positions=None, print_fn=None, expand_nested=False,
                show_trainable=False, layer_range=None):
        """Print Keras 3's summary table (before the model is built, as Keras: "?"
        output shapes and "0 (unbuilt)" parameter counts)."""
        print_summary(self, line_length=line_length, positions=positions, print_fn=print_fn,
                      expand_nested=expand_nested, show_trainable=show_trainable,
                      layer_range=layer_range)

    def get_config(self):
        cfg = {"name": self.name, "trainable": self.trainable, "dtype": None,
               "layers": [serialize_layer(l) for l in self._layers]}
        if self._functional is not None:
            cfg["build_input_shape"] = self._layers[0].batch_shape
        return cfg

    @classmethod
    def from_config(cls, config, custom_objects=None):
        model = cls(name=config.get("name"), trainable=config.get("trainable", True))
        for lc in config.get("layers", []):
            model.add(deserialize_layer(lc, custom_objects), rebuild=False)
        if model._layers:
            model._maybe_rebuild()
        shape = config.get("build_input_shape")
        if not model.built and shape is not None:
            model.build(tuple(shape))
        return model
