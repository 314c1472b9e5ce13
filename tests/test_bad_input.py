"""Every bad input to the layers raises the right exception, with a message that
names the offending argument, on every backend; nothing crashes."""
import numpy as np
import pytest

import rnnkern as rk

CELLS = [rk.SimpleRNN, rk.LSTM, rk.GRU]
X = np.zeros((2, 3, 4), np.float32)


def built(cls=rk.LSTM, backend="reference", **kw):
    layer = cls(5, backend=backend, **kw)
    layer.build((None, None, 4))
    return layer


# ---------------------------------------------------------------- constructor

@pytest.mark.parametrize("cls", CELLS)
@pytest.mark.parametrize("units,exc", [(0, ValueError), (-3, ValueError), (2.5, TypeError),
                                       ("8", TypeError), (True, TypeError), (None, TypeError)])
def test_bad_units(cls, units, exc):
    with pytest.raises(exc, match="units"):
        cls(units)


@pytest.mark.parametrize("cls", CELLS)
def test_bad_activation(cls):
    with pytest.raises(ValueError, match="activation.*tanh"):
        cls(3, activation="softmax")


@pytest.mark.parametrize("cls", [rk.LSTM, rk.GRU])
def test_bad_recurrent_activation(cls):
    with pytest.raises(ValueError, match="recurrent_activation"):
        cls(3, recurrent_activation="swish")


def test_bad_backend_lists_available():
    with pytest.raises(ValueError, match=r"backend.*reference") as e:
        rk.GRU(3, backend="tpu")
    for name in rk.backends():
        assert name in str(e.value)
    layer = rk.GRU(3)
    with pytest.raises(ValueError, match="backend"):
        layer.backend = "nope"


@pytest.mark.parametrize("kw,exc,match", [
    (dict(kernel_initializer="nope"), ValueError, "initializer"),
    (dict(recurrent_initializer=3), ValueError, "initializer"),
    (dict(seed=-1), ValueError, "seed"),
    (dict(seed=1.5), ValueError, "seed"),
    (dict(dropout="0.1"), TypeError, "dropout"),
    (dict(return_sequences="yes"), TypeError, "return_sequences"),
    (dict(recurrent_dropout="0.3"), TypeError, "recurrent_dropout"),
    (dict(recurrent_dropout=True), TypeError, "recurrent_dropout"),
])
def test_bad_constructor_args(kw, exc, match):
    with pytest.raises(exc, match=match):
        rk.LSTM(3, **kw)


def test_absurd_units_never_crash():
    layer = rk.LSTM(10**12)
    with pytest.raises((ValueError, MemoryError)):
        layer.build((None, None, 3))
    with pytest.raises((ValueError, MemoryError)):
        layer(X)
    layer = rk.GRU(10**6)  # (H, 3H) float32 is 12 TB
    with pytest.raises((ValueError, MemoryError)):
        layer(X)


# ------------------------------------------------------------------------- x

@pytest.mark.parametrize("dtype", [np.int32, np.int64, np.uint8, bool, np.complex64, object])
def test_x_bad_dtype(backend_name, dtype):
    layer = built(backend=backend_name)
    with pytest.raises(TypeError, match=r"x must be.*float32"):
        layer(np.zeros((2, 3, 4), dtype=dtype))


def test_x_strings():
    with pytest.raises(TypeError, match="x must be"):
        built()(np.full((2, 3, 4), "a"))


@pytest.mark.parametrize("shape", [(3, 4), (4,), (), (1, 2, 3, 4)])
def test_x_bad_ndim(backend_name, shape):
    layer = built(backend=backend_name)
    with pytest.raises(ValueError, match=r"x must be 3-D \(batch, timesteps, features\)"):
        layer(np.zeros(shape, np.float32))


def test_x_feature_mismatch(backend_name):
    layer = built(backend=backend_name)
    with pytest.raises(ValueError, match=r"x has 7 features.*built for 4"):
        layer(np.zeros((2, 3, 7), np.float32))


def test_x_zero_timesteps(backend_name):
    layer = rk.GRU(3, backend=backend_name)
    with pytest.raises(ValueError, match="x has 0 timesteps"):
        layer(np.zeros((2, 0, 4), np.float32))
    assert not layer.built


def test_x_zero_features():
    with pytest.raises(ValueError, match="x has 0 features"):
        rk.GRU(3)(np.zeros((2, 3, 0), np.float32))


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_nan_and_inf_do_not_crash(backend_name):
    for cls in CELLS:
        layer = built(cls, backend=backend_name, return_sequences=True)
        x = np.full((2, 3, 4), np.nan, np.float32)
        x[1] = np.inf
        y = layer(x)
        assert np.isnan(y[0]).all()
        dx = layer.backward(np.ones_like(y))
        assert dx.shape == x.shape


# ------------------------------------------------------------- initial_state

@pytest.mark.parametrize("states,match", [
    ([np.zeros((2, 5), np.float32)], r"initial_state must be a list of 2 arrays \[h, c\]"),
    (np.zeros((2, 5), np.float32), r"initial_state must be a list of 2 arrays"),
    ([np.zeros((2, 5))] * 3, r"initial_state must be a list of 2 arrays"),
    ([np.zeros((2, 4)), np.zeros((2, 5))], r"initial_state\[0\] has shape \(2, 4\), "
                                           r"expected \(N, H\) = \(2, 5\)"),
    ([np.zeros((2, 5)), np.zeros((3, 5))], r"initial_state\[1\] has shape \(3, 5\), "
                                           r"expected \(N, H\) = \(2, 5\)"),
    ([np.zeros((2, 5)), np.zeros(10)], r"initial_state\[1\].*expected \(N, H\)"),
])
def test_initial_state_bad_lstm(backend_name, states, match):
    with pytest.raises(ValueError, match=match):
        built(rk.LSTM, backend=backend_name)(X, initial_state=states)


def test_initial_state_bad_gru_and_dtype(backend_name):
    layer = built(rk.GRU, backend=backend_name)
    with pytest.raises(ValueError, match=r"initial_state must be a list of 1 arrays \[h\]"):
        layer(X, initial_state=[np.zeros((2, 5))] * 2)
    with pytest.raises(ValueError, match=r"initial_state\[0\] has shape"):
        layer(X, initial_state=np.zeros((5, 2)))
    with pytest.raises(TypeError, match=r"initial_state\[0\] must be"):
        layer(X, initial_state=[np.zeros((2, 5), np.int32)])


# ---------------------------------------------------------------------- mask

@pytest.mark.parametrize("shape", [(2,), (3, 2), (2, 4), (2, 3, 1)])
def test_mask_bad_shape(backend_name, shape):
    with pytest.raises(ValueError, match=r"mask has shape .*expected \(N, T\) = \(2, 3\)"):
        built(backend=backend_name)(X, mask=np.ones(shape, bool))


def test_mask_bad_dtype():
    with pytest.raises(TypeError, match="mask must be"):
        built()(X, mask=np.full((2, 3), "x"))


def test_training_bad_value():
    with pytest.raises(TypeError, match="training"):
        built()(X, training="yes")


# ------------------------------------------------------------------ backward

def test_backward_bad_d_output(backend_name):
    layer = built(backend=backend_name, return_state=True)
    y, h, c = layer(X)
    with pytest.raises(ValueError, match=r"d_output has shape \(2, 3, 5\), expected \(2, 5\)"):
        layer.backward(np.zeros((2, 3, 5), np.float32))
    with pytest.raises(TypeError, match="d_output must be"):
        layer.backward(np.zeros((2, 5), np.int64))


@pytest.mark.parametrize("d_states,exc,match", [
    ([np.zeros((2, 5))], ValueError, r"d_states must be a list of 2"),
    ([np.zeros((2, 4)), None], ValueError, r"d_states\[0\] has shape \(2, 4\)"),
    ([None, np.zeros((3, 5))], ValueError, r"d_states\[1\] has shape \(3, 5\)"),
    (np.zeros((2, 5)), TypeError, r"d_states must be a list"),
])
def test_backward_bad_d_states(backend_name, d_states, exc, match):
    layer = built(backend=backend_name, return_state=True)
    y, h, c = layer(X)
    with pytest.raises(exc, match=match):
        layer.backward(np.zeros_like(y), d_states)


def test_backward_without_cache():
    layer = built()
    with pytest.raises(RuntimeError, match="preceding call"):
        layer.backward(np.zeros((2, 5), np.float32))
    layer(X, training=False)
    with pytest.raises(RuntimeError, match="training=False"):
        layer.backward(np.zeros((2, 5), np.float32))


def test_failed_call_clears_cache():
    layer = built()
    layer(X)
    with pytest.raises(ValueError):
        layer(np.zeros((2, 3, 9), np.float32))
    with pytest.raises(RuntimeError, match="preceding call"):
        layer.backward(np.zeros((2, 5), np.float32))


# ------------------------------------------------------------------- weights

def test_set_weights_bad():
    layer = built(rk.LSTM)
    ws = layer.get_weights()
    with pytest.raises(ValueError, match=r"has 3 weights.*got a list of 2"):
        layer.set_weights(ws[:2])
    with pytest.raises(ValueError, match=r"kernel has shape \(3, 20\), expected \(4, 20\)"):
        layer.set_weights([np.zeros((3, 20)), ws[1], ws[2]])
    with pytest.raises(ValueError, match=r"recurrent_kernel has shape \(5, 15\), expected"):
        layer.set_weights([ws[0], np.zeros((5, 15)), ws[2]])
    with pytest.raises(ValueError, match=r"bias has shape \(2, 20\), expected \(20,\)"):
        layer.set_weights([ws[0], ws[1], np.zeros((2, 20))])
    with pytest.raises(TypeError, match=r"bias must be a real array"):
        layer.set_weights([ws[0], ws[1], np.zeros(20, complex)])
    with pytest.raises(TypeError, match="set_weights expects a list"):
        layer.set_weights(ws[0])


def test_set_weights_unbuilt_checks_consistency():
    layer = rk.GRU(5)
    with pytest.raises(ValueError, match=r"kernel has shape \(4, 12\), expected \(input_dim, 15\)"):
        layer.set_weights([np.zeros((4, 12)), np.zeros((5, 15)), np.zeros((2, 15))])
    with pytest.raises(ValueError,
                       match=r"recurrent_kernel has shape \(4, 15\), expected \(5, 15\)"):
        layer.set_weights([np.zeros((4, 15)), np.zeros((4, 15)), np.zeros((2, 15))])
    with pytest.raises(ValueError, match=r"bias has shape \(15,\), expected \(2, 15\)"):
        layer.set_weights([np.zeros((4, 15)), np.zeros((5, 15)), np.zeros(15)])
    assert not layer.built


def test_count_params_unbuilt():
    with pytest.raises(ValueError, match="isn't built"):
        rk.SimpleRNN(3).count_params()


@pytest.mark.parametrize("shape", [(3, 4), (None, None, 0), (None, None, "a"), 5])
def test_build_bad_input_shape(shape):
    with pytest.raises(ValueError, match="input_shape"):
        rk.LSTM(3).build(shape)


# ------------------------------------------------------------------ stateful

def test_stateful_batch_size_must_stay_fixed(backend_name):
    layer = built(rk.GRU, backend=backend_name, stateful=True)
    layer(X)
    with pytest.raises(ValueError, match=r"batch size 2.*got x with batch size 3"):
        layer(np.zeros((3, 3, 4), np.float32))
    layer.reset_states()
    layer(np.zeros((3, 3, 4), np.float32))


# ----------------------------------------------------------- dropout masks (ops)

def test_dropout_mask_arguments_checked(backend_name):
    """ops.rnn_forward's per-gate masks: wrong shapes and dtypes are clear errors
    on every backend (the compiled ones check them in the bindings)."""
    from rnnkern import ops
    rng = np.random.default_rng(0)
    n, t, c, h = 2, 3, 4, 5
    x = rng.standard_normal((n, t, c)).astype(np.float32)
    W = rng.standard_normal((c, 4 * h)).astype(np.float32)
    U = rng.standard_normal((h, 4 * h)).astype(np.float32)
    h0 = np.zeros((n, h), np.float32)

    def run(**kw):
        return ops.rnn_forward("lstm", x, W, U, None, h0, h0, None, backend=backend_name, **kw)

    with pytest.raises(ValueError, match=r"recurrent_masks must have shape \(G, N, H\)"):
        run(recurrent_masks=np.ones((3, n, h), np.float32))
    with pytest.raises(ValueError, match=r"input_masks must have shape \(G, N, C\)"):
        run(input_masks=np.ones((4, n, h), np.float32))
    with pytest.raises(ValueError, match="input_masks must have shape"):
        run(input_masks=np.ones((n, c), np.float32))
    if backend_name != "reference":  # the reference converts whatever NumPy can
        with pytest.raises(TypeError, match="recurrent_masks must be a float array"):
            run(recurrent_masks=np.ones((4, n, h), np.int32))
        with pytest.raises(TypeError, match="input_masks must be a float array"):
            run(input_masks=[[[1.0] * c] * n] * 4)
    run(input_masks=np.ones((4, n, c)), recurrent_masks=np.ones((4, n, h)))  # float64 is fine
