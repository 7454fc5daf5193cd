"""Files that are never half written: the one atomic writer of mlpot.

Checkpoints (training and MD) and model files are the results of hours of computing. A crash,
a ``kill`` or a full disk in the middle of a plain ``open(path, "wb")`` leaves a truncated file
in place of the last good one, and the run is lost. :func:`atomic_write` therefore

1. writes to a temporary file in the *same* folder (a rename is atomic only within one file system),
2. flushes Python's buffer and ``fsync``\\ s the file (its bytes are on the disk, not in the page cache),
3. renames it over the destination with ``os.replace`` (readers see the old file or the new one,
   never a mixture),
4. ``fsync``\\ s the folder, so that the rename itself survives a power cut (POSIX keeps directory
   entries in the folder's own metadata);

and removes the temporary file if anything fails. A full disk or a read-only folder is a user
problem, not a bug: it becomes :class:`FileWriteError` (an ``OSError``) whose one-line message
names the folder, and the previous file at ``path`` is left exactly as it was.

Example:
    >>> atomic_torch_save({"weights": tensor}, "runs/a/last.pt")          # doctest: +SKIP
    >>> atomic_write("out/metrics.json", lambda f: f.write(b"{}"))        # doctest: +SKIP
"""

from __future__ import annotations

import errno
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

__all__ = ["FileWriteError", "atomic_write", "atomic_torch_save", "atomic_write_text", "refuse_to_replace_run"]

#: errno values that mean "the disk or the folder cannot take this file": reported in one line.
_STORAGE_ERRORS = {
    errno.ENOSPC: "the disk is full",
    errno.EDQUOT: "the disk quota is exceeded",
    errno.EROFS: "the file system is read-only",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
    errno.EFBIG: "the file is too large for the file system",
}


class FileWriteError(OSError):
    """A file could not be written (full disk, read-only folder, ...); the previous file is intact."""


def _fsync_folder(folder: Path) -> None:
    """Make a rename inside ``folder`` durable (no-op where folders cannot be opened, e.g. Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # some file systems (and Windows) refuse fsync on a folder; the rename still happened
        pass
    finally:
        os.close(fd)


def atomic_write(path: str | os.PathLike, write: Callable[[IO[bytes]], Any]) -> Path:
    """Write ``path`` atomically: ``write(f)`` fills a temporary binary file, which then replaces ``path``.

    Args:
        path: destination; its folder is created if missing.
        write: called once with the open temporary file (binary mode).

    Returns:
        The destination path.

    Raises:
        FileWriteError: the folder could not take the file (full disk, quota, read-only, no
            permission); the message is one line naming the folder, and ``path`` is unchanged.
        Any exception raised by ``write`` itself, after the temporary file has been removed.
    """
    path = Path(path)
    folder = path.parent
    temporary: str | None = None
    try:
        folder.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.", suffix=".tmp")
        with os.fdopen(handle, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, path)
        temporary = None
        _fsync_folder(folder)
    except OSError as error:
        if isinstance(error, FileWriteError):
            raise
        reason = _STORAGE_ERRORS.get(error.errno)
        if reason is None:
            raise
        failure = FileWriteError(
            f"cannot write {path.name} in {folder.resolve()}: {reason}; the previous file, if any, is unchanged"
        )
        failure.errno = error.errno
        raise failure from error
    finally:
        if temporary is not None:
            try:
                os.unlink(temporary)
            except OSError:
                pass
    return path


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> Path:
    """``torch.save(obj)`` through :func:`atomic_write` (load it back with ``weights_only=True``)."""
    import torch

    return atomic_write(path, lambda f: torch.save(obj, f))


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write a UTF-8 text file through :func:`atomic_write`."""
    data = text.encode("utf-8")
    return atomic_write(path, lambda f: f.write(data))


def safe_torch_load(path: str | os.PathLike, what: str) -> Any:
    """Read a file written by :func:`atomic_torch_save`, refusing anything but tensors and plain data.

    ``torch.load(weights_only=True)`` on the CPU: a pickled object is refused, so a malicious file
    cannot execute code.

    Args:
        path: the file.
        what: what the file should be, for the message (``"mlpot model file"``, ``"MD checkpoint"``).

    Raises:
        FileNotFoundError: no file at ``path``.
        ValueError: the file is truncated, corrupt, or holds objects other than tensors and plain data.
    """
    import torch

    if not Path(path).is_file():
        raise FileNotFoundError(f"no {what} at {path}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - torch raises several types for truncated or unsafe files
        first_line = str(error).splitlines()[0][:200] if str(error) else ""
        raise ValueError(
            f"{path} is not a readable {what} (truncated, corrupt, or holding objects other than tensors, "
            f"which are refused for safety): {type(error).__name__}: {first_line}"
        ) from None


def refuse_to_replace_run(output: str | os.PathLike, found: list[Path], resume: bool, overwrite: bool,
                          what: str, resumable: bool = True) -> None:
    """Refuse to start a fresh run over the files of an earlier one (``mlpot train``, ``mlpot md``).

    Args:
        output: the run's folder.
        found: the earlier run's files in it (checkpoints, logs); empty for a new folder.
        resume, overwrite: the user's ``--resume`` and ``--overwrite``; the caller continues the run
            or deletes ``found`` for them.
        what: how the message names ``found``, e.g. ``"checkpoints of an earlier run"``.
        resumable: whether the command can continue the run (the message then offers ``--resume``).

    Raises:
        ValueError: ``found`` is not empty and neither ``resume`` nor ``overwrite`` is set, or both are.
    """
    if resume and overwrite:
        raise ValueError("--resume and --overwrite exclude each other: continue the run, or start it again")
    if found and not (resume or overwrite):
        shown = ", ".join(str(p) for p in found[:3]) + (", ..." if len(found) > 3 else "")
        remedy = "continue it with --resume, or start again with --overwrite" if resumable else (
            "pass --overwrite to replace it, or another output folder")
        raise ValueError(f"{output} holds {what} ({shown}): {remedy}")
