"""The errors a user can fix: raised on purpose, reported by every binary as one line, exit 2.

Anything else that escapes a binary is a bug in sllmr-tf and keeps its
traceback (exit 1). So code raises a `UserError` only where the cause is the
input (a flag, a file, an artifact from another run) and the message says what
to change; it never catches built-in exceptions to make a crash look tidy.
"""
from __future__ import annotations


class UserError(Exception):
    """Bad input or flags; the message is the whole report (one line)."""


class ConfigError(UserError):
    """A flag or config value is invalid, or two of them contradict each other."""


class BadRecordError(UserError):
    """A malformed raw record: the message names the file, the record and the field."""

    def __init__(self, path: str, record: int | None, field: str | None, reason: str):
        self.path, self.record, self.field, self.reason = path, record, field, reason
        where = f"{path}" + (f":{record}" if record is not None else "")
        what = f" field {field!r}:" if field else ""
        super().__init__(f"{where}:{what} {reason}")

    def __reduce__(self):
        # Rebuilt from its parts, so a pipeline worker can hand it to the driver intact.
        return BadRecordError, (self.path, self.record, self.field, self.reason)


class DataError(UserError):
    """Raw data that parses but cannot make a dataset (too few events, an empty split)."""


class ArtifactError(UserError):
    """A dataset, pairs or model directory is missing, incomplete, or from another run."""


class ScoringAborted(UserError):
    """The LLM server keeps failing (down, wrong model or URL): stop instead of skipping everything."""
