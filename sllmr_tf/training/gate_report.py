"""How the trained gate judges every LLM pair once: the "gate" block of metrics.json.

For the fitted gate (sllmr) the block carries its fit; for the paper's trained
gate (sllmr_paper) its learned w and b.

Training sees pairs as the join draws them, at random; this report scores
each pair exactly once, with its user's features as training scores it. It
reports the mean weight the pairwise loss applies and the mean alpha per
segment, how well alpha predicts the LLM's agreement with the train outcomes
(the gate's own training target, on the pairs whose outcome is known) and,
where the pairs carry the synthetic world's truth, the Spearman correlation of
the weight with the true probability that the LLM's order is right: how the
gate judges the pairs whose outcome nobody observed.
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


def score_every_pair(model: TrainingModel, table: PairsTable, chunk: int = 4096) -> dict[str, np.ndarray]:
    """The weight, alpha and the gate's input signals of each pair of `table`, in table order,
    each pair scored with its user's features as training scores it."""
    parts: dict[str, list] = {"weight": [], "alpha": [], "signals": []}
    for start in range(0, len(table), chunk):
        take = slice(start, min(start + chunk, len(table)))
        pairs = tf.nest.map_structure(tf.constant, table.rows(take))
        pairs["user"] = {n: tf.constant(v[table.columns["user_id"][take]]) for n, v in table.users.items()}
        x = {**pairs["user"], **pairs["a"], PAIRS_KEY: pairs}  # the batch rows: (u, a), for the BCE only
        terms = model.loss_terms(x, tf.zeros(take.stop - take.start), training=False)
        parts["weight"].append(terms.weight.numpy())
        parts["alpha"].append(terms.alpha.numpy())
        parts["signals"].append(terms.gate_inputs.numpy())
    return {k: np.concatenate(v) for k, v in parts.items()}


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
    for name in ("true_correct_prob", "true_informed_prob"):
        truth = cols[name]
        known_truth = len(truth) > 2 and (truth >= 0).all() and np.ptp(weight) > 0 and np.ptp(truth) > 0
        report[f"spearman_{name}"] = round(float(scipy.stats.spearmanr(weight, truth)[0]), 4) if known_truth else None
    if fit is not None:
        report["fit"] = fit.to_json()
    if model.paper_gate is not None:
        report["paper_gate"] = {k: round(v, 4) for k, v in model.paper_gate.parameters().items()}
    return report
