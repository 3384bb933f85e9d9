"""Writing files safely: write to a temporary file beside the target, then rename it into place.

A rename within one folder is atomic, so an interrupted program leaves either the old file or the new
one, never half of one. Used by the training run folders, the shipped weights and the codec.
"""

from __future__ import annotations

import os
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path


def replace_atomically(path: Path, write: Callable[[Path], object]) -> Path:
    """Call ``write(tmp_path)`` to create the file, then rename it to ``path``.

    The temporary file gets a new, unique name in ``path``'s folder (``.x.k2j9.tmp.keras`` for
    ``x.keras``: the suffixes are kept because Keras chooses the format from the file name), so two
    programs writing the same target never share one, and no other file is ever touched. On any error the
    temporary file is removed and ``path`` is left as it was.
    """
    path = Path(path)
    stem, dot, suffixes = path.name.partition(".")
    handle, name = tempfile.mkstemp(
        prefix=f".{stem}.", suffix=f".tmp{dot}{suffixes}", dir=path.parent
    )
    os.close(handle)
    tmp = Path(name)
    umask = os.umask(0)
    os.umask(umask)
    # the permissions a plain new file gets, not mkstemp's private ones
    os.chmod(tmp, 0o666 & ~umask)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def write_text_atomically(path: Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` through a temporary file and a rename."""
    return replace_atomically(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


def regular_file_size(path: Path) -> int | None:
    """The size in bytes of ``path`` when it is a regular file (links followed); None for a folder, FIFO or
    device, which an input must never be (reading one could block or never end). OSError when it is missing."""
    info = os.stat(path)
    return info.st_size if stat.S_ISREG(info.st_mode) else None
