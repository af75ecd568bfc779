"""Trainer: static per-task loss weights, Adam with clipnorm, early stopping and LR reduction on the total
validation loss, one head's validation metric or every head's (engine/stopping.py), progress events;
``train`` adds the store (same config -> stored model).
"""

from __future__ import annotations

import signal
import socket
import threading
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, replace

import numpy as np

from mtl_core.control import datasets
from mtl_core.control.config import TrainConfig
from mtl_core.control.data.splits import train_statistics
from mtl_core.control.metrics import all_metrics
from mtl_core.control.modelspec import ModelSpec
from mtl_core.control.presets import preset_for
from mtl_core.control.presets.base import Dataset, Preset
from mtl_core.engine import device as device_mod
from mtl_core.engine import stopping
from mtl_core.engine.batches import predict_in_batches
from mtl_core.engine.models.plan import pretrained_report

Subscriber = Callable[[dict], None]


def log_key(heads: list[str], head: str, metric: str) -> str:
    """Keras names a metric "<output>_<metric>", except in a single-output model: just "<metric>"."""
    return metric if len(heads) == 1 else f"{head}_{metric}"


def group_logs(logs: dict, heads: list[str]) -> dict:
    """Keras logs ("val_shape_accuracy": x) -> {"train": {head: {metric: x}, "loss": x}, "val": {...}}."""
    out: dict = {"train": {}, "val": {}}
    for key, value in logs.items():
        split = "val" if key.startswith("val_") else "train"
        name = key[4:] if split == "val" else key
        if len(heads) == 1 and name != "learning_rate":
            out[split].setdefault(heads[0], {})[name] = float(value)
            if name == "loss":
                out[split]["loss"] = float(value)
            continue
        head = next((h for h in sorted(heads, key=len, reverse=True) if name.startswith(h + "_")), None)
        if head is None:
            out[split][name] = float(value)
        else:
            out[split].setdefault(head, {})[name[len(head) + 1:]] = float(value)
    return out


def normalise_history(history: dict, heads: list[str]) -> dict:
    """Keras's flat history -> {"train": {head: {metric: [per epoch]}, "loss": [...]}, "val": {...}, "lr": [...]},
    the same shape for one head or many (the app plots it per head)."""
    n = len(history.get("loss", []))
    out: dict = {"epochs": list(range(1, n + 1)), "train": {}, "val": {}, "lr": []}
    for i in range(n):
        grouped = group_logs({k: v[i] for k, v in history.items()}, heads)
        for split in ("train", "val"):
            for key, value in grouped[split].items():
                if isinstance(value, dict):
                    for metric, x in value.items():
                        out[split].setdefault(key, {}).setdefault(metric, []).append(x)
                elif key == "learning_rate":
                    out["lr"].append(value)
                else:
                    out[split].setdefault(key, []).append(value)
    return out


@dataclass
class TrainResult:
    model: object  # keras.Model, float32, inference only
    card: dict


class Trainer:
    """Trains one multi-task model of ``preset`` under ``config`` and reports progress events.

    Events (dicts, JSON-ready): ``start``, ``batch`` (every few steps), ``epoch`` (per-head train
    and validation metrics, learning rate), ``end`` (test metrics). Subscribers must be cheap.
    """

    def __init__(self, preset: Preset, config: TrainConfig, *, subscribers: list[Subscriber] = (),
                 precision: str | None = None, steps_per_execution: int = 8, strategy=None):
        self.preset = preset
        self.strategy = strategy  # a tf.distribute strategy; None: chosen from the devices (device.py)
        self.config = config
        self.subscribers = list(subscribers)
        self.precision = precision or config.precision  # an explicit argument (benches, tests) wins
        self.imputed: dict[str, int] = {}  # missing feature cells per column (tables), filled when encoded
        self._interrupted = threading.Event()  # a SIGINT noted during fit (see _interrupts_between_batches)
        self.steps_per_execution = steps_per_execution
        self.spec = ModelSpec.from_dict(config.model)
        self.heads = [h.task for h in self.spec.heads]
        self.tasks = {name: preset.task(name) for name in self.heads}
        # a conditioned model's lambda when none is given: the config's loss weights on the simplex
        total = sum(config.loss_weights.get(h, 0.0) for h in self.heads) or 1.0
        self.default_lambda = np.asarray([config.loss_weights.get(h, 0.0) / total for h in self.heads], np.float32)
        self.weighting = None  # the adaptive method (mtl_core.engine.weighting) when config.weighting != "static"
        self.partial_labels = False  # set in run(): some labels are missing (their masks are sample weights)
        self.monitor = None  # the gradient-conflict monitor (engine/conflict.py) when there are two heads or more
        self.warnings: list[dict] = []  # said while training (a "warning" event each) and kept in the card
        self.loss_weight_history: dict[str, list[float]] = {}

    def emit(self, event: dict) -> None:
        for subscriber in self.subscribers:
            subscriber(event)

    def _losses(self, target_scale: dict) -> dict:
        """Each head's loss: its task's, or for a rescaled regression head the MSE in training-split units."""
        from mtl_core.engine.models.layers import ScaledMSE

        return {n: ScaledMSE(target_scale[n][1]) if n in target_scale else t.loss for n, t in self.tasks.items()}

    def _compile(self, model, keras, target_scale: dict):
        optimizer = keras.optimizers.Adam(learning_rate=self.config.lr, clipnorm=self.config.clipnorm)
        losses = self._losses(target_scale)
        metrics = {}
        for name, task in self.tasks.items():
            if task.kind == "multiclass":
                metrics[name] = [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]
            elif task.kind == "binary":
                metrics[name] = [keras.metrics.BinaryAccuracy(name="accuracy"), keras.metrics.AUC(name="auc")]
            else:
                metrics[name] = [keras.metrics.MeanAbsoluteError(name="mae")]
        # a conditioned model's weights are per-example sample weights (mtl_core.control.loss_weights): 1 here
        weights = {h: 1.0 for h in self.heads} if self.config.conditioned else dict(self.config.loss_weights)
        # With missing labels the per-head 0/1 masks are sample weights: the metrics must be weighted by them, or
        # every unlabelled example counts as class 0 / value 0 in the curves, and early stopping, which watches
        # them, keeps the wrong epoch. A conditioned model's sample weights are K * lambda * mask: on validation
        # lambda is the same for every example, so the weighted mean is the labelled examples' own; on training
        # it weights each example by its lambda draw, independent of the example.
        weighted = self.partial_labels
        model.compile(optimizer=optimizer, loss=losses, loss_weights=weights,
                      metrics=None if weighted else metrics, weighted_metrics=metrics if weighted else None,
                      steps_per_execution=self.steps_per_execution)

    def _adaptive(self, model, keras, target_scale: dict, across_machines: bool = False):
        """The functional model trained through an adaptive weighting method (config.weighting): the same
        layers, losses, metrics and compile as static training, with a train step that asks the method."""
        from mtl_core.engine.models.distributed import MultiWorkerAdaptiveModel
        from mtl_core.engine.weighting import get_method
        from mtl_core.engine.weighting.model import AdaptiveModel

        method = get_method(self.config.weighting)(self.heads, dict(self.config.loss_weights), seed=self.config.seed,
                                                   **self.config.extra.get("weighting_options", {}))
        outputs = dict(zip(model.output_names, model.outputs, strict=True))
        model_class = MultiWorkerAdaptiveModel if across_machines else AdaptiveModel  # see models/distributed.py
        adaptive = model_class(model.input, outputs, name=model.name)
        adaptive.setup(method, self._losses(target_scale), lambda: keras.optimizers.Adam(learning_rate=self.config.lr))
        self._compile(adaptive, keras, target_scale)
        self.weighting = method
        return adaptive

    @contextmanager
    def _interrupts_between_batches(self):
        """While fit runs, Ctrl-C (and a job's cancel, which sends SIGINT) is noted and raised as a
        KeyboardInterrupt between batches (:meth:`stop_if_interrupted`), not wherever the signal lands: raised
        inside a TensorFlow call it can break TensorFlow's runtime (seen in CI: a SystemError in nest flatten,
        then SIGSEGV on the way out). Only the main thread can set a signal handler; elsewhere nothing changes."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = signal.getsignal(signal.SIGINT)
        signal.signal(signal.SIGINT, lambda signum, frame: self._interrupted.set())
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, previous)

    def stop_if_interrupted(self) -> None:
        if self._interrupted.is_set():
            raise KeyboardInterrupt

    def _callbacks(self, keras, n_batches: int):
        cfg = self.config
        first = []  # callbacks that add the monitored figure to the logs, ahead of those that read it
        if cfg.monitor == "loss":  # the weighted total validation loss
            monitor, mode = "val_loss", "min"
        elif cfg.monitor == "heads":  # every head's error relative to chance, averaged (engine/stopping.py)
            monitor, mode = stopping.KEY, "min"
            keys = {h: ("val_" + log_key(self.heads, h, self.tasks[h].primary_metric[0]),
                        self.tasks[h].primary_metric[1]) for h in self.heads}
            first.append(stopping.heads_error_callback(keras, keys, self.chance_errors))
        else:
            metric, mode = self.tasks[cfg.monitor].primary_metric
            monitor = "val_" + log_key(self.heads, cfg.monitor, metric)
        trainer = self

        class Events(keras.callbacks.Callback):
            epoch = 0

            def on_epoch_begin(self, epoch, logs=None):
                trainer.stop_if_interrupted()
                self.epoch, self.t0 = epoch, time.perf_counter()

            def on_train_batch_end(self, batch, logs=None):
                trainer.stop_if_interrupted()
                trainer.emit({"event": "batch", "epoch": self.epoch + 1, "epochs": cfg.epochs,
                              "batch": min(batch + 1, n_batches), "batches": n_batches,
                              "loss": float((logs or {}).get("loss", float("nan")))})

            def on_epoch_end(self, epoch, logs=None):
                grouped = group_logs(logs or {}, trainer.heads)
                lr = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
                extra = {}
                if trainer.weighting is not None:  # the epoch's mean effective weights (static x adaptive)
                    extra["loss_weights"] = trainer.weighting.end_epoch()
                    for head, w in extra["loss_weights"].items():
                        trainer.loss_weight_history.setdefault(head, []).append(w)
                if trainer.monitor is not None:
                    extra["gradients"] = trainer.monitor.measure()
                trainer.emit({"event": "epoch", "epoch": epoch + 1, "epochs": cfg.epochs, "lr": lr,
                              "seconds": round(time.perf_counter() - self.t0, 3), **grouped, **extra})
                if trainer.monitor is not None:
                    trainer.warn_of_stalled_heads()

        events = Events()
        return [
            *first,
            keras.callbacks.EarlyStopping(monitor=monitor, mode=mode, patience=cfg.patience,
                                          restore_best_weights=True),
            keras.callbacks.ReduceLROnPlateau(monitor=monitor, mode=mode, factor=cfg.lr_factor,
                                              patience=cfg.lr_patience, min_lr=cfg.min_lr),
            events,
        ]

    def _datasets(self, tf, x: np.ndarray, labels: dict, weights: dict | None, split):
        """tf.data pipelines; ``weights`` (per-head 0/1 masks) only when some labels are missing."""
        def make(idx, shuffle):
            parts = (x[idx], {k: labels[k][idx] for k in self.heads})
            if weights is not None:
                parts = (*parts, {k: weights[k][idx] for k in self.heads})
            ds = tf.data.Dataset.from_tensor_slices(parts).cache()
            if shuffle:
                ds = ds.shuffle(len(idx), seed=self.config.seed, reshuffle_each_iteration=True)
            ds = ds.batch(self.config.batch_size)
            if self.config.conditioned:  # lambda per example for training, the default lambda for validation
                from mtl_core.engine import conditioned as cond

                ds = (cond.sample_weights_dataset(ds, self.heads, self.config.seed) if shuffle else
                      cond.fixed_weights_dataset(ds, self.default_lambda, self.heads))
            return ds.prefetch(tf.data.AUTOTUNE)

        return make(split.train, True), make(split.val, False)

    def _inputs(self, data: Dataset, split) -> tuple[np.ndarray, ModelSpec, object, object, dict]:
        """Model-ready inputs, the spec with its real input width, normalisation, and the preprocessing
        to save with the model; everything fitted on the training split only."""
        if self.preset.input_kind == "tabular":
            from mtl_core.control.data.tabular import TabularEncoder

            encoder = TabularEncoder.fit(data.x.iloc[split.train], list(data.x.columns), name=data.source)
            self.imputed = encoder.missing_counts(data.x)  # cells filled with the training median / mode
            x = encoder.encode_frame(data.x, name=data.source)
            spec = replace(self.spec, input_shape=(encoder.width,))
            return x, spec, 0.0, 1.0, {"tabular": encoder.to_dict()}
        if not self.spec.extra.get("standardize", True):  # e.g. an `app:` backbone: it preprocesses [0, 1] itself
            return data.x, self.spec, 0.0, 1.0, {}
        mean, std = train_statistics(data.x[split.train], per_feature=False)
        return data.x, self.spec, mean, std, {}

    def _targets(self, data: Dataset, split) -> tuple[dict, dict | None, dict]:
        """Labels with missing entries filled, per-head masks (None when nothing is missing), and the
        training-split (mean, std) of each linear regression head (see Rescale/ScaledMSE)."""
        labels, masks, scale = {}, {}, {}
        for name, task in self.tasks.items():
            y = np.asarray(data.y[name])
            values = y.astype(np.float64)  # missing: NaN for a regression target, -1 (or NaN) for a class
            present = task.head_kind.known(values)
            labels[name] = np.where(present, y, 0).astype(np.float32 if not task.head_kind.classes else np.int32)
            masks[name] = present.astype(np.float32)
            head = self.spec.head(name)
            if not task.head_kind.classes and not head.output_activation:
                known = y[split.train][present[split.train]].astype(np.float64)
                scale[name] = (float(known.mean()), float(known.std() + 1e-6))
        if not any(m[split.train].sum() for m in masks.values()):
            raise ValueError("no labels at all in the training split")
        return labels, (masks if any((m == 0).any() for m in masks.values()) else None), scale

    def run(self, data: Dataset) -> TrainResult:
        import keras
        import tensorflow as tf

        from mtl_core.engine.models import distributed
        from mtl_core.engine.models.builder import build_model

        cfg = self.config
        dev = device_mod.describe_device()
        precision = device_mod.choose_precision(self.precision, gpus=dev["count"] if dev["kind"] == "GPU" else 0)
        split = datasets.split(self.preset, data, cfg)
        x, spec, mean, std, preprocessing = self._inputs(data, split)
        labels, weights, target_scale = self._targets(data, split)
        self.chance_errors = stopping.chance_errors(self.tasks, labels, weights, np.asarray(split.train))
        self.partial_labels = weights is not None  # some head has missing labels: masks as sample weights
        keras.utils.set_random_seed(cfg.seed)
        strategy = self.strategy or device_mod.distribution_strategy(dev)
        across_machines = distributed.spans_machines(strategy)  # Keras needs help there (distributed.py)
        dev = {**dev, "replicas": int(strategy.num_replicas_in_sync),
               "strategy": "MultiWorkerMirroredStrategy" if across_machines else type(strategy).__name__.lstrip("_")}
        if dev["replicas"] > 1:  # Keras's multi-step loop fails under MirroredStrategy (TF 2.21): one step per call
            self.steps_per_execution = 1
        with strategy.scope():  # variables (model, optimizer, adaptive weights) mirrored on every replica
            previous_policy = keras.config.dtype_policy()
            keras.config.set_dtype_policy(precision)
            try:
                model = build_model(spec, self.tasks, mean, std, target_scale, conditioned=cfg.conditioned)
            finally:
                keras.config.set_dtype_policy(previous_policy)
            net = model  # the functional model; an adaptive method trains it through a subclass sharing its layers
            if cfg.weighting == "static":
                if across_machines:
                    outputs = dict(zip(model.output_names, model.outputs, strict=True))
                    model = distributed.MultiWorkerModel(model.input, outputs, name=model.name)
                self._compile(model, keras, target_scale)
            else:
                model = self._adaptive(model, keras, target_scale, across_machines)
        train_ds, val_ds = self._datasets(tf, x, labels, weights, split)
        if len(self.heads) > 1:
            self.monitor = self._conflict_monitor(net, x, labels, weights, split, target_scale)
        n_batches = int(np.ceil(len(split.train) / cfg.batch_size))
        self.emit({"event": "start", "preset": self.preset.name, "epochs": cfg.epochs, "batches": n_batches,
                   "sizes": split.sizes(), "device": dev, "precision": precision})
        t0 = time.perf_counter()
        with self._interrupts_between_batches():
            history = model.fit(train_ds, validation_data=val_ds, epochs=cfg.epochs, verbose=0, shuffle=False,
                                callbacks=self._callbacks(keras, n_batches))
        seconds = time.perf_counter() - t0
        epochs_run = len(history.history.get("loss", []))

        # The stored model is float32 whatever the training precision: it runs on any machine.
        inference = build_model(spec, self.tasks, mean, std, target_scale, conditioned=cfg.conditioned)
        inference.set_weights(net.get_weights())
        metrics, predictions, truth = {}, {}, {}
        lam = self.default_lambda if cfg.conditioned else None
        for part in ("val", "test"):
            idx = getattr(split, part)
            name = "validation" if part == "val" else "test"
            predictions[name] = predict_in_batches(inference, x[idx], lam)
            truth[name] = {k: data.y[k][idx] for k in self.heads}
        from mtl_core.engine.calibration import apply_temperature, calibrate

        calibration = calibrate(self.tasks.values(), truth, predictions)  # temperatures fitted on validation
        for name, pred in predictions.items():  # the metrics of the model as the Predictor serves it: calibrated
            served = {h: apply_temperature(p, calibration[h]["temperature"]) if h in calibration else p
                      for h, p in pred.items()}
            metrics[name] = all_metrics(self.tasks, truth[name], served, with_details=True)
        unlike = self._novelty(inference, x, data, split, lam)
        baselines = {}
        if self.preset.sklearn_baselines:
            from mtl_core.engine.baselines import sklearn_baselines

            baselines = sklearn_baselines(self.tasks, x, data.y, split, seed=cfg.seed)
        summary = {h: {k: v for k, v in m.items() if k != "confusion_matrix"} for h, m in metrics["test"].items()}
        self.emit({"event": "end", "metrics": summary, "seconds": round(seconds, 2),
                   "epochs_run": epochs_run})
        card = {
            "preset": self.preset.name,
            "config": cfg.to_dict(),
            "tasks": [t.to_dict() for t in self.tasks.values()],
            "input": {"kind": self.preset.input_kind, "shape": list(spec.input_shape)},
            "normalisation": {"mean": mean, "std": std,
                              "computed_on": "training split" if spec.extra.get("standardize", True)
                              else "none (the backbone applies its own input preprocessing)"},
            "pretrained": pretrained_report(model),
            "preprocessing": preprocessing,
            "target_scale": target_scale,
            "data": {"source": data.source, "fingerprint": data.fingerprint, "sizes": split.sizes(), **data.notes}
            | ({"imputed": self.imputed} if self.imputed else {}),
            "metrics": metrics,
            "calibration": calibration,
            "novelty": unlike,
            "history": normalise_history(history.history, self.heads)
            | ({"loss_weights": self.loss_weight_history} if self.weighting is not None else {})
            | ({"gradients": self.monitor.card(seconds)} if self.monitor is not None else {}),
            "training": {"device": dev, "precision": precision, "seconds": round(seconds, 2),
                         "node": {"host": socket.gethostname(), "cluster": None},  # remote.py: the node's
                         "epochs_run": epochs_run, "warnings": self.warnings,
                         "examples_per_second": round(len(split.train) * epochs_run / seconds, 1)},
            "reference": self.preset.reference,
            "baselines": baselines,
        }
        if cfg.conditioned:
            card["conditioned"] = self._lambda_grid(inference, x, data, split)
        return TrainResult(inference, card)

    def _novelty(self, model, x, data: Dataset, split, lam) -> dict:
        """The card's ``novelty``: the training split's shared features (engine/novelty.py), each head's own
        features on its labelled examples, and for a head with missing labels the shared features of its own."""
        from mtl_core.engine import novelty

        layer = novelty.feature_layer(model)
        net = novelty.feature_model(model, self.heads)  # built once for both splits
        train, val = (novelty.features(net, x[idx], lam) for idx in (split.train, split.val))
        summary = novelty.fit(train[novelty.SHARED], val[novelty.SHARED], layer)
        for name, task in self.tasks.items():
            known = {part: task.head_kind.known(np.asarray(data.y[name][getattr(split, part)], np.float64))
                     for part in ("train", "val")}
            if known["train"].sum() < 2 or known["val"].sum() < 1:
                continue
            summary.setdefault("head_features", {})[name] = novelty.fit(
                train[name][known["train"]], val[name][known["val"]], f"the input of the {name} output layer")
            if not known["train"].all():
                summary.setdefault("heads", {})[name] = novelty.fit(
                    train[novelty.SHARED][known["train"]], val[novelty.SHARED][known["val"]], layer)
        return summary

    def warn_of_stalled_heads(self) -> None:
        """Once per head: a head that gives the same output for every input has stopped learning (conflict.py)."""
        from mtl_core.engine.conflict import stalled_message, stalled_since

        for head, spreads in self.monitor.history["spread"].items():
            since = stalled_since(spreads)
            if since is not None and not any(w["head"] == head for w in self.warnings):
                warning = {"kind": "stalled_head", "head": head, "epoch": since,
                           "message": stalled_message(head, since)}
                self.warnings.append(warning)
                self.emit({"event": "warning", **warning})

    def _conflict_monitor(self, net, x, labels: dict, masks: dict | None, split, target_scale: dict):
        """The monitor on a fixed batch: the first examples of the training split (at the default lambda for a
        conditioned model)."""
        from mtl_core.engine.batches import model_inputs
        from mtl_core.engine.conflict import BATCH, ConflictMonitor

        idx = np.sort(split.train)[:BATCH]
        inputs = model_inputs(x[idx], self.default_lambda if self.config.conditioned else None)
        return ConflictMonitor(net, self.heads, self._losses(target_scale), inputs,
                               {h: labels[h][idx] for h in self.heads},
                               None if masks is None else {h: masks[h][idx] for h in self.heads})

    def _lambda_grid(self, model, x, data: Dataset, split) -> dict:
        """Validation metrics of a conditioned model on the lambda grid, for the card."""
        from mtl_core.engine import conditioned as cond

        t0 = time.perf_counter()
        grid = cond.grid_metrics(model, self.tasks, x[split.val], {k: data.y[k][split.val] for k in self.heads},
                                 self.heads)
        return {"heads": self.heads, "default": dict(zip(self.heads, map(float, self.default_lambda), strict=True)),
                "sampling": f"Dirichlet({cond.DIRICHLET_ALPHA:g}) per example; loss sum_i K*lambda_i*L_i",
                "grid_split": "validation", "grid_seconds": round(time.perf_counter() - t0, 2), "grid": grid}


def train(preset_name: str, config: TrainConfig, *, store=None, subscribers: list[Subscriber] = (),
          force: bool = False, cluster=None) -> tuple[str, dict, bool]:
    """Train ``config`` or return the stored model of the same config: (model id, card, cached).

    A model pulled from the Hub is never the answer (its card says what it was trained on, not that it was):
    the training replaces it. ``force`` trains again and replaces whatever is stored."""
    from mtl_core.control.store import ModelStore

    store = store or ModelStore()
    preset = preset_for(preset_name, config.data)
    data = datasets.load_training_data(preset, config)
    model_id = config.model_id(data.fingerprint)
    found = store.find(model_id)
    if not force and found is not None and store.is_cache_hit(found):
        return model_id, found.card, True
    if cluster is not None:  # a Ray task trains it (engine/remote.py); the model comes back into this store
        from mtl_core.engine import remote

        blob, card = remote.train_one(Trainer, preset_name, config, data, cluster, list(subscribers))
        return model_id, store.save_file(model_id, blob, card, replace=force or found is not None), False
    result = Trainer(preset, config, subscribers=list(subscribers)).run(data)
    card = store.save(model_id, result.model, result.card, replace=force or found is not None)
    return model_id, card, False
