"""The shared embedding: one table per vocabulary, looked up by every feature using it.

`item_id` and `hist_item_ids` read the same item table (and `item_category` and
`hist_item_categories` the same category table), so what the model learns about
an item as a target also applies to it in a history. Index 0 is padding and
out-of-vocabulary. The item history defines the real positions of every history
sequence (`history_mask`): a position without an item is padding in all of
them, whatever the other sequences hold there, and padding reads as zeros.
"""
from __future__ import annotations

from typing import Mapping

import numpy as np

import tensorflow as tf

from sllmr_tf import features


@tf.keras.utils.register_keras_serializable(package="sllmr")
class FeatureEmbedding(tf.keras.layers.Layer):
    """Looks up every model feature at once: {feature: ids} -> [B, R, dim].

    Each feature gives R_f rows per example, in spec order: scalar ids one row;
    a sequence one row per position, or with `pool_sequences` one row holding the
    mean over its real positions (so R is the number of fields and the output is
    the field tensor). `split` turns the rows back into {feature: vectors}.

    The whole lookup is one fused gather-and-mean (`tf.sparse.segment_mean`)
    over the tables laid end to end, each real id adding into its row. Its
    gradient reaches the tables as one dense matrix, where per-feature gathers
    would hand the optimizer B * (4 + 2L) rows to deduplicate (BUILD_NOTES.md,
    Backbones, has the measurements).

    Tables are float32 whatever the dtype policy; the output is in the compute dtype.
    """

    def __init__(self, vocab_sizes: Mapping[str, int], dim: int, pool_sequences: bool = False,
                 l2: float = 0.0, initializer_stddev: float = 1e-4, **kwargs):
        super().__init__(**kwargs)
        self.vocab_sizes = {k: int(v) for k, v in vocab_sizes.items()}
        self.dim = int(dim)
        self.pool_sequences = bool(pool_sequences)
        self.l2 = float(l2)
        self.initializer_stddev = float(initializer_stddev)
        self._features = tuple(f for f in features.model_features() if f.vocabulary)
        self._vocabularies = tuple(sorted({f.vocabulary for f in self._features}))
        self.tables: dict[str, tf.Variable] = {}
        # Rows each feature fills per example, and for each id an example carries
        # (feature by feature, position by position) the row it is added into.
        self.rows_per_feature = tuple(
            f.shape[0] if f.shape and not self.pool_sequences else 1 for f in self._features)
        row_of_id = []
        for f, first_row in zip(self._features, np.cumsum((0,) + self.rows_per_feature)):
            length = f.shape[0] if f.shape else 1
            row_of_id.append(first_row + (np.zeros(length) if self.pool_sequences else np.arange(length)))
        self._row_of_id = np.concatenate(row_of_id).astype(np.int64)
        self._rows = int(sum(self.rows_per_feature))

    def build(self, input_shape):
        for vocabulary in self._vocabularies:
            self.tables[vocabulary] = self.add_weight(
                name=f"{vocabulary}_table",
                shape=(self.vocab_sizes[vocabulary], self.dim),
                dtype=tf.float32,
                initializer=tf.keras.initializers.RandomNormal(stddev=self.initializer_stddev),
                regularizer=tf.keras.regularizers.l2(self.l2) if self.l2 else None,
                experimental_autocast=False,
            )
        super().build(input_shape)

    def call(self, inputs: Mapping[str, tf.Tensor]) -> tf.Tensor:
        offsets = dict(zip(self._vocabularies,
                           np.cumsum([0] + [self.vocab_sizes[v] for v in self._vocabularies])))
        real = tf.cast(history_mask(inputs), tf.bool)
        columns, looked_up = [], []
        for f in self._features:
            ids = inputs[f.name]
            columns.append(tf.reshape(ids, (-1, f.shape[0] if f.shape else 1)) + offsets[f.vocabulary])
            looked_up.append(real if f.shape else tf.ones_like(columns[-1], tf.bool))
        columns, looked_up = tf.concat(columns, axis=1), tf.concat(looked_up, axis=1)  # [B, ids per example]
        batch = tf.shape(columns, out_type=tf.int64)[0]
        rows = tf.range(batch)[:, None] * self._rows + self._row_of_id
        kept = tf.where(tf.reshape(looked_up, (-1,)))[:, 0]  # padding is left out: its rows stay zero
        table = tf.concat([self.tables[v] for v in self._vocabularies], axis=0)
        vectors = tf.sparse.segment_mean(table, tf.gather(tf.reshape(columns, (-1,)), kept),
                                         tf.gather(tf.reshape(rows, (-1,)), kept),
                                         num_segments=batch * self._rows)
        return tf.cast(tf.reshape(vectors, (-1, self._rows, self.dim)), self.compute_dtype)

    def split(self, rows: tf.Tensor) -> dict[str, tf.Tensor]:
        """{feature: [B, dim] or, for unpooled sequences, [B, L, dim]} from `call`'s rows."""
        parts = tf.split(rows, self.rows_per_feature, axis=1)
        return {f.name: part if f.shape and not self.pool_sequences else part[:, 0, :]
                for f, part in zip(self._features, parts)}

    def get_config(self) -> dict:
        return {**super().get_config(), "vocab_sizes": self.vocab_sizes, "dim": self.dim,
                "pool_sequences": self.pool_sequences, "l2": self.l2,
                "initializer_stddev": self.initializer_stddev}


def history_mask(inputs: Mapping[str, tf.Tensor]) -> tf.Tensor:
    """[B, L] float mask, 1.0 where the item history (the first sequence feature) has an item."""
    positions = next(f for f in features.model_features() if f.shape)
    return tf.cast(tf.not_equal(inputs[positions.name], features.PADDING_INDEX), tf.float32)
