"""DCN (Wang et al. 2017) and DCN-V2 (Wang et al. 2021): a cross network beside an MLP.

Both stack cross layers on the flattened fields x0 and run the MLP on x0 in
parallel; the logit reads the concatenation. DCN uses the paper's vector
cross; DCN-V2 uses TFRS's `Cross` (full matrix, or low rank with a projection).
"""
from __future__ import annotations

from typing import Mapping

import tensorflow as tf
import tensorflow_recommenders as tfrs

from sllmr_tf.models.backbones import fields as F
from sllmr_tf.models.config import BackboneConfig
from sllmr_tf.models.layers import VectorCross


def _parallel(inputs, vocab_sizes, config, cross_layers):
    x0 = F.flatten(F.field_embeddings(inputs, vocab_sizes, config)[0])
    crossed = x0
    for layer in cross_layers:
        crossed = layer(x0, crossed)
    return F.logit(tf.concat([crossed, F.deep_tower(x0, config)], axis=1))


def build_dcn(inputs: Mapping[str, tf.Tensor], vocab_sizes: Mapping[str, int], config: BackboneConfig) -> tf.Tensor:
    """DCN: vector cross layers beside the MLP, one logit over both.

    Args:
        inputs, vocab_sizes: the spec's Keras inputs and table sizes (see `models.build`).
        config: reads embedding_dim, mlp_units, dropout, l2, dcn_cross_layers.

    Returns:
        The (batch, 1) logit.
    """
    layers = [VectorCross(l2=config.l2, name=f"cross_{i}") for i in range(config.dcn_cross_layers)]
    return _parallel(inputs, vocab_sizes, config, layers)


def build_dcnv2(inputs: Mapping[str, tf.Tensor], vocab_sizes: Mapping[str, int], config: BackboneConfig) -> tf.Tensor:
    """DCN-V2: TFRS matrix cross layers beside the MLP, one logit over both.

    Args:
        inputs, vocab_sizes: the spec's Keras inputs and table sizes (see `models.build`).
        config: reads embedding_dim, mlp_units, dropout, l2, dcnv2_cross_layers, dcnv2_projection_dim.

    Returns:
        The (batch, 1) logit.
    """
    regularizer = tf.keras.regularizers.l2(config.l2) if config.l2 else None
    layers = [tfrs.layers.dcn.Cross(projection_dim=config.dcnv2_projection_dim,
                                    kernel_initializer="glorot_uniform",
                                    kernel_regularizer=regularizer, name=f"cross_{i}")
              for i in range(config.dcnv2_cross_layers)]
    return _parallel(inputs, vocab_sizes, config, layers)
