"""What the benchmark runs: one registry of implementations, one input maker,
one oracle.

An implementation (``Impl``) turns a case — cell, mode and the Keras-layout
float32 inputs — into a ``Prepared`` call:

    prepared.fn()            the work that is timed (one inference forward, or one
                             training forward + backward with loss = sum(outputs))
    prepared.collect(ret)    fn's result -> {"y", "dx", "dkernel",
                             "drecurrent_kernel", "dbias"} as NumPy in Keras layout,
                             used only to CHECK the implementation, never timed

An implementation with ``dropout`` set (rnnkern's "+dropR" rows, training only)
runs with Keras' dropout masks of that rate (``dropout_masks``: dropout =
recurrent_dropout = R, one mask per gate as Keras' implementation=1) and is
checked against the reference run with the same masks.

The registry (``IMPLS``, ``register``) drives the CLI, the tests (which add a
deliberately wrong implementation) and anything added later: a new kernel or
adapter is one entry, and it is then checked and timed.
"""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from typing import Callable, Dict, Optional

import numpy as np

from .shapes import GATES

# --------------------------------------------------------------------------
# Inputs: Keras-layout float32 weights, generated once per (shape, cell)
# --------------------------------------------------------------------------


@dataclass
class Inputs:
    cell: str
    x: np.ndarray        # [N, T, C]
    W: np.ndarray        # [C, G*H]
    U: np.ndarray        # [H, G*H]
    b: np.ndarray        # [G*H], or [2, G*H] for GRU (reset_after=True)
    h0: np.ndarray       # [N, H] zeros
    c0: Optional[np.ndarray]   # [N, H] zeros for LSTM
    dy: np.ndarray       # [N, T, H] ones: d(sum of outputs)/dy
    seed: int = 0

    @property
    def dims(self):
        N, T, C = self.x.shape
        return T, N, C, self.U.shape[0]


# Dropout masks of a case, by rate: Keras' rules with dropout = recurrent_dropout
# = rate (0 < rate < 1): LSTM/GRU one independent mask per gate, SimpleRNN one.
def dropout_masks(inp, rate):
    """-> (input_masks [G,N,C], recurrent_masks [G,N,H]) float32, the same for every
    call on these inputs (drawn once, from the inputs' seed)."""
    cache = inp.__dict__.setdefault("_dropout_masks", {})
    if rate not in cache:
        T, N, C, H = inp.dims
        g = GATES[inp.cell]
        rng = np.random.default_rng([inp.seed, T, N, C, H, g, int(round(rate * 1e6))])
        keep = 1.0 - rate
        im = ((rng.random((g, N, C)) < keep) / keep).astype(np.float32)
        rm = ((rng.random((g, N, H)) < keep) / keep).astype(np.float32)
        cache[rate] = (im, rm)
    return cache[rate]


def make_inputs(cell, T, N, C, H, seed=0):
    """Keras-like initialisation (glorot-uniform kernel, orthogonal recurrent
    kernel over the whole [H, G*H]) with a small NON-zero bias, so that a bias
    handled wrongly shows up in the check."""
    g = GATES[cell]
    rng = np.random.default_rng([seed, T, N, C, H, g])
    lim = np.sqrt(6.0 / (C + g * H))
    W = rng.uniform(-lim, lim, (C, g * H))
    a = rng.standard_normal((g * H, H))
    q, r = np.linalg.qr(a)                   # q: [G*H, H], orthonormal columns
    q *= np.sign(np.diag(r))
    U = q.T                                  # [H, G*H], orthonormal rows
    bshape = (2, g * H) if cell == "gru" else (g * H,)
    b = rng.uniform(-0.1, 0.1, bshape)
    x = rng.uniform(-1.0, 1.0, (N, T, C))
    f32 = lambda v: np.ascontiguousarray(v, dtype=np.float32)  # noqa: E731
    h0 = np.zeros((N, H), np.float32)
    return Inputs(cell, f32(x), f32(W), f32(U), f32(b), h0,
                  h0.copy() if cell == "lstm" else None,
                  np.ones((N, T, H), np.float32), seed)


# --------------------------------------------------------------------------
# The oracle: rnnkern.reference in float64, once per (shape, cell)
# --------------------------------------------------------------------------

def reference_results(inp, training=True, dropout=None):
    """Float64 reference outputs (and, with training, gradients of sum(y)); with
    ``dropout``, under the masks ``dropout_masks(inp, dropout)``."""
    from .. import reference
    d = lambda v: None if v is None else np.asarray(v, np.float64)  # noqa: E731
    im, rm = dropout_masks(inp, dropout) if dropout else (None, None)
    y, _, _, cache = reference.rnn_forward(
        inp.cell, d(inp.x), d(inp.W), d(inp.U), d(inp.b), d(inp.h0), d(inp.c0), None,
        return_sequences=True, training=training, input_masks=d(im), recurrent_masks=d(rm))
    out = {"y": y}
    if training:
        dx, dW, dU, db, _, _ = reference.rnn_backward(cache, np.ones_like(y))
        out.update(dx=dx, dkernel=dW, drecurrent_kernel=dU, dbias=db)
    return out


# Norm-wise relative error ||a - r|| / ||r|| allowed against the float64
# reference. Norm-wise, because over long sequences float32 rounding grows
# and a few tiny elements would fail an elementwise rtol; a real bug (a wrong
# gate order, a missing bias, a transposed weight) gives errors of order 1.
CHECK_TOL = {"y": 1e-4, "dx": 1e-3, "dkernel": 1e-3, "drecurrent_kernel": 1e-3,
             "dbias": 1e-3}
# precision="bf16" rows against the same exact float64 reference: bf16's error
# (unit roundoff 2^-8) is 2e-3..5e-3 normwise at S1-S4, up to ~1.5e-2 on tiny
# shapes whose few-term sums cancel (dx at T=5, N=2, C=3, H=4); a bug is of
# order 1 (tests/test_bf16.py holds the kernels to 1e-2 at realistic sizes)
CHECK_TOL_BF16 = {k: 5e-2 for k in CHECK_TOL}
CHECKED = {"inference": ("y",),
           "training": ("y", "dx", "dkernel", "drecurrent_kernel", "dbias")}


def rel_err(a, r):
    a = np.asarray(a, np.float64)
    r = np.asarray(r, np.float64)
    if a.shape != r.shape:
        return float("inf")
    if not np.all(np.isfinite(a)):
        return float("inf")
    den = np.linalg.norm(r)
    num = np.linalg.norm(a - r)
    return float(num / den) if den > 0 else float(num)


def check(got, ref, mode, tol=None):
    """-> (ok, {name: rel_err}, first failing name or None)."""
    errs, bad = {}, None
    for k in CHECKED[mode]:
        if k not in got or got[k] is None:
            errs[k] = float("inf")
        else:
            errs[k] = rel_err(got[k], ref[k])
        if not errs[k] <= (tol or CHECK_TOL)[k] and bad is None:
            bad = k
    return bad is None, errs, bad


# --------------------------------------------------------------------------
# Implementations
# --------------------------------------------------------------------------

@dataclass
class Prepared:
    fn: Callable[[], object]
    collect: Callable[[object], Dict[str, np.ndarray]]
    workspace_bytes: Callable[[object], Optional[int]] = lambda ret: None
    # temporary memory of the call beyond inputs, outputs and workspace, bytes
    temp_bytes: Callable[[object], Optional[int]] = lambda ret: None


@dataclass
class Impl:
    name: str                  # row label, e.g. "rnnkern-avx512", "torch", "keras"
    kind: str                  # "rnnkern" | "torch" | "keras" | anything for tests
    prepare: Callable[[str, str, Inputs], Prepared]   # (cell, mode, inputs)
    isa: Optional[str] = None  # the ISA whose peak its "% of peak" uses
    info: Dict[str, str] = field(default_factory=dict)
    dropout: Optional[float] = None   # runs with dropout_masks(inputs, dropout)
    modes: Optional[tuple] = None     # the modes it runs in (None: every mode)
    precision: str = "fp32"           # "bf16": checked against CHECK_TOL_BF16


# ---- rnnkern (function-level API) -------------------------------------------

def _rnnkern_core():
    try:
        from .. import _core
    except ImportError:
        return None
    return _core if hasattr(_core, "last_call_scratch_bytes") else None


DROPOUT_SUFFIX = "+drop"
BF16_SUFFIX = "+bf16"


def dropout_impl_name(name, rate):
    """The dropout sibling of an rnnkern implementation: 'rnnkern-avx512+drop0.2'."""
    return f"{name}{DROPOUT_SUFFIX}{rate:g}"


GPU_BACKENDS = ("cuda", "cuda-emu")


def _host(a):
    """A result as a NumPy array (device arrays copied back; host arrays as they are)."""
    if a is None or isinstance(a, np.ndarray):
        return a
    return a.numpy()


def rnnkern_impl(backend_name, dropout=None, precision="fp32"):
    """rnnkern's kernels on one backend; with ``dropout`` (training only), Keras'
    per-gate dropout masks of that rate (see dropout_masks) in the fused kernels;
    ``precision`` "bf16": the row "rnnkern-<backend>+bf16".
    On the GPU backends every array is put on the device once, before timing, and
    the calls take and return device arrays (as cuDNN's rows keep torch tensors on
    the device): a timed call is the kernels and a synchronize, no host copies."""
    def prepare(cell, mode, inp):
        from ..backends import get_backend
        be = get_backend(backend_name)
        on_gpu = backend_name in GPU_BACKENDS
        if on_gpu:
            from .._device import device_array

            def up(a):
                return None if a is None else device_array(a, backend_name)
        else:
            def up(a):
                return a
        args = (cell, up(inp.x), up(inp.W), up(inp.U), up(inp.b), up(inp.h0), up(inp.c0), None)
        dy = up(inp.dy)
        masks = {}
        if dropout:
            im, rm = dropout_masks(inp, dropout)
            masks = dict(input_masks=up(im), recurrent_masks=up(rm))
        core = _rnnkern_core() if backend_name != "reference" else None

        def scratch():
            return core.last_call_scratch_bytes() if core is not None else None

        if mode == "inference":
            # as a layer predicts: U and W packed once, reused while the weights stay
            # (training repacks every call: the weights change every step)
            packed = None if on_gpu else be.pack(cell, inp.U, True, inp.W)

            def fn():
                y = be.forward(*args, packed, return_sequences=True, training=False,
                               precision=precision)[0]
                return y, scratch()

            return Prepared(fn, lambda r: {"y": _host(r[0])}, temp_bytes=lambda r: r[1])

        def fn():
            y, _, _, cache = be.forward(*args, return_sequences=True, training=True,
                                        precision=precision, **masks)
            s_fwd = scratch()
            g = be.backward(cache, dy)
            s_bwd = scratch()
            return y, g, cache, (None if s_fwd is None else max(s_fwd, s_bwd))

        def collect(r):
            y, g = r[0], r[1]
            return {"y": _host(y), "dx": _host(g.dx), "dkernel": _host(g.dkernel),
                    "drecurrent_kernel": _host(g.drecurrent_kernel), "dbias": _host(g.dbias)}

        def workspace(r):
            return getattr(r[2].inner, "nbytes", None)

        return Prepared(fn, collect, workspace, temp_bytes=lambda r: r[3])

    isa = backend_name if backend_name in ("avx512", "avx2") else None
    name = f"rnnkern-{backend_name}"
    if precision == "bf16":
        return Impl(name + BF16_SUFFIX, "rnnkern", prepare, isa=isa, precision="bf16",
                    info={"precision": "bf16 (weights and products' operands; fp32 sums)"})
    if dropout:
        return Impl(dropout_impl_name(name, dropout), "rnnkern", prepare, isa=isa,
                    dropout=float(dropout), modes=("training",),
                    info={"dropout": f"dropout = recurrent_dropout = {dropout:g}"})
    return Impl(name, "rnnkern", prepare, isa=isa)


# ---- PyTorch (torch.nn.RNN / LSTM / GRU on the CPU) ---------------------------

# The torch <-> Keras weight layout conversion is the package's (rnnkern.torch uses it).
from .._torch_layout import keras_to_torch_cols, to_torch, torch_to_keras_cols  # noqa: E402,F401


def torch_module(cell, inp, lib=None):
    """``lib``.{RNN,LSTM,GRU}(batch_first=True) holding the Keras-layout weights:
    torch.nn's (the default), or rnnkern.torch's drop-ins."""
    import torch
    lib = torch.nn if lib is None else lib
    T, N, C, H = inp.dims
    cls = {"simple_rnn": lambda: lib.RNN(C, H, nonlinearity="tanh", batch_first=True),
           "lstm": lambda: lib.LSTM(C, H, batch_first=True),
           "gru": lambda: lib.GRU(C, H, batch_first=True)}[cell]
    mod = cls().float()
    load_torch_weights(mod, cell, inp.W, inp.U, inp.b)
    return mod


def load_torch_weights(mod, cell, W, U, b):
    """Keras-layout (W, U, b) into a one-layer torch.nn (or rnnkern.torch) module."""
    import torch
    arrays = to_torch(cell, W, U, b)
    names = ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0")
    with torch.no_grad():
        for name, a in zip(names, arrays):
            if a is not None:
                getattr(mod, name).copy_(torch.from_numpy(np.array(a, np.float32)))


def _torch_prepare(cell, mode, inp, device="cpu", lib=None, tf32=None, bf16=False):
    """torch.nn's module (or ``lib``'s: rnnkern.torch) on ``device`` ("cpu", or
    "cuda": cuDNN's fused RNNs, or rnnkern.torch on the cuda backend); on a GPU every
    call ends with a synchronize, so the time is the kernels'. ``tf32``: the value of
    torch.backends.cudnn.allow_tf32 during each call (both torch.nn and rnnkern.torch
    follow it); None leaves it as it is. ``bf16``: every call inside
    ``torch.autocast(device, dtype=torch.bfloat16)`` (outputs checked as float32)."""
    import torch
    mod = torch_module(cell, inp, lib).to(device)
    xt = torch.from_numpy(inp.x).to(device)
    sync = torch.cuda.synchronize if device != "cpu" else (lambda: None)

    def flagged(call):
        if bf16:
            def run16():
                with torch.autocast(device, dtype=torch.bfloat16):
                    return call()
            return run16
        if tf32 is None:
            return call

        def run():
            old = torch.backends.cudnn.allow_tf32
            torch.backends.cudnn.allow_tf32 = tf32
            try:
                return call()
            finally:
                torch.backends.cudnn.allow_tf32 = old
        return run
    if mode == "inference":
        def fn():
            with torch.no_grad():
                out = mod(xt)[0]
            sync()
            return out

        return Prepared(flagged(fn), lambda r: {"y": r.float().cpu().numpy()})

    xt = xt.clone().requires_grad_(True)
    params = list(mod.parameters())
    dy = torch.from_numpy(inp.dy).to(device)   # d sum(y) / dy: the raw rows' dy

    def fn():
        for p in params:
            p.grad = None
        xt.grad = None
        out = mod(xt)[0]
        out.backward(dy)
        sync()
        return out

    def collect(out):
        g = lambda p: p.grad.detach().cpu().numpy().astype(np.float64)  # noqa: E731
        dW = torch_to_keras_cols(g(mod.weight_ih_l0).T, cell)
        dU = torch_to_keras_cols(g(mod.weight_hh_l0).T, cell)
        if cell == "gru":
            db = np.stack([torch_to_keras_cols(g(mod.bias_ih_l0), cell),
                           torch_to_keras_cols(g(mod.bias_hh_l0), cell)])
        else:   # d/d(b_ih) == d/d(b_hh) == d/d(Keras bias)
            db = torch_to_keras_cols(g(mod.bias_ih_l0), cell)
        return {"y": out.detach().float().cpu().numpy(), "dx": xt.grad.cpu().numpy(),
                "dkernel": dW,
                "drecurrent_kernel": dU, "dbias": db}

    return Prepared(flagged(fn), collect)


def torch_cuda_available():
    """Whether a CUDA build of torch sees a device (without importing torch when
    it is not installed)."""
    if not _torch_available():
        return False
    import torch
    return bool(torch.cuda.is_available())


def torch_cuda_impl(fp32=False):
    """torch.nn on CUDA (cuDNN): in its default TF32 math, or strict fp32."""
    name = "torch-cuda-fp32" if fp32 else "torch-cuda"
    return Impl(name, "torch",
                lambda c, m, i: _torch_prepare(c, m, i, "cuda", tf32=not fp32),
                info={"device": "cuda (cuDNN)", "precision": "fp32" if fp32 else "tf32"})


def rnnkern_torch_cuda_impl(fp32=False):
    """rnnkern.torch's modules on CUDA tensors (the cuda backend in place), in the
    precision torch.nn's rule gives them: TF32 by default, strict fp32."""
    def prepare(cell, mode, inp):
        import rnnkern.torch as rt
        return _torch_prepare(cell, mode, inp, "cuda", lib=rt, tf32=not fp32)
    name = "rnnkern.torch-cuda-fp32" if fp32 else "rnnkern.torch-cuda"
    return Impl(name, "torch", prepare,
                info={"rnnkern.torch": "rnnkern.torch modules on CUDA tensors",
                      "precision": "fp32" if fp32 else "tf32"})


CUDA_ADAPTER_NAMES = ("rnnkern.torch-cuda", "rnnkern.torch-cuda-fp32", "torch-cuda",
                      "torch-cuda-fp32")


def torch_impl(bf16=False):
    """torch.nn on the CPU; bf16: inside torch.autocast("cpu", bfloat16) ("torch+bf16",
    oneDNN's bf16 RNN where the CPU has the instructions)."""
    if bf16:
        return Impl("torch" + BF16_SUFFIX, "torch",
                    lambda c, m, i: _torch_prepare(c, m, i, bf16=True), precision="bf16",
                    info={"torch+bf16": "torch.nn under torch.autocast('cpu', bfloat16)"})
    return Impl("torch", "torch", _torch_prepare)


def rnnkern_torch_impl():
    """rnnkern.torch's drop-in modules through torch autograd: what the adapter
    costs over the raw kernels (the rnnkern-<isa> rows)."""
    def prepare(cell, mode, inp):
        import rnnkern.torch as rt
        return _torch_prepare(cell, mode, inp, lib=rt)
    return Impl("rnnkern.torch", "torch", prepare,
                info={"rnnkern.torch": "rnnkern.torch modules, torch autograd"})


# ---- Keras 3 layers on the torch backend --------------------------------------

def keras_status():
    """(usable, reason). Keras must run on its torch backend; if it was already
    imported with another backend it cannot be switched in this process."""
    if "keras" in sys.modules:
        try:
            be = sys.modules["keras"].backend.backend()
        except Exception as e:  # pragma: no cover - half-imported keras
            return False, f"keras import state unusable: {e}"
        if be != "torch":
            return False, f"keras already imported with backend {be!r} (needs KERAS_BACKEND=torch)"
        return True, ""
    try:
        import importlib.util
        if importlib.util.find_spec("keras") is None or importlib.util.find_spec("torch") is None:
            return False, "keras or torch not installed"
    except Exception as e:  # pragma: no cover
        return False, str(e)
    return True, ""


def import_keras():
    if "keras" not in sys.modules:
        os.environ["KERAS_BACKEND"] = "torch"
    import keras
    return keras


def keras_layer(cell, inp, rnnkern_layers=False):
    """keras.layers' layer (or, with ``rnnkern_layers``, rnnkern.keras') holding
    the inputs' weights."""
    keras = import_keras()
    T, N, C, H = inp.dims
    lib = keras.layers
    if rnnkern_layers:
        import rnnkern.keras as lib
    cls = {"simple_rnn": lib.SimpleRNN, "lstm": lib.LSTM, "gru": lib.GRU}[cell]
    kw = {"reset_after": True} if cell == "gru" else {}
    layer = cls(H, return_sequences=True, **kw)
    layer.build((N, T, C))
    layer.set_weights([inp.W, inp.U, inp.b])
    return layer


def _keras_prepare(cell, mode, inp, rnnkern_layers=False):
    import torch
    layer = keras_layer(cell, inp, rnnkern_layers)
    xt = torch.from_numpy(inp.x)
    if mode == "inference":
        def fn():
            with torch.no_grad():
                return layer(xt, training=False)

        return Prepared(fn, lambda r: {"y": r.detach().cpu().numpy()})

    xt = xt.clone().requires_grad_(True)
    # get_weights() order: kernel, recurrent_kernel, bias
    params = [v.value for v in layer.weights]
    dy = torch.from_numpy(inp.dy)   # d sum(y) / dy, as the raw rows and torch's take it

    def fn():
        for p in params:
            p.grad = None
        xt.grad = None
        out = layer(xt, training=True)
        out.backward(dy)
        return out

    def collect(out):
        g = [p.grad.detach().cpu().numpy() for p in params]
        return {"y": out.detach().cpu().numpy(), "dx": xt.grad.cpu().numpy(),
                "dkernel": g[0], "drecurrent_kernel": g[1], "dbias": g[2]}

    return Prepared(fn, collect)


def keras_impl():
    return Impl("keras", "keras", _keras_prepare)


def rnnkern_keras_impl():
    """rnnkern.keras' layers (Keras 3, torch backend) called and backpropagated as
    in a Keras training step: what the Keras adapter costs over the raw kernels."""
    def prepare(cell, mode, inp):
        return _keras_prepare(cell, mode, inp, rnnkern_layers=True)
    return Impl("rnnkern.keras", "keras", prepare,
                info={"rnnkern.keras": "rnnkern.keras layers, Keras 3 on torch autograd"})


# ---- Keras 3 on TensorFlow (a worker process: bench/tf_worker.py) ----------

def tensorflow_installed():
    import importlib.util
    return importlib.util.find_spec("tensorflow") is not None \
        and importlib.util.find_spec("keras") is not None


class TfWorker:
    """The one ``python -m rnnkern.bench.tf_worker`` process of this run (Keras
    chooses its backend per process), restarted when the thread count changes."""
    _current = None

    @classmethod
    def get(cls, threads):
        w = cls._current
        if w is None or w.threads != threads or w.proc.poll() is not None:
            if w is not None:
                w.close()
            cls._current = w = cls(threads)
        return w

    def __init__(self, threads):
        import subprocess
        from . import tf_worker
        self.threads = threads
        root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        env = dict(os.environ, KERAS_BACKEND="tensorflow", TF_CPP_MIN_LOG_LEVEL="2",
                   PYTHONPATH=root + os.pathsep + os.environ.get("PYTHONPATH", ""))
        self._io = tf_worker
        self.proc = subprocess.Popen([sys.executable, "-m", "rnnkern.bench.tf_worker",
                                      str(threads)], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, env=env)
        reply = self._io._read(self.proc.stdout)
        if reply is None or reply[0] != "ready":
            self.close()
            raise RuntimeError("the keras-tf worker did not start: " +
                               (reply[1] if reply else "it exited"))
        self.version = reply[1]

    def ask(self, *request):
        self._io._write(self.proc.stdin, request)
        reply = self._io._read(self.proc.stdout)
        if reply is None:
            raise RuntimeError("the keras-tf worker exited")
        if reply[0] == "error":
            raise RuntimeError(f"keras-tf: {reply[1]}")
        return reply

    def close(self):
        try:
            self._io._write(self.proc.stdin, ("quit",))
            self.proc.wait(10)
        except Exception:
            self.proc.kill()


def _close_tf_worker():
    if TfWorker._current is not None:
        TfWorker._current.close()
        TfWorker._current = None


import atexit  # noqa: E402

atexit.register(_close_tf_worker)


def keras_tf_impl():
    """Keras 3's layers on TensorFlow inside a tf.function, in a worker process,
    timed there (the pipe's round trip is not counted)."""
    from .timing import SelfTimed
    from .. import backends as bk

    def prepare(cell, mode, inp):
        w = TfWorker.get(bk.get_num_threads())
        arrays = {"x": inp.x, "W": inp.W, "U": inp.U, "b": inp.b, "dy": inp.dy}
        w.ask("prepare", cell, mode, arrays)

        def fn():
            return SelfTimed(w.ask("run")[1])

        return Prepared(fn, lambda r: w.ask("collect")[1])

    return Impl("keras-tf", "keras", prepare,
                info={"keras-tf": "Keras 3 on TensorFlow, layers inside a tf.function "
                                  "(a worker process, timed there)"})


# --------------------------------------------------------------------------
# The registry
# --------------------------------------------------------------------------

#: the adapters' rows: rnnkern's kernels through torch autograd and through Keras
ADAPTERS = ["rnnkern.torch", "rnnkern.keras"]

# name -> zero-argument factory returning an Impl (or raising ImportError)
IMPLS: Dict[str, Callable[[], Impl]] = {}


def register(name, factory):
    """Add (or replace) an implementation; returns the factory (usable as a decorator)."""
    IMPLS[name] = factory
    return factory


def unregister(name):
    IMPLS.pop(name, None)


def _torch_available():
    import importlib.util
    return importlib.util.find_spec("torch") is not None


def available_rnnkern_backends():
    """Backend names rnnkern lists on this machine, the compiled ones (no reference;
    no cuda-emu, the emulation, which is named explicitly when wanted: it runs
    the GPU kernels on CPU threads, minutes at the benchmark's shapes)."""
    from .. import backends as bk
    return [b for b in bk.backends() if b not in ("reference", "cuda-emu")]


def default_impl_names():
    """rnnkern's vectorised backends (scalar only when there is no other),
    then torch and keras when installed, then registered extras."""
    rk = available_rnnkern_backends()
    cpu = [b for b in rk if b in ("avx512", "avx2")]
    if not cpu:
        cpu = [b for b in rk if b == "scalar"]
    others = [b for b in rk if b not in ("avx512", "avx2", "scalar", "reference")]
    names = [f"rnnkern-{b}" for b in cpu + others]
    names += _adapter_and_peer_names()
    names += [n for n in IMPLS if n not in names]
    return names


def _adapter_and_peer_names():
    """rnnkern.torch, torch (and torch-cuda), rnnkern.keras, keras: those installed."""
    names = []
    if _torch_available():
        names += ["rnnkern.torch", "torch"]
        if torch_cuda_available():
            names += list(CUDA_ADAPTER_NAMES)
        if keras_status()[0]:
            names += ["rnnkern.keras", "keras"]
    if tensorflow_installed():
        names += ["keras-tf"]
    return names


def all_impl_names():
    rk = available_rnnkern_backends()
    names = [f"rnnkern-{b}" for b in rk] + _adapter_and_peer_names()
    return names + [n for n in IMPLS if n not in names]


def with_bf16_rows(names):
    """names with, after each rnnkern CPU kernel row, its precision="bf16" sibling,
    and after "torch" torch.nn under torch.autocast("cpu", bfloat16) ("torch+bf16")."""
    out = []
    for n in names:
        out.append(n)
        if (n.startswith("rnnkern-") and "+" not in n and n[len("rnnkern-"):] not in (
                "reference",) + GPU_BACKENDS) or n == "torch":
            out.append(n + BF16_SUFFIX)
    return out


def with_dropout_rows(names, rate):
    """names with, after each rnnkern implementation, its dropout sibling (rate)."""
    out = []
    for n in names:
        out.append(n)
        if n.startswith("rnnkern-") and DROPOUT_SUFFIX not in n:
            out.append(dropout_impl_name(n, rate))
    return out


def resolve_impl_names(spec):
    """--backends value -> list of implementation names (in the given order).
    Accepts rnnkern backend names with or without the 'rnnkern-' prefix,
    'torch', 'keras', registered names, 'default' and 'all'."""
    if spec is None:
        return default_impl_names()
    from .. import backends as bk
    rk_all = bk.backends()
    names = []
    for tok in [t.strip() for t in spec.split(",") if t.strip()]:
        low = tok.lower()
        if low == "all":
            group = all_impl_names()
        elif low == "default":
            group = default_impl_names()
        elif low in ("torch", "pytorch"):
            group = ["torch"]
        elif low in CUDA_ADAPTER_NAMES:
            group = [low]
        elif low in ("keras", "keras-tf"):
            group = [low]
        elif low in ("rnnkern.torch", "rnnkern.keras"):
            group = [low]
        elif tok in IMPLS:
            group = [tok]
        else:
            b = low[len("rnnkern-"):] if low.startswith("rnnkern-") else low
            if b not in rk_all:
                raise ValueError(
                    f"--backends: unknown implementation {tok!r}; available here: "
                    f"{', '.join(rk_all + ADAPTERS + ['torch', 'keras', 'keras-tf'] + list(CUDA_ADAPTER_NAMES) + list(IMPLS) + ['default', 'all'])}")
            group = [f"rnnkern-{b}"]
        names += [g for g in group if g not in names]
    if not names:
        raise ValueError("--backends: empty list")
    return names


def make_impl(name):
    """-> (Impl or None, reason when unavailable)."""
    if name in IMPLS:
        return IMPLS[name](), ""
    if name in ("torch", "torch" + BF16_SUFFIX):
        if not _torch_available():
            return None, "torch not installed"
        return torch_impl(bf16=name != "torch"), ""
    if name in CUDA_ADAPTER_NAMES:
        if not torch_cuda_available():
            return None, "no CUDA build of torch with a device"
        fp32 = name.endswith("-fp32")
        if name.startswith("rnnkern."):
            from .. import backends as bk
            ok, why = bk.cuda_status()
            if not ok:
                return None, f"rnnkern's cuda backend: {why}"
            return rnnkern_torch_cuda_impl(fp32), ""
        return torch_cuda_impl(fp32), ""
    if name == "keras":
        ok, why = keras_status()
        return (keras_impl(), "") if ok else (None, why)
    if name == "keras-tf":
        if not tensorflow_installed():
            return None, "tensorflow not installed (pip install 'rnnkern[bench-tf]')"
        return keras_tf_impl(), ""
    if name == "rnnkern.torch":
        if not _torch_available():
            return None, "torch not installed"
        return rnnkern_torch_impl(), ""
    if name == "rnnkern.keras":
        ok, why = keras_status()
        return (rnnkern_keras_impl(), "") if ok else (None, why)
    if name.startswith("rnnkern-") and name.endswith(BF16_SUFFIX):
        return rnnkern_impl(name[len("rnnkern-"):-len(BF16_SUFFIX)], precision="bf16"), ""
    if name.startswith("rnnkern-") and DROPOUT_SUFFIX in name:
        base, rate = name[len("rnnkern-"):].split(DROPOUT_SUFFIX, 1)
        try:
            r = float(rate)
        except ValueError:
            return None, f"bad dropout rate in {name!r}"
        if not 0 < r < 1:
            return None, f"dropout rate of {name!r} must be in (0, 1)"
        return rnnkern_impl(base, dropout=r), ""
    if name.startswith("rnnkern-"):
        return rnnkern_impl(name[len("rnnkern-"):]), ""
    return None, f"unknown implementation {name!r}"
