"""Registry of raw sources: one reader per format, shared by `prepare` and the TFDS builders."""
from __future__ import annotations

import importlib
from typing import Callable

from sllmr_tf.data.records import RawSource

# name -> "module:factory"; factories take keyword flags and return a RawSource.
_SOURCES = {
    "movielens100k": "sllmr_tf.data.readers.movielens:MovieLens100k",
    "amazon2014": "sllmr_tf.data.readers.amazon:Amazon2014",
    "amazon2018": "sllmr_tf.data.readers.amazon:Amazon2018",
    "amazon2023": "sllmr_tf.data.readers.amazon:Amazon2023",
    "csv": "sllmr_tf.data.readers.tabular:TabularSource",
    "synthetic": "sllmr_tf.data.readers.synthetic:SyntheticSource",
}


def source_names() -> tuple[str, ...]:
    return tuple(_SOURCES)


def source_factory(name: str) -> Callable[..., RawSource]:
    if name not in _SOURCES:
        raise ValueError(f"unknown dataset {name!r}; choose one of {', '.join(_SOURCES)}")
    module, attr = _SOURCES[name].split(":")
    return getattr(importlib.import_module(module), attr)
