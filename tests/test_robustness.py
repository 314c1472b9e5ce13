"""Numerical robustness: long sequences (10,000 and 100,000 steps) stay finite and
match the float64 reference, forward and backward; a NaN in one row of the batch
stays in that row's outputs, states and input gradients (the weight gradients,
sums over the batch, are NaN, as in Keras and torch); fit with a loss that turns
NaN reports it in the history, stops cleanly with TerminateOnNaN and raises with
TerminateOnNaN(raise_error=True). Gradients at saturation: tests/test_fuzz.py's
amplitude-30 cases."""
import functools

import numpy as np
import pytest

import rnnkern as rk
import rnnkern.callbacks as C
import rnnkern.layers as L
import rnnkern.models as M
import rnnkern.optimizers as O
from rnnkern import backends as bk
from rnnkern import reference
from rnnkern._common import GATES
from tolerances import assert_close

CPU = bk.cpu_backends()
GPU_EMU = [b for b in bk.backends() if b == "cuda-emu"]
CELLS = [("simple_rnn", True), ("lstm", True), ("gru", True), ("gru", False)]


def case(cell, reset_after, n, t, c=3, h=8, seed=0):
    """A stable recurrence (|U| < 1) on unit inputs, a mask with holes and a
    padded tail, random initial states and output gradients."""
    r = np.random.default_rng(seed)
    g = GATES[cell]
    x = r.standard_normal((n, t, c)).astype(np.float32)
    W = (r.standard_normal((c, g * h)) * 0.5).astype(np.float32)
    U = (r.standard_normal((h, g * h)) * 0.5 / np.sqrt(h)).astype(np.float32)
    b = (r.standard_normal((2, g * h) if cell == "gru" and reset_after else (g * h,)) * 0.3
         ).astype(np.float32)
    h0 = (r.standard_normal((n, h)) * 0.5).astype(np.float32)
    c0 = (r.standard_normal((n, h)) * 0.5).astype(np.float32) if cell == "lstm" else None
    mask = r.random((n, t)) > 0.1
    mask[-1, t // 2:] = False                      # a row padded over half the sequence
    dy = r.standard_normal((n, t, h)).astype(np.float32)
    return x, W, U, b, h0, c0, mask, dy


def f64(a):
    return None if a is None else np.asarray(a, np.float64)


@functools.lru_cache(maxsize=None)
def reference_result(cell, reset_after, n, t, go_backwards):
    """The float64 reference's outputs and gradients (computed once per case: a
    100,000-step reference takes seconds)."""
    x, W, U, b, h0, c0, mask, dy = case(cell, reset_after, n, t)
    y, hT, cT, cache = reference.rnn_forward(cell, f64(x), f64(W), f64(U), f64(b), f64(h0),
                                             f64(c0), mask, reset_after=reset_after,
                                             go_backwards=go_backwards)
    return (y, hT, cT), reference.rnn_backward(cache, f64(dy))


def check_long(backend, cell, reset_after, n, t, go_backwards=False):
    x, W, U, b, h0, c0, mask, dy = case(cell, reset_after, n, t)
    be = bk.get_backend(backend)
    y, hT, cT, cache = be.forward(cell, x, W, U, b, h0, c0, mask, reset_after=reset_after,
                                  go_backwards=go_backwards, training=True)
    g = be.backward(cache, dy)
    refs, grefs = reference_result(cell, reset_after, n, t, go_backwards)
    what = f"{backend} {cell} T={t}"
    for name, a, r in zip(("y", "h_T", "c_T"), (y, hT, cT), refs):
        if r is not None:
            assert np.isfinite(a).all(), f"{what}: {name} not finite"
            assert_close(a, r, "forward_f32", f"{what} {name}")
    for name, a, r in zip(("dx", "dW", "dU", "db", "dh0", "dc0"), g, grefs):
        if r is not None:
            assert np.isfinite(a).all(), f"{what}: {name} not finite"
            # dW, dU, db sum T = 1e5 terms: float32's error grows like sqrt(T) ulp
            assert_close(a, r, "backward_f32", f"{what} {name}")


@pytest.mark.parametrize("backend", CPU)
@pytest.mark.parametrize("cell,reset_after", CELLS, ids=lambda v: str(v))
@pytest.mark.parametrize("t,go_backwards", [(10_000, False), (10_000, True), (100_000, False)],
                         ids=["10k", "10k-backwards", "100k"])
def test_long_sequences(backend, cell, reset_after, t, go_backwards):
    check_long(backend, cell, reset_after, 2, t, go_backwards)


@pytest.mark.parametrize("backend", GPU_EMU)
@pytest.mark.parametrize("cell,reset_after", [("lstm", True), ("gru", False)])
def test_long_sequences_gpu_kernels(backend, cell, reset_after):
    """The GPU kernels on the emulation, which runs ~3 ms a step on the host: 2,000
    steps (the kernels carry no per-step state that grows with T)."""
    check_long(backend, cell, reset_after, 2, 1_000)


# --------------------------------------------------------------------- NaN

@pytest.mark.parametrize("backend", ["reference"] + CPU + GPU_EMU)
@pytest.mark.parametrize("cell,reset_after", CELLS, ids=lambda v: str(v))
def test_nan_stays_in_its_row(backend, cell, reset_after):
    """A NaN in row 0's input at step 2: row 0's outputs from step 2 on, its final
    states and its input gradients up to step 2 are NaN; row 1's outputs, states,
    dx and dh0 equal those of a batch without the NaN; the weight gradients (sums
    over the rows) are NaN -- what Keras and torch.nn give."""
    x, W, U, b, h0, c0, _, dy = case(cell, reset_after, 2, 5, seed=4)
    be = bk.get_backend(backend)
    kw = dict(reset_after=reset_after, training=True)
    clean = be.forward(cell, x, W, U, b, h0, c0, None, **kw)
    g_clean = be.backward(clean[3], dy)
    xn = x.copy()
    xn[0, 2, 0] = np.nan
    y, hT, cT, cache = be.forward(cell, xn, W, U, b, h0, c0, None, **kw)
    g = be.backward(cache, dy)
    assert np.isfinite(y[0, :2]).all() and np.isnan(y[0, 2:]).all()
    assert np.isnan(hT[0]).all()
    np.testing.assert_array_equal(y[1], clean[0][1])
    np.testing.assert_array_equal(hT[1], clean[1][1])
    if cell == "lstm":
        assert np.isnan(cT[0]).all()
        np.testing.assert_array_equal(cT[1], clean[2][1])
    dx, dW, dU, db, dh0, dc0 = g
    assert np.isnan(dx[0, :3]).any() and np.isfinite(dx[1]).all()
    np.testing.assert_array_equal(dx[1], g_clean[0][1])
    np.testing.assert_array_equal(dh0[1], g_clean[4][1])
    assert np.isnan(dh0[0]).any()
    assert np.isnan(dW).any() and np.isnan(dU).any()


# ---------------------------------------------------------------- fit / NaN

def small_model():
    rk.utils.clear_session()
    m = M.Sequential([L.Input((5, 2)), L.LSTM(4, seed=1), L.Dense(1)])
    m.compile(optimizer=O.SGD(0.01), loss="mse")
    return m


def diverging_data(rng):
    x = rng.standard_normal((16, 5, 2)).astype(np.float32)
    y = rng.standard_normal((16, 1)).astype(np.float32)
    y[9] = np.inf            # batch 2 of 4 (batch_size 4): an infinite loss there
    return x, y


def test_fit_reports_a_nan_loss(rng):
    """Without TerminateOnNaN, fit goes on as Keras' does: the history reports
    the non-finite loss for the epoch, and training ends without an exception."""
    m = small_model()
    x, y = diverging_data(rng)
    h = m.fit(x, y, batch_size=4, epochs=2, shuffle=False, verbose=0)
    assert len(h.history["loss"]) == 2
    assert not np.isfinite(h.history["loss"][0])


def test_terminate_on_nan_stops_at_the_batch(rng):
    m = small_model()
    x, y = diverging_data(rng)
    seen = []
    h = m.fit(x, y, batch_size=4, epochs=3, shuffle=False, verbose=0,
              callbacks=[C.TerminateOnNaN(),
                         C.LambdaCallback(on_train_batch_end=lambda b, logs: seen.append(b))])
    assert seen == [0, 1, 2] and len(h.history["loss"]) == 1 and m.stop_training
    # the model stays usable: predict runs (its weights took the non-finite step)
    assert m.predict(x, verbose=0).shape == (16, 1)


def test_terminate_on_nan_raise_error(rng):
    m = small_model()
    x, y = diverging_data(rng)
    with pytest.raises(RuntimeError, match="NaN or Inf loss encountered at batch 2"):
        m.fit(x, y, batch_size=4, epochs=1, shuffle=False, verbose=0,
              callbacks=[C.TerminateOnNaN(raise_error=True)])
    # a later fit on good data runs (the one-fit-at-a-time lock was released)
    x2, y2 = rng.standard_normal((8, 5, 2)), rng.standard_normal((8, 1))
    m2 = small_model()
    m2.fit(x2, y2, epochs=1, verbose=0)
    m.set_weights(m2.get_weights())
    h = m.fit(x2, y2, epochs=1, verbose=0)
    assert np.isfinite(h.history["loss"][0])
