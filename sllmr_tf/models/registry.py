"""Backbones by name: every CTR model is built from the feature spec the same way.

A backbone is registered as a function from the Keras inputs (one per model
feature) to a (batch, 1) logit tensor; `build_backbone` wraps it into a
functional `tf.keras.Model`, so each family only writes its interaction part.
"""
from __future__ import annotations

from typing import Callable, Mapping

import tensorflow as tf

from sllmr_tf import features
from sllmr_tf.models.config import BackboneConfig
from sllmr_tf.models.inputs import model_inputs

Builder = Callable[[dict[str, tf.Tensor], Mapping[str, int], BackboneConfig], tf.Tensor]

_BUILDERS: dict[str, Builder] = {}


def register(name: str) -> Callable[[Builder], Builder]:
    """Decorator: make `builder(inputs, vocab_sizes, config) -> logit` available by `name`."""

    def decorate(builder: Builder) -> Builder:
        if name in _BUILDERS:
            raise ValueError(f"backbone {name!r} is registered twice")
        _BUILDERS[name] = builder
        return builder

    return decorate


def backbone_names() -> tuple[str, ...]:
    return tuple(sorted(_BUILDERS))


def build_backbone(name: str, vocab_sizes: Mapping[str, int],
                   config: BackboneConfig | None = None) -> tf.keras.Model:
    """The backbone `name` as a model from {model feature: ids} to one logit per example.

    `vocab_sizes` maps each vocabulary to its table size including the padding
    row, as `features.vocab_sizes(stats)` returns it.
    """
    if name not in _BUILDERS:
        raise ValueError(f"unknown backbone {name!r}; known: {', '.join(backbone_names())}")
    missing = {f.vocabulary for f in features.model_features()} - set(vocab_sizes)
    if missing:
        raise ValueError(f"vocab_sizes lacks the vocabularies {sorted(missing)}")
    config = config or BackboneConfig()
    inputs = model_inputs()
    # Layers take the global policy when constructed; restore it so building never leaks state.
    previous = tf.keras.mixed_precision.global_policy()
    tf.keras.mixed_precision.set_global_policy(config.dtype_policy)
    try:
        logit = _BUILDERS[name](inputs, vocab_sizes, config)
    finally:
        tf.keras.mixed_precision.set_global_policy(previous)
    if logit.shape.rank != 2 or logit.shape[-1] != 1:
        raise AssertionError(f"backbone {name!r} returned shape {logit.shape}, not (batch, 1)")
    return tf.keras.Model(inputs=inputs, outputs=logit, name=name)
