"""Keras' legacy HDF5 whole-model file: ``model.save("m.h5")`` / ``load_model("m.h5")``.

Keras 3 still writes and reads this format (any name ending in ``.h5`` or
``.hdf5``), with a warning that it is legacy; rnnkern does the same, so a
Keras example that checkpoints to ``best_model.h5`` runs by import swap alone,
and the files move both ways between Keras and rnnkern. ``rnnkern.saving``'s
``save_model`` / ``load_model`` send such names here.

The file, as Keras 3's legacy writer lays it out::

    /                      attrs: keras_version, backend (str),
                                  model_config   JSON {"class_name", "config"}: the
                                                 model's config, its layers in the
                                                 legacy form (no "module" key),
                                  training_config (compiled models) JSON: the compile
                                                 arguments without "optimizer", plus
                                                 "optimizer_config" {"class_name", "config"}
    /model_weights         attrs: layer_names (the model's layers, in order),
                                  backend, keras_version
    /model_weights/<layer> attrs: weight_names: the layer's weights, trainable ones
                                  first (Keras' legacy order), each named by its Keras
                                  variable path ("sequential/lstm/lstm_cell/kernel",
                                  "dense_1/kernel"), a dataset at that path in the group
    /model_weights/top_level_model_weights   the model's own weights (none here)
    /optimizer_weights     attrs: weight_names ("adam/iteration", "adam/learning_rate",
                                  "adam/<weight path, / as _>_momentum", ...); a dataset
                                  at each (compiled models)

rnnkern's files differ from Keras' only where they must: ``backend`` is
"numpy" and ``keras_version`` the Keras file format rnnkern follows ("3.0.0").

``load_weights_from_hdf5(model, path)`` reads the weights of such a file (or of
a Keras 2 weights file, ``layer_names`` at its root) into a model, as Keras'
``model.load_weights("x.h5")`` does; rnnkern.saving's ``load_weights`` reads
``.h5`` names as Keras 3's ``.weights.h5`` layout instead (see there).

A name list larger than HDF5's 64 KiB object-header limit is split over
attributes ``<name>0``, ``<name>1``, ... as Keras does. Weights are matched
by ORDER, as Keras' loader does (layers with weights in ``layer_names`` order,
weights in ``weight_names`` order); the names only locate the datasets.

Reading is defensive, as everywhere in rnnkern.saving: nothing from the file is
executed (a Lambda layer is refused whatever ``safe_mode`` says); links (soft,
external), external and virtual datasets are refused; every dataset's shape and
dtype are checked against the weight it fills before any is read, so a file
declaring a huge shape is refused unread; anything malformed is a
``SavedFileError`` naming the file and what is wrong.

Optimizer state: rnnkern restores every optimizer variable the file holds
(iteration, learning rate, slots), so training resumes where it stopped.
Keras 3.15's own loader builds the optimizer on the model's top-level
variables only and so restores just the iteration count and learning rate
(and its compiled model cannot then ``fit``); a file holding fewer variables
than the optimizer has (Keras' unbuilt optimizer: iteration and learning rate
only) sets those, as Keras' ``set_weights`` does; one whose variables do not
fit is skipped with a warning, as Keras skips it.
"""
from __future__ import annotations

import json
import os
import warnings

import numpy as np

# rnnkern.saving imports this module to dispatch .h5 names here, so its names
# are used as saving.<name> at call time, never bound while it may be half-run
from . import losses, metrics, saving
from .layers.recurrent import _RNN
from .utils.naming import to_snake_case

__all__ = ["save_model_to_hdf5", "load_model_from_hdf5", "load_weights_from_hdf5",
           "is_legacy_h5"]

SUFFIXES = (".h5", ".hdf5")
_SIGNATURE = b"\x89HDF\r\n\x1a\n"
# HDF5's object header limit: a name list larger than this is split (Keras' constant)
_HEADER_LIMIT = 64512
# the backend rnnkern's files name: Keras' NumPy backend is the closest kin
_BACKEND = "numpy"
_TOP_LEVEL = "top_level_model_weights"


def is_legacy_h5(path):
    """Whether ``load_model`` should read ``path`` as a legacy HDF5 model file:
    its name ends in .h5 / .hdf5, or it starts with HDF5's signature."""
    if str(path).endswith(SUFFIXES):
        return True
    try:
        with open(path, "rb") as f:
            return f.read(len(_SIGNATURE)) == _SIGNATURE
    except OSError:
        return False


def is_whole_model_file(path):
    """Whether the HDF5 file at ``path`` is a legacy whole-model (or legacy
    weights) file -- a ``model_weights`` group or a root ``layer_names``
    attribute -- rather than Keras 3's .weights.h5 layout."""
    try:
        h5py = saving._h5py()
        with h5py.File(path, "r") as f:
            return "layer_names" in f.attrs or "model_weights" in f
    except (OSError, ImportError):
        return False


# ------------------------------------------------------------- names

def _keras_weight_names(layer, prefix=""):
    """Keras 3's variable path of every weight of ``layer``, aligned with
    ``layer.weights``: a layer's own weights under its name (a recurrent layer's
    under ``<name>/<snake_case class>_cell``), sublayers under their parent's
    name, a Sequential's layers under the model's name (Keras builds them in
    the model's name scope) and a functional model's under nothing."""
    Model, Sequential = saving._models()
    if isinstance(layer, Model) and not isinstance(layer, Sequential):
        own_base, sub_prefix = f"{prefix}{layer.name}/", prefix
    else:
        own_base = sub_prefix = f"{prefix}{layer.name}/"
    if isinstance(layer, _RNN):
        own_base += to_snake_case(type(layer).__name__ + "Cell") + "/"
    names = [own_base + n for n, _ in layer._own()]
    for sub in layer._sublayers():
        names += _keras_weight_names(sub, sub_prefix)
    return names


def _legacy_order(layer, index):
    """Indices (into the model's weights, through ``index``: (id(layer), weight
    name) -> i) of ``layer``'s weights in Keras' legacy order: trainable ones
    first, then the others, each in ``weights`` order."""
    trainable = {(id(l), n) for l, n in layer._slots(trainable_only=True)}
    slots = layer._slots()
    first = [index[(id(l), n)] for l, n in slots if (id(l), n) in trainable]
    rest = [index[(id(l), n)] for l, n in slots if (id(l), n) not in trainable]
    return first + rest


def _model_index(model):
    return {(id(l), n): i for i, (l, n) in enumerate(model._slots())}


def _unique(names):
    """``names`` with a suffix on repeats, so each can be a dataset of its group."""
    seen, out = set(), []
    for n in names:
        m, k = n, 1
        while m in seen:
            m, k = f"{n}_{k}", k + 1
        seen.add(m)
        out.append(m)
    return out


# ---------------------------------------------------------- configs

_MODEL_CLASSES = ("Sequential", "Functional", "Model")


def _legacy_layers(config, to_legacy):
    """The layers lists of a model config (and of the models nested in it) with
    each entry in the legacy form (``to_legacy``: drop the "module",
    "registered_name", "build_config" and "compile_config" keys) or, reading,
    with Keras 2's keys translated as Keras' loader translates them."""
    if not isinstance(config, dict) or not isinstance(config.get("layers"), list):
        return config
    config = dict(config)
    layers = []
    for entry in config["layers"]:
        if not isinstance(entry, dict):
            layers.append(entry)
            continue
        entry = dict(entry)
        if to_legacy:
            for key in ("module", "registered_name", "build_config", "compile_config"):
                entry.pop(key, None)
        elif "module" not in entry and isinstance(entry.get("config"), dict):
            cfg = entry["config"] = dict(entry["config"])
            shape = cfg.pop("batch_input_shape", None)
            if shape is not None:
                cfg["batch_shape" if entry.get("class_name") == "InputLayer"
                    else "input_shape"] = shape
            axis = cfg.pop("axis", None)
            if isinstance(axis, list) and len(axis) == 1:
                axis = axis[0]
            if axis is not None:
                cfg["axis"] = int(axis) if isinstance(axis, (int, float)) else axis
        if entry.get("class_name") in _MODEL_CLASSES:
            entry["config"] = _legacy_layers(entry.get("config"), to_legacy)
        layers.append(entry)
    config["layers"] = layers
    return config


def _training_config(model):
    """Keras' training_config: the compile arguments without the optimizer,
    which goes to "optimizer_config" as {"class_name", "config"}."""
    cfg = saving._jsonable(saving.compile_config(model))
    opt = cfg.pop("optimizer")
    cfg.pop("auto_scale_loss", None)
    cfg["optimizer_config"] = {"class_name": opt["class_name"], "config": opt["config"]}
    return cfg


# ------------------------------------------------------------- write

def _write_names(group, name, items):
    """The list attribute ``name`` (bytes), split over ``name0``, ``name1``, ...
    where it exceeds HDF5's object header limit, as Keras writes it."""
    big = [x for x in items if len(x) > _HEADER_LIMIT]
    if big:
        raise ValueError(f"model.save: names longer than {_HEADER_LIMIT} bytes cannot be "
                         f"saved in an HDF5 file: {big[0][:80]!r}...")
    arr = np.asarray(items)
    chunks = max(1, -(-arr.nbytes // _HEADER_LIMIT))
    parts = np.array_split(arr, chunks)
    while any(p.nbytes > _HEADER_LIMIT for p in parts):
        chunks += 1
        parts = np.array_split(arr, chunks)
    if chunks == 1:
        group.attrs[name] = items
    else:
        for k, part in enumerate(parts):
            group.attrs[f"{name}{k}"] = part


def _write_subset(group, names, arrays):
    _write_names(group, "weight_names", [n.encode("utf8") for n in names])
    for n, a in zip(names, arrays):
        group.create_dataset(n, data=np.asarray(a))


def save_model_to_hdf5(model, filepath, overwrite=True, include_optimizer=True):
    """Write ``model`` to ``filepath`` in Keras' legacy HDF5 layout (see the
    module docstring), atomically; ``include_optimizer``: the training config
    and the optimizer's variables of a compiled model. Warns, as Keras does,
    that the format is legacy."""
    path = os.fspath(filepath)
    warnings.warn("You are saving your model as an HDF5 file via `model.save()`. This file "
                  "format is considered legacy; the native Keras format is recommended "
                  "instead, e.g. `model.save('my_model.keras')`.", UserWarning, stacklevel=4)
    saving._check_built(model)
    if not overwrite and os.path.exists(path):
        raise FileExistsError(f"model.save: {path!r} exists and overwrite=False")
    h5py = saving._h5py()
    model_config = {"class_name": saving._model_class_name(model),
                    "config": _legacy_layers(saving._jsonable(model.get_config()), True)}
    compiled = include_optimizer and getattr(model, "compiled", False) \
        and model.optimizer is not None
    training_config = _training_config(model) if compiled else None
    weights = model.weights
    keras_names = _keras_weight_names(model)
    index = _model_index(model)
    version = saving._KERAS_FORMAT_VERSION

    def write(tmp):
        with h5py.File(tmp, "w") as f:
            f.attrs["keras_version"] = version
            f.attrs["backend"] = _BACKEND
            f.attrs["model_config"] = json.dumps(model_config).encode("utf8")
            if training_config is not None:
                f.attrs["training_config"] = json.dumps(training_config).encode("utf8")
            g = f.create_group("model_weights")
            _write_names(g, "layer_names", [l.name.encode("utf8") for l in model.layers])
            g.attrs["backend"] = _BACKEND.encode("utf8")
            g.attrs["keras_version"] = version.encode("utf8")
            for layer in sorted(model.layers, key=lambda l: l.name):
                order = _legacy_order(layer, index)
                _write_subset(g.create_group(layer.name),
                              _unique([keras_names[i] for i in order]),
                              [weights[i] for i in order])
            own = [(model, n) for n, _ in model._own()]
            _write_subset(g.create_group(_TOP_LEVEL),
                          [keras_names[index[(id(l), n)]] for l, n in own],
                          [weights[index[(id(l), n)]] for l, n in own])
            if compiled:
                _write_optimizer(f, model, keras_names, index)
    saving._atomic_write(path, write)


def _write_optimizer(f, model, keras_names, index):
    opt = model.optimizer
    values = [np.asarray(v) for v in opt.variables]
    if not values:
        return
    trainable = [keras_names[index[(id(l), n)]] for l, n in model._slots(trainable_only=True)]
    names = []
    for vn in opt.variable_names:
        k, _, slot = vn.partition("_")
        if k.isdigit() and int(k) < len(trainable):
            vn = f"{trainable[int(k)].replace('/', '_')}_{slot}"
        names.append(f"{opt.name}/{vn}")
    _write_subset(f.create_group("optimizer_weights"), _unique(names), values)


# -------------------------------------------------------------- read

class _Reader:
    """Checked access to an open legacy file: every failure a SavedFileError
    naming the file."""

    def __init__(self, h5py, path, where="load_model"):
        self.h5py, self.path, self.where = h5py, path, where

    def fail(self, msg):
        raise saving.SavedFileError(f"{self.where}: {self.path!r}: {msg}")

    def child(self, parent, name, want, what):
        """``parent[name]`` (a "/"-separated path), a Group or a Dataset as
        ``want`` says, reached through hard links only."""
        h5py = self.h5py
        if not isinstance(name, str) or not name or any(not p for p in name.split("/")):
            self.fail(f"{what}: {name!r} is not a valid name in the file")
        node = parent
        parts = name.split("/")
        for i, part in enumerate(parts):
            try:
                kind = node.get(part, default=None, getclass=True, getlink=True)
            except (KeyError, ValueError, OSError, RuntimeError) as e:
                self.fail(f"{what}: cannot open {name!r} ({e})")
            if kind is None:
                self.fail(f"{what}: {name!r} is missing")
            if kind is not h5py.HardLink:
                self.fail(f"{what}: {name!r} is a {kind.__name__}, which rnnkern does not "
                          "follow (a damaged or hostile file)")
            try:
                node = node[part]
            except (KeyError, ValueError, OSError, RuntimeError) as e:
                self.fail(f"{what}: cannot open {name!r} ({e})")
            last = i == len(parts) - 1
            expect = want if last else h5py.Group
            if not isinstance(node, expect):
                self.fail(f"{what}: {name!r} is not an HDF5 "
                          f"{'group' if expect is h5py.Group else 'dataset'}")
        if want is h5py.Dataset:
            if node.external or node.is_virtual:
                self.fail(f"{what}: {name!r} keeps its data outside the file (an external "
                          "or virtual dataset), which rnnkern does not read")
        return node

    def attr(self, obj, name, what):
        """Attribute ``name`` of ``obj`` (None when absent), its stored size
        checked before it is read."""
        if name not in obj.attrs:
            return None
        try:
            aid = obj.attrs.get_id(name)
            # the declared size (a variable-length string's text lies in the file
            # itself, so the file's size bounds it)
            size = aid.dtype.itemsize
            for d in aid.shape or ():
                size *= int(d)
            if size > saving._MAX_CONFIG_BYTES:
                self.fail(f"{what} holds {size:,} bytes, more than the "
                          f"{saving._MAX_CONFIG_BYTES:,} it may hold: refused unread")
            return obj.attrs[name]
        except (OSError, KeyError, TypeError, ValueError, RuntimeError) as e:
            if isinstance(e, saving.SavedFileError):
                raise
            self.fail(f"{what} cannot be read ({e})")

    def text(self, value, what):
        if isinstance(value, np.ndarray) and value.shape == ():
            value = value[()]
        if isinstance(value, (bytes, np.bytes_)):
            try:
                value = bytes(value).decode("utf-8")
            except UnicodeDecodeError as e:
                self.fail(f"{what} is not UTF-8 text ({e})")
        if not isinstance(value, str):
            self.fail(f"{what} is not text but a {type(value).__name__}")
        return value

    def json_object(self, obj, name, what):
        raw = self.attr(obj, name, what)
        if raw is None:
            return None
        text = self.text(raw, what)
        try:
            value = json.loads(text)
        except (ValueError, RecursionError) as e:   # RecursionError: nested too deep
            self.fail(f"{what} is not JSON text rnnkern reads ({type(e).__name__}: {e})")
        if not isinstance(value, dict):
            self.fail(f"{what} must hold a JSON object, got a {type(value).__name__}")
        return value

    def names(self, group, name, what):
        """A list attribute of names (Keras' ``<name>``, or ``<name>0``, ... when
        split); [] when absent."""
        if name in group.attrs:
            chunks = [self.attr(group, name, what)]
        else:
            chunks, k = [], 0
            while f"{name}{k}" in group.attrs:
                chunks.append(self.attr(group, f"{name}{k}", what))
                k += 1
        out = []
        for c in chunks:
            a = np.asarray(c)
            if a.size == 0:
                continue
            if a.ndim != 1 or a.dtype.kind not in "OSU":
                self.fail(f"{what} must be a list of names, got an array of shape {a.shape} "
                          f"and dtype {a.dtype}")
            out += [self.text(x, what) for x in a]
        return out

    def check_dataset(self, ds, shape, what):
        """``ds`` fills a weight of ``shape``: same shape, a real number dtype."""
        if tuple(ds.shape) != tuple(shape):
            self.fail(f"{what} has shape {tuple(ds.shape)} in the file, but the model's has "
                      f"shape {tuple(shape)}")
        if ds.dtype.kind not in "fiu" or ds.dtype.itemsize > 8:
            self.fail(f"{what} has dtype {ds.dtype}, not a real number array")

    def read(self, ds, what):
        try:
            return np.asarray(ds)
        except (OSError, ValueError, TypeError, RuntimeError) as e:
            self.fail(f"{what} is damaged ({e})")


def _model_from_config(r, cfg, custom_objects):
    """The model ``model_config`` describes (code refused, malformed configs
    named)."""
    Model, Sequential = saving._models()
    saving._refuse_code(cfg, r.path)
    cls_name, config = cfg.get("class_name"), cfg.get("config")
    if cls_name not in _MODEL_CLASSES:
        r.fail(f"model_config holds a {cls_name!r} model; rnnkern loads Sequential and "
               "functional models")
    if not isinstance(config, dict):
        r.fail("model_config has no 'config' object")
    config = _legacy_layers(config, False)
    cls = Sequential if cls_name == "Sequential" else Model
    try:
        model = cls.from_config(config, custom_objects=custom_objects)
    except saving.SavedFileError:
        raise
    except (ValueError, TypeError, KeyError, AttributeError, IndexError, RecursionError) as e:
        r.fail(f"its model_config cannot be rebuilt: {type(e).__name__}: {e}")
    if not model.built:
        r.fail("its model_config gives no input shape (no Input layer, no "
               "build_input_shape), so the model cannot be built to receive the weights")
    return model


def _read_weights(r, group, model, skip_mismatch=False):
    """The model's weights from ``model_weights`` (order-based, as Keras):
    every dataset located and checked before any is read. ``skip_mismatch``: a
    weight of another shape keeps the model's value (with a warning, as Keras)."""
    h5py = r.h5py
    index = _model_index(model)
    with_weights = [l for l in model.layers if l._slots()]
    saved = []
    for name in r.names(group, "layer_names", "model_weights' layer_names"):
        lg = r.child(group, name, h5py.Group, "model_weights")
        wnames = r.names(lg, "weight_names", f"weight_names of layer {name!r}")
        if wnames:
            saved.append((name, lg, wnames))
    if len(saved) != len(with_weights):
        r.fail(f"it holds the weights of {len(saved)} layers, the model has "
               f"{len(with_weights)} layers with weights "
               f"({[l.name for l in with_weights]}): the file is of another architecture")
    plan = []   # (dataset, index into model.weights, label)
    for k, ((name, lg, wnames), layer) in enumerate(zip(saved, with_weights)):
        order = _legacy_order(layer, index)
        if len(wnames) != len(order):
            r.fail(f"layer #{k} ({name!r} in the file, {layer.name!r} in the model) has "
                   f"{len(wnames)} weights in the file, the model's has {len(order)}")
        _plan(r, plan, model, lg, wnames, order, f"of layer {name!r}", skip_mismatch)
    own = [index[(id(model), n)] for n, _ in model._own()]
    if _TOP_LEVEL in group:
        tg = r.child(group, _TOP_LEVEL, h5py.Group, "model_weights")
        wnames = r.names(tg, "weight_names", "top-level weight_names")
        if len(wnames) != len(own):
            r.fail(f"it holds {len(wnames)} top-level model weights, the model has "
                   f"{len(own)}")
        _plan(r, plan, model, tg, wnames, own, "(top level)", skip_mismatch)
    arrays = list(model.weights)
    for ds, i, label in plan:
        arrays[i] = r.read(ds, label)
    return arrays


def _plan(r, plan, model, group, wnames, indices, where, skip_mismatch):
    """Locate and check the datasets ``wnames`` of ``group`` that fill
    ``model.weights[indices]``, appending (dataset, index, label) to ``plan``."""
    current = model.weights
    for wn, i in zip(wnames, indices):
        label = f"weight {wn!r} {where}"
        ds = r.child(group, wn, r.h5py.Dataset, label)
        if skip_mismatch and tuple(ds.shape) != current[i].shape:
            warnings.warn(f"{r.where}: skipping {label} of {r.path!r}: its shape "
                          f"{tuple(ds.shape)} is not the model's {current[i].shape}",
                          UserWarning, stacklevel=4)
            continue
        r.check_dataset(ds, current[i].shape, label)
        plan.append((ds, i, label))


def _compile(r, model, tc):
    """Compile ``model`` as the training_config says (what Keras' loader passes:
    optimizer, loss, metrics, weighted_metrics, loss_weights)."""
    opt = tc.get("optimizer_config")
    if not isinstance(opt, dict):
        r.fail("its training_config has no optimizer_config object")
    try:
        cfg = {"optimizer": opt, "loss": saving.deserialize_nested(losses.deserialize, tc.get("loss")),
               "metrics": saving.deserialize_nested(metrics.deserialize, tc.get("metrics")),
               "weighted_metrics": saving.deserialize_nested(metrics.deserialize, tc.get("weighted_metrics")),
               "loss_weights": tc.get("loss_weights")}
        saving.compile_from_config(model, cfg)
    except saving.SavedFileError:
        raise
    except (ValueError, TypeError, KeyError, AttributeError, IndexError, RecursionError) as e:
        r.fail(f"its training_config cannot be used: {type(e).__name__}: {e}")


def _read_optimizer(r, f, model):
    """The optimizer's variables from ``optimizer_weights``, checked against the
    built optimizer's before any is read (see the module docstring)."""
    h5py = r.h5py
    og = r.child(f, "optimizer_weights", h5py.Group, "optimizer_weights")
    names = r.names(og, "weight_names", "optimizer_weights' weight_names")
    if not names:
        return
    opt = model.optimizer
    if not opt.built:
        opt.build([l._params[n] for l, n in model._slots(trainable_only=True)])
    current = opt.get_state()
    datasets = [r.child(og, n, h5py.Dataset, f"optimizer weight {n!r}") for n in names]
    k = min(len(datasets), len(current))
    fits = len(datasets) <= len(current) and all(
        tuple(ds.shape) == c.shape and ds.dtype.kind in "fiu" and ds.dtype.itemsize <= 8
        for ds, c in zip(datasets[:k], current))
    if not fits:
        warnings.warn(f"load_model: the optimizer state in {r.path!r} ({len(names)} "
                      f"variables) does not fit the model's {type(opt).__name__} "
                      f"({len(current)} variables: {opt.variable_names}); the model starts "
                      "with a freshly initialized optimizer", UserWarning, stacklevel=4)
        return
    values = [r.read(ds, f"optimizer weight {n!r}") for ds, n in zip(datasets, names)]
    opt.set_state(values + current[k:])


def load_weights_from_hdf5(model, filepath, skip_mismatch=False):
    """Load the weights of a legacy HDF5 file (a whole-model file's
    ``model_weights``, or a Keras 2 weights file, whose root holds
    ``layer_names``) into ``model``, by layer order as Keras'
    ``load_weights("x.h5")`` does."""
    path = os.fspath(filepath)
    Model, Sequential = saving._models()
    if not isinstance(model, (Model, Sequential)):
        raise TypeError(f"load_weights: a legacy HDF5 file ({path!r}) holds a model's weights "
                        f"layer by layer; load it into a model, not a {type(model).__name__}")
    h5py = saving._h5py()
    saving._check_built(model)
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise saving.SavedFileError(f"load_weights: {path!r} is not a readable HDF5 file "
                                    f"({e})") from None
    with f:
        r = _Reader(h5py, path, "load_weights")
        group = f
        if "layer_names" not in f.attrs and "model_weights" in f:
            group = r.child(f, "model_weights", h5py.Group, "model_weights")
        model.set_weights(_read_weights(r, group, model, skip_mismatch))


def load_model_from_hdf5(filepath, custom_objects=None, compile=True, safe_mode=True):
    """A model from a legacy HDF5 file (Keras' or rnnkern's): architecture,
    weights and, with ``compile=True``, the training configuration and the
    optimizer state. Keras is not needed; h5py is."""
    path = os.fspath(filepath)
    if not os.path.exists(path):
        raise FileNotFoundError(f"load_model: no such file {path!r}")
    if not isinstance(safe_mode, bool):
        raise TypeError(f"load_model: safe_mode must be a bool, got {safe_mode!r}")
    h5py = saving._h5py()
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise saving.SavedFileError(f"load_model: {path!r} is not a readable HDF5 model file "
                             f"({e})") from None
    with f:
        r = _Reader(h5py, path)
        cfg = r.json_object(f, "model_config", "model_config")
        if cfg is None:
            hint = (" (a weights file: build the model in Python and call "
                    "model.load_weights on it)" if "model_weights" not in f else "")
            r.fail(f"no model config found (no model_config attribute){hint}")
        model = _model_from_config(r, cfg, custom_objects)
        group = r.child(f, "model_weights", h5py.Group, "model_weights")
        model.set_weights(_read_weights(r, group, model))
        if not compile:
            return model
        tc = r.json_object(f, "training_config", "training_config")
        if tc is None:
            warnings.warn(f"load_model: no training configuration found in {path!r}, so the "
                          "model was *not* compiled. Compile it manually.", UserWarning,
                          stacklevel=3)
            return model
        _compile(r, model, tc)
        if "optimizer_weights" in f:
            _read_optimizer(r, f, model)
    return model
