"""Tests for cae_utils.models: shapes, the bottleneck really being a bottleneck, size accounting."""

import keras
import numpy as np
import pytest

from cae_utils import models
from cae_utils.models import (
    bits_per_pixel,
    build_autoencoder,
    build_course_autoencoder,
    build_decoder,
    build_encoder,
    build_original_flawed_autoencoder,
    compression_ratio,
    layer_shapes,
    original_notebook_ratio,
    size_table,
)


@pytest.fixture(autouse=True)
def _seed():
    keras.utils.set_random_seed(0)


def _images(n=2, shape=(32, 32, 3), seed=0):
    return np.random.default_rng(seed).random((n, *shape), dtype=np.float32)


# --------------------------------------------------------------------------------------------------
# Helpers: is the latent vector on the path from input to reconstruction?
# --------------------------------------------------------------------------------------------------


def _find_layer(model, name):
    """Return the layer called ``name`` in ``model`` or in a model nested inside it."""
    for layer in model.layers:
        if layer.name == name:
            return layer
        if isinstance(layer, keras.Model):
            try:
                return _find_layer(layer, name)
            except KeyError:
                pass
    raise KeyError(name)


def _same_code_for_every_image(model):
    """Zero the "latent" layer's kernel (keep its random bias): every image then gets the same code."""
    latent = _find_layer(model, "latent")
    kernel, bias = latent.get_weights()
    latent.set_weights(
        [np.zeros_like(kernel), np.random.default_rng(0).normal(size=bias.shape).astype("float32")]
    )


def _reconstruction(model, x):
    out = model(x, training=False)
    return np.asarray(out[0] if isinstance(out, (list, tuple)) else out)


def reconstruction_depends_on_latent(model, x) -> bool:
    """Behavioural check: does zeroing the "latent" Dense layer's kernel and bias change the output?

    If the decoder reads the latent vector, a zero code gives the same image for every input, so
    the reconstruction changes. If the latent vector is a dead end, nothing changes at all.
    """
    latent = _find_layer(model, "latent")
    before = _reconstruction(model, x)
    saved = latent.get_weights()
    try:
        latent.set_weights([np.zeros_like(w) for w in saved])
        after = _reconstruction(model, x)
    finally:
        latent.set_weights(saved)
    return not np.allclose(before, after)


def _some_path_avoids(tensor, name) -> bool:
    """True when some path in the graph from ``tensor`` back to an Input skips the layer ``name``."""
    operation, node_index, tensor_index = tensor._keras_history
    if operation.name == name:
        return False
    if isinstance(operation, keras.layers.InputLayer):
        return True
    if isinstance(operation, keras.Model) and not _some_path_avoids(
        operation.outputs[tensor_index], name
    ):
        return False  # every path inside the nested model (the encoder) goes through `name`
    node = operation._inbound_nodes[node_index]
    return any(_some_path_avoids(t, name) for t in node.input_tensors)


def latent_on_every_path(model, name="latent") -> bool:
    """Structural check: does every graph path from the (first) output back to the input meet ``name``?"""
    return not _some_path_avoids(model.outputs[0], name)


# --------------------------------------------------------------------------------------------------
# Shapes and dtypes
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "latent_dim, filters",
    [(32, (64, 32, 16)), (256, (64, 32, 16)), (64, (8, 16))],
)
def test_shapes_and_dtypes(latent_dim, filters):
    autoencoder, encoder, decoder = build_autoencoder(latent_dim, filters)
    x = _images(3)

    z = np.asarray(encoder(x, training=False))
    assert z.shape == (3, latent_dim)
    assert z.dtype == np.float32

    y = np.asarray(decoder(z, training=False))
    assert y.shape == (3, 32, 32, 3)
    assert y.dtype == np.float32
    assert y.min() >= 0.0 and y.max() <= 1.0

    out = np.asarray(autoencoder(x, training=False))
    assert out.shape == x.shape
    assert out.dtype == np.float32


def test_decoder_output_stays_float32_under_mixed_precision():
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        decoder = build_decoder(32)
        assert decoder.get_layer("dec_deconv3").compute_dtype == "float16"
        assert decoder.output.dtype == "float32"
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_layer_shapes_of_encoder():
    table = layer_shapes(build_encoder())
    shapes = dict(zip(table["name"], table["output_shape"]))
    assert shapes["enc_conv1"] == (None, 32, 32, 64)
    assert shapes["enc_pool1"] == (None, 16, 16, 64)
    assert shapes["enc_pool2"] == (None, 8, 8, 32)
    assert shapes["enc_pool3"] == (None, 4, 4, 16)
    assert shapes["flatten"] == (None, 256)
    assert shapes["latent"] == (None, 256)
    assert list(table.columns) == ["name", "type", "output_shape", "params"]
    assert table.loc[table["name"] == "latent", "type"].item() == "Dense"
    assert table.loc[table["name"] == "latent", "params"].item() == 256 * 256 + 256


def test_layer_shapes_of_decoder():
    decoder = build_decoder(128)
    table = layer_shapes(decoder)
    shapes = dict(zip(table["name"], table["output_shape"]))
    assert shapes["latent_vector"] == (None, 128)
    assert shapes["dec_reshape"] == (None, 4, 4, 16)
    # the mirror of the encoder: at each size, the channels the encoder has there
    assert shapes["dec_deconv1"] == (None, 8, 8, 32)
    assert shapes["dec_deconv2"] == (None, 16, 16, 64)
    assert shapes["dec_deconv3"] == (None, 32, 32, 3)
    assert shapes["reconstruction"] == (None, 32, 32, 3)
    assert table["params"].sum() == decoder.count_params()


def _conv(k_in, k_out):
    """Weights of a 3x3 convolution (or transposed convolution) with a bias, counted by hand."""
    return 9 * k_in * k_out + k_out


def test_parameter_counts_by_hand():
    # notebook 02's model: BatchNorm holds 4 numbers per channel (2 trained, 2 running statistics)
    encoder = (
        _conv(3, 64) + 4 * 64 + _conv(64, 32) + 4 * 32 + _conv(32, 16) + 4 * 16 + 256 * 256 + 256
    )
    decoder = 256 * 256 + 256 + _conv(16, 32) + 4 * 32 + _conv(32, 64) + 4 * 64 + _conv(64, 3)
    autoencoder, _, _ = build_autoencoder(256)
    assert autoencoder.count_params() == encoder + decoder == 182_163
    # the course model: two convolutions per stage, no BatchNorm, widths 48, 96, 192
    encoder = _conv(3, 48) + _conv(48, 48) + _conv(48, 96) + _conv(96, 96) + _conv(96, 192)
    encoder += _conv(192, 192) + 4 * 4 * 192 * 256 + 256
    decoder = 256 * 4 * 4 * 192 + 4 * 4 * 192 + _conv(192, 192) + _conv(192, 96) + _conv(96, 96)
    decoder += _conv(96, 48) + _conv(48, 48) + _conv(48, 3)
    course, _, _ = build_course_autoencoder(256)
    assert course.count_params() == encoder + decoder


def test_course_model_halves_with_strided_convolutions():
    _, encoder, decoder = build_course_autoencoder(64)
    shapes = dict(zip(*layer_shapes(encoder)[["name", "output_shape"]].T.values))
    assert shapes["enc_conv1"] == (None, 16, 16, 48)  # stride 2: no pooling layer
    assert shapes["enc_conv3_2"] == (None, 4, 4, 192)
    assert not [layer for layer in encoder.layers if "pool" in layer.name or "bn" in layer.name]
    assert encoder.get_layer("enc_conv1_gelu").activation is keras.activations.gelu
    assert len(decoder.inputs) == 1 and tuple(decoder.inputs[0].shape) == (None, 64)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"latent_dim": 0},
        {"latent_dim": -1},
        {"latent_dim": True},
        {"latent_dim": 2.5},
        {"filters": ()},
        {"filters": (64, 0)},
        {"input_shape": (30, 30, 3)},  # 30 cannot be halved three times
        {"filters": (8, 8, 8, 8, 8, 8)},  # 32 / 2**6 is not whole
        {"downsample": "average"},
        {"activation": "wiggle"},
        {"batch_norm": "yes"},
        {"convs_per_stage": 0},
    ],
)
def test_builders_reject_bad_arguments(kwargs):
    with pytest.raises(ValueError):
        build_autoencoder(**kwargs)


def test_decoder_rejects_uneven_output_shape():
    with pytest.raises(ValueError, match="multiples of 8"):
        build_decoder(output_shape=(36, 36, 3))


# --------------------------------------------------------------------------------------------------
# The bottleneck is a bottleneck
# --------------------------------------------------------------------------------------------------


def test_decoder_has_a_single_latent_input():
    _, _, decoder = build_autoencoder(latent_dim=48)
    assert len(decoder.inputs) == 1
    assert tuple(decoder.inputs[0].shape) == (None, 48)


def test_autoencoder_is_decoder_of_encoder():
    autoencoder, encoder, decoder = build_autoencoder(latent_dim=32)
    x1, x2 = _images(2, seed=1), _images(2, seed=2)
    z1 = encoder(x1, training=False)
    np.testing.assert_allclose(
        autoencoder(x1, training=False), decoder(z1, training=False), atol=1e-6
    )
    # Two different images forced onto the same code give the same reconstruction.
    assert not np.allclose(_reconstruction(autoencoder, x1), _reconstruction(autoencoder, x2))
    _same_code_for_every_image(autoencoder)
    np.testing.assert_allclose(encoder(x1, training=False), encoder(x2, training=False))
    np.testing.assert_allclose(
        _reconstruction(autoencoder, x1), _reconstruction(autoencoder, x2), atol=1e-6
    )


def test_autoencoder_graph_is_input_encoder_decoder():
    autoencoder, encoder, decoder = build_autoencoder()
    assert [type(layer).__name__ for layer in autoencoder.layers] == [
        "InputLayer",
        "Functional",
        "Functional",
    ]
    assert autoencoder.layers[1] is encoder and autoencoder.layers[2] is decoder
    # The decoder's only inbound connection is the encoder's output.
    operation, node_index, _ = autoencoder.outputs[0]._keras_history
    assert operation is decoder
    inbound = decoder._inbound_nodes[node_index].input_tensors
    assert len(inbound) == 1 and inbound[0]._keras_history.operation is encoder


def test_latent_is_on_the_path_of_the_real_autoencoder():
    autoencoder, _, _ = build_autoencoder(latent_dim=32)
    assert latent_on_every_path(autoencoder)
    assert reconstruction_depends_on_latent(autoencoder, _images(2))


def test_checks_catch_the_original_notebooks_flaw():
    flawed = build_original_flawed_autoencoder(latent_dim=32)
    assert len(flawed.outputs) == 2  # [reconstruction, latent]
    assert tuple(flawed.outputs[0].shape) == (None, 32, 32, 3)
    # the latent vector exists ...
    assert flawed.outputs[1]._keras_history.operation.name == "latent"
    assert tuple(flawed.outputs[1].shape) == (None, 32)
    assert not latent_on_every_path(flawed)  # ... but the reconstruction can skip it
    x1, x2 = _images(2, seed=1), _images(2, seed=2)
    assert not reconstruction_depends_on_latent(flawed, x1)
    # Even with one code for every image, different images still give different reconstructions.
    _same_code_for_every_image(flawed)
    np.testing.assert_allclose(flawed(x1, training=False)[1], flawed(x2, training=False)[1])
    assert not np.allclose(_reconstruction(flawed, x1), _reconstruction(flawed, x2))
    # The decoder really reads the 4x4x16 = 256 feature maps of the last pooling layer.
    assert tuple(flawed.get_layer("enc_pool3").output.shape) == (None, 4, 4, 16)


# --------------------------------------------------------------------------------------------------
# Size accounting
# --------------------------------------------------------------------------------------------------


def test_constants():
    assert models.INPUT_BYTES == 3072
    assert models.INPUT_BITS == 3072 * 8
    assert models.PIXELS == 1024


@pytest.mark.parametrize(
    "latent_dim, bits, ratio, bpp",
    [
        (256, 32, 3.0, 8.0),
        (256, 8, 12.0, 2.0),
        (128, 8, 24.0, 1.0),
        (32, 8, 96.0, 0.25),
        (384, 32, 2.0, 12.0),
    ],
)
def test_compression_ratio_and_bpp(latent_dim, bits, ratio, bpp):
    assert compression_ratio(latent_dim, bits) == pytest.approx(ratio)
    assert bits_per_pixel(latent_dim, bits) == pytest.approx(bpp)


def test_defaults_are_float32_cifar():
    assert compression_ratio(256) == pytest.approx(3.0)
    assert bits_per_pixel(256) == pytest.approx(8.0)
    assert compression_ratio(64, 8, image_shape=(64, 64, 3)) == pytest.approx(4 * 48.0)
    assert bits_per_pixel(64, 8, image_shape=(64, 64, 3)) == pytest.approx(512 / 4096)


def test_original_notebook_ratio_counts_channels_twice():
    assert original_notebook_ratio(256) == pytest.approx(36.0)
    assert original_notebook_ratio(256) == pytest.approx(3 * compression_ratio(256, 8))
    assert original_notebook_ratio(256) == pytest.approx(12 * compression_ratio(256, 32))


@pytest.mark.parametrize("bad", [0, -1, 2.5, True, "256", None])
@pytest.mark.parametrize("function", [compression_ratio, bits_per_pixel])
def test_size_functions_reject_bad_input(function, bad):
    with pytest.raises(ValueError):
        function(bad)
    with pytest.raises(ValueError):
        function(256, bad)


def test_size_functions_accept_whole_floats_and_reject_bad_shapes():
    assert compression_ratio(256.0, 8.0) == pytest.approx(12.0)
    with pytest.raises(ValueError):
        compression_ratio(256, 8, image_shape=(32, 32))
    with pytest.raises(ValueError):
        bits_per_pixel(256, 8, image_shape=(32, 0, 3))


def test_size_table_matches_the_functions():
    table = size_table()
    assert list(table.columns) == [
        "latent_dim",
        "bits_per_value",
        "bytes",
        "bpp",
        "compression_ratio",
    ]
    assert len(table) == 5 * 2
    for row in table.itertuples():
        assert row.bytes == row.latent_dim * row.bits_per_value / 8
        assert row.bpp == pytest.approx(bits_per_pixel(row.latent_dim, row.bits_per_value))
        assert row.compression_ratio == pytest.approx(
            compression_ratio(row.latent_dim, row.bits_per_value)
        )
    row = table[(table["latent_dim"] == 256) & (table["bits_per_value"] == 32)].iloc[0]
    assert (row["bytes"], row["bpp"], row["compression_ratio"]) == (1024, 8.0, 3.0)


def test_build_by_name():
    assert set(models.ARCHITECTURES) == {"baseline", "course"}
    autoencoder, encoder, _ = models.build("baseline", latent_dim=32)
    assert encoder.output_shape == (None, 32)
    with pytest.raises(ValueError, match="unknown architecture 'unet'"):
        models.build("unet")
