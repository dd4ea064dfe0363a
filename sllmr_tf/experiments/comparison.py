"""The main job's closing table: each method against base, read from the runs' metrics.json.

Two tables and a verdict per method:

- AUC per evaluation segment (overall, cold-start users, long-tail items, heavy users), the
  overall logloss and gAUC: the mean over seeds, with the 95% interval of the runs' own
  bootstrap over test users (averaged over seeds: how precisely one run is measured).
- Each method's difference from base, paired by seed (same test rows), with the 95%
  t-interval over seeds (results.mean_with_t_interval): the interval a claim rests on.
  One seed gives a difference but no interval, and then the verdict says so.
"""
from __future__ import annotations

import dataclasses
import math
from collections import defaultdict

import numpy as np

from sllmr_tf import segments
from sllmr_tf.experiments.results import (BASELINE, CHECKED_SUFFIX, TEST, mean_with_t_interval, read_runs,
                                          validation_checked)

# The closing table's AUC columns, in order, with their headings.
AUC_SEGMENTS = {"overall": "overall", "cold_start_users": "cold-start", "longtail_items": "long-tail",
                "heavy_users": "heavy users"}
GAUC = "gauc"
LOGLOSS = "logloss"
# The quantities a method is compared with base on, with their headings (logloss is shown, not compared).
COMPARED = {**AUC_SEGMENTS, GAUC: "gAUC"}
CHECKED_DEFINITION = (f"METHOD{CHECKED_SUFFIX}: per seed, the method's run where its validation AUC beats base's, "
                      "else base's run (what shipping it only on the validation split's word gives)")


@dataclasses.dataclass(frozen=True)
class Cell:
    """One quantity of one method: mean over seeds and its interval (nan bounds when none)."""

    value: float
    low: float = math.nan
    high: float = math.nan
    too_small: bool = False

    def text(self, signed: bool = False) -> str:
        if math.isnan(self.value):
            return "n/a"
        number = f"{self.value:+.4f}" if signed else f"{self.value:.4f}"
        interval = "" if math.isnan(self.low) else (f" [{self.low:+.4f}, {self.high:+.4f}]" if signed
                                                     else f" [{self.low:.4f}, {self.high:.4f}]")
        return number + interval + (" (too small)" if self.too_small else "")


@dataclasses.dataclass(frozen=True)
class MethodRow:
    """One method of one backbone: its absolute figures and its paired differences from base."""

    backbone: str
    method: str
    seeds: tuple[int, ...]
    model_dirs: tuple[str, ...]
    absolute: dict[str, Cell]  # AUC_SEGMENTS, GAUC, LOGLOSS
    delta: dict[str, Cell]  # AUC_SEGMENTS and GAUC, method - base; empty for base


def _quantities(metrics: dict) -> dict[str, tuple[float, list | None, bool]]:
    """(value, run interval, too small) of each closing-table quantity in one run's test block."""
    test = metrics[TEST]
    out = {}
    for segment in AUC_SEGMENTS:
        block = test[segment]
        out[segment] = (math.nan if block["auc"] is None else block["auc"], block["auc_ci95"], bool(block["too_small"]))
    out[GAUC] = (math.nan if test[GAUC]["value"] is None else test[GAUC]["value"], test[GAUC]["ci95"], False)
    out[LOGLOSS] = (math.nan if test["overall"][LOGLOSS] is None else test["overall"][LOGLOSS], None, False)
    return out


def compare(runs_root: str, checked: bool = False) -> list[MethodRow]:
    """One row per (backbone, method) of every finished run under `runs_root` (base first).

    Args:
        runs_root: a folder holding model_dirs with metrics.json (sllmr-experiment's runs/).
        checked: also a row per method checked on validation (results.validation_checked).

    Returns:
        The rows, per backbone: base, then the other methods by name.
    """
    groups: dict[tuple[str, str], dict[int, tuple[str, dict]]] = defaultdict(dict)
    runs = read_runs(runs_root)
    for model_dir, metrics in runs + (validation_checked(runs) if checked else []):
        groups[(metrics["backbone"], metrics["method"])][metrics["seed"]] = (model_dir, _quantities(metrics))
    rows = []
    for backbone, method in sorted(groups, key=lambda key: (key[0], key[1] != BASELINE, key[1])):
        runs = dict(sorted(groups[(backbone, method)].items()))
        base = groups.get((backbone, BASELINE), {})
        absolute, delta = {}, {}
        for name in (*COMPARED, LOGLOSS):
            values = [q[name][0] for _, q in runs.values()]
            intervals = [q[name][1] for _, q in runs.values() if q[name][1]]
            low, high = (np.mean([i[0] for i in intervals]), np.mean([i[1] for i in intervals])) \
                if len(intervals) == len(values) else (math.nan, math.nan)
            too_small = any(q[name][2] for _, q in runs.values())
            absolute[name] = Cell(float(np.mean(values)), float(low), float(high), too_small)
            paired = [q[name][0] - base[seed][1][name][0] for seed, (_, q) in runs.items() if seed in base]
            if method != BASELINE and name != LOGLOSS and paired:
                delta[name] = Cell(*mean_with_t_interval(paired), too_small=too_small)
        rows.append(MethodRow(backbone, method, tuple(runs), tuple(d for d, _ in runs.values()), absolute, delta))
    return rows


def to_text(rows: list[MethodRow]) -> str:
    """The two markdown tables (absolute figures, differences from base)."""
    seeds = sorted({len(r.seeds) for r in rows})
    heads = [*COMPARED.values(), "logloss"]
    lines = [f"Test AUC, mean over {'/'.join(map(str, seeds))} seed(s) [95% interval of one run: bootstrap "
             f"over test users]", "",
             "| backbone | method | " + " | ".join(heads) + " |", "|---" * (len(heads) + 2) + "|"]
    for r in rows:
        cells = [r.absolute[name].text() for name in COMPARED] + [f"{r.absolute[LOGLOSS].value:.4f}"]
        lines.append(f"| {r.backbone} | {r.method} | " + " | ".join(cells) + " |")
    lines += ["", "Difference from base, paired by seed [95% t-interval over seeds]", "",
              "| backbone | method | " + " | ".join(heads[:-1]) + " |", "|---" * (len(heads) + 1) + "|"]
    for r in rows:
        if r.delta:
            lines.append(f"| {r.backbone} | {r.method} | "
                         + " | ".join(r.delta[name].text(signed=True) for name in COMPARED) + " |")
    return "\n".join(lines)


def verdict(row: MethodRow) -> str:
    """Whether `row`'s method beat base, in plain words, with the overall interval and the
    segments where the interval excludes 0."""
    overall = row.delta.get("overall")
    name = f"{row.method} ({row.backbone}, {len(row.seeds)} seed{'s' if len(row.seeds) > 1 else ''})"
    if overall is None:
        return f"{name}: no base run with the same seeds to compare with"
    figure = overall.text(signed=True)
    if math.isnan(overall.low):
        return (f"{name}: overall AUC {figure} against base, from one seed: no interval, so no verdict "
                "(train more seeds: --seeds=3 or more)")
    if overall.low > 0:
        said = f"beat base here: overall AUC {figure}"
    elif overall.high < 0:
        said = f"did worse than base here: overall AUC {figure}"
    else:
        said = f"did not beat base here: overall AUC {figure}, an interval that contains 0"
    clear = [f"{COMPARED[s]} {row.delta[s].text(signed=True)}" for s in COMPARED
             if s != "overall" and not row.delta[s].too_small and not math.isnan(row.delta[s].low)
             and (row.delta[s].low > 0 or row.delta[s].high < 0)]
    return f"{name} {said}" + (f"; clear differences: {'; '.join(clear)}" if clear else
                               "; no segment's interval excludes 0")


def segment_definitions() -> str:
    """One line that says what the segments are (the rules live in segments.py)."""
    return (f"cold-start users: {segments.COLD_START_DEFINITION}; long-tail items: {segments.LONG_TAIL_DEFINITION}; "
            f"heavy users: the {segments.HEAVY_USER_FRACTION:.0%} of users with the most train positives")
