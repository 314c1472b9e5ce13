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
  recurrent layers and ``RNN(cell)`` (``cell/cells/<snake_case class name>[_k]/``
  for a StackedRNNCells), ``layer/`` inside TimeDistributed, ``forward_layer/`` and
  ``backward_layer/`` inside Bidirectional, ``layers/...`` inside nested models.

Files are written atomically: to a temporary file beside the target, then
renamed over it, so a failed save never leaves a truncated file; the file keeps
the mode of the one it replaces (a new one gets the umask's). Loading checks
every weight's presence and shape before changing anything, and a mismatch
names the layer, the weight and both shapes.

Files made by others are read defensively: nothing in a file is executed (no
pickle, no Lambda function: a model holding one is refused, as Keras' safe_mode
does, whatever ``safe_mode`` says, since rnnkern never deserializes code); every
size is checked before it is read -- a zip member's declared size against a
limit (the config 64 MiB, the weights a few times what the model holds), an
array's declared shape against the weight it fills -- so a small file that
decompresses or declares gigabytes is refused without allocating them; and
anything malformed (not a zip, not JSON, not an object, a damaged member, a
.npy where an .npz belongs, a dataset the model does not have) is a
``SavedFileError`` (a ValueError) naming the file and what is wrong.

``functional_config(model)`` / ``functional_from_config(config)``: Keras 3's
config of a functional model (its layers' configs and the graph's nodes).
"""
from __future__ import annotations

import datetime
import io
import json
import os
import zipfile
import zlib

import numpy as np

from . import losses, metrics, optimizers
from . import legacy_h5  # Keras' legacy .h5 model files (it uses this module's helpers)
from ._version import __version__
from .layers.base import KerasTensor, Layer
from .layers.recurrent import _RNN
from .layers.wrappers import Bidirectional, TimeDistributed
from .utils.file_utils import SavedFileError as _SavedFileError
from .utils.file_utils import atomic_write
from .utils.naming import to_snake_case
from .utils.registry import (deserialize_layer, register_keras_serializable,  # noqa: F401
                             registered_class, serialize_layer)
from .utils.tree import flatten, map_structure

__all__ = ["save_weights", "load_weights", "save_model", "load_model", "functional_config",
           "functional_from_config", "SavedFileError", "register_keras_serializable"]


# defined with the file helpers (rnnkern.utils.file_utils raises it too: get_file's
# archives, the datasets' files); one class wherever a file is refused
SavedFileError = _SavedFileError


# what a config.json may decompress to: a few thousand layers' configs are < 10 MiB
_MAX_CONFIG_BYTES = 64 << 20
# a weights member may hold the weights, optimizer slots (Adam: 2 a weight) and
# their headers: this many times the model's own weights, plus a fixed margin
_WEIGHTS_FACTOR, _WEIGHTS_MARGIN = 4, 16 << 20


def _models():
    """(Model, Sequential), found through the class registry rather than
    imported: rnnkern.models imports this module (load_model, Model.save,
    Model.get_config), so importing it here would tie the two into a circle."""
    return registered_class("Model"), registered_class("Sequential")


def _rnn_classes():
    """(RNN, StackedRNNCells) of rnnkern.layers.rnn, by the registry as _models():
    the module registers them when it is imported, and a model can hold them only
    once it is; empty tuples before (isinstance(x, ()) is False)."""
    try:
        return registered_class("RNN"), registered_class("StackedRNNCells")
    except KeyError:
        return (), ()


def _is_h5(path):
    return str(path).endswith(".h5")


def _h5py():
    try:
        import h5py
    except ImportError:
        raise ImportError("Keras .weights.h5 files need h5py, an optional extra of rnnkern: "
                          "pip install 'rnnkern[h5]' (or pip install h5py)") from None
    return h5py


_atomic_write = atomic_write   # write to a temporary file beside the target, then rename


def _check_built(obj):
    if not obj.built:
        raise ValueError(f"{type(obj).__name__} {obj.name!r} is not built yet, so it has no "
                         "weights: call it on data, or build it, first")


def _weights_budget(obj):
    """Bytes a weights member of ``obj``'s file may hold (see _WEIGHTS_FACTOR)."""
    return _WEIGHTS_FACTOR * sum(8 * w.size for w in obj.weights) + _WEIGHTS_MARGIN


def _zip_member(z, name, path, limit):
    """The bytes of zip member ``name``, its declared size checked against ``limit``
    before anything is decompressed (zipfile stops at the declared size)."""
    info = z.getinfo(name)
    if info.file_size > limit:
        raise SavedFileError(f"{path!r}: {name} would decompress to {info.file_size:,} bytes, "
                             f"more than the {limit:,} it may hold: refused (a damaged or "
                             "hostile file)")
    try:
        return z.read(name)
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, RuntimeError) as e:
        raise SavedFileError(f"{path!r}: {name} is damaged ({e})") from None


def _read_config(z, path):
    """config.json of a .keras / .rnnkern archive: a JSON object, or SavedFileError."""
    raw = _zip_member(z, "config.json", path, _MAX_CONFIG_BYTES)
    try:
        cfg = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise SavedFileError(f"{path!r}: config.json is not JSON text ({e})") from None
    if not isinstance(cfg, dict):
        raise SavedFileError(f"{path!r}: config.json must hold a JSON object (a model's "
                             f"config), got a {type(cfg).__name__}")
    return cfg


def _refuse_code(cfg, path):
    """A config holding a Lambda layer (whose function is code) is refused: rnnkern
    never runs code from a file. Keras refuses it under safe_mode=True too."""
    stack = [cfg]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if node.get("class_name") == "Lambda":
                name = (node.get("config") or {}).get("name", "?") \
                    if isinstance(node.get("config"), dict) else "?"
                raise SavedFileError(
                    f"{path!r} holds a Lambda layer ({name!r}): its function is Python code, "
                    "and rnnkern never runs code from a file (Keras refuses it too unless "
                    "safe_mode=False). Build the model in Python and load only its weights "
                    "(model.load_weights) from the file")
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)


def _npz_arrays(source, path, shapes=None, budget=None, what=None):
    """The arrays of an .npz (a path or a file object), in key order, each member
    checked before it is read: a .npy array of a numeric dtype whose declared shape
    is ``shapes[i]`` (when given; ``what(i)`` names the weight in the error) and
    whose sizes add up to at most ``budget`` bytes. SavedFileError otherwise."""
    try:
        z = zipfile.ZipFile(source)
    except (zipfile.BadZipFile, OSError, EOFError) as e:
        head = b""
        try:
            if isinstance(source, (str, bytes, os.PathLike)):
                with open(source, "rb") as f:
                    head = f.read(6)
            else:
                source.seek(0)
                head = source.read(6)
        except OSError:
            pass
        if head == b"\x93NUMPY":
            raise SavedFileError(f"{path!r} is a single .npy array, not an .npz archive of "
                                 "weights") from None
        raise SavedFileError(f"{path!r} is not an .npz archive of weights ({e}; Keras' "
                             "weights files are named *.weights.h5)") from None
    with z:
        names = sorted(z.namelist(), key=lambda n: n[:-4] if n.endswith(".npy") else n)
        if shapes is not None and len(names) != len(shapes):
            raise SavedFileError(f"{path!r} holds {len(names)} weights where {len(shapes)} "
                                 "were expected: the file is of another architecture")
        total, out = 0, []
        for i, name in enumerate(names):
            if not name.endswith(".npy"):
                raise SavedFileError(f"{path!r}: member {name!r} is not a .npy array")
            try:
                with z.open(name) as fp:
                    version = np.lib.format.read_magic(fp)
                    reader = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                              else np.lib.format.read_array_header_2_0)
                    shape, _fortran, dtype = reader(fp)
            except (ValueError, OSError, EOFError, zipfile.BadZipFile, zlib.error) as e:
                raise SavedFileError(f"{path!r}: {name} is not a valid .npy array "
                                     f"({e})") from None
            label = what(i) if what else name[:-4]
            if dtype.hasobject or dtype.kind not in "fiu":
                raise SavedFileError(f"{path!r}: {label} has dtype {dtype}, not a number "
                                     "array (refused unread: rnnkern never unpickles)")
            if shapes is not None and tuple(shape) != tuple(shapes[i]):
                raise SavedFileError(f"{path!r}: weight {label} has shape {tuple(shape)} in "
                                     f"the file, but the model's has shape {tuple(shapes[i])}")
            n = dtype.itemsize
            for d in shape:
                n *= int(d)
            total += n
            if budget is not None and total > budget:
                raise SavedFileError(f"{path!r}: its arrays declare more than {budget:,} bytes, "
                                     "far more than the model holds: refused unread")
            try:
                with z.open(name) as fp:
                    out.append(np.lib.format.read_array(fp, allow_pickle=False))
            except (ValueError, OSError, EOFError, zipfile.BadZipFile, zlib.error) as e:
                raise SavedFileError(f"{path!r}: {name} is damaged ({e})") from None
    return out


def _h5_open(h5py, source, path):
    try:
        return h5py.File(source, "r")
    except OSError as e:
        raise SavedFileError(f"{path!r} is not a readable HDF5 weights file ({e})") from None


def _h5_read_weights(f, h5py, obj, path, where, skip_mismatch=False):
    """Every weight of ``obj`` from open HDF5 file ``f`` in Keras' layout: each
    dataset's presence, shape and dtype checked before it is read, and no dataset
    the model does not have (the optimizer's aside). ``skip_mismatch``: a dataset of
    another shape is left unread and the model keeps its weight."""
    slots = _h5_slots(obj)
    found = set()
    f.visititems(lambda name, item: found.add(name)
                 if isinstance(item, h5py.Dataset) else None)
    missing = [(p, i) for p, i in slots if p not in found]
    if missing:
        p, i = missing[0]
        raise SavedFileError(f"{where}: {path!r} has no {p!r}, which holds weight "
                             f"{obj.weight_paths()[i]} of {type(obj).__name__} {obj.name!r} "
                             f"({len(missing)} of its {len(slots)} weights are missing): the "
                             "file is of another architecture")
    extra = sorted(e for e in found - {p for p, _ in slots} if not e.startswith("optimizer/"))
    if extra:
        raise SavedFileError(f"{where}: {path!r} holds weights the model does not have, "
                             f"e.g. {extra[0]!r} ({len(extra)} in all): the file is of "
                             "another architecture")
    arrays = [None] * len(obj.weights)
    weights = obj.weights
    for p, i in slots:
        ds = f[p]
        if tuple(ds.shape) != weights[i].shape:
            if skip_mismatch:
                arrays[i] = weights[i]
                continue
            raise SavedFileError(f"{where}: weight {obj.weight_paths()[i]} (in the file: {p}) "
                                 f"has shape {tuple(ds.shape)} in {path!r}, but the model's "
                                 f"has shape {weights[i].shape}")
        if ds.dtype.kind not in "fiu":
            raise SavedFileError(f"{where}: weight {obj.weight_paths()[i]} (in the file: {p}) "
                                 f"in {path!r} has dtype {ds.dtype}")
        arrays[i] = np.asarray(ds)
    return arrays


# ------------------------------------------------------- Keras' h5 layout

def _h5_slots(obj, prefix=""):
    """(dataset path, index into obj.weights) of every weight, in Keras'
    .weights.h5 layout."""
    Model, Sequential = _models()
    RNN, StackedRNNCells = _rnn_classes()
    slots = []

    def walk_list(subs, prefix, base):
        # Keras names the entries of a list of layers (a model's layers, a stack's
        # cells) by their snake_case class name, numbered from the second on
        seen = {}
        i = base
        for sub in subs:
            key = to_snake_case(type(sub).__name__)
            n = seen.get(key, 0)
            seen[key] = n + 1
            walk(sub, f"{prefix}{key if n == 0 else f'{key}_{n}'}/", i)
            i += len(sub.weights)

    def walk(layer, prefix, base):
        if isinstance(layer, (Model, Sequential)):
            walk_list(layer.layers, prefix + "layers/", base)
        elif isinstance(layer, RNN):           # RNN(cell): the cell's weights
            walk(layer.cell, prefix + "cell/", base)
        elif isinstance(layer, StackedRNNCells):
            walk_list(layer.cells, prefix + "cells/", base)
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


def _read_h5(obj, path, skip_mismatch=False):
    h5py = _h5py()
    with _h5_open(h5py, path, path) as f:
        return _h5_read_weights(f, h5py, obj, path, "load_weights", skip_mismatch)


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
    current = obj.weights
    if _is_h5(path) and legacy_h5.is_whole_model_file(path):
        # Keras' load_weights reads a legacy whole-model file's weights too
        legacy_h5.load_weights_from_hdf5(obj, path, skip_mismatch)
        return
    if _is_h5(path):
        arrays = _read_h5(obj, path, skip_mismatch)
    else:
        shapes = None if skip_mismatch else [w.shape for w in current]
        try:
            arrays = _npz_arrays(path, path, shapes, _weights_budget(obj),
                                 what=lambda i: paths[i] if i < len(paths) else str(i))
        except SavedFileError as e:
            if "weights where" in str(e):
                raise SavedFileError(f"load_weights: {e}; {type(obj).__name__} {obj.name!r} "
                                     f"has {len(paths)} {paths}") from None
            raise SavedFileError(f"load_weights: {e}") from None
        if len(arrays) != len(paths):
            raise SavedFileError(f"load_weights: {path!r} holds {len(arrays)} weights, "
                                 f"{type(obj).__name__} {obj.name!r} has {len(paths)} {paths}")
        for i, (a, w) in enumerate(zip(arrays, current)):
            if a.shape != w.shape:   # skip_mismatch: keep the model's
                arrays[i] = w
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


def deserialize_nested(fn, config):
    """``config`` (a serialized object, a name, or lists / dicts by output of
    them) with each serialized object, a dict holding "class_name", passed
    through ``fn``; names stay names (compile takes them as they are)."""
    if isinstance(config, dict):
        if "class_name" in config:
            return fn(config)
        return {k: deserialize_nested(fn, v) for k, v in config.items()}
    if isinstance(config, (list, tuple)):
        return [deserialize_nested(fn, v) for v in config]
    return config


def compile_from_config(model, config):
    cfg = dict(config)
    known = ("optimizer", "loss", "loss_weights", "metrics", "weighted_metrics", "run_eagerly",
             "steps_per_execution", "jit_compile", "auto_scale_loss")
    # serialized loss and metric objects ({"class_name": ...}) back to objects: compile
    # would read a dict as one entry per output
    for key, decode in (("loss", losses.deserialize), ("metrics", metrics.deserialize),
                        ("weighted_metrics", metrics.deserialize)):
        if key in cfg:
            cfg[key] = deserialize_nested(decode, cfg[key])
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
    if len(arrays) < len(current) and all(
            np.shape(a) == c.shape for a, c in zip(arrays, current)):
        # an optimizer saved before its first step holds only its iteration count
        # and learning rate (Keras sets those and keeps the fresh slots)
        opt.set_variables(list(arrays) + [np.array(c) for c in current[len(arrays):]])
        return
    if len(current) != len(arrays):
        raise ValueError(f"the file holds {len(arrays)} optimizer variables, the model's "
                         f"{type(opt).__name__} has {len(current)}")
    opt.set_variables(arrays)


def _model_config(model, include_optimizer=True):
    cfg = {"module": "keras", "class_name": _model_class_name(model),
           "config": _jsonable(model.get_config()), "registered_name": None}
    try:
        shape = model.input_shape
        cfg["build_config"] = {"input_shape": _jsonable(shape)}
    except (ValueError, AttributeError):
        pass
    if include_optimizer and getattr(model, "compiled", False):
        cfg["compile_config"] = _jsonable(compile_config(model))
    return cfg


def save_model(model, filepath, overwrite=True, include_optimizer=True):
    """Write ``model`` to ``filepath`` (``.keras``, ``.rnnkern``, or Keras' legacy
    ``.h5`` / ``.hdf5``: rnnkern.legacy_h5), atomically; ``include_optimizer=False``
    leaves out the compile configuration and the optimizer's variables."""
    path = os.fspath(filepath)
    if path.endswith((".h5", ".hdf5")):
        return legacy_h5.save_model_to_hdf5(model, path, overwrite=overwrite,
                                            include_optimizer=include_optimizer)
    if not path.endswith((".keras", ".rnnkern")):
        raise ValueError(f"model.save: the file name must end in .keras (Keras' format), .h5 "
                         f"(Keras' legacy HDF5 format) or .rnnkern (rnnkern's, NumPy only), "
                         f"got {path!r}; for the weights alone use save_weights (.weights.h5 "
                         "or .npz)")
    _check_built(model)
    if not overwrite and os.path.exists(path):
        raise FileExistsError(f"model.save: {path!r} exists and overwrite=False")
    keras_format = path.endswith(".keras")
    h5py = _h5py() if keras_format else None
    meta = {"keras_version": _KERAS_FORMAT_VERSION,
            "date_saved": datetime.datetime.now().strftime("%Y-%m-%d@%H:%M:%S"),
            "saved_by": f"rnnkern {__version__}"}
    config = json.dumps(_model_config(model, include_optimizer))
    opt_vars = _optimizer_variables(model.optimizer) \
        if include_optimizer and getattr(model, "compiled", False) else []

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
    if not isinstance(safe_mode, bool):
        raise TypeError(f"load_model: safe_mode must be a bool, got {safe_mode!r}")
    if not zipfile.is_zipfile(path) and legacy_h5.is_legacy_h5(path):
        return legacy_h5.load_model_from_hdf5(path, custom_objects, compile, safe_mode)
    if not zipfile.is_zipfile(path):
        raise SavedFileError(f"load_model: {path!r} is not a .keras / .rnnkern file (a zip "
                             "archive) nor a legacy HDF5 model file (.h5)")
    try:
        z = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as e:
        raise SavedFileError(f"load_model: {path!r} is a damaged zip archive ({e})") from None
    with z:
        names = set(z.namelist())
        if "config.json" not in names:
            raise SavedFileError(f"load_model: {path!r} has no config.json")
        cfg = _read_config(z, path)
        _refuse_code(cfg, path)   # whatever safe_mode says: rnnkern never runs file code
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
        budget = _weights_budget(model)
        wpaths = model.weight_paths()
        if "model.weights.h5" in names:
            h5py = _h5py()
            raw = _zip_member(z, "model.weights.h5", path, budget)
            with _h5_open(h5py, io.BytesIO(raw), path) as f:
                arrays = _h5_read_weights(f, h5py, model, path, "load_model")
                if "optimizer/vars" in f:
                    g = f["optimizer/vars"]
                    try:
                        opt_arrays = [np.asarray(g[str(i)]) for i in range(len(g))]
                    except KeyError as e:
                        raise SavedFileError(f"load_model: {path!r}: the optimizer's variables "
                                             f"are not numbered 0..{len(g) - 1} ({e})") from None
        elif "model.weights.npz" in names:
            raw = _zip_member(z, "model.weights.npz", path, budget)
            try:
                arrays = _npz_arrays(io.BytesIO(raw), path, [w.shape for w in model.weights],
                                     budget, what=lambda i: wpaths[i])
                if "optimizer.npz" in names:
                    raw = _zip_member(z, "optimizer.npz", path, budget)
                    opt_arrays = _npz_arrays(io.BytesIO(raw), path, None, budget)
            except SavedFileError as e:
                raise SavedFileError(f"load_model: {e}") from None
        else:
            raise SavedFileError(f"load_model: {path!r} has no weights file")
    model.set_weights(arrays)
    if compile and cfg.get("compile_config"):
        compile_from_config(model, cfg["compile_config"])
        _set_optimizer_variables(model, opt_arrays)
    return model
