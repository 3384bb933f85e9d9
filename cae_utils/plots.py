"""Figure helpers shared by the notebooks.

Plotting code that is not the lesson lives here, so the notebooks stay short. Every function returns
the matplotlib ``Figure`` it drew; :func:`save_fig` writes it where the run settings say (``figures/``
in a full run, a temporary folder in quick mode).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from . import config

__all__ = [
    "save_fig",
    "image_grid",
    "class_examples",
    "channel_histograms",
    "pixel_counts",
    "stage_sizes",
    "sigmoid_and_pixel_range",
    "error_map",
    "labelled_rows",
    "thumbnail_map",
]

CHANNELS = ("red", "green", "blue")


def save_fig(fig: plt.Figure, name: str, dpi: int = 120) -> Path:
    """Save ``fig`` as ``name`` (a plain file name such as ``"01_examples.png"``) and return the path.

    The folder comes from :func:`cae_utils.config.figure_path`: the repository's ``figures/`` in a full
    run, a temporary folder in quick mode, so quick runs never overwrite the figures the README shows.
    """
    path = config.figure_path(name)
    fig.savefig(path, dpi=dpi, bbox_inches="tight")
    return path


def _as_display(image: np.ndarray) -> np.ndarray:
    """Clip an (H, W, 3) or (H, W) float image to [0, 1] for ``imshow``."""
    return np.clip(np.asarray(image, dtype=np.float32), 0.0, 1.0)


def image_grid(
    images: np.ndarray | Sequence[np.ndarray],
    titles: Sequence[str] | None = None,
    ncols: int = 8,
    size: float = 1.4,
    suptitle: str | None = None,
) -> plt.Figure:
    """Draw images in a grid.

    Args:
        images: N images, each (H, W, 3) with values in [0, 1] (values outside are clipped).
        titles: optional N short titles, one per image.
        ncols: images per row.
        size: width and height of one cell in inches.
        suptitle: optional title over the whole grid.

    Returns:
        The figure, with axes switched off.
    """
    images = list(images)
    if not images:
        raise ValueError("image_grid needs at least one image.")
    if titles is not None and len(titles) != len(images):
        raise ValueError(f"got {len(titles)} titles for {len(images)} images.")
    ncols = min(ncols, len(images))
    nrows = -(-len(images) // ncols)
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(ncols * size, nrows * size * 1.1), squeeze=False
    )
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < len(images):
            ax.imshow(_as_display(images[i]), interpolation="nearest")
            if titles is not None:
                ax.set_title(titles[i], fontsize=8)
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    return fig


def class_examples(
    x: np.ndarray, y: np.ndarray, class_names: Sequence[str], per_class: int = 8, seed: int = 0
) -> plt.Figure:
    """Draw ``per_class`` randomly chosen images of every class, one row per class, named on the left.

    Args:
        x: images (N, H, W, 3) in [0, 1].
        y: integer labels (N,).
        class_names: the name of each label.
        per_class: images per row.
        seed: which images are chosen.
    """
    rng = np.random.default_rng(seed)
    n_classes = len(class_names)
    fig, axes = plt.subplots(
        n_classes, per_class, figsize=(per_class * 1.1, n_classes * 1.1), squeeze=False
    )
    for row, name in enumerate(class_names):
        members = np.flatnonzero(y == row)
        chosen = rng.choice(members, size=min(per_class, len(members)), replace=False)
        for col, ax in enumerate(axes[row]):
            ax.set_xticks([])
            ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_visible(False)
            if col < len(chosen):
                ax.imshow(_as_display(x[chosen[col]]), interpolation="nearest")
        axes[row, 0].set_ylabel(name, rotation=0, ha="right", va="center", fontsize=10)
    fig.subplots_adjust(wspace=0.05, hspace=0.05)
    return fig


def pixel_counts(x: np.ndarray) -> np.ndarray:
    """Count how often each 8-bit value 0..255 occurs in each colour channel.

    Args:
        x: images (N, H, W, 3), floats in [0, 1] (as :func:`cae_utils.data.load_cifar10` returns them)
            or uint8.

    Returns:
        An int64 array (3, 256): ``counts[c, v]`` is the number of pixels whose channel ``c`` equals ``v``.
    """
    x = np.asarray(x)
    if x.ndim != 4 or x.shape[-1] != 3:
        raise ValueError(f"expected images of shape (N, H, W, 3), got {x.shape}.")
    counts = np.zeros((3, 256), dtype=np.int64)
    # Chunks keep the temporary uint8 copy small even for the whole training set.
    for start in range(0, len(x), 5000):
        chunk = x[start : start + 5000]
        values = (
            chunk
            if chunk.dtype == np.uint8
            else np.rint(np.clip(chunk, 0, 1) * 255).astype(np.uint8)
        )
        for c in range(3):
            counts[c] += np.bincount(values[..., c].ravel(), minlength=256)
    return counts


def channel_histograms(x: np.ndarray) -> plt.Figure:
    """Draw the distribution of 8-bit values (0..255) of each colour channel, as a share of all pixels."""
    counts = pixel_counts(x)
    share = counts / counts.sum(axis=1, keepdims=True)
    fig, ax = plt.subplots(figsize=(8, 3.5))
    values = np.arange(256)
    for c, name in enumerate(CHANNELS):
        ax.plot(values, share[c] * 100, color=name, label=name, linewidth=1.2)
    ax.set_xlim(0, 255)
    ax.set_xlabel("pixel value (0-255)")
    ax.set_ylabel("share of pixels (%)")
    ax.legend()
    fig.tight_layout()
    return fig


def stage_sizes(stages, n_encoder: int) -> plt.Figure:
    """Draw how many values an image occupies at each stage of an autoencoder (log scale).

    Args:
        stages: a DataFrame with columns ``stage``, ``shape`` (text such as ``"16x16x64"``) and
            ``values``, in order from the input image to the reconstruction.
        n_encoder: how many of the first rows belong to the encoder; the next row is the latent vector
            and the rest belong to the decoder (coloured blue, red and green).
    """
    colors = ["tab:blue"] * n_encoder + ["tab:red"] + ["tab:green"] * (len(stages) - n_encoder - 1)
    fig, ax = plt.subplots(figsize=(8, 0.42 * len(stages) + 0.6))
    y = np.arange(len(stages))[::-1]
    ax.barh(y, stages["values"], color=colors, height=0.6)
    for yi, (_, row) in zip(y, stages.iterrows()):
        ax.text(
            row["values"] * 1.15,
            yi,
            f"{row['shape']}  ({row['values']:,})",
            va="center",
            fontsize=9,
        )
    ax.set_yticks(y, stages["stage"])
    ax.set_xscale("log")
    ax.set_xlim(100, stages["values"].max() * 3)
    ax.set_xlabel("values per image (log scale)")
    ax.set_title("Encoder (blue), latent vector (red), decoder (green)")
    fig.tight_layout()
    return fig


def sigmoid_and_pixel_range() -> plt.Figure:
    """Draw the sigmoid over [-8, 8] beside a plain linear output, with the range of scaled pixels, [0, 1],
    shaded: the sigmoid never leaves it, the linear output does."""
    z = np.linspace(-8, 8, 400)
    fig, ax = plt.subplots(figsize=(7, 3.2))
    ax.axhspan(0, 1, color="tab:green", alpha=0.12, label="pixel range [0, 1]")
    ax.plot(z, z, color="tab:gray", linestyle="--", label="no activation: the output is z")
    ax.plot(z, 1 / (1 + np.exp(-z)), color="tab:blue", label=r"sigmoid $\sigma(z)$")
    ax.set_xlabel("z (the decoder's last pre-activation)")
    ax.set_ylabel("output pixel value")
    ax.set_ylim(-1.5, 2.5)
    ax.legend(loc="upper left", fontsize=9)
    fig.tight_layout()
    return fig


def error_map(original: np.ndarray, reconstructed: np.ndarray) -> np.ndarray:
    """Per-pixel error of one image: the absolute difference averaged over the colour channels.

    Args:
        original, reconstructed: (H, W, 3) images with values in [0, 1].

    Returns:
        An (H, W) float32 array in [0, 1]; 0 where the reconstruction is exact.
    """
    original, reconstructed = (
        np.asarray(original, np.float32),
        np.asarray(reconstructed, np.float32),
    )
    if original.shape != reconstructed.shape or original.ndim != 3:
        raise ValueError(
            f"expected two (H, W, 3) images of the same shape, got {original.shape} and {reconstructed.shape}."
        )
    return np.abs(original - reconstructed).mean(axis=-1)


def labelled_rows(
    rows: Sequence[tuple[str, Sequence[np.ndarray]]],
    titles: Sequence[str] | None = None,
    size: float = 1.2,
    error_vmax: float = 0.25,
    suptitle: str | None = None,
    image_titles: Sequence[Sequence[str]] | None = None,
) -> plt.Figure:
    """Draw rows of images with a label on the left of each row (originals, reconstructions, errors...).

    Args:
        rows: ``(label, images)`` pairs; every row has the same number of images. An image is (H, W, 3)
            in [0, 1], or (H, W) for an error map (drawn with the ``magma`` colour map from 0 to
            ``error_vmax``, with a colour bar).
        titles: optional titles over the columns of the first row.
        size: width and height of one image in inches.
        error_vmax: the error shown as the brightest colour in error maps.
        suptitle: optional title over the figure.
        image_titles: optional titles over every image, one list per row (instead of ``titles``).

    Returns:
        The figure.
    """
    if not rows:
        raise ValueError("labelled_rows needs at least one row.")
    ncols = len(rows[0][1])
    if any(len(images) != ncols for _, images in rows) or ncols == 0:
        raise ValueError(
            f"every row needs the same, non-zero number of images; got {[len(i) for _, i in rows]}."
        )
    if titles is not None and len(titles) != ncols:
        raise ValueError(f"got {len(titles)} titles for {ncols} columns.")
    if image_titles is not None and [len(t) for t in image_titles] != [ncols] * len(rows):
        raise ValueError(f"image_titles needs {len(rows)} lists of {ncols} titles, one per image.")
    height = len(rows) * size * (1.25 if image_titles is not None else 1.05)
    fig, axes = plt.subplots(len(rows), ncols, figsize=(ncols * size + 1.2, height), squeeze=False)
    shown_errors = None
    for r, (label, images) in enumerate(rows):
        for c, ax in enumerate(axes[r]):
            image = np.asarray(images[c])
            if image.ndim == 2:
                shown_errors = ax.imshow(
                    image, cmap="magma", vmin=0, vmax=error_vmax, interpolation="nearest"
                )
            else:
                ax.imshow(_as_display(image), interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_visible(False)
            if image_titles is not None:
                ax.set_title(image_titles[r][c], fontsize=8)
            elif r == 0 and titles is not None:
                ax.set_title(titles[c], fontsize=8)
        axes[r, 0].set_ylabel(label, rotation=0, ha="right", va="center", fontsize=9)
    fig.subplots_adjust(wspace=0.05, hspace=0.08)
    if shown_errors is not None:
        bar = fig.colorbar(shown_errors, ax=axes.ravel().tolist(), fraction=0.02, pad=0.01)
        bar.set_label("mean |error|", fontsize=8)
    if suptitle:
        fig.suptitle(suptitle)
    return fig


def thumbnail_map(
    points: np.ndarray, images: np.ndarray, n: int = 400, zoom: float = 0.6, seed: int = 0
) -> plt.Figure:
    """Draw images as thumbnails at their positions on a 2-D map (for example a t-SNE of the latents).

    Args:
        points: (N, 2) positions.
        images: (N, H, W, 3) images in [0, 1], in the same order.
        n: how many thumbnails to draw (chosen at random with ``seed``; all when N <= n).
        zoom: thumbnail size relative to the image's pixel size.
        seed: which thumbnails are drawn.

    Returns:
        The figure.
    """
    from matplotlib.offsetbox import AnnotationBbox, OffsetImage

    points = np.asarray(points, dtype=np.float64)
    if points.ndim != 2 or points.shape[1] != 2 or len(points) != len(images):
        raise ValueError(
            f"expected (N, 2) points for N images, got {points.shape} for {len(images)} images."
        )
    chosen = np.random.default_rng(seed).permutation(len(points))[:n]
    fig, ax = plt.subplots(figsize=(11, 11))
    ax.scatter(points[:, 0], points[:, 1], s=2, color="lightgrey")
    for i in chosen:
        box = AnnotationBbox(
            OffsetImage(_as_display(images[i]), zoom=zoom), points[i], frameon=False
        )
        ax.add_artist(box)
    ax.set_xticks([])
    ax.set_yticks([])
    fig.tight_layout()
    return fig
