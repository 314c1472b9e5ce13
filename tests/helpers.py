"""Small helpers shared by test files."""
import os
import threading

# The units of the tail-size tests: around the CPU vectors (4, 8 and 16 floats)
# and the GPU tiles (16 units a step block, 32 a GEMM tile edge).
TAIL_UNITS = (1, 3, 4, 5, 7, 8, 9, 15, 16, 17, 33, 48)
# cuda-emu runs a grid on host threads (~1 s a case): the GPU tiles' edges only
EMU_TAIL_UNITS = (1, 5, 15, 16, 17, 33)


def tail_cases(backends):
    """(backend, units) pairs of the tail-size tests."""
    return [(b, h) for b in backends for h in TAIL_UNITS
            if b != "cuda-emu" or h in EMU_TAIL_UNITS]


def run_in_threads(fn, n, timeout=120):
    """fn(k) for k = 0..n-1 in n Python threads at once; their results in order,
    or the first error raised."""
    results, errors = [None] * n, []

    def worker(k):
        try:
            results[k] = fn(k)
        except Exception as e:  # pragma: no cover - re-raised below
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)
    assert not any(t.is_alive() for t in threads), "a thread did not finish"
    if errors:
        raise errors[0]
    return results


def keras_or_skip(module_level=False):
    """Keras 3 on the torch backend (the tests compare against it with torch's
    autograd), or skip: the test, or with module_level=True the whole file."""
    import pytest
    keras = pytest.importorskip("keras")
    pytest.importorskip("torch")
    if keras.backend.backend() != "torch":
        pytest.skip("needs Keras on the torch backend (KERAS_BACKEND=torch)",
                    allow_module_level=module_level)
    return keras


def capture_stdout(fn):
    """What fn() prints."""
    import contextlib
    import io
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        fn()
    return buf.getvalue()


def child_env(**extra):
    """os.environ for a child Python process that imports the rnnkern these tests
    import: the installed package (README's `pip install .`) or the in-place build,
    never a source tree without its compiled kernels that happens to come first on
    the child's path -- with `python -c` the current directory comes before
    PYTHONPATH, so such children also run with cwd=tmp_path (a checkout's
    `rnnkern/` in the current directory would otherwise win)."""
    import rnnkern
    here = os.path.dirname(os.path.dirname(os.path.abspath(rnnkern.__file__)))
    env = dict(os.environ, **extra)
    env["PYTHONPATH"] = here + os.pathsep + os.environ.get("PYTHONPATH", "")
    return env


def torch_rnn_inputs(torch, num_layers, bidirectional, batch_first, with_state, lstm,
                     N=3, T=6, C=5, H=7):
    """(x, hx) of the torch.nn parity tests: a fixed-seed input in the module's layout
    and, with_state, initial states (a (h0, c0) pair for LSTM)."""
    d = 2 if bidirectional else 1
    g = torch.Generator().manual_seed(2)
    x = torch.randn((N, T, C) if batch_first else (T, N, C), generator=g)
    hx = None
    if with_state:
        h0 = torch.randn(num_layers * d, N, H, generator=g) * 0.5
        hx = (h0, torch.randn(num_layers * d, N, H, generator=g) * 0.5) if lstm else h0
    return x, hx
