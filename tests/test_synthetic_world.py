"""The synthetic world: deterministic, Amazon-shaped, and with a ground truth that explains its labels."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest
from scipy.stats import mannwhitneyu

from sllmr_tf.data.dataset_dir import GROUND_TRUTH_FILE
from sllmr_tf.data.readers.synthetic import SyntheticSource
from sllmr_tf.data.records import BadRecordPolicy
from sllmr_tf.errors import BadRecordError, ConfigError
from sllmr_tf.data.synthetic_world import GroundTruth, WorldConfig, generate_world

SMALL = WorldConfig(num_users=300, num_items=200, seed=7)


@pytest.fixture(scope="module")
def world():
    return generate_world(WorldConfig())


def _auc(higher: np.ndarray, lower: np.ndarray) -> float:
    return float(mannwhitneyu(higher, lower).statistic / (higher.size * lower.size))


def test_same_seed_gives_identical_world():
    a, b = generate_world(SMALL), generate_world(SMALL)
    for field in ("users", "items", "ratings", "timestamps", "item_category", "item_brand"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field))
    assert a.texts == b.texts
    np.testing.assert_array_equal(a.truth.user_factors, b.truth.user_factors)


def test_different_seed_gives_different_world():
    a = generate_world(SMALL)
    b = generate_world(WorldConfig(num_users=300, num_items=200, seed=8))
    assert a.num_interactions != b.num_interactions or not np.array_equal(a.items, b.items)
    assert a.texts.titles != b.texts.titles


def test_item_popularity_has_a_short_head_and_a_long_tail(world):
    counts = np.sort(np.bincount(world.items, minlength=world.config.num_items))[::-1]
    n = counts.size
    head_share = counts[: n // 10].sum() / counts.sum()
    tail_share = counts[-n // 5:].sum() / counts.sum()
    print(f"top 10% of items: {head_share:.1%} of interactions; bottom 20%: {tail_share:.1%}")
    assert head_share > 0.40
    assert tail_share < 0.05


def test_most_users_are_light_and_a_few_are_heavy(world):
    per_user = np.bincount(world.users, minlength=world.config.num_users)
    cold = np.mean(per_user - 2 < 3)  # < 3 train items once the last two go to valid and test
    heavy = np.mean(per_user >= 50)
    print(f"cold-start under leave-last-out: {cold:.1%}; users with >= 50 interactions: {heavy:.1%}")
    assert 0.3 < cold < 0.7
    assert 0.005 < heavy < 0.1
    assert per_user.min() >= world.config.min_interactions


def test_source_streams_ids_and_strictly_increasing_times_per_user():
    source = SyntheticSource(synthetic_users=300, synthetic_items=200, synthetic_seed=7)
    last: dict[str, int] = {}
    count = 0
    for event in source.interactions(BadRecordPolicy()):
        assert event.user.startswith("u") and event.item.startswith("i")
        assert event.rating in (1.0, 2.0, 3.0, 4.0, 5.0)
        assert event.timestamp > last.get(event.user, -1)
        last[event.user] = event.timestamp
        count += 1
    assert count == source.world.num_interactions and len(last) == 300
    items = list(source.items(BadRecordPolicy()))
    assert len(items) == 200
    assert all(i.title and i.category and i.brand and i.brand in i.title for i in items)


def test_positives_have_higher_true_logits_than_random_items(world):
    truth, positive = world.truth, world.ratings >= 4
    rng = np.random.default_rng(0)
    random_items = rng.integers(0, world.config.num_items, size=int(positive.sum()))
    logit_pos = truth.preference_logit(world.users[positive], world.items[positive])
    logit_rand = truth.preference_logit(world.users[positive], random_items)
    logit_neg = truth.preference_logit(world.users[~positive], world.items[~positive])
    vs_random, vs_negative = _auc(logit_pos, logit_rand), _auc(logit_pos, logit_neg)
    print(f"true-logit AUC: positives vs random items {vs_random:.3f}, vs rated negatives {vs_negative:.3f}")
    assert vs_random > 0.7 and vs_negative > 0.75


def test_prob_positive_is_calibrated_on_the_observed_labels(world):
    p = world.truth.prob_positive(world.users, world.items)
    label = (world.ratings >= 4).astype(np.float64)
    bins = np.quantile(p, np.linspace(0, 1, 6))
    which = np.clip(np.searchsorted(bins, p, side="right") - 1, 0, 4)
    for b in range(5):
        m = which == b
        assert abs(label[m].mean() - p[m].mean()) < 0.04, (b, label[m].mean(), p[m].mean())


def test_prob_prefers_is_the_chance_that_noisy_utility_of_a_beats_b(world):
    users, a, b = np.array([0, 1, 2]), np.array([3, 4, 5]), np.array([6, 7, 8])
    rng = np.random.default_rng(0)
    draws = 200_000
    scale = world.truth.noise_scale
    ua = world.truth.preference_logit(users, a)[:, None] + scale * rng.gumbel(size=(3, draws))
    ub = world.truth.preference_logit(users, b)[:, None] + scale * rng.gumbel(size=(3, draws))
    np.testing.assert_allclose(world.truth.prob_prefers(users, a, b), (ua > ub).mean(axis=1), atol=0.005)


def test_prob_prefers_predicts_which_of_two_rated_items_a_user_rated_higher(world):
    # Pairs of one user's consecutive interactions with different ratings.
    same_user = world.users[1:] == world.users[:-1]
    differ = world.ratings[1:] != world.ratings[:-1]
    m = same_user & differ
    users, a, b = world.users[1:][m], world.items[1:][m], world.items[:-1][m]
    a_higher = world.ratings[1:][m] > world.ratings[:-1][m]
    p = world.truth.prob_prefers(users, a, b)
    agree = np.where(p > 0.5, a_higher, ~a_higher)
    print(f"{m.sum()} pairs: the truly preferred item was rated higher in {agree.mean():.1%}")
    assert agree.mean() > 0.7
    confident = np.abs(p - 0.5) > 0.4
    assert agree[confident].mean() > agree[~confident].mean()


def test_side_features_and_titles_carry_preference_signal(world):
    factors = world.truth.item_factors / np.linalg.norm(world.truth.item_factors, axis=1, keepdims=True)
    cosine = factors @ factors.T
    first_word = np.array([t.split(" - ")[1].split()[0] for t in world.texts.titles])
    other_category = world.item_category[:, None] != world.item_category[None, :]
    same_word = (first_word[:, None] == first_word[None, :]) & other_category
    assert cosine[same_word].mean() > cosine[other_category].mean() + 0.1
    same_category = ~other_category & ~np.eye(len(factors), dtype=bool)
    assert cosine[same_category].mean() > cosine[other_category].mean() + 0.3


def test_ground_truth_round_trips_aligned_to_vocab_order(tmp_path):
    world = generate_world(SMALL)
    rng = np.random.default_rng(1)
    user_rows = rng.permutation(len(world.user_ids))[:250]
    item_rows = rng.permutation(len(world.item_ids))[:150]
    user_vocab = [""] + [world.user_ids[r] for r in user_rows]
    item_vocab = [""] + [world.item_ids[r] for r in item_rows]
    path = os.path.join(tmp_path, "gt.npz")
    world.truth.save(path, user_vocab, item_vocab)
    loaded = GroundTruth.load(path)

    assert list(loaded.user_ids) == user_vocab and list(loaded.item_ids) == item_vocab
    u, i = rng.integers(1, 251, size=500), rng.integers(1, 151, size=500)
    np.testing.assert_allclose(loaded.preference_logit(u, i),
                               world.truth.preference_logit(user_rows[u - 1], item_rows[i - 1]), rtol=1e-6)
    j = rng.integers(1, 151, size=500)
    np.testing.assert_allclose(loaded.prob_prefers(u, i, j),
                               world.truth.prob_prefers(user_rows[u - 1], item_rows[i - 1], item_rows[j - 1]),
                               rtol=1e-6)
    assert loaded.preference_logit(np.array([0]), np.array([0]))[0] == 0.0
    np.testing.assert_allclose(loaded.logit_matrix(u[:5]),
                               loaded.preference_logit(u[:5, None], np.arange(151)[None, :]), rtol=1e-5)
    np.testing.assert_array_equal(loaded.rating_cuts, world.truth.rating_cuts)


def test_ground_truth_save_rejects_an_id_outside_the_world(tmp_path):
    world = generate_world(SMALL)
    with pytest.raises(KeyError, match="i99999"):
        world.truth.save(os.path.join(tmp_path, "gt.npz"), ["", "u00000"], ["", "i99999"])


def test_source_writes_ground_truth_for_the_dataset_vocabs(tmp_path):
    source = SyntheticSource(synthetic_users=300, synthetic_items=200, synthetic_seed=7)
    vocabs = {"user": ["", "u00003", "u00001"], "item": ["", "i00010", "i00002", "i00005"],
              "category": [""], "brand": [""]}
    source.write_extras(str(tmp_path), vocabs)
    loaded = GroundTruth.load(os.path.join(tmp_path, GROUND_TRUTH_FILE))
    assert list(loaded.item_ids) == vocabs["item"]
    np.testing.assert_allclose(loaded.preference_logit(np.array([2]), np.array([3])),
                               source.world.truth.preference_logit(np.array([1]), np.array([5])), rtol=1e-6)


def test_source_reads_world_config_from_raw_dir_and_flags_override_it(tmp_path):
    with open(tmp_path / "world.json", "w") as f:
        f.write(WorldConfig(num_users=50, num_items=40, num_categories=4, num_brands=8,
                            max_interactions=30, seed=3).to_json())
    source = SyntheticSource(raw_dir=str(tmp_path), synthetic_seed=4, synthetic_users=None)
    assert (source.config.num_users, source.config.num_items, source.config.seed) == (50, 40, 4)
    assert len({e.user for e in source.interactions(BadRecordPolicy())}) == 50


@pytest.mark.parametrize("content, field", [
    ({"num_users": "many"}, "num_users"),
    ({"num_itemz": 10}, "num_itemz"),
    ({"rating_shares": [1, 1, 1]}, "rating_shares"),
])
def test_bad_world_config_names_file_and_field(tmp_path, content, field):
    (tmp_path / "world.json").write_text(json.dumps(content))
    with pytest.raises(BadRecordError, match="world.json") as error:
        SyntheticSource(raw_dir=str(tmp_path))
    assert error.value.field == field


def test_unknown_synthetic_flag_is_rejected():
    with pytest.raises(ConfigError, match="synthetic_userz"):
        SyntheticSource(synthetic_userz=10)
