"""A Conv1D + LSTM forecaster of the forecasting example's series (the next
model of the time-series course the notebooks come from: a causal Conv1D
reads local patterns, two LSTMs the longer ones), against the LSTM-only
forecaster of examples/forecasting.py, both trained the same way (Adam on the
MSE, the best epoch on the validation loss checkpointed to a .keras file and
reloaded) and scored by their validation MAE.

    python examples/conv_lstm_forecast.py          # a few minutes on 2 cores
    python examples/conv_lstm_forecast.py --quick  # the tests' short run

Writes examples/conv_lstm_forecast.png (both forecasts and their loss curves).
"""
import numpy as np

import forecasting as F
from rnnkern import layers, models
from rnnkern.utils import set_random_seed

from _common import QUICK


def conv_lstm():
    return models.Sequential([
        layers.Input((F.window_size,)),
        layers.Reshape((F.window_size, 1)),
        layers.Conv1D(32, kernel_size=5, padding="causal", activation="relu"),
        layers.LSTM(40, return_sequences=True),
        layers.LSTM(40),
        layers.Dense(1),
        layers.Rescaling(100.0),
    ], name="conv_lstm")


def main():
    epochs = 3 if QUICK else 100
    naive = float(np.mean(np.abs(F.series[F.split_time - 1:-1] - F.x_valid)))
    print(f"{len(F.train_x)} training windows, {len(F.valid_x)} validation windows; "
          f"naive forecast MAE {naive:.2f}")
    results = {}
    for name, build in (("LSTM", lambda: F.build(layers.LSTM)), ("Conv1D+LSTM", conv_lstm)):
        set_random_seed(7)
        model = build()
        hist, forecast, mae, seconds = F.fit_and_score(model, epochs, name.replace("+", "_"))
        results[name] = (hist, forecast, mae)
        best_epoch = int(np.argmin(hist["val_loss"])) + 1
        print(f"{name:11s}: {model.count_params():,} parameters, {epochs} epochs in "
              f"{seconds:.1f} s, best epoch {best_epoch}, validation MAE {mae:.2f} "
              f"({mae / naive:.2f}x the naive forecast's)")
    F.plot(results, "conv_lstm_forecast.png")
    return results


if __name__ == "__main__":
    main()
