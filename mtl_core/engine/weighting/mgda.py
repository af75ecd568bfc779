"""MGDA (Sener & Koltun 2018, "Multi-Task Learning as Multi-Objective Optimization", NeurIPS; after Désidéri's
multiple-gradient descent): the shared weights move along the minimum-norm point of the convex hull of the
heads' gradients, min over the simplex of |sum_i a_i g_i|, a direction that decreases every head's loss
unless the point is 0 (Pareto-stationary). Solved with Frank-Wolfe on the Gram matrix (combine.py). The
gradients here are on the shared parameters (the paper's MGDA, not its MGDA-UB bound on the representation);
they are the statically weighted ones, so static weights shift the point. The weights are scaled to sum K.
"""

from __future__ import annotations

from mtl_core.engine.weighting.combine import GradientCombination, gram, min_norm_weights

HELP = "steps along the minimum-norm combination of the heads' gradients (Sener & Koltun 2018)"


class MGDA(GradientCombination):
    name = "mgda"

    def combine(self, grads, static):
        return self.on_simplex(min_norm_weights(gram(grads)))


METHOD = MGDA
