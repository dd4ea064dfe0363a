"""The streaming join: each interaction batch picks up LLM pairs of its own users.

Interactions stream from the TFRecord shards batch by batch; the join is a
tf.data map over those batches against the in-memory pairs table (CSR by
user), so no epoch of interactions is ever held in memory and the join runs in
the input pipeline, overlapped with training.

Per batch of B examples the join fills ceil(pairs_per_example * B) pair slots
with pairs of the batch's users: the slots go to the examples whose user has
pairs, in batch order (the batch is shuffled), cycling when there are fewer such
examples, so one example receives at most ceil(pairs_per_example) pairs. The
k-th slot of an example takes the user's pair (r + k) mod count, with r a
per-example random draw that is a pure function of (seed, batch number): the
join never touches the interaction shuffle, and a pair is not repeated within
one example until the user's pairs run out. Examples that receive no pair train
with BCE alone.

Each batch gains `features["pairs"]`: the chosen pairs' columns (see
pairs_table.py) plus `row`, the batch row whose user-side features score them.
"""
from __future__ import annotations

import math

import tensorflow as tf

from sllmr_tf.training.pairs_table import PairsTable

PAIRS_KEY = "pairs"


def join_pairs(batches: tf.data.Dataset, table: PairsTable, pairs_per_example: float,
               seed: int = 0) -> tf.data.Dataset:
    """`batches` yields (features, label); the result yields (features + pairs, label)."""
    if not pairs_per_example > 0:
        raise ValueError(f"pairs_per_example must be > 0, got {pairs_per_example}")
    offsets = tf.constant(table.offsets, tf.int64)
    columns = {name: tf.constant(values) for name, values in table.columns.items()}
    sides = {side: {name: tf.constant(values) for name, values in cols.items()}
             for side, cols in table.sides.items()}
    per_example_cap = math.ceil(pairs_per_example)

    def join(batch_number: tf.Tensor, batch: tuple) -> tuple:
        feats, label = batch
        users = feats["user_id"]
        size = tf.size(users, out_type=tf.int64)
        start = tf.gather(offsets, users)
        count = tf.gather(offsets, users + 1) - start
        candidates = tf.where(count > 0)[:, 0]
        num_candidates = tf.size(candidates, out_type=tf.int64)
        wanted = tf.cast(tf.math.ceil(pairs_per_example * tf.cast(size, tf.float64)), tf.int64)
        slots = tf.range(tf.minimum(wanted, num_candidates * per_example_cap))
        divisor = tf.maximum(num_candidates, 1)
        row = tf.gather(candidates, slots % divisor)
        draw = tf.random.stateless_uniform([size], seed=tf.stack([tf.constant(seed, tf.int64), batch_number]),
                                           minval=0, maxval=2 ** 62, dtype=tf.int64)
        pair = tf.gather(start, row) + (tf.gather(draw, row) + slots // divisor) % tf.gather(count, row)
        pairs = {name: tf.gather(values, pair) for name, values in columns.items()}
        pairs.update({side: {name: tf.gather(values, pair) for name, values in cols.items()}
                      for side, cols in sides.items()})
        pairs["row"] = row
        return {**feats, PAIRS_KEY: pairs}, label

    return batches.enumerate().map(join, num_parallel_calls=tf.data.AUTOTUNE)
