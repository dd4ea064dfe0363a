"""CTR backbones built from the feature spec, by name.

    from sllmr_tf.models import build_backbone, backbone_names, BackboneConfig
    model = build_backbone("din", features.vocab_sizes(stats))
    logits = model({name: ids for name in model.input_names})  # (batch, 1)
"""
from sllmr_tf.models import backbones  # noqa: F401  (registers every family)
from sllmr_tf.models.config import BackboneConfig
from sllmr_tf.models.registry import backbone_names, build_backbone, register

__all__ = ["BackboneConfig", "backbone_names", "build_backbone", "register"]
