"""Custom layers. Registered with Keras so saved models load with ``safe_mode=True`` (no Lambda)."""

from __future__ import annotations

import keras


@keras.saving.register_keras_serializable(package="mtl_core")
class StopGradient(keras.layers.Layer):
    """Identity on the forward pass; blocks the gradient on the backward pass.

    A head behind this layer learns from the shared features without changing them
    (seed 002, section 4.3.3: the regression head must not pull the backbone).
    """

    def call(self, inputs):
        return keras.ops.stop_gradient(inputs)

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
