"""Arrays already on a GPU backend's device, used in place (rnnkern._device), and
the per-step loops captured as a graph and replayed (set_cuda_graphs).

On cuda-emu (here and in CI) the device is the host: rnnkern.device_array(a,
"cuda-emu") makes device memory there, which the emulated kernels take in place
through the same __cuda_array_interface__ / DLPack reading a real device uses.
Every result of the device path is checked against the host path of the same
backend (bitwise: the same kernels on the same values) and against the float64
reference; on a real device (skipped without one) the same with PyTorch CUDA
tensors in and out."""
import numpy as np
import pytest

import rnnkern as rk
from rnnkern import _core
from rnnkern import backends as bk
from rnnkern import ops, reference

from test_kernels import check, f64, make_case, make_mask
from test_recurrent_dropout import drop_masks

HAVE_CUDA = bk.cuda_status()[0]
GPU = ["cuda-emu"] + (["cuda"] if HAVE_CUDA else [])
needs_cuda = pytest.mark.skipif(not HAVE_CUDA, reason=f"no CUDA device: {bk.cuda_status()[1]}")
CELLS = [("simple_rnn", True), ("lstm", True), ("gru", True), ("gru", False)]


def dev(a, backend):
    return None if a is None else rk.device_array(a, backend)


def host(a):
    return None if a is None else a.numpy()


def problem(cell, reset_after, n, t, c, h, seed, *, mask_kind="holes", drop=None):
    rng = np.random.default_rng(seed)
    x, W, U, b, h0, c0 = make_case(cell, n, t, c, h, reset_after, True, rng)
    mask = make_mask(mask_kind, n, t, rng)
    im, rm = drop_masks(drop, cell, n, c, h, rng) if drop else (None, None)
    return rng, dict(x=x, W=W, U=U, b=b, h0=h0, c0=c0, mask=mask, input_masks=im,
                     recurrent_masks=rm)


def run(backend, cell, a, on_device, dy, dh, dc, **kw):
    """forward + backward on host arrays or on device copies of them; results on the host."""
    d = (lambda v: dev(v, backend)) if on_device else (lambda v: v)
    y, hT, cT, cache = ops.rnn_forward(cell, d(a["x"]), d(a["W"]), d(a["U"]), d(a["b"]),
                                       d(a["h0"]), d(a["c0"]), d(a["mask"]), backend=backend,
                                       input_masks=d(a["input_masks"]),
                                       recurrent_masks=d(a["recurrent_masks"]), **kw)
    g = ops.rnn_backward(cache, d(dy), d(dh), d(dc))
    if on_device:
        assert all(isinstance(v, _core.DeviceArray) for v in (y, hT) + tuple(
            v for v in g if v is not None))
        y, hT, cT = host(y), host(hT), host(cT)
        g = type(g)(*(host(v) for v in g))
    return (y, hT, cT), g


@pytest.mark.parametrize("backend", GPU)
@pytest.mark.parametrize("cell,reset_after", CELLS)
@pytest.mark.parametrize("opts", ["plain", "masked-bwd-last", "dropout"])
def test_device_path_matches_host_path_and_reference(backend, cell, reset_after, opts):
    """Same kernels, same values: the device path equals the host path bitwise
    (forward and backward), and both pass against the float64 reference."""
    n, t, c, h = 5, 4, 3, 6
    rng, a = problem(cell, reset_after, n, t, c, h, len(cell) + reset_after,
                     mask_kind="holes" if opts != "plain" else "none",
                     drop="both" if opts == "dropout" else None)
    kw = dict(reset_after=reset_after, go_backwards=opts == "masked-bwd-last",
              return_sequences=opts != "masked-bwd-last")
    ys = (n, t, h) if kw["return_sequences"] else (n, h)
    dy = rng.standard_normal(ys).astype(np.float32)
    dh = rng.standard_normal((n, h)).astype(np.float32)
    dc = rng.standard_normal((n, h)).astype(np.float32) if cell == "lstm" else None
    outs_h, g_h = run(backend, cell, a, False, dy, dh, dc, **kw)
    outs_d, g_d = run(backend, cell, a, True, dy, dh, dc, **kw)
    for name, u, v in zip(("y", "h_T", "c_T"), outs_h, outs_d):
        assert (u is None) == (v is None)
        if u is not None:
            np.testing.assert_array_equal(u, v, err_msg=f"{name}: device path != host path")
    for name, u, v in zip(g_h._fields, g_h, g_d):
        assert (u is None) == (v is None), name
        if u is not None:
            np.testing.assert_array_equal(u, v, err_msg=f"{name}: device path != host path")
    yr, hr, cr, cache_r = reference.rnn_forward(
        cell, f64(a["x"]), f64(a["W"]), f64(a["U"]), f64(a["b"]), f64(a["h0"]), f64(a["c0"]),
        a["mask"], input_masks=f64(a["input_masks"]), recurrent_masks=f64(a["recurrent_masks"]),
        training=True, **kw)
    gr = reference.rnn_backward(cache_r, f64(dy), f64(dh), f64(dc))
    check(outs_d, (yr, hr, cr), g_d, gr, f"{backend} {cell} {opts} on the device")


@pytest.mark.parametrize("backend", GPU)
def test_final_state_gradients_default_to_zeros_on_the_device(backend):
    _, a = problem("lstm", True, 3, 2, 2, 4, 7, mask_kind="none")
    dy = np.ones((3, 2, 4), np.float32)
    z = np.zeros((3, 4), np.float32)
    _, g_h = run(backend, "lstm", a, False, dy, z, z)
    y, hT, cT, cache = ops.rnn_forward("lstm", *(dev(a[k], backend) for k in
                                                 ("x", "W", "U", "b", "h0", "c0")),
                                       backend=backend)
    g = ops.rnn_backward(cache, dev(dy, backend))
    for u, v in zip(g_h, g):
        np.testing.assert_array_equal(u, host(v))


class CudaArrayInterface:
    """Only __cuda_array_interface__ (what Numba or CuPy give), over another array."""

    def __init__(self, base, **override):
        self.base = base
        self.__cuda_array_interface__ = dict(base.__cuda_array_interface__, **override)


class DLPackOnly:
    """Only DLPack (what JAX gives), over a DeviceArray, reporting a CUDA device."""

    def __init__(self, base):
        self.base = base

    def __dlpack__(self, stream=None):
        return self.base.__dlpack__()

    def __dlpack_device__(self):
        return (2, 0)


@pytest.mark.parametrize("wrap", ["cai", "cai-strides", "dlpack"])
def test_other_producers_are_read_in_place(wrap):
    """An object exposing only one of the two interfaces is read through it (on
    cuda-emu: over its own memory), with explicit C-contiguous strides as well."""
    backend = "cuda-emu"
    rng, a = problem("gru", False, 4, 3, 5, 6, 3, mask_kind="none")
    y_h, h_h, _, _ = ops.rnn_forward("gru", a["x"], a["W"], a["U"], a["b"], a["h0"],
                                     backend=backend, reset_after=False)

    def w(v):
        d = rk.device_array(v, backend)
        if wrap == "cai":
            return CudaArrayInterface(d)
        if wrap == "cai-strides":
            st = tuple(int(np.prod(v.shape[i + 1:])) * 4 for i in range(v.ndim))
            return CudaArrayInterface(d, strides=st)
        return DLPackOnly(d)

    y, hT, _, _ = ops.rnn_forward("gru", w(a["x"]), w(a["W"]), w(a["U"]), w(a["b"]),
                                  w(a["h0"]), backend=backend, reset_after=False)
    np.testing.assert_array_equal(host(y), y_h)
    np.testing.assert_array_equal(host(hT), h_h)


def test_device_array_exports():
    x = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    d = rk.device_array(x, "cuda-emu")
    assert d.shape == (2, 3, 4) and d.dtype == np.float32 and d.device == "cuda-emu"
    assert d.nbytes == 96 and "cuda-emu" in repr(d)
    cai = d.__cuda_array_interface__
    assert cai["shape"] == (2, 3, 4) and cai["typestr"] == "<f4" and cai["version"] == 3
    np.testing.assert_array_equal(d.numpy(), x)
    v = np.from_dlpack(d)            # the emulated device is the host: a view, no copy
    assert v.ctypes.data == cai["data"][0]
    del d                            # the view keeps the memory alive
    np.testing.assert_array_equal(v, x)
    m = rk.device_array(np.array([[True, False]]), "cuda-emu")
    assert m.dtype == np.uint8 and m.__cuda_array_interface__["typestr"] == "|u1"
    assert rk.is_device_array(m) and not rk.is_device_array(x) and not rk.is_device_array(None)
    with pytest.raises(ValueError, match="backend must be"):
        rk.device_array(x, "avx2")


def test_bad_device_input_is_a_clear_error():
    backend = "cuda-emu"
    rng, a = problem("lstm", True, 3, 2, 4, 5, 11, mask_kind="none")
    d = {k: dev(v, backend) for k, v in a.items()}

    def fwd(**over):
        args = dict(d, **over)
        return ops.rnn_forward("lstm", args["x"], args["W"], args["U"], args["b"], args["h0"],
                               args["c0"], args.get("mask"), backend=backend)

    with pytest.raises(ValueError, match="x is on the device but kernel is not"):
        fwd(W=a["W"])
    with pytest.raises(ValueError, match=r"kernel must have shape \(C, G\*H\) = \(4, 20\)"):
        fwd(W=dev(a["W"][:, :16], backend))
    with pytest.raises(ValueError, match=r"h0 must have shape \(N, H\) = \(3, 5\)"):
        fwd(h0=dev(a["h0"][:2], backend))
    with pytest.raises(ValueError, match="c0 is required"):
        fwd(c0=None)
    with pytest.raises(TypeError, match="mask must be a boolean"):
        fwd(mask=dev(np.ones((3, 2), np.float32), backend))
    with pytest.raises(ValueError, match=r"mask must have shape \(N, T\) = \(3, 2\)"):
        fwd(mask=dev(np.ones((3, 3), bool), backend))
    with pytest.raises(TypeError, match="x must be float32 on the device"):
        fwd(x=CudaArrayInterface(d["x"], typestr="<f8"))
    with pytest.raises(ValueError, match="x must be C-contiguous"):
        fwd(x=CudaArrayInterface(d["x"], strides=(4, 12, 24)))
    # memory the emulation did not allocate (here: a NumPy array's) is refused, not read
    with pytest.raises(ValueError, match="not memory the cuda-emu backend can use"):
        fwd(x=CudaArrayInterface(d["x"], data=(a["x"].ctypes.data, False)))
    # an array that runs past its allocation, too
    with pytest.raises(ValueError, match="not memory the cuda-emu backend can use"):
        fwd(x=CudaArrayInterface(d["x"], shape=(3, 2, 8)))
    y, hT, cT, cache = fwd()
    with pytest.raises(ValueError, match=r"dy must have shape \(3, 2, 5\)"):
        ops.rnn_backward(cache, dev(np.ones((3, 5), np.float32), backend))
    with pytest.raises(ValueError, match="pass the gradients on the device"):
        ops.rnn_backward(cache, np.ones((3, 2, 5), np.float32))
    # a host forward's backward takes host gradients
    _, _, _, host_cache = ops.rnn_forward("lstm", a["x"], a["W"], a["U"], a["b"], a["h0"],
                                          a["c0"], backend=backend)
    with pytest.raises(ValueError, match="pass the gradients as host arrays too"):
        ops.rnn_backward(host_cache, y)


@pytest.fixture
def graphs():
    """Graphs on, and the per-step family (the one graphs capture) also for the
    plain launches these tests compare with."""
    for backend in GPU:
        _core.gpu_set_plan(backend, "steps")
    bk.set_cuda_graphs(True)
    yield
    bk.set_cuda_graphs(False)
    for backend in GPU:
        _core.gpu_set_plan(backend, "auto")


@pytest.mark.parametrize("backend", GPU)
@pytest.mark.parametrize("cell,reset_after", CELLS)
@pytest.mark.parametrize("product", ["simt", "mma"])
def test_graph_replay_matches_launches(backend, cell, reset_after, product, graphs):
    """The per-step loops captured once and replayed give bitwise the launches'
    results, forward (a batch past the persistent path) and backward, with masks
    and dropout, on FFMA and on the tensor cores (R3); each loop is one replay."""
    for b in GPU:
        _core.gpu_set_plan(b, "steps:" + product)
    n, t, c, h = 17, 5, 3, 6
    rng, a = problem(cell, reset_after, n, t, c, h, 5 + len(cell), drop="both")
    dy = rng.standard_normal((n, t, h)).astype(np.float32)
    dh = rng.standard_normal((n, h)).astype(np.float32)
    dc = dh.copy() if cell == "lstm" else None
    kw = dict(reset_after=reset_after, go_backwards=True)
    before = _core.gpu_graph_replays(backend)
    outs_g, g_g = run(backend, cell, a, False, dy, dh, dc, **kw)
    assert _core.gpu_graph_replays(backend) - before == 2
    assert bk.cuda_graphs()
    bk.set_cuda_graphs(False)
    outs, g = run(backend, cell, a, False, dy, dh, dc, **kw)
    assert _core.gpu_graph_replays(backend) - before == 2
    for u, v in zip(outs + tuple(g), outs_g + tuple(g_g)):
        assert (u is None) == (v is None)
        if u is not None:
            np.testing.assert_array_equal(u, v)


@pytest.mark.parametrize("backend", GPU)
@pytest.mark.parametrize("cell,reset_after", [("lstm", False), ("gru", False)])
def test_graphs_are_updated_across_calls(backend, cell, reset_after, graphs):
    """A later call of the same loop shape updates the graph the first one
    instantiated (its kernels' arguments: other inputs, other buffers) instead of
    instantiating another, and still gives bitwise the plain launches' results; a
    call of another length gets a graph of its own."""
    n, c, h = 17, 3, 6
    kw = dict(reset_after=reset_after)

    def call(t, seed, on):
        bk.set_cuda_graphs(on)
        rng, a = problem(cell, reset_after, n, t, c, h, seed, drop="both")
        dy = rng.standard_normal((n, t, h)).astype(np.float32)
        dh = rng.standard_normal((n, h)).astype(np.float32)
        dc = dh.copy() if cell == "lstm" else None
        outs, g = run(backend, cell, a, False, dy, dh, dc, **kw)
        return outs + tuple(g)

    call(6, 1, True)                      # instantiates (or updates an earlier test's)
    before = _core.gpu_graph_updates(backend)
    refused = _core.gpu_graph_reinstantiations(backend)
    replays = _core.gpu_graph_replays(backend)
    with_graphs = call(6, 2, True)        # same shapes, other inputs: both loops update
    updated = _core.gpu_graph_updates(backend) - before
    reinstantiated = _core.gpu_graph_reinstantiations(backend) - refused
    # a refused update (the CUDA runtime may refuse one) is instantiated anew and
    # counted as such; the emulation never refuses
    assert updated + reinstantiated == 2
    if backend == "cuda-emu":
        assert updated == 2
    assert _core.gpu_graph_replays(backend) - replays == 2
    plain = call(6, 2, False)
    for u, v in zip(plain, with_graphs):
        assert (u is None) == (v is None)
        if u is not None:
            np.testing.assert_array_equal(u, v)
    _core.gpu_clear_graphs()              # no graph of any length cached now
    before = _core.gpu_graph_updates(backend)
    call(29, 3, True)                     # so this length is instantiated, not updated
    assert _core.gpu_graph_updates(backend) == before


def test_set_cuda_graphs_checks_its_argument():
    with pytest.raises(ValueError, match="on must be a bool"):
        bk.set_cuda_graphs(1)
    assert not bk.cuda_graphs()


try:
    import torch
except ImportError:
    torch = None


@needs_cuda
@pytest.mark.parametrize("cell,reset_after", CELLS)
def test_torch_cuda_tensors_in_and_out(cell, reset_after):
    """PyTorch CUDA tensors are used in place; the results are CUDA tensors on the
    same device, equal to the host path's bitwise."""
    if torch is None or not torch.cuda.is_available():
        pytest.skip("no PyTorch with CUDA")
    rng, a = problem(cell, reset_after, 6, 5, 4, 7, 13, drop="both")
    t = {k: (None if v is None else torch.from_numpy(np.ascontiguousarray(v)).cuda())
         for k, v in a.items()}
    y, hT, cT, cache = ops.rnn_forward(cell, t["x"], t["W"], t["U"], t["b"], t["h0"], t["c0"],
                                       t["mask"], backend="cuda", reset_after=reset_after,
                                       input_masks=t["input_masks"],
                                       recurrent_masks=t["recurrent_masks"])
    assert isinstance(y, torch.Tensor) and y.device == t["x"].device
    dy = torch.ones_like(y)
    g = ops.rnn_backward(cache, dy)
    yh, hh, ch, cache_h = ops.rnn_forward(cell, a["x"], a["W"], a["U"], a["b"], a["h0"],
                                          a["c0"], a["mask"], backend="cuda",
                                          reset_after=reset_after,
                                          input_masks=a["input_masks"],
                                          recurrent_masks=a["recurrent_masks"])
    gh = ops.rnn_backward(cache_h, np.ones_like(yh))
    np.testing.assert_array_equal(y.cpu().numpy(), yh)
    np.testing.assert_array_equal(hT.cpu().numpy(), hh)
    for u, v in zip(g, gh):
        if v is not None:
            assert isinstance(u, torch.Tensor) and u.is_cuda
            np.testing.assert_array_equal(u.cpu().numpy(), v)


@needs_cuda
def test_torch_side_stream_is_waited_for():
    """A producer's work on its own stream is done before the kernels read it
    (__cuda_array_interface__ v3's stream)."""
    if torch is None or not torch.cuda.is_available():
        pytest.skip("no PyTorch with CUDA")
    rng, a = problem("lstm", True, 8, 50, 64, 64, 1, mask_kind="none")
    s = torch.cuda.Stream()
    with torch.cuda.stream(s):
        x = torch.from_numpy(a["x"]).cuda(non_blocking=True) * 1.0
        rest = [torch.from_numpy(a[k]).cuda() for k in ("W", "U", "b", "h0", "c0")]
        y, _, _, _ = ops.rnn_forward("lstm", x, *rest, backend="cuda", training=False)
    yh, _, _, _ = ops.rnn_forward("lstm", a["x"], a["W"], a["U"], a["b"], a["h0"], a["c0"],
                                  backend="cuda", training=False)
    np.testing.assert_array_equal(y.cpu().numpy(), yh)


@pytest.mark.parametrize("cell,reset_after", [("lstm", True), ("gru", False)])
@pytest.mark.parametrize("mode", ["launches", "graphs", "persistent"])
def test_a_failed_launch_leaves_the_process_usable(cell, reset_after, mode):
    """A kernel launch that fails inside a time loop (cuda-emu's fault injection:
    the n-th launch throws, as a failed CUDA launch makes the cuda backend throw)
    is a RuntimeError naming the failure, for every launch of a forward + BPTT;
    afterwards nothing is left allocated on the device, and the next call runs
    and gives bitwise the results of a call that never failed. (On a real GPU a
    sticky error -- an illegal address -- loses the context instead; the error
    says so: cuda/backend_cuda.cu's check.)"""
    n, t, c, h = 5, 4, 3, 6
    kw = dict(reset_after=reset_after)
    # the persistent family, or the per-step one (what graphs capture)
    _core.gpu_set_plan("cuda-emu", "persistent" if mode == "persistent" else "steps")
    bk.set_cuda_graphs(mode == "graphs")
    try:
        def call():
            rng, a = problem(cell, reset_after, n, t, c, h, 3, drop="both")
            dy = rng.standard_normal((n, t, h)).astype(np.float32)
            dh = rng.standard_normal((n, h)).astype(np.float32)
            dc = dh.copy() if cell == "lstm" else None
            outs, g = run("cuda-emu", cell, a, False, dy, dh, dc, **kw)
            return [v for v in tuple(outs) + tuple(g) if v is not None]

        clean = call()
        live = _core.testing.emu_live_allocations()
        failures = 0
        # every launch of the persistent family's call; every 4th of the per-step
        # family's (several launches a step: the emulation's time)
        for k in range(1, 400, 1 if mode == "persistent" else 4):
            _core.testing.emu_fail_launch_after(k)
            try:
                call()
            except RuntimeError as e:
                assert "kernel launch failed" in str(e)
                failures += 1
            else:
                break                      # k is past the call's last launch
            finally:
                _core.testing.emu_fail_launch_after(0)
            assert _core.testing.emu_live_allocations() == live, f"launch {k}: a leak"
            again = call()
            for x, y in zip(again, clean):
                np.testing.assert_array_equal(x, y)
        assert failures >= 4, "too few launches: the injection did not reach the loops"
        assert k < 397
    finally:
        bk.set_cuda_graphs(False)
        _core.gpu_set_plan("cuda-emu", "auto")
