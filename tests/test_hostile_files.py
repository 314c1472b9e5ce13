"""Files made by others, malformed on purpose (issue 22 part 5): every loader checks
sizes before reading (zip members' declared sizes, arrays' declared shapes), runs no
code from a file, and fails with one exception type, SavedFileError (a ValueError),
whose message names the file and what is wrong; a config asking for more memory than
the machine has is a MemoryError naming the layer; saved files keep the mode of the
file they replace."""
import io
import json
import os
import stat
import tracemalloc
import zipfile

import numpy as np
import pytest

import rnnkern as rk
from rnnkern import saving
from rnnkern.saving import SavedFileError

h5py = pytest.importorskip("h5py")


def small_model():
    rk.utils.clear_session()
    m = rk.Sequential([rk.layers.Input((4, 3)), rk.layers.LSTM(5), rk.layers.Dense(2)])
    m.compile(optimizer="adam", loss="mse")
    return m


def rewrite_zip(src, dst, replace=None, add=None, drop=()):
    """A copy of archive src with members replaced, added or dropped."""
    replace, add = replace or {}, add or {}
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as zout:
        for name in zin.namelist():
            if name in drop:
                continue
            zout.writestr(name, replace.get(name, zin.read(name)))
        for name, data in add.items():
            zout.writestr(name, data)


def npy_header_only(shape, dtype="<f4", payload=b"\0" * 16):
    """The bytes of a .npy member that declares ``shape`` but holds a few bytes."""
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        buf, {"descr": dtype, "fortran_order": False, "shape": shape})
    return buf.getvalue() + payload


@pytest.fixture
def saved(tmp_path):
    m = small_model()
    paths = {}
    for ext in (".keras", ".rnnkern"):
        paths[ext] = str(tmp_path / f"m{ext}")
        m.save(paths[ext])
    paths[".npz"] = str(tmp_path / "w.npz")
    m.save_weights(paths[".npz"])
    paths[".h5"] = str(tmp_path / "w.weights.h5")
    m.save_weights(paths[".h5"])
    return m, paths


def refused(fn, match):
    """fn() is refused with a SavedFileError matching match, before it reads what
    the file declares: Python's and NumPy's allocations (traced) stay small."""
    tracemalloc.start()
    try:
        with pytest.raises(SavedFileError, match=match):
            fn()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 64 << 20, f"{peak} bytes allocated while refusing"   # refused, not read


@pytest.mark.parametrize("ext", [".keras", ".rnnkern"])
def test_zip_bombs_are_refused_unread(saved, tmp_path, ext):
    m, paths = saved
    bomb = str(tmp_path / f"bomb{ext}")
    # config.json that inflates past its 64 MiB limit (80 MiB of spaces: ~80 KB stored)
    rewrite_zip(paths[ext], bomb, replace={"config.json": b" " * (80 << 20)})
    assert os.path.getsize(bomb) < 1 << 20
    refused(lambda: rk.models.load_model(bomb), r"config.json would decompress to")
    # a weights member far larger than the model could ever need
    member = "model.weights.h5" if ext == ".keras" else "model.weights.npz"
    rewrite_zip(paths[ext], bomb, replace={member: b"\0" * (40 << 20)})
    refused(lambda: rk.models.load_model(bomb), member + " would decompress to")


def test_declared_sizes_are_checked_before_reading(saved, tmp_path):
    m, paths = saved
    # an .npz whose kernel declares (3, 2**27) float32 (1.5 GiB) in a few bytes
    keys = sorted(np.load(paths[".npz"]).files)
    bad = str(tmp_path / "big.npz")
    with zipfile.ZipFile(bad, "w") as z:
        with np.load(paths[".npz"]) as w:
            for i, k in enumerate(keys):
                data = npy_header_only((3, 2 ** 27)) if i == 0 else None
                if data is None:
                    buf = io.BytesIO()
                    np.lib.format.write_array(buf, w[k])
                    data = buf.getvalue()
                z.writestr(k + ".npy", data)
    refused(lambda: m.load_weights(bad), r"has shape \(3, 134217728\) in the file")
    # an h5 dataset declared (3, 2**27) where the kernel is (3, 20)
    big_h5 = str(tmp_path / "big.weights.h5")
    with h5py.File(paths[".h5"], "r") as src, h5py.File(big_h5, "w") as dst:
        def copy(name, item):
            if isinstance(item, h5py.Dataset):
                if item.shape == (3, 20):
                    dst.create_dataset(name, shape=(3, 2 ** 27), dtype="f4")
                else:
                    dst.create_dataset(name, data=item[()])
        src.visititems(copy)
    assert os.path.getsize(big_h5) < 1 << 20
    refused(lambda: m.load_weights(big_h5), r"has shape \(3, 134217728\)")
    # object arrays (pickles) are refused unread
    pick = str(tmp_path / "pickle.npz")
    with zipfile.ZipFile(pick, "w") as z:
        for k in keys:
            z.writestr(k + ".npy", npy_header_only((3, 20), dtype="|O"))
    refused(lambda: m.load_weights(pick), r"dtype object.*never unpickles")


@pytest.mark.parametrize("cfg", [
    {"class_name": "Dense", "config": {"name": "huge", "units": 10 ** 12},
     "build": (None, 8)},
    {"class_name": "Embedding", "config": {"name": "vocab", "input_dim": 10 ** 13,
                                           "output_dim": 8}, "build": (None, 4)}])
def test_sizes_beyond_memory_name_the_layer(cfg):
    layer = rk.layers.deserialize({"class_name": cfg["class_name"], "config": cfg["config"]}) \
        if hasattr(rk.layers, "deserialize") else getattr(rk.layers, cfg["class_name"])(
            **{k: v for k, v in cfg["config"].items()})
    with pytest.raises(MemoryError, match=f"of {cfg['class_name']} '{cfg['config']['name']}'"):
        layer.build(cfg["build"])


@pytest.mark.parametrize("content,match", [
    (b"PK\x03\x04 truncated", r"not an \.npz archive"),
    (os.urandom(2048), r"not an \.npz archive"),
])
def test_garbage_npz_is_named(saved, tmp_path, content, match):
    m, _ = saved
    p = str(tmp_path / "bad.npz")
    with open(p, "wb") as f:
        f.write(content)
    with pytest.raises(SavedFileError, match=match) as e:
        m.load_weights(p)
    assert "bad.npz" in str(e.value)


def test_npy_renamed_npz(saved, tmp_path):
    m, _ = saved
    p = str(tmp_path / "single.npz")
    with open(p, "wb") as f:
        np.save(f, np.zeros(3, np.float32))
    with pytest.raises(SavedFileError, match=r"single \.npy array, not an \.npz"):
        m.load_weights(p)


def test_truncated_npz_member(saved, tmp_path):
    m, paths = saved
    data = open(paths[".npz"], "rb").read()
    p = str(tmp_path / "cut.npz")
    with open(p, "wb") as f:
        f.write(data[: len(data) // 2])
    with pytest.raises(SavedFileError, match="cut.npz"):
        m.load_weights(p)


@pytest.mark.parametrize("config,match", [
    (b'{"class_name": "Sequential", "con', r"config.json is not JSON"),
    (b"\xff\xfe\x00garbage", r"config.json is not JSON"),
    (b"[1, 2, 3]", r"must hold a JSON object.*list"),
    (b'"a string"', r"must hold a JSON object.*str"),
    (b"null", r"must hold a JSON object.*NoneType"),
])
def test_bad_configs_are_named(saved, tmp_path, config, match):
    _, paths = saved
    p = str(tmp_path / "cfg.keras")
    rewrite_zip(paths[".keras"], p, replace={"config.json": config})
    with pytest.raises(SavedFileError, match=match) as e:
        rk.models.load_model(p)
    assert "cfg.keras" in str(e.value)


def test_not_a_zip_and_a_damaged_member(saved, tmp_path):
    _, paths = saved
    p = str(tmp_path / "text.keras")
    with open(p, "w") as f:
        f.write("not a model")
    with pytest.raises(SavedFileError, match="not a .keras / .rnnkern file"):
        rk.models.load_model(p)
    d = str(tmp_path / "damaged.keras")
    raw = bytearray(open(paths[".keras"], "rb").read())
    with zipfile.ZipFile(paths[".keras"]) as z:
        info = z.getinfo("model.weights.h5")
    start = info.header_offset + 30 + len(info.filename) + len(info.extra)
    for i in range(start + 10, start + 60):
        raw[i] ^= 0xFF            # flip bytes inside the compressed weights
    open(d, "wb").write(bytes(raw))
    with pytest.raises(SavedFileError, match="damaged.keras"):
        rk.models.load_model(d)


def test_extra_dataset_in_a_keras_file_is_refused(saved, tmp_path):
    _, paths = saved
    with zipfile.ZipFile(paths[".keras"]) as z:
        h5 = z.read("model.weights.h5")
    buf = io.BytesIO(h5)
    with h5py.File(buf, "a") as f:
        f.create_dataset("layers/dense/vars/7", data=np.zeros(3, np.float32))
    p = str(tmp_path / "extra.keras")
    rewrite_zip(paths[".keras"], p, replace={"model.weights.h5": buf.getvalue()})
    with pytest.raises(SavedFileError, match="holds weights the model does not have"):
        rk.models.load_model(p)


@pytest.mark.parametrize("safe_mode", [True, False])
def test_lambda_in_a_file_is_refused_by_rule(saved, tmp_path, safe_mode):
    _, paths = saved
    with zipfile.ZipFile(paths[".keras"]) as z:
        cfg = json.loads(z.read("config.json"))
    planted = {"class_name": "Lambda", "config": {
        "name": "planted", "function": {"class_name": "__lambda__", "config": {
            "code": "4wEAAAAAAAAAAAAAAAEAAAACAAAAQwAAAPMGAAAAdABkAYMBUwApAk7aBXBybmVk",
            "defaults": None, "closure": None}}}}
    cfg["config"]["layers"].insert(1, planted)
    p = str(tmp_path / "lambda.keras")
    rewrite_zip(paths[".keras"], p, replace={"config.json": json.dumps(cfg).encode()})
    with pytest.raises(SavedFileError, match=r"Lambda layer \('planted'\).*never runs code"):
        rk.models.load_model(p, safe_mode=safe_mode)
    with pytest.raises(TypeError, match="safe_mode must be a bool"):
        rk.models.load_model(p, safe_mode="yes")


@pytest.mark.parametrize("ext", [".keras", ".rnnkern", ".npz", ".weights.h5"])
def test_saved_files_keep_the_mode_they_replace(tmp_path, ext):
    m = small_model()
    p = str(tmp_path / f"f{ext}")
    save = m.save if ext in (".keras", ".rnnkern") else m.save_weights
    old = os.umask(0o022)
    try:
        save(p)
        assert stat.S_IMODE(os.stat(p).st_mode) == 0o644   # a new file: the umask's mode
        os.chmod(p, 0o640)
        save(p)
        assert stat.S_IMODE(os.stat(p).st_mode) == 0o640   # a replaced file keeps its mode
    finally:
        os.umask(old)


def test_what_works_still_loads(saved):
    m, paths = saved
    x = np.random.default_rng(0).standard_normal((2, 4, 3)).astype(np.float32)
    want = m.predict(x, verbose=0)
    for ext in (".keras", ".rnnkern"):
        np.testing.assert_array_equal(rk.models.load_model(paths[ext]).predict(x, verbose=0),
                                      want)
    for ext in (".npz", ".h5"):
        other = small_model()
        other.load_weights(paths[ext])
        np.testing.assert_array_equal(other.predict(x, verbose=0), want)
    assert isinstance(saving.SavedFileError("x"), ValueError)


@pytest.mark.parametrize("ext", [".npz", ".weights.h5"])
def test_skip_mismatch_keeps_the_models_weights_of_another_shape(tmp_path, ext):
    """load_weights(skip_mismatch=True), in both formats: weights of the file's shape
    load, a weight of another shape is left unread and the model keeps its own."""
    m = small_model()
    p = str(tmp_path / f"w{ext}")
    m.save_weights(p)
    rk.utils.clear_session()
    other = rk.Sequential([rk.layers.Input((4, 3)), rk.layers.LSTM(5), rk.layers.Dense(3)])
    kept = [w.copy() for w in other.get_weights()]
    with pytest.raises(SavedFileError, match="shape"):
        other.load_weights(p)
    other.load_weights(p, skip_mismatch=True)
    got = other.get_weights()
    for a, b in zip(got[:3], m.get_weights()[:3]):      # the LSTM's: loaded
        np.testing.assert_array_equal(a, b)
    for a, b in zip(got[3:], kept[3:]):                  # the Dense's (2 -> 3 units): kept
        np.testing.assert_array_equal(a, b)
