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

:func:`compress` and :func:`decompress` also accept a :class:`Codec` object directly.
"""

from __future__ import annotations

import math
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
    "roundtrip",
    "bit_budget",
    "rate_and_quality",
]

#: Bits a stored payload may fall short of its symbols' information content: the range coder's final
#: word, of which a .cae file may drop up to 3 zero bytes.
_CODER_SLACK_BITS = 64
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

    def analyse(self, image: np.ndarray) -> np.ndarray:
        """Latent (h, w, C) float32 of an (H, W, 3) uint8 image, padded at the edges to multiples of 8.

        The transforms run through Keras's compiled ``predict_on_batch`` (4x faster than eager calls
        on small images); encoder and decoder always take this same path.
        """
        from .model import STRIDE

        h, w = image.shape[:2]
        padded = np.pad(image, ((0, -h % STRIDE), (0, -w % STRIDE), (0, 0)), mode="edge")
        x = padded[None].astype(np.float32) / 255.0
        return np.asarray(self.model.analysis.predict_on_batch(x), dtype=np.float32)[0]

    def synthesise(self, latent: np.ndarray, height: int, width: int) -> np.ndarray:
        """(height, width, 3) uint8 image from a latent (h, w, C): synthesis, crop, round, clip."""
        x_hat = np.asarray(self.model.synthesis.predict_on_batch(latent[None]), dtype=np.float32)[
            0, :height, :width
        ]
        return to_uint8(x_hat)


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
    try:
        # an unreadable description was listed as {}: reading it again raises the error that says why
        meta = shipped[name] or pretrained.info(PREFIX + name, weights_dir)
        spec = meta["model"]
        missing = [k for k in ("lmbda", "channels", "latent_channels") if k not in spec]
        if missing:
            raise KeyError(f"model.{missing[0]}")
    except (KeyError, TypeError) as exc:
        raise CodecError(
            f"the description of codec model {name!r} is damaged ({exc!r}); restore it from the repository."
        ) from exc
    except pretrained.PretrainedError as exc:
        raise CodecError(str(exc)) from exc
    try:
        weights = pretrained.weights_file(PREFIX + name, weights_dir)
    except pretrained.PretrainedError as exc:
        raise CodecError(str(exc)) from exc
    from .model import build_codec_model

    model = build_codec_model(
        spec["lmbda"],
        spec["channels"],
        spec["latent_channels"],
        spec.get("table_size", 256),
        dtype="float32",
    )
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
    image = _check_image(image)
    codec = get(model, weights_dir)
    k = coder.quantize_latent(codec.analyse(image), codec.tables)
    return _pack(codec, k, image.shape[0], image.shape[1])


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
    header, payload = fileformat.parse(data)
    codec = _decoder(header, model, weights_dir)
    fileformat.verify(header, payload, codec.tables.fingerprint())
    from .model import STRIDE

    h, w = -(-header.height // STRIDE), -(-header.width // STRIDE)
    needed = h * w * codec.tables.min_bits_per_position()
    if not payload or 8 * len(payload) + _CODER_SLACK_BITS < needed:
        raise CodecError(
            f"damaged or forged file: with model {codec.name!r} a {header.height} x {header.width} image "
            f"needs a payload of at least {max(needed - _CODER_SLACK_BITS, 1) / 8:,.0f} bytes, the file holds "
            f"{len(payload)}. It was not decoded."
        )
    k = coder.decode(fileformat.words(payload), codec.tables, h * w)
    return codec.synthesise(coder.dequantize(k, codec.tables, h, w), header.height, header.width)


# ------------------------------------------------------------------------------------- measuring


def roundtrip(codec, images):
    """Compress and decompress each image through a complete .cae file, as a user would, one at a time.

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
    file_bytes, payload_bytes, decoded = [], [], []
    for image in np.asarray(images):
        data = compress(image, codec)
        payload_bytes.append(len(fileformat.parse(data)[1]))
        file_bytes.append(len(data))
        decoded.append(decompress(data, codec))
    return Encoded(
        np.stack(decoded).astype(np.float32) / 255.0,
        np.asarray(file_bytes, np.int64),
        np.asarray(payload_bytes, np.int64),
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
    rows = []
    for image in np.asarray(images):
        image = _check_image(image)
        y = codec.analyse(image)
        k = coder.quantize_latent(y, codec.tables)
        y_hat = coder.dequantize(k, codec.tables, y.shape[0], y.shape[1])
        estimate = float(keras.ops.convert_to_numpy(codec.model.prior.bits(y_hat[None]))[0])
        # the file compress() writes, without analysing twice
        data = _pack(codec, k, image.shape[0], image.shape[1])
        payload = fileformat.parse(data)[1]
        rows.append((estimate, coder.table_bits(k, codec.tables), 8 * len(payload), 8 * len(data)))
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
