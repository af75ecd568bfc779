"""Training through an adaptive weighting method: a functional-model subclass whose ``train_step``
computes the per-head losses (the compiled loss functions, with the same per-head sample weights)
and differentiates the method's total instead of Keras's fixed weighted sum.

Metrics and validation stay Keras's: the train logs' per-head losses and the validation loss are the
compiled ones (static weights), so ``val_loss`` is comparable across methods; ``loss`` in the train
logs is the method's total. Method variables (e.g. log-variances) are not layers of the model, so
``get_weights`` / ``set_weights`` see only the architecture's weights.

Under a distribution strategy the step is replica-aware (replicas.py): the method sees the global batch's
per-head losses, and what it hands the optimizers is divided by the number of replicas, so N replicas train
the model one device would.
"""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import ops

from mtl_core.engine.weighting import replicas
from mtl_core.engine.weighting.base import Weighting


def as_loss(loss):
    """A Keras Loss object from a loss object or a loss function's name, as ``compile`` would make: "mse" is
    the function ``mean_squared_error``, whose Loss class is ``MeanSquaredError`` (Keras's public naming)."""
    if isinstance(loss, keras.losses.Loss):
        return loss
    function = keras.losses.get(loss)
    class_name = "".join(part.title() for part in function.__name__.split("_"))
    return keras.losses.get({"class_name": class_name, "config": {"name": str(loss)}})


class AdaptiveModel(keras.Model):
    """Built as ``AdaptiveModel(model.inputs, model.outputs)``: it shares the functional model's layers."""

    def setup(self, method: Weighting, losses: dict, optimizer_factory) -> None:
        self._method = method
        self._head_losses = {h: as_loss(losses[h]) for h in method.heads}
        self._method_optimizer = optimizer_factory() if method.trainable_variables else None
        if self._method_optimizer is not None:  # its slots made now, in the strategy's scope, not in the step
            self._method_optimizer.build(method.trainable_variables)
        method.bind(self)

    def train_step(self, data):
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        method = self._method
        n_replicas = replicas.count()
        with tf.GradientTape(persistent=method.per_task_gradients) as tape:
            y_pred = self(x, training=True)
            # Keras's own loss: keeps its per-head loss trackers exactly as in static training
            self._compute_loss(x=x, y=y, y_pred=y_pred, sample_weight=sample_weight, training=True)
            head_losses = self._per_head_losses(x, y, sample_weight, y_pred)
            per_head = ops.stack(head_losses)
            loss = method(per_head)
            # per-task-gradient methods differentiate each head's (weighted) loss: sliced inside the tape
            parts = method.task_losses(head_losses) if method.per_task_gradients else None
            loss = loss + ops.cast(sum(self.losses), "float32") if self.losses else loss
            self._loss_tracker.update_state(loss, sample_weight=tf.shape(tf.nest.flatten(x)[0])[0])
            scaled = self.optimizer.scale_loss(loss / n_replicas)
        extra = method.trainable_variables
        variables = list(self.trainable_weights) + extra
        if method.per_task_gradients:
            grads = method.gradients(tape, parts, variables)
            grads = grads if n_replicas == 1 else [g / n_replicas for g in grads]
        else:
            grads = tape.gradient(scaled, variables)
        n = len(self.trainable_weights)
        self.optimizer.apply_gradients(zip(grads[:n], self.trainable_weights, strict=True))
        if extra:
            self._method_optimizer.apply_gradients(zip(grads[n:], extra, strict=True))
        method.after_step(ops.stack(self._per_head_losses(x, y, sample_weight)) if method.needs_losses_after_step
                          else None)
        return self.compute_metrics(x, y, y_pred, sample_weight=sample_weight)

    def _per_head_losses(self, x, y, sample_weight, y_pred=None):
        """The per-head float32 losses of a batch, a list in the method's head order (a new forward pass when
        no predictions are given: FAMO's loss after the step, on the same batch and in the same training mode)."""
        y_pred = self(x, training=True) if y_pred is None else y_pred
        # a Keras loss comes divided by the number of replicas: the method sees the replicas' mean of the loss
        n_replicas = replicas.count()
        return [replicas.global_value(n_replicas * ops.cast(
                    self._head_losses[h](y[h], y_pred[h], sample_weight=None if sample_weight is None
                                         else sample_weight[h]), "float32"))
                for h in self._method.heads]
