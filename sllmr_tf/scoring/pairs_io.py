"""LLM rank pairs on disk: sharded GZIP TFRecords of features.PAIR_FEATURES.

    pairs_dir/pairs-<shard>-of-<count>.tfrecord.gz

Shards are written under a temporary name and renamed when closed, so a
shard that exists is complete.
"""
from __future__ import annotations

import glob
import os
from typing import Mapping

import numpy as np

from sllmr_tf import features

PAIRS_GLOB = "pairs-*.tfrecord.gz"


def pair_shard_path(pairs_dir: str, shard_index: int, num_shards: int) -> str:
    return os.path.join(pairs_dir, f"pairs-{shard_index:05d}-of-{num_shards:05d}.tfrecord.gz")


class PairWriter:
    """Writes one pair shard atomically: use as a context manager."""

    def __init__(self, path: str):
        import tensorflow as tf

        self.path = path
        self._tmp = path + ".tmp"
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        self._writer = tf.io.TFRecordWriter(self._tmp, options="GZIP")
        self.count = 0

    def write(self, pair: Mapping[str, object]) -> None:
        self._writer.write(features.to_example(pair, features.PAIR_FEATURES).SerializeToString())
        self.count += 1

    def __enter__(self) -> "PairWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self._writer.close()
        if exc_type is None:
            os.replace(self._tmp, self.path)
        else:
            os.remove(self._tmp)


def pair_shards(pairs_dir: str) -> list[str]:
    shards = sorted(glob.glob(os.path.join(pairs_dir, PAIRS_GLOB)))
    if not shards:
        raise FileNotFoundError(f"{pairs_dir}: no pair shards ({PAIRS_GLOB}); run sllmr-score first")
    return shards


def read_pairs(pairs_dir: str) -> dict[str, np.ndarray]:
    """All pairs as column arrays (pairs are small next to the interactions)."""
    import tensorflow as tf

    spec = features.parse_spec(features.PAIR_FEATURES)
    columns: dict[str, list[np.ndarray]] = {name: [] for name in spec}
    dataset = tf.data.TFRecordDataset(pair_shards(pairs_dir), compression_type="GZIP")
    for batch in dataset.batch(65536).map(lambda s: tf.io.parse_example(s, spec)):
        for name, value in batch.items():
            columns[name].append(value.numpy())
    return {name: (np.concatenate(parts) if parts else np.zeros(0, features.PAIR_FEATURES[0].numpy_dtype))
            for name, parts in columns.items()}
