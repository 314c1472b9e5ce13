"""Function-level API: one recurrent layer (one direction), forward and BPTT;
and, for ``import rnnkern as keras`` scripts, the handful of ``keras.ops`` array
functions they call on concrete values (``rnnkern._array_ops``; these names
shadow the builtins ``sum``, ``max``, ``min`` and ``abs`` in this module).

This is the contract every backend implements (the NumPy reference in
``rnnkern.reference`` and the compiled backends in ``rnnkern._core``), and the
one the recurrent layers call (``rnnkern.layers.recurrent``). ``backend`` may be
a name of ``rnnkern.backends()`` or a backend object of ``rnnkern.backends``.
Shape legend, used everywhere in rnnkern:

    N  batch          T  timesteps        C  input features
    H  units          G  gates: SimpleRNN 1, LSTM 4 (i, f, c, o), GRU 3 (z, r, h)

Weights are Keras' layout (``get_weights()`` order):

    kernel            W  [C, G*H]
    recurrent_kernel  U  [H, G*H]
    bias              b  [G*H], or [2, G*H] for GRU reset_after=True
                         (row 0 input bias, row 1 recurrent bias), or None

``rnn_forward(cell, x, W, U, b, h0, c0, mask, *, backend, packed, input_masks,
recurrent_masks, activation, recurrent_activation, reset_after, go_backwards,
return_sequences, training, precision)``

    The options (cell and the keywords from activation on; defaults: tanh, sigmoid,
    True, False, True, True, "fp32") may come as one ``rnnkern.options.RnnOptions``
    in place of the cell (made and checked once; what the layers and adapters pass):
    ``rnn_forward(RnnOptions("lstm", training=False), x, ...)``.

    cell        "simple_rnn" | "lstm" | "gru"
    x           [N, T, C]
    h0          [N, H] initial hidden state (the layer passes zeros when none is given)
    c0          [N, H] initial cell state, LSTM only (None otherwise)
    mask        None or [N, T] bool, indexed by the ORIGINAL time axis of x
    go_backwards  process t = T-1 ... 0; outputs come back in processing order
                  (Keras: y[:, s] is the output of the s-th processed step)
    training    True: keep what BPTT needs and return it as the cache;
                False: keep nothing (cache is None)
    precision   "fp32" (default), "tf32" (opt-in; backends without a TF32
                product run fp32), "bf16" (the kernel and recurrent kernel
                rounded to bfloat16 and every product's other operand too, sums,
                states and gradients fp32, on every backend; vdpbf16ps where the
                CPU has AVX512_BF16, one tensor-core product on the GPU:
                rnnkern.reference's docstring has the exact rule)
    packed      None, or ``pack(...)`` of these same W and U arrays (see below)
    input_masks      None, or [G, N, C] float: one input dropout mask per gate
    recurrent_masks  None, or [G, N, H] float: one recurrent dropout mask per gate
                Keras 3's per-gate dropout (its cells' implementation=1, which
                Keras uses whenever recurrent_dropout > 0): the masks are fixed
                over all timesteps, and gate g's pre-activation reads
                (x ⊙ input_masks[g]) W_g and (h_prev ⊙ recurrent_masks[g]) U_g
                (W_g, U_g: gate g's H columns; SimpleRNN: G = 1). GRU reset_after:
                r * ((h_prev ⊙ m_h) U_h + b_rec_h); reset_after=False:
                (r * (h_prev ⊙ m_h)) U_h. Never dropped: the h_prev of GRU's
                update z * h_prev + (1 - z) * hh, and LSTM's c_prev. The backward
                uses the same masks (dx comes out masked). Entries are usually 0
                or 1/(1 - rate), but any values work; None = no mask (both None:
                a plain forward). The layers draw them (rnnkern.layers.recurrent).

    returns (y, h_T, c_T, cache)
      y    [N, T, H] if return_sequences else [N, H] (the last output)
      h_T  [N, H]; c_T [N, H] for LSTM, else None
    Mask semantics (Keras 3): where mask[n, t] is False the states are carried
    through and the output repeats the previous output (zeros before the first
    unmasked step); a fully masked row outputs zeros and returns h0 (and c0).

``pack(cell, recurrent_kernel, reset_after=True, backend="auto", kernel=None)``

    The recurrent kernel (and the kernel, when given) packed once for the
    backend's kernels (None for the reference). Pass it as
    ``rnn_forward(..., packed=p)`` with the SAME arrays while they are
    unchanged: the forward and the backward then skip packing them (worth it
    for short sequences and step-by-step inference). Changing them in place
    after packing gives wrong results; the layers prevent that by keeping
    their weights read-only and re-packing after an assignment.

``rnn_backward(cache, dy, dh_T=None, dc_T=None)``

    dy has y's shape; dh_T, dc_T are [N, H] or None (zero).
    returns Grads(dx [N,T,C], dkernel, drecurrent_kernel, dbias (b's shape, or
    None), dh0 [N,H], dc0 [N,H] or None)
"""
from __future__ import annotations

from ._common import ACTIVATIONS, CELLS, GATES, Grads  # noqa: F401  (re-exported)
from .backends import get_backend
from .options import PRECISIONS, RnnOptions  # noqa: F401  (re-exported)
# keras.ops' array functions for concrete values (import rnnkern as keras; keras.ops.argmax)
from ._array_ops import *  # noqa: F401,F403,E402
from ._array_ops import __all__ as _array_ops_all


def rnn_forward(cell, x, kernel, recurrent_kernel, bias, h0, c0=None, mask=None, *,
                backend="auto", packed=None, input_masks=None, recurrent_masks=None,
                **options):
    """Forward of one layer on the named backend; see the module docstring. ``cell``
    is a cell name with the options as keywords, or an ``RnnOptions`` (with
    keywords, those fields changed)."""
    o = cell if type(cell) is RnnOptions and not options else RnnOptions.of(cell, **options)
    return get_backend(backend).forward(o, x, kernel, recurrent_kernel, bias, h0, c0, mask,
                                        packed, input_masks, recurrent_masks)


def pack(cell, recurrent_kernel, reset_after=True, backend="auto", kernel=None, bias=None):
    """recurrent_kernel (and kernel) packed for ``backend``; see the module docstring.
    On the GPU backends: kernel, recurrent_kernel and bias uploaded to the device once
    (the CPU ISAs read the bias per call)."""
    return get_backend(backend).pack(cell, recurrent_kernel, reset_after, kernel, bias)


def rnn_backward(cache, dy, dh_T=None, dc_T=None):
    """BPTT of the forward that returned ``cache`` (on the same backend)."""
    return cache.backend.backward(cache, dy, dh_T, dc_T)


def __getattr__(name):
    if name.startswith("__"):
        raise AttributeError(name)
    raise AttributeError(f"rnnkern.ops has no {name!r}: Keras' keras.ops.{name} is not part of "
                         f"rnnkern (its array functions: {', '.join(_array_ops_all)}; and "
                         "rnn_forward / rnn_backward / pack)")
