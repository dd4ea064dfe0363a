"""Held-out outcomes for the gate: a fixed slice of train that the backbone never fits.

The gate learns "does the LLM's order agree with the observed outcome" from
pairs whose outcome is known: a train item of the user against an item the
user never had. When the backbone fits those train items, its own agreement
with the LLM predicts that label almost perfectly (gate AUC 0.98 on
MovieLens), so the gate learns "trust the LLM where the backbone already
agrees", not how reliable the LLM is where the backbone has to guess.

With a holdout fraction f, the train rows (user, item) in a fixed hash slice
of size f leave the BCE, and the gate learns only from known-outcome pairs
whose train item is in that slice: outcomes the backbone must predict like
those of any unknown pair. The slice is a pure function of (user, item, seed),
so it is the same in every epoch, after a resume and in every pair that
contains the item. The held-out items still appear in later examples' histories.
"""
from __future__ import annotations

import sllmr_tf  # noqa: F401  (selects tf_keras before TensorFlow loads)
import tensorflow as tf

from sllmr_tf import features

_BUCKETS = 1 << 24


def in_holdout(user_id: tf.Tensor, item_id: tf.Tensor, fraction: float, seed: int) -> tf.Tensor:
    """bool, same shape: whether each (user, item) lies in the held-out slice."""
    keys = tf.strings.join([tf.strings.as_string(user_id), tf.strings.as_string(item_id)],
                           separator=f"/{seed}/")
    return tf.strings.to_hash_bucket_fast(keys, _BUCKETS) < int(round(fraction * _BUCKETS))


def train_item_of_pair(pairs: dict) -> tf.Tensor:
    """The item of each known-outcome pair that the user has in train (a if the LLM agreed)."""
    return tf.where(tf.equal(pairs["outcome"], 1), pairs["a"]["item_id"], pairs["b"]["item_id"])


def outcome_known(pairs: dict) -> tf.Tensor:
    return tf.not_equal(pairs["outcome"], features.OUTCOME_UNKNOWN)
