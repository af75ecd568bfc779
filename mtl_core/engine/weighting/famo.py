"""FAMO (Liu, Liu, Stone & Liu 2023, "FAMO: Fast Adaptive Multitask Optimization", NeurIPS): weights that
make every head's loss fall at the same *rate*, at O(1) cost per step: no per-head gradients, one more
forward pass. With task logits xi, z = softmax(xi), the step minimises sum_i z_i log L_i, i.e. weights

    w_i = K * (z_i / L_i) / sum_j (z_j / L_j)        (scaled to sum K),

and after the step xi moves by the measured decrease of the log losses on the same batch,
delta_i = log L_i(before) - log L_i(after):  xi <- Adam(xi; J_softmax(xi)^T delta + gamma xi), which
lowers the weight of heads that improved more than the weighted average and raises the others'.
gamma is the paper's weight decay on xi; the losses after the step come from the batch again, in
training mode as before it.
"""

from __future__ import annotations

import keras
from keras import ops

from mtl_core.engine.weighting import replicas
from mtl_core.engine.weighting.base import Weighting
from mtl_core.engine.weighting.replicas import state_variable

HELP = "weights that make all heads' losses fall at one rate, at O(1) cost per step (Liu et al. 2023)"
OPTIONS = {"lr": (0.025, 0.0001, 1.0, "FAMO's learning rate for its task logits"),
           "gamma": (0.01, 0.0, 1.0, "FAMO's weight decay on its task logits")}
EPSILON = 1e-8


def famo_weights(logits, losses):
    """(K,) weights summing to K from task logits and the step's losses."""
    z = ops.softmax(logits)
    inverse = z / (ops.maximum(losses, 0.0) + EPSILON)
    return ops.cast(ops.shape(z)[0], "float32") * inverse / ops.sum(inverse)


def famo_logit_gradient(logits, before, after, gamma: float):
    """J_softmax(xi)^T delta + gamma xi, with delta = log L(before) - log L(after)."""
    z = ops.softmax(logits)
    delta = ops.log(ops.maximum(before, 0.0) + EPSILON) - ops.log(ops.maximum(after, 0.0) + EPSILON)
    return z * (delta - ops.sum(z * delta)) + gamma * logits


class FAMO(Weighting):
    name = "famo"
    needs_losses_after_step = True

    def __init__(self, heads, static_weights, seed: int = 0, lr: float = OPTIONS["lr"][0],
                 gamma: float = OPTIONS["gamma"][0], **options):
        super().__init__(heads, static_weights, seed, **options)
        self.gamma = float(gamma)
        self.logits = state_variable(ops.zeros((self.k,)), name="famo_logits")
        self.before = state_variable(ops.zeros((self.k,)), name="famo_losses_before")
        self.optimizer = keras.optimizers.Adam(learning_rate=float(lr))
        self.optimizer.build([self.logits])

    def adaptive(self, losses):
        self.before.assign(ops.stop_gradient(losses))
        return famo_weights(ops.convert_to_tensor(self.logits), losses)

    def after_step(self, losses=None) -> None:
        grad = famo_logit_gradient(ops.convert_to_tensor(self.logits), ops.convert_to_tensor(self.before),
                                   ops.stop_gradient(losses), self.gamma)
        # every replica computes the same gradient from global losses, and the optimizer sums the replicas'
        self.optimizer.apply_gradients([(grad / replicas.count(), self.logits)])


METHOD = FAMO
