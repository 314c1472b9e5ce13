"""``model.summary()``: the table Keras 3 prints (keras/src/utils/
summary_utils.py), character for character, without its dependency on rich.

Keras renders the table with rich: a box with heavy header lines, one row
per layer (``name (Type)``, output shape, parameter count, and "Connected to"
for functional models that are not a plain chain), a rule between rows, cells
word-wrapped to the column width (a word too long for its column cut with
"…"), then the Total / Trainable / Non-trainable parameter counts with
thousands separators and their size. The column widths follow Keras' line
length (88 or 108, at most the terminal width - 4) and positions, shrunk the
way rich shrinks a table that does not fit (tests/test_models.py compares the
text with Keras' own where Keras is installed).
"""
from __future__ import annotations

import re
import shutil
import sys

from ..layers.base import format_shape
from ..utils.registry import registered_class

__all__ = ["print_summary", "summary_text"]

_WORD = re.compile(r"\s*\S+\s*")
_TRAILING_SPACE = re.compile(r"\s+$")


def _ratio_reduce(total, ratios, maximums, values):
    """Take ``total`` off ``values`` in proportion to ``ratios`` (rich's rule,
    Python rounding included)."""
    ratios = [r if m else 0 for r, m in zip(ratios, maximums)]
    total_ratio = sum(ratios)
    if not total_ratio:
        return list(values)
    remaining, out = total, []
    for r, m, v in zip(ratios, maximums, values):
        if r and total_ratio > 0:
            d = min(m, round(r * remaining / total_ratio))
            out.append(v - d)
            remaining -= d
            total_ratio -= r
        else:
            out.append(v)
    return out


def _wrap(text, width, justify):
    """A cell's text as lines of exactly ``width`` characters: word-wrapped,
    over-long words cut with an ellipsis, justified left or right."""
    breaks, offset = [], 0
    for m in _WORD.finditer(text):
        start, word = m.start(), m.group(0)
        length = len(word.rstrip())
        if width - offset >= length:
            offset += len(word)
        elif length > width:  # a word no line can hold: alone on its line, cut below
            if start:
                breaks.append(start)
            offset = len(word)
        elif offset and start:
            breaks.append(start)
            offset = len(word)
    pieces = [text[a:b] for a, b in zip([0] + breaks, breaks + [len(text)])] or [""]
    lines = []
    for line in pieces:
        if len(line) > width:  # whitespace past the width goes first
            ws = _TRAILING_SPACE.search(line)
            if ws is not None:
                line = line[:len(line) - min(len(ws.group(0)), len(line) - width)]
        if justify != "left":
            line = line.rstrip()
        if len(line) > width:
            line = line[:width - 1] + "…"
        if justify == "center":
            line = " " * ((width - len(line)) // 2) + line
        lines.append(line.rjust(width) if justify == "right" else line.ljust(width))
    return lines


def _table(header, rows, widths, justify):
    """The box-drawn table (rich's HEAVY_HEAD box, a rule between rows)."""
    inner = [w - 2 for w in widths]

    def rule(left, fill, mid, right):
        return left + mid.join(fill * w for w in widths) + right

    def row_lines(cells, edge, bottom=False):
        cols = [_wrap(c, w, j) for c, w, j in zip(cells, inner, justify)]
        height = max(len(c) for c in cols)
        # rich aligns the header cells to the bottom, the others to the top
        cols = [([" " * w] * (height - len(c)) + c) if bottom else
                (c + [" " * w] * (height - len(c))) for c, w in zip(cols, inner)]
        return [edge + edge.join(f" {col[i]} " for col in cols) + edge for i in range(height)]

    out = [rule("┏", "━", "┳", "┓")]
    out += row_lines(header, "┃", bottom=True)
    out.append(rule("┡", "━", "╇", "┩"))
    for i, r in enumerate(rows):
        if i:
            out.append(rule("├", "─", "┼", "┤"))
        out += row_lines(r, "│")
    out.append(rule("└", "─", "┴", "┘"))
    return out


def _layer_shape(layer):
    """Keras' format_layer_shape: the output shape(s) of the layer's last
    graph node, or from its build shape, or "?"."""
    if layer._inbound_nodes:
        outs = layer._inbound_nodes[-1].output_tensors
        shapes = [format_shape(t.shape) for t in outs]
    elif layer._build_shapes is not None:
        try:
            out = layer.compute_output_shape(layer._build_shapes)
        except (NotImplementedError, ValueError, TypeError):
            return "?"
        shapes = [format_shape(s) for s in (out if isinstance(out, list) else [out])]
    else:
        return "?"
    return shapes[0] if len(shapes) == 1 else "[" + ", ".join(shapes) + "]"


def _readable_size(nbytes):
    for unit in ("B", "KB", "MB", "GB", "TB", "PB"):
        if nbytes / 1024 < 1:
            return f"{nbytes:.2f} {unit}"
        nbytes /= 1024
    return f"{nbytes:.2f} PB"


def _count(weights):
    unique = {id(w): w for w in weights}.values()
    n = sum(int(w.size) for w in unique)
    return n, sum(int(w.size) * w.dtype.itemsize * 8 for w in unique) / 8


def _is_sequential_like(model):
    # Sequential by the registry: sequential.py imports this module
    if isinstance(model, registered_class("Sequential")):
        return True, model.layers, []
    nodes = [n for v in model._nodes_by_depth.values() for n in v]
    for v in model._nodes_by_depth.values():
        if len(v) > 1 or (len(v) == 1 and len(v[0].input_tensors) > 1):
            return False, model.layers, nodes
    node_ids = {id(n) for n in nodes}
    for layer in model.layers:
        if sum(1 for n in layer._inbound_nodes if id(n) in node_ids) > 1:
            return False, model.layers, nodes
    return True, model.layers, nodes


def _layer_range(layers, layer_range):
    if layer_range is None:
        return 0, len(layers)
    if len(layer_range) != 2 or not all(isinstance(s, str) for s in layer_range):
        raise ValueError(f"layer_range must be a list or tuple of two strings (layer names "
                         f"or regexes), got {layer_range!r}")
    lo = [i for i, l in enumerate(layers) if re.match(layer_range[0], l.name)]
    hi = [i for i, l in enumerate(layers) if re.match(layer_range[1], l.name)]
    if not lo or not hi:
        raise ValueError(f"Passed layer_names do not match the layer names in the model. "
                         f"Received: {layer_range}")
    if min(lo) > max(hi):
        return min(hi), max(lo) + 1
    return min(lo), max(hi) + 1


def summary_text(model, line_length=None, positions=None, expand_nested=False,
                 show_trainable=False, layer_range=None):
    """The text ``summary()`` prints (ending with a newline)."""
    sequential_like, layers, nodes = _is_sequential_like(model)
    if sequential_like:
        default_length, default_positions = 88, [0.45, 0.80, 1.0]
        header = ["Layer (type)", "Output Shape", "Param #"]
        justify = ["left", "left", "right"]
    else:
        default_length, default_positions = 108, [0.3, 0.56, 0.74, 1.0]
        header = ["Layer (type)", "Output Shape", "Param #", "Connected to"]
        justify = ["left", "left", "right", "left"]
    positions = list(positions or default_positions)
    if show_trainable:
        default_length += 12
        positions = [p * 0.90 for p in positions] + [1.0]
        header.append("Trainable")
        justify.append("center")
    default_length = min(default_length, shutil.get_terminal_size().columns - 4)
    line_length = line_length or default_length
    widths, current = [], 0
    for pos in positions:
        w = int(pos * line_length) - current
        if w < 4:
            raise ValueError("Insufficient console width to print summary.")
        widths.append(w)
        current += w
    # rich: each column is its width plus one space of padding on each side; a
    # table wider than line_length less its borders is reduced evenly
    widths = [w + 2 for w in widths]
    avail = line_length - (len(widths) + 1)
    if sum(widths) > avail:
        widths = _ratio_reduce(sum(widths) - avail, [1] * len(widths), widths, widths)
    node_ids = {id(n) for n in nodes}

    def connections(layer):
        parts = []
        for node in layer._inbound_nodes:
            if node_ids and id(node) not in node_ids:
                continue
            for t in node.input_tensors + node.mask_tensors:
                h = t._keras_history
                parts.append(f"{h.operation.name}[{h.node_index}][{h.tensor_index}]")
        return ", ".join(parts) or "-"

    def fields(layer, prefix):
        params = f"{layer.count_params():,}" if layer.built else "0 (unbuilt)"
        row = [f"{prefix}{layer.name} ({type(layer).__name__})", _layer_shape(layer), params]
        if not sequential_like:
            row.append(connections(layer))
        if show_trainable:
            row.append(("Y" if layer.trainable else "N") if layer.weights else "-")
        return row

    def rows_of(layer, level=0):
        rows = [fields(layer, "   " * level + "└ " if level else "")]
        if expand_nested and hasattr(layer, "layers") and layer.layers:
            for sub in layer.layers:
                rows += rows_of(sub, level + 1)
        return rows

    lo, hi = _layer_range(layers, layer_range)
    rows = [r for layer in layers[lo:hi] for r in rows_of(layer)]
    table = _table(header, rows, widths, justify)

    trainable, trainable_size = _count(model.trainable_weights)
    non_trainable, non_trainable_size = _count(model.non_trainable_weights)
    total, total_size = trainable + non_trainable, trainable_size + non_trainable_size
    opt = getattr(model, "optimizer", None)
    opt_vars = list(getattr(opt, "variables", []) or []) if opt is not None and \
        getattr(opt, "built", False) else []
    lines = [f'Model: "{model.name}"'] + table
    if opt_vars:
        n_opt, opt_size = _count(opt_vars)
        total, total_size = total + n_opt, total_size + opt_size
    lines += [f" Total params: {total:,} ({_readable_size(total_size)})",
              f" Trainable params: {trainable:,} ({_readable_size(trainable_size)})",
              f" Non-trainable params: {non_trainable:,} ({_readable_size(non_trainable_size)})"]
    if opt_vars:
        lines.append(f" Optimizer params: {n_opt:,} ({_readable_size(opt_size)})")
    return "\n".join(lines) + "\n"


def print_summary(model, line_length=None, positions=None, print_fn=None, expand_nested=False,
                  show_trainable=False, layer_range=None):
    """Print ``summary_text`` to stdout, or hand it to ``print_fn`` (called once
    with the whole text, as Keras does)."""
    text = summary_text(model, line_length=line_length, positions=positions,
                        expand_nested=expand_nested, show_trainable=show_trainable,
                        layer_range=layer_range)
    if print_fn is not None:
        print_fn(text)
    else:
        sys.stdout.write(text)
        sys.stdout.flush()
