"""Progress subscribers for the CLI: a bar on stderr and a JSON-lines event file."""

from __future__ import annotations

import json
import sys
import time


class ProgressBar:
    """One redrawn line per epoch on a terminal; one line per finished epoch when stderr is a file."""

    def __init__(self, stream=None, width: int = 24):
        self.stream = stream or sys.stderr
        self.width = width
        self.tty = self.stream.isatty()
        self.last_draw = 0.0

    def _metrics_line(self, event: dict) -> str:
        parts = []
        for head, values in event.get("val", {}).items():
            if isinstance(values, dict):
                shown = [f"{k} {v:.3f}" for k, v in values.items() if k != "loss"]
                parts.append(f"{head}: {', '.join(shown)}")
        return " | ".join(parts)

    def __call__(self, event: dict) -> None:
        kind = event["event"]
        if kind == "start":
            dev = event["device"]
            self.stream.write(f"training {event['preset']} on {dev['kind']} ({dev['name']}), "
                              f"{event['precision']}, sizes {event['sizes']}\n")
        elif kind == "batch" and self.tty and time.perf_counter() - self.last_draw > 0.1:
            self.last_draw = time.perf_counter()
            done = int(self.width * event["batch"] / max(event["batches"], 1))
            self.stream.write(f"\repoch {event['epoch']}/{event['epochs']} [{'#' * done}{'.' * (self.width - done)}] "
                              f"loss {event['loss']:.4f}")
        elif kind == "epoch":
            prefix = "\r" if self.tty else ""
            self.stream.write(f"{prefix}epoch {event['epoch']}/{event['epochs']} ({event['seconds']:.1f}s) "
                              f"val {self._metrics_line(event)}\033[K\n" if self.tty else
                              f"epoch {event['epoch']}/{event['epochs']} ({event['seconds']:.1f}s) "
                              f"val {self._metrics_line(event)}\n")
        elif kind == "warning":
            self.stream.write(f"{chr(13) if self.tty else ''}warning: {event['message']}\n")
        elif kind == "end":
            self.stream.write(f"done in {event['seconds']:.1f}s after {event['epochs_run']} epochs\n")
        self.stream.flush()


class EventFile:
    """Appends each event as one JSON line (the app and job runner read these)."""

    def __init__(self, path: str):
        self.path = path

    def __call__(self, event: dict) -> None:
        with open(self.path, "a") as fh:
            fh.write(json.dumps({"time": round(time.time(), 3), **event}) + "\n")
