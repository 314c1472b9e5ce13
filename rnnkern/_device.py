"""Arrays already on a GPU backend's device, used in place.

An argument is a device array when it exposes ``__cuda_array_interface__``
(PyTorch CUDA tensors, CuPy, Numba, rnnkern's ``DeviceArray``) or DLPack
(``__dlpack__`` with ``__dlpack_device__`` on a CUDA device). A call whose x is
a device array takes every array argument from the device (no host copies) and
returns its results there: PyTorch tensors for PyTorch inputs, CuPy arrays for
CuPy inputs, ``rnnkern.DeviceArray`` otherwise (which both interfaces export).

On ``cuda`` a device array must be device (or managed) memory of the current
device; on ``cuda-emu``, whose device is the host, memory the emulation
allocated itself (``device_array(a, "cuda-emu")``): anything else is refused
with a message, never read.
"""
from __future__ import annotations

import math

import numpy as np

from ._common import GATES

_KDL_CPU, _KDL_CUDA, _KDL_CUDA_MANAGED = 1, 2, 13
_FLOAT32 = "<f4"


def _core():
    from . import _core as core
    return core


def device_array(a, backend="cuda"):
    """A copy of host array ``a`` on ``backend``'s device ('cuda' or 'cuda-emu'):
    a ``DeviceArray`` (float32; bool and uint8 arrays stay one byte an element)."""
    if backend not in ("cuda", "cuda-emu"):
        raise ValueError(f"backend must be 'cuda' or 'cuda-emu', got {backend!r}")
    return _core().device_array(backend, np.asarray(a))


def _is_torch(a):
    return type(a).__module__.split(".")[0] == "torch" and hasattr(a, "data_ptr")


def is_device_array(a, backend=None):
    """Whether ``a`` is an array on a CUDA device (or rnnkern's emulated one). On
    ``backend="cuda-emu"``, whose device is the host, PyTorch CPU tensors are
    device arrays too: the path a CUDA tensor takes on ``cuda``, run in CI."""
    if a is None or isinstance(a, np.ndarray):
        return False
    if _is_torch(a):
        if backend == "cuda-emu" and getattr(a, "device", None) is not None \
                and a.device.type == "cpu":
            return True
        return bool(getattr(a, "is_cuda", False))
    try:   # a property that may raise (for host memory) rather than be absent
        if getattr(a, "__cuda_array_interface__", None) is not None:
            return True
    except Exception:
        pass
    dev = getattr(a, "__dlpack_device__", None)
    if dev is None or not hasattr(a, "__dlpack__"):
        return False
    try:
        return int(dev()[0]) in (_KDL_CUDA, _KDL_CUDA_MANAGED)
    except Exception:
        return False


class _View:
    """One device argument: its address, shape and typestr, and what keeps its
    memory alive for the call."""
    __slots__ = ("address", "shape", "typestr", "keep")

    def __init__(self, address, shape, typestr, keep):
        self.address, self.shape, self.typestr, self.keep = address, shape, typestr, keep

    @property
    def nbytes(self):
        return math.prod(self.shape) * (4 if self.typestr == _FLOAT32 else 1)


def _contiguous(shape, strides, itemsize, in_bytes):
    if strides is None:
        return True
    want, step = [], 1 if not in_bytes else itemsize
    for d in reversed(shape):
        want.append(step)
        step *= d
    want.reverse()
    return all(s == w or d == 1 for s, w, d in zip(strides, want, shape))


def _sync_stream(stream, backend):
    """CUDA Array Interface v3: the producer's work on ``stream`` must be done
    before the consumer reads (None: nothing to wait for; 1, 2: the legacy and
    per-thread default streams, which the kernels' own stream follows)."""
    if backend == "cuda" and stream not in (None, 1, 2):
        _core().cuda_stream_synchronize(int(stream))


def _typestr_of_dl(code_bits_lanes):
    code, bits, lanes = code_bits_lanes
    if lanes == 1 and code == 2 and bits == 32:
        return _FLOAT32
    if lanes == 1 and bits == 8 and code in (1, 6):
        return "|u1"
    return f"dlpack(code={code}, bits={bits}, lanes={lanes})"


_TORCH_TYPESTR = {"torch.float32": _FLOAT32, "torch.bool": "|b1", "torch.uint8": "|u1"}


def _torch_view(t, name, backend):
    """A PyTorch tensor's _View from torch's own metadata: no DLPack capsule and no
    pointer query (torch owns the memory and knows its extent). ``cuda``: a CUDA
    tensor of the current device; ``cuda-emu``: a CPU tensor (the host is its
    device)."""
    dev = t.device
    if backend == "cuda":
        import torch
        if dev.type != "cuda" or dev.index != torch.cuda.current_device():
            raise ValueError(f"{name} is not memory the cuda backend can use: it is on {dev}, "
                             f"the current CUDA device is cuda:{torch.cuda.current_device()}")
    elif dev.type != "cpu":
        raise ValueError(f"{name} is not memory the {backend} backend can use: it is on {dev} "
                         "(cuda-emu runs on the host: CPU tensors)")
    if not t.is_contiguous():
        raise ValueError(f"{name} must be C-contiguous on the device, got strides "
                         f"{tuple(t.stride())} (elements) for shape {tuple(t.shape)}")
    typestr = _TORCH_TYPESTR.get(str(t.dtype), str(t.dtype))
    return _View(t.data_ptr(), tuple(t.shape), typestr, t)


def view(a, name, backend):
    """The _View of device array ``a`` (argument ``name``), checked: C-contiguous,
    and memory ``backend``'s kernels may use, kept alive by the view for the call.
    TypeError / ValueError otherwise."""
    if _is_torch(a):
        return _torch_view(a, name, backend)
    cai = getattr(a, "__cuda_array_interface__", None)
    if cai is not None:
        shape = tuple(int(d) for d in cai["shape"])
        typestr = str(cai["typestr"])
        address = int(cai["data"][0]) if cai.get("data") else 0
        strides = cai.get("strides")
        itemsize = int(typestr[2:]) if typestr[2:].isdigit() else 1
        if cai.get("mask") is not None:
            raise ValueError(f"{name}: masked __cuda_array_interface__ arrays are not supported")
        if not _contiguous(shape, strides, itemsize, True):
            raise ValueError(f"{name} must be C-contiguous on the device, got strides {strides} "
                             f"for shape {shape}")
        _sync_stream(cai.get("stream"), backend)
        v = _View(address, shape, typestr, a)
    else:
        try:
            cap = a.__dlpack__(stream=1) if backend == "cuda" else a.__dlpack__()
        except TypeError:
            cap = a.__dlpack__()
        address, shape, strides, dtype, _dev = _core().dlpack_view(cap)
        typestr = _typestr_of_dl(dtype)
        if not _contiguous(shape, strides, 1, False):
            raise ValueError(f"{name} must be C-contiguous on the device, got strides {strides} "
                             f"(elements) for shape {shape}")
        v = _View(address, tuple(shape), typestr, (a, cap))
    if v.nbytes and not _core().device_accessible(backend, v.address, v.nbytes):
        where = ("cuda-emu runs on the host: it uses in place only memory it allocated "
                 "(rnnkern.device_array(a, 'cuda-emu')); pass a NumPy array, or use the "
                 "'cuda' backend for arrays on a GPU" if backend == "cuda-emu" else
                 "it must be device or managed memory of the current CUDA device")
        raise ValueError(f"{name} is not memory the {backend} backend can use: {where}")
    return v


def _empty_like(like, shape, backend):
    """Uninitialised float32 device memory for a result, of x's kind."""
    mod = type(like).__module__.split(".")[0]
    if mod == "torch":   # a CUDA tensor on cuda, a CPU tensor on cuda-emu
        import torch
        return torch.empty(shape, dtype=torch.float32, device=like.device)
    if backend == "cuda" and mod == "cupy":
        import cupy
        with cupy.cuda.Device(like.device.id):
            return cupy.empty(shape, dtype=cupy.float32)
    return _core().device_empty(backend, list(shape), "float32")


def _zeros_like(like, shape, backend):
    mod = type(like).__module__.split(".")[0]
    if mod == "torch" or (backend == "cuda" and mod == "cupy"):
        z = _empty_like(like, shape, backend)
        z.fill(0) if mod == "cupy" else z.zero_()
        return z
    return _core().device_array(backend, np.zeros(shape, np.float32))


def _addr(v):
    return 0 if v is None else v.address


class DeviceCache:
    """A device forward's workspace and how to make its backward's results (``keep``:
    the weights a weights_in_place backward reads)."""
    __slots__ = ("ws", "like", "cell", "N", "T", "C", "H", "G", "bias_shape",
                 "return_sequences", "backend", "keep", "torch_layout", "__weakref__")


def _arg(v):
    """A view as the bindings' checker takes it: (address, shape, typestr), or None."""
    return None if v is None else (v.address, v.shape, v.typestr)


def _stream_of(x, stream):
    """The stream a call's work goes to: the caller's, else PyTorch's current stream
    for its CUDA tensors (so torch's later work on that stream sees the results
    without a synchronize), else the legacy default stream (0)."""
    if stream is not None:
        return int(stream)
    if _is_torch(x) and x.is_cuda:
        import torch
        return int(torch.cuda.current_stream(x.device).cuda_stream)
    return 0


def forward(backend, options, x, W, U, b, h0, c0, mask, input_masks, recurrent_masks,
            stream=None, weights_in_place=False, bias_hh=None, torch_layout=False):
    """The GPU forward on device arrays, ``options`` an ``RnnOptions``: (y, h_T, c_T
    or None, DeviceCache or None). The arrays' shapes and dtypes are checked by the
    bindings, by the same rules as host arrays'; here, that each is device memory
    the backend may use.

    The work is queued on ``stream`` (default: PyTorch's current stream for CUDA
    tensors, else the legacy default stream) and not waited for: results are
    ready in that stream's order. ``weights_in_place``: a training forward's
    backward reads W and U from these arrays (the caller keeps them unchanged
    until then; the cache holds them alive) instead of device copies.
    ``torch_layout``: W, U, b are PyTorch's weight_ih, weight_hh, bias_ih and
    ``bias_hh`` its second bias, converted on the device; the backward's weight
    gradients come back in that layout (d bias_hh as the seventh result)."""
    args = {"x": x, "weight_ih" if torch_layout else "kernel": W,
            "weight_hh" if torch_layout else "recurrent_kernel": U,
            "bias_ih" if torch_layout else "bias": b, "h0": h0, "c0": c0,
            "mask": mask, "input_masks": input_masks, "recurrent_masks": recurrent_masks}
    if torch_layout:
        args["bias_hh"] = bias_hh
    for name, a in args.items():
        if a is not None and not is_device_array(a, backend):
            raise ValueError(f"x is on the device but {name} is not ({type(a).__name__}): "
                             "pass every array of a call on the device, or every one on the host")
    cell = options.cell
    lstm = cell == "lstm"
    if not lstm:
        args["c0"] = None   # read by LSTM only, as on the host
    views = tuple(_arg(None if a is None else view(a, name, backend))
                  for name, a in args.items())
    core = options.core
    N, T, C, H = _core().device_forward_dims(core, views, torch_layout)
    y = _empty_like(x, (N, T, H) if options.return_sequences else (N, H), backend)
    hT = _empty_like(x, (N, H), backend)
    cT = _empty_like(x, (N, H), backend) if lstm else None
    stream = _stream_of(x, stream)
    ws = _core().forward_device(backend, core, views, view(y, "y", backend).address,
                                view(hT, "h_T", backend).address,
                                0 if cT is None else view(cT, "c_T", backend).address,
                                stream, bool(weights_in_place), bool(torch_layout))
    cache = None
    if options.training:
        G = GATES[cell]
        cache = DeviceCache()
        cache.ws, cache.like, cache.cell, cache.backend = ws, x, cell, backend
        cache.N, cache.T, cache.C, cache.H, cache.G = N, T, C, H, G
        cache.torch_layout = bool(torch_layout)
        if torch_layout:
            cache.bias_shape = None if b is None else (G * H,)
        else:
            cache.bias_shape = None if b is None else (
                (2, G * H) if cell == "gru" and options.reset_after else (G * H,))
        cache.return_sequences = options.return_sequences
        cache.keep = (W, U) if weights_in_place else None
    return y, hT, cT, cache


def backward(cache, dy, dh_T, dc_T, stream=None, out=None):
    """BPTT of a device forward: (dx, dW, dU, db or None, dh0, dc0 or None) on the
    device (the gradients' shapes checked by the bindings, as on the host), queued
    on ``stream`` (default as the forward's). After a torch_layout forward: (dx,
    d weight_ih, d weight_hh, d bias_ih or None, dh0, dc0 or None, d bias_hh or
    None). ``out``: results to write into instead of new arrays (name -> device
    array of the result's shape: "dW", "dU", "db"), returned as given."""
    be, like, N, T, C, H, G = (cache.backend, cache.like, cache.N, cache.T, cache.C, cache.H,
                               cache.G)
    lstm = cache.cell == "lstm"
    if dh_T is None:
        dh_T = _zeros_like(like, (N, H), be)
    if lstm and dc_T is None:
        dc_T = _zeros_like(like, (N, H), be)
    grads = {"dy": dy, "dh_T": dh_T, "dc_T": dc_T if lstm else None}
    for name, a in grads.items():
        if a is not None and not is_device_array(a, be):
            raise ValueError(f"the forward ran on device arrays but {name} is not "
                             f"({type(a).__name__}): pass the gradients on the device")
    gv = {n: _arg(None if a is None else view(a, n, be)) for n, a in grads.items()}
    tl = cache.torch_layout
    shapes = {"dx": (N, T, C), "dW": (G * H, C) if tl else (C, G * H),
              "dU": (G * H, H) if tl else (H, G * H), "dh0": (N, H)}
    if cache.bias_shape is not None:
        shapes["db"] = cache.bias_shape
        if tl:
            shapes["db_hh"] = cache.bias_shape
    if lstm:
        shapes["dc0"] = (N, H)
    res = {}
    for n, s in shapes.items():
        given = (out or {}).get(n)
        if given is not None and tuple(given.shape) != tuple(s):
            raise ValueError(f"out[{n!r}] has shape {tuple(given.shape)}, the gradient {s}")
        res[n] = given if given is not None else _empty_like(like, s, be)
    rv = {n: view(a, n, be) for n, a in res.items()}
    _core().backward_device(
        cache.ws, gv["dy"], gv["dh_T"], gv["dc_T"], rv["dx"].address, rv["dW"].address,
        rv["dU"].address, _addr(rv.get("db")), rv["dh0"].address, _addr(rv.get("dc0")),
        _stream_of(like, stream), _addr(rv.get("db_hh")))
    out = (res["dx"], res["dW"], res["dU"], res.get("db"), res["dh0"], res.get("dc0"))
    return out + (res.get("db_hh"),) if tl else out
