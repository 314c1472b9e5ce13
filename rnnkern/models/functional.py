"""Functional models: ``Model(inputs, outputs)`` over a graph of layer calls
recorded on symbolic tensors (``rnnkern.layers.Input``), as Keras 3's
``keras.Model`` / Functional (keras/src/models/functional.py and
keras/src/ops/function.py).

A model is itself a Layer (the contract of ``rnnkern.layers.base``):

- ``forward`` runs the nodes in topological order, each on the values of its
  input tensors, keeping one ctx per node (so a layer used twice, a shared
  layer, is differentiated at each use); masks flow as Keras' do;
- ``backward_from`` runs the nodes in reverse, summing the gradients where a
  tensor feeds several nodes, and sums each layer's weight gradients over its
  uses; ``grads`` is aligned with ``model.weights`` (the layers' weights in
  ``model.layers`` order).

After ``model.backward(d_output)`` every layer's ``grads`` also holds its own
part (summed over its uses).
"""
from __future__ import annotations

import collections

import numpy as np

from .. import saving
from ..layers.base import KerasTensor, Layer, check_training, format_shape, warn_mask_dropped
from ..utils.naming import auto_name
from ..utils.registry import register_class
from ..utils.tree import flatten, map_structure, pack_as
from . import wavefront
from .summary import print_summary
from .training import Trainer

__all__ = ["Model", "Functional"]


def _map_graph(inputs, outputs):
    """Keras' graph mapping: (nodes in topological order, nodes_by_depth,
    layers ordered by depth then by first traversal)."""
    input_ids = {id(t) for t in inputs}
    finished, in_progress = set(), set()
    ordered, layer_index = [], {}

    def visit(tensor):
        h = tensor._keras_history
        if h is None:
            raise ValueError(f"{tensor!r} was not produced by a layer call: model outputs must "
                             "come from layers called on Input tensors")
        layer = h.operation
        node = layer._inbound_nodes[h.node_index]
        if id(node) in finished:
            return
        if not node.is_input and id(tensor) in input_ids:
            finished.add(id(node))
            return
        if id(node) in in_progress:
            raise ValueError(f"Tensor {tensor!r} from layer {layer.name!r} is part of a cycle.")
        layer_index.setdefault(id(layer), (len(layer_index), layer))
        in_progress.add(id(node))
        if not node.is_input:
            for t in node.input_tensors:
                visit(t)
            for t in node.mask_tensors:
                visit(t)
        finished.add(id(node))
        in_progress.discard(id(node))
        ordered.append(node)

    for t in outputs:
        visit(t)

    node_depth, layer_depth = {}, {}
    in_graph = {id(n) for n in ordered}
    for node in reversed(ordered):
        depth = node_depth.setdefault(id(node), 0)
        depth = max(depth, layer_depth.get(id(node.operation), 0))
        layer_depth[id(node.operation)] = depth
        node_depth[id(node)] = depth
        for parent in node.parent_nodes:
            if id(parent) in in_graph:
                node_depth[id(parent)] = max(depth + 1, node_depth.get(id(parent), 0))
    # inputs not connected to the outputs still belong to the model
    for t in inputs:
        layer = t._keras_history.operation
        if id(layer) not in layer_depth:
            layer_depth[id(layer)] = 0
            layer_index[id(layer)] = (-1, layer)
            node = layer._inbound_nodes[t._keras_history.node_index]
            node_depth[id(node)] = 0
            ordered.insert(0, node)

    nodes_by_depth = collections.defaultdict(list)
    for node in ordered:
        nodes_by_depth[node_depth[id(node)]].append(node)
    by_depth = collections.defaultdict(list)
    for lid, depth in layer_depth.items():
        by_depth[depth].append(layer_index[lid])
    layers = []
    for depth in sorted(by_depth, reverse=True):
        layers += [layer for _, layer in sorted(by_depth[depth], key=lambda p: p[0])]
    names = [layer.name for layer in layers]
    for n in names:
        if names.count(n) > 1:
            raise ValueError(f'The name "{n}" is used {names.count(n)} times in the model. '
                             "All layer names should be unique.")
    return ordered, dict(nodes_by_depth), layers


def find_layer(layers, name=None, index=None):
    """Keras' get_layer over a list of layers."""
    if index is not None and name is not None:
        raise ValueError("Provide only a layer name or a layer index, not both")
    if index is not None:
        if not -len(layers) <= index < len(layers):
            raise ValueError(f"Was asked to retrieve layer at index {index} but model only "
                             f"has {len(layers)} layers.")
        return layers[index]
    for layer in layers:
        if layer.name == name:
            return layer
    raise ValueError(f"No such layer: {name}. Existing layers are: "
                     f"{[layer.name for layer in layers]}.")


def _add(grads, key, d):
    prev = grads.get(key)
    grads[key] = d if prev is None else prev + d


class Model(Trainer, Layer):
    """A model of layers connected from ``inputs`` to ``outputs`` (Keras'
    ``keras.Model(inputs, outputs, name=None)``).

    ``inputs``: an Input tensor or a list of them; ``outputs``: a tensor (the
    model returns an array) or a list (a list). Call it on arrays: one array,
    a list aligned with the inputs, or a dict by input name.

    >>> enc_in = Input((None, 5)); dec_in = Input((None, 5))
    >>> _, h, c = LSTM(5, return_state=True)(enc_in)
    >>> y = LSTM(5, return_sequences=True)(dec_in, initial_state=[h, c])
    >>> model = Model([enc_in, dec_in], Dense(5, activation="softmax")(y))
    """

    _call_args = ("training", "mask")

    def __init__(self, inputs=None, outputs=None, name=None, trainable=True, **kwargs):
        if inputs is None or outputs is None:
            raise TypeError("rnnkern.models.Model needs inputs= and outputs= (the functional "
                            "API); subclassed models are not supported")
        super().__init__(name=name if name is not None else auto_name("Functional"),
                         trainable=trainable, **kwargs)
        self._inputs_struct = inputs
        self._outputs_struct = outputs
        self._inputs = self._flat_tensors(inputs, "inputs")
        self._outputs = self._flat_tensors(outputs, "outputs")
        for t in self._inputs:
            if not getattr(t._keras_history.operation, "_is_input_layer", False):
                raise ValueError(f"Model inputs must come from rnnkern.layers.Input(); got "
                                 f"{t!r}")
        self._nodes, self._nodes_by_depth, self._layers = _map_graph(self._inputs,
                                                                     self._outputs)
        self._exec_nodes = [n for n in self._nodes if not n.is_input]
        self._check_computable()
        self._supports_masking = False
        self.built = True

    @staticmethod
    def _flat_tensors(s, what):
        if isinstance(s, dict):
            raise TypeError(f"Model {what} as a dict are not supported; pass a list")
        flat = flatten(s)
        for t in flat:
            if not isinstance(t, KerasTensor):
                raise TypeError(f"Model {what} must be symbolic tensors (from Input and layer "
                                f"calls), got {type(t).__name__}")
        return flat

    def _check_computable(self):
        known = {id(t) for t in self._inputs}
        for node in self._exec_nodes:
            for t in node.input_tensors + node.mask_tensors:
                if id(t) not in known:
                    raise ValueError(f"Graph disconnected: cannot obtain value for tensor {t!r} "
                                     f"at layer {node.operation.name!r}: it does not come from "
                                     "the model's inputs")
            known.update(id(t) for t in node.output_tensors)

    # ------------------------------------------------------------- structure
    def _graph(self):
        return self

    _graph_or_none = _graph

    @property
    def layers(self):
        return list(self._layers)

    def _sublayers(self):
        return self._layers

    @property
    def inputs(self):
        return list(self._inputs)

    @property
    def outputs(self):
        return list(self._outputs)

    @property
    def input(self):
        return self._inputs_struct

    @property
    def output(self):
        return self._outputs_struct

    @property
    def input_shape(self):
        shapes = [t.shape for t in self._inputs]
        return shapes[0] if len(shapes) == 1 else shapes

    @property
    def output_shape(self):
        shapes = [t.shape for t in self._outputs]
        return shapes[0] if len(shapes) == 1 else shapes

    def get_layer(self, name=None, index=None):
        """A layer by name or by index in ``layers`` (Keras' get_layer)."""
        return find_layer(self.layers, name, index)

    def compute_output_shape(self, input_shape):
        shapes = [t.shape for t in self._outputs]
        return shapes[0] if len(shapes) == 1 else shapes

    def _check_input_shape(self, input_shape):
        pass

    def _build_from_weights(self, weights):
        raise AssertionError("a functional model is always built")

    # ------------------------------------------------------------ forward
    def _standardize(self, inputs):
        names = [t._keras_history.operation.name for t in self._inputs]
        k = len(self._inputs)
        expected = ", ".join(f"{n} {format_shape(t.shape)}" for n, t in zip(names, self._inputs))
        if isinstance(inputs, dict):
            missing = [n for n in names if n not in inputs]
            extra = [n for n in inputs if n not in names]
            if missing or extra:
                raise ValueError(f"model {self.name!r} takes inputs {names}; the dict given "
                                 f"lacks {missing} and has unknown {extra}")
            values = [inputs[n] for n in names]
        elif isinstance(inputs, (list, tuple)):
            values = list(inputs)
        else:
            values = [inputs]
        if len(values) != k:
            raise ValueError(f"model {self.name!r} expects {k} input{'s' if k > 1 else ''} "
                             f"[{expected}], got {len(values)}")
        return [t._keras_history.operation._standardize(v) for t, v in zip(self._inputs, values)]

    def forward(self, inputs, training=None, mask=None):
        out, ctx, _ = self._forward_with_masks(inputs, training, mask)
        return out, ctx

    def _forward_with_masks(self, inputs, training=None, mask=None):
        """forward, and the masks of the outputs (a list; None where unmasked),
        which the training loop hands to the losses and metrics."""
        training = check_training(training)
        values, masks = {}, {}
        for t, v in zip(self._inputs, inputs):
            values[id(t)] = v
        n = {v.shape[0] for v in inputs if v.ndim}
        if len(n) > 1:
            raise ValueError(f"model {self.name!r}: the inputs have different batch sizes "
                             f"{[v.shape for v in inputs]}")
        if mask is not None:
            for t, m in zip(self._inputs, mask if isinstance(mask, (list, tuple)) else [mask]):
                masks[id(t)] = m
        node_ctxs = []
        # inference: chains of recurrent layers as a wavefront (models/wavefront.py)
        chains = wavefront.chains_of(self) if training is False else None
        done = set()
        for node in self._exec_nodes:
            if id(node) in done:
                continue
            if chains and id(node) in chains:
                chain = chains[id(node)]
                ran = wavefront.run(chain, values, masks)
                done.update(id(n) for n in chain[:ran])
                if ran:
                    continue
            outputs, ctx = self._run_node(node, values, masks, training)
            node_ctxs.append(ctx)
        out = pack_as(self._outputs_struct, [values[id(t)] for t in self._outputs])
        out_masks = [masks.get(id(t)) for t in self._outputs]
        if training is False:
            return out, None, out_masks
        return out, (node_ctxs, [v.shape for v in inputs], [v.dtype for v in inputs]), out_masks

    def _run_node(self, node, values, masks, training):
        layer = node.operation

        def value(t):
            return values[id(t)] if isinstance(t, KerasTensor) else t

        args = map_structure(value, node.call_args[0])
        kw = {}
        for k, v in node.call_kwargs.items():
            if k not in ("training", "mask"):
                kw[k] = map_structure(value, v)
        tr = node.call_kwargs.get("training")
        tr = training if tr is None else check_training(tr)
        # masks, as Keras' Layer.__call__: an explicit mask, else the mask of the
        # only tensor argument for layers that take one
        in_mask = map_structure(lambda t: masks.get(id(t)) if isinstance(t, KerasTensor)
                                else None, node.call_args[0])
        if all(m is None for m in flatten(in_mask)):
            in_mask = None
        call_mask = node.call_kwargs.get("mask")
        if call_mask is not None:
            call_mask = map_structure(value, call_mask)
        elif layer._call_has_mask_arg and not any(kw.get(k) is not None
                                                  for k in layer._tensor_kwargs):
            call_mask = in_mask
        if layer._call_has_mask_arg:
            kw["mask"] = call_mask
        previous_mask = call_mask if call_mask is not None else in_mask
        try:
            outputs, ctx = layer._run(args, tr, kw)
        except (ValueError, TypeError) as e:
            raise type(e)(f"in model {self.name!r}, layer {layer.name!r} "
                          f"({type(layer).__name__}): {e}") from e
        flat_out = flatten(outputs)
        if len(flat_out) != len(node.output_tensors):
            raise ValueError(f"layer {layer.name!r} returned {len(flat_out)} outputs where the "
                             f"graph recorded {len(node.output_tensors)}")
        out_masks = [None] * len(flat_out)
        if layer.supports_masking:
            m = layer.compute_mask(args, previous_mask)
            # one mask for several outputs goes to the first (Keras' _set_mask_metadata)
            out_masks = list(m) if isinstance(m, (list, tuple)) else \
                [m] + [None] * (len(flat_out) - 1)
        elif previous_mask is not None:
            warn_mask_dropped(layer)
        for t, v, m in zip(node.output_tensors, flat_out, out_masks):
            values[id(t)] = v
            if m is not None:
                masks[id(t)] = m
        return outputs, ctx

    # ----------------------------------------------------------- backward
    def _backward(self, ctx, d_outputs):
        """(d_inputs, {id(layer): summed grads}) of one forward."""
        node_ctxs, in_shapes, in_dtypes = ctx
        grads = {}
        flat_d = flatten(d_outputs) if isinstance(d_outputs, (list, tuple)) else [d_outputs]
        if len(flat_d) != len(self._outputs):
            raise ValueError(f"d_output of model {self.name!r} must have one entry per output "
                             f"({len(self._outputs)}), got {len(flat_d)}")
        for t, d in zip(self._outputs, flat_d):
            if d is not None:
                _add(grads, id(t), np.asarray(d))
        layer_grads = {}
        for node, lctx in zip(reversed(self._exec_nodes), reversed(node_ctxs)):
            d_outs = [grads.pop(id(t), None) for t in node.output_tensors]
            if all(d is None for d in d_outs):
                continue
            layer = node.operation
            d_in, g = layer.backward_from(lctx, pack_as(node.outputs, d_outs))
            acc = layer_grads.get(id(layer))
            # summed over the uses of a shared layer (None: a weight no gradient
            # reaches, BatchNormalization's moving statistics)
            layer_grads[id(layer)] = g if acc is None else [
                None if a is None else a + b for a, b in zip(acc, g)]
            flat_in = flatten(d_in) if isinstance(d_in, (list, tuple)) else [d_in]
            if len(flat_in) != len(node.input_tensors):
                raise AssertionError(f"layer {layer.name!r} returned {len(flat_in)} input "
                                     f"gradients for {len(node.input_tensors)} inputs")
            for t, d in zip(node.input_tensors, flat_in):
                if d is not None:
                    _add(grads, id(t), d)
        d_inputs = []
        for t, shape, dtype in zip(self._inputs, in_shapes, in_dtypes):
            d = grads.get(id(t))
            if d is None and dtype.kind == "f":
                d = np.zeros(shape, dtype)
            d_inputs.append(d)
        return d_inputs, layer_grads

    @staticmethod
    def _collect_grads(layer_grads, layers, publish):
        """The grads of ``layers`` (aligned with their weights) from the
        per-layer sums of ``_backward``; ``publish``: also set each layer's own
        ``grads`` (the shell's ``backward``)."""
        grads = []
        for layer in layers:
            g = layer_grads.get(id(layer))
            if g is None:
                g = [np.zeros_like(w) for w in layer.weights]
            if publish:
                layer._tls.grads = g
            grads += g
        return grads

    def backward_from(self, ctx, d_outputs):
        d_inputs, layer_grads = self._backward(ctx, d_outputs)
        return pack_as(self._inputs_struct, d_inputs), self._collect_grads(
            layer_grads, self._layers, False)

    def backward(self, d_output):
        """Backpropagate ``d_output`` (aligned with the outputs) through this
        thread's last call. Returns the inputs' gradients (None for integer
        inputs) and replaces ``grads`` (aligned with ``weights``) and every
        layer's ``grads``."""
        d_inputs, layer_grads = self._backward(self._last_ctx(), d_output)
        self._tls.grads = self._collect_grads(layer_grads, self._layers, True)
        return pack_as(self._inputs_struct, d_inputs)

    def summary(self, line_length=None, positions=None, print_fn=None, expand_nested=False,
                show_trainable=False, layer_range=None):
        """Print Keras 3's summary table (see ``rnnkern.models.summary``)."""
        print_summary(self, line_length=line_length, positions=positions, print_fn=print_fn,
                      expand_nested=expand_nested, show_trainable=show_trainable,
                      layer_range=layer_range)

    def get_config(self):
        return saving.functional_config(self)

    @classmethod
    def from_config(cls, config, custom_objects=None):
        return saving.functional_from_config(config, custom_objects)


Functional = Model
register_class(Model, "Functional")  # Keras' class name in a functional model's config

