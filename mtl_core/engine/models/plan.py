"""Building a layer plan (the language is documented in :mod:`mtl_core.control.plan`) into Keras layers,
with ImageNet weights for ``app:`` steps when they can be had."""

from __future__ import annotations

import contextlib
import re
import socket
import sys
import time

import keras

from mtl_core.control.plan import APPLICATIONS, parse_step
from mtl_core.engine.models.layers import CaffePreprocess

DOWNLOAD_TIMEOUT_S = 60  # a silently dropped connection must not hang a build forever
RETRY_AFTER_S = 600  # a failed download is not tried again for this long (the trainer builds every spec twice)
_WEIGHT_FAILURES: dict[tuple, tuple[float, str]] = {}  # (network, input shape) -> (when, why ImageNet weights failed)


def apply_plan(x, plan, prefix: str, start: int = 0):
    """Apply the plan's layers to tensor ``x``; layer names start with ``prefix`` and count from ``start``."""

    for i, step in enumerate(plan, start):
        op, args = parse_step(step)
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
        elif op == "resize":
            x = keras.layers.Resizing(int(args[0]), int(args[0]), interpolation="bilinear", name=name)(x)
        elif op == "app":
            x = _application(x, args[0], float(args[1]) if len(args) > 1 else None, name)
        else:  # validate_plan runs first; this guards direct callers
            raise ValueError(f"{prefix}: unknown layer step {step!r}")
    return x


def _application(x, network: str, freeze: float | None, name: str):
    """Preprocessing + a keras.applications network on ``x`` (values in [0, 1]); see the module docstring."""

    info = APPLICATIONS[network]
    shape = tuple(int(d) for d in x.shape[1:])
    if network == "mobilenetv2":
        x = keras.layers.Rescaling(2.0, -1.0, name=f"{name}_preprocess")(x)  # [0, 1] -> [-1, 1]
        build = keras.applications.MobileNetV2
    else:
        x = CaffePreprocess(name=f"{name}_preprocess")(x)  # [0, 1] RGB -> 0..255 BGR minus ImageNet mean
        build = keras.applications.ResNet50
    net, weights = _with_imagenet_weights(build, network, shape, name)
    n_frozen = int(round((info["freeze"] if freeze is None else freeze) * len(net.layers)))
    for layer in net.layers[:n_frozen]:
        layer.trainable = False
    net._mtl_pretrained = {"layer": name, "network": network, "weights": weights,
                           "frozen_layers": n_frozen, "layers": len(net.layers), "input_shape": list(shape)}
    return net(x)


def _with_imagenet_weights(build, network: str, shape: tuple, name: str):
    """``build(weights="imagenet")`` if possible, else ``weights=None``: (model, what was used).

    A failure is remembered for RETRY_AFTER_S, so the second build of the same spec (the trainer builds a
    float32 copy to save) does not try the network again. Keras prints its download
    progress on stdout, which ``--json`` reserves: it goes to stderr.
    """
    info = APPLICATIONS[network]
    key = (network, shape)
    when, failure = _WEIGHT_FAILURES.get(key, (0.0, ""))
    if time.monotonic() - when > RETRY_AFTER_S or not failure:
        if not any((_keras_models_dir() / f).is_file() for f in _weight_files(network, shape)):
            print(f"downloading {info['title']} ImageNet weights (~{info['mb']} MB, once; cached in "
                  f"{_keras_models_dir()})", file=sys.stderr, flush=True)
        previous = socket.getdefaulttimeout()
        socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)
        try:
            with contextlib.redirect_stdout(sys.stderr):
                net = build(include_top=False, weights="imagenet", input_shape=shape, pooling=None, name=name)
            return net, "imagenet"
        except Exception as exc:  # noqa: BLE001  (offline, HTTP, hash or file errors: all mean "no weights")
            failure = re.sub(r"https?://\S*/", "", (str(exc).splitlines() or [type(exc).__name__])[0])[:200]
            _WEIGHT_FAILURES[key] = (time.monotonic(), failure)
            print(f"{info['title']}: ImageNet weights unavailable ({failure}); training from random "
                  f"initialisation", file=sys.stderr, flush=True)
        finally:
            socket.setdefaulttimeout(previous)
    net = build(include_top=False, weights=None, input_shape=shape, pooling=None, name=name)
    return net, f"none (ImageNet weights unavailable: {failure})"


def _keras_models_dir():
    """Where keras.utils.get_file caches application weights: $KERAS_HOME/models, else ~/.keras/models."""
    import os
    from pathlib import Path

    return Path(os.environ.get("KERAS_HOME") or Path.home() / ".keras").expanduser() / "models"


def _weight_files(network: str, shape: tuple) -> list[str]:
    """The file names keras.applications caches the no-top ImageNet weights under."""
    if network == "resnet50":
        return ["resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5"]
    rows = shape[0] if shape[0] in (96, 128, 160, 192, 224) else 224
    return [f"mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_{rows}_no_top.h5"]


def pretrained_report(model) -> list[dict]:
    """What every ``app`` step of ``model`` (a model just built by the builder) was initialised with:
    ``[{"layer", "network", "weights": "imagenet" | "none (...)", "frozen_layers", "layers", "input_shape"}]``;
    empty when the model has no pretrained backbone. Read it before saving: a loaded model has lost it
    (the card keeps it)."""
    found = []
    for layer in getattr(model, "layers", []):
        record = getattr(layer, "_mtl_pretrained", None)
        if record is not None:
            found.append(dict(record))
    return found
