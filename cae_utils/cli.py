"""What every command line of the course shares: a user's mistake or Ctrl-C ends in one line, not a traceback."""

from __future__ import annotations

import contextlib
import os
import stat
import sys
from collections.abc import Callable
from pathlib import Path


class UsageError(ValueError):
    """A command line asks for something that cannot be done as asked (exit status 2)."""


def check_output(path, inputs=()) -> Path:
    """Return ``path`` as a Path if a command may write it, before any work is done.

    Refused: a path that is one of the command's ``inputs`` (the same file, by any name), that exists
    and is not a regular file (a folder, a device, a FIFO, a socket, a symbolic link), or whose folder
    does not exist.

    Raises:
        UsageError: with what is wrong and what to do.
    """
    return check_outputs([path], inputs)[0]


def check_outputs(paths, inputs=()) -> list[Path]:
    """:func:`check_output` for each of ``paths``; the inputs are looked at once, not once per output."""
    identities = {}
    for source in inputs:
        with contextlib.suppress(OSError):
            info = os.stat(source)
            identities[info.st_dev, info.st_ino] = source
    return [_check_output(Path(path), identities) for path in paths]


def _check_output(path: Path, identities: dict) -> Path:
    """:func:`check_output`, the inputs given by their ``(device, inode)``."""
    if not path.parent.is_dir():
        raise UsageError(
            f"cannot write {path}: the folder {path.parent} does not exist. Create it first."
        )
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return path
    mode = info.st_mode
    if not stat.S_ISREG(mode):
        kind = {stat.S_IFDIR: "a folder", stat.S_IFLNK: "a symbolic link", stat.S_IFIFO: "a FIFO",
                stat.S_IFCHR: "a device", stat.S_IFBLK: "a device", stat.S_IFSOCK: "a socket"}  # fmt: skip
        what = kind.get(stat.S_IFMT(mode), "not a regular file")
        raise UsageError(
            f"cannot write {path}: it is {what}, not a regular file. Choose another output."
        )
    source = identities.get((info.st_dev, info.st_ino))
    if source is not None:
        raise UsageError(
            f"cannot write {path}: it is the input {source} of this command. Choose another output."
        )
    return path


def _user_errors() -> tuple[type[BaseException], ...]:
    """The exceptions that describe something the user can fix (bad settings, files, data or names)."""
    from .codec.fileformat import CodecError
    from .config import SettingsError
    from .data import CifarDataError
    from .pretrained import PretrainedError
    from .train import TrainingError

    return (SettingsError, PretrainedError, CodecError, CifarDataError, TrainingError, OSError)


def run_command(work: Callable[[], int]) -> int:
    """Run ``work()``; return its exit status: 2 after a usage error, 1 after another user error (each
    ``error: ...``), 130 after Ctrl-C (one line)."""
    try:
        return work()
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(
            "interrupted (Ctrl-C): files are written whole or not at all; a training run resumes from its last "
            "finished epoch when the same command is started again.",
            file=sys.stderr,
        )
        return 130
    except _user_errors() as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
