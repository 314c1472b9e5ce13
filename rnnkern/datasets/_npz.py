"""Reading the datasets' .npz files without running code from them, and the
word-index encoding IMDB and Reuters share.

IMDB's and Reuters' sequences have different lengths, so their .npz holds
object arrays (``dtype=object``) of Python lists, which NumPy can only store
as a pickle: ``np.load(allow_pickle=True)`` would run whatever a tampered file's
pickle asks for (``os.system`` included). These files are read instead with an
unpickler that resolves only the three names that rebuild an ndarray
(``numpy.ndarray``, ``numpy.dtype`` and ``multiarray._reconstruct``, under
NumPy 1's and 2's module names) -- any other name is refused before it is
imported, as Keras' own loader (keras/src/datasets/npz_utils.py) does.
Number arrays are read with pickling off. Every member's declared size is
checked before it is read (a zip bomb, or a header declaring more than the
member holds, is refused unread); anything wrong is a ``SavedFileError`` (a
ValueError) naming the file.
"""
from __future__ import annotations

import io
import itertools
import json
import os
import pickle
import zipfile
import zlib

import numpy as np

from ..utils.file_utils import SavedFileError

# what one member of a dataset's .npz may decompress to (MNIST's largest is 47 MB)
_MAX_MEMBER_BYTES = 1 << 30
_MAX_JSON_BYTES = 256 << 20

_ARRAY_GLOBALS = frozenset({
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
})


class _ArrayUnpickler(pickle.Unpickler):
    """Resolves only the names that rebuild an ndarray; the values inside
    (lists, ints) need none."""

    def __init__(self, fp, path):
        super().__init__(fp)
        self._path = path

    def find_class(self, module, name):
        if (module, name) in _ARRAY_GLOBALS:
            return super().find_class(module, name)
        raise SavedFileError(f"{self._path!r}: its pickled data asks for {module}.{name}, which "
                             "rebuilding an array never needs: refused, nothing run (a damaged "
                             "or hostile file)")

    def persistent_load(self, pid):
        raise SavedFileError(f"{self._path!r}: its pickled data refers to an outside object: "
                             "refused (a damaged or hostile file)")


def _read_member(z, info, path, allow_objects):
    """One .npy member of an open .npz, checked before it is read."""
    name = info.filename
    if info.file_size > _MAX_MEMBER_BYTES:
        raise SavedFileError(f"{path!r}: {name} would decompress to {info.file_size:,} bytes, "
                             f"more than the {_MAX_MEMBER_BYTES:,} a dataset member may hold: "
                             "refused unread (a damaged or hostile file)")
    try:
        raw = z.read(name)
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, RuntimeError) as e:
        raise SavedFileError(f"{path!r}: {name} is damaged ({e})") from None
    fp = io.BytesIO(raw)
    try:
        version = np.lib.format.read_magic(fp)
        reader = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                  else np.lib.format.read_array_header_2_0)  # 3.0 differs in the text only
        shape, _fortran, dtype = reader(fp)
    except (ValueError, OSError, EOFError) as e:
        raise SavedFileError(f"{path!r}: {name} is not a .npy array ({e})") from None
    if dtype.hasobject and not allow_objects:
        raise SavedFileError(f"{path!r}: {name} is an object array (dtype {dtype}), where this "
                             "dataset holds numbers: refused unread")
    if dtype.hasobject:
        try:
            arr = _ArrayUnpickler(fp, path).load()
        except SavedFileError:
            raise
        except Exception as e:  # whatever a damaged pickle raises
            raise SavedFileError(f"{path!r}: {name} holds a damaged pickle "
                                 f"({type(e).__name__}: {e})") from None
        if not isinstance(arr, np.ndarray) or arr.shape != tuple(shape):
            raise SavedFileError(f"{path!r}: {name} declares shape {tuple(shape)} but its "
                                 "pickled data is not an array of that shape")
        return arr
    count = 1
    for d in shape:
        count *= int(d)
    if count * dtype.itemsize > len(raw) - fp.tell():
        raise SavedFileError(f"{path!r}: {name} declares a {tuple(shape)} {dtype} array "
                             f"({count * dtype.itemsize:,} bytes) but holds "
                             f"{len(raw) - fp.tell():,}: refused unread")
    fp.seek(0)
    try:
        return np.lib.format.read_array(fp, allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        raise SavedFileError(f"{path!r}: {name} is damaged ({e})") from None


def load_npz(path, keys, allow_objects=False):
    """The arrays ``keys`` of the .npz at ``path``, as a dict, read safely;
    ``allow_objects``: object arrays too, through the restricted unpickler."""
    try:
        z = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, EOFError) as e:
        raise SavedFileError(f"{path!r} is not an .npz archive ({e}); delete it to download "
                             "it again") from None
    with z:
        members = {i.filename[:-4]: i for i in z.infolist() if i.filename.endswith(".npy")}
        missing = [k for k in keys if k not in members]
        if missing:
            raise SavedFileError(f"{path!r} lacks the arrays {missing} (it holds "
                                 f"{sorted(members)})")
        return {k: _read_member(z, members[k], path, allow_objects) for k in keys}


def load_json(path):
    """A word index: a JSON object of word -> index."""
    size = os.path.getsize(path)
    if size > _MAX_JSON_BYTES:
        raise SavedFileError(f"{path!r} holds {size:,} bytes, more than a word index's "
                             f"{_MAX_JSON_BYTES:,}: refused unread")
    try:
        with open(path, encoding="utf-8") as f:
            value = json.load(f)
    except (UnicodeDecodeError, ValueError) as e:
        raise SavedFileError(f"{path!r} is not JSON text ({e})") from None
    if not isinstance(value, dict):
        raise SavedFileError(f"{path!r} must hold a JSON object (word -> index), got a "
                             f"{type(value).__name__}")
    return value


# ------------------------------------------------------------------ sequences

def flatten_sequences(seqs, path, key):
    """(values, lengths): the word indices of an object array of sequences
    (lists of ints) end to end as int64, and each sequence's length."""
    if not isinstance(seqs, np.ndarray) or seqs.ndim != 1:
        raise SavedFileError(f"{path!r}: {key} must be a 1-D array of sequences, got "
                             f"{getattr(seqs, 'shape', type(seqs).__name__)}")
    try:
        lengths = np.fromiter((len(s) for s in seqs), dtype=np.int64, count=len(seqs))
        values = np.fromiter(itertools.chain.from_iterable(seqs), dtype=np.int64,
                             count=int(lengths.sum()))
    except (TypeError, ValueError, OverflowError) as e:
        raise SavedFileError(f"{path!r}: {key} must hold sequences of integers ({e})") from None
    return values, lengths


def check_int(name, value, allow_none=False):
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer{' or None' if allow_none else ''}, got "
                        f"{value!r}")
    return int(value)


def encode(values, lengths, start_char, index_from):
    """Keras' encoding: every index shifted by ``index_from`` (when a
    ``start_char`` is given, or ``index_from`` is not 0), and ``start_char``
    put before each sequence."""
    if start_char is not None or index_from:
        values = values + index_from
    if start_char is not None:
        starts = np.cumsum(lengths) - lengths
        values = np.insert(values, starts, start_char)
        lengths = lengths + 1
    return values, lengths


def keep_shorter(values, lengths, maxlen):
    """Keras' remove_long_seq: keep the sequences shorter than ``maxlen`` (the
    mask of those kept is returned for the labels)."""
    keep = lengths < maxlen
    return values[np.repeat(keep, lengths)], lengths[keep], keep


def limit_vocabulary(values, lengths, num_words, skip_top, oov_char):
    """Indices outside [skip_top, num_words) become ``oov_char``, or are dropped
    when it is None. ``num_words`` None (or 0) is, as in Keras, the largest
    index itself, so that index too falls outside."""
    if not num_words:
        if not values.size:
            raise ValueError("there are no word indices left to take num_words from (all "
                             "sequences are empty)")
        num_words = int(values.max())
    inside = (values >= skip_top) & (values < num_words)
    if oov_char is not None:
        return np.where(inside, values, oov_char), lengths
    seq = np.repeat(np.arange(len(lengths)), lengths)
    return values[inside], np.bincount(seq[inside], minlength=len(lengths)).astype(np.int64)


def to_object_array(values, lengths):
    """Sequences as Keras returns them: ``np.array(list_of_lists, dtype=object)``
    (1-D of lists; 2-D, as NumPy makes it, if all have one length)."""
    bounds = np.cumsum(lengths)[:-1]
    return np.array([part.tolist() for part in np.split(values, bounds)] if len(lengths) else [],
                    dtype="object")


def check_sequence_args(num_words, skip_top, maxlen, seed, start_char, oov_char, index_from):
    """The arguments IMDB's and Reuters' load_data share, checked."""
    for name, value in (("num_words", num_words), ("maxlen", maxlen), ("seed", seed),
                        ("start_char", start_char), ("oov_char", oov_char)):
        check_int(name, value, allow_none=True)
    check_int("skip_top", skip_top)
    check_int("index_from", index_from)
    for name, value in (("num_words", num_words), ("maxlen", maxlen), ("seed", seed)):
        if value is not None and value < 0:
            raise ValueError(f"{name} must be >= 0 or None, got {value}")


def shuffle_pair(rng, x, y, path, kx, ky):
    """x and y in the order ``rng`` shuffles their indices into (Keras' order:
    one ``rng.shuffle(np.arange(n))`` per pair)."""
    if len(x) != len(y):
        raise SavedFileError(f"{path!r}: {kx} holds {len(x)} sequences but {ky} {len(y)} "
                             "labels")
    order = np.arange(len(x))
    rng.shuffle(order)
    return x[order], y[order]
