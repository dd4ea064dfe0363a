"""Test metrics with their uncertainty: what metrics.json reports.

The effects S-LLMR is about are small (+0.007 to +0.01 AUC), so every AUC comes
with its n and a 95% interval from a bootstrap over users (users, not rows, are
the independent units: one user's rows share that user's history and
negatives), and a segment with fewer than segments.MIN_EVENTS test events is
flagged `too_small` so no one ranks methods on it.

Segments (segments.py holds the rules):
    overall           every row of the split
    cold_start_users  rows of users with < 3 train positives (the prepare tag)
    longtail_items    rows whose item is in the bottom 20% of train popularity (the
                      paper's definition; few rows under leave-last-out)
    longtail_events   the 20% of rows whose items are least popular (event-weighted)
    heavy_users       rows of the 20% of users with the most train positives, where
                      collaborative signal is strongest and an LLM is expected to help least
gAUC is the unweighted mean over users of each user's AUC, over users having
both a positive and a negative row.
"""
from __future__ import annotations

import dataclasses
from typing import Iterator

import numpy as np

from sllmr_tf import segments

LOG_EPS = 1e-7


@dataclasses.dataclass
class Predictions:
    """One row per evaluated example."""

    labels: np.ndarray  # float 0/1
    probs: np.ndarray  # predicted probability of a positive
    users: np.ndarray  # user index
    items: np.ndarray  # item index
    is_cold_user: np.ndarray  # bool
    is_longtail_item: np.ndarray  # bool
    is_heavy_user: np.ndarray  # bool
    item_pop: np.ndarray  # train popularity of the item

    def subset(self, mask: np.ndarray) -> "Predictions":
        return Predictions(**{f.name: getattr(self, f.name)[mask] for f in dataclasses.fields(self)})


def evaluate(pred: Predictions, num_bootstrap: int = 200, seed: int = 0) -> dict:
    """metrics.json's block for one split."""
    masks = {
        "overall": np.ones(len(pred.labels), bool),
        "cold_start_users": pred.is_cold_user.astype(bool),
        "longtail_items": pred.is_longtail_item.astype(bool),
        "longtail_events": segments.longtail_events(pred.item_pop, pred.items),
        "heavy_users": pred.is_heavy_user.astype(bool),
    }
    report = {name: segment_report(pred.subset(masks[name]), num_bootstrap, seed)
              for name in segments.EVAL_SEGMENTS}
    report["gauc"] = gauc_report(pred, num_bootstrap, seed)
    report["min_events"] = segments.MIN_EVENTS
    report["interval"] = f"95% percentile bootstrap over users, {num_bootstrap} resamples"
    return report


def segment_report(pred: Predictions, num_bootstrap: int, seed: int) -> dict:
    n = len(pred.labels)
    out = {"n": n, "n_users": int(np.unique(pred.users).size), "positives": int(pred.labels.sum()),
           "too_small": n < segments.MIN_EVENTS, "auc": None, "auc_ci95": None, "logloss": None}
    if n == 0:
        return out
    out["logloss"] = logloss(pred.labels, pred.probs)
    if 0 < out["positives"] < n:
        out["auc"] = auc(pred.labels, pred.probs)
        out["auc_ci95"] = interval95(bootstrap_auc(pred.labels, pred.probs, pred.users, num_bootstrap, seed))
    return out


def logloss(labels: np.ndarray, probs: np.ndarray) -> float:
    p = np.clip(probs.astype(np.float64), LOG_EPS, 1 - LOG_EPS)
    return float(-np.mean(labels * np.log(p) + (1 - labels) * np.log1p(-p)))


def auc(labels: np.ndarray, scores: np.ndarray, weights: np.ndarray | None = None) -> float:
    """ROC AUC (ties count one half), optionally with per-row weights."""
    ranked = _RankedScores(labels, scores)
    return float(ranked.auc(np.ones(len(labels)) if weights is None else weights))


def bootstrap_auc(labels: np.ndarray, scores: np.ndarray, users: np.ndarray, num_bootstrap: int,
                  seed: int) -> np.ndarray:
    """AUCs of `num_bootstrap` resamples of the users (each row weighted by its user's draw count)."""
    ranked = _RankedScores(labels, scores)
    values = [ranked.auc(weights) for weights in user_resample_weights(users, num_bootstrap, seed)]
    return np.asarray([v for v in values if np.isfinite(v)])


def user_resample_weights(users: np.ndarray, num_bootstrap: int, seed: int) -> Iterator[np.ndarray]:
    """For each of `num_bootstrap` resamples of the users (with replacement), each row's weight:
    how many times its user was drawn. The one resampling of every interval over users."""
    _, user_row = np.unique(users, return_inverse=True)
    num_users = int(user_row.max()) + 1
    rng = np.random.default_rng(seed)
    for _ in range(num_bootstrap):
        yield np.bincount(rng.integers(0, num_users, num_users), minlength=num_users)[user_row]


def gauc_report(pred: Predictions, num_bootstrap: int, seed: int) -> dict:
    per_user = per_user_auc(pred.labels, pred.probs, pred.users)
    out = {"value": None, "ci95": None, "n_users": int(per_user.size),
           "too_small": int(per_user.size) < segments.MIN_EVENTS}
    if per_user.size:
        out["value"] = float(per_user.mean())
        rng = np.random.default_rng(seed)
        draws = rng.integers(0, per_user.size, (num_bootstrap, per_user.size))
        out["ci95"] = interval95(per_user[draws].mean(axis=1))
    return out


def per_user_auc(labels: np.ndarray, scores: np.ndarray, users: np.ndarray) -> np.ndarray:
    """AUC of each user having both a positive and a negative row."""
    order = np.argsort(users, kind="stable")
    users, labels, scores = users[order], labels[order], scores[order]
    bounds = np.flatnonzero(np.diff(users)) + 1
    values = []
    for lab, sco in zip(np.split(labels, bounds), np.split(scores, bounds)):
        if 0 < lab.sum() < len(lab):
            values.append(auc(lab, sco))
    return np.asarray(values, np.float64)


class _RankedScores:
    """Scores sorted once so each weighted AUC is one pass (the bootstrap needs hundreds)."""

    def __init__(self, labels: np.ndarray, scores: np.ndarray):
        _, self.group = np.unique(np.asarray(scores, np.float64), return_inverse=True)
        self.num_groups = int(self.group.max()) + 1 if len(self.group) else 0
        self.positive = np.asarray(labels) > 0.5

    def auc(self, weights: np.ndarray) -> float:
        w = np.asarray(weights, np.float64)
        pos = np.bincount(self.group, weights=w * self.positive, minlength=self.num_groups)
        neg = np.bincount(self.group, weights=w * ~self.positive, minlength=self.num_groups)
        total_pos, total_neg = pos.sum(), neg.sum()
        if total_pos == 0 or total_neg == 0:
            return float("nan")
        below = np.cumsum(neg) - neg  # negative weight strictly below each score
        return float(np.sum(pos * (below + 0.5 * neg)) / (total_pos * total_neg))


def interval95(values: np.ndarray) -> list[float] | None:
    """The 2.5 and 97.5 percentiles of bootstrap values (None without any)."""
    if values.size == 0:
        return None
    lo, hi = np.percentile(values, [2.5, 97.5])
    return [float(lo), float(hi)]
