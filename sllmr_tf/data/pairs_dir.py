"""The pairs directory contract between `sllmr-score` and `sllmr-train`.

    pairs_dir/
      pairs-<s>-of-<n>.tfrecord.gz    LLM rank pairs (features.PAIR_FEATURES) of the users of data
                                      shard s of the dataset's n shards (shards.user_shard)
      summary-<j>-of-<m>.json         scorer process j of m: its counts (lists, answers, pairs), the
                                      data shards it wrote (`data_shards`, of `num_data_shards`) and
                                      the dataset (`dataset_fingerprint`); written last
      log-<j>-of-<m>.jsonl            every prompt and raw answer of that process, for inspection
      cache/responses-*.jsonl         the response cache, shared by every process
      reliability.md|.csv|.png        the LLM reliability report (scoring/reliability.py): its
                                      agreement with the train outcomes per segment, against a
                                      coin flip; written by the process that finishes last

Pair files follow the interaction shards: process j of m scores the users of
the data shards s with s % m == j and writes one pair file per such shard, so
training worker k of W finds the pairs of its own data shards (s % W == k) by
name alone (`worker_pair_files`) and holds only its users' pairs.

A file exists only complete (written under a temporary name, then renamed);
a scorer that fails leaves no pair file and no summary. `scored_dataset`
refuses, before training starts, a dir with no pairs, a pair file no summary
lists (its scorer has not finished), a data shard without pairs (a process
that has not run), pairs of several datasets, and the layout of an older
scorer (one pair file per scorer process, summaries without `data_shards`).
"""
from __future__ import annotations

import contextlib
from typing import Iterable, Mapping

import numpy as np

from sllmr_tf import features, fileio, shards
from sllmr_tf.errors import ArtifactError

PAIRS_PREFIX = "pairs"
SUMMARY_PREFIX = "summary"
LOG_PREFIX = "log"
CACHE_DIR = "cache"


def pair_shard_path(pairs_dir: str, data_shard: int, num_data_shards: int) -> str:
    """The pair file of the users of data shard `data_shard` (of the dataset's `num_data_shards`)."""
    return fileio.join(pairs_dir, shards.shard_name(PAIRS_PREFIX, data_shard, num_data_shards))


def summary_path(pairs_dir: str, shard_index: int, num_shards: int) -> str:
    return fileio.join(pairs_dir, shards.shard_name(SUMMARY_PREFIX, shard_index, num_shards, ".json"))


def log_path(pairs_dir: str, shard_index: int, num_shards: int) -> str:
    return fileio.join(pairs_dir, shards.shard_name(LOG_PREFIX, shard_index, num_shards, ".jsonl"))


def default_cache_dir(pairs_dir: str) -> str:
    return fileio.join(pairs_dir, CACHE_DIR)


class PairFileWriters:
    """The pair files of one scorer process, one per data shard it covers; a pair goes to the
    file of its user's data shard. A context manager: every file is renamed into place when the
    block ends without an exception, none otherwise (shards.ShardWriter)."""

    def __init__(self, pairs_dir: str, data_shards: Iterable[int], num_data_shards: int,
                 user_shards: np.ndarray):
        self._paths = {s: pair_shard_path(pairs_dir, s, num_data_shards) for s in data_shards}
        self._user_shards = user_shards
        self._stack = contextlib.ExitStack()
        self._writers: dict[int, shards.ShardWriter] = {}

    def __enter__(self) -> "PairFileWriters":
        with contextlib.ExitStack() as stack:
            self._writers = {s: stack.enter_context(shards.ShardWriter(path)) for s, path in self._paths.items()}
            self._stack = stack.pop_all()
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self._stack.__exit__(exc_type, exc, tb)

    def write(self, user_index: int, record: bytes) -> None:
        """Append one encoded pair of the user with this index to its data shard's file."""
        self._writers[int(self._user_shards[user_index])].write(record)


def pair_files(pairs_dir: str) -> tuple[dict[int, str], int]:
    """({data shard: its pair file}, the number of data shards the names give).

    Raises:
        ArtifactError: there are none (the scorer has not run there), or they name several counts.
    """
    found = {}
    counts = set()
    for path in pair_shards(pairs_dir):
        index, count = shards.parse_shard_name(fileio.basename(path), PAIRS_PREFIX)
        found[index] = path
        counts.add(count)
    if len(counts) > 1:
        raise ArtifactError(f"{pairs_dir}: pair files of several shard counts ({sorted(counts)}); "
                            "score each dataset into its own pairs dir")
    return found, counts.pop()


def worker_pair_files(pairs_dir: str, worker_index: int, num_workers: int) -> list[str]:
    """The pair files of the data shards training worker `worker_index` of `num_workers` reads
    (s % num_workers == worker_index, as data/pipeline.make_dataset), in shard order."""
    found, count = pair_files(pairs_dir)
    return [found[s] for s in shards.worker_shards(count, worker_index, num_workers) if s in found]


def scored_dataset(pairs_dir: str) -> str | None:
    """The dataset fingerprint of a complete pairs dir that holds pairs.

    Returns:
        The fingerprint the summaries record (None if they predate it).

    Raises:
        ArtifactError: no pair files, a pair file no summary lists, a data shard without its
            pair file, no pairs at all, summaries of several datasets, or an older layout.
    """
    found, count = pair_files(pairs_dir)
    summaries = _summaries(pairs_dir)
    listed: set[int] = set()
    for path, summary in summaries.items():
        if "data_shards" not in summary:
            raise ArtifactError(f"{path}: written by an older sllmr-score (one pair file per scorer process); "
                                "score again into a new --pairs_dir")
        listed.update(summary["data_shards"])
    for index, path in sorted(found.items()):
        if index not in listed:
            raise ArtifactError(f"{path}: no summary lists it (its scorer has not finished); "
                                "run that shard of sllmr-score again")
    missing = sorted(set(range(count)) - set(found))
    if missing:
        raise ArtifactError(f"{pairs_dir}: no pair file for data shards {missing} of {count}; run the "
                            "sllmr-score processes that cover them (--shard_index/--num_shards)")
    if not sum(summary["pairs"]["written"] for summary in summaries.values()):
        raise ArtifactError(f"{pairs_dir}: the scorer wrote 0 pairs (see its summary and log); "
                            "score again (sllmr-score)")
    fingerprints = sorted({summary.get("dataset_fingerprint") for summary in summaries.values()} - {None})
    if len(fingerprints) > 1:
        raise ArtifactError(f"{pairs_dir}: pair shards of several datasets ({', '.join(fingerprints)}); "
                            "score each dataset into its own pairs dir")
    return fingerprints[0] if fingerprints else None


def unscored_shards(pairs_dir: str, num_data_shards: int) -> list[int]:
    """The data shards (of the dataset's `num_data_shards`) no finished scorer process lists in
    its summary yet: their pairs are still to come."""
    listed = {s for summary in _summaries(pairs_dir).values() for s in summary.get("data_shards", ())}
    return sorted(set(range(num_data_shards)) - listed)


def _summaries(pairs_dir: str) -> dict[str, dict]:
    """{path: the summary} of every finished scorer process."""
    return {path: fileio.read_json(path)
            for path in fileio.glob(fileio.join(pairs_dir, shards.shard_glob(SUMMARY_PREFIX, ".json")))}


def encode_pair(pair: Mapping[str, object]) -> bytes:
    """One pair (a value per PAIR_FEATURES name) as a serialized tf.train.Example."""
    return features.serialize(features.to_example(pair, features.PAIR_FEATURES))


def pair_shards(pairs_dir: str) -> list[str]:
    """The pair files of `pairs_dir`, in data shard order.

    Raises:
        ArtifactError: there are none (the scorer has not run there).
    """
    found = fileio.glob(fileio.join(pairs_dir, shards.shard_glob(PAIRS_PREFIX)))
    if not found:
        raise ArtifactError(f"{pairs_dir}: no pair shards ({shards.shard_glob(PAIRS_PREFIX)}); "
                            "run sllmr-score first")
    return found


def read_pairs(pairs_dir: str, paths: Iterable[str] | None = None) -> dict[str, np.ndarray]:
    """Every pair of the directory (or of the given files) as column arrays."""
    return shards.read_columns(pair_shards(pairs_dir) if paths is None else paths,
                               features.parse_spec(features.PAIR_FEATURES))
