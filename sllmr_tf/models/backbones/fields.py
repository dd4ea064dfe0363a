"""Pieces every backbone family shares: the field embeddings, the linear term, the deep tower.

Non-DIN families see each history sequence as one more field: the mean of the
embeddings of its real ids, so field k of every model is the same signal. With
`config.knowledge_dim` (method kar) every family gets kar's two knowledge fields
after the spec's (models/knowledge_fields.py).
"""
from __future__ import annotations

from typing import Mapping

import tensorflow as tf

from sllmr_tf.models.config import BackboneConfig
from sllmr_tf.models.embedding import FeatureEmbedding
from sllmr_tf.models.knowledge_fields import LAYER_NAME, KnowledgeFields
from sllmr_tf.models.layers import MLP


def embedding(vocab_sizes: Mapping[str, int], config: BackboneConfig, dim: int | None = None,
              pool_sequences: bool = False) -> FeatureEmbedding:
    """The model's one shared `FeatureEmbedding` (dim defaults to the config's)."""
    return FeatureEmbedding(vocab_sizes, dim or config.embedding_dim, pool_sequences=pool_sequences,
                            l2=config.l2, name="embedding")


def field_embeddings(inputs: Mapping[str, tf.Tensor], vocab_sizes: Mapping[str, int],
                     config: BackboneConfig, linear: bool = False) -> tuple[tf.Tensor, tf.Tensor | None]:
    """([B, F, D] field vectors, [B, 1] first-order term or None).

    The first-order term (a learned weight per id, summed over fields) lives in
    one extra column of the same tables: one lookup and one pooling serve both,
    and every id still has its own independent weight.
    """
    dim = config.embedding_dim
    field_tensor = embedding(vocab_sizes, config, dim=dim + int(linear), pool_sequences=True)(dict(inputs))
    extra = knowledge_fields(inputs, vocab_sizes, config, dim + int(linear))
    if extra:
        field_tensor = tf.concat([field_tensor, tf.stack(extra, axis=1)], axis=1)
    if not linear:
        return field_tensor, None
    vectors, weights = tf.split(field_tensor, [dim, 1], axis=-1)
    return vectors, tf.reduce_sum(weights, axis=1)


def knowledge_fields(inputs: Mapping[str, tf.Tensor], vocab_sizes: Mapping[str, int],
                     config: BackboneConfig, dim: int | None = None) -> list[tf.Tensor]:
    """kar's extra fields, [B, dim] each (dim defaults to the config's); none without
    `config.knowledge_dim`."""
    if not config.knowledge_dim:
        return []
    fields = KnowledgeFields(vocab_sizes["item"], config.knowledge_dim, dim or config.embedding_dim,
                             config.knowledge_adapter_units, l2=config.l2, name=LAYER_NAME)(dict(inputs))
    return tf.unstack(fields, axis=1)


def flatten(field_tensor: tf.Tensor) -> tf.Tensor:
    return tf.keras.layers.Flatten()(field_tensor)


def deep_tower(x: tf.Tensor, config: BackboneConfig) -> tf.Tensor:
    return MLP(config.mlp_units, dropout=config.dropout, l2=config.l2, name="mlp")(x)


def logit(x: tf.Tensor, name: str = "logit") -> tf.Tensor:
    """Dense to one logit, in float32 whatever the compute precision."""
    return tf.keras.layers.Dense(1, name=name, dtype="float32")(x)


def sum_logits(*terms: tf.Tensor) -> tf.Tensor:
    """Adds logit terms in float32 (terms may come from reduced-precision layers)."""
    return tf.add_n([tf.cast(t, tf.float32) for t in terms])
