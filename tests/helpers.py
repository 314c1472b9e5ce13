"""Small helpers shared by test files."""
import threading


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
