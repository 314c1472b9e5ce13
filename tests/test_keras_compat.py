"""Keras 3 is the contract: a Keras layer's weights copied into an rnnkern layer
give Keras' outputs (every cell and option, every backend), and our BPTT gives
the gradients torch autograd computes through the Keras layer."""
import os

os.environ.setdefault("KERAS_BACKEND", "torch")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

keras = pytest.importorskip("keras")
torch = pytest.importorskip("torch")
if keras.backend.backend() != "torch":
    pytest.skip("needs Keras on the torch backend (KERAS_BACKEND=torch) for autograd",
                allow_module_level=True)

import rnnkern as rk  # noqa: E402
from tolerances import assert_close  # noqa: E402

KERAS = {"simple_rnn": keras.layers.SimpleRNN, "lstm": keras.layers.LSTM,
         "gru": keras.layers.GRU}
OURS = {"simple_rnn": rk.SimpleRNN, "lstm": rk.LSTM, "gru": rk.GRU}
N_STATES = {"simple_rnn": 1, "lstm": 2, "gru": 1}

# Keras' own NumPy 2 deprecation noise, not ours
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")

CASES = [
    ("simple_rnn", dict()),
    ("simple_rnn", dict(activation="relu", use_bias=False, return_sequences=True)),
    ("simple_rnn", dict(go_backwards=True, return_sequences=True)),
    ("lstm", dict()),
    ("lstm", dict(return_sequences=True)),
    ("lstm", dict(go_backwards=True, return_sequences=True)),
    ("lstm", dict(use_bias=False, go_backwards=True)),
    ("lstm", dict(recurrent_activation="hard_sigmoid", activation="relu",
                  return_sequences=True)),
    ("gru", dict(reset_after=True)),
    ("gru", dict(reset_after=False)),
    ("gru", dict(reset_after=True, use_bias=False, return_sequences=True)),
    ("gru", dict(reset_after=False, use_bias=False, return_sequences=True)),
    ("gru", dict(reset_after=False, go_backwards=True, return_sequences=True)),
    ("gru", dict(reset_after=True, go_backwards=True, return_sequences=True,
                 recurrent_activation="hard_sigmoid")),
]


def case_id(c):
    cell, kw = c
    return cell + "".join(f"-{k}={v}" for k, v in kw.items())


def keras_layer(cell, kw, c, rng):
    layer = KERAS[cell](6, return_state=True, **kw)
    layer.build((None, None, c))
    # random biases too (Keras initialises them to zeros / unit forget bias)
    layer.set_weights([w + rng.uniform(-0.3, 0.3, w.shape).astype(np.float32)
                       for w in layer.get_weights()])
    return layer


def inputs(cell, n, t, c, h, rng, with_mask, with_state):
    x = rng.standard_normal((n, t, c)).astype(np.float32)
    mask = None
    if with_mask:
        mask = rng.random((n, t)) > 0.35
        mask[0, :] = False          # a fully masked row
        mask[1, :2] = False         # masked leading steps
        mask[2, -1] = False         # masked last step
    states = None
    if with_state:
        states = [rng.standard_normal((n, h)).astype(np.float32)
                  for _ in range(N_STATES[cell])]
    return x, mask, states


@pytest.mark.parametrize("case", CASES, ids=[case_id(c) for c in CASES])
@pytest.mark.parametrize("with_mask", [False, True], ids=["nomask", "mask"])
@pytest.mark.parametrize("with_state", [False, True], ids=["zerostate", "initstate"])
def test_outputs_match_keras(backend_name, case, with_mask, with_state, rng):
    cell, kw = case
    n, t, c, h = 4, 6, 5, 6
    kl = keras_layer(cell, kw, c, rng)
    ours = OURS[cell](h, return_state=True, backend=backend_name, **kw)
    ours.set_weights(kl.get_weights())
    assert ours.count_params() == kl.count_params()
    x, mask, states = inputs(cell, n, t, c, h, rng, with_mask, with_state)
    kout = kl(x, initial_state=states, mask=mask)
    out = ours(x, initial_state=states, mask=mask)
    assert len(out) == len(kout) == 1 + N_STATES[cell]
    for name, a, b in zip(["y", "h", "c"], out, kout):
        b = keras.ops.convert_to_numpy(b)
        assert a.shape == b.shape, name
        assert_close(a, b, "keras_f32", f"{backend_name} {case_id(case)} {name}")


GRAD_CASES = [c for c in CASES if c[0] in ("lstm", "gru")] + [CASES[0], CASES[2]]


@pytest.mark.parametrize("case", GRAD_CASES, ids=[case_id(c) for c in GRAD_CASES])
@pytest.mark.parametrize("with_mask", [False, True], ids=["nomask", "mask"])
def test_gradients_match_torch_autograd_through_keras(backend_name, case, with_mask, rng):
    cell, kw = case
    n, t, c, h = 3, 5, 4, 6
    kl = keras_layer(cell, kw, c, rng)
    ours = OURS[cell](h, return_state=True, backend=backend_name, **kw)
    ours.set_weights(kl.get_weights())
    x, mask, states = inputs(cell, n, t, c, h, rng, with_mask, True)

    xt = torch.tensor(x, requires_grad=True)
    st = [torch.tensor(s, requires_grad=True) for s in states]
    for v in kl.trainable_weights:
        v.value.grad = None
    kout = kl(xt, initial_state=st, mask=None if mask is None else torch.tensor(mask))
    R = [rng.standard_normal(tuple(o.shape)).astype(np.float32) for o in kout]
    loss = sum((o * torch.tensor(r)).sum() for o, r in zip(kout, R))
    loss.backward()

    out = ours(x, initial_state=states, mask=mask)
    for a, b in zip(out, kout):
        assert_close(a, b.detach().numpy(), "keras_f32", "forward")
    dx = ours.backward(R[0], R[1:])
    what = f"{backend_name} {case_id(case)}"
    # gradients sum over T steps: the backward tolerance
    assert_close(dx, xt.grad.numpy(), "backward_f32", f"{what} dx")
    assert len(ours.grads) == len(kl.trainable_weights)
    for g, v in zip(ours.grads, kl.trainable_weights):
        assert_close(g, v.value.grad.numpy(), "backward_f32", f"{what} d{v.name}")
    for i, (g, s) in enumerate(zip(ours.state_grads, st)):
        assert_close(g, s.grad.numpy(), "backward_f32", f"{what} dstate[{i}]")


@pytest.mark.parametrize("cell", list(KERAS))
@pytest.mark.parametrize("kw", [dict(), dict(use_bias=False), dict(reset_after=False)])
def test_count_params_and_weight_shapes_match_keras(cell, kw):
    if "reset_after" in kw and cell != "gru":
        pytest.skip("GRU only")
    kl = KERAS[cell](7, **kw)
    kl.build((None, None, 3))
    ours = OURS[cell](7, **kw)
    ours.build((None, None, 3))
    assert ours.count_params() == kl.count_params()
    assert [w.shape for w in ours.get_weights()] == [w.shape for w in kl.get_weights()]


@pytest.mark.parametrize("cell", list(KERAS))
def test_default_initialization_matches_keras_distribution(cell):
    """Same layout of constants (unit forget bias, zero biases) and the same
    scales as Keras' default initializers (values differ: other RNG)."""
    h, c = 24, 40
    kl = KERAS[cell](h)
    kl.build((None, None, c))
    ours = OURS[cell](h, seed=0)
    ours.build((None, None, c))
    kw, ow = kl.get_weights(), ours.get_weights()
    np.testing.assert_array_equal(ow[2], kw[2])  # biases: constants
    assert abs(ow[0].std() - kw[0].std()) < 0.1 * kw[0].std()
    assert abs(np.abs(ow[0]).max() - np.abs(kw[0]).max()) < 0.05 * np.abs(kw[0]).max()
    for U in (ow[1].astype(np.float64), kw[1].astype(np.float64)):
        np.testing.assert_allclose(U @ U.T, np.eye(h), atol=1e-5)


def test_stateful_matches_keras(backend_name, rng):
    n, t, c, h = 2, 4, 3, 6
    kl = keras.layers.GRU(h, stateful=True, return_sequences=True)
    kl.build((n, t, c))
    kl.set_weights([w + rng.uniform(-0.3, 0.3, w.shape).astype(np.float32)
                    for w in kl.get_weights()])
    ours = rk.GRU(h, stateful=True, return_sequences=True, backend=backend_name)
    ours.set_weights(kl.get_weights())
    for _ in range(2):
        x = rng.standard_normal((n, t, c)).astype(np.float32)
        assert_close(ours(x), keras.ops.convert_to_numpy(kl(x)), "keras_f32", "stateful")
    kl.reset_states()
    ours.reset_states()
    x = rng.standard_normal((n, t, c)).astype(np.float32)
    assert_close(ours(x), keras.ops.convert_to_numpy(kl(x)), "keras_f32", "after reset")
