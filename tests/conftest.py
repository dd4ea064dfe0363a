"""Shared fixtures: prepared datasets are built once per test session."""
from __future__ import annotations

import pytest

import sllmr_tf  # noqa: F401  (Keras 2 switch before TensorFlow loads)
from sllmr_tf.data import prepare as prepare_lib
from sllmr_tf.data.config import PrepareConfig
from sllmr_tf.data.readers import open_source

# The test datasets use leave-last-out with one sampled negative: small and fast.
SMALL_PROTOCOL = {"test_k": 1, "valid_k": 1, "eval_negatives": 1}


def prepare_dataset(data_dir: str, **overrides) -> dict:
    """Run the prepare library on a dataset (leave-last-out unless overridden); returns its stats."""
    config = PrepareConfig(**{"dataset": "movielens100k", **SMALL_PROTOCOL, **overrides})
    return prepare_lib.prepare(config, open_source(config), data_dir, log=lambda _: None)


@pytest.fixture(scope="session")
def world(tmp_path_factory) -> tuple[str, str]:
    """A small synthetic world (400 users, 200 items) and the simulated LLM's pairs on it."""
    from sllmr_tf.scoring import pipeline
    from sllmr_tf.scoring.backends import make_backend

    root = tmp_path_factory.mktemp("world")
    data_dir, pairs_dir = str(root / "data"), str(root / "pairs")
    prepare_dataset(data_dir, dataset="synthetic", num_shards=2,
                    source_options=(("synthetic_users", 400), ("synthetic_items", 200)))
    pipeline.score(data_dir, make_backend("simulated", data_dir), pairs_dir, log=lambda _: None)
    return data_dir, pairs_dir


@pytest.fixture(scope="session")
def movielens_dir(tmp_path_factory) -> str:
    """Bundled MovieLens-100k, leave-last-out, one sampled negative per positive."""
    path = str(tmp_path_factory.mktemp("data") / "ml100k")
    prepare_dataset(path, dataset="movielens100k", num_shards=2)
    return path
