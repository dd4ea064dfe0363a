"""The `openai` scorer: any OpenAI-compatible chat endpoint (vLLM, Ollama, llama.cpp server, TGI).

Three modes:
- rank: the model writes a ranking of the candidate letters; parsing.py reads it.
- logprobs: the model is asked for the single most likely letter and every
  candidate scores the log-probability of its label at the first answer token
  (needs a server that returns `top_logprobs`; one request ranks the list).
- score: the model scores every candidate in [0, 1] (the paper's answers, in our
  wording or the paper's); parsing.py reads them, a missing one scores 0.5, and
  the pairs' confidence comes from the score difference (aggregate.py).

Requests go to a pool of servers (server_pool.py: spread, bounded per server,
failing over); transport failures (connection errors, timeouts, HTTP 429 and
5xx) are retried with exponential backoff and jitter; other HTTP errors are not
(a wrong model name does not get better). The API key is read from an
environment variable, sent only in the Authorization header, and never logged,
cached or written. Only the standard library speaks HTTP: no client package to install.
"""
from __future__ import annotations

import json
import os
from typing import Sequence

import numpy as np

from sllmr_tf.errors import ConfigError
from sllmr_tf.scoring import parsing, prompts
from sllmr_tf.scoring.base import RankRequest, RankResponse
from sllmr_tf.scoring.config import OpenAIConfig
from sllmr_tf.scoring.server_pool import RequestFailed, ServerPool, parse_base_urls

__all__ = ["OpenAIBackend", "RequestFailed", "create"]

class OpenAIBackend:
    name = "openai"
    deterministic = False

    def __init__(self, titles: Sequence[str], config: OpenAIConfig, base_url: str, model: str,
                 api_key: str | None = None, seed: int = 0):
        """`titles[i]` is the title of item index i (index 0 unused); `base_url` (one URL or a
        comma-separated pool) and `model` are the config's or the environment's."""
        config.validate()
        if not base_url:
            raise ConfigError("the openai scorer needs a base URL (--openai_base_url or OPENAI_BASE_URL)")
        if not model:
            raise ConfigError("the openai scorer needs a model name (--openai_model or OPENAI_MODEL)")
        self.titles = list(titles)
        self.pool = ServerPool(parse_base_urls(base_url), config.max_in_flight_per_server, config.request_timeout_s,
                               config.request_retries, config.backoff_s, config.max_backoff_s)
        self.model = model
        self._api_key = api_key
        self.mode = config.openai_mode
        self.temperature = config.temperature
        self.max_tokens = 1 if self.mode == "logprobs" else config.max_tokens
        self.seed = seed
        self.top_logprobs = config.top_logprobs
        self.min_fraction = config.min_parsed_fraction
        self.prompt_style = {"logprobs": prompts.STYLE_PICK, "rank": prompts.STYLE_RANK,
                             "score": prompts.STYLE_PAPER if config.openai_prompt == "paper"
                             else prompts.STYLE_SCORE}[self.mode]
        self.absolute_scores = self.mode == "score"  # pairs from score differences (aggregate.py)

    def __repr__(self) -> str:  # never shows the key
        return f"OpenAIBackend(urls={self.pool.urls!r}, model={self.model!r}, mode={self.mode!r})"

    @property
    def transport_retries(self) -> int:
        """Attempts that got no answer and were tried again (the pipeline's summary reads it)."""
        return self.pool.failed_attempts

    def decoding_params(self) -> dict:
        params = {"mode": self.mode, "temperature": self.temperature, "max_tokens": self.max_tokens,
                  "seed": self.seed, "min_fraction": self.min_fraction}
        if self.mode == "score":
            params["prompt"] = self.prompt_style
        if self.mode == "logprobs":
            params["top_logprobs"] = self.top_logprobs
        return params

    def rank(self, request: RankRequest) -> RankResponse:
        body = {"model": self.model, "messages": [{"role": "user", "content": request.prompt}],
                "temperature": self.temperature, "max_tokens": self.max_tokens, "seed": self.seed,
                "stream": False}
        if self.mode == "logprobs":
            body.update(logprobs=True, top_logprobs=self.top_logprobs)
        reply = self._post(body)
        k = len(request.candidates)
        try:
            choice = reply["choices"][0]
            text = choice["message"].get("content") or ""
        except (KeyError, IndexError, TypeError, AttributeError):
            return RankResponse(np.zeros(k, np.float32), np.ones(k, bool), json.dumps(reply)[:2000], False)
        if self.mode == "logprobs":
            return _logprob_response(choice, text, k)
        parse = parsing.parse_scores if self.absolute_scores else parsing.parse_ranking
        parsed = parse(text, [self.titles[i] for i in request.candidates], self.min_fraction)
        return RankResponse(parsed.scores(), parsed.missing, text, parsed.ok)

    def _post(self, body: dict) -> dict:
        headers = {"Content-Type": "application/json"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        return self.pool.post("/chat/completions", json.dumps(body).encode(), headers)


def _logprob_response(choice: dict, text: str, k: int) -> RankResponse:
    """Scores from the top log-probabilities of the first non-blank answer token."""
    tokens = ((choice.get("logprobs") or {}).get("content")) or []
    first = next((t for t in tokens if str(t.get("token", "")).strip()), None)
    if first is None or not first.get("top_logprobs"):
        return RankResponse(np.zeros(k, np.float32), np.ones(k, bool),
                            f"{text} (no logprobs in the reply: does the server support them?)", False)
    scores, missing = parsing.label_logprob_scores(first["top_logprobs"], k)
    raw = text + " | " + json.dumps({t["token"]: round(t["logprob"], 3) for t in first["top_logprobs"]})
    return RankResponse(scores, missing, raw, bool((~missing).sum() >= 2))


def create(data_dir: str, config: OpenAIConfig = OpenAIConfig(), seed: int = 0) -> OpenAIBackend:
    """The backend for a prepared dataset; URL and model default to OPENAI_BASE_URL and
    OPENAI_MODEL, the key is read from the environment variable the config names."""
    from sllmr_tf.data.dataset_dir import DatasetDir

    titles = [""] + [row.get("title") or row.get("text") or "" for row in DatasetDir(data_dir).items()]
    return OpenAIBackend(titles, config, config.openai_base_url or os.environ.get("OPENAI_BASE_URL", ""),
                         config.openai_model or os.environ.get("OPENAI_MODEL", ""),
                         os.environ.get(config.openai_api_key_env) or None, seed=seed)
