"""Reconstruction quality: MSE and PSNR per image and over a set, for images with pixels in [0, 1].

PSNR (peak signal-to-noise ratio) compares the error with the largest possible pixel value, here 1:

    PSNR = 10 * log10(1 / MSE)   decibels; higher is better, +3 dB halves the MSE.

Over a set of images the course reports two numbers, as the compression literature does:

- **mean PSNR**: the average of the per-image PSNRs (every image counts equally);
- **pooled PSNR**: ``10 * log10(1 / mean MSE)``, the PSNR of the average error. It is lower than the
  mean PSNR, because a few badly reconstructed images weigh heavily in the mean MSE.

:func:`evaluate` runs a model over a whole set in batches and returns both.
"""

from __future__ import annotations

import numpy as np

__all__ = ["mse", "psnr", "pooled_psnr", "evaluate", "psnr_metric"]

#: Smallest MSE used in a logarithm, so identical images give a large finite PSNR (100 dB), not infinity.
MSE_FLOOR = 1e-10


def _check_pair(original, reconstructed) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(original, dtype=np.float64)
    b = np.asarray(reconstructed, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 4:
        raise ValueError(
            f"expected two batches of images of the same shape (N, H, W, C), got {a.shape} and {b.shape}."
        )
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


def evaluate(model, x, batch_size: int = 500) -> dict:
    """Reconstruct ``x`` with ``model`` in batches and measure the error.

    Args:
        model: a Keras autoencoder (or any callable model) mapping (N, H, W, C) images to images.
        x: images (N, H, W, C) in [0, 1].
        batch_size: images per forward pass.

    Returns:
        A dict with ``mse`` (mean MSE), ``psnr`` (mean of per-image PSNR), ``pooled_psnr`` and
        ``per_image_psnr`` (an array of N values).
    """
    per_image_mse = np.concatenate(
        [mse(x[i : i + batch_size], model.predict(x[i : i + batch_size], verbose=0)) for i in range(0, len(x), batch_size)]
    )
    per_image_psnr = _psnr_from_mse(per_image_mse)
    return {
        "mse": float(per_image_mse.mean()),
        "psnr": float(per_image_psnr.mean()),
        "pooled_psnr": pooled_psnr(per_image_mse),
        "per_image_psnr": per_image_psnr,
    }


def psnr_metric(y_true, y_pred):
    """Keras metric: the PSNR of each image in the batch (Keras averages it into the mean PSNR).

    Use it in ``model.compile(metrics=[psnr_metric])``; it is registered, so saved ``.keras``
    files that use it load without ``custom_objects``.
    """
    from keras import ops

    error = ops.mean(ops.square(ops.cast(y_true, "float32") - ops.cast(y_pred, "float32")), axis=(1, 2, 3))
    return 10.0 * ops.log10(1.0 / ops.maximum(error, MSE_FLOOR))


def _register():
    import keras

    keras.saving.register_keras_serializable(package="cae_utils", name="psnr")(psnr_metric)


try:  # registering needs Keras; the NumPy functions above do not
    _register()
except ImportError:  # pragma: no cover - Keras is a course requirement
    pass
