"""Classical baselines an autoencoder must beat: PCA, JPEG and WebP, with honest sizes in bytes.

- **PCA** (principal component analysis) is the best *linear* autoencoder: the encoder projects the
  centred image onto the ``d`` directions of largest variance of the training set, the decoder maps
  the ``d`` coefficients back. :func:`fit_pca` fits it on the training split; :func:`pca_reconstruct`
  codes images with float32 coefficients (4 bytes each) or quantised to ``bits`` bits each (8 bits:
  ``d`` bytes per image, no entropy coding). The quantiser is uniform per component, over the range
  of that component's coefficients on the training set; those ranges, like the mean image and the
  components, are part of the shared model, not of each image's payload, and are not counted.
- **JPEG** (Pillow/libjpeg, baseline, 4:2:0 chroma subsampling, optimised Huffman tables) and **WebP**
  (Pillow/libwebp, lossy, ``method=6``, the slowest and best): :func:`jpeg` and :func:`webp` encode
  each image to a real file in memory, decode it again, and report the file's exact size, headers
  included. For JPEG they also report the size without the header (see :func:`jpeg`), because on a
  32x32 image the header weighs as much as the picture.

Every coder returns an :class:`Encoded`: float32 reconstructions in [0, 1] (the course's convention)
and sizes in bytes per image. :func:`rate_quality_table` sweeps settings and scores them with
:mod:`cae_utils.metrics`, for the evaluation notebook.
"""

from __future__ import annotations

import io
import numbers
from dataclasses import dataclass, field
from functools import partial

import numpy as np

from . import config
from .data import to_uint8

__all__ = [
    "Encoded",
    "PCA",
    "fit_pca",
    "pca_truncate",
    "pca_encode",
    "pca_decode",
    "pca_reconstruct",
    "quantize",
    "dequantize",
    "autoencoder_reconstruct",
    "jpeg",
    "webp",
    "closest_size",
    "rate_quality_table",
]


@dataclass(frozen=True, eq=False)
class Encoded:
    """What a coder returns for N images.

    Attributes:
        reconstructions: the decoded images, (N, H, W, C) float32 in [0, 1].
        n_bytes: the exact size of each image's code in bytes, an int64 array of N values.
        n_bytes_no_header: the size of each code without its file header: for JPEG the entropy-coded
            data only (see :func:`jpeg`), for the course's ``.cae`` files the payload
            (:func:`cae_utils.codec.roundtrip`); None for the other coders.
    """

    reconstructions: np.ndarray = field(repr=False)
    n_bytes: np.ndarray = field(repr=False)
    n_bytes_no_header: np.ndarray | None = field(default=None, repr=False)

    def __repr__(self) -> str:
        return (
            f"Encoded({len(self.n_bytes)} images, {self.n_bytes.mean():.1f} bytes each on average)"
        )


@dataclass(frozen=True, eq=False)
class PCA:
    """A PCA model fitted by :func:`fit_pca`. D = H * W * C pixel values, d components.

    Attributes:
        mean: the mean training image, flattened, (D,) float64.
        components: orthonormal rows, by decreasing variance, (d, D) float64.
        variances: the variance of the training coefficients along each component, (d,).
        coef_min, coef_max: the range of each component's training coefficients, (d,): the quantiser's range.
        image_shape: (H, W, C) of the images.
    """

    mean: np.ndarray = field(repr=False)
    components: np.ndarray = field(repr=False)
    variances: np.ndarray = field(repr=False)
    coef_min: np.ndarray = field(repr=False)
    coef_max: np.ndarray = field(repr=False)
    image_shape: tuple

    @property
    def n_components(self) -> int:
        return len(self.components)

    def __repr__(self) -> str:
        return f"PCA({self.n_components} components, image_shape={self.image_shape})"


# --------------------------------------------------------------------------------------------------
# Input checks
# --------------------------------------------------------------------------------------------------


def _images(name: str, x, channels: int | None = None) -> np.ndarray:
    """Check a batch of images (N, H, W, C): uint8, or floats in [0, 1]. Returns the array unchanged."""
    x = np.asarray(x)
    if x.ndim != 4 or 0 in x.shape[1:] or (channels is not None and x.shape[-1] != channels):
        want = f"(N, H, W, {channels})" if channels else "(N, H, W, C)"
        raise ValueError(f"{name} must be a batch of images {want}, got shape {x.shape}.")
    if len(x) == 0:
        raise ValueError(f"{name} holds no images.")
    if x.dtype == np.uint8:
        return x
    if not np.issubdtype(x.dtype, np.floating):
        raise ValueError(f"{name} must be uint8 (0-255) or floats in [0, 1], got dtype {x.dtype}.")
    low, high = np.min(x), np.max(x)
    if not (np.isfinite(low) and np.isfinite(high) and low >= 0.0 and high <= 1.0):
        raise ValueError(
            f"{name} must hold floats in [0, 1] (got values from {low} to {high}); scale 8-bit images by 1/255."
        )
    return x


def _to_float(x: np.ndarray) -> np.ndarray:
    return x.astype(np.float32) / 255.0 if x.dtype == np.uint8 else x


def _int_in(name: str, value, low: int, high: int) -> int:
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Integral)
        or not low <= value <= high
    ):
        raise ValueError(f"{name} must be a whole number from {low} to {high}, got {value!r}.")
    return int(value)


def _bits(bits) -> int | None:
    return None if bits is None else _int_in("bits", bits, 1, 16)


# --------------------------------------------------------------------------------------------------
# PCA
# --------------------------------------------------------------------------------------------------


def _centred_chunks(x: np.ndarray, mean: np.ndarray, chunk_size: int):
    """Yield (start, centred float64 rows) of ``x`` flattened to (N, D), ``chunk_size`` images at a time."""
    for start in range(0, len(x), chunk_size):
        rows = _to_float(x[start : start + chunk_size]).reshape(-1, mean.size)
        yield start, rows.astype(np.float64) - mean


def fit_pca(x_train, n_components: int, chunk_size: int = 4096) -> PCA:
    """Fit PCA with ``n_components`` components on training images.

    Method: the D x D covariance matrix is accumulated in float64 from chunks of centred images
    (``sum X_c^T X_c``, so memory stays at the covariance plus one chunk: about 200 MB for
    CIFAR-10's D = 3072), then diagonalised exactly with ``np.linalg.eigh``. Three passes over the data:
    the mean, the covariance, and the coefficients' range (for the quantiser). Signs are fixed so that
    each component's largest entry is positive, so fits are reproducible.

    Args:
        x_train: training images (N, H, W, C), uint8 or floats in [0, 1].
        n_components: d, from 1 to D = H * W * C.
        chunk_size: images per chunk.

    Returns:
        A :class:`PCA`.
    """
    x_train = _images("x_train", x_train)
    dim = int(np.prod(x_train.shape[1:]))
    d = _int_in("n_components", n_components, 1, dim)
    chunk_size = _int_in("chunk_size", chunk_size, 1, 2**31)
    mean = np.zeros(dim)
    for start in range(0, len(x_train), chunk_size):
        mean += (
            _to_float(x_train[start : start + chunk_size])
            .reshape(-1, dim)
            .sum(axis=0, dtype=np.float64)
        )
    mean /= len(x_train)
    covariance = np.zeros((dim, dim))
    for _, rows in _centred_chunks(x_train, mean, chunk_size):
        covariance += rows.T @ rows
    eigenvalues, eigenvectors = np.linalg.eigh(covariance / len(x_train))
    components = eigenvectors[:, ::-1][:, :d].T.copy()
    biggest = np.argmax(np.abs(components), axis=1)
    components *= np.sign(components[np.arange(d), biggest])[:, None]
    coef_min, coef_max = np.full(d, np.inf), np.full(d, -np.inf)
    for _, rows in _centred_chunks(x_train, mean, chunk_size):
        coefs = rows @ components.T
        coef_min, coef_max = (
            np.minimum(coef_min, coefs.min(axis=0)),
            np.maximum(coef_max, coefs.max(axis=0)),
        )
    return PCA(
        mean=mean,
        components=components,
        variances=np.maximum(eigenvalues[::-1][:d], 0.0),
        coef_min=coef_min,
        coef_max=coef_max,
        image_shape=tuple(int(s) for s in x_train.shape[1:]),
    )


def pca_truncate(pca: PCA, n_components: int) -> PCA:
    """The same PCA keeping only its first ``n_components`` components (fit once, compare several d)."""
    d = _int_in("n_components", n_components, 1, pca.n_components)
    return PCA(
        pca.mean,
        pca.components[:d],
        pca.variances[:d],
        pca.coef_min[:d],
        pca.coef_max[:d],
        pca.image_shape,
    )


def _step(low, high, bits: int) -> tuple[np.ndarray, int]:
    """Step of a uniform quantiser over [low, high] with ``2**bits`` levels (1 where low == high)."""
    levels = 2**bits - 1
    span = np.asarray(high, dtype=np.float64) - np.asarray(low, dtype=np.float64)
    return np.where(span > 0, span / levels, 1.0), levels


def quantize(values, low, high, bits: int) -> np.ndarray:
    """Uniform scalar quantiser: map each value to one of ``2**bits`` evenly spaced levels.

    Args:
        values: an array (N, d) of real values.
        low, high: the range of each of the d columns (arrays of d values, or scalars); values outside
            are clipped to it.
        bits: bits per value, 1 to 16.

    Returns:
        The level indices 0 .. 2**bits - 1, uint8 up to 8 bits, else uint16. ``bits`` bits per value.
    """
    bits = _int_in("bits", bits, 1, 16)
    step, levels = _step(low, high, bits)
    codes = np.clip(np.rint((np.asarray(values, dtype=np.float64) - low) / step), 0, levels)
    return codes.astype(np.uint8 if bits <= 8 else np.uint16)


def dequantize(codes, low, high, bits: int) -> np.ndarray:
    """Map level indices from :func:`quantize` (same ``low``, ``high``, ``bits``) back to float64 values."""
    bits = _int_in("bits", bits, 1, 16)
    step, levels = _step(low, high, bits)
    codes = np.asarray(codes)
    if codes.min(initial=0) < 0 or codes.max(initial=0) > levels:
        raise ValueError(f"{bits}-bit codes must lie in 0..{levels}.")
    return low + codes.astype(np.float64) * step


def pca_encode(pca: PCA, x, bits: int | None = None) -> np.ndarray:
    """Project images onto the components.

    Args:
        pca: a fitted :class:`PCA`.
        x: images (N, H, W, C) of the fitted shape, uint8 or floats in [0, 1].
        bits: None for float32 coefficients; else 1-16 bits per coefficient: each coefficient is clipped
            to its component's training range and rounded to one of ``2**bits`` evenly spaced levels.

    Returns:
        (N, d) coefficients: float32, or the integer level indices (uint8 up to 8 bits, else uint16).
    """
    x = _images("x", x)
    bits = _bits(bits)
    if x.shape[1:] != pca.image_shape:
        raise ValueError(
            f"x has images of shape {x.shape[1:]}, but the PCA was fitted on {pca.image_shape}."
        )
    coefs = np.concatenate(
        [rows @ pca.components.T for _, rows in _centred_chunks(x, pca.mean, 1024)]
    )
    if bits is None:
        return coefs.astype(np.float32)
    return quantize(coefs, pca.coef_min, pca.coef_max, bits)


def pca_decode(pca: PCA, codes, bits: int | None = None) -> np.ndarray:
    """Map coefficients (from :func:`pca_encode` with the same ``bits``) back to images.

    Returns:
        (N, H, W, C) float32 images, clipped to [0, 1].
    """
    bits = _bits(bits)
    codes = np.asarray(codes)
    if codes.ndim != 2 or codes.shape[1] != pca.n_components:
        raise ValueError(f"codes must have shape (N, {pca.n_components}), got {codes.shape}.")
    coefs = codes.astype(np.float64)
    if bits is not None:
        coefs = dequantize(codes, pca.coef_min, pca.coef_max, bits)
    images = coefs @ pca.components + pca.mean
    return np.clip(images, 0.0, 1.0).astype(np.float32).reshape((-1, *pca.image_shape))


def pca_reconstruct(pca: PCA, x, bits: int | None = None, batch_size: int = 1000) -> Encoded:
    """Encode and decode images with PCA, and count the payload.

    Args:
        pca: a fitted :class:`PCA` (d components).
        x: images (N, H, W, C), uint8 or floats in [0, 1].
        bits: None for float32 coefficients, else bits per coefficient (see :func:`pca_encode`).
        batch_size: images coded at a time (bounds memory).

    Returns:
        An :class:`Encoded` whose ``n_bytes`` is the payload of each image: ``4 * d`` bytes for float32
        coefficients, ``ceil(d * bits / 8)`` when quantised (``d`` bytes at 8 bits). The mean, the
        components and the quantiser ranges are shared by all images and are not counted.
    """
    x = _images("x", x)
    batch_size = _int_in("batch_size", batch_size, 1, 2**31)
    parts = [
        pca_decode(pca, pca_encode(pca, x[i : i + batch_size], bits), bits)
        for i in range(0, len(x), batch_size)
    ]
    per_image = 4 * pca.n_components if bits is None else -(-pca.n_components * bits // 8)
    return Encoded(np.concatenate(parts), np.full(len(x), per_image, dtype=np.int64))


def autoencoder_reconstruct(
    encoder, decoder, x, bits: int | None = None, fit_x=None, batch_size: int = 500
) -> Encoded:
    """Code images with an autoencoder's latent, as float32 or quantised to ``bits`` bits per value.

    The 8-bit version is the plainest way to store a latent: every value clipped to the range it takes
    on ``fit_x`` (images not in the evaluated set, for example the validation split) and rounded to one
    of 256 levels, one byte per value, with no entropy coding. The ranges are shared by all images, like
    the weights, and are not counted in the payload.

    Args:
        encoder, decoder: Keras models (see :func:`cae_utils.models.build`); the latent may have any shape.
        x: images (N, H, W, C), floats in [0, 1].
        bits: None for float32 latents (4 bytes per value), else 1-16 bits per value.
        fit_x: images whose latents set the quantiser's range; needed when ``bits`` is given.
        batch_size: images per forward pass.

    Returns:
        An :class:`Encoded` whose ``n_bytes`` is ``4 * d`` (float32) or ``ceil(d * bits / 8)`` per image.
    """
    x = _to_float(_images("x", x))
    bits = _bits(bits)

    def latents(images):
        return np.concatenate(
            [
                encoder.predict(images[i : i + batch_size], verbose=0)
                for i in range(0, len(images), batch_size)
            ]
        )

    z = latents(x)
    shape = z.shape[1:]
    z = z.reshape(len(z), -1)
    if bits is not None:
        if fit_x is None:
            raise ValueError(
                "autoencoder_reconstruct needs fit_x (images to fit the quantiser's range) when bits is given."
            )
        z_fit = latents(_to_float(_images("fit_x", fit_x))).reshape(len(fit_x), -1)
        low, high = z_fit.min(axis=0).astype(np.float64), z_fit.max(axis=0).astype(np.float64)
        z = dequantize(quantize(z, low, high, bits), low, high, bits).astype(np.float32)
    z = z.reshape((-1, *shape))
    rec = np.concatenate(
        [decoder.predict(z[i : i + batch_size], verbose=0) for i in range(0, len(z), batch_size)]
    )
    d = int(np.prod(shape))
    per_image = 4 * d if bits is None else -(-d * bits // 8)
    return Encoded(
        np.clip(rec, 0.0, 1.0).astype(np.float32), np.full(len(x), per_image, dtype=np.int64)
    )


# --------------------------------------------------------------------------------------------------
# JPEG and WebP through Pillow
# --------------------------------------------------------------------------------------------------


def _jpeg_header_size(data: bytes) -> int:
    """Bytes of a JPEG file before its entropy-coded data: SOI and every segment up to the end of the first SOS."""
    if data[:2] != b"\xff\xd8":
        raise ValueError("not a JPEG file (no SOI marker).")
    pos = 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            raise ValueError(f"damaged JPEG: expected a marker at byte {pos}.")
        if data[pos + 1] == 0xFF:  # fill byte before a marker
            pos += 1
            continue
        marker, length = data[pos + 1], int.from_bytes(data[pos + 2 : pos + 4], "big")
        pos += 2 + length
        if marker == 0xDA:  # SOS: the entropy-coded data starts right after this segment
            return pos
    raise ValueError("damaged JPEG: no SOS marker.")


def _roundtrip(images, fmt: str, options: dict, header_size=None) -> Encoded:
    """Encode each image to ``fmt`` in memory with Pillow, decode it, and measure the files."""
    from PIL import Image

    pixels = to_uint8(_images("images", images, channels=3))
    decoded = np.empty_like(pixels)
    n_bytes = np.empty(len(pixels), dtype=np.int64)
    payload = np.empty(len(pixels), dtype=np.int64) if header_size else None
    for i, image in enumerate(pixels):
        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, fmt, **options)
        data = buffer.getvalue()
        n_bytes[i] = len(data)
        if header_size:
            payload[i] = len(data) - header_size(data) - 2  # 2: the EOI marker that ends the file
        with Image.open(io.BytesIO(data)) as file:
            decoded[i] = np.asarray(file.convert("RGB"))
    return Encoded(decoded.astype(np.float32) / 255.0, n_bytes, payload)


def jpeg(images, quality: int, optimize: bool = True) -> Encoded:
    """JPEG-code each image with Pillow (baseline JPEG, 4:2:0 chroma subsampling, Pillow's default).

    Args:
        images: (N, H, W, 3) uint8, or floats in [0, 1] (rounded to 8 bits first, which is exact for
            CIFAR-10 images scaled by 1/255).
        quality: 1 (smallest) to 100 (best), libjpeg's quality scale.
        optimize: compute optimal Huffman tables for each image (smaller files, same pixels).

    Returns:
        An :class:`Encoded`: float32 reconstructions in [0, 1]; ``n_bytes``, each whole file's length;
        ``n_bytes_no_header``, the entropy-coded scan data only: the bytes after the first SOS (start of
        scan) segment and before the final 2-byte EOI marker. It leaves out the SOI/APP0 (JFIF) markers,
        the quantisation tables, the frame header and the Huffman tables. With ``optimize=True`` the
        Huffman tables are chosen per image, so this size is a lower bound: the decoder needs them too.
    """
    quality = _int_in("quality", quality, 1, 100)
    return _roundtrip(
        images, "JPEG", {"quality": quality, "optimize": bool(optimize)}, _jpeg_header_size
    )


def webp(images, quality: int, method: int = 6) -> Encoded:
    """Lossy WebP-code each image with Pillow (libwebp; VP8 intra coding, 4:2:0 chroma).

    Args:
        images: (N, H, W, 3) uint8, or floats in [0, 1] (rounded to 8 bits first).
        quality: 1 (smallest) to 100 (best).
        method: speed/size trade-off from 0 (fast) to 6 (slowest, smallest).

    Returns:
        An :class:`Encoded`: float32 reconstructions in [0, 1] and ``n_bytes``, each whole file's length
        (its 20-byte RIFF/VP8 container header included).
    """
    quality = _int_in("quality", quality, 1, 100)
    method = _int_in("method", method, 0, 6)
    return _roundtrip(images, "WEBP", {"quality": quality, "method": method, "lossless": False})


def closest_size(image, n_bytes: int, codec: str = "webp") -> tuple[int, Encoded]:
    """Code one image with JPEG or WebP at the quality whose file size is closest to ``n_bytes``.

    For side-by-side comparisons at (nearly) equal rate. Every quality from 1 to 100 is tried; on a tie
    the smaller file wins.

    Args:
        image: one image (H, W, 3), uint8 or floats in [0, 1].
        n_bytes: the target size in bytes (positive).
        codec: ``"webp"`` (method 6) or ``"jpeg"``.

    Returns:
        ``(quality, encoded)``: the chosen quality and the :class:`Encoded` of that one image.
    """
    coders = {"webp": webp, "jpeg": jpeg}
    if codec not in coders:
        raise ValueError(f"codec must be one of {sorted(coders)}, got {codec!r}.")
    n_bytes = _int_in("n_bytes", n_bytes, 1, 2**31 - 1)
    images = _images("image", np.asarray(image)[None], channels=3)
    best = None
    for quality in range(1, 101):
        encoded = coders[codec](images, quality)
        key = (abs(int(encoded.n_bytes[0]) - n_bytes), int(encoded.n_bytes[0]))
        if best is None or key < best[0]:
            best = (key, quality, encoded)
    return best[1], best[2]


# --------------------------------------------------------------------------------------------------
# Sweeps
# --------------------------------------------------------------------------------------------------


def rate_quality_table(
    x,
    jpeg_qualities=(10, 50, 75),
    webp_qualities=(10, 25, 50, 75),
    pca: PCA | None = None,
    pca_components=(),
    pca_bits=(None, 8),
    extra=(),
):
    """Code ``x`` with each baseline and setting, and score the results: one row per setting.

    Args:
        x: images (N, H, W, 3), floats in [0, 1] (or uint8).
        jpeg_qualities, webp_qualities: qualities to try (empty to skip the codec).
        pca: a fitted :class:`PCA`, or None to skip PCA.
        pca_components: the numbers of components to try (each at most ``pca.n_components``; empty means
            just ``pca.n_components``).
        pca_bits: for each, None for float32 coefficients and/or a number of bits per coefficient.
        extra: more coders, as ``(method, setting, code)`` triples where ``code()`` returns an
            :class:`Encoded` of ``x`` (for example the learned codec through :func:`cae_utils.codec.roundtrip`).

    Returns:
        A pandas DataFrame with columns ``method``, ``setting``, ``bpp`` (mean bits per pixel, whole code),
        ``bpp_no_header`` (the code without its header where the coder has one: JPEG, ``.cae``; else
        NaN), ``psnr`` (mean), ``pooled_psnr`` and ``ssim`` (mean; NaN for images under 11x11 pixels).
    """
    import pandas as pd

    from .metrics import payload_bpp, summarize

    x = _images("x", x)
    original = _to_float(x)
    with_ssim = min(x.shape[1:3]) >= 11
    runs = []
    if pca is not None:
        for d in pca_components or (pca.n_components,):
            truncated = pca_truncate(pca, d)
            for bits in pca_bits:
                label = "float32" if bits is None else f"{bits}-bit"
                code = partial(pca_reconstruct, truncated, x, bits)
                runs.append((f"PCA, {label} coefficients", f"{d} components", code))
    runs += [("JPEG", f"quality {q}", partial(jpeg, x, q)) for q in jpeg_qualities]
    runs += [("WebP", f"quality {q}", partial(webp, x, q)) for q in webp_qualities]
    runs += list(extra)
    rows = []
    for method, setting, code in config.progress(runs, "coder"):
        encoded = code()
        scores = summarize(original, encoded.reconstructions, with_ssim=with_ssim)
        no_header = encoded.n_bytes_no_header
        rows.append(
            {
                "method": method,
                "setting": setting,
                "bpp": float(np.mean(payload_bpp(encoded.n_bytes, x.shape[1:]))),
                "bpp_no_header": np.nan
                if no_header is None
                else float(np.mean(payload_bpp(no_header, x.shape[1:]))),
                "psnr": scores["psnr"],
                "pooled_psnr": scores["pooled_psnr"],
                "ssim": scores.get("ssim", np.nan),
            }
        )
    return pd.DataFrame(
        rows, columns=["method", "setting", "bpp", "bpp_no_header", "psnr", "pooled_psnr", "ssim"]
    )
