"""The reliability gate: how far to trust the LLM on one pair.

The gate is a small MLP that predicts, from signals the backbone cannot change,
the probability alpha that the LLM's order of a pair is right. It is trained
only as that predictor (its own BCE against "the LLM's order agrees with the
observed outcome" on pairs whose outcome is known), and the pairwise loss is
weighted by stop_gradient(alpha). So the gate has no path by which it could
lower the training loss by switching itself off: its only objective is to be
a calibrated reliability estimate, and the backbone's only objective is the
loss under that fixed estimate.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import tensorflow as tf

SIGNALS = ("log1p_user_train_positives", "log1p_pop_less_popular", "log1p_pop_more_popular",
           "model_uncertainty", "model_agreement", "llm_confidence")


def gate_signals(pairs: Mapping, score_a: tf.Tensor, score_b: tf.Tensor) -> tf.Tensor:
    """(pairs, len(SIGNALS)) float32, gradient-free by construction.

    - The two popularities enter as an unordered pair (less / more popular).
      The gate learns from pairs whose outcome is known, i.e. a train item
      against a non-train item, and train items are the popular ones; given
      "pop of a" and "pop of b" in order, it learns "the LLM is right when it
      prefers the more popular item", which holds on those pairs only.
    - The backbone's view of the pair: q = sigmoid(s_a - s_b), its own
      probability that a beats b, enters as the agreement q and the
      uncertainty 4 q (1 - q) (1 where it cannot tell, 0 where it is sure).
      How right one LLM pair is varies mostly within a user/item region, with
      how far apart the two items truly are, which only the backbone's own
      scores estimate. (BUILD_NOTES.md, Training, has the measurements.)
    """
    q = tf.sigmoid(score_a - score_b)
    log1p = lambda v: tf.math.log1p(tf.cast(v, tf.float32))  # noqa: E731
    pop_a, pop_b = log1p(pairs["a"]["item_pop"]), log1p(pairs["b"]["item_pop"])
    signals = tf.stack([
        log1p(pairs["user_train_positives"]),
        tf.minimum(pop_a, pop_b),
        tf.maximum(pop_a, pop_b),
        4.0 * q * (1.0 - q),
        q,
        tf.cast(pairs["confidence"], tf.float32),
    ], axis=-1)
    return tf.stop_gradient(signals)


@tf.keras.utils.register_keras_serializable(package="sllmr")
class ReliabilityGate(tf.keras.layers.Layer):
    """Signals (pairs, k) -> reliability logit (pairs,); alpha = sigmoid(logit) in (0, 1)."""

    def __init__(self, hidden_units: Sequence[int] = (16, 16), **kwargs):
        super().__init__(**kwargs)
        self.hidden_units = tuple(int(u) for u in hidden_units)
        self.hidden = [tf.keras.layers.Dense(u, activation="relu", name=f"hidden_{i}")
                       for i, u in enumerate(self.hidden_units)]
        self.out = tf.keras.layers.Dense(1, name="reliability_logit")

    def call(self, signals: tf.Tensor) -> tf.Tensor:
        h = signals
        for layer in self.hidden:
            h = layer(h)
        return self.out(h)[:, 0]

    def get_config(self) -> dict:
        return {**super().get_config(), "hidden_units": self.hidden_units}
