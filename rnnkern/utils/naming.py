"""Keras' automatic names (keras/src/utils/naming.py): ``dense``, ``dense_1``,
... for layers, models, losses, metrics and optimizers alike. A leaf module
(standard library only)."""
from __future__ import annotations

import collections
import re
import threading

__all__ = ["to_snake_case", "uniquify", "auto_name", "clear_session"]

_UIDS = collections.defaultdict(int)
_UID_LOCK = threading.Lock()


def to_snake_case(name):
    """Keras' snake case of a class name: ``SimpleRNN`` -> ``simple_rnn``."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def uniquify(name):
    """``name`` the first time, then ``name_1``, ``name_2``, ... (Keras' rule)."""
    with _UID_LOCK:
        n = _UIDS[name]
        _UIDS[name] += 1
    return name if n == 0 else f"{name}_{n}"


def auto_name(prefix):
    return uniquify(to_snake_case(prefix))


def clear_session():
    """Restart Keras' automatic names (the next Dense is ``dense`` again)."""
    with _UID_LOCK:
        _UIDS.clear()
