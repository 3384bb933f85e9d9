"""Import TensorFlow without its start-up chatter on a machine without a GPU.

TensorFlow's C++ core writes lines about missing CUDA drivers and CPU instructions straight to the
process's standard error while it is imported and while it first looks for devices, before any log
level applies. They are harmless, but learners read them as errors. :func:`import_tensorflow` silences
standard error for those two steps only; Python errors still surface, and later warnings still show.
"""

from __future__ import annotations

import contextlib
import os
import sys


@contextlib.contextmanager
def _silenced_stderr():
    """Send file descriptor 2 to the null device inside the block, and restore it afterwards."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no real file descriptor 2 (an unusual host): change nothing
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def import_tensorflow():
    """Import TensorFlow (once) and list its devices with standard error silenced; return the module."""
    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"]
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # C++ info and warning lines after start-up
    with _silenced_stderr():
        import tensorflow as tf

        tf.config.list_physical_devices()  # the first device search prints the cuInit line
    # TensorFlow's Python logger warns when a function is traced again for a new input shape: expected
    # when predicting on arrays of several sizes, and only noise for a learner.
    tf.get_logger().setLevel("ERROR")
    return tf
