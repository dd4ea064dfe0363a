"""input/: what users need at the edges, kept true by the code that reads and writes it.

The dataset directory schema lists every file and field prepare and the scorer write; each raw
sample is read by its reader; the REST body holds serialized examples of the model features.
"""
from __future__ import annotations

import base64
import json
import os
import re

import numpy as np
import pytest

import sllmr_tf  # noqa: F401  (Keras 2 switch before TensorFlow loads)
import tensorflow as tf

from sllmr_tf import features, shards
from sllmr_tf.data.config import PrepareConfig
from sllmr_tf.data.readers import SOURCES, open_source
from sllmr_tf.data.records import BadRecordPolicy
from sllmr_tf.export import contract
from sllmr_tf.export.request import predict_body

INPUT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "input")
SCHEMA = json.load(open(os.path.join(INPUT, "dataset_dir_schema.json"), encoding="utf-8"))
RAW = os.path.join(INPUT, "raw")
# sample folder -> the --dataset that reads it
SAMPLE_SOURCES = {"movielens100k": "movielens100k", "amazon2014": "amazon2014", "amazon2018": "amazon2018",
                  "amazon2023": "amazon2023", "csv": "csv", "parquet": "csv"}


def spec_table(feature_set) -> dict:
    return {f.name: {"dtype": f.dtype, "shape": list(f.shape), "role": f.role.value, "vocabulary": f.vocabulary,
                     "default": f.default, "doc": f.doc} for f in feature_set}


def test_the_schema_lists_the_feature_spec_exactly():
    data_files, pair_files = SCHEMA["data_dir"]["files"], SCHEMA["pairs_dir"]["files"]
    assert data_files["<split>/part-<i>-of-<n>.tfrecord.gz"]["features"] == spec_table(features.FEATURES)
    assert pair_files["pairs-<s>-of-<n>.tfrecord.gz"]["features"] == spec_table(features.PAIR_FEATURES)


def pattern(path: str, entry: dict) -> re.Pattern:
    """A schema path as a regular expression over relative paths."""
    choices = {"<split>": entry.get("splits", []), "<vocabulary>": entry.get("vocabularies", [])}
    regex = re.escape(path)
    for placeholder, values in choices.items():
        regex = regex.replace(re.escape(placeholder), "(" + "|".join(map(re.escape, values)) + ")")
    return re.compile(re.sub(r"<[ijsnm]>", r"\\d{5}", regex)
                      .replace(re.escape("<hash>"), "[0-9a-f]+") + "$")


def check_fields(value: dict, fields: dict, where: str) -> None:
    assert set(value) == set(fields), where
    for name, spec in fields.items():
        if isinstance(spec, dict) and "fields" in spec:
            check_fields(value[name], spec["fields"], f"{where}.{name}")
        elif isinstance(spec, dict) and "each" in spec:
            for key, item in value[name].items():
                check_fields(item, spec["each"], f"{where}.{name}.{key}")


def check_content(path: str, entry: dict) -> None:
    kind = entry["format"]
    if kind == "json":
        check_fields(json.load(open(path, encoding="utf-8")), entry["fields"], path)
    elif kind == "jsonl":
        for line in open(path, encoding="utf-8"):
            check_fields(json.loads(line), entry["fields"], path)
    elif kind == "tfrecord":
        record = next(iter(tf.data.TFRecordDataset(path, compression_type=shards.COMPRESSION)))
        stored = tf.train.Example.FromString(record.numpy()).features.feature
        assert set(stored) == set(entry["features"]), path
        for name, spec in entry["features"].items():
            kind = "int64_list" if spec["dtype"] == "int64" else "float_list"
            assert len(getattr(stored[name], kind).value) == int(np.prod(spec["shape"])), (path, name)
    elif kind == "npz":
        assert set(np.load(path).files) == set(entry["arrays"]), path


@pytest.mark.parametrize("directory", ["data_dir", "pairs_dir"])
def test_every_file_and_field_that_prepare_and_the_scorer_write_is_in_the_schema(directory, world):
    root = dict(zip(["data_dir", "pairs_dir"], world))[directory]
    entries = SCHEMA[directory]["files"]
    patterns = {path: pattern(path, entry) for path, entry in entries.items()}
    written = sorted(os.path.relpath(os.path.join(folder, name), root)
                     for folder, _, names in os.walk(root) for name in names)
    matched = {path: [] for path in entries}
    for relative in written:
        owners = [path for path, regex in patterns.items() if regex.match(relative)]
        assert len(owners) == 1, f"{relative} is in the schema {len(owners)} times"
        matched[owners[0]].append(relative)
    for path, files in matched.items():
        assert files or "optional" in entries[path], f"{path}: the code wrote no such file"
        for relative in files:
            check_content(os.path.join(root, relative), entries[path])


def test_there_is_a_raw_sample_for_every_real_data_source():
    assert set(SAMPLE_SOURCES) == set(os.listdir(RAW))
    assert set(SAMPLE_SOURCES.values()) == set(SOURCES.names()) - {"synthetic"}


@pytest.mark.parametrize("sample", sorted(SAMPLE_SOURCES))
def test_every_raw_sample_is_read_whole_by_its_reader(sample):
    folder = os.path.join(RAW, sample)
    source = open_source(PrepareConfig(dataset=SAMPLE_SOURCES[sample], raw_dir=folder))
    policy = BadRecordPolicy("error")
    interactions, items = list(source.interactions(policy)), list(source.items(policy))
    assert len(interactions) >= 4 and items
    assert {i.item for i in interactions} <= {item.item for item in items}  # every item has its metadata
    assert all(item.title and item.category for item in items)


def test_the_rest_body_holds_real_serialized_examples_of_the_model_features():
    body = json.load(open(os.path.join(INPUT, "serving", "predict_request.json")))
    examples = [base64.b64decode(instance[contract.EXAMPLES]["b64"]) for instance in body["instances"]]
    assert body == predict_body(examples)
    for serialized in examples:
        stored = tf.train.Example.FromString(serialized).features.feature
        assert set(stored) == {f.name for f in features.model_features()}
    parsed = tf.io.parse_example(examples, features.parse_spec(features.model_features()))
    assert (parsed["user_id"].numpy() > 0).all() and (parsed["item_id"].numpy() > 0).all()
