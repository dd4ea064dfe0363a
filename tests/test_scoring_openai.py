"""The `openai` scorer's HTTP client and the sllmr-score binary, against a local test endpoint.

The endpoint below speaks the OpenAI chat-completions protocol on 127.0.0.1 and
ranks candidates by title (alphabetically), so answers are predictable; it can
also fail, stall or talk nonsense on demand. The real LLM is exercised in
test_scoring_llama.py.
"""
from __future__ import annotations

import glob
import http.server
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from sllmr_tf.data.pairs_dir import read_pairs, summary_path
from sllmr_tf.errors import ConfigError
from sllmr_tf.scoring import openai_backend, pipeline, prompts
from sllmr_tf.scoring.base import RankRequest, TransportError
from sllmr_tf.scoring.config import CandidateConfig, OpenAIConfig, ScoreConfig

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SECRET = "sk-test-secret-never-written-0123456789"
CANDIDATE_LINE = re.compile(r'^([A-Z])\. "(.*)"', re.M)


class FakeEndpoint(http.server.ThreadingHTTPServer):
    """Chat completions on 127.0.0.1: ranks candidates by title, or misbehaves as told."""

    def __init__(self):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.base_url = f"http://127.0.0.1:{self.server_address[1]}/v1"
        self.bodies: list[dict] = []
        self.auth: list[str | None] = []
        self.statuses: list[int] = []  # statuses to return before answering normally
        self.answer = "ranking"  # ranking | scores | garbage | no_choices | not_json | logprobs | no_logprobs
        self.delay_s = 0.0
        self.in_flight = self.most_in_flight = 0
        self.lock = threading.Lock()
        threading.Thread(target=self.serve_forever, args=(0.05,), daemon=True).start()

    def reply(self, body: dict) -> tuple[int, bytes]:
        with self.lock:
            self.bodies.append(body)
            status = self.statuses.pop(0) if self.statuses else 200
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
        time.sleep(self.delay_s)
        with self.lock:
            self.in_flight -= 1
        if status != 200:
            return status, b'{"error": "busy"}'
        if self.answer == "not_json":
            return 200, b"<html>oops"
        if self.answer == "no_choices":
            return 200, json.dumps({"object": "chat.completion"}).encode()
        prompt = body["messages"][-1]["content"]
        by_title = sorted(CANDIDATE_LINE.findall(prompt), key=lambda c: c[1])
        text = {"ranking": " > ".join(label for label, _ in by_title), "garbage": "no idea, sorry friend",
                "scores": "\n".join(f"{label}: {1 - rank / len(by_title):.2f}" for rank, (label, _) in enumerate(by_title)),
                "logprobs": by_title[0][0], "no_logprobs": by_title[0][0]}[self.answer]
        choice = {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
        if self.answer == "logprobs":
            top = [{"token": label, "logprob": -float(rank)} for rank, (label, _) in enumerate(by_title)]
            choice["logprobs"] = {"content": [{"token": " ", "logprob": 0.0, "top_logprobs": []},
                                              {"token": text, "logprob": 0.0, "top_logprobs": top}]}
        return 200, json.dumps({"choices": [choice]}).encode()


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.auth.append(self.headers.get("Authorization"))
        status, payload = self.server.reply(body)
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


def _stop(server: FakeEndpoint) -> None:
    """Shut the endpoint down: its port refuses connections from now on."""
    server.shutdown()
    server.server_close()


@pytest.fixture
def endpoint():
    server = FakeEndpoint()
    yield server
    _stop(server)


@pytest.fixture
def two_endpoints():
    servers = [FakeEndpoint(), FakeEndpoint()]
    yield servers
    for server in servers:
        if server.socket.fileno() != -1:
            _stop(server)


TITLES = ["", "Zorro (1998)", "Alien (1979)", "Memento (2000)", "Brazil (1985)"]


def _backend(endpoint, api_key=None, **settings):
    config = OpenAIConfig(**{"backoff_s": 0.01, "request_timeout_s": 5, **settings})
    return openai_backend.OpenAIBackend(TITLES, config, endpoint.base_url, "test-model", api_key=api_key)


def _request(style="rank"):
    candidates = (1, 2, 3, 4)
    rows = [{"title": TITLES[i]} for i in candidates]
    return RankRequest(7, (), candidates, prompts.render([], rows, style))


def test_rank_mode_sends_a_chat_request_and_parses_the_answer(endpoint):
    response = _backend(endpoint, api_key=SECRET, temperature=0.0).rank(_request())
    body = endpoint.bodies[0]
    assert body["model"] == "test-model" and body["temperature"] == 0.0 and body["max_tokens"] == 128
    assert body["messages"][0]["role"] == "user" and "Rank all 4 candidates" in body["messages"][0]["content"]
    assert endpoint.auth == [f"Bearer {SECRET}"]
    assert response.ok and response.raw == "B > D > C > A"  # Alien, Brazil, Memento, Zorro
    assert list(np.argsort(-response.scores)) == [1, 3, 2, 0]


def test_no_key_sends_no_authorization_header(endpoint):
    _backend(endpoint).rank(_request())
    assert endpoint.auth == [None]


def test_busy_server_is_retried_with_backoff(endpoint):
    endpoint.statuses = [503, 429]
    backend = _backend(endpoint)
    assert backend.rank(_request()).ok
    assert len(endpoint.bodies) == 3 and backend.transport_retries == 2


def test_a_rejected_request_is_not_retried(endpoint):
    endpoint.statuses = [404]
    with pytest.raises(openai_backend.RequestFailed, match="HTTP 404"):
        _backend(endpoint).rank(_request())
    assert len(endpoint.bodies) == 1


def test_timeouts_and_non_json_replies_are_retried_then_reported(endpoint):
    endpoint.delay_s = 0.5
    with pytest.raises(openai_backend.RequestFailed, match="timed out|Timeout"):
        _backend(endpoint, request_timeout_s=0.1, request_retries=1).rank(_request())
    assert len(endpoint.bodies) == 2
    endpoint.delay_s, endpoint.answer = 0.0, "not_json"
    with pytest.raises(openai_backend.RequestFailed, match="JSONDecodeError"):
        _backend(endpoint, request_retries=2).rank(_request())


def test_replies_without_a_usable_answer_are_not_ok(endpoint):
    endpoint.answer = "garbage"
    assert not _backend(endpoint).rank(_request()).ok
    endpoint.answer = "no_choices"
    assert not _backend(endpoint).rank(_request()).ok


def test_logprob_mode_ranks_by_label_log_probabilities(endpoint):
    endpoint.answer = "logprobs"
    backend = _backend(endpoint, openai_mode="logprobs")
    response = backend.rank(_request("pick"))
    assert endpoint.bodies[0]["logprobs"] is True and endpoint.bodies[0]["top_logprobs"] == 20
    assert endpoint.bodies[0]["max_tokens"] == 1 and backend.prompt_style == "pick"
    assert response.ok and list(np.argsort(-response.scores)) == [1, 3, 2, 0]
    endpoint.answer = "no_logprobs"
    response = backend.rank(_request("pick"))
    assert not response.ok and "no logprobs" in response.raw


def test_score_mode_asks_for_scores_and_reads_them(endpoint):
    endpoint.answer = "scores"
    backend = _backend(endpoint, openai_mode="score")
    assert backend.prompt_style == "score" and backend.absolute_scores
    response = backend.rank(_request("score"))
    assert response.ok and response.raw.startswith("B: 1.00\nD: 0.75")  # Alien, Brazil, Memento, Zorro
    np.testing.assert_allclose(response.scores, [0.25, 1.0, 0.5, 0.75])
    paper = _backend(endpoint, openai_mode="score", openai_prompt="paper")
    assert paper.prompt_style == "paper" and paper.decoding_params()["prompt"] == "paper"


def test_the_paper_prompt_needs_score_mode():
    with pytest.raises(ConfigError, match="openai_mode=score"):
        openai_backend.OpenAIBackend(TITLES, OpenAIConfig(openai_prompt="paper"), "http://127.0.0.1:1/v1", "m")


def test_a_malformed_server_list_is_a_clear_error():
    for value in ("http://127.0.0.1:1/v1,", "127.0.0.1:8000", "http://a/v1,http://a/v1/"):
        with pytest.raises(ConfigError, match="openai_base_url"):
            openai_backend.OpenAIBackend(TITLES, OpenAIConfig(), value, "m")


def _pool_backend(servers, **settings):
    config = OpenAIConfig(**{"backoff_s": 0.01, "request_timeout_s": 5, **settings})
    return openai_backend.OpenAIBackend(TITLES, config, ",".join(s.base_url for s in servers), "test-model")


def _ask_from_threads(backend, threads, requests_each):
    answers = []
    def work():
        for _ in range(requests_each):
            answers.append(backend.rank(_request()).ok)
    workers = [threading.Thread(target=work) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return answers


def test_requests_spread_over_the_pool_within_the_per_server_bound(two_endpoints):
    for server in two_endpoints:
        server.delay_s = 0.05
    backend = _pool_backend(two_endpoints, max_in_flight_per_server=2)
    assert _ask_from_threads(backend, threads=8, requests_each=3) == [True] * 24
    assert sum(len(server.bodies) for server in two_endpoints) == 24
    assert [server.most_in_flight for server in two_endpoints] == [2, 2]  # 8 callers, 2 slots each
    assert all(len(server.bodies) >= 6 for server in two_endpoints)


def test_one_server_holds_at_most_its_bound(endpoint):
    endpoint.delay_s = 0.05
    backend = _pool_backend([endpoint], max_in_flight_per_server=3)
    assert _ask_from_threads(backend, threads=6, requests_each=2) == [True] * 12
    assert endpoint.most_in_flight == 3


def test_a_server_that_stops_answering_hands_its_work_to_the_others(two_endpoints):
    alive, dying = two_endpoints
    backend = _pool_backend([dying, alive], backoff_s=30.0)  # a long rest: nothing may wait for it
    assert _ask_from_threads(backend, threads=2, requests_each=5) == [True] * 10
    assert len(dying.bodies) >= 3 and len(alive.bodies) >= 3
    _stop(dying)  # connection refused from now on
    started = time.monotonic()
    assert _ask_from_threads(backend, threads=2, requests_each=10) == [True] * 20
    assert time.monotonic() - started < 5
    assert backend.pool.servers[1].answered == len(alive.bodies) and backend.transport_retries == 1
    assert backend.pool.servers[0].failures == 1  # resting: not asked again within its rest


def test_a_busy_server_is_rested_and_rejoins_once_it_answers(two_endpoints):
    busy, steady = two_endpoints
    busy.statuses = [503, 502, 500]
    backend = _pool_backend([busy, steady], backoff_s=0.02)
    for _ in range(40):
        assert backend.rank(_request()).ok
        time.sleep(0.01)
    assert len(busy.bodies) > 3 and backend.pool.servers[0].answered == len(busy.bodies) - 3
    assert backend.pool.servers[1].answered == len(steady.bodies) == 40 - backend.pool.servers[0].answered


def test_the_pool_fails_a_request_only_when_no_server_answers(two_endpoints):
    for server in two_endpoints:
        _stop(server)
    backend = _pool_backend(two_endpoints, request_retries=1)
    with pytest.raises(openai_backend.RequestFailed, match=r"127.0.0.1:\d+/v1/chat/completions: URLError.*\(all 2 servers of the pool are down\)$"):
        backend.rank(_request())
    assert [server.failures for server in backend.pool.servers] == [2, 2]  # retries + 1 attempts each
    started = time.monotonic()
    with pytest.raises(openai_backend.RequestFailed):  # every server down: fails at once
        backend.rank(_request())
    assert time.monotonic() - started < 0.1


def test_missing_url_or_model_is_a_clear_error(monkeypatch):
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    with pytest.raises(ConfigError, match="base URL"):
        openai_backend.OpenAIBackend(TITLES, OpenAIConfig(), "", "m")
    with pytest.raises(ConfigError, match="model"):
        openai_backend.OpenAIBackend(TITLES, OpenAIConfig(), "http://127.0.0.1:1/v1", "")


def _score_binary(data_dir, pairs_dir, base_url, *flags, wait=True):
    command = [sys.executable, "-m", "sllmr_tf.bins.score", f"--data_dir={data_dir}", "--scorer=openai",
               f"--pairs_dir={pairs_dir}", f"--openai_base_url={base_url}", "--openai_model=test-model",
               "--openai_api_key_env=SLLMR_TEST_KEY", "--seed=3", *flags]
    env = {**os.environ, "SLLMR_TEST_KEY": SECRET}
    if not wait:
        return subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    return subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_binary_killed_mid_run_resumes_without_asking_any_prompt_twice(movielens_dir, endpoint, tmp_path):
    pairs_dir = str(tmp_path / "pairs")
    endpoint.delay_s = 0.01
    process = _score_binary(movielens_dir, pairs_dir, endpoint.base_url, "--max_lists=40", "--concurrency=2",
                            wait=False)
    deadline = time.time() + 120
    while len(endpoint.bodies) < 50 and time.time() < deadline and process.poll() is None:
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait()
    first_run = len(endpoint.bodies)
    assert 50 <= first_run < 120 and not glob.glob(os.path.join(pairs_dir, "pairs-*.tfrecord.gz"))

    result = _score_binary(movielens_dir, pairs_dir, endpoint.base_url, "--max_lists=40", "--concurrency=2")
    assert result.returncode == 0, result.stderr
    asked = [json.dumps(body, sort_keys=True) for body in endpoint.bodies]
    assert len(set(asked)) == 120  # 40 lists x 3 orders
    assert len(asked) - 120 <= 2  # only the (at most --concurrency) requests in flight at the kill are asked again
    with open(summary_path(pairs_dir, 0, 1)) as f:
        summary = json.load(f)
    assert summary["answers"]["answers_from_cache"] >= first_run - 2  # a kill may lose the last writes
    assert summary["answers"]["answers_parsed"] == 120 and summary["lists"]["scored"] == 40
    resumed = read_pairs(pairs_dir)
    assert resumed["user_id"].size == summary["pairs"]["written"] > 0

    clean_dir = str(tmp_path / "clean")
    config = ScoreConfig(candidates=CandidateConfig(seed=3), max_lists=40)
    backend = openai_backend.create(movielens_dir, OpenAIConfig(openai_base_url=endpoint.base_url,
                                                                openai_model="test-model"))
    pipeline.score(movielens_dir, backend, clean_dir, config, log=lambda _: None)
    clean = read_pairs(clean_dir)
    for name in clean:
        np.testing.assert_array_equal(resumed[name], clean[name])
    for path in glob.glob(os.path.join(pairs_dir, "**", "*"), recursive=True):
        if os.path.isfile(path) and not path.endswith(".gz"):  # text and images alike
            with open(path, "rb") as f:
                assert SECRET.encode() not in f.read(), path


@pytest.mark.slow
def test_binary_reports_bad_input_in_one_line(tmp_path, endpoint, movielens_dir):
    missing = _score_binary(str(tmp_path / "nowhere"), str(tmp_path / "p"), endpoint.base_url)
    assert missing.returncode == 2
    assert missing.stderr.strip().splitlines()[-1].endswith("not a prepared dataset (no stats.json); "
                                                             "run sllmr-prepare first")
    bad_shard = _score_binary(movielens_dir, str(tmp_path / "p"), endpoint.base_url, "--shard_index=3",
                              "--num_shards=2")
    assert bad_shard.returncode == 2 and "shard_index" in bad_shard.stderr.strip().splitlines()[-1]
    dead = _score_binary(movielens_dir, str(tmp_path / "p"), "http://127.0.0.1:9/v1,http://127.0.0.1:7/v1",
                         "--request_retries=0")
    assert dead.returncode == 2
    last = dead.stderr.strip().splitlines()[-1]
    assert last.startswith("sllmr-score: error:") and "requests in a row failed" in last
    assert SECRET not in dead.stderr + dead.stdout


_PARSE_SCORE_FLAGFILES = """
import sys
from sllmr_tf.bins import config_flags, score
from sllmr_tf.scoring.backends import scorer_options
from sllmr_tf.scoring.config import OpenAIConfig, ScoreConfig
for path in sys.argv[1:]:
    score.FLAGS.unparse_flags()
    score.FLAGS(["sllmr-score", "--flagfile=" + path, "--data_dir=unused", "--pairs_dir=unused"])
    config_flags.build(ScoreConfig).validate()
    config_flags.build(OpenAIConfig).validate()
    scorer_options(score.FLAGS.scorer_option)
    print("parsed", path)
"""


def test_every_shipped_score_flagfile_parses_into_a_valid_config():
    """Every flag a flagfile sets exists and the values make a valid config (one process for all)."""
    flagfiles = sorted(glob.glob(os.path.join(REPO, "flags", "score_*.flags")))
    result = subprocess.run([sys.executable, "-c", _PARSE_SCORE_FLAGFILES, *flagfiles],
                            cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [word for path in flagfiles for word in ("parsed", path)]
