"""sllmr-score: a prepared dataset -> LLM rank pairs (one shard of users per process).

    sllmr-score --data_dir=DIR --scorer=embedding|openai|simulated --pairs_dir=OUT \\
                [--shard_index=I --num_shards=N] [--max_lists=N]

The openai scorer reads its endpoint (one URL or a comma-separated pool of
servers) from --openai_base_url / OPENAI_BASE_URL,
its model from --openai_model / OPENAI_MODEL and its key from the environment
variable named by --openai_api_key_env (never from a flag, so it stays out of
flagfiles, logs and process lists). A rerun resumes from the response cache.

It writes into --pairs_dir the pair files of its data shards, its summary and
prompt log, and, once every data shard is scored (so with --num_shards > 1 the
process that finishes last), the LLM reliability report: reliability.md,
reliability.csv and reliability.png, the LLM's agreement with the train outcomes
per segment against a coin flip (sllmr_tf/scoring/reliability.py), whose table
it also prints. The pairs directory is described in sllmr_tf/data/pairs_dir.py.
"""
from __future__ import annotations

from typing import Sequence

from absl import flags

from sllmr_tf.bins import common, config_flags
from sllmr_tf.scoring.backends import SCORERS, scorer_options
from sllmr_tf.scoring.config import OpenAIConfig, ScoreConfig

FLAGS = flags.FLAGS
flags.DEFINE_string("data_dir", None, "Prepared dataset directory (sllmr-prepare).", required=True)
flags.DEFINE_enum("scorer", "embedding", list(SCORERS.names()), "Scorer backend.")
flags.DEFINE_string("pairs_dir", None, "Output folder of pair shards, logs, summaries and the cache.",
                    required=True)
flags.DEFINE_string("cache_dir", None, "Response cache folder (default: <pairs_dir>/cache).")
flags.DEFINE_multi_string("scorer_option", [], "key=value options of the embedding/simulated scorers "
                          "(values read as JSON when they parse, else as strings).")
config_flags.define(ScoreConfig)
config_flags.define(OpenAIConfig)


def main(argv: Sequence[str]) -> None:
    config = config_flags.build(ScoreConfig)
    config.validate()
    from sllmr_tf.data.dataset_dir import DatasetDir
    from sllmr_tf.scoring import pipeline
    from sllmr_tf.scoring.backends import make_backend

    DatasetDir(FLAGS.data_dir)  # fails in one line before any backend loads a model
    if FLAGS.scorer == "openai":
        options = {"config": config_flags.build(OpenAIConfig), "seed": config.candidates.seed}
    else:
        options = scorer_options(FLAGS.scorer_option)
    backend = make_backend(FLAGS.scorer, FLAGS.data_dir, **options)
    summary = pipeline.score(FLAGS.data_dir, backend, FLAGS.pairs_dir, config, FLAGS.cache_dir)
    print(summary_lines(summary))
    report_reliability(FLAGS.pairs_dir, FLAGS.data_dir, summary["num_data_shards"])


def summary_lines(summary: dict) -> str:
    """The shard's summary as the few lines a user reads (all of it is in summary-*.json)."""
    lists, answers, pairs = summary["lists"], summary["answers"], summary["pairs"]
    agreement = "n/a" if pairs["agreement_with_train"] is None else f"{pairs['agreement_with_train']:.1%}"
    return (f"lists   {lists['scored']:,} scored, {lists['skipped']:,} skipped (of {lists['total']:,})\n"
            f"answers {answers['answers_parsed']:,} parsed of {answers['answers_requested']:,} "
            f"({answers['answers_from_cache']:,} from the cache, {answers['answers_malformed']:,} unusable, "
            f"{answers['request_failures']:,} requests failed)\n"
            f"pairs   {pairs['written']:,} ({pairs['by_source']['regular']:,} regular, "
            f"{pairs['by_source']['augmented']:,} augmented; {pairs['cold_user']:,} of cold-start users, "
            f"{pairs['longtail_item']:,} with a long-tail item); the LLM agrees with {agreement} of the "
            f"{pairs['outcome_known']:,} whose outcome the train data knows")


def report_reliability(pairs_dir: str, data_dir: str, num_data_shards: int) -> None:
    """Write and print the reliability report once every data shard is scored; until then, say so."""
    from sllmr_tf.data import pairs_dir as pairs_dir_lib
    from sllmr_tf.scoring import reliability

    waiting = pairs_dir_lib.unscored_shards(pairs_dir, num_data_shards)
    if waiting:
        print(f"reliability report: waits for the other shards (data shards {waiting} of {num_data_shards} "
              "are not scored yet; the process that scores the last one writes it)")
        return
    rows = reliability.build_report(pairs_dir, data_dir)
    paths = reliability.write_report(rows, pairs_dir)
    print(reliability.to_markdown(rows))
    print(f"reliability report: {', '.join(paths)}")


def run() -> None:
    common.run(main, __name__, __doc__)


if __name__ == "__main__":
    run()
