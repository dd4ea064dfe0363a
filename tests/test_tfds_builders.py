"""The TFDS builders expose the project's readers: same records, no download."""
import pathlib
import shutil
import socket

import pytest
import tensorflow_datasets as tfds

from sllmr_tf.data import tfds_builders
from sllmr_tf.data.readers.amazon import Amazon2014, Amazon2018, Amazon2023
from sllmr_tf.data.readers.synthetic import SyntheticSource
from sllmr_tf.data.records import BadRecordPolicy
from sllmr_tf.errors import BadRecordError, ConfigError

FIXTURES = pathlib.Path(__file__).parent / "fixtures"
tfds.disable_progress_bar()


def manual(folder) -> dict:
    return {"download_config": tfds.download.DownloadConfig(manual_dir=str(folder))}


def reader_rows(source) -> list[tuple]:
    """What a builder must produce: each interaction with the first meta row of its item."""
    policy = BadRecordPolicy("error")
    items = {}
    for info in source.items(policy):
        items.setdefault(info.item, info)
    rows = []
    for e in source.interactions(policy):
        info = items.get(e.item)
        rows.append((e.user, e.item, e.rating, e.timestamp, info.title if info else "",
                     info.category if info else "", info.brand if info else ""))
    return rows


def dataset_rows(ds) -> list[tuple]:
    return [(r["user_id"].decode(), r["item_id"].decode(), float(r["rating"]), int(r["timestamp"]),
             r["title"].decode(), r["category"].decode(), r["brand"].decode()) for r in tfds.as_numpy(ds)]


@pytest.fixture
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a TFDS builder tried to open a network connection")
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def test_importing_the_module_registers_every_builder_with_the_llmcf_categories():
    registered = set(tfds.list_builders(with_community_datasets=False))
    assert {"sllmr_amazon2014", "sllmr_amazon2018", "sllmr_amazon2023", "sllmr_movielens100k",
            "sllmr_synthetic"} <= registered
    configs = {c.name for c in tfds.builder_cls("sllmr_amazon2014").BUILDER_CONFIGS}
    assert {"beauty", "sports_and_outdoors", "toys_and_games"} <= configs
    for release in ("sllmr_amazon2018", "sllmr_amazon2023"):
        assert {"sports_and_outdoors", "toys_and_games"} <= {c.name for c in tfds.builder_cls(release).BUILDER_CONFIGS}


def test_amazon2014_beauty_loads_from_the_manual_dir_without_network(tmp_path, no_network):
    ds = tfds.load("sllmr_amazon2014/beauty", split="train", data_dir=str(tmp_path),
                   download_and_prepare_kwargs=manual(FIXTURES / "amazon2014"))
    rows = dataset_rows(ds)
    assert rows == reader_rows(Amazon2014(str(FIXTURES / "amazon2014")))
    assert rows[0] == ("A1YJEY40YUW4SE", "7806397051", 1.0, 1391040000, "Crème Brûlée Lip Palette",
                       "Concealers & Neutralizers", "Stila")


@pytest.mark.parametrize("name, config, reader, folder", [
    ("sllmr_amazon2018", "toys_and_games", Amazon2018, "amazon2018"),
    ("sllmr_amazon2023", "all_beauty", Amazon2023, "amazon2023"),
])
def test_amazon2018_and_2023_builders_give_the_reader_records(tmp_path, name, config, reader, folder):
    builder = tfds.builder(f"{name}/{config}", data_dir=str(tmp_path))
    builder.download_and_prepare(**manual(FIXTURES / folder))
    assert dataset_rows(builder.as_dataset(split="train")) == reader_rows(reader(str(FIXTURES / folder)))


def test_a_category_without_a_config_is_built_from_a_custom_config(tmp_path):
    config = tfds_builders.AmazonConfig(name="my_beauty", category="Beauty")
    builder = tfds.builder("sllmr_amazon2014", config=config, data_dir=str(tmp_path))
    builder.download_and_prepare(**manual(FIXTURES / "amazon2014"))
    assert builder.info.splits["train"].num_examples == 10


def test_missing_manual_files_name_what_to_put_there(tmp_path):
    builder = tfds.builder("sllmr_amazon2014/sports_and_outdoors", data_dir=str(tmp_path / "data"))
    with pytest.raises(AssertionError, match=r"reviews_<Category>_5.json.gz"):  # no manual dir at all
        builder.download_and_prepare(**manual(tmp_path / "absent"))
    with pytest.raises(ConfigError, match="no amazon2014 files for category 'Sports_and_Outdoors'"):
        builder.download_and_prepare(**manual(FIXTURES / "amazon2014"))  # only Beauty there


def test_synthetic_small_world_has_the_sources_interactions(tmp_path, no_network):
    ds = tfds.load("sllmr_synthetic/small", split="train", data_dir=str(tmp_path))
    source = SyntheticSource(**dict(tfds_builders.SllmrSynthetic.builder_configs["small"].flags))
    assert dataset_rows(ds) == reader_rows(source)


@pytest.mark.slow
def test_movielens100k_loads_the_bundled_files_with_100000_rows(tmp_path, no_network):
    ds = tfds.load("sllmr_movielens100k", split="train", data_dir=str(tmp_path))
    assert int(ds.cardinality()) == 100_000
    first = next(iter(tfds.as_numpy(ds)))
    assert first["title"] and first["category"]


def test_a_bad_review_fails_the_build_naming_file_line_and_field(tmp_path):
    manual_dir = tmp_path / "manual"
    shutil.copytree(FIXTURES / "amazon2023", manual_dir)
    reviews = manual_dir / "All_Beauty.jsonl"
    lines = reviews.read_text(encoding="utf-8").splitlines()
    lines[1] = lines[1].replace('"rating": ', '"rating": "five", "_": ', 1)
    reviews.write_text("\n".join(lines) + "\n", encoding="utf-8")
    builder = tfds.builder("sllmr_amazon2023/all_beauty", data_dir=str(tmp_path / "data"))
    with pytest.raises(BadRecordError, match=r"All_Beauty\.jsonl:2: field 'rating': not a number: 'five'"):
        builder.download_and_prepare(**manual(manual_dir))
    assert not builder.is_prepared()
