"""The ``.cae`` file format: one compressed image, self-describing and checked.

**Version 2** (written today). Layout, byte by byte (``a`` and ``b`` are the lengths of the two sizes)::

    offset   size  field
    0        1     magic number 0xCA (its high bit catches 7-bit transfers)
    1        1     format version: 2
    2        1     model number (:data:`MODEL_NUMBERS`); 0: the file does not name its model
    3        a     image height - 1, an unsigned LEB128 varint (see below)
    3+a      b     image width - 1, the same
    3+a+b    3     check: the low 24 bits of CRC-32 (``zlib.crc32``), big-endian, of bytes 0 ... 2+a+b
                   followed by the payload, the CRC started from the model's table fingerprint
                   (:meth:`cae_utils.codec.coder.Tables.fingerprint`)
    6+a+b    L     payload: the range coder's 32-bit words, each little-endian (see :mod:`.coder`), the
                   final word's zero high bytes dropped (at most 3: at least one byte of it stays)

The file ends right after the payload: there is no length field. A **varint** holds 7 bits a byte, lowest
first; a byte's high bit says another follows. ``h - 1`` takes one byte up to 128 pixels a side, two up to
16,384, three up to :data:`MAX_SIDE`; only the shortest form is accepted, so each image has exactly one
header. A 32 x 32 image pays 8 bytes of header and check (1/16 bit per pixel), whatever its model.

The **check** is computed from the bytes as stored. The table fingerprint is itself a CRC-32 of the model's
tables, so the check is the CRC-32 of the tables, the header and the payload together: a damaged file, and a
file decoded with another model or another version of its model, fail it (the chance that damage goes
unseen is 1 in 2**24). :func:`parse` cannot verify it (it does not know the model);
:func:`cae_utils.codec.decompress` calls :func:`verify` once it has the model.

**Model numbers** never change: append a new shipped model to :data:`MODEL_NUMBERS`, never reuse or
renumber one. A model outside the table (a registered one, a user's own) writes 0; decoding such a file
needs the model passed (``decompress(data, model=...)``, ``--model NAME``).

**The dropped bytes.** The decoder puts the dropped zero bytes back (:func:`words`), so it decodes exactly
the coder's words. In little-endian order the last byte is the final word's most significant one, zero in
about 2 % of CIFAR-10 files (``low``, ``medium``): the saving is small (0.05 to 0.08 byte a file), and never
more than 3 bytes, which keeps the decoder's payload bound below sound. A payload ending in a zero byte a
writer would have dropped is refused.

**Version 1** (read only: :func:`parse` still reads it, :func:`pack` writes version 2). All integers
big-endian, ``n`` the length of the model name::

    offset   size  field
    0        4     magic number b"\\x89CAE"
    4        1     format version: 1
    5        1     n, the length of the model name in bytes (1 ... 64)
    6        n     model name, ASCII letters, digits, "." "_" "-"
    6+n      2     image height in pixels (1 ... 65535)
    8+n      2     image width in pixels (1 ... 65535)
    10+n     4     table fingerprint (:meth:`cae_utils.codec.coder.Tables.fingerprint`)
    14+n     4     L, the payload length in bytes (a multiple of 4)
    18+n     4     CRC-32 of bytes 0 ... 17+n followed by the payload
    22+n     L     payload: the range coder's 32-bit words, each little-endian

A version-1 file carries 22 + n bytes of header (28 for ``medium``: 0.22 bit per pixel on 32 x 32). One
of more than :data:`MAX_PIXELS` pixels (allowed before the limit was lowered from 2**26) is refused.

**Limits.** The latent shape is not stored: it follows from the image size and the model
(``ceil(height / 8) x ceil(width / 8) x latent_channels``). An image holds at most :data:`MAX_PIXELS` (2**24,
e.g. 4096 x 4096) pixels: the largest size the codec really handles in one piece (about 4 GB of memory to
compress or decompress). A small file cannot make the decoder allocate much:
:func:`cae_utils.codec.decompress` refuses a payload shorter than the fewest bits the model could code the
stated image size in (:meth:`cae_utils.codec.coder.Tables.min_bits_per_position`) before it allocates
anything.

:func:`parse` checks, in this order, and raises :class:`CodecError` naming the first problem: empty input,
wrong magic ("not a .cae file"), unknown version, truncated header; for version 2 an unknown model number,
a size not in its shortest form or too long, too large an image size, a missing payload and a payload
ending in a zero byte; for version 1 a bad model name, a zero or too large image size, a payload length not
a multiple of 4, a truncated payload, trailing bytes and the CRC-32. Nothing else escapes: any damaged or
truncated file raises :class:`CodecError`, from :func:`parse` or from :func:`verify`.
"""

from __future__ import annotations

import re
import struct
import zlib
from dataclasses import dataclass

__all__ = [
    "MAGIC",
    "VERSION",
    "MAGIC_V1",
    "MODEL_NUMBERS",
    "MAX_SIDE",
    "MAX_PIXELS",
    "CodecError",
    "Header",
    "check_model_name",
    "check_image_size",
    "pack",
    "parse",
    "verify",
    "words",
]

MAGIC = b"\xca"
VERSION = 2
MAGIC_V1 = b"\x89CAE"
#: The shipped codec models' numbers in version-2 files. Append only: never reuse or renumber one.
MODEL_NUMBERS = {"very-low": 1, "low": 2, "medium": 3, "high": 4, "very-high": 5, "highest": 6}
_MODEL_NAMES = {number: name for name, number in MODEL_NUMBERS.items()}
#: Largest height and width a .cae file can describe.
MAX_SIDE = 65535
#: Largest number of pixels (height x width) a .cae file may hold: 2**24, e.g. 4096 x 4096.
MAX_PIXELS = 2**24
MAX_NAME = 64
_NAME_RE = re.compile(r"[A-Za-z0-9._-]+")
_CHECK_BYTES = 3
_VARINT_BYTES = 3  # enough for MAX_SIDE - 1 (16 bits)
# version 1: height, width, table fingerprint, payload length (after the name); then the CRC
_SIZES = struct.Struct(">HHII")
_CRC = struct.Struct(">I")
_FIXED_V1 = len(MAGIC_V1) + 2 + _SIZES.size + _CRC.size  # header bytes besides the name: 22


class CodecError(ValueError):
    """A .cae file or a compression request is invalid; the message says what is wrong."""


@dataclass(frozen=True)
class Header:
    """What a .cae header says.

    Attributes:
        model: the model's name; None when the file does not name it (model number 0).
        height, width: the image size in pixels.
        version: the format version of the file.
        check: version 2: the 24-bit check the file stores (:func:`pack` computes it; None before).
        tables_crc: version 1: the table fingerprint the file stores.
    """

    model: str | None
    height: int
    width: int
    version: int = VERSION
    check: int | None = None
    tables_crc: int | None = None


def check_model_name(name) -> str:
    """Return ``name`` if it is a valid codec model name (1-64 ASCII letters, digits, ``._-``).

    Raises:
        CodecError: otherwise.
    """
    if not isinstance(name, str) or len(name) > MAX_NAME or not _NAME_RE.fullmatch(name):
        raise CodecError(
            f"model name {name!r} is not valid: use 1 to {MAX_NAME} ASCII letters, digits, "
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


# --------------------------------------------------------------------------------------- writing


def _varint(value: int) -> bytes:
    """The unsigned LEB128 bytes of ``value``: 7 bits a byte, lowest first, high bit set on all but the last."""
    out = bytearray()
    while value >= 0x80:
        out.append(0x80 | value & 0x7F)
        value >>= 7
    out.append(value)
    return bytes(out)


def _head(header: Header) -> bytes:
    """The version-2 header bytes before the check: magic, version, model number, sizes."""
    number = MODEL_NUMBERS.get(header.model, 0)
    return MAGIC + bytes([VERSION, number]) + _varint(header.height - 1) + _varint(header.width - 1)


def _check(head: bytes, payload: bytes, fingerprint: int) -> int:
    """The version-2 check: low 24 bits of the CRC-32 of ``head`` then ``payload``, started from ``fingerprint``."""
    return zlib.crc32(payload, zlib.crc32(head, fingerprint & 0xFFFFFFFF)) & 0xFFFFFF


def pack(header: Header, payload: bytes, fingerprint: int) -> bytes:
    """Bytes of a complete version-2 .cae file (see the layout above).

    Args:
        header: the model's name (a name outside :data:`MODEL_NUMBERS`, or None, writes model number 0)
            and the image size; its ``check`` is ignored and computed here.
        payload: the range coder's words (:func:`cae_utils.codec.coder.encode`).
        fingerprint: the model's table fingerprint, which starts the check.

    Raises:
        CodecError: the image size cannot be stored, or the payload is not whole 32-bit words (at least one).
    """
    check_image_size(header.height, header.width)
    if not payload or len(payload) % 4:
        raise CodecError(
            f"payload of {len(payload)} bytes cannot be stored: it must be whole 32-bit words, at least one."
        )
    keep = len(payload) - 3
    stored = bytes(payload[:keep]) + bytes(payload[keep:]).rstrip(b"\0")
    head = _head(header)
    return head + _check(head, stored, fingerprint).to_bytes(_CHECK_BYTES, "big") + stored


# --------------------------------------------------------------------------------------- reading


def _unknown_version(version: int) -> CodecError:
    return CodecError(
        f"unknown .cae format version {version}: this code reads versions 1 and 2 "
        f"(update cae_utils, or the file is not a .cae file)."
    )


def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
    """The varint at ``data[pos]`` and the position after it; CodecError if truncated, too long or not shortest."""
    value = 0
    for i, byte in enumerate(data[pos : pos + _VARINT_BYTES]):
        value |= (byte & 0x7F) << (7 * i)
        if byte < 0x80:
            if i and byte == 0:
                raise CodecError(
                    "damaged header: an image size is not written in its shortest form."
                )
            return value, pos + i + 1
    if len(data) < pos + _VARINT_BYTES:
        raise CodecError(f"truncated header: the file has only {len(data)} bytes.")
    raise CodecError(f"damaged header: an image size takes more than {_VARINT_BYTES} bytes.")


def parse(data: bytes) -> tuple[Header, bytes]:
    """Check the structure of a .cae file (version 2 or 1) and split it into its header and payload.

    The payload is returned as stored; :func:`words` turns a version-2 payload back into the coder's words.
    A version-1 file's CRC-32 is checked here; a version-2 file's check needs the model: :func:`verify`.

    Raises:
        CodecError: the data is not a complete .cae file of a known version; the message says what is wrong.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise CodecError(
            f"a .cae file is bytes, got {type(data).__name__}: pass the file's contents (Path.read_bytes())."
        )
    data = bytes(data)
    if not data:
        raise CodecError("empty input: not a .cae file.")
    if data[0] == MAGIC_V1[0]:
        return _parse_v1(data)
    if data[:1] != MAGIC:
        raise CodecError(
            f"not a .cae file: it starts with {data[:4]!r}, a .cae file starts with {MAGIC!r} "
            f"(or {MAGIC_V1!r}, version 1)."
        )
    if len(data) < 3:
        raise CodecError(f"truncated header: the file has only {len(data)} bytes.")
    if data[1] != VERSION:
        raise _unknown_version(data[1])
    number = data[2]
    if number and number not in _MODEL_NAMES:
        raise CodecError(
            f"unknown model number {number}: the file was written by a newer cae_utils (update it), "
            f"or it is damaged."
        )
    height, pos = _read_varint(data, 3)
    width, pos = _read_varint(data, pos)
    height, width = height + 1, width + 1
    if height > MAX_SIDE or width > MAX_SIDE or height * width > MAX_PIXELS:
        raise CodecError(
            f"damaged or unsupported header: image size {height} x {width} (at most {MAX_SIDE} a side, "
            f"{MAX_PIXELS:,} pixels)."
        )
    end = pos + _CHECK_BYTES
    if len(data) < end:
        raise CodecError(f"truncated header: it needs {end} bytes, the file has only {len(data)}.")
    payload = data[end:]
    if not payload:
        raise CodecError("truncated file: it ends after its header, without a payload.")
    if payload[-1] == 0 and len(payload) % 4 != 1:
        raise CodecError(
            "damaged file: its payload ends in a zero byte that a .cae writer drops (trailing garbage?)."
        )
    check = int.from_bytes(data[pos:end], "big")
    return Header(_MODEL_NAMES.get(number), height, width, check=check), payload


def _parse_v1(data: bytes) -> tuple[Header, bytes]:
    """:func:`parse` for a file that starts like a version-1 file; its CRC-32 is checked here."""
    size = len(data)
    if data[: len(MAGIC_V1)] != MAGIC_V1[: min(size, len(MAGIC_V1))]:
        raise CodecError(
            f"not a .cae file: it starts with {data[:4]!r}, a .cae file starts with {MAGIC!r} "
            f"(or {MAGIC_V1!r}, version 1)."
        )
    if size < len(MAGIC_V1) + 2:
        raise CodecError(f"truncated header: the file has only {size} bytes.")
    version, name_len = data[4], data[5]
    if version != 1:
        raise _unknown_version(version)
    header_len = _FIXED_V1 + name_len
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
    return Header(name, height, width, version=1, tables_crc=tables_crc), payload


def verify(header: Header, payload: bytes, fingerprint: int) -> None:
    """Raise CodecError unless the parsed file is undamaged and belongs to the model of table ``fingerprint``.

    Version 2: recomputes the check. Version 1: compares the stored table fingerprint (its CRC-32 was
    checked by :func:`parse`).
    """
    if header.version == 1:
        if header.tables_crc != fingerprint:
            raise CodecError(
                f"the file was compressed with another version of model {header.model!r} (its tables differ): "
                f"decode it with the version that wrote it."
            )
    elif _check(_head(header), payload, fingerprint) != header.check:
        which = (
            f"another version of model {header.model!r}"
            if header.model
            else "another model (or version)"
        )
        raise CodecError(f"checksum mismatch: the file is damaged, or was written with {which}.")


def words(payload: bytes) -> bytes:
    """The range coder's words from a stored payload: the dropped zero bytes put back (a multiple of 4 bytes)."""
    return bytes(payload) + bytes(-len(payload) % 4)
