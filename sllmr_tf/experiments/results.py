"""Results tables from many runs' metrics.json: mean, spread and paired gains over `base`.

One run's AUC interval (bootstrap over users) says how precisely that run was
measured; the spread across seeds says how much training noise moves it. A
method's gain is judged paired: per seed, its AUC minus `base`'s AUC on the same
test rows, then a t-interval over seeds. A segment flagged too small (< 200 test
events) is reported but never ranked. results.png draws both (plots.py), and
gate_calibration.png the gated runs' weight against the signal their pairs carry.

A method "checked on validation" (METHOD_checked, `validation_checked`) is what a
user who ships it only when the validation split says it beats base gets: per seed,
the method's run where its validation AUC is above base's, else base's run. The
validation split already picks each run's epoch; here it also decides whether the
LLM's guidance is used at all, which none of the per-pair statistics we measured
could tell (BUILD_NOTES.md, "What the data can show about a teacher").
"""
from __future__ import annotations

import csv
import io
import math
from collections import defaultdict
from typing import Sequence

import numpy as np
from scipy import stats as scipy_stats

from sllmr_tf import fileio, segments
from sllmr_tf.experiments import plots
from sllmr_tf.training.config import FULL_RANKING_SUFFIX

BASELINE = "base"
TEST = "test"
VALID = "valid"
CHECKED_SUFFIX = "_checked"
CALIBRATION_PLOT = "gate_calibration.png"
COLUMNS = ("backbone", "method", "segment", "seeds", "n", "auc_mean", "auc_std", "auc_ci95_low", "auc_ci95_high",
           "run_ci_halfwidth", "delta_vs_base", "delta_ci95_low", "delta_ci95_high", "too_small")


def result_splits(root: str) -> list[str]:
    """The test blocks the runs under `root` hold: "test", and "test_full_ranking" when every
    run has one (a table mixing runs with and without it would not be paired)."""
    runs = [metrics for _, metrics in read_runs(root)]
    full = TEST + FULL_RANKING_SUFFIX
    return [TEST, full] if runs and all(full in metrics for metrics in runs) else [TEST]


def read_runs(root: str) -> list[tuple[str, dict]]:
    """(model_dir, metrics) of every run under `root` with a metrics.json."""
    return [(fileio.dirname(path), fileio.read_json(path)) for path in fileio.find(root, "metrics.json")]


def beats_base_on_validation(metrics: dict, base_metrics: dict) -> bool:
    """The validation check: a run's validation AUC overall is above that of base's run of the
    same seed (a tie keeps base).

    Args:
        metrics: the run's metrics.json.
        base_metrics: base's run's metrics.json, same backbone and seed.

    Returns:
        Whether the run ships instead of base's.
    """
    return metrics[VALID]["overall"]["auc"] > base_metrics[VALID]["overall"]["auc"]


def validation_checked(runs: list[tuple[str, dict]]) -> list[tuple[str, dict]]:
    """Each method other than base, checked on validation: per (backbone, method, seed), the
    method's run where it beats base's run of the same seed on validation
    (`beats_base_on_validation`), else base's run, named METHOD + CHECKED_SUFFIX.

    Args:
        runs: (model_dir, metrics) pairs (read_runs).

    Returns:
        The checked runs as (the chosen run's model_dir, its metrics renamed); methods without
        a base run of the same seed are left out.
    """
    base = {(m["backbone"], m["seed"]): (d, m) for d, m in runs if m["method"] == BASELINE}
    checked = []
    for model_dir, metrics in runs:
        key = (metrics["backbone"], metrics["seed"])
        if metrics["method"] == BASELINE or key not in base:
            continue
        base_dir, base_metrics = base[key]
        chosen_dir, chosen = (model_dir, metrics) if beats_base_on_validation(metrics, base_metrics) else (
            base_dir, base_metrics)
        checked.append((chosen_dir, {**chosen, "method": metrics["method"] + CHECKED_SUFFIX}))
    return checked


def collect(root: str, split: str = TEST, checked: bool = False) -> list[dict]:
    """One row per (run, segment) from every metrics.json under `root`, and with `checked` one
    per (checked run, segment) of `validation_checked`."""
    rows = []
    runs = read_runs(root)
    for _, metrics in runs + (validation_checked(runs) if checked else []):
        for segment in segments.EVAL_SEGMENTS:
            block = metrics[split][segment]
            if block["auc"] is None:
                continue
            low, high = block["auc_ci95"] or (math.nan, math.nan)
            rows.append({"backbone": metrics["backbone"], "method": metrics["method"], "seed": metrics["seed"],
                         "segment": segment, "auc": block["auc"], "ci95": (low, high), "ci_halfwidth": (high - low) / 2,
                         "n": block["n"], "too_small": bool(block["too_small"])})
    return rows


def summarize(rows: list[dict]) -> list[dict]:
    """One line per (backbone, method, segment): mean and spread over seeds, paired delta vs base.

    auc_ci95_low/high: the 95% t-interval of the mean over seeds with several seeds; with one,
    that run's own bootstrap interval (the only measure of its precision there is)."""
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for row in rows:
        groups[(row["backbone"], row["method"], row["segment"])].append(row)
    out = []
    for (backbone, method, segment), runs in sorted(groups.items()):
        aucs = np.array([r["auc"] for r in runs])
        low, high = mean_with_t_interval(aucs)[1:] if len(runs) > 1 else runs[0]["ci95"]
        line = {"backbone": backbone, "method": method, "segment": segment, "seeds": len(runs),
                "n": runs[0]["n"], "auc_mean": aucs.mean(),
                "auc_std": aucs.std(ddof=1) if len(runs) > 1 else math.nan,
                "auc_ci95_low": low, "auc_ci95_high": high,
                "run_ci_halfwidth": float(np.mean([r["ci_halfwidth"] for r in runs])),
                "delta_vs_base": math.nan, "delta_ci95_low": math.nan, "delta_ci95_high": math.nan,
                "too_small": any(r["too_small"] for r in runs)}
        base = {r["seed"]: r["auc"] for r in groups.get((backbone, BASELINE, segment), [])}
        deltas = np.array([r["auc"] - base[r["seed"]] for r in runs if r["seed"] in base])
        if method != BASELINE and len(deltas):
            line["delta_vs_base"], line["delta_ci95_low"], line["delta_ci95_high"] = mean_with_t_interval(deltas)
        out.append(line)
    return out


def mean_with_t_interval(values: Sequence[float]) -> tuple[float, float, float]:
    """(mean, low, high) of a 95% Student-t interval for the mean; nan bounds for one value.

    Over seeds, where each value is one independent run (e.g. a paired difference)."""
    values = np.asarray(values, np.float64)
    if len(values) < 2:
        return float(values.mean()), math.nan, math.nan
    half = scipy_stats.t.ppf(0.975, len(values) - 1) * values.std(ddof=1) / math.sqrt(len(values))
    return float(values.mean()), float(values.mean() - half), float(values.mean() + half)


def method_order(methods: set[str], order: Sequence[str] = ()) -> list[str]:
    """base first, then the methods of `order` in that order, then any others by name."""
    rank = {m: k for k, m in enumerate(order)}
    return sorted(methods, key=lambda m: (m != BASELINE, rank.get(m, len(rank)), m))


def to_markdown(summary: list[dict]) -> str:
    header = ("| backbone | method | segment | seeds | n | AUC mean ± sd | run 95% ± | Δ vs base [95% CI] |\n"
              "|---|---|---|---|---|---|---|---|")
    lines = [header]
    for s in summary:
        if s["too_small"]:
            delta = "too small to rank"
        elif math.isnan(s["delta_vs_base"]):
            delta = "-"
        elif math.isnan(s["delta_ci95_low"]):
            delta = f"{s['delta_vs_base']:+.4f}"
        else:
            delta = f"{s['delta_vs_base']:+.4f} [{s['delta_ci95_low']:+.4f}, {s['delta_ci95_high']:+.4f}]"
        spread = "" if math.isnan(s["auc_std"]) else f" ± {s['auc_std']:.4f}"
        lines.append(f"| {s['backbone']} | {s['method']} | {s['segment']} | {s['seeds']} | {s['n']:,} | "
                     f"{s['auc_mean']:.4f}{spread} | {s['run_ci_halfwidth']:.4f} | {delta} |")
    return "\n".join(lines)


def to_paper_table(summary: list[dict], segment: str = "overall", order: Sequence[str] = ()) -> str:
    """The paper's Table 2 layout: a row per backbone, a column per method (base first, then
    the methods of `order` in that order, then any others by name).

    A cell is the mean AUC over seeds and, for a method, its paired gain over base with the
    95% t-interval over seeds: the paper's table, with the n and intervals it leaves out.
    """
    cells = {(s["backbone"], s["method"]): s for s in summary if s["segment"] == segment}
    backbones = sorted({backbone for backbone, _ in cells})
    methods = method_order({m for _, m in cells}, order)
    seeds = sorted({s["seeds"] for s in cells.values()})
    n = sorted({s["n"] for s in cells.values()})
    lines = [f"{segment}: AUC mean over {'/'.join(map(str, seeds))} seeds, n = {'/'.join(f'{v:,}' for v in n)} "
             f"test events; Δ = paired gain over base [95% CI over seeds]",
             "", "| backbone | " + " | ".join(methods) + " |", "|---" * (len(methods) + 1) + "|"]
    for backbone in backbones:
        row = []
        for method in methods:
            s = cells.get((backbone, method))
            if s is None:
                row.append("-")
            elif method == BASELINE or math.isnan(s["delta_ci95_low"]):
                row.append(f"{s['auc_mean']:.4f}")
            else:
                row.append(f"{s['auc_mean']:.4f} ({s['delta_vs_base']:+.4f} "
                           f"[{s['delta_ci95_low']:+.4f}, {s['delta_ci95_high']:+.4f}])")
        lines.append(f"| {backbone} | " + " | ".join(row) + " |")
    return "\n".join(lines)


def write(summary: list[dict], out_dir: str, split: str = TEST, order: Sequence[str] = ()) -> list[str]:
    """results.md (the table, then the paper's layout), results.csv and results.png in out_dir,
    with the split's suffix ("results_full_ranking.md" for test_full_ranking); returns their paths."""
    stem = "results" + split[len(TEST):]
    paths = [fileio.join(out_dir, stem + ext) for ext in (".md", ".csv", ".png")]
    fileio.write_atomic(paths[0], f"{to_markdown(summary)}\n\n{to_paper_table(summary, order=order)}\n")
    table = io.StringIO(newline="")
    writer = csv.DictWriter(table, fieldnames=COLUMNS)
    writer.writeheader()
    writer.writerows({k: s[k] for k in COLUMNS} for s in summary)
    fileio.write_atomic(paths[1], table.getvalue())
    methods = method_order({s["method"] for s in summary}, order)
    fileio.write_atomic(paths[2], plots.results_figure(summary, methods, split, BASELINE))
    return paths


def collect_calibration(root: str) -> dict[tuple[str, str], dict]:
    """Per (backbone, method) whose runs under `root` report the gate's calibration bins
    (metrics.json gate.calibration), those bins pooled over seeds: bins of one id (the k-th
    quantile of each seed's weights) summed, their means weighted by pairs (agreement: by
    known-outcome pairs). Returns {(backbone, method): {"seeds": k, "pairs": n, "bins": [...]}}."""
    runs: dict[tuple[str, str], list[list[dict]]] = defaultdict(list)
    for path in fileio.find(root, "metrics.json"):
        metrics = fileio.read_json(path)
        if metrics.get("gate", {}).get("calibration"):
            runs[(metrics["backbone"], metrics["method"])].append(metrics["gate"]["calibration"])
    return {key: {"seeds": len(seeds), "pairs": sum(b["pairs"] for bins in seeds for b in bins),
                  "bins": _pool_bins([b for bins in seeds for b in bins])}
            for key, seeds in sorted(runs.items())}


def _pool_bins(bins: list[dict]) -> list[dict]:
    """Bins of one id merged: counts summed, means weighted by the counts they are means over."""

    def weighted(same: list[dict], value: str, count: str) -> float | None:
        have = [b for b in same if b[value] is not None and b[count] > 0]
        total = sum(b[count] for b in have)
        return sum(b[value] * b[count] for b in have) / total if total else None

    by_id: dict[int, list[dict]] = defaultdict(list)
    for b in bins:
        by_id[b["bin"]].append(b)
    return [{"bin": k, "pairs": sum(b["pairs"] for b in same), "known": sum(b["known"] for b in same),
             "weight_mean": weighted(same, "weight_mean", "pairs"), "alpha_mean": weighted(same, "alpha_mean", "pairs"),
             "agreement": weighted(same, "agreement", "known"),
             "true_correct_mean": weighted(same, "true_correct_mean", "pairs")}
            for k, same in sorted(by_id.items())]


def write_calibration(root: str, out_dir: str, order: Sequence[str] = ()) -> str | None:
    """gate_calibration.png in out_dir from the gated runs under `root`; returns its path, or
    None (and writes nothing) when no run reports calibration bins."""
    curves = collect_calibration(root)
    if not curves:
        return None
    path = fileio.join(out_dir, CALIBRATION_PLOT)
    rank = {m: k for k, m in enumerate(method_order({m for _, m in curves}, order))}
    ordered = dict(sorted(curves.items(), key=lambda item: (item[0][0], rank[item[0][1]])))
    fileio.write_atomic(path, plots.calibration_figure(ordered))
    return path
