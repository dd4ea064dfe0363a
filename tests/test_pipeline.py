"""The tf.data reader: complete, deterministic on request, sharded by file across workers."""
import numpy as np
import pytest

from sllmr_tf import features
from sllmr_tf.data import pipeline
from sllmr_tf.errors import ConfigError


def read_all(dataset):
    batches = list(dataset.as_numpy_iterator())
    return {k: np.concatenate([b[k] for b in batches]) for k in batches[0]}


def test_every_feature_of_the_spec_arrives_with_its_shape(movielens_dir):
    batch = next(iter(pipeline.make_dataset(movielens_dir, "valid", 8)))
    for f in features.FEATURES:
        assert tuple(batch[f.name].shape) == (8, *f.shape)
        assert batch[f.name].dtype.name == f.dtype


def test_deterministic_reads_repeat_exactly_and_shuffles_are_seeded(movielens_dir):
    plain = [read_all(pipeline.make_dataset(movielens_dir, "test", 256))["item_id"] for _ in range(2)]
    np.testing.assert_array_equal(*plain)
    shuffled = [read_all(pipeline.make_dataset(movielens_dir, "test", 256, shuffle=True, seed=7))["item_id"]
                for _ in range(2)]
    np.testing.assert_array_equal(*shuffled)
    assert not np.array_equal(plain[0], shuffled[0])
    assert sorted(plain[0]) == sorted(shuffled[0])


def test_workers_read_disjoint_files_that_together_cover_the_split(movielens_dir):
    everything = read_all(pipeline.make_dataset(movielens_dir, "test", 512))
    parts = [read_all(pipeline.make_dataset(movielens_dir, "test", 512, worker_index=w, num_workers=2))
             for w in range(2)]
    assert sum(len(p["label"]) for p in parts) == len(everything["label"])
    rows = lambda d: sorted(zip(d["user_id"].tolist(), d["item_id"].tolist(), d["label"].tolist()))  # noqa: E731
    assert sorted(rows(parts[0]) + rows(parts[1])) == rows(everything)


def test_more_workers_than_files_is_an_error(movielens_dir):
    with pytest.raises(ConfigError, match="cannot feed 3 workers"):
        pipeline.make_dataset(movielens_dir, "test", 8, worker_index=2, num_workers=3)
