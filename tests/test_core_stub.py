"""rnnkern/_core.pyi names exactly what the compiled module defines: every public
function and class of _core and of its testing submodule, and each class's
public attributes (a binding added or removed without the stub fails here)."""
import ast
import inspect
import pathlib

import pytest

_core = pytest.importorskip("rnnkern._core", reason="compiled extension not built")

# beside the module these tests import: the source tree's, or an installed wheel's
# (which must ship it, with py.typed, for type checkers)
STUB = pathlib.Path(_core.__file__).resolve().parent / "_core.pyi"


def test_the_package_is_typed():
    assert STUB.is_file() and (STUB.parent / "py.typed").is_file()


def _public(names):
    return {n for n in names if not n.startswith("_")}


def _stub():
    tree = ast.parse(STUB.read_text())
    defs, classes = set(), {}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef):
            defs.add(node.name)
        elif isinstance(node, ast.ClassDef):
            classes[node.name] = {n.name for n in node.body if isinstance(n, ast.FunctionDef)}
        elif isinstance(node, ast.AnnAssign):
            defs.add(node.target.id)
    return defs, classes


def test_stub_names_the_module():
    defs, classes = _stub()
    runtime = _public(n for n in dir(_core) if not inspect.ismodule(getattr(_core, n)))
    assert _public(defs) | _public(classes) == runtime | {"testing"}
    assert set(classes["_Testing"]) == _public(dir(_core.testing))


@pytest.mark.parametrize("cls", ["Backend", "Workspace", "PackedWeights", "DeviceArray",
                                 "Options"])
def test_stub_names_each_class(cls):
    _, classes = _stub()
    runtime = {n for n in vars(getattr(_core, cls)) if not n.startswith("_")}
    assert _public(classes[cls]) == runtime
