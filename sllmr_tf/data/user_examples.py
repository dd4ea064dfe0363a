"""One user's events -> that user's examples in every split: the per-user step of prepare.

`user_examples` is a pure function of one user's raw events and a few tables
shared by all users (item indices and tags, the cold-user cut, the seed). The
Beam pipeline applies it to each user on whichever worker holds that user's
events, so memory is bounded by the largest user; tests apply it user by user.
Its random numbers come from a generator seeded by (seed, stable hash of the
raw user id), so a user's negatives and record order depend neither on the
runner nor on the number of workers nor on the order users arrive in.
"""
from __future__ import annotations

import dataclasses
from typing import Iterable

import numpy as np

from sllmr_tf import features, segments, shards
from sllmr_tf.data import split as split_lib
from sllmr_tf.data.config import PrepareConfig

SPLIT_CODES = (("train", split_lib.TRAIN), ("valid", split_lib.VALID), ("test", split_lib.TEST))
_SORT_KEY_LIMIT = 1 << 63


@dataclasses.dataclass(frozen=True)
class UserEvents:
    """One user's raw events as parallel arrays."""

    items: np.ndarray  # raw item ids (object)
    ratings: np.ndarray  # float64
    timestamps: np.ndarray  # int64
    order: np.ndarray  # int64: the event's place in the raw files (file order)

    @classmethod
    def from_records(cls, records: Iterable[tuple[str, float, int, int]]) -> "UserEvents":
        """From (item, rating, timestamp, order) tuples, as the pipeline groups them."""
        items, ratings, timestamps, order = zip(*records)
        return cls(np.array(items, object), np.array(ratings, np.float64), np.array(timestamps, np.int64),
                   np.array(order, np.int64))

    def __len__(self) -> int:
        return len(self.items)

    def take(self, index: np.ndarray) -> "UserEvents":
        return UserEvents(self.items[index], self.ratings[index], self.timestamps[index], self.order[index])


def latest_events(events: UserEvents) -> UserEvents:
    """The user's events with each repeated item merged: rating and time of its latest event (a
    tie in time goes to the later in file order), at the place of its first event. Rows come
    out in file order."""
    by_item = np.lexsort((events.order, events.timestamps, events.items))
    items = events.items[by_item]
    starts = np.flatnonzero(np.r_[True, items[1:] != items[:-1]])
    latest = by_item[np.r_[starts[1:] - 1, len(items) - 1]]
    first_order = np.minimum.reduceat(events.order[by_item], starts)
    merged = dataclasses.replace(events.take(latest), order=first_order)
    return merged.take(np.argsort(first_order, kind="stable"))


def labels(ratings: np.ndarray, config: PrepareConfig) -> np.ndarray:
    """1.0 for a positive event under the config's label rule, else 0.0."""
    if config.label_rule == "implicit":
        return np.ones(len(ratings), np.float32)
    return (ratings >= config.positive_threshold).astype(np.float32)


@dataclasses.dataclass(frozen=True)
class SplitUser:
    """One user's events after the merge, the split and the cut."""

    events: UserEvents  # merged events in file order, cut events included
    label: np.ndarray  # per merged event
    kept: np.ndarray  # indices of the events the cut keeps, in file order
    split: np.ndarray  # split code per kept event

    def kept_train_items(self) -> np.ndarray:
        """Raw ids of the kept train events: what item popularity counts."""
        return self.events.items[self.kept[self.split == split_lib.TRAIN]]


def split_user(events: UserEvents, cut: bool, config: PrepareConfig) -> SplitUser:
    """Merge repeated items, split leave-last-k-out and, for a cut user, keep only the last
    `cold_user_train_items` train events.

    Args:
        events: the user's raw events.
        cut: whether the cold-user cut applies to this user (`split.is_cut`).
        config: the prepare settings.
    """
    merged = latest_events(events)
    label = labels(merged.ratings, config)
    local = _coded(merged, np.arange(len(merged)) + 1, label, user=1)
    split = split_lib.leave_last_k_out(local, config.test_k, config.valid_k)
    kept = np.arange(len(merged))
    if cut:
        kept = np.flatnonzero(split_lib.truncate_users(local, split, np.array([1]), config.cold_user_train_items))
    return SplitUser(merged, label, kept, split[kept])


@dataclasses.dataclass(frozen=True)
class ItemTables:
    """The item vocabulary and per-item-index tables every user needs (row 0 = padding)."""

    ids: np.ndarray  # sorted raw ids (object); vocabulary index k is ids[k - 1]
    category: np.ndarray  # category index per item index
    brand: np.ndarray  # brand index per item index
    popularity: np.ndarray  # kept train events per item index
    long_tail: np.ndarray  # bool per item index (segments.long_tail_items)

    @property
    def num_items(self) -> int:
        return len(self.ids)

    def index(self, raw_items: np.ndarray) -> np.ndarray:
        """Vocabulary indices of raw item ids (each must be in the vocabulary)."""
        return np.searchsorted(self.ids, raw_items).astype(np.int64) + 1


@dataclasses.dataclass(frozen=True)
class UserExamples:
    """What one user contributes to the dataset."""

    columns: dict[str, dict[str, np.ndarray]]  # split -> feature columns (features.FEATURES)
    sort_keys: dict[str, np.ndarray]  # split -> per row, its place in the shard (smaller first)
    train_items: list[int]  # train positives, item indices in time order (users.jsonl)
    is_cold: bool
    num_events: int  # events after merging repeated items, before the cut
    positive_events: int  # positive events kept by the cut


def user_examples(raw_user_id: str, user_index: int, events: UserEvents, cut: bool, tables: ItemTables,
                  config: PrepareConfig) -> UserExamples:
    """One user's rows of every split: the user's events, sampled negatives, histories and tags.

    A split holds the user's events of that split in file order followed by
    `train_negatives` (train) or `eval_negatives` (valid, test) sampled
    negatives per positive; a negative shares its positive's time and history
    and is never an item the user interacted with (before the cut).

    Args:
        raw_user_id: the user's id in the raw data (seeds the user's random numbers).
        user_index: the user's vocabulary index.
        events: the user's raw events.
        cut: whether the cold-user cut applies to this user (`split.is_cut`).
        tables: item indices, categories, brands, popularity and long-tail tags.
        config: the prepare settings.

    Returns:
        The user's columns and sort keys per split, train positives and tags.

    Raises:
        DataError: the user interacted with every item, so no negative can be sampled.
    """
    split = split_user(events, cut, config)
    items = tables.index(split.events.items)
    interacted = set(items.tolist())
    kept = _coded(split.events.take(split.kept), items[split.kept], split.label[split.kept], user_index)
    rng = np.random.default_rng([config.seed, shards.stable_hash(raw_user_id)])
    train_positives = int(((split.split == split_lib.TRAIN) & (kept.label > 0)).sum())
    is_cold = bool(segments.is_cold_start(train_positives))
    columns, sort_keys = {}, {}
    for name, code in SPLIT_CODES:
        per_positive = config.train_negatives if code == split_lib.TRAIN else config.eval_negatives
        rows = _with_negatives(raw_user_id, kept.take(split.split == code), per_positive, interacted,
                               tables.num_items, rng)
        hist, hist_len = split_lib.histories(kept, split.split, rows.user, rows.timestamp, features.HISTORY_LENGTH)
        columns[name] = {
            "user_id": rows.user, "item_id": rows.item,
            "item_category": tables.category[rows.item], "item_brand": tables.brand[rows.item],
            "hist_item_ids": hist, "hist_item_categories": tables.category[hist] * (hist > 0),
            "hist_len": hist_len, "item_pop": tables.popularity[rows.item],
            "is_cold_user": np.full(len(rows), int(is_cold), np.int64),
            "is_longtail_item": tables.long_tail[rows.item].astype(np.int64),
            "label": rows.label.astype(np.float32),
        }
        sort_keys[name] = rng.integers(0, _SORT_KEY_LIMIT, size=len(rows), dtype=np.int64)
    train = np.flatnonzero((split.split == split_lib.TRAIN) & (kept.label > 0))
    in_time_order = train[np.lexsort((train, kept.timestamp[train]))]
    return UserExamples(columns, sort_keys, kept.item[in_time_order].tolist(), is_cold, len(split.events),
                        int((kept.label > 0).sum()))


def _coded(events: UserEvents, items: np.ndarray, label: np.ndarray, user: int) -> split_lib.Events:
    return split_lib.Events(np.full(len(events), user, np.int64), items, events.timestamps, label)


def _with_negatives(raw_user_id: str, split_events: split_lib.Events, per_positive: int, interacted: set[int],
                    num_items: int, rng: np.random.Generator) -> split_lib.Events:
    """The split's events followed by `per_positive` sampled negatives per positive event."""
    positive = split_events.take(split_events.label > 0)
    sampled = split_lib.sample_negatives(raw_user_id, len(positive), per_positive, interacted, num_items, rng)
    negatives = split_lib.Events(
        user=np.repeat(positive.user, per_positive), item=sampled.reshape(-1),
        timestamp=np.repeat(positive.timestamp, per_positive), label=np.zeros(sampled.size, np.float32),
    )
    return split_lib.Events(*(np.concatenate([getattr(split_events, f), getattr(negatives, f)])
                              for f in ("user", "item", "timestamp", "label")))
