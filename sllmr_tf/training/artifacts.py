"""The model_dir layout that sllmr-train writes and sllmr-eval / sllmr-export read.

    model_dir/
      train_config.json        the run's settings and dataset_fingerprint; a restart must match them
      backbone.json            {"name", "config" (BackboneConfig fields), "vocab_sizes"}
      backbone/weights.*       TF checkpoint of the trained backbone alone (best epoch)
      best/weights.*           best-epoch weights of the whole training model (early stopping)
      early_stopping.json      early stopping state, so a restarted run keeps counting
      backup/                  BackupAndRestore checkpoint; removed when training ends
      logs/{train,validation,gate}/   TensorBoard event files
      metrics.json             metrics per split (see evaluation.py; <split>_full_ranking: full_ranking.py)
                               + the training summary

`load_backbone(model_dir)` rebuilds the backbone from backbone.json with the
registry and loads its weights: all the export stage needs, since the served
graph is the backbone alone (no gate, no pairs). A run is finished exactly when
metrics.json exists (`finished_run`).
"""
from __future__ import annotations

import dataclasses
from typing import Mapping

import tensorflow as tf

from sllmr_tf import features, fileio
from sllmr_tf.data.dataset_dir import DatasetDir
from sllmr_tf.errors import ArtifactError
from sllmr_tf.models.build import build_backbone
from sllmr_tf.models.config import BackboneConfig

TRAIN_CONFIG = "train_config.json"
BACKBONE_JSON = "backbone.json"
BACKBONE_WEIGHTS = "backbone/weights"
BEST_WEIGHTS = "best/weights"
EARLY_STOPPING = "early_stopping.json"
BACKUP_DIR = "backup"
LOGS_DIR = "logs"
METRICS = "metrics.json"
DATASET_FINGERPRINT = "dataset_fingerprint"  # in train_config.json: the lineage of the training data


def path(model_dir: str, name: str) -> str:
    return fileio.join(model_dir, name)


def backbone_config_to_json(config: BackboneConfig) -> dict:
    return dataclasses.asdict(config)


def backbone_config_from_json(value: Mapping) -> BackboneConfig:
    return BackboneConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in value.items()})


def save_backbone(model_dir: str, name: str, config: BackboneConfig, vocab_sizes: Mapping[str, int],
                  backbone: tf.keras.Model) -> None:
    backbone.save_weights(path(model_dir, BACKBONE_WEIGHTS))
    fileio.write_json(path(model_dir, BACKBONE_JSON), {
        "name": name, "config": backbone_config_to_json(config),
        "vocab_sizes": {k: int(v) for k, v in vocab_sizes.items()}})


def load_backbone(model_dir: str) -> tf.keras.Model:
    """The trained backbone of `model_dir`, ready to predict."""
    spec = fileio.read_json(path(model_dir, BACKBONE_JSON))
    if spec is None:
        raise ArtifactError(f"{model_dir}: no trained backbone ({BACKBONE_JSON}); "
                            "run sllmr-train to completion first")
    backbone = build_backbone(spec["name"], spec["vocab_sizes"], backbone_config_from_json(spec["config"]))
    backbone.load_weights(path(model_dir, BACKBONE_WEIGHTS)).assert_existing_objects_matched()
    return backbone


def finished_run(model_dir: str) -> tuple[dict, dict]:
    """(train_config.json, metrics.json) of a finished run.

    Raises:
        ArtifactError: model_dir is not a sllmr-train run, or the run has not finished.
    """
    train_config = fileio.read_json(path(model_dir, TRAIN_CONFIG))
    if train_config is None:
        raise ArtifactError(f"{model_dir}: not a sllmr-train run (no {TRAIN_CONFIG})")
    metrics = fileio.read_json(path(model_dir, METRICS))
    if metrics is None:
        raise ArtifactError(f"{model_dir}: the run has not finished (no {METRICS}); "
                            "run sllmr-train to completion first")
    return train_config, metrics


def check_dataset(model_dir: str, data: DatasetDir) -> None:
    """Raises ArtifactError if `data` is not the dataset the run was trained on (another lineage,
    when both record one), or its vocabularies differ from those the run was trained with."""
    data.check_lineage((fileio.read_json(path(model_dir, TRAIN_CONFIG)) or {}).get(DATASET_FINGERPRINT), model_dir)
    trained_on = (fileio.read_json(path(model_dir, BACKBONE_JSON)) or {}).get("vocab_sizes")
    if trained_on is not None and trained_on != features.vocab_sizes(data.stats):
        raise ArtifactError(f"{data.path}: vocabulary sizes {features.vocab_sizes(data.stats)} differ from "
                            f"the ones {model_dir} was trained with {trained_on}")
