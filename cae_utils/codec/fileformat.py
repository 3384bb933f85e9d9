"""The ``.cae`` file format: one compressed image, self-describing and checksummed.

Layout, byte by byte (all integers unsigned and big-endian; ``n`` is the length of the model name)::

    offset   size  field
    0        4     magic number b"\\x89CAE" (the high first byte catches 7-bit transfers, as in PNG)
    4        1     format version: 1
    5        1     n, the length of the model name in bytes (1 ... 64)
    6        n     model name, ASCII letters, digits, "." "_" "-" (e.g. "codec-low" or "tiny")
    6+n      2     image height in pixels (1 ... 65535)
    8+n      2     image width in pixels (1 ... 65535)
    10+n     4     table fingerprint: CRC-32 of the model's integer probability tables
                   (:meth:`cae_utils.codec.coder.Tables.fingerprint`), so a file made with another version
                   of a model of the same name is refused instead of decoded into noise
    14+n     4     L, the payload length in bytes (a multiple of 4)
    18+n     4     CRC-32 (``zlib.crc32``) of bytes 0 ... 17+n (everything before this field) followed by
                   the payload: the checksum covers the header too, so a damaged size or name is caught
    22+n     L     payload: the range coder's 32-bit words, each little-endian (see :mod:`.coder`)

The file ends right after the payload: a file of ``22 + n + L`` bytes. The latent shape is not stored:
it follows from the image size and the model (``ceil(height / 8) x ceil(width / 8) x latent_channels``).
An image holds at most :data:`MAX_PIXELS` (2**24, e.g. 4096 x 4096) pixels: the largest size the codec
really handles in one piece (about 4 GB of memory to compress or decompress). Version-1 files written
before this limit was lowered from 2**26 could not be decoded in memory anyway; they are refused. A small
file cannot make the
decoder allocate much: :func:`cae_utils.codec.decompress` refuses a payload shorter than the fewest bits
the model could code the stated image size in (:meth:`cae_utils.codec.coder.Tables.min_bits_per_position`)
before it allocates anything. A CIFAR-10 image (32 x 32) compressed with a model named ``low`` pays
25 header bytes, i.e. 0.2 bits per pixel: on images this small the header is a real part of the rate,
which is why the course reports both the payload's and the whole file's bits per pixel.

:func:`parse` checks, in this order, and raises :class:`CodecError` naming the first problem: empty
input, wrong magic ("not a .cae file"), unknown version, truncated header, bad model name, zero or
too large image size, payload length not a multiple of 4, truncated payload, trailing bytes after the payload, and the
checksum. Nothing else escapes: any damaged or truncated file raises :class:`CodecError`.
"""

from __future__ import annotations

import re
import struct
import zlib
from dataclasses import dataclass

__all__ = [
    "MAGIC",
    "VERSION",
    "MAX_SIDE",
    "MAX_PIXELS",
    "CodecError",
    "Header",
    "check_model_name",
    "check_image_size",
    "pack",
    "parse",
]

MAGIC = b"\x89CAE"
VERSION = 1
#: Largest height and width a .cae file can describe (2-byte fields).
MAX_SIDE = 65535
#: Largest number of pixels (height x width) a .cae file may hold: 2**24, e.g. 4096 x 4096.
MAX_PIXELS = 2**24
MAX_NAME = 64
_NAME_RE = re.compile(r"[A-Za-z0-9._-]+")
# height, width, table fingerprint, payload length (after the name); then the CRC
_SIZES = struct.Struct(">HHII")
_CRC = struct.Struct(">I")
_FIXED = len(MAGIC) + 2 + _SIZES.size + _CRC.size  # header bytes besides the name: 22


class CodecError(ValueError):
    """A .cae file or a compression request is invalid; the message says what is wrong."""


@dataclass(frozen=True)
class Header:
    """What a .cae header says: the model to decode with, the image size and the model's table fingerprint."""

    model: str
    height: int
    width: int
    tables_crc: int


def check_model_name(name) -> str:
    """Return ``name`` if it can be stored in a .cae header (1-64 ASCII letters, digits, ``._-``).

    Raises:
        CodecError: otherwise.
    """
    if not isinstance(name, str) or len(name) > MAX_NAME or not _NAME_RE.fullmatch(name):
        raise CodecError(
            f"model name {name!r} cannot be stored in a .cae file: use 1 to {MAX_NAME} ASCII letters, digits, "
            f"'.', '_' or '-'."
        )
    return name


def check_image_size(height: int, width: int) -> None:
    """Raise CodecError unless a .cae file can hold an image of ``height`` x ``width`` pixels."""
    for what, value in (("height", height), ("width", width)):
        if not 1 <= value <= MAX_SIDE:
            raise CodecError(
                f"image {what} {value} is out of range: a .cae file holds 1 to {MAX_SIDE} pixels a side."
            )
    if height * width > MAX_PIXELS:
        raise CodecError(
            f"image of {height} x {width} pixels is too large: a .cae file holds at most {MAX_PIXELS:,} pixels."
        )


def pack(header: Header, payload: bytes) -> bytes:
    """Bytes of a complete .cae file for ``header`` and ``payload`` (see the layout above).

    Raises:
        CodecError: the name, the image size or the payload length cannot be stored.
    """
    name = check_model_name(header.model).encode("ascii")
    check_image_size(header.height, header.width)
    if len(payload) % 4 or len(payload) >= 2**32:
        raise CodecError(
            f"payload of {len(payload)} bytes cannot be stored: it must be 32-bit words, under 4 GiB."
        )
    head = (
        MAGIC
        + bytes([VERSION, len(name)])
        + name
        + _SIZES.pack(header.height, header.width, header.tables_crc & 0xFFFFFFFF, len(payload))
    )
    crc = zlib.crc32(payload, zlib.crc32(head))
    return head + _CRC.pack(crc) + bytes(payload)


def parse(data: bytes) -> tuple[Header, bytes]:
    """Check a .cae file and split it into its header and payload.

    Args:
        data: the whole file's bytes.

    Returns:
        ``(header, payload)``.

    Raises:
        CodecError: the data is not a complete, undamaged .cae file of a known version; the message
            says what is wrong.
    """
    data = bytes(data)
    size = len(data)
    if size == 0:
        raise CodecError("empty input: not a .cae file.")
    if data[: len(MAGIC)] != MAGIC[: min(size, len(MAGIC))]:
        raise CodecError(
            f"not a .cae file: it starts with {data[:4]!r}, a .cae file starts with {MAGIC!r}."
        )
    if size < len(MAGIC) + 2:
        raise CodecError(f"truncated header: the file has only {size} bytes.")
    version, name_len = data[4], data[5]
    if version != VERSION:
        raise CodecError(
            f"unknown .cae format version {version}: this code reads version {VERSION}; update cae_utils."
        )
    header_len = _FIXED + name_len
    if size < header_len:
        raise CodecError(
            f"truncated header: it needs {header_len} bytes, the file has only {size}."
        )
    name_bytes = data[6 : 6 + name_len]
    name = name_bytes.decode("ascii", errors="replace")
    if not 1 <= name_len <= MAX_NAME or not _NAME_RE.fullmatch(name):
        raise CodecError(f"damaged header: the model name {name_bytes!r} is not a valid name.")
    height, width, tables_crc, payload_len = _SIZES.unpack_from(data, 6 + name_len)
    (crc,) = _CRC.unpack_from(data, header_len - _CRC.size)
    if height == 0 or width == 0 or height * width > MAX_PIXELS:
        raise CodecError(
            f"damaged or unsupported header: image size {height} x {width} (at most {MAX_PIXELS:,} pixels)."
        )
    if payload_len % 4:
        raise CodecError(f"damaged header: payload length {payload_len} is not a multiple of 4.")
    available = size - header_len
    if available < payload_len:
        raise CodecError(
            f"truncated payload: the header announces {payload_len} bytes, the file holds {available}."
        )
    if available > payload_len:
        raise CodecError(
            f"trailing garbage: {available - payload_len} bytes after the end of the payload."
        )
    payload = data[header_len:]
    if zlib.crc32(payload, zlib.crc32(data[: header_len - _CRC.size])) != crc:
        raise CodecError(
            "checksum mismatch: the file is damaged (its CRC-32 does not match its contents)."
        )
    return Header(name, height, width, tables_crc), payload
