"""The experiment's figures, as PNG bytes: results per segment, and the gate's calibration.

results.py decides what is measured; this module only draws it, so a reader sees
at a glance what the tables say: which method beats base where, by how much
and how surely, and whether the weight the gate gives matches the signal its
pairs carry.
"""
from __future__ import annotations

import io
import math
from typing import Sequence

from sllmr_tf import segments

DPI = 110
CALIBRATION_COLUMNS = 3  # panels per row of gate_calibration.png
TOO_SMALL = f"too small\n(< {segments.MIN_EVENTS} events)"


def _pyplot():
    """matplotlib's pyplot on the file-only backend (no display on a training machine)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _png(fig) -> bytes:
    image = io.BytesIO()
    fig.savefig(image, dpi=DPI, format="png", bbox_inches="tight")
    _pyplot().close(fig)
    return image.getvalue()


def results_figure(summary: list[dict], methods: Sequence[str], split: str, baseline: str) -> bytes:
    """A column per backbone; top row: AUC per method and segment with its 95% interval
    (summary's auc_ci95: t over seeds, or the run's bootstrap with one seed); bottom row: each
    method's paired difference from `baseline` with its 95% t-interval over seeds (a hollow
    point where one seed gives none) and the zero line. Too-small segments are shaded and
    labelled, never read as a ranking; their intervals may run off the axes (`_limits`).

    Args:
        summary: results.summarize's lines.
        methods: the methods in legend order (baseline first).
        split: the test block the summary is of ("test", "test_full_ranking"), for the title.
        baseline: the method the differences are from.

    Returns:
        The PNG's bytes.
    """
    plt = _pyplot()
    backbones = sorted({s["backbone"] for s in summary})
    colors = {m: plt.get_cmap("tab10")(k % 10) for k, m in enumerate(methods)}
    fig, axes = plt.subplots(2, len(backbones), figsize=(2.2 + 1.6 * len(segments.EVAL_SEGMENTS) * len(backbones), 7.5),
                             squeeze=False, sharex="col")
    width = 0.8 / len(methods)
    for column, backbone in enumerate(backbones):
        top, bottom = axes[0][column], axes[1][column]
        cells = {(s["method"], s["segment"]): s for s in summary if s["backbone"] == backbone}
        shown = [seg for seg in segments.EVAL_SEGMENTS if any(seg == s for _, s in cells)]
        for i, segment in enumerate(shown):
            if any(c["too_small"] for (_, s), c in cells.items() if s == segment):
                for ax in (top, bottom):
                    ax.axvspan(i - 0.45, i + 0.45, facecolor="0.92", hatch="//", edgecolor="0.75", zorder=0)
                bottom.text(i, 0.98, TOO_SMALL, transform=bottom.get_xaxis_transform(), ha="center",
                            va="top", fontsize=7, color="0.35")
        for k, method in enumerate(methods):
            here = [(i, cells[(method, seg)]) for i, seg in enumerate(shown) if (method, seg) in cells]
            if not here:
                continue
            xs = [i + (k - (len(methods) - 1) / 2) * width for i, _ in here]
            _points(top, xs, [c["auc_mean"] for _, c in here], [(c["auc_ci95_low"], c["auc_ci95_high"]) for _, c in here],
                    colors[method])
            if method != baseline:
                _points(bottom, xs, [c["delta_vs_base"] for _, c in here],
                        [(c["delta_ci95_low"], c["delta_ci95_high"]) for _, c in here], colors[method])
        bottom.axhline(0.0, color="black", linewidth=0.8)
        top.set_ylim(*_limits(list(cells.values()), "auc", 0.0, 1.0))
        gains = [c for c in cells.values() if c["method"] != baseline]
        if gains:
            bottom.set_ylim(*_limits(gains, "delta", -1.0, 1.0, include=0.0))
        seeds = sorted({c["seeds"] for c in cells.values()})
        top.set_title(f"{backbone}  ({'/'.join(map(str, seeds))} seed{'s' if seeds != [1] else ''})", fontsize=10)
        top.set_ylabel(f"{split} AUC, 95% interval")
        bottom.set_ylabel(f"AUC − {baseline} (paired), 95% interval")
        n = {seg: c["n"] for (_, seg), c in cells.items()}
        bottom.set_xticks(range(len(shown)))
        bottom.set_xticklabels([f"{seg.replace('_', ' ')}\nn = {n[seg]:,}" for seg in shown], fontsize=8)
        for ax in (top, bottom):
            ax.grid(axis="y", alpha=0.3)
            ax.set_xlim(-0.5, len(shown) - 0.5)
    one_seed = any(c["seeds"] == 1 for c in summary)
    interval = ("t-interval of the mean over seeds" + ("; one seed: the run's bootstrap over users" if one_seed else ""))
    fig.suptitle(f"{split}: AUC by segment ({interval}), and each method's gain over {baseline}"
                 + ("; hollow: one seed, no interval for the gain" if one_seed else ""), fontsize=10)
    handles = [plt.Line2D([], [], color=colors[m], marker="o", linestyle="none", label=m) for m in methods]
    fig.legend(handles=handles, loc="lower center", ncol=min(len(methods), 8), fontsize=9, frameon=False,
               bbox_to_anchor=(0.5, -0.02))
    fig.tight_layout(rect=(0, 0.04, 1, 0.96))
    return _png(fig)


def _limits(cells: list[dict], value: str, floor: float, ceiling: float, include: float | None = None
            ) -> tuple[float, float]:
    """Axis limits that show every point (`value`: "auc" or "delta") and the intervals of the
    segments that can be ranked, padded, within [floor, ceiling]: a too-small segment's wide
    interval runs off the axis rather than squeezing the others."""
    mean, low, high = ("auc_mean", "auc_ci95_low", "auc_ci95_high") if value == "auc" else (
        "delta_vs_base", "delta_ci95_low", "delta_ci95_high")
    values = [c[n] for c in cells for n in ((mean,) if c["too_small"] else (mean, low, high)) if not math.isnan(c[n])]
    values += [] if include is None else [include]
    bottom, top = min(values), max(values)
    pad = 0.08 * (top - bottom) or 0.01
    return max(floor, bottom - pad), min(ceiling, top + pad)


def _points(ax, xs: list[float], ys: list[float], intervals: list[tuple[float, float]], color) -> None:
    """Points with their interval bars; a point without an interval (nan bounds) is drawn hollow."""
    for x, y, (low, high) in zip(xs, ys, intervals):
        if math.isnan(y):
            continue
        if math.isnan(low) or math.isnan(high):
            ax.plot([x], [y], marker="o", markersize=5, markerfacecolor="white", markeredgecolor=color,
                    linestyle="none")
        else:
            ax.errorbar([x], [y], yerr=[[y - low], [high - y]], fmt="o", markersize=4, color=color, capsize=2)


def calibration_figure(curves: dict[tuple[str, str], dict]) -> bytes:
    """A panel per (backbone, gated method): per weight bin, the signal its pairs carry against
    the bin's mean weight.

    Plotted as signal 2p - 1 against weight, not p against (1 + weight) / 2: the weight is
    at most a lower bound on 2p - 1 (gate.pair_weight: that bound against a coin-flip reference,
    less where the backbone beats chance), so on this scale y = x reads "weight = signal", a
    calibrated gate's points lie on or above it, points below it are pairs the loss trusts more
    than they deserve, and the weight-0 bin shows at x = 0 what signal
    the gate switched off. p is the LLM's agreement with the train outcomes on the
    known-outcome pairs and, on a synthetic world, the pairs' mean true correctness (all
    pairs, the unobserved ones too). Marker area follows the bin's share of pairs.

    Args:
        curves: results.collect_calibration's pooled bins, in panel order.

    Returns:
        The PNG's bytes.
    """
    plt = _pyplot()
    columns = min(len(curves), CALIBRATION_COLUMNS)
    rows = math.ceil(len(curves) / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(4.4 * columns, 4.6 * rows), squeeze=False)
    for ax in axes.flat[len(curves):]:
        ax.set_visible(False)
    for ax, ((backbone, method), curve) in zip(axes.flat, curves.items()):
        bins = curve["bins"]
        sizes = [12 + 300 * b["pairs"] / curve["pairs"] for b in bins]
        for value, label, color, style in (("agreement", "observed: 2·agreement − 1 (known outcomes)", "tab:blue", "-"),
                                           ("true_correct_mean", "truth: 2·P(correct) − 1 (all pairs)", "tab:orange",
                                            "--")):
            have = [(b["weight_mean"], 2 * b[value] - 1, size) for b, size in zip(bins, sizes) if b[value] is not None]
            if have:
                x, y, s = zip(*have)
                ax.plot(x, y, style, color=color, linewidth=1, label=label)
                ax.scatter(x, y, s=s, color=color, alpha=0.7, zorder=3)
        ax.plot([0, 1], [0, 1], color="0.4", linewidth=0.8, linestyle=":", label="weight = signal")
        ax.axhline(0.0, color="0.8", linewidth=0.6)
        ax.set_xlim(-0.05, 1.05)
        ax.set_ylim(-1.05, 1.05)
        ax.set_xlabel("mean weight the pairwise loss applies (per bin)")
        ax.set_ylabel("signal of the LLM's order, 2p − 1")
        known = sum(b["known"] for b in bins)
        ax.set_title(f"{backbone} / {method}\n{curve['seeds']} seed{'s' if curve['seeds'] > 1 else ''} pooled: "
                     f"{curve['pairs']:,} pairs, {known:,} with known outcome", fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="lower right")
    fig.suptitle("Gate calibration: pairs binned by weight (weight 0 its own bin, then quantiles)", fontsize=10)
    fig.tight_layout()
    return _png(fig)
