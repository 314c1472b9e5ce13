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

from helpers import tail_cases
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


# as in test_kernels: projection as a GEMM (one row block), fused into the step
# (several row blocks), and as a GEMM with several row blocks (C > 4H) -- the CPU
# kernel's three paths; cuda-emu (slow, and without those paths) runs the first
_DIMS = {"gemm": (3, 5, 4, 6), "fused": (13, 4, 3, 12), "gemm-blocks": (13, 4, 9, 2)}
_GRID = [pytest.param(b, d, id=f"{k}-{b}") for b in COMPILED for k, d in _DIMS.items()
         if b != "cuda-emu" or k == "gemm"]


@needs_compiled
@pytest.mark.parametrize("backend,dims", _GRID)
@pytest.mark.parametrize("cell,act,ract,reset_after", CELL_CONFIGS, ids=lambda v: str(v))
@pytest.mark.parametrize("go_backwards", [False, True], ids=["fwd", "bwd"])
@pytest.mark.parametrize("mask_kind", ["none", "holes", "full"])
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
@pytest.mark.parametrize("backend,h", tail_cases(COMPILED))
@pytest.mark.parametrize("cell,reset_after", [("simple_rnn", True), ("lstm", True),
                                              ("gru", True), ("gru", False)])
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
@pytest.mark.parametrize("backend", bk.cpu_backends())   # thread counts: the CPU's matter
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
@pytest.mark.parametrize("backend", bk.cpu_backends())
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
    workspace keeps its own copy for the backward: changing the caller's arrays
    after the forward changes nothing (checked against an untouched reference)."""
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
        if name != "reference":   # what the forward used, not the caller's array now
            im_[:] = 7.0
            rm_[:] = 7.0
        res[name] = (y,) + tuple(ops.rnn_backward(cache, dy))
    for a, r in zip(res[backend], res["reference"]):
        if r is not None:
            assert_close(a, r, "backward_f32", "ops")


# ------------------------------------------------------------------- layers

def make_layer(cell, units, c, rng, backend="reference", **kw):
    layer = CELLS[cell](units, backend=backend, return_sequences=True, **kw)
    layer.build((None, None, c))
    layer.set_weights([rng.uniform(-0.5, 0.5, w.shape).astype(np.float32)
                       for w in layer.get_weights()])
    return layer


class MaskSpy:
    """Records the masks the layers pass to ops.rnn_forward (and runs it)."""

    def __init__(self, monkeypatch):
        from rnnkern.layers import recurrent
        self.calls = []
        real = recurrent.ops.rnn_forward

        def spy(*args, **kw):
            self.calls.append((kw.get("input_masks"), kw.get("recurrent_masks"), args[1]))
            return real(*args, **kw)

        monkeypatch.setattr(recurrent.ops, "rnn_forward", spy)

    @property
    def last(self):
        return self.calls[-1]


def dropout_values(m, rate):
    """The set of values of a mask, checked to be Keras' {0, 1/(1-rate)}."""
    vals = set(np.unique(m).tolist())
    assert vals <= {0.0, np.float32(1 / (1 - rate))}, vals
    return vals


@pytest.mark.parametrize("cell", list(CELLS))
def test_layer_draws_keras_masks(cell, monkeypatch):
    """With training=True and recurrent_dropout > 0, one independent mask per gate
    ([G, N, C] input, [G, N, H] recurrent), Keras' values, about the right fraction
    kept, and new masks each call; none with training None or False."""
    rng = np.random.default_rng(0)
    spy = MaskSpy(monkeypatch)
    n, t, c, h = 64, 3, 40, 48
    G = GATES[cell]
    layer = make_layer(cell, h, c, rng, dropout=0.25, recurrent_dropout=0.4, seed=3)
    x = rng.standard_normal((n, t, c)).astype(np.float32)
    layer(x, training=True)
    im, rm, x_seen = spy.last
    assert im.shape == (G, n, c) and rm.shape == (G, n, h)
    assert im.dtype == np.float32 and rm.dtype == np.float32
    np.testing.assert_array_equal(x_seen, x)  # x itself is not masked: the kernels do it
    assert dropout_values(im, 0.25) == {0.0, np.float32(1 / 0.75)}
    assert dropout_values(rm, 0.4) == {0.0, np.float32(1 / 0.6)}
    assert abs((im > 0).mean() - 0.75) < 0.03 and abs((rm > 0).mean() - 0.6) < 0.03
    for g in range(1, G):  # independent per gate
        assert not np.array_equal(im[g], im[0]) and not np.array_equal(rm[g], rm[0])
    layer(x, training=True)
    assert not np.array_equal(spy.last[1], rm)  # a new draw per call
    for training in (None, False):
        layer(x, training=training)
        assert spy.last[0] is None and spy.last[1] is None


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_layer_rate_edge_cases_lstm_gru(cell, monkeypatch):
    """LSTM/GRU apply a mask only when 0 < rate < 1; recurrent_dropout > 0 (even 1)
    switches the input dropout to one mask per gate (Keras' implementation=1);
    recurrent_dropout == 0 keeps today's single shared input mask on x."""
    rng = np.random.default_rng(1)
    spy = MaskSpy(monkeypatch)
    n, t, c, h = 8, 3, 5, 6
    G = GATES[cell]
    x = rng.standard_normal((n, t, c)).astype(np.float32)
    layer = make_layer(cell, h, c, rng, dropout=0.3, recurrent_dropout=1.0, seed=0)
    layer(x, training=True)
    im, rm, _ = spy.last
    assert rm is None and im.shape == (G, n, c)
    layer = make_layer(cell, h, c, rng, dropout=1.0, recurrent_dropout=0.5, seed=0)
    layer(x, training=True)
    im, rm, x_seen = spy.last
    assert im is None and rm.shape == (G, n, h)
    np.testing.assert_array_equal(x_seen, x)  # dropout=1 drops nothing here (Keras)
    layer = make_layer(cell, h, c, rng, dropout=0.3, recurrent_dropout=0.0, seed=0)
    layer(x, training=True)
    im, rm, x_seen = spy.last
    assert im is None and rm is None
    shared = x_seen[:, 0] / np.where(x[:, 0] == 0, 1, x[:, 0])  # the one [N, C] mask on x
    np.testing.assert_allclose(x_seen, x * shared[:, None, :], rtol=1e-6)
    # rate 1 on both: no mask at all, the plain results
    plain = make_layer(cell, h, c, rng, seed=0)
    both1 = CELLS[cell](h, dropout=1.0, recurrent_dropout=1.0, return_sequences=True,
                        backend="reference")
    both1.set_weights(plain.get_weights())
    np.testing.assert_array_equal(both1(x, training=True), plain(x))


def test_layer_rate_edge_cases_simple_rnn(monkeypatch):
    """SimpleRNNCell applies its single masks whenever rate > 0: rate 1 drops every
    recurrent entry, so h_t = act(x_t W + b)."""
    rng = np.random.default_rng(2)
    spy = MaskSpy(monkeypatch)
    n, t, c, h = 5, 4, 3, 7
    x = rng.standard_normal((n, t, c)).astype(np.float32)
    layer = make_layer("simple_rnn", h, c, rng, recurrent_dropout=1.0, seed=0)
    y = layer(x, training=True)
    im, rm, _ = spy.last
    assert im is None and rm.shape == (1, n, h) and not rm.any()
    W, _, b = layer.get_weights()
    assert_close(y, np.tanh(x @ W + b), "forward_f32", "no recurrence left")
    layer = make_layer("simple_rnn", h, c, rng, dropout=1.0, recurrent_dropout=0.5, seed=0)
    layer(x, training=True)
    im, rm, _ = spy.last
    assert im.shape == (1, n, c) and not im.any() and rm.shape == (1, n, h)


@pytest.mark.parametrize("backend", COMPILED + ["reference"])
@pytest.mark.parametrize("cell,reset_after", [("simple_rnn", True), ("lstm", True),
                                              ("gru", True), ("gru", False)])
def test_layer_matches_reference_with_its_masks(backend, cell, reset_after, monkeypatch):
    """The layer's training=True call and backward equal the float64 reference run
    with the masks the layer drew (the masks are fixed over time by construction
    there), with initial states, a timestep mask and go_backwards; dx is zero
    exactly where every gate's input mask is, at every step."""
    rng = np.random.default_rng(seed_of(backend, cell, reset_after))
    spy = MaskSpy(monkeypatch)
    n, t, c, h = 9, 6, 4, 10
    G = GATES[cell]
    kw = dict(reset_after=reset_after) if cell == "gru" else {}
    layer = make_layer(cell, h, c, rng, backend, dropout=0.5, recurrent_dropout=0.3,
                       go_backwards=True, return_state=True, seed=11, **kw)
    x = rng.standard_normal((n, t, c)).astype(np.float32)
    mask = make_mask("holes", n, t, rng)
    init = [rng.standard_normal((n, h)).astype(np.float32)
            for _ in range(2 if cell == "lstm" else 1)]
    out = layer(x, initial_state=init, mask=mask, training=True)
    im, rm, _ = spy.last
    dy = rng.standard_normal((n, t, h)).astype(np.float32)
    dx = layer.backward(dy)
    ws = layer.get_weights()
    b = ws[2] if len(ws) > 2 else None
    yr, hr, cr, cache = reference.rnn_forward(
        cell, f64(x), f64(ws[0]), f64(ws[1]), f64(b), f64(init[0]),
        f64(init[1]) if cell == "lstm" else None, mask, go_backwards=True,
        reset_after=reset_after, input_masks=f64(im), recurrent_masks=f64(rm))
    rdx, rdW, rdU, rdb, rdh0, rdc0 = reference.rnn_backward(cache, f64(dy))
    assert_close(out[0], yr, "forward_f32", "y")
    assert_close(out[1], hr, "forward_f32", "h_T")
    assert_close(dx, rdx, "backward_f32", "dx")
    for got, want in zip(layer.grads, (rdW, rdU, rdb)):
        assert_close(got, want, "backward_f32", "grads")
    assert_close(layer.state_grads[0], rdh0, "backward_f32", "dh0")
    if cell == "lstm":
        assert_close(layer.state_grads[1], rdc0, "backward_f32", "dc0")
    dead = (im == 0).all(axis=0)  # [N, C]: no gate reads this input feature
    assert dead.any() and (~dead).any()
    assert not dx[np.broadcast_to(dead[:, None, :], dx.shape)].any()
    assert G == im.shape[0]


@pytest.mark.parametrize("backend", COMPILED + ["reference"])
@pytest.mark.parametrize("cell", list(CELLS))
def test_layer_seed_determinism(backend, cell):
    """The same seed draws the same masks: bitwise identical outputs, dx and grads;
    another seed draws others."""
    rng = np.random.default_rng(4)
    x = rng.standard_normal((6, 5, 4)).astype(np.float32)
    dy = rng.standard_normal((6, 5, 8)).astype(np.float32)

    def run(seed):
        layer = CELLS[cell](8, dropout=0.3, recurrent_dropout=0.3, seed=seed,
                            return_sequences=True, backend=backend)
        layer.build(x.shape)
        y1 = layer(x, training=True)
        dx = layer.backward(dy)
        y2 = layer(x, training=True)  # the stream moves on: a second draw
        return [y1, dx, y2] + layer.grads

    a, b, c = run(5), run(5), run(6)
    for u, v in zip(a, b):
        np.testing.assert_array_equal(u, v)
    assert not np.array_equal(a[0], a[2])
    assert not np.array_equal(a[0], c[0])


# ------------------------------------------------------------------- Keras 3

def _keras():
    os.environ.setdefault("KERAS_BACKEND", "torch")
    keras = pytest.importorskip("keras")
    if keras.backend.backend() != "torch":
        pytest.skip("the Keras comparison uses torch autograd (KERAS_BACKEND=torch)")
    return keras


KERAS_CASES = [("simple_rnn", {}), ("lstm", {}), ("gru", dict(reset_after=True)),
               ("gru", dict(reset_after=False))]


# keras' torch backend calls np.array(tensor) (a NumPy 2 copy= DeprecationWarning)
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.parametrize("backend", COMPILED + ["reference"])
@pytest.mark.parametrize("go_backwards", [False, True], ids=["fwd", "bwd"])
@pytest.mark.parametrize("cell,opts", KERAS_CASES, ids=lambda v: str(v))
def test_keras_masks_in_our_kernels(cell, opts, go_backwards, backend):
    """Keras' own dropout masks (its cells' _dropout_mask / _recurrent_dropout_mask,
    set by hand before a training=True call, as its RNN layer would draw them) fed
    to ops.rnn_forward: outputs, the final state and (torch autograd) the
    gradients of x and of every weight agree with Keras."""
    keras = _keras()
    import torch
    rng = np.random.default_rng(seed_of(cell, opts, go_backwards))
    n, t, c, h = 5, 6, 4, 7
    G = GATES[cell]
    cls = {"simple_rnn": keras.layers.SimpleRNN, "lstm": keras.layers.LSTM,
           "gru": keras.layers.GRU}[cell]
    layer = cls(h, dropout=0.3, recurrent_dropout=0.4, return_sequences=True,
                return_state=True, go_backwards=go_backwards, seed=1, **opts)
    layer.build((n, t, c))
    ws = [rng.uniform(-0.5, 0.5, w.shape).astype(np.float32) for w in layer.get_weights()]
    layer.set_weights(ws)
    x = rng.standard_normal((n, t, c)).astype(np.float32)
    im = ((rng.random((G, n, c)) < 0.7) / 0.7).astype(np.float32)
    rm = ((rng.random((G, n, h)) < 0.6) / 0.6).astype(np.float32)
    # Keras' masks: a list of G [N, D] tensors (implementation=1), one tensor for SimpleRNN
    as_keras = (lambda m: torch.tensor(m[0])) if cell == "simple_rnn" else \
        (lambda m: [torch.tensor(m[g]) for g in range(G)])
    layer.cell._dropout_mask = as_keras(im)
    layer.cell._recurrent_dropout_mask = as_keras(rm)
    if cell != "simple_rnn":
        assert layer.cell.implementation == 1 and layer.cell.dropout_mask_count == G
    xt = torch.tensor(x, requires_grad=True)
    out = layer(xt, training=True)
    dy = rng.standard_normal((n, t, h)).astype(np.float32)
    loss = (out[0] * torch.tensor(dy)).sum()
    loss.backward()
    k_grads = [v.value.grad.detach().numpy() for v in layer.trainable_variables]
    k_dx = xt.grad.detach().numpy()
    k_y = out[0].detach().numpy()
    k_h = out[1].detach().numpy()

    b = ws[2] if len(ws) > 2 else None
    h0 = np.zeros((n, h), np.float32)
    y, hT, _, cache = ops.rnn_forward(
        cell, x, ws[0], ws[1], b, h0, h0 if cell == "lstm" else None, None,
        reset_after=opts.get("reset_after", True), go_backwards=go_backwards,
        backend=backend, input_masks=im, recurrent_masks=rm)
    g = ops.rnn_backward(cache, dy)
    assert_close(y, k_y, "keras_f32", "y")
    assert_close(hT, k_h, "keras_f32", "h_T")
    assert_close(g.dx, k_dx, "keras_f32", "dx")
    names = [v.path.split("/")[-1] for v in layer.trainable_variables]
    ours = dict(kernel=g.dkernel, recurrent_kernel=g.drecurrent_kernel, bias=g.dbias)
    for name, kg in zip(names, k_grads):
        assert_close(ours[name], kg, "keras_f32", f"d{name}")
