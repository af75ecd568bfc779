"""Build a Keras multi-task model from a ModelSpec: one general builder for every preset."""

from __future__ import annotations

import keras

from mtl_core.control.modelspec import ModelSpec
from mtl_core.control.tasks import TaskSpec
from mtl_core.engine.models.layers import Rescale, Standardize, StopGradient
from mtl_core.engine.models.plan import apply_plan

_DEFAULT_ACTIVATION = {"multiclass": "softmax", "binary": "sigmoid", "regression": "linear"}


def build_model(spec: ModelSpec, tasks: dict[str, TaskSpec], mean=0.0, std=1.0,
                target_scale: dict[str, tuple[float, float]] | None = None, *,
                conditioned: bool = False) -> keras.Model:
    """A functional model whose outputs are a dict keyed by task name.

    Output layers are float32 even under a mixed-precision policy, so losses and the
    probabilities users see are computed at full precision. ``target_scale`` maps a linear
    regression head to the (mean, std) of its training targets: the head then ends in a
    Rescale layer and answers in the target's own unit.

    ``conditioned``: a loss-conditioned model (models/conditioned.py): a second input ``loss_weights`` (one
    weight per head, in the spec's head order) drives FiLM layers on the shared backbone features and on
    each head's features; the model's inputs are then the dict ``{"input": x, "loss_weights": lambda}``.
    """
    target_scale = target_scale or {}
    inputs = keras.Input(shape=spec.input_shape, name="input")
    # taps[k]: the backbone after its first k layers, where a head with branch_at=k reads it
    taps = [Standardize(mean, std, name="standardize")(inputs)]
    for i, step in enumerate(spec.backbone):
        taps.append(apply_plan(taps[-1], (step,), "backbone", start=i))
    shared = taps[-1]
    z = None
    if conditioned:
        from mtl_core.engine.models.conditioned import FILM_SCALE, FiLM, conditioning

        lam = keras.Input(shape=(len(spec.heads),), name="loss_weights")
        z = conditioning(lam)
        shared = FiLM(FILM_SCALE, name="backbone_film")([shared, z])
    features: dict = {}
    outputs: dict = {}
    for head in spec.build_order():
        task = tasks[head.task]
        x = shared if head.branch_at is None else taps[head.branch_at]
        x = StopGradient(name=f"{head.task}_stop_gradient")(x) if head.detach else x
        x = apply_plan(x, head.trunk, f"{head.task}_trunk")
        if head.inputs_from:
            taken = [features[s] if head.link_gradient else StopGradient(name=f"{head.task}_link_stop_{s}")(features[s])
                     for s in head.inputs_from]
            x = keras.layers.Concatenate(name=f"{head.task}_link")([x, *taken])
        x = apply_plan(x, head.hidden, f"{head.task}_hidden")
        if z is not None:
            x = FiLM(FILM_SCALE, name=f"{head.task}_film")([x, z])
        features[head.task] = x
        if head.dropout:
            x = keras.layers.Dropout(head.dropout, name=f"{head.task}_dropout")(x)
        units = task.head_kind.units(task)
        activation = head.output_activation or _DEFAULT_ACTIVATION[task.kind]
        if head.task in target_scale and activation == "linear":
            out = keras.layers.Dense(units, dtype="float32", name=f"{head.task}_standardised")(x)
            mean_t, std_t = target_scale[head.task]
            outputs[head.task] = Rescale(std_t, mean_t, dtype="float32", name=head.task)(out)
        else:
            outputs[head.task] = keras.layers.Dense(units, activation=activation, dtype="float32",
                                                    name=head.task)(x)
    if conditioned:
        return keras.Model({"input": inputs, "loss_weights": lam}, outputs, name="multitask_conditioned")
    return keras.Model(inputs, outputs, name="multitask")
