"""sllmr-eval: metrics of a trained model_dir on a split, with 95% intervals.

    sllmr-eval --model_dir=DIR --data_dir=DIR [--split=test] [--protocol=sampled|full_ranking]

Prints the segment table and writes the split's block into model_dir/metrics.json
(under <split>_full_ranking for --protocol=full_ranking).
"""
from __future__ import annotations

from typing import Sequence

from sllmr_tf.bins import common, config_flags
from sllmr_tf.training.config import EvalConfig

config_flags.define(EvalConfig)


def main(argv: Sequence[str]) -> None:
    config = config_flags.build(EvalConfig)
    from sllmr_tf.training.prediction import evaluate_run
    from sllmr_tf.training.report import metrics_summary

    print(metrics_summary({config.metrics_key: evaluate_run(config)}))


def run() -> None:
    common.run(main, __name__, __doc__)


if __name__ == "__main__":
    run()
