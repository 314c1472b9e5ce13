"""Every compiled backend (the CPU ISAs, cuda-emu, and cuda where a device
exists) against the float64 NumPy reference, forward and BPTT, over the whole
option grid and at tail sizes (H around the vector width and the GPU tiles,
N around the row block, T in {1, 2, 17}); the CPU kernels' GEMM and packing."""
import itertools
import multiprocessing as mp
import zlib

import numpy as np
import pytest

from rnnkern import backends as bk
from rnnkern import reference
from rnnkern._common import GATES

from helpers import run_in_threads, tail_cases
from tolerances import assert_close

COMPILED = [b for b in bk.backends() if b != "reference"]   # CPU ISAs and the GPU backends
CPU = bk.cpu_backends()                                      # the CPU kernels' own tests
pytestmark = pytest.mark.skipif(not COMPILED, reason="compiled extension not built")

# (cell, activation, recurrent_activation, reset_after)
CELL_CONFIGS = (
    [("simple_rnn", a, "sigmoid", True) for a in ("tanh", "relu", "sigmoid", "hard_sigmoid", "linear")]
    + [("lstm", "tanh", "sigmoid", True), ("lstm", "tanh", "hard_sigmoid", True),
       ("lstm", "relu", "sigmoid", True)]
    + [("gru", "tanh", ra, rst) for ra in ("sigmoid", "hard_sigmoid") for rst in (True, False)]
)
MASKS = ("none", "right", "left", "holes", "full")


def make_mask(kind, n, t, rng):
    if kind == "none":
        return None
    m = np.ones((n, t), bool)
    if kind == "right":
        for i in range(n):
            m[i, t - (i % t):] = False  # row i: its last i % t steps are padding
    elif kind == "left":
        for i in range(n):
            m[i, : (i % t)] = False
    elif kind == "holes":
        m = rng.random((n, t)) > 0.4
    elif kind == "full":
        m[0, :] = False
        if n > 1:
            m[1:, ::2] = False
    return m


def make_case(cell, n, t, c, h, reset_after, use_bias, rng, scale=0.5):
    g = GATES[cell]
    x = rng.standard_normal((n, t, c)).astype(np.float32)
    W = (rng.standard_normal((c, g * h)) * scale / np.sqrt(c)).astype(np.float32)
    U = (rng.standard_normal((h, g * h)) * scale / np.sqrt(h)).astype(np.float32)
    b = None
    if use_bias:
        shape = (2, g * h) if (cell == "gru" and reset_after) else (g * h,)
        b = (rng.standard_normal(shape) * 0.3).astype(np.float32)
    h0 = (rng.standard_normal((n, h)) * 0.5).astype(np.float32)
    c0 = (rng.standard_normal((n, h)) * 0.5).astype(np.float32) if cell == "lstm" else None
    return x, W, U, b, h0, c0


def f64(a):
    return None if a is None else np.asarray(a, np.float64)


def run_both(backend, cell, act, ract, reset_after, go_backwards, return_sequences, mask,
             x, W, U, b, h0, c0, rng):
    kw = dict(activation=act, recurrent_activation=ract, reset_after=reset_after,
              go_backwards=go_backwards, return_sequences=return_sequences, training=True)
    be = bk.get_backend(backend)
    y, hT, cT, cache = be.forward(cell, x, W, U, b, h0, c0, mask, **kw)
    yr, hr, cr, cache_r = reference.rnn_forward(cell, f64(x), f64(W), f64(U), f64(b), f64(h0),
                                                f64(c0), mask, **kw)
    dy = rng.standard_normal(y.shape).astype(np.float32)
    dh = rng.standard_normal(hT.shape).astype(np.float32)
    dc = rng.standard_normal(hT.shape).astype(np.float32) if cell == "lstm" else None
    g = be.backward(cache, dy, dh, dc)
    gr = reference.rnn_backward(cache_r, f64(dy), f64(dh), f64(dc))
    return (y, hT, cT), (yr, hr, cr), g, gr


def check(outs, refs, g, gr, what):
    errs = {}
    for name, a, r in zip(("y", "h_T", "c_T"), outs, refs):
        if r is None:
            assert a is None, f"{what}: {name} should be None"
            continue
        errs[name] = assert_close(a, r, "forward_f32", f"{what} {name}")
    for name, a, r in zip(("dx", "dkernel", "drecurrent_kernel", "dbias", "dh0", "dc0"), g, gr):
        if r is None:
            assert a is None, f"{what}: {name} should be None"
            continue
        errs[name] = assert_close(a, r, "backward_f32", f"{what} {name}")
    return errs


@pytest.mark.parametrize("backend", COMPILED)
@pytest.mark.parametrize("cell,act,ract,reset_after", CELL_CONFIGS,
                         ids=lambda v: str(v))
@pytest.mark.parametrize("go_backwards", [False, True], ids=["fwd", "bwd"])
@pytest.mark.parametrize("mask_kind", MASKS)
# (3, 5, 4, 6): one row block, projection as a GEMM; (13, 4, 3, 12): several row
# blocks, so the projection is fused into the step; (13, 4, 9, 2): several row
# blocks but C > 4H, projection as a GEMM
@pytest.mark.parametrize("dims", [(3, 5, 4, 6), (13, 4, 3, 12), (13, 4, 9, 2)],
                         ids=["gemm", "fused", "gemm-blocks"])
def test_option_grid(backend, cell, act, ract, reset_after, go_backwards, mask_kind, dims):
    # a stable seed per case: hash() of a str changes with each process (PYTHONHASHSEED)
    rng = np.random.default_rng(
        zlib.crc32(repr((cell, act, ract, reset_after, go_backwards, mask_kind)).encode()))
    n, t, c, h = dims
    for use_bias, return_sequences in itertools.product([True, False], [True, False]):
        x, W, U, b, h0, c0 = make_case(cell, n, t, c, h, reset_after, use_bias, rng)
        mask = make_mask(mask_kind, n, t, rng)
        outs, refs, g, gr = run_both(backend, cell, act, ract, reset_after, go_backwards,
                                     return_sequences, mask, x, W, U, b, h0, c0, rng)
        check(outs, refs, g, gr, f"{backend} {cell} bias={use_bias} seq={return_sequences}")


VEC_W = 16  # the widest vector (AVX-512 floats); tails are tested around it and 4, 8


@pytest.mark.parametrize("backend,h", tail_cases(COMPILED))
@pytest.mark.parametrize("cell,reset_after", [("simple_rnn", True), ("lstm", True),
                                              ("gru", True), ("gru", False)])
def test_tail_sizes(backend, cell, reset_after, h):
    rng = np.random.default_rng(h * 7 + len(cell))
    for n, t in [(1, 1), (3, 2), (5, 17)]:
        x, W, U, b, h0, c0 = make_case(cell, n, t, 3, h, reset_after, True, rng)
        mask = make_mask("holes", n, t, rng) if n > 1 else None
        outs, refs, g, gr = run_both(backend, cell, "tanh", "sigmoid", reset_after, False, True,
                                     mask, x, W, U, b, h0, c0, rng)
        check(outs, refs, g, gr, f"{backend} {cell} n={n} t={t} h={h}")


@pytest.mark.parametrize("backend", CPU)   # thread counts are the CPU kernels' matter
@pytest.mark.parametrize("cell,reset_after", [("lstm", True), ("gru", False), ("gru", True),
                                              ("simple_rnn", True)])
def test_larger_case_threads_deterministic(backend, cell, reset_after):
    """Sizes where the forward and the backward loops both run on 2 threads
    (> 0.5 MFLOP a step): two runs are bitwise identical, and 1 and 2 threads
    both match the reference."""
    rng = np.random.default_rng(5)
    n, t, c, h = 13, 12, 20, 96 if cell != "simple_rnn" else 256
    x, W, U, b, h0, c0 = make_case(cell, n, t, c, h, reset_after, True, rng)
    mask = make_mask("holes", n, t, rng)
    dy = rng.standard_normal((n, t, h)).astype(np.float32)
    be = bk.get_backend(backend)
    old = bk._num_threads
    try:
        res = []
        for threads in (2, 2, 1):
            bk.set_num_threads(threads)
            y, hT, cT, cache = be.forward(cell, x, W, U, b, h0, c0, mask, reset_after=reset_after)
            res.append((y, hT, cT) + tuple(be.backward(cache, dy)))
    finally:
        bk.set_num_threads(old)
    for a, b2 in zip(res[0], res[1]):
        if a is not None:
            assert np.array_equal(a, b2), "two identical runs differ"
    yr, _, _, cr = reference.rnn_forward(cell, f64(x), f64(W), f64(U), f64(b), f64(h0), f64(c0),
                                         mask, reset_after=reset_after)
    gr = reference.rnn_backward(cr, f64(dy))
    for r in (res[0], res[2]):
        assert_close(r[0], yr, "forward_f32", "y")
        for a, ref in zip(r[3:], gr):
            if ref is not None:
                assert_close(a, ref, "backward_f32", "grad")


@pytest.mark.parametrize("backend", CPU)
@pytest.mark.parametrize("m,n,k,ta,tb", [(1, 1, 1, 0, 0), (7, 13, 5, 0, 0), (33, 9, 300, 1, 0),
                                         (100, 70, 513, 0, 1), (5, 200, 3, 1, 1)])
def test_gemm(backend, m, n, k, ta, tb):
    from rnnkern import _core
    rng = np.random.default_rng(m * n + k)
    a = rng.standard_normal((k, m) if ta else (m, k)).astype(np.float32)
    b = rng.standard_normal((n, k) if tb else (k, n)).astype(np.float32)
    want = (a.T if ta else a).astype(np.float64) @ (b.T if tb else b).astype(np.float64)
    got = _core.testing.gemm(backend, a, b, bool(ta), bool(tb), 2)
    assert_close(got, want, "backward_f32", "gemm")


@pytest.mark.parametrize("backend", COMPILED)
def test_inference_mode_keeps_nothing(backend):
    rng = np.random.default_rng(1)
    x, W, U, b, h0, c0 = make_case("gru", 2, 4, 3, 5, True, True, rng)
    be = bk.get_backend(backend)
    y, hT, _, cache = be.forward("gru", x, W, U, b, h0, None, None, training=False)
    assert cache is None
    yr, hr, _, _ = reference.rnn_forward("gru", f64(x), f64(W), f64(U), f64(b), f64(h0))
    assert_close(y, yr, "forward_f32", "inference y")


@pytest.mark.parametrize("backend", COMPILED)
def test_nan_propagates(backend):
    rng = np.random.default_rng(2)
    for cell, act in [("simple_rnn", "relu"), ("simple_rnn", "hard_sigmoid"), ("lstm", "tanh"),
                      ("gru", "tanh")]:
        x, W, U, b, h0, c0 = make_case(cell, 2, 3, 3, 5, True, True, rng)
        x[0, 1, :] = np.nan
        y, hT, _, _ = bk.get_backend(backend).forward(cell, x, W, U, b, h0, c0, None,
                                                      activation=act)
        assert np.isnan(y[0, 1:]).all(), f"{cell}/{act}: NaN was clamped"
        assert np.isfinite(y[1]).all()


def _child_forward(q):
    rng = np.random.default_rng(0)
    x, W, U, b, h0, c0 = make_case("lstm", 8, 6, 16, 64, True, True, rng)
    y, *_ = bk.get_backend("auto").forward("lstm", x, W, U, b, h0, c0, None)
    q.put(float(np.abs(y).sum()))


def test_fork_after_openmp_does_not_hang():
    rng = np.random.default_rng(0)
    x, W, U, b, h0, c0 = make_case("lstm", 8, 6, 16, 64, True, True, rng)
    bk.set_num_threads(2)
    try:
        bk.get_backend("auto").forward("lstm", x, W, U, b, h0, c0, None)  # warm the pool
        ctx = mp.get_context("fork")
        q = ctx.Queue()
        p = ctx.Process(target=_child_forward, args=(q,))
        p.start()
        p.join(60)
        hung = p.is_alive()
        if hung:
            p.kill()
        assert not hung, "forked child hung in the kernel"
        assert p.exitcode == 0
        assert np.isfinite(q.get(timeout=5))
    finally:
        bk.set_num_threads(None)


@pytest.mark.parametrize("backend", CPU)
@pytest.mark.parametrize("cell,reset_after", [("lstm", True), ("gru", False)])
def test_chunked_input_projection(backend, cell, reset_after):
    """N*G*H large enough that the input projection runs in several chunks of
    steps (1 MiB each): chunk borders, go_backwards and masks across them."""
    rng = np.random.default_rng(11)
    n, t, c, h = 48, 19, 5, 160  # LSTM: 120 KiB of pre-activations per step -> chunks of 8
    x, W, U, b, h0, c0 = make_case(cell, n, t, c, h, reset_after, True, rng)
    mask = make_mask("holes", n, t, rng)
    outs, refs, g, gr = run_both(backend, cell, "tanh", "sigmoid", reset_after, True, True,
                                 mask, x, W, U, b, h0, c0, rng)
    check(outs, refs, g, gr, f"{backend} {cell} chunked")


@pytest.mark.parametrize("backend", COMPILED)
def test_concurrent_python_threads_are_deterministic(backend):
    """The GIL is released around the kernels: several Python threads running
    layers at once must each get the same bits as a lone call."""
    rng = np.random.default_rng(3)
    cases = []
    # cuda-emu runs a grid on host threads: a smaller case tests the same pools
    t, h = (4, 17) if backend == "cuda-emu" else (9, 37)
    for cell, ra in [("lstm", True), ("gru", False), ("simple_rnn", True), ("gru", True)]:
        x, W, U, b, h0, c0 = make_case(cell, 5, t, 7, h, ra, True, rng)
        dy = rng.standard_normal((5, t, h)).astype(np.float32)
        cases.append((cell, ra, x, W, U, b, h0, c0, dy))
    be = bk.get_backend(backend)

    def run(case):
        cell, ra, x, W, U, b, h0, c0, dy = case
        y, h, c, cache = be.forward(cell, x, W, U, b, h0, c0, None, reset_after=ra)
        return (y, h) + tuple(g for g in be.backward(cache, dy) if g is not None)

    alone = [run(c) for c in cases]

    def worker():
        out = None
        for _ in range(3):
            out = [run(c) for c in cases]
        return out

    for results in run_in_threads(lambda k: worker(), 3):
        for got, want in zip(results, alone):
            for a, b2 in zip(got, want):
                assert np.array_equal(a, b2), "results differ between concurrent and lone calls"


@pytest.mark.parametrize("backend", CPU)
@pytest.mark.parametrize("cell,reset_after", [("simple_rnn", True), ("lstm", True),
                                              ("gru", True), ("gru", False)])
def test_packed_weights_give_identical_results(backend, cell, reset_after):
    """U packed once (the layers' cache) gives bitwise the results of packing per
    call, forward and backward, reused over several calls and thread counts."""
    rng = np.random.default_rng(len(cell) + reset_after)
    n, t, c, h = 7, 9, 5, 37
    be = bk.get_backend(backend)
    x, W, U, b, h0, c0 = make_case(cell, n, t, c, h, reset_after, True, rng)
    mask = make_mask("holes", n, t, rng)
    dy = rng.standard_normal((n, t, h)).astype(np.float32)
    kw = dict(reset_after=reset_after, return_sequences=True, training=True)
    packed = be.pack(cell, U, reset_after, W)
    assert packed.isa == backend and packed.cell == cell and packed.units == h
    fwd_bytes = packed.nbytes
    assert fwd_bytes >= U.nbytes + W.nbytes
    old = bk._num_threads
    try:
        for threads in (1, 2, 1):
            bk.set_num_threads(threads)
            y0, h_0, c_0, k0 = be.forward(cell, x, W, U, b, h0, c0, mask, **kw)
            y1, h_1, c_1, k1 = be.forward(cell, x, W, U, b, h0, c0, mask, packed, **kw)
            for u, v in [(y0, y1), (h_0, h_1)] + ([(c_0, c_1)] if cell == "lstm" else []):
                np.testing.assert_array_equal(u, v)
            g0 = be.backward(k0, dy)
            g1 = be.backward(k1, dy)
            for u, v in zip(g0, g1):
                if u is not None:
                    np.testing.assert_array_equal(u, v)
            assert packed.nbytes >= fwd_bytes + U.nbytes  # backward parts added once
    finally:
        bk.set_num_threads(old)
    # and both against the reference
    outs, refs, g, gr = run_both(backend, cell, "tanh", "sigmoid", reset_after, False, True,
                                 mask, x, W, U, b, h0, c0, rng)
    check(outs, refs, g, gr, f"{backend} {cell} packed")


@pytest.mark.parametrize("backend", CPU)
def test_packed_weights_are_checked(backend):
    rng = np.random.default_rng(5)
    be = bk.get_backend(backend)
    x, W, U, b, h0, c0 = make_case("gru", 2, 3, 4, 8, False, True, rng)
    packed = be.pack("gru", U, False)
    be.forward("gru", x, W, U, b, h0, c0, None, packed, reset_after=False)  # fine
    with pytest.raises(ValueError, match="another recurrent_kernel"):
        be.forward("gru", x, W, U.copy(), b, h0, c0, None, packed, reset_after=False)
    with pytest.raises(ValueError, match="another isa, cell, reset_after or units"):
        b2 = make_case("gru", 2, 3, 4, 8, True, True, rng)[3]
        be.forward("gru", x, W, U, b2, h0, c0, None, packed, reset_after=True)
    for other in set(COMPILED) - {backend}:
        with pytest.raises(ValueError, match="another isa"):
            bk.get_backend(other).forward("gru", x, W, U, b, h0, c0, None, packed,
                                          reset_after=False)
    packed_w = be.pack("gru", U, False, W)
    with pytest.raises(ValueError, match="another kernel array"):
        be.forward("gru", x, W.copy(), U, b, h0, c0, None, packed_w, reset_after=False)
    with pytest.raises(ValueError, match=r"kernel must have shape \(input_dim, 24\)"):
        be.pack("gru", U, False, W[:, :5])
    with pytest.raises(TypeError, match="packed must be"):
        be.forward("gru", x, W, U, b, h0, c0, None, "packed", reset_after=False)
    with pytest.raises(ValueError, match="recurrent_kernel must have shape"):
        be.pack("lstm", U, True)


@pytest.mark.parametrize("backend", CPU)
def test_shared_packed_weights_across_python_threads(backend):
    """One PackedWeights used by several Python threads at once: the backward
    parts are packed once (under a lock) and every thread gets a lone call's bits."""
    rng = np.random.default_rng(4)
    be = bk.get_backend(backend)
    x, W, U, b, h0, c0 = make_case("lstm", 9, 6, 5, 40, True, True, rng)
    dy = rng.standard_normal((9, 6, 40)).astype(np.float32)

    def run(packed):
        y, h, c, cache = be.forward("lstm", x, W, U, b, h0, c0, None, packed)
        return (y, h, c) + tuple(g for g in be.backward(cache, dy) if g is not None)

    want = run(None)
    for _ in range(3):
        packed = be.pack("lstm", U, True, W)  # fresh: the backward parts are not packed yet
        for got in run_in_threads(lambda k: run(packed), 4):
            for a, b2 in zip(got, want):
                np.testing.assert_array_equal(a, b2)


def test_small_problems_default_to_one_thread(monkeypatch):
    """The default thread count is capped at one below SMALL_STEP_WORK a step (a
    barrier a step would cost more than a second thread gains); set_num_threads'
    value is used as given; OMP_NUM_THREADS still sets the default."""
    old = bk._num_threads
    try:
        bk.set_num_threads(None)
        monkeypatch.setenv("OMP_NUM_THREADS", "2")
        assert bk.get_num_threads() == 2
        assert bk._threads_for("lstm", 32, 16, 16) == 1            # 32*4*16*32 = 65536
        assert bk._threads_for("lstm", 64, 256, 512) == 2
        n = -(-bk.SMALL_STEP_WORK // (3 * 64 * 128))                 # gru, H=64, C=64
        assert bk._threads_for("gru", n, 64, 64) == 2
        assert bk._threads_for("gru", n - 1, 64, 64) == 1
        bk.set_num_threads(2)
        assert bk._threads_for("lstm", 1, 4, 4) == 2
        monkeypatch.setenv("OMP_NUM_THREADS", "1")
        bk.set_num_threads(None)
        assert bk._threads_for("lstm", 64, 256, 512) == 1
        with pytest.raises(ValueError, match="positive int"):
            bk.set_num_threads(True)
    finally:
        bk.set_num_threads(old)
