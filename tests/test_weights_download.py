"""The shipped weights: one registry for autoencoders and codecs, hashes that match, downloads that are checked.

The download tests hide the clone's ``weights/`` folder (``CAE_WEIGHTS_DIR`` names an empty one) and stand a
local HTTP server on 127.0.0.1 in for the repository (``CAE_WEIGHTS_URL``); the Keras cache goes to a
temporary ``KERAS_HOME``.
"""

import functools
import hashlib
import http.server
import json
import socket
import threading
from pathlib import Path

import h5py
import numpy as np
import pytest

from cae_utils import codec, config, pretrained
from cae_utils.codec import api

ROOT = Path(__file__).resolve().parent.parent
WEIGHTS = ROOT / "weights"
SMALL = "course-32"  # the smallest shipped autoencoder: the download tests fetch it


def test_every_shipped_weights_file_matches_its_description_and_holds_no_optimizer_state():
    descriptions = sorted(WEIGHTS.glob("*.json"))
    assert len(descriptions) >= 7
    for path in descriptions:
        meta = json.loads(path.read_text())
        if meta["kind"] == "benchmark":  # a benchmark's recorded run: no weights
            assert isinstance(meta["rows"], list) and meta["command"].startswith(
                "python benchmarks/"
            )
            continue
        weights = WEIGHTS / meta["weights"]["file"]
        assert weights.name == path.name.replace(".json", ".weights.h5")
        assert meta["weights"]["sha256"] == hashlib.sha256(weights.read_bytes()).hexdigest(), (
            weights.name
        )
        assert meta["weights"]["bytes"] == weights.stat().st_size
        assert meta["kind"] in ("autoencoder", "codec")
        with h5py.File(weights, "r") as f:
            assert "optimizer" not in f, f"{weights.name} holds optimizer state"
        assert (WEIGHTS / path.name.replace(".json", ".log.csv")).is_file()


def test_one_registry_lists_both_kinds():
    autoencoders = pretrained.available()
    codecs = pretrained.available(kind="codec")
    benchmarks = pretrained.available(kind="benchmark")
    on_disk = sorted(p.name[: -len(".json")] for p in WEIGHTS.glob("*.json"))
    assert sorted(autoencoders + codecs + benchmarks) == on_disk
    assert codecs and all(name.startswith("codec-") for name in codecs)
    assert [f"codec-{name}" for name in codec.models() if name != "tiny"] == sorted(
        codecs, key=lambda n: pretrained.info(n)["nominal_bpp"]
    )
    loaded = pretrained.load(codecs[0])  # a codec model through the same entry point
    assert isinstance(loaded, codec.Codec) and f"codec-{loaded.name}" == codecs[0]
    assert loaded.tables.fingerprint() == pretrained.info(codecs[0])["tables_crc32"]
    with pytest.raises(pretrained.PretrainedError, match="kind must be one of autoencoder, codec"):
        pretrained.available(kind="gan")
    log = pretrained.training_log(pretrained.MAIN)
    assert len(log) == pretrained.info(pretrained.MAIN)["training"]["epochs_done"]


def test_a_clone_loads_from_its_weights_folder_without_downloading(monkeypatch):
    import keras

    def no_download(*args, **kwargs):
        raise AssertionError("a clone must not download its own weights")

    monkeypatch.setattr(keras.utils, "get_file", no_download)
    monkeypatch.delenv("CAE_WEIGHTS_DIR", raising=False)
    assert pretrained.weights_file(SMALL) == WEIGHTS / f"{SMALL}.weights.h5"
    _, encoder, _ = pretrained.load(SMALL)
    assert encoder.output_shape == (None, 32)  # course-32: a latent of 32 values


def test_unknown_name_lists_the_shipped_models():
    with pytest.raises(
        pretrained.PretrainedError, match=rf"no shipped model named 'resnet-9'.*{pretrained.MAIN}"
    ):
        pretrained.info("resnet-9")


def test_the_download_address_comes_from_pyproject(monkeypatch, tmp_path):
    import tomllib

    with open(ROOT / "pyproject.toml", "rb") as f:
        repository = tomllib.load(f)["project"]["urls"]["Repository"]
    asked = []

    def fake_get_file(fname, origin, **kwargs):
        asked.append(origin)
        raise Exception("no network in this test")

    import keras

    monkeypatch.setattr(keras.utils, "get_file", fake_get_file)
    monkeypatch.setenv("CAE_WEIGHTS_DIR", str(tmp_path))
    monkeypatch.delenv("CAE_WEIGHTS_URL", raising=False)
    with pytest.raises(pretrained.PretrainedError, match="could not download"):
        pretrained.weights_file(SMALL)
    assert asked == [f"{repository.rstrip('/')}/raw/main/weights/{SMALL}.weights.h5"]


class _Server:
    """A static file server on 127.0.0.1 that counts requests."""

    def __init__(self, folder: Path):
        counts = self.requests = []

        class Handler(http.server.SimpleHTTPRequestHandler):
            def log_message(self, *args):  # keep test output quiet
                pass

            def do_GET(self):
                counts.append(self.path)
                super().do_GET()

        self.httpd = http.server.ThreadingHTTPServer(
            ("127.0.0.1", 0), functools.partial(Handler, directory=str(folder))
        )
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def repository(tmp_path, monkeypatch):
    """A stand-in repository serving a copy of the weights folder; the clone's weights hidden; a fresh cache."""
    served = tmp_path / "served"
    served.mkdir()
    server = _Server(served)
    monkeypatch.setenv("CAE_WEIGHTS_DIR", str(tmp_path / "empty"))
    monkeypatch.setenv("CAE_WEIGHTS_URL", server.url)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    monkeypatch.setattr(api, "_LOADED", {})
    yield served, server, tmp_path / "keras" / pretrained.CACHE_SUBDIR
    server.close()


def test_load_downloads_checks_and_caches_the_one_file_it_needs(repository):
    served, server, cache = repository
    for f in WEIGHTS.glob("*.weights.h5"):
        (served / f.name).write_bytes(f.read_bytes())
    autoencoder, encoder, _ = pretrained.load(SMALL)
    assert server.requests == [f"/{SMALL}.weights.h5"]
    assert sorted(p.name for p in cache.iterdir()) == [f"{SMALL}.weights.h5"]
    downloaded = (cache / f"{SMALL}.weights.h5").read_bytes()
    assert hashlib.sha256(downloaded).hexdigest() == pretrained.info(SMALL)["weights"]["sha256"]
    # The downloaded model is the shipped one: its weights equal those in the clone's file, read with h5py.
    with h5py.File(WEIGHTS / f"{SMALL}.weights.h5", "r") as f:
        # the encoder's first convolution
        kernel = np.asarray(f["layers/functional/layers/conv2d/vars/0"])
    first_conv = next(layer for layer in encoder.layers if layer.__class__.__name__ == "Conv2D")
    assert kernel.shape == (3, 3, 3, 48) and np.array_equal(
        first_conv.get_weights()[0], kernel
    )  # the course model's first convolution: 48 filters
    pretrained.load(SMALL)  # cached: no second request
    assert len(server.requests) == 1
    # The codec models come through the same registry.
    low = codec.models()[0]
    assert codec.load(low).tables.fingerprint() == pretrained.info(f"codec-{low}")["tables_crc32"]
    assert server.requests[-1] == f"/codec-{low}.weights.h5"


def test_a_tampered_download_is_removed_and_never_loaded(repository, monkeypatch):
    served, server, cache = repository
    tampered = bytearray((WEIGHTS / f"{SMALL}.weights.h5").read_bytes())
    tampered[-100] ^= 0xFF
    (served / f"{SMALL}.weights.h5").write_bytes(bytes(tampered))
    loaded = []
    import keras

    monkeypatch.setattr(keras.Model, "load_weights", lambda self, path, **kw: loaded.append(path))
    with pytest.raises(
        pretrained.PretrainedError, match="does not match its description.*removed and not loaded"
    ):
        pretrained.load(SMALL)
    assert loaded == [] and not (cache / f"{SMALL}.weights.h5").exists()


def test_offline_gives_a_clear_error(repository, monkeypatch):
    # a port with nothing listening: what an unreachable repository looks like
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}"
    monkeypatch.setenv("CAE_WEIGHTS_URL", closed)
    with pytest.raises(
        pretrained.PretrainedError, match=r"could not download .*Are you offline\?.*CAE_WEIGHTS_DIR"
    ):
        pretrained.load(SMALL)
    with pytest.raises(codec.CodecError, match="could not download"):
        codec.load(codec.models()[0])


def test_a_missing_file_on_the_server_is_reported(repository):
    with pytest.raises(
        pretrained.PretrainedError, match=rf"could not download {SMALL}.weights.h5.*404"
    ):
        pretrained.load(SMALL)


def test_a_bad_weights_url_is_refused_where_it_is_read(monkeypatch):
    monkeypatch.setenv("CAE_WEIGHTS_URL", "ftp://example.org/weights")
    with pytest.raises(
        config.SettingsError, match="CAE_WEIGHTS_URL='ftp://example.org/weights' is not an http"
    ):
        config.get_settings()
