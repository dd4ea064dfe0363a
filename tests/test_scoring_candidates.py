"""Candidate lists: composition, determinism, and targeted augmentation by the configured factors."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from sllmr_tf import features
from sllmr_tf.scoring.candidates import iter_lists, user_lists
from sllmr_tf.scoring.config import CandidateConfig
from sllmr_tf.errors import ConfigError

NUM_ITEMS = 400
IS_LONGTAIL = np.zeros(NUM_ITEMS + 1, bool)
IS_LONGTAIL[321:] = True  # items 321..400: the bottom 20%


def _users(count=600, seed=0):
    """Users with 1..30 train positives (the first chronologically first); < 3 are cold."""
    rng = np.random.default_rng(seed)
    users = []
    for index in range(1, count + 1):
        n = int(rng.integers(1, 31))
        users.append({"index": index, "id": f"u{index}", "train_items": rng.choice(np.arange(1, 321), n, replace=False).tolist(),
                      "is_cold": n < 3})
    return users


USERS = _users()
NO_AUGMENTATION = CandidateConfig(cold_user_factor=1.0, longtail_factor=1.0)


def _lists(config, users=USERS, **kwargs):
    return list(iter_lists(users, NUM_ITEMS, IS_LONGTAIL, config, **{"num_data_shards": 6, **kwargs}))


def test_a_list_mixes_train_positives_with_unseen_items_and_keeps_one_for_the_history():
    config = CandidateConfig(list_size=12, positives_per_list=4, history_length=5)
    for cl in _lists(config)[:200]:
        user = USERS[cl.user_index - 1]
        train = set(user["train_items"])
        assert len(cl.candidates) == 12 and len(set(cl.candidates)) == 12
        assert sum(c in train for c in cl.candidates) == min(4, len(train) - 1)
        assert not set(cl.history) & set(cl.candidates)
        assert 1 <= len(cl.history) <= 5
        recent_first = [i for i in reversed(user["train_items"]) if i not in cl.candidates]
        assert list(cl.history) == recent_first[:5]


def test_cold_start_users_with_one_or_two_positives_still_get_lists_with_a_history():
    for train_items in ([7], [7, 9]):
        user = {"index": 1, "train_items": train_items, "is_cold": True}
        lists = user_lists(user, NUM_ITEMS, np.flatnonzero(IS_LONGTAIL), CandidateConfig())
        assert len(lists) >= 3  # cold_user_factor 3
        for cl in lists:
            assert cl.history == (train_items[-1],) if len(train_items) == 1 else len(cl.history) == 1
            assert len(cl.candidates) == CandidateConfig().list_size


def test_lists_are_seeded_and_do_not_depend_on_sharding():
    config = CandidateConfig()
    assert _lists(config) == _lists(config)
    sharded = sorted(_lists(config, shard_index=0, num_shards=3) + _lists(config, shard_index=1, num_shards=3)
                     + _lists(config, shard_index=2, num_shards=3), key=lambda c: (c.user_index, c.list_index))
    assert sharded == _lists(config)
    assert _lists(config) != _lists(dataclasses.replace(config, seed=1))


def test_users_without_train_positives_get_no_list():
    assert user_lists({"index": 1, "train_items": [], "is_cold": True}, NUM_ITEMS,
                      np.flatnonzero(IS_LONGTAIL), CandidateConfig()) == []


def test_augmentation_never_changes_the_regular_lists():
    regular = [c for c in _lists(CandidateConfig(cold_user_factor=3, longtail_factor=4))
               if c.source == features.SOURCE_REGULAR]
    assert regular == _lists(NO_AUGMENTATION)


def test_cold_users_get_cold_user_factor_times_the_lists():
    config = CandidateConfig(lists_per_user=2, cold_user_factor=3.0, longtail_factor=1.0)
    lists = _lists(config)
    for user in USERS:
        mine = [c for c in lists if c.user_index == user["index"]]
        assert len(mine) == (6 if user["is_cold"] else 2)
        assert sum(c.source == features.SOURCE_AUGMENTED for c in mine) == (4 if user["is_cold"] else 0)


@pytest.mark.parametrize("factor", [2.0, 3.0])
def test_long_tail_candidates_grow_by_longtail_factor(factor):
    base = sum(IS_LONGTAIL[list(c.candidates)].sum() for c in _lists(NO_AUGMENTATION))
    boosted = _lists(dataclasses.replace(NO_AUGMENTATION, longtail_factor=factor))
    total = sum(IS_LONGTAIL[list(c.candidates)].sum() for c in boosted)
    print(f"long-tail candidates: {base} without augmentation, {total} with factor {factor} "
          f"(ratio {total / base:.3f})")
    assert total / base == pytest.approx(factor, rel=0.08)
    extra = [c for c in boosted if c.source == features.SOURCE_AUGMENTED]
    for cl in extra:  # every negative of an augmented list is long-tail
        train = set(USERS[cl.user_index - 1]["train_items"])
        assert all(IS_LONGTAIL[c] for c in cl.candidates if c not in train)
    assert extra


@pytest.mark.parametrize("field, value", [("list_size", 1), ("list_size", 27), ("positives_per_list", 10),
                                          ("lists_per_user", 0), ("cold_user_factor", 0.5),
                                          ("longtail_factor", 0.0), ("history_length", -1)])
def test_bad_config_is_rejected_with_the_field_named(field, value):
    with pytest.raises(ConfigError, match=field):
        _lists(dataclasses.replace(CandidateConfig(), **{field: value}))
