"""The `openai` scorer: any OpenAI-compatible chat endpoint (vLLM, Ollama, llama.cpp server, TGI).

Two modes:
- rank: the model writes a ranking of the candidate letters; parsing.py reads it.
- logprobs: the model is asked for the single most likely letter and every
  candidate scores the log-probability of its label at the first answer token
  (needs a server that returns `top_logprobs`; one request ranks the list).

Transport failures (connection errors, timeouts, HTTP 429 and 5xx) are retried
with exponential backoff and jitter; other HTTP errors are not (a wrong model
name does not get better). The API key is read from an environment variable,
sent only in the Authorization header, and never logged, cached or written.
Only the standard library speaks HTTP: no client package to install.
"""
from __future__ import annotations

import http.client
import json
import os
import random
import threading
import time
import urllib.error
import urllib.request
from typing import Sequence

import numpy as np

from sllmr_tf.errors import ConfigError
from sllmr_tf.scoring import parsing, prompts
from sllmr_tf.scoring.base import RankRequest, RankResponse, TransportError
from sllmr_tf.scoring.config import OPENAI_MODES, OpenAIConfig

RETRY_STATUS = (408, 409, 429, 500, 502, 503, 504)


class RequestFailed(TransportError):
    """The endpoint gave no answer after every retry (or refused the request outright)."""


class OpenAIBackend:
    name = "openai"
    deterministic = False

    def __init__(self, titles: Sequence[str], config: OpenAIConfig, base_url: str, model: str,
                 api_key: str | None = None, seed: int = 0):
        """`titles[i]` is the title of item index i (index 0 unused); `base_url` and `model`
        are the config's or the environment's."""
        if config.openai_mode not in OPENAI_MODES:
            raise ConfigError(f"openai mode must be one of {OPENAI_MODES}, got {config.openai_mode!r}")
        if not base_url:
            raise ConfigError("the openai scorer needs a base URL (--openai_base_url or OPENAI_BASE_URL)")
        if not model:
            raise ConfigError("the openai scorer needs a model name (--openai_model or OPENAI_MODEL)")
        self.titles = list(titles)
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.model = model
        self._api_key = api_key
        self.mode = config.openai_mode
        self.temperature = config.temperature
        self.max_tokens = 1 if self.mode == "logprobs" else config.max_tokens
        self.seed = seed
        self.top_logprobs = config.top_logprobs
        self.timeout_s = config.request_timeout_s
        self.max_retries = config.request_retries
        self.backoff_s = config.backoff_s
        self.min_fraction = config.min_parsed_fraction
        self.prompt_style = prompts.STYLE_PICK if self.mode == "logprobs" else prompts.STYLE_RANK
        self._lock = threading.Lock()
        self.transport_retries = 0  # read by the pipeline for its summary

    def __repr__(self) -> str:  # never shows the key
        return f"OpenAIBackend(url={self.url!r}, model={self.model!r}, mode={self.mode!r})"

    def decoding_params(self) -> dict:
        params = {"mode": self.mode, "temperature": self.temperature, "max_tokens": self.max_tokens,
                  "seed": self.seed, "min_fraction": self.min_fraction}
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
        parsed = parsing.parse_ranking(text, [self.titles[i] for i in request.candidates], self.min_fraction)
        return RankResponse(parsed.scores(), parsed.missing, text, parsed.ok)

    def _post(self, body: dict) -> dict:
        data = json.dumps(body).encode()
        headers = {"Content-Type": "application/json"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        for attempt in range(self.max_retries + 1):
            try:
                req = urllib.request.Request(self.url, data=data, headers=headers, method="POST")
                with urllib.request.urlopen(req, timeout=self.timeout_s) as response:
                    return json.loads(response.read().decode("utf-8"))
            except urllib.error.HTTPError as e:
                detail = e.read()[:300].decode("utf-8", "replace")
                error = RequestFailed(f"{self.url}: HTTP {e.code}: {detail}")
                if e.code not in RETRY_STATUS:
                    raise error from None
            except (urllib.error.URLError, http.client.HTTPException, TimeoutError, ConnectionError,
                    json.JSONDecodeError) as e:
                error = RequestFailed(f"{self.url}: {type(e).__name__}: {e}")
            if attempt < self.max_retries:
                with self._lock:
                    self.transport_retries += 1
                time.sleep(self.backoff_s * 2 ** attempt * (0.5 + random.random()))
        raise error


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
