"""PyTorch's recurrent weights <-> rnnkern's (Keras') layout.

torch.nn keeps, per layer and direction, ``weight_ih`` [G*H, C], ``weight_hh``
[G*H, H] and two biases ``bias_ih``, ``bias_hh`` [G*H], gate blocks in torch's
order (LSTM i, f, g, o; GRU r, z, n). rnnkern's kernels take Keras' layout:
W [C, G*H], U [H, G*H], gate blocks LSTM i, f, c, o and GRU z, r, h, one bias
[G*H] (SimpleRNN, LSTM: torch's two biases are only ever added) or, for GRU,
[2, G*H] (row 0 input bias, row 1 recurrent bias: torch's GRU is Keras'
reset_after=True form, the recurrent bias inside the reset gate's product).

``KerasWeights.of`` converts once per weight change, not per call: a conversion
is cached against the parameter tensors themselves and their version counters
(every in-place change -- an optimizer step, ``load_state_dict``, ``copy_`` --
bumps the counter), together with the backend's packed weights. Writes through
``.data`` (``p.data -= lr * p.grad``, and gradcheck's perturbations) bypass the
counter, so a hit is also checked bit for bit against a copy of the values it
was made from: a memory compare, several times cheaper than converting and
packing again, and never a stale answer.
"""
from __future__ import annotations

import threading
import weakref

import numpy as np

#: torch gate block j holds Keras gate block TORCH_GATE_PERM[cell][j]
#: (LSTM: Keras i,f,c,o == torch i,f,g,o; GRU: Keras z,r,h -> torch r,z,n).
TORCH_GATE_PERM = {"simple_rnn": (0,), "lstm": (0, 1, 2, 3), "gru": (1, 0, 2)}


def keras_to_torch_cols(m, cell):
    """[..., G*H] in Keras gate order -> [..., G*H] in torch gate order."""
    perm = TORCH_GATE_PERM[cell]
    if perm == tuple(range(len(perm))):
        return m
    H = m.shape[-1] // len(perm)
    return np.concatenate([m[..., k * H:(k + 1) * H] for k in perm], axis=-1)


def torch_to_keras_cols(m, cell):
    """[..., G*H] in torch gate order -> [..., G*H] in Keras gate order."""
    perm = TORCH_GATE_PERM[cell]
    if perm == tuple(range(len(perm))):
        return m
    inv = [perm.index(k) for k in range(len(perm))]
    H = m.shape[-1] // len(perm)
    return np.concatenate([m[..., j * H:(j + 1) * H] for j in inv], axis=-1)


def to_keras(cell, w_ih, w_hh, b_ih=None, b_hh=None, dtype=np.float32):
    """NumPy arrays in torch's layout -> (W, U, b) in Keras' (b None without biases)."""
    W = np.ascontiguousarray(torch_to_keras_cols(np.asarray(w_ih).T, cell), dtype=dtype)
    U = np.ascontiguousarray(torch_to_keras_cols(np.asarray(w_hh).T, cell), dtype=dtype)
    if b_ih is None:
        return W, U, None
    bi = torch_to_keras_cols(np.asarray(b_ih), cell)
    bh = torch_to_keras_cols(np.asarray(b_hh), cell)
    if cell == "gru":
        b = np.ascontiguousarray(np.stack([bi, bh]), dtype=dtype)
    else:
        b = np.ascontiguousarray(bi + bh, dtype=dtype)
    return W, U, b


def to_torch(cell, W, U, b=None):
    """(W, U, b) in Keras' layout -> (w_ih, w_hh, b_ih, b_hh) NumPy arrays in torch's.
    A single Keras bias goes to bias_ih, with bias_hh zero (torch adds the two)."""
    w_ih = np.ascontiguousarray(keras_to_torch_cols(np.asarray(W), cell).T)
    w_hh = np.ascontiguousarray(keras_to_torch_cols(np.asarray(U), cell).T)
    if b is None:
        return w_ih, w_hh, None, None
    b = np.asarray(b)
    if cell == "gru":
        if b.ndim != 2:
            raise ValueError("a GRU bias must be [2, 3*H] (Keras reset_after=True), "
                             f"got shape {b.shape}")
        return (w_ih, w_hh, np.ascontiguousarray(keras_to_torch_cols(b[0], cell)),
                np.ascontiguousarray(keras_to_torch_cols(b[1], cell)))
    return (w_ih, w_hh, np.ascontiguousarray(keras_to_torch_cols(b, cell)),
            np.zeros_like(b))


def grads_to_torch(cell, dW, dU, db):
    """Keras-layout gradients -> (d w_ih, d w_hh, d b_ih, d b_hh) in torch's layout;
    for SimpleRNN and LSTM both biases get the one bias' gradient."""
    d_ih = np.ascontiguousarray(keras_to_torch_cols(dW, cell).T)
    d_hh = np.ascontiguousarray(keras_to_torch_cols(dU, cell).T)
    if db is None:
        return d_ih, d_hh, None, None
    if cell == "gru":
        return (d_ih, d_hh, np.ascontiguousarray(keras_to_torch_cols(db[0], cell)),
                np.ascontiguousarray(keras_to_torch_cols(db[1], cell)))
    dbt = np.ascontiguousarray(keras_to_torch_cols(db, cell))
    return d_ih, d_hh, dbt, dbt.copy()


def _same_bits(a, b):
    """a and b (arrays or None) hold the same bits (NaN payloads included)."""
    if a is None or b is None:
        return a is None and b is None
    if a.shape != b.shape or a.dtype != b.dtype:
        return False
    u = np.uint64 if a.dtype.itemsize == 8 else np.uint32
    return bool(np.array_equal(np.ascontiguousarray(a).view(u), b.view(u)))


def _version(t):
    try:
        return t._version
    except RuntimeError:   # an inference-mode tensor has no version counter
        return None


class KerasWeights:
    """The Keras-layout (W, U, b) and the backend's packed weights of one set of
    torch parameter tensors, valid while those tensors' versions are unchanged."""
    __slots__ = ("refs", "versions", "backend", "W", "U", "b", "packed", "raw",
                 "__weakref__")

    _cache = {}                            # id(weight_hh) -> KerasWeights (a tensor's
                                           # == is elementwise: no WeakKeyDictionary)
    _lock = threading.Lock()
    conversions = 0                        # how many conversions ran (for tests)

    @classmethod
    def of(cls, cell, backend, w_ih, w_hh, b_ih, b_hh):
        """The cached conversion of these tensors for ``backend`` (a backend object),
        converting (and packing) again only when one of them changed."""
        tensors = (w_ih, w_hh, b_ih, b_hh)
        versions = tuple(None if t is None else _version(t) for t in tensors)
        cacheable = None not in versions[:2] and (b_ih is None or None not in versions[2:])
        arrays = [None if t is None else t.detach().cpu().numpy() for t in tensors]
        if cacheable:
            with cls._lock:
                hit = cls._cache.get(id(w_hh))
            if (hit is not None and hit.backend is backend and hit.versions == versions
                    and all((r is None and t is None) or (r is not None and r() is t)
                            for r, t in zip(hit.refs, tensors))
                    and all(_same_bits(a, r) for a, r in zip(arrays, hit.raw))):
                return hit
        self = cls.__new__(cls)
        dtype = np.float64 if arrays[0].dtype == np.float64 else np.float32
        self.W, self.U, self.b = to_keras(cell, *arrays, dtype=dtype)
        self.backend = backend
        self.packed = backend.pack(cell, self.U, True, self.W)
        self.versions = versions
        self.raw = tuple(None if a is None else a.copy() for a in arrays) if cacheable else ()
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
