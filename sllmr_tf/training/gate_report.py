"""How the trained gate judges every LLM pair once: the "gate" block of metrics.json.

For the fitted gate (sllmr) the block carries its fit; for the paper's trained
gate (sllmr_paper) its learned w and b.

Training sees pairs as the join draws them, at random; this report scores
each pair exactly once, with its user's features as training scores it. It
reports the mean weight the pairwise loss applies and the mean alpha per
segment, the backbone's accuracy the LLM had to beat there (the fitted gate's
reference as the kept epoch's checkpoint holds it: the one that epoch trained
with), how well alpha predicts the LLM's agreement with the train outcomes
(the gate's own training target, on the pairs whose outcome is known) and,
where the pairs carry the synthetic world's truth, the Spearman correlation of
the weight with the true probability that the LLM's order is right: how the
gate judges the pairs whose outcome nobody observed. Its "calibration" list bins
the pairs by weight, to show whether the weight the loss applies matches the
signal the pairs carry (`calibration`).
"""
from __future__ import annotations

import numpy as np
import scipy.stats
import tensorflow as tf

from sllmr_tf import segments
from sllmr_tf.training.evaluation import auc
from sllmr_tf.training.gate import GateFit
from sllmr_tf.training.join import PAIRS_KEY
from sllmr_tf.training.model import TrainingModel
from sllmr_tf.training.pairs_table import PairsTable

CALIBRATION_BINS = 10  # quantile bins of the positive weights, beside the bin of weight 0


def score_every_pair(model: TrainingModel, table: PairsTable, chunk: int = 4096) -> dict[str, np.ndarray]:
    """The weight, alpha and the gate's input signals of each pair of `table`, in table order,
    each pair scored with its user's features as training scores it."""
    parts: dict[str, list] = {"weight": [], "alpha": [], "signals": [], "reference": []}
    for start in range(0, len(table), chunk):
        take = slice(start, min(start + chunk, len(table)))
        pairs = tf.nest.map_structure(tf.constant, table.rows(take))
        pairs["user"] = tf.nest.map_structure(tf.constant, table.user_rows(take))
        x = {**pairs["user"], **pairs["a"], PAIRS_KEY: pairs}  # the batch rows: (u, a), for the BCE only
        terms = model.loss_terms(x, tf.zeros(take.stop - take.start), training=False)
        parts["weight"].append(terms.weight.numpy())
        parts["alpha"].append(terms.alpha.numpy())
        parts["signals"].append(terms.gate_inputs.numpy())
        if terms.reference is not None:
            parts["reference"].append(terms.reference.numpy())
    return {k: np.concatenate(v) for k, v in parts.items() if v}


def gate_report(model: TrainingModel, table: PairsTable, fit: GateFit | None = None) -> dict:
    """metrics.json's "gate" block for a model with a gate and the pairs it trained on (`fit`: the
    fitted gate's GateFit)."""
    scored = score_every_pair(model, table)
    weight, alpha = scored["weight"], scored["alpha"]
    cols = table.columns
    masks = segments.pair_segments(cols["is_cold_user"], table.sides["a"]["is_longtail_item"],
                                   table.sides["b"]["is_longtail_item"])
    known = segments.outcome_known(cols["outcome"])
    agrees = segments.llm_agrees(cols["outcome"]).astype(np.float64)
    agreement_auc = auc(agrees[known], alpha[known]) if known.any() else float("nan")

    def means(values: np.ndarray) -> dict:
        return {name: round(float(values[mask].mean()), 4) if mask.any() else None for name, mask in masks.items()}

    report = {
        "pairs": len(alpha),
        "weight_mean": means(weight),
        "alpha_mean": means(alpha),
        "agreement_auc": {"n": int(known.sum()),
                          "auc": None if np.isnan(agreement_auc) else round(agreement_auc, 4)},
    }
    if "reference" in scored:  # the backbone's accuracy the LLM had to beat, as the kept epoch trained with it
        report["reference_mean"] = means(scored["reference"])
    report["calibration"] = calibration(weight, alpha, cols["outcome"], cols["true_correct_prob"])
    for name in ("true_correct_prob", "true_informed_prob"):
        truth = cols[name]
        known_truth = len(truth) > 2 and (truth >= 0).all() and np.ptp(weight) > 0 and np.ptp(truth) > 0
        report[f"spearman_{name}"] = round(float(scipy.stats.spearmanr(weight, truth)[0]), 4) if known_truth else None
    if fit is not None:
        report["fit"] = fit.to_json()
    if model.paper_gate is not None:
        report["paper_gate"] = {k: round(v, 4) for k, v in model.paper_gate.parameters().items()}
    return report


def calibration(weight: np.ndarray, alpha: np.ndarray, outcome: np.ndarray, true_correct_prob: np.ndarray,
                bins: int = CALIBRATION_BINS) -> list[dict]:
    """The pairs binned by the weight the pairwise loss applies, to set each bin's weight against
    the signal its pairs carry.

    Weight 0 has its own bin: max(0, 2 lower95(alpha) - 1) is exactly 0 for every pair the
    evidence cannot tell from a coin flip, often most of them. The positive weights fall into
    `bins` quantile bins (edges that tie are merged, and pairs of one weight stay in one bin):
    they crowd into a narrow range, where equal-width bins would leave most bins empty and one
    holding nearly every pair, while quantile bins give each point about as many pairs, so
    about the same precision.

    Args:
        weight, alpha: per pair, as `score_every_pair` gives them.
        outcome: per pair, the train outcome column (segments.outcome_known / llm_agrees).
        true_correct_prob: per pair, the synthetic world's truth (negative where unknown).
        bins: how many quantile bins the positive weights get at most.

    Returns:
        The non-empty bins in weight order, each with its id ("bin": 0 for weight 0, k for the
        k-th quantile bin, so runs' bins can be pooled), its edges, the pairs in it, their mean
        weight and alpha, the known-outcome pairs among them and the LLM's agreement with those
        outcomes, and the mean true correctness of the pairs that carry the truth (None where
        none do).
    """
    weight = np.asarray(weight, np.float64)
    positive = weight > 0
    edges = np.unique(np.quantile(weight[positive], np.linspace(0, 1, bins + 1))) if positive.any() else np.zeros(1)
    edges = np.repeat(edges, 2) if len(edges) == 1 else edges
    index = np.where(positive, 1 + np.clip(np.searchsorted(edges, weight, side="right") - 1, 0, len(edges) - 2), 0)
    known = segments.outcome_known(outcome)
    agrees = segments.llm_agrees(outcome)
    truth = np.asarray(true_correct_prob, np.float64) >= 0
    out = []
    for k in range(len(edges)):
        take = index == k
        if not take.any():
            continue
        known_here, truth_here = take & known, take & truth
        out.append({
            "bin": k, "weight_low": 0.0 if k == 0 else round(float(edges[k - 1]), 4),
            "weight_high": 0.0 if k == 0 else round(float(edges[k]), 4),
            "pairs": int(take.sum()), "weight_mean": round(float(weight[take].mean()), 4),
            "alpha_mean": round(float(np.mean(alpha[take], dtype=np.float64)), 4),
            "known": int(known_here.sum()),
            "agreement": round(float(agrees[known_here].mean()), 4) if known_here.any() else None,
            "true_correct_mean": (round(float(np.mean(true_correct_prob[truth_here], dtype=np.float64)), 4)
                                  if truth_here.any() else None),
        })
    return out
