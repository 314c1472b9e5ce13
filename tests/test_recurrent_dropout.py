"""Dropout inside the fused kernels: Keras 3's per-gate masks (its cells'
implementation=1, taken whenever recurrent_dropout > 0).

* every compiled backend against the float64 reference with the same per-gate
  input and recurrent masks, forward values and every gradient, over the option
  grid and at tail sizes (as tests/test_kernels.py does it without masks);
* the layers: masks drawn with Keras' rules (fixed over time, one per gate and
  independent, rate 0 / 1 edge cases, training=None means no dropout), the same
  seed giving the same bits;
* Keras 3 itself (when importable): its own dropout masks fed to our kernels,
  outputs and torch-autograd gradients compared.
"""
import os
import zlib

import numpy as np
import pytest

import rnnkern as rk
from rnnkern import backends as bk
from rnnkern import ops, reference
from rnnkern._common import GATES

from tolerances import assert_close
from test_kernels import check, f64, make_case, make_mask

COMPILED = [b for b in bk.backends() if b != "reference"]
needs_compiled = pytest.mark.skipif(not COMPILED, reason="compiled extension not built")
CELLS = {"simple_rnn": rk.SimpleRNN, "lstm": rk.LSTM, "gru": rk.GRU}


def seed_of(*args):
    return zlib.crc32(repr(args).encode())


def drop_masks(kind, cell, n, c, h, rng, keep=0.7):
    """Per-gate masks [G, N, C] and [G, N, H] (0 or 1/keep), or None, by kind:
    'both', 'input', 'recurrent'."""
    g = GATES[cell]
    im = rm = None
    if kind in ("both", "input"):
        im = ((rng.random((g, n, c)) < keep) / keep).astype(np.float32)
    if kind in ("both", "recurrent"):
        rm = ((rng.random((g, n, h)) < keep) / keep).astype(np.float32)
    return im, rm


def run_both(backend, cell, act, ract, reset_after, go_backwards, return_sequences, mask,
             case, im, rm, rng):
    x, W, U, b, h0, c0 = case
    kw = dict(activation=act, recurrent_activation=ract, reset_after=reset_after,
              go_backwards=go_backwards, return_sequences=return_sequences, training=True)
    be = bk.get_backend(backend)
    y, hT, cT, cache = be.forward(cell, x, W, U, b, h0, c0, mask, input_masks=im,
                                  recurrent_masks=rm, **kw)
    yr, hr, cr, cache_r = reference.rnn_forward(cell, f64(x), f64(W), f64(U), f64(b), f64(h0),
                                                f64(c0), mask, input_masks=f64(im),
                                                recurrent_masks=f64(rm), **kw)
    dy = rng.standard_normal(y.shape).astype(np.float32)
    dh = rng.standard_normal(hT.shape).astype(np.float32)
    dc = rng.standard_normal(hT.shape).astype(np.float32) if cell == "lstm" else None
    g = be.backward(cache, dy, dh, dc)
    gr = reference.rnn_backward(cache_r, f64(dy), f64(dh), f64(dc))
    return (y, hT, cT), (yr, hr, cr), g, gr


# ------------------------------------------------------- kernels vs reference

CELL_CONFIGS = (
    [("simple_rnn", a, "sigmoid", True) for a in ("tanh", "relu")]
    + [("lstm", "tanh", ra, True) for ra in ("sigmoid", "hard_sigmoid")]
    + [("gru", "tanh", ra, rst) for ra in ("sigmoid", "hard_sigmoid") for rst in (True, False)]
)


@needs_compiled
@pytest.mark.parametrize("backend", COMPILED)
@pytest.mark.parametrize("cell,act,ract,reset_after", CELL_CONFIGS, ids=lambda v: str(v))
@pytest.mark.parametrize("go_backwards", [False, True], ids=["fwd", "bwd"])
@pytest.mark.parametrize("mask_kind", ["none", "holes", "full"])
# as in test_kernels: projection as a GEMM (one row block), fused into the step
# (several row blocks), and as a GEMM with several row blocks (C > 4H)
@pytest.mark.parametrize("dims", [(3, 5, 4, 6), (13, 4, 3, 12), (13, 4, 9, 2)],
                         ids=["gemm", "fused", "gemm-blocks"])
def test_option_grid(backend, cell, act, ract, reset_after, go_backwards, mask_kind, dims):
    rng = np.random.default_rng(seed_of(cell, act, ract, reset_after, go_backwards, mask_kind,
                                        dims))
    n, t, c, h = dims
    # each sub-case another combination of bias, return_sequences and masks
    for use_bias, return_sequences, drop in [(True, True, "both"), (False, False, "both"),
                                             (True, False, "input"),
                                             (False, True, "recurrent")]:
        case = make_case(cell, n, t, c, h, reset_after, use_bias, rng)
        mask = make_mask(mask_kind, n, t, rng)
        im, rm = drop_masks(drop, cell, n, c, h, rng)
        outs, refs, g, gr = run_both(backend, cell, act, ract, reset_after, go_backwards,
                                     return_sequences, mask, case, im, rm, rng)
        check(outs, refs, g, gr, f"{backend} {cell} bias={use_bias} seq={return_sequences} "
                                 f"drop={drop}")


@needs_compiled
@pytest.mark.parametrize("backend", COMPILED)
@pytest.mark.parametrize("cell,reset_after", [("simple_rnn", True), ("lstm", True),
                                              ("gru", True), ("gru", False)])
@pytest.mark.parametrize("h", [1, 3, 4, 5, 7, 8, 9, 15, 16, 17, 33, 48])
def test_tail_sizes(backend, cell, reset_after, h):
    rng = np.random.default_rng(seed_of(cell, reset_after, h))
    # (1, 1), (3, 2): one row block; (5, 17), (13, 3): batch around the row blocks
    # of every ISA (3, 4, 6 rows), the last fused
    for n, t in [(1, 1), (3, 2), (5, 17), (13, 3)]:
        case = make_case(cell, n, t, 3, h, reset_after, True, rng)
        mask = make_mask("holes", n, t, rng) if n > 1 else None
        im, rm = drop_masks("both", cell, n, 3, h, rng)
        outs, refs, g, gr = run_both(backend, cell, "tanh", "sigmoid", reset_after, False, True,
                                     mask, case, im, rm, rng)
        check(outs, refs, g, gr, f"{backend} {cell} n={n} t={t} h={h}")


@needs_compiled
@pytest.mark.parametrize("backend", COMPILED)
@pytest.mark.parametrize("cell,reset_after", [("lstm", True), ("gru", False), ("gru", True),
                                              ("simple_rnn", True)])
def test_threads_deterministic(backend, cell, reset_after):
    """Sizes where the forward and backward loops run on 2 threads: two runs are
    bitwise identical, 1 and 2 threads both match the reference."""
    rng = np.random.default_rng(seed_of(cell, reset_after))
    n, t, c, h = 13, 12, 20, 96 if cell != "simple_rnn" else 256
    case = make_case(cell, n, t, c, h, reset_after, True, rng)
    x, W, U, b, h0, c0 = case
    mask = make_mask("holes", n, t, rng)
    im, rm = drop_masks("both", cell, n, c, h, rng)
    dy = rng.standard_normal((n, t, h)).astype(np.float32)
    be = bk.get_backend(backend)
    old = bk._num_threads
    try:
        res = []
        for threads in (2, 2, 1):
            bk.set_num_threads(threads)
            y, hT, cT, cache = be.forward(cell, x, W, U, b, h0, c0, mask, input_masks=im,
                                          recurrent_masks=rm, reset_after=reset_after)
            res.append((y, hT, cT) + tuple(be.backward(cache, dy)))
    finally:
        bk.set_num_threads(old)
    for a, b2 in zip(res[0], res[1]):
        if a is not None:
            assert np.array_equal(a, b2), "two identical runs differ"
    yr, _, _, cr = reference.rnn_forward(cell, f64(x), f64(W), f64(U), f64(b), f64(h0), f64(c0),
                                         mask, reset_after=reset_after, input_masks=f64(im),
                                         recurrent_masks=f64(rm))
    gr = reference.rnn_backward(cr, f64(dy))
    for r in (res[0], res[2]):
        assert_close(r[0], yr, "forward_f32", "y")
        for a, ref in zip(r[3:], gr):
            if ref is not None:
                assert_close(a, ref, "backward_f32", "grad")


@needs_compiled
@pytest.mark.parametrize("backend", COMPILED)
@pytest.mark.parametrize("cell,reset_after", [("lstm", True), ("gru", False), ("gru", True)])
def test_chunked_gemm_projection(backend, cell, reset_after):
    """C > 4H keeps the projection a GEMM, and N*G*H makes it run in several chunks
    of steps: the per-gate GEMMs of the input masks across chunk borders, go_backwards."""
    rng = np.random.default_rng(seed_of(cell, reset_after, "chunked"))
    n, t, c, h = 200, 19, 170, 40  # LSTM: 128 KiB of pre-activations a step -> chunks of 8
    case = make_case(cell, n, t, c, h, reset_after, True, rng)
    mask = make_mask("holes", n, t, rng)
    im, rm = drop_masks("both", cell, n, c, h, rng)
    outs, refs, g, gr = run_both(backend, cell, "tanh", "sigmoid", reset_after, True, True,
                                 mask, case, im, rm, rng)
    check(outs, refs, g, gr, f"{backend} {cell} chunked")


@needs_compiled
@pytest.mark.parametrize("backend", COMPILED)
@pytest.mark.parametrize("cell,reset_after", [("simple_rnn", True), ("lstm", True),
                                              ("gru", True), ("gru", False)])
def test_mask_values(backend, cell, reset_after):
    """Masks that are not 0 or 1/keep: whole gates dropped (zeros), ones, and
    arbitrary values; a mask of ones gives the unmasked results."""
    rng = np.random.default_rng(seed_of(cell, reset_after, "values"))
    n, t, c, h = 13, 6, 5, 20
    G = GATES[cell]
    case = make_case(cell, n, t, c, h, reset_after, True, rng)
    x, W, U, b, h0, c0 = case
    be = bk.get_backend(backend)
    zeros_gate0 = np.ones((G, n, h), np.float32)
    zeros_gate0[0] = 0
    cases = [(np.zeros((G, n, c), np.float32), np.zeros((G, n, h), np.float32)),
             (None, zeros_gate0),
             (rng.uniform(-2, 2, (G, n, c)).astype(np.float32),
              rng.uniform(-2, 2, (G, n, h)).astype(np.float32))]
    for im, rm in cases:
        outs, refs, g, gr = run_both(backend, cell, "tanh", "sigmoid", reset_after, False, True,
                                     None, case, im, rm, rng)
        check(outs, refs, g, gr, f"{backend} {cell} values")
    # masks of ones: the unmasked kernels' results (not bitwise: other code paths)
    dy = rng.standard_normal((n, t, h)).astype(np.float32)
    y0, _, _, k0 = be.forward(cell, x, W, U, b, h0, c0, None, reset_after=reset_after)
    y1, _, _, k1 = be.forward(cell, x, W, U, b, h0, c0, None, reset_after=reset_after,
                              input_masks=np.ones((G, n, c), np.float32),
                              recurrent_masks=np.ones((G, n, h), np.float32))
    assert_close(y1, y0, "forward_f32", "ones y")
    for a, r in zip(be.backward(k1, dy), be.backward(k0, dy)):
        if r is not None:
            assert_close(a, r, "backward_f32", "ones grads")


@needs_compiled
@pytest.mark.parametrize("backend", COMPILED)
@pytest.mark.parametrize("cell,reset_after", [("lstm", True), ("gru", False)])
def test_packed_weights_with_masks(backend, cell, reset_after):
    """Packed weights give the bits of packing per call with masks too."""
    rng = np.random.default_rng(seed_of(cell, reset_after, "packed"))
    n, t, c, h = 9, 7, 5, 37
    x, W, U, b, h0, c0 = make_case(cell, n, t, c, h, reset_after, True, rng)
    im, rm = drop_masks("both", cell, n, c, h, rng)
    dy = rng.standard_normal((n, t, h)).astype(np.float32)
    be = bk.get_backend(backend)
    packed = be.pack(cell, U, reset_after, W)
    kw = dict(reset_after=reset_after, input_masks=im, recurrent_masks=rm)
    y0, _, _, k0 = be.forward(cell, x, W, U, b, h0, c0, None, **kw)
    y1, _, _, k1 = be.forward(cell, x, W, U, b, h0, c0, None, packed, **kw)
    np.testing.assert_array_equal(y0, y1)
    for u, v in zip(be.backward(k0, dy), be.backward(k1, dy)):
        if u is not None:
            np.testing.assert_array_equal(u, v)


@needs_compiled
@pytest.mark.parametrize("backend", COMPILED)
def test_ops_level_keywords(backend):
    """rnnkern.ops.rnn_forward passes the masks to every backend alike, and the
    workspace keeps them for the backward (the caller's arrays may change)."""
    rng = np.random.default_rng(3)
    n, t, c, h = 4, 5, 3, 6
    x, W, U, b, h0, c0 = make_case("lstm", n, t, c, h, True, True, rng)
    im, rm = drop_masks("both", "lstm", n, c, h, rng)
    dy = rng.standard_normal((n, t, h)).astype(np.float32)
    res = {}
    for name in ("reference", backend):
        im_, rm_ = im.copy(), rm.copy()
        y, _, _, cache = ops.rnn_forward("lstm", x, W, U, b, h0, c0, None, backend=name,
                                         input_masks=im_, recurrent_masks=rm_)
        im_[:] = 7.0
        rm_[:] = 7.0
        res[name] = (y,) + tuple(ops.rnn_backward(cache, dy))
    for a, r in zip(res[backend], res["reference"]):
        if r is not None:
            assert_close(a, r, "backward_f32", "ops")
