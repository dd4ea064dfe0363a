"""sllmr-main: the main job. Does S-LLMR help on this data, and where?

    sllmr-main [--work_dir=work_dir/demo] [--methods=base,kd,sllmr] [--backbones=deepfm] [--seeds=3]
               [--prepare_flagfile=F --score_flagfile=F --train_flagfile=F]

prepare -> score (with the LLM reliability report) -> train and evaluate each
method -> export the S-LLMR run where it beats base on validation (else base's)
-> a closing table of every method against base with intervals, and a plain
verdict. With no flags: the bundled MovieLens-100k, the bundled MiniLM scorer,
DeepFM. A rerun reuses every finished stage and says so. Stage by stage,
sllmr_tf/experiments/main_job.py.
"""
from __future__ import annotations

from typing import Sequence

from sllmr_tf.bins import common, config_flags
from sllmr_tf.experiments.config import MainJobConfig

config_flags.define(MainJobConfig)


def main(argv: Sequence[str]) -> None:
    config = config_flags.build(MainJobConfig)
    config.validate()
    from sllmr_tf.experiments.main_job import run_main_job

    run_main_job(config)


def run() -> None:
    common.run(main, __name__, __doc__)


if __name__ == "__main__":
    run()
