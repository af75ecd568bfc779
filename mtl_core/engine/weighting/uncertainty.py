"""Uncertainty weighting (Kendall, Gal & Cipolla 2018): one learned log-variance s_i per head,

    L = sum_i static_i * (exp(-s_i) * L_i + s_i)

the form without the 1/2 factors for every head kind (regression's 1/(2 sigma^2) is folded into s_i;
the paper's classification form has no 1/2). A noisier task earns a larger s_i, hence a smaller weight
exp(-s_i). The s_i start at 0 (weight 1) and are trained by the model's optimizer; they live outside
the functional model, so the saved inference model is the plain architecture.
"""

from __future__ import annotations

from keras import ops

from mtl_core.engine.weighting.base import Weighting
from mtl_core.engine.weighting.replicas import state_variable

HELP = "learned per-head log-variances (Kendall et al. 2018): noisier heads count less"


def uncertainty_loss(losses, log_vars, static=None):
    """sum_i static_i * (exp(-s_i) L_i + s_i); d/ds_i = static_i * (1 - exp(-s_i) L_i)."""
    terms = ops.exp(-log_vars) * losses + log_vars
    return ops.sum(terms if static is None else static * terms)


class Uncertainty(Weighting):
    name = "uncertainty"

    def __init__(self, heads, static_weights, seed: int = 0, **options):
        super().__init__(heads, static_weights, seed, **options)
        self.log_vars = state_variable(ops.zeros((self.k,)), trainable=True, name="log_vars")

    @property
    def trainable_variables(self) -> list:
        return [self.log_vars]

    def adaptive(self, losses):
        return ops.exp(-ops.convert_to_tensor(self.log_vars))

    def total(self, losses, weights):
        return uncertainty_loss(losses, ops.convert_to_tensor(self.log_vars), self.static)


METHOD = Uncertainty
