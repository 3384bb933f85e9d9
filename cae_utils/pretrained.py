"""The course's shipped models, autoencoders and codecs: list them, describe them, load one by name.

Every shipped model ``NAME`` has three files in the repository's ``weights/`` folder:

- ``NAME.weights.h5``  the Keras 3 weights (no optimizer state);
- ``NAME.json``        what it is (``kind``: ``autoencoder`` or ``codec``, its architecture), how it was
  trained (the exact command, epochs, time, machine), its scores on the CIFAR-10 test set, and the
  size and SHA-256 of its weights file;
- ``NAME.log.csv``     the training log, one row per epoch.

The descriptions and logs are small and travel with the package. The weights file is read from a clone's
``weights/`` folder (or from ``CAE_WEIGHTS_DIR``) when it is there; otherwise it is downloaded once from
the course's repository into the Keras cache. Its SHA-256 is checked before every load: a file that does
not match is never loaded, and a downloaded one is removed.

Usage::

    from cae_utils import pretrained
    pretrained.available()                      # the autoencoders: ['course-32', 'course-64', 'course-256']
    pretrained.available(kind="codec")          # the codec models: ['codec-high', ...]
    autoencoder, encoder, decoder = pretrained.load(pretrained.MAIN)
    pretrained.training_log(pretrained.MAIN)    # a DataFrame, one row per epoch

A codec model loads the same way: ``pretrained.load("codec-medium")`` returns the
:class:`cae_utils.codec.Codec` that ``cae_utils.codec.load("medium")`` does (the name inside ``.cae`` files
has no ``codec-`` prefix).
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

from . import config

__all__ = [
    "MAIN",
    "KINDS",
    "PretrainedError",
    "available",
    "info",
    "load",
    "weights_file",
    "training_log",
    "table",
    "descriptions_dir",
    "descriptions",
    "sha256",
]

#: The course's main model: the one notebooks 03, 04 and 06 train, evaluate and compare with the codec.
MAIN = "course-256"
#: What a shipped description can describe: a model of either kind, or a benchmark's recorded run.
KINDS = ("autoencoder", "codec", "benchmark")
#: Folder of the weights downloads inside the Keras cache (``~/.keras/`` or ``KERAS_HOME``).
CACHE_SUBDIR = "cae-course-weights"
_NAME = re.compile(r"[a-z0-9]+(?:[-.][a-z0-9]+)*\Z")


class PretrainedError(RuntimeError):
    """A shipped model is unknown, missing, damaged or cannot be fetched."""


def descriptions_dir() -> Path:
    """The folder holding the shipped models' descriptions and logs.

    A clone's ``weights/`` folder (editable install); the copy inside the package otherwise.
    """
    root = config.repo_root()
    if root is not None and (root / "weights").is_dir():
        return root / "weights"
    return Path(__file__).resolve().parent / "shipped"


def _local_weights_dir() -> Path | None:
    """Where weights files are looked for before downloading: ``CAE_WEIGHTS_DIR``, else a clone's ``weights/``."""
    settings = config.get_settings()
    if settings.weights_dir is not None:
        return settings.weights_dir
    root = config.repo_root()
    return root / "weights" if root is not None else None


def _folder(weights_dir) -> Path:
    return Path(weights_dir) if weights_dir is not None else descriptions_dir()


def _sort_key(name: str):
    """'course-256' sorts as ('course', 256), so latent sizes come in numeric order."""
    family, _, size = name.rpartition("-")
    return (family, int(size)) if size.isdigit() else (name, 0)


def _kind(name: str, meta) -> str:
    """A model's kind: its description's ``kind``; by its name when the description cannot be read."""
    if isinstance(meta, dict) and meta.get("kind") in KINDS:
        return meta["kind"]
    return "codec" if name.startswith("codec-") else "autoencoder"


def _read(path: Path) -> dict:
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise PretrainedError(
            f"{path} cannot be read ({exc}); restore it from the repository."
        ) from exc
    if not isinstance(meta, dict):
        raise PretrainedError(
            f"{path} does not hold a model description (a JSON object); restore it from the repository."
        )
    return meta


def available(
    weights_dir: Path | None = None, architecture: str | None = None, kind: str = "autoencoder"
) -> list[str]:
    """Names of the shipped models of one kind, sorted by family and then size.

    Args:
        weights_dir: a folder of exported models to list instead of the shipped ones.
        architecture: only the autoencoders of this architecture (for example ``"course"``); None lists all.
        kind: ``"autoencoder"`` or ``"codec"``.
    """
    found = descriptions(weights_dir, kind)
    return [
        name
        for name, meta in found.items()
        if architecture is None or meta.get("model", {}).get("architecture") == architecture
    ]


def descriptions(weights_dir: Path | None = None, kind: str = "autoencoder") -> dict[str, dict]:
    """``{name: description}`` of the shipped models of one kind, in :func:`available` order, each file read
    once; ``{}`` for a description that cannot be read (:func:`info` says what is wrong with it)."""
    if kind not in KINDS:
        raise PretrainedError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}.")
    found = {}
    for path in _folder(weights_dir).glob("*.json"):
        try:
            meta = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            meta = {}
        name = path.name[: -len(".json")]
        if _kind(name, meta) == kind:
            found[name] = meta if isinstance(meta, dict) else {}
    return {name: found[name] for name in sorted(found, key=_sort_key)}


def _check_name(name, folder: Path) -> None:
    if not isinstance(name, str) or not _NAME.match(name):
        raise PretrainedError(
            f"{name!r} is not a model name: names are lowercase letters, digits and dashes, such as {MAIN!r} "
            f"(a path is not accepted). Available: {', '.join(available(folder)) or 'none'}."
        )


def info(name: str, weights_dir: Path | None = None) -> dict:
    """The description of shipped model ``name`` (its ``NAME.json``) as a dict.

    Raises:
        PretrainedError: the name is not a model name, no such model is shipped, or its description is damaged.
    """
    folder = _folder(weights_dir)
    _check_name(name, folder)
    path = folder / f"{name}.json"
    if not path.is_file():
        known = ", ".join(available(folder) + available(folder, kind="codec")) or "none"
        raise PretrainedError(f"no shipped model named {name!r} in {folder}; available: {known}.")
    return _read(path)


def benchmark(name: str) -> dict:
    """The recorded run of a benchmark shipped as ``NAME.json`` (``kind`` ``"benchmark"``): its command,
    machine and ``rows`` of results.

    Raises:
        PretrainedError: no such benchmark is shipped, or its file is damaged.
    """
    meta = info(name)
    if meta.get("kind") != "benchmark" or not isinstance(meta.get("rows"), list):
        raise PretrainedError(
            f"{name}.json is not a benchmark's recorded run; restore it from the repository."
        )
    return meta


def training_log(name: str, weights_dir: Path | None = None):
    """The training log of shipped model ``name`` (``NAME.log.csv``) as a pandas DataFrame, one row per epoch.

    Raises:
        PretrainedError: no such model, or it has no log.
    """
    import pandas as pd

    folder = _folder(weights_dir)
    info(name, folder)
    path = folder / f"{name}.log.csv"
    if not path.is_file():
        raise PretrainedError(
            f"shipped model {name!r} has no training log ({path} is missing); restore it from the repository."
        )
    return pd.read_csv(path)


def sha256(path: Path) -> str:
    """The SHA-256 of a file, as hexadecimal."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _download(file: str, expected: str) -> Path:
    """Fetch ``file`` from the repository's ``weights/`` folder into the Keras cache, its hash checked."""
    import os

    import keras

    settings = config.get_settings()
    base = settings.weights_url or f"{config.repository_url()}/raw/main/weights"
    url = f"{base}/{file}"
    cache = Path(os.environ.get("KERAS_HOME", "~/.keras")).expanduser()
    try:  # get_file writes elsewhere when the folder does not exist yet: create it first
        (cache / CACHE_SUBDIR).mkdir(parents=True, exist_ok=True)
    except OSError:
        import tempfile

        # where Keras goes when its home is read-only
        cache = Path(tempfile.gettempdir()) / ".keras"
        (cache / CACHE_SUBDIR).mkdir(parents=True, exist_ok=True)
    target = cache / CACHE_SUBDIR / file
    try:
        path = Path(
            keras.utils.get_file(
                file,
                url,
                file_hash=expected,
                hash_algorithm="sha256",
                cache_dir=str(cache),
                cache_subdir=CACHE_SUBDIR,
            )
        )
    except ValueError as exc:  # raised by get_file when the downloaded file's hash does not match
        target.unlink(missing_ok=True)
        raise PretrainedError(
            f"the file downloaded from {url} does not match its description (SHA-256 {expected[:12]}...); it "
            f"was removed and not loaded. The repository may hold newer weights than this copy of the course: "
            f"update the course (git pull, or reinstall the package) and try again."
        ) from exc
    except Exception as exc:  # get_file raises a plain Exception for network errors
        target.unlink(missing_ok=True)
        raise PretrainedError(
            f"could not download {file} from {url} ({exc}). Are you offline? Connect and try again, or put "
            f"the file into a folder and name it with CAE_WEIGHTS_DIR (a clone of the repository has them "
            f"all in weights/)."
        ) from exc
    if sha256(path) != expected:  # get_file checked it; this guards the file we are about to load
        path.unlink(missing_ok=True)
        raise PretrainedError(
            f"{path} does not match its description after downloading; it was removed and not loaded."
        )
    return path


def weights_file(name: str, weights_dir: Path | None = None) -> Path:
    """The path of shipped model ``name``'s weights file, checked against its SHA-256.

    Looks in ``weights_dir`` when given; otherwise in ``CAE_WEIGHTS_DIR`` or a clone's ``weights/``, and
    downloads the file into the Keras cache when it is not there.

    Raises:
        PretrainedError: unknown name, a file that does not match its description (it is never loaded; a
            downloaded one is removed), or a download that failed (for example offline).
    """
    meta = info(name, weights_dir)
    file = f"{name}.weights.h5"
    weights = meta.get("weights")
    expected = weights.get("sha256") if isinstance(weights, dict) else None
    if not isinstance(expected, str) or not re.fullmatch(r"[0-9a-f]{64}", expected):
        raise PretrainedError(
            f"the description {name}.json is damaged: it records no SHA-256 of {file}, so that file cannot "
            f"be checked and was not loaded. Restore {name}.json from the repository."
        )
    folder = Path(weights_dir) if weights_dir is not None else _local_weights_dir()
    local = folder / file if folder is not None else None
    if local is not None and local.is_file():
        found = sha256(local)
        if found != expected:
            raise PretrainedError(
                f"{local} does not match its description {name}.json (SHA-256 {found[:12]}..., expected "
                f"{expected[:12]}...): the file is damaged or belongs to another version. It was not loaded. "
                f"Restore it (git checkout -- weights/{file}) or delete it to download it again."
            )
        return local
    if weights_dir is not None:
        raise PretrainedError(
            f"the weights of {name!r} are missing: {folder / file} does not exist. Restore the file from the "
            f"repository (git checkout -- weights/{file})."
        )
    return _download(file, expected)


def load(name: str, weights_dir: Path | None = None):
    """Build shipped model ``name`` and load its weights.

    Args:
        name: one of :func:`available` (an autoencoder) or of ``available(kind="codec")``.
        weights_dir: a folder of exported models to load from instead of the shipped ones.

    Returns:
        For an autoencoder, ``(autoencoder, encoder, decoder)`` as :func:`cae_utils.models.build` returns
        them, trained. For a codec model ``codec-NAME``, the :class:`cae_utils.codec.Codec` that
        ``cae_utils.codec.load("NAME")`` returns.

    Raises:
        PretrainedError: the name is unknown, the weights file is missing, damaged or cannot be downloaded,
            or it does not fit the architecture its description names.
    """
    from . import models

    meta = info(name, weights_dir)
    if _kind(name, meta) == "benchmark":
        raise PretrainedError(
            f"{name!r} is a benchmark's recorded run, not a model: read it with pretrained.benchmark({name!r})."
        )
    if _kind(name, meta) == "codec":
        from .codec import CodecError
        from .codec import load as load_codec

        try:
            return load_codec(name.removeprefix("codec-"), weights_dir)
        except CodecError as exc:
            raise PretrainedError(str(exc)) from exc
    spec = meta.get("model")
    try:
        if not isinstance(spec, dict) or spec.get("architecture") not in models.ARCHITECTURES:
            raise ValueError(
                f"its model is {spec!r}; it must name an architecture: {', '.join(models.ARCHITECTURES)}"
            )
        config.check_number("latent_dim", spec.get("latent_dim"), 1, models.INPUT_BYTES, whole=True)
    except ValueError as exc:
        raise PretrainedError(
            f"the description {name}.json is damaged ({str(exc).rstrip('.')}), so the model cannot be built. Restore "
            f"{name}.json from the repository."
        ) from None
    weights = weights_file(name, weights_dir)
    autoencoder, encoder, decoder = models.build(
        spec["architecture"], latent_dim=spec["latent_dim"]
    )
    try:
        autoencoder.load_weights(weights)
    # Keras raises ValueError or OSError variants for mismatched or damaged files
    except Exception as exc:
        raise PretrainedError(
            f"{weights} does not fit the {spec['architecture']} architecture with latent {spec['latent_dim']} "
            f"that {name}.json describes ({type(exc).__name__}: {exc}). The file is damaged or belongs to "
            f"another model: restore both files from the repository."
        ) from exc
    return autoencoder, encoder, decoder


def _table_row(name: str, meta: dict) -> dict:
    """One row of :func:`table` from a description; KeyError or TypeError when a field is missing or odd."""
    test, pca, run = meta["test"], meta.get("pca") or {}, meta["training"]
    return {
        "model": name,
        "architecture": meta["model"]["architecture"],
        "latent values": meta["model"]["latent_dim"],
        "parameters": meta["parameters"],
        "epochs": run["epochs_done"],
        "training (min)": run["train_minutes"],
        "test PSNR mean (dB)": test["psnr"],
        "test PSNR pooled (dB)": test["pooled_psnr"],
        "PCA mean (dB)": pca.get("psnr", float("nan")),
        "PCA pooled (dB)": pca.get("pooled_psnr", float("nan")),
        "device": run["device"],
        "command": run["command"],
    }


def table(weights_dir: Path | None = None):
    """The shipped autoencoders, one row each, every number read from their ``NAME.json``.

    Returns:
        A pandas DataFrame indexed by model name (in :func:`available` order) with the columns
        ``architecture``, ``latent values``, ``parameters``, ``epochs`` (trained), ``training (min)``,
        ``test PSNR mean (dB)``, ``test PSNR pooled (dB)``, ``PCA mean (dB)``, ``PCA pooled (dB)`` and
        ``gain over PCA (dB)`` (NaN where the description records no PCA scores), ``device`` and ``command``.
    """
    import pandas as pd

    rows = []
    for name in available(weights_dir):
        try:
            rows.append(_table_row(name, info(name, weights_dir)))
        except (KeyError, TypeError, AttributeError) as exc:
            raise PretrainedError(
                f"the description {name}.json is damaged ({exc!r}): restore it from the repository, or "
                f"export the model again."
            ) from None
    columns = [
        "model", "architecture", "latent values", "parameters", "epochs", "training (min)", "test PSNR mean (dB)",
        "test PSNR pooled (dB)", "PCA mean (dB)", "PCA pooled (dB)", "device", "command",
    ]  # fmt: skip
    shipped = pd.DataFrame(rows, columns=columns).set_index("model")
    gain = shipped["test PSNR mean (dB)"] - shipped["PCA mean (dB)"]
    shipped.insert(shipped.columns.get_loc("PCA pooled (dB)") + 1, "gain over PCA (dB)", gain)
    return shipped
