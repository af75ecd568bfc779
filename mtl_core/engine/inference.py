"""Predictor: raw inputs (paths, bytes, PIL images, arrays) -> every head's output.

The model is run by ONNX Runtime when its export gives the Keras model's outputs (engine/onnx_runtime.py:
about 0.4 ms per 32x32 image on 2 CPU cores), else through a ``tf.function`` with a fixed input signature
(one trace, then about 2 ms), against about a hundred for ``model.predict``, which rebuilds its data
pipeline on every call (figures: docs/benchmarks.md). ``runtime_notes`` says which, per member.
Preprocessing is ``mtl_core.control.data.images`` plus the Standardize layer inside the model, the same
path training used.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mtl_core.control.loss_weights import heads_of, is_conditioned, resolve_weights, weights_vector
from mtl_core.control.store import ModelStore, StoredModel, sha256_file
from mtl_core.control.tasks import TaskSpec
from mtl_core.engine.batches import predict_in_batches
from mtl_core.engine.calibration import apply_temperature, temperatures
from mtl_core.errors import UserError


@dataclass
class ModelInput:
    """What the model saw for one item: the array it was given, and where it came from."""

    array: np.ndarray | None  # an image (H, W, C) in [0, 1] or a table row encoded; None: it failed
    row: dict | None = None  # a table row as read (feature -> value)
    line: int | None = None  # a CSV row's file line (the header is line 1)
    original: str = ""  # an image as given, e.g. "256×256 RGB JPEG"


@dataclass
class Prediction:
    preset: str
    model: str
    items: list[dict] = field(default_factory=list)  # the prediction JSON's items (outputs or error)
    seconds: float = 0.0
    loss_weights: dict[str, float] | None = None  # the lambda a loss-conditioned model was given
    inputs: list[ModelInput | None] = field(default_factory=list)  # per item; None where it failed to read

    @property
    def failed(self) -> int:
        return sum("error" in item for item in self.items)

    def to_dict(self) -> dict:
        out = {"preset": self.preset, "model": self.model}
        if self.loss_weights is not None:
            out["loss_weights"] = self.loss_weights
        return {**out, "predictions": self.items}


NOVELTY = "__novelty__"  # prefix of the served model's extra outputs: the novelty features (engine/novelty.py)


class Predictor:
    """A loaded model of the store (or an ensemble of several: probabilities and values averaged)."""

    def __init__(self, models: StoredModel | list[StoredModel]):
        import keras
        import tensorflow as tf

        import mtl_core.engine.models.layers  # noqa: F401  (registers the custom layers before loading)

        self.members = models if isinstance(models, list) else [models]
        first = self.members[0].card
        self.preset = first["preset"]
        self.id = "+".join(m.id for m in self.members)
        self.card = first
        self.tasks = [TaskSpec.from_dict(t) for t in first["tasks"]]
        self.input_kind = first["input"]["kind"]
        self.input_shape = tuple(first["input"]["shape"])
        # a loss-conditioned model takes lambda as a second input (mtl_core.control.loss_weights)
        self.conditioned = is_conditioned(first)
        self.lambda_heads = heads_of(first) if self.conditioned else []
        self._fns, self._models, self._explainer = [], [], None
        self.runtime_notes: list[str] = []  # per member: what runs it (ONNX Runtime or TensorFlow) and why
        for member in self.members:
            if [t["name"] for t in member.card["tasks"]] != [t.name for t in self.tasks]:
                raise UserError(f"{member.id}: its heads differ from {self.members[0].id}'s; cannot ensemble")
            if is_conditioned(member.card) != self.conditioned:
                raise UserError(f"{member.id}: cannot ensemble a loss-conditioned model with an ordinary one")
            recorded = member.card.get("model_sha256")
            if not recorded:  # nothing to verify the weights against: refused, as a Hub pull refuses it
                raise UserError(f"{member.path / 'card.json'}: records no sha256 of model.keras, so the model "
                                "cannot be verified (retrain it, or pull it again)")
            if sha256_file(member.model_file) != recorded:
                raise UserError(f"{member.model_file}: sha256 does not match its card (corrupted or replaced)")
            try:
                model = keras.saving.load_model(member.model_file, compile=False, safe_mode=True)
            except Exception as exc:  # noqa: BLE001  (Keras raises many types; the user needs one line)
                reason = str(exc).split(". ")[0].splitlines()[0][:160]
                if "lambda" in str(exc).lower():
                    reason = "it contains a Lambda layer, i.e. arbitrary code, which safe_mode refuses to run"
                raise UserError(f"{member.model_file}: cannot load under safe_mode ({reason})") from None
            # one trace for any batch size; autograph=False: a plain call needs no conversion
            image = tf.TensorSpec((None, *self.input_shape), tf.float32)
            signature = [{"input": image, "loss_weights": tf.TensorSpec((None, len(self.lambda_heads)), tf.float32)}
                         if self.conditioned else image]
            served = model
            if "novelty" in member.card:  # the shared features too, from the same forward pass (engine/novelty.py)
                from mtl_core.engine.novelty import feature_model

                outputs = dict(zip(model.output_names, model.outputs, strict=True))
                extra = feature_model(model, list(member.card["novelty"].get("head_features") or {})).output
                served = keras.Model(model.input, {**outputs, **{NOVELTY + k: v for k, v in extra.items()}})
            fn = tf.function(lambda inputs, m=served: m(inputs, training=False), input_signature=signature,
                             autograph=False)
            fast, note = None, "TensorFlow (a loss-conditioned model takes two inputs)"
            if not self.conditioned:  # ONNX Runtime when it gives the same outputs (engine/onnx_runtime.py)
                from mtl_core.control.store import mtl_home
                from mtl_core.engine import onnx_runtime

                probe = np.random.default_rng(0).random((4, *self.input_shape), dtype=np.float32)
                variant = "features" if served is not model else "plain"
                cache = mtl_home() / "cache" / "onnx" / f"{recorded}-{variant}.onnx"
                fast, note = onnx_runtime.compile_model(served, signature, cache, fn, probe, NOVELTY)
            self._fns.append(fast or fn)
            self.runtime_notes.append(note)
            self._models.append(model)

    @classmethod
    def for_preset(cls, preset: str, model: str | None = None, store: ModelStore | None = None) -> Predictor:
        """``model``: an id, a folder path, several ids joined by commas (an ensemble), or None (default)."""
        store = store or ModelStore()
        refs = [r.strip() for r in model.split(",")] if model else [None]
        return cls([store.resolve(preset, r) for r in refs])

    # -- arrays ---------------------------------------------------------------------------------
    def loss_weights(self, given: dict[str, float] | None = None) -> dict[str, float] | None:
        """The lambda a conditioned model uses for ``given`` weights (normalised; the config's by default);
        None for an ordinary model, which refuses weights with a UserError."""
        lam = resolve_weights(self.card, given)
        return lam or None

    def predict_arrays(self, x: np.ndarray, loss_weights: dict[str, float] | None = None) -> dict[str, np.ndarray]:
        """Per-head outputs for prepared inputs (N, *input_shape), averaged over ensemble members; class
        probabilities calibrated by each member's temperatures (its card's ``calibration``).
        ``loss_weights``: lambda for a loss-conditioned model (default: its config's weights)."""
        return self._forward(x, loss_weights)[0]

    def _forward(self, x: np.ndarray, loss_weights: dict[str, float] | None = None):
        """(per-head outputs as ``predict_arrays``, the first member's novelty features (engine/novelty.py
        feature_model's outputs) or None)."""
        lam = self.loss_weights(loss_weights)
        vector = weights_vector(lam, self.lambda_heads) if lam else None
        total: dict[str, np.ndarray] = {}
        features = None
        for fn, member in zip(self._fns, self.members, strict=True):
            scale = temperatures(member.card)  # each member's own calibration (engine/calibration.py)
            out = predict_in_batches(fn, x, vector)
            found = {key[len(NOVELTY):]: out.pop(key).reshape(len(x), -1)
                     for key in list(out) if key.startswith(NOVELTY)}
            if found and features is None:
                features = found
            for name, arr in out.items():
                arr = apply_temperature(arr, scale[name]) if name in scale else arr
                total[name] = total[name] + arr if name in total else arr
        return {name: total[name] / len(self._fns) for name in total}, features

    def explain_arrays(self, x: np.ndarray, loss_weights: dict[str, float] | None = None) -> dict:
        """Per-head explanations of prepared inputs (mtl_core.engine.explain): {head: (N, H, W) maps in [0, 1]}
        for images, {head: [{column: weight}]} for tables. One model only: an ensemble has no single map."""
        if len(self._models) > 1:
            raise UserError(f"--explain: {self.id} is an ensemble of {len(self._models)} models; explain one of them")
        from mtl_core.engine.explain import Explainer

        if self._explainer is None:
            self._explainer = Explainer(self._models[0], self.tasks, self.input_kind)
        lam = self.loss_weights(loss_weights)
        vector = np.tile(weights_vector(lam, self.lambda_heads), (len(x), 1)).astype(np.float32) if lam else None
        if self.input_kind == "image":
            return self._explainer.images(x, vector)
        return self._explainer.table(x, self._encoder().column_groups(), vector)

    def encode(self, x, name: str = "") -> np.ndarray:
        """Model inputs from data as a preset loads it: a table (DataFrame) is encoded with the card's
        encoder; images are already model inputs."""
        return self._encoder().encode_frame(x, name=name) if self.input_kind == "tabular" else x

    # -- raw inputs -----------------------------------------------------------------------------
    def prepare(self, source, name: str | None = None) -> np.ndarray:
        """One image (path, bytes, file, PIL image or array) as the model's input array."""
        if self.input_kind != "image":
            raise UserError(f"{self.preset}: inputs are table rows (a CSV or a dict), not images")
        from mtl_core.control.data.images import prepare_image

        h, w, c = self.input_shape
        return prepare_image(source, size=(h, w), channels=c, name=name)

    def _encoder(self):
        from mtl_core.control.data.tabular import TabularEncoder

        return TabularEncoder.from_dict(self.card["preprocessing"]["tabular"])

    def _image_items(self, source, name):
        from mtl_core.control.data.images import contrast_lost_in_grey, describe_source, load_image

        label = describe_source(source, name)
        try:
            img = load_image(source, name=label)
            original = "" if isinstance(source, np.ndarray) else \
                f"{img.width}×{img.height} {img.mode}{' ' + img.format if img.format else ''}"
            item = {"input": label}
            h, w, c = self.input_shape
            if c == 1 and img.mode not in ("1", "L", "LA", "I", "I;16", "F"):  # a colour picture for a grey model
                if (warning := contrast_lost_in_grey(img, (h, w), label)) is not None:
                    item["warnings"] = [warning]
            yield item, ModelInput(self.prepare(img, name=label), original=original)
        except UserError as exc:
            yield {"input": label, "error": str(exc)}, None

    def _row_items(self, source, name):
        """A dict is one row; anything else is a CSV whose every row becomes one item."""
        from mtl_core.control.data.tabular import csv_line, read_csv

        encoder = self._encoder()
        ragged: dict[int, str] = {}  # rows with the wrong number of fields: their own error items
        if isinstance(source, dict):
            rows, label, lines = [source], name or "<row>", [None]
        else:
            if hasattr(source, "read"):
                label = name or str(getattr(source, "name", "<csv>"))
            elif isinstance(source, (str, Path)):
                label = name or Path(source).name
            else:
                label = name or "<csv>"
            try:
                frame = read_csv(source, name=label, row_errors=ragged)
                rows, lines = frame.to_dict("records"), [csv_line(frame, i) for i in range(len(frame))]
            except UserError as exc:
                yield {"input": label, "error": str(exc)}, None
                return
        for i, (row, line) in enumerate(zip(rows, lines, strict=True)):
            where = label if line is None else f"{label}: line {line}"
            if i in ragged:
                yield {"input": where, "error": ragged[i]}, ModelInput(None, row, line=line)
                continue
            try:
                x, warnings = encoder.encode_row(row, where)
            except UserError as exc:
                yield {"input": where, "error": str(exc)}, ModelInput(None, row, line=line)
                continue
            item = {"input": where, "warnings": warnings} if warnings else {"input": where}
            yield item, ModelInput(x, row, line=line)

    def predict(self, sources: list, names: list[str] | None = None,
                loss_weights: dict[str, float] | None = None, explain: bool = False) -> Prediction:
        """Every input is tried; a bad one (an image, or one row of a CSV) becomes an ``error`` item and
        the others still run. ``loss_weights``: lambda of a loss-conditioned model (refused for an ordinary
        one); the prediction then says which lambda it used. ``explain``: each head's output gets an
        ``explanation`` (a 2-D list in [0, 1] at the image's resolution, or {column: weight} for a row)."""
        t0 = time.perf_counter()
        lam = self.loss_weights(loss_weights)  # a bad lambda fails before any input is read
        names = names or [None] * len(sources)
        items: list[dict] = []
        inputs: list[ModelInput | None] = []
        expand = self._image_items if self.input_kind == "image" else self._row_items
        for source, name in zip(sources, names, strict=True):
            for item, model_input in expand(source, name):
                items.append(item)
                inputs.append(model_input)
        good = [i for i, m in enumerate(inputs) if m is not None and m.array is not None]
        if good:
            from mtl_core.engine import novelty

            outputs, features = self._forward(np.stack([inputs[i].array for i in good]), lam)
            if features is not None:  # how far from the training data (engine/novelty.py)
                summary = self.members[0].card["novelty"]
                scores, lines = novelty.score(summary, features[novelty.SHARED]), novelty.warnings(summary, features)
            for row, i in enumerate(good):
                items[i]["outputs"] = {t.name: t.head_kind.output(t, outputs[t.name][row]) for t in self.tasks}
                if features is not None:
                    items[i]["novelty"] = {"score": round(float(scores[row]), 3),
                                           "threshold": round(summary["threshold"], 3)}
                    if lines[row]:
                        items[i]["warnings"] = [*items[i].get("warnings", []), *lines[row]]
            if explain:
                maps = self.explain_arrays(np.stack([inputs[i].array for i in good]), loss_weights)
                for row, i in enumerate(good):
                    for t in self.tasks:
                        value = maps[t.name][row]
                        items[i]["outputs"][t.name]["explanation"] = np.round(value, 4).tolist() \
                            if isinstance(value, np.ndarray) else {k: round(v, 4) for k, v in value.items()}
        shown = {h: round(w, 6) for h, w in lam.items()} if lam else None
        return Prediction(self.preset, self.id, items, time.perf_counter() - t0, shown, inputs)


def predict_fn(X: np.ndarray, model: str | None = None, preset: str = "shapes-3head",
               store: ModelStore | None = None, predictor: Predictor | None = None) -> np.ndarray:
    """The seed's interface (seed 002, section 7.3): (N,32,32) array -> (N, heads) array holding
    the class index of each classification head and the value of each regression head, in the
    preset's head order. ``model`` may name several ids joined by commas: a seed ensemble."""
    predictor = predictor or Predictor.for_preset(preset, model, store)
    X = np.asarray(X, dtype=np.float32)
    given = X.shape
    if X.ndim == len(predictor.input_shape):  # (N,32,32) for a (32,32,1) model
        X = X[..., None]
    if X.shape[1:] != predictor.input_shape:
        raise UserError(f"X: shape {given}, expected (N, {', '.join(map(str, predictor.input_shape[:-1]))})")
    out = predictor.predict_arrays(X)
    cols = [[task.head_kind.decide(v) for v in out[task.name]] for task in predictor.tasks]
    return np.asarray(cols, dtype=np.float32).T.reshape(len(X), len(cols))
