"""Candidate lists per user, with targeted augmentation for cold-start users and long-tail items.

A list mixes some of the user's train positives with items the user never
interacted with, in random order. Every user gets `lists_per_user` regular
lists. Targeted augmentation adds lists marked `augmented`:

- cold-start users get `cold_user_factor` times as many lists (the extra ones
  are built exactly like the regular ones), so their pairs grow by that factor;
- long-tail lists draw their negatives from long-tail items only; each user gets
  as many as needed (stochastically rounded) for the expected number of
  long-tail candidates in the user's lists to grow by `longtail_factor`.

Each user's lists come from a generator seeded by (seed, user index), regular
lists first, so sharding, `--max_lists` and the augmentation factors never
change a user's regular lists.
"""
from __future__ import annotations

import dataclasses
from typing import Iterator, Sequence

import numpy as np

from sllmr_tf import features, shards
from sllmr_tf.errors import ConfigError
from sllmr_tf.scoring.config import CandidateConfig


@dataclasses.dataclass(frozen=True)
class CandidateList:
    user_index: int
    list_index: int  # the list's number among the user's lists
    source: int  # features.SOURCE_REGULAR | features.SOURCE_AUGMENTED
    candidates: tuple[int, ...]  # item indices in the list's own (random) order
    history: tuple[int, ...]  # train items not among the candidates (never empty), most recent first


def user_lists(user: dict, num_items: int, longtail_items: np.ndarray,
               config: CandidateConfig) -> list[CandidateList]:
    """All lists of one user row of users.jsonl (none without a train positive)."""
    train = list(dict.fromkeys(user["train_items"]))  # chronological, duplicates dropped
    if not train:
        return []
    seen = np.zeros(num_items + 1, bool)
    seen[0] = True
    seen[train] = True
    rng = np.random.default_rng([config.seed, int(user["index"])])
    base = config.lists_per_user
    extra_cold = round((config.cold_user_factor - 1.0) * base) if user["is_cold"] else 0
    unseen = np.flatnonzero(~seen)
    unseen_longtail = longtail_items[~seen[longtail_items]]
    sources = [features.SOURCE_REGULAR] * base + [features.SOURCE_AUGMENTED] * extra_cold
    lists = [_one_list(rng, user, i, source, train, unseen, unseen, config)
             for i, source in enumerate(sources)]
    if unseen.size and config.longtail_factor > 1.0:
        # Each list holds (list_size - positives) negatives, a share p of them long-tail in
        # expectation; (factor - 1) * p lists of long-tail negatives per list multiply that.
        wanted = (config.longtail_factor - 1.0) * len(lists) * unseen_longtail.size / unseen.size
        count = int(wanted) + int(rng.random() < wanted - int(wanted))
        lists += [_one_list(rng, user, len(lists) + i, features.SOURCE_AUGMENTED, train, unseen_longtail,
                            unseen, config) for i in range(count)]
    return lists


def iter_lists(users: Sequence[dict], num_items: int, is_longtail: np.ndarray, config: CandidateConfig,
               shard_index: int = 0, num_shards: int = 1, *, num_data_shards: int) -> Iterator[CandidateList]:
    """Every list of the users of scorer process `shard_index` of `num_shards`: the users of the
    dataset shards s (of `num_data_shards`, by `shards.user_shard` of the raw id) with
    s % num_shards == shard_index, so a process's pairs are those of whole data shards.

    `is_longtail` is a bool mask over item indices 0..num_items.

    Raises:
        ConfigError: more scorer processes than data shards (some would have no users).
    """
    config.validate()
    if num_shards > num_data_shards:
        raise ConfigError(f"num_shards {num_shards} > the dataset's {num_data_shards} shards: a scorer process "
                          f"covers whole data shards; use --num_shards <= {num_data_shards}")
    mine = set(shards.worker_shards(num_data_shards, shard_index, num_shards))
    longtail_items = np.flatnonzero(np.asarray(is_longtail, bool))
    for user in users:
        if shards.user_shard(user["id"], num_data_shards) in mine:
            yield from user_lists(user, num_items, longtail_items, config)


def _one_list(rng: np.random.Generator, user: dict, list_index: int, source: int, train: list[int],
              pool: np.ndarray, unseen: np.ndarray, config: CandidateConfig) -> CandidateList:
    # At least one train positive stays out of the list as history: without one the scorer
    # has nothing to personalise on, and cold-start users (1-2 positives) would get no pairs.
    num_pos = min(config.positives_per_list, len(train) - 1)
    positives = rng.choice(np.asarray(train), size=num_pos, replace=False)
    num_neg = min(config.list_size - num_pos, unseen.size)
    negatives = rng.choice(pool, size=min(num_neg, pool.size), replace=False)
    if negatives.size < num_neg:  # the pool ran short: top up from every unseen item
        rest = np.setdiff1d(unseen, negatives)
        negatives = np.concatenate([negatives, rng.choice(rest, size=num_neg - negatives.size, replace=False)])
    candidates = rng.permutation(np.concatenate([positives, negatives]))
    chosen = set(candidates.tolist())
    history = [i for i in reversed(train) if i not in chosen][:config.history_length]
    return CandidateList(int(user["index"]), list_index, source,
                         tuple(int(c) for c in candidates), tuple(history))
