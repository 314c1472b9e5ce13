"""The classes a layer or model config can name, filled by the classes
themselves (as Keras' keras/src/saving/object_registration.py), so that
``deserialize_layer`` needs to import neither ``rnnkern.layers`` nor
``rnnkern.models``: every public ``Layer`` subclass defined in those packages
registers under its class name when it is defined (``Layer.__init_subclass__``
calls ``register_builtin``). User classes are passed as ``custom_objects``, as
in Keras. A leaf module (it imports nothing of rnnkern's).
"""
from __future__ import annotations

__all__ = ["register_class", "registered_class", "serialize_layer", "deserialize_layer"]

_CLASSES = {}  # class name -> class
_BUILTIN_PACKAGES = ("rnnkern.layers.", "rnnkern.models.")


def register_class(cls, name=None):
    """Make ``cls`` resolvable by ``name`` (default: its class name) in
    configs; returns ``cls`` (usable as a decorator)."""
    _CLASSES[name or cls.__name__] = cls
    return cls


def register_builtin(cls):
    """Register a public class of ``rnnkern.layers`` / ``rnnkern.models``
    (called for every Layer subclass when it is defined; others are ignored)."""
    if cls.__module__.startswith(_BUILTIN_PACKAGES) and not cls.__name__.startswith("_"):
        register_class(cls)


def registered_class(name):
    """The class registered under ``name`` (KeyError when none is)."""
    return _CLASSES[name]


def serialize_layer(layer):
    """Keras' serialized form of a layer: class name and ``get_config()``."""
    return {"module": "keras.layers", "class_name": type(layer).__name__,
            "config": layer.get_config(), "registered_name": None}


def deserialize_layer(config, custom_objects=None):
    """The layer of ``serialize_layer``'s dict (a registered class of
    ``rnnkern.layers`` or ``rnnkern.models``, or one of ``custom_objects``)."""
    name = config.get("class_name") if isinstance(config, dict) else None
    cls = (custom_objects or {}).get(name) or _CLASSES.get(name or "")
    base = _CLASSES.get("Layer")
    if not (isinstance(cls, type) and base is not None and issubclass(cls, base)):
        known = sorted(n for n, c in _CLASSES.items() if c.__module__.startswith("rnnkern.layers"))
        raise ValueError(f"unknown layer class {name!r}: rnnkern has {known}")
    return cls.from_config(dict(config.get("config") or {}))
