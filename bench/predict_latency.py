"""Single-image prediction latency: the Predictor against the usual ways of calling a Keras model.

Prints p50/p95 in milliseconds for one 32x32 shapes-3head image through
``model.predict``, an eager ``model(x)`` call, the Predictor's model call (a ``tf.function``
with a fixed input signature) and the Predictor end to end from PNG bytes to the prediction
dict, with each one's ratio to ``model.predict``.

    python bench/predict_latency.py [--model ID] [--runs 500]
"""

import argparse
import io
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from bench._machine import machine  # noqa: E402
from mtl_core.control.data.shapes import generate_shapes  # noqa: E402
from mtl_core.engine.inference import Predictor  # noqa: E402


def timings(fn, runs: int, warmup: int = 5) -> np.ndarray:
    for _ in range(warmup):
        fn()
    out = np.empty(runs)
    for i in range(runs):
        t0 = time.perf_counter()
        fn()
        out[i] = (time.perf_counter() - t0) * 1000
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model")
    ap.add_argument("--runs", type=int, default=500)
    args = ap.parse_args()
    predictor = Predictor.for_preset("shapes-3head", args.model)
    model = keras.saving.load_model(predictor.members[0].model_file, compile=False, safe_mode=True)
    x_img, _ = generate_shapes(1, seed=7)
    x = x_img[..., None].astype("float32")
    buf = io.BytesIO()
    Image.fromarray((x_img[0] * 255).round().astype("uint8")).save(buf, format="PNG")
    png = buf.getvalue()

    print(f"machine: {machine()}")
    print(f"model: {predictor.id}, one image of 32x32 px, {args.runs} runs each (model.predict: fewer, it is slow)")
    rows = [
        ("keras model.predict(x)", timings(lambda: model.predict(x, verbose=0), max(args.runs // 10, 20))),
        ("keras eager model(x)", timings(lambda: model(x, training=False), args.runs)),
        ("Predictor model call (tf.function)", timings(lambda: predictor.predict_arrays(x), args.runs)),
        ("Predictor PNG bytes -> prediction dict", timings(lambda: predictor.predict([png]).to_dict(), args.runs)),
    ]
    base = np.median(rows[0][1])
    print(f"{'path':<42} {'p50 ms':>8} {'p95 ms':>8} {'speed-up vs predict':>20}")
    for name, t in rows:
        p50, p95 = np.percentile(t, 50), np.percentile(t, 95)
        print(f"{name:<42} {p50:8.3f} {p95:8.3f} {base / p50:19.1f}x")


if __name__ == "__main__":
    main()
