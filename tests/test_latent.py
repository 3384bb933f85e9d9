"""Tests for cae_utils.latent on tiny synthetic data: shapes, known answers, brute-force references."""

import warnings

import numpy as np
import pytest

from cae_utils import latent


def _rng(seed=0):
    return np.random.default_rng(seed)


# --------------------------------------------------------------------------------------------------
# encode / decode with a tiny untrained Keras pair whose latent is spatial (2x2x4 = 16 values)
# --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_pair():
    import keras
    from keras import layers

    keras.utils.set_random_seed(0)
    image = keras.Input(shape=(8, 8, 3))
    # (N, 2, 2, 4), not flattened
    encoder = keras.Model(image, layers.Conv2D(4, 4, strides=4)(image))
    code = keras.Input(shape=(2, 2, 4))
    decoder = keras.Model(code, layers.Conv2DTranspose(3, 4, strides=4, activation="sigmoid")(code))
    return encoder, decoder


def _images(n=7, seed=0):
    return _rng(seed).random((n, 8, 8, 3), dtype=np.float32)


def test_encode_flattens_a_spatial_latent_whatever_the_batch_size(tiny_pair):
    encoder, _ = tiny_pair
    x = _images()
    z = latent.encode(encoder, x, batch_size=3)
    assert z.shape == (7, 16) and z.dtype == np.float32
    # row-major flattening, the order keras' Flatten uses
    np.testing.assert_allclose(
        z, encoder.predict(x, verbose=0).reshape(7, -1), rtol=1e-6, atol=1e-6
    )
    np.testing.assert_allclose(z, latent.encode(encoder, x, batch_size=500), rtol=1e-6, atol=1e-6)


def test_decode_reshapes_flat_latents_to_the_decoder_input(tiny_pair):
    encoder, decoder = tiny_pair
    z = latent.encode(encoder, _images())
    images = latent.decode(decoder, z, batch_size=3)
    assert images.shape == (7, 8, 8, 3) and images.dtype == np.float32
    assert images.min() >= 0 and images.max() <= 1
    np.testing.assert_allclose(
        images, latent.decode(decoder, z, batch_size=500), rtol=1e-6, atol=1e-6
    )
    np.testing.assert_allclose(
        images, decoder.predict(z.reshape(7, 2, 2, 4), verbose=0), rtol=1e-6, atol=1e-6
    )
    assert latent.decode(decoder, z[0]).shape == (1, 8, 8, 3)  # one vector is one row


def test_decode_clips_to_the_unit_range():
    def overshooting_decoder(z):  # a plain callable: no reshape, values far outside [0, 1]
        return np.repeat(z[:, None, None, :3] * 10, 2, axis=1)

    z = _rng().standard_normal((4, 3))
    images = latent.decode(overshooting_decoder, z, batch_size=2)
    assert images.shape == (4, 2, 1, 3)
    assert images.min() == 0.0 and images.max() == 1.0
    # each row from its own latent, clipped: 10 z for |z| < 0.1, else 0 or 1
    expected = np.clip(np.repeat(10 * z[:, None, None, :], 2, axis=1), 0, 1)
    np.testing.assert_allclose(images, expected, rtol=1e-6)


def test_encode_and_decode_refuse_mismatched_shapes(tiny_pair):
    encoder, decoder = tiny_pair
    with pytest.raises(ValueError, match=r"takes images of shape \(8, 8, 3\)"):
        latent.encode(encoder, np.zeros((2, 4, 4, 3), np.float32))
    with pytest.raises(ValueError, match="at least one image"):
        latent.encode(encoder, np.zeros((0, 8, 8, 3), np.float32))
    with pytest.raises(ValueError, match=r"\(2, 2, 4\) \(16 values\), but z has 15"):
        latent.decode(decoder, np.zeros((2, 15), np.float32))


def test_latent_interpolation_runs_between_the_reconstructions(tiny_pair):
    encoder, decoder = tiny_pair
    a, b = _images(2)
    row = latent.latent_interpolation(encoder, decoder, a, b, steps=5)
    assert row.shape == (5, 8, 8, 3) and row.dtype == np.float32
    # by Keras directly: the latents at t = 0, 1/4, 1/2, 3/4, 1 of the way from a's to b's, decoded
    z_a, z_b = encoder.predict(np.stack([a, b]), verbose=0)
    t = np.array([0, 0.25, 0.5, 0.75, 1])[:, None, None, None]
    expected = decoder.predict((1 - t) * z_a + t * z_b, verbose=0)
    np.testing.assert_allclose(row, expected, rtol=1e-5, atol=1e-6)
    pixels = latent.pixel_interpolation(a, b, steps=5)
    assert pixels.shape == (5, 8, 8, 3) and pixels.dtype == np.float32
    np.testing.assert_array_equal(pixels[0], a)
    np.testing.assert_allclose(pixels[1], 0.75 * a + 0.25 * b, rtol=1e-6)
    np.testing.assert_array_equal(pixels[-1], b)


# --------------------------------------------------------------------------------------------------
# Spectra
# --------------------------------------------------------------------------------------------------


def test_variance_spectrum_is_sorted_and_sums_to_the_total_variance():
    z = _rng().standard_normal((200, 6)) * np.array([0.1, 3.0, 1.0, 0.0, 2.0, 0.5])
    spectrum = latent.variance_spectrum(z)
    assert spectrum.shape == (6,) and spectrum.dtype == np.float64
    assert np.all(np.diff(spectrum) <= 0) and spectrum[-1] == 0.0
    assert spectrum.sum() == pytest.approx(np.trace(np.cov(z, rowvar=False)))
    # each value is one column's own variance (the diagonal of np.cov), not a PCA eigenvalue
    np.testing.assert_allclose(spectrum, np.sort(np.diag(np.cov(z, rowvar=False)))[::-1])


def test_dims_for_fraction_by_hand():
    spectrum = [1, 5, 1, 3]  # sorted: 5, 3, 1, 1 -> shares 0.5, 0.8, 0.9, 1.0
    assert latent.dims_for_fraction(spectrum, 0.5) == 1
    assert latent.dims_for_fraction(spectrum, 0.8) == 2
    assert latent.dims_for_fraction(spectrum, 0.85) == 3
    assert latent.dims_for_fraction(spectrum, 0.9) == 3
    assert latent.dims_for_fraction(spectrum, 1.0) == 4
    assert latent.dims_for_fraction([0.7, 0.2, 0.1]) == 2
    for bad, fraction in [
        ([], 0.9),
        ([1, -1], 0.9),
        ([0, 0], 0.9),
        ([1, np.nan], 0.9),
        ([1, 2], 0),
        ([1, 2], 1.5),
    ]:
        with pytest.raises(ValueError):
            latent.dims_for_fraction(bad, fraction)


def test_pca_spectrum_matches_numpy_in_chunks():
    rng = _rng(1)
    x = rng.standard_normal((50, 5)) @ rng.standard_normal((5, 5)) + 3.0  # correlated, off-centre
    spectrum = latent.pca_spectrum(x.astype(np.float32), chunk_size=7)
    assert spectrum.shape == (5,) and spectrum.dtype == np.float64
    np.testing.assert_allclose(
        spectrum, np.linalg.eigvalsh(np.cov(x, rowvar=False))[::-1], rtol=1e-5
    )
    assert spectrum.sum() == pytest.approx(latent.variance_spectrum(x).sum(), rel=1e-5)


def test_pca_spectrum_of_images_with_fewer_images_than_pixels():
    images = _rng(2).random((10, 4, 4, 3))  # 48 pixel values, rank at most 9
    spectrum = latent.pca_spectrum(images, chunk_size=3)
    assert spectrum.shape == (48,) and np.all(spectrum >= 0)
    np.testing.assert_allclose(spectrum[9:], 0, atol=1e-12)
    expected = np.linalg.eigvalsh(np.cov(images.reshape(10, -1), rowvar=False))[::-1]
    np.testing.assert_allclose(spectrum[:9], expected[:9], rtol=1e-8)
    assert latent.dims_for_fraction(spectrum, 1.0) <= 9
    with pytest.raises(ValueError, match="at least 2 rows"):
        latent.pca_spectrum(images[:1])


# --------------------------------------------------------------------------------------------------
# Linear probe
# --------------------------------------------------------------------------------------------------


def _clusters(n, seed, spread=0.3):
    """10 well-separated Gaussian clusters in 16 dimensions, one per class."""
    rng = _rng(seed)
    centres = _rng(99).standard_normal((10, 16)) * 5
    labels = rng.integers(0, 10, n)
    return centres[labels] + spread * rng.standard_normal((n, 16)), labels


def test_linear_probe_reads_separable_classes():
    x_train, y_train = _clusters(500, seed=0)
    x_test, y_test = _clusters(300, seed=1)
    result = latent.linear_probe(x_train, y_train, x_test, y_test)
    assert result["accuracy"] == 1.0 and result["train_accuracy"] == 1.0
    assert result["train_size"] == 500 and result["converged"]
    np.testing.assert_array_equal(result["model"].predict(x_test), y_test)


def test_linear_probe_is_at_chance_on_random_labels():
    rng = _rng(3)
    x_train, x_test = rng.standard_normal((2000, 20)), rng.standard_normal((2000, 20))
    y_train, y_test = rng.integers(0, 10, 2000), rng.integers(0, 10, 2000)
    result = latent.linear_probe(x_train, y_train, x_test, y_test)
    assert abs(result["accuracy"] - 0.1) < 0.04  # seeded: deterministic; chance is 0.1 +- 0.007


def test_linear_probe_subsamples_and_reports_non_convergence_without_warning():
    x_train, y_train = _clusters(500, seed=0, spread=3.0)
    x_test, y_test = _clusters(100, seed=1, spread=3.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a ConvergenceWarning escaping would fail the test
        result = latent.linear_probe(
            x_train, y_train[:, None], x_test, y_test, max_iter=1, max_train=200
        )
    assert result["train_size"] == 200 and result["n_iter"] == 1 and not result["converged"]
    again = latent.linear_probe(x_train, y_train, x_test, y_test, max_iter=1, max_train=200)
    assert again["accuracy"] == result["accuracy"]  # the same seed draws the same subset


def test_linear_probe_refuses_bad_input():
    x, y = _clusters(40, seed=0)
    with pytest.raises(ValueError, match="one label per row"):
        latent.linear_probe(x, y[:-1], x, y)
    with pytest.raises(ValueError, match="same width"):
        latent.linear_probe(x, y, x[:, :5], y)
    with pytest.raises(ValueError, match="single class"):
        latent.linear_probe(x, np.zeros(40, int), x, y)


# --------------------------------------------------------------------------------------------------
# Nearest neighbours
# --------------------------------------------------------------------------------------------------


def _brute_force(query, database, k):
    q, d = (
        query.reshape(len(query), -1).astype(np.float64),
        database.reshape(len(database), -1).astype(np.float64),
    )
    distances = ((q[:, None, :] - d[None, :, :]) ** 2).sum(axis=2)
    return np.argsort(distances, axis=1, kind="stable")[:, :k]


@pytest.mark.parametrize("batch_size", [None, 1, 7])
def test_nearest_neighbours_equal_brute_force(batch_size):
    rng = _rng(4)
    query, database = rng.standard_normal((30, 5)), rng.standard_normal((50, 5))
    found = latent.nearest_neighbours(query, database, k=4, batch_size=batch_size)
    assert found.shape == (30, 4) and found.dtype == np.int64
    np.testing.assert_array_equal(found, _brute_force(query, database, 4))


def test_nearest_neighbours_of_images_and_cosine():
    rng = _rng(5)
    images = rng.random((40, 4, 4, 3), dtype=np.float32)
    found = latent.nearest_neighbours(images[10:20], images, k=3)
    np.testing.assert_array_equal(found[:, 0], np.arange(10, 20))  # each image finds itself first
    np.testing.assert_array_equal(found, _brute_force(images[10:20], images, 3))
    query, database = rng.standard_normal((8, 6)), rng.standard_normal((25, 6))
    unit = lambda a: a / np.linalg.norm(a, axis=1, keepdims=True)  # noqa: E731
    # length does not matter
    found = latent.nearest_neighbours(query * 7.0, database, k=5, metric="cosine")
    np.testing.assert_array_equal(found, _brute_force(unit(query), unit(database), 5))


def test_nearest_neighbours_break_ties_by_index():
    rng = _rng(6)
    a, b = rng.random(3072), rng.random(3072)  # pixel-sized rows, where rounding is largest
    database = np.stack([b, a, b, a, a, b, a]).astype(np.float32)
    found = latent.nearest_neighbours(
        np.stack([a, b]).astype(np.float32), database, k=4, batch_size=1
    )
    np.testing.assert_array_equal(found, [[1, 3, 4, 6], [0, 2, 5, 1]])


def test_nearest_neighbours_refuse_bad_input():
    x = _rng().standard_normal((5, 3))
    with pytest.raises(ValueError, match="only 5 rows"):
        latent.nearest_neighbours(x, x, k=6)
    with pytest.raises(ValueError, match="k must be"):
        latent.nearest_neighbours(x, x, k=0)
    with pytest.raises(ValueError, match="must match"):
        latent.nearest_neighbours(x[:, :2], x, k=1)
    with pytest.raises(ValueError, match="metric"):
        latent.nearest_neighbours(x, x, k=1, metric="manhattan")
    with pytest.raises(ValueError, match="all-zero row"):
        latent.nearest_neighbours(x, np.vstack([x, np.zeros(3)]), k=1, metric="cosine")


# --------------------------------------------------------------------------------------------------
# Interpolation
# --------------------------------------------------------------------------------------------------


def test_interpolate_ends_and_midpoint():
    rng = _rng(7)
    a, b = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    path = latent.interpolate(a, b, 5)
    assert path.shape == (5, 3, 4) and path.dtype == np.float64
    np.testing.assert_array_equal(path[0], a)
    np.testing.assert_array_equal(path[-1], b)
    np.testing.assert_allclose(path[2], (a + b) / 2)
    np.testing.assert_allclose(path[1], 0.75 * a + 0.25 * b)  # evenly spaced, not eased
    images = latent.interpolate(np.zeros((2, 2, 3), np.uint8), np.full((2, 2, 3), 255, np.uint8), 2)
    assert images.dtype == np.float32 and images.max() == 255


def test_interpolate_refuses_bad_input():
    with pytest.raises(ValueError, match="steps must be"):
        latent.interpolate(np.zeros(3), np.ones(3), 1)
    with pytest.raises(ValueError, match="same shape"):
        latent.interpolate(np.zeros(3), np.ones(4), 3)


# --------------------------------------------------------------------------------------------------
# Sampling and out-of-distribution images
# --------------------------------------------------------------------------------------------------


def test_sample_like_matches_mean_and_covariance():
    rng = _rng(8)
    z = rng.standard_normal((500, 4)) @ rng.standard_normal((4, 4)) + np.array(
        [1.0, -2.0, 0.0, 5.0]
    )
    samples = latent.sample_like(z, 20000, seed=0)
    assert samples.shape == (20000, 4) and samples.dtype == np.float32
    np.testing.assert_allclose(samples.mean(axis=0), z.mean(axis=0), atol=0.1)
    cov = np.cov(z, rowvar=False)
    np.testing.assert_allclose(np.cov(samples, rowvar=False), cov, atol=0.1 * np.abs(cov).max())
    np.testing.assert_array_equal(samples[:5], latent.sample_like(z, 5, seed=0))  # seeded
    assert not np.array_equal(samples[:5], latent.sample_like(z, 5, seed=1))


def test_sample_like_with_a_singular_covariance():
    rng = _rng(9)
    basis = rng.standard_normal((2, 6))
    z = rng.standard_normal((50, 2)) @ basis  # rank 2 in 6 dimensions, one latent dimension dead
    z[:, 3] = 0.0
    samples = latent.sample_like(z, 1000, seed=0).astype(np.float64)
    assert np.all(np.isfinite(samples))
    # the samples stay in the plane the latents span
    coefficients, *_ = np.linalg.lstsq(z.T, samples.T, rcond=None)
    np.testing.assert_allclose(z.T @ coefficients, samples.T, atol=1e-4)
    assert latent.sample_like(z[:3], 4, seed=0).shape == (4, 6)  # fewer latents than dimensions
    with pytest.raises(ValueError, match="n must be"):
        latent.sample_like(z, 0)


def test_out_of_distribution_images():
    images = latent.out_of_distribution_images()
    assert set(images) >= {"noise", "flat", "checkerboard", "gradient"}
    for name, image in images.items():
        assert image.shape == (32, 32, 3) and image.dtype == np.float32, name
        assert image.min() >= 0 and image.max() <= 1, name
        # deterministic
        np.testing.assert_array_equal(image, latent.out_of_distribution_images()[name])
    assert (images["flat"] == [1.0, 0.5, 0.0]).all()  # the documented orange
    ramp = np.arange(32) / 31
    # red rises left to right (along a row), green top to bottom (down a column), blue 0.5
    np.testing.assert_allclose(images["gradient"][:, :, 0], np.tile(ramp, (32, 1)), atol=1e-7)
    np.testing.assert_allclose(
        images["gradient"][:, :, 1], np.tile(ramp[:, None], (1, 32)), atol=1e-7
    )
    assert (images["gradient"][:, :, 2] == 0.5).all()
    board = images["checkerboard"][:, :, 0]
    assert board[0, 0] != board[0, 4] and board[0, 0] == board[0, 3] == board[4, 4] != board[4, 0]
    assert np.unique(images["noise"]).size > 1000
    assert latent.out_of_distribution_images(size=16)["gradient"].shape == (16, 16, 3)
