"""The learned codec's Keras model: transforms, factorized entropy model, loss, and integer tables.

After Ballé, Laparra and Simoncelli, "End-to-end optimized image compression" (ICLR 2017) and
tensorflow/compression's ``models/bls2017.py``, in plain Keras 3::

    analysis  x (H, W, 3) in [0, 1]
              -> Conv 5x5/2, N -> GDN -> Conv 5x5/2, N -> GDN -> Conv 5x5/2, M  -> y (H/8, W/8, M)
    synthesis y_hat -> ConvT 5x5/2, N -> IGDN -> ConvT 5x5/2, N -> IGDN -> ConvT 5x5/2, 3 -> x_hat

(N = ``channels``, M = ``latent_channels``; 5x5 kernels, "same" padding). Three stride-2 stages suit
CIFAR-10: a 32 x 32 image becomes a 4 x 4 x M latent, each latent position covering an 8 x 8 block
(bls2017's four stages, /16, would leave 2 x 2 latents on CIFAR, dominated by edge effects). The
model is fully convolutional: any image works once padded to a multiple of :data:`STRIDE` (8).
**GDN** is the simplified generalized divisive normalization of Johnston et al. (2019),
``x_i / (beta_i + sum_j gamma_ij |x_j|)``, and **IGDN** its inverse, which multiplies.

**Entropy model** (:class:`FactorizedPrior`): one learned univariate density per latent channel,
Ballé et al. 2018's non-parametric "deep factorized" model: a per-channel monotonic MLP (1 -> 3 -> 3 ->
3 -> 1, softplus-positive matrices, tanh gates) gives the logit of a cumulative distribution ``F``;
the probability of a latent value ``y`` under unit-width quantization (the density convolved with a
unit uniform) is ``F(y + 1/2) - F(y - 1/2)``.

**Training** (:class:`CodecModel`): additive uniform noise ``U(-1/2, 1/2)`` stands in for rounding;
the loss is ``bpp + lmbda * MSE``, where ``bpp`` is the entropy model's estimate of the bits per pixel
and **MSE is measured on the 0-255 pixel scale** (as in bls2017, so ``lmbda = 0.01`` is its default
operating point; larger ``lmbda`` buys quality with rate). Metrics: ``loss``, ``bpp``, ``mse`` (0-255
scale) and ``psnr`` (dB, per image, averaged). Validation rounds the latent instead of adding noise.
The entropy model and the rate are always float32; the transforms follow the dtype policy, so
``mixed_float16`` on a GPU works.

**Tables** (:func:`compute_tables`, :func:`update_tables`): after training, each channel's density is
turned once into an integer probability table (see :mod:`cae_utils.codec.coder`) which is stored in
the model's weights (non-trainable int32 variables of the prior), so a saved ``.weights.h5`` carries
exactly the integers the decoder uses.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import layers, ops

from .coder import PRECISION, Tables, integer_pmf

__all__ = [
    "STRIDE",
    "GDN",
    "FactorizedPrior",
    "CodecModel",
    "build_codec_model",
    "compute_tables",
    "update_tables",
    "tables_of",
]

#: Total downsampling of the analysis transform: images are padded to multiples of it.
STRIDE = 8
#: Probability mass left to the escape symbol by the table support (split between both tails).
TAIL_MASS = 2.0**-10
_LIKELIHOOD_BOUND = 1e-9
_PACKAGE = "cae_utils.codec"


@keras.saving.register_keras_serializable(package=_PACKAGE)
class GDN(layers.Layer):
    """Simplified GDN (Johnston et al. 2019): ``y_i = x_i / (beta_i + sum_j gamma_ij |x_j|)``.

    With ``inverse=True`` it multiplies instead (IGDN, for the synthesis transform). ``beta`` starts at
    1 and ``gamma`` at 0.1 times the identity; both are kept non-negative (``beta`` >= 1e-6).
    """

    def __init__(self, inverse: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.inverse = bool(inverse)

    def build(self, input_shape):
        c = input_shape[-1]
        self.beta = self.add_weight(
            shape=(c,), initializer="ones", name="beta", constraint=_AtLeast(1e-6)
        )
        self.gamma = self.add_weight(
            shape=(c, c),
            initializer=keras.initializers.Identity(0.1),
            name="gamma",
            constraint=keras.constraints.NonNeg(),
        )

    def call(self, x):
        norm = ops.matmul(ops.abs(x), self.gamma) + self.beta
        return x * norm if self.inverse else x / norm

    def get_config(self):
        return {**super().get_config(), "inverse": self.inverse}


@keras.saving.register_keras_serializable(package=_PACKAGE)
class _AtLeast(keras.constraints.Constraint):
    """Weight constraint: clip values below ``minimum``."""

    def __init__(self, minimum: float):
        self.minimum = float(minimum)

    def __call__(self, w):
        return ops.maximum(w, ops.cast(self.minimum, w.dtype))

    def get_config(self):
        return {"minimum": self.minimum}


def _logits_cdf(x, matrices, biases, factors):
    """The deep factorized model's cumulative logits.

    Args:
        x: values (C, 1, N): N points for each of the C channels.
        matrices, biases, factors: the per-channel MLP parameters (as :class:`FactorizedPrior` holds them),
            already cast to ``x``'s dtype.

    Returns:
        (C, 1, N): ``logit(F_c(x))``, increasing in x.
    """
    for i, (matrix, bias) in enumerate(zip(matrices, biases)):
        x = ops.matmul(ops.softplus(matrix), x) + bias
        if i < len(factors):
            x = x + ops.tanh(factors[i]) * ops.tanh(x)
    return x


@keras.saving.register_keras_serializable(package=_PACKAGE)
class FactorizedPrior(layers.Layer):
    """A learned density per latent channel (Ballé et al. 2018, "deep factorized"), always in float32.

    Input of :meth:`likelihood` and :meth:`bits`: latents (B, h, w, C). The layer also holds the integer
    tables (``table_pmf`` (C, table_size), ``table_length``, ``table_lower``, ``table_offset``), zero
    until :func:`update_tables` fills them.
    """

    def __init__(
        self, filters=(3, 3, 3), init_scale: float = 10.0, table_size: int = 256, **kwargs
    ):
        kwargs["dtype"] = "float32"  # the rate is always computed in float32
        super().__init__(**kwargs)
        self.filters = tuple(int(f) for f in filters)
        self.init_scale = float(init_scale)
        self.table_size = int(table_size)

    def build(self, input_shape):
        c = int(input_shape[-1])
        sizes = (1, *self.filters, 1)
        scale = self.init_scale ** (1.0 / (len(self.filters) + 1))
        self.matrices, self.biases, self.factors = [], [], []
        for i in range(len(sizes) - 1):
            init = float(np.log(np.expm1(1.0 / scale / sizes[i + 1])))
            matrix_init, bias_init = (
                keras.initializers.Constant(init),
                keras.initializers.RandomUniform(-0.5, 0.5),
            )
            matrix_shape = (c, sizes[i + 1], sizes[i])
            self.matrices.append(
                self.add_weight(shape=matrix_shape, initializer=matrix_init, name=f"matrix{i}")
            )
            self.biases.append(
                self.add_weight(shape=(c, sizes[i + 1], 1), initializer=bias_init, name=f"bias{i}")
            )
            if i < len(self.filters):
                self.factors.append(
                    self.add_weight(
                        shape=(c, sizes[i + 1], 1), initializer="zeros", name=f"factor{i}"
                    )
                )
        table = {"trainable": False, "initializer": "zeros"}
        self.table_pmf = self.add_weight(
            shape=(c, self.table_size), dtype="int32", name="table_pmf", **table
        )
        self.table_length = self.add_weight(shape=(c,), dtype="int32", name="table_length", **table)
        self.table_lower = self.add_weight(shape=(c,), dtype="int32", name="table_lower", **table)
        self.table_offset = self.add_weight(
            shape=(c,), dtype="float32", name="table_offset", **table
        )

    def logits_cdf(self, x, dtype="float32"):
        """``logit F(x)`` for x (C, 1, N), computed in ``dtype`` (float64 for the tables)."""
        params = [
            [ops.cast(v, dtype) for v in group]
            for group in (self.matrices, self.biases, self.factors)
        ]
        return _logits_cdf(ops.cast(x, dtype), *params)

    def likelihood(self, y):
        """P(y) = F(y + 1/2) - F(y - 1/2) per element of y (B, h, w, C), at least 1e-9; float32."""
        y = ops.cast(y, "float32")
        shape = ops.shape(y)
        flat = ops.reshape(ops.transpose(y, (3, 0, 1, 2)), (shape[3], 1, -1))
        upper, lower = self.logits_cdf(flat + 0.5), self.logits_cdf(flat - 0.5)
        # Subtract in the tail where the difference is accurate: flip the sign when both logits are positive.
        sign = ops.stop_gradient(-ops.sign(upper + lower))
        p = ops.abs(ops.sigmoid(sign * upper) - ops.sigmoid(sign * lower))
        p = ops.transpose(ops.reshape(p, (shape[3], shape[0], shape[1], shape[2])), (1, 2, 3, 0))
        return ops.maximum(p, _LIKELIHOOD_BOUND)

    def bits(self, y):
        """Estimated bits of each latent in y (B, h, w, C): ``-sum log2 P(y)`` per image, shape (B,); float32."""
        return ops.sum(-ops.log(self.likelihood(y)), axis=(1, 2, 3)) / np.log(2.0)

    def get_config(self):
        extra = {
            "filters": self.filters,
            "init_scale": self.init_scale,
            "table_size": self.table_size,
        }
        return {**super().get_config(), **extra}


def _analysis(channels: int, latent_channels: int, dtype) -> keras.Sequential:
    return keras.Sequential(
        [
            keras.Input((None, None, 3)),
            layers.Conv2D(channels, 5, strides=2, padding="same", name="conv1", dtype=dtype),
            GDN(name="gdn1", dtype=dtype),
            layers.Conv2D(channels, 5, strides=2, padding="same", name="conv2", dtype=dtype),
            GDN(name="gdn2", dtype=dtype),
            layers.Conv2D(latent_channels, 5, strides=2, padding="same", name="conv3", dtype=dtype),
        ],
        name="analysis",
    )


def _synthesis(channels: int, latent_channels: int, dtype) -> keras.Sequential:
    return keras.Sequential(
        [
            keras.Input((None, None, latent_channels)),
            layers.Conv2DTranspose(
                channels, 5, strides=2, padding="same", name="deconv1", dtype=dtype
            ),
            GDN(inverse=True, name="igdn1", dtype=dtype),
            layers.Conv2DTranspose(
                channels, 5, strides=2, padding="same", name="deconv2", dtype=dtype
            ),
            GDN(inverse=True, name="igdn2", dtype=dtype),
            layers.Conv2DTranspose(3, 5, strides=2, padding="same", name="deconv3", dtype=dtype),
        ],
        name="synthesis",
    )


@keras.saving.register_keras_serializable(package=_PACKAGE)
class CodecModel(keras.Model):
    """The trainable codec: ``analysis``, ``synthesis`` and ``prior`` (see the module docstring).

    ``model(x, training=...)`` takes images (B, H, W, 3) in [0, 1], H and W multiples of :data:`STRIDE`,
    and returns ``(x_hat, bits)``: the float32 reconstruction and the estimated bits of each image (B,),
    with noisy latents when training and rounded ones otherwise. ``fit`` expects ``(images, images)``
    batches, as :func:`cae_utils.data.make_dataset` yields them.
    """

    def __init__(
        self,
        lmbda=0.01,
        channels=128,
        latent_channels=128,
        table_size=256,
        seed=None,
        layer_dtype=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.lmbda = float(lmbda)
        self.channels, self.latent_channels, self.table_size = (
            int(channels),
            int(latent_channels),
            int(table_size),
        )
        self.seed, self.layer_dtype = seed, layer_dtype
        self.analysis = _analysis(self.channels, self.latent_channels, layer_dtype)
        self.synthesis = _synthesis(self.channels, self.latent_channels, layer_dtype)
        self.prior = FactorizedPrior(table_size=self.table_size, name="prior")
        self.prior.build((None, None, None, self.latent_channels))
        self.noise_seed = keras.random.SeedGenerator(seed, name="noise_seed")
        self.bpp_tracker = keras.metrics.Mean(name="bpp")
        self.mse_tracker = keras.metrics.Mean(name="mse")
        self.psnr_tracker = keras.metrics.Mean(name="psnr")

    def build(self, input_shape=None):
        """The layers are built in ``__init__``; this only marks the model built (needed to load checkpoints)."""
        self.built = True

    def call(self, x, training=False):
        y = ops.cast(self.analysis(x), "float32")
        if training:
            y_tilde = y + keras.random.uniform(ops.shape(y), -0.5, 0.5, seed=self.noise_seed)
        else:
            y_tilde = ops.round(y)
        x_hat = ops.cast(self.synthesis(y_tilde), "float32")
        return x_hat, self.prior.bits(y_tilde)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """``bpp + lmbda * MSE`` (0-255 scale) of a batch; also updates the bpp, mse and psnr metrics."""
        from ..metrics import psnr_metric

        target = ops.cast(x if y is None else y, "float32")
        x_hat, bits = y_pred
        shape = ops.shape(target)
        bpp = ops.mean(bits) / ops.cast(shape[1] * shape[2], "float32")
        mse = ops.mean(ops.square(target - x_hat)) * 255.0**2
        self.bpp_tracker.update_state(bpp)
        self.mse_tracker.update_state(mse)
        self.psnr_tracker.update_state(psnr_metric(target, ops.clip(x_hat, 0.0, 1.0)))
        return bpp + self.lmbda * mse

    def get_config(self):
        return {
            **super().get_config(),
            "lmbda": self.lmbda,
            "channels": self.channels,
            "latent_channels": self.latent_channels,
            "table_size": self.table_size,
            "seed": self.seed,
            "layer_dtype": self.layer_dtype,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def build_codec_model(
    lmbda: float = 0.01,
    channels: int = 128,
    latent_channels: int = 128,
    table_size: int = 256,
    seed: int | None = None,
    dtype: str | None = None,
) -> CodecModel:
    """Build an untrained codec model (weights initialised at random).

    Args:
        lmbda: weight of the MSE (0-255 scale) against the bits per pixel in the loss.
        channels: N, the width of the hidden layers of both transforms.
        latent_channels: M, the channels of the latent (H/8 x W/8 x M).
        table_size: the most symbols an integer table may hold (escape included).
        seed: seed of the training noise (the weights follow ``keras.utils.set_random_seed``).
        dtype: the transforms' dtype policy; None follows the global policy (``mixed_float16`` on a GPU
            after :func:`cae_utils.train.configure_device`), ``"float32"`` for compressing files.

    Returns:
        A built, uncompiled :class:`CodecModel`.
    """
    sizes = (
        ("channels", channels, 1),
        ("latent_channels", latent_channels, 1),
        ("table_size", table_size, 3),
    )
    for name, value, least in sizes:
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < least:
            raise ValueError(f"{name} must be a whole number >= {least}, got {value!r}.")
    if not (isinstance(lmbda, (int, float)) and not isinstance(lmbda, bool) and lmbda > 0):
        raise ValueError(f"lmbda must be a positive number such as 0.01, got {lmbda!r}.")
    model = CodecModel(
        lmbda, channels, latent_channels, table_size, seed=seed, layer_dtype=dtype, name="codec"
    )
    model.build((None, None, None, 3))
    return model


# ------------------------------------------------------------------------------------------- tables


def _quantiles(
    prior: FactorizedPrior, probs, bound: float = 2.0**22, steps: int = 64
) -> np.ndarray:
    """Per-channel quantiles of the learned densities, by bisection on the cumulative logits (float64).

    Returns:
        float64 array (C, len(probs)).
    """
    c = int(prior.table_pmf.shape[0])
    probs = np.asarray(probs, dtype=np.float64)
    target = np.log(probs) - np.log1p(-probs)
    low, high = np.full((c, len(probs)), -bound), np.full((c, len(probs)), bound)
    for _ in range(steps):
        mid = (low + high) / 2
        below = ops.convert_to_numpy(prior.logits_cdf(mid[:, None, :], "float64"))[:, 0, :] < target
        low, high = np.where(below, mid, low), np.where(below, high, mid)
    return (low + high) / 2


def compute_tables(prior: FactorizedPrior, tail_mass: float = TAIL_MASS) -> Tables:
    """Turn the learned densities into integer probability tables (done once, at export).

    For each channel: the offset is the density's median (rounded to float32); the support covers the
    integers ``k`` with ``k + offset`` between the ``tail_mass / 2`` and ``1 - tail_mass / 2`` quantiles,
    at most ``table_size - 1`` of them (centred on 0 when wider); each gets
    ``F(k + offset + 1/2) - F(k + offset - 1/2)`` (float64), the escape symbol gets the rest, and
    :func:`cae_utils.codec.coder.integer_pmf` makes integers of them.

    Returns:
        The :class:`cae_utils.codec.coder.Tables`, checked.
    """
    c, t = (int(s) for s in prior.table_pmf.shape)
    q = _quantiles(prior, [tail_mass / 2, 0.5, 1 - tail_mass / 2])
    offset = q[:, 1].astype(np.float32)
    lower = np.floor(q[:, 0] - offset).astype(np.int64)
    upper = np.ceil(q[:, 2] - offset).astype(np.int64)
    half = (t - 1) // 2
    wide = upper - lower + 1 > t - 1
    lower[wide], upper[wide] = -half, t - 2 - half
    lower, upper = np.clip(lower, -(2**22), 2**22), np.clip(upper, -(2**22), 2**22)
    n = upper - lower + 1  # symbols besides the escape, 1 ... t-1
    k = lower[:, None] + np.minimum(np.arange(t - 1)[None, :], (n - 1)[:, None])
    centers = (k + offset.astype(np.float64)[:, None])[:, None, :]
    up = ops.convert_to_numpy(prior.logits_cdf(centers + 0.5, "float64"))[:, 0, :]
    down = ops.convert_to_numpy(prior.logits_cdf(centers - 0.5, "float64"))[:, 0, :]
    sign = -np.sign(up + down)  # subtract in the tail where the difference is accurate
    # exp overflows to inf far in the tails: the sigmoid is 0 there
    with np.errstate(over="ignore"):
        p = np.abs(1 / (1 + np.exp(-sign * up)) - 1 / (1 + np.exp(-sign * down)))
    pmf = np.zeros((c, t), dtype=np.int32)
    for ch in range(c):
        probs = p[ch, : n[ch]]
        escape = max(0.0, 1.0 - float(probs.sum()))
        pmf[ch, : n[ch] + 1] = integer_pmf(np.append(probs, escape), PRECISION)
    return Tables(pmf, n + 1, lower, offset).check()


def update_tables(model: CodecModel, tail_mass: float = TAIL_MASS) -> Tables:
    """Compute ``model``'s integer tables (:func:`compute_tables`) and store them in its prior's variables."""
    tables = compute_tables(model.prior, tail_mass)
    prior = model.prior
    prior.table_pmf.assign(tables.pmf)
    prior.table_length.assign(tables.length)
    prior.table_lower.assign(tables.lower)
    prior.table_offset.assign(tables.offset)
    return tables


def tables_of(model: CodecModel) -> Tables:
    """The integer tables stored in ``model`` (unchecked: all zero before :func:`update_tables`)."""
    prior = model.prior
    variables = (prior.table_pmf, prior.table_length, prior.table_lower, prior.table_offset)
    return Tables(*(np.array(v.numpy()) for v in variables))
