"""Forecasting a time series with SimpleRNN and LSTM models, as the Keras
time-series notebooks do it: a trend + seasonality + noise series, windows of
20 steps, a model trained with Adam on the MSE and checkpointed on its best
validation loss (RNN losses jump), then rolled back to that best model and
scored by its MAE against the naive forecast (tomorrow = today).

    python examples/forecasting.py          # about 20 s on 2 cores
    python examples/forecasting.py --quick  # the tests' short run

Writes examples/forecasting.png (the forecast and the loss curves).
"""
import os
import time

import numpy as np

from rnnkern import callbacks, layers, models, optimizers
from rnnkern.utils import set_random_seed, timeseries_dataset_from_array

from _common import QUICK, out_path, pyplot

# ---------------------------------------------------------------- the series
# (the notebooks' synthetic series: 4 years of daily values)


def trend(time, slope=0.0):
    return slope * time


def seasonal_pattern(season_time):
    return np.where(season_time < 0.4, np.cos(season_time * 2 * np.pi),
                    1 / np.exp(3 * season_time))


def seasonality(time, period, amplitude=1, phase=0):
    season_time = ((time + phase) % period) / period
    return amplitude * seasonal_pattern(season_time)


def noise(time, noise_level=1, seed=None):
    return np.random.RandomState(seed).randn(len(time)) * noise_level


time_steps = np.arange(4 * 365 + 1, dtype="float32")
series = (10 + trend(time_steps, 0.05) + seasonality(time_steps, period=365, amplitude=40)
          + noise(time_steps, noise_level=5, seed=42)).astype("float32")
split_time = 1000
window_size = 20
x_train, x_valid = series[:split_time], series[split_time:]


def windows(values):
    """All windows of ``window_size`` steps and the value that follows each."""
    ds = timeseries_dataset_from_array(values, values[window_size:],
                                       sequence_length=window_size, batch_size=256)
    xs, ys = zip(*ds)
    return np.concatenate(xs), np.concatenate(ys)[:, None]


train_x, train_y = windows(x_train)
# validation windows start window_size steps before the split
valid_x, valid_y = windows(series[split_time - window_size:])


def build(cell):
    return models.Sequential([
        layers.Input((window_size,)),
        layers.Reshape((window_size, 1)),        # the notebooks' Lambda(expand_dims)
        cell(40, return_sequences=True),
        cell(40),
        layers.Dense(1),
        layers.Rescaling(100.0),                 # the notebooks' Lambda(x * 100)
    ])


def train(cell, epochs):
    set_random_seed(7)
    return fit_and_score(build(cell), epochs, cell.__name__)


def fit_and_score(model, epochs, name):
    """Fit ``model`` (checkpointed on its best validation loss), roll back to
    that best epoch and score its forecast of the validation period."""
    model.compile(loss="mse", optimizer=optimizers.Adam(learning_rate=1e-3), metrics=["mae"])
    best = out_path(f"forecaster-{name}.keras")
    checkpoint = callbacks.ModelCheckpoint(best, monitor="val_loss", save_best_only=True)
    start = time.perf_counter()
    history = model.fit(train_x, train_y, epochs=epochs, batch_size=32,
                        validation_data=(valid_x, valid_y), callbacks=[checkpoint], verbose=0)
    seconds = time.perf_counter() - start
    best_model = models.load_model(best)       # roll back to the best epoch
    os.remove(best)
    forecast = best_model.predict(valid_x, batch_size=256, verbose=0)[:, 0]
    mae = float(np.mean(np.abs(forecast - x_valid)))
    return history.history, forecast, mae, seconds


def plot(results, name):
    """The forecasts and loss curves of ``results`` ({label: (history,
    forecast, mae)}) to ``name`` beside the examples (when matplotlib is there)."""
    plt = pyplot()
    if plt is None:
        return
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4))
    t = time_steps[split_time:]
    ax1.plot(t, x_valid, color="0.6", lw=1, label="series")
    for label, (_hist, forecast, mae) in results.items():
        ax1.plot(t, forecast, lw=1, label=f"{label} (MAE {mae:.2f})")
    ax1.set(title="Forecast of the validation period", xlabel="time")
    ax1.legend()
    for label, (hist, _, _) in results.items():
        ax2.plot(hist["loss"], label=f"{label} loss")
        ax2.plot(hist["val_loss"], "--", label=f"{label} val_loss")
    ax2.set(title="Loss (MSE)", xlabel="epoch", yscale="log")
    ax2.legend()
    fig.tight_layout()
    fig.savefig(out_path(name), dpi=80)
    print("wrote", out_path(name))


def main():
    epochs = 3 if QUICK else 100
    naive = float(np.mean(np.abs(series[split_time - 1:-1] - x_valid)))
    print(f"{len(train_x)} training windows, {len(valid_x)} validation windows; "
          f"naive forecast MAE {naive:.2f}")
    results = {}
    for cell in (layers.SimpleRNN, layers.LSTM):
        hist, forecast, mae, seconds = train(cell, epochs)
        results[cell.__name__] = (hist, forecast, mae)
        best_epoch = int(np.argmin(hist["val_loss"])) + 1
        print(f"{cell.__name__:9s}: {epochs} epochs in {seconds:.1f} s, best epoch {best_epoch}, "
              f"validation MAE {mae:.2f} ({mae / naive:.2f}x the naive forecast's)")
    plot(results, "forecasting.png")
    return results


if __name__ == "__main__":
    main()
