"""The benchmark scripts: what they compare, and their refusals (they train nothing here)."""

import importlib.util
import subprocess
import sys
from pathlib import Path

from cae_utils import models

ROOT = Path(__file__).resolve().parent.parent


def _load(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_ladder_starts_at_notebook_02s_model_and_ends_at_the_course_model():
    rungs = list(_load("train_ladder").rungs())
    first_name, first_style, first_recipe, first_flip = rungs[0]
    assert (first_name, first_style, first_recipe, first_flip) == (
        "founding recipe",
        {},
        "founding",
        False,
    )
    assert (
        models.build_autoencoder(256, **first_style)[0].count_params() == 182_163
    )  # notebook 02's
    name, style, recipe, flip = rungs[-2]
    assert (name, style, recipe, flip) == ("two convs", models.COURSE_MODEL, "course", False)
    assert rungs[-1][1:] == (models.COURSE_MODEL, "course", True)  # then flips, nothing else
    # each rung changes exactly one thing
    settings = [dict(style, recipe=recipe, flip=flip) for _, style, recipe, flip in rungs]
    for before, after in zip(settings, settings[1:]):
        changed = {k for k in set(before) | set(after) if before.get(k) != after.get(k)}
        assert len(changed) == 1, (before, after)


def test_the_ladder_refuses_bad_arguments_before_loading_data(tmp_path):
    script = str(ROOT / "benchmarks" / "train_ladder.py")
    for args, message in [
        (["--epochs", "0"], "--epochs must be a whole number from 1"),
        (["--latent-dim", "5000"], "--latent-dim must be a whole number from 1 to 3072"),
        (["--out", str(tmp_path / "missing" / "ladder.json")], "does not exist"),
        (["--out", str(tmp_path)], "is a folder"),
    ]:
        done = subprocess.run(
            [sys.executable, script, *args],
            capture_output=True,
            text=True,
            env={"CAE_DATA_DIR": str(tmp_path / "no-data"), "PATH": "/usr/bin:/bin"},
        )
        assert done.returncode == 2, (args, done.stderr)
        assert message in done.stderr and "Traceback" not in done.stderr


def test_the_codec_speed_benchmark_refuses_bad_arguments_before_any_work(tmp_path):
    script = str(ROOT / "benchmarks" / "codec_speed.py")
    for args, message in [
        (["--images", "0"], "--images must be a whole number from 1 to 10000"),
        (["--large", "wide"], "--large must be WIDTHxHEIGHT"),
        (["--large", "10x100000"], "--large width must be a whole number from 32 to 4096"),
        (["--webp-quality", "101"], "--webp-quality must be a whole number from 0 to 100"),
        (["--image", str(tmp_path / "missing.png")], "is not a file"),
    ]:
        done = subprocess.run([sys.executable, script, *args], capture_output=True, text=True)
        assert done.returncode == 2, (args, done.stderr)
        assert message in done.stderr and "Traceback" not in done.stderr


def test_the_codec_speed_benchmark_refuses_bad_data_and_settings_in_one_line(tmp_path):
    import os
    import struct
    import zlib

    import numpy as np
    from PIL import Image

    script = str(ROOT / "benchmarks" / "codec_speed.py")
    (tmp_path / "text.png").write_text("not a picture")
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(tmp_path / "small.png")
    raw = bytearray((tmp_path / "small.png").read_bytes())
    # the IHDR chunk claims 5000 x 5000 pixels (over the codec's 2**24); its CRC is made valid
    raw[16:24] = struct.pack(">II", 5_000, 5_000)
    raw[29:33] = struct.pack(">I", zlib.crc32(bytes(raw[12:29])))
    (tmp_path / "huge.png").write_bytes(bytes(raw))
    for args, env, message in [
        (["--image", str(tmp_path / "text.png")], {}, "not a PNG or JPEG image"),
        (["--image", str(tmp_path / "huge.png")], {}, "5000 x 5000 pixels is too large"),
        (["--images", "1"], {"CAE_SEED": "abc"}, "CAE_SEED"),
    ]:
        done = subprocess.run(
            [sys.executable, script, *args],
            capture_output=True,
            text=True,
            env={**os.environ, **env},
        )
        assert done.returncode == 1, (args, done.stderr)
        assert done.stderr.startswith("error: ") and message in done.stderr, (args, done.stderr)
        assert "Traceback" not in done.stderr
