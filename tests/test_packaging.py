"""The installed distribution's metadata: the version in one place (the package and
the metadata agree), and each extra brings what it says -- wherever an extra's
requirements are installed (README's test command installs [test], which holds
the others' packages), the rnnkern feature it is for works."""
import re
import subprocess
import sys

import pytest

import rnnkern
from helpers import child_env

md = pytest.importorskip("importlib.metadata")

try:
    DIST = md.distribution("rnnkern")
except md.PackageNotFoundError:   # pragma: no cover - a bare source tree
    pytest.skip("rnnkern is not installed (no metadata)", allow_module_level=True)


def extras():
    """extra -> [requirement names] from the installed metadata (Requires-Dist)."""
    out = {}
    for req in DIST.requires or []:
        m = re.search(r"""extra\s*==\s*["']([^"']+)["']""", req)
        if m:
            name = re.match(r"[A-Za-z0-9_.\-]+", req).group(0)
            out.setdefault(m.group(1), []).append(name)
    return out


def installed(name):
    try:
        md.version(name)
        return True
    except md.PackageNotFoundError:
        return False


def test_one_version():
    """rnnkern/_version.py is the one place: the metadata pip installed says the same."""
    assert DIST.version == rnnkern.__version__


def test_the_extras_are_declared():
    assert {"torch", "keras", "h5", "plot", "test", "bench", "examples"} <= set(extras())
    assert "numpy" in {re.match(r"[A-Za-z0-9_.\-]+", r).group(0)
                       for r in DIST.requires or [] if "extra" not in r}


# what each extra is for: a check run in a fresh interpreter where its packages are
FEATURES = {
    "torch": "import rnnkern.torch as rt; rt.LSTM(3, 4)",
    "keras": "import os; os.environ['KERAS_BACKEND'] = 'torch'; import rnnkern.keras as k; "
             "k.LSTM(4)",
    "h5": "import numpy as np, os, tempfile, rnnkern as rk; "
          "m = rk.Sequential([rk.layers.Input((3, 2)), rk.layers.LSTM(4)]); "
          "p = os.path.join(tempfile.mkdtemp(), 'w.weights.h5'); m.save_weights(p); "
          "m.load_weights(p)",
    "plot": "import matplotlib; matplotlib.use('Agg'); import matplotlib.pyplot as plt; "
            "plt.figure(); import pydot; from rnnkern.utils import model_to_dot",
    "bench": "from rnnkern.bench import impls; "
             "assert impls.make_impl('torch')[0] is not None",
    "examples": "import h5py, matplotlib",
    "test": "import pytest, keras, torch, h5py, matplotlib, pydot",
}


@pytest.mark.parametrize("extra", sorted(FEATURES))
def test_each_extra_brings_what_it_says(extra, tmp_path):
    reqs = extras().get(extra)
    assert reqs, f"extra {extra!r} is not declared"
    missing = [r for r in reqs if not installed(r)]
    if missing:
        pytest.skip(f"[{extra}] is not installed here (missing {missing})")
    out = subprocess.run([sys.executable, "-c", FEATURES[extra]], capture_output=True,
                         text=True, timeout=300, env=child_env(KERAS_BACKEND="torch"),
                         cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
