"""Tiny but valid data is prepared; data too small to split is refused, saying what is missing."""
from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys

import pytest

from conftest import prepare_dataset
from sllmr_tf.data.dataset_dir import DatasetDir
from sllmr_tf.errors import DataError

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def write_csv(raw_dir, events_per_user: int, users: int = 6, rating: float = 5.0) -> str:
    """users x events_per_user interactions, each user on their own items, increasing times."""
    os.makedirs(raw_dir, exist_ok=True)
    rows = ["user_id,item_id,rating,timestamp"]
    for u in range(users):
        for k in range(events_per_user):
            rows.append(f"u{u},i{(u * 3 + k) % 12},{rating},{1_000 + 10 * u + k}")
    with open(os.path.join(raw_dir, "interactions.csv"), "w") as f:
        f.write("\n".join(rows) + "\n")
    return str(raw_dir)


def write_amazon2018_one_review_per_user(raw_dir) -> None:
    """20 reviews by 20 different users, as a UTF-8 BOM + CRLF file (how some exports arrive)."""
    os.makedirs(raw_dir, exist_ok=True)
    reviews = [json.dumps({"overall": 5.0, "reviewerID": f"A{k:03d}", "asin": f"B{k % 7:03d}",
                           "unixReviewTime": 1_400_000_000 + k}) for k in range(20)]
    meta = [json.dumps({"asin": f"B{k:03d}", "title": f"Toy {k}", "category": ["Toys & Games", "Puzzles"],
                        "brand": "Acme"}) for k in range(7)]
    for name, lines in (("Toys_and_Games_5.json.gz", reviews), ("meta_Toys_and_Games.json.gz", meta)):
        with gzip.open(os.path.join(raw_dir, name), "wb") as f:
            f.write(b"\xef\xbb\xbf" + "\r\n".join(lines).encode() + b"\r\n")


def test_a_tiny_dataset_is_prepared_with_every_split(tmp_path):
    raw = write_csv(tmp_path / "raw", events_per_user=4)
    stats = prepare_dataset(str(tmp_path / "data"), dataset="csv", raw_dir=raw, num_shards=2)
    assert stats["num_interactions"] == 24
    for split in ("train", "valid", "test"):
        assert stats["splits"][split]["positives"] > 0
        assert len(DatasetDir(str(tmp_path / "data")).shards(split)) == 2


def test_one_interaction_per_user_is_refused_naming_what_leave_last_out_needs(tmp_path):
    with pytest.raises(DataError, match=r"the valid split has 0 positive and 0 negative examples: no user has "
                                        r"more than 1 interaction \(6 users\): leave-last-out needs users with "
                                        r"at least 2"):
        prepare_dataset(str(tmp_path / "data"), dataset="csv", raw_dir=write_csv(tmp_path / "raw", 1))
    assert not os.path.exists(tmp_path / "data")


def test_two_interactions_per_user_leave_no_valid_event_and_say_so(tmp_path):
    with pytest.raises(DataError, match="the valid split has 0 positive.*no user has more than 2 interactions"):
        prepare_dataset(str(tmp_path / "data"), dataset="csv", raw_dir=write_csv(tmp_path / "raw", 2))


def test_no_positive_rating_is_refused_naming_the_threshold(tmp_path):
    raw = write_csv(tmp_path / "raw", events_per_user=4, rating=2.0)
    with pytest.raises(DataError, match=r"the train split has 0 positive.*rating >= 4 .*--positive_threshold"):
        prepare_dataset(str(tmp_path / "data"), dataset="csv", raw_dir=raw)


@pytest.mark.slow
def test_the_binary_refuses_a_bom_crlf_amazon_file_of_one_review_per_user_in_one_line(tmp_path):
    raw = tmp_path / "amazon"
    write_amazon2018_one_review_per_user(raw)
    result = subprocess.run([sys.executable, "-m", "sllmr_tf.bins.prepare", "--dataset=amazon2018",
                             f"--raw_dir={raw}", f"--data_dir={tmp_path / 'data'}", "--test_k=1", "--valid_k=1"],
                            cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("sllmr-prepare: error: amazon2018: the valid split has 0 positive")
    assert "no user has more than 1 interaction (20 users)" in lines[-1]
    assert "Traceback" not in result.stderr
    assert sorted(os.listdir(tmp_path)) == ["amazon"]  # nothing half-written is left
