"""DNN: the concatenated field embeddings through an MLP; the plainest reference."""
from __future__ import annotations

from typing import Mapping

import tensorflow as tf

from sllmr_tf.models.backbones import fields as F
from sllmr_tf.models.config import BackboneConfig


def build(inputs: Mapping[str, tf.Tensor], vocab_sizes: Mapping[str, int], config: BackboneConfig) -> tf.Tensor:
    """Field embeddings, concatenated, through the MLP.

    Args:
        inputs, vocab_sizes: the spec's Keras inputs and table sizes (see `models.build`).
        config: reads embedding_dim, mlp_units, dropout, l2.

    Returns:
        The (batch, 1) logit.
    """
    vectors, _ = F.field_embeddings(inputs, vocab_sizes, config)
    return F.logit(F.deep_tower(F.flatten(vectors), config))
