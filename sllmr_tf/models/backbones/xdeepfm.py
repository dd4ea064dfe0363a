"""xDeepFM (Lian et al. 2018): linear + Compressed Interaction Network + MLP."""
from __future__ import annotations

import tensorflow as tf

from sllmr_tf.models.backbones import fields as F
from sllmr_tf.models.layers import CompressedInteraction
from sllmr_tf.models.registry import register


@register("xdeepfm")
def build(inputs, vocab_sizes, config):
    vectors, linear = F.field_embeddings(inputs, vocab_sizes, config, linear=True)
    cin = CompressedInteraction(config.xdeepfm_cin_units, split_half=config.xdeepfm_cin_split_half,
                                l2=config.l2, name="cin")(vectors)
    deep = F.deep_tower(F.flatten(vectors), config)
    return F.sum_logits(linear, F.logit(tf.concat([cin, deep], axis=1)))
