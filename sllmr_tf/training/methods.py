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
    heuristic     the pairwise loss with weight 1 for pairs of cold-start users or
                  involving a long-tail item, else 0 (ablation of the learned gate).
    sllmr         the pairwise loss weighted by the learned reliability gate.
    sllmr_noaug   sllmr without the augmented pairs (source == 1).
    kar           BCE only, pairs never read; the language model's knowledge enters as
                  features instead: each item's frozen MiniLM vector and the history's
                  profile, through a trainable adapter, as extra backbone fields
                  (models/knowledge_fields.py, training/knowledge.py).
"""
from __future__ import annotations

import dataclasses

from sllmr_tf.errors import ConfigError

PAIRWISE = "pairwise"
POINTWISE = "pointwise"

WEIGHT_ONE = "one"
WEIGHT_HEURISTIC = "heuristic"
WEIGHT_GATE = "gate"


@dataclasses.dataclass(frozen=True)
class Method:
    name: str
    llm_loss: str | None  # PAIRWISE, POINTWISE or None (pairs unused)
    weighting: str | None  # WEIGHT_* for pairwise methods
    keep_augmented: bool = True
    knowledge: bool = False  # the backbone gets the knowledge fields (kar)

    @property
    def uses_pairs(self) -> bool:
        return self.llm_loss is not None

    @property
    def has_gate(self) -> bool:
        return self.weighting == WEIGHT_GATE


METHODS: dict[str, Method] = {m.name: m for m in (
    Method("base", None, None),
    Method("kd", PAIRWISE, WEIGHT_ONE),
    Method("kd_pointwise", POINTWISE, WEIGHT_ONE),
    Method("heuristic", PAIRWISE, WEIGHT_HEURISTIC),
    Method("sllmr", PAIRWISE, WEIGHT_GATE),
    Method("sllmr_noaug", PAIRWISE, WEIGHT_GATE, keep_augmented=False),
    Method("kar", None, None, knowledge=True),
)}


def method_names() -> tuple[str, ...]:
    return tuple(METHODS)


def get_method(name: str) -> Method:
    if name not in METHODS:
        raise ConfigError(f"unknown method {name!r}; known: {', '.join(METHODS)}")
    return METHODS[name]
