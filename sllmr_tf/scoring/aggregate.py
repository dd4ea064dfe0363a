"""Borda aggregation of several orderings of one list, and pairs with confidences.

Each ordering's answer gives every candidate a score (missing candidates tie
last). Borda: a candidate earns, per answer, the number of candidates it
beats plus half the number it ties with; the sum orders the list. A pair
(a above b in the Borda order) gets as confidence the share of answers that
agree (a tie counts half), so a pair the orderings contradict scores near
0.5 and one every ordering agrees on scores 1. Pairs whose confidence is not
above 0.5 (Borda ties, or a Borda order the pairwise votes contradict) carry
no preference and are dropped.

Each pair also gets its margin: the gap of the two candidates' rank points
(Borda counts by rank, whatever the score scale) over the largest gap the list
allows, 1 for the list's best against its worst, small for neighbours. Confidence says how consistently the orderings agree on
the pair; margin how far apart they put its items.

A single answer (a deterministic backend, or `--num_orders=1`) has no
agreement to measure, so its confidence comes from the score margin instead:
0.5 + 0.5 (s_a - s_b) / (max s - min s), 1 for the list's best against its
worst and near 0.5 for neighbours. Without this every pair of such a backend
had confidence 1 and the gate's confidence signal carried nothing.

Answers on the absolute [0, 1] scale (the openai score mode, `absolute=True`)
keep their scale: a candidate's score is its mean over the answers (a
candidate an answer left out counts 0.5 there), the pairs follow that mean,
and a pair's confidence is 0.5 + 0.5 (mean_a - mean_b): 1 for 1 against 0,
0.5 + d/2 for a gap d, whatever the list's spread. Candidates with equal means
(ties) form no pair with each other; each still pairs with every candidate
above or below it. The margin is the rank-point gap, as above.
"""
from __future__ import annotations

import dataclasses
from typing import Sequence

import numpy as np


@dataclasses.dataclass(frozen=True)
class Pair:
    a: int  # candidate position preferred
    b: int
    confidence: float  # in (0.5, 1]
    margin: float  # how far apart the aggregated ranking puts a and b, in (0, 1]


def pairwise_wins(scores: Sequence[np.ndarray]) -> np.ndarray:
    """wins[i, j] = share of answers ranking candidate i above j (ties count half);
    for a single answer, the margin-scaled preference of i over j in [0, 1]."""
    stacked = np.stack([np.asarray(s, np.float64) for s in scores])  # answers x k
    if len(stacked) == 1:
        spread = stacked[0].max() - stacked[0].min()
        margin = stacked[0][:, None] - stacked[0][None, :]
        wins = 0.5 + 0.5 * (margin / spread if spread > 0 else np.zeros_like(margin))
        np.fill_diagonal(wins, 0.0)
        return wins
    above = (stacked[:, :, None] > stacked[:, None, :]).mean(0)
    tied = (stacked[:, :, None] == stacked[:, None, :]).mean(0)
    wins = above + 0.5 * tied
    np.fill_diagonal(wins, 0.0)
    return wins


def rank_points(scores: Sequence[np.ndarray]) -> np.ndarray:
    """Per candidate, the candidates it ranks above summed over the answers (ties count half)."""
    stacked = np.stack([np.asarray(s, np.float64) for s in scores])
    above = (stacked[:, :, None] > stacked[:, None, :]).sum((0, 2))
    tied = (stacked[:, :, None] == stacked[:, None, :]).sum((0, 2)) - len(stacked)  # not with itself
    return above + 0.5 * tied


def aggregate_pairs(scores: Sequence[np.ndarray], max_pairs: int = 0,
                    rng: np.random.Generator | None = None,
                    absolute: bool = False) -> tuple[np.ndarray, list[Pair]]:
    """The Borda points and the preference pairs of one list.

    `max_pairs` > 0 keeps a uniform sample of that many pairs (needs `rng`), so lists of
    any size contribute a bounded number of pairs. `absolute`: the answers are scores in
    [0, 1] (the score mode), kept on their scale (see the module docstring).
    """
    if not scores:
        raise ValueError("aggregate_pairs needs at least one answer")
    if absolute:
        points = np.mean(np.stack([np.asarray(s, np.float64) for s in scores]), 0)
        wins = 0.5 + 0.5 * (points[:, None] - points[None, :])
    else:
        wins = pairwise_wins(scores)
        points = wins.sum(1) * len(scores)
    k = points.size
    ranks = rank_points(scores)
    most = len(scores) * (k - 1)  # the rank-point gap of a list's best over its worst
    pairs = [Pair(int(a), int(b), float(wins[a, b]), float((ranks[a] - ranks[b]) / most))
             for a in range(k) for b in range(k)
             if points[a] > points[b] and wins[a, b] > 0.5]
    pairs.sort(key=lambda p: (-points[p.a], -points[p.b], p.a, p.b))
    if 0 < max_pairs < len(pairs):
        if rng is None:
            raise ValueError("max_pairs needs an rng to sample pairs")
        keep = np.sort(rng.choice(len(pairs), size=max_pairs, replace=False))
        pairs = [pairs[i] for i in keep]
    return points, pairs
