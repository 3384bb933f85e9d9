"""What does an autoencoder's latent space hold? Tools to look inside it (used by notebook 05).

An encoder turns every image into a short vector of numbers, its *latent* (256 values for the shipped
``course-256``). This module measures and explores those vectors, next to the same questions asked of
the raw pixels:

- **Get latents and images** -- :func:`encode` runs an encoder in batches and returns one flat row per
  image; :func:`decode` turns such rows back into images (it reshapes them to whatever the decoder takes).
- **How many dimensions are used?** -- :func:`variance_spectrum` (variance of each latent value, largest
  first), :func:`pca_spectrum` (eigenvalues of the covariance: the variance along the principal axes,
  for latents or for 3072 pixel values) and :func:`dims_for_fraction` (how many of them carry, say, 90%
  of the total variance).
- **What do they know about the image's class?** -- :func:`linear_probe`: a logistic regression trained
  on frozen features; its test accuracy says how linearly readable the class is (chance is 10%).
- **Which images look alike?** -- :func:`nearest_neighbours`, exact, in latent space or in pixel space.
- **What lies between two images?** -- :func:`interpolate`, :func:`latent_interpolation` (walk between
  two latents and decode) and :func:`pixel_interpolation` (cross-fade the pixels).
- **Can the decoder generate?** -- :func:`sample_like` draws new latents from a Gaussian fitted to real
  ones, and :func:`out_of_distribution_images` makes inputs unlike any photograph (noise, a flat colour,
  a checkerboard, a gradient) to see what the autoencoder does with them.

Everything returns NumPy arrays. TensorFlow is never imported here (the functions call the model you
pass) and scikit-learn only inside :func:`linear_probe`, so ``import cae_utils.latent`` is cheap.

Variances and covariances use ``N - 1`` in the denominator (as ``np.cov`` does), so the per-dimension
variances and the PCA eigenvalues of the same latents have the same sum.
"""

from __future__ import annotations

import numbers
import warnings

import numpy as np

__all__ = [
    "encode",
    "decode",
    "variance_spectrum",
    "pca_spectrum",
    "dims_for_fraction",
    "linear_probe",
    "nearest_neighbours",
    "interpolate",
    "latent_interpolation",
    "pixel_interpolation",
    "sample_like",
    "out_of_distribution_images",
]

#: Values in the largest block a chunked computation holds at once (64 MB as float64, 32 MB as float32).
_BLOCK_VALUES = 8 * 2**20


# --------------------------------------------------------------------------------------------------
# Argument checks
# --------------------------------------------------------------------------------------------------


def _count(name: str, value, minimum: int = 1) -> int:
    """Return ``value`` as an int when it is a whole number >= ``minimum``; raise ValueError otherwise."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be a whole number >= {minimum}, got {value!r}.")
    return int(value)


def _rows(name: str, x, min_rows: int = 1) -> np.ndarray:
    """View ``x`` as a 2-D array, one row per item: ``(N, D)`` stays, ``(N, H, W, C)`` is flattened."""
    x = np.asarray(x)
    if x.ndim < 2:
        raise ValueError(
            f"{name} must hold one row per item, shape (N, D) or (N, H, W, C); got shape {x.shape}."
        )
    if len(x) < min_rows:
        raise ValueError(f"{name} needs at least {min_rows} rows, got {len(x)}.")
    return x.reshape(len(x), -1)


def _labels(name: str, labels, n: int) -> np.ndarray:
    """Return ``labels`` as a 1-D array of ``n`` entries (a column ``(n, 1)`` is accepted too)."""
    labels = np.asarray(labels)
    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels[:, 0]
    if labels.ndim != 1 or len(labels) != n:
        raise ValueError(
            f"{name} must hold one label per row of features ({n}), got shape {labels.shape}."
        )
    return labels


def _run(model, batch) -> np.ndarray:
    """Run a Keras model (``predict``) or a plain callable on one batch and return a NumPy array."""
    if hasattr(model, "predict"):
        out = model.predict(batch, batch_size=len(batch), verbose=0)
    else:
        out = model(batch)
    if isinstance(out, (list, tuple, dict)):
        raise ValueError(
            "the model returned several outputs; pass a model with a single output (the latent)."
        )
    return np.asarray(out)


def _input_shape(model):
    """The shape one example must have for ``model`` (without the batch axis), or None if unknown."""
    inputs = getattr(model, "inputs", None)
    if not inputs:
        return None
    return tuple(inputs[0].shape[1:])


# --------------------------------------------------------------------------------------------------
# Latents in, images out
# --------------------------------------------------------------------------------------------------


def encode(encoder, x, batch_size: int = 500) -> np.ndarray:
    """Encode images in batches and return one flat latent vector per image.

    Args:
        encoder: a Keras encoder (``predict`` is used) or any callable mapping a batch of images to a
            batch of latents. A spatial latent (for example ``(N, 8, 8, 4)``) is flattened row-wise, the
            order ``Flatten`` uses, so it matches the shipped models' flat ``latent`` output.
        x: images ``(N, H, W, C)`` as the encoder takes them (pixels in [0, 1] for the course's models).
        batch_size: images per forward pass; the result depends on it only through float32 rounding.

    Returns:
        A float32 array ``(N, D)``, D = values in one latent.

    Raises:
        ValueError: ``x`` is empty or its image shape is not the one the encoder takes.
    """
    x = np.asarray(x)
    batch_size = _count("batch_size", batch_size)
    if x.ndim < 2 or len(x) == 0:
        raise ValueError(
            f"encode needs a batch of at least one image, shape (N, H, W, C); got shape {x.shape}."
        )
    expected = _input_shape(encoder)
    if expected is not None and (
        len(expected) != x.ndim - 1
        or any(e is not None and e != s for e, s in zip(expected, x.shape[1:]))
    ):
        raise ValueError(
            f"the encoder takes images of shape {expected}, but x holds images of shape {x.shape[1:]}."
        )
    parts = [_run(encoder, x[i : i + batch_size]) for i in range(0, len(x), batch_size)]
    return np.concatenate([p.reshape(len(p), -1) for p in parts]).astype(np.float32, copy=False)


def decode(decoder, z, batch_size: int = 500) -> np.ndarray:
    """Decode flat latent vectors in batches into images clipped to [0, 1].

    Args:
        decoder: a Keras decoder or a callable. When it has ``inputs`` (every Keras model does), each flat
            vector is reshaped to ``decoder.inputs[0].shape[1:]`` first, so a decoder that takes a spatial
            latent (8x8x4) gets one; the shipped decoders take the flat vector and reshape it themselves.
        z: latents ``(N, D)`` as :func:`encode` returns them (a single vector ``(D,)`` is one row).
        batch_size: latents per forward pass; the result depends on it only through float32 rounding.

    Returns:
        A float32 array of N images, ``(N, H, W, C)`` for the course's decoders, clipped to [0, 1].

    Raises:
        ValueError: ``z`` is empty, or D is not the number of values the decoder takes.
    """
    z = np.asarray(z, dtype=np.float32)
    batch_size = _count("batch_size", batch_size)
    if z.ndim == 1:
        z = z[None]
    z = _rows("z", z)
    expected = _input_shape(decoder)
    if expected is not None:
        if any(e is None for e in expected):
            raise ValueError(
                f"the decoder's input shape {expected} is not fixed, so a flat latent cannot be reshaped to it."
            )
        size = int(np.prod(expected))
        if z.shape[1] != size:
            raise ValueError(
                f"the decoder takes latents of shape {expected} ({size} values), but z has {z.shape[1]} values "
                f"per row; use the decoder that belongs to the encoder that made z."
            )
        z = z.reshape((len(z), *expected))
    parts = [_run(decoder, z[i : i + batch_size]) for i in range(0, len(z), batch_size)]
    return np.clip(np.concatenate(parts), 0.0, 1.0).astype(np.float32, copy=False)


# --------------------------------------------------------------------------------------------------
# How many dimensions are used?
# --------------------------------------------------------------------------------------------------


def variance_spectrum(z) -> np.ndarray:
    """The variance of each latent value over a set of latents, largest first.

    Args:
        z: latents ``(N, D)`` (or images ``(N, H, W, C)``, one variance per pixel value), N >= 2.

    Returns:
        A float64 array of D variances (``N - 1`` denominator), sorted in descending order. Its sum is the
        total variance, the same as the sum of :func:`pca_spectrum` of the same data.
    """
    z = _rows("z", z, min_rows=2)
    return np.sort(np.var(z, axis=0, dtype=np.float64, ddof=1))[::-1]


def pca_spectrum(features, chunk_size: int = 2048) -> np.ndarray:
    """The PCA spectrum: eigenvalues of the features' covariance matrix, largest first.

    Each eigenvalue is the variance along one principal axis, so the spectrum says how many *directions*
    (mixtures of dimensions) carry the variance, where :func:`variance_spectrum` looks at each dimension
    alone. The covariance is accumulated as ``X^T X`` over chunks of centred rows in float64, so 45,000
    CIFAR-10 images (3072 values each, 553 MB as float32) need only the D x D matrix (75 MB for pixels)
    and one chunk of rows on top of the input. The time grows with N x D^2: measured once on the course's
    2-core CPU while a training run used it, 45,000 x 256 latents took 3 s and 10,000 x 3072 pixel values
    31 s; for the pixel spectrum a subset of the images keeps it short.

    Args:
        features: ``(N, D)`` latents or ``(N, H, W, C)`` images (flattened to D = H*W*C values), N >= 2.
        chunk_size: rows converted to float64 at a time.

    Returns:
        A float64 array of D eigenvalues in descending order (``N - 1`` denominator, as ``np.cov``).
        The covariance is positive semi-definite, so tiny negative eigenvalues from rounding are set to 0.
    """
    x = _rows("features", features, min_rows=2)
    chunk_size = _count("chunk_size", chunk_size)
    mean = np.zeros(x.shape[1])
    for i in range(0, len(x), chunk_size):
        mean += x[i : i + chunk_size].sum(axis=0, dtype=np.float64)
    mean /= len(x)
    scatter = np.zeros((x.shape[1], x.shape[1]))
    for i in range(0, len(x), chunk_size):
        block = x[i : i + chunk_size].astype(np.float64) - mean
        scatter += block.T @ block
    eigenvalues = np.linalg.eigvalsh(scatter / (len(x) - 1))
    return np.clip(eigenvalues[::-1], 0.0, None)


def dims_for_fraction(spectrum, fraction: float = 0.9) -> int:
    """How many of the largest values of a spectrum are needed to reach ``fraction`` of its total.

    Example: for ``[5, 3, 1, 1]`` (total 10) the first two carry 80%, so ``fraction=0.8`` gives 2 and
    ``fraction=0.9`` gives 3.

    Args:
        spectrum: non-negative variances or eigenvalues (:func:`variance_spectrum`, :func:`pca_spectrum`);
            they are sorted largest first here, so the order they come in does not matter.
        fraction: the share of the total, in (0, 1].

    Returns:
        The smallest k such that the k largest values sum to at least ``fraction`` of the total.

    Raises:
        ValueError: the spectrum is empty, has a negative or non-finite value or sums to zero, or the
            fraction is outside (0, 1].
    """
    values = np.asarray(spectrum, dtype=np.float64)
    if values.ndim != 1 or values.size == 0:
        raise ValueError(
            f"spectrum must be a non-empty 1-D array of variances, got shape {values.shape}."
        )
    if not np.all(np.isfinite(values)) or np.any(values < 0):
        raise ValueError("spectrum must hold finite, non-negative variances.")
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], such as 0.9, got {fraction!r}.")
    total = values.sum()
    if total == 0:
        raise ValueError(
            "the spectrum sums to zero: the data does not vary, so no fraction of it can be carried."
        )
    shares = np.cumsum(np.sort(values)[::-1]) / total
    # a relative slack of 1e-12 so that fraction=1.0 (or an exact share) is not missed by rounding
    return int(min(np.searchsorted(shares, fraction - 1e-12) + 1, values.size))


# --------------------------------------------------------------------------------------------------
# A linear probe: what do the features know about the class?
# --------------------------------------------------------------------------------------------------


def linear_probe(
    train_features,
    train_labels,
    test_features,
    test_labels,
    max_iter: int = 200,
    C: float = 1.0,
    max_train: int | None = None,
    seed: int = 0,
) -> dict:
    """Train a linear classifier on frozen features and measure its test accuracy.

    The features are standardised (a ``StandardScaler`` fitted on the training rows only), then a
    multinomial logistic regression (scikit-learn, ``lbfgs``, L2 penalty ``C``) is fitted. A high test
    accuracy means the class can be read from the features by a single linear layer.

    lbfgs may stop at ``max_iter`` before its tolerance is met; the result then says ``converged=False``
    (the classifier is still a valid linear classifier). The fit uses one BLAS thread, and its time grows
    with rows x features x iterations: ``max_train`` caps the rows.

    Args:
        train_features, test_features: ``(N, D)`` arrays (images ``(N, H, W, C)`` are flattened).
        train_labels, test_labels: integer classes, one per row (``(N,)`` or ``(N, 1)``).
        max_iter: lbfgs iterations at most.
        C: inverse regularisation strength (smaller = stronger penalty).
        max_train: when set and smaller than the training set, fit on that many training rows drawn at
            random (without replacement) with ``seed``.
        seed: seeds that draw; the fit itself is deterministic.

    Returns:
        A dict with ``accuracy`` (test accuracy, a float in [0, 1]), ``train_accuracy``, ``converged``
        (False when lbfgs stopped at ``max_iter``), ``n_iter``, ``train_size`` and ``model`` (the fitted
        scikit-learn ``Pipeline``: scaler + classifier, ready for ``model.predict(features)``).

    Raises:
        ValueError: features and labels differ in length, train and test features in width, or the
            training labels hold fewer than two classes.
    """
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from threadpoolctl import threadpool_limits  # installed with scikit-learn

    x_train = _rows("train_features", train_features)
    x_test = _rows("test_features", test_features)
    y_train = _labels("train_labels", train_labels, len(x_train))
    y_test = _labels("test_labels", test_labels, len(x_test))
    if x_train.shape[1] != x_test.shape[1]:
        raise ValueError(
            f"train and test features must have the same width, got {x_train.shape[1]} and {x_test.shape[1]}."
        )
    max_iter = _count("max_iter", max_iter)
    if max_train is not None and _count("max_train", max_train) < len(x_train):
        keep = np.sort(
            np.random.default_rng(seed).choice(len(x_train), size=max_train, replace=False)
        )
        x_train, y_train = x_train[keep], y_train[keep]
    if len(np.unique(y_train)) < 2:
        raise ValueError("the training labels hold a single class; a probe needs at least two.")

    classifier = LogisticRegression(C=C, max_iter=max_iter, solver="lbfgs")
    model = make_pipeline(StandardScaler(), classifier)
    with (
        warnings.catch_warnings(record=True) as caught,
        threadpool_limits(limits=1, user_api="blas"),
    ):
        warnings.simplefilter("always", ConvergenceWarning)
        model.fit(x_train.astype(np.float32, copy=False), y_train)
    converged = not any(issubclass(w.category, ConvergenceWarning) for w in caught)
    for w in caught:  # pass on anything that is not the expected convergence notice
        if not issubclass(w.category, ConvergenceWarning):
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return {
        "accuracy": float(model.score(x_test.astype(np.float32, copy=False), y_test)),
        "train_accuracy": float(model.score(x_train.astype(np.float32, copy=False), y_train)),
        "converged": converged,
        "n_iter": int(np.max(classifier.n_iter_)),
        "train_size": len(x_train),
        "model": model,
    }


# --------------------------------------------------------------------------------------------------
# Nearest neighbours
# --------------------------------------------------------------------------------------------------


def _unit_rows(name: str, x: np.ndarray) -> np.ndarray:
    """Rows scaled to length 1 (float64), for the cosine metric; an all-zero row is an error."""
    x = x.astype(np.float64)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    if np.any(norms == 0):
        raise ValueError(
            f"{name} has an all-zero row, which has no direction: the cosine metric is undefined."
        )
    return x / norms


def nearest_neighbours(
    query, database, k: int = 5, metric: str = "euclidean", batch_size: int | None = None
) -> np.ndarray:
    """The exact k nearest rows of ``database`` for each row of ``query``, nearest first.

    Works for latents ``(N, D)`` and for images ``(N, H, W, C)`` (compared as flat pixel vectors).
    Distances are found with the fast expansion ``|q|^2 - 2 q.d + |d|^2``: matrix products over chunks
    of queries and of database rows, in float32 for float32 or uint8 data, so no block above about 64 MB
    is held. Every row that could be among the k nearest within that expansion's rounding error is then
    re-measured directly as ``sum((q - d)^2)`` in float64, so the result is exact: the same as sorting the
    brute-force distances, with ties broken by the smaller database index. A query that is itself in the
    database finds itself first (unless an identical row has a smaller index).

    Args:
        query: ``(Q, D)`` or ``(Q, H, W, C)``.
        database: ``(N, D)`` or ``(N, H, W, C)`` with the same number of values per row.
        k: neighbours per query, 1 <= k <= N.
        metric: ``"euclidean"``, or ``"cosine"`` (the angle between rows: the same ranking as euclidean
            distance between the rows scaled to length 1).
        batch_size: queries per chunk; None picks one that keeps the distance block near 64 MB.

    Returns:
        An int64 array ``(Q, k)`` of database indices.

    Raises:
        ValueError: rows of different widths, k outside 1..N, an unknown metric, or (cosine) a zero row.
    """
    q = _rows("query", query)
    db = _rows("database", database)
    if q.shape[1] != db.shape[1]:
        raise ValueError(
            f"query rows have {q.shape[1]} values but database rows have {db.shape[1]}; they must match."
        )
    k = _count("k", k)
    if k > len(db):
        raise ValueError(f"k={k} neighbours asked for, but the database holds only {len(db)} rows.")
    if metric == "cosine":
        q, db = _unit_rows("query", q), _unit_rows("database", db)
    elif metric != "euclidean":
        raise ValueError(f"metric must be 'euclidean' or 'cosine', got {metric!r}.")
    n, width = db.shape
    batch_size = (
        max(1, _BLOCK_VALUES // n) if batch_size is None else _count("batch_size", batch_size)
    )
    # The expansion runs in float32 when the data fits it exactly (float32 latents, uint8 pixels): no
    # float64 copy of a large database is made. The candidate margin below scales with its precision.
    work = np.result_type(q.dtype, db.dtype, np.float32)
    db_chunk = max(1, _BLOCK_VALUES // width)  # database rows converted at a time

    db_sq = np.empty(n, dtype=work)
    for j in range(0, n, db_chunk):
        block = db[j : j + db_chunk].astype(work, copy=False)
        db_sq[j : j + db_chunk] = np.einsum("ij,ij->i", block, block)
    # The expansion and the direct sum each stay within about (2D + 4) eps (|q|^2 + |d|^2) of the true
    # squared distance; a margin of twice that for both keeps every possible neighbour a candidate.
    slack = 2 * (4 * width + 16) * float(np.finfo(work).eps)
    result = np.empty((len(q), k), dtype=np.int64)
    for start in range(0, len(q), batch_size):
        qb = q[start : start + batch_size].astype(work, copy=False)
        q_sq = np.einsum("ij,ij->i", qb, qb)
        dist = np.empty((len(qb), n), dtype=work)
        for j in range(0, n, db_chunk):
            block = db[j : j + db_chunk].astype(work, copy=False)
            dist[:, j : j + db_chunk] = db_sq[j : j + db_chunk] - 2 * (qb @ block.T)
        dist += q_sq[:, None]
        kth = np.partition(dist, k - 1, axis=1)[:, k - 1].astype(np.float64)
        limit = kth + slack * (q_sq.astype(np.float64) + float(db_sq.max()))
        for row in range(len(qb)):
            candidates = np.flatnonzero(dist[row] <= limit[row])
            exact = np.sum(
                (db[candidates].astype(np.float64) - q[start + row].astype(np.float64)) ** 2, axis=1
            )
            result[start + row] = candidates[np.lexsort((candidates, exact))[:k]]
    return result


# --------------------------------------------------------------------------------------------------
# Interpolation
# --------------------------------------------------------------------------------------------------


def interpolate(a, b, steps: int) -> np.ndarray:
    """Points evenly spaced on the straight line from ``a`` to ``b``, both ends included.

    Args:
        a, b: arrays of the same shape (two latent vectors, two images, ...).
        steps: number of points, >= 2 (2 gives just ``a`` and ``b``).

    Returns:
        An array ``(steps, *a.shape)``: row 0 is ``a``, row ``steps - 1`` is ``b``, row i is
        ``(1 - t) a + t b`` with ``t = i / (steps - 1)``. Float32 for float32 or integer inputs
        (uint8 images), float64 for float64 inputs.
    """
    steps = _count("steps", steps, minimum=2)
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        raise ValueError(
            f"a and b must have the same shape to interpolate between them, got {a.shape} and {b.shape}."
        )
    dtype = np.result_type(a.dtype, b.dtype, np.float32)
    t = np.linspace(0.0, 1.0, steps).astype(dtype).reshape((steps,) + (1,) * a.ndim)
    return (1 - t) * a.astype(dtype) + t * b.astype(dtype)


def pixel_interpolation(img_a, img_b, steps: int = 8) -> np.ndarray:
    """Cross-fade two images pixel by pixel: the baseline a latent interpolation is compared with.

    Args:
        img_a, img_b: two images ``(H, W, C)`` in [0, 1].
        steps: images in the row, both ends included, >= 2.

    Returns:
        A float32 row of images ``(steps, H, W, C)``, from ``img_a`` to ``img_b``.
    """
    return interpolate(
        np.asarray(img_a, dtype=np.float32), np.asarray(img_b, dtype=np.float32), steps
    )


def latent_interpolation(encoder, decoder, img_a, img_b, steps: int = 8) -> np.ndarray:
    """Encode two images, walk in a straight line between their latents and decode every point.

    Args:
        encoder, decoder: a matching pair (see :func:`encode` and :func:`decode`).
        img_a, img_b: two images ``(H, W, C)`` in [0, 1], the same shape.
        steps: images in the row, both ends included, >= 2. The ends are the *reconstructions* of
            ``img_a`` and ``img_b``, not the images themselves.

    Returns:
        A float32 row of decoded images ``(steps, H, W, C)`` in [0, 1].
    """
    img_a, img_b = np.asarray(img_a), np.asarray(img_b)
    if img_a.shape != img_b.shape:
        raise ValueError(
            f"img_a and img_b must have the same shape, got {img_a.shape} and {img_b.shape}."
        )
    steps = _count("steps", steps, minimum=2)
    z = encode(encoder, np.stack([img_a, img_b]))
    return decode(decoder, interpolate(z[0], z[1], steps))


# --------------------------------------------------------------------------------------------------
# Generating: new latents, unusual inputs
# --------------------------------------------------------------------------------------------------


def sample_like(z, n: int, seed: int = 0) -> np.ndarray:
    """Draw ``n`` new latent vectors from a Gaussian with the mean and full covariance of ``z``.

    Decoding them shows whether the autoencoder's latent space is "filled" like a generative model's
    (it usually is not). The covariance is factored with ``eigh`` and negative eigenvalues (rounding) are
    set to 0, so a singular covariance (fewer latents than dimensions, or dead dimensions) works: the
    samples then stay in the subspace the latents span.

    Args:
        z: latents ``(N, D)``, N >= 2.
        n: vectors to draw, >= 1.
        seed: seed of the ``numpy.random.Generator``; the same seed gives the same vectors.

    Returns:
        A float32 array ``(n, D)``.
    """
    z = _rows("z", z, min_rows=2).astype(np.float64)
    n = _count("n", n)
    mean = z.mean(axis=0)
    eigenvalues, eigenvectors = np.linalg.eigh(
        np.cov(z, rowvar=False).reshape(z.shape[1], z.shape[1])
    )
    scale = eigenvectors * np.sqrt(np.clip(eigenvalues, 0.0, None))  # cov = scale @ scale.T
    noise = np.random.default_rng(seed).standard_normal((n, z.shape[1]))
    return (mean + noise @ scale.T).astype(np.float32)


def out_of_distribution_images(size: int = 32) -> dict[str, np.ndarray]:
    """A few synthetic images unlike any CIFAR-10 photograph, to feed to an autoencoder.

    Args:
        size: height and width in pixels, >= 1.

    Returns:
        A dict of float32 images ``(size, size, 3)`` in [0, 1], the same every call:

        - ``"noise"``: uniform random pixels (seed 0);
        - ``"flat"``: one flat colour (a saturated orange, 1.0, 0.5, 0.0);
        - ``"checkerboard"``: black and white squares of 4 x 4 pixels;
        - ``"gradient"``: red rising left to right, green rising top to bottom, blue 0.5.
    """
    size = _count("size", size)
    ramp = np.linspace(0.0, 1.0, size, dtype=np.float32)
    squares = ((np.arange(size)[:, None] // 4 + np.arange(size)[None, :] // 4) % 2).astype(
        np.float32
    )
    # red varies along a row (left to right), green down a column
    red, green = np.meshgrid(ramp, ramp)
    gradient = np.stack([red, green, np.full((size, size), 0.5, np.float32)], axis=-1)
    return {
        "noise": np.random.default_rng(0).random((size, size, 3), dtype=np.float32),
        "flat": np.broadcast_to(np.array([1.0, 0.5, 0.0], np.float32), (size, size, 3)).copy(),
        "checkerboard": np.repeat(squares[:, :, None], 3, axis=2),
        "gradient": gradient.astype(np.float32),
    }
