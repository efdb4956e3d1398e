"""Writing a file so that a reader, or a crash, finds the old content or the new, never
half of either: a temporary file beside it, synced to disk, then renamed over it."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path


def write_atomically(path: Path, chunks: Iterable[bytes], *, mode: int | None = None) -> None:
    """Replace `path` with the concatenated `chunks`. A failing `chunks` (a digest that
    does not verify) leaves `path` as it was. `mode` sets the permission bits (default:
    owner read and write only)."""
    directory = path.parent if str(path.parent) else Path()
    fd, temporary = tempfile.mkstemp(dir=directory, prefix=f".{path.name}.", suffix=".partial")
    try:
        with os.fdopen(fd, "wb") as out:
            for chunk in chunks:
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        if mode is not None:
            os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


def new_file_mode() -> int:
    """The permission bits a newly created file gets under the process's umask."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask
