"""rnnkern.utils.model_visualization: plot_model / model_to_dot as Keras 3's.

The DOT graph (each box's HTML label, the edges between boxes, the clusters of
nested models, the graph's attributes) is compared with Keras' model_to_dot of
the same model where Keras and pydot are installed; its structure is checked
on its own where only pydot is; a PNG/SVG is rendered where Graphviz's `dot`
is. The ImportError saying what to install is checked everywhere (pydot and
dot made absent)."""
import inspect
import os
import shutil
import sys
import types

import pytest

import rnnkern as rk
from rnnkern.layers import LSTM, Dense
from rnnkern.utils import model_visualization as mv

os.environ.setdefault("KERAS_BACKEND", "torch")


def encoder_decoder(lib):
    """Input -> LSTM(return_state) -> decoder LSTM(initial_state) -> Dense."""
    L = lib.layers
    e, d = L.Input((None, 5), name="enc"), L.Input((None, 6), name="dec")
    _, h, c = L.LSTM(8, return_state=True, name="encoder")(e)
    y = L.LSTM(8, return_sequences=True, name="decoder")(d, initial_state=[h, c])
    return lib.Model([e, d], L.Dense(5, activation="softmax", name="out")(y), name="seq2seq")


def sequential(lib):
    L = lib.layers
    return lib.Sequential([L.Input((7, 3)), L.GRU(4, return_sequences=True, name="g"),
                           L.Dropout(0.1, name="dr"), L.Dense(2, name="d")], name="s")


def nested(lib):
    """A Sequential and a functional model inside a functional model."""
    L = lib.layers
    inner = lib.Sequential([L.Input((7, 3)), L.LSTM(4, return_sequences=True, name="il"),
                            L.Dense(3, name="id")], name="inner_seq")
    fi = L.Input((7, 3), name="fin")
    func = lib.Model(fi, L.Dense(3, name="fd")(L.LSTM(2, return_sequences=True, name="fl")(fi)),
                     name="inner_func")
    x = L.Input((7, 3), name="x")
    return lib.Model(x, L.Dense(1, name="head")(func(inner(x))), name="outer")


def nested_sequential(lib):
    L = lib.layers
    inner = lib.Sequential([L.Input((5, 2)), L.SimpleRNN(3, return_sequences=True, name="r"),
                            L.Dense(2, name="rd")], name="inner")
    return lib.Sequential([L.Input((5, 2)), inner, L.LSTM(2, name="top")], name="outer_seq")


def shared(lib):
    """A layer used three times, once in another model (that node is not drawn)."""
    L = lib.layers
    x1, x2 = L.Input((4,), name="x1"), L.Input((4,), name="x2")
    d = L.Dense(4, name="shared")
    model = lib.Model([x1, x2], [L.Dense(1, name="o")(d(d(x1))), d(x2)], name="sh")
    other = L.Input((4,), name="other")
    lib.Model(other, d(other))
    return model


def wrappers(lib):
    L = lib.layers
    x = L.Input((7, 3), name="x")
    y = L.Bidirectional(L.LSTM(4, return_sequences=True, name="bl"), name="bi")(x)
    return lib.Model(x, L.TimeDistributed(L.Dense(2, name="tdd"), name="td")(y), name="w")


MODELS = {f.__name__: f for f in (encoder_decoder, sequential, nested, nested_sequential, shared,
                                  wrappers)}
OPTIONS = [{}, {"show_shapes": True},
           {"show_shapes": True, "show_dtype": True, "show_layer_activations": True,
            "show_trainable": True},
           {"show_layer_names": False}, {"expand_nested": True, "show_shapes": True},
           {"rankdir": "LR", "dpi": 96, "splines": "curved"}]


def graph_of(dot):
    """{cluster path: (sorted labels, sorted edges as (label, label, penwidth),
    attributes)}: a DOT graph with its node ids replaced by their labels."""
    out, labels = {}, {}

    def walk(g, path):
        nodes = {n.get_name(): n.get("label") for n in g.get_nodes()
                 if n.get_name() not in ("node", "edge", "graph")}
        labels.update(nodes)
        for sg in g.get_subgraphs():
            walk(sg, path + ((sg.get_name(), sg.get("label")),))
        out[path] = [sorted(nodes.values()), g.get_edges(), dict(g.get_attributes())]

    walk(dot, ())
    for v in out.values():
        v[1] = sorted((labels[e.get_source()], labels[e.get_destination()], e.get("penwidth"))
                      for e in v[1])
    return out


def title(label):
    """The bold title of a box's label (its name, or class without names)."""
    return label.split("<b>")[1].split("</b>")[0]


# ------------------------------------------------------------- everywhere

def built_model():
    rk.utils.clear_session()
    return sequential(rk)


def test_missing_pydot_says_what_to_install(monkeypatch, capsys):
    for name in ("pydot", "pydot_ng", "pydotplus"):
        monkeypatch.setitem(sys.modules, name, None)   # import fails
    model = built_model()
    with pytest.raises(ImportError, match=r"pip install pydot.*rnnkern\[plot\].*Graphviz"):
        mv.model_to_dot(model)
    with pytest.raises(ImportError, match=r"plot_model needs pydot: pip install pydot"):
        mv.plot_model(model, "never.png")
    assert not os.path.exists("never.png")
    assert not mv.check_pydot() and not mv.check_graphviz()
    # in a notebook the message is printed instead (Keras' habit)
    monkeypatch.setattr(mv, "_in_ipython", lambda: True)
    assert mv.plot_model(model, "never.png") is None
    assert "pip install pydot" in capsys.readouterr().out


def test_missing_dot_says_what_to_install(monkeypatch, tmp_path):
    class Dot:  # a pydot whose `dot` cannot be run
        def create(self, *a, **k):
            raise FileNotFoundError('"dot" not found in path.')

    fake = types.SimpleNamespace(Dot=Dot, PydotException=RuntimeError)
    monkeypatch.setitem(sys.modules, "pydot", fake)
    assert mv.check_pydot() and not mv.check_graphviz()
    with pytest.raises(ImportError, match=r"Graphviz's `dot` program.*apt-get install graphviz"
                                          r".*pip install graphviz does not install it"):
        mv.plot_model(built_model(), str(tmp_path / "m.png"))
    assert list(tmp_path.iterdir()) == []


def test_unbuilt_model_and_bad_arguments(monkeypatch):
    rk.utils.clear_session()
    with pytest.raises(ValueError, match="has not yet been built"):
        mv.model_to_dot(rk.Sequential([Dense(2)]))
    with pytest.raises(ValueError, match="has not yet been built"):
        mv.plot_model(rk.Sequential([LSTM(2)]))
    pytest.importorskip("pydot")
    model = built_model()
    with pytest.raises(ValueError, match="layer_range.*no longer supported"):
        mv.model_to_dot(model, layer_range=["a", "b"])
    with pytest.raises(ValueError, match="Unrecognized keyword arguments"):
        mv.model_to_dot(model, show_names=True)
    with pytest.raises(ValueError, match="rankdir"):
        mv.model_to_dot(model, rankdir="XY")


# ---------------------------------------------------------------- pydot

def test_encoder_decoder_graph():
    pydot = pytest.importorskip("pydot")
    rk.utils.clear_session()
    model = encoder_decoder(rk)
    dot = mv.model_to_dot(model, show_shapes=True, show_dtype=True)
    assert isinstance(dot, pydot.Dot)
    g = graph_of(dot)[()]
    assert sorted(title(label) for label in g[0]) == ["dec", "decoder", "enc", "encoder", "out"]
    assert sorted((title(a), title(b)) for a, b, _ in g[1]) == [
        ("dec", "decoder"), ("decoder", "out"), ("enc", "encoder"), ("encoder", "decoder")]
    decoder = next(label for label in g[0] if title(label) == "decoder")
    assert "Input shape: <b>[(None, None, 6), (None, 8), (None, 8)]</b>" in decoder
    assert "Output shape: <b>(None, None, 8)</b>" in decoder
    encoder = next(label for label in g[0] if title(label) == "encoder")
    assert "Output shape: <b>[(None, 8), (None, 8), (None, 8)]</b>" in encoder
    assert "Output dtype: <b>float32</b>" in decoder
    assert g[2] == {"rankdir": "TB", "concentrate": True, "dpi": 200, "splines": "ortho"}
    text = dot.to_string()
    assert mv.model_to_dot(model, show_shapes=True, show_dtype=True).to_string() == text
    # plot_model's default hides the names (Keras 3): its boxes show the classes
    assert inspect.signature(mv.plot_model).parameters["show_layer_names"].default is False
    assert inspect.signature(mv.model_to_dot).parameters["show_layer_names"].default is True
    unnamed = graph_of(mv.model_to_dot(model, show_layer_names=False))[()]
    assert sorted(title(label) for label in unnamed[0]) == ["Dense", "InputLayer", "InputLayer",
                                                            "LSTM", "LSTM"]


def test_nested_and_wrappers_expand_into_clusters():
    pytest.importorskip("pydot")
    rk.utils.clear_session()
    g = graph_of(mv.model_to_dot(nested(rk), expand_nested=True))
    clusters = {path[-1][0]: v for path, v in g.items() if path}
    assert set(clusters) == {"cluster_inner_seq", "cluster_inner_func"}
    assert [title(label) for label in clusters["cluster_inner_seq"][0]] == ["id", "il"]
    assert [(title(a), title(b)) for a, b, _ in clusters["cluster_inner_seq"][1]] == \
        [("il", "id")]
    top = sorted((title(a), title(b)) for a, b, _ in g[()][1])
    # into the Sequential's first layer, out of its last, into the functional's Input
    assert top == [("fd", "head"), ("id", "fin"), ("x", "il")]
    flat = graph_of(mv.model_to_dot(nested(rk)))
    assert list(flat) == [()]
    w = graph_of(mv.model_to_dot(wrappers(rk), expand_nested=True, show_shapes=True))
    labels = {path[-1][1]: v for path, v in w.items() if path}
    assert set(labels) == {"bi (Bidirectional)", "td (TimeDistributed)"}
    assert sorted(title(label) for label in labels["bi (Bidirectional)"][0]) == \
        ["backward_bl", "forward_bl"]
    assert sorted((title(a), title(b)) for a, b, _ in w[()][1]) == [
        ("backward_bl", "tdd"), ("forward_bl", "tdd"), ("x", "backward_bl"), ("x", "forward_bl")]
    tdd = labels["td (TimeDistributed)"][0][0]
    assert "Input shape: <b>(None, 8)</b>" in tdd   # the shapes it was built for
    # not expanded (Keras 3's drawing): one box a wrapper
    g = graph_of(mv.model_to_dot(wrappers(rk), show_shapes=True, show_layer_activations=True))
    assert list(g) == [()]
    assert sorted((title(a), title(b)) for a, b, _ in g[()][1]) == [("bi", "td"), ("x", "bi")]
    bi = next(label for label in g[()][0] if title(label) == "bi")
    assert bi.startswith('<<table border="0" cellborder="1" bgcolor="black" cellpadding="10">'
                         '<tr><td colspan="2" bgcolor="black"><font point-size="16" '
                         'color="white"><b>bi</b> (Bidirectional)</font></td></tr><tr>')
    assert "Activation" not in bi and "Output shape: <b>(None, 7, 8)</b>" in bi


def test_shared_layer_edges_of_this_model_only():
    pytest.importorskip("pydot")
    rk.utils.clear_session()
    g = graph_of(mv.model_to_dot(shared(rk)))[()]
    assert sorted((title(a), title(b)) for a, b, _ in g[1]) == [
        ("shared", "o"), ("shared", "shared"), ("x1", "shared"), ("x2", "shared")]
    assert "other" not in {title(label) for label in g[0]}


# (Keras' Bidirectional imports TensorFlow: seconds; the wrappers are checked above)
@pytest.mark.parametrize("name", sorted(set(MODELS) - {"wrappers"}))
def test_same_graph_as_keras(name):
    pytest.importorskip("pydot")
    from helpers import keras_or_skip
    keras = keras_or_skip()
    from keras.src.utils.model_visualization import model_to_dot as keras_to_dot
    keras.utils.clear_session()
    rk.utils.clear_session()
    theirs, ours = MODELS[name](keras), MODELS[name](rk)
    for opts in OPTIONS:
        assert graph_of(mv.model_to_dot(ours, **opts)) == graph_of(keras_to_dot(theirs, **opts)), \
            opts


# ------------------------------------------------------------ Graphviz

def test_plot_model_renders(tmp_path):
    pytest.importorskip("pydot")
    if shutil.which("dot") is None or not mv.check_graphviz():
        pytest.skip("Graphviz's dot is not installed")
    rk.utils.clear_session()
    model = encoder_decoder(rk)
    png = tmp_path / "model.png"
    shown = mv.plot_model(model, png, show_shapes=True, dpi=60)
    assert shown is None or type(shown).__name__ == "Image"   # IPython's, where installed
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    svg = tmp_path / "model.svg"
    mv.plot_model(model, str(svg), show_layer_names=True, rankdir="LR")
    text = svg.read_text()
    assert "<svg" in text and all(n in text for n in ("encoder", "decoder", "out"))
    noext = tmp_path / "plain"
    mv.plot_model(model, str(noext))
    assert noext.read_bytes()[:4] == b"\x89PNG"
    mv.plot_model(model, str(tmp_path / "m.pdf"))
    assert (tmp_path / "m.pdf").read_bytes()[:4] == b"%PDF"
    with pytest.raises(ValueError, match="Graphviz writes no 'docx' files"):
        mv.plot_model(model, str(tmp_path / "m.docx"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.pdf", "model.png", "model.svg",
                                                          "plain"]
