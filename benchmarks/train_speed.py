"""Training benchmark: the founding notebook's recipe against the course's, for the same wall-clock budget.

In one run on one machine, each recipe trains from scratch for ``--minutes`` of wall-clock time, then the
model is scored on the CIFAR-10 test set (mean per-image PSNR and pooled PSNR). Printed per recipe:
images per second, epochs done, test PSNR; and the course's figures as ratios of the original's.

Recipes:

- ``original``: the founding notebook's recipe (with its decoder fixed to read the latent vector): the
  baseline model of notebook 02, whole NumPy arrays passed to ``fit``, batch 512, binary cross-entropy,
  Adam at Keras's default learning rate.
- ``course-baseline``: the same baseline model with the course's recipe: the tf.data pipeline, batch 128,
  MSE, Adam with a cosine schedule over the budget.
- ``course-residual``: the course's recipe with the residual model (``--architecture residual``), the
  course's first shipped architecture (not run unless named in ``--recipes``).
- ``course``: the course's recipe with the shipped architecture, ``pca-shortcut`` (PCA as a frozen linear
  shortcut, convolutions for what it misses). Fitting its PCA on the training images is part of the
  recipe, so its time counts against the budget: the model then trains for what is left.

Usage (the data comes from ``CAE_DATA_DIR`` or Keras's download)::

    python benchmarks/train_speed.py --minutes 10 --latent-dim 256
"""

from __future__ import annotations

import argparse
import platform
import time

import keras

from cae_utils import data, models, train
from cae_utils.metrics import evaluate


class WallClockBudget(keras.callbacks.Callback):
    """Stops training once ``seconds`` of training time have passed (checked after every batch)."""

    def __init__(self, seconds: float, batch_size: int):
        super().__init__()
        self.seconds = seconds
        self.batch_size = batch_size
        self.images = 0

    def on_train_begin(self, logs=None):
        self.start = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        # The last, smaller batch of an epoch counts as a full one: an overcount below 0.5% here.
        self.images += self.batch_size
        if time.perf_counter() - self.start >= self.seconds:
            self.model.stop_training = True

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.start


#: Recipe name -> the architecture it trains.
RECIPES = {
    "original": "baseline",
    "course-baseline": "baseline",
    "course-residual": "residual",
    "course": "pca-shortcut",
}


def run_recipe(recipe: str, cifar, latent_dim: int, seconds: float, seed: int) -> dict:
    """Train one recipe for ``seconds`` (set-up such as fitting PCA included) and score it on the test set."""
    train.set_seed(seed)
    # The original recipe knew nothing of GPUs: float32 everywhere. The course's recipe sets up the device.
    if recipe == "original":
        keras.mixed_precision.set_global_policy("float32")
        jit_compile = False
    else:
        _, jit_compile, _ = train.configure_device()
    architecture = RECIPES[recipe]
    started = time.perf_counter()
    autoencoder, _, _ = models.build(architecture, latent_dim=latent_dim, x_train=cifar.x_train)
    setup_s = time.perf_counter() - started
    seconds -= setup_s  # PCA's fit (pca-shortcut) is spent from the budget
    if seconds <= 0:
        raise SystemExit(
            f"the budget is shorter than the {recipe} recipe's set-up ({setup_s:.0f} s): raise --minutes."
        )
    if recipe == "original":
        batch_size = 512
        autoencoder.compile(optimizer=keras.optimizers.Adam(), loss="binary_crossentropy")
        fit_args = dict(x=cifar.x_train, y=cifar.x_train, batch_size=batch_size, shuffle=True)
    else:
        batch_size = 128
        # A cosine schedule needs its length in steps: estimate it from a short timed warm-up.
        probe, _, _ = models.build(architecture, latent_dim=latent_dim)
        probe.compile(optimizer="adam", loss="mse")
        warm = cifar.x_train[: batch_size * 12]
        probe.fit(warm[: batch_size * 2], warm[: batch_size * 2], batch_size=batch_size, verbose=0)
        t0 = time.perf_counter()
        probe.fit(warm, warm, batch_size=batch_size, verbose=0)
        steps = int(seconds * 12 / (time.perf_counter() - t0))
        train.compile_autoencoder(
            autoencoder, learning_rate=1e-3, total_steps=steps, jit_compile=jit_compile
        )
        fit_args = dict(
            x=data.make_dataset(cifar.x_train, batch_size=batch_size, seed=seed), shuffle=False
        )
    budget = WallClockBudget(seconds, batch_size)
    autoencoder.fit(**fit_args, epochs=10_000, callbacks=[budget], verbose=0)
    elapsed = budget.elapsed
    scores = evaluate(autoencoder, cifar.x_test)
    return {
        "recipe": recipe,
        "model": f"{architecture}-{latent_dim}",
        "images_per_s": budget.images / elapsed,
        "epochs": budget.images / len(cifar.x_train),
        "train_s": elapsed,
        "setup_s": setup_s,
        "psnr": scores["psnr"],
        "pooled_psnr": scores["pooled_psnr"],
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="training budget per recipe")
    parser.add_argument("--latent-dim", type=int, default=256)
    parser.add_argument(
        "--recipes",
        default="original,course-baseline,course",
        help="comma-separated recipes to run",
    )
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args(argv)
    recipes = [r.strip() for r in args.recipes.split(",") if r.strip()]
    unknown = set(recipes) - set(RECIPES)
    if unknown or args.minutes <= 0:
        parser.error(f"unknown recipe(s) {sorted(unknown)} or non-positive --minutes")

    cifar = data.load_cifar10(seed=args.seed)
    _, _, device = train.configure_device()
    print(
        f"machine: {platform.machine()}, {device}; budget {args.minutes:g} min per recipe; "
        f"{len(cifar.x_train)} training images, {len(cifar.x_test)} test images",
        flush=True,
    )
    rows = []
    for recipe in recipes:
        row = run_recipe(recipe, cifar, args.latent_dim, args.minutes * 60, args.seed)
        rows.append(row)
        print(
            f"{row['recipe']:16s} {row['model']:17s} {row['images_per_s']:5.0f} img/s  {row['epochs']:5.2f} epochs  "
            f"set-up {row['setup_s']:3.0f} s  test PSNR {row['psnr']:.2f} dB mean, {row['pooled_psnr']:.2f} dB pooled",
            flush=True,
        )
    base = next((r for r in rows if r["recipe"] == "original"), None)
    if base is not None:
        for row in rows:
            if row is base:
                continue
            print(
                f"{row['recipe']} / original: speed x{row['images_per_s'] / base['images_per_s']:.2f}, "
                f"PSNR {row['psnr'] - base['psnr']:+.2f} dB mean, "
                f"{row['pooled_psnr'] - base['pooled_psnr']:+.2f} dB pooled"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
