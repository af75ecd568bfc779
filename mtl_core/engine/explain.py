"""Per-head explanations: where each head looks (images) or which features it leans on (tables).

Images: Grad-CAM (Selvaraju et al. 2017, "Grad-CAM: Visual Explanations from Deep Networks via Gradient-based
Localization") on the shared feature map, the last backbone layer with a spatial output, for each head's
predicted class (its log-probability) or its regression value: where the evidence for that answer is
(positive contributions, as Grad-CAM; for a value, what pushes it up). A head behind a stop-gradient is
explained with the stop-gradient lifted while the gradients are taken (the forward pass is the same), so
detached heads get a map too. A head that branches off before the shared feature map (``branch_at``) does not
read it: it is explained on the last spatial layer of its own trunk instead. The map is upsampled to the
resolution of the image the model saw and scaled to [0, 1] (all zeros when the head's score does not depend on
the features).

Tables: gradient x input per encoded feature, summed in absolute value over a column's one-hot inputs and
its missing-indicator, scaled to [0, 1] per head: ``{column: weight}``.
"""

from __future__ import annotations

from contextlib import contextmanager

import numpy as np

from mtl_core.control.tasks import TaskSpec


def _feature_layer(model) -> str:
    """The shared feature map: the last ``backbone_*`` layer whose output has height, width and channels."""
    name = None
    for layer in model.layers:
        shape = getattr(layer, "output", None)
        if layer.name.startswith("backbone") and shape is not None and len(layer.output.shape) == 4:
            name = layer.name
    if name is None:
        raise ValueError("the model has no spatial shared feature map to explain")
    return name


_SHARED, _OWN = "__shared__", "__own__"  # keys of the feature maps beside the heads' outputs


def _own_feature_layers(model, tasks: list[TaskSpec]) -> dict[str, str]:
    """{head: its trunk's last layer with a spatial output}, for the heads that have one."""
    own = {}
    for layer in model.layers:
        for task in tasks:
            if layer.name.startswith(f"{task.name}_trunk_") and len(layer.output.shape) == 4:
                own[task.name] = layer.name
    return own


def _score(task: TaskSpec, out):
    """The scalar per example whose gradient a head is explained by: log p(predicted class), or the value."""
    import tensorflow as tf

    if task.kind == "regression":
        return tf.reshape(out, (-1,))
    if task.kind == "binary":
        p = tf.clip_by_value(tf.reshape(out, (-1,)), 1e-7, 1 - 1e-7)
        return tf.where(p >= 0.5, tf.math.log(p), tf.math.log(1 - p))
    return tf.math.log(tf.clip_by_value(tf.reduce_max(out, axis=-1), 1e-7, 1.0))


def _scale(maps: np.ndarray) -> np.ndarray:
    """Each map to [0, 1] by its own maximum (a map of zeros stays zeros)."""
    top = maps.reshape(len(maps), -1).max(axis=1).reshape(-1, *([1] * (maps.ndim - 1)))
    return np.where(top > 0, maps / np.where(top > 0, top, 1), 0.0).astype(np.float32)


class Explainer:
    """Explanations for one Keras multi-task model; built once per model (it traces a gradient model)."""

    def __init__(self, model, tasks: list[TaskSpec], input_kind: str):
        import keras

        self.tasks, self.input_kind = tasks, input_kind
        from mtl_core.engine.models.layers import StopGradient

        self._stops = [layer for layer in model.layers if isinstance(layer, StopGradient)]
        if input_kind == "image":
            feature = model.get_layer(_feature_layer(model)).output
            own = {_OWN + h: model.get_layer(name).output for h, name in _own_feature_layers(model, tasks).items()}
            # the feature maps beside the outputs, in one flat dict (Keras takes no empty nested output)
            self._model = keras.Model(model.input, {_SHARED: feature, **own, **model.output})
        else:
            self._model = model

    @contextmanager
    def _gradients_through_stops(self):
        for layer in self._stops:
            layer.blocking = False
        try:
            yield
        finally:
            for layer in self._stops:
                layer.blocking = True

    def images(self, x: np.ndarray, lam: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """{head: (N, H, W) maps in [0, 1]} at the resolution of ``x`` (N, H, W, C)."""
        import tensorflow as tf

        inputs = tf.convert_to_tensor(x, tf.float32)
        feed = {"input": inputs, "loss_weights": tf.convert_to_tensor(lam, tf.float32)} if lam is not None else inputs
        with self._gradients_through_stops(), tf.GradientTape(persistent=True) as tape:
            outputs = self._model(feed, training=False)
            scores = {t.name: _score(t, outputs[t.name]) for t in self.tasks}
        out = {}
        for task in self.tasks:
            fmap = outputs[_SHARED]
            grads = tape.gradient(scores[task.name], fmap)
            if grads is None and _OWN + task.name in outputs:  # a head branched off before the shared map
                fmap = outputs[_OWN + task.name]
                grads = tape.gradient(scores[task.name], fmap)
            if grads is None:
                out[task.name] = np.zeros(x.shape[:3], np.float32)
                continue
            weights = tf.reduce_mean(grads, axis=(1, 2), keepdims=True)  # one weight per channel
            cam = tf.nn.relu(tf.reduce_sum(weights * fmap, axis=-1, keepdims=True))
            cam = tf.image.resize(cam, x.shape[1:3], method="bilinear")[..., 0]
            out[task.name] = _scale(cam.numpy())
        del tape
        return out

    def table(self, x: np.ndarray, groups: dict[str, list[int]],
              lam: np.ndarray | None = None) -> dict[str, list[dict[str, float]]]:
        """{head: one {column: weight in [0, 1]} per row}: |gradient x input| summed over a column's inputs."""
        import tensorflow as tf

        inputs = tf.convert_to_tensor(x, tf.float32)
        out = {}
        for task in self.tasks:
            with self._gradients_through_stops(), tf.GradientTape() as tape:
                tape.watch(inputs)
                feed = {"input": inputs, "loss_weights": tf.convert_to_tensor(lam, tf.float32)} \
                    if lam is not None else inputs
                score = _score(task, self._model(feed, training=False)[task.name])
            contribution = np.abs((tape.gradient(score, inputs) * inputs).numpy())
            per_column = np.stack([contribution[:, idx].sum(axis=1) for idx in groups.values()], axis=1)
            scaled = _scale(per_column)
            out[task.name] = [dict(zip(groups, map(float, row), strict=True)) for row in scaled]
        return out
