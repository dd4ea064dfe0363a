"""sllmr-prepare: raw interactions + item metadata -> a prepared dataset directory.

    sllmr-prepare --dataset=movielens100k|amazon2014|amazon2018|amazon2023|csv|synthetic \\
                  [--raw_dir=DIR] --data_dir=OUT [--num_shards=N] [--on_bad_record=error|skip] \\
                  [--runner=local|DataflowRunner|FlinkRunner|SparkRunner|PortableRunner] \\
                  [--direct_num_workers=N] [-- BEAM PIPELINE OPTIONS]

An Apache Beam pipeline: in this process by default, in N local worker
processes with --direct_num_workers (0: one per core), or on a cluster with
--runner and the runner's own options after `--` (README: Dataflow, Flink,
Spark). A rerun with the same settings does nothing; the dataset appears
atomically, only when complete. The layout is described in
sllmr_tf/data/dataset_dir.py.
"""
from __future__ import annotations

import json
from typing import Sequence

from absl import flags

from sllmr_tf.bins import common, config_flags
from sllmr_tf.data.config import SYNTHETIC_FLAGS, PrepareConfig, RunnerConfig
from sllmr_tf.data.synthetic_world import WorldConfig

FLAGS = flags.FLAGS
config_flags.define(PrepareConfig)
config_flags.define(RunnerConfig)
flags.DEFINE_string("data_dir", None, "Output dataset directory.", required=True)
flags.DEFINE_bool("overwrite", False, "Replace a dataset prepared from other settings or raw files.")
for _flag, _field in SYNTHETIC_FLAGS.items():
    flags.DEFINE_integer(_flag, None, f"Synthetic world: {_field} (default {getattr(WorldConfig(), _field)}).")


def config_from_flags() -> PrepareConfig:
    options = tuple((flag, FLAGS[flag].value) for flag in SYNTHETIC_FLAGS if FLAGS[flag].value is not None)
    return config_flags.build(PrepareConfig, source_options=options)


def summary(stats: dict) -> str:
    """The dataset summary printed after prepare."""
    seg = stats["segments"]
    lines = [
        f"dataset            {stats['dataset']}",
        f"users              {stats['num_users']:,}",
        f"items              {stats['num_items']:,}",
        f"interactions       {stats['num_interactions']:,} ({stats['num_positive_interactions']:,} positive after split)",
        f"cold-start users   {seg['cold_start_users']:,} ({seg['cold_start_definition']})",
        f"long-tail items    {seg['long_tail_items']:,} ({seg['long_tail_definition']})",
    ]
    for name, rows in stats["splits"].items():
        lines.append(f"{name:<6} examples     {rows['examples']:,} ({rows['positives']:,} positive; "
                     f"cold-start users {rows['cold_start_user_examples']:,}, "
                     f"long-tail items {rows['long_tail_item_examples']:,})")
    if stats.get("bad_records_skipped"):
        lines.append(f"bad records skipped {json.dumps(stats['bad_records_skipped'])}")
    return "\n".join(lines)


def main(argv: Sequence[str]) -> None:
    from sllmr_tf.data import prepare as prepare_lib
    from sllmr_tf.data.readers import open_source

    config = config_from_flags()
    config.validate()
    runner = config_flags.build(RunnerConfig, pipeline_args=tuple(argv[1:]))
    runner.validate()
    stats = prepare_lib.prepare(config, open_source(config), FLAGS.data_dir, overwrite=FLAGS.overwrite,
                                runner=runner)
    print(summary(stats))


def run() -> None:
    common.run(main, __name__, __doc__, passes_arguments=True)


if __name__ == "__main__":
    run()
