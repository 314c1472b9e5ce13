"""NumPy reference of one recurrent layer (one direction): forward and BPTT.

This module is the oracle every kernel is tested against. It is written for
clarity, not speed, and imports only NumPy and the standard library. The
contract (shapes, weight layout, mask and go_backwards semantics) is the one in
``rnnkern/ops.py``; the equations are Keras 3's (keras/src/layers/rnn/
{simple_rnn,lstm,gru}.py and the generic loop of keras/src/backend/*/rnn.py):

SimpleRNN   h = act(x W + b + h_prev U)

LSTM        z = x W + h_prev U + b, split i, f, c, o (in that order)
            i = ract(z_i)   f = ract(z_f)   g = act(z_c)   o = ract(z_o)
            c = f * c_prev + i * g
            h = o * act(c)

GRU         gates split z, r, h (in that order)
            reset_after=True  (bias [2, 3H]: row 0 input bias, row 1 recurrent bias)
                mx = x W + b_in          mi = h_prev U + b_rec
                z  = ract(mx_z + mi_z)   r = ract(mx_r + mi_r)
                hh = act(mx_h + r * mi_h)
            reset_after=False (bias [3H])
                mx = x W + b
                z  = ract(mx_z + h_prev U_z)   r = ract(mx_r + h_prev U_r)
                hh = act(mx_h + (r * h_prev) U_h)
            h = z * h_prev + (1 - z) * hh

Masks (Keras 3, torch backend loop): at a step whose mask is False the states
are carried through unchanged and the output repeats the previous output, which
is zeros before the first unmasked step. Because every cell's output IS its new
h, "the previous output" equals the carried h once an unmasked step has been
seen, so y_s = seen_s * h_s where h_s is the (carried) state after step s and
seen_s says whether any step <= s was unmasked.

Dropout masks (Keras 3's ``implementation=1`` cells, the path Keras takes
when ``recurrent_dropout > 0``): ``input_masks`` [G, N, C] and
``recurrent_masks`` [G, N, H] hold one mask per gate, fixed over all timesteps
(drawn once per layer call; entries 0 or 1/(1-rate)). Gate g's pre-activation
then reads (x ⊙ d_g) W_g and (h_prev ⊙ m_g) U_g; SimpleRNN has G = 1.
GRU reset_after: the h block is r * ((h_prev ⊙ m_h) U_h + b_rec_h);
reset_after=False: ((r * (h_prev ⊙ m_h)) U_h). What is never dropped: the
h_prev of GRU's final update h = z * h_prev + (1 - z) * hh, and LSTM's c_prev.
None (the default) means no mask: every gate reads x and h_prev as they are.

go_backwards reverses x and mask along time; outputs are returned in processing
order (y[:, s] is the output of the s-th processed step), the last output is
that of the last processed step (original t = 0).

precision="bf16" (every backend's bf16 mode, CPU and GPU): the kernel and recurrent kernel
are rounded to bfloat16 (``round_bf16``: via float32, to nearest even), and so
is every product's other operand before dropout masks scale it: x_t, h_prev,
and reset_before GRU's r * (h_prev ⊙ m_h). Products are exact and summed in the
working precision; states and the cell's math are unrounded. The backward is the
one below with the rounded weights, rounding passing gradients straight
through, and bf16 products there too: each step's pre-activation gradients dz
(what the products read of them) and, in the weight gradients, x and h_prev
(and reset_before GRU's r * h_prev) are rounded: dW = round(x)^T dz, dU =
round(h_prev)^T dz, dx = dz W^T, dh_prev = dz U^T (+ the cell's direct terms,
unrounded), db = sum dz. Dropout masks scale the rounded operands.

Backward never re-evaluates a nonlinearity: every derivative is computed from
the saved activation OUTPUT (see ``DERIVATIVES``).
"""
from __future__ import annotations

import numpy as np

CELLS = ("simple_rnn", "lstm", "gru")
GATES = {"simple_rnn": 1, "lstm": 4, "gru": 3}


def round_bf16(a, dtype=None):
    """``a`` rounded to bfloat16 (via float32; to nearest, ties to even; Inf and
    NaN kept), in ``dtype`` (default: a's, float32 or float64)."""
    a = np.asarray(a)
    dt = np.dtype(dtype) if dtype is not None else _compute_dtype(a)
    a32 = np.asarray(a, np.float32)
    u = a32.view(np.uint32)
    with np.errstate(over="ignore"):
        r = ((u + np.uint32(0x7FFF) + ((u >> np.uint32(16)) & np.uint32(1)))
             & np.uint32(0xFFFF0000)).view(np.float32)
    return np.where(np.isfinite(a32), r, a32).astype(dt, copy=False)


PRECISIONS = ("fp32", "bf16")


def _operand_rounding(precision, dt):
    """What a product reads of an operand v: round_bf16(v) in bf16, v itself in fp32."""
    if precision == "bf16":
        return lambda v: round_bf16(v, dt)
    return lambda v: v


# --------------------------------------------------------------------------
# Activations, and their derivatives expressed from the activation's output y
# --------------------------------------------------------------------------

def tanh(x):
    return np.tanh(x)


def relu(x):
    return np.maximum(x, 0)


def sigmoid(x):
    # 1 / (1 + exp(-x)) without overflow warnings for large |x|
    x = np.asarray(x)
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype, copy=False)


def hard_sigmoid(x):
    """Keras 3: clip(x / 6 + 1/2, 0, 1)."""
    x = np.asarray(x)
    return np.clip(x / 6 + 0.5, 0, 1).astype(x.dtype, copy=False)


def linear(x):
    return np.asarray(x)


def dtanh(y):
    return 1 - y * y


def drelu(y):
    return (y > 0).astype(y.dtype)


def dsigmoid(y):
    return y * (1 - y)


def dhard_sigmoid(y):
    # slope 1/6 strictly inside the linear part, 0 where clipped
    return ((y > 0) & (y < 1)).astype(y.dtype) / 6


def dlinear(y):
    return np.ones_like(y)


ACTIVATIONS = {"tanh": tanh, "relu": relu, "sigmoid": sigmoid,
               "hard_sigmoid": hard_sigmoid, "linear": linear}
DERIVATIVES = {"tanh": dtanh, "relu": drelu, "sigmoid": dsigmoid,
               "hard_sigmoid": dhard_sigmoid, "linear": dlinear}


def _activation(name):
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; expected one of {list(ACTIVATIONS)}")
    return ACTIVATIONS[name], DERIVATIVES[name]


def _compute_dtype(x):
    dt = np.asarray(x).dtype
    return dt if dt in (np.float32, np.float64) else np.dtype(np.float64)


def _check_gate_masks(masks, G, N, D, name, dt):
    if masks is None:
        return None
    m = np.array(masks, dtype=dt)   # a copy: the cache keeps it for the backward
    if m.shape != (G, N, D):
        raise ValueError(f"{name} must have shape (G, N, {'C' if name == 'input_masks' else 'H'})"
                         f" = {(G, N, D)}, got {m.shape}")
    return m


def _gate_input(v, masks, g):
    """What gate g reads of v ([N, D]): v itself, or v * masks[g]."""
    return v if masks is None else v * masks[g]


def _project(v, M, masks, gates):
    """[ (v ⊙ masks[g]) @ M_g for g in gates ] side by side, where M_g is gate g's
    H-column block of M; without masks that is simply v @ M[:, those blocks]."""
    if masks is None:
        return v @ M
    H = M.shape[1] // len(gates)
    return np.concatenate([_gate_input(v, masks, g) @ M[:, i * H:(i + 1) * H]
                           for i, g in enumerate(gates)], axis=1)


def _project_back(d, M, masks, gates):
    """Gradient reaching v from _project(v, M, masks, gates) given d = the
    gradient of its output: sum over the gates of (d_g @ M_g^T) ⊙ masks[g]."""
    if masks is None:
        return d @ M.T
    H = M.shape[1] // len(gates)
    return sum(_gate_input(d[:, i * H:(i + 1) * H] @ M[:, i * H:(i + 1) * H].T, masks, g)
               for i, g in enumerate(gates))


def _outer(v, d, masks, gates):
    """Gradient reaching M from _project(v, M, masks, gates): the blocks
    (v ⊙ masks[g])^T @ d_g side by side."""
    if masks is None:
        return v.T @ d
    H = d.shape[1] // len(gates)
    return np.concatenate([_gate_input(v, masks, g).T @ d[:, i * H:(i + 1) * H]
                           for i, g in enumerate(gates)], axis=1)


# --------------------------------------------------------------------------
# Cache
# --------------------------------------------------------------------------

class ReferenceCache:
    """Everything rnn_backward needs. Time axes are in PROCESSING order."""

    def __init__(self, **kw):
        self.__dict__.update(kw)

    def __repr__(self):
        return (f"ReferenceCache(cell={self.cell!r}, N={self.N}, T={self.T}, "
                f"H={self.H}, dtype={self.dtype})")


# --------------------------------------------------------------------------
# Forward
# --------------------------------------------------------------------------

def rnn_forward(cell, x, kernel, recurrent_kernel, bias, h0, c0=None, mask=None, *,
                activation="tanh", recurrent_activation="sigmoid", reset_after=True,
                go_backwards=False, return_sequences=True, training=True,
                input_masks=None, recurrent_masks=None, precision="fp32"):
    """Forward of one layer; returns (y, h_T, c_T, cache). See the module docstring
    (input_masks [G, N, C], recurrent_masks [G, N, H]: per-gate dropout masks, or None;
    precision "fp32" (exact products) or "bf16")."""
    if cell not in CELLS:
        raise ValueError(f"unknown cell {cell!r}; expected one of {list(CELLS)}")
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {list(PRECISIONS)}, got {precision!r}")
    act, _ = _activation(activation)
    ract, _ = _activation(recurrent_activation)

    dt = _compute_dtype(x)
    x = np.asarray(x, dtype=dt)
    N, T, _C = x.shape
    W = np.asarray(kernel, dtype=dt)
    U = np.asarray(recurrent_kernel, dtype=dt)
    rd = _operand_rounding(precision, dt)   # what every product reads
    W, U = rd(W), rd(U)
    H = U.shape[0]
    b = None if bias is None else np.asarray(bias, dtype=dt)
    h0 = np.zeros((N, H), dt) if h0 is None else np.asarray(h0, dtype=dt).reshape(N, H)
    if cell == "lstm":
        c0 = np.zeros((N, H), dt) if c0 is None else np.asarray(c0, dtype=dt).reshape(N, H)
    else:
        c0 = None
    G = GATES[cell]
    im = _check_gate_masks(input_masks, G, N, _C, "input_masks", dt)
    rm = _check_gate_masks(recurrent_masks, G, N, H, "recurrent_masks", dt)
    all_gates = range(G)

    # processing order: order[s] is the original time index of the s-th step
    order = np.arange(T)[::-1] if go_backwards else np.arange(T)
    xs = x[:, order, :]
    if mask is None:
        ms = np.ones((N, T), dtype=bool)
    else:
        ms = np.asarray(mask).astype(bool).reshape(N, T)[:, order]
    seen = np.logical_or.accumulate(ms, axis=1) if T else ms  # any unmasked step so far

    h, c = h0, c0
    hs = np.zeros((N, T, H), dt)      # state after each step (carried through masked steps)
    hprev = np.zeros((N, T, H), dt)   # state before each step
    cprev = np.zeros((N, T, H), dt) if cell == "lstm" else None
    saved = {}                        # per-gate activations, each [N, T, H]

    def save(name, s, value):
        if name not in saved:
            saved[name] = np.zeros((N, T, H), dt)
        saved[name][:, s] = value

    for s in range(T):
        xt = xs[:, s]
        m = ms[:, s][:, None]
        hprev[:, s] = h

        if cell == "simple_rnn":
            pre = _project(rd(xt), W, im, all_gates) + _project(rd(h), U, rm, all_gates)
            if b is not None:
                pre = pre + b
            a = act(pre)
            save("a", s, a)
            h_new, c_new = a, None

        elif cell == "lstm":
            cprev[:, s] = c
            z = _project(rd(xt), W, im, all_gates) + _project(rd(h), U, rm, all_gates)
            if b is not None:
                z = z + b
            i = ract(z[:, 0 * H:1 * H])
            f = ract(z[:, 1 * H:2 * H])
            g = act(z[:, 2 * H:3 * H])
            o = ract(z[:, 3 * H:4 * H])
            c_new = f * c + i * g
            ac = act(c_new)
            h_new = o * ac
            for name, v in (("i", i), ("f", f), ("g", g), ("o", o), ("ac", ac)):
                save(name, s, v)

        else:  # gru
            mx = _project(rd(xt), W, im, all_gates)
            if reset_after:
                mi = _project(rd(h), U, rm, all_gates)
                if b is not None:
                    mx = mx + b[0]
                    mi = mi + b[1]
                z = ract(mx[:, :H] + mi[:, :H])
                r = ract(mx[:, H:2 * H] + mi[:, H:2 * H])
                mi_h = mi[:, 2 * H:]
                hh = act(mx[:, 2 * H:] + r * mi_h)
                save("mi_h", s, mi_h)
            else:
                if b is not None:
                    mx = mx + b
                mi = _project(rd(h), U[:, :2 * H], rm, (0, 1))
                z = ract(mx[:, :H] + mi[:, :H])
                r = ract(mx[:, H:2 * H] + mi[:, H:2 * H])
                hh = act(mx[:, 2 * H:] + rd(r * _gate_input(h, rm, 2)) @ U[:, 2 * H:])
            h_new = z * h + (1 - z) * hh   # the undropped h_prev
            c_new = None
            for name, v in (("z", z), ("r", r), ("hh", hh)):
                save(name, s, v)

        # Keras' masked step: states carried through where mask is False
        h = np.where(m, h_new, h)
        if cell == "lstm":
            c = np.where(m, c_new, c)
        hs[:, s] = h

    # outputs: repeat previous output on masked steps, zeros before the first unmasked one
    y_all = np.where(seen[:, :, None], hs, np.zeros((), dt))
    if return_sequences:
        y = y_all
    else:
        y = y_all[:, -1] if T else np.zeros((N, H), dt)
    h_T = h
    c_T = c if cell == "lstm" else None

    if not training:
        return y, h_T, c_T, None

    cache = ReferenceCache(
        cell=cell, activation=activation, recurrent_activation=recurrent_activation,
        reset_after=bool(reset_after), go_backwards=bool(go_backwards),
        return_sequences=bool(return_sequences), dtype=dt, N=N, T=T, C=_C, H=H,
        order=order, xs=xs, W=W, U=U, b=b, has_bias=b is not None,
        mask=ms, seen=seen, hprev=hprev, cprev=cprev, saved=saved,
        input_masks=im, recurrent_masks=rm, precision=precision)
    return y, h_T, c_T, cache


# --------------------------------------------------------------------------
# Backward (BPTT)
# --------------------------------------------------------------------------

def rnn_backward(cache, dy, dh_T=None, dc_T=None):
    """BPTT of the forward that returned ``cache``.

    Returns the plain tuple (dx, dkernel, drecurrent_kernel, dbias, dh0, dc0);
    dbias is None when the forward had no bias, dc0 is None unless LSTM.
    """
    k = cache
    dt, N, T, H, cell = k.dtype, k.N, k.T, k.H, k.cell
    _, dact = _activation(k.activation)
    _, dract = _activation(k.recurrent_activation)
    W, U, b = k.W, k.U, k.b
    rd = _operand_rounding(k.precision, dt)   # every product's operands (module docstring)

    dy = np.asarray(dy, dtype=dt)
    # gradient arriving at the post-step state h_s from the outputs:
    # y_s = seen_s * h_s (see the module docstring)
    dh_out = np.zeros((N, T, H), dt)
    if k.return_sequences:
        dh_out += dy.reshape(N, T, H) * k.seen[:, :, None]
    elif T:
        dh_out[:, -1] += dy.reshape(N, H) * k.seen[:, -1][:, None]

    dh = np.zeros((N, H), dt) if dh_T is None else np.asarray(dh_T, dtype=dt).reshape(N, H).copy()
    dc = None
    if cell == "lstm":
        dc = np.zeros((N, H), dt) if dc_T is None else np.asarray(dc_T, dtype=dt).reshape(N, H).copy()

    dxs = np.zeros_like(k.xs)
    dW = np.zeros_like(W)
    dU = np.zeros_like(U)
    db = None if b is None else np.zeros_like(b)
    sv = k.saved
    im, rm = k.input_masks, k.recurrent_masks
    all_gates = range(GATES[cell])

    for s in range(T - 1, -1, -1):
        dh = dh + dh_out[:, s]          # total gradient w.r.t. the state after step s
        m = k.mask[:, s][:, None].astype(dt)
        xt = k.xs[:, s]
        hp = k.hprev[:, s]
        xr, hr = rd(xt), rd(hp)         # as the products read them
        # the cell sees only the unmasked rows; masked rows pass straight through
        dh_cell = dh * m
        dh_pass = dh * (1 - m)

        if cell == "simple_rnn":
            a = sv["a"][:, s]
            dpre = rd(dh_cell * dact(a))
            dW += _outer(xr, dpre, im, all_gates)
            dU += _outer(hr, dpre, rm, all_gates)
            if db is not None:
                db += dpre.sum(axis=0)
            dxs[:, s] = _project_back(dpre, W, im, all_gates)
            dh = _project_back(dpre, U, rm, all_gates) + dh_pass

        elif cell == "lstm":
            i, f, g, o, ac = (sv[n][:, s] for n in ("i", "f", "g", "o", "ac"))
            cp = k.cprev[:, s]
            dc_cell = dc * m
            dc_pass = dc * (1 - m)
            do = dh_cell * ac
            dct = dc_cell + dh_cell * o * dact(ac)     # total gradient w.r.t. the new c
            di = dct * g
            df = dct * cp
            dg = dct * i
            dz = rd(np.concatenate([di * dract(i), df * dract(f), dg * dact(g), do * dract(o)],
                                   axis=1))
            dW += _outer(xr, dz, im, all_gates)
            dU += _outer(hr, dz, rm, all_gates)
            if db is not None:
                db += dz.sum(axis=0)
            dxs[:, s] = _project_back(dz, W, im, all_gates)
            dh = _project_back(dz, U, rm, all_gates) + dh_pass
            dc = dct * f + dc_pass

        else:  # gru
            z, r, hh = sv["z"][:, s], sv["r"][:, s], sv["hh"][:, s]
            dz_ = dh_cell * (hp - hh)
            dhh = dh_cell * (1 - z)
            dh_prev = dh_cell * z                       # through the undropped h_prev
            dah = dhh * dact(hh)                        # grad of hh's pre-activation
            if k.reset_after:
                mi_h = sv["mi_h"][:, s]
                dr = dah * mi_h
                daz = dz_ * dract(z)
                dar = dr * dract(r)
                dmx = rd(np.concatenate([daz, dar, dah], axis=1))
                dmi = rd(np.concatenate([daz, dar, dah * r], axis=1))
                dU += _outer(hr, dmi, rm, all_gates)
                dh_prev = dh_prev + _project_back(dmi, U, rm, all_gates)
                if db is not None:
                    db[0] += dmx.sum(axis=0)
                    db[1] += dmi.sum(axis=0)
            else:
                Uzr, Uh = U[:, :2 * H], U[:, 2 * H:]
                hp_h = _gate_input(hp, rm, 2)            # what the h block reads of h_prev
                dah = rd(dah)
                drh = dah @ Uh.T                         # grad of (r * hp_h)
                dr = drh * hp_h
                dh_prev = dh_prev + _gate_input(drh * r, rm, 2)
                daz = rd(dz_ * dract(z))
                dar = rd(dr * dract(r))
                dzr = np.concatenate([daz, dar], axis=1)
                dU[:, :2 * H] += _outer(hr, dzr, rm, (0, 1))
                dU[:, 2 * H:] += rd(r * hp_h).T @ dah
                dh_prev = dh_prev + _project_back(dzr, Uzr, rm, (0, 1))
                dmx = np.concatenate([daz, dar, dah], axis=1)
                if db is not None:
                    db += dmx.sum(axis=0)
            dW += _outer(xr, dmx, im, all_gates)
            dxs[:, s] = _project_back(dmx, W, im, all_gates)
            dh = dh_prev + dh_pass

    dx = np.zeros_like(dxs)
    dx[:, k.order] = dxs
    dh0 = dh
    dc0 = dc if cell == "lstm" else None
    return dx, dW, dU, db, dh0, dc0
