"""sllmr-prepare: raw interactions + item metadata -> a prepared dataset directory."""
from __future__ import annotations

import json
from typing import Sequence

from absl import flags

import sllmr_tf  # noqa: F401  (sets the Keras 2 switch before TensorFlow loads)
from sllmr_tf.bins import common
from sllmr_tf.data import prepare as prepare_lib
from sllmr_tf.data.readers import source_factory, source_names

FLAGS = flags.FLAGS
flags.DEFINE_enum("dataset", "movielens100k", list(source_names()), "Raw source to read.")
flags.DEFINE_string("raw_dir", None, "Folder of the raw files (default: bundled data / generated world).")
flags.DEFINE_string("category", None, "Amazon category when raw_dir holds several.")
flags.DEFINE_string("data_dir", None, "Output dataset directory.", required=True)
flags.DEFINE_integer("num_shards", 4, "TFRecord shards per split.")
flags.DEFINE_enum("on_bad_record", "error", ["error", "skip"], "Stop on a malformed record, or skip and count it.")
flags.DEFINE_integer("kcore", 0, "Keep users and items with >= k interactions (0: no filter).")
flags.DEFINE_enum("label_rule", "threshold", list(prepare_lib.LABEL_RULES),
                  "threshold: rating >= positive_threshold is positive; implicit: every event is positive.")
flags.DEFINE_float("positive_threshold", 4.0, "Rating at or above which an event is positive.")
flags.DEFINE_integer("test_k", 12, "Each user's last k events go to test (leave-last-k-out).")
flags.DEFINE_integer("valid_k", 2, "The k events before the test events go to valid.")
flags.DEFINE_integer("train_negatives", 1, "Sampled negatives per train positive.")
flags.DEFINE_integer("eval_negatives", 9, "Sampled negatives per valid/test positive.")
flags.DEFINE_float("cold_user_fraction", 0.0, "Share of users cut to --cold_user_train_items train events.")
flags.DEFINE_integer("cold_user_train_items", 2, "Train events kept for users picked by --cold_user_fraction.")
flags.DEFINE_integer("seed", 0, "Seed of every random choice (negatives, truncation, shuffles).")
flags.DEFINE_integer("synthetic_users", None, "Synthetic world: number of users.")
flags.DEFINE_integer("synthetic_items", None, "Synthetic world: number of items.")
flags.DEFINE_integer("synthetic_seed", None, "Synthetic world: generator seed.")
flags.DEFINE_bool("overwrite", False, "Replace a dataset prepared with another config.")


def config_from_flags() -> prepare_lib.PrepareConfig:
    options = tuple((name, FLAGS[name].value) for name in
                    ("synthetic_users", "synthetic_items", "synthetic_seed") if FLAGS[name].value is not None)
    return prepare_lib.PrepareConfig(
        dataset=FLAGS.dataset, raw_dir=FLAGS.raw_dir, category=FLAGS.category, kcore=FLAGS.kcore,
        label_rule=FLAGS.label_rule, positive_threshold=FLAGS.positive_threshold,
        test_k=FLAGS.test_k, valid_k=FLAGS.valid_k, train_negatives=FLAGS.train_negatives,
        eval_negatives=FLAGS.eval_negatives, cold_user_fraction=FLAGS.cold_user_fraction,
        cold_user_train_items=FLAGS.cold_user_train_items, num_shards=FLAGS.num_shards,
        seed=FLAGS.seed, on_bad_record=FLAGS.on_bad_record, source_options=options,
    )


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
    config = config_from_flags()
    source = source_factory(config.dataset)(raw_dir=config.raw_dir, category=config.category,
                                            **dict(config.source_options))
    stats = prepare_lib.prepare(config, source, FLAGS.data_dir, overwrite=FLAGS.overwrite)
    print(summary(stats))


def run() -> None:
    common.run(main)


if __name__ == "__main__":
    run()
