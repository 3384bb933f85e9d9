"""Training: one entry point for the notebooks and the command line, on a CPU or on GPUs.

The recipe, and why:

- **Loss: mean squared error**, the error the course reports (PSNR is a function of it). The
  founding notebook said MSE but trained binary cross-entropy; the course trains what it says.
- **Optimizer: Adam** with a **cosine learning-rate schedule** that decays from ``learning_rate`` to 1%
  of it over the planned epochs: fast progress early, fine convergence at the end, and nothing to
  tune. Optionally the schedule first rises linearly for ``warmup_epochs`` from 1% of ``learning_rate``
  (the first steps start at a small rate), and ``clipnorm`` caps each gradient's norm.
  The schedule lives in the optimizer, so it is saved with the checkpoint and resumes exactly.
- **Input: a tf.data pipeline** (:func:`cae_utils.data.make_dataset`): shuffled every epoch, batched,
  prefetched so the next batch is ready while the device computes.
- **Callbacks** (:class:`RunKeeper`, and Keras's ``TerminateOnNaN``): a CSV log of every epoch, a
  checkpoint of the whole model and optimizer after every epoch, the best weights by validation loss,
  and early stopping that restores them.
- **Device** (:func:`configure_device`): on a GPU, mixed precision (``mixed_float16``; the model's
  output layer stays float32) and XLA; with several GPUs, ``tf.distribute.MirroredStrategy``; on a CPU,
  float32 (CPUs have no fast float16) without XLA.

A run writes into one folder::

    run.json            what was trained: model, settings, data size, command, versions, device
    log.csv             one row per finished epoch (loss, psnr, val_loss, val_psnr, lr, seconds)
    epoch-NNN.keras     model + optimizer after the last finished epoch NNN (for resuming)
    best.weights.h5     weights of the epoch with the lowest validation loss
    state.json          epochs done, which checkpoint holds them, best epoch, training time so far

``state.json`` is written last after every epoch and names the checkpoint it belongs to, so a run
interrupted at any moment resumes from a consistent state. Started again on the same folder, training
resumes after the last finished epoch; the learning-rate schedule and the optimizer continue exactly
(the shuffling order after a resume differs from an uninterrupted run). Command line::

    python -m cae_utils.train --architecture course --latent-dim 256 --epochs 80 --flip --out runs/course-256
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import shlex
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import keras
import numpy as np

from . import config, data, models
from ._files import replace_atomically, write_text_atomically
from .metrics import evaluate, psnr_metric

__all__ = [
    "TrainingError",
    "RunConfig",
    "TrainResult",
    "configure_device",
    "set_seed",
    "compile_autoencoder",
    "RunKeeper",
    "fit_in_run_folder",
    "Fitted",
    "train",
    "main",
]

RUN_FILE, LOG_FILE, BEST_FILE, STATE_FILE = "run.json", "log.csv", "best.weights.h5", "state.json"
LOG_COLUMNS = ("epoch", "loss", "psnr", "val_loss", "val_psnr", "lr", "seconds")
#: Settings that may change when a run is resumed (everything else must match the saved run).
RESUMABLE_CHANGES = ("patience",)


def checkpoint_name(epochs_done: int) -> str:
    """File name of the checkpoint written after ``epochs_done`` epochs, e.g. ``epoch-007.keras``."""
    return f"epoch-{epochs_done:03d}.keras"


class TrainingError(ValueError):
    """A training run cannot start as asked; the message says why and what to do. Nothing was written."""


@dataclass(frozen=True)
class RunConfig:
    """Everything that defines a training run.

    Attributes:
        architecture: a key of :data:`cae_utils.models.ARCHITECTURES`: ``"course"`` (the course model, the
            default) or ``"baseline"`` (notebook 02's model).
        latent_dim: length of the latent vector.
        epochs: planned epochs (the learning-rate schedule spans them).
        batch_size: images per training step.
        learning_rate: Adam's peak learning rate (the schedule's start, or the end of its warm-up).
        warmup_epochs: epochs over which the rate rises linearly to ``learning_rate`` (0: no warm-up).
        clipnorm: largest norm of each gradient (Adam's ``clipnorm``); None clips nothing.
        patience: stop after this many epochs without a better validation loss.
        seed: seed of the data split, weights initialisation and shuffling; None takes ``CAE_SEED``.
        deterministic: make TensorFlow's ops deterministic (slower; same result on every run).
        flip: mirror training images left to right at random (:func:`cae_utils.data.make_dataset`).
    """

    architecture: str = "course"
    latent_dim: int = 256
    epochs: int = 30
    batch_size: int = 128
    learning_rate: float = 1e-3
    warmup_epochs: int = 0
    clipnorm: float | None = None
    patience: int = 10
    seed: int | None = None
    deterministic: bool = False
    flip: bool = False

    def __post_init__(self):
        if self.architecture not in models.ARCHITECTURES:
            raise TrainingError(
                f"unknown architecture {self.architecture!r}: choose one of {', '.join(models.ARCHITECTURES)}."
            )
        check_schedule(self, {"latent_dim": 32 * 32 * 3})
        config.check_number(
            "warmup_epochs", self.warmup_epochs, 0, self.epochs - 1, whole=True, error=TrainingError
        )
        if self.clipnorm is not None:
            config.check_number(
                "clipnorm", self.clipnorm, 0, 1e6, error=TrainingError, above_low=True
            )

    def model_spec(self) -> dict:
        """The settings that define the model's weights: a checkpoint fits only the same spec."""
        return {"architecture": self.architecture, "latent_dim": self.latent_dim}


#: Largest epochs, batch size and patience a run may ask for.
MAX_EPOCHS, MAX_BATCH, MAX_PATIENCE = config.MAX_EPOCHS, 45_000, 100_000


def check_schedule(run, sizes: dict | None = None) -> None:
    """Validate the settings every training run has, in place; raise :class:`TrainingError` if one is bad.

    Sets ``run.seed`` from ``CAE_SEED`` when it is None, and checks (:func:`cae_utils.config.check_number`)
    that ``epochs``, ``batch_size``, ``patience`` and each attribute named in ``sizes`` (with its largest
    value) are whole numbers from 1, that the seed lies from 0 to ``2**32 - 1`` and ``learning_rate`` in
    (0, 1]. Used by :class:`RunConfig` and the codec's run settings.
    """
    if run.seed is None:
        object.__setattr__(run, "seed", config.get_settings().seed)
    highest = {
        **(sizes or {}),
        "epochs": MAX_EPOCHS,
        "batch_size": MAX_BATCH,
        "patience": MAX_PATIENCE,
    }
    for name, high in highest.items():
        config.check_number(name, getattr(run, name), 1, high, whole=True, error=TrainingError)
    config.check_number("seed", run.seed, 0, config.MAX_SEED, whole=True, error=TrainingError)
    config.check_number(
        "learning_rate", run.learning_rate, 0, 1, error=TrainingError, above_low=True
    )


@dataclass
class TrainResult:
    """What :func:`train` returns.

    Attributes:
        autoencoder, encoder, decoder: the trained models (best weights restored).
        history: one row per epoch of the whole run (resumed epochs included), as a pandas DataFrame.
        out_dir: the run folder, or None when nothing was written.
        train_seconds: training time of the whole run, resumed parts included.
    """

    autoencoder: object
    encoder: object
    decoder: object
    history: object
    out_dir: Path | None
    train_seconds: float


# ----------------------------------------------------------------------------------------- device


def configure_device(mixed_precision: bool | None = None):
    """Choose how to compute: GPU(s) with mixed precision, or the CPU in float32.

    Args:
        mixed_precision: None picks automatically (on with a GPU, off on a CPU, where float16 is slow).

    Returns:
        ``(strategy, jit_compile, description)``: the ``tf.distribute`` strategy to build and train
        the model under (``MirroredStrategy`` with several GPUs, the default one otherwise), whether to
        let XLA compile the training step (GPU only), and one line describing the set-up.
    """
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if mixed_precision is None:
        mixed_precision = bool(gpus)
    keras.mixed_precision.set_global_policy("mixed_float16" if mixed_precision else "float32")
    if len(gpus) > 1:
        strategy = tf.distribute.MirroredStrategy()
        where = f"{len(gpus)} GPUs (MirroredStrategy: each batch is split across them)"
    elif gpus:
        strategy = tf.distribute.get_strategy()
        where = "1 GPU"
    else:
        strategy = tf.distribute.get_strategy()
        where = f"CPU ({os.cpu_count()} cores)"
    precision = "mixed_float16" if mixed_precision else "float32"
    return strategy, bool(gpus), f"{where}, {precision}, XLA {'on' if gpus else 'off'}"


def set_seed(seed: int, deterministic: bool = False) -> None:
    """Seed Python, NumPy and TensorFlow (``keras.utils.set_random_seed``).

    Args:
        seed: the seed.
        deterministic: also make TensorFlow's ops deterministic, so a run repeats bit for bit on the
            same machine (at some cost in speed).
    """
    import tensorflow as tf

    keras.utils.set_random_seed(seed)
    if deterministic:
        tf.config.experimental.enable_op_determinism()


def learning_rate_schedule(learning_rate: float, total_steps: int, warmup_steps: int = 0):
    """Keras's ``CosineDecay`` over ``total_steps`` optimizer steps: a linear rise over ``warmup_steps``
    from 1% of ``learning_rate`` (none when 0), then a cosine decay from ``learning_rate`` to 1% of it."""
    return keras.optimizers.schedules.CosineDecay(
        learning_rate / 100 if warmup_steps else learning_rate,
        decay_steps=max(total_steps - warmup_steps, 1),
        alpha=0.01,
        warmup_target=learning_rate if warmup_steps else None,
        warmup_steps=warmup_steps,
    )


def compile_autoencoder(
    autoencoder,
    learning_rate: float,
    total_steps: int,
    warmup_steps: int = 0,
    clipnorm: float | None = None,
    jit_compile: bool = False,
) -> None:
    """Compile with MSE loss, the PSNR metric and Adam (gradients clipped to ``clipnorm``) on
    :func:`learning_rate_schedule` ``(learning_rate, total_steps, warmup_steps)``."""
    schedule = learning_rate_schedule(learning_rate, total_steps, warmup_steps)
    autoencoder.compile(
        optimizer=keras.optimizers.Adam(schedule, clipnorm=clipnorm),
        loss="mse",
        metrics=[keras.metrics.MeanMetricWrapper(psnr_metric, name="psnr")],
        jit_compile=jit_compile,
    )


# -------------------------------------------------------------------------------------- run folder


def _read_json(path: Path) -> dict:
    """A run folder's JSON file as a dict whose ``model`` and ``training`` entries, when present, are dicts."""
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise TrainingError(
            f"{path} cannot be read ({exc}); it is not a run folder this code wrote."
        ) from exc
    if not isinstance(value, dict) or any(
        not isinstance(value.get(key, {}), dict) for key in ("model", "training")
    ):
        raise TrainingError(
            f"{path} is damaged (it does not hold the JSON object this code writes); restore it, or start "
            f"a new run in another folder. Nothing was changed."
        )
    return value


def _log_rows(out_dir: Path) -> int:
    """The number of epoch rows in the run folder's ``log.csv`` (0 when it is missing)."""
    log = out_dir / LOG_FILE
    return max(len(log.read_bytes().splitlines()) - 1, 0) if log.is_file() else 0


def _file_start(path: Path, n: int) -> bytes:
    """The first ``n`` bytes of regular file ``path``; empty when it is missing or not a regular file."""
    if not path.is_file():
        return b""
    with open(path, "rb") as f:
        return f.read(n)


def _check_run_folder(out_dir: Path, run: RunConfig) -> tuple[dict | None, dict | None]:
    """Decide whether ``out_dir`` starts a new run or resumes one; raise before anything is written.

    Returns:
        ``(saved_run, state)``: the folder's ``run.json`` and ``state.json`` when it holds a run of the
        same model and settings with at least one finished epoch; ``(saved_run, None)`` when that run
        died before finishing an epoch; ``(None, None)`` when the folder is new or empty.

    Raises:
        TrainingError: the path is a file or lies in a missing folder, the folder holds something
            else, or a run with another model or other settings (only those in
            :data:`RESUMABLE_CHANGES` may differ).
    """
    if out_dir.exists() and not out_dir.is_dir():
        raise TrainingError(f"--out {out_dir} is a file, not a folder: choose a folder name.")
    if out_dir.is_symlink() and not out_dir.exists():
        raise TrainingError(
            f"--out {out_dir} is a link to a folder that does not exist: create that folder or choose "
            f"another name."
        )
    if not out_dir.exists() and not out_dir.parent.is_dir():
        raise TrainingError(
            f"--out {out_dir}: the folder {out_dir.parent} does not exist. Create it first "
            f"(mkdir -p {out_dir.parent}) or choose a run folder inside an existing folder, such as runs/."
        )
    if not out_dir.exists() or not any(out_dir.iterdir()):
        return None, None
    run_file = out_dir / RUN_FILE
    if not run_file.is_file():
        raise TrainingError(
            f"--out {out_dir} is not empty and holds no {RUN_FILE}: it is not a training run folder. "
            f"Choose a new or empty folder; nothing was written."
        )
    saved = _read_json(run_file)
    if saved.get("model") != run.model_spec():
        raise TrainingError(
            f"--out {out_dir} holds the checkpoint of a different model ({saved.get('model')}); you asked for "
            f"{run.model_spec()}. Choose another --out folder, or pass the saved model's settings to resume it. "
            f"Nothing was overwritten."
        )
    wanted, had = asdict(run), saved.get("training", {})
    changed = [k for k in wanted if k not in RESUMABLE_CHANGES and had.get(k) != wanted[k]]
    if changed:
        saved_args = " ".join(f"--{k.replace('_', '-')} {had.get(k)}" for k in changed)
        raise TrainingError(
            f"--out {out_dir} holds a run with other settings "
            f"({', '.join(f'{k}: {had.get(k)} there, {wanted[k]} now' for k in changed)}). "
            f"Resume it with the same settings ({saved_args}), or start a new run in another folder. "
            f"Nothing was overwritten."
        )
    if not (out_dir / STATE_FILE).is_file():
        # A run that died in its first epoch starts afresh; one with later epochs lost its state.json.
        later = [p.name for p in out_dir.glob("epoch-*.keras") if p.name != checkpoint_name(1)]
        rows = _log_rows(out_dir)
        if later or rows > 1:
            found = ", ".join(later) or f"{rows} rows in {LOG_FILE}"
            raise TrainingError(
                f"--out {out_dir} holds a run with finished epochs ({found}) but no {STATE_FILE}, so "
                f"it cannot tell where to resume. Restore {STATE_FILE}, or start a new run in another "
                f"folder. Nothing was changed."
            )
        return saved, None
    state = _read_json(out_dir / STATE_FILE)
    checkpoint = state.get("checkpoint") if isinstance(state, dict) else None
    if not isinstance(checkpoint, str) or Path(checkpoint).name != checkpoint:
        raise TrainingError(
            f"--out {out_dir}: {STATE_FILE} is damaged (it names no checkpoint file), so the run cannot "
            f"resume where it stopped. Restore the file, or start a new run in another folder. Nothing was "
            f"changed."
        )
    if not (out_dir / checkpoint).is_file():
        raise TrainingError(
            f"--out {out_dir}: {STATE_FILE} says the run resumes from {checkpoint}, which is missing, so it "
            f"cannot resume where it stopped. Restore that file, or start a new run in another folder. "
            f"Nothing was changed."
        )
    try:
        for key in ("epochs_done", "best_epoch", "wait"):
            config.check_number(key, state[key], 0, MAX_EPOCHS, whole=True, error=TrainingError)
        for key in ("best_val_loss", "train_seconds"):
            config.check_number(key, state[key], 0, float("inf"), error=TrainingError)
        if checkpoint != checkpoint_name(state["epochs_done"]):
            raise TrainingError(
                f"it names {checkpoint}, but after {state['epochs_done']} epochs the checkpoint is "
                f"{checkpoint_name(state['epochs_done'])}"
            )
        if not isinstance(state.get("stopped_early", False), bool):
            raise TrainingError(
                f"stopped_early must be true or false, got {state['stopped_early']!r}"
            )
        best = out_dir / BEST_FILE
        if state["best_epoch"] and _file_start(best, 8) != b"\x89HDF\r\n\x1a\n":
            raise TrainingError(
                f"{BEST_FILE} (the weights of epoch {state['best_epoch']}) is missing or not an HDF5 file"
            )
        rows = _log_rows(out_dir)
        if rows < state["epochs_done"]:
            raise TrainingError(
                f"{LOG_FILE} holds {rows} rows for {state['epochs_done']} finished epochs"
            )
    except (KeyError, TrainingError) as exc:
        raise TrainingError(
            f"--out {out_dir}: {STATE_FILE} is damaged ({exc}), so the run cannot resume. Restore the file, "
            f"or start a new run in another folder. Nothing was changed."
        ) from None
    return saved, state


def check_same_data(saved: dict | None, cifar, out: Path | None) -> None:
    """Refuse to resume a run (``saved``, its ``run.json``) on a different number of training images."""
    if saved is not None and saved.get("train_images") != len(cifar.x_train):
        raise TrainingError(
            f"--out {out} holds a run on {saved.get('train_images')} training images, but {len(cifar.x_train)} "
            f"are loaded now (is CAE_QUICK set differently?). Resume it with the same data, or start a new run "
            f"in another folder. Nothing was overwritten."
        )


def start_run_folder(out: Path, run, model, cifar, command: str | None, device: str) -> None:
    """Create a new run folder and write its ``run.json``: model, settings, data size, command, machine.

    Args:
        out: the folder (created). Files a run that died before its first epoch left are overwritten as
            the new run writes them; nothing else in the folder is touched.
        run: the run's settings, a dataclass with a ``model_spec()`` method (:class:`RunConfig` or the codec's).
        model: the built model (its parameter count is recorded).
        cifar: the data the run trains on.
        command: the command line, or None.
        device: :func:`configure_device`'s description.
    """
    import tensorflow as tf

    out.mkdir(exist_ok=True)  # its parent was checked by _check_run_folder
    record = {
        "model": run.model_spec(),
        "training": asdict(run),
        "parameters": model.count_params(),
        "train_images": len(cifar.x_train),
        "val_images": len(cifar.x_val),
        "command": command,
        "device": device,
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores",
        "versions": {
            "tensorflow": tf.__version__,
            "keras": keras.__version__,
            "python": platform.python_version(),
        },
    }
    write_text_atomically(out / RUN_FILE, json.dumps(record, indent=2))


def append_log_row(path: Path, row: dict, columns=LOG_COLUMNS) -> None:
    """Append ``row`` to the CSV log at ``path`` (writing the header first if the file is new).

    Only the keys named in ``columns`` are written, in that order; missing ones stay empty.
    """
    new = not path.is_file()
    with open(path, "a", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
        if new:
            writer.writeheader()
        writer.writerow(row)


def _truncate_log(path: Path, epochs_done: int) -> None:
    """Keep the header and the first ``epochs_done`` rows: drop a row written after the last saved state."""
    if path.is_file():
        lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
        write_text_atomically(path, "".join(lines[: epochs_done + 1]))


class RunKeeper(keras.callbacks.Callback):
    """Keras callback that keeps a run folder up to date and stops early.

    After every epoch, in this order: the best weights by validation loss (``best.weights.h5``), the whole
    model with its optimizer (``epoch-NNN.keras``), a row of ``log.csv``, and last ``state.json``, which
    names the checkpoint; then the previous checkpoint is deleted. Files are written to a temporary
    name and renamed, so an interruption never leaves a half-written file, and ``state.json`` always
    describes files that exist. Without improvement for ``patience`` epochs it stops training; at the end
    :meth:`restore_best` puts the best weights back. An epoch whose loss is not finite is not saved.
    """

    def __init__(self, out_dir: Path | None, patience: int, state: dict | None = None):
        super().__init__()
        self.out_dir = out_dir
        self.patience = patience
        state = state or {}
        self.best = state.get("best_val_loss", np.inf)
        self.best_epoch = state.get("best_epoch", 0)
        self.wait = state.get("wait", 0)
        self.seconds = state.get("train_seconds", 0.0)
        self.checkpoint = state.get("checkpoint")
        self.diverged = False
        self.best_weights = None
        self._epoch_start = None

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch_start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        logs = logs if logs is not None else {}
        if not np.isfinite(logs.get("loss", np.nan)):
            self.diverged = True
            self.model.stop_training = True
            print(
                f"epoch {epoch + 1}: the loss is not finite; this epoch is not saved (try a lower learning rate)"
            )
            return
        elapsed = time.perf_counter() - self._epoch_start
        self.seconds += elapsed
        logs["seconds"] = elapsed
        logs["lr"] = float(self.model.optimizer.learning_rate.numpy())
        val_loss = float(logs.get("val_loss", logs["loss"]))
        if val_loss < self.best:
            self.best, self.best_epoch, self.wait = val_loss, epoch + 1, 0
            self.best_weights = self.model.get_weights()
            if self.out_dir is not None:
                replace_atomically(self.out_dir / BEST_FILE, self.model.save_weights)
        else:
            self.wait += 1
            if self.wait >= self.patience:
                self.model.stop_training = True
        if self.out_dir is None:
            return
        previous, self.checkpoint = self.checkpoint, checkpoint_name(epoch + 1)
        replace_atomically(self.out_dir / self.checkpoint, self.model.save)
        append_log_row(self.out_dir / LOG_FILE, {"epoch": epoch, **logs})
        state = {
            "epochs_done": epoch + 1,
            "checkpoint": self.checkpoint,
            "best_val_loss": self.best,
            "best_epoch": self.best_epoch,
            "wait": self.wait,
            "train_seconds": round(self.seconds, 1),
            "stopped_early": bool(self.model.stop_training),
        }
        write_text_atomically(self.out_dir / STATE_FILE, json.dumps(state, indent=2))
        if previous and previous != self.checkpoint:
            (self.out_dir / previous).unlink(missing_ok=True)

    def restore_best(self):
        """Load the best weights seen (from memory, or from ``best.weights.h5`` after a resume)."""
        if self.best_weights is not None:
            self.model.set_weights(self.best_weights)
        elif self.out_dir is not None and (self.out_dir / BEST_FILE).is_file():
            self.model.load_weights(self.out_dir / BEST_FILE)


class _EpochPrinter(keras.callbacks.Callback):
    """Print one line per epoch: the command line's progress report."""

    def __init__(self, total_epochs: int):
        super().__init__()
        self.total = total_epochs

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        print(
            f"epoch {epoch + 1:3d}/{self.total}  loss {logs.get('loss', float('nan')):.5f}  "
            f"val_loss {logs.get('val_loss', float('nan')):.5f}  val_psnr {logs.get('val_psnr', float('nan')):.2f} dB  "
            f"lr {logs.get('lr', float('nan')):.2e}  {logs.get('seconds', 0):.0f} s",
            flush=True,
        )


# ------------------------------------------------------------------------------------------- train


def train(
    run: RunConfig,
    cifar=None,
    out_dir: str | Path | None = None,
    verbose: int | None = None,
    command: str | None = None,
    extra_callbacks=(),
) -> TrainResult:
    """Train an autoencoder on CIFAR-10's training split, validating on the validation split.

    Args:
        run: what to train and how (:class:`RunConfig`).
        cifar: the data (:func:`cae_utils.data.load_cifar10`); None loads it (quick mode gives subsets).
        out_dir: the run folder; checkpoints, log and state go there, and a run already there is resumed.
            None trains in memory and writes nothing.
        verbose: Keras's ``fit`` verbosity: 1 a progress bar, 2 one line per epoch, 0 nothing; None (the
            default) follows ``CAE_PROGRESS`` (:func:`cae_utils.config.fit_verbosity`).
        command: the command line to record in ``run.json`` (the CLI passes its own).
        extra_callbacks: more Keras callbacks.

    Returns:
        A :class:`TrainResult`; its models hold the best weights by validation loss.

    Raises:
        TrainingError: ``out_dir`` holds another model's run, a run with other settings or data, or
            files that are not a run. Nothing is written or overwritten then.
    """

    def build(steps_per_epoch: int, jit_compile: bool, cifar):
        autoencoder, _, _ = models.build(run.architecture, latent_dim=run.latent_dim)
        compile_autoencoder(
            autoencoder,
            run.learning_rate,
            total_steps=run.epochs * steps_per_epoch,
            warmup_steps=run.warmup_epochs * steps_per_epoch,
            clipnorm=run.clipnorm,
            jit_compile=jit_compile,
        )
        return autoencoder

    fitted = fit_in_run_folder(
        run,
        build,
        out_dir,
        cifar,
        describe=f"training {run.architecture} autoencoder, latent {run.latent_dim}",
        verbose=verbose,
        command=command,
        printer=_EpochPrinter(run.epochs),
        extra_callbacks=extra_callbacks,
    )
    autoencoder = fitted.model
    encoder, decoder = autoencoder.get_layer("encoder"), autoencoder.get_layer("decoder")
    return TrainResult(
        autoencoder, encoder, decoder, fitted.history(LOG_FILE), fitted.out, fitted.seconds
    )


@dataclass
class Fitted:
    """What :func:`fit_in_run_folder` returns: the ``model`` with its best weights, the run folder ``out``
    (None in memory), the training ``seconds`` of all sessions, and :meth:`history`."""

    model: object
    out: Path | None
    seconds: float

    def history(self, log_file: str):
        """The per-epoch log as a pandas DataFrame: ``log_file`` in the run folder, else Keras's history."""
        import pandas as pd

        if self.out is not None and (self.out / log_file).is_file():
            return pd.read_csv(self.out / log_file)
        history = pd.DataFrame(self.model.history.history if self.model.history else {})
        history.insert(0, "epoch", range(len(history)))
        return history


def fit_in_run_folder(
    run,
    build,
    out_dir=None,
    cifar=None,
    *,
    describe: str,
    verbose: int | None = None,
    command: str | None = None,
    printer=None,
    first_callbacks=(),
    extra_callbacks=(),
    extra_logs=(),
    start=None,
) -> Fitted:
    """The training loop every model of the course shares: run folder, data, device, resume, fit, best weights.

    In order: check the run folder (raising before anything is written), seed, set up the device, load
    and check the data, build the ``tf.data`` pipelines, resume the last checkpoint or build a new model
    under the distribution strategy, start the run folder (or truncate its logs to the finished epochs),
    fit with :class:`RunKeeper` (checkpoints, best weights, ``log.csv``, ``state.json``, early stopping)
    and ``TerminateOnNaN``, and restore the best weights.

    Args:
        run: the settings (:class:`RunConfig` or :class:`cae_utils.codec.training.CodecRunConfig`: ``seed``,
            ``deterministic``, ``batch_size``, ``epochs``, ``patience`` and ``model_spec()``).
        build: ``build(steps_per_epoch, jit_compile, cifar)`` returns a new compiled Keras model for the
            data ``cifar`` (called inside the strategy's scope, only when no run is resumed).
        out_dir: the run folder, or None to train in memory.
        cifar: the data (:func:`cae_utils.data.load_cifar10`); None loads it.
        describe: what is trained, printed before fitting (the device is appended).
        verbose: Keras's ``fit`` verbosity; None follows ``CAE_PROGRESS``.
        command: the command line to record in ``run.json``; when given, ``printer`` reports each epoch.
        printer: a Keras callback that prints one line per epoch.
        first_callbacks: callbacks that run before :class:`RunKeeper` at each epoch's end (a log that must be
            written before the state is saved).
        extra_callbacks: callbacks that run after it.
        extra_logs: more CSV logs in the run folder (file names), truncated like ``log.csv`` on resume.
        start: for a new run, a weights file to load into the new model (None: the built weights).

    Returns:
        :class:`Fitted`.

    Raises:
        TrainingError: ``out_dir`` holds another model's run, a run with other settings or data, or files
            that are not a run. Nothing is written or overwritten then.
    """
    out = Path(out_dir) if out_dir is not None else None
    # raises before writing
    saved, state = _check_run_folder(out, run) if out is not None else (None, None)

    set_seed(run.seed, run.deterministic)
    strategy, jit_compile, device = configure_device()
    if cifar is None:
        cifar = data.load_cifar10(seed=run.seed)
    check_same_data(saved, cifar, out)

    initial_epoch = int(state["epochs_done"]) if state is not None else 0
    steps_per_epoch = -(-len(cifar.x_train) // run.batch_size)
    # A resumed run gets a new shuffling seed, so it does not replay the first epochs' order.
    train_ds = data.make_dataset(
        cifar.x_train,
        batch_size=run.batch_size,
        seed=run.seed + initial_epoch,
        flip=getattr(run, "flip", False),
    )
    val_ds = data.make_dataset(cifar.x_val, batch_size=max(run.batch_size, 256), shuffle=False)

    with strategy.scope():
        if state is not None:
            try:
                model = keras.saving.load_model(out / state["checkpoint"])
            except (
                Exception
            ) as exc:  # Keras raises ValueError, OSError or zipfile errors for a damaged file
                raise TrainingError(
                    f"--out {out}: the checkpoint {state['checkpoint']} cannot be loaded "
                    f"({type(exc).__name__}: {exc}), so the run cannot resume. Restore the file, or start a "
                    f"new run in another folder. Nothing was changed."
                ) from exc
            print(f"resuming {out} after epoch {initial_epoch} of {run.epochs}", flush=True)
        else:
            model = build(steps_per_epoch, jit_compile, cifar)
            if start is not None:
                model.load_weights(start)
                # (Keras warns that it skips the saved optimizer state: the new run starts a fresh optimizer.)
                print(f"starting from the weights of {Path(start).parent}", flush=True)

    if out is not None and state is None:
        start_run_folder(out, run, model, cifar, command, device)
    if (
        out is not None
    ):  # drop log rows written after the last saved state (all of them for a new start)
        for log in (LOG_FILE, *extra_logs):
            _truncate_log(out / log, initial_epoch)

    keeper = RunKeeper(out, run.patience, state)
    keeper.set_model(model)
    callbacks = [*first_callbacks, keeper, keras.callbacks.TerminateOnNaN(), *extra_callbacks]
    if command is not None and printer is not None:
        callbacks.append(printer)

    finished = state is not None and (state.get("stopped_early") or initial_epoch >= run.epochs)
    if finished:
        print(
            f"{out} already finished its {initial_epoch} epochs; loading its best weights",
            flush=True,
        )
    else:
        print(f"{describe}, on {device}", flush=True)
        model.fit(
            train_ds,
            validation_data=val_ds,
            epochs=run.epochs,
            initial_epoch=initial_epoch,
            callbacks=callbacks,
            verbose=config.fit_verbosity() if verbose is None else verbose,
            shuffle=False,  # the tf.data pipeline shuffles already
        )
    keeper.restore_best()
    return Fitted(model, out, keeper.seconds)


# ------------------------------------------------------------------------------------ command line


def _parser() -> argparse.ArgumentParser:
    defaults = RunConfig()
    p = argparse.ArgumentParser(
        prog="python -m cae_utils.train",
        description="Train a convolutional autoencoder on CIFAR-10. Started again on the same --out folder, "
        "it resumes after the last finished epoch.",
    )
    p.add_argument(
        "--out",
        required=True,
        help="run folder (created; an existing run of the same model is resumed)",
    )
    p.add_argument(
        "--architecture",
        default=defaults.architecture,
        help=f"one of: {', '.join(models.ARCHITECTURES)}",
    )
    p.add_argument(
        "--latent-dim", type=int, default=defaults.latent_dim, help="length of the latent vector"
    )
    p.add_argument(
        "--epochs",
        type=int,
        default=defaults.epochs,
        help="planned epochs (the schedule spans them)",
    )
    p.add_argument("--batch-size", type=int, default=defaults.batch_size)
    p.add_argument(
        "--learning-rate", type=float, default=defaults.learning_rate, help="peak learning rate"
    )
    p.add_argument(
        "--warmup-epochs",
        type=int,
        default=defaults.warmup_epochs,
        help="epochs of linear warm-up to the peak rate (default: none)",
    )
    p.add_argument(
        "--clipnorm",
        type=float,
        default=defaults.clipnorm,
        help="clip each gradient to this norm (default: none)",
    )
    p.add_argument(
        "--patience", type=int, default=defaults.patience, help="early-stopping patience in epochs"
    )
    p.add_argument("--seed", type=int, default=None, help="seed (default: CAE_SEED, else 42)")
    p.add_argument(
        "--deterministic", action="store_true", help="deterministic TensorFlow ops (slower)"
    )
    p.add_argument(
        "--flip", action="store_true", help="mirror training images left to right at random"
    )
    return p


def settings_from_args(settings_class, args):
    """Build run settings (a dataclass such as :class:`RunConfig`) from the command-line options of the same
    names; the settings no option names keep their defaults."""
    from dataclasses import fields

    given = {f.name: getattr(args, f.name) for f in fields(settings_class) if hasattr(args, f.name)}
    return settings_class(**given)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit status (0 on success, 1 on bad data or settings, 2 on a
    bad argument)."""
    from .cli import run_command

    return run_command(lambda: _main(argv))


def _main(argv: list[str] | None) -> int:
    parser = _parser()  # its defaults read the environment's settings
    args = parser.parse_args(argv)
    try:
        run = settings_from_args(RunConfig, args)
        _check_run_folder(Path(args.out), run)  # fail fast, before loading data
    except TrainingError as exc:
        parser.error(str(exc))
    argv = sys.argv[1:] if argv is None else argv
    command = "python -m cae_utils.train " + " ".join(shlex.quote(a) for a in argv)

    def work() -> int:
        config.announce()
        cifar = data.load_cifar10(seed=run.seed)
        # In a terminal, a progress bar within each epoch as well as the line after it.
        bar = 1 if config.fit_verbosity() == 1 else 0
        result = train(run, cifar=cifar, out_dir=args.out, verbose=bar, command=command)
        scores = evaluate(result.autoencoder, cifar.x_val)
        print(
            f"done: best epoch {json.loads((Path(args.out) / STATE_FILE).read_text())['best_epoch']}, "
            f"validation PSNR {scores['psnr']:.2f} dB mean, {scores['pooled_psnr']:.2f} dB pooled, "
            f"{result.train_seconds / 60:.1f} min of training",
            flush=True,
        )
        return 0

    return work()


if __name__ == "__main__":
    sys.exit(main())
