"""The pairs directory contract between `sllmr-score` and `sllmr-train`.

    pairs_dir/
      pairs-<i>-of-<n>.tfrecord.gz    LLM rank pairs (features.PAIR_FEATURES), one shard per scorer process
      summary-<i>-of-<n>.json         that shard's counts (lists, answers, pairs); written last
      log-<i>-of-<n>.jsonl            every prompt and raw answer, for inspection
      cache/responses-*.jsonl         the response cache, shared by every shard

A shard exists only complete (written under a temporary name, then renamed).
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
