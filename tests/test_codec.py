"""Tests of the learned codec (cae_utils.codec): coder, file format, model, compress/decompress, CLI, training.

Tiny random-initialised models only (a few thousand weights, registered under a name), synthetic images
of 8x8 to 32x32 pixels; nothing reads the real dataset or a shipped model.
"""

from __future__ import annotations

import json
import zlib
from dataclasses import asdict

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cae_utils import codec, maintainer
from cae_utils.codec import coder, fileformat
from cae_utils.codec.__main__ import main
from cae_utils.codec.fileformat import CodecError
from cae_utils.data import CIFAR10, CLASS_NAMES

FAST = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def random_tables(rng, channels=5, size=24) -> coder.Tables:
    """Valid random integer tables: skewed probabilities, supports of random width and position."""
    length = rng.integers(2, size + 1, channels).astype(np.int32)
    pmf = np.zeros((channels, size), np.int32)
    for c in range(channels):
        pmf[c, : length[c]] = coder.integer_pmf(rng.random(length[c]) ** 3)
    return coder.Tables(
        pmf, length, rng.integers(-12, 3, channels), rng.normal(size=channels)
    ).check()


@pytest.fixture(scope="module")
def tiny():
    """A tiny random-init codec registered as 'tiny' (float32 layers, tables computed)."""
    import keras

    from cae_utils.codec.model import build_codec_model, update_tables

    keras.utils.set_random_seed(1)
    model = build_codec_model(
        0.01, channels=8, latent_channels=6, table_size=48, seed=1, dtype="float32"
    )
    update_tables(model)
    c = codec.register(codec.Codec.from_model("tiny", model))
    yield c
    codec.unregister("tiny")


@pytest.fixture(scope="module")
def tiny_file(tiny):
    image = np.random.default_rng(3).integers(0, 256, (13, 21, 3), dtype=np.uint8)
    return image, codec.compress(image, "tiny")


# ------------------------------------------------------------------------------------------ coder


@FAST
@given(st.lists(st.floats(0, 1), min_size=2, max_size=300))
def test_integer_pmf_sums_to_precision_and_gives_every_symbol_a_count(probs):
    counts = coder.integer_pmf(probs)
    assert counts.sum() == 2**coder.PRECISION and counts.min() >= 1 and len(counts) == len(probs)
    assert np.array_equal(counts, coder.integer_pmf(probs))  # deterministic


def test_integer_pmf_follows_the_probabilities():
    counts = coder.integer_pmf([0.5, 0.25, 0.25, 0.0])
    assert counts[3] == 1 and abs(counts[0] - 2 * counts[1]) <= 2 and counts[1] == counts[2]


@FAST
@given(st.integers(0, 2**32 - 1), st.integers(1, 40))
def test_coder_round_trip_is_exact_including_escapes(seed, count):
    rng = np.random.default_rng(seed)
    tables = random_tables(rng)
    k = rng.integers(-30, 30, (tables.channels, count))
    k.flat[rng.integers(0, k.size, 3)] = rng.choice(
        [coder.LATENT_LIMIT, -coder.LATENT_LIMIT, 1000, -777, 10**9]
    )
    decoded = coder.decode(coder.encode(k, tables), tables, count)
    assert decoded.dtype == np.int32
    np.testing.assert_array_equal(decoded, np.clip(k, -coder.LATENT_LIMIT, coder.LATENT_LIMIT))


def test_payload_size_matches_the_tables_information_content():
    rng = np.random.default_rng(0)
    tables = random_tables(rng, channels=4, size=16)
    support = [np.arange(tables.lower[c], tables.lower[c] + tables.length[c] + 2) for c in range(4)]
    k = np.stack([rng.choice(values, 3000) for values in support])
    actual, ideal = 8 * len(coder.encode(k, tables)), coder.table_bits(k, tables)
    assert ideal <= actual <= ideal * 1.002 + 64


def test_table_bits_by_hand():
    # channel 0: values 0 and 1 with probabilities 1/2 and 1/4, escape 1/4; channel 1: value 0 (1/2), escape 1/2
    pmf = np.array([[2**15, 2**14, 2**14], [2**15, 2**15, 0]], np.int32)
    tables = coder.Tables(pmf, np.array([3, 2]), np.array([0, 0]), np.zeros(2, np.float32)).check()
    k = np.array([[0, 1, 5], [0, 0, -1]])
    # escape of 5: 2 bits for the escape symbol, log2(24) for b = floor(log2(2*5 + 1)) = 3, then 3 bits
    # escape of -1: 1 bit, log2(24) for b = floor(log2(2*1 - 1 + 1)) = 1, then 1 bit
    expected = [1 + 2 + (2 + np.log2(24) + 3), 1 + 1 + (1 + np.log2(24) + 1)]
    np.testing.assert_allclose(coder.table_bits(k, tables, per_channel=True), expected)
    assert coder.table_bits(k, tables) == pytest.approx(sum(expected))


def test_the_coder_uses_the_stored_integers_exactly():
    """A symbol of count 1 costs exactly 16 bits: constriction's model is our table, not an approximation of it."""
    pmf = np.zeros((1, 4), np.int32)
    pmf[0, :3] = [1, 2**16 - 2, 1]
    tables = coder.Tables(pmf, [3], [0], [0.0]).check()
    # a weight off by one (255 or 257 of 2**24) would be off by +-226 bits
    k = np.zeros((1, 40_000), np.int64)
    assert 8 * len(coder.encode(k, tables)) - 16 * 40_000 in range(0, 65)


def test_payload_bytes_are_pinned():
    """A golden payload: the format's bits must not change with a new constriction or NumPy version."""
    pmf = np.zeros((2, 6), np.int32)
    pmf[0, :5] = [1000, 30000, 30000, 4535, 1]
    pmf[1, :3] = [1, 65534, 1]
    tables = coder.Tables(pmf, [5, 3], [-2, 0], [0.25, -0.5]).check()
    k = np.array([[-2, -1, 0, 1, 2, 7, -9, 0], [0, 1, 1, 2, 1, 1, -300, 1]])
    payload = coder.encode(k, tables)
    assert payload.hex() == "ee55b901f8b2a56df2a2e25bb07f14b7eaa500d6"
    assert tables.fingerprint() == 0x69A4DB6B
    np.testing.assert_array_equal(coder.decode(payload, tables, 8), k)


def test_tables_keep_their_own_read_only_copy_so_the_fingerprint_stays_true():
    pmf = np.zeros((2, 6), np.int32)
    pmf[0, :5] = [1000, 30000, 30000, 4535, 1]
    pmf[1, :3] = [1, 65534, 1]
    tables = coder.Tables(pmf, [5, 3], [-2, 0], [0.25, -0.5]).check()
    assert tables.fingerprint() == 0x69A4DB6B  # the golden value above
    pmf[0, 0] += 1  # the caller's array changes; the tables do not
    assert tables.pmf[0, 0] == 1000 and tables.fingerprint() == 0x69A4DB6B
    with pytest.raises(ValueError, match="read-only"):
        tables.pmf[0, 0] = 7


def test_quantize_and_dequantize_use_the_offsets():
    tables = random_tables(np.random.default_rng(1), channels=3)
    y = np.random.default_rng(2).normal(0, 4, (2, 5, 3)).astype(np.float32)
    k = coder.quantize_latent(y, tables)
    assert k.shape == (3, 10) and k.dtype == np.int32
    y_hat = coder.dequantize(k, tables, 2, 5)
    assert y_hat.shape == y.shape and np.abs(y_hat - y).max() <= 0.5 + 1e-5


def test_invalid_tables_are_refused():
    empty = coder.Tables(np.zeros((2, 8)), np.zeros(2), np.zeros(2), np.zeros(2))
    with pytest.raises(CodecError, match="no valid probability tables"):
        empty.check()


# ------------------------------------------------------------------------------------ file format


def read(data: bytes, fingerprint: int = 1):
    """What decompress does with a file before decoding: parse it, then verify it with the model's fingerprint."""
    header, payload = fileformat.parse(data)
    fileformat.verify(header, payload, fingerprint)
    return header, payload


def v1_file(name: str, height: int, width: int, fingerprint: int, payload: bytes) -> bytes:
    """A version-1 file, struct-packed here as the old writer did (the new one writes version 2 only)."""
    import struct

    head = b"\x89CAE" + bytes([1, len(name)]) + name.encode("ascii")
    head += struct.pack(">HHII", height, width, fingerprint, len(payload))
    return head + struct.pack(">I", zlib.crc32(payload, zlib.crc32(head))) + payload


def v2_check(head: bytes, payload: bytes, fingerprint: int) -> bytes:
    """The 3-byte check, computed here with zlib as the module docstring describes it."""
    return (zlib.crc32(head + payload, fingerprint) & 0xFFFFFF).to_bytes(3, "big")


@pytest.mark.parametrize(
    "head, header",
    [
        # magic, version 2, model 3 ("medium"), 31 and 47 as one-byte varints
        ("ca 02 03 1f 2f", fileformat.Header("medium", 32, 48)),
        # model 0 (not named); 199 = 0xc7 0x01 and 65534 = 0xfe 0xff 0x03 as varints
        ("ca 02 00 c7 01 fe ff 03", fileformat.Header(None, 200, 65535)),
    ],
)
def test_a_hand_built_version_2_file_parses(head, header):
    head, payload = bytes.fromhex(head), bytes.fromhex("0102030405060708090a0b")
    data = head + v2_check(head, payload, 0xDEADBEEF) + payload
    parsed, stored = read(data, 0xDEADBEEF)
    assert (parsed.model, parsed.height, parsed.width, parsed.version) == (
        header.model,
        header.height,
        header.width,
        2,
    )
    assert (
        parsed.check == int.from_bytes(data[len(head) : len(head) + 3], "big") and stored == payload
    )
    assert (
        fileformat.pack(header, payload + b"\0", 0xDEADBEEF) == data
    )  # the writer makes the same bytes


def test_model_numbers_are_the_shipped_models():
    """Append only: these numbers are in files already written."""
    assert fileformat.MODEL_NUMBERS == {
        "very-low": 1,
        "low": 2,
        "medium": 3,
        "high": 4,
        "very-high": 5,
        "highest": 6,
    }


@pytest.mark.parametrize("zeros", [0, 1, 2, 3, 4])
def test_trailing_zero_bytes_are_dropped_and_put_back_exactly(zeros):
    words = bytes.fromhex("11223344 55667788")[: 8 - zeros] + bytes(zeros)
    data = fileformat.pack(fileformat.Header("tiny", 5, 7), words, 9)
    _, stored = read(data, 9)
    assert stored == words[: 8 - min(zeros, 3)]  # at most 3 dropped: a byte of the last word stays
    assert len(data) == 8 + len(stored) and fileformat.words(stored) == words


def test_pack_refuses_what_it_cannot_store():
    for payload in (b"", b"\x01\x02\x03"):
        with pytest.raises(CodecError, match="whole 32-bit words, at least one"):
            fileformat.pack(fileformat.Header("tiny", 5, 7), payload, 0)
    with pytest.raises(CodecError, match="too large"):
        fileformat.pack(fileformat.Header("tiny", 9000, 9000), bytes(4), 0)
    with pytest.raises(CodecError, match="out of range"):
        fileformat.pack(fileformat.Header("tiny", 65536, 1), bytes(4), 0)


V2 = fileformat.pack(
    fileformat.Header("tiny", 5, 7), b"\x01\x02\x03\x04", 1
)  # model 0, 8 header bytes
V1 = v1_file("tiny", 5, 7, 1, b"\x01\x02\x03\x04")


@pytest.mark.parametrize(
    "data, message",
    [
        (b"", "empty input"),
        (b"\x89PNG" + V1[4:], "not a .cae file"),
        (b"hello world", "not a .cae file"),
        (V2[:2], "truncated header"),
        (V2[:1] + b"\x07" + V2[2:], "unknown .cae format version 7"),
        (V2[:2] + b"\x63" + V2[3:], "unknown model number 99"),
        (V2[:4], "truncated header"),
        (
            V2[:3] + b"\x84\x00" + V2[4:],
            "not written in its shortest form",
        ),  # height 5 in two bytes
        (V2[:4] + b"\x86\x80\x00" + V2[5:], "not written in its shortest form"),  # width 7 in three
        (V2[:3] + b"\xff\xff\xff\x01" + V2[4:], "takes more than 3 bytes"),
        (V2[:3] + b"\xff\xff\x03\x00" + V2[5:], "image size 65536 x 1"),
        (V2[:7], "truncated header"),
        (V2[:8], "without a payload"),
        (V2[:-1], "checksum mismatch: the file is damaged"),  # was "truncated payload" in version 1
        (V2 + b"\x01", "checksum mismatch"),  # was "trailing garbage" in version 1
        (V2 + b"\x00\x00", "ends in a zero byte that a .cae writer drops"),
        (V2[:-1] + bytes([V2[-1] ^ 1]), "checksum mismatch"),
        (V2[:2] + b"\x02" + V2[3:], "another version of model 'low'"),  # was a damaged model name
        (V1[:3], "truncated header"),
        (V1[:4] + b"\x07" + V1[5:], "unknown .cae format version 7"),
        (V1[:12], "truncated header"),
        (V1[:-1], "truncated payload"),
        (V1 + b"\x00", "trailing garbage: 1 bytes"),
        (V1[:-1] + bytes([V1[-1] ^ 1]), "checksum mismatch"),
        (V1[:8] + b"?" + V1[9:], "model name"),
        (v1_file("tiny", 5, 7, 2, b"\x01\x02\x03\x04"), "another version of model 'tiny'"),
    ],
)
def test_parser_names_what_is_wrong(data, message):
    with pytest.raises(CodecError, match=message):
        read(data)


def test_version_1_and_2_files_of_the_same_image_read_alike():
    header, payload = read(V1)
    assert (header.model, header.height, header.width, header.version) == ("tiny", 5, 7, 1)
    assert header.tables_crc == 1 and fileformat.words(payload) == read(V2)[1]


def test_a_file_cannot_ask_for_a_huge_image():
    """A valid checksum does not make the decoder allocate a 65535 x 65535 image."""
    head = bytes.fromhex("ca 02 00 fe ff 03 fe ff 03")
    with pytest.raises(CodecError, match="at most 65535 a side, 16,777,216 pixels"):
        fileformat.parse(head + v2_check(head, b"\x01", 0) + b"\x01")
    with pytest.raises(CodecError, match="at most 16,777,216 pixels"):
        fileformat.parse(v1_file("tiny", 65535, 65535, 0, b""))
    with pytest.raises(CodecError, match="too large"):
        fileformat.pack(fileformat.Header("tiny", 9000, 9000), bytes(4), 0)


def test_every_truncation_and_every_bit_flip_of_a_small_file_is_refused(tiny):
    data = codec.compress(np.full((16, 16, 3), 90, np.uint8), tiny)
    fingerprint = tiny.tables.fingerprint()
    read(data, fingerprint)
    for n in range(len(data)):
        with pytest.raises(CodecError):
            read(data[:n], fingerprint)
    for i in range(8 * len(data)):
        flipped = bytearray(data)
        flipped[i // 8] ^= 1 << (i % 8)
        with pytest.raises(CodecError):
            read(bytes(flipped), fingerprint)


@FAST
@given(st.data())
def test_any_damaged_or_truncated_file_raises_codec_error(tiny_file, tiny, data):
    _, valid = tiny_file
    damaged = bytearray(valid)
    if data.draw(st.booleans()):
        for i in data.draw(
            st.lists(st.integers(0, len(valid) - 1), min_size=1, max_size=3, unique=True)
        ):
            damaged[i] ^= data.draw(st.integers(1, 255))
    else:
        damaged = damaged[: data.draw(st.integers(0, len(valid) - 1))]
    with pytest.raises(CodecError):
        codec.decompress(bytes(damaged), tiny)


# ----------------------------------------------------------------------------- model and the codec


def test_compress_decompress_odd_size(tiny, tiny_file):
    image, data = tiny_file
    out = codec.decompress(data, tiny)
    assert out.shape == (13, 21, 3) and out.dtype == np.uint8
    np.testing.assert_array_equal(codec.decompress(data, "tiny"), out)  # decoding is repeatable
    assert codec.compress(image, "tiny") == data  # so is encoding
    header = fileformat.parse(data)[0]
    assert (header.model, header.height, header.width, header.version) == (None, 13, 21, 2)


def test_a_32x32_file_has_8_bytes_of_header_and_check(tiny):
    data = codec.compress(np.random.default_rng(6).integers(0, 256, (32, 32, 3), np.uint8), tiny)
    assert len(data) - len(fileformat.parse(data)[1]) == 8
    assert data[:5] == bytes([0xCA, 2, 0, 31, 31])


def test_a_file_that_does_not_name_its_model_needs_the_model_passed(tiny, tiny_file):
    image, data = tiny_file
    assert data[2] == 0  # "tiny" has no model number
    with pytest.raises(CodecError, match="does not name its model.*--model NAME"):
        codec.decompress(data)
    np.testing.assert_array_equal(codec.decompress(data, tiny), codec.decompress(data, "tiny"))


def test_a_version_1_file_still_decodes(tiny, tiny_file):
    _, data = tiny_file
    words = fileformat.words(fileformat.parse(data)[1])
    old = v1_file("tiny", 13, 21, tiny.tables.fingerprint(), words)
    np.testing.assert_array_equal(codec.decompress(old), codec.decompress(data, tiny))
    np.testing.assert_array_equal(codec.decompress(old, tiny), codec.decompress(data, tiny))


def test_roundtrip_measures_real_files(tiny):
    from cae_utils import baselines, metrics

    images = np.random.default_rng(4).integers(0, 256, (3, 16, 24, 3), dtype=np.uint8)
    encoded = codec.roundtrip("tiny", images)
    files = [codec.compress(im, "tiny") for im in images]
    np.testing.assert_array_equal(encoded.n_bytes, [len(f) for f in files])
    np.testing.assert_array_equal(encoded.n_bytes_no_header, [len(f) - 8 for f in files])
    expected = np.stack([codec.decompress(f, tiny) for f in files]).astype(np.float32) / 255
    # batched: within one level of the one-image path (float rounding of batched network calls)
    np.testing.assert_allclose(encoded.reconstructions, expected, rtol=0, atol=1.01 / 255)
    scores = codec.rate_and_quality("tiny", images)
    assert scores["bpp"] == round(float(np.mean(encoded.n_bytes)) * 8 / (16 * 24), 4)
    psnr = float(metrics.psnr(images / 255, expected).mean())
    assert scores["psnr"] == pytest.approx(psnr, abs=0.01)
    table = baselines.rate_quality_table(
        images, jpeg_qualities=(), webp_qualities=(), extra=[("codec", "tiny", lambda: encoded)]
    )
    row = table.iloc[0]
    assert (row["method"], row["setting"]) == ("codec", "tiny") and row["bpp_no_header"] < row[
        "bpp"
    ]
    assert row["psnr"] == pytest.approx(scores["psnr"], abs=1e-3)


@pytest.mark.parametrize("shape", [(1, 1, 3), (8, 8, 3), (32, 32, 3), (9, 31, 3)])
def test_sizes(tiny, shape):
    image = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    assert codec.decompress(codec.compress(image, tiny), tiny).shape == shape


def mixed_images(seed=7):
    """Smooth images of mixed sizes, CIFAR-like, in an order that interleaves the sizes."""
    rng = np.random.default_rng(seed)
    shapes = [(32, 32), (13, 21), (32, 32), (1, 1), (40, 24), (13, 21), (32, 32)]
    return [
        np.clip(rng.normal(128, 40, (1, 1, 3)) + rng.normal(0, 12, (h, w, 3)), 0, 255).astype(
            np.uint8
        )
        for h, w in shapes
    ]


def assert_within_one_level(actual, expected):
    """Decoded images equal up to float rounding in batched network calls: at most one level apart."""
    assert actual.shape == expected.shape and actual.dtype == np.uint8
    assert np.abs(actual.astype(int) - expected.astype(int)).max() <= 1


@pytest.mark.parametrize("batch_size", [1, 2, 256])
def test_compress_many_and_decompress_many_agree_with_one_image_at_a_time(tiny, batch_size):
    images = mixed_images()
    files = codec.compress_many(images, tiny, batch_size=batch_size)
    singles = [codec.compress(image, tiny) for image in images]
    decoded = codec.decompress_many(files, tiny, batch_size=batch_size)
    from_singles = codec.decompress_many(singles, "tiny", batch_size=batch_size)
    assert len(files) == len(decoded) == len(images)
    for image, data, single, out, out_single in zip(images, files, singles, decoded, from_singles):
        header = fileformat.parse(data)[0]
        assert (header.height, header.width) == image.shape[:2]
        # each path decodes the other's files; the images agree within one level
        assert_within_one_level(out, codec.decompress(single, tiny))
        assert_within_one_level(codec.decompress(data, tiny), out_single)
        assert_within_one_level(out, out_single)


def test_the_networks_run_once_per_batch_of_one_size(tiny, monkeypatch):
    from cae_utils.codec import api

    calls = []
    for name in ("analyse", "synthesise"):
        real = getattr(tiny, name)

        def spy(x, *size, real=real, name=name):
            calls.append((name, x.shape[:3]))
            return real(x, *size)

        monkeypatch.setattr(tiny, name, spy)
    images = mixed_images()  # three 32x32, two 13x21, one 1x1, one 40x24
    files = codec.compress_many(images, tiny, batch_size=2)
    assert sorted(calls) == sorted(
        [("analyse", (2, 32, 32)), ("analyse", (1, 32, 32)), ("analyse", (2, 13, 21))]
        + [("analyse", (1, 1, 1)), ("analyse", (1, 40, 24))]
    )
    calls.clear()
    codec.decompress_many(files, tiny)  # latents of 4x4, 2x3, 1x1, 5x3
    assert sorted(calls) == sorted(
        [("synthesise", (3, 4, 4)), ("synthesise", (2, 2, 3))]
        + [("synthesise", (1, 1, 1)), ("synthesise", (1, 5, 3))]
    )
    calls.clear()
    monkeypatch.setattr(api, "_BATCH_PIXELS", 2 * 32 * 32)  # a pixel cap below batch_size
    codec.compress_many(images[:1] * 5, tiny, batch_size=4)
    assert [shape[0] for _, shape in calls] == [2, 2, 1]


def test_a_bad_file_or_image_in_a_batch_is_named_and_nothing_is_decoded(tiny, monkeypatch):
    images = mixed_images()[:4]
    files = codec.compress_many(images, tiny)
    damaged = bytearray(files[2])
    damaged[-1] ^= 0x10
    from cae_utils.codec import api

    monkeypatch.setattr(api.coder, "decode", lambda *a: pytest.fail("decoded before checking"))
    with pytest.raises(CodecError, match=r"^file 2: checksum mismatch"):
        codec.decompress_many([*files[:2], bytes(damaged), files[3]], tiny)
    with pytest.raises(CodecError, match=r"^b\.cae: empty input"):
        codec.decompress_many([files[0], b""], tiny, names=["a.cae", "b.cae"])
    with pytest.raises(CodecError, match=r"^file 1: the file does not name its model"):
        codec.decompress_many([codec.compress(images[0], "medium"), files[0]])
    with pytest.raises(CodecError, match=r"^image 1: image must be an \(H, W, 3\) uint8"):
        codec.compress_many([images[0], images[1].astype(np.float32)], tiny)
    with pytest.raises(CodecError, match="batch_size must be a whole number >= 1, got 0"):
        codec.compress_many(images, tiny, batch_size=0)
    with pytest.raises(CodecError, match="files must be a list of files .* got bytes"):
        codec.decompress_many(files[0], tiny)
    assert codec.compress_many([], tiny) == [] and codec.decompress_many([], tiny) == []


def test_decompress_many_groups_files_by_model():
    """Files of two shipped models, interleaved: each decodes with the model it names."""
    images = mixed_images(8)[:4]
    names = ["low", "medium", "low", "medium"]
    files = [codec.compress(image, name) for image, name in zip(images, names)]
    for out, data in zip(codec.decompress_many(files), files):
        assert_within_one_level(out, codec.decompress(data))
    many = codec.compress_many(images, "medium")
    for data, image in zip(many, images):
        assert fileformat.parse(data)[0].model == "medium"
        assert_within_one_level(
            codec.decompress(data), codec.decompress(codec.compress(image, "medium"))
        )


def test_bad_images_and_models_are_refused(tiny):
    with pytest.raises(CodecError, match="uint8"):
        codec.compress(np.zeros((8, 8, 3), np.float32), "tiny")
    with pytest.raises(CodecError, match=r"\(H, W, 3\)"):
        codec.compress(np.zeros((8, 8), np.uint8), "tiny")
    with pytest.raises(CodecError, match="unknown codec model 'nope'"):
        codec.compress(np.zeros((8, 8, 3), np.uint8), "nope")


def test_unknown_model_and_other_model_version_are_refused(tiny, tiny_file):
    from cae_utils.codec.model import build_codec_model, update_tables

    _, data = tiny_file
    words = fileformat.words(fileformat.parse(data)[1])
    renamed = v1_file("other", 13, 21, tiny.tables.fingerprint(), words)
    with pytest.raises(CodecError, match="unknown codec model 'other'"):
        codec.decompress(renamed)
    with pytest.raises(CodecError, match="unknown codec model 'other'"):
        codec.decompress(data, "other")
    retrained = build_codec_model(
        0.01, channels=8, latent_channels=6, table_size=32, seed=5, dtype="float32"
    )
    update_tables(retrained)
    with pytest.raises(CodecError, match="another version of model 'tiny'"):
        codec.decompress(
            v1_file("tiny", 13, 21, tiny.tables.fingerprint(), words),
            codec.Codec.from_model("tiny", retrained),
        )
    # version 2, a file that does not name its model and one that does ("medium", number 3)
    with pytest.raises(CodecError, match="checksum mismatch: .* another model"):
        codec.decompress(data, codec.Codec.from_model("tiny", retrained))
    named = fileformat.pack(fileformat.Header("medium", 13, 21), words, tiny.tables.fingerprint())
    np.testing.assert_array_equal(
        codec.decompress(named, codec.Codec.from_model("medium", tiny.model)),
        codec.decompress(data, tiny),
    )
    with pytest.raises(CodecError, match="checksum mismatch: .* another version of model 'medium'"):
        codec.decompress(named, codec.Codec.from_model("medium", retrained))
    with pytest.raises(CodecError, match="compressed with model 'medium', not 'tiny'"):
        codec.decompress(named, tiny)


def test_estimated_bits_match_the_payload(tiny):
    """The entropy model's estimate (continuous density, rounded latent) is close to the real payload."""
    import keras

    image = (np.random.default_rng(4).random((32, 32, 3)) * 80 + 90).astype(np.uint8)
    k = coder.quantize_latent(tiny.analyse(image), tiny.tables)
    y_hat = coder.dequantize(k, tiny.tables, 4, 4)
    estimate = float(keras.ops.convert_to_numpy(tiny.model.prior.bits(y_hat[None]))[0])
    payload = 8 * len(fileformat.parse(codec.compress(image, tiny))[1])
    assert estimate * 0.9 - 64 <= payload <= estimate * 1.1 + 64


def test_bit_budget_goes_from_estimate_to_file(tiny):
    images = (np.random.default_rng(5).random((2, 24, 16, 3)) * 80 + 90).astype(np.uint8)
    budget = codec.bit_budget(tiny, images)
    assert list(budget.columns) == ["estimate", "tables", "payload", "file"] and len(budget) == 2
    files = [codec.compress(im, tiny) for im in images]
    assert budget["file"].tolist() == [8 * len(f) for f in files]
    assert (budget["file"] - budget["payload"] == 8 * 8).all()  # header and check
    # the range coder spends at most a few 32-bit words more than the tables' ideal size
    assert (
        (budget["payload"] >= budget["tables"] - 1) & (budget["payload"] <= budget["tables"] + 96)
    ).all()


def test_tables_travel_with_the_weights(tiny, tmp_path):
    from cae_utils.codec.model import build_codec_model, tables_of

    tiny.model.save_weights(tmp_path / "t.weights.h5")
    fresh = build_codec_model(0.01, channels=8, latent_channels=6, table_size=48, dtype="float32")
    fresh.load_weights(tmp_path / "t.weights.h5")
    assert tables_of(fresh).fingerprint() == tiny.tables.fingerprint()


def test_training_reduces_the_loss_and_mixed_precision_works():
    import keras

    from cae_utils.codec.model import build_codec_model

    x = np.random.default_rng(0).random((8, 16, 16, 3)).astype(np.float32)
    keras.utils.set_random_seed(0)
    model = build_codec_model(0.01, channels=8, latent_channels=4, table_size=16)
    # eager: no tracing, faster here
    model.compile(optimizer=keras.optimizers.Adam(3e-3), run_eagerly=True)
    logs = [model.train_on_batch(x, x, return_dict=True) for _ in range(6)]
    assert logs[-1]["loss"] < 0.95 * logs[0]["loss"] and set(logs[0]) == {
        "loss",
        "bpp",
        "mse",
        "psnr",
    }
    assert logs[0]["loss"] == pytest.approx(logs[0]["bpp"] + 0.01 * logs[0]["mse"], rel=1e-4)

    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        mixed = build_codec_model(0.01, channels=8, latent_channels=4, table_size=16)
        mixed.compile(optimizer=keras.optimizers.Adam(1e-3), run_eagerly=True)
        result = mixed.train_on_batch(x, x, return_dict=True)
        assert np.isfinite(result["loss"]) and mixed.prior.compute_dtype == "float32"
        assert mixed.analysis.layers[0].compute_dtype == "float16"
        x_hat, bits = mixed(x)
        assert x_hat.dtype == "float32" and bits.dtype == "float32"
    finally:
        keras.mixed_precision.set_global_policy("float32")


# ----------------------------------------------------------------------------- training and export


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    """train_codec on 16 synthetic images for 2 epochs, interrupted after the first and resumed."""
    import keras

    from cae_utils.codec.training import CodecRunConfig, train_codec

    class StopAfterFirstEpoch(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            self.model.stop_training = True

    rng = np.random.default_rng(0)
    x = rng.random((28, 32, 32, 3)).astype(np.float32)
    y = np.zeros(28, np.int64)
    cifar = CIFAR10(x[:16], y[:16], x[16:20], y[16:20], x[20:], y[20:], CLASS_NAMES, "synthetic")
    out = tmp_path_factory.mktemp("codec-run")
    run = CodecRunConfig(
        lmbda=0.01, channels=8, latent_channels=4, table_size=16, epochs=2, batch_size=8, seed=3
    )
    train_codec(
        run=run, cifar=cifar, out_dir=out, verbose=0, extra_callbacks=[StopAfterFirstEpoch()]
    )
    assert json.loads((out / "state.json").read_text())["epochs_done"] == 1
    # resumes from epoch-001.keras
    model, history = train_codec(run=run, cifar=cifar, out_dir=out, verbose=0)
    assert json.loads((out / "state.json").read_text())["epochs_done"] == 2 and len(history) == 2
    return out, cifar, run, model


def test_train_codec_writes_a_run_folder(trained_run):
    out, _, _, _ = trained_run
    names = {p.name for p in out.iterdir()}
    assert {
        "run.json",
        "log.csv",
        "rate.csv",
        "best.weights.h5",
        "state.json",
        "epoch-002.keras",
    } <= names
    rate = (out / "rate.csv").read_text().splitlines()
    assert rate[0].startswith("epoch,loss,bpp,mse,psnr,val_loss,val_bpp") and len(rate) == 3
    assert json.loads((out / "run.json").read_text())["model"]["kind"] == "codec"


def test_finished_run_is_loaded_not_retrained(trained_run):
    from cae_utils.codec.training import train_codec

    out, cifar, run, model = trained_run
    again, history = train_codec(run=run, cifar=cifar, out_dir=out, verbose=0)
    assert len(history) == 2
    x = cifar.x_val[:2]
    np.testing.assert_allclose(again(x)[0], model(x)[0], atol=1e-5)


def test_init_from_starts_another_lambda_from_a_runs_weights(trained_run, tmp_path):
    import keras

    from cae_utils.codec.training import CodecRunConfig, train_codec

    out, cifar, run, model = trained_run
    seen = {}

    class FirstWeights(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            seen["weights"] = [w.copy() for w in self.model.get_weights()]

    tuned = CodecRunConfig(**{**asdict(run), "lmbda": 0.05, "epochs": 1, "init_from": str(out)})
    train_codec(
        run=tuned,
        cifar=cifar,
        out_dir=tmp_path / "tuned",
        verbose=0,
        extra_callbacks=[FirstWeights()],
    )
    source = codec.build_codec_model(0.01, 8, 4, 16)
    source.load_weights(out / "best.weights.h5")
    for a, b in zip(seen["weights"], source.get_weights()):
        np.testing.assert_array_equal(a, b)
    saved = json.loads((tmp_path / "tuned" / "run.json").read_text())
    assert saved["training"]["init_from"] == str(out) and saved["model"]["lmbda"] == 0.05


@pytest.mark.parametrize(
    "change, message",
    [
        ({"init_from": "no-such-run"}, "not a codec training run"),
        ({"channels": 16}, "holds another model"),
    ],
)
def test_init_from_a_wrong_run_is_refused_before_writing(trained_run, tmp_path, change, message):
    from cae_utils.codec.training import CodecRunConfig, train_codec
    from cae_utils.train import TrainingError

    out, cifar, run, _ = trained_run
    bad = CodecRunConfig(**{**asdict(run), "init_from": str(out), **change})
    with pytest.raises(TrainingError, match=message):
        train_codec(run=bad, cifar=cifar, out_dir=tmp_path / "new", verbose=0)
    assert not (tmp_path / "new").exists()


def test_export_then_load_by_name(trained_run, tmp_path):
    out, cifar, _, _ = trained_run
    meta = maintainer.export_codec(out, "unit", weights_dir=tmp_path, x_test=cifar.x_test[:3])
    assert {p.name for p in tmp_path.iterdir()} == {
        "codec-unit.json",
        "codec-unit.weights.h5",
        "codec-unit.log.csv",
    }
    assert meta["test"]["images"] == 3 and meta["nominal_bpp"] > meta["test"]["payload_bpp"] > 0
    log = (tmp_path / "codec-unit.log.csv").read_text().splitlines()
    assert (
        log[0] == "epoch,loss,bpp,mse,psnr,val_loss,val_bpp,val_mse,val_psnr,lr,seconds"
        and len(log) == 3
    )
    assert list(codec.training_log("unit", weights_dir=tmp_path)["epoch"]) == [0, 1]
    with pytest.raises(CodecError, match="no training log for codec model 'nothing'"):
        codec.training_log("nothing", weights_dir=tmp_path)
    # shipped models first, then registered ones ("tiny")
    assert codec.models(tmp_path)[0] == "unit"
    assert codec.models(tmp_path, with_rates=True)[0] == ("unit", meta["nominal_bpp"])
    image = (cifar.x_test[0] * 255).astype(np.uint8)
    data = codec.compress(image, "unit", weights_dir=tmp_path)
    assert codec.decompress(data, "unit", weights_dir=tmp_path).shape == (32, 32, 3)
    with pytest.raises(CodecError, match="unknown codec model 'unit'"):
        codec.compress(image, "unit")  # not in the package's weights folder


def test_remeasure_rewrites_only_the_measured_rate(trained_run, tmp_path):
    out, cifar, _, _ = trained_run
    meta = maintainer.export_codec(out, "unit", weights_dir=tmp_path, x_test=cifar.x_test[:3])
    weights = (tmp_path / "codec-unit.weights.h5").read_bytes()
    stale = {**meta, "nominal_bpp": 9.0, "test": {**meta["test"], "bpp": 9.0, "psnr": 1.0}}
    (tmp_path / "codec-unit.json").write_text(json.dumps(stale))
    again = maintainer.remeasure_codec("unit", weights_dir=tmp_path, x_test=cifar.x_test[:3])
    # the files' real size, counted here from the bytes compress writes
    images = (cifar.x_test[:3] * 255).round().astype(np.uint8)
    sizes = [len(codec.compress(image, "unit", weights_dir=tmp_path)) for image in images]
    assert again["nominal_bpp"] == again["test"]["bpp"] == round(8 * np.mean(sizes) / 1024, 4)
    assert again["test"] == meta["test"] and {k: again[k] for k in meta if k != "test"} == {
        k: meta[k] for k in meta if k != "test"
    }
    assert json.loads((tmp_path / "codec-unit.json").read_text()) == again
    assert (tmp_path / "codec-unit.weights.h5").read_bytes() == weights


def test_damaged_shipped_description_is_reported(tmp_path):
    (tmp_path / "codec-broken.json").write_text("{not json")
    assert "broken" in codec.models(tmp_path)
    with pytest.raises(CodecError, match="codec-broken.json cannot be read"):
        codec.compress(np.zeros((8, 8, 3), np.uint8), "broken", weights_dir=tmp_path)


def test_no_model_available_says_what_to_do(tmp_path, monkeypatch):
    from cae_utils.codec import api

    monkeypatch.setattr(api, "_REGISTERED", {})
    assert codec.models(tmp_path) == []
    with pytest.raises(CodecError, match="no codec model is available.*train"):
        codec.get(None, weights_dir=tmp_path)


# -------------------------------------------------------------------------------------------- CLI


def write_png(path, array, mode=None):
    from PIL import Image

    Image.fromarray(array, mode).save(path)
    return path


def leftovers(folder):
    return sorted(p.name for p in folder.iterdir())


def test_cli_round_trip(tiny, tmp_path, capsys):
    src = write_png(
        tmp_path / "in.png", np.random.default_rng(0).integers(0, 256, (12, 20, 3), dtype=np.uint8)
    )
    assert main(["compress", str(src), str(tmp_path / "x.cae"), "--model", "tiny"]) == 0
    assert main(["decompress", str(tmp_path / "x.cae"), str(tmp_path / "out.png")]) == 1
    assert "does not name its model" in capsys.readouterr().err
    out = str(tmp_path / "out.png")
    assert main(["decompress", str(tmp_path / "x.cae"), out, "--model", "tiny"]) == 0
    assert main(["decompress", str(tmp_path / "x.cae"), out, "--model", "nope"]) == 1
    assert "unknown codec model 'nope'" in capsys.readouterr().err
    from PIL import Image

    with Image.open(tmp_path / "out.png") as img:
        assert img.size == (20, 12) and img.mode == "RGB"
    assert leftovers(tmp_path) == ["in.png", "out.png", "x.cae"]
    assert main(["models"]) == 0 and "tiny\tuntrained/unknown" in capsys.readouterr().out


@pytest.mark.parametrize(
    "mode, note", [("L", "grayscale"), ("RGBA", "transparency flattened onto white")]
)
def test_cli_converts_other_modes_and_says_so(tiny, tmp_path, capsys, mode, note):
    shape = (10, 10) if mode == "L" else (10, 10, 4)
    src = write_png(tmp_path / "in.png", np.full(shape, 200, np.uint8), mode)
    assert main(["compress", str(src), str(tmp_path / "x.cae"), "--model", "tiny"]) == 0
    assert note in capsys.readouterr().err


@pytest.mark.parametrize(
    "content, args, message",
    [
        (b"this is not an image", ["--model", "tiny"], "not a PNG or JPEG"),
        (b"", ["--model", "tiny"], "is empty"),
        (None, ["--model", "no-such-model"], "unknown codec model 'no-such-model'"),
    ],
)
def test_cli_compress_errors_leave_no_output(tiny, tmp_path, capsys, content, args, message):
    src = tmp_path / "in.png"
    if content is None:
        write_png(src, np.zeros((8, 8, 3), np.uint8))
    else:
        src.write_bytes(content)
    assert main(["compress", str(src), str(tmp_path / "x.cae"), *args]) == 1
    assert message in capsys.readouterr().err
    assert leftovers(tmp_path) == ["in.png"]


def test_cli_as_a_program(tmp_path):
    """``python -m cae_utils.codec``: listing works, and a bad request fails cleanly without TensorFlow."""
    import subprocess
    import sys

    listed = subprocess.run(
        [sys.executable, "-m", "cae_utils.codec", "models"], capture_output=True, text=True
    )
    assert listed.returncode == 0
    src = write_png(tmp_path / "in.png", np.zeros((8, 8, 3), np.uint8))
    bad = subprocess.run(
        [
            sys.executable,
            "-m",
            "cae_utils.codec",
            "compress",
            str(src),
            str(tmp_path / "x.cae"),
            "--model",
            "nope",
        ],
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 1 and "error: unknown codec model 'nope'" in bad.stderr
    assert "Traceback" not in bad.stderr and leftovers(tmp_path) == ["in.png"]


def test_cli_decompress_errors_leave_no_output(tiny, tiny_file, tmp_path, capsys):
    (tmp_path / "bad.cae").write_bytes(tiny_file[1][:-3])
    bad, out = str(tmp_path / "bad.cae"), str(tmp_path / "out.png")
    assert main(["decompress", bad, out, "--model", "tiny"]) == 1
    assert "checksum mismatch" in capsys.readouterr().err  # version 1 said "truncated payload"
    assert main(["decompress", str(tmp_path / "missing.cae"), str(tmp_path / "out.png")]) == 1
    assert "cannot read" in capsys.readouterr().err
    (tmp_path / "good.cae").write_bytes(tiny_file[1])
    assert main(["decompress", str(tmp_path / "good.cae"), str(tmp_path / "out.jpg")]) == 2
    assert "must end in .png" in capsys.readouterr().err
    assert leftovers(tmp_path) == ["bad.cae", "good.cae"]


def test_cli_refuses_to_write_over_its_input(tiny, tiny_file, tmp_path, capsys):
    src = write_png(tmp_path / "a.png", np.full((8, 8, 3), 7, np.uint8))
    before = src.read_bytes()
    assert main(["compress", str(src), str(src), "--model", "tiny"]) == 2
    assert "it is the input" in capsys.readouterr().err
    (tmp_path / "link.png").hardlink_to(src)  # the same file by another name
    assert main(["compress", str(src), str(tmp_path / "link.png"), "--model", "tiny"]) == 2
    (tmp_path / "x.cae").write_bytes(tiny_file[1])
    assert main(["decompress", str(tmp_path / "x.cae"), str(tmp_path / "x.cae")]) == 2
    assert src.read_bytes() == before and (tmp_path / "x.cae").read_bytes() == tiny_file[1]


def _special_outputs(tmp_path):
    """Paths that exist and are not regular files: a FIFO, a folder, a symbolic link, a device (root only)."""
    import os

    os.mkfifo(tmp_path / "fifo.png")
    (tmp_path / "folder.png").mkdir()
    (tmp_path / "target.png").write_bytes(b"keep")
    (tmp_path / "link.png").symlink_to(tmp_path / "target.png")
    made = {"fifo.png": "a FIFO", "folder.png": "a folder", "link.png": "a symbolic link"}
    try:
        os.mknod(tmp_path / "null.png", 0o666 | __import__("stat").S_IFCHR, os.makedev(1, 3))
        made["null.png"] = "a device"
    except (PermissionError, OSError):
        pass  # not root, or no right to make device nodes here: the other kinds still run
    return made


def test_cli_never_replaces_a_device_fifo_folder_or_link(tiny, tiny_file, tmp_path, capsys):
    import stat

    src = write_png(tmp_path / "in.png", np.zeros((8, 8, 3), np.uint8))
    (tmp_path / "in.cae").write_bytes(tiny_file[1])
    for name, kind in _special_outputs(tmp_path).items():
        mode = (tmp_path / name).lstat().st_mode
        assert main(["compress", str(src), str(tmp_path / name), "--model", "tiny"]) == 2
        assert f"it is {kind}, not a regular file" in capsys.readouterr().err
        assert main(["decompress", str(tmp_path / "in.cae"), str(tmp_path / name)]) == 2
        assert (tmp_path / name).lstat().st_mode == mode, name  # still what it was
    assert (tmp_path / "target.png").read_bytes() == b"keep"
    assert (
        main(["compress", str(src), str(tmp_path / "no" / "such" / "x.cae"), "--model", "tiny"])
        == 2
    )
    assert "does not exist. Create it first" in capsys.readouterr().err
    assert stat.S_ISFIFO((tmp_path / "fifo.png").lstat().st_mode)


def test_cli_leaves_other_files_alone_and_writes_ordinary_permissions(tiny, tmp_path):
    import os

    src = write_png(tmp_path / "in.png", np.zeros((8, 8, 3), np.uint8))
    # the name the old temporary file had
    (tmp_path / "out.tmp.cae").write_bytes(b"the user's own file")
    assert main(["compress", str(src), str(tmp_path / "out.cae"), "--model", "tiny"]) == 0
    assert (tmp_path / "out.tmp.cae").read_bytes() == b"the user's own file"
    assert leftovers(tmp_path) == ["in.png", "out.cae", "out.tmp.cae"]
    umask = os.umask(0)
    os.umask(umask)
    assert (tmp_path / "out.cae").stat().st_mode & 0o777 == 0o666 & ~umask


def test_cli_several_inputs_and_a_folder_go_to_a_folder(tiny, tmp_path, capsys):
    from PIL import Image

    src, out, dec = tmp_path / "src", tmp_path / "out", tmp_path / "dec"
    for folder in (src, out, dec):
        folder.mkdir()
    images = dict(zip(["a.png", "b.png", "c.jpg"], mixed_images()[:3]))
    for name, image in images.items():
        Image.fromarray(image).save(src / name)
    (src / ".hidden.png").write_bytes(b"not read")  # hidden files and other suffixes are skipped
    (src / "notes.txt").write_bytes(b"not read")
    assert (
        main(["compress", str(src / "a.png"), str(src / "b.png"), str(out), "--model", "tiny"]) == 0
    )
    assert leftovers(out) == ["a.cae", "b.cae"]
    assert main(["compress", str(src), str(out), "--model", "tiny"]) == 0  # a folder
    assert leftovers(out) == ["a.cae", "b.cae", "c.cae"]
    assert f"{src / 'c.jpg'} (32x32) -> {out / 'c.cae'}" in capsys.readouterr().out
    assert main(["decompress", str(out), str(dec), "--model", "tiny"]) == 0
    assert leftovers(dec) == ["a.png", "b.png", "c.png"]
    for name in images:
        stem = name.split(".")[0]
        with Image.open(src / name) as img:  # the JPEG as Pillow reads it
            read = np.asarray(img.convert("RGB"))
        expected = codec.decompress(codec.compress(read, tiny), tiny)  # one image at a time
        assert_within_one_level(
            codec.decompress((out / f"{stem}.cae").read_bytes(), tiny), expected
        )
        with Image.open(dec / f"{stem}.png") as img:
            assert_within_one_level(np.asarray(img), expected)


def test_cli_refuses_bad_outputs_of_several_inputs_before_any_work(tiny, tmp_path, capsys):
    (tmp_path / "sub").mkdir()
    (tmp_path / "out").mkdir()
    garbage = [tmp_path / "a.png", tmp_path / "sub" / "a.png", tmp_path / "b.png"]
    for path in garbage:
        path.write_bytes(b"not an image: never read, the outputs are refused first")
    a, sub_a, b, out = (str(p) for p in [*garbage, tmp_path / "out"])
    assert main(["compress", a, sub_a, out, "--model", "tiny"]) == 2
    assert "would both be written to" in capsys.readouterr().err
    assert main(["compress", a, b, str(tmp_path / "missing"), "--model", "tiny"]) == 2
    assert "the output must be an existing folder" in capsys.readouterr().err
    assert main(["compress", a, b, a, "--model", "tiny"]) == 2  # OUT an existing file
    assert "must be an existing folder" in capsys.readouterr().err
    (tmp_path / "out" / "b.cae").hardlink_to(tmp_path / "b.png")  # an output that is an input
    assert main(["compress", a, b, out, "--model", "tiny"]) == 2
    assert "it is the input" in capsys.readouterr().err
    (tmp_path / "out" / "b.cae").unlink()
    (tmp_path / "out" / "a.cae").mkdir()
    assert main(["compress", a, b, out, "--model", "tiny"]) == 2
    assert "it is a folder, not a regular file" in capsys.readouterr().err
    assert main(["decompress", str(tmp_path / "sub"), out, "--model", "tiny"]) == 2
    assert "holds no .cae file" in capsys.readouterr().err
    assert leftovers(tmp_path / "out") == ["a.cae"] and leftovers(tmp_path / "sub") == ["a.png"]


def test_cli_a_bad_input_among_several_is_named_and_nothing_is_written(
    tiny, tiny_file, tmp_path, capsys
):
    out = tmp_path / "out"
    out.mkdir()
    good = write_png(tmp_path / "good.png", np.zeros((8, 8, 3), np.uint8))
    (tmp_path / "bad.png").write_bytes(b"this is not an image")
    assert (
        main(["compress", str(good), str(tmp_path / "bad.png"), str(out), "--model", "tiny"]) == 1
    )
    err = capsys.readouterr().err
    assert (
        f"error: {tmp_path / 'bad.png'} is not a PNG or JPEG image" in err and err.count("\n") == 1
    )
    (tmp_path / "good.cae").write_bytes(tiny_file[1])
    (tmp_path / "bad.cae").write_bytes(tiny_file[1][:-1])
    files = [str(tmp_path / "good.cae"), str(tmp_path / "bad.cae")]
    assert main(["decompress", *files, str(out), "--model", "tiny"]) == 1
    assert f"error: {tmp_path / 'bad.cae'}: checksum mismatch" in capsys.readouterr().err
    assert (
        main(["decompress", files[0], str(tmp_path / "missing.cae"), str(out), "--model", "tiny"])
        == 1
    )
    assert f"cannot read {tmp_path / 'missing.cae'}" in capsys.readouterr().err
    assert leftovers(out) == []


def test_shipped_models_load_lowest_rate_first_and_round_trip():
    """Every shipped codec model loads, its tables match its description, and a file round-trips."""
    shipped = [(name, rate) for name, rate in codec.models(with_rates=True) if name != "tiny"]
    assert len(shipped) >= 4, "the course ships at least four codec models"
    rates = [rate for _, rate in shipped]
    assert rates == sorted(rates) and 0.4 < rates[0] and rates[-1] < 4
    image = np.random.default_rng(9).integers(0, 256, (20, 36, 3), dtype=np.uint8)
    for name, _ in shipped:
        c = codec.load(name)
        assert c.tables.fingerprint() == c.info["tables_crc32"]
        data = codec.compress(image, name)
        assert fileformat.parse(data)[0].model == name
        decoded = codec.decompress(data)
        assert decoded.shape == image.shape and np.array_equal(decoded, codec.decompress(data))


def _forged(model: str, height: int, width: int, payload: bytes) -> bytes:
    """A .cae file with a valid check for the shipped model's tables, claiming an image it cannot hold."""
    tables = codec.load(model).tables
    return fileformat.pack(fileformat.Header(model, height, width), payload, tables.fingerprint())


@pytest.mark.parametrize("size", [(1, 1), (32, 32), (4096, 4096), (65535, 256)])
def test_a_payload_too_short_for_its_header_is_refused_before_decoding(size):
    name = codec.models()[0]
    with pytest.raises(CodecError, match="without a payload"):  # no payload: refused by parse
        codec.decompress(_forged(name, *size, bytes(4))[:-1])
    for payload in (
        (bytes(4), bytes(8)) if size != (1, 1) else ()
    ):  # 1 and 5 bytes stored; they may well hold one position
        with pytest.raises(CodecError, match="needs a payload of at least .* It was not decoded"):
            codec.decompress(_forged(name, *size, payload))


def test_the_payload_bound_holds_for_real_files_of_every_shipped_model():
    """Flat images cost each channel's most probable symbol at every position: the bound's tightest case."""
    images = [np.full((32, 32, 3), v, np.uint8) for v in (0, 128, 255)] + [
        np.zeros((1, 1, 3), np.uint8)
    ]
    for name in [n for n in codec.models() if n != "tiny"]:
        per_position = codec.load(name).tables.min_bits_per_position()
        for image in images:
            payload = fileformat.words(fileformat.parse(codec.compress(image, name))[1])
            positions = -(-image.shape[0] // 8) * -(-image.shape[1] // 8)
            assert 8 * len(payload) >= positions * per_position, (name, image.shape)
            assert np.array_equal(codec.decompress(codec.compress(image, name)).shape, image.shape)


def test_min_bits_per_position_by_hand():
    pmf = np.zeros((2, 4), np.int32)
    pmf[0, :2] = [2**15, 2**15]  # two equally likely symbols: at least 1 bit
    pmf[1, :4] = [2**14, 2**14, 2**14, 2**14]  # four: at least 2 bits
    tables = coder.Tables(pmf, np.array([2, 4]), np.array([0, 0]), np.zeros(2, np.float32))
    assert tables.min_bits_per_position() == 3.0


def test_decompressing_any_small_forged_file_needs_little_memory_and_time(tmp_path):
    """In a fresh process: the model loaded first, then forged files of at most 1 kB, the largest sizes."""
    import subprocess
    import sys

    script = tmp_path / "probe.py"
    script.write_text(
        "import resource, sys, time\n"
        "from cae_utils import codec\n"
        "from cae_utils.codec import fileformat\n"
        "name = codec.models()[0]\n"
        "tables = codec.load(name).tables\n"
        "codec.decompress(codec.compress(__import__('numpy').zeros((8, 8, 3), 'uint8'), name))\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "start = time.time()\n"
        "for h, w, n in [(4096, 4096, 4), (4096, 4096, 960), (2048, 2048, 960), (65535, 256, 960)]:\n"
        "    data = fileformat.pack(fileformat.Header(name, h, w), bytes(n), tables.fingerprint())\n"
        "    assert len(data) <= 1024\n"
        "    try:\n"
        "        codec.decompress(data)\n"
        "    except codec.CodecError:\n"
        "        pass\n"
        "grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before\n"
        "print(grown, time.time() - start)\n"
    )
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    grown_kb, seconds = done.stdout.split()
    assert int(grown_kb) < 200 * 1024 and float(seconds) < 5


def test_an_oversized_png_is_refused_by_its_header_before_decoding(
    tiny, tmp_path, capsys, monkeypatch
):
    import struct

    from PIL import Image

    src = write_png(tmp_path / "small.png", np.zeros((4, 4, 3), np.uint8))
    raw = bytearray(src.read_bytes())
    # IHDR is the first chunk: length (4), type (4), width (4), height (4), ...; then its CRC over type + data.
    # 81 million pixels: over 2**24, under Pillow's own limit
    raw[16:24] = struct.pack(">II", 9_000, 9_000)
    raw[29:33] = struct.pack(">I", zlib.crc32(bytes(raw[12:29])))
    (tmp_path / "huge.png").write_bytes(bytes(raw))
    monkeypatch.setattr(Image.Image, "load", lambda self: pytest.fail("pixels were decoded"))
    assert (
        main(["compress", str(tmp_path / "huge.png"), str(tmp_path / "x.cae"), "--model", "tiny"])
        == 1
    )
    assert "huge.png: image of 9000 x 9000 pixels is too large" in capsys.readouterr().err
    assert not (tmp_path / "x.cae").exists()


@pytest.mark.parametrize(
    "change, message",
    [
        ({"lmbda": 0}, "lmbda must be a number above 0 to 1000, got 0"),
        ({"lmbda": float("inf")}, "lmbda must be a number above 0 to 1000, got inf"),
        ({"channels": 10**6}, "channels must be a whole number from 1 to 1024"),
        ({"table_size": 2**20}, "table_size must be a whole number from 1 to 32768"),
        ({"seed": -3}, "seed must be a whole number from 0 to 4294967295"),
    ],
)
def test_codec_run_settings_out_of_range_are_refused(change, message):
    from cae_utils.codec.training import CodecRunConfig
    from cae_utils.train import TrainingError

    with pytest.raises(TrainingError, match=message):
        CodecRunConfig(**{"lmbda": 0.01, "epochs": 1, **change})


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.integers(1, fileformat.MAX_SIDE),
    st.integers(1, fileformat.MAX_SIDE),
    st.binary(min_size=4, max_size=1024).map(lambda b: b[: len(b) - len(b) % 4]),
)
def test_any_small_file_with_a_valid_header_decodes_to_its_size_or_is_refused(
    height, width, payload
):
    """Headers chosen for the largest images, payloads of at most 1 kB: the shipped model's answer is an
    image of exactly the stated size or a CodecError, never another exception or a huge allocation."""
    name = codec.models()[0]
    if height * width > fileformat.MAX_PIXELS:
        height = fileformat.MAX_PIXELS // width
    data = _forged(name, height, width, payload)
    try:
        image = codec.decompress(data)
    except CodecError:
        return
    assert image.shape == (height, width, 3) and image.dtype == np.uint8
    positions = -(-height // 8) * -(-width // 8)
    assert 8 * len(payload) + 64 >= positions * codec.load(name).tables.min_bits_per_position()


def test_cli_train_refuses_bad_settings_with_status_2_before_any_work(tmp_path, capsys):
    assert main(["train", "--lmbda", "-1", "--epochs", "1", "--out", str(tmp_path / "run")]) == 2
    assert "lmbda must be a number above 0 to 1000, got -1.0" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("data", [3 * 10**8, None, "abc", [1, 2, 3]])
def test_what_is_not_bytes_is_refused_before_any_work(data):
    """An int would make bytes(n) allocate n zero bytes; a str or None would end in a TypeError."""
    with pytest.raises(CodecError, match="a .cae file is bytes, got"):
        codec.decompress(data)
    with pytest.raises(CodecError, match="a .cae file is bytes, got"):
        fileformat.parse(data)


def test_cli_refuses_a_fifo_or_device_as_input_without_reading_it(tiny, tmp_path, capsys):
    """Reading a FIFO blocks forever and /dev/zero never ends: both are refused before any read."""
    import os

    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    for args in (
        ["compress", str(fifo), str(tmp_path / "x.cae"), "--model", "tiny"],
        ["decompress", "/dev/zero", str(tmp_path / "x.png")],
    ):
        assert main(args) == 1, args
        err = capsys.readouterr().err
        assert "is not a regular file" in err and "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pipe.png"]


@pytest.mark.parametrize(
    "change",
    [
        {"channels": -1},
        {"channels": "abc"},
        {"channels": 10**6},
        {"lmbda": float("nan")},
        {"table_size": 1},
    ],
)
def test_odd_numbers_in_a_codec_description_are_refused_before_building(tmp_path, change):
    name = [n for n in codec.models() if n != "tiny"][0]
    meta = codec.load(name).info
    description = {**meta, "model": {**meta["model"], **change}}
    (tmp_path / f"codec-{name}.json").write_text(json.dumps(description))
    weights = f"codec-{name}.weights.h5"
    (tmp_path / weights).write_bytes(
        (maintainer.config.repo_root() / "weights" / weights).read_bytes()
    )
    with pytest.raises(CodecError, match=f"description of codec model '{name}' is damaged"):
        codec.load(name, tmp_path)
