"""cae_utils: the helper package of the course "Convolutional Autoencoders for image compression on CIFAR-10".

One module per concern; import the one you need (``from cae_utils import data, models``):

- :mod:`cae_utils.config`  run settings read from the environment (quick mode, epochs, data folder)
- :mod:`cae_utils.data`    CIFAR-10 loading, the train/validation/test split, ``tf.data`` pipelines
- :mod:`cae_utils.models`  the convolutional autoencoder and honest size accounting
- :mod:`cae_utils.plots`   figure helpers shared by the notebooks
- :mod:`cae_utils.notebook` the notebooks' set-up cell (seeds, versions, device)
- :mod:`cae_utils.metrics` MSE, PSNR and SSIM, per image and over a set; bits per pixel of a payload
- :mod:`cae_utils.baselines` what an autoencoder must beat: PCA, JPEG and WebP, with exact sizes
- :mod:`cae_utils.latent`  exploring a latent space: probe, neighbours, interpolation, sampling
- :mod:`cae_utils.train`   training (also ``python -m cae_utils.train``): resumable runs on a CPU or GPUs
- :mod:`cae_utils.pretrained` the shipped models (autoencoders and codecs): listed, described, loaded by name
- :mod:`cae_utils.codec`   the learned image codec (also ``python -m cae_utils.codec``)
- :mod:`cae_utils.maintainer` maintainers' tools: export a training run, the README's table

Importing the package imports TensorFlow once, with its start-up lines about missing GPU drivers silenced.
"""

from ._quiet import import_tensorflow

import_tensorflow()

__version__ = "0.2.0"
