"""Training throughput per backbone: base vs sllmr, and the input pipeline vs training.

    python -m sllmr_tf.bench.train_throughput --data_dir=DIR --pairs_dir=DIR \
        [--backbones=dnn,deepfm,...] [--batch_size=1024] [--steps=40]

For each backbone it times `--steps` training steps (after `--warmup` steps
that absorb tracing) of the `base` and the `sllmr` method on the same prepared
data, alternating the two `--repeats` times (wall: the median step; CPU time: the
median run), and the input pipeline of each alone (read + parse + join, no model).
Goals: sllmr / base time per example <= 1.3; input pipeline >= 5x training.
Prints a Markdown table (examples/s) and optionally writes it as JSON.
"""
from __future__ import annotations

import json
import time

import numpy as np
from typing import Sequence

from absl import app, flags

import tensorflow as tf

from sllmr_tf import features
from sllmr_tf.bench.timing import StepTimes
from sllmr_tf.data.dataset_dir import DatasetDir
from sllmr_tf.models.backbones import BACKBONES
from sllmr_tf.models.build import build_backbone
from sllmr_tf.models.config import BackboneConfig
from sllmr_tf.training import methods
from sllmr_tf.training.inputs import training_batches
from sllmr_tf.training.model import TrainingModel
from sllmr_tf.training.pairs_table import load_pairs_table
from sllmr_tf.training.config import TrainConfig

FLAGS = flags.FLAGS
flags.DEFINE_string("data_dir", None, "Prepared dataset.", required=True)
flags.DEFINE_string("pairs_dir", None, "LLM pairs of that dataset (sllmr-score).", required=True)
flags.DEFINE_list("backbones", None, "Backbones to time (default: all).")
flags.DEFINE_integer("batch_size", 1024, "Training batch size.")
flags.DEFINE_integer("steps", 20, "Timed training steps per run.")
flags.DEFINE_integer("warmup", 5, "Untimed steps first (tracing, caches).")
flags.DEFINE_integer("repeats", 3, "Alternating timed runs per method; the median counts.")
flags.DEFINE_integer("input_batches", 200, "Batches read to time the input pipeline alone.")
flags.DEFINE_float("pairs_per_example", TrainConfig.pairs_per_example, "As sllmr-train's flag.")
flags.DEFINE_string("output_json", None, "Also write the rows here.")

METHODS = ("base", "sllmr")


def input_examples_per_s(dataset: tf.data.Dataset, batches: int) -> float:
    """Examples over the median time between two batches, as training steps are timed."""
    iterator = iter(dataset)
    next(iterator)  # start-up (threads, first shard open) is not throughput
    sizes, seconds, last = [], [], time.perf_counter()
    for _ in range(batches):
        x, _ = next(iterator)
        now = time.perf_counter()
        sizes.append(int(x["user_id"].shape[0]))
        seconds.append(now - last)
        last = now
    return float(np.median(sizes)) / float(np.median(seconds))


def compiled_model(backbone_name: str, method: str, vocab: dict) -> TrainingModel:
    tf.keras.utils.set_random_seed(0)
    model = TrainingModel(build_backbone(backbone_name, vocab, BackboneConfig()), methods.get_method(method))
    model.compile(optimizer=tf.keras.optimizers.Adam(1e-3))
    return model


def train_examples_per_s(models: dict, datasets: dict, batch_size: int, steps: int, warmup: int,
                         repeats: int) -> dict[str, tuple[float, float]]:
    """(examples per wall second, per CPU second of this process) of each method: the median
    step over `repeats` alternating timed runs, and the median run's CPU time, so load on a
    shared machine hits both methods alike. CPU time is the steadier cost measure where other
    processes compete for the cores."""
    for method, model in models.items():
        model.fit(datasets[method], steps_per_epoch=warmup, epochs=1, verbose=0)
    step_seconds: dict[str, list[float]] = {method: [] for method in models}
    cpu: dict[str, list[float]] = {method: [] for method in models}
    for _ in range(repeats):
        for method, model in models.items():
            timer, start_cpu = StepTimes(), time.process_time()
            model.fit(datasets[method], steps_per_epoch=steps, epochs=1, verbose=0, callbacks=[timer])
            step_seconds[method] += timer.seconds
            cpu[method].append(time.process_time() - start_cpu)
    return {m: (batch_size / float(np.median(step_seconds[m])), steps * batch_size / float(np.median(cpu[m])))
            for m in models}


def measure(data_dir: str, pairs_dir: str, backbones: Sequence[str], batch_size: int, steps: int, warmup: int,
            repeats: int, input_batches: int, pairs_per_example: float) -> list[dict]:
    data = DatasetDir(data_dir)
    vocab = features.vocab_sizes(data.stats)
    table = load_pairs_table(pairs_dir, data)
    datasets = {
        method: training_batches(data_dir, batch_size, seed=0, table=table if method != "base" else None,
                                 pairs_per_example=pairs_per_example).repeat()
        for method in METHODS
    }
    pipeline = {method: input_examples_per_s(ds, input_batches) for method, ds in datasets.items()}
    rows = []
    for name in backbones:
        row = {"backbone": name, "batch_size": batch_size}
        models = {method: compiled_model(name, method, vocab) for method in METHODS}
        speed = train_examples_per_s(models, datasets, batch_size, steps, warmup, repeats)
        for method in METHODS:
            row[f"{method}_train"], row[f"{method}_train_per_cpu_s"] = speed[method]
            row[f"{method}_input"] = pipeline[method]
        row["sllmr_cost_ratio"] = row["base_train"] / row["sllmr_train"]
        row["sllmr_cpu_cost_ratio"] = row["base_train_per_cpu_s"] / row["sllmr_train_per_cpu_s"]
        row["input_over_train_sllmr"] = row["sllmr_input"] / row["sllmr_train"]
        rows.append(row)
        print(format_row(row), flush=True)
    return rows


HEADER = ("| backbone | base ex/s | sllmr ex/s | sllmr cost ratio, wall / CPU (goal <= 1.3) | "
          "input ex/s (base / sllmr) | input / sllmr training (goal >= 5) |\n"
          "|---|---:|---:|---:|---:|---:|")


def format_row(row: dict) -> str:
    return (f"| {row['backbone']} | {row['base_train']:,.0f} | {row['sllmr_train']:,.0f} | "
            f"{row['sllmr_cost_ratio']:.2f} / {row['sllmr_cpu_cost_ratio']:.2f} | "
            f"{row['base_input']:,.0f} / {row['sllmr_input']:,.0f} | {row['input_over_train_sllmr']:.1f} |")


def main(argv: Sequence[str]) -> None:
    backbones = FLAGS.backbones or list(BACKBONES.names())
    unknown = set(backbones) - set(BACKBONES.names())
    if unknown:
        raise app.UsageError(f"unknown backbones {sorted(unknown)}; known: {', '.join(BACKBONES.names())}")
    print(f"batch {FLAGS.batch_size}, {FLAGS.steps} timed steps, pairs_per_example {FLAGS.pairs_per_example}, "
          f"{tf.config.threading.get_inter_op_parallelism_threads() or 'auto'} inter-op threads")
    print(HEADER, flush=True)
    rows = measure(FLAGS.data_dir, FLAGS.pairs_dir, backbones, FLAGS.batch_size, FLAGS.steps, FLAGS.warmup,
                   FLAGS.repeats, FLAGS.input_batches, FLAGS.pairs_per_example)
    if FLAGS.output_json:
        with open(FLAGS.output_json, "w") as f:
            json.dump(rows, f, indent=2)


if __name__ == "__main__":
    app.run(main)
