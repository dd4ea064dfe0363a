"""sllmr-tf: Selective LLM-Guided Regularization for TensorFlow recommenders.

TensorFlow Recommenders needs Keras 2, so the whole training stack runs on
`tf_keras`. The switch must be set before TensorFlow is first imported and it
is set here, once: every module of the package is imported through this file.
"""
import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

__version__ = "0.1.0"
