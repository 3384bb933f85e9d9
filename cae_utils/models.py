"""The convolutional autoencoder of the course, and honest size accounting.

Models (Keras 3, functional API):

- :func:`build_encoder`      image ``(32, 32, 3)`` -> latent vector ``(latent_dim,)``
- :func:`build_decoder`      latent vector ``(latent_dim,)`` -> image ``(32, 32, 3)`` in ``[0, 1]``
- :func:`build_autoencoder`  ``decoder(encoder(x))``: the latent vector is the only way through
- :func:`build_original_flawed_autoencoder`  the course's founding notebook's first model, whose
  decoder bypasses the latent vector (kept for a teaching demonstration only)

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
import pandas as pd
from keras import layers

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


#: The architectures a training run can name (``python -m cae_utils.train --architecture NAME``).
ARCHITECTURES = {
    "baseline": build_autoencoder,
    "course": build_course_autoencoder,
}


def build(architecture: str, latent_dim: int = 256):
    """Build ``(autoencoder, encoder, decoder)`` of a named architecture (a key of :data:`ARCHITECTURES`).

    Raises:
        ValueError: the name is unknown.
    """
    if architecture not in ARCHITECTURES:
        raise ValueError(
            f"unknown architecture {architecture!r}: choose one of {', '.join(ARCHITECTURES)}."
        )
    autoencoder, encoder, decoder = ARCHITECTURES[architecture](latent_dim=latent_dim)
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
