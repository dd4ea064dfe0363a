"""The shared embedding: one table per vocabulary, looked up by every feature using it.

`item_id` and `hist_item_ids` read the same item table (and `item_category` and
`hist_item_categories` the same category table), so what the model learns about
an item as a target also applies to it in a history. Index 0 is padding and
out-of-vocabulary. The item history defines the real positions of every
history sequence (`history_mask`): a position without an item is padding in all
of them, whatever the other sequences hold there.
"""
from __future__ import annotations

from typing import Mapping

import sllmr_tf  # noqa: F401  (selects tf_keras before TensorFlow loads)
import tensorflow as tf

from sllmr_tf import features


@tf.keras.utils.register_keras_serializable(package="sllmr")
class FeatureEmbedding(tf.keras.layers.Layer):
    """Maps {feature: ids} to {feature: vectors}, one table per vocabulary.

    Scalar ids (B,) give (B, dim). Sequences (B, L) give (B, L, dim) or, with
    `pool_sequences`, the mean over their real (non-zero) ids, (B, dim). The
    pooled form is one sparse-dense matmul: its gradient reaches the table as one
    dense (vocab, dim) matrix instead of B * L rows the optimizer would have to
    deduplicate, which is most of the cost of a small CTR model's training step.

    Tables are float32 whatever the dtype policy; outputs are in the compute dtype.
    """

    def __init__(self, vocab_sizes: Mapping[str, int], dim: int, pool_sequences: bool = False,
                 l2: float = 0.0, initializer_stddev: float = 0.01, **kwargs):
        super().__init__(**kwargs)
        self.vocab_sizes = {k: int(v) for k, v in vocab_sizes.items()}
        self.dim = int(dim)
        self.pool_sequences = bool(pool_sequences)
        self.l2 = float(l2)
        self.initializer_stddev = float(initializer_stddev)
        self._features = tuple(f for f in features.model_features() if f.vocabulary)
        self.tables: dict[str, tf.Variable] = {}

    def build(self, input_shape):
        for vocabulary in sorted({f.vocabulary for f in self._features}):
            self.tables[vocabulary] = self.add_weight(
                name=f"{vocabulary}_table",
                shape=(self.vocab_sizes[vocabulary], self.dim),
                dtype=tf.float32,
                initializer=tf.keras.initializers.RandomNormal(stddev=self.initializer_stddev),
                regularizer=tf.keras.regularizers.l2(self.l2) if self.l2 else None,
                experimental_autocast=False,
            )
        super().build(input_shape)

    def call(self, inputs: Mapping[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        out = {}
        real = history_mask(inputs) > 0 if self.pool_sequences else None
        for f in self._features:
            table, ids = self.tables[f.vocabulary], inputs[f.name]
            if f.shape and self.pool_sequences:
                vectors = tf.sparse.sparse_dense_matmul(_mean_weights(ids, real, table.shape[0]), table)
            else:
                vectors = tf.gather(table, ids)
            out[f.name] = tf.cast(vectors, self.compute_dtype)
        return out

    def get_config(self) -> dict:
        return {**super().get_config(), "vocab_sizes": self.vocab_sizes, "dim": self.dim,
                "pool_sequences": self.pool_sequences, "l2": self.l2,
                "initializer_stddev": self.initializer_stddev}


def _mean_weights(ids: tf.Tensor, real: tf.Tensor, vocab_size: int) -> tf.SparseTensor:
    """(B, vocab) sparse matrix whose row b averages the ids of sequence b at its real positions."""
    positions = tf.where(real)
    counts = tf.reduce_sum(tf.cast(real, tf.float32), axis=1)
    weights = tf.gather(1.0 / tf.maximum(counts, 1.0), positions[:, 0])
    columns = tf.gather_nd(ids, positions)
    batch = tf.shape(ids, out_type=tf.int64)[0]
    return tf.sparse.SparseTensor(tf.stack([positions[:, 0], columns], axis=1), weights,
                                  tf.stack([batch, vocab_size]))


def history_mask(inputs: Mapping[str, tf.Tensor]) -> tf.Tensor:
    """[B, L] float mask, 1.0 where the item history (the first sequence feature) has an item."""
    positions = next(f for f in features.model_features() if f.shape)
    return tf.cast(tf.not_equal(inputs[positions.name], features.PADDING_INDEX), tf.float32)
