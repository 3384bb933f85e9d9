"""The classical baselines on tiny synthetic images: honest sizes, exact PCA cases, clear input errors."""

import io

import numpy as np
import pytest
from PIL import Image
from test_metrics import skimage_ssim  # scikit-image SSIM with the settings of Wang et al.

from cae_utils import baselines, metrics


def smooth_images(n=3, size=32):
    """Smooth colour gradients with a little texture: JPEG and WebP behave on them as on photos."""
    yy, xx = np.mgrid[0:size, 0:size] / (size - 1)
    images = []
    for k in range(n):
        r = 0.5 + 0.4 * np.sin(2 * np.pi * (xx + k / n))
        g = yy
        b = 0.5 + 0.3 * np.cos(2 * np.pi * (xx * yy + 0.1 * k))
        images.append(np.stack([r, g, b], axis=-1))
    return np.round(np.stack(images) * 255).astype(np.float32) / 255  # 8-bit exact, like CIFAR-10


# --- JPEG and WebP --------------------------------------------------------------------------------


@pytest.mark.parametrize("coder", [baselines.jpeg, baselines.webp])
def test_codecs_return_float_images_and_sizes(coder):
    x = smooth_images()
    encoded = coder(x, 50)
    assert encoded.reconstructions.shape == x.shape and encoded.reconstructions.dtype == np.float32
    assert 0 <= encoded.reconstructions.min() and encoded.reconstructions.max() <= 1
    assert encoded.n_bytes.shape == (3,) and encoded.n_bytes.dtype == np.int64
    # uint8 input gives the same result
    same = coder(np.round(x * 255).astype(np.uint8), 50)
    np.testing.assert_array_equal(same.reconstructions, encoded.reconstructions)
    np.testing.assert_array_equal(same.n_bytes, encoded.n_bytes)


def encode_by_hand(image, fmt, **options):
    buffer = io.BytesIO()
    Image.fromarray(np.round(image * 255).astype(np.uint8)).save(buffer, fmt, **options)
    data = buffer.getvalue()
    return data, np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def test_jpeg_sizes_are_the_real_file_sizes():
    x = smooth_images()
    encoded = baselines.jpeg(x, 75)
    data, pixels = encode_by_hand(x[1], "JPEG", quality=75, optimize=True)
    assert encoded.n_bytes[1] == len(data)
    np.testing.assert_array_equal(encoded.reconstructions[1], pixels / np.float32(255))
    # without the header: the bytes between the end of the SOS segment and the final EOI marker
    sos = data.index(b"\xff\xda")
    scan_start = sos + 2 + int.from_bytes(data[sos + 2 : sos + 4], "big")
    assert data.endswith(b"\xff\xd9")
    assert encoded.n_bytes_no_header[1] == len(data) - scan_start - 2
    assert np.all(encoded.n_bytes_no_header < encoded.n_bytes)


def test_webp_sizes_are_the_real_file_sizes():
    x = smooth_images()
    encoded = baselines.webp(x, 50)
    data, pixels = encode_by_hand(x[2], "WEBP", quality=50, method=6)
    assert data[:4] == b"RIFF" and encoded.n_bytes[2] == len(data)
    np.testing.assert_array_equal(encoded.reconstructions[2], pixels / np.float32(255))
    assert encoded.n_bytes_no_header is None


@pytest.mark.parametrize("coder", [baselines.jpeg, baselines.webp])
def test_higher_quality_costs_more_bytes_and_gives_higher_psnr(coder):
    x = smooth_images(n=1)
    low, high = coder(x, 10), coder(x, 90)
    assert high.n_bytes[0] > low.n_bytes[0]
    assert metrics.psnr(x, high.reconstructions)[0] > metrics.psnr(x, low.reconstructions)[0] + 3


@pytest.mark.parametrize("coder", [baselines.jpeg, baselines.webp])
def test_codec_input_errors(coder):
    x = smooth_images(n=1)
    with pytest.raises(ValueError, match=r"\(N, H, W, 3\)"):
        coder(x[0], 50)
    with pytest.raises(ValueError, match=r"\(N, H, W, 3\)"):
        coder(x[..., :1], 50)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        coder(x * 255, 50)
    with pytest.raises(ValueError, match="uint8"):
        coder(x.astype(np.int32), 50)
    for quality in (0, 101, 50.5, True):
        with pytest.raises(ValueError, match="quality"):
            coder(x, quality)


# --- PCA ------------------------------------------------------------------------------------------


def test_pca_with_all_components_reconstructs_exactly():
    x = np.random.default_rng(0).random((40, 4, 4, 3)).astype(np.float32)
    pca = baselines.fit_pca(x, 48, chunk_size=7)
    np.testing.assert_allclose(pca.components @ pca.components.T, np.eye(48), atol=1e-10)
    encoded = baselines.pca_reconstruct(pca, x)
    np.testing.assert_allclose(encoded.reconstructions, x, atol=1e-5)
    assert np.all(encoded.n_bytes == 4 * 48)  # float32 coefficients


def test_pca_finds_a_subspace_and_its_variances():
    rng = np.random.default_rng(1)
    basis = np.linalg.qr(rng.normal(size=(48, 3)))[0].T  # 3 orthonormal directions in 48 dimensions
    coefs = rng.normal(size=(200, 3)) * [0.1, 0.05, 0.02]
    x = (0.5 + coefs @ basis).reshape(200, 4, 4, 3)
    assert 0 <= x.min() and x.max() <= 1
    pca = baselines.fit_pca(x, 3)
    encoded = baselines.pca_reconstruct(pca, x)
    np.testing.assert_allclose(encoded.reconstructions, x, atol=1e-6)
    # the variances along the components are the eigenvalues of the coefficients' covariance
    np.testing.assert_allclose(
        pca.variances, np.linalg.eigvalsh(np.cov(coefs.T, bias=True))[::-1], rtol=1e-8
    )
    two = baselines.pca_truncate(pca, 2)
    assert two.n_components == 2
    # dropping the third component leaves exactly its variance, spread over the 48 values of an image
    dropped = metrics.mse(x, baselines.pca_reconstruct(two, x).reconstructions).mean()
    assert dropped == pytest.approx(pca.variances[2] / 48, rel=1e-4)


def test_pca_matches_scikit_learn_for_uint8_and_float_input():
    decomposition = pytest.importorskip("sklearn.decomposition")
    x8 = np.random.default_rng(2).integers(0, 256, (30, 4, 4, 3), dtype=np.uint8)
    rows = x8.reshape(30, -1) / 255.0  # the pixel values in [0, 1], float64
    reference = decomposition.PCA(5, svd_solver="full").fit(rows)
    for x in (x8, x8.astype(np.float32) / 255):
        pca = baselines.fit_pca(x, 5)
        np.testing.assert_allclose(pca.mean, reference.mean_, atol=1e-7)
        # the same directions, up to sign
        overlap = np.abs(np.sum(pca.components * reference.components_, axis=1))
        np.testing.assert_allclose(overlap, 1.0, atol=1e-6)
        # scikit-learn divides by N - 1, fit_pca by N
        np.testing.assert_allclose(
            pca.variances, reference.explained_variance_ * 29 / 30, rtol=1e-5
        )


def test_8_bit_pca_pays_one_byte_per_coefficient():
    rng = np.random.default_rng(3)
    x = rng.random((50, 4, 4, 3)).astype(np.float32)
    pca = baselines.fit_pca(x, 10)
    codes = baselines.pca_encode(pca, x, bits=8)
    assert codes.shape == (50, 10) and codes.dtype == np.uint8
    assert codes.min() == 0 and codes.max() == 255  # the training range spans all levels
    # the codes and images worked out with numpy from the fitted mean, components and ranges
    coefs = (x.reshape(50, -1) - pca.mean) @ pca.components.T
    step = (pca.coef_max - pca.coef_min) / 255  # 256 levels, 255 steps
    levels = np.clip(np.rint((coefs - pca.coef_min) / step), 0, 255)
    np.testing.assert_array_equal(codes, levels)
    expected = np.clip((pca.coef_min + levels * step) @ pca.components + pca.mean, 0, 1)
    exact = baselines.pca_reconstruct(pca, x)
    coded = baselines.pca_reconstruct(pca, x, bits=8)
    assert np.all(coded.n_bytes == 10)
    np.testing.assert_allclose(coded.reconstructions, expected.reshape(x.shape), atol=1e-6)
    # the quantiser's error is small next to PCA's own error
    assert (
        metrics.mse(x, coded.reconstructions).mean()
        < 1.02 * metrics.mse(x, exact.reconstructions).mean()
    )
    assert np.all(baselines.pca_reconstruct(pca, x, bits=12).n_bytes == 15)  # ceil(10 * 12 / 8)
    assert baselines.pca_encode(pca, x, bits=12).dtype == np.uint16


def test_pca_input_errors():
    x = np.random.default_rng(4).random((10, 4, 4, 3))
    with pytest.raises(ValueError, match="n_components"):
        baselines.fit_pca(x, 49)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        baselines.fit_pca(x - 0.5, 2)
    pca = baselines.fit_pca(x, 2)
    with pytest.raises(ValueError, match="fitted on"):
        baselines.pca_encode(pca, np.zeros((1, 8, 8, 3)))
    with pytest.raises(ValueError, match="bits"):
        baselines.pca_encode(pca, x, bits=0)
    with pytest.raises(ValueError, match=r"shape \(N, 2\)"):
        baselines.pca_decode(pca, np.zeros((1, 3)))
    with pytest.raises(ValueError, match="0..3"):
        baselines.pca_decode(pca, np.full((1, 2), 4), bits=2)


# --- the sweep ------------------------------------------------------------------------------------


def test_rate_quality_table():
    x = smooth_images(n=2, size=16)  # 16x16: PCA diagonalises a 768x768 covariance, not 3072x3072
    pca = baselines.fit_pca(x, 2)
    table = baselines.rate_quality_table(
        x, jpeg_qualities=(50,), webp_qualities=(50,), pca=pca, pca_bits=(None, 8)
    )
    assert list(table.columns) == [
        "method",
        "setting",
        "bpp",
        "bpp_no_header",
        "psnr",
        "pooled_psnr",
        "ssim",
    ]
    assert list(table["method"]) == [
        "PCA, float32 coefficients",
        "PCA, 8-bit coefficients",
        "JPEG",
        "WebP",
    ]
    assert list(table["setting"]) == ["2 components", "2 components", "quality 50", "quality 50"]
    # 2 coefficients of 4 bytes over 256 pixels; 2 bytes at 8 bits
    np.testing.assert_allclose(table["bpp"][:2], [2 * 32 / 256, 2 * 8 / 256])
    # the JPEG row, worked out with Pillow, numpy and scikit-image
    files = [encode_by_hand(image, "JPEG", quality=50, optimize=True) for image in x]
    decoded = np.stack([pixels for _, pixels in files]) / 255.0
    mse = ((decoded - x) ** 2).mean(axis=(1, 2, 3))
    ssim = skimage_ssim(x.astype(np.float64), decoded)
    jpeg_row = table.iloc[2]
    assert jpeg_row["bpp"] == pytest.approx(np.mean([len(data) for data, _ in files]) * 8 / 256)
    assert jpeg_row["psnr"] == pytest.approx(np.mean(10 * np.log10(1 / mse)), rel=1e-6)
    assert jpeg_row["pooled_psnr"] == pytest.approx(10 * np.log10(1 / mse.mean()), rel=1e-6)
    assert jpeg_row["ssim"] == pytest.approx(np.mean(ssim), abs=1e-6)
    assert jpeg_row["bpp_no_header"] < jpeg_row["bpp"] and np.isnan(table["bpp_no_header"][3])
    assert (
        table["ssim"].between(-1, 1).all() and (table["pooled_psnr"] <= table["psnr"] + 1e-9).all()
    )


def test_uniform_quantizer_by_hand():
    low, high = np.array([0.0, -1.0]), np.array([1.0, 1.0])
    values = np.array([[0.0, -1.0], [0.5, 0.0], [1.0, 1.0], [2.0, -5.0]])
    codes = baselines.quantize(values, low, high, bits=2)  # 4 levels: steps of 1/3 and 2/3
    assert codes.dtype == np.uint8
    # 0.5/(1/3) = 1.5 rounds to 2; out of range clips
    assert codes.tolist() == [
        [0, 0],
        [2, 2],
        [3, 3],
        [3, 0],
    ]
    back = baselines.dequantize(codes, low, high, bits=2)
    assert np.allclose(back, [[0, -1], [2 / 3, 1 / 3], [1, 1], [1, -1]])
    assert baselines.quantize(values, low, high, bits=12).dtype == np.uint16
    with pytest.raises(ValueError, match="codes must lie in 0..3"):
        baselines.dequantize(np.array([[4, 0]]), low, high, bits=2)
    with pytest.raises(ValueError, match="bits"):
        baselines.quantize(values, low, high, bits=0)


def test_autoencoder_reconstruct_sizes_and_quantisation():
    import keras

    rng = np.random.default_rng(0)
    x = rng.random((6, 8, 8, 3)).astype(np.float32)
    inputs = keras.Input((8, 8, 3))
    encoder = keras.Model(inputs, keras.layers.Conv2D(2, 3, strides=2, padding="same")(inputs))
    latent_in = keras.Input((4, 4, 2))
    decoder = keras.Model(
        latent_in,
        keras.layers.Conv2DTranspose(3, 3, strides=2, padding="same", activation="sigmoid")(
            latent_in
        ),
    )
    full = baselines.autoencoder_reconstruct(encoder, decoder, x)
    assert full.reconstructions.shape == x.shape and full.reconstructions.dtype == np.float32
    assert full.n_bytes.tolist() == [4 * 32] * 6
    direct = decoder.predict(encoder.predict(x, verbose=0), verbose=0)
    assert np.allclose(full.reconstructions, direct, atol=1e-6)
    # 8 bits over the range the latents take on other images (fit_x), worked out with numpy
    fit_x = rng.random((6, 8, 8, 3)).astype(np.float32) * 0.5
    eight = baselines.autoencoder_reconstruct(encoder, decoder, x, bits=8, fit_x=fit_x)
    assert eight.n_bytes.tolist() == [32] * 6
    z = encoder.predict(x, verbose=0).reshape(6, -1).astype(np.float64)
    z_fit = encoder.predict(fit_x, verbose=0).reshape(6, -1).astype(np.float64)
    low, high = z_fit.min(axis=0), z_fit.max(axis=0)
    step = (high - low) / 255
    z8 = low + np.clip(np.rint((z - low) / step), 0, 255) * step
    expected = decoder.predict(z8.reshape(6, 4, 4, 2).astype(np.float32), verbose=0)
    np.testing.assert_allclose(eight.reconstructions, expected, atol=1e-6)
    assert np.abs(eight.reconstructions - full.reconstructions).max() > 1e-3  # clipping shows
    with pytest.raises(ValueError, match="needs fit_x"):
        baselines.autoencoder_reconstruct(encoder, decoder, x, bits=8)


def test_closest_size_finds_the_quality_of_a_given_file_size():
    image = (np.random.default_rng(2).random((32, 32, 3)) * 0.5 + 0.25).astype(np.float32)
    for codec, coder in (("webp", baselines.webp), ("jpeg", baselines.jpeg)):
        target = int(coder(image[None], 40).n_bytes[0])
        quality, encoded = baselines.closest_size(image, target, codec)
        assert encoded.n_bytes[0] == target
        np.testing.assert_array_equal(
            coder(image[None], quality).reconstructions, encoded.reconstructions
        )
    # smaller than any file: the smallest one
    quality, encoded = baselines.closest_size(image, 1, "webp")
    assert encoded.n_bytes[0] == min(
        int(baselines.webp(image[None], q).n_bytes[0]) for q in range(1, 101)
    )
    with pytest.raises(ValueError, match="codec must be one of"):
        baselines.closest_size(image, 100, "png")
