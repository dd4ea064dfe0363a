"""kar's extra fields: the language model's knowledge of the items, adapted into the backbone.

A frozen table holds one language-model vector per item (row 0, padding, is zero;
training/knowledge.py fills it). Two fields come out of it, each through its own
small trainable adapter (KAR's knowledge adaptation network):

    item field     adapter_item(v[item_id])
    profile field  adapter_profile(normalise(sum of v[h] over the real hist_item_ids))

The profile is built from the example's own history, the items before the event,
rather than looked up by user: a user's profile of all train positives would hold
the very item a train positive is about (a label leak a test example never has),
and a user the table has never seen still gets a profile from the history a request
carries; no history reads as the zero vector. Both fields are keyed by ids the
serving signature already takes, so a kar export needs no extra input.

The table is a non-trainable weight: it lives in the backbone's checkpoint and in
the SavedModel's variables, and a restored backbone needs no knowledge dir.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

import tensorflow as tf

from sllmr_tf.errors import ArtifactError
from sllmr_tf.models.embedding import history_mask
from sllmr_tf.models.layers import MLP

LAYER_NAME = "knowledge"
_TARGET, _HISTORY = "item_id", "hist_item_ids"


@tf.keras.utils.register_keras_serializable(package="sllmr")
class KnowledgeFields(tf.keras.layers.Layer):
    """{model feature: ids} -> [B, 2, dim]: the target item's knowledge field and the history's
    profile field, each the adapter of a frozen language-model vector."""

    def __init__(self, num_items: int, knowledge_dim: int, dim: int, adapter_units: Sequence[int] = (128,),
                 l2: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        self.num_items = int(num_items)
        self.knowledge_dim = int(knowledge_dim)
        self.dim = int(dim)
        self.adapter_units = tuple(int(u) for u in adapter_units)
        self.l2 = float(l2)
        regularizer = tf.keras.regularizers.l2(l2) if l2 else None
        self._adapters = [
            tf.keras.Sequential([MLP(self.adapter_units, l2=l2, name="mlp"),
                                 tf.keras.layers.Dense(self.dim, kernel_regularizer=regularizer, name="out")],
                                name=f"{kind}_adapter")
            for kind in ("item", "profile")]

    def build(self, input_shape):
        self.table = self.add_weight(name="item_knowledge", shape=(self.num_items, self.knowledge_dim),
                                     dtype=tf.float32, initializer="zeros", trainable=False,
                                     experimental_autocast=False)
        super().build(input_shape)

    def call(self, inputs: Mapping[str, tf.Tensor]) -> tf.Tensor:
        item = tf.gather(self.table, inputs[_TARGET])
        history = tf.gather(self.table, inputs[_HISTORY]) * history_mask(inputs)[:, :, None]
        profile = tf.math.l2_normalize(tf.reduce_sum(history, axis=1), axis=1)  # zero stays zero
        fields = [adapter(tf.cast(vector, self.compute_dtype))
                  for adapter, vector in zip(self._adapters, (item, profile))]
        return tf.stack(fields, axis=1)

    def get_config(self) -> dict:
        return {**super().get_config(), "num_items": self.num_items, "knowledge_dim": self.knowledge_dim,
                "dim": self.dim, "adapter_units": self.adapter_units, "l2": self.l2}


def set_item_knowledge(backbone: tf.keras.Model, table: np.ndarray) -> None:
    """Fill a kar backbone's frozen table with the items' vectors.

    Args:
        backbone: a model built with `BackboneConfig.knowledge_dim` > 0.
        table: [item vocabulary size, knowledge_dim] float32, row k the vector of item index k.

    Raises:
        ArtifactError: the table's shape is not the backbone's.
    """
    variable = backbone.get_layer(LAYER_NAME).table
    if tuple(table.shape) != tuple(variable.shape):
        raise ArtifactError(f"item knowledge of shape {tuple(table.shape)} does not fit the backbone's table "
                            f"{tuple(variable.shape)} (items x vector width); remake the knowledge dir")
    variable.assign(table.astype(np.float32))
