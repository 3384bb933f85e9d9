"""Reconstruction quality: MSE, PSNR and SSIM per image and over a set, for images with pixels in [0, 1].

PSNR (peak signal-to-noise ratio) compares the error with the largest possible pixel value, here 1:

    PSNR = 10 * log10(1 / MSE)   decibels; higher is better, +3 dB halves the MSE.

Over a set of images the course reports two numbers, as the compression literature does:

- **mean PSNR**: the average of the per-image PSNRs (every image counts equally);
- **pooled PSNR**: ``10 * log10(1 / mean MSE)``, the PSNR of the average error. It is never higher than
  the mean PSNR (Jensen's inequality), because a few badly reconstructed images weigh heavily in the
  mean MSE.

SSIM (structural similarity, Wang et al. 2004) compares local means, contrasts and correlations instead
of raw pixel errors; 1 means identical, and it tracks what the eye notices (blur, lost texture) better
than PSNR. :func:`ssim` is the standard form, identical to scikit-image's
``structural_similarity(a, b, channel_axis=-1, data_range=1.0, gaussian_weights=True, sigma=1.5,
use_sample_covariance=False)`` and, to float32 precision, to ``tf.image.ssim``.

:func:`summarize` scores arrays of reconstructions (from any method: a model, PCA, JPEG, ...) in
batches; :func:`evaluate` runs a model over a set in batches and scores it the same way.
:func:`payload_bpp` turns compressed sizes in bytes into bits per pixel.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "mse",
    "psnr",
    "pooled_psnr",
    "ssim",
    "detail",
    "payload_bpp",
    "summarize",
    "evaluate",
    "psnr_metric",
]

#: Smallest MSE used in a logarithm, so identical images give a large finite PSNR (100 dB), not infinity.
MSE_FLOOR = 1e-10

#: SSIM settings of Wang et al. (2004): an 11x11 Gaussian window of standard deviation 1.5, and the
#: stabilising constants C1 = (K1 * L)^2, C2 = (K2 * L)^2 for a data range L = 1.
SSIM_WINDOW = 11
SSIM_SIGMA = 1.5
SSIM_K1, SSIM_K2 = 0.01, 0.03


def _check_shapes(shape_a, shape_b) -> None:
    if tuple(shape_a) != tuple(shape_b) or len(shape_a) != 4:
        raise ValueError(
            f"expected two batches of images of the same shape (N, H, W, C), got {tuple(shape_a)} and "
            f"{tuple(shape_b)}."
        )


def _check_pair(original, reconstructed) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(original, dtype=np.float64)
    b = np.asarray(reconstructed, dtype=np.float64)
    _check_shapes(a.shape, b.shape)
    return a, b


def mse(original, reconstructed) -> np.ndarray:
    """Mean squared error of each image.

    Args:
        original, reconstructed: batches of the same shape (N, H, W, C), pixels in [0, 1].

    Returns:
        A float64 array of N values.
    """
    a, b = _check_pair(original, reconstructed)
    return np.mean((a - b) ** 2, axis=(1, 2, 3))


def _psnr_from_mse(values):
    """``10 * log10(1 / MSE)``, with the MSE floored at :data:`MSE_FLOOR`."""
    return 10.0 * np.log10(1.0 / np.maximum(values, MSE_FLOOR))


def psnr(original, reconstructed) -> np.ndarray:
    """PSNR of each image in dB, for pixels in [0, 1]: ``10 * log10(1 / MSE)``.

    Args:
        original, reconstructed: batches of the same shape (N, H, W, C).

    Returns:
        A float64 array of N values (100 dB for an exact copy).
    """
    return _psnr_from_mse(mse(original, reconstructed))


def pooled_psnr(per_image_mse) -> float:
    """PSNR of the average error over a set: ``10 * log10(1 / mean(per_image_mse))``."""
    values = np.asarray(per_image_mse, dtype=np.float64)
    if values.size == 0:
        raise ValueError("pooled_psnr needs at least one MSE value.")
    return float(_psnr_from_mse(values.mean()))


def _gaussian_window() -> np.ndarray:
    """The 1-D SSIM window: 11 Gaussian weights (sigma 1.5) summing to 1; the 2-D window is its outer product."""
    offsets = np.arange(SSIM_WINDOW) - SSIM_WINDOW // 2
    weights = np.exp(-0.5 * (offsets / SSIM_SIGMA) ** 2)
    return weights / weights.sum()


def _local_mean(images: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Gaussian-weighted local means over every full 11x11 window ('valid' region) of (N, H, W, C) images.

    The 2-D window is separable, so it is applied as two 1-D passes (rows, then columns); the result is
    (N, H - 10, W - 10, C).
    """
    k = len(weights)
    rows = sum(w * images[:, i : images.shape[1] - k + 1 + i] for i, w in enumerate(weights))
    return sum(w * rows[:, :, i : rows.shape[2] - k + 1 + i] for i, w in enumerate(weights))


def ssim(original, reconstructed) -> np.ndarray:
    """Structural similarity (SSIM) of each image, Wang et al. (2004), for pixels in [0, 1].

    For each pixel position, with Gaussian-weighted local means ``mu``, variances ``var`` and covariance
    ``cov`` of the two images over an 11x11 window (sigma 1.5)::

        SSIM = (2 mu_a mu_b + C1) (2 cov + C2) / ((mu_a^2 + mu_b^2 + C1) (var_a + var_b + C2))

    with ``C1 = 0.01^2`` and ``C2 = 0.03^2`` (data range 1). An image's SSIM is the mean of this map over
    every position and channel (equivalently: per channel, then averaged over channels).

    Edges: only windows lying wholly inside the image count (the 'valid' region, (H - 10) x (W - 10)
    positions, 22 x 22 for CIFAR-10). This is what scikit-image does (it filters with reflected edges,
    then crops the 5 border pixels whose windows left the image) and what ``tf.image.ssim`` does: the
    values agree with scikit-image to about 1e-15 and with TensorFlow (which works in float32) to 1e-6.

    Vectorised over the batch; memory is a few float64 copies of the batch, so score big sets through
    :func:`summarize`, which works in batches.

    Args:
        original, reconstructed: batches of the same shape (N, H, W, C), pixels in [0, 1], with
            H and W at least 11.

    Returns:
        A float64 array of N values in [-1, 1] (1.0 for identical images).

    Raises:
        ValueError: the shapes differ, are not (N, H, W, C), or the images are smaller than the window.
    """
    a, b = _check_pair(original, reconstructed)
    if min(a.shape[1:3]) < SSIM_WINDOW:
        raise ValueError(
            f"SSIM needs images of at least {SSIM_WINDOW}x{SSIM_WINDOW} pixels (its Gaussian window), got "
            f"{a.shape[1]}x{a.shape[2]}; use psnr() for smaller images."
        )
    weights = _gaussian_window()
    mu_a, mu_b = _local_mean(a, weights), _local_mean(b, weights)
    var_a = _local_mean(a * a, weights) - mu_a**2
    var_b = _local_mean(b * b, weights) - mu_b**2
    cov = _local_mean(a * b, weights) - mu_a * mu_b
    c1, c2 = SSIM_K1**2, SSIM_K2**2
    ssim_map = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / (
        (mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2)
    )
    return ssim_map.mean(axis=(1, 2, 3))


def detail(images) -> np.ndarray:
    """How much fine detail each image has: the mean absolute difference between neighbouring pixels.

    The average, over colour channels, of ``|x[i, j] - x[i, j+1]|`` and ``|x[i, j] - x[i+1, j]|`` (each
    direction averaged over its pairs, then the two averaged). 0 for a flat image; 1 for a black-and-white
    checkerboard of single pixels, where every neighbour differs by 1.

    Args:
        images: a batch (N, H, W, C) with values in [0, 1], H and W at least 2.

    Returns:
        A float64 array of N values.
    """
    x = np.asarray(images, dtype=np.float64)
    if x.ndim != 4 or x.shape[1] < 2 or x.shape[2] < 2:
        raise ValueError(
            f"expected a batch of images (N, H, W, C) at least 2x2, got shape {x.shape}."
        )
    across = np.abs(np.diff(x, axis=2)).mean(axis=(1, 2, 3))
    down = np.abs(np.diff(x, axis=1)).mean(axis=(1, 2, 3))
    return (across + down) / 2


def payload_bpp(n_bytes, image_shape=(32, 32)):
    """Bits per pixel of a compressed image: ``8 * n_bytes / (H * W)``.

    A pixel is one (R, G, B) position, so the uncompressed 8-bit image costs 24 bpp. (For the size of a
    latent vector of a given length, use :func:`cae_utils.models.bits_per_pixel`.)

    Args:
        n_bytes: compressed size of each image in bytes: a number or an array of them (non-negative).
        image_shape: (H, W) or (H, W, C) of the image; only H and W count.

    Returns:
        A float for a single size, else a float64 array of the same shape as ``n_bytes``.

    Raises:
        ValueError: a negative size, or an image shape without two positive sides.
    """
    if len(image_shape) not in (2, 3) or not all(int(s) == s and s > 0 for s in image_shape[:2]):
        raise ValueError(
            f"image_shape must be (H, W) or (H, W, C) with positive sides, got {image_shape!r}."
        )
    sizes = np.asarray(n_bytes, dtype=np.float64)
    if np.any(sizes < 0) or not np.all(np.isfinite(sizes)):
        raise ValueError("n_bytes must be non-negative sizes in bytes.")
    bpp = 8.0 * sizes / (image_shape[0] * image_shape[1])
    return float(bpp) if bpp.ndim == 0 else bpp


def _score_batches(pairs, with_ssim: bool) -> dict:
    """Score an iterable of (original batch, reconstructed batch) pairs and pool the results."""
    per_mse, per_ssim = [], []
    for a, b in pairs:
        per_mse.append(mse(a, b))
        if with_ssim:
            per_ssim.append(ssim(a, b))
    if not per_mse:
        raise ValueError("there are no images to score (the batch is empty).")
    per_image_mse = np.concatenate(per_mse)
    per_image_psnr = _psnr_from_mse(per_image_mse)
    scores = {
        "mse": float(per_image_mse.mean()),
        "psnr": float(per_image_psnr.mean()),
        "pooled_psnr": pooled_psnr(per_image_mse),
        "per_image_psnr": per_image_psnr,
        "per_image_mse": per_image_mse,
    }
    if with_ssim:
        per_image_ssim = np.concatenate(per_ssim)
        scores.update(ssim=float(per_image_ssim.mean()), per_image_ssim=per_image_ssim)
    return scores


def _batch_starts(n: int, batch_size: int) -> range:
    if isinstance(batch_size, bool) or int(batch_size) != batch_size or batch_size < 1:
        raise ValueError(f"batch_size must be a positive whole number, got {batch_size!r}.")
    return range(0, n, int(batch_size))


def summarize(original, reconstructed, batch_size: int = 500, with_ssim: bool = True) -> dict:
    """Score reconstructions from any method against the originals, in batches to bound memory.

    Args:
        original, reconstructed: arrays of the same shape (N, H, W, C), pixels in [0, 1] (any float or
            integer dtype; each batch is converted to float64 in turn).
        batch_size: images scored at a time.
        with_ssim: also compute SSIM (needs H, W >= 11).

    Returns:
        A dict with ``mse`` (mean MSE), ``psnr`` (mean of per-image PSNR), ``pooled_psnr``, and the arrays
        ``per_image_psnr`` and ``per_image_mse`` (N values each); with SSIM also ``ssim`` (mean SSIM)
        and ``per_image_ssim``.
    """
    _check_shapes(np.shape(original), np.shape(reconstructed))
    starts = _batch_starts(len(original), batch_size)
    return _score_batches(
        ((original[i : i + batch_size], reconstructed[i : i + batch_size]) for i in starts),
        with_ssim,
    )


def evaluate(model, x, batch_size: int = 500, with_ssim: bool = False) -> dict:
    """Reconstruct ``x`` with ``model`` in batches and measure the error, as :func:`summarize` does.

    Args:
        model: a Keras autoencoder (or any object with ``predict(x, verbose=0)``) mapping (N, H, W, C)
            images to images.
        x: images (N, H, W, C) in [0, 1].
        batch_size: images per forward pass.
        with_ssim: also compute SSIM (off by default: it costs time and needs H, W >= 11).

    Returns:
        A dict with ``mse`` (mean MSE), ``psnr`` (mean of per-image PSNR), ``pooled_psnr``,
        ``per_image_psnr`` and ``per_image_mse`` (arrays of N values); with SSIM also ``ssim`` and
        ``per_image_ssim``.
    """
    starts = _batch_starts(len(x), batch_size)
    return _score_batches(
        ((x[i : i + batch_size], model.predict(x[i : i + batch_size], verbose=0)) for i in starts),
        with_ssim,
    )


def psnr_metric(y_true, y_pred):
    """Keras metric: the PSNR of each image in the batch (Keras averages it into the mean PSNR).

    Use it in ``model.compile(metrics=[psnr_metric])``; it is registered, so saved ``.keras``
    files that use it load without ``custom_objects``.
    """
    from keras import ops

    error = ops.mean(
        ops.square(ops.cast(y_true, "float32") - ops.cast(y_pred, "float32")), axis=(1, 2, 3)
    )
    return 10.0 * ops.log10(1.0 / ops.maximum(error, MSE_FLOOR))


def _register():
    import keras

    keras.saving.register_keras_serializable(package="cae_utils", name="psnr")(psnr_metric)


try:  # registering needs Keras; the NumPy functions above do not
    _register()
except ImportError:  # pragma: no cover - Keras is a course requirement
    pass
