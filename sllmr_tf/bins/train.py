"""sllmr-train: train a backbone with a method on a prepared dataset (+ LLM pairs).

    sllmr-train --data_dir=DIR [--pairs_dir=DIR] --backbone=NAME --method=NAME --model_dir=OUT

A killed run resumes at its last finished epoch when started again with the
same flags; a finished run is not retrained (--overwrite does). The model_dir
layout is described in sllmr_tf/training/artifacts.py.
"""
from __future__ import annotations

from typing import Sequence

from absl import flags

import sllmr_tf  # noqa: F401  (sets the Keras 2 switch before TensorFlow loads)
from sllmr_tf.bins import common
from sllmr_tf.models.registry import backbone_names
from sllmr_tf.training import methods
from sllmr_tf.training.trainer import TrainConfig, train

_DEFAULTS = TrainConfig(data_dir="", model_dir="")
FLAGS = flags.FLAGS
flags.DEFINE_string("data_dir", None, "Prepared dataset directory (sllmr-prepare).", required=True)
flags.DEFINE_string("model_dir", None, "Output directory: checkpoints, logs, metrics.json.", required=True)
flags.DEFINE_string("pairs_dir", None, "LLM pairs (sllmr-score); needed by every method but base.")
flags.DEFINE_enum("backbone", _DEFAULTS.backbone, list(backbone_names()), "CTR backbone.")
flags.DEFINE_enum("method", _DEFAULTS.method, list(methods.method_names()),
                  "base | kd | kd_pointwise | heuristic | sllmr | sllmr_noaug (see training/methods.py).")
flags.DEFINE_integer("seed", _DEFAULTS.seed, "Seed of initialisation, shuffling and the pair join.")
flags.DEFINE_integer("epochs", _DEFAULTS.epochs, "Maximum epochs.")
flags.DEFINE_integer("patience", _DEFAULTS.patience, "Epochs without a better validation AUC before stopping.")
flags.DEFINE_integer("batch_size", _DEFAULTS.batch_size, "Training batch size.")
flags.DEFINE_float("learning_rate", _DEFAULTS.learning_rate, "Adam learning rate.")
flags.DEFINE_float("pair_weight", _DEFAULTS.pair_weight, "lambda: weight of the LLM loss term.")
flags.DEFINE_float("gate_weight", _DEFAULTS.gate_weight, "mu: weight of the gate's reliability loss.")
flags.DEFINE_float("pairs_per_example", _DEFAULTS.pairs_per_example,
                   "LLM pairs joined per training example (a batch of B gets ceil(x * B) pairs; "
                   "one example at most ceil(x)).")
flags.DEFINE_bool("confidence_weighting", _DEFAULTS.confidence_weighting,
                  "Weight each pairwise loss by the LLM's confidence.")
flags.DEFINE_integer("shuffle_buffer", _DEFAULTS.shuffle_buffer, "Examples in the shuffle buffer.")
flags.DEFINE_integer("embedding_dim", _DEFAULTS.embedding_dim, "Embedding size of every feature.")
flags.DEFINE_list("mlp_units", [str(u) for u in _DEFAULTS.mlp_units], "Hidden units of the deep tower.")
flags.DEFINE_float("dropout", _DEFAULTS.dropout, "Dropout rate of the deep tower.")
flags.DEFINE_float("l2", _DEFAULTS.l2, "L2 penalty on embeddings and kernels.")
flags.DEFINE_integer("eval_batch_size", _DEFAULTS.eval_batch_size, "Batch size of validation and test.")
flags.DEFINE_integer("num_bootstrap", _DEFAULTS.num_bootstrap, "Bootstrap resamples of the AUC intervals.")
flags.DEFINE_bool("overwrite", False, "Delete a finished or different run in model_dir and train anew.")
flags.DEFINE_integer("verbose", 2, "Keras fit verbosity: 0 silent, 1 progress bar, 2 one line per epoch.")


def config_from_flags() -> TrainConfig:
    try:
        mlp_units = tuple(int(u) for u in FLAGS.mlp_units)
    except ValueError:
        raise ValueError(f"--mlp_units must be integers, got {','.join(FLAGS.mlp_units)}") from None
    return TrainConfig(
        data_dir=FLAGS.data_dir, model_dir=FLAGS.model_dir, backbone=FLAGS.backbone, method=FLAGS.method,
        pairs_dir=FLAGS.pairs_dir, seed=FLAGS.seed, epochs=FLAGS.epochs, patience=FLAGS.patience,
        batch_size=FLAGS.batch_size, learning_rate=FLAGS.learning_rate, pair_weight=FLAGS.pair_weight,
        gate_weight=FLAGS.gate_weight, pairs_per_example=FLAGS.pairs_per_example,
        confidence_weighting=FLAGS.confidence_weighting, shuffle_buffer=FLAGS.shuffle_buffer,
        embedding_dim=FLAGS.embedding_dim, mlp_units=mlp_units, dropout=FLAGS.dropout, l2=FLAGS.l2,
        eval_batch_size=FLAGS.eval_batch_size, num_bootstrap=FLAGS.num_bootstrap)


def main(argv: Sequence[str]) -> None:
    train(config_from_flags(), overwrite=FLAGS.overwrite, verbose=FLAGS.verbose)


def run() -> None:
    common.run(main)


if __name__ == "__main__":
    run()
