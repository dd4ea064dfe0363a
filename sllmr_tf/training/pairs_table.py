"""The LLM pairs in memory, with everything the training step needs per pair.

The interactions stream from disk; the pairs do not: they are far fewer (a few
per candidate list), and the join draws a batch's pairs from all of them at
random (join.py). Each pair row carries, besides the scorer's columns
(features.PAIR_FEATURES):

    a / b                 the item-side features of item a and item b (item_id, item_category,
                          item_brand, item_pop, is_longtail_item), to score the user on either
    user_train_positives  all of the user's train positives (a gate signal)
    is_cold_user          the user's segment tag
    teacher_a / _b        the pointwise teacher probability of each item (kd_pointwise)

and the table holds, per user index, the user-side model features as they stand
at the end of train (`user_features`): the history every valid and test row of
the user has, so a pair is scored the way the user will be evaluated.

A training worker holds the pairs of its own data shards only (`load_pairs_table`'s
worker_index / num_workers), so its memory for pairs is its share of them;
BUILD_NOTES.md has the bytes per pair.
"""
from __future__ import annotations

import dataclasses
from typing import Mapping

import numpy as np

from sllmr_tf import features, fileio
from sllmr_tf.data import pairs_dir as pairs_dir_lib
from sllmr_tf.data.dataset_dir import DatasetDir
from sllmr_tf.errors import ArtifactError, ConfigError
from sllmr_tf.training import methods as methods_lib

SIDES = ("a", "b")


@dataclasses.dataclass
class PairsTable:
    """Pairs sorted by user, their items' features, and every user's user-side features."""

    columns: dict[str, np.ndarray]  # one row per pair (scorer columns + derived ones)
    sides: dict[str, dict[str, np.ndarray]]  # "a"/"b" -> item-side feature -> per pair
    users: dict[str, np.ndarray]  # user-side model feature -> per user index (row 0: padding)

    def __len__(self) -> int:
        return len(self.columns["user_id"])

    def rows(self, take: slice | np.ndarray = slice(None)) -> dict:
        """The pairs at `take` as the gate and the training step read them: the columns, and
        their items' features under "a" and "b" (numpy arrays)."""
        out = {name: values[take] for name, values in self.columns.items()}
        out.update({side: {name: values[take] for name, values in cols.items()} for side, cols in self.sides.items()})
        return out

    def user_rows(self, take: slice | np.ndarray = slice(None)) -> dict[str, np.ndarray]:
        """The user-side model features of the pairs at `take`, each pair's own user's: what the
        join adds as their "user" (join.py)."""
        return {name: values[self.columns["user_id"][take]] for name, values in self.users.items()}

    @property
    def counts(self) -> np.ndarray:
        """Pairs per user index (index 0, the padding user, has none)."""
        return np.bincount(self.columns["user_id"], minlength=len(self.users["user_id"]))


def load_pairs_table(pairs_dir: str, data: DatasetDir, keep_augmented: bool = True, worker_index: int = 0,
                     num_workers: int = 1) -> PairsTable:
    """Read the scorer's pairs of one training worker's data shards (all of them with one worker)
    for the dataset `data`; checks they belong to it.

    Raises:
        ArtifactError: pair files of another shard count than the dataset's, no pairs, or pairs
            that do not fit the dataset's vocabularies.
    """
    _, count = pairs_dir_lib.pair_files(pairs_dir)
    if count != data.num_shards:
        raise ArtifactError(f"{pairs_dir}: pair files for {count} data shards, but {data.path} has "
                            f"{data.num_shards}; score this dataset again (sllmr-score)")
    paths = pairs_dir_lib.worker_pair_files(pairs_dir, worker_index, num_workers)
    raw = pairs_dir_lib.read_pairs(pairs_dir, paths)
    if not len(raw["user_id"]):
        raise ArtifactError(f"{pairs_dir}: the pair files {[fileio.basename(p) for p in paths]} hold no pairs; "
                            "score again (sllmr-score)" + (" or use fewer workers" if num_workers > 1 else ""))
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
    sides = {side: item_side(columns[f"item_{side}"], items) for side in SIDES}
    return PairsTable(columns=columns, sides=sides, users=user_features(data))


def select_pairs(table: PairsTable, selection: str, top_k: int) -> PairsTable:
    """The pairs the join draws from (`--pair_selection`).

    uniform keeps every pair. top_k keeps, per user, the `top_k` pairs with the
    largest confidence (ties: larger margin first, then the scorer's order), the
    paper's "up to K pairs with the largest LLM score differences": a pair's
    confidence is its score difference, rescaled to 0.5 + 0.5 (s_a - s_b) / spread,
    for a single-answer scorer, and the share of orderings that agree for several
    (scoring/aggregate.py), where the margin (the rank gap) is the difference
    itself. The paper picks inside each user's items in a batch; our join draws
    pairs by their own users, independently of the batch's rows (join.py), so the
    cap applies to each user's pairs in the table. The teacher probabilities stay
    those of all of the user's pairs.

    Args:
        table: the loaded pairs (sorted by user).
        selection: methods.UNIFORM or methods.TOP_K.
        top_k: K, for top_k.

    Returns:
        The kept pairs, still sorted by user in the table's order.
    """
    if selection == methods_lib.UNIFORM:
        return table
    if selection != methods_lib.TOP_K:
        raise ConfigError(f"unknown pair selection {selection!r}; known: {', '.join(methods_lib.PAIR_SELECTIONS)}")
    cols = table.columns
    by_rank = np.lexsort((np.arange(len(table)), -cols["margin"], -cols["confidence"], cols["user_id"]))
    user = cols["user_id"][by_rank]
    first_of_user = np.searchsorted(user, user, side="left")
    kept = table.rows(np.sort(by_rank[np.arange(len(table)) - first_of_user < top_k]))
    return PairsTable(columns={name: values for name, values in kept.items() if name not in SIDES},
                      sides={side: kept[side] for side in SIDES}, users=table.users)


def user_features(data: DatasetDir) -> dict[str, np.ndarray]:
    """The user-side model features of every user index at the end of train (row 0: padding):
    the user id, the last HISTORY_LENGTH train positives most recent first, their categories."""
    rows = data.users()
    category = data.item_lookup()["item_category"]
    history = np.zeros((len(rows) + 1, features.HISTORY_LENGTH), np.int64)
    for row in rows:
        recent = row["train_items"][::-1][:features.HISTORY_LENGTH]  # train_items are in time order
        history[row["index"], :len(recent)] = recent
    out = {"user_id": np.arange(len(rows) + 1, dtype=np.int64), "hist_item_ids": history,
           "hist_item_categories": category[history] * (history > 0)}
    expected = {f.name for f in features.model_features() if not f.item_side}
    assert set(out) == expected, f"user-side model features changed: {sorted(expected)}"
    return out


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


def item_side(item_ids: np.ndarray, lookup: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
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
