"""The input pipelines of training and evaluation: shards -> batches (-> joined pairs)."""
from __future__ import annotations

import tensorflow as tf

from sllmr_tf.data.pipeline import make_dataset
from sllmr_tf.training.join import join_pairs
from sllmr_tf.training.pairs_table import PairsTable


def interaction_batches(data_dir: str, split: str, batch_size: int, shuffle: bool = False,
                        seed: int | None = None, shuffle_buffer: int = 10_000, worker_index: int = 0,
                        num_workers: int = 1) -> tf.data.Dataset:
    """(features, label) batches of a split (of worker_index's shards among num_workers);
    features include the side features."""
    batches = make_dataset(data_dir, split, batch_size, shuffle=shuffle, seed=seed,
                           shuffle_buffer=shuffle_buffer, deterministic=True, worker_index=worker_index,
                           num_workers=num_workers)
    return batches.map(_split_label, num_parallel_calls=tf.data.AUTOTUNE)


def training_batches(data_dir: str, batch_size: int, seed: int, table: PairsTable | None,
                     pairs_per_example: float, shuffle_buffer: int = 10_000, worker_index: int = 0,
                     num_workers: int = 1) -> tf.data.Dataset:
    """Shuffled train batches (of worker_index's shards among num_workers), joined with pairs
    when the method uses them (`table`: that worker's pairs)."""
    batches = interaction_batches(data_dir, "train", batch_size, shuffle=True, seed=seed,
                                  shuffle_buffer=shuffle_buffer, worker_index=worker_index,
                                  num_workers=num_workers)
    if table is not None:
        batches = join_pairs(batches, table, pairs_per_example, seed=seed)
    return batches.prefetch(tf.data.AUTOTUNE)


def _split_label(batch: dict) -> tuple[dict, tf.Tensor]:
    batch = dict(batch)
    label = batch.pop("label")
    return batch, label
