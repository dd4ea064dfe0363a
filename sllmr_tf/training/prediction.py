"""Predictions of a backbone over a whole split, with what the segment metrics need."""
from __future__ import annotations

import numpy as np
import tensorflow as tf

from sllmr_tf import features, fileio, segments
from sllmr_tf.data.dataset_dir import DatasetDir
from sllmr_tf.errors import ArtifactError
from sllmr_tf.training import artifacts
from sllmr_tf.training.config import EvalConfig
from sllmr_tf.training.evaluation import Predictions, evaluate
from sllmr_tf.training.full_ranking import evaluate_full_ranking
from sllmr_tf.training.inputs import interaction_batches

_MODEL_FEATURES = tuple(f.name for f in features.model_features())


def predict_split(backbone: tf.keras.Model, data_dir: str, split: str, batch_size: int = 4096) -> Predictions:
    """Stream the split once; only a handful of numbers per row are kept."""
    batches = interaction_batches(data_dir, split, batch_size)
    # One trace whatever the batch size (the last batch is smaller): an experiment predicts
    # dozens of splits in one process, and a trace per shape made TensorFlow warn about retracing.
    signature = {name: batches.element_spec[0][name] for name in _MODEL_FEATURES}

    @tf.function(input_signature=[signature])
    def probabilities(x):
        return tf.sigmoid(backbone(x, training=False)[:, 0])

    keep = {"users": "user_id", "items": "item_id", "is_cold_user": "is_cold_user",
            "is_longtail_item": "is_longtail_item", "item_pop": "item_pop"}
    heavy = segments.heavy_users(DatasetDir(data_dir).user_lookup()["train_positives"])
    parts: dict[str, list[np.ndarray]] = {k: [] for k in ("labels", "probs", *keep)}
    for x, y in batches:
        parts["labels"].append(y.numpy())
        parts["probs"].append(probabilities({name: x[name] for name in _MODEL_FEATURES}).numpy())
        for field, name in keep.items():
            parts[field].append(x[name].numpy())
    if not parts["labels"]:
        raise ArtifactError(f"{data_dir}: the {split} split has no examples")
    out = {k: np.concatenate(v) for k, v in parts.items()}
    out["is_cold_user"] = out["is_cold_user"] > 0
    out["is_longtail_item"] = out["is_longtail_item"] > 0
    return Predictions(**out, is_heavy_user=heavy[out["users"]])


def evaluate_split(backbone: tf.keras.Model, data_dir: str, split: str, batch_size: int,
                   num_bootstrap: int, seed: int) -> dict:
    """metrics.json's block for one split of one dataset."""
    block = evaluate(predict_split(backbone, data_dir, split, batch_size), num_bootstrap=num_bootstrap,
                     seed=seed)
    block["data_dir"] = fileio.absolute(data_dir)
    return block


def evaluate_run(config: EvalConfig) -> dict:
    """Evaluate a finished run on a split and record it in the run's metrics.json.

    Args:
        config: the run, the dataset and split to evaluate, the protocol and the bootstrap settings.

    Returns:
        The split's metrics block, also written under metrics.json[config.metrics_key].

    Raises:
        ArtifactError: the run is not finished, the dataset is not the one it was trained on,
            or one of the dataset's shards is missing or resized.
    """
    data = DatasetDir(config.data_dir)
    data.check_shards()
    artifacts.check_dataset(config.model_dir, data)
    backbone = artifacts.load_backbone(config.model_dir)
    if config.protocol == "full_ranking":
        block = evaluate_full_ranking(backbone, config.data_dir, config.split, config.num_bootstrap, config.seed,
                                      config.ranking_chunk_pairs)
    else:
        block = evaluate_split(backbone, config.data_dir, config.split, config.batch_size, config.num_bootstrap,
                               config.seed)
    metrics_path = artifacts.path(config.model_dir, artifacts.METRICS)
    metrics = fileio.read_json(metrics_path) or {}
    metrics[config.metrics_key] = block
    fileio.write_json(metrics_path, metrics)
    return block
