"""Where a float32 training step's time could go down: the preset's network, one Keras train step (batch 64)
compiled plainly, with XLA (``jit_compile=True``), and with TensorFlow's oneDNN kernels switched the other way
from this machine's default (TensorFlow turns them on by default only on CPUs with AVX-512 VNNI/BF16 or AMX;
``TF_ENABLE_ONEDNN_OPTS`` must be set before TensorFlow starts, so that variant runs in a child process).

Prints the median of 30 steps per variant and each one's ratio to the plain step, measured in one run.

    python bench/step_variants.py [--preset shapes-3head] [--steps 30]
"""

import argparse
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def step_ms(preset_name: str, jit: bool, steps: int) -> float:
    """Median ms of ``steps`` train steps on random inputs and labels of the preset's shapes."""
    import keras
    import numpy as np

    from mtl_core.control.presets import get_preset
    from mtl_core.engine.models.builder import build_model

    preset = get_preset(preset_name)
    tasks = {t.name: t for t in preset.tasks}
    rng = np.random.default_rng(0)
    x = rng.random((64, *preset.model.input_shape)).astype("float32")
    y = {n: (rng.integers(0, t.head_kind.units(t), 64) if t.head_kind.classes and t.kind == "multiclass"
             else rng.random((64, 1)).astype("float32")) for n, t in tasks.items()}
    keras.utils.set_random_seed(0)
    model = build_model(preset.model, tasks)
    model.compile(optimizer=keras.optimizers.Adam(1e-3, clipnorm=1.0), loss={n: t.loss for n, t in tasks.items()},
                  jit_compile=jit)
    for _ in range(3):  # tracing and the first runs
        model.train_on_batch(x, y)
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        model.train_on_batch(x, y)
        times.append(time.perf_counter() - t0)
    return 1000 * float(np.median(times))


def onednn_enabled() -> bool:
    """Whether this process's TensorFlow runs oneDNN's kernels (a private TensorFlow function: no public one)."""
    import tensorflow  # noqa: F401
    from tensorflow.python.util import _pywrap_util_port

    return bool(_pywrap_util_port.IsMklEnabled())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--preset", default="shapes-3head")
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:  # the variant with oneDNN switched the other way (the parent set it), in its own process
        print(step_ms(args.preset, False, args.steps))
        return

    from bench._machine import machine

    # TensorFlow is imported here, before step_ms imports mtl_core.engine (which would turn oneDNN on): this
    # process measures TensorFlow's own default, the child the other setting
    on = onednn_enabled()
    print(f"machine: {machine()}; load average {os.getloadavg()[0]:.2f}")
    print(f"{args.preset}: one train step, batch 64, float32, median of {args.steps}\n")
    rows = [(f"plain (TensorFlow's default here: oneDNN {'on' if on else 'off'})",
             step_ms(args.preset, False, args.steps)),
            ("XLA (jit_compile=True)", step_ms(args.preset, True, args.steps))]
    flip = "0" if on else "1"
    child = subprocess.run([sys.executable, __file__, "--preset", args.preset, "--steps", str(args.steps), "--child"],
                           capture_output=True, text=True, env={**os.environ, "TF_ENABLE_ONEDNN_OPTS": flip},
                           check=True)
    rows.append((f"oneDNN {'off' if on else 'on'} (TF_ENABLE_ONEDNN_OPTS={flip})",
                 float(child.stdout.strip().splitlines()[-1])))
    base = rows[0][1]
    print(f"{'variant':<42} {'ms / step':>10} {'vs plain':>9}")
    for name, ms in rows:
        print(f"{name:<42} {ms:10.1f} {base / ms:8.2f}x")


if __name__ == "__main__":
    main()
