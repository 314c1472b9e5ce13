"""A CNN-LSTM on frames of a moving dot (the Keras CNN-LSTM notebooks'
model): TimeDistributed(Conv2D), TimeDistributed(MaxPooling2D) and
TimeDistributed(Flatten) turn each frame into features, an LSTM reads the
sequence of frames, and Dense(softmax) tells in which direction the dot
moves (up, down, left or right).

    python examples/cnn_lstm.py          # about 30 s on 2 cores
    python examples/cnn_lstm.py --quick

Writes examples/cnn_lstm.png (a few sequences and their predictions).
"""
import time

import numpy as np

from rnnkern.layers import LSTM, Conv2D, Dense, Flatten, Input, MaxPooling2D, TimeDistributed
from rnnkern.models import Sequential
from rnnkern.utils import set_random_seed, to_categorical

from _common import QUICK, out_path, pyplot

SIZE, FRAMES = 16, 8
MOVES = {0: (-1, 0), 1: (1, 0), 2: (0, -1), 3: (0, 1)}   # up, down, left, right
NAMES = ["up", "down", "left", "right"]


def make_videos(n, rng):
    x = 0.1 * rng.random((n, FRAMES, SIZE, SIZE, 1)).astype("float32")
    labels = rng.integers(0, 4, size=n)
    for i, d in enumerate(labels):
        dr, dc = MOVES[int(d)]
        r = rng.integers(FRAMES - 1, SIZE - FRAMES + 1)   # room for FRAMES - 1 moves
        c = rng.integers(FRAMES - 1, SIZE - FRAMES + 1)
        for t in range(FRAMES):
            x[i, t, r + dr * t, c + dc * t, 0] = 1.0
    return x, labels


def main():
    set_random_seed(2)
    rng = np.random.default_rng(0)
    x, labels = make_videos(300 if QUICK else 2000, rng)
    y = to_categorical(labels, 4).astype("float32")
    model = Sequential([
        Input((None, SIZE, SIZE, 1)),
        TimeDistributed(Conv2D(8, (3, 3), activation="relu")),
        TimeDistributed(MaxPooling2D((2, 2))),
        TimeDistributed(Flatten()),
        LSTM(16),
        Dense(4, activation="softmax"),
    ])
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    model.summary()
    start = time.perf_counter()
    model.fit(x, y, batch_size=32, epochs=2 if QUICK else 6, validation_split=0.2, verbose=2)
    seconds = time.perf_counter() - start
    tx, tl = make_videos(400, rng)
    pred = model.predict(tx, verbose=0).argmax(-1)
    accuracy = float(np.mean(pred == tl))
    print(f"trained in {seconds:.1f} s; test accuracy {accuracy:.3f}")
    plt = pyplot()
    if plt is not None:
        fig, axes = plt.subplots(4, FRAMES, figsize=(FRAMES * 1.2, 5.4))
        for row in range(4):
            for t in range(FRAMES):
                ax = axes[row, t]
                ax.imshow(tx[row, t, :, :, 0], cmap="gray_r", vmin=0, vmax=1)
                ax.set_xticks([])
                ax.set_yticks([])
            axes[row, 0].set_ylabel(f"{NAMES[tl[row]]}\n-> {NAMES[pred[row]]}", fontsize=9)
        fig.suptitle(f"Moving dot: true -> predicted direction (test accuracy {accuracy:.3f})")
        fig.tight_layout()
        fig.savefig(out_path("cnn_lstm.png"), dpi=80)
        print("wrote", out_path("cnn_lstm.png"))
    return accuracy


if __name__ == "__main__":
    main()
