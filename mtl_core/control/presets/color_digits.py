"""color-digits: seed 004's two-head CNN (digit 10-way, colour red/green) on 28x28x3 images."""

from __future__ import annotations

from mtl_core.control.modelspec import HeadSpec, ModelSpec
from mtl_core.control.presets.base import Dataset, Preset, TrainDefaults
from mtl_core.control.tasks import TaskSpec
from mtl_core.errors import UserError

TASKS = (
    TaskSpec("digit", "multiclass", class_names=tuple(str(d) for d in range(10)), loss_weight=1.0,
             description="which digit (0-9)"),
    TaskSpec("color", "binary", class_names=("red", "green"), loss_weight=1.0,
             description="the digit's colour (red or green)"),
)

# Seed 004: Conv2D + MaxPooling with ResNet-style skip connections, Flatten -> Dense per head.
MODEL = ModelSpec(
    input_shape=(28, 28, 3),
    backbone=("conv:32", "pool", "res:64", "pool", "res:64"),
    heads=(
        HeadSpec("digit", trunk=("flatten",), hidden=("dense:128",), dropout=0.3),
        HeadSpec("color", trunk=("gap",), hidden=("dense:16",)),
    ),
)


def load_data(options: dict) -> Dataset:
    from mtl_core.control.data.digits import colourise, load_mnist, load_sklearn_digits

    source, seed = options.get("source", "sklearn"), int(options.get("seed", 0))
    if source == "sklearn":
        grey, digits = load_sklearn_digits()
        what = "scikit-learn's 1,797 handwritten 8x8 digits upsampled to 28x28, coloured (not MNIST)"
    elif source == "mnist":
        grey, digits = load_mnist(options.get("dir"))
        what = f"MNIST ({'from ' + options['dir'] if options.get('dir') else 'keras.datasets'}), coloured"
    else:
        raise UserError(f"--data: unknown source {source!r} for color-digits (known: sklearn, mnist)")
    rgb, colour = colourise(grey, seed)
    return Dataset(rgb, {"digit": digits, "color": colour}, f"{what}, colour seed {seed}")


PRESET = Preset(
    name="color-digits",
    title="Coloured digits: digit and colour",
    description="28x28 RGB digits in red or green; heads: 10-way digit, binary colour. "
                "A small CNN with residual skip connections (seed 004).",
    seed_file="004_faed24166e259952.txt",
    tasks=TASKS,
    input_kind="image",
    model=MODEL,
    load_data=load_data,
    data_defaults={"source": "sklearn", "seed": 0},
    data_sources={
        "sklearn": "scikit-learn's bundled 8x8 handwritten digits, upsampled (offline, default)",
        "mnist": "MNIST via keras.datasets (11 MB download) or mnist.npz in --data-dir",
    },
    dir_source="mnist",
    offline_sources=("sklearn",),
    train=TrainDefaults(epochs=15, batch_size=64, lr=1e-3, clipnorm=1.0, monitor="loss", patience=4,
                        lr_patience=2, lr_factor=0.5, min_lr=1e-5),
    stratify="digit",
    reference={"metrics": {}, "note": "seed 004 reports 'high accuracy' on both heads but gives no numbers"},
)
