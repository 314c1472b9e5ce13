"""``get_file``: download a file into Keras' cache once, check its hash, extract
archives (Keras 3's keras/src/utils/file_utils.py, ``keras.utils.get_file``).

The cache is Keras' own, so rnnkern and Keras share what either downloaded:
``$KERAS_HOME`` when set, else ``~/.keras`` (``/tmp/.keras`` when the home
directory is not writable), then ``cache_subdir`` (``datasets``) below it; a
cache directory that cannot be written falls back to ``/tmp/.keras`` as Keras'
does. A file already there is used as it is, unless ``file_hash`` is given and
does not match (then it is downloaded again) or ``force_download``.

Where rnnkern is stricter than Keras (files and archives from elsewhere are
read defensively, as everything rnnkern reads):

- a download is written to a temporary file beside the target, checked
  (complete, and the hash when one is given) and only then renamed onto the
  target (``os.replace``), so an interrupted or corrupted download never
  leaves a file under the final name (Keras writes the target directly and
  keeps a download whose hash does not match);
- an archive is checked whole before anything is written: a member with an
  absolute path or a ``..`` component, a link pointing outside the target
  directory or through another link, a device or other special file, or more
  data than the disk has room for refuses the whole archive with a
  ``SavedFileError`` (a ValueError) naming the archive and the member (Keras
  skips such members with a warning and extracts the rest).

``SavedFileError`` and ``atomic_write`` are defined here, at the level every
reader and writer of files (``rnnkern.saving``, ``rnnkern.datasets``) may import.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import stat
import tarfile
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import warnings
import zipfile
import zlib

from .progbar import Progbar, print_msg

__all__ = ["get_file", "keras_home", "hash_file", "validate_file", "extract_archive",
           "SavedFileError"]

# the opener downloads go through (tests point it at an opener that refuses the network)
_urlopen = urllib.request.urlopen
_CHUNK = 1 << 16


class SavedFileError(ValueError):
    """A file rnnkern will not read: malformed, damaged, of another architecture, or
    asking for more than it could hold. The message names the file and the reason.
    (Defined at this level, which every reader of files may import.)"""


def _file_mode(path):
    """The mode a written file gets: the replaced file's, else what the umask
    gives a new file (mkstemp's temporary file is 0600, which would otherwise stay)."""
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        umask = os.umask(0o022)
        os.umask(umask)
        return 0o666 & ~umask


def atomic_write(path, write):
    """``write(tmp_path)`` into a temporary file beside ``path``, then rename it
    onto ``path``: ``path`` is never seen half-written, and the temporary file
    is removed if anything fails."""
    path = os.fspath(path)
    fd, tmp = tempfile.mkstemp(prefix=".rnnkern-", suffix=".tmp",
                               dir=os.path.dirname(os.path.abspath(path)))
    os.close(fd)
    try:
        os.chmod(tmp, _file_mode(path))
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def keras_home():
    """Keras' base directory: ``$KERAS_HOME`` if set, else ``~/.keras``, or
    ``/tmp/.keras`` when the home directory is not writable. Read at each call
    (Keras reads it once, when it is imported)."""
    if "KERAS_HOME" in os.environ:
        return os.environ["KERAS_HOME"]
    base = os.path.expanduser("~")
    if not os.access(base, os.W_OK):
        base = "/tmp"
    return os.path.join(base, ".keras")


def _writable_base(cache_dir):
    """``cache_dir``, created if need be; Keras' fallback ``/tmp/.keras`` when
    it cannot be written. (Keras does not create it: importing Keras creates
    ``~/.keras``, and a cache_dir that does not exist sends Keras to /tmp.)"""
    base = os.path.expanduser(os.fspath(cache_dir))
    try:
        os.makedirs(base, exist_ok=True)
    except OSError:
        pass
    if not os.access(base, os.W_OK):
        base = _fallback_dir()
    return base


def _fallback_dir():
    return os.path.join("/tmp" if os.path.isdir("/tmp") else tempfile.gettempdir(), ".keras")


# --------------------------------------------------------------------- hashes

def _hasher(algorithm, file_hash=None):
    """Keras' choice: sha256 when asked, or for "auto" with a 64-character
    hash; md5 otherwise."""
    if algorithm == "sha256" or (algorithm == "auto" and file_hash is not None
                                 and len(str(file_hash)) == 64):
        return hashlib.sha256()
    try:
        return hashlib.md5(usedforsecurity=False)  # an integrity check, not security
    except TypeError:  # Python built without the keyword
        return hashlib.md5()


def hash_file(fpath, algorithm="sha256", chunk_size=65535):
    """The hex digest of a file: ``algorithm`` "sha256", "md5" or "auto"
    (sha256), or a hashlib object."""
    hasher = _hasher(algorithm) if isinstance(algorithm, str) else algorithm
    with open(fpath, "rb") as f:
        for chunk in iter(lambda: f.read(chunk_size), b""):
            hasher.update(chunk)
    return hasher.hexdigest()


def validate_file(fpath, file_hash, algorithm="auto", chunk_size=65535):
    """Whether the file's sha256 or md5 hash (``algorithm``; "auto": by the
    length of ``file_hash``) is ``file_hash``."""
    return str(hash_file(fpath, _hasher(algorithm, file_hash), chunk_size)) == str(file_hash)


# ------------------------------------------------------------------ download

def _download(origin, target, file_hash, hash_algorithm):
    """``origin`` into ``target``, through a temporary file beside it that is
    renamed onto ``target`` only once it is complete and its hash matches."""
    failure = "URL fetch failure on {}: {} -- {}"

    def fetch(tmp):
        with open(tmp, "wb") as out:
            try:
                with _urlopen(origin) as response:
                    length = response.headers.get("Content-Length")
                    total = int(length) if length and length.isdigit() else None
                    progbar, n = Progbar(total), 0
                    for chunk in iter(lambda: response.read(_CHUNK), b""):
                        out.write(chunk)
                        n += len(chunk)
                        progbar.update(n if total is None else min(n, total))
            except urllib.error.HTTPError as e:
                raise OSError(failure.format(origin, e.code, e.msg)) from e
            except urllib.error.URLError as e:
                raise OSError(failure.format(origin, e.errno, e.reason)) from e
        if total is not None and n < total:
            raise OSError(failure.format(
                origin, None, f"the download stopped after {n:,} of its {total:,} bytes"))
        if file_hash is not None and not validate_file(tmp, file_hash, hash_algorithm):
            raise ValueError(f"Incomplete or corrupted file detected. The {hash_algorithm} file "
                             f"hash does not match the provided value of {file_hash}.")

    atomic_write(target, fetch)


# ------------------------------------------------------------------- archives

def _parts(name):
    """The components of an archive member's path, "." dropped."""
    return [p for p in name.split("/") if p not in ("", ".")]


def _refuse(archive, member, why):
    return SavedFileError(f"{archive!r}: member {member!r} {why}: the archive is refused, "
                             "nothing was extracted (a damaged or hostile archive)")


def _check_member_path(archive, name, links):
    """A member's path: relative, no "..", and not through a link of the archive."""
    if not name or "\x00" in name:
        raise _refuse(archive, name, "has an empty or invalid name")
    if name.startswith(("/", "\\")) or os.path.isabs(name):
        raise _refuse(archive, name, "has an absolute path")
    parts = _parts(name)
    if ".." in parts:
        raise _refuse(archive, name, "has a '..' component (it would land outside the target "
                      "directory)")
    for i in range(1, len(parts)):
        if "/".join(parts[:i]) in links:
            raise _refuse(archive, name, f"lies below {'/'.join(parts[:i])!r}, a link of the "
                          "archive")
    return parts


def _check_link_target(archive, name, start, linkname, links):
    """A link's target, followed from the component list ``start``: it must stay
    in the target directory and not pass through another link of the archive."""
    if not linkname or linkname.startswith("/") or os.path.isabs(linkname):
        raise _refuse(archive, name, f"is a link to {linkname!r}, an absolute path")
    stack = list(start)
    parts = _parts(linkname)
    for i, p in enumerate(parts):
        if p == "..":
            if not stack:
                raise _refuse(archive, name, f"is a link to {linkname!r}, outside the target "
                              "directory")
            stack.pop()
        else:
            stack.append(p)
            if i < len(parts) - 1 and "/".join(stack) in links:
                raise _refuse(archive, name, f"is a link to {linkname!r}, through another link "
                              "of the archive")


def _inside(base, path):
    real = os.path.realpath(path)
    try:
        return os.path.commonpath([real, base]) == base
    except ValueError:
        return False


def _check_room(archive, path, total):
    parent = path
    while not os.path.isdir(parent):
        parent = os.path.dirname(parent) or "."
    free = shutil.disk_usage(parent).free
    if total > free:
        raise SavedFileError(f"{archive!r}: its members hold {total:,} bytes, more than the "
                                f"{free:,} free under {path!r}: the archive is refused, nothing "
                                "was extracted")


def _check_tar(archive, tar, path):
    members = tar.getmembers()
    links = {"/".join(_parts(m.name)) for m in members if m.issym()}
    base = os.path.realpath(path)
    total = 0
    for m in members:
        parts = _check_member_path(archive, m.name, links)
        if not (m.isfile() or m.isdir() or m.issym() or m.islnk()):
            raise _refuse(archive, m.name, "is a device, a FIFO or another special file")
        if m.issym():
            _check_link_target(archive, m.name, parts[:-1], m.linkname, links)
        elif m.islnk():  # a hard link's target is a path from the archive's root
            _check_link_target(archive, m.name, [], m.linkname, links)
        if parts and not _inside(base, os.path.join(base, *parts)):
            raise _refuse(archive, m.name, "would be written outside the target directory "
                          "(through a link already there)")
        total += max(m.size, 0) if m.isfile() else 0
    _check_room(archive, path, total)
    return members


def _check_zip(archive, z, path):
    infos = z.infolist()
    base = os.path.realpath(path)
    for info in infos:
        name = info.filename.replace("\\", "/") if os.sep == "\\" else info.filename
        parts = _check_member_path(archive, name, set())
        if parts and not _inside(base, os.path.join(base, *parts)):
            raise _refuse(archive, info.filename, "would be written outside the target "
                          "directory (through a link already there)")
    _check_room(archive, path, sum(i.file_size for i in infos))
    return infos


def _archive_formats(archive_format):
    if archive_format is None:
        return []
    if archive_format == "auto":
        return ["tar", "zip"]
    formats = [archive_format] if isinstance(archive_format, str) else list(archive_format)
    for f in formats:
        if f not in ("tar", "zip"):
            raise ValueError(f"archive_format must be 'auto', 'tar', 'zip', a list of these or "
                             f"None; got {archive_format!r}")
    return formats


def extract_archive(file_path, path=".", archive_format="auto"):
    """Extract a tar (.tar, .tar.gz, .tar.bz2, .tar.xz) or zip archive into
    ``path`` after checking every member (see the module docstring). True if
    the file was an archive of one of ``archive_format``'s kinds and was
    extracted, False if not."""
    file_path, path = os.fspath(file_path), os.fspath(path)
    for kind in _archive_formats(archive_format):
        if kind == "tar" and tarfile.is_tarfile(file_path):
            opener = tarfile.open
        elif kind == "zip" and zipfile.is_zipfile(file_path):
            opener = zipfile.ZipFile
        else:
            continue
        created = not os.path.exists(path)
        try:
            with opener(file_path) as arc:
                if kind == "tar":
                    members = _check_tar(file_path, arc, path)
                    os.makedirs(path, exist_ok=True)
                    kwargs = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
                    arc.extractall(path, members=members, **kwargs)
                else:
                    members = _check_zip(file_path, arc, path)
                    os.makedirs(path, exist_ok=True)
                    arc.extractall(path, members=members)
        except (tarfile.TarError, zipfile.BadZipFile, zlib.error, EOFError) as e:
            if created and os.path.isdir(path):
                shutil.rmtree(path, ignore_errors=True)
            raise SavedFileError(f"{file_path!r} is a damaged archive ({e}); delete it to "
                                    "download it again") from e
        except BaseException:
            if created and os.path.isdir(path):
                shutil.rmtree(path, ignore_errors=True)
            raise
        return True
    return False


# ---------------------------------------------------------------------- get_file

def get_file(fname=None, origin=None, untar=False, md5_hash=None, file_hash=None,
             cache_subdir="datasets", hash_algorithm="auto", extract=False,
             archive_format="auto", cache_dir=None, force_download=False):
    """Download ``origin`` into the cache unless it is there already; return its
    path (Keras 3's ``keras.utils.get_file``).

    The file goes to ``<cache_dir>/<cache_subdir>/<fname>``: ``cache_dir``
    defaults to ``$KERAS_HOME`` or ``~/.keras``, ``cache_subdir`` to
    ``"datasets"`` (an absolute path is used as it is), ``fname`` to the last
    component of the URL's path. ``file_hash`` (sha256 or md5; ``hash_algorithm``
    "auto" tells them apart by length, ``md5_hash`` is the deprecated md5 form)
    is checked after a download, and a cached file that does not match it is
    downloaded again. ``extract=True`` (``untar=True``: tar only) extracts the
    archive into ``<fname>_extracted`` (``fname`` with an extension) or
    ``<fname>`` beside the download, and returns that directory;
    ``archive_format``: "auto" (tar, then zip), "tar", "zip", a list or None.

    Archives are checked before anything is written (see the module docstring);
    downloads are atomic.

    >>> path = get_file(origin="https://example.com/data/words.txt",
    ...                 file_hash="e3b0c442...")   # ~/.keras/datasets/words.txt
    """
    if origin is None:
        raise ValueError('Please specify the "origin" argument (URL of the file to download).')
    origin = os.fspath(origin) if isinstance(origin, os.PathLike) else origin
    if not isinstance(origin, str):
        raise TypeError(f"origin must be a URL string, got {type(origin).__name__}")
    if hash_algorithm not in ("auto", "sha256", "md5"):
        raise ValueError(f"hash_algorithm must be 'auto', 'sha256' or 'md5', got "
                         f"{hash_algorithm!r}")
    formats = _archive_formats(archive_format)  # checked before any download
    if cache_dir is None:
        cache_dir = keras_home()
    if md5_hash is not None and file_hash is None:
        file_hash, hash_algorithm = md5_hash, "md5"
    datadir = os.path.join(_writable_base(cache_dir), os.fspath(cache_subdir))
    os.makedirs(datadir, exist_ok=True)

    provided = fname
    fname = os.fspath(fname) if fname is not None else None
    if not fname:
        fname = os.path.basename(urllib.parse.urlsplit(origin).path)
        if not fname:
            raise ValueError(f"Can't parse the file name from the origin provided: '{origin}'."
                             "Please specify the `fname` argument.")
    elif os.sep in fname or (os.altsep and os.altsep in fname):
        raise ValueError("Paths are no longer accepted as the `fname` argument. To specify "
                         "the file's parent directory, use the `cache_dir` argument. "
                         f"Received: fname={fname}")
    if fname in (".", ".."):
        raise ValueError(f"fname {fname!r} names no file (from origin {origin!r}): pass "
                         "fname=")

    if extract or untar:
        if provided and "." in fname:
            download_target = os.path.join(datadir, fname)
            stem = fname[:fname.find(".")]
            extraction_dir = os.path.join(datadir, f"{stem}_extracted")
        else:
            extraction_dir = os.path.join(datadir, fname)
            download_target = os.path.join(datadir, f"{fname}_archive")
    else:
        download_target = os.path.join(datadir, fname)

    download = True
    if not force_download and os.path.exists(download_target):
        download = False
        if file_hash is not None and not validate_file(download_target, file_hash,
                                                       hash_algorithm):
            print_msg("A local file was found, but it seems to be incomplete or outdated "
                      f"because the {hash_algorithm} file hash does not match the original "
                      f"value of {file_hash} so we will re-download the data.")
            download = True
    if download:
        print_msg(f"Downloading data from {origin}")
        _download(origin, download_target, file_hash, hash_algorithm)

    if extract or untar:
        if not extract_archive(download_target, extraction_dir, "tar" if untar else formats):
            warnings.warn("Could not extract archive.", stacklevel=2)
        return extraction_dir
    return download_target
