"""Evaluate a stored model on its own held-out test split, or on data the user names."""

from __future__ import annotations

from mtl_core.control import datasets
from mtl_core.control.metrics import all_metrics
from mtl_core.control.presets import get_preset
from mtl_core.control.presets.base import take
from mtl_core.engine.inference import Predictor


def evaluate(preset_name: str, model: str | None = None, *, data_dir: str | None = None, store=None,
             predictor: Predictor | None = None, loss_weights: dict[str, float] | None = None) -> dict:
    """Metrics on the test split (or ``data_dir``); ``loss_weights``: lambda of a loss-conditioned model
    (default: its config's weights; refused for an ordinary model), reported back as ``loss_weights``."""
    base = get_preset(preset_name)
    predictor = predictor or Predictor.for_preset(preset_name, model, store)
    lam = predictor.loss_weights(loss_weights)  # a wrong lambda fails before the data is read
    options = dict(predictor.card.get("config", {}).get("data", {}))
    if data_dir:  # a table's targets and features stay the model's; only the file is another
        options = {**(options if base.data_defined else {}), "source": base.dir_source, "dir": data_dir}
    preset = base.for_data(options)
    if data_dir:
        data = preset.load_data(options)
        x, y, split_name = data.x, data.y, f"all of {data_dir}"
    else:  # the test split rebuilt from the card's config: same data, same seed, same split
        data, split, _ = datasets.rebuild(preset, predictor.card["config"], predictor.card["data"]["fingerprint"],
                                          model=predictor.id, hint="evaluate with --data-dir")
        x, y, split_name = take(data.x, split.test), {k: v[split.test] for k, v in data.y.items()}, "test split"
    pred = predictor.predict_arrays(predictor.encode(x, split_name), lam)
    tasks = {t.name: t for t in predictor.tasks}
    metrics = all_metrics(tasks, {k: y[k] for k in tasks}, pred, with_details=True)
    out = {"preset": preset_name, "model": predictor.id, "split": split_name, "n": len(x), "metrics": metrics}
    if lam:
        out["loss_weights"] = {h: round(w, 6) for h, w in lam.items()}
    return out
