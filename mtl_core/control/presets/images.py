"""images: a folder of your images with one or more targets becomes a multi-task model, one head per target.

    python -m mtl_core train --preset images --data-dir photos/              # labels.csv, or a sub-folder per class
    python -m mtl_core train --preset images --data-dir photos/ --target kind --target "weight (g)" \
        --data-option size=64

The folder's layout, targets and kinds come from :mod:`mtl_core.control.data.image_folder`. Images are resized
to ``size`` (default: from the data). The backbone is chosen for the size: a small CNN up to 64 px, above that
MobileNetV2 (ImageNet weights when they can be had, else trained from scratch, as the card says).
"""

from __future__ import annotations

from mtl_core.control.modelspec import HeadSpec, ModelSpec
from mtl_core.control.presets.base import Dataset, Preset, TrainDefaults
from mtl_core.errors import UserError

MIN_IMAGES = 20
SMALL_CNN = ("conv:32", "bn", "pool", "conv:64", "bn", "pool", "conv:128", "bn", "gap")
MOBILENET = ("resize:96", "app:mobilenetv2:0.35", "gap")
LARGE_FROM = 96  # sizes from here on get MobileNetV2
TRAIN = TrainDefaults(epochs=30, batch_size=32, lr=1e-3, clipnorm=1.0, monitor="loss", patience=6,
                      lr_patience=3, lr_factor=0.5, min_lr=1e-5)


def backbone_for(size: int, channels: int) -> tuple[tuple[str, ...], dict]:
    """(layer plan, spec extra) for images of ``size`` px: the small CNN, or MobileNetV2 (RGB, its own
    input scaling, so no standardisation) for larger ones."""
    if size >= LARGE_FROM and channels == 3:
        return MOBILENET, {"standardize": False}
    return SMALL_CNN, {}


def _plan(options: dict):
    from mtl_core.control.data import image_folder

    if not options.get("dir"):
        raise UserError("--data-dir: the images preset needs your folder of images (labels.csv, or one "
                        "sub-folder per class)")
    plan = image_folder.scan(options["dir"], options.get("targets") or None)
    size, channels = image_folder.default_size(plan.files)
    if options.get("size"):
        try:
            size = int(options["size"])
        except ValueError:
            raise UserError(f"--data-option size={options['size']}: not a whole number of pixels") from None
        if size not in image_folder.SIZES:
            raise UserError(f"--data-option size={size}: choose one of {', '.join(map(str, image_folder.SIZES))}")
    if options.get("channels"):
        channels = int(options["channels"])
        if channels not in (1, 3):
            raise UserError(f"--data-option channels={channels}: 1 (greyscale) or 3 (RGB)")
    return plan, size, channels


def specialise(options: dict) -> Preset:
    plan, size, channels = _plan(options)
    tasks = tuple(t.task() for t in plan.targets)
    backbone, extra = backbone_for(size, channels)
    model = ModelSpec(input_shape=(size, size, channels), backbone=backbone,
                      heads=tuple(HeadSpec(t.name, hidden=("dense:64",), dropout=0.3) for t in tasks), extra=extra)

    def load_data(opts: dict) -> Dataset:
        from mtl_core.control.data import image_folder

        plan, size, channels = _plan(opts)
        x, y, skipped = image_folder.load(plan, size, channels)
        if len(x) < MIN_IMAGES:
            raise UserError(f"{plan.folder.name}: {len(x)} images decode; at least {MIN_IMAGES} are needed to train")
        notes = {"name": plan.folder.name, "rows": len(x), "layout": plan.layout, "image_size": [size, size, channels],
                 "targets": {t.head: t.column for t in plan.targets}}
        if skipped:
            notes["skipped"] = skipped
        return Dataset(x, y, f"{plan.folder.name} ({len(x):,} images at {size}x{size}, {plan.layout})", notes=notes)

    stratify = next((t.name for t in tasks if t.kind != "regression"), "")
    return Preset(
        name=PRESET.name, title=f"Your images: {plan.folder.name}", description=PRESET.description, seed_file="",
        tasks=tasks, input_kind="image", model=model, load_data=load_data, data_defaults=dict(options),
        data_sources=PRESET.data_sources, dir_source="folder", offline_sources=("folder",), train=TRAIN,
        stratify=stratify, reference={"metrics": {}, "note": "your data: no published reference"})


def _template_data(options: dict) -> Dataset:
    raise UserError("the images preset trains on your folder: --data-dir FOLDER (labels.csv, or a sub-folder per "
                    "class)")


PRESET = Preset(
    name="images",
    title="Your images (any folder)",
    description="A folder of images with labels.csv (a file column and one column per target) or one sub-folder "
                "per class: one head per target, kinds inferred; images of any size and mode are resized.",
    seed_file="",
    tasks=(),
    input_kind="image",
    model=ModelSpec(input_shape=(32, 32, 3), backbone=SMALL_CNN, heads=()),
    load_data=_template_data,
    data_defaults={"source": "folder"},
    data_sources={"folder": "your folder (--data-dir FOLDER [--target COL[=kind] ...] [--data-option size=64])"},
    dir_source="folder",
    offline_sources=("folder",),
    train=TRAIN,
    reference={"metrics": {}, "note": "your data: no published reference"},
    specialise=specialise,
)
