"""Wide & Deep (Cheng et al. 2016): a linear model over the ids plus an MLP over their embeddings."""
from __future__ import annotations

from typing import Mapping

import tensorflow as tf

from sllmr_tf.models.backbones import fields as F
from sllmr_tf.models.config import BackboneConfig


def build(inputs: Mapping[str, tf.Tensor], vocab_sizes: Mapping[str, int], config: BackboneConfig) -> tf.Tensor:
    """Linear + MLP logits, summed.

    Args:
        inputs, vocab_sizes: the spec's Keras inputs and table sizes (see `models.build`).
        config: reads embedding_dim, mlp_units, dropout, l2.

    Returns:
        The (batch, 1) logit.
    """
    vectors, linear = F.field_embeddings(inputs, vocab_sizes, config, linear=True)
    return F.sum_logits(linear, F.logit(F.deep_tower(F.flatten(vectors), config)))
