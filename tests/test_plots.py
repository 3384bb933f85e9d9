"""Figure helpers: the pixel counts behind the histograms are right, figures save where the settings say."""

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest

from cae_utils import plots


def test_pixel_counts_by_hand():
    x = np.zeros((2, 2, 2, 3), dtype=np.uint8)
    x[0, 0, 0] = (255, 10, 0)
    counts = plots.pixel_counts(x)
    assert counts.shape == (3, 256) and counts.dtype == np.int64
    assert counts[0, 255] == 1 and counts[0, 0] == 7
    assert counts[1, 10] == 1 and counts[1, 0] == 7
    assert counts[2, 0] == 8
    # Floats in [0, 1] count as their nearest 8-bit level.
    assert np.array_equal(plots.pixel_counts(x.astype(np.float32) / 255), counts)


def test_pixel_counts_round_floats_to_the_nearest_level_by_hand():
    x = np.zeros((1, 2, 2, 3))
    # 255 * 0.999 = 254.7 -> 255; 255 * 0.002 = 0.51 -> 1; out of range clips to 0 and 255
    x[0, :, :, 0] = [[0.999, 0.002], [-0.1, 1.2]]
    counts = plots.pixel_counts(x)
    assert counts[0, 255] == 2 and counts[0, 1] == 1 and counts[0, 0] == 1
    assert counts[0].sum() == 4 and counts[1, 0] == counts[2, 0] == 4


def test_pixel_counts_rejects_wrong_shape():
    with pytest.raises(ValueError, match=r"\(N, H, W, 3\)"):
        plots.pixel_counts(np.zeros((4, 32, 32)))


def test_figures_are_saved_to_the_quick_mode_folder(monkeypatch):
    monkeypatch.setenv("CAE_QUICK", "1")
    rng = np.random.default_rng(0)
    x = rng.random((20, 8, 8, 3), dtype=np.float32)
    y = np.repeat(np.arange(2), 10)
    fig = plots.class_examples(x, y, ["a", "b"], per_class=3)
    path = plots.save_fig(fig, "test_class_examples.png")
    assert path.is_file() and path.stat().st_size > 0
    assert path.parent.name.startswith("cae-quick-figures-")


def test_image_grid_checks_titles():
    with pytest.raises(ValueError, match="2 titles for 1 images"):
        plots.image_grid([np.zeros((4, 4, 3))], titles=["a", "b"])
    fig = plots.image_grid([np.zeros((4, 4, 3))] * 5, ncols=2)
    assert len(fig.axes) == 6


def test_error_map_by_hand():
    a = np.zeros((2, 2, 3), dtype=np.float32)
    b = a.copy()
    b[0, 1] = (0.3, 0.0, 0.0)
    errors = plots.error_map(a, b)
    assert errors.shape == (2, 2)
    assert np.isclose(errors[0, 1], 0.1) and errors.sum() == errors[0, 1]
    with pytest.raises(ValueError, match="same shape"):
        plots.error_map(a, np.zeros((2, 3, 3)))


def test_labelled_rows_and_thumbnail_map():
    image = np.full((4, 4, 3), 0.5, dtype=np.float32)
    fig = plots.labelled_rows(
        [("original", [image] * 3), ("error", [image[..., 0]] * 3)], titles=["a", "b", "c"]
    )
    assert len(fig.axes) == 7  # 6 images and a colour bar for the error maps
    with pytest.raises(ValueError, match="same, non-zero number"):
        plots.labelled_rows([("a", [image] * 2), ("b", [image])])
    fig = plots.labelled_rows(
        [("a", [image] * 2), ("b", [image] * 2)], image_titles=[["1", "2"], ["3", "4"]]
    )
    assert [ax.get_title() for ax in fig.axes] == ["1", "2", "3", "4"]
    with pytest.raises(ValueError, match="image_titles needs 2 lists of 2 titles"):
        plots.labelled_rows([("a", [image] * 2), ("b", [image] * 2)], image_titles=[["1", "2"]])
    fig = plots.thumbnail_map(np.random.default_rng(0).random((10, 2)), np.stack([image] * 10), n=4)
    assert len(fig.axes) == 1
    with pytest.raises(ValueError, match=r"\(N, 2\) points"):
        plots.thumbnail_map(np.zeros((3, 3)), np.stack([image] * 3))
