"""The raw sources by name: one reader per format, shared by `prepare` and the TFDS builders."""
from __future__ import annotations

from sllmr_tf.registry import Registry

# Each factory takes raw_dir, category and the source's own keyword options and returns a RawSource.
SOURCES = Registry("dataset", {
    "movielens100k": "sllmr_tf.data.readers.movielens:MovieLens100k",
    "amazon2014": "sllmr_tf.data.readers.amazon:Amazon2014",
    "amazon2018": "sllmr_tf.data.readers.amazon:Amazon2018",
    "amazon2023": "sllmr_tf.data.readers.amazon:Amazon2023",
    "csv": "sllmr_tf.data.readers.tabular:TabularSource",
    "synthetic": "sllmr_tf.data.readers.synthetic:SyntheticSource",
})


def open_source(config):
    """The raw source a `PrepareConfig` names, with its raw dir, category and options.

    Args:
        config: a `sllmr_tf.data.config.PrepareConfig`.

    Returns:
        A `records.RawSource`.
    """
    return SOURCES.get(config.dataset)(raw_dir=config.raw_dir, category=config.category,
                                       **dict(config.source_options))
