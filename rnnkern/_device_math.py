"""Float32 arithmetic on a GPU backend's device arrays: what the optimizers'
updates need to run where a recurrent layer's weights live (the models'
``fit`` with ``backend="cuda"`` layers: the weights, their gradients and the
optimizer's slots for them stay on the device; see ``rnnkern.models``).

``DeviceVec`` is a float32 array in C order on the device: one
``rnnkern.DeviceArray``, or a contiguous range of one (``view``: the optimizer
keeps the weights of every device layer in one buffer, so that a step is one
kernel an operation however many weights there are). It takes
part in NumPy's ufunc protocol for the operations the optimizers' kernels use:
``np.add``, ``np.subtract``, ``np.multiply``, ``np.divide``, ``np.maximum``,
``np.minimum``, ``np.sqrt`` and ``np.square`` (``out=`` a DeviceVec, or a new
one), the arithmetic operators (in place too) with another DeviceVec or a
scalar, ``fill``, ``copy``, ``clip`` and ``sum_squares``. Each operation is one
kernel of one correctly rounded float32 operation an element
(cuda/kernels.cuh ``elementwise``), so a sequence of them gives bitwise what
the same sequence gives on NumPy float32 arrays; a scalar operand is rounded to
float32 first (NumPy's rule for a Python or float32 scalar with a float32
array). The work is queued on the legacy default stream, in order with the
layer calls that use host activations.

Inside ``fused(n)`` the operations on arrays of n elements are not launched
one by one but recorded and run as one kernel (cuda/kernels.cuh
``elementwise_program``: each thread runs the steps in order on its element), so
an optimizer's update of every weight on the device is one launch; the results
are the same bits. A read (``numpy``, ``sum_squares``) or an operation of
another size runs what was recorded first.

Anything else NumPy does with a DeviceVec goes through ``__array__``: a host
copy (a download), never a silently wrong value.
"""
from __future__ import annotations

import contextlib
import threading

import numpy as np

__all__ = ["DeviceVec", "is_device_vec", "fused"]

# cuda/kernels.cuh EwiseOp
_ADD, _SUB, _MUL, _DIV, _MAX, _MIN, _RSUB, _RDIV, _SQRT, _SQUARE, _COPY, _FILL, _CLIP = range(13)
_F32 = np.dtype(np.float32)

_BINARY = {np.add: (_ADD, _ADD), np.subtract: (_SUB, _RSUB), np.multiply: (_MUL, _MUL),
           np.divide: (_DIV, _RDIV), np.maximum: (_MAX, _MAX), np.minimum: (_MIN, _MIN)}
_UNARY = {np.sqrt: _SQRT, np.square: _SQUARE}


def _core():
    from . import _core as core
    return core


def is_device_vec(a):
    return type(a) is DeviceVec


# kernels launched so far: one operation each, and programs (the tests count them)
launches = {"elementwise": 0, "program": 0}


class _Program:
    """Operations recorded by ``fused``: the arrays (DeviceVecs of n elements, kept
    alive until run) and the steps (op, out, a, b, s0, s1) over their indices."""

    def __init__(self, n):
        self.n = n
        self.device = None
        self.arrays, self.index, self.steps = [], {}, []
        self.limits = None

    def _at(self, v):
        key = (id(v.base), v.offset)
        i = self.index.get(key)
        if i is None:
            i = self.index[key] = len(self.arrays)
            self.arrays.append(v)
        return i

    def add(self, op, out, a, b, s0, s1):
        """Record the step, or False where it cannot be (another size or device)."""
        if out.size != self.n or (self.device is not None and out.device != self.device):
            return False
        if self.limits is None:
            self.limits = _core().gpu_program_limits(out.device)
        new = {(id(v.base), v.offset) for v in (out, a, b) if v is not None} - set(self.index)
        # another range of an array already in the program could overlap it at other
        # elements (other threads): what was recorded runs first
        overlap = any(id(w.base) == k[0] for k in new for w in self.arrays)
        if overlap or len(self.steps) >= self.limits[0] or \
                len(self.arrays) + len(new) > self.limits[1]:
            self.run()
        self.device = out.device
        self.steps.append((op, self._at(out), 0 if a is None else self._at(a),
                           -1 if b is None else self._at(b), s0, s1))
        return True

    def run(self):
        if self.steps:
            _core().gpu_elementwise_program(self.n, [(v.base, v.offset) for v in self.arrays],
                                            self.steps)
            launches["program"] += 1
        self.arrays, self.index, self.steps = [], {}, []


_recording = threading.local()


def _flush():
    p = getattr(_recording, "program", None)
    if p is not None:
        p.run()


@contextlib.contextmanager
def fused(n):
    """Record this thread's DeviceVec operations on arrays of ``n`` elements and run
    them as one kernel (in order, bitwise the same) when the block ends, before a
    read, or when an operation of another size comes; nothing recorded runs if
    the block raises. Nested blocks join the outer one."""
    if getattr(_recording, "program", None) is not None:
        yield
        return
    p = _recording.program = _Program(int(n))
    try:
        yield
    except BaseException:
        _recording.program = None
        raise
    _recording.program = None
    p.run()


def _scalar(v, what):
    """A scalar operand as float32 (NumPy's rounding of a weak or float32 scalar)."""
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, float, np.floating,
                                                              np.integer)):
        if isinstance(v, np.ndarray) and v.ndim == 0 and v.dtype.kind in "fiu":
            return float(np.float32(v))
        raise TypeError(f"DeviceVec {what}: a DeviceVec or a real scalar, got "
                        f"{type(v).__name__}")
    return float(np.float32(v))


def _operator(ufunc, reflected=False, in_place=False):
    """A DeviceVec arithmetic operator: ``ufunc`` of (self, other), (other, self)
    reflected, or into self in place."""
    def op(self, other):
        return self._binary(_BINARY[ufunc], other, self if in_place else None, reflected)
    op.__name__ = f"__{'i' if in_place else 'r' if reflected else ''}{ufunc.__name__}__"
    return op


def _on_host(ufunc, method, inputs, out, kwargs):
    """A ufunc DeviceVec does not run: NumPy's, on host copies (never into a
    DeviceVec)."""
    if out is not None and any(is_device_vec(o) for o in out):
        raise TypeError(f"{ufunc.__name__} with out= a DeviceVec: the device runs only "
                        "add, subtract, multiply, divide, maximum, minimum, sqrt and square")
    inputs = [np.asarray(x) if is_device_vec(x) else x for x in inputs]
    if out is not None:
        kwargs = dict(kwargs, out=out)
    return getattr(ufunc, method)(*inputs, **kwargs)


class DeviceVec:
    """A float32 array on a GPU backend's device (a ``DeviceArray``, or the
    elements [offset, offset + size) of one, in C order) with NumPy's elementwise
    arithmetic (see the module docstring). It exports ``__cuda_array_interface__``,
    so the layer calls take it as they take any device array."""

    __slots__ = ("base", "offset", "shape", "__weakref__")
    dtype = _F32
    __array_priority__ = 100

    def __init__(self, base, offset=0, shape=None):
        if getattr(base, "dtype", None) != "float32":
            raise TypeError(f"DeviceVec wraps a float32 DeviceArray, got "
                            f"{type(base).__name__}")
        self.base = base
        self.offset = int(offset)
        self.shape = tuple(int(e) for e in (base.shape if shape is None else shape))
        if self.offset < 0 or 4 * (self.offset + self.size) > base.nbytes:
            raise ValueError(f"DeviceVec: elements [{self.offset}, {self.offset + self.size})"
                             f" are outside the array's {base.nbytes // 4}")

    def view(self, offset, shape):
        """The elements [offset, offset + prod(shape)) of this (C order) as an
        array of that shape, sharing its memory."""
        n = 1
        for e in shape:
            n *= int(e)
        if offset < 0 or offset + n > self.size:
            raise ValueError(f"DeviceVec.view: elements [{offset}, {offset + n}) of "
                             f"{self.size}")
        return DeviceVec(self.base, self.offset + offset, shape)

    def whole(self):
        """Whether this is all of its DeviceArray."""
        return self.offset == 0 and 4 * self.size == self.base.nbytes

    @property
    def __cuda_array_interface__(self):
        cai = dict(self.base.__cuda_array_interface__)
        ptr = int(cai["data"][0]) if cai.get("data") else 0
        cai.update(shape=self.shape, typestr="<f4", strides=None, version=3,
                   data=(ptr + 4 * self.offset if ptr else 0, False))
        return cai

    # ------------------------------------------------------------ making
    @classmethod
    def empty(cls, device, shape):
        return cls(_core().device_empty(device, tuple(shape), "float32"))

    @classmethod
    def upload(cls, a, device):
        """A device copy of host array ``a`` (as float32)."""
        return cls(_core().device_array(device, np.ascontiguousarray(a, np.float32)))

    @property
    def device(self):
        return self.base.device

    @property
    def size(self):
        n = 1
        for e in self.shape:
            n *= e
        return n

    @property
    def ndim(self):
        return len(self.shape)

    @property
    def nbytes(self):
        return 4 * self.size

    def __len__(self):
        if not self.shape:
            raise TypeError("len() of a 0-d DeviceVec")
        return self.shape[0]

    def __repr__(self):
        return f"DeviceVec(shape={self.shape}, device={self.device!r})"

    # ------------------------------------------------------------ to the host
    def numpy(self):
        """A host copy (a new float32 NumPy array)."""
        _flush()
        if self.whole():
            return self.base.numpy().reshape(self.shape)
        return _core().gpu_download(self.base, self.offset, self.size).reshape(self.shape)

    def __array__(self, dtype=None, copy=None):
        a = self.numpy()
        return a if dtype is None else a.astype(dtype, copy=False)

    # ------------------------------------------------------------ kernels
    def _run(self, op, out, a, b=None, s0=0.0, s1=0.0):
        n = out.size
        for v in (a, b):
            if v is not None and v.shape != out.shape:
                raise ValueError(f"DeviceVec operands of shapes {v.shape} and {out.shape}: "
                                 "no broadcasting on the device")
        p = getattr(_recording, "program", None)
        if p is not None:
            if p.add(op, out, a, b, s0, s1):
                return out
            p.run()     # what came before first
        launches["elementwise"] += 1
        _core().gpu_elementwise(op, n, out.base, out.offset, None if a is None else a.base,
                                0 if a is None else a.offset, None if b is None else b.base,
                                0 if b is None else b.offset, s0, s1)
        return out

    def _like(self):
        return DeviceVec.empty(self.device, self.shape)

    def _binary(self, ops, other, out=None, reflected=False):
        op, rop = ops
        out = self._like() if out is None else out
        if is_device_vec(other):
            if reflected:
                return self._run(op, out, other, self)
            return self._run(op, out, self, other)
        s = _scalar(other, "operand")
        if reflected and rop != op:
            return self._run(rop, out, self, None, s)
        return self._run(op, out, self, None, s)

    def __array_ufunc__(self, ufunc, method, *inputs, out=None, **kwargs):
        dtype = kwargs.get("dtype")
        if method != "__call__" or set(kwargs) - {"dtype"} or ufunc not in _BINARY and \
                ufunc not in _UNARY or (dtype is not None and np.dtype(dtype) != _F32) or \
                (out is not None and (len(out) != 1 or not is_device_vec(out[0]))):
            return _on_host(ufunc, method, inputs, out, kwargs)
        if out is not None:
            out = out[0]
        if ufunc in _UNARY and len(inputs) == 1:
            x = inputs[0]
            return self._run(_UNARY[ufunc], x._like() if out is None else out, x)
        if ufunc in _BINARY and len(inputs) == 2:
            a, b = inputs
            if is_device_vec(a):
                return a._binary(_BINARY[ufunc], b, out)
            return b._binary(_BINARY[ufunc], a, out, reflected=True)
        return _on_host(ufunc, method, inputs, None if out is None else (out,), kwargs)

    __add__ = _operator(np.add)
    __radd__ = _operator(np.add, reflected=True)
    __sub__ = _operator(np.subtract)
    __rsub__ = _operator(np.subtract, reflected=True)
    __mul__ = _operator(np.multiply)
    __rmul__ = _operator(np.multiply, reflected=True)
    __truediv__ = _operator(np.divide)
    __rtruediv__ = _operator(np.divide, reflected=True)
    __iadd__ = _operator(np.add, in_place=True)
    __isub__ = _operator(np.subtract, in_place=True)
    __imul__ = _operator(np.multiply, in_place=True)
    __itruediv__ = _operator(np.divide, in_place=True)

    def fill(self, value):
        self._run(_FILL, self, None, None, _scalar(value, "fill"))

    def copy(self):
        return self._run(_COPY, self._like(), self)

    def assign(self, src):
        """Copy ``src`` (a DeviceVec of this shape, or a host array: uploaded) here."""
        if not is_device_vec(src):
            src = DeviceVec.upload(np.asarray(src, np.float32).reshape(self.shape), self.device)
        return self._run(_COPY, self, src)

    def clip(self, lo, hi, out=None):
        """NumPy's clip(self, lo, hi) (NaN kept)."""
        return self._run(_CLIP, self._like() if out is None else out, self, None,
                         _scalar(lo, "clip"), _scalar(hi, "clip"))

    def sum_squares(self):
        """The sum of the squares of the elements, in double and in a fixed order
        (bitwise the same every run): a scalar download."""
        _flush()
        return _core().gpu_sum_squares(self.size, self.base, self.offset)

    def __bool__(self):
        raise ValueError("the truth value of a DeviceVec is ambiguous")
