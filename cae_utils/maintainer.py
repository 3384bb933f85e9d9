"""Maintainers' tools for the shipped models: export a finished training run, print the README's table.

Not part of the learner's API. Run from a clone, whose ``weights/`` folder receives the files::

    python -m cae_utils.maintainer export RUN_DIR NAME          # an autoencoder run (cae_utils.train)
    python -m cae_utils.maintainer export-codec RUN_DIR NAME    # a codec run, shipped as codec-NAME
    python -m cae_utils.maintainer remeasure-codec NAME         # a shipped codec's rate, measured again
    python -m cae_utils.maintainer table                        # the README's table of autoencoders

Each export scores the model on the full CIFAR-10 test set and writes ``NAME.weights.h5`` (weights only, no
optimizer state), ``NAME.log.csv`` and, last, ``NAME.json`` with the weights file's size and SHA-256.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

from . import config, models
from ._files import replace_atomically, write_text_atomically
from .pretrained import PretrainedError, sha256, table

__all__ = ["export", "export_codec", "remeasure_codec", "pca_scores", "markdown_table", "main"]


def _destination(weights_dir, name: str) -> Path:
    """The folder model ``name``'s three files go to, checked before any work (:func:`cae_utils.cli.check_outputs`)."""
    from .cli import check_outputs
    from .pretrained import _check_name

    if weights_dir is not None:
        folder = Path(weights_dir)
    else:
        root = config.repo_root()
        if root is None:
            raise PretrainedError(
                "exporting writes into a clone's weights/ folder: run it from a clone of the repository."
            )
        folder = root / "weights"
    _check_name(name, folder)  # a registry name: never a path
    check_outputs([folder / f"{name}{suffix}" for suffix in (".weights.h5", ".log.csv", ".json")])
    return folder


def _read_run(run_dir: Path, error) -> tuple[dict, dict]:
    """``run.json`` and ``state.json`` of a finished run; ``error(message)`` makes the exception to raise."""
    from .train import BEST_FILE, LOG_FILE, RUN_FILE, STATE_FILE, TrainingError, _read_json

    missing = [
        f for f in (RUN_FILE, BEST_FILE, LOG_FILE, STATE_FILE) if not (run_dir / f).is_file()
    ]
    if missing:
        raise error(f"{run_dir} is not a finished training run: {', '.join(missing)} missing.")
    try:
        run, state = _read_json(run_dir / RUN_FILE), _read_json(run_dir / STATE_FILE)
    except TrainingError as exc:
        raise error(str(exc)) from None
    try:
        planned = config.check_number(
            "epochs", run["training"]["epochs"], 1, config.MAX_EPOCHS, whole=True
        )
        done = config.check_number("epochs_done", state["epochs_done"], 0, planned, whole=True)
        if done < planned and state.get("stopped_early") is not True:
            raise error(
                f"{run_dir} has finished {done} of its {planned} epochs: let it finish (start the same "
                f"command again to resume it) before shipping it."
            )
        config.check_number("best_epoch", state["best_epoch"], 1, done, whole=True)
        config.check_number("train_seconds", state["train_seconds"], 0, float("inf"))
        if not isinstance(run["model"], dict):
            raise TypeError(f"model is {run['model']!r}, not a description")
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        if isinstance(exc, error):
            raise
        raise error(f"{run_dir}: run.json or state.json is damaged ({exc!r}).") from exc
    return run, state


def _training_record(run: dict, state: dict) -> dict:
    return {
        **run["training"],
        "epochs_done": state["epochs_done"],
        "best_epoch": state["best_epoch"],
        "train_minutes": round(state["train_seconds"] / 60, 1),
        "train_images": run.get("train_images"),
        "command": run.get("command"),
        "device": run.get("device"),
        "machine": run.get("machine"),
        "versions": run.get("versions"),
    }


def _write(folder: Path, name: str, model, write_log, meta: dict) -> dict:
    """Write ``NAME.weights.h5`` (weights only), ``NAME.log.csv`` and, last, ``NAME.json`` with the file's hash."""
    weights = replace_atomically(folder / f"{name}.weights.h5", model.save_weights)
    replace_atomically(folder / f"{name}.log.csv", write_log)
    meta = {
        **meta,
        "weights": {
            "file": weights.name,
            "bytes": weights.stat().st_size,
            "sha256": sha256(weights),
        },
    }
    write_text_atomically(folder / f"{name}.json", json.dumps(meta, indent=2) + "\n")
    return meta


def pca_scores(x_train, x_test, n_components: int) -> dict:
    """Score PCA with ``n_components`` components, fitted on ``x_train``, on ``x_test``: the bar a model must beat.

    Returns:
        ``{"psnr": mean per-image PSNR, "pooled_psnr": ...}`` rounded to 3 decimals, as in ``NAME.json``.
    """
    from .baselines import fit_pca, pca_reconstruct
    from .metrics import summarize

    reconstructed = pca_reconstruct(fit_pca(x_train, n_components), x_test).reconstructions
    scores = summarize(x_test, reconstructed, with_ssim=False)
    return {"psnr": round(scores["psnr"], 3), "pooled_psnr": round(scores["pooled_psnr"], 3)}


def export(run_dir, name: str, weights_dir: Path | None = None, x_test=None, x_train=None) -> dict:
    """Ship a finished autoencoder training run as model ``name``, with its test-set scores and PCA's.

    Args:
        run_dir: a folder written by :func:`cae_utils.train.train`.
        name: the name to ship it under, for example ``"course-256"``.
        weights_dir: destination; None uses the clone's ``weights/`` folder.
        x_test: the test images to score on; None loads the full CIFAR-10 splits and also records the
            scores on the validation split (``"validation"``).
        x_train: the training images PCA of the same size is fitted on (recorded as ``"pca"``); None loads
            CIFAR-10's training split when ``x_test`` is None too, and otherwise records no PCA score.

    Returns:
        The description written to ``NAME.json``.
    """
    import shutil

    from . import data
    from .metrics import evaluate
    from .train import BEST_FILE, LOG_FILE

    run_dir = Path(run_dir)
    run, state = _read_run(run_dir, PretrainedError)
    folder = _destination(weights_dir, name)
    x_val = None
    if x_test is None:
        cifar = data.load_cifar10(quick=False)
        x_test, x_train = cifar.x_test, cifar.x_train if x_train is None else x_train
        x_val = cifar.x_val
    autoencoder, _, _ = models.build(
        run["model"]["architecture"], latent_dim=run["model"]["latent_dim"]
    )
    # into a fresh, uncompiled model: the file it writes holds no optimizer state
    autoencoder.load_weights(run_dir / BEST_FILE)
    scores = evaluate(autoencoder, x_test)
    pca = pca_scores(x_train, x_test, run["model"]["latent_dim"]) if x_train is not None else None
    meta = {
        "name": name,
        "kind": "autoencoder",
        "model": run["model"],
        "parameters": run["parameters"],
        "test": {
            "images": int(len(x_test)),
            "psnr": round(scores["psnr"], 3),
            "pooled_psnr": round(scores["pooled_psnr"], 3),
            "mse": round(scores["mse"], 6),
        },
        **(
            {"pca": {"images": int(len(x_test)), "train_images": int(len(x_train)), **pca}}
            if pca
            else {}
        ),
        "training": _training_record(run, state),
    }
    if x_val is not None:
        val = evaluate(autoencoder, x_val)
        meta["validation"] = {
            "images": int(len(x_val)),
            "psnr": round(val["psnr"], 3),
            "pooled_psnr": round(val["pooled_psnr"], 3),
        }
    return _write(
        folder, name, autoencoder, lambda tmp: shutil.copyfile(run_dir / LOG_FILE, tmp), meta
    )


def _codec_log(run_dir: Path):
    """One row per epoch of a codec run: ``rate.csv`` (rate, distortion) with ``log.csv``'s ``lr`` and ``seconds``."""
    import pandas as pd

    from .codec.training import RATE_FILE
    from .train import LOG_FILE

    log = pd.read_csv(run_dir / LOG_FILE)
    if not (run_dir / RATE_FILE).is_file():
        return log
    return pd.read_csv(run_dir / RATE_FILE).merge(
        log[["epoch", "lr", "seconds"]], on="epoch", how="left"
    )


def export_codec(run_dir, name: str, weights_dir=None, x_test=None) -> dict:
    """Ship a finished codec training run as ``codec-NAME``, its rate and quality measured through real .cae files.

    Loads the run's best weights, computes the integer tables (:func:`cae_utils.codec.model.update_tables`)
    and measures the whole-file rate and PSNR on the test images.

    Args:
        run_dir: a folder written by :func:`cae_utils.codec.training.train_codec`.
        name: the model name (its .cae files name it by its number in
            :data:`cae_utils.codec.fileformat.MODEL_NUMBERS`; a name outside the table writes model 0).
        weights_dir: destination; None uses the clone's ``weights/`` folder.
        x_test: uint8 or [0, 1] float test images (N, H, W, 3); None loads the full CIFAR-10 test set.

    Returns:
        The description written to ``codec-NAME.json``.

    Raises:
        CodecError: the run is unfinished, damaged or not a codec run, or the name is invalid.
    """
    from .codec import api, fileformat
    from .codec.fileformat import CodecError
    from .codec.model import build_codec_model, update_tables
    from .data import to_uint8
    from .train import BEST_FILE

    fileformat.check_model_name(name)
    run_dir = Path(run_dir)
    run, state = _read_run(run_dir, CodecError)
    spec = run["model"]
    if spec.get("kind") != "codec":
        raise CodecError(
            f"{run_dir} is not a codec run (its run.json names model.kind {spec.get('kind')!r})."
        )
    folder = _destination(weights_dir, api.PREFIX + name)
    if x_test is None:
        from . import data

        x_test = data.load_cifar10(quick=False).x_test
    model = build_codec_model(
        spec["lmbda"],
        spec["channels"],
        spec["latent_channels"],
        spec["table_size"],
        dtype="float32",
    )
    model.load_weights(run_dir / BEST_FILE)
    update_tables(model)
    codec = api.Codec.from_model(name, model)
    test = api.rate_and_quality(codec, to_uint8(x_test))
    meta = {
        "name": name,
        "kind": "codec",
        "model": spec,
        "nominal_bpp": test["bpp"],
        "tables_crc32": codec.tables.fingerprint(),
        "parameters": run.get("parameters"),
        "test": test,
        "training": _training_record(run, state),
    }
    meta = _write(
        folder,
        api.PREFIX + name,
        model,
        lambda tmp: _codec_log(run_dir).to_csv(tmp, index=False),
        meta,
    )
    api._LOADED.clear()
    return meta


def remeasure_codec(name: str, weights_dir=None, x_test=None) -> dict:
    """Measure shipped codec ``codec-NAME`` again through real .cae files and update its description.

    For a change of the file format or the coder: ``test`` and ``nominal_bpp`` in ``codec-NAME.json`` are
    measured anew; the weights, the log and the rest of the description stay as they are.

    Args:
        name: the model name (without ``codec-``).
        weights_dir: the folder of the shipped files; None uses the clone's ``weights/`` folder.
        x_test: uint8 or [0, 1] float test images (N, H, W, 3); None loads the full CIFAR-10 test set.

    Returns:
        The updated description.

    Raises:
        CodecError: no such shipped model, or its files are damaged.
    """
    from .codec import api
    from .data import to_uint8
    from .pretrained import info

    folder = _destination(weights_dir, api.PREFIX + name)
    codec = api.load(name, folder)
    if x_test is None:
        from . import data

        x_test = data.load_cifar10(quick=False).x_test
    test = api.rate_and_quality(codec, to_uint8(x_test))
    meta = {**info(api.PREFIX + name, folder), "nominal_bpp": test["bpp"], "test": test}
    write_text_atomically(folder / f"{api.PREFIX}{name}.json", json.dumps(meta, indent=2) + "\n")
    api._LOADED.clear()
    return meta


def markdown_table(weights_dir: Path | None = None) -> str:
    """The shipped autoencoders as a Markdown table (the README's), every number read from their descriptions."""
    header = (
        "| model | latent values | parameters | test PSNR mean / pooled | PCA, same size, mean / pooled "
        "| gain over PCA (mean) | training |"
    )
    lines = [header, "| --- | --- | --- | --- | --- | --- | --- |"]
    for name, row in table(weights_dir).iterrows():
        recorded = not math.isnan(row["PCA mean (dB)"])  # NaN: no PCA scores in the description
        versus = (
            f"{row['PCA mean (dB)']:.2f} / {row['PCA pooled (dB)']:.2f} dB"
            if recorded
            else "not recorded"
        )
        gain = f"{row['gain over PCA (dB)']:+.2f} dB" if recorded else ""
        lines.append(
            f"| `{name}` | {row['latent values']} | {row['parameters']:,} | {row['test PSNR mean (dB)']:.2f} / "
            f"{row['test PSNR pooled (dB)']:.2f} dB | {versus} | {gain} | {row['epochs']} epochs, "
            f"{row['training (min)']:.0f} min on {row['device']} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """The maintainer command line: export, export-codec, remeasure-codec, table; returns the exit status."""
    from .cli import run_command

    parser = argparse.ArgumentParser(
        prog="python -m cae_utils.maintainer", description=__doc__.splitlines()[0]
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("table", help="print the README's table of shipped autoencoders")
    for command, what in (("export", "an autoencoder"), ("export-codec", "a codec")):
        p = sub.add_parser(
            command, help=f"ship a finished training run of {what}, scored on the full test set"
        )
        p.add_argument("run_dir")
        p.add_argument("name")
    p = sub.add_parser(
        "remeasure-codec",
        help="measure a shipped codec's rate and quality again (after a file-format change)",
    )
    p.add_argument("name", help="the model name, without codec-")
    args = parser.parse_args(argv)

    def work() -> int:
        if args.command == "table":
            print(markdown_table())
        elif args.command == "export":
            print(json.dumps(export(args.run_dir, args.name)["test"]))
        elif args.command == "remeasure-codec":
            print(json.dumps(remeasure_codec(args.name)["test"]))
        else:
            print(json.dumps(export_codec(args.run_dir, args.name)["test"]))
        return 0

    return run_command(work)


if __name__ == "__main__":
    sys.exit(main())
