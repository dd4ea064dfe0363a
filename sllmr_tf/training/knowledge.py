"""kar's knowledge dir: the bundled MiniLM's vector of every item's text, made once per dataset.

    knowledge_dir/                 default <data_dir>/knowledge
      items-<key>.npy              [items + 1, 384] float32, row k item index k, row 0 (padding) zero:
                                   the embedding scorer's item table (scoring/embedding_backend.py),
                                   named by a hash of the model and the texts
      knowledge.json               {"dataset_fingerprint", "model", "shape"}; written after the table

The trainer is the one place that makes and reads it (`item_knowledge`), on the
first kar run of a dataset: there is no separate step to run or forget, and the
vectors come from the same function, and the same item texts (items.jsonl "text":
title and every text field the reader keeps), as the embedding scorer's. A knowledge
dir records the dataset it was made from, like a pairs dir, and is refused for
another one. A trained kar backbone carries the table in its own weights, so eval
and export never read this dir.
"""
from __future__ import annotations

import numpy as np

from sllmr_tf import fileio
from sllmr_tf.data.dataset_dir import DatasetDir

MANIFEST = "knowledge.json"
DEFAULT_SUBDIR = "knowledge"


def default_knowledge_dir(data_dir: str) -> str:
    return fileio.join(data_dir, DEFAULT_SUBDIR)


def item_knowledge(data: DatasetDir, knowledge_dir: str | None = None) -> np.ndarray:
    """The items' MiniLM vectors, embedded on first use and read back afterwards.

    Args:
        data: the prepared dataset.
        knowledge_dir: where the table is kept (default `default_knowledge_dir(data.path)`).

    Returns:
        [item vocabulary size, 384] float32, row k the unit vector of item index k's text.

    Raises:
        ArtifactError: knowledge_dir was made from another dataset.
        ConfigError: the MiniLM package is not installed.
    """
    from sllmr_tf.scoring import embedding_backend

    knowledge_dir = knowledge_dir or default_knowledge_dir(data.path)
    manifest_path = fileio.join(knowledge_dir, MANIFEST)
    recorded = fileio.read_json(manifest_path)
    if recorded is not None:
        data.check_lineage(recorded.get("dataset_fingerprint"), knowledge_dir)
    table = embedding_backend.item_embeddings(data.path, knowledge_dir)
    manifest = {"dataset_fingerprint": data.fingerprint, "model": embedding_backend.model_id(),
                "shape": list(table.shape)}
    if manifest != recorded:
        fileio.write_json(manifest_path, manifest)
    return table
