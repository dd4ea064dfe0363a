"""sllmr-train: train a backbone with a method on a prepared dataset (+ LLM pairs).

    sllmr-train --data_dir=DIR [--pairs_dir=DIR] --backbone=NAME --method=NAME --model_dir=OUT

A killed run resumes at its last finished epoch when started again with the
same flags; a finished run is not retrained (--overwrite does). The model_dir
layout is described in sllmr_tf/training/artifacts.py.
"""
from __future__ import annotations

from typing import Sequence

from absl import flags

from sllmr_tf.bins import common, config_flags
from sllmr_tf.training.config import TrainConfig

FLAGS = flags.FLAGS
config_flags.define(TrainConfig)
flags.DEFINE_bool("overwrite", False, "Delete a finished or different run in model_dir and train anew.")
flags.DEFINE_integer("verbose", 2, "Keras fit verbosity: 0 silent, 1 progress bar, 2 one line per epoch.")


def main(argv: Sequence[str]) -> None:
    config = config_flags.build(TrainConfig)
    config.validate()  # bad settings are refused before TensorFlow loads
    from sllmr_tf.training.trainer import train

    train(config, overwrite=FLAGS.overwrite, verbose=FLAGS.verbose)


def run() -> None:
    common.run(main, __name__, __doc__)


if __name__ == "__main__":
    run()
