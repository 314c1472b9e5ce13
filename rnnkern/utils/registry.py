"""The classes a layer or model config can name, filled by the classes
themselves (as Keras' keras/src/saving/object_registration.py), so that
``deserialize_layer`` needs to import neither ``rnnkern.layers`` nor
``rnnkern.models``: every public ``Layer`` subclass defined in those packages
registers under its class name when it is defined (``Layer.__init_subclass__``
calls ``register_builtin``). User classes are passed as ``custom_objects``, as
in Keras, or registered with ``@register_keras_serializable(package="Custom")``
(Keras' decorator: configs then name them ``"Custom>ClassName"`` in
``registered_name``, and loading finds them without ``custom_objects``). The
``custom_objects`` of a ``deserialize_layer`` call also reach the configs nested
in that one (a wrapper's layer, an RNN's cell), as Keras' custom object scope.
A leaf module (it imports nothing of rnnkern's).
"""
from __future__ import annotations

import threading

__all__ = ["register_class", "registered_class", "serialize_layer", "deserialize_layer",
           "register_keras_serializable", "get_registered_name"]

_CLASSES = {}  # class name (or "package>name" of a registered user class) -> class
_REGISTERED_NAMES = {}  # user class -> "package>name" (register_keras_serializable)
_BUILTIN_PACKAGES = ("rnnkern.layers.", "rnnkern.models.")
_SCOPE = threading.local()  # the custom_objects of the deserialize_layer calls under way


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


def register_keras_serializable(package="Custom", name=None):
    """Keras' decorator: register a class of yours under ``"package>name"``
    (``name`` defaults to the class name), so that configs name it and
    ``from_config`` / ``load_model`` find it without ``custom_objects``.

    >>> @register_keras_serializable(package="Custom")
    ... class MinimalRNNCell(rnnkern.layers.Layer): ...
    """
    if not isinstance(package, str) or (name is not None and not isinstance(name, str)):
        raise TypeError(f"register_keras_serializable(package, name): both str (name may be "
                        f"None), got package={package!r}, name={name!r}")

    def decorator(cls):
        key = f"{package}>{name if name is not None else cls.__name__}"
        if isinstance(cls, type) and not hasattr(cls, "get_config"):
            raise ValueError("Cannot register a class that does not have a get_config() "
                             "method.")
        _CLASSES[key] = cls
        _REGISTERED_NAMES[cls] = key
        return cls

    return decorator


def get_registered_name(cls):
    """``"package>name"`` of a class registered with register_keras_serializable,
    else its name (Keras' get_registered_name)."""
    return _REGISTERED_NAMES.get(cls, cls.__name__)


def serialize_layer(layer):
    """Keras' serialized form of a layer: class name and ``get_config()`` (and,
    for a class registered with register_keras_serializable, its registered name,
    module None, as Keras writes it)."""
    registered = _REGISTERED_NAMES.get(type(layer))
    return {"module": "keras.layers" if registered is None else None,
            "class_name": type(layer).__name__, "config": layer.get_config(),
            "registered_name": registered}


def deserialize_layer(config, custom_objects=None):
    """The layer of ``serialize_layer``'s dict: one of ``custom_objects`` (these
    and those of the enclosing deserialize_layer calls), a class registered with
    register_keras_serializable (by ``registered_name``), or a class of
    ``rnnkern.layers`` / ``rnnkern.models``."""
    name = config.get("class_name") if isinstance(config, dict) else None
    registered = config.get("registered_name") if isinstance(config, dict) else None
    scope = getattr(_SCOPE, "objects", None) or {}
    objects = {**scope, **(custom_objects or {})}
    cls = None
    for key in (registered, name):
        if isinstance(key, str) and cls is None:
            cls = objects.get(key) or _CLASSES.get(key)
    base = _CLASSES.get("Layer")
    if not (isinstance(cls, type) and base is not None and issubclass(cls, base)):
        known = sorted(n for n, c in _CLASSES.items() if c.__module__.startswith("rnnkern.layers"))
        raise ValueError(f"unknown layer class {name!r}: rnnkern has {known} (a class of "
                         "yours: pass custom_objects={name: cls}, or register it with "
                         "@rnnkern.utils.registry.register_keras_serializable())")
    _SCOPE.objects = objects
    try:
        return cls.from_config(dict(config.get("config") or {}))
    finally:
        _SCOPE.objects = scope
