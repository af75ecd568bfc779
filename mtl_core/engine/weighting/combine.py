"""The common part of the methods that combine the heads' gradients on the shared backbone (MGDA, CAGrad,
Nash-MTL, Aligned-MTL, IMTL): each one is a rule ``combine(G) -> alpha`` from the heads' gradients G (K, P) on
the shared weights to weights alpha (K,), and the shared weights are updated along ``sum_i alpha_i g_i``.

- The shared weights are the backbone's (``backbone*`` layers). A head's own weights see only its own loss,
  so they get that loss's gradient (statically weighted), as with static weighting.
- A head that does not reach the backbone (behind a stop-gradient, as shapes-3head's intensity) is known
  when the step is traced: it is left out of the rule, which would otherwise read its zero gradient as
  "this task wants no change" (MGDA's minimum-norm point would be 0). Its weight is reported as 1.
- The rules are pure functions of the Gram matrix ``G G^T`` (K x K) where they can be, so they are cheap
  (K small) and checked on hand-computed cases in tests/test_weighting.py.
- The weights reported per epoch (``history.loss_weights``) are static x alpha: the effective weight of
  each head's loss on the shared update.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf
from keras import ops

from mtl_core.engine.weighting import replicas
from mtl_core.engine.weighting.base import Weighting, gradient_or_zeros


def shared_variables(model) -> list:
    """The trainable weights of the shared backbone: the layers named ``backbone*``."""
    found = [v for layer in model.layers if layer.name.startswith("backbone") for v in layer.trainable_weights]
    if not found:
        raise ValueError("this method needs a shared backbone with weights")
    return found


def flat(grads) -> tf.Tensor:
    """A list of gradients -> one float32 vector."""
    return tf.concat([tf.reshape(tf.cast(g, tf.float32), [-1]) for g in grads], axis=0)


def unflat(vector, variables) -> list:
    out, start = [], 0
    for v in variables:
        size = int(np.prod(v.shape))
        out.append(tf.cast(tf.reshape(vector[start:start + size], v.shape), v.dtype))
        start += size
    return out


class GradientCombination(Weighting):
    """Base of the gradient-combining methods: subclasses implement ``combine``."""

    per_task_gradients = True
    scale_to_k = True  # alpha on the simplex is scaled to sum K: the step size of static weights (all 1)

    def bind(self, model) -> None:
        self.shared = shared_variables(model)
        self._shared_ids = {id(v) for v in self.shared}

    def combine(self, grads, static) -> tf.Tensor:
        """(K', P) gradients of the heads that reach the backbone (of their statically weighted losses) and
        those heads' static weights (K',) -> (K',) weights on the rows of ``grads``."""
        raise NotImplementedError

    def __call__(self, losses):
        # the weights are known only once the gradients are (``gradients`` records them)
        losses = ops.cast(losses, "float32")
        self.record(ops.zeros((self.k,)), losses)
        return self.total(losses, self.static)

    def own_gradients(self, tape, losses, variables) -> list:
        """Gradients of the method's own variables (IMTL's loss scales); none by default."""
        return []

    def gradients(self, tape, losses, variables):
        n_own = len(self.trainable_variables)
        model_vars = variables[:len(variables) - n_own]
        shared = [v for v in model_vars if id(v) in self._shared_ids]
        rest = [v for v in model_vars if id(v) not in self._shared_ids]
        # each head's gradient on the shared weights; None everywhere: the head does not reach them
        per_head = [tape.gradient(loss, shared) for loss in losses]
        active = [i for i, g in enumerate(per_head) if any(x is not None for x in g)]
        alpha_full = tf.ones((self.k,), tf.float32)
        shared_grads = [tf.zeros_like(v) for v in shared]
        if active:
            # the rule runs on the global batch's gradients: the same on every replica (replicas.py)
            grads = replicas.mean(tf.stack([
                flat([tf.zeros_like(v) if x is None else x for x, v in zip(per_head[i], shared, strict=True)])
                for i in active]))
            alpha = tf.cast(self.combine(grads, tf.gather(self.static, active)), tf.float32)
            shared_grads = unflat(tf.linalg.matvec(grads, alpha, transpose_a=True), shared)
            alpha_full = tf.tensor_scatter_nd_update(alpha_full, [[i] for i in active], alpha)
        self.record(self.static * alpha_full)
        # a list target: the sum of the gradients (a sum taken here, after the tape, would not be recorded)
        rest_grads = gradient_or_zeros(tape, list(losses), rest)
        by_id = {id(v): g for v, g in zip(shared + rest, shared_grads + rest_grads, strict=True)}
        return [by_id[id(v)] for v in model_vars] + self.own_gradients(tape, losses, variables[len(model_vars):])

    def on_simplex(self, weights):
        """Weights that sum to 1, scaled to sum K (``scale_to_k``)."""
        k = tf.cast(tf.shape(weights)[0], tf.float32)
        return weights * k if self.scale_to_k else weights


def gram(grads) -> tf.Tensor:
    return tf.matmul(grads, grads, transpose_b=True)


def project_to_simplex(v) -> tf.Tensor:
    """The Euclidean projection of v (K,) onto the probability simplex (Duchi et al. 2008, by sorting)."""
    k = tf.shape(v)[0]
    u = tf.sort(v, direction="DESCENDING")
    cumulative = tf.cumsum(u) - 1.0
    j = tf.cast(tf.range(1, k + 1), v.dtype)
    rho = tf.reduce_max(tf.where(u - cumulative / j > 0, tf.range(k), 0))
    theta = cumulative[rho] / tf.cast(rho + 1, v.dtype)
    return tf.maximum(v - theta, 0.0)


def min_norm_weights(m, iterations: int = 100) -> tf.Tensor:
    """argmin over the simplex of |sum_i a_i g_i|^2 = a^T M a (M the Gram matrix), MGDA's subproblem:
    pairwise Frank-Wolfe with exact line search (mass moves from the worst used head to the best one; linear
    convergence on a simplex, Lacoste-Julien & Jaggi 2015); exact for two heads after one step."""
    m = tf.cast(m, tf.float32)
    k = tf.shape(m)[0]
    a0 = tf.ones((k,), tf.float32) / tf.cast(k, tf.float32)

    def step(i, a):
        ma = tf.linalg.matvec(m, a)  # half the gradient of a^T M a
        t = tf.argmin(ma)  # the vertex that most decreases the norm
        s = tf.argmax(tf.where(a > 0, ma, -float("inf")))  # the used vertex that most increases it
        curvature = m[t, t] - 2.0 * m[t, s] + m[s, s]
        gamma = tf.where(curvature > 1e-20, (ma[s] - ma[t]) / tf.maximum(curvature, 1e-20), a[s])
        gamma = tf.clip_by_value(gamma, 0.0, a[s])
        return i + 1, a + gamma * (tf.one_hot(t, k, dtype=tf.float32) - tf.one_hot(s, k, dtype=tf.float32))

    return tf.while_loop(lambda i, a: i < iterations, step, (0, a0))[1]
