"""Calls side by side (issue 23 part 4): a Bidirectional layer on compiled CPU
kernels runs its two directions at once, each on its share of the threads
(rnnkern.backends.run_beside), with outputs, states and every gradient bitwise
those of the directions one after the other; it falls back to one after the other
where it cannot gain, propagates errors, and leaves a forked child usable."""
import multiprocessing as mp
import threading

import numpy as np
import pytest

import rnnkern as rk
from rnnkern import backends as bk

CPU = bk.cpu_backends()
pytestmark = pytest.mark.skipif(not CPU, reason="compiled CPU kernels not built")

# small cases, with BESIDE_MIN_WORK lowered below their work (2 x T N G H (C + H) =
# 2 x 80*8*1*64*80 for a SimpleRNN) by the two_threads fixture
N, T, C, H = 8, 80, 16, 64
MIN_WORK = 1 << 20


@pytest.fixture
def two_threads(monkeypatch):
    old, conc = bk._num_threads, bk.get_layer_concurrency()
    monkeypatch.setattr(bk, "BESIDE_MIN_WORK", MIN_WORK)
    bk.set_num_threads(2)
    yield
    bk.set_num_threads(old)
    bk.set_layer_concurrency(conc["on"], wavefront=conc["wavefront"])


def make(cell, backend, seed, merge_mode="concat", **kw):
    layer = getattr(rk.layers, cell)(H, seed=seed, backend=backend, **kw)
    return rk.layers.Bidirectional(layer, merge_mode=merge_mode)


def run(layer, x, mask, initial_state, training, rng_dy):
    kw = {}
    if mask is not None:
        kw["mask"] = mask
    if initial_state is not None:
        kw["initial_state"] = initial_state
    out = layer(x, training=training, **kw)
    outs = out if isinstance(out, list) else [out]
    if not training:
        return outs, []
    d = [rng_dy.standard_normal(o.shape).astype(np.float32) for o in outs]
    if layer.return_state:
        n_out = 1 if layer.merge_mode else 2
        dx = layer.backward(d[0] if n_out == 1 else d[:n_out], d[n_out:])
    else:
        dx = layer.backward(d[0] if len(d) == 1 else d)
    extra = list(layer.state_grads or [])
    return outs, [dx] + list(layer.grads) + extra


CASES = [
    dict(cell="LSTM", kw=dict(return_sequences=True), mask=True, state=False),
    dict(cell="GRU", kw=dict(return_sequences=False, reset_after=False), mask=False, state=True),
    dict(cell="GRU", kw=dict(return_sequences=True, return_state=True), mask=True, state=True),
    dict(cell="SimpleRNN", kw=dict(return_sequences=True, dropout=0.2,
                                   recurrent_dropout=0.3), mask=False, state=False),
    dict(cell="LSTM", kw=dict(return_sequences=True, return_state=True, recurrent_dropout=0.25),
         mask=True, state=True, merge_mode=None),
    dict(cell="LSTM", kw=dict(return_sequences=True, go_backwards=True), mask=False,
         state=False, merge_mode="mul"),
]


@pytest.mark.parametrize("backend", CPU)
@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c['cell']}-{c.get('merge_mode', 'concat')}"
                         f"-{'-'.join(k for k, v in c['kw'].items() if v)}")
def test_side_by_side_is_bitwise_one_after_the_other(backend, case, two_threads):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((N, T, C)).astype(np.float32)
    mask = rng.random((N, T)) > 0.3 if case["mask"] else None
    n_states = 2 if case["cell"] == "LSTM" else 1
    init = ([rng.standard_normal((N, H)).astype(np.float32) for _ in range(2 * n_states)]
            if case["state"] else None)
    results = {}
    for on in (False, True):
        bk.set_layer_concurrency(on)
        layer = make(case["cell"], backend, 11, case.get("merge_mode", "concat"), **case["kw"])
        assert (layer._beside(x.shape) is not None) == on
        got = []
        for training in (False, True, True):     # dropout masks differ call to call
            got.append(run(layer, x, mask, init, training, np.random.default_rng(4)))
        results[on] = got
    for (outs0, grads0), (outs1, grads1) in zip(results[False], results[True]):
        assert len(outs0) == len(outs1) and len(grads0) == len(grads1)
        for a, b in zip(outs0 + grads0, outs1 + grads1):
            np.testing.assert_array_equal(a, b)


def test_the_directions_run_on_two_threads_at_once(two_threads):
    """The forward direction runs on a worker thread while the backward one runs on
    the caller, both inside their kernels at the same time (each waits for the
    other at a barrier inside its layer call, which only concurrent calls pass)."""
    layer = make("LSTM", CPU[-1], 0, return_sequences=True)
    x = np.zeros((N, T, C), np.float32)
    layer(x)                                  # built
    meet = threading.Barrier(2, timeout=30)
    seen = {}

    def spy(sub):
        inner = sub.forward

        def forward(*a, **kw):
            seen[sub.name] = (threading.current_thread().name, bk._threads_for("lstm", N, C, H))
            meet.wait()
            return inner(*a, **kw)
        sub.forward = forward

    spy(layer.forward_layer)
    spy(layer.backward_layer)
    layer(x, training=True)
    names = {k.split("_")[0]: v for k, v in seen.items()}
    assert names["forward"][0].startswith("rnnkern-beside")
    assert names["backward"][0] == threading.current_thread().name
    assert names["forward"][1] == 1 and names["backward"][1] == 1   # 2 threads, split
    assert bk._threads_for("lstm", N, C, H) == 2                     # the cap is undone


def test_one_after_the_other_where_it_cannot_gain(two_threads):
    layer = make("LSTM", CPU[-1], 0)
    assert layer._beside((N, T, C)) == (1, 1)
    assert layer._beside((1, 2, 3)) is None                 # too little work
    bk.set_num_threads(1)
    assert layer._beside((N, T, C)) is None                 # one thread
    bk.set_num_threads(4)
    assert layer._beside((N, T, C)) == (2, 2)
    bk.BESIDE_MIN_WORK = 1 << 26                            # the real threshold:
    assert layer._beside((N, T, C)) is None                 # forward too small,
    assert layer._beside((N, 8 * T, C), backward=True) is not None   # backward not
    bk.BESIDE_MIN_WORK = MIN_WORK
    ref = make("LSTM", "reference", 0)
    assert ref._beside((N, T, C)) is None                   # the NumPy reference
    bk.set_layer_concurrency(False)
    assert layer._beside((N, T, C)) is None
    with pytest.raises(ValueError, match="on must be a bool"):
        bk.set_layer_concurrency("yes")
    with pytest.raises(ValueError, match="wavefront must be a bool"):
        bk.set_layer_concurrency(True, wavefront=1)
    bk.set_layer_concurrency(False, wavefront=True)
    assert bk.get_layer_concurrency() == {"on": False, "wavefront": False}
    bk.set_layer_concurrency(True)
    assert bk.get_layer_concurrency() == {"on": True, "wavefront": False}


def test_an_error_on_either_side_is_raised_after_both_finish(two_threads):
    layer = make("GRU", CPU[-1], 0, return_sequences=True)
    x = np.ones((N, T, C), np.float32)
    y0 = layer(x)
    bad = [np.zeros((N, H), np.float32), np.zeros((N, H + 1), np.float32)]
    with pytest.raises(ValueError, match=r"initial_state\[0\] has shape"):
        layer(x, initial_state=bad)            # the backward direction's state is wrong
    with pytest.raises(ValueError, match=r"initial_state\[0\] has shape"):
        layer(x, initial_state=bad[::-1])      # the forward direction's (worker) state
    np.testing.assert_array_equal(layer(x), y0)  # and the layer runs on


def _child_bidirectional(q):
    bk.set_num_threads(2)
    layer = make("LSTM", "auto", 0, return_sequences=True)
    y = layer(np.ones((N, T, C), np.float32))
    q.put(float(np.abs(y).sum()))


def test_fork_after_side_by_side_does_not_hang(two_threads):
    """A forked child has none of the worker threads: it makes its own."""
    layer = make("LSTM", "auto", 0, return_sequences=True)
    y = layer(np.ones((N, T, C), np.float32))
    ctx = mp.get_context("fork")
    q = ctx.Queue()
    p = ctx.Process(target=_child_bidirectional, args=(q,))
    p.start()
    p.join(60)
    hung = p.is_alive()
    if hung:
        p.kill()
    assert not hung, "forked child hung in a Bidirectional call"
    assert p.exitcode == 0
    assert q.get(timeout=5) == pytest.approx(float(np.abs(y).sum()), rel=0, abs=0)


# ------------------------------------------------------------------ wavefront

from rnnkern.models import wavefront  # noqa: E402

T_WAVE = 48


def _spy_runs(monkeypatch):
    ran = []
    inner = wavefront.run

    def run(chain, values, masks):
        k = inner(chain, values, masks)
        ran.append(k)
        return k
    monkeypatch.setattr(wavefront, "run", run)
    return ran


def _predict_both(model, x, ran):
    out = {}
    for on in (False, True):
        bk.set_layer_concurrency(True, wavefront=on)
        del ran[:]
        out[on] = (model.predict(x, verbose=0, batch_size=len(x)), list(ran))
    return out


def _padded_tokens(rng, n, t, vocab=30):
    """Token ids with zeros (masked under mask_zero) before, inside and after the
    words of each row, some rows masked over whole blocks, one row all masked."""
    x = rng.integers(1, vocab, (n, t))
    for r in range(n):
        a, b = sorted(rng.integers(0, t, 2))
        x[r, a:b] = 0 if r % 2 else x[r, a:b]
        x[r, :rng.integers(0, t // 2)] = 0 if r % 3 == 0 else x[r, :1]
    x[0] = 0
    x[1, 5:40] = 0
    x[rng.random((n, t)) < 0.15] = 0
    return x


L = rk.layers
WAVE_MODELS = {
    "lstm-lstm": lambda: [L.Input((T_WAVE, C)), L.LSTM(H, return_sequences=True, seed=1),
                          L.LSTM(H, seed=2)],
    "gru-gru-seq": lambda: [L.Input((T_WAVE, C)),
                            L.GRU(H, return_sequences=True, reset_after=False, seed=1),
                            L.GRU(H, return_sequences=True, seed=2)],
    "backwards-head-simple-lstm": lambda: [L.Input((T_WAVE, C)),
                                           L.SimpleRNN(H, return_sequences=True,
                                                       go_backwards=True, seed=1),
                                           L.LSTM(H, seed=2)],
    "three": lambda: [L.Input((T_WAVE, C)), L.GRU(H, return_sequences=True, seed=1),
                      L.LSTM(H, return_sequences=True, seed=2), L.SimpleRNN(H, seed=3),
                      L.Dense(3)],
    "masked": lambda: [L.Input((T_WAVE,)), L.Embedding(30, C, mask_zero=True),
                       L.LSTM(H, return_sequences=True, seed=1),
                       L.GRU(H, return_sequences=True, seed=2), L.LSTM(H, seed=3)],
    "masked-sequence-out": lambda: [L.Input((T_WAVE,)), L.Embedding(30, C, mask_zero=True),
                                    L.LSTM(H, return_sequences=True, seed=1),
                                    L.GRU(H, return_sequences=True, seed=2)],
    "masked-backwards-zero-output": lambda: [
        L.Input((T_WAVE,)), L.Embedding(30, C, mask_zero=True),
        L.GRU(H, return_sequences=True, go_backwards=True, zero_output_for_mask=True, seed=1),
        L.SimpleRNN(H, return_sequences=True, zero_output_for_mask=True, seed=2),
        L.Dense(2)],
}


@pytest.mark.parametrize("threads", [2, 3])
@pytest.mark.parametrize("name", sorted(WAVE_MODELS))
def test_wavefront_is_bitwise_one_layer_after_the_other(name, threads, two_threads,
                                                        monkeypatch):
    """predict through a chain of recurrent layers on blocks of steps, each layer on
    its own thread, gives bitwise the layer-by-layer result (with 2 threads a chain
    of three runs its first two as a wavefront)."""
    bk.set_num_threads(threads)
    rng = np.random.default_rng(7)
    model = rk.Sequential(WAVE_MODELS[name]())
    x = (_padded_tokens(rng, N, T_WAVE) if "masked" in name
         else rng.standard_normal((N, T_WAVE, C)).astype(np.float32))
    ran = _spy_runs(monkeypatch)
    got = _predict_both(model, x, ran)
    np.testing.assert_array_equal(got[False][0], got[True][0])
    assert not any(got[False][1])          # turned off: asked, declined
    chain = 3 if name in ("three", "masked") else 2
    assert got[True][1] == [min(chain, threads)]


def test_wavefront_only_where_it_applies(two_threads, monkeypatch):
    """Not in training, not for a sequence used twice, not with one thread, not on
    the reference backend; and a model's call(training=False) uses it too."""
    rng = np.random.default_rng(8)
    x = rng.standard_normal((N, T_WAVE, C)).astype(np.float32)
    ran = _spy_runs(monkeypatch)
    bk.set_layer_concurrency(True, wavefront=True)
    inp = L.Input((T_WAVE, C))
    s = L.LSTM(H, return_sequences=True, seed=1)(inp)
    branched = rk.Model(inp, [L.LSTM(H, seed=2)(s), s])      # s is an output too
    branched.predict(x, verbose=0)
    assert ran == []
    model = rk.Sequential([L.Input((T_WAVE, C)), L.LSTM(H, return_sequences=True, seed=1),
                           L.LSTM(H, seed=2), L.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    model.fit(x, np.zeros((N, 1), np.float32), epochs=1, batch_size=N, verbose=0)
    assert ran == []                                 # training: one after the other
    model.evaluate(x, np.zeros((N, 1), np.float32), verbose=0, batch_size=N)
    assert ran == [2]
    y = model(x, training=False)
    assert ran == [2, 2]
    np.testing.assert_array_equal(y, model.predict(x, verbose=0, batch_size=N))
    bk.set_num_threads(1)
    model.predict(x, verbose=0, batch_size=N)
    assert ran == [2, 2, 2, 0]
    bk.set_num_threads(2)
    for layer in model.layers[:2]:
        layer.backend = "reference"
    model.predict(x, verbose=0, batch_size=N)
    assert ran[-1] == 0


@pytest.mark.parametrize("stage", [0, 1])
def test_wavefront_error_in_a_stage_is_raised(stage, two_threads):
    """An error inside a stage's kernel call is raised from predict (no hang); the
    model runs on after it."""
    rng = np.random.default_rng(9)
    x = rng.standard_normal((N, T_WAVE, C)).astype(np.float32)
    model = rk.Sequential([L.Input((T_WAVE, C)), L.LSTM(H, return_sequences=True, seed=1),
                           L.LSTM(H, seed=2)])
    bk.set_layer_concurrency(True, wavefront=True)
    want = model.predict(x, verbose=0, batch_size=N)
    layer = model.layers[stage]
    inner = layer._infer_steps
    calls = []

    def failing(*a):
        calls.append(1)
        if len(calls) == 2:
            raise MemoryError("planted failure in block 2")
        return inner(*a)
    layer._infer_steps = failing
    with pytest.raises(MemoryError, match="planted failure"):
        model.predict(x, verbose=0, batch_size=N)
    del layer._infer_steps
    np.testing.assert_array_equal(model.predict(x, verbose=0, batch_size=N), want)
