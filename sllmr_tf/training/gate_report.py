"""How the trained gate judges every LLM pair once: the "gate" block of metrics.json.

Training sees pairs as the join samples them (a user's pairs as often as the
user has train rows); this report scores each pair once, with the user-side
features of one train row of its user, so its figures weigh users by their
pairs, not by their activity. It reports the mean weight the pairwise loss
applies and the mean alpha per segment, how well alpha predicts the LLM's
agreement with the train outcomes (the gate's own training target, on the
pairs whose outcome is known) and, where the pairs carry the synthetic world's
truth, the Spearman correlation of the weight with the true probability that
the LLM's order is right: how the gate judges the pairs whose outcome nobody
observed.
"""
from __future__ import annotations

import numpy as np
import scipy.stats

import tensorflow as tf

from sllmr_tf import features, segments
from sllmr_tf.training.evaluation import auc
from sllmr_tf.training.inputs import interaction_batches
from sllmr_tf.training.join import PAIRS_KEY
from sllmr_tf.training.model import TrainingModel
from sllmr_tf.training.pairs_table import PairsTable

_USER_SIDE = tuple(f.name for f in features.model_features() if not f.item_side)


def score_every_pair(model: TrainingModel, data_dir: str, table: PairsTable,
                     chunk: int = 4096) -> dict[str, np.ndarray]:
    """The weight, alpha and the gate's input signals of each pair of `table`, in table order."""
    rows = _one_train_row_per_user(data_dir, num_users=len(table.offsets) - 1)
    parts: dict[str, list] = {"weight": [], "alpha": [], "signals": []}
    for start in range(0, len(table), chunk):
        take = slice(start, min(start + chunk, len(table)))
        users = table.columns["user_id"][take]
        x = {name: tf.constant(rows[name][users]) for name in _USER_SIDE}
        x.update({name: tf.constant(values[take]) for name, values in table.sides["a"].items()})
        pairs = {name: tf.constant(values[take]) for name, values in table.columns.items()}
        pairs.update({side: {n: tf.constant(v[take]) for n, v in cols.items()} for side, cols in table.sides.items()})
        pairs["row"] = tf.range(len(users), dtype=tf.int64)
        x[PAIRS_KEY] = pairs
        terms = model.loss_terms(x, tf.zeros(len(users)), training=False)
        parts["weight"].append(terms.weight.numpy())
        parts["alpha"].append(terms.alpha.numpy())
        parts["signals"].append(terms.gate_inputs.numpy())
    return {k: np.concatenate(v) for k, v in parts.items()}


def gate_report(model: TrainingModel, data_dir: str, table: PairsTable) -> dict:
    """metrics.json's "gate" block for a model with a gate and the pairs it trained on."""
    scored = score_every_pair(model, data_dir, table)
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
        "spearman_true_correct_prob": None,
    }
    truth = cols["true_correct_prob"]
    if len(truth) > 2 and (truth >= 0).all() and np.ptp(weight) > 0:
        report["spearman_true_correct_prob"] = round(float(scipy.stats.spearmanr(weight, truth)[0]), 4)
    return report


def _one_train_row_per_user(data_dir: str, num_users: int) -> dict[str, np.ndarray]:
    """User-side features indexed by user id (the user's first train row; zeros for absent users).

    Streams the split, keeping one row per user, so memory is per user, not per row."""
    out: dict[str, np.ndarray] = {}
    seen = np.zeros(num_users, bool)
    for x, _ in interaction_batches(data_dir, "train", 65536):
        users = x["user_id"].numpy()
        _, first = np.unique(users, return_index=True)
        new = first[~seen[users[first]]]
        for name in _USER_SIDE:
            values = x[name].numpy()
            if name not in out:
                out[name] = np.zeros((num_users,) + values.shape[1:], values.dtype)
            out[name][users[new]] = values[new]
        seen[users[new]] = True
    return out
