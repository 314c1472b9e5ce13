"""Backends: the NumPy reference and the compiled kernels, behind one interface.

Names (only those usable on this machine are listed by ``backends()``):
``reference``, ``scalar``, ``avx2``, ``avx512``, ``cuda-emu``, ``cuda``.
``auto`` picks the widest CPU ISA (the layers take NumPy arrays, which the GPU
backends copy to the device and back: a choice to make explicitly).

This is the one registry of backends: the compiled ones are those ``_core``
reports (``_core.cpu_isas()``: compiled in and supported by this CPU, in the order
of the C++ table of CPU ISAs, ``_core.cpu_isa_order()``), capped by
``RNNKERN_ISA``. Every backend object has the same three methods, the contract
of ``rnnkern.ops`` (which is what the layers call): ``pack``, ``forward``
(with the optional per-gate dropout masks ``input_masks`` [G,N,C] and
``recurrent_masks`` [G,N,H]), ``backward``. ``forward`` takes the call's options as
its first argument, one ``rnnkern.options.RnnOptions`` (or, for convenience, a
cell name with the options as keywords: ``forward("lstm", ..., training=False)``).
"""
from __future__ import annotations

import atexit
import os
import re
import tempfile
import threading
import warnings

import numpy as np

from . import _device
from . import reference as _reference
from ._common import GATES, Grads
from ._version import __version__
from .options import RnnOptions

class Cache:
    """What a training forward keeps for its backward (opaque to callers)."""
    __slots__ = ("backend", "inner", "__weakref__")

    def __init__(self, backend, inner):
        self.backend = backend
        self.inner = inner


class ReferenceBackend:
    name = "reference"

    def pack(self, cell, U, reset_after=True, W=None, bias=None):
        return None  # nothing to pack

    def forward(self, options, x, W, U, b, h0, c0, mask, packed=None, input_masks=None,
                recurrent_masks=None, **kw):
        o = options if type(options) is RnnOptions and not kw else RnnOptions.of(options, **kw)
        y, h, c, cache = _reference.rnn_forward(
            o.cell, x, W, U, b, h0, c0, mask, activation=o.activation,
            recurrent_activation=o.recurrent_activation, reset_after=o.reset_after,
            go_backwards=o.go_backwards, return_sequences=o.return_sequences,
            training=o.training, input_masks=input_masks, recurrent_masks=recurrent_masks,
            precision="bf16" if o.precision == "bf16" else "fp32")   # tf32: exact, as fp32
        return y, h, c, (Cache(self, cache) if cache is not None else None)

    def backward(self, cache, dy, dh_T=None, dc_T=None):
        return Grads(*_reference.rnn_backward(cache.inner, dy, dh_T, dc_T))


def _final_state_grads(ws, dh_T, dc_T):
    """dh_T and (LSTM) dc_T, zeros [N, H] where None, for a compiled workspace."""
    shape = (ws.batch, ws.units)
    if dh_T is None:
        dh_T = np.zeros(shape, np.float32)
    if dc_T is None and ws.cell == "lstm":
        dc_T = np.zeros(shape, np.float32)
    return dh_T, dc_T


def _own_copy(a):
    """A float32 copy of a mask array (None stays None; other objects are left for
    the bindings to reject with their message)."""
    if a is None or not isinstance(a, np.ndarray) or a.dtype.kind != "f":
        return a
    return np.array(a, dtype=np.float32)


def _core():
    from . import _core as core  # the compiled extension
    return core


class _CompiledBackend:
    """A backend of ``_core``'s kernel table, resolved once by name (``_core.Backend``,
    which ``_core.forward`` and ``_core.pack`` take in place of the name). Pickled
    by name, resolved again when loaded."""

    def __init__(self, name):
        self.name = name
        try:
            self._be = _core().backend(name)
        except ValueError:  # not available here: the calls then name it in their error
            self._be = name

    def __getstate__(self):
        return {"name": self.name}

    def __setstate__(self, state):
        self.__init__(state["name"])


class CpuBackend(_CompiledBackend):
    """One compiled CPU ISA (scalar, avx2 or avx512) of ``_core``."""

    def pack(self, cell, U, reset_after=True, W=None, bias=None):
        """U (and W, when given) packed for this ISA's kernels, for
        ``forward(..., packed=)`` with the same arrays while they are unchanged
        (float32 C-contiguous arrays, or the check against them fails); the bias is
        read per call."""
        return _core().pack(self._be, cell, bool(reset_after), U, W)

    def forward(self, options, x, W, U, b, h0, c0, mask, packed=None, input_masks=None,
                recurrent_masks=None, **kw):
        o = options if type(options) is RnnOptions and not kw else RnnOptions.of(options, **kw)
        if o.training:   # the workspace keeps the masks: a copy, as the caller may reuse theirs
            input_masks = _own_copy(input_masks)
            recurrent_masks = _own_copy(recurrent_masks)
        y, h, c, ws = _core().forward(
            self._be, o.core, x, W, U, b, h0, c0, mask,
            _threads_for(o.cell, x.shape[0], x.shape[-1], U.shape[0]), packed, input_masks,
            recurrent_masks)
        return y, h, c, (Cache(self, ws) if o.training else None)

    def backward(self, cache, dy, dh_T=None, dc_T=None):
        ws = cache.inner
        n, h = ws.batch, ws.units
        dh_T, dc_T = _final_state_grads(ws, dh_T, dc_T)
        nt = _threads_for(ws.cell, n, ws.input_size, h)
        dx, dW, dU, db, dh0, dc0 = _core().backward(ws, dy, dh_T, dc_T, nt)
        return Grads(dx, dW, dU, db, dh0, dc0 if ws.cell == "lstm" else None)


class GpuWeights:
    """A layer's kernel, recurrent kernel and bias on a GPU backend's device
    (``GpuBackend.pack``): uploaded once, read in place by every call made with
    them (the backward too) while the arrays they came from are unchanged. Each
    a DeviceArray, or (a fit step's update on the device: models/training.py) a
    DeviceVec of the optimizer's; never changed in place (an update makes new ones)."""
    __slots__ = ("backend", "cell", "reset_after", "W", "U", "b")

    @property
    def nbytes(self):
        return sum(a.nbytes for a in (self.W, self.U, self.b) if a is not None)


class _Staged:
    """A training forward that ran on the device with host activations (weights
    from GpuWeights): its device cache, the backward's results go back to the host
    (but the weight gradients, with ``weight_grads_on_device``: keep_weight_grads,
    written into ``weight_grads_out``'s arrays where given)."""
    __slots__ = ("inner", "lstm", "weight_grads_on_device", "weight_grads_out")


class GpuBackend(_CompiledBackend):
    """The GPU kernels of cuda/: ``cuda`` on a device, ``cuda-emu`` the same kernel
    source compiled for the CPU (a grid run by host threads; slow, for testing).
    NumPy arrays are copied to the device and back; arrays already on the device
    (``__cuda_array_interface__`` or DLPack: PyTorch CUDA tensors, CuPy,
    ``rnnkern.DeviceArray``) are used in place and the results come back there
    (``rnnkern._device``). ``pack`` uploads a layer's weights once (GpuWeights):
    calls with NumPy activations and those weights copy only the activations."""

    def pack(self, cell, U, reset_after=True, W=None, bias=None):
        """W, U (and the bias, when given) uploaded to the device once, for
        ``forward(..., packed=)`` while they are unchanged; None without W (the
        kernels read U as it is)."""
        if W is None:
            return None
        p = GpuWeights()
        p.backend, p.cell, p.reset_after = self.name, cell, bool(reset_after)
        p.W, p.U = self._up(W), self._up(U)
        p.b = None if bias is None else self._up(bias)
        return p

    def _up(self, a, dtype=np.float32):
        """A host array on the device (None stays None)."""
        if a is None:
            return None
        return _core().device_array(self.name, np.ascontiguousarray(a, dtype))

    def forward(self, options, x, W, U, b, h0, c0, mask, packed=None, input_masks=None,
                recurrent_masks=None, **kw):
        o = options if type(options) is RnnOptions and not kw else RnnOptions.of(options, **kw)
        if packed is not None and not (isinstance(packed, GpuWeights)
                                       and packed.backend == self.name
                                       and packed.cell == o.cell
                                       and packed.reset_after == o.reset_after):
            raise ValueError("packed was made for another isa, cell, reset_after or units: "
                             f"{self.name} takes its own pack(), or packed=None")
        arrays = (x, W, U, b, h0, c0, mask, input_masks, recurrent_masks)
        if any(_device.is_device_array(a, self.name) for a in arrays):
            y, h, c, dc = _device.forward(self.name, o, *arrays)
            return y, h, c, (Cache(self, dc) if o.training else None)
        if packed is not None:
            return self._forward_staged(o, packed, *arrays)
        y, h, c, ws = _core().forward(self._be, o.core, *arrays[:7], 1, None, input_masks,
                                      recurrent_masks)
        return y, h, c, (Cache(self, ws) if o.training else None)

    def _forward_staged(self, o, packed, x, W, U, b, h0, c0, mask, input_masks,
                        recurrent_masks):
        """Host activations, the weights of ``packed`` on the device: the activations
        go up, the results come back, the weights stay (the backward reads them in
        place: the GpuWeights object is immutable and the cache keeps its arrays)."""
        x = np.asarray(x)
        if x.ndim != 3:
            raise ValueError("x must be 3-D (batch, timesteps, features), got ndim "
                             f"{x.ndim}")
        H = packed.U.shape[0]
        if h0 is None:
            h0 = np.zeros((x.shape[0], H), np.float32)
        lstm = o.cell == "lstm"
        if lstm and c0 is None:
            raise ValueError("c0 is required for lstm")
        bias = packed.b if packed.b is not None else self._up(b)
        dm = None if mask is None else self._up(mask, np.bool_)
        y, h, c, dc = _device.forward(
            self.name, o, self._up(x), packed.W, packed.U, bias, self._up(h0),
            self._up(c0) if lstm else None, dm, self._up(input_masks),
            self._up(recurrent_masks), weights_in_place=True)
        cache = None
        if o.training:   # (dc.keep holds packed's W and U for the backward)
            st = _Staged()
            st.inner, st.lstm, st.weight_grads_on_device = dc, lstm, False
            st.weight_grads_out = None
            cache = Cache(self, st)
        return y.numpy(), h.numpy(), (c.numpy() if lstm else None), cache

    def keep_weight_grads(self, cache, out=None):
        """The backward of this training forward (host activations, GpuWeights)
        returns dW, dU and db as device arrays left on the device (fit's update on
        the device takes them there): new DeviceArrays, or the arrays of ``out``
        (``{"dW", "dU", "db"}`` -> device arrays of their shapes, each optional)
        written in place; dx and the state gradients still come home."""
        if cache is None or not isinstance(cache.inner, _Staged):
            raise ValueError("keep_weight_grads: not the cache of a forward with host "
                             "activations and packed weights on the device")
        cache.inner.weight_grads_on_device = True
        cache.inner.weight_grads_out = out

    def backward(self, cache, dy, dh_T=None, dc_T=None):
        ws = cache.inner
        if isinstance(ws, _Staged):
            up = self._up
            g = _device.backward(ws.inner, up(dy), up(dh_T), up(dc_T) if ws.lstm else None,
                                 out=ws.weight_grads_out)
            keep = (1, 2, 3) if ws.weight_grads_on_device else ()   # dW, dU, db
            return Grads(*(None if a is None else a if i in keep else a.numpy()
                           for i, a in enumerate(g)))
        if isinstance(ws, _device.DeviceCache):
            return Grads(*_device.backward(ws, dy, dh_T, dc_T))
        for name, a in (("dy", dy), ("dh_T", dh_T), ("dc_T", dc_T)):
            if _device.is_device_array(a, self.name):
                raise ValueError(f"{name} is a device array but the forward ran on host "
                                 "arrays: pass the gradients as host arrays too")
        dh_T, dc_T = _final_state_grads(ws, dh_T, dc_T)
        return Grads(*_core().backward(ws, dy, dh_T, dc_T, 1))


TUNE_MODES = ("off", "quick", "full")
_MAX_PLAN_CACHE = 1 << 20   # bytes: a plan cache is a few lines a layer shape
_save_registered = set()


def plan_cache_path(backend="cuda"):
    """Where the tuned plans of ``backend`` ('cuda' or 'cuda-emu') for this device,
    driver and rnnkern version are kept: RNNKERN_CACHE_DIR, else
    $XDG_CACHE_HOME/rnnkern, else ~/.cache/rnnkern."""
    root = os.environ.get("RNNKERN_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"),
        "rnnkern")
    key = re.sub(r"[^A-Za-z0-9._-]", "_", _core().gpu_device_key(backend))
    return os.path.join(root, f"plans-{key}-rnnkern{__version__}.txt")


def load_tuned_plans(backend="cuda"):
    """Give ``backend`` the plans tuned in earlier processes (its plan cache file, if
    any): loops of those shapes then skip tuning. A file that is not a plan cache
    is a ValueError naming it (delete it to tune again)."""
    path = plan_cache_path(backend)
    try:
        size = os.path.getsize(path)
    except OSError:
        return   # none yet
    if size > _MAX_PLAN_CACHE:
        raise ValueError(f"{path}: {size} bytes is not an rnnkern plan cache (at most "
                         f"{_MAX_PLAN_CACHE}); delete it to tune again")
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except UnicodeDecodeError:
        raise ValueError(f"{path}: not an rnnkern plan cache (not UTF-8 text); delete it to "
                         "tune again") from None
    _core().gpu_load_tuned(backend, lines, path)


def save_tuned_plans(backend="cuda"):
    """Write ``backend``'s tuned plans to its plan cache file (atomically: a
    temporary file renamed over it); nothing where none were tuned. A directory
    that cannot be written is a warning, not an error (the plans are only lost)."""
    plans = list(_core().gpu_tuned_plans(backend))
    if not plans:
        return None
    path = plan_cache_path(backend)
    text = (f"# rnnkern {__version__} tuned plans for {_core().gpu_device_key(backend)}: "
            "KEY -> persistent:BLOCKS,THREADS,KC, steps or mma:TILE (a GEMM's)\n"
            + "\n".join(plans) + "\n")
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".plans-", dir=os.path.dirname(path))
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text)
            os.replace(tmp, path)
        except BaseException:
            os.unlink(tmp)
            raise
    except OSError as e:
        warnings.warn(f"rnnkern: the tuned plans could not be saved to {path}: {e}",
                      stacklevel=2)
        return None
    return path


def _save_at_exit(backend):
    try:
        save_tuned_plans(backend)
    except Exception:   # at exit nothing can be done about it; the plans are only lost
        pass


def _tuning_started(backend):
    """The tuned plans of earlier processes loaded, and this one's saved at exit."""
    load_tuned_plans(backend)
    if backend not in _save_registered:
        _save_registered.add(backend)
        atexit.register(_save_at_exit, backend)


def set_cuda_tune(mode, backend=None):
    """Whether the GPU backends time each time loop's automatic plan on first use
    and keep the fastest: "off" (the default: the analytic plan, the same in every
    process), "quick" (it and its neighbours, a few steps each, ~50 ms once per
    layer shape) or "full" (a wider sweep). RNNKERN_TUNE sets it at first use.
    Tuned plans are kept for the process, loaded from and saved to a plan cache
    per device, driver and rnnkern version (``plan_cache_path``). A tuned plan may
    sum in another order than the analytic one: results agree to rounding, and are
    bitwise the same from call to call. ``backend``: one of 'cuda', 'cuda-emu'
    (default: every GPU backend usable here)."""
    if mode not in TUNE_MODES:
        raise ValueError(f"set_cuda_tune: mode must be one of {list(TUNE_MODES)}, got {mode!r}")
    for name in ([backend] if backend is not None else _gpu_backends()):
        _core().gpu_set_tune(name, mode)
        if mode != "off":
            _tuning_started(name)


def cuda_tune(backend="cuda-emu"):
    """The GPU backend's tuning mode (see set_cuda_tune)."""
    return str(_core().gpu_tune(backend))


def set_cuda_graphs(on):
    """Run each per-step loop of the GPU backends captured once as a CUDA graph and
    replayed (one graph launch instead of a launch per kernel per step), or not (the
    default; RNNKERN_CUDA_GRAPHS=1 makes it on). Each thread keeps the graphs it
    instantiated, by loop and length: a later call of the same shape updates one's
    kernel arguments in place instead of instantiating another. On cuda-emu the
    capture, update and replay are emulated, for the tests."""
    if not isinstance(on, (bool, np.bool_)):
        raise ValueError(f"set_cuda_graphs: on must be a bool, got {on!r}")
    _core().gpu_set_graphs(bool(on))


def cuda_graphs():
    """Whether the GPU backends' per-step loops run as captured graphs."""
    return bool(_core().gpu_graphs())


def release_memory():
    """Free what the kernels keep between calls to be fast -- the calling thread's
    scratch arena, the CPU workspaces' recycled blocks, the cuda backend's device
    pool -- and return the bytes each held, {'cpu_scratch', 'cpu_pool', 'cuda_pool'}
    (the next call allocates again). Workspaces still held by a forward awaiting its
    backward are not touched."""
    if not core_available():
        return {"cpu_scratch": 0, "cpu_pool": 0, "cuda_pool": 0}
    return dict(_core().release_memory())


def cuda_status():
    """(available, reason): whether the ``cuda`` backend can run here, and why not
    (or the device's name)."""
    try:
        st = _core().cuda_status()
    except ImportError as e:
        return False, f"compiled extension not importable: {e}"
    _built, available, reason = st
    return bool(available), str(reason)


def _gpu_backends():
    """GPU backend names usable here: ``cuda`` where a device answers, and
    ``cuda-emu`` wherever the extension is built."""
    if not core_available():
        return []
    return (["cuda"] if cuda_status()[0] else []) + ["cuda-emu"]


_lock = threading.Lock()
_num_threads = None   # set by set_num_threads; None: the default below
_affinity = None      # CPUs this process may run on, looked up once (~17 us a lookup)

# Below this much recurrent work a step, N * G * H * (C + H) multiply-adds, the
# default thread count is one: the kernels meet at a barrier every step, and with
# so little work between barriers a second thread gains nothing even on a quiet
# machine, while on a busy one a descheduled thread stalls every step of the
# other (measured: a small Embedding + Bidirectional LSTM model 40x slower on
# two threads under load). Measured on 2 cores of a Xeon, quiet: below 2^18
# two threads gain 0-9 %, from 2^18 on 18-50 % (bench/threads_crossover.py,
# bench/results/threads_crossover.txt).
SMALL_STEP_WORK = 1 << 18


def set_num_threads(n):
    """Threads the compiled kernels use. An int is used as given, for every problem;
    None (the default) means OMP_NUM_THREADS, else every CPU this process may run
    on, except that problems too small to gain from threads run on one."""
    global _num_threads
    if n is not None and (not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < 1):
        raise ValueError(f"set_num_threads: n must be a positive int or None, got {n!r}")
    _num_threads = None if n is None else int(n)


def get_num_threads():
    """The threads set by set_num_threads, else the default (OMP_NUM_THREADS, else
    every CPU this process may run on)."""
    global _affinity
    if _num_threads is not None:
        return _num_threads
    env = os.environ.get("OMP_NUM_THREADS", "")
    if env:
        try:
            v = int(env.split(",")[0])
            if v > 0:
                return v
        except ValueError:
            pass
    if _affinity is None:
        try:
            _affinity = max(1, len(os.sched_getaffinity(0)))
        except (AttributeError, OSError):
            _affinity = os.cpu_count() or 1
    return _affinity


def _threads_for(cell, batch, input_size, units):
    """Threads for one kernel call: set_num_threads' value as given, else the default
    capped at one for a small step (SMALL_STEP_WORK); either capped by this thread's
    share while it runs beside another call (run_beside)."""
    cap = getattr(_share, "threads", None)
    if _num_threads is not None:
        nt = _num_threads
    else:
        nt = get_num_threads()
        if nt > 1 and batch * GATES[cell] * units * (input_size + units) < SMALL_STEP_WORK:
            nt = 1
    return nt if cap is None else min(nt, cap)


# ------------------------------------------------------------- calls side by side
#
# Two independent kernel calls (a Bidirectional layer's directions) run at once,
# each on its share of the threads, instead of one after another on all of them:
# each call then meets its barrier every step among fewer threads (none on one),
# and the kernels' results do not depend on the thread count, so the outputs and
# gradients are bitwise those of the calls in sequence.

_share = threading.local()    # .threads: this thread's cap while it runs beside another
_concurrency = True           # set_layer_concurrency: Bidirectional side by side
_wavefront = False            # ... and stacked layers as a wavefront (inference)
_pool = None                  # (pid, ThreadPoolExecutor): made per process (not across fork)

# Below this much work (multiply-adds of the calls together; a backward counts
# twice its forward) the hand-off to a worker thread and back (~0.1-0.15 ms with
# the wake-ups, measured: Bidirectional LSTM inference at (T, N, C, H) = (100, 1,
# 32, 128), 16M, and (100, 32, 32, 32), 52M, ran 0.83-0.88x one direction after
# the other) costs more than running side by side gains; their training steps,
# whose backward is twice the work, gained 1.25x (bench/results/beside.txt).
BESIDE_MIN_WORK = 1 << 26


def set_layer_concurrency(on, wavefront=False):
    """Whether a Bidirectional layer runs its two directions at once on CPU threads
    (``on``, the default; used where there are two threads or more and the call is
    large enough to gain) and whether, besides, chains of recurrent layers in a
    model's inference run as a wavefront (``wavefront``, off by default: it gained
    only on a loaded machine, rnnkern/models/wavefront.py). Results are bitwise
    the same either way."""
    global _concurrency, _wavefront
    for name, v in (("on", on), ("wavefront", wavefront)):
        if not isinstance(v, (bool, np.bool_)):
            raise ValueError(f"set_layer_concurrency: {name} must be a bool, got {v!r}")
    _concurrency = bool(on)
    _wavefront = bool(on) and bool(wavefront)


def get_layer_concurrency():
    """set_layer_concurrency's settings: {"on": bool, "wavefront": bool}."""
    return {"on": _concurrency, "wavefront": _wavefront}


def beside_shares(backends_, work, parties=2):
    """The threads of each of `parties` calls (a tuple, the first ones largest)
    when calls on these backends with this much work together should run side by
    side, else None: all on compiled CPU kernels, concurrency on, at least one
    thread a call (set_num_threads' value, else the default), and at least
    BESIDE_MIN_WORK of work."""
    if not _concurrency or work < BESIDE_MIN_WORK or parties < 2:
        return None
    if not all(isinstance(b, CpuBackend) for b in backends_):
        return None
    nt = _num_threads if _num_threads is not None else get_num_threads()
    cap = getattr(_share, "threads", None)
    if cap is not None:
        nt = min(nt, cap)
    if nt < parties:
        return None
    return tuple(nt // parties + (1 if i < nt % parties else 0) for i in range(parties))


def _worker_pool():
    global _pool
    pid = os.getpid()
    with _lock:
        if _pool is None or _pool[0] != pid:     # a forked child has none of the threads
            from concurrent.futures import ThreadPoolExecutor
            _pool = (pid, ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2),
                                             thread_name_prefix="rnnkern-beside"))
        return _pool[1]


def _capped(threads, fn):
    def run():
        old = getattr(_share, "threads", None)
        _share.threads = threads
        try:
            return fn()
        finally:
            _share.threads = old
    return run


def run_beside(shares, fn_a, fn_b):
    """(fn_a(), fn_b()): with shares = (a, b) from beside_shares, fn_a on a worker
    thread capped at a threads while fn_b runs here capped at b; with None, one
    after the other here. Returns once both have returned; an exception is raised
    after both have finished (fn_b's when it raised one, else fn_a's)."""
    if shares is None:
        return fn_a(), fn_b()
    out = run_together(shares, [fn_a, fn_b])
    return out[0], out[1]


def run_together(shares, fns):
    """[fn() for fn in fns], all at once: the last on this thread, the others on
    worker threads, each capped at its share of the threads (shares from
    beside_shares, one a function). Returns once all have returned; where any
    raised, raises after all have finished: the last function's exception when
    it raised one, else the first raised in the order of fns."""
    pool = _worker_pool()
    futures = [pool.submit(_capped(n, fn)) for n, fn in zip(shares[:-1], fns[:-1])]
    mine = None
    try:
        last = _capped(shares[-1], fns[-1])()
    except BaseException as e:      # raised once the workers are done
        mine, last = e, None
    results, first = [], None
    for f in futures:
        try:
            results.append(f.result())
        except BaseException as e:
            results.append(None)
            first = first or e
    if mine is not None:
        raise mine
    if first is not None:
        raise first
    return results + [last]


def _compiled_isas():
    """CPU ISAs compiled in AND supported by this CPU, widest first,
    capped by RNNKERN_ISA=scalar|avx2|avx512 (one of ``_core.cpu_isa_order()``)
    when set."""
    try:
        core = _core()
    except ImportError:
        return []
    order = list(core.cpu_isa_order())  # the C++ table's ISAs, widest first
    isas = list(core.cpu_isas())        # those this CPU runs, in that order
    cap = os.environ.get("RNNKERN_ISA")
    if cap:
        if cap not in order:
            raise ValueError(f"RNNKERN_ISA must be one of {order}, got {cap!r}")
        isas = [i for i in isas if order.index(i) >= order.index(cap)]
    return isas


def backends():
    """Names of the backends usable on this machine: the reference, the CPU ISAs
    (narrowest first), ``cuda-emu``, and ``cuda`` where a device answers."""
    return ["reference"] + list(reversed(_compiled_isas())) + list(reversed(_gpu_backends()))


def cpu_backends():
    """The compiled CPU ISAs usable here, narrowest first."""
    return list(reversed(_compiled_isas()))


def core_available():
    try:
        _core()
        return True
    except ImportError:
        return False


_INSTANCES = {}


def get_backend(name="auto"):
    """The backend object of that name (``auto``: the widest usable CPU ISA, else
    the reference). ValueError listing the usable names for any other name."""
    if isinstance(name, (ReferenceBackend, CpuBackend, GpuBackend)):
        return name
    avail = backends()
    if name == "auto":
        isas = _compiled_isas()
        name = isas[0] if isas else "reference"
    if name not in avail:
        raise ValueError(f"backend must be one of {['auto'] + avail}, got {name!r}")
    backend = _INSTANCES.get(name)
    if backend is None:
        backend = (ReferenceBackend() if name == "reference" else
                   GpuBackend(name) if name in ("cuda", "cuda-emu") else CpuBackend(name))
        if isinstance(backend, GpuBackend) and os.environ.get("RNNKERN_CUDA_GRAPHS") == "1" \
                and not any(isinstance(b, GpuBackend) for b in _INSTANCES.values()):
            set_cuda_graphs(True)   # the environment's default, once
        if isinstance(backend, GpuBackend) and _core().gpu_tune(name) != "off":
            _tuning_started(name)   # RNNKERN_TUNE: the plan cache, as set_cuda_tune does
        _INSTANCES[name] = backend
    return backend

