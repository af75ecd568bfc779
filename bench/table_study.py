"""Your own tables: multi-task vs single-task vs the scikit-learn baseline, on scikit-learn's bundled data
sets written as the CSV a user would bring (words as labels, an id column, a few holes in one feature).

    python bench/table_study.py [--seeds 0,1,2] [--out DIR]

For each table: the table preset with both targets (one network, two heads), the same network with each head
alone (`--heads`), and HistGradientBoosting per head on the same split (the card's baseline). Test-split
metrics, mean ± std over the seeds (each seed is its own split). Models go to a private store under --out.
"""

import argparse
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402


def diabetes(path: Path) -> tuple[Path, list[str]]:
    """442 patients: disease progression after a year (regression) and sex (binary, as words)."""
    from sklearn.datasets import load_diabetes

    f = load_diabetes(as_frame=True, scaled=False).frame
    f["sex"] = f["sex"].map({1.0: "female", 2.0: "male"})
    f = f.rename(columns={"target": "progression (points)"})
    f.loc[np.random.default_rng(0).choice(len(f), 20, replace=False), "bmi"] = np.nan
    f.insert(0, "patient", [f"P{i:04d}" for i in range(len(f))])
    f.to_csv(path, index=False)
    return path, ["progression (points)", "sex"]


def wine(path: Path) -> tuple[Path, list[str]]:
    """178 wines: cultivar (3 classes, by name) and alcohol (regression, %)."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from test_table import wine_csv

    return wine_csv(path), ["cultivar", "alcohol (%)"]


def breast_cancer(path: Path) -> tuple[Path, list[str]]:
    """569 tumours: diagnosis (binary, malignant/benign) and mean texture (regression)."""
    from sklearn.datasets import load_breast_cancer

    data = load_breast_cancer(as_frame=True)
    f = data.frame.drop(columns="target")
    f["diagnosis"] = [data.target_names[t] for t in data.target]
    f.to_csv(path, index=False)
    return path, ["diagnosis", "mean texture"]


TABLES = {"diabetes": diabetes, "wine": wine, "breast-cancer": breast_cancer}


def run(flags: list[str], seed: int, *extra: str):
    """`train --preset table FLAGS --seed SEED EXTRA` through the CLI's own option handling: (preset, card)."""
    from mtl_core.control import options
    from mtl_core.engine.training import train

    preset, config = options.build_config(options.train_parser().parse_args(
        ["--preset", "table", *flags, "--seed", str(seed), *extra]))
    return preset, train("table", config)[1]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    out = Path(args.out or tempfile.mkdtemp(prefix="table-study-"))
    out.mkdir(parents=True, exist_ok=True)
    os.environ["MTL_HOME"] = str(out / "home")
    from _machine import machine

    seeds = [int(s) for s in args.seeds.split(",")]
    print(f"# table study · {machine()} · load {os.getloadavg()[0]:.2f} · seeds {seeds}\n")
    print("| table | head | metric | multi-task | same net, head alone | scikit-learn (HistGradientBoosting) |")
    print("|---|---|---|---|---|---|")
    for name, make in TABLES.items():
        path, targets = make(out / f"{name}.csv")
        flags = ["--data-dir", str(path)] + [x for t in targets for x in ("--target", t)]
        rows: dict = {}
        for seed in seeds:
            preset, card = run(flags, seed)
            for task in preset.tasks:
                _, alone = run(flags, seed, "--heads", task.name)
                for metric in [task.primary_metric[0]] + (["auc"] if task.kind == "binary" else []):
                    cell = rows.setdefault((task.name, metric), {"multi": [], "alone": [], "sklearn": []})
                    cell["multi"].append(card["metrics"]["test"][task.name][metric])
                    cell["alone"].append(alone["metrics"]["test"][task.name][metric])
                    cell["sklearn"].append(card["baselines"][task.name]["test"][metric])
        for (head, metric), cell in rows.items():
            shown = [f"{np.mean(v):.3f} ± {np.std(v):.3f}" for v in (cell["multi"], cell["alone"], cell["sklearn"])]
            print(f"| {name} | {head} | {metric} | " + " | ".join(shown) + " |", flush=True)


if __name__ == "__main__":
    main()
