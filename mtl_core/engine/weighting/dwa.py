"""Dynamic Weight Average (Liu, Johns & Davison 2019), temperature T=2:

    w_i(t) = K exp(r_i(t-1)/T) / sum_j exp(r_j(t-1)/T),   r_i(t-1) = L_i(t-1) / L_i(t-2)

with L_i the mean training loss of head i over an epoch; equal weights (1) for the first two epochs.
The weights change only between epochs (``end_epoch``).
"""

from __future__ import annotations

import math

from keras import ops

from mtl_core.engine.weighting.base import Weighting
from mtl_core.engine.weighting.replicas import state_variable

HELP = "dynamic weight average (Liu et al. 2019): heads whose loss falls slowly count more"


def dwa_weights(history: list[list[float]], temperature: float = 2.0, k: int | None = None) -> list[float]:
    """Weights for the next epoch from the per-epoch mean losses so far (``history[e][i]``)."""
    k = k or (len(history[0]) if history else 0)
    if len(history) < 2:
        return [1.0] * k
    ratios = [a / b if b > 0 else 1.0 for a, b in zip(history[-1], history[-2], strict=True)]
    exps = [math.exp(r / temperature) for r in ratios]
    return [k * e / sum(exps) for e in exps]


class DWA(Weighting):
    name = "dwa"

    def __init__(self, heads, static_weights, seed: int = 0, temperature: float = 2.0, **options):
        super().__init__(heads, static_weights, seed, **options)
        self.temperature = float(temperature)
        self.history: list[list[float]] = []
        self.current = state_variable(ops.ones((self.k,)), name="dwa_weights")

    def adaptive(self, losses):
        return ops.convert_to_tensor(self.current)

    def end_epoch(self) -> dict[str, float]:
        used = super().end_epoch()
        self.history.append([float(x) for x in self.epoch_losses])
        self.current.assign(ops.convert_to_tensor(dwa_weights(self.history, self.temperature, self.k), "float32"))
        return used


METHOD = DWA
