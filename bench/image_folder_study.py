"""Your own images: multi-task vs single-task on scikit-learn's handwritten digits (1,797 scans of 8x8 px)
written as a user's folder: one PNG per image at 32 px, with a labels.csv of two targets, the digit (10
classes) and the ink (share of dark pixels, %, a regression target read from the scan itself).

    python bench/image_folder_study.py [--seeds 0,1,2] [--out DIR]

The images preset with both targets, then the same network on each head alone (`--heads`); test-split
metrics, mean ± std over the seeds. Models go to a private store under --out.
"""

import argparse
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402


def digits_folder(root: Path) -> Path:
    from PIL import Image
    from sklearn.datasets import load_digits

    data = load_digits()
    root.mkdir(parents=True, exist_ok=True)
    names = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
    rows = ["file,digit,ink (%)"]
    for i, (img, digit) in enumerate(zip(data.images, data.target, strict=True)):
        pixels = (255 - img / 16.0 * 255).astype(np.uint8)  # dark ink on white paper, as scanned
        Image.fromarray(pixels).resize((32, 32), Image.NEAREST).save(root / f"scan{i:04d}.png")
        rows.append(f"scan{i:04d}.png,{names[digit]},{(img > 4).mean() * 100:.1f}")
    (root / "labels.csv").write_text("\n".join(rows) + "\n")
    return root


def run(flags: list[str], seed: int, *extra: str):
    from mtl_core.control import options
    from mtl_core.engine.training import train

    preset, config = options.build_config(options.train_parser().parse_args(
        ["--preset", "images", *flags, "--seed", str(seed), *extra]))
    return preset, train("images", config)[1]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    out = Path(args.out or tempfile.mkdtemp(prefix="image-study-"))
    out.mkdir(parents=True, exist_ok=True)
    os.environ["MTL_HOME"] = str(out / "home")
    from _machine import machine

    seeds = [int(s) for s in args.seeds.split(",")]
    folder = digits_folder(out / "digits")
    flags = ["--data-dir", str(folder), "--data-option", "size=32"]
    print(f"# image-folder study · {machine()} · load {os.getloadavg()[0]:.2f} · seeds {seeds}\n")
    print("| folder | head | metric | multi-task | same net, head alone |")
    print("|---|---|---|---|---|")
    cells: dict = {}
    for seed in seeds:
        preset, card = run(flags, seed)
        for task in preset.tasks:
            _, alone = run(flags, seed, "--heads", task.name)
            metric = task.primary_metric[0]
            cell = cells.setdefault((task.name, metric), {"multi": [], "alone": []})
            cell["multi"].append(card["metrics"]["test"][task.name][metric])
            cell["alone"].append(alone["metrics"]["test"][task.name][metric])
    for (head, metric), cell in cells.items():
        shown = [f"{np.mean(v):.3f} ± {np.std(v):.3f}" for v in (cell["multi"], cell["alone"])]
        print(f"| digits (scikit-learn, 32 px PNGs) | {head} | {metric} | " + " | ".join(shown) + " |", flush=True)


if __name__ == "__main__":
    main()
