"""rnnkern's kernels as PyTorch custom operators (``torch.library``).

``rnnkern::rnn_forward`` runs one layer in one direction on rnnkern's kernels;
``rnnkern::rnn_backward`` its BPTT. Both are registered with a fake (shape-only)
implementation and the forward with its autograd formula, so eager autograd,
``torch.compile(fullgraph=True)`` and ``torch.export`` all see one opaque
operator instead of torch.nn's graph break.

What a training forward keeps for its backward (the kernels' workspace) is not
a tensor; it lives in a registry here, named by a one-element int64 ``handle``
tensor the forward returns and the autograd formula saves. The handle's storage
owns the registry entry: when autograd (or the caller) drops the last reference
to the handle, the workspace is freed, so a forward never backpropagated leaks
nothing, and ``retain_graph=True`` can run the backward twice.

Weights are taken in torch's layout and converted to the kernels' (Keras') layout
by ``_weights.KerasWeights``, once per weight change.

``run`` is what the modules call: under ``torch.compile`` / ``torch.export``
tracing it is the custom operator; in eager mode the same forward and backward
bodies behind a ``torch.autograd.Function``, whose context holds the workspace
itself (the dispatcher's custom-operator path costs ~0.1 ms a call, which at
small problems is more than the kernels).
"""
from __future__ import annotations

import itertools
import threading
import weakref
from collections import namedtuple
from typing import Optional, Tuple

import numpy as np
import torch

from .. import _device
from .. import backends as _bk
from ..options import RnnOptions
from . import _weights

_registry = {}                  # handle key -> backend cache of a training forward
_registry_lock = threading.Lock()
_keys = itertools.count(1)


class _HandleArray(np.ndarray):
    """The handle tensor's memory; its finalizer drops the registry entry."""


def _store(cache):
    key = next(_keys)
    with _registry_lock:
        _registry[key] = cache
    arr = np.array([key], np.int64).view(_HandleArray)
    weakref.finalize(arr, _drop, key)
    return torch.from_numpy(arr)


def _drop(key):
    with _registry_lock:
        _registry.pop(key, None)


_eager_live = weakref.WeakSet()   # the eager path's workspaces (held by autograd ctx)


def live_workspaces():
    """How many training forwards' workspaces are held, by both paths (for tests
    and debugging)."""
    with _registry_lock:
        return len(_registry) + len(_eager_live)


def resolve_backend(name, dtype, device):
    """The backend object for tensors of this dtype on this device.

    float32 on the CPU: ``name`` ("auto": the widest CPU ISA; "cuda-emu" runs
    them in place as the ``cuda`` backend runs CUDA tensors, the path CI tests);
    float64: the float64 NumPy reference (the compiled kernels are float32; "auto"
    or "reference" only); CUDA tensors: the ``cuda`` backend, in place."""
    if dtype not in (torch.float32, torch.float64):
        raise TypeError(f"rnnkern.torch: input must be float32 or float64, got {dtype}")
    if device.type == "cuda":
        if name not in ("auto", "cuda"):
            raise ValueError(f"rnnkern.torch: CUDA tensors run on backend 'cuda', got {name!r}")
        if dtype != torch.float32:
            raise TypeError("rnnkern.torch: the cuda backend is float32 only, got float64")
        ok, why = _bk.cuda_status()
        if not ok:
            raise RuntimeError(f"rnnkern.torch: CUDA tensors need the cuda backend: {why}")
        return _bk.get_backend("cuda")
    if device.type != "cpu":
        raise ValueError(f"rnnkern.torch: tensors must be on the CPU or a CUDA device, "
                         f"got {device}")
    if dtype == torch.float64:
        if name not in ("auto", "reference"):
            raise TypeError(f"rnnkern.torch: backend {name!r} is float32 only; float64 "
                            "runs on backend 'reference' (or 'auto')")
        return _bk.get_backend("reference")
    return _bk.get_backend(name)


def _np(t):
    """A NumPy view of a tensor (no copy for a contiguous CPU tensor); None stays None."""
    if t is None:
        return None
    t = t.detach()
    if t.device.type != "cpu":
        t = t.cpu()
    return t.contiguous().numpy()


def _out(a, like):
    """A NumPy result as a tensor on ``like``'s device (no copy on the CPU)."""
    t = torch.from_numpy(np.ascontiguousarray(a))
    return t if like.device.type == "cpu" else t.to(like.device)


_backend_memo = {}


def _backend_for(name, dtype, device):
    key = (name, dtype, device.type)
    be = _backend_memo.get(key)
    if be is None:
        be = _backend_memo[key] = resolve_backend(name, dtype, device)
    return be


def on_gpu_backend(backend, dtype, device):
    """Whether tensors of this dtype and device run on a GPU backend (in place)."""
    return isinstance(_backend_for(backend, dtype, device), _bk.GpuBackend)


def torch_precision(x):
    """torch.nn's precision rule for its cuDNN RNNs, as rnnkern's precision name:
    inside ``torch.autocast`` of x's device with bfloat16, "bf16" (bf16 products,
    fp32 sums, states and outputs); else "tf32" where ``torch.backends.cudnn.allow_tf32``
    (PyTorch's default), "fp32" where not. (float16 autocast has no rnnkern mode:
    it runs as the flag says, in float32 states and outputs.)"""
    if autocast_bf16(x):
        return "bf16"
    return "tf32" if torch.backends.cudnn.allow_tf32 else "fp32"


def autocast_bf16(x):
    """Whether x's device type is inside ``torch.autocast`` with bfloat16."""
    dev = x.device.type
    return torch.is_autocast_enabled(dev) and torch.get_autocast_dtype(dev) == torch.bfloat16


def _c(t):
    """A tensor as the device path reads it: detached, C-contiguous; None stays None."""
    return None if t is None else t.detach().contiguous()


def _forward_device(be, x, w_ih, w_hh, b_ih, b_hh, h0, c0, mask, options, keras_layout,
                    input_masks, recurrent_masks):
    """The forward on a GPU backend with the tensors in place (CUDA tensors on
    ``cuda``, CPU tensors on ``cuda-emu``): PyTorch's weight layout converted by the
    kernels on the device (every call: never stale, no host copy), the work on
    torch's current stream. With ``keras_layout`` the weights are read where they
    are, by the backward too (autograd's saved-tensor check guards them)."""
    lstm = options.cell == "lstm"
    if mask is not None and mask.dtype != torch.bool:
        mask = mask.to(torch.bool)
    args = (_c(x), _c(w_ih), _c(w_hh), _c(b_ih), _c(h0), _c(c0) if lstm else None, _c(mask),
            _c(input_masks), _c(recurrent_masks))
    if keras_layout:
        y, h, c, cache = _device.forward(be.name, options, *args, weights_in_place=True)
    else:
        y, h, c, cache = _device.forward(be.name, options, *args, bias_hh=_c(b_hh),
                                         torch_layout=True)
    return y, h, (c if lstm else x.new_empty((0,))), cache


def _forward_impl(x, w_ih, w_hh, b_ih, b_hh, h0, c0, mask, options, backend, keras_layout,
                  input_masks=None, recurrent_masks=None):
    """The forward of both paths (``options`` an ``RnnOptions``, its ``training``
    whether a backward will follow): (y, h_T, c_T or an empty tensor, cache or None)."""
    be = _backend_for(backend, x.dtype, x.device)
    if isinstance(be, _bk.GpuBackend):
        return _forward_device(be, x, w_ih, w_hh, b_ih, b_hh, h0, c0, mask, options,
                               keras_layout, input_masks, recurrent_masks)
    cell = options.cell
    kw = _weights.KerasWeights.of(cell, be, w_ih, w_hh, b_ih, b_hh, keras_layout=keras_layout,
                                  reset_after=options.reset_after)
    y, h, c, cache = be.forward(
        options, _np(x), kw.W, kw.U, kw.b, _np(h0), _np(c0) if cell == "lstm" else None,
        _np(mask), kw.packed, _np(input_masks), _np(recurrent_masks))
    c_t = _out(c, x) if cell == "lstm" else x.new_empty((0,))
    return _out(y, x), _out(h, x), c_t, cache


def _backward_impl(cache, dy, dh, dc, x, cell, has_bias, keras_layout):
    """The backward of both paths: (dx, d w_ih, d w_hh, d b_ih, d b_hh, dh0, dc0), None
    where a tensor does not exist."""
    if isinstance(cache, _device.DeviceCache):   # in place, in the forward's layout
        lstm = cell == "lstm"
        g = _device.backward(cache, _c(dy), _c(dh), _c(dc) if lstm else None)
        if keras_layout:
            dx, dW, dU, db, dh0, dc0 = g
            return dx, dW, dU, db, None, dh0, dc0 if lstm else None
        dx, dW, dU, db, dh0, dc0, db_hh = g
        return dx, dW, dU, db, db_hh, dh0, dc0 if lstm else None
    dtype = np.float64 if x.dtype == torch.float64 else np.float32
    dc_n = _np(dc).astype(dtype, copy=False) if cell == "lstm" else None
    gr = cache.backend.backward(cache, _np(dy).astype(dtype, copy=False),
                                _np(dh).astype(dtype, copy=False), dc_n)
    if keras_layout:
        d_ih, d_hh, db_ih, db_hh = gr.dkernel, gr.drecurrent_kernel, gr.dbias, None
    else:
        d_ih, d_hh, db_ih, db_hh = _weights.grads_to_torch(
            cell, gr.dkernel, gr.drecurrent_kernel, gr.dbias if has_bias else None)

    def as_t(a):
        return None if a is None else _out(np.asarray(a, dtype), x)
    return (as_t(gr.dx), as_t(d_ih), as_t(d_hh), as_t(db_ih), as_t(db_hh), as_t(gr.dh0),
            as_t(gr.dc0 if cell == "lstm" else None))


# rnn_forward's parameters by name, with its defaults: how its autograd formula
# reads the operator's inputs (never by position)
_ForwardInputs = namedtuple(
    "_ForwardInputs",
    ["x", "w_ih", "w_hh", "b_ih", "b_hh", "h0", "c0", "mask", "cell", "activation",
     "go_backwards", "need_grad", "backend", "recurrent_activation", "reset_after",
     "keras_layout", "input_masks", "recurrent_masks", "precision"],
    defaults=("sigmoid", True, False, None, None, "fp32"))


def _op_options(a):
    """The RnnOptions of rnn_forward's loose options (outputs are sequences)."""
    return RnnOptions(a.cell, a.activation, a.recurrent_activation, a.reset_after,
                      a.go_backwards, True, a.need_grad, a.precision)


@torch.library.custom_op("rnnkern::rnn_forward", mutates_args=())
def rnn_forward(x: torch.Tensor, w_ih: torch.Tensor, w_hh: torch.Tensor,
                b_ih: Optional[torch.Tensor], b_hh: Optional[torch.Tensor],
                h0: torch.Tensor, c0: Optional[torch.Tensor], mask: Optional[torch.Tensor],
                cell: str, activation: str, go_backwards: bool, need_grad: bool,
                backend: str, recurrent_activation: str = "sigmoid", reset_after: bool = True,
                keras_layout: bool = False, input_masks: Optional[torch.Tensor] = None,
                recurrent_masks: Optional[torch.Tensor] = None, precision: str = "fp32"
                ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """One layer, one direction: x [N, T, C] -> (y [N, T, H] in processing order,
    h_T [N, H], c_T [N, H] (LSTM; else empty), handle); mask None or [N, T] bool
    (Keras' mask semantics). Weights in torch's layout (w_ih [G*H, C], w_hh
    [G*H, H], b_ih, b_hh [G*H]; torch's GRU is reset_after=True), or with
    ``keras_layout`` Keras' (w_ih = kernel [C, G*H], w_hh = recurrent_kernel,
    b_ih = bias [G*H] or [2, G*H], b_hh None). ``input_masks`` [G, N, C] and
    ``recurrent_masks`` [G, N, H]: Keras' per-gate dropout masks (rnnkern.ops). The
    options are loose here (an operator's schema takes primitives): they make one
    ``RnnOptions`` (``_op_options``)."""
    options = _op_options(_ForwardInputs(x, w_ih, w_hh, b_ih, b_hh, h0, c0, mask, cell,
                                         activation, go_backwards, need_grad, backend,
                                         recurrent_activation, reset_after, keras_layout,
                                         input_masks, recurrent_masks, precision))
    y, h, c, cache = _forward_impl(x, w_ih, w_hh, b_ih, b_hh, h0, c0, mask, options, backend,
                                   keras_layout, input_masks, recurrent_masks)
    handle = _store(cache) if need_grad else torch.zeros(1, dtype=torch.int64)
    return y, h, c, handle


@rnn_forward.register_fake
def _(x, w_ih, w_hh, b_ih, b_hh, h0, c0, mask, cell, activation, go_backwards, need_grad,
      backend, recurrent_activation="sigmoid", reset_after=True, keras_layout=False,
      input_masks=None, recurrent_masks=None, precision="fp32"):
    N, T = x.shape[0], x.shape[1]
    H = w_hh.shape[0] if keras_layout else w_hh.shape[1]
    c = x.new_empty((N, H)) if cell == "lstm" else x.new_empty((0,))
    return (x.new_empty((N, T, H)), x.new_empty((N, H)), c,
            torch.empty(1, dtype=torch.int64))


@torch.library.custom_op("rnnkern::rnn_backward", mutates_args=())
def rnn_backward(handle: torch.Tensor, dy: torch.Tensor, dh: torch.Tensor,
                 dc: Optional[torch.Tensor], x: torch.Tensor, w_ih: torch.Tensor,
                 w_hh: torch.Tensor, cell: str, has_bias: bool, keras_layout: bool = False,
                 reset_after: bool = True) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor,
                            torch.Tensor, torch.Tensor, torch.Tensor]:
    """BPTT of the forward that returned ``handle``: (dx, d w_ih, d w_hh, d b_ih,
    d b_hh, dh0, dc0), the biases' and dc0 empty where they do not exist."""
    with _registry_lock:
        cache = _registry.get(int(handle.reshape(-1)[0]))
    if cache is None:
        raise RuntimeError("rnnkern.torch: this forward kept nothing for a backward (it ran "
                           "without grad) or its workspace was released")
    grads = _backward_impl(cache, dy, dh, dc, x, cell, has_bias, keras_layout)
    # a fresh empty tensor for a missing one: an operator's outputs must not alias
    return tuple(x.new_empty((0,)) if g is None else g for g in grads)


@rnn_backward.register_fake
def _(handle, dy, dh, dc, x, w_ih, w_hh, cell, has_bias, keras_layout=False,
      reset_after=True):
    G_H = w_hh.shape[1] if keras_layout else w_hh.shape[0]
    b_shape = (2, G_H) if keras_layout and cell == "gru" and reset_after else (G_H,)
    b = x.new_empty(b_shape) if has_bias else x.new_empty((0,))
    b_hh = x.new_empty((0,)) if keras_layout else torch.empty_like(b)
    return (torch.empty_like(x), torch.empty_like(w_ih), torch.empty_like(w_hh), b,
            b_hh, torch.empty_like(dh),
            torch.empty_like(dh) if cell == "lstm" else x.new_empty((0,)))


def _setup_context(ctx, inputs, output):
    a = _ForwardInputs(*inputs)   # by name: the defaults fill what was not passed
    ctx.reset_after, ctx.keras_layout = bool(a.reset_after), bool(a.keras_layout)
    ctx.cell = a.cell
    ctx.has_bias = a.b_ih is not None
    ctx.need_grad = a.need_grad
    ctx.save_for_backward(output[3], a.x, a.w_ih, a.w_hh)


def _backward(ctx, dy, dh, dc, _dhandle):
    handle, x, w_ih, w_hh = ctx.saved_tensors
    if not ctx.need_grad:
        raise RuntimeError("rnnkern.torch: rnn_forward ran with need_grad=False; "
                           "call it with need_grad=True to backpropagate")
    N, T = x.shape[0], x.shape[1]
    H = w_hh.shape[0] if ctx.keras_layout else w_hh.shape[1]
    if dy is None:
        dy = x.new_zeros((N, T, H))
    if dh is None:
        dh = x.new_zeros((N, H))
    lstm = ctx.cell == "lstm"
    if lstm and dc is None:
        dc = x.new_zeros((N, H))
    dx, d_ih, d_hh, db_ih, db_hh, dh0, dc0 = rnn_backward(
        handle, dy, dh, dc if lstm else None, x, w_ih, w_hh, ctx.cell, ctx.has_bias,
        ctx.keras_layout, ctx.reset_after)
    torch_bias = ctx.has_bias and not ctx.keras_layout
    return (dx, d_ih, d_hh, db_ih if ctx.has_bias else None,
            db_hh if torch_bias else None, dh0, dc0 if lstm else None,
            *(None,) * (len(_ForwardInputs._fields) - 7))


torch.library.register_autograd("rnnkern::rnn_forward", _backward, setup_context=_setup_context)


class _EagerFn(torch.autograd.Function):
    """The eager path: the same bodies as the operators, the workspace on ctx."""

    @staticmethod
    def forward(ctx, x, w_ih, w_hh, b_ih, b_hh, h0, c0, mask, input_masks, recurrent_masks,
                options, backend, keras_layout):
        y, h, c, cache = _forward_impl(x, w_ih, w_hh, b_ih, b_hh, h0, c0, mask, options,
                                       backend, keras_layout, input_masks, recurrent_masks)
        ctx.cache, ctx.cell, ctx.keras_layout = cache, options.cell, keras_layout
        if cache is not None:
            _eager_live.add(cache)
            # a backward that reads the weights in place (keras_layout on a GPU
            # backend): autograd raises if they are changed in place before it
            ctx.save_for_backward(w_ih, w_hh, b_ih)
        ctx.x_meta = (x.shape, x.dtype, x.device)
        ctx.has_bias = b_ih is not None
        if options.cell != "lstm":
            ctx.mark_non_differentiable(c)
        return y, h, c

    @staticmethod
    def backward(ctx, dy, dh, dc):
        if torch.is_grad_enabled():   # create_graph=True: a graph of the backward wanted
            raise RuntimeError("rnnkern.torch: the BPTT kernels are not differentiable "
                               "again (create_graph=True / double backward); use torch.nn "
                               "for higher-order gradients")
        cache, cell = ctx.cache, ctx.cell
        if cache is None:
            raise RuntimeError("rnnkern.torch: this forward ran with need_grad=False")
        _ = ctx.saved_tensors   # the version check of the weights it reads
        shape, dtype, device = ctx.x_meta
        x = torch.empty(0, dtype=dtype, device=device)   # dtype and device only
        dx, d_ih, d_hh, db_ih, db_hh, dh0, dc0 = _backward_impl(
            cache, dy, dh, dc if cell == "lstm" else None, x, cell, ctx.has_bias,
            ctx.keras_layout)
        return (dx, d_ih, d_hh, db_ih, db_hh, dh0, dc0, None, None, None, None, None, None)


def run(x, w_ih, w_hh, b_ih, b_hh, h0, c0, mask, options, backend, keras_layout=False,
        input_masks=None, recurrent_masks=None):
    """One layer, one direction -> (y, h_T, c_T): ``options`` an ``RnnOptions`` (its
    ``training`` is rnn_forward's need_grad; outputs are always sequences), the rest
    ``rnn_forward``'s arguments. The custom operator while torch.compile /
    torch.export trace, else the eager path."""
    if torch.compiler.is_compiling():
        o = options
        y, h, c, _ = rnn_forward(x, w_ih, w_hh, b_ih, b_hh, h0, c0, mask, o.cell, o.activation,
                                 o.go_backwards, o.training, backend, o.recurrent_activation,
                                 o.reset_after, keras_layout, input_masks, recurrent_masks,
                                 o.precision)
        return y, h, c
    if not options.training:   # nothing to differentiate: no autograd node (~25 us less a call)
        return _forward_impl(x, w_ih, w_hh, b_ih, b_hh, h0, c0, mask, options, backend,
                             keras_layout, input_masks, recurrent_masks)[:3]
    return _EagerFn.apply(x, w_ih, w_hh, b_ih, b_hh, h0, c0, mask, input_masks,
                          recurrent_masks, options, backend, keras_layout)
