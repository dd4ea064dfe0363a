"""`prepare`: raw source -> a complete dataset directory (see dataset_dir.py).

The stages, each a function below:

    read       items (first row of an id wins) and interactions (a repeated
               user-item pair keeps its latest event), then the optional k-core
    encode     vocabularies and integer-coded events with their labels
    split      per-user chronological leave-last-k-out, optional cold-user cut
    tag        popularity, long-tail items, train positives, cold-start users
    rows       each split's events plus sampled negatives and histories, as columns
    write      TFRecord shards, vocabularies, item and user tables, stats.json

Everything is written into a temporary sibling directory that is renamed into
place last, so a killed run never leaves a dataset that looks complete, and a
rerun with the same config is a no-op.
"""
from __future__ import annotations

import collections
import contextlib
import dataclasses
import json
import time
from typing import Callable

import numpy as np

from sllmr_tf import features, fileio, segments, shards
from sllmr_tf.data import dataset_dir, split as split_lib
from sllmr_tf.data.config import PrepareConfig
from sllmr_tf.data.records import BadRecordPolicy, ItemInfo, RawSource
from sllmr_tf.errors import ArtifactError, DataError

Log = Callable[[str], None]
SPLIT_CODES = (("train", split_lib.TRAIN), ("valid", split_lib.VALID), ("test", split_lib.TEST))


@dataclasses.dataclass
class _Coded:
    """The encoded interactions and the tables built from them."""

    vocabs: dict[str, list[str]]  # vocabulary -> raw ids in index order ('' at 0)
    events: split_lib.Events
    item_category: np.ndarray  # category index per item index
    item_brand: np.ndarray  # brand index per item index

    @property
    def num_users(self) -> int:
        return len(self.vocabs["user"]) - 1

    @property
    def num_items(self) -> int:
        return len(self.vocabs["item"]) - 1


@dataclasses.dataclass
class _Tags:
    """Per-item and per-user tags computed on the train split."""

    popularity: np.ndarray  # train events per item index
    long_tail: np.ndarray  # bool per item index
    cold: np.ndarray  # bool per user index


def prepare(config: PrepareConfig, source: RawSource, data_dir: str, overwrite: bool = False,
            log: Log = print) -> dict:
    """Build `data_dir` from `source`; idempotent for the same config.

    Args:
        config: the prepare settings (validated here).
        source: the raw source the config names (`readers.open_source(config)`).
        data_dir: the output directory; replaced only with `overwrite`.
        overwrite: replace a dataset prepared with another config.
        log: where progress lines go.

    Returns:
        The dataset's stats (the content of stats.json).

    Raises:
        UserError: bad config, bad records, data too small to split, or an existing
            dataset of another config without `overwrite`.
    """
    config.validate()
    existing = fileio.read_json(fileio.join(data_dir, dataset_dir.STATS_FILE))
    if existing is not None:
        if existing.get("config_fingerprint") == config.fingerprint():
            log(f"{data_dir} is already prepared with this config; nothing to do")
            return existing
        if not overwrite:
            raise ArtifactError(f"{data_dir} holds a dataset prepared with another config; "
                                "pass --overwrite to replace it")
    tmp = fileio.temporary_sibling(data_dir, "prepare")
    try:
        stats = _build(config, source, tmp, log)
        _replace_dir(tmp, data_dir)
    except BaseException:
        fileio.rmtree(tmp)
        raise
    return stats


def _replace_dir(tmp: str, data_dir: str) -> None:
    if fileio.exists(data_dir):
        old = fileio.temporary_sibling(data_dir, "old")
        fileio.rename(data_dir, old)
        fileio.rename(tmp, data_dir)
        fileio.rmtree(old)
    else:
        fileio.rename(tmp, data_dir)


def _build(config: PrepareConfig, source: RawSource, out: str, log: Log) -> dict:
    started = time.time()
    policy = BadRecordPolicy(config.on_bad_record)
    rng = np.random.default_rng(config.seed)
    item_info = _read_items(source, policy, log)
    raw = _read_interactions(source, policy, log)
    raw = _kcore(raw, config.kcore) if config.kcore else raw
    if not raw["user"]:
        raise DataError(f"{config.dataset}: no interactions left after reading and filtering")
    coded = _encode(raw, item_info, config)
    num_interactions = len(coded.events)
    events, splits = _split(coded.events, config, rng)
    tags = _tag(events, splits, coded)

    interacted = _interacted(events, coded.num_users)
    columns = {name: _split_columns(events, splits, code, coded, tags, interacted, config, rng)
               for name, code in SPLIT_CODES}
    _check_splits(columns, raw, config)
    fileio.makedirs(out)
    for name, split_columns in columns.items():
        _write_shards(out, name, split_columns, config.num_shards, log)
    _write_vocabs(out, coded.vocabs)
    _write_items(out, coded, item_info, tags)
    _write_users(out, coded.vocabs, events, splits, tags.cold)
    if hasattr(source, "write_extras"):
        source.write_extras(out, coded.vocabs)
    stats = {
        "dataset": config.dataset,
        "num_users": coded.num_users,
        "num_items": coded.num_items,
        "num_interactions": num_interactions,
        "num_positive_interactions": int((events.label > 0).sum()),
        "segments": {
            "cold_start_users": int(tags.cold.sum()),
            "long_tail_items": int(tags.long_tail.sum()),
            "cold_start_definition": segments.COLD_START_DEFINITION,
            "long_tail_definition": segments.LONG_TAIL_DEFINITION,
        },
        "splits": {name: _segment_counts(split_columns) for name, split_columns in columns.items()},
        "vocab_sizes": {name: len(vocab) - 1 for name, vocab in coded.vocabs.items()},
        "bad_records_skipped": dict(policy.skipped),
        "config": dataclasses.asdict(config),
        "config_fingerprint": config.fingerprint(),
        "prepare_seconds": round(time.time() - started, 2),
    }
    fileio.write_json(fileio.join(out, dataset_dir.STATS_FILE), stats)
    return stats


# --- read ---------------------------------------------------------------------------------------


def _read_items(source: RawSource, policy: BadRecordPolicy, log: Log) -> dict[str, ItemInfo]:
    items: dict[str, ItemInfo] = {}
    duplicates = 0
    for info in source.items(policy):
        if info.item in items:
            duplicates += 1
            continue
        items[info.item] = info
    log(f"read {len(items)} items" + (f" ({duplicates} duplicate ids ignored)" if duplicates else ""))
    return items


def _read_interactions(source: RawSource, policy: BadRecordPolicy, log: Log) -> dict[str, list]:
    """Reads the stream; a repeated (user, item) keeps its latest event."""
    latest: dict[tuple[str, str], tuple[float, int]] = {}
    count = 0
    for count, event in enumerate(source.interactions(policy), start=1):
        key = (event.user, event.item)
        previous = latest.get(key)
        if previous is None or event.timestamp >= previous[1]:
            latest[key] = (event.rating, event.timestamp)
        if count % 200_000 == 0:
            log(f"  read {count:,} interactions")
    log(f"read {count:,} interactions ({count - len(latest):,} repeated user-item pairs merged)"
        + (f", skipped {policy.total_skipped} bad records" if policy.total_skipped else ""))
    out: dict[str, list] = {"user": [], "item": [], "rating": [], "timestamp": []}
    for (user, item), (rating, timestamp) in latest.items():
        out["user"].append(user)
        out["item"].append(item)
        out["rating"].append(rating)
        out["timestamp"].append(timestamp)
    return out


def _kcore(raw: dict[str, list], k: int) -> dict[str, list]:
    """Iteratively drop users and items with fewer than k interactions."""
    keep = np.ones(len(raw["user"]), bool)
    users, items = np.asarray(raw["user"], object), np.asarray(raw["item"], object)
    while True:
        user_counts = collections.Counter(users[keep])
        item_counts = collections.Counter(items[keep])
        drop = keep & (np.fromiter((user_counts[u] < k for u in users), bool, len(users))
                       | np.fromiter((item_counts[i] < k for i in items), bool, len(items)))
        if not drop.any():
            break
        keep &= ~drop
    return {name: [v for v, kept in zip(values, keep) if kept] for name, values in raw.items()}


# --- encode, split, tag -------------------------------------------------------------------------


def _encode(raw: dict[str, list], item_info: dict[str, ItemInfo], config: PrepareConfig) -> _Coded:
    vocabs = _vocabularies(raw, item_info)
    codes = {name: {key: index for index, key in enumerate(vocab) if index} for name, vocab in vocabs.items()}
    events = split_lib.Events(
        user=np.fromiter((codes["user"][u] for u in raw["user"]), np.int64, len(raw["user"])),
        item=np.fromiter((codes["item"][i] for i in raw["item"]), np.int64, len(raw["item"])),
        timestamp=np.asarray(raw["timestamp"], np.int64),
        label=_labels(np.asarray(raw["rating"], np.float64), config),
    )
    num_items = len(vocabs["item"]) - 1
    item_category = np.zeros(num_items + 1, np.int64)
    item_brand = np.zeros(num_items + 1, np.int64)
    for index, key in enumerate(vocabs["item"][1:], start=1):
        info = item_info.get(key)
        if info is not None:
            item_category[index] = codes["category"].get(info.category, 0)
            item_brand[index] = codes["brand"].get(info.brand, 0)
    return _Coded(vocabs, events, item_category, item_brand)


def _vocabularies(raw: dict[str, list], item_info: dict[str, ItemInfo]) -> dict[str, list[str]]:
    """Sorted raw ids; index 0 is the padding/OOV slot ''."""
    users = sorted(set(raw["user"]))
    items = sorted(set(raw["item"]))
    categories = sorted({item_info[i].category for i in items if i in item_info} - {""})
    brands = sorted({item_info[i].brand for i in items if i in item_info} - {""})
    return {"user": [""] + users, "item": [""] + items, "category": [""] + categories,
            "brand": [""] + brands}


def _labels(ratings: np.ndarray, config: PrepareConfig) -> np.ndarray:
    if config.label_rule == "implicit":
        return np.ones(len(ratings), np.float32)
    return (ratings >= config.positive_threshold).astype(np.float32)


def _split(events: split_lib.Events, config: PrepareConfig,
           rng: np.random.Generator) -> tuple[split_lib.Events, np.ndarray]:
    """(the events kept, their split codes): leave-last-k-out, then the optional cold-user cut."""
    splits = split_lib.leave_last_k_out(events, config.test_k, config.valid_k)
    keep = split_lib.truncate_users(events, splits, config.cold_user_fraction,
                                    config.cold_user_train_items, rng)
    return events.take(keep), splits[keep]


def _tag(events: split_lib.Events, splits: np.ndarray, coded: _Coded) -> _Tags:
    popularity = split_lib.item_popularity(events, splits, coded.num_items)
    train_positives = split_lib.train_positive_counts(events, splits, coded.num_users)
    return _Tags(popularity, segments.long_tail_items(popularity), segments.cold_start_users(train_positives))


# --- rows ---------------------------------------------------------------------------------------


def _split_columns(events: split_lib.Events, splits: np.ndarray, code: int, coded: _Coded, tags: _Tags,
                   interacted: list[set[int]], config: PrepareConfig,
                   rng: np.random.Generator) -> dict[str, np.ndarray]:
    """One split's examples as feature columns (features.FEATURES): its events, their sampled
    negatives and every row's history. Train rows are shuffled."""
    negatives = config.train_negatives if code == split_lib.TRAIN else config.eval_negatives
    rows = _rows_with_negatives(events.take(splits == code), negatives, interacted, coded.num_items, rng)
    hist, hist_len = split_lib.histories(events, splits, rows.user, rows.timestamp, features.HISTORY_LENGTH)
    if code == split_lib.TRAIN:
        shuffle = rng.permutation(len(rows))
        rows, hist, hist_len = rows.take(shuffle), hist[shuffle], hist_len[shuffle]
    return {
        "user_id": rows.user, "item_id": rows.item,
        "item_category": coded.item_category[rows.item], "item_brand": coded.item_brand[rows.item],
        "hist_item_ids": hist, "hist_item_categories": coded.item_category[hist] * (hist > 0),
        "hist_len": hist_len, "item_pop": tags.popularity[rows.item],
        "is_cold_user": tags.cold[rows.user].astype(np.int64),
        "is_longtail_item": tags.long_tail[rows.item].astype(np.int64),
        "label": rows.label.astype(np.float32),
    }


def _interacted(events: split_lib.Events, num_users: int) -> list[set[int]]:
    """Every item each user interacted with, in any split: never a sampled negative."""
    interacted: list[set[int]] = [set() for _ in range(num_users + 1)]
    for u, i in zip(events.user.tolist(), events.item.tolist()):
        interacted[u].add(i)
    return interacted


def _rows_with_negatives(positives_and_rated: split_lib.Events, per_positive: int,
                         interacted: list[set[int]], num_items: int,
                         rng: np.random.Generator) -> split_lib.Events:
    """The split's events plus `per_positive` sampled negatives per positive event.

    A sampled negative shares its positive's user and time, hence its history.
    """
    positive = positives_and_rated.take(positives_and_rated.label > 0)
    if per_positive == 0 or len(positive) == 0:
        return positives_and_rated
    sampled = split_lib.sample_negatives(positive.user, per_positive, interacted, num_items, rng)
    negatives = split_lib.Events(
        user=np.repeat(positive.user, per_positive), item=sampled.reshape(-1),
        timestamp=np.repeat(positive.timestamp, per_positive),
        label=np.zeros(sampled.size, np.float32),
    )
    return split_lib.Events(*(np.concatenate([a, b]) for a, b in zip(
        dataclasses.astuple(positives_and_rated), dataclasses.astuple(negatives))))


def _check_splits(columns: dict[str, dict[str, np.ndarray]], raw: dict[str, list],
                  config: PrepareConfig) -> None:
    """Every split needs positive and negative examples: training learns from train, early
    stopping reads valid, the metrics read test.

    Raises:
        DataError: naming the split, what it lacks and what to change.
    """
    per_user = collections.Counter(raw["user"])
    most = max(per_user.values())
    for name, split_columns in columns.items():
        labels = split_columns["label"]
        positives, negatives = int((labels > 0).sum()), int((labels == 0).sum())
        if positives and negatives:
            continue
        if name != "train" and most < 2:
            reason = (f"no user has more than 1 interaction ({len(per_user):,} users): leave-last-out "
                      "needs users with at least 2")
        elif name == "valid" and most < 3:
            reason = ("no user has more than 2 interactions: a valid event needs a third one "
                      "(train, valid, test); gather more interactions per user")
        elif not positives:
            reason = (f"no positive events (rating >= {config.positive_threshold:g} under label_rule "
                      f"{config.label_rule}); lower --positive_threshold or use --label_rule=implicit")
        else:
            option = "--train_negatives" if name == "train" else "--eval_negatives"
            reason = f"no negative events; set {option} >= 1"
        raise DataError(f"{config.dataset}: the {name} split has {positives:,} positive and "
                        f"{negatives:,} negative examples: {reason}")


# --- write --------------------------------------------------------------------------------------


def _write_shards(out: str, split: str, columns: dict[str, np.ndarray], num_shards: int, log: Log) -> None:
    """Rows go round-robin to shards so every shard is a uniform sample."""
    n = len(columns["label"])
    with contextlib.ExitStack() as stack:
        writers = [stack.enter_context(shards.ShardWriter(dataset_dir.split_shard_path(out, split, s, num_shards)))
                   for s in range(num_shards)]
        for row, example in enumerate(features.iter_examples(columns)):
            writers[row % num_shards].write(features.serialize(example))
            if (row + 1) % 100_000 == 0:
                log(f"  {split}: wrote {row + 1:,}/{n:,} examples")
    log(f"{split}: {n:,} examples in {num_shards} shards")


def _segment_counts(columns: dict[str, np.ndarray]) -> dict:
    label = columns["label"] > 0
    cold = columns["is_cold_user"] > 0
    tail = columns["is_longtail_item"] > 0
    return {
        "examples": int(len(label)), "positives": int(label.sum()),
        "cold_start_user_examples": int(cold.sum()), "cold_start_user_positives": int((cold & label).sum()),
        "long_tail_item_examples": int(tail.sum()), "long_tail_item_positives": int((tail & label).sum()),
    }


def _write_vocabs(out: str, vocabs: dict[str, list[str]]) -> None:
    for name, vocab in vocabs.items():
        fileio.write_atomic(fileio.join(out, dataset_dir.VOCAB_DIR, f"{name}.txt"),
                            "".join(key.replace("\n", " ") + "\n" for key in vocab[1:]))


def _write_items(out: str, coded: _Coded, item_info: dict[str, ItemInfo], tags: _Tags) -> None:
    lines = []
    for index, key in enumerate(coded.vocabs["item"][1:], start=1):
        info = item_info.get(key, ItemInfo(key))
        row = {
            "index": index, "id": key, "title": info.title, "category": info.category,
            "brand": info.brand, "category_index": int(coded.item_category[index]),
            "brand_index": int(coded.item_brand[index]), "text": info.text(),
            "popularity": int(tags.popularity[index]), "is_longtail": bool(tags.long_tail[index]),
        }
        lines.append(json.dumps(row, ensure_ascii=False) + "\n")
    fileio.write_atomic(fileio.join(out, dataset_dir.ITEMS_FILE), "".join(lines))


def _write_users(out: str, vocabs: dict[str, list[str]], events: split_lib.Events, splits: np.ndarray,
                 cold: np.ndarray) -> None:
    """Each user's train positives in time order: the history LLM prompts are built from."""
    positive_train = np.flatnonzero((splits == split_lib.TRAIN) & (events.label > 0))
    order = positive_train[np.lexsort((positive_train, events.timestamp[positive_train],
                                       events.user[positive_train]))]
    by_user: dict[int, list[int]] = collections.defaultdict(list)
    for u, i in zip(events.user[order].tolist(), events.item[order].tolist()):
        by_user[u].append(i)
    lines = [json.dumps({"index": index, "id": key, "train_items": by_user.get(index, []),
                         "is_cold": bool(cold[index])}) + "\n"
             for index, key in enumerate(vocabs["user"][1:], start=1)]
    fileio.write_atomic(fileio.join(out, dataset_dir.USERS_FILE), "".join(lines))
