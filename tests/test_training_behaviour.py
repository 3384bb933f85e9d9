"""Training behaves as planned: the logged learning rate, the restored best weights, a falling loss, an exact resume."""

import json

import keras
import numpy as np
import pandas as pd
import pytest

from cae_utils import train
from cae_utils.data import CIFAR10, CLASS_NAMES


@pytest.fixture(scope="module")
def flat_colours():
    """64 images of one random colour each: a problem an 8-value latent can learn in a few epochs."""
    rng = np.random.default_rng(3)
    x = np.broadcast_to(rng.random((64, 1, 1, 3), dtype=np.float32), (64, 32, 32, 3)).copy()
    y = np.arange(64) % 10
    return CIFAR10(x[:32], y[:32], x[32:48], y[32:48], x[48:], y[48:], CLASS_NAMES, "synthetic")


def run_config(**changes):
    settings = dict(
        architecture="baseline", latent_dim=8, epochs=4, batch_size=16, patience=10, seed=1
    )
    return train.RunConfig(**{**settings, **changes})


def test_the_logged_learning_rate_follows_the_plan_at_every_epoch(flat_colours, tmp_path):
    run = run_config(learning_rate=1e-2, warmup_epochs=1, clipnorm=1.0)
    train.train(run, cifar=flat_colours, out_dir=tmp_path / "run", verbose=0)
    logged = pd.read_csv(tmp_path / "run" / "log.csv")["lr"].to_numpy()
    # By hand: 2 steps per epoch; after epoch 1 the warm-up reaches the peak, then a cosine over 6 steps.
    decay = [2, 4, 6]
    expected = [1e-2] + [1e-2 * (0.01 + 0.99 * 0.5 * (1 + np.cos(np.pi * t / 6))) for t in decay]
    np.testing.assert_allclose(logged, expected, rtol=1e-5)
    assert expected[-1] == pytest.approx(1e-4)


class SpoilLastEpoch(keras.callbacks.Callback):
    """Scales every kernel by 5 at the start of the last epoch, so that epoch is far from the best."""

    def __init__(self, last):
        super().__init__()
        self.last = last

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.last:
            for w in self.model.trainable_weights:
                if "kernel" in w.path:
                    w.assign(w * 5.0)


def test_the_best_epochs_weights_are_restored_not_the_last(flat_colours, tmp_path):
    run = run_config(epochs=3, learning_rate=1e-6)  # too slow to repair the damage in one epoch
    result = train.train(
        run,
        cifar=flat_colours,
        out_dir=tmp_path / "run",
        verbose=0,
        extra_callbacks=[SpoilLastEpoch(2)],
    )
    log = pd.read_csv(tmp_path / "run" / "log.csv")
    state = json.loads((tmp_path / "run" / "state.json").read_text())
    assert log["val_loss"].iloc[2] > 2 * log["val_loss"].iloc[:2].min()
    assert state["best_epoch"] == int(log["val_loss"].idxmin()) + 1 < 3
    # The returned model's error on the validation images, computed with NumPy, is the best epoch's.
    reconstructed = result.autoencoder.predict(flat_colours.x_val, verbose=0)
    mse = float(np.mean((reconstructed - flat_colours.x_val) ** 2))
    assert mse == pytest.approx(log["val_loss"].min(), rel=1e-4)


def test_the_training_loss_falls_on_a_learnable_problem(flat_colours):
    run = run_config(epochs=8, batch_size=8, learning_rate=1e-2)
    loss = train.train(run, cifar=flat_colours, verbose=0).history["loss"]
    # The first epoch ends near the mean image's error (the colours' variance, about 1/12); learning the
    # colours takes it well below.
    assert loss.iloc[0] > 0.07 and loss.iloc[-1] < 0.7 * loss.iloc[0], list(loss)


def test_a_resumed_run_ends_where_an_uninterrupted_one_does(flat_colours, tmp_path):
    # One batch per epoch: the shuffling order, which differs after a resume, cannot change the gradient.
    run = run_config(
        architecture="course", epochs=3, batch_size=32, learning_rate=1e-2, deterministic=True
    )

    class StopAfterFirst(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            self.model.stop_training = True

    train.train(run, cifar=flat_colours, out_dir=tmp_path / "whole", verbose=0)
    train.train(
        run,
        cifar=flat_colours,
        out_dir=tmp_path / "cut",
        verbose=0,
        extra_callbacks=[StopAfterFirst()],
    )
    assert json.loads((tmp_path / "cut" / "state.json").read_text())["epochs_done"] == 1
    train.train(run, cifar=flat_colours, out_dir=tmp_path / "cut", verbose=0)
    last = [keras.saving.load_model(tmp_path / f / "epoch-003.keras") for f in ("whole", "cut")]
    for a, b in zip(last[0].get_weights(), last[1].get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-4)  # one Adam step moves ~1e-2
    logs = [pd.read_csv(tmp_path / f / "log.csv") for f in ("whole", "cut")]
    np.testing.assert_allclose(logs[0]["val_loss"], logs[1]["val_loss"], rtol=1e-5)
    np.testing.assert_allclose(logs[0]["lr"], logs[1]["lr"], rtol=1e-6)
