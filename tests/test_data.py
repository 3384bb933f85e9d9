"""Unit tests for cae_utils.data, on tiny synthetic CIFAR-10 folders, and one check of the real dataset."""

import hashlib
import os
import pickle
import signal

import numpy as np
import pytest

from cae_utils import config, data
from cae_utils.data import (
    CIFAR10,
    CLASS_NAMES,
    CifarDataError,
    load_cifar10,
    load_raw,
    make_dataset,
    read_batch,
)

N_PER_BATCH = 20  # images per fake batch file: 5 x 20 = 100 training images, 20 test images
TRAIN_FILES = [f"data_batch_{i}" for i in range(1, 6)]
FIX_WORDS = ("re-download", "re-extract", "point cae_data_dir", "unset cae_data_dir")


# --------------------------------------------------------------------------- fake data


def to_row(image):
    """One NHWC uint8 image (32, 32, 3) -> one CIFAR-10 row: 1024 R, then 1024 G, then 1024 B values."""
    return image.transpose(2, 0, 1).reshape(3072)


def write_pickle(path, obj):
    with open(path, "wb") as f:
        pickle.dump(obj, f, protocol=2)


def write_batch(path, images, labels):
    """Write NHWC uint8 images and int labels as an official-style batch file."""
    write_pickle(
        path,
        {
            b"batch_label": b"fake batch",
            b"labels": [int(v) for v in labels],
            b"data": np.stack([to_row(img) for img in images]).astype(np.uint8),
            b"filenames": [f"img_{i:05d}.png".encode() for i in range(len(images))],
        },
    )


def binary_version_sha1(images, labels):
    """SHA-1 of a batch in CIFAR-10's binary layout: per image, its label byte, then its 3072-value row."""
    digest = hashlib.sha1()
    for image, label in zip(images, labels):
        digest.update(bytes([int(label)]) + to_row(image).tobytes())
    return digest.hexdigest()


def make_folder(folder, seed=0):
    """Write a fake cifar-10-batches-py into ``folder``.

    Returns (train images, train labels, test images, digests): the digests play the part of the
    official ones (``data.OFFICIAL_SHA1``) for this folder.
    """
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    # Train pixels are in 0..127 and test pixels in 128..255, so a test image can never pass for a train one.
    x_train = rng.integers(0, 128, size=(5 * N_PER_BATCH, 32, 32, 3), dtype=np.uint8)
    y_train = rng.integers(0, 10, size=5 * N_PER_BATCH)
    x_test = rng.integers(128, 256, size=(N_PER_BATCH, 32, 32, 3), dtype=np.uint8)
    y_test = rng.integers(0, 10, size=N_PER_BATCH)
    digests = {}
    for i, name in enumerate(TRAIN_FILES):
        part = slice(i * N_PER_BATCH, (i + 1) * N_PER_BATCH)
        write_batch(folder / name, x_train[part], y_train[part])
        digests[name] = binary_version_sha1(x_train[part], y_train[part])
    write_batch(folder / "test_batch", x_test, y_test)
    digests["test_batch"] = binary_version_sha1(x_test, y_test)
    write_pickle(
        folder / "batches.meta",
        {b"label_names": [n.encode() for n in CLASS_NAMES], b"num_vis": 3072},
    )
    return x_train, y_train, x_test, digests


@pytest.fixture
def cifar_dir(tmp_path, monkeypatch):
    """A fake CIFAR-10 folder, whose batches' digests stand in for the official ones."""
    folder = tmp_path / "cifar-10-batches-py"
    *_, digests = make_folder(folder)
    monkeypatch.setattr(data, "OFFICIAL_SHA1", digests)
    return folder


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    """Each test starts from full mode, no data folder, seed 42; tests that need others set them."""
    monkeypatch.setenv("CAE_QUICK", "0")
    monkeypatch.delenv("CAE_DATA_DIR", raising=False)
    monkeypatch.delenv("CAE_SEED", raising=False)


def as_set(images):
    """Images -> set of their bytes, to compare collections of images."""
    return {img.tobytes() for img in images}


def to_uint8(images):
    return np.round(images * 255).astype(np.uint8)


def assert_good_message(exc_info, *names):
    """The error names the file/folder at fault, CAE_DATA_DIR and a fix, in one paragraph."""
    message = str(exc_info.value)
    for name in names:
        assert str(name) in message, message
    assert "CAE_DATA_DIR" in message, message
    assert any(word in message.lower() for word in FIX_WORDS), message
    assert "\n" not in message, message


# --------------------------------------------------------------------------- read_batch


def test_read_batch_converts_planar_rows_to_nhwc(tmp_path):
    row = np.zeros(3072, dtype=np.uint8)
    row[:1024], row[1024:2048], row[2048:] = 10, 20, 30  # red plane 10, green 20, blue 30
    row[1] = 200  # red of pixel (row 0, column 1)
    row[1024 + 32] = 210  # green of pixel (row 1, column 0)
    row[2048 + 31 * 32 + 31] = 220  # blue of the last pixel (31, 31)
    write_pickle(tmp_path / "b", {b"data": row[None, :], b"labels": [7]})

    images, labels = read_batch(tmp_path / "b")

    assert images.shape == (1, 32, 32, 3) and images.dtype == np.uint8
    assert labels.tolist() == [7] and labels.dtype == np.int64
    assert images[0, 0, 0].tolist() == [10, 20, 30]
    assert images[0, 0, 1].tolist() == [200, 20, 30]
    assert images[0, 1, 0].tolist() == [10, 210, 30]
    assert images[0, 31, 31].tolist() == [10, 20, 220]


def test_read_batch_round_trip_matches_index_formula(tmp_path):
    image = np.random.default_rng(1).integers(0, 256, size=(32, 32, 3), dtype=np.uint8)
    row = np.empty(3072, dtype=np.uint8)
    for channel in range(3):
        for r in range(32):
            for c in range(32):
                row[channel * 1024 + r * 32 + c] = image[r, c, channel]
    write_pickle(
        tmp_path / "b",
        {b"data": row[None, :], b"labels": [3], b"batch_label": b"x", b"filenames": [b"a"]},
    )

    images, _ = read_batch(str(tmp_path / "b"))  # a str path works too

    np.testing.assert_array_equal(images[0], image)


# --------------------------------------------------------------------------- load_raw and load_cifar10


def test_load_raw_reads_all_batches_in_order(cifar_dir):
    x_train, y_train, x_test, _ = make_folder(cifar_dir)
    xt, yt, xs, ys, names = load_raw(cifar_dir)
    np.testing.assert_array_equal(xt, x_train)
    np.testing.assert_array_equal(yt, y_train)
    np.testing.assert_array_equal(xs, x_test)
    assert ys.shape == (N_PER_BATCH,) and names == CLASS_NAMES


def test_load_cifar10_shapes_types_and_split(cifar_dir):
    x_train, y_train, x_test, _ = make_folder(cifar_dir)
    data = load_cifar10(val_size=10, seed=0, data_dir=cifar_dir)

    assert (
        isinstance(data, CIFAR10)
        and data.source == "CAE_DATA_DIR"
        and data.class_names == CLASS_NAMES
    )
    assert data.x_train.shape == (90, 32, 32, 3)
    assert data.x_val.shape == (10, 32, 32, 3)
    assert data.x_test.shape == (N_PER_BATCH, 32, 32, 3)
    for x in (data.x_train, data.x_val, data.x_test):
        assert x.dtype == np.float32 and x.min() >= 0.0 and x.max() <= 1.0
    for y in (data.y_train, data.y_val, data.y_test):
        assert y.dtype == np.int64 and y.ndim == 1

    train_set, val_set = as_set(to_uint8(data.x_train)), as_set(to_uint8(data.x_val))
    assert val_set <= as_set(x_train)  # validation images come from the training batches...
    assert not val_set & as_set(x_test)  # ...never from the test batch
    assert not train_set & val_set
    assert train_set | val_set == as_set(x_train)  # together they are exactly the training images
    np.testing.assert_array_equal(to_uint8(data.x_test), x_test)  # test set untouched, in order

    # Labels travel with their images.
    label_of = {img.tobytes(): label for img, label in zip(x_train, y_train)}
    assert [label_of[img.tobytes()] for img in to_uint8(data.x_val)] == data.y_val.tolist()


def test_split_is_deterministic_per_seed(cifar_dir):
    a = load_cifar10(val_size=10, seed=1, data_dir=cifar_dir)
    b = load_cifar10(val_size=10, seed=1, data_dir=cifar_dir)
    c = load_cifar10(val_size=10, seed=2, data_dir=cifar_dir)
    np.testing.assert_array_equal(a.x_val, b.x_val)
    np.testing.assert_array_equal(a.y_train, b.y_train)
    assert as_set(a.x_val) != as_set(c.x_val)


def test_seed_and_data_dir_default_to_settings(cifar_dir, monkeypatch):
    monkeypatch.setenv("CAE_DATA_DIR", str(cifar_dir))
    monkeypatch.setenv("CAE_SEED", "7")
    from_env = load_cifar10(val_size=10)
    explicit = load_cifar10(val_size=10, seed=7, data_dir=cifar_dir)
    assert from_env.source == "CAE_DATA_DIR"
    np.testing.assert_array_equal(from_env.x_val, explicit.x_val)


def test_parent_folder_is_accepted(cifar_dir):
    parent = cifar_dir.parent
    np.testing.assert_array_equal(
        load_cifar10(val_size=10, data_dir=parent).x_val,
        load_cifar10(val_size=10, data_dir=cifar_dir).x_val,
    )


def test_quick_mode_keeps_first_images_of_each_split(cifar_dir, monkeypatch):
    monkeypatch.setenv("CAE_QUICK", "1")
    monkeypatch.setattr(config, "QUICK_SIZES", {"train": 30, "val": 4, "test": 5})
    quick = load_cifar10(val_size=10, seed=3, data_dir=cifar_dir)
    full = load_cifar10(val_size=10, seed=3, data_dir=cifar_dir, quick=False)

    assert (len(quick.x_train), len(quick.x_val), len(quick.x_test)) == (30, 4, 5)
    assert (len(full.x_train), len(full.x_val), len(full.x_test)) == (90, 10, N_PER_BATCH)
    np.testing.assert_array_equal(quick.x_train, full.x_train[:30])
    np.testing.assert_array_equal(quick.y_val, full.y_val[:4])
    np.testing.assert_array_equal(quick.x_test, full.x_test[:5])
    assert quick.x_train.dtype == np.float32


@pytest.mark.parametrize("val_size", [0, -1, 50_000, 2.5, True])
def test_bad_val_size(cifar_dir, val_size):
    with pytest.raises(ValueError, match="val_size"):
        load_cifar10(val_size=val_size, data_dir=cifar_dir)


@pytest.mark.parametrize("seed", [-1, 2**32, 1.5, "42", True])
def test_bad_seed(cifar_dir, seed):
    with pytest.raises(ValueError, match=r"seed must be a whole number from 0 to 4294967295"):
        load_cifar10(val_size=10, seed=seed, data_dir=cifar_dir)


def test_numpy_whole_numbers_are_accepted(cifar_dir):
    a = load_cifar10(val_size=np.int64(10), seed=np.uint32(3), data_dir=cifar_dir)
    b = load_cifar10(val_size=10, seed=3, data_dir=cifar_dir)
    np.testing.assert_array_equal(a.x_val, b.x_val)


# --------------------------------------------------------------------------- folder errors


def test_error_path_missing(tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(CifarDataError, match="does not exist") as info:
        load_cifar10(data_dir=missing)
    assert_good_message(info, missing)


def test_error_path_is_a_file(tmp_path, monkeypatch):
    archive = tmp_path / "cifar-10-python.tar.gz"
    archive.write_bytes(b"not a folder")
    monkeypatch.setenv("CAE_DATA_DIR", str(archive))  # through the environment, as users do
    with pytest.raises(CifarDataError, match="is a file, not a folder") as info:
        load_cifar10()
    assert_good_message(info, archive, "tar -xzf")


def test_error_empty_folder(tmp_path):
    with pytest.raises(
        CifarDataError, match="is empty: it holds none of the CIFAR-10 files"
    ) as info:
        load_raw(tmp_path)
    assert_good_message(info, tmp_path, "data_batch_1", "test_batch", "batches.meta")


def test_error_folder_without_cifar_files(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(CifarDataError, match="holds none of the CIFAR-10 files") as info:
        load_raw(tmp_path)
    assert_good_message(info, tmp_path, "data_batch_5")


def test_error_one_batch_missing(cifar_dir):
    (cifar_dir / "data_batch_3").unlink()
    with pytest.raises(CifarDataError, match="data_batch_3 is missing") as info:
        load_raw(cifar_dir)
    assert_good_message(info, cifar_dir)


# --------------------------------------------------------------------------- damaged files


def break_file(cifar_dir, how):
    """Damage test_batch in one of several ways; return its path."""
    path = cifar_dir / "test_batch"
    rng = np.random.default_rng(5)
    good = pickle.loads(path.read_bytes())
    if how == "truncated":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif how == "random bytes":
        path.write_bytes(rng.integers(0, 256, size=5000, dtype=np.uint8).tobytes())
    elif how == "a list":
        write_pickle(path, [1, 2, 3])
    elif how == "no labels":
        write_pickle(path, {b"data": good[b"data"]})
    elif how == "wrong data shape":
        write_pickle(
            path, {b"data": np.zeros((N_PER_BATCH, 100), np.uint8), b"labels": good[b"labels"]}
        )
    elif how == "float data":
        write_pickle(path, {b"data": good[b"data"].astype(np.float64), b"labels": good[b"labels"]})
    elif how == "labels out of range":
        write_pickle(path, {b"data": good[b"data"], b"labels": [10] * N_PER_BATCH})
    elif how == "labels not ints":
        write_pickle(path, {b"data": good[b"data"], b"labels": [b"cat"] * N_PER_BATCH})
    elif how == "labels length mismatch":
        write_pickle(path, {b"data": good[b"data"], b"labels": good[b"labels"][:-1]})
    return path


@pytest.mark.parametrize(
    "how, expected",
    [
        ("truncated", "truncated or not a CIFAR-10 batch"),
        ("random bytes", "truncated or not a CIFAR-10 batch"),
        ("a list", "holds a list"),
        ("no labels", "no b'labels'"),
        ("wrong data shape", r"shape \(N, 3072\)"),
        ("float data", "float64"),
        ("labels out of range", "from 0 to 9"),
        ("labels not ints", "from 0 to 9"),
        ("labels length mismatch", f"{N_PER_BATCH} images but {N_PER_BATCH - 1} labels"),
    ],
)
def test_error_damaged_batch(cifar_dir, how, expected):
    path = break_file(cifar_dir, how)
    with pytest.raises(CifarDataError, match=expected) as info:
        load_cifar10(val_size=10, data_dir=cifar_dir)
    assert_good_message(info, path)
    with pytest.raises(CifarDataError, match=expected):  # read_batch alone says the same
        read_batch(path)


@pytest.mark.parametrize(
    "names",
    [
        [b"cat"],
        [n.encode() for n in reversed(CLASS_NAMES)],  # the right names in another order
        [n.encode().upper() for n in CLASS_NAMES],
        [f"class_{i}".encode() for i in range(100)],  # CIFAR-100 has 100 fine labels
        None,
    ],
)
def test_error_damaged_meta(cifar_dir, names):
    write_pickle(cifar_dir / "batches.meta", {b"label_names": names})
    with pytest.raises(CifarDataError, match="not CIFAR-10's batches.meta") as info:
        load_raw(cifar_dir)
    assert_good_message(info, cifar_dir / "batches.meta", "airplane, automobile")


# --------------------------------------------------------------------------- not exactly CIFAR-10


def rewrite(path, edit):
    """Rewrite the batch at ``path`` after ``edit(images, labels)`` returns new images and labels."""
    images, labels = read_batch(path)
    write_batch(path, *edit(images.copy(), labels.copy()))


def one_pixel(images, labels):
    images[7, 12, 30, 1] ^= 1  # the lowest bit of one green value
    return images, labels


@pytest.mark.parametrize(
    "edit, expected",
    [
        (one_pixel, f"its {N_PER_BATCH} images and labels differ"),
        (lambda x, y: (x, (y + 1) % 10), f"its {N_PER_BATCH} images and labels differ"),
        (
            lambda x, y: (x[::-1], y[::-1]),
            f"its {N_PER_BATCH} images and labels differ",
        ),  # same images, other order
        (lambda x, y: (x[:-1], y[:-1]), f"its {N_PER_BATCH - 1} images and labels differ"),
        (
            lambda x, y: (np.concatenate([x, x[:1]]), np.concatenate([y, y[:1]])),
            f"its {N_PER_BATCH + 1} images and labels differ",
        ),
    ],
)
def test_a_batch_that_is_not_exactly_the_official_one_is_refused(cifar_dir, edit, expected):
    path = cifar_dir / "data_batch_4"
    rewrite(path, edit)
    read_batch(path)  # still a well-formed batch...
    with pytest.raises(
        CifarDataError, match=f"not CIFAR-10's official data_batch_4: {expected}"
    ) as info:
        load_cifar10(val_size=10, data_dir=cifar_dir)  # ...but not CIFAR-10's
    assert_good_message(info, path)


def test_a_batch_copied_over_another_is_named(cifar_dir):
    (cifar_dir / "test_batch").write_bytes((cifar_dir / "data_batch_1").read_bytes())
    with pytest.raises(
        CifarDataError,
        match="holds the images and labels of the official data_batch_1, not of test_batch",
    ) as info:
        load_raw(cifar_dir)
    assert_good_message(info, cifar_dir / "test_batch")


def test_a_pipe_or_folder_in_place_of_a_batch_is_refused_without_reading(cifar_dir):
    path = cifar_dir / "data_batch_2"
    path.unlink()
    os.mkfifo(path)  # opening a pipe for reading would wait for a writer forever

    def hung(*_):
        raise AssertionError("the loader opened the pipe and waited")

    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(20)
    try:
        with pytest.raises(CifarDataError, match="is not a regular file") as info:
            load_raw(cifar_dir)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    assert_good_message(info, path)
    path.unlink()
    path.mkdir()
    with pytest.raises(CifarDataError, match="is not a regular file"):
        load_raw(cifar_dir)


def test_an_oversized_batch_is_refused_unread(cifar_dir):
    path = cifar_dir / "test_batch"
    with open(path, "r+b") as f:
        f.truncate(data.MAX_FILE_BYTES + 1)  # sparse: takes no disk space
    with pytest.raises(CifarDataError, match=f"it has {data.MAX_FILE_BYTES + 1:,} bytes") as info:
        load_raw(cifar_dir)
    assert_good_message(info, path)


REAL_DATA = os.environ.get("CAE_DATA_DIR")


@pytest.mark.skipif(not REAL_DATA, reason="CAE_DATA_DIR is not set")
def test_the_real_dataset_passes_and_has_its_published_statistics():
    x_train, y_train, x_test, y_test, names = load_raw(REAL_DATA)
    assert x_train.shape == (50_000, 32, 32, 3) and x_test.shape == (10_000, 32, 32, 3)
    assert names == CLASS_NAMES
    # The dataset's well-known facts, independent of the digests the loader checks.
    assert np.bincount(y_train).tolist() == [5000] * 10
    assert np.bincount(y_test).tolist() == [1000] * 10
    assert (y_train[0], y_test[0]) == (6, 3)  # a frog, a cat
    assert to_row(x_train[0])[:3].tolist() == [59, 43, 50]
    assert to_row(x_test[0])[-3:].tolist() == [124, 129, 110]
    mean = x_train.reshape(-1, 3).mean(axis=0, dtype=np.float64)
    np.testing.assert_allclose(mean, [125.30691805, 122.95039414, 113.86538318], atol=1e-6)


class Exploit:
    """Unpickling this object would call os.system (a classic malicious pickle)."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_malicious_pickle_is_refused_without_running(cifar_dir, tmp_path):
    marker = tmp_path / "pwned"
    path = cifar_dir / "data_batch_2"
    write_pickle(path, {b"data": Exploit(marker), b"labels": []})
    with pytest.raises(CifarDataError, match="not a CIFAR-10 batch.*refused") as info:
        load_raw(cifar_dir)
    assert_good_message(info, path)
    assert "system" in str(info.value)
    assert not marker.exists()


# --------------------------------------------------------------------------- Keras download


def test_download_failure_explains_the_fix(monkeypatch):
    import keras

    def no_internet():
        raise OSError("Name or service not known")

    monkeypatch.setattr(keras.datasets.cifar10, "load_data", no_internet)
    with pytest.raises(CifarDataError, match="Downloading CIFAR-10") as info:
        load_cifar10()
    message = str(info.value)
    assert "CAE_DATA_DIR" in message and "internet connection" in message
    assert (
        "cifar-10-python.tar.gz" in message
        and "https://www.cs.toronto.edu/~kriz/cifar.html" in message
    )
    assert isinstance(info.value.__cause__, OSError)


def test_download_path_flattens_labels(monkeypatch):
    import keras

    rng = np.random.default_rng(0)
    fake = (
        (rng.integers(0, 256, (30, 32, 32, 3), dtype=np.uint8), rng.integers(0, 10, (30, 1))),
        (rng.integers(0, 256, (8, 32, 32, 3), dtype=np.uint8), rng.integers(0, 10, (8, 1))),
    )
    monkeypatch.setattr(keras.datasets.cifar10, "load_data", lambda: fake)
    data = load_cifar10(val_size=5, seed=0)
    assert data.source == "keras download" and data.class_names == CLASS_NAMES
    assert (
        data.y_train.shape == (25,) and data.y_test.shape == (8,) and data.y_val.dtype == np.int64
    )
    np.testing.assert_array_equal(to_uint8(data.x_test), fake[1][0])
    # the (N, 1) label columns become flat label lists, in order and with their values
    np.testing.assert_array_equal(data.y_test, fake[1][1][:, 0])
    train_labels = {img.tobytes(): y for img, y in zip(fake[0][0], fake[0][1][:, 0])}
    assert [train_labels[img.tobytes()] for img in to_uint8(data.x_val)] == data.y_val.tolist()


# --------------------------------------------------------------------------- make_dataset


def test_make_dataset_yields_image_pairs():
    x = np.random.default_rng(0).random((10, 4, 4, 3), dtype=np.float32)
    batches = list(make_dataset(x, batch_size=4, shuffle=False).as_numpy_iterator())
    assert [inputs.shape for inputs, _ in batches] == [(4, 4, 4, 3), (4, 4, 4, 3), (2, 4, 4, 3)]
    for inputs, targets in batches:
        np.testing.assert_array_equal(inputs, targets)
    np.testing.assert_array_equal(np.concatenate([inputs for inputs, _ in batches]), x)

    dropped = list(make_dataset(x, batch_size=4, drop_remainder=True, seed=1).as_numpy_iterator())
    assert [inputs.shape[0] for inputs, _ in dropped] == [4, 4]


def test_make_dataset_shuffles_with_seed():
    x = np.arange(20, dtype=np.float32).reshape(20, 1, 1, 1)
    first = np.concatenate(
        [a for a, _ in make_dataset(x, batch_size=8, seed=3).as_numpy_iterator()]
    ).ravel()
    again = np.concatenate(
        [a for a, _ in make_dataset(x, batch_size=8, seed=3).as_numpy_iterator()]
    ).ravel()
    np.testing.assert_array_equal(first, again)  # same seed, same order
    assert sorted(first.tolist()) == list(range(20))  # every image exactly once
    assert first.tolist() != list(range(20))


def test_make_dataset_flips_some_images_left_to_right_and_its_targets_with_them():
    x = np.random.default_rng(1).random((64, 4, 5, 3), dtype=np.float32)
    pairs = list(
        make_dataset(x, batch_size=16, shuffle=False, flip=True, seed=0).as_numpy_iterator()
    )
    inputs = np.concatenate([a for a, _ in pairs])
    targets = np.concatenate([b for _, b in pairs])
    np.testing.assert_array_equal(inputs, targets)  # the target is the (flipped) input itself
    same = np.all(inputs == x, axis=(1, 2, 3))
    mirrored = np.all(inputs == x[:, :, ::-1], axis=(1, 2, 3))
    assert np.all(same | mirrored)  # each image whole, as it was or mirrored (columns reversed)
    assert (
        16 < mirrored.sum() < 48
    )  # about half of them: 64 fair coins land in this range but for 4e-5
    plain = np.concatenate(
        [a for a, _ in make_dataset(x, batch_size=16, shuffle=False).as_numpy_iterator()]
    )
    np.testing.assert_array_equal(plain, x)


@pytest.mark.parametrize(
    "x, batch_size, expected",
    [
        (np.zeros((10, 4, 4), np.float32), 4, "4-D"),
        (np.zeros((10, 4, 4, 3), np.uint8), 4, "float"),
        (np.zeros((0, 4, 4, 3), np.float32), 4, "non-empty"),
        (np.zeros((10, 4, 4, 3), np.float32), 0, "batch_size"),
        (np.zeros((10, 4, 4, 3), np.float32), 2.5, "batch_size"),
    ],
)
def test_make_dataset_bad_args(x, batch_size, expected):
    with pytest.raises(ValueError, match=expected):
        make_dataset(x, batch_size=batch_size)


def test_channel_stats_by_hand():
    a = np.zeros((2, 1, 1, 3), dtype=np.float32)
    a[0, 0, 0] = (1.0, 0.5, 0.0)
    b = np.ones((2, 1, 1, 3), dtype=np.float32)
    mean, std = data.channel_stats(a, b)
    # Channel 0 holds 1, 0, 1, 1: mean 0.75, population std sqrt(0.1875).
    np.testing.assert_allclose(mean, [0.75, 0.625, 0.5])
    np.testing.assert_allclose(std[0], np.sqrt(0.1875))
    np.testing.assert_allclose(std[2], 0.5)
    with pytest.raises(ValueError, match="same C"):
        data.channel_stats(a, np.zeros((1, 1, 1, 4)))


def test_channel_stats_match_numpy_over_several_arrays():
    rng = np.random.default_rng(0)
    a, b = rng.random((3, 4, 5, 3)), rng.random((2, 4, 5, 3)) * 0.5  # several pixels per image
    mean, std = data.channel_stats(a, b)
    pixels = np.concatenate([a, b]).reshape(-1, 3)  # 100 pixels of 3 channels
    np.testing.assert_allclose(mean, pixels.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(std, pixels.std(axis=0), rtol=1e-10)  # population std (ddof 0)


def test_to_uint8_gives_back_the_original_bytes():
    original = np.arange(256, dtype=np.uint8).reshape(1, 16, 16, 1)
    as_float = original.astype(np.float32) / 255.0
    np.testing.assert_array_equal(data.to_uint8(as_float), original)
    assert data.to_uint8(original) is original
    np.testing.assert_array_equal(
        data.to_uint8(np.array([-0.2, 0.0021, 0.5, 1.3])), [0, 1, 128, 255]
    )
