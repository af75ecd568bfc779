"""A study's ledger, kept in git: one JSON line per finished training, so a study longer than one sitting
resumes where it stopped, even from a fresh clone (the model store is not kept).

Keyed by model id (a hash of the config, the data and the engine version: a change that trains another model
is not hidden by an old line) and by the precision the training ran at: ``auto`` is bfloat16 on a CPU with
native bf16 and float32 on one without, and the two train different models under the same id, so a machine
takes only its own precision's lines."""

import json
from pathlib import Path

from mtl_core.control import datasets
from mtl_core.control.presets import preset_for
from mtl_core.engine.device import choose_precision


class Ledger:
    """One JSON line per finished training: {"id", "precision", "preset", "what", ...}; appended, never
    rewritten (a later line of the same id and precision wins)."""

    def __init__(self, path: Path):
        self.path = path
        self.rows = {}
        if path.exists():
            for line in path.read_text().splitlines():
                if line.strip():
                    row = json.loads(line)
                    self.rows[self.key(row["id"], row.get("precision"))] = row

    @staticmethod
    def key(model_id: str, precision: str | None) -> str:
        return f"{model_id}@{precision}"

    def get(self, model_id: str, precision: str) -> dict | None:
        return self.rows.get(self.key(model_id, precision))

    def add(self, row: dict) -> None:
        self.rows[self.key(row["id"], row["precision"])] = row
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a") as f:  # one short line per write: a stop mid-study leaves whole lines
            f.write(json.dumps(row, sort_keys=True) + "\n")


_fingerprints: dict[str, str] = {}


def model_id(preset_name: str, config) -> str:
    """The id ``train`` gives this config (it hashes the data's fingerprint too), without training. The data
    are loaded once per preset, data options and subset: a study's configs differ mostly in other fields, and
    building shapes-3head's images takes seconds."""
    key = json.dumps([preset_name, config.data, config.limit, config.seed if config.limit else None],
                     sort_keys=True, default=str)
    if key not in _fingerprints:
        data = datasets.load_training_data(preset_for(preset_name, config.data), config)
        _fingerprints[key] = data.fingerprint
    return config.model_id(_fingerprints[key])


def local_precision(config) -> str:
    """The precision ``train`` resolves this config's to on this machine."""
    import tensorflow as tf

    return choose_precision(config.precision, gpus=len(tf.config.list_physical_devices("GPU")))
