"""Every stage on a filesystem that is not the local disk: TensorFlow's in-memory ram:// (what
gs://, s3:// and hdfs:// paths go through too, via tf.io.gfile), end to end in one process."""
from __future__ import annotations

import pytest

import sllmr_tf  # noqa: F401  (Keras 2 switch before TensorFlow loads)
import tensorflow as tf

from sllmr_tf import fileio
from sllmr_tf.data import prepare as prepare_lib
from sllmr_tf.data.config import PrepareConfig
from sllmr_tf.data.readers import open_source
from sllmr_tf.export.config import ExportConfig
from sllmr_tf.export.exporter import export_run
from sllmr_tf.scoring import pipeline
from sllmr_tf.scoring.backends import make_backend
from sllmr_tf.training.config import EvalConfig, TrainConfig
from sllmr_tf.training.prediction import evaluate_run
from sllmr_tf.training.trainer import train

pytestmark = pytest.mark.slow


def test_prepare_score_train_eval_and_export_run_on_ram_paths():
    root = "ram://sllmr-e2e"
    data, pairs, model, export = (f"{root}/{name}" for name in ("data", "pairs", "model", "export"))
    config = PrepareConfig(dataset="synthetic", test_k=1, valid_k=1, eval_negatives=1, num_shards=2,
                           source_options=(("synthetic_users", 150), ("synthetic_items", 200)))
    quiet = lambda _: None  # noqa: E731
    stats = prepare_lib.prepare(config, open_source(config), data, log=quiet)
    pipeline.score(data, make_backend("simulated", data), pairs, log=quiet)
    metrics = train(TrainConfig(data_dir=data, pairs_dir=pairs, model_dir=model, method="sllmr", epochs=1,
                                num_bootstrap=5), verbose=0, log=quiet)
    evaluated = evaluate_run(EvalConfig(model_dir=model, data_dir=data, num_bootstrap=5))
    version = export_run(ExportConfig(model_dir=model, export_base=export), log=quiet)

    assert fileio.read_json(f"{data}/stats.json")["dataset_fingerprint"] == stats["dataset_fingerprint"]
    written = fileio.read_json(f"{model}/metrics.json")
    assert written["training"] == metrics["training"] and written["test"] == evaluated
    assert evaluated["overall"]["n"] == stats["splits"]["test"]["examples"]
    served = tf.saved_model.load(version)
    assert "serving_default" in served.signatures
    every_path = [fileio.join(folder, name) for folder, dirs, files in tf.io.gfile.walk(root)
                  for name in dirs + files]
    assert not [path for path in every_path if ".tmp-" in path or ".prepare-" in path or ".old-" in path]
