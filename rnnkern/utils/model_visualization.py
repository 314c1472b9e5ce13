"""``plot_model`` / ``model_to_dot``: a model's graph drawn with pydot and
Graphviz, as Keras 3 draws it (keras/src/utils/model_visualization.py,
``keras.utils.plot_model``).

One box per layer (an HTML table: the class, or ``name (Class)``; optionally
its activation, input and output shapes, output dtype, trainable or not), an
edge for every tensor a layer takes from another in the model's graph
(functional models: their nodes, InputLayers included; Sequential: each layer
to the next). With ``expand_nested`` a nested model is a dashed cluster of its
own layers, and edges go to the layer inside it that takes the input and from
the one that makes the output.

Where rnnkern differs from Keras 3: node ids are numbers in drawing order
(Keras uses ``id(layer)``), so the DOT text is the same at every run; names
are HTML-escaped in the labels; with ``expand_nested`` a wrapper
(Bidirectional, TimeDistributed) is a cluster of the layer(s) it wraps too
(Keras 3 draws it as one box); a layer never called on symbolic tensors (a
wrapped one) shows the shapes it was built for rather than "?".

pydot (``pip install pydot``, or ``pip install 'rnnkern[plot]'``) and
Graphviz's ``dot`` program (``apt-get install graphviz``, ``brew install
graphviz``, https://graphviz.org/download/; ``pip install graphviz`` does not
install it) are optional: without them these functions raise an ImportError
saying what to install. ``model_to_dot`` needs pydot only.
"""
from __future__ import annotations

import html
import os
import sys

from .file_utils import atomic_write
from .registry import registered_class

__all__ = ["plot_model", "model_to_dot"]

_INSTALL_PYDOT = ("pip install pydot (or pip install 'rnnkern[plot]'; pydot_ng and pydotplus "
                  "work too)")
_INSTALL_DOT = ("Graphviz's `dot` program on the PATH: apt-get install graphviz, brew install "
                "graphviz, or https://graphviz.org/download/ (pip install graphviz does not "
                "install it)")
_RANKDIRS = ("TB", "LR", "BT", "RL")


def _pydot():
    """The pydot module (or its forks pydot_ng / pydotplus), or None."""
    for name in ("pydot", "pydot_ng", "pydotplus"):
        try:
            return __import__(name)
        except ImportError:
            continue
    return None


def check_pydot():
    """Whether pydot can be imported."""
    return _pydot() is not None


def check_graphviz():
    """Whether pydot can run Graphviz's ``dot`` (it draws an empty graph)."""
    pydot = _pydot()
    if pydot is None:
        return False
    try:
        pydot.Dot.create(pydot.Dot())
        return True
    except (OSError, getattr(pydot, "PydotException", OSError)):
        return False
    except Exception:  # pydot forks raise their own kinds when dot is missing
        return False


def _require_pydot(what):
    pydot = _pydot()
    if pydot is None:
        raise ImportError(f"{what} needs pydot, which is not installed: {_INSTALL_PYDOT}; "
                          f"rendering an image also needs {_INSTALL_DOT}")
    return pydot


def _check_built(model):
    if not getattr(model, "built", False):
        raise ValueError("This model has not yet been built. Build the model first by calling "
                         "`build()` or by calling the model on a batch of data.")


def _check_kwargs(kwargs):
    if kwargs.pop("layer_range", None) is not None:
        raise ValueError("Argument `layer_range` is no longer supported.")
    if kwargs:
        raise ValueError(f"Unrecognized keyword arguments: {kwargs}")


# ----------------------------------------------------------------- labels

def _structure(tensors, attr):
    """``attr`` of each tensor of a structure (Keras' map_structure)."""
    if isinstance(tensors, (list, tuple)):
        return type(tensors)(_structure(t, attr) for t in tensors)
    return getattr(tensors, attr)


def _io(layer, kinds):
    """(input, output) of a layer for its label: a functional model's own
    inputs/outputs (Keras' Functional.input), else its first call's tensors (one
    tensor stands alone, as Keras' Operation.input gives it), else (a layer never
    called on symbolic tensors) None."""
    if isinstance(layer, kinds[0]):
        return layer.input, layer.output
    nodes = getattr(layer, "_inbound_nodes", None)
    if not nodes:
        return None, None
    ins = list(nodes[0].input_tensors) + list(nodes[0].mask_tensors)
    outs = list(nodes[0].output_tensors)
    return (ins[0] if len(ins) == 1 else ins), (outs[0] if len(outs) == 1 else outs)


def _built_shapes(layer):
    """(input, output) shapes of a layer built without a symbolic call."""
    shapes = getattr(layer, "_build_shapes", None)
    if shapes is None:
        return None, None
    try:
        return shapes, layer.compute_output_shape(shapes)
    except Exception:  # a layer that cannot say: "?" as Keras shows it
        return shapes, None


def _escape(text):
    return html.escape(text, quote=False)


def _format_shape(shape):
    if shape is None:
        return "?"
    if isinstance(shape, dict):
        text = ", ".join(f"{k}: {v}" for k, v in shape.items())
    else:
        text = f"{shape}"
    return _escape(text.replace("}", "").replace("{", ""))


def _activation_name(activation):
    for attr in ("name", "__name__"):
        if hasattr(activation, attr):
            return str(getattr(activation, attr))
    return str(activation)


def _cell(text, size=14, bg="white", color=None):
    font = f'<font point-size="{size}"' + (f' color="{color}"' if color else "") + ">"
    return f'<td bgcolor="{bg}">{font}{text}</font></td>'


def _label(layer, opts, kinds):
    """Keras' HTML-table label of a layer's box."""
    # a functional model is a Functional in Keras (rnnkern's Functional is Model)
    class_name = "Functional" if type(layer) is kinds[0] else type(layer).__name__
    spans = int(opts["show_dtype"]) + int(opts["show_trainable"]) + 2 * opts["show_shapes"]
    span = max(1, spans)
    title = (f"<b>{_escape(layer.name)}</b> ({class_name})" if opts["show_layer_names"]
             else f"<b>{class_name}</b>")
    rows = [f'<tr><td colspan="{span}" bgcolor="black"><font point-size="16" color="white">'
            f"{title}</font></td></tr>"]
    activation = getattr(layer, "activation", None)
    if opts["show_layer_activations"] and activation is not None:
        rows.append(f'<tr><td bgcolor="white" colspan="{span}"><font point-size="14">'
                    f"Activation: <b>{_escape(_activation_name(activation))}</b>"
                    "</font></td></tr>")
    cols = []
    if opts["show_shapes"] or opts["show_dtype"]:
        ins, outs = _io(layer, kinds)
    if opts["show_shapes"]:
        if ins is None and outs is None:
            in_shape, out_shape = _built_shapes(layer)
        else:
            in_shape, out_shape = _structure(ins, "shape"), _structure(outs, "shape")
        if class_name != "InputLayer":
            cols.append(_cell(f"Input shape: <b>{_format_shape(in_shape)}</b>"))
        cols.append(_cell(f"Output shape: <b>{_format_shape(out_shape)}</b>"))
    if opts["show_dtype"]:
        dtype = _structure(outs, "dtype") if outs is not None else None
        cols.append(_cell(f"Output dtype: <b>{_escape(str(dtype or '?'))}</b>"))
    if opts["show_trainable"] and layer.weights:
        cols.append(_cell("<b>Trainable</b>", bg="forestgreen", color="white") if layer.trainable
                    else _cell("<b>Non-trainable</b>", bg="firebrick", color="white"))
    if cols:
        rows.append(f"<tr>{''.join(cols)}</tr>")
    return ('<<table border="0" cellborder="1" bgcolor="black" cellpadding="10">'
            + "".join(rows) + "</table>>")


# ------------------------------------------------------------------ graph

class _Drawing:
    """What one drawing shares across its clusters: pydot, the options, the
    model kinds and a number for each layer's box."""

    def __init__(self, pydot, opts, expand_nested):
        self.pydot, self.opts, self.expand = pydot, opts, expand_nested
        # the model classes by the registry (rnnkern.models imports this package)
        self.kinds = (registered_class("Functional"), registered_class("Sequential"))
        self._ids = {}

    def node_id(self, layer):
        return self._ids.setdefault(id(layer), str(len(self._ids) + 1))

    def node(self, layer):
        node = self.pydot.Node(self.node_id(layer), label=_label(layer, self.opts, self.kinds))
        node.set("fontname", "Helvetica")
        node.set("border", "0")
        node.set("margin", "0")
        return node

    def edge(self, dot, src, dst):
        a, b = self.node_id(src), self.node_id(dst)
        if not dot.get_edge(a, b):
            e = self.pydot.Edge(a, b)
            e.set("penwidth", "2")
            dot.add_edge(e)

    def is_model(self, layer):
        return isinstance(layer, self.kinds)

    def is_wrapper(self, layer):
        """A layer made of others that is not a model (Bidirectional, TimeDistributed)."""
        return not self.is_model(layer) and bool(layer._sublayers())

    def expands(self, layer):
        return self.expand and (self.is_model(layer) or self.is_wrapper(layer))

    # the boxes an edge ends at inside an expanded model or wrapper
    def sources(self, layer, index):
        if not self.expand:
            return [layer]
        if self.is_model(layer):
            h = layer.outputs[index]._keras_history
            return self.sources(h.operation, h.tensor_index)
        if self.is_wrapper(layer):
            return [s for sub in layer._sublayers() for s in self.sources(sub, 0)]
        return [layer]

    def destinations(self, layer, index):
        if not self.expand:
            return [layer]
        if isinstance(layer, self.kinds[0]):
            return self.destinations(layer.inputs[index]._keras_history.operation, 0)
        if isinstance(layer, self.kinds[1]):
            return self.destinations(layer.layers[0], index)
        if self.is_wrapper(layer):
            return [d for sub in layer._sublayers() for d in self.destinations(sub, index)]
        return [layer]

    def cluster(self, name, label):
        c = self.pydot.Cluster(style="dashed", graph_name=name)
        c.set("label", label)
        c.set("labeljust", "l")
        return c

    def add_box(self, dot, layer):
        """The layer's box, or its cluster when it is expanded."""
        if self.expands(layer) and self.is_model(layer):
            dot.add_subgraph(self.draw(layer, subgraph=True))
        elif self.expands(layer):
            c = self.cluster(layer.name, f"{layer.name} ({type(layer).__name__})")
            for sub in layer._sublayers():
                self.add_box(c, sub)
            dot.add_subgraph(c)
        else:
            dot.add_node(self.node(layer))

    def draw(self, model, subgraph=False, rankdir="TB", dpi=200, splines="ortho"):
        pydot = self.pydot
        if subgraph:
            dot = self.cluster(model.name, model.name)
        else:
            dot = pydot.Dot()
            dot.set("rankdir", rankdir)
            dot.set("concentrate", True)
            dot.set("dpi", dpi)
            dot.set("splines", splines)
            dot.set_node_defaults(shape="record")
        Model, Sequential = self.kinds
        if isinstance(model, Sequential):
            layers = model.layers
        elif isinstance(model, Model):
            layers = model.layers  # InputLayers included, in Keras' order
        else:  # a single layer: one box
            dot.add_node(self.node(model))
            return dot
        for layer in layers:
            self.add_box(dot, layer)
        if isinstance(model, Sequential):
            if not self.expand:
                for a, b in zip(layers, layers[1:]):
                    self.edge(dot, a, b)
                return dot
            # the first layer's input is the InputLayer, not drawn for a Sequential
            graph, layers = model._graph(), layers[1:]
        else:
            graph = model
        in_graph = {id(n) for n in graph._nodes}
        for layer in layers:
            for node in layer._inbound_nodes:
                if id(node) not in in_graph:
                    continue  # a call of a shared layer in another model
                for i, t in enumerate(list(node.input_tensors) + list(node.mask_tensors)):
                    h = t._keras_history
                    if h is None or h.operation is None:
                        continue
                    for src in self.sources(h.operation, h.tensor_index):
                        for dst in self.destinations(layer, i):
                            self.edge(dot, src, dst)
        return dot


def model_to_dot(model, show_shapes=False, show_dtype=False, show_layer_names=True, rankdir="TB",
                 expand_nested=False, dpi=200, subgraph=False, show_layer_activations=False,
                 show_trainable=False, splines="ortho", **kwargs):
    """The model's graph as a ``pydot.Dot`` (a ``pydot.Cluster`` with
    ``subgraph=True``), as Keras 3's ``keras.utils.model_to_dot``: see
    ``plot_model`` for the arguments (``show_layer_names`` is True here by
    default, as in Keras). Needs pydot only.

    >>> print(model_to_dot(model, show_shapes=True).to_string())
    """
    _check_built(model)
    pydot = _require_pydot("model_to_dot")
    _check_kwargs(kwargs)
    if rankdir not in _RANKDIRS:
        raise ValueError(f"rankdir must be one of {_RANKDIRS}, got {rankdir!r}")
    opts = {"show_layer_names": show_layer_names, "show_layer_activations": show_layer_activations,
            "show_dtype": show_dtype, "show_shapes": show_shapes,
            "show_trainable": show_trainable}
    return _Drawing(pydot, opts, expand_nested).draw(model, subgraph=subgraph, rankdir=rankdir,
                                                     dpi=dpi, splines=splines)


def _in_ipython():
    """Whether an IPython shell or kernel runs this (Keras tests whether IPython's
    magics were imported, which any library importing IPython also does)."""
    ipython = sys.modules.get("IPython")
    get = getattr(ipython, "get_ipython", None)
    return get is not None and get() is not None


def plot_model(model, to_file="model.png", show_shapes=False, show_dtype=False,
               show_layer_names=False, rankdir="TB", expand_nested=False, dpi=200,
               show_layer_activations=False, show_trainable=False, splines="ortho", **kwargs):
    """Draw the model's graph into ``to_file`` (Keras 3's ``keras.utils.plot_model``).

    ``to_file``'s extension picks the format (png without one; svg, pdf, dot,
    ... any Graphviz output format); ``show_shapes`` / ``show_dtype`` /
    ``show_layer_names`` / ``show_layer_activations`` / ``show_trainable``: what
    each box shows besides the layer's class; ``rankdir``: "TB" (top to
    bottom) or "LR" (left to right, also "BT", "RL"); ``expand_nested``: nested
    models and wrappers as clusters of their layers; ``dpi``; ``splines``:
    Graphviz's edge style ("ortho", "curved", "polyline", "spline", "line").
    Returns an ``IPython.display.Image`` (an ``SVG`` for .svg) where IPython is
    installed, for the formats it shows (None otherwise; Keras fails on an svg
    or a file name without an extension).

    Needs pydot and Graphviz's ``dot``: an ImportError says what to install (in
    a notebook the message is printed instead, as Keras does).

    >>> plot_model(model, "model.png", show_shapes=True)
    """
    _check_built(model)
    for ok, what in ((check_pydot, f"pydot: {_INSTALL_PYDOT}"),
                     (check_graphviz, f"Graphviz: {_INSTALL_DOT}")):
        if not ok():
            message = f"plot_model needs {what}"
            if _in_ipython():
                print(message)  # Keras does not fail a notebook over it
                return None
            raise ImportError(message)
    _check_kwargs(kwargs)
    dot = model_to_dot(model, show_shapes=show_shapes, show_dtype=show_dtype,
                       show_layer_names=show_layer_names, rankdir=rankdir,
                       expand_nested=expand_nested, dpi=dpi,
                       show_layer_activations=show_layer_activations,
                       show_trainable=show_trainable, splines=splines)
    to_file = os.fspath(to_file)
    extension = os.path.splitext(to_file)[1][1:].lower() or "png"
    formats = getattr(dot, "formats", None)
    if extension == "raw":
        data = dot.to_string().encode("utf-8")
    elif formats is not None and extension not in formats:
        raise ValueError(f"to_file {to_file!r}: Graphviz writes no {extension!r} files (use one "
                         f"of {sorted(formats)}, or 'raw' for the DOT text)")
    else:
        data = dot.create(prog="dot", format=extension)
    def write(tmp):
        with open(tmp, "wb") as f:
            f.write(data)

    atomic_write(to_file, write)   # a temporary file renamed onto to_file
    try:
        from IPython import display
    except ImportError:
        return None
    if extension == "svg":
        return display.SVG(filename=to_file)
    if extension in ("png", "jpg", "jpeg", "gif"):  # what IPython's Image embeds
        return display.Image(filename=to_file, format=extension)
    return None
