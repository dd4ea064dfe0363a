"""What TF Serving does with an export, done with TensorFlow alone.

Loads a version folder, replays its warmup requests (as TF Serving does before
serving it) and answers a REST predict body in TF Serving's row format. It never
imports sllmr_tf, so tests/test_export.py also runs it as a script: the clean
serving process, with TF_USE_LEGACY_KERAS unset.

    python tests/serving_replay.py EXPORT_DIR REST_BODY.json  ->  JSON on stdout
"""
from __future__ import annotations

import base64
import json
import os
import sys

import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import prediction_log_pb2

WARMUP = os.path.join("assets.extra", "tf_serving_warmup_requests")


def warmup_logs(export_dir: str) -> list[prediction_log_pb2.PredictionLog]:
    """The warmup file's records, parsed as TF Serving parses them."""
    return [prediction_log_pb2.PredictionLog.FromString(record.numpy())
            for record in tf.data.TFRecordDataset(os.path.join(export_dir, WARMUP))]


def replay(loaded, log: prediction_log_pb2.PredictionLog) -> dict[str, np.ndarray]:
    """One warmup record through the loaded model, fed the way TF Serving feeds its request kind:
    Predict by the request's named tensors, Classify and Regress by serialized examples into the
    signature's one input."""
    kind = log.WhichOneof("log_type")
    request = getattr(log, kind).request
    signature = loaded.signatures[request.model_spec.signature_name or "serving_default"]
    if kind == "predict_log":
        inputs = {name: tf.constant(tf.make_ndarray(tensor)) for name, tensor in request.inputs.items()}
    else:
        (name,) = signature.structured_input_signature[1]
        inputs = {name: tf.constant([e.SerializeToString() for e in request.input.example_list.examples])}
    return {name: value.numpy() for name, value in signature(**inputs).items()}


def rest_predict(loaded, body: dict) -> dict:
    """TF Serving's answer to a REST predict body in the row format ("instances")."""
    signature = loaded.signatures[body.get("signature_name", "serving_default")]
    names = list(signature.structured_input_signature[1])
    columns = {name: [_decoded(instance[name]) for instance in body["instances"]] for name in names}
    outputs = signature(**{name: tf.constant(values) for name, values in columns.items()})
    outputs = {name: value.numpy().tolist() for name, value in outputs.items()}
    return {"predictions": [{name: values[row] for name, values in outputs.items()}
                            for row in range(len(body["instances"]))]}


def _decoded(value):
    return base64.b64decode(value["b64"]) if isinstance(value, dict) else value


def main(export_dir: str, body_path: str) -> None:
    loaded = tf.saved_model.load(export_dir)
    replayed = [{name: list(value.shape) for name, value in replay(loaded, log).items()}
                for log in warmup_logs(export_dir)]
    with open(body_path) as f:
        response = rest_predict(loaded, json.load(f))
    modules = sorted(m for m in ("sllmr_tf", "tf_keras") if m in sys.modules)  # TensorFlow itself loads keras 3
    print(json.dumps({"warmup": replayed, "response": response, "modules": modules,
                      "legacy_keras": os.environ.get("TF_USE_LEGACY_KERAS")}))


if __name__ == "__main__":
    main(*sys.argv[1:])
