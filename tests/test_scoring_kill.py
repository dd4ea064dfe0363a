"""Faults against a real LLM: SIGKILL the scorer, or one of two llama.cpp servers, mid-run.

Every server (SmolLM2-135M under llama.cpp) sits behind a counting proxy
(llama_server.CountingProxy) that records each prompt it passes on and each one
it answered, and runs the kill at the request a seeded schedule picks, so the
requests before the kill are answered and the one at the kill is in flight.
Both tests compare the decoded pair records with an uninterrupted run's.
Smaller than test_scoring_llama.py (CPU time): 2 lists of 5 candidates, 3 history items, 2 orders.
"""
from __future__ import annotations

import collections
import json
import os
import random
import signal
import subprocess
import sys

import numpy as np
import pytest
from llama_server import llama, llama_endpoint, require_llama_cpp  # noqa: F401  (the fixture)

from sllmr_tf.data.pairs_dir import read_pairs, summary_path
from sllmr_tf.scoring import openai_backend, pipeline
from sllmr_tf.scoring.config import CandidateConfig, OpenAIConfig, ScoreConfig
from sllmr_tf.scoring.llama_server import LlamaServer

pytestmark = pytest.mark.slow

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCHEDULE_SEED = 13
SETTINGS = {"list_size": 5, "positives_per_list": 2, "history_length": 3, "num_orders": 2, "max_lists": 2,
            "concurrency": 1, "openai_mode": "logprobs", "request_timeout_s": 300, "seed": 0}


def _config(**overrides) -> ScoreConfig:
    candidates = CandidateConfig(list_size=SETTINGS["list_size"], positives_per_list=SETTINGS["positives_per_list"],
                                 history_length=SETTINGS["history_length"], seed=SETTINGS["seed"])
    return ScoreConfig(candidates=candidates, num_orders=SETTINGS["num_orders"], max_lists=SETTINGS["max_lists"],
                       **{"concurrency": SETTINGS["concurrency"], **overrides})


def _backend(data_dir, base_url, model, **overrides):
    return openai_backend.create(data_dir, OpenAIConfig(
        openai_base_url=base_url, openai_model=model, openai_mode=SETTINGS["openai_mode"],
        request_timeout_s=SETTINGS["request_timeout_s"], **overrides), seed=SETTINGS["seed"])


@pytest.fixture(scope="module")
def reference(movielens_dir, llama, tmp_path_factory):
    """The uninterrupted run: its prompts (request bodies) and decoded pairs."""
    pairs_dir = str(tmp_path_factory.mktemp("reference"))
    start = llama.completions
    pipeline.score(movielens_dir, _backend(movielens_dir, llama.base_url, llama.model), pairs_dir, _config(),
                   log=lambda _: None)
    prompts = llama.proxy.asked[start:]
    assert len(prompts) == len(set(prompts)) >= SETTINGS["max_lists"] * SETTINGS["num_orders"]
    return prompts, read_pairs(pairs_dir)


def _assert_same_pairs(pairs_dir, reference_pairs):
    pairs = read_pairs(pairs_dir)
    assert pairs["user_id"].size > 0 and set(pairs) == set(reference_pairs)
    for name in reference_pairs:
        np.testing.assert_array_equal(pairs[name], reference_pairs[name], err_msg=name)


def _score_binary(data_dir, pairs_dir, endpoint) -> subprocess.Popen:
    flags = [f"--{name}={value}" for name, value in SETTINGS.items()]
    return subprocess.Popen([sys.executable, "-m", "sllmr_tf.bins.score", f"--data_dir={data_dir}",
                             "--scorer=openai", f"--pairs_dir={pairs_dir}", f"--openai_base_url={endpoint.base_url}",
                             f"--openai_model={endpoint.model}", *flags],
                            cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def test_a_killed_scorer_reruns_asking_only_what_it_had_no_answer_for(movielens_dir, llama, reference, tmp_path):
    prompts, reference_pairs = reference
    kill_at = random.Random(SCHEDULE_SEED).randint(2, len(prompts))  # this request is in flight at the kill
    pairs_dir = str(tmp_path / "pairs")
    start = llama.completions
    process = _score_binary(movielens_dir, pairs_dir, llama)

    def kill(count):
        if count - start != kill_at:
            return True
        process.send_signal(signal.SIGKILL)
        process.wait()
        return False  # the request in flight never gets its answer

    llama.proxy.before_forward = kill
    try:
        assert process.wait(timeout=600) == -signal.SIGKILL, process.stderr.read().decode()
    finally:
        llama.proxy.before_forward = None
    first_asked = llama.proxy.asked[start:]
    answered = set(first_asked[:kill_at - 1])
    assert len(first_asked) == kill_at and answered <= set(llama.proxy.answered)

    rerun_start = llama.completions
    rerun = _score_binary(movielens_dir, pairs_dir, llama)
    assert rerun.wait(timeout=600) == 0, rerun.stderr.read().decode()
    rerun_asked = llama.proxy.asked[rerun_start:]
    assert not answered & set(rerun_asked)  # nothing the killed run had an answer for is asked again
    assert sorted(answered | set(rerun_asked)) == sorted(prompts)  # and nothing else is left out
    assert len(rerun_asked) == len(prompts) - len(answered)
    with open(summary_path(pairs_dir, 0, 1)) as f:
        assert json.load(f)["answers"]["answers_from_cache"] == len(answered)
    _assert_same_pairs(pairs_dir, reference_pairs)


def test_a_killed_server_hands_its_lists_to_the_other(movielens_dir, llama, reference, tmp_path):
    """Two llama.cpp server processes, each behind its own counting proxy; the second one's
    process is SIGKILLed while the scorer waits for its answer, so the scorer meets a real dead
    server (its proxy closes the connection unanswered, then every later request to it meets
    a refused upstream the same way)."""
    require_llama_cpp()
    prompts, reference_pairs = reference
    kill_at = random.Random(SCHEDULE_SEED).randint(1, 2)  # the second server's request in flight at the kill
    start = llama.completions
    with LlamaServer() as doomed_server, llama_endpoint(doomed_server) as doomed:
        def kill(count):
            if count == kill_at:
                doomed_server.kill()
            return True  # forwarded to a dead server

        doomed.proxy.before_forward = kill
        backend = _backend(movielens_dir, f"{llama.base_url},{doomed.base_url}", llama.model,
                           max_in_flight_per_server=1)
        summary = pipeline.score(movielens_dir, backend, str(tmp_path), _config(concurrency=2), log=lambda _: None)
        doomed_asked, doomed_answered = list(doomed.proxy.asked), list(doomed.proxy.answered)
    survivor_answered = llama.proxy.answered[-(len(llama.proxy.asked) - start):]
    assert len(doomed_asked) >= kill_at and len(doomed_answered) == kill_at - 1  # it died at kill_at
    assert collections.Counter(survivor_answered + doomed_answered) == collections.Counter(prompts)  # each once
    assert doomed_asked[kill_at - 1] in survivor_answered  # the one in flight went to the survivor
    assert summary["lists"]["scored"] == SETTINGS["max_lists"] and summary["answers"]["request_failures"] == 0
    assert summary["transport_retries"] == len(doomed_asked) - len(doomed_answered)
    _assert_same_pairs(str(tmp_path), reference_pairs)
