"""``--monitor heads``: early stopping on every head's error relative to chance (mtl_core/engine/stopping.py)."""

from __future__ import annotations

import numpy as np
import pytest

from mtl_core.control.config import make_config
from mtl_core.control.presets import get_preset
from mtl_core.control.tasks import TaskSpec
from mtl_core.engine import stopping
from mtl_core.errors import UserError

PRESET = get_preset("shapes-3head")
TASKS = {"shape": TaskSpec("shape", "multiclass", class_names=tuple("abcd")),
         "intensity": TaskSpec("intensity", "regression")}
KEYS = {"shape": ("val_shape_accuracy", "max"), "intensity": ("val_intensity_mae", "min")}


def test_chance_errors_are_the_majority_class_and_the_median_on_the_training_split():
    labels = {"shape": np.array([0, 0, 0, 1, 3, 3]), "intensity": np.array([0.0, 1, 2, 3, 10, 99], np.float32)}
    train = np.arange(5)  # the last example is not in the training split
    chance = stopping.chance_errors(TASKS, labels, None, train)
    assert chance["shape"] == pytest.approx(1 - 3 / 5)
    assert chance["intensity"] == pytest.approx((2 + 1 + 0 + 1 + 8) / 5)  # |y - median 2|


def test_chance_errors_leave_out_missing_labels():
    labels = {"shape": np.array([0, 1, 1, 1]), "intensity": np.array([0.0, 0, 4, 4], np.float32)}
    masks = {"shape": np.array([1, 1, 0, 0], np.float32), "intensity": np.array([0, 0, 1, 1], np.float32)}
    chance = stopping.chance_errors(TASKS, labels, masks, np.arange(4))
    assert chance["shape"] == pytest.approx(0.5) and chance["intensity"] == pytest.approx(1e-6)


def test_heads_error_prefers_the_epoch_where_no_head_has_slipped():
    """Two epochs of the shipped shapes-3head run (validation figures from its card's history): epoch 29 has
    the lower total loss, because shape's cross-entropy is all that total sees, but intensity's MAE doubled
    there; epoch 34 is as good on shape within noise and at intensity's best."""
    chance = {"shape": 0.9, "intensity": 0.244}
    epoch_29 = {"val_loss": 0.278, "val_shape_accuracy": 0.914, "val_intensity_mae": 0.0579}
    epoch_34 = {"val_loss": 0.357, "val_shape_accuracy": 0.910, "val_intensity_mae": 0.0298}
    assert epoch_29["val_loss"] < epoch_34["val_loss"]
    assert stopping.heads_error(epoch_34, KEYS, chance) < stopping.heads_error(epoch_29, KEYS, chance)
    assert stopping.heads_error(epoch_34, KEYS, chance) == pytest.approx(((1 - 0.910) / 0.9 + 0.0298 / 0.244) / 2)


def test_heads_error_is_none_without_every_heads_figure():
    assert stopping.heads_error({"val_shape_accuracy": 0.5}, KEYS, {"shape": 0.9, "intensity": 0.2}) is None


def test_monitor_heads_is_accepted_and_a_single_head_watches_its_own_metric():
    assert make_config(PRESET, monitor="heads").monitor == "heads"
    alone = make_config(PRESET, model=PRESET.model.only(["intensity"]).to_dict(), monitor="heads")
    assert alone.monitor == "intensity"
    with pytest.raises(UserError, match="^--monitor: unknown head 'colour' .*or heads"):
        make_config(PRESET, monitor="colour")
