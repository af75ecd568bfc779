"""Training throughput: mtl_core's Trainer against a plain float32 ``keras.Model.fit``.

Same architecture (shapes-3head), data, split, batch size, epochs and validation, in one run.
Prints images/s of each (median over epochs 2..E, the first epoch includes tracing) and the
ratio, plus both models' test metrics so a speed-up that costs accuracy shows.

    python bench/train_speed.py [--epochs 6] [--n 3000]
"""

import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402

from bench._machine import machine  # noqa: E402
from mtl_core.control.config import make_config  # noqa: E402
from mtl_core.control.data.splits import stratified_split, train_statistics  # noqa: E402
from mtl_core.control.datasets import load_training_data  # noqa: E402
from mtl_core.control.metrics import all_metrics  # noqa: E402
from mtl_core.control.modelspec import ModelSpec  # noqa: E402
from mtl_core.control.presets import get_preset  # noqa: E402
from mtl_core.engine.batches import predict_in_batches  # noqa: E402
from mtl_core.engine.models.builder import build_model  # noqa: E402
from mtl_core.engine.training import Trainer  # noqa: E402


class EpochTimer(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        self.seconds = []

    def on_epoch_begin(self, epoch, logs=None):
        self.t0 = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self.t0)


def summarize(metrics):
    return ", ".join(f"{h} {m.get('accuracy', m.get('mae')):.3f}" for h, m in metrics.items())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--n", type=int, default=3000)
    args = ap.parse_args()
    preset = get_preset("shapes-3head")
    config = make_config(preset, epochs=args.epochs, patience=10**6, lr_patience=10**6,
                         data={**preset.data_defaults, "n": args.n})
    data = load_training_data(preset, config)
    split = stratified_split(data.y["shape"], len(data), seed=config.seed)
    tasks = preset.tasks_by_name
    heads = preset.task_names
    y = {k: data.y[k] for k in heads}
    test_true = {k: v[split.test] for k, v in y.items()}
    print(f"machine: {machine()}")
    print(f"data: {len(split.train)} train / {len(split.val)} val images, batch {config.batch_size}, "
          f"{args.epochs} epochs")

    # Baseline: the plain way, float32, arrays straight into fit.
    keras.utils.set_random_seed(config.seed)
    mean, std = train_statistics(data.x[split.train], per_feature=False)
    plain = build_model(ModelSpec.from_dict(config.model), tasks, mean, std)
    plain.compile(optimizer=keras.optimizers.Adam(config.lr, clipnorm=config.clipnorm),
                  loss={k: tasks[k].loss for k in heads}, loss_weights=config.loss_weights,
                  metrics={k: ["accuracy"] if tasks[k].kind == "multiclass" else ["mae"] for k in heads})
    timer = EpochTimer()
    plain.fit(data.x[split.train], {k: v[split.train] for k, v in y.items()},
              validation_data=(data.x[split.val], {k: v[split.val] for k, v in y.items()}),
              batch_size=config.batch_size, epochs=args.epochs, verbose=0, callbacks=[timer])
    plain_ips = len(split.train) / statistics.median(timer.seconds[1:] or timer.seconds)
    plain_metrics = all_metrics(tasks, test_true, predict_in_batches(plain, data.x[split.test]))

    # mtl_core: the Trainer as the CLI runs it (precision chosen for this CPU, tf.data, steps_per_execution).
    seconds = []
    trainer = Trainer(preset, config, subscribers=[lambda e: e["event"] == "epoch" and seconds.append(e["seconds"])])
    result = trainer.run(data)
    ours_ips = len(split.train) / statistics.median(seconds[1:] or seconds)
    ours_metrics = result.card["metrics"]["test"]

    print(f"plain keras fit (float32):            {plain_ips:8.0f} images/s   test: {summarize(plain_metrics)}")
    print(f"mtl_core Trainer ({result.card['training']['precision']}): {ours_ips:8.0f} images/s   "
          f"test: {summarize({h: m for h, m in ours_metrics.items()})}")
    print(f"ratio mtl_core / plain: {ours_ips / plain_ips:.2f}x")


if __name__ == "__main__":
    main()
