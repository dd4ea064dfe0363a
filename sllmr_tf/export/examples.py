"""Real examples of a prepared dataset, encoded as a serving client sends them."""
from __future__ import annotations

from sllmr_tf import features
from sllmr_tf.data.pipeline import make_dataset
from sllmr_tf.errors import ArtifactError


def split_examples(data_dir: str, count: int, split: str = "test") -> list[bytes]:
    """The first `count` examples of `split` (fewer if it is smaller), serialized with the model
    features only: no label and no side signals, which a request never carries.

    Raises:
        ArtifactError: the split has no examples.
    """
    model_features = features.model_features()
    batch = next(iter(make_dataset(data_dir, split, count, feature_set=model_features)), None)
    if batch is None:
        raise ArtifactError(f"{data_dir}: the {split} split has no examples")
    columns = {name: values.numpy() for name, values in batch.items()}
    return [features.serialize(example) for example in features.iter_examples(columns, model_features)]
