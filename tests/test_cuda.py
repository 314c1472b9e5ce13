"""The GPU backends: cuda-emu (the CUDA kernels compiled for the CPU, run here
and in CI) and cuda (a real device; those tests skip without one). The option
grid of test_kernels.py already runs on both; here: problems of several GPU
tiles in every dimension with masks and dropout, bitwise determinism (also
from concurrent Python threads), layers on the GPU backends, the status and
errors where no device exists, and on a device the same again plus NumPy
round trips of every size."""
import contextlib

import numpy as np
import pytest

import rnnkern as rk
from rnnkern import backends as bk
from rnnkern import _core, ops, reference
from rnnkern.ops import Grads
from rnnkern.options import RnnOptions

from helpers import child_env, run_in_threads
from tolerances import assert_close
from test_kernels import check, f64, make_case, make_mask
from test_recurrent_dropout import drop_masks, run_both

HAVE_CUDA = bk.cuda_status()[0]
GPU = ["cuda-emu"] + (["cuda"] if HAVE_CUDA else [])
needs_cuda = pytest.mark.skipif(not HAVE_CUDA, reason=f"no CUDA device: {bk.cuda_status()[1]}")

CELLS = [("simple_rnn", True), ("lstm", True), ("gru", True), ("gru", False)]


def test_listed():
    names = rk.backends()
    assert "cuda-emu" in names
    assert ("cuda" in names) == HAVE_CUDA
    assert bk.get_backend("cuda-emu").name == "cuda-emu"
    built, available, reason = _core.cuda_status()
    assert available == HAVE_CUDA and isinstance(reason, str) and reason


@pytest.mark.skipif(HAVE_CUDA, reason="a CUDA device is present")
def test_cuda_unavailable_is_a_clear_error():
    """Without a device (or a CUDA build) the cuda backend is not listed, asking
    for it names the usable ones, and the kernels entry says why."""
    with pytest.raises(ValueError, match="backend must be one of"):
        bk.get_backend("cuda")
    rng = np.random.default_rng(0)
    x, W, U, b, h0, c0 = make_case("gru", 2, 3, 4, 5, True, True, rng)
    with pytest.raises(RuntimeError, match="rnnkern cuda: "):
        _core.forward("cuda", RnnOptions("gru").core, x, W, U, b, h0, None, None, 1)
    with pytest.raises(ValueError, match="backend 'tpu' is not available here"):
        _core.forward("tpu", RnnOptions("gru").core, x, W, U, b, h0, None, None, 1)


@pytest.mark.parametrize("backend", GPU)
@pytest.mark.parametrize("cell,reset_after", CELLS)
@pytest.mark.parametrize("drop", ["none", "both"])
def test_several_tiles(backend, cell, reset_after, drop):
    """N > 16 (the step's rows a block), H > 32 (a GEMM tile), C > 16 (a k chunk),
    G*H not a multiple of anything: every tile edge, with masks, go_backwards,
    and the per-gate dropout masks."""
    rng = np.random.default_rng(len(cell) * 10 + reset_after + (drop == "both"))
    n, t, c, h = 37, 4, 35, 41
    case = make_case(cell, n, t, c, h, reset_after, True, rng)
    mask = make_mask("holes", n, t, rng)
    im, rm = drop_masks(drop, cell, n, c, h, rng)
    for go_backwards, seq in [(False, True), (True, False)]:
        outs, refs, g, gr = run_both(backend, cell, "tanh", "sigmoid", reset_after,
                                     go_backwards, seq, mask, case, im, rm, rng)
        check(outs, refs, g, gr, f"{backend} {cell} tiles drop={drop} bwd={go_backwards}")


def _train_once(backend, cell, reset_after, rng_seed):
    rng = np.random.default_rng(rng_seed)
    n, t, c, h = 19, 5, 18, 33
    x, W, U, b, h0, c0 = make_case(cell, n, t, c, h, reset_after, True, rng)
    mask = make_mask("holes", n, t, rng)
    im, rm = drop_masks("both", cell, n, c, h, rng)
    be = bk.get_backend(backend)
    y, hT, cT, cache = be.forward(cell, x, W, U, b, h0, c0, mask, None, im, rm,
                                  reset_after=reset_after)
    dy = rng.standard_normal(y.shape).astype(np.float32)
    return (y, hT, cT) + tuple(be.backward(cache, dy))


@pytest.mark.parametrize("backend", GPU)
@pytest.mark.parametrize("cell,reset_after", CELLS)
def test_bitwise_deterministic(backend, cell, reset_after):
    """The same inputs give bitwise the same outputs and gradients (bias sums in a
    fixed order, no atomics), also when Python threads call at once."""
    first = _train_once(backend, cell, reset_after, 5)
    again = _train_once(backend, cell, reset_after, 5)
    threaded = run_in_threads(lambda k: _train_once(backend, cell, reset_after, 5), 3)
    for other in [again] + threaded:
        for a, b in zip(first, other):
            if a is not None:
                assert np.array_equal(a, b)


@pytest.mark.parametrize("backend", GPU)
def test_layers_on_the_gpu_backends(backend):
    """A Keras-shaped layer given backend= runs there and matches the CPU layer."""
    rng = np.random.default_rng(2)
    x = rng.standard_normal((6, 9, 5)).astype(np.float32)
    for cls, kw in [(rk.LSTM, {}), (rk.GRU, {"reset_after": False}), (rk.SimpleRNN, {})]:
        cpu = cls(12, return_sequences=True, seed=1, **kw)
        gpu = cls(12, return_sequences=True, seed=1, backend=backend, **kw)
        y0, y1 = cpu(x), gpu(x)
        gpu.set_weights(cpu.get_weights())
        y0, y1 = cpu(x), gpu(x)
        assert_close(y1, y0, "forward_f32", f"{backend} {cls.__name__} y")
        dy = rng.standard_normal(y0.shape).astype(np.float32)
        d0, d1 = cpu.backward(dy), gpu.backward(dy)
        assert_close(d1, d0, "backward_f32", f"{backend} {cls.__name__} dx")
        for g0, g1 in zip(cpu.grads, gpu.grads):
            assert_close(g1, g0, "backward_f32", f"{backend} {cls.__name__} grads")


@pytest.mark.parametrize("backend", GPU)
@pytest.mark.parametrize("cell,reset_after", CELLS)
def test_layer_keeps_its_weights_on_the_device(backend, cell, reset_after):
    """A layer on a GPU backend uploads kernel, recurrent kernel and bias once per
    weight assignment (GpuBackend.pack): later calls copy only the activations,
    bitwise the results of uploading per call, forward and backward; assigning
    weights uploads the new ones; a pack of another cell is refused."""
    rng = np.random.default_rng(len(cell) * 10 + reset_after)
    x = rng.standard_normal((4, 6, 5)).astype(np.float32)
    cls = {"lstm": rk.LSTM, "gru": rk.GRU, "simple_rnn": rk.SimpleRNN}[cell]
    kw = {"reset_after": reset_after} if cell == "gru" else {}
    layer = cls(7, return_sequences=True, seed=3, backend=backend, **kw)
    layer(x)                                        # builds, packs (uploads) once
    packed = layer._packed
    assert isinstance(packed, bk.GpuWeights) and packed.nbytes > 0
    n_states = 2 if cell == "lstm" else 1
    before = _core.gpu_host_transfers(backend)
    y = layer(x, training=True)
    # x and the initial states up, y and the final states down: no weight
    assert _core.gpu_host_transfers(backend) - before == 2 * (1 + n_states)
    assert layer._packed is packed
    dy = rng.standard_normal(y.shape).astype(np.float32)
    dx = layer.backward(dy)
    be = bk.get_backend(backend)
    opts = RnnOptions(cell, reset_after=reset_after, training=True)
    h0 = np.zeros((4, 7), np.float32)
    c0 = h0 if cell == "lstm" else None
    y1, _, _, cache = be.forward(opts, x, layer.kernel, layer.recurrent_kernel, layer.bias,
                                 h0, c0, None)
    np.testing.assert_array_equal(y, y1)
    g = be.backward(cache, dy)
    np.testing.assert_array_equal(dx, g.dx)
    for a, b in zip(layer.grads, (g.dkernel, g.drecurrent_kernel, g.dbias)):
        np.testing.assert_array_equal(a, b)
    layer.set_weights([w * 0.5 for w in layer.get_weights()])
    assert layer._packed is None                    # the old upload is dropped
    y2 = layer(x)
    assert layer._packed is not packed and not np.array_equal(y2, y)
    other = "lstm" if cell != "lstm" else "gru"
    with pytest.raises(ValueError, match="packed was made for another"):
        be.forward(RnnOptions(other), x, layer.kernel, layer.recurrent_kernel, None, h0,
                   h0, None, packed)


@pytest.mark.parametrize("backend", GPU)
def test_bad_input_is_checked_like_the_cpu(backend):
    rng = np.random.default_rng(0)
    x, W, U, b, h0, c0 = make_case("lstm", 2, 3, 4, 5, True, True, rng)
    be = bk.get_backend(backend)
    with pytest.raises(ValueError, match=r"kernel must have shape \(C, G\*H\) = \(4, 20\)"):
        be.forward("lstm", x, W[:3], U, b, h0, c0, None)
    with pytest.raises(ValueError, match="c0 is required"):
        be.forward("lstm", x, W, U, b, h0, None, None)
    with pytest.raises(ValueError, match="recurrent_masks must have shape"):
        be.forward("lstm", x, W, U, b, h0, c0, None, None, None, np.ones((4, 2, 4), np.float32))
    _, _, _, cache = be.forward("lstm", x, W, U, b, h0, c0, None)
    with pytest.raises(ValueError, match=r"dy must have shape \(2, 3, 5\)"):
        be.backward(cache, np.ones((2, 5), np.float32))


@needs_cuda
@pytest.mark.parametrize("cell,reset_after", CELLS)
def test_device_matches_emulation(cell, reset_after):
    """On a device: the cuda backend agrees with cuda-emu (the same kernels)."""
    a = _train_once("cuda", cell, reset_after, 9)
    b = _train_once("cuda-emu", cell, reset_after, 9)
    for u, v in zip(a, b):
        if u is not None:
            assert_close(u, v, "backward_f32", f"cuda vs cuda-emu {cell}")


@needs_cuda
def test_device_pool_reuse_and_free():
    _train_once("cuda", "lstm", True, 1)
    assert _core.cuda_pool_bytes() > 0
    _core.cuda_free_pool()
    assert _core.cuda_pool_bytes() == 0


@pytest.fixture
def plan_reset():
    """Each test that forces a time-loop plan leaves both GPU backends on 'auto'."""
    yield
    for backend in GPU:
        _core.gpu_set_plan(backend, "auto")


# Plans of the persistent family the tests force: the automatic partition, one
# block (a block barrier a step, no grid), three blocks with k chunks of 7 (the
# staging loop), and 8 blocks of 64 threads on a small problem (several threads
# summing one (row, unit) pair: the fixed-order reduction); the last two as one
# thread-block cluster (chosen where the device launches one) and with the grid's
# barrier (",grid"), and the automatic partition forced into a cluster. (",flags":
# test_flag_handoff_is_the_grid_barrier, against the grid's barrier bitwise.)
PLANS = ["persistent", "persistent:1,32", "persistent:3,32,7", "persistent:3,32,7,grid",
         "persistent:8,64", "persistent:8,64,grid", "persistent:cluster"]


@contextlib.contextmanager
def clusters_or_skip(backend):
    """A plan that needs thread-block clusters skips on a device before sm_90 (which
    launches none; cuda-emu has them)."""
    try:
        yield
    except RuntimeError as e:
        if backend == "cuda" and "does not launch" in str(e):
            pytest.skip("this device launches no thread-block clusters")
        raise


@pytest.mark.parametrize("backend", GPU)
@pytest.mark.parametrize("cell,reset_after", CELLS)
@pytest.mark.parametrize("plan", PLANS)
def test_persistent_family_matches_the_reference(backend, cell, reset_after, plan, plan_reset):
    """The persistent family (one launch a time loop, U resident in shared memory,
    a barrier a step: a block's, a cluster's or the grid's) against the float64
    reference, forward and backward, with masks, per-gate dropout masks and
    go_backwards, in every forced partition; two runs bitwise equal; both loops
    counted as persistent, and as cluster launches where the plan makes one."""
    rng = np.random.default_rng(11 + len(cell) + reset_after + 7 * PLANS.index(plan))
    n, t, c, h = (5, 6, 7, 40) if not plan.startswith("persistent:8,64") else (2, 5, 3, 9)
    case = make_case(cell, n, t, c, h, reset_after, True, rng)
    mask = make_mask("holes", n, t, rng)
    im, rm = drop_masks("both", cell, n, c, h, rng)
    _core.gpu_set_plan(backend, plan)
    assert _core.gpu_plan(backend) == plan
    for go_backwards, seq in [(True, True), (False, False)]:
        before = _core.gpu_persistent_launches(backend)
        clusters = _core.gpu_cluster_launches(backend)
        flagged = _core.gpu_flag_handoffs(backend)
        with clusters_or_skip(backend):
            outs, refs, g, gr = run_both(backend, cell, "tanh", "sigmoid", reset_after,
                                         go_backwards, seq, mask, case, im, rm,
                                         np.random.default_rng(3))
        assert _core.gpu_persistent_launches(backend) == before + 2   # forward and backward
        made = _core.gpu_cluster_launches(backend) - clusters
        assert _core.gpu_flag_handoffs(backend) == flagged   # never chosen by itself
        if plan.endswith(",grid") or plan in ("persistent", "persistent:1,32"):
            assert made == 0   # the grid's barrier, or one block (a block's barrier)
        elif backend == "cuda-emu" or plan == "persistent:cluster":
            assert made == 2, (plan, made)
        check(outs, refs, g, gr, f"{backend} {cell} {plan} bwd={go_backwards}")
        again = run_both(backend, cell, "tanh", "sigmoid", reset_after, go_backwards, seq, mask,
                         case, im, rm, np.random.default_rng(3))
        for u, v in zip(tuple(outs) + tuple(g), tuple(again[0]) + tuple(again[2])):
            if u is not None:
                assert np.array_equal(u, v)


@pytest.mark.parametrize("backend", GPU)
@pytest.mark.parametrize("cell,reset_after", CELLS)
@pytest.mark.parametrize("base", ["persistent:3,32,7", "persistent:8,64"])
def test_flag_handoff_is_the_grid_barrier(backend, cell, reset_after, base, plan_reset):
    """R2's step-tagged hand-off (",flags": no barrier, each block waits before
    staging a chunk only for the blocks that wrote it) gives bitwise the grid
    barrier's results in the same partition, forward and backward, FFMA and the
    tensor cores, with masks, per-gate dropout and go_backwards: three blocks with
    k chunks of 7 (backward chunks across the gates' columns wait for every block)
    and five blocks of two units; each loop counted as a hand-off one."""
    rng = np.random.default_rng(61 + len(cell) + reset_after)
    n, t, c, h = (5, 6, 7, 40) if base != "persistent:8,64" else (2, 5, 3, 9)
    x, W, U, b, h0, c0 = make_case(cell, n, t, c, h, reset_after, True, rng)
    mask = make_mask("holes", n, t, rng)
    im, rm = drop_masks("both", cell, n, c, h, rng)
    be = bk.get_backend(backend)
    for product in ("simt", "mma"):
        results = []
        for barrier in ("grid", "flags"):
            _core.gpu_set_plan(backend, f"{base},{barrier},{product}")
            flagged = _core.gpu_flag_handoffs(backend)
            y, hT, cT, cache = be.forward(cell, x, W, U, b, h0, c0, mask, None, im, rm,
                                          reset_after=reset_after, go_backwards=True,
                                          training=True)
            dy = np.random.default_rng(4).standard_normal(y.shape).astype(np.float32)
            results.append((y, hT, cT) + tuple(be.backward(cache, dy)))
            assert _core.gpu_flag_handoffs(backend) - flagged == (2 if barrier == "flags" else 0)
        for u, v in zip(*results):
            if u is not None:
                np.testing.assert_array_equal(u, v)


# The tensor-core recurrent product (",mma"): the automatic partition; one block
# of two warps (tiles of 16 rows by 8 columns over a batch of 18: two row tiles,
# the second mostly padding, several k shares); three blocks with k chunks of 8
# (the staging loop, and a chunk's k shares of 8) over 40 units, as one cluster
# (where the device launches one) and with the grid's barrier.
MMA_PLANS = ["persistent:mma", "persistent:1,64,mma", "persistent:3,64,8,mma",
             "persistent:3,64,8,grid,mma"]


@pytest.mark.parametrize("backend", GPU)
@pytest.mark.parametrize("cell,reset_after", CELLS)
@pytest.mark.parametrize("plan", MMA_PLANS)
def test_tensor_core_recurrence_matches_the_reference(backend, cell, reset_after, plan,
                                                      plan_reset):
    """The persistent family's recurrent products (forward h U, backward dG U^T)
    on the tensor cores in fp32 accuracy (3xTF32) give the float64 reference's
    outputs and every gradient within the fp32 tolerances, with masks, go_backwards
    and per-gate recurrent dropout (the forward's pass a gate, the backward's sum a
    gate), bitwise the same twice, and not bitwise the FFMA product's (the plan
    forced with ',simt'): the tensor cores ran."""
    rng = np.random.default_rng(91 + len(cell) + reset_after + 7 * MMA_PLANS.index(plan))
    n, t, c, h = 18, 3, 5, 20
    case = make_case(cell, n, t, c, h, reset_after, True, rng)
    mask = make_mask("holes", n, t, rng)
    im, rm = drop_masks("both", cell, n, c, h, rng)
    go_backwards, seq = MMA_PLANS.index(plan) % 2 == 0, MMA_PLANS.index(plan) != 1

    def run(forced):
        _core.gpu_set_plan(backend, forced)
        assert _core.gpu_plan(backend) == forced
        before = _core.gpu_persistent_launches(backend)
        got = run_both(backend, cell, "tanh", "sigmoid", reset_after, go_backwards, seq, mask,
                       case, im, rm, np.random.default_rng(3))
        assert _core.gpu_persistent_launches(backend) == before + 2
        return got

    outs, refs, g, gr = run(plan)
    check(outs, refs, g, gr, f"{backend} {cell} {plan} bwd={go_backwards}")
    again = run(plan)
    for u, v in zip(tuple(outs) + tuple(g), tuple(again[0]) + tuple(again[2])):
        if u is not None:
            assert np.array_equal(u, v)
    simt = run(plan[:-len("mma")] + "simt")
    assert not all(np.array_equal(u, v) for u, v in zip(tuple(outs) + tuple(g),
                                                         tuple(simt[0]) + tuple(simt[2]))
                   if u is not None)


@pytest.mark.parametrize("backend", GPU)
@pytest.mark.parametrize("cell,reset_after", CELLS)
def test_per_step_tensor_cores_match_the_reference(backend, cell, reset_after, plan_reset,
                                                   gemm_reset):
    """R3, the per-step family on the tensor cores ('steps:mma': a forward step's
    product in 3xTF32 fragments, the backward's dh_prev GEMMs on the tensor-core
    GEMM): the float64 reference's outputs and gradients within the fp32 tolerances,
    with masks, per-gate recurrent dropout (each tile's gate mask on its A
    fragments) and go_backwards, over five unit blocks (67 or 68 units: k chunks of
    48 and 19 or 20, staged by 4- or 16-byte asynchronous copies) and, for LSTM, two
    row blocks (70 rows: 64 and 6); not the FFMA step's results
    ('steps:simt'), every per-step GEMM counted on the tensor cores; bitwise the same
    twice on a device (on the emulation ThreadSanitizer checks the races instead).
    The automatic product ('steps') is the tensor cores' where the batch fills half
    an mma tile and the fragments are used (the GEMM forced to mma here), else FFMA."""
    rng = np.random.default_rng(131 + len(cell) + reset_after)
    # two row blocks for LSTM (the indexing is the cell's template parameter only:
    # one cell covers it; emulated warps are slow)
    # LSTM: 68 units (16-byte copies), the others 67 (4-byte ones); k chunks of 48
    n, t, c, h = (70, 2, 5, 68) if cell == "lstm" else (20, 2, 5, 67)
    case = make_case(cell, n, t, c, h, reset_after, True, rng)
    mask = make_mask("holes", n, t, rng)
    im, rm = drop_masks("both", cell, n, c, h, rng)
    # per step: a GEMM a gate reaching h_prev (the dropout masks differ by gate),
    # GRU reset_before's two and its d(rh)
    per_step = {"simple_rnn": 1, "lstm": 4, "gru": 3}[cell]

    def run(plan, case=case, mask=mask, im=im, rm=rm):
        _core.gpu_set_plan(backend, plan)
        assert _core.gpu_plan(backend) == plan
        before = _core.gpu_persistent_launches(backend)
        gemms = _core.gpu_mma_gemms(backend)
        got = run_both(backend, cell, "tanh", "sigmoid", reset_after, True, True, mask, case,
                       im, rm, np.random.default_rng(3))
        assert _core.gpu_persistent_launches(backend) == before
        return got, _core.gpu_mma_gemms(backend) - gemms

    (outs, refs, g, gr), gemms = run("steps:mma")
    check(outs, refs, g, gr, f"{backend} {cell} steps:mma")
    assert gemms == t * per_step   # the GEMMs outside the loop stay SIMT on cuda-emu's auto
    mine = tuple(outs) + tuple(g)
    if backend == "cuda":   # (the emulation's runs are alike by construction; TSan checks it)
        again = run("steps:mma")[0]
        for u, v in zip(mine, tuple(again[0]) + tuple(again[2])):
            if u is not None:
                assert np.array_equal(u, v)
    simt, gemms = run("steps:simt")
    assert gemms == 0
    simt = tuple(simt[0]) + tuple(simt[2])
    assert not all(np.array_equal(u, v) for u, v in zip(mine, simt) if u is not None)
    # the automatic product, with this device's fragments in use: a batch of 8, of 7
    _core.gpu_set_gemm(backend, "mma")
    for rows, product in [(8, "mma"), (7, "simt")]:
        small = (make_case(cell, rows, 1, c, h, reset_after, True, rng), None, None, None)
        a, b = run("steps", *small)[0], run("steps:" + product, *small)[0]
        for u, v in zip(tuple(a[0]) + tuple(a[2]), tuple(b[0]) + tuple(b[2])):
            if u is not None:
                assert np.array_equal(u, v)


@pytest.mark.parametrize("backend", GPU)
@pytest.mark.parametrize("cell,reset_after,dropout,slabs", [
    ("lstm", True, False, 2), ("lstm", True, True, 4), ("gru", False, True, 2)])
@pytest.mark.parametrize("product", ["mma", "simt"])
def test_per_step_backward_splits_dh_prev(backend, cell, reset_after, dropout, slabs, product,
                                          plan_reset, gemm_reset):
    """The per-step backward's d h_prev GEMM, whose [N, H] tiles leave most of the
    device idle at R3's shapes, runs as slabs of K at once (each gate's where
    dropout masks differ by gate: the gates in parallel, not one after another),
    added to d h_prev in slab order: the reference's gradients within the fp32
    tolerances, forward and backward, with masks and go_backwards, on both products;
    the slabs counted where they run on the tensor cores (cuda-emu's 4 SMs and two
    column tiles: 2 slabs of LSTM's K = 512 unmasked; masked, a slab a gate; GRU
    reset_before's two gates and its d(rh) GEMM; on FFMA the masked gates' slabs)."""
    rng = np.random.default_rng(171 + len(cell) + dropout)
    # (SIMT's emulated C tiles are 32 wide: 64 units leave room for a slab a gate)
    n, t, c, h = 9, 3, 5, 128 if product == "mma" else 64
    case = make_case(cell, n, t, c, h, reset_after, True, rng)
    mask = make_mask("holes", n, t, rng)
    im, rm = drop_masks("both", cell, n, c, h, rng) if dropout else (None, None)
    _core.gpu_set_plan(backend, "steps:" + product)
    _core.gpu_set_gemm(backend, "simt")   # the hoisted GEMMs off the tensor cores: not counted
    gemms = _core.gpu_mma_gemms(backend)
    outs, refs, g, gr = run_both(backend, cell, "tanh", "sigmoid", reset_after, True, True, mask,
                                 case, im, rm, np.random.default_rng(3))
    check(outs, refs, g, gr, f"{backend} {cell} steps:{product} split d h_prev")
    if product == "mma" and backend == "cuda-emu":
        extra = 1 if cell == "gru" and not reset_after else 0   # d(rh) = dah U_h^T
        assert _core.gpu_mma_gemms(backend) - gemms == t * (slabs + extra)


@pytest.mark.parametrize("backend", GPU)
@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_per_step_tensor_core_ring_wraps(backend, precision, plan_reset):
    """R3's ring of three stages reused: 150 units are four k chunks (48, 48, 48, 6;
    bf16's pairs: 24, 24, 24, 3), so chunk 3 is staged into chunk 0's stage while the
    block multiplies chunk 1: LSTM's forward and gradients within the reference's
    tolerances (fp32; bf16: its emulation), masks and go_backwards."""
    rng = np.random.default_rng(191 + len(precision))
    n, t, c, h = 5, 2, 3, 150
    x, W, U, b, h0, c0 = make_case("lstm", n, t, c, h, True, True, rng)
    mask = make_mask("holes", n, t, rng)
    be = bk.get_backend(backend)
    dy = rng.standard_normal((n, t, h)).astype(np.float32)
    _core.gpu_set_plan(backend, "steps:mma")
    y, hT, cT, cache = be.forward("lstm", x, W, U, b, h0, c0, mask, go_backwards=True,
                                  precision=precision)
    ours = (y, hT, cT) + tuple(be.backward(cache, dy))
    yr, hr, cr, kr = reference.rnn_forward("lstm", f64(x), f64(W), f64(U), f64(b), f64(h0),
                                           f64(c0), mask, go_backwards=True, precision=precision)
    refs = (yr, hr, cr) + tuple(reference.rnn_backward(kr, f64(dy)))
    tol = {"fp32": ("forward_f32", "backward_f32"), "bf16": ("bf16_emulated",) * 2}[precision]
    for i, (name, a, r) in enumerate(zip(BF16_NAMES, ours, refs)):
        if r is not None:
            assert_close(a, r, tol[i >= 3], f"{backend} R3 ring {precision} {name}")


@pytest.mark.parametrize("backend", GPU)
@pytest.mark.parametrize("cell,reset_after", CELLS)
def test_per_step_bf16_reads_u_as_pairs(backend, cell, reset_after, plan_reset):
    """R3 with precision bf16's one product (no dropout masks) reads U as bf16 pairs
    of rows, one word a pair and column (half the bytes a step; the words are the
    m16n8k16 B registers): the reference's bf16 emulation within its tolerances and
    the FFMA step's bf16 results within the families' (the same exact products
    summed in another order), forward and every gradient, with masks and
    go_backwards; an odd H (the last pair's second row zero; k chunks of 24 and 10
    pair rows; 4-byte copies) for every cell, an H that is a multiple of 4 (16-byte
    copies) for LSTM."""
    rng = np.random.default_rng(151 + len(cell) + reset_after)
    n, t, c, h = (9, 2, 5, 68) if cell == "lstm" else (9, 2, 5, 67)
    x, W, U, b, h0, c0 = make_case(cell, n, t, c, h, reset_after, True, rng)
    mask = make_mask("holes", n, t, rng)
    be = bk.get_backend(backend)
    dy = rng.standard_normal((n, t, h)).astype(np.float32)

    def run(plan):
        _core.gpu_set_plan(backend, plan)
        y, hT, cT, cache = be.forward(cell, x, W, U, b, h0, c0, mask, reset_after=reset_after,
                                      go_backwards=True, precision="bf16")
        return (y, hT, cT) + tuple(be.backward(cache, dy))

    ours, ffma = run("steps:mma"), run("steps:simt")
    kw = dict(reset_after=reset_after, go_backwards=True, precision="bf16")
    yr, hr, cr, kr = reference.rnn_forward(cell, f64(x), f64(W), f64(U), f64(b), f64(h0),
                                           f64(c0), mask, **kw)
    refs = (yr, hr, cr) + tuple(reference.rnn_backward(kr, f64(dy)))
    for name, a, r, f in zip(BF16_NAMES, ours, refs, ffma):
        if r is not None:
            assert_close(a, r, "bf16_emulated", f"{backend} {cell} R3 bf16 pairs {name}")
            assert_close(a, f, "gpu_families_f32", f"{backend} {cell} R3 bf16 vs FFMA {name}")


@pytest.mark.parametrize("backend", GPU)
@pytest.mark.parametrize("cell,reset_after", CELLS)
@pytest.mark.parametrize("product", ["simt", "mma"])
@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_onchip_exchange_is_the_staged_one(backend, cell, reset_after, product, precision,
                                           plan_reset):
    """Where the grid is one block or one cluster and the exchanged rows (h forward,
    dG backward) are one staged chunk, each block writes its units' values into every
    block's staging buffer instead of every block staging them from memory (GRU
    reset_before: its forward, h and rh into a buffer each; its backward, dah into
    one and dz then dr into two alternating): the same partition forced ',staged',
    and with the grid's barrier
    (staged), gives bitwise the same outputs and gradients, with masks, per-gate
    dropout masks and go_backwards, in fp32 and bf16, on FFMA and the tensor cores;
    only the on-chip loops are counted."""
    rng = np.random.default_rng(41 + len(cell) + reset_after)
    n, t, c, h = 18, 5, 6, 20
    x, W, U, b, h0, c0 = make_case(cell, n, t, c, h, reset_after, True, rng)
    mask = make_mask("holes", n, t, rng)
    im, rm = drop_masks("both", cell, n, c, h, rng)
    be = bk.get_backend(backend)
    loops = 2   # forward and backward on chip
    for base, variants in [(f"persistent:3,64,{product}", [",staged", ",grid"]),
                           (f"persistent:1,64,{product}", [",staged"])]:
        results = []
        for plan in [base] + [base + v for v in variants]:
            _core.gpu_set_plan(backend, plan)
            before = _core.gpu_onchip_exchanges(backend)
            with clusters_or_skip(backend):
                y, hT, cT, cache = be.forward(cell, x, W, U, b, h0, c0, mask, None, im, rm,
                                              reset_after=reset_after, go_backwards=True,
                                              training=True, precision=precision)
            dy = np.random.default_rng(4).standard_normal(y.shape).astype(np.float32)
            results.append((y, hT, cT) + tuple(be.backward(cache, dy)))
            made = _core.gpu_onchip_exchanges(backend) - before
            assert made == (loops if plan == base else 0), (plan, made)
        for other in results[1:]:
            for u, v in zip(results[0], other):
                if u is not None:
                    np.testing.assert_array_equal(u, v)


@pytest.mark.parametrize("backend", GPU)
@pytest.mark.parametrize("cell,reset_after", CELLS)
def test_steps_and_persistent_agree(backend, cell, reset_after, plan_reset):
    """The per-step family and the persistent one give the same results to float
    rounding (they differ only in the order of the recurrent sums)."""
    rng = np.random.default_rng(21 + len(cell) + reset_after)
    n, t, c, h = 17, 6, 7, 40
    x, W, U, b, h0, c0 = make_case(cell, n, t, c, h, reset_after, True, rng)
    mask = make_mask("holes", n, t, rng)
    im, rm = drop_masks("both", cell, n, c, h, rng)
    be = bk.get_backend(backend)
    results = []
    for plan in ["steps", "persistent"]:
        _core.gpu_set_plan(backend, plan)
        y, hT, cT, cache = be.forward(cell, x, W, U, b, h0, c0, mask, None, im, rm,
                                      reset_after=reset_after, go_backwards=True)
        dy = np.random.default_rng(4).standard_normal(y.shape).astype(np.float32)
        results.append((y, hT, cT) + tuple(be.backward(cache, dy)))
    for u, v in zip(*results):
        if u is not None:
            assert_close(v, u, "gpu_families_f32", f"{backend} {cell} persistent vs steps")


@pytest.mark.parametrize("backend", GPU)
def test_plans_are_checked(backend, plan_reset):
    """A plan is one of the documented forms (ValueError naming it otherwise), and a
    forced partition that does not fit the device is a clear error, not a silent
    fallback; 'steps' runs no persistent loop."""
    for bad in ["fast", "steps:", "steps:fast", "steps,mma", "steps:mma,simt", "persistent:",
                "persistent:0,32", "persistent:2", "persistent:2,2000",
                "persistent:2,32,4,4", "persistent;2,32", "persistent:a,32",
                "persistent:2,32,fast", "persistent:,mma", "persistent:mma,2,32",
                "persistent:2,32,mma,simt", "persistent:2,32,cluster,grid",
                "persistent:2,32,grid,flags", "persistent:flags,cluster",
                "persistent:cluster,2,32", "persistent:grid,mma,cluster",
                "persistent:2,32,staged,staged", "persistent:staged,2,32"]:
        with pytest.raises(ValueError, match="plan"):
            _core.gpu_set_plan(backend, bad)
    for good in ["steps:mma", "steps:simt", "persistent:mma", "persistent:simt",
                 "persistent:2,64,mma",
                 "persistent:2,64,8,simt", "persistent:cluster", "persistent:grid",
                 "persistent:2,64,8,mma,cluster", "persistent:2,64,grid,simt", "persistent:staged",
                 "persistent:2,64,8,flags", "persistent:3,64,flags,mma",
                 "persistent:2,64,8,mma,staged", "persistent:2,64,staged,cluster,simt"]:
        _core.gpu_set_plan(backend, good)
        assert _core.gpu_plan(backend) == good
    rng = np.random.default_rng(5)
    x, W, U, b, h0, c0 = make_case("lstm", 2, 3, 4, 300, True, True, rng)
    be = bk.get_backend(backend)
    _core.gpu_set_plan(backend, "persistent:1,32")    # U of 300 units: 1.4 MiB in one block
    with pytest.raises(RuntimeError, match="does not fit"):
        be.forward("lstm", x, W, U, b, h0, c0, None)
    _core.gpu_set_plan(backend, "persistent:2,48,mma")   # the tensor cores need whole warps
    with pytest.raises(RuntimeError, match="tensor-core product"):
        be.forward("lstm", x, W, U, b, h0, c0, None)
    _core.gpu_set_plan(backend, "persistent:17,32,cluster")   # clusters hold at most 16 blocks
    with pytest.raises(RuntimeError, match="persistent:17,32,cluster.*thread-block cluster"):
        be.forward("lstm", x, W, U, b, h0, c0, None)
    _core.gpu_set_plan(backend, "steps")
    before = _core.gpu_persistent_launches(backend)
    _, _, _, cache = be.forward("lstm", x, W, U, b, h0, c0, None, training=True)
    be.backward(cache, np.ones((2, 3, 300), np.float32))
    assert _core.gpu_persistent_launches(backend) == before


@pytest.mark.parametrize("backend", GPU)
@pytest.mark.parametrize("cell,reset_after", CELLS)
def test_split_k_weight_gradients(backend, cell, reset_after):
    """T*N >= 512: the weight gradients' GEMMs split K into slabs added in order
    (and the bias gradient sums row chunks in order): against the reference, with
    and without input dropout (per-gate GEMMs), x read time-major from its [N, T, C]
    layout forwards and backwards, and bitwise reproducible."""
    rng = np.random.default_rng(31 + len(cell) + reset_after)
    n, t, c, h = 16, 40, 6, 5
    case = make_case(cell, n, t, c, h, reset_after, True, rng)
    for drop, back in [("none", False), ("both", True)]:
        im, rm = drop_masks(drop, cell, n, c, h, rng)
        outs, refs, g, gr = run_both(backend, cell, "tanh", "sigmoid", reset_after, back, True,
                                     None, case, im, rm, np.random.default_rng(1))
        check(outs, refs, g, gr, f"{backend} {cell} split-K drop={drop}")
        again = run_both(backend, cell, "tanh", "sigmoid", reset_after, back, True, None, case,
                         im, rm, np.random.default_rng(1))[2]
        for u, v in zip(g, again):
            if u is not None:
                assert np.array_equal(u, v)


@pytest.mark.parametrize("backend", GPU)
@pytest.mark.parametrize("n,h", [(3, 40), (1400, 5), (64, 33)])
def test_auto_plan_takes_the_persistent_family(backend, n, h, plan_reset):
    """The automatic plan runs both time loops persistent wherever a partition fits,
    also where the units do not split evenly over the preferred block count (a
    batch of 1400 and 5 units: 3 blocks of 2 units, not 4), and matches the
    reference there."""
    rng = np.random.default_rng(n + h)
    t, c = 3, 4
    case = make_case("lstm", n, t, c, h, True, True, rng)
    _core.gpu_set_plan(backend, "auto")
    before = _core.gpu_persistent_launches(backend)
    outs, refs, g, gr = run_both(backend, "lstm", "tanh", "sigmoid", True, False, True, None,
                                 case, None, None, np.random.default_rng(2))
    assert _core.gpu_persistent_launches(backend) == before + 2
    check(outs, refs, g, gr, f"{backend} auto plan n={n} h={h}")


def test_benchmark_gpu_rows_are_device_resident(monkeypatch):
    """rnnkern-bench's GPU rows put their arrays on the device once, before timing:
    every array a timed call passes is a device array (so no host copy is timed),
    and the results, copied back only for the check, match the reference."""
    from rnnkern.bench import impls

    seen = []
    real = bk.get_backend("cuda-emu")
    orig_forward = type(real).forward

    def spy(self, cell, x, *a, **kw):
        seen.append(type(x).__name__)
        return orig_forward(self, cell, x, *a, **kw)

    monkeypatch.setattr(type(real), "forward", spy)
    inp = impls.make_inputs("lstm", 3, 2, 4, 5)
    prepared = impls.rnnkern_impl("cuda-emu").prepare("lstm", "training", inp)
    out = prepared.collect(prepared.fn())
    assert seen and all(name == "DeviceArray" for name in seen)
    assert isinstance(out["y"], np.ndarray) and isinstance(out["dx"], np.ndarray)
    ref = bk.get_backend("reference")
    y, _, _, cache = ref.forward("lstm", inp.x, inp.W, inp.U, inp.b, inp.h0, inp.c0, None)
    assert_close(out["y"], y, "forward_f32", "bench cuda-emu y")
    assert_close(out["dx"], ref.backward(cache, inp.dy).dx, "backward_f32", "bench cuda-emu dx")


@pytest.mark.parametrize("backend", GPU)
@pytest.mark.parametrize("plan", ["auto", "persistent", "persistent:2,32", "steps"])
def test_empty_batch_and_tiny_sizes(backend, plan, plan_reset):
    """A batch of 0 returns empty outputs of the right shape (forward and BPTT) in
    every plan, never a crash; one unit, one row and one step still match the
    reference."""
    _core.gpu_set_plan(backend, plan)
    be = bk.get_backend(backend)
    for cell, reset_after in CELLS:
        rng = np.random.default_rng(7)
        x, W, U, b, h0, c0 = make_case(cell, 0, 5, 3, 4, reset_after, True, rng)
        y, hT, cT, cache = be.forward(cell, x, W, U, b, h0, c0, None, reset_after=reset_after)
        assert y.shape == (0, 5, 4) and hT.shape == (0, 4)
        g = be.backward(cache, np.zeros((0, 5, 4), np.float32))
        assert g.dx.shape == (0, 5, 3) and g.drecurrent_kernel.shape == U.shape
        assert not np.any(g.drecurrent_kernel)
        case = make_case(cell, 1, 1, 1, 1, reset_after, True, rng)
        outs, refs, gg, gr = run_both(backend, cell, "tanh", "sigmoid", reset_after, False, True,
                                      None, case, None, None, np.random.default_rng(1))
        check(outs, refs, gg, gr, f"{backend} {cell} {plan} one unit")


def _tf32(a):
    """float32 values rounded to TF32 as cvt.rna.tf32.f32 does (ties away from zero)."""
    u = np.asarray(a, np.float32).view(np.uint32).astype(np.uint64)
    return (((u + 0x1000) & 0xFFFFE000).astype(np.uint32)).view(np.float32)


def _bf16(a):
    """a rounded to bfloat16 (to nearest, ties to even), in NumPy: the test's own."""
    u = np.ascontiguousarray(a, np.float32).view(np.uint32).astype(np.uint64)
    r = ((u + 0x7FFF + ((u >> 16) & 1)) & 0xFFFF0000).astype(np.uint32)
    return r.view(np.float32)


@pytest.mark.parametrize("backend", GPU)
def test_fragment_api_probe(backend):
    """compat.cuh's tensor-core fragments: one TF32 m16n8k8 mma and one BF16
    m16n8k16 mma against float64 products of the rounded operands, and two warp
    shuffles exactly; on a device this checks the PTX lane ownership (and the
    bf16 pair packing) the emulation assumes."""
    rng = np.random.default_rng(8)
    A = rng.standard_normal((16, 8)).astype(np.float32)
    B = rng.standard_normal((8, 8)).astype(np.float32)
    C = rng.standard_normal((16, 8)).astype(np.float32)
    A16 = rng.standard_normal((16, 16)).astype(np.float32)
    B16 = rng.standard_normal((16, 8)).astype(np.float32)
    D, S, D16 = _core.gpu_mma_probe(backend, A, B, C, A16, B16)
    ref = C.astype(np.float64) + _tf32(A).astype(np.float64) @ _tf32(B).astype(np.float64)
    np.testing.assert_allclose(D, ref, rtol=0, atol=1e-5)
    ref16 = C.astype(np.float64) + _bf16(A16).astype(np.float64) @ _bf16(B16).astype(np.float64)
    np.testing.assert_allclose(D16, ref16, rtol=0, atol=1e-5)
    # rounding matters: the unrounded product is further off than the tolerance
    assert np.abs(D16 - (C.astype(np.float64) + A16.astype(np.float64) @ B16)).max() > 1e-3
    lanes = np.arange(32)
    np.testing.assert_array_equal(S, (lanes ^ 1) + 100.0 * (lanes ^ 16))
    assert _tf32(np.float32(1 + 2.0 ** -11)) == np.float32(1 + 2.0 ** -10)   # a tie: away
    assert _bf16(np.float32(1 + 2.0 ** -8)) == np.float32(1)                 # a tie: to even
    with pytest.raises(ValueError, match="A16 16x16"):
        _core.gpu_mma_probe(backend, A, B, C, B16, B16)


@pytest.mark.parametrize("backend", GPU)
def test_micro_benchmarks_run(backend):
    """The cost model's micro-benchmarks (bench/gpu_micro.py: mma latency and rate in
    both fragment kinds, the grid barrier, the release/acquire flag hand-off between
    two blocks, the L2 chase, the cluster barrier after distributed-shared-memory
    stores, checked to be seen, and a chase through another block's shared memory,
    checked to end where its cycle does) run on every GPU backend and
    give finite, non-negative figures (their values are timings: not checked here);
    an unknown name, a count below one, more warps than a block holds and a grid
    larger than the SMs are refused by name."""
    iters = 2 if backend == "cuda-emu" else 200
    for what, arg in [("mma_tf32_latency", 1), ("mma_bf16_latency", 1), ("mma_tf32_rate", 2),
                      ("mma_bf16_rate", 2), ("grid_sync", 2), ("flag_handoff", 1),
                      ("l2_chase", 16), ("cluster_sync", 2), ("cluster_sync", 4),
                      ("dsmem_chase", 4)]:
        try:
            v = _core.gpu_micro(backend, what, arg, iters)
        except RuntimeError as e:   # a device before sm_90: no clusters (cuda-emu has them)
            assert backend == "cuda" and "no thread-block cluster" in str(e), e
            continue
        assert np.isfinite(v) and v >= 0, (what, v)
    with pytest.raises(ValueError, match="unknown benchmark 'mma'"):
        _core.gpu_micro(backend, "mma", 1, 1)
    with pytest.raises(ValueError, match="iters"):
        _core.gpu_micro(backend, "l2_chase", 16, 0)
    with pytest.raises(ValueError, match="at most 32 warps"):
        _core.gpu_micro(backend, "mma_tf32_rate", 33, 1)
    with pytest.raises(ValueError, match="one block an SM"):
        _core.gpu_micro(backend, "grid_sync", 100000, 1)
    for what, arg, msg in [("cluster_sync", 1, "cluster of 2 to"),
                           ("cluster_sync", 17, "cluster of 2 to"),
                           ("dsmem_chase", 4096, "fit one block's shared memory")]:
        with pytest.raises((ValueError, RuntimeError), match=msg + "|no thread-block cluster"):
            _core.gpu_micro(backend, what, arg, 1)


@pytest.fixture
def gemm_reset():
    yield
    for backend in GPU:
        _core.gpu_set_gemm(backend, "auto")


@pytest.mark.parametrize("backend", GPU)
@pytest.mark.parametrize("cell,reset_after", CELLS)
def test_tensor_core_gemms_match_the_reference(backend, cell, reset_after, gemm_reset,
                                               plan_reset):
    """The hoisted GEMMs on the tensor-core kernel (3xTF32: fp32 accuracy) give the
    reference's forward and gradients within the fp32 tolerances, with input and
    recurrent dropout (the per-gate, masked GEMMs) and split K (T*N >= 512, for one
    cell: the emulated warps are slow), bitwise the same twice; 'auto' on cuda-emu
    (no tensor cores) keeps the SIMT kernel."""
    rng = np.random.default_rng(41 + len(cell) + reset_after)
    n, t, c, h = (8, 66, 6, 5) if cell == "simple_rnn" else (8, 6, 6, 5)
    case = make_case(cell, n, t, c, h, reset_after, True, rng)
    im, rm = drop_masks("both", cell, n, c, h, rng)
    with pytest.raises(ValueError, match="gemm must be"):
        _core.gpu_set_gemm(backend, "fast")
    _core.gpu_set_gemm(backend, "mma")
    _core.gpu_set_plan(backend, "persistent:simt")   # the GEMMs' test: the recurrence on FFMA
    before = _core.gpu_mma_gemms(backend)
    outs, refs, g, gr = run_both(backend, cell, "tanh", "sigmoid", reset_after, False, True, None,
                                 case, im, rm, np.random.default_rng(1))
    assert _core.gpu_mma_gemms(backend) > before
    check(outs, refs, g, gr, f"{backend} {cell} mma GEMMs")
    again = run_both(backend, cell, "tanh", "sigmoid", reset_after, False, True, None, case, im,
                     rm, np.random.default_rng(1))[2]
    for u, v in zip(g, again):
        if u is not None:
            assert np.array_equal(u, v)
    if backend == "cuda-emu":
        _core.gpu_set_gemm(backend, "auto")
        before = _core.gpu_mma_gemms(backend)
        run_both(backend, cell, "tanh", "sigmoid", reset_after, False, True, None, case, im, rm,
                 np.random.default_rng(1))
        assert _core.gpu_mma_gemms(backend) == before


@pytest.mark.parametrize("backend", GPU)
@pytest.mark.parametrize("cell,reset_after", CELLS)
def test_tf32_takes_one_product_on_the_tensor_cores(backend, cell, reset_after, gemm_reset,
                                                    plan_reset):
    """precision='tf32' on the tensor-core GEMMs: the hoisted GEMMs (projection, dW,
    dU, dX) take one TF32 product, so the results are TF32's (within the tf32
    tolerances of the float64 reference, with dropout masks on every masked GEMM)
    and not fp32's (3xTF32: their error is orders of magnitude smaller), bitwise
    the same twice; with the SIMT GEMM, tf32 is fp32 bitwise."""
    rng = np.random.default_rng(61 + len(cell) + reset_after)
    n, t, c, h = 8, 5, 40, 12
    case = make_case(cell, n, t, c, h, reset_after, True, rng)
    im, rm = drop_masks("both", cell, n, c, h, rng)
    x, W, U, b, h0, c0 = case
    be = bk.get_backend(backend)

    def run(precision):
        y, hT, cT, cache = be.forward(cell, x, W, U, b, h0, c0, None, None, im, rm,
                                      reset_after=reset_after, precision=precision)
        dy = np.random.default_rng(3).standard_normal(y.shape).astype(np.float32)
        return (y, hT, cT), tuple(be.backward(cache, dy)), dy

    _core.gpu_set_plan(backend, "persistent:simt")   # the GEMMs' test: the recurrence on FFMA
    _core.gpu_set_gemm(backend, "mma")
    outs32, g32, dy = run("fp32")
    before = _core.gpu_mma_gemms(backend)
    outs, g, _ = run("tf32")
    assert _core.gpu_mma_gemms(backend) > before
    kw = dict(reset_after=reset_after, input_masks=f64(im), recurrent_masks=f64(rm))
    yr, hr, cr, kr = reference.rnn_forward(cell, f64(x), f64(W), f64(U), f64(b), f64(h0),
                                           f64(c0), **kw)
    gr = reference.rnn_backward(kr, f64(dy))

    def normwise(v, r):
        return np.linalg.norm(np.asarray(v, np.float64) - r) / np.linalg.norm(r)
    for name, a, r in zip(("y", "h_T", "c_T"), outs, (yr, hr, cr)):
        if r is not None:
            assert_close(a, r, "forward_tf32", f"{backend} {cell} tf32 {name}")
    for name, a, r in zip(Grads._fields, g, gr):
        if r is not None:
            assert_close(a, r, "backward_tf32", f"{backend} {cell} tf32 {name}")
    # one product, not three: TF32's error, far above the fp32 split's
    assert normwise(outs[0], yr) > 10 * normwise(outs32[0], yr)
    assert normwise(g[1], gr[1]) > 10 * normwise(g32[1], gr[1])
    again, g_again, _ = run("tf32")
    for u, v in zip(outs + g, again + g_again):
        if u is not None:
            assert np.array_equal(u, v)
    _core.gpu_set_gemm(backend, "simt")
    o_simt, g_simt, _ = run("fp32")
    o_t, g_t, _ = run("tf32")
    for u, v in zip(o_simt + g_simt, o_t + g_t):
        if u is not None:
            assert np.array_equal(u, v)


GEMM_TILES = ("32x64", "64x64", "128x64", "128x128")


@pytest.mark.parametrize("backend", GPU)
@pytest.mark.parametrize("cell,reset_after", [("lstm", True), ("gru", False)])
def test_gemm_tiles_give_the_same_bits(backend, cell, reset_after, gemm_reset, plan_reset):
    """Every C tile of the tensor-core GEMM, forced ('mma:TILE'), runs every hoisted
    GEMM of a training call with it (projection, dW, dU, dX: several tiles of each
    size, partial ones at the edges, with input and recurrent dropout masks and
    go_backwards' batch-major rows): the forward and every gradient within the fp32
    tolerances of the float64 reference, and in fp32 (3xTF32) and bf16 (m16n8k16)
    each tile's results are bitwise the others' (an entry sums its k in the same
    order whatever the tile). The per-step GEMMs' tiles: the test below."""
    rng = np.random.default_rng(43 + len(cell) + reset_after)
    n, t, c, h = 8, 5, 40, 36
    case = make_case(cell, n, t, c, h, reset_after, True, rng)
    im, rm = drop_masks("both", cell, n, c, h, rng)
    x, W, U, b, h0, c0 = case
    be = bk.get_backend(backend)
    dy = rng.standard_normal((n, t, h)).astype(np.float32)
    kw = dict(reset_after=reset_after, go_backwards=True)

    def run(precision):
        y, hT, cT, cache = be.forward(cell, x, W, U, b, h0, c0, None, None, im, rm,
                                      precision=precision, **kw)
        return (y, hT, cT) + tuple(be.backward(cache, dy))

    with pytest.raises(ValueError, match="gemm must be .*128x128"):
        _core.gpu_set_gemm(backend, "mma:16x16")
    with pytest.raises(ValueError, match="tile must be"):
        _core.gpu_mma_gemms(backend, "16x16")
    _core.gpu_set_plan(backend, "persistent:simt")   # the GEMMs' test: the recurrence on FFMA
    first = None
    for tile in GEMM_TILES:
        _core.gpu_set_gemm(backend, "mma:" + tile)
        assert _core.gpu_gemm(backend) == "mma:" + tile
        before = [_core.gpu_mma_gemms(backend, u) for u in GEMM_TILES]
        got = {p: run(p) for p in ("fp32", "bf16")}
        after = [_core.gpu_mma_gemms(backend, u) for u in GEMM_TILES]
        assert [a - b > 0 for a, b in zip(after, before)] == [u == tile for u in GEMM_TILES]
        if first is None:
            first = got
            yr, hr, cr, kr = reference.rnn_forward(
                cell, f64(x), f64(W), f64(U), f64(b), f64(h0), f64(c0), input_masks=f64(im),
                recurrent_masks=f64(rm), training=True, **kw)
            check(got["fp32"][:3], (yr, hr, cr), got["fp32"][3:],
                  reference.rnn_backward(kr, f64(dy)), f"{backend} {cell} mma:{tile}")
            continue
        for p in got:
            for name, u, v in zip(BF16_NAMES, first[p], got[p]):
                if u is not None:
                    assert np.array_equal(u, v), f"{p} {name}: mma:{tile} differs"


@pytest.mark.parametrize("backend", GPU)
def test_gemm_tiles_chosen_and_tuned(backend, tmp_path, monkeypatch, gemm_reset, plan_reset,
                                     tune_reset):
    """'mma' chooses the C tile by size: 32x64 for at most 32 rows (the per-step
    d h_prev GEMM of a batch of 8), 128x128 where that tile's grid still fills the
    device twice over (an input projection of 129 x 512 on cuda-emu's 4 SMs), else
    64x64; with tuning on each hoisted GEMM times every tile once and keeps the
    fastest ('KEY -> mma:TILE' among the tuned plans, saved to the plan cache and
    reused from it, bitwise the same results); a cache line naming no tile is a
    clear error."""
    be = bk.get_backend(backend)
    _core.gpu_set_gemm(backend, "mma")
    _core.gpu_set_plan(backend, "persistent:simt")
    rng = np.random.default_rng(47)
    x, W, U, b, h0, c0 = make_case("lstm", 43, 3, 3, 128, True, True, rng)
    before = {u: _core.gpu_mma_gemms(backend, u) for u in GEMM_TILES}
    be.forward("lstm", x, W, U, b, h0, c0, None, training=False)   # the projection only
    took = {u: _core.gpu_mma_gemms(backend, u) - before[u] for u in GEMM_TILES}
    if backend == "cuda-emu":   # 129 x 512: 2 x 4 tiles of 128 x 128
        assert took == {"32x64": 0, "64x64": 0, "128x64": 0, "128x128": 1}
    _core.gpu_set_plan(backend, "steps:mma")
    x, W, U, b, h0, c0 = make_case("lstm", 8, 3, 5, 40, True, True, rng)
    before = _core.gpu_mma_gemms(backend, "32x64")
    y, hT, cT, cache = be.forward("lstm", x, W, U, b, h0, c0, None)
    dy = rng.standard_normal(y.shape).astype(np.float32)
    g = be.backward(cache, dy)
    assert _core.gpu_mma_gemms(backend, "32x64") >= before + 3   # d h_prev, a step each

    monkeypatch.setenv("RNNKERN_CACHE_DIR", str(tmp_path))
    _core.gpu_clear_tuned(backend)
    bk.set_cuda_tune("quick", backend)

    def call():
        y, hT, cT, cache = be.forward("lstm", x, W, U, b, h0, c0, None)
        return (y, hT, cT) + tuple(be.backward(cache, dy))
    tuned = call()
    lines = [ln for ln in _core.gpu_tuned_plans(backend) if " gemm " in ln]
    tiles = [ln.split(" -> mma:")[1] for ln in lines]
    assert len(lines) >= 3 and all(u in GEMM_TILES for u in tiles)   # projection, dW, dU
    for u, v in zip(tuned, call()):   # kept: not tuned again, the same bits
        if u is not None:
            assert np.array_equal(u, v)
    assert [ln for ln in _core.gpu_tuned_plans(backend) if " gemm " in ln] == lines
    for u, v, r in zip(tuned, (y, hT, cT) + tuple(g), BF16_NAMES):
        if u is not None:
            assert np.array_equal(u, v), r   # the untuned call's tiles: the same bits
    path = bk.save_tuned_plans(backend)
    _core.gpu_clear_tuned(backend)
    bk.set_cuda_tune("quick", backend)   # loads the file: the tiles are there at once
    assert [ln for ln in _core.gpu_tuned_plans(backend) if " gemm " in ln] == lines
    for bad in (f"{lines[0].split(' -> ')[0]} -> mma:7x7\n", "dev0 forward mode1 -> mma:64x64\n"):
        with open(path, "w", encoding="utf-8") as f:
            f.write(bad)
        with pytest.raises(ValueError, match="line 1: expected a GEMM's key and one of its tiles"):
            bk.set_cuda_tune("quick", backend)
    bk.set_cuda_tune("off", backend)


BF16_NAMES = ("y", "h_T", "c_T") + Grads._fields


@pytest.mark.parametrize("backend", GPU)
@pytest.mark.parametrize("cell,reset_after", CELLS)
@pytest.mark.parametrize("on_device", [False, True], ids=["host", "device"])
@pytest.mark.parametrize("plan,gemm", [("auto", "auto"), ("steps:simt", "simt"),
                                       ("steps:mma", "mma"), ("persistent:3,32,7", "simt"),
                                       ("persistent:2,64,8,mma", "mma")])
def test_bf16_is_the_reference_bf16(backend, cell, reset_after, on_device, plan, gemm,
                                    plan_reset, gemm_reset):
    """precision='bf16' on the GPU is rnnkern.reference's bf16, as on the CPU: the
    kernel and recurrent kernel rounded to bfloat16 once a call (ties to even: the
    test puts exact ties in the kernel), and every product's other operand as the
    products read it (x and h_prev before dropout masks scale them, GRU
    reset_before's r * h, the pre-activation gradients), sums, states and the
    cell's own gradient terms fp32. Forward and every gradient within the
    bf16_emulated tolerances of the float64 emulation, with masks, go_backwards,
    both dropout masks, training and inference (on device arrays an inference
    would read the weights in place: bf16 rounds its own copy), in both time-loop
    families, their FFMA and tensor-core products and both GEMM kernels; the
    reference with only the weights rounded misses it; the error against the
    exact fp32 math is bf16's (normwise <= 1e-2, far above fp32)."""
    _core.gpu_set_plan(backend, plan)
    _core.gpu_set_gemm(backend, gemm)
    rng = np.random.default_rng(71 + len(cell) + reset_after)
    n, t, c, h = 5, 4, 7, 16
    x, W, U, b, h0, c0 = make_case(cell, n, t, c, h, reset_after, True, rng)
    W[0, :4] = np.float32(1 + 2.0 ** -8), np.float32(1 + 3 * 2.0 ** -8), \
        np.float32(-(1 + 2.0 ** -8)), np.float32(2.0 ** -20 * (1 + 2.0 ** -8))  # ties
    mask = make_mask("holes", n, t, rng)
    im, rm = drop_masks("both", cell, n, c, h, rng)
    kw = dict(reset_after=reset_after, go_backwards=True)
    d = (lambda v: None if v is None else rk.device_array(v, backend)) if on_device \
        else (lambda v: v)
    host = (lambda v: None if v is None else np.asarray(v.numpy() if on_device else v))
    dy = rng.standard_normal((n, t, h)).astype(np.float32)
    y, hT, cT, cache = ops.rnn_forward(cell, d(x), d(W), d(U), d(b), d(h0), d(c0), d(mask),
                                       backend=backend, precision="bf16", input_masks=d(im),
                                       recurrent_masks=d(rm), **kw)
    g = ops.rnn_backward(cache, d(dy))
    yi = ops.rnn_forward(cell, d(x), d(W), d(U), d(b), d(h0), d(c0), d(mask), backend=backend,
                         precision="bf16", training=False, input_masks=d(im),
                         recurrent_masks=d(rm), **kw)[0]
    rk_kw = dict(kw, input_masks=f64(im), recurrent_masks=f64(rm))
    args = (cell, f64(x), f64(W), f64(U), f64(b), f64(h0), f64(c0), mask)
    yr, hr, cr, kr = reference.rnn_forward(*args, precision="bf16", **rk_kw)
    gr = reference.rnn_backward(kr, f64(dy))
    ours = (host(y), host(hT), host(cT)) + tuple(host(a) for a in g)
    for name, a, r in zip(BF16_NAMES, ours, (yr, hr, cr) + tuple(gr)):
        if r is not None:
            assert_close(a, r, "bf16_emulated", f"{backend} {plan} {cell} bf16 {name}")
    assert_close(host(yi), yr, "bf16_emulated", f"{backend} {plan} {cell} bf16 inference")
    # the rounded operands matter: the reference with only the weights rounded is
    # farther from the result than the bf16 emulation (gradients: dW's x and dz)
    yw, _, _, kw_ = reference.rnn_forward(cell, f64(x), f64(_bf16(W)), f64(_bf16(U)), f64(b),
                                          f64(h0), f64(c0), mask, **rk_kw)
    dWw = reference.rnn_backward(kw_, f64(dy))[1]
    assert np.abs(host(g[1]) - dWw).max() > 4 * np.abs(host(g[1]) - gr[1]).max()
    y32 = reference.rnn_forward(*args, **rk_kw)[0]
    err = np.linalg.norm(host(y) - y32) / np.linalg.norm(y32)
    assert 1e-5 < err <= 1e-2


@pytest.mark.parametrize("backend", GPU)
def test_bf16_keeps_u_as_pairs_on_chip(backend, plan_reset):
    """precision='bf16' (its one m16n8k16 product) keeps the persistent family's
    resident U as bf16 pairs, two k a word: half fp32's shared memory. LSTM with
    128 units in one block, whose fp32 slice (266 KiB forward, 264 KiB backward)
    does not fit a block's 227 KiB, runs forced in bf16, forward and BPTT within
    the bf16 reference's tolerances, inference too; tf32 (one TF32 product, fp32
    U) cannot take that plan. (The pairs under dropout masks and GRU's gates:
    test_tensor_core_recurrence_precisions.)"""
    rng = np.random.default_rng(53)
    n, t, c, h = 8, 3, 5, 128
    x, W, U, b, h0, c0 = make_case("lstm", n, t, c, h, True, True, rng)
    dy = rng.standard_normal((n, t, h)).astype(np.float32)
    be = bk.get_backend(backend)
    _core.gpu_set_plan(backend, "persistent:1,64,mma")
    before = _core.gpu_persistent_launches(backend)
    y, hT, cT, cache = be.forward("lstm", x, W, U, b, h0, c0, None, precision="bf16")
    g = be.backward(cache, dy)
    yi = be.forward("lstm", x, W, U, b, h0, c0, None, precision="bf16", training=False)[0]
    assert _core.gpu_persistent_launches(backend) == before + 3
    args = ("lstm", f64(x), f64(W), f64(U), f64(b), f64(h0), f64(c0))
    yr, hr, cr, kr = reference.rnn_forward(*args, precision="bf16")
    gr = reference.rnn_backward(kr, f64(dy))
    for name, a, r in zip(BF16_NAMES, (y, hT, cT) + tuple(g), (yr, hr, cr) + tuple(gr)):
        if r is not None:
            assert_close(a, r, "bf16_emulated", f"{backend} bf16 pairs {name}")
    assert_close(yi, yr, "bf16_emulated", f"{backend} bf16 pairs inference")
    with pytest.raises(RuntimeError, match="does not fit"):
        be.forward("lstm", x, W, U, b, h0, c0, None, precision="tf32", training=False)


@pytest.mark.parametrize("backend", GPU)
@pytest.mark.parametrize("cell,reset_after", [("lstm", True), ("gru", False)])
@pytest.mark.parametrize("dropout", [False, True], ids=["plain", "dropout"])
@pytest.mark.parametrize("family", ["persistent:1,64,", "steps:"])
def test_tensor_core_recurrence_precisions(backend, cell, reset_after, dropout, family,
                                           plan_reset):
    """The tensor-core recurrence of both families (persistent, and R3's per-step
    kernels) in each precision: bf16 (one product where both
    operands are bfloat16 values, which TF32 holds exactly; two where recurrent
    dropout masks scale the rounded h) is the reference's bf16 emulation within
    its tolerances and the FFMA recurrence's outputs within the families'
    tolerance (the same exact products, summed in another order); tf32 (one product) is within the tf32 tolerances of the
    reference and measurably less exact than fp32's three products (forward and
    gradients)."""
    rng = np.random.default_rng(97 + len(cell) + reset_after)
    n, t, c, h = 17, 3, 6, 16
    x, W, U, b, h0, c0 = make_case(cell, n, t, c, h, reset_after, True, rng)
    rm = drop_masks("both", cell, n, c, h, rng)[1] if dropout else None
    be = bk.get_backend(backend)
    dy = rng.standard_normal((n, t, h)).astype(np.float32)

    def run(precision, product="mma"):
        _core.gpu_set_plan(backend, family + product)
        y, hT, cT, cache = be.forward(cell, x, W, U, b, h0, c0, None, None, None, rm,
                                      reset_after=reset_after, precision=precision)
        return (y, hT, cT), tuple(be.backward(cache, dy))

    def ref(precision):
        kw = dict(reset_after=reset_after, recurrent_masks=f64(rm), precision=precision)
        yr, hr, cr, kr = reference.rnn_forward(cell, f64(x), f64(W), f64(U), f64(b), f64(h0),
                                               f64(c0), **kw)
        return (yr, hr, cr), reference.rnn_backward(kr, f64(dy))

    def normwise(v, r):
        return np.linalg.norm(np.asarray(v, np.float64) - r) / np.linalg.norm(r)

    outs, g = run("bf16")
    routs, rg = ref("bf16")
    for name, a, r in zip(BF16_NAMES, outs + g, routs + rg):
        if r is not None:
            assert_close(a, r, "bf16_emulated", f"{backend} {cell} bf16 mma {name}")
    outs_f, _ = run("bf16", "simt")
    for name, a, r in zip(BF16_NAMES, outs + g, outs_f):
        if r is not None:
            assert_close(a, r, "gpu_families_f32", f"{backend} {cell} bf16 mma vs ffma {name}")
    outs32, g32 = run("fp32")
    outs, g = run("tf32")
    routs, rg = ref("fp32")
    for name, a, r in zip(BF16_NAMES, outs + g, routs + rg):
        if r is not None:
            assert_close(a, r, "backward_tf32", f"{backend} {cell} tf32 mma {name}")
    assert normwise(outs[0], routs[0]) > 10 * normwise(outs32[0], routs[0])
    assert normwise(g[0], rg[0]) > 10 * normwise(g32[0], rg[0])


@pytest.fixture
def tune_reset():
    """Each test that tunes leaves both GPU backends untuned, their plans forgotten."""
    yield
    for backend in GPU:
        _core.gpu_set_tune(backend, "off")
        _core.gpu_clear_tuned(backend)


@pytest.mark.parametrize("backend", GPU)
@pytest.mark.parametrize("cell,reset_after", CELLS)
@pytest.mark.parametrize("mode", ["quick", "full"])
def test_tuned_plans(backend, cell, reset_after, mode, tune_reset, plan_reset):
    """gpu_set_tune / RNNKERN_TUNE: the automatic plan of each time loop timed on
    first use against the per-step family and its neighbours and kept: both loops
    tuned once (a second call tunes nothing and gives the same bits), the
    candidates' runs (the per-step family's among them, always) leave the call's
    results alone (forward and BPTT match the reference, with masks, dropout masks
    and go_backwards; an inference equals its tuned plan forced, bitwise, whichever
    family won)."""
    with pytest.raises(ValueError, match="tune must be 'off', 'quick' or 'full'"):
        _core.gpu_set_tune(backend, "fast")
    _core.gpu_clear_tuned(backend)
    _core.gpu_set_tune(backend, mode)
    assert _core.gpu_tune(backend) == mode
    rng = np.random.default_rng(81 + len(cell) + reset_after)
    n, t, c, h = 5, 9, 7, 40
    case = make_case(cell, n, t, c, h, reset_after, True, rng)
    mask = make_mask("holes", n, t, rng)
    im, rm = drop_masks("both", cell, n, c, h, rng)
    before = _core.gpu_tunings(backend)
    outs, refs, g, gr = run_both(backend, cell, "tanh", "sigmoid", reset_after, True, True, mask,
                                 case, im, rm, np.random.default_rng(3))
    check(outs, refs, g, gr, f"{backend} {cell} tuned ({mode})")
    assert _core.gpu_tunings(backend) == before + 2   # the forward loop and the backward one
    plans = dict(line.split(" -> ") for line in _core.gpu_tuned_plans(backend))
    assert len(plans) == 2 and all(p.startswith("persistent:") or p == "steps"
                                   for p in plans.values())
    again = run_both(backend, cell, "tanh", "sigmoid", reset_after, True, True, mask, case, im,
                     rm, np.random.default_rng(3))
    assert _core.gpu_tunings(backend) == before + 2
    for u, v in zip(tuple(outs) + tuple(g), tuple(again[0]) + tuple(again[2])):
        if u is not None:
            assert np.array_equal(u, v)
    x, W, U, b, h0, c0 = case
    be = bk.get_backend(backend)
    kw = dict(reset_after=reset_after, training=False)
    y_tuned = be.forward(cell, x, W, U, b, h0, c0, mask, None, None, rm, **kw)[0]
    plans = dict(line.split(" -> ") for line in _core.gpu_tuned_plans(backend))
    (inference,) = [p for k, p in plans.items() if "forward" in k and "train0" in k]
    _core.gpu_set_tune(backend, "off")
    _core.gpu_set_plan(backend, inference)
    y_forced = be.forward(cell, x, W, U, b, h0, c0, mask, None, None, rm, **kw)[0]
    assert np.array_equal(y_tuned, y_forced)


@pytest.mark.parametrize("backend", GPU)
def test_tuning_weighs_both_recurrent_products(backend, tune_reset, plan_reset, gemm_reset):
    """With the GEMMs on the tensor cores (forced here; on a device, where its
    fragments pass the probe) the automatic plan takes the tensor-core recurrence
    for a batch of >= 8, and quick tuning times it against FFMA: the kept plans name
    their product, the call matches the reference, and the tuned inference equals
    its plan forced, bitwise."""
    _core.gpu_set_gemm(backend, "mma")
    _core.gpu_clear_tuned(backend)
    rng = np.random.default_rng(87)
    n, t, c, h = 8, 3, 5, 12
    case = make_case("lstm", n, t, c, h, True, True, rng)
    _core.gpu_set_plan(backend, "auto")
    auto = run_both(backend, "lstm", "tanh", "sigmoid", True, False, True, None, case, None,
                    None, np.random.default_rng(3))
    check(*auto, f"{backend} lstm auto on the tensor cores")
    _core.gpu_set_plan(backend, "persistent:simt")
    simt = run_both(backend, "lstm", "tanh", "sigmoid", True, False, True, None, case, None,
                    None, np.random.default_rng(3))
    assert not np.array_equal(auto[0][0], simt[0][0])   # auto took the tensor cores
    _core.gpu_set_plan(backend, "auto")
    _core.gpu_set_tune(backend, "quick")
    outs, refs, g, gr = run_both(backend, "lstm", "tanh", "sigmoid", True, False, True, None,
                                 case, None, None, np.random.default_rng(3))
    check(outs, refs, g, gr, f"{backend} lstm tuned over both products")
    x, W, U, b, h0, c0 = case
    be = bk.get_backend(backend)
    y_tuned = be.forward("lstm", x, W, U, b, h0, c0, None, training=False)[0]
    plans = dict(line.split(" -> ") for line in _core.gpu_tuned_plans(backend))
    loops = {k: p for k, p in plans.items() if " gemm " not in k}
    assert all(p.endswith((",mma", ",simt")) or p == "steps" for p in loops.values())
    # the hoisted GEMMs on the tensor cores tuned their tiles too
    assert any(" gemm " in k and p.startswith("mma:") for k, p in plans.items())
    (inference,) = [p for k, p in loops.items() if "forward" in k and "train0" in k]
    _core.gpu_set_tune(backend, "off")
    _core.gpu_set_plan(backend, inference)
    assert np.array_equal(y_tuned, be.forward("lstm", x, W, U, b, h0, c0, None,
                                              training=False)[0])


@pytest.mark.parametrize("backend", GPU)
def test_tuned_plans_are_kept_per_precision(backend, tune_reset, plan_reset, gemm_reset):
    """A tuned plan keeps its tensor-core product count, so each precision tunes
    its own: after a tf32 call has tuned a shape (one product), an fp32 call of
    the same shape tunes again (three) and is fp32's result, not tf32's."""
    _core.gpu_set_gemm(backend, "mma")
    _core.gpu_clear_tuned(backend)
    _core.gpu_set_plan(backend, "auto")
    _core.gpu_set_tune(backend, "quick")
    rng = np.random.default_rng(89)
    n, t, c, h = 8, 3, 5, 12
    x, W, U, b, h0, c0 = make_case("lstm", n, t, c, h, True, True, rng)
    be = bk.get_backend(backend)
    be.forward("lstm", x, W, U, b, h0, c0, None, training=False, precision="tf32")
    y = be.forward("lstm", x, W, U, b, h0, c0, None, training=False, precision="fp32")[0]
    keys = [line.split(" -> ")[0] for line in _core.gpu_tuned_plans(backend)
            if " gemm " not in line]
    assert sorted(k.rsplit(" ", 1)[1] for k in keys) == ["products1", "products3"]
    yr = reference.rnn_forward("lstm", f64(x), f64(W), f64(U), f64(b), f64(h0), f64(c0))[0]
    assert_close(y, yr, "forward_f32", f"{backend} fp32 after a tf32 tuning")


def test_tune_from_the_environment(tmp_path):
    """RNNKERN_TUNE sets the mode at first use; a bad value is a clear error there."""
    import subprocess
    import sys
    base = child_env(RNNKERN_CACHE_DIR=str(tmp_path))
    code = ("from rnnkern import _core; import sys; "
            "print(_core.gpu_tune('cuda-emu'))")

    def child(value):
        return subprocess.run([sys.executable, "-c", code], env=dict(base, RNNKERN_TUNE=value),
                              capture_output=True, text=True, timeout=120, cwd=tmp_path)

    for value, want in (("quick", "quick"), ("full", "full"), ("", "off")):
        out = child(value)
        assert out.returncode == 0 and out.stdout.strip() == want, out.stderr
    out = child("always")
    assert out.returncode != 0 and "tune must be 'off', 'quick' or 'full'" in out.stderr


def test_tuned_plans_are_cached_on_disk(tmp_path, monkeypatch, tune_reset, plan_reset):
    """set_cuda_tune loads the plan cache of this device, driver and version and the
    plans are saved to it (atomically): a later process (here: after forgetting
    them) reuses them instead of tuning, bitwise the same results; a cached 'steps'
    runs that loop in the per-step family (no persistent launch, the forced plan's
    bits); a cached plan that no longer fits is tuned anew; a file that is not a
    plan cache is a clear error naming it and the line."""
    monkeypatch.setenv("RNNKERN_CACHE_DIR", str(tmp_path))
    backend = "cuda-emu"
    path = bk.plan_cache_path(backend)
    assert path.startswith(str(tmp_path)) and "cuda-emu" in path
    with pytest.raises(ValueError, match="mode must be one of"):
        bk.set_cuda_tune("sometimes")
    _core.gpu_clear_tuned(backend)
    bk.set_cuda_tune("quick", backend)
    assert bk.cuda_tune(backend) == "quick"
    rng = np.random.default_rng(91)
    x, W, U, b, h0, c0 = make_case("lstm", 4, 6, 5, 24, True, True, rng)
    be = bk.get_backend(backend)

    def forward():
        return be.forward("lstm", x, W, U, b, h0, c0, None, training=False)[0]
    n0 = _core.gpu_tunings(backend)
    y0 = forward()
    assert _core.gpu_tunings(backend) == n0 + 1
    assert bk.save_tuned_plans(backend) == path
    lines = open(path, encoding="utf-8").read().splitlines()
    assert lines[0].startswith("# rnnkern") and len(lines) == 2
    assert " -> persistent:" in lines[1] or lines[1].endswith(" -> steps")
    _core.gpu_clear_tuned(backend)        # as a new process would start
    bk.set_cuda_tune("quick", backend)    # loads the file
    y1 = forward()
    assert _core.gpu_tunings(backend) == n0 + 1   # reused, not tuned again
    assert np.array_equal(y0, y1)
    key = lines[1].split(" -> ")[0]
    # the per-step family, cached: that loop runs a launch a step, as 'steps' forced
    _core.gpu_set_tune(backend, "off")
    _core.gpu_set_plan(backend, "steps")
    y_steps = forward()
    _core.gpu_set_plan(backend, "auto")
    with open(path, "w", encoding="utf-8") as f:
        f.write(f"# cache\n{key} -> steps\n")
    _core.gpu_clear_tuned(backend)
    bk.set_cuda_tune("quick", backend)
    persistent = _core.gpu_persistent_launches(backend)
    y2 = forward()
    assert _core.gpu_tunings(backend) == n0 + 1   # reused, not tuned
    assert _core.gpu_persistent_launches(backend) == persistent
    assert np.array_equal(y2, y_steps)
    assert _core.gpu_tuned_plans(backend) == [f"{key} -> steps"]
    # a plan that cannot fit this loop any more: tuned anew, not an error
    with open(path, "w", encoding="utf-8") as f:
        f.write(f"{key} -> persistent:500,1024,1\n")
    _core.gpu_clear_tuned(backend)
    bk.set_cuda_tune("quick", backend)
    forward()
    assert _core.gpu_tunings(backend) == n0 + 2
    for bad, msg in (("no arrow here\n", "line 1: expected 'KEY -> persistent"),
                     ("# ok\nkey -> steps:mma\n", "line 2: expected a persistent partition or 'steps'"),
                     ("key -> persistent:x\n", "line 1: plan: expected"),
                     (b"\xff\xfe", "not UTF-8")):
        with open(path, "wb") as f:
            f.write(bad if isinstance(bad, bytes) else bad.encode())
        with pytest.raises(ValueError, match=msg) as e:
            bk.set_cuda_tune("quick", backend)
        assert path in str(e.value)
    with open(path, "wb") as f:
        f.write(b"#" * (2 << 20))
    with pytest.raises(ValueError, match="is not an rnnkern plan cache"):
        bk.load_tuned_plans(backend)
    bk.set_cuda_tune("off")
