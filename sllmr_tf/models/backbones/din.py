"""DIN (Zhou et al. 2018): the history pooled by its relevance to the target item.

Each history sequence is paired with the target feature of the same vocabulary
(hist_item_ids with item_id, hist_item_categories with item_category); their
concatenations are the keys and the query of the local activation unit. The
remaining scalar fields (with kar's knowledge fields) and the pooled interest
feed the MLP.
"""
from __future__ import annotations

from typing import Mapping

import tensorflow as tf

from sllmr_tf import features
from sllmr_tf.models.backbones import fields as F
from sllmr_tf.models.config import BackboneConfig
from sllmr_tf.models.embedding import history_mask
from sllmr_tf.models.layers import LocalActivationPooling


def _query_key_pairs() -> list[tuple[str, str]]:
    model = features.model_features()
    targets = {f.vocabulary: f.name for f in model if f.item_side and not f.shape}
    return [(targets[f.vocabulary], f.name) for f in model if f.shape]


def build(inputs: Mapping[str, tf.Tensor], vocab_sizes: Mapping[str, int], config: BackboneConfig) -> tf.Tensor:
    """The MLP over the scalar fields and the history pooled by local activation.

    Args:
        inputs, vocab_sizes: the spec's Keras inputs and table sizes (see `models.build`).
        config: reads embedding_dim, mlp_units, dropout, l2, din_attention_units, din_attention_activation.

    Returns:
        The (batch, 1) logit.
    """
    layer = F.embedding(vocab_sizes, config)
    embedded = layer.split(layer(dict(inputs)))
    pairs = _query_key_pairs()
    query = tf.concat([embedded[q] for q, _ in pairs], axis=-1)
    keys = tf.concat([embedded[k] for _, k in pairs], axis=-1)
    interest = LocalActivationPooling(config.din_attention_units,
                                      activation=config.din_attention_activation,
                                      l2=config.l2, name="local_activation")(
        [query, keys, history_mask(inputs)])
    scalars = [embedded[f.name] for f in features.model_features() if not f.shape]
    scalars += F.knowledge_fields(inputs, vocab_sizes, config)
    deep = F.deep_tower(tf.concat(scalars + [interest], axis=-1), config)
    return F.logit(deep)
