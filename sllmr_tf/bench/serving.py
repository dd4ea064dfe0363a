"""Serving cost of S-LLMR and of kar: the base, sllmr and kar exports of each backbone, side by side.

    python -m sllmr_tf.bench.serving --data_dir=DIR --pairs_dir=DIR --work_dir=DIR \
        [--backbones=dnn,deepfm,...] [--epochs=1] [--requests=1000]

For each backbone it trains (or reuses, in work_dir) a `base`, a `sllmr` and a `kar`
run, exports them with sllmr-export's library, loads the SavedModels in this process
and times `serving_default` on real test examples at batch 1 and 256. The models
are called in turn, in an order that alternates, so load on the machine hits all
alike; a second copy of the base export runs alongside as a control, whose ratio
to base is the noise floor of the measurement (the same graph twice). Prints per
backbone and batch size the p50 and p99 latency and the ratios sllmr / base (goal
1.00 +- 0.05), kar / base (kar's serving graph carries the item knowledge table and
its adapters: this is its cost) and control / base, the SavedModel size ratios
(saved_model.pb + variables/) and the examples/s served at batch 256.
"""
from __future__ import annotations

import os
import time
from typing import Sequence

import numpy as np
from absl import app, flags, logging

import tensorflow as tf

from sllmr_tf import fileio
from sllmr_tf.export import contract
from sllmr_tf.export.config import ExportConfig
from sllmr_tf.export.examples import split_examples
from sllmr_tf.export.exporter import export_run
from sllmr_tf.models.backbones import BACKBONES
from sllmr_tf.training import methods
from sllmr_tf.training.config import TrainConfig
from sllmr_tf.training.trainer import train

FLAGS = flags.FLAGS
flags.DEFINE_string("data_dir", None, "Prepared dataset.", required=True)
flags.DEFINE_string("pairs_dir", None, "LLM pairs of that dataset (sllmr-score).", required=True)
flags.DEFINE_string("work_dir", None, "Runs and exports go here (finished runs are reused).", required=True)
flags.DEFINE_list("backbones", None, "Backbones to measure (default: all).")
flags.DEFINE_integer("epochs", 1, "Training epochs of each run (serving cost does not depend on them).")
flags.DEFINE_integer("batch_size", 1024, "Training batch size.")
flags.DEFINE_integer("requests", 1000, "Timed requests per model and batch size.")
flags.DEFINE_integer("warmup", 20, "Untimed requests per model and batch size first.")

METHODS = ("base", "sllmr", "kar")
COMPARED = ("sllmr", "kar")  # each against base
CONTROL = "base_again"  # the base export loaded a second time
BATCH_SIZES = (1, 256)


def exported(backbone: str, method: str) -> str:
    """A fresh export of a trained run of `backbone` / `method` (trained first unless finished)."""
    model_dir = fileio.join(FLAGS.work_dir, "runs", f"{backbone}_{method}")
    uses_pairs = methods.get_method(method).uses_pairs
    train(TrainConfig(data_dir=FLAGS.data_dir, pairs_dir=FLAGS.pairs_dir if uses_pairs else None,
                      model_dir=model_dir, backbone=backbone, method=method, epochs=FLAGS.epochs,
                      batch_size=FLAGS.batch_size, num_bootstrap=20), verbose=0, log=lambda _: None)
    export_base = fileio.join(FLAGS.work_dir, "exports", f"{backbone}_{method}")
    fileio.rmtree(export_base)  # an export by older code would not measure this code
    return export_run(ExportConfig(model_dir=model_dir, export_base=export_base), log=lambda _: None)


def saved_model_bytes(export_dir: str) -> int:
    """What TF Serving loads: the graph and the variables (not the warmup records or assets)."""
    variables = fileio.join(export_dir, "variables")
    return fileio.size(fileio.join(export_dir, "saved_model.pb")) + sum(
        fileio.size(fileio.join(variables, name)) for name in fileio.listdir(variables))


def latencies(serve: dict, batch: tf.Tensor, requests: int, warmup: int) -> dict[str, np.ndarray]:
    """Seconds per call of each model's serving_default on `batch`; the models are called in
    turn, forwards on even requests and backwards on odd ones."""
    for _ in range(warmup):
        for function in serve.values():
            function(examples=batch)
    seconds = {name: np.empty(requests) for name in serve}
    for i in range(requests):
        for name in (list(serve) if i % 2 == 0 else list(serve)[::-1]):
            start = time.perf_counter()
            serve[name](examples=batch)[contract.PROBABILITY].numpy()
            seconds[name][i] = time.perf_counter() - start
    return seconds


def measure(backbone: str, examples: list[bytes], requests: int, warmup: int) -> list[dict]:
    paths = {method: exported(backbone, method) for method in METHODS}
    serve = {name: tf.saved_model.load(paths[name if name != CONTROL else "base"]).signatures[
        contract.SERVING_DEFAULT] for name in (*METHODS, CONTROL)}
    sizes = {method: saved_model_bytes(paths[method]) for method in METHODS}
    rows = []
    for size in BATCH_SIZES:
        seconds = latencies(serve, tf.constant(examples[:size]), requests, warmup)
        row = {"backbone": backbone, "batch": size, "base_mb": sizes["base"] / 1e6,
               **{f"{method}_size_ratio": sizes[method] / sizes["base"] for method in COMPARED}}
        for name in serve:
            row[f"{name}_p50"], row[f"{name}_p99"] = np.percentile(seconds[name], [50, 99]) * 1e3
            row[f"{name}_examples_per_s"] = size / float(np.mean(seconds[name]))
        rows.append(row)
    return rows


HEADER = ("| backbone | batch | base p50 / p99 ms | sllmr p50 / p99 ms | kar p50 / p99 ms | "
          "sllmr / base p50, p99 (goal 1.00 +- 0.05) | kar / base p50, p99 | control / base p50, p99 | "
          "size ratio sllmr, kar (base MB) | served ex/s, base / sllmr / kar |\n"
          "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")


def format_row(row: dict) -> str:
    served = (" / ".join(f"{row[f'{name}_examples_per_s']:,.0f}" for name in METHODS)
              if row["batch"] == max(BATCH_SIZES) else "")
    latency = " | ".join(f"{row[f'{name}_p50']:.3f} / {row[f'{name}_p99']:.3f}" for name in METHODS)
    ratios = " | ".join(f"{row[f'{name}_p50'] / row['base_p50']:.3f}, {row[f'{name}_p99'] / row['base_p99']:.3f}"
                        for name in (*COMPARED, CONTROL))
    size_ratios = ", ".join(f"{row[f'{name}_size_ratio']:.4f}" for name in COMPARED)
    return (f"| {row['backbone']} | {row['batch']} | {latency} | {ratios} | "
            f"{size_ratios} ({row['base_mb']:.2f}) | {served} |")


def main(argv: Sequence[str]) -> None:
    logging.set_verbosity(logging.WARNING)  # TensorFlow logs every saved function at INFO
    backbones = FLAGS.backbones or list(BACKBONES.names())
    unknown = set(backbones) - set(BACKBONES.names())
    if unknown:
        raise app.UsageError(f"unknown backbones {sorted(unknown)}; known: {', '.join(BACKBONES.names())}")
    examples = split_examples(FLAGS.data_dir, max(BATCH_SIZES))
    print(f"serving_default on {len(examples)} test examples of {FLAGS.data_dir}; {FLAGS.requests} timed requests "
          f"per model and batch size, base, sllmr, kar and the control called in turn; {os.cpu_count()} CPUs")
    print(HEADER, flush=True)
    for backbone in backbones:
        for row in measure(backbone, examples, FLAGS.requests, FLAGS.warmup):
            print(format_row(row), flush=True)


if __name__ == "__main__":
    app.run(main)
