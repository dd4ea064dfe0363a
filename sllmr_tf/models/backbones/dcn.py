"""DCN (Wang et al. 2017) and DCN-V2 (Wang et al. 2021): a cross network beside an MLP.

Both stack cross layers on the flattened fields x0 and run the MLP on x0 in
parallel; the logit reads the concatenation. DCN uses the paper's vector
cross; DCN-V2 uses TFRS's `Cross` (full matrix, or low rank with a projection).
"""
from __future__ import annotations

import tensorflow as tf
import tensorflow_recommenders as tfrs

from sllmr_tf.models.backbones import fields as F
from sllmr_tf.models.layers import VectorCross
from sllmr_tf.models.registry import register


def _parallel(inputs, vocab_sizes, config, cross_layers):
    x0 = F.flatten(F.field_embeddings(inputs, vocab_sizes, config)[0])
    crossed = x0
    for layer in cross_layers:
        crossed = layer([x0, crossed]) if isinstance(layer, VectorCross) else layer(x0, crossed)
    return F.logit(tf.concat([crossed, F.deep_tower(x0, config)], axis=1))


@register("dcn")
def build_dcn(inputs, vocab_sizes, config):
    layers = [VectorCross(l2=config.l2, name=f"cross_{i}") for i in range(config.dcn_cross_layers)]
    return _parallel(inputs, vocab_sizes, config, layers)


@register("dcnv2")
def build_dcnv2(inputs, vocab_sizes, config):
    regularizer = tf.keras.regularizers.l2(config.l2) if config.l2 else None
    layers = [tfrs.layers.dcn.Cross(projection_dim=config.dcnv2_projection_dim,
                                    kernel_initializer="glorot_uniform",
                                    kernel_regularizer=regularizer, name=f"cross_{i}")
              for i in range(config.dcnv2_cross_layers)]
    return _parallel(inputs, vocab_sizes, config, layers)
