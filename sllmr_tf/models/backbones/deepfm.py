"""DeepFM (Guo et al. 2017): linear + FM second-order term + MLP, sharing one embedding."""
from __future__ import annotations

from typing import Mapping

import tensorflow as tf

from sllmr_tf.models.backbones import fields as F
from sllmr_tf.models.config import BackboneConfig
from sllmr_tf.models.layers import FactorizationMachine


def build(inputs: Mapping[str, tf.Tensor], vocab_sizes: Mapping[str, int], config: BackboneConfig) -> tf.Tensor:
    """Linear + FM + MLP logits, summed.

    Args:
        inputs, vocab_sizes: the spec's Keras inputs and table sizes (see `models.build`).
        config: reads embedding_dim, mlp_units, dropout, l2.

    Returns:
        The (batch, 1) logit.
    """
    vectors, linear = F.field_embeddings(inputs, vocab_sizes, config, linear=True)
    deep = F.logit(F.deep_tower(F.flatten(vectors), config))
    return F.sum_logits(linear, FactorizationMachine(name="fm")(vectors), deep)
