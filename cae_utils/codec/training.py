"""Training a codec model: ``train_codec`` and the ``train`` command of ``python -m cae_utils.codec``.

It runs through the loop every model of the course shares, :func:`cae_utils.train.fit_in_run_folder`:
the device set-up (mixed precision and XLA on a GPU), seeding, the data and its ``tf.data`` pipelines,
and the resumable run folder (the same folder checks, the same :class:`~cae_utils.train.RunKeeper`:
checkpoints, best weights by validation loss, ``log.csv``, ``state.json``, early stopping). What
differs: the model (:class:`~cae_utils.codec.model.CodecModel`, whose loss is ``bpp + lmbda * MSE``),
Adam at ``1e-4`` by default (bls2017's rate; a cosine schedule on top) with the gradient clipped to a
global norm of 1, and one more log, ``rate.csv``, with the rate and distortion of every epoch
(``log.csv`` keeps its fixed columns: loss, psnr, val_loss, val_psnr, lr, seconds). A run folder::

    run.json, log.csv, rate.csv, epoch-NNN.keras, best.weights.h5, state.json

Command line (started again on the same folder, it resumes)::

    python -m cae_utils.codec train --lmbda 0.01 --epochs 30 --out runs/codec-0.01

A model for another ``lmbda`` can start from a finished run's weights instead of random ones
(``--init-from``, :func:`starting_weights`): the transforms already work and only the balance of rate
and distortion changes, so a short run moves the model along the rate-distortion curve (each shipped
model's ``codec-NAME.json`` records the command that made it)::

    python -m cae_utils.codec train --lmbda 0.003 --epochs 6 --init-from runs/codec-0.01 --out runs/codec-0.003
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["CodecRunConfig", "train_codec", "starting_weights", "RATE_FILE"]

RATE_FILE = "rate.csv"
RATE_COLUMNS = ("epoch", "loss", "bpp", "mse", "psnr", "val_loss", "val_bpp", "val_mse", "val_psnr")


@dataclass(frozen=True)
class CodecRunConfig:
    """Everything that defines a codec training run.

    Attributes:
        lmbda: weight of the MSE (0-255 scale) against the bits per pixel.
        channels, latent_channels, table_size: the model (:func:`~cae_utils.codec.model.build_codec_model`).
        epochs, batch_size, learning_rate, patience: the schedule, as in :class:`cae_utils.train.RunConfig`.
        seed: seed of split, weights, noise and shuffling; None takes ``CAE_SEED``.
        deterministic: deterministic TensorFlow ops.
        init_from: a finished codec run folder whose best weights start this run (same ``channels``,
            ``latent_channels`` and ``table_size``) instead of random ones: the usual way to get a
            model for another ``lmbda`` quickly, since only the balance of rate and distortion changes.
    """

    lmbda: float = 0.01
    channels: int = 128
    latent_channels: int = 128
    table_size: int = 256
    epochs: int = 30
    batch_size: int = 64
    learning_rate: float = 1e-4
    patience: int = 10
    seed: int | None = None
    deterministic: bool = False
    init_from: str | None = None

    def __post_init__(self):
        from ..config import check_number
        from ..train import TrainingError, check_schedule

        check_schedule(self, {"channels": 1024, "latent_channels": 1024, "table_size": 2**15})
        check_number("lmbda", self.lmbda, 0, 1000, error=TrainingError, above_low=True)
        if self.init_from is not None and not isinstance(self.init_from, str):
            raise TrainingError(
                f"init_from must be a run folder path (a string), got {self.init_from!r}."
            )

    def model_spec(self) -> dict:
        """The settings that define the model's weights (``lmbda`` included: it decides what they learn)."""
        return {
            "kind": "codec",
            "lmbda": self.lmbda,
            "channels": self.channels,
            "latent_channels": self.latent_channels,
            "table_size": self.table_size,
        }


def starting_weights(run: CodecRunConfig) -> Path | None:
    """The weights file ``run.init_from`` points to, checked against ``run``'s model; None without one.

    Raises:
        cae_utils.train.TrainingError: the folder is not a codec run with best weights, or its model has
            other ``channels``, ``latent_channels`` or ``table_size`` (nothing is written).
    """
    from ..train import BEST_FILE, RUN_FILE, TrainingError, _read_json

    if run.init_from is None:
        return None
    source = Path(run.init_from)
    if not ((source / RUN_FILE).is_file() and (source / BEST_FILE).is_file()):
        raise TrainingError(
            f"--init-from {source} is not a codec training run with saved weights ({RUN_FILE} and {BEST_FILE}): "
            f"give the folder of a codec run that finished at least one epoch."
        )
    spec, wanted = _read_json(source / RUN_FILE).get("model", {}), run.model_spec()
    sizes = ("channels", "latent_channels", "table_size")
    if spec.get("kind") != "codec" or any(spec.get(k) != wanted[k] for k in sizes):
        raise TrainingError(
            f"--init-from {source} holds another model ({spec}); this run needs a codec with "
            + ", ".join(f"{k} {wanted[k]}" for k in sizes)
            + ". Nothing was written."
        )
    return source / BEST_FILE


def _callbacks():
    """The two Keras callbacks of a codec run, defined on first use so importing this module stays cheap.

    Returns:
        ``(RateLog, Printer)``: ``RateLog(path)`` appends each finished epoch's rate and distortion to
        ``rate.csv`` (it runs before RunKeeper saves the state); ``Printer(total)`` prints one line per
        epoch for the command line.
    """
    import keras

    from ..train import append_log_row

    class RateLog(keras.callbacks.Callback):
        def __init__(self, path: Path):
            super().__init__()
            self.path = path

        def on_epoch_end(self, epoch, logs=None):
            logs = logs or {}
            if not np.isfinite(logs.get("loss", np.nan)):
                return
            values = {k: f"{float(v):.6g}" for k, v in logs.items() if k in RATE_COLUMNS}
            append_log_row(self.path, {"epoch": epoch, **values}, RATE_COLUMNS)

    class Printer(keras.callbacks.Callback):
        def __init__(self, total: int):
            super().__init__()
            self.total = total

        def on_epoch_end(self, epoch, logs=None):
            logs = logs or {}
            g = lambda k: logs.get(k, float("nan"))  # noqa: E731
            print(
                f"epoch {epoch + 1:3d}/{self.total}  loss {g('loss'):.4f}  val: {g('val_bpp'):.3f} bpp, "
                f"MSE {g('val_mse'):.1f}, {g('val_psnr'):.2f} dB  lr {g('lr'):.2e}  {g('seconds'):.0f} s",
                flush=True,
            )

    return RateLog, Printer


def train_codec(
    lmbda: float | None = None,
    epochs: int | None = None,
    out_dir=None,
    cifar=None,
    run: CodecRunConfig | None = None,
    verbose: int | None = None,
    command: str | None = None,
    extra_callbacks=(),
    **settings,
):
    """Train a codec model on CIFAR-10's training split, validating on the validation split.

    Args:
        lmbda, epochs: the rate-distortion weight and the planned epochs (shortcuts for ``run``'s fields).
        out_dir: the run folder (a run already there is resumed); None trains in memory.
        cifar: the data (:func:`cae_utils.data.load_cifar10`); None loads it (quick mode gives subsets).
        run: the full settings; None builds them from ``lmbda``, ``epochs`` and ``settings``
            (``channels``, ``latent_channels``, ``batch_size``, ``learning_rate``, ``patience``, ``seed``, ...).
        verbose: Keras's ``fit`` verbosity: 1 a progress bar, 2 one line per epoch, 0 nothing; None (the
            default) follows ``CAE_PROGRESS``.
        command: the command line to record in ``run.json``.
        extra_callbacks: more Keras callbacks.

    Returns:
        ``(model, history)``: the :class:`~cae_utils.codec.model.CodecModel` with the best weights by
        validation loss (its integer tables not yet computed: :func:`~cae_utils.maintainer.export_codec` does
        that), and a pandas DataFrame with one row per epoch (``rate.csv``'s columns).

    Raises:
        cae_utils.train.TrainingError: bad settings, or ``out_dir`` holds something else (nothing is written then).
    """
    import keras

    from .. import train as base
    from .model import build_codec_model

    if run is None:
        given = {k: v for k, v in (("lmbda", lmbda), ("epochs", epochs)) if v is not None}
        run = CodecRunConfig(**given, **settings)
    out = Path(out_dir) if out_dir is not None else None
    # a wrong folder is reported first
    state = base._check_run_folder(out, run)[1] if out is not None else None
    # a resumed run continues from its checkpoint
    start = starting_weights(run) if state is None else None

    def build(steps_per_epoch: int, jit_compile: bool, _cifar):
        spec = run.model_spec()
        model = build_codec_model(
            run.lmbda, spec["channels"], spec["latent_channels"], spec["table_size"], seed=run.seed
        )
        schedule = base.learning_rate_schedule(run.learning_rate, run.epochs * steps_per_epoch)
        # Gradients clipped to a global norm of 1. Adam normalises its steps, so ordinary steps change little;
        # a rare huge gradient can no longer throw the multiplicative inverse GDN into a blow-up (a run at
        # 1e-3 without clipping diverged in its second epoch).
        model.compile(
            optimizer=keras.optimizers.Adam(schedule, global_clipnorm=1.0), jit_compile=jit_compile
        )
        return model

    rate_log, printer = _callbacks()
    fitted = base.fit_in_run_folder(
        run,
        build,
        out,
        cifar,
        describe=f"training codec, lmbda {run.lmbda}, channels {run.channels}/{run.latent_channels}",
        verbose=verbose,
        command=command,
        printer=printer(run.epochs),
        first_callbacks=[rate_log(out / RATE_FILE)] if out is not None else [],
        extra_callbacks=extra_callbacks,
        extra_logs=(RATE_FILE,),
        start=start,
    )
    return fitted.model, fitted.history(RATE_FILE)
