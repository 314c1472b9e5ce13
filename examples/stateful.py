"""A stateful RNN over long series cut into consecutive chunks (Keras'
stateful-RNN notebooks): the layer keeps its states from one batch to the
next, so a chunk's first steps see everything before them, where a
stateless model starts from zeros at every chunk.

8 long noisy series, each read in chunks of 25 steps: batch k holds the k-th
chunk of every series (so training runs with shuffle=False and a batch size
of 8, fixed by Input(batch_shape=(8, None, 1))); the states are reset at the
start of each epoch. The model predicts the next value at every step.

    python examples/stateful.py          # about 20 s on 2 cores
    python examples/stateful.py --quick

Writes examples/stateful.png.
"""
import time

import numpy as np

from rnnkern.callbacks import LambdaCallback
from rnnkern.layers import LSTM, Dense, Input
from rnnkern.models import Sequential
from rnnkern.utils import set_random_seed

from _common import QUICK, out_path, pyplot

SERIES, CHUNK = 8, 25


def make_series(length, rng):
    t = np.arange(length + 1)
    period = rng.uniform(60, 120, size=(SERIES, 1))
    phase = rng.uniform(0, 2 * np.pi, size=(SERIES, 1))
    s = np.sin(2 * np.pi * t / period + phase) + 0.1 * rng.standard_normal((SERIES, length + 1))
    return s.astype("float32")


def chunked(s):
    """(x, y) with batch k = the k-th chunk of every series, y = x shifted by one."""
    n_chunks = (s.shape[1] - 1) // CHUNK
    x = s[:, :n_chunks * CHUNK].reshape(SERIES, n_chunks, CHUNK)
    y = s[:, 1:n_chunks * CHUNK + 1].reshape(SERIES, n_chunks, CHUNK)
    x = x.transpose(1, 0, 2).reshape(-1, CHUNK, 1)     # chunk-major
    y = y.transpose(1, 0, 2).reshape(-1, CHUNK, 1)
    return x, y


def build(stateful):
    if stateful:
        first = Input(batch_shape=(SERIES, None, 1))
    else:
        first = Input(shape=(None, 1))
    model = Sequential([first, LSTM(32, return_sequences=True, stateful=stateful), Dense(1)])
    model.compile(optimizer="adam", loss="mse")
    return model


def main():
    set_random_seed(5)
    rng = np.random.default_rng(0)
    length = 1000 if QUICK else 4000
    x, y = chunked(make_series(length, rng))
    tx, ty = chunked(make_series(1000, rng))
    epochs = 2 if QUICK else 15
    results = {}
    for stateful in (True, False):
        model = build(stateful)
        reset = LambdaCallback(on_epoch_begin=lambda epoch, logs: model.reset_states())
        start = time.perf_counter()
        model.fit(x, y, batch_size=SERIES, epochs=epochs, shuffle=False, callbacks=[reset],
                  verbose=0)
        seconds = time.perf_counter() - start
        model.reset_states()
        pred = model.predict(tx, batch_size=SERIES, verbose=0)
        err = (pred - ty) ** 2
        results[stateful] = (pred, err)
        name = "stateful " if stateful else "stateless"
        print(f"{name}: trained in {seconds:.1f} s; test MSE {err.mean():.4f}, over each "
              f"chunk's first 3 steps {err[:, :3].mean():.4f}")
    plt = pyplot()
    if plt is not None:
        fig, ax = plt.subplots(figsize=(10, 3.5))
        n = 8 * CHUNK  # the first 8 chunks of series 0
        truth = ty[::SERIES][:8].reshape(-1)
        ax.plot(truth, color="0.5", lw=1, label="series")
        for stateful, (pred, err) in results.items():
            ax.plot(pred[::SERIES][:8].reshape(-1), lw=1,
                    label=("stateful" if stateful else "stateless") + f" (MSE {err.mean():.4f})")
        for k in range(1, 8):
            ax.axvline(k * CHUNK, color="0.85", lw=0.8)
        ax.set(title="Next-step prediction; grey lines: chunk boundaries", xlim=(0, n))
        ax.legend()
        fig.tight_layout()
        fig.savefig(out_path("stateful.png"), dpi=80)
        print("wrote", out_path("stateful.png"))
    return {k: float(v[1].mean()) for k, v in results.items()}


if __name__ == "__main__":
    main()
