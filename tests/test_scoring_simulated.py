"""The simulated scorer: an oracle on a synthetic world that is as reliable as its profile says."""
from __future__ import annotations

import collections
import json
import os

import numpy as np
import pytest

from conftest import prepare_dataset
from sllmr_tf.scoring.backends import make_backend as make_backend_by_name
from sllmr_tf.scoring.base import RankRequest
from sllmr_tf.scoring.simulated_backend import USER_SEGMENTS, ReliabilityProfile, SimulatedBackend
from sllmr_tf.data.dataset_dir import DatasetDir
from sllmr_tf.errors import ConfigError

ACCURACY = ("sparse/longtail=0.95,sparse/head=0.85,medium/longtail=0.8,medium/head=0.7,"
            "heavy/longtail=0.65,heavy/head=0.55")
LIST_SIZE = 10
TOLERANCE = 0.03


@pytest.fixture(scope="module")
def world_dir(tmp_path_factory) -> str:
    path = str(tmp_path_factory.mktemp("data") / "synthetic")
    prepare_dataset(path, dataset="synthetic", num_shards=1)
    return path


def make_backend(world_dir: str, **flags) -> SimulatedBackend:
    settings = {"accuracy": ACCURACY, "sparse_max_history": 2, "heavy_min_history": 15, **flags}
    return SimulatedBackend(world_dir, **settings)


def random_requests(backend: SimulatedBackend, per_segment: int, seed: int):
    """Lists of 5 long-tail and 5 head items in random order, for random users of each segment."""
    num_users, num_items = len(backend.truth.user_ids) - 1, len(backend.truth.item_ids) - 1
    users = {s: [u for u in range(1, num_users + 1) if backend.user_segment(u) == s] for s in USER_SEGMENTS}
    items = {s: [i for i in range(1, num_items + 1) if backend.item_segment(i) == s] for s in ("longtail", "head")}
    rng = np.random.default_rng(seed)
    for segment in USER_SEGMENTS:
        assert len(users[segment]) >= 20, f"too few {segment} users in the world"
        for _ in range(per_segment):
            candidates = np.concatenate([rng.choice(items["longtail"], LIST_SIZE // 2, replace=False),
                                         rng.choice(items["head"], LIST_SIZE // 2, replace=False)])
            rng.shuffle(candidates)
            yield RankRequest(int(rng.choice(users[segment])), (), tuple(candidates.tolist()), prompt="")


def pair_region(backend: SimulatedBackend, user: int, a: int, b: int) -> str:
    item_a, item_b = backend.item_segment(a), backend.item_segment(b)
    return f"{backend.user_segment(user)}/{item_a if item_a == item_b else 'mixed'}"


@pytest.mark.parametrize("target", ["propensity", "preference"])
def test_measured_accuracy_per_region_matches_the_profile(world_dir, target):
    backend = make_backend(world_dir, target=target)
    right, total = collections.Counter(), collections.Counter()
    for request in random_requests(backend, per_segment=800, seed=0):
        items = np.asarray(request.candidates)
        scores = backend.rank(request).scores
        truth = backend.target_logit(np.full(items.size, request.user_index), items)
        for x in range(items.size):
            for y in range(x + 1, items.size):
                region = pair_region(backend, request.user_index, items[x], items[y])
                right[region] += (scores[x] > scores[y]) == (truth[x] > truth[y])
                total[region] += 1

    profile = backend.profile
    print(f"\n{'region':<16}{'pairs':>7}{'measured':>10}{'profile':>9}")
    for segment in USER_SEGMENTS:
        k_tail = profile.knowledge_prob(segment, "longtail")
        k_head = profile.knowledge_prob(segment, "head")
        expected = {f"{segment}/longtail": profile.accuracy[f"{segment}/longtail"],
                    f"{segment}/head": profile.accuracy[f"{segment}/head"],
                    f"{segment}/mixed": (1 + k_tail * k_head) / 2}
        for region, want in expected.items():
            measured = right[region] / total[region]
            print(f"{region:<16}{total[region]:>7}{measured:>10.3f}{want:>9.3f}")
            assert total[region] > 2000
            assert abs(measured - want) < TOLERANCE, (region, measured, want)


def test_position_bias_makes_heavy_users_prefer_what_comes_first(world_dir):
    backend = make_backend(world_dir, position_bias="sparse=0,heavy=1")
    first_wins = collections.defaultdict(list)
    for request in random_requests(backend, per_segment=600, seed=1):
        scores = backend.rank(request).scores
        first_wins[backend.user_segment(request.user_index)].append(scores[0] > scores[-1])
    sparse, heavy = np.mean(first_wins["sparse"]), np.mean(first_wins["heavy"])
    print(f"\nfirst presented ranked above last: sparse {sparse:.3f}, heavy {heavy:.3f}")
    assert abs(sparse - 0.5) < 0.06
    assert heavy > 0.8


@pytest.mark.parametrize("target", ["propensity", "preference"])
def test_a_fully_accurate_oracle_ranks_by_its_target_in_any_order(world_dir, target):
    backend = make_backend(world_dir, accuracy="all=1", target=target)
    truth_of = {"propensity": backend.truth.propensity_logit, "preference": backend.truth.preference_logit}[target]
    for request in random_requests(backend, per_segment=20, seed=2):
        items = np.asarray(request.candidates)
        truth = truth_of(np.full(items.size, request.user_index), items)
        for order in (np.arange(items.size), np.arange(items.size)[::-1]):
            shuffled = RankRequest(request.user_index, (), tuple(items[order].tolist()), prompt="")
            np.testing.assert_array_equal(np.argsort(backend.rank(shuffled).scores), np.argsort(truth[order]))


def test_answers_depend_only_on_seed_and_request(world_dir):
    requests = list(random_requests(make_backend(world_dir), per_segment=30, seed=3))
    first, again = make_backend(world_dir), make_backend(world_dir)
    reseeded = make_backend(world_dir, seed=7)
    same = [np.array_equal(first.rank(r).scores, again.rank(r).scores) for r in requests]
    differs = [not np.array_equal(first.rank(r).scores, reseeded.rank(r).scores) for r in requests]
    assert all(same)
    assert np.mean(differs) > 0.5


def test_true_correct_prob_is_the_targets_probability_that_a_beats_b(world_dir):
    user, a, b = 5, 3, 8
    users, first, second = np.array([user]), np.array([a]), np.array([b])
    for target, probability, logit in (("preference", "prob_prefers", "preference_logit"),
                                       ("propensity", "prob_more_likely_positive", "propensity_logit")):
        backend = make_backend(world_dir, target=target)
        p = float(backend.true_correct_prob(user, first, second)[0])
        assert p == pytest.approx(float(getattr(backend.truth, probability)(users, first, second)[0]))
        assert p + float(backend.true_correct_prob(user, second, first)[0]) == pytest.approx(1.0)
        logit_a, logit_b = getattr(backend.truth, logit)(np.array([user, user]), np.array([a, b]))
        assert (p > 0.5) == (logit_a > logit_b)


def test_the_propensity_target_knows_popularity_and_taste_and_predicts_interactions(world_dir):
    """The propensity truth ranks a user's positive train items above random items more often
    than preference alone: it is the truth of the event the models are evaluated on."""
    backend = make_backend(world_dir)
    truth = backend.truth
    rng = np.random.default_rng(4)
    users = [row for row in DatasetDir(world_dir).users() if row["train_items"]]
    wins = {"propensity": [], "preference": []}
    for row in users:
        positive = rng.choice(row["train_items"])
        other = int(rng.integers(1, len(truth.item_ids)))
        if other in row["train_items"]:
            continue
        u = np.array([row["index"]])
        wins["propensity"].append(truth.prob_more_likely_positive(u, np.array([positive]), np.array([other]))[0])
        wins["preference"].append(truth.prob_prefers(u, np.array([positive]), np.array([other]))[0])
    propensity, preference = np.mean(np.array(wins["propensity"]) > 0.5), np.mean(np.array(wins["preference"]) > 0.5)
    print(f"\ntrain positive above a random item: propensity {propensity:.3f}, preference {preference:.3f}")
    assert propensity > preference + 0.05 and propensity > 0.8


def test_bad_profile_entries_name_the_option_and_entry():
    with pytest.raises(ConfigError, match=r"option accuracy: bad entry 'sparse/tail=0\.9'"):
        ReliabilityProfile.from_options(accuracy="sparse/tail=0.9")
    with pytest.raises(ConfigError, match=r"option accuracy: entry 'heavy/head=0\.3': value must be in"):
        ReliabilityProfile.from_options(accuracy="heavy/head=0.3")
    with pytest.raises(ConfigError, match=r"option position_bias: entry 'heavy=x'"):
        ReliabilityProfile.from_options(position_bias="heavy=x")


def test_refuses_a_dataset_without_ground_truth(tmp_path):
    with open(os.path.join(tmp_path, "stats.json"), "w") as f:
        json.dump({}, f)
    with pytest.raises(ConfigError, match="ground_truth.npz"):
        SimulatedBackend(str(tmp_path))


def test_the_factory_builds_it_from_scorer_options_and_rejects_unknown_ones(world_dir):
    backend = make_backend_by_name("simulated", world_dir, seed=3, heavy_min_history=15)
    assert isinstance(backend, SimulatedBackend) and backend.seed == 3 and not backend.deterministic
    with pytest.raises(ConfigError, match="acuracy"):
        make_backend_by_name("simulated", world_dir, acuracy="heavy/head=0.5")
