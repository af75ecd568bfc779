"""The gradient-conflict monitor: at the end of every epoch, each head's loss gradient on the shared backbone,
measured on one fixed small batch of the training split, gives

- for each pair of heads, the cosine similarity of their gradients: negative is conflict (a step that helps
  one head hurts the other), near 0 is independence, positive is agreement;
- for each head, its gradient's norm: which head the backbone is mostly listening to.

A head that does not reach the backbone (behind a stop-gradient) has norm 0 and no cosine (None): it cannot
conflict. The batch is fixed (the first ``BATCH`` training examples), the model runs in inference mode (no
dropout; batch-norm statistics untouched), and the losses are the compiled ones, so an epoch's figures are
comparable with the next's and measuring changes nothing in training. Its cost (one forward and K backward
passes of a small batch per epoch) is reported beside the training time.

The same forward pass gives each head's spread: how much its output differs between the batch's examples
(the largest range of any output unit). A head whose spread is 0 gives the same answer for every input: it
has stopped learning, and seldom recovers: units that never fire get no gradient of their own, so only a
change made upstream for another head could wake them. Seen on shapes-3head: at float32 and seed 42 every
unit of the shape head's hidden layer died by epoch 3 (no image makes one positive), and the head stayed at
chance for the rest of the training.
``stalled_since`` finds such a head so the trainer can say so while it happens.
"""

from __future__ import annotations

import time
from itertools import combinations

import numpy as np

BATCH = 64
STALLED_SPREAD = 1e-6  # an output that varies less than this over the batch is the same for every example
STALLED_EPOCHS = 2  # ... for this many epochs in a row: one epoch could be a passing state


def pair_key(a: str, b: str) -> str:
    """The key of a pair of heads in events and cards: "a ~ b" (head names come from data and may hold
    any other character)."""
    return f"{a} ~ {b}"


def cosines_and_norms(grads: np.ndarray, connected: list[bool]) -> tuple[np.ndarray, np.ndarray]:
    """(K, P) gradients -> (K, K) cosine similarities (NaN where a head is detached or its gradient is 0)
    and (K,) norms."""
    norms = np.linalg.norm(grads, axis=1)
    usable = np.asarray(connected) & (norms > 0)
    unit = np.where(usable[:, None], grads / np.where(norms > 0, norms, 1.0)[:, None], np.nan)
    return np.clip(unit @ unit.T, -1.0, 1.0), norms


class ConflictMonitor:
    """Built once per training with the functional model, its per-head losses and the training split."""

    def __init__(self, model, heads: list[str], losses: dict, x, labels: dict, masks: dict | None = None):
        import tensorflow as tf

        from mtl_core.engine.weighting.combine import shared_variables
        from mtl_core.engine.weighting.model import as_loss

        self.heads = list(heads)
        self.shared = shared_variables(model)
        self.model = model
        self.losses = {h: as_loss(losses[h]) for h in self.heads}
        self.x, self.labels, self.masks = x, labels, masks
        self.seconds = 0.0
        self.history: dict = {"batch": int(len(next(iter(labels.values())))), "cosine": {}, "norm": {}}
        for a, b in combinations(self.heads, 2):
            self.history["cosine"][pair_key(a, b)] = []
        for h in self.heads:
            self.history["norm"][h] = []
        self.history["spread"] = {h: [] for h in self.heads}
        self._gradients = tf.function(self._per_head_gradients)
        self.connected: list[bool] | None = None  # known once traced

    def _per_head_gradients(self):
        import tensorflow as tf

        from mtl_core.engine.weighting.combine import flat

        with tf.GradientTape(persistent=True) as tape:
            out = self.model(self.x, training=False)
            spread = tf.stack([tf.reduce_max(tf.reduce_max(o, axis=0) - tf.reduce_min(o, axis=0))
                               for o in (tf.cast(tf.reshape(out[h], (tf.shape(out[h])[0], -1)), tf.float32)
                                         for h in self.heads)])
            losses = [tf.cast(self.losses[h](self.labels[h], out[h],
                                             sample_weight=None if self.masks is None else self.masks[h]), tf.float32)
                      for h in self.heads]
        rows, connected = [], []
        for loss in losses:
            grads = tape.gradient(loss, self.shared)
            connected.append(any(g is not None for g in grads))
            rows.append(flat([tf.zeros_like(v) if g is None else g for g, v in zip(grads, self.shared, strict=True)]))
        self.connected = connected  # a Python fact of the traced graph
        return tf.stack(rows), spread

    def measure(self) -> dict:
        """This epoch's figures, appended to ``history``: {"cosine": {pair: float | None}, "norm": {head: float}}."""
        t0 = time.perf_counter()
        grads, spread = self._gradients()
        grads = grads.numpy().astype(np.float64)
        cos, norms = cosines_and_norms(grads, self.connected)
        out: dict = {"cosine": {}, "norm": {}, "spread": {}}
        for (i, a), (j, b) in combinations(enumerate(self.heads), 2):
            value = None if np.isnan(cos[i, j]) else round(float(cos[i, j]), 6)
            out["cosine"][pair_key(a, b)] = value
            self.history["cosine"][pair_key(a, b)].append(value)
        for i, h in enumerate(self.heads):
            out["norm"][h] = float(norms[i])
            self.history["norm"][h].append(float(norms[i]))
            out["spread"][h] = float(spread[i])
            self.history["spread"][h].append(out["spread"][h])
        self.seconds += time.perf_counter() - t0
        return out

    def card(self, training_seconds: float) -> dict:
        """The card's ``history.gradients``: the per-epoch figures, what was measured, and what it cost."""
        return {**self.history, "measured_on": f"a fixed batch of {self.history['batch']} training examples, "
                                               "each head's loss gradient on the shared backbone",
                "detached": [h for h, c in zip(self.heads, self.connected or [], strict=False) if not c],
                "seconds": round(self.seconds, 3),
                "share_of_training": round(self.seconds / training_seconds, 4) if training_seconds > 0 else None}


def stalled_since(spreads: list[float]) -> int | None:
    """The 1-based epoch since which a head has given the same output for every example of the batch, when
    that has lasted the last ``STALLED_EPOCHS`` epochs or more; None while the head still tells inputs apart."""
    run = 0
    for spread in reversed(spreads):
        if spread >= STALLED_SPREAD:
            break
        run += 1
    return len(spreads) - run + 1 if run >= STALLED_EPOCHS else None


def stalled_message(head: str, since: int) -> str:
    return (f"head '{head}' has given the same output for every input since epoch {since}: it has stopped "
            "learning (its units no longer respond to the input, so they get no gradient to recover), and "
            "its answers are unlikely to improve. Retrain with another --seed; if it happens again, a lower --lr.")
