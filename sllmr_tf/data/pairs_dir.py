"""The pairs directory contract between `sllmr-score` and `sllmr-train`.

    pairs_dir/
      pairs-<i>-of-<n>.tfrecord.gz    LLM rank pairs (features.PAIR_FEATURES), one shard per scorer process
      summary-<i>-of-<n>.json         that shard's counts (lists, answers, pairs); written last
      log-<i>-of-<n>.jsonl            every prompt and raw answer, for inspection
      cache/responses-*.jsonl         the response cache, shared by every shard

A shard exists only complete (written under a temporary name, then renamed);
a scorer that fails leaves no pair shard and no summary. Each summary records
the dataset it was scored on (`dataset_fingerprint`), so `scored_dataset`
refuses, before training starts, a dir with no pairs, an unfinished shard, or
pairs of several datasets.
"""
from __future__ import annotations

from typing import Iterable, Mapping

import numpy as np

from sllmr_tf import features, fileio, shards
from sllmr_tf.errors import ArtifactError

PAIRS_PREFIX = "pairs"
SUMMARY_PREFIX = "summary"
LOG_PREFIX = "log"
CACHE_DIR = "cache"


def pair_shard_path(pairs_dir: str, shard_index: int, num_shards: int) -> str:
    return fileio.join(pairs_dir, shards.shard_name(PAIRS_PREFIX, shard_index, num_shards))


def summary_path(pairs_dir: str, shard_index: int, num_shards: int) -> str:
    return fileio.join(pairs_dir, shards.shard_name(SUMMARY_PREFIX, shard_index, num_shards, ".json"))


def log_path(pairs_dir: str, shard_index: int, num_shards: int) -> str:
    return fileio.join(pairs_dir, shards.shard_name(LOG_PREFIX, shard_index, num_shards, ".jsonl"))


def default_cache_dir(pairs_dir: str) -> str:
    return fileio.join(pairs_dir, CACHE_DIR)


def scored_dataset(pairs_dir: str) -> str | None:
    """The dataset fingerprint of a complete pairs dir that holds pairs.

    Returns:
        The fingerprint the summaries record (None if they predate it).

    Raises:
        ArtifactError: no pair shards, a pair shard without its summary, no pairs at all, or
            summaries of several datasets.
    """
    summaries = []
    for path in pair_shards(pairs_dir):
        suffix = fileio.basename(path)[len(PAIRS_PREFIX) + 1:-len(shards.TFRECORD_EXTENSION)]  # <i>-of-<n>
        summary = fileio.read_json(fileio.join(pairs_dir, f"{SUMMARY_PREFIX}-{suffix}.json"))
        if summary is None:
            raise ArtifactError(f"{path}: no summary beside it (its scorer has not finished); "
                                "run that shard of sllmr-score again")
        summaries.append(summary)
    if not sum(summary["pairs"]["written"] for summary in summaries):
        raise ArtifactError(f"{pairs_dir}: the scorer wrote 0 pairs (see its summary and log); "
                            "score again (sllmr-score)")
    fingerprints = sorted({summary.get("dataset_fingerprint") for summary in summaries} - {None})
    if len(fingerprints) > 1:
        raise ArtifactError(f"{pairs_dir}: pair shards of several datasets ({', '.join(fingerprints)}); "
                            "score each dataset into its own pairs dir")
    return fingerprints[0] if fingerprints else None


def encode_pair(pair: Mapping[str, object]) -> bytes:
    """One pair (a value per PAIR_FEATURES name) as a serialized tf.train.Example."""
    return features.serialize(features.to_example(pair, features.PAIR_FEATURES))


def pair_shards(pairs_dir: str) -> list[str]:
    """The pair shards of `pairs_dir`.

    Raises:
        ArtifactError: there are none (the scorer has not run there).
    """
    found = fileio.glob(fileio.join(pairs_dir, shards.shard_glob(PAIRS_PREFIX)))
    if not found:
        raise ArtifactError(f"{pairs_dir}: no pair shards ({shards.shard_glob(PAIRS_PREFIX)}); "
                            "run sllmr-score first")
    return found


def read_pairs(pairs_dir: str, paths: Iterable[str] | None = None) -> dict[str, np.ndarray]:
    """Every pair of the directory (or of the given shards) as column arrays."""
    return shards.read_columns(pair_shards(pairs_dir) if paths is None else paths,
                               features.parse_spec(features.PAIR_FEATURES))
