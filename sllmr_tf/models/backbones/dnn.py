"""DNN: the concatenated field embeddings through an MLP; the plainest reference."""
from __future__ import annotations

from sllmr_tf.models.backbones import fields as F
from sllmr_tf.models.registry import register


@register("dnn")
def build(inputs, vocab_sizes, config):
    vectors, _ = F.field_embeddings(inputs, vocab_sizes, config)
    return F.logit(F.deep_tower(F.flatten(vectors), config))
