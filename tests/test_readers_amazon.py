"""Amazon Reviews 2014 / 2018 / 2023 readers on fixtures written in the published formats."""
import gzip
import json
import os
import pathlib
import shutil

import pytest

from sllmr_tf.data.readers import SOURCES
from sllmr_tf.data.readers.amazon import DESCRIPTION_CHARS, Amazon2014, Amazon2018, Amazon2023
from sllmr_tf.data.records import BadRecordPolicy, Interaction, ItemInfo
from sllmr_tf.errors import BadRecordError, ConfigError

FIXTURES = pathlib.Path(__file__).parent / "fixtures"
RELEASES = {  # reader, fixture dir, its category, review file, meta file
    "amazon2014": (Amazon2014, "amazon2014", "Beauty", "reviews_Beauty_5.json.gz", "meta_Beauty.json.gz"),
    "amazon2018": (Amazon2018, "amazon2018", "Toys_and_Games", "Toys_and_Games_5.json.gz",
                   "meta_Toys_and_Games.json.gz"),
    "amazon2023": (Amazon2023, "amazon2023", "All_Beauty", "All_Beauty.jsonl", "meta_All_Beauty.jsonl"),
}


def read(source, mode="error"):
    policy = BadRecordPolicy(mode)
    items = {}
    for info in source.items(policy):
        items.setdefault(info.item, info)  # the first row of an item wins, as in prepare
    return list(source.interactions(policy)), items, policy


def text_lines(path):
    with (gzip.open if str(path).endswith(".gz") else open)(path, "rt", encoding="utf-8-sig") as f:
        return f.read().splitlines()


def write_like(src: pathlib.Path, dst: pathlib.Path, lines):
    """Write lines to dst, gzip-compressed exactly when src is."""
    data = ("\n".join(lines) + "\n").encode("utf-8")
    dst.write_bytes(gzip.compress(data) if src.read_bytes()[:2] == b"\x1f\x8b" else data)


@pytest.mark.parametrize("name", RELEASES)
def test_registry_names_the_three_releases(name):
    assert SOURCES.get(name) is RELEASES[name][0]


def test_2014_reviews_become_interactions_in_file_order():
    interactions, _, _ = read(Amazon2014(str(FIXTURES / "amazon2014")))
    assert len(interactions) == 10
    assert interactions[0] == Interaction("A1YJEY40YUW4SE", "7806397051", 1.0, 1391040000)
    assert interactions[-1] == Interaction("A1Z54EM24Y40LL", "B00004TMFE", 4.0, 1299456000)


def test_2014_meta_python_literals_are_parsed_with_their_text_cleaned():
    _, items, _ = read(Amazon2014(str(FIXTURES / "amazon2014")))
    assert items["7806397051"].title == "Crème Brûlée Lip Palette"           # unicode title
    assert items["7806397051"].description.startswith('A palette of six "nude" shades')
    assert items["9759091062"].title == "L'Oréal Paris Hydra Serum"          # double-quoted literal
    assert items["B00004TMFE"].title == "Tweezerman & Co. Slant Tweezer"     # HTML entity
    assert items["B0000530HU"].title == "Redken Hairspray Extra Hold"        # whitespace collapsed
    assert items["B00004U9V2"].brand == "Crabtree & Evelyn"


def test_2014_missing_title_brand_and_categories_become_empty_strings():
    _, items, _ = read(Amazon2014(str(FIXTURES / "amazon2014")))
    assert items["B00004U9V2"].title == ""
    assert items["9759091062"].brand == ""
    assert items["B0000530HU"].category == ""   # [[]]
    assert items["B000052YAN"].category == ""   # []


def test_category_is_the_most_specific_level_of_the_first_path():
    _, items, _ = read(Amazon2014(str(FIXTURES / "amazon2014")))
    assert items["9759091062"].category == "Creams & Moisturizers"  # first of two paths
    assert items["B00004TMFE"].category == "Tweezers"
    assert items["B00004U9V2"].category == "Beauty"  # a root-only path keeps the root


def test_long_descriptions_are_cut_at_a_word_boundary():
    _, items, _ = read(Amazon2014(str(FIXTURES / "amazon2014")))
    full = "As we age, our once youthful skin" + " loses elasticity and hydration; this serum restores it." * 6
    description = items["9759091062"].description
    assert description.endswith("...") and len(description) <= DESCRIPTION_CHARS + 3
    kept = description[:-3]
    assert full.startswith(kept) and full[len(kept)] in " ;."  # whole words only


DUPLICATED = {"amazon2014": "B00004TMFE", "amazon2018": "0000031852", "amazon2023": "B081TJ8YS3"}


@pytest.mark.parametrize("name", RELEASES)
def test_duplicate_meta_rows_are_all_yielded_in_file_order(name):
    reader, folder, *_ = RELEASES[name]
    policy = BadRecordPolicy("error")
    rows = [i for i in reader(str(FIXTURES / folder)).items(policy) if i.item == DUPLICATED[name]]
    assert len(rows) == 2 and rows[1].title.startswith("Duplicate") and policy.total_skipped == 0


def test_prepare_keeps_the_first_meta_row_of_a_duplicated_asin(tmp_path):
    from conftest import SMALL_PROTOCOL
    from sllmr_tf.data import prepare as prepare_lib
    from sllmr_tf.data.config import PrepareConfig
    from sllmr_tf.data.dataset_dir import DatasetDir

    config = PrepareConfig(dataset="amazon2014", raw_dir=str(FIXTURES / "amazon2014"), num_shards=1,
                           **SMALL_PROTOCOL)
    stats = prepare_lib.prepare(config, Amazon2014(config.raw_dir), str(tmp_path / "data"), log=lambda _: None)
    titles = {row["id"]: row["title"] for row in DatasetDir(str(tmp_path / "data")).items()}
    assert stats["num_interactions"] == 10
    assert titles["B00004TMFE"] == "Tweezerman & Co. Slant Tweezer"


def test_2018_reads_strict_json_with_crlf_line_ends():
    source = Amazon2018(str(FIXTURES / "amazon2018"))
    interactions, items, _ = read(source)
    assert b"\r\n" in gzip.decompress((FIXTURES / "amazon2018" / "Toys_and_Games_5.json.gz").read_bytes())
    assert [i.timestamp for i in interactions] == [1472688000, 1446595200, 1483315200, 1402272000, 1387929600]
    tutu = items["0000031852"]
    assert (tutu.title, tutu.category, tutu.brand) == ("Girls Ballet Tutu Zebra Hot Pink", "Costumes", "Coxlist")
    assert tutu.description == "Girls ballet tutu; Hand wash only"  # paragraphs joined, tags dropped
    assert items["B00000IZOL"].title == "Monopoly & Friends' Edition"
    assert items["B00000IZOL"].description == "2-6 players; Ages 8+"  # features when no description
    assert items["B00000J0HC"] == ItemInfo("B00000J0HC")  # empty title, category, description


def test_2023_uses_parent_asin_and_converts_milliseconds_to_seconds():
    interactions, _, _ = read(Amazon2023(str(FIXTURES / "amazon2023")))
    assert interactions[0] == Interaction("AGKHLEW2SOWHNMFQIJGBECAF7INQ", "B00YQ6X8EO", 5.0, 1588687728)
    assert interactions[2].item == "B097R46CSY"  # the review's asin B07PNNCSP9 is a variant


def test_2023_meta_with_bom_uses_store_as_brand_and_main_category_as_fallback():
    assert (FIXTURES / "amazon2023" / "meta_All_Beauty.jsonl").read_bytes().startswith(b"\xef\xbb\xbf")
    _, items, _ = read(Amazon2023(str(FIXTURES / "amazon2023")))
    assert items["B00YQ6X8EO"].brand == "Howard Products"
    assert items["B00YQ6X8EO"].category == "All Beauty"        # no categories: main_category
    assert items["B081TJ8YS3"].category == "Cleansers"         # most specific of the path
    assert items["B081TJ8YS3"].title == 'Yes To "Tomatoes" Detoxifying Charcoal Cleanser'
    assert items["B081TJ8YS3"].brand == ""                     # store null
    assert items["B097R46CSY"].title == "パーフェクト Hair Oil"
    assert items["B097R46CSY"].category == ""                  # neither categories nor main_category


def test_2023_also_reads_the_gzip_files_of_the_release_site(tmp_path):
    for name in ("All_Beauty.jsonl", "meta_All_Beauty.jsonl"):
        (tmp_path / f"{name}.gz").write_bytes(gzip.compress((FIXTURES / "amazon2023" / name).read_bytes()))
    expected = read(Amazon2023(str(FIXTURES / "amazon2023")))[:2]
    assert read(Amazon2023(str(tmp_path)))[:2] == expected


def test_a_gz_name_holding_plain_text_is_read_as_text(tmp_path):
    for name in ("reviews_Beauty_5.json.gz", "meta_Beauty.json.gz"):
        (tmp_path / name).write_bytes(gzip.decompress((FIXTURES / "amazon2014" / name).read_bytes()))
    assert read(Amazon2014(str(tmp_path)))[:2] == read(Amazon2014(str(FIXTURES / "amazon2014")))[:2]


def test_several_categories_require_a_choice_which_is_case_insensitive(tmp_path):
    for category in ("Beauty", "Toys_and_Games"):
        for template in ("reviews_{}_5.json.gz", "meta_{}.json.gz"):
            shutil.copy(FIXTURES / "amazon2014" / template.format("Beauty"), tmp_path / template.format(category))
    with pytest.raises(ConfigError, match="several amazon2014 categories .*Beauty, Toys_and_Games"):
        Amazon2014(str(tmp_path))
    source = Amazon2014(str(tmp_path), category="toys_and_games")
    assert source.category == "Toys_and_Games"
    assert source.reviews_path == str(tmp_path / "reviews_Toys_and_Games_5.json.gz")


def test_an_unknown_category_lists_the_ones_present():
    with pytest.raises(ConfigError, match="'Electronics'; found Beauty"):
        Amazon2014(str(FIXTURES / "amazon2014"), category="Electronics")


def test_a_raw_dir_without_review_files_names_the_expected_file(tmp_path):
    with pytest.raises(ConfigError, match=r"no amazon2018 review file \(<Category>_5.json.gz\)"):
        Amazon2018(str(tmp_path))


def test_a_missing_meta_file_is_reported_by_name(tmp_path):
    shutil.copy(FIXTURES / "amazon2018" / "Toys_and_Games_5.json.gz", tmp_path)
    source = Amazon2018(str(tmp_path))
    with pytest.raises(BadRecordError, match="meta_Toys_and_Games.json.gz: file not found"):
        list(source.items(BadRecordPolicy("skip")))


BAD_REVIEWS = {  # case -> (release, how to spoil a copy of review line 2, field named)
    "missing rating": ("amazon2014", lambda r: {k: v for k, v in r.items() if k != "overall"}, "overall"),
    "non-numeric rating": ("amazon2018", lambda r: {**r, "overall": "five"}, "overall"),
    "negative timestamp": ("amazon2023", lambda r: {**r, "timestamp": -5}, "timestamp"),
    "empty user": ("amazon2023", lambda r: {**r, "user_id": " "}, "user_id"),
    "not JSON": ("amazon2014", lambda r: "{'reviewerID': 'not strict JSON'", None),
    "not an object": ("amazon2018", lambda r: [r], None),
}


@pytest.mark.parametrize("case", BAD_REVIEWS)
def test_a_bad_review_line_is_named_or_skipped(tmp_path, case):
    name, spoil, field = BAD_REVIEWS[case]
    reader, folder, _, review_file, meta_file = RELEASES[name]
    src = FIXTURES / folder
    lines = text_lines(src / review_file)
    spoiled = spoil(json.loads(lines[1]))
    lines[1] = spoiled if isinstance(spoiled, str) else json.dumps(spoiled)
    write_like(src / review_file, tmp_path / review_file, lines)
    shutil.copy(src / meta_file, tmp_path)

    with pytest.raises(BadRecordError) as error:
        read(reader(str(tmp_path)))
    assert f"{tmp_path / review_file}:2:" in str(error.value)
    assert error.value.field == field

    interactions, _, policy = read(reader(str(tmp_path)), "skip")
    assert len(interactions) == len(lines) - 1
    assert policy.skipped == {review_file: 1}


def test_meta_lines_are_never_evaluated_as_code(tmp_path):
    src = FIXTURES / "amazon2014"
    shutil.copy(src / "reviews_Beauty_5.json.gz", tmp_path)
    marker = tmp_path / "evaluated"
    lines = text_lines(src / "meta_Beauty.json.gz")
    lines.insert(1, f"__import__('pathlib').Path({str(marker)!r}).touch()")
    write_like(src / "meta_Beauty.json.gz", tmp_path / "meta_Beauty.json.gz", lines)

    with pytest.raises(BadRecordError, match=r"meta_Beauty.json.gz:2: not a valid Python literal line"):
        read(Amazon2014(str(tmp_path)))
    _, items, policy = read(Amazon2014(str(tmp_path)), "skip")
    assert not marker.exists()
    assert len(items) == 6 and policy.total_skipped == 1


def test_a_meta_row_without_its_id_is_named(tmp_path):
    src = FIXTURES / "amazon2023"
    shutil.copy(src / "All_Beauty.jsonl", tmp_path)
    lines = text_lines(src / "meta_All_Beauty.jsonl")
    lines[2] = json.dumps({k: v for k, v in json.loads(lines[2]).items() if k != "parent_asin"})
    write_like(src / "meta_All_Beauty.jsonl", tmp_path / "meta_All_Beauty.jsonl", lines)
    with pytest.raises(BadRecordError) as error:
        read(Amazon2023(str(tmp_path)))
    assert (error.value.record, error.value.field) == (3, "parent_asin")


def test_readers_stream_records_before_reaching_the_end_of_the_file(tmp_path):
    src = FIXTURES / "amazon2018"
    lines = text_lines(src / "Toys_and_Games_5.json.gz") + ["not json"]
    write_like(src / "Toys_and_Games_5.json.gz", tmp_path / "Toys_and_Games_5.json.gz", lines)
    shutil.copy(src / "meta_Toys_and_Games.json.gz", tmp_path)
    stream = Amazon2018(str(tmp_path)).interactions(BadRecordPolicy("error"))
    assert next(stream).user == "A3CIUOJXQ5VDQ2"  # yielded although line 6 is bad
    with pytest.raises(BadRecordError, match=":6:"):
        list(stream)


def test_constructor_ignores_flags_meant_for_other_sources():
    assert Amazon2014(str(FIXTURES / "amazon2014"), category=None, num_users=5).category == "Beauty"
    assert os.path.basename(Amazon2014(str(FIXTURES / "amazon2014")).meta_path) == "meta_Beauty.json.gz"
