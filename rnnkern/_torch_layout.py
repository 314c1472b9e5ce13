"""PyTorch's recurrent weight layout <-> rnnkern's (Keras'), in NumPy only (so
the benchmark and anything else may use it without importing torch).

torch.nn keeps, per layer and direction, ``weight_ih`` [G*H, C], ``weight_hh``
[G*H, H] and two biases ``bias_ih``, ``bias_hh`` [G*H], gate blocks in torch's
order (LSTM i, f, g, o; GRU r, z, n). rnnkern's kernels take Keras' layout:
W [C, G*H], U [H, G*H], gate blocks LSTM i, f, c, o and GRU z, r, h, one bias
[G*H] (SimpleRNN, LSTM: torch's two biases are only ever added) or, for GRU,
[2, G*H] (row 0 input bias, row 1 recurrent bias: torch's GRU is Keras'
reset_after=True form, the recurrent bias inside the reset gate's product).
"""
from __future__ import annotations

import numpy as np

#: torch gate block j holds Keras gate block TORCH_GATE_PERM[cell][j]
#: (LSTM: Keras i,f,c,o == torch i,f,g,o; GRU: Keras z,r,h -> torch r,z,n).
TORCH_GATE_PERM = {"simple_rnn": (0,), "lstm": (0, 1, 2, 3), "gru": (1, 0, 2)}


def keras_to_torch_cols(m, cell):
    """[..., G*H] in Keras gate order -> [..., G*H] in torch gate order."""
    perm = TORCH_GATE_PERM[cell]
    if perm == tuple(range(len(perm))):
        return m
    H = m.shape[-1] // len(perm)
    return np.concatenate([m[..., k * H:(k + 1) * H] for k in perm], axis=-1)


def torch_to_keras_cols(m, cell):
    """[..., G*H] in torch gate order -> [..., G*H] in Keras gate order."""
    perm = TORCH_GATE_PERM[cell]
    if perm == tuple(range(len(perm))):
        return m
    inv = [perm.index(k) for k in range(len(perm))]
    H = m.shape[-1] // len(perm)
    return np.concatenate([m[..., j * H:(j + 1) * H] for j in inv], axis=-1)


def to_keras(cell, w_ih, w_hh, b_ih=None, b_hh=None, dtype=np.float32):
    """NumPy arrays in torch's layout -> (W, U, b) in Keras' (b None without biases)."""
    W = np.ascontiguousarray(torch_to_keras_cols(np.asarray(w_ih).T, cell), dtype=dtype)
    U = np.ascontiguousarray(torch_to_keras_cols(np.asarray(w_hh).T, cell), dtype=dtype)
    if b_ih is None:
        return W, U, None
    bi = torch_to_keras_cols(np.asarray(b_ih), cell)
    bh = torch_to_keras_cols(np.asarray(b_hh), cell)
    if cell == "gru":
        b = np.ascontiguousarray(np.stack([bi, bh]), dtype=dtype)
    else:
        b = np.ascontiguousarray(bi + bh, dtype=dtype)
    return W, U, b


def to_torch(cell, W, U, b=None):
    """(W, U, b) in Keras' layout -> (w_ih, w_hh, b_ih, b_hh) NumPy arrays in torch's.
    A single Keras bias goes to bias_ih, with bias_hh zero (torch adds the two)."""
    w_ih = np.ascontiguousarray(keras_to_torch_cols(np.asarray(W), cell).T)
    w_hh = np.ascontiguousarray(keras_to_torch_cols(np.asarray(U), cell).T)
    if b is None:
        return w_ih, w_hh, None, None
    b = np.asarray(b)
    if cell == "gru":
        if b.ndim != 2:
            raise ValueError("a GRU bias must be [2, 3*H] (Keras reset_after=True), "
                             f"got shape {b.shape}")
        return (w_ih, w_hh, np.ascontiguousarray(keras_to_torch_cols(b[0], cell)),
                np.ascontiguousarray(keras_to_torch_cols(b[1], cell)))
    return (w_ih, w_hh, np.ascontiguousarray(keras_to_torch_cols(b, cell)),
            np.zeros_like(b))


def grads_to_torch(cell, dW, dU, db):
    """Keras-layout gradients -> (d w_ih, d w_hh, d b_ih, d b_hh) in torch's layout;
    for SimpleRNN and LSTM both biases get the one bias' gradient."""
    d_ih = np.ascontiguousarray(keras_to_torch_cols(dW, cell).T)
    d_hh = np.ascontiguousarray(keras_to_torch_cols(dU, cell).T)
    if db is None:
        return d_ih, d_hh, None, None
    if cell == "gru":
        return (d_ih, d_hh, np.ascontiguousarray(keras_to_torch_cols(db[0], cell)),
                np.ascontiguousarray(keras_to_torch_cols(db[1], cell)))
    dbt = np.ascontiguousarray(keras_to_torch_cols(db, cell))
    return d_ih, d_hh, dbt, dbt.copy()
