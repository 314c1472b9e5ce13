"""rnnkern.torch against torch.nn: every constructor option, batched and
unbatched input, initial states, PackedSequence (sorted and not), outputs, final
states and the gradients of input, states and parameters; gradcheck in float64
on the reference; the state_dict round trip; the weight conversion cache; the
workspace lifetime; torch.compile(fullgraph=True)."""
import gc

import pytest

torch = pytest.importorskip("torch")
rt = pytest.importorskip("rnnkern.torch")

from rnnkern import backends as bk  # noqa: E402
from helpers import torch_rnn_inputs  # noqa: E402
from tolerances import TOL, assert_close  # noqa: E402

from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence  # noqa: E402

KINDS = [("RNN", {"nonlinearity": "tanh"}), ("RNN", {"nonlinearity": "relu"}),
         ("LSTM", {}), ("GRU", {})]
KIND_IDS = ["rnn_tanh", "rnn_relu", "lstm", "gru"]
CPU_BACKENDS = bk.cpu_backends() or ["reference"]


def pair(kind, extra, C=5, H=7, **kw):
    """(torch.nn module, rnnkern.torch module) with the same weights."""
    torch.manual_seed(0)
    ref = getattr(torch.nn, kind)(C, H, **extra, **kw)
    mine = getattr(rt, kind)(C, H, **extra, **kw)
    mine.load_state_dict(ref.state_dict())
    return ref, mine


def clone_req(t):
    return None if t is None else t.detach().clone().requires_grad_(True)


def run(mod, x, hx, lstm):
    """Forward, then a backward of a fixed random weighting of every output."""
    out, state = mod(x, hx)
    hn, cn = state if lstm else (state, None)
    data = out.data if isinstance(out, torch.nn.utils.rnn.PackedSequence) else out
    g = torch.Generator().manual_seed(1)
    loss = (data * torch.randn(data.shape, generator=g, dtype=data.dtype)).sum() \
        + (hn * torch.randn(hn.shape, generator=g, dtype=hn.dtype)).sum()
    if cn is not None:
        loss = loss + (cn * torch.randn(cn.shape, generator=g, dtype=cn.dtype)).sum()
    loss.backward()
    return data, hn, cn


def compare(ref, mine, x, hx, lstm, what):
    xs = [clone_req(x) for _ in range(2)]
    if hx is None:
        hxs = [None, None]
    elif lstm:
        hxs = [tuple(clone_req(t) for t in hx) for _ in range(2)]
    else:
        hxs = [clone_req(hx) for _ in range(2)]
    r = run(ref, xs[0], hxs[0], lstm)
    m = run(mine, xs[1], hxs[1], lstm)
    for name, a, b in zip(("output", "h_n", "c_n"), m, r):
        if b is not None:
            assert_close(a.detach().numpy(), b.detach().numpy(), "torch_f32", f"{what} {name}")
    assert_close(xs[1].grad.numpy(), xs[0].grad.numpy(), "torch_grad_f32", f"{what} d input")
    if hx is not None:
        flat = (lambda h: list(h)) if lstm else (lambda h: [h])
        for a, b in zip(flat(hxs[1]), flat(hxs[0])):
            assert_close(a.grad.numpy(), b.grad.numpy(), "torch_grad_f32", f"{what} d hx")
    for (name, p), q in zip(ref.named_parameters(), mine.parameters()):
        assert_close(q.grad.numpy(), p.grad.numpy(), "torch_grad_f32", f"{what} d {name}")


@pytest.mark.parametrize("kind,extra", KINDS, ids=KIND_IDS)
@pytest.mark.parametrize("num_layers,bidirectional,bias,batch_first,with_state",
                         [(1, False, True, True, False), (1, False, False, False, True),
                          (2, True, True, False, True), (3, False, True, True, True),
                          (2, True, False, True, False)])
def test_parity_with_torch_nn(kind, extra, num_layers, bidirectional, bias, batch_first,
                              with_state):
    lstm = kind == "LSTM"
    ref, mine = pair(kind, extra, num_layers=num_layers, bidirectional=bidirectional,
                     bias=bias, batch_first=batch_first)
    x, hx = torch_rnn_inputs(torch, num_layers, bidirectional, batch_first, with_state, lstm)
    compare(ref, mine, x, hx, lstm, f"{kind} L={num_layers} bi={bidirectional}")


@pytest.mark.parametrize("kind,extra", KINDS, ids=KIND_IDS)
@pytest.mark.parametrize("with_state", [False, True])
def test_unbatched_input(kind, extra, with_state):
    lstm = kind == "LSTM"
    ref, mine = pair(kind, extra, num_layers=2, bidirectional=True)
    g = torch.Generator().manual_seed(3)
    x = torch.randn(6, 5, generator=g)
    hx = None
    if with_state:
        h0 = torch.randn(4, 7, generator=g)
        hx = (h0, torch.randn(4, 7, generator=g)) if lstm else h0
    compare(ref, mine, x, hx, lstm, f"{kind} unbatched")
    out, _ = mine(x, hx)
    assert out.shape == (6, 14)


@pytest.mark.parametrize("kind,extra", KINDS, ids=KIND_IDS)
@pytest.mark.parametrize("enforce_sorted", [True, False])
@pytest.mark.parametrize("bidirectional,num_layers", [(False, 1), (True, 2)])
def test_packed_sequence(kind, extra, enforce_sorted, bidirectional, num_layers):
    lstm = kind == "LSTM"
    ref, mine = pair(kind, extra, num_layers=num_layers, bidirectional=bidirectional,
                     batch_first=True)
    lengths = [7, 7, 5, 2, 1] if enforce_sorted else [2, 7, 1, 5, 7]
    g = torch.Generator().manual_seed(4)
    x = torch.randn(len(lengths), 7, 5, generator=g)
    d = 2 if bidirectional else 1
    h0 = torch.randn(num_layers * d, len(lengths), 7, generator=g)
    hx = (h0, torch.randn_like(h0)) if lstm else h0
    xs, hxs, outs = [], [], []
    for mod in (ref, mine):
        xi = x.clone().requires_grad_(True)
        hxi = tuple(clone_req(t) for t in hx) if lstm else clone_req(hx)
        packed = pack_padded_sequence(xi, torch.tensor(lengths), batch_first=True,
                                      enforce_sorted=enforce_sorted)
        out, state = mod(packed, hxi)
        assert isinstance(out, torch.nn.utils.rnn.PackedSequence)
        padded, lens = pad_packed_sequence(out, batch_first=True)
        assert lens.tolist() == lengths
        hn, cn = state if lstm else (state, None)
        w = torch.randn(padded.shape, generator=torch.Generator().manual_seed(5))
        loss = (padded * w).sum() + hn.square().sum() + (0 if cn is None else cn.sum())
        loss.backward()
        xs.append(xi)
        hxs.append(hxi)
        outs.append((out, padded, hn, cn))
    (ro, rp, rh, rc), (mo, mp, mh, mc) = outs
    assert torch.equal(ro.batch_sizes, mo.batch_sizes)
    for a, b in ((ro.sorted_indices, mo.sorted_indices),
                 (ro.unsorted_indices, mo.unsorted_indices)):
        assert (a is None and b is None) or torch.equal(a, b)
    assert_close(mp.detach().numpy(), rp.detach().numpy(), "torch_f32", "packed output")
    assert_close(mh.detach().numpy(), rh.detach().numpy(), "torch_f32", "packed h_n")
    if lstm:
        assert_close(mc.detach().numpy(), rc.detach().numpy(), "torch_f32", "packed c_n")
    assert_close(xs[1].grad.numpy(), xs[0].grad.numpy(), "torch_grad_f32", "packed d x")
    for a, b in zip(hxs[1] if lstm else [hxs[1]], hxs[0] if lstm else [hxs[0]]):
        assert_close(a.grad.numpy(), b.grad.numpy(), "torch_grad_f32", "packed d hx")
    for (name, p), q in zip(ref.named_parameters(), mine.parameters()):
        assert_close(q.grad.numpy(), p.grad.numpy(), "torch_grad_f32", f"packed d {name}")


@pytest.mark.parametrize("backend", CPU_BACKENDS)
@pytest.mark.parametrize("kind,extra", KINDS, ids=KIND_IDS)
def test_every_cpu_backend(kind, extra, backend):
    ref, _ = pair(kind, extra, num_layers=1, batch_first=True)
    mine = getattr(rt, kind)(5, 7, batch_first=True, backend=backend, **extra)
    mine.load_state_dict(ref.state_dict())
    x = torch.randn(4, 9, 5, generator=torch.Generator().manual_seed(6))
    compare(ref, mine, x, None, kind == "LSTM", f"{kind} on {backend}")


def test_dropout_between_layers():
    """Dropout applies to every layer's output but the last, in training only."""
    torch.manual_seed(0)
    m = rt.LSTM(5, 7, num_layers=2, dropout=0.5, batch_first=True)
    x = torch.randn(3, 6, 5)
    torch.manual_seed(1)
    a = m(x)[0]
    torch.manual_seed(1)
    b = m(x)[0]
    torch.manual_seed(2)
    c = m(x)[0]
    assert torch.equal(a, b) and not torch.allclose(a, c)
    m.eval()
    e1, e2 = m(x)[0], m(x)[0]
    assert torch.equal(e1, e2)
    ref = torch.nn.LSTM(5, 7, num_layers=2, dropout=0.5, batch_first=True).eval()
    ref.load_state_dict(m.state_dict())
    assert_close(e1.detach().numpy(), ref(x)[0].detach().numpy(), "torch_f32", "eval dropout")


@pytest.mark.parametrize("kind,extra", KINDS, ids=KIND_IDS)
def test_gradcheck_float64_reference(kind, extra):
    """torch.autograd.gradcheck of input, initial state and every parameter, float64
    (which rnnkern.torch runs on the float64 reference), two bidirectional layers."""
    torch.manual_seed(0)
    m = getattr(rt, kind)(3, 4, num_layers=2, bidirectional=True, dtype=torch.float64,
                          **extra)
    names = [n for n, _ in m.named_parameters()]
    lstm = kind == "LSTM"
    x = torch.randn(2, 5, 3, dtype=torch.float64, requires_grad=True)
    h0 = torch.randn(4, 5, 4, dtype=torch.float64, requires_grad=True)

    def f(x, h0, *ps):
        hx = (h0, h0 * 0.5) if lstm else h0
        out, state = torch.func.functional_call(m, dict(zip(names, ps)), (x, hx))
        return (out, *state) if lstm else (out, state)
    ps = tuple(p.detach().clone().requires_grad_(True) for p in m.parameters())
    assert torch.autograd.gradcheck(f, (x, h0, *ps), eps=1e-6, **TOL["gradcheck_f64"])


def test_state_dict_round_trip():
    torch.manual_seed(0)
    mine = rt.GRU(5, 7, num_layers=2, bidirectional=True)
    ref = torch.nn.GRU(5, 7, num_layers=2, bidirectional=True)
    assert list(mine.state_dict()) == list(ref.state_dict())
    for (a, p), (b, q) in zip(mine.state_dict().items(), ref.state_dict().items()):
        assert a == b and p.shape == q.shape
    ref.load_state_dict(mine.state_dict())
    x = torch.randn(6, 3, 5)
    assert_close(mine(x)[0].detach().numpy(), ref(x)[0].detach().numpy(), "torch_f32",
                 "round trip")
    assert repr(mine).replace("rnnkern", "") == repr(ref).replace("rnnkern", "")


def test_conversion_once_per_weight_change():
    torch.manual_seed(0)
    m = rt.LSTM(5, 7, batch_first=True)
    opt = torch.optim.SGD(m.parameters(), lr=0.1)
    x = torch.randn(2, 4, 5)
    m(x)
    n0 = rt._weights.KerasWeights.conversions
    for _ in range(3):
        m(x)
    assert rt._weights.KerasWeights.conversions == n0       # cached while unchanged
    m(x)[0].sum().backward()
    opt.step()                                               # in place: versions bump
    y = m(x)[0]
    assert rt._weights.KerasWeights.conversions == n0 + 1
    ref = torch.nn.LSTM(5, 7, batch_first=True)
    ref.load_state_dict(m.state_dict())
    assert_close(y.detach().numpy(), ref(x)[0].detach().numpy(), "torch_f32",
                 "after an optimizer step")
    with torch.no_grad():
        m.weight_hh_l0.mul_(0.5)
    y = m(x)[0]
    ref.load_state_dict(m.state_dict())
    assert_close(y.detach().numpy(), ref(x)[0].detach().numpy(), "torch_f32",
                 "after an in-place change")
    m.weight_ih_l0.data.add_(0.25)       # .data: no version bump, caught by the bit check
    y = m(x)[0]
    ref.load_state_dict(m.state_dict())
    assert_close(y.detach().numpy(), ref(x)[0].detach().numpy(), "torch_f32",
                 "after a write through .data")
    m.weight_hh_l0.data = torch.randn(28, 7)   # new memory, same tensor object
    y = m(x)[0]
    ref.load_state_dict(m.state_dict())
    assert_close(y.detach().numpy(), ref(x)[0].detach().numpy(), "torch_f32",
                 "after .data = another tensor")


def test_workspace_freed_without_backward():
    m = rt.GRU(5, 7, batch_first=True)
    x = torch.randn(2, 4, 5)
    gc.collect()
    base = rt.live_workspaces()
    out = m(x)[0]                      # parameters require grad: a workspace is kept
    assert rt.live_workspaces() == base + 1
    del out
    gc.collect()
    assert rt.live_workspaces() == base
    with torch.no_grad():
        m(x)
    assert rt.live_workspaces() == base
    out = m(x)[0]
    out.sum().backward(retain_graph=True)
    g1 = m.weight_ih_l0.grad.clone()
    out.sum().backward()               # retain_graph: the workspace is still there
    assert torch.allclose(m.weight_ih_l0.grad, 2 * g1)
    del out
    gc.collect()
    assert rt.live_workspaces() == base
    # the traced path (the custom operator) keeps its workspace in a registry
    # named by a handle tensor: it goes with the graph too
    compiled = torch.compile(m, fullgraph=True, backend="aot_eager")
    out = compiled(x)[0]
    assert rt.live_workspaces() == base + 1
    del out
    gc.collect()
    assert rt.live_workspaces() == base


def test_double_backward_raises():
    """BPTT is not differentiable again: a second-order gradient is an error, never a
    silently wrong zero."""
    m = rt.GRU(5, 7, batch_first=True)
    x = torch.randn(2, 4, 5, requires_grad=True)
    with pytest.raises(RuntimeError, match="not differentiable again"):
        torch.autograd.grad(m(x)[0].sum(), x, create_graph=True)
    (gx,) = torch.autograd.grad(m(x)[0].sum(), x)    # first order as usual
    assert gx.shape == x.shape


def test_bad_input_messages():
    m = rt.LSTM(5, 7)
    with pytest.raises(RuntimeError, match="input_size. Expected 5, got 4"):
        m(torch.randn(3, 2, 4))
    with pytest.raises(ValueError, match="2D or 3D"):
        m(torch.randn(3))
    with pytest.raises(RuntimeError, match=r"Expected hidden size \(1, 2, 7\)"):
        m(torch.randn(3, 2, 5), (torch.zeros(1, 3, 7), torch.zeros(1, 2, 7)))
    with pytest.raises(ValueError, match="proj_size"):
        rt.LSTM(5, 7, proj_size=3)
    with pytest.raises(ValueError, match="nonlinearity"):
        rt.RNN(5, 7, nonlinearity="gelu")
    with pytest.raises(ValueError, match="input must have the type"):
        m(torch.randn(3, 2, 5, dtype=torch.float64))
    with pytest.raises(TypeError, match="float32 or float64"):
        rt.GRU(5, 7, dtype=torch.float16)(torch.randn(3, 2, 5, dtype=torch.float16))
    with pytest.raises(ValueError, match="backend must be one of"):
        rt.GRU(5, 7, backend="nope")


def test_custom_op_schema_and_fake():
    from torch.library import opcheck
    m = rt.GRU(5, 7, batch_first=True)
    x = torch.randn(2, 4, 5, requires_grad=True)
    h0 = torch.zeros(2, 7, requires_grad=True)
    args = (x, m.weight_ih_l0, m.weight_hh_l0, m.bias_ih_l0, m.bias_hh_l0, h0, None, None,
            "gru", "tanh", False, True, "auto")
    opcheck(torch.ops.rnnkern.rnn_forward.default, args,
            test_utils=("test_schema", "test_faketensor", "test_autograd_registration"))


@pytest.mark.parametrize("kind,extra", KINDS[1:], ids=KIND_IDS[1:])
def test_torch_compile_fullgraph(kind, extra):
    """A small model using rnnkern.torch compiles with fullgraph=True (no graph break),
    and its outputs and gradients equal eager torch.nn's."""
    lstm = kind == "LSTM"

    class Model(torch.nn.Module):
        def __init__(self, lib):
            super().__init__()
            self.rnn = getattr(lib, kind)(5, 7, num_layers=2, bidirectional=True,
                                          batch_first=True, **extra)
            self.head = torch.nn.Linear(14, 3)

        def forward(self, x):
            out, state = self.rnn(x)
            h = state[0] if lstm else state
            return self.head(out[:, -1]) + h.sum(0).sum(-1, keepdim=True)

    torch.manual_seed(0)
    ref, mine = Model(torch.nn), Model(rt)
    mine.load_state_dict(ref.state_dict())
    compiled = torch.compile(mine, fullgraph=True, backend="aot_eager")
    x = torch.randn(3, 6, 5)
    xr, xm = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    yr, ym = ref(xr), compiled(xm)
    assert_close(ym.detach().numpy(), yr.detach().numpy(), "torch_f32", "compiled output")
    yr.square().sum().backward()
    ym.square().sum().backward()
    assert_close(xm.grad.numpy(), xr.grad.numpy(), "torch_grad_f32", "compiled d x")
    for (name, p), q in zip(ref.named_parameters(), mine.parameters()):
        assert_close(q.grad.numpy(), p.grad.numpy(), "torch_grad_f32", f"compiled d {name}")


def test_torch_export():
    m = rt.LSTM(5, 7, batch_first=True).eval()
    x = torch.randn(2, 4, 5)
    with torch.no_grad():
        ep = torch.export.export(m, (x,))
    assert any("rnnkern.rnn_forward" in str(n.target) for n in ep.graph.nodes)
    out = ep.module()(x)
    assert_close(out[0].detach().numpy(), m(x)[0].detach().numpy(), "torch_f32", "exported")
