"""Training a codec model: ``train_codec`` and the ``train`` command of ``python -m cae_utils.codec``.

It follows :mod:`cae_utils.train`'s recipe and reuses its parts: the device set-up
(:func:`~cae_utils.train.configure_device`: mixed precision and XLA on a GPU), seeding
(:func:`~cae_utils.train.set_seed`), the data (:func:`cae_utils.data.load_cifar10`,
:func:`cae_utils.data.make_dataset`), and the resumable run folder: the same folder checks
(``_check_run_folder``), the same :class:`~cae_utils.train.RunKeeper` callback (checkpoints, best
weights by validation loss, ``log.csv``, ``state.json``, early stopping) and the same files. What
differs: the model (:class:`~cae_utils.codec.model.CodecModel`, whose loss is ``bpp + lmbda * MSE``),
Adam at ``1e-4`` by default (bls2017's rate; the cosine schedule of :mod:`cae_utils.train` on top) with
the gradient clipped to a global norm of 1, and one more
log, ``rate.csv``, with the rate and distortion of every epoch (``RunKeeper``'s ``log.csv`` keeps
its fixed columns: loss, psnr, val_loss, val_psnr, lr, seconds). A run folder::

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

from .. import data

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
        from ..train import TrainingError, check_schedule

        check_schedule(self, ("channels", "latent_channels", "table_size"))
        if isinstance(self.lmbda, bool) or not (isinstance(self.lmbda, (int, float)) and self.lmbda > 0):
            raise TrainingError(f"lmbda must be a positive number such as 0.01, got {self.lmbda!r}.")
        if self.init_from is not None and not isinstance(self.init_from, str):
            raise TrainingError(f"init_from must be a run folder path (a string), got {self.init_from!r}.")

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
            + ", ".join(f"{k} {wanted[k]}" for k in sizes) + ". Nothing was written."
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
    verbose: int = 2,
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
        verbose: Keras's ``fit`` verbosity: 2 (default) one line per epoch, 1 a progress bar, 0 nothing.
        command: the command line to record in ``run.json``.
        extra_callbacks: more Keras callbacks.

    Returns:
        ``(model, history)``: the :class:`~cae_utils.codec.model.CodecModel` with the best weights by
        validation loss (its integer tables not yet computed: :func:`~cae_utils.codec.api.export` does
        that), and a pandas DataFrame with one row per epoch (``rate.csv``'s columns).

    Raises:
        cae_utils.train.TrainingError: bad settings, or ``out_dir`` holds something else (nothing is written then).
    """
    import keras
    import pandas as pd

    from .. import train as base
    from .model import build_codec_model

    if run is None:
        given = {k: v for k, v in (("lmbda", lmbda), ("epochs", epochs)) if v is not None}
        run = CodecRunConfig(**given, **settings)
    out = Path(out_dir) if out_dir is not None else None
    saved, state = base._check_run_folder(out, run) if out is not None else (None, None)
    start = starting_weights(run) if state is None else None

    base.set_seed(run.seed, run.deterministic)
    strategy, jit_compile, device = base.configure_device()
    if cifar is None:
        cifar = data.load_cifar10(seed=run.seed)
    base.check_same_data(saved, cifar, out)
    initial_epoch = int(state["epochs_done"]) if state is not None else 0
    steps = -(-len(cifar.x_train) // run.batch_size)
    train_ds = data.make_dataset(cifar.x_train, batch_size=run.batch_size, seed=run.seed + initial_epoch)
    val_ds = data.make_dataset(cifar.x_val, batch_size=max(run.batch_size, 256), shuffle=False)

    with strategy.scope():
        if state is not None:
            model = keras.saving.load_model(out / state["checkpoint"])
            print(f"resuming {out} after epoch {initial_epoch} of {run.epochs}", flush=True)
        else:
            spec = run.model_spec()
            model = build_codec_model(
                run.lmbda, spec["channels"], spec["latent_channels"], spec["table_size"], seed=run.seed
            )
            if start is not None:
                model.load_weights(start)
                print(f"starting from the weights of {start.parent}", flush=True)
            schedule = keras.optimizers.schedules.CosineDecay(
                run.learning_rate, decay_steps=max(run.epochs * steps, 1), alpha=0.01
            )
            # Gradients clipped to a global norm of 1. Adam normalises its steps, so ordinary steps change little;
            # a rare huge gradient can no longer throw the multiplicative inverse GDN into a blow-up (a run at
            # 1e-3 without clipping diverged in its second epoch).
            optimizer = keras.optimizers.Adam(schedule, global_clipnorm=1.0)
            model.compile(optimizer=optimizer, jit_compile=jit_compile)

    if out is not None and state is None:
        base.start_run_folder(out, run, model, cifar, command, device)
    elif out is not None:
        base._truncate_log(out / base.LOG_FILE, initial_epoch)
        base._truncate_log(out / RATE_FILE, initial_epoch)

    rate_log, printer = _callbacks()
    keeper = base.RunKeeper(out, run.patience, state)
    keeper.set_model(model)
    callbacks = [rate_log(out / RATE_FILE)] if out is not None else []
    callbacks += [keeper, keras.callbacks.TerminateOnNaN(), *extra_callbacks]
    if command is not None:
        callbacks.append(printer(run.epochs))
    if state is not None and (state.get("stopped_early") or initial_epoch >= run.epochs):
        print(f"{out} already finished its {initial_epoch} epochs; loading its best weights", flush=True)
    else:
        sizes = f"channels {run.channels}/{run.latent_channels}"
        print(f"training codec, lmbda {run.lmbda}, {sizes}, on {device}", flush=True)
        model.fit(
            train_ds,
            validation_data=val_ds,
            epochs=run.epochs,
            initial_epoch=initial_epoch,
            callbacks=callbacks,
            verbose=verbose,
            shuffle=False,
        )
    keeper.restore_best()
    if out is not None and (out / RATE_FILE).is_file():
        history = pd.read_csv(out / RATE_FILE)
    else:
        history = pd.DataFrame(model.history.history if model.history else {})
        history.insert(0, "epoch", range(len(history)))
    return model, history
