"""A tiny language for layer stacks, so architectures are data (hashable, saved in cards).

A plan is a sequence of strings, applied in order:

``conv:F[:K]``  Conv2D with F filters, KxK kernel (default 3), same padding, ReLU
``res:F``       residual block: two 3x3 convs + a 1x1 projection on the skip path, ReLU after the add
``bn``          BatchNormalization          ``pool``     MaxPooling2D(2)
``gap``         GlobalAveragePooling2D      ``flatten``  Flatten
``dense:U``     Dense with U units, ReLU    ``dropout:R`` Dropout with rate R
"""

from __future__ import annotations


def _parse(step: str) -> tuple[str, list[str]]:
    op, *args = step.split(":")
    return op, args


def validate_plan(plan: tuple[str, ...] | list[str], where: str) -> None:
    """Raise ValueError for an unknown step, before any layer is built."""
    arity = {"conv": (1, 2), "res": (1, 1), "bn": (0, 0), "pool": (0, 0), "gap": (0, 0),
             "flatten": (0, 0), "dense": (1, 1), "dropout": (1, 1)}
    for step in plan:
        op, args = _parse(step)
        if op not in arity or not arity[op][0] <= len(args) <= arity[op][1]:
            raise ValueError(f"{where}: unknown layer step {step!r}")


def apply_plan(x, plan, prefix: str):
    """Apply the plan's layers to tensor ``x``; layer names start with ``prefix``."""
    import keras  # here, not at the top: specs are read without TensorFlow

    for i, step in enumerate(plan):
        op, args = _parse(step)
        name = f"{prefix}_{i}_{op}"
        if op == "conv":
            kernel = int(args[1]) if len(args) > 1 else 3
            x = keras.layers.Conv2D(int(args[0]), kernel, padding="same", activation="relu", name=name)(x)
        elif op == "res":
            filters = int(args[0])
            skip = keras.layers.Conv2D(filters, 1, padding="same", name=f"{name}_skip")(x)
            y = keras.layers.Conv2D(filters, 3, padding="same", activation="relu", name=f"{name}_a")(x)
            y = keras.layers.Conv2D(filters, 3, padding="same", name=f"{name}_b")(y)
            x = keras.layers.Activation("relu", name=f"{name}_out")(keras.layers.Add(name=f"{name}_add")([y, skip]))
        elif op == "bn":
            # momentum 0.9, not Keras's 0.99: on small data sets (a few hundred steps) the running
            # statistics must catch up with the weights or validation sees a different network.
            x = keras.layers.BatchNormalization(momentum=0.9, name=name)(x)
        elif op == "pool":
            x = keras.layers.MaxPooling2D(2, name=name)(x)
        elif op == "gap":
            x = keras.layers.GlobalAveragePooling2D(name=name)(x)
        elif op == "flatten":
            x = keras.layers.Flatten(name=name)(x)
        elif op == "dense":
            x = keras.layers.Dense(int(args[0]), activation="relu", name=name)(x)
        elif op == "dropout":
            x = keras.layers.Dropout(float(args[0]), name=name)(x)
        else:  # validate_plan runs first; this guards direct callers
            raise ValueError(f"{prefix}: unknown layer step {step!r}")
    return x
