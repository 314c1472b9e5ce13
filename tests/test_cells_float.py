"""The shared cell math (csrc/include/rnnkern/cells.h) instantiated with plain
float — the value type of the CUDA thread bodies and of nothing else on the
CPU, whose kernels use the SIMD types — against the float64 NumPy reference.

One step of every cell, every activation and recurrent activation, both GRU
variants, forward and backward, through _core.testing.cell_step_float (elementwise over
the N*H units of the step). The reference runs the same step as a layer of one
timestep whose kernel is the identity (C = G*H), so its x IS the input part of
the pre-activations and its dx IS d(pre-activation) as x W + b sees it.
"""
import itertools

import numpy as np
import pytest

from rnnkern import reference

from tolerances import assert_close

_core = pytest.importorskip("rnnkern._core", reason="compiled extension not built")

ACTS = ("tanh", "relu", "sigmoid", "hard_sigmoid", "linear")
GATES = {"simple_rnn": 1, "lstm": 4, "gru": 3}
# (cell, activation, recurrent_activation, reset_after)
CASES = ([("simple_rnn", a, "sigmoid", False) for a in ACTS]
         + [(cell, a, ra, rst) for cell, rst in (("lstm", False), ("gru", True), ("gru", False))
            for a, ra in itertools.product(ACTS, ACTS)])
N, H = 3, 16


def case_id(c):
    cell, a, ra, rst = c
    v = cell if cell != "gru" else f"gru_{'ra' if rst else 'rb'}"
    return f"{v}-{a}-{ra}" if cell != "simple_rnn" else f"{v}-{a}"


def gate_cols(m, G):
    """[N, G*H] -> (G, N*H): gate g of unit (n, j) at [g, n*H + j], as the binding reads it."""
    return np.ascontiguousarray(m.reshape(N, G, H).transpose(1, 0, 2).reshape(G, N * H))


def ungate(a, G):
    """(G, N*H) -> [N, G*H]."""
    return np.asarray(a, np.float64).reshape(G, N, H).transpose(1, 0, 2).reshape(N, G * H)


def flat(v):
    return np.ascontiguousarray(np.asarray(v).reshape(N * H))


def f32(a):
    return np.ascontiguousarray(a, dtype=np.float32)


def step(cell, act, ract, reset_after, rng, mask=None):
    """The reference's one step and the binding's inputs for it."""
    G = GATES[cell]
    x = rng.standard_normal((N, 1, G * H))
    W = np.eye(G * H)
    U = rng.standard_normal((H, G * H)) * 0.5 / np.sqrt(H)
    b = rng.standard_normal((2, G * H) if cell == "gru" and reset_after else (G * H,)) * 0.3
    h0 = rng.standard_normal((N, H)) * 0.5
    c0 = rng.standard_normal((N, H)) * 0.5 if cell == "lstm" else None
    kw = dict(activation=act, recurrent_activation=ract, reset_after=reset_after,
              return_sequences=False, training=True)
    y, hT, cT, cache = reference.rnn_forward(cell, x, W, U, b, h0, c0, mask, **kw)
    xs = x[:, 0]
    inputs = dict(h_prev=f32(flat(h0)))
    if cell == "gru" and reset_after:
        inputs["pre"] = f32(gate_cols(xs + b[0], G))
        inputs["rec"] = f32(gate_cols(h0 @ U + b[1], G))
    elif cell == "gru":
        pre = xs + b
        pre[:, :2 * H] += h0 @ U[:, :2 * H]
        inputs["pre"] = f32(gate_cols(pre, G))
        # what the h block's product is given r (the kernels form it from their own r)
        inputs["rhu"] = f32(flat((cache.saved["r"][:, 0] * h0) @ U[:, 2 * H:]))
    else:
        inputs["pre"] = f32(gate_cols(xs + b + h0 @ U, G))
    if cell == "lstm":
        inputs["c_prev"] = f32(flat(c0))
    return dict(G=G, U=U, y=y, hT=hT, cT=cT, cache=cache, inputs=inputs)


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_cell_step_float_forward_backward(case, rng):
    cell, act, ract, rst = case
    st = step(cell, act, ract, rst, rng)
    G, U, cache = st["G"], st["U"], st["cache"]
    sv = {k: v[:, 0] for k, v in cache.saved.items()}

    dy = rng.standard_normal((N, H))
    dc = rng.standard_normal((N, H)) if cell == "lstm" else None
    dx, _dW, _dU, _db, dh0, dc0 = reference.rnn_backward(cache, dy, None, dc)
    dpre_ref = dx[:, 0]  # [N, G*H]: W is the identity
    bw = dict(dh=f32(flat(dy)))
    if cell == "lstm":
        bw["dc"] = f32(flat(dc))
    if cell == "gru" and not rst:
        # d(r h_prev) = dhh U_h^T, the product between the two backward phases
        bw["drh"] = f32(flat(dpre_ref[:, 2 * H:] @ U[:, 2 * H:].T))

    out = _core.testing.cell_step_float(cell, act, ract, rst, **st["inputs"], **bw)

    # forward: the activations kept for BPTT and the new state
    names = {"simple_rnn": {"h_new": "a"},
             "lstm": {n: n for n in ("i", "f", "g", "o", "ac")},
             "gru": {n: n for n in ("z", "r", "hh")}}[cell]
    for mine, ref in names.items():
        assert_close(out[mine], flat(sv[ref]), "cell_step_f32", f"{case_id(case)} {mine}")
    assert_close(out["h_new"], flat(st["y"]), "cell_step_f32", f"{case_id(case)} h")
    assert_close(out["h"], flat(st["hT"]), "cell_step_f32", f"{case_id(case)} h carried")
    assert_close(out["y"], flat(st["y"]), "cell_step_f32", f"{case_id(case)} y")
    if cell == "lstm":
        assert_close(out["c_new"], flat(st["cT"]), "cell_step_f32", f"{case_id(case)} c")
    if cell == "gru" and not rst:
        assert_close(out["rh"], flat(sv["r"] * cache.hprev[:, 0]), "cell_step_f32",
                     f"{case_id(case)} r h_prev")

    # backward: d(pre-activation) as x W + b sees it, and what reaches h_prev / c_prev
    assert_close(ungate(out["dpre"], G), dpre_ref, "cell_step_f32", f"{case_id(case)} dpre")
    K = 2 * H if cell == "gru" and not rst else G * H  # the columns of U that h_prev multiplies
    dh_prev = flat(out["dh_direct"]).reshape(N, H) + ungate(out["dpre_rec"], G)[:, :K] @ U[:, :K].T
    assert_close(dh_prev, dh0, "cell_step_f32", f"{case_id(case)} dh_prev")
    if cell == "lstm":
        assert_close(out["dc_prev"], flat(dc0), "cell_step_f32", f"{case_id(case)} dc_prev")


@pytest.mark.parametrize("cell,reset_after", [("simple_rnn", False), ("lstm", False),
                                              ("gru", True), ("gru", False)])
def test_cell_step_float_masked_carry(cell, reset_after, rng):
    """h = m ? h_new : h_prev (c likewise), y = seen ? h : 0: against the reference's
    masked step of one timestep (there seen == m), and for any seen."""
    mask = np.array([[True], [False], [True]])
    st = step(cell, "tanh", "sigmoid", reset_after, rng, mask=mask)
    m = flat(np.repeat(mask, H, axis=1))
    out = _core.testing.cell_step_float(cell, "tanh", "sigmoid", reset_after, **st["inputs"],
                                 mask=m, seen=m)
    assert_close(out["h"], flat(st["hT"]), "cell_step_f32", "h carried")
    assert_close(out["y"], flat(st["y"]), "cell_step_f32", "y")
    if cell == "lstm":
        assert_close(out["c"], flat(st["cT"]), "cell_step_f32", "c carried")
        assert np.array_equal(out["c"], np.where(m, out["c_new"], st["inputs"]["c_prev"]))

    seen = rng.random(N * H) > 0.5
    out = _core.testing.cell_step_float(cell, "tanh", "sigmoid", reset_after, **st["inputs"],
                                 mask=m, seen=seen)
    h = np.where(m, out["h_new"], st["inputs"]["h_prev"])
    assert np.array_equal(out["h"], h)
    assert np.array_equal(out["y"], np.where(seen, h, np.float32(0)))


def test_cell_step_float_checks_its_arguments():
    z = np.zeros((4, 5), np.float32)
    with pytest.raises(ValueError, match="c_prev"):
        _core.testing.cell_step_float("lstm", "tanh", "sigmoid", False, z, np.zeros(5, np.float32))
    with pytest.raises(ValueError, match="pre must have shape"):
        _core.testing.cell_step_float("gru", "tanh", "sigmoid", True, z, np.zeros(5, np.float32))
    with pytest.raises(ValueError, match="activation"):
        _core.testing.cell_step_float("simple_rnn", "softplus", "sigmoid", False, z[:1],
                               np.zeros(5, np.float32))
