"""Every segment rule, once: who is a cold-start user, which item is long-tail, which pair is whose.

prepare tags examples with these rules, the scorer counts pairs by them, the
training step and the gate report weigh pairs by them, the reliability report
judges the LLM by them, and evaluation and the results tables report by them.
The pair rules take numpy arrays or TensorFlow tensors alike (they use only
comparisons and boolean operators).
"""
from __future__ import annotations

import math

import numpy as np

from sllmr_tf.features import OUTCOME_UNKNOWN

COLD_START_MAX_TRAIN_POSITIVES = 2  # a cold-start user has fewer than 3 train positives
LONG_TAIL_FRACTION = 0.2  # a long-tail item is in the bottom 20% of train popularity
HEAVY_USER_FRACTION = 0.2  # heavy users: the 20% of users with the most train positives
LONGTAIL_EVENT_SHARE = 0.2  # long-tail events: the 20% of rows with the least popular items
MIN_EVENTS = 200  # a segment with fewer test rows is reported as too small, never ranked
MIN_JUDGED_PAIRS = 30  # a reliability-report segment with fewer known-outcome pairs is too small to judge

# Lower edges of the buckets of a user's train positives: 1-2, 3-5, 6-10,
# 11-20, 21-50, 51-100, >100.
HISTORY_BUCKET_EDGES = (1, 3, 6, 11, 21, 51, 101)
# Fixed edges, not quintiles, so a bucket means the same popularity on every dataset and run and
# tied popularities never merge buckets: the history edges, with 0 for items no train event touched.
POPULARITY_BUCKET_EDGES = (0, *HISTORY_BUCKET_EDGES)

# The evaluation segments, in report order (gAUC is reported beside them).
EVAL_SEGMENTS = ("overall", "cold_start_users", "longtail_items", "longtail_events", "heavy_users")
# The pair segments the gate's figures are reported on.
PAIR_SEGMENTS = ("all", "cold_start", "longtail", "head")

COLD_START_DEFINITION = f"< {COLD_START_MAX_TRAIN_POSITIVES + 1} train positives"
LONG_TAIL_DEFINITION = f"bottom {LONG_TAIL_FRACTION:.0%} of train popularity"


def is_cold_start(train_positives):
    """A user with fewer than 3 train positives is cold-start (an int count, or an array of them)."""
    return np.asarray(train_positives) <= COLD_START_MAX_TRAIN_POSITIVES


def long_tail_items(popularity: np.ndarray) -> np.ndarray:
    """Bool per item index (row 0, padding, is False): bottom 20% of train popularity, ties never split."""
    return _bottom_share(np.asarray(popularity), LONG_TAIL_FRACTION)


def heavy_users(train_positives: np.ndarray) -> np.ndarray:
    """Bool per user index (row 0, padding, is False): the 20% of users with the most train
    positives, ties never split (the long-tail rule on the negated counts)."""
    return _bottom_share(-np.asarray(train_positives, dtype=np.int64), HEAVY_USER_FRACTION)


def _bottom_share(values: np.ndarray, fraction: float) -> np.ndarray:
    """Bool per index of `values` (row 0, padding, is False): the rows at or below the largest
    value v with #(values <= v) <= fraction of the rows; if the smallest value alone exceeds
    that share, exactly the rows holding it."""
    rows = values[1:]
    ascending = np.sort(rows)
    budget = int(np.floor(fraction * len(rows)))
    candidates = np.unique(ascending)
    at_most = np.searchsorted(ascending, candidates, side="right")
    allowed = candidates[at_most <= budget]
    threshold = allowed.max() if len(allowed) else candidates.min()
    return np.r_[False, rows <= threshold]


def longtail_events(item_pop: np.ndarray, items: np.ndarray, share: float = LONGTAIL_EVENT_SHARE) -> np.ndarray:
    """Mask of the `share` of rows with the least popular items (ties broken by item index)."""
    order = np.lexsort((items, item_pop))
    mask = np.zeros(len(item_pop), bool)
    mask[order[:math.ceil(share * len(item_pop))]] = True
    return mask


def pair_touches_longtail(a_is_longtail, b_is_longtail):
    """A pair belongs to the long tail when either of its items does."""
    return (a_is_longtail > 0) | (b_is_longtail > 0)


def pair_popularity(a_popularity, b_popularity):
    """A pair is as popular as its less popular item, the one the LLM is likelier not to know."""
    return np.minimum(a_popularity, b_popularity)


def count_bucket(counts, edges: tuple[int, ...]) -> np.ndarray:
    """The bucket of each count (numpy): k where edges[k] <= count < edges[k + 1] (the last bucket
    is open), -1 below edges[0]."""
    return np.searchsorted(edges, counts, side="right") - 1


def bucket_labels(edges: tuple[int, ...]) -> tuple[str, ...]:
    """The buckets of `edges` as text: "3-5", "0" for a bucket of one value, ">100" for the last."""
    spans = [(low, high - 1) for low, high in zip(edges, edges[1:])]
    return (*(f"{low}" if low == high else f"{low}-{high}" for low, high in spans), f">{edges[-1] - 1}")


def pair_segments(is_cold_user, a_is_longtail, b_is_longtail) -> dict:
    """Masks of PAIR_SEGMENTS: all pairs, cold-start users' pairs, long-tail pairs, and the rest (head)."""
    cold = is_cold_user > 0
    longtail = pair_touches_longtail(a_is_longtail, b_is_longtail)
    return {"all": cold | ~cold, "cold_start": cold, "longtail": longtail, "head": ~cold & ~longtail}


def cold_or_longtail(is_cold_user, a_is_longtail, b_is_longtail):
    """Where the paper expects the LLM to be reliable: a cold-start user or a long-tail item."""
    return (is_cold_user > 0) | pair_touches_longtail(a_is_longtail, b_is_longtail)


def outcome_known(outcome):
    """The train data decides the pair: one item is a train positive of the user, the other is not."""
    return outcome != OUTCOME_UNKNOWN


def llm_agrees(outcome):
    """The LLM's order matches the train outcome (False where the outcome is unknown)."""
    return outcome == 1
