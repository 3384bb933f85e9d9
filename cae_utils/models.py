"""The convolutional autoencoder of the course, and honest size accounting.

Models (Keras 3, functional API):

- :func:`build_encoder`      image ``(32, 32, 3)`` -> latent vector ``(latent_dim,)``
- :func:`build_decoder`      latent vector ``(latent_dim,)`` -> image ``(32, 32, 3)`` in ``[0, 1]``
- :func:`build_autoencoder`  ``decoder(encoder(x))``: the latent vector is the only way through
- :func:`build_original_flawed_autoencoder`  the course's founding notebook's first model, whose
  decoder bypasses the latent vector (kept for a teaching demonstration only)
- :func:`build_residual_autoencoder`  strided convolutions, residual blocks, a spatial latent
- :func:`build_pca_shortcut_autoencoder`  PCA as a frozen linear shortcut, convolutional networks that
  learn what PCA misses (the shipped models; :func:`set_pca` fills in the PCA)

With the default settings the encoder halves the image three times (32 -> 16 -> 8 -> 4) and ends on
a ``Dense(256)`` layer named ``"latent"``; the decoder mirrors it with strided transposed
convolutions::

    encoder: 32x32x3 -> [Conv 64, BN, ReLU, MaxPool] -> 16x16x64 -> [.. 32 ..] -> 8x8x32
             -> [.. 16 ..] -> 4x4x16 -> Flatten (256) -> Dense "latent" (256)
    decoder: 256 -> Dense (4*4*16) + ReLU -> Reshape 4x4x16 -> [ConvT 16, BN, ReLU] -> 8x8x16
             -> [ConvT 32 ..] -> 16x16x32 -> [ConvT 64 ..] -> 32x32x64 -> Conv 3 -> sigmoid

Size accounting (plain arithmetic, no model needed): a CIFAR-10 image is ``32*32*3 = 3072`` bytes
(8 bits per value). A latent vector of ``latent_dim`` values stored at ``bits_per_value`` bits each
takes ``latent_dim * bits_per_value / 8`` bytes; :func:`compression_ratio` and
:func:`bits_per_pixel` turn that into the two numbers compression papers report, and
:func:`size_table` puts several choices side by side.
"""

from __future__ import annotations

import numbers

import keras
import numpy as np
import pandas as pd
from keras import layers, ops

__all__ = [
    "INPUT_BYTES",
    "INPUT_BITS",
    "PIXELS",
    "build_encoder",
    "build_decoder",
    "build_autoencoder",
    "COURSE_MODEL",
    "build_course_autoencoder",
    "build_original_flawed_autoencoder",
    "build_residual_autoencoder",
    "latent_grid",
    "ClipToPixelRange",
    "build_pca_shortcut_autoencoder",
    "set_pca",
    "ARCHITECTURES",
    "build",
    "compression_ratio",
    "bits_per_pixel",
    "original_notebook_ratio",
    "size_table",
    "layer_shapes",
]

#: Bytes in one CIFAR-10 image: 32 x 32 pixels x 3 colour channels, one byte (8 bits) per value.
INPUT_BYTES = 32 * 32 * 3
#: Bits in one CIFAR-10 image (3072 bytes x 8 bits).
INPUT_BITS = INPUT_BYTES * 8
#: Pixels in one CIFAR-10 image (32 x 32); "bits per pixel" divides by this, not by 3072.
PIXELS = 32 * 32

CIFAR_SHAPE = (32, 32, 3)


# --------------------------------------------------------------------------------------------------
# Argument checks
# --------------------------------------------------------------------------------------------------


def _positive_int(name: str, value) -> int:
    """Return ``value`` as an int when it is a whole number >= 1; raise ValueError otherwise.

    ``True``/``False`` are refused (they are ints to Python, but never what the caller meant);
    a float is accepted only when it is whole (``256.0``).
    """
    if isinstance(value, bool):
        raise ValueError(f"{name} must be a positive whole number, not the boolean {value!r}.")
    if isinstance(value, numbers.Integral):
        number = int(value)
    elif isinstance(value, numbers.Real) and float(value).is_integer():
        number = int(value)
    else:
        raise ValueError(f"{name} must be a positive whole number such as 256, got {value!r}.")
    if number < 1:
        raise ValueError(f"{name} must be a positive whole number such as 256, got {value!r}.")
    return number


def _image_shape(name: str, shape) -> tuple[int, int, int]:
    """Check that ``shape`` is (height, width, channels) of positive whole numbers and return it."""
    try:
        items = tuple(shape)
    except TypeError:
        raise ValueError(
            f"{name} must be (height, width, channels), such as (32, 32, 3), got {shape!r}."
        ) from None
    if len(items) != 3:
        raise ValueError(
            f"{name} must be (height, width, channels), such as (32, 32, 3), got {shape!r}."
        )
    return tuple(_positive_int(f"{name}[{i}]", v) for i, v in enumerate(items))


def _architecture(latent_dim, filters, image_shape, shape_name: str):
    """Validate the shared architecture arguments.

    Returns:
        ``(latent_dim, filters, image_shape, (h, w))``: the cleaned arguments and the spatial size
        of the smallest feature maps (the image size divided by ``2 ** len(filters)``).
    """
    latent_dim = _positive_int("latent_dim", latent_dim)
    if isinstance(filters, (str, bytes)) or not hasattr(filters, "__iter__"):
        raise ValueError(
            f"filters must be a sequence of channel counts such as (64, 32, 16), got {filters!r}."
        )
    filters = tuple(_positive_int(f"filters[{i}]", f) for i, f in enumerate(filters))
    if not filters:
        raise ValueError(
            "filters must name at least one convolution block, for example (64, 32, 16)."
        )
    image_shape = _image_shape(shape_name, image_shape)
    height, width, _ = image_shape
    factor = 2 ** len(filters)
    if height % factor or width % factor:
        raise ValueError(
            f"{shape_name} {image_shape}: {len(filters)} blocks halve the image {len(filters)} times, "
            f"so height and width must be multiples of {factor}; use fewer filters or another image size."
        )
    return latent_dim, filters, image_shape, (height // factor, width // factor)


# --------------------------------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------------------------------


#: Ways an encoder stage can halve the image: a convolution then 2x2 max pooling, or a stride-2 convolution.
DOWNSAMPLING = ("pool", "stride")


def _style(downsample, activation, batch_norm, convs_per_stage):
    """Check the options that say how each stage is built; return them cleaned."""
    if downsample not in DOWNSAMPLING:
        raise ValueError(
            f"downsample must be 'pool' (convolution + max pooling) or 'stride' (stride-2 convolution), "
            f"got {downsample!r}."
        )
    try:
        keras.activations.get(activation)
    except (ValueError, TypeError):
        raise ValueError(
            f"activation must be the name of a Keras activation such as 'relu' or 'gelu', got {activation!r}."
        ) from None
    if not isinstance(batch_norm, bool):
        raise ValueError(f"batch_norm must be True or False, got {batch_norm!r}.")
    return downsample, activation, batch_norm, _positive_int("convs_per_stage", convs_per_stage)


def _conv_unit(x, conv, name, activation, batch_norm):
    """Apply ``conv``, then BatchNormalization (when asked) and the activation; layers named after ``name``."""
    x = conv(x)
    if batch_norm:
        x = layers.BatchNormalization(name=f"{name}_bn")(x)
    return layers.Activation(activation, name=f"{name}_{activation}")(x)


def _encoder_blocks(x, filters, downsample, activation, batch_norm, convs_per_stage):
    """Halve the feature maps once per entry of ``filters``, ending with ``filters[-1]`` channels.

    A stage is ``convs_per_stage`` 3x3 convolutions with ``f`` filters (each followed by BatchNormalization
    when asked and the activation); with ``downsample="pool"`` a 2x2 MaxPooling2D ends it, with
    ``"stride"`` its first convolution has stride 2.
    """
    for i, f in enumerate(filters, start=1):
        for j in range(convs_per_stage):
            strides = 2 if downsample == "stride" and j == 0 else 1
            name = f"enc_conv{i}" + (f"_{j + 1}" if j else "")
            conv = layers.Conv2D(f, 3, strides=strides, padding="same", name=name)
            x = _conv_unit(x, conv, name, activation, batch_norm)
        if downsample == "pool":
            x = layers.MaxPooling2D(2, name=f"enc_pool{i}")(x)
    return x


def _decoder_blocks(x, filters, channels, activation, batch_norm, convs_per_stage):
    """Mirror :func:`_encoder_blocks`: from the smallest feature maps back to an image in ``[0, 1]``.

    At the smallest size, ``convs_per_stage - 1`` convolutions; then each stride-2 transposed
    convolution doubles the size and gives the channels the encoder has at that size
    (``filters[-2]``, ..., ``filters[0]``), followed by ``convs_per_stage - 1`` convolutions; the last
    transposed convolution gives the ``channels`` colour values, squashed into [0, 1] by a sigmoid
    (layer ``"reconstruction"``, always float32 so mixed precision works).
    """
    widths = list(reversed(filters))
    for i, f in enumerate(widths):
        if i:
            name = f"dec_deconv{i}"
            conv = layers.Conv2DTranspose(f, 3, strides=2, padding="same", name=name)
            x = _conv_unit(x, conv, name, activation, batch_norm)
        for j in range(1, convs_per_stage):
            name = f"dec_conv{i}_{j}"
            conv = layers.Conv2D(f, 3, padding="same", name=name)
            x = _conv_unit(x, conv, name, activation, batch_norm)
    x = layers.Conv2DTranspose(
        channels, 3, strides=2, padding="same", name=f"dec_deconv{len(widths)}"
    )(x)
    return layers.Activation("sigmoid", dtype="float32", name="reconstruction")(x)


def _image_head(x, channels: int):
    """Map feature maps to ``channels`` colour values in ``[0, 1]``: a 3x3 Conv2D, then a float32 sigmoid."""
    x = layers.Conv2D(channels, 3, padding="same", name="dec_conv_out")(x)
    return layers.Activation("sigmoid", dtype="float32", name="reconstruction")(x)


def build_encoder(
    latent_dim: int = 256,
    filters=(64, 32, 16),
    input_shape=CIFAR_SHAPE,
    name: str = "encoder",
    *,
    downsample: str = "pool",
    activation: str = "relu",
    batch_norm: bool = True,
    convs_per_stage: int = 1,
) -> keras.Model:
    """Build the encoder: image -> flat latent vector.

    Each entry ``f`` of ``filters`` adds a stage that halves the image (so three stages take 32x32 to
    4x4): ``convs_per_stage`` Conv2D(f, 3, "same") layers, each followed by BatchNormalization (if
    ``batch_norm``) and the ``activation``, and a MaxPooling2D(2) (``downsample="pool"``), or with the
    first convolution of stride 2 instead (``downsample="stride"``). The feature maps are then flattened
    and a linear ``Dense(latent_dim)`` layer named ``"latent"`` gives the code.

    Args:
        latent_dim: length of the latent vector (the code), a positive int.
        filters: channels of each stage, from the image inwards.
        input_shape: (height, width, channels) of the images; height and width must be multiples
            of ``2 ** len(filters)``.
        name: the model's name (it is the layer's name inside :func:`build_autoencoder`).
        downsample: ``"pool"`` or ``"stride"``.
        activation: a Keras activation name, such as ``"relu"`` or ``"gelu"``.
        batch_norm: put BatchNormalization after every convolution.
        convs_per_stage: convolutions in each stage (at least 1).

    Returns:
        A ``keras.Model`` taking ``(batch, *input_shape)`` and returning ``(batch, latent_dim)``.

    Raises:
        ValueError: an argument is not a positive whole number or a known option, ``filters`` is empty,
            or the image size cannot be halved ``len(filters)`` times.
    """
    latent_dim, filters, input_shape, _ = _architecture(
        latent_dim, filters, input_shape, "input_shape"
    )
    style = _style(downsample, activation, batch_norm, convs_per_stage)
    inputs = keras.Input(shape=input_shape, name="image")
    x = _encoder_blocks(inputs, filters, *style)
    x = layers.Flatten(name="flatten")(x)
    latent = layers.Dense(latent_dim, name="latent")(x)
    return keras.Model(inputs, latent, name=name)


def build_decoder(
    latent_dim: int = 256,
    filters=(64, 32, 16),
    output_shape=CIFAR_SHAPE,
    name: str = "decoder",
    *,
    downsample: str = "pool",
    activation: str = "relu",
    batch_norm: bool = True,
    convs_per_stage: int = 1,
) -> keras.Model:
    """Build the decoder: flat latent vector -> image in ``[0, 1]``, the mirror of :func:`build_encoder`.

    Its single input is the latent vector. A ``Dense`` layer and the activation expand it to
    ``h * w * filters[-1]`` values, reshaped to the encoder's smallest feature maps ``(h, w, filters[-1])``
    (4x4x16 by default). Stride-2 Conv2DTranspose layers double the size back, with the encoder's
    channels at each size (8x8x32, 16x16x64 by default); BatchNormalization and extra convolutions
    follow the same options as the encoder. The last transposed convolution gives the colour channels
    at full size, and a sigmoid (layer ``"reconstruction"``, always float32) squashes them into ``[0, 1]``.
    ``downsample`` is accepted so one set of options builds both halves; upsampling is the same for both.

    Args:
        latent_dim: length of the latent vector it reads.
        filters: the encoder's filters.
        output_shape: (height, width, channels) of the images it produces.
        name: the model's name.
        downsample, activation, batch_norm, convs_per_stage: as :func:`build_encoder`.

    Returns:
        A ``keras.Model`` taking ``(batch, latent_dim)`` and returning ``(batch, *output_shape)``.

    Raises:
        ValueError: as :func:`build_encoder`.
    """
    latent_dim, filters, output_shape, (h, w) = _architecture(
        latent_dim, filters, output_shape, "output_shape"
    )
    _, activation, batch_norm, convs_per_stage = _style(
        downsample, activation, batch_norm, convs_per_stage
    )
    inputs = keras.Input(shape=(latent_dim,), name="latent_vector")
    x = layers.Dense(h * w * filters[-1], name="dec_dense")(inputs)
    x = layers.Activation(activation, name=f"dec_dense_{activation}")(x)
    x = layers.Reshape((h, w, filters[-1]), name="dec_reshape")(x)
    outputs = _decoder_blocks(x, filters, output_shape[-1], activation, batch_norm, convs_per_stage)
    return keras.Model(inputs, outputs, name=name)


def build_autoencoder(
    latent_dim: int = 256,
    filters=(64, 32, 16),
    input_shape=CIFAR_SHAPE,
    name: str = "autoencoder",
    **style,
):
    """Build the course's convolutional autoencoder, ``decoder(encoder(x))``.

    The autoencoder has three layers: its input, the encoder model and the decoder model. The
    decoder's only input is the encoder's output, so everything the reconstruction knows about
    the image has passed through the ``latent_dim`` numbers of the code. The encoder and decoder
    share their weights with the autoencoder: train the autoencoder, then use ``encoder`` to
    compress and ``decoder`` to decompress. With the defaults it is notebook 02's model;
    ``build_autoencoder(d, **COURSE_MODEL)`` is the course's trained model.

    Args:
        latent_dim: length of the latent vector.
        filters: channels of each encoder stage (the decoder mirrors them).
        input_shape: (height, width, channels) of the images.
        name: the autoencoder's name.
        **style: ``downsample``, ``activation``, ``batch_norm``, ``convs_per_stage`` (see
            :func:`build_encoder`).

    Returns:
        ``(autoencoder, encoder, decoder)``: three ``keras.Model`` objects; the autoencoder maps
        ``(batch, *input_shape)`` to the same shape.

    Raises:
        ValueError: as :func:`build_encoder`.
    """
    encoder = build_encoder(latent_dim, filters, input_shape, name="encoder", **style)
    decoder = build_decoder(latent_dim, filters, input_shape, name="decoder", **style)
    inputs = keras.Input(shape=tuple(input_shape), name="autoencoder_image")
    outputs = decoder(encoder(inputs))
    autoencoder = keras.Model(inputs, outputs, name=name)
    return autoencoder, encoder, decoder


#: The course model: notebook 02's autoencoder with the changes notebook 03's ladder measures.
COURSE_MODEL = {
    "filters": (48, 96, 192),
    "downsample": "stride",
    "activation": "gelu",
    "batch_norm": False,
    "convs_per_stage": 2,
}


def build_course_autoencoder(latent_dim: int = 256, name: str = "autoencoder"):
    """Build the course model, ``build_autoencoder(latent_dim, **COURSE_MODEL)``."""
    return build_autoencoder(latent_dim, name=name, **COURSE_MODEL)


def build_original_flawed_autoencoder(latent_dim: int = 256, filters=(64, 32, 16)) -> keras.Model:
    """Rebuild the flaw of the founding notebook's first model (for a demonstration; do not train it).

    The encoder blocks are the same as in :func:`build_encoder` and end on 4x4x16 feature maps.
    From them a ``Flatten`` + ``Dense(latent_dim)`` latent vector is computed, and the model
    returns it as its second output, named ``"latent"``, so it looks like an autoencoder with a
    code. But the decoder's Conv2DTranspose stack reads the **4x4x16 feature maps**, not the
    latent vector: the latent vector is a dead end, off the path from image to reconstruction.
    Zeroing or perturbing it changes nothing in the reconstruction, and the information that
    really flows to the decoder is the ``4 * 4 * 16 = 256`` floats of the feature maps. Any
    compression figure computed from ``latent_dim`` therefore describes a code the decoder never
    sees. :func:`build_autoencoder` fixes this by making the latent vector the decoder's only input.

    Args:
        latent_dim: length of the (unused) latent vector.
        filters: channels of each encoder block (the decoder mirrors them).

    Returns:
        A ``keras.Model`` named ``"original_flawed_autoencoder"`` taking ``(batch, 32, 32, 3)`` and
        returning ``[reconstruction (batch, 32, 32, 3), latent (batch, latent_dim)]``.
    """
    latent_dim, filters, image_shape, _ = _architecture(
        latent_dim, filters, CIFAR_SHAPE, "input_shape"
    )
    inputs = keras.Input(shape=image_shape, name="image")
    style = _style("pool", "relu", True, 1)
    features = _encoder_blocks(inputs, filters, *style)
    flat = layers.Flatten(name="flatten")(features)
    latent = layers.Dense(latent_dim, name="latent")(flat)
    # The flaw: the decoder starts from `features`, so `latent` is not on its path.
    reconstruction = _decoder_blocks(features, filters, image_shape[-1], *style[1:])
    return keras.Model(inputs, [reconstruction, latent], name="original_flawed_autoencoder")


# --------------------------------------------------------------------------------------------------
# The improved architecture: residual, strided, with a spatial latent
# --------------------------------------------------------------------------------------------------


def _residual_block(x, width: int, name: str):
    """``x + Conv(ReLU(Conv(x)))``, then ReLU: two 3x3 convolutions that learn a correction to ``x``."""
    y = layers.Conv2D(width, 3, padding="same", activation="relu", name=f"{name}_conv1")(x)
    y = layers.Conv2D(width, 3, padding="same", name=f"{name}_conv2")(y)
    return layers.ReLU(name=f"{name}_out")(layers.Add(name=f"{name}_add")([x, y]))


def latent_grid(latent_dim: int) -> tuple[int, int, int]:
    """The (height, width, channels) grid the residual model stores a latent of ``latent_dim`` values in.

    8x8 positions when ``latent_dim`` is a multiple of 64 (256 -> 8x8x4), else 4x4 positions when it is a
    multiple of 16 (32 -> 4x4x2).

    Raises:
        ValueError: ``latent_dim`` is not a multiple of 16.
    """
    latent_dim = _positive_int("latent_dim", latent_dim)
    for side in (8, 4):
        if latent_dim % (side * side) == 0:
            return side, side, latent_dim // (side * side)
    raise ValueError(
        f"the residual model needs latent_dim to be a multiple of 16 (such as 32, 64, 256), got {latent_dim}."
    )


def build_residual_autoencoder(
    latent_dim: int = 256, widths=(32, 64, 96), name: str = "autoencoder"
):
    """Build the course's improved autoencoder: strided convolutions, residual blocks, a spatial latent.

    What changes against :func:`build_autoencoder`, and why:

    - **Strided convolutions instead of max pooling** (and transposed convolutions back): the network
      learns how to downsample instead of throwing away three of every four values.
    - **Residual blocks** (:func:`_residual_block`) at the 16x16 and 8x8 resolutions (and 4x4 for small
      latents): more depth where it is cheap, and easy to train.
    - **A spatial latent**: the code is a small grid of feature vectors (8x8x4 for 256 values), made by a
      convolution, instead of a Dense layer over everything. Each latent value describes one region of
      the image, which suits images far better than a dense layer, and it has far fewer weights.
    - **No BatchNormalization**: its running statistics lag behind during short trainings, and an
      autoencoder trains well without it.

    The interface is the same: the encoder ends in a flat vector of ``latent_dim`` values (the grid,
    flattened) and the decoder's only input is that vector, reshaped back to the grid.

    Args:
        latent_dim: length of the latent vector, a multiple of 16 (see :func:`latent_grid`).
        widths: channels at 32x32, 16x16 and 8x8 (and 4x4 for small latents).
        name: the autoencoder's name.

    Returns:
        ``(autoencoder, encoder, decoder)`` as :func:`build_autoencoder`.
    """
    gh, gw, channels = latent_grid(latent_dim)
    w0, w1, w2 = (_positive_int(f"widths[{i}]", w) for i, w in enumerate(widths))
    down = {8: 2, 4: 3}[gh]  # stride-2 stages from 32x32 to the grid

    inputs = keras.Input(shape=CIFAR_SHAPE, name="image")
    x = layers.Conv2D(w0, 3, padding="same", activation="relu", name="enc_stem")(inputs)
    for stage, width in enumerate([w1, w2, w2][:down], start=1):
        x = layers.Conv2D(
            width, 3, strides=2, padding="same", activation="relu", name=f"enc_down{stage}"
        )(x)
        x = _residual_block(x, width, f"enc_res{stage}")
    grid = layers.Conv2D(channels, 3, padding="same", name="enc_to_latent")(x)
    latent = layers.Flatten(name="latent")(grid)
    encoder = keras.Model(inputs, latent, name="encoder")

    code = keras.Input(shape=(latent_dim,), name="latent_vector")
    y = layers.Reshape((gh, gw, channels), name="dec_reshape")(code)
    y = layers.Conv2D(w2, 3, padding="same", activation="relu", name="dec_from_latent")(y)
    y = _residual_block(y, w2, "dec_res0")
    up_widths = [w1, w0] if down == 2 else [w2, w1, w0]  # mirror of the encoder's stride-2 stages
    for stage, width in enumerate(up_widths, start=1):
        y = layers.Conv2DTranspose(
            width, 3, strides=2, padding="same", activation="relu", name=f"dec_up{stage}"
        )(y)
        if stage < down:
            y = _residual_block(y, width, f"dec_res{stage}")
    outputs = _image_head(y, CIFAR_SHAPE[-1])
    decoder = keras.Model(code, outputs, name="decoder")

    image = keras.Input(shape=CIFAR_SHAPE, name="autoencoder_image")
    autoencoder = keras.Model(image, decoder(encoder(image)), name=name)
    return autoencoder, encoder, decoder


# --------------------------------------------------------------------------------------------------
# The shipped architecture: PCA as a linear shortcut, convolutions for what PCA misses
# --------------------------------------------------------------------------------------------------


@keras.saving.register_keras_serializable(package="cae_utils")
class ClipToPixelRange(layers.Layer):
    """Clip values into ``[0, 1]``, letting gradients pass as if nothing were clipped (straight-through).

    The forward pass returns ``clip(x, 0, 1)``, so a reconstruction is always a valid image. The backward
    pass treats the layer as the identity: a pixel predicted at 1.2 for a target of 0.9 is still pushed
    down (a plain clip would give it zero gradient and leave it stuck above 1).
    """

    def call(self, x):
        return x + ops.stop_gradient(ops.clip(x, 0.0, 1.0) - x)


def build_pca_shortcut_autoencoder(
    latent_dim: int = 256,
    widths=(32, 64, 96),
    code_channels: int = 8,
    refine_blocks: int = 1,
    name: str = "autoencoder",
):
    """Build the course's shipped autoencoder: PCA as a frozen linear shortcut, plus learned corrections.

    PCA is the best *linear* autoencoder: no linear encoder and decoder with ``latent_dim`` values
    reconstruct with a smaller mean squared error. This model contains it and learns only what it misses:

    - **encoder**: ``z = pca_project(x) + enc_correction(conv(x))``. ``pca_project`` is a frozen ``Dense``
      layer holding the whitened PCA projection (each coefficient divided by its standard deviation, so
      every latent value has unit variance); the convolutional path (a stride-2 residual stack as in
      :func:`build_residual_autoencoder`, down to 8x8) ends in a ``Dense`` layer that starts at zero.
    - **decoder**: ``x_hat = clip(pca_reconstruct(z) + correction)``. ``pca_reconstruct`` is the frozen
      linear PCA reconstruction (an image); a ``Dense`` layer maps ``z`` to 8x8 feature maps, residual
      blocks and transposed convolutions bring them to 32x32, where they meet the PCA image; a convolution
      and ``refine_blocks`` residual blocks work on both at full resolution, and a last convolution that
      starts at zero adds a correction. :class:`ClipToPixelRange` keeps pixels in [0, 1].

    The corrections start at zero, so once :func:`set_pca` has filled in the PCA the untrained model *is*
    PCA with ``latent_dim`` components, and training can only start from there. The latent is a flat
    vector of ``latent_dim`` values, and it is the decoder's only input.

    Args:
        latent_dim: length of the latent vector, from 1 to 3072.
        widths: channels at 32x32, 16x16 and 8x8.
        code_channels: channels of the 8x8 feature maps the encoder's correction is read from.
        refine_blocks: residual blocks at 32x32 after the PCA image joins the decoder (0 or more). One block
            gained 0.16 dB of validation PSNR over none in the same 10 minutes of training on the
            course's CPU (latent 256); a second one gained nothing more in that time.
        name: the autoencoder's name.

    Returns:
        ``(autoencoder, encoder, decoder)`` as :func:`build_autoencoder`. The PCA layers hold zeros until
        :func:`set_pca` (or loading trained weights) fills them.

    Raises:
        ValueError: an argument is not a positive whole number, or ``latent_dim`` exceeds 3072.
    """
    latent_dim = _positive_int("latent_dim", latent_dim)
    if latent_dim > INPUT_BYTES:
        raise ValueError(
            f"latent_dim must be at most {INPUT_BYTES} (the values in one image), got {latent_dim}."
        )
    w0, w1, w2 = (_positive_int(f"widths[{i}]", w) for i, w in enumerate(widths))
    code_channels = _positive_int("code_channels", code_channels)
    if (
        isinstance(refine_blocks, bool)
        or not isinstance(refine_blocks, numbers.Integral)
        or refine_blocks < 0
    ):
        raise ValueError(f"refine_blocks must be a whole number >= 0, got {refine_blocks!r}.")
    side = CIFAR_SHAPE[0] // 4  # two stride-2 stages: 32 -> 16 -> 8

    inputs = keras.Input(shape=CIFAR_SHAPE, name="image")
    flat = layers.Flatten(name="pixels")(inputs)
    z_pca = layers.Dense(latent_dim, trainable=False, dtype="float32", name="pca_project")(flat)
    x = layers.Conv2D(w0, 3, padding="same", activation="relu", name="enc_stem")(inputs)
    for stage, width in enumerate([w1, w2], start=1):
        x = layers.Conv2D(
            width, 3, strides=2, padding="same", activation="relu", name=f"enc_down{stage}"
        )(x)
        x = _residual_block(x, width, f"enc_res{stage}")
    x = layers.Conv2D(code_channels, 1, name="enc_to_code")(x)
    x = layers.Flatten(name="enc_flatten")(x)
    z_learned = layers.Dense(latent_dim, kernel_initializer="zeros", name="enc_correction")(x)
    latent = layers.Add(dtype="float32", name="latent")([z_pca, z_learned])
    encoder = keras.Model(inputs, latent, name="encoder")

    code = keras.Input(shape=(latent_dim,), name="latent_vector")
    pca_image = layers.Reshape(CIFAR_SHAPE, name="pca_image")(
        layers.Dense(INPUT_BYTES, trainable=False, dtype="float32", name="pca_reconstruct")(code)
    )
    y = layers.Dense(side * side * w2, activation="relu", name="dec_dense")(code)
    y = layers.Reshape((side, side, w2), name="dec_reshape")(y)
    y = _residual_block(y, w2, "dec_res0")
    y = layers.Conv2DTranspose(w1, 3, strides=2, padding="same", activation="relu", name="dec_up1")(
        y
    )
    y = _residual_block(y, w1, "dec_res1")
    y = layers.Conv2DTranspose(w0, 3, strides=2, padding="same", activation="relu", name="dec_up2")(
        y
    )
    y = layers.Concatenate(name="dec_merge")([y, pca_image])
    y = layers.Conv2D(w0, 3, padding="same", activation="relu", name="dec_refine")(y)
    for block in range(1, refine_blocks + 1):
        y = _residual_block(y, w0, f"dec_refine_res{block}")
    correction = layers.Conv2D(
        CIFAR_SHAPE[-1], 3, padding="same", kernel_initializer="zeros", name="dec_correction"
    )(y)
    image = layers.Add(dtype="float32", name="dec_add")([pca_image, correction])
    outputs = ClipToPixelRange(dtype="float32", name="reconstruction")(image)
    decoder = keras.Model(code, outputs, name="decoder")

    image_in = keras.Input(shape=CIFAR_SHAPE, name="autoencoder_image")
    autoencoder = keras.Model(image_in, decoder(encoder(image_in)), name=name)
    return autoencoder, encoder, decoder


def set_pca(autoencoder, pca) -> None:
    """Fill the frozen PCA layers of a :func:`build_pca_shortcut_autoencoder` model from a fitted PCA.

    The encoder's ``pca_project`` gets the whitened projection ``(x - mean) @ components.T / sigma`` and the
    decoder's ``pca_reconstruct`` its inverse ``mean + z @ (sigma * components)``, where ``sigma`` is the
    standard deviation of each coefficient on the training images. With the learned corrections still at
    zero, the model then reconstructs exactly as PCA does.

    Args:
        autoencoder: the autoencoder :func:`build_pca_shortcut_autoencoder` returned.
        pca: a :class:`cae_utils.baselines.PCA` of 32x32x3 images with as many components as the latent.

    Raises:
        ValueError: the model has no PCA layers, or the PCA does not fit it.
    """
    try:
        project = autoencoder.get_layer("encoder").get_layer("pca_project")
        reconstruct = autoencoder.get_layer("decoder").get_layer("pca_reconstruct")
    except ValueError:
        raise ValueError(
            f"{autoencoder.name!r} has no PCA layers: set_pca fills the models of build_pca_shortcut_autoencoder."
        ) from None
    latent_dim = project.units
    components = np.asarray(pca.components, dtype=np.float64)
    if tuple(pca.image_shape) != CIFAR_SHAPE or components.shape != (latent_dim, INPUT_BYTES):
        raise ValueError(
            f"the PCA has {components.shape[0]} components of {tuple(pca.image_shape)} images, but the model needs "
            f"{latent_dim} components of {CIFAR_SHAPE} images: fit it with baselines.fit_pca(x_train, {latent_dim})."
        )
    # A tiny floor keeps components with (numerically) zero variance finite; the inverse undoes it exactly.
    sigma = np.sqrt(np.asarray(pca.variances, dtype=np.float64) + 1e-12)
    mean = np.asarray(pca.mean, dtype=np.float64).reshape(-1)
    forward = components.T / sigma
    project.set_weights([forward.astype("float32"), (-mean @ forward).astype("float32")])
    reconstruct.set_weights(
        [(components * sigma[:, None]).astype("float32"), mean.astype("float32")]
    )


#: The architectures a training run can name (``python -m cae_utils.train --architecture NAME``).
ARCHITECTURES = {
    "baseline": build_autoencoder,
    "course": build_course_autoencoder,
    "residual": build_residual_autoencoder,
    "pca-shortcut": build_pca_shortcut_autoencoder,
}


def build(architecture: str, latent_dim: int = 256, x_train=None):
    """Build ``(autoencoder, encoder, decoder)`` of a named architecture (a key of :data:`ARCHITECTURES`).

    Args:
        architecture: the architecture's name.
        latent_dim: length of the latent vector.
        x_train: training images (N, 32, 32, 3) in [0, 1]. The ``"pca-shortcut"`` architecture fits its PCA
            on them (:func:`set_pca`); without them its PCA layers hold zeros until weights are loaded.
            The other architectures ignore them.

    Raises:
        ValueError: the name is unknown.
    """
    if architecture not in ARCHITECTURES:
        raise ValueError(
            f"unknown architecture {architecture!r}: choose one of {', '.join(ARCHITECTURES)}."
        )
    autoencoder, encoder, decoder = ARCHITECTURES[architecture](latent_dim=latent_dim)
    if architecture == "pca-shortcut" and x_train is not None:
        from .baselines import fit_pca

        set_pca(autoencoder, fit_pca(x_train, latent_dim))
    return autoencoder, encoder, decoder


# --------------------------------------------------------------------------------------------------
# Size accounting (no TensorFlow needed)
# --------------------------------------------------------------------------------------------------


def compression_ratio(latent_dim: int, bits_per_value: int = 32, image_shape=CIFAR_SHAPE) -> float:
    """How many times smaller the latent vector is than the 8-bit image.

    ``ratio = (H * W * C * 8) / (latent_dim * bits_per_value)``. For a 32x32x3 image (24,576 bits):
    a 256-value float32 code (8,192 bits) gives 3.0; stored at 8 bits per value it gives 12.0;
    128 values at 8 bits give 24.0; 32 values at 8 bits give 96.0.

    Note: the founding notebook computed ``32*32*3*3 / latent_dim`` (36 for 256), multiplying by
    the channel count twice. That overstates even the 8-bit ratio (12) three times, and the
    float32 ratio it actually had (3) twelve times; see :func:`original_notebook_ratio`.

    Args:
        latent_dim: number of values in the latent vector, a positive int.
        bits_per_value: bits used to store each latent value (32 for float32, 8 once quantised).
        image_shape: (height, width, channels) of the 8-bit image being compressed.

    Returns:
        The ratio as a float (greater than 1 means the code is smaller than the image).

    Raises:
        ValueError: an argument is not a positive whole number (booleans and non-whole floats too).
    """
    latent_dim = _positive_int("latent_dim", latent_dim)
    bits_per_value = _positive_int("bits_per_value", bits_per_value)
    height, width, channels = _image_shape("image_shape", image_shape)
    return (height * width * channels * 8) / (latent_dim * bits_per_value)


def bits_per_pixel(latent_dim: int, bits_per_value: int = 32, image_shape=CIFAR_SHAPE) -> float:
    """Bits of latent code per image pixel: ``latent_dim * bits_per_value / (H * W)``.

    A pixel is one (R, G, B) position, so the uncompressed image costs 24 bpp. A 256-value float32
    code is 8.0 bpp; at 8 bits per value it is 2.0 bpp.

    Args:
        latent_dim: number of values in the latent vector, a positive int.
        bits_per_value: bits used to store each latent value.
        image_shape: (height, width, channels) of the image; only height and width are used.

    Returns:
        Bits per pixel as a float.

    Raises:
        ValueError: an argument is not a positive whole number (booleans and non-whole floats too).
    """
    latent_dim = _positive_int("latent_dim", latent_dim)
    bits_per_value = _positive_int("bits_per_value", bits_per_value)
    height, width, _ = _image_shape("image_shape", image_shape)
    return latent_dim * bits_per_value / (height * width)


def original_notebook_ratio(latent_dim: int) -> float:
    """The compression ratio as the founding notebook computed it: ``32*32*3*3 / latent_dim`` (wrong).

    Kept only to show the mistake next to the honest figure: the channel count 3 appears twice.
    For ``latent_dim=256`` it claims 36.0, while the image really holds 3072 values (ratio 12.0 if
    each latent value were stored in 8 bits) and the float32 code it used gives
    ``compression_ratio(256) == 3.0``.

    Args:
        latent_dim: number of values in the latent vector, a positive int.

    Returns:
        The notebook's (overstated) ratio as a float.
    """
    latent_dim = _positive_int("latent_dim", latent_dim)
    return 32 * 32 * 3 * 3 / latent_dim


def size_table(latent_dims=(32, 64, 128, 256, 384), bits=(32, 8)) -> pd.DataFrame:
    """Tabulate the size of the latent code for several lengths and storage precisions.

    Args:
        latent_dims: latent vector lengths to list.
        bits: bits per stored value to list for each length (32 = float32, 8 = quantised).

    Returns:
        A DataFrame with one row per (latent_dim, bits_per_value) pair, in that order, and columns
        ``latent_dim``, ``bits_per_value``, ``bytes`` (size of one code), ``bpp``
        (:func:`bits_per_pixel`) and ``compression_ratio`` (:func:`compression_ratio`) for a
        32x32x3 image.
    """
    rows = []
    for latent_dim in latent_dims:
        for bits_per_value in bits:
            ratio = compression_ratio(latent_dim, bits_per_value)  # validates both numbers
            latent_dim, bits_per_value = int(latent_dim), int(bits_per_value)
            rows.append(
                {
                    "latent_dim": latent_dim,
                    "bits_per_value": bits_per_value,
                    "bytes": latent_dim * bits_per_value / 8,
                    "bpp": bits_per_pixel(latent_dim, bits_per_value),
                    "compression_ratio": ratio,
                }
            )
    table = pd.DataFrame(
        rows, columns=["latent_dim", "bits_per_value", "bytes", "bpp", "compression_ratio"]
    )
    if len(table) and (table["bytes"] % 1 == 0).all():
        table["bytes"] = table["bytes"].astype(int)  # whole bytes read better as 1024 than 1024.0
    return table


# --------------------------------------------------------------------------------------------------
# Inspection
# --------------------------------------------------------------------------------------------------


def _shape_of(tensor):
    """Return a tensor's shape as a tuple (a list of tuples for a layer with several outputs)."""
    if isinstance(tensor, (list, tuple)):
        return [tuple(t.shape) for t in tensor]
    return tuple(tensor.shape)


def layer_shapes(model: keras.Model) -> pd.DataFrame:
    """List a model's layers with their output shapes and parameter counts.

    Args:
        model: a built functional Keras model (the encoder, the decoder, the autoencoder, ...).
            A nested model (the encoder inside the autoencoder) is listed as one row.

    Returns:
        A DataFrame with one row per layer, in order, and columns ``name``, ``type`` (the layer's
        class, e.g. ``"Conv2D"``), ``output_shape`` (a tuple such as ``(None, 16, 16, 64)``, where
        None is the batch size) and ``params`` (trainable and non-trainable weights).
    """
    rows = [
        {
            "name": layer.name,
            "type": type(layer).__name__,
            "output_shape": _shape_of(layer.output),
            "params": layer.count_params(),
        }
        for layer in model.layers
    ]
    return pd.DataFrame(rows, columns=["name", "type", "output_shape", "params"])
