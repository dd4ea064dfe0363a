"""The gate's reference point: a pair weighs what the LLM adds over the backbone, not over a coin flip.

The weight is 2 P(the LLM is right | it and the backbone disagree) - 1, floored at 0,
and the backbone's accuracy it needs is counted on the validation split's
(positive, negative) pairs of each user.
"""
from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from sllmr_tf.training.evaluation import Predictions
from sllmr_tf import segments
from sllmr_tf.data.dataset_dir import DatasetDir
from sllmr_tf.training.gate import REGION_SIGNALS, SIGNALS, ReliabilityGate, fit_gate, gate_signals, pair_weight
from sllmr_tf.training.pairs_table import load_pairs_table
from sllmr_tf.training.config import TrainConfig
from sllmr_tf.training.student_reference import region_pair_counts
from sllmr_tf.training.trainer import train


def weight(alpha, student):
    return float(pair_weight(tf.constant([alpha], tf.float32), tf.constant([student], tf.float32))[0])


@pytest.mark.parametrize("alpha", [0.3, 0.5, 0.64, 0.9, 1.0])
def test_against_a_coin_flip_student_a_pair_weighs_its_signal(alpha):
    assert weight(alpha, 0.5) == pytest.approx(max(0.0, 2 * alpha - 1), abs=1e-6)


@pytest.mark.parametrize("alpha, student", [(0.5, 0.8), (0.64, 0.82), (0.8, 0.8), (0.7, 0.9)])
def test_a_teacher_no_better_than_the_backbone_gets_no_weight(alpha, student):
    assert weight(alpha, student) == 0.0


@pytest.mark.parametrize("alpha, student", [(0.9, 0.7), (0.95, 0.8), (0.75, 0.6)])
def test_the_weight_is_the_direction_of_the_teachers_push_where_the_two_disagree(alpha, student):
    """Counted on simulated pairs where teacher and backbone err independently."""
    rng = np.random.default_rng(0)
    teacher_right = rng.random(400_000) < alpha
    student_right = rng.random(400_000) < student
    disagree = teacher_right != student_right
    direction = 2 * teacher_right[disagree].mean() - 1
    assert weight(alpha, student) == pytest.approx(direction, abs=0.01)


def predictions(users, labels, probs, longtail) -> Predictions:
    n = len(users)
    return Predictions(labels=np.asarray(labels, np.float32), probs=np.asarray(probs, np.float32),
                       users=np.asarray(users), items=np.arange(n), is_cold_user=np.zeros(n, bool),
                       is_longtail_item=np.asarray(longtail, bool), is_heavy_user=np.zeros(n, bool),
                       item_pop=np.ones(n))


def test_the_reference_counts_each_users_positive_negative_pairs_by_long_tail_count():
    rng = np.random.default_rng(1)
    n = 300
    users = rng.integers(1, 12, n)
    labels = rng.random(n) < 0.3
    probs = rng.choice([0.1, 0.2, 0.5, 0.7, 0.9], n)  # ties on purpose
    longtail = rng.random(n) < 0.3
    train_positives = rng.integers(0, 30, 12)
    is_cold = (train_positives < 3).astype(np.int64)
    counts = region_pair_counts(predictions(users, labels, probs, longtail), train_positives, is_cold)

    expected = {}
    for i in np.flatnonzero(labels):
        for j in np.flatnonzero(~labels & (users == users[i])):
            key = (users[i], int(longtail[i]) + int(longtail[j]))
            right = 1.0 if probs[i] > probs[j] else 0.5 if probs[i] == probs[j] else 0.0
            pairs, total = expected.get(key, (0, 0.0))
            expected[key] = (pairs + 1, total + right)
    got = {(u, int(s[2])): (p, r) for u, s, p, r in zip(counts["users"], counts["signals"], counts["pairs"],
                                                        counts["right"])}
    assert sorted(got) == sorted(expected)
    np.testing.assert_allclose([got[k] for k in sorted(got)], [expected[k] for k in sorted(got)])
    for u, s in zip(counts["users"], counts["signals"]):
        assert s[:2] == pytest.approx([np.log1p(train_positives[u]), is_cold[u]])


def test_the_gate_reads_the_backbones_accuracy_from_the_region_signals_only():
    gate = ReliabilityGate(len(SIGNALS))
    gate.build((None, len(SIGNALS)))
    gate.center.assign(np.zeros(len(SIGNALS), np.float32))
    gate.scale.assign(np.ones(len(SIGNALS), np.float32))
    gate.student_coefficients.assign(np.array([1.0, 0.5, -1.0, 0.25], np.float32))
    signals = np.array([[2.0, 0.0, 1.0, 0.9, 0.4], [2.0, 0.0, 1.0, 0.1, 0.0]], np.float32)
    _, _, student_logit = gate(tf.constant(signals))
    assert len(REGION_SIGNALS) == 3
    np.testing.assert_allclose(student_logit.numpy(), [1.0 + 1.0 + 0.25] * 2, rtol=1e-6)


@pytest.mark.slow
def test_a_trained_run_refits_the_reference_to_the_backbone_and_weighs_pairs_less(world, tmp_path):
    """After training, the reference is the backbone's accuracy (better than chance), so every
    segment's pairs weigh less than against a coin flip (the fitted gate alone, no training needed)."""
    data_dir, pairs_dir = world
    gate = train(TrainConfig(data_dir=data_dir, pairs_dir=pairs_dir, model_dir=str(tmp_path / "run"), backbone="dnn",
                             method="sllmr", epochs=2, patience=2, num_bootstrap=10, gate_reference="student"),
                 verbose=0, log=lambda _: None)["gate"]
    table = load_pairs_table(pairs_dir, DatasetDir(data_dir))
    _, lower_logit, _ = fit_gate(table.rows())[0](gate_signals(table.rows()))
    against_chance = pair_weight(tf.sigmoid(lower_logit), tf.fill(tf.shape(lower_logit), 0.5)).numpy()
    masks = segments.pair_segments(table.columns["is_cold_user"], table.sides["a"]["is_longtail_item"],
                                   table.sides["b"]["is_longtail_item"])
    assert all(value > 0.6 for value in gate["reference_mean"].values())
    for segment, value in gate["weight_mean"].items():
        assert value < against_chance[masks[segment]].mean()
