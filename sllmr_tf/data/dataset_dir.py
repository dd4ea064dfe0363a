"""The dataset directory contract between `prepare` and every later stage.

    data_dir/
      stats.json                 counts, segment sizes, vocab sizes, the prepare config, the dataset
                                 fingerprint and raw files (lineage.py), each shard's size; written last
      vocab/<name>.txt           one raw id per line; line k is index k (0 = padding/OOV)
      items.jsonl                one row per item index 1..n, in index order (see `items`)
      users.jsonl                one row per user index 1..n, in index order (see `users`)
      train|valid|test/part-<i>-of-<n>.tfrecord.gz   GZIP TFRecords of tf.train.Example (features.FEATURES)
      ground_truth.npz           synthetic worlds only: true preferences by vocab index

Every record of a user is in shard `shards.user_shard(raw user id, n)` of each
split; within a shard the records are in a fixed pseudo-random order (the
same bytes on every run and runner).

A directory is complete exactly when stats.json exists: `prepare` writes it
last (and, on a local path, renames the finished directory into place), so
readers never trust a directory without it (`DatasetDir` refuses one). stats.json lists
every shard with its size, so a consumer can refuse a truncated or missing one
up front (`check_shards`), and the dataset fingerprint, which every artifact
made from the dataset records (`check_lineage`).
"""
from __future__ import annotations

import functools

import numpy as np

from sllmr_tf import fileio, shards
from sllmr_tf.errors import ArtifactError, ConfigError

SPLITS = ("train", "valid", "test")
STATS_FILE = "stats.json"
ITEMS_FILE = "items.jsonl"
USERS_FILE = "users.jsonl"
VOCAB_DIR = "vocab"
GROUND_TRUTH_FILE = "ground_truth.npz"
SHARD_PREFIX = "part"


def split_shard_path(data_dir: str, split: str, index: int, count: int) -> str:
    return fileio.join(data_dir, split, shards.shard_name(SHARD_PREFIX, index, count))


def shard_sizes(data_dir: str, split: str) -> dict[str, int]:
    """File name -> size in bytes of each shard of a split as it is on disk."""
    return {fileio.basename(path): fileio.size(path)
            for path in fileio.glob(fileio.join(data_dir, split, shards.shard_glob(SHARD_PREFIX)))}


class DatasetDir:
    """Read access to a prepared dataset.

    Raises:
        ArtifactError: `path` is not a complete prepared dataset.
    """

    def __init__(self, path: str):
        self.path = path
        if not fileio.exists(fileio.join(path, STATS_FILE)):
            raise ArtifactError(f"{path}: not a prepared dataset (no {STATS_FILE}); run sllmr-prepare first")

    @functools.cached_property
    def stats(self) -> dict:
        return fileio.read_json(fileio.join(self.path, STATS_FILE))

    def shards(self, split: str) -> list[str]:
        if split not in SPLITS:
            raise ConfigError(f"split must be one of {SPLITS}, got {split!r}")
        return fileio.glob(fileio.join(self.path, split, shards.shard_glob(SHARD_PREFIX)))

    @property
    def fingerprint(self) -> str | None:
        """The dataset's lineage fingerprint (None for a dataset prepared before it was recorded)."""
        return self.stats.get("dataset_fingerprint")

    def check_lineage(self, recorded: str | None, artifact: str) -> None:
        """Refuse an artifact made from another dataset.

        Args:
            recorded: the dataset fingerprint the artifact records (None: it records none).
            artifact: the artifact, as the message names it (a path).

        Raises:
            ArtifactError: naming both fingerprints.
        """
        if recorded is not None and self.fingerprint is not None and recorded != self.fingerprint:
            raise ArtifactError(f"{artifact} was made from dataset {recorded}, but {self.path} is dataset "
                                f"{self.fingerprint}; give the data_dir it was made from (or remake it)")

    def check_shards(self) -> None:
        """Every shard stats.json lists is there with its recorded size, and no other.

        Raises:
            ArtifactError: naming the first shard that is missing, of another size, or unlisted.
        """
        recorded = self.stats.get("shards")
        if recorded is None:  # prepared before the shard sizes were recorded
            return
        fix = "prepare it again (sllmr-prepare --overwrite)"
        for split in SPLITS:
            found = shard_sizes(self.path, split)
            for name, size in sorted(recorded[split].items()):
                where = fileio.join(self.path, split, name)
                if name not in found:
                    raise ArtifactError(f"{where}: missing; {STATS_FILE} lists it ({size:,} bytes); {fix}")
                if found[name] != size:
                    raise ArtifactError(f"{where}: {found[name]:,} bytes, {STATS_FILE} says {size:,} "
                                        f"(truncated or replaced); {fix}")
            for name in sorted(set(found) - set(recorded[split])):
                raise ArtifactError(f"{fileio.join(self.path, split, name)}: not listed in {STATS_FILE} "
                                    f"(left by another prepare?); {fix}")

    @property
    def num_shards(self) -> int:
        """Shards per split (every split has this many, some possibly empty)."""
        return int(self.stats["config"]["num_shards"])

    def user_shards(self) -> np.ndarray:
        """The shard of every user index (row 0, the padding user: -1): `shards.user_shard` of
        the user's raw id, where prepare put all of the user's records."""
        out = np.full(len(self.users()) + 1, -1, np.int64)
        for row in self.users():
            out[row["index"]] = shards.user_shard(row["id"], self.num_shards)
        return out

    def vocab(self, name: str) -> list[str]:
        """Raw ids in index order; element 0 is the padding/OOV slot ''."""
        lines = fileio.read_text(fileio.join(self.path, VOCAB_DIR, f"{name}.txt")).split("\n")
        return [""] + lines[:-1]  # every line ends with a newline; ids never hold one

    @functools.cache
    def items(self) -> list[dict]:
        """Item rows in index order (row k-1 is item index k): index, id, title, category,
        brand, category_index, brand_index, text, popularity, is_longtail. Read once."""
        return list(fileio.read_jsonl(fileio.join(self.path, ITEMS_FILE)))

    @functools.cache
    def users(self) -> list[dict]:
        """User rows in index order: index, id, train_items (the user's train positives, item
        indices in time order), is_cold. Read once."""
        return list(fileio.read_jsonl(fileio.join(self.path, USERS_FILE)))

    def user_lookup(self) -> dict[str, np.ndarray]:
        """Dense per-user-index arrays (row 0 = padding) of the user's segment signals:
        train_positives (all of the user's train positives) and is_cold_user."""
        rows = self.users()
        out = {name: np.zeros(len(rows) + 1, np.int64) for name in ("train_positives", "is_cold_user")}
        for row in rows:
            out["train_positives"][row["index"]] = len(row["train_items"])
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
        path = fileio.join(self.path, GROUND_TRUTH_FILE)
        return path if fileio.exists(path) else None
