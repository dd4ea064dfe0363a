"""The scoring job end to end on a small dataset directory, with in-test backends of known behaviour.

The backends here are deliberately simple rankers (a fixed taste, a
position-biased one, broken ones) so every count the job reports can be
predicted; the real LLM runs in test_scoring_llama.py.
"""
from __future__ import annotations

import dataclasses
import json
import os
import threading

import numpy as np
import pytest

from sllmr_tf import features
from sllmr_tf.shards import user_shard
from sllmr_tf.data.pairs_dir import read_pairs, summary_path
from sllmr_tf.errors import ConfigError, ScoringAborted
from sllmr_tf.scoring import pipeline
from sllmr_tf.scoring.base import RankRequest, RankResponse, TransportError
from sllmr_tf.scoring.config import CandidateConfig, ScoreConfig

NUM_ITEMS, NUM_USERS = 120, 60
NUM_DATA_SHARDS = 2


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> str:
    """A dataset directory as prepare writes it (items, users, stats): items 97..120 are
    long-tail; users 1..12 have one or two train positives and are cold-start."""
    path = tmp_path_factory.mktemp("scoring_data")
    rng = np.random.default_rng(0)
    with open(path / "items.jsonl", "w") as f:
        for i in range(1, NUM_ITEMS + 1):
            f.write(json.dumps({"index": i, "id": f"i{i}", "title": f"Film number {i} ({1950 + i})",
                                "category": "Drama", "brand": "", "category_index": 1, "brand_index": 0,
                                "text": f"Film number {i}", "popularity": NUM_ITEMS - i,
                                "is_longtail": i > 96}) + "\n")
    with open(path / "users.jsonl", "w") as f:
        for u in range(1, NUM_USERS + 1):
            n = 1 + u % 2 if u <= 12 else 5 + u % 10
            items = rng.choice(np.arange(1, 97), n, replace=False).tolist()
            f.write(json.dumps({"index": u, "id": f"u{u}", "train_items": items, "is_cold": u <= 12}) + "\n")
    (path / "stats.json").write_text(json.dumps({"num_users": NUM_USERS, "num_items": NUM_ITEMS,
                                                         "config": {"num_shards": NUM_DATA_SHARDS}}))
    return str(path)


class TasteBackend:
    """Prefers lower item indices whatever the order shown: every ordering agrees."""

    name = "taste"
    model = "lower-index-first"
    deterministic = False

    def __init__(self):
        self.requests: list[RankRequest] = []
        self._lock = threading.Lock()

    def decoding_params(self) -> dict:
        return {}

    def rank(self, request: RankRequest) -> RankResponse:
        with self._lock:
            self.requests.append(request)
        k = len(request.candidates)
        return RankResponse(-np.asarray(request.candidates, np.float32), np.zeros(k, bool), "taste")


class FirstShownBackend(TasteBackend):
    """Pure position bias: the first candidate shown wins."""

    model = "first-shown"

    def rank(self, request):
        super().rank(request)
        k = len(request.candidates)
        return RankResponse(np.arange(k, 0, -1, dtype=np.float32), np.zeros(k, bool), "A > B > ...")


class ItemScoreBackend(TasteBackend):
    """Scores in [0, 1] (the openai score mode): item i scores 1 - i / NUM_ITEMS in every order."""

    model = "item-score"
    absolute_scores = True

    def rank(self, request):
        super().rank(request)
        return RankResponse(1 - np.asarray(request.candidates, np.float32) / NUM_ITEMS,
                            np.zeros(len(request.candidates), bool), "A: 0.9 ...")


class FormatStubbornBackend(TasteBackend):
    """Answers garbage until the prompt reminds it of the format."""

    model = "needs-a-reminder"

    def rank(self, request):
        response = super().rank(request)
        return response if "no explanation" in request.prompt else \
            RankResponse(np.zeros(len(request.candidates)), np.ones(len(request.candidates), bool), "hmm", False)


class FailingBackend(TasteBackend):
    """Raises for the users in `failing_users` (all users if None), like a dead server."""

    model = "failing"

    def __init__(self, failing_users=None):
        super().__init__()
        self.failing_users = failing_users

    def rank(self, request):
        if self.failing_users is None or request.user_index in self.failing_users:
            raise TransportError("connection refused")
        return super().rank(request)


class KilledAfter(TasteBackend):
    """Stops the whole process-like run after `limit` answers (KeyboardInterrupt, as on Ctrl-C)."""

    def __init__(self, limit):
        super().__init__()
        self.limit = limit

    def rank(self, request):
        if len(self.requests) >= self.limit:
            raise KeyboardInterrupt
        return super().rank(request)


class OracleBackend(TasteBackend):
    """Also reports each pair's true correctness probability, as the simulated scorer does."""

    def true_correct_prob(self, user, items_a, items_b):
        return np.where(np.asarray(items_a) < np.asarray(items_b), 0.9, 0.1)


def _config(**overrides) -> ScoreConfig:
    candidates = CandidateConfig(list_size=6, positives_per_list=2,
                                 **{k: overrides.pop(k) for k in list(overrides)
                                    if k in {f.name for f in dataclasses.fields(CandidateConfig)}})
    return ScoreConfig(candidates=candidates, progress_every_s=1e9, **overrides)


def _score(data_dir, backend, out, **overrides):
    return pipeline.score(data_dir, backend, str(out), _config(**overrides), log=lambda _: None)


def _train_sets(data_dir):
    with open(os.path.join(data_dir, "users.jsonl")) as f:
        return {row["index"]: set(row["train_items"]) for row in map(json.loads, f)}


def test_consistent_ranker_gives_all_pairs_with_full_confidence_and_true_outcomes(data_dir, tmp_path):
    summary = _score(data_dir, TasteBackend(), tmp_path)
    pairs = read_pairs(str(tmp_path))
    lists = summary["lists"]["total"]
    assert summary["lists"]["scored"] == lists and summary["pairs"]["written"] == lists * 15 == pairs["user_id"].size
    assert summary["answers"]["answers_asked"] == 3 * lists
    np.testing.assert_array_equal(pairs["confidence"], 1.0)
    assert (pairs["item_a"] < pairs["item_b"]).all()
    train = _train_sets(data_dir)
    for user, a, b, outcome in zip(pairs["user_id"], pairs["item_a"], pairs["item_b"], pairs["outcome"]):
        expected = 1 if a in train[user] and b not in train[user] else 0 if b in train[user] and a not in train[user] \
            else features.OUTCOME_UNKNOWN
        assert outcome == expected
    np.testing.assert_array_equal(pairs["true_correct_prob"], -1.0)
    assert set(np.unique(pairs["outcome"])) == {-1, 0, 1}


def test_score_answers_give_pairs_whose_confidence_is_the_score_difference(data_dir, tmp_path):
    summary = _score(data_dir, ItemScoreBackend(), tmp_path)
    pairs = read_pairs(str(tmp_path))
    assert summary["pairs"]["written"] == summary["lists"]["total"] * 15 == pairs["user_id"].size
    assert (pairs["item_a"] < pairs["item_b"]).all()
    np.testing.assert_allclose(pairs["confidence"], 0.5 + 0.5 * (pairs["item_b"] - pairs["item_a"]) / NUM_ITEMS,
                               rtol=1e-5)


def test_position_bias_shows_up_as_low_confidence_and_lost_pairs(data_dir, tmp_path):
    summary = _score(data_dir, FirstShownBackend(), tmp_path)
    confidence = read_pairs(str(tmp_path))["confidence"]
    print(f"position-biased ranker: {confidence.size} pairs of {summary['lists']['total'] * 15}, "
          f"mean confidence {confidence.mean():.3f}")
    assert confidence.size < summary["lists"]["total"] * 15
    assert confidence.mean() < 0.85
    assert np.all(np.isclose(confidence, 2 / 3) | (confidence == 1.0))  # 2 or 3 of 3 orders agree


def test_each_list_is_asked_in_num_orders_different_orders(data_dir, tmp_path):
    backend = TasteBackend()
    _score(data_dir, backend, tmp_path, num_orders=4, max_lists=5)
    by_list = {}
    for request in backend.requests:
        by_list.setdefault((request.user_index, frozenset(request.candidates)), []).append(request.candidates)
    assert len(by_list) == 5
    for orders in by_list.values():
        assert len(orders) == 4 and len(set(orders)) == 4


def test_unusable_answers_are_retried_with_a_reminder_and_counted(data_dir, tmp_path):
    summary = _score(data_dir, FormatStubbornBackend(), tmp_path, max_lists=10)
    answers = summary["answers"]
    assert answers["answers_malformed"] == 30 and answers["malformed_retries"] == 30
    assert answers["answers_parsed"] == 30 and summary["lists"]["scored"] == 10


def test_a_job_where_no_list_gets_a_usable_answer_fails_naming_the_last_answer(data_dir, tmp_path):
    with pytest.raises(ScoringAborted, match=r"^none of 10 lists got a usable answer \(0 requests failed, 30 "
                                             r"answers unusable\); last: unusable answer "):
        _score(data_dir, FormatStubbornBackend(), tmp_path, max_lists=10, max_retries=0)
    assert not list(tmp_path.glob("pairs-*"))


def test_failing_requests_skip_their_lists_without_ending_the_job(data_dir, tmp_path):
    summary = _score(data_dir, FailingBackend(failing_users={2, 3}), tmp_path)
    skipped = summary["lists"]["skipped"]
    assert skipped > 0 and summary["answers"]["request_failures"] == 3 * skipped  # each order fails once
    assert set(np.unique(read_pairs(str(tmp_path))["user_id"])).isdisjoint({2, 3})
    with open(os.path.join(tmp_path, "log-00000-of-00001.jsonl")) as f:
        assert sum("connection refused" in row.get("error", "") for row in map(json.loads, f)) == 3 * skipped


def test_a_backend_that_always_fails_aborts_with_the_reason(data_dir, tmp_path):
    with pytest.raises(ScoringAborted, match=r"1\d requests in a row failed.*connection refused"):
        _score(data_dir, FailingBackend(), tmp_path, max_consecutive_failures=10)
    assert not list(tmp_path.glob("pairs-*"))


def test_output_does_not_depend_on_concurrency(data_dir, tmp_path):
    _score(data_dir, FirstShownBackend(), tmp_path / "one", concurrency=1)
    _score(data_dir, FirstShownBackend(), tmp_path / "four", concurrency=4)
    one, four = read_pairs(str(tmp_path / "one")), read_pairs(str(tmp_path / "four"))
    for name in one:
        np.testing.assert_array_equal(one[name], four[name])


def test_a_killed_run_resumes_without_asking_anything_twice(data_dir, tmp_path):
    killed = KilledAfter(limit=100)
    with pytest.raises(KeyboardInterrupt):
        _score(data_dir, killed, tmp_path / "run")
    assert not list((tmp_path / "run").glob("pairs-*"))
    resumed = TasteBackend()
    summary = _score(data_dir, resumed, tmp_path / "run")
    first = {r.prompt + repr(r.candidates) for r in killed.requests}
    second = {r.prompt + repr(r.candidates) for r in resumed.requests}
    assert len(first) == 100 and not first & second
    assert len(first) + len(second) == summary["answers"]["answers_requested"]
    assert summary["answers"]["answers_from_cache"] == 100
    clean = _score(data_dir, TasteBackend(), tmp_path / "clean")
    assert clean["pairs"] == summary["pairs"]
    rerun = TasteBackend()
    _score(data_dir, rerun, tmp_path / "run")
    assert rerun.requests == []


def test_augmentation_multiplies_cold_user_pairs_and_long_tail_pairs_by_the_factors(data_dir, tmp_path):
    def counts(out, **factors):
        summary = _score(data_dir, TasteBackend(), tmp_path / out, num_orders=1, **factors)
        pairs = read_pairs(str(tmp_path / out))
        longtail = (pairs["item_a"] > 96).astype(int) + (pairs["item_b"] > 96)  # long-tail items per pair
        return summary, (pairs["user_id"] <= 12).sum(), longtail.sum()

    base, cold_base, longtail_base = counts("none", cold_user_factor=1.0, longtail_factor=1.0)
    cold, cold_pairs, _ = counts("cold", cold_user_factor=3.0, longtail_factor=1.0)
    tail, _, longtail_pairs = counts("tail", cold_user_factor=1.0, longtail_factor=2.0)
    print(f"cold-user pairs {cold_base} -> {cold_pairs}; long-tail item-pair incidences "
          f"{longtail_base} -> {longtail_pairs} ({longtail_pairs / longtail_base:.2f}x)")
    assert cold_pairs == 3 * cold_base
    assert cold["pairs"]["by_source"]["augmented"] == 2 * cold_base
    assert cold["pairs"]["by_source"]["regular"] == base["pairs"]["written"]
    assert longtail_pairs / longtail_base == pytest.approx(2.0, rel=0.25)
    assert tail["pairs"]["by_source"]["augmented"] > 0


def test_backend_truth_hook_fills_true_correct_prob(data_dir, tmp_path):
    _score(data_dir, OracleBackend(), tmp_path, max_lists=3)
    np.testing.assert_array_equal(read_pairs(str(tmp_path))["true_correct_prob"], np.float32(0.9))


def test_deterministic_backends_are_asked_once_per_list(data_dir, tmp_path):
    backend = TasteBackend()
    backend.deterministic = True
    summary = _score(data_dir, backend, tmp_path, max_lists=7)
    assert len(backend.requests) == 7 and summary["orders_per_list"] == 1


def test_summary_and_log_are_written_per_shard(data_dir, tmp_path):
    summary = _score(data_dir, TasteBackend(), tmp_path, shard_index=1, num_shards=2, max_lists=4)
    with open(summary_path(str(tmp_path), 1, 2)) as f:
        assert json.load(f) == json.loads(json.dumps(summary))
    with open(os.path.join(tmp_path, "log-00001-of-00002.jsonl")) as f:
        rows = [json.loads(line) for line in f]
    assert len(rows) == 12 and all(user_shard(f"u{row['user']}", NUM_DATA_SHARDS) == 1 for row in rows)
    assert all("Film number" in row["prompt"] and row["raw"] == "taste" for row in rows)
    assert os.path.exists(os.path.join(tmp_path, "pairs-00001-of-00002.tfrecord.gz"))


def test_bad_shard_flags_are_rejected(data_dir, tmp_path):
    with pytest.raises(ConfigError, match="shard_index"):
        _score(data_dir, TasteBackend(), tmp_path, shard_index=2, num_shards=2)


def test_a_finished_job_run_again_does_nothing_and_changed_settings_score_again(data_dir, tmp_path):
    first = _score(data_dir, TasteBackend(), tmp_path / "run")
    pair_files = sorted((tmp_path / "run").glob("pairs-*"))
    written = [p.stat().st_mtime_ns for p in pair_files]
    lines = []
    again = TasteBackend()
    rerun = pipeline.score(data_dir, again, str(tmp_path / "run"), _config(), log=lines.append)
    assert rerun == first and again.requests == []
    assert [p.stat().st_mtime_ns for p in pair_files] == written
    assert any("nothing to do" in line for line in lines)

    changed = _score(data_dir, TasteBackend(), tmp_path / "run", lists_per_user=2)
    assert changed["config"]["candidates"]["lists_per_user"] == 2
    assert changed["lists"]["total"] > first["lists"]["total"]
