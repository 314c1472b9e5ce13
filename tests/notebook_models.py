"""The Keras notebooks' models, each written ONCE against a ``layers`` and a
``models`` module: called with ``keras.layers, keras.models`` it builds the
Keras model, with ``rnnkern.layers, rnnkern.models`` the rnnkern one (the
import swap). ``inputs(name, rng)`` makes matching input batches.

Each entry: (builder, input specs, the parameter counts per layer that the
notebooks print, or None)."""
import numpy as np


def simple_rnn(L, M):
    # Keras 2 habit: input_shape on the first layer
    return M.Sequential([L.SimpleRNN(128, input_shape=(5, 3)), L.Dense(2)])


def lstm_1000(L, M):
    return M.Sequential([L.Input((5, 10)), L.LSTM(1000, use_bias=False)])


def gru_128(L, M):
    return M.Sequential([L.Input((5, 10)), L.GRU(128, use_bias=False)])


def embedding_rnn(L, M):
    return M.Sequential([L.Input((7,)), L.Embedding(10000, 32), L.SimpleRNN(32)])


def bidirectional_lstm(L, M):
    return M.Sequential([L.Input((6, 4)), L.Bidirectional(L.LSTM(10))])


def bidirectional_merge(mode):
    def build(L, M):
        return M.Sequential([L.Input((6, 4)),
                             L.Bidirectional(L.GRU(5, return_sequences=True), merge_mode=mode),
                             L.Dense(3)])
    build.__name__ = f"bidirectional_{mode}"
    return build


def bidirectional_none(L, M):
    x = L.Input((6, 4))
    f, b = L.Bidirectional(L.LSTM(5, return_sequences=True), merge_mode=None)(x)
    return M.Model(x, [f, L.Dense(2)(b)])


def bidirectional_backward_layer(L, M):
    return M.Sequential([L.Input((6, 4)),
                         L.Bidirectional(L.LSTM(3, return_sequences=True),
                                         backward_layer=L.LSTM(3, activation="relu",
                                                               return_sequences=True,
                                                               go_backwards=True),
                                         merge_mode="sum"),
                         L.GRU(2)])


def stacked(L, M):
    return M.Sequential([L.Input((None, 3)), L.LSTM(8, return_sequences=True),
                         L.GRU(6, return_sequences=True, reset_after=False),
                         L.TimeDistributed(L.Dense(2, activation="tanh")), L.SimpleRNN(3)])


def cnn_lstm(L, M):
    return M.Sequential([
        L.Input((None, 12, 18, 1)),
        L.TimeDistributed(L.Conv2D(32, (3, 3), activation="relu")),
        L.TimeDistributed(L.MaxPooling2D((2, 2))),
        L.TimeDistributed(L.Flatten()),
        L.LSTM(10), L.Dense(10, activation="relu"), L.Dense(2)])


def embedding_mask_zero(L, M):
    return M.Sequential([L.Input((7,)), L.Embedding(50, 8, mask_zero=True),
                         L.Bidirectional(L.LSTM(6, return_sequences=True)),
                         L.LSTM(4), L.Dense(1, activation="sigmoid")])


def encoder_decoder(L, M):
    encoder_inputs = L.Input(shape=(None, 5))
    encoder = L.LSTM(5, return_state=True)
    encoder_outputs, state_h, state_c = encoder(encoder_inputs)
    encoder_states = [state_h, state_c]
    decoder_inputs = L.Input(shape=(None, 5))
    decoder_lstm = L.LSTM(5, return_sequences=True, return_state=True)
    decoder_outputs, _, _ = decoder_lstm(decoder_inputs, initial_state=encoder_states)
    decoder_dense = L.Dense(5, activation="softmax")
    decoder_outputs = decoder_dense(decoder_outputs)
    return M.Model([encoder_inputs, decoder_inputs], decoder_outputs)


def shared_layer(L, M):
    """One Dense used on two inputs, merged: its gradients sum over both uses."""
    a, b = L.Input((4,)), L.Input((4,))
    dense = L.Dense(3, activation="tanh")
    return M.Model([a, b], L.Add()([dense(a), dense(b)]))


def repeat_decoder(L, M):
    """The RepeatVector encoder-decoder of the forecasting notebooks."""
    return M.Sequential([L.Input((6, 2)), L.LSTM(8), L.RepeatVector(3),
                         L.LSTM(8, return_sequences=True), L.Dropout(0.3),
                         L.TimeDistributed(L.Dense(1)), L.Reshape((3,)),
                         L.Rescaling(100.0), L.Activation("linear")])


MODELS = {
    "simple_rnn": (simple_rnn, [(4, 5, 3)], [16896, 258]),
    "lstm_1000": (lstm_1000, [(2, 5, 10)], [4040000]),
    "gru_128": (gru_128, [(2, 5, 10)], [52992]),
    "embedding_rnn": (embedding_rnn, [("ids", (3, 7), 10000)], [320000, 2080]),
    "bidirectional_lstm": (bidirectional_lstm, [(3, 6, 4)], [1200]),
    "bidirectional_concat": (bidirectional_merge("concat"), [(3, 6, 4)], None),
    "bidirectional_sum": (bidirectional_merge("sum"), [(3, 6, 4)], None),
    "bidirectional_ave": (bidirectional_merge("ave"), [(3, 6, 4)], None),
    "bidirectional_mul": (bidirectional_merge("mul"), [(3, 6, 4)], None),
    "bidirectional_none": (bidirectional_none, [(3, 6, 4)], None),
    "bidirectional_backward_layer": (bidirectional_backward_layer, [(3, 6, 4)], None),
    "stacked": (stacked, [(2, 5, 3)], None),
    "cnn_lstm": (cnn_lstm, [(2, 3, 12, 18, 1)], [320, 0, 0, 51640, 110, 22]),
    "embedding_mask_zero": (embedding_mask_zero, [("padded", (4, 7), 50)], None),
    "encoder_decoder": (encoder_decoder, [(3, 4, 5), (3, 6, 5)], [0, 0, 220, 220, 30]),
    "shared_layer": (shared_layer, [(3, 4), (3, 4)], None),
    "repeat_decoder": (repeat_decoder, [(3, 6, 2)], None),
}


def inputs(name, rng):
    """Input batches for model ``name`` (a list, one per model input)."""
    out = []
    for spec in MODELS[name][1]:
        if spec[0] == "ids":
            out.append(rng.integers(1, spec[2], spec[1]))
        elif spec[0] == "padded":
            n, t = spec[1]
            x = rng.integers(1, spec[2], (n, t))
            x[1, :2] = 0          # leading padding
            x[2, -3:] = 0         # trailing padding
            x[3, :] = 0           # an all-padding row
            out.append(x)
        else:
            out.append(rng.standard_normal(spec).astype(np.float32))
    return out


def as_input(xs):
    return xs if len(xs) > 1 else xs[0]
