"""The one place that imports TensorFlow and segmentation-models, configured the same way everywhere."""

import contextlib
import os
from functools import cache


@cache
def tf():
    """TensorFlow in legacy tf.keras mode (what segmentation-models 1.0.1 needs), GPUs grown on demand."""
    os.environ.setdefault("SM_FRAMEWORK", "tf.keras")
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow

    for gpu in tensorflow.config.list_physical_devices("GPU"):
        # Share the GPU politely with Fiji and other processes instead of grabbing all its memory.
        tensorflow.config.experimental.set_memory_growth(gpu, True)
    return tensorflow


@cache
def sm():
    """segmentation_models, imported after TensorFlow is configured."""
    tf()
    with open(os.devnull, "w") as quiet, contextlib.redirect_stdout(quiet):  # its import prints a banner
        import segmentation_models

    return segmentation_models
