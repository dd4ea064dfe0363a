"""The backbone's own accuracy per region: what the LLM must beat for its pairs to weigh.

After each epoch the backbone scores the validation split. Every (positive,
negative) pair among one user's rows has a known outcome the backbone never
trained on, and is of the kind the LLM's reliability is fitted on: a positive
the LLM's prompt did not show against an item drawn uniformly from those the
user never had. The share of them the backbone orders right is fitted per
region (gate.REGION_SIGNALS) by the gate's own logistic model and set into the
gate, so from the next epoch on a pair weighs what the LLM adds over the
backbone there (gate.pair_weight). The validation split thus steers the weights
as it steers early stopping; the test split never does.
"""
from __future__ import annotations

import numpy as np
import tensorflow as tf

from sllmr_tf.data.dataset_dir import DatasetDir
from sllmr_tf.training.evaluation import Predictions
from sllmr_tf.training.gate import ReliabilityGate, logistic_with_clustered_covariance, region_signals
from sllmr_tf.training.prediction import predict_split

LOG_KEY = "val_student_pair_accuracy"  # the Keras logs' (and TensorBoard's) name of the fitted share


def region_pair_counts(pred: Predictions, train_positives: np.ndarray, is_cold_user: np.ndarray) -> dict:
    """Each user's (positive, negative) pairs of `pred`, counted per user and long-tail count.

    Args:
        pred: one split's predictions.
        train_positives, is_cold_user: per user index (DatasetDir.user_lookup).

    Returns:
        Per (user, number of long-tail items in the pair) with at least one pair: "users",
        "signals" (rows, len(REGION_SIGNALS), gate.region_signals), "pairs" and
        "right" (pairs the backbone orders right; a tie counts one half).
    """
    users = pred.users.astype(np.int64)
    positive = pred.labels > 0.5
    longtail = pred.is_longtail_item.astype(np.int64)
    right = np.zeros((users.max(initial=0) + 1, 3))
    pairs = np.zeros_like(right)
    for neg_longtail in (0, 1):
        negatives = ~positive & (longtail == neg_longtail)
        # keys sort by user, then probability: 2 * user + p, with p in [0, 1]
        keys = np.sort(2.0 * users[negatives] + pred.probs[negatives].astype(np.float64))
        pos_users = users[positive]
        pos_keys = 2.0 * pos_users + pred.probs[positive].astype(np.float64)
        first = np.searchsorted(keys, 2.0 * pos_users, side="left")
        below = np.searchsorted(keys, pos_keys, side="left") - first
        ties = np.searchsorted(keys, pos_keys, side="right") - first - below
        of_user = np.searchsorted(keys, 2.0 * pos_users + 1.5, side="left") - first
        count = longtail[positive] + neg_longtail
        np.add.at(right, (pos_users, count), below + 0.5 * ties)
        np.add.at(pairs, (pos_users, count), of_user)
    user, count = np.nonzero(pairs)
    signals = region_signals(train_positives[user], is_cold_user[user], count).numpy()
    return {"users": user, "signals": signals, "pairs": pairs[user, count], "right": right[user, count]}


def fit_student_reference(gate: ReliabilityGate, pred: Predictions, user_lookup: dict[str, np.ndarray]) -> float | None:
    """Fit the backbone's accuracy per region on `pred` and set it into `gate`.

    Args:
        gate: the fitted gate (its standardisation is reused).
        pred: the backbone's predictions on the validation split.
        user_lookup: the dataset's per-user train positives and cold-start tags (DatasetDir.user_lookup).

    Returns:
        The share of all of the split's pairs the backbone orders right; None (and the
        gate left as it was) where the split has no user with both a positive and a negative.
    """
    counts = region_pair_counts(pred, user_lookup["train_positives"], user_lookup["is_cold_user"])
    if not len(counts["pairs"]):
        return None
    design = gate.design(tf.constant(counts["signals"], tf.float32)).numpy().astype(np.float64)
    coefficients, _ = logistic_with_clustered_covariance(design, counts["right"] / counts["pairs"], counts["users"],
                                                         counts=counts["pairs"])
    gate.student_coefficients.assign(coefficients.astype(np.float32))
    return float(counts["right"].sum() / counts["pairs"].sum())


class StudentReference(tf.keras.callbacks.Callback):
    """After each epoch, refits the gate's reference to the backbone's accuracy on the validation
    split, and logs the share of its pairs the backbone orders right (LOG_KEY).

    Runs before BackupAndRestore, so an epoch's backup holds the reference the next epoch uses.
    """

    def __init__(self, gate: ReliabilityGate, backbone: tf.keras.Model, data_dir: str, batch_size: int):
        super().__init__()
        self.gate, self.backbone = gate, backbone
        self.data_dir, self.batch_size = data_dir, batch_size
        self.user_lookup = DatasetDir(data_dir).user_lookup()  # read once: it does not change in training

    def on_epoch_end(self, epoch, logs=None):
        accuracy = fit_student_reference(self.gate, predict_split(self.backbone, self.data_dir, "valid",
                                                                  self.batch_size), self.user_lookup)
        if logs is not None and accuracy is not None:
            logs[LOG_KEY] = accuracy
