"""AutoInt+ (Song et al. 2019): self-attentive field interactions beside an MLP.

The protocol's MLP runs in parallel (the paper's AutoInt+), so every family
has the same deep tower; the logit reads both.
"""
from __future__ import annotations

from typing import Mapping

import tensorflow as tf

from sllmr_tf.models.backbones import fields as F
from sllmr_tf.models.config import BackboneConfig
from sllmr_tf.models.layers import SelfAttentionInteraction


def build(inputs: Mapping[str, tf.Tensor], vocab_sizes: Mapping[str, int], config: BackboneConfig) -> tf.Tensor:
    """One logit over [interacting layers, MLP].

    Args:
        inputs, vocab_sizes: the spec's Keras inputs and table sizes (see `models.build`).
        config: reads embedding_dim, mlp_units, dropout, l2, autoint_*.

    Returns:
        The (batch, 1) logit.
    """
    field_tensor, _ = F.field_embeddings(inputs, vocab_sizes, config)
    attended = field_tensor
    for i in range(config.autoint_layers):
        attended = SelfAttentionInteraction(
            size=config.autoint_attention_size, heads=config.autoint_heads,
            residual=config.autoint_residual, l2=config.l2, name=f"interacting_{i}")(attended)
    deep = F.deep_tower(F.flatten(field_tensor), config)
    return F.logit(tf.concat([F.flatten(attended), deep], axis=1))
