"""Every script of examples/ runs, in its quick mode, as a new user would run
it (a fresh Python process), prints its result and writes its picture."""
import os

os.environ.setdefault("KERAS_BACKEND", "torch")

import subprocess  # noqa: E402
import sys  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from helpers import child_env  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLES = {
    "forecasting.py": ["naive forecast MAE", "SimpleRNN", "LSTM", "validation MAE"],
    "text_classification.py": ["test accuracy"],
    "seq2seq.py": ["reversed exactly"],
    "stateful.py": ["stateful :", "stateless:"],
    "cnn_lstm.py": ["test accuracy"],
    "conv_lstm_forecast.py": ["naive forecast MAE", "Conv1D+LSTM", "validation MAE"],
}


@pytest.mark.parametrize("script", sorted(EXAMPLES))
def test_example_runs(script, tmp_path):
    env = child_env(RNNKERN_EXAMPLES_OUT=str(tmp_path), RNNKERN_EXAMPLES_QUICK="1")
    out = subprocess.run([sys.executable, os.path.join(ROOT, "examples", script), "--quick"],
                         capture_output=True, text=True, env=env, timeout=600, cwd=tmp_path)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-4000:]
    for text in EXAMPLES[script]:
        assert text in out.stdout, out.stdout
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return
    png = tmp_path / script.replace(".py", ".png")
    assert png.exists() and png.stat().st_size > 1000


def test_forecasting_workflow_reaches_keras_accuracy(monkeypatch):
    """The forecasting example's workflow (windows, fit with a best-only
    checkpoint, roll back, MAE) run on Keras' own modules and on rnnkern's:
    rnnkern's forecast is as accurate."""
    keras = pytest.importorskip("keras")
    if keras.backend.backend() != "torch":
        pytest.skip("needs Keras on the torch backend")
    pytest.importorskip("h5py")
    monkeypatch.syspath_prepend(os.path.join(ROOT, "examples"))
    monkeypatch.setenv("RNNKERN_EXAMPLES_OUT", os.path.join(ROOT, "build", "test-examples"))
    import forecasting as F
    naive = float(np.mean(np.abs(F.series[F.split_time - 1:-1] - F.x_valid)))
    _, _, ours, _ = F.train(F.layers.LSTM, 12)
    for name, mod in (("layers", keras.layers), ("models", keras.models),
                      ("optimizers", keras.optimizers), ("callbacks", keras.callbacks),
                      ("set_random_seed", keras.utils.set_random_seed)):
        monkeypatch.setattr(F, name, mod)
    _, _, theirs, _ = F.train(keras.layers.LSTM, 12)
    assert ours < 1.5 * naive and theirs < 1.5 * naive
    assert ours <= 1.1 * theirs, (ours, theirs)
