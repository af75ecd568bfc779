"""Getting a fresh server ready before its first visitor (issue 16, part 3).

Importing TensorFlow takes about 5 s here, and loading and tracing a model about 1 s more. A server that waits
for a visitor to open Predict makes that visitor wait. So the app starts one :class:`Warmup` per server
process. It runs in a background thread and does what the Predict page would do for the model a first visit
opens (``ready_predictor``), saying at each stage what it is doing. The page takes the result when it is that
model, or shows the stages while the warm-up is still running.

Nothing here imports Streamlit or TensorFlow at import time. ``MTL_WARMUP=0`` turns it off (the tests do,
except those that test it).
"""

from __future__ import annotations

import gc
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

ENV = "MTL_WARMUP"
START_DELAY_S = 2.0


def enabled() -> bool:
    return os.environ.get(ENV, "1").strip() not in ("0", "false", "no", "off")


@dataclass
class Status:
    """What the warm-up is doing: the model it readies, the stage (a phrase), how long it has run, and its end."""

    key: tuple[str, str] | None
    stage: str
    seconds: float
    done: bool
    error: str | None = None


class Warmup:
    """One background job readying one model: ``start`` once, then ``status``, ``wait`` and ``take``."""

    def __init__(self):
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._hurry = threading.Event()  # a visitor is waiting: no more delay
        self._thread: threading.Thread | None = None
        self._key: tuple[str, str] | None = None
        self._stage = "not started"
        self._started = self._finished = None
        self._result = None
        self._error: str | None = None

    def start(self, key: tuple[str, str], load: Callable[[Callable[[str], None]], object], delay: float = 0.0) -> bool:
        """Run ``load(say)`` in a background thread after ``delay`` seconds, once per Warmup; ``say(stage)``
        reports its progress. False when a warm-up had already started."""
        with self._lock:
            if self._thread is not None:
                return False
            self._key, self._stage, self._started = key, "starting", time.monotonic()
            self._thread = threading.Thread(target=self._run, args=(load, delay), name="mtl-warmup", daemon=True)
            self._thread.start()
            return True

    def _run(self, load, delay: float) -> None:
        try:
            self._hurry.wait(delay)
            result = load(self._say)
            with self._lock:
                self._result, self._stage = result, "ready"
        except Exception as exc:  # noqa: BLE001  (the page loads the model itself then, and shows its error)
            with self._lock:
                self._error, self._stage = f"{type(exc).__name__}: {exc}".splitlines()[0], "failed"
        finally:
            self._finished = time.monotonic()
            self._done.set()

    def _say(self, stage: str) -> None:
        with self._lock:
            self._stage = stage

    def status(self) -> Status:
        with self._lock:
            end = self._finished if self._finished is not None else time.monotonic()
            seconds = end - self._started if self._started is not None else 0.0
            return Status(self._key, self._stage, seconds, self._done.is_set(), self._error)

    def running_for(self, key: tuple[str, str]) -> bool:
        """True while the warm-up readies this very model (a page should wait for it rather than load it twice)."""
        return self._thread is not None and self._key == key and not self._done.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the end (True) up to ``timeout`` seconds; a waiting visitor cuts the start's delay short."""
        self._hurry.set()
        return self._done.wait(timeout)

    def take(self, key: tuple[str, str]):
        """The readied object when it is for ``key``, else None (a failed warm-up, another model, still running)."""
        with self._lock:
            return self._result if self._done.is_set() and self._key == key else None


WARMUP = Warmup()  # the server process's own


_frozen = threading.Event()


def freeze_library_objects() -> None:
    """Move the objects that TensorFlow's and Keras's import made (about 360,000) out of the garbage collector's
    full scans, once per process.

    After every script run Streamlit calls ``gc.collect(2)`` (``runner.postScriptGC``) and, once Keras is
    imported, ``keras.backend.clear_session()``, which collects again. With TensorFlow loaded each of those
    took 165 ms here and held Python's lock, so the page's messages waited in the server: a switch to Predict
    drew its upload 0.9 s after the click instead of 0.15 s. Modules live as long as the process anyway;
    ``gc.freeze`` (after a collection, so no garbage is frozen) makes both scans cost about nothing. Models
    loaded later are not frozen: one evicted from the cache is still collected."""
    if _frozen.is_set():
        return
    import keras  # noqa: F401
    import tensorflow  # noqa: F401

    gc.collect()
    gc.freeze()
    _frozen.set()


def ready_predictor(model, say: Callable[[str], None] = lambda stage: None):
    """A Predictor for ``model`` (a StoredModel), traced and with its image decoders loaded, so that the first
    upload runs at full speed: what the Predict page needs, whether the warm-up or the page does it."""
    say("importing TensorFlow")
    freeze_library_objects()
    import numpy as np

    from mtl_core.engine.inference import Predictor
    from mtl_core.views.predict import predict_images

    say(f"loading the model {model.id}")
    predictor = Predictor(model)
    say(f"tracing the model {model.id}")
    blank = np.zeros(predictor.input_shape, dtype=np.float32)
    if predictor.input_kind == "image":
        predict_images(predictor, [blank, blank], ["warm-up", "warm-up"])
    predictor.predict_arrays(blank[None])
    return predictor


def start_for_first_visit(presets: list, store) -> bool:
    """Start the warm-up (when enabled) for the model a first visit opens: the default model of the preset
    that ``share.first_preset`` picks. False when it is off, already started, or there is no such model."""
    from mtl_core.views.share import first_preset

    if not enabled() or WARMUP.status().key is not None:
        return False
    name = first_preset(presets, lambda n: store.default(n) is not None)
    model = store.default(name)
    if model is None:
        return False
    # The delay lets the first page finish drawing: TensorFlow's import holds Python's lock much of the time,
    # and measured at once it slowed the first home page from 3.8 s to 5.0 s (bench/app_latency.py).
    return WARMUP.start((model.id, str(model.path)), lambda say: ready_predictor(model, say), delay=START_DELAY_S)
