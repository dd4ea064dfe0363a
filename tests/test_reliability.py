"""The LLM reliability report: on the pairs whose outcome the train data decides, how often the
LLM's order agrees with it, per segment, with a 95% interval clustered by user, judged against
the 50% of a coin flip."""
from __future__ import annotations

import collections
import csv
import glob
import json
import math
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from sllmr_tf import features, segments, shards
from sllmr_tf.bins import score as score_bin
from sllmr_tf.data.dataset_dir import DatasetDir
from sllmr_tf.data.pairs_dir import read_pairs
from sllmr_tf.scoring import pipeline, reliability
from sllmr_tf.scoring.backends import make_backend
from sllmr_tf.scoring.config import ScoreConfig

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The count buckets the report promises, for a user's train positives and a pair's popularity.
COUNT_BUCKETS = ((0, 0, "0"), (1, 2, "1-2"), (3, 5, "3-5"), (6, 10, "6-10"), (11, 20, "11-20"),
                 (21, 50, "21-50"), (51, 100, "51-100"), (101, math.inf, ">100"))


def bucket(count: int) -> str:
    return next(label for low, high, label in COUNT_BUCKETS if low <= count <= high)


def read_jsonl(path: str) -> list[dict]:
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def pairs_one_by_one(pairs_dir: str):
    """Every pair of the dir's pair files, each tf.train.Example parsed on its own."""
    for path in sorted(glob.glob(os.path.join(pairs_dir, "pairs-*.tfrecord.gz"))):
        for batch in tf.data.TFRecordDataset(path, compression_type="GZIP").batch(4096).as_numpy_iterator():
            for record in batch:
                feature = tf.train.Example.FromString(record).features.feature
                yield {name: feature[name].int64_list.value[0] for name in ("user_id", "item_a", "item_b")}


def counted_pair_by_pair(data_dir: str, pairs_dir: str) -> dict[str, dict]:
    """{segment: its pairs, known pairs, agreements and users}, from the users' train items and
    the items' rows, one pair at a time."""
    users = {row["index"]: row for row in read_jsonl(os.path.join(data_dir, "users.jsonl"))}
    items = {row["index"]: row for row in read_jsonl(os.path.join(data_dir, "items.jsonl"))}
    counts = collections.defaultdict(lambda: {"pairs": 0, "known": 0, "agreed": 0, "users": set()})
    for pair in pairs_one_by_one(pairs_dir):
        user, a, b = users[pair["user_id"]], items[pair["item_a"]], items[pair["item_b"]]
        names = ["all pairs", "cold-start users" if user["is_cold"] else "other users",
                 "long-tail pairs" if a["is_longtail"] or b["is_longtail"] else "head pairs",
                 f"popularity {bucket(min(a['popularity'], b['popularity']))}"]
        if user["train_items"]:
            names.append(f"{bucket(len(user['train_items']))} train positives")
        train = set(user["train_items"])
        known = (a["index"] in train) != (b["index"] in train)  # a train positive against an item never had
        for name in names:
            count = counts[name]
            count["pairs"] += 1
            if known:
                count["known"] += 1
                count["agreed"] += a["index"] in train  # the LLM put the train positive first
                count["users"].add(user["index"])
    return counts


@pytest.fixture(scope="module")
def columns(world) -> dict[str, np.ndarray]:
    return read_pairs(world[1])


def width(row: reliability.Row) -> float:
    return row.ci95_high - row.ci95_low


def subset(columns: dict, keep: np.ndarray) -> dict:
    return {name: values[keep] for name, values in columns.items()}


def test_rates_and_counts_match_a_count_pair_by_pair(world):
    data_dir, pairs_dir = world
    rows = reliability.build_report(pairs_dir, data_dir)
    expected = counted_pair_by_pair(data_dir, pairs_dir)
    assert [r.segment for r in rows][:5] == ["all pairs", "cold-start users", "other users", "long-tail pairs",
                                             "head pairs"]
    assert {r.segment for r in rows if r.pairs} == set(expected)
    assert sum(r.known_pairs > 0 for r in rows) >= 12  # the world fills most segments
    for r in rows:
        count = expected.get(r.segment, {"pairs": 0, "known": 0, "agreed": 0, "users": set()})
        assert (r.pairs, r.known_pairs, r.users) == (count["pairs"], count["known"], len(count["users"])), r
        if count["known"]:
            assert r.agreement == pytest.approx(count["agreed"] / count["known"], abs=1e-12), r
        else:
            assert math.isnan(r.agreement) and r.verdict == reliability.TOO_SMALL


def test_the_interval_holds_the_rate_and_agrees_with_a_bootstrap_over_users_at_the_same_level(world, columns):
    rows = reliability.report_rows(columns, DatasetDir(world[0]))
    judged = [r for r in rows if r.verdict != reliability.TOO_SMALL]
    assert len(judged) >= 10
    for r in judged:
        assert r.ci95_low < r.agreement < r.ci95_high, r
    known = columns["outcome"] != features.OUTCOME_UNKNOWN
    _, user = np.unique(columns["user_id"][known], return_inverse=True)
    pairs, agreed = np.bincount(user), np.bincount(user, weights=columns["outcome"][known] == 1)
    draws = np.random.default_rng(0).integers(0, len(pairs), (40000, len(pairs)))
    tail = 100 * (1 - reliability.CONFIDENCE) / (2 * len(rows))  # the report's simultaneous level
    low, high = np.percentile(agreed[draws].sum(1) / pairs[draws].sum(1), [tail, 100 - tail])
    assert width(rows[0]) == pytest.approx(high - low, rel=0.15)


def test_a_users_pairs_repeated_are_no_new_evidence_and_more_users_narrow_the_interval(world, columns):
    dataset = DatasetDir(world[0])
    rows = reliability.report_rows(columns, dataset)
    repeated = reliability.report_rows({name: np.tile(values, 4) for name, values in columns.items()}, dataset)
    for once, four_times in zip(rows, repeated):
        assert four_times.known_pairs == 4 * once.known_pairs and four_times.users == once.users
        if once.verdict != reliability.TOO_SMALL:
            assert four_times.agreement == pytest.approx(once.agreement)
            assert (four_times.ci95_low, four_times.ci95_high) == pytest.approx((once.ci95_low, once.ci95_high))
    half = reliability.report_rows(subset(columns, columns["user_id"] % 2 == 0), dataset)[0]
    assert width(rows[0]) < width(half)


def test_the_verdict_reads_the_interval_against_a_coin_flip(world, columns):
    dataset = DatasetDir(world[0])
    rows = reliability.report_rows(columns, dataset)
    flipped = dict(columns, outcome=np.where(columns["outcome"] == features.OUTCOME_UNKNOWN,
                                             features.OUTCOME_UNKNOWN, 1 - columns["outcome"]))
    reversed_rows = reliability.report_rows(flipped, dataset)
    assert rows[0].verdict == reliability.BETTER  # the world's teacher is right 60-90% of the time
    assert reversed_rows[0].verdict == reliability.WORSE
    for r in rows + reversed_rows:
        if r.verdict != reliability.TOO_SMALL:
            expected = (reliability.BETTER if r.ci95_low > 0.5 else reliability.WORSE if r.ci95_high < 0.5
                        else reliability.NO_BETTER)
            assert r.verdict == expected, r


def test_a_segment_with_too_few_known_pairs_or_one_user_is_not_judged(world, columns):
    dataset = DatasetDir(world[0])
    known = np.flatnonzero(columns["outcome"] != features.OUTCOME_UNKNOWN)
    _, first_of_each_user = np.unique(columns["user_id"][known], return_index=True)
    one_per_user = known[np.sort(first_of_each_user)]
    for n, verdict_is_too_small in ((segments.MIN_JUDGED_PAIRS - 1, True), (segments.MIN_JUDGED_PAIRS, False)):
        row = reliability.report_rows(subset(columns, one_per_user[:n]), dataset)[0]
        assert (row.known_pairs, row.users) == (n, n)
        assert (row.verdict == reliability.TOO_SMALL) is verdict_is_too_small
    busiest = np.bincount(columns["user_id"][known]).argmax()
    alone = reliability.report_rows(subset(columns, columns["user_id"] == busiest), dataset)[0]
    assert alone.known_pairs >= segments.MIN_JUDGED_PAIRS and alone.users == 1
    assert alone.verdict == reliability.TOO_SMALL and math.isnan(alone.ci95_low)


def test_a_pairs_dir_without_known_outcomes_writes_a_report_saying_so(world, tmp_path):
    data_dir, pairs_dir = world
    out = str(tmp_path / "pairs")
    os.makedirs(out)
    for path in glob.glob(os.path.join(pairs_dir, "pairs-*.tfrecord.gz")):
        pairs = {name: values[:100] for name, values in read_pairs(pairs_dir, [path]).items()}
        pairs["outcome"][:] = features.OUTCOME_UNKNOWN
        with shards.ShardWriter(os.path.join(out, os.path.basename(path))) as writer:
            for example in features.iter_examples(pairs, features.PAIR_FEATURES):
                writer.write(features.serialize(example))
    for path in glob.glob(os.path.join(pairs_dir, "summary-*.json")):
        shutil.copy(path, out)
    rows = reliability.build_report(out, data_dir)
    assert rows[0].pairs == 200
    assert all(r.known_pairs == 0 and r.verdict == reliability.TOO_SMALL for r in rows)
    md, table, png = reliability.write_report(rows, out)
    with open(md) as f:
        assert "No pair of the 200 has an outcome the train data decides" in f.read()
    with open(table) as f:
        assert [row["known_pairs"] for row in csv.DictReader(f)] == ["0"] * len(rows)
    with open(png, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def coin_flip_run(world, tmp_path_factory) -> tuple[subprocess.CompletedProcess, str]:
    """sllmr-score with the shipped coin-flip teacher (accuracy 0.5 everywhere) on part of the world."""
    pairs_dir = str(tmp_path_factory.mktemp("coin_flip") / "pairs")
    run = subprocess.run([sys.executable, "-m", "sllmr_tf.bins.score",
                          "--flagfile=flags/score_synthetic_coin_flip.flags", f"--data_dir={world[0]}",
                          f"--pairs_dir={pairs_dir}", "--max_lists=80"],
                         cwd=REPO, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    return run, pairs_dir


@pytest.mark.slow
def test_sllmr_score_writes_and_prints_the_report(coin_flip_run):
    run, pairs_dir = coin_flip_run
    paths = [os.path.join(pairs_dir, "reliability" + ext) for ext in (".md", ".csv", ".png")]
    assert all(os.path.getsize(path) > 0 for path in paths)
    with open(paths[0]) as f:
        assert f.read().strip() in run.stdout


@pytest.mark.slow
def test_a_coin_flip_teacher_is_no_better_than_a_coin_flip(coin_flip_run):
    with open(os.path.join(coin_flip_run[1], "reliability.csv")) as f:
        overall = next(csv.DictReader(f))
    assert overall["segment"] == "all pairs" and int(overall["known_pairs"]) >= segments.MIN_JUDGED_PAIRS
    assert overall["verdict"] == reliability.NO_BETTER


def test_a_sharded_run_writes_the_report_once_its_last_shard_is_scored(world, tmp_path, capsys):
    data_dir = world[0]
    pairs_dir = str(tmp_path / "pairs")
    report = os.path.join(pairs_dir, "reliability.md")
    for shard, last in ((1, False), (0, True)):
        pipeline.score(data_dir, make_backend("simulated", data_dir), pairs_dir,
                       ScoreConfig(max_lists=8, num_orders=1, shard_index=shard, num_shards=2), log=lambda _: None)
        score_bin.report_reliability(pairs_dir, data_dir, DatasetDir(data_dir).num_shards)
        printed = capsys.readouterr().out
        assert os.path.exists(report) is last
        if not last:
            assert printed == ("reliability report: waits for the other shards (data shards [0] of 2 are not "
                               "scored yet; the process that scores the last one writes it)\n")
    with open(report) as f:
        assert f.read().strip() in printed
