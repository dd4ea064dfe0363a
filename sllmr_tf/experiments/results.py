"""Results tables from many runs' metrics.json: mean, spread and paired gains over `base`.

One run's AUC interval (bootstrap over users) says how precisely that run was
measured; the spread across seeds says how much training noise moves it. A
method's gain is judged paired: per seed, its AUC minus `base`'s AUC on the same
test rows, then a t-interval over seeds. A segment flagged too small (< 200 test
events) is reported but never ranked.
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
from sllmr_tf.training.config import FULL_RANKING_SUFFIX

BASELINE = "base"
TEST = "test"
COLUMNS = ("backbone", "method", "segment", "seeds", "n", "auc_mean", "auc_std", "run_ci_halfwidth",
           "delta_vs_base", "delta_ci95_low", "delta_ci95_high", "too_small")


def result_splits(root: str) -> list[str]:
    """The test blocks the runs under `root` hold: "test", and "test_full_ranking" when every
    run has one (a table mixing runs with and without it would not be paired)."""
    runs = [fileio.read_json(path) for path in fileio.find(root, "metrics.json")]
    full = TEST + FULL_RANKING_SUFFIX
    return [TEST, full] if runs and all(full in metrics for metrics in runs) else [TEST]


def collect(root: str, split: str = TEST) -> list[dict]:
    """One row per (run, segment) from every metrics.json under `root`."""
    rows = []
    for path in fileio.find(root, "metrics.json"):
        metrics = fileio.read_json(path)
        for segment in segments.EVAL_SEGMENTS:
            block = metrics[split][segment]
            if block["auc"] is None:
                continue
            low, high = block["auc_ci95"] or (math.nan, math.nan)
            rows.append({"backbone": metrics["backbone"], "method": metrics["method"], "seed": metrics["seed"],
                         "segment": segment, "auc": block["auc"], "ci_halfwidth": (high - low) / 2,
                         "n": block["n"], "too_small": bool(block["too_small"])})
    return rows


def summarize(rows: list[dict]) -> list[dict]:
    """One line per (backbone, method, segment): mean and spread over seeds, paired delta vs base."""
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for row in rows:
        groups[(row["backbone"], row["method"], row["segment"])].append(row)
    out = []
    for (backbone, method, segment), runs in sorted(groups.items()):
        aucs = np.array([r["auc"] for r in runs])
        line = {"backbone": backbone, "method": method, "segment": segment, "seeds": len(runs),
                "n": runs[0]["n"], "auc_mean": aucs.mean(),
                "auc_std": aucs.std(ddof=1) if len(runs) > 1 else math.nan,
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
    rank = {m: k for k, m in enumerate(order)}
    methods = sorted({m for _, m in cells}, key=lambda m: (m != BASELINE, rank.get(m, len(rank)), m))
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
    _plot(summary, paths[2])
    return paths


def _plot(summary: list[dict], path: str) -> None:
    """AUC per method and segment, one panel per backbone, error bars = sd over seeds."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    backbones = sorted({s["backbone"] for s in summary})
    methods = sorted({s["method"] for s in summary}, key=lambda m: (m != BASELINE, m))
    fig, axes = plt.subplots(1, len(backbones), figsize=(5 * len(backbones), 4), squeeze=False)
    width = 0.8 / len(methods)
    for ax, backbone in zip(axes[0], backbones):
        for k, method in enumerate(methods):
            cells = {s["segment"]: s for s in summary if s["backbone"] == backbone and s["method"] == method}
            xs = [i + k * width for i, seg in enumerate(segments.EVAL_SEGMENTS) if seg in cells]
            ys = [cells[seg]["auc_mean"] for seg in segments.EVAL_SEGMENTS if seg in cells]
            errs = [0 if math.isnan(cells[seg]["auc_std"]) else cells[seg]["auc_std"]
                    for seg in segments.EVAL_SEGMENTS if seg in cells]
            ax.bar(xs, ys, width, yerr=errs, label=method, capsize=2)
        ax.set_xticks([i + 0.4 - width / 2 for i in range(len(segments.EVAL_SEGMENTS))])
        ax.set_xticklabels([s.replace("_", "\n") for s in segments.EVAL_SEGMENTS], fontsize=8)
        lows = [s["auc_mean"] for s in summary if s["backbone"] == backbone]
        ax.set_ylim(max(0.0, min(lows) - 0.05), min(1.0, max(lows) + 0.03))
        ax.set_title(backbone)
        ax.set_ylabel("test AUC")
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    image = io.BytesIO()
    fig.savefig(image, dpi=100, format="png")
    plt.close(fig)
    fileio.write_atomic(path, image.getvalue())
