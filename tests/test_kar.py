"""Method kar: the items' MiniLM vectors, made once per dataset, enter every backbone through a
trainable adapter, stay frozen, and travel inside the export, which serves without sllmr_tf."""
from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

import sllmr_tf  # noqa: F401  (Keras 2 switch before TensorFlow loads)
import tensorflow as tf

from sllmr_tf import features
from sllmr_tf.data.dataset_dir import DatasetDir
from sllmr_tf.errors import ArtifactError
from sllmr_tf.export import contract, signatures
from sllmr_tf.export.config import ExportConfig
from sllmr_tf.export.examples import split_examples
from sllmr_tf.export.exporter import export_run
from sllmr_tf.export.request import predict_body
from sllmr_tf.models.backbones import BACKBONES
from sllmr_tf.models.knowledge_fields import LAYER_NAME, set_item_knowledge
from sllmr_tf.scoring.embedding_backend import EMBEDDING_DIM, SentenceEncoder
from sllmr_tf.training import artifacts, methods
from sllmr_tf.training.config import TrainConfig
from sllmr_tf.training.inputs import training_batches
from sllmr_tf.training.knowledge import MANIFEST, item_knowledge
from sllmr_tf.training.trainer import train, training_model

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KAR = methods.get_method("kar")


@pytest.fixture(scope="module")
def knowledge(world, tmp_path_factory) -> tuple[str, np.ndarray]:
    """The world's knowledge dir, embedded once for the module, and its item table."""
    data_dir, _ = world
    knowledge_dir = str(tmp_path_factory.mktemp("knowledge"))
    return knowledge_dir, item_knowledge(DatasetDir(data_dir), knowledge_dir)


def kar_config(world, knowledge, backbone: str = "dnn", **settings) -> TrainConfig:
    data_dir, _ = world
    return TrainConfig(data_dir=data_dir, model_dir="unused", backbone=backbone, method="kar",
                       knowledge_dir=knowledge[0], **settings)


def test_an_items_knowledge_vector_is_minilms_embedding_of_its_text_and_padding_is_zero(world, knowledge):
    data_dir, _ = world
    _, table = knowledge
    items = DatasetDir(data_dir).items()
    assert table.shape == (features.vocab_sizes(DatasetDir(data_dir).stats)["item"], EMBEDDING_DIM)
    chosen = [items[0], items[len(items) // 2], items[-1]]
    encoder = SentenceEncoder()
    for row in chosen:  # one at a time: no batch shares its padding with the table's
        np.testing.assert_allclose(table[row["index"]], encoder.encode([row["text"]])[0], atol=1e-5)
    assert not table[features.PADDING_INDEX].any()


def test_a_knowledge_dir_of_another_dataset_is_refused(world, knowledge, tmp_path):
    data_dir, _ = world
    copied = str(tmp_path / "copied")
    shutil.copytree(knowledge[0], copied)
    manifest = json.load(open(os.path.join(copied, MANIFEST)))
    assert manifest["dataset_fingerprint"] == DatasetDir(data_dir).fingerprint
    json.dump({**manifest, "dataset_fingerprint": "0123456789abcdef"}, open(os.path.join(copied, MANIFEST), "w"))
    with pytest.raises(ArtifactError, match="made from dataset 0123456789abcdef"):
        item_knowledge(DatasetDir(data_dir), copied)


@pytest.mark.parametrize("backbone", BACKBONES.names())
def test_kar_trains_every_backbone_through_the_adapter_with_the_knowledge_frozen(backbone, world, knowledge):
    data_dir, _ = world
    config = kar_config(world, knowledge, backbone, embedding_dim=8, mlp_units=(16,))
    tf.keras.utils.set_random_seed(1)
    model = training_model(config, KAR, features.vocab_sizes(DatasetDir(data_dir).stats))
    model.compile(optimizer=tf.keras.optimizers.Adam(1e-2))
    layer = model.backbone.get_layer(LAYER_NAME)
    adapters = [w.numpy() for w in layer.trainable_weights]
    batches = list(training_batches(data_dir, 64, seed=1, table=None, pairs_per_example=1.0).take(2))
    for batch in batches:  # the training step itself, eagerly: it refuses a variable without a gradient
        model.train_step(batch)

    np.testing.assert_array_equal(layer.table.numpy(), knowledge[1])  # frozen
    assert not any(v is layer.table for v in model.trainable_variables)
    assert all(not np.array_equal(a, w.numpy()) for a, w in zip(adapters, layer.trainable_weights))
    x, _ = batches[0]
    trained = model(x)[:, 0].numpy()
    set_item_knowledge(model.backbone, np.zeros_like(knowledge[1]))
    assert not np.allclose(trained, model(x)[:, 0].numpy())  # the scores read the knowledge


def test_a_kar_export_carries_the_table_takes_the_base_inputs_and_serves_the_trained_model_without_sllmr_tf(
        world, knowledge, tmp_path):
    data_dir, _ = world
    model_dir = str(tmp_path / "run")
    config = dataclasses.replace(kar_config(world, knowledge), model_dir=model_dir, epochs=1, batch_size=512,
                                 num_bootstrap=10)
    train(config, verbose=0, log=lambda _: None)
    path = export_run(ExportConfig(model_dir=model_dir, export_base=str(tmp_path / "export")), log=lambda _: None)

    loaded = tf.saved_model.load(path)
    assert sorted(loaded.signatures[contract.PREDICT_RAW].structured_input_signature[1]) == sorted(
        signatures.raw_input_spec())
    tables = [v.numpy() for v in loaded.backbone_variables if tuple(v.shape) == knowledge[1].shape]
    assert len(tables) == 1 and np.array_equal(tables[0], knowledge[1])

    examples = split_examples(data_dir, 32)
    parsed = tf.io.parse_example(tf.constant(examples), features.parse_spec(features.model_features()))
    expected = artifacts.load_backbone(model_dir)(parsed, training=False)[:, 0].numpy()
    assert expected.std() > 1e-3
    body = tmp_path / "body.json"
    body.write_text(json.dumps(predict_body(examples)))
    environment = {k: v for k, v in os.environ.items() if k not in ("TF_USE_LEGACY_KERAS", "PYTHONPATH")}
    clean = subprocess.run([sys.executable, os.path.join(REPO, "tests", "serving_replay.py"), path, str(body)],
                           cwd=str(tmp_path), env=environment, capture_output=True, text=True, timeout=300)
    assert clean.returncode == 0, clean.stderr[-2000:]
    report = json.loads(clean.stdout)
    assert report["modules"] == [] and len(report["warmup"]) == 8
    served = [row[contract.LOGIT] for row in report["response"]["predictions"]]
    np.testing.assert_allclose(served, expected, atol=1e-5, rtol=0)
