"""cifar10-aqi: seed 000's MobileNetV2 with two heads, CIFAR-10 class (10-way) and a synthetic AQI.

Data: CIFAR-10's 60,000 32x32 colour images (train and test batches together; the studio makes its own
stratified split), downloaded by keras.datasets when the user asks for it (170 MB), or read from the
extracted ``cifar-10-batches-py/`` folder given with ``--data-dir`` (mtl_core.control.data.cifar; nothing is
downloaded then). There is no offline data set: the tests write small files in the real
format (``tests/_cifar_fixtures.py``).

The AQI target is the seed's "synthetic AQI based on the visual features of the image", defined here as
a haze score of the pixels (mtl_core.control.data.aqi): deterministic, 0..500, not a real air-quality measure.

Model (seed 000): the 32x32 input is upscaled to 96x96 (the smallest size with MobileNetV2 ImageNet
weights), MobileNetV2 without its top (ImageNet weights when they can be had; the card says which), its
first 70% of layers frozen, global average pooling shared by both heads; class: Dense 128 -> Dropout ->
softmax; aqi: Dense 128 -> Dense 1, linear. Inputs stay in [0, 1] (no Standardize): the backbone step
applies MobileNetV2's own preprocessing.
"""

from __future__ import annotations

from mtl_core.control.data.aqi import AQI_RANGE, AQI_UNIT
from mtl_core.control.data.cifar import CIFAR10_BYTES, CIFAR10_DIR, CIFAR10_NAMES
from mtl_core.control.modelspec import HeadSpec, ModelSpec
from mtl_core.control.presets.base import Dataset, Preset, TrainDefaults
from mtl_core.control.tasks import TaskSpec
from mtl_core.errors import UserError

TASKS = (
    TaskSpec("class", "multiclass", class_names=CIFAR10_NAMES, loss_weight=1.0,
             description="CIFAR-10 object class (10 classes)"),
    TaskSpec("aqi", "regression", unit=AQI_UNIT, value_range=AQI_RANGE, loss_weight=1.0,
             description="synthetic AQI from the image's haze-like look (low contrast and saturation, light grey); "
                         "not a real air-quality measurement"),
)

# The seed gives no dropout rate; 0.3.
MODEL = ModelSpec(
    input_shape=(32, 32, 3),
    backbone=("resize:96", "app:mobilenetv2:0.7", "gap"),
    heads=(
        HeadSpec("class", hidden=("dense:128",), dropout=0.3),
        HeadSpec("aqi", hidden=("dense:128",)),
    ),
    extra={"standardize": False},
)


def load_data(options: dict) -> Dataset:
    from mtl_core.control.data.aqi import synthetic_aqi
    from mtl_core.control.data.cifar import load_cifar10

    source = options.get("source", "cifar10")
    if source != "cifar10":
        raise UserError(f"--data: unknown source {source!r} for cifar10-aqi (known: cifar10)")
    data = load_cifar10(options.get("dir") or None)
    if data.names["class"] != CIFAR10_NAMES:
        raise UserError(f"{data.origin}: its label names {list(data.names['class'])} are not CIFAR-10's")
    where = f"from {data.origin}" if options.get("dir") else "via keras.datasets"
    what = (f"CIFAR-10 {where} ({data.n_train} train + {len(data.x) - data.n_train} test images, re-split); "
            f"AQI synthetic (haze score of the pixels)")
    return Dataset(data.x, {"class": data.labels["class"], "aqi": synthetic_aqi(data.x)}, what)


PRESET = Preset(
    name="cifar10-aqi",
    title="CIFAR-10: class and synthetic AQI",
    description="32x32 colour photos; heads: 10-way CIFAR-10 class and a synthetic AQI regression "
                "(a haze score of the image, 0-500). MobileNetV2 backbone, ImageNet weights when available.",
    seed_file="000_d4035d9b02a22549.txt",
    tasks=TASKS,
    input_kind="image",
    model=MODEL,
    load_data=load_data,
    data_defaults={"source": "cifar10"},
    data_sources={
        "cifar10": f"CIFAR-10, 60,000 images: downloaded by keras.datasets when asked ({CIFAR10_BYTES / 1e6:.0f} MB), "
                   f"or the extracted {CIFAR10_DIR}/ folder with --data-dir (no offline default)",
    },
    dir_source="cifar10",
    train=TrainDefaults(epochs=10, batch_size=64, lr=1e-3, clipnorm=1.0, monitor="loss", patience=3,
                        lr_patience=2, lr_factor=0.5, min_lr=1e-6),
    stratify="class",
    reference={
        "metrics": {"class": {"accuracy": 0.8037}, "aqi": {"mae": 1.77}},
        "note": "seed 000: 10 epochs on a T4 GPU, MobileNetV2 with ImageNet weights, CIFAR-10's own test set. "
                "The seed does not define its synthetic AQI, so its MAE is not comparable with this preset's "
                "AQI (a haze score on 0-500)",
    },
)
