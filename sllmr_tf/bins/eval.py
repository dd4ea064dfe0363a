"""sllmr-eval: metrics of a trained model_dir on a split, with 95% intervals.

    sllmr-eval --model_dir=DIR --data_dir=DIR [--split=test]

Prints the segment table and writes the split's block into model_dir/metrics.json.
"""
from __future__ import annotations

from typing import Sequence

from absl import flags

import sllmr_tf  # noqa: F401  (sets the Keras 2 switch before TensorFlow loads)
from sllmr_tf import features
from sllmr_tf.bins import common
from sllmr_tf.data.dataset_dir import DatasetDir
from sllmr_tf.training import artifacts
from sllmr_tf.training.prediction import evaluate_split
from sllmr_tf.training.trainer import metrics_summary

FLAGS = flags.FLAGS
flags.DEFINE_string("model_dir", None, "A finished sllmr-train model_dir.", required=True)
flags.DEFINE_string("data_dir", None, "Prepared dataset directory to evaluate on.", required=True)
flags.DEFINE_enum("split", "test", ["valid", "test", "train"], "Split to evaluate.")
flags.DEFINE_integer("batch_size", 4096, "Prediction batch size.")
flags.DEFINE_integer("num_bootstrap", 200, "Bootstrap resamples of the AUC intervals.")
flags.DEFINE_integer("seed", 0, "Seed of the bootstrap.")


def evaluate_model_dir(model_dir: str, data_dir: str, split: str, batch_size: int, num_bootstrap: int,
                       seed: int) -> dict:
    """Evaluate and record the split in metrics.json; returns the split's block."""
    data = DatasetDir(data_dir)
    backbone_json = artifacts.read_json(artifacts.path(model_dir, artifacts.BACKBONE_JSON)) or {}
    trained_on = backbone_json.get("vocab_sizes")
    if trained_on is not None and trained_on != features.vocab_sizes(data.stats):
        raise ValueError(f"{data_dir}: vocabulary sizes {features.vocab_sizes(data.stats)} differ from the "
                         f"ones {model_dir} was trained with {trained_on}")
    backbone = artifacts.load_backbone(model_dir)
    block = evaluate_split(backbone, data_dir, split, batch_size, num_bootstrap, seed)
    metrics_path = artifacts.path(model_dir, artifacts.METRICS)
    metrics = artifacts.read_json(metrics_path) or {}
    metrics[split] = block
    artifacts.write_json(metrics_path, metrics)
    return block


def main(argv: Sequence[str]) -> None:
    block = evaluate_model_dir(FLAGS.model_dir, FLAGS.data_dir, FLAGS.split, FLAGS.batch_size,
                               FLAGS.num_bootstrap, FLAGS.seed)
    print(metrics_summary({FLAGS.split: block}))


def run() -> None:
    common.run(main)


if __name__ == "__main__":
    run()
