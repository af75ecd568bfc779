"""shapes-3head on shapes drawn the way a person draws them, not the way the generator does (issue 14, part 7).

Writes image files as a user would make them in a drawing program (RGB, various sizes, PNG and JPEG, any
colours, outlines or fills, no marker dot), each shape class at random rotations, and runs them through the
Predictor exactly as uploads (``Predictor.predict`` on the file bytes). Per style and per model: shape
accuracy, mean confidence of the answer, the expected calibration error, and how many got a warning.

    python bench/drawings.py [--model ID ...] [--per-class 3] [--out out/drawings]

Default models: every shapes-3head model shipped in weights/ and, with ``--model``, any stored id.
"""

import argparse
import io
import os
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from mtl_core.control.data.shapes import _SHAPES, SHAPE_NAMES  # noqa: E402  (the class definitions)

# (name, canvas px, format, background RGB, ink RGB, filled, line width as a fraction of the canvas, blur)
STYLES = (
    ("white on black, filled, 32 px PNG", 32, "PNG", (0, 0, 0), (255, 255, 255), True, 0, 0.0),
    ("black outline on white, 200 px PNG", 200, "PNG", (255, 255, 255), (0, 0, 0), False, 0.03, 0.0),
    ("red on blue, filled, 128 px JPEG", 128, "JPEG", (30, 60, 200), (220, 30, 30), True, 0, 0.0),
    ("pencil on paper, photographed, 256 px JPEG", 256, "JPEG", (235, 230, 215), (90, 90, 100), False, 0.012, 2.0),
    ("small, off-centre, yellow on green, 64 px PNG", 64, "PNG", (20, 90, 40), (250, 220, 40), True, 0, 0.0),
    ("large, black on white, filled, 100 px PNG", 100, "PNG", (255, 255, 255), (0, 0, 0), True, 0, 0.0),
)


def draw(cls: int, style, rng) -> bytes:
    name, size, fmt, background, ink, filled, width, blur = style
    img = Image.new("RGB", (size, size), background)
    pen = ImageDraw.Draw(img)
    small = name.startswith("small")
    radius = size * (0.18 if small else 0.45 if name.startswith("large") else 0.33)
    cx = size * (0.3 if small else 0.5) + rng.uniform(-0.04, 0.04) * size
    cy = size * (0.35 if small else 0.5) + rng.uniform(-0.04, 0.04) * size
    theta = rng.uniform(0, 2 * np.pi)
    c, s = np.cos(theta), np.sin(theta)
    for k, poly in enumerate(_SHAPES[cls]):
        if poly is None:
            continue
        points = [(cx + radius * (x * c - y * s), cy - radius * (x * s + y * c)) for x, y in poly]
        if filled:
            pen.polygon(points, fill=ink if k == 0 else background)
        else:
            pen.line([*points, points[0]], fill=ink, width=max(1, round(width * size)), joint="curve")
    if blur:
        img = img.filter(ImageFilter.GaussianBlur(blur))
    buf = io.BytesIO()
    img.save(buf, format=fmt, **({"quality": 85} if fmt == "JPEG" else {}))
    return buf.getvalue()


def main():
    from mtl_core.control.store import ModelStore
    from mtl_core.engine.calibration import expected_calibration_error
    from mtl_core.engine.inference import Predictor

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", action="append", help="a stored model id (repeatable); default: the shipped ones")
    ap.add_argument("--per-class", type=int, default=3)
    ap.add_argument("--out", default="out/drawings", help="where the drawn files are written, to look at")
    args = ap.parse_args()
    store = ModelStore()
    models = [store.resolve("shapes-3head", m) for m in args.model] if args.model else \
        [m for m in store.list("shapes-3head") if m.source == "shipped"]
    rng = np.random.default_rng(0)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    files = {}
    for style in STYLES:
        items = []
        for cls in range(len(SHAPE_NAMES)):
            for k in range(args.per_class):
                data = draw(cls, style, rng)
                name = f"{SHAPE_NAMES[cls]}-{k}.{style[2].lower()}"
                (out / f"{STYLES.index(style)}-{name}").write_bytes(data)
                items.append((data, name, cls))
        files[style[0]] = items
    print(f"{len(SHAPE_NAMES) * args.per_class} drawings per style, written to {out}/")
    print("| style | model | shape accuracy | mean confidence | ECE | warned |")
    print("|---|---|---|---|---|---|")
    for model in models:
        predictor = Predictor([model])
        for style, items in files.items():
            result = predictor.predict([d for d, _, _ in items], [n for _, n, _ in items]).items
            probs = np.array([[r["outputs"]["shape"]["probabilities"][c] for c in SHAPE_NAMES] for r in result])
            truth = np.array([c for _, _, c in items])
            accuracy = float((probs.argmax(axis=1) == truth).mean())
            warned = sum(bool(r.get("warnings")) for r in result)
            print(f"| {style} | `{model.id}` | {accuracy:.2f} | {probs.max(axis=1).mean():.2f} | "
                  f"{expected_calibration_error(probs, truth):.2f} | {warned} of {len(items)} |")


if __name__ == "__main__":
    main()
