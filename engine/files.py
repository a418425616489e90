"""Atomic outputs (torch-free).

Every file the engine writes goes through :func:`atomic_output`: the data is written to a hidden temporary
file in the target's directory (same extension, so GDAL picks the right driver), and renamed over the target
with :func:`os.replace` only when writing succeeded. On any exception -- including :class:`Cancelled` and
:class:`KeyboardInterrupt` -- the temporary file and its sidecars are removed, so a failed or cancelled run
never leaves a partial output behind, and an existing output is never overwritten silently.
"""

from __future__ import annotations

import contextlib
import os
from typing import Iterator

from . import contract
from .errors import EngineError, OutputExistsError

#: Sidecar suffixes GDAL may write next to a raster; they follow their raster on commit / removal.
SIDECARS = (".aux.xml", ".ovr", ".msk")


def check_output(path: str | os.PathLike, overwrite: bool = False) -> str:
    """Check that ``path`` may be written.

    Args:
        path: the output file.
        overwrite: allow replacing an existing file.

    Returns:
        The path as an absolute string.

    Raises:
        OutputExistsError: (exit code 4) ``path`` exists and ``overwrite`` is false.
        EngineError: the path is a directory, or its parent directory does not exist.
    """
    p = os.path.abspath(os.fspath(path))
    if os.path.isdir(p):
        raise EngineError(f"Output {p} is a directory", "give a file name for the output")
    parent = os.path.dirname(p)
    if not os.path.isdir(parent):
        raise EngineError(f"The folder of output {p} does not exist", f"create {parent} or choose another folder")
    if os.path.exists(p) and not overwrite:
        raise OutputExistsError(f"Output {p} already exists",
                                "pass --overwrite to replace it, or choose another file name")
    return p


def temporary_name(path: str | os.PathLike) -> str:
    """The hidden temporary name used for ``path``: ``<dir>/.<stem>.partial-<pid><ext>``.

    The extension is kept (``.tif``, ``.safetensors``, ``.html``...) so GDAL selects the right driver.
    """
    return contract.temporary_name(os.fspath(path))


def _remove(path: str) -> None:
    with contextlib.suppress(FileNotFoundError, IsADirectoryError, PermissionError):
        os.remove(path)


class AtomicOutput:
    """A pending output: write to :attr:`tmp`, then :meth:`commit` or :meth:`discard`.

    Use :func:`atomic_output` for a single file; use this class directly when several outputs must be
    committed together (e.g. a classification and its confidence raster).

    Args:
        path: the final output path.
        overwrite: allow replacing an existing file (checked at construction and again at commit).

    Raises:
        OutputExistsError: the target exists and ``overwrite`` is false.
    """

    def __init__(self, path: str | os.PathLike, overwrite: bool = False):
        self.path = check_output(path, overwrite)
        self.overwrite = overwrite
        self.tmp = temporary_name(self.path)
        self.done = False
        self.discard()  # stale leftovers of a previous run with the same pid

    def commit(self) -> str:
        """Rename the temporary file (and its sidecars) over the target. Returns the target path.

        Raises:
            EngineError: the temporary file was never written.
            OutputExistsError: the target appeared meanwhile and ``overwrite`` is false.
        """
        if self.done:
            return self.path
        if not os.path.exists(self.tmp):
            raise EngineError(f"Nothing was written to {self.path}", "this is a bug in the engine; please report it")
        if os.path.exists(self.path) and not self.overwrite:
            self.discard()
            raise OutputExistsError(f"Output {self.path} already exists",
                                    "pass --overwrite to replace it, or choose another file name")
        os.replace(self.tmp, self.path)
        for suffix in SIDECARS:
            if os.path.exists(self.tmp + suffix):
                os.replace(self.tmp + suffix, self.path + suffix)
            elif os.path.exists(self.path + suffix):
                _remove(self.path + suffix)  # stale sidecar of the file we replaced
        self.done = True
        return self.path

    def discard(self) -> None:
        """Remove the temporary file and its sidecars (never the target)."""
        _remove(self.tmp)
        for suffix in SIDECARS:
            _remove(self.tmp + suffix)


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike, overwrite: bool = False) -> Iterator[str]:
    """Context manager yielding a temporary path to write ``path`` atomically.

    Example::

        with atomic_output("classes.tif", overwrite=False) as tmp:
            with rasterio.open(tmp, "w", **profile) as dst:
                ...

    The temporary file is renamed over ``path`` when the block exits normally; on any exception (including
    ``Cancelled`` and ``KeyboardInterrupt``) it is removed with its sidecars and the exception propagates.

    Raises:
        OutputExistsError: ``path`` exists and ``overwrite`` is false (raised before the block runs).
        EngineError: the parent folder does not exist, or the block wrote nothing.
    """
    out = AtomicOutput(path, overwrite)
    try:
        yield out.tmp
    except BaseException:
        out.discard()
        raise
    try:
        out.commit()
    except BaseException:
        out.discard()
        raise


def write_text(path: str | os.PathLike, text: str, overwrite: bool = False) -> str:
    """Write a UTF-8 text file atomically. Returns the absolute path.

    Raises:
        OutputExistsError: ``path`` exists and ``overwrite`` is false.
    """
    with atomic_output(path, overwrite) as tmp:
        with open(tmp, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
    return os.path.abspath(os.fspath(path))
