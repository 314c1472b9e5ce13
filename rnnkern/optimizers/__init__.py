"""Optimizers, as Keras 3's ``keras.optimizers`` (torch backend numerics), on
NumPy arrays: SGD, Adam, AdamW, RMSprop, Adagrad, and ``schedules``.

The interface rnnkern's training loop uses (see ``base_optimizer``)::

    opt = rnnkern.optimizers.get("adam")      # or Adam(learning_rate=1e-3, ...)
    opt.build(weights)                        # list of float32 arrays (read-only)
    new = opt.apply(grads, weights)           # new arrays; weights, grads untouched
    opt.learning_rate, opt.iterations, opt.variables, opt.built
    opt.get_state(), opt.set_state(arrays), opt.get_config(), Adam.from_config(cfg)

``get(identifier)`` resolves as ``keras.optimizers.get``: a name in any of
Keras' spellings (case-insensitive: "adam", "Adam", "SGD", "rmsprop",
"RMSprop", "adamw", "adagrad"), a Keras config dict ``{"class_name",
"config"}``, or an instance (returned as is; a Keras optimizer instance is
converted through its config). ``serialize`` / ``deserialize`` write and read
Keras' dicts.
"""
from __future__ import annotations

from . import schedules
from .adagrad import Adagrad
from .adam import Adam
from .adamw import AdamW
from .base_optimizer import Optimizer
from .rmsprop import RMSprop
from .sgd import SGD

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "schedules", "get",
           "serialize", "deserialize"]

ALL_OBJECTS = (SGD, Adam, AdamW, RMSprop, Adagrad)
ALL_OBJECTS_DICT = {cls.__name__.lower(): cls for cls in ALL_OBJECTS}

# Keras 3 optimizers rnnkern does not implement (named in the error)
_KERAS_ONLY = ("adadelta", "adafactor", "adamax", "ftrl", "lion", "nadam", "muon", "lamb",
               "lossscaleoptimizer", "multioptimizer", "schedulefreeadamw")


def _unknown(name):
    valid = ", ".join(repr(c.__name__) for c in ALL_OBJECTS)
    if str(name).lower() in _KERAS_ONLY:
        return ValueError(f"Keras' optimizer {name!r} is not implemented in rnnkern; the "
                          f"available ones are {valid} (any case)")
    return ValueError(f"Could not interpret optimizer identifier: {name!r}; the valid names "
                      f"are {valid} (any case)")


def serialize(optimizer):
    """Keras' serialized form: ``{"module": "keras.optimizers", "class_name",
    "config", "registered_name"}``.

    Example: ``serialize(Adam())["class_name"] == "Adam"``
    """
    if not isinstance(optimizer, Optimizer):
        raise TypeError(f"serialize expects an rnnkern optimizer, got "
                        f"{type(optimizer).__name__}")
    builtin = ALL_OBJECTS_DICT.get(type(optimizer).__name__.lower()) is type(optimizer)
    return {"module": "keras.optimizers" if builtin else type(optimizer).__module__,
            "class_name": type(optimizer).__name__, "config": optimizer.get_config(),
            "registered_name": None if builtin else type(optimizer).__name__}


def deserialize(config, custom_objects=None):
    """The optimizer a serialized dict (Keras' own included) describes; the
    class name is matched case-insensitively, as Keras.

    Example: ``deserialize({"class_name": "adam", "config": {"learning_rate": 0.01}})``
    """
    if not isinstance(config, dict) or "class_name" not in config:
        raise ValueError("an optimizer config must be a dict with 'class_name' and "
                         f"'config'; got {config!r}")
    name = config["class_name"]
    custom = dict(custom_objects or {})
    cls = custom.get(name) or ALL_OBJECTS_DICT.get(str(name).lower())
    if cls is None:
        raise _unknown(name)
    cfg = config.get("config") or {}
    if not isinstance(cfg, dict):
        raise ValueError(f"the 'config' of optimizer {name!r} must be a dict, got {cfg!r}")
    return cls.from_config(dict(cfg), custom_objects=custom_objects) \
        if issubclass(cls, Optimizer) else cls(**cfg)


def get(identifier):
    """An optimizer from a name, a config dict or an instance (None -> None).

    Example: ``get("rmsprop").learning_rate == 0.0010000000474974513``
    """
    if identifier is None:
        return None
    if isinstance(identifier, Optimizer):
        return identifier
    if isinstance(identifier, dict):
        return deserialize(identifier)
    if isinstance(identifier, str):
        return deserialize({"class_name": identifier, "config": {}})
    if isinstance(identifier, type) and issubclass(identifier, Optimizer):
        return identifier()
    # a Keras optimizer instance: rebuilt from its config (its state is not carried over)
    cls = ALL_OBJECTS_DICT.get(type(identifier).__name__.lower())
    if cls is not None and hasattr(identifier, "get_config"):
        return cls.from_config(identifier.get_config())
    raise ValueError(f"Could not interpret optimizer identifier: {identifier!r}; expected "
                     f"a name ({', '.join(c.__name__ for c in ALL_OBJECTS)}), a config dict "
                     "or an optimizer instance")
