"""Entropy coding of integer latents with integer probability tables (NumPy and constriction only).

**Tables.** Each latent channel ``c`` has a table of ``length[c]`` integer counts ``pmf[c, :length[c]]``
that sum to ``2**PRECISION`` (65,536), every count at least 1. Index ``i < length[c] - 1`` stands for
the latent value ``k = lower[c] + i``; the last index is the **escape** symbol, for every value outside
``[lower[c], lower[c] + length[c] - 2]``. The tables are computed once, when a model is exported
(:func:`cae_utils.codec.model.compute_tables`), and stored with its weights as integer arrays, so encoder
and decoder never recompute floating-point probabilities. Quantization of the latent is around a
per-channel ``offset`` (the median of the learned density): ``k = round(y - offset)`` and the decoder's
latent is ``k + offset`` (float32).

**Payload.** One range coder (``constriction.stream.queue.RangeEncoder``: 32-bit words, 24-bit
probabilities) codes, in this order:

1. channel by channel (``c = 0 ... C-1``), the ``h * w`` symbol indices of that channel in raster order,
   each with the categorical model of channel ``c``;
2. the values ``k`` of the escaped symbols, in the same order, as Exp-Golomb codes: with ``z = 2k`` for
   ``k >= 0`` and ``-2k - 1`` otherwise, ``u = z + 1`` and ``b = floor(log2 u)``, first every escape's
   ``b`` (uniform over 0 ... 23), then, for each escape with ``b > 0``, ``u - 2**b`` (uniform over
   ``2**b`` values).

Latent values are clipped to ``[-LATENT_LIMIT, LATENT_LIMIT]`` (4,194,304: far beyond what a trained model
produces) so every value has an escape code.

**Bit-exactness.** constriction turns float probabilities into its 24-bit fixed-point model with a
deterministic rule (``Categorical(..., perfect=False)``: cumulative ``floor(F_i * scale) + i`` with
``scale = (2**24 - n) / sum``). We hand it ``256 * count - 1`` for each count: these are integers below
``2**24``, exact in float32 and float64, their sum is ``2**24 - n`` so ``scale`` is exactly 1, and the
model constriction builds is exactly our 16-bit table scaled by 256. The coded bits therefore depend
only on the stored integers, identically on every machine.
"""

from __future__ import annotations

import functools
import zlib
from dataclasses import dataclass

import numpy as np

from .fileformat import CodecError

__all__ = [
    "PRECISION",
    "LATENT_LIMIT",
    "Tables",
    "integer_pmf",
    "quantize_latent",
    "dequantize",
    "encode",
    "decode",
    "table_bits",
]

#: Bits of precision of the stored tables: every table sums to 2**PRECISION.
PRECISION = 16
_CONSTRICTION_PRECISION = 24  # of constriction's default range coder
_ESCAPE_BITS_MODEL = 24  # b = floor(log2 u) takes the values 0 ... 23
#: Latent values are clipped to +-LATENT_LIMIT, so every value fits the escape code.
LATENT_LIMIT = 2**22


@dataclass(frozen=True, eq=False)
class Tables:
    """A codec model's integer probability tables, one row per latent channel.

    Attributes:
        pmf: int32 array (C, T): counts; row ``c`` uses its first ``length[c]`` entries (the last of
            them is the escape symbol), which are >= 1 and sum to ``2**PRECISION``; the rest are 0.
        length: int32 array (C,): symbols in each table, escape included (2 ... T).
        lower: int32 array (C,): the latent value of index 0 of each table.
        offset: float32 array (C,): the quantization offset of each channel (the density's median).
    """

    pmf: np.ndarray
    length: np.ndarray
    lower: np.ndarray
    offset: np.ndarray

    def __post_init__(self):
        for name, dtype in (
            ("pmf", np.int32),
            ("length", np.int32),
            ("lower", np.int32),
            ("offset", np.float32),
        ):
            array = np.array(getattr(self, name), dtype=dtype, order="C")  # a copy of our own
            array.setflags(write=False)  # the fingerprint below stays true to the tables
            object.__setattr__(self, name, array)

    @property
    def channels(self) -> int:
        """Number of latent channels C."""
        return len(self.length)

    def check(self) -> Tables:
        """Return self if the tables are valid (see the class docstring); raise CodecError otherwise."""
        c, t = self.pmf.shape if self.pmf.ndim == 2 else (-1, -1)
        if (
            c < 1
            or self.length.shape != (c,)
            or self.lower.shape != (c,)
            or self.offset.shape != (c,)
        ):
            raise CodecError(
                f"probability tables of inconsistent shapes: pmf {self.pmf.shape}, length {self.length.shape}."
            )
        if not np.all(self.length >= 2) or not np.all(self.length <= t):
            raise CodecError(
                "the model has no valid probability tables (were they computed? a model fresh from training "
                "needs cae_utils.codec.model.update_tables(model), which export does)."
            )
        used = np.arange(t)[None, :] < self.length[:, None]
        sums = self.pmf.sum(1, dtype=np.int64)
        if (
            np.any(self.pmf[used] < 1)
            or np.any(self.pmf[~used] != 0)
            or np.any(sums != 2**PRECISION)
        ):
            raise CodecError(
                f"damaged probability tables: each row must hold counts >= 1 summing to 2**{PRECISION}."
            )
        if not np.all(np.isfinite(self.offset)):
            raise CodecError("damaged probability tables: an offset is not finite.")
        return self

    def min_bits_per_position(self) -> float:
        """The fewest bits any latent position can cost: each channel's most probable symbol, summed.

        A payload coding ``n`` positions holds at least ``n`` times this many bits (less a few bits of the
        range coder's final word), whatever the image: a decoder can refuse a header whose image size its
        payload could not describe before allocating anything.
        """
        used = np.arange(self.pmf.shape[1]) < self.length[:, None]
        top = np.where(used, self.pmf, 0).max(axis=1).astype(np.float64)
        return float(np.sum(PRECISION - np.log2(top)))

    def fingerprint(self) -> int:
        """CRC-32 of the tables (little-endian bytes of pmf, length, lower, offset): identifies them in .cae files."""
        if "_fingerprint" not in self.__dict__:  # computed once: the arrays are read-only
            crc = 0
            for a in (self.pmf, self.length, self.lower, self.offset):
                crc = zlib.crc32(a.astype(a.dtype.newbyteorder("<"), copy=False).tobytes(), crc)
            object.__setattr__(self, "_fingerprint", crc)
        return self.__dict__["_fingerprint"]


def integer_pmf(probabilities, precision: int = PRECISION) -> np.ndarray:
    """Integer counts approximating ``probabilities``: every count >= 1, the sum exactly ``2**precision``.

    Each symbol first gets 1; the remaining ``2**precision - n`` counts are shared in proportion to the
    probabilities (rounded down), and what rounding left over goes one each to the largest remainders
    (ties to the lower index). Deterministic for a given input.

    Args:
        probabilities: non-negative floats, n of them (2 <= n < 2**precision); they need not sum to 1
            (an all-zero vector gives the uniform table).

    Returns:
        An int64 array of n counts.
    """
    p = np.asarray(probabilities, dtype=np.float64)
    n, total = p.size, 1 << precision
    if p.ndim != 1 or not 2 <= n < total or not np.all(np.isfinite(p)) or np.any(p < 0):
        raise ValueError(
            f"probabilities must be 2 to {total - 1} finite non-negative numbers, got shape {p.shape}."
        )
    p = p / p.sum() if p.sum() > 0 else np.full(n, 1.0 / n)
    free = total - n
    scaled = p * free
    counts = np.minimum(np.floor(scaled).astype(np.int64), free)
    left = free - int(counts.sum())
    if left > 0:
        order = np.argsort(-(scaled - counts), kind="stable")
        counts[order[:left]] += 1
    elif left < 0:  # only possible through float rounding: take from the largest counts
        order = np.argsort(-counts, kind="stable")
        counts[order[:-left]] -= 1
    return counts + 1


def quantize_latent(y, tables: Tables) -> np.ndarray:
    """Round a latent to integers around the tables' offsets.

    Args:
        y: float latent (h, w, C).

    Returns:
        int32 array (C, h * w): ``clip(rint(y - offset), -LATENT_LIMIT, LATENT_LIMIT)``, channel-major.
    """
    y = np.asarray(y, dtype=np.float32)
    k = np.rint(y - tables.offset).reshape(-1, tables.channels).T
    k = np.nan_to_num(k, nan=0.0, posinf=LATENT_LIMIT, neginf=-LATENT_LIMIT)
    return np.clip(k, -LATENT_LIMIT, LATENT_LIMIT).astype(np.int32)


def dequantize(k, tables: Tables, height: int, width: int) -> np.ndarray:
    """The decoder's latent: float32 (height, width, C), ``k + offset`` for k as :func:`quantize_latent` gives it."""
    k = np.asarray(k, dtype=np.float32).T.reshape(height, width, tables.channels)
    return k + tables.offset


def _constriction():
    """constriction's ``stream`` module (a native module: its submodules are attributes, not importable)."""
    import constriction

    return constriction.stream


@functools.lru_cache(maxsize=8)
def _constriction_models(tables: Tables):
    """One constriction Categorical model per channel, exactly equal to the stored table (see the module docstring).

    Cached for the last few tables (by identity: :class:`Tables` are frozen): building them costs more than
    coding a 32 x 32 image.
    """
    Categorical = _constriction().model.Categorical

    scale = float(1 << (_CONSTRICTION_PRECISION - PRECISION))
    return [
        Categorical(
            tables.pmf[c, : tables.length[c]].astype(np.float64) * scale - 1.0, perfect=False
        )
        for c in range(tables.channels)
    ]


def _to_indices(k: np.ndarray, tables: Tables):
    """Table indices (C, N) and a mask of escapes for integer latents k (C, N)."""
    idx = k.astype(np.int64) - tables.lower[:, None]
    escape = (idx < 0) | (idx >= (tables.length - 1)[:, None])
    idx[escape] = np.broadcast_to((tables.length - 1)[:, None], idx.shape)[escape]
    return idx.astype(np.int32), escape


def _escape_parts(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Exp-Golomb parts of escaped values: int32 ``b = floor(log2 u)`` and ``u - 2**b``, u = zigzag(value) + 1."""
    values = np.asarray(values, dtype=np.int64)
    u = np.where(values >= 0, 2 * values, -2 * values - 1) + 1
    b = np.zeros(u.shape, np.int64)
    for shift in (16, 8, 4, 2, 1):  # exact integer floor(log2 u), u < 2**24
        big = (u >> (b + shift)) > 0
        b[big] += shift
    return b.astype(np.int32), (u - (1 << b)).astype(np.int32)


def encode(k, tables: Tables) -> bytes:
    """Entropy-code integer latents.

    Args:
        k: int array (C, N): N values per channel (e.g. :func:`quantize_latent`'s output).
        tables: the model's tables (:meth:`Tables.check`-ed).

    Returns:
        The payload: the range coder's 32-bit words as little-endian bytes.
    """
    stream = _constriction()
    Uniform, RangeEncoder = stream.model.Uniform, stream.queue.RangeEncoder

    k = np.clip(np.asarray(k, dtype=np.int64), -LATENT_LIMIT, LATENT_LIMIT)
    if k.ndim != 2 or k.shape[0] != tables.channels:
        raise ValueError(f"k must have shape ({tables.channels}, N), got {k.shape}.")
    idx, escape = _to_indices(k, tables)
    encoder = RangeEncoder()
    for c, model in enumerate(_constriction_models(tables)):
        encoder.encode(idx[c], model)
    b, rest = _escape_parts(k[escape])
    if b.size:
        encoder.encode(b, Uniform(_ESCAPE_BITS_MODEL))
        long = b > 0
        if long.any():
            encoder.encode(rest[long], Uniform(), (1 << b[long]).astype(np.int32))
    return encoder.get_compressed().astype("<u4").tobytes()


def decode(payload: bytes, tables: Tables, count: int) -> np.ndarray:
    """Decode a payload written by :func:`encode` back to its integer latents.

    Args:
        payload: the bytes :func:`encode` returned.
        tables: the same tables as the encoder used.
        count: N, the values per channel.

    Returns:
        int32 array (C, count), equal to the encoder's input (after clipping to ``+-LATENT_LIMIT``).

    Raises:
        CodecError: the payload is not whole 32-bit words, or does not decode with these tables.
    """
    stream = _constriction()
    Uniform, RangeDecoder = stream.model.Uniform, stream.queue.RangeDecoder

    if len(payload) % 4:
        raise CodecError(
            f"damaged payload: {len(payload)} bytes is not a whole number of 32-bit words."
        )
    try:
        decoder = RangeDecoder(np.frombuffer(payload, dtype="<u4").astype(np.uint32))
        idx = np.stack(
            [decoder.decode(model, count) for model in _constriction_models(tables)]
        ).astype(np.int64)
        k = idx + tables.lower[:, None]
        escape = idx == (tables.length - 1)[:, None]
        n = int(escape.sum())
        if n:
            b = decoder.decode(Uniform(_ESCAPE_BITS_MODEL), n).astype(np.int64)
            u = np.left_shift(np.int64(1), b)
            long = b > 0
            if long.any():
                u[long] += decoder.decode(Uniform(), u[long].astype(np.int32))
            z = u - 1
            k[escape] = np.where(z % 2 == 0, z // 2, -(z + 1) // 2)
    # constriction's errors on data it cannot decode
    except (ValueError, RuntimeError, AssertionError) as exc:
        raise CodecError(
            f"damaged payload: it does not decode with this model's tables ({exc})."
        ) from exc
    return np.clip(k, -LATENT_LIMIT, LATENT_LIMIT).astype(np.int32)


def table_bits(k, tables: Tables, per_channel: bool = False):
    """Bits the tables assign to integer latents k (C, N), escape codes included: the payload's ideal size.

    Args:
        k: int array (C, N), as :func:`quantize_latent` gives it.
        tables: the model's tables.
        per_channel: return each channel's bits instead of the total.

    Returns:
        A float (the total), or with ``per_channel`` a float64 array (C,) that sums to it.
    """
    k = np.clip(np.asarray(k, dtype=np.int64), -LATENT_LIMIT, LATENT_LIMIT)
    idx, escape = _to_indices(k, tables)
    counts = np.take_along_axis(tables.pmf.astype(np.float64), idx, axis=1)
    bits = PRECISION - np.log2(counts)
    b, _ = _escape_parts(k[escape])
    bits[escape] += np.log2(_ESCAPE_BITS_MODEL) + b
    per = bits.sum(axis=1)
    return per if per_channel else float(per.sum())
