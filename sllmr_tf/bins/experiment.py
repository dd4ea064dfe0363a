"""sllmr-experiment: train backbones x methods x seeds on one dataset and tabulate the results.

    sllmr-experiment --data_dir=DIR --pairs_dir=DIR --backbones=deepfm,din --methods=base,kd,sllmr \
                     --seeds=3 --work_dir=OUT

Each run lives in OUT/runs/<backbone>/<method>/seed<k> and is resumable (a
finished run is not retrained), so a killed experiment continues where it
stopped. Results go to OUT/results.{md,csv,png}.
"""
from __future__ import annotations

import os
from typing import Sequence

from absl import flags

import sllmr_tf  # noqa: F401  (sets the Keras 2 switch before TensorFlow loads)
from sllmr_tf.bins import common
from sllmr_tf.experiments import results
from sllmr_tf.training import methods
from sllmr_tf.training.trainer import TrainConfig, train

FLAGS = flags.FLAGS
flags.DEFINE_string("data_dir", None, "Prepared dataset directory.", required=True)
flags.DEFINE_string("pairs_dir", None, "LLM pairs (sllmr-score); needed by every method but base.")
flags.DEFINE_string("work_dir", None, "Output: runs/ and results.{md,csv,png}.", required=True)
flags.DEFINE_list("backbones", ["deepfm"], "Backbones to train.")
flags.DEFINE_list("methods", ["base", "kd", "heuristic", "sllmr"], "Methods to train.")
flags.DEFINE_integer("seeds", 3, "Seeds 0..seeds-1 per backbone and method.")
flags.DEFINE_integer("epochs", 20, "Maximum epochs per run (early stopping on validation AUC).")
flags.DEFINE_integer("batch_size", 128, "Training batch size.")
flags.DEFINE_float("pair_weight", TrainConfig.pair_weight, "lambda: weight of the LLM loss term.")
flags.DEFINE_float("pairs_per_example", TrainConfig.pairs_per_example, "LLM pairs joined per training example.")


def main(argv: Sequence[str]) -> None:
    unknown = sorted(set(FLAGS.methods) - set(methods.method_names()))
    if unknown:
        raise ValueError(f"unknown method(s) {unknown}; known: {', '.join(methods.method_names())}")
    runs = [(b, m, s) for b in FLAGS.backbones for m in FLAGS.methods for s in range(FLAGS.seeds)]
    for k, (backbone, method, seed) in enumerate(runs, start=1):
        print(f"[{k}/{len(runs)}] {backbone} / {method} / seed {seed}", flush=True)
        # Pair settings only where pairs are used: a base run is then the same run in every
        # experiment on the same data, and its directory can be shared between them.
        pair_settings = dict(pairs_dir=FLAGS.pairs_dir, pair_weight=FLAGS.pair_weight,
                             pairs_per_example=FLAGS.pairs_per_example) if methods.get_method(method).uses_pairs else {}
        config = TrainConfig(
            data_dir=FLAGS.data_dir, model_dir=os.path.join(FLAGS.work_dir, "runs", backbone, method, f"seed{seed}"),
            backbone=backbone, method=method, seed=seed, epochs=FLAGS.epochs, batch_size=FLAGS.batch_size,
            **pair_settings)
        train(config, verbose=0, log=lambda line: None)
    summary = results.summarize(results.collect(os.path.join(FLAGS.work_dir, "runs")))
    paths = results.write(summary, FLAGS.work_dir)
    print(results.to_markdown(summary))
    print("wrote " + ", ".join(paths))


def run() -> None:
    common.run(main)


if __name__ == "__main__":
    run()
