"""The gate tracks the LLM's true reliability on a synthetic world with a simulated LLM.

The simulated LLM (sllmr-score --scorer=simulated, default profile) is accurate
for sparse users and long-tail items and noisy for heavy users; the world
knows, for every pair, the true probability that the LLM's order is right
(true_correct_prob: P(the user truly prefers a over b)).

Two views of the same gate: over the pairs as training joins them (each pair
as often as its user has train examples: where alpha acts on the loss), and
over every pair once. Most pairs counted once belong to cold-start users
(targeted augmentation), whose pairs differ in truth mostly by how far apart
the two items really are, which the gate's signals hardly tell. The test
measures that bound: the best any function of the gate's signals can do
(the truth's mean within fine bins of all of them, fitted on the truth
itself, so an optimistic ceiling), and asks the gate to reach most of it.
"""
from __future__ import annotations

import numpy as np
import pytest
import scipy.stats

from conftest import prepare_dataset
import sllmr_tf  # noqa: F401  (Keras 2 switch before TensorFlow loads)
import tensorflow as tf

from sllmr_tf.data.dataset_dir import DatasetDir
from sllmr_tf.scoring import pipeline
from sllmr_tf.scoring.backends import make_backend
from sllmr_tf.training.callbacks import pair_weight_sample
from sllmr_tf.training.gate_report import score_every_pair
from sllmr_tf.training.inputs import training_batches
from sllmr_tf.training.pairs_table import load_pairs_table
from sllmr_tf.training.config import TrainConfig
from sllmr_tf.training.trainer import train

SEED = 0
MIN_SPEARMAN_AS_TRAINED = 0.5
MIN_SHARE_OF_CEILING = 0.8
SIGNAL_BINS = 5


class KeepModel(tf.keras.callbacks.Callback):
    """Holds on to the trained model (after early stopping has restored the best epoch)."""


def best_spearman_from(signals: np.ndarray, truth: np.ndarray) -> float:
    """Spearman(truth, E[truth | signal bins]): what the best function of the signals reaches."""
    cells = np.zeros(len(truth), np.int64)
    for column in signals.T:
        edges = np.unique(np.quantile(column, np.linspace(0, 1, SIGNAL_BINS + 1)[1:-1]))
        cells = cells * (SIGNAL_BINS + 1) + np.searchsorted(edges, column)
    _, cell, counts = np.unique(cells, return_inverse=True, return_counts=True)
    cell_mean = np.bincount(cell, weights=truth) / counts
    return scipy.stats.spearmanr(cell_mean[cell], truth)[0]


@pytest.mark.slow
def test_gate_trusts_the_llm_where_it_is_reliable_and_tracks_its_true_correctness(tmp_path):
    data_dir, pairs_dir = str(tmp_path / "world"), str(tmp_path / "pairs")
    prepare_dataset(data_dir, dataset="synthetic", num_shards=2)
    backend = make_backend("simulated", data_dir)
    pipeline.score(data_dir, backend, pairs_dir, log=lambda _: None)

    kept = KeepModel()
    train(TrainConfig(data_dir=data_dir, model_dir=str(tmp_path / "model"), method="sllmr", pairs_dir=pairs_dir,
                      seed=SEED, epochs=6, patience=6, pairs_per_example=1.0, num_bootstrap=10),
          verbose=0, log=lambda _: None, extra_callbacks=[kept])

    table = load_pairs_table(pairs_dir, DatasetDir(data_dir))
    joined = pair_weight_sample(kept.model, list(training_batches(data_dir, 512, seed=SEED + 1, table=table,
                                                                  pairs_per_example=4.0)))
    rho_as_trained = scipy.stats.spearmanr(joined["weight"], joined["true_correct_prob"])[0]
    scored = score_every_pair(kept.model, data_dir, table)
    alpha, signals = scored["alpha"], scored["signals"]
    truth = table.columns["true_correct_prob"]
    cold = table.columns["is_cold_user"] > 0
    heavy = table.columns["user_train_positives"] >= backend.profile.heavy_min_history
    rho = scipy.stats.spearmanr(alpha, truth)[0]
    ceiling = best_spearman_from(signals, truth)
    print(f"\nSpearman(alpha, true_correct_prob): {rho_as_trained:.3f} over {joined['weight'].size:,} pairs "
          f"as training joins them, {rho:.3f} over all {len(alpha):,} pairs once, where the best function "
          f"of the gate's signals reaches {ceiling:.3f}; mean alpha: cold-start "
          f"users {alpha[cold].mean():.3f} ({cold.sum():,} pairs), heavy users {alpha[heavy].mean():.3f} "
          f"({heavy.sum():,} pairs)")
    assert heavy.sum() > 100 and cold.sum() > 100
    assert alpha[cold].mean() > alpha[heavy].mean()
    assert rho_as_trained >= MIN_SPEARMAN_AS_TRAINED
    assert rho >= MIN_SHARE_OF_CEILING * ceiling
