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
    the child's path (a checkout's `rnnkern/` beside the current directory)."""
    import rnnkern
    here = os.path.dirname(os.path.dirname(os.path.abspath(rnnkern.__file__)))
    env = dict(os.environ, **extra)
    env["PYTHONPATH"] = here + os.pathsep + os.environ.get("PYTHONPATH", "")
    return env
