"""A functional encoder-decoder (the Keras seq2seq notebook's model) that
learns to reverse short sequences of digits.

The encoder LSTM reads the one-hot sequence and returns its states [h, c];
the decoder LSTM starts from them and, trained with teacher forcing, reads
the reversed sequence shifted by a start token; Dense(softmax) predicts each
next digit. Inference reuses the trained layers in two new models (the
encoder, and a one-step decoder fed its own states), decoding greedily.

    python examples/seq2seq.py          # about 30 s on 2 cores
    python examples/seq2seq.py --quick

Writes examples/seq2seq.png (the loss curves and a few decoded sequences).
"""
import time

import numpy as np

from rnnkern.layers import LSTM, Dense, Input
from rnnkern.models import Model
from rnnkern.utils import set_random_seed, to_categorical

from _common import QUICK, out_path, pyplot

DIGITS = 10            # tokens 0..9, and 10 = the start token
TOKENS = DIGITS + 1
LENGTH = 6
LATENT = 64


def make_data(n, rng):
    seqs = rng.integers(0, DIGITS, size=(n, LENGTH))
    target = seqs[:, ::-1]
    decoder_in = np.concatenate([np.full((n, 1), DIGITS), target[:, :-1]], axis=1)
    return (to_categorical(seqs, TOKENS).astype("float32"),
            to_categorical(decoder_in, TOKENS).astype("float32"),
            to_categorical(target, TOKENS).astype("float32"), seqs)


def main():
    set_random_seed(1)
    rng = np.random.default_rng(0)
    n = 1000 if QUICK else 8000
    enc_x, dec_x, dec_y, _ = make_data(n, rng)

    # training model
    encoder_inputs = Input(shape=(None, TOKENS))
    encoder = LSTM(LATENT, return_state=True)
    _, state_h, state_c = encoder(encoder_inputs)
    encoder_states = [state_h, state_c]
    decoder_inputs = Input(shape=(None, TOKENS))
    decoder_lstm = LSTM(LATENT, return_sequences=True, return_state=True)
    decoder_outputs, _, _ = decoder_lstm(decoder_inputs, initial_state=encoder_states)
    decoder_dense = Dense(TOKENS, activation="softmax")
    decoder_outputs = decoder_dense(decoder_outputs)
    model = Model([encoder_inputs, decoder_inputs], decoder_outputs)
    model.compile(optimizer="rmsprop", loss="categorical_crossentropy", metrics=["accuracy"])
    model.summary()
    start = time.perf_counter()
    history = model.fit([enc_x, dec_x], dec_y, batch_size=64, epochs=2 if QUICK else 25,
                        validation_split=0.1, verbose=2)
    seconds = time.perf_counter() - start

    # inference models sharing the trained layers
    encoder_model = Model(encoder_inputs, encoder_states)
    state_inputs = [Input(shape=(LATENT,)), Input(shape=(LATENT,))]
    step_out, h, c = decoder_lstm(decoder_inputs, initial_state=state_inputs)
    decoder_model = Model([decoder_inputs] + state_inputs, [decoder_dense(step_out), h, c])

    def decode(x):
        states = encoder_model.predict(x, verbose=0)
        token = np.zeros((len(x), 1, TOKENS), "float32")
        token[:, 0, DIGITS] = 1
        out = []
        for _ in range(LENGTH):
            probs, h, c = decoder_model.predict([token] + states, verbose=0)
            digit = probs[:, -1].argmax(-1)
            out.append(digit)
            token = to_categorical(digit, TOKENS).astype("float32")[:, None, :]
            states = [h, c]
        return np.stack(out, axis=1)

    test_x, _, _, test_seqs = make_data(500, rng)
    decoded = decode(test_x)
    exact = float(np.mean(np.all(decoded == test_seqs[:, ::-1], axis=1)))
    digit_acc = float(np.mean(decoded == test_seqs[:, ::-1]))
    print(f"trained in {seconds:.1f} s; reversed exactly: {exact:.3f} of 500 test sequences "
          f"({digit_acc:.3f} of the digits)")
    for s, d in zip(test_seqs[:3], decoded[:3]):
        print("  ", "".join(map(str, s)), "->", "".join(map(str, d)))
    plt = pyplot()
    if plt is not None:
        fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.5),
                                       gridspec_kw={"width_ratios": [3, 2]})
        ax1.plot(history.history["loss"], label="loss")
        ax1.plot(history.history["val_loss"], label="val_loss")
        ax1.set(title="Categorical cross-entropy", xlabel="epoch")
        ax1.legend()
        ax2.axis("off")
        lines = [f"{''.join(map(str, s))}  ->  {''.join(map(str, d))}"
                 for s, d in zip(test_seqs[:8], decoded[:8])]
        ax2.text(0, 1, "input     decoded\n" + "\n".join(lines), family="monospace",
                 va="top", fontsize=11)
        ax2.set_title(f"Reversed exactly: {exact:.1%}")
        fig.tight_layout()
        fig.savefig(out_path("seq2seq.png"), dpi=80)
        print("wrote", out_path("seq2seq.png"))
    return exact


if __name__ == "__main__":
    main()
