"""Training: runs write their folder, resume after an interruption, and refuse to overwrite another run."""

import json
import shutil
from pathlib import Path

import keras
import numpy as np
import pytest

from cae_utils import train
from cae_utils.data import CIFAR10, CLASS_NAMES


@pytest.fixture(scope="module")
def tiny_cifar():
    rng = np.random.default_rng(0)
    x = rng.random((48, 32, 32, 3), dtype=np.float32)
    y = np.arange(48) % 10
    return CIFAR10(x[:32], y[:32], x[32:40], y[32:40], x[40:], y[40:], CLASS_NAMES, "synthetic")


def run_config(**changes):
    settings = dict(
        architecture="baseline", latent_dim=8, epochs=2, batch_size=16, patience=5, seed=1
    )
    settings.update(changes)
    return train.RunConfig(**settings)


class StopAfter(keras.callbacks.Callback):
    """Simulates an interruption: stops training after `n` epochs of this call."""

    def __init__(self, n):
        super().__init__()
        self.n, self.seen = n, 0

    def on_epoch_end(self, epoch, logs=None):
        self.seen += 1
        if self.seen >= self.n:
            self.model.stop_training = True


def snapshot(folder):
    return {p.name: p.read_bytes() for p in folder.iterdir()}


@pytest.fixture(scope="module")
def trained_run(tiny_cifar, tmp_path_factory):
    """A finished 2-epoch run folder, trained once for the module; tests work on copies."""
    out = tmp_path_factory.mktemp("trained") / "run"
    train.train(run_config(), cifar=tiny_cifar, out_dir=out, verbose=0)
    return out


@pytest.fixture
def run_copy(trained_run, tmp_path):
    """A copy of the finished run, for one test to change."""
    return Path(shutil.copytree(trained_run, tmp_path / "run"))


def assert_refused_and_unchanged(out, message, cifar, config=None):
    """Training again in ``out`` is refused with ``message`` and changes no file there."""
    before = snapshot(out)
    with pytest.raises(train.TrainingError, match=message):
        train.train(config or run_config(), cifar=cifar, out_dir=out, verbose=0)
    assert snapshot(out) == before


def test_in_memory_training_returns_models_and_history(tiny_cifar):
    result = train.train(run_config(), cifar=tiny_cifar, verbose=0)
    assert result.out_dir is None
    assert list(result.history["epoch"]) == [0, 1]
    assert {"loss", "val_loss", "psnr", "val_psnr"} <= set(result.history.columns)
    assert result.encoder.output_shape == (None, 8)
    out = result.autoencoder.predict(tiny_cifar.x_val, verbose=0)
    assert out.shape == tiny_cifar.x_val.shape and out.dtype == np.float32


def test_run_folder_contents(tiny_cifar, tmp_path):
    out = tmp_path / "run"
    train.train(
        run_config(),
        cifar=tiny_cifar,
        out_dir=out,
        verbose=0,
        command="python -m cae_utils.train ...",
    )
    assert {p.name for p in out.iterdir()} == {
        "run.json",
        "log.csv",
        "epoch-002.keras",
        "best.weights.h5",
        "state.json",
    }
    run = json.loads((out / "run.json").read_text())
    assert run["model"] == {"architecture": "baseline", "latent_dim": 8}
    assert run["command"] == "python -m cae_utils.train ..." and run["training"]["epochs"] == 2
    assert run["train_images"] == 32
    state = json.loads((out / "state.json").read_text())
    assert (
        state["epochs_done"] == 2
        and state["checkpoint"] == "epoch-002.keras"
        and 1 <= state["best_epoch"] <= 2
    )
    log = (out / "log.csv").read_text().splitlines()
    assert len(log) == 3 and log[0] == "epoch,loss,psnr,val_loss,val_psnr,lr,seconds"


def test_interrupted_run_resumes_where_it_stopped(tiny_cifar, tmp_path):
    out = tmp_path / "run"
    config = run_config(epochs=3)
    train.train(config, cifar=tiny_cifar, out_dir=out, verbose=0, extra_callbacks=[StopAfter(1)])
    assert json.loads((out / "state.json").read_text())["epochs_done"] == 1
    optimizer_steps = keras.saving.load_model(out / "epoch-001.keras").optimizer.iterations.numpy()
    assert optimizer_steps == 2  # 32 images / batch 16: the optimizer state is in the checkpoint
    # An interruption after the log row but before state.json: the extra row must not survive the resume.
    with open(out / "log.csv", "a") as f:
        f.write("1,9,9,9,9,9,9\n")

    result = train.train(config, cifar=tiny_cifar, out_dir=out, verbose=0)
    state = json.loads((out / "state.json").read_text())
    assert state["epochs_done"] == 3 and state["checkpoint"] == "epoch-003.keras"
    assert list(result.history["epoch"]) == [0, 1, 2], "the log continues, it does not restart"
    assert 9 not in result.history["loss"].tolist()
    assert not (out / "epoch-001.keras").exists(), "older checkpoints are removed"
    assert keras.saving.load_model(out / "epoch-003.keras").optimizer.iterations.numpy() == 6


def test_finished_run_is_loaded_not_retrained(tiny_cifar, tmp_path):
    out = tmp_path / "run"
    first = train.train(run_config(), cifar=tiny_cifar, out_dir=out, verbose=0)
    before = snapshot(out)
    again = train.train(run_config(), cifar=tiny_cifar, out_dir=out, verbose=0)
    assert snapshot(out) == before
    np.testing.assert_allclose(
        first.autoencoder.predict(tiny_cifar.x_val, verbose=0),
        again.autoencoder.predict(tiny_cifar.x_val, verbose=0),
        atol=1e-6,
    )


def test_folder_of_another_model_is_refused_and_untouched(tiny_cifar, run_copy):
    out = run_copy
    for config, message in [
        (run_config(latent_dim=16), r"different model.*Nothing was overwritten"),
        (run_config(epochs=5), r"epochs: 2 there, 5 now.*--epochs 2"),
        (run_config(batch_size=8), r"batch_size: 16 there, 8 now"),
    ]:
        assert_refused_and_unchanged(out, message, tiny_cifar, config)
    smaller = CIFAR10(
        tiny_cifar.x_train[:16],
        tiny_cifar.y_train[:16],
        tiny_cifar.x_val,
        tiny_cifar.y_val,
        tiny_cifar.x_test,
        tiny_cifar.y_test,
        CLASS_NAMES,
        "synthetic",
    )
    assert_refused_and_unchanged(out, "holds a run on 32 training images, but 16", smaller)


def test_seed_defaults_to_cae_seed(monkeypatch):
    monkeypatch.setenv("CAE_SEED", "7")
    assert run_config(seed=None).seed == 7


def test_folder_that_is_not_a_run_is_refused(tiny_cifar, tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(train.TrainingError, match="not a training run folder"):
        train.train(run_config(), cifar=tiny_cifar, out_dir=tmp_path, verbose=0)
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]
    with pytest.raises(train.TrainingError, match="is a file, not a folder"):
        train.train(run_config(), cifar=tiny_cifar, out_dir=tmp_path / "notes.txt", verbose=0)


def test_run_folder_in_a_missing_folder_or_behind_a_broken_link_is_refused(tiny_cifar, tmp_path):
    with pytest.raises(train.TrainingError, match="the folder .*missing does not exist.*mkdir -p"):
        train.train(run_config(), cifar=tiny_cifar, out_dir=tmp_path / "missing" / "run", verbose=0)
    (tmp_path / "link").symlink_to(tmp_path / "gone")
    with pytest.raises(train.TrainingError, match="is a link to a folder that does not exist"):
        train.train(run_config(), cifar=tiny_cifar, out_dir=tmp_path / "link", verbose=0)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link"]  # nothing was created


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"latent_dim": 0}, "latent_dim must be a whole number from 1 to 3072, got 0"),
        ({"latent_dim": 10**9}, "latent_dim must be a whole number from 1 to 3072"),
        ({"latent_dim": 2.5}, "latent_dim must be a whole number"),
        ({"epochs": -1}, "epochs must be a whole number from 1 to 100000, got -1"),
        ({"batch_size": True}, "batch_size must be a whole number"),
        ({"learning_rate": 5.0}, r"learning_rate must be a number above 0 to 1, got 5.0"),
        ({"learning_rate": float("nan")}, "learning_rate must be a number above 0 to 1, got nan"),
        ({"learning_rate": 0}, "learning_rate must be a number above 0 to 1, got 0"),
        ({"seed": -1}, "seed must be a whole number from 0 to 4294967295, got -1"),
        ({"seed": 2**32}, "seed must be a whole number from 0 to 4294967295"),
        ({"architecture": "vgg"}, "unknown architecture 'vgg'"),
        (
            {"epochs": 3, "warmup_epochs": 3},
            "warmup_epochs must be a whole number from 0 to 2, got 3",
        ),
        ({"warmup_epochs": -1}, "warmup_epochs must be a whole number from 0 to 1, got -1"),
        ({"clipnorm": 0.0}, r"clipnorm must be a number above 0 to 1000000.0, got 0.0"),
        ({"clipnorm": float("inf")}, r"clipnorm must be a number above 0 to 1000000.0, got inf"),
    ],
)
def test_bad_settings_are_refused(changes, message):
    with pytest.raises(train.TrainingError, match=message):
        run_config(**changes)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--latent-dim", "0"], "latent_dim must be a whole number"),
        (["--architecture", "vgg"], "unknown architecture"),
        (["--epochs", "ten"], "invalid int value"),
    ],
)
def test_command_line_rejects_bad_arguments_and_writes_nothing(tmp_path, capsys, args, message):
    out = tmp_path / "run"
    with pytest.raises(SystemExit) as exit_info:
        train.main(["--out", str(out), *args])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err
    assert not out.exists()


def test_schedule_warms_up_linearly_then_decays_as_a_cosine():
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(2)])
    train.compile_autoencoder(model, 2e-3, total_steps=110, warmup_steps=10, clipnorm=1.0)
    schedule = model.optimizer._learning_rate  # Keras keeps the schedule here
    # By hand: 2e-5 at step 0, linear to 2e-3 at step 10, then 2e-3 * (0.01 + 0.99 * (1 + cos(pi t)) / 2)
    expected = {
        0: 2e-5,
        5: 2e-5 + 0.5 * (2e-3 - 2e-5),
        10: 2e-3,
        60: 2e-3 * (0.01 + 0.99 * 0.5),
        110: 2e-5,
    }
    for step, value in expected.items():
        assert float(schedule(step)) == pytest.approx(value, rel=1e-5), step
    assert model.optimizer.clipnorm == 1.0


def test_command_line_passes_warm_up_and_clipping_to_the_run(tmp_path):
    argv = ["--out", str(tmp_path), "--epochs", "4", "--warmup-epochs", "1", "--clipnorm", "0.5"]
    args = train._parser().parse_args([*argv, "--learning-rate", "2e-3"])
    run = train.settings_from_args(train.RunConfig, args)
    assert (run.warmup_epochs, run.clipnorm, run.learning_rate, run.epochs) == (1, 0.5, 2e-3, 4)
    plain = train.settings_from_args(train.RunConfig, train._parser().parse_args(argv[:2]))
    assert (plain.warmup_epochs, plain.clipnorm) == (0, None)


def test_command_line_refuses_another_models_folder(run_copy, capsys):
    out = run_copy
    before = snapshot(out)
    with pytest.raises(SystemExit) as exit_info:
        train.main(
            ["--out", str(out), "--architecture", "baseline", "--latent-dim", "32", "--epochs", "2"]
        )
    assert exit_info.value.code == 2 and "different model" in capsys.readouterr().err
    assert snapshot(out) == before


def test_configure_device_on_this_machine():
    strategy, jit_compile, description = train.configure_device()
    assert strategy is not None and isinstance(description, str)
    assert keras.mixed_precision.global_policy().name in ("float32", "mixed_float16")
    keras.mixed_precision.set_global_policy("float32")


@pytest.mark.parametrize("seed", ["-1", "99999999999999999999"])
def test_the_command_line_refuses_a_seed_out_of_range(seed, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        train.main(["--architecture", "baseline", "--seed", seed, "--out", str(tmp_path / "run")])
    assert (
        exit_.value.code == 2
        and "seed must be a whole number from 0 to 4294967295" in capsys.readouterr().err
    )
    assert not (tmp_path / "run").exists()


def test_a_missing_checkpoint_is_refused_and_nothing_is_deleted(tiny_cifar, run_copy):
    """The reported defect: a run folder whose state.json names a deleted checkpoint was wiped and retrained."""
    (run_copy / "NOTES.txt").write_text("mine")
    (run_copy / "epoch-002.keras").unlink()
    assert_refused_and_unchanged(
        run_copy, r"resumes from epoch-002.keras, which is missing.*Nothing", tiny_cifar
    )


@pytest.mark.parametrize(
    "damage",
    [
        {"checkpoint": "../elsewhere.keras"},
        {"checkpoint": None},
        {"epochs_done": -1},
        {"best_val_loss": "low"},
        {"train_seconds": None},
        {"checkpoint": "run.json"},  # a file of the folder, not the checkpoint of epoch 2
        {"stopped_early": "no"},
    ],
)
def test_an_odd_state_file_is_refused_and_nothing_is_changed(tiny_cifar, run_copy, damage):
    state = json.loads((run_copy / "state.json").read_text())
    (run_copy / "state.json").write_text(json.dumps({**state, **damage}))
    assert_refused_and_unchanged(
        run_copy, r"state.json is damaged.*Nothing was changed", tiny_cifar
    )


def test_a_run_that_died_in_its_first_epoch_restarts_and_keeps_the_users_files(
    tiny_cifar, tmp_path
):
    out = tmp_path / "run"
    train.train(run_config(), cifar=tiny_cifar, out_dir=out, verbose=0)
    for name in ("state.json", "epoch-002.keras", "best.weights.h5"):
        (out / name).unlink()  # what a run killed during its first epoch leaves: run.json and a log
    log = (out / "log.csv").read_text().splitlines()
    (out / "log.csv").write_text("\n".join(log[:2]) + "\n")  # a row written just before the kill
    (out / "NOTES.txt").write_text("mine")
    train.train(run_config(), cifar=tiny_cifar, out_dir=out, verbose=0)
    assert (out / "NOTES.txt").read_text() == "mine"
    rows = (out / "log.csv").read_text().splitlines()
    assert rows[0] == log[0] and [row.split(",")[0] for row in rows[1:]] == ["0", "1"]
    assert json.loads((out / "state.json").read_text())["epochs_done"] == 2


def test_a_damaged_checkpoint_is_refused_and_nothing_is_changed(tiny_cifar, run_copy):
    (run_copy / "epoch-002.keras").write_bytes(b"not a keras file")
    assert_refused_and_unchanged(
        run_copy, r"checkpoint epoch-002.keras cannot be loaded.*Nothing", tiny_cifar
    )


def test_resuming_never_deletes_a_file_that_state_json_names_but_the_run_did_not_write(
    tiny_cifar, run_copy
):
    """The audit's case: the checkpoint renamed by the user and named in state.json was deleted on resume."""
    (run_copy / "epoch-002.keras").rename(run_copy / "my-backup.keras")
    state = json.loads((run_copy / "state.json").read_text())
    (run_copy / "state.json").write_text(json.dumps({**state, "checkpoint": "my-backup.keras"}))
    assert_refused_and_unchanged(run_copy, r"names my-backup.keras, but after 2 epochs", tiny_cifar)


def test_a_run_with_finished_epochs_but_no_state_file_is_refused(tiny_cifar, run_copy):
    """Without state.json, only a run that died in its first epoch starts afresh."""
    (run_copy / "state.json").unlink()
    assert_refused_and_unchanged(
        run_copy, r"finished epochs \(epoch-002.keras\) but no state.json", tiny_cifar
    )


@pytest.mark.parametrize(
    "file, text, message",
    [
        ("run.json", "[]", "run.json is damaged"),
        ("run.json", "null", "run.json is damaged"),
        ("run.json", '{"model": {}, "training": [1]}', "run.json is damaged"),
        ("state.json", "[1, 2]", "state.json is damaged"),
        ("log.csv", "", r"log.csv holds 0 rows for 2 finished epochs"),
        (
            "best.weights.h5",
            "not HDF5",
            r"best.weights.h5 \(the weights of epoch \d\) is missing or not an HDF5",
        ),
    ],
)
def test_odd_run_files_are_refused_in_one_message_and_nothing_is_changed(
    tiny_cifar, run_copy, file, text, message
):
    (run_copy / file).write_text(text)
    assert_refused_and_unchanged(run_copy, message, tiny_cifar)


def test_a_run_without_its_best_weights_is_refused(tiny_cifar, run_copy):
    (run_copy / "best.weights.h5").unlink()
    assert_refused_and_unchanged(
        run_copy, r"best.weights.h5 .* is missing.*Nothing was changed", tiny_cifar
    )
