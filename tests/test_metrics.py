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

    x = np.full((5, 2, 2, 3), 0.2)
    scores = metrics.evaluate(Halver(), x, batch_size=2)
    assert Halver.calls == 3
    assert scores["mse"] == pytest.approx(0.01)
    assert scores["psnr"] == pytest.approx(20.0) and scores["pooled_psnr"] == pytest.approx(20.0)
    assert scores["per_image_psnr"].shape == (5,)


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError, match="same shape"):
        metrics.psnr(np.zeros((1, 4, 4, 3)), np.zeros((1, 4, 4, 1)))


def test_keras_metric_matches_numpy():
    rng = np.random.default_rng(1)
    a = rng.random((4, 8, 8, 3)).astype("float32")
    b = np.clip(a + rng.normal(0, 0.05, a.shape), 0, 1).astype("float32")
    np.testing.assert_allclose(np.asarray(metrics.psnr_metric(a, b)), metrics.psnr(a, b), rtol=1e-4)
