"""A tiny language for layer stacks, so architectures are data (hashable, saved in cards).

A plan is a sequence of strings, applied in order:

``conv:F[:K]``  Conv2D with F filters, KxK kernel (default 3), same padding, ReLU
``res:F``       residual block: two 3x3 convs + a 1x1 projection on the skip path, ReLU after the add
``bn``          BatchNormalization          ``pool``     MaxPooling2D(2)
``gap``         GlobalAveragePooling2D      ``flatten``  Flatten
``dense:U``     Dense with U units, ReLU    ``dropout:R`` Dropout with rate R
``resize:H``    Resizing to HxH, bilinear (upscale CIFAR's 32x32 to what a pretrained network needs)
``app:NAME[:FREEZE]``  a keras.applications network (NAME: ``mobilenetv2``, ``resnet50``) without its top,
                preceded by its own input preprocessing from our [0, 1] inputs (MobileNetV2: ``Rescaling(2, -1)``
                to [-1, 1]; ResNet50: :class:`~mtl_core.engine.models.layers.CaffePreprocess`) and followed by nothing
                (the plan adds ``gap`` etc.). FREEZE: the fraction (0..1) of the network's layers, from the
                input on, that are frozen (default: 0.7 for mobilenetv2, 0 for resnet50). ImageNet weights
                when they can be had (cached in ``~/.keras/models`` or downloaded, said on stderr first),
                else random initialisation; :func:`pretrained_report` says which a model got.

The ``app`` step expects inputs in [0, 1], not standardised ones: a spec using it sets
``extra={"standardize": False}`` (see the CIFAR presets).
"""

from __future__ import annotations

# keras.applications networks the ``app`` step builds: constructor, default FREEZE, weights file size.
APPLICATIONS = {
    "mobilenetv2": {"title": "MobileNetV2", "freeze": 0.7, "mb": 9},
    "resnet50": {"title": "ResNet50", "freeze": 0.0, "mb": 95},
}


def parse_step(step: str) -> tuple[str, list[str]]:
    op, *args = step.split(":")
    return op, args


def validate_plan(plan: tuple[str, ...] | list[str], where: str) -> None:
    """Raise ValueError for an unknown step, before any layer is built."""
    arity = {"conv": (1, 2), "res": (1, 1), "bn": (0, 0), "pool": (0, 0), "gap": (0, 0),
             "flatten": (0, 0), "dense": (1, 1), "dropout": (1, 1), "resize": (1, 1), "app": (1, 2)}
    for step in plan:
        op, args = parse_step(step)
        if op not in arity or not arity[op][0] <= len(args) <= arity[op][1]:
            raise ValueError(f"{where}: unknown layer step {step!r}")
        if op == "resize" and not (args[0].isdigit() and 8 <= int(args[0]) <= 1024):
            raise ValueError(f"{where}: {step!r}: the size must be an integer in 8..1024")
        if op == "app":
            if args[0] not in APPLICATIONS:
                raise ValueError(f"{where}: {step!r}: unknown network (known: {', '.join(APPLICATIONS)})")
            if len(args) > 1:
                try:
                    ok = 0.0 <= float(args[1]) <= 1.0
                except ValueError:
                    ok = False
                if not ok:
                    raise ValueError(f"{where}: {step!r}: FREEZE must be a fraction in 0..1")
