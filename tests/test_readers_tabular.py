"""Generic CSV / Parquet tables: the format contract and its errors."""
import gzip
import pathlib
import shutil

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pytest

from sllmr_tf.data.readers import SOURCES
from sllmr_tf.data.readers.tabular import TabularSource
from sllmr_tf.data.records import BadRecordPolicy, Interaction, ItemInfo
from sllmr_tf.errors import BadRecordError, ConfigError

FIXTURES = pathlib.Path(__file__).parent / "fixtures" / "tabular"
HEADER = "user_id,item_id,rating,timestamp"


def read(raw_dir, mode="error"):
    policy = BadRecordPolicy(mode)
    source = TabularSource(str(raw_dir))
    return list(source.interactions(policy)), list(source.items(policy)), policy


def write_csv(path: pathlib.Path, *lines: str) -> pathlib.Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_csv_source_is_registered_as_csv():
    assert SOURCES.get("csv") is TabularSource


def test_csv_with_bom_crlf_quotes_blank_lines_and_unicode_is_read():
    raw = (FIXTURES / "interactions.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf") and b"\r\n" in raw
    interactions, items, _ = read(FIXTURES)
    assert interactions == [
        Interaction("u1", "i1", 5.0, 978300760), Interaction("u1", "i2", 3.5, 978302109),
        Interaction("u2", "i1", 4.0, 978301968), Interaction("u2", "i,3", 1.0, 978300275),
        Interaction("üser3", "i2", 2.0, 978824291), Interaction("üser3", "i1", 5.0, 978824330),
    ]
    assert items == [
        ItemInfo("i1", "Toy Story (1995)", "Animation", "Pixar", "A cowboy doll, threatened by a new spaceman."),
        ItemInfo("i2", "Amélie (2001)", "Comedy", "", 'Quirky; "whimsical" Paris'),
        ItemInfo("i,3", "千と千尋の神隠し", "Animation", "Ghibli", ""),
    ]


def test_parquet_tables_read_exactly_like_the_csv_ones(tmp_path):
    for stem in ("interactions", "items"):
        table = pa_csv.read_csv(FIXTURES / f"{stem}.csv", convert_options=pa_csv.ConvertOptions(
            column_types={"user_id": pa.string(), "item_id": pa.string(), "brand": pa.string(),
                          "text": pa.string()}))
        pq.write_table(table, tmp_path / f"{stem}.parquet", row_group_size=2)
    assert read(tmp_path)[:2] == read(FIXTURES)[:2]


def test_parquet_timestamp_columns_become_epoch_seconds_and_integer_ids_strings(tmp_path):
    pq.write_table(pa.table({
        "user_id": pa.array([7, 8], pa.int64()), "item_id": ["a", "b"], "rating": pa.array([4, 5], pa.int8()),
        "timestamp": pa.array([978300760_000_000, 978300761_500_000], pa.timestamp("us"))}),
        tmp_path / "interactions.parquet")
    interactions, items, _ = read(tmp_path)
    assert interactions == [Interaction("7", "a", 4.0, 978300760), Interaction("8", "b", 5.0, 978300761)]
    assert items == []  # no item table: no item text


def test_gzip_csv_is_read(tmp_path):
    (tmp_path / "interactions.csv.gz").write_bytes(gzip.compress((FIXTURES / "interactions.csv").read_bytes()))
    assert read(tmp_path)[0] == read(FIXTURES)[0]


def test_duplicate_item_rows_are_all_yielded_in_file_order(tmp_path):
    shutil.copy(FIXTURES / "interactions.csv", tmp_path)
    write_csv(tmp_path / "items.csv", "item_id,title,category,brand", "i1,First,c,b", "i1,Second,c,b")
    assert [i.title for i in read(tmp_path)[1]] == ["First", "Second"]


def test_a_missing_interactions_table_or_two_of_them_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="no interactions table"):
        TabularSource(str(tmp_path))
    shutil.copy(FIXTURES / "interactions.csv", tmp_path)
    (tmp_path / "interactions.parquet").write_bytes(b"")
    with pytest.raises(ConfigError, match="several interactions tables"):
        TabularSource(str(tmp_path))


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_a_missing_column_is_named(tmp_path, fmt):
    if fmt == "csv":
        write_csv(tmp_path / "interactions.csv", "user_id,item_id,timestamp", "u,i,1")
    else:
        pq.write_table(pa.table({"user_id": ["u"], "item_id": ["i"], "timestamp": [1]}),
                       tmp_path / "interactions.parquet")
    with pytest.raises(BadRecordError, match=f"interactions.{fmt}.*'rating': missing column") as error:
        read(tmp_path)
    assert error.value.field == "rating"
    interactions, _, policy = read(tmp_path, "skip")
    assert interactions == [] and policy.total_skipped == 1


def test_a_missing_item_column_is_named(tmp_path):
    shutil.copy(FIXTURES / "interactions.csv", tmp_path)
    write_csv(tmp_path / "items.csv", "item_id,title,category", "i1,t,c")
    with pytest.raises(BadRecordError, match=r"items.csv:1: field 'brand': missing column"):
        read(tmp_path)


BAD_CSV_ROWS = {  # case -> (bad row, field named)
    "non-numeric rating": ("u,i,five,10", "rating"),
    "negative timestamp": ("u,i,4,-1", "timestamp"),
    "empty user id": (" ,i,4,10", "user_id"),
    "empty item id": ("u,,4,10", "item_id"),
    "short row": ("u,i,4", "timestamp"),
    "NUL byte": ("u,i\x00,4,10", None),
}


@pytest.mark.parametrize("case", BAD_CSV_ROWS)
def test_a_bad_csv_row_is_named_by_its_file_line(tmp_path, case):
    bad, field = BAD_CSV_ROWS[case]
    path = write_csv(tmp_path / "interactions.csv", HEADER, "a,x,5,1", "", bad, "b,y,3,2")
    with pytest.raises(BadRecordError) as error:
        read(tmp_path)
    assert str(error.value).startswith(f"{path}:4:")  # the blank line 3 still counts
    assert error.value.field == field
    interactions, _, policy = read(tmp_path, "skip")
    assert [i.user for i in interactions] == ["a", "b"]
    assert policy.skipped == {"interactions.csv": 1}


def test_a_bad_parquet_row_is_named_by_its_row_number(tmp_path):
    pq.write_table(pa.table({"user_id": ["a", "b", "c"], "item_id": ["x", "y", "z"],
                             "rating": ["5", "high", "3"], "timestamp": [1, 2, 3]}),
                   tmp_path / "interactions.parquet")
    with pytest.raises(BadRecordError, match=r"interactions.parquet:2: field 'rating': not a number: 'high'"):
        read(tmp_path)
    assert [i.user for i in read(tmp_path, "skip")[0]] == ["a", "c"]


@pytest.mark.parametrize("content, message", [
    (b"", "file is empty"),
    (HEADER.encode() + b"\r\n", "file has no records"),
    (b"\xff\xfe" + HEADER.encode() + b"\n", "unreadable text"),
])
def test_empty_header_only_and_undecodable_files_are_rejected(tmp_path, content, message):
    (tmp_path / "interactions.csv").write_bytes(content)
    with pytest.raises(BadRecordError, match=f"interactions.csv.*{message}"):
        read(tmp_path)
    assert read(tmp_path, "skip")[2].total_skipped == 1


def test_a_truncated_gzip_csv_keeps_the_rows_before_the_damage_under_skip(tmp_path):
    rows = [HEADER] + [f"u{k},i{k % 9},4,{k}" for k in range(2000)]
    data = gzip.compress(("\n".join(rows) + "\n").encode())
    (tmp_path / "interactions.csv.gz").write_bytes(data[: len(data) // 2])
    with pytest.raises(BadRecordError, match=r"interactions.csv.gz:\d+: unreadable text"):
        read(tmp_path)
    interactions, _, policy = read(tmp_path, "skip")
    assert 0 < len(interactions) < 2000 and policy.total_skipped == 1
    assert [i.timestamp for i in interactions] == list(range(len(interactions)))


def test_a_file_that_is_not_parquet_is_rejected(tmp_path):
    (tmp_path / "interactions.parquet").write_bytes(b"user_id,item_id\n")
    with pytest.raises(BadRecordError, match="interactions.parquet: unreadable Parquet"):
        read(tmp_path)
