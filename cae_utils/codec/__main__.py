"""Command line of the learned codec: ``python -m cae_utils.codec COMMAND ...``.

Commands::

    models                                the usable models, one per line with its nominal rate
    compress IN OUT [--model NAME]        PNG or JPEG image -> .cae file (default model: the first listed)
    compress IN [IN ...] FOLDER           several images, or folders of them -> FOLDER/<name>.cae each
    decompress IN OUT.png [--model NAME]  .cae file -> PNG image (default model: the one the file names;
                                          a file written with a registered or user's own model names none)
    decompress IN [IN ...] FOLDER         several .cae files, or folders of them -> FOLDER/<name>.png each
    train --lmbda L --epochs N --out DIR [--channels N --latent-channels M --batch-size B ...]

Several inputs go through the networks in batches (much faster than one command per file). A folder input
stands for its ``.png``, ``.jpg`` and ``.jpeg`` files (``compress``) or its ``.cae`` files (``decompress``), in
name order, hidden files skipped, subfolders not searched; with several inputs or a folder, OUT must be an
existing folder. Every output is checked before any work (not an input, not an existing folder, link or
other special file, in an existing folder; no two inputs may give the same output name), and every input is
read and checked before anything is written, so a bad input leaves no output behind (all images are held
in memory together: split very large jobs).

Input images: PNG or JPEG of up to 2**24 pixels (4096 x 4096), at most 65535 a side. RGB images are taken as they are;
grayscale, palette, CMYK and images with transparency are converted to RGB (transparency flattened
onto white), with a note on stderr; 16-bit and floating-point images are refused (convert them to
8 bits first). Outputs are written to a temporary file beside the target and renamed into place, so
a failed command leaves no output behind. Errors print ``error: ...`` on stderr (naming the file at fault) and
exit with status 1 (2 for a bad command line or a refused output).
"""

from __future__ import annotations

import argparse
import io
import shlex
import sys
from pathlib import Path

import numpy as np

from .._files import regular_file_size, replace_atomically
from ..cli import UsageError, check_outputs, run_command
from .api import compress_many, decompress_many, models
from .fileformat import CodecError, check_image_size

INPUT_FORMATS = ("PNG", "JPEG")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
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
    raw = _read_bytes(path)
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


def _plan(args, suffixes, out_suffix: str, one_suffix: str | None) -> list[tuple[Path, Path]]:
    """The (input, output) pairs of ``compress`` or ``decompress``, every output checked before any work.

    One input file: ``args.output`` is its output (which must end in ``one_suffix`` when given). Otherwise
    (several inputs, or a folder: its files ending in ``suffixes``) ``args.output`` must be a folder and
    each output is ``OUTPUT/STEM`` + ``out_suffix``.
    """
    sources = []
    for given in map(Path, args.inputs):
        if not given.is_dir():
            sources.append(given)
            continue
        found = sorted(
            p
            for p in given.iterdir()
            if p.suffix.lower() in suffixes and not p.name.startswith(".") and p.is_file()
        )
        if not found:
            raise UsageError(f"the folder {given} holds no {' or '.join(suffixes)} file.")
        sources += found
    out = Path(args.output)
    if len(args.inputs) == 1 and not Path(args.inputs[0]).is_dir():
        if one_suffix and out.suffix.lower() != one_suffix:
            raise UsageError(f"output {out} must end in {one_suffix}.")
        targets = [out]
    elif not out.is_dir():
        raise UsageError(
            f"with several inputs or a folder, the output must be an existing folder: {out} is not one. "
            "Create it first."
        )
    else:
        targets, taken = [], {}
        for source in sources:
            target = out / (source.stem + out_suffix)
            if target in taken:
                raise UsageError(
                    f"{taken[target]} and {source} would both be written to {target}: write them to "
                    "separate folders, or rename one."
                )
            taken[target] = source
            targets.append(target)
    return list(zip(sources, check_outputs(targets, inputs=sources)))


def _write_png(path: Path, image: np.ndarray) -> None:
    from PIL import Image

    replace_atomically(path, lambda tmp: Image.fromarray(image, "RGB").save(tmp, format="PNG"))


def _cmd_models(args) -> int:
    for name, bpp in models(with_rates=True):
        print(f"{name}\t{'untrained/unknown' if bpp is None else f'{bpp:.3f} bpp'}")
    return 0


def _cmd_compress(args) -> int:
    pairs = _plan(args, IMAGE_SUFFIXES, ".cae", None)
    images = []
    for source, _ in pairs:
        image, note = read_image(source)
        if note:
            print(f"note: {note}", file=sys.stderr)
        images.append(image)
    files = compress_many(images, model=args.model)
    for (source, out), image, data in zip(pairs, images, files):
        replace_atomically(out, lambda tmp, data=data: Path(tmp).write_bytes(data))
        h, w = image.shape[:2]
        print(f"{source} ({w}x{h}) -> {out}: {len(data)} bytes, {8 * len(data) / (h * w):.3f} bpp")
    return 0


#: The largest input file read (a PNG of the largest image a .cae file holds is far smaller).
MAX_INPUT_BYTES = 2**30


def _read_bytes(path: Path) -> bytes:
    """The contents of the regular file ``path``, at most :data:`MAX_INPUT_BYTES` (a device, a FIFO or a
    folder is refused before it is read: reading one could block or never end)."""
    try:
        size = regular_file_size(path)
        if size is None:
            raise CodecError(f"{path} is not a regular file: name a PNG, JPEG or .cae file.")
        if size > MAX_INPUT_BYTES:
            raise CodecError(
                f"{path} is larger than {MAX_INPUT_BYTES:,} bytes: it is not an input this tool reads."
            )
        return path.read_bytes()
    except OSError as exc:
        raise CodecError(f"cannot read {path}: {exc.strerror or exc}.") from exc


def _cmd_decompress(args) -> int:
    pairs = _plan(args, (".cae",), ".png", ".png")
    files = [_read_bytes(source) for source, _ in pairs]
    names = [str(source) for source, _ in pairs]
    images = decompress_many(files, model=args.model, names=names)
    for (source, out), image in zip(pairs, images):
        _write_png(out, image)
        print(f"{source} -> {out} ({image.shape[1]}x{image.shape[0]})")
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
    many = (
        "Several inputs go through the networks in batches. Every output is checked, and every input read "
        "and checked, before anything is written: a bad input leaves no output behind."
    )
    c = sub.add_parser(
        "compress", help="compress PNG or JPEG images into .cae files", description=many
    )
    c.add_argument(
        "inputs", nargs="+", metavar="IN", help="a PNG or JPEG image, or a folder of them"
    )
    c.add_argument(
        "output",
        metavar="OUT",
        help="the .cae file to write; with several inputs or a folder, an existing folder (OUT/NAME.cae)",
    )
    c.add_argument(
        "--model", default=None, help="codec model name (default: the first of `models`)"
    )
    d = sub.add_parser("decompress", help="decompress .cae files into PNG images", description=many)
    d.add_argument("inputs", nargs="+", metavar="IN", help="a .cae file, or a folder of them")
    d.add_argument(
        "output",
        metavar="OUT",
        help="the .png file to write; with several inputs or a folder, an existing folder (OUT/NAME.png)",
    )
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
