"""The training methods (`--method`): how the LLM pairs enter the loss.

Every method runs through the same training step; a method only decides
whether pairs are joined to the batches, which pairs, what loss they feed and
how much each pair weighs:

    base          BCE only; pairs are never read.
    kd            global distillation: the pairwise loss on every pair, weight 1.
    kd_pointwise  the LLM-CF KD baseline: BCE(sigmoid(s), p_teacher) on both items of
                  each pair (p_teacher: see pairs_table.teacher_probabilities), weighted
                  like every LLM term by --llm_loss_weight, whose default 0.1 is that
                  baseline's weight.
    kd_mse        the paper's pointwise ablation: (sigmoid(s) - p_teacher)^2 on both items
                  of each pair, p_teacher standing for the LLM's score of the item.
    heuristic     the pairwise loss with weight 1 for pairs of cold-start users or
                  involving a long-tail item, else 0 (ablation of the learned gate).
    sllmr         the pairwise loss weighted by the learned reliability gate.
    sllmr_noaug   sllmr without the augmented pairs (source == 1).
    kar           BCE only, pairs never read; the language model's knowledge enters as
                  features instead: each item's frozen MiniLM vector and the history's
                  profile, through a trainable adapter, as extra backbone fields
                  (models/knowledge_fields.py, training/knowledge.py).
    sllmr_paper   the paper's gate as written: a one-layer gate on [cold user, long-tail
                  item, the backbone's uncertainty] per item, averaged per pair, trained
                  with the backbone through the full loss (training/paper_gate.py).
"""
from __future__ import annotations

import dataclasses

from sllmr_tf.errors import ConfigError

PAIRWISE = "pairwise"
POINTWISE = "pointwise"
POINTWISE_MSE = "pointwise_mse"

WEIGHT_ONE = "one"
WEIGHT_HEURISTIC = "heuristic"
WEIGHT_GATE = "gate"
WEIGHT_PAPER_GATE = "paper_gate"

# --pair_loss: the loss of a pair (u, a > b) on d = s_a - s_b (model.pair_loss).
SOFTPLUS = "softplus"  # softplus(-d): the logistic (BPR) loss
HINGE = "hinge"  # max(0, m - d): the paper's
PAIR_LOSSES = (SOFTPLUS, HINGE)
# --pair_selection: which of the table's pairs the join draws from (pairs_table.select_pairs).
UNIFORM = "uniform"  # all of them
TOP_K = "top_k"  # per user, the K the LLM is most confident about
PAIR_SELECTIONS = (UNIFORM, TOP_K)
# --paper_uncertainty: sllmr_paper's q_ui from the backbone's p = sigmoid(s_ui) (paper_gate.py).
MAX_PROB = "max_prob"  # 1 - max(p, 1 - p)
ENTROPY = "entropy"  # the binary entropy of p, in bits
PAPER_UNCERTAINTIES = (MAX_PROB, ENTROPY)


@dataclasses.dataclass(frozen=True)
class Method:
    name: str
    llm_loss: str | None  # PAIRWISE, POINTWISE, POINTWISE_MSE or None (pairs unused)
    weighting: str | None  # WEIGHT_* for pairwise methods
    keep_augmented: bool = True
    knowledge: bool = False  # the backbone gets the knowledge fields (kar)

    @property
    def uses_pairs(self) -> bool:
        return self.llm_loss is not None

    @property
    def has_gate(self) -> bool:
        """Needs the gate fitted before training (gate.fit_gate)."""
        return self.weighting == WEIGHT_GATE

    @property
    def has_alpha(self) -> bool:
        """Weighs pairs by a gate's alpha: the fitted gate's or the paper's trained one."""
        return self.weighting in (WEIGHT_GATE, WEIGHT_PAPER_GATE)

    @property
    def varies_weight(self) -> bool:
        """Gives pairs different weights (worth a histogram per segment)."""
        return self.weighting not in (None, WEIGHT_ONE)


METHODS: dict[str, Method] = {m.name: m for m in (
    Method("base", None, None),
    Method("kd", PAIRWISE, WEIGHT_ONE),
    Method("kd_pointwise", POINTWISE, WEIGHT_ONE),
    Method("kd_mse", POINTWISE_MSE, WEIGHT_ONE),
    Method("heuristic", PAIRWISE, WEIGHT_HEURISTIC),
    Method("sllmr", PAIRWISE, WEIGHT_GATE),
    Method("sllmr_noaug", PAIRWISE, WEIGHT_GATE, keep_augmented=False),
    Method("kar", None, None, knowledge=True),
    Method("sllmr_paper", PAIRWISE, WEIGHT_PAPER_GATE),
)}


def method_names() -> tuple[str, ...]:
    return tuple(METHODS)


def get_method(name: str) -> Method:
    if name not in METHODS:
        raise ConfigError(f"unknown method {name!r}; known: {', '.join(METHODS)}")
    return METHODS[name]
