"""The LLM pairs in memory, grouped by user, with everything the step needs per pair.

The interactions stream from disk; the pairs do not: they are far fewer (a few
per candidate list), and the join must find "the pairs of this user" for every
example of every batch, which a CSR index (pairs sorted by user + offsets) makes
one gather. Each pair row carries, besides the scorer's columns
(features.PAIR_FEATURES):

    a / b            the item-side features of item a and item b (item_id,
                     item_category, item_brand, item_pop, is_longtail_item), so the
                     step can score the user on either item by swapping them in
    user_train_positives  all of the user's train positives (a gate signal)
    is_cold_user     the user's segment tag
    teacher_a / _b   the pointwise teacher probability of each item (kd_pointwise)

Memory: about 150 bytes per pair, held as tf constants by the join, which suits
pair sets up to ~10M pairs.
"""
from __future__ import annotations

import dataclasses
from typing import Mapping

import numpy as np

from sllmr_tf import features
from sllmr_tf.data import pairs_dir as pairs_dir_lib
from sllmr_tf.data.dataset_dir import DatasetDir
from sllmr_tf.errors import ArtifactError

SIDES = ("a", "b")


@dataclasses.dataclass
class PairsTable:
    """Pairs sorted by user; user u's pairs are rows offsets[u]:offsets[u + 1]."""

    columns: dict[str, np.ndarray]  # one row per pair (scorer columns + derived ones)
    sides: dict[str, dict[str, np.ndarray]]  # "a"/"b" -> item-side feature -> per pair
    offsets: np.ndarray  # (num_users + 2,) int64, num_users + 1 = user vocabulary size

    def __len__(self) -> int:
        return int(self.offsets[-1])

    @property
    def counts(self) -> np.ndarray:
        """Pairs per user index (index 0, the padding user, has none)."""
        return np.diff(self.offsets)


def load_pairs_table(pairs_dir: str, data: DatasetDir, keep_augmented: bool = True) -> PairsTable:
    """Read the scorer's pairs for the dataset `data`; checks they belong to it."""
    raw = pairs_dir_lib.read_pairs(pairs_dir)
    return build_pairs_table(raw, data, keep_augmented=keep_augmented, origin=pairs_dir)


def build_pairs_table(raw: Mapping[str, np.ndarray], data: DatasetDir, keep_augmented: bool = True,
                      origin: str = "pairs") -> PairsTable:
    users = data.users()
    items = data.item_lookup()
    num_users, num_items = len(users), len(items["item_pop"]) - 1
    _check_pairs(raw, num_users, num_items, origin)
    keep = np.ones(len(raw["user_id"]), bool) if keep_augmented else raw["source"] != features.SOURCE_AUGMENTED
    order = np.argsort(raw["user_id"][keep], kind="stable")
    columns = {name: np.asarray(values)[keep][order] for name, values in raw.items()}

    user_signals = data.user_lookup()
    user = columns["user_id"]
    columns["user_train_positives"] = user_signals["train_positives"][user]
    columns["is_cold_user"] = user_signals["is_cold_user"][user]
    columns["teacher_a"], columns["teacher_b"] = teacher_probabilities(
        user, columns["item_a"], columns["item_b"], columns["confidence"], num_items)

    sides = {side: _item_side(columns[f"item_{side}"], items) for side in SIDES}
    offsets = np.zeros(num_users + 2, np.int64)
    offsets[1:] = np.cumsum(np.bincount(user, minlength=num_users + 1))
    return PairsTable(columns=columns, sides=sides, offsets=offsets)


def teacher_probabilities(users: np.ndarray, a: np.ndarray, b: np.ndarray, confidence: np.ndarray,
                          num_items: int) -> tuple[np.ndarray, np.ndarray]:
    """Pointwise teacher p(user likes item) from the LLM's pairwise judgements.

    The LLM-CF KD baseline distils a pointwise teacher score; our LLM gives
    pairs, so an item's teacher probability for a user is its confidence-weighted
    win rate over all of that user's pairs containing it: each pair (a > b, c)
    counts c for a and 1 - c for b. An item the LLM always ranks first scores
    near 1, one it always ranks last near 0. Returns the value for a and for b.
    """
    n = len(users)
    if n == 0:
        return np.zeros(0, np.float32), np.zeros(0, np.float32)
    keys = np.concatenate([users * (num_items + 1) + a, users * (num_items + 1) + b])
    wins = np.concatenate([confidence, 1.0 - confidence]).astype(np.float64)
    unique, inverse = np.unique(keys, return_inverse=True)
    rate = np.bincount(inverse, weights=wins) / np.bincount(inverse)
    per_slot = rate[inverse].astype(np.float32)
    return per_slot[:n], per_slot[n:]


def _item_side(item_ids: np.ndarray, lookup: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The item-side features of each item, by feature name (features.item_side_features)."""
    return {f.name: (item_ids if f.name == "item_id" else lookup[f.name][item_ids]).astype(f.numpy_dtype)
            for f in features.item_side_features()}


def _check_pairs(raw: Mapping[str, np.ndarray], num_users: int, num_items: int, origin: str) -> None:
    """Every pair must refer to this dataset's vocabularies; the first bad one is named."""
    checks = (
        ("user_id", lambda v: (v >= 1) & (v <= num_users), f"user index outside 1..{num_users}"),
        ("item_a", lambda v: (v >= 1) & (v <= num_items), f"item index outside 1..{num_items}"),
        ("item_b", lambda v: (v >= 1) & (v <= num_items), f"item index outside 1..{num_items}"),
        ("confidence", lambda v: (v >= 0) & (v <= 1), "confidence outside [0, 1]"),
        ("source", lambda v: np.isin(v, (features.SOURCE_REGULAR, features.SOURCE_AUGMENTED)),
         "source is neither 0 (regular) nor 1 (augmented)"),
        ("outcome", lambda v: np.isin(v, (0, 1, features.OUTCOME_UNKNOWN)), "outcome is not 1, 0 or -1"),
    )
    for name, ok, reason in checks:
        bad = np.flatnonzero(~ok(np.asarray(raw[name])))
        if bad.size:
            k = int(bad[0])
            raise ArtifactError(f"{origin}: pair {k} field {name!r}: {reason} (value {raw[name][k]}); "
                             f"{bad.size} such pairs - were they scored on another data_dir?")
