"""The one small interface every weighting method implements (cf. LibMTL's ``AbsWeighting``).

A method sees the per-head losses of a training step as one float32 vector (heads in a fixed order)
and returns the total loss to differentiate. Everything runs inside Keras's compiled train step,
so state lives in ``keras.Variable``s created in ``__init__``; ``end_epoch`` runs in Python between
epochs (DWA updates its weights there) and returns the epoch's mean effective weights for the history.
"""

from __future__ import annotations

from keras import ops

from mtl_core.engine.weighting.replicas import state_variable


def gradient_or_zeros(tape, target, sources: list) -> list:
    """``tape.gradient`` with zeros for the sources the target does not reach. (TensorFlow's own
    ``unconnected_gradients="zero"`` fails on Keras 3 variables: it reads their dtype as a TensorFlow one.)"""
    grads = tape.gradient(target, sources)
    return [ops.zeros(v.shape, v.dtype) if g is None else g for g, v in zip(grads, sources, strict=True)]


class Weighting:
    """Base: the weighted sum ``sum_i static_i * adaptive_i * L_i``; subclasses override ``adaptive``
    (weights per step) or ``total`` (a different combined loss, e.g. uncertainty weighting)."""

    name = "base"
    per_task_gradients = False  # True: the method combines per-head gradients itself (``gradients``)
    needs_losses_after_step = False  # True: the train step gives ``after_step`` the batch's losses again (FAMO)

    def __init__(self, heads: list[str], static_weights: dict[str, float], seed: int = 0, **options):
        self.heads = list(heads)
        self.k = len(self.heads)
        self.seed = int(seed)
        self.options = options
        self.static = ops.convert_to_tensor([float(static_weights.get(h, 1.0)) for h in self.heads], "float32")
        # sums of the effective weights and of the raw losses over the steps of the current epoch
        self._weight_sum = state_variable(ops.zeros((self.k,)), name="weight_sum")
        self._loss_sum = state_variable(ops.zeros((self.k,)), name="loss_sum")
        self._steps = state_variable(0.0, name="steps")

    @property
    def trainable_variables(self) -> list:
        """Variables the method learns along with the model (none for most methods)."""
        return []

    def adaptive(self, losses):
        """Adaptive weights (K,) for this step; equal weights by default."""
        return ops.ones((self.k,), "float32")

    def effective(self, losses):
        return self.static * ops.stop_gradient(self.adaptive(losses))

    def total(self, losses, weights):
        """The loss to differentiate, given the step's effective weights."""
        return ops.sum(weights * losses)

    def __call__(self, losses):
        """Per-head losses (K,) -> total loss; records weights and losses for the epoch."""
        losses = ops.cast(losses, "float32")
        weights = self.effective(losses)
        self.record(weights, losses)
        return self.total(losses, weights)

    def record(self, weights, losses=None) -> None:
        """Adds a step's effective weights (and its losses, once per step) to the epoch's sums."""
        self._weight_sum.assign_add(ops.stop_gradient(weights))
        if losses is not None:
            self._loss_sum.assign_add(ops.stop_gradient(losses))
            self._steps.assign_add(1.0)

    def task_losses(self, losses: list) -> list:
        """Per-task-gradient methods: the per-head scalars whose gradients ``gradients`` combines, computed
        inside the train step's tape from the list of per-head losses (not from a stacked tensor: slicing
        one would connect every head to every loss); the statically weighted losses unless a method
        transforms them (IMTL)."""
        return [self.static[i] * loss for i, loss in enumerate(losses)]

    def bind(self, model) -> None:
        """Called once with the model being trained (GradNorm picks its shared weights here)."""

    def after_step(self, losses=None) -> None:
        """Called after each optimizer step (GradNorm renormalises its weights here); ``losses`` are the
        batch's per-head losses after the step when the method asks for them (``needs_losses_after_step``)."""

    def gradients(self, tape, losses, variables):
        """Per-task-gradient methods (PCGrad): the update's gradients from a persistent tape, given the
        heads' statically weighted losses (a list of scalars computed inside the tape)."""
        raise NotImplementedError

    def end_epoch(self) -> dict[str, float]:
        """Mean effective weights of the epoch per head; resets the epoch's sums."""
        steps = max(float(self._steps.numpy()), 1.0)
        weights = self._weight_sum.numpy() / steps
        self.epoch_losses = self._loss_sum.numpy() / steps
        self._weight_sum.assign(ops.zeros((self.k,)))
        self._loss_sum.assign(ops.zeros((self.k,)))
        self._steps.assign(0.0)
        return {h: float(w) for h, w in zip(self.heads, weights, strict=True)}
