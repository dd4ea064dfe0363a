"""Raw records every reader yields, and the bad-input policy they share.

Readers turn a raw source (MovieLens, Amazon, CSV, synthetic) into a stream of
`Interaction`s and `ItemInfo`s keyed by the source's own string ids. Anything
malformed becomes a `BadRecordError` naming file, record and field; the
`BadRecordPolicy` decides whether it stops the job or is skipped and counted.
"""
from __future__ import annotations

import collections
import dataclasses
import gzip
import io
import math
import zlib
from typing import Iterator, Protocol

from sllmr_tf import fileio
from sllmr_tf.errors import BadRecordError, ConfigError


@dataclasses.dataclass(frozen=True)
class Interaction:
    user: str
    item: str
    rating: float
    timestamp: int  # seconds since the epoch (or any monotone clock)


@dataclasses.dataclass(frozen=True)
class ItemInfo:
    item: str
    title: str = ""
    category: str = ""
    brand: str = ""
    description: str = ""  # extra text for the LLM (genres, features), optional

    def text(self) -> str:
        """The item's text as an LLM reads it."""
        parts = [self.title or f"item {self.item}"]
        if self.category:
            parts.append(f"category: {self.category}")
        if self.brand:
            parts.append(f"brand: {self.brand}")
        if self.description:
            parts.append(self.description)
        return "; ".join(parts)


def checked_interaction(path: str, record: int | None, user: object, item: object,
                        rating: object, timestamp: object, time_unit: int = 1,
                        names: tuple[str, str, str, str] = ("user_id", "item_id", "rating", "timestamp"),
                        policy: BadRecordPolicy | None = None) -> Interaction:
    """Build an `Interaction` from one raw record's values, or raise naming the bad field.

    Every reader funnels its raw values through here so that empty ids, non-numeric
    ratings and negative timestamps are rejected the same way whatever the format.
    `time_unit` divides the timestamp (1000 for millisecond clocks); `names` are the
    source's own field names, used in error messages.

    Ids are stripped of surrounding whitespace, not refused: padded ids are what
    spreadsheet and fixed-width exports produce, and an id differing from another
    only in outer spaces never names another entity. The `policy` counts the
    records so normalised (stats.json `ids_stripped`), so the merge is visible.
    """
    user_field, item_field, rating_field, time_field = names
    ids = {}
    stripped = False
    for field, value in ((user_field, user), (item_field, item)):
        raw = "" if value is None else str(value)
        text = raw.strip()
        if not text:
            raise BadRecordError(path, record, field, "empty id")
        ids[field] = text
        stripped |= text != raw
    numbers = {}
    for field, value in ((rating_field, rating), (time_field, timestamp)):
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise BadRecordError(path, record, field, f"not a number: {value!r}") from None
        if not math.isfinite(number):
            raise BadRecordError(path, record, field, f"not a finite number: {value!r}")
        numbers[field] = number
    if numbers[time_field] < 0:
        raise BadRecordError(path, record, time_field, f"negative value {timestamp!r}")
    if stripped and policy is not None:
        policy.ids_stripped += 1
    return Interaction(ids[user_field], ids[item_field], numbers[rating_field],
                       int(numbers[time_field]) // time_unit)


class BadRecordPolicy:
    """`error` raises on the first bad record; `skip` counts it and moves on."""

    MODES = ("error", "skip")

    def __init__(self, mode: str = "error"):
        if mode not in self.MODES:
            raise ConfigError(f"on_bad_record must be one of {self.MODES}, got {mode!r}")
        self.mode = mode
        self.skipped: collections.Counter = collections.Counter()
        self.ids_stripped = 0  # records whose ids had surrounding whitespace (checked_interaction)
        self.examples: list[str] = []

    def handle(self, error: BadRecordError) -> None:
        if self.mode == "error":
            raise error
        self.skipped[fileio.basename(error.path)] += 1
        if len(self.examples) < 5:
            self.examples.append(str(error))

    @property
    def total_skipped(self) -> int:
        return sum(self.skipped.values())


class RawSource(Protocol):
    """What `prepare` needs from a raw dataset.

    The interactions come in parts (files) that can be read side by side;
    `interactions(policy, part)` streams one part in file order, and without
    a part all of them, one after another.
    """

    name: str

    def interaction_parts(self) -> list[str]: ...

    def raw_files(self) -> list[str]:
        """Every file the source reads (the dataset fingerprint hashes them, lineage.py)."""
        ...

    def interactions(self, policy: BadRecordPolicy, part: str | None = None) -> Iterator[Interaction]: ...

    def items(self, policy: BadRecordPolicy) -> Iterator[ItemInfo]: ...


def read_lines(path: str, policy: BadRecordPolicy | None = None) -> Iterator[tuple[int, str]]:
    """Yield (1-based line number, text) of a plain or gzip text file, streaming.

    Accepts a UTF-8 BOM and CRLF endings; blank lines are skipped. A bad line
    (NUL byte, invalid UTF-8) or a bad file (empty, corrupt gzip) becomes a
    `BadRecordError` naming the line. Without a `policy` it is raised; with one
    it is handed to the policy, so under `skip` a bad line is dropped and a bad
    file ends the stream after the lines read so far. A missing file always raises.
    """
    if not fileio.exists(path):
        raise BadRecordError(path, None, None, "file not found")
    if fileio.size(path) == 0:
        _report(policy, BadRecordError(path, None, None, "file is empty"))
        return
    number = 0
    any_line = False
    try:
        with open_binary(path) as raw:
            for number, line in enumerate(raw, start=1):
                if number == 1 and line.startswith(b"\xef\xbb\xbf"):
                    line = line[3:]
                if b"\x00" in line:
                    _report(policy, BadRecordError(path, number, None, "NUL byte in line"))
                    continue
                try:
                    text = line.decode("utf-8").rstrip("\r\n")
                except UnicodeDecodeError as e:
                    _report(policy, BadRecordError(path, number, None, f"invalid UTF-8 ({e.reason})"))
                    continue
                if text.strip():
                    any_line = True
                    yield number, text
    except (OSError, EOFError, zlib.error, gzip.BadGzipFile) as e:
        _report(policy, BadRecordError(path, number + 1, None, f"corrupt or truncated file ({e})"))
        return
    if not any_line:
        _report(policy, BadRecordError(path, None, None, "file has no records"))


def _report(policy: BadRecordPolicy | None, error: BadRecordError) -> None:
    if policy is None:
        raise error
    policy.handle(error)


def _is_gzip(path: str) -> bool:
    with fileio.open_file(path, "rb") as f:
        return f.read(2) == b"\x1f\x8b"


def open_binary(path: str) -> io.BufferedIOBase:
    """A buffered binary reader of a plain or gzip file (recognised by its magic bytes, not its name)."""
    stream = fileio.open_binary_stream(path)
    if _is_gzip(path):
        return _GzipReader(stream)
    return stream


class _GzipReader(gzip.GzipFile):
    """A gzip stream that closes the file under it too; lines before a damaged end still come out."""

    def __init__(self, stream: io.BufferedIOBase):
        super().__init__(fileobj=stream, mode="rb")
        self._stream = stream

    def close(self) -> None:
        super().close()
        self._stream.close()


def open_text(path: str) -> io.TextIOBase:
    """A plain or gzip text file for a csv reader (BOM stripped)."""
    return io.TextIOWrapper(open_binary(path), encoding="utf-8-sig", newline="")
