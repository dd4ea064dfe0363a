"""xDeepFM (Lian et al. 2018): linear + Compressed Interaction Network + MLP."""
from __future__ import annotations

from typing import Mapping

import tensorflow as tf

from sllmr_tf.models.backbones import fields as F
from sllmr_tf.models.config import BackboneConfig
from sllmr_tf.models.layers import CompressedInteraction


def build(inputs: Mapping[str, tf.Tensor], vocab_sizes: Mapping[str, int], config: BackboneConfig) -> tf.Tensor:
    """Linear logit + one logit over [CIN, MLP].

    Args:
        inputs, vocab_sizes: the spec's Keras inputs and table sizes (see `models.build`).
        config: reads embedding_dim, mlp_units, dropout, l2, xdeepfm_cin_units, xdeepfm_cin_split_half.

    Returns:
        The (batch, 1) logit.
    """
    vectors, linear = F.field_embeddings(inputs, vocab_sizes, config, linear=True)
    cin = CompressedInteraction(config.xdeepfm_cin_units, split_half=config.xdeepfm_cin_split_half,
                                l2=config.l2, name="cin")(vectors)
    deep = F.deep_tower(F.flatten(vectors), config)
    return F.sum_logits(linear, F.logit(tf.concat([cin, deep], axis=1)))
