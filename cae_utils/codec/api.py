"""Compress and decompress images with a codec model; the shipped codec models; exporting a run.

A :class:`Codec` is a name, a trained :class:`~cae_utils.codec.model.CodecModel` and its integer
tables. Where one comes from:

- **shipped** models, kept by the course's one registry (:mod:`cae_utils.pretrained`) as
  ``codec-NAME.weights.h5`` (weights and integer tables), ``codec-NAME.json`` (architecture, nominal bits
  per pixel, test-set scores, how it was trained) and ``codec-NAME.log.csv`` (the training log). A
  ``.cae`` file names ``NAME`` by its number in :data:`~cae_utils.codec.fileformat.MODEL_NUMBERS`.
- **registered** ones: :func:`register` makes any codec (for example a tiny random-initialised model in
  a test) usable by name with :func:`compress`, :func:`decompress` and the command line, until
  :func:`unregister`. Their files name no model (model number 0): pass the model to decompress them.

:func:`compress` and :func:`decompress` also accept a :class:`Codec` object directly. :func:`compress_many` and
:func:`decompress_many` do the same for many images, running the networks on batches of images of one size;
the one-image functions are their one-element case.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np

from ..data import to_uint8
from . import coder, fileformat
from .fileformat import CodecError

__all__ = [
    "Codec",
    "models",
    "training_log",
    "get",
    "load",
    "register",
    "unregister",
    "compress",
    "decompress",
    "compress_many",
    "decompress_many",
    "roundtrip",
    "bit_budget",
    "rate_and_quality",
]

#: Bits a stored payload may fall short of its symbols' information content: the range coder's final
#: word, of which a .cae file may drop up to 3 zero bytes.
_CODER_SLACK_BITS = 64
#: How many images go through a transform at once, at most (:func:`compress_many`, :func:`decompress_many`).
BATCH_SIZE = 256
#: And how many pixels at most (256 images of 64 x 64): a larger image goes alone.
_BATCH_PIXELS = 2**20
PREFIX = "codec-"  # shipped codec NAME is the registry's codec-NAME
_REGISTERED: dict[str, Codec] = {}
_LOADED: dict[tuple[str, str], Codec] = {}


@dataclass(eq=False)
class Codec:
    """A usable codec: ``name`` (a shipped one's number names it in .cae files), the Keras ``model``, its ``tables``.

    Attributes:
        nominal_bpp: the rate it was exported at (mean bits per pixel of whole .cae files on the CIFAR-10
            test set), None when unknown (an untrained or registered model).
        info: the shipped description (``codec-NAME.json``), empty otherwise.
    """

    name: str
    model: object
    tables: coder.Tables
    nominal_bpp: float | None = None
    info: dict = field(default_factory=dict)

    @classmethod
    def from_model(
        cls, name: str, model, nominal_bpp: float | None = None, info: dict | None = None
    ) -> Codec:
        """Wrap a model whose tables are stored in it (:func:`cae_utils.codec.model.update_tables`).

        Raises:
            CodecError: the name is not a valid model name, or the model has no valid tables.
        """
        from .model import tables_of

        fileformat.check_model_name(name)
        return cls(name, model, tables_of(model).check(), nominal_bpp, dict(info or {}))

    @property
    def latent_channels(self) -> int:
        return self.tables.channels

    def analyse(self, images: np.ndarray) -> np.ndarray:
        """Latents (B, h, w, C) float32 of uint8 images (B, H, W, 3) of one size, padded at the edges to
        multiples of 8; one image (H, W, 3) gives one latent (h, w, C).

        The transforms run through Keras's compiled ``predict_on_batch`` (4x faster than eager calls
        on small images); encoder and decoder always take this same path.
        """
        from .model import STRIDE

        images = np.asarray(images)
        if images.ndim == 3:
            return self.analyse(images[None])[0]
        h, w = images.shape[1:3]
        padded = np.pad(images, ((0, 0), (0, -h % STRIDE), (0, -w % STRIDE), (0, 0)), mode="edge")
        y = self.model.analysis.predict_on_batch(padded.astype(np.float32) / 255.0)
        return np.asarray(y, dtype=np.float32)

    def synthesise(self, latents: np.ndarray, height: int, width: int) -> np.ndarray:
        """(B, height, width, 3) uint8 images from latents (B, h, w, C): synthesis, crop, round, clip;
        one latent (h, w, C) gives one image."""
        latents = np.asarray(latents, dtype=np.float32)
        if latents.ndim == 3:
            return self.synthesise(latents[None], height, width)[0]
        x_hat = np.asarray(self.model.synthesis.predict_on_batch(latents), dtype=np.float32)
        return to_uint8(x_hat[:, :height, :width])


# ------------------------------------------------------------------------------------ which models


def _shipped(weights_dir=None) -> dict[str, dict]:
    """{name: description} of the shipped codec models; {} for one whose description cannot be read."""
    from .. import pretrained

    found = pretrained.descriptions(weights_dir, kind="codec")
    return {name[len(PREFIX) :]: meta for name, meta in found.items()}


def models(weights_dir=None, with_rates: bool = False):
    """Names of the codec models available to :func:`compress`.

    The shipped ones come first, lowest nominal rate first; then the registered ones, in registration
    order. With nothing shipped or registered the list is empty.

    Args:
        weights_dir: a folder of exported models to use instead of the shipped ones.
        with_rates: return ``(name, nominal_bpp)`` pairs instead of names (None where unknown).
    """
    rates = {
        name: _rate(meta) for name, meta in _shipped(weights_dir).items() if name not in _REGISTERED
    }
    pairs = sorted(
        rates.items(), key=lambda item: (math.inf if item[1] is None else item[1], item[0])
    )
    pairs += [(name, codec.nominal_bpp) for name, codec in _REGISTERED.items()]
    return pairs if with_rates else [name for name, _ in pairs]


def training_log(name: str, weights_dir=None):
    """The training log of shipped codec model ``name`` (``codec-NAME.log.csv``), one row per epoch.

    Returns:
        A pandas DataFrame with the columns of ``rate.csv`` (``epoch`` from 0, ``loss``, ``bpp``, ``mse``,
        ``psnr`` and their ``val_`` twins) and ``lr``, ``seconds``.

    Raises:
        CodecError: no shipped model of that name has a log.
    """
    from .. import pretrained

    if name not in _shipped(weights_dir):
        raise CodecError(
            f"no training log for codec model {name!r}: shipped models are {_names(weights_dir)}."
        )
    try:
        return pretrained.training_log(PREFIX + name, weights_dir)
    except pretrained.PretrainedError as exc:
        raise CodecError(str(exc)) from exc


def _rate(meta: dict) -> float | None:
    """The nominal bits per pixel in a shipped description, None when missing or not a number."""
    value = meta.get("nominal_bpp")
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _names(weights_dir=None) -> str:
    """The usable model names for an error message."""
    return ", ".join(models(weights_dir)) or "(none available)"


def register(codec: Codec) -> Codec:
    """Make ``codec`` usable by its name (it hides a shipped model of the same name); returns it."""
    fileformat.check_model_name(codec.name)
    _REGISTERED[codec.name] = codec
    return codec


def unregister(name: str) -> None:
    """Forget a codec registered under ``name`` (no error when there is none)."""
    _REGISTERED.pop(name, None)


def load(name: str, weights_dir=None) -> Codec:
    """Build shipped codec model ``name`` from ``codec-NAME.json`` and ``codec-NAME.weights.h5``.

    The transforms are built in float32 whatever the global dtype policy, so decoded pixels do not
    depend on it. Loaded models are cached.

    Raises:
        CodecError: no such model, or its files are missing, damaged or do not match.
    """
    from .. import pretrained

    key = (name, str(weights_dir))
    if key in _LOADED:
        return _LOADED[key]
    shipped = _shipped(weights_dir)
    if name not in shipped:
        raise CodecError(f"unknown codec model {name!r}: choose one of {_names(weights_dir)}.")
    from ..train import TrainingError
    from .model import build_codec_model
    from .training import CodecRunConfig

    try:
        # an unreadable description was listed as {}: reading it again raises the error that says why
        meta = shipped[name] or pretrained.info(PREFIX + name, weights_dir)
        spec = meta["model"]
        missing = [k for k in ("lmbda", "channels", "latent_channels") if k not in spec]
        if missing:
            raise KeyError(f"model.{missing[0]}")
        # the training settings' range checks, for the numbers that size the model
        CodecRunConfig(
            lmbda=spec["lmbda"],
            channels=spec["channels"],
            latent_channels=spec["latent_channels"],
            table_size=spec.get("table_size", 256),
        )
    except (KeyError, TypeError, TrainingError) as exc:
        raise CodecError(
            f"the description of codec model {name!r} is damaged ({exc}); restore it from the repository."
        ) from exc
    except pretrained.PretrainedError as exc:
        raise CodecError(str(exc)) from exc
    try:
        weights = pretrained.weights_file(PREFIX + name, weights_dir)
    except pretrained.PretrainedError as exc:
        raise CodecError(str(exc)) from exc
    try:
        model = build_codec_model(
            spec["lmbda"],
            spec["channels"],
            spec["latent_channels"],
            spec.get("table_size", 256),
            dtype="float32",
        )
    except ValueError as exc:  # the builder's own limits (a table of at least a few symbols)
        raise CodecError(
            f"the description of codec model {name!r} is damaged ({exc}); restore it from the repository."
        ) from exc
    try:
        model.load_weights(weights)
    # Keras raises ValueError or OSError variants for mismatched or damaged files
    except Exception as exc:
        raise CodecError(
            f"{weights} does not fit the model {PREFIX}{name}.json describes ({type(exc).__name__}: {exc})."
        ) from exc
    codec = Codec.from_model(name, model, _rate(meta), meta)
    _LOADED[key] = codec
    return codec


def get(model=None, weights_dir=None) -> Codec:
    """The codec for ``model``: a :class:`Codec` as is, a registered or shipped name, or None: the first model.

    Raises:
        CodecError: the name is unknown, or None was given and no model is available.
    """
    if isinstance(model, Codec):
        return model
    if model is None:
        names = models(weights_dir)
        if not names:
            raise CodecError(
                "no codec model is available: none is shipped yet. Train one "
                "(python -m cae_utils.codec train --lmbda 0.01 --epochs N --out runs/codec-NAME) and export it "
                "(python -m cae_utils.maintainer export-codec runs/codec-NAME NAME)."
            )
        model = names[0]
    if not isinstance(model, str):
        raise CodecError(f"model must be a codec name or a Codec, got {type(model).__name__}.")
    if model in _REGISTERED:
        return _REGISTERED[model]
    return load(model, weights_dir)  # a loaded model comes from its cache, no file read


# --------------------------------------------------------------------------- compress / decompress


def _check_image(image) -> np.ndarray:
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3 or 0 in image.shape:
        raise CodecError(
            f"image must be an (H, W, 3) uint8 RGB array, got {image.dtype} of shape {image.shape}."
        )
    fileformat.check_image_size(image.shape[0], image.shape[1])
    return image


@contextmanager
def _named(name: str) -> Iterator[None]:
    """Put ``name: `` before the message of a CodecError raised inside (nothing when ``name`` is empty)."""
    try:
        yield
    except CodecError as exc:
        if not name:
            raise
        raise CodecError(f"{name}: {exc}") from exc


def _items(items, names, what: str, batch_size) -> tuple[list, list[str]]:
    """``items`` as a list and the names errors give them (``what 0``, ``what 1``, ... by default);
    ``batch_size`` checked."""
    if (
        isinstance(batch_size, bool)
        or not isinstance(batch_size, (int, np.integer))
        or batch_size < 1
    ):
        raise CodecError(f"batch_size must be a whole number >= 1, got {batch_size!r}.")
    if isinstance(items, (bytes, bytearray, str)) or getattr(items, "ndim", 4) != 4:
        got = (
            f"an array of shape {items.shape}" if hasattr(items, "shape") else type(items).__name__
        )
        raise CodecError(f"{what}s must be a list of {what}s or an (N, H, W, 3) array, got {got}.")
    items = list(items)
    names = [f"{what} {i}" for i in range(len(items))] if names is None else list(names)
    if len(names) != len(items):
        raise CodecError(f"{len(names)} names for {len(items)} {what}s.")
    return items, names


def _batches(keys: list[tuple], batch_size) -> Iterator[list[int]]:
    """The indices of the items that share a key (whose last two entries are a height and a width), in
    order, in lists of at most ``batch_size`` items and :data:`_BATCH_PIXELS` pixels (or one item)."""
    groups: dict[tuple, list[int]] = {}
    for i, key in enumerate(keys):
        groups.setdefault(key, []).append(i)
    for key, indices in groups.items():
        size = max(1, min(batch_size, _BATCH_PIXELS // (key[-2] * key[-1])))
        for start in range(0, len(indices), size):
            yield indices[start : start + size]


def _latents(codec: Codec, images: list, batch_size) -> Iterator[tuple[int, np.ndarray]]:
    """``(index, latent)`` of each checked image; the analysis runs on batches of images of one size."""
    for batch in _batches([image.shape[:2] for image in images], batch_size):
        yield from zip(batch, codec.analyse(np.stack([images[i] for i in batch])))


def compress(image, model=None, weights_dir=None) -> bytes:
    """Compress one image into the bytes of a complete .cae file.

    Args:
        image: (H, W, 3) uint8 RGB array of any size up to 65535 pixels a side and 2**24 pixels in all
            (4096 x 4096).
        model: a codec name (see :func:`models`), a :class:`Codec`, or None for the first of :func:`models`.
        weights_dir: a folder of exported models to use instead of the shipped ones.

    Raises:
        CodecError: bad image, unknown model, or no model available.
    """
    return compress_many([image], model, weights_dir, names=[""])[0]


def compress_many(
    images, model=None, weights_dir=None, batch_size=BATCH_SIZE, names=None
) -> list[bytes]:
    """Compress images into one .cae file each (what :func:`compress` writes), with one network call per batch.

    Images of one size go through the analysis transform together, at most ``batch_size`` of them and
    2**20 pixels at a time (a larger image alone); each is then range-coded into its own file. A batched
    network call may round floats differently from a one-image call, so a file's bytes may (rarely: a
    latent rounded the other way) depend on the batch it was made in; every file decodes either way.

    Args:
        images: a uint8 array (N, H, W, 3), or a list of (H, W, 3) uint8 arrays of any sizes (as for
            :func:`compress`).
        model, weights_dir: as for :func:`compress`.
        batch_size: the most images to send through the network at once.
        names: what an error calls each image (default ``image 0``, ``image 1``, ...).

    Returns:
        The files' bytes, in the order of ``images``.

    Raises:
        CodecError: a bad image (the message names it), a bad ``batch_size``, unknown model, or no model available.
    """
    images, names = _items(images, names, "image", batch_size)
    for i, name in enumerate(names):
        with _named(name):
            images[i] = _check_image(images[i])
    codec = get(model, weights_dir)
    files = [b""] * len(images)
    for i, y in _latents(codec, images, batch_size):
        files[i] = _pack(codec, coder.quantize_latent(y, codec.tables), *images[i].shape[:2])
    return files


def _pack(codec, k, height: int, width: int) -> bytes:
    """The bytes of the .cae file that holds ``k``, the integer latent of a ``height`` x ``width`` image."""
    payload = coder.encode(k, codec.tables)
    header = fileformat.Header(codec.name, height, width)
    return fileformat.pack(header, payload, codec.tables.fingerprint())


def _decoder(header, model, weights_dir) -> Codec:
    """The codec that decodes a file: ``model`` when given (it must be the one the file names), else the file's."""
    if model is None:
        if header.model is None:
            raise CodecError(
                "the file does not name its model (it was written with a registered or user's own model): "
                "pass that model, decompress(data, model=...) in Python or --model NAME on the command line."
            )
        return get(header.model, weights_dir)
    codec = get(model, weights_dir)
    if header.model is not None and codec.name != header.model:
        raise CodecError(
            f"the file was compressed with model {header.model!r}, not {codec.name!r}."
        )
    return codec


def _checked(data: bytes, model, weights_dir) -> tuple[Codec, fileformat.Header, bytes]:
    """The codec, header and payload of a .cae file, parsed and verified, its payload long enough for its size."""
    from .model import STRIDE

    header, payload = fileformat.parse(data)
    codec = _decoder(header, model, weights_dir)
    fileformat.verify(header, payload, codec.tables.fingerprint())
    h, w = -(-header.height // STRIDE), -(-header.width // STRIDE)
    needed = h * w * codec.tables.min_bits_per_position()
    if not payload or 8 * len(payload) + _CODER_SLACK_BITS < needed:
        raise CodecError(
            f"damaged or forged file: with model {codec.name!r} a {header.height} x {header.width} image "
            f"needs a payload of at least {max(needed - _CODER_SLACK_BITS, 1) / 8:,.0f} bytes, the file holds "
            f"{len(payload)}. It was not decoded."
        )
    return codec, header, payload


def decompress(data: bytes, model=None, weights_dir=None) -> np.ndarray:
    """Decode the bytes of a .cae file into an (H, W, 3) uint8 image.

    Args:
        data: the file's bytes.
        model: None to use the model the file names (registered or shipped), or a codec name or
            :class:`Codec` (which must be the file's model when it names one). A file written with a
            model outside :data:`~cae_utils.codec.fileformat.MODEL_NUMBERS` names none: pass its model.
        weights_dir: a folder of exported models to use instead of the shipped ones.

    Raises:
        CodecError: the data is not an undamaged .cae file (see :func:`cae_utils.codec.fileformat.parse`),
            its model is unknown or not given, it was made with another model or another version of it,
            or its payload is too short for the image size its header states (checked before anything is
            allocated, so a small file cannot make the decoder use much memory or time).
    """
    return decompress_many([data], model, weights_dir, names=[""])[0]


def decompress_many(
    files, model=None, weights_dir=None, batch_size=BATCH_SIZE, names=None
) -> list[np.ndarray]:
    """Decode .cae files into (H, W, 3) uint8 images, with one network call per batch.

    Every file is parsed and verified first, with all the checks of :func:`decompress`, so a bad file is
    refused before anything is decoded. The files of one model and image size are then range-decoded and
    go through the synthesis transform together, at most ``batch_size`` of them and 2**20 pixels at a time.
    A batched network call may round floats differently from a one-image call, so a pixel can differ by
    one level from the same file decoded alone.

    Args:
        files: the files' bytes.
        model, weights_dir: as for :func:`decompress`; a model given must be the model of every file.
        batch_size: the most images to send through the network at once.
        names: what an error calls each file (default ``file 0``, ``file 1``, ...).

    Returns:
        The images, in the order of ``files``.

    Raises:
        CodecError: as :func:`decompress`, for the first bad file, which the message names; or a bad
            ``batch_size``.
    """
    files, names = _items(files, names, "file", batch_size)
    checked = []
    for data, name in zip(files, names):
        with _named(name):
            checked.append(_checked(data, model, weights_dir))
    from .model import STRIDE

    images: list = [None] * len(files)
    keys = [(codec, header.height, header.width) for codec, header, _ in checked]
    for batch in _batches(keys, batch_size):
        codec, height, width = keys[batch[0]]
        h, w = -(-height // STRIDE), -(-width // STRIDE)
        latents = []
        for i in batch:
            with _named(names[i]):
                k = coder.decode(fileformat.words(checked[i][2]), codec.tables, h * w)
            latents.append(coder.dequantize(k, codec.tables, h, w))
        for i, image in zip(batch, codec.synthesise(np.stack(latents), height, width)):
            images[i] = image
    return images


# ------------------------------------------------------------------------------------- measuring


def roundtrip(codec, images):
    """Compress and decompress the images through complete .cae files, as a user would, in batches.

    Args:
        codec: a :class:`Codec` or a model name.
        images: uint8 images (N, H, W, 3).

    Returns:
        :class:`cae_utils.baselines.Encoded`: the decoded images as float32 in [0, 1], each file's size
        in bytes (``n_bytes``) and its payload's size (``n_bytes_no_header``: the file without its header
        and check, 8 bytes on a 32 x 32 image).
    """
    from ..baselines import Encoded

    codec = get(codec)
    files = compress_many(images, codec)
    decoded = decompress_many(files, codec)
    return Encoded(
        np.stack(decoded).astype(np.float32) / 255.0,
        np.asarray([len(data) for data in files], np.int64),
        np.asarray([len(fileformat.parse(data)[1]) for data in files], np.int64),
    )


def bit_budget(codec, images):
    """Where each image's bits go, from the entropy model's estimate to the file on disk.

    Args:
        codec: a :class:`Codec` or a model name.
        images: uint8 images (N, H, W, 3).

    Returns:
        A pandas DataFrame, one row per image, in bits: ``estimate`` (the trained density at the rounded
        latent: what the training loss counts), ``tables`` (the ideal size under the stored integer tables,
        escape codes included), ``payload`` (the range coder's output as the file stores it) and ``file``
        (the whole .cae file).
    """
    import keras
    import pandas as pd

    codec = get(codec)
    images = [_check_image(image) for image in np.asarray(images)]
    rows = [()] * len(images)
    for i, y in _latents(codec, images, BATCH_SIZE):
        k = coder.quantize_latent(y, codec.tables)
        y_hat = coder.dequantize(k, codec.tables, y.shape[0], y.shape[1])
        estimate = float(keras.ops.convert_to_numpy(codec.model.prior.bits(y_hat[None]))[0])
        # the file compress_many() writes, without analysing twice
        data = _pack(codec, k, *images[i].shape[:2])
        payload = fileformat.parse(data)[1]
        rows[i] = (estimate, coder.table_bits(k, codec.tables), 8 * len(payload), 8 * len(data))
    return pd.DataFrame(rows, columns=["estimate", "tables", "payload", "file"])


def rate_and_quality(codec, images) -> dict:
    """Real rate and quality of ``codec`` (a :class:`Codec` or a name) on uint8 images (N, H, W, 3), through .cae files.

    Returns:
        ``{"images", "bpp" (whole files), "payload_bpp", "mse" (0-255 scale), "psnr" (mean per image,
        dB), "pooled_psnr"}``.
    """
    from ..metrics import payload_bpp, summarize

    images = np.asarray(images)
    encoded = roundtrip(codec, images)
    scores = summarize(images.astype(np.float32) / 255.0, encoded.reconstructions, with_ssim=False)
    size = images.shape[1:3]
    return {
        "images": int(len(images)),
        "bpp": round(float(np.mean(payload_bpp(encoded.n_bytes, size))), 4),
        "payload_bpp": round(float(np.mean(payload_bpp(encoded.n_bytes_no_header, size))), 4),
        "mse": round(scores["mse"] * 255.0**2, 3),
        "psnr": round(scores["psnr"], 3),
        "pooled_psnr": round(scores["pooled_psnr"], 3),
    }
