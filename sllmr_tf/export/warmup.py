"""assets.extra/tf_serving_warmup_requests: requests TF Serving replays before it serves a version.

TF Serving reads the file as uncompressed TFRecords of `PredictionLog`, runs every
record once (a failing record fails the load) and accepts at most 1000 records
(tensorflow/serving servables/tensorflow/saved_model_warmup_util). We warm every
signature at batch 1 and at the largest batch, so the first real request of either
kind finds its kernels and function runtimes ready.
"""
from __future__ import annotations

from typing import Sequence

import tensorflow as tf
from tensorflow_serving.apis import (classification_pb2, input_pb2, model_pb2, predict_pb2,
                                     prediction_log_pb2, regression_pb2)

from sllmr_tf import features, fileio
from sllmr_tf.export import contract

ASSETS_EXTRA = "assets.extra"
WARMUP_FILE = "tf_serving_warmup_requests"


def warmup_path(export_dir: str) -> str:
    return fileio.join(export_dir, ASSETS_EXTRA, WARMUP_FILE)


def warmup_logs(examples: Sequence[bytes]) -> list[prediction_log_pb2.PredictionLog]:
    """One request per signature at batch 1 and one at len(examples).

    Args:
        examples: serialized tf.train.Examples (`examples.split_examples`).

    Returns:
        The PredictionLog records, in the order TF Serving will replay them.
    """
    logs = []
    for size in sorted({1, len(examples)}):
        batch = list(examples[:size])
        logs += [_predict_log(contract.SERVING_DEFAULT, {contract.EXAMPLES: tf.constant(batch)}),
                 _predict_log(contract.PREDICT_RAW, _parsed(batch)),
                 _classify_log(batch), _regress_log(batch)]
    return logs


def write_warmup(export_dir: str, logs: Sequence[prediction_log_pb2.PredictionLog]) -> str:
    """Write the records into export_dir/assets.extra; returns the file's path."""
    path = warmup_path(export_dir)
    fileio.makedirs(fileio.dirname(path))
    with tf.io.TFRecordWriter(path) as writer:
        for log in logs:
            writer.write(log.SerializeToString(deterministic=True))
    return path


def _parsed(batch: list[bytes]) -> dict[str, tf.Tensor]:
    return tf.io.parse_example(tf.constant(batch), features.parse_spec(features.model_features(), defaults=True))


def _spec(signature: str) -> model_pb2.ModelSpec:
    # No model name: TF Serving replays warmup records against the version it loads, whatever it is called.
    return model_pb2.ModelSpec(signature_name=signature)


def _predict_log(signature: str, inputs: dict[str, tf.Tensor]) -> prediction_log_pb2.PredictionLog:
    request = predict_pb2.PredictRequest(model_spec=_spec(signature))
    for name, value in inputs.items():
        request.inputs[name].CopyFrom(tf.make_tensor_proto(value.numpy()))
    return prediction_log_pb2.PredictionLog(predict_log=prediction_log_pb2.PredictLog(request=request))


def _example_input(batch: list[bytes]) -> input_pb2.Input:
    return input_pb2.Input(example_list=input_pb2.ExampleList(
        examples=[tf.train.Example.FromString(serialized) for serialized in batch]))


def _classify_log(batch: list[bytes]) -> prediction_log_pb2.PredictionLog:
    request = classification_pb2.ClassificationRequest(model_spec=_spec(contract.CLASSIFY),
                                                       input=_example_input(batch))
    return prediction_log_pb2.PredictionLog(classify_log=prediction_log_pb2.ClassifyLog(request=request))


def _regress_log(batch: list[bytes]) -> prediction_log_pb2.PredictionLog:
    request = regression_pb2.RegressionRequest(model_spec=_spec(contract.REGRESS), input=_example_input(batch))
    return prediction_log_pb2.PredictionLog(regress_log=prediction_log_pb2.RegressLog(request=request))
