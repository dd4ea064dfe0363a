"""Full-ranking evaluation: each held-out positive against every item its user has no earlier row for."""
from __future__ import annotations

import collections
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import sllmr_tf  # noqa: F401  (Keras 2 switch before TensorFlow loads)
import tensorflow as tf

from conftest import prepare_dataset
from sllmr_tf import features, segments, shards
from sllmr_tf.data.dataset_dir import DatasetDir
from sllmr_tf.errors import ConfigError
from sllmr_tf.models.build import build_backbone
from sllmr_tf.models.config import BackboneConfig
from sllmr_tf.training.config import TrainConfig
from sllmr_tf.training.full_ranking import evaluate_full_ranking, positive_aucs, rank_positives
from sllmr_tf.training.pairs_table import user_features
from sllmr_tf.training.trainer import train

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NUM_BOOTSTRAP = 20


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> str:
    """80 synthetic users, 3 test and 2 valid events each (several test positives per user), a
    third of them cut to cold start."""
    path = str(tmp_path_factory.mktemp("full_ranking") / "data")
    prepare_dataset(path, dataset="synthetic", num_shards=2, test_k=3, valid_k=2, eval_negatives=2,
                    cold_user_fraction=0.3, source_options=(("synthetic_users", 80), ("synthetic_items", 200)))
    return path


@pytest.fixture(scope="module")
def backbone(tiny) -> tf.keras.Model:
    tf.keras.utils.set_random_seed(0)
    return build_backbone("dnn", features.vocab_sizes(DatasetDir(tiny).stats), BackboneConfig())


def stored_rows(data_dir: str, split: str) -> list[tuple[int, int, float]]:
    """(user, item, label) of every record of a split, read straight from the shards."""
    records = tf.data.TFRecordDataset(DatasetDir(data_dir).shards(split), compression_type=shards.COMPRESSION)
    spec = {name: features.parse_spec(features.FEATURES)[name] for name in ("user_id", "item_id", "label")}
    parsed = tf.io.parse_example(tf.constant([r.numpy() for r in records]), spec)
    return list(zip(parsed["user_id"].numpy().tolist(), parsed["item_id"].numpy().tolist(),
                    parsed["label"].numpy().tolist()))


def brute_force(backbone: tf.keras.Model, data_dir: str) -> dict:
    """Every user's logits for every item at once, the exclusions as Python sets, each positive's
    AUC by counting, and the segment means by their definitions."""
    data = DatasetDir(data_dir)
    num_items = len(data.items())
    seen = collections.defaultdict(set)
    for split in ("train", "valid"):
        for user, item, _ in stored_rows(data_dir, split):
            seen[user].add(item)
    held_out = collections.defaultdict(set)
    for user, item, label in stored_rows(data_dir, "test"):
        if label == 1:
            held_out[user].add(item)
    users = np.array(sorted(held_out))
    lookup = data.item_lookup()
    x = {name: np.repeat(values[users], num_items, axis=0) for name, values in user_features(data).items()}
    all_items = np.tile(np.arange(1, num_items + 1), len(users))
    x.update(item_id=all_items, item_category=lookup["item_category"][all_items],
             item_brand=lookup["item_brand"][all_items])
    logits = backbone(x, training=False)[:, 0].numpy().reshape(len(users), num_items)

    positives = []  # (user, item, auc, candidates)
    for row, user in enumerate(users):
        candidates = [j for j in range(1, num_items + 1) if j not in seen[user] and j not in held_out[user]]
        negative = logits[row, np.array(candidates) - 1]
        for item in sorted(held_out[user]):
            score = logits[row, item - 1]
            positives.append((user, item, (np.sum(negative < score) + 0.5 * np.sum(negative == score))
                              / len(candidates), len(candidates)))
    p_user, p_item, p_auc, p_count = (np.array(column) for column in zip(*positives))
    user_signals = data.user_lookup()
    masks = {"overall": np.ones(len(p_user), bool),
             "cold_start_users": user_signals["is_cold_user"][p_user] == 1,
             "longtail_items": lookup["is_longtail_item"][p_item] == 1,
             "longtail_events": segments.longtail_events(lookup["item_pop"][p_item], p_item),
             "heavy_users": segments.heavy_users(user_signals["train_positives"])[p_user]}
    out = {name: {"n": int(mask.sum()), "n_users": len(set(p_user[mask])),
                  "auc": float(p_auc[mask].mean()) if mask.any() else None,
                  "mean_candidates": float(p_count[mask].mean()) if mask.any() else None}
           for name, mask in masks.items()}
    out["gauc"] = float(np.mean([p_auc[p_user == user].mean() for user in users]))
    return out


def test_full_ranking_agrees_with_brute_force_exclusions_and_segments(tiny, backbone):
    block = evaluate_full_ranking(backbone, tiny, "test", num_bootstrap=NUM_BOOTSTRAP)
    expected = brute_force(backbone, tiny)
    assert block["overall"]["n"] > block["overall"]["n_users"]  # several positives per user
    for name in segments.EVAL_SEGMENTS:
        got = block[name]
        assert (got["n"], got["n_users"]) == (expected[name]["n"], expected[name]["n_users"]), name
        assert got["positives"] == got["n"] and got["too_small"] == (got["n"] < segments.MIN_EVENTS)
        assert got["logloss"] is None
        if expected[name]["n"]:
            assert got["auc"] == pytest.approx(expected[name]["auc"], abs=1e-12), name
            assert got["mean_candidates"] == pytest.approx(expected[name]["mean_candidates"], abs=1e-12), name
            lo, hi = got["auc_ci95"]
            assert lo <= got["auc"] <= hi
    assert block["cold_start_users"]["n"] > 0 and block["longtail_items"]["n"] > 0
    assert block["gauc"]["value"] == pytest.approx(expected["gauc"], abs=1e-12)
    assert block["gauc"]["n_users"] == block["overall"]["n_users"]
    assert block["protocol"] == "full_ranking" and block["positives_without_candidates"] == 0


def test_the_chunk_size_does_not_change_the_result(tiny, backbone):
    num_items = len(DatasetDir(tiny).items())
    one_user = evaluate_full_ranking(backbone, tiny, num_bootstrap=NUM_BOOTSTRAP, chunk_pairs=1)
    three_users = evaluate_full_ranking(backbone, tiny, num_bootstrap=NUM_BOOTSTRAP, chunk_pairs=3 * num_items + 1)
    all_users = evaluate_full_ranking(backbone, tiny, num_bootstrap=NUM_BOOTSTRAP, chunk_pairs=10 ** 9)
    assert one_user == three_users == all_users


def test_a_positive_auc_is_its_exact_rank_among_its_rows_candidates_with_ties_one_half():
    logits = np.array([[0.1, 0.5, 0.5, 0.9, 0.2],
                       [0.3, 0.3, 0.3, 0.3, 0.0]], np.float32)
    candidates = np.array([[True, True, False, True, False],
                           [False, False, False, False, False]])
    auc, count = positive_aucs(logits, candidates, rows=np.array([0, 0, 1]), cols=np.array([2, 4, 3]))
    # against 0.1, 0.5, 0.9: 0.5 beats one and ties one, 0.2 beats one; the last row has no candidate
    np.testing.assert_allclose(auc[:2], [(1 + 0.5) / 3, 1 / 3])
    assert np.isnan(auc[2]) and count.tolist() == [3, 3, 0]


def test_train_has_no_held_out_positives_to_rank_and_a_chunk_needs_a_pair(tiny, backbone):
    with pytest.raises(ConfigError, match="not 'train'"):
        rank_positives(backbone, DatasetDir(tiny), "train")
    with pytest.raises(ConfigError, match="ranking_chunk_pairs"):
        rank_positives(backbone, DatasetDir(tiny), "test", chunk_pairs=0)


@pytest.mark.slow
def test_train_with_full_ranking_eval_and_sllmr_eval_write_the_same_block(tiny, tmp_path):
    model_dir = str(tmp_path / "model")
    trained = train(TrainConfig(data_dir=tiny, model_dir=model_dir, backbone="dnn", epochs=1,
                                num_bootstrap=NUM_BOOTSTRAP, full_ranking_eval=True), verbose=0, log=lambda _: None)
    assert {"test", "test_full_ranking"} <= set(trained)
    evaluated = subprocess.run(
        [sys.executable, "-m", "sllmr_tf.bins.eval", f"--model_dir={model_dir}", f"--data_dir={tiny}",
         "--protocol=full_ranking", f"--num_bootstrap={NUM_BOOTSTRAP}", "--ranking_chunk_pairs=1000"],
        cwd=REPO, capture_output=True, text=True, timeout=300)
    assert evaluated.returncode == 0, evaluated.stderr[-2000:]
    assert "test_full_ranking: segment" in evaluated.stdout
    metrics = json.load(open(os.path.join(model_dir, "metrics.json")))
    assert metrics["test_full_ranking"] == trained["test_full_ranking"]
    assert metrics["test"] == trained["test"]  # the sampled block is left as it was
