"""``rnnkern-bench --fit``: one training epoch of the notebooks' small models,
rnnkern against Keras 3 and a hand-written PyTorch loop.

Workloads (batch 32, Adam(1e-3), shuffle off, the same initial weights and
data for everyone):

- forecaster: SimpleRNN(40, return_sequences) -> SimpleRNN(40) -> Dense(1) on
  windows of 20 steps of the notebooks' trend + seasonality + noise series,
  MSE (980 windows: 31 batches);
- classifier: Embedding(2000, 32) -> LSTM(32) -> Dense(1, sigmoid) on 1024
  token sequences of 80 ids, binary cross-entropy (32 batches).

Implementations: ``rnnkern`` (``model.fit``), ``keras-torch`` (Keras 3 on the
torch backend, ``model.fit``), ``keras-tensorflow`` (Keras 3 on TensorFlow,
in a subprocess, when TensorFlow is installed) and ``torch-loop`` (torch.nn
modules, torch.optim.Adam(eps=1e-7) and a plain Python loop over the batches).

Check, then time: every implementation first trains one epoch from the
initial weights, and its training loss after that epoch (evaluated on all the
data) must match rnnkern's within ``LOSS_RTOL``; one that does not is WRONG and
not timed. Then the epochs are timed, the implementations interleaved round
by round (each epoch starts again from the initial weights and a fresh
optimizer), and the median is reported with the speed-ups of rnnkern.
"""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np

LOSS_RTOL = 2e-3
BATCH = 32
LR = 1e-3


# ------------------------------------------------------------------ data

def forecaster_data():
    t = np.arange(4 * 365 + 1, dtype="float32")
    season = ((t % 365) / 365)
    pattern = np.where(season < 0.4, np.cos(season * 2 * np.pi), 1 / np.exp(3 * season))
    series = 10 + 0.05 * t + 40 * pattern + np.random.RandomState(42).randn(len(t)) * 5
    series = (series[:1000] / 100).astype("float32")     # the training split, scaled
    w = 20
    x = np.stack([series[i:i + w] for i in range(len(series) - w)])[:, :, None]
    y = series[w:][:, None]
    return x, y


def classifier_data():
    rng = np.random.default_rng(0)
    x = rng.integers(1, 2000, size=(1024, 80))
    y = (np.mean(x < 1000, axis=1) > 0.5).astype("float32")[:, None]
    return x, y


def build_forecaster(L, M):
    return M.Sequential([L.Input((20, 1)), L.SimpleRNN(40, return_sequences=True),
                         L.SimpleRNN(40), L.Dense(1)])


def build_classifier(L, M):
    return M.Sequential([L.Input((80,)), L.Embedding(2000, 32), L.LSTM(32),
                         L.Dense(1, activation="sigmoid")])


WORKLOADS = {
    "forecaster": dict(build=build_forecaster, data=forecaster_data, loss="mse",
                       desc="SimpleRNN(40) x2 + Dense(1), window 20, 980 windows"),
    "classifier": dict(build=build_classifier, data=classifier_data, loss="binary_crossentropy",
                       desc="Embedding(2000,32) + LSTM(32) + Dense(1), 1024 x 80 ids"),
}


def initial_weights(name):
    import rnnkern.layers as L
    import rnnkern.models as M
    from rnnkern.utils import set_random_seed
    set_random_seed(123)
    model = WORKLOADS[name]["build"](L, M)
    return [w.copy() for w in model.get_weights()]


# --------------------------------------------------------- implementations

class _KerasLike:
    """rnnkern or Keras: built and compiled once (so Keras on TensorFlow traces its
    train function once, as in a notebook); before every epoch the initial weights
    are set back and the optimizer's slots and step counter are zeroed."""

    def __init__(self, name, layers, models, optimizers, weights, data, loss):
        self.name = name
        self.model = WORKLOADS[name]["build"](layers, models)
        self.weights, self.data = weights, data
        self.model.compile(optimizer=optimizers.Adam(learning_rate=LR), loss=loss)

    def _reset(self):
        self.model.set_weights(self.weights)
        opt = self.model.optimizer
        if not opt.variables or not hasattr(opt.variables[0], "assign"):   # rnnkern
            if opt.built:
                opt.set_state([np.array(LR, np.float32) if n == "learning_rate" else
                               np.zeros_like(v) for n, v in zip(opt.variable_names,
                                                                opt.variables)])
            return
        for v in opt.variables:       # Keras: iterations and the moments, not the rate
            if "learning_rate" not in v.path:
                v.assign(np.zeros(v.shape, v.dtype))

    def epoch(self):
        self._reset()
        x, y = self.data
        t = time.perf_counter()
        self.model.fit(x, y, batch_size=BATCH, epochs=1, shuffle=False, verbose=0)
        return time.perf_counter() - t

    def final_loss(self):
        x, y = self.data
        return float(self.model.evaluate(x, y, batch_size=256, verbose=0))


def rnnkern_impl(name, weights, data):
    import rnnkern.layers as L
    import rnnkern.models as M
    import rnnkern.optimizers as O
    return _KerasLike(name, L, M, O, weights, data, WORKLOADS[name]["loss"])


def keras_impl(name, weights, data):
    os.environ.setdefault("KERAS_BACKEND", "torch")
    import keras
    if keras.backend.backend() != "torch":
        raise RuntimeError("keras-torch needs KERAS_BACKEND=torch")
    return _KerasLike(name, keras.layers, keras.models, keras.optimizers, weights, data,
                      WORKLOADS[name]["loss"])


class _TorchLoop:
    """The same model in torch.nn, trained by a hand-written loop."""

    def __init__(self, name, weights, data):
        import torch
        from .impls import load_torch_weights
        self.torch, self.name = torch, name
        self.data = [torch.from_numpy(np.ascontiguousarray(a)) for a in data]
        if name == "classifier":
            self.data[0] = self.data[0].long()

        def rnn_params(mod, W, U, b, cell):
            load_torch_weights(mod, cell, W, U, b)    # bias_hh zero
            mod.bias_hh_l0.requires_grad_(False)   # Keras' cell has one bias: train one

        def make():
            nn = torch.nn
            if name == "forecaster":
                r1, r2, d = nn.RNN(1, 40, batch_first=True), nn.RNN(40, 40, batch_first=True), \
                    nn.Linear(40, 1)
                rnn_params(r1, *weights[0:3], "simple_rnn")
                rnn_params(r2, *weights[3:6], "simple_rnn")
                with torch.no_grad():
                    d.weight.copy_(torch.from_numpy(weights[6].T.copy()))
                    d.bias.copy_(torch.from_numpy(weights[7]))

                def forward(x):
                    return d(r2(r1(x)[0])[0][:, -1])
                return [r1, r2, d], forward, nn.MSELoss()
            emb, lstm, d = nn.Embedding(2000, 32), nn.LSTM(32, 32, batch_first=True), \
                nn.Linear(32, 1)
            with torch.no_grad():
                emb.weight.copy_(torch.from_numpy(weights[0]))
                d.weight.copy_(torch.from_numpy(weights[4].T.copy()))
                d.bias.copy_(torch.from_numpy(weights[5]))
            rnn_params(lstm, *weights[1:4], "lstm")

            def forward(x):
                return torch.sigmoid(d(lstm(emb(x))[0][:, -1]))
            return [emb, lstm, d], forward, nn.BCELoss()
        self._make = make

    def epoch(self):
        torch = self.torch
        mods, forward, loss_fn = self._make()
        params = [p for m in mods for p in m.parameters() if p.requires_grad]
        opt = torch.optim.Adam(params, lr=LR, eps=1e-7)
        x, y = self.data
        self._forward, self._loss = forward, loss_fn
        t = time.perf_counter()
        for i in range(0, len(x), BATCH):
            opt.zero_grad()
            loss = loss_fn(forward(x[i:i + BATCH]), y[i:i + BATCH])
            loss.backward()
            opt.step()
        return time.perf_counter() - t

    def final_loss(self):
        with self.torch.no_grad():
            x, y = self.data
            return float(self._loss(self._forward(x), y))


def torch_impl(name, weights, data):
    return _TorchLoop(name, weights, data)


class _Subprocess:
    """Keras on TensorFlow, which needs its own process (KERAS_BACKEND)."""

    def __init__(self, name, reps, samples=None, threads=1):
        self.name, self.reps, self.samples, self.threads = name, reps, samples, threads

    def run(self):
        env = dict(os.environ, KERAS_BACKEND="tensorflow", TF_CPP_MIN_LOG_LEVEL="3",
                   OMP_NUM_THREADS=str(self.threads))
        out = subprocess.run([sys.executable, "-m", "rnnkern.bench.fit", "--tf-worker",
                              self.name, str(self.reps), str(self.samples or 0), str(self.threads)],
                             capture_output=True, text=True,
                             env=env, timeout=1800)
        if out.returncode != 0:
            raise RuntimeError(out.stderr.strip().splitlines()[-1] if out.stderr else
                               "the TensorFlow worker failed")
        return json.loads(out.stdout.strip().splitlines()[-1])


def _tf_worker(name, reps, samples=0, threads=1):
    import tensorflow as tf
    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)
    import keras
    weights = initial_weights(name)
    data = tuple(a[:samples or None] for a in WORKLOADS[name]["data"]())
    impl = _KerasLike(name, keras.layers, keras.models, keras.optimizers, weights, data,
                      WORKLOADS[name]["loss"])
    impl.epoch()
    loss = impl.final_loss()
    times = [impl.epoch() for _ in range(reps)]
    print(json.dumps({"loss": loss, "times": times}))


def tensorflow_available():
    import importlib.util
    return importlib.util.find_spec("tensorflow") is not None


# ------------------------------------------------------------------- run

def run(workloads=("forecaster", "classifier"), reps=5, threads=1, with_tf=None, out=None,
        samples=None, impls=("rnnkern", "keras-torch", "torch-loop")):
    """Check, then time; returns the result dict (also printed as a table).
    ``samples`` keeps the first that many of each workload's data (a smoke run)."""
    from .timing import ThreadControl
    out = out or sys.stdout
    want = set(impls) | {"rnnkern"}
    if with_tf is None:
        with_tf = tensorflow_available() and "keras-tensorflow" in impls
    results = {"schema": "rnnkern-bench-fit/1", "threads": threads, "reps": reps,
               "cpu": _cpu(), "samples": samples, "loss_rtol": LOSS_RTOL, "workloads": {}}
    with ThreadControl(threads) as tc:
        for name in workloads:
            weights = initial_weights(name)
            data = tuple(a[:samples] for a in WORKLOADS[name]["data"]())
            impls, status = {}, {}
            for label, factory in (("rnnkern", rnnkern_impl), ("keras-torch", keras_impl),
                                   ("torch-loop", torch_impl)):
                if label not in want:
                    continue
                try:
                    impls[label] = factory(name, weights, data)
                    tc.apply_torch()
                except Exception as e:  # an optional peer that is not installed
                    status[label] = f"unavailable ({type(e).__name__}: {e})"
            losses = {}
            for label, impl in impls.items():
                impl.epoch()
                losses[label] = impl.final_loss()
            ref = losses["rnnkern"]
            for label in list(impls):
                if abs(losses[label] - ref) > LOSS_RTOL * abs(ref):
                    status[label] = f"WRONG (loss {losses[label]:.6g} vs rnnkern {ref:.6g})"
                    del impls[label]
            times = {label: [] for label in impls}
            for r in range(reps):
                order = list(impls)[r % len(impls):] + list(impls)[:r % len(impls)]
                for label in order:
                    times[label].append(impls[label].epoch())
            if with_tf:
                try:
                    tf = _Subprocess(name, reps, samples, tc.n).run()
                    if abs(tf["loss"] - ref) > LOSS_RTOL * abs(ref):
                        status["keras-tensorflow"] = (f"WRONG (loss {tf['loss']:.6g} vs rnnkern "
                                                      f"{ref:.6g})")
                    else:
                        times["keras-tensorflow"] = tf["times"]
                        losses["keras-tensorflow"] = tf["loss"]
                except Exception as e:
                    status["keras-tensorflow"] = f"ERROR ({e})"
            else:
                status["keras-tensorflow"] = "unavailable (tensorflow not installed)"
            med = {k: statistics.median(v) for k, v in times.items()}
            results["workloads"][name] = {
                "desc": WORKLOADS[name]["desc"], "loss_after_epoch": losses,
                "median_s": med, "min_s": {k: min(v) for k, v in times.items()},
                "max_s": {k: max(v) for k, v in times.items()},
                "speedup_of_rnnkern": {k: v / med["rnnkern"] for k, v in med.items()
                                       if k != "rnnkern"},
                "status": status}
    print(format_table(results), file=out)
    return results


def _cpu():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


def format_table(res):
    lines = [f"rnnkern-bench --fit: one epoch (batch {BATCH}, Adam, shuffle off), "
             f"{res['threads']} thread(s), median of {res['reps']}; CPU: {res['cpu']}", "",
             "| workload | implementation | epoch ms (min-max) | loss after the epoch | "
             "rnnkern is faster by |", "|---|---|---|---|---|"]
    for name, w in res["workloads"].items():
        first = True
        for label in ("rnnkern", "keras-torch", "keras-tensorflow", "torch-loop"):
            if label in w["median_s"]:
                ms = f"{1e3 * w['median_s'][label]:.1f} ({1e3 * w['min_s'][label]:.1f}-" \
                     f"{1e3 * w['max_s'][label]:.1f})"
                loss = f"{w['loss_after_epoch'][label]:.6f}"
                sp = "-" if label == "rnnkern" else f"{w['speedup_of_rnnkern'][label]:.1f}x"
            else:
                ms, loss, sp = w["status"].get(label, "-"), "", ""
            lines.append(f"| {name + ': ' + w['desc'] if first else ''} | {label} | {ms} | "
                         f"{loss} | {sp} |")
            first = False
    return "\n".join(lines)


if __name__ == "__main__":
    if len(sys.argv) >= 2 and sys.argv[1] == "--tf-worker":
        _tf_worker(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]))
