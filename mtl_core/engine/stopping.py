"""What early stopping watches when every head counts: ``--monitor heads``.

The total validation loss (``--monitor loss``) is a sum of losses in different units: a cross-entropy near 0.3
and a regression MSE near 0.001 add up to a figure that only the classification head moves, so the restored
epoch is the classifier's best whatever the regression head did there. On shapes-3head it restored an epoch
where intensity's validation MAE had spiked to 0.058 between epochs at 0.030 (docs/inside.md, "Which epoch
is kept"). ``heads`` watches each head's primary metric as a fraction of an uninformed model's error
instead, averaged over heads: error rate / the majority class's error rate for a classifier, MAE / the
training median's MAE for a regression head. Every head's relative progress counts the same.
"""

from __future__ import annotations

import numpy as np

KEY = "val_heads_error"  # the log entry the callbacks watch


def chance_errors(tasks: dict, labels: dict, masks: dict | None, train: np.ndarray) -> dict[str, float]:
    """Each head's error of an uninformed model on the training split: 1 - the majority class's share (primary
    metric accuracy) or the MAE of the median (primary metric MAE). ``labels``/``masks`` as the Trainer's."""
    out = {}
    for name, task in tasks.items():
        y = np.asarray(labels[name])[train]
        if masks is not None:
            y = y[np.asarray(masks[name])[train] > 0]
        metric, _ = task.primary_metric
        if not len(y):
            continue
        if metric == "mae":
            err = float(np.mean(np.abs(y - np.median(y))))
        else:
            err = 1.0 - float(np.bincount(y.astype(np.int64).ravel()).max() / y.size)
        out[name] = max(err, 1e-6)
    return out


def heads_error(logs: dict, keys: dict[str, tuple[str, str]], chance: dict[str, float]) -> float | None:
    """Mean over heads of (validation error / chance error); ``keys``: head -> (log key, "max" or "min").
    An accuracy-like metric ("max") becomes the error 1 - value. None when a head's figure is missing."""
    parts = []
    for head, (key, mode) in keys.items():
        if head not in chance or key not in logs:
            return None
        value = float(logs[key])
        parts.append(((1.0 - value) if mode == "max" else value) / chance[head])
    return float(np.mean(parts)) if parts else None


def heads_error_callback(keras, keys: dict[str, tuple[str, str]], chance: dict[str, float]):
    """A callback that adds ``val_heads_error`` to the epoch's logs; it must come before the callbacks that
    read it (Keras hands the same logs dict to each callback in order)."""

    class HeadsError(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if logs is not None:
                value = heads_error(logs, keys, chance)
                if value is not None:
                    logs[KEY] = value

    return HeadsError()
