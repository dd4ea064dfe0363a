"""The streaming join: each interaction batch picks up LLM pairs drawn from the whole table.

Interactions stream from the TFRecord shards batch by batch; the join is a
tf.data map over those batches against the in-memory pairs table, so no epoch
of interactions is ever held in memory and the join runs in the input
pipeline, overlapped with training.

Per batch of B examples the join draws ceil(pairs_per_example * B) pairs
uniformly from all pairs, with indices that are a pure function of (seed,
batch number), the batch's number counted across epochs (inputs.py): the join
never touches the interaction shuffle, each epoch draws other pairs, and a
resumed run draws the same pairs. Each pair is scored with its own user's features
(`PairsTable.users`), not with a batch row's, so a pair reaches training as
often as any other whatever its user's activity: the cold-start users whose
pairs targeted augmentation multiplied get them. (Drawing pairs through the
batch's own examples gave a user with two train rows about one of their ~135
scored pairs in a whole run; BUILD_NOTES.md has the measurement.)

Each batch gains `features["pairs"]`: the drawn pairs' columns (see
pairs_table.py), their items' features under "a" and "b", and their users'
user-side features under "user".
"""
from __future__ import annotations

import tensorflow as tf

from sllmr_tf.errors import ConfigError
from sllmr_tf.training.pairs_table import PairsTable

PAIRS_KEY = "pairs"


def join_pairs(batches: tf.data.Dataset, table: PairsTable, pairs_per_example: float,
               seed: int = 0) -> tf.data.Dataset:
    """`batches` yields (batch number, (features, label)); the result yields (features + pairs, label).

    Args:
        batches: numbered interaction batches (training_batches' stream before the join), the
            numbers counted across epochs.
        table: the LLM pairs (at least one).
        pairs_per_example: a batch of B examples gets ceil(pairs_per_example * B) pairs.
        seed: with the batch number, decides which pairs a batch draws.

    Returns:
        The joined stream.
    """
    if not pairs_per_example > 0:
        raise ConfigError(f"pairs_per_example must be > 0, got {pairs_per_example}")
    rows = tf.nest.map_structure(tf.constant, table.rows())
    users = {name: tf.constant(values) for name, values in table.users.items()}
    num_pairs = tf.constant(len(table), tf.int64)

    def join(batch_number: tf.Tensor, batch: tuple) -> tuple:
        feats, label = batch
        size = tf.cast(tf.size(feats["user_id"]), tf.float64)
        count = tf.cast(tf.math.ceil(pairs_per_example * size), tf.int32)
        pick = tf.random.stateless_uniform([count], seed=tf.stack([tf.constant(seed, tf.int64), batch_number]),
                                           minval=0, maxval=num_pairs, dtype=tf.int64)
        pairs = tf.nest.map_structure(lambda values: tf.gather(values, pick), rows)
        pairs["user"] = {name: tf.gather(values, pairs["user_id"]) for name, values in users.items()}
        return {**feats, PAIRS_KEY: pairs}, label

    return batches.map(join, num_parallel_calls=tf.data.AUTOTUNE)
