"""Borda aggregation over shuffled orderings, and pair confidences from their agreement."""
from __future__ import annotations

import numpy as np
import pytest

from sllmr_tf.scoring.aggregate import aggregate_pairs, pairwise_wins


def _pairs(scores, **kwargs):
    return {(p.a, p.b): p.confidence for p in aggregate_pairs([np.asarray(s, float) for s in scores],
                                                               **kwargs)[1]}


def test_one_answer_gives_every_ordered_pair_with_confidence_from_its_score_margin():
    pairs = _pairs([[3, 1, 2, 0]])
    assert set(pairs) == {(0, 2), (0, 1), (0, 3), (2, 1), (2, 3), (1, 3)}
    assert pairs[(0, 3)] == 1.0  # best against worst
    assert pairs[(0, 2)] == pairs[(2, 1)] == pairs[(1, 3)] == pytest.approx(0.5 + 0.5 / 3)  # neighbours
    assert pairs[(0, 1)] == pairs[(2, 3)] == pytest.approx(0.5 + 0.5 * 2 / 3)


def test_one_answer_confidence_is_scale_free():
    assert _pairs([[0.30, 0.10, 0.20]]) == pytest.approx(_pairs([[30.0, 10.0, 20.0]]))


def test_agreement_across_orderings_is_the_pair_confidence():
    # three answers: candidate 0 over 1 in two of them, 2 always last
    pairs = _pairs([[3, 2, 1], [2, 3, 1], [3, 2, 1]])
    assert pairs[(0, 1)] == pytest.approx(2 / 3)
    assert pairs[(0, 2)] == 1.0 and pairs[(1, 2)] == 1.0
    assert set(pairs) == {(0, 1), (0, 2), (1, 2)}


def test_margin_is_the_borda_gap_over_its_largest_possible_value():
    """Best against worst is 1, neighbours 1/(k-1) on one answer; over several answers the gap of
    their summed points: how far apart the orderings put the two items, whichever comes first."""
    margins = {(p.a, p.b): p.margin for p in aggregate_pairs([np.array([3.0, 1.0, 2.0, 0.0])])[1]}
    assert margins[(0, 3)] == 1.0
    assert margins[(0, 2)] == margins[(2, 1)] == margins[(1, 3)] == pytest.approx(1 / 3)
    _, pairs = aggregate_pairs([np.array([3.0, 2.0, 1.0]), np.array([2.0, 3.0, 1.0]), np.array([3.0, 2.0, 1.0])])
    margins = {(p.a, p.b): p.margin for p in pairs}
    # points over 3 answers: 5, 4, 0 of at most 3 * 2 = 6
    assert margins == pytest.approx({(0, 1): 1 / 6, (0, 2): 5 / 6, (1, 2): 4 / 6})


def test_borda_points_sum_wins_over_answers_with_ties_counting_half():
    points, _ = aggregate_pairs([np.array([2.0, 1.0, 0.0]), np.array([0.0, 0.0, 1.0])])
    # answer 1: 2, 1, 0 wins; answer 2: 0.5, 0.5, 2
    np.testing.assert_allclose(points, [2.5, 1.5, 2.0])


def test_missing_candidates_tie_last_and_form_no_pair_among_themselves():
    pairs = _pairs([[2, 1, 0, 0], [2, 1, 0, 0]])  # candidates 2 and 3 missing (tied at the bottom)
    assert (2, 3) not in pairs and (3, 2) not in pairs
    assert pairs[(0, 2)] == pairs[(1, 3)] == 1.0


def test_a_tie_split_by_one_answer_gives_three_quarter_confidence():
    pairs = _pairs([[1, 0], [1, 1]])
    assert pairs == {(0, 1): 0.75}


def test_contradicting_orderings_give_no_pair():
    assert _pairs([[1, 0], [0, 1]]) == {}
    # a Condorcet cycle: every candidate beats one and loses to one; Borda ties all
    assert _pairs([[3, 2, 1], [1, 3, 2], [2, 1, 3]]) == {}


def test_every_confidence_is_above_one_half_and_at_most_one():
    rng = np.random.default_rng(0)
    for _ in range(50):
        scores = [rng.integers(0, 4, size=6).astype(float) for _ in range(3)]
        for confidence in _pairs(scores).values():
            assert 0.5 < confidence <= 1.0


def test_pairwise_wins_of_a_pair_sum_to_one():
    wins = pairwise_wins([np.array([1.0, 0.0, 0.0]), np.array([0.0, 2.0, 1.0])])
    np.testing.assert_allclose(wins + wins.T, 1 - np.eye(3))


def test_max_pairs_keeps_a_seeded_sample_of_the_pairs():
    scores = [np.arange(8, dtype=float)]
    full = _pairs(scores)
    sample = _pairs(scores, max_pairs=5, rng=np.random.default_rng(1))
    assert len(full) == 28 and len(sample) == 5 and set(sample) <= set(full)
    assert sample == _pairs(scores, max_pairs=5, rng=np.random.default_rng(1))
    with pytest.raises(ValueError, match="rng"):
        aggregate_pairs(scores, max_pairs=5)


def test_no_answer_is_an_error():
    with pytest.raises(ValueError):
        aggregate_pairs([])


def _score_pairs(answers):
    return {(p.a, p.b): p.confidence for p in aggregate_pairs([np.asarray(s, float) for s in answers], absolute=True)[1]}


def test_score_answers_give_pairs_in_score_order_with_confidence_from_the_score_difference():
    pairs = _score_pairs([[0.9, 0.1, 0.5, 0.3]])
    assert list(pairs) == [(0, 2), (0, 3), (0, 1), (2, 3), (2, 1), (3, 1)]  # best pairs first
    for (a, b), confidence in pairs.items():  # 0.5 + 0.5 (s_a - s_b): the scale is kept
        assert confidence == pytest.approx(0.5 + 0.5 * ([0.9, 0.1, 0.5, 0.3][a] - [0.9, 0.1, 0.5, 0.3][b]))
    assert _score_pairs([[1.0, 0.0]]) == {(0, 1): 1.0}
    assert _score_pairs([[0.3, 0.1]]) != _score_pairs([[30.0, 10.0]])  # unlike ranks, not scale free


def test_several_score_answers_are_averaged_before_pairing():
    pairs = _score_pairs([[0.9, 0.5, 0.2], [0.5, 0.7, 0.2]])  # means 0.7, 0.6, 0.2
    assert pairs == pytest.approx({(0, 1): 0.55, (0, 2): 0.75, (1, 2): 0.7})


def test_tied_scores_form_no_pair_with_each_other():
    pairs = _score_pairs([[0.5, 0.8, 0.5, 0.2]])  # 0 and 2 tie (e.g. both missing: 0.5)
    assert (0, 2) not in pairs and (2, 0) not in pairs
    assert set(pairs) == {(1, 0), (1, 2), (1, 3), (0, 3), (2, 3)}
    assert _score_pairs([[0.4, 0.4, 0.4]]) == {}
