"""DeepFM (Guo et al. 2017): linear + FM second-order term + MLP, sharing one embedding."""
from __future__ import annotations

from sllmr_tf.models.backbones import fields as F
from sllmr_tf.models.layers import FactorizationMachine
from sllmr_tf.models.registry import register


@register("deepfm")
def build(inputs, vocab_sizes, config):
    vectors, linear = F.field_embeddings(inputs, vocab_sizes, config, linear=True)
    deep = F.logit(F.deep_tower(F.flatten(vectors), config))
    return F.sum_logits(linear, FactorizationMachine(name="fm")(vectors), deep)
