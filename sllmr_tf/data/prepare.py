"""`prepare`: raw source -> a complete dataset directory (see dataset_dir.py).

reader -> dedupe -> optional k-core -> label rule -> vocabularies -> per-user
chronological split -> optional cold-user truncation -> popularity and segment
tags -> sampled negatives -> histories -> TFRecord shards, stats, item and user
tables. Everything is written into a temporary sibling directory that is
renamed into place last, so a killed run never leaves a dataset that looks
complete, and a rerun with the same config is a no-op.
"""
from __future__ import annotations

import collections
import dataclasses
import hashlib
import json
import os
import shutil
import tempfile
import time
from typing import Callable

import numpy as np

from sllmr_tf import features
from sllmr_tf.data import dataset_dir, split as split_lib
from sllmr_tf.data.records import BadRecordPolicy, ItemInfo, RawSource

LABEL_RULES = ("threshold", "implicit")


@dataclasses.dataclass(frozen=True)
class PrepareConfig:
    """Every choice that changes the prepared data (its hash names the dataset version)."""

    dataset: str
    raw_dir: str | None = None
    category: str | None = None
    kcore: int = 0
    label_rule: str = "threshold"  # threshold: rating >= positive_threshold; implicit: all positive
    positive_threshold: float = 4.0
    test_k: int = 1
    valid_k: int = 1
    train_negatives: int = 1
    eval_negatives: int = 1
    cold_user_fraction: float = 0.0
    cold_user_train_items: int = 2
    num_shards: int = 4
    seed: int = 0
    on_bad_record: str = "error"
    source_options: tuple[tuple[str, object], ...] = ()  # e.g. synthetic world size

    def validate(self) -> None:
        if self.label_rule not in LABEL_RULES:
            raise ValueError(f"label_rule must be one of {LABEL_RULES}, got {self.label_rule!r}")
        for name in ("test_k", "valid_k", "num_shards"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("kcore", "train_negatives", "eval_negatives", "cold_user_train_items"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if not 0.0 <= self.cold_user_fraction < 1.0:
            raise ValueError(f"cold_user_fraction must be in [0, 1), got {self.cold_user_fraction}")

    def fingerprint(self) -> str:
        return hashlib.sha256(json.dumps(dataclasses.asdict(self), sort_keys=True,
                                         default=str).encode()).hexdigest()[:16]


Log = Callable[[str], None]


def prepare(config: PrepareConfig, source: RawSource, data_dir: str, overwrite: bool = False,
            log: Log = print) -> dict:
    """Build `data_dir` from `source`; returns its stats. Idempotent for the same config."""
    config.validate()
    existing = os.path.join(data_dir, dataset_dir.STATS_FILE)
    if os.path.exists(existing):
        with open(existing) as f:
            stats = json.load(f)
        if stats.get("config_fingerprint") == config.fingerprint():
            log(f"{data_dir} is already prepared with this config; nothing to do")
            return stats
        if not overwrite:
            raise FileExistsError(f"{data_dir} holds a dataset prepared with another config; "
                                  f"pass --overwrite to replace it")
    parent = os.path.dirname(os.path.abspath(data_dir))
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=".prepare-", dir=parent)
    try:
        stats = _build(config, source, tmp, log)
        _replace_dir(tmp, data_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return stats


def _replace_dir(tmp: str, data_dir: str) -> None:
    if os.path.exists(data_dir):
        old = data_dir.rstrip("/") + f".old-{os.getpid()}"
        os.replace(data_dir, old)
        os.replace(tmp, data_dir)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, data_dir)


def _build(config: PrepareConfig, source: RawSource, out: str, log: Log) -> dict:
    started = time.time()
    policy = BadRecordPolicy(config.on_bad_record)
    rng = np.random.default_rng(config.seed)

    item_info = _read_items(source, policy, log)
    raw = _read_interactions(source, policy, log)
    raw = _kcore(raw, config.kcore) if config.kcore else raw
    if not raw["user"]:
        raise ValueError(f"{config.dataset}: no interactions left after reading and filtering")

    vocabs = _vocabularies(raw, item_info)
    codes = {name: {key: index for index, key in enumerate(vocab) if index} for name, vocab in vocabs.items()}
    num_users, num_items = len(vocabs["user"]) - 1, len(vocabs["item"]) - 1
    events = split_lib.Events(
        user=np.fromiter((codes["user"][u] for u in raw["user"]), np.int64, len(raw["user"])),
        item=np.fromiter((codes["item"][i] for i in raw["item"]), np.int64, len(raw["item"])),
        timestamp=np.asarray(raw["timestamp"], np.int64),
        label=_labels(np.asarray(raw["rating"], np.float64), config),
    )
    num_interactions = len(events)

    splits = split_lib.leave_last_k_out(events, config.test_k, config.valid_k)
    keep = split_lib.truncate_users(events, splits, config.cold_user_fraction,
                                    config.cold_user_train_items, rng)
    events, splits = events.take(keep), splits[keep]

    popularity = split_lib.item_popularity(events, splits, num_items)
    long_tail = split_lib.long_tail_items(popularity)
    train_counts = split_lib.train_positive_counts(events, splits, num_users)
    cold = split_lib.cold_start_users(train_counts)
    item_category = np.zeros(num_items + 1, np.int64)
    item_brand = np.zeros(num_items + 1, np.int64)
    for index, key in enumerate(vocabs["item"][1:], start=1):
        info = item_info.get(key)
        if info is not None:
            item_category[index] = codes["category"].get(info.category, 0)
            item_brand[index] = codes["brand"].get(info.brand, 0)

    interacted: list[set[int]] = [set() for _ in range(num_users + 1)]
    for u, i in zip(events.user.tolist(), events.item.tolist()):
        interacted[u].add(i)

    split_rows = {}
    for code, name in ((split_lib.TRAIN, "train"), (split_lib.VALID, "valid"), (split_lib.TEST, "test")):
        negatives = config.train_negatives if code == split_lib.TRAIN else config.eval_negatives
        rows = _rows_with_negatives(events.take(splits == code), negatives, interacted, num_items, rng)
        hist, hist_len = split_lib.histories(events, splits, rows.user, rows.timestamp, features.HISTORY_LENGTH)
        if code == split_lib.TRAIN:
            shuffle = rng.permutation(len(rows))
            rows, hist, hist_len = rows.take(shuffle), hist[shuffle], hist_len[shuffle]
        columns = {
            "user_id": rows.user, "item_id": rows.item,
            "item_category": item_category[rows.item], "item_brand": item_brand[rows.item],
            "hist_item_ids": hist, "hist_item_categories": item_category[hist] * (hist > 0),
            "hist_len": hist_len, "item_pop": popularity[rows.item],
            "is_cold_user": cold[rows.user].astype(np.int64),
            "is_longtail_item": long_tail[rows.item].astype(np.int64),
            "label": rows.label.astype(np.float32),
        }
        _write_shards(os.path.join(out, name), columns, config.num_shards, name, log)
        split_rows[name] = _segment_counts(columns)

    _write_vocabs(out, vocabs)
    _write_items(out, vocabs, item_info, item_category, item_brand, popularity, long_tail)
    _write_users(out, vocabs, events, splits, cold)
    if hasattr(source, "write_extras"):
        source.write_extras(out, vocabs)

    stats = {
        "dataset": config.dataset,
        "num_users": num_users,
        "num_items": num_items,
        "num_interactions": num_interactions,
        "num_positive_interactions": int((events.label > 0).sum()),
        "segments": {
            "cold_start_users": int(cold.sum()),
            "long_tail_items": int(long_tail.sum()),
            "cold_start_definition": f"< {split_lib.COLD_START_MAX_TRAIN_ITEMS + 1} train positives",
            "long_tail_definition": f"bottom {split_lib.LONG_TAIL_FRACTION:.0%} of train popularity",
        },
        "splits": split_rows,
        "vocab_sizes": {name: len(vocab) - 1 for name, vocab in vocabs.items()},
        "bad_records_skipped": dict(policy.skipped),
        "config": dataclasses.asdict(config),
        "config_fingerprint": config.fingerprint(),
        "prepare_seconds": round(time.time() - started, 2),
    }
    with open(os.path.join(out, dataset_dir.STATS_FILE), "w") as f:
        json.dump(stats, f, indent=2, default=str)
    return stats


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


def _labels(ratings: np.ndarray, config: PrepareConfig) -> np.ndarray:
    if config.label_rule == "implicit":
        return np.ones(len(ratings), np.float32)
    return (ratings >= config.positive_threshold).astype(np.float32)


def _vocabularies(raw: dict[str, list], item_info: dict[str, ItemInfo]) -> dict[str, list[str]]:
    """Sorted raw ids; index 0 is the padding/OOV slot ''."""
    users = sorted(set(raw["user"]))
    items = sorted(set(raw["item"]))
    categories = sorted({item_info[i].category for i in items if i in item_info} - {""})
    brands = sorted({item_info[i].brand for i in items if i in item_info} - {""})
    return {"user": [""] + users, "item": [""] + items, "category": [""] + categories,
            "brand": [""] + brands}


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


def _write_shards(folder: str, columns: dict[str, np.ndarray], num_shards: int, name: str,
                  log: Log) -> None:
    """Rows go round-robin to shards so every shard is a uniform sample."""
    import tensorflow as tf

    os.makedirs(folder, exist_ok=True)
    n = len(columns["label"])
    writers = [tf.io.TFRecordWriter(os.path.join(folder, dataset_dir.shard_name(s, num_shards)),
                                    options=dataset_dir.COMPRESSION) for s in range(num_shards)]
    lists = {f.name: columns[f.name].reshape(n, -1).tolist() for f in features.FEATURES}
    kinds = {f.name: f.dtype for f in features.FEATURES}
    for row in range(n):
        feats = {}
        for feature_name, values in lists.items():
            if kinds[feature_name] == "int64":
                feats[feature_name] = tf.train.Feature(int64_list=tf.train.Int64List(value=values[row]))
            else:
                feats[feature_name] = tf.train.Feature(float_list=tf.train.FloatList(value=values[row]))
        example = tf.train.Example(features=tf.train.Features(feature=feats))
        writers[row % num_shards].write(example.SerializeToString())
        if (row + 1) % 100_000 == 0:
            log(f"  {name}: wrote {row + 1:,}/{n:,} examples")
    for writer in writers:
        writer.close()
    log(f"{name}: {n:,} examples in {num_shards} shards")


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
    os.makedirs(os.path.join(out, "vocab"), exist_ok=True)
    for name, vocab in vocabs.items():
        with open(os.path.join(out, "vocab", f"{name}.txt"), "w", encoding="utf-8") as f:
            f.writelines(key.replace("\n", " ") + "\n" for key in vocab[1:])


def _write_items(out: str, vocabs, item_info, item_category, item_brand, popularity, long_tail) -> None:
    with open(os.path.join(out, dataset_dir.ITEMS_FILE), "w", encoding="utf-8") as f:
        for index, key in enumerate(vocabs["item"][1:], start=1):
            info = item_info.get(key, ItemInfo(key))
            row = {
                "index": index, "id": key, "title": info.title, "category": info.category,
                "brand": info.brand, "category_index": int(item_category[index]),
                "brand_index": int(item_brand[index]), "text": info.text(),
                "popularity": int(popularity[index]), "is_longtail": bool(long_tail[index]),
            }
            f.write(json.dumps(row, ensure_ascii=False) + "\n")


def _write_users(out: str, vocabs, events: split_lib.Events, splits: np.ndarray, cold: np.ndarray) -> None:
    """Each user's train positives in time order: the history LLM prompts are built from."""
    positive_train = np.flatnonzero((splits == split_lib.TRAIN) & (events.label > 0))
    order = positive_train[np.lexsort((positive_train, events.timestamp[positive_train],
                                       events.user[positive_train]))]
    by_user: dict[int, list[int]] = collections.defaultdict(list)
    for u, i in zip(events.user[order].tolist(), events.item[order].tolist()):
        by_user[u].append(i)
    with open(os.path.join(out, dataset_dir.USERS_FILE), "w", encoding="utf-8") as f:
        for index, key in enumerate(vocabs["user"][1:], start=1):
            f.write(json.dumps({"index": index, "id": key, "train_items": by_user.get(index, []),
                                "is_cold": bool(cold[index])}) + "\n")
