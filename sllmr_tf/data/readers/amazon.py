"""Amazon Reviews 2014, 2018 and 2023: the sources of the LLM-CF benchmark.

Users download the files themselves (nothing downloads at run time) and put a
category's pair of files in one raw dir, named as the releases publish them:

    2014  reviews_<Cat>_5.json.gz   strict JSON lines (reviewerID, asin, overall, unixReviewTime)
          meta_<Cat>.json.gz        one Python dict literal per line: read with
                                    ast.literal_eval, never eval
    2018  <Cat>_5.json.gz           strict JSON lines, same review fields as 2014
          meta_<Cat>.json.gz        strict JSON lines
    2023  <Cat>.jsonl[.gz]          strict JSON lines (user_id, parent_asin, rating,
          meta_<Cat>.jsonl[.gz]     timestamp in milliseconds); parent_asin is the item

Item category: the last (most specific) level of the item's first non-empty
category path. The first level is the store department, shared by nearly every
item of a file, so it carries no signal; it is used only when the path has
nothing deeper. 2023 items with no path fall back to `main_category`.

Real meta files repeat some asins (every row is yielded in file order and
`prepare` keeps the first), escape titles as HTML (unescaped here), and lack
titles, brands or categories (left empty).
"""
from __future__ import annotations

import ast
import html
import json
import re
from typing import Callable, Iterator

from sllmr_tf.data.records import BadRecordPolicy, Interaction, ItemInfo, checked_interaction, read_lines
from sllmr_tf import fileio
from sllmr_tf.errors import BadRecordError, ConfigError

DESCRIPTION_CHARS = 200  # enough for an LLM prompt line, short enough for long histories
_TAG = re.compile(r"<[^>]*>")
_SPACE = re.compile(r"\s+")


class _AmazonRelease:
    """What the releases share; each subclass declares its file and field names and
    maps a meta record to an `ItemInfo`."""

    name: str
    review_files: tuple[str, ...]  # "{}" is the category; the first is the canonical name
    meta_files: tuple[str, ...]
    review_fields: tuple[str, str, str, str]  # user, item, rating, timestamp
    time_unit: int = 1
    item_field: str = "asin"

    def __init__(self, raw_dir: str, category: str | None = None, **_unused):
        self.raw_dir = raw_dir
        self.category = self._choose_category(category)
        self.reviews_path = self._existing(self.review_files)
        self.meta_path = self._existing(self.meta_files)

    def categories(self) -> list[str]:
        """The categories whose review file is in the raw dir."""
        if not self.raw_dir or not fileio.isdir(self.raw_dir):
            raise ConfigError(f"{self.raw_dir}: raw dir not found (--raw_dir)")
        patterns = [re.compile(re.escape(t).replace(r"\{\}", "(.+)") + "$") for t in self.review_files]
        found = set()
        for filename in fileio.listdir(self.raw_dir):
            for pattern in patterns:
                match = pattern.match(filename)
                if match and not match.group(1).startswith("meta_"):
                    found.add(match.group(1))
        return sorted(found)

    def interaction_parts(self) -> list[str]:
        return [self.reviews_path]

    def raw_files(self) -> list[str]:
        return [self.reviews_path, self.meta_path]

    def interactions(self, policy: BadRecordPolicy, part: str | None = None) -> Iterator[Interaction]:
        path = part or self.reviews_path
        for number, record in self._records(path, json.loads, "JSON", policy):
            try:
                values = [_required(path, number, record, f) for f in self.review_fields]
                yield checked_interaction(path, number, *values, time_unit=self.time_unit,
                                          names=self.review_fields, policy=policy)
            except BadRecordError as e:
                policy.handle(e)

    def items(self, policy: BadRecordPolicy) -> Iterator[ItemInfo]:
        for number, record in self._records(self.meta_path, self._parse_meta, self._meta_format, policy):
            try:
                item = _clean(_required(self.meta_path, number, record, self.item_field))
                if not item:
                    raise BadRecordError(self.meta_path, number, self.item_field, "empty id")
            except BadRecordError as e:
                policy.handle(e)
                continue
            yield self._item(item, record)

    # Release-specific parts.
    _meta_format = "JSON"

    @staticmethod
    def _parse_meta(text: str) -> object:
        return json.loads(text)

    def _item(self, item: str, record: dict) -> ItemInfo:
        raise NotImplementedError

    # Shared plumbing.
    def _records(self, path: str, parse: Callable[[str], object], fmt: str,
                 policy: BadRecordPolicy) -> Iterator[tuple[int, dict]]:
        for number, text in read_lines(path, policy):
            try:
                record = parse(text)
            except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
                policy.handle(BadRecordError(path, number, None, f"not a valid {fmt} line"))
                continue
            if not isinstance(record, dict):
                policy.handle(BadRecordError(path, number, None, f"expected an object, got {type(record).__name__}"))
                continue
            yield number, record

    def _choose_category(self, category: str | None) -> str:
        available = self.categories()
        expected = self.review_files[0].format("<Category>")
        if not available:
            raise ConfigError(f"{self.raw_dir}: no {self.name} review file ({expected}) found")
        if category is None:
            if len(available) > 1:
                raise ConfigError(f"{self.raw_dir} holds several {self.name} categories "
                                 f"({', '.join(available)}): choose one with --category")
            return available[0]
        for name in available:  # case-insensitive, so TFDS config names (beauty) work too
            if name.lower() == category.lower():
                return name
        raise ConfigError(f"{self.raw_dir}: no {self.name} files for category {category!r}; "
                         f"found {', '.join(available)}")

    def _existing(self, templates: tuple[str, ...]) -> str:
        paths = [fileio.join(self.raw_dir, t.format(self.category)) for t in templates]
        return next((p for p in paths if fileio.exists(p)), paths[0])


class Amazon2014(_AmazonRelease):
    name = "amazon2014"
    review_files = ("reviews_{}_5.json.gz",)
    meta_files = ("meta_{}.json.gz",)
    review_fields = ("reviewerID", "asin", "overall", "unixReviewTime")
    _meta_format = "Python literal"

    @staticmethod
    def _parse_meta(text: str) -> object:
        return ast.literal_eval(text)

    def _item(self, item: str, record: dict) -> ItemInfo:
        paths = record.get("categories") or []
        first = next((p for p in paths if isinstance(p, list) and p), [])
        return ItemInfo(item, title=_clean(record.get("title")), category=_most_specific(first),
                        brand=_clean(record.get("brand")),
                        description=_short(record.get("description")))


class Amazon2018(_AmazonRelease):
    name = "amazon2018"
    review_files = ("{}_5.json.gz",)
    meta_files = ("meta_{}.json.gz",)
    review_fields = ("reviewerID", "asin", "overall", "unixReviewTime")

    def _item(self, item: str, record: dict) -> ItemInfo:
        return ItemInfo(item, title=_clean(record.get("title")),
                        category=_most_specific(record.get("category")),
                        brand=_clean(record.get("brand")),
                        description=_short(record.get("description"), record.get("feature")))


class Amazon2023(_AmazonRelease):
    name = "amazon2023"
    review_files = ("{}.jsonl", "{}.jsonl.gz")
    meta_files = ("meta_{}.jsonl", "meta_{}.jsonl.gz")
    review_fields = ("user_id", "parent_asin", "rating", "timestamp")
    time_unit = 1000  # 2023 timestamps are milliseconds
    item_field = "parent_asin"

    def _item(self, item: str, record: dict) -> ItemInfo:
        category = _most_specific(record.get("categories")) or _clean(record.get("main_category"))
        return ItemInfo(item, title=_clean(record.get("title")), category=category,
                        brand=_clean(record.get("store")),
                        description=_short(record.get("description"), record.get("features")))


def _required(path: str, number: int, record: dict, field: str) -> object:
    if record.get(field) is None:
        raise BadRecordError(path, number, field, "missing required field")
    return record[field]


def _clean(value: object) -> str:
    """Plain one-line text: HTML entities decoded, tags dropped, whitespace collapsed."""
    if value is None:
        return ""
    if isinstance(value, list):  # paragraphs or bullet points
        return "; ".join(t for t in (_clean(v).rstrip(" .;") for v in value) if t)
    return _SPACE.sub(" ", html.unescape(_TAG.sub(" ", str(value)))).strip()


def _most_specific(path: object) -> str:
    levels = [_clean(level) for level in path] if isinstance(path, list) else [_clean(path)]
    levels = [level for level in levels if level]
    return levels[-1] if levels else ""


def _short(*texts: object) -> str:
    """The first non-empty text (description before features), cut at a word boundary."""
    text = next((t for t in (_clean(x) for x in texts) if t), "")
    if len(text) <= DESCRIPTION_CHARS:
        return text
    cut = text[:DESCRIPTION_CHARS].rsplit(" ", 1)[0]
    return cut.rstrip(" ,;:.") + "..."
