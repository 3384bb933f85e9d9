"""A learned image codec (Ballé et al. 2017 style) with real bits and a real file format.

From autoencoder to codec: an analysis transform maps the image to a latent grid, the latent is
rounded to integers, a learned factorized entropy model gives each integer a probability, a range
coder turns those probabilities into bits, and a synthesis transform maps the decoded latent back to
pixels. Training replaces rounding with additive uniform noise and minimises ``bpp + lmbda * MSE``.

Modules:

- :mod:`.model`       the Keras model (transforms, GDN, factorized prior, loss) and its integer tables
- :mod:`.coder`       entropy coding of integer latents with integer tables (constriction's range coder)
- :mod:`.fileformat`  the ``.cae`` file format (version 2: 8 bytes of header and check on a 32 x 32 image;
                      version 1 still read), documented byte by byte, and :class:`CodecError`
- :mod:`.api`         :func:`compress`, :func:`decompress`, their batched :func:`compress_many` and
                      :func:`decompress_many`, shipped and registered models, measuring real files
                      (:func:`roundtrip`, :func:`rate_and_quality`, :func:`bit_budget`)
- :mod:`.training`    :func:`train_codec`, resumable run folders as :mod:`cae_utils.train` writes them
- ``python -m cae_utils.codec``  the command line: ``models``, ``compress``, ``decompress``, ``train``

Python use::

    from cae_utils import codec
    codec.models()                            # shipped models, lowest rate first: ['low', 'high'] (or [])
    data = codec.compress(image, model="low") # (H, W, 3) uint8 -> bytes of a .cae file
    image2 = codec.decompress(data)           # -> (H, W, 3) uint8; the file names its model
    codec.decompress(data, model=my_codec)    # a registered or user's own model: the file names none
    files = codec.compress_many(images)       # many images, one network call per batch -> list of bytes
    images2 = codec.decompress_many(files)    # -> list of (H, W, 3) uint8 images

Bad input raises :class:`CodecError` (a ``ValueError``) with a message that says what is wrong.
Importing this package does not import TensorFlow; the model functions load it when first used.
"""

from __future__ import annotations

from .api import (
    Codec,
    bit_budget,
    compress,
    compress_many,
    decompress,
    decompress_many,
    get,
    load,
    models,
    rate_and_quality,
    register,
    roundtrip,
    training_log,
    unregister,
)
from .fileformat import CodecError

__all__ = [
    "CodecError",
    "Codec",
    "models",
    "training_log",
    "compress",
    "decompress",
    "compress_many",
    "decompress_many",
    "get",
    "load",
    "register",
    "unregister",
    "rate_and_quality",
    "roundtrip",
    "bit_budget",
    "build_codec_model",
    "update_tables",
    "train_codec",
]

_LAZY = {"build_codec_model": "model", "update_tables": "model", "train_codec": "training"}


def __getattr__(name):
    """Load the TensorFlow-dependent functions on first use (``codec.build_codec_model``, ``codec.train_codec``)."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
