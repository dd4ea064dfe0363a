"""Every CTR model is built from the feature spec the same way.

A backbone family registers (models/backbones) a function from the Keras
inputs (one per model feature) to a (batch, 1) logit tensor; `build_backbone`
wraps it into a functional `tf.keras.Model`, so each family only writes its
interaction part.
"""
from __future__ import annotations

from typing import Mapping

import tensorflow as tf

from sllmr_tf import features
from sllmr_tf.errors import ConfigError
from sllmr_tf.models.backbones import BACKBONES
from sllmr_tf.models.config import BackboneConfig
from sllmr_tf.models.inputs import model_inputs


def build_backbone(name: str, vocab_sizes: Mapping[str, int],
                   config: BackboneConfig | None = None) -> tf.keras.Model:
    """The backbone `name` as a model from {model feature: ids} to one logit per example.

    Args:
        name: a registered backbone (`BACKBONES.names()`).
        vocab_sizes: each vocabulary's table size including the padding row, as
            `features.vocab_sizes(stats)` returns it.
        config: the hyper-parameters (default: the protocol's).

    Returns:
        A functional model with one input per model feature and a (batch, 1) float32 logit.

    Raises:
        ConfigError: an unknown backbone, or vocab_sizes missing a vocabulary.
    """
    builder = BACKBONES.get(name)
    missing = {f.vocabulary for f in features.model_features()} - set(vocab_sizes)
    if missing:
        raise ConfigError(f"vocab_sizes lacks the vocabularies {sorted(missing)}")
    config = config or BackboneConfig()
    inputs = model_inputs()
    # Layers take the global policy when constructed; restore it so building never leaks state.
    previous = tf.keras.mixed_precision.global_policy()
    tf.keras.mixed_precision.set_global_policy(config.dtype_policy)
    try:
        logit = builder(inputs, vocab_sizes, config)
    finally:
        tf.keras.mixed_precision.set_global_policy(previous)
    if logit.shape.rank != 2 or logit.shape[-1] != 1:
        raise AssertionError(f"backbone {name!r} returned shape {logit.shape}, not (batch, 1)")
    return tf.keras.Model(inputs=inputs, outputs=logit, name=name)
