"""assets.extra/sllmr_run.json: which run an export serves, readable next to the model.

One function builds it. It carries the lineage of the training data (the dataset
fingerprint train_config.json records), so a served model names the data it learnt from.
"""
from __future__ import annotations

import sllmr_tf
from sllmr_tf import fileio
from sllmr_tf.export import versions
from sllmr_tf.export.warmup import ASSETS_EXTRA
from sllmr_tf.training import artifacts

RUN_FILE = "sllmr_run.json"


def run_identity(model_dir: str) -> dict:
    """The run's backbone, method, seed, dataset and its fingerprint, pairs and whole train config.

    Raises:
        ArtifactError: model_dir is not a finished run.
    """
    train_config, metrics = artifacts.finished_run(model_dir)
    return {
        "backbone": metrics["backbone"], "method": metrics["method"], "seed": metrics["seed"],
        "data_dir": metrics["data_dir"], "pairs_dir": metrics["pairs_dir"],
        "dataset_fingerprint": train_config.get(artifacts.DATASET_FINGERPRINT),
        "model_dir": fileio.absolute(model_dir), "train_config": train_config,
        "sllmr_tf_version": sllmr_tf.__version__,
    }


def exported_version(export_base: str, model_dir: str) -> int | None:
    """The highest complete version under `export_base` that serves the finished run in
    `model_dir` (same folder, same settings), or None: an export already done need not be redone."""
    if not fileio.exists(artifacts.path(model_dir, artifacts.METRICS)):
        return None
    wanted = run_identity(model_dir)
    for version, name in sorted(versions.versions(export_base).items(), reverse=True):
        folder = fileio.join(export_base, name)
        served = fileio.read_json(fileio.join(folder, ASSETS_EXTRA, RUN_FILE))
        if (fileio.exists(fileio.join(folder, versions.SAVED_MODEL_FILE)) and served is not None
                and all(served.get(k) == wanted[k] for k in ("model_dir", "train_config"))):
            return version
    return None
