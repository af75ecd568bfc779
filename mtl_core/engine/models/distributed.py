"""Keras models that train under ``MultiWorkerMirroredStrategy`` (one training over several machines).

Keras 3.15's TensorFlow trainer has two faults there, both in code that reduces values over the replicas
(tensorflow/tensorflow#72388: "Keras 3 and tf.distribute: Invalid reduction dimension 0 for input with 0
dimensions"; the workaround given there is Keras 2):

- it builds a model from the first distributed batch reduced over the replicas (``_maybe_symbolic_build``),
  which fails for a nested batch ``(x, {head: y})``: "Attempt to convert a value (PerReplica: ...)". The build
  needs only shapes and dtypes, which the first local replica's share of the batch has;
- it averages the step's logs over the workers along axis 0, which a scalar has not. A step here returns
  each log as a vector of one, which that mean turns back into the scalar Keras expects.

:class:`MultiWorker` fixes both, as a mixin placed before the model class: ``MultiWorkerModel`` (static
weights) and ``MultiWorkerAdaptiveModel``. The trainer uses them only when a strategy spans machines.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from mtl_core.engine.weighting.model import AdaptiveModel


def spans_machines(strategy) -> bool:
    """True for a strategy whose replicas are on more than one worker (Ray Train's ``TF_CONFIG``)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None:
        return False
    tasks = resolver.cluster_spec().as_dict()
    return sum(len(tasks.get(job, [])) for job in ("chief", "worker")) > 1


def _as_vectors(logs: dict) -> dict:
    return {name: tf.reshape(value, [1]) for name, value in logs.items()}


class MultiWorker:
    """Mixin for a ``keras.Model`` (sub)class, before it in the bases."""

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        if iterator is not None and data_batch is None:
            for _, _, batches in iterator:  # as Keras does: the first batch of the epoch iterator
                first = next(batches)
                break
            else:
                return super()._maybe_symbolic_build(iterator=iterator)
            strategy = self.distribute_strategy
            data_batch = tf.nest.map_structure(
                lambda v: strategy.experimental_local_results(v)[0]
                if isinstance(v, tf.distribute.DistributedValues) else v, first)
        return super()._maybe_symbolic_build(data_batch=data_batch)

    def train_step(self, data):
        return _as_vectors(super().train_step(data))

    def test_step(self, data):
        return _as_vectors(super().test_step(data))


class MultiWorkerModel(MultiWorker, keras.Model):
    """Static weights: built as ``MultiWorkerModel(model.inputs, model.outputs)``, sharing the model's layers."""


class MultiWorkerAdaptiveModel(MultiWorker, AdaptiveModel):
    """An adaptive weighting method's model (weighting/model.py) over several machines."""
