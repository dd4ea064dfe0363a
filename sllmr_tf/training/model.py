"""The one training model: any backbone, any method, one step.

Per batch (see join.py for how pairs arrive):

    BCE     binary cross-entropy of the backbone on the batch's interactions
    L_pair  for each joined pair (u, a > b): the backbone scores (u, a) and (u, b)
            from the user's features with each item's, and pays
            softplus(-(s_a - s_b)) or the hinge max(0, m - (s_a - s_b))
            (`pair_loss`; times the LLM confidence with confidence_weighting);
            kd_pointwise pays BCE(sigmoid(s), p_teacher) and kd_mse
            (sigmoid(s) - p_teacher)^2, averaged over both items, instead
    w       each pair's weight: 1 (kd), the cold-start / long-tail rule
            (heuristic), gate.pair_weight(alpha_low, s) with alpha_low the fitted,
            frozen gate's 95% lower bound of alpha and s the backbone's accuracy in
            the pair's region (sllmr: max(0, 2 alpha_low - 1) before the first refit
            of s), or the paper's trained gate's alpha_uij (sllmr_paper, paper_gate.py)

    L = BCE + llm_loss_weight * sum(w * L_pair) / pairs

The batch and both item copies of the pairs go through the backbone in one call. `base`
never reads the pairs, so a base run is the same with or without them.
"""
from __future__ import annotations

import dataclasses

import tensorflow as tf

from sllmr_tf import features, segments
from sllmr_tf.training import methods as methods_lib
from sllmr_tf.training.gate import ReliabilityGate, gate_signals, pair_weight
from sllmr_tf.training.join import PAIRS_KEY
from sllmr_tf.training.paper_gate import PaperGate

_MODEL_FEATURES = tuple(f.name for f in features.model_features())
_ITEM_SIDE = frozenset(f.name for f in features.item_side_features())


@dataclasses.dataclass
class LossTerms:
    """Every term of one step's loss, plus the per-pair quantities behind them."""

    total: tf.Tensor
    bce: tf.Tensor
    llm: tf.Tensor  # sum(w * L_pair) / pairs, before llm_loss_weight
    logits: tf.Tensor  # (batch,)
    weight: tf.Tensor | None = None  # (pairs,) w: the weight the pairwise loss applies to each pair
    alpha: tf.Tensor | None = None  # (pairs,) the gate's P(the LLM's order is right); methods with a gate
    gate_logit: tf.Tensor | None = None  # (pairs,), the fitted gate's
    gate_inputs: tf.Tensor | None = None  # (pairs, k): what the gate saw (gate.SIGNALS; paper_gate's per item)
    reference: tf.Tensor | None = None  # (pairs,) the backbone's accuracy the LLM must beat; the fitted gate's


class TrainingModel(tf.keras.Model):
    """Wraps a backbone (feature dict -> (batch, 1) logit) with a method's loss.

    A method with a gate needs the fitted gate (`gate.fit_gate`); it stays frozen. sllmr_paper
    builds its own gate (`paper_gate`), trained with the backbone.
    """

    def __init__(self, backbone: tf.keras.Model, method: methods_lib.Method, llm_loss_weight: float = 0.1,
                 confidence_weighting: bool = False, gate: ReliabilityGate | None = None,
                 pair_loss: str = methods_lib.SOFTPLUS, pair_margin: float = 1.0,
                 paper_uncertainty: str = methods_lib.MAX_PROB, **kwargs):
        super().__init__(**kwargs)
        if method.has_gate != (gate is not None):
            raise ValueError(f"method {method.name!r} {'needs' if method.has_gate else 'takes no'} fitted gate")
        self.backbone = backbone
        self.method = method
        self.llm_loss_weight = float(llm_loss_weight)
        self.confidence_weighting = bool(confidence_weighting)
        self.gate = gate
        self.pair_loss, self.pair_margin = pair_loss, float(pair_margin)
        self.paper_gate = (PaperGate(paper_uncertainty, name="paper_gate")
                           if method.weighting == methods_lib.WEIGHT_PAPER_GATE else None)
        self._train_metrics = _TrainMetrics(method)
        self._eval_metrics = _EvalMetrics()

    def call(self, inputs, training: bool = False) -> tf.Tensor:
        return self.backbone({name: inputs[name] for name in _MODEL_FEATURES}, training=training)

    def loss_terms(self, x: dict, y: tf.Tensor, training: bool) -> LossTerms:
        y = tf.reshape(tf.cast(y, tf.float32), [-1])
        if not self.method.uses_pairs:
            logits = self(x, training=training)[:, 0]
            bce = _mean_bce(y, logits)
            return LossTerms(total=bce + self._regularization(), bce=bce, llm=tf.constant(0.0), logits=logits)

        pairs = x[PAIRS_KEY]
        logits, score_a, score_b = self._score_with_pairs(x, pairs, training)
        bce = _mean_bce(y, logits)
        num_pairs = tf.cast(tf.size(score_a), tf.float32)
        weight, alpha, gate_inputs, gate_logit, reference = self._pair_weights(pairs, score_a, score_b)
        per_pair = self._llm_loss_per_pair(pairs, score_a, score_b)
        llm = tf.math.divide_no_nan(tf.reduce_sum(weight * per_pair), num_pairs)
        total = bce + self.llm_loss_weight * llm + self._regularization()
        return LossTerms(total=total, bce=bce, llm=llm, logits=logits, weight=weight,
                         alpha=alpha, gate_logit=gate_logit, gate_inputs=gate_inputs, reference=reference)

    def _score_with_pairs(self, x: dict, pairs: dict, training: bool):
        """Logits of the batch, of (u, a) and of (u, b), from one backbone call: each pair's
        user-side features with item a's, then with item b's."""

        a, b = pair_side_inputs(pairs, "a"), pair_side_inputs(pairs, "b")
        stacked = {name: tf.concat([x[name], a[name], b[name]], axis=0) for name in _MODEL_FEATURES}
        logits = self.backbone(stacked, training=training)[:, 0]
        n, p = tf.shape(x["user_id"])[0], tf.shape(pairs["user_id"])[0]
        return logits[:n], logits[n:n + p], logits[n + p:]

    def _llm_loss_per_pair(self, pairs: dict, score_a: tf.Tensor, score_b: tf.Tensor) -> tf.Tensor:
        """L_pair of each pair, before its weight: the method's LLM loss."""
        if self.method.llm_loss == methods_lib.PAIRWISE:
            per_pair = pair_loss(score_a - score_b, self.pair_loss, self.pair_margin)
            return per_pair * pairs["confidence"] if self.confidence_weighting else per_pair
        item_loss = _bce if self.method.llm_loss == methods_lib.POINTWISE else _squared_error_of_probability
        return 0.5 * (item_loss(pairs["teacher_a"], score_a) + item_loss(pairs["teacher_b"], score_b))

    def _pair_weights(self, pairs: dict, score_a: tf.Tensor, score_b: tf.Tensor):
        """(w, alpha, gate signals, gate logit, reference) for the method; without a gate the last four
        are None (the gate logit and the reference: also for the paper's gate, whose alpha_uij is a
        mean of two sigmoids)."""
        if self.method.weighting == methods_lib.WEIGHT_ONE:
            return tf.ones_like(score_a), None, None, None, None
        if self.method.weighting == methods_lib.WEIGHT_HEURISTIC:
            cold_or_tail = segments.cold_or_longtail(pairs["is_cold_user"], pairs["a"]["is_longtail_item"],
                                                     pairs["b"]["is_longtail_item"])
            return tf.cast(cold_or_tail, tf.float32), None, None, None, None
        if self.method.weighting == methods_lib.WEIGHT_PAPER_GATE:
            alpha, signals = self.paper_gate.pair_alpha(pairs, score_a, score_b)
            return alpha, alpha, signals, None, None
        signals = gate_signals(pairs)
        gate_logit, lower_logit, student_logit = self.gate(signals)
        reference = tf.sigmoid(student_logit)
        return pair_weight(tf.sigmoid(lower_logit), reference), tf.sigmoid(gate_logit), signals, gate_logit, reference

    def _regularization(self) -> tf.Tensor:
        return tf.add_n(self.backbone.losses) if self.backbone.losses else tf.constant(0.0)

    def train_step(self, data):
        x, y = data
        with tf.GradientTape() as tape:
            terms = self.loss_terms(x, y, training=True)
        variables = self.trainable_variables
        gradients = tape.gradient(terms.total, variables)
        # Every trainable variable (the backbone's and the paper's gate's: the fitted gate is frozen)
        # is used by the loss: a None
        # here is a bug (a layer cut off from the loss), not something to skip silently.
        missing = [v.name for g, v in zip(gradients, variables) if g is None]
        if missing:
            raise RuntimeError(f"no gradient reaches {missing} under method {self.method.name!r}")
        self.optimizer.apply_gradients(zip(gradients, variables))
        return self._train_metrics.update(terms, x.get(PAIRS_KEY))

    def test_step(self, data):
        x, y = data
        logits = self(x, training=False)[:, 0]
        return self._eval_metrics.update(x, tf.reshape(tf.cast(y, tf.float32), [-1]), logits)

    @property
    def metrics(self):
        return self._train_metrics.all + self._eval_metrics.all


class _TrainMetrics:
    """Running means of the loss terms, of the pair weight per segment, of alpha and of the
    LLM's agreement with train outcomes."""

    def __init__(self, method: methods_lib.Method):
        self.method = method
        names = ["loss", "bce"]
        if method.uses_pairs:
            names += ["llm_loss", "pairs_per_batch", *(_weight_metric(name) for name in segments.PAIR_SEGMENTS),
                      "llm_agreement"]
        if method.has_alpha:
            names += ["alpha"]
        self.means = {name: tf.keras.metrics.Mean(name=name) for name in names}
        self.gate_auc = tf.keras.metrics.AUC(name="gate_auc") if method.has_alpha else None

    @property
    def all(self) -> list:
        return list(self.means.values()) + ([self.gate_auc] if self.gate_auc is not None else [])

    def update(self, terms: LossTerms, pairs: dict | None) -> dict:
        m = self.means
        m["loss"].update_state(terms.total)
        m["bce"].update_state(terms.bce)
        if self.method.uses_pairs:
            m["llm_loss"].update_state(terms.llm)
            m["pairs_per_batch"].update_state(tf.cast(tf.size(pairs["user_id"]), tf.float32))
            masks = segments.pair_segments(pairs["is_cold_user"], pairs["a"]["is_longtail_item"],
                                           pairs["b"]["is_longtail_item"])
            for name, mask in masks.items():
                m[_weight_metric(name)].update_state(terms.weight, sample_weight=tf.cast(mask, tf.float32))
            known, agrees = _known_and_agrees(pairs)
            m["llm_agreement"].update_state(agrees, sample_weight=known)
            if self.gate_auc is not None:
                m["alpha"].update_state(terms.alpha)
                self.gate_auc.update_state(agrees, terms.alpha, sample_weight=known)
        return {metric.name: metric.result() for metric in self.all}


def _weight_metric(segment: str) -> str:
    return "weight" if segment == "all" else f"weight_{segment}"


class _EvalMetrics:
    """Validation BCE and AUC overall, on cold-start users and on long-tail items."""

    def __init__(self):
        self.loss = tf.keras.metrics.Mean(name="loss")
        self.auc = tf.keras.metrics.AUC(name="auc", num_thresholds=1000)
        self.auc_cold = tf.keras.metrics.AUC(name="auc_cold_start", num_thresholds=1000)
        self.auc_longtail = tf.keras.metrics.AUC(name="auc_longtail", num_thresholds=1000)

    @property
    def all(self) -> list:
        return [self.loss, self.auc, self.auc_cold, self.auc_longtail]

    def update(self, x: dict, y: tf.Tensor, logits: tf.Tensor) -> dict:
        p = tf.sigmoid(logits)
        self.loss.update_state(_bce(y, logits))
        self.auc.update_state(y, p)
        self.auc_cold.update_state(y, p, sample_weight=tf.cast(x["is_cold_user"], tf.float32))
        self.auc_longtail.update_state(y, p, sample_weight=tf.cast(x["is_longtail_item"], tf.float32))
        return {metric.name: metric.result() for metric in self.all}


def pair_side_inputs(pairs: dict, side: str) -> dict:
    """The backbone's input for (each pair's user, its item `side`): the pairs' "user" features
    with the item-side features of "a" or "b"."""
    return {name: pairs[side][name] if name in _ITEM_SIDE else pairs["user"][name] for name in _MODEL_FEATURES}


def _bce(labels: tf.Tensor, logits: tf.Tensor) -> tf.Tensor:
    return tf.nn.sigmoid_cross_entropy_with_logits(labels=tf.cast(labels, tf.float32), logits=logits)


def _squared_error_of_probability(targets: tf.Tensor, logits: tf.Tensor) -> tf.Tensor:
    return tf.square(tf.sigmoid(logits) - tf.cast(targets, tf.float32))


def pair_loss(difference: tf.Tensor, kind: str, margin: float = 1.0) -> tf.Tensor:
    """The loss of pairs (u, a > b) on difference = s_a - s_b.

    Args:
        difference: s_a - s_b per pair (logits).
        kind: methods.SOFTPLUS (softplus(-d)) or methods.HINGE (max(0, margin - d)).
        margin: m of the hinge.

    Returns:
        The loss per pair.
    """
    if kind == methods_lib.SOFTPLUS:
        return tf.math.softplus(-difference)
    if kind == methods_lib.HINGE:
        return tf.nn.relu(margin - difference)
    raise ValueError(f"unknown pair loss {kind!r}; known: {', '.join(methods_lib.PAIR_LOSSES)}")


def _mean_bce(labels: tf.Tensor, logits: tf.Tensor) -> tf.Tensor:
    return tf.reduce_mean(_bce(labels, logits))


def _known_and_agrees(pairs: dict) -> tuple[tf.Tensor, tf.Tensor]:
    """Float masks: the pair's outcome is known from train data; the LLM agrees with it."""
    return (tf.cast(segments.outcome_known(pairs["outcome"]), tf.float32),
            tf.cast(segments.llm_agrees(pairs["outcome"]), tf.float32))
