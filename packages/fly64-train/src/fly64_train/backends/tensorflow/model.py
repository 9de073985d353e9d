"""PtychoPINN in Keras 3: the torch model's architecture, defaults and physics.

Same :class:`~fly64_train.model.ModelConfig`, same layers in the same order
(3x3 convolutions, BatchNorm with torch's epsilon and momentum, ReLU, 2x average
pooling, nearest 2x upsampling, two decoders), same heads (amplitude
``amplitude_max * sigmoid``, phase ``pi * tanh``), same flat start and input crop.
Tensors keep torch's ``(B, C, N, N)`` layout at the model's boundary; inside the
CNN Keras's channels-last layout is used, which is why a weight transfer from
torch transposes convolution kernels (OIHW -> HWIO) and nothing else.

:class:`ObjectCNN` (``diffraction_to_obj``) and :class:`ForwardModel`
(``forward_model``: the fixed probe and intensity scale) are separate Keras models,
the same split as the torch bundle's two state dicts.
"""

from __future__ import annotations

import math

import keras
import numpy as np
import tensorflow as tf

from fly64_train.backends.tensorflow import physics
from fly64_train.training.model_config import ModelConfig

if keras.backend.backend() != "tensorflow":
    raise ImportError(f"the TensorFlow backend needs Keras's tensorflow backend, but KERAS_BACKEND is "
                      f"{keras.backend.backend()!r}")

#: torch.nn.BatchNorm2d's defaults (Keras's own are 1e-3 and 0.99): same normalisation, same running stats.
BN_EPSILON = 1e-5
BN_MOMENTUM = 0.9


def _conv_block(cout: int, count: int, norm: bool, name: str) -> list[keras.layers.Layer]:
    layers: list[keras.layers.Layer] = []
    for i in range(count):
        layers.append(keras.layers.Conv2D(cout, 3, padding="same", use_bias=not norm, name=f"{name}_conv{i}"))
        if norm:
            layers.append(keras.layers.BatchNormalization(epsilon=BN_EPSILON, momentum=BN_MOMENTUM,
                                                          name=f"{name}_bn{i}"))
        layers.append(keras.layers.ReLU(name=f"{name}_relu{i}"))
    return layers


def _decoder_levels(cfg: ModelConfig) -> list[int]:
    """Width level of each upsampling stage, coarse to fine (as in the torch model)."""
    return [min(level, cfg.depth - 1) for level in reversed(range(cfg.upsamplings))]


def _decoder(cfg: ModelConfig, name: str) -> keras.Sequential:
    layers: list[keras.layers.Layer] = []
    for stage, level in enumerate(_decoder_levels(cfg)):
        layers += _conv_block(cfg.base_width * 2**level, cfg.convs_per_level, cfg.batch_norm, f"up{stage}")
        layers.append(keras.layers.UpSampling2D(2, interpolation="nearest", name=f"up{stage}_upsample"))
    layers += _conv_block(cfg.base_width, 1, cfg.batch_norm, "out")
    # Flat start: the head starts at zero, so the untrained model predicts the flat object.
    init = "zeros" if cfg.flat_start else "glorot_uniform"
    layers.append(keras.layers.Conv2D(cfg.cnn_channels, 3, padding="same", kernel_initializer=init,
                                      bias_initializer="zeros", name="head"))
    return keras.Sequential(layers, name=name)


class ObjectCNN(keras.Model):
    """Diffraction amplitudes ``(B, C, N, N)`` -> complex64 object patches ``(B, C, N, N)``.

    Glorot-uniform kernels and zero biases (Keras's defaults, the original PtychoPINN's init).
    ``input_scale`` is a non-trainable weight, saved with the kernels.
    """

    def __init__(self, cfg: ModelConfig, input_scale: float = 1.0) -> None:
        super().__init__(name="diffraction_to_obj")
        cfg.check()
        self.cfg = cfg
        enc: list[keras.layers.Layer] = []
        for level in range(cfg.depth):
            enc += _conv_block(cfg.base_width * 2**level, cfg.convs_per_level, cfg.batch_norm, f"down{level}")
            enc.append(keras.layers.AveragePooling2D(2, name=f"down{level}_pool"))
        self.encoder = keras.Sequential(enc, name="encoder")
        self.amplitude = _decoder(cfg, "amplitude")
        self.phase = _decoder(cfg, "phase")
        self.input_scale = self.add_weight(shape=(), initializer=keras.initializers.Constant(float(input_scale)),
                                           trainable=False, name="input_scale")
        n = cfg.patch_size
        self(np.zeros((1, cfg.group_size, n, n), np.float32))  # builds every layer's weights

    def call(self, diffraction: tf.Tensor, training: bool = False) -> tf.Tensor:
        cfg = self.cfg
        n, m = cfg.patch_size, cfg.input_size
        lo = (n - m) // 2
        x = tf.convert_to_tensor(diffraction, tf.float32)[:, :, lo:lo + m, lo:lo + m] * self.input_scale
        channels = x.shape[1]
        if cfg.shared_encoder:
            x = tf.reshape(x, (-1, m, m, 1))  # (B*C, m, m, 1), batch-major as torch's reshape
        else:
            x = tf.transpose(x, (0, 2, 3, 1))
        features = self.encoder(x, training=training)
        amp = cfg.amplitude_max * tf.sigmoid(self.amplitude(features, training=training))
        phase = math.pi * tf.tanh(self.phase(features, training=training))
        side = amp.shape[1]
        if cfg.shared_encoder:
            amp, phase = (tf.reshape(t, (-1, channels, side, side)) for t in (amp, phase))
        else:
            amp, phase = (tf.transpose(t, (0, 3, 1, 2)) for t in (amp, phase))
        obj = tf.complex(amp * tf.cos(phase), amp * tf.sin(phase))
        pad = (n - side) // 2
        return tf.pad(obj, ((0, 0), (0, 0), (pad, pad), (pad, pad)))


class ForwardModel(keras.Model):
    """The fixed physics' parameters: the probe (real and imaginary planes) and the intensity scale."""

    def __init__(self, cfg: ModelConfig, probe: np.ndarray, intensity_scale: float) -> None:
        super().__init__(name="forward_model")
        probe = np.asarray(probe)
        n = cfg.patch_size
        if probe.shape != (n, n):
            raise ValueError(f"probe shape {probe.shape} does not match patch_size {n}")
        if not float((np.abs(probe) ** 2).sum()) > 0:
            raise ValueError("probe is identically zero")
        self.cfg = cfg
        planes = np.stack([probe.real, probe.imag]).astype(np.float32)
        self.probe_planes = self.add_weight(shape=planes.shape, initializer=keras.initializers.Constant(planes),
                                            trainable=False, name="probe")
        self.intensity_scale = self.add_weight(shape=(), trainable=False, name="intensity_scale",
                                               initializer=keras.initializers.Constant(float(intensity_scale)))
        self.support = tf.constant(physics.support_mask(n, cfg.support_fraction))
        self.built = True

    @property
    def probe(self) -> tf.Tensor:
        return tf.complex(self.probe_planes[0], self.probe_planes[1])

    def merge_weights(self) -> tf.Tensor:
        """(N, N) weights of the gs2 merge (see :attr:`ModelConfig.merge_weights`)."""
        if self.cfg.merge_weights == "support":
            return self.support
        intensity = tf.abs(self.probe) ** 2
        return self.support * intensity / tf.reduce_max(intensity)

    def call(self, obj_patches: tf.Tensor, offsets: tf.Tensor | None = None) -> tf.Tensor:
        """Predicted far-field intensity of object patches (merging gs2 groups)."""
        return physics.forward_intensity(obj_patches, self.probe, offsets, self.merge_weights())


class PtychoPINN(keras.Model):
    """The CNN plus the fixed physics, trained self-supervised with a custom train step.

    Parameters
    ----------
    cfg : ModelConfig
    probe : (N, N) complex array
    intensity_scale : float
        The dataset's recorded ``s`` (counts = s^2 * intensity), fixed.
    count_split : float, optional
        Photon-split training (see :func:`.physics.split_counts`). Training steps draw a
        fresh split from the stateless seed ``(split_seed, step)``; validation uses
        ``(physics.VAL_SPLIT_SEED, first group index of the batch)``, the same every epoch.
    split_seed : int
        The training seed, so two runs with the same seed split the photons identically.
    """

    def __init__(self, cfg: ModelConfig, probe: np.ndarray, intensity_scale: float,
                 count_split: float | None = None, split_seed: int = 0) -> None:
        super().__init__(name="ptychopinn")
        n = cfg.patch_size
        power = float((np.abs(np.asarray(probe)) ** 2).sum())
        self.forward_model = ForwardModel(cfg, probe, intensity_scale)
        # |F(P*O)| per pixel is about sqrt(sum |P|^2) / N for |O| ~ 1: scale inputs to O(1).
        self.cnn = ObjectCNN(cfg, input_scale=n / math.sqrt(power))
        self.cfg = cfg
        self.count_split = count_split
        self.split_seed = int(split_seed)
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.built = True

    @property
    def metrics(self) -> list[keras.metrics.Metric]:
        return [self.loss_tracker]

    def predict_object(self, diffraction: np.ndarray | tf.Tensor, offsets: np.ndarray | None = None) -> np.ndarray:
        """Object patches ``(B, C, N, N)`` complex64 (numpy), zero outside the central support.

        ``offsets`` is accepted for the backend-neutral interface; the CNN does not use it.
        """
        return self.cnn(diffraction, training=False).numpy()

    def forward_intensity(self, obj_patches: tf.Tensor, offsets: tf.Tensor | None = None) -> tf.Tensor:
        return self.forward_model(obj_patches, offsets)

    def call(self, diffraction: tf.Tensor, offsets: tf.Tensor | None = None, training: bool = False) -> tf.Tensor:
        """Diffraction -> predicted intensity: the self-supervised autoencoder path."""
        return self.forward_intensity(self.cnn(diffraction, training=training), offsets)

    def loss_of(self, diffraction: tf.Tensor, offsets: tf.Tensor | None, seed: tf.Tensor | None,
                training: bool = False) -> tf.Tensor:
        """Poisson NLL in counts; with ``count_split`` the CNN sees one part, the loss scores the other."""
        scale = self.forward_model.intensity_scale
        offsets = offsets if diffraction.shape[1] > 1 else None
        if self.count_split is None:
            return physics.poisson_nll(self(diffraction, offsets, training=training), diffraction, scale)
        seen, held_out = physics.split_counts(diffraction, scale, self.count_split, seed)
        rate_scale = (1.0 - self.count_split) * scale**2
        return physics.poisson_nll_counts(self(seen, offsets, training=training), held_out, rate_scale)

    def train_step(self, data: tuple[tf.Tensor, tf.Tensor, tf.Tensor]) -> dict[str, tf.Tensor]:
        diffraction, offsets, _ = data
        seed = tf.stack([tf.constant(self.split_seed, tf.int64), tf.cast(self.optimizer.iterations, tf.int64)])
        with tf.GradientTape() as tape:
            loss = self.loss_of(diffraction, offsets, seed, training=True)
        variables = self.cnn.trainable_variables
        self.optimizer.apply(tape.gradient(loss, variables), variables)
        self.loss_tracker.update_state(loss, sample_weight=tf.cast(tf.shape(diffraction)[0], tf.float32))
        return {"loss": self.loss_tracker.result()}

    def test_step(self, data: tuple[tf.Tensor, tf.Tensor, tf.Tensor]) -> dict[str, tf.Tensor]:
        diffraction, offsets, index = data
        seed = tf.stack([tf.constant(physics.VAL_SPLIT_SEED, tf.int64), tf.cast(index[0], tf.int64)])
        loss = self.loss_of(diffraction, offsets, seed, training=False)
        self.loss_tracker.update_state(loss, sample_weight=tf.cast(tf.shape(diffraction)[0], tf.float32))
        return {"loss": self.loss_tracker.result()}
