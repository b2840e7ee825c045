"""Data files: where a data set's files are found, how each is checked, and how it is fetched.

One implementation serves every data set of the book (ISBI 2012 in
:mod:`topobook.datasets.isbi2012`, TopoMortar in :mod:`topobook.datasets.topomortar`). A
:class:`DataSource` names the data set, and a file of it (a path relative to the data set's folder,
e.g. ``train/images/00.png``) is looked up, in order, in

1. the folder named by the data set's environment variable (``TOPOBOOK_DATA`` for ISBI 2012,
   ``TOPOBOOK_TOPOMORTAR`` for TopoMortar); when it is set, the file must be there;
2. ``../shared/data/<folder>`` beside the repository (where the project's machines keep it);
3. pooch's cache, downloading from the data set's pinned public URL on first use.

Every file is checked against its sha256 in a list shipped in the package before it is used; a
missing or corrupted file raises :class:`DataFileError` naming the file and what to do.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

_REPO_ROOT = Path(__file__).resolve().parents[2]
SHARED_ROOT = _REPO_ROOT.parent / "shared" / "data"  # read at call time (tests replace it)


class DataFileError(RuntimeError):
    """A data file is missing or does not have the expected content."""


@dataclass(frozen=True)
class DataSource:
    """A data set made of files, each with a pinned URL and a sha256 shipped in the package.

    ``name``: shown in messages; ``env_var``: the environment variable naming a local copy;
    ``folder``: the folder under ``../shared/data`` and under pooch's cache; ``registry_file``:
    the package file of ``sha256  relative/path`` lines; ``url``: relative path -> pinned URL;
    ``layout``: the expected folder layout, quoted in messages.
    """

    name: str
    env_var: str
    folder: str
    registry_file: str
    url: Callable[[str], str]
    layout: str


@cache
def registry(source: DataSource) -> dict[str, str]:
    """The sha256 of every file of ``source``, keyed by relative path."""
    text = (Path(__file__).with_name(source.registry_file)).read_text()
    entries = {}
    for line in text.splitlines():
        if line.strip():
            digest, name = line.split()
            entries[name.removeprefix("./")] = digest
    return entries


def sha256(path: Path) -> str:
    """The hex sha256 of a file's bytes."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _shared_folder(source: DataSource) -> Path:
    return SHARED_ROOT / source.folder


def _check_file(source: DataSource, path: Path, name: str) -> Path:
    expected = registry(source)[name]
    actual = sha256(path)
    if actual != expected:
        raise DataFileError(
            f"{source.name} file {path} is corrupted: sha256 {actual[:12]}... instead of "
            f"{expected[:12]}.... Delete it and run again to download a fresh copy (or restore "
            f"it from {_shared_folder(source)})."
        )
    return path


def _local_folders(source: DataSource) -> list[tuple[str, Path]]:
    folders = []
    if os.environ.get(source.env_var):
        folders.append((source.env_var, Path(os.environ[source.env_var])))
    folders.append(("shared", _shared_folder(source)))
    return folders


def data_file(source: DataSource, name: str, download: bool = True) -> Path:
    """Path of one verified file of ``source`` (``name`` relative to the data set's folder).

    Raises ``KeyError`` for a name that is not a file of the data set, and
    :class:`DataFileError` when the file is corrupted, when ``source.env_var`` is set and the
    file is not in that folder, or when it is missing everywhere and ``download`` is off.
    """
    if name not in registry(source):
        example = next(iter(registry(source)))
        raise KeyError(f"{name!r} is not a file of {source.name}; names look like {example!r}")
    for origin, folder in _local_folders(source):
        path = folder / name
        if path.is_file():
            return _check_file(source, path, name)
        if origin == source.env_var:
            raise DataFileError(
                f"{source.env_var}={folder} has no file {name}. Point {source.env_var} at a "
                f"folder laid out like {_shared_folder(source)} ({source.layout}), or unset it "
                "to download the data."
            )
    if not download:
        raise DataFileError(
            f"{source.name} file {name} is not available locally and download=False. Set "
            f"{source.env_var} to a folder holding the data, or allow the download."
        )
    return _fetch(source, name)


def fetcher(source: DataSource):
    """The ``pooch.Pooch`` that downloads ``source``'s files into pooch's cache (folder
    ``topobook/<source.folder>``): every file at its pinned URL, checked by its sha256."""
    import pooch  # only needed when downloading

    entries = registry(source)
    return pooch.create(
        path=pooch.os_cache("topobook") / source.folder,
        base_url="",
        registry={k: f"sha256:{v}" for k, v in entries.items()},
        urls={k: source.url(k) for k in entries},
    )


def _fetch(source: DataSource, name: str) -> Path:
    import pooch

    try:
        return Path(fetcher(source).fetch(name, progressbar=False))
    except ValueError as err:  # pooch's hash mismatch
        raise DataFileError(
            f"Downloaded {source.name} file {name} does not match its sha256 ({err}). Delete "
            f"{pooch.os_cache('topobook') / source.folder} and try again."
        ) from err
