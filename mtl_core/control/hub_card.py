"""The model card (``README.md``) written beside ``model.keras`` and ``card.json`` on the Hub.

Built from the studio's own ``card.json`` only, so what the Hub page says is what the store knows.
The YAML front matter is made by ``huggingface_hub.ModelCardData`` (it knows the ``model-index``
layout the Hub validates); the body is plain Markdown a reader can follow without the studio.
"""

from __future__ import annotations

import json
import math
import zipfile
from pathlib import Path

# Data sources of the presets that exist as data sets on the Hub; the others (generated, a user's CSV
# or folder, scikit-learn's digits) have no Hub id and are named in the card's text only.
HUB_DATASETS = {"cifar10": "uoft-cs/cifar10", "cifar100": "uoft-cs/cifar100", "mnist": "ylecun/mnist"}


def _task_type(input_kind: str, kind: str) -> str:
    if input_kind == "image":
        return "image-classification" if kind != "regression" else "image-feature-extraction"
    return "tabular-classification" if kind != "regression" else "tabular-regression"


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def custom_classes(model_file: Path) -> list[str]:
    """The registered classes (``package>Name``) a ``.keras`` file needs, read from its config without Keras:
    the reader of the card learns exactly what to import before loading it outside the studio."""
    try:
        with zipfile.ZipFile(model_file) as zf:
            config = json.loads(zf.read("config.json"))
    except (OSError, KeyError, ValueError, zipfile.BadZipFile):
        return []
    found: set[str] = set()

    def walk(node):
        if isinstance(node, dict):
            if isinstance(node.get("registered_name"), str) and ">" in node["registered_name"]:
                found.add(node["registered_name"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(config)
    return sorted(found)


def metadata(card: dict) -> str:
    """The YAML front matter (without the ``---`` fences)."""
    from huggingface_hub import EvalResult, ModelCardData

    source = str(card.get("config", {}).get("data", {}).get("source", ""))
    dataset_id = HUB_DATASETS.get(source)
    dataset_name = card.get("data", {}).get("source") or source or "unknown"
    input_kind = card.get("input", {}).get("kind", "image")
    results = []
    for task in card.get("tasks", []):
        for metric, value in (card.get("metrics", {}).get("test", {}).get(task["name"]) or {}).items():
            if _finite(value) and "baseline" not in metric:  # the predict-the-median baseline is not this model's
                results.append(EvalResult(
                    task_type=_task_type(input_kind, task["kind"]), task_name=f"{task['name']} ({task['kind']})",
                    dataset_type=dataset_id or f"mtl-studio/{source or 'data'}", dataset_name=dataset_name,
                    dataset_split="test", metric_type=metric, metric_name=f"{task['name']} {metric}",
                    metric_value=round(float(value), 6)))
    tags = ["multi-task-learning", "keras", "tensorflow", "mtl-studio", card.get("preset", "")]
    tags += [f"dataset:{source}"] if source and not dataset_id else []
    data = ModelCardData(library_name="keras", tags=[t for t in tags if t],
                         datasets=[dataset_id] if dataset_id else None, model_name=card.get("id"),
                         eval_results=results or None)
    return data.to_yaml()


def _fmt(value) -> str:
    return f"{value:.4f}" if _finite(value) else "–"


def body(card: dict, repo: str, classes: list[str]) -> str:
    """The Markdown body: what the model is, how well it does beside the seed's numbers, how to load it."""
    preset = card.get("preset", "?")
    config = card.get("config", {})
    test = card.get("metrics", {}).get("test", {})
    reference = (card.get("reference") or {}).get("metrics", {})
    lines = [f"# {card.get('id', 'model')}", "",
             f"A multi-task Keras model of the **{preset}** preset of "
             "Multi-Task Studio (`mtl_core`): one shared backbone and one head per task, "
             f"trained by `python -m mtl_core train --preset {preset}`. `card.json` holds the full config, the "
             "normalisation statistics, per-head metrics and history, the data fingerprint and the sha256 of "
             "`model.keras`.", "", "## Heads", "", "| head | kind | classes / unit |", "|---|---|---|"]
    for task in card.get("tasks", []):
        names = task.get("class_names") or []
        what = (f"{len(names)}: {', '.join(names[:10])}{', …' if len(names) > 10 else ''}" if names
                else task.get("unit") or "value")
        lines.append(f"| {task['name']} | {task['kind']} | {what} |")
    shape = card.get("input", {}).get("shape")
    lines += ["", f"Input: {card.get('input', {}).get('kind', '?')} of shape {shape} (normalisation is inside the "
              "model: feed raw pixel values scaled to [0, 1], or the encoded table row).", "",
              "## Training", "",
              f"- data: {card.get('data', {}).get('source', '?')}; split "
              + ", ".join(f"{k} {v}" for k, v in card.get("data", {}).get("sizes", {}).items()),
              "- loss weights: " + ", ".join(f"{k}={v:g}" for k, v in config.get("loss_weights", {}).items()),
              f"- weighting: {config.get('weighting', 'static')}; epochs {config.get('epochs', '?')}, batch size "
              f"{config.get('batch_size', '?')}, learning rate {config.get('lr', '?')}, seed {config.get('seed', '?')}",
              f"- trained on {card.get('training', {}).get('device', {}).get('name', '?')} in "
              f"{card.get('training', {}).get('seconds', '?')} s ({card.get('training', {}).get('epochs_run', '?')} "
              "epochs)", "", "<details><summary>Full config</summary>", "", "```json",
              json.dumps(config, indent=1), "```", "", "</details>", "",
              "## Metrics (test split)", "", "| head | metric | this model | reference (seed) |", "|---|---|---|---|"]
    for task in card.get("tasks", []):
        for metric, value in (test.get(task["name"]) or {}).items():
            if _finite(value):
                lines.append(f"| {task['name']} | {metric} | {_fmt(value)} "
                             f"| {_fmt(reference.get(task['name'], {}).get(metric))} |")
    note = (card.get("reference") or {}).get("note")
    if note:
        lines += ["", f"Reference (seed): {note}. The reference is the seed author's number, not this model's; "
                  "where the data differ the numbers are not the same task."]
    registered = ", ".join(f"`{c}`" for c in classes) or "none"
    lines += ["", "## Use it", "", "With the studio (checks the sha256 and loads with `safe_mode=True`):", "",
              "```bash", f"python -m mtl_core pull --preset {preset} --repo {repo} --revision <commit sha>",
              f"python -m mtl_core predict --preset {preset} --model {card.get('id')} INPUT...", "```", "",
              "Without the studio: the model uses these registered Keras classes: "
              f"{registered}. They are plain layers in the studio's single file `mtl_core/engine/models/layers.py`; "
              "import it (or a copy of it) before loading, so no Lambda layer or pickled code is needed:", "",
              "```python", "import keras", "from huggingface_hub import hf_hub_download", "",
              "import mtl_core.engine.models.layers  # registers the custom layers (or import a copy of layers.py)", "",
              f'path = hf_hub_download("{repo}", "model.keras", revision="main")  # or a commit sha: reproducible',
              "model = keras.saving.load_model(path, safe_mode=True, compile=False)",
              "outputs = model(x)  # a dict: one array per head", "```", ""]
    return "\n".join(lines)


def model_card(card: dict, repo: str, model_file: Path) -> str:
    """The whole ``README.md``: front matter, then the body."""
    return f"---\n{metadata(card)}\n---\n\n{body(card, repo, custom_classes(model_file))}"
