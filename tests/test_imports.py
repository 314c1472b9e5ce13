"""The package's import graph has no circle beyond the one deliberate tie, and
every public module imports on its own in a fresh interpreter.

The graph is read from the source with ``ast``: an edge for every import of an
rnnkern module, at module level AND inside functions (a deferred import is
still a dependency, it only hides the order), plus the parent packages an
import runs (``import rnnkern.utils.progbar`` runs ``rnnkern/utils/__init__``).
The compiled ``rnnkern._core`` imports nothing of ours and is a leaf.

The one tie allowed: ``Layer.save_weights`` / ``load_weights`` import
``rnnkern.saving`` when called (tested API), and saving knows the layer
classes, so ``rnnkern.layers`` and ``rnnkern.saving`` form one circle. A new
upward import (a helper reached from the wrong level, a model known by a
layer) grows it, or makes a second one, and fails here.
"""
import ast
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
PKG = ROOT / "rnnkern"
EXTENSIONS = {"rnnkern._core"}  # compiled: imports nothing of ours

# The single deliberate circle (see the module docstring and layers/base.py).
ALLOWED_CIRCLE = {"rnnkern.layers", "rnnkern.layers.base", "rnnkern.layers.conv",
                  "rnnkern.layers.core", "rnnkern.layers.recurrent", "rnnkern.layers.rnn",
                  "rnnkern.layers.wrappers", "rnnkern.layers.normalization",
                  "rnnkern.layers.activation_layers", "rnnkern.layers.reshaping",
                  "rnnkern.layers.attention", "rnnkern.saving", "rnnkern.legacy_h5"}
# Function-local imports of rnnkern modules allowed in the core package (the
# adapters and the benchmark CLI import their optional parts lazily on purpose).
ALLOWED_LOCAL = {("rnnkern.layers.base", "rnnkern.saving"),
                 # the top level's lazy submodules (import rnnkern as keras; keras.datasets)
                 ("rnnkern", "importlib.import_module")}
LAZY_PACKAGES = ("rnnkern.bench", "rnnkern.torch", "rnnkern.keras")
# Modules every other level may import: they import nothing of rnnkern's.
LEAVES = ["rnnkern._common", "rnnkern._version", "rnnkern.config", "rnnkern.utils.naming",
          "rnnkern.utils.tree", "rnnkern.utils.registry", "rnnkern.reference"]


def _modules():
    mods = {}
    for p in sorted(PKG.rglob("*.py")):
        parts = list(p.relative_to(ROOT).with_suffix("").parts)
        is_pkg = parts[-1] == "__init__"
        mods[".".join(parts[:-1] if is_pkg else parts)] = (p, is_pkg)
    return mods


def _targets(mods, importer, is_pkg, node):
    """The rnnkern modules an import statement runs."""
    if isinstance(node, ast.Import):
        names = [a.name for a in node.names]
    else:
        base = importer.split(".") if is_pkg else importer.split(".")[:-1]
        if node.level:
            base = base[:len(base) - (node.level - 1)]
            prefix = ".".join(base + ([node.module] if node.module else []))
        else:
            prefix = node.module or ""
        names = []
        for a in node.names:
            cand = f"{prefix}.{a.name}"
            names.append(cand if cand in mods or cand in EXTENSIONS else prefix)
    out = set()
    for t in names:
        if t.split(".")[0] != "rnnkern" or t in EXTENSIONS:
            continue
        while t and t not in mods:
            t = t.rpartition(".")[0]
        if not t or t == importer:
            continue
        out.add(t)
        parent = t.rpartition(".")[0]
        while parent and parent != "rnnkern":
            if not (importer == parent or importer.startswith(parent + ".")):
                out.add(parent)
            parent = parent.rpartition(".")[0]
    return out


def import_graph():
    """(edges: module -> modules it imports, local: (module, target) of every
    function-local import)."""
    mods = _modules()
    edges = {m: set() for m in mods}
    local = set()
    for m, (path, is_pkg) in mods.items():
        tree = ast.parse(path.read_text(), str(path))
        in_function = set()
        for fn in ast.walk(tree):
            if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                in_function.update(id(n) for n in ast.walk(fn)
                                   if isinstance(n, (ast.Import, ast.ImportFrom)))
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                ts = _targets(mods, m, is_pkg, node)
                edges[m] |= ts
                if id(node) in in_function:
                    local |= {(m, t) for t in ts}
            elif (isinstance(node, ast.Call) and getattr(node.func, "attr", None)
                  == "import_module"):
                local.add((m, "importlib.import_module"))
    return edges, local


def strongly_connected(edges):
    """Tarjan's components of the graph, largest first."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = set()
            while True:
                w = stack.pop()
                on.discard(w)
                comp.add(w)
                if w == v:
                    break
            out.append(comp)

    for v in edges:
        if v not in index:
            visit(v)
    return sorted(out, key=len, reverse=True)


def test_the_only_import_circle_is_the_deliberate_one():
    edges, _ = import_graph()
    circles = [c for c in strongly_connected(edges) if len(c) > 1]
    assert circles, "no circle at all: shrink ALLOWED_CIRCLE in this test to match"
    assert circles[0] == ALLOWED_CIRCLE, (
        f"the import circle is now {sorted(circles[0])}; allowed: {sorted(ALLOWED_CIRCLE)}")
    assert circles[1:] == [], f"a second import circle: {[sorted(c) for c in circles[1:]]}"


def test_no_deferred_imports_in_the_core_package():
    _, local = import_graph()
    core = {(m, t) for m, t in local if not m.startswith(LAZY_PACKAGES)}
    assert core == ALLOWED_LOCAL, (
        f"function-local imports of rnnkern modules: {sorted(core - ALLOWED_LOCAL)} are new; "
        "import at the top of the module (a helper that needs a deferred import lives at "
        "the wrong level)")


@pytest.mark.parametrize("leaf", LEAVES)
def test_leaf_modules_import_nothing_of_ours(leaf):
    edges, _ = import_graph()
    assert edges[leaf] == set()


def test_layer_base_registry_knows_neither_layers_nor_models():
    edges, _ = import_graph()
    assert not {t for t in edges["rnnkern.layers.base"]
                if t.startswith(("rnnkern.models", "rnnkern.layers."))} - {"rnnkern.saving"}


@pytest.mark.parametrize("statement", [
    "import rnnkern",
    "import rnnkern.saving",
    "import rnnkern.models",
    "import rnnkern.models.training",
    "import rnnkern.losses, rnnkern.metrics",
    "import rnnkern.optimizers",
    "import rnnkern.callbacks",
    "import rnnkern.utils.registry",
    "from rnnkern.layers.base import (Layer, floatx, make_rng, set_global_seed, clear_session,"
    " auto_name, to_snake_case, flatten, map_structure, pack_as, serialize_layer,"
    " deserialize_layer, _float64_for_tests)",
    "from rnnkern.config import floatx, make_rng",
    "from rnnkern.utils.naming import auto_name",
])
def test_imports_alone_in_a_fresh_interpreter(statement):
    r = subprocess.run([sys.executable, "-c", statement], cwd=ROOT, capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stderr


def test_moved_helpers_are_the_same_objects_at_their_old_paths():
    from rnnkern import config
    from rnnkern.layers import base
    from rnnkern.utils import naming, registry, tree
    for mod, names in ((config, ["floatx", "_float64_for_tests", "set_global_seed",
                                 "make_rng"]),
                       (naming, ["to_snake_case", "uniquify", "auto_name", "clear_session"]),
                       (tree, ["flatten", "map_structure", "pack_as"]),
                       (registry, ["serialize_layer", "deserialize_layer"])):
        for n in names:
            assert getattr(base, n) is getattr(mod, n), n


def test_the_registry_fills_itself():
    import rnnkern
    from rnnkern.utils.registry import registered_class
    for name in rnnkern.layers.__all__:
        obj = getattr(rnnkern.layers, name)
        if isinstance(obj, type) and issubclass(obj, rnnkern.layers.Layer):
            assert registered_class(name) is obj
    assert registered_class("Sequential") is rnnkern.models.Sequential
    assert registered_class("Model") is rnnkern.models.Model
    assert registered_class("Functional") is rnnkern.models.Model
