"""fit with recurrent layers on a GPU backend keeps their weights on the device:
the backward leaves the weight gradients there, the optimizer updates the weights
and its slots there (rnnkern._device_math.DeviceVec, cuda/kernels.cuh
elementwise), and the host copies download only when read (layers.base.WeightDict).

Checked on cuda-emu (the same kernels and bindings a GPU runs): every operation
of DeviceVec bitwise against NumPy float32; fit, evaluate, the optimizer's state,
saving and the public gradients the same as the host update's
(rnnkern.config.set_device_updates(False)) -- bitwise, but for the norm
clippings' sums of squares; and no weight upload or gradient download per step
(the emulated device's host-transfer counter)."""
import copy
import os
import pickle

import numpy as np
import pytest

import rnnkern as rk
from rnnkern import _core, backends, callbacks, config, layers, models, optimizers
from rnnkern import _device_math as dm
from rnnkern._device_math import DeviceVec
from rnnkern.layers.base import WeightDict

from tolerances import assert_close

EMU = "cuda-emu"
HAVE_CUDA = backends.cuda_status()[0]
GPU = [EMU] + (["cuda"] if HAVE_CUDA else [])


@pytest.fixture(autouse=True)
def _updates_on_device_after():
    yield
    config.set_device_updates(True)


def bits(a):
    return np.ascontiguousarray(a, np.float32).view(np.uint32)


def assert_bitwise(a, b, what=""):
    a, b = np.asarray(a), np.asarray(b)
    assert a.shape == b.shape, what
    assert np.array_equal(bits(a), bits(b)), f"{what}: max diff {np.max(np.abs(a - b))}"


# ---------------------------------------------------------------- DeviceVec

def _pair(rng, shape=(6, 7)):
    a = rng.standard_normal(shape).astype(np.float32)
    a.flat[3] = np.nan
    a.flat[5] = 0.0
    return a


def test_device_vec_ops_are_numpys_bitwise():
    rng = np.random.default_rng(0)
    a, b = _pair(rng), rng.standard_normal((6, 7)).astype(np.float32)
    b.flat[4] = np.nan
    da, db = DeviceVec.upload(a, EMU), DeviceVec.upload(b, EMU)
    s = np.float32(0.37)
    cases = {
        "add": (da + db, a + b), "sub": (da - db, a - b), "mul": (da * db, a * b),
        "div": (da / db, a / b), "scalar mul": (da * s, a * s), "reflected mul": (s * da, s * a),
        "python float": (da / 3.3, a / 3.3), "rsub": (2.0 - da, 2.0 - a),
        "rdiv": (1.5 / db, 1.5 / b), "radd": (1.25 + da, 1.25 + a),
        "maximum": (np.maximum(da, db), np.maximum(a, b)),
        "minimum": (np.minimum(db, da), np.minimum(b, a)),
        "maximum scalar": (np.maximum(da, s), np.maximum(a, s)),
        "sqrt": (np.sqrt(np.square(db)), np.sqrt(np.square(b))),
        "square": (np.square(da, dtype=np.float32), np.square(a)),
        "clip": (da.clip(-0.5, 0.5), np.clip(a, -0.5, 0.5)),
        "copy": (da.copy(), a),
        "add scalar": (np.add(da, s), np.add(a, s)),
    }
    with np.errstate(invalid="ignore", divide="ignore"):
        cases["sqrt of negatives"] = (np.sqrt(da), np.sqrt(a))
        for what, (got, want) in cases.items():
            assert isinstance(got, DeviceVec), what
            assert_bitwise(got.numpy(), want, what)
    # in place, and out= (the optimizers' forms)
    c, cc = db.copy(), b.copy()
    for op in ("mul", "add", "sub", "div"):
        if op == "mul":
            c *= s
            cc *= s
        elif op == "add":
            c += da
            cc += a
        elif op == "sub":
            c -= db
            cc -= b
        else:
            c /= s
            cc /= s
    assert_bitwise(c.numpy(), cc, "in place")
    out = DeviceVec.empty(EMU, (6, 7))
    assert np.multiply(db, s, out=out) is out
    assert_bitwise(out.numpy(), b * s, "out=")
    z = da.copy()
    z.fill(0.5)
    assert_bitwise(z.numpy(), np.full((6, 7), 0.5, np.float32), "fill")
    assert_bitwise(np.asarray(da), a, "__array__")


def test_device_vec_sum_squares_is_fixed_and_double():
    rng = np.random.default_rng(1)
    a = rng.standard_normal(10_001).astype(np.float32)   # more than two chunks
    d = DeviceVec.upload(a, EMU)
    s1, s2 = d.sum_squares(), d.sum_squares()
    assert s1 == s2
    exact = float(np.sum(a.astype(np.float64) ** 2))
    assert abs(s1 - exact) <= 1e-12 * exact


def test_device_vec_refuses_what_it_cannot_do():
    a = DeviceVec.upload(np.ones((2, 3), np.float32), EMU)
    b = DeviceVec.upload(np.ones((3, 2), np.float32), EMU)
    with pytest.raises(ValueError, match="no broadcasting"):
        a + b
    with pytest.raises(TypeError, match="real scalar"):
        a * "x"
    with pytest.raises(ValueError, match="ambiguous"):
        bool(a)
    with pytest.raises(TypeError, match="float32 DeviceArray"):
        DeviceVec(rk.device_array(np.ones(3, np.bool_), EMU))
    # a ufunc it does not run comes back as NumPy's on a host copy
    assert np.array_equal(np.exp(a), np.exp(np.ones((2, 3), np.float32)))
    with pytest.raises(TypeError, match="out= a DeviceVec"):
        np.exp(a, out=a)
    # the bindings check every range and device
    with pytest.raises(ValueError, match="outside"):
        _core.gpu_elementwise(0, 7, a.base, 0, a.base, 0, None, 0)
    with pytest.raises(ValueError, match="outside"):
        _core.gpu_elementwise(0, 6, a.base, 1, a.base, 0, None, 0)
    with pytest.raises(ValueError, match="outside"):
        _core.gpu_elementwise(0, 2, a.base, -1, a.base, 0, None, 0)
    with pytest.raises(ValueError, match="unknown operation"):
        _core.gpu_elementwise(99, 6, a.base, 0, a.base, 0, None, 0)
    with pytest.raises(ValueError, match="a is required"):
        _core.gpu_elementwise(0, 6, a.base, 0, None, 0, None, 0)
    with pytest.raises(TypeError, match="float32"):
        _core.gpu_elementwise(0, 3, rk.device_array(np.ones(3, np.bool_), EMU), 0, a.base,
                              0, None, 0)
    with pytest.raises(ValueError, match="outside"):
        _core.gpu_sum_squares(7, a.base, 0)


def _adam_like(g, w, m, v, a, b):
    """Adam's step as the optimizer writes it (in place, out=, scalars)."""
    b1, b2, c1, c2, eps, alpha = (np.float32(x) for x in (0.9, 0.999, 0.1, 0.001, 1e-7, 0.01))
    m *= b1
    m += np.multiply(g, c1, out=a)
    np.multiply(g, g, out=a)
    a *= c2
    v *= b2
    v += a
    np.sqrt(v, out=a)
    a += eps
    np.multiply(m, alpha, out=b)
    b /= a
    w -= b


def test_fused_operations_are_the_same_bits_in_one_launch():
    rng = np.random.default_rng(4)
    host = [rng.standard_normal(1000).astype(np.float32) for _ in range(6)]
    host[3] = np.abs(host[3])          # v, a second moment
    ref = [h.copy() for h in host]
    for _ in range(3):
        _adam_like(*ref)
    dev = [DeviceVec.upload(h, EMU) for h in host]
    before = dict(dm.launches)
    with dm.fused(1000):
        for _ in range(3):          # 33 steps: more than one program's worth
            _adam_like(*dev)
    assert dm.launches["elementwise"] == before["elementwise"]
    runs = dm.launches["program"] - before["program"]
    assert runs == -(-33 // _core.gpu_program_limits(EMU)[0])
    for d, r, nm in zip(dev, ref, "gwmvab"):
        assert_bitwise(d.numpy(), r, nm)
    # a read runs what was recorded; another size runs it first, then itself
    x = DeviceVec.upload(np.ones(1000, np.float32), EMU)
    y = DeviceVec.upload(np.ones(10, np.float32), EMU)
    with dm.fused(1000):
        x *= np.float32(3.0)
        assert x.numpy()[0] == 3.0
        x += np.float32(1.0)
        y += np.float32(1.0)
        x *= np.float32(2.0)
    assert x.numpy()[0] == 8.0 and y.numpy()[0] == 2.0
    # overlapping ranges of one array are not run in one program
    z = DeviceVec.upload(np.arange(12, dtype=np.float32), EMU)
    with dm.fused(6):
        lo, hi = z.view(0, (6,)), z.view(3, (6,))
        hi += np.float32(100.0)
        lo += hi                      # reads hi after the add, across threads
    want = np.arange(12, dtype=np.float32)
    want[3:9] += 100
    want[0:6] += want[3:9]
    assert_bitwise(z.numpy(), want, "overlap")
    # nothing recorded runs when the block raises
    with pytest.raises(RuntimeError):
        with dm.fused(1000):
            x *= np.float32(0.0)
            raise RuntimeError
    assert x.numpy()[0] == 8.0
    # the program's bounds are checked by the bindings
    with pytest.raises(ValueError, match="out of range"):
        _core.gpu_elementwise_program(10, [(y.base, 0)], [(0, 0, 0, 3, 0.0, 0.0)])
    with pytest.raises(ValueError, match="at most"):
        _core.gpu_elementwise_program(10, [(y.base, 0)], [(0, 0, 0, 0, 0.0, 0.0)] * 1000)
    with pytest.raises(ValueError, match="outside"):
        _core.gpu_elementwise_program(11, [(y.base, 0)], [(0, 0, 0, 0, 0.0, 0.0)])


# ---------------------------------------------------------------- WeightDict

def test_weight_dict_downloads_a_pending_weight_on_every_read():
    old = np.zeros((2, 3), np.float32)
    new = np.arange(6, dtype=np.float32).reshape(2, 3)
    reads = [lambda d: d["w"], lambda d: d.get("w"), lambda d: dict(d)["w"],
             lambda d: {**d}["w"], lambda d: d.values()[0], lambda d: d.items()[0][1],
             lambda d: d.copy()["w"], lambda d: pickle.loads(pickle.dumps(d))["w"],
             lambda d: copy.deepcopy(d)["w"], lambda d: [d[k] for k in d][0]]
    for i, read in enumerate(reads):
        d = WeightDict(w=old)
        d.set_pending("w", DeviceVec.upload(new, EMU))
        assert d.raw("w") is old and d.pending
        got = read(d)
        assert np.array_equal(got, new), i
        assert not got.flags.writeable or i in (7, 8)
    d = WeightDict(w=old)
    d.set_pending("w", DeviceVec.upload(new, EMU))
    d["w"] = old                       # an assignment wins over what was pending
    assert not d.pending and d["w"] is old
    with pytest.raises(KeyError):
        d.set_pending("v", DeviceVec.upload(new, EMU))


# ---------------------------------------------------------------- fit

OPTIMIZERS = {
    "adam": lambda: optimizers.Adam(0.01),
    "sgd-nesterov": lambda: optimizers.SGD(0.1, momentum=0.9, nesterov=True),
    "sgd": lambda: optimizers.SGD(0.1),
    "rmsprop-centered": lambda: optimizers.RMSprop(0.01, momentum=0.5, centered=True),
    "adagrad": lambda: optimizers.Adagrad(0.1),
    "adamw-amsgrad": lambda: optimizers.AdamW(0.01, amsgrad=True),
    "adam-ema": lambda: optimizers.Adam(0.01, use_ema=True, ema_overwrite_frequency=3),
    "sgd-accumulate-clipvalue": lambda: optimizers.SGD(0.1, gradient_accumulation_steps=2,
                                                       clipvalue=0.01),
    "adam-lossscale-decay": lambda: optimizers.Adam(0.01, loss_scale_factor=128.0,
                                                    weight_decay=0.1),
    "adam-clipnorm": lambda: optimizers.Adam(0.01, clipnorm=0.1),
    "sgd-global-clipnorm": lambda: optimizers.SGD(0.1, global_clipnorm=0.05),
}
NORM_CLIPPED = ("adam-clipnorm", "sgd-global-clipnorm")


def _data():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((16, 5, 3)).astype(np.float32)
    y = rng.standard_normal((16, 2)).astype(np.float32)
    return x, y


def _model(cell, device):
    rk.utils.set_random_seed(0)
    kw = dict(reset_after=False) if cell == "GRU" else {}
    L = getattr(layers, cell)
    return models.Sequential([
        layers.Input((5, 3)), L(6, backend=device, seed=1, return_sequences=True, **kw),
        L(4, backend=device, seed=2, **kw), layers.Dense(2)])


class _Transfers(callbacks.Callback):
    """Host transfers of the device per training batch."""

    def on_train_batch_begin(self, batch, logs=None):
        self.start = _core.gpu_host_transfers(self.device)

    def on_train_batch_end(self, batch, logs=None):
        self.per_batch.append(_core.gpu_host_transfers(self.device) - self.start)

    def __init__(self, device):
        super().__init__()
        self.device = device
        self.per_batch = []


def _fit(on_device, cell, opt, epochs=2, device=EMU):
    config.set_device_updates(on_device)
    x, y = _data()
    m = _model(cell, device)
    m.compile(optimizer=OPTIMIZERS[opt](), loss="mse")
    t = _Transfers(device)
    hist = m.fit(x, y, batch_size=8, epochs=epochs, verbose=0, shuffle=False, callbacks=[t])
    return m, hist.history["loss"], t.per_batch


# every optimizer and option with LSTM layers; the other cells (their gradients'
# path from the backward) with two
CASES = [("LSTM", o) for o in sorted(OPTIMIZERS)] + [
    (c, o) for c in ("SimpleRNN", "GRU") for o in ("adam", "sgd-global-clipnorm")]


@pytest.mark.parametrize("cell,opt", CASES)
@pytest.mark.parametrize("device", GPU)
def test_fit_on_the_device_is_the_host_update(device, cell, opt):
    md, loss_d, per_d = _fit(True, cell, opt, device=device)
    mh, loss_h, per_h = _fit(False, cell, opt, device=device)
    rnns = [l for l in md.layers if isinstance(l, getattr(layers, cell))]
    # the device copies are the weights; the host copies wait until read (but
    # with use_ema, whose averages fit's end assigns from the host)
    if opt != "adam-ema":
        assert all(isinstance(l._packed, backends.GpuWeights) for l in rnns)
        assert all(l._params.pending for l in rnns)
    exact = opt not in NORM_CLIPPED
    for a, b, p in zip(md.get_weights(), mh.get_weights(), md.weight_paths()):
        if exact:
            assert_bitwise(a, b, p)
        else:
            assert_close(a, b, "device_update_f32", p)
    for a, b, nm in zip(md.optimizer.get_state(), mh.optimizer.get_state(),
                        ["iteration"] + md.optimizer.variable_names[1:]):
        if exact:
            assert_bitwise(a, b, nm) if a.dtype == np.float32 else np.testing.assert_equal(a, b)
        else:
            assert_close(a, b, "device_update_f32", nm)
    # the gradients of the last step as the backward gave them (before the update's
    # unscaling, accumulation and clipping: not the optimizer's working copy)
    for a, b, p in zip(md.grads, mh.grads, md.weight_paths()):
        if exact:
            assert_bitwise(a, b, f"grads of {p}")
        else:   # (from weights a norm clipping's ulps apart)
            assert_close(a, b, "device_update_f32", f"grads of {p}")
    if exact:
        assert loss_d == loss_h
        assert_bitwise(md.predict(_data()[0], verbose=0), mh.predict(_data()[0], verbose=0))
    # no weight upload and no weight-gradient download a step: the host update
    # downloads the 3 weight gradients of each layer (kernel, recurrent_kernel,
    # bias) every step and uploads the 3 weights after every step that updated
    # them; on the device a norm clipping downloads each weight's sum of squares
    # (a scalar) on every update instead
    L = 3 * len(rnns)
    updates = [(i + 1) % 2 == 0 if "accumulate" in opt else True for i in range(len(per_d))]
    want = [L + L * updates[i - 1] - L * (opt in NORM_CLIPPED) * updates[i]
            for i in range(1, len(per_d))]
    assert [h - d for h, d in zip(per_h[1:], per_d[1:])] == want


def test_a_device_update_is_one_program_launch():
    """Adam on two layers' weights on the device: one program a step and nothing
    else (the backward writes the gradients into the optimizer's flat buffer)."""
    config.set_device_updates(True)
    x, y = _data()
    m = _model("LSTM", EMU)
    m.compile(optimizer=optimizers.Adam(0.01), loss="mse")
    m.fit(x[:8], y[:8], batch_size=8, epochs=1, verbose=0)     # builds, uploads the slots
    before = dict(dm.launches)
    m.fit(x, y, batch_size=8, epochs=2, verbose=0, shuffle=False)    # 4 steps
    assert dm.launches["program"] - before["program"] == 4
    assert dm.launches["elementwise"] - before["elementwise"] == 0


def test_public_gradients_and_state_read_as_host_arrays():
    md, _, _ = _fit(True, "LSTM", "adam", epochs=1)
    mh, _, _ = _fit(False, "LSTM", "adam", epochs=1)
    gd, gh = md.grads, mh.grads
    assert all(isinstance(g, np.ndarray) for g in gd)
    for a, b in zip(gd, gh):
        assert_bitwise(a, b, "model.grads")
    lstm = md.layers[0]
    assert all(isinstance(g, np.ndarray) for g in lstm.grads)
    for a, b in zip(md.optimizer.variables, mh.optimizer.variables):
        np.testing.assert_array_equal(a, b)
    # a read downloads once; the layer keeps running on its device copies
    assert lstm._params.pending
    k = lstm.kernel
    assert not k.flags.writeable and np.array_equal(k, mh.layers[0].kernel)
    assert lstm.kernel is k


def test_assigning_weights_and_state_between_fits():
    """set_weights and optimizer.set_state between two fits land on the device."""
    x, y = _data()
    runs = []
    for on_device in (True, False):
        md, _, _ = _fit(on_device, "GRU", "adam", epochs=1)
        w = md.get_weights()
        md.set_weights([a * np.float32(0.5) for a in w])
        st = md.optimizer.get_state()
        md.optimizer.set_state([s * np.float32(0.25) if s.dtype == np.float32 and s.ndim
                                else s for s in st])
        md.fit(x, y, batch_size=8, epochs=1, verbose=0, shuffle=False)
        runs.append((md.get_weights(), md.optimizer.get_state()))
    for a, b in zip(runs[0][0], runs[1][0]):
        assert_bitwise(a, b, "weights")
    for a, b in zip(runs[0][1], runs[1][1]):
        np.testing.assert_array_equal(a, b)


def test_saving_pickling_and_backend_change_see_the_device_weights(tmp_path):
    md, _, _ = _fit(True, "LSTM", "sgd-nesterov", epochs=1)
    mh, _, _ = _fit(False, "LSTM", "sgd-nesterov", epochs=1)
    want = mh.get_weights()
    path = os.path.join(tmp_path, "m.keras")
    md.save(path)
    for a, b in zip(models.load_model(path).get_weights(), want):
        assert_bitwise(a, b, "saved")
    md2, _, _ = _fit(True, "LSTM", "sgd-nesterov", epochs=1)
    clone = pickle.loads(pickle.dumps(md2))
    for a, b in zip(clone.get_weights(), want):
        assert_bitwise(a, b, "pickled")
    md3, _, _ = _fit(True, "LSTM", "sgd-nesterov", epochs=1)
    for l in md3.layers[:2]:
        assert l._params.pending
        l.backend = "reference"        # the device copies come home first
        assert not l._params.pending
    for a, b in zip(md3.get_weights(), want):
        assert_bitwise(a, b, "after a backend change")


def test_checkpoints_during_fit_and_shared_layers(tmp_path):
    """A callback reading the weights mid-fit (ModelCheckpoint) and a layer called
    twice (its gradients summed on the device) give the host update's results."""
    x, _ = _data()
    y = np.random.default_rng(3).standard_normal((16, 2)).astype(np.float32)
    out = []
    for on_device in (True, False):
        config.set_device_updates(on_device)
        rk.utils.set_random_seed(0)
        inp = layers.Input((5, 3))
        r = layers.LSTM(4, backend=EMU, seed=3)
        z = layers.Concatenate()([r(inp), r(layers.Rescaling(2.0)(inp))])
        m = models.Model(inp, layers.Dense(2)(z))
        m.compile(optimizer=optimizers.Adam(0.01), loss="mse")
        path = os.path.join(tmp_path, f"ck{int(on_device)}.keras")
        m.fit(x, y, batch_size=8, epochs=2, verbose=0, shuffle=False,
              callbacks=[callbacks.ModelCheckpoint(path)])
        out.append((m.get_weights(), models.load_model(path).get_weights()))
    for a, b in zip(out[0][0], out[1][0]):
        assert_bitwise(a, b, "weights")
    for a, b in zip(out[0][1], out[0][0]):
        assert_bitwise(a, b, "checkpoint")


def test_gpu_fit_benchmark_runs_on_the_emulation(monkeypatch):
    """bench/gpu_fit.py (gpu.sh's fit step) end to end on cuda-emu, on a small
    workload of the forecaster's kind (two batches; the emulation's time loops are
    slow):
    every variant's loss agrees with the CPU's, and the device update makes fewer
    host transfers a step than the host update."""
    import io
    import sys
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "bench"))
    try:
        import gpu_fit
    finally:
        sys.path.pop(0)
    from rnnkern.bench import fit as F
    rng = np.random.default_rng(0)
    data = (rng.standard_normal((64, 6, 1)).astype(np.float32),
            rng.standard_normal((64, 1)).astype(np.float32))
    monkeypatch.setitem(F.WORKLOADS, "small", dict(
        build=lambda L, M: M.Sequential([L.Input((6, 1)), L.SimpleRNN(8, return_sequences=True),
                                         L.SimpleRNN(8), L.Dense(1)]),
        data=lambda: data, loss="mse", desc="SimpleRNN(8) x2 + Dense(1), window 6"))
    buf = io.StringIO()
    res = gpu_fit.run("cuda-emu", reps=1, out=buf, workloads=["small"])
    for name, w in res["workloads"].items():
        assert not w["status"], (name, w["status"])
        t = w["transfers_per_step"]
        assert t["cuda-emu (device update)"] < t["cuda-emu (host update)"], name
    assert "| small | cuda-emu (device update) |" in buf.getvalue()


def test_masks_dropout_bidirectional_and_validation_on_the_device():
    """The layer options the kernels take (masks from Embedding(mask_zero), per-gate
    recurrent dropout, go_backwards, a Bidirectional pair, reset_before GRU) and
    evaluation between epochs: the host update's results, bitwise."""
    rng = np.random.default_rng(5)
    x = rng.integers(1, 9, (24, 6))
    x[:5, -2:] = 0
    y = rng.standard_normal((24, 2)).astype(np.float32)
    out = []
    for on_device in (True, False):
        config.set_device_updates(on_device)
        rk.utils.set_random_seed(1)
        m = models.Sequential([
            layers.Input((6,)), layers.Embedding(9, 3, mask_zero=True),
            layers.Bidirectional(layers.GRU(5, backend=EMU, seed=4, reset_after=False,
                                            recurrent_dropout=0.25, return_sequences=True)),
            layers.LSTM(4, backend=EMU, seed=5, dropout=0.2, recurrent_dropout=0.3,
                        go_backwards=True),
            layers.Dense(2)])
        m.compile(optimizer=optimizers.RMSprop(0.01, momentum=0.5), loss="mse")
        h = m.fit(x, y, batch_size=8, epochs=2, verbose=0, shuffle=False,
                  validation_data=(x[:8], y[:8]))
        bi = m.layers[1]
        rnns = [bi.forward_layer, bi.backward_layer, m.layers[2]]
        assert all(l._params.pending for l in rnns) == on_device
        out.append((m.get_weights(), h.history))
    for a, b, p in zip(out[0][0], out[1][0], range(99)):
        assert_bitwise(a, b, f"weight {p}")
    assert out[0][1] == out[1][1]
