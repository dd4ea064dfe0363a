"""The gate on a small synthetic world whose teacher's reliability is known.

The simulated LLM's profile sets how often it knows an item, per region; the
world knows every pair's truth. Three behaviours, each on a fixed seed:
- a coin-flip teacher is switched off: the weight the pairwise loss applies
  is about zero everywhere, and S-LLMR trains like base where KD is hurt;
- a reliable teacher helps where it knows: the long tail gains, and overall;
- the weight follows the profile when the profile moves: trusted on sparse
  users when the teacher is reliable there, on heavy users when it is
  reliable there instead.
The full measurement (5 seeds, paired intervals, the default world) is in
BUILD_NOTES.md; these are its small, fast versions.
"""
from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from sllmr_tf import features
from sllmr_tf.data.dataset_dir import DatasetDir
from sllmr_tf.scoring import pipeline
from sllmr_tf.scoring.backends import make_backend
from sllmr_tf.training.config import TrainConfig
from sllmr_tf.training.gate import fit_gate, gate_signals
from sllmr_tf.training.gate_report import gate_report, score_every_pair
from sllmr_tf.training.model import TrainingModel
from sllmr_tf.training.pairs_table import load_pairs_table
from sllmr_tf.training.trainer import train, training_model

pytestmark = pytest.mark.slow
TEACHERS = {
    "coin_flip": {"accuracy": "all=0.5"},
    "perfect": {"accuracy": "all=1", "position_bias": "all=0"},
    "default": {},
    "heavy_only": {"accuracy": "all=0.55,heavy/longtail=0.95,heavy/head=0.95"},
}
TRAINED = ("coin_flip", "perfect")  # the behaviours that need a trained model; the others test the weights
SETTINGS = dict(backbone="deepfm", epochs=4, patience=4, llm_loss_weight=1.0, pairs_per_example=1.0,
                num_bootstrap=10, seed=0)


class KeepModel(tf.keras.callbacks.Callback):
    """Holds on to the trained model (after early stopping has restored the best epoch)."""


@pytest.fixture(scope="module")
def runs(world, tmp_path_factory):
    """Base and sllmr on each teacher's pairs (trained where the test needs training): (metrics, model, table) by run."""
    data_dir, _ = world
    root = tmp_path_factory.mktemp("gate")
    out = {}

    def run(name: str, method: str, pairs_dir: str | None = None):
        kept = KeepModel()
        metrics = train(TrainConfig(data_dir=data_dir, model_dir=str(root / name), method=method,
                                    pairs_dir=pairs_dir, **SETTINGS),
                        verbose=0, log=lambda _: None, extra_callbacks=[kept])
        table = load_pairs_table(pairs_dir, DatasetDir(data_dir)) if pairs_dir else None
        out[name] = (metrics, kept.model, table)

    run("base", "base")
    for teacher, options in TEACHERS.items():
        pairs_dir = str(root / f"pairs_{teacher}")
        pipeline.score(data_dir, make_backend("simulated", data_dir, **options), pairs_dir, log=lambda _: None)
        if teacher in TRAINED:
            run(f"sllmr_{teacher}", "sllmr", pairs_dir)
        else:
            out[f"sllmr_{teacher}"] = untrained_with_fitted_gate(data_dir, pairs_dir)
    return out


def untrained_with_fitted_gate(data_dir: str, pairs_dir: str) -> tuple[dict, TrainingModel, object]:
    """The gate is fitted before training and frozen, so the weights it gives need no training
    run: an untrained backbone with the fitted gate reports them as the trained model would."""
    config = TrainConfig(data_dir=data_dir, model_dir="unused", method="sllmr", pairs_dir=pairs_dir, **SETTINGS)
    table = load_pairs_table(pairs_dir, DatasetDir(data_dir))
    gate, _ = fit_gate(table.rows())
    model = training_model(config, config.validate(), features.vocab_sizes(DatasetDir(data_dir).stats), gate)
    return {"gate": gate_report(model, table)}, model, table


def auc(metrics: dict, segment: str) -> float:
    return metrics["test"][segment]["auc"]


def test_a_coin_flip_teacher_gets_no_weight_and_changes_nothing(runs):
    """Within the seed noise of this small world (the 5-seed measurement, with KD's loss beside
    it, is in BUILD_NOTES.md)."""
    base, sllmr = runs["base"][0], runs["sllmr_coin_flip"][0]
    weights = sllmr["gate"]["weight_mean"]
    print(f"\ncoin flip: mean weight {weights}; test AUC base {auc(base, 'overall'):.4f}, "
          f"sllmr {auc(sllmr, 'overall'):.4f}")
    assert all(value <= 0.05 for value in weights.values())
    for segment in ("overall", "cold_start_users"):
        assert abs(auc(sllmr, segment) - auc(base, segment)) < 0.015


def test_a_reliable_teacher_helps_the_long_tail_and_overall(runs):
    """The long-tail events (the least popular 20% of test rows) are where popularity, the
    backbone's strongest signal, says least; this small world's cold-start segment is too small
    (371 test rows) to show the gain the 5-seed measurement finds there."""
    base, sllmr = runs["base"][0], runs["sllmr_perfect"][0]
    gains = {segment: auc(sllmr, segment) - auc(base, segment)
             for segment in ("overall", "longtail_events", "cold_start_users")}
    print(f"\nperfect teacher, sllmr - base: {gains}")
    assert gains["longtail_events"] > 0.03
    assert gains["overall"] > 0.005
    assert sllmr["gate"]["weight_mean"]["all"] > 0.3


def test_the_weight_follows_the_profile_when_it_moves(runs):
    def weight_by_user(name: str) -> tuple[float, float]:
        _, model, table = runs[name]
        weight = score_every_pair(model, table)["weight"]
        positives = table.columns["user_train_positives"]
        return weight[positives <= 2].mean(), weight[positives >= 15].mean()

    sparse_default, heavy_default = weight_by_user("sllmr_default")
    sparse_moved, heavy_moved = weight_by_user("sllmr_heavy_only")
    print(f"\nmean weight, sparse / heavy users: default profile {sparse_default:.3f} / {heavy_default:.3f}, "
          f"reliable on heavy users only {sparse_moved:.3f} / {heavy_moved:.3f}")
    assert sparse_default > heavy_default
    assert heavy_moved > sparse_moved
    informed = runs["sllmr_default"][0]["gate"]["spearman_true_informed_prob"]
    assert informed > 0.2


def test_the_gate_reads_the_same_signals_whichever_item_the_llm_put_first(world):
    """Symmetric inputs: a teacher whose order carries no information is right half of the time
    whatever the gate sees, so it cannot earn weight."""
    data_dir, pairs_dir = world
    table = load_pairs_table(pairs_dir, DatasetDir(data_dir))
    pairs = tf.nest.map_structure(tf.constant, table.rows(slice(0, 500)))
    forward = gate_signals(pairs)
    swapped = gate_signals({**pairs, "a": pairs["b"], "b": pairs["a"]})
    np.testing.assert_array_equal(forward.numpy(), swapped.numpy())
