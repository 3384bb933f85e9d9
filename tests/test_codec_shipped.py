"""The shipped codec models on real CIFAR-10 test images: pixels, crops, tables and rates.

test_codec.py checks the codec's machinery on tiny random models; only trained models on real images
can show a misplaced probability table, a wrong crop or a coder that wastes bits. PSNR here is
scikit-image's, not the course's metrics.
"""

from __future__ import annotations

import numpy as np
import pytest
from skimage.metrics import peak_signal_noise_ratio

from cae_utils import codec
from cae_utils.codec.model import compute_tables
from cae_utils.data import load_cifar10, to_uint8

SHIPPED = [name for name in codec.models() if name != "tiny"]

#: Mean PSNR (dB, scikit-image) and total size of the .cae files (bytes) of the first 100 images of
#: the test set, per model: a trusted run (x86_64, 2 CPU cores, TensorFlow 2.21.0, Keras 3.15.1).
QUICK_REFERENCE = {
    "very-low": (23.579, 6336),
    "low": (25.917, 10229),
    "medium": (27.594, 14965),
    "high": (29.105, 19368),
    "very-high": (30.185, 25037),
    "highest": (30.888, 31972),
}


def test_every_shipped_model_has_a_reference():
    assert sorted(SHIPPED) == sorted(QUICK_REFERENCE)


@pytest.fixture(scope="module")
def images():
    """The first 100 CIFAR-10 test images, uint8."""
    return to_uint8(load_cifar10(quick=True).x_test[:100])


@pytest.fixture(scope="module")
def mosaic(images):
    """A 128 x 128 photograph-like test card: 16 test images in a 4 x 4 grid."""
    rows = [np.concatenate(list(images[r * 4 : (r + 1) * 4]), axis=1) for r in range(4)]
    return np.concatenate(rows, axis=0)


def _psnr(a, b) -> float:
    return float(peak_signal_noise_ratio(a, b, data_range=255))


@pytest.mark.parametrize("name", SHIPPED)
def test_decoded_images_are_close_to_the_inputs(name, images):
    """Through real .cae files: the quick reference, and no worse than the stated full-test score."""
    files = codec.compress_many(images, name)
    decoded = codec.decompress_many(files, name)
    psnr = np.mean([_psnr(x, y) for x, y in zip(images, decoded)])
    reference_psnr, reference_bytes = QUICK_REFERENCE[name]
    assert psnr == pytest.approx(reference_psnr, abs=0.01)
    assert sum(map(len, files)) == pytest.approx(reference_bytes, rel=0.002)
    # these 100 images are a little harder than the whole test set (0.1-0.2 dB below it)
    assert psnr > codec.load(name).info["test"]["psnr"] - 0.3


@pytest.mark.parametrize("name", SHIPPED)
def test_odd_sizes_decode_as_exactly_their_crop(name, mosaic):
    """A crop of any size comes back where it was: off by one pixel it would lose 3.5 dB or more."""
    full = _psnr(mosaic[:127, :127], codec.decompress(codec.compress(mosaic[:127, :127], name)))
    for top, left, height, width in [(5, 11, 45, 37), (7, 9, 17, 101), (0, 0, 33, 31)]:
        crop = mosaic[top : top + height, left : left + width]
        decoded = codec.decompress(codec.compress(crop, name))
        assert decoded.shape == crop.shape
        here = _psnr(crop, decoded)
        shifted = mosaic[top + 1 : top + 1 + height, left + 1 : left + 1 + width]
        assert here > full - 1.0, (height, width)
        assert _psnr(shifted, decoded) < here - 3.0, (height, width)


@pytest.mark.parametrize("name", SHIPPED)
def test_stored_tables_are_the_ones_the_weights_give(name):
    """Recomputed from the trained prior's weights, the integer tables equal those in the weights file."""
    c = codec.load(name)
    recomputed = compute_tables(c.model.prior)
    for field in ("pmf", "length", "lower", "offset"):
        assert np.array_equal(getattr(recomputed, field), getattr(c.tables, field)), field


@pytest.mark.parametrize("name", SHIPPED)
def test_the_file_costs_what_the_model_estimates(name, images):
    """Per image: the range coder's payload is the tables' information content plus at most one 32-bit
    word; the tables' content is within 1.5 % of the trained density's estimate (0.2 % over 100 images);
    the file is the payload plus 8 bytes."""
    bits = codec.bit_budget(name, images)
    assert ((bits.payload - bits.tables).between(-1, 33)).all()
    assert ((bits.tables - bits.estimate).abs() < 0.015 * bits.estimate).all()
    assert bits.tables.sum() == pytest.approx(bits.estimate.sum(), rel=0.002)
    assert (bits.file - bits.payload == 64).all()
