"""sllmr-score: a prepared dataset -> LLM rank pairs (one shard of users per process).

    sllmr-score --data_dir=DIR --scorer=embedding|openai|simulated --pairs_dir=OUT \\
                [--shard_index=I --num_shards=N] [--max_lists=N]

The openai scorer reads its endpoint from --openai_base_url / OPENAI_BASE_URL,
its model from --openai_model / OPENAI_MODEL and its key from the environment
variable named by --openai_api_key_env (never from a flag, so it stays out of
flagfiles, logs and process lists). A rerun resumes from the response cache.
"""
from __future__ import annotations

import json
import sys
from typing import Sequence

from absl import flags

import sllmr_tf  # noqa: F401  (sets the Keras 2 switch before TensorFlow loads)
from sllmr_tf.bins import common
from sllmr_tf.data.dataset_dir import DatasetDir
from sllmr_tf.scoring import pipeline
from sllmr_tf.scoring.backends import backend_names, make_backend
from sllmr_tf.scoring.candidates import CandidateConfig

FLAGS = flags.FLAGS
flags.DEFINE_string("data_dir", None, "Prepared dataset directory (sllmr-prepare).", required=True)
flags.DEFINE_enum("scorer", "embedding", list(backend_names()), "Scorer backend.")
flags.DEFINE_string("pairs_dir", None, "Output folder of pair shards, logs, summaries and the cache.",
                    required=True)
flags.DEFINE_string("cache_dir", None, "Response cache folder (default: <pairs_dir>/cache).")
flags.DEFINE_integer("shard_index", 0, "This process scores the users with index % num_shards == shard_index.")
flags.DEFINE_integer("num_shards", 1, "Number of scoring processes.")
flags.DEFINE_integer("max_lists", 0, "Score at most this many lists (0: all), for quick runs.")
flags.DEFINE_integer("list_size", 10, "Candidates per list (2..26).")
flags.DEFINE_integer("positives_per_list", 3, "Train positives per list (fewer if the user has fewer).")
flags.DEFINE_integer("lists_per_user", 1, "Regular lists per user.")
flags.DEFINE_float("cold_user_factor", 3.0, "Cold-start users get this many times the lists (1: no augmentation).")
flags.DEFINE_float("longtail_factor", 2.0,
                   "Long-tail candidates are oversampled by this factor through extra lists (1: none).")
flags.DEFINE_integer("history_length", 10, "History titles shown in a prompt.")
flags.DEFINE_integer("num_orders", 3, "Shuffled orders each list is asked in (position-bias control).")
flags.DEFINE_integer("max_retries", 2, "Extra asks of an ordering after an unusable answer (0..3), each with a stricter prompt.")
flags.DEFINE_integer("max_pairs_per_list", 0, "Keep a random sample of this many pairs per list (0: all).")
flags.DEFINE_integer("concurrency", 4, "Requests in flight at once.")
flags.DEFINE_integer("seed", 0, "Seed of the candidate lists, orderings and pair sampling.")
flags.DEFINE_string("openai_base_url", None, "OpenAI-compatible endpoint, e.g. http://127.0.0.1:8000/v1 "
                    "(default: $OPENAI_BASE_URL).")
flags.DEFINE_string("openai_model", None, "Model name sent to the endpoint (default: $OPENAI_MODEL).")
flags.DEFINE_string("openai_api_key_env", "OPENAI_API_KEY", "Environment variable holding the API key, if any.")
flags.DEFINE_enum("openai_mode", "rank", ["rank", "logprobs"],
                  "rank: parse a written ranking; logprobs: rank by the log-probability of each label.")
flags.DEFINE_float("temperature", 0.0, "Sampling temperature.")
flags.DEFINE_integer("max_tokens", 128, "Answer length limit (rank mode).")
flags.DEFINE_float("min_parsed_fraction", 0.5, "An answer must name at least this share of the list "
                   "(and 2 candidates) to be used; the rest are ranked last and flagged missing.")
flags.DEFINE_float("request_timeout_s", 60.0, "Timeout of one HTTP request.")
flags.DEFINE_integer("request_retries", 4, "Retries of a failed HTTP request, with exponential backoff.")
flags.DEFINE_multi_string("scorer_option", [], "key=value options for the embedding/simulated scorers "
                          "(values read as JSON when they parse, else as strings).")


def backend_options() -> dict:
    if FLAGS.scorer == "openai":
        return {"base_url": FLAGS.openai_base_url, "model": FLAGS.openai_model,
                "api_key_env": FLAGS.openai_api_key_env, "mode": FLAGS.openai_mode,
                "temperature": FLAGS.temperature, "max_tokens": FLAGS.max_tokens, "seed": FLAGS.seed,
                "timeout_s": FLAGS.request_timeout_s, "max_retries": FLAGS.request_retries,
                "min_fraction": FLAGS.min_parsed_fraction}
    options = {}
    for option in FLAGS.scorer_option:
        key, sep, value = option.partition("=")
        if not sep or not key:
            raise ValueError(f"--scorer_option must be key=value, got {option!r}")
        try:
            options[key] = json.loads(value)
        except ValueError:
            options[key] = value
    return options


def config_from_flags() -> pipeline.ScoreConfig:
    candidates = CandidateConfig(
        list_size=FLAGS.list_size, positives_per_list=FLAGS.positives_per_list,
        lists_per_user=FLAGS.lists_per_user, cold_user_factor=FLAGS.cold_user_factor,
        longtail_factor=FLAGS.longtail_factor, history_length=FLAGS.history_length, seed=FLAGS.seed)
    return pipeline.ScoreConfig(
        candidates=candidates, num_orders=FLAGS.num_orders, max_retries=FLAGS.max_retries,
        concurrency=FLAGS.concurrency, max_pairs_per_list=FLAGS.max_pairs_per_list,
        max_lists=FLAGS.max_lists, shard_index=FLAGS.shard_index, num_shards=FLAGS.num_shards)


def main(argv: Sequence[str]) -> None:
    config = config_from_flags()
    config.validate()
    DatasetDir(FLAGS.data_dir)  # fails in one line before any backend loads a model
    backend = make_backend(FLAGS.scorer, FLAGS.data_dir, **backend_options())
    try:
        summary = pipeline.score(FLAGS.data_dir, backend, FLAGS.pairs_dir, config, FLAGS.cache_dir)
    except pipeline.ScoringAborted as e:
        print(f"sllmr-score: error: {' '.join(str(e).split())}", file=sys.stderr)
        sys.exit(3)
    print(json.dumps({key: summary[key] for key in ("lists", "answers", "pairs")}, indent=1))


def run() -> None:
    common.run(main)


if __name__ == "__main__":
    run()
