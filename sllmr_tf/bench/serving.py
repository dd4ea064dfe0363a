"""Serving cost of S-LLMR: the base and the sllmr export of each backbone, side by side.

    python -m sllmr_tf.bench.serving --data_dir=DIR --pairs_dir=DIR --work_dir=DIR \
        [--backbones=dnn,deepfm,...] [--epochs=1] [--requests=1000]

For each backbone it trains (or reuses, in work_dir) a `base` and a `sllmr` run,
exports both with sllmr-export's library, loads both SavedModels in this process
and times `serving_default` on real test examples at batch 1 and 256. The models
are called in turn, in an order that alternates, so load on the machine hits all
alike; a second copy of the base export runs alongside as a control, whose ratio
to base is the noise floor of the measurement (the same graph twice). Prints per
backbone and batch size the p50 and p99 latency and the ratios sllmr / base (goal
1.00 +- 0.05) and control / base, the SavedModel size ratio (saved_model.pb +
variables/) and the examples/s served at batch 256.
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

METHODS = ("base", "sllmr")
CONTROL = "base_again"  # the base export loaded a second time
BATCH_SIZES = (1, 256)


def exported(backbone: str, method: str) -> str:
    """A fresh export of a trained run of `backbone` / `method` (trained first unless finished)."""
    model_dir = fileio.join(FLAGS.work_dir, "runs", f"{backbone}_{method}")
    train(TrainConfig(data_dir=FLAGS.data_dir, pairs_dir=FLAGS.pairs_dir if method != "base" else None,
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
    size_ratio = saved_model_bytes(paths["sllmr"]) / saved_model_bytes(paths["base"])
    rows = []
    for size in BATCH_SIZES:
        seconds = latencies(serve, tf.constant(examples[:size]), requests, warmup)
        row = {"backbone": backbone, "batch": size, "size_ratio": size_ratio,
               "base_mb": saved_model_bytes(paths["base"]) / 1e6}
        for name in serve:
            row[f"{name}_p50"], row[f"{name}_p99"] = np.percentile(seconds[name], [50, 99]) * 1e3
            row[f"{name}_examples_per_s"] = size / float(np.mean(seconds[name]))
        rows.append(row)
    return rows


HEADER = ("| backbone | batch | base p50 / p99 ms | sllmr p50 / p99 ms | sllmr / base p50, p99 (goal 1.00 +- 0.05) | "
          "control / base p50, p99 | size ratio (base MB) | served ex/s, base / sllmr |\n"
          "|---|---:|---:|---:|---:|---:|---:|---:|")


def format_row(row: dict) -> str:
    served = (f"{row['base_examples_per_s']:,.0f} / {row['sllmr_examples_per_s']:,.0f}"
              if row["batch"] == max(BATCH_SIZES) else "")
    ratios = {name: f"{row[f'{name}_p50'] / row['base_p50']:.3f}, {row[f'{name}_p99'] / row['base_p99']:.3f}"
              for name in ("sllmr", CONTROL)}
    return (f"| {row['backbone']} | {row['batch']} | {row['base_p50']:.3f} / {row['base_p99']:.3f} | "
            f"{row['sllmr_p50']:.3f} / {row['sllmr_p99']:.3f} | {ratios['sllmr']} | {ratios[CONTROL]} | "
            f"{row['size_ratio']:.4f} ({row['base_mb']:.2f}) | {served} |")


def main(argv: Sequence[str]) -> None:
    logging.set_verbosity(logging.WARNING)  # TensorFlow logs every saved function at INFO
    backbones = FLAGS.backbones or list(BACKBONES.names())
    unknown = set(backbones) - set(BACKBONES.names())
    if unknown:
        raise app.UsageError(f"unknown backbones {sorted(unknown)}; known: {', '.join(BACKBONES.names())}")
    examples = split_examples(FLAGS.data_dir, max(BATCH_SIZES))
    print(f"serving_default on {len(examples)} test examples of {FLAGS.data_dir}; {FLAGS.requests} timed requests "
          f"per model and batch size, base, sllmr and the control called in turn; {os.cpu_count()} CPUs")
    print(HEADER, flush=True)
    for backbone in backbones:
        for row in measure(backbone, examples, FLAGS.requests, FLAGS.warmup):
            print(format_row(row), flush=True)


if __name__ == "__main__":
    app.run(main)
