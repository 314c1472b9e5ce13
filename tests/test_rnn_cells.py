"""keras.layers.RNN with cell classes (rnnkern/layers/rnn.py).

- RNN(SimpleRNNCell / LSTMCell / GRUCell) runs the fused layers: bitwise the
  outputs, states and gradients of SimpleRNN / LSTM / GRU with the same weights
  (masks, initial states, go_backwards, return_state, stateful, seeded dropout);
- against Keras 3 (torch backend): RNN(LSTMCell), a StackedRNNCells RNN, one step
  of each cell, and a cell of the user's running in the step loop;
- the user cell's BPTT against float64 finite differences; it trains in fit; a
  cell without backward runs inference and refuses training clearly;
- configs, .weights.h5 / .keras round trips, summary rows as Keras'.
"""
import os

os.environ.setdefault("KERAS_BACKEND", "torch")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from helpers import capture_stdout, keras_or_skip  # noqa: E402
from rnnkern.layers.base import Layer, _float64_for_tests, flatten, pack_as  # noqa: E402
from rnnkern.layers.core import Dense, Input  # noqa: E402
from rnnkern.layers.recurrent import GRU, LSTM, SimpleRNN  # noqa: E402
from rnnkern.layers.rnn import (RNN, GRUCell, LSTMCell, SimpleRNNCell,  # noqa: E402
                                StackedRNNCells)
from rnnkern.models import Sequential  # noqa: E402
from rnnkern.optimizers import Adam  # noqa: E402
from rnnkern.utils.registry import register_keras_serializable  # noqa: E402
from test_model_layers import check_gradients, set_reference  # noqa: E402
from tolerances import assert_close  # noqa: E402

# Keras' own NumPy 2 deprecation noise, not ours
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")

KINDS = {"simple_rnn": (SimpleRNNCell, SimpleRNN, {}), "lstm": (LSTMCell, LSTM, {}),
         "gru": (GRUCell, GRU, {"reset_after": True}),
         "gru_ra0": (GRUCell, GRU, {"reset_after": False})}
N_STATES = {"simple_rnn": 1, "lstm": 2, "gru": 1, "gru_ra0": 1}


# ------------------------------------------------------------- a user cell

@register_keras_serializable(package="RnnkernTest")
class MinimalRNNCell(Layer):
    """Keras' RNN guide cell with a tanh, h = tanh(x W + h U), and its step backward."""

    _call_args = ("states", "training")
    _tensor_kwargs = ("states",)

    def __init__(self, units, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.state_size = units

    def build(self, input_shape):
        self.kernel = self.add_weight(shape=(input_shape[-1], self.units),
                                      initializer="uniform", name="kernel")
        self.recurrent_kernel = self.add_weight(shape=(self.units, self.units),
                                                initializer="uniform", name="recurrent_kernel")
        self.built = True

    def forward(self, inputs, training=None, states=None):
        h = np.tanh(inputs @ self.kernel + states[0] @ self.recurrent_kernel)
        return (h, [h]), (inputs, states[0], h)

    def backward_from(self, ctx, d_outputs):
        x, h_prev, h = ctx
        d_out, (d_h,) = d_outputs
        dz = (d_out + d_h) * (1 - h * h)
        return (dz @ self.kernel.T, [dz @ self.recurrent_kernel.T]), [x.T @ dz, h_prev.T @ dz]

    def get_config(self):
        return {**super().get_config(), "units": self.units}


class CallOnlyCell(Layer):
    """The same cell as Keras writes it: call() only, no backward."""

    def __init__(self, units, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.state_size = units

    def build(self, input_shape):
        self.kernel = self.add_weight(shape=(input_shape[-1], self.units),
                                      initializer="uniform", name="kernel")

    def call(self, inputs, states):
        h = np.tanh(inputs @ self.kernel + states[0])
        return h, [h]

    def get_config(self):
        return {**super().get_config(), "units": self.units}


def keras_minimal_cell(keras):
    ops = keras.ops

    class KerasMinimalRNNCell(keras.Layer):
        def __init__(self, units, **kwargs):
            super().__init__(**kwargs)
            self.units = units
            self.state_size = units

        def build(self, input_shape):
            self.kernel = self.add_weight(shape=(input_shape[-1], self.units), name="kernel")
            self.recurrent_kernel = self.add_weight(shape=(self.units, self.units),
                                                    name="recurrent_kernel")

        def call(self, inputs, states):
            h = ops.tanh(ops.matmul(inputs, self.kernel)
                         + ops.matmul(states[0], self.recurrent_kernel))
            return h, [h]

    return KerasMinimalRNNCell


# ------------------------------------------------------------------ helpers

def perturbed(weights, rng):
    return [w + rng.uniform(-0.3, 0.3, w.shape).astype(np.float32) for w in weights]


def make_mask(rng, n, t):
    m = rng.random((n, t)) > 0.35
    m[0, :2] = False        # masked leading steps
    m[1, -1] = False        # a masked last step
    if n > 2:
        m[2, :] = False     # a fully masked row
    return m




def run_and_differentiate(layer, x, training, kw, R):
    out, ctx = layer._run(x, training, dict(kw))
    d_in, grads = layer.backward_from(ctx, pack_as(out, R))
    return flatten(out), flatten(d_in), grads


FLAGS = {
    "seq-state-mask-init-back-zero": (dict(return_sequences=True, return_state=True,
                                           go_backwards=True, zero_output_for_mask=True),
                                      True, True, None),
    "last-state-mask": (dict(return_state=True), True, False, None),
    "dropout-both": (dict(return_sequences=True, dropout=0.3, recurrent_dropout=0.2, seed=5),
                     False, False, True),
    "dropout-input": (dict(dropout=0.3, seed=7, go_backwards=True), True, False, True),
}


@pytest.mark.parametrize("flags", list(FLAGS))
@pytest.mark.parametrize("kind", list(KINDS))
def test_rnn_of_cell_is_the_layer_bitwise(kind, flags, rng):
    cell_cls, layer_cls, extra = KINDS[kind]
    kw, with_mask, with_state, training = FLAGS[flags]
    layer_flags = {k: kw[k] for k in ("return_sequences", "return_state", "go_backwards",
                                      "zero_output_for_mask") if k in kw}
    cell_args = {k: v for k, v in kw.items() if k not in layer_flags}
    n, t, c, h = 3, 5, 4, 6
    ours = RNN(cell_cls(h, **cell_args, **extra), **layer_flags)
    ref = layer_cls(h, **kw, **extra)
    ref.build((None, None, c))
    ref.set_weights(perturbed(ref.get_weights(), rng))
    ours.build((None, t, c))
    ours.set_weights(ref.get_weights())
    x = rng.standard_normal((n, t, c)).astype(np.float32)
    call = {}
    if with_mask:
        call["mask"] = make_mask(rng, n, t)
    if with_state:
        call["initial_state"] = [rng.standard_normal((n, h)).astype(np.float32)
                                 for _ in range(N_STATES[kind])]
    shapes = [np.shape(o) for o in flatten(ref._run(x, False, dict(call))[0])]
    R = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    for a, b in zip(run_and_differentiate(ours, x, training, call, R),
                    run_and_differentiate(ref, x, training, call, R)):
        assert len(a) == len(b)
        for u, v in zip(a, b):
            np.testing.assert_array_equal(u, v)


@pytest.mark.parametrize("kind", list(KINDS))
def test_stateful_rnn_of_cell_is_the_layer_bitwise(kind, rng):
    cell_cls, layer_cls, extra = KINDS[kind]
    ours = RNN(cell_cls(5, seed=3, **extra), stateful=True, return_sequences=True)
    ref = layer_cls(5, seed=3, stateful=True, return_sequences=True, **extra)
    for step in range(3):
        if step == 2:
            ours.reset_states()
            ref.reset_states()
        x = rng.standard_normal((2, 4, 3)).astype(np.float32)
        np.testing.assert_array_equal(ours(x), ref(x))   # the same seed: the same weights
        for a, b in zip(ours.states, ref.states):
            np.testing.assert_array_equal(a, b)
    dy = rng.standard_normal((2, 4, 5)).astype(np.float32)
    np.testing.assert_array_equal(ours.backward(dy), ref.backward(dy))
    for a, b in zip(ours.grads, ref.grads):
        np.testing.assert_array_equal(a, b)


def test_fused_stack_gradients_match_finite_differences(rng):
    """A stack of built-in cells runs as fused layers one after the other:
    its BPTT (go_backwards, mask, initial states, returned states) against
    float64 central differences of its own forward."""
    with _float64_for_tests():
        layer = RNN([LSTMCell(3), GRUCell(2, reset_after=False), SimpleRNNCell(3)],
                    return_sequences=True, return_state=True, go_backwards=True)
        set_reference(layer)
        x = rng.standard_normal((3, 4, 2))
        layer.build(x.shape)
        layer.set_weights(perturbed(layer.get_weights(), rng))
        states = [rng.standard_normal((3, k)) for k in (3, 3, 2, 3)]
        check_gradients(layer, x, dict(mask=make_mask(rng, 3, 4), initial_state=states),
                        rng=rng)


# -------------------------------------------------------- against Keras 3

def copy_into_keras(kl, ours, x_shape):
    kl.build(x_shape)
    ours.build(x_shape)
    kl.set_weights(ours.get_weights())


def test_rnn_lstm_cell_matches_keras(rng):
    keras = keras_or_skip()
    import torch
    n, t, c, h = 3, 6, 4, 5
    ours = RNN(LSTMCell(h), return_sequences=True, return_state=True)
    ours.build((None, t, c))
    ours.set_weights(perturbed(ours.get_weights(), rng))
    kl = keras.layers.RNN(keras.layers.LSTMCell(h), return_sequences=True, return_state=True)
    copy_into_keras(kl, ours, (None, t, c))
    assert ours.count_params() == kl.count_params()
    x = rng.standard_normal((n, t, c)).astype(np.float32)
    mask = make_mask(rng, n, t)
    xt = torch.tensor(x, requires_grad=True)
    kout = kl(xt, mask=torch.tensor(mask))
    R = [rng.standard_normal(tuple(o.shape)).astype(np.float32) for o in kout]
    sum((o * torch.tensor(r)).sum() for o, r in zip(kout, R)).backward()
    out = ours(x, mask=mask)
    for a, b in zip(out, kout):
        assert_close(a, b.detach().numpy(), "keras_f32", "RNN(LSTMCell)")
    dx = ours.backward(R[0], R[1:])
    assert_close(dx, xt.grad.numpy(), "backward_f32", "dx")
    for g, v in zip(ours.grads, kl.trainable_weights):
        assert_close(g, v.value.grad.numpy(), "backward_f32", f"d{v.name}")


def test_stacked_cells_match_keras(rng):
    keras = keras_or_skip()
    n, t, c = 3, 5, 4
    ours = RNN([GRUCell(3), LSTMCell(2), SimpleRNNCell(4)], return_state=True,
               go_backwards=True)
    ours.build((None, t, c))
    ours.set_weights(perturbed(ours.get_weights(), rng))
    kl = keras.layers.RNN([keras.layers.GRUCell(3), keras.layers.LSTMCell(2),
                           keras.layers.SimpleRNNCell(4)], return_state=True, go_backwards=True)
    copy_into_keras(kl, ours, (None, t, c))
    assert ours.cell.state_size == kl.cell.state_size == [3, [2, 2], 4]
    x = rng.standard_normal((n, t, c)).astype(np.float32)
    mask = make_mask(rng, n, t)
    states = [rng.standard_normal((n, k)).astype(np.float32) for k in (3, 2, 2, 4)]
    kout = kl(x, mask=mask, initial_state=[[states[0]], states[1:3], [states[3]]])
    out = ours(x, mask=mask, initial_state=states)
    # Keras' structure: the output, then each cell's list of states
    assert [[a.shape for a in s] for s in out[1:]] == [[(n, 3)], [(n, 2), (n, 2)], [(n, 4)]]
    assert len(flatten(out)) == len(flatten(list(kout))) == 5
    for a, b in zip(flatten(out), flatten(list(kout))):
        assert_close(a, keras.ops.convert_to_numpy(b), "keras_f32", "stacked")


@pytest.mark.parametrize("kind", list(KINDS))
def test_one_cell_step_matches_keras(kind, rng):
    keras = keras_or_skip()
    cell_cls, _, extra = KINDS[kind]
    kcls = {SimpleRNNCell: keras.layers.SimpleRNNCell, LSTMCell: keras.layers.LSTMCell,
            GRUCell: keras.layers.GRUCell}[cell_cls]
    n, c, h = 3, 4, 5
    ours, kc = cell_cls(h, **extra), kcls(h, **extra)
    ours.build((None, c))
    ours.set_weights(perturbed(ours.get_weights(), rng))
    kc.build((None, c))
    kc.set_weights(ours.get_weights())
    assert ours.state_size == kc.state_size and ours.output_size == kc.output_size
    x = rng.standard_normal((n, c)).astype(np.float32)
    states = [rng.standard_normal((n, h)).astype(np.float32) for _ in range(N_STATES[kind])]
    y, new = ours(x, states)
    ky, knew = kc(x, states)
    assert isinstance(new, list) and len(new) == len(knew)
    for a, b in zip([y] + new, [ky] + list(knew)):
        assert_close(a, keras.ops.convert_to_numpy(b), "keras_f32", f"{kind} step")
    if N_STATES[kind] == 1:     # one array in, one array out, as Keras
        y1, h1 = ours(x, states[0])
        assert isinstance(h1, np.ndarray)
        np.testing.assert_array_equal(h1, new[0])
    # the step's backward: what the layer's BPTT gives for a sequence of one step
    R = [rng.standard_normal((n, h)).astype(np.float32) for _ in range(1 + len(new))]
    (dx, ds), grads = ours.backward_from(ours._run(x, None, {"states": states})[1],
                                         (R[0], R[1:]))
    layer = RNN(cell_cls(h, **extra), return_state=True)
    layer.build((None, 1, c))
    layer.set_weights(ours.get_weights())
    layer(x[:, None], initial_state=states)
    np.testing.assert_array_equal(layer.backward(R[0], R[1:]), dx[:, None])
    for a, b in zip(layer.grads + layer.state_grads, grads + ds):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("flags", [dict(return_sequences=True, return_state=True),
                                   dict(return_sequences=True, go_backwards=True),
                                   dict(return_sequences=True, zero_output_for_mask=True),
                                   dict(return_state=True, go_backwards=True)],
                         ids=["seq-state", "seq-back", "seq-zero", "last-back"])
def test_user_cell_matches_keras(flags, rng):
    keras = keras_or_skip()
    n, t, c, h = 3, 5, 4, 6
    ours = RNN(MinimalRNNCell(h), **flags)
    ours.build((None, t, c))
    ours.set_weights([w * 10 for w in ours.get_weights()])
    kl = keras.layers.RNN(keras_minimal_cell(keras)(h), **flags)
    copy_into_keras(kl, ours, (None, t, c))
    x = rng.standard_normal((n, t, c)).astype(np.float32)
    mask = make_mask(rng, n, t)
    state = rng.standard_normal((n, h)).astype(np.float32)
    for kw in (dict(mask=mask), dict(initial_state=[state])):
        out, kout = ours(x, **kw), kl(x, **kw)
        for a, b in zip(flatten(out), flatten(kout)):
            assert_close(a, keras.ops.convert_to_numpy(b), "keras_f32", f"user cell {kw}")


# ------------------------------------------------------------- user cells

@pytest.mark.parametrize("flags", [dict(return_sequences=True, return_state=True,
                                        go_backwards=True),
                                   dict(return_state=True, zero_output_for_mask=True)],
                         ids=["seq-state-back", "last-zero"])
def test_user_cell_bptt_matches_finite_differences(flags, rng):
    with _float64_for_tests():
        layer = RNN(MinimalRNNCell(3), **flags)
        x = rng.standard_normal((3, 4, 2))
        layer.build(x.shape)
        layer.set_weights([w * 10 for w in layer.get_weights()])
        check_gradients(layer, x, dict(mask=make_mask(rng, 3, 4),
                                       initial_state=[rng.standard_normal((3, 3))]), rng=rng)


def test_mixed_stack_runs_every_cell_step_by_step(rng):
    """A stack with a user cell steps every cell (the built-in ones on one-step
    fused calls): its BPTT against finite differences, and its forward is the
    fused stack's where the user cell is left out."""
    with _float64_for_tests():
        layer = RNN([LSTMCell(3), MinimalRNNCell(2)], return_sequences=True, return_state=True)
        set_reference(layer)
        x = rng.standard_normal((3, 4, 2))
        layer.build(x.shape)
        layer.set_weights([w * 3 for w in layer.get_weights()])
        check_gradients(layer, x, dict(mask=make_mask(rng, 3, 4)), rng=rng)
        fused = RNN(LSTMCell(3), return_sequences=True)
        set_reference(fused)
        fused.build(x.shape)
        fused.set_weights(layer.get_weights()[:3])
        mask = make_mask(rng, 3, 4)
        y_lstm = fused(x, mask=mask)
        wx, wh = layer.get_weights()[3:]
        h = np.zeros((3, 2))
        for s in range(4):   # the user cell on the LSTM's outputs, masked steps kept
            h = np.where(mask[:, s:s + 1], np.tanh(y_lstm[:, s] @ wx + h @ wh), h)
        np.testing.assert_allclose(layer(x, mask=mask)[-1], h, rtol=1e-12, atol=1e-12)


def test_user_cell_trains_in_fit(rng):
    x = rng.standard_normal((64, 6, 3)).astype(np.float32)
    y = 0.5 * x[:, -1, :1] - 0.3 * x[:, -2, 1:2]
    rnn = RNN(MinimalRNNCell(8, name="cell"))
    model = Sequential([Input((6, 3)), rnn, Dense(1)])
    rnn.set_weights([w * 10 for w in rnn.get_weights()])
    model.compile(optimizer=Adam(learning_rate=0.02), loss="mse")
    before = model.evaluate(x, y, verbose=0)
    model.fit(x, y, batch_size=16, epochs=8, verbose=0, shuffle=False)
    after = model.evaluate(x, y, verbose=0)
    assert after < 0.2 * before
    # the cell's attributes follow the trained weights
    cell = model.layers[0].cell
    model.predict(x[:2], verbose=0)
    assert cell.kernel is cell._params["kernel"]


def test_cell_without_backward_infers_and_refuses_training(rng):
    x = rng.standard_normal((8, 4, 3)).astype(np.float32)
    layer = RNN(CallOnlyCell(5), return_sequences=True)
    y = layer(x, mask=make_mask(rng, 8, 4))
    assert y.shape == (8, 4, 5)
    model = Sequential([Input((4, 3)), RNN(CallOnlyCell(5)), Dense(1)])
    assert model.predict(x, verbose=0).shape == (8, 1)
    model.compile(optimizer="sgd", loss="mse")
    with pytest.raises(NotImplementedError, match="has no backward.*backward_from"):
        model.fit(x, np.zeros((8, 1), np.float32), verbose=0)


def test_dropout_masks_are_kept_across_steps_until_reset(rng):
    """Keras' DropoutRNNCell: a cell called step by step reuses its masks."""
    cell = LSTMCell(4, dropout=0.5, seed=1)
    x = np.ones((2, 3), np.float32)
    st = cell.get_initial_state(2)
    a = cell(x, st, training=True)[0]
    np.testing.assert_array_equal(cell(x, st, training=True)[0], a)
    cell.reset_dropout_mask()
    assert not np.array_equal(cell(x, st, training=True)[0], a)
    assert not np.array_equal(cell(x, st)[0], a)   # no dropout outside training


# ------------------------------------------------------- arguments, config

def test_arguments_and_errors():
    cell = LSTMCell(4)
    assert cell.state_size == [4, 4] and GRUCell(3).state_size == 3
    assert cell.get_config()["unit_forget_bias"] is True
    with pytest.raises(ValueError, match="units"):
        LSTMCell(0)
    with pytest.raises(ValueError, match="activation"):
        GRUCell(2, activation="swishy")
    with pytest.raises(ValueError, match="`call` method"):
        RNN(Layer())
    with pytest.raises(ValueError, match="state_size"):
        RNN(Dense(2))
    with pytest.raises(TypeError, match="return_sequences"):
        RNN(cell, return_sequences="yes")
    with pytest.raises(ValueError, match="states"):
        cell(np.ones((2, 3), np.float32), [np.zeros((2, 4), np.float32)])
    layer = RNN(GRUCell(3))
    with pytest.raises(ValueError, match="initial_state"):
        layer(np.ones((2, 4, 3), np.float32), initial_state=[np.zeros((2, 3))] * 2)
    assert isinstance(RNN([GRUCell(2), GRUCell(3)]).cell, StackedRNNCells)


# Keras 3.15's configs (keras.layers.X(...).get_config()), written out: asking Keras
# for one imports TensorFlow (seconds), which this file's time budget cannot take
_KERAS_CELL_KEYS = {"name", "trainable", "dtype", "units", "activation", "use_bias",
                    "kernel_initializer", "recurrent_initializer", "bias_initializer",
                    "kernel_regularizer", "recurrent_regularizer", "bias_regularizer",
                    "kernel_constraint", "recurrent_constraint", "bias_constraint", "dropout",
                    "recurrent_dropout", "seed"}
KERAS_KEYS = {
    SimpleRNNCell: _KERAS_CELL_KEYS,
    LSTMCell: _KERAS_CELL_KEYS | {"recurrent_activation", "unit_forget_bias"},
    GRUCell: _KERAS_CELL_KEYS | {"recurrent_activation", "reset_after"},
    RNN: {"name", "trainable", "dtype", "return_sequences", "return_state", "go_backwards",
          "stateful", "unroll", "zero_output_for_mask", "cell"}}
_DTYPE = {"module": "keras", "class_name": "DTypePolicy", "config": {"name": "float32"},
          "registered_name": None}
KERAS_RNN_GRU_CONFIG = {  # RNN(GRUCell(3, reset_after=False), stateful=True, name="k")
    "name": "k", "trainable": True, "dtype": _DTYPE, "return_sequences": False,
    "return_state": False, "go_backwards": False, "stateful": True, "unroll": False,
    "zero_output_for_mask": False,
    "cell": {"module": "keras.layers", "class_name": "GRUCell", "registered_name": None,
             "config": {
                 "name": "gru_cell", "trainable": True, "dtype": _DTYPE, "units": 3,
                 "activation": "tanh", "recurrent_activation": "sigmoid", "use_bias": True,
                 "kernel_initializer": {"module": "keras.initializers",
                                        "class_name": "GlorotUniform",
                                        "config": {"seed": None, "input_axes": None,
                                                   "output_axes": None},
                                        "registered_name": None},
                 "recurrent_initializer": {"module": "keras.initializers",
                                           "class_name": "Orthogonal",
                                           "config": {"seed": None, "gain": 1.0},
                                           "registered_name": None},
                 "bias_initializer": {"module": "keras.initializers", "class_name": "Zeros",
                                      "config": {}, "registered_name": None},
                 "kernel_regularizer": None, "recurrent_regularizer": None,
                 "bias_regularizer": None, "kernel_constraint": None,
                 "recurrent_constraint": None, "bias_constraint": None, "dropout": 0.0,
                 "recurrent_dropout": 0.0, "reset_after": False, "seed": None}}}


def test_config_round_trips_and_matches_keras_keys():
    layer = RNN([LSTMCell(4, dropout=0.1), MinimalRNNCell(3)], return_sequences=True,
                go_backwards=True)
    cfg = layer.get_config()
    assert cfg["cell"]["class_name"] == "StackedRNNCells"
    user = cfg["cell"]["config"]["cells"][1]
    assert user["registered_name"] == "RnnkernTest>MinimalRNNCell" and user["module"] is None
    again = RNN.from_config(cfg)
    assert again.get_config() == cfg
    assert type(again.cell.cells[1]) is MinimalRNNCell
    for cls, keys in KERAS_KEYS.items():
        obj = cls(LSTMCell(3)) if cls is RNN else cls(3)
        assert set(obj.get_config()) == keys, cls.__name__
    mine = RNN.from_config(KERAS_RNN_GRU_CONFIG)
    assert mine.stateful and mine.cell.reset_after is False and mine.name == "k"
    assert mine.cell.name == "gru_cell" and mine.cell.units == 3


def test_weights_h5_and_model_files_round_trip(tmp_path, rng):
    pytest.importorskip("h5py")
    import h5py
    from rnnkern.saving import load_model
    model = Sequential([Input((5, 3)), RNN(LSTMCell(4)),
                        Dense(2)])
    stack = Sequential([Input((5, 3)),
                        RNN([GRUCell(2), LSTMCell(3), MinimalRNNCell(2), LSTMCell(2)])])
    for m in (model, stack):
        m.set_weights(perturbed(m.get_weights(), rng))
    stack.save_weights(tmp_path / "s.weights.h5")
    with h5py.File(tmp_path / "s.weights.h5") as f:
        keys = set()
        f.visititems(lambda k, v: keys.add(k) if isinstance(v, h5py.Dataset) else None)
    cells = "layers/rnn/cell/cells/"
    assert keys == {f"{cells}{c}/vars/{i}" for c, k in
                    (("gru_cell", 3), ("lstm_cell", 3), ("minimal_rnn_cell", 2),
                     ("lstm_cell_1", 3)) for i in range(k)}
    x = rng.standard_normal((2, 5, 3)).astype(np.float32)
    for m, name in ((model, "m.keras"), (stack, "s.keras")):
        m.save(tmp_path / name)
        back = load_model(tmp_path / name)
        np.testing.assert_array_equal(back.predict(x, verbose=0), m.predict(x, verbose=0))
    # an unregistered cell: custom_objects reach the RNN's cell config
    plain = Sequential([Input((5, 3)), RNN(CallOnlyCell(2))])
    plain.save(tmp_path / "p.keras")
    with pytest.raises(ValueError, match="CallOnlyCell.*custom_objects"):
        load_model(tmp_path / "p.keras")
    back = load_model(tmp_path / "p.keras", custom_objects={"CallOnlyCell": CallOnlyCell})
    np.testing.assert_array_equal(back.predict(x, verbose=0), plain.predict(x, verbose=0))
    model.save_weights(tmp_path / "m.weights.h5")
    with h5py.File(tmp_path / "m.weights.h5") as f:
        assert "layers/rnn/cell/vars/2" in f and "layers/dense/vars/1" in f


KERAS_GUIDE_SUMMARY = """\
Model: "sequential"
┏━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━┓
┃ Layer (type)                    ┃ Output Shape           ┃       Param # ┃
┡━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━┩
│ rnn (RNN)                       │ (None, 64)             │        23,808 │
├─────────────────────────────────┼────────────────────────┼───────────────┤
│ batch_normalization             │ (None, 64)             │           256 │
│ (BatchNormalization)            │                        │               │
├─────────────────────────────────┼────────────────────────┼───────────────┤
│ dense (Dense)                   │ (None, 10)             │           650 │
└─────────────────────────────────┴────────────────────────┴───────────────┘
 Total params: 24,714 (96.54 KB)
 Trainable params: 24,586 (96.04 KB)
 Non-trainable params: 128 (512.00 B)
"""


def test_keras_guide_mnist_model(monkeypatch):
    """Keras' RNN guide: Sequential([Input((28, 28)), RNN(LSTMCell(64)),
    BatchNormalization(), Dense(10)]): Keras 3's summary (its text, written out,
    at 80 columns) and a training epoch."""
    monkeypatch.setenv("COLUMNS", "80")
    try:
        from rnnkern.layers.normalization import BatchNormalization
        middle = BatchNormalization(name="batch_normalization")
    except ImportError:     # written concurrently: Dense in its place
        middle = None
    model = Sequential([Input((28, 28)), RNN(LSTMCell(64), name="rnn"),
                        middle or Dense(64, name="dense_64"), Dense(10, name="dense")],
                       name="sequential")
    text = capture_stdout(model.summary)
    if middle is not None:
        assert text == KERAS_GUIDE_SUMMARY
    else:
        assert text.splitlines()[4] == KERAS_GUIDE_SUMMARY.splitlines()[4]
    x = np.random.default_rng(0).standard_normal((32, 28, 28)).astype(np.float32)
    y = np.random.default_rng(1).integers(0, 10, 32)
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    hist = model.fit(x, y, batch_size=16, epochs=2, verbose=0)
    assert np.isfinite(hist.history["loss"]).all()


def test_keras_weights_file_loads(tmp_path, rng):
    """A .weights.h5 Keras wrote for a stack of cells loads into the same model."""
    keras = keras_or_skip()
    pytest.importorskip("h5py")
    L = keras.layers
    km = keras.Sequential([keras.Input((5, 3)), L.RNN([L.GRUCell(2), L.LSTMCell(3),
                                                       L.LSTMCell(2)]), L.Dense(1)])
    km.set_weights(perturbed(km.get_weights(), rng))
    km.save_weights(tmp_path / "k.weights.h5")
    ours = Sequential([Input((5, 3)), RNN([GRUCell(2), LSTMCell(3), LSTMCell(2)]), Dense(1)])
    ours.load_weights(tmp_path / "k.weights.h5")
    for a, b in zip(ours.get_weights(), km.get_weights()):
        np.testing.assert_array_equal(a, b)
    x = rng.standard_normal((2, 5, 3)).astype(np.float32)
    assert_close(ours.predict(x, verbose=0), keras.ops.convert_to_numpy(km(x)), "keras_f32",
                 "stacked model")
