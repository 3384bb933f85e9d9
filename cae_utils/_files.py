"""Writing files safely: write to a temporary file beside the target, then rename it into place.

A rename within one folder is atomic, so an interrupted program leaves either the old file or the new
one, never half of one. Used by the training run folders, the shipped weights and the codec.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path


def replace_atomically(path: Path, write: Callable[[Path], object]) -> Path:
    """Call ``write(tmp_path)`` to create the file, then rename it to ``path``.

    The temporary name keeps the target's suffixes (``x.tmp.keras`` for ``x.keras``), because Keras
    chooses the format from the file name. On any error the temporary file is removed and ``path`` is
    left as it was.
    """
    path = Path(path)
    stem, dot, suffixes = path.name.partition(".")
    tmp = path.with_name(f"{stem}.tmp{dot}{suffixes}")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def write_text_atomically(path: Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` through a temporary file and a rename."""
    return replace_atomically(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
