"""Per-user chronological split, sampled negatives and histories (segment rules: segments.py).

Pure numpy over integer-coded events; no TensorFlow. Each function does one
step of the protocol so tests can check each definition on its own.
"""
from __future__ import annotations

import dataclasses

import numpy as np

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


def truncate_users(events: Events, split: np.ndarray, fraction: float, keep: int,
                   rng: np.random.Generator) -> np.ndarray:
    """Make a random `fraction` of users cold: keep only their last `keep` train events.

    Returns a boolean mask of events to keep. Valid and test events stay, so
    the cut users become a measurable cold-start segment.
    """
    keep_mask = np.ones(len(events), bool)
    if fraction <= 0:
        return keep_mask
    users = np.unique(events.user)
    chosen = rng.choice(users, size=int(round(fraction * len(users))), replace=False)
    train = (split == TRAIN) & np.isin(events.user, chosen)
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


def item_popularity(events: Events, split: np.ndarray, num_items: int) -> np.ndarray:
    """Train interactions per item index (row 0 = padding)."""
    return np.bincount(events.item[split == TRAIN], minlength=num_items + 1).astype(np.int64)


def train_positive_counts(events: Events, split: np.ndarray, num_users: int) -> np.ndarray:
    positive_train = (split == TRAIN) & (events.label > 0)
    return np.bincount(events.user[positive_train], minlength=num_users + 1).astype(np.int64)


def sample_negatives(users: np.ndarray, per_row: int, interacted: list[set[int]], num_items: int,
                     rng: np.random.Generator) -> np.ndarray:
    """`per_row` items per row, uniformly from items the user never interacted with.

    Returns shape (len(users), per_row). Rejection sampling: users interact with
    a small share of the catalogue, so a few rounds suffice.
    """
    out = rng.integers(1, num_items + 1, size=(len(users), per_row))
    for row, user in enumerate(users):
        seen = interacted[user]
        if len(seen) >= num_items:
            raise DataError(f"user index {user} interacted with every item; cannot sample negatives")
        for col in range(per_row):
            while out[row, col] in seen:
                out[row, col] = rng.integers(1, num_items + 1)
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
    # start/end of each user's block in the sorted positives
    user_start = np.searchsorted(p_user, rows_user, side="left")
    user_end = np.searchsorted(p_user, rows_user, side="right")
    hist_len = np.zeros(len(rows_user), np.int64)
    for row in range(len(rows_user)):
        start, end = user_start[row], user_end[row]
        before = start + np.searchsorted(p_time[start:end], rows_time[row], side="left")
        hist_len[row] = before - start
        recent = p_item[max(start, before - length):before][::-1]
        items[row, :len(recent)] = recent
    return items, hist_len
