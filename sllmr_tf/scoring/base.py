"""The interface every scorer backend implements.

A backend ranks one candidate list for one user, in the order presented. The
scoring pipeline asks several shuffled orders, aggregates them Borda-style and
turns agreement across orders into each pair's confidence; deterministic
backends (ordering cannot matter) are asked once.

A request that gets no answer at all (server down, timed out, an HTTP error)
raises `TransportError`: the pipeline counts it against the list and moves on.
Any other exception from a backend is a bug and ends the job.
"""
from __future__ import annotations

import dataclasses
from typing import Protocol

import numpy as np


class TransportError(Exception):
    """A request got no answer to read (connection refused, timeout, HTTP error after retries)."""


@dataclasses.dataclass(frozen=True)
class RankRequest:
    user_index: int
    history: tuple[int, ...]  # item indices, most recent first
    candidates: tuple[int, ...]  # item indices in the order presented
    prompt: str  # the rendered prompt; LLM backends send it, others may ignore it


@dataclasses.dataclass
class RankResponse:
    scores: np.ndarray  # float, one per candidate in request order; higher = preferred
    missing: np.ndarray  # bool, candidate absent from the answer (ranked last, flagged)
    raw: str = ""  # raw answer text, for the inspection log
    ok: bool = True  # False: malformed/empty answer; the pipeline retries, then skips


class Backend(Protocol):
    name: str
    model: str  # part of the cache key
    deterministic: bool  # True: every ordering gets the same answer, ask once

    def decoding_params(self) -> dict:
        """Everything besides the prompt that changes the answer (cache key)."""
        ...

    def rank(self, request: RankRequest) -> RankResponse: ...
