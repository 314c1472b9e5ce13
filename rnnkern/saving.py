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

import datetime
import io
import json
import os
import tempfile
import zipfile

import numpy as np

from . import losses, optimizers
from ._version import __version__
from .layers.base import KerasTensor, Layer
from .layers.recurrent import _RNN
from .layers.wrappers import Bidirectional, TimeDistributed
from .utils.naming import to_snake_case
from .utils.registry import deserialize_layer, registered_class, serialize_layer
from .utils.tree import flatten, map_structure

__all__ = ["save_weights", "load_weights", "save_model", "load_model", "functional_config",
           "functional_from_config"]


def _models():
    """(Model, Sequential), found through the class registry rather than
    imported: rnnkern.models imports this module (load_model, Model.save,
    Model.get_config), so importing it here would tie the two into a circle."""
    return registered_class("Model"), registered_class("Sequential")


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
    Model, Sequential = _models()
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
    Model, _ = _models()
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


# ------------------------------------------------------------ whole models
#
# ``model.save(path)`` / ``load_model(path)``:
#
# - ``.keras``: Keras 3's format, a zip of ``metadata.json``, ``config.json``
#   (the model's class and config, its build and compile configs) and
#   ``model.weights.h5`` (the weights in Keras' h5 layout, the optimizer's
#   variables under ``optimizer/vars``). Needs h5py. Files Keras wrote load
#   here for the layers rnnkern has, without Keras installed.
# - ``.rnnkern``: the same zip with ``model.weights.npz`` and
#   ``optimizer.npz`` instead of the h5 file: NumPy only.

_KERAS_FORMAT_VERSION = "3.0.0"


def _model_class_name(model):
    _, Sequential = _models()
    return "Sequential" if isinstance(model, Sequential) else "Functional"


def _jsonable(v):
    """Configs as JSON: tuples to lists, NumPy scalars to Python."""
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, np.ndarray):
        return v.tolist()
    return v


def compile_config(model):
    """Keras' compile_config of a compiled model (optimizer serialized)."""
    cfg = dict(model._compile_config)
    cfg["optimizer"] = optimizers.serialize(model.optimizer)
    loss = cfg.get("loss")
    if loss is not None and not isinstance(loss, (str, list, tuple, dict)):
        cfg["loss"] = losses.serialize(loss)
    for key in ("metrics", "weighted_metrics"):
        m = cfg.get(key)
        if m is not None:
            cfg[key] = [x if isinstance(x, str) else getattr(x, "name", str(x))
                        for x in (m if isinstance(m, (list, tuple)) else [m])]
    return cfg


def compile_from_config(model, config):
    cfg = dict(config)
    known = ("optimizer", "loss", "loss_weights", "metrics", "weighted_metrics", "run_eagerly",
             "steps_per_execution", "jit_compile", "auto_scale_loss")
    model.compile(**{k: v for k, v in cfg.items() if k in known})


def _optimizer_variables(opt):
    return [np.asarray(v) for v in opt.variables] if opt is not None and opt.built else []


def _set_optimizer_variables(model, arrays):
    """Restore the optimizer's variables (Keras' order) after a load."""
    opt = model.optimizer
    if opt is None or not arrays:
        return
    if not opt.built:
        opt.build([l._params[n] for l, n in model._slots(trainable_only=True)])
    current = opt.variables
    if len(current) != len(arrays):
        raise ValueError(f"the file holds {len(arrays)} optimizer variables, the model's "
                         f"{type(opt).__name__} has {len(current)}")
    opt.set_variables(arrays)


def _model_config(model):
    cfg = {"module": "keras", "class_name": _model_class_name(model),
           "config": _jsonable(model.get_config()), "registered_name": None}
    try:
        shape = model.input_shape
        cfg["build_config"] = {"input_shape": _jsonable(shape)}
    except (ValueError, AttributeError):
        pass
    if getattr(model, "compiled", False):
        cfg["compile_config"] = _jsonable(compile_config(model))
    return cfg


def save_model(model, filepath, overwrite=True):
    """Write ``model`` to ``filepath`` (``.keras`` or ``.rnnkern``), atomically."""
    path = os.fspath(filepath)
    if not path.endswith((".keras", ".rnnkern")):
        raise ValueError(f"model.save: the file name must end in .keras (Keras' format) or "
                         f".rnnkern (rnnkern's, NumPy only), got {path!r}; for the weights "
                         "alone use save_weights (.weights.h5 or .npz)")
    _check_built(model)
    if not overwrite and os.path.exists(path):
        raise FileExistsError(f"model.save: {path!r} exists and overwrite=False")
    keras_format = path.endswith(".keras")
    h5py = _h5py() if keras_format else None
    meta = {"keras_version": _KERAS_FORMAT_VERSION,
            "date_saved": datetime.datetime.now().strftime("%Y-%m-%d@%H:%M:%S"),
            "saved_by": f"rnnkern {__version__}"}
    config = json.dumps(_model_config(model))
    opt_vars = _optimizer_variables(model.optimizer) if getattr(model, "compiled", False) else []

    def write(tmp):
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as z:
            z.writestr("metadata.json", json.dumps(meta))
            z.writestr("config.json", config)
            if keras_format:
                buf = io.BytesIO()
                with h5py.File(buf, "w") as f:
                    weights = model.weights
                    for p, i in _h5_slots(model):
                        f.create_dataset(p, data=weights[i])
                    f.require_group("vars").attrs["name"] = model.name
                    if opt_vars:
                        g = f.require_group("optimizer/vars")
                        g.attrs["name"] = model.optimizer.name
                        for i, v in enumerate(opt_vars):
                            g.create_dataset(str(i), data=v)
                z.writestr("model.weights.h5", buf.getvalue())
            else:
                for name, arrays in (("model.weights.npz", model.weights),
                                     ("optimizer.npz", opt_vars)):
                    buf = io.BytesIO()
                    np.savez(buf, **{f"{i:04d}": a for i, a in enumerate(arrays)})
                    z.writestr(name, buf.getvalue())
    _atomic_write(path, write)


def load_model(filepath, custom_objects=None, compile=True, safe_mode=True):
    """A model from a ``.keras`` file (Keras' or rnnkern's) or a ``.rnnkern``
    file: architecture, weights, and (with ``compile=True``) the compile
    configuration and optimizer state. Keras is not needed; a layer rnnkern
    does not have is a clear error naming it."""
    Model, Sequential = _models()
    path = os.fspath(filepath)
    if not os.path.exists(path):
        raise FileNotFoundError(f"load_model: no such file {path!r}")
    if not zipfile.is_zipfile(path):
        raise ValueError(f"load_model: {path!r} is not a .keras / .rnnkern file (a zip "
                         "archive); legacy HDF5 model files are not supported")
    with zipfile.ZipFile(path) as z:
        names = set(z.namelist())
        if "config.json" not in names:
            raise ValueError(f"load_model: {path!r} has no config.json")
        cfg = json.loads(z.read("config.json"))
        cls_name = cfg.get("class_name")
        if cls_name == "Sequential":
            model = Sequential.from_config(cfg["config"], custom_objects=custom_objects)
        elif cls_name in ("Functional", "Model"):
            model = Model.from_config(cfg["config"], custom_objects=custom_objects)
        else:
            raise ValueError(f"load_model: {path!r} holds a {cls_name!r} model; rnnkern loads "
                             "Sequential and functional models")
        if not model.built and cfg.get("build_config", {}).get("input_shape") is not None:
            model.build(tuple(cfg["build_config"]["input_shape"]))
        opt_arrays = []
        if "model.weights.h5" in names:
            h5py = _h5py()
            with h5py.File(io.BytesIO(z.read("model.weights.h5")), "r") as f:
                arrays = [None] * len(model.weights)
                for p, i in _h5_slots(model):
                    if p not in f:
                        raise ValueError(f"load_model: {path!r} lacks {p!r}, the weight "
                                         f"{model.weight_paths()[i]}")
                    arrays[i] = np.asarray(f[p])
                if "optimizer/vars" in f:
                    g = f["optimizer/vars"]
                    opt_arrays = [np.asarray(g[str(i)]) for i in range(len(g))]
        elif "model.weights.npz" in names:
            with np.load(io.BytesIO(z.read("model.weights.npz"))) as w:
                arrays = [w[k] for k in sorted(w.files)]
            if "optimizer.npz" in names:
                with np.load(io.BytesIO(z.read("optimizer.npz"))) as o:
                    opt_arrays = [o[k] for k in sorted(o.files)]
        else:
            raise ValueError(f"load_model: {path!r} has no weights file")
    for a, w, p in zip(arrays, model.weights, model.weight_paths()):
        if a.shape != w.shape:
            raise ValueError(f"load_model: weight {p} has shape {a.shape} in {path!r}, the "
                             f"architecture expects {w.shape}")
    model.set_weights(arrays)
    if compile and cfg.get("compile_config"):
        compile_from_config(model, cfg["compile_config"])
        _set_optimizer_variables(model, opt_arrays)
    return model
