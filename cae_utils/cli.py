"""What every command line of the course shares: a user's mistake or Ctrl-C ends in one line, not a traceback."""

from __future__ import annotations

import sys
from collections.abc import Callable


def _user_errors() -> tuple[type[BaseException], ...]:
    """The exceptions that describe something the user can fix (bad settings, files, data or names)."""
    from .codec.fileformat import CodecError
    from .config import SettingsError
    from .data import CifarDataError
    from .pretrained import PretrainedError
    from .train import TrainingError

    return (SettingsError, PretrainedError, CodecError, CifarDataError, TrainingError, OSError)


def run_command(work: Callable[[], int]) -> int:
    """Run ``work()``; return its exit status, 1 after a user error (``error: ...``), 130 after Ctrl-C (one line)."""
    try:
        return work()
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
