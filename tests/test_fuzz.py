"""Property-based fuzzing (hypothesis) against the oracles: every compiled backend
against the float64 NumPy reference (cells, options, shapes with 1 and the tail
sizes, masks of any pattern, initial states, dropout masks, saturating values,
forward and backward); random models (stacks of the supported layers, Sequential
and functional) against the same model in float64 on the reference; the losses,
metrics and optimizers against Keras 3 with drawn options and data.

Two profiles (tests/conftest.py registers them): ``ci``, the default, with a fixed
example budget per test and derandomized draws, so every run of the suite tries
the same examples and the suite's time is fixed; ``long`` (RNNKERN_FUZZ=long),
many more examples from fresh randomness, for a local search. Anything a search
finds is kept as an explicit case in the test module of what failed (the
@example lines here are such cases: a saturating GRU, a T=1 step with every row
masked, the hard-sigmoid kink)."""
import os

os.environ.setdefault("KERAS_BACKEND", "torch")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, example, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import rnnkern.layers as RL  # noqa: E402
import rnnkern.models as RM  # noqa: E402
from rnnkern import backends as bk  # noqa: E402
from rnnkern import reference  # noqa: E402
from rnnkern._common import GATES  # noqa: E402
from rnnkern.layers.base import _float64_for_tests, flatten, pack_as  # noqa: E402
from tolerances import assert_close, assert_close_normwise  # noqa: E402

COMPILED = [b for b in bk.backends() if b != "reference"]
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning",
                                        "ignore::SyntaxWarning")

# examples per test in the ci profile (conftest.py); ``long`` multiplies them
KERNEL_EXAMPLES = 100
MODEL_EXAMPLES = 40
KERAS_EXAMPLES = 60


def budget(n):
    """Examples for one test: n in the ci profile, 25 n in the long one."""
    return n * (25 if os.environ.get("RNNKERN_FUZZ") == "long" else 1)


# ------------------------------------------------------------------ kernels

CELLS = (
    [("simple_rnn", a, "sigmoid", True)
     for a in ("tanh", "relu", "sigmoid", "hard_sigmoid", "linear")]
    + [("lstm", a, ra, True) for a in ("tanh", "relu") for ra in ("sigmoid", "hard_sigmoid")]
    + [("gru", a, ra, rst) for a in ("tanh", "relu") for ra in ("sigmoid", "hard_sigmoid")
       for rst in (True, False)]
)
# H: 1, the vector widths' neighbours (4, 8, 16 floats) and the GPU tile sizes' (32)
UNITS = [1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33]


@st.composite
def kernel_cases(draw):
    cell, act, ract, reset_after = draw(st.sampled_from(CELLS))
    n = draw(st.integers(1, 9))
    t = draw(st.integers(1, 12))
    c = draw(st.integers(1, 20))
    h = draw(st.sampled_from(UNITS))
    # the mask: none, or any pattern of steps (a row wholly masked included)
    mask = draw(st.none() | st.lists(st.booleans(), min_size=n * t, max_size=n * t))
    bounded = act in ("tanh", "sigmoid", "hard_sigmoid")
    # amplitude of the inputs and weights: ordinary, large, saturating (bounded
    # activations only: relu and linear recurrences would overflow float32)
    amp = draw(st.sampled_from([0.5, 3.0, 30.0] if bounded else [0.5, 1.5]))
    return dict(
        cell=cell, act=act, ract=ract, reset_after=reset_after, n=n, t=t, c=c, h=h,
        mask=None if mask is None else np.array(mask, bool).reshape(n, t),
        go_backwards=draw(st.booleans()), return_sequences=draw(st.booleans()),
        use_bias=draw(st.booleans()), h0=draw(st.booleans()), c0=draw(st.booleans()),
        dropout=draw(st.sampled_from([None, "input", "recurrent", "both"])),
        amp=amp, seed=draw(st.integers(0, 2**32 - 1)))


def make_arrays(case):
    """The case's arrays (float32) from its seed: hypothesis draws the structure,
    NumPy the values, so every value is generic (no exact kink of relu or
    hard_sigmoid unless a case asks for one)."""
    r = np.random.default_rng(case["seed"])
    cell, n, t, c, h, amp = (case[k] for k in ("cell", "n", "t", "c", "h", "amp"))
    g = GATES[cell]
    f32 = np.float32
    x = (r.standard_normal((n, t, c)) * amp).astype(f32)
    W = (r.standard_normal((c, g * h)) * amp / np.sqrt(c)).astype(f32)
    # a contracting recurrence for unbounded activations: |U| well below 1
    u_scale = amp if case["act"] in ("tanh", "sigmoid", "hard_sigmoid") else 0.5
    U = (r.standard_normal((h, g * h)) * u_scale / np.sqrt(h)).astype(f32)
    b = None
    if case["use_bias"]:
        shape = (2, g * h) if (cell == "gru" and case["reset_after"]) else (g * h,)
        b = (r.standard_normal(shape) * 0.3 * amp).astype(f32)
    # initial states: drawn, or zeros (what a layer passes without one)
    h0 = (r.standard_normal((n, h)) * 0.5 * case["h0"]).astype(f32)
    c0 = (r.standard_normal((n, h)) * 0.5 * case["c0"]).astype(f32) if cell == "lstm" \
        else None
    im = rm = None
    rate = 0.3
    if case["dropout"] in ("input", "both"):
        im = ((r.random((g, n, c)) >= rate) / (1 - rate)).astype(f32)
    if case["dropout"] in ("recurrent", "both"):
        rm = ((r.random((g, n, h)) >= rate) / (1 - rate)).astype(f32)
    dy_shape = (n, t, h) if case["return_sequences"] else (n, h)
    dy = r.standard_normal(dy_shape).astype(f32)
    dh = r.standard_normal((n, h)).astype(f32)
    dc = r.standard_normal((n, h)).astype(f32) if cell == "lstm" else None
    return x, W, U, b, h0, c0, im, rm, dy, dh, dc


def f64(a):
    return None if a is None else np.asarray(a, np.float64)


def closeness(amp):
    """How a case of amplitude ``amp`` is compared: elementwise at 0.5 (values
    and terms of order 1); normwise beyond, where sums of terms of order amp (3)
    or amp^2 and saturated derivatives (30) cancel to small entries whose error
    is that of the terms, not their own."""
    def close(a, r, which, what):
        if amp <= 1:
            return assert_close(a, r, f"{which}_f32", what)
        kind = f"{which}_saturated_f32" if amp > 10 else f"{which}_f32"
        return assert_close_normwise(a, r, kind, what)
    return close


def check_kernel(backend, case):
    x, W, U, b, h0, c0, im, rm, dy, dh, dc = make_arrays(case)
    close = closeness(case["amp"])
    kw = dict(activation=case["act"], recurrent_activation=case["ract"],
              reset_after=case["reset_after"], go_backwards=case["go_backwards"],
              return_sequences=case["return_sequences"], training=True)
    cell, mask = case["cell"], case["mask"]
    be = bk.get_backend(backend)
    y, hT, cT, cache = be.forward(cell, x, W, U, b, h0, c0, mask, input_masks=im,
                                  recurrent_masks=rm, **kw)
    ry, rh, rc, rcache = reference.rnn_forward(
        cell, f64(x), f64(W), f64(U), f64(b), f64(h0), f64(c0), mask,
        input_masks=f64(im), recurrent_masks=f64(rm), **kw)
    what = f"{backend} {case}"
    for name, a, r in (("y", y, ry), ("h_T", hT, rh), ("c_T", cT, rc)):
        if r is None:
            assert a is None, f"{what}: {name}"
            continue
        assert np.isfinite(a).all(), f"{what}: {name} not finite"
        close(a, r, "forward", f"{what}: {name}")
    g = be.backward(cache, dy, dh, dc)
    gr = reference.rnn_backward(rcache, f64(dy), f64(dh), f64(dc))
    names = ("dx", "dkernel", "drecurrent_kernel", "dbias", "dh0", "dc0")
    for name, a, r in zip(names, g, gr):
        if r is None:
            assert a is None, f"{what}: {name}"
            continue
        assert np.isfinite(a).all(), f"{what}: {name} not finite"
        close(a, r, "backward", f"{what}: {name}")


def _case(**changes):
    base = dict(cell="gru", act="tanh", ract="sigmoid", reset_after=True, n=2, t=3, c=2, h=3,
                mask=None, go_backwards=False, return_sequences=True, use_bias=True, h0=True,
                c0=True, dropout=None, amp=0.5, seed=1)
    base.update(changes)
    return base


@pytest.mark.skipif(not COMPILED, reason="compiled extension not built")
@pytest.mark.parametrize("backend", COMPILED)
@settings(max_examples=budget(KERNEL_EXAMPLES), deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(case=kernel_cases())
# kept cases: a saturating GRU with both dropouts; one step with every row masked;
# the hard-sigmoid LSTM at amplitude 30, backwards, masked; a saturated GRU whose
# dkernel missed the elementwise tolerance (the reason for the normwise one); a
# saturated GRU whose y did (a pre-activation of terms ~900 cancelling to ~0.05);
# a SimpleRNN at amplitude 3 whose dU entry of 0.016 summed terms of ~5
@example(case=_case(amp=30.0, dropout="both", seed=7))
@example(case=_case(cell="simple_rnn", t=1, n=3, mask=np.zeros((3, 1), bool)))
@example(case=_case(cell="lstm", ract="hard_sigmoid", amp=30.0, go_backwards=True, t=5,
                    mask=np.array([[1, 0, 1, 1, 0], [0, 0, 0, 0, 1]], bool), seed=3))
@example(case=_case(cell="gru", ract="hard_sigmoid", reset_after=False, n=6, t=10, c=6, h=7,
                    h0=False, c0=False, dropout="recurrent", amp=30.0, seed=6))
@example(case=_case(n=7, t=12, c=8, h=31, use_bias=False, h0=False, c0=False, amp=30.0,
                    seed=471319))
@example(case=_case(cell="simple_rnn", n=6, t=6, c=1, h=31, return_sequences=False, c0=False,
                    dropout="both", amp=3.0, seed=1))
def test_kernels_against_reference(backend, case):
    check_kernel(backend, case)


# ------------------------------------------------------------------- models

RNN_LAYERS = ("SimpleRNN", "LSTM", "GRU")


@st.composite
def model_specs(draw):
    """A random model: an optional Embedding front (with or without mask_zero,
    so masks reach the recurrent layers), one to three recurrent layers (any of
    them bidirectional or backwards), a Dense head; Sequential, or functional
    with a second recurrent branch from the input merged by Add or Concatenate."""
    front = draw(st.sampled_from(["none", "embedding", "embedding_masked"]))
    n_rnn = draw(st.integers(1, 3))
    rnns = []
    for i in range(n_rnn):
        last = i == n_rnn - 1
        rnns.append(dict(kind=draw(st.sampled_from(RNN_LAYERS)),
                         units=draw(st.integers(1, 9)),
                         bidirectional=draw(st.booleans()),
                         go_backwards=draw(st.booleans()),
                         reset_after=draw(st.booleans()),
                         return_sequences=True if not last else draw(st.booleans())))
    functional = draw(st.booleans())
    return dict(front=front, rnns=rnns, functional=functional,
                merge=draw(st.sampled_from(["none", "add", "concatenate"])) if functional
                else "none",
                dense=draw(st.integers(1, 5)),
                activation=draw(st.sampled_from(["linear", "softmax", "tanh", "relu"])),
                n=draw(st.integers(1, 5)), t=draw(st.integers(1, 8)),
                c=draw(st.integers(1, 6)), seed=draw(st.integers(0, 2**31 - 1)))


def _recurrent(r, backend):
    kw = dict(return_sequences=r["return_sequences"], go_backwards=r["go_backwards"],
              backend=backend)
    if r["kind"] == "GRU":
        kw["reset_after"] = r["reset_after"]
    layer = getattr(RL, r["kind"])(r["units"], **kw)
    return RL.Bidirectional(layer) if r["bidirectional"] else layer


def build_model(spec, backend):
    """spec's model, each recurrent layer on ``backend``."""
    embedding = spec["front"] != "none"
    front = [RL.Embedding(11, spec["c"], mask_zero=spec["front"] == "embedding_masked")] \
        if embedding else []
    stack = [_recurrent(r, backend) for r in spec["rnns"]]
    head = RL.Dense(spec["dense"], activation=spec["activation"])
    shape = (spec["t"],) if embedding else (spec["t"], spec["c"])
    inp = RL.Input(shape, dtype="int32" if embedding else None)
    if not spec["functional"]:
        return RM.Sequential([inp] + front + stack + [head])
    x = inp
    for layer in front:
        x = layer(x)
    out = x
    for layer in stack:
        out = layer(out)
    if spec["merge"] != "none":
        # a second branch from the front with the last layer's output shape
        branch = _recurrent(dict(spec["rnns"][-1], kind="GRU", go_backwards=False), backend)(x)
        out = (RL.Add() if spec["merge"] == "add" else RL.Concatenate())([out, branch])
    return RM.Model(inp, head(out))


def model_inputs(spec):
    r = np.random.default_rng(spec["seed"])
    n, t, c = spec["n"], spec["t"], spec["c"]
    if spec["front"] != "none":
        x = r.integers(1, 11, (n, t))
        x[0, r.integers(0, t):] = 0          # a padded tail (masked with mask_zero)
        x[r.random((n, t)) < 0.2] = 0        # and masked steps anywhere
        return x
    return r.standard_normal((n, t, c)).astype(np.float32)


@pytest.mark.parametrize("backend", ["auto"] + COMPILED)
@settings(max_examples=budget(MODEL_EXAMPLES), deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(spec=model_specs())
def test_models_against_float64(backend, spec):
    """The float32 model on ``backend`` against the same model in float64 on the
    reference: outputs, and the gradients of a random projection of them with
    respect to every weight (the Layer contract's _run / backward_from)."""
    x = model_inputs(spec)
    model = build_model(spec, backend)
    weights = model.get_weights()
    with _float64_for_tests():
        ref = build_model(spec, "reference")
        ref.set_weights([np.asarray(w, np.float64) for w in weights])
        out64, ctx64 = ref._run(x if x.dtype != np.float32 else x.astype(np.float64),
                                True, {})
    out32, ctx32 = model._run(x, True, {})
    what = f"{backend} {spec}"
    for a, r in zip(flatten(out32), flatten(out64)):
        assert a.dtype == np.float32 and np.isfinite(a).all(), what
        assert_close(a, r, "forward_f32", what)
    rng = np.random.default_rng(spec["seed"] + 1)
    R = [rng.standard_normal(np.shape(o)) for o in flatten(out64)]
    _, g32 = model.backward_from(ctx32, pack_as(out32, [r.astype(np.float32) for r in R]))
    with _float64_for_tests():
        _, g64 = ref.backward_from(ctx64, pack_as(out64, R))
    assert len(g32) == len(g64) == len(weights)
    for k, (a, r) in enumerate(zip(g32, g64)):
        assert_close(a, r, "backward_f32", f"{what}: gradient {k}")


# ------------------------------------------------- losses, metrics, optimizers

def _keras():
    from helpers import keras_or_skip
    return keras_or_skip()


def keras_fuzz(test):
    """A Keras comparison drawing its case with st.data(): KERAS_EXAMPLES examples."""
    return settings(max_examples=budget(KERAS_EXAMPLES), deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])(given(data=st.data())(test))


@keras_fuzz
def test_losses_against_keras(data):
    _keras()
    import test_losses as TL
    name, make, kind = data.draw(st.sampled_from(TL.CASES), label="case")
    seq = data.draw(st.booleans(), label="sequence")
    n = data.draw(st.integers(1, 6), label="n")
    # classes need two columns; binary_edge sets two entries to 0 and 1
    f = data.draw(st.integers(2 if kind.startswith(("categorical", "sparse", "binary_edge"))
                              else 1, 6),
                  label="features")
    shape = (n, data.draw(st.integers(1, 5), label="t"), f) if seq else (n, f)
    seed = data.draw(st.integers(0, 10**6), label="seed")
    which = data.draw(st.sampled_from([None, "per_sample"] + (["per_step"] if seq else [])),
                      label="sample_weight")
    mask = None
    if seq and data.draw(st.booleans(), label="masked"):
        mask = np.random.default_rng(seed + 3).random(shape[:2]) > 0.3
    y_true, y_pred = TL.make_data(kind, shape, seed)
    TL.check_case(name, make, y_true, y_pred, TL.sample_weights(shape, which, seed), mask,
                  fd=False, normwise=True)


@keras_fuzz
def test_metrics_against_keras(data):
    _keras()
    import test_metrics as TM
    name, make, kind = data.draw(st.sampled_from(TM.CASES), label="case")
    kind = "binary" if kind == "reg_binary" else kind    # as test_metrics does
    seq = data.draw(st.booleans(), label="sequence")
    f = data.draw(st.integers(2, 5), label="features")
    tail = (data.draw(st.integers(1, 5), label="t"), f) if seq else (f,)
    which = data.draw(st.sampled_from([None, "per_sample"] + (["per_step"] if seq else [])),
                      label="sample_weight")
    seed = data.draw(st.integers(0, 10**6), label="seed")
    batches = data.draw(st.lists(st.integers(1, 7), min_size=1, max_size=4), label="batches")
    TM.run_both(make, kind, tail, which, seed, batches=batches)


OPTIMIZERS = {
    # class: the options drawn for it (name: strategy)
    "SGD": dict(momentum=st.sampled_from([0.0, 0.5, 0.9]), nesterov=st.booleans()),
    "Adam": dict(beta_1=st.sampled_from([0.8, 0.9]), beta_2=st.sampled_from([0.99, 0.999]),
                 epsilon=st.sampled_from([1e-7, 1e-3]), amsgrad=st.booleans()),
    "AdamW": dict(weight_decay=st.sampled_from([0.0, 0.004, 0.3]), amsgrad=st.booleans()),
    "RMSprop": dict(rho=st.sampled_from([0.5, 0.9]), momentum=st.sampled_from([0.0, 0.5]),
                    centered=st.booleans()),
    "Adagrad": dict(initial_accumulator_value=st.sampled_from([0.1, 0.5]),
                    epsilon=st.sampled_from([1e-7, 1e-3])),
}
COMMON = dict(clipnorm=st.none() | st.sampled_from([0.5, 2.0]),
              clipvalue=st.none() | st.sampled_from([0.3]),
              gradient_accumulation_steps=st.none() | st.sampled_from([2, 3]),
              use_ema=st.booleans())


@keras_fuzz
def test_optimizers_against_keras(data):
    _keras()
    import test_optimizers as TO
    cls = data.draw(st.sampled_from(sorted(OPTIMIZERS)), label="optimizer")
    kw = {k: data.draw(s, label=k) for k, s in OPTIMIZERS[cls].items()}
    common = {k: data.draw(s, label=k) for k, s in COMMON.items()}
    if common["clipnorm"] is not None and common["clipvalue"] is not None:
        common["clipvalue"] = None           # Keras takes one clipping option at a time
    kw.update({k: v for k, v in common.items() if v is not None and v is not False})
    kw["learning_rate"] = data.draw(st.sampled_from([0.001, 0.05, 0.3]), label="lr")
    seed = data.draw(st.integers(0, 10**6), label="seed")
    steps = data.draw(st.integers(1, 8), label="steps")
    scale = data.draw(st.sampled_from([1e-3, 1.0, 1e3]), label="gradient scale")
    TO.compare(lambda m: getattr(m, cls)(**kw), seed=seed, steps=steps, scale=scale,
               normwise=True)
