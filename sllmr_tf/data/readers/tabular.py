"""Generic tables: the way to bring any dataset that is not built in.

    raw_dir/interactions.csv | .csv.gz | .parquet   user_id, item_id, rating, timestamp
    raw_dir/items.csv | .csv.gz | .parquet          item_id, title, category, brand[, text]  (optional)

A table may also come in parts, `interactions-<anything>.parquet` (what
BigQuery's EXPORT DATA writes for a `interactions-*.parquet` URI): the parts
are read in name order, and `prepare` reads the interaction parts side by
side. CSV is streamed row by row with the csv module and errors name the file
line; Parquet is streamed in record batches and errors name the 1-based row.
Values may be empty except ids, ratings and timestamps. Rows come out in file
order; an item listed twice is yielded twice and `prepare` keeps the first.
"""
from __future__ import annotations

import csv
import gzip
import zlib
from typing import Iterator

from sllmr_tf.data.records import BadRecordPolicy, Interaction, ItemInfo, checked_interaction, open_text
from sllmr_tf import fileio
from sllmr_tf.errors import BadRecordError, ConfigError

INTERACTION_COLUMNS = ("user_id", "item_id", "rating", "timestamp")
ITEM_COLUMNS = ("item_id", "title", "category", "brand")
OPTIONAL_ITEM_COLUMNS = ("text",)
_SUFFIXES = (".csv", ".csv.gz", ".parquet")
_PARQUET_BATCH_ROWS = 65536

Row = dict[str, object]


class TabularSource:
    """interactions + optional items tables, CSV or Parquet."""

    name = "csv"

    def __init__(self, raw_dir: str, **_unused):
        if not raw_dir or not fileio.isdir(raw_dir):
            raise ConfigError(f"{raw_dir}: raw dir not found (--raw_dir)")
        self.interactions_paths = _table_paths(raw_dir, "interactions")
        if not self.interactions_paths:
            raise ConfigError(f"{raw_dir}: no interactions table (interactions{'|'.join(_SUFFIXES)}, "
                              f"or parts interactions-*{'|'.join(_SUFFIXES)})")
        self.items_paths = _table_paths(raw_dir, "items")

    def interaction_parts(self) -> list[str]:
        return list(self.interactions_paths)

    def raw_files(self) -> list[str]:
        return [*self.interactions_paths, *self.items_paths]

    def interactions(self, policy: BadRecordPolicy, part: str | None = None) -> Iterator[Interaction]:
        for path in [part] if part else self.interactions_paths:
            for record, row in _read_table(path, INTERACTION_COLUMNS, (), policy):
                try:
                    yield checked_interaction(path, record, row["user_id"], row["item_id"],
                                              row["rating"], row["timestamp"], policy=policy)
                except BadRecordError as e:
                    policy.handle(e)

    def items(self, policy: BadRecordPolicy) -> Iterator[ItemInfo]:
        """The item table's rows; nothing when there is no item table."""
        for path in self.items_paths:
            for record, row in _read_table(path, ITEM_COLUMNS, OPTIONAL_ITEM_COLUMNS, policy):
                text = {k: _text(v) for k, v in row.items()}
                if not text["item_id"]:
                    policy.handle(BadRecordError(path, record, "item_id", "empty id"))
                    continue
                yield ItemInfo(text["item_id"], title=text["title"], category=text["category"],
                               brand=text["brand"], description=text.get("text", ""))


def _read_table(path: str, required: tuple[str, ...], optional: tuple[str, ...],
               policy: BadRecordPolicy) -> Iterator[tuple[int, Row]]:
    """Yield (record number, {column: value}) for the required and present optional columns.

    A missing required column, an empty or unreadable file is one bad record
    that ends the table; a malformed row is one bad record.
    """
    if fileio.size(path) == 0:
        policy.handle(BadRecordError(path, None, None, "file is empty"))
        return
    rows = _parquet_rows if path.endswith(".parquet") else _csv_rows
    any_row = False
    try:
        for record, row in rows(path, required, optional, policy):
            any_row = True
            yield record, row
    except BadRecordError as e:  # what gets here ends the table (bad rows under skip stay inside)
        policy.handle(e)
        return
    if not any_row:
        policy.handle(BadRecordError(path, None, None, "file has no records"))


def _csv_rows(path: str, required: tuple[str, ...], optional: tuple[str, ...],
              policy: BadRecordPolicy) -> Iterator[tuple[int, Row]]:
    reader = None
    try:
        with open_text(path) as f:
            reader = csv.reader(f)
            header = [name.strip() for name in next(reader, [])]
            columns = _columns(path, 1, header, required, optional)
            while True:
                try:
                    fields = next(reader)
                except StopIteration:
                    return
                except csv.Error as e:
                    policy.handle(BadRecordError(path, reader.line_num, None, f"bad CSV row ({e})"))
                    continue
                if not fields:
                    continue  # blank line
                try:
                    yield reader.line_num, _csv_row(path, reader.line_num, header, columns, fields)
                except BadRecordError as e:
                    policy.handle(e)
    except (UnicodeDecodeError, OSError, EOFError, zlib.error, gzip.BadGzipFile) as e:
        line = (reader.line_num if reader else 0) + 1
        raise BadRecordError(path, line, None, f"unreadable text ({e})") from None


def _csv_row(path: str, line: int, header: list[str], columns: dict[str, int],
             fields: list[str]) -> Row:
    if any("\x00" in field for field in fields):
        raise BadRecordError(path, line, None, "NUL byte in line")
    if len(fields) != len(header):
        field = header[len(fields)] if len(fields) < len(header) else None
        raise BadRecordError(path, line, field, f"{len(fields)} values, header has {len(header)}")
    return {name: fields[index] for name, index in columns.items()}


def _parquet_rows(path: str, required: tuple[str, ...], optional: tuple[str, ...],
                  policy: BadRecordPolicy) -> Iterator[tuple[int, Row]]:
    import pyarrow as pa  # only Parquet tables need pyarrow
    import pyarrow.parquet as pq

    row = 0
    try:
        table = pq.ParquetFile(fileio.open_binary_stream(path))
        columns = _columns(path, None, table.schema_arrow.names, required, optional)
        for batch in table.iter_batches(batch_size=_PARQUET_BATCH_ROWS, columns=list(columns)):
            values = {name: _arrow_values(pa, batch.column(name)) for name in columns}
            for i in range(batch.num_rows):
                row += 1
                yield row, {name: column[i] for name, column in values.items()}
    except (pa.ArrowException, OSError) as e:
        raise BadRecordError(path, row + 1 if row else None, None, f"unreadable Parquet ({e})") from None


def _arrow_values(pa, column) -> list:
    """Python values of a column; timestamp columns become epoch seconds."""
    if pa.types.is_timestamp(column.type):
        column = column.cast(pa.timestamp("s", column.type.tz), safe=False).cast(pa.int64())
    return column.to_pylist()


def _columns(path: str, record: int | None, header: list[str], required: tuple[str, ...],
             optional: tuple[str, ...]) -> dict[str, int]:
    """The index of each required and present optional column.

    A column named twice is refused: which of the two holds the data is a guess.
    """
    for name in required + optional:
        if header.count(name) > 1:
            raise BadRecordError(path, record, name, f"column appears {header.count(name)} times in the header; "
                                 "keep one")
    for name in required:
        if name not in header:
            raise BadRecordError(path, record, name, f"missing column (have {', '.join(header) or 'none'})")
    return {name: header.index(name) for name in required + optional if name in header}


def _table_paths(raw_dir: str, stem: str) -> list[str]:
    """The files of one table: `stem.<suffix>`, or its parts `stem-*.<suffix>` in name order."""
    found = [[path] for s in _SUFFIXES if fileio.exists(path := fileio.join(raw_dir, stem + s))]
    found += [parts for s in _SUFFIXES if (parts := fileio.glob(fileio.join(raw_dir, f"{stem}-*{s}")))]
    if len(found) > 1:
        names = ", ".join(fileio.basename(p[0]) + (f" (+{len(p) - 1} parts)" if len(p) > 1 else "") for p in found)
        raise ConfigError(f"{raw_dir}: several {stem} tables ({names}); keep one")
    return found[0] if found else []


def _text(value: object) -> str:
    return "" if value is None else str(value).strip()
