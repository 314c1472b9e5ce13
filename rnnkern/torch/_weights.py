"""PyTorch's recurrent weights <-> rnnkern's (Keras') layout.

The layouts and their NumPy conversions are in ``rnnkern._torch_layout``.

``KerasWeights.of`` converts once per weight change, not per call: a conversion
is cached against the parameter tensors themselves and their version counters
(every in-place change -- an optimizer step, ``load_state_dict``, ``copy_`` --
bumps the counter), together with the backend's packed weights. Writes through
``.data`` (``p.data -= lr * p.grad``, and gradcheck's perturbations) bypass the
counter, so a hit is also checked bit for bit against a copy of the values it
was made from (the same memory, and a memcmp against a copy): several times
cheaper than converting and packing again, and never a stale answer.
"""
from __future__ import annotations

import threading
import weakref

import numpy as np
import torch

from .._torch_layout import (  # noqa: F401  (re-exported)
    TORCH_GATE_PERM, grads_to_torch, keras_to_torch_cols, to_keras, to_torch,
    torch_to_keras_cols)

_core_mod = None


def _same_bytes(a, b):
    """Two C-contiguous arrays hold the same bytes (a memcmp in the extension)."""
    global _core_mod
    if _core_mod is None:
        try:
            from .. import _core
            _core_mod = _core
        except ImportError:   # no compiled extension: the reference backend only
            return a.tobytes() == b.tobytes()
    return _core_mod.same_bytes(a, b)


def _view(t):
    """(NumPy view, data pointer) of a CPU tensor's memory, or None where the check
    has to go through torch (a CUDA or non-contiguous tensor)."""
    if t is None or t.device.type != "cpu" or not t.is_contiguous():
        return None
    return t.detach().numpy(), t.data_ptr()


def _still(t, view, raw):
    """Tensor t (or None) still holds the values its conversion was made from: the
    same memory (``p.data = other`` moves it) holding the same bytes."""
    if t is None or raw is None:
        return t is None and raw is None
    if view is None:
        return torch.equal(t.detach().cpu(), torch.from_numpy(raw))
    return t.data_ptr() == view[1] and _same_bytes(view[0], raw)


def _version(t):
    try:
        return t._version
    except RuntimeError:   # an inference-mode tensor has no version counter
        return None


class KerasWeights:
    """The Keras-layout (W, U, b) and the backend's packed weights of one set of
    torch parameter tensors, valid while those tensors' versions are unchanged."""
    __slots__ = ("refs", "versions", "backend", "W", "U", "b", "packed", "raw", "views",
                 "layout", "__weakref__")

    _cache = {}                            # id(weight_hh) -> KerasWeights (a tensor's
                                           # == is elementwise: no WeakKeyDictionary)
    _lock = threading.Lock()
    conversions = 0                        # how many conversions ran (for tests)

    @classmethod
    def of(cls, cell, backend, w_ih, w_hh, b_ih, b_hh, keras_layout=False, reset_after=True):
        """The cached conversion of these tensors for ``backend`` (a backend object),
        converting (and packing) again only when one of them changed. With
        ``keras_layout`` the tensors are Keras' kernel, recurrent_kernel, bias
        (b_hh None): copied as they are."""
        tensors = (w_ih, w_hh, b_ih, b_hh)
        versions = tuple(None if t is None else _version(t) for t in tensors)
        cacheable = None not in versions[:2] and (b_ih is None or versions[2] is not None) \
            and (b_hh is None or versions[3] is not None)
        if cacheable:
            with cls._lock:
                hit = cls._cache.get(id(w_hh))
            if (hit is not None and hit.backend is backend and hit.versions == versions
                    and hit.layout == (keras_layout, reset_after)
                    and all((r is None and t is None) or (r is not None and r() is t)
                            for r, t in zip(hit.refs, tensors))
                    and all(_still(t, v, r) for t, v, r in zip(tensors, hit.views, hit.raw))):
                return hit
        self = cls.__new__(cls)
        arrays = [None if t is None else t.detach().cpu().numpy() for t in tensors]
        dtype = np.float64 if arrays[0].dtype == np.float64 else np.float32
        if keras_layout:
            self.W, self.U, self.b = (None if a is None else np.array(a, dtype, order="C")
                                      for a in arrays[:3])
        else:
            self.W, self.U, self.b = to_keras(cell, *arrays, dtype=dtype)
        self.layout = (keras_layout, reset_after)
        self.backend = backend
        self.packed = backend.pack(cell, self.U, reset_after, self.W)
        self.versions = versions
        self.raw = tuple(None if a is None else a.copy() for a in arrays) if cacheable else ()
        self.views = tuple(_view(t) for t in tensors) if cacheable else ()
        key = id(w_hh)
        self.refs = tuple(None if t is None else weakref.ref(t) for t in tensors)
        with cls._lock:
            KerasWeights.conversions += 1
            if cacheable:
                old = cls._cache.get(key)
                cls._cache[key] = self
                if old is None or old.refs[1]() is not w_hh:
                    # one finalizer per tensor (not per conversion): the entry goes
                    # with the tensor, and its id can't name a newer tensor's entry
                    weakref.finalize(w_hh, cls._forget, key)
        return self

    @classmethod
    def _forget(cls, key):
        with cls._lock:
            hit = cls._cache.get(key)
            if hit is not None and hit.refs[1]() is None:
                cls._cache.pop(key, None)
