"""Sentiment-style text classification: token sequences of different lengths,
padded, through Embedding(mask_zero=True) + Bidirectional(LSTM) + Dense, as
the Keras IMDB notebooks build it. The data is generated: a "review" is a
random sequence of words, and its label says whether it holds more
"positive" than "negative" words (the padding zeros are masked, so the
lengths do not matter).

    python examples/text_classification.py          # about 20 s on 2 cores
    python examples/text_classification.py --quick

Writes examples/text_classification.png (loss and accuracy per epoch).
"""
import time

import numpy as np

from rnnkern import layers, models
from rnnkern.utils import pad_sequences, set_random_seed

from _common import QUICK, out_path, pyplot

VOCAB = 200             # word ids 1..199; 0 is the padding
POSITIVE = np.arange(1, 11)
NEGATIVE = np.arange(11, 21)
MAXLEN = 40


def reviews(n, rng):
    """n token lists of 8..40 words and their labels."""
    seqs, labels = [], []
    for _ in range(n):
        length = rng.integers(8, MAXLEN + 1)
        words = rng.integers(21, VOCAB, size=length)
        k_pos, k_neg = rng.integers(0, 5, size=2)
        while k_pos == k_neg:
            k_pos, k_neg = rng.integers(0, 5, size=2)
        where = rng.choice(length, size=k_pos + k_neg, replace=False)
        words[where[:k_pos]] = rng.choice(POSITIVE, size=k_pos)
        words[where[k_pos:]] = rng.choice(NEGATIVE, size=k_neg)
        seqs.append(words.tolist())
        labels.append(int(k_pos > k_neg))
    return seqs, np.array(labels, dtype="float32")


def main():
    set_random_seed(3)
    rng = np.random.default_rng(0)
    n_train = 400 if QUICK else 4000
    train_seqs, y_train = reviews(n_train, rng)
    test_seqs, y_test = reviews(1000, rng)
    x_train = pad_sequences(train_seqs, maxlen=MAXLEN)   # zeros before the words
    x_test = pad_sequences(test_seqs, maxlen=MAXLEN)

    model = models.Sequential([
        layers.Input((MAXLEN,)),
        layers.Embedding(VOCAB, 16, mask_zero=True),
        layers.Bidirectional(layers.LSTM(16)),
        layers.Dense(1, activation="sigmoid"),
    ])
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    model.summary()
    start = time.perf_counter()
    history = model.fit(x_train, y_train, epochs=2 if QUICK else 8, batch_size=32,
                        validation_split=0.2, verbose=2)
    seconds = time.perf_counter() - start
    loss, accuracy = model.evaluate(x_test, y_test, verbose=0)
    print(f"trained in {seconds:.1f} s; test accuracy {accuracy:.3f} (loss {loss:.3f})")
    plt = pyplot()
    if plt is not None:
        h = history.history
        fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.5))
        ax1.plot(h["loss"], label="loss")
        ax1.plot(h["val_loss"], label="val_loss")
        ax1.set(title="Binary cross-entropy", xlabel="epoch")
        ax1.legend()
        ax2.plot(h["accuracy"], label="accuracy")
        ax2.plot(h["val_accuracy"], label="val_accuracy")
        ax2.set(title=f"Accuracy (test: {accuracy:.3f})", xlabel="epoch")
        ax2.legend()
        fig.tight_layout()
        fig.savefig(out_path("text_classification.png"), dpi=80)
        print("wrote", out_path("text_classification.png"))
    return accuracy


if __name__ == "__main__":
    main()
