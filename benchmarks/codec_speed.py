"""Codec speed benchmark: encode and decode throughput of the learned codec beside Pillow's WebP.

In one run on this machine, for the same images:

- **small images**: ``--images`` CIFAR-10 test images (32 x 32, default all 10,000); throughput in images
  per second;
- **one large image**: a ``--large`` mosaic of upscaled CIFAR-10 test images (default 1024 x 768), or the
  picture given with ``--image``; throughput in megapixels per second.

Each is timed, encoding then decoding every image through complete files, for the codec model in batches
(``compress_many`` / ``decompress_many``: one network call per batch of up to 256 images, then entropy
coding and file format image by image), for the codec model one image at a time (``compress`` /
``decompress``, as a loop over single images would) and for WebP (Pillow, one image at a time, ``method=6``,
``--webp-quality``), with the rate (bits per pixel of the whole file) and mean PSNR beside. A warm-up on the
first images is not timed.

Usage (the data comes from ``CAE_DATA_DIR`` or Keras's download; without it, synthetic images are used
and the table says so)::

    python benchmarks/codec_speed.py                 # the first shipped model
    python benchmarks/codec_speed.py --model NAME
    python benchmarks/codec_speed.py --untrained     # a random-init model of the default size: timings only

Exits with status 2 when no codec model is shipped and ``--untrained`` is not given.
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import sys
import time

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def small_images(count: int) -> tuple[np.ndarray, str]:
    """``count`` CIFAR-10 test images as uint8 (N, 32, 32, 3) and where they came from (synthetic if unavailable)."""
    from cae_utils import config, data

    try:
        x = data.load_cifar10(quick=count <= config.QUICK_SIZES["test"]).x_test[:count]
        return data.to_uint8(x), "CIFAR-10 test images"
    except data.CifarDataError as exc:
        print(
            f"note: CIFAR-10 is not available ({str(exc)[:80]}...): timing synthetic images",
            file=sys.stderr,
        )
        rng = np.random.default_rng(0)
        base = rng.integers(0, 256, (count, 4, 4, 3)).astype(np.float32)
        smooth = base.repeat(8, 1).repeat(8, 2) + rng.normal(0, 8, (count, 32, 32, 3))
        return np.clip(smooth, 0, 255).astype(np.uint8), "synthetic images"


def large_size(text: str) -> tuple[int, int]:
    """``"WxH"`` as ``(width, height)``, each from 32 to 4096; raise ``UsageError`` otherwise."""
    from cae_utils import config
    from cae_utils.cli import UsageError

    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise UsageError(f"--large must be WIDTHxHEIGHT such as 1024x768, got {text!r}.") from None
    for name, value in (("--large width", width), ("--large height", height)):
        config.check_number(name, value, 32, 4096, whole=True, error=UsageError)
    return width, height


def large_image(small: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, str]:
    """The large test image: a mosaic of ``small`` upscaled 4x to ``size`` (W, H), and its description."""
    from PIL import Image

    width, height = size
    tile = 128
    cols, rows = -(-width // tile), -(-height // tile)
    upscale = lambda image: np.asarray(Image.fromarray(image).resize((tile, tile), Image.BICUBIC))  # noqa: E731
    tiles = [upscale(small[i % len(small)]) for i in range(cols * rows)]
    mosaic = np.concatenate(
        [np.concatenate(tiles[r * cols : (r + 1) * cols], axis=1) for r in range(rows)], axis=0
    )
    return mosaic[:height, :width], f"mosaic of CIFAR-10 images upscaled 4x, {width}x{height}"


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(255.0**2 / max(mse, 1e-10)))


def time_method(encode, decode, images) -> dict:
    """Encode then decode every image (``encode``: images -> files, ``decode``: files -> images); returns
    seconds of each, bits per pixel and mean PSNR."""
    decode(encode(images[:300]))  # warm-up: for the codec, a full batch and a smaller one
    start = time.perf_counter()
    blobs = encode(images)
    encode_s = time.perf_counter() - start
    start = time.perf_counter()
    decoded = decode(blobs)
    decode_s = time.perf_counter() - start
    pixels = sum(im.shape[0] * im.shape[1] for im in images)
    return {
        "encode_s": encode_s,
        "decode_s": decode_s,
        "bpp": 8 * sum(len(b) for b in blobs) / pixels,
        "psnr": float(np.mean([psnr(a, b) for a, b in zip(images, decoded)])),
        "pixels": pixels,
        "count": len(images),
    }


def one_at_a_time(encode, decode):
    """(encode, decode) of lists from functions of one image or file."""
    return (
        lambda images: [encode(im) for im in images],
        lambda files: [decode(f) for f in files],
    )


def webp(quality: int):
    """(encode, decode) functions of one image for Pillow's WebP at ``quality``, method 6."""
    from PIL import Image

    def encode(image):
        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, format="WEBP", quality=quality, method=6)
        return buffer.getvalue()

    def decode(data):
        with Image.open(io.BytesIO(data)) as img:
            return np.asarray(img.convert("RGB"))

    return encode, decode


def pick_codec(args):
    """The codec to time and its label; None when no model is shipped and --untrained was not given."""
    from cae_utils import codec

    if args.untrained:
        from cae_utils.codec.model import build_codec_model, update_tables

        model = build_codec_model(0.01, dtype="float32", seed=0)
        update_tables(model)
        label = "UNTRAINED random-init model (timings only; rate and PSNR meaningless)"
        return codec.Codec.from_model("untrained", model), label
    names = codec.models()
    if args.model is None and not names:
        return None, None
    c = codec.get(args.model)
    return c, f"codec model {c.name!r} (nominal {c.nominal_bpp} bpp)"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description="Encode/decode speed of the learned codec beside WebP.")
    p.add_argument(
        "--model", default=None, help="codec model name (default: the first shipped model)"
    )
    p.add_argument(
        "--untrained", action="store_true", help="time a random-init model of the default size"
    )
    p.add_argument("--images", type=int, default=10_000, help="32x32 test images to time")
    p.add_argument("--large", default="1024x768", help="size WxH of the large test mosaic")
    p.add_argument("--image", default=None, help="time this picture instead of the mosaic")
    p.add_argument("--webp-quality", type=int, default=75)
    args = p.parse_args(argv)

    from cae_utils.cli import run_command

    return run_command(lambda: run(args))


def run(args) -> int:
    """Time the codec and WebP as ``args`` asks; a bad setting raises ``UsageError`` before any work."""
    from cae_utils import codec, config
    from cae_utils.cli import UsageError

    try:
        config.check_number("--images", args.images, 1, 10_000, whole=True, error=UsageError)
        config.check_number(
            "--webp-quality", args.webp_quality, 0, 100, whole=True, error=UsageError
        )
        args.large = large_size(args.large)
        if args.image is not None and not os.path.isfile(args.image):
            raise UsageError(f"--image {args.image} is not a file: name a PNG or JPEG picture.")
        chosen, label = pick_codec(args)
    except codec.CodecError as exc:
        raise UsageError(str(exc)) from exc
    if chosen is None:
        raise UsageError(
            "no codec model is shipped yet (weights/ has no codec-*.json). Name one with --model, "
            "or pass --untrained to time a random-init model."
        )
    from cae_utils.codec.__main__ import read_image

    # a picture is read as the codec's command line reads it: its size checked before decoding
    picture = (read_image(args.image)[0], args.image) if args.image else None
    small, small_source = small_images(args.images)
    large, large_source = picture or large_image(small, args.large)
    import tensorflow as tf

    gpu = bool(tf.config.list_physical_devices("GPU"))
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPU cores, GPU: {gpu}")
    print(f"codec:   {label}")
    print(
        f"small:   {len(small)} {small_source} (32x32); large: {large_source} ({large.shape[1]}x{large.shape[0]})\n"
    )

    methods = {
        f"codec {chosen.name}, batches": (
            lambda images: codec.compress_many(images, chosen),
            lambda files: codec.decompress_many(files, chosen),
        ),
        f"codec {chosen.name}, 1 by 1": one_at_a_time(
            lambda im: codec.compress(im, chosen), lambda d: codec.decompress(d, chosen)
        ),
        f"WebP q{args.webp_quality} m6": one_at_a_time(*webp(args.webp_quality)),
    }
    header = (
        f"{'method':26s} {'enc img/s':>10s} {'dec img/s':>10s} {'bpp':>7s} {'PSNR':>7s} | "
        f"{'enc MP/s':>9s} {'dec MP/s':>9s} {'bpp':>7s} {'PSNR':>7s}"
    )
    print(header)
    print("-" * len(header))
    for name, (enc, dec) in methods.items():
        s = time_method(enc, dec, list(small))
        big = time_method(enc, dec, [large])
        mp = big["pixels"] / 1e6
        print(
            f"{name:26s} {s['count'] / s['encode_s']:10.1f} {s['count'] / s['decode_s']:10.1f} "
            f"{s['bpp']:7.3f} {s['psnr']:7.2f} | "
            f"{mp / big['encode_s']:9.3f} {mp / big['decode_s']:9.3f} {big['bpp']:7.3f} {big['psnr']:7.2f}",
            flush=True,
        )
    print(
        "\n(images/s and MP/s: single process; the large image is one image in every row; bpp: whole "
        "files, headers included)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
