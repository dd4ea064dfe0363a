"""Scale-out figures: pairs-table memory per worker and training speed with 1 and 2 workers.

    python -m sllmr_tf.bench.multiworker --data_dir=DIR --pairs_dir=DIR [--workers=1,2] [--epochs=3]

Memory: each worker's `load_pairs_table` (the pairs of its data shards) and the bytes of its
arrays, per pair and for the user table every worker holds whole. Speed: real `sllmr-train`
processes (`--strategy=multi_worker` on 127.0.0.1 for more than one worker), `sllmr` on
DeepFM; examples/s is the train split over the median epoch wall time after the first epoch
(which traces and sets up the collectives), as Keras logs it. On a 2-core machine two workers
share the cores, so the figure records the overhead, not a speed-up.
"""
from __future__ import annotations

import os
import re
import statistics
import subprocess
import sys
import tempfile
from typing import Sequence

from absl import app, flags

FLAGS = flags.FLAGS
flags.DEFINE_string("data_dir", None, "Prepared dataset (sllmr-prepare).", required=True)
flags.DEFINE_string("pairs_dir", None, "Its LLM pairs (sllmr-score).", required=True)
flags.DEFINE_list("workers", ["1", "2"], "Worker counts to measure.")
flags.DEFINE_integer("epochs", 3, "Epochs per training run (the first is not timed).")
flags.DEFINE_integer("batch_size", 128, "Per-replica batch size.")


def _nbytes(arrays: dict) -> int:
    return sum(_nbytes(v) if isinstance(v, dict) else v.nbytes for v in arrays.values())


def memory_rows(data_dir: str, pairs_dir: str, worker_counts: Sequence[int]) -> list[str]:
    from sllmr_tf.data.dataset_dir import DatasetDir
    from sllmr_tf.training.pairs_table import load_pairs_table

    data = DatasetDir(data_dir)
    rows = []
    for workers in worker_counts:
        for k in range(workers):
            table = load_pairs_table(pairs_dir, data, worker_index=k, num_workers=workers)
            pair_bytes = _nbytes(table.columns) + _nbytes(table.sides)
            rows.append(f"| {workers} | {k} | {len(table):,} | {pair_bytes:,} | {pair_bytes / len(table):.0f} | "
                        f"{_nbytes(table.users):,} |")
    return rows


def train_examples_per_s(data_dir: str, pairs_dir: str, workers: int, epochs: int, batch_size: int) -> float:
    """Train examples / median epoch seconds after the first, from the chief's Keras log."""
    from sllmr_tf.data.dataset_dir import DatasetDir
    from sllmr_tf.training import distribution

    with tempfile.TemporaryDirectory() as work:
        args = [sys.executable, "-m", "sllmr_tf.bins.train", f"--data_dir={data_dir}", f"--pairs_dir={pairs_dir}",
                "--backbone=deepfm", "--method=sllmr", f"--model_dir={work}/model", f"--epochs={epochs}",
                f"--patience={epochs}", f"--batch_size={batch_size}", "--num_bootstrap=5"]
        cluster = distribution.local_cluster(workers)
        procs = []
        for k in range(workers):
            env = dict(os.environ)
            if workers > 1:
                env[distribution.TF_CONFIG] = distribution.tf_config(cluster, k)
            procs.append(subprocess.Popen(args + (["--strategy=multi_worker"] if workers > 1 else []), env=env,
                                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
        logs = [p.communicate()[0] for p in procs]
        for p, log in zip(procs, logs):
            if p.returncode:
                raise RuntimeError(f"sllmr-train exited {p.returncode}:\n{log[-3000:]}")
    seconds = [float(s) for s in re.findall(r"\d+/\d+ - (\d+)s - ", logs[0])]
    if len(seconds) < 2:
        raise RuntimeError(f"no timed epoch in the log:\n{logs[0][-3000:]}")
    return DatasetDir(data_dir).stats["splits"]["train"]["examples"] / statistics.median(seconds[1:])


def main(argv: Sequence[str]) -> None:
    counts = [int(w) for w in FLAGS.workers]
    print("Pairs table per worker\n")
    print("| workers | worker | pairs | pair bytes | bytes/pair | user table bytes (every worker) |")
    print("|---:|---:|---:|---:|---:|---:|")
    print("\n".join(memory_rows(FLAGS.data_dir, FLAGS.pairs_dir, counts)))
    print("\nTraining speed (sllmr, DeepFM; the first epoch not timed)\n")
    print("| workers | train examples/s (all workers together) |")
    print("|---:|---:|")
    for workers in counts:
        rate = train_examples_per_s(FLAGS.data_dir, FLAGS.pairs_dir, workers, FLAGS.epochs, FLAGS.batch_size)
        print(f"| {workers} | {rate:,.0f} |", flush=True)


if __name__ == "__main__":
    app.run(main)
