"""The paper's gate, as written (method `sllmr_paper`), to measure beside ours (gate.py).

Per (user, item): z = [Cold(u), Tail(i), q_ui], q the backbone's uncertainty
on (u, i); alpha_ui = sigmoid(w . z + b); per pair alpha_uij = (alpha_ui +
alpha_uj) / 2 weighs the pairwise loss. w and b train with the backbone on
the full loss L = BCE + lambda * mean(alpha_uij * L_pair), with no target and
no regulariser, so the LLM term is the gate's only gradient: with lambda = 0
it never moves. q is read under stop_gradient: the gate sees the backbone's
current prediction as a signal, and the backbone is not trained through it.
w = 0 and b = 0 at the start, so alpha starts at 1/2 everywhere.

dL/dalpha_uij = lambda * L_pair / pairs >= 0, and every signal is >= 0, so
dL/dw and dL/db are >= 0 at every step: descent can only lower w and b, and
alpha with them, everywhere. With Adam the step size hardly depends on the
gradient's scale, so lambda barely sets the speed. BUILD_NOTES.md ("The
paper's gate") has what it does.
"""
from __future__ import annotations

import math
from typing import Mapping

import tensorflow as tf

from sllmr_tf.training import methods as methods_lib

SIGNALS = ("is_cold_user", "is_longtail_item", "uncertainty")


def uncertainty(logits: tf.Tensor, kind: str) -> tf.Tensor:
    """q of each prediction, from p = sigmoid(logits), with no gradient to the logits.

    Args:
        logits: the backbone's logits.
        kind: methods.MAX_PROB (1 - max(p, 1 - p), in [0, 1/2]) or methods.ENTROPY (the
            binary entropy of p in bits, in [0, 1]).

    Returns:
        q, the shape of `logits`.
    """
    p = tf.sigmoid(tf.stop_gradient(logits))
    if kind == methods_lib.MAX_PROB:
        return 1.0 - tf.maximum(p, 1.0 - p)
    if kind == methods_lib.ENTROPY:
        return -(tf.math.xlogy(p, p) + tf.math.xlogy(1.0 - p, 1.0 - p)) / math.log(2.0)
    raise ValueError(f"unknown uncertainty {kind!r}; known: {', '.join(methods_lib.PAPER_UNCERTAINTIES)}")


class PaperGate(tf.keras.layers.Layer):
    """z (n, len(SIGNALS)) -> alpha (n,) = sigmoid(w . z + b); w and b trainable, zero at the start."""

    def __init__(self, uncertainty_kind: str = methods_lib.MAX_PROB, **kwargs):
        super().__init__(**kwargs)
        self.uncertainty_kind = uncertainty_kind

    def build(self, input_shape):
        self.w = self.add_weight(name="w", shape=(len(SIGNALS),), initializer="zeros", trainable=True)
        self.b = self.add_weight(name="b", shape=(), initializer="zeros", trainable=True)
        super().build(input_shape)

    def call(self, signals: tf.Tensor) -> tf.Tensor:
        return tf.sigmoid(tf.linalg.matvec(signals, self.w) + self.b)

    def item_signals(self, pairs: Mapping, side: str, logits: tf.Tensor) -> tf.Tensor:
        """z of (the pair's user, its item `side`), `logits` the backbone's on that (u, i)."""
        as_float = lambda v: tf.cast(tf.cast(v, tf.float32) > 0, tf.float32)  # noqa: E731
        return tf.stack([as_float(pairs["is_cold_user"]), as_float(pairs[side]["is_longtail_item"]),
                         uncertainty(logits, self.uncertainty_kind)], axis=-1)

    def pair_alpha(self, pairs: Mapping, score_a: tf.Tensor, score_b: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """(alpha_uij (pairs,), [z of (u, a), z of (u, b)] (pairs, 2 len(SIGNALS)))."""
        z_a, z_b = self.item_signals(pairs, "a", score_a), self.item_signals(pairs, "b", score_b)
        return 0.5 * (self(z_a) + self(z_b)), tf.concat([z_a, z_b], axis=-1)

    def parameters(self) -> dict[str, float]:
        """The learned w (per signal) and b."""
        return {**{f"w_{name}": float(v) for name, v in zip(SIGNALS, self.w.numpy())}, "b": float(self.b.numpy())}

    def get_config(self) -> dict:
        return {**super().get_config(), "uncertainty_kind": self.uncertainty_kind}
