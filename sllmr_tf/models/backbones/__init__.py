"""The backbones by name: one module per family, each exposing builders from inputs to a logit.

A builder is `build(inputs, vocab_sizes, config) -> (batch, 1) logit tensor`,
with `inputs` the Keras inputs of the feature spec (models/inputs.py);
`models.build.build_backbone` wraps it into a functional model.
"""
from __future__ import annotations

from sllmr_tf.registry import Registry

BACKBONES = Registry("backbone", {
    "autoint": "sllmr_tf.models.backbones.autoint:build",
    "dcn": "sllmr_tf.models.backbones.dcn:build_dcn",
    "dcnv2": "sllmr_tf.models.backbones.dcn:build_dcnv2",
    "deepfm": "sllmr_tf.models.backbones.deepfm:build",
    "din": "sllmr_tf.models.backbones.din:build",
    "dnn": "sllmr_tf.models.backbones.dnn:build",
    "wide_deep": "sllmr_tf.models.backbones.wide_deep:build",
    "xdeepfm": "sllmr_tf.models.backbones.xdeepfm:build",
})
