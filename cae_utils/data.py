"""CIFAR-10 loading, the train/validation/test split and ``tf.data`` pipelines.

The course reads CIFAR-10 in one of two ways:

- from a folder, when ``CAE_DATA_DIR`` is set (or ``data_dir`` is passed): the folder
  ``cifar-10-batches-py`` of the official "python version" (``data_batch_1`` ... ``data_batch_5``,
  ``test_batch``, ``batches.meta``), or a folder that contains it;
- otherwise through ``keras.datasets.cifar10.load_data()``, which downloads the archive once.

Each batch file is a pickle. Unpickling an untrusted file can run arbitrary code, so the files are
read with a *restricted* unpickler that only rebuilds numpy arrays and refuses anything else.

A folder must hold exactly CIFAR-10: each batch's labels and pixels, in order, are checked against the
SHA-1 digests published for the official files (:data:`OFFICIAL_SHA1`), so a damaged, edited,
swapped or foreign batch is refused, with the file named.

Every problem with the data raises :class:`CifarDataError`, whose message names the file or folder
at fault, the variable ``CAE_DATA_DIR`` and what to do about it.

TensorFlow and Keras are imported inside the functions that need them, so importing this module
and reading batch files is cheap.
"""

from __future__ import annotations

import hashlib
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cae_utils import config
from cae_utils._files import regular_file_size

__all__ = [
    "CLASS_NAMES",
    "CIFAR10",
    "CifarDataError",
    "read_batch",
    "load_raw",
    "load_cifar10",
    "make_dataset",
    "to_uint8",
    "channel_stats",
]

#: The ten CIFAR-10 classes, in label order (label 0 is "airplane", label 9 is "truck").
CLASS_NAMES = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)

TRAIN_FILES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_FILE = "test_batch"
META_FILE = "batches.meta"
EXPECTED_FILES = TRAIN_FILES + (TEST_FILE, META_FILE)
SUBFOLDER = "cifar-10-batches-py"
N_TRAIN = 50_000  # images in the official training set
#: The largest batch file read: the official ones are about 31 MB (bigger ones are refused unread).
MAX_FILE_BYTES = 64 * 2**20

#: SHA-1 of each official batch in CIFAR-10's *binary version* layout (per image, one label byte and
#: its 3072 pixel bytes), as published by Apache MXNet (``gluon/data/vision/datasets.py``). The
#: python version holds the same labels and pixels, so rebuilding those bytes checks every label,
#: every pixel and their order.
OFFICIAL_SHA1 = {
    "data_batch_1": "aadd24acce27caa71bf4b10992e9e7b2d74c2540",
    "data_batch_2": "c0ba65cce70568cd57b4e03e9ac8d2a5367c1795",
    "data_batch_3": "1dd00a74ab1d17a6e7d73e185b69dbf31242f295",
    "data_batch_4": "aab85764eb3584312d3c7f65fd2fd016e36a258e",
    "data_batch_5": "26e2849e66a845b7f1e4614ae70f4889ae604628",
    "test_batch": "67eb016db431130d61cd03c7ad570b013799c88c",
}
CIFAR_URL = "https://www.cs.toronto.edu/~kriz/cifar.html"

# The two fixes that the error messages suggest.
_FIX_FOLDER = (
    "Point CAE_DATA_DIR at the cifar-10-batches-py folder of the official python version "
    "(or at the folder that contains it), or unset CAE_DATA_DIR to let Keras download CIFAR-10."
)
_FIX_DAMAGED = (
    f"The file is damaged or is not from the official python version: re-download "
    f"cifar-10-python.tar.gz from {CIFAR_URL}, re-extract it and point CAE_DATA_DIR at the new "
    f"cifar-10-batches-py folder, or unset CAE_DATA_DIR to let Keras download CIFAR-10."
)


class CifarDataError(RuntimeError):
    """CIFAR-10 could not be loaded; the message says which file or folder is at fault and what to do."""


@dataclass(frozen=True, eq=False)
class CIFAR10:
    """CIFAR-10 split into training, validation and test sets.

    Attributes:
        x_train, x_val, x_test: float32 images of shape (N, 32, 32, 3) (NHWC), values in [0, 1].
        y_train, y_val, y_test: int64 labels of shape (N,), values 0-9 (see ``class_names``).
        class_names: the ten class names, in label order.
        source: where the images came from: ``"CAE_DATA_DIR"`` (a folder) or ``"keras download"``.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: tuple
    source: str

    def __repr__(self) -> str:
        return (
            f"CIFAR10(train {len(self.x_train)}, val {len(self.x_val)}, test {len(self.x_test)} "
            f"images of 32x32x3, float32 in [0, 1]; source: {self.source})"
        )


# --------------------------------------------------------------------------- reading one file


class _ForbiddenGlobal(pickle.UnpicklingError):
    """The pickle asks for a Python object that a CIFAR-10 file never needs."""


def _allowed_globals() -> dict:
    """The only objects a CIFAR-10 pickle may ask for: what numpy needs to rebuild an array."""
    import _codecs

    try:  # numpy >= 2
        from numpy._core.multiarray import _reconstruct
    except ImportError:  # numpy 1.x
        from numpy.core.multiarray import _reconstruct
    return {
        ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
        ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        ("_codecs", "encode"): _codecs.encode,
    }


class _RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that rebuilds numpy arrays and refuses every other Python object."""

    def find_class(self, module, name):
        allowed = _allowed_globals()
        if (module, name) not in allowed:
            raise _ForbiddenGlobal(f"{module}.{name}")
        return allowed[(module, name)]


def _unpickle(path: Path):
    """Read the pickle at ``path`` with the restricted unpickler; raise CifarDataError on any problem."""
    try:
        size = regular_file_size(path)
    except OSError as exc:
        raise CifarDataError(
            f"The CIFAR-10 file {path} cannot be opened ({exc.strerror or type(exc).__name__}). {_FIX_FOLDER}"
        ) from exc
    if size is None:
        raise CifarDataError(
            f"The CIFAR-10 file {path} is not a regular file (it is a folder, pipe or device). {_FIX_FOLDER}"
        )
    if size > MAX_FILE_BYTES:
        raise CifarDataError(
            f"The file {path} is not a CIFAR-10 batch: it has {size:,} bytes, and the official "
            f"files have at most about 31 MB. {_FIX_DAMAGED}"
        )
    try:
        with open(path, "rb") as f:
            return _RestrictedUnpickler(f, encoding="bytes").load()
    except _ForbiddenGlobal as exc:
        raise CifarDataError(
            f"The file {path} is not a CIFAR-10 batch: it asks to load the Python object {exc}, "
            f"which CIFAR-10 files never do, so it was refused without running anything. {_FIX_DAMAGED}"
        ) from None
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise CifarDataError(
            f"The CIFAR-10 file {path} cannot be opened ({reason}). {_FIX_FOLDER}"
        ) from exc
    # EOFError, UnpicklingError, ValueError, ...: the bytes are not a valid pickle
    except Exception as exc:
        raise CifarDataError(
            f"The file {path} is truncated or not a CIFAR-10 batch: it could not be unpickled "
            f"({type(exc).__name__}). {_FIX_DAMAGED}"
        ) from exc


def _describe(value) -> str:
    """A short description of a value for error messages, e.g. 'a float64 array of shape (20, 100)'."""
    if isinstance(value, np.ndarray):
        return f"a {value.dtype} array of shape {value.shape}"
    return f"a {type(value).__name__}"


def read_batch(path):
    """Read one batch file of CIFAR-10's official python version.

    Args:
        path: a batch file such as ``.../cifar-10-batches-py/data_batch_1`` (str or Path).

    Returns:
        ``(images, labels)``: images as uint8 of shape (N, 32, 32, 3) (NHWC: row, column, RGB
        channel) and labels as int64 of shape (N,), values 0-9.

    Raises:
        CifarDataError: the file cannot be opened, is truncated, is not a CIFAR-10 batch (including
            a pickle that asks for any Python object other than a numpy array), or its content has
            the wrong shape or labels.
    """
    path = Path(path)
    batch = _unpickle(path)
    not_a_batch = f"The file {path} is not a CIFAR-10 batch"

    if not isinstance(batch, dict):
        raise CifarDataError(
            f"{not_a_batch}: it holds {_describe(batch)}, not a dict with b'data' and b'labels'. {_FIX_DAMAGED}"
        )
    missing = [repr(key) for key in (b"data", b"labels") if key not in batch]
    if missing:
        raise CifarDataError(
            f"{not_a_batch}: its dict has no {' or '.join(missing)} entry. {_FIX_DAMAGED}"
        )

    data = batch[b"data"]
    if not (
        isinstance(data, np.ndarray)
        and data.dtype == np.uint8
        and data.ndim == 2
        and data.shape[1] == 3072
    ):
        raise CifarDataError(
            f"{not_a_batch}: b'data' should be a uint8 array of shape (N, 3072), "
            f"but it is {_describe(data)}. {_FIX_DAMAGED}"
        )
    n_images = data.shape[0]

    labels = batch[b"labels"]
    if not isinstance(labels, (list, tuple, np.ndarray)):
        raise CifarDataError(
            f"{not_a_batch}: b'labels' should be a list of ints, but it is {_describe(labels)}. {_FIX_DAMAGED}"
        )
    if len(labels) != n_images:
        raise CifarDataError(
            f"{not_a_batch}: it has {n_images} images but {len(labels)} labels. {_FIX_DAMAGED}"
        )
    bad = [
        v
        for v in labels
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or not 0 <= v <= 9
    ]
    if bad:
        raise CifarDataError(
            f"{not_a_batch}: its labels must be whole numbers from 0 to 9, but {len(bad)} of them "
            f"are not (for example {bad[0]!r}). {_FIX_DAMAGED}"
        )

    # Each row holds 1024 red values, then 1024 green, then 1024 blue, each plane in row-major order:
    # (N, 3072) -> (N, channel, row, column) -> (N, row, column, channel).
    images = data.reshape(n_images, 3, 32, 32).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(images), np.asarray(labels, dtype=np.int64)


def _read_label_names(path: Path) -> tuple:
    """Read ``batches.meta`` and return the ten class names as a tuple of str."""
    meta = _unpickle(path)
    names = meta.get(b"label_names") if isinstance(meta, dict) else None
    if names != [name.encode() for name in CLASS_NAMES]:
        raise CifarDataError(
            f"The file {path} is not CIFAR-10's batches.meta: it should hold a dict whose "
            f"b'label_names' lists the ten classes {', '.join(CLASS_NAMES)}, in that order. {_FIX_DAMAGED}"
        )
    return CLASS_NAMES


def _check_official(path: Path, images: np.ndarray, labels: np.ndarray) -> None:
    """Raise CifarDataError unless ``images`` and ``labels`` are exactly the official batch named ``path.name``."""
    rows = images.transpose(0, 3, 1, 2).reshape(len(images), 3072)  # back to the file's planar rows
    records = np.concatenate([labels.astype(np.uint8)[:, None], rows], axis=1)
    digest = hashlib.sha1(records.tobytes()).hexdigest()
    if digest == OFFICIAL_SHA1[path.name]:
        return
    others = [name for name, value in OFFICIAL_SHA1.items() if value == digest]
    if others:
        found = f"it holds the images and labels of the official {others[0]}, not of {path.name}"
    else:
        found = (
            f"its {len(images):,} images and labels differ from the official ones "
            f"(10,000 images, each with its label, in a fixed order)"
        )
    raise CifarDataError(
        f"The file {path} is not CIFAR-10's official {path.name}: {found}. {_FIX_DAMAGED}"
    )


# --------------------------------------------------------------------------- reading the folder


def _find_folder(data_dir) -> Path:
    """Check ``data_dir`` and return the folder that holds the batch files."""
    folder = Path(data_dir)
    if not folder.exists():
        raise CifarDataError(f"The CIFAR-10 folder {folder} does not exist. {_FIX_FOLDER}")
    if not folder.is_dir():
        raise CifarDataError(
            f"{folder} is a file, not a folder. If it is the archive cifar-10-python.tar.gz, "
            f"unpack it first (tar -xzf cifar-10-python.tar.gz). {_FIX_FOLDER}"
        )
    # Users often point at the folder that holds cifar-10-batches-py: look inside it.
    if not (folder / TRAIN_FILES[0]).exists() and (folder / SUBFOLDER).is_dir():
        folder = folder / SUBFOLDER

    missing = [name for name in EXPECTED_FILES if not (folder / name).exists()]
    if len(missing) == len(EXPECTED_FILES):
        state = "is empty: it holds" if not any(folder.iterdir()) else "holds"
        raise CifarDataError(
            f"The folder {folder} {state} none of the CIFAR-10 files {', '.join(EXPECTED_FILES)}. {_FIX_FOLDER}"
        )
    if missing:
        raise CifarDataError(
            f"The CIFAR-10 folder {folder} is incomplete: {', '.join(missing)} "
            f"{'is' if len(missing) == 1 else 'are'} missing (it should hold {', '.join(EXPECTED_FILES)}). "
            f"Re-extract cifar-10-python.tar.gz (from {CIFAR_URL}) and point CAE_DATA_DIR at its "
            f"cifar-10-batches-py folder, or unset CAE_DATA_DIR to let Keras download CIFAR-10."
        )
    return folder


def load_raw(data_dir):
    """Read CIFAR-10 from a folder holding the official python version, in the official order.

    Args:
        data_dir: the ``cifar-10-batches-py`` folder, or a folder that contains it (str or Path).

    Returns:
        ``(x_train, y_train, x_test, y_test, class_names)``: images as uint8 of shape
        (N, 32, 32, 3) (50,000 train and 10,000 test images), labels as int64 of shape (N,), and
        :data:`CLASS_NAMES`.

    Raises:
        CifarDataError: the folder does not exist, is a file, holds no CIFAR-10 files, lacks one of
            them, or one of the files is damaged or not exactly the official one (see
            :data:`OFFICIAL_SHA1`).
    """
    folder = _find_folder(data_dir)
    class_names = _read_label_names(folder / META_FILE)
    batches = {}
    for name in TRAIN_FILES + (TEST_FILE,):
        batches[name] = read_batch(folder / name)
        _check_official(folder / name, *batches[name])
    train = [batches[name] for name in TRAIN_FILES]
    x_test, y_test = batches[TEST_FILE]
    x_train = np.concatenate([images for images, _ in train])
    y_train = np.concatenate([labels for _, labels in train])
    return x_train, y_train, x_test, y_test, class_names


def _download_with_keras():
    """Load CIFAR-10 with Keras (downloading it on first use); same return value as :func:`load_raw`."""
    try:
        import keras

        (x_train, y_train), (x_test, y_test) = keras.datasets.cifar10.load_data()
    except Exception as exc:
        raise CifarDataError(
            f"Downloading CIFAR-10 with keras.datasets.cifar10.load_data() failed "
            f"({type(exc).__name__}: {exc}). Check the internet connection; if an earlier download was "
            f"interrupted, delete the cached files ~/.keras/datasets/cifar-10-batches-py* and try again. Or download "
            f"cifar-10-python.tar.gz from {CIFAR_URL}, unpack it (tar -xzf cifar-10-python.tar.gz) "
            f"and set CAE_DATA_DIR to the cifar-10-batches-py folder it creates."
        ) from exc
    if x_train.shape[1:] == (3, 32, 32):  # Keras configured for channels_first: back to NHWC
        x_train, x_test = x_train.transpose(0, 2, 3, 1), x_test.transpose(0, 2, 3, 1)
    return (
        x_train,
        y_train.reshape(-1).astype(np.int64),
        x_test,
        y_test.reshape(-1).astype(np.int64),
        CLASS_NAMES,
    )


# --------------------------------------------------------------------------- the course's splits


def _to_float(images: np.ndarray) -> np.ndarray:
    """uint8 images -> float32 images in [0, 1]."""
    out = images.astype(np.float32)
    out /= 255.0
    return out


def to_uint8(images) -> np.ndarray:
    """Images in [0, 1] (any float dtype; uint8 passes through) -> uint8 images, ``rint(255 x)`` clipped to 0-255.

    CIFAR-10's float images are exact multiples of 1/255, so this gives back the original bytes.
    """
    images = np.asarray(images)
    if images.dtype == np.uint8:
        return images
    return np.clip(np.rint(images * 255.0), 0, 255).astype(np.uint8)


def load_cifar10(val_size=5000, seed=None, data_dir=None, quick=None) -> CIFAR10:
    """Load CIFAR-10 and split it into training, validation and test sets.

    The validation set is drawn at random (seeded) from the 50,000 training images, never from the
    test set; the training set keeps the rest. The test set is the official one, in official order.

    Args:
        val_size: number of training images moved to the validation set (0 < val_size < 50,000).
        seed: seed of the split; None uses ``CAE_SEED`` (default 42).
        data_dir: folder holding ``cifar-10-batches-py`` (see :func:`load_raw`); None uses
            ``CAE_DATA_DIR`` and, when that is unset too, downloads CIFAR-10 with Keras.
        quick: keep only the first ``config.QUICK_SIZES`` images of each split; None uses ``CAE_QUICK``.

    Returns:
        A :class:`CIFAR10` with float32 images in [0, 1] of shape (N, 32, 32, 3) and int64 labels.

    Raises:
        ValueError: ``val_size`` or ``seed`` is out of range.
        CifarDataError: the data cannot be read or downloaded.
    """
    config.check_number("val_size", val_size, 1, N_TRAIN - 1, whole=True, error=ValueError)
    settings = config.get_settings()
    seed = settings.seed if seed is None else seed
    config.check_number("seed", seed, 0, config.MAX_SEED, whole=True, error=ValueError)
    quick = settings.quick if quick is None else quick
    data_dir = settings.data_dir if data_dir is None else data_dir

    if data_dir is None:
        x_train, y_train, x_test, y_test, class_names = _download_with_keras()
        source = "keras download"
    else:
        x_train, y_train, x_test, y_test, class_names = load_raw(data_dir)
        source = "CAE_DATA_DIR"

    order = np.random.default_rng(seed).permutation(len(x_train))
    val_idx, train_idx = order[:val_size], order[val_size:]
    test_idx = np.arange(len(x_test))
    if quick:  # small subsets: plain slices of each split
        sizes = config.QUICK_SIZES
        train_idx, val_idx, test_idx = (
            train_idx[: sizes["train"]],
            val_idx[: sizes["val"]],
            test_idx[: sizes["test"]],
        )

    # Convert to float32 only now, after subsetting: the full float32 training set is 600 MB.
    return CIFAR10(
        x_train=_to_float(x_train[train_idx]),
        y_train=y_train[train_idx],
        x_val=_to_float(x_train[val_idx]),
        y_val=y_train[val_idx],
        x_test=_to_float(x_test[test_idx]),
        y_test=y_test[test_idx],
        class_names=tuple(class_names),
        source=source,
    )


def make_dataset(x, batch_size=128, shuffle=True, seed=None, drop_remainder=False, flip=False):
    """Build the ``tf.data`` pipeline that feeds an autoencoder: each element is ``(images, images)``.

    Args:
        x: float images of shape (N, H, W, C), for example ``CIFAR10.x_train``.
        batch_size: images per batch (at least 1).
        shuffle: shuffle the whole array, in a new order every epoch (use False for validation and test).
        seed: shuffling seed; None uses ``CAE_SEED`` (default 42).
        drop_remainder: drop the last batch when it is smaller than ``batch_size``.
        flip: mirror each image left to right with probability 1/2, anew every epoch (augmentation:
            a mirrored photograph is as likely as the original).

    Returns:
        A ``tf.data.Dataset`` of ``(inputs, targets)`` pairs, both of shape (batch, H, W, C): the
        target of an autoencoder is its input.

    Raises:
        ValueError: ``x`` is not a non-empty 4-D float array, or ``batch_size`` is not a whole number >= 1.
    """
    x = np.asarray(x)
    if x.ndim != 4 or len(x) == 0 or not np.issubdtype(x.dtype, np.floating):
        raise ValueError(
            f"x must be a non-empty 4-D float array of images (N, H, W, C), got {_describe(x)}; "
            f"use the float32 images of load_cifar10()."
        )
    if (
        isinstance(batch_size, bool)
        or not isinstance(batch_size, (int, np.integer))
        or batch_size < 1
    ):
        raise ValueError(f"batch_size must be a whole number >= 1, got {batch_size!r}.")
    import tensorflow as tf

    seed = config.get_settings().seed if seed is None else seed
    ds = tf.data.Dataset.from_tensor_slices(x)
    if shuffle:
        ds = ds.shuffle(buffer_size=len(x), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(int(batch_size), drop_remainder=drop_remainder)
    if flip:
        ds = ds.map(lambda images: tf.image.random_flip_left_right(images, seed=seed))
    # Pair each batch with itself only after batching, so the images are held in memory once.
    ds = ds.map(lambda images: (images, images))
    return ds.prefetch(tf.data.AUTOTUNE)


def channel_stats(*arrays) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and (population) standard deviation over one or more image arrays.

    Args:
        arrays: image arrays (N, H, W, C), for example ``cifar.x_train, cifar.x_val`` to get the
            statistics of the whole official training set. They are treated as one set.

    Returns:
        ``(mean, std)``: two float64 arrays of C values, on the scale of the input (multiply by 255
        for the 0-255 scale of the published CIFAR-10 values).

    The sums are accumulated in float64, chunk by chunk: a float32 sum over tens of millions of
    pixels loses whole units of precision.
    """
    if not arrays:
        raise ValueError("channel_stats needs at least one image array.")
    channels = {np.shape(a)[-1] for a in arrays}
    if len(channels) != 1 or any(np.ndim(a) != 4 for a in arrays):
        raise ValueError(
            f"expected image arrays (N, H, W, C) with the same C, got shapes {[np.shape(a) for a in arrays]}."
        )
    total = np.zeros(channels.pop())
    squares = np.zeros_like(total)
    count = 0
    for a in arrays:
        for start in range(0, len(a), 5000):
            chunk = np.asarray(a[start : start + 5000], dtype=np.float64).reshape(-1, total.size)
            total += chunk.sum(axis=0)
            squares += (chunk**2).sum(axis=0)
            count += len(chunk)
    if count == 0:
        raise ValueError("channel_stats got only empty arrays.")
    mean = total / count
    return mean, np.sqrt(np.maximum(squares / count - mean**2, 0.0))
