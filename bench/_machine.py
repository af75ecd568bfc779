"""What a benchmark ran on, printed with every result."""

import os
import platform


def machine() -> str:
    import tensorflow as tf

    from mtl_core.engine.device import cpu_name

    cpu = cpu_name()

    gpus = tf.config.list_physical_devices("GPU")
    return (f"{cpu}, {os.cpu_count()} cores, {'GPU: ' + str(len(gpus)) if gpus else 'no GPU'}, "
            f"TensorFlow {tf.__version__}, Python {platform.python_version()}")
