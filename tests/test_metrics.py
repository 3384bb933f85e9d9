"""MSE and PSNR against hand-computed values and known identities."""

import numpy as np
import pytest

from cae_utils import metrics


def test_constant_offset_by_hand():
    a = np.zeros((2, 4, 4, 3))
    b = a + 0.1  # every pixel off by 0.1: MSE 0.01, PSNR 10*log10(1/0.01) = 20 dB
    np.testing.assert_allclose(metrics.mse(a, b), [0.01, 0.01])
    np.testing.assert_allclose(metrics.psnr(a, b), [20.0, 20.0])


def test_identical_images_give_a_finite_ceiling():
    a = np.random.default_rng(0).random((3, 8, 8, 3))
    assert np.all(metrics.psnr(a, a) == 100.0)


def test_mean_and_pooled_psnr_differ_as_expected():
    a = np.zeros((2, 2, 2, 3))
    b = a.copy()
    b[0] += 0.1  # MSE 0.01 -> 20 dB
    b[1] += np.sqrt(0.001)  # MSE 0.001 -> 30 dB
    per_image = metrics.psnr(a, b)
    np.testing.assert_allclose(per_image, [20.0, 30.0])
    # pooled: 10*log10(1 / 0.0055) = 22.596 dB, below the mean of 25 dB
    assert metrics.pooled_psnr(metrics.mse(a, b)) == pytest.approx(10 * np.log10(1 / 0.0055))


def test_evaluate_runs_a_model_in_batches():
    class Halver:
        calls = 0

        def predict(self, x, verbose=0):
            Halver.calls += 1
            return x * 0.5

    # Image i is flat at 2 e_i, so its error is e_i everywhere: MSE e_i**2, PSNR -20 log10(e_i).
    errors = np.array([0.1, 0.01, 0.001, 0.1, 0.01])
    x = np.ones((5, 2, 2, 3)) * 2 * errors[:, None, None, None]
    scores = metrics.evaluate(Halver(), x, batch_size=2)
    assert Halver.calls == 3
    np.testing.assert_allclose(scores["per_image_psnr"], [20, 40, 60, 20, 40])
    np.testing.assert_allclose(scores["per_image_mse"], [1e-2, 1e-4, 1e-6, 1e-2, 1e-4])
    assert scores["mse"] == pytest.approx(0.0040402)  # (2e-2 + 2e-4 + 1e-6) / 5
    assert scores["psnr"] == pytest.approx(36.0)  # (20 + 40 + 60 + 20 + 40) / 5
    assert scores["pooled_psnr"] == pytest.approx(10 * np.log10(1 / 0.0040402))  # 23.94 dB


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError, match="same shape"):
        metrics.psnr(np.zeros((1, 4, 4, 3)), np.zeros((1, 4, 4, 1)))


def test_keras_metric_matches_numpy():
    rng = np.random.default_rng(1)
    a = rng.random((4, 8, 8, 3)).astype("float32")
    b = np.clip(a + rng.normal(0, 0.05, a.shape), 0, 1).astype("float32")
    np.testing.assert_allclose(np.asarray(metrics.psnr_metric(a, b)), metrics.psnr(a, b), rtol=1e-4)


# --- SSIM, summaries and sizes --------------------------------------------------------------------


def random_pair(seed=0, n=4, size=32, noise=0.1):
    rng = np.random.default_rng(seed)
    a = rng.random((n, size, size, 3))
    return a, np.clip(a + rng.normal(0, noise, a.shape), 0, 1)


def skimage_ssim(a, b):
    """SSIM of each image pair by scikit-image, with the settings of Wang et al. (2004)."""
    skimage_metrics = pytest.importorskip("skimage.metrics")
    return [
        skimage_metrics.structural_similarity(
            x,
            y,
            channel_axis=-1,
            data_range=1.0,
            gaussian_weights=True,
            sigma=1.5,
            use_sample_covariance=False,
        )
        for x, y in zip(a, b)
    ]


def test_one_pixel_change_by_hand():
    a = np.zeros((1, 4, 4, 3))
    b = a.copy()
    b[0, 1, 2, 0] = 0.48  # one of 48 values off by 0.48: MSE 0.48**2 / 48 = 0.0048
    np.testing.assert_allclose(metrics.mse(a, b), [0.0048])
    np.testing.assert_allclose(metrics.psnr(a, b), [10 * np.log10(1 / 0.0048)])


def test_ssim_of_identical_images_is_one_and_ssim_is_symmetric():
    a, b = random_pair()
    np.testing.assert_allclose(metrics.ssim(a, a), 1.0, atol=1e-12)
    np.testing.assert_allclose(metrics.ssim(a, b), metrics.ssim(b, a), atol=1e-15)
    assert metrics.ssim(a, b).dtype == np.float64 and np.all(metrics.ssim(a, b) < 1)


def test_ssim_of_flat_images_by_hand():
    # Flat images have no variance, so SSIM = (2 mu_a mu_b + C1) / (mu_a^2 + mu_b^2 + C1).
    a, b = np.full((1, 11, 11, 3), 0.2), np.full((1, 11, 11, 3), 0.6)
    c1 = 0.01**2
    expected = (2 * 0.2 * 0.6 + c1) / (0.2**2 + 0.6**2 + c1)
    np.testing.assert_allclose(metrics.ssim(a, b), [expected], rtol=1e-12)


def test_ssim_matches_scikit_image():
    for size, noise in ((32, 0.1), (32, 0.02), (16, 0.3)):
        a, b = random_pair(seed=size, size=size, noise=noise)
        np.testing.assert_allclose(metrics.ssim(a, b), skimage_ssim(a, b), rtol=0, atol=1e-9)


def test_ssim_matches_tensorflow():
    tf = pytest.importorskip("tensorflow")
    a, b = random_pair(seed=3)
    expected = tf.image.ssim(a.astype("float32"), b.astype("float32"), max_val=1.0).numpy()
    np.testing.assert_allclose(metrics.ssim(a, b), expected, atol=1e-5)


def test_ssim_needs_the_whole_window():
    with pytest.raises(ValueError, match="at least 11x11"):
        metrics.ssim(np.zeros((1, 10, 32, 3)), np.zeros((1, 10, 32, 3)))
    with pytest.raises(ValueError, match="same shape"):
        metrics.ssim(np.zeros((1, 32, 32, 3)), np.zeros((2, 32, 32, 3)))


def test_summarize_in_batches_matches_numpy_and_scikit_image():
    rng = np.random.default_rng(0)
    a = rng.random((5, 16, 16, 3))
    noise = np.array([0.01, 0.02, 0.05, 0.1, 0.2])[:, None, None, None]  # PSNRs far apart
    b = np.clip(a + noise * rng.standard_normal(a.shape), 0, 1)
    scores = metrics.summarize(a.astype("float32"), b.astype("float32"), batch_size=2)
    a32, b32 = a.astype("float32").astype(np.float64), b.astype("float32").astype(np.float64)
    per_mse = ((a32 - b32) ** 2).mean(axis=(1, 2, 3))
    per_psnr = 10 * np.log10(1 / per_mse)
    per_ssim = skimage_ssim(a32, b32)
    np.testing.assert_allclose(scores["per_image_mse"], per_mse, rtol=1e-12)
    np.testing.assert_allclose(scores["per_image_psnr"], per_psnr, rtol=1e-12)
    np.testing.assert_allclose(scores["per_image_ssim"], per_ssim, atol=1e-9)
    assert scores["mse"] == pytest.approx(per_mse.mean(), rel=1e-12)
    assert scores["psnr"] == pytest.approx(per_psnr.mean(), rel=1e-12)  # mean of the PSNRs...
    assert scores["pooled_psnr"] == pytest.approx(10 * np.log10(1 / per_mse.mean()), rel=1e-12)
    assert scores["pooled_psnr"] < scores["psnr"] - 1  # ...well above the PSNR of the mean MSE
    assert scores["ssim"] == pytest.approx(np.mean(per_ssim), abs=1e-9)


def test_summarize_without_ssim_and_its_errors():
    a = np.zeros((3, 2, 2, 3))
    scores = metrics.summarize(a, a + 0.1, with_ssim=False)
    assert "ssim" not in scores and scores["psnr"] == pytest.approx(20.0)
    with pytest.raises(ValueError, match="same shape"):
        metrics.summarize(a, a[:2])
    with pytest.raises(ValueError, match="no images"):
        metrics.summarize(a[:0], a[:0])
    with pytest.raises(ValueError, match="batch_size"):
        metrics.summarize(a, a, batch_size=0)


def test_evaluate_can_add_ssim():
    class Darkener:
        def predict(self, x, verbose=0):
            return x * 0.8

    x = np.random.default_rng(0).random((3, 16, 16, 3))
    scores = metrics.evaluate(Darkener(), x, batch_size=2, with_ssim=True)
    expected = skimage_ssim(x, x * 0.8)
    np.testing.assert_allclose(scores["per_image_ssim"], expected, atol=1e-9)
    assert scores["ssim"] == pytest.approx(np.mean(expected), abs=1e-9)
    assert np.all(scores["per_image_ssim"] < 0.99)  # not the 1.0 of a perfect copy


def test_payload_bpp_by_hand():
    assert metrics.payload_bpp(256, (32, 32, 3)) == 2.0  # 2,048 bits over 1,024 pixels
    np.testing.assert_allclose(
        metrics.payload_bpp(np.array([128, 512, 0]), (32, 32)), [1.0, 4.0, 0.0]
    )
    assert metrics.payload_bpp(3, (2, 3)) == 4.0
    with pytest.raises(ValueError, match="non-negative"):
        metrics.payload_bpp([-1], (32, 32))
    with pytest.raises(ValueError, match="image_shape"):
        metrics.payload_bpp(10, (32,))


def test_detail_by_hand():
    flat = np.full((1, 4, 4, 3), 0.3)
    board = (np.indices((4, 4)).sum(axis=0) % 2)[None, :, :, None] * np.ones(3)
    stripes = np.zeros((1, 4, 4, 3))
    stripes[:, :, 1::2] = 0.5  # vertical stripes: across differences 0.5, down differences 0
    values = metrics.detail(np.concatenate([flat, board, stripes]))
    assert np.allclose(values, [0.0, 1.0, 0.25])
    with pytest.raises(ValueError, match="at least 2x2"):
        metrics.detail(np.zeros((1, 1, 4, 3)))
