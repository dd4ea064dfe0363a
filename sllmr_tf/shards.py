"""Sharded GZIP TFRecord files: their names, which shard a user's records go to, their atomic
writer and a column reader.

Every sharded artifact (a dataset split, LLM pairs, the scorer's per-shard
logs) is named `<prefix>-<index>-of-<count><extension>` with five-digit
numbers, so shards sort in index order and a reader can tell a complete set.
Records are partitioned by user (`user_shard`), so a worker that reads shard i
of the interactions and shard i of the pairs holds the same users in both; and
shard s goes to worker s % num_workers (`worker_shards`), for training workers
and scorer processes alike.
"""
from __future__ import annotations

import hashlib
from typing import Iterable, Mapping

import numpy as np

from sllmr_tf import fileio

COMPRESSION = "GZIP"
TFRECORD_EXTENSION = ".tfrecord.gz"


def stable_hash(*parts: str | int) -> int:
    """A 64-bit hash of `parts` that is the same on every machine, process and Python version.

    The first 8 bytes (little-endian) of BLAKE2b over the parts' decimal or UTF-8
    text joined by the unit separator 0x1f. Python's own `hash` of a string
    changes from process to process, so it must never place or seed anything.
    """
    text = "\x1f".join(str(part) for part in parts).encode("utf-8")
    return int.from_bytes(hashlib.blake2b(text, digest_size=8).digest(), "little")


def user_shard(raw_user_id: str, num_shards: int) -> int:
    """The shard (0..num_shards-1) of every record of the user with this raw id (its id in the
    raw data, not its vocabulary index): `stable_hash(raw_user_id) % num_shards`."""
    return stable_hash(raw_user_id) % num_shards


def worker_shards(num_shards: int, worker_index: int, num_workers: int) -> list[int]:
    """The shards (of num_shards) that worker `worker_index` of `num_workers` reads or writes:
    worker_index, worker_index + num_workers, ... (files are the unit, as tf.data's auto-shard
    by FILE)."""
    return list(range(worker_index, num_shards, num_workers))


def shard_suffix(index: int, count: int) -> str:
    """'00002-of-00004': which shard of how many."""
    return f"{index:05d}-of-{count:05d}"


def shard_name(prefix: str, index: int, count: int, extension: str = TFRECORD_EXTENSION) -> str:
    return f"{prefix}-{shard_suffix(index, count)}{extension}"


def parse_shard_name(name: str, prefix: str, extension: str = TFRECORD_EXTENSION) -> tuple[int, int]:
    """(index, count) of a file named by `shard_name(prefix, index, count, extension)`."""
    index, _, count = name[len(prefix) + 1:-len(extension)].partition("-of-")
    return int(index), int(count)


def shard_glob(prefix: str, extension: str = TFRECORD_EXTENSION) -> str:
    return f"{prefix}-*-of-*{extension}"


class ShardWriter:
    """Writes one TFRecord shard under a temporary name, renamed into place when it closes.

    Use as a context manager: a shard that exists under its own name is complete;
    if the block raises, the temporary file is removed. A write the filesystem refuses raises
    ArtifactError naming the shard (`fileio.writing`).
    """

    def __init__(self, path: str):
        import tensorflow as tf

        self.path = path
        self._tmp = fileio.temporary_sibling(path)
        fileio.makedirs(fileio.dirname(path))
        with fileio.writing(path):
            self._writer = tf.io.TFRecordWriter(self._tmp, options=COMPRESSION)
        self.count = 0

    def write(self, record: bytes) -> None:
        with fileio.writing(self.path):
            self._writer.write(record)
        self.count += 1

    def __enter__(self) -> "ShardWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            with fileio.writing(self.path):
                self._writer.close()
                if exc_type is None:
                    fileio.rename(self._tmp, self.path, overwrite=True)
        finally:
            if fileio.exists(self._tmp):
                fileio.remove(self._tmp)


def read_columns(paths: Iterable[str], spec: Mapping, batch_size: int = 65536) -> dict[str, np.ndarray]:
    """Every record of `paths` parsed with `spec` (name -> tf.io.FixedLenFeature), as one numpy
    array per feature."""
    import tensorflow as tf

    parts: dict[str, list[np.ndarray]] = {name: [] for name in spec}
    records = tf.data.TFRecordDataset(list(paths), compression_type=COMPRESSION)
    for batch in records.batch(batch_size).map(lambda s: tf.io.parse_example(s, spec)):
        for name, value in batch.items():
            parts[name].append(value.numpy())
    return {name: np.concatenate(values) if values else
            np.zeros((0, *spec[name].shape), spec[name].dtype.as_numpy_dtype)
            for name, values in parts.items()}
