"""The merging layers (Add, Subtract, Multiply, Average, Maximum, Minimum, Dot)
and the attention layers (Attention, AdditiveAttention) against Keras 3 on its
torch backend: forward with copied weights (masks, causal masks and
broadcasting included), backward against float64 central finite differences
and against torch's autograd through Keras' own layer; an LSTM encoder-decoder
with attention as a functional model (forward, summary, config, fit, all
against Keras); configs; bad arguments."""
import os

os.environ.setdefault("KERAS_BACKEND", "torch")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

import rnnkern as rk  # noqa: E402
import rnnkern.layers as RL  # noqa: E402
import rnnkern.models as RM  # noqa: E402
from helpers import keras_or_skip  # noqa: E402
from rnnkern.layers import core as C  # noqa: E402
from rnnkern.layers.attention import MASK_BIAS, AdditiveAttention, Attention  # noqa: E402
from rnnkern.layers.base import _float64_for_tests, flatten  # noqa: E402
from test_model_layers import check_gradients, set_reference  # noqa: E402
from tolerances import assert_close  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")

MERGE = {n: getattr(C, n) for n in
         ("Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum")}
OUR_LAYERS = RL

# (layer, input shapes, masks): masks are per input, None for none
MERGE_CASES = [
    ("Add", [(2, 3, 4)] * 3, None),
    ("Add", [(2, 3, 4), (2, 1, 4)], "all"),
    ("Add", [(2, 4), (2, 3, 4)], None),            # ranks differ: Keras inserts axis 1
    ("Subtract", [(2, 3, 4), (2, 3, 1)], "all"),
    ("Average", [(2, 3, 4)] * 3, "some"),
    ("Multiply", [(2, 3, 4), (2, 1, 4), (2, 3, 4)], None),
    ("Multiply", [(2, 3, 4)] * 3, "all"),
    ("Multiply", [(2, 3, 4)] * 3, "some"),
    ("Maximum", [(2, 3, 4)] * 3, None),
    ("Maximum", [(2, 3, 4)] * 3, "all"),
    ("Maximum", [(2, 3, 4)] * 3, "some"),
    ("Minimum", [(2, 3, 4), (2, 3, 1), (2, 3, 4)], "all"),
    ("Minimum", [(2, 4), (2, 3, 4)], None),
]


def case_id(case):
    return f"{case[0]}-{'x'.join(str(s[-1]) for s in case[1])}-{case[2]}"


def merge_masks(shapes, which, rng):
    """One (N, T) boolean mask per input ("all"), every other input ("some"), none."""
    if which is None:
        return None
    out = []
    for i, s in enumerate(shapes):
        m = rng.random(s[:-1]) < 0.6
        m[..., 0] = True
        out.append(m if which == "all" or i % 2 == 0 else None)
    return out


def merge_inputs(shapes, rng, ties):
    """Small integers make ties (Maximum / Minimum route their gradient there)."""
    if ties:
        return [rng.integers(-2, 3, s).astype(np.float32) for s in shapes]
    return [rng.standard_normal(s).astype(np.float32) for s in shapes]


def keras_grads(keras_layer, xs, masks, R, torch, **kw):
    """Keras' outputs, their masks and torch's gradients of sum(out * R) with
    respect to the inputs (masks attached to the tensors, as in a model)."""
    ts = [torch.tensor(x, requires_grad=True) for x in xs]
    args = list(ts)
    if masks is not None:
        args = [t * 1 for t in ts]  # leaves keep no attribute: attach to a copy
        for a, m in zip(args, masks):
            if m is not None:
                a._keras_mask = torch.tensor(m)
    out = keras_layer(args, **kw)
    outs = list(out) if isinstance(out, (list, tuple)) else [out]
    loss = sum((o * torch.tensor(r)).sum() for o, r in zip(outs, R))
    loss.backward()
    return outs, [t.grad.numpy() for t in ts]


@pytest.fixture
def keras_config_without_tf(monkeypatch):
    """Keras' get_config asks whether TensorFlow is importable, importing it
    (seconds), only to recognise TensorFlow objects, which these configs hold
    none of: answer no for the test when nothing has asked yet."""
    keras_or_skip()
    from keras.src.utils import module_utils
    if module_utils.tensorflow._available is None:
        monkeypatch.setattr(module_utils.tensorflow, "_available", False)


# ------------------------------------------------------------ merging layers

@pytest.mark.parametrize("case", MERGE_CASES, ids=[case_id(c) for c in MERGE_CASES])
def test_merge_forward_backward_and_mask_match_keras(case, rng):
    keras = keras_or_skip()
    import torch
    name, shapes, which = case
    for ties in (False, True):
        xs = merge_inputs(shapes, rng, ties)
        masks = merge_masks(shapes, which, rng)
        ours = MERGE[name]()
        out = ours(xs, mask=masks)
        R = [rng.standard_normal(out.shape).astype(np.float32)]
        kout, kgrads = keras_grads(getattr(keras.layers, name)(), xs, masks, R, torch)
        what = f"{case_id(case)} ties={ties}"
        assert out.shape == tuple(kout[0].shape)
        assert_close(out, kout[0].detach().numpy(), "keras_f32", what)
        for i, (d, g) in enumerate(zip(ours.backward(R[0]), kgrads)):
            assert d.shape == g.shape
            assert_close(d, g, "torch_grad_f32", f"{what} d_inputs[{i}]")
        kmask = getattr(kout[0], "_keras_mask", None)
        mask = ours.compute_mask(xs, masks)
        assert (mask is None) == (kmask is None), what
        if mask is not None:
            np.testing.assert_array_equal(mask, kmask.numpy())


def test_maximum_minimum_split_the_gradient_at_ties():
    """torch's rule, which Keras on torch follows: a tie gives each side half."""
    a = np.array([[1.0, 2.0, 3.0]], np.float32)
    b = np.array([[1.0, 1.0, 4.0]], np.float32)
    for cls, want in ((C.Maximum, ([[.5, 1, 0]], [[.5, 0, 1]])),
                      (C.Minimum, ([[.5, 0, 1]], [[.5, 1, 0]]))):
        layer = cls()
        layer([a, b])
        da, db = layer.backward(np.ones((1, 3), np.float32))
        np.testing.assert_array_equal(da, want[0])
        np.testing.assert_array_equal(db, want[1])
    # three-way tie through Keras' fold max(max(a, b), c): 1/4, 1/4, 1/2
    layer = C.Maximum()
    one = np.ones((1, 1), np.float32)
    layer([one, one, one])
    assert [float(d[0, 0]) for d in layer.backward(one)] == [0.25, 0.25, 0.5]


@pytest.mark.parametrize("case", MERGE_CASES, ids=[case_id(c) for c in MERGE_CASES])
def test_merge_backward_finite_differences(case, rng):
    name, shapes, which = case
    with _float64_for_tests():
        xs = [rng.standard_normal(s) for s in shapes]
        masks = merge_masks(shapes, which, rng)
        check_gradients(MERGE[name](), xs, dict(mask=masks), rng=rng)


def test_merge_shapes_and_masks_without_keras():
    x = RL.Input((None, 4))
    y = RL.Input((1, 4))
    z = RL.Input((4,))
    assert C.Multiply()([x, y]).shape == (None, None, 4)
    assert C.Maximum()([x, z]).shape == (None, None, 4)
    assert C.Subtract()([y, z]).shape == (None, 1, 4)
    m1, m2 = np.array([[1, 0, 0]], bool), np.array([[0, 1, 0]], bool)
    xs = [np.ones((1, 3, 2), np.float32)] * 2
    np.testing.assert_array_equal(C.Add().compute_mask(xs, [m1, m2]), [[1, 1, 0]])
    assert C.Add().compute_mask(xs, [m1, None]) is None
    assert C.Dot(axes=-1).compute_mask(xs, [m1, m2]) is None
    # Multiply with every input masked: 0 where no input keeps the step
    out = C.Multiply()([np.full((1, 3, 2), 2, np.float32)] * 2, mask=[m1, m2])
    np.testing.assert_array_equal(out[0, :, 0], [2, 2, 0])


# ----------------------------------------------------------------------- Dot

DOT_CASES = [
    ([(2, 5), (2, 5)], 1, False),
    ([(2, 5), (2, 5)], -1, True),
    ([(2, 3, 5), (2, 4, 5)], -1, False),
    ([(2, 3, 5), (2, 5, 4)], (2, 1), True),
    ([(2, 5, 3), (2, 4, 5)], [1, 2], False),
    ([(2, 3, 4, 5), (2, 5, 6)], (-1, 1), False),
    ([(2, 5), (2, 4, 5)], (1, -1), True),
    ([(2, 3, 5), (2, 3, 5)], 1, True),
]


@pytest.mark.parametrize("shapes,axes,normalize", DOT_CASES)
def test_dot_matches_keras(shapes, axes, normalize, rng):
    keras = keras_or_skip()
    import torch
    xs = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    if normalize:
        xs[0][0] = 0.0  # a zero vector: Keras caps 1/norm at 1/epsilon
    ours = C.Dot(axes=axes, normalize=normalize)
    out = ours(xs)
    R = [rng.standard_normal(out.shape).astype(np.float32)]
    kl = keras.layers.Dot(axes=axes, normalize=normalize)
    kout, kgrads = keras_grads(kl, xs, None, R, torch)
    assert out.shape == tuple(kout[0].shape) == kl.compute_output_shape(shapes)
    assert out.shape == ours.compute_output_shape(shapes)
    assert_close(out, kout[0].detach().numpy(), "keras_f32", f"{shapes} {axes}")
    for i, (d, g) in enumerate(zip(ours.backward(R[0]), kgrads)):
        if normalize:
            # at the zero vector torch's autograd gives NaN (0 * rsqrt'(0) = 0 * inf);
            # ours is the derivative of the capped forward there, 1e7 * d_output
            assert np.isnan(g[0]).all() == (i == 0) and np.isfinite(d).all()
            d, g = d[1:], g[1:]
        assert_close(d, g, "torch_grad_f32", f"{shapes} {axes} d_inputs[{i}]")


@pytest.mark.parametrize("shapes,axes,normalize", DOT_CASES)
def test_dot_backward_finite_differences(shapes, axes, normalize, rng):
    with _float64_for_tests():
        xs = [rng.standard_normal(s) for s in shapes]
        check_gradients(C.Dot(axes=axes, normalize=normalize), xs, rng=rng)


# ----------------------------------------------------------------- attention

ATTENTION = [
    ("Attention", {}),
    ("Attention", dict(use_scale=True)),
    ("Attention", dict(score_mode="concat")),
    ("Attention", dict(use_scale=True, score_mode="concat")),
    ("AdditiveAttention", {}),
    ("AdditiveAttention", dict(use_scale=False)),
]
OURS = {"Attention": Attention, "AdditiveAttention": AdditiveAttention}
# (with a key, which masks, use_causal_mask, return_attention_scores)
CALLS = [(False, None, False, False), (True, "both", True, True), (False, "value", False, True),
         (True, "query", True, False)]


def attention_id(a):
    return a[0] + "".join(f"-{k}={v}" for k, v in a[1].items())


def attention_inputs(rng, with_key, which, n=2, tq=4, tv=5, dim=3, dim_v=3, empty_row=True):
    q = rng.standard_normal((n, tq, dim)).astype(np.float32)
    v = rng.standard_normal((n, tv, dim_v)).astype(np.float32)
    xs = [q, v] + ([rng.standard_normal((n, tv, dim)).astype(np.float32)] if with_key else [])
    if which is None:
        return xs, None
    qm = rng.random((n, tq)) < 0.7
    vm = rng.random((n, tv)) < 0.6
    vm[:, 0] = True
    if empty_row:
        # every value masked: Keras' bias (not -inf) leaves a finite softmax (not
        # for finite differences: a step of 1e-6 is lost in scores - 1e9)
        vm[-1] = False
    return xs, [qm if which in ("both", "query") else None,
                vm if which in ("both", "value") else None]


@pytest.mark.parametrize("call", CALLS, ids=lambda c: f"key={c[0]}-mask={c[1]}-causal={c[2]}")
@pytest.mark.parametrize("layer", ATTENTION, ids=attention_id)
def test_attention_matches_keras_and_torch_autograd(layer, call, rng):
    keras = keras_or_skip()
    import torch
    name, kw = layer
    with_key, which, causal, ret = call
    xs, mask = attention_inputs(rng, with_key, which, dim_v=2 if with_key else 3)
    kl = getattr(keras.layers, name)(**kw)
    kl.build([x.shape for x in xs])
    ws = [w + rng.uniform(-0.5, 0.5, w.shape).astype(np.float32) for w in kl.get_weights()]
    kl.set_weights(ws)
    ours = OURS[name](**kw)
    ours.set_weights(ws)
    assert ours.weight_paths() == [f"{ours.name}/{w.name}" for w in kl.weights]
    assert [w.shape for w in ours.weights] == [tuple(w.shape) for w in kl.weights]

    call_kw = dict(mask=mask, use_causal_mask=causal, return_attention_scores=ret)
    out = ours(xs, **call_kw)
    outs = list(out) if ret else [out]
    R = [rng.standard_normal(o.shape).astype(np.float32) for o in outs]
    for v in kl.trainable_weights:
        v.value.grad = None
    kmask = None if mask is None else [None if m is None else torch.tensor(m) for m in mask]
    ts = [torch.tensor(x, requires_grad=True) for x in xs]
    kout = kl(ts, mask=kmask, use_causal_mask=causal, return_attention_scores=ret)
    kouts = list(kout) if ret else [kout]
    sum((o * torch.tensor(r)).sum() for o, r in zip(kouts, R)).backward()
    what = f"{attention_id(layer)} {call}"
    for a, b in zip(outs, kouts):
        assert a.shape == tuple(b.shape)
        assert_close(a, b.detach().numpy(), "keras_f32", what)
    d_in = ours.backward(R if ret else R[0])
    assert len(d_in) == len(xs)
    for i, (d, t) in enumerate(zip(d_in, ts)):
        assert_close(d, t.grad.numpy(), "torch_grad_f32", f"{what} d_inputs[{i}]")
    assert len(ours.grads) == len(kl.trainable_weights)
    for g, v in zip(ours.grads, kl.trainable_weights):
        assert_close(g, v.value.grad.numpy(), "torch_grad_f32", f"{what} d{v.name}")
    # the output mask: the query mask
    m = ours.compute_mask(xs, mask)
    km = kl.compute_mask(ts, kmask)
    assert (m is None) == (km is None)
    if m is not None:
        np.testing.assert_array_equal(m, km.numpy())


@pytest.mark.parametrize("call", CALLS, ids=lambda c: f"key={c[0]}-mask={c[1]}-causal={c[2]}")
@pytest.mark.parametrize("layer", ATTENTION, ids=attention_id)
def test_attention_backward_finite_differences(layer, call, rng):
    name, kw = layer
    with_key, which, causal, ret = call
    with _float64_for_tests():
        xs, mask = attention_inputs(rng, with_key, which, dim_v=2 if with_key else 3,
                                    empty_row=False)
        xs = [x.astype(np.float64) for x in xs]
        ours = OURS[name](**kw)
        ours.build([x.shape for x in xs])
        ours.set_weights([w + rng.uniform(-0.5, 0.5, w.shape) for w in ours.get_weights()])
        check_gradients(ours, xs, dict(mask=mask, use_causal_mask=causal,
                                       return_attention_scores=ret), rng=rng)


def test_attention_masks_and_causal_mask_semantics(rng):
    """Keras' constants and rules: masked scores get -1e9 (not -inf), the
    query mask zeroes the output rows, the causal mask is j <= i."""
    assert MASK_BIAS == 1e9
    q = rng.standard_normal((1, 3, 2)).astype(np.float32)
    v = rng.standard_normal((1, 3, 2)).astype(np.float32)
    layer = Attention()
    out, w = layer([q, v], use_causal_mask=True, return_attention_scores=True)
    np.testing.assert_array_equal(np.triu(w[0], 1), 0)
    assert_close(out, w @ v, "exact_f64", "out = weights @ value")
    # every value masked: softmax of (scores - 1e9) is Keras' (finite) result
    out, w = layer([q, v], mask=[np.array([[1, 0, 1]], bool), np.zeros((1, 3), bool)],
                   return_attention_scores=True)
    assert np.isfinite(w).all() and np.allclose(w.sum(-1), 1)
    np.testing.assert_array_equal(out[0, 1], 0)


def test_attention_dropout_is_seeded_and_differentiated(rng):
    q = rng.standard_normal((2, 4, 3)).astype(np.float32)
    v = rng.standard_normal((2, 6, 3)).astype(np.float32)

    def run(seed, training):
        layer = Attention(dropout=0.5, seed=seed)
        return layer([q, v], training=training, return_attention_scores=True)

    (o1, w1), (_, w2), (_, w3) = run(3, True), run(3, True), run(4, True)
    np.testing.assert_array_equal(w1, w2)
    assert not np.array_equal(w1, w3)
    _, w_eval = run(3, None)
    # the returned scores are the weights after dropout (Keras): 0 or weight / keep
    kept = w1 != 0
    assert 0.2 < kept.mean() < 0.8
    assert_close(w1[kept], w_eval[kept] / 0.5, "exact_f64", "kept weights")
    assert_close(o1, w1 @ v, "reference_f32", "output of the dropped weights")

    class Replayed(Attention):
        """The same draws at every call, so central differences see one function."""

        def forward(self, *args, **kw):
            self._rng = np.random.default_rng(7)
            return super().forward(*args, **kw)

    with _float64_for_tests():
        check_gradients(Replayed(dropout=0.4, use_scale=True, score_mode="concat"),
                        [q.astype(np.float64), v.astype(np.float64)],
                        dict(return_attention_scores=True), rng=rng, training=True)


def test_attention_weights_and_config_match_keras(keras_config_without_tf):
    keras = keras_or_skip()
    for name, kw in ATTENTION + [("Attention", dict(dropout=0.25, seed=5))]:
        kl = getattr(keras.layers, name)(name="att", **kw)
        ours = OURS[name](name="att", **kw)
        assert ours.get_config() == kl.get_config()
        again = OURS[name].from_config(ours.get_config())
        assert again.get_config() == ours.get_config()
        kl.build([(None, 4, 3), (None, 5, 3)])
        ours.build([(None, 4, 3), (None, 5, 3)])
        assert ours.count_params() == kl.count_params()
        assert [w.shape for w in ours.weights] == [tuple(w.shape) for w in kl.weights]
    for cls in (C.Add, C.Subtract, C.Multiply, C.Average, C.Maximum, C.Minimum):
        assert cls(name="m").get_config() == getattr(keras.layers, cls.__name__)(
            name="m").get_config()
    for axes in (1, (1, 2), [-1, 2]):
        cfg = C.Dot(axes=axes, normalize=True, name="d").get_config()
        assert cfg == keras.layers.Dot(axes=axes, normalize=True, name="d").get_config()
        assert C.Dot.from_config(cfg).get_config() == cfg


def test_additive_attention_scale_initializer(rng):
    """Keras' glorot_uniform for a [dim] scale: U(-l, l), l = sqrt(6 / (2 dim))."""
    layer = AdditiveAttention()
    layer.build([(None, 4, 50), (None, 5, 50)])
    s = layer.scale
    assert s.shape == (50,) and np.abs(s).max() <= np.sqrt(6 / 100) and s.std() > 0.05
    assert AdditiveAttention(use_scale=False).weights == []
    # weights before build: built from their shapes
    fresh = AdditiveAttention()
    fresh.set_weights([np.arange(3, dtype=np.float32)])
    np.testing.assert_array_equal(fresh.scale, [0, 1, 2])
    att = Attention(use_scale=True, score_mode="concat")
    att.set_weights([np.float32(2), np.float32(3)])
    assert float(att.scale) == 2 and float(att.concat_score_weight) == 3


# ------------------------------------------------------------ functional model

def seq2seq(L, M, with_scores=False, causal=False, mask_zero=True):
    """keras-io's pattern: an LSTM encoder (sequences and states), an LSTM
    decoder from its states, attention of the decoder over the encoder,
    [decoder, context] concatenated, a softmax over the vocabulary."""
    enc_in = L.Input((6,), dtype="int32", name="encoder_tokens")
    dec_in = L.Input((5,), dtype="int32", name="decoder_tokens")
    enc = L.Embedding(12, 4, mask_zero=mask_zero)(enc_in)
    enc_seq, h, c = L.LSTM(8, return_sequences=True, return_state=True)(enc)
    dec = L.Embedding(12, 4, mask_zero=mask_zero)(dec_in)
    dec_seq = L.LSTM(8, return_sequences=True)(dec, initial_state=[h, c])
    att = L.Attention(use_scale=True)
    if with_scores:
        context, scores = att([dec_seq, enc_seq], return_attention_scores=True,
                              use_causal_mask=causal)
    else:
        context = att([dec_seq, enc_seq], use_causal_mask=causal)
    merged = L.Concatenate()([dec_seq, context])
    out = L.Dense(12, activation="softmax")(merged)
    return M.Model([enc_in, dec_in], [out, scores] if with_scores else out)


def seq2seq_data(rng, n=48):
    enc = rng.integers(1, 12, (n, 6))
    dec = rng.integers(1, 12, (n, 5))
    for i in range(0, n, 3):
        enc[i, rng.integers(2, 6):] = 0   # padded tails: masked
        dec[i, rng.integers(2, 5):] = 0
    y = enc[:, :5].copy()  # copy the source: what attention is for
    return [enc, dec], y


def model_pair(keras, seed=0, **kw):
    rk.utils.clear_session()
    keras.utils.clear_session()
    ours = seq2seq(OUR_LAYERS, RM, **kw)
    theirs = seq2seq(keras.layers, keras.models, **kw)
    r = np.random.default_rng(seed)
    ws = [w + r.uniform(-0.1, 0.1, w.shape).astype(np.float32) for w in theirs.get_weights()]
    theirs.set_weights(ws)
    ours.set_weights(ws)
    return ours, theirs


def summary_of(model):
    lines = []
    model.summary(print_fn=lambda s, **_: lines.append(s))
    return "".join(lines)


@pytest.mark.parametrize("with_scores", [False, True], ids=["output", "with_scores"])
def test_attention_model_matches_keras(with_scores, rng, monkeypatch, keras_config_without_tf,
                                       tmp_path):
    keras = keras_or_skip()
    # Keras lists the NotEqual op that computes an Embedding's mask among the
    # layers of a functional model; rnnkern's summary does not (not this file's
    # layers): the summary is compared without mask_zero
    x, _ = seq2seq_data(rng, 8)
    ours, theirs = model_pair(keras, with_scores=with_scores, causal=with_scores,
                              mask_zero=False)
    for columns in ("200", "100"):
        monkeypatch.setenv("COLUMNS", columns)
        assert summary_of(ours) == summary_of(theirs)
    # Keras' model config builds the same model here (its masked twin's config
    # holds that NotEqual op too)
    again = RM.Model.from_config(theirs.get_config())
    again.set_weights(theirs.get_weights())
    for a, b in zip(flatten(again(x)), flatten(theirs(x))):
        assert_close(a, b.detach().numpy(), "keras_f32", "from Keras' config")
    # Keras' .weights.h5 layout: ours written, Keras reads it
    ours.set_weights([w * 1.5 for w in ours.get_weights()])
    ours.save_weights(str(tmp_path / "seq2seq.weights.h5"))
    theirs.load_weights(str(tmp_path / "seq2seq.weights.h5"))
    for a, b in zip(flatten(ours(x)), flatten(theirs(x))):
        assert_close(a, b.detach().numpy(), "keras_f32", "after Keras loads our file")
    ours, theirs = model_pair(keras, with_scores=with_scores, causal=with_scores)
    assert [w.shape for w in ours.weights] == [tuple(w.shape) for w in theirs.weights]
    got = ours(x)
    want = theirs(x)
    for a, b in zip(flatten(got), flatten(want)):
        assert_close(a, b.detach().numpy(), "keras_f32", "model outputs")


def test_attention_model_fit_matches_keras(rng):
    keras = keras_or_skip()
    ours, theirs = model_pair(keras)
    x, y = seq2seq_data(rng)
    for m in (ours, theirs):
        m.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    fit = dict(epochs=2, batch_size=16, shuffle=False, verbose=0)
    h_ours, h_theirs = ours.fit(x, y, **fit).history, theirs.fit(x, y, **fit).history
    assert list(h_ours) == list(h_theirs)
    for k in h_theirs:
        assert_close(h_ours[k], h_theirs[k], "training_f32", k)
    for a, b in zip(ours.get_weights(), theirs.get_weights()):
        assert_close(a, b, "training_f32", "weights after fit")


def test_attention_model_learns_without_keras(rng):
    rk.utils.clear_session()
    model = seq2seq(OUR_LAYERS, RM)
    x, y = seq2seq_data(np.random.default_rng(0))
    model.compile(optimizer=rk.optimizers.Adam(0.05), loss="sparse_categorical_crossentropy")
    hist = model.fit(x, y, epochs=20, batch_size=16, shuffle=False, verbose=0).history["loss"]
    assert hist[-1] < 0.6 * hist[0]
    again = RM.Model.from_config(model.get_config())
    again.set_weights(model.get_weights())
    np.testing.assert_array_equal(again.predict(x, verbose=0), model.predict(x, verbose=0))


def test_attention_model_backward_finite_differences(rng):
    """The model's backward through attention with both outputs, masks from the
    inputs, a causal mask and a key (float64, the reference LSTMs)."""
    with _float64_for_tests():
        rk.utils.clear_session()
        q_in, v_in = RL.Input((4, 3)), RL.Input((5, 3))
        enc = RL.LSTM(3, return_sequences=True)(v_in)
        dec = RL.LSTM(3, return_sequences=True)(q_in)
        out, scores = AdditiveAttention()([dec, enc, v_in], return_attention_scores=True,
                                          use_causal_mask=True)
        model = RM.Model([q_in, v_in], [C.Multiply()([out, dec]), scores])
        set_reference(model)
        check_gradients(model, [rng.standard_normal((2, 4, 3)),
                                rng.standard_normal((2, 5, 3))], rng=rng)


def test_attention_model_with_explicit_mask_inputs(rng):
    """mask=[query_mask, value_mask] as symbolic model inputs, two outputs."""
    rk.utils.clear_session()
    q_in, v_in = RL.Input((4, 3)), RL.Input((5, 3))
    qm_in, vm_in = RL.Input((4,), dtype="bool"), RL.Input((5,), dtype="bool")
    att = Attention(use_scale=True, score_mode="concat")
    out, scores = att([q_in, v_in], mask=[qm_in, vm_in], return_attention_scores=True)
    assert (out.shape, scores.shape) == ((None, 4, 3), (None, 4, 5))
    model = RM.Model([q_in, v_in, qm_in, vm_in], [out, scores])
    xs, (qm, vm) = attention_inputs(rng, False, "both")
    got = model(xs + [qm, vm])
    want = att(xs, mask=[qm, vm], return_attention_scores=True)
    for a, b in zip(got, want):
        np.testing.assert_array_equal(a, b)
    R = [rng.standard_normal(a.shape).astype(np.float32) for a in got]
    d_model = model.backward(R)
    d_layer = att.backward(R)
    for a, b in zip(d_model[:2], d_layer):
        assert_close(a, b, "exact_f64", "d_inputs")
    assert d_model[2] is None and d_model[3] is None  # boolean inputs


# -------------------------------------------------------------- bad arguments

def test_bad_arguments():
    q, v = np.zeros((2, 4, 3), np.float32), np.zeros((2, 5, 3), np.float32)
    with pytest.raises(ValueError, match="score_mode"):
        Attention(score_mode="add")
    with pytest.raises(ValueError, match="dropout"):
        Attention(dropout=1.5)
    with pytest.raises(TypeError, match="use_scale"):
        AdditiveAttention(use_scale="yes")
    with pytest.raises(TypeError, match="seed"):
        Attention(seed="x")
    with pytest.raises(ValueError, match="must be called on a list of inputs"):
        Attention()(q)
    with pytest.raises(ValueError, match="inputs list of length 2 or 3"):
        Attention()([q])
    with pytest.raises(ValueError, match="mask must be a list"):
        Attention()([q, v], mask=np.ones((2, 5), bool))
    with pytest.raises(ValueError, match="mask list of length 2 or 3"):
        Attention()([q, v], mask=[None])
    with pytest.raises(ValueError, match="value_mask must have shape"):
        Attention()([q, v], mask=[None, np.ones((2, 4), bool)])
    with pytest.raises(ValueError, match="same last dimension"):
        Attention()([q, v, np.zeros((2, 5, 2), np.float32)])
    with pytest.raises(ValueError, match="number of steps"):
        Attention()([q, v, np.zeros((2, 4, 3), np.float32)])
    with pytest.raises(ValueError, match="shape \\(batch_size, T, dim\\)"):
        Attention()([q[0], v[0]])
    with pytest.raises(TypeError, match="return_attention_scores"):
        Attention()([q, v], return_attention_scores="yes")
    with pytest.raises(TypeError, match="d_scores"):
        layer = Attention()
        layer([q, v], return_attention_scores=True)
        layer.backward(np.zeros((2, 4, 3), np.float32))
    built = AdditiveAttention()
    built([q, v])
    with pytest.raises(ValueError, match="built for a query dim of 3"):
        built([np.zeros((2, 4, 2), np.float32), np.zeros((2, 5, 2), np.float32)])
    with pytest.raises(ValueError, match="cannot be fed to layer"):
        Attention()([RL.Input((4, 3)), RL.Input((5, 2)), RL.Input((6, 3))])

    with pytest.raises(ValueError, match="exactly 2 inputs"):
        C.Subtract()([q, q, q])
    with pytest.raises(ValueError, match="incompatible shapes"):
        C.Add()([q, v])
    with pytest.raises(ValueError, match="different batch sizes"):
        C.Maximum()([q, np.zeros((3, 4, 3), np.float32)])
    with pytest.raises(ValueError, match="list of inputs"):
        C.Multiply()(q)
    with pytest.raises(ValueError, match="mask\\[1\\] of shape"):
        C.Multiply()([q, q], mask=[None, np.ones((2, 3), bool)])
    with pytest.raises(TypeError, match="axes"):
        C.Dot(axes="last")
    with pytest.raises(ValueError, match="two elements"):
        C.Dot(axes=(1, 2, 3))
    with pytest.raises(ValueError, match="integers"):
        C.Dot(axes=(1, 2.0))
    with pytest.raises(ValueError, match="axis 0"):
        C.Dot(axes=0)([q, q])
    with pytest.raises(ValueError, match="Incompatible input shapes"):
        C.Dot(axes=1)([q, v])
    with pytest.raises(ValueError, match="list of 2 inputs"):
        C.Dot(axes=1)([q, q, q])
    with pytest.raises(TypeError, match="normalize"):
        C.Dot(axes=1, normalize=1)
