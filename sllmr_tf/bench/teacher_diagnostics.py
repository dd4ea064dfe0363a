"""Can what the data shows tell a teacher that helps from one that hurts? Three probes of a
finished run's backbone against an LLM pairs directory, per region.

    python -m sllmr_tf.bench.teacher_diagnostics --model_dir=RUN --data_dir=DIR --pairs_dir=DIR \
        [--scorer=simulated|embedding [--scorer_option=key=value ...]] [--folds=8]

Regions: every pair, cold-start users, long-tail pairs, head (segments.pair_segments) and heavy
users (segments.heavy_users). Columns:

- pairs, known alpha: the pairs, and the LLM's agreement with the train outcomes on those the
  train data decides (what the gate's alpha is fitted on).
- truth (pairs carrying the synthetic world's truth): over every pair, P(the LLM's order is
  right), and the same over the pairs the backbone orders the other way, the only pairs whose
  order the pairwise loss changes.
- held-out (with --scorer): the scorer is asked again on each user's validation rows, shown in
  a random order. On their (positive, negative) pairs: the backbone's accuracy s, the LLM's
  alpha, and P(LLM right | the two disagree), with the number of such pairs.
- alignment: the cosine between a step along the LLM's orders (down the loss -(s_a - s_b), the
  part of the pair loss that flips with the LLM's order) and a step down the validation BCE;
  then the same for the whole softplus pair loss. Mean over `--folds` folds of users, the
  pairs of one fold against the validation rows of the others, with its t.

A second table splits the pairs by user kind and by how many of the two items are long-tail:
the pairs there, the known-outcome pairs with the LLM's agreement, and the validation split's
(positive, negative) pairs with the backbone's accuracy: where evidence exists at all.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import tensorflow as tf
from absl import app, flags

from sllmr_tf import segments
from sllmr_tf.data.dataset_dir import DatasetDir
from sllmr_tf.scoring import prompts
from sllmr_tf.scoring.backends import make_backend, scorer_options
from sllmr_tf.scoring.base import Backend, RankRequest
from sllmr_tf.scoring.config import CandidateConfig
from sllmr_tf.training import artifacts
from sllmr_tf.training.evaluation import Predictions
from sllmr_tf.training.inputs import interaction_batches
from sllmr_tf.training.model import pair_side_inputs
from sllmr_tf.training.pairs_table import PairsTable, load_pairs_table
from sllmr_tf.training.prediction import predict_split
from sllmr_tf.training.student_reference import region_pair_counts

FLAGS = flags.FLAGS
flags.DEFINE_string("model_dir", None, "A finished sllmr-train run (its backbone is probed).", required=True)
flags.DEFINE_string("data_dir", None, "The prepared dataset it was trained on.", required=True)
flags.DEFINE_string("pairs_dir", None, "The LLM pairs to judge.", required=True)
flags.DEFINE_string("scorer", None, "The scorer of those pairs, asked again on validation rows (a local one: "
                    "simulated or embedding); none: no held-out columns.")
flags.DEFINE_multi_string("scorer_option", [], "key=value options of that scorer, as for sllmr-score.")
flags.DEFINE_integer("folds", 8, "User folds of the alignment.")
flags.DEFINE_integer("max_pairs", 20_000, "Pairs per region and fold in the alignment.")

def pair_logit_gaps(backbone: tf.keras.Model, table: PairsTable, take: np.ndarray) -> tf.Tensor:
    """s_a - s_b of the pairs at `take`, each scored with its user's features as training scores
    it (differentiable)."""
    pairs = tf.nest.map_structure(tf.constant, {**table.rows(take), "user": table.user_rows(take)})
    return (backbone(pair_side_inputs(pairs, "a"), training=False)[:, 0]
            - backbone(pair_side_inputs(pairs, "b"), training=False)[:, 0])


def regions(users: np.ndarray, a_is_longtail: np.ndarray, b_is_longtail: np.ndarray,
            user_lookup: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Masks over pairs (their user indices and whether each item is long-tail): the pair
    segments and the heavy users."""
    masks = segments.pair_segments(user_lookup["is_cold_user"][users], a_is_longtail, b_is_longtail)
    masks["heavy_users"] = segments.heavy_users(user_lookup["train_positives"])[users]
    return masks


def held_out_pairs(pred: Predictions, data: DatasetDir, scorer: Backend, seed: int = 0) -> dict[str, np.ndarray]:
    """The scorer's order and the backbone's (`pred`, on the validation split) on every (positive,
    negative) pair of each user's validation rows, pairs either one ties left out. Returns per pair: user, llm_right,
    student_right, and whether the positive and the negative are long-tail."""
    users = {int(u["index"]): u for u in data.users()}
    item_rows = [{}] + data.items()
    rng = np.random.default_rng(seed)
    history_length = CandidateConfig().history_length  # as sllmr-score shows it by default
    out: dict[str, list] = {"user": [], "llm_right": [], "student_right": [], "positive_longtail": [],
                            "negative_longtail": []}
    order = np.argsort(pred.users, kind="stable")
    starts = np.flatnonzero(np.r_[True, np.diff(pred.users[order]) != 0])
    for rows in np.split(order, starts[1:]):
        labels = pred.labels[rows] > 0.5
        if labels.all() or not labels.any():
            continue
        shown_order = rng.permutation(len(rows))  # the shown order must not tell the positive
        rows, labels = rows[shown_order], labels[shown_order]
        user = int(pred.users[rows[0]])
        history = tuple(users[user]["train_items"][::-1][:history_length])
        shown = tuple(int(i) for i in pred.items[rows])
        prompt = prompts.render([item_rows[i] for i in history], [item_rows[i] for i in shown],
                                getattr(scorer, "prompt_style", prompts.STYLE_RANK), 0)
        llm = scorer.rank(RankRequest(user, history, shown, prompt)).scores
        probs = pred.probs[rows]
        for p in np.flatnonzero(labels):
            for n in np.flatnonzero(~labels):
                if llm[p] == llm[n] or probs[p] == probs[n]:
                    continue
                out["user"].append(user)
                out["llm_right"].append(llm[p] > llm[n])
                out["student_right"].append(probs[p] > probs[n])
                out["positive_longtail"].append(pred.is_longtail_item[rows[p]])
                out["negative_longtail"].append(pred.is_longtail_item[rows[n]])
    return {k: np.asarray(v) for k, v in out.items()}


def _flat(gradients) -> np.ndarray:
    return tf.concat([tf.reshape(tf.convert_to_tensor(g), [-1]) for g in gradients], 0).numpy()


def validation_gradients(backbone: tf.keras.Model, data: DatasetDir, folds: int) -> np.ndarray:
    """(folds, parameters): the gradient of the validation BCE over each fold of users' rows."""
    x, y = next(iter(interaction_batches(data.path, "valid", 1 << 30)))
    x = {name: x[name] for name in backbone.input_names}
    fold = _user_fold(x["user_id"].numpy(), folds)
    out = []
    for k in range(folds):
        keep = fold == k
        with tf.GradientTape() as tape:
            logits = backbone({n: tf.boolean_mask(v, keep) for n, v in x.items()}, training=False)[:, 0]
            loss = tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(labels=tf.boolean_mask(y, keep),
                                                                          logits=logits))
        out.append(_flat(tape.gradient(loss, backbone.trainable_variables)))
    return np.array(out)


def alignment(backbone: tf.keras.Model, table: PairsTable, mask: np.ndarray, val_gradients: np.ndarray,
              max_pairs: int, rng: np.random.Generator) -> dict[str, tuple[float, float]]:
    """(mean cosine, t over folds) of a step along the LLM's orders ("direction") and of a step
    down the softplus pair loss ("softplus") with a step down the validation BCE, the pairs of
    each fold of users (`mask`, at most `max_pairs`) against the other folds' `val_gradients`."""
    folds = len(val_gradients)
    pair_fold = _user_fold(table.columns["user_id"], folds)
    cosines: dict[str, list] = {"direction": [], "softplus": []}
    for k in range(folds):
        take = np.flatnonzero(mask & (pair_fold == k))
        if not take.size:
            continue
        take = np.sort(rng.choice(take, min(take.size, max_pairs), replace=False))
        descent = -np.mean([g for j, g in enumerate(val_gradients) if j != k], axis=0)
        for name, loss_of in (("direction", lambda d: -d), ("softplus", lambda d: tf.math.softplus(-d))):
            with tf.GradientTape() as tape:
                loss = tf.reduce_mean(loss_of(pair_logit_gaps(backbone, table, take)))
            step = -_flat(tape.gradient(loss, backbone.trainable_variables))
            cosines[name].append(step @ descent / (np.linalg.norm(step) * np.linalg.norm(descent)))
    return {name: (float(np.mean(c)), float(np.mean(c) / np.std(c, ddof=1) * np.sqrt(len(c))) if len(c) > 1
                   else float("nan")) for name, c in cosines.items()}


def evidence_by_longtail_count(pred: Predictions, data: DatasetDir, table: PairsTable) -> list[str]:
    """The second table's rows: per (user kind, long-tail items in the pair); `pred` is the
    backbone on the validation split."""
    lookup = data.user_lookup()
    counts = region_pair_counts(pred, lookup["train_positives"], lookup["is_cold_user"])
    cols, sides = table.columns, table.sides
    longtail = (sides["a"]["is_longtail_item"] > 0).astype(int) + (sides["b"]["is_longtail_item"] > 0)
    known, agrees = segments.outcome_known(cols["outcome"]), segments.llm_agrees(cols["outcome"])
    rows = []
    for cold in (False, True):
        for k in (0, 1, 2):
            here = (longtail == k) & ((cols["is_cold_user"] > 0) == cold)
            valid = (counts["signals"][:, 2] == k) & ((counts["signals"][:, 1] > 0) == cold)
            pairs = counts["pairs"][valid].sum()
            accuracy = f"{counts['right'][valid].sum() / pairs:.3f}" if pairs else "-"
            rows.append(f"| {'cold-start' if cold else 'other'} | {k} | {int(here.sum()):,} | "
                        f"{int((here & known).sum()):,} | {_rate(agrees[here & known])} | {int(pairs):,} | "
                        f"{accuracy} |")
    return rows


def _user_fold(users: np.ndarray, folds: int) -> np.ndarray:
    return (np.asarray(users, np.uint64) * np.uint64(2654435761) % np.uint64(1 << 32)) % np.uint64(folds)


def _rate(values: np.ndarray) -> str:
    return f"{values.mean():.3f}" if values.size else "-"


def main(argv: Sequence[str]) -> None:
    data = DatasetDir(FLAGS.data_dir)
    backbone = artifacts.load_backbone(FLAGS.model_dir)
    table = load_pairs_table(FLAGS.pairs_dir, data)
    lookup = data.user_lookup()
    masks = regions(table.columns["user_id"], table.sides["a"]["is_longtail_item"] > 0,
                    table.sides["b"]["is_longtail_item"] > 0, lookup)
    cols = table.columns
    known = segments.outcome_known(cols["outcome"])
    agrees = segments.llm_agrees(cols["outcome"])
    truth = cols["true_correct_prob"]
    gaps = np.concatenate([pair_logit_gaps(backbone, table, np.arange(s, min(s + 8192, len(table)))).numpy()
                           for s in range(0, len(table), 8192)])
    valid = predict_split(backbone, data.path, "valid")
    held = None
    if FLAGS.scorer:
        scorer = make_backend(FLAGS.scorer, data.path, **scorer_options(FLAGS.scorer_option))
        held = held_out_pairs(valid, data, scorer)
        held_masks = regions(held["user"], held["positive_longtail"], held["negative_longtail"], lookup)
    val_gradients = validation_gradients(backbone, data, FLAGS.folds)
    rng = np.random.default_rng(0)
    print(f"{FLAGS.model_dir} on {FLAGS.pairs_dir}: {len(table):,} pairs, {int(known.sum()):,} of known outcome")
    print("| region | pairs | known alpha | truth: P(LLM right) | truth: P(right \\| backbone disagrees) | "
          "held-out pairs | held-out s | held-out alpha | P(LLM right \\| disagree), n | "
          "alignment: direction (t) | alignment: softplus (t) |\n|---" + "|---:" * 10 + "|")
    for name, mask in masks.items():
        has_truth = mask & (truth >= 0)
        truth_cells = (_rate(truth[has_truth]), _rate(truth[has_truth & (gaps < 0)])) if has_truth.any() else ("-", "-")
        held_cells = ("-",) * 4
        if held is not None:
            h = held_masks[name]
            disagree = h & (held["llm_right"] != held["student_right"])
            held_cells = (f"{int(h.sum()):,}", _rate(held["student_right"][h]), _rate(held["llm_right"][h]),
                          f"{_rate(held['llm_right'][disagree])}, {int(disagree.sum()):,}")
        aligned = alignment(backbone, table, mask, val_gradients, FLAGS.max_pairs, rng)
        print(f"| {name} | {int(mask.sum()):,} | {_rate(agrees[mask & known])} | {' | '.join(truth_cells)} | "
              f"{' | '.join(held_cells)} | "
              + " | ".join(f"{m:+.3f} ({t:+.1f})" for m, t in (aligned["direction"], aligned["softplus"])) + " |",
              flush=True)
    print("\n| users | long-tail items in pair | pairs | known-outcome pairs | known alpha | validation pairs | "
          "backbone accuracy s |\n|---|---:|---:|---:|---:|---:|---:|")
    print("\n".join(evidence_by_longtail_count(valid, data, table)))


if __name__ == "__main__":
    app.run(main)
