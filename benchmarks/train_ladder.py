"""Training benchmark: the ladder from notebook 02's autoencoder to the course model, one change per rung.

In one run on one machine, each rung trains from scratch for the same number of epochs on CIFAR-10's
training split and is scored on the validation split (mean per-image PSNR and pooled PSNR; the test set
is kept for the finished models). The rungs are cumulative: each keeps every change above it.

1. ``founding recipe``: notebook 02's model trained as the founding notebook did (whole arrays, batch 512,
   binary cross-entropy, Adam at its default learning rate).
2. ``course recipe``: the same model, trained with mean squared error, batch 128, Adam on a cosine schedule.
3. ``strided``: stride-2 convolutions instead of max pooling.
4. ``gelu``: GELU instead of ReLU.
5. ``no batchnorm``: without BatchNormalization.
6. ``widths``: 48, 96 and 192 channels (more where the feature maps are small) instead of 64, 32 and 16.
7. ``two convs``: two convolutions per stage: the course model (:data:`cae_utils.models.COURSE_MODEL`).
8. ``flips``: training images mirrored left to right at random.

Printed per rung: parameters, training images per second, validation PSNR, and the gain over the rung
above. ``--out`` also writes them, with the command and the machine, as a JSON file: the course ships the
recorded run as ``weights/ladder.json``, which notebook 03 shows (:func:`cae_utils.pretrained.benchmark`).

Usage (the data comes from ``CAE_DATA_DIR`` or Keras's download)::

    python benchmarks/train_ladder.py --epochs 3 --latent-dim 256 --out weights/ladder.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import sys
import time

from cae_utils import config, data, models, train
from cae_utils._files import write_text_atomically
from cae_utils.cli import UsageError, check_output, run_command
from cae_utils.metrics import evaluate

#: (rung, what changes): each rung's model options and recipe, on top of the rung above.
LADDER = [
    ("founding recipe", {"recipe": "founding"}),
    ("course recipe", {"recipe": "course"}),
    ("strided", {"downsample": "stride"}),
    ("gelu", {"activation": "gelu"}),
    ("no batchnorm", {"batch_norm": False}),
    ("widths", {"filters": models.COURSE_MODEL["filters"]}),
    ("two convs", {"convs_per_stage": models.COURSE_MODEL["convs_per_stage"]}),
    ("flips", {"flip": True}),
]


def rungs():
    """Yield ``(name, model options, recipe, flip)`` for each rung, every change kept from the rungs above."""
    settings = {"recipe": "founding", "flip": False}
    for name, change in LADDER:
        settings = {**settings, **change}
        style = {k: v for k, v in settings.items() if k not in ("recipe", "flip")}
        yield name, style, settings["recipe"], settings["flip"]


def run_rung(style, recipe, flip, cifar, latent_dim, epochs, seed) -> dict:
    """Train one rung from scratch for ``epochs`` epochs; return its speed and validation scores."""
    import keras  # after cae_utils, which silences TensorFlow's start-up lines

    train.set_seed(seed)
    autoencoder, _, _ = models.build_autoencoder(latent_dim, **style)
    if recipe == "founding":
        autoencoder.compile(optimizer=keras.optimizers.Adam(), loss="binary_crossentropy")
        fit_args = dict(x=cifar.x_train, y=cifar.x_train, batch_size=512, shuffle=True)
    else:
        steps = epochs * -(-len(cifar.x_train) // 128)
        train.compile_autoencoder(autoencoder, learning_rate=1e-3, total_steps=steps)
        dataset = data.make_dataset(cifar.x_train, batch_size=128, seed=seed, flip=flip)
        fit_args = dict(x=dataset, shuffle=False)
    started = time.perf_counter()
    autoencoder.fit(**fit_args, epochs=epochs, verbose=0)
    seconds = time.perf_counter() - started
    scores = evaluate(autoencoder, cifar.x_val)
    return {
        "parameters": autoencoder.count_params(),
        "epochs": epochs,
        "images_per_s": round(epochs * len(cifar.x_train) / seconds),
        "val_psnr": round(scores["psnr"], 2),
        "val_pooled_psnr": round(scores["pooled_psnr"], 2),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3, help="training epochs of every rung")
    parser.add_argument("--latent-dim", type=int, default=256)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--out", help="also write the results to this JSON file")
    args = parser.parse_args(argv)

    def work() -> int:
        config.check_number("--epochs", args.epochs, 1, 1000, whole=True, error=UsageError)
        config.check_number("--latent-dim", args.latent_dim, 1, 3072, whole=True, error=UsageError)
        config.check_number("--seed", args.seed, 0, config.MAX_SEED, whole=True, error=UsageError)
        out = check_output(args.out) if args.out else None
        cifar = data.load_cifar10(seed=args.seed)
        _, _, device = train.configure_device(mixed_precision=False)
        print(
            f"machine: {platform.machine()}, {device}; {args.epochs} epochs per rung, latent {args.latent_dim}; "
            f"{len(cifar.x_train)} training and {len(cifar.x_val)} validation images",
            flush=True,
        )
        rows, previous = [], None
        for name, style, recipe, flip in rungs():
            row = {
                "rung": name,
                **run_rung(style, recipe, flip, cifar, args.latent_dim, args.epochs, args.seed),
            }
            gain = 0.0 if previous is None else row["val_pooled_psnr"] - previous["val_pooled_psnr"]
            row["gain_db"] = round(gain, 2)
            rows.append(row)
            previous = row
            print(
                f"{name:16s} {row['parameters']:9,d} parameters  {row['images_per_s']:5d} img/s  "
                f"validation PSNR {row['val_psnr']:.2f} dB mean, {row['val_pooled_psnr']:.2f} dB pooled "
                f"({gain:+.2f} dB)",
                flush=True,
            )
        if out is not None:
            argv_used = sys.argv[1:] if argv is None else argv
            record = {
                "name": out.stem,
                "kind": "benchmark",
                "command": "python benchmarks/train_ladder.py "
                + " ".join(map(shlex.quote, argv_used)),
                "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores",
                "device": device,
                "epochs": args.epochs,
                "latent_dim": args.latent_dim,
                "train_images": len(cifar.x_train),
                "val_images": len(cifar.x_val),
                "rows": rows,
            }
            write_text_atomically(out, json.dumps(record, indent=2) + "\n")
            print(f"wrote {out}")
        return 0

    return run_command(work)


if __name__ == "__main__":
    sys.exit(main())
