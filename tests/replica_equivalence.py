"""Run as a script (tests/test_replicas.py does): each weighting method trains shapes-3head's network for
8 steps twice, from the same weights on the same batches: on one device, and as two replicas of a
``MirroredStrategy`` over two logical CPUs (each replica gets half of every batch). Dropout and batch
normalisation are off: nothing random, no per-replica batch statistics. The model's optimizer is SGD, whose
step is linear in the gradient (Adam's near-sign step would magnify float noise on tiny gradients).

Prints one JSON object: per method, the two runs' difference relative to how far the weights moved
(``weights``), and the relative difference of the method's own state (learned variables, per-epoch sums).

Two logical CPUs must be set up before TensorFlow starts, hence a process of its own.

    python tests/replica_equivalence.py [METHOD ...]
"""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402

tf.config.set_logical_device_configuration(tf.config.list_physical_devices("CPU")[0],
                                           [tf.config.LogicalDeviceConfiguration()] * 2)

import keras  # noqa: E402
import numpy as np  # noqa: E402

from mtl_core.control import methods as catalogue  # noqa: E402
from mtl_core.control.modelspec import ModelSpec  # noqa: E402
from mtl_core.control.presets import get_preset  # noqa: E402
from mtl_core.engine.models.builder import build_model  # noqa: E402
from mtl_core.engine.weighting import get_method  # noqa: E402
from mtl_core.engine.weighting.model import AdaptiveModel  # noqa: E402

PRESET = get_preset("shapes-3head")
STATIC = {"shape": 1.0, "orientation": 1.5, "intensity": 0.3}


def spec_and_tasks():
    spec_dict = PRESET.model.to_dict()
    spec_dict["heads"] = [{**h, "dropout": 0.0} for h in spec_dict["heads"]]
    # batch normalisation uses each replica's own batch statistics (SyncBatchNormalization would not): off
    spec_dict["backbone"] = [layer for layer in spec_dict["backbone"] if layer != "bn"]
    spec = ModelSpec.from_dict(spec_dict)
    return spec, {h.task: PRESET.task(h.task) for h in spec.heads}


def train(method_name: str, strategy, data):
    """(the network's weights, the method's state) after 2 epochs of 4 batches of 16, from seed 0's weights."""
    spec, tasks = spec_and_tasks()
    losses = {h: t.loss for h, t in tasks.items()}
    with strategy.scope():
        keras.utils.set_random_seed(0)
        net = build_model(spec, tasks)
        method = get_method("static" if method_name == "keras" else method_name)(list(tasks), STATIC, seed=7)
        if method_name == "keras":  # Keras's own train step
            model = net
        else:
            model = AdaptiveModel(net.input, dict(zip(net.output_names, net.outputs, strict=True)))
            model.setup(method, losses, lambda: keras.optimizers.Adam(1e-2))
        model.compile(optimizer=keras.optimizers.SGD(0.05), loss=losses, loss_weights=STATIC)
    model.fit(data.x, {h: data.y[h] for h in tasks}, batch_size=16, epochs=2, shuffle=False, verbose=0)
    state = [np.asarray(v.numpy(), np.float64).ravel() for v in method.trainable_variables]
    state += [np.asarray(method._weight_sum.numpy(), np.float64), np.asarray(method._loss_sum.numpy(), np.float64)]
    return net.get_weights(), state


def relative_difference(a: list, b: list, start: list | None = None) -> float:
    """|a - b| / |a - start| over all arrays (|a - b| / |a| without a start)."""
    flat = [np.concatenate([np.ravel(np.asarray(v, np.float64)) for v in arrays]) if arrays else np.zeros(0)
            for arrays in (a, b, start if start is not None else [np.zeros_like(np.asarray(v)) for v in a])]
    scale = np.linalg.norm(flat[0] - flat[2])
    return float(np.linalg.norm(flat[0] - flat[1]) / scale) if scale > 0 else float(np.linalg.norm(flat[0] - flat[1]))


def main(names: list[str]) -> None:
    data = PRESET.load_data({"source": "generated", "n": 64, "noise": 0.3, "seed": 0})
    two = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    assert two.num_replicas_in_sync == 2
    spec, tasks = spec_and_tasks()
    keras.utils.set_random_seed(0)
    initial = build_model(spec, tasks).get_weights()
    report = {}
    for name in names:
        single, single_state = train(name, tf.distribute.get_strategy(), data)
        mirrored, mirrored_state = train(name, two, data)
        report[name] = {"weights": relative_difference(single, mirrored, initial),
                        "state": relative_difference(single_state, mirrored_state)}
    print(json.dumps(report))


if __name__ == "__main__":
    main(sys.argv[1:] or [m for m in catalogue.names() if m != "static"])
