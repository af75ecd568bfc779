"""Single-image prediction latency: the Predictor against the usual ways of calling a Keras model.

Prints p50/p95 in milliseconds for one 32x32 shapes-3head image through ``model.predict``, an eager
``model(x)`` call, the TensorFlow path's model call (a ``tf.function`` with a fixed input signature),
the same with XLA, the Predictor's model call (ONNX Runtime, engine/onnx_runtime.py) and ONNX Runtime on
one thread, the Predictor end to end from PNG bytes to the prediction dict on both paths, and the same network
in PyTorch eager (when torch is installed: requirements-bench.txt), with each one's ratio to ``model.predict``;
and the largest difference between the two paths' outputs on 64 images.

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
from mtl_core.control.store import mtl_home  # noqa: E402
from mtl_core.engine import onnx_runtime  # noqa: E402
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


def torch_rows(predictor, x: np.ndarray, runs: int) -> list:
    """The same network in PyTorch eager (bench/peer_torch.py's TorchNet: the ModelSpec, random weights), one
    image per call under ``torch.inference_mode``: the peer's model call. Empty when torch is not installed."""
    try:
        import torch

        from bench.peer_torch import TorchNet
    except ImportError:
        print("PyTorch eager: not measured (torch is not installed: pip install -r requirements-bench.txt)")
        return []
    from mtl_core.control.modelspec import ModelSpec
    from mtl_core.control.presets import get_preset

    spec = ModelSpec.from_dict(predictor.card["config"]["model"])
    preset = get_preset("shapes-3head")
    net = TorchNet(spec, {t.name: t for t in preset.tasks}, 0.0, 1.0, {}).eval()
    image = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))

    def call():
        with torch.inference_mode():
            net(image)

    return [(f"model call: PyTorch {torch.__version__} eager, {torch.get_num_threads()} threads",
             timings(call, runs))]


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

    os.environ[onnx_runtime.ENV] = "tensorflow"  # the same model on the TensorFlow path, for the same run
    tf_predictor = Predictor.for_preset("shapes-3head", args.model)
    del os.environ[onnx_runtime.ENV]

    print(f"machine: {machine()}; load average {os.getloadavg()[0]:.2f}")
    print(f"model: {predictor.id}, one image of 32x32 px, {args.runs} runs each (model.predict: fewer, it is slow)")
    print(f"Predictor runtime: {predictor.runtime_notes[0]}")
    batch = generate_shapes(64, seed=8)[0][..., None].astype("float32")
    fast, slow = predictor.predict_arrays(batch), tf_predictor.predict_arrays(batch)
    worst = max(float(np.max(np.abs(fast[h] - slow[h]))) for h in slow)
    print(f"outputs of 64 images, ONNX Runtime against TensorFlow: largest difference {worst:.2g}")
    import onnxruntime as ort
    import tensorflow as tf

    signature = [tf.TensorSpec((1, 32, 32, 1), tf.float32)]
    xla = tf.function(lambda i: model(i, training=False), input_signature=signature, autograph=False,
                      jit_compile=True)
    one_thread = ort.SessionOptions()
    one_thread.intra_op_num_threads = 1
    cached = sorted((mtl_home() / "cache" / "onnx").glob(f"{predictor.card['model_sha256']}-*.onnx"))
    session = ort.InferenceSession(str(cached[0]), one_thread, providers=["CPUExecutionProvider"])
    feed = {session.get_inputs()[0].name: x}
    rows = [
        ("keras model.predict(x)", timings(lambda: model.predict(x, verbose=0), max(args.runs // 10, 20))),
        ("keras eager model(x)", timings(lambda: model(x, training=False), args.runs)),
        ("model call: tf.function (TensorFlow path)", timings(lambda: tf_predictor._fns[0](x), args.runs)),
        ("model call: tf.function with XLA (jit_compile)", timings(lambda: xla(x), args.runs)),
        ("model call: ONNX Runtime (Predictor's path)", timings(lambda: predictor._fns[0](x), args.runs)),
        ("model call: ONNX Runtime, one thread", timings(lambda: session.run(None, feed), args.runs)),
        ("Predictor.predict_arrays (calibrated)", timings(lambda: predictor.predict_arrays(x), args.runs)),
        ("Predictor PNG bytes -> prediction dict", timings(lambda: predictor.predict([png]).to_dict(), args.runs)),
        ("the same on the TensorFlow path", timings(lambda: tf_predictor.predict([png]).to_dict(), args.runs)),
    ]
    rows += torch_rows(predictor, x, args.runs)
    base = np.median(rows[0][1])
    print(f"{'path':<46} {'p50 ms':>8} {'p95 ms':>8} {'speed-up vs predict':>20}")
    for name, t in rows:
        p50, p95 = np.percentile(t, 50), np.percentile(t, 95)
        print(f"{name:<46} {p50:8.3f} {p95:8.3f} {base / p50:19.1f}x")


if __name__ == "__main__":
    main()
