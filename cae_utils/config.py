"""Run settings: the one place where the course reads its environment variables.

Every knob the notebooks and the package obey is read here, and nowhere else:

==================  =====================================================================  ==============
variable            meaning                                                                default
==================  =====================================================================  ==============
``CAE_QUICK``       ``1``: quick mode (small data subsets, 1-2 epochs, figures to a         ``0`` (``1``
                    temporary folder); ``0``: the full course.                              under pytest)
``CAE_EPOCHS``      number of training epochs, overriding the notebook's own choice.       unset
``CAE_DATA_DIR``    folder holding CIFAR-10's official "python version"                    unset: Keras
                    (``cifar-10-batches-py``: ``data_batch_1..5``, ``test_batch``,          downloads it
                    ``batches.meta``), or a folder that contains that folder.
``CAE_FIGURES_DIR`` where full runs save figures.                                          ``figures/``
``CAE_SEED``        the seed for data splits, weights initialisation and shuffling.        ``42``
``CAE_WEIGHTS_DIR`` folder holding shipped weights files (``NAME.weights.h5``); a file      a clone's
                    missing there is downloaded into the Keras cache.                       ``weights/``
``CAE_WEIGHTS_URL`` address of a copy of the repository's ``weights/`` folder to download   the repository
                    from (a mirror, or a local server in the tests).                        (``pyproject``)
``CAE_PROGRESS``    ``bar``: progress bars during long fits and loops; ``epoch``: one line  ``bar`` in an
                    per epoch (for logs and committed notebooks).                           interactive run
==================  =====================================================================  ==============

Use :func:`get_settings` to read them; it validates each value and raises :class:`SettingsError`
with the variable's name and what is allowed when one is wrong.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "Settings",
    "SettingsError",
    "get_settings",
    "announce",
    "epochs",
    "figure_path",
    "repo_root",
    "repository_url",
    "fit_verbosity",
    "check_number",
    "MAX_SEED",
    "MAX_EPOCHS",
    "progress",
    "QUICK_SIZES",
]

#: Split sizes used in quick mode (train, validation, test). Big enough for every notebook's code
#: path to run, small enough that the whole course runs in a few minutes on a 2-core CPU.
QUICK_SIZES = {"train": 2000, "val": 500, "test": 1000}

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


class SettingsError(ValueError):
    """An environment variable read by :mod:`cae_utils.config` has a value the course cannot use."""


@dataclass(frozen=True)
class Settings:
    """The course's run settings, as read from the environment.

    Attributes:
        quick: True in quick mode (CI and ``pytest``): small subsets, 1-2 epochs, no figures in ``figures/``.
        epochs: the value of ``CAE_EPOCHS`` as a positive int, or None when unset.
        data_dir: the folder named by ``CAE_DATA_DIR`` (not yet checked), or None when unset.
        figures_dir: the folder figures are saved into (a temporary folder in quick mode).
        seed: the course-wide random seed.
        weights_dir: the folder named by ``CAE_WEIGHTS_DIR``, or None when unset.
        weights_url: the address named by ``CAE_WEIGHTS_URL`` (no trailing slash), or None when unset.
        progress: ``"bar"`` or ``"epoch"`` (``CAE_PROGRESS``; see :func:`fit_verbosity`).
    """

    quick: bool
    epochs: int | None
    data_dir: Path | None
    figures_dir: Path
    seed: int
    weights_dir: Path | None = None
    weights_url: str | None = None
    progress: str = "epoch"


def repo_root() -> Path | None:
    """Return the course repository's root folder, or None when the package is installed elsewhere.

    The root is the folder above ``cae_utils/`` when it holds the course's ``notebooks/`` folder
    (an editable install or a clone); a plain ``pip install`` (as on Colab) has no such folder.
    """
    root = Path(__file__).resolve().parent.parent
    return root if (root / "notebooks").is_dir() and (root / "pyproject.toml").is_file() else None


def repository_url() -> str:
    """The course's public address, ``[project.urls] Repository`` (no trailing slash).

    Read from the clone's ``pyproject.toml`` when there is one, else from the installed package's metadata.
    """
    root = repo_root()
    if root is not None:
        import tomllib

        with open(root / "pyproject.toml", "rb") as f:
            return tomllib.load(f)["project"]["urls"]["Repository"].rstrip("/")
    from importlib import metadata

    for entry in metadata.metadata("cae-utils").get_all("Project-URL") or []:
        label, _, url = entry.partition(",")
        if label.strip().lower() == "repository":
            return url.strip().rstrip("/")
    raise SettingsError(
        "the installed cae-utils package names no Repository address: reinstall it."
    )


def _read_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise SettingsError(
        f"{name}={raw!r} is not understood: use 1 (on) or 0 (off), for example `export {name}=1`."
    )


#: Largest seed NumPy and TensorFlow accept.
MAX_SEED = 2**32 - 1
#: The most epochs any setting, argument or run file may ask for.
MAX_EPOCHS = 100_000


def check_number(
    name: str, value, low, high, whole: bool = False, error=None, above_low: bool = False
):
    """Return ``value`` if it is a number (a whole number when ``whole``) from ``low`` to ``high``.

    The one range check for every number that enters from a command line, a setting or a file.
    ``above_low`` excludes ``low`` itself. Booleans and NaN are refused.

    Raises:
        ``error`` (default :class:`SettingsError`): naming ``name``, the value and the range allowed.
    """
    import math
    import numbers

    kinds = numbers.Integral if whole else numbers.Real  # numpy's numbers too
    number = isinstance(value, kinds) and not isinstance(value, bool) and not math.isnan(value)
    if not number or value > high or value < low or (above_low and value == low):
        what = "a whole number" if whole else "a number"
        lowest = f"above {low}" if above_low else f"from {low}"
        raise (error or SettingsError)(f"{name} must be {what} {lowest} to {high}, got {value!r}.")
    return value


def _read_whole(name: str, low: int, high: int, default, what: str, advice: str):
    """The whole number ``low``..``high`` in environment variable ``name`` (``default`` when unset)."""
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return check_number(name, int(raw.strip()), low, high, whole=True)
    except ValueError:  # not a whole number, or out of range (SettingsError is a ValueError)
        raise SettingsError(f"{name}={raw!r} is not {what}: {advice}") from None


def _read_epochs(name: str) -> int | None:
    return _read_whole(
        name,
        1,
        MAX_EPOCHS,
        None,
        f"a positive whole number up to {MAX_EPOCHS:,}",
        f"set it to, for example, `{name}=20`, or unset it to use the notebook's own choice.",
    )


def _read_seed(name: str, default: int) -> int:
    return _read_whole(
        name,
        0,
        MAX_SEED,
        default,
        "a seed",
        f"use a whole number from 0 to {MAX_SEED}, for example `{name}=42`.",
    )


_quick_figures_dir: Path | None = None


def _read_choice(name: str, choices: tuple[str, ...], default: str) -> str:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    value = raw.strip().lower()
    if value not in choices:
        raise SettingsError(
            f"{name}={raw!r} is not one of {', '.join(choices)}: for example `export {name}={choices[0]}`."
        )
    return value


def _read_url(name: str) -> str | None:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return None
    from urllib.parse import urlsplit

    if not raw.startswith(("https://", "http://")) or not urlsplit(raw).hostname:
        raise SettingsError(
            f"{name}={raw!r} is not an http(s) address: for example `{name}=https://example.org/weights`."
        )
    return raw.rstrip("/")


def _interactive() -> bool:
    """True in a terminal or an IPython session (Jupyter), where a progress bar is seen as it moves."""
    import sys

    ipython = sys.modules.get("IPython")
    if ipython is not None and ipython.get_ipython() is not None:
        return True
    return hasattr(sys.stdout, "isatty") and sys.stdout.isatty()


def _figures_dir(quick: bool) -> Path:
    global _quick_figures_dir
    if quick:
        # One temporary folder per process: quick runs never touch the committed figures/.
        if _quick_figures_dir is None:
            _quick_figures_dir = Path(tempfile.mkdtemp(prefix="cae-quick-figures-"))
        return _quick_figures_dir
    raw = os.environ.get("CAE_FIGURES_DIR", "").strip()
    if raw:
        folder = Path(raw).expanduser()
        if folder.exists() and not folder.is_dir():
            raise SettingsError(
                f"CAE_FIGURES_DIR={raw!r} is not a folder: point it at a folder for the figures (it is "
                f"created when missing), or unset it to save them in the repository's figures/."
            )
        return folder
    root = repo_root()
    return (root if root is not None else Path.cwd()) / "figures"


def get_settings() -> Settings:
    """Read and validate the course's environment variables.

    Returns:
        A :class:`Settings` holding the current values. The environment is read afresh on every
        call, so a notebook may change ``os.environ`` and call it again.

    Raises:
        SettingsError: a variable holds a value that cannot be used; the message names it and says
            what to set instead.
    """
    quick = _read_bool("CAE_QUICK", default=False)
    raw_dir = os.environ.get("CAE_DATA_DIR", "").strip()
    raw_weights = os.environ.get("CAE_WEIGHTS_DIR", "").strip()
    default_progress = "bar" if _interactive() and not quick else "epoch"
    return Settings(
        quick=quick,
        epochs=_read_epochs("CAE_EPOCHS"),
        data_dir=Path(raw_dir).expanduser() if raw_dir else None,
        figures_dir=_figures_dir(quick),
        seed=_read_seed("CAE_SEED", 42),
        weights_dir=Path(raw_weights).expanduser() if raw_weights else None,
        weights_url=_read_url("CAE_WEIGHTS_URL"),
        progress=_read_choice("CAE_PROGRESS", ("bar", "epoch"), default_progress),
    )


def fit_verbosity() -> int:
    """Keras ``fit`` verbosity for the run settings: 1 (a progress bar) or 2 (one line per epoch)."""
    return 1 if get_settings().progress == "bar" else 2


def progress(items, label: str = ""):
    """Iterate over the list ``items``, drawing a progress bar when the run settings ask for bars."""
    items = list(items)
    if get_settings().progress != "bar" or not items:
        yield from items
        return
    import keras

    bar = keras.utils.Progbar(len(items), unit_name=label or "step")
    for i, item in enumerate(items, 1):
        yield item
        bar.update(i)


def epochs(full: int, quick: int = 1) -> int:
    """Number of epochs to train: ``CAE_EPOCHS`` when set, else ``quick`` in quick mode and ``full`` otherwise.

    Args:
        full: the epochs a full run uses.
        quick: the epochs a quick run uses (1 or 2 keeps CI fast).
    """
    settings = get_settings()
    if settings.epochs is not None:
        return settings.epochs
    return quick if settings.quick else full


def figure_path(name: str) -> Path:
    """Return the path a figure called ``name`` (for example ``"01_examples.png"``) is saved to.

    Full runs save into the repository's ``figures/`` folder (or ``CAE_FIGURES_DIR``), which the
    README shows; quick runs save into a temporary folder. The folder is created when missing.
    """
    if not name or Path(name).name != name:
        raise ValueError(
            f"figure name {name!r} must be a plain file name such as '01_examples.png'."
        )
    folder = get_settings().figures_dir
    folder.mkdir(parents=True, exist_ok=True)
    return folder / name


_announced = False


def announce() -> Settings:
    """Print the run settings once per process and return them.

    In quick mode the line starts with ``CAE quick mode`` (CI logs and the notebooks show it); in a
    full run it says so. Later calls print nothing.
    """
    global _announced
    settings = get_settings()
    if not _announced:
        _announced = True
        if settings.quick:
            sizes = ", ".join(f"{k} {v}" for k, v in QUICK_SIZES.items())
            print(
                f"CAE quick mode: data subsets ({sizes} images), 1-2 epochs, "
                f"figures to {settings.figures_dir}. Set CAE_QUICK=0 for the full course."
            )
        else:
            root = repo_root()
            shown = settings.figures_dir
            if root is not None and shown.resolve().is_relative_to(root):
                shown = shown.resolve().relative_to(root)
            print(f"CAE full run: whole CIFAR-10 splits; figures are saved to {shown}/.")
    return settings
