"""rnnkern.utils.get_file and rnnkern.datasets (imdb, reuters, mnist), never on the
network: every download is from a local file:// URL (an opener that refuses any
other URL is in place for every test), the cache is a tmp dir ($KERAS_HOME), and
the datasets are small files of Keras' format made here. load_data is compared
with Keras' own load_data reading the same files (Keras checks its real files'
hashes and would download them again: that check is switched off for it), and
with a plain-Python reading of Keras' rules where Keras is absent. Hostile files:
a pickle that would call os.system, archives whose members escape the target
directory, zip bombs, headers declaring more than the file holds."""
import hashlib
import io
import json
import os
import pathlib
import pickle
import tarfile
import urllib.request
import zipfile

import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "torch")

from helpers import keras_or_skip
from rnnkern.datasets import _npz, imdb, mnist, reuters
from rnnkern.utils.file_utils import SavedFileError
from rnnkern.utils import file_utils
from rnnkern.utils.file_utils import get_file

KERAS_ORIGIN = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"


class NetworkRefused(AssertionError):
    pass


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """file:// only; the URLs asked for anything else are recorded, then refused."""
    asked = []

    def opener(url, *a, **k):
        if not url.startswith("file://"):
            asked.append(url)
            raise NetworkRefused(f"test asked for {url}")
        return urllib.request.urlopen(url, *a, **k)

    monkeypatch.setattr(file_utils, "_urlopen", opener)
    return asked


@pytest.fixture
def home(tmp_path, monkeypatch):
    """An empty Keras home: $KERAS_HOME, for rnnkern and (while the test runs) Keras."""
    h = tmp_path / "keras_home"
    h.mkdir()
    monkeypatch.setenv("KERAS_HOME", str(h))
    return h


def url(path):
    return pathlib.Path(path).as_uri()


def sha256(path):
    return hashlib.sha256(pathlib.Path(path).read_bytes()).hexdigest()


def leftovers(directory):
    """Temporary files left behind (the downloads' are hidden files)."""
    return [p.name for p in pathlib.Path(directory).iterdir() if p.name.startswith(".")]


# ------------------------------------------------------------------- get_file

def test_get_file_downloads_once_into_keras_home(home, tmp_path, capsys):
    src = tmp_path / "words.txt"
    src.write_bytes(b"first")
    path = get_file(origin=url(src))                       # fname from the URL
    assert path == str(home / "datasets" / "words.txt")
    assert pathlib.Path(path).read_bytes() == b"first"
    assert "Downloading data from file://" in capsys.readouterr().out
    src.write_bytes(b"second")
    assert get_file("words.txt", url(src)) == path          # cached: not fetched again
    assert pathlib.Path(path).read_bytes() == b"first"
    # a hash the cached file does not match: downloaded again
    get_file("words.txt", url(src), file_hash=hashlib.md5(b"second").hexdigest())
    assert pathlib.Path(path).read_bytes() == b"second"
    assert "file hash does not match the original value" in capsys.readouterr().out
    get_file("words.txt", url(src), force_download=True)
    assert leftovers(home / "datasets") == []


def test_get_file_hashes_cache_dir_and_arguments(home, tmp_path):
    src = tmp_path / "a.bin"
    src.write_bytes(b"payload")
    sha, md5 = hashlib.sha256(b"payload").hexdigest(), hashlib.md5(b"payload").hexdigest()
    other = tmp_path / "cache"
    p = get_file("a.bin", url(src), file_hash=sha, cache_dir=str(other))          # auto: sha256
    assert p == str(other / "datasets" / "a.bin")
    p = get_file("b.bin", url(src), md5_hash=md5, cache_dir=other, cache_subdir="x")
    assert p == str(other / "x" / "b.bin")
    absolute = tmp_path / "abs"
    p = get_file("c.bin", url(src), file_hash=md5, hash_algorithm="md5",
                 cache_subdir=str(absolute))
    assert p == str(absolute / "c.bin")
    assert file_utils.validate_file(p, sha) and file_utils.validate_file(p, md5)
    assert file_utils.hash_file(p) == sha
    with pytest.raises(ValueError, match="origin"):
        get_file("a.bin")
    with pytest.raises(ValueError, match="Paths are no longer accepted"):
        get_file("sub/a.bin", url(src))
    with pytest.raises(ValueError, match="Can't parse the file name"):
        get_file(origin="file:///")
    with pytest.raises(ValueError, match="hash_algorithm"):
        get_file("a.bin", url(src), hash_algorithm="sha1")
    with pytest.raises(ValueError, match="archive_format"):
        get_file("a.bin", url(src), extract=True, archive_format="rar")


def test_get_file_bad_download_leaves_nothing(home, tmp_path, monkeypatch):
    """A wrong hash, a missing source, a download cut short: the final name is
    never written, no temporary file stays, and a good cached copy survives."""
    src = tmp_path / "d.bin"
    src.write_bytes(b"good")
    datasets = home / "datasets"
    with pytest.raises(ValueError, match="Incomplete or corrupted file detected"):
        get_file("d.bin", url(src), file_hash="0" * 64)
    assert not (datasets / "d.bin").exists() and leftovers(datasets) == []
    with pytest.raises(OSError, match="URL fetch failure on file://"):
        get_file("e.bin", url(tmp_path / "missing.bin"))
    assert not (datasets / "e.bin").exists() and leftovers(datasets) == []

    good = get_file("d.bin", url(src))

    class Short(io.BytesIO):  # announces 100 bytes, sends 4
        headers = {"Content-Length": "100"}

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    class Broken(Short):  # the connection drops mid-way
        def read(self, n=-1):
            if self.tell():
                raise ConnectionResetError("reset by peer")
            return super().read(2)

    for response, match in ((Short, "stopped after 4 of its 100 bytes"), (Broken, "reset")):
        monkeypatch.setattr(file_utils, "_urlopen", lambda u, r=response: r(b"evil"))
        with pytest.raises(OSError, match=match):
            get_file("d.bin", "https://example.invalid/d.bin", force_download=True)
        assert pathlib.Path(good).read_bytes() == b"good" and leftovers(datasets) == []


def test_get_file_cache_fallbacks(tmp_path, monkeypatch):
    monkeypatch.delenv("KERAS_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "me"))
    (tmp_path / "me").mkdir()
    assert file_utils.keras_home() == str(tmp_path / "me" / ".keras")
    src = tmp_path / "f.txt"
    src.write_bytes(b"x")
    assert get_file("f.txt", url(src)) == str(tmp_path / "me" / ".keras" / "datasets" / "f.txt")
    # a cache dir that cannot be written: Keras' /tmp/.keras (here a tmp stand-in)
    locked = str(tmp_path / "locked")
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, m: False if str(p).startswith(locked)
                        else real_access(p, m))
    monkeypatch.setattr(file_utils, "_fallback_dir", lambda: str(tmp_path / "fallback"))
    assert get_file("f.txt", url(src), cache_dir=locked) == \
        str(tmp_path / "fallback" / "datasets" / "f.txt")
    monkeypatch.setattr(os, "access", lambda p, m: False)
    assert file_utils.keras_home() == "/tmp/.keras"   # home not writable: Keras' choice


def make_tar(path, members, mode="w:gz"):
    """members: (TarInfo fields, data or None)."""
    with tarfile.open(path, mode) as tar:
        for fields, data in members:
            info = tarfile.TarInfo(fields.pop("name"))
            for k, v in fields.items():
                setattr(info, k, v)
            if data is not None:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)


def test_get_file_extracts_tar_and_zip(home, tmp_path):
    tgz = tmp_path / "pack.tar.gz"
    make_tar(tgz, [({"name": "pack/a.txt"}, b"A"),
                   ({"name": "pack/sub", "type": tarfile.DIRTYPE}, None),
                   ({"name": "pack/sub/b.txt"}, b"B"),
                   ({"name": "pack/link", "type": tarfile.SYMTYPE, "linkname": "sub/b.txt"},
                    None)])
    d = get_file("pack.tar.gz", url(tgz), extract=True)      # fname with ".": <stem>_extracted
    assert d == str(home / "datasets" / "pack_extracted")
    assert (pathlib.Path(d) / "pack" / "link").read_bytes() == b"B"
    assert (home / "datasets" / "pack.tar.gz").exists()
    d = get_file("pack2", url(tgz), untar=True)               # no ".": <fname>, <fname>_archive
    assert d == str(home / "datasets" / "pack2")
    assert (home / "datasets" / "pack2_archive").exists()
    assert (pathlib.Path(d) / "pack" / "sub" / "b.txt").read_bytes() == b"B"
    z = tmp_path / "z.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("dir/c.txt", "C")
    d = get_file(origin=url(z), extract=True, archive_format="zip")   # from the URL: z.zip_archive
    assert d == str(home / "datasets" / "z.zip")
    assert (pathlib.Path(d) / "dir" / "c.txt").read_text() == "C"
    with pytest.warns(UserWarning, match="Could not extract archive"):
        get_file("z2", url(z), extract=True, archive_format="tar")
    cut = tmp_path / "cut.tar"
    make_tar(cut, [({"name": f"f{i}.bin"}, bytes(range(256)) * 40) for i in range(3)], "w")
    cut.write_bytes(cut.read_bytes()[:15000])   # the last member cut short
    with pytest.raises(SavedFileError, match="cut.tar' is a damaged archive"):
        get_file("cut.tar", url(cut), extract=True)
    assert not (home / "datasets" / "cut_extracted").exists()


def test_get_file_paths_and_extraction_match_keras(tmp_path):
    """Keras' get_file on the same local files: the same paths returned, the
    same files extracted."""
    keras_or_skip()
    from keras.src.utils.file_utils import get_file as keras_get_file
    tgz = tmp_path / "pack.tar.gz"
    make_tar(tgz, [({"name": "pack/a.txt"}, b"A"), ({"name": "b.txt"}, b"B")])
    z = tmp_path / "z.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("dir/c.txt", "C")
    txt = tmp_path / "t.txt"
    txt.write_text("T")
    tgz2 = tmp_path / "other.tar.gz"
    tgz2.write_bytes(tgz.read_bytes())
    z2 = tmp_path / "z2.zip"
    z2.write_bytes(z.read_bytes())
    cases = [(None, txt, {}), ("named.txt", txt, {}), ("pack.tar.gz", tgz, {"extract": True}),
             ("pack", tgz, {"extract": True}), (None, tgz2, {"extract": True}),
             ("p2", tgz, {"untar": True}), ("z.zip", z, {"extract": True}),
             (None, z2, {"extract": True, "archive_format": ["zip"]}),
             ("t", txt, {"cache_subdir": "sub"})]
    ours_dir, theirs_dir = tmp_path / "ours", tmp_path / "theirs"
    theirs_dir.mkdir()   # (Keras would use /tmp/.keras for a cache_dir that does not exist)

    def tree(root):
        return sorted(str(p.relative_to(root)) for p in pathlib.Path(root).rglob("*"))

    for fname, src, kw in cases:
        ours = get_file(fname, url(src), cache_dir=str(ours_dir), **kw)
        theirs = keras_get_file(fname, url(src), cache_dir=str(theirs_dir), **kw)
        assert os.path.relpath(ours, ours_dir) == os.path.relpath(theirs, theirs_dir)
    assert tree(ours_dir) == tree(theirs_dir)


HOSTILE_TARS = {
    "dotdot": ([({"name": "../evil.txt"}, b"x")], r"'\.\./evil.txt' has a '\.\.' component"),
    "absolute": ([({"name": "/tmp/evil.txt"}, b"x")], "has an absolute path"),
    "symlink_out": ([({"name": "l", "type": tarfile.SYMTYPE, "linkname": "/etc"}, None)],
                    "is a link to '/etc', an absolute path"),
    "symlink_up": ([({"name": "a/l", "type": tarfile.SYMTYPE, "linkname": "../.."}, None)],
                   "outside the target directory"),
    "through_link": ([({"name": "l", "type": tarfile.SYMTYPE, "linkname": "."}, None),
                      ({"name": "l/x.txt"}, b"x")], "lies below 'l', a link"),
    "chained_links": ([({"name": "d/l1", "type": tarfile.SYMTYPE, "linkname": ".."}, None),
                       ({"name": "l2", "type": tarfile.SYMTYPE, "linkname": "d/l1/.."}, None)],
                      "through another link"),
    "hardlink_out": ([({"name": "h", "type": tarfile.LNKTYPE, "linkname": "../../etc/passwd"},
                       None)], "outside the target directory"),
    "device": ([({"name": "dev", "type": tarfile.CHRTYPE, "devmajor": 1, "devminor": 3},
                 None)], "a device, a FIFO or another special file"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE_TARS))
def test_hostile_tar_is_refused_whole(home, tmp_path, case):
    members, match = HOSTILE_TARS[case]
    tgz = tmp_path / "hostile.tar.gz"
    make_tar(tgz, [({"name": "fine.txt"}, b"ok")] + [(dict(f), d) for f, d in members])
    with pytest.raises(SavedFileError, match=match) as e:
        get_file("hostile.tar.gz", url(tgz), extract=True)
    assert "hostile.tar.gz" in str(e.value) and "nothing was extracted" in str(e.value)
    assert not (home / "datasets" / "hostile_extracted").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hostile.tar.gz", "keras_home"]


@pytest.mark.parametrize("name", ["../evil.txt", "/abs/evil.txt", "a/../../evil.txt"])
def test_hostile_zip_is_refused_whole(home, tmp_path, name):
    z = tmp_path / "hostile.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("fine.txt", "ok")
        zf.writestr(zipfile.ZipInfo(name), "x")
    with pytest.raises(SavedFileError, match="hostile.zip.*refused, nothing was extracted"):
        get_file("hostile.zip", url(z), extract=True)
    assert not (home / "datasets" / "hostile_extracted").exists()


# ------------------------------------------------------------------- datasets

def sequences(rng, n, lo=1, hi=14, vocab=40, equal=False):
    """An object array of n lists of Python ints (IMDB's / Reuters' format)."""
    a = np.empty(n, dtype=object)
    for i in range(n):
        k = hi - 1 if equal else int(rng.integers(lo, hi))
        a[i] = [int(v) for v in rng.integers(1, vocab, k)]
    return a


@pytest.fixture
def files(home, monkeypatch):
    """Small imdb.npz, reuters.npz, mnist.npz and word indices in the cache, and
    rnnkern's loaders told their hashes (Keras' are those of the real files)."""
    rng = np.random.default_rng(5)
    d = home / "datasets"
    d.mkdir()
    np.savez(d / "imdb.npz", x_train=sequences(rng, 37), y_train=rng.integers(0, 2, 37),
             x_test=sequences(rng, 29), y_test=rng.integers(0, 2, 29))
    np.savez(d / "reuters.npz", x=sequences(rng, 51), y=rng.integers(0, 46, 51))
    np.savez(d / "equal.npz", x=sequences(rng, 9, equal=True), y=rng.integers(0, 46, 9))
    np.savez(d / "mnist.npz", x_train=rng.integers(0, 256, (6, 28, 28), dtype=np.uint8),
             y_train=rng.integers(0, 10, 6, dtype=np.uint8),
             x_test=rng.integers(0, 256, (4, 28, 28), dtype=np.uint8),
             y_test=rng.integers(0, 10, 4, dtype=np.uint8))
    for name in ("imdb_word_index.json", "reuters_word_index.json"):
        (d / name).write_text(json.dumps({"the": 1, "and": 2, name[:4]: 3}))
    for mod, data, index in ((imdb, "imdb.npz", "imdb_word_index.json"),
                             (reuters, "reuters.npz", "reuters_word_index.json"),
                             (mnist, "mnist.npz", None)):
        monkeypatch.setattr(mod, "_DATA_HASH", sha256(d / data))
        if index:
            monkeypatch.setattr(mod, "_INDEX_HASH", hashlib.md5((d / index).read_bytes())
                                .hexdigest())
    return d


@pytest.fixture
def keras_datasets(home, monkeypatch):
    """Keras' datasets, reading the tmp cache, without their hash check and
    without the network."""
    keras = keras_or_skip()
    from keras.src.backend import config
    from keras.src.utils import file_utils as kfu
    monkeypatch.setattr(config, "_KERAS_DIR", str(home))   # Keras reads $KERAS_HOME at import
    monkeypatch.setattr(kfu, "validate_file", lambda *a, **k: True)

    def refuse(u, *a, **k):
        raise NetworkRefused(f"Keras asked for {u}")

    monkeypatch.setattr(kfu, "urlretrieve", refuse)
    return keras.datasets


def reference_sequences(xs, labels, start_char, index_from, maxlen, num_words, skip_top,
                        oov_char):
    """Keras' rules as read from keras/src/datasets/imdb.py, one word at a time."""
    out, kept = [], []
    for x, y in zip(xs, labels):
        x = [w + index_from if (start_char is not None or index_from) else w for w in x]
        if start_char is not None:
            x = [start_char] + x
        if maxlen and len(x) >= maxlen:          # only the shorter ones are kept
            continue
        out.append(x)
        kept.append(y)
    limit = num_words or max(max(x) for x in out)   # the largest index itself
    if oov_char is not None:
        out = [[w if skip_top <= w < limit else oov_char for w in x] for x in out]
    else:
        out = [[w for w in x if skip_top <= w < limit] for x in out]
    return out, kept


def reference_imdb(path, seed=113, **kw):
    f = np.load(path, allow_pickle=True)   # our own test file
    rng = np.random.RandomState(seed)
    parts = []
    for xk, yk in (("x_train", "y_train"), ("x_test", "y_test")):
        order = np.arange(len(f[xk]))
        rng.shuffle(order)
        parts.append((f[xk][order], f[yk][order]))
    xs, ys = reference_sequences(list(parts[0][0]) + list(parts[1][0]),
                                 list(parts[0][1]) + list(parts[1][1]), **kw)
    n = sum(1 for x in parts[0][0] if not kw["maxlen"] or
            len(x) + (kw["start_char"] is not None) < kw["maxlen"])
    return xs[:n], ys[:n], xs[n:], ys[n:]


def reference_reuters(path, seed=113, test_split=0.2, **kw):
    f = np.load(path, allow_pickle=True)
    order = np.arange(len(f["x"]))
    np.random.RandomState(seed).shuffle(order)
    xs, ys = reference_sequences(list(f["x"][order]), list(f["y"][order]), **kw)
    k = int(len(xs) * (1 - test_split))
    return xs[:k], ys[:k], xs[k:], ys[k:]


def assert_same(ours, theirs):
    (x, y), (xt, yt) = ours
    (kx, ky), (kxt, kyt) = theirs
    for a, b in ((x, kx), (xt, kxt)):
        assert a.dtype == b.dtype == object and a.shape == b.shape
        assert [list(s) for s in a] == [list(s) for s in b]
        assert all(type(w) is int for s in a for w in s)
    for a, b in ((y, ky), (yt, kyt)):
        assert a.dtype == b.dtype and np.array_equal(a, b)


DEFAULTS = dict(start_char=1, index_from=3, maxlen=None, num_words=None, skip_top=0, oov_char=2)
CASES = [
    {},
    {"num_words": 20},
    {"num_words": 25, "skip_top": 6},
    {"skip_top": 9},
    {"maxlen": 9},
    {"maxlen": 11, "num_words": 18, "oov_char": None},
    {"oov_char": None, "skip_top": 5},
    {"start_char": None},
    {"start_char": None, "index_from": 0},
    {"start_char": 7, "index_from": 10, "oov_char": 0, "num_words": 30},
    {"index_from": 0},
    {"seed": 0},
    {"seed": 2024, "maxlen": 8, "num_words": 15, "skip_top": 4},
]


@pytest.mark.parametrize("kw", CASES, ids=[str(i) for i in range(len(CASES))])
def test_imdb_matches_keras_rules(files, kw):
    ours = imdb.load_data(**kw)
    x, y, xt, yt = reference_imdb(files / "imdb.npz", **{**DEFAULTS, **kw})
    assert [list(s) for s in ours[0][0]] == x and [list(s) for s in ours[1][0]] == xt
    assert list(ours[0][1]) == y and list(ours[1][1]) == yt


@pytest.mark.parametrize("kw", CASES + [{"test_split": 0.0}, {"test_split": 1.0},
                                        {"test_split": 0.33, "maxlen": 10}],
                         ids=[str(i) for i in range(len(CASES) + 3)])
def test_reuters_matches_keras_rules(files, kw):
    ours = reuters.load_data(**kw)
    x, y, xt, yt = reference_reuters(files / "reuters.npz", **{**DEFAULTS, **kw})
    assert [list(s) for s in ours[0][0]] == x and [list(s) for s in ours[1][0]] == xt
    assert list(ours[0][1]) == y and list(ours[1][1]) == yt


def test_datasets_match_keras(files, keras_datasets, monkeypatch):
    """The same files through Keras' own load_data: the same arrays (dtypes,
    shapes, values, the 2-D object array NumPy makes of equal-length lists)."""
    for kw in CASES:
        assert_same(imdb.load_data(**kw), keras_datasets.imdb.load_data(**kw))
        assert_same(reuters.load_data(**kw), keras_datasets.reuters.load_data(**kw))
    for split in (0.0, 0.5, 1.0):
        assert_same(reuters.load_data(test_split=split),
                    keras_datasets.reuters.load_data(test_split=split))
    monkeypatch.setattr(reuters, "_DATA_HASH", sha256(files / "equal.npz"))
    ours = reuters.load_data("equal.npz", test_split=0.3)
    assert ours[0][0].ndim == 2
    assert_same(ours, keras_datasets.reuters.load_data("equal.npz", test_split=0.3))
    (a, b), (c, d) = mnist.load_data()
    (ka, kb), (kc, kd) = keras_datasets.mnist.load_data()
    for u, v in ((a, ka), (b, kb), (c, kc), (d, kd)):
        assert u.dtype == v.dtype == np.uint8 and np.array_equal(u, v)
    assert imdb.get_word_index() == keras_datasets.imdb.get_word_index()
    assert reuters.get_word_index() == keras_datasets.reuters.get_word_index()
    assert reuters.get_label_names() == keras_datasets.reuters.get_label_names()


def test_keras_files_names_origins_and_hashes(home, no_network):
    """rnnkern asks for Keras' files: same names, origins and hashes (a cached
    file whose hash is not Keras' is downloaded again, from Keras' origin)."""
    import importlib
    import inspect
    keras_or_skip()
    for ours in (imdb, reuters, mnist):
        name = ours.__name__.rsplit(".", 1)[1]
        source = inspect.getsource(importlib.import_module(f"keras.src.datasets.{name}"))
        assert ours._DATA_HASH in source and ours._ORIGIN in source
        if hasattr(ours, "_INDEX_HASH"):
            assert ours._INDEX_HASH in source
    d = home / "datasets"
    d.mkdir()
    (d / "imdb.npz").write_bytes(b"an old copy")
    calls = [(imdb.load_data, "imdb.npz"), (imdb.get_word_index, "imdb_word_index.json"),
             (reuters.load_data, "reuters.npz"),
             (reuters.get_word_index, "reuters_word_index.json"), (mnist.load_data, "mnist.npz")]
    for fn, name in calls:
        with pytest.raises(NetworkRefused):
            fn()
        assert no_network[-1] == KERAS_ORIGIN + name
    assert (d / "imdb.npz").read_bytes() == b"an old copy"
    assert sorted(p.name for p in d.iterdir()) == ["imdb.npz"]


def test_bad_arguments(files):
    with pytest.raises(TypeError, match="num_words"):
        imdb.load_data(num_words="100")
    with pytest.raises(TypeError, match="skip_top"):
        reuters.load_data(skip_top=None)
    with pytest.raises(ValueError, match="maxlen"):
        imdb.load_data(maxlen=-1)
    with pytest.raises(TypeError, match="nb_words"):
        imdb.load_data(nb_words=10)
    with pytest.raises(ValueError, match="test_split"):
        reuters.load_data(test_split=1.5)
    with pytest.raises(ValueError, match="no sequence was kept"):
        imdb.load_data(maxlen=2)


# ------------------------------------------------------------------- hostile files

class Gadget:
    """Pickles as a call of os.system (never unpickled here but through rnnkern)."""

    def __init__(self, command):
        self.command = command

    def __reduce__(self):
        return os.system, (self.command,)


def write_npz(path, members):
    with zipfile.ZipFile(path, "w") as z:
        for name, data in members.items():
            z.writestr(name + ".npy", data)


def npy_bytes(array):
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=True)
    return buf.getvalue()


def test_hostile_pickle_runs_nothing(files, tmp_path, monkeypatch):
    sentinel = tmp_path / "pwned"
    evil = np.empty(2, dtype=object)
    evil[0], evil[1] = [1, 2], Gadget(f"touch {sentinel}")
    good = npy_bytes(np.zeros(2, np.int64))
    write_npz(files / "imdb.npz", {"x_train": npy_bytes(evil), "y_train": good,
                                   "x_test": npy_bytes(evil), "y_test": good})
    path = str(files / "imdb.npz")
    with pytest.raises(SavedFileError, match=r"asks for (posix|os)\.system.*nothing run") as e:
        _npz.load_npz(path, ["x_train"], allow_objects=True)
    assert path in str(e.value)
    # the same through load_data (its hash made to match the hostile file)
    monkeypatch.setattr(imdb, "_DATA_HASH", sha256(path))
    with pytest.raises(SavedFileError, match=r"system"):
        imdb.load_data()
    assert not sentinel.exists()
    # builtins.eval by a hand-made pickle, and a pickle that is no array
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": "|O", "fortran_order": False, "shape": (1,)})
    payload = b"cbuiltins\neval\n(Vprint(1)\ntR."
    write_npz(files / "e.npz", {"x": header.getvalue() + payload})
    with pytest.raises(SavedFileError, match="builtins.eval"):
        _npz.load_npz(str(files / "e.npz"), ["x"], allow_objects=True)
    write_npz(files / "n.npz", {"x": header.getvalue() + pickle.dumps([1, 2])})
    with pytest.raises(SavedFileError, match="not an array of that shape"):
        _npz.load_npz(str(files / "n.npz"), ["x"], allow_objects=True)


def test_hostile_npz_refused_unread(files, monkeypatch):
    d = files
    # mnist holds numbers: an object array there is refused before any unpickling
    write_npz(d / "o.npz", {"x_train": npy_bytes(np.array([[1]], dtype=object))})
    with pytest.raises(SavedFileError, match="object array.*refused unread"):
        _npz.load_npz(str(d / "o.npz"), ["x_train"])
    # a header declaring 10^12 bytes over a few
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": "<f8", "fortran_order": False, "shape": (10**6, 10**5)})
    write_npz(d / "big.npz", {"x": header.getvalue() + b"\0" * 64})
    with pytest.raises(SavedFileError, match="declares a .* array .* refused unread"):
        _npz.load_npz(str(d / "big.npz"), ["x"])
    # a member that decompresses past the limit (the limit made small here)
    monkeypatch.setattr(_npz, "_MAX_MEMBER_BYTES", 4096)
    with zipfile.ZipFile(d / "bomb.npz", "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("x.npy", npy_bytes(np.zeros(10000, np.uint8)))
    assert os.path.getsize(d / "bomb.npz") < 4096
    with pytest.raises(SavedFileError, match="would decompress to 10,128 bytes"):
        _npz.load_npz(str(d / "bomb.npz"), ["x"])
    (d / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(SavedFileError, match="is not an .npz archive"):
        _npz.load_npz(str(d / "junk.npz"), ["x"])
    with pytest.raises(SavedFileError, match=r"lacks the arrays \['y'\]"):
        _npz.load_npz(str(d / "bomb.npz"), ["y"])
    write_npz(d / "ragged.npz", {"x": npy_bytes(np.array([[1.5], "ab"], dtype=object)),
                                 "y": npy_bytes(np.zeros(2, np.int64))})
    monkeypatch.setattr(reuters, "_DATA_HASH", sha256(d / "ragged.npz"))
    with pytest.raises(SavedFileError, match="x must hold sequences of integers"):
        reuters.load_data("ragged.npz")
    (d / "imdb_word_index.json").write_text("[1, 2]")
    monkeypatch.setattr(imdb, "_INDEX_HASH",
                        hashlib.md5(b"[1, 2]").hexdigest())
    with pytest.raises(SavedFileError, match="must hold a JSON object"):
        imdb.get_word_index()
