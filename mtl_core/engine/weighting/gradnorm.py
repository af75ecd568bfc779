"""GradNorm (Chen et al. 2018): learned loss weights w_i that pull each head's gradient norm on the last
shared weights W, G_i = |grad_W w_i L_i|, toward mean(G) * r_i^alpha, where r_i = (L_i/L_i(0)) / mean_j(L_j/L_j(0))
is the head's relative inverse training rate (alpha configurable, default 1.5: ``extra={"weighting_options":
{"alpha": a}}`` in the config). The weights follow the gradient of sum_i |G_i - target_i| (target held
constant, as in the paper), taken with the method's own Adam, and are renormalised to sum to K after
every step. Since G_i = w_i |grad_W L_i|, that gradient needs no second-order derivative.
"""

from __future__ import annotations

import tensorflow as tf

from mtl_core.engine.weighting import replicas
from mtl_core.engine.weighting.base import Weighting, gradient_or_zeros
from mtl_core.engine.weighting.replicas import state_variable

HELP = "weights that balance the heads' gradient norms on the last shared layer (Chen et al. 2018)"
OPTIONS = {"alpha": (1.5, 0.0, 10.0, "GradNorm's restoring-force strength alpha")}  # name: (default, low, high, help)


def gradnorm_weight_gradient(weights, norms, ratios, alpha: float):
    """d/dw_i of sum_i |w_i n_i - mean(w n) r_i^alpha| with the target held constant: sign(.) * n_i."""
    g = weights * norms
    target = tf.reduce_mean(g) * ratios ** alpha
    return tf.sign(g - target) * norms


class GradNorm(Weighting):
    name = "gradnorm"
    per_task_gradients = True

    def __init__(self, heads, static_weights, seed: int = 0, alpha: float = OPTIONS["alpha"][0], **options):
        super().__init__(heads, static_weights, seed, **options)
        self.alpha = float(alpha)
        self.w = state_variable(tf.ones((self.k,)), trainable=True, name="gradnorm_weights")
        self.initial = state_variable(tf.zeros((self.k,)), name="initial_losses")
        self.started = state_variable(False, dtype="bool", name="started")
        self.shared = None

    @property
    def trainable_variables(self) -> list:
        return [self.w]

    def bind(self, model) -> None:
        """The last shared weights: the last kernel of the backbone."""
        kernels = [v for layer in model.layers if layer.name.startswith("backbone")
                   for v in layer.trainable_weights if len(v.shape) >= 2]
        if not kernels:
            raise ValueError("GradNorm needs a shared backbone with weights")
        self.shared = kernels[-1]

    def adaptive(self, losses):
        return tf.convert_to_tensor(self.w)

    def gradients(self, tape, losses, variables):
        model_vars, w = variables[:-1], variables[-1]
        weights = tf.convert_to_tensor(self.w)
        # sum_i w_i grad L_i from one gradient per head: TensorFlow's gradient of the w-weighted sum (or of the
        # list with w as output_gradients) came out 1 to 7% off between one device and two replicas of a
        # MirroredStrategy once a head besides shape's reached the backbone (tests/test_replicas.py); per head
        # it agrees within float32 noise. The cost: K backward passes instead of one.
        grads = None
        for i, loss in enumerate(losses):
            head = gradient_or_zeros(tape, loss, model_vars)
            grads = [weights[i] * g for g in head] if grads is None else [t + weights[i] * g
                                                                          for t, g in zip(grads, head, strict=True)]
        stacked = tf.stack(losses)
        # the norms of the global batch's gradients, the same on every replica (replicas.py)
        per_head = tf.stack([tf.reshape(tf.cast(gradient_or_zeros(tape, loss, [self.shared])[0], tf.float32), [-1])
                             for loss in losses])
        norms = tf.norm(replicas.mean(per_head), axis=1)
        initial = tf.where(self.started, tf.convert_to_tensor(self.initial), stacked)
        self.initial.assign(initial)
        self.started.assign(True)
        rate = stacked / tf.maximum(initial, 1e-12)
        ratios = rate / tf.maximum(tf.reduce_mean(rate), 1e-12)
        return [*grads, tf.cast(gradnorm_weight_gradient(weights, norms, ratios, self.alpha), w.dtype)]

    def after_step(self, losses=None) -> None:
        w = tf.maximum(tf.convert_to_tensor(self.w), 1e-3)
        self.w.assign(float(self.k) * w / tf.reduce_sum(w))


METHOD = GradNorm
