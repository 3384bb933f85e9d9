"""The notebooks' set-up cell: seeds, plotting style, versions, the device, and the run settings.

Every notebook starts with ``settings = setup_notebook()``, so all of them begin the same way and a
learner sees at once which TensorFlow runs, on which device, and whether this is a quick run.
"""

from __future__ import annotations

import platform

from . import config


def describe_devices() -> str:
    """Return one line naming the devices TensorFlow will use, with advice when there is no GPU."""
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        names = []
        for gpu in gpus:
            details = tf.config.experimental.get_device_details(gpu)
            names.append(details.get("device_name", gpu.name))
        return f"{len(gpus)} GPU(s): " + ", ".join(names)
    return (
        "CPU only (no GPU found). Everything runs, training is just slower. "
        "On Colab: Runtime > Change runtime type > GPU."
    )


def setup_notebook(quick: bool | None = None, seed: int | None = None) -> config.Settings:
    """Prepare a notebook: choose quick or full mode, seed every random generator, set the plotting style,
    print the environment.

    Args:
        quick: True for quick mode, False for a full run (either sets ``CAE_QUICK`` for this kernel);
            None leaves ``CAE_QUICK`` as it is.
        seed: the seed for Python, NumPy and TensorFlow (through ``keras.utils.set_random_seed``);
            None takes ``CAE_SEED`` (42 by default).

    Returns:
        The run settings (:class:`cae_utils.config.Settings`): ``settings.quick`` tells the notebook
        whether to run on subsets with few epochs.

    Prints the Python, TensorFlow and Keras versions, the device, and the run mode (a line starting with
    ``CAE quick mode`` in quick mode). Silences Keras's warning that ``fit`` ignores ``shuffle`` for a
    ``tf.data`` pipeline.
    """
    import os
    import warnings

    import keras
    import seaborn as sns
    import tensorflow as tf

    if quick is not None:
        os.environ["CAE_QUICK"] = "1" if quick else "0"
    settings = config.get_settings()
    seed = settings.seed if seed is None else seed
    keras.utils.set_random_seed(seed)
    # Keras warns on every fit() of a tf.data pipeline that its default shuffle=True is ignored; the
    # course's pipelines shuffle themselves (data.make_dataset), so the warning says nothing new.
    warnings.filterwarnings("ignore", message="`shuffle=True` was passed", category=UserWarning)
    sns.set_theme(context="notebook", style="whitegrid")
    print(
        f"Python {platform.python_version()} | TensorFlow {tf.__version__} | Keras {keras.__version__} "
        f"| seed {seed}"
    )
    print("Device:", describe_devices())
    config.announce()
    return settings
