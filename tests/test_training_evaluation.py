"""Segment metrics: AUC with ties, bootstrap intervals over users, too-small flags, gAUC."""
from __future__ import annotations

import itertools

import numpy as np
import pytest

from sllmr_tf import segments
from sllmr_tf.training import evaluation
from sllmr_tf.training.evaluation import Predictions


def brute_force_auc(labels, scores) -> float:
    pos, neg = scores[labels == 1], scores[labels == 0]
    wins = [1.0 if p > n else 0.5 if p == n else 0.0 for p, n in itertools.product(pos, neg)]
    return float(np.mean(wins))


def predictions(num_users: int, rows_per_user: int, signal: float, seed: int = 0) -> Predictions:
    rng = np.random.default_rng(seed)
    n = num_users * rows_per_user
    labels = (rng.random(n) < 0.3).astype(np.float32)
    logits = signal * (2 * labels - 1) + rng.normal(size=n)
    pop = rng.integers(0, 100, n)
    return Predictions(labels=labels, probs=1 / (1 + np.exp(-logits)),
                       users=np.repeat(np.arange(1, num_users + 1), rows_per_user),
                       items=rng.integers(1, 500, n), is_cold_user=rng.random(n) < 0.3,
                       is_longtail_item=pop < 5, is_heavy_user=rng.random(n) < 0.2, item_pop=pop)


def test_auc_counts_ties_as_one_half_like_the_pairwise_definition():
    rng = np.random.default_rng(1)
    labels = (rng.random(300) < 0.4).astype(np.float32)
    scores = np.round(rng.random(300) + 0.3 * labels, 1)  # many ties
    assert evaluation.auc(labels, scores) == pytest.approx(brute_force_auc(labels, scores), abs=1e-12)


def test_weighted_auc_equals_the_auc_of_rows_repeated_by_their_weight():
    rng = np.random.default_rng(2)
    labels = (rng.random(200) < 0.5).astype(np.float32)
    scores = rng.random(200) + 0.2 * labels
    w = rng.integers(0, 4, 200)
    assert evaluation.auc(labels, scores, w) == pytest.approx(
        evaluation.auc(np.repeat(labels, w), np.repeat(scores, w)), abs=1e-12)


def test_bootstrap_interval_brackets_the_auc_and_narrows_with_more_users():
    widths = []
    for users in (100, 1600):
        pred = predictions(users, 10, signal=0.8)
        report = evaluation.segment_report(pred, num_bootstrap=200, seed=0)
        lo, hi = report["auc_ci95"]
        assert lo < report["auc"] < hi
        widths.append(hi - lo)
    assert widths[1] < widths[0] / 2.5  # ~ 1 / sqrt(16) = 1 / 4


def test_a_segment_under_200_events_is_flagged_too_small():
    report = evaluation.evaluate(predictions(30, 10, signal=1.0), num_bootstrap=20)
    assert report["overall"]["n"] == 300 and not report["overall"]["too_small"]
    assert report["longtail_items"]["n"] < 200 and report["longtail_items"]["too_small"]
    assert report["min_events"] == 200


def test_every_segment_reports_n_users_positives_auc_interval_and_logloss():
    report = evaluation.evaluate(predictions(300, 8, signal=1.0), num_bootstrap=20)
    for name in ("overall", "cold_start_users", "longtail_items", "longtail_events"):
        seg = report[name]
        assert {"n", "n_users", "positives", "auc", "auc_ci95", "logloss", "too_small"} <= set(seg)
        assert 0.5 < seg["auc"] < 1 and seg["logloss"] > 0


def test_longtail_events_are_the_fifth_of_rows_with_the_least_popular_items():
    pop = np.array([5, 1, 9, 1, 7, 3, 8, 2, 6, 4])
    mask = segments.longtail_events(pop, items=np.arange(10))
    assert mask.sum() == 2 and set(pop[mask]) == {1}
    assert segments.longtail_events(pop, np.arange(10), share=0.3).sum() == 3


def test_gauc_is_the_mean_auc_of_users_having_both_labels():
    labels = np.array([1, 0, 0, 1, 1, 0, 0, 0], np.float32)
    scores = np.array([0.9, 0.1, 0.5, 0.4, 0.2, 0.3, 0.6, 0.7])
    users = np.array([1, 1, 1, 2, 2, 2, 3, 3])  # user 3 has no positive: left out
    pred = Predictions(labels=labels, probs=scores, users=users, items=np.arange(8),
                       is_cold_user=np.zeros(8, bool), is_longtail_item=np.zeros(8, bool),
                       is_heavy_user=np.zeros(8, bool), item_pop=np.ones(8))
    gauc = evaluation.gauc_report(pred, num_bootstrap=10, seed=0)
    assert gauc["n_users"] == 2
    assert gauc["value"] == pytest.approx((1.0 + 0.5) / 2)  # user 2: 0.4 > 0.3 but 0.2 < 0.3
