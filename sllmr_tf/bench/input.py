"""Benchmark: examples/s of `prepare` and of the tf.data reader on MovieLens-100k.

    python -m sllmr_tf.bench.input [--data_dir=DIR] [--repeats=3]

Prepares the bundled MovieLens-100k into a temporary folder (timing prepare),
then reads the train split with several interleave settings and batch sizes
and prints a table (median of --repeats passes).
"""
from __future__ import annotations

import statistics
import tempfile
import time
from typing import Sequence

from absl import app, flags

from sllmr_tf.data import dataset_dir, pipeline
from sllmr_tf.data import prepare as prepare_lib
from sllmr_tf.data.config import PrepareConfig
from sllmr_tf.data.readers import open_source

FLAGS = flags.FLAGS
flags.DEFINE_string("data_dir", None, "A prepared dataset to read (default: prepare one now).")
flags.DEFINE_integer("repeats", 3, "Passes per setting; the median is printed.")


def time_prepare(data_dir: str) -> tuple[float, int]:
    config = PrepareConfig(dataset="movielens100k", cold_user_fraction=0.3)
    started = time.perf_counter()
    stats = prepare_lib.prepare(config, open_source(config), data_dir, log=lambda _: None)
    examples = sum(split["examples"] for split in stats["splits"].values())
    return time.perf_counter() - started, examples


def time_reader(data_dir: str, batch_size: int, cycle_length: int) -> float:
    dataset = pipeline.make_dataset(data_dir, "train", batch_size, cycle_length=cycle_length,
                                    deterministic=cycle_length == 1)
    started, count = time.perf_counter(), 0
    for batch in dataset:
        count += int(batch["label"].shape[0])
    return count / (time.perf_counter() - started)


def main(argv: Sequence[str]) -> None:
    rows = []
    data_dir = FLAGS.data_dir
    if data_dir is None:
        data_dir = tempfile.mkdtemp(prefix="sllmr-bench-") + "/ml100k"
        seconds, examples = time_prepare(data_dir)
        rows.append(("prepare (read + split + write, all splits)", "-", "-", f"{examples / seconds:,.0f}"))
    train_examples = dataset_dir.DatasetDir(data_dir).stats["splits"]["train"]["examples"]
    for batch_size in (1024, 4096):
        for cycle_length in (1, 2, 4):
            rates = [time_reader(data_dir, batch_size, cycle_length) for _ in range(FLAGS.repeats)]
            rows.append(("tf.data reader, train split", batch_size, cycle_length,
                         f"{statistics.median(rates):,.0f}"))
    print(f"\ntrain split: {train_examples:,} examples, {len(dataset_dir.DatasetDir(data_dir).shards('train'))} shards")
    print(f"| {'stage':<44} | {'batch':>5} | {'cycle':>5} | {'examples/s':>12} |")
    print(f"|{'-' * 46}|{'-' * 7}|{'-' * 7}|{'-' * 14}|")
    for stage, batch, cycle, rate in rows:
        print(f"| {stage:<44} | {batch!s:>5} | {cycle!s:>5} | {rate:>12} |")


if __name__ == "__main__":
    app.run(main)
