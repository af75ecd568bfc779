"""The Predictor's fast path: the served Keras model exported to ONNX and run by ONNX Runtime (issue 16, part 2).

Keras 3 exports a model to ONNX itself (``model.export(path, format="onnx")``, through tf2onnx on the
TensorFlow backend). On this 2-core CPU the shipped shapes-3head model answers one 32x32 image in 0.41 ms
(p50) under ONNX Runtime, against 1.8 ms through the Predictor's ``tf.function``
(``python bench/predict_latency.py``).

- The export happens once per model file: the ``.onnx`` file is cached under ``MTL_HOME/cache/onnx/``,
  named by the model's sha256, and written atomically.
- Before it is used, a session must give the Keras model's outputs on a probe batch within ``TOLERANCE``
  (absolute). Otherwise, or when the export or the runtime fails, the Predictor keeps TensorFlow and says
  why in ``Predictor.runtime_note``.
- A loss-conditioned model (two inputs) keeps TensorFlow, and so does a machine with a GPU (only the CPU
  provider is used here). ``MTL_RUNTIME=tensorflow`` keeps it for every model.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import sys
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np

ENV = "MTL_RUNTIME"
TOLERANCE = 1e-5  # the bound on the outputs against the Keras model's
FEATURE_TOLERANCE = 1e-4  # the novelty features (engine/novelty.py): larger values, relative bound


def wanted() -> str | None:
    """Why ONNX Runtime is not used, or None when it may be."""
    choice = os.environ.get(ENV, "auto").strip().lower()
    if choice in ("tensorflow", "tf"):
        return f"{ENV}={choice}"
    if importlib.util.find_spec("onnxruntime") is None or importlib.util.find_spec("tf2onnx") is None:
        return "onnxruntime or tf2onnx is not installed (pip install -r requirements.txt)"
    import tensorflow as tf

    if tf.config.list_physical_devices("GPU"):  # batches on the GPU beat ONNX Runtime's CPU provider
        return "a GPU is there"
    return None


def _export(served, signature, path: Path) -> None:
    """``served.export`` to ``path`` atomically; tf2onnx's chatter goes to stderr, never to stdout (--json)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=path.parent) as folder:
        partial = Path(folder) / path.name
        with contextlib.redirect_stdout(sys.stderr), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Keras's tf2onnx shim warns about NumPy's removed aliases
            served.export(str(partial), format="onnx", verbose=False, input_signature=signature)
        os.replace(partial, path)


def compile_model(served, signature: list, cache_file: Path, reference: Callable, probe: np.ndarray,
                  feature_prefix: str) -> tuple[Callable | None, str]:
    """(a callable like ``reference``: an array -> {output name: array}, or None; a note saying what was
    chosen and why). ``reference`` is the TensorFlow path the result must agree with on ``probe``."""
    reason = wanted()
    if reason is not None:
        return None, f"TensorFlow ({reason})"
    try:
        import onnxruntime as ort

        if not cache_file.exists():
            _export(served, signature, cache_file)
        options = ort.SessionOptions()
        options.log_severity_level = 3  # errors only
        session = ort.InferenceSession(str(cache_file), options, providers=["CPUExecutionProvider"])
        input_name = session.get_inputs()[0].name
        names = [o.name for o in session.get_outputs()]

        def run(x):
            return dict(zip(names, session.run(None, {input_name: np.asarray(x, np.float32)}), strict=True))

        want = {k: np.asarray(v) for k, v in reference(probe).items()}
        got = run(probe)
        if set(got) != set(want):
            return None, f"TensorFlow (the ONNX model's outputs {sorted(got)} are not the model's {sorted(want)})"
        for name, value in want.items():
            feature = name.startswith(feature_prefix)
            scale = max(1.0, float(np.max(np.abs(value)))) if feature else 1.0
            error = float(np.max(np.abs(got[name] - value))) / scale
            if error > (FEATURE_TOLERANCE if feature else TOLERANCE):
                return None, f"TensorFlow (ONNX Runtime differs from the Keras model by {error:.2g} on {name})"
        return run, f"ONNX Runtime {ort.__version__} (outputs within {TOLERANCE:g} of the Keras model's)"
    except Exception as exc:  # noqa: BLE001  (any failure leaves the TensorFlow path, which always works)
        first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
        return None, f"TensorFlow (the ONNX path failed: {type(exc).__name__}{': ' + first if first else ''})"
