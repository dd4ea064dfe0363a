"""What full-ranking evaluation costs: (user, item) pairs scored per second, and what that means
for the paper's largest catalogue.

    python -m sllmr_tf.bench.full_ranking --model_dir=DIR --data_dir=DIR \
        [--chunk_pairs=65536,262144,1048576] [--repeats=3]

For each chunk size it runs the full ranking of the test split (training/full_ranking.py:
scoring every item for every user with a test positive, the exclusions and the exact
per-positive AUCs) `--repeats` times and the segment report once, and prints a Markdown
table: pairs per wall second (median run) and per CPU second of this process, and the time
the same rate gives for Amazon 2014 Sports & Outdoors (35,598 users x 18,357 items). The
extrapolation assumes a cost linear in pairs: per-user sorting grows as items x log(items),
and the scoring share, which dominates, is linear.
"""
from __future__ import annotations

import time
from typing import Sequence

import numpy as np
import tensorflow as tf
from absl import app, flags

from sllmr_tf.data.dataset_dir import DatasetDir
from sllmr_tf.training import artifacts
from sllmr_tf.training.config import RANKING_CHUNK_PAIRS
from sllmr_tf.training.full_ranking import RankedPositives, full_ranking_report, rank_positives

FLAGS = flags.FLAGS
flags.DEFINE_string("model_dir", None, "A finished sllmr-train run.", required=True)
flags.DEFINE_string("data_dir", None, "The prepared dataset it was trained on.", required=True)
flags.DEFINE_list("chunk_pairs", [str(RANKING_CHUNK_PAIRS * 4 ** k) for k in range(3)],
                  "Chunk sizes to time (pairs per forward pass).")
flags.DEFINE_integer("repeats", 3, "Timed runs per chunk size; the median counts.")
flags.DEFINE_integer("num_bootstrap", 200, "Bootstrap resamples of the timed report.")

AMAZON_SPORTS = ("Amazon Sports & Outdoors", 35_598, 18_357)

HEADER = ("| chunk pairs | users x items | pairs scored | wall s (median) | CPU s | pairs / wall s | "
          "pairs / CPU s | report s | Sports & Outdoors wall / CPU |\n"
          "|---:|---:|---:|---:|---:|---:|---:|---:|---:|")


def time_ranking(backbone: tf.keras.Model, data: DatasetDir, chunk_pairs: int,
                 repeats: int) -> tuple[float, float, RankedPositives]:
    """(median wall seconds, median CPU seconds, the last ranking) of `repeats` full rankings of
    test. Each run reads the splits and traces its scorer once, as one sllmr-eval does."""
    rank_positives(backbone, data, "test", chunk_pairs)  # cold file caches are not throughput
    wall, cpu = [], []
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        ranked = rank_positives(backbone, data, "test", chunk_pairs)
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return float(np.median(wall)), float(np.median(cpu)), ranked


def main(argv: Sequence[str]) -> None:
    data = DatasetDir(FLAGS.data_dir)
    backbone = artifacts.load_backbone(FLAGS.model_dir)
    num_items = len(data.items())
    name, sports_users, sports_items = AMAZON_SPORTS
    print(f"{FLAGS.model_dir} ({backbone.name}) on {FLAGS.data_dir}: {len(data.users()):,} users, "
          f"{num_items:,} items; extrapolated to {name}, {sports_users * sports_items:,} pairs")
    print(HEADER, flush=True)
    for chunk_pairs in (int(value) for value in FLAGS.chunk_pairs):
        wall, cpu, ranked = time_ranking(backbone, data, chunk_pairs, FLAGS.repeats)
        start = time.perf_counter()
        report = full_ranking_report(ranked, data, FLAGS.num_bootstrap, seed=0)
        report_seconds = time.perf_counter() - start
        pairs = report["scored_pairs"]
        users = pairs // num_items
        sports = sports_users * sports_items
        print(f"| {chunk_pairs:,} | {users:,} x {num_items:,} | {pairs:,} | {wall:.2f} | {cpu:.2f} | "
              f"{pairs / wall:,.0f} | {pairs / cpu:,.0f} | {report_seconds:.2f} | "
              f"{sports / (pairs / wall) / 60:,.0f} min / {sports / (pairs / cpu) / 60:,.0f} min |", flush=True)


if __name__ == "__main__":
    app.run(main)
