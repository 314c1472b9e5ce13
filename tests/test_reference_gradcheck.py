"""The NumPy reference (rnnkern.reference) checked on its own.

* float64 BPTT against float64 central finite differences, for every cell,
  activation, bias, go_backwards, return_sequences and mask pattern;
* float32 forward against float64 forward;
* hand-computed values of tiny cases (Keras 3's equations written out here,
  independently of the reference code);
* mask / go_backwards / training=False semantics;
* per-gate dropout masks: gradients by finite differences, and the masked
  forward against unmasked forwards with row-scaled weights;
* Keras 3 layers (torch backend) against the reference, when keras is installed.
"""
import math
import os
import zlib

import numpy as np
import pytest

from rnnkern import reference as R

try:
    from tolerances import assert_close
except ImportError:  # tests/ imported as a package
    from tests.tolerances import assert_close


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------

N, T, C = 3, 4, 3

# mask patterns, [N, T] (True = step is used)
MASKS = {
    "nomask": None,
    "right_pad": [[1, 1, 1, 1], [1, 1, 0, 0], [1, 0, 0, 0]],
    "left_pad": [[1, 1, 1, 1], [0, 0, 1, 1], [0, 0, 0, 1]],
    "holes": [[1, 0, 1, 0], [0, 1, 0, 1], [1, 0, 0, 1]],
    "full_masked_row": [[1, 1, 0, 1], [0, 0, 0, 0], [0, 1, 1, 0]],
}


def _mask(name):
    m = MASKS[name]
    return None if m is None else np.array(m, dtype=bool)


def _bias_shape(cell, H, reset_after):
    G = R.GATES[cell]
    if cell == "gru" and reset_after:
        return (2, G * H)
    return (G * H,)


def make_case(cell, H, use_bias, reset_after=True, seed=0, scale=1.0, dtype=np.float64):
    """Random inputs/weights/states for one layer; scale widens the pre-activations."""
    rng = np.random.default_rng(seed)
    G = R.GATES[cell]
    case = dict(
        x=rng.normal(0, scale, (N, T, C)),
        W=rng.normal(0, scale / math.sqrt(C), (C, G * H)),
        U=rng.normal(0, scale / math.sqrt(H), (H, G * H)),
        b=rng.normal(0, 0.5 * scale, _bias_shape(cell, H, reset_after)) if use_bias else None,
        h0=rng.normal(0, 0.5, (N, H)),
        c0=rng.normal(0, 0.5, (N, H)) if cell == "lstm" else None,
    )
    return {k: (None if v is None else v.astype(dtype)) for k, v in case.items()}


def forward(cell, case, mask, **kw):
    return R.rnn_forward(cell, case["x"], case["W"], case["U"], case["b"], case["h0"],
                         case["c0"], mask, **kw)


# kinks of the piecewise-linear activations, by name
KINKS = {"relu": (0.0,), "hard_sigmoid": (-3.0, 3.0)}


class KinkRecorder:
    """Wraps the reference's activations to record how close any pre-activation
    comes to a kink (relu: 0; hard_sigmoid: +-3) and whether the saturated
    region of hard_sigmoid was visited."""

    def __init__(self, monkeypatch):
        self.min_dist = np.inf
        self.saturated = False
        self.linear = False
        for name, kinks in KINKS.items():
            fn = R.ACTIVATIONS[name]

            def wrapped(v, fn=fn, kinks=kinks, name=name):
                v = np.asarray(v)
                if v.size:
                    for k in kinks:
                        self.min_dist = min(self.min_dist, float(np.min(np.abs(v - k))))
                    if name == "hard_sigmoid":
                        self.saturated |= bool(np.any(np.abs(v) > 3))
                        self.linear |= bool(np.any(np.abs(v) < 3))
                return fn(v)

            monkeypatch.setitem(R.ACTIVATIONS, name, wrapped)


# Finite-difference step. For relu / hard_sigmoid the gradient is only defined
# away from the kinks: each test case is redrawn (new seed) until every
# pre-activation of the unperturbed forward is at least KINK_MARGIN from a kink
# (measured by KinkRecorder). A perturbation of EPS moves a pre-activation by at
# most ~EPS * (sum of |weights| along the path) << KINK_MARGIN, so no central
# difference straddles a kink and the analytic derivative is the exact one.
EPS = 1e-6
KINK_MARGIN = 1e-3


def numeric_grad(f, arr, eps=EPS):
    """Central differences of the scalar f() w.r.t. every element of arr (in place)."""
    g = np.zeros_like(arr)
    it = np.nditer(arr, flags=["multi_index"])
    for _ in it:
        i = it.multi_index
        old = arr[i]
        arr[i] = old + eps
        fp = f()
        arr[i] = old - eps
        fm = f()
        arr[i] = old
        g[i] = (fp - fm) / (2 * eps)
    return g


# every cell configuration that must be gradient-checked
CELL_CONFIGS = (
    [pytest.param(dict(cell="simple_rnn", activation=a), id=f"simple_rnn-{a}")
     for a in ("tanh", "relu", "sigmoid", "hard_sigmoid", "linear")]
    + [pytest.param(dict(cell="lstm", activation="tanh", recurrent_activation=ra),
                    id=f"lstm-tanh-{ra}") for ra in ("sigmoid", "hard_sigmoid")]
    + [pytest.param(dict(cell="lstm", activation="relu", recurrent_activation="sigmoid"),
                    id="lstm-relu-sigmoid")]
    + [pytest.param(dict(cell="gru", activation="tanh", recurrent_activation=ra,
                         reset_after=ra_),
                    id=f"gru-{'resetafter' if ra_ else 'resetbefore'}-{ra}")
       for ra_ in (True, False) for ra in ("sigmoid", "hard_sigmoid")]
)

# go_backwards x return_sequences x use_bias: a strength-2 orthogonal array
# (every pair of the three options takes all four value combinations)
OPTIONS = [
    pytest.param(dict(go_backwards=False, return_sequences=True, use_bias=True), id="fwd-seq-bias"),
    pytest.param(dict(go_backwards=True, return_sequences=False, use_bias=True), id="bwd-last-bias"),
    pytest.param(dict(go_backwards=True, return_sequences=True, use_bias=False), id="bwd-seq-nobias"),
    pytest.param(dict(go_backwards=False, return_sequences=False, use_bias=False), id="fwd-last-nobias"),
]


# ---------------------------------------------------------------------------
# gradient check
# ---------------------------------------------------------------------------

def _case_away_from_kinks(monkeypatch, cell, H, use_bias, reset_after, scale, uses_hs,
                          uses_kink, mask, kw):
    """The first of 50 seeded cases whose forward keeps every relu / hard_sigmoid
    argument KINK_MARGIN away from a kink (and, for hard_sigmoid, visits both its
    clipped and its linear part), so finite differences see a smooth function; the
    case and its forward."""
    rec = KinkRecorder(monkeypatch)
    for seed in range(50):
        case = make_case(cell, H, use_bias, reset_after, seed=seed, scale=scale)
        rec.min_dist, rec.saturated, rec.linear = np.inf, False, False
        out = forward(cell, case, mask, **kw)
        if not uses_kink:
            return case, out
        if rec.min_dist > KINK_MARGIN and (not uses_hs or (rec.saturated and rec.linear)):
            return case, out
    pytest.fail("could not draw a case away from the activation kinks")


@pytest.mark.parametrize("mask_name", list(MASKS))
@pytest.mark.parametrize("opts", OPTIONS)
@pytest.mark.parametrize("cfg", CELL_CONFIGS)
def test_gradcheck(cfg, opts, mask_name, monkeypatch):
    cfg = dict(cfg)
    cell = cfg.pop("cell")
    use_bias = opts["use_bias"]
    reset_after = cfg.get("reset_after", True)
    kw = dict(cfg, go_backwards=opts["go_backwards"],
              return_sequences=opts["return_sequences"])
    mask = _mask(mask_name)
    H = 2 if cell == "simple_rnn" else 3
    uses_hs = "hard_sigmoid" in (cfg.get("activation"), cfg.get("recurrent_activation"))
    uses_kink = uses_hs or "relu" in (cfg.get("activation"), cfg.get("recurrent_activation"))
    # hard_sigmoid: wide pre-activations so the clipped region is exercised too
    scale = 2.5 if uses_hs else 1.0

    case, (y, hT, cT, cache) = _case_away_from_kinks(monkeypatch, cell, H, use_bias,
                                                     reset_after, scale, uses_hs, uses_kink,
                                                     mask, kw)

    rng = np.random.default_rng(1234)
    R1 = rng.normal(size=y.shape)
    R2 = rng.normal(size=hT.shape)
    R3 = rng.normal(size=cT.shape) if cell == "lstm" else None

    def loss():
        y_, h_, c_, _ = forward(cell, case, mask, training=False, **kw)
        out = np.sum(y_ * R1) + np.sum(h_ * R2)
        if cell == "lstm":
            out += np.sum(c_ * R3)
        return out

    grads = R.rnn_backward(cache, R1, R2, R3)
    assert isinstance(grads, tuple) and len(grads) == 6
    dx, dW, dU, db, dh0, dc0 = grads
    names = [("x", dx), ("W", dW), ("U", dU), ("b", db), ("h0", dh0), ("c0", dc0)]
    for name, analytic in names:
        if case[name] is None:
            assert analytic is None, f"d{name} should be None"
            continue
        assert analytic.dtype == np.float64
        numeric = numeric_grad(loss, case[name])
        assert_close(analytic, numeric, "gradcheck_f64", f"d{name}")


def test_dh0_dc0_and_zero_cotangents():
    """dh_T/dc_T None means zero; return_sequences=False dy is [N, H]."""
    case = make_case("lstm", 3, True)
    y, hT, cT, cache = forward("lstm", case, None, return_sequences=False)
    dy = np.ones_like(y)
    g_none = R.rnn_backward(cache, dy)
    g_zero = R.rnn_backward(cache, dy, np.zeros_like(hT), np.zeros_like(cT))
    for a, b in zip(g_none, g_zero):
        np.testing.assert_array_equal(a, b)


# ---------------------------------------------------------------------------
# float32 vs float64
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("mask_name", ["nomask", "holes"])
@pytest.mark.parametrize("cfg", CELL_CONFIGS)
def test_float32_forward_matches_float64(cfg, mask_name):
    cfg = dict(cfg)
    cell = cfg.pop("cell")
    case64 = make_case(cell, 4, True, cfg.get("reset_after", True), seed=7)
    case32 = {k: (None if v is None else v.astype(np.float32)) for k, v in case64.items()}
    mask = _mask(mask_name)
    y64, h64, c64, _ = forward(cell, case64, mask, **cfg)
    y32, h32, c32, cache32 = forward(cell, case32, mask, **cfg)
    assert y32.dtype == np.float32 and h32.dtype == np.float32
    assert_close(y32, y64, "reference_f32", "y")
    assert_close(h32, h64, "reference_f32", "h_T")
    if cell == "lstm":
        assert c32.dtype == np.float32
        assert_close(c32, c64, "reference_f32", "c_T")
    g32 = R.rnn_backward(cache32, np.ones_like(y32))
    assert all(g is None or g.dtype == np.float32 for g in g32)


def test_other_real_dtypes_compute_in_float64():
    case = make_case("gru", 2, True)
    x16 = case["x"].astype(np.float16)
    y, h, c, _ = R.rnn_forward("gru", x16, case["W"], case["U"], case["b"], case["h0"])
    assert y.dtype == np.float64 and h.dtype == np.float64 and c is None
    xi = np.ones((N, T, C), dtype=np.int32)
    y, h, c, _ = R.rnn_forward("gru", xi, case["W"], case["U"], case["b"], case["h0"])
    assert y.dtype == np.float64


def test_unknown_names_raise():
    case = make_case("simple_rnn", 2, True)
    with pytest.raises(ValueError):
        forward("elman", case, None)
    with pytest.raises(ValueError):
        forward("simple_rnn", case, None, activation="softplus")
    case = make_case("lstm", 2, True)
    with pytest.raises(ValueError):
        forward("lstm", case, None, recurrent_activation="swish")


def test_activations_and_derivatives():
    v = np.array([-5.0, -3.5, -1.0, -0.2, 0.3, 1.0, 2.9, 3.5, 7.0])
    np.testing.assert_allclose(R.hard_sigmoid(v), np.clip(v / 6 + 0.5, 0, 1))
    np.testing.assert_allclose(R.sigmoid(v), 1 / (1 + np.exp(-v)))
    np.testing.assert_allclose(R.sigmoid(np.array([-1000.0, 1000.0])), [0.0, 1.0])
    np.testing.assert_allclose(R.relu(v), np.maximum(v, 0))
    np.testing.assert_allclose(R.linear(v), v)
    # derivatives from the OUTPUT, vs. central differences of the function
    for name in R.ACTIVATIONS:
        f, d = R.ACTIVATIONS[name], R.DERIVATIVES[name]
        num = (f(v + 1e-6) - f(v - 1e-6)) / 2e-6
        np.testing.assert_allclose(d(f(v)), num, atol=1e-6, err_msg=name)


# ---------------------------------------------------------------------------
# hand-computed tiny cases (N=1, T=2, C=1, H=1), Keras 3's equations written out
# ---------------------------------------------------------------------------

def _sig(v):
    return 1 / (1 + math.exp(-v))


def _hsig(v):
    return min(max(v / 6 + 0.5, 0.0), 1.0)


X2 = [0.5, -1.2]   # the two timesteps of the single feature


def test_hand_simple_rnn():
    w, u, b, h0 = 0.7, -0.4, 0.1, 0.3
    h1 = math.tanh(X2[0] * w + h0 * u + b)
    h2 = math.tanh(X2[1] * w + h1 * u + b)
    y, hT, cT, _ = R.rnn_forward("simple_rnn", np.array(X2).reshape(1, 2, 1), [[w]], [[u]],
                                 [b], [[h0]])
    assert_close(y.ravel(), [h1, h2], "exact_f64", "y")
    assert_close(hT.ravel(), [h2], "exact_f64", "h_T")
    assert cT is None
    # relu, no bias, go_backwards: processes X2[1] first
    g1 = max(X2[1] * w + h0 * u, 0.0)
    g2 = max(X2[0] * w + g1 * u, 0.0)
    y, hT, _, _ = R.rnn_forward("simple_rnn", np.array(X2).reshape(1, 2, 1), [[w]], [[u]],
                                None, [[h0]], activation="relu", go_backwards=True)
    assert_close(y.ravel(), [g1, g2], "exact_f64", "y backwards")


@pytest.mark.parametrize("ract", ["sigmoid", "hard_sigmoid"])
def test_hand_lstm(ract):
    ra = _sig if ract == "sigmoid" else _hsig
    W = [0.5, -0.3, 0.8, 1.1]      # i, f, c, o
    U = [0.2, 0.4, -0.6, 0.3]
    b = [0.1, 1.0, -0.2, 0.05]
    h, c = 0.25, -0.5
    hs = []
    for xt in X2:
        z = [xt * W[k] + h * U[k] + b[k] for k in range(4)]
        i, f, g, o = ra(z[0]), ra(z[1]), math.tanh(z[2]), ra(z[3])
        c = f * c + i * g
        h = o * math.tanh(c)
        hs.append(h)
    y, hT, cT, _ = R.rnn_forward("lstm", np.array(X2).reshape(1, 2, 1), [W], [U], b,
                                 [[0.25]], [[-0.5]], recurrent_activation=ract)
    assert_close(y.ravel(), hs, "exact_f64", "y")
    assert_close(hT.ravel(), [h], "exact_f64", "h_T")
    assert_close(cT.ravel(), [c], "exact_f64", "c_T")


@pytest.mark.parametrize("reset_after", [True, False], ids=["reset_after", "reset_before"])
def test_hand_gru(reset_after):
    W = [0.5, -0.3, 0.8]           # z, r, h
    U = [0.2, 0.4, -0.6]
    b_in = [0.1, -0.2, 0.3]
    b_rec = [-0.05, 0.15, 0.25]
    h = 0.4
    hs = []
    for xt in X2:
        if reset_after:
            z = _sig(xt * W[0] + b_in[0] + h * U[0] + b_rec[0])
            r = _sig(xt * W[1] + b_in[1] + h * U[1] + b_rec[1])
            hh = math.tanh(xt * W[2] + b_in[2] + r * (h * U[2] + b_rec[2]))
        else:
            z = _sig(xt * W[0] + b_in[0] + h * U[0])
            r = _sig(xt * W[1] + b_in[1] + h * U[1])
            hh = math.tanh(xt * W[2] + b_in[2] + (r * h) * U[2])
        h = z * h + (1 - z) * hh
        hs.append(h)
    bias = [b_in, b_rec] if reset_after else b_in
    y, hT, cT, _ = R.rnn_forward("gru", np.array(X2).reshape(1, 2, 1), [W], [U], bias,
                                 [[0.4]], reset_after=reset_after)
    assert_close(y.ravel(), hs, "exact_f64", "y")
    assert_close(hT.ravel(), [h], "exact_f64", "h_T")
    assert cT is None


# ---------------------------------------------------------------------------
# mask / go_backwards / training semantics
# ---------------------------------------------------------------------------

SEM_CELLS = [pytest.param(("simple_rnn", True), id="simple_rnn"),
             pytest.param(("lstm", True), id="lstm"),
             pytest.param(("gru", True), id="gru-resetafter"),
             pytest.param(("gru", False), id="gru-resetbefore")]


@pytest.mark.parametrize("go_backwards", [False, True], ids=["fwd", "bwd"])
@pytest.mark.parametrize("cell_ra", SEM_CELLS)
def test_mask_semantics(cell_ra, go_backwards):
    cell, reset_after = cell_ra
    case = make_case(cell, 3, True, reset_after, seed=3)
    mask = _mask("full_masked_row")          # row 1 fully masked, row 2 starts masked
    kw = dict(reset_after=reset_after, go_backwards=go_backwards)
    y, hT, cT, _ = forward(cell, case, mask, **kw)
    # fully masked row: zero outputs, initial states returned
    np.testing.assert_array_equal(y[1], 0)
    np.testing.assert_array_equal(hT[1], case["h0"][1])
    if cell == "lstm":
        np.testing.assert_array_equal(cT[1], case["c0"][1])
    # masked steps repeat the previous output; zeros before the first unmasked step
    m = mask[:, ::-1] if go_backwards else mask    # processing order
    for n in range(N):
        seen = False
        for s in range(T):
            if m[n, s]:
                seen = True
            elif seen:
                np.testing.assert_array_equal(y[n, s], y[n, s - 1])
            else:
                np.testing.assert_array_equal(y[n, s], 0)
    # the final state is the last output of a row that had any unmasked step
    np.testing.assert_array_equal(hT[[0, 2]], y[[0, 2], -1])
    # a masked step ignores its input entirely
    case2 = dict(case, x=np.where(mask[:, :, None], case["x"], 1e3))
    y2, hT2, cT2, _ = forward(cell, case2, mask, **kw)
    np.testing.assert_array_equal(y2, y)
    np.testing.assert_array_equal(hT2, hT)
    # an all-True mask is the same as no mask
    y3, hT3, _, _ = forward(cell, case, np.ones((N, T), bool), **kw)
    y4, hT4, _, _ = forward(cell, case, None, **kw)
    np.testing.assert_array_equal(y3, y4)
    np.testing.assert_array_equal(hT3, hT4)


@pytest.mark.parametrize("cell_ra", SEM_CELLS)
def test_go_backwards_equals_reversed_input(cell_ra):
    cell, reset_after = cell_ra
    case = make_case(cell, 3, True, reset_after, seed=5)
    mask = _mask("holes")
    y, hT, cT, cache = forward(cell, case, mask, reset_after=reset_after, go_backwards=True)
    rcase = dict(case, x=case["x"][:, ::-1].copy())
    yr, hTr, cTr, rcache = forward(cell, rcase, mask[:, ::-1].copy(), reset_after=reset_after)
    assert_close(y, yr, "exact_f64", "y")
    assert_close(hT, hTr, "exact_f64", "h_T")
    if cell == "lstm":
        assert_close(cT, cTr, "exact_f64", "c_T")
    # and the gradients: dx comes back on the original time axis
    rng = np.random.default_rng(0)
    dy, dh = rng.normal(size=y.shape), rng.normal(size=hT.shape)
    dc = rng.normal(size=hT.shape) if cell == "lstm" else None
    g = R.rnn_backward(cache, dy, dh, dc)
    gr = R.rnn_backward(rcache, dy, dh, dc)
    assert_close(g[0], gr[0][:, ::-1], "exact_f64", "dx")
    for a, b, name in zip(g[1:], gr[1:], ["dW", "dU", "db", "dh0", "dc0"]):
        if b is None:
            assert a is None
        else:
            assert_close(a, b, "exact_f64", name)


@pytest.mark.parametrize("cell_ra", SEM_CELLS)
def test_training_false_and_return_sequences(cell_ra):
    cell, reset_after = cell_ra
    case = make_case(cell, 3, True, reset_after, seed=9)
    mask = _mask("left_pad")
    y, hT, cT, cache = forward(cell, case, mask, reset_after=reset_after, training=False)
    assert cache is None
    assert y.shape == (N, T, 3) and hT.shape == (N, 3)
    assert (cT is not None) == (cell == "lstm")
    yl, hTl, _, cache = forward(cell, case, mask, reset_after=reset_after,
                                return_sequences=False)
    assert cache is not None
    assert yl.shape == (N, 3)
    assert_close(yl, y[:, -1], "exact_f64", "last output")
    assert_close(hTl, hT, "exact_f64", "h_T")


def test_bias_none_gives_dbias_none():
    for cell in ("simple_rnn", "lstm", "gru"):
        case = make_case(cell, 2, False)
        y, hT, cT, cache = forward(cell, case, None)
        g = R.rnn_backward(cache, np.ones_like(y))
        assert g[3] is None
        assert (g[5] is None) == (cell != "lstm")


# ---------------------------------------------------------------------------
# per-gate dropout masks (Keras' implementation=1: recurrent_dropout > 0)
# ---------------------------------------------------------------------------

def gate_masks(cell, D, rng, keep=0.6, dtype=np.float64):
    """[G, N, D] dropout masks: 0 or 1/keep, independent per gate."""
    G = R.GATES[cell]
    return ((rng.random((G, N, D)) < keep) / keep).astype(dtype)


DROP_KINDS = ["both", "input", "recurrent"]


def _drop_masks(kind, cell, H, seed):
    rng = np.random.default_rng(seed)
    im = gate_masks(cell, C, rng) if kind in ("both", "input") else None
    rm = gate_masks(cell, H, rng) if kind in ("both", "recurrent") else None
    return im, rm


# which masks x which timestep mask (each dropout kind once, each with every option)
@pytest.mark.parametrize("drop,mask_name", [("both", "holes"), ("input", "full_masked_row"),
                                            ("recurrent", "nomask")])
@pytest.mark.parametrize("opts", OPTIONS)
@pytest.mark.parametrize("cfg", CELL_CONFIGS)
def test_gradcheck_dropout_masks(cfg, opts, mask_name, drop, monkeypatch):
    """The reference's BPTT with per-gate input and recurrent dropout masks
    against float64 central differences of its forward (the masks held fixed)."""
    cfg = dict(cfg)
    cell = cfg.pop("cell")
    use_bias = opts["use_bias"]
    reset_after = cfg.get("reset_after", True)
    kw = dict(cfg, go_backwards=opts["go_backwards"],
              return_sequences=opts["return_sequences"])
    mask = _mask(mask_name)
    H = 2 if cell == "simple_rnn" else 3
    uses_hs = "hard_sigmoid" in (cfg.get("activation"), cfg.get("recurrent_activation"))
    uses_kink = uses_hs or "relu" in (cfg.get("activation"), cfg.get("recurrent_activation"))
    scale = 2.5 if uses_hs else 1.0
    # a stable seed: hash() of a str changes with each process (PYTHONHASHSEED)
    im, rm = _drop_masks(drop, cell, H, seed=zlib.crc32(f"{drop}/{mask_name}".encode()))
    kw.update(input_masks=im, recurrent_masks=rm)

    case, (y, hT, cT, cache) = _case_away_from_kinks(monkeypatch, cell, H, use_bias,
                                                     reset_after, scale, uses_hs, uses_kink,
                                                     mask, kw)

    rng = np.random.default_rng(99)
    R1 = rng.normal(size=y.shape)
    R2 = rng.normal(size=hT.shape)
    R3 = rng.normal(size=cT.shape) if cell == "lstm" else None

    def loss():
        y_, h_, c_, _ = forward(cell, case, mask, training=False, **kw)
        out = np.sum(y_ * R1) + np.sum(h_ * R2)
        if cell == "lstm":
            out += np.sum(c_ * R3)
        return out

    dx, dW, dU, db, dh0, dc0 = R.rnn_backward(cache, R1, R2, R3)
    for name, analytic in [("x", dx), ("W", dW), ("U", dU), ("b", db), ("h0", dh0),
                           ("c0", dc0)]:
        if case[name] is None:
            assert analytic is None, f"d{name} should be None"
            continue
        numeric = numeric_grad(loss, case[name])
        assert_close(analytic, numeric, "gradcheck_f64", f"d{name} ({drop} masks)")


def _scaled_rows(M, masks, n, G):
    """diag(masks[g][n]) M_g for every gate block g of M: (v * m) M_g == v (diag(m) M_g)."""
    H = M.shape[1] // G
    out = M.copy()
    for g in range(G):
        out[:, g * H:(g + 1) * H] *= masks[g][n][:, None]
    return out


@pytest.mark.parametrize("go_backwards", [False, True], ids=["fwd", "bwd"])
@pytest.mark.parametrize("cell_ra", [("simple_rnn", True), ("lstm", True), ("gru", True),
                                     ("gru", False)], ids=lambda v: f"{v[0]}-{v[1]}")
def test_dropout_masks_are_row_scaled_weights(cell_ra, go_backwards):
    """Independently of the reference's mask code: row n of a masked forward equals
    a forward of that row alone, unmasked, with each gate's weight rows scaled by its
    masks, since (v ⊙ m_g) M_g = v diag(m_g) M_g. This pins down which gate reads
    which mask, that the masks do not depend on time, and what is never dropped
    (GRU's h_prev in its update, LSTM's c_prev)."""
    cell, reset_after = cell_ra
    G, H = R.GATES[cell], 3
    case = make_case(cell, H, True, reset_after, seed=5)
    im, rm = _drop_masks("both", cell, H, seed=8)
    mask = _mask("holes")
    kw = dict(reset_after=reset_after, go_backwards=go_backwards, training=False)
    y, hT, cT, _ = forward(cell, case, mask, input_masks=im, recurrent_masks=rm, **kw)
    for n in range(N):
        row = lambda v: None if v is None else v[n:n + 1]  # noqa: E731
        yn, hn, cn, _ = R.rnn_forward(
            cell, row(case["x"]), _scaled_rows(case["W"], im, n, G),
            _scaled_rows(case["U"], rm, n, G), case["b"], row(case["h0"]), row(case["c0"]),
            row(mask), **kw)
        assert_close(y[n:n + 1], yn, "exact_f64", f"row {n} y")
        assert_close(hT[n:n + 1], hn, "exact_f64", f"row {n} h_T")
        if cell == "lstm":
            assert_close(cT[n:n + 1], cn, "exact_f64", f"row {n} c_T")


def test_dropout_masks_of_ones_change_nothing():
    for cell, ra in [("simple_rnn", True), ("lstm", True), ("gru", True), ("gru", False)]:
        G = R.GATES[cell]
        case = make_case(cell, 3, True, ra, seed=2)
        y0, h0, c0, k0 = forward(cell, case, None, reset_after=ra)
        y1, h1, c1, k1 = forward(cell, case, None, reset_after=ra,
                                 input_masks=np.ones((G, N, C)),
                                 recurrent_masks=np.ones((G, N, 3)))
        assert_close(y1, y0, "exact_f64", f"{cell} y")
        for a, b in zip(R.rnn_backward(k1, np.ones_like(y1)), R.rnn_backward(k0, np.ones_like(y0))):
            if b is not None:
                assert_close(a, b, "exact_f64", f"{cell} grads")


def test_dropout_mask_shapes_are_checked():
    case = make_case("lstm", 3, True)
    with pytest.raises(ValueError, match=r"recurrent_masks must have shape \(G, N, H\)"):
        forward("lstm", case, None, recurrent_masks=np.ones((3, N, 3)))
    with pytest.raises(ValueError, match=r"input_masks must have shape \(G, N, C\)"):
        forward("lstm", case, None, input_masks=np.ones((4, N, 3, 1)))


# ---------------------------------------------------------------------------
# Keras 3 (torch backend, float32) against the reference (float64)
# ---------------------------------------------------------------------------

KERAS_CASES = [
    pytest.param(("simple_rnn", dict(activation="tanh")), id="simple_rnn-tanh"),
    pytest.param(("simple_rnn", dict(activation="relu")), id="simple_rnn-relu"),
    pytest.param(("lstm", dict(recurrent_activation="sigmoid")), id="lstm-sigmoid"),
    pytest.param(("lstm", dict(recurrent_activation="hard_sigmoid")), id="lstm-hard_sigmoid"),
    pytest.param(("gru", dict(reset_after=True)), id="gru-resetafter"),
    pytest.param(("gru", dict(reset_after=False)), id="gru-resetbefore"),
    pytest.param(("gru", dict(reset_after=True, recurrent_activation="hard_sigmoid",
                              use_bias=False)), id="gru-resetafter-hard_sigmoid-nobias"),
]


@pytest.fixture(scope="module")
def keras():
    os.environ.setdefault("KERAS_BACKEND", "torch")
    return pytest.importorskip("keras")


# keras' torch backend calls np.array(tensor) (a NumPy 2 copy= DeprecationWarning)
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.parametrize("mask_name", ["nomask", "full_masked_row", "left_pad"])
@pytest.mark.parametrize("go_backwards", [False, True], ids=["fwd", "bwd"])
@pytest.mark.parametrize("kcase", KERAS_CASES)
def test_matches_keras(keras, kcase, go_backwards, mask_name):
    cell, opts = kcase
    opts = dict(opts)
    use_bias = opts.pop("use_bias", True)
    reset_after = opts.get("reset_after", True)
    H = 3
    layer_cls = {"simple_rnn": keras.layers.SimpleRNN, "lstm": keras.layers.LSTM,
                 "gru": keras.layers.GRU}[cell]
    case = make_case(cell, H, use_bias, reset_after, seed=11, dtype=np.float32)
    mask = _mask(mask_name)
    ops = keras.ops
    init = [case["h0"]] + ([case["c0"]] if cell == "lstm" else [])
    weights = [case["W"], case["U"]] + ([case["b"]] if use_bias else [])
    for return_sequences in (True, False):
        layer = layer_cls(H, use_bias=use_bias, return_sequences=return_sequences,
                          return_state=True, go_backwards=go_backwards, **opts)
        layer.build((N, T, C))
        layer.set_weights(weights)
        out = layer(ops.convert_to_tensor(case["x"]),
                    mask=None if mask is None else ops.convert_to_tensor(mask),
                    initial_state=[ops.convert_to_tensor(s) for s in init])
        out = [ops.convert_to_numpy(o) for o in out]
        case64 = {k: (None if v is None else v.astype(np.float64)) for k, v in case.items()}
        y, hT, cT, _ = forward(cell, case64, mask, go_backwards=go_backwards,
                               return_sequences=return_sequences, training=False, **opts)
        what = f"return_sequences={return_sequences}"
        assert_close(out[0], y, "keras_f32", "y " + what)
        assert_close(out[1], hT, "keras_f32", "h_T " + what)
        if cell == "lstm":
            assert_close(out[2], cT, "keras_f32", "c_T " + what)
