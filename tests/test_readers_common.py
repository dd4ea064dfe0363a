"""Behaviour every reader shares: the bundled MovieLens data, valid oddities, and each
class of bad input named by file and line under --on_bad_record=error and skipped and
counted under --on_bad_record=skip."""
import dataclasses
import gzip
import json
import pathlib
import zlib
from typing import Callable

import pytest

from sllmr_tf.data.readers.amazon import Amazon2014, Amazon2018, Amazon2023
from sllmr_tf.data.readers.movielens import MovieLens100k
from sllmr_tf.data.readers.tabular import TabularSource
from sllmr_tf.data.records import BadRecordPolicy, RawSource, read_lines
from sllmr_tf.errors import BadRecordError


def test_bundled_movielens_has_the_published_counts():
    source = MovieLens100k()
    policy = BadRecordPolicy("error")
    interactions = list(source.interactions(policy))
    items = list(source.items(policy))
    assert len(interactions) == 100_000
    assert len({i.user for i in interactions}) == 943
    assert len(items) == 1682 == len({i.item for i in interactions})
    assert {i.rating for i in interactions} == {1.0, 2.0, 3.0, 4.0, 5.0}
    assert items[0].title == "Toy Story (1995)"


@pytest.mark.parametrize("compress", [False, True])
def test_read_lines_accepts_bom_crlf_blank_lines_and_unicode(tmp_path, compress):
    data = "\ufeffcafé ☕\r\n\r\n  \r\n千と千尋\r\nlast line without newline".encode("utf-8")
    path = tmp_path / "text"
    path.write_bytes(gzip.compress(data) if compress else data)
    assert list(read_lines(str(path))) == [(1, "café ☕"), (4, "千と千尋"), (5, "last line without newline")]


FIELDS_2014 = ("reviewerID", "asin", "overall", "unixReviewTime")
FIELDS_2023 = ("user_id", "parent_asin", "rating", "timestamp")


def review(k: int, fields: tuple[str, ...] = FIELDS_2014) -> str:
    user, item, rating, timestamp = fields
    return json.dumps({user: f"u{k}", item: f"i{k % 5}", rating: 4.0, timestamp: 1000 + k,
                       "reviewText": "fine " * (k % 7)})


@dataclasses.dataclass
class Case:
    source: RawSource
    path: pathlib.Path   # the file the error must name
    line: int | None     # the line it must name (None: the whole file)
    field: str | None
    good: int            # records still read under skip


def corrupt_gzip(tmp: pathlib.Path) -> Case:
    data = gzip.compress(("\n".join(review(k) for k in range(3000)) + "\n").encode())
    truncated = data[: len(data) // 2]
    complete = zlib.decompressobj(wbits=31).decompress(truncated).count(b"\n")
    (tmp / "Toys_5.json.gz").write_bytes(truncated)
    return Case(Amazon2018(str(tmp)), tmp / "Toys_5.json.gz", complete + 1, None, complete)


def non_json_line(tmp: pathlib.Path) -> Case:
    lines = [review(0, FIELDS_2023), "{'user_id': 'u1'", review(2, FIELDS_2023)]
    (tmp / "Beauty.jsonl").write_text("\n".join(lines))
    return Case(Amazon2023(str(tmp)), tmp / "Beauty.jsonl", 2, None, 2)


def missing_required_field(tmp: pathlib.Path) -> Case:
    bad = json.loads(review(1))
    del bad["unixReviewTime"]
    lines = [review(0), json.dumps(bad), review(2)]
    (tmp / "reviews_Beauty_5.json.gz").write_bytes(gzip.compress("\n".join(lines).encode()))
    return Case(Amazon2014(str(tmp)), tmp / "reviews_Beauty_5.json.gz", 2, "unixReviewTime", 2)


def non_numeric_rating(tmp: pathlib.Path) -> Case:
    (tmp / "ml-100k.inter").write_text("user_id:token\titem_id:token\trating:float\ttimestamp:float\n"
                                       "1\t10\t4\t881250949\n2\t20\tfour\t881250950\n3\t30\t5\t881250951\n")
    return Case(MovieLens100k(str(tmp)), tmp / "ml-100k.inter", 3, "rating", 2)


def negative_timestamp(tmp: pathlib.Path) -> Case:
    (tmp / "interactions.csv").write_text("user_id,item_id,rating,timestamp\nu,i,4,-3\nv,j,5,7\n")
    return Case(TabularSource(str(tmp)), tmp / "interactions.csv", 2, "timestamp", 1)


def empty_file(tmp: pathlib.Path) -> Case:
    (tmp / "Toys_5.json.gz").write_bytes(b"")
    return Case(Amazon2018(str(tmp)), tmp / "Toys_5.json.gz", None, None, 0)


def nul_byte(tmp: pathlib.Path) -> Case:
    data = "\n".join([review(0), review(1), review(2)]).encode().replace(b'"u1"', b'"u\x001"')
    (tmp / "reviews_Beauty_5.json.gz").write_bytes(gzip.compress(data))
    return Case(Amazon2014(str(tmp)), tmp / "reviews_Beauty_5.json.gz", 2, None, 2)


def invalid_utf8(tmp: pathlib.Path) -> Case:
    data = "\n".join([review(0), review(1), review(2)]).encode().replace(b"u2", b"u\xff2")
    (tmp / "Toys_5.json.gz").write_bytes(data)  # a .gz name holding plain text is fine
    return Case(Amazon2018(str(tmp)), tmp / "Toys_5.json.gz", 3, None, 2)


def missing_column(tmp: pathlib.Path) -> Case:
    (tmp / "interactions.csv").write_text("user_id,item_id,score,timestamp\nu,i,4,3\n")
    return Case(TabularSource(str(tmp)), tmp / "interactions.csv", 1, "rating", 0)


def missing_column_movielens(tmp: pathlib.Path) -> Case:
    (tmp / "ml-100k.inter").write_text("user_id:token\titem_id:token\ttimestamp:float\n1\t10\t881250949\n")
    return Case(MovieLens100k(str(tmp)), tmp / "ml-100k.inter", 1, "rating", 0)


BAD_INPUTS: dict[str, Callable[[pathlib.Path], Case]] = {
    f.__name__: f for f in (corrupt_gzip, non_json_line, missing_required_field, non_numeric_rating,
                            negative_timestamp, empty_file, nul_byte, invalid_utf8, missing_column)
}


@pytest.mark.parametrize("name", BAD_INPUTS)
def test_bad_input_is_rejected_naming_file_line_and_field(tmp_path, name):
    case = BAD_INPUTS[name](tmp_path)
    with pytest.raises(BadRecordError) as error:
        list(case.source.interactions(BadRecordPolicy("error")))
    where = f"{case.path}:{case.line}:" if case.line is not None else f"{case.path}:"
    assert str(error.value).startswith(where)
    assert (error.value.record, error.value.field) == (case.line, case.field)


@pytest.mark.parametrize("name", BAD_INPUTS)
def test_bad_input_is_skipped_and_counted_under_skip(tmp_path, name):
    case = BAD_INPUTS[name](tmp_path)
    policy = BadRecordPolicy("skip")
    assert len(list(case.source.interactions(policy))) == case.good
    assert policy.skipped == {case.path.name: 1}
    assert policy.examples and policy.examples[0].startswith(str(case.path))


def test_movielens_names_a_missing_column(tmp_path):
    case = missing_column_movielens(tmp_path)
    with pytest.raises(BadRecordError, match=r"ml-100k.inter:1: field 'rating': missing column"):
        list(case.source.interactions(BadRecordPolicy("error")))
