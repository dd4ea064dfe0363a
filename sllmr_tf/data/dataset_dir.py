"""The dataset directory contract between `prepare` and every later stage.

    data_dir/
      stats.json                 counts, segment sizes, vocab sizes, the prepare config
      vocab/<name>.txt           one raw id per line; line k is index k (0 = padding/OOV)
      items.jsonl                one row per item index 1..n, in index order (see ItemRow)
      users.jsonl                one row per user index 1..n, in index order (see UserRow)
      train|valid|test/part-*.tfrecord.gz   GZIP TFRecords of tf.train.Example (features.FEATURES)
      ground_truth.npz           synthetic worlds only: true preferences by vocab index

A directory is complete exactly when stats.json exists: `prepare` builds it
under a temporary name and renames it into place as its very last step.
"""
from __future__ import annotations

import functools
import glob
import json
import os
from typing import Iterator

import numpy as np

SPLITS = ("train", "valid", "test")
STATS_FILE = "stats.json"
ITEMS_FILE = "items.jsonl"
USERS_FILE = "users.jsonl"
GROUND_TRUTH_FILE = "ground_truth.npz"
COMPRESSION = "GZIP"


def shard_name(index: int, count: int) -> str:
    return f"part-{index:05d}-of-{count:05d}.tfrecord.gz"


class DatasetDir:
    """Read access to a prepared dataset; raises a clear error if it is not complete."""

    def __init__(self, path: str):
        self.path = path
        if not os.path.isfile(os.path.join(path, STATS_FILE)):
            raise FileNotFoundError(
                f"{path}: not a prepared dataset (no {STATS_FILE}); run sllmr-prepare first"
            )

    @functools.cached_property
    def stats(self) -> dict:
        with open(os.path.join(self.path, STATS_FILE)) as f:
            return json.load(f)

    def shards(self, split: str) -> list[str]:
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        return sorted(glob.glob(os.path.join(self.path, split, "part-*.tfrecord.gz")))

    def vocab(self, name: str) -> list[str]:
        """Raw ids in index order; element 0 is the padding/OOV slot ''."""
        with open(os.path.join(self.path, "vocab", f"{name}.txt"), encoding="utf-8") as f:
            return [""] + [line.rstrip("\n") for line in f]

    @functools.cache
    def items(self) -> list[dict]:
        """Item rows in index order (row k-1 is item index k): index, id, title, category,
        brand, category_index, brand_index, text, popularity, is_longtail. Read once."""
        return list(_read_jsonl(os.path.join(self.path, ITEMS_FILE)))

    @functools.cache
    def users(self) -> list[dict]:
        """User rows in index order: index, id, train_items (item indices, chronological),
        is_cold. Read once."""
        return list(_read_jsonl(os.path.join(self.path, USERS_FILE)))

    def user_lookup(self) -> dict[str, np.ndarray]:
        """Dense per-user-index arrays of the gate's user signals (row 0 = padding):
        hist_len (train positives) and is_cold_user."""
        rows = self.users()
        out = {name: np.zeros(len(rows) + 1, np.int64) for name in ("hist_len", "is_cold_user")}
        for row in rows:
            out["hist_len"][row["index"]] = len(row["train_items"])
            out["is_cold_user"][row["index"]] = int(row["is_cold"])
        return out

    def item_lookup(self) -> dict[str, np.ndarray]:
        """Dense per-item-index arrays of the item-side features (row 0 = padding)."""
        rows = self.items()
        n = len(rows) + 1
        out = {name: np.zeros(n, np.int64) for name in
               ("item_category", "item_brand", "item_pop", "is_longtail_item")}
        for row in rows:
            k = row["index"]
            out["item_category"][k] = row["category_index"]
            out["item_brand"][k] = row["brand_index"]
            out["item_pop"][k] = row["popularity"]
            out["is_longtail_item"][k] = int(row["is_longtail"])
        return out

    @property
    def ground_truth_path(self) -> str | None:
        path = os.path.join(self.path, GROUND_TRUTH_FILE)
        return path if os.path.exists(path) else None


def _read_jsonl(path: str) -> Iterator[dict]:
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                yield json.loads(line)
