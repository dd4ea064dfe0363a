"""The `openai` scorer against a real LLM: SmolLM2-135M-Instruct served by llama.cpp on 127.0.0.1."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest
from llama_server import llama  # noqa: F401  (the fixture)

from sllmr_tf.data.pairs_dir import read_pairs
from sllmr_tf.scoring import openai_backend, pipeline
from sllmr_tf.scoring.config import CandidateConfig, OpenAIConfig, ScoreConfig
from sllmr_tf.scoring.parsing import parse_ranking

pytestmark = pytest.mark.slow

SMALL = CandidateConfig(list_size=5, positives_per_list=2, history_length=5)


def _run(data_dir, endpoint, pairs_dir, mode, max_lists, cache_dir=None):
    backend = openai_backend.create(data_dir, OpenAIConfig(openai_base_url=endpoint.base_url, openai_model=endpoint.model,
                                                           openai_mode=mode, max_tokens=64, request_timeout_s=300))
    config = ScoreConfig(candidates=SMALL, num_orders=2, max_lists=max_lists, concurrency=1)
    return pipeline.score(data_dir, backend, str(pairs_dir), config, cache_dir=cache_dir and str(cache_dir), log=print)


def _log(pairs_dir):
    with open(os.path.join(pairs_dir, "log-00000-of-00001.jsonl"), encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def test_real_llm_rankings_are_parsed_summarised_and_cached(movielens_dir, llama, tmp_path):
    before = llama.completions
    summary = _run(movielens_dir, llama, tmp_path, "rank", max_lists=3)
    answers = summary["answers"]
    asked = llama.completions - before
    print(json.dumps({"answers": answers, "pairs": summary["pairs"]}, indent=1))
    assert asked == answers["answers_asked"] == answers["answers_requested"] >= 6
    assert answers["answers_requested"] == (answers["answers_parsed"] + answers["answers_malformed"]
                                            + answers["request_failures"])
    assert answers["request_failures"] == 0 and answers["answers_parsed"] >= 1
    rows = _log(tmp_path)
    assert len(rows) == answers["answers_requested"] and all(row["raw"].strip() for row in rows)
    titles = {row["index"]: row["title"] for row in map(json.loads, open(os.path.join(movielens_dir, "items.jsonl")))}
    for row in rows:  # the logged verdict is the parser's verdict on the logged raw answer
        assert parse_ranking(row["raw"], [titles[i] for i in row["candidates"]]).ok == row["ok"]
    pairs = read_pairs(str(tmp_path))
    assert pairs["user_id"].size == summary["pairs"]["written"] > 0
    assert ((pairs["confidence"] > 0.5) & (pairs["confidence"] <= 1.0)).all()

    # Another pairs dir on the same cache: every answer comes from the cache, the same pairs.
    rerun = _run(movielens_dir, llama, tmp_path / "again", "rank", max_lists=3, cache_dir=tmp_path / "cache")
    assert llama.completions - before == asked  # nothing asked twice
    assert rerun["answers"]["answers_from_cache"] == answers["answers_requested"]
    assert rerun["pairs"] == summary["pairs"]
    again = read_pairs(str(tmp_path / "again"))
    for name in pairs:
        np.testing.assert_array_equal(pairs[name], again[name])


def test_real_llm_logprob_mode_scores_every_candidate_in_one_token(movielens_dir, llama, tmp_path):
    before = llama.completions
    summary = _run(movielens_dir, llama, tmp_path, "logprobs", max_lists=4)
    assert llama.completions - before == summary["answers"]["answers_asked"] == 8
    assert summary["answers"]["answers_parsed"] == 8 and summary["lists"]["scored"] == 4
    rows = _log(tmp_path)
    assert all(" | {" in row["raw"] for row in rows)  # the first token's top log-probabilities
    print(f"SmolLM2 logprob mode: agreement with train {summary['pairs']['agreement_with_train']}, "
          f"mean confidence {summary['pairs']['mean_confidence']:.3f}")
