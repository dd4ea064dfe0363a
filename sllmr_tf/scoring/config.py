"""The settings of `sllmr-score`: candidate lists, the scoring job and the openai scorer."""
from __future__ import annotations

import dataclasses

from sllmr_tf.errors import ConfigError
from sllmr_tf.options import option
from sllmr_tf.scoring.prompts import MAX_CANDIDATES, RETRY_REMINDERS

OPENAI_MODES = ("rank", "logprobs", "score")
OPENAI_PROMPTS = ("ours", "paper")


@dataclasses.dataclass(frozen=True)
class CandidateConfig:
    """Which items each user's candidate lists hold (candidates.py)."""

    list_size: int = option(10, f"Candidates per list (2..{MAX_CANDIDATES}).")
    positives_per_list: int = option(3, "Train positives per list (fewer if the user has fewer).")
    lists_per_user: int = option(1, "Regular lists per user.")
    cold_user_factor: float = option(3.0, "Cold-start users get this many times the lists (1: no augmentation).")
    longtail_factor: float = option(2.0, "Long-tail candidates are oversampled by this factor through extra "
                                    "lists (1: none).")
    history_length: int = option(10, "History titles shown in a prompt.")
    seed: int = option(0, "Seed of the candidate lists, orderings and pair sampling.")

    def validate(self) -> None:
        """Raises ConfigError naming the first invalid setting."""
        if not 2 <= self.list_size <= MAX_CANDIDATES:
            raise ConfigError(f"list_size must be in [2, {MAX_CANDIDATES}], got {self.list_size}")
        if not 1 <= self.positives_per_list < self.list_size:
            raise ConfigError(f"positives_per_list must be in [1, list_size), got {self.positives_per_list}")
        if self.lists_per_user < 1:
            raise ConfigError(f"lists_per_user must be >= 1, got {self.lists_per_user}")
        for name in ("cold_user_factor", "longtail_factor"):
            if getattr(self, name) < 1.0:
                raise ConfigError(f"{name} must be >= 1 (1 = no augmentation), got {getattr(self, name)}")
        if self.history_length < 0:
            raise ConfigError(f"history_length must be >= 0, got {self.history_length}")


@dataclasses.dataclass(frozen=True)
class ScoreConfig:
    """One scoring job: its lists, how each is asked, and which shard of users it covers."""

    candidates: CandidateConfig = CandidateConfig()
    num_orders: int = option(3, "Shuffled orders each list is asked in (position-bias control).")
    max_retries: int = option(2, f"Extra asks of an ordering after an unusable answer (0..{len(RETRY_REMINDERS)}), "
                              "each with a stricter prompt.")
    concurrency: int = option(4, "Requests in flight at once.")
    max_pairs_per_list: int = option(0, "Keep a random sample of this many pairs per list (0: all).")
    max_lists: int = option(0, "Score at most this many lists (0: all), for quick runs.")
    shard_index: int = option(0, "This process scores the users of the dataset shards s with "
                             "s % num_shards == shard_index, and writes one pair file per such shard.")
    num_shards: int = option(1, "Number of scoring processes.")
    max_consecutive_failures: int = 50  # failed requests in a row that end the job (ScoringAborted)
    progress_every_s: float = 10.0

    def validate(self) -> None:
        """Raises ConfigError naming the first invalid setting."""
        self.candidates.validate()
        if self.max_retries > len(RETRY_REMINDERS):
            raise ConfigError(f"max_retries must be <= {len(RETRY_REMINDERS)} (one new prompt per retry), "
                              f"got {self.max_retries}")
        if self.num_orders < 1 or self.max_retries < 0 or self.concurrency < 1:
            raise ConfigError("num_orders and concurrency must be >= 1 and max_retries >= 0")
        if self.max_pairs_per_list < 0 or self.max_lists < 0:
            raise ConfigError("max_pairs_per_list and max_lists must be >= 0")
        if not 0 <= self.shard_index < self.num_shards:
            raise ConfigError(f"shard_index must be in [0, num_shards={self.num_shards}), got {self.shard_index}")


@dataclasses.dataclass(frozen=True)
class OpenAIConfig:
    """The `openai` scorer: an OpenAI-compatible chat endpoint and how to ask it.

    The API key is never a setting: it is read from the environment variable
    named by `openai_api_key_env`, so it stays out of flagfiles, logs and process lists.
    """

    openai_base_url: str | None = option(None, "OpenAI-compatible endpoint, e.g. http://127.0.0.1:8000/v1, or "
                                         "a comma-separated pool of them (default: $OPENAI_BASE_URL).")
    openai_model: str | None = option(None, "Model name sent to the endpoint (default: $OPENAI_MODEL).")
    openai_api_key_env: str = option("OPENAI_API_KEY", "Environment variable holding the API key, if any.")
    openai_mode: str = option("rank", "rank: parse a written ranking; logprobs: rank by the log-probability "
                              "of each label; score: parse a score in [0, 1] per candidate (the paper's "
                              "answers; missing ones 0.5).", choices=OPENAI_MODES)
    openai_prompt: str = option("ours", "ours: our LLMRank-style wording; paper: the paper's score prompt "
                                "(last history items, (item, score) answers; score mode only).",
                                choices=OPENAI_PROMPTS)
    temperature: float = option(0.0, "Sampling temperature.")
    max_tokens: int = option(128, "Answer length limit (rank mode).")
    min_parsed_fraction: float = option(0.5, "An answer must name at least this share of the list (and 2 "
                                        "candidates) to be used; the rest are ranked last and flagged missing.")
    request_timeout_s: float = option(60.0, "Timeout of one HTTP request.")
    request_retries: int = option(4, "Failures in a row after which a server counts as down (each "
                                  "followed by an exponential backoff); a request fails only when every "
                                  "server is down.")
    max_in_flight_per_server: int = option(4, "Requests one server holds at once (the pool's per-server bound).")
    top_logprobs: int = 20
    backoff_s: float = 1.0
    max_backoff_s: float = 30.0

    def validate(self) -> None:
        """Raises ConfigError naming the first invalid setting."""
        if self.openai_mode not in OPENAI_MODES:
            raise ConfigError(f"openai_mode must be one of {OPENAI_MODES}, got {self.openai_mode!r}")
        if self.openai_prompt not in OPENAI_PROMPTS:
            raise ConfigError(f"openai_prompt must be one of {OPENAI_PROMPTS}, got {self.openai_prompt!r}")
        if self.openai_prompt == "paper" and self.openai_mode != "score":
            raise ConfigError("--openai_prompt=paper is the paper's score prompt: use it with --openai_mode=score")
        if self.max_in_flight_per_server < 1 or self.request_retries < 0:
            raise ConfigError("max_in_flight_per_server must be >= 1 and request_retries >= 0")
