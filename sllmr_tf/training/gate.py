"""The reliability gate: how far to trust the LLM on one pair.

The gate predicts alpha, the probability that the LLM's order of a pair is
right, from signals the backbone cannot change: the user's region and the
LLM's own confidence and margin. It is a logistic model fitted before training
on every pair whose outcome the train data decides (a train positive against
an item the user never had), then frozen. So the gate cannot lower the
training loss by switching itself off (the loss never trains it), and it is
calibrated from the first step on.

What the LLM must beat is the backbone itself, not a coin flip: a label right
64% of the time carries signal against chance but pulls a backbone that orders
such pairs right 82% of the time towards a worse order. So the gate also holds
the student's accuracy per region (the user's train positives, the cold-start
indicator, the long-tail count), refitted after every epoch on the validation
split (student_reference.py); before the first refit it is 1/2, a coin flip.

Three rules make a useless teacher change nothing:
- The signals are symmetric in the pair: swapping which item the LLM put first
  leaves them unchanged. A teacher whose order carries no information is then
  right half of the time whatever the signals say, so a calibrated gate gives
  it alpha = 1/2 everywhere. (An asymmetric signal such as the backbone's own
  agreement with the LLM's order lets alpha rise wherever the backbone agrees,
  which rewards a coin flip for echoing the backbone.)
- The weight is the signal a pair carries, not the probability it is right:
  where the LLM and the backbone disagree, the direction the LLM pushes is right
  on average by 2 P(LLM right | they disagree) - 1, which vanishes for a coin
  flip, and for any teacher no better than the backbone (see `pair_weight`).
- The weight uses what the evidence proves: the one-sided 95% lower bound of
  alpha, from the fit's covariance clustered by user (the pairs of one list hang
  on the same few guesses, so pairs are not independent evidence). A region the
  known pairs cannot tell from a coin flip gets weight 0.
BUILD_NOTES.md (the gate) has the measurements behind these choices.
"""
from __future__ import annotations

import dataclasses
from typing import Mapping

import numpy as np
import tensorflow as tf

from sllmr_tf import segments
from sllmr_tf.errors import DataError
from sllmr_tf.training.evaluation import auc

SIGNALS = ("log1p_user_train_positives", "is_cold_user", "longtail_items_in_pair", "llm_confidence", "llm_margin")
# The signals of a pair's region (the user's and the items'), the first of SIGNALS: the backbone's
# accuracy is modelled on these (the LLM's confidence and margin mean nothing for its pairs).
REGION_SIGNALS = SIGNALS[:3]
MIN_KNOWN_PAIRS = 50
LOWER_BOUND_Z = 1.6449  # one-sided 95%
_RIDGE = 1e-4  # keeps the fit defined where a signal is constant or the outcomes are all alike


def gate_signals(pairs: Mapping) -> tf.Tensor:
    """(pairs, len(SIGNALS)) float32, symmetric in the pair's two items.

    - The user: how many train positives, and the paper's cold-start indicator.
    - The items: how many of the two are long-tail (the paper's indicator).
    - The LLM: its confidence in its order (how consistently its orderings
      agree) and its margin (how far apart it ranks the two items).
    """
    as_float = lambda v: tf.cast(v, tf.float32)  # noqa: E731
    longtail = as_float(pairs["a"]["is_longtail_item"] > 0) + as_float(pairs["b"]["is_longtail_item"] > 0)
    region = region_signals(pairs["user_train_positives"], pairs["is_cold_user"], longtail)
    return tf.concat([region, tf.stack([as_float(pairs["confidence"]), as_float(pairs["margin"])], axis=-1)], axis=-1)


def region_signals(user_train_positives, is_cold_user, longtail_items_in_pair) -> tf.Tensor:
    """(pairs, len(REGION_SIGNALS)) float32: the first columns of gate_signals, from per-pair
    values (the user's train positives, cold-start tag, and how many of the two items are long-tail)."""
    as_float = lambda v: tf.cast(v, tf.float32)  # noqa: E731
    return tf.stack([tf.math.log1p(as_float(user_train_positives)), as_float(is_cold_user > 0),
                     as_float(longtail_items_in_pair)], axis=-1)


def pair_weight(alpha: tf.Tensor, student_accuracy: tf.Tensor) -> tf.Tensor:
    """The weight of a pair whose LLM order is right with probability alpha, in a region where
    the backbone orders pairs right with probability s: max(0, (alpha - s) / (alpha + s - 2 alpha s)).

    The pairwise loss moves the backbone's order only where the two disagree; there,
    with errors independent given the region, the LLM is right with probability
    P = alpha (1 - s) / (alpha (1 - s) + (1 - alpha) s), so its push points the right
    way on average by 2P - 1, the formula above. Against a coin-flip student
    (s = 1/2) it is 2 alpha - 1: weighting the hard-label loss by it gives, at
    s_a = s_b, the expected gradient of the loss on the soft target alpha. A coin-flip
    teacher (alpha = 1/2) gets 0 against any student better than chance, and any
    teacher no better than the backbone gets 0, not a negative weight: the gate is
    fitted on easier pairs than it acts on, so a region where the LLM looks worse is
    ignored, not inverted. The gate passes the lower bound of alpha, so only proven
    reliability earns weight.

    Args:
        alpha: per pair, P(the LLM's order is right) (its 95% lower bound).
        student_accuracy: per pair, P(the backbone orders a pair of the region right).

    Returns:
        The weight per pair, in [0, 1].
    """
    # alpha + s - 2 alpha s, written so that s = 1/2 gives exactly 1/2 (and 2 alpha - 1 exactly)
    disagreement = student_accuracy + alpha * (1.0 - 2.0 * student_accuracy)
    return tf.maximum(0.0, tf.math.divide_no_nan(alpha - student_accuracy, disagreement))


@tf.keras.utils.register_keras_serializable(package="sllmr")
class ReliabilityGate(tf.keras.layers.Layer):
    """Signals (pairs, k) -> (logit of alpha, logit of its 95% lower bound, logit of the backbone's
    accuracy in the pair's region), each (pairs,).

    Two logistic models, neither trained by the loss: the LLM's, fitted before
    training, and the backbone's, over the region signals, refitted after each epoch
    (zero coefficients: accuracy 1/2). Their standardisation, coefficients and the
    covariance of the LLM's are non-trainable weights, saved with the run's checkpoints,
    so a resumed run resumes with the reference it had.
    """

    def __init__(self, num_signals: int = len(SIGNALS), **kwargs):
        super().__init__(trainable=False, **kwargs)
        self.num_signals = int(num_signals)

    def build(self, input_shape):
        k = self.num_signals

        def constant(name, shape):
            return self.add_weight(name=name, shape=shape, initializer="zeros", trainable=False)

        self.center, self.scale = constant("center", (k,)), constant("scale", (k,))
        self.coefficients, self.covariance = constant("coefficients", (k + 1,)), constant("covariance", (k + 1, k + 1))
        self.student_coefficients = constant("student_coefficients", (len(REGION_SIGNALS) + 1,))
        super().build(input_shape)

    def call(self, signals: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        design = self.design(signals)
        logit = tf.linalg.matvec(design, self.coefficients)
        spread = tf.sqrt(tf.maximum(tf.reduce_sum(tf.matmul(design, self.covariance) * design, axis=1), 0.0))
        student_logit = tf.linalg.matvec(design[:, :len(REGION_SIGNALS) + 1], self.student_coefficients)
        return logit, logit - LOWER_BOUND_Z * spread, student_logit

    def design(self, signals: tf.Tensor) -> tf.Tensor:
        """[1, standardised signals]: the design row of each pair (or of each region, with the
        region signals only)."""
        x = (signals - self.center[:signals.shape[-1]]) / self.scale[:signals.shape[-1]]
        return tf.concat([tf.ones_like(x[:, :1]), x], axis=1)

    def get_config(self) -> dict:
        return {**super().get_config(), "num_signals": self.num_signals}


@dataclasses.dataclass(frozen=True)
class GateFit:
    """How the fit went: its evidence, its coefficients and how well alpha sorts the known pairs."""

    known_pairs: int
    users: int
    agreement_rate: float  # the LLM's agreement with the outcome, over all known pairs
    auc: float | None  # of alpha for that agreement, on the same pairs
    coefficients: dict  # per standardised signal (and the intercept), on the logit scale
    standard_errors: dict  # clustered by user

    def to_json(self) -> dict:
        def rounded(v):
            return {k: round(x, 4) for k, x in v.items()} if isinstance(v, dict) else (
                round(v, 4) if isinstance(v, float) else v)

        return {k: rounded(v) for k, v in dataclasses.asdict(self).items()}


def fit_gate(pairs: Mapping) -> tuple[ReliabilityGate, GateFit]:
    """Fit the gate on the pairs whose outcome is known; returns it (frozen) and the fit's report.

    Logistic regression of "the LLM agrees with the outcome" on the standardised
    signals, by iteratively reweighted least squares; the covariance of the
    coefficients is the sandwich estimator clustered by user.

    Args:
        pairs: columns as in pairs_table (user_id, outcome, the gate's inputs) with "a"/"b" sides.

    Returns:
        (the gate; the GateFit).

    Raises:
        DataError: fewer than MIN_KNOWN_PAIRS pairs have a known outcome.
    """
    known = np.asarray(segments.outcome_known(pairs["outcome"]))
    if known.sum() < MIN_KNOWN_PAIRS:
        raise DataError(f"only {int(known.sum())} LLM pairs have an outcome the train data decides "
                        f"(a train positive against an item the user never had); the gate needs at least "
                        f"{MIN_KNOWN_PAIRS}: score lists with train positives (--positives_per_list >= 1)")
    signals = gate_signals(tf.nest.map_structure(lambda values: np.asarray(values)[known], pairs)).numpy()
    signals = signals.astype(np.float64)
    agrees = np.asarray(segments.llm_agrees(pairs["outcome"]))[known].astype(np.float64)
    users = np.asarray(pairs["user_id"])[known]
    center, scale = signals.mean(0), signals.std(0)
    scale[scale == 0] = 1.0
    design = np.c_[np.ones(len(signals)), (signals - center) / scale]
    coefficients, covariance = logistic_with_clustered_covariance(design, agrees, users)

    gate = ReliabilityGate(len(SIGNALS), name="gate")
    gate.build((None, len(SIGNALS)))
    gate.set_weights([center.astype(np.float32), scale.astype(np.float32), coefficients.astype(np.float32),
                      covariance.astype(np.float32), np.zeros(len(REGION_SIGNALS) + 1, np.float32)])
    alpha = 1.0 / (1.0 + np.exp(-design @ coefficients))
    names = ("intercept", *SIGNALS)
    errors = np.sqrt(np.maximum(np.diag(covariance), 0.0))
    return gate, GateFit(known_pairs=int(known.sum()), users=int(np.unique(users).size),
                         agreement_rate=float(agrees.mean()),
                         auc=auc(agrees, alpha) if 0 < agrees.sum() < len(agrees) else None,
                         coefficients=dict(zip(names, map(float, coefficients))),
                         standard_errors=dict(zip(names, map(float, errors))))


def logistic_with_clustered_covariance(design: np.ndarray, y: np.ndarray, clusters: np.ndarray,
                                       counts: np.ndarray | None = None,
                                       iterations: int = 50) -> tuple[np.ndarray, np.ndarray]:
    """Logistic coefficients (IRLS, a tiny ridge) and their cluster-robust (sandwich) covariance.

    Args:
        design: (rows, k) with the intercept column.
        y: per row, the share of its pairs with the outcome (0/1 for one pair a row).
        clusters: per row, its cluster (the user).
        counts: per row, how many pairs it stands for (1 each by default).
        iterations: at most this many Newton steps.

    Returns:
        (coefficients (k,), covariance (k, k)).
    """
    counts = np.ones(len(y)) if counts is None else np.asarray(counts, np.float64)
    beta = np.zeros(design.shape[1])
    ridge = _RIDGE * counts.sum() * np.eye(design.shape[1])  # also bounds the intercept when every pair agrees
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-design @ beta))
        hessian = (design * (counts * p * (1 - p))[:, None]).T @ design + ridge
        step = np.linalg.solve(hessian, design.T @ (counts * (y - p)) - ridge @ beta)
        beta += step
        if np.abs(step).max() < 1e-8:
            break
    p = 1.0 / (1.0 + np.exp(-design @ beta))
    hessian = (design * (counts * p * (1 - p))[:, None]).T @ design + ridge
    _, group = np.unique(clusters, return_inverse=True)
    scores = np.zeros((group.max() + 1, design.shape[1]))
    np.add.at(scores, group, design * (counts * (y - p))[:, None])
    bread = np.linalg.inv(hessian)
    return beta, bread @ (scores.T @ scores) @ bread

