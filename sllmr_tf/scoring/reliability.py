"""The LLM reliability report: where the LLM's order is worth trusting, before any training.

On the pairs whose outcome the train data decides (segments.outcome_known: a
train positive of the user against an item the user never had) it gives, per
segment, how often the LLM's order agrees with that outcome (segments.llm_agrees),
with a 95% simultaneous interval and n, against the 50% of a coin flip. The segments: all
pairs; cold-start users and the others; long-tail pairs and head pairs; the
user's history length and the pair's popularity (its less popular item's), in
the fixed buckets of segments.py.

The interval is clustered by user: a user's pairs come from the same few
answers, so they are not independent evidence. It is the ratio estimator's
cluster-robust standard error (agreements / known pairs summed per user, with
the small-sample factor G / (G - 1) for G users) and a Student-t quantile with
G - 1 degrees of freedom. Chosen over a user bootstrap because it is closed
form: no seed, and one vectorized pass over the pairs per segment, so
`sllmr-score` stays fast on millions of pairs. A user's pairs repeated k times
leave it unchanged, where an interval over pairs would narrow by sqrt(k).

A segment is judged from its interval: "better than a coin flip" when the
interval lies above 0.5, "worse" below it, "no better" when it holds 0.5.
Fewer than segments.MIN_JUDGED_PAIRS known pairs, or a single user (no
interval), is "too small to judge". The intervals are simultaneous: each is
at level 1 - 0.05 / rows (Bonferroni), so all of them hold at once with 95%
probability. With a 95% interval per row, a useless teacher's report of about
twenty rows showed one row "better" or "worse" by chance (BUILD_NOTES.md); a
user reads the report row by row, so each row must be safe to read alone.
"""
from __future__ import annotations

import csv
import dataclasses
import io
import math
from typing import Mapping

import numpy as np
from scipy import stats as scipy_stats

from sllmr_tf import fileio, segments
from sllmr_tf.data import pairs_dir as pairs_dir_lib
from sllmr_tf.data.dataset_dir import DatasetDir

REPORT_NAME = "reliability"  # reliability.md, reliability.csv, reliability.png in the pairs dir
COIN_FLIP = 0.5
CONFIDENCE = 0.95  # that every row's interval holds at once
BETTER = "better than a coin flip"
NO_BETTER = "no better than a coin flip"
WORSE = "worse than a coin flip"
TOO_SMALL = "too small to judge"
FAMILIES = ("all", "users", "items", "history length", "item popularity")


@dataclasses.dataclass(frozen=True)
class Row:
    """One segment of the report (the rate and bounds are nan where no pair's outcome is known)."""

    family: str  # one of FAMILIES
    segment: str
    pairs: int  # every pair of the segment
    known_pairs: int  # those whose outcome the train data decides
    users: int  # users with a known pair in the segment
    agreement: float  # share of the known pairs the LLM orders as the train data does
    ci95_low: float
    ci95_high: float
    verdict: str  # BETTER, NO_BETTER, WORSE or TOO_SMALL


COLUMNS = tuple(field.name for field in dataclasses.fields(Row))


def build_report(pairs_dir: str, data_dir: str) -> list[Row]:
    """The report's rows for a complete pairs dir and the dataset it was scored from.

    Args:
        pairs_dir: the output of every `sllmr-score` process (data/pairs_dir.py).
        data_dir: the prepared dataset it scored.

    Returns:
        The rows, in FAMILIES order ("all pairs" first).

    Raises:
        ArtifactError: the pairs dir is incomplete (pairs_dir.scored_dataset) or was scored
            from another dataset.
    """
    dataset = DatasetDir(data_dir)
    dataset.check_lineage(pairs_dir_lib.scored_dataset(pairs_dir), pairs_dir)
    return report_rows(pairs_dir_lib.read_pairs(pairs_dir), dataset)


def report_rows(pairs: Mapping[str, np.ndarray], dataset: DatasetDir) -> list[Row]:
    """The report's rows for pair columns (pairs_dir.read_pairs) of `dataset`'s users and items."""
    users, items = dataset.user_lookup(), dataset.item_lookup()
    user, a, b = (np.asarray(pairs[name]) for name in ("user_id", "item_a", "item_b"))
    outcome = np.asarray(pairs["outcome"])
    known = np.asarray(segments.outcome_known(outcome))
    agrees = np.asarray(segments.llm_agrees(outcome)).astype(np.float64)
    _, group = np.unique(user, return_inverse=True)
    num_users = int(group.max()) + 1 if len(group) else 0

    cold = users["is_cold_user"][user] > 0
    longtail = np.asarray(segments.pair_touches_longtail(items["is_longtail_item"][a], items["is_longtail_item"][b]))
    history = segments.count_bucket(users["train_positives"][user], segments.HISTORY_BUCKET_EDGES)
    popularity = segments.count_bucket(segments.pair_popularity(items["item_pop"][a], items["item_pop"][b]),
                                       segments.POPULARITY_BUCKET_EDGES)
    masks = [("all", "all pairs", np.ones(len(user), bool)),
             ("users", "cold-start users", cold), ("users", "other users", ~cold),
             ("items", "long-tail pairs", longtail), ("items", "head pairs", ~longtail)]
    masks += [("history length", f"{label} train positives", history == k)
              for k, label in enumerate(segments.bucket_labels(segments.HISTORY_BUCKET_EDGES))]
    masks += [("item popularity", f"popularity {label}", popularity == k)
              for k, label in enumerate(segments.bucket_labels(segments.POPULARITY_BUCKET_EDGES))]
    tail = (1 - CONFIDENCE) / (2 * len(masks))  # Bonferroni: every row's interval holds at once
    return [_row(family, segment, int(mask.sum()), group[mask & known], agrees[mask & known], num_users, tail)
            for family, segment, mask in masks]


def _row(family: str, segment: str, pairs: int, group: np.ndarray, agrees: np.ndarray, num_users: int,
         tail: float) -> Row:
    """A segment's row from its known pairs' user groups and agreements (the module's interval)."""
    known = len(group)
    per_user = np.bincount(group, minlength=num_users)
    present = per_user > 0
    n, agreed = per_user[present], np.bincount(group, weights=agrees, minlength=num_users)[present]
    users = int(present.sum())
    if not known:
        return Row(family, segment, pairs, 0, 0, math.nan, math.nan, math.nan, TOO_SMALL)
    rate = float(agreed.sum() / known)
    low = high = math.nan
    if users > 1:
        variance = users / (users - 1) * float(np.sum((agreed - rate * n) ** 2)) / known ** 2
        half = float(scipy_stats.t.ppf(1 - tail, users - 1)) * math.sqrt(variance)
        low, high = max(0.0, rate - half), min(1.0, rate + half)
    if known < segments.MIN_JUDGED_PAIRS or users < 2:
        verdict = TOO_SMALL
    else:
        verdict = BETTER if low > COIN_FLIP else WORSE if high < COIN_FLIP else NO_BETTER
    return Row(family, segment, pairs, known, users, rate, low, high, verdict)


def to_markdown(rows: list[Row]) -> str:
    """The report as a markdown table, below a line saying what it measures."""
    lines = ["LLM agreement with the train outcome on the pairs it decides (a train positive of the user "
             "against an item the user never had); 95% intervals that hold for every row at once "
             "(Bonferroni), clustered by user; a coin flip agrees 50%; "
             f"fewer than {segments.MIN_JUDGED_PAIRS} known pairs is too small to judge.", ""]
    if not rows[0].known_pairs:
        lines += [f"No pair of the {rows[0].pairs:,} has an outcome the train data decides, so nothing here can "
                  "be judged.", ""]
    lines += ["| family | segment | pairs | known | users | agreement | 95% CI | verdict |",
              "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        rate = "-" if math.isnan(r.agreement) else f"{r.agreement:.3f}"
        interval = "-" if math.isnan(r.ci95_low) else f"[{r.ci95_low:.3f}, {r.ci95_high:.3f}]"
        lines.append(f"| {r.family} | {r.segment} | {r.pairs:,} | {r.known_pairs:,} | {r.users:,} | {rate} | "
                     f"{interval} | {r.verdict} |")
    return "\n".join(lines)


def write_report(rows: list[Row], pairs_dir: str) -> list[str]:
    """reliability.md, reliability.csv and reliability.png in `pairs_dir`; returns their paths."""
    paths = [fileio.join(pairs_dir, REPORT_NAME + ext) for ext in (".md", ".csv", ".png")]
    fileio.write_atomic(paths[0], to_markdown(rows) + "\n")
    table = io.StringIO(newline="")
    writer = csv.DictWriter(table, fieldnames=COLUMNS)
    writer.writeheader()
    writer.writerows(dataclasses.asdict(r) for r in rows)
    fileio.write_atomic(paths[1], table.getvalue())
    _plot(rows, paths[2])
    return paths


def _plot(rows: list[Row], path: str) -> None:
    """Agreement and its interval per segment, one band per family, a dashed line at a coin flip."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 0.3 * len(rows) + 1.2))
    shades = ("tab:blue", "tab:orange")
    for k, r in enumerate(rows):
        color = shades[FAMILIES.index(r.family) % 2]
        if r.verdict != TOO_SMALL:
            ax.errorbar(r.agreement, k, xerr=[[r.agreement - r.ci95_low], [r.ci95_high - r.agreement]],
                        fmt="o", color=color, capsize=3)
        elif not math.isnan(r.agreement):
            ax.plot(r.agreement, k, "o", color="lightgray")
    for k in range(1, len(rows)):
        if rows[k].family != rows[k - 1].family:
            ax.axhline(k - 0.5, color="lightgray", linewidth=0.8)
    ax.axvline(COIN_FLIP, color="gray", linestyle="--", linewidth=1)
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels([f"{r.segment} (n={r.known_pairs:,})" + (", too small" if r.verdict == TOO_SMALL else "")
                        for r in rows], fontsize=7)
    ax.invert_yaxis()
    ax.set_xlim(0.0, 1.0)
    ax.set_xlabel("LLM agreement with the train outcome\n"
                  "(95% intervals holding for all rows at once, clustered by user)")
    if not rows[0].known_pairs:
        ax.text(0.5, 0.5, "no pair with a known outcome", transform=ax.transAxes, ha="center")
    fig.tight_layout()
    image = io.BytesIO()
    fig.savefig(image, dpi=100, format="png")
    plt.close(fig)
    fileio.write_atomic(path, image.getvalue())
