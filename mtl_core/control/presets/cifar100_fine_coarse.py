"""cifar100-fine-coarse: seed 001's two heads on CIFAR-100, fine (100 classes) and coarse (20 superclasses).

Data: CIFAR-100's 60,000 32x32 colour images (train and test together; the studio makes its own split,
stratified by superclass), downloaded by keras.datasets when the user asks (169 MB), or read from the
extracted ``cifar-100-python/`` folder given with ``--data-dir`` (mtl_core.control.data.cifar). No offline data
set exists: the tests write small files in the real format (``tests/_cifar_fixtures.py``).

Models. The default is a light CNN (conv 32-64-128 with batch norm and pooling, global average pooling,
a dense layer per head) that trains on a CPU in reasonable time. The seed's models are in ``VARIANTS``:

* ``resnet50``: ResNet50 (ImageNet weights when they can be had), fine-tuned as a whole, on the 32x32
  input as is (the seed does not say it upscaled; its 36%/50% accuracies fit a 1x1 final feature map),
  one dense layer per head;
* ``resnet50-enhanced``: the seed's "more dense layers, tuned learning rate and loss weights"; the seed
  gives no values, ours are in ``VARIANT_TRAIN`` (lr 1e-4, loss weights fine 1.0 / coarse 0.5).

A variant is a complete ModelSpec (its dict goes into the config, so it is hashed into the model id) and
optional training overrides for ``make_config``.
"""

from __future__ import annotations

from mtl_core.control.data.cifar import CIFAR100_BYTES, CIFAR100_COARSE_NAMES, CIFAR100_DIR, CIFAR100_FINE_NAMES
from mtl_core.control.modelspec import HeadSpec, ModelSpec
from mtl_core.control.presets.base import Dataset, Preset, TrainDefaults
from mtl_core.control.tasks import TaskSpec
from mtl_core.errors import UserError

TASKS = (
    TaskSpec("fine", "multiclass", class_names=CIFAR100_FINE_NAMES, loss_weight=1.0,
             description="CIFAR-100 fine label (100 classes)"),
    TaskSpec("coarse", "multiclass", class_names=CIFAR100_COARSE_NAMES, loss_weight=1.0,
             description="CIFAR-100 coarse label (20 superclasses)"),
)

# Light CPU default (not in the seed): three conv blocks, shared pooled features, a dense layer per head.
MODEL = ModelSpec(
    input_shape=(32, 32, 3),
    backbone=("conv:32", "bn", "pool", "conv:64", "bn", "pool", "conv:128", "bn", "pool", "gap"),
    heads=(
        HeadSpec("fine", hidden=("dense:256",), dropout=0.3),
        HeadSpec("coarse", hidden=("dense:128",), dropout=0.3),
    ),
)

VARIANTS = {
    "resnet50": ModelSpec(
        input_shape=(32, 32, 3),
        backbone=("app:resnet50:0", "gap"),
        heads=(
            HeadSpec("fine", hidden=("dense:256",), dropout=0.5),
            HeadSpec("coarse", hidden=("dense:256",), dropout=0.5),
        ),
        extra={"standardize": False},
    ),
    "resnet50-enhanced": ModelSpec(
        input_shape=(32, 32, 3),
        backbone=("app:resnet50:0", "gap"),
        heads=(
            HeadSpec("fine", hidden=("dense:1024", "dense:512"), dropout=0.5),
            HeadSpec("coarse", hidden=("dense:512", "dense:256"), dropout=0.5),
        ),
        extra={"standardize": False},
    ),
}
# make_config overrides that come with a variant (the user's own flags still win).
VARIANT_TRAIN = {
    "resnet50": {},
    "resnet50-enhanced": {"lr": 1e-4, "loss_weights": {"fine": 1.0, "coarse": 0.5}},
}


def load_data(options: dict) -> Dataset:
    from mtl_core.control.data.cifar import load_cifar100

    source = options.get("source", "cifar100")
    if source != "cifar100":
        raise UserError(f"--data: unknown source {source!r} for cifar100-fine-coarse (known: cifar100)")
    data = load_cifar100(options.get("dir") or None)
    for head, expected in (("fine", CIFAR100_FINE_NAMES), ("coarse", CIFAR100_COARSE_NAMES)):
        if data.names[head] != expected:
            raise UserError(f"{data.origin}: its {head} label names are not CIFAR-100's")
    where = f"from {data.origin}" if options.get("dir") else "via keras.datasets"
    what = f"CIFAR-100 {where} ({data.n_train} train + {len(data.x) - data.n_train} test images, re-split)"
    return Dataset(data.x, {"fine": data.labels["fine"], "coarse": data.labels["coarse"]}, what)


PRESET = Preset(
    name="cifar100-fine-coarse",
    title="CIFAR-100: fine and coarse labels",
    description="32x32 colour photos; heads: 100-way fine class and 20-way superclass. A light CNN by "
                "default; the seed's ResNet50 and its enhanced version as variants.",
    seed_file="001_77e8209c4c2bcd00.txt",
    tasks=TASKS,
    input_kind="image",
    model=MODEL,
    load_data=load_data,
    data_defaults={"source": "cifar100"},
    data_sources={
        "cifar100": f"CIFAR-100, 60,000 images: downloaded by keras.datasets when asked "
                    f"({CIFAR100_BYTES / 1e6:.0f} MB), or the extracted {CIFAR100_DIR}/ folder with --data-dir "
                    f"(no offline default)",
    },
    dir_source="cifar100",
    train=TrainDefaults(epochs=30, batch_size=64, lr=1e-3, clipnorm=1.0, monitor="loss", patience=5,
                        lr_patience=2, lr_factor=0.5, min_lr=1e-6),
    stratify="coarse",
    reference={
        "metrics": {"fine": {"accuracy": 0.4343}, "coarse": {"accuracy": 0.6093}},
        "note": "seed 001, enhanced ResNet50 (variant resnet50-enhanced), CIFAR-100's own test set; before the "
                "enhancements the seed's ResNet50 reached 0.3635 fine / 0.4972 coarse (variant resnet50) and its "
                "initial custom network 0.2679 / 0.3864",
    },
    variants=VARIANTS,
    variant_train=VARIANT_TRAIN,
)
