"""The on-disk response cache: a killed scoring job resumes without asking any prompt twice.

Append-only JSONL, one file per writer (`responses-<shard>.jsonl`), every file
of the folder read at start so a re-sharded run reuses all answers. Each
answer is one line written with a single write and flushed at once, so a kill
can only leave a torn last line; torn lines are skipped on load and the next
append starts on a fresh line. Keys hash everything that changes an answer:
backend, model, decoding parameters, the prompt and the request's items.
"""
from __future__ import annotations

import hashlib
import json
import threading

import numpy as np

from sllmr_tf import fileio
from sllmr_tf.scoring.base import Backend, RankRequest, RankResponse


def cache_key(backend: Backend, request: RankRequest) -> str:
    payload = {
        "backend": backend.name,
        "model": backend.model,
        "params": backend.decoding_params(),
        "prompt": request.prompt,
        "user": request.user_index,
        "history": list(request.history),
        "candidates": list(request.candidates),
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


class ResponseCache:
    """Thread-safe map key -> RankResponse, persisted as it grows."""

    def __init__(self, cache_dir: str, writer_name: str):
        fileio.makedirs(cache_dir)
        self.path = fileio.join(cache_dir, f"responses-{writer_name}.jsonl")
        self.torn_lines = 0
        self._entries: dict[str, dict] = {}
        for path in fileio.glob(fileio.join(cache_dir, "responses-*.jsonl")):
            self._load(path)
        self._lock = threading.Lock()
        torn_end = fileio.exists(self.path) and fileio.size(self.path) > 0 and not self._ends_with_newline()
        with fileio.writing(self.path):
            self._file = fileio.open_file(self.path, "ab")
            if torn_end:  # a torn last line: never glue a new entry to it
                self._file.write(b"\n")
                self._file.flush()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: str) -> RankResponse | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        return RankResponse(scores=np.asarray(entry["scores"], np.float32),
                            missing=np.asarray(entry["missing"], bool), raw=entry["raw"], ok=entry["ok"])

    def put(self, key: str, response: RankResponse) -> None:
        entry = {"scores": np.asarray(response.scores, np.float64).tolist(),
                 "missing": np.asarray(response.missing, bool).tolist(),
                 "raw": response.raw, "ok": bool(response.ok)}
        line = (json.dumps({"key": key, **entry}) + "\n").encode()
        with self._lock, fileio.writing(self.path):
            self._file.write(line)
            self._file.flush()
            self._entries[key] = entry

    def close(self) -> None:
        with self._lock, fileio.writing(self.path):
            self._file.close()

    def _ends_with_newline(self) -> bool:
        with fileio.open_file(self.path, "rb") as f:
            f.seek(fileio.size(self.path) - 1)
            return f.read(1) == b"\n"

    def _load(self, path: str) -> None:
        with fileio.open_binary_stream(path) as f:
            for line in f:
                if not line.strip():
                    continue
                try:
                    entry = json.loads(line)
                except json.JSONDecodeError:  # a line cut short by a kill (entries are ASCII objects)
                    self.torn_lines += 1
                    continue
                self._entries[entry["key"]] = entry
