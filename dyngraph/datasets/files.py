"""Find, verify and (when missing) download the data files listed in the registry."""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import tempfile
import urllib.request
from pathlib import Path

from dyngraph.datasets.registry import FILES, FileInfo
from dyngraph.errors import ChecksumError, DataError

__all__ = ["data_file", "data_dirs", "cache_dir", "md5sum", "find_file", "download"]

_VERIFIED: dict[tuple[str, int, int], str] = {}  # (path, size, mtime_ns) -> md5


def repo_data_dir() -> Path:
    """The ``datasets/`` folder of a source checkout (may not exist in a wheel install)."""
    return Path(__file__).resolve().parents[2] / "datasets"


def cache_dir() -> Path:
    """Download cache: ``$DYNGRAPH_CACHE`` or ``~/.cache/dyngraph``."""
    env = os.environ.get("DYNGRAPH_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "dyngraph"


def data_dirs() -> list[Path]:
    """Folders searched in order: ``$DYNGRAPH_DATA`` if set (it replaces the repository
    folder), else the repository's ``datasets/``; then the download cache."""
    env = os.environ.get("DYNGRAPH_DATA")
    first = Path(env).expanduser() if env else repo_data_dir()
    return [first, cache_dir()]


def md5sum(path: str | Path) -> str:
    """md5 of a file, memoised on (path, size, mtime) so repeated loads do not re-hash."""
    p = Path(path)
    st = p.stat()
    key = (str(p.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _VERIFIED:
        h = hashlib.md5()
        with open(p, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        _VERIFIED[key] = h.hexdigest()
    return _VERIFIED[key]


def find_file(relpath: str) -> Path | None:
    """First existing ``dir / relpath`` among :func:`data_dirs`, without verifying it."""
    for d in data_dirs():
        p = d / relpath
        if p.is_file():
            return p
    return None


def _check(path: Path, info: FileInfo) -> Path:
    got = md5sum(path)
    if got != info.md5:
        raise ChecksumError(
            f"{path} has md5 {got}, expected {info.md5} ({info.source or info.relpath}). "
            "The file is corrupt or a different version: delete it so dyngraph downloads the "
            f"canonical copy{f' from {info.url}' if info.url else ''}, or restore the "
            "original (git checkout datasets/)."
        )
    return path


def download(info: FileInfo, dest_dir: Path | None = None) -> Path:
    """Fetch ``info.url`` into the cache (or ``dest_dir``), apply the registry's
    transformation (gunzip, header line), verify md5 and move it into place atomically."""
    if info.url is None:
        raise DataError(
            f"{info.relpath} is missing and has no canonical download URL (it is derived: "
            f"{info.source}). Put the file in a folder and set DYNGRAPH_DATA to that folder, "
            "or use a source checkout of dyngraph, which ships it in datasets/."
        )
    dest = (dest_dir or cache_dir()) / info.relpath
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=dest.name + ".", suffix=".part")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            if info.header is not None:
                out.write(info.header.encode() + b"\n")
            try:
                with urllib.request.urlopen(info.url, timeout=60) as resp:
                    src = gzip.GzipFile(fileobj=resp) if info.gzip else resp
                    shutil.copyfileobj(src, out, 1 << 20)
            except (OSError, EOFError) as e:
                how = ["gunzipped"] if info.gzip else []
                if info.header:
                    how.append(f"with the first line {info.header!r} added")
                raise DataError(
                    f"could not download {info.url} ({e}). Check the network, or save it by "
                    f"hand as {dest}{' (' + ', '.join(how) + ')' if how else ''}."
                ) from e
        _check(tmp, info)
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    return dest


def data_file(relpath: str, *, download_missing: bool = True) -> Path:
    """Path of a registered data file, md5-verified.

    Searches :func:`data_dirs`; when absent everywhere and a canonical URL is known, the
    file is downloaded into :func:`cache_dir`.

    Raises:
        DataError: unknown ``relpath``, or missing without a URL / download failure.
        ChecksumError: the file found does not match its md5.
    """
    relpath = str(relpath).replace(os.sep, "/").removeprefix("./")
    info = FILES.get(relpath)
    if info is None:
        raise DataError(f"{relpath!r} is not a registered data file; known files: "
                        f"{', '.join(sorted(FILES))}.")
    path = find_file(relpath)
    if path is None:
        if not download_missing:
            raise DataError(f"{relpath} not found in {', '.join(map(str, data_dirs()))}.")
        return download(info)
    return _check(path, info)
