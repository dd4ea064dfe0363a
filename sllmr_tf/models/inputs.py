"""Keras inputs of every backbone, derived from the one feature spec."""
from __future__ import annotations

import tensorflow as tf

from sllmr_tf import features


def model_inputs() -> dict[str, tf.Tensor]:
    """One named `tf.keras.Input` per model feature, with its spec dtype and shape."""
    return {
        f.name: tf.keras.Input(shape=f.shape, dtype=tf.dtypes.as_dtype(f.dtype), name=f.name)
        for f in features.model_features()
    }
