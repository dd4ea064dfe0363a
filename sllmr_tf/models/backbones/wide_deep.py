"""Wide & Deep (Cheng et al. 2016): a linear model over the ids plus an MLP over their embeddings."""
from __future__ import annotations

from sllmr_tf.models.backbones import fields as F
from sllmr_tf.models.registry import register


@register("wide_deep")
def build(inputs, vocab_sizes, config):
    vectors, linear = F.field_embeddings(inputs, vocab_sizes, config, linear=True)
    return F.sum_logits(linear, F.logit(F.deep_tower(F.flatten(vectors), config)))
