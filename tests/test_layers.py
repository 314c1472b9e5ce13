"""Layer API (rnnkern.SimpleRNN / LSTM / GRU) on every available backend:
Keras' output conventions, backend-vs-reference agreement, layer-level BPTT
against float64 finite differences of the reference, weights, initializers,
seeds, stateful layers, training modes, dropout, empty batches."""
import numpy as np
import pytest

import rnnkern as rk
from rnnkern import initializers, reference
from rnnkern._common import GATES
from tolerances import assert_close

CELLS = {"simple_rnn": rk.SimpleRNN, "lstm": rk.LSTM, "gru": rk.GRU}
N_STATES = {"simple_rnn": 1, "lstm": 2, "gru": 1}


def randomize(layer, rng, scale=0.5):
    """Random weights (biases included) so that every term is exercised."""
    layer.set_weights([rng.uniform(-scale, scale, w.shape).astype(np.float32)
                       for w in layer.get_weights()])


def make(cell, units, c, rng, backend="reference", **kw):
    layer = CELLS[cell](units, backend=backend, seed=0, **kw)
    layer.build((None, None, c))
    randomize(layer, rng)
    return layer


def as_list(r):
    return r if isinstance(r, list) else [r]


# ------------------------------------------------------------------ structure

@pytest.mark.parametrize("cell", list(CELLS))
@pytest.mark.parametrize("return_sequences", [False, True])
@pytest.mark.parametrize("return_state", [False, True])
def test_output_structure(backend_name, cell, return_sequences, return_state, rng):
    n, t, c, h = 3, 4, 5, 6
    layer = CELLS[cell](h, return_sequences=return_sequences, return_state=return_state,
                        backend=backend_name, seed=1)
    x = rng.standard_normal((n, t, c)).astype(np.float32)
    r = layer(x)
    out_shape = (n, t, h) if return_sequences else (n, h)
    if return_state:
        assert isinstance(r, list) and len(r) == 1 + N_STATES[cell]
        y, *states = r
        assert all(s.shape == (n, h) and s.dtype == np.float32 for s in states)
        # the returned h is the last processed step's output
        last = y[:, -1] if return_sequences else y
        np.testing.assert_array_equal(states[0], last)
        assert layer.compute_output_shape((n, t, c)) == [out_shape] + [(n, h)] * N_STATES[cell]
    else:
        assert isinstance(r, np.ndarray)
        y = r
        assert layer.compute_output_shape((n, t, c)) == out_shape
    assert y.shape == out_shape and y.dtype == np.float32
    assert layer.built and layer.backend == backend_name


def test_auto_backend_and_switch():
    layer = rk.GRU(3)
    assert layer.backend in rk.backends()
    layer.backend = "reference"
    assert layer.backend == "reference"
    assert rk.backends.get_backend("reference").name == "reference"  # module access too


def test_return_sequences_last_equals_final(backend_name, rng):
    x = rng.standard_normal((2, 5, 3)).astype(np.float32)
    seq = make("lstm", 4, 3, rng, backend_name, return_sequences=True)
    last = rk.LSTM(4, backend=backend_name)
    last.set_weights(seq.get_weights())
    np.testing.assert_array_equal(last(x), seq(x)[:, -1])


# ------------------------------------------------------------ vs reference

CONFIGS = [
    ("simple_rnn", dict()),
    ("simple_rnn", dict(activation="relu", use_bias=False)),
    ("simple_rnn", dict(go_backwards=True, return_sequences=True)),
    ("lstm", dict()),
    ("lstm", dict(return_sequences=True, go_backwards=True)),
    ("lstm", dict(recurrent_activation="hard_sigmoid", activation="linear", use_bias=False)),
    ("gru", dict()),
    ("gru", dict(reset_after=False, return_sequences=True)),
    ("gru", dict(reset_after=False, use_bias=False, go_backwards=True)),
    ("gru", dict(activation="relu", recurrent_activation="hard_sigmoid")),
]


def config_id(c):
    cell, kw = c
    return cell + "".join(f"-{k}={v}" for k, v in kw.items())


@pytest.mark.parametrize("cfg", CONFIGS, ids=[config_id(c) for c in CONFIGS])
@pytest.mark.parametrize("with_mask", [False, True])
@pytest.mark.parametrize("with_state", [False, True])
def test_backend_matches_reference(compiled_backend, cfg, with_mask, with_state, rng):
    cell, kw = cfg
    n, t, c, h = 3, 7, 5, 9
    ref = make(cell, h, c, rng, "reference", return_state=True, **kw)
    lay = CELLS[cell](h, backend=compiled_backend, return_state=True, **kw)
    lay.set_weights(ref.get_weights())
    x = rng.standard_normal((n, t, c)).astype(np.float32)
    mask = None
    if with_mask:
        mask = rng.random((n, t)) > 0.3
        mask[0] = False       # fully masked row
        mask[1, 0] = False    # masked first step
    init = None
    if with_state:
        init = [rng.standard_normal((n, h)).astype(np.float32) for _ in range(N_STATES[cell])]
    r_ref = ref(x, initial_state=init, mask=mask)
    r_lay = lay(x, initial_state=init, mask=mask)
    for name, a, b in zip(["y", "h", "c"], r_lay, r_ref):
        assert_close(a, b, "forward_f32", f"{compiled_backend} {name}")
    dy = rng.standard_normal(r_ref[0].shape).astype(np.float32)
    ds = [rng.standard_normal((n, h)).astype(np.float32) for _ in range(N_STATES[cell])]
    dx_ref = ref.backward(dy, ds)
    dx_lay = lay.backward(dy, ds)
    assert_close(dx_lay, dx_ref, "backward_f32", f"{compiled_backend} dx")
    for name, a, b in zip(lay._weight_names(), lay.grads, ref.grads):
        assert_close(a, b, "backward_f32", f"{compiled_backend} d{name}")
    if with_state:
        for i, (a, b) in enumerate(zip(lay.state_grads, ref.state_grads)):
            assert_close(a, b, "backward_f32", f"{compiled_backend} dstate[{i}]")
    else:
        assert lay.state_grads is None and ref.state_grads is None


# ------------------------------------------- layer BPTT vs finite differences

def _ref_loss64(cell, kw, x, ws, states, mask, R):
    """float64 loss sum(y*Ry) + sum(h*Rh) (+ sum(c*Rc)) through rnnkern.reference."""
    use_bias = kw.get("use_bias", True)
    W, U = ws[0], ws[1]
    b = ws[2] if use_bias else None
    h0 = states[0]
    c0 = states[1] if cell == "lstm" else None
    y, h, c, _ = reference.rnn_forward(
        cell, x, W, U, b, h0, c0, mask, activation=kw.get("activation", "tanh"),
        recurrent_activation=kw.get("recurrent_activation", "sigmoid"),
        reset_after=kw.get("reset_after", True), go_backwards=kw.get("go_backwards", False),
        return_sequences=kw.get("return_sequences", False), training=False)
    assert y.dtype == np.float64
    loss = np.sum(y * R[0]) + np.sum(h * R[1])
    if cell == "lstm":
        loss += np.sum(c * R[2])
    return loss


def _fd_grad(f, arr, eps=1e-6):
    g = np.zeros_like(arr)
    flat, gflat = arr.reshape(-1), g.reshape(-1)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + eps
        fp = f()
        flat[i] = old - eps
        fm = f()
        flat[i] = old
        gflat[i] = (fp - fm) / (2 * eps)
    return g


GRAD_CASES = [
    ("simple_rnn", dict(return_sequences=True)),
    ("lstm", dict(return_sequences=True, go_backwards=True)),
    ("gru", dict(return_sequences=False)),
    ("gru", dict(return_sequences=True, reset_after=False)),
]


@pytest.mark.parametrize("cfg", GRAD_CASES, ids=[config_id(c) for c in GRAD_CASES])
def test_backward_vs_finite_differences(backend_name, cfg, rng):
    cell, kw = cfg
    n, t, c, h = 2, 4, 3, 3
    layer = make(cell, h, c, rng, backend_name, return_state=True, **kw)
    x = rng.standard_normal((n, t, c)).astype(np.float32)
    init = [rng.standard_normal((n, h)).astype(np.float32) * 0.5
            for _ in range(N_STATES[cell])]
    mask = np.ones((n, t), bool)
    mask[1, 1] = False
    y, *states = layer(x, initial_state=init, mask=mask)
    R = [rng.standard_normal(y.shape)] + [rng.standard_normal((n, h))
                                          for _ in range(N_STATES[cell])]
    dx = layer.backward(R[0].astype(np.float32), [r.astype(np.float32) for r in R[1:]])

    x64 = x.astype(np.float64)
    ws64 = [w.astype(np.float64) for w in layer.get_weights()]
    st64 = [s.astype(np.float64) for s in init]

    def f():
        return _ref_loss64(cell, kw, x64, ws64, st64, mask, R)

    assert_close(dx, _fd_grad(f, x64), "backward_f32", "dx")
    for name, g, w in zip(layer._weight_names(), layer.grads, ws64):
        assert_close(g, _fd_grad(f, w), "backward_f32", f"d{name}")
    for i, (g, s) in enumerate(zip(layer.state_grads, st64)):
        assert_close(g, _fd_grad(f, s), "backward_f32", f"dstate[{i}]")


# -------------------------------------------------------------------- weights

@pytest.mark.parametrize("cell", list(CELLS))
def test_get_set_weights_round_trip(cell, rng):
    a = make(cell, 4, 3, rng)
    ws = a.get_weights()
    assert all(w.dtype == np.float32 for w in ws)
    b = CELLS[cell](4, backend="reference")
    assert not b.built and b.weights == []
    b.set_weights([w.astype(np.float64) for w in ws])  # builds from the shapes
    assert b.built
    for u, v in zip(b.get_weights(), ws):
        assert u.dtype == np.float32
        np.testing.assert_array_equal(u, v)
    x = rng.standard_normal((2, 3, 3)).astype(np.float32)
    np.testing.assert_array_equal(a(x), b(x))
    # get_weights returns copies; weights returns the arrays themselves
    b.get_weights()[0][:] = 7
    assert not np.any(b.kernel == 7)
    assert b.weights[0] is b.kernel


@pytest.mark.parametrize("cell,kw,formula", [
    ("simple_rnn", {}, lambda i, h: h * (i + h + 1)),
    ("simple_rnn", {"use_bias": False}, lambda i, h: h * (i + h)),
    ("lstm", {}, lambda i, h: 4 * h * (i + h + 1)),
    ("lstm", {"use_bias": False}, lambda i, h: 4 * h * (i + h)),
    ("gru", {}, lambda i, h: 3 * h * (i + h + 2)),
    ("gru", {"reset_after": False}, lambda i, h: 3 * h * (i + h + 1)),
    ("gru", {"use_bias": False}, lambda i, h: 3 * h * (i + h)),
])
def test_count_params(cell, kw, formula):
    layer = CELLS[cell](7, backend="reference", **kw)
    layer.build((None, 5, 11))
    assert layer.count_params() == formula(11, 7)
    assert [w.shape for w in layer.get_weights()][:2] == [
        (11, layer._gates * 7), (7, layer._gates * 7)]


def test_gru_bias_shapes():
    g = rk.GRU(4, backend="reference")
    g.build((None, None, 2))
    assert g.bias.shape == (2, 12)
    g = rk.GRU(4, reset_after=False, backend="reference")
    g.build((None, None, 2))
    assert g.bias.shape == (12,)


# --------------------------------------------------------------- initializers

@pytest.mark.parametrize("cell,gates", [("simple_rnn", 1), ("lstm", 4), ("gru", 3)])
def test_initializer_statistics(cell, gates):
    h, c = 32, 48
    layer = CELLS[cell](h, seed=3, backend="reference")
    layer.build((None, None, c))
    U = layer.recurrent_kernel.astype(np.float64)
    # Keras 3 orthogonal on the whole (H, G*H) matrix: orthonormal rows
    np.testing.assert_allclose(U @ U.T, np.eye(h), atol=1e-5)
    if gates == 1:
        np.testing.assert_allclose(U.T @ U, np.eye(h), atol=1e-5)
    W = layer.kernel
    limit = np.sqrt(6.0 / (c + gates * h))
    assert np.all(np.abs(W) <= limit)
    assert np.abs(W).max() > 0.95 * limit
    assert abs(W.std() - limit / np.sqrt(3)) < 0.08 * limit
    assert abs(W.mean()) < 0.05 * limit
    if cell == "lstm":  # unit_forget_bias
        b = layer.bias
        np.testing.assert_array_equal(b[h:2 * h], 1)
        np.testing.assert_array_equal(b[:h], 0)
        np.testing.assert_array_equal(b[2 * h:], 0)
    else:
        np.testing.assert_array_equal(layer.bias, 0)


def test_unit_forget_bias_off_and_bias_initializer():
    layer = rk.LSTM(3, unit_forget_bias=False, backend="reference")
    layer.build((None, None, 2))
    np.testing.assert_array_equal(layer.bias, 0)
    layer = rk.LSTM(3, bias_initializer="ones", backend="reference")
    layer.build((None, None, 2))
    np.testing.assert_array_equal(layer.bias, 1)  # ones + the forget block of ones


def test_initializers_module():
    rng = np.random.default_rng(0)
    tall = initializers.get("orthogonal")((40, 10), rng=rng).astype(np.float64)
    np.testing.assert_allclose(tall.T @ tall, np.eye(10), atol=1e-5)
    gn = initializers.get("GlorotNormal")((300, 200), rng=rng)
    s = np.sqrt(2.0 / 500)
    assert abs(gn.std() - s) < 0.05 * s and np.abs(gn).max() <= 2 * s / 0.8796256610342398 + 1e-6
    assert isinstance(initializers.get("glorot_uniform"), initializers.GlorotUniform)
    assert initializers.get("zeros")((2, 3)).dtype == np.float32
    seeded = initializers.Orthogonal(seed=5)
    np.testing.assert_array_equal(seeded((4, 8)), seeded((4, 8)))
    with pytest.raises(ValueError, match="unknown initializer"):
        initializers.get("no_such_init")

    calls = []

    def my_init(shape, dtype):
        calls.append((shape, dtype))
        return np.full(shape, 0.25)

    layer = rk.SimpleRNN(2, kernel_initializer=my_init, backend="reference")
    layer.build((None, None, 3))
    np.testing.assert_array_equal(layer.kernel, 0.25)
    assert calls == [((3, 2), "float32")]


def test_seed_reproducibility(rng):
    x = rng.standard_normal((4, 5, 3)).astype(np.float32)
    a = rk.LSTM(6, seed=42, dropout=0.4, backend="reference")
    b = rk.LSTM(6, seed=42, dropout=0.4, backend="reference")
    a.build(x.shape)
    b.build(x.shape)
    for u, v in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(u, v)
    np.testing.assert_array_equal(a(x, training=True), b(x, training=True))
    c = rk.LSTM(6, seed=43, backend="reference")
    c.build(x.shape)
    assert not np.array_equal(a.kernel, c.kernel)


# -------------------------------------------------------- stateful and modes

@pytest.mark.parametrize("cell", list(CELLS))
def test_stateful_carries_and_resets(backend_name, cell, rng):
    n, t, c, h = 2, 6, 3, 4
    x = rng.standard_normal((n, t, c)).astype(np.float32)
    full = make(cell, h, c, rng, backend_name, return_sequences=True)
    st = CELLS[cell](h, stateful=True, return_sequences=True, backend=backend_name)
    st.set_weights(full.get_weights())
    y_full = full(x)
    y1, y2 = st(x[:, :3]), st(x[:, 3:])
    assert_close(np.concatenate([y1, y2], axis=1), y_full, "forward_f32", "stateful")
    assert len(st.states) == N_STATES[cell] and st.states[0].shape == (n, h)
    st.reset_states()
    assert st.states is None
    np.testing.assert_array_equal(st(x[:, :3]), y1)
    st.reset_states()
    assert st(x[:1, :3]).shape == (1, 3, h)  # a new batch size after a reset


def test_training_false_keeps_nothing(backend_name, rng):
    layer = make("gru", 3, 2, rng, backend_name)
    x = rng.standard_normal((2, 3, 2)).astype(np.float32)
    y = layer(x, training=False)
    np.testing.assert_array_equal(y, layer(x))  # same values as training=None
    layer(x, training=False)
    with pytest.raises(RuntimeError, match="training=False"):
        layer.backward(np.ones_like(y))
    fresh = rk.GRU(3, backend=backend_name)
    with pytest.raises(RuntimeError, match="preceding call"):
        fresh.backward(np.ones((2, 3), np.float32))


@pytest.mark.parametrize("cell", list(CELLS))
def test_grads_replaced_not_accumulated(backend_name, cell, rng):
    layer = make(cell, 3, 2, rng, backend_name, return_sequences=True)
    init = [rng.standard_normal((2, 3)).astype(np.float32) for _ in range(N_STATES[cell])]
    x = rng.standard_normal((2, 4, 2)).astype(np.float32)
    dy = rng.standard_normal((2, 4, 3)).astype(np.float32)
    layer(x, initial_state=init)
    dx1 = layer.backward(dy)
    g1 = [g.copy() for g in layer.grads]
    s1 = [s.copy() for s in layer.state_grads]
    dx2 = layer.backward(dy)
    np.testing.assert_array_equal(dx1, dx2)
    for a, b in zip(layer.grads, g1):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(layer.state_grads, s1):
        np.testing.assert_array_equal(a, b)
    layer.backward(2 * dy)  # linear in dy: exactly twice, not three times
    for a, b in zip(layer.grads, g1):
        assert_close(a, 2 * b, "forward_f32", "2*grads")
    layer(x)  # no initial_state: state_grads None after the next backward
    layer.backward(dy)
    assert layer.state_grads is None
    assert len(layer.grads) == len(layer.get_weights())


def test_deterministic(backend_name, rng):
    layer = make("lstm", 5, 3, rng, backend_name, return_sequences=True)
    x = rng.standard_normal((3, 6, 3)).astype(np.float32)
    dy = rng.standard_normal((3, 6, 5)).astype(np.float32)
    y1, dx1, g1 = layer(x), layer.backward(dy), layer.grads
    y2, dx2, g2 = layer(x), layer.backward(dy), layer.grads
    np.testing.assert_array_equal(y1, y2)
    np.testing.assert_array_equal(dx1, dx2)
    for a, b in zip(g1, g2):
        np.testing.assert_array_equal(a, b)


# --------------------------------------------------------------------- dropout

@pytest.mark.parametrize("cell", list(CELLS))
def test_dropout(backend_name, cell, rng):
    n, t, c, h, p = 8, 5, 6, 4, 0.5
    x = rng.standard_normal((n, t, c)).astype(np.float32)
    plain = make(cell, h, c, rng, backend_name, return_sequences=True)
    drop = CELLS[cell](h, dropout=p, seed=7, return_sequences=True, backend=backend_name)
    drop.set_weights(plain.get_weights())
    y_plain = plain(x)
    np.testing.assert_array_equal(drop(x), y_plain)                  # training=None
    np.testing.assert_array_equal(drop(x, training=False), y_plain)
    y_drop = drop(x, training=True)
    assert not np.allclose(y_drop, y_plain)
    dx = drop.backward(np.ones_like(y_drop))
    # one [N, C] mask per call, shared by every timestep (and gate)
    kept = dx[:, 0, :] != 0
    assert np.array_equal(dx != 0, np.broadcast_to(kept[:, None, :], dx.shape))
    assert 0 < kept.sum() < kept.size
    m = (kept / (1 - p)).astype(np.float32)
    y_manual = plain(x * m[:, None, :])
    assert_close(y_drop, y_manual, "forward_f32", "dropout = plain(x * mask)")
    dx_manual = plain.backward(np.ones_like(y_drop)) * m[:, None, :]
    assert_close(dx, dx_manual, "backward_f32", "dropout dx")
    # a new mask per call; NumPy bools work as training flags
    y_drop2 = drop(x, training=np.bool_(True))
    assert not np.array_equal(y_drop, y_drop2)
    np.testing.assert_array_equal(drop(x, training=np.bool_(False)), y_plain)


def test_recurrent_dropout_is_supported(backend_name, rng):
    """recurrent_dropout > 0 builds and runs (its semantics: test_recurrent_dropout.py);
    training=None and False give the plain results."""
    x = rng.standard_normal((4, 5, 3)).astype(np.float32)
    for cell in CELLS:
        plain = make(cell, 6, 3, rng, backend_name, return_sequences=True)
        drop = CELLS[cell](6, recurrent_dropout=0.3, dropout=0.2, seed=1, return_sequences=True,
                           backend=backend_name)
        drop.set_weights(plain.get_weights())
        y = plain(x)
        np.testing.assert_array_equal(drop(x), y)
        np.testing.assert_array_equal(drop(x, training=False), y)
        y_drop = drop(x, training=True)
        assert y_drop.shape == y.shape and not np.allclose(y_drop, y)
        assert drop.backward(np.ones_like(y)).shape == x.shape
        assert drop.get_config()["recurrent_dropout"] == 0.3


# ----------------------------------------------------------- inputs, edge cases

@pytest.mark.parametrize("cell", list(CELLS))
@pytest.mark.parametrize("return_sequences", [False, True])
def test_empty_batch(backend_name, cell, return_sequences, rng):
    layer = make(cell, 4, 3, rng, backend_name, return_sequences=return_sequences,
                 return_state=True)
    y, *states = layer(np.zeros((0, 5, 3), np.float32))
    assert y.shape == ((0, 5, 4) if return_sequences else (0, 4)) and y.dtype == np.float32
    assert [s.shape for s in states] == [(0, 4)] * N_STATES[cell]
    dx = layer.backward(np.zeros_like(y))
    assert dx.shape == (0, 5, 3)
    assert [g.shape for g in layer.grads] == [w.shape for w in layer.get_weights()]
    assert all(not g.any() for g in layer.grads)


def test_dtype_conversion_and_layout(backend_name, rng):
    layer = make("lstm", 4, 3, rng, backend_name, return_sequences=True)
    x64 = rng.standard_normal((3, 5, 3))
    y32 = layer(x64.astype(np.float32))
    y64 = layer(x64)
    assert y64.dtype == np.float32
    np.testing.assert_array_equal(y64, y32)
    np.testing.assert_array_equal(layer(x64.astype(np.float16)),
                                  layer(x64.astype(np.float16).astype(np.float32)))
    # non-contiguous (time-major transposed, strided) input
    xt = np.asfortranarray(x64.astype(np.float32))
    np.testing.assert_array_equal(layer(xt), y32)
    big = rng.standard_normal((3, 10, 3)).astype(np.float32)
    np.testing.assert_array_equal(layer(big[:, ::2]), layer(np.ascontiguousarray(big[:, ::2])))


def test_mask_int_equals_bool(backend_name, rng):
    layer = make("gru", 4, 3, rng, backend_name, return_sequences=True)
    x = rng.standard_normal((3, 5, 3)).astype(np.float32)
    m = rng.random((3, 5)) > 0.4
    np.testing.assert_array_equal(layer(x, mask=m.astype(np.int64)), layer(x, mask=m))
    np.testing.assert_array_equal(layer(x, mask=np.ones((3, 5), bool)), layer(x))


def test_mask_keras_semantics(backend_name, rng):
    layer = make("simple_rnn", 3, 2, rng, backend_name, return_sequences=True,
                 return_state=True)
    x = rng.standard_normal((2, 4, 2)).astype(np.float32)
    h0 = rng.standard_normal((2, 3)).astype(np.float32)
    m = np.array([[False, True, False, True], [False, False, False, False]])
    y, h = layer(x, initial_state=h0, mask=m)
    np.testing.assert_array_equal(y[0, 0], 0)            # zeros before the first unmasked step
    np.testing.assert_array_equal(y[0, 2], y[0, 1])      # repeats the previous output
    np.testing.assert_array_equal(y[1], 0)               # fully masked row: zeros ...
    np.testing.assert_array_equal(h[1], h0[1])           # ... and returns the initial state


def test_go_backwards_is_processing_order(backend_name, rng):
    fwd = make("lstm", 4, 3, rng, backend_name, return_sequences=True, return_state=True)
    bwd = rk.LSTM(4, go_backwards=True, return_sequences=True, return_state=True,
                  backend=backend_name)
    bwd.set_weights(fwd.get_weights())
    x = rng.standard_normal((2, 5, 3)).astype(np.float32)
    for a, b in zip(bwd(x), fwd(x[:, ::-1])):
        assert_close(a, b, "forward_f32", "go_backwards")


def test_single_array_initial_state(backend_name, rng):
    layer = make("gru", 3, 2, rng, backend_name)
    x = rng.standard_normal((2, 3, 2)).astype(np.float32)
    h0 = rng.standard_normal((2, 3)).astype(np.float32)
    np.testing.assert_array_equal(layer(x, initial_state=h0), layer(x, initial_state=[h0]))
    assert not np.array_equal(layer(x, initial_state=h0), layer(x))


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_nan_propagates(backend_name, rng):
    layer = make("lstm", 3, 2, rng, backend_name, return_sequences=True)
    x = rng.standard_normal((2, 4, 2)).astype(np.float32)
    x[0, 1, 0] = np.nan
    y = layer(x)
    assert np.isnan(y[0, 1:]).all()
    assert not np.isnan(y[0, 0]).any() and not np.isnan(y[1]).any()
    dx = layer.backward(np.ones_like(y))
    assert dx.shape == x.shape


# ------------------------------------------------ read-only weights, packing

@pytest.mark.parametrize("cell", list(CELLS))
def test_weights_are_read_only_and_assignable(backend_name, cell, rng):
    layer = make(cell, 5, 3, rng, backend=backend_name)
    x = rng.standard_normal((2, 4, 3)).astype(np.float32)
    y0 = layer(x)
    for w in layer.weights:
        with pytest.raises(ValueError, match="read-only"):
            w[...] = 0
    with pytest.raises(ValueError, match="read-only"):
        layer.kernel -= 1.0
    # assignment (the way to update) takes a float32 copy and changes the output
    ws = [w + 0.1 * rng.standard_normal(w.shape) for w in layer.get_weights()]
    layer.kernel, layer.recurrent_kernel = ws[0], ws[1]
    if layer.use_bias:
        layer.bias = ws[2]
    ws[1][:] = 0  # the caller's array stays the caller's
    assert layer.recurrent_kernel.dtype == np.float32 and np.any(layer.recurrent_kernel != 0)
    ref = make(cell, 5, 3, rng)  # reference backend
    ref.set_weights(layer.get_weights())
    y1 = layer(x)
    assert not np.allclose(y0, y1)
    assert_close(y1, ref(x), "forward_f32")
    with pytest.raises(ValueError, match=r"recurrent_kernel must have shape \(5, "):
        layer.recurrent_kernel = np.zeros((4, 4), np.float32)
    with pytest.raises(TypeError, match="kernel must be a real array"):
        layer.kernel = np.full(layer.kernel.shape, "a")
    with pytest.raises(ValueError, match="not built yet"):
        CELLS[cell](3).kernel = np.zeros((2, 3 * GATES[cell]), np.float32)




@pytest.mark.parametrize("cell,kw", [("simple_rnn", {}), ("lstm", {}), ("gru", {}),
                                     ("gru", {"reset_after": False})])
def test_packed_recurrent_kernel_is_cached_until_assigned(compiled_backend, cell, kw, rng):
    layer = make(cell, 6, 3, rng, backend=compiled_backend, **kw)
    x = rng.standard_normal((3, 5, 3)).astype(np.float32)
    y0 = layer(x)
    packed = layer._packed
    assert packed is not None and packed.isa == compiled_backend
    layer(x)
    assert layer._packed is packed  # reused while the weights are unchanged
    layer.backward(np.ones_like(y0))
    # a new recurrent kernel: repacked, and the results follow the new weights
    ws = layer.get_weights()
    ws[1] = ws[1] * 0.5
    layer.set_weights(ws)
    assert layer._packed is None
    ref = make(cell, 6, 3, rng, **kw)
    ref.set_weights(ws)
    y1 = layer(x)
    assert layer._packed is not None and layer._packed is not packed
    assert_close(y1, ref(x), "forward_f32")
    dx, dx_ref = layer.backward(np.ones_like(y1)), ref.backward(np.ones_like(y1))
    assert_close(dx, dx_ref, "backward_f32")
    for g, gr in zip(layer.grads, ref.grads):
        assert_close(g, gr, "backward_f32")
    layer.recurrent_kernel = ws[1] * 2.0
    ref.recurrent_kernel = ws[1] * 2.0
    assert_close(layer(x), ref(x), "forward_f32")
    layer.backend = "reference"  # switching backend drops the packing too
    assert layer._packed is None
    assert_close(layer(x), ref(x), "forward_f32")


def test_layer_pickles_after_calls(compiled_backend, rng):
    import pickle
    layer = make("lstm", 4, 3, rng, backend=compiled_backend)
    x = rng.standard_normal((2, 3, 3)).astype(np.float32)
    y = layer(x)
    layer.backward(np.ones_like(y))
    clone = pickle.loads(pickle.dumps(layer))
    np.testing.assert_array_equal(clone(x), layer(x))
    assert not clone.kernel.flags.writeable


def test_large_layers_pack_per_call(compiled_backend, rng, monkeypatch):
    """Past the keep limit a layer does not hold packed copies of its kernels, and
    its results are the same."""
    from rnnkern.layers import recurrent as L
    layer = make("lstm", 8, 3, rng, backend=compiled_backend)
    x = rng.standard_normal((2, 4, 3)).astype(np.float32)
    y_kept = layer(x)
    assert layer._packed is not None
    monkeypatch.setattr(L, "_PACK_KEEP_BYTES", layer.kernel.nbytes)  # below the need
    layer.set_weights(layer.get_weights())
    np.testing.assert_array_equal(layer(x), y_kept)
    assert layer._packed is None
