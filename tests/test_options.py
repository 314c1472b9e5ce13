"""One options value from the layers to the kernels (rnnkern.options.RnnOptions),
the precision names, and one checker for host and device arrays."""
import pickle

import numpy as np
import pytest

import rnnkern as rk
from rnnkern import backends as bk
from rnnkern import ops
from rnnkern.options import FIELDS, PRECISIONS, RnnOptions

from test_kernels import make_case
from tolerances import assert_close

COMPILED = bk.core_available()
ALL = bk.backends()
CPU_AND_REF = ["reference"] + bk.cpu_backends()
needs_core = pytest.mark.skipif(not COMPILED, reason="compiled extension not built")


def test_equal_options_are_one_object():
    a = RnnOptions("gru", "relu", reset_after=False, training=False)
    b = RnnOptions("gru", activation="relu", recurrent_activation="sigmoid",
                   reset_after=0, go_backwards=False, return_sequences=True, training=False)
    assert a is b
    assert a is not RnnOptions("gru", "relu", reset_after=False)
    assert pickle.loads(pickle.dumps(a)) is a
    assert a.replace(training=True) is RnnOptions("gru", "relu", reset_after=False)
    assert RnnOptions.of(a) is a and RnnOptions.of("gru", activation="relu",
                                                   reset_after=False, training=False) is a
    assert a.as_dict() == dict(cell="gru", activation="relu", recurrent_activation="sigmoid",
                               reset_after=False, go_backwards=False, return_sequences=True,
                               training=False, precision="fp32")
    assert list(a.as_dict()) == list(FIELDS)


def test_options_are_frozen_and_checked():
    o = RnnOptions("lstm")
    with pytest.raises(AttributeError, match="frozen"):
        o.training = False
    with pytest.raises(AttributeError, match="frozen"):
        del o.cell
    with pytest.raises(ValueError, match=r"cell must be one of \['simple_rnn', 'lstm', 'gru'\], "
                                         r"got 'rnn'"):
        RnnOptions("rnn")
    with pytest.raises(ValueError, match="activation must be one of .*tanh.*got 'gelu'"):
        RnnOptions("lstm", "gelu")
    with pytest.raises(ValueError, match="recurrent_activation must be one of"):
        RnnOptions("lstm", recurrent_activation=None)
    with pytest.raises(ValueError, match=r"precision must be one of \['fp32', 'tf32', 'bf16'\]"):
        RnnOptions("lstm", precision="fp16")
    with pytest.raises(ValueError, match="cell must be one of"):
        RnnOptions(["lstm"])   # not hashable: checked, not a TypeError from the memo
    with pytest.raises(TypeError, match="unknown option 'return_sequence'"):
        o.replace(return_sequence=False)
    with pytest.raises(TypeError, match="unknown option 'droput'"):
        RnnOptions.of("lstm", droput=0.5)


@needs_core
@pytest.mark.parametrize("precision", PRECISIONS)
def test_core_options_mirror_the_value(precision):
    o = RnnOptions("gru", "hard_sigmoid", "relu", False, True, False, False, precision)
    c = o.core
    assert o.core is c   # parsed once
    assert (c.cell, c.activation, c.recurrent_activation, c.reset_after, c.go_backwards,
            c.return_sequences, c.training, c.precision) == tuple(o.as_dict().values())


def _case(cell="lstm", seed=0):
    rng = np.random.default_rng(seed)
    return make_case(cell, 3, 4, 5, 6, True, True, rng)


@pytest.mark.parametrize("backend", ALL)
def test_options_value_equals_keywords(backend):
    """rnn_forward(RnnOptions(...)) is rnn_forward(cell, keywords...), and keywords
    change fields of a given RnnOptions."""
    x, W, U, b, h0, c0 = _case("gru", 1)
    kw = dict(activation="relu", reset_after=True, go_backwards=True, return_sequences=False)
    y0, h_0, _, _ = ops.rnn_forward("gru", x, W, U, b, h0, backend=backend, training=False, **kw)
    o = RnnOptions("gru", **kw, training=False)
    y1, h_1, _, cache = ops.rnn_forward(o, x, W, U, b, h0, backend=backend)
    assert cache is None
    np.testing.assert_array_equal(y0, y1)
    np.testing.assert_array_equal(h_0, h_1)
    y2, _, _, cache = ops.rnn_forward(o, x, W, U, b, h0, backend=backend, training=True)
    assert cache is not None
    np.testing.assert_array_equal(y0, y2)


@pytest.mark.parametrize("backend", ALL)
def test_tf32_runs_at_least_fp32_and_every_backend_runs_bf16(backend):
    """The CPU backends and the reference run precision='tf32' as fp32 (no TF32
    product: the call gets at least the precision it asked for), and so does
    cuda-emu's default SIMT GEMM: bitwise the fp32 result (a device's tensor-core
    GEMMs take one TF32 product: test_cuda's tf32 test). 'bf16' runs everywhere
    (tests/test_bf16.py and test_cuda's bf16 test hold it to the reference): not
    the fp32 result, within bf16's error of it."""
    x, W, U, b, h0, c0 = _case("lstm", 2)
    out = {}
    for p in ("fp32", "tf32", "bf16"):
        y, h, c, cache = ops.rnn_forward("lstm", x, W, U, b, h0, c0, backend=backend,
                                         precision=p)
        g = ops.rnn_backward(cache, np.ones_like(y))
        out[p] = (y, h, c) + tuple(a for a in g if a is not None)
    if backend != "cuda":
        for a, b_ in zip(out["fp32"], out["tf32"]):
            np.testing.assert_array_equal(a, b_)
    assert not np.array_equal(out["fp32"][0], out["bf16"][0])
    assert_close(out["bf16"][0], out["fp32"][0], "forward_bf16", f"{backend} bf16")


# one checker: the same wrong arguments, on host arrays and on device arrays, raise
# the same error with the same message (cuda-emu's device is the host)
BAD = {
    "x 2-D": dict(x=lambda a: a["x"][0]),
    "no timestep": dict(x=lambda a: a["x"][:, :0]),
    "kernel": dict(W=lambda a: a["W"][:4]),
    "recurrent_kernel 1-D": dict(U=lambda a: a["U"][0]),
    "recurrent_kernel": dict(U=lambda a: a["U"][:, :20]),
    "h0": dict(h0=lambda a: a["h0"][:2]),
    "bias": dict(b=lambda a: a["b"][:7]),
    "c0 missing": dict(c0=lambda a: None),
    "c0": dict(c0=lambda a: a["c0"][:, :5]),
    "mask": dict(mask=lambda a: np.ones((3, 3), bool)),
    "input_masks": dict(input_masks=lambda a: np.ones((3, 3, 5), np.float32)),
    "recurrent_masks": dict(recurrent_masks=lambda a: np.ones((4, 3, 5), np.float32)),
}


@needs_core
@pytest.mark.parametrize("case", list(BAD))
def test_host_and_device_arrays_have_one_checker(case):
    x, W, U, b, h0, c0 = _case("lstm", 3)
    a = dict(x=x, W=W, U=U, b=b, h0=h0, c0=c0, mask=None, input_masks=None,
             recurrent_masks=None)
    for k, f in BAD[case].items():
        a[k] = f(a)

    def call(on_device):
        d = (lambda v: None if v is None else rk.device_array(v, "cuda-emu")) if on_device \
            else (lambda v: v)
        return ops.rnn_forward("lstm", d(a["x"]), d(a["W"]), d(a["U"]), d(a["b"]), d(a["h0"]),
                               d(a["c0"]), d(a["mask"]), backend="cuda-emu",
                               input_masks=d(a["input_masks"]),
                               recurrent_masks=d(a["recurrent_masks"]))
    errors = []
    for on_device in (False, True):
        with pytest.raises(ValueError) as e:
            call(on_device)
        errors.append(str(e.value))
    assert errors[0] == errors[1]
    name = {"W": "kernel", "U": "recurrent_kernel", "b": "bias"}.get(*BAD[case], *BAD[case])
    assert name in errors[0]


@needs_core
def test_backward_gradients_have_one_checker():
    x, W, U, b, h0, c0 = _case("lstm", 4)
    errors = []
    for on_device in (False, True):
        d = (lambda v: rk.device_array(v, "cuda-emu")) if on_device else (lambda v: v)
        y, h, c, cache = ops.rnn_forward("lstm", d(x), d(W), d(U), d(b), d(h0), d(c0),
                                         backend="cuda-emu")
        for dy in (np.ones((3, 6), np.float32), np.ones((3, 4, 7), np.float32)):
            with pytest.raises(ValueError) as e:
                ops.rnn_backward(cache, d(dy))
            errors.append(str(e.value))
        with pytest.raises(ValueError) as e:
            ops.rnn_backward(cache, d(np.ones((3, 4, 6), np.float32)),
                             d(np.ones((2, 6), np.float32)))
        errors.append(str(e.value))
    assert errors[:3] == errors[3:]
    assert errors[0] == "dy must have shape (3, 4, 6), got (3, 6)"
    assert errors[2].startswith("dh_T must have shape (3, 6)")


@pytest.mark.parametrize("backend", CPU_AND_REF)
def test_layers_and_adapters_take_precision(backend):
    """rnnkern's layers take precision= (checked when made, in get_config only when
    given, round-tripped by from_config); tf32 and bf16 run."""
    x = np.random.default_rng(5).standard_normal((2, 3, 4)).astype(np.float32)
    layer = rk.layers.GRU(3, precision="tf32", backend=backend, seed=1)
    ref = rk.layers.GRU(3, backend=backend, seed=1)
    np.testing.assert_array_equal(layer(x), ref(x))
    assert layer.get_config()["precision"] == "tf32" and "precision" not in ref.get_config()
    assert rk.layers.GRU.from_config(layer.get_config()).precision == "tf32"
    with pytest.raises(ValueError, match="precision must be one of"):
        rk.layers.LSTM(3, precision="fp16")
    y16 = rk.layers.SimpleRNN(3, precision="bf16", backend=backend, seed=2)(x)
    y32 = rk.layers.SimpleRNN(3, backend=backend, seed=2)(x)
    assert not np.array_equal(y16, y32)
    assert_close(y16, y32, "forward_bf16", f"{backend} SimpleRNN bf16")


def test_torch_modules_take_precision():
    torch = pytest.importorskip("torch")
    from rnnkern import torch as rt
    m = rt.LSTM(4, 3, batch_first=True, precision="tf32")
    x = torch.randn(2, 5, 4)
    ref = rt.LSTM(4, 3, batch_first=True)
    ref.load_state_dict(m.state_dict())
    assert torch.equal(m(x)[0], ref(x)[0])   # the CPU runs tf32 as fp32
    with pytest.raises(ValueError, match="precision must be one of"):
        rt.GRU(4, 3, precision="half")
    g16 = rt.GRU(4, 3, batch_first=True, precision="bf16")
    g32 = rt.GRU(4, 3, batch_first=True)
    g32.load_state_dict(g16.state_dict())
    y16, y32 = g16(x)[0], g32(x)[0]
    assert not torch.equal(y16, y32)
    assert_close(y16.detach().numpy(), y32.detach().numpy(), "forward_bf16", "rt.GRU bf16")
