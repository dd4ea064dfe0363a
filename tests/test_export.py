"""sllmr-export: the SavedModel serves exactly the trained backbone, through every signature, in a
process that knows nothing of sllmr_tf, with TF Serving's layout, warmup records and request formats."""
from __future__ import annotations

import base64
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import sllmr_tf  # noqa: F401  (Keras 2 switch before TensorFlow loads)
import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2

import serving_replay
from sllmr_tf import features, shards
from sllmr_tf.data.dataset_dir import DatasetDir
from sllmr_tf.errors import ArtifactError, ConfigError
from sllmr_tf.export import contract, versions, warmup
from sllmr_tf.export.config import ExportConfig
from sllmr_tf.export.exporter import export_run
from sllmr_tf.models.backbones import BACKBONES
from sllmr_tf.training import artifacts
from sllmr_tf.training.config import TrainConfig
from sllmr_tf.training.evaluation import auc
from sllmr_tf.training.trainer import train

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REST_BODY = os.path.join(REPO, "input", "serving", "predict_request.json")
SAVED_MODEL_CLI = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
MODEL_FEATURES = [f.name for f in features.model_features()]
TOLERANCE = 1e-5


@pytest.fixture(scope="module")
def trained(world, tmp_path_factory):
    """trained(backbone, method) -> the model_dir of a one-epoch run on the world, trained once."""
    data_dir, pairs_dir = world
    runs = {}

    def get(backbone: str, method: str = "base") -> str:
        if (backbone, method) not in runs:
            model_dir = str(tmp_path_factory.mktemp(f"{backbone}_{method}"))
            train(TrainConfig(data_dir=data_dir, pairs_dir=pairs_dir if method != "base" else None,
                              model_dir=model_dir, backbone=backbone, method=method, epochs=1, num_bootstrap=10),
                  verbose=0, log=lambda _: None)
            runs[backbone, method] = model_dir
        return runs[backbone, method]

    return get


def export(model_dir: str, export_base: str, **settings) -> str:
    return export_run(ExportConfig(model_dir=model_dir, export_base=export_base, **settings), log=lambda _: None)


def stored_records(data_dir: str, split: str = "test", count: int | None = None) -> list[bytes]:
    """The split's records as prepare stored them: label and side signals included."""
    records = tf.data.TFRecordDataset(DatasetDir(data_dir).shards(split), compression_type=shards.COMPRESSION)
    return [r.numpy() for r in (records.take(count) if count else records)]


def parsed(records: list[bytes], feature_set=features.FEATURES) -> dict[str, tf.Tensor]:
    return tf.io.parse_example(tf.constant(records), features.parse_spec(feature_set))


def backbone_logits(model_dir: str, records: list[bytes]) -> np.ndarray:
    """What the trained backbone itself answers, in this process."""
    inputs = parsed(records, features.model_features())
    return artifacts.load_backbone(model_dir)({n: inputs[n] for n in MODEL_FEATURES}, training=False)[:, 0].numpy()


def saved_model_proto(export_dir: str) -> saved_model_pb2.SavedModel:
    with open(os.path.join(export_dir, "saved_model.pb"), "rb") as f:
        return saved_model_pb2.SavedModel.FromString(f.read())


@pytest.mark.parametrize("backbone", BACKBONES.names())
def test_every_signature_of_every_backbone_answers_what_the_trained_backbone_answers(backbone, trained, world,
                                                                                      tmp_path):
    data_dir, _ = world
    model_dir = trained(backbone)
    loaded = tf.saved_model.load(export(model_dir, str(tmp_path)))
    records = stored_records(data_dir, count=64)
    expected = backbone_logits(model_dir, records)
    assert expected.std() > 1e-3  # a trained model: the examples get different scores

    served = loaded.signatures[contract.SERVING_DEFAULT](examples=tf.constant(records))
    np.testing.assert_allclose(served[contract.LOGIT].numpy(), expected, atol=TOLERANCE, rtol=0)
    np.testing.assert_allclose(served[contract.PROBABILITY].numpy(), tf.sigmoid(expected).numpy(), atol=TOLERANCE,
                               rtol=0)
    inputs = parsed(records)
    raw = loaded.signatures[contract.PREDICT_RAW](**{name: inputs[name] for name in MODEL_FEATURES})
    np.testing.assert_allclose(raw[contract.LOGIT].numpy(), expected, atol=TOLERANCE, rtol=0)

    probability = served[contract.PROBABILITY].numpy()
    classified = loaded.signatures[contract.CLASSIFY](inputs=tf.constant(records))
    np.testing.assert_allclose(classified[contract.SCORES].numpy(), np.stack([1 - probability, probability], 1),
                               atol=TOLERANCE, rtol=0)
    assert classified[contract.CLASSES].numpy().tolist() == [[b"0", b"1"]] * len(records)
    regressed = loaded.signatures[contract.REGRESS](inputs=tf.constant(records))
    np.testing.assert_allclose(regressed[contract.OUTPUTS].numpy(), probability, atol=TOLERANCE, rtol=0)


@pytest.fixture(scope="module")
def dnn_export(trained, tmp_path_factory) -> str:
    """The world's DNN run exported once, with 5 warmup examples."""
    return export(trained("dnn"), str(tmp_path_factory.mktemp("dnn_export")), warmup_examples=5)


def test_the_export_scores_the_whole_test_split_with_the_auc_in_metrics_json(dnn_export, trained, world):
    data_dir, _ = world
    serve = tf.saved_model.load(dnn_export).signatures[contract.SERVING_DEFAULT]
    records = stored_records(data_dir)
    probs = np.concatenate([serve(examples=tf.constant(records[i:i + 256]))[contract.PROBABILITY].numpy()
                            for i in range(0, len(records), 256)])
    labels = parsed(records)["label"].numpy()
    metrics = json.load(open(os.path.join(trained("dnn"), artifacts.METRICS)))
    assert len(records) == metrics["test"]["overall"]["n"]
    assert auc(labels, probs) == pytest.approx(metrics["test"]["overall"]["auc"], abs=1e-4)


def test_an_example_missing_features_is_scored_with_their_defaults(dnn_export, trained):
    serve = tf.saved_model.load(dnn_export).signatures[contract.SERVING_DEFAULT]
    known = {"user_id": 3, "item_id": 7}
    partial = features.serialize(features.to_example(known, features.model_features()[:2]))
    full = features.serialize(features.to_example(known, features.model_features()))
    answers = serve(examples=tf.constant([partial, full, b""]))[contract.LOGIT].numpy()
    assert answers[0] == answers[1]
    nothing_known = features.serialize(features.to_example({"user_id": features.PADDING_INDEX}))
    assert answers[2] == pytest.approx(backbone_logits(trained("dnn"), [nothing_known])[0], abs=TOLERANCE)


def test_sllmr_and_base_exports_have_the_same_signatures_variables_and_operations(trained, tmp_path):
    exported = {method: export(trained("dnn", method), str(tmp_path / method)) for method in ("base", "sllmr")}
    graphs = {method: saved_model_proto(path).meta_graphs[0] for method, path in exported.items()}

    def signatures(graph):
        return {name: ({k: (v.dtype, str(v.tensor_shape)) for k, v in sig.inputs.items()},
                       {k: (v.dtype, str(v.tensor_shape)) for k, v in sig.outputs.items()}, sig.method_name)
                for name, sig in graph.signature_def.items()}

    def operations(graph):
        return sorted(node.op for function in graph.graph_def.library.function for node in function.node_def)

    def variables(path):
        loaded = tf.saved_model.load(path)
        return [(v.name, tuple(v.shape), v.dtype) for v in loaded.backbone_variables]

    assert signatures(graphs["base"]) == signatures(graphs["sllmr"])
    assert set(signatures(graphs["base"])) >= set(contract.SIGNATURES)
    assert operations(graphs["base"]) == operations(graphs["sllmr"])
    assert variables(exported["base"]) == variables(exported["sllmr"])
    assert not any("gate" in name for name, _, _ in variables(exported["sllmr"]))
    assert (tf.train.list_variables(os.path.join(exported["base"], "variables", "variables"))
            == tf.train.list_variables(os.path.join(exported["sllmr"], "variables", "variables")))


def test_warmup_records_are_prediction_logs_of_real_test_examples_that_replay(dnn_export, world):
    data_dir, _ = world
    path = dnn_export
    logs = serving_replay.warmup_logs(path)
    kinds = [(log.WhichOneof("log_type"), getattr(log, log.WhichOneof("log_type")).request.model_spec.signature_name)
             for log in logs]
    assert kinds == [("predict_log", contract.SERVING_DEFAULT), ("predict_log", contract.PREDICT_RAW),
                     ("classify_log", contract.CLASSIFY), ("regress_log", contract.REGRESS)] * 2

    largest = logs[4].predict_log.request.inputs[contract.EXAMPLES]
    sent = parsed(list(tf.make_ndarray(largest)), features.model_features())
    stored = parsed(stored_records(data_dir, count=5))
    for name in MODEL_FEATURES:  # the first test examples, model features only
        np.testing.assert_array_equal(sent[name].numpy(), stored[name].numpy())
    assert tf.train.Example.FromString(tf.make_ndarray(largest)[0]).features.feature.keys() == set(MODEL_FEATURES)

    loaded = tf.saved_model.load(path)
    answers = [serving_replay.replay(loaded, log) for log in logs]
    assert [len(next(iter(a.values()))) for a in answers] == [1] * 4 + [5] * 4
    np.testing.assert_allclose(answers[6][contract.SCORES][:, 1], answers[4][contract.PROBABILITY], atol=TOLERANCE)
    np.testing.assert_allclose(answers[5][contract.LOGIT], answers[4][contract.LOGIT], atol=TOLERANCE)
    identity = json.load(open(os.path.join(path, warmup.ASSETS_EXTRA, "sllmr_run.json")))
    assert (identity["backbone"], identity["method"], identity["data_dir"]) == ("dnn", "base", data_dir)


def write_marker(folder: str) -> None:
    os.makedirs(folder)
    open(os.path.join(folder, "saved_model.pb"), "w").close()


def test_versions_count_up_from_the_highest_number_and_are_never_replaced(tmp_path):
    base = str(tmp_path / "model")
    assert versions.next_version(base) == 1
    assert versions.publish(base, versions.next_version(base), write_marker) == os.path.join(base, "1")
    versions.publish(base, versions.next_version(base), write_marker)
    os.makedirs(os.path.join(base, "0009"))  # TF Serving reads it as version 9
    os.makedirs(os.path.join(base, "notes"))  # and ignores this
    assert versions.versions(base) == {1: "1", 2: "2", 9: "0009"}
    assert versions.next_version(base) == 10
    with pytest.raises(ArtifactError, match="version 9 exists"):
        versions.publish(base, 9, write_marker)


def test_a_failed_export_leaves_no_version_and_no_staging_folder_and_the_next_takes_the_next_number(trained, tmp_path, monkeypatch):
    base = str(tmp_path / "model")
    versions.publish(base, 1, write_marker)

    def broken(*args):
        raise RuntimeError("disk full")

    monkeypatch.setattr(warmup, "write_warmup", broken)  # after the SavedModel is written
    with pytest.raises(RuntimeError, match="disk full"):
        export(trained("dnn"), base)
    assert os.listdir(base) == ["1"]
    monkeypatch.undo()
    assert export(trained("dnn"), base) == os.path.join(base, "2")


def test_what_is_not_a_finished_run_or_a_bad_setting_is_refused(trained, world, tmp_path):
    base = str(tmp_path / "model")
    with pytest.raises(ArtifactError, match="not a sllmr-train run"):
        export(str(tmp_path / "nothing"), base)
    unfinished = tmp_path / "unfinished"
    unfinished.mkdir()
    (unfinished / artifacts.TRAIN_CONFIG).write_text("{}")
    with pytest.raises(ArtifactError, match=r"has not finished \(no metrics.json\)"):
        export(str(unfinished), base)
    with pytest.raises(ConfigError, match="version must be >= 1"):
        export(trained("dnn"), base, version=0)
    with pytest.raises(ArtifactError, match="not a prepared dataset"):
        export(trained("dnn"), base, data_dir=str(tmp_path))
    assert not os.path.exists(base)


@pytest.fixture(scope="module")
def movielens_run(movielens_dir, tmp_path_factory) -> str:
    """A one-epoch DNN on MovieLens-100k: the vocabulary the REST body in input/ was written for."""
    model_dir = str(tmp_path_factory.mktemp("ml_dnn"))
    train(TrainConfig(data_dir=movielens_dir, model_dir=model_dir, backbone="dnn", epochs=1, batch_size=1024,
                      num_bootstrap=10), verbose=0, log=lambda _: None)
    return model_dir


def run(command: list[str], **options) -> subprocess.CompletedProcess:
    return subprocess.run(command, capture_output=True, text=True, timeout=300, **options)


@pytest.mark.slow
def test_sllmr_export_serves_the_rest_body_of_input_through_saved_model_cli_and_a_process_without_sllmr_tf(
        movielens_run, movielens_dir, tmp_path):
    base = str(tmp_path / "model")
    exported = run([sys.executable, "-m", "sllmr_tf.bins.export", f"--model_dir={movielens_run}",
                    f"--export_base={base}", "--version=3"], cwd=REPO)
    assert exported.returncode == 0, exported.stderr[-2000:]
    path = os.path.join(base, "3")
    assert sorted(os.listdir(base)) == ["3"] and f"as version 3: {path}" in exported.stdout

    body = json.load(open(REST_BODY))
    examples = [base64.b64decode(instance[contract.EXAMPLES]["b64"]) for instance in body["instances"]]
    assert body["signature_name"] == contract.SERVING_DEFAULT and len(examples) >= 2
    real_category = DatasetDir(movielens_dir).item_lookup()["item_category"]
    request = parsed(examples, features.model_features())
    assert (real_category[request["item_id"].numpy()] == request["item_category"].numpy()).all()  # MovieLens items
    expected = backbone_logits(movielens_run, examples)

    shown = run([SAVED_MODEL_CLI, "show", "--all", "--dir", path])
    assert shown.returncode == 0, shown.stderr[-2000:]
    for name in contract.SIGNATURES:
        assert f"signature_def['{name}']" in shown.stdout
    assert "inputs['examples'] tensor_info:" in shown.stdout and "inputs['hist_item_ids'] tensor_info:" in shown.stdout

    np.save(tmp_path / "examples.npy", np.array(examples, dtype=object))
    answered = run([SAVED_MODEL_CLI, "run", "--dir", path, "--tag_set", "serve", "--signature_def",
                    contract.SERVING_DEFAULT, "--inputs", f"examples={tmp_path / 'examples.npy'}",
                    "--outdir", str(tmp_path / "cli")])
    assert answered.returncode == 0, answered.stderr[-2000:]
    np.testing.assert_allclose(np.load(tmp_path / "cli" / "logit.npy"), expected, atol=TOLERANCE, rtol=0)
    np.testing.assert_allclose(np.load(tmp_path / "cli" / "probability.npy"), tf.sigmoid(expected).numpy(),
                               atol=TOLERANCE, rtol=0)

    environment = {k: v for k, v in os.environ.items() if k not in ("TF_USE_LEGACY_KERAS", "PYTHONPATH")}
    clean = run([sys.executable, os.path.join(REPO, "tests", "serving_replay.py"), path, REST_BODY],
                cwd=str(tmp_path), env=environment)
    assert clean.returncode == 0, clean.stderr[-2000:]
    report = json.loads(clean.stdout)
    assert report["modules"] == [] and report["legacy_keras"] is None
    assert len(report["warmup"]) == 8
    response = report["response"]["predictions"]
    assert [set(row) for row in response] == [{contract.PROBABILITY, contract.LOGIT}] * len(examples)
    np.testing.assert_allclose([row[contract.LOGIT] for row in response], expected, atol=TOLERANCE, rtol=0)

