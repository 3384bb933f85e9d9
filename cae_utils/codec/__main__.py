"""Command line of the learned codec: ``python -m cae_utils.codec COMMAND ...``.

Commands::

    models                                the usable models, one per line with its nominal rate
    compress IN OUT [--model NAME]        PNG or JPEG image -> .cae file (default model: the first listed)
    decompress IN OUT.png [--model NAME]  .cae file -> PNG image (default model: the one the file names;
                                          a file written with a registered or user's own model names none)
    train --lmbda L --epochs N --out DIR [--channels N --latent-channels M --batch-size B ...]

Input images: PNG or JPEG of up to 2**24 pixels (4096 x 4096), at most 65535 a side. RGB images are taken as they are;
grayscale, palette, CMYK and images with transparency are converted to RGB (transparency flattened
onto white), with a note on stderr; 16-bit and floating-point images are refused (convert them to
8 bits first). Outputs are written to a temporary file beside the target and renamed into place, so
a failed command leaves no output behind. Errors print ``error: ...`` on stderr and exit with status
1 (2 for a bad command line).
"""

from __future__ import annotations

import argparse
import io
import shlex
import sys
from pathlib import Path

import numpy as np

from .._files import replace_atomically
from ..cli import UsageError, check_output, run_command
from .api import compress, decompress, models
from .fileformat import CodecError, check_image_size

INPUT_FORMATS = ("PNG", "JPEG")
_CONVERTED = {
    "L": "grayscale",
    "LA": "grayscale with transparency",
    "1": "black-and-white",
    "P": "palette",
    "PA": "palette with transparency",
    "RGBA": "RGB with transparency",
    "RGBa": "RGB with transparency",
    "CMYK": "CMYK",
    "YCbCr": "YCbCr",
    "LAB": "Lab",
    "HSV": "HSV",
    "La": "grayscale with transparency",
}


def read_image(path) -> tuple[np.ndarray, str | None]:
    """Read a PNG or JPEG file as an (H, W, 3) uint8 RGB array.

    Returns:
        ``(image, note)``: ``note`` says how the image was converted to RGB, None when it was RGB already.

    Raises:
        CodecError: the file cannot be read, is not a PNG or JPEG image, or has a mode that cannot be
            converted faithfully (16-bit, floating point).
    """
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise CodecError(f"cannot read {path}: {exc.strerror or exc}.") from exc
    if not raw:
        raise CodecError(f"{path} is empty: not a PNG or JPEG image.")
    try:
        with Image.open(io.BytesIO(raw)) as img:
            if img.format not in INPUT_FORMATS:
                raise CodecError(f"{path} is a {img.format} image: only PNG and JPEG are accepted.")
            try:  # by the size in the file's header, before a single pixel is decoded
                check_image_size(img.height, img.width)
            except CodecError as exc:
                raise CodecError(f"{path}: {exc}") from None
            img.load()
            mode = img.mode
            if mode == "RGB":
                return np.asarray(img, dtype=np.uint8).copy(), None
            if mode not in _CONVERTED:
                raise CodecError(
                    f"{path} has pixel mode {mode} (16-bit or floating point): convert it to 8-bit RGB first."
                )
            has_alpha = "A" in mode or "a" in mode or (mode == "P" and "transparency" in img.info)
            if has_alpha:
                rgba = img.convert("RGBA")
                white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
                rgb = Image.alpha_composite(white, rgba).convert("RGB")
            else:
                rgb = img.convert("RGB")
            note = f"{path} is a {_CONVERTED[mode]} image (mode {mode}): converted to RGB"
            note += ", transparency flattened onto white" if has_alpha else ""
            return np.asarray(rgb, dtype=np.uint8).copy(), note
    except CodecError:
        raise
    except UnidentifiedImageError as exc:
        raise CodecError(
            f"{path} is not a PNG or JPEG image (Pillow does not recognise its contents)."
        ) from exc
    except (OSError, ValueError, Image.DecompressionBombError, SyntaxError) as exc:
        raise CodecError(f"{path} is not a readable PNG or JPEG image ({exc}).") from exc


def _check_out(path: Path, source, suffix: str | None = None) -> Path:
    if suffix and path.suffix.lower() != suffix:
        raise UsageError(f"output {path} must end in {suffix}.")
    return check_output(path, inputs=[source])


def _write_png(path: Path, image: np.ndarray) -> None:
    from PIL import Image

    replace_atomically(path, lambda tmp: Image.fromarray(image, "RGB").save(tmp, format="PNG"))


def _cmd_models(args) -> int:
    for name, bpp in models(with_rates=True):
        print(f"{name}\t{'untrained/unknown' if bpp is None else f'{bpp:.3f} bpp'}")
    return 0


def _cmd_compress(args) -> int:
    out = _check_out(Path(args.output), args.input)
    image, note = read_image(args.input)
    if note:
        print(f"note: {note}", file=sys.stderr)
    data = compress(image, model=args.model)
    replace_atomically(out, lambda tmp: Path(tmp).write_bytes(data))
    h, w = image.shape[:2]
    print(f"{args.input} ({w}x{h}) -> {out}: {len(data)} bytes, {8 * len(data) / (h * w):.3f} bpp")
    return 0


def _cmd_decompress(args) -> int:
    out = _check_out(Path(args.output), args.input, ".png")
    try:
        data = Path(args.input).read_bytes()
    except OSError as exc:
        raise CodecError(f"cannot read {args.input}: {exc.strerror or exc}.") from exc
    image = decompress(data, model=args.model)
    _write_png(out, image)
    print(f"{args.input} -> {out} ({image.shape[1]}x{image.shape[0]})")
    return 0


def _cmd_train(args, argv) -> int:
    from .. import config
    from ..train import TrainingError, _check_run_folder, settings_from_args
    from .training import CodecRunConfig, starting_weights, train_codec

    try:  # the settings and the run folder, before any work (status 2, like the other usage errors)
        run = settings_from_args(CodecRunConfig, args)
        _check_run_folder(Path(args.out), run)
        starting_weights(run)
    except TrainingError as exc:
        raise UsageError(str(exc)) from None
    config.announce()
    command = "python -m cae_utils.codec " + " ".join(shlex.quote(a) for a in argv)
    train_codec(
        run=run,
        out_dir=args.out,
        verbose=1 if config.fit_verbosity() == 1 else 0,
        command=command,
    )
    print(
        f"done: {args.out}; ship it with python -m cae_utils.maintainer export-codec {args.out} NAME",
        flush=True,
    )
    return 0


def _parser() -> argparse.ArgumentParser:
    from .training import CodecRunConfig

    defaults = CodecRunConfig.__dataclass_fields__
    p = argparse.ArgumentParser(
        prog="python -m cae_utils.codec", description="The course's learned image codec."
    )
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("models", help="list the usable codec models and their nominal rates")
    c = sub.add_parser("compress", help="compress a PNG or JPEG image into a .cae file")
    c.add_argument("input")
    c.add_argument("output")
    c.add_argument(
        "--model", default=None, help="codec model name (default: the first of `models`)"
    )
    d = sub.add_parser("decompress", help="decompress a .cae file into a PNG image")
    d.add_argument("input")
    d.add_argument("output", help="the PNG file to write")
    d.add_argument(
        "--model",
        default=None,
        help="codec model name (default: the one the file names; needed when it names none)",
    )
    t = sub.add_parser("train", help="train a codec model (resumes a run in the same --out folder)")
    t.add_argument(
        "--lmbda",
        type=float,
        required=True,
        help="weight of the MSE (0-255 scale) vs the bpp, e.g. 0.01",
    )
    t.add_argument("--epochs", type=int, required=True)
    t.add_argument("--out", required=True, help="run folder")
    for name in ("channels", "latent_channels", "batch_size", "patience"):
        t.add_argument(f"--{name.replace('_', '-')}", type=int, default=defaults[name].default)
    t.add_argument("--learning-rate", type=float, default=defaults["learning_rate"].default)
    t.add_argument("--seed", type=int, default=None, help="seed (default: CAE_SEED, else 42)")
    t.add_argument(
        "--deterministic", action="store_true", help="deterministic TensorFlow ops (slower)"
    )
    t.add_argument(
        "--init-from",
        default=None,
        help="start from the best weights of this finished codec run folder",
    )
    return p


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit status (0 success, 1 error, 2 bad command line)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    args = _parser().parse_args(argv)
    commands = {"models": _cmd_models, "compress": _cmd_compress, "decompress": _cmd_decompress}
    if args.command == "train":
        return run_command(lambda: _cmd_train(args, argv))
    return run_command(lambda: commands[args.command](args))


if __name__ == "__main__":
    sys.exit(main())
