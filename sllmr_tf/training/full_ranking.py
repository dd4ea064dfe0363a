"""Full-ranking evaluation: every held-out positive against every item its user has not seen.

The paper's protocol ("each test interaction is ranked against all items the
user has not interacted with in train or validation"), beside the sampled
protocol of evaluation.py, which stays the default because it costs one
forward pass per split row instead of one per (user, item).

What is ranked, for split s (test; valid works the same with train as the only earlier split):
    positives   the items of the user's positive rows in s
    candidates  every item 1..num_items except the items of any of the user's rows in the
                splits before s (train and valid for test) and except the positives. Those
                rows are the user's interactions, positive or negative, and the negatives
                prepare sampled beside them: the records do not tell an observed negative
                from a sampled one, and the model was fit on every one of those pairs. On
                implicit-feedback data (the paper's Amazon 5-core) that excludes the
                interactions plus train_negatives sampled items per train positive, a few
                items of the catalogue. A negative row of s itself (a low rating, a
                sampled negative) is a candidate like any unseen item.
Scores are the backbone's logits for the user's features at the end of train
(pairs_table.user_features, the history every valid and test row has) and each
item's features (pairs_table.item_side): the order of its probabilities,
without the ties a float32 sigmoid makes of saturated scores.

What each number means (every `auc` is a mean of exact per-positive AUCs):
    positive AUC      of one positive (u, i): the share of u's candidates j with
                      score(u, j) < score(u, i), ties one half: its exact rank among them
    overall           mean positive AUC over every positive of the split: each held-out
                      interaction counts once, as the paper ranks each one; under
                      leave-one-out (one test positive per user) this equals gAUC
    cold_start_users  over the positives of cold-start users (the prepare tag)
    longtail_items    over the positives whose item is long-tail, each against all its
                      user's candidates: does the long-tail item rise in the user's full
                      list (not: does it beat other long-tail items)
    longtail_events   over the 20% of positives with the least popular items
    heavy_users       over the positives of heavy users
    gauc              mean over users of the user's AUC (the mean of the user's positive
                      AUCs): each user counts once
Segment rules come from segments.py. Intervals: 95% percentile bootstrap over
users, each positive weighted by its user's draw count (users are the
independent units, as in the sampled block). n and positives are the
segment's positives (too_small counts them), mean_candidates the mean
candidate count per positive. logloss is None: with every unseen item a
negative the base rate is positives / candidates (about 1e-3 or less), a
calibration the model was never trained for, so a log loss would compare with
nothing. A positive whose user has no candidate (interacted with every item) is
counted in positives_without_candidates and left out.

Memory: the users having positives stream in chunks of max(1, chunk_pairs //
num_items) users, and each chunk is one forward pass over all items, so at
most max(chunk_pairs, num_items) (user, item) pairs exist at once: their model
features ((4 + 2 * HISTORY_LENGTH) int64, about 350 bytes a pair), the
backbone's activations, a float32 logit, a candidate flag and a sorted copy of
the logits. Besides, tables linear in users (histories) and in the earlier
splits' rows (their (user, item) keys); never the users x items matrix.
"""
from __future__ import annotations

import dataclasses
from typing import Callable

import numpy as np
import tensorflow as tf

from sllmr_tf import features, fileio, segments
from sllmr_tf.data.dataset_dir import DatasetDir
from sllmr_tf.data.pipeline import make_dataset
from sllmr_tf.errors import ArtifactError, ConfigError
from sllmr_tf.training.config import RANKING_CHUNK_PAIRS
from sllmr_tf.training.evaluation import interval95, user_resample_weights
from sllmr_tf.training.pairs_table import item_side, user_features

# The splits whose rows a split's positives are not ranked against.
EARLIER_SPLITS = {"valid": ("train",), "test": ("train", "valid")}
_ROW_FEATURES = tuple(f for f in features.FEATURES if f.name in ("user_id", "item_id", "label"))
_MODEL_FEATURES = tuple(f.name for f in features.model_features())
_READ_BATCH = 65_536


@dataclasses.dataclass
class RankedPositives:
    """One entry per ranked positive, sorted by user."""

    users: np.ndarray  # user index
    items: np.ndarray  # item index
    auc: np.ndarray  # the positive's exact AUC against its user's candidates
    candidates: np.ndarray  # how many candidates it was ranked against
    without_candidates: int = 0  # positives left out: their user has no candidate

    def subset(self, mask: np.ndarray) -> "RankedPositives":
        return RankedPositives(self.users[mask], self.items[mask], self.auc[mask], self.candidates[mask])


def evaluate_full_ranking(backbone: tf.keras.Model, data_dir: str, split: str = "test", num_bootstrap: int = 200,
                          seed: int = 0, chunk_pairs: int = RANKING_CHUNK_PAIRS) -> dict:
    """metrics.json's `<split>_full_ranking` block (the module docstring says what it holds).

    Args:
        backbone: the trained backbone (artifacts.load_backbone).
        data_dir: the prepared dataset it was trained on.
        split: "test" (ranked against items unseen in train and valid) or "valid" (unseen in train).
        num_bootstrap: bootstrap resamples of the intervals.
        seed: the bootstrap's seed.
        chunk_pairs: (user, item) pairs per forward pass; bounds memory, not the result.

    Raises:
        ConfigError: split is train, or chunk_pairs < 1.
        ArtifactError: the split has no positive.
    """
    data = DatasetDir(data_dir)
    ranked = rank_positives(backbone, data, split, chunk_pairs)
    block = full_ranking_report(ranked, data, num_bootstrap, seed)
    block["data_dir"] = fileio.absolute(data_dir)
    return block


def rank_positives(backbone: tf.keras.Model, data: DatasetDir, split: str,
                   chunk_pairs: int = RANKING_CHUNK_PAIRS) -> RankedPositives:
    """The exact AUC of every positive of `split` against its user's candidates, streaming
    the users in chunks (see the module docstring for the memory bound)."""
    if split not in EARLIER_SPLITS:
        raise ConfigError(f"full ranking evaluates {' or '.join(EARLIER_SPLITS)}, not {split!r}: "
                          "its positives are ranked against the items unseen in the earlier splits")
    if chunk_pairs < 1:
        raise ConfigError(f"ranking_chunk_pairs must be >= 1, got {chunk_pairs}")
    num_items = len(data.items())
    width = num_items + 1  # key = user * width + item
    users, items, labels = _rows(data.path, split)
    positive = labels > 0.5
    if not positive.any():
        raise ArtifactError(f"{data.path}: the {split} split has no positive to rank")
    positive_keys = np.unique(users[positive] * width + items[positive])
    seen_keys = np.unique(np.concatenate([_keys(data.path, s, width) for s in EARLIER_SPLITS[split]]))
    score = _scorer(backbone, data)
    ranked_users = np.unique(positive_keys // width)
    per_chunk = max(1, chunk_pairs // num_items)
    parts = []
    for start in range(0, len(ranked_users), per_chunk):
        chunk = ranked_users[start:start + per_chunk]
        held_out = _chunk_mask(positive_keys, chunk, width)
        candidates = ~held_out & ~_chunk_mask(seen_keys, chunk, width)
        rows, cols = np.nonzero(held_out)
        auc, count = positive_aucs(score(tf.constant(chunk)).numpy(), candidates, rows, cols)
        parts.append((chunk[rows], cols + 1, auc, count))
    users, items, auc, count = (np.concatenate(column) for column in zip(*parts))
    ranked = count > 0
    return RankedPositives(users[ranked], items[ranked], auc[ranked], count[ranked],
                           without_candidates=int((~ranked).sum()))


def positive_aucs(logits: np.ndarray, candidates: np.ndarray, rows: np.ndarray,
                  cols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Exact AUC of each positive (rows[k], cols[k]) against the candidates of its row.

    Args:
        logits: (users, items) scores.
        candidates: (users, items) bool, the items each row's positives are ranked against.
        rows, cols: the positives' cells.

    Returns:
        (AUC per positive: candidates scored below it plus half those tied, over the
        candidates; NaN for a row without candidates, candidate count per positive).
    """
    ranked = np.sort(np.where(candidates, logits, np.inf), axis=1)  # non-candidates sort last
    count = candidates.sum(axis=1)[rows]
    score = logits[rows, cols]
    below = np.array([np.searchsorted(ranked[r], s, "left") for r, s in zip(rows, score)], np.int64)
    at_most = np.array([np.searchsorted(ranked[r], s, "right") for r, s in zip(rows, score)], np.int64)
    with np.errstate(invalid="ignore", divide="ignore"):
        auc = (below + 0.5 * (at_most - below)) / count
    return auc, count


def full_ranking_report(ranked: RankedPositives, data: DatasetDir, num_bootstrap: int, seed: int) -> dict:
    """The block's segments, gAUC and how they were measured (module docstring)."""
    user_signals, item_signals = data.user_lookup(), data.item_lookup()
    masks = {
        "overall": np.ones(len(ranked.users), bool),
        "cold_start_users": user_signals["is_cold_user"][ranked.users] > 0,
        "longtail_items": item_signals["is_longtail_item"][ranked.items] > 0,
        "longtail_events": segments.longtail_events(item_signals["item_pop"][ranked.items], ranked.items),
        "heavy_users": segments.heavy_users(user_signals["train_positives"])[ranked.users],
    }
    report = {name: _segment(ranked.subset(masks[name]), num_bootstrap, seed) for name in segments.EVAL_SEGMENTS}
    report["gauc"] = _gauc(ranked, num_bootstrap, seed)
    report["min_events"] = segments.MIN_EVENTS
    report["interval"] = f"95% percentile bootstrap over users, {num_bootstrap} resamples"
    report["protocol"] = "full_ranking"
    report["positives_without_candidates"] = ranked.without_candidates
    report["scored_pairs"] = int(np.unique(ranked.users).size) * len(item_signals["item_pop"][1:])
    return report


def user_bootstrap_means(values: np.ndarray, users: np.ndarray, num_bootstrap: int, seed: int) -> np.ndarray:
    """Means of `values` over `num_bootstrap` resamples of the users, each value weighted by
    its user's draw count."""
    return np.asarray([(w @ values) / w.sum() for w in user_resample_weights(users, num_bootstrap, seed)])


def _segment(ranked: RankedPositives, num_bootstrap: int, seed: int) -> dict:
    n = len(ranked.users)
    out = {"n": n, "n_users": int(np.unique(ranked.users).size), "positives": n,
           "too_small": n < segments.MIN_EVENTS, "auc": None, "auc_ci95": None, "logloss": None,
           "mean_candidates": float(ranked.candidates.mean()) if n else None}
    if n:
        out["auc"] = float(ranked.auc.mean())
        out["auc_ci95"] = interval95(user_bootstrap_means(ranked.auc, ranked.users, num_bootstrap, seed))
    return out


def _gauc(ranked: RankedPositives, num_bootstrap: int, seed: int) -> dict:
    users, user_row = np.unique(ranked.users, return_inverse=True)
    per_user = np.bincount(user_row, weights=ranked.auc) / np.bincount(user_row)
    return {"value": float(per_user.mean()),
            "ci95": interval95(user_bootstrap_means(per_user, users, num_bootstrap, seed)),
            "n_users": int(users.size), "too_small": int(users.size) < segments.MIN_EVENTS}


def _rows(data_dir: str, split: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(user, item, label) of every row of a split."""
    parts = [(b["user_id"].numpy(), b["item_id"].numpy(), b["label"].numpy())
             for b in make_dataset(data_dir, split, _READ_BATCH, feature_set=_ROW_FEATURES)]
    if not parts:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float32)
    users, items, labels = (np.concatenate(column) for column in zip(*parts))
    return users, items, labels


def _keys(data_dir: str, split: str, width: int) -> np.ndarray:
    users, items, _ = _rows(data_dir, split)
    return users * width + items


def _chunk_mask(keys: np.ndarray, chunk: np.ndarray, width: int) -> np.ndarray:
    """(len(chunk), width - 1) bool: which items each user of the sorted `chunk` has a key for
    (`keys` sorted, key = user * width + item)."""
    lo, hi = np.searchsorted(keys, [chunk[0] * width, (chunk[-1] + 1) * width])
    user, item = np.divmod(keys[lo:hi], width)
    row = np.minimum(np.searchsorted(chunk, user), len(chunk) - 1)
    inside = chunk[row] == user  # users between the chunk's first and last that it skips
    mask = np.zeros((len(chunk), width), bool)
    mask[row[inside], item[inside]] = True
    return mask[:, 1:]


def _scorer(backbone: tf.keras.Model, data: DatasetDir) -> Callable[[tf.Tensor], tf.Tensor]:
    """users (C,) -> the backbone's (C, num_items) logits of every item for each user."""
    user_side = {name: tf.constant(values) for name, values in user_features(data).items()}
    item_ids = np.arange(1, len(data.items()) + 1, dtype=np.int64)
    item_table = {name: tf.constant(values) for name, values in item_side(item_ids, data.item_lookup()).items()
                  if name in _MODEL_FEATURES}
    num_items = len(item_ids)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.int64)])
    def logits(users: tf.Tensor) -> tf.Tensor:
        pair_user = tf.repeat(users, num_items)
        pair_item = tf.tile(tf.range(num_items), tf.shape(users))
        x = {**{name: tf.gather(table, pair_user) for name, table in user_side.items()},
             **{name: tf.gather(table, pair_item) for name, table in item_table.items()}}
        return tf.reshape(backbone(x, training=False)[:, 0], (-1, num_items))

    return logits
