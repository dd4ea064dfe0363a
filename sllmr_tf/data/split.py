"""Per-user chronological split, the cold-user cut, sampled negatives and histories (segment
rules: segments.py).

Pure numpy over integer-coded events; no TensorFlow. Each function does one
step of the protocol so tests can check each definition on its own;
`user_examples` applies them to one user at a time.
"""
from __future__ import annotations

import dataclasses
import heapq
from typing import Iterable

import numpy as np

from sllmr_tf import shards
from sllmr_tf.errors import DataError

TRAIN, VALID, TEST = 0, 1, 2


@dataclasses.dataclass
class Events:
    """Integer-coded events, one row each; users/items are vocab indices (>= 1)."""

    user: np.ndarray
    item: np.ndarray
    timestamp: np.ndarray
    label: np.ndarray  # 1.0 positive, 0.0 negative

    def __len__(self) -> int:
        return len(self.user)

    def take(self, mask_or_index: np.ndarray) -> "Events":
        return Events(self.user[mask_or_index], self.item[mask_or_index],
                      self.timestamp[mask_or_index], self.label[mask_or_index])


def chronological_order(events: Events) -> np.ndarray:
    """Row order by (user, timestamp, original position): stable, deterministic."""
    return np.lexsort((np.arange(len(events)), events.timestamp, events.user))


def leave_last_k_out(events: Events, test_k: int, valid_k: int) -> np.ndarray:
    """Split code per event: each user's last test_k events -> test, the valid_k before -> valid.

    Every user keeps at least one train event; users with too few events give
    up valid first, then test.
    """
    if test_k < 1 or valid_k < 1:
        raise ValueError(f"test_k and valid_k must be >= 1, got {test_k}, {valid_k}")
    order = chronological_order(events)
    users = events.user[order]
    split = np.full(len(events), TRAIN, np.int8)
    starts = np.flatnonzero(np.r_[True, users[1:] != users[:-1]])
    ends = np.r_[starts[1:], len(users)]
    for start, end in zip(starts, ends):
        n = end - start
        n_test = min(test_k, max(n - 1, 0))
        n_valid = min(valid_k, max(n - 1 - n_test, 0))
        split[order[end - n_test:end]] = TEST
        split[order[end - n_test - n_valid:end - n_test]] = VALID
    return split


def cut_key(seed: int, raw_user_id: str) -> tuple[int, str]:
    """A user's place in the cold-user cut: the users with the smallest keys are cut.

    A stable hash of (seed, raw id), so the choice is the same on every runner
    and worker and does not depend on the order users arrive in.
    """
    return shards.stable_hash(seed, "cold_user_cut", raw_user_id), raw_user_id


def cut_threshold(raw_user_ids: Iterable[str], fraction: float, seed: int) -> tuple[int, str] | None:
    """The largest `cut_key` among the round(fraction * users) users to cut; None cuts nobody."""
    ids = list(raw_user_ids)
    count = int(round(fraction * len(ids)))
    if count == 0:
        return None
    return heapq.nsmallest(count, (cut_key(seed, u) for u in ids))[-1]


def is_cut(raw_user_id: str, threshold: tuple[int, str] | None, seed: int) -> bool:
    """Whether the cold-user cut applies to this user (see `cut_threshold`)."""
    return threshold is not None and cut_key(seed, raw_user_id) <= threshold


def truncate_users(events: Events, split: np.ndarray, cut_users: np.ndarray, keep: int) -> np.ndarray:
    """Make `cut_users` cold: keep only their last `keep` train events.

    Returns a boolean mask of events to keep. Valid and test events stay, so
    the cut users become a measurable cold-start segment.
    """
    keep_mask = np.ones(len(events), bool)
    train = (split == TRAIN) & np.isin(events.user, cut_users)
    index = np.flatnonzero(train)
    order = index[np.lexsort((index, events.timestamp[index], events.user[index]))]
    users_sorted = events.user[order]
    # position from the end within each user's train events
    rank_from_end = np.zeros(len(order), np.int64)
    ends = np.r_[np.flatnonzero(users_sorted[1:] != users_sorted[:-1]), len(order) - 1]
    starts = np.r_[0, ends[:-1] + 1]
    for start, end in zip(starts, ends):
        rank_from_end[start:end + 1] = np.arange(end - start, -1, -1)
    keep_mask[order[rank_from_end >= keep]] = False
    return keep_mask


def sample_negatives(user: str, rows: int, per_row: int, interacted: set[int], num_items: int,
                     rng: np.random.Generator) -> np.ndarray:
    """`per_row` items for each of `rows` rows of one user, uniformly from the items (1..num_items)
    the user never interacted with.

    Returns shape (rows, per_row). Rejection sampling, the rejected draws
    redrawn together: users interact with a small share of the catalogue, so a
    few rounds suffice.

    Raises:
        DataError: the user interacted with every item.
    """
    out = rng.integers(1, num_items + 1, size=(rows, per_row))
    if out.size and len(interacted) >= num_items:
        raise DataError(f"user {user!r} interacted with every item; cannot sample negatives")
    seen = np.fromiter(interacted, np.int64, len(interacted))
    rejected = np.isin(out, seen)
    while rejected.any():
        out[rejected] = rng.integers(1, num_items + 1, size=int(rejected.sum()))
        rejected = np.isin(out, seen)
    return out


def histories(events: Events, split: np.ndarray, rows_user: np.ndarray, rows_time: np.ndarray,
              length: int) -> tuple[np.ndarray, np.ndarray]:
    """For each row: the user's last `length` train positives strictly before its time.

    Returns (items (n, length) most recent first, 0-padded; hist_len (n,) = number
    of such train positives before the row, uncapped).
    """
    positive_train = np.flatnonzero((split == TRAIN) & (events.label > 0))
    order = positive_train[np.lexsort((positive_train, events.timestamp[positive_train],
                                       events.user[positive_train]))]
    p_user, p_time, p_item = events.user[order], events.timestamp[order], events.item[order]
    items = np.zeros((len(rows_user), length), np.int64)
    hist_len = np.zeros(len(rows_user), np.int64)
    for user in np.unique(rows_user):  # vectorised within a user; prepare passes one user
        rows = np.flatnonzero(rows_user == user)
        start, end = np.searchsorted(p_user, user, side="left"), np.searchsorted(p_user, user, side="right")
        before = np.searchsorted(p_time[start:end], rows_time[rows], side="left")  # positives before each row
        hist_len[rows] = before
        back = before[:, None] - 1 - np.arange(length)[None, :]  # most recent first
        items[rows] = np.where(back >= 0, p_item[start:end][np.maximum(back, 0)] if end > start else 0, 0)
    return items, hist_len
