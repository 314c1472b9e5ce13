"""The workflows of real keras-io sequence examples, run on rnnkern by the
import swap alone (``import rnnkern as keras``): each test below is written as
its example's script reads (the same keras.* calls in the same order, our own
code), on small generated data of the example's shapes instead of its
downloads. tests/data/keras_example_names.txt lists the examples.

- timeseries_classification_from_scratch.py: the fully convolutional
  classifier (Conv1D / BatchNormalization / ReLU three times, global average
  pooling), plot_model, the .h5 checkpoint with ReduceLROnPlateau and
  EarlyStopping, load_model of the best epoch;
- timeseries_weather_forecasting.py: keras.preprocessing's windows, the
  tf.data habits (take, .numpy()), the LSTM forecaster fit on datasets with a
  weights-only checkpoint;
- working_with_rnns.py (the Keras RNN guide): RNN(LSTMCell) + BatchNormalization
  on MNIST (keras.datasets.mnist) against the LSTM model with its weights;
- bidirectional_lstm_imdb.py: keras.datasets.imdb + pad_sequences + two
  Bidirectional LSTMs.
"""
import hashlib
import os
import shutil

import numpy as np
import pytest

import rnnkern as keras
from rnnkern.datasets import imdb, mnist

os.environ.setdefault("KERAS_BACKEND", "torch")

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


@pytest.fixture
def keras_home(tmp_path, monkeypatch):
    home = tmp_path / "keras_home"
    (home / "datasets").mkdir(parents=True)
    monkeypatch.setenv("KERAS_HOME", str(home))
    monkeypatch.chdir(tmp_path)
    return home


def _cache(monkeypatch, home, module, name, **arrays):
    """A generated dataset file of Keras' format in the cache, and the loader
    told its hash (Keras' is the real file's): nothing is downloaded."""
    path = home / "datasets" / name
    np.savez(path, **arrays)
    monkeypatch.setattr(module, "_DATA_HASH", hashlib.sha256(path.read_bytes()).hexdigest())


def _two_class_series(rng, n, t):
    """FordA-like: z-normalized univariate series, labels -1 / 1 by frequency."""
    y = np.where(rng.random(n) < 0.5, -1, 1)
    steps = np.arange(t)
    x = np.sin(2 * np.pi * steps[None, :] * np.where(y > 0, 3, 7)[:, None] / t
               + rng.uniform(0, 2 * np.pi, (n, 1)))
    x += 0.3 * rng.standard_normal((n, t))
    x = (x - x.mean(1, keepdims=True)) / x.std(1, keepdims=True)
    return x, y


def test_timeseries_classification_from_scratch(keras_home):
    keras.utils.set_random_seed(1)
    rng = np.random.default_rng(0)
    x_train, y_train = _two_class_series(rng, 160, 48)
    x_test, y_test = _two_class_series(rng, 64, 48)
    x_train = x_train.reshape((x_train.shape[0], x_train.shape[1], 1))
    x_test = x_test.reshape((x_test.shape[0], x_test.shape[1], 1))
    num_classes = len(np.unique(y_train))
    y_train[y_train == -1] = 0
    y_test[y_test == -1] = 0

    def make_model(input_shape):
        input_layer = keras.layers.Input(input_shape)
        x = input_layer
        for _ in range(3):
            x = keras.layers.Conv1D(filters=16, kernel_size=3, padding="same")(x)
            x = keras.layers.BatchNormalization()(x)
            x = keras.layers.ReLU()(x)
        gap = keras.layers.GlobalAveragePooling1D()(x)
        output_layer = keras.layers.Dense(num_classes, activation="softmax")(gap)
        return keras.models.Model(inputs=input_layer, outputs=output_layer)

    model = make_model(input_shape=x_train.shape[1:])
    if shutil.which("dot"):
        try:
            import pydot  # noqa: F401
            keras.utils.plot_model(model, to_file="model.png", show_shapes=True)
            assert os.path.getsize("model.png") > 1000
        except ImportError:
            pass
    callbacks = [
        keras.callbacks.ModelCheckpoint("best_model.h5", save_best_only=True,
                                        monitor="val_loss"),
        keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=0.5, patience=20,
                                          min_lr=0.0001),
        keras.callbacks.EarlyStopping(monitor="val_loss", patience=50, verbose=0),
    ]
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    history = model.fit(x_train, y_train, batch_size=32, epochs=6, callbacks=callbacks,
                        validation_split=0.2, verbose=0)
    assert {"loss", "accuracy", "val_loss", "val_accuracy", "learning_rate"} <= \
        set(history.history)
    model = keras.models.load_model("best_model.h5")
    y_pred = model.predict(x_test, verbose=0).argmax(axis=1)
    assert np.mean(y_pred == y_test) > 0.9
    # the moving statistics were learned and saved: inference is not batch-dependent
    one = model.predict(x_test[:1], verbose=0)
    np.testing.assert_allclose(one, model.predict(x_test, verbose=0)[:1], rtol=1e-5,
                               atol=1e-6)


def test_timeseries_weather_forecasting(keras_home):
    keras.utils.set_random_seed(2)
    rng = np.random.default_rng(1)
    t = np.arange(3000)
    features = np.stack([np.sin(t / 50 + k) + 0.1 * rng.standard_normal(3000)
                         for k in range(7)], axis=1).astype(np.float32)
    step, past, future = 6, 120, 12
    train_split = 2000
    start = past + future
    x_train = features[:train_split]
    y_train = features[start:start + train_split][:, [1]]
    sequence_length = past // step
    dataset_train = keras.preprocessing.timeseries_dataset_from_array(
        x_train, y_train, sequence_length=sequence_length, sampling_rate=step,
        batch_size=256)
    x_val = features[train_split:-(past + future)]
    y_val = features[train_split + past + future:][:, [1]]
    dataset_val = keras.preprocessing.timeseries_dataset_from_array(
        x_val, y_val, sequence_length=sequence_length, sampling_rate=step, batch_size=256)

    for batch in dataset_train.take(1):
        inputs, targets = batch
    assert inputs.numpy().shape == (256, sequence_length, 7)
    assert targets.numpy().shape == (256, 1)

    inputs = keras.layers.Input(shape=(inputs.shape[1], inputs.shape[2]))
    lstm_out = keras.layers.LSTM(32)(inputs)
    outputs = keras.layers.Dense(1)(lstm_out)
    model = keras.Model(inputs=inputs, outputs=outputs)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=0.001), loss="mse")
    es_callback = keras.callbacks.EarlyStopping(monitor="val_loss", min_delta=0, patience=5)
    modelckpt_callback = keras.callbacks.ModelCheckpoint(
        monitor="val_loss", filepath="model_checkpoint.weights.h5", verbose=0,
        save_weights_only=True, save_best_only=True)
    history = model.fit(dataset_train, epochs=3, validation_data=dataset_val,
                        callbacks=[es_callback, modelckpt_callback], verbose=0)
    assert history.history["val_loss"][-1] < history.history["val_loss"][0]
    model.load_weights("model_checkpoint.weights.h5")
    shown = 0
    for x, y in dataset_val.take(5):
        history_steps, truth, pred = x[0][:, 1].numpy(), y[0].numpy(), model.predict(x)[0]
        assert history_steps.shape == (sequence_length,) and truth.shape == (1,)
        assert pred.shape == (1,)
        shown += 1
    assert shown == min(5, len(dataset_val))


def test_working_with_rnns_mnist(keras_home, monkeypatch):
    rng = np.random.default_rng(2)
    _cache(monkeypatch, keras_home, mnist, "mnist.npz",
           x_train=rng.integers(0, 256, (64, 28, 28), dtype=np.uint8),
           y_train=rng.integers(0, 10, 64, dtype=np.uint8),
           x_test=rng.integers(0, 256, (32, 28, 28), dtype=np.uint8),
           y_test=rng.integers(0, 10, 32, dtype=np.uint8))
    keras.utils.set_random_seed(3)
    batch_size, input_dim, units, output_size = 64, 28, 16, 10

    def build_model(allow_cudnn_kernel=True):
        if allow_cudnn_kernel:
            lstm_layer = keras.layers.LSTM(units, input_shape=(None, input_dim))
        else:
            lstm_layer = keras.layers.RNN(keras.layers.LSTMCell(units),
                                          input_shape=(None, input_dim))
        return keras.models.Sequential([lstm_layer, keras.layers.BatchNormalization(),
                                        keras.layers.Dense(output_size)])

    (x_train, y_train), (x_test, y_test) = keras.datasets.mnist.load_data()
    x_train, x_test = x_train / 255.0, x_test / 255.0
    model = build_model(allow_cudnn_kernel=True)
    model.compile(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  optimizer="sgd", metrics=["accuracy"])
    model.fit(x_train, y_train, validation_data=(x_test, y_test), batch_size=batch_size,
              epochs=1, verbose=0)
    noncudnn_model = build_model(allow_cudnn_kernel=False)
    noncudnn_model.set_weights(model.get_weights())
    np.testing.assert_array_equal(noncudnn_model.predict(x_test, verbose=0),
                                  model.predict(x_test, verbose=0))
    noncudnn_model.compile(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                           optimizer="sgd", metrics=["accuracy"])
    noncudnn_model.fit(x_train, y_train, validation_data=(x_test, y_test),
                       batch_size=batch_size, epochs=1, verbose=0)
    result = np.argmax(noncudnn_model.predict_on_batch(
        keras.ops.expand_dims(x_test[0], 0)), axis=1)
    assert result.shape == (1,)


def test_bidirectional_lstm_imdb(keras_home, monkeypatch):
    rng = np.random.default_rng(3)

    def reviews(n):
        a = np.empty(n, dtype=object)
        for i in range(n):
            a[i] = [1] + [int(v) for v in rng.integers(4, 300, int(rng.integers(5, 60)))]
        return a
    _cache(monkeypatch, keras_home, imdb, "imdb.npz", x_train=reviews(48),
           y_train=rng.integers(0, 2, 48), x_test=reviews(32), y_test=rng.integers(0, 2, 32))
    keras.utils.set_random_seed(4)
    max_features, maxlen = 200, 40
    inputs = keras.Input(shape=(None,), dtype="int32")
    x = keras.layers.Embedding(max_features, 16)(inputs)
    x = keras.layers.Bidirectional(keras.layers.LSTM(8, return_sequences=True))(x)
    x = keras.layers.Bidirectional(keras.layers.LSTM(8))(x)
    outputs = keras.layers.Dense(1, activation="sigmoid")(x)
    model = keras.Model(inputs, outputs)
    (x_train, y_train), (x_val, y_val) = keras.datasets.imdb.load_data(num_words=max_features)
    assert len(x_train) == 48 and len(x_val) == 32
    assert max(max(s) for s in x_train) < max_features
    x_train = keras.preprocessing.sequence.pad_sequences(x_train, maxlen=maxlen)
    x_val = keras.preprocessing.sequence.pad_sequences(x_val, maxlen=maxlen)
    assert x_train.shape == (48, maxlen)
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    history = model.fit(x_train, y_train, batch_size=32, epochs=1,
                        validation_data=(x_val, y_val), verbose=0)
    assert set(history.history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
