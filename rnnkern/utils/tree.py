"""Nested structures (keras/src/tree/tree_api.py): lists, tuples and dicts of
leaves, dict leaves in sorted key order as Keras' tree utilities. A leaf module
(it imports nothing)."""
from __future__ import annotations

__all__ = ["flatten", "map_structure", "pack_as"]


def flatten(s):
    """The leaves of a nested structure, in order (None is a leaf)."""
    if isinstance(s, (list, tuple)):
        return [leaf for x in s for leaf in flatten(x)]
    if isinstance(s, dict):
        return [leaf for k in sorted(s) for leaf in flatten(s[k])]
    return [s]


def map_structure(fn, s):
    """The structure with ``fn`` applied to every leaf."""
    if isinstance(s, list):
        return [map_structure(fn, x) for x in s]
    if isinstance(s, tuple):
        return tuple(map_structure(fn, x) for x in s)
    if isinstance(s, dict):
        return {k: map_structure(fn, v) for k, v in s.items()}
    return fn(s)


def pack_as(s, flat):
    """``flat`` (a list of leaves) in the structure of ``s``."""
    it = iter(flat)
    out = map_structure(lambda _: next(it), s)
    rest = list(it)
    if rest:
        raise ValueError(f"pack_as: {len(rest)} leaves left over")
    return out
