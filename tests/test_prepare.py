"""sllmr-prepare on the bundled MovieLens-100k: counts, split invariants, tags, atomicity."""
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

from conftest import prepare_dataset
from sllmr_tf import features
from sllmr_tf.data import dataset_dir, pipeline
from sllmr_tf.data.readers.movielens import bundled_movielens_dir
from sllmr_tf.errors import ArtifactError, BadRecordError


@pytest.fixture(scope="module")
def raw_ratings() -> pd.DataFrame:
    frame = pd.read_csv(os.path.join(bundled_movielens_dir(), "ml-100k.inter"), sep="\t")
    frame.columns = ["user", "item", "rating", "timestamp"]
    return frame.astype({"user": str, "item": str})


@pytest.fixture(scope="module")
def rows(movielens_dir) -> dict:
    """Every split's examples as numpy columns, read back through the tf.data reader."""
    out = {}
    for split in dataset_dir.SPLITS:
        batches = list(pipeline.make_dataset(movielens_dir, split, 4096).as_numpy_iterator())
        out[split] = {k: np.concatenate([b[k] for b in batches]) for k in batches[0]}
    return out


def test_stats_match_counts_recomputed_from_the_raw_file(movielens_dir, raw_ratings, rows):
    stats = dataset_dir.DatasetDir(movielens_dir).stats
    assert stats["num_users"] == raw_ratings.user.nunique() == 943
    assert stats["num_items"] == raw_ratings.item.nunique() == 1682
    assert stats["num_interactions"] == len(raw_ratings) == 100_000
    # independent leave-last-out: rank each user's events by time (ties by file order)
    ordered = raw_ratings.reset_index().sort_values(["user", "timestamp", "index"])
    from_end = ordered.groupby("user").cumcount(ascending=False)
    train = ordered[from_end >= 2]
    positives = train[train.rating >= 4].groupby("user").size().reindex(ordered.user.unique(), fill_value=0)
    assert stats["segments"]["cold_start_users"] == int((positives < 3).sum())
    popularity = train.groupby("item").size().reindex(raw_ratings.item.unique(), fill_value=0)
    assert stats["segments"]["long_tail_items"] == int(
        (popularity <= _tail_threshold(popularity.to_numpy())).sum())
    for split in dataset_dir.SPLITS:
        assert stats["splits"][split]["examples"] == len(rows[split]["label"])
        assert stats["splits"][split]["positives"] == int(rows[split]["label"].sum())


def _tail_threshold(pop: np.ndarray) -> int:
    budget = int(0.2 * len(pop))
    return max(v for v in np.unique(pop) if (pop <= v).sum() <= budget)


def test_held_out_events_are_the_last_of_each_user_and_never_in_train_history(rows, movielens_dir):
    users = dataset_dir.DatasetDir(movielens_dir).users()
    train_positives = {u["index"]: set(u["train_items"]) for u in users}
    for split in ("valid", "test"):
        for user, hist in zip(rows[split]["user_id"], rows[split]["hist_item_ids"]):
            assert set(hist[hist > 0].tolist()) <= train_positives[user]
    held_out = {(u, i) for s in ("valid", "test") for u, i, y in
                zip(rows[s]["user_id"], rows[s]["item_id"], rows[s]["label"]) if y > 0}
    train_pairs = set(zip(rows["train"]["user_id"].tolist(), rows["train"]["item_id"].tolist()))
    assert not held_out & train_pairs


def test_histories_are_strictly_earlier_train_positives(rows, movielens_dir, raw_ratings):
    data = dataset_dir.DatasetDir(movielens_dir)
    user_ids, item_ids = data.vocab("user"), data.vocab("item")
    when = {(u, i): t for u, i, t in zip(raw_ratings.user, raw_ratings.item, raw_ratings.timestamp)}
    train = rows["train"]
    positive = np.flatnonzero(train["label"] > 0)[:3000]
    for row in positive:
        user = user_ids[train["user_id"][row]]
        event_time = when[(user, item_ids[train["item_id"][row]])]
        hist = train["hist_item_ids"][row]
        times = [when[(user, item_ids[i])] for i in hist[hist > 0]]
        assert all(t < event_time for t in times)
        assert times == sorted(times, reverse=True)
        assert train["hist_len"][row] >= len(times)


def test_sampled_negatives_are_never_a_positive_of_that_user(rows, raw_ratings, movielens_dir):
    data = dataset_dir.DatasetDir(movielens_dir)
    user_ids, item_ids = data.vocab("user"), data.vocab("item")
    liked = set(zip(raw_ratings.user[raw_ratings.rating >= 4], raw_ratings.item[raw_ratings.rating >= 4]))
    for split in dataset_dir.SPLITS:
        r = rows[split]
        for u, i in zip(r["user_id"][r["label"] == 0], r["item_id"][r["label"] == 0]):
            assert (user_ids[u], item_ids[i]) not in liked


def test_segment_tags_follow_their_definitions(rows, movielens_dir):
    data = dataset_dir.DatasetDir(movielens_dir)
    tail = {row["index"]: row["is_longtail"] for row in data.items()}
    cold = {row["index"]: len(row["train_items"]) < 3 for row in data.users()}
    for split in dataset_dir.SPLITS:
        r = rows[split]
        assert all(bool(t) == tail[i] for i, t in zip(r["item_id"], r["is_longtail_item"]))
        assert all(bool(c) == cold[u] for u, c in zip(r["user_id"], r["is_cold_user"]))
    popularity = np.array([row["popularity"] for row in data.items()])
    flags = np.array([row["is_longtail"] for row in data.items()])
    assert flags.mean() <= 0.2 and popularity[flags].max() < popularity[~flags].min()


def test_item_table_carries_text_and_side_features(movielens_dir):
    items = dataset_dir.DatasetDir(movielens_dir).items()
    toy_story = next(row for row in items if row["id"] == "1")
    assert toy_story["title"] == "Toy Story (1995)" and toy_story["category"] == "Animation"
    assert "Comedy" in toy_story["text"] and toy_story["category_index"] > 0


def test_a_record_survives_the_tfrecord_round_trip():
    values = {f.name: np.arange(np.prod(f.shape or (1,))).reshape(f.shape) + 3 for f in features.FEATURES}
    serialized = features.to_example(values).SerializeToString()
    parsed = tf.io.parse_example([serialized], features.parse_spec())
    for f in features.FEATURES:
        np.testing.assert_array_equal(parsed[f.name].numpy()[0], np.asarray(values[f.name], f.dtype))


def test_a_wrong_shape_is_rejected_naming_the_feature():
    with pytest.raises(ValueError, match="hist_item_ids"):
        features.to_example({"hist_item_ids": [1, 2]})


def test_rerun_with_the_same_config_changes_nothing(movielens_dir):
    stamp = os.path.getmtime(os.path.join(movielens_dir, dataset_dir.STATS_FILE))
    prepare_dataset(movielens_dir, dataset="movielens100k", num_shards=2)
    assert os.path.getmtime(os.path.join(movielens_dir, dataset_dir.STATS_FILE)) == stamp


def test_another_config_needs_overwrite(movielens_dir):
    with pytest.raises(ArtifactError, match="overwrite"):
        prepare_dataset(movielens_dir, dataset="movielens100k", num_shards=3)


def test_a_failed_run_leaves_no_dataset_and_no_temporary_files(tmp_path):
    raw = tmp_path / "raw"
    shutil.copytree(bundled_movielens_dir(), raw)
    with open(raw / "ml-100k.inter", "a") as f:
        f.write("7\t8\tfive\t881250949\n")
    with pytest.raises(BadRecordError, match=r"ml-100k\.inter:100002: field 'rating'"):
        prepare_dataset(str(tmp_path / "out"), raw_dir=str(raw))
    assert os.listdir(tmp_path) == ["raw"]


@pytest.mark.slow
def test_binary_prints_the_summary_and_rejects_bad_input_in_one_line(tmp_path):
    out = subprocess.run([sys.executable, "-m", "sllmr_tf.bins.prepare", "--dataset=movielens100k",
                          f"--data_dir={tmp_path / 'ml'}", "--test_k=1", "--valid_k=1", "--eval_negatives=1"],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "users              943" in out.stdout and "cold-start users" in out.stdout
    stats = json.loads((tmp_path / "ml" / "stats.json").read_text())
    assert stats["num_interactions"] == 100_000
    bad = subprocess.run([sys.executable, "-m", "sllmr_tf.bins.prepare", "--dataset=movielens100k",
                          f"--raw_dir={tmp_path}", f"--data_dir={tmp_path / 'bad'}"],
                         capture_output=True, text=True)
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines()[-1].endswith("ml-100k.item: file not found")
