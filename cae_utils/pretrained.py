"""The course's shipped, pretrained autoencoders: list them, load one by name, export a new one.

The weights live in ``cae_utils/weights/`` (installed with the package, so Colab has them too). Each
model ``NAME`` has three files there:

- ``NAME.weights.h5``  the Keras 3 weights;
- ``NAME.json``        what it is (architecture, latent size), how it was trained (the exact command,
  epochs, time, machine) and its scores on the CIFAR-10 test set, measured when it was exported;
- ``NAME.log.csv``     the training log, one row per epoch.

Usage::

    from cae_utils import pretrained
    pretrained.available()                      # ['pca-shortcut-32', ..., 'residual-256']
    autoencoder, encoder, decoder = pretrained.load(pretrained.MAIN)   # the course's main model

Maintainers export a finished training run (``python -m cae_utils.train ... --out DIR``) with::

    python -m cae_utils.pretrained export DIR NAME
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
from pathlib import Path

from . import models
from ._files import replace_atomically, write_text_atomically

__all__ = ["WEIGHTS_DIR", "MAIN", "PretrainedError", "available", "info", "load", "pca_scores", "export", "table", "markdown_table"]

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
#: The course's main model: the one notebooks 03, 04 and 06 train, evaluate and compare with the codec.
MAIN = "pca-shortcut-256"


class PretrainedError(RuntimeError):
    """A shipped model is unknown, missing or does not match its description."""


def _folder(weights_dir) -> Path:
    return Path(weights_dir) if weights_dir is not None else WEIGHTS_DIR


def _sort_key(name: str):
    """'residual-256' sorts as ('residual', 256), so latent sizes come in numeric order."""
    family, _, size = name.rpartition("-")
    return (family, int(size)) if size.isdigit() else (name, 0)


#: File-name prefix of the learned codecs that share ``weights/`` (see :mod:`cae_utils.codec`); not autoencoders.
CODEC_PREFIX = "codec-"


def available(weights_dir: Path | None = None, architecture: str | None = None) -> list[str]:
    """Names of the shipped autoencoders, sorted by architecture and then latent size (codecs excluded).

    Args:
        weights_dir: where to look; None uses the package's ``weights/`` folder.
        architecture: only the models of this architecture (for example ``"pca-shortcut"``: the latent-size
            sweep of the main model); None lists all.
    """
    folder = _folder(weights_dir)
    names = (p.name[: -len(".json")] for p in folder.glob("*.json"))
    names = sorted((n for n in names if not n.startswith(CODEC_PREFIX)), key=_sort_key)
    if architecture is not None:
        names = [n for n in names if info(n, folder)["model"]["architecture"] == architecture]
    return names


def info(name: str, weights_dir: Path | None = None) -> dict:
    """The description of shipped model ``name`` (its ``NAME.json``) as a dict.

    Raises:
        PretrainedError: no such model, or its description cannot be read.
    """
    folder = _folder(weights_dir)
    path = folder / f"{name}.json"
    if not path.is_file():
        known = ", ".join(available(folder)) or "none"
        raise PretrainedError(f"no shipped model named {name!r} in {folder}; available: {known}.")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise PretrainedError(f"{path} is not valid JSON ({exc}); restore it from the repository.") from exc


def load(name: str, weights_dir: Path | None = None):
    """Build shipped model ``name`` and load its weights.

    Args:
        name: one of :func:`available`.
        weights_dir: where to look; None uses the package's ``weights/`` folder.

    Returns:
        ``(autoencoder, encoder, decoder)`` as :func:`cae_utils.models.build` returns them, trained.

    Raises:
        PretrainedError: the name is unknown, the weights file is missing, or the file does not fit the
            architecture its description names (the message says which and what to do).
    """
    folder = _folder(weights_dir)
    meta = info(name, folder)
    weights = folder / f"{name}.weights.h5"
    if not weights.is_file():
        raise PretrainedError(
            f"the weights of {name!r} are missing: {weights} does not exist. Restore the file from the "
            f"repository (git checkout -- {weights.name}) or reinstall the course."
        )
    spec = meta["model"]
    autoencoder, encoder, decoder = models.build(spec["architecture"], latent_dim=spec["latent_dim"])
    try:
        autoencoder.load_weights(weights)
    except Exception as exc:  # Keras raises ValueError or OSError variants for mismatched or damaged files
        raise PretrainedError(
            f"{weights} does not fit the {spec['architecture']} architecture with latent {spec['latent_dim']} "
            f"that {name}.json describes ({type(exc).__name__}: {exc}). The file is damaged or belongs to "
            f"another model: restore both files from the repository."
        ) from exc
    return autoencoder, encoder, decoder


def pca_scores(x_train, x_test, n_components: int) -> dict:
    """Score PCA with ``n_components`` components, fitted on ``x_train``, on ``x_test``: the bar a model must beat.

    Returns:
        ``{"psnr": mean per-image PSNR, "pooled_psnr": ...}`` rounded to 3 decimals, as in ``NAME.json``.
    """
    from .baselines import fit_pca, pca_reconstruct
    from .metrics import summarize

    scores = summarize(x_test, pca_reconstruct(fit_pca(x_train, n_components), x_test).reconstructions, with_ssim=False)
    return {"psnr": round(scores["psnr"], 3), "pooled_psnr": round(scores["pooled_psnr"], 3)}


def export(run_dir, name: str, weights_dir: Path | None = None, x_test=None, x_train=None) -> dict:
    """Copy a finished training run into the shipped models, with its test-set scores and PCA's.

    Args:
        run_dir: a folder written by :func:`cae_utils.train.train` (``run.json``, ``best.weights.h5``,
            ``log.csv``, ``state.json``).
        name: the name to ship it under, for example ``"pca-shortcut-256"``.
        weights_dir: destination; None uses the package's ``weights/`` folder.
        x_test: the test images to score on; None loads the full CIFAR-10 test set.
        x_train: the training images PCA of the same size is fitted on (:func:`pca_scores`, recorded as
            ``"pca"``); None loads CIFAR-10's training split when ``x_test`` is None too, and otherwise
            records no PCA score.

    Returns:
        The description written to ``NAME.json``.
    """
    from . import data
    from .metrics import evaluate

    run_dir = Path(run_dir)
    folder = _folder(weights_dir)
    needed = ["run.json", "best.weights.h5", "log.csv", "state.json"]
    missing = [f for f in needed if not (run_dir / f).is_file()]
    if missing:
        raise PretrainedError(f"{run_dir} is not a finished training run: {', '.join(missing)} missing.")
    try:
        run = json.loads((run_dir / "run.json").read_text())
        state = json.loads((run_dir / "state.json").read_text())
        planned, done = run["training"]["epochs"], state["epochs_done"]
    except (ValueError, KeyError) as exc:
        raise PretrainedError(f"{run_dir}: run.json or state.json is damaged ({exc!r}).") from exc
    if done < planned and not state.get("stopped_early"):
        raise PretrainedError(
            f"{run_dir} has finished {done} of its {planned} epochs: let it finish (start the same command "
            f"again to resume it) before shipping it."
        )
    if x_test is None:
        cifar = data.load_cifar10(quick=False)
        x_test, x_train = cifar.x_test, cifar.x_train if x_train is None else x_train
    autoencoder, _, _ = models.build(run["model"]["architecture"], latent_dim=run["model"]["latent_dim"])
    autoencoder.load_weights(run_dir / "best.weights.h5")
    scores = evaluate(autoencoder, x_test)
    pca = pca_scores(x_train, x_test, run["model"]["latent_dim"]) if x_train is not None else None
    meta = {
        "name": name,
        "model": run["model"],
        "parameters": run["parameters"],
        "test": {
            "images": int(len(x_test)),
            "psnr": round(scores["psnr"], 3),
            "pooled_psnr": round(scores["pooled_psnr"], 3),
            "mse": round(scores["mse"], 6),
        },
        **({"pca": {"images": int(len(x_test)), "train_images": int(len(x_train)), **pca}} if pca else {}),
        "training": {
            **run["training"],
            "epochs_done": done,
            "best_epoch": state["best_epoch"],
            "train_minutes": round(state["train_seconds"] / 60, 1),
            "train_images": run["train_images"],
            "command": run["command"],
            "device": run["device"],
            "machine": run["machine"],
            "versions": run["versions"],
        },
    }
    folder.mkdir(parents=True, exist_ok=True)
    for src, dst in (("best.weights.h5", f"{name}.weights.h5"), ("log.csv", f"{name}.log.csv")):
        replace_atomically(folder / dst, lambda tmp, src=src: shutil.copyfile(run_dir / src, tmp))
    write_text_atomically(folder / f"{name}.json", json.dumps(meta, indent=2) + "\n")
    return meta


def table(weights_dir: Path | None = None):
    """The shipped models, one row each, every number read from their ``NAME.json``.

    Returns:
        A pandas DataFrame indexed by model name (in :func:`available` order) with the columns
        ``architecture``, ``latent values``, ``parameters``, ``epochs`` (trained), ``training (min)``,
        ``test PSNR mean (dB)``, ``test PSNR pooled (dB)``, ``PCA mean (dB)``, ``PCA pooled (dB)`` and
        ``gain over PCA (dB)`` (NaN where the description records no PCA scores), ``device`` and ``command``.
    """
    import pandas as pd

    rows = []
    for name in available(weights_dir):
        meta = info(name, weights_dir)
        test, pca, run = meta["test"], meta.get("pca") or {}, meta["training"]
        rows.append({
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
        })
    columns = ["model", "architecture", "latent values", "parameters", "epochs", "training (min)", "test PSNR mean (dB)",
               "test PSNR pooled (dB)", "PCA mean (dB)", "PCA pooled (dB)", "device", "command"]
    shipped = pd.DataFrame(rows, columns=columns).set_index("model")
    gain = shipped["test PSNR mean (dB)"] - shipped["PCA mean (dB)"]
    shipped.insert(shipped.columns.get_loc("PCA pooled (dB)") + 1, "gain over PCA (dB)", gain)
    return shipped


def markdown_table(weights_dir: Path | None = None) -> str:
    """The shipped models as a Markdown table (the README's), every number read from :func:`table`."""
    lines = [
        "| model | latent values | parameters | test PSNR mean / pooled | PCA, same size, mean / pooled | gain over PCA (mean) | training |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, row in table(weights_dir).iterrows():
        recorded = not math.isnan(row["PCA mean (dB)"])  # NaN: no PCA scores in the description
        versus = f"{row['PCA mean (dB)']:.2f} / {row['PCA pooled (dB)']:.2f} dB" if recorded else "not recorded"
        gain = f"{row['gain over PCA (dB)']:+.2f} dB" if recorded else ""
        lines.append(
            f"| `{name}` | {row['latent values']} | {row['parameters']:,} | {row['test PSNR mean (dB)']:.2f} / "
            f"{row['test PSNR pooled (dB)']:.2f} dB | {versus} | {gain} | {row['epochs']} epochs, "
            f"{row['training (min)']:.0f} min on {row['device']} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """``python -m cae_utils.pretrained list`` or ``... export RUN_DIR NAME``."""
    parser = argparse.ArgumentParser(prog="python -m cae_utils.pretrained", description="Shipped pretrained models.")
    sub = parser.add_subparsers(dest="command", required=True)
    lister = sub.add_parser("list", help="print the shipped models and their test PSNR")
    lister.add_argument("--markdown", action="store_true", help="print the README's table of shipped models")
    exp = sub.add_parser("export", help="ship a finished training run, scored on the full test set")
    exp.add_argument("run_dir")
    exp.add_argument("name")
    args = parser.parse_args(argv)
    try:
        if args.command == "list" and args.markdown:
            print(markdown_table())
        elif args.command == "list":
            for name, row in table().iterrows():
                recorded = not math.isnan(row["PCA mean (dB)"])
                versus = f"; PCA of the same size {row['PCA mean (dB)']:.2f} / {row['PCA pooled (dB)']:.2f} dB" if recorded else ""
                print(f"{name:18s} test PSNR {row['test PSNR mean (dB)']:.2f} dB mean, "
                      f"{row['test PSNR pooled (dB)']:.2f} dB pooled{versus}")
        else:
            meta = export(args.run_dir, args.name)
            print(json.dumps(meta["test"]))
    except PretrainedError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
