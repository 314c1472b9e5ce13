"""rnnkern.torch on device tensors, in place: CUDA tensors on the ``cuda`` backend,
and -- so that every line a CUDA tensor goes through runs in CI -- CPU tensors on
``cuda-emu``, whose device is the host. Against torch.nn: outputs, final states and
every gradient, stacked and bidirectional modules, PackedSequence, unbatched input;
no host transfer on the way (the GPU runtime counts them); weights changed between
calls (through ``.data`` too) are seen; torch.nn's precision rule (cudnn.allow_tf32,
autocast bfloat16); weights read in place by the backward are guarded by autograd;
torch.compile(fullgraph=True) and torch.export. The real-device variants (stream
semantics included) skip without a GPU."""
import pytest

torch = pytest.importorskip("torch")
rt = pytest.importorskip("rnnkern.torch")

from rnnkern import _core, _device, backends as bk  # noqa: E402
from rnnkern.torch import _ops  # noqa: E402
from helpers import torch_rnn_inputs  # noqa: E402
from tolerances import assert_close  # noqa: E402

from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence  # noqa: E402

if "cuda-emu" not in bk.backends():   # pragma: no cover
    pytest.skip("cuda-emu is not built", allow_module_level=True)

KINDS = [("RNN", {"nonlinearity": "tanh"}), ("RNN", {"nonlinearity": "relu"}),
         ("LSTM", {}), ("GRU", {})]
KIND_IDS = ["rnn_tanh", "rnn_relu", "lstm", "gru"]
HAVE_CUDA = torch.cuda.is_available() and bk.cuda_status()[0]
# (rnnkern backend, torch device of its tensors)
DEVICES = [("cuda-emu", "cpu")] + ([("cuda", "cuda")] if HAVE_CUDA else [])
DEVICE_IDS = [b for b, _ in DEVICES]


@pytest.fixture(autouse=True)
def strict_fp32():
    """Both sides in strict fp32 (torch.nn's cuDNN and, by its rule, rnnkern)."""
    old = torch.backends.cudnn.allow_tf32
    torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cudnn.allow_tf32 = old


def pair(kind, extra, backend, device, C=5, H=7, **kw):
    """(torch.nn module on the CPU, rnnkern.torch module on ``device``), same weights."""
    torch.manual_seed(0)
    ref = getattr(torch.nn, kind)(C, H, **extra, **kw)
    mine = getattr(rt, kind)(C, H, **extra, **kw, backend=backend).to(device)
    mine.load_state_dict(ref.state_dict())
    return ref, mine


def transfers(backend):
    return _core.gpu_host_transfers(backend)


def loss_of(out, state, lstm):
    hn, cn = state if lstm else (state, None)
    data = out.data if isinstance(out, torch.nn.utils.rnn.PackedSequence) else out
    g = torch.Generator().manual_seed(1)
    loss = (data.cpu() * torch.randn(data.shape, generator=g)).sum() \
        + (hn.cpu() * torch.randn(hn.shape, generator=g)).sum()
    if cn is not None:
        loss = loss + (cn.cpu() * torch.randn(cn.shape, generator=g)).sum()
    return loss, data, hn, cn


def compare(ref, mine, x, hx, lstm, backend, device, what, packed_lengths=None):
    """Run both on the same input (rnnkern's on ``device``), a backward of a fixed
    weighting of every output, and compare everything; rnnkern's side must make
    no host transfer (its loss is formed on the CPU after its results are made)."""
    def leaf(t, dev):
        return None if t is None else t.detach().clone().to(dev).requires_grad_(True)

    results = []
    for mod, dev in ((ref, "cpu"), (mine, device)):
        xi = leaf(x, dev)
        hxi = None if hx is None else (tuple(leaf(t, dev) for t in hx) if lstm
                                       else leaf(hx, dev))
        inp = xi if packed_lengths is None else pack_padded_sequence(
            xi, torch.tensor(packed_lengths), batch_first=True, enforce_sorted=False)
        before = transfers(backend)
        out, state = mod(inp, hxi)
        if mod is mine:
            assert transfers(backend) == before, f"{what}: the forward copied to or from the host"
        loss, data, hn, cn = loss_of(out, state, lstm)
        before = transfers(backend)
        loss.backward()
        if mod is mine and dev == "cpu":   # (on cuda the loss's .cpu() grads go up: torch's)
            assert transfers(backend) == before, f"{what}: the backward copied"
        if packed_lengths is not None:
            data, lens = pad_packed_sequence(out, batch_first=True)
            assert lens.tolist() == list(packed_lengths)
        results.append((xi, hxi, data, hn, cn))
    (rx, rh, *ro), (mx, mh, *mo) = results
    for name, a, b in zip(("output", "h_n", "c_n"), mo, ro):
        if b is not None:
            assert_close(a.detach().cpu().numpy(), b.detach().numpy(), "torch_f32",
                         f"{what} {name}")
    assert_close(mx.grad.cpu().numpy(), rx.grad.numpy(), "torch_grad_f32", f"{what} d input")
    if hx is not None:
        for a, b in zip(mh if lstm else [mh], rh if lstm else [rh]):
            assert_close(a.grad.cpu().numpy(), b.grad.numpy(), "torch_grad_f32", f"{what} d hx")
    for (name, p), q in zip(ref.named_parameters(), mine.parameters()):
        assert q.grad.device.type == torch.device(device).type
        assert_close(q.grad.cpu().numpy(), p.grad.numpy(), "torch_grad_f32", f"{what} d {name}")


@pytest.mark.parametrize("backend,device", DEVICES, ids=DEVICE_IDS)
@pytest.mark.parametrize("kind,extra", KINDS, ids=KIND_IDS)
@pytest.mark.parametrize("num_layers,bidirectional,bias,batch_first,with_state",
                         [(1, False, True, True, False), (1, False, False, False, True),
                          (2, True, True, False, True)])
def test_parity_in_place(kind, extra, backend, device, num_layers, bidirectional, bias,
                         batch_first, with_state):
    lstm = kind == "LSTM"
    ref, mine = pair(kind, extra, backend, device, num_layers=num_layers,
                     bidirectional=bidirectional, bias=bias, batch_first=batch_first)
    x, hx = torch_rnn_inputs(torch, num_layers, bidirectional, batch_first, with_state, lstm)
    compare(ref, mine, x, hx, lstm, backend, device,
            f"{kind} L={num_layers} bi={bidirectional} on {backend}")


@pytest.mark.parametrize("backend,device", DEVICES, ids=DEVICE_IDS)
@pytest.mark.parametrize("kind,extra", KINDS[2:], ids=KIND_IDS[2:])
def test_packed_and_unbatched_in_place(kind, extra, backend, device):
    lstm = kind == "LSTM"
    ref, mine = pair(kind, extra, backend, device, num_layers=2, bidirectional=True,
                     batch_first=True)
    g = torch.Generator().manual_seed(4)
    lengths = [2, 7, 1, 5, 7]
    x = torch.randn(len(lengths), 7, 5, generator=g)
    h0 = torch.randn(4, len(lengths), 7, generator=g)
    hx = (h0, torch.randn_like(h0)) if lstm else h0
    compare(ref, mine, x, hx, lstm, backend, device, f"packed {kind} on {backend}",
            packed_lengths=lengths)
    compare(ref, mine, torch.randn(6, 5, generator=g), None, lstm, backend, device,
            f"unbatched {kind} on {backend}")


@pytest.mark.parametrize("backend,device", DEVICES, ids=DEVICE_IDS)
def test_weight_changes_are_seen_every_call(backend, device):
    """The kernels convert PyTorch's layout on the device every call, so an optimizer
    step, load_state_dict and a write through ``.data`` (which bypasses torch's
    version counter) all reach the next forward."""
    ref, mine = pair("GRU", {}, backend, device, batch_first=True)
    x = torch.randn(2, 4, 5, generator=torch.Generator().manual_seed(7))

    def same(what):
        with torch.no_grad():
            assert_close(mine(x.to(device))[0].cpu().numpy(), ref(x)[0].numpy(), "torch_f32",
                         what)
    same("first call")
    for m in (ref, mine):
        m.weight_hh_l0.data.mul_(0.5)          # .data: no version bump
    same("after a .data write")
    for m in (ref, mine):
        with torch.no_grad():
            m.bias_ih_l0.add_(0.25)            # an optimizer-style in-place step
    same("after an in-place step")
    state = {k: v * 0.9 for k, v in ref.state_dict().items()}
    ref.load_state_dict(state)
    mine.load_state_dict(state)
    same("after load_state_dict")


@pytest.mark.parametrize("backend,device", DEVICES, ids=DEVICE_IDS)
def test_precision_follows_torch_nn_rule(backend, device, monkeypatch):
    """precision=None: cudnn.allow_tf32 selects tf32 or fp32 on the GPU backends;
    autocast(bfloat16) of the tensors' device runs bf16 with float32 states and
    outputs, and takes the bfloat16 input an autocast layer gives; an explicit
    precision wins; the CPU backends stay fp32."""
    seen = []
    real = _device.forward

    def spy(backend_name, options, *a, **k):
        seen.append(options.precision)
        return real(backend_name, options, *a, **k)
    monkeypatch.setattr(_device, "forward", spy)
    ref, mine = pair("LSTM", {}, backend, device, batch_first=True)
    x = torch.randn(2, 5, 5, generator=torch.Generator().manual_seed(8)).to(device)
    with torch.no_grad():
        fp32 = mine(x)[0]
        torch.backends.cudnn.allow_tf32 = True
        mine(x)
        dev = torch.device(device).type
        with torch.autocast(device_type=dev, dtype=torch.bfloat16):
            y16, (h16, c16) = mine(x.to(torch.bfloat16))
    assert seen == ["fp32", "tf32", "bf16"]
    assert y16.dtype == h16.dtype == c16.dtype == torch.float32
    assert_close(y16.cpu().numpy(), fp32.cpu().numpy(), "forward_bf16", "autocast bf16")
    assert not torch.equal(y16, fp32)   # the weights were rounded
    explicit = getattr(rt, "LSTM")(5, 7, backend=backend, precision="fp32").to(device)
    seen.clear()
    with torch.no_grad():
        explicit(x)
    assert seen == ["fp32"]
    cpu = rt.LSTM(5, 7)   # a CPU backend: fp32 whatever the flag says
    assert _ops.on_gpu_backend(cpu.backend, torch.float32, torch.device("cpu")) is False


def test_weights_read_in_place_are_guarded():
    """With Keras' layout (rnnkern.keras) a training backward reads the weights where
    they are: changing them in place before it is autograd's error, not a silently
    wrong gradient."""
    from rnnkern.options import RnnOptions
    g = torch.Generator().manual_seed(9)
    W = torch.randn(5, 28, generator=g, requires_grad=True)
    U = torch.randn(7, 28, generator=g, requires_grad=True)
    b = torch.zeros(28, requires_grad=True)
    x = torch.randn(2, 3, 5, generator=g)
    h0 = torch.zeros(2, 7)
    opts = RnnOptions("lstm", training=True)
    y, h, c = _ops.run(x, W, U, b, None, h0, h0, None, opts, "cuda-emu", keras_layout=True)
    with torch.no_grad():
        U.mul_(2.0)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.sum().backward()
    # unchanged weights: the gradients of the reference on the same weights
    y, h, c = _ops.run(x, W, U, b, None, h0, h0, None, opts, "cuda-emu", keras_layout=True)
    y.sum().backward()
    y2, _, _ = _ops.run(x, W.detach().clone().requires_grad_(True), U, b, None, h0, h0, None,
                        opts, "auto", keras_layout=True)
    assert W.grad is not None and W.grad.shape == (5, 28)
    assert_close(y.detach().numpy(), y2.detach().numpy(), "torch_f32", "keras layout in place")


@pytest.mark.parametrize("backend,device", DEVICES, ids=DEVICE_IDS)
def test_compile_and_export_in_place(backend, device):
    class Model(torch.nn.Module):
        def __init__(self, lib, **kw):
            super().__init__()
            self.rnn = lib.GRU(5, 7, num_layers=2, batch_first=True, **kw)
            self.head = torch.nn.Linear(7, 3)

        def forward(self, x):
            out, h = self.rnn(x)
            return self.head(out[:, -1]) + h.sum(0).sum(-1, keepdim=True)

    torch.manual_seed(0)
    ref, mine = Model(torch.nn), Model(rt, backend=backend).to(device)
    mine.load_state_dict(ref.state_dict())
    compiled = torch.compile(mine, fullgraph=True, backend="aot_eager")
    x = torch.randn(3, 6, 5)
    xr, xm = x.clone().requires_grad_(True), x.clone().to(device).requires_grad_(True)
    yr, ym = ref(xr), compiled(xm)
    assert_close(ym.detach().cpu().numpy(), yr.detach().numpy(), "torch_f32", "compiled")
    yr.square().sum().backward()
    ym.square().sum().backward()
    assert_close(xm.grad.cpu().numpy(), xr.grad.numpy(), "torch_grad_f32", "compiled d x")
    for (name, p), q in zip(ref.named_parameters(), mine.parameters()):
        assert_close(q.grad.cpu().numpy(), p.grad.numpy(), "torch_grad_f32",
                     f"compiled d {name}")
    with torch.no_grad():
        ep = torch.export.export(mine.eval(), (x.to(device),))
        assert any("rnnkern.rnn_forward" in str(n.target) for n in ep.graph.nodes)
        assert_close(ep.module()(x.to(device)).cpu().numpy(), ref(x).numpy(), "torch_f32",
                     "exported")


@pytest.mark.skipif(not HAVE_CUDA, reason="needs a CUDA device")
def test_cuda_results_ordered_on_torch_stream():  # pragma: no cover - needs a GPU
    """On a side stream, the kernels queue on torch's current stream and return
    without a device-wide synchronize: a result used right away on that stream
    (and copied back after it) is the result, and it equals the default stream's."""
    torch.manual_seed(0)
    m = rt.LSTM(64, 128, batch_first=True, backend="cuda").cuda()
    x = torch.randn(16, 200, 64, device="cuda")
    with torch.no_grad():
        want = m(x)[0].cpu()
        s = torch.cuda.Stream()
        s.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(s):
            y = m(x)[0]
            z = (y * 2.0).sum(1)          # consumed on s, immediately
        torch.cuda.current_stream().wait_stream(s)
    assert torch.equal(y.cpu(), want)
    assert torch.allclose(z.cpu(), (want * 2.0).sum(1))
