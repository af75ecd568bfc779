"""Evaluate a stored model on its own held-out test split, or on data the user names."""

from __future__ import annotations

from mtl_core.control.config import TrainConfig
from mtl_core.control.data.splits import stratified_split
from mtl_core.control.metrics import all_metrics
from mtl_core.control.presets import get_preset
from mtl_core.control.presets.base import take
from mtl_core.errors import UserError


def evaluate(preset_name: str, model: str | None = None, *, data_dir: str | None = None, store=None,
             predictor=None, loss_weights: dict[str, float] | None = None) -> dict:
    """Metrics on the test split (or ``data_dir``); ``loss_weights``: lambda of a loss-conditioned model
    (default: its config's weights; refused for an ordinary model), reported back as ``loss_weights``."""
    from mtl_core.engine.inference import Predictor
    from mtl_core.engine.training import load_training_data

    preset = get_preset(preset_name)
    predictor = predictor or Predictor.for_preset(preset_name, model, store)
    lam = predictor.loss_weights(loss_weights)  # a wrong lambda fails before the data is read
    tasks = {t.name: t for t in predictor.tasks}
    if data_dir:
        data = preset.load_data({"source": preset.dir_source, "dir": data_dir})
        x, y, split_name = data.x, data.y, f"all of {data_dir}"
    else:
        # The test split is rebuilt from the card's config: same data, same seed, same split.
        config = TrainConfig.from_dict(predictor.card["config"])
        data = load_training_data(preset, config)
        if data.fingerprint != predictor.card["data"]["fingerprint"]:
            raise UserError(f"{predictor.id}: its training data has changed since training "
                            f"({predictor.card['data']['source']}); evaluate with --data-dir")
        labels = data.y.get(preset.stratify)
        split = stratified_split(labels, len(data), val_fraction=config.val_fraction,
                                 test_fraction=config.test_fraction, seed=config.seed)
        x, y, split_name = take(data.x, split.test), {k: v[split.test] for k, v in data.y.items()}, "test split"
    if predictor.input_kind == "tabular":
        from mtl_core.control.data.tabular import TabularEncoder

        x = TabularEncoder.from_dict(predictor.card["preprocessing"]["tabular"]).encode_frame(x, name=split_name)
    pred = predictor.predict_arrays(x, lam)
    metrics = all_metrics(tasks, {k: y[k] for k in tasks}, pred, with_details=True)
    out = {"preset": preset_name, "model": predictor.id, "split": split_name, "n": len(x), "metrics": metrics}
    if lam:
        out["loss_weights"] = {h: round(w, 6) for h, w in lam.items()}
    return out
