"""Weight files and model configs.

``save_weights(obj, path)`` / ``load_weights(obj, path)`` (also the
``save_weights`` / ``load_weights`` methods of models and layers):

- ``.npz`` (any name not ending in ``.h5``): rnnkern's own format, NumPy only.
  One array per weight, keyed ``NNNN/<layer>/<weight>`` in ``weights`` order.
- ``.weights.h5`` (any name ending in ``.h5``): Keras 3's weights file, read
  and written with h5py (the optional extra ``rnnkern[h5]``), so weights move
  both ways between Keras and rnnkern models of the same architecture. Keras
  lays the file out by the model's structure, not by layer names:
  ``layers/<snake_case class name>[_k]/vars/<i>``, with ``cell/`` inside the
  recurrent layers, ``layer/`` inside TimeDistributed, ``forward_layer/`` and
  ``backward_layer/`` inside Bidirectional, ``layers/...`` inside nested models.

Files are written atomically: to a temporary file beside the target, then
renamed over it, so a failed save never leaves a truncated file. Loading checks
every weight's presence and shape before changing anything, and a mismatch
names the layer, the weight and both shapes.

``functional_config(model)`` / ``functional_from_config(config)``: Keras 3's
config of a functional model (its layers' configs and the graph's nodes).
"""
from __future__ import annotations

import os
import tempfile

import numpy as np

from .layers.base import (KerasTensor, Layer, deserialize_layer, flatten, map_structure,
                          serialize_layer, to_snake_case)

__all__ = ["save_weights", "load_weights", "functional_config", "functional_from_config"]


def _is_h5(path):
    return str(path).endswith(".h5")


def _h5py():
    try:
        import h5py
    except ImportError:
        raise ImportError("Keras .weights.h5 files need h5py, an optional extra of rnnkern: "
                          "pip install 'rnnkern[h5]' (or pip install h5py)") from None
    return h5py


def _atomic_write(path, write):
    """``write(tmp_path)`` then rename onto ``path``; the temporary file is
    removed if anything fails."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".rnnkern-", suffix=".tmp", dir=directory)
    os.close(fd)
    try:
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _check_built(obj):
    if not obj.built:
        raise ValueError(f"{type(obj).__name__} {obj.name!r} is not built yet, so it has no "
                         "weights: call it on data, or build it, first")


# ------------------------------------------------------- Keras' h5 layout

def _h5_slots(obj, prefix=""):
    """(dataset path, index into obj.weights) of every weight, in Keras'
    .weights.h5 layout."""
    from .layers.recurrent import _RNN
    from .layers.wrappers import Bidirectional, TimeDistributed
    from .models import Model, Sequential
    slots = []

    def walk(layer, prefix, base):
        if isinstance(layer, (Model, Sequential)):
            seen = {}
            i = base
            for sub in layer.layers:
                key = to_snake_case(type(sub).__name__)
                n = seen.get(key, 0)
                seen[key] = n + 1
                walk(sub, f"{prefix}layers/{key if n == 0 else f'{key}_{n}'}/", i)
                i += len(sub.weights)
        elif isinstance(layer, TimeDistributed):
            walk(layer.layer, prefix + "layer/", base)
        elif isinstance(layer, Bidirectional):
            walk(layer.forward_layer, prefix + "forward_layer/", base)
            walk(layer.backward_layer, prefix + "backward_layer/",
                 base + len(layer.forward_layer.weights))
        else:
            where = "cell/vars" if isinstance(layer, _RNN) else "vars"
            for j in range(len(layer._weight_names())):
                slots.append((f"{prefix}{where}/{j}", base + j))

    walk(obj, prefix, 0)
    return slots


def _write_h5(obj, tmp):
    h5py = _h5py()
    weights = obj.weights
    with h5py.File(tmp, "w") as f:
        for path, i in _h5_slots(obj):
            f.create_dataset(path, data=weights[i])
        f.require_group("vars").attrs["name"] = obj.name


def _read_h5(obj, path):
    h5py = _h5py()
    slots = _h5_slots(obj)
    arrays = [None] * len(obj.weights)
    with h5py.File(path, "r") as f:
        found = set()
        f.visititems(lambda name, item: found.add(name)
                     if isinstance(item, h5py.Dataset) else None)
        missing = [(p, i) for p, i in slots if p not in found]
        if missing:
            p, i = missing[0]
            raise ValueError(f"load_weights: {path!r} has no {p!r}, which holds weight "
                             f"{obj.weight_paths()[i]} of {type(obj).__name__} {obj.name!r} "
                             f"({len(missing)} of its {len(slots)} weights are missing): the "
                             "file is of another architecture")
        extra = sorted(found - {p for p, _ in slots} - {"optimizer"})
        extra = [e for e in extra if not e.startswith("optimizer/")]
        if extra:
            raise ValueError(f"load_weights: {path!r} holds weights the model does not have, "
                             f"e.g. {extra[0]!r} ({len(extra)} in all): the file is of "
                             "another architecture")
        for p, i in slots:
            arrays[i] = np.asarray(f[p])
    return arrays


# ---------------------------------------------------------------- public

def save_weights(obj, filepath, overwrite=True):
    """Write every weight of a model or layer to ``filepath`` (see the module
    docstring), atomically."""
    if not isinstance(obj, Layer):
        raise TypeError(f"save_weights needs an rnnkern model or layer, got "
                        f"{type(obj).__name__}")
    _check_built(obj)
    path = os.fspath(filepath)
    if not overwrite and os.path.exists(path):
        raise FileExistsError(f"save_weights: {path!r} exists and overwrite=False")
    if _is_h5(path):
        _h5py()
        _atomic_write(path, lambda tmp: _write_h5(obj, tmp))
        return
    named = {f"{i:04d}/{p}": w for i, (p, w) in enumerate(zip(obj.weight_paths(), obj.weights))}

    def write(tmp):
        with open(tmp, "wb") as f:
            np.savez(f, **named)
    _atomic_write(path, write)


def load_weights(obj, filepath, skip_mismatch=False):
    """Load the weights of ``filepath`` (rnnkern's .npz or Keras' .weights.h5)
    into a model or layer of the same architecture."""
    if not isinstance(obj, Layer):
        raise TypeError(f"load_weights needs an rnnkern model or layer, got "
                        f"{type(obj).__name__}")
    _check_built(obj)
    path = os.fspath(filepath)
    if not os.path.exists(path):
        raise FileNotFoundError(f"load_weights: no such file {path!r}")
    paths = obj.weight_paths()
    if _is_h5(path):
        arrays = _read_h5(obj, path)
        where = [f"{p} (in the file: {s})" for (s, _), p in
                 zip(sorted(_h5_slots(obj), key=lambda t: t[1]), paths)]
    else:
        with np.load(path, allow_pickle=False) as z:
            keys = sorted(z.files)
            arrays = [z[k] for k in keys]
        if len(arrays) != len(paths):
            raise ValueError(f"load_weights: {path!r} holds {len(arrays)} weights, "
                             f"{type(obj).__name__} {obj.name!r} has {len(paths)} {paths}")
        where = [f"{p} (in the file: {k.split('/', 1)[-1]})" for p, k in zip(paths, keys)]
    current = obj.weights
    for i, (a, w) in enumerate(zip(arrays, current)):
        if a.shape != w.shape:
            if skip_mismatch:
                arrays[i] = w
                continue
            raise ValueError(f"load_weights: weight {where[i]} has shape {a.shape} in "
                             f"{path!r}, but the model's has shape {w.shape}")
        if a.dtype.kind not in "fiu":
            raise TypeError(f"load_weights: weight {where[i]} in {path!r} has dtype {a.dtype}")
    obj.set_weights(arrays)


# ------------------------------------------------------ functional configs

def _tensor_config(t, reindex):
    h = t._keras_history
    return {"class_name": "__keras_tensor__",
            "config": {"shape": list(t.shape), "dtype": t.dtype,
                       "keras_history": [h.operation.name, reindex[id(h.operation._inbound_nodes[
                           h.node_index])], h.tensor_index]}}


def functional_config(model):
    """Keras 3's get_config() of a functional model."""
    node_ids = {id(n) for n in model._nodes}
    reindex = {}
    for layer in model.layers:
        k = 0
        for node in layer._inbound_nodes:
            if id(node) in node_ids:
                reindex[id(node)] = k
                k += 1

    def arg(v):
        return map_structure(lambda x: _tensor_config(x, reindex) if isinstance(x, KerasTensor)
                             else x, v)

    layers = []
    for layer in model.layers:
        entry = serialize_layer(layer)
        entry["name"] = layer.name
        entry["inbound_nodes"] = [
            {"args": [arg(a) for a in node.call_args], "kwargs": arg(node.call_kwargs)}
            for node in layer._inbound_nodes if id(node) in node_ids and not node.is_input]
        layers.append(entry)

    def ref(t):
        h = t._keras_history
        return [h.operation.name, reindex[id(h.operation._inbound_nodes[h.node_index])],
                h.tensor_index]

    return {"name": model.name, "trainable": model.trainable, "layers": layers,
            "input_layers": [ref(t) for t in model._inputs],
            "output_layers": [ref(t) for t in model._outputs]}


def functional_from_config(config, custom_objects=None):
    """A functional model from Keras 3's config (its layers are created anew)."""
    from .models import Model
    created, outputs_of = {}, {}   # layer name -> layer; (name, node) -> outputs
    pending = []
    for entry in config["layers"]:
        layer = deserialize_layer(entry, custom_objects)
        name = entry.get("name", layer.name)
        created[name] = layer
        if getattr(layer, "_is_input_layer", False):
            outputs_of[(name, 0)] = [layer.output]
        for k, node in enumerate(entry.get("inbound_nodes") or []):
            pending.append((name, k, node))

    def resolve(v):
        def leaf(x):
            if isinstance(x, dict) and x.get("class_name") == "__keras_tensor__":
                lname, ni, ti = x["config"]["keras_history"]
                outs = outputs_of.get((lname, ni))
                if outs is None:
                    raise LookupError
                return outs[ti]
            return x
        if isinstance(v, dict) and v.get("class_name") == "__keras_tensor__":
            return leaf(v)
        if isinstance(v, dict):
            return {k: resolve(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [resolve(x) for x in v]
        return leaf(v)

    while pending:
        progress, rest = False, []
        for name, k, node in pending:
            try:
                args = resolve(node.get("args", []))
                kwargs = resolve(node.get("kwargs", {}))
            except LookupError:
                rest.append((name, k, node))
                continue
            out = created[name](*args, **kwargs)
            outputs_of[(name, k)] = flatten(out)
            progress = True
        if not progress:
            raise ValueError("the model config's graph cannot be rebuilt: layers "
                             f"{sorted({n for n, _, _ in rest})} wait on inputs that never come")
        pending = rest

    def tensors(refs):
        if refs and not isinstance(refs[0], (list, tuple)):
            refs = [refs]
        return [outputs_of[(n, i)][t] for n, i, t in refs]

    ins, outs = tensors(config["input_layers"]), tensors(config["output_layers"])
    return Model(ins if len(ins) > 1 else ins[0], outs if len(outs) > 1 else outs[0],
                 name=config.get("name"), trainable=config.get("trainable", True))
