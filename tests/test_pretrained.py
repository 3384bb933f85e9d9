"""Shipped models: listed, loaded by name with the exported scores, and clear errors when files are wrong."""

import json
import shutil

import numpy as np
import pytest

from cae_utils import maintainer, pretrained, train
from cae_utils.data import CIFAR10, CLASS_NAMES


@pytest.fixture(scope="module")
def shipped(tmp_path_factory):
    """A weights folder holding one tiny exported model, and the test images it was scored on."""
    rng = np.random.default_rng(0)
    x = rng.random((40, 32, 32, 3), dtype=np.float32)
    cifar = CIFAR10(
        x[:24],
        np.zeros(24, int),
        x[24:32],
        np.zeros(8, int),
        x[32:],
        np.zeros(8, int),
        CLASS_NAMES,
        "synthetic",
    )
    run_dir = tmp_path_factory.mktemp("run")
    run = train.RunConfig(architecture="baseline", latent_dim=16, epochs=1, batch_size=8, seed=3)
    train.train(
        run,
        cifar=cifar,
        out_dir=run_dir,
        verbose=0,
        command="python -m cae_utils.train --latent-dim 16",
    )
    weights_dir = tmp_path_factory.mktemp("weights")
    meta = maintainer.export(run_dir, "baseline-16", weights_dir=weights_dir, x_test=cifar.x_test)
    return weights_dir, cifar, meta


def test_export_writes_the_three_files(shipped):
    weights_dir, _, meta = shipped
    assert sorted(p.name for p in weights_dir.iterdir()) == [
        "baseline-16.json",
        "baseline-16.log.csv",
        "baseline-16.weights.h5",
    ]
    assert meta["model"] == {"architecture": "baseline", "latent_dim": 16}
    assert meta["training"]["command"] == "python -m cae_utils.train --latent-dim 16"
    assert meta["test"]["images"] == 8


def test_available_and_info(shipped):
    weights_dir, _, meta = shipped
    assert pretrained.available(weights_dir) == ["baseline-16"]
    # a learned codec shares the folder, but is not an autoencoder
    (weights_dir / "codec-low.json").write_text("{}")
    assert pretrained.available(weights_dir) == ["baseline-16"]
    assert pretrained.available(weights_dir, architecture="baseline") == ["baseline-16"]
    assert pretrained.available(weights_dir, architecture="course") == []
    assert pretrained.info("baseline-16", weights_dir) == json.loads(json.dumps(meta))


def test_load_reproduces_the_exported_scores(shipped):
    from cae_utils.metrics import evaluate

    weights_dir, cifar, meta = shipped
    autoencoder, encoder, decoder = pretrained.load("baseline-16", weights_dir)
    assert encoder.output_shape == (None, 16) and decoder.input_shape == (None, 16)
    scores = evaluate(autoencoder, cifar.x_test)
    assert round(scores["psnr"], 3) == meta["test"]["psnr"]
    assert round(scores["pooled_psnr"], 3) == meta["test"]["pooled_psnr"]


def test_unknown_name(shipped):
    weights_dir, _, _ = shipped
    with pytest.raises(
        pretrained.PretrainedError,
        match=r"no shipped model named 'resnet-9'.*available: baseline-16",
    ):
        pretrained.load("resnet-9", weights_dir)


def test_missing_weights_file(shipped, tmp_path):
    weights_dir, _, _ = shipped
    shutil.copy(weights_dir / "baseline-16.json", tmp_path)
    with pytest.raises(pretrained.PretrainedError, match=r"weights of 'baseline-16' are missing"):
        pretrained.load("baseline-16", tmp_path)


def test_weights_that_do_not_fit_the_description(shipped, tmp_path):
    weights_dir, _, _ = shipped
    for f in weights_dir.iterdir():
        shutil.copy(f, tmp_path)
    meta = json.loads((tmp_path / "baseline-16.json").read_text())
    meta["model"]["latent_dim"] = 32
    (tmp_path / "baseline-16.json").write_text(json.dumps(meta))
    with pytest.raises(
        pretrained.PretrainedError, match="does not fit the baseline architecture with latent 32"
    ):
        pretrained.load("baseline-16", tmp_path)


def test_damaged_weights_file_is_refused_by_its_hash_and_kept(shipped, tmp_path):
    weights_dir, _, _ = shipped
    for f in weights_dir.iterdir():
        shutil.copy(f, tmp_path)
    (tmp_path / "baseline-16.weights.h5").write_bytes(b"not an HDF5 file")
    with pytest.raises(
        pretrained.PretrainedError, match="does not match its description.*It was not loaded"
    ):
        pretrained.load("baseline-16", tmp_path)
    assert (
        tmp_path / "baseline-16.weights.h5"
    ).read_bytes() == b"not an HDF5 file"  # the user's file stays


@pytest.mark.parametrize(
    "model, message",
    [
        (None, "its model is None"),
        ([1], r"its model is \[1\]"),
        (
            {"architecture": "vgg", "latent_dim": 16},
            "it must name an architecture: baseline, course",
        ),
        (
            {"architecture": "baseline", "latent_dim": -5},
            "latent_dim must be a whole number from 1 to 3072, got -5",
        ),
        ({"architecture": "baseline", "latent_dim": 10**9}, "from 1 to 3072, got 1000000000"),
        ({"architecture": "baseline", "latent_dim": "16"}, "from 1 to 3072, got '16'"),
        ({"architecture": "baseline"}, "got None"),
    ],
)
def test_a_description_with_a_bad_model_is_refused_before_building(
    shipped, tmp_path, model, message
):
    weights_dir, _, _ = shipped
    for f in weights_dir.iterdir():
        shutil.copy(f, tmp_path)
    meta = json.loads((tmp_path / "baseline-16.json").read_text())
    (tmp_path / "baseline-16.json").write_text(json.dumps({**meta, "model": model}))
    with pytest.raises(
        pretrained.PretrainedError, match=f"baseline-16.json is damaged \\(.*{message}"
    ):
        pretrained.load("baseline-16", weights_dir=tmp_path)


@pytest.mark.parametrize(
    "weights", [{}, {"sha256": None}, {"sha256": 7}, {"sha256": "abc"}, "abc", None]
)
def test_a_description_without_a_hash_never_loads_its_weights(shipped, tmp_path, weights):
    """The audit's case: without a recorded SHA-256, a tampered weights file was loaded unchecked."""
    weights_dir, _, _ = shipped
    for f in weights_dir.iterdir():
        shutil.copy(f, tmp_path)
    meta = json.loads((tmp_path / "baseline-16.json").read_text())
    (tmp_path / "baseline-16.json").write_text(json.dumps({**meta, "weights": weights}))
    with pytest.raises(pretrained.PretrainedError, match="records no SHA-256.*was not loaded"):
        pretrained.load("baseline-16", tmp_path)


@pytest.mark.parametrize(
    "name",
    ["../weights/course-256", "/etc/passwd", "weights/course-256", "", "Course-256", 256],
)
def test_a_name_that_is_a_path_or_not_a_name_is_refused(name):
    with pytest.raises(
        pretrained.PretrainedError, match="is not a model name.*a path is not accepted"
    ):
        pretrained.load(name)


def test_export_writes_weights_without_optimizer_state_and_records_their_hash(shipped):
    import hashlib

    import h5py

    weights_dir, _, meta = shipped
    path = weights_dir / "baseline-16.weights.h5"
    with h5py.File(path, "r") as f:
        groups = list(f.keys())
    assert "optimizer" not in groups and "layers" in groups
    assert meta["weights"] == {
        "file": path.name,
        "bytes": path.stat().st_size,
        "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
    }


def test_export_records_pca_of_the_same_size_when_given_the_training_images(shipped, tmp_path):
    weights_dir, cifar, meta = shipped
    assert "pca" not in meta  # the fixture's export was given test images only
    run_dir = tmp_path / "run"
    run = train.RunConfig(architecture="baseline", latent_dim=4, epochs=1, batch_size=8, seed=3)
    train.train(run, cifar=cifar, out_dir=run_dir, verbose=0)
    (tmp_path / "w").mkdir()
    meta = maintainer.export(
        run_dir,
        "baseline-4",
        weights_dir=tmp_path / "w",
        x_test=cifar.x_test,
        x_train=cifar.x_train,
    )
    expected = maintainer.pca_scores(cifar.x_train, cifar.x_test, 4)
    assert meta["pca"] == {"images": 8, "train_images": 24, **expected}
    # By hand: PCA with 4 components of 24 images, scored on the 8 test images.
    from cae_utils import baselines, metrics

    reconstructed = baselines.pca_reconstruct(
        baselines.fit_pca(cifar.x_train, 4), cifar.x_test
    ).reconstructions
    assert expected["psnr"] == round(float(metrics.psnr(cifar.x_test, reconstructed).mean()), 3)


def test_table_and_markdown_table_read_the_descriptions(shipped, tmp_path):
    weights_dir, _, meta = shipped
    shipped_table = pretrained.table(weights_dir)
    row = shipped_table.loc["baseline-16"]
    assert list(shipped_table.index) == ["baseline-16"]
    assert (row["architecture"], row["latent values"], row["parameters"]) == (
        "baseline",
        16,
        meta["parameters"],
    )
    assert (
        row["test PSNR mean (dB)"] == meta["test"]["psnr"]
        and row["command"] == meta["training"]["command"]
    )
    # exported without x_train
    assert np.isnan(row["PCA mean (dB)"]) and np.isnan(row["gain over PCA (dB)"])
    assert "| `baseline-16` | 16 |" in maintainer.markdown_table(weights_dir)
    assert "| not recorded |" in maintainer.markdown_table(weights_dir)
    # With PCA scores recorded, the gain is the difference of the mean PSNRs, by hand.
    # (A copy of the folder: the fixture is shared with the other tests.)
    described = dict(meta, pca={"images": 8, "train_images": 24, "psnr": 10.0, "pooled_psnr": 9.5})
    copy = tmp_path / "weights"
    shutil.copytree(weights_dir, copy)
    (copy / "baseline-16.json").write_text(json.dumps(described))
    row = pretrained.table(copy).loc["baseline-16"]
    assert row["gain over PCA (dB)"] == meta["test"]["psnr"] - 10.0
    assert (
        f"| 10.00 / 9.50 dB | {meta['test']['psnr'] - 10.0:+.2f} dB |"
        in maintainer.markdown_table(copy)
    )


def test_every_shipped_model_loads_and_beats_pca_of_its_size():
    names = pretrained.available()
    assert pretrained.MAIN in names
    x = np.random.default_rng(0).random((2, 32, 32, 3), dtype=np.float32)
    for name in names:
        meta = pretrained.info(name)
        autoencoder, encoder, decoder = pretrained.load(name)
        assert (
            encoder.output_shape == (None, meta["model"]["latent_dim"]) and len(decoder.inputs) == 1
        )
        out = autoencoder.predict(x, verbose=0)
        assert out.shape == x.shape and 0 <= out.min() and out.max() <= 1
        assert meta["test"]["images"] == meta["pca"]["images"] == 10_000, name
        assert meta["test"]["psnr"] > meta["pca"]["psnr"], name
        assert meta["test"]["pooled_psnr"] > meta["pca"]["pooled_psnr"], name


def test_export_refuses_an_unfinished_run(tmp_path):
    with pytest.raises(pretrained.PretrainedError, match="not a finished training run"):
        maintainer.export(
            tmp_path, "x", weights_dir=tmp_path / "w", x_test=np.zeros((1, 32, 32, 3))
        )


def test_export_refuses_a_run_that_is_still_going(tmp_path):
    for name, content in {
        "run.json": {"training": {"epochs": 15}},
        "state.json": {"epochs_done": 4, "stopped_early": False},
    }.items():
        (tmp_path / name).write_text(json.dumps(content))
    for name in ("best.weights.h5", "log.csv"):
        (tmp_path / name).write_text("x")
    with pytest.raises(pretrained.PretrainedError, match="finished 4 of its 15 epochs"):
        maintainer.export(
            tmp_path, "x", weights_dir=tmp_path / "w", x_test=np.zeros((1, 32, 32, 3))
        )
    assert not (tmp_path / "w").exists()


def test_a_benchmarks_recorded_run_is_read_by_name_and_is_not_a_model(tmp_path):
    ladder = pretrained.benchmark("ladder")
    assert ladder["command"].startswith("python benchmarks/train_ladder.py")
    assert [row["rung"] for row in ladder["rows"]][:2] == ["founding recipe", "course recipe"]
    assert "ladder" not in pretrained.available() + pretrained.available(kind="codec")
    with pytest.raises(pretrained.PretrainedError, match="not a benchmark's recorded run"):
        pretrained.benchmark(pretrained.MAIN)
    with pytest.raises(pretrained.PretrainedError, match="ladder"):
        pretrained.load("ladder")


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """A finished one-epoch run folder of a tiny model, and its test images."""
    rng = np.random.default_rng(1)
    x = rng.random((24, 32, 32, 3), dtype=np.float32)
    cifar = CIFAR10(
        x[:16], np.zeros(16, int), x[16:20], np.zeros(4, int), x[20:], np.zeros(4, int),
        CLASS_NAMES, "synthetic",
    )  # fmt: skip
    run_dir = tmp_path_factory.mktemp("finished")
    run = train.RunConfig(architecture="baseline", latent_dim=8, epochs=1, batch_size=8, seed=3)
    train.train(run, cifar=cifar, out_dir=run_dir, verbose=0)
    return run_dir, cifar.x_test


def test_export_refuses_a_name_that_is_a_path_before_any_work(finished_run, tmp_path):
    run_dir, x_test = finished_run
    (tmp_path / "weights").mkdir()
    for name in ("../escaped", "Weird Name!", "a/b"):
        with pytest.raises(pretrained.PretrainedError, match="is not a model name"):
            maintainer.export(run_dir, name, weights_dir=tmp_path / "weights", x_test=x_test)
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["weights"]


def test_export_checks_its_outputs_before_scoring(finished_run, tmp_path, monkeypatch):
    from cae_utils.cli import UsageError

    run_dir, x_test = finished_run
    monkeypatch.setattr(
        maintainer, "evaluate", lambda *a, **k: pytest.fail("scored"), raising=False
    )
    with pytest.raises(UsageError, match="does not exist"):
        maintainer.export(run_dir, "tiny-8", weights_dir=tmp_path / "missing", x_test=x_test)
    (tmp_path / "tiny-8.json").mkdir()  # an output that is a folder
    with pytest.raises(UsageError, match="tiny-8.json"):
        maintainer.export(run_dir, "tiny-8", weights_dir=tmp_path, x_test=x_test)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny-8.json"]


@pytest.mark.parametrize(
    "file, change, message",
    [
        ("state.json", {"epochs_done": "1"}, "run.json or state.json is damaged"),
        ("state.json", {"epochs_done": float("nan")}, "run.json or state.json is damaged"),
        ("state.json", {"best_epoch": None}, "run.json or state.json is damaged"),
        ("run.json", {"model": [1]}, r"run.json is damaged \(it does not hold the JSON object"),
        ("state.json", "[1, 2]", r"state.json is damaged \(it does not hold the JSON object"),
        ("run.json", "{not json", r"run.json cannot be read"),
    ],
)
def test_export_refuses_a_damaged_run_in_one_message(finished_run, tmp_path, file, change, message):
    run_dir, x_test = finished_run
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    if isinstance(change, dict):
        change = json.dumps({**json.loads((copy / file).read_text()), **change})
    (copy / file).write_text(change)
    (tmp_path / "weights").mkdir()
    with pytest.raises(pretrained.PretrainedError, match=message):
        maintainer.export(copy, "tiny-8", weights_dir=tmp_path / "weights", x_test=x_test)
    assert list((tmp_path / "weights").iterdir()) == []


def test_the_table_names_a_damaged_description(shipped, tmp_path):
    weights_dir, _, _ = shipped
    for f in weights_dir.iterdir():
        shutil.copy(f, tmp_path)
    meta = json.loads((tmp_path / "baseline-16.json").read_text())
    del meta["test"]
    (tmp_path / "baseline-16.json").write_text(json.dumps(meta))
    with pytest.raises(
        pretrained.PretrainedError, match=r"baseline-16.json is damaged \(KeyError\('test'\)\)"
    ):
        pretrained.table(tmp_path)
