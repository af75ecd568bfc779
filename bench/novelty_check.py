"""How the shipped shapes-3head model's "unlike the training data" warnings fall on four kinds of upload
(issue 14, part 7; docs/inside.md, "Inputs unlike the training data").

- fresh generator-style images (the generator, seed 1234, no plain drawings): warnings here are false alarms;
- the drawings of ``bench/drawings.py`` (same styles, same random draws);
- uniform grey noise and uniform RGB noise (64×64), which no head should answer with confidence.

Each input goes through ``Predictor.predict`` as an upload (PNG bytes), and the counts come from the items'
``warnings``: flagged as unlike the training data as a whole, or only for some heads (with the worst head's
ratio to its threshold), or not at all.

    python bench/novelty_check.py [--model ID] [--n 200]
"""

import argparse
import io
import os
import re
import statistics
import sys
from collections import Counter

import numpy as np
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from bench.drawings import STYLES, draw  # noqa: E402
from mtl_core.control.data.shapes import SHAPE_NAMES, generate_shapes  # noqa: E402

RATIO = re.compile(r"(\d+(?:\.\d+)?)x the level")


def png(array: np.ndarray) -> bytes:
    mode = "L" if array.ndim == 2 else "RGB"
    buf = io.BytesIO()
    Image.fromarray((np.clip(array, 0, 1) * 255).astype("uint8"), mode).save(buf, format="PNG")
    return buf.getvalue()


def inputs(n: int) -> dict[str, list[bytes]]:
    x, _ = generate_shapes(n=n, seed=1234, noise=0.3, drawings=0.0)
    rng = np.random.default_rng(0)  # as bench/drawings.py draws them
    drawings = [draw(cls, style, rng) for style in STYLES for cls in range(len(SHAPE_NAMES)) for _ in range(3)]
    noise = np.random.default_rng(7)
    return {
        f"{n} fresh generator-style images (seed 1234)": [png(image) for image in x],
        f"the {len(drawings)} drawings of bench/drawings.py": drawings,
        "uniform grey noise, 64×64 (10 images)": [png(noise.uniform(size=(64, 64))) for _ in range(10)],
        "uniform RGB noise, 64×64 (10 images)": [png(noise.uniform(size=(64, 64, 3))) for _ in range(10)],
    }


def main():
    from mtl_core.control.store import ModelStore
    from mtl_core.engine.inference import Predictor

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", help="a stored model id; default: the preset's default (the shipped one)")
    ap.add_argument("--n", type=int, default=200, help="fresh generator-style images")
    args = ap.parse_args()
    model = ModelStore().resolve("shapes-3head", args.model)
    predictor = Predictor([model])
    print(f"model {model.id}")
    print("| inputs | unlike the training data | only some heads flagged (items naming each head) "
          "| worst head's ratio (median, range) | not flagged | shape answers (most common) |")
    print("|---|---|---|---|---|---|")
    for what, sources in inputs(args.n).items():
        items = predictor.predict(sources).items
        whole = sum(any(w.startswith("unlike this model") for w in i.get("warnings", [])) for i in items)
        heads = [i for i in items if i.get("warnings") and not any(w.startswith("unlike this model")
                                                                  for w in i["warnings"])]
        said = [w for i in heads for w in i["warnings"] if "unlike what" in w]  # not e.g. the grey-contrast line
        ratios = [float(m.group(1)) for w in said if (m := RATIO.search(w))]
        named = Counter(h.strip() for w in said for h in w.split(":")[0].split(","))  # head -> items naming it
        spread = (f"{statistics.median(ratios):.1f} ({min(ratios):.1f} to {max(ratios):.1f})" if ratios else "–")
        labels = [i["outputs"]["shape"]["label"] for i in items]
        common = max(set(labels), key=labels.count)
        confidence = statistics.mean(i["outputs"]["shape"]["probability"] for i in items)
        which = f" ({', '.join(f'{h} {n}' for h, n in sorted(named.items()))})" if named else ""
        print(f"| {what} | {whole} | {len(heads)}{which} | {spread} | {len(items) - whole - len(heads)} "
              f"| {common} ({labels.count(common)} of {len(items)}; mean confidence {confidence:.2f}) |")


if __name__ == "__main__":
    main()
