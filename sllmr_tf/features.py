"""The one feature spec: every feature is declared here once.

The TFRecord writer, the tf.data parser, the Keras inputs of every backbone and
the serving signature are all derived from `FEATURES`, so adding a feature is a
one-line change that cannot leave data, model and export out of step.

All categorical values are stored as vocabulary indices; index 0 is reserved
for padding and out-of-vocabulary values, so a vocabulary of n entries needs
an embedding table of n + 1 rows.
"""
from __future__ import annotations

import dataclasses
import enum
from typing import Iterable, Iterator, Mapping

import numpy as np

HISTORY_LENGTH = 20
PADDING_INDEX = 0
VOCABULARIES = ("user", "item", "category", "brand")


class Role(enum.Enum):
    """Where a feature is used."""

    MODEL = "model"  # a backbone input, part of the serving signature
    SIDE = "side"  # rides along in training/eval data: gate signals, segments
    LABEL = "label"


@dataclasses.dataclass(frozen=True)
class Feature:
    """One feature: its name, type, fixed shape, vocabulary and role."""

    name: str
    dtype: str  # "int64" or "float32"
    role: Role
    shape: tuple[int, ...] = ()
    vocabulary: str | None = None  # one of VOCABULARIES for categorical ids
    default: float = 0
    item_side: bool = False  # replaced when the same user is scored on another item
    doc: str = ""

    @property
    def numpy_dtype(self) -> np.dtype:
        return np.dtype(self.dtype)


FEATURES: tuple[Feature, ...] = (
    Feature("user_id", "int64", Role.MODEL, vocabulary="user", doc="user index"),
    Feature("item_id", "int64", Role.MODEL, vocabulary="item", item_side=True, doc="target item index"),
    Feature("item_category", "int64", Role.MODEL, vocabulary="category", item_side=True,
            doc="target item's category index"),
    Feature("item_brand", "int64", Role.MODEL, vocabulary="brand", item_side=True,
            doc="target item's brand index"),
    Feature("hist_item_ids", "int64", Role.MODEL, shape=(HISTORY_LENGTH,), vocabulary="item",
            doc="last train items before the event, most recent first, 0-padded"),
    Feature("hist_item_categories", "int64", Role.MODEL, shape=(HISTORY_LENGTH,), vocabulary="category",
            doc="categories of hist_item_ids, 0-padded"),
    Feature("hist_len", "int64", Role.SIDE, doc="number of train items of the user before the event"),
    Feature("item_pop", "int64", Role.SIDE, item_side=True, doc="train interactions of the target item"),
    Feature("is_cold_user", "int64", Role.SIDE, doc="1 if the user has < 3 train items"),
    Feature("is_longtail_item", "int64", Role.SIDE, item_side=True,
            doc="1 if the item is in the bottom 20% of train popularity"),
    Feature("label", "float32", Role.LABEL, doc="1 for a positive event, 0 for a negative"),
)

# Pairs written by the LLM scorer and joined to training batches.
SOURCE_REGULAR = 0
SOURCE_AUGMENTED = 1
OUTCOME_UNKNOWN = -1

PAIR_FEATURES: tuple[Feature, ...] = (
    Feature("user_id", "int64", Role.SIDE, vocabulary="user", doc="the user whose candidate list the LLM ranked"),
    Feature("item_a", "int64", Role.SIDE, vocabulary="item", doc="the item the LLM ranks higher"),
    Feature("item_b", "int64", Role.SIDE, vocabulary="item", doc="the item the LLM ranks lower"),
    Feature("confidence", "float32", Role.SIDE, doc="LLM confidence in (0.5, 1] that a > b"),
    Feature("margin", "float32", Role.SIDE, doc="how far apart the LLM ranks a and b, in (0, 1]"),
    Feature("source", "int64", Role.SIDE, doc="0 regular, 1 targeted augmentation"),
    Feature("outcome", "int64", Role.SIDE, default=OUTCOME_UNKNOWN,
            doc="1 if the train data agrees a > b, 0 if it says b > a, -1 unknown"),
    Feature("true_correct_prob", "float32", Role.SIDE, default=-1.0,
            doc="ground-truth probability that a > b (synthetic worlds only, else -1)"),
    Feature("true_informed_prob", "float32", Role.SIDE, default=-1.0,
            doc="probability that the LLM's order is right given what it knew: true_correct_prob where "
                "it knew both items, 1/2 where it guessed (synthetic worlds only, else -1)"),
)


def by_role(role: Role, features: Iterable[Feature] = FEATURES) -> tuple[Feature, ...]:
    return tuple(f for f in features if f.role is role)


def model_features() -> tuple[Feature, ...]:
    """Backbone inputs, exactly the serving signature."""
    return by_role(Role.MODEL)


def item_side_features() -> tuple[Feature, ...]:
    return tuple(f for f in FEATURES if f.item_side)


def feature(name: str) -> Feature:
    for f in FEATURES:
        if f.name == name:
            return f
    raise KeyError(f"unknown feature {name!r}")


def vocab_sizes(stats: Mapping) -> dict[str, int]:
    """Embedding table sizes (vocabulary + padding row) from a dataset's stats.json."""
    return {v: int(stats["vocab_sizes"][v]) + 1 for v in VOCABULARIES}


def iter_examples(columns: Mapping[str, object], features: Iterable[Feature] = FEATURES) -> Iterator:
    """Encode rows as tf.train.Examples: `columns[name]` holds every row's value of that feature.

    A feature missing from `columns` takes its default in every row; a column
    whose values do not fit the feature's shape raises ValueError naming it.

    Args:
        columns: feature name -> array-like with one entry (of the feature's shape) per row.
        features: the features to encode (default: the whole spec).

    Yields:
        One tf.train.Example per row.
    """
    import tensorflow as tf

    features = tuple(features)
    present = [f.name for f in features if f.name in columns]
    n = int(np.shape(columns[present[0]])[0]) if present else 0
    lists = {}
    for f in features:
        width = int(np.prod(f.shape)) if f.shape else 1
        if f.name in columns:
            values = np.asarray(columns[f.name], dtype=f.numpy_dtype).reshape(-1)
            if values.size != n * width:
                raise ValueError(f"feature {f.name!r}: expected {width} values per row, got {values.size} "
                                 f"values for {n} rows")
        else:
            values = np.full(n * width, f.default, dtype=f.numpy_dtype)
        lists[f.name] = (f.dtype, width, values.tolist())
    for row in range(n):
        # Filled in place, with no list per value: a third of the time of building Feature
        # messages from per-row lists, which the garbage collector kept scanning.
        example = tf.train.Example()
        feats = example.features.feature
        for name, (dtype, width, values) in lists.items():
            kind = feats[name].int64_list if dtype == "int64" else feats[name].float_list
            if width == 1:
                kind.value.append(values[row])
            else:
                kind.value.extend(values[row * width:(row + 1) * width])
        yield example


def to_example(values: Mapping[str, object], features: Iterable[Feature] = FEATURES):
    """Encode one record (feature name -> value of the feature's shape) as a tf.train.Example."""
    features = tuple(features)
    for f in features:
        if f.name in values:
            size = np.asarray(values[f.name]).size
            expected = int(np.prod(f.shape)) if f.shape else 1
            if size != expected:
                raise ValueError(f"feature {f.name!r}: expected {expected} values, got {size}")
    return next(iter_examples({name: [value] for name, value in values.items()}, features))


def serialize(example) -> bytes:
    """The bytes of a tf.train.Example, the same on every run (map fields in key order)."""
    return example.SerializeToString(deterministic=True)


def parse_spec(features: Iterable[Feature] = FEATURES, defaults: bool = False) -> dict:
    """The tf.io.parse_example spec for `features`.

    Args:
        features: the features to parse.
        defaults: an example missing a feature reads as the feature's default (the serving
            signature, where callers send what they know); without it a missing feature is an
            error (prepared data carries every feature).
    """
    import tensorflow as tf

    return {
        f.name: tf.io.FixedLenFeature(f.shape, tf.dtypes.as_dtype(f.dtype),
                                      default_value=np.full(f.shape, f.default, f.numpy_dtype) if defaults else None)
        for f in features
    }
