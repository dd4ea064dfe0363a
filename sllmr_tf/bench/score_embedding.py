"""Benchmark: lists/s and pairs/s of the embedding scorer over every user of a dataset.

    python -m sllmr_tf.bins.prepare --dataset=movielens100k --data_dir=DIR
    python -m sllmr_tf.bench.score_embedding --data_dir=DIR [--concurrency=1,4]

Runs the real scoring job (`scoring.pipeline.score`: candidate lists with
targeted augmentation, prompts, the backend, Borda pairs, the pair shard, the
log and a fresh response cache) for all users, once per concurrency setting.
Also times building the backend with an empty item-embedding cache (model load
+ embedding every item) and with a warm one. Goal on MovieLens-100k: all users,
model load included, in < 60 s on 2 cores.
"""
from __future__ import annotations

import os
import shutil
import tempfile
import time
from typing import Sequence

from absl import app, flags

from sllmr_tf.data.dataset_dir import DatasetDir
from sllmr_tf.scoring import pipeline
from sllmr_tf.scoring.config import ScoreConfig
from sllmr_tf.scoring.embedding_backend import EmbeddingBackend

FLAGS = flags.FLAGS
flags.DEFINE_string("data_dir", None, "A prepared dataset (sllmr-prepare).", required=True)
flags.DEFINE_list("concurrency", ["1", "4"], "Pipeline thread counts to time.")
flags.DEFINE_string("work_dir", None, "Scratch folder for caches and pairs (default: a temporary one, removed).")

GOAL_S = 60.0


def timed(fn):
    started = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - started


def main(argv: Sequence[str]) -> None:
    work = FLAGS.work_dir or tempfile.mkdtemp(prefix="sllmr-bench-score-")
    dataset = DatasetDir(FLAGS.data_dir)
    items_cache = os.path.join(work, "item_embeddings")
    shutil.rmtree(items_cache, ignore_errors=True)
    _, cold_s = timed(lambda: EmbeddingBackend(FLAGS.data_dir, cache_dir=items_cache))
    backend, warm_s = timed(lambda: EmbeddingBackend(FLAGS.data_dir, cache_dir=items_cache))
    num_items = dataset.stats["num_items"]
    rows = [(f"build backend, empty item cache ({num_items:,} items embedded)", "-", cold_s, None, None),
            ("build backend, warm item cache", "-", warm_s, None, None)]
    for threads in (int(c) for c in FLAGS.concurrency):
        pairs_dir = os.path.join(work, f"pairs-c{threads}")
        shutil.rmtree(pairs_dir, ignore_errors=True)  # a fresh response cache: every list is asked
        config = ScoreConfig(concurrency=threads, progress_every_s=1e9)
        summary, seconds = timed(lambda: pipeline.score(FLAGS.data_dir, backend, pairs_dir, config,
                                                        log=lambda _: None))
        rows.append(("score all users (pipeline)", threads, seconds, summary["lists"]["scored"],
                     summary["pairs"]["written"]))
    if not FLAGS.work_dir:
        shutil.rmtree(work)

    print(f"\n{dataset.stats['dataset']}: {dataset.stats['num_users']:,} users, {num_items:,} items; "
          f"backend {backend.model} {backend.decoding_params()}")
    print(f"| {'stage':<56} | {'threads':>7} | {'seconds':>8} | {'lists':>6} | {'pairs':>7} "
          f"| {'lists/s':>8} | {'pairs/s':>8} |")
    print(f"|{'-' * 58}|{'-' * 9}|{'-' * 10}|{'-' * 8}|{'-' * 9}|{'-' * 10}|{'-' * 10}|")
    for stage, threads, seconds, lists, pairs in rows:
        rates = (f"{lists / seconds:>8,.0f} | {pairs / seconds:>8,.0f}" if lists is not None
                 else f"{'-':>8} | {'-':>8}")
        print(f"| {stage:<56} | {threads!s:>7} | {seconds:>8.2f} | {lists if lists is not None else '-':>6} "
              f"| {pairs if pairs is not None else '-':>7} | {rates} |")
    best = min(seconds for stage, _, seconds, lists, _ in rows if lists is not None)
    total = cold_s + best
    print(f"all users from scratch (empty item cache + fastest scoring run): {total:.1f} s "
          f"(goal < {GOAL_S:.0f} s: {'met' if total < GOAL_S else 'MISSED'})")


if __name__ == "__main__":
    app.run(main)
