"""The input pipelines of training and evaluation: shards -> batches (-> joined pairs).

A training epoch is a pure function of (seed, epoch): its shuffle is seeded by
both, and its batches are numbered globally (epoch * steps_per_epoch + batch),
which is what the pair join draws by. So a run that BackupAndRestore resumes
at epoch e reads exactly the batches an uninterrupted run reads in epoch e.
Keras makes a new iterator of the training dataset each epoch; the epoch the
iterator reads is a variable (`EpochCounter` sets it between epochs), read
once when the iterator starts. Under a multi-worker strategy Keras makes one
iterator for the whole run, so each worker's input repeats its own shards and
numbers its batches on from the epoch it started at: a resumed multi-worker run
is deterministic given where it resumed, not equal to an uninterrupted one.
"""
from __future__ import annotations

import math

import tensorflow as tf

from sllmr_tf.data.dataset_dir import DatasetDir
from sllmr_tf.data.pipeline import make_dataset
from sllmr_tf.training.join import join_pairs
from sllmr_tf.training.pairs_table import PairsTable


def interaction_batches(data_dir: str, split: str, batch_size: int, shuffle: bool = False,
                        seed: int | tf.Tensor | None = None, shuffle_buffer: int = 10_000, worker_index: int = 0,
                        num_workers: int = 1) -> tf.data.Dataset:
    """(features, label) batches of a split (of worker_index's shards among num_workers);
    features include the side features."""
    batches = make_dataset(data_dir, split, batch_size, shuffle=shuffle, seed=seed,
                           shuffle_buffer=shuffle_buffer, deterministic=True, worker_index=worker_index,
                           num_workers=num_workers)
    return batches.map(_split_label, num_parallel_calls=tf.data.AUTOTUNE)


def training_batches(data_dir: str, batch_size: int, seed: int, table: PairsTable | None,
                     pairs_per_example: float, shuffle_buffer: int = 10_000,
                     epoch: int | tf.Variable = 0, steps: int | None = None, worker_index: int = 0,
                     num_workers: int = 1) -> tf.data.Dataset:
    """One epoch of shuffled train batches (of worker_index's shards among num_workers), joined
    with pairs when the method uses them (`table`: that worker's pairs).

    Args:
        data_dir: a prepared dataset directory.
        batch_size: examples per batch.
        seed: the run's seed; with the epoch it decides the shuffle and the pairs drawn.
        table: the LLM pairs, or None for a method without pairs.
        pairs_per_example: pairs drawn per example (see join.py).
        shuffle_buffer: examples in the shuffle buffer.
        epoch: which epoch (0-based) each iterator reads; a tf.Variable (int64) is read anew
            by each iterator when it starts.
        steps: batches per epoch (`distribution.Placement.steps`); None: one pass over the
            train split at batch_size.
        worker_index, num_workers: this worker's shards; with several workers the input
            repeats them without end (Keras takes `steps` per epoch).

    Returns:
        One worker: a dataset of `steps` (features, label) batches. Several: endless batches.
    """
    if steps is None:
        steps = math.ceil(DatasetDir(data_dir).stats["splits"]["train"]["examples"] / batch_size)

    def one_epoch(epoch: tf.Tensor) -> tf.data.Dataset:
        epoch_seed = tf.random.stateless_uniform([], tf.stack([tf.constant(seed, tf.int64), epoch]),
                                                 minval=None, maxval=None, dtype=tf.int64)
        # tf.data checks a seed against (0, 0) in Python, which a tensor seed fails under the
        # graph seed 0 (seed 0 runs); without a graph seed here, each shuffle's seed pair is
        # (TensorFlow's default graph seed, epoch_seed) whatever the process's seed.
        tf.random.set_seed(None)
        batches = interaction_batches(data_dir, "train", batch_size, shuffle=True, seed=epoch_seed,
                                      shuffle_buffer=shuffle_buffer, worker_index=worker_index,
                                      num_workers=num_workers)
        if num_workers > 1:
            batches = batches.repeat()  # every worker takes the same number of steps
        return batches.enumerate(start=epoch * steps)  # global batch numbers

    epochs = tf.data.Dataset.range(1).map(lambda _: tf.convert_to_tensor(epoch, tf.int64))
    numbered = epochs.flat_map(one_epoch)
    if table is not None:
        batches = join_pairs(numbered, table, pairs_per_example, seed=seed)
    else:
        batches = numbered.map(lambda _, batch: batch)
    if num_workers == 1:
        batches = batches.apply(tf.data.experimental.assert_cardinality(steps))
    return batches.prefetch(tf.data.AUTOTUNE)


class EpochCounter(tf.keras.callbacks.Callback):
    """Sets `training_batches`' epoch variable before each epoch's iterator starts.

    Keras creates an epoch's iterator after `on_train_begin` (where BackupAndRestore, listed
    before this callback, has restored the optimizer) and after the previous `on_epoch_end`,
    so those two set it: the epochs the optimizer's steps complete, then epoch + 1.
    """

    def __init__(self, epoch: tf.Variable, steps: int):
        super().__init__()
        self.epoch, self.steps = epoch, steps

    def on_train_begin(self, logs=None):
        self.epoch.assign(int(self.model.optimizer.iterations.numpy()) // self.steps)

    def on_epoch_begin(self, epoch, logs=None):
        if int(self.epoch.numpy()) != epoch:  # the input read another epoch than Keras trains
            raise RuntimeError(f"the training input is at epoch {int(self.epoch.numpy())}, Keras at {epoch}")

    def on_epoch_end(self, epoch, logs=None):
        self.epoch.assign(epoch + 1)


def _split_label(batch: dict) -> tuple[dict, tf.Tensor]:
    batch = dict(batch)
    label = batch.pop("label")
    return batch, label
