"""Custom layers. Registered with Keras so saved models load with ``safe_mode=True`` (no Lambda)."""

from __future__ import annotations

import keras


@keras.saving.register_keras_serializable(package="mtl_core")
class StopGradient(keras.layers.Layer):
    """Identity on the forward pass; blocks the gradient on the backward pass.

    A head behind this layer learns from the shared features without changing them
    (seed 002, section 4.3.3: the regression head must not pull the backbone).
    """

    blocking = True  # explanations (engine/explain.py) lift it for a moment to see how the head uses the features

    def call(self, inputs):
        return keras.ops.stop_gradient(inputs) if self.blocking else inputs

    def compute_output_shape(self, input_shape):
        return input_shape


@keras.saving.register_keras_serializable(package="mtl_core")
class Standardize(keras.layers.Layer):
    """``(x - mean) / std`` with statistics of the training split, stored in the layer's config.

    Keeping the normalisation inside the saved model means every caller (CLI, app, seed-style
    ``predict_fn``) preprocesses exactly as training did. ``mean``/``std`` are scalars or
    one value per feature/channel (last axis).
    """

    def __init__(self, mean, std, **kwargs):
        super().__init__(**kwargs)
        self.mean = mean
        self.std = std

    def call(self, inputs):
        mean = keras.ops.convert_to_tensor(self.mean, dtype=inputs.dtype)
        std = keras.ops.convert_to_tensor(self.std, dtype=inputs.dtype)
        return (inputs - mean) / std

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "mean": self.mean, "std": self.std}


@keras.saving.register_keras_serializable(package="mtl_core")
class Rescale(keras.layers.Layer):
    """``x * scale + offset``: a regression head computes a standardised value and this layer puts it
    back in the target's unit (USD, AQI...), so the saved model answers in real units while training
    sees well-scaled numbers. ``scale``/``offset`` are the training split's std/mean of the target."""

    def __init__(self, scale: float, offset: float, **kwargs):
        super().__init__(**kwargs)
        self.scale = float(scale)
        self.offset = float(offset)

    def call(self, inputs):
        return inputs * self.scale + self.offset

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "scale": self.scale, "offset": self.offset}


@keras.saving.register_keras_serializable(package="mtl_core")
class ScaledMSE(keras.losses.Loss):
    """Mean squared error in units of the target's training std: a regression loss on the same scale
    as a cross-entropy whatever the target's unit, so loss weights mean the same across presets."""

    def __init__(self, scale: float = 1.0, name: str = "scaled_mse", **kwargs):
        super().__init__(name=name, **kwargs)
        self.scale = float(scale)

    def call(self, y_true, y_pred):
        y_true = keras.ops.cast(keras.ops.reshape(y_true, keras.ops.shape(y_pred)), y_pred.dtype)
        return keras.ops.mean(keras.ops.square((y_pred - y_true) / self.scale), axis=-1)

    def get_config(self):
        return {**super().get_config(), "scale": self.scale}


@keras.saving.register_keras_serializable(package="mtl_core")
class CaffePreprocess(keras.layers.Layer):
    """ResNet50's ImageNet input convention ("caffe" mode of ``keras.applications.resnet50.preprocess_input``)
    from the studio's RGB inputs in [0, 1]: scale to 0..255, reorder RGB -> BGR, subtract the ImageNet
    channel means (B 103.939, G 116.779, R 123.68). A registered layer, not a Lambda, so the model loads
    with ``safe_mode=True``."""

    MEAN_BGR = (103.939, 116.779, 123.68)

    def __init__(self, scale: float = 255.0, **kwargs):
        super().__init__(**kwargs)
        self.scale = float(scale)

    def call(self, inputs):
        bgr = keras.ops.flip(inputs, axis=-1) * keras.ops.cast(self.scale, inputs.dtype)
        return bgr - keras.ops.convert_to_tensor(self.MEAN_BGR, dtype=inputs.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "scale": self.scale}


# The loss-conditioned model's layers live in their own module; importing this one registers them too, so
# every loader that imports mtl_core.engine.models.layers (Predictor, Hub, a user's script) loads conditioned models.
from mtl_core.engine.models import conditioned as _conditioned  # noqa: E402, F401
