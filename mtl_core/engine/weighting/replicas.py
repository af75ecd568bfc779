"""What a weighting method needs to run under a ``tf.distribute`` strategy (``MirroredStrategy`` over several
GPUs, ``MultiWorkerMirroredStrategy`` over several machines) and train the model it would train on one device.

Keras runs the train step once per replica, on the replica's share of the global batch, and the optimizer
*sums* the replicas' gradients (its all-reduce). Keras's own losses are divided by the number of replicas R,
so that sum is the gradient of the global batch's mean loss. A method whose update is not linear in the
losses breaks that unless it is told:

- its state (weights, learned scales, loss sums) must be the same on every replica: every method sees the
  **global** per-head losses (their mean over the replicas) as values, while gradients still flow through
  each replica's own losses (:func:`global_value`); its variables update with the first replica's value
  (:func:`state_variable`), which every replica has computed alike;
- a rule on the heads' gradients (PCGrad, MGDA, CAGrad, Nash-MTL, Aligned-MTL, IMTL, GradNorm's norms) must
  see the global per-head gradients, not one replica's: they are averaged first (:func:`mean`);
- whatever the method hands the optimizer is divided by R (:func:`count`), since the optimizer sums.

On one device every function here is the identity, so single-device training is unchanged.
"""

from __future__ import annotations

import keras
import tensorflow as tf


def count() -> int:
    """The number of replicas training in sync (1 on one device)."""
    return int(tf.distribute.get_strategy().num_replicas_in_sync)


def mean(value):
    """The mean of a tensor (or a list of tensors) over the replicas; the value itself on one replica or
    outside a replica context."""
    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return value
    return context.all_reduce(tf.distribute.ReduceOp.MEAN, value)


def global_value(local):
    """A tensor whose value is ``local``'s mean over the replicas and whose gradient is ``local``'s own."""
    if count() == 1:
        return local
    return local + tf.stop_gradient(mean(local) - local)


def state_variable(value, name: str, dtype=None, trainable: bool = False) -> keras.Variable:
    """A method's variable, mirrored under a strategy and updated with the first replica's value: every
    replica computes the same update from global values, and a mirrored variable updated in a replica context
    needs an aggregation (TensorFlow refuses the default "none" there)."""
    return keras.Variable(value, dtype=dtype, trainable=trainable, name=name, aggregation="only_first_replica")
